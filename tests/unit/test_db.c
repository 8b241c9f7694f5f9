/* test_db.c - the SQLite traceability log (src/db.c): migrations and version
 * refusal, the unit life cycle column by column, recovery after a crash,
 * durability of a finished unit when the process is SIGKILLed right after
 * eg_db_unit_finish() returns, reports (text and JSON lines) and the list of
 * failed slots. Each test works on a fresh database in a temporary folder and
 * checks what db.c wrote with plain SQL of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"

/* 2024-05-01T12:34:56.789Z */
#define T0 1714566896789LL

typedef struct fx {
  char dir[128];
  char path[160];
} fx;

static int setup(void **state) {
  fx *x = calloc(1, sizeof *x);
  snprintf(x->dir, sizeof x->dir, "/tmp/eg-db-XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  snprintf(x->path, sizeof x->path, "%s/log.db", x->dir);
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fx *x = *state;
  DIR *d = opendir(x->dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char p[512];
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", x->dir, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(x->dir);
  free(x);
  return 0;
}

static eg_db *open_ok(const fx *x) {
  eg_db *db = NULL;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err r = eg_db_open(&db, x->path, &f);
  if (r != EG_OK) fail_msg("eg_db_open: %s: %s", eg_err_name(r), f.msg);
  assert_non_null(db);
  return db;
}

/* A second, independent connection: what another process would see. */
static sqlite3 *raw(const fx *x) {
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open_v2(x->path, &s, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  return s;
}

/* A new file, as an older espgang would have created it. */
static sqlite3 *raw_create(const fx *x) {
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open_v2(x->path, &s, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
  return s;
}

/* First column of the first row as text ("(null)" for NULL, "(no row)"). */
static char *q(sqlite3 *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(s));
  sqlite3_free(sql);
  char *out;
  if (sqlite3_step(st) != SQLITE_ROW) out = strdup("(no row)");
  else if (sqlite3_column_type(st, 0) == SQLITE_NULL) out = strdup("(null)");
  else out = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

#define Q_EQ(s, want, ...)                                                             \
  do {                                                                                 \
    char *got_ = q(s, __VA_ARGS__);                                                    \
    if (strcmp(got_, want) != 0) fail_msg("%s\n  got  %s\n  want %s", #__VA_ARGS__, got_, want); \
    free(got_);                                                                        \
  } while (0)

static int64_t begin_run(eg_db *db, const char *station) {
  eg_run_info info = {.station = station, .operator_name = "alice", .host = "bench-3", .tool_version = "9.9.9",
                      .command_line = "espgang flash m.yaml", .manifest_path = "config/m.yaml",
                      .manifest_text = "station: x\n", .manifest_len = 11};
  static const uint8_t sha[32] = {0xab, 0xcd};
  info.manifest_sha256 = sha;
  int64_t id = 0;
  eg_fault f;
  const eg_err r = eg_db_run_begin(db, &info, &id, &f);
  if (r != EG_OK) fail_msg("run_begin: %s", f.msg);
  return id;
}

static void unit_init(eg_unit_record *u, const char *slot, int attempt) {
  eg_unit_record_init(u);
  snprintf(u->slot, sizeof u->slot, "%s", slot);
  snprintf(u->port, sizeof u->port, "/dev/tty%s", slot);
  u->attempt = attempt;
  u->started_ms = T0;
}

static int64_t unit_begin(eg_db *db, int64_t run, const eg_unit_record *u) {
  int64_t id = 0;
  eg_fault f;
  const eg_err r = eg_db_unit_begin(db, run, u, &id, &f);
  if (r != EG_OK) fail_msg("unit_begin: %s", f.msg);
  return id;
}

static void unit_finish(eg_db *db, int64_t id, eg_unit_record *u, eg_result res) {
  u->result = res;
  u->finished_ms = u->started_ms + 1500;
  eg_fault f;
  const eg_err r = eg_db_unit_finish(db, id, u, &f);
  if (r != EG_OK) fail_msg("unit_finish: %s", f.msg);
}

static void set_fault(eg_unit_record *u) {
  eg_fault_set(&u->fault, EG_DEVICE_STATUS, EG_STAGE_WRITE, 0x03, "FLASH_DATA failed: \"status\" 01 05");
  eg_fault_status(&u->fault, (const uint8_t[]){0x01, 0x05}, 2);
}

/* ------------------------------------------------------------ schema */

static int count_migrations(void) {
  DIR *d = opendir(EG_SOURCE_DIR "/schema/migrations");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strlen(e->d_name) > 4 && strcmp(e->d_name + strlen(e->d_name) - 4, ".sql") == 0) n++;
  closedir(d);
  return n;
}

static void test_open_migrate_reopen(void **state) {
  fx *x = *state;
  const int n = count_migrations();
  assert_true(n >= 1);
  eg_db *db = open_ok(x);
  assert_int_equal(eg_db_schema_version(db), n);
  eg_db_close(db);
  db = open_ok(x); /* nothing to apply the second time */
  assert_int_equal(eg_db_schema_version(db), n);
  sqlite3 *s = raw(x);
  char want[16];
  snprintf(want, sizeof want, "%d", n);
  Q_EQ(s, want, "SELECT COUNT(*) FROM schema_version");
  Q_EQ(s, "0001_initial.sql", "SELECT name FROM schema_version WHERE version = 1");
  Q_EQ(s, "0002_link_security_retry.sql", "SELECT name FROM schema_version WHERE version = 2");
  Q_EQ(s, "0003_station_units.sql", "SELECT name FROM schema_version WHERE version = 3");
  Q_EQ(s, "wal", "PRAGMA journal_mode");
  /* One *_ms column per stage of EG_STAGE_MAP. */
  for (int st = 0; st < EG_STAGE__COUNT; st++) {
    char col[64];
    snprintf(col, sizeof col, "%s_ms", eg_stage_name((eg_stage)st));
    Q_EQ(s, "1", "SELECT COUNT(*) FROM pragma_table_info('units') WHERE name = %Q", col);
  }
  Q_EQ(s, "1", "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'units_mac'");
  Q_EQ(s, "run_id,slot", "SELECT group_concat(name) FROM pragma_index_info('units_run_slot')");
  sqlite3_close(s);
  eg_db_close(db);
}

/* Describe a database's schema: every table's columns, every index's
 * columns, every view's columns, in a stable order. */
static char *describe(sqlite3 *s) {
  return q(s,
           "SELECT group_concat(d, ' | ') FROM ("
           " SELECT m.type || ' ' || m.name || ': ' || ("
           "   SELECT group_concat(c.name || ' ' || c.type || ' ' || c.\"notnull\" || ' ' || "
           "          coalesce(c.dflt_value, '-') || ' ' || c.pk, ', ') FROM pragma_table_info(m.name) AS c) AS d"
           " FROM sqlite_master AS m WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%%'"
           " UNION ALL"
           " SELECT 'index ' || m.name || ' on ' || m.tbl_name || ': ' || ("
           "   SELECT group_concat(i.name, ',') FROM pragma_index_info(m.name) AS i)"
           " FROM sqlite_master AS m WHERE m.type = 'index' AND m.sql IS NOT NULL"
           " ORDER BY 1)");
}

static void test_espgang_sql_matches_migrations(void **state) {
  fx *x = *state;
  eg_db_close(open_ok(x));
  sqlite3 *migrated = raw(x), *human = NULL;
  assert_int_equal(sqlite3_open(":memory:", &human), SQLITE_OK);
  FILE *fp = fopen(EG_SOURCE_DIR "/schema/espgang.sql", "rb");
  assert_non_null(fp);
  char *sql = calloc(1, 1 << 16);
  assert_true(fread(sql, 1, (1 << 16) - 1, fp) > 0);
  fclose(fp);
  char *err = NULL;
  if (sqlite3_exec(human, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("schema/espgang.sql: %s", err);
  free(sql);
  char *a = describe(migrated), *b = describe(human);
  if (strcmp(a, b) != 0) fail_msg("schema/espgang.sql differs from the migrations:\n  migrations %s\n  espgang.sql %s", a, b);
  assert_non_null(strstr(a, "table units: id INTEGER 0 - 1"));
  free(a), free(b);
  sqlite3_close(migrated);
  sqlite3_close(human);
}

static void test_refuses_newer_schema(void **state) {
  fx *x = *state;
  eg_db_close(open_ok(x));
  sqlite3 *s = raw(x);
  assert_int_equal(sqlite3_exec(s, "INSERT INTO schema_version VALUES (99, '0099_future.sql', 'x')", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(s);
  eg_db *db = (eg_db *)1;
  eg_fault f;
  assert_int_equal(eg_db_open(&db, x->path, &f), EG_DB);
  assert_null(db);
  assert_int_equal(f.code, EG_DB);
  assert_non_null(strstr(f.msg, "database schema version 99 is newer than this espgang"));
  assert_non_null(strstr(f.msg, "use a newer espgang"));
  /* Nothing was changed by the refusal. */
  s = raw(x);
  Q_EQ(s, "99", "SELECT MAX(version) FROM schema_version");
  sqlite3_close(s);
}

static void test_refuses_foreign_files(void **state) {
  fx *x = *state;
  sqlite3 *s = NULL;
  assert_int_equal(sqlite3_open(x->path, &s), SQLITE_OK);
  assert_int_equal(sqlite3_exec(s, "CREATE TABLE customers (id INTEGER)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(s);
  eg_db *db;
  eg_fault f;
  assert_int_equal(eg_db_open(&db, x->path, &f), EG_DB);
  assert_non_null(strstr(f.msg, "is not an espgang database"));
  s = raw(x);
  Q_EQ(s, "1", "SELECT COUNT(*) FROM sqlite_master"); /* untouched */
  sqlite3_close(s);

  char junk[200];
  snprintf(junk, sizeof junk, "%s/junk.db", x->dir);
  FILE *fp = fopen(junk, "wb");
  for (int i = 0; i < 200; i++) fputs("not a database at all ", fp);
  fclose(fp);
  assert_int_equal(eg_db_open(&db, junk, &f), EG_DB);
  assert_non_null(strstr(f.msg, "file is not a database"));

  assert_int_equal(eg_db_open(&db, "/nonexistent-dir/x.db", &f), EG_DB);
  assert_non_null(strstr(f.msg, "/nonexistent-dir/x.db"));
}

/* ------------------------------------------------------------ units */

static void test_unit_lifecycle(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  const int64_t run = begin_run(db, "line3-bench-A");
  eg_fault f;
  eg_image img;
  const uint8_t bytes[5] = {0xE9, 1, 2, 3, 4};
  assert_int_equal(eg_image_from_mem(&img, bytes, sizeof bytes, 0x1000, &f), EG_OK);
  assert_int_equal(eg_db_run_image(db, run, 0, &img, NULL, &f), EG_OK);
  char md5[33], sha[65];
  eg_hex(md5, img.md5, 16);
  eg_hex(sha, img.file_sha256, 32);
  eg_image_free(&img);

  eg_unit_record u;
  unit_init(&u, "A1", 1);
  snprintf(u.usb_location, sizeof u.usb_location, "1-1.4");
  const int64_t id = unit_begin(db, run, &u);
  sqlite3 *s = raw(x);
  Q_EQ(s, "in_progress", "SELECT result FROM units WHERE id = %lld", (long long)id);
  Q_EQ(s, "2024-05-01T12:34:56.789Z", "SELECT started_at FROM units WHERE id = %lld", (long long)id);
  Q_EQ(s, "(null)", "SELECT mac FROM units WHERE id = %lld", (long long)id);
  Q_EQ(s, "(null)", "SELECT chip FROM units WHERE id = %lld", (long long)id);
  Q_EQ(s, "(null)", "SELECT finished_at FROM units WHERE id = %lld", (long long)id);

  /* Identity learned. */
  snprintf(u.chip, sizeof u.chip, "ESP32");
  snprintf(u.chip_desc, sizeof u.chip_desc, "ESP32-D0WDQ6-V3 (revision v3.0)");
  u.rev_major = 3, u.rev_minor = 0;
  u.has_mac = true;
  memcpy(u.mac, (const uint8_t[]){0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01}, 6);
  u.has_flash_id = true;
  u.flash_id = 0x1640c8; /* GigaDevice GD25Q32: esptool prints c8 / 4016 */
  u.flash_size = 4u << 20;
  u.crystal_mhz = 40;
  u.baud = 921600;
  u.stub = true;
  u.stage_ms[EG_STAGE_SYNC] = 120;
  assert_int_equal(eg_db_unit_update(db, id, &u, &f), EG_OK);
  Q_EQ(s, "24:0a:c4:00:00:01", "SELECT mac FROM units WHERE id = %lld", (long long)id);
  Q_EQ(s, "in_progress", "SELECT result FROM units WHERE id = %lld", (long long)id);

  u.bytes_tx = 123456789012LL;
  u.bytes_rx = 4321;
  u.stage_ms[EG_STAGE_WRITE] = 7000;
  u.stage_ms[EG_STAGE_AFTER] = 5;
  unit_finish(db, id, &u, EG_RESULT_PASS);
  Q_EQ(s,
       "A1|/dev/ttyA1|1-1.4|1|ESP32|ESP32-D0WDQ6-V3 (revision v3.0)|3|0|24:0a:c4:00:00:01|1458376|c8|4016|4194304|40|"
       "921600|1|123456789012|4321|0|0|0|120|0|0|0|0|0|7000|0|0|5|2024-05-01T12:34:56.789Z|2024-05-01T12:34:58.289Z|"
       "1500|pass|(null)|(null)|(null)|(null)|(null)",
       "SELECT slot || '|' || port || '|' || usb_location || '|' || attempt || '|' || chip || '|' || chip_desc || '|' || "
       "rev_major || '|' || rev_minor || '|' || mac || '|' || flash_id || '|' || flash_mfr || '|' || flash_device || '|' "
       "|| flash_size || '|' || crystal_mhz || '|' || baud || '|' || stub || '|' || bytes_tx || '|' || bytes_rx || '|' "
       "|| none_ms || '|' || open_ms || '|' || reset_ms || '|' || sync_ms || '|' || detect_ms || '|' || stub_ms || '|' "
       "|| baud_ms || '|' || attach_ms || '|' || erase_ms || '|' || write_ms || '|' || verify_ms || '|' || read_ms || "
       "'|' || after_ms || '|' || started_at || '|' || finished_at || '|' || duration_ms || '|' || result || '|' || "
       "ifnull(fail_stage, '(null)') || '|' || ifnull(error_code, '(null)') || '|' || ifnull(opcode, '(null)') || '|' "
       "|| ifnull(status_bytes, '(null)') || '|' || ifnull(message, '(null)') FROM units WHERE id = %lld",
       (long long)id);

  /* A failure keeps what the chip said, field by field. */
  eg_unit_record v;
  unit_init(&v, "A2", 1);
  const int64_t id2 = unit_begin(db, run, &v);
  set_fault(&v);
  unit_finish(db, id2, &v, EG_RESULT_FAIL);
  Q_EQ(s, "fail|write|DEVICE_STATUS|3|01 05|FLASH_DATA failed: \"status\" 01 05",
       "SELECT result || '|' || fail_stage || '|' || error_code || '|' || opcode || '|' || status_bytes || '|' || "
       "message FROM units WHERE id = %lld",
       (long long)id2);

  Q_EQ(s, "running|2|1|1|0|2", "SELECT status || '|' || units || '|' || passed || '|' || failed || '|' || aborted || "
                               "'|' || attempts FROM runs WHERE id = %lld", (long long)run);
  assert_int_equal(eg_db_run_end(db, run, "finished", &f), EG_OK);
  Q_EQ(s, "finished|line3-bench-A|alice|bench-3|9.9.9|espgang flash m.yaml|config/m.yaml|station: x\n",
       "SELECT status || '|' || station || '|' || operator || '|' || host || '|' || tool_version || '|' || "
       "command_line || '|' || manifest_path || '|' || manifest_text FROM runs WHERE id = %lld", (long long)run);
  Q_EQ(s, "abcd000000000000000000000000000000000000000000000000000000000000",
       "SELECT manifest_sha256 FROM runs WHERE id = %lld", (long long)run);
  Q_EQ(s, "1", "SELECT ended_at >= started_at AND ended_at LIKE '____-__-__T__:__:__.___Z' FROM runs");
  char want[200];
  snprintf(want, sizeof want, "0|4096|8|5|%s|%s", sha, md5);
  Q_EQ(s, want, "SELECT idx || '|' || offset || '|' || size || '|' || file_size || '|' || sha256 || '|' || md5 "
                "FROM run_images WHERE run_id = %lld", (long long)run);
  sqlite3_close(s);

  /* Misuse is refused, not stored. */
  v.result = EG_RESULT_IN_PROGRESS;
  assert_int_equal(eg_db_unit_finish(db, id2, &v, &f), EG_INVAL);
  assert_int_equal(eg_db_unit_update(db, 424242, &v, &f), EG_INVAL);
  assert_int_equal(eg_db_run_end(db, run, "done", &f), EG_INVAL);
  assert_int_equal(eg_db_run_end(db, 777, "finished", &f), EG_INVAL);
  assert_non_null(strstr(f.msg, "no run 777"));
  eg_run_info none = {0};
  int64_t rid;
  assert_int_equal(eg_db_run_begin(db, &none, &rid, &f), EG_INVAL);
  /* A unit of a run that does not exist: the foreign key says no. */
  eg_unit_record w;
  unit_init(&w, "Z", 1);
  assert_int_equal(eg_db_unit_begin(db, 9999, &w, &rid, &f), EG_DB);
  assert_non_null(strstr(f.msg, "FOREIGN KEY"));
  eg_db_close(db);
}

/* ------------------------------------------------------------ recovery */

/* Group commit: a batch's calls share one transaction. Nothing of it shows
 * (another connection sees no row) before the commit; a refused call is
 * undone alone, its neighbours stay; after the commit every other call's
 * row is there; a second batch cannot open inside the first. */
static void test_batch_group_commit(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  const int64_t run = begin_run(db, "line3-bench-A");
  sqlite3 *s = raw(x);
  Q_EQ(s, "0", "SELECT COUNT(*) FROM units");
  char *e = NULL;
  if (sqlite3_exec(s,
                   "CREATE TRIGGER refuse_b2 BEFORE UPDATE ON units WHEN new.slot = 'B2' AND new.result <> 'in_progress' "
                   "BEGIN SELECT raise(abort, 'disk full (injected)'); END",
                   NULL, NULL, &e) != SQLITE_OK)
    fail_msg("trigger: %s", e);
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_db_batch_begin(db, &f), EG_OK);
  assert_int_equal(eg_db_batch_begin(db, &f), EG_INVAL);
  eg_unit_record u[3];
  int64_t id[3];
  const char *slots[3] = {"B1", "B2", "B3"};
  for (int i = 0; i < 3; i++) {
    unit_init(&u[i], slots[i], 1);
    id[i] = unit_begin(db, run, &u[i]);
  }
  /* B2's final row is refused inside the batch: only its own call is undone. */
  u[1].result = EG_RESULT_PASS;
  u[1].finished_ms = T0 + 1500;
  assert_int_equal(eg_db_unit_finish(db, id[1], &u[1], &f), EG_DB);
  if (!strstr(f.msg, "disk full (injected)")) fail_msg("refusal: %s", f.msg);
  unit_finish(db, id[2], &u[2], EG_RESULT_PASS);
  Q_EQ(s, "0", "SELECT COUNT(*) FROM units"); /* not committed yet */
  assert_int_equal(eg_db_batch_commit(db, &f), EG_OK);
  Q_EQ(s, "3", "SELECT COUNT(*) FROM units");
  Q_EQ(s, "in_progress", "SELECT result FROM units WHERE id = %lld", (long long)id[0]);
  Q_EQ(s, "in_progress", "SELECT result FROM units WHERE id = %lld", (long long)id[1]);
  Q_EQ(s, "pass", "SELECT result FROM units WHERE id = %lld", (long long)id[2]);
  Q_EQ(s, "1", "SELECT passed FROM runs WHERE id = %lld", (long long)run);
  assert_int_equal(eg_db_batch_commit(db, &f), EG_INVAL);
  /* Outside a batch each call commits by itself again. */
  unit_finish(db, id[0], &u[0], EG_RESULT_PASS);
  Q_EQ(s, "pass", "SELECT result FROM units WHERE id = %lld", (long long)id[0]);
  sqlite3_close(s);
  eg_db_close(db);
}

static void test_recover_after_crash(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  const int64_t run = begin_run(db, "s");
  eg_unit_record u;
  unit_init(&u, "A1", 1);
  const int64_t done = unit_begin(db, run, &u);
  unit_finish(db, done, &u, EG_RESULT_PASS);
  unit_init(&u, "A2", 1);
  u.started_ms = T0 + 60000;
  const int64_t left = unit_begin(db, run, &u);
  /* This handle's own live run is not "crashed". */
  int n = -1;
  eg_fault f;
  assert_int_equal(eg_db_recover(db, &n, &f), EG_OK);
  assert_int_equal(n, 0);
  eg_db_close(db); /* the "crash": neither the unit nor the run is ended */

  db = open_ok(x);
  assert_int_equal(eg_db_recover(db, &n, &f), EG_OK);
  assert_int_equal(n, 1);
  sqlite3 *s = raw(x);
  Q_EQ(s, "aborted|process ended before this unit finished",
       "SELECT result || '|' || message FROM units WHERE id = %lld", (long long)left);
  Q_EQ(s, "pass", "SELECT result FROM units WHERE id = %lld", (long long)done);
  /* The run ends at its last evidence: A2's start. */
  Q_EQ(s, "crashed|2024-05-01T12:35:56.789Z|2|1|0|1",
       "SELECT status || '|' || ended_at || '|' || units || '|' || passed || '|' || failed || '|' || aborted "
       "FROM runs WHERE id = %lld", (long long)run);
  sqlite3_close(s);
  assert_int_equal(eg_db_recover(db, &n, &f), EG_OK);
  assert_int_equal(n, 0);
  eg_db_close(db);
}

/* A run being written by another live process on this host is left alone. */
static void test_recover_spares_live_process(void **state) {
  fx *x = *state;
  eg_db_close(open_ok(x));
  int ready[2], go[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(go), 0);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* Only this side's ends: if the parent dies, read() sees EOF and the
     * child ends too instead of lingering. */
    close(ready[0]), close(go[1]);
    eg_db *db = open_ok(x);
    eg_unit_record u;
    unit_init(&u, "C1", 1);
    unit_begin(db, begin_run(db, "child"), &u);
    char c = 'r';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    if (read(go[0], &c, 1) != 1) _exit(3);
    _exit(0); /* ends without finishing: a crash */
  }
  close(ready[1]), close(go[0]);
  char c;
  assert_int_equal(read(ready[0], &c, 1), 1);
  eg_db *db = open_ok(x);
  int n = -1;
  eg_fault f;
  assert_int_equal(eg_db_recover(db, &n, &f), EG_OK);
  assert_int_equal(n, 0);
  assert_int_equal(write(go[1], "g", 1), 1);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(eg_db_recover(db, &n, &f), EG_OK);
  assert_int_equal(n, 1);
  eg_db_close(db);
  close(ready[0]), close(go[1]);
}

/* The child finishes a unit and is SIGKILLed the moment the call returns:
 * no destructor, no close, no checkpoint. The row must be there. */
static void test_finish_is_durable_under_sigkill(void **state) {
  fx *x = *state;
  eg_db_close(open_ok(x));
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    eg_db *db = open_ok(x);
    eg_unit_record u;
    unit_init(&u, "K1", 1);
    u.has_mac = true;
    memcpy(u.mac, (const uint8_t[]){0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56}, 6);
    const int64_t id = unit_begin(db, begin_run(db, "killed"), &u);
    u.result = EG_RESULT_PASS;
    u.finished_ms = u.started_ms + 42;
    eg_fault f;
    if (eg_db_unit_finish(db, id, &u, &f) != EG_OK) _exit(1);
    kill(getpid(), SIGKILL);
    _exit(2);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGKILL);
  eg_db *db = open_ok(x);
  sqlite3 *s = raw(x);
  Q_EQ(s, "pass|24:0a:c4:12:34:56|42", "SELECT result || '|' || mac || '|' || duration_ms FROM units WHERE slot = 'K1'");
  Q_EQ(s, "1|1", "SELECT units || '|' || passed FROM runs WHERE station = 'killed'");
  sqlite3_close(s);
  /* The run itself was never ended: recovery marks it crashed, not the unit. */
  int n = -1;
  eg_fault f;
  assert_int_equal(eg_db_recover(db, &n, &f), EG_OK);
  assert_int_equal(n, 0);
  s = raw(x);
  Q_EQ(s, "crashed|pass", "SELECT r.status || '|' || u.result FROM runs r JOIN units u ON u.run_id = r.id");
  sqlite3_close(s);
  eg_db_close(db);
}

static void must_contain(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("missing \"%s\" in:\n%s", needle, text);
}

static void test_failed_slots(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  char **slots;
  size_t n;
  eg_fault f;
  assert_int_equal(eg_db_failed_slots(db, 0, &slots, &n, &f), EG_INVAL);
  must_contain(f.msg, "no runs");

  const int64_t run = begin_run(db, "s");
  static const struct { const char *slot; int attempt; eg_result res; } plan[] = {
    {"A", 1, EG_RESULT_FAIL}, {"B", 1, EG_RESULT_FAIL}, {"C", 1, EG_RESULT_PASS}, {"D", 1, EG_RESULT_FAIL},
    {"A", 2, EG_RESULT_PASS}, {"D", 2, EG_RESULT_ABORTED}, {"E", 1, EG_RESULT_IN_PROGRESS},
  };
  for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
    eg_unit_record u;
    unit_init(&u, plan[i].slot, plan[i].attempt);
    const int64_t id = unit_begin(db, run, &u);
    if (plan[i].res != EG_RESULT_IN_PROGRESS) unit_finish(db, id, &u, plan[i].res);
  }
  /* Later run, other slots: run 0 means this one, not the first. */
  const int64_t run2 = begin_run(db, "s2");
  eg_unit_record u;
  unit_init(&u, "Q", 1);
  unit_finish(db, unit_begin(db, run2, &u), &u, EG_RESULT_FAIL);

  assert_int_equal(eg_db_failed_slots(db, run, &slots, &n, &f), EG_OK);
  assert_int_equal(n, 3); /* B failed, D's latest aborted, E never finished; A passed on retry */
  assert_string_equal(slots[0], "B");
  assert_string_equal(slots[1], "D");
  assert_string_equal(slots[2], "E");
  for (size_t i = 0; i < n; i++) free(slots[i]);
  free(slots);
  assert_int_equal(eg_db_failed_slots(db, 0, &slots, &n, &f), EG_OK);
  assert_int_equal(n, 1);
  assert_string_equal(slots[0], "Q");
  free(slots[0]);
  free(slots);
  assert_int_equal(eg_db_failed_slots(db, 99, &slots, &n, &f), EG_INVAL);
  eg_db_close(db);
}

/* A station session seats many boards in one slot, each beginning at
 * attempt 1: every one is a unit in the stored counts and latest_units. */
static void test_station_units_counted(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  eg_run_info info = {.station = "st", .kind = EG_RUN_STATION};
  int64_t run = 0;
  eg_fault f;
  if (eg_db_run_begin(db, &info, &run, &f) != EG_OK) fail_msg("run_begin: %s", f.msg);
  static const struct { const char *slot; int attempt; eg_result res; } plan[] = {
    {"S1", 1, EG_RESULT_PASS}, {"S2", 1, EG_RESULT_FAIL}, {"S1", 1, EG_RESULT_FAIL}, {"S1", 2, EG_RESULT_PASS},
    {"S2", 1, EG_RESULT_SKIPPED}, {"S1", 1, EG_RESULT_ABORTED}, {"S2", 1, EG_RESULT_FAIL},
  };
  for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
    eg_unit_record u;
    unit_init(&u, plan[i].slot, plan[i].attempt);
    unit_finish(db, unit_begin(db, run, &u), &u, plan[i].res);
  }
  assert_int_equal(eg_db_run_end(db, run, "finished", &f), EG_OK);
  sqlite3 *s = raw(x);
  /* S1: pass; fail then pass on its retry; aborted. S2: fail, skipped, fail. */
  Q_EQ(s, "6|2|2|1|1|7", "SELECT units || '|' || passed || '|' || failed || '|' || aborted || '|' || skipped || '|' || "
                          "attempts FROM runs WHERE id = %lld", (long long)run);
  Q_EQ(s, "S1:pass,S2:fail,S1:pass,S2:skipped,S1:aborted,S2:fail",
       "SELECT group_concat(slot || ':' || result) FROM (SELECT * FROM latest_units WHERE run_id = %lld ORDER BY id)",
       (long long)run);
  sqlite3_close(s);
  eg_db_close(db);
}

/* ------------------------------------------------------------ migration 0002 */

static char *read_text(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) fail_msg("cannot open %s", path);
  char *buf = calloc(1, 1 << 16);
  assert_true(fread(buf, 1, (1 << 16) - 1, fp) > 0);
  fclose(fp);
  return buf;
}

/* A database as espgang with schema 1 left it: 0001 applied, two runs,
 * three units (one in a slot retried), then opened by this espgang. */
static void test_migrates_version_1_keeping_rows(void **state) {
  fx *x = *state;
  sqlite3 *s = raw_create(x);
  char *sql = read_text(EG_SOURCE_DIR "/schema/migrations/0001_initial.sql");
  char *err = NULL;
  if (sqlite3_exec(s, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("0001: %s", err);
  free(sql);
  if (sqlite3_exec(s,
                   "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);"
                   "INSERT INTO schema_version VALUES (1, '0001_initial.sql', '2024-01-01T00:00:00.000Z');"
                   "INSERT INTO runs (id, started_at, station, status, units, passed, failed, attempts) "
                   "  VALUES (7, '2024-01-01T00:00:00.000Z', 'old', 'finished', 2, 1, 1, 3);"
                   "INSERT INTO run_images VALUES (7, 0, 4096, 8, 5, 'bl.bin', 'aa', 'bb');"
                   "INSERT INTO units (id, run_id, slot, port, attempt, mac, baud, started_at, result, error_code, "
                   "  status_bytes, write_ms) VALUES "
                   "  (40, 7, 'A1', '/dev/ttyA1', 1, '24:0a:c4:00:00:01', 921600, '2024-01-01T00:00:01.000Z', 'fail', "
                   "   'DEVICE_STATUS', '01 05', 700),"
                   "  (41, 7, 'A1', '/dev/ttyA1', 2, '24:0a:c4:00:00:01', 921600, '2024-01-01T00:00:02.000Z', 'pass', "
                   "   NULL, NULL, 800),"
                   "  (45, 7, 'A2', '/dev/ttyA2', 1, NULL, NULL, '2024-01-01T00:00:01.000Z', 'fail', 'NO_SYNC', NULL, 0);",
                   NULL, NULL, &err) != SQLITE_OK)
    fail_msg("filling a schema 1 database: %s", err);
  sqlite3_close(s);

  eg_db *db = open_ok(x);
  assert_int_equal(eg_db_schema_version(db), count_migrations());
  s = raw(x);
  Q_EQ(s, "40,41,45", "SELECT group_concat(id) FROM (SELECT id FROM units ORDER BY id)");
  Q_EQ(s, "41|pass|800|921600|(null)|(null)|(null)",
       "SELECT id || '|' || result || '|' || write_ms || '|' || baud || '|' || ifnull(transport, '(null)') || '|' || "
       "ifnull(fallbacks, '(null)') || '|' || ifnull(secure_boot, '(null)') FROM latest_units WHERE slot = 'A1'");
  Q_EQ(s, "01 05", "SELECT status_bytes FROM units WHERE id = 40");
  Q_EQ(s, "flash|(null)|(null)|(null)",
       "SELECT kind || '|' || ifnull(parent_run_id, '(null)') || '|' || ifnull(retry_mode, '(null)') || '|' || "
       "ifnull((SELECT chip FROM run_images WHERE run_id = 7), '(null)') FROM runs WHERE id = 7");
  Q_EQ(s, "units_mac,units_run_slot",
       "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'units' "
       "AND sql IS NOT NULL ORDER BY name)");
  Q_EQ(s, "(no row)", "PRAGMA foreign_key_check");
  Q_EQ(s, "ok", "PRAGMA integrity_check");
  /* 'skipped' is now a result; anything else still is not. */
  assert_int_equal(sqlite3_exec(s, "UPDATE units SET result = 'skipped' WHERE id = 45", NULL, NULL, NULL), SQLITE_OK);
  assert_int_not_equal(sqlite3_exec(s, "UPDATE units SET result = 'maybe' WHERE id = 45", NULL, NULL, NULL), SQLITE_OK);
  /* New units continue after the copied ids. */
  eg_unit_record u;
  unit_init(&u, "A3", 1);
  assert_true(unit_begin(db, 7, &u) > 45);
  sqlite3_close(s);
  eg_db_close(db);
}

/* A database at schema 2 holding a station session stored with per-slot
 * counts (three boards in one slot counted as one): 0003 recounts it and
 * leaves a gang run's counts alone. */
static void test_migrates_version_2_recounts_stations(void **state) {
  fx *x = *state;
  sqlite3 *s = raw_create(x);
  char *err = NULL;
  const char *files[] = {"0001_initial.sql", "0002_link_security_retry.sql"};
  for (size_t i = 0; i < 2; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/schema/migrations/%s", EG_SOURCE_DIR, files[i]);
    char *sql = read_text(path);
    if (sqlite3_exec(s, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", files[i], err);
    free(sql);
  }
  if (sqlite3_exec(s,
                   "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);"
                   "INSERT INTO schema_version VALUES (1, '0001_initial.sql', '2026-01-01T00:00:00.000Z');"
                   "INSERT INTO schema_version VALUES (2, '0002_link_security_retry.sql', '2026-01-01T00:00:00.000Z');"
                   "INSERT INTO runs (id, started_at, station, status, kind, units, passed, failed, attempts) VALUES "
                   "  (1, '2026-01-01T00:00:00.000Z', 'st', 'finished', 'station', 1, 0, 1, 3),"
                   "  (2, '2026-01-01T00:00:00.000Z', 'gang', 'finished', 'flash', 1, 1, 0, 2);"
                   "INSERT INTO units (id, run_id, slot, port, attempt, started_at, result) VALUES "
                   "  (1, 1, 'S1', 'p', 1, 'x', 'pass'), (2, 1, 'S1', 'p', 1, 'x', 'skipped'),"
                   "  (3, 1, 'S1', 'p', 1, 'x', 'fail'),"
                   "  (4, 2, 'A', 'p', 1, 'x', 'fail'), (5, 2, 'A', 'p', 2, 'x', 'pass');",
                   NULL, NULL, &err) != SQLITE_OK)
    fail_msg("filling a schema 2 database: %s", err);
  sqlite3_close(s);
  eg_db *db = open_ok(x);
  s = raw(x);
  Q_EQ(s, "1:3|1|1|0|1|3;2:1|1|0|0|0|2",
       "SELECT group_concat(id || ':' || units || '|' || passed || '|' || failed || '|' || ifnull(aborted, 0) || '|' || "
       "ifnull(skipped, 0) || '|' || attempts, ';') FROM (SELECT * FROM runs ORDER BY id)");
  Q_EQ(s, "1,2,3,5", "SELECT group_concat(id) FROM (SELECT id FROM latest_units ORDER BY id)");
  sqlite3_close(s);
  eg_db_close(db);
}

/* Every column migration 0002 added, written from the record and the run info. */
static void test_link_security_images_and_chain(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  const int64_t parent = begin_run(db, "st");
  eg_run_info info = {.station = "st", .kind = EG_RUN_STATION, .parent_run_id = parent, .retry_mode = EG_RETRY_MAC};
  int64_t run = 0;
  eg_fault f;
  if (eg_db_run_begin(db, &info, &run, &f) != EG_OK) fail_msg("run_begin: %s", f.msg);
  eg_image img;
  const uint8_t bytes[4] = {1, 2, 3, 4};
  assert_int_equal(eg_image_from_mem(&img, bytes, 4, 0x0, &f), EG_OK);
  assert_int_equal(eg_db_run_image(db, run, 0, &img, "ESP32-C3", &f), EG_OK);
  assert_int_equal(eg_db_run_image(db, run, 1, &img, NULL, &f), EG_OK);
  eg_image_free(&img);

  eg_unit_record u;
  unit_init(&u, "B7", 2);
  u.transport = EG_TRANSPORT_USB_SERIAL_JTAG;
  u.has_sec_info = true;
  u.sec_flags = 0x5;
  u.flash_crypt_cnt = 0x7;
  memcpy(u.key_purposes, (const uint8_t[]){0x0c, 0x0d, 0, 0, 0, 0, 0x01}, 7);
  u.nkey_purposes = 7;
  u.secure_boot = EG_TRI_YES;
  u.flash_encryption = EG_TRI_NO;
  u.baud_requested = 921600;
  u.baud = 460800;
  u.port_wait_ms = 2500;
  eg_unit_fallback(&u, "ROM CHANGE_BAUDRATE failed: reconnected at 115200, stub set 921600");
  eg_unit_fallback(&u, "921600 -> 460800 at image 1 block 37");
  const int64_t id = unit_begin(db, run, &u);
  eg_unit_image(&u, 0, 0x0, EG_IMAGE_SKIPPED, 12);
  eg_unit_image(&u, 1, 0x10000, EG_IMAGE_WRITTEN, 900);
  assert_int_equal(eg_db_unit_update(db, id, &u, &f), EG_OK);
  sqlite3 *s = raw(x);
  Q_EQ(s, "0|0|skipped|12;1|65536|written|900",
       "SELECT group_concat(idx || '|' || offset || '|' || action || '|' || duration_ms, ';') FROM "
       "(SELECT * FROM unit_images WHERE unit_id = %lld ORDER BY idx)", (long long)id);
  eg_unit_image(&u, 1, 0x10000, EG_IMAGE_VERIFIED, 1000);
  unit_finish(db, id, &u, EG_RESULT_SKIPPED);
  Q_EQ(s, "0|0|skipped|12;1|65536|verified|1000",
       "SELECT group_concat(idx || '|' || offset || '|' || action || '|' || duration_ms, ';') FROM "
       "(SELECT * FROM unit_images WHERE unit_id = %lld ORDER BY idx)", (long long)id);
  Q_EQ(s,
       "usb-serial-jtag|5|7|0c0d0000000001|1|0|(null)|921600|460800|2|"
       "ROM CHANGE_BAUDRATE failed: reconnected at 115200, stub set 921600\n921600 -> 460800 at image 1 block 37|2500|skipped",
       "SELECT transport || '|' || sec_flags || '|' || flash_crypt_cnt || '|' || key_purposes || '|' || secure_boot || "
       "'|' || flash_encryption || '|' || ifnull(secure_download, '(null)') || '|' || baud_requested || '|' || baud || "
       "'|' || fallbacks || '|' || fallback_log || '|' || port_wait_ms || '|' || result FROM units WHERE id = %lld",
       (long long)id);
  char want[64];
  snprintf(want, sizeof want, "station|%lld|mac|1|0|1", (long long)parent);
  Q_EQ(s, want, "SELECT kind || '|' || parent_run_id || '|' || retry_mode || '|' || units || '|' || passed || '|' || "
                "skipped FROM runs WHERE id = %lld", (long long)run);
  Q_EQ(s, "flash|(null)|(null)", "SELECT kind || '|' || ifnull(parent_run_id, '(null)') || '|' || "
                                 "ifnull(retry_mode, '(null)') FROM runs WHERE id = %lld", (long long)parent);
  Q_EQ(s, "ESP32-C3|(null)", "SELECT group_concat(ifnull(chip, '(null)'), '|') FROM "
                             "(SELECT chip FROM run_images WHERE run_id = %lld ORDER BY idx)", (long long)run);
  /* A record with nothing known stores NULLs, not zeros. */
  eg_unit_record v;
  unit_init(&v, "B8", 1);
  const int64_t id2 = unit_begin(db, run, &v);
  Q_EQ(s, "(null)|(null)|(null)|(null)|(null)|0|(null)|0",
       "SELECT ifnull(transport, '(null)') || '|' || ifnull(sec_flags, '(null)') || '|' || "
       "ifnull(key_purposes, '(null)') || '|' || ifnull(secure_boot, '(null)') || '|' || "
       "ifnull(baud_requested, '(null)') || '|' || fallbacks || '|' || ifnull(fallback_log, '(null)') || '|' || "
       "(SELECT COUNT(*) FROM unit_images WHERE unit_id = %lld) FROM units WHERE id = %lld",
       (long long)id2, (long long)id2);
  sqlite3_close(s);
  /* A retry mode without a parent is not stored; a kind out of range is refused. */
  info = (eg_run_info){.station = "st", .kind = (eg_run_kind)7};
  assert_int_equal(eg_db_run_begin(db, &info, &run, &f), EG_INVAL);
  eg_db_close(db);
}

static void test_fallback_log_bounded(void **state) {
  (void)state;
  eg_unit_record u;
  eg_unit_record_init(&u);
  for (int i = 0; i < 100; i++) eg_unit_fallback(&u, "fallback number %d with some words after it", i);
  assert_int_equal(u.fallbacks, 100);
  assert_true(strlen(u.fallback_log) < sizeof u.fallback_log);
  assert_memory_equal(u.fallback_log, "fallback number 0 with", 22);
  const size_t n = strlen(u.fallback_log);
  assert_string_equal(u.fallback_log + n - 4, "\n...");
  assert_null(strstr(u.fallback_log, "\n...\n"));
  /* Entries by run image index, in the order touched; an index is updated
   * in place; a record holds at most EG_UNIT_MAX_IMAGES. */
  eg_unit_image(&u, 20, 0x8000, EG_IMAGE_WRITTEN, 1);
  eg_unit_image(&u, 2, 0x1000, EG_IMAGE_SKIPPED, 2);
  eg_unit_image(&u, 20, 0x8000, EG_IMAGE_FAILED, 3);
  assert_int_equal(u.nimages, 2);
  assert_int_equal(u.images[0].idx, 20);
  assert_int_equal(u.images[0].action, EG_IMAGE_FAILED);
  assert_int_equal(u.images[0].duration_ms, 3);
  assert_int_equal(u.images[1].idx, 2);
  for (unsigned i = 100; i < 100 + EG_UNIT_MAX_IMAGES; i++) eg_unit_image(&u, i, 0, EG_IMAGE_WRITTEN, 1);
  assert_int_equal(u.nimages, EG_UNIT_MAX_IMAGES); /* the last ones did not fit */
  assert_int_equal(u.images[EG_UNIT_MAX_IMAGES - 1].idx, 100 + EG_UNIT_MAX_IMAGES - 3);
  assert_string_equal(eg_image_action_name(EG_IMAGE_FAILED), "failed");
  assert_null(eg_image_action_name(EG_IMAGE_NONE));
  assert_string_equal(eg_transport_name(EG_TRANSPORT_USB_OTG), "usb-otg");
  assert_null(eg_transport_name(EG_TRANSPORT_UNKNOWN));
  assert_null(eg_transport_name((eg_transport)99));
}

/* ------------------------------------------------------------ rerun from the log */

static int64_t run_of(eg_db *db, const char *station, uint8_t sha0, int64_t parent, eg_retry_mode mode) {
  uint8_t sha[32] = {sha0};
  eg_run_info info = {.station = station, .manifest_sha256 = sha, .parent_run_id = parent, .retry_mode = mode};
  int64_t id = 0;
  eg_fault f;
  if (eg_db_run_begin(db, &info, &id, &f) != EG_OK) fail_msg("run_begin: %s", f.msg);
  return id;
}

static void attempt(eg_db *db, int64_t run, const char *slot, int n, const char *mac, eg_result res) {
  eg_unit_record u;
  unit_init(&u, slot, n);
  if (mac) {
    u.has_mac = true;
    sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &u.mac[0], &u.mac[1], &u.mac[2], &u.mac[3], &u.mac[4], &u.mac[5]);
  }
  unit_finish(db, unit_begin(db, run, &u), &u, res);
}

static void test_rerun_queries(void **state) {
  fx *x = *state;
  eg_db *db = open_ok(x);
  eg_fault f;
  int64_t latest;
  const uint8_t sha_a[32] = {0xaa};
  assert_int_equal(eg_db_latest_run(db, "A", sha_a, &latest, &f), EG_INVAL);
  must_contain(f.msg, "no run of station A");
  /* Station A manifest a: slot S2 fails; then station B runs (the latest run
   * of the file); then A with another manifest. */
  const int64_t a1 = run_of(db, "A", 0xaa, 0, EG_RETRY_NONE);
  attempt(db, a1, "S1", 1, "24:0a:c4:00:00:01", EG_RESULT_PASS);
  attempt(db, a1, "S2", 1, NULL, EG_RESULT_FAIL);                 /* failed before the MAC */
  attempt(db, a1, "S2", 2, "24:0a:c4:00:00:02", EG_RESULT_FAIL);
  attempt(db, a1, "S3", 1, "24:0a:c4:00:00:03", EG_RESULT_FAIL);
  eg_image img;
  const uint8_t bytes[4] = {1, 2, 3, 4};
  assert_int_equal(eg_image_from_mem(&img, bytes, 4, 0x10000, &f), EG_OK);
  assert_int_equal(eg_db_run_image(db, a1, 0, &img, NULL, &f), EG_OK);
  assert_int_equal(eg_db_run_image(db, a1, 1, &img, "ESP32-C3", &f), EG_OK);
  char sha[65];
  eg_hex(sha, img.file_sha256, 32);
  eg_image_free(&img);
  const int64_t b1 = run_of(db, "B", 0xbb, 0, EG_RETRY_NONE);
  attempt(db, b1, "S9", 1, NULL, EG_RESULT_PASS);
  run_of(db, "A", 0xbb, 0, EG_RETRY_NONE);

  assert_int_equal(eg_db_latest_run(db, "A", sha_a, &latest, &f), EG_OK);
  assert_int_equal(latest, a1); /* not B's run, not A's other manifest */
  char **slots;
  size_t n;
  assert_int_equal(eg_db_failed_slots(db, latest, &slots, &n, &f), EG_OK);
  assert_int_equal(n, 2);
  assert_string_equal(slots[0], "S2");
  assert_string_equal(slots[1], "S3");
  for (size_t i = 0; i < n; i++) free(slots[i]);
  free(slots);

  /* A retry by MAC: S2's board fails again, S3's passes, S1's was already
   * good and is skipped; a skipped slot is not "failed" for the next retry. */
  const int64_t a2 = run_of(db, "A", 0xaa, a1, EG_RETRY_MAC);
  attempt(db, a2, "S2", 1, "24:0a:c4:00:00:02", EG_RESULT_FAIL);
  attempt(db, a2, "S3", 1, "24:0a:c4:00:00:03", EG_RESULT_PASS);
  attempt(db, a2, "S1", 1, "24:0a:c4:00:00:01", EG_RESULT_SKIPPED);
  assert_int_equal(eg_db_latest_run(db, "A", sha_a, &latest, &f), EG_OK);
  assert_int_equal(latest, a2);
  assert_int_equal(eg_db_failed_slots(db, latest, &slots, &n, &f), EG_OK);
  assert_int_equal(n, 1);
  assert_string_equal(slots[0], "S2");
  free(slots[0]);
  free(slots);

  static const struct { const char *station; uint8_t sha; const char *mac; bool want; } macs[] = {
    {"A", 0xaa, "24:0a:c4:00:00:02", true},  /* failed, never passed */
    {"A", 0xaa, "24:0a:c4:00:00:03", false}, /* failed, then passed */
    {"A", 0xaa, "24:0a:c4:00:00:01", false}, /* never failed */
    {"B", 0xbb, "24:0a:c4:00:00:02", false}, /* another station's log */
    {"A", 0xbb, "24:0a:c4:00:00:02", false}, /* another manifest */
    {"A", 0xaa, "24:0a:c4:00:00:99", false}, /* never seen */
  };
  for (size_t i = 0; i < sizeof macs / sizeof macs[0]; i++) {
    const uint8_t s32[32] = {macs[i].sha};
    bool retry = !macs[i].want;
    assert_int_equal(eg_db_mac_needs_retry(db, macs[i].station, s32, macs[i].mac, &retry, &f), EG_OK);
    if (retry != macs[i].want) fail_msg("%s %02x %s: retry %d, want %d", macs[i].station, macs[i].sha, macs[i].mac, retry, macs[i].want);
  }
  /* A MAC-less failure counts for the MAC its slot read later in that run:
   * S4 fails before the MAC, then passes with it; later fails without it. */
  const int64_t a3 = run_of(db, "A", 0xaa, 0, EG_RETRY_NONE);
  attempt(db, a3, "S4", 1, "24:0a:c4:00:00:04", EG_RESULT_PASS);
  const int64_t a4 = run_of(db, "A", 0xaa, 0, EG_RETRY_NONE);
  attempt(db, a4, "S4", 1, NULL, EG_RESULT_FAIL);
  attempt(db, a4, "S4", 2, "24:0a:c4:00:00:04", EG_RESULT_ABORTED);
  bool retry = false;
  assert_int_equal(eg_db_mac_needs_retry(db, "A", sha_a, "24:0a:c4:00:00:04", &retry, &f), EG_OK);
  assert_true(retry);
  /* A station session: many boards in one slot. Board 05 passes; the next
   * board in that slot fails before its MAC is read: not 05's failure. */
  uint8_t sha_s[32] = {0x55};
  eg_run_info st = {.station = "A", .manifest_sha256 = sha_s, .kind = EG_RUN_STATION};
  int64_t s1 = 0;
  assert_int_equal(eg_db_run_begin(db, &st, &s1, &f), EG_OK);
  attempt(db, s1, "S5", 1, "24:0a:c4:00:00:05", EG_RESULT_PASS);
  attempt(db, s1, "S5", 1, NULL, EG_RESULT_FAIL);
  retry = true;
  assert_int_equal(eg_db_mac_needs_retry(db, "A", sha_s, "24:0a:c4:00:00:05", &retry, &f), EG_OK);
  assert_false(retry);

  eg_db_image_ref *refs;
  assert_int_equal(eg_db_run_images(db, a1, &refs, &n, &f), EG_OK);
  assert_int_equal(n, 2);
  assert_int_equal(refs[0].offset, 0x10000);
  assert_string_equal(refs[0].sha256, sha);
  assert_string_equal(refs[0].chip, "");
  assert_string_equal(refs[1].chip, "ESP32-C3");
  free(refs);
  assert_int_equal(eg_db_run_images(db, 999, &refs, &n, &f), EG_INVAL);
  eg_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
    cmocka_unit_test_setup_teardown(test_espgang_sql_matches_migrations, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refuses_newer_schema, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refuses_foreign_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unit_lifecycle, setup, teardown),
    cmocka_unit_test_setup_teardown(test_batch_group_commit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recover_after_crash, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recover_spares_live_process, setup, teardown),
    cmocka_unit_test_setup_teardown(test_finish_is_durable_under_sigkill, setup, teardown),
    cmocka_unit_test_setup_teardown(test_failed_slots, setup, teardown),
    cmocka_unit_test_setup_teardown(test_station_units_counted, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrates_version_1_keeping_rows, setup, teardown),
    cmocka_unit_test_setup_teardown(test_migrates_version_2_recounts_stations, setup, teardown),
    cmocka_unit_test_setup_teardown(test_link_security_images_and_chain, setup, teardown),
    cmocka_unit_test(test_fallback_log_bounded),
    cmocka_unit_test_setup_teardown(test_rerun_queries, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
