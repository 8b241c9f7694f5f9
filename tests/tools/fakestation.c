/* fakestation.c - a station without boards, for the dashboard's tests and
 * for looking at the page: it opens the dashboard (src/dash.h) and plays a
 * fixed, seeded script of slot changes into it, the calls `espgang station`
 * makes, on timers of one libuv loop.
 *
 *   fakestation [--slots N] [--units U] [--seed S] [--tick MS] [--port P]
 *               [--address A] [--token T] [--pause-at U1,U2,...]
 *
 * Each slot cycles: waiting -> flashing (unit_start, stages, identity, write
 * progress, verify) -> pass or fail (some failures are retried first) ->
 * removal -> waiting; some boards are found already flashed after their
 * identity and go to removal unflashed (skipped), with seeded durations in ticks (default 15 ms). Faults
 * come from a table of realistic ones (stage, error code, the chip's status
 * bytes, a message with characters that must be escaped).
 *
 * stdout, one JSON object a line:
 *   {"event":"listening","url":...,"port":...,"started_ms":...}
 *   {"event":"checkpoint","n":K,"expect":{...}}  when the U-th unit has ended
 *                                                 (--pause-at); the script
 *                                                 pauses until stdin says
 *                                                 "continue"
 *   {"event":"finished","expect":{...}}           after U units (0: never);
 *                                                 the script stops there,
 *                                                 the dashboard stays up
 * "expect" is this program's own tally of what it sent (not read back from
 * the dashboard): counters {units, passed, failed, first_pass, skipped}, per slot
 * {slot, state, last_result, mac, recorded}, and the latest failures (newest first:
 * slot, mac, error, stage, status). Tests compare the page and /api/state
 * with it.
 *
 * stdin: "continue" resumes after a checkpoint; "quit" or end of input
 * closes the dashboard and exits 0. SIGINT/SIGTERM do the same. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dash.h"
#include "jsonw.h"

#define MAX_PAUSES 16
#define EXPECT_FAILURES 10

typedef struct fault_row {
  eg_stage stage;
  eg_err code;
  uint8_t status[2];
  uint8_t nstatus;
  const char *msg;
} fault_row;

/* What goes wrong in a rack, with the words each failure carries. */
static const fault_row faults[] = {
  {EG_STAGE_SYNC, EG_NO_SYNC, {0}, 0, "no answer to SYNC after 7 attempts (is BOOT held?)"},
  {EG_STAGE_VERIFY, EG_MD5_MISMATCH, {0}, 0, "region 0x10000+0x2f000: flash 9a0b1c2d, image 3c4d5e6f"},
  {EG_STAGE_WRITE, EG_DEVICE_STATUS, {0x01, 0x05}, 2, "FLASH_DEFL_DATA refused: <b>\"status\" 01 05</b> \xc2\xb5s & more"},
  {EG_STAGE_DETECT, EG_WRONG_CHIP, {0}, 0, "ESP32-C3 found; the manifest wants ESP32"},
  {EG_STAGE_ERASE, EG_TIMEOUT, {0}, 0, "erase timed out after 12 s"},
};

/* The stages a unit goes through, in order; WRITE reports progress. */
static const eg_stage stages[] = {EG_STAGE_OPEN,   EG_STAGE_RESET, EG_STAGE_SYNC,  EG_STAGE_DETECT,
                                  EG_STAGE_STUB,   EG_STAGE_BAUD,  EG_STAGE_ATTACH, EG_STAGE_ERASE,
                                  EG_STAGE_WRITE,  EG_STAGE_VERIFY, EG_STAGE_AFTER};
#define NSTAGES (sizeof stages / sizeof stages[0])
#define WRITE_STEPS 8
#define WRITE_TOTAL 1048576u

typedef enum phase { PH_WAITING, PH_STAGE, PH_WRITE, PH_RESULT, PH_REMOVAL } phase;

typedef struct fslot {
  char label[16];
  phase ph;
  unsigned wait;         /* ticks until the next step */
  size_t stage;          /* index into stages */
  unsigned write_step;
  int fault;             /* index into faults for this attempt, -1: passes */
  bool skip;             /* the board already holds the images: not flashed */
  bool fault_retry_ok;   /* a retry of this unit passes */
  eg_unit_record u;
  unsigned unit_no;
  /* expect: what this program sent */
  eg_station_state state;
  char last_result[16], mac[18];
  bool recorded;         /* the last attempt's row is in the log */
} fslot;

typedef struct xfail {
  char slot[16], mac[18];
  const fault_row *f;
} xfail;

typedef struct station {
  uv_loop_t *loop;
  eg_dash *dash;
  uv_timer_t tick;
  uv_pipe_t in;
  uv_signal_t sigint, sigterm;
  bool in_open, closing, paused, finished;
  char inbuf[256];
  size_t inlen;
  fslot *slots;
  size_t nslots;
  uint32_t rng;
  unsigned tick_ms;
  unsigned units_goal, units_started; /* units to flash, and flashed or in flight */
  unsigned boards;                    /* boards seated, skipped ones too: MACs */
  unsigned pauses[MAX_PAUSES], npauses, next_pause;
  /* the tally */
  unsigned units, passed, failed, first_pass, skipped;
  xfail fails[EXPECT_FAILURES];
  size_t nfails;
  int64_t started_ms;
} station;

static uint32_t rnd(station *s) {
  uint32_t x = s->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return s->rng = x;
}

static unsigned between(station *s, unsigned lo, unsigned hi) { return lo + rnd(s) % (hi - lo + 1); }

static int64_t now_ms(void) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---------------------------------------------------------------- output */

static char *expect_json(const station *s) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fprintf(f, "{\"counters\":{\"units\":%u,\"passed\":%u,\"failed\":%u,\"first_pass\":%u,\"skipped\":%u},\"slots\":[",
          s->units, s->passed, s->failed, s->first_pass, s->skipped);
  for (size_t i = 0; i < s->nslots; i++) {
    const fslot *sl = &s->slots[i];
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "slot", sl->label);
    eg_jw_str(&w, "state", eg_station_state_name(sl->state));
    eg_jw_str(&w, "last_result", sl->last_result);
    eg_jw_str(&w, "mac", sl->mac);
    eg_jw_bool(&w, "recorded", sl->recorded);
    char *o = eg_jw_close(&w);
    fprintf(f, "%s%s", i ? "," : "", o ? o : "null");
    free(o);
  }
  fputs("],\"failures\":[", f);
  for (size_t k = 0; k < s->nfails; k++) {
    const xfail *x = &s->fails[k];
    char st[16] = "";
    for (unsigned b = 0; b < x->f->nstatus; b++)
      snprintf(st + strlen(st), sizeof st - strlen(st), "%s%02x", b ? " " : "", x->f->status[b]);
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "slot", x->slot);
    eg_jw_str(&w, "mac", x->mac);
    eg_jw_str(&w, "error", eg_err_name(x->f->code));
    eg_jw_str(&w, "stage", eg_stage_name(x->f->stage));
    eg_jw_str(&w, "status", st);
    char *o = eg_jw_close(&w);
    fprintf(f, "%s%s", k ? "," : "", o ? o : "null");
    free(o);
  }
  fputs("]}", f);
  if (fclose(f) != 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

static void say(const station *s, const char *event, int n) {
  char *e = expect_json(s);
  if (n > 0) printf("{\"event\":\"%s\",\"n\":%d,\"expect\":%s}\n", event, n, e ? e : "null");
  else printf("{\"event\":\"%s\",\"expect\":%s}\n", event, e ? e : "null");
  fflush(stdout);
  free(e);
}

/* ---------------------------------------------------------------- script */

static void set_state(station *s, size_t i, eg_station_state st) {
  s->slots[i].state = st;
  eg_dash_slot_state(s->dash, i, st, NULL);
}

static void start_attempt(station *s, size_t i, int attempt) {
  fslot *sl = &s->slots[i];
  eg_unit_record_init(&sl->u);
  snprintf(sl->u.slot, sizeof sl->u.slot, "%s", sl->label);
  snprintf(sl->u.port, sizeof sl->u.port, "socket://127.0.0.1:%zu", 5000 + i);
  sl->u.attempt = attempt;
  sl->u.started_ms = now_ms();
  sl->mac[0] = '\0'; /* each attempt learns it again at its detect stage */
  sl->ph = PH_STAGE;
  sl->stage = 0;
  sl->wait = between(s, 1, 2);
  set_state(s, i, EG_STATION_FLASHING); /* the dashboard would imply it; a station says it */
  eg_dash_unit_start(s->dash, i, &sl->u);
}

static void new_unit(station *s, size_t i) {
  fslot *sl = &s->slots[i];
  sl->unit_no = ++s->boards;
  /* One unit in three fails its first attempt; of those, retryable faults
   * are retried once, and the retry passes half the time. */
  sl->fault = rnd(s) % 3 == 0 ? (int)(rnd(s) % (sizeof faults / sizeof faults[0])) : -1;
  sl->fault_retry_ok = rnd(s) % 2 == 0;
  /* One in twelve was flashed before (same MAC, same images): identified,
   * then left alone. */
  sl->skip = sl->fault < 0 && rnd(s) % 12 == 0;
  if (!sl->skip) s->units_started++;
  sl->last_result[0] = '\0'; /* a new board: the last one's result goes */
  sl->recorded = true;
  start_attempt(s, i, 1);
}

static void finish_unit(station *s, size_t i, bool pass) {
  fslot *sl = &s->slots[i];
  s->units++;
  if (pass) {
    s->passed++;
    if (sl->u.attempt == 1) s->first_pass++;
  } else {
    s->failed++;
  }
  snprintf(sl->last_result, sizeof sl->last_result, "%s", pass ? "pass" : "fail");
  set_state(s, i, pass ? EG_STATION_PASS : EG_STATION_FAIL);
  sl->ph = PH_RESULT;
  sl->wait = pass ? between(s, 4, 12) : between(s, 10, 30); /* an operator looks twice at a failure */
}

static void record_failure(station *s, size_t i, const fault_row *f) {
  memmove(&s->fails[1], &s->fails[0], (EXPECT_FAILURES - 1) * sizeof s->fails[0]);
  snprintf(s->fails[0].slot, sizeof s->fails[0].slot, "%s", s->slots[i].label);
  snprintf(s->fails[0].mac, sizeof s->fails[0].mac, "%s", s->slots[i].mac);
  s->fails[0].f = f;
  if (s->nfails < EXPECT_FAILURES) s->nfails++;
}

/* The attempt ends at the current stage (a fault) or after the last one. */
static void end_attempt(station *s, size_t i) {
  fslot *sl = &s->slots[i];
  eg_unit_record *u = &sl->u;
  u->finished_ms = now_ms();
  const bool failing = sl->fault >= 0 && (u->attempt == 1 || !sl->fault_retry_ok);
  if (!failing) {
    u->result = EG_RESULT_PASS;
    sl->recorded = true;
    eg_dash_unit_done(s->dash, i, u, false, true);
    finish_unit(s, i, true);
    return;
  }
  const fault_row *f = &faults[sl->fault];
  u->result = EG_RESULT_FAIL;
  eg_fault_set(&u->fault, f->code, f->stage, -1, "%s", f->msg);
  eg_fault_status(&u->fault, f->status, f->nstatus);
  const bool retry = u->attempt == 1 && eg_err_retryable(f->code);
  /* Some failures are reported as not recorded: the tile must say so. */
  const bool recorded = sl->unit_no % 3 != 0;
  record_failure(s, i, f);
  snprintf(sl->last_result, sizeof sl->last_result, "fail");
  sl->recorded = recorded;
  eg_dash_unit_done(s->dash, i, u, retry, recorded);
  if (retry) {
    start_attempt(s, i, 2);
    return;
  }
  finish_unit(s, i, false);
}

static void step_slot(station *s, size_t i) {
  fslot *sl = &s->slots[i];
  if (sl->wait > 1) {
    sl->wait--;
    return;
  }
  switch (sl->ph) {
  case PH_WAITING:
    if (s->units_goal && s->units_started >= s->units_goal) {
      sl->wait = 1000000; /* the shift is over for this slot */
      return;
    }
    new_unit(s, i);
    return;
  case PH_STAGE: {
    const eg_stage st = stages[sl->stage];
    eg_dash_unit_stage(s->dash, i, &sl->u, st);
    if (sl->fault >= 0 && faults[sl->fault].stage == st && (sl->u.attempt == 1 || !sl->fault_retry_ok)) {
      end_attempt(s, i);
      return;
    }
    if (st == EG_STAGE_DETECT) {
      eg_unit_record *u = &sl->u;
      snprintf(u->chip, sizeof u->chip, "ESP32");
      snprintf(u->chip_desc, sizeof u->chip_desc, "ESP32-D0WD-V3 (revision v3.0)");
      u->has_mac = true;
      const uint8_t mac[6] = {0x24, 0x0a, 0xc4, (uint8_t)(sl->unit_no >> 16), (uint8_t)(sl->unit_no >> 8),
                              (uint8_t)sl->unit_no};
      memcpy(u->mac, mac, 6);
      eg_unit_mac_str(u, sl->mac, sizeof sl->mac);
      eg_dash_unit_identity(s->dash, i, u);
      if (sl->skip) {
        u->result = EG_RESULT_SKIPPED;
        u->finished_ms = now_ms();
        eg_fault_set(&u->fault, EG_SKIPPED, EG_STAGE_NONE, -1, "%s passed in an earlier run", sl->mac);
        eg_dash_unit_done(s->dash, i, u, false, true);
        s->skipped++;
        snprintf(sl->last_result, sizeof sl->last_result, "skipped");
        sl->state = EG_STATION_REMOVAL;
        eg_dash_slot_state(s->dash, i, EG_STATION_REMOVAL, "already passed: not re-flashed");
        sl->ph = PH_REMOVAL;
        sl->wait = between(s, 5, 15);
        return;
      }
    }
    if (st == EG_STAGE_WRITE) {
      sl->ph = PH_WRITE;
      sl->write_step = 0;
    } else if (++sl->stage == NSTAGES) {
      end_attempt(s, i);
      return;
    }
    sl->wait = between(s, 1, 3);
    return;
  }
  case PH_WRITE:
    sl->write_step++;
    eg_dash_unit_progress(s->dash, i, &sl->u, (uint64_t)WRITE_TOTAL * sl->write_step / WRITE_STEPS, WRITE_TOTAL);
    if (sl->write_step == WRITE_STEPS) {
      sl->ph = PH_STAGE;
      sl->stage++;
    }
    sl->wait = between(s, 1, 2);
    return;
  case PH_RESULT:
    set_state(s, i, EG_STATION_REMOVAL);
    sl->ph = PH_REMOVAL;
    sl->wait = between(s, 3, 10);
    return;
  case PH_REMOVAL:
    set_state(s, i, EG_STATION_WAITING);
    sl->ph = PH_WAITING;
    sl->wait = between(s, 2, 15);
    return;
  }
}

static void on_tick(uv_timer_t *t) {
  station *s = t->data;
  for (size_t i = 0; i < s->nslots && !s->paused; i++) {
    const unsigned before = s->units;
    step_slot(s, i);
    if (s->units == before) continue;
    if (s->next_pause < s->npauses && s->units >= s->pauses[s->next_pause]) {
      s->paused = true;
      uv_timer_stop(&s->tick);
      say(s, "checkpoint", (int)++s->next_pause);
    }
    if (!s->finished && s->units_goal && s->units >= s->units_goal) {
      /* Stop here, so the tally stays what the dashboard shows. */
      s->finished = s->paused = true;
      uv_timer_stop(&s->tick);
      say(s, "finished", 0);
    }
  }
}

/* ------------------------------------------------------------ life cycle */

static void closed(uv_handle_t *h) { (void)h; }

static void dash_closed(void *ctx) { (void)ctx; }

static void shut(station *s) {
  if (s->closing) return;
  s->closing = true;
  uv_close((uv_handle_t *)&s->tick, closed);
  if (s->in_open) uv_close((uv_handle_t *)&s->in, closed);
  uv_close((uv_handle_t *)&s->sigint, closed);
  uv_close((uv_handle_t *)&s->sigterm, closed);
  eg_dash_close(s->dash, dash_closed, NULL);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)sig;
  shut(h->data);
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  station *s = h->data;
  (void)hint;
  *b = uv_buf_init(s->inbuf + s->inlen, (unsigned)(sizeof s->inbuf - 1 - s->inlen));
}

static void on_line(station *s, const char *line) {
  if (strcmp(line, "continue") == 0 && s->paused && !s->finished) {
    s->paused = false;
    uv_timer_start(&s->tick, on_tick, s->tick_ms, s->tick_ms);
  } else if (strcmp(line, "quit") == 0) {
    shut(s);
  }
}

static void in_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  station *s = st->data;
  (void)b;
  if (n < 0) {
    shut(s); /* the test went away: so do we */
    return;
  }
  s->inlen += (size_t)n;
  s->inbuf[s->inlen] = '\0';
  char *nl;
  while ((nl = strchr(s->inbuf, '\n'))) {
    *nl = '\0';
    on_line(s, s->inbuf);
    if (s->closing) return;
    memmove(s->inbuf, nl + 1, strlen(nl + 1) + 1);
    s->inlen = strlen(s->inbuf);
  }
  if (s->inlen == sizeof s->inbuf - 1) s->inlen = 0; /* an over-long line: dropped */
}

static int usage(void) {
  fprintf(stderr, "usage: fakestation [--slots N] [--units U] [--seed S] [--tick MS] [--port P] [--address A] "
                  "[--token T] [--pause-at U1,U2,...]\n");
  return 2;
}

int main(int argc, char **argv) {
  station s;
  memset(&s, 0, sizeof s);
  size_t nslots = 16;
  unsigned seed = 1;
  int port = 0;
  const char *address = NULL, *token = NULL;
  s.tick_ms = 15;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return usage();
    i++;
    if (strcmp(a, "--slots") == 0) nslots = strtoul(v, NULL, 10);
    else if (strcmp(a, "--units") == 0) s.units_goal = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--seed") == 0) seed = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--tick") == 0) s.tick_ms = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--port") == 0) port = atoi(v);
    else if (strcmp(a, "--address") == 0) address = v;
    else if (strcmp(a, "--token") == 0) token = v;
    else if (strcmp(a, "--pause-at") == 0) {
      for (char *p = (char *)v; *p && s.npauses < MAX_PAUSES;) {
        s.pauses[s.npauses++] = (unsigned)strtoul(p, &p, 10);
        if (*p == ',') p++;
        else if (*p) return usage();
      }
    } else return usage();
  }
  if (nslots == 0 || nslots > 1000 || s.tick_ms == 0) return usage();
  s.rng = seed ? seed : 1;
  s.nslots = nslots;
  s.slots = calloc(nslots, sizeof *s.slots);
  const char **labels = calloc(nslots, sizeof *labels);
  if (!s.slots || !labels) return 3;
  /* Rack rows of 8: A1..A8, B1..B8, ... */
  for (size_t i = 0; i < nslots; i++) {
    snprintf(s.slots[i].label, sizeof s.slots[i].label, "%c%zu", (char)('A' + (i / 8) % 26), i % 8 + 1);
    labels[i] = s.slots[i].label;
    s.slots[i].wait = between(&s, 1, 10);
    s.slots[i].state = EG_STATION_WAITING;
    s.slots[i].recorded = true;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  s.loop = &loop;
  const eg_dash_options o = {
    .station = "fake-rack",
    .labels = labels,
    .nslots = nslots,
    .address = address,
    .port = port,
    .token = token,
  };
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_dash_open(&s.dash, &loop, &o, &f) != EG_OK) {
    fprintf(stderr, "fakestation: %s\n", f.msg);
    return 2;
  }
  free(labels);
  s.started_ms = now_ms();
  printf("{\"event\":\"listening\",\"url\":\"%s\",\"port\":%d,\"started_ms\":%lld}\n", eg_dash_url(s.dash),
         eg_dash_port(s.dash), (long long)s.started_ms);
  fflush(stdout);

  uv_timer_init(&loop, &s.tick);
  s.tick.data = &s;
  uv_timer_start(&s.tick, on_tick, s.tick_ms, s.tick_ms);
  uv_signal_init(&loop, &s.sigint);
  uv_signal_init(&loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  if (uv_guess_handle(0) == UV_NAMED_PIPE) {
    /* A test drives us (a TTY is left alone: Ctrl-C stops a person's run). */
    if (uv_pipe_init(&loop, &s.in, 0) == 0 && uv_pipe_open(&s.in, 0) == 0) {
      s.in.data = &s;
      s.in_open = true;
      uv_read_start((uv_stream_t *)&s.in, in_alloc, in_read);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop);
  free(s.slots);
  if (rc != 0) {
    fprintf(stderr, "fakestation: handles left open at exit\n");
    return 3;
  }
  return 0;
}
