/* test_scheduler.c - the scheduler against simulated boards in process
 * (simrack.h): station mode (units seated one after another on a job, the
 * job idle in between, a stop aborting what runs), the gate policies with a
 * real log (a board that already passed is skipped; --by-mac flashes only
 * MACs that failed at this station and manifest), a vanished port (retried
 * after a wait in a gang run, the end of the unit in a station), and the
 * recorder's own queries (in order with the writes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "simrack.h"

#include "db.h"
#include "db_rerun.h"
#include "gate.h"
#include "prep.h"
#include "recorder.h"
#include "scheduler.h"

#define MAXB 4
#define MAXDONE 16

typedef struct fixture fixture;
struct fixture {
  uv_loop_t loop;
  simboard boards[MAXB];
  size_t nboards;
  eg_dev_config cfg;
  eg_image img;
  const eg_image *imgp[1];
  eg_imageset *set;
  eg_dev_op ops[1];
  eg_job jobs[MAXB];
  char dbpath[64];
  eg_db *db;
  eg_recorder *rec;
  int64_t run_id;
  eg_gate gate;
  char *sig;
  eg_sched_config sc;
  /* what happened */
  eg_sched *s;
  int ready;
  int idle[MAXB];
  eg_unit_record done[MAXDONE];
  bool will_retry[MAXDONE];
  size_t done_job[MAXDONE];
  size_t ndone, finals;
  /* the test's script */
  void (*on_ready)(fixture *fx);
  void (*on_idle)(fixture *fx, size_t job);
  void (*on_stage)(fixture *fx, size_t job, const eg_unit_record *u, eg_stage stage);
  int step;
};

static const uint8_t SHA[32] = {0x5a, 0x17};

static void fx_setup(fixture *fx, size_t nboards, const uint8_t *macs, bool with_db) {
  memset(fx, 0, sizeof *fx);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  for (size_t i = 0; i < nboards; i++) simboard_seat(&fx->boards[i], &fx->loop, macs[i], NULL);
  fx->nboards = nboards;
  eg_timeouts_default(&fx->cfg.timeouts);
  fx->cfg.timeouts.command_ms = 500;
  fx->cfg.chip = eg_chip_get(EG_CHIP_ESP32);
  fx->cfg.before = EG_BEFORE_NO_RESET;
  fx->cfg.after = EG_AFTER_NO_RESET;
  fx->cfg.connect_baud = fx->cfg.baud = 115200;
  fx->cfg.flash_size = "detect";
  fx->cfg.verify = true;
  fx->cfg.connect_attempts = 2;
  simrack_image(&fx->img, 0x10000, 24000, 7);
  fx->imgp[0] = &fx->img;
  fx->set = eg_imageset_new(fx->cfg.chip, fx->imgp, 1, "keep", "keep", "keep", true);
  assert_non_null(fx->set);
  fx->cfg.images = fx->set;
  fx->ops[0] = (eg_dev_op){.kind = EG_OPK_WRITE, .index = 0};
  for (size_t i = 0; i < nboards; i++) {
    eg_job *j = &fx->jobs[i];
    snprintf(j->label, sizeof j->label, "J%zu", i + 1);
    snprintf(j->port, sizeof j->port, "%s", fx->boards[i].path);
    j->cfg = &fx->cfg;
    j->ops = fx->ops;
    j->nops = 1;
    j->max_attempts = 1;
  }
  fx->sig = eg_images_signature(fx->imgp, 1);
  assert_non_null(fx->sig);
  fx->gate = (eg_gate){.mode = EG_GATE_ALL, .station = "line", .manifest_sha256 = SHA, .images = fx->sig};
  fx->sc = (eg_sched_config){.jobs = fx->jobs, .njobs = nboards, .gate = &fx->gate, .retry_delay_ms = 50};
  if (!with_db) return;
  snprintf(fx->dbpath, sizeof fx->dbpath, "/tmp/test_scheduler_XXXXXX");
  const int fd = mkstemp(fx->dbpath);
  assert_true(fd >= 0);
  close(fd);
  unlink(fx->dbpath);
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_db_open(&fx->db, fx->dbpath, &f) != EG_OK) fail_msg("db: %s", f.msg);
}

/* A run of `station` with our manifest sha and image; its recorder. */
static int64_t fx_begin_run(fixture *fx, const char *station, eg_run_kind kind) {
  const eg_run_info info = {.station = station, .manifest_sha256 = SHA, .kind = kind};
  eg_fault f;
  eg_fault_clear(&f);
  int64_t id = 0;
  if (eg_db_run_begin(fx->db, &info, &id, &f) != EG_OK) fail_msg("run_begin: %s", f.msg);
  if (eg_db_run_image(fx->db, id, 0, &fx->img, NULL, &f) != EG_OK) fail_msg("run_image: %s", f.msg);
  return id;
}

static void fx_use_recorder(fixture *fx, const char *station, eg_run_kind kind) {
  fx->run_id = fx_begin_run(fx, station, kind);
  fx->rec = eg_recorder_new(&fx->loop, fx->db, fx->run_id);
  assert_non_null(fx->rec);
  fx->sc.recorder = fx->rec;
}

/* A unit row written straight into the log (history made up by a test). */
static void fx_history(fixture *fx, int64_t run, const char *slot, uint8_t mac_last, int attempt, eg_result res) {
  eg_unit_record u;
  eg_unit_record_init(&u);
  snprintf(u.slot, sizeof u.slot, "%s", slot);
  snprintf(u.port, sizeof u.port, "/dev/null");
  u.attempt = attempt;
  u.started_ms = 1700000000000;
  if (mac_last) {
    u.has_mac = true;
    const uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0, 0, mac_last};
    memcpy(u.mac, mac, 6);
  }
  eg_fault f;
  eg_fault_clear(&f);
  int64_t id;
  if (eg_db_unit_begin(fx->db, run, &u, &id, &f) != EG_OK) fail_msg("unit_begin: %s", f.msg);
  u.result = res;
  u.finished_ms = u.started_ms + 1000;
  if (res == EG_RESULT_FAIL) eg_fault_set(&u.fault, EG_MD5_MISMATCH, EG_STAGE_VERIFY, 0x13, "made up");
  if (eg_db_unit_finish(fx->db, id, &u, &f) != EG_OK) fail_msg("unit_finish: %s", f.msg);
}

static void fx_teardown(fixture *fx) {
  for (size_t i = 0; i < fx->nboards; i++) simboard_pull(&fx->boards[i]);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
  for (size_t i = 0; i < fx->nboards; i++) simboard_free(&fx->boards[i]);
  if (fx->rec) assert_true(eg_recorder_idle(fx->rec));
  eg_recorder_free(fx->rec);
  if (fx->db) eg_db_close(fx->db);
  if (fx->dbpath[0]) {
    char p[96];
    unlink(fx->dbpath);
    snprintf(p, sizeof p, "%s-wal", fx->dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", fx->dbpath);
    unlink(p);
  }
  eg_imageset_free(fx->set);
  eg_image_free(&fx->img);
  free(fx->sig);
}

/* ------------------------------------------------------------ events */

static void fx_release(fixture *fx) {
  for (size_t i = 0; i < fx->nboards; i++) simboard_pull(&fx->boards[i]);
}

/* A station ends when stopped; its boards go with it. */
static void fx_stop(fixture *fx) {
  eg_sched_stop(fx->s);
  fx_release(fx);
}

static void ev_ready(void *ctx, eg_sched *s) {
  fixture *fx = ctx;
  fx->s = s;
  fx->ready++;
  if (fx->on_ready) fx->on_ready(fx);
}

static void ev_idle(void *ctx, size_t job) {
  fixture *fx = ctx;
  fx->idle[job]++;
  assert_true(eg_sched_job_idle(fx->s, job));
  if (fx->on_idle) fx->on_idle(fx, job);
}

static void ev_stage(void *ctx, size_t job, const eg_unit_record *u, eg_stage stage) {
  fixture *fx = ctx;
  if (fx->on_stage) fx->on_stage(fx, job, u, stage);
}

static void ev_done(void *ctx, size_t job, const eg_unit_record *u, bool will_retry, bool recorded, eg_dev *dev) {
  fixture *fx = ctx;
  (void)dev;
  assert_true(recorded);
  assert_true(fx->ndone < MAXDONE);
  fx->done[fx->ndone] = *u;
  fx->will_retry[fx->ndone] = will_retry;
  fx->done_job[fx->ndone] = job;
  fx->ndone++;
  /* The boards share the scheduler's loop: once every job of a gang run is
   * over, they go, so that the run can end. */
  if (!will_retry && ++fx->finals == fx->nboards && !fx->sc.station) fx_release(fx);
}

static const eg_sched_events events = {
  .on_unit_stage = ev_stage,
  .on_unit_done = ev_done,
  .on_ready = ev_ready,
  .on_job_idle = ev_idle,
};

static eg_sched_summary fx_run(fixture *fx) {
  eg_sched_summary sum;
  memset(&sum, 0, sizeof sum);
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_sched_run(&fx->loop, &fx->sc, &events, fx, &sum, &f), EG_OK);
  assert_int_equal(fx->ready, 1);
  return sum;
}

static char *q1(fixture *fx, const char *sql) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(eg_db_sqlite(fx->db), sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s", sql);
  char *out = strdup("");
  while (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *n = NULL;
    if (asprintf(&n, "%s%s%s", out, out[0] ? " " : "", t ? (const char *)t : "NULL") < 0) fail_msg("oom");
    free(out);
    out = n;
  }
  sqlite3_finalize(st);
  return out;
}

#define Q_EQ(fx, sql, want)                                                              \
  do {                                                                                   \
    char *got_ = q1(fx, sql);                                                            \
    if (strcmp(got_, want) != 0) fail_msg("%s\n  got  %s\n  want %s", sql, got_, want); \
    free(got_);                                                                          \
  } while (0)

/* ------------------------------------------------------------ gang runs */

static void gang_runs_every_job(void **state) {
  (void)state;
  fixture fx;
  const uint8_t macs[] = {1, 2, 3};
  fx_setup(&fx, 3, macs, false);
  const eg_sched_summary sum = fx_run(&fx);
  assert_int_equal(sum.units, 3);
  assert_int_equal(sum.passed, 3);
  assert_int_equal(sum.attempts, 3);
  assert_false(sum.interrupted);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(fx.idle[i], 0); /* not a station */
    assert_board_holds(&fx.boards[i], &fx.img);
  }
  fx_teardown(&fx);
}

/* ------------------------------------------------------------ station mode */

static void seat_or_fail(fixture *fx, size_t job) {
  const eg_err e = eg_sched_seat(fx->s, job);
  if (e != EG_OK) fail_msg("seat job %zu: %s", job, eg_err_name(e));
}

static void cycle_ready(fixture *fx) {
  seat_or_fail(fx, 0);
  assert_int_equal(eg_sched_seat(fx->s, 0), EG_INVAL); /* busy */
  assert_false(eg_sched_job_idle(fx->s, 0));
  seat_or_fail(fx, 1);
}

static void cycle_idle(fixture *fx, size_t job) {
  /* The same board seated again on job 0 once; then stop when both are idle. */
  if (job == 0 && fx->idle[0] == 1) {
    seat_or_fail(fx, 0);
    return;
  }
  if (fx->idle[0] == 2 && fx->idle[1] == 1) fx_stop(fx);
}

static void station_cycle(bool reflash) {
  fixture fx;
  const uint8_t macs[] = {1, 2};
  fx_setup(&fx, 2, macs, true);
  fx_use_recorder(&fx, "line", EG_RUN_STATION);
  fx.sc.station = true;
  fx.gate.mode = EG_GATE_NOT_PASSED;
  fx.gate.reflash = reflash;
  fx.on_ready = cycle_ready;
  fx.on_idle = cycle_idle;
  const eg_sched_summary sum = fx_run(&fx);
  assert_int_equal(sum.units, 3);
  assert_int_equal(sum.attempts, 3);
  assert_int_equal(sum.passed, reflash ? 3 : 2);
  assert_int_equal(sum.skipped, reflash ? 0 : 1);
  assert_true(sum.interrupted); /* stopped: a station's only way to end */
  assert_int_equal(fx.ndone, 3);
  /* job 0's second unit: the board that passed a moment ago. */
  const eg_unit_record *again = NULL;
  for (size_t i = 0, n0 = 0; i < fx.ndone; i++)
    if (fx.done_job[i] == 0 && ++n0 == 2) again = &fx.done[i];
  assert_non_null(again);
  assert_int_equal(again->attempt, 1); /* a new unit, not a retry */
  if (reflash) {
    assert_int_equal(again->result, EG_RESULT_PASS);
  } else {
    assert_int_equal(again->result, EG_RESULT_SKIPPED);
    if (!strstr(again->fault.msg, "already passed")) fail_msg("skip message: %s", again->fault.msg);
  }
  Q_EQ(&fx, "SELECT kind || ' ' || status FROM runs", "station finished");
  Q_EQ(&fx, "SELECT slot || '=' || result || '=' || mac FROM units ORDER BY id",
       reflash ? "J1=pass=24:0a:c4:00:00:01 J2=pass=24:0a:c4:00:00:02 J1=pass=24:0a:c4:00:00:01"
               : "J1=pass=24:0a:c4:00:00:01 J2=pass=24:0a:c4:00:00:02 J1=skipped=24:0a:c4:00:00:01");
  fx_teardown(&fx);
}

static void station_skips_a_passed_board(void **state) {
  (void)state;
  station_cycle(false);
}

static void station_reflash(void **state) {
  (void)state;
  station_cycle(true);
}

static void stop_at_write(fixture *fx, size_t job, const eg_unit_record *u, eg_stage stage) {
  (void)job, (void)u;
  if (stage == EG_STAGE_WRITE && !fx->step++) fx_stop(fx);
}

static void seat_first(fixture *fx) { seat_or_fail(fx, 0); }

static void station_stop_aborts(void **state) {
  (void)state;
  fixture fx;
  const uint8_t macs[] = {1, 2};
  fx_setup(&fx, 2, macs, true);
  fx_use_recorder(&fx, "line", EG_RUN_STATION);
  fx.sc.station = true;
  fx.on_ready = seat_first;
  fx.on_stage = stop_at_write;
  const eg_sched_summary sum = fx_run(&fx);
  assert_int_equal(sum.units, 1);
  assert_int_equal(sum.aborted, 1);
  assert_int_equal(fx.ndone, 1);
  assert_int_equal(fx.done[0].result, EG_RESULT_ABORTED);
  assert_int_equal(fx.idle[1], 0); /* job 1 never had a unit */
  Q_EQ(&fx, "SELECT result || ' ' || error_code FROM units", "aborted ABORTED");
  Q_EQ(&fx, "SELECT status FROM runs", "finished");
  fx_teardown(&fx);
}

/* ------------------------------------------------------------ a vanished port */

static void pull_at_write(fixture *fx, size_t job, const eg_unit_record *u, eg_stage stage) {
  if (stage == EG_STAGE_WRITE && u->attempt == 1 && !fx->step++) simboard_pull(&fx->boards[job]);
}

static void stop_when_idle(fixture *fx, size_t job) {
  (void)job;
  fx_stop(fx);
}

static void station_port_gone_ends_the_unit(void **state) {
  (void)state;
  fixture fx;
  const uint8_t macs[] = {1};
  fx_setup(&fx, 1, macs, false);
  fx.jobs[0].max_attempts = 2;
  fx.sc.station = true;
  fx.on_ready = seat_first;
  fx.on_stage = pull_at_write;
  fx.on_idle = stop_when_idle;
  const eg_sched_summary sum = fx_run(&fx);
  assert_int_equal(fx.ndone, 1);
  assert_int_equal(fx.done[0].result, EG_RESULT_FAIL);
  assert_int_equal(fx.done[0].fault.code, EG_PORT_GONE);
  assert_false(fx.will_retry[0]);
  assert_int_equal(sum.attempts, 1);
  assert_int_equal(fx.idle[0], 1);
  fx_teardown(&fx);
}

static void gang_waits_for_a_vanished_port(void **state) {
  (void)state;
  fixture fx;
  const uint8_t macs[] = {1};
  fx_setup(&fx, 1, macs, false);
  fx.jobs[0].max_attempts = 2;
  fx.cfg.timeouts.port_back_ms = 300; /* the manifest's timeouts.port_back (the scheduler's own bound unset) */
  fx.on_stage = pull_at_write;
  const eg_sched_summary sum = fx_run(&fx);
  assert_int_equal(sum.attempts, 2);
  assert_int_equal(fx.ndone, 2);
  assert_int_equal(fx.done[0].fault.code, EG_PORT_GONE);
  assert_true(fx.will_retry[0]);
  assert_int_equal(fx.done[0].port_wait_ms, 0);
  /* The port never came back: the second attempt waited the whole time. */
  assert_int_equal(fx.done[1].attempt, 2);
  assert_int_equal(fx.done[1].result, EG_RESULT_FAIL);
  if (fx.done[1].port_wait_ms < 300 || fx.done[1].port_wait_ms > 2000)
    fail_msg("port_wait_ms %u, expected 300 and a poll or so", fx.done[1].port_wait_ms);
  fx_teardown(&fx);
}

/* ------------------------------------------------------------ --retry-failed --by-mac */

static void gate_failed_mac(void **state) {
  (void)state;
  fixture fx;
  const uint8_t macs[] = {1, 2, 3, 4};
  fx_setup(&fx, 4, macs, true);
  /* History: at station "line", :01 failed; :02 failed then passed; :04
   * failed, and its retry failed again before reading the MAC. At station
   * "other", :03 failed (not a reason to flash it at "line"). */
  const int64_t r1 = fx_begin_run(&fx, "line", EG_RUN_FLASH);
  fx_history(&fx, r1, "x", 1, 1, EG_RESULT_FAIL);
  fx_history(&fx, r1, "y", 2, 1, EG_RESULT_FAIL);
  fx_history(&fx, r1, "y", 2, 2, EG_RESULT_PASS);
  fx_history(&fx, r1, "w", 4, 1, EG_RESULT_FAIL);
  fx_history(&fx, r1, "w", 0, 2, EG_RESULT_FAIL);
  const int64_t r2 = fx_begin_run(&fx, "other", EG_RUN_FLASH);
  fx_history(&fx, r2, "z", 3, 1, EG_RESULT_FAIL);
  fx_use_recorder(&fx, "line", EG_RUN_FLASH);
  fx.gate.mode = EG_GATE_FAILED_MAC;
  const eg_sched_summary sum = fx_run(&fx);
  assert_int_equal(sum.units, 4);
  assert_int_equal(sum.passed, 2);
  assert_int_equal(sum.skipped, 2);
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT slot || '=' || result FROM units WHERE run_id = %lld ORDER BY slot",
           (long long)fx.run_id);
  Q_EQ(&fx, sql, "J1=pass J2=skipped J3=skipped J4=pass");
  assert_board_holds(&fx.boards[0], &fx.img);
  /* Skipped boards were not written. */
  size_t size;
  const uint8_t *flash = esim_dev_flash(fx.boards[1].sim, &size);
  for (size_t i = 0; i < fx.img.len; i++)
    if (flash[fx.img.offset + i] != 0xFF) fail_msg("skipped board written at 0x%zx", fx.img.offset + i);
  fx_teardown(&fx);
}

/* ------------------------------------------------------------ recorder queries */

typedef struct qctx {
  int64_t rows;
  eg_err result;
  char msg[256];
  int calls;
  int order[4];
  int n;
} qctx;

static eg_err count_units(eg_db *db, void *arg, eg_fault *f) {
  qctx *q = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(eg_db_sqlite(db), "SELECT COUNT(*) FROM units", -1, &st, NULL) != SQLITE_OK)
    return eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "prepare");
  sqlite3_step(st);
  q->rows = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return EG_OK;
}

static eg_err refuse(eg_db *db, void *arg, eg_fault *f) {
  (void)db, (void)arg;
  return eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "no such table: nothing");
}

static void q_done(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id) {
  qctx *q = ctx;
  (void)unit_id;
  q->result = result;
  snprintf(q->msg, sizeof q->msg, "%s", f->msg);
  q->order[q->n++] = 2;
  q->calls++;
}

static void begun(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id) {
  qctx *q = ctx;
  (void)f;
  assert_int_equal(result, EG_OK);
  assert_true(unit_id > 0);
  q->order[q->n++] = 1;
}

static void recorder_queries_in_order(void **state) {
  (void)state;
  fixture fx;
  fx_setup(&fx, 0, NULL, true);
  fx_use_recorder(&fx, "line", EG_RUN_FLASH);
  eg_unit_record u;
  eg_unit_record_init(&u);
  snprintf(u.slot, sizeof u.slot, "A1");
  snprintf(u.port, sizeof u.port, "/dev/null");
  u.attempt = 1;
  qctx q = {.rows = -1};
  eg_recorder_unit_begin(fx.rec, &u, begun, &q);
  eg_recorder_call(fx.rec, count_units, &q, q_done, &q); /* queued behind the insert */
  bool idle = false;
  while (!idle) {
    uv_run(&fx.loop, UV_RUN_ONCE);
    idle = eg_recorder_idle(fx.rec);
  }
  assert_int_equal(q.n, 2);
  assert_int_equal(q.order[0], 1);
  assert_int_equal(q.order[1], 2);
  assert_int_equal(q.result, EG_OK);
  assert_int_equal(q.rows, 1); /* the query saw the row asked for before it */
  /* A query the log refuses: its callback says so; no record was lost. */
  eg_recorder_call(fx.rec, refuse, &q, q_done, &q);
  while (!eg_recorder_idle(fx.rec)) uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(q.result, EG_DB);
  assert_string_equal(q.msg, "no such table: nothing");
  assert_false(eg_recorder_had_error(fx.rec));
  fx_teardown(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(gang_runs_every_job),
    cmocka_unit_test(station_skips_a_passed_board),
    cmocka_unit_test(station_reflash),
    cmocka_unit_test(station_stop_aborts),
    cmocka_unit_test(station_port_gone_ends_the_unit),
    cmocka_unit_test(gang_waits_for_a_vanished_port),
    cmocka_unit_test(gate_failed_mac),
    cmocka_unit_test(recorder_queries_in_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
