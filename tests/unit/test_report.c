/* test_report.c - the report model (src/report_model.c) on synthetic rows,
 * every number worked out by hand here: units, first-pass and final yield
 * per run/station/day, attempts per unit, the failure Pareto, median and
 * p95; identity through retry chains; filters and the time parser. Then the
 * read-only opening (src/db.c): missing files, directories, FIFOs, junk, a
 * newer schema; a schema-1 file reported without being changed; two files
 * at once; and the views' CSV/JSON output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

/* ------------------------------------------------------------ synthetic log */

typedef struct att_spec {
  int64_t run;
  const char *slot;
  int attempt;
  const char *mac, *result, *stage, *error, *status, *started;
  int64_t duration, write_ms;
} att_spec;

typedef struct run_spec {
  int db;
  int64_t id, parent;
  const char *mode, *station, *started;
} run_spec;

static void fill(eg_rep *rep, const run_spec *runs, size_t nr, const att_spec *att, size_t na) {
  memset(rep, 0, sizeof *rep);
  rep->log.runs = calloc(nr, sizeof *rep->log.runs);
  rep->log.attempts = calloc(na ? na : 1, sizeof *rep->log.attempts);
  rep->selected = calloc(nr, sizeof *rep->selected);
  for (size_t i = 0; i < nr; i++) {
    rep->log.runs[i] = (eg_log_run){.db = runs[i].db, .id = runs[i].id, .parent_run_id = runs[i].parent,
                                    .retry_mode = runs[i].mode, .station = runs[i].station,
                                    .started_at = runs[i].started, .status = "finished", .kind = "flash"};
    rep->selected[i] = true;
  }
  rep->log.nruns = nr;
  for (size_t i = 0; i < na; i++) {
    eg_log_attempt *a = &rep->log.attempts[i];
    memset(a, 0, sizeof *a);
    a->id = (int64_t)i + 1;
    a->run_id = att[i].run;
    a->slot = att[i].slot;
    a->attempt = att[i].attempt;
    a->mac = att[i].mac;
    a->result = att[i].result;
    a->fail_stage = att[i].stage;
    a->error_code = att[i].error;
    a->status_bytes = att[i].status;
    a->started_at = att[i].started ? att[i].started : "2026-12-01T08:00:00.000Z";
    a->duration_ms = att[i].duration;
    a->stage_ms[EG_STAGE_WRITE] = att[i].write_ms;
    a->chip = "ESP32-C3";
  }
  rep->log.nattempts = na;
  assert_int_equal(eg_rep_build(rep), EG_OK);
}

static void unfill(eg_rep *rep) {
  free(rep->log.runs), free(rep->log.attempts);
  rep->log.runs = NULL, rep->log.attempts = NULL;
  eg_rep_free(rep);
}

#define D1 "2026-12-01T08:00:00.000Z"
#define D2 "2026-12-02T09:30:00.000Z"

static const run_spec yield_runs[] = {
  {0, 1, 0, NULL, "S", D1},
  {0, 2, 0, NULL, "T", D2},
};
static const att_spec yield_att[] = {
  {1, "A", 1, "24:0a:c4:00:00:01", "pass", NULL, NULL, NULL, NULL, 100, 50},
  {1, "B", 1, "24:0a:c4:00:00:02", "fail", "write", "DEVICE_STATUS", "c4 00", NULL, 40, 0},
  {1, "B", 2, "24:0a:c4:00:00:02", "pass", NULL, NULL, NULL, NULL, 300, 70},
  {1, "C", 1, NULL, "fail", "sync", "NO_SYNC", NULL, NULL, 10, 0},
  {1, "C", 2, NULL, "fail", "sync", "NO_SYNC", NULL, NULL, 10, 0},
  {1, "D", 1, "24:0a:c4:00:00:04", "fail", "verify", "MD5_MISMATCH", NULL, NULL, 90, 0},
  {1, "D", 2, "24:0a:c4:00:00:04", "aborted", "write", "ABORTED", NULL, NULL, 20, 0},
  {1, "E", 1, "24:0a:c4:00:00:05", "skipped", NULL, NULL, NULL, NULL, 5, 0},
  {1, "F", 1, NULL, "in_progress", NULL, NULL, NULL, NULL, -1, 0},
  {2, "X", 1, "24:0a:c4:00:00:08", "pass", NULL, NULL, NULL, D2, 200, 90},
  {2, "Y", 1, "24:0a:c4:00:00:09", "fail", "sync", "NO_SYNC", NULL, D2, 10, 0},
};

static const eg_rep_group *find_group(const eg_rep_group *g, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(g[i].key, key) == 0) return &g[i];
  fail_msg("no group %s", key);
  return NULL;
}

static void expect_yield(const eg_rep_yield *y, long units, long first, long final, long attempts) {
  if (y->units != units || y->first_pass != first || y->final_pass != final || y->attempts != attempts)
    fail_msg("yield: got units %ld first %ld final %ld attempts %ld, want %ld %ld %ld %ld", y->units, y->first_pass,
             y->final_pass, y->attempts, units, first, final, attempts);
}

static void test_units_and_yields(void **state) {
  (void)state;
  eg_rep rep;
  fill(&rep, yield_runs, 2, yield_att, sizeof yield_att / sizeof yield_att[0]);
  assert_int_equal(rep.nunits, 8); /* A..F in run 1, X and Y in run 2 */
  eg_rep_filter flt = {0};
  eg_rep_group *g;
  size_t n;
  /* Run 1: counted A, B, C, D (E skipped, F in progress); first pass A;
   * final A and B; attempts 1 + 2 + 2 + 2. */
  assert_int_equal(eg_rep_groups(&rep, &flt, EG_REP_SEC_RUN, &g, &n), EG_OK);
  assert_int_equal(n, 2);
  expect_yield(&find_group(g, n, "0:1")->y, 4, 1, 2, 7);
  assert_int_equal(find_group(g, n, "0:1")->y.skipped, 1);
  assert_int_equal(find_group(g, n, "0:1")->y.open, 1);
  expect_yield(&find_group(g, n, "0:2")->y, 2, 1, 1, 2);
  assert_true(fabs(eg_rep_pct(1, 4) - 25.0) < 1e-9);
  assert_true(isnan(eg_rep_pct(0, 0)));
  free(g);
  assert_int_equal(eg_rep_groups(&rep, &flt, EG_REP_SEC_STATION, &g, &n), EG_OK);
  assert_int_equal(n, 2);
  expect_yield(&find_group(g, n, "S")->y, 4, 1, 2, 7);
  expect_yield(&find_group(g, n, "T")->y, 2, 1, 1, 2);
  free(g);
  assert_int_equal(eg_rep_groups(&rep, &flt, EG_REP_SEC_DAY, &g, &n), EG_OK);
  assert_int_equal(n, 2);
  assert_string_equal(g[0].key, "2026-12-01");
  expect_yield(&g[0].y, 4, 1, 2, 7);
  assert_string_equal(g[1].key, "2026-12-02");
  expect_yield(&g[1].y, 2, 1, 1, 2);
  free(g);
  /* A filter narrows the units: failed outcome only -> C, D, Y. */
  flt.result = "fail";
  assert_int_equal(eg_rep_groups(&rep, &flt, EG_REP_SEC_STATION, &g, &n), EG_OK);
  expect_yield(&find_group(g, n, "S")->y, 1, 0, 0, 2); /* C; D ended aborted */
  expect_yield(&find_group(g, n, "T")->y, 1, 0, 0, 1);
  free(g);
  unfill(&rep);
}

static void test_pareto(void **state) {
  (void)state;
  eg_rep rep;
  fill(&rep, yield_runs, 1, yield_att, 9); /* run 1 only */
  eg_rep_filter flt = {0};
  eg_rep_pareto *p;
  size_t n;
  assert_int_equal(eg_rep_failures(&rep, &flt, &p, &n), EG_OK);
  /* Failed/aborted attempts: B1, C1, C2, D1, D2 = 5. */
  assert_int_equal(n, 4);
  static const struct { const char *stage, *error, *status; long att, units; double share, cum; } want[] = {
    {"sync", "NO_SYNC", NULL, 2, 1, 40.0, 40.0},
    {"verify", "MD5_MISMATCH", NULL, 1, 1, 20.0, 60.0},
    {"write", "ABORTED", NULL, 1, 1, 20.0, 80.0},
    {"write", "DEVICE_STATUS", "c4 00", 1, 1, 20.0, 100.0},
  };
  for (size_t i = 0; i < n; i++) {
    if (strcmp(p[i].stage, want[i].stage) || strcmp(p[i].error, want[i].error) ||
        (want[i].status ? !p[i].status || strcmp(p[i].status, want[i].status) : p[i].status != NULL) ||
        p[i].attempts != want[i].att || p[i].units != want[i].units || fabs(p[i].share - want[i].share) > 1e-9 ||
        fabs(p[i].cumulative - want[i].cum) > 1e-9)
      fail_msg("pareto[%zu]: got %s/%s/%s %ld %ld %.2f %.2f, want %s/%s/%s %ld %ld %.2f %.2f", i, p[i].stage,
               p[i].error, p[i].status ? p[i].status : "-", p[i].attempts, p[i].units, p[i].share, p[i].cumulative,
               want[i].stage, want[i].error, want[i].status ? want[i].status : "-", want[i].att, want[i].units,
               want[i].share, want[i].cum);
  }
  free(p);
  unfill(&rep);
}

static void test_percentiles(void **state) {
  (void)state;
  double med;
  int64_t p95;
  int64_t a[] = {5, 1, 9, 3, 7, 2, 8, 4, 6, 10};
  eg_rep_percentiles(a, 10, &med, &p95);
  assert_true(med == 5.5);        /* (5 + 6) / 2 */
  assert_int_equal(p95, 10);      /* rank ceil(9.5) = 10 */
  int64_t b[20];
  for (int i = 0; i < 20; i++) b[i] = 20 - i;
  eg_rep_percentiles(b, 20, &med, &p95);
  assert_true(med == 10.5);
  assert_int_equal(p95, 19);      /* rank ceil(19.0) = 19 */
  int64_t c[] = {3, 1, 2};
  eg_rep_percentiles(c, 3, &med, &p95);
  assert_true(med == 2.0);
  assert_int_equal(p95, 3);       /* rank ceil(2.85) = 3 */
  int64_t d[] = {42};
  eg_rep_percentiles(d, 1, &med, &p95);
  assert_true(med == 42.0);
  assert_int_equal(p95, 42);

  /* Stage times over passed attempts: write 50 (A) and 70 (B2); total 100 and 300. */
  eg_rep rep;
  fill(&rep, yield_runs, 1, yield_att, 9);
  eg_rep_filter flt = {0};
  eg_rep_stage_stat *st;
  size_t n;
  assert_int_equal(eg_rep_stage_stats(&rep, &flt, &st, &n), EG_OK);
  assert_int_equal(n, 2);
  assert_int_equal(st[0].stage, EG_STAGE_WRITE);
  assert_int_equal(st[0].n, 2);
  assert_true(st[0].median == 60.0);
  assert_int_equal(st[0].p95, 70);
  assert_int_equal(st[1].stage, EG_STAGE__COUNT);
  assert_true(st[1].median == 200.0);
  assert_int_equal(st[1].p95, 300);
  assert_int_equal(st[1].max, 300);
  eg_rep_stage_stats_free(st, n);
  unfill(&rep);
}

/* ------------------------------------------------------------ identity */

#define M1 "24:0a:c4:00:00:11"
#define M2 "24:0a:c4:00:00:22"
#define M3 "24:0a:c4:00:00:33"
#define M4 "24:0a:c4:00:00:44"

static const run_spec chain_runs[] = {
  {0, 10, 0, NULL, "S", D1},     /* Q fails twice before its MAC is read */
  {0, 11, 10, "slot", "S", D1},  /* retry by slot: Q reads M1 and passes */
  {0, 12, 11, "mac", "S", D1},   /* retry by MAC: boards reseated, nothing lent */
  {0, 20, 0, NULL, "S", D1},     /* R reads M2 and fails */
  {0, 21, 20, NULL, "S", D1},    /* retry (mode unknown = slot): R fails before the MAC */
  {0, 30, 0, NULL, "S", D1},     /* a station session: boards one after another in slot P */
  {1, 10, 0, NULL, "U", D1},     /* another file, same run id: no lending across files */
};
static const att_spec chain_att[] = {
  {10, "Q", 1, NULL, "fail", "sync", "NO_SYNC", NULL, NULL, 5, 0},
  {10, "Q", 2, NULL, "fail", "sync", "NO_SYNC", NULL, NULL, 5, 0},
  {11, "Q", 1, M1, "pass", NULL, NULL, NULL, NULL, 5, 0},
  {12, "Q", 1, NULL, "fail", "sync", "NO_SYNC", NULL, NULL, 5, 0},
  {20, "R", 1, M2, "fail", "write", "TIMEOUT", NULL, NULL, 5, 0},
  {21, "R", 1, NULL, "fail", "sync", "NO_SYNC", NULL, NULL, 5, 0},
  {30, "P", 1, M3, "pass", NULL, NULL, NULL, NULL, 5, 0},
  {30, "P", 1, M4, "fail", "write", "TIMEOUT", NULL, NULL, 5, 0},
  {30, "P", 2, NULL, "pass", NULL, NULL, NULL, NULL, 5, 0},
};

static const eg_rep_unit *unit_at(const eg_rep *rep, int db, int64_t run, const char *slot, size_t nth) {
  for (size_t i = 0; i < rep->nunits; i++) {
    const eg_log_run *r = &rep->log.runs[rep->units[i].run];
    if (r->db == db && r->id == run && strcmp(rep->units[i].slot, slot) == 0 && nth-- == 0) return &rep->units[i];
  }
  fail_msg("no unit %d:%lld %s", db, (long long)run, slot);
  return NULL;
}

static void test_identity_through_retry_chains(void **state) {
  (void)state;
  eg_rep rep;
  fill(&rep, chain_runs, 7, chain_att, sizeof chain_att / sizeof chain_att[0]);
  const eg_rep_unit *q10 = unit_at(&rep, 0, 10, "Q", 0);
  assert_string_equal(q10->mac, M1); /* lent back by the slot retry */
  assert_true(q10->mac_inferred);
  assert_int_equal(q10->n, 2);
  assert_false(unit_at(&rep, 0, 11, "Q", 0)->mac_inferred);
  assert_null(unit_at(&rep, 0, 12, "Q", 0)->mac); /* by-MAC retry lends nothing */
  assert_string_equal(unit_at(&rep, 0, 21, "R", 0)->mac, M2);
  /* Station session: two boards in slot P; the MAC-less second attempt stays with M4. */
  const eg_rep_unit *p0 = unit_at(&rep, 0, 30, "P", 0), *p1 = unit_at(&rep, 0, 30, "P", 1);
  assert_string_equal(p0->mac, M3);
  assert_int_equal(p0->n, 1);
  assert_string_equal(p1->mac, M4);
  assert_int_equal(p1->n, 2);
  assert_true(eg_rep_unit_final_pass(p1) && !eg_rep_unit_first_pass(p1));

  /* history --mac M1 finds the attempts of run 10 that never read it. */
  eg_rep_filter flt = {0};
  assert_true(eg_rep_normalize_mac("24-0A-C4-00-00-11", flt.mac));
  int hits = 0;
  for (size_t i = 0; i < rep.log.nattempts; i++) hits += eg_rep_attempt_matches(&rep, i, &flt);
  assert_int_equal(hits, 3);
  /* Slot names as typed: any case. */
  memset(&flt, 0, sizeof flt);
  flt.slot = "q";
  hits = 0;
  for (size_t i = 0; i < rep.log.nattempts; i++) hits += eg_rep_attempt_matches(&rep, i, &flt);
  assert_int_equal(hits, 4);
  unfill(&rep);
}

/* ------------------------------------------------------------ parsing */

static void test_parsing(void **state) {
  (void)state;
  char t[32], mac[18];
  const int64_t now = 1796119200000LL; /* 2026-12-01T10:00:00.000Z */
  assert_true(eg_rep_parse_time("2026-12-01", now, t));
  assert_string_equal(t, "2026-12-01T00:00:00.000Z");
  assert_true(eg_rep_parse_time("2026-12-01T10:30", now, t));
  assert_string_equal(t, "2026-12-01T10:30:00.000Z");
  assert_true(eg_rep_parse_time("2026-12-01 10:30:15", now, t));
  assert_string_equal(t, "2026-12-01T10:30:15.000Z");
  assert_true(eg_rep_parse_time("8h", now, t));
  assert_string_equal(t, "2026-12-01T02:00:00.000Z");
  assert_true(eg_rep_parse_time("2d", now, t));
  assert_string_equal(t, "2026-11-29T10:00:00.000Z");
  assert_true(eg_rep_parse_time("30m", now, t));
  assert_string_equal(t, "2026-12-01T09:30:00.000Z");
  static const char *const bad[] = {"2026-13-01", "2026-12-1", "8x", "h", "", "2026-12-01T25:00", "yesterday",
                                    "2026-12-01T10:00junk"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (eg_rep_parse_time(bad[i], now, t)) fail_msg("accepted '%s' as %s", bad[i], t);
  assert_true(eg_rep_normalize_mac("240AC4000001", mac));
  assert_string_equal(mac, "24:0a:c4:00:00:01");
  assert_false(eg_rep_normalize_mac("slot01", mac));
  assert_false(eg_rep_normalize_mac("24:0a:c4:00:00:01:02", mac));
  assert_true(eg_rep_chip_eq("esp32c3", "ESP32-C3"));
  assert_false(eg_rep_chip_eq("esp32", "ESP32-C3"));
  assert_int_equal(eg_rep_section_parse("failures"), EG_REP_SEC_FAILURES);
  assert_int_equal(eg_rep_section_parse("nope"), -1);
}

/* ------------------------------------------------------------ files */

typedef struct fx {
  char dir[64];
} fx;

static int setup(void **state) {
  fx *x = calloc(1, sizeof *x);
  snprintf(x->dir, sizeof x->dir, "/tmp/eg-rep-XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fx *x = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
  assert_int_equal(system(cmd), 0);
  free(x);
  return 0;
}

static char *path_in(const fx *x, const char *name) {
  char *p = malloc(256);
  snprintf(p, 256, "%s/%s", x->dir, name);
  return p;
}

static void expect_refused(const char *path, eg_err code, const char *words) {
  eg_db *db = (eg_db *)1;
  eg_fault f;
  const char *paths[] = {path};
  const eg_err r = eg_db_open_readonly(&db, paths, 1, &f);
  if (r != code || !strstr(f.msg, words) || !strstr(f.msg, path))
    fail_msg("%s: got %s \"%s\", want %s with \"%s\"", path, eg_err_name(r), f.msg, eg_err_name(code), words);
  assert_null(db);
}

static void test_readonly_refusals(void **state) {
  fx *x = *state;
  char *missing = path_in(x, "missing.db"), *fifo = path_in(x, "fifo.db"), *junk = path_in(x, "junk.db"),
       *empty = path_in(x, "empty.db"), *foreign = path_in(x, "foreign.db"), *newer = path_in(x, "newer.db");
  expect_refused(missing, EG_INVAL, "no log database there");
  expect_refused(x->dir, EG_INVAL, "is a directory");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  expect_refused(fifo, EG_INVAL, "not a regular file"); /* and returns: no open() blocks */
  FILE *fp = fopen(junk, "wb");
  fputs("this is not a database, just text that is long enough", fp);
  fclose(fp);
  expect_refused(junk, EG_INVAL, "not an SQLite database");
  fclose(fopen(empty, "wb"));
  expect_refused(empty, EG_INVAL, "not an SQLite database");
  sqlite3 *s;
  assert_int_equal(sqlite3_open(foreign, &s), SQLITE_OK);
  assert_int_equal(sqlite3_exec(s, "CREATE TABLE customers (id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(s);
  expect_refused(foreign, EG_INVAL, "not an espgang log");
  eg_db *db;
  eg_fault f;
  assert_int_equal(eg_db_open(&db, newer, &f), EG_OK);
  eg_db_close(db);
  assert_int_equal(sqlite3_open(newer, &s), SQLITE_OK);
  assert_int_equal(sqlite3_exec(s, "INSERT INTO schema_version VALUES (99, '0099_x.sql', 'x')", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(s);
  expect_refused(newer, EG_DB, "newer than this espgang");
  /* Nothing was created by any of this. */
  assert_int_equal(access(missing, F_OK), -1);
  free(missing), free(fifo), free(junk), free(empty), free(foreign), free(newer);
}

/* Bytes and directory listing of a file and its neighbours. */
static char *snapshot(const fx *x) {
  char *out = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&out, &len);
  DIR *d = opendir(x->dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", x->dir, e->d_name);
    struct stat st;
    stat(p, &st);
    fprintf(m, "%s %lld %lld.%09ld\n", e->d_name, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
            st.st_mtim.tv_nsec);
  }
  closedir(d);
  fclose(m);
  return out;
}

static char *capture_report(eg_db *db, eg_rep_view view, eg_rep_format fmt, eg_rep_filter *flt) {
  eg_rep rep;
  eg_fault f;
  if (eg_rep_load(&rep, db, flt, &f) != EG_OK) fail_msg("load: %s", f.msg);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  const eg_rep_opts o = {.view = view, .format = fmt, .width = 100, .section = fmt == EG_REP_CSV ? 0 : -1};
  const eg_err r = eg_report(&rep, flt, &o, m, &f);
  fclose(m);
  if (r != EG_OK) fail_msg("report: %s", f.msg);
  eg_rep_free(&rep);
  return buf;
}

static void must_contain(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("missing \"%s\" in:\n%s", needle, text);
}

/* A schema-1 log as an older espgang left it (WAL mode, one run, a retry). */
static void make_v1(const char *path) {
  sqlite3 *s;
  assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
  FILE *fp = fopen(EG_SOURCE_DIR "/schema/migrations/0001_initial.sql", "rb");
  char *sql = calloc(1, 1 << 16);
  assert_true(fread(sql, 1, (1 << 16) - 1, fp) > 0);
  fclose(fp);
  char *err = NULL;
  if (sqlite3_exec(s, "PRAGMA journal_mode = WAL", NULL, NULL, &err) != SQLITE_OK ||
      sqlite3_exec(s, sql, NULL, NULL, &err) != SQLITE_OK ||
      sqlite3_exec(s,
                   "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);"
                   "INSERT INTO schema_version VALUES (1, '0001_initial.sql', '2026-01-01T00:00:00.000Z');"
                   "INSERT INTO runs (id, started_at, station, status, manifest_sha256) "
                   "  VALUES (1, '2026-01-01T00:00:00.000Z', 'old-line', 'finished', 'abcdef');"
                   "INSERT INTO units (run_id, slot, port, attempt, mac, started_at, result, fail_stage, error_code, "
                   "  status_bytes, duration_ms) VALUES "
                   "  (1, 'A1', 'p', 1, '24:0a:c4:00:00:01', '2026-01-01T00:00:01.000Z', 'fail', 'write', "
                   "   'DEVICE_STATUS', 'c4 00', 900),"
                   "  (1, 'A1', 'p', 2, '24:0a:c4:00:00:01', '2026-01-01T00:00:02.000Z', 'pass', NULL, NULL, NULL, 1000),"
                   "  (1, 'A2', 'q', 1, '24:0a:c4:00:00:02', '2026-01-01T00:00:01.000Z', 'pass', NULL, NULL, NULL, 800);",
                   NULL, NULL, &err) != SQLITE_OK)
    fail_msg("schema 1 file: %s", err);
  free(sql);
  sqlite3_close(s);
}

static void test_old_schema_reported_unchanged(void **state) {
  fx *x = *state;
  char *path = path_in(x, "v1.db");
  make_v1(path);
  char *before = snapshot(x);
  const char *paths[] = {path};
  eg_db *db;
  eg_fault f;
  if (eg_db_open_readonly(&db, paths, 1, &f) != EG_OK) fail_msg("open: %s", f.msg);
  assert_int_equal(eg_db_file_version(db, 0), 1);
  eg_rep_filter flt = {.latest_only = true};
  char *csv = capture_report(db, EG_REP_UNITS, EG_REP_CSV, &flt);
  must_contain(csv, "run,slot,mac,result,tries,first,stage,error,status,message\r\n");
  must_contain(csv, "1,A1,24:0a:c4:00:00:01,pass,2,no,,,,\r\n");
  must_contain(csv, "1,A2,24:0a:c4:00:00:02,pass,1,yes,,,,\r\n");
  free(csv);
  memset(&flt, 0, sizeof flt);
  char *json = capture_report(db, EG_REP_YIELD, EG_REP_JSON, &flt);
  must_contain(json, "{\"run\":1,\"runs\":1,\"units\":2,\"first\":1,\"passed\":2,\"fpy_pct\":50.0,\"final_pct\":100.0,"
                     "\"tries\":1.50}");
  must_contain(json, "{\"stage\":\"write\",\"error\":\"DEVICE_STATUS\",\"status\":\"c4 00\",\"attempts\":1,\"units\":1,"
                     "\"share_pct\":100.0,\"cumulative_pct\":100.0}");
  free(json);
  eg_db_close(db);
  char *after = snapshot(x);
  if (strcmp(before, after) != 0) fail_msg("the file changed:\nbefore\n%s\nafter\n%s", before, after);
  sqlite3 *s;
  assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(s, "SELECT MAX(version) FROM schema_version", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(st, 0), 1);
  sqlite3_finalize(st);
  sqlite3_close(s);
  free(before), free(after), free(path);
}

static int64_t add_run(eg_db *db, const char *station, const char *slot, const char *mac, eg_result res) {
  eg_run_info info = {.station = station};
  int64_t run, id;
  eg_fault f;
  assert_int_equal(eg_db_run_begin(db, &info, &run, &f), EG_OK);
  eg_unit_record u;
  eg_unit_record_init(&u);
  snprintf(u.slot, sizeof u.slot, "%s", slot);
  snprintf(u.port, sizeof u.port, "p");
  snprintf(u.chip, sizeof u.chip, "ESP32");
  u.attempt = 1;
  u.has_mac = eg_rep_normalize_mac(mac, (char[18]){0});
  sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &u.mac[0], &u.mac[1], &u.mac[2], &u.mac[3], &u.mac[4], &u.mac[5]);
  u.started_ms = 1796119200000LL;
  assert_int_equal(eg_db_unit_begin(db, run, &u, &id, &f), EG_OK);
  u.result = res;
  if (res == EG_RESULT_FAIL) eg_fault_set(&u.fault, EG_NO_SYNC, EG_STAGE_SYNC, 8, "no answer");
  u.finished_ms = u.started_ms + 1234;
  assert_int_equal(eg_db_unit_finish(db, id, &u, &f), EG_OK);
  assert_int_equal(eg_db_run_end(db, run, "finished", &f), EG_OK);
  return run;
}

static void test_two_files_keyed_by_station(void **state) {
  fx *x = *state;
  char *a = path_in(x, "a.db"), *b = path_in(x, "b.db");
  eg_db *db;
  eg_fault f;
  assert_int_equal(eg_db_open(&db, a, &f), EG_OK);
  add_run(db, "line-a", "S1", "24:0a:c4:00:00:01", EG_RESULT_PASS);
  eg_db_close(db);
  assert_int_equal(eg_db_open(&db, b, &f), EG_OK);
  add_run(db, "line-b", "S1", "24:0a:c4:00:00:02", EG_RESULT_FAIL);
  eg_db_close(db);
  const char *paths[] = {a, b};
  assert_int_equal(eg_db_open_readonly(&db, paths, 2, &f), EG_OK);
  assert_int_equal(eg_db_files(db), 2);
  eg_rep_filter flt = {0};
  char *t = capture_report(db, EG_REP_YIELD, EG_REP_JSON, &flt);
  must_contain(t, "{\"station\":\"line-a\",\"runs\":1,\"units\":1,\"first\":1,\"passed\":1,\"fpy_pct\":100.0");
  must_contain(t, "{\"station\":\"line-b\",\"runs\":1,\"units\":1,\"first\":0,\"passed\":0,\"fpy_pct\":0.0");
  /* Both files have a run 1: the run column says which file. */
  must_contain(t, "{\"run\":\"1:1\",");
  must_contain(t, "{\"run\":\"2:1\",");
  free(t);
  flt.station = "LINE-B";
  t = capture_report(db, EG_REP_UNITS, EG_REP_CSV, &flt);
  must_contain(t, "\r\n2:1,S1,24:0a:c4:00:00:02,fail,1,no,sync,NO_SYNC,,no answer,line-b\r\n");
  assert_null(strstr(t, "line-a"));
  free(t);
  eg_db_close(db);
  free(a), free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_units_and_yields),
    cmocka_unit_test(test_pareto),
    cmocka_unit_test(test_percentiles),
    cmocka_unit_test(test_identity_through_retry_chains),
    cmocka_unit_test(test_parsing),
    cmocka_unit_test_setup_teardown(test_readonly_refusals, setup, teardown),
    cmocka_unit_test_setup_teardown(test_old_schema_reported_unchanged, setup, teardown),
    cmocka_unit_test_setup_teardown(test_two_files_keyed_by_station, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
