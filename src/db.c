/* db.c - the SQLite traceability log (see db.h).
 *
 * The schema lives in schema/migrations/NNNN_*.sql; cmake/embed_sql.cmake
 * embeds those files into eg_migrations.h at configure time, and
 * eg_db_open() applies the ones a database lacks, in order, in one
 * transaction, recording each in schema_version.
 *
 * Durability: WAL with synchronous=FULL makes every COMMIT fsync the WAL
 * before it returns, so a finished unit survives the process being killed
 * (or the power going) right after eg_db_unit_finish() returns.
 */
#include "db.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if __has_include("eg_migrations.h")
#include "eg_migrations.h"
#define EG_NMIGRATIONS ((int)(sizeof eg_migrations / sizeof eg_migrations[0]))
#else
/* Built without cmake/embed_sql.cmake: eg_db_open() refuses to run rather
 * than create a database without tables. */
typedef struct eg_migration {
  int version;
  const char *name;
  const char *sql;
} eg_migration;
static const eg_migration *const eg_migrations = NULL;
#define EG_NMIGRATIONS 0
#endif

#define BUSY_TIMEOUT_MS 5000
#define ABORTED_MSG "process ended before this unit finished"

/* Every column of `units` that eg_unit_record fills, in binding order. One
 * *_ms column per stage, generated from EG_STAGE_MAP so they cannot drift
 * apart (a stage without its column fails at prepare time, in the tests). */
static const char *const unit_cols[] = {
  "slot", "port", "usb_location", "attempt", "transport", "chip", "chip_desc", "rev_major", "rev_minor", "mac",
  "flash_id", "flash_mfr", "flash_device", "flash_size", "crystal_mhz", "sec_flags", "flash_crypt_cnt",
  "key_purposes", "secure_boot", "flash_encryption", "secure_download", "baud_requested", "baud", "fallbacks",
  "fallback_log", "port_wait_ms", "stub", "bytes_tx", "bytes_rx",
#define EG_DB_STAGE_COL(name, str, label) str "_ms",
  EG_STAGE_MAP(EG_DB_STAGE_COL)
#undef EG_DB_STAGE_COL
  "started_at", "finished_at", "duration_ms", "result", "fail_stage", "error_code", "opcode", "status_bytes",
  "message",
};
#define NUNIT_COLS (sizeof unit_cols / sizeof unit_cols[0])

/* Statements prepared once, on first use, and kept for the handle's life. */
typedef enum stmt_id {
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_SAVEPOINT,
  S_RELEASE,
  S_ROLLBACK_TO,
  S_RUN_INSERT,
  S_RUN_IMAGE,
  S_RUN_END,
  S_RUN_COUNTS,
  S_RUN_EXISTS,
  S_RUN_LATEST,
  S_UNIT_INSERT,
  S_UNIT_UPDATE,
  S_UNIT_RESULT,
  S_UNIT_IMAGE,
  S_FAILED_SLOTS,
  S_LATEST_RUN_OF,
  S_MAC_LAST_FAIL,
  S_MAC_PASS_AFTER,
  S_RUN_IMAGES,
  S_RECOVER_RUNS,
  S_RECOVER_UNITS,
  S_RECOVER_RUN,
  S__COUNT
} stmt_id;

/* Each slot's latest attempt decides; a slot still in progress counts in
 * `units` but in none of passed/failed/aborted/skipped. */
#define COUNTS_SQL                                                                              \
  "UPDATE runs SET (units, passed, failed, aborted, skipped, attempts) = ("                     \
  "SELECT COUNT(*), COALESCE(SUM(result = 'pass'), 0), COALESCE(SUM(result = 'fail'), 0), "     \
  "COALESCE(SUM(result = 'aborted'), 0), COALESCE(SUM(result = 'skipped'), 0), "                \
  "(SELECT COUNT(*) FROM units WHERE run_id = ?1) "                                             \
  "FROM latest_units WHERE run_id = ?1) WHERE id = ?1"

static const char *const fixed_sql[S__COUNT] = {
  [S_BEGIN] = "BEGIN IMMEDIATE",
  [S_COMMIT] = "COMMIT",
  [S_ROLLBACK] = "ROLLBACK",
  /* Inside a batch (eg_db_batch_begin) each call is a savepoint. */
  [S_SAVEPOINT] = "SAVEPOINT eg_call",
  [S_RELEASE] = "RELEASE eg_call",
  [S_ROLLBACK_TO] = "ROLLBACK TO eg_call",
  [S_RUN_INSERT] = "INSERT INTO runs (started_at, station, operator, host, pid, pid_host, tool_version, "
                   "command_line, manifest_path, manifest_sha256, manifest_text, status, kind, parent_run_id, "
                   "retry_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
  [S_RUN_IMAGE] = "INSERT INTO run_images (run_id, idx, offset, size, file_size, file, sha256, md5, chip) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  [S_RUN_END] = "UPDATE runs SET ended_at = ?2, status = ?3 WHERE id = ?1",
  [S_RUN_COUNTS] = COUNTS_SQL,
  [S_RUN_EXISTS] = "SELECT id FROM runs WHERE id = ?",
  [S_RUN_LATEST] = "SELECT MAX(id) FROM runs",
  [S_UNIT_RESULT] = "SELECT run_id, result FROM units WHERE id = ?",
  [S_UNIT_IMAGE] = "INSERT INTO unit_images (unit_id, idx, offset, action, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5) "
                   "ON CONFLICT (unit_id, idx) DO UPDATE SET offset = ?3, action = ?4, duration_ms = ?5",
  [S_FAILED_SLOTS] = "SELECT slot FROM latest_units AS l WHERE run_id = ?1 AND result NOT IN ('pass', 'skipped') "
                     "ORDER BY (SELECT MIN(id) FROM units AS x WHERE x.run_id = l.run_id AND x.slot = l.slot)",
  [S_LATEST_RUN_OF] = "SELECT MAX(id) FROM runs WHERE station = ?1 AND manifest_sha256 = ?2",
  /* An attempt is the MAC's when it read it, or, in a gang run (one board
   * per slot), when another attempt in its run and slot did (it failed
   * before the MAC was read). A station session seats many boards in a
   * slot: there a MAC-less failure belongs to no MAC. */
  [S_MAC_LAST_FAIL] = "SELECT MAX(u.id) FROM units AS u JOIN runs AS r ON r.id = u.run_id "
                      "WHERE r.station = ?1 AND r.manifest_sha256 = ?2 AND u.result IN ('fail', 'aborted') "
                      "AND (u.mac = ?3 OR (u.mac IS NULL AND r.kind = 'flash' AND EXISTS (SELECT 1 FROM units AS k "
                      "WHERE k.run_id = u.run_id AND k.slot = u.slot AND k.mac = ?3)))",
  [S_MAC_PASS_AFTER] = "SELECT COUNT(*) FROM units AS u JOIN runs AS r ON r.id = u.run_id "
                       "WHERE r.station = ?1 AND r.manifest_sha256 = ?2 AND u.result = 'pass' AND u.mac = ?3 "
                       "AND u.id > ?4",
  [S_RUN_IMAGES] = "SELECT idx, offset, sha256, chip FROM run_images WHERE run_id = ? ORDER BY idx",
  [S_RECOVER_RUNS] = "SELECT id, pid_host, pid FROM runs WHERE status = 'running' "
                     "OR id IN (SELECT run_id FROM units WHERE result = 'in_progress') ORDER BY id",
  [S_RECOVER_UNITS] = "UPDATE units SET result = 'aborted', error_code = 'ABORTED', message = '" ABORTED_MSG "' "
                      "WHERE run_id = ? AND result = 'in_progress'",
  /* The crash time is unknown; the last thing the run wrote is the best
   * evidence (ISO-8601 strings of one format sort as times). */
  [S_RECOVER_RUN] = "UPDATE runs SET status = CASE status WHEN 'running' THEN 'crashed' ELSE status END, "
                    "ended_at = COALESCE(ended_at, (SELECT MAX(MAX(started_at, COALESCE(finished_at, ''))) "
                    "FROM units WHERE run_id = runs.id), started_at) WHERE id = ?",
};

struct eg_db {
  sqlite3 *db;
  size_t nfiles;      /* read-only handles: files attached as f0, f1, ... */
  int *file_version;  /* schema version of each file as found on disk */
  sqlite3_stmt *st[S__COUNT];
  char *unit_insert_sql, *unit_update_sql;
  int version;
  char host[256];
  int64_t *live; /* runs begun through this handle and not yet ended */
  size_t nlive, caplive;
  bool batch;    /* eg_db_batch_begin: calls are savepoints in one transaction */
};

/* ---------------------------------------------------------------- helpers */

static eg_err db_fail(eg_db *db, eg_fault *f, const char *what) {
  eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", what, db && db->db ? sqlite3_errmsg(db->db) : "no database");
  return EG_DB;
}

static sqlite3_stmt *stmt(eg_db *db, stmt_id id, eg_fault *f) {
  if (db->st[id]) {
    sqlite3_reset(db->st[id]);
    sqlite3_clear_bindings(db->st[id]);
    return db->st[id];
  }
  const char *sql = id == S_UNIT_INSERT ? db->unit_insert_sql : id == S_UNIT_UPDATE ? db->unit_update_sql : fixed_sql[id];
  if (sqlite3_prepare_v3(db->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->st[id], NULL) != SQLITE_OK) {
    db_fail(db, f, "preparing a statement");
    db->st[id] = NULL;
  }
  return db->st[id];
}

/* Run a statement that returns no rows (or whose rows are not wanted). */
static eg_err run(eg_db *db, sqlite3_stmt *s, eg_fault *f, const char *what) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) {
    db_fail(db, f, what);
    sqlite3_reset(s);
    return EG_DB;
  }
  sqlite3_reset(s);
  return EG_OK;
}

/* BEGIN and COMMIT of one call; in a batch, its savepoint and release. */
static eg_err tx(eg_db *db, stmt_id id, eg_fault *f) {
  if (db->batch) id = id == S_BEGIN ? S_SAVEPOINT : id == S_COMMIT ? S_RELEASE : id;
  sqlite3_stmt *s = stmt(db, id, f);
  return s ? run(db, s, f, fixed_sql[id]) : EG_DB;
}

/* Undo the failed call: the whole transaction, or in a batch only the
 * call's savepoint (the calls before it stay). */
static void rollback(eg_db *db) {
  if (sqlite3_get_autocommit(db->db)) return;
  if (db->batch)
    sqlite3_exec(db->db, "ROLLBACK TO eg_call; RELEASE eg_call", NULL, NULL, NULL);
  else
    sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

eg_err eg_db_batch_begin(eg_db *db, eg_fault *f) {
  if (db->batch) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a batch is already open");
  const eg_err r = tx(db, S_BEGIN, f);
  if (r == EG_OK) db->batch = true;
  return r;
}

eg_err eg_db_batch_commit(eg_db *db, eg_fault *f) {
  if (!db->batch) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no batch is open");
  db->batch = false;
  /* With synchronous=FULL this COMMIT returns only once the WAL is synced. */
  const eg_err r = tx(db, S_COMMIT, f);
  if (r != EG_OK) rollback(db);
  return r;
}

static int bind_text_or_null(sqlite3_stmt *s, int i, const char *v) {
  return v && *v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

static int bind_tri(sqlite3_stmt *s, int i, eg_tri v) {
  switch (v) {
  case EG_TRI_UNKNOWN: return sqlite3_bind_null(s, i);
  case EG_TRI_NO: return sqlite3_bind_int(s, i, 0);
  case EG_TRI_YES: return sqlite3_bind_int(s, i, 1);
  }
  return sqlite3_bind_null(s, i);
}

static char *build_unit_sql(bool insert) {
  size_t cap = 64;
  for (size_t i = 0; i < NUNIT_COLS; i++) cap += strlen(unit_cols[i]) + 8;
  char *sql = malloc(cap * 2 + 64);
  if (!sql) return NULL;
  size_t n = 0;
  if (insert) {
    n += (size_t)sprintf(sql + n, "INSERT INTO units (run_id");
    for (size_t i = 0; i < NUNIT_COLS; i++) n += (size_t)sprintf(sql + n, ", %s", unit_cols[i]);
    n += (size_t)sprintf(sql + n, ") VALUES (?");
    for (size_t i = 0; i < NUNIT_COLS; i++) n += (size_t)sprintf(sql + n, ", ?");
    sprintf(sql + n, ")");
  } else {
    n += (size_t)sprintf(sql + n, "UPDATE units SET ");
    for (size_t i = 0; i < NUNIT_COLS; i++) n += (size_t)sprintf(sql + n, "%s%s = ?", i ? ", " : "", unit_cols[i]);
    sprintf(sql + n, " WHERE id = ?");
  }
  return sql;
}

/* Bind every unit_cols value of u from parameter `first` on, in order.
 * Unknown things are NULL, not 0, so a report never shows invented data. */
static bool bind_unit(sqlite3_stmt *s, int first, const eg_unit_record *u) {
  int i = first, rc = SQLITE_OK;
  char buf[64];
#define B(call) (rc = rc == SQLITE_OK ? (call) : rc, i++)
  B(sqlite3_bind_text(s, i, u->slot, -1, SQLITE_TRANSIENT));
  B(sqlite3_bind_text(s, i, u->port, -1, SQLITE_TRANSIENT));
  B(bind_text_or_null(s, i, u->usb_location));
  B(sqlite3_bind_int(s, i, u->attempt));
  B(bind_text_or_null(s, i, eg_transport_name(u->transport)));
  B(bind_text_or_null(s, i, u->chip));
  B(bind_text_or_null(s, i, u->chip_desc));
  B(u->chip[0] ? sqlite3_bind_int(s, i, u->rev_major) : sqlite3_bind_null(s, i));
  B(u->chip[0] ? sqlite3_bind_int(s, i, u->rev_minor) : sqlite3_bind_null(s, i));
  B(bind_text_or_null(s, i, eg_unit_mac_str(u, buf, sizeof buf)));
  B(u->has_flash_id ? sqlite3_bind_int64(s, i, u->flash_id) : sqlite3_bind_null(s, i));
  snprintf(buf, sizeof buf, "%02x", eg_jedec_manufacturer(u->flash_id));
  B(u->has_flash_id ? sqlite3_bind_text(s, i, buf, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i));
  snprintf(buf, sizeof buf, "%04x", eg_jedec_device(u->flash_id));
  B(u->has_flash_id ? sqlite3_bind_text(s, i, buf, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i));
  B(u->flash_size ? sqlite3_bind_int64(s, i, u->flash_size) : sqlite3_bind_null(s, i));
  B(u->crystal_mhz ? sqlite3_bind_int(s, i, u->crystal_mhz) : sqlite3_bind_null(s, i));
  B(u->has_sec_info ? sqlite3_bind_int64(s, i, u->sec_flags) : sqlite3_bind_null(s, i));
  B(u->has_sec_info ? sqlite3_bind_int(s, i, u->flash_crypt_cnt) : sqlite3_bind_null(s, i));
  const size_t nkp = u->nkey_purposes < EG_KEY_PURPOSES_MAX ? u->nkey_purposes : EG_KEY_PURPOSES_MAX;
  B(u->has_sec_info && nkp ? sqlite3_bind_text(s, i, eg_hex(buf, u->key_purposes, nkp), -1, SQLITE_TRANSIENT)
                           : sqlite3_bind_null(s, i));
  B(bind_tri(s, i, u->secure_boot));
  B(bind_tri(s, i, u->flash_encryption));
  B(bind_tri(s, i, u->secure_download));
  B(u->baud_requested ? sqlite3_bind_int64(s, i, u->baud_requested) : sqlite3_bind_null(s, i));
  B(u->baud ? sqlite3_bind_int64(s, i, u->baud) : sqlite3_bind_null(s, i));
  B(sqlite3_bind_int64(s, i, u->fallbacks));
  B(bind_text_or_null(s, i, u->fallback_log));
  B(sqlite3_bind_int64(s, i, u->port_wait_ms));
  B(sqlite3_bind_int(s, i, u->stub ? 1 : 0));
  B(sqlite3_bind_int64(s, i, (sqlite3_int64)u->bytes_tx));
  B(sqlite3_bind_int64(s, i, (sqlite3_int64)u->bytes_rx));
  for (int st = 0; st < EG_STAGE__COUNT; st++) B(sqlite3_bind_int64(s, i, u->stage_ms[st]));
  const int64_t started = u->started_ms > 0 ? u->started_ms : eg_clock_epoch_ms();
  B(sqlite3_bind_text(s, i, eg_clock_iso_ms(started, buf), -1, SQLITE_TRANSIENT));
  B(u->finished_ms > 0 ? sqlite3_bind_text(s, i, eg_clock_iso_ms(u->finished_ms, buf), -1, SQLITE_TRANSIENT)
                       : sqlite3_bind_null(s, i));
  B(u->finished_ms > 0 && u->started_ms > 0 ? sqlite3_bind_int64(s, i, u->finished_ms - u->started_ms)
                                            : sqlite3_bind_null(s, i));
  B(sqlite3_bind_text(s, i, eg_result_name(u->result), -1, SQLITE_STATIC));
  const eg_fault *fl = &u->fault;
  const bool failed = fl->code != EG_OK;
  /* While a unit is in progress fail_stage holds the stage it is in, so a
   * crash leaves "aborted during write" rather than nothing. */
  const bool running = u->result == EG_RESULT_IN_PROGRESS && fl->stage != EG_STAGE_NONE;
  B(failed || running ? sqlite3_bind_text(s, i, eg_stage_name(fl->stage), -1, SQLITE_STATIC) : sqlite3_bind_null(s, i));
  B(failed ? sqlite3_bind_text(s, i, eg_err_name(fl->code), -1, SQLITE_STATIC) : sqlite3_bind_null(s, i));
  B(failed && fl->opcode >= 0 ? sqlite3_bind_int(s, i, fl->opcode) : sqlite3_bind_null(s, i));
  B(fl->nstatus ? sqlite3_bind_text(s, i, eg_fault_status_hex(fl, buf, sizeof buf), -1, SQLITE_TRANSIENT)
                : sqlite3_bind_null(s, i));
  B(bind_text_or_null(s, i, fl->msg));
#undef B
  return rc == SQLITE_OK && (size_t)(i - first) == NUNIT_COLS;
}

/* ---------------------------------------------------------------- open */

static eg_err exec(eg_db *db, const char *sql, eg_fault *f, const char *what) {
  char *msg = NULL;
  if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", what, msg ? msg : sqlite3_errmsg(db->db));
    sqlite3_free(msg);
    return EG_DB;
  }
  return EG_OK;
}

/* One integer from a one-row query; `def` when there is no row or NULL. */
static eg_err query_int(eg_db *db, const char *sql, int64_t def, int64_t *out, eg_fault *f) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK) return db_fail(db, f, sql);
  const int rc = sqlite3_step(s);
  *out = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL ? sqlite3_column_int64(s, 0) : def;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    db_fail(db, f, sql);
    sqlite3_finalize(s);
    return EG_DB;
  }
  sqlite3_finalize(s);
  return EG_OK;
}

static eg_err migrate(eg_db *db, eg_fault *f) {
  if (EG_NMIGRATIONS == 0)
    return eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1,
                        "this espgang was built without its database schema "
                        "(src/CMakeLists.txt must include cmake/embed_sql.cmake)");
  const int latest = eg_migrations[EG_NMIGRATIONS - 1].version;
  eg_err r = exec(db, "BEGIN IMMEDIATE", f, "starting the schema migration");
  if (r != EG_OK) return r;
  int64_t has_version, others, current = 0;
  if ((r = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", 0,
                     &has_version, f)) != EG_OK)
    goto fail;
  if (!has_version) {
    if ((r = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'", 0, &others, f)) !=
        EG_OK)
      goto fail;
    if (others) {
      r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1,
                       "%s is not an espgang database (it has tables but no schema_version)",
                       sqlite3_db_filename(db->db, "main"));
      goto fail;
    }
    if ((r = exec(db, "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                      "applied_at TEXT NOT NULL)", f, "creating schema_version")) != EG_OK)
      goto fail;
  }
  if ((r = query_int(db, "SELECT MAX(version) FROM schema_version", 0, &current, f)) != EG_OK) goto fail;
  if (current > latest) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1,
                     "database schema version %lld is newer than this espgang %s understands (%d); "
                     "use a newer espgang with this database",
                     (long long)current, EG_VERSION, latest);
    goto fail;
  }
  for (int i = 0; i < EG_NMIGRATIONS; i++) {
    const eg_migration *mg = &eg_migrations[i];
    if (mg->version <= current) continue;
    char what[128];
    snprintf(what, sizeof what, "applying migration %s", mg->name);
    if ((r = exec(db, mg->sql, f, what)) != EG_OK) goto fail;
    sqlite3_stmt *s;
    char ts[32];
    if (sqlite3_prepare_v2(db->db, "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)", -1, &s,
                           NULL) != SQLITE_OK) {
      r = db_fail(db, f, "recording a migration");
      goto fail;
    }
    sqlite3_bind_int(s, 1, mg->version);
    sqlite3_bind_text(s, 2, mg->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, eg_clock_iso_ms(eg_clock_epoch_ms(), ts), -1, SQLITE_TRANSIENT);
    const int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
      r = db_fail(db, f, "recording a migration");
      goto fail;
    }
    current = mg->version;
  }
  if ((r = exec(db, "COMMIT", f, "committing the schema migration")) != EG_OK) goto fail;
  db->version = (int)current;
  return EG_OK;
fail:
  rollback(db);
  return r;
}

eg_err eg_db_open(eg_db **out, const char *path, eg_fault *f) {
  *out = NULL;
  eg_db *db = calloc(1, sizeof *db);
  if (!db) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory opening %s", path);
  db->unit_insert_sql = build_unit_sql(true);
  db->unit_update_sql = build_unit_sql(false);
  if (!db->unit_insert_sql || !db->unit_update_sql) {
    eg_db_close(db);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory opening %s", path);
  }
  if (gethostname(db->host, sizeof db->host - 1) != 0) snprintf(db->host, sizeof db->host, "unknown");
  eg_err r = EG_OK;
  if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "cannot open %s: %s", path,
                     db->db ? sqlite3_errmsg(db->db) : "out of memory");
    goto fail;
  }
  sqlite3_extended_result_codes(db->db, 1);
  sqlite3_busy_timeout(db->db, BUSY_TIMEOUT_MS);
  /* journal_mode answers with the mode it ended up in: a file system that
   * cannot do WAL (some network mounts) says "delete". */
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", path, sqlite3_errmsg(db->db));
    goto fail;
  }
  const int rc = sqlite3_step(s);
  char mode[16] = "";
  if (rc == SQLITE_ROW) snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", path, sqlite3_errmsg(db->db));
    goto fail;
  }
  if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: cannot use WAL journaling (journal_mode is %s)", path, mode);
    goto fail;
  }
  /* cell_size_check: a damaged page is reported when it is first read or
   * written (an INSERT into a corrupt index fails, so the unit's board is
   * not touched) instead of being trusted; its cost is a bounds check per
   * cell. */
  if ((r = exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cell_size_check = ON", f, path)) !=
      EG_OK)
    goto fail;
  if ((r = migrate(db, f)) != EG_OK) goto fail;
  *out = db;
  return EG_OK;
fail:
  eg_db_close(db);
  return r;
}

void eg_db_close(eg_db *db) {
  if (!db) return;
  for (int i = 0; i < S__COUNT; i++) sqlite3_finalize(db->st[i]);
  if (db->db) sqlite3_close(db->db);
  free(db->unit_insert_sql);
  free(db->unit_update_sql);
  free(db->live);
  free(db->file_version);
  free(db);
}

int eg_db_schema_version(eg_db *db) { return db ? db->version : 0; }
sqlite3 *eg_db_sqlite(eg_db *db) { return db->db; }
size_t eg_db_files(const eg_db *db) { return db->nfiles ? db->nfiles : 1; }
int eg_db_file_version(const eg_db *db, size_t file) {
  return db->nfiles ? (file < db->nfiles ? db->file_version[file] : 0) : db->version;
}

/* ---------------------------------------------------------------- runs */

const char *eg_run_kind_name(eg_run_kind k) {
  static const char *const names[] = {
#define EG_RUN_KIND_STR(name, str) str,
    EG_RUN_KIND_MAP(EG_RUN_KIND_STR)
#undef EG_RUN_KIND_STR
  };
  return (unsigned)k < EG_RUN_KIND__COUNT ? names[k] : NULL;
}

const char *eg_retry_mode_name(eg_retry_mode m) {
  static const char *const names[] = {
#define EG_RETRY_MODE_STR(name, str) str,
    EG_RETRY_MODE_MAP(EG_RETRY_MODE_STR)
#undef EG_RETRY_MODE_STR
  };
  return (unsigned)m < EG_RETRY_MODE__COUNT ? names[m] : NULL;
}

static bool is_live(const eg_db *db, int64_t run_id) {
  for (size_t i = 0; i < db->nlive; i++)
    if (db->live[i] == run_id) return true;
  return false;
}

eg_err eg_db_run_begin(eg_db *db, const eg_run_info *info, int64_t *run_id, eg_fault *f) {
  if (!info || !info->station || !*info->station)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a run needs a station name");
  if (!eg_run_kind_name(info->kind) || (unsigned)info->retry_mode >= EG_RETRY_MODE__COUNT)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a run's kind or retry mode is out of range");
  if (db->nlive == db->caplive) {
    const size_t cap = db->caplive ? 2 * db->caplive : 4;
    int64_t *l = realloc(db->live, cap * sizeof *l);
    if (!l) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    db->live = l, db->caplive = cap;
  }
  sqlite3_stmt *s = stmt(db, S_RUN_INSERT, f);
  if (!s) return EG_DB;
  char ts[32], hex[65];
  sqlite3_bind_text(s, 1, eg_clock_iso_ms(eg_clock_epoch_ms(), ts), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, info->station, -1, SQLITE_TRANSIENT);
  bind_text_or_null(s, 3, info->operator_name);
  bind_text_or_null(s, 4, info->host ? info->host : db->host);
  sqlite3_bind_int64(s, 5, (sqlite3_int64)getpid());
  sqlite3_bind_text(s, 6, db->host, -1, SQLITE_TRANSIENT);
  bind_text_or_null(s, 7, info->tool_version ? info->tool_version : EG_VERSION);
  bind_text_or_null(s, 8, info->command_line);
  bind_text_or_null(s, 9, info->manifest_path);
  if (info->manifest_sha256) sqlite3_bind_text(s, 10, eg_hex(hex, info->manifest_sha256, 32), -1, SQLITE_TRANSIENT);
  if (info->manifest_text)
    sqlite3_bind_text64(s, 11, info->manifest_text, info->manifest_len, SQLITE_TRANSIENT, SQLITE_UTF8);
  sqlite3_bind_text(s, 12, eg_run_kind_name(info->kind), -1, SQLITE_STATIC);
  if (info->parent_run_id > 0) sqlite3_bind_int64(s, 13, info->parent_run_id);
  bind_text_or_null(s, 14, info->parent_run_id > 0 ? eg_retry_mode_name(info->retry_mode) : NULL);
  const eg_err r = run(db, s, f, "recording the run");
  if (r != EG_OK) return r;
  *run_id = sqlite3_last_insert_rowid(db->db);
  db->live[db->nlive++] = *run_id;
  return EG_OK;
}

eg_err eg_db_run_image(eg_db *db, int64_t run_id, int index, const eg_image *img, const char *chip, eg_fault *f) {
  sqlite3_stmt *s = stmt(db, S_RUN_IMAGE, f);
  if (!s) return EG_DB;
  char sha[65], md5[33];
  sqlite3_bind_int64(s, 1, run_id);
  sqlite3_bind_int(s, 2, index);
  sqlite3_bind_int64(s, 3, img->offset);
  sqlite3_bind_int64(s, 4, (sqlite3_int64)img->len);
  sqlite3_bind_int64(s, 5, (sqlite3_int64)img->file_len);
  bind_text_or_null(s, 6, img->path);
  sqlite3_bind_text(s, 7, eg_hex(sha, img->file_sha256, 32), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 8, eg_hex(md5, img->md5, 16), -1, SQLITE_TRANSIENT);
  bind_text_or_null(s, 9, chip);
  return run(db, s, f, "recording a run image");
}

static eg_err update_counts(eg_db *db, int64_t run_id, eg_fault *f) {
  sqlite3_stmt *s = stmt(db, S_RUN_COUNTS, f);
  if (!s) return EG_DB;
  sqlite3_bind_int64(s, 1, run_id);
  return run(db, s, f, "counting the run's units");
}

eg_err eg_db_run_end(eg_db *db, int64_t run_id, const char *status, eg_fault *f) {
  if (!status || (strcmp(status, "finished") != 0 && strcmp(status, "interrupted") != 0))
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "run status must be finished or interrupted, not %s",
                        status ? status : "NULL");
  eg_err r = tx(db, S_BEGIN, f);
  if (r != EG_OK) return r;
  sqlite3_stmt *s = stmt(db, S_RUN_END, f);
  char ts[32];
  if (!s) {
    r = EG_DB;
    goto fail;
  }
  sqlite3_bind_int64(s, 1, run_id);
  sqlite3_bind_text(s, 2, eg_clock_iso_ms(eg_clock_epoch_ms(), ts), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, status, -1, SQLITE_TRANSIENT);
  if ((r = run(db, s, f, "ending the run")) != EG_OK) goto fail;
  if (sqlite3_changes(db->db) != 1) {
    r = eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no run %lld in the database", (long long)run_id);
    goto fail;
  }
  if ((r = update_counts(db, run_id, f)) != EG_OK || (r = tx(db, S_COMMIT, f)) != EG_OK) goto fail;
  for (size_t i = 0; i < db->nlive; i++)
    if (db->live[i] == run_id) db->live[i] = db->live[--db->nlive];
  return EG_OK;
fail:
  rollback(db);
  return r;
}

/* ---------------------------------------------------------------- units */

/* One unit_images row per image the record says something about. */
static eg_err unit_images(eg_db *db, int64_t unit_id, const eg_unit_record *u, eg_fault *f) {
  for (unsigned k = 0; k < u->nimages && k < EG_UNIT_MAX_IMAGES; k++) {
    const char *action = eg_image_action_name(u->images[k].action);
    if (!action) continue;
    sqlite3_stmt *s = stmt(db, S_UNIT_IMAGE, f);
    if (!s) return EG_DB;
    sqlite3_bind_int64(s, 1, unit_id);
    sqlite3_bind_int(s, 2, (int)u->images[k].idx);
    sqlite3_bind_int64(s, 3, u->images[k].offset);
    sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, u->images[k].duration_ms);
    const eg_err r = run(db, s, f, "recording a unit's image");
    if (r != EG_OK) return r;
  }
  return EG_OK;
}

eg_err eg_db_unit_begin(eg_db *db, int64_t run_id, const eg_unit_record *u, int64_t *unit_id, eg_fault *f) {
  eg_err r = tx(db, S_BEGIN, f);
  if (r != EG_OK) return r;
  sqlite3_stmt *s = stmt(db, S_UNIT_INSERT, f);
  if (!s) {
    r = EG_DB;
    goto fail;
  }
  sqlite3_bind_int64(s, 1, run_id);
  if (!bind_unit(s, 2, u)) {
    r = db_fail(db, f, "binding the unit's values");
    goto fail;
  }
  if ((r = run(db, s, f, "recording the unit")) != EG_OK) goto fail;
  const int64_t id = sqlite3_last_insert_rowid(db->db);
  if ((r = unit_images(db, id, u, f)) != EG_OK || (r = tx(db, S_COMMIT, f)) != EG_OK) goto fail;
  *unit_id = id;
  return EG_OK;
fail:
  rollback(db);
  return r;
}

static eg_err unit_write(eg_db *db, int64_t unit_id, const eg_unit_record *u, eg_fault *f) {
  sqlite3_stmt *s = stmt(db, S_UNIT_UPDATE, f);
  if (!s) return EG_DB;
  if (!bind_unit(s, 1, u)) return db_fail(db, f, "binding the unit's values");
  sqlite3_bind_int64(s, 1 + (int)NUNIT_COLS, unit_id);
  const eg_err r = run(db, s, f, "updating the unit");
  if (r != EG_OK) return r;
  if (sqlite3_changes(db->db) != 1)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no unit %lld in the database", (long long)unit_id);
  return unit_images(db, unit_id, u, f);
}

eg_err eg_db_unit_update(eg_db *db, int64_t unit_id, const eg_unit_record *u, eg_fault *f) {
  eg_err r = tx(db, S_BEGIN, f);
  if (r != EG_OK) return r;
  if ((r = unit_write(db, unit_id, u, f)) != EG_OK || (r = tx(db, S_COMMIT, f)) != EG_OK) {
    rollback(db);
    return r;
  }
  return EG_OK;
}

eg_err eg_db_unit_finish(eg_db *db, int64_t unit_id, const eg_unit_record *u, eg_fault *f) {
  if (u->result == EG_RESULT_IN_PROGRESS)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "unit %lld finished without a result", (long long)unit_id);
  eg_err r = tx(db, S_BEGIN, f);
  if (r != EG_OK) return r;
  if ((r = unit_write(db, unit_id, u, f)) != EG_OK) goto fail;
  sqlite3_stmt *s = stmt(db, S_UNIT_RESULT, f);
  if (!s) {
    r = EG_DB;
    goto fail;
  }
  sqlite3_bind_int64(s, 1, unit_id);
  const int64_t run_id = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_reset(s);
  if ((r = update_counts(db, run_id, f)) != EG_OK) goto fail;
  /* With synchronous=FULL this COMMIT returns only once the WAL is synced. */
  if ((r = tx(db, S_COMMIT, f)) != EG_OK) goto fail;
  return EG_OK;
fail:
  rollback(db);
  return r;
}

/* ---------------------------------------------------------------- recovery */

/* A run is someone else's live work when it was written on this host by a
 * process that still exists (and is not us). Runs from other hosts cannot
 * be checked; recovery assumes one writing station per database file. */
static bool run_is_alive(const eg_db *db, int64_t run_id, const char *host, int64_t pid) {
  if (is_live(db, run_id)) return true;
  if (!host || strcmp(host, db->host) != 0 || pid <= 0 || pid == (int64_t)getpid()) return false;
  return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

eg_err eg_db_recover(eg_db *db, int *count, eg_fault *f) {
  *count = 0;
  eg_err r = tx(db, S_BEGIN, f);
  if (r != EG_OK) return r;
  int64_t *dead = NULL;
  size_t ndead = 0, cap = 0;
  sqlite3_stmt *s = stmt(db, S_RECOVER_RUNS, f);
  if (!s) {
    r = EG_DB;
    goto fail;
  }
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t id = sqlite3_column_int64(s, 0);
    if (run_is_alive(db, id, (const char *)sqlite3_column_text(s, 1), sqlite3_column_int64(s, 2))) continue;
    if (ndead == cap) {
      cap = cap ? 2 * cap : 8;
      int64_t *d = realloc(dead, cap * sizeof *d);
      if (!d) {
        sqlite3_reset(s);
        r = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
        goto fail;
      }
      dead = d;
    }
    dead[ndead++] = id;
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    r = db_fail(db, f, "finding unfinished runs");
    goto fail;
  }
  for (size_t i = 0; i < ndead; i++) {
    if (!(s = stmt(db, S_RECOVER_UNITS, f))) {
      r = EG_DB;
      goto fail;
    }
    sqlite3_bind_int64(s, 1, dead[i]);
    if ((r = run(db, s, f, "marking units aborted")) != EG_OK) goto fail;
    *count += sqlite3_changes(db->db);
    if (!(s = stmt(db, S_RECOVER_RUN, f))) {
      r = EG_DB;
      goto fail;
    }
    sqlite3_bind_int64(s, 1, dead[i]);
    if ((r = run(db, s, f, "marking the run crashed")) != EG_OK || (r = update_counts(db, dead[i], f)) != EG_OK)
      goto fail;
  }
  if ((r = tx(db, S_COMMIT, f)) != EG_OK) goto fail;
  free(dead);
  return EG_OK;
fail:
  free(dead);
  rollback(db);
  *count = 0;
  return r;
}

/* ---------------------------------------------------------------- queries */

/* 0 -> the latest run; otherwise check it exists. */
static eg_err resolve_run(eg_db *db, int64_t *run_id, eg_fault *f) {
  sqlite3_stmt *s = stmt(db, *run_id ? S_RUN_EXISTS : S_RUN_LATEST, f);
  if (!s) return EG_DB;
  if (*run_id) sqlite3_bind_int64(s, 1, *run_id);
  const int rc = sqlite3_step(s);
  const bool found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
  const int64_t id = found ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_reset(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(db, f, "finding the run");
  if (!found)
    return *run_id ? eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no run %lld in the database", (long long)*run_id)
                   : eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "the database holds no runs yet");
  *run_id = id;
  return EG_OK;
}

eg_err eg_db_failed_slots(eg_db *db, int64_t run_id, char ***slots, size_t *count, eg_fault *f) {
  *slots = NULL, *count = 0;
  eg_err r = resolve_run(db, &run_id, f);
  if (r != EG_OK) return r;
  sqlite3_stmt *s = stmt(db, S_FAILED_SLOTS, f);
  if (!s) return EG_DB;
  sqlite3_bind_int64(s, 1, run_id);
  char **list = NULL;
  size_t n = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (n == cap) {
      cap = cap ? 2 * cap : 8;
      char **l = realloc(list, cap * sizeof *l);
      if (!l) break;
      list = l;
    }
    if (!(list[n] = strdup((const char *)sqlite3_column_text(s, 0)))) break;
    n++;
  }
  sqlite3_reset(s);
  if (rc == SQLITE_ROW) { /* stopped early: out of memory */
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  if (rc != SQLITE_DONE) {
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
    return db_fail(db, f, "listing failed slots");
  }
  *slots = list, *count = n;
  return EG_OK;
}


/* ---------------------------------------------------------------- rerun */

eg_err eg_db_latest_run(eg_db *db, const char *station, const uint8_t *manifest_sha256, int64_t *run_id, eg_fault *f) {
  *run_id = 0;
  if (!station || !manifest_sha256)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a station and a manifest sha256 are needed");
  sqlite3_stmt *s = stmt(db, S_LATEST_RUN_OF, f);
  if (!s) return EG_DB;
  char hex[65];
  sqlite3_bind_text(s, 1, station, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, eg_hex(hex, manifest_sha256, 32), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) *run_id = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  if (rc != SQLITE_ROW) return db_fail(db, f, "finding the latest run");
  if (!*run_id)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no run of station %s with manifest %.12s... in the database",
                        station, hex);
  return EG_OK;
}

eg_err eg_db_mac_needs_retry(eg_db *db, const char *station, const uint8_t *manifest_sha256, const char *mac,
                             bool *retry, eg_fault *f) {
  *retry = false;
  if (!station || !manifest_sha256 || !mac)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a station, a manifest sha256 and a MAC are needed");
  char hex[65];
  eg_hex(hex, manifest_sha256, 32);
  int64_t last_fail = 0, passes = 0;
  for (int pass = 0; pass < 2; pass++) {
    sqlite3_stmt *s = stmt(db, pass ? S_MAC_PASS_AFTER : S_MAC_LAST_FAIL, f);
    if (!s) return EG_DB;
    sqlite3_bind_text(s, 1, station, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, mac, -1, SQLITE_TRANSIENT);
    if (pass) sqlite3_bind_int64(s, 4, last_fail);
    const int rc = sqlite3_step(s);
    const int64_t v = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return db_fail(db, f, "looking up the MAC's attempts");
    if (pass) passes = v;
    else if (!(last_fail = v)) return EG_OK; /* never failed here */
  }
  *retry = passes == 0;
  return EG_OK;
}

eg_err eg_db_run_images(eg_db *db, int64_t run_id, eg_db_image_ref **refs, size_t *count, eg_fault *f) {
  *refs = NULL, *count = 0;
  eg_err r = resolve_run(db, &run_id, f);
  if (r != EG_OK) return r;
  sqlite3_stmt *s = stmt(db, S_RUN_IMAGES, f);
  if (!s) return EG_DB;
  sqlite3_bind_int64(s, 1, run_id);
  eg_db_image_ref *list = NULL;
  size_t n = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    eg_db_image_ref *l = realloc(list, (n + 1) * sizeof *l);
    if (!l) {
      sqlite3_reset(s);
      free(list);
      return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    }
    list = l;
    eg_db_image_ref *e = &list[n++];
    memset(e, 0, sizeof *e);
    e->idx = sqlite3_column_int(s, 0);
    e->offset = (uint32_t)sqlite3_column_int64(s, 1);
    snprintf(e->sha256, sizeof e->sha256, "%s", (const char *)sqlite3_column_text(s, 2));
    if (sqlite3_column_type(s, 3) != SQLITE_NULL) snprintf(e->chip, sizeof e->chip, "%s", sqlite3_column_text(s, 3));
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) {
    free(list);
    return db_fail(db, f, "reading the run's images");
  }
  *refs = list, *count = n;
  return EG_OK;
}

/* ---------------------------------------------------------------- read-only */

/* What the path is, before SQLite sees it: a FIFO would block an open, a
 * directory or an empty file would be "created" by a careless one. */
static eg_err check_log_file(const char *path, eg_fault *f) {
  struct stat st;
  if (stat(path, &st) != 0)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: no log database there (%s)", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: is a directory, not a log database", path);
  if (!S_ISREG(st.st_mode))
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: not a regular file, not a log database", path);
  char head[16] = {0};
  const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: cannot open: %s", path, strerror(errno));
  const ssize_t n = read(fd, head, sizeof head);
  close(fd);
  if (n != (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: not an SQLite database (not an espgang log)", path);
  return EG_OK;
}

/* "file:" URI of a path, read-only (and immutable: no locks, no side
 * files), with the characters URIs reserve escaped. */
static char *file_uri(const char *path, bool immutable) {
  char *u = malloc(strlen(path) * 3 + 32);
  if (!u) return NULL;
  char *p = u + sprintf(u, "file:");
  for (const unsigned char *c = (const unsigned char *)path; *c; c++)
    p += (*c == '%' || *c == '?' || *c == '#' || *c < 0x20) ? sprintf(p, "%%%02X", *c) : sprintf(p, "%c", *c);
  sprintf(p, immutable ? "?mode=ro&immutable=1" : "?mode=ro");
  return u;
}

/* Schema version of an open connection's main database; -1 when it has
 * tables but no schema_version (not ours). */
static eg_err file_version(eg_db *tmp, const char *path, int *version, eg_fault *f) {
  int64_t has, any, v = 0;
  eg_err r = query_int(tmp, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", 0,
                       &has, f);
  if (r == EG_OK && !has) r = query_int(tmp, "SELECT COUNT(*) FROM sqlite_master", 0, &any, f);
  if (r != EG_OK) {
    eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", path, sqlite3_errmsg(tmp->db));
    return EG_DB;
  }
  if (!has) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: not an espgang log (no schema_version table)", path);
  if ((r = query_int(tmp, "SELECT MAX(version) FROM schema_version", 0, &v, f)) != EG_OK) return r;
  *version = (int)v;
  return EG_OK;
}

/* Attach file `i` as schema f<i>.
 *
 * A read-only SQLite connection to a WAL database creates the -wal and -shm
 * files when they are missing, and cannot remove them: reading would leave
 * files behind. So: when the file has no -wal beside it, nobody has it open
 * (a WAL writer keeps its -wal until the last connection closes); it is
 * opened immutable (no locks, no side files) and copied into memory at once,
 * so a writer that starts meanwhile is not read half-way. When a -wal exists
 * a writer may be active: the file is attached read-only and read live
 * through that writer's -wal and -shm. A file at an older schema is always
 * copied, and the copy migrated. */
static eg_err attach_file(eg_db *db, size_t i, const char *path, eg_fault *f) {
  eg_err r = check_log_file(path, f);
  if (r != EG_OK) return r;
  char *wal = sqlite3_mprintf("%s-wal", path);
  if (!wal) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  struct stat st;
  const bool live = stat(wal, &st) == 0;
  sqlite3_free(wal);
  char *uri = file_uri(path, !live);
  if (!uri) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  eg_db probe = {0}, copy = {0};
  sqlite3_int64 size = 0;
  unsigned char *bytes = NULL;
  char sql[160];
  int version = 0;
  if (sqlite3_open_v2(uri, &probe.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", path, probe.db ? sqlite3_errmsg(probe.db) : "out of memory");
    goto out;
  }
  sqlite3_busy_timeout(probe.db, BUSY_TIMEOUT_MS);
  /* One read transaction: the version and the copy see the same snapshot. */
  if ((r = exec(&probe, "BEGIN", f, path)) != EG_OK || (r = file_version(&probe, path, &version, f)) != EG_OK) goto out;
  const int latest = EG_NMIGRATIONS ? eg_migrations[EG_NMIGRATIONS - 1].version : 0;
  if (version > latest) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1,
                     "%s: database schema version %d is newer than this espgang %s understands (%d); "
                     "use a newer espgang with this database", path, version, EG_VERSION, latest);
    goto out;
  }
  db->file_version[i] = version;
  if (live && version == latest) {
    char *q = sqlite3_mprintf("ATTACH %Q AS f%d", uri, (int)i);
    r = q ? exec(db, q, f, path) : eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    sqlite3_free(q);
    goto out;
  }
  /* Bytes 18-19 of the header say "WAL"; an in-memory copy must say
   * "rollback journal" (1) or SQLite will not read it. */
  if (!(bytes = sqlite3_serialize(probe.db, "main", &size, 0)) || size < 100) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: cannot copy the database: %s", path, sqlite3_errmsg(probe.db));
    goto out;
  }
  bytes[18] = bytes[19] = 1;
  if (sqlite3_open_v2(":memory:", &copy.db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
      sqlite3_deserialize(copy.db, "main", bytes, size, size, SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK) {
    bytes = NULL; /* freed with the connection */
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: cannot load a copy of the database", path);
    goto out;
  }
  bytes = NULL;
  if (version < latest && (r = migrate(&copy, f)) != EG_OK) goto out;
  if (!(bytes = sqlite3_serialize(copy.db, "main", &size, 0))) {
    r = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "%s: out of memory copying the database", path);
    goto out;
  }
  snprintf(sql, sizeof sql, "ATTACH ':memory:' AS f%d", (int)i);
  if ((r = exec(db, sql, f, path)) != EG_OK) goto out;
  snprintf(sql, sizeof sql, "f%d", (int)i);
  const int rc = sqlite3_deserialize(db->db, sql, bytes, size, size,
                                     SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
  bytes = NULL;
  if (rc != SQLITE_OK) r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: cannot attach the copy", path);
out:
  sqlite3_free(bytes);
  if (probe.db) sqlite3_close(probe.db); /* ends the read transaction */
  if (copy.db) sqlite3_close(copy.db);
  free(uri);
  return r;
}

eg_err eg_db_open_readonly(eg_db **out, const char *const *paths, size_t npaths, eg_fault *f) {
  *out = NULL;
  if (!npaths) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no log database given");
  eg_db *db = calloc(1, sizeof *db);
  if (!db || !(db->file_version = calloc(npaths, sizeof *db->file_version))) {
    eg_db_close(db);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  db->nfiles = npaths;
  eg_err r = EG_OK;
  /* The connection's own database is in memory: nothing is created on disk. */
  if (sqlite3_open_v2(":memory:", &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
    r = eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "cannot open SQLite: %s", db->db ? sqlite3_errmsg(db->db) : "out of memory");
    goto fail;
  }
  sqlite3_extended_result_codes(db->db, 1);
  sqlite3_busy_timeout(db->db, BUSY_TIMEOUT_MS);
  sqlite3_limit(db->db, SQLITE_LIMIT_ATTACHED, 125);
  if (npaths > (size_t)sqlite3_limit(db->db, SQLITE_LIMIT_ATTACHED, -1)) {
    r = eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "too many databases (at most %d)",
                     sqlite3_limit(db->db, SQLITE_LIMIT_ATTACHED, -1));
    goto fail;
  }
  for (size_t i = 0; i < npaths; i++)
    if ((r = attach_file(db, i, paths[i], f)) != EG_OK) goto fail;
  db->version = EG_NMIGRATIONS ? eg_migrations[EG_NMIGRATIONS - 1].version : 0;
  *out = db;
  return EG_OK;
fail:
  eg_db_close(db);
  return r;
}

/* ---------------------------------------------------------------- loading */

/* Strings of an eg_log live in chunks freed together. */
typedef struct eg_log_chunk {
  struct eg_log_chunk *next;
  size_t used, cap;
  char data[];
} eg_log_chunk;

static const char *keep(eg_log *log, sqlite3_stmt *s, int c, bool *oom) {
  if (sqlite3_column_type(s, c) == SQLITE_NULL) return NULL;
  const char *t = (const char *)sqlite3_column_text(s, c);
  const size_t n = (size_t)sqlite3_column_bytes(s, c) + 1;
  if (!t) return *oom = true, NULL;
  eg_log_chunk *k = log->arena;
  if (!k || k->cap - k->used < n) {
    const size_t cap = n > 65536 ? n : 65536;
    if (!(k = malloc(sizeof *k + cap))) return *oom = true, NULL;
    k->next = log->arena, k->used = 0, k->cap = cap;
    log->arena = k;
  }
  char *d = k->data + k->used;
  memcpy(d, t, n);
  k->used += n;
  return d;
}

static int64_t int_or(sqlite3_stmt *s, int c, int64_t unknown) {
  return sqlite3_column_type(s, c) == SQLITE_NULL ? unknown : sqlite3_column_int64(s, c);
}

/* Grow an array by one element; NULL when out of memory. */
static void *grow(void *arr, size_t n, size_t size, void **out) {
  if ((n & (n - 1)) == 0) { /* n is 0 or a power of two: double */
    void *a = realloc(arr, (n ? 2 * n : 16) * size);
    if (!a) return NULL;
    arr = a;
  }
  *out = (char *)arr + n * size;
  return arr;
}

/* Every row of `sql` (with ?1 = ids when given) through row(). */
static eg_err each_file_rows(eg_db *db, const char *sql, const char *ids, eg_err (*row)(eg_log *, int, sqlite3_stmt *),
                             eg_log *log, eg_fault *f, size_t file) {
  sqlite3_stmt *s = NULL;
  if (sqlite3_prepare_v2(db->db, sql, -1, &s, NULL) != SQLITE_OK) return db_fail(db, f, "reading the log");
  if (ids) sqlite3_bind_text(s, 1, ids, -1, SQLITE_STATIC);
  eg_err r = EG_OK;
  int rc;
  while (r == EG_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) r = row(log, (int)file, s);
  if (r == EG_OK && rc != SQLITE_DONE) r = db_fail(db, f, "reading the log");
  sqlite3_finalize(s);
  return r == EG_NOMEM ? eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory reading the log") : r;
}

static eg_err run_row(eg_log *log, int file, sqlite3_stmt *s) {
  eg_log_run *r;
  void *a = grow(log->runs, log->nruns, sizeof *r, (void **)&r);
  if (!a) return EG_NOMEM;
  log->runs = a;
  bool oom = false;
  *r = (eg_log_run){
    .db = file, .id = sqlite3_column_int64(s, 0), .parent_run_id = int_or(s, 1, 0),
    .started_at = keep(log, s, 2, &oom), .ended_at = keep(log, s, 3, &oom), .station = keep(log, s, 4, &oom),
    .operator_name = keep(log, s, 5, &oom), .host = keep(log, s, 6, &oom), .status = keep(log, s, 7, &oom),
    .kind = keep(log, s, 8, &oom), .retry_mode = keep(log, s, 9, &oom), .manifest_path = keep(log, s, 10, &oom),
    .manifest_sha256 = keep(log, s, 11, &oom), .tool_version = keep(log, s, 12, &oom),
    .command_line = keep(log, s, 13, &oom), .units = int_or(s, 14, 0), .passed = int_or(s, 15, 0),
    .failed = int_or(s, 16, 0), .aborted = int_or(s, 17, 0), .skipped = int_or(s, 18, 0), .attempts = int_or(s, 19, 0),
  };
  log->nruns++;
  return oom ? EG_NOMEM : EG_OK;
}

/* Schema prefix of file i ("f0." or ""), kept in a small buffer per call. */
static const char *schema_of(const eg_db *db, size_t i, char buf[16]) {
  if (db->nfiles) snprintf(buf, 16, "f%d.", (int)i);
  else buf[0] = '\0';
  return buf;
}

eg_err eg_db_load_runs(eg_db *db, eg_log *log, eg_fault *f) {
  for (size_t i = 0; i < eg_db_files(db); i++) {
    char sch[16], *fmt = sqlite3_mprintf(
      "SELECT id, parent_run_id, started_at, ended_at, station, operator, host, status, kind, retry_mode, "
      "manifest_path, manifest_sha256, tool_version, command_line, units, passed, failed, aborted, skipped, attempts "
      "FROM %sruns ORDER BY id", schema_of(db, i, sch));
    if (!fmt) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    const eg_err r = each_file_rows(db, fmt, NULL, run_row, log, f, i);
    sqlite3_free(fmt);
    if (r != EG_OK) return r;
  }
  return EG_OK;
}

static eg_err attempt_row(eg_log *log, int file, sqlite3_stmt *s) {
  eg_log_attempt *a;
  void *arr = grow(log->attempts, log->nattempts, sizeof *a, (void **)&a);
  if (!arr) return EG_NOMEM;
  log->attempts = arr;
  bool oom = false;
  int c = 0;
  memset(a, 0, sizeof *a);
  a->db = file;
  a->id = sqlite3_column_int64(s, c++);
  a->run_id = sqlite3_column_int64(s, c++);
  a->slot = keep(log, s, c++, &oom);
  a->port = keep(log, s, c++, &oom);
  a->usb_location = keep(log, s, c++, &oom);
  a->attempt = (int)int_or(s, c++, 0);
  a->transport = keep(log, s, c++, &oom);
  a->chip = keep(log, s, c++, &oom);
  a->chip_desc = keep(log, s, c++, &oom);
  a->rev_major = (int)int_or(s, c++, -1);
  a->rev_minor = (int)int_or(s, c++, -1);
  a->mac = keep(log, s, c++, &oom);
  a->flash_id = int_or(s, c++, -1);
  a->flash_mfr = keep(log, s, c++, &oom);
  a->flash_device = keep(log, s, c++, &oom);
  a->flash_size = int_or(s, c++, -1);
  a->crystal_mhz = int_or(s, c++, -1);
  a->sec_flags = int_or(s, c++, -1);
  a->flash_crypt_cnt = int_or(s, c++, -1);
  a->key_purposes = keep(log, s, c++, &oom);
  a->secure_boot = (int)int_or(s, c++, -1);
  a->flash_encryption = (int)int_or(s, c++, -1);
  a->secure_download = (int)int_or(s, c++, -1);
  a->baud_requested = int_or(s, c++, -1);
  a->baud = int_or(s, c++, -1);
  a->fallbacks = int_or(s, c++, -1);
  a->fallback_log = keep(log, s, c++, &oom);
  a->port_wait_ms = int_or(s, c++, -1);
  a->stub = (int)int_or(s, c++, -1);
  a->bytes_tx = int_or(s, c++, 0);
  a->bytes_rx = int_or(s, c++, 0);
  for (int st = 0; st < EG_STAGE__COUNT; st++) a->stage_ms[st] = int_or(s, c++, 0);
  /* unit_cols and this reader must agree: a column added there and not
   * here shifts everything after it (test_report checks the values). */
  a->started_at = keep(log, s, c++, &oom);
  a->finished_at = keep(log, s, c++, &oom);
  a->duration_ms = int_or(s, c++, -1);
  a->result = keep(log, s, c++, &oom);
  a->fail_stage = keep(log, s, c++, &oom);
  a->error_code = keep(log, s, c++, &oom);
  a->opcode = int_or(s, c++, -1);
  a->status_bytes = keep(log, s, c++, &oom);
  a->message = keep(log, s, c++, &oom);
  log->nattempts++;
  return oom ? EG_NOMEM : EG_OK;
}

static eg_err image_row(eg_log *log, int file, sqlite3_stmt *s) {
  eg_log_image *m;
  void *arr = grow(log->images, log->nimages, sizeof *m, (void **)&m);
  if (!arr) return EG_NOMEM;
  log->images = arr;
  bool oom = false;
  *m = (eg_log_image){.db = file, .run_id = sqlite3_column_int64(s, 0), .idx = sqlite3_column_int(s, 1),
                      .offset = sqlite3_column_int64(s, 2), .size = sqlite3_column_int64(s, 3),
                      .file = keep(log, s, 4, &oom), .sha256 = keep(log, s, 5, &oom), .md5 = keep(log, s, 6, &oom),
                      .chip = keep(log, s, 7, &oom)};
  log->nimages++;
  return oom ? EG_NOMEM : EG_OK;
}

eg_err eg_db_load_attempts(eg_db *db, eg_log *log, const bool *want, eg_fault *f) {
  /* The unit columns in unit_cols order, after id and run_id. */
  size_t cap = 64;
  for (size_t i = 0; i < NUNIT_COLS; i++) cap += strlen(unit_cols[i]) + 2;
  char *cols = malloc(cap);
  if (!cols) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  size_t n = (size_t)sprintf(cols, "id, run_id");
  for (size_t i = 0; i < NUNIT_COLS; i++) n += (size_t)sprintf(cols + n, ", %s", unit_cols[i]);
  eg_err r = EG_OK;
  for (size_t i = 0; i < eg_db_files(db) && r == EG_OK; i++) {
    /* The wanted runs of this file as a JSON array for json_each(). */
    char *ids = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&ids, &len);
    if (!m) return free(cols), eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    fputc('[', m);
    bool any = false;
    for (size_t k = 0; k < log->nruns; k++)
      if (log->runs[k].db == (int)i && (!want || want[k]))
        fprintf(m, "%s%lld", any ? "," : "", (long long)log->runs[k].id), any = true;
    fputc(']', m);
    fclose(m);
    if (!ids) return free(cols), eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    char sch[16];
    schema_of(db, i, sch);
    char *q1 = sqlite3_mprintf("SELECT %s FROM %sunits WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY id",
                               cols, sch);
    char *q2 = sqlite3_mprintf("SELECT run_id, idx, offset, size, file, sha256, md5, chip FROM %srun_images "
                               "WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY run_id, idx", sch);
    if (!q1 || !q2) r = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    if (r == EG_OK && any) r = each_file_rows(db, q1, ids, attempt_row, log, f, i);
    if (r == EG_OK && any) r = each_file_rows(db, q2, ids, image_row, log, f, i);
    sqlite3_free(q1), sqlite3_free(q2);
    free(ids);
  }
  free(cols);
  return r;
}

void eg_log_free(eg_log *log) {
  if (!log) return;
  free(log->runs), free(log->attempts), free(log->images);
  for (eg_log_chunk *k = log->arena, *next; k; k = next) next = k->next, free(k);
  memset(log, 0, sizeof *log);
}
