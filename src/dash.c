#include "dash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dash_page.h"
#include "http_server.h"
#include "image.h"
#include "jsonw.h"

#define DEF_MAX_FAILURES 50
#define DEF_HEARTBEAT_MS 15000
#define DEF_PROGRESS_MS 500
#define DEF_CLIENT_OUT_CAP (1u << 20)
#define SSE_RETRY_MS 2000 /* what the browser waits before reconnecting */
#define COOKIE_MAX_AGE_S (30 * 24 * 3600)

static const struct {
  const char *name, *words;
} station_states[] = {
#define EG_STATION_STATE_ROW(name, json, words) {json, words},
  EG_STATION_STATE_MAP(EG_STATION_STATE_ROW)
#undef EG_STATION_STATE_ROW
};

const char *eg_station_state_name(eg_station_state s) {
  return (unsigned)s < EG_STATION__COUNT ? station_states[s].name : "unknown";
}

const char *eg_station_state_words(eg_station_state s) {
  return (unsigned)s < EG_STATION__COUNT ? station_states[s].words : "unknown";
}

/* What the dashboard knows about one slot. */
typedef struct dslot {
  char label[64];
  eg_station_state state;
  char note[128];
  int64_t since_ms;
  /* the unit in (or last in) the slot */
  char port[256];
  int attempt;
  eg_stage stage;
  uint64_t done, total;
  char mac[18], chip[32], chip_desc[64];
  /* the last attempt that ended */
  bool has_last;
  eg_result last_result;
  eg_fault last_fault;
  int64_t last_finished_ms;
  bool recorded;
  /* progress events: at most one per progress_ms */
  uint64_t progress_sent_at; /* uv_now */
  bool progress_pending;
} dslot;

typedef struct dfailure {
  size_t index;
  char slot[64], mac[18], chip[32];
  int attempt;
  eg_fault fault;
  int64_t time_ms;
  bool will_retry;
} dfailure;

typedef struct dclient {
  eg_http_conn *conn;
  struct dclient *prev, *next;
} dclient;

struct eg_dash {
  uv_loop_t *loop;
  eg_http_server *srv;
  eg_dash_options o;
  char *station;
  char token_cookie_name[32];
  bool has_token;
  uint8_t token_digest[32];
  char url[300];
  dslot *slots;
  size_t nslots;
  /* the latest failures: a ring, newest at (fhead - 1) */
  dfailure *fails;
  size_t fcap, fcount, fhead;
  eg_dash_counters cnt;
  /* events: sequence numbers, and the last EG_DASH_REPLAY frames */
  char instance[12];
  uint64_t seq;
  eg_http_buf *replay[EG_DASH_REPLAY];
  dclient *clients;
  size_t nclients;
  eg_dash_page page;
  uv_timer_t heartbeat, flush;
  int closing_handles;
  void (*on_closed)(void *ctx);
  void *closed_ctx;
};

static int64_t wall_ms(const eg_dash *d) {
  if (d->o.clock_ms) return d->o.clock_ms(d->o.clock_ctx);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ JSON */

static void counters_now(const eg_dash *d, eg_dash_counters *c) {
  *c = d->cnt;
  const int64_t elapsed = wall_ms(d) - d->cnt.started_ms;
  c->units_per_hour = (double)c->units * 3600000.0 / (double)(elapsed > 60000 ? elapsed : 60000);
  c->first_pass_yield = c->units ? (double)c->first_pass / (double)c->units : -1.0;
}

static char *counters_json(const eg_dash *d, const char *event) {
  eg_dash_counters c;
  counters_now(d, &c);
  eg_jw w;
  eg_jw_open(&w);
  if (event) eg_jw_str(&w, "event", event);
  eg_jw_uint(&w, "units", c.units);
  eg_jw_uint(&w, "passed", c.passed);
  eg_jw_uint(&w, "failed", c.failed);
  eg_jw_uint(&w, "aborted", c.aborted);
  eg_jw_uint(&w, "skipped", c.skipped);
  eg_jw_uint(&w, "first_pass", c.first_pass);
  eg_jw_uint(&w, "attempts", c.attempts);
  if (c.first_pass_yield >= 0) eg_jw_num(&w, "first_pass_yield", c.first_pass_yield);
  else eg_jw_raw(&w, "first_pass_yield", NULL);
  eg_jw_num(&w, "units_per_hour", c.units_per_hour);
  eg_jw_int(&w, "started_ms", c.started_ms);
  return eg_jw_close(&w);
}

static void jw_slot(const eg_dash *d, eg_jw *w, size_t i) {
  const dslot *s = &d->slots[i];
  char st[16];
  eg_jw_uint(w, "index", i);
  eg_jw_str(w, "slot", s->label);
  eg_jw_str(w, "state", eg_station_state_name(s->state));
  eg_jw_str(w, "state_text", eg_station_state_words(s->state));
  eg_jw_str(w, "note", s->note);
  eg_jw_int(w, "since_ms", s->since_ms);
  eg_jw_int(w, "in_state_ms", wall_ms(d) - s->since_ms);
  eg_jw_str(w, "port", s->port);
  eg_jw_int(w, "attempt", s->attempt);
  eg_jw_str(w, "stage", s->stage == EG_STAGE_NONE ? "" : eg_stage_name(s->stage));
  eg_jw_str(w, "stage_label", s->stage == EG_STAGE_NONE ? "" : eg_stage_label(s->stage));
  eg_jw_uint(w, "done", s->done);
  eg_jw_uint(w, "total", s->total);
  eg_jw_str(w, "mac", s->mac);
  eg_jw_str(w, "chip", s->chip);
  eg_jw_str(w, "chip_desc", s->chip_desc);
  const bool failed = s->has_last && s->last_fault.code != EG_OK;
  eg_jw_str(w, "last_result", s->has_last ? eg_result_name(s->last_result) : "");
  const bool staged = failed && s->last_fault.stage != EG_STAGE_NONE;
  eg_jw_str(w, "last_stage", staged ? eg_stage_name(s->last_fault.stage) : "");
  eg_jw_str(w, "last_stage_label", staged ? eg_stage_label(s->last_fault.stage) : "");
  eg_jw_str(w, "last_error", failed ? eg_err_name(s->last_fault.code) : "");
  eg_jw_str(w, "last_error_text", failed ? eg_strerror(s->last_fault.code) : "");
  eg_jw_str(w, "last_status", failed ? eg_fault_status_hex(&s->last_fault, st, sizeof st) : "");
  eg_jw_str(w, "last_message", failed ? s->last_fault.msg : "");
  eg_jw_int(w, "last_finished_ms", s->has_last ? s->last_finished_ms : 0);
  eg_jw_bool(w, "recorded", s->recorded);
}

static void jw_failure(eg_jw *w, const dfailure *f) {
  char st[16];
  eg_jw_uint(w, "index", f->index);
  eg_jw_str(w, "slot", f->slot);
  eg_jw_str(w, "mac", f->mac);
  eg_jw_str(w, "chip", f->chip);
  eg_jw_int(w, "attempt", f->attempt);
  eg_jw_str(w, "stage", eg_stage_name(f->fault.stage));
  eg_jw_str(w, "stage_label", eg_stage_label(f->fault.stage));
  eg_jw_str(w, "error", eg_err_name(f->fault.code));
  eg_jw_str(w, "error_text", eg_strerror(f->fault.code));
  eg_jw_int(w, "opcode", f->fault.opcode);
  eg_jw_str(w, "status", eg_fault_status_hex(&f->fault, st, sizeof st));
  eg_jw_str(w, "message", f->fault.msg);
  eg_jw_int(w, "time_ms", f->time_ms);
  eg_jw_bool(w, "will_retry", f->will_retry);
}

/* "[" a "," b ... "]" from n objects rendered by `one`; NULL when out of
 * memory. */
static char *json_array(const eg_dash *d, size_t n, void (*one)(const eg_dash *, eg_jw *, size_t)) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  bool ok = true;
  fputc('[', f);
  for (size_t i = 0; i < n && ok; i++) {
    eg_jw w;
    eg_jw_open(&w);
    one(d, &w, i);
    char *s = eg_jw_close(&w);
    ok = s != NULL;
    if (s) fprintf(f, "%s%s", i ? "," : "", s);
    free(s);
  }
  fputc(']', f);
  if (fclose(f) != 0 || !ok) {
    free(buf);
    return NULL;
  }
  return buf;
}

static const dfailure *failure_at(const eg_dash *d, size_t k) { /* k = 0: newest */
  return &d->fails[(d->fhead + d->fcap - 1 - k) % d->fcap];
}

static void one_failure(const eg_dash *d, eg_jw *w, size_t k) { jw_failure(w, failure_at(d, k)); }

char *eg_dash_snapshot(const eg_dash *d) {
  char *counters = counters_json(d, NULL);
  char *slots = json_array(d, d->nslots, jw_slot);
  char *fails = json_array(d, d->fcount, one_failure);
  char *out = NULL;
  if (counters && slots && fails) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "snapshot");
    eg_jw_str(&w, "station", d->station);
    eg_jw_str(&w, "version", EG_VERSION);
    eg_jw_int(&w, "started_ms", d->cnt.started_ms);
    eg_jw_int(&w, "now_ms", wall_ms(d));
    eg_jw_uint(&w, "max_failures", d->fcap);
    eg_jw_raw(&w, "counters", counters);
    eg_jw_raw(&w, "slots", slots);
    eg_jw_raw(&w, "failures", fails);
    out = eg_jw_close(&w);
  }
  free(counters);
  free(slots);
  free(fails);
  return out;
}

void eg_dash_get_counters(const eg_dash *d, eg_dash_counters *out) { counters_now(d, out); }
size_t eg_dash_clients(const eg_dash *d) { return d->nclients; }

/* ---------------------------------------------------------------- events */

/* "id: <instance>-<seq>\ndata: <json>\n\n"; the JSON never holds a newline
 * (eg_json_quote escapes them), so one data line carries it. */
static eg_http_buf *frame(const eg_dash *d, uint64_t seq, const char *json) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fprintf(f, "id: %s-%llu\ndata: %s\n\n", d->instance, (unsigned long long)seq, json);
  if (fclose(f) != 0) {
    free(buf);
    return NULL;
  }
  eg_http_buf *b = eg_http_buf_new(buf, len);
  free(buf);
  return b;
}

/* Number the event, keep its frame for replay, send it to every client and
 * hand it to on_event. Takes json (malloc'd). NULL (out of memory) loses the
 * event; the state itself is intact, and the next snapshot shows it. */
static void emit(eg_dash *d, char *json) {
  if (!json) return;
  const uint64_t seq = ++d->seq;
  eg_http_buf *b = frame(d, seq, json);
  if (b) {
    eg_http_buf **slot = &d->replay[seq % EG_DASH_REPLAY];
    eg_http_buf_unref(*slot);
    *slot = b;
    for (dclient *c = d->clients; c; c = c->next) eg_http_stream_send(c->conn, b);
  }
  if (d->o.on_event) d->o.on_event(d->o.event_ctx, json);
  free(json);
}

static void emit_slot_state(eg_dash *d, size_t i) {
  const dslot *s = &d->slots[i];
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "slot_state");
  eg_jw_uint(&w, "index", i);
  eg_jw_str(&w, "slot", s->label);
  eg_jw_str(&w, "state", eg_station_state_name(s->state));
  eg_jw_str(&w, "state_text", eg_station_state_words(s->state));
  eg_jw_str(&w, "note", s->note);
  eg_jw_int(&w, "since_ms", s->since_ms);
  emit(d, eg_jw_close(&w));
}

static void emit_progress(eg_dash *d, size_t i) {
  dslot *s = &d->slots[i];
  s->progress_pending = false;
  s->progress_sent_at = uv_now(d->loop);
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "progress");
  eg_jw_uint(&w, "index", i);
  eg_jw_str(&w, "slot", s->label);
  eg_jw_str(&w, "stage", s->stage == EG_STAGE_NONE ? "" : eg_stage_name(s->stage));
  eg_jw_uint(&w, "done", s->done);
  eg_jw_uint(&w, "total", s->total);
  emit(d, eg_jw_close(&w));
}

/* A unit event: the record's members as the flash command's --json. */
static void emit_unit(eg_dash *d, size_t i, const char *event, const eg_unit_record *u, int will_retry, int recorded) {
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", event);
  eg_jw_uint(&w, "index", i);
  eg_jw_unit(&w, u);
  if (will_retry >= 0) eg_jw_bool(&w, "will_retry", will_retry);
  if (recorded >= 0) eg_jw_bool(&w, "recorded", recorded);
  if (will_retry >= 0 && u->fault.code != EG_OK) {
    eg_jw_str(&w, "fail_stage_label", eg_stage_label(u->fault.stage));
    eg_jw_str(&w, "error_text", eg_strerror(u->fault.code));
  }
  emit(d, eg_jw_close(&w));
}

static void on_flush(uv_timer_t *t) {
  eg_dash *d = t->data;
  bool any = false;
  for (size_t i = 0; i < d->nslots; i++)
    if (d->slots[i].progress_pending) {
      emit_progress(d, i);
      any = true;
    }
  if (!any) uv_timer_stop(&d->flush);
}

static void on_heartbeat(uv_timer_t *t) {
  eg_dash *d = t->data;
  if (!d->clients) return;
  static const char beat[] = ": heartbeat\n\n";
  eg_http_buf *b = eg_http_buf_new(beat, sizeof beat - 1);
  if (!b) return;
  for (dclient *c = d->clients; c; c = c->next) eg_http_stream_send(c->conn, b);
  eg_http_buf_unref(b);
}

/* --------------------------------------------------------------- feeding */

static void set_identity(dslot *s, const eg_unit_record *u) {
  snprintf(s->port, sizeof s->port, "%s", u->port);
  s->attempt = u->attempt;
  eg_unit_mac_str(u, s->mac, sizeof s->mac);
  snprintf(s->chip, sizeof s->chip, "%s", u->chip);
  snprintf(s->chip_desc, sizeof s->chip_desc, "%s", u->chip_desc);
}

/* The unit moved on: no stage progress carries over. */
static void new_step(dslot *s, eg_stage stage) {
  s->stage = stage;
  s->done = s->total = 0;
  s->progress_pending = false;
}

/* Returns true when something changed (and the event was sent). */
static bool set_state(eg_dash *d, size_t i, eg_station_state st, const char *note) {
  dslot *s = &d->slots[i];
  if (!note) note = "";
  if (s->state == st && strcmp(s->note, note) == 0) return false;
  if (s->state != st) s->since_ms = wall_ms(d);
  s->state = st;
  snprintf(s->note, sizeof s->note, "%s", note);
  emit_slot_state(d, i);
  return true;
}

void eg_dash_slot_state(eg_dash *d, size_t slot, eg_station_state st, const char *note) {
  if (slot >= d->nslots || (unsigned)st >= EG_STATION__COUNT) return;
  set_state(d, slot, st, note);
}

void eg_dash_unit_start(eg_dash *d, size_t slot, const eg_unit_record *u) {
  if (slot >= d->nslots) return;
  dslot *s = &d->slots[slot];
  set_identity(s, u);
  new_step(s, EG_STAGE_NONE);
  /* A new board starts clean; a retry keeps the failure it retries. */
  if (u->attempt <= 1) {
    s->has_last = false;
    s->recorded = true;
  }
  if (s->state != EG_STATION_FLASHING) set_state(d, slot, EG_STATION_FLASHING, NULL);
  emit_unit(d, slot, "unit_start", u, -1, -1);
}

void eg_dash_unit_stage(eg_dash *d, size_t slot, const eg_unit_record *u, eg_stage stage) {
  if (slot >= d->nslots || (unsigned)stage >= EG_STAGE__COUNT) return;
  dslot *s = &d->slots[slot];
  new_step(s, stage);
  s->attempt = u->attempt;
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "stage");
  eg_jw_uint(&w, "index", slot);
  eg_jw_str(&w, "slot", s->label);
  eg_jw_int(&w, "attempt", u->attempt);
  eg_jw_str(&w, "stage", eg_stage_name(stage));
  eg_jw_str(&w, "stage_label", eg_stage_label(stage));
  emit(d, eg_jw_close(&w));
}

void eg_dash_unit_identity(eg_dash *d, size_t slot, const eg_unit_record *u) {
  if (slot >= d->nslots) return;
  set_identity(&d->slots[slot], u);
  emit_unit(d, slot, "unit_identity", u, -1, -1);
}

void eg_dash_unit_progress(eg_dash *d, size_t slot, const eg_unit_record *u, uint64_t done, uint64_t total) {
  (void)u;
  if (slot >= d->nslots) return;
  dslot *s = &d->slots[slot];
  s->done = done;
  s->total = total;
  const uint64_t now = uv_now(d->loop);
  if (done >= total || now - s->progress_sent_at >= d->o.progress_ms) {
    emit_progress(d, slot);
    return;
  }
  s->progress_pending = true;
  if (!uv_is_active((uv_handle_t *)&d->flush)) uv_timer_start(&d->flush, on_flush, d->o.progress_ms, d->o.progress_ms);
}

static void add_failure(eg_dash *d, size_t slot, const eg_unit_record *u, bool will_retry) {
  dfailure *f = &d->fails[d->fhead];
  d->fhead = (d->fhead + 1) % d->fcap;
  if (d->fcount < d->fcap) d->fcount++;
  memset(f, 0, sizeof *f);
  f->index = slot;
  snprintf(f->slot, sizeof f->slot, "%s", d->slots[slot].label);
  eg_unit_mac_str(u, f->mac, sizeof f->mac);
  snprintf(f->chip, sizeof f->chip, "%s", u->chip);
  f->attempt = u->attempt;
  f->fault = u->fault;
  f->time_ms = u->finished_ms ? u->finished_ms : wall_ms(d);
  f->will_retry = will_retry;
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "failure");
  jw_failure(&w, f);
  emit(d, eg_jw_close(&w));
}

void eg_dash_unit_done(eg_dash *d, size_t slot, const eg_unit_record *u, bool will_retry, bool recorded) {
  if (slot >= d->nslots) return;
  dslot *s = &d->slots[slot];
  set_identity(s, u);
  new_step(s, EG_STAGE_NONE);
  s->has_last = true;
  s->last_result = u->result;
  s->last_fault = u->fault;
  s->last_finished_ms = u->finished_ms ? u->finished_ms : wall_ms(d);
  s->recorded = recorded;
  d->cnt.attempts++;
  emit_unit(d, slot, "unit_done", u, will_retry, recorded);
  if (u->result == EG_RESULT_FAIL) add_failure(d, slot, u, will_retry);
  if (will_retry) return;
  switch (u->result) {
  case EG_RESULT_PASS:
    d->cnt.passed++;
    d->cnt.units++;
    if (u->attempt <= 1) d->cnt.first_pass++;
    set_state(d, slot, EG_STATION_PASS, NULL);
    break;
  case EG_RESULT_FAIL:
    d->cnt.failed++;
    d->cnt.units++;
    set_state(d, slot, EG_STATION_FAIL, NULL);
    break;
  case EG_RESULT_ABORTED:
    d->cnt.aborted++;
    break;
  case EG_RESULT_SKIPPED:
    d->cnt.skipped++;
    break;
  case EG_RESULT_IN_PROGRESS:
    return; /* not a result: nothing to count */
  }
  emit(d, counters_json(d, "counters"));
}

void eg_dash_message(eg_dash *d, const char *text) {
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "message");
  eg_jw_str(&w, "text", text);
  eg_jw_int(&w, "time_ms", wall_ms(d));
  emit(d, eg_jw_close(&w));
}

/* ---------------------------------------------------------------- access */

static bool token_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* Digests of equal length compared with CRYPTO_memcmp: the time taken does
 * not depend on where a guess differs, nor on its length. */
static bool token_ok(const eg_dash *d, const char *candidate) {
  uint8_t dg[32];
  eg_sha256((const uint8_t *)candidate, strlen(candidate), dg);
  return CRYPTO_memcmp(dg, d->token_digest, sizeof dg) == 0;
}

/* Which credential the request carries that matches; 0 none. */
enum { CRED_NONE, CRED_BEARER, CRED_COOKIE, CRED_QUERY };

static int credential(const eg_dash *d, const eg_http_req *r) {
  char tok[EG_DASH_TOKEN_MAX + 2];
  const char *auth = eg_http_header_get(r, "authorization");
  if (auth && strncasecmp(auth, "bearer ", 7) == 0) {
    const char *t = auth + 7;
    while (*t == ' ') t++;
    if (strlen(t) < sizeof tok && token_ok(d, t)) return CRED_BEARER;
  }
  if (eg_http_cookie_get(r, d->token_cookie_name, tok, sizeof tok) && token_ok(d, tok)) return CRED_COOKIE;
  if (eg_http_query_get(r->query, "token", tok, sizeof tok) && token_ok(d, tok)) return CRED_QUERY;
  return CRED_NONE;
}

/* Host names a loopback address: localhost, 127.x.x.x, [::1], with or
 * without a port. A browser on a rebound DNS name sends that name instead. */
static bool loopback_host(const char *host) {
  if (!host) return true; /* HTTP/1.0 without Host: not a browser */
  char h[256];
  size_t n = 0;
  if (host[0] == '[') {
    const char *e = strchr(host, ']');
    if (!e) return false;
    n = (size_t)(e - host) + 1;
  } else {
    const char *e = strchr(host, ':');
    n = e ? (size_t)(e - host) : strlen(host);
  }
  if (n == 0 || n >= sizeof h) return false;
  memcpy(h, host, n);
  h[n] = '\0';
  if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0 || strcmp(h, "[::1]") == 0) return true;
  if (strncmp(h, "127.", 4) != 0) return false;
  int dots = 0;
  for (const char *c = h; *c; c++) {
    if (*c == '.') dots++;
    else if (*c < '0' || *c > '9') return false;
  }
  return dots == 3;
}

static bool loopback_address(const char *a) {
  return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 || strncmp(a, "::ffff:127.", 11) == 0;
}

/* ---------------------------------------------------------------- routes */

typedef enum route { R_NONE, R_PAGE, R_STATE, R_EVENTS, R_HEALTH, R_ICON } route;

static route route_of(const char *path) {
  static const struct {
    const char *path;
    route r;
  } routes[] = {{"/", R_PAGE}, {"/api/state", R_STATE}, {"/api/events", R_EVENTS}, {"/healthz", R_HEALTH},
                {"/favicon.ico", R_ICON}};
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
    if (strcmp(path, routes[i].path) == 0) return routes[i].r;
  return R_NONE;
}

static void text(eg_http_conn *c, int status, const char *headers, const char *body) {
  eg_http_respond(c, status, headers, "text/plain; charset=utf-8", body, strlen(body));
}

static void serve_events(eg_dash *d, eg_http_conn *c, const eg_http_req *r) {
  if (!eg_http_stream_begin(c, 200, "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n", "text/event-stream; charset=utf-8"))
    return;
  dclient *cl = calloc(1, sizeof *cl);
  if (!cl) return; /* the stream stays without events; the browser's next reconnect retries */
  cl->conn = c;
  cl->next = d->clients;
  if (d->clients) d->clients->prev = cl;
  d->clients = cl;
  d->nclients++;
  eg_http_conn_set_data(c, cl);

  char retry[32];
  snprintf(retry, sizeof retry, "retry: %d\n\n", SSE_RETRY_MS);
  if (!eg_http_stream_send_str(c, retry)) return;
  /* Resume: "<instance>-<seq>" of this dashboard, still in the replay
   * window: send what followed. Anything else: a snapshot. */
  const char *last = eg_http_header_get(r, "last-event-id");
  const size_t il = strlen(d->instance);
  if (last && strncmp(last, d->instance, il) == 0 && last[il] == '-') {
    char *end = NULL;
    const unsigned long long from = strtoull(last + il + 1, &end, 10);
    const uint64_t oldest = d->seq > EG_DASH_REPLAY ? d->seq - EG_DASH_REPLAY + 1 : 1;
    if (end && *end == '\0' && end != last + il + 1 && from <= d->seq && from + 1 >= oldest) {
      /* A replay the client's queue cannot hold would drop it, and it would
       * come back with the same id forever: a snapshot is smaller then. */
      size_t bytes = 0;
      for (uint64_t s = from + 1; s <= d->seq; s++) bytes += d->replay[s % EG_DASH_REPLAY] ? d->replay[s % EG_DASH_REPLAY]->len : 0;
      if (bytes <= d->o.client_out_cap / 2) {
        for (uint64_t s = from + 1; s <= d->seq; s++) {
          eg_http_buf *b = d->replay[s % EG_DASH_REPLAY];
          if (b && !eg_http_stream_send(c, b)) return;
        }
        return;
      }
    }
  }
  char *snap = eg_dash_snapshot(d);
  eg_http_buf *b = snap ? frame(d, d->seq, snap) : NULL;
  free(snap);
  if (b) eg_http_stream_send(c, b);
  eg_http_buf_unref(b);
}

static void on_request(void *ctx, eg_http_conn *c, const eg_http_req *r) {
  eg_dash *d = ctx;
  const route rt = route_of(r->path);
  const bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
  static const char allow[] = "Allow: GET, HEAD\r\n";
  if (rt == R_HEALTH) {
    if (get) text(c, 200, "Cache-Control: no-store\r\n", "ok\n");
    else text(c, 405, allow, "405 Method Not Allowed\n");
    return;
  }
  /* Browsers ask for an icon whatever the page says: no icon, and no 404
   * in the console (the page's own <link rel="icon"> is empty too). */
  if (rt == R_ICON) {
    if (get) eg_http_respond(c, 204, "Cache-Control: max-age=86400\r\n", NULL, NULL, 0);
    else text(c, 405, allow, "405 Method Not Allowed\n");
    return;
  }
  if (d->has_token) {
    const int cred = credential(d, r);
    if (cred == CRED_NONE) {
      text(c, 401, "WWW-Authenticate: Bearer realm=\"espgang\"\r\nCache-Control: no-store\r\n",
           "401 Unauthorized: open the dashboard's URL with ?token=TOKEN as espgang printed it, "
           "or send Authorization: Bearer TOKEN\n");
      return;
    }
    if (cred == CRED_QUERY && rt == R_PAGE && get) {
      /* The token leaves the address bar: a cookie carries it from now on,
       * for the page and its EventSource. */
      char tok[EG_DASH_TOKEN_MAX + 2], hdr[512];
      eg_http_query_get(r->query, "token", tok, sizeof tok);
      snprintf(hdr, sizeof hdr,
               "Location: /\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
               "Set-Cookie: %s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict\r\n",
               d->token_cookie_name, tok, COOKIE_MAX_AGE_S);
      text(c, 303, hdr, "303 See Other: /\n");
      return;
    }
  } else if (!loopback_host(r->host)) {
    text(c, 403, NULL, "403 Forbidden: this dashboard answers to localhost only\n");
    return;
  }
  if (rt == R_NONE) {
    text(c, 404, NULL, "404 Not Found\n");
    return;
  }
  if (!get) {
    text(c, 405, allow, "405 Method Not Allowed\n");
    return;
  }
  switch (rt) {
  case R_PAGE:
    eg_http_respond(c, 200, d->page.headers, "text/html; charset=utf-8", d->page.html, d->page.len);
    return;
  case R_STATE: {
    char *snap = eg_dash_snapshot(d);
    if (!snap) {
      text(c, 503, NULL, "503 Service Unavailable: out of memory\n");
      return;
    }
    eg_http_respond(c, 200, "Cache-Control: no-store\r\n", "application/json", snap, strlen(snap));
    free(snap);
    return;
  }
  case R_EVENTS:
    serve_events(d, c, r);
    return;
  case R_HEALTH:
  case R_ICON:
  case R_NONE:
    return; /* answered above */
  }
}

static void on_stream_closed(void *ctx, eg_http_conn *c) {
  eg_dash *d = ctx;
  dclient *cl = eg_http_conn_data(c);
  if (!cl) return;
  if (cl->prev) cl->prev->next = cl->next;
  else d->clients = cl->next;
  if (cl->next) cl->next->prev = cl->prev;
  d->nclients--;
  free(cl);
}

/* ------------------------------------------------------------ life cycle */

eg_err eg_dash_make_token(char *buf, size_t len) {
  uint8_t r[16];
  if (len < 2 * sizeof r + 1) return EG_INVAL;
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) return EG_IO;
  eg_hex(buf, r, sizeof r);
  return EG_OK;
}

static void dash_free(eg_dash *d) {
  for (size_t i = 0; i < EG_DASH_REPLAY; i++) eg_http_buf_unref(d->replay[i]);
  eg_dash_page_free(&d->page);
  free(d->slots);
  free(d->fails);
  free(d->station);
  free(d);
}

static eg_err check_options(const eg_dash_options *o, eg_fault *f) {
  if (!o->station || !o->station[0]) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "dashboard: no station name");
  if (o->nslots && !o->labels) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "dashboard: no slot labels");
  const char *addr = o->address ? o->address : "127.0.0.1";
  if (o->token) {
    const size_t n = strlen(o->token);
    if (n < EG_DASH_TOKEN_MIN || n > EG_DASH_TOKEN_MAX)
      return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "dashboard token: %zu characters; it needs %d to %d", n,
                          EG_DASH_TOKEN_MIN, EG_DASH_TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
      if (!token_char(o->token[i]))
        return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1,
                            "dashboard token: character %zu is not one of A-Z a-z 0-9 - . _ ~", i + 1);
  } else if (!loopback_address(addr)) {
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1,
                        "dashboard: listening on %s (beyond this machine) needs a token", addr);
  }
  return EG_OK;
}

static void make_url(eg_dash *d, const char *addr) {
  char host[256];
  if (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0) {
    size_t n = sizeof host;
    if (uv_os_gethostname(host, &n) != 0) snprintf(host, sizeof host, "%s", addr);
  } else if (strchr(addr, ':')) {
    snprintf(host, sizeof host, "[%s]", addr);
  } else {
    snprintf(host, sizeof host, "%s", addr);
  }
  snprintf(d->url, sizeof d->url, "http://%s:%d/", host, eg_http_server_port(d->srv));
}

eg_err eg_dash_open(eg_dash **out, uv_loop_t *loop, const eg_dash_options *o, eg_fault *f) {
  *out = NULL;
  const eg_err ce = check_options(o, f);
  if (ce != EG_OK) return ce;
  eg_dash *d = calloc(1, sizeof *d);
  if (!d) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  d->loop = loop;
  d->o = *o;
  if (!d->o.max_failures) d->o.max_failures = DEF_MAX_FAILURES;
  if (!d->o.heartbeat_ms) d->o.heartbeat_ms = DEF_HEARTBEAT_MS;
  if (!d->o.progress_ms) d->o.progress_ms = DEF_PROGRESS_MS;
  if (!d->o.client_out_cap) d->o.client_out_cap = DEF_CLIENT_OUT_CAP;
  d->o.labels = NULL; /* copied below; the caller's may go */
  d->o.station = NULL;
  d->o.token = NULL;
  d->nslots = o->nslots;
  d->fcap = d->o.max_failures;
  d->slots = calloc(o->nslots ? o->nslots : 1, sizeof *d->slots);
  d->fails = calloc(d->fcap, sizeof *d->fails);
  d->station = strdup(o->station);
  if (!d->slots || !d->fails || !d->station || eg_dash_page_build(&d->page) != EG_OK) {
    dash_free(d);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  d->cnt.started_ms = wall_ms(d);
  for (size_t i = 0; i < o->nslots; i++) {
    snprintf(d->slots[i].label, sizeof d->slots[i].label, "%s", o->labels[i] ? o->labels[i] : "");
    d->slots[i].state = EG_STATION_WAITING;
    d->slots[i].since_ms = d->cnt.started_ms;
    d->slots[i].recorded = true;
  }
  uint32_t inst = 0;
  if (getrandom(&inst, sizeof inst, GRND_NONBLOCK) != (ssize_t)sizeof inst)
    inst = (uint32_t)d->cnt.started_ms ^ (uint32_t)getpid() << 16;
  snprintf(d->instance, sizeof d->instance, "%08x", inst);
  if (o->token) {
    d->has_token = true;
    eg_sha256((const uint8_t *)o->token, strlen(o->token), d->token_digest);
  }

  const eg_http_server_opts so = {
    .address = o->address,
    .port = o->port,
    .max_conns = o->max_clients,
    .out_cap = d->o.client_out_cap,
    .request_timeout_ms = o->request_timeout_ms,
    .stall_timeout_ms = o->stall_timeout_ms,
  };
  const eg_http_server_cbs cbs = {.on_request = on_request, .on_stream_closed = on_stream_closed};
  const eg_err se = eg_http_server_start(&d->srv, loop, &so, &cbs, d, f);
  if (se != EG_OK) {
    dash_free(d);
    return se;
  }
  /* Cookies ignore ports: two stations on one host keep one cookie each. */
  snprintf(d->token_cookie_name, sizeof d->token_cookie_name, "eg_token_%d", eg_http_server_port(d->srv));
  make_url(d, o->address ? o->address : "127.0.0.1");
  uv_timer_init(loop, &d->heartbeat);
  uv_timer_init(loop, &d->flush);
  d->heartbeat.data = d->flush.data = d;
  uv_timer_start(&d->heartbeat, on_heartbeat, d->o.heartbeat_ms, d->o.heartbeat_ms);
  *out = d;
  return EG_OK;
}

const char *eg_dash_url(const eg_dash *d) { return d->url; }
int eg_dash_port(const eg_dash *d) { return eg_http_server_port(d->srv); }

static void part_closed(eg_dash *d) {
  if (--d->closing_handles) return;
  void (*cb)(void *) = d->on_closed;
  void *ctx = d->closed_ctx;
  dash_free(d);
  if (cb) cb(ctx);
}

static void timer_closed(uv_handle_t *h) { part_closed(h->data); }
static void server_closed(void *ctx) { part_closed(ctx); }

void eg_dash_close(eg_dash *d, void (*cb)(void *ctx), void *ctx) {
  d->on_closed = cb;
  d->closed_ctx = ctx;
  d->closing_handles = 3;
  uv_close((uv_handle_t *)&d->heartbeat, timer_closed);
  uv_close((uv_handle_t *)&d->flush, timer_closed);
  eg_http_server_close(d->srv, server_closed, d);
}
