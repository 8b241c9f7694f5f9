/* report_model.c - units, identity, yields, the failure Pareto and stage
 * times from the log's rows (definitions in report.h). No output here. */
#include "report.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---------------------------------------------------------------- parsing */

bool eg_rep_normalize_mac(const char *in, char out[18]) {
  int nd = 0;
  char digits[12];
  for (const char *p = in; *p; p++) {
    const char c = (char)tolower((unsigned char)*p);
    if (isxdigit((unsigned char)c)) {
      if (nd == 12) return false;
      digits[nd++] = c;
    } else if (*p != ':' && *p != '-' && *p != '.') {
      return false;
    }
  }
  if (nd != 12) return false;
  for (int i = 0, k = 0; i < 6; i++) {
    out[k++] = digits[2 * i], out[k++] = digits[2 * i + 1];
    out[k++] = i < 5 ? ':' : '\0';
  }
  return true;
}

static void iso(int64_t ms, char out[32]) {
  const time_t sec = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  const size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

bool eg_rep_parse_time(const char *in, int64_t now_ms, char out[32]) {
  /* A duration back from now: digits and one unit. */
  static const struct { char unit; int64_t ms; } units[] = {
    {'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 7 * 86400000LL},
  };
  char *end = NULL;
  if (isdigit((unsigned char)in[0])) {
    const long long n = strtoll(in, &end, 10);
    if (end && end[0] && !end[1] && end - in <= 6)
      for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (end[0] == units[i].unit) {
          iso(now_ms - n * units[i].ms, out);
          return true;
        }
  }
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  int y, mo, d, h = 0, mi = 0, s = 0, used = 0;
  const size_t len = strlen(in);
  if (sscanf(in, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10) return false;
  if (len > 10) {
    int used2 = 0;
    if ((in[10] != 'T' && in[10] != ' ') || sscanf(in + 11, "%2d:%2d%n", &h, &mi, &used2) != 2 || used2 != 5)
      return false;
    const char *rest = in + 16;
    if (*rest == ':' && sscanf(rest + 1, "%2d", &s) == 1 && isdigit((unsigned char)rest[1]) &&
        isdigit((unsigned char)rest[2]))
      rest += 3;
    if (*rest == 'Z') rest++;
    if (*rest) return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = s;
  const time_t t = timegm(&tm);
  if (t == (time_t)-1) return false;
  iso((int64_t)t * 1000, out);
  return true;
}

/* Compare ignoring case, '-' and '_'. */
bool eg_rep_chip_eq(const char *a, const char *b) {
  if (!a || !b) return false;
  for (;;) {
    while (*a == '-' || *a == '_') a++;
    while (*b == '-' || *b == '_') b++;
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    if (!*a) return true;
    a++, b++;
  }
}

/* ---------------------------------------------------------------- filters */

static bool ieq(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

bool eg_rep_run_matches(const eg_log_run *r, const eg_rep_filter *flt) {
  if (flt->station && !ieq(flt->station, r->station)) return false;
  if (flt->manifest && (!r->manifest_sha256 || strncmp(r->manifest_sha256, flt->manifest, strlen(flt->manifest)) != 0))
    return false;
  if (flt->nruns) {
    bool hit = false;
    for (size_t i = 0; i < flt->nruns; i++) hit = hit || flt->runs[i] == r->id;
    if (!hit) return false;
  }
  /* A run overlaps [since, until): it began before until and had not ended
   * before since (a station session may span days). */
  if (flt->until[0] && strcmp(r->started_at, flt->until) >= 0) return false;
  if (flt->since[0] && r->ended_at && strcmp(r->ended_at, flt->since) < 0) return false;
  return true;
}

static bool in_time(const char *t, const eg_rep_filter *flt) {
  if (flt->since[0] && (!t || strcmp(t, flt->since) < 0)) return false;
  if (flt->until[0] && (!t || strcmp(t, flt->until) >= 0)) return false;
  return true;
}

bool eg_rep_unit_matches(const eg_rep *rep, const eg_rep_unit *u, const eg_rep_filter *flt) {
  if (rep->selected && !rep->selected[u->run]) return false;
  if (flt->slot && !ieq(flt->slot, u->slot)) return false;
  if (flt->mac[0] && (!u->mac || strcmp(u->mac, flt->mac) != 0)) return false;
  if (flt->chip && !eg_rep_chip_eq(flt->chip, u->chip)) return false;
  if (flt->result && !ieq(flt->result, u->an->result)) return false;
  return in_time(u->a0->started_at, flt);
}

bool eg_rep_attempt_matches(const eg_rep *rep, size_t k, const eg_rep_filter *flt) {
  const eg_rep_unit *u = &rep->units[rep->unit_of[k]];
  const eg_log_attempt *a = &rep->log.attempts[k];
  if (rep->selected && !rep->selected[u->run]) return false;
  if (flt->slot && !ieq(flt->slot, a->slot)) return false;
  if (flt->mac[0] && (!u->mac || strcmp(u->mac, flt->mac) != 0)) return false;
  if (flt->chip && !eg_rep_chip_eq(flt->chip, a->chip ? a->chip : u->chip)) return false;
  if (flt->result && !ieq(flt->result, a->result)) return false;
  return in_time(a->started_at, flt);
}

/* ---------------------------------------------------------------- units */

static int cmp_run_key(const eg_log_run *r, int db, int64_t id) {
  return r->db != db ? (r->db < db ? -1 : 1) : r->id != id ? (r->id < id ? -1 : 1) : 0;
}

/* Index of run (db, id) in log.runs (sorted by db, id); SIZE_MAX if absent. */
static size_t run_index(const eg_log *log, int db, int64_t id) {
  size_t lo = 0, hi = log->nruns;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const int c = cmp_run_key(&log->runs[mid], db, id);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return (size_t)-1;
}

/* qsort has no context argument: attempts carry their run index here. */
typedef struct keyed {
  size_t run, att;
  const char *slot;
  int64_t id;
} keyed;

static int cmp_keyed(const void *x, const void *y) {
  const keyed *a = x, *b = y;
  if (a->run != b->run) return a->run < b->run ? -1 : 1;
  const int c = strcmp(a->slot, b->slot);
  if (c) return c;
  return a->id < b->id ? -1 : a->id > b->id;
}

const eg_log_attempt *eg_rep_attempt(const eg_rep *rep, const eg_rep_unit *u, size_t k) {
  return &rep->log.attempts[rep->order[u->first + k]];
}

/* The units of (run, slot), in order: [*lo, *hi). */
static void slot_units(const eg_rep *rep, size_t run, const char *slot, size_t *lo, size_t *hi) {
  size_t a = 0, b = rep->nunits;
  while (a < b) { /* first unit >= (run, slot) */
    const size_t m = a + (b - a) / 2;
    const eg_rep_unit *u = &rep->units[m];
    if (u->run < run || (u->run == run && strcmp(u->slot, slot) < 0)) a = m + 1;
    else b = m;
  }
  *lo = a;
  while (a < rep->nunits && rep->units[a].run == run && strcmp(rep->units[a].slot, slot) == 0) a++;
  *hi = a;
}

/* A retry that chose its units by slot flashed the same seated boards. */
static bool slot_retry(const eg_log_run *r) {
  return r->parent_run_id > 0 && (!r->retry_mode || strcmp(r->retry_mode, "slot") == 0);
}

/* Lend MACs along retry chains until nothing changes: a unit without a MAC
 * takes the one of the same slot's last unit in the run it retries, or of
 * the same slot's first unit in a run that retries its run by slot. */
static void infer_macs(eg_rep *rep) {
  const eg_log *log = &rep->log;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < rep->nunits; i++) {
      eg_rep_unit *u = &rep->units[i];
      if (u->mac) continue;
      const eg_log_run *r = &log->runs[u->run];
      size_t lo, hi;
      if (slot_retry(r)) {
        const size_t p = run_index(log, r->db, r->parent_run_id);
        if (p != (size_t)-1) {
          slot_units(rep, p, u->slot, &lo, &hi);
          if (hi > lo && rep->units[hi - 1].mac) {
            u->mac = rep->units[hi - 1].mac, u->mac_inferred = true, changed = true;
            continue;
          }
        }
      }
      for (size_t c = 0; c < log->nruns && !u->mac; c++) {
        const eg_log_run *cr = &log->runs[c];
        if (cr->db != r->db || cr->parent_run_id != r->id || !slot_retry(cr)) continue;
        slot_units(rep, c, u->slot, &lo, &hi);
        if (hi > lo && rep->units[lo].mac) u->mac = rep->units[lo].mac, u->mac_inferred = true, changed = true;
      }
    }
  }
}

eg_err eg_rep_build(eg_rep *rep) {
  eg_log *log = &rep->log;
  const size_t n = log->nattempts;
  keyed *k = calloc(n ? n : 1, sizeof *k);
  rep->order = calloc(n ? n : 1, sizeof *rep->order);
  rep->unit_of = calloc(n ? n : 1, sizeof *rep->unit_of);
  rep->units = calloc(n ? n : 1, sizeof *rep->units);
  if (!k || !rep->order || !rep->unit_of || !rep->units) {
    free(k);
    return EG_NOMEM;
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const eg_log_attempt *a = &log->attempts[i];
    const size_t r = run_index(log, a->db, a->run_id);
    if (r == (size_t)-1) continue; /* the foreign key forbids it; skip rather than guess */
    k[m++] = (keyed){r, i, a->slot ? a->slot : "", a->id};
  }
  qsort(k, m, sizeof *k, cmp_keyed);
  rep->nunits = 0;
  for (size_t i = 0; i < m; i++) {
    rep->order[i] = k[i].att;
    const eg_log_attempt *a = &log->attempts[k[i].att];
    eg_rep_unit *u = rep->nunits ? &rep->units[rep->nunits - 1] : NULL;
    const bool same_slot = u && u->run == k[i].run && strcmp(u->slot, k[i].slot) == 0;
    const bool new_board = same_slot && (a->attempt == 1 || (a->mac && u->mac && strcmp(a->mac, u->mac) != 0));
    if (!same_slot || new_board) {
      u = &rep->units[rep->nunits++];
      *u = (eg_rep_unit){.run = k[i].run, .slot = k[i].slot, .first = i, .a0 = a};
    }
    u->n++;
    u->an = a;
    if (a->mac) u->mac = a->mac;
    if (a->chip) u->chip = a->chip;
    if (a->flash_mfr) u->flash_mfr = a->flash_mfr, u->flash_device = a->flash_device;
    rep->unit_of[k[i].att] = rep->nunits - 1;
  }
  free(k);
  infer_macs(rep);
  return EG_OK;
}

static bool any_run_filter(const eg_rep_filter *flt) {
  return flt->nruns || flt->last || flt->since[0] || flt->until[0];
}

eg_err eg_rep_load(eg_rep *rep, eg_db *db, const eg_rep_filter *flt, eg_fault *f) {
  memset(rep, 0, sizeof *rep);
  eg_err r = eg_db_load_runs(db, &rep->log, f);
  if (r != EG_OK) return r;
  const eg_log *log = &rep->log;
  const size_t nr = log->nruns;
  rep->selected = calloc(nr ? nr : 1, sizeof *rep->selected);
  rep->loaded = calloc(nr ? nr : 1, sizeof *rep->loaded);
  size_t *pick = calloc(nr ? nr : 1, sizeof *pick);
  if (!rep->selected || !rep->loaded || !pick) {
    free(pick);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  /* Matching runs, newest first (start time; ids break ties within a file). */
  size_t np = 0;
  for (size_t i = 0; i < nr; i++)
    if (eg_rep_run_matches(&log->runs[i], flt)) pick[np++] = i;
  for (size_t i = 1; i < np; i++) /* insertion sort: runs are few and nearly sorted */
    for (size_t j = i; j > 0; j--) {
      const eg_log_run *a = &log->runs[pick[j - 1]], *b = &log->runs[pick[j]];
      const int c = strcmp(a->started_at, b->started_at);
      if (c > 0 || (c == 0 && a->id > b->id)) break;
      const size_t t = pick[j - 1];
      pick[j - 1] = pick[j], pick[j] = t;
    }
  size_t keep = np;
  if (flt->last && (size_t)flt->last < keep) keep = (size_t)flt->last;
  if (flt->latest_only && !any_run_filter(flt) && keep > 1) keep = 1;
  for (size_t i = 0; i < keep; i++) rep->selected[pick[i]] = rep->loaded[pick[i]] = true;
  free(pick);
  /* Their retry chains, both ways, for identity. */
  for (bool more = true; more;) {
    more = false;
    for (size_t i = 0; i < nr; i++) {
      const eg_log_run *ri = &log->runs[i];
      if (!ri->parent_run_id) continue;
      const size_t p = run_index(log, ri->db, ri->parent_run_id);
      if (p == (size_t)-1 || rep->loaded[p] == rep->loaded[i]) continue;
      rep->loaded[p] = rep->loaded[i] = true;
      more = true;
    }
  }
  if ((r = eg_db_load_attempts(db, &rep->log, rep->loaded, f)) != EG_OK) return r;
  if (eg_rep_build(rep) != EG_OK) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  return EG_OK;
}

void eg_rep_free(eg_rep *rep) {
  eg_log_free(&rep->log);
  free(rep->selected), free(rep->loaded), free(rep->order), free(rep->units), free(rep->unit_of);
  memset(rep, 0, sizeof *rep);
}

/* ---------------------------------------------------------------- numbers */

static bool is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

bool eg_rep_unit_counted(const eg_rep_unit *u) {
  return is(u->an->result, "pass") || is(u->an->result, "fail") || is(u->an->result, "aborted");
}
bool eg_rep_unit_first_pass(const eg_rep_unit *u) { return is(u->a0->result, "pass"); }
bool eg_rep_unit_final_pass(const eg_rep_unit *u) { return is(u->an->result, "pass"); }

void eg_rep_yield_add(eg_rep_yield *y, const eg_rep_unit *u) {
  if (!eg_rep_unit_counted(u)) {
    if (is(u->an->result, "skipped")) y->skipped++;
    else y->open++;
    return;
  }
  y->units++;
  y->first_pass += eg_rep_unit_first_pass(u);
  y->final_pass += eg_rep_unit_final_pass(u);
  y->attempts += (long)u->n;
}

double eg_rep_pct(long num, long den) { return den ? 100.0 * (double)num / (double)den : NAN; }

static int cmp_i64(const void *x, const void *y) {
  const int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return a < b ? -1 : a > b;
}

void eg_rep_percentiles(int64_t *v, size_t n, double *median, int64_t *p95) {
  qsort(v, n, sizeof *v, cmp_i64);
  *median = n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
  size_t rank = (size_t)ceil(0.95 * (double)n); /* nearest rank, 1-based */
  if (rank < 1) rank = 1;
  *p95 = v[rank - 1];
}

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static int cmp_pareto(const void *x, const void *y) {
  const eg_rep_pareto *a = x, *b = y;
  if (a->attempts != b->attempts) return a->attempts > b->attempts ? -1 : 1;
  /* Ties: a stable, readable order. */
  const char *ka[3] = {a->stage, a->error, a->status}, *kb[3] = {b->stage, b->error, b->status};
  for (int i = 0; i < 3; i++) {
    const int c = strcmp(ka[i] ? ka[i] : "", kb[i] ? kb[i] : "");
    if (c) return c;
  }
  return 0;
}

eg_err eg_rep_failures(const eg_rep *rep, const eg_rep_filter *flt, eg_rep_pareto **out, size_t *nout) {
  *out = NULL, *nout = 0;
  eg_rep_pareto *p = NULL;
  size_t n = 0;
  long total = 0;
  for (size_t i = 0; i < rep->nunits; i++) {
    const eg_rep_unit *u = &rep->units[i];
    if (!eg_rep_unit_matches(rep, u, flt)) continue;
    for (size_t k = 0; k < u->n; k++) {
      const eg_log_attempt *a = eg_rep_attempt(rep, u, k);
      if (!is(a->result, "fail") && !is(a->result, "aborted")) continue;
      total++;
      size_t e = 0;
      while (e < n && !(same(p[e].stage, a->fail_stage) && same(p[e].error, a->error_code) &&
                        same(p[e].status, a->status_bytes)))
        e++;
      if (e == n) {
        eg_rep_pareto *q = realloc(p, (n + 1) * sizeof *q);
        if (!q) return free(p), EG_NOMEM;
        p = q;
        p[n++] = (eg_rep_pareto){.stage = a->fail_stage, .error = a->error_code, .status = a->status_bytes};
      }
      p[e].attempts++;
      p[e].message = a->message;
      /* A unit counts once per group: at its first attempt in the group. */
      bool seen = false;
      for (size_t j = 0; j < k && !seen; j++) {
        const eg_log_attempt *b = eg_rep_attempt(rep, u, j);
        seen = (is(b->result, "fail") || is(b->result, "aborted")) && same(b->fail_stage, a->fail_stage) &&
               same(b->error_code, a->error_code) && same(b->status_bytes, a->status_bytes);
      }
      p[e].units += !seen;
    }
  }
  if (n) qsort(p, n, sizeof *p, cmp_pareto);
  long run = 0;
  for (size_t e = 0; e < n; e++) {
    run += p[e].attempts;
    p[e].share = eg_rep_pct(p[e].attempts, total);
    p[e].cumulative = eg_rep_pct(run, total);
  }
  *out = p, *nout = n;
  return EG_OK;
}

/* ---------------------------------------------------------------- groups */

/* The run of unit u's key for a grouping. */
static void group_key(const eg_rep *rep, const eg_rep_unit *u, eg_rep_section by, char key[64]) {
  const eg_log_run *r = &rep->log.runs[u->run];
  switch (by) {
  case EG_REP_SEC_STATION: snprintf(key, 64, "%s", r->station ? r->station : "-"); return;
  case EG_REP_SEC_DAY: snprintf(key, 64, "%.10s", u->a0->started_at ? u->a0->started_at : "-"); return;
  case EG_REP_SEC_RUN:
  case EG_REP_SEC_FAILURES:
  case EG_REP_SEC_STAGES:
  case EG_REP_SEC_ATTEMPTS:
  case EG_REP_SEC__COUNT: break;
  }
  snprintf(key, 64, "%d:%lld", r->db, (long long)r->id);
}

static int cmp_group_key(const void *x, const void *y) {
  return strcmp(((const eg_rep_group *)x)->key, ((const eg_rep_group *)y)->key);
}

static int cmp_group_run(const void *x, const void *y) {
  const eg_rep_group *a = x, *b = y;
  return a->run < b->run ? -1 : a->run > b->run;
}

eg_err eg_rep_groups(const eg_rep *rep, const eg_rep_filter *flt, eg_rep_section by, eg_rep_group **out, size_t *nout) {
  *out = NULL, *nout = 0;
  eg_rep_group *g = NULL;
  size_t n = 0;
  /* Every selected run is a group of its own, units or not. */
  if (by == EG_REP_SEC_RUN)
    for (size_t i = 0; i < rep->log.nruns; i++) {
      if (!rep->selected || !rep->selected[i]) continue;
      eg_rep_group *q = realloc(g, (n + 1) * sizeof *q);
      if (!q) return free(g), EG_NOMEM;
      g = q;
      g[n] = (eg_rep_group){.run = i, .runs = 1};
      snprintf(g[n].key, sizeof g[n].key, "%d:%lld", rep->log.runs[i].db, (long long)rep->log.runs[i].id);
      n++;
    }
  for (size_t i = 0; i < rep->nunits; i++) {
    const eg_rep_unit *u = &rep->units[i];
    if (!eg_rep_unit_matches(rep, u, flt)) continue;
    char key[64];
    group_key(rep, u, by, key);
    size_t e = 0;
    while (e < n && strcmp(g[e].key, key) != 0) e++;
    if (e == n) {
      eg_rep_group *q = realloc(g, (n + 1) * sizeof *q);
      if (!q) return free(g), EG_NOMEM;
      g = q;
      g[n] = (eg_rep_group){.run = u->run};
      memcpy(g[n].key, key, sizeof key);
      n++;
    }
    eg_rep_yield_add(&g[e].y, u);
  }
  /* Runs per station/day group: distinct runs among its units. */
  if (by != EG_REP_SEC_RUN)
    for (size_t e = 0; e < n; e++) {
      size_t last = (size_t)-1;
      for (size_t i = 0; i < rep->nunits; i++) {
        const eg_rep_unit *u = &rep->units[i];
        char key[64];
        if (!eg_rep_unit_matches(rep, u, flt)) continue;
        group_key(rep, u, by, key);
        if (strcmp(key, g[e].key) != 0 || u->run == last) continue;
        g[e].runs++, last = u->run; /* units are ordered by run */
      }
    }
  if (n) qsort(g, n, sizeof *g, by == EG_REP_SEC_RUN ? cmp_group_run : cmp_group_key);
  /* Runs in time order, not file order. */
  if (by == EG_REP_SEC_RUN)
    for (size_t i = 1; i < n; i++)
      for (size_t j = i; j > 0 && strcmp(rep->log.runs[g[j - 1].run].started_at, rep->log.runs[g[j].run].started_at) > 0;
           j--) {
        const eg_rep_group t = g[j - 1];
        g[j - 1] = g[j], g[j] = t;
      }
  *out = g, *nout = n;
  return EG_OK;
}

/* ---------------------------------------------------------------- stages */

eg_err eg_rep_stage_stats(const eg_rep *rep, const eg_rep_filter *flt, eg_rep_stage_stat **out, size_t *nout) {
  *out = NULL, *nout = 0;
  eg_rep_stage_stat *s = calloc(EG_STAGE__COUNT + 1, sizeof *s);
  if (!s) return EG_NOMEM;
  size_t n = 0;
  for (int st = 1; st <= EG_STAGE__COUNT; st++) { /* stage NONE is the wait before a unit starts */
    const bool total = st == EG_STAGE__COUNT;
    int64_t *v = NULL;
    size_t nv = 0;
    for (size_t i = 0; i < rep->nunits; i++) {
      const eg_rep_unit *u = &rep->units[i];
      if (!eg_rep_unit_matches(rep, u, flt)) continue;
      for (size_t k = 0; k < u->n; k++) {
        const eg_log_attempt *a = eg_rep_attempt(rep, u, k);
        const int64_t ms = total ? a->duration_ms : a->stage_ms[st];
        if (!is(a->result, "pass") || ms <= 0) continue;
        int64_t *q = realloc(v, (nv + 1) * sizeof *q);
        if (!q) {
          free(v);
          eg_rep_stage_stats_free(s, n);
          return EG_NOMEM;
        }
        v = q;
        v[nv++] = ms;
      }
    }
    if (!nv) continue;
    eg_rep_stage_stat *e = &s[n++];
    e->stage = (eg_stage)st;
    e->n = nv;
    e->values = v;
    eg_rep_percentiles(v, nv, &e->median, &e->p95);
    e->max = v[nv - 1];
  }
  *out = s, *nout = n;
  return EG_OK;
}

void eg_rep_stage_stats_free(eg_rep_stage_stat *s, size_t n) {
  for (size_t i = 0; s && i < n; i++) free(s[i].values);
  free(s);
}
