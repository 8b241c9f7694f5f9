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
#include "jsonw.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
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
  S_RECOVER_RUNS,
  S_RECOVER_UNITS,
  S_RECOVER_RUN,
  S_RUN_TEXT,
  S_RUN_JSON,
  S_IMAGES_TEXT,
  S_IMAGES_JSON,
  S_UNITS_TEXT,
  S_UNITS_JSON,
  S_UNIT_HIST_COUNT,
  S_UNIT_HIST_TEXT,
  S_UNIT_HIST_JSON,
  S_RUNS_TEXT,
  S_RUNS_JSON,
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

#define UNIT_TEXT_COLS                                                                          \
  "id, slot, port, attempt, result, chip, mac, "                                                \
  "CASE WHEN flash_id IS NULL THEN NULL ELSE flash_mfr || '/' || flash_device END AS flash, "   \
  "flash_size, stub, baud, duration_ms, fail_stage, error_code, "                               \
  "CASE WHEN opcode IS NULL THEN NULL ELSE printf('0x%02x', opcode) END AS opcode, "            \
  "status_bytes, message"

static const char *const fixed_sql[S__COUNT] = {
  [S_BEGIN] = "BEGIN IMMEDIATE",
  [S_COMMIT] = "COMMIT",
  [S_ROLLBACK] = "ROLLBACK",
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
  [S_FAILED_SLOTS] = "SELECT slot FROM latest_units AS l WHERE run_id = ?1 AND result <> 'pass' "
                     "ORDER BY (SELECT MIN(id) FROM units AS x WHERE x.run_id = l.run_id AND x.slot = l.slot)",
  [S_RECOVER_RUNS] = "SELECT id, pid_host, pid FROM runs WHERE status = 'running' "
                     "OR id IN (SELECT run_id FROM units WHERE result = 'in_progress') ORDER BY id",
  [S_RECOVER_UNITS] = "UPDATE units SET result = 'aborted', error_code = 'ABORTED', message = '" ABORTED_MSG "' "
                      "WHERE run_id = ? AND result = 'in_progress'",
  /* The crash time is unknown; the last thing the run wrote is the best
   * evidence (ISO-8601 strings of one format sort as times). */
  [S_RECOVER_RUN] = "UPDATE runs SET status = CASE status WHEN 'running' THEN 'crashed' ELSE status END, "
                    "ended_at = COALESCE(ended_at, (SELECT MAX(MAX(started_at, COALESCE(finished_at, ''))) "
                    "FROM units WHERE run_id = runs.id), started_at) WHERE id = ?",
  [S_RUN_TEXT] = "SELECT id AS run, station, status, started_at, ended_at, operator, host, tool_version AS espgang, "
                 "command_line, manifest_path AS manifest, manifest_sha256, units, passed, failed, aborted, attempts "
                 "FROM runs WHERE id = ?",
  [S_RUN_JSON] = "SELECT 'run' AS record, * FROM runs WHERE id = ?",
  [S_IMAGES_TEXT] = "SELECT idx, printf('0x%x', offset) AS offset, size, file, sha256, md5 FROM run_images "
                    "WHERE run_id = ? ORDER BY idx",
  [S_IMAGES_JSON] = "SELECT 'image' AS record, * FROM run_images WHERE run_id = ? ORDER BY idx",
  [S_UNITS_TEXT] = "SELECT " UNIT_TEXT_COLS " FROM units WHERE run_id = ? ORDER BY id",
  [S_UNITS_JSON] = "SELECT 'unit' AS record, * FROM units WHERE run_id = ? ORDER BY id",
  [S_UNIT_HIST_COUNT] = "SELECT COUNT(*) FROM units WHERE mac = ?1 OR slot = ?2",
  [S_UNIT_HIST_TEXT] = "SELECT run_id AS run, started_at, " UNIT_TEXT_COLS " FROM units "
                       "WHERE mac = ?1 OR slot = ?2 ORDER BY id DESC",
  [S_UNIT_HIST_JSON] = "SELECT 'unit' AS record, * FROM units WHERE mac = ?1 OR slot = ?2 ORDER BY id DESC",
  [S_RUNS_TEXT] = "SELECT id AS run, started_at, ended_at, station, operator, status, units, passed, failed, "
                  "aborted, attempts FROM runs ORDER BY id DESC LIMIT ?",
  [S_RUNS_JSON] = "SELECT 'run' AS record, id, started_at, ended_at, station, operator, host, tool_version, "
                  "manifest_path, manifest_sha256, status, units, passed, failed, aborted, attempts "
                  "FROM runs ORDER BY id DESC LIMIT ?",
};

struct eg_db {
  sqlite3 *db;
  sqlite3_stmt *st[S__COUNT];
  char *unit_insert_sql, *unit_update_sql;
  int version;
  char host[256];
  int64_t *live; /* runs begun through this handle and not yet ended */
  size_t nlive, caplive;
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

static eg_err tx(eg_db *db, stmt_id id, eg_fault *f) {
  sqlite3_stmt *s = stmt(db, id, f);
  return s ? run(db, s, f, fixed_sql[id]) : EG_DB;
}

static void rollback(eg_db *db) {
  if (!sqlite3_get_autocommit(db->db)) sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2024-05-01T12:34:56.789Z" */
static const char *iso_ms(int64_t ms, char buf[32]) {
  const time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int frac = (int)(ms - (int64_t)sec * 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  const size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, 32 - n, ".%03dZ", frac);
  return buf;
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
  const int64_t started = u->started_ms > 0 ? u->started_ms : now_ms();
  B(sqlite3_bind_text(s, i, iso_ms(started, buf), -1, SQLITE_TRANSIENT));
  B(u->finished_ms > 0 ? sqlite3_bind_text(s, i, iso_ms(u->finished_ms, buf), -1, SQLITE_TRANSIENT)
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
    sqlite3_bind_text(s, 3, iso_ms(now_ms(), ts), -1, SQLITE_TRANSIENT);
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
  if ((r = exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", f, path)) != EG_OK) goto fail;
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
  free(db);
}

int eg_db_schema_version(eg_db *db) { return db ? db->version : 0; }
sqlite3 *eg_db_sqlite(eg_db *db) { return db->db; }

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
  sqlite3_bind_text(s, 1, iso_ms(now_ms(), ts), -1, SQLITE_TRANSIENT);
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
  sqlite3_bind_text(s, 2, iso_ms(now_ms(), ts), -1, SQLITE_TRANSIENT);
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
    sqlite3_bind_int(s, 2, (int)k);
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

/* ---------------------------------------------------------------- reports */

/* Every row as one JSON object per line, keys from the column names. */
static eg_err rows_json(eg_db *db, sqlite3_stmt *s, FILE *out, size_t *nrows, eg_fault *f) {
  int rc;
  *nrows = 0;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    fputc('{', out);
    for (int c = 0; c < sqlite3_column_count(s); c++) {
      if (c) fputc(',', out);
      const char *name = sqlite3_column_name(s, c);
      eg_json_quote_n(out, (const char *)name, strlen(name));
      fputc(':', out);
      switch (sqlite3_column_type(s, c)) {
      case SQLITE_INTEGER: fprintf(out, "%lld", (long long)sqlite3_column_int64(s, c)); break;
      case SQLITE_FLOAT: fprintf(out, "%.17g", sqlite3_column_double(s, c)); break;
      case SQLITE_NULL: fputs("null", out); break;
      default: {
        const unsigned char *t = sqlite3_column_text(s, c);
        eg_json_quote_n(out, (const char *)t, (size_t)sqlite3_column_bytes(s, c));
      }
      }
    }
    fputs("}\n", out);
    (*nrows)++;
  }
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? EG_OK : db_fail(db, f, "reading the report");
}

/* Text cells: NULL shows as "-", control characters as spaces. */
static char *cell_text(sqlite3_stmt *s, int c) {
  if (sqlite3_column_type(s, c) == SQLITE_NULL) return strdup("-");
  const unsigned char *t = sqlite3_column_text(s, c);
  const size_t n = (size_t)sqlite3_column_bytes(s, c);
  char *d = malloc(n + 1);
  if (!d) return NULL;
  for (size_t i = 0; i < n; i++) d[i] = t[i] < 0x20 || t[i] == 0x7F ? ' ' : (char)t[i];
  d[n] = '\0';
  return d;
}

/* Display width: UTF-8 code points, not bytes. */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) w++;
  return w;
}

static void pad(FILE *out, size_t n) {
  while (n--) fputc(' ', out);
}

/* Rows as an aligned table with a header; numeric columns right-aligned. */
static eg_err rows_table(eg_db *db, sqlite3_stmt *s, FILE *out, size_t *nrows, eg_fault *f) {
  const int ncol = sqlite3_column_count(s);
  size_t nrow = 0, cap = 0;
  char **cells = NULL;
  size_t *w = calloc((size_t)ncol, sizeof *w);
  bool *numeric = calloc((size_t)ncol, sizeof *numeric);
  bool *any = calloc((size_t)ncol, sizeof *any); /* a non-NULL value seen */
  eg_err r = EG_OK;
  int rc;
  if (!w || !numeric || !any) {
    r = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    goto done;
  }
  for (int c = 0; c < ncol; c++) w[c] = width(sqlite3_column_name(s, c)), numeric[c] = true;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (nrow == cap) {
      cap = cap ? 2 * cap : 16;
      char **nc = realloc(cells, cap * (size_t)ncol * sizeof *nc);
      if (!nc) {
        r = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
        goto done;
      }
      cells = nc;
    }
    for (int c = 0; c < ncol; c++) {
      const int t = sqlite3_column_type(s, c);
      if (t != SQLITE_INTEGER && t != SQLITE_FLOAT && t != SQLITE_NULL) numeric[c] = false;
      if (t != SQLITE_NULL) any[c] = true;
      char *v = cell_text(s, c);
      cells[nrow * (size_t)ncol + (size_t)c] = v;
      if (!v) {
        for (int k = c + 1; k < ncol; k++) cells[nrow * (size_t)ncol + (size_t)k] = NULL;
        nrow++;
        r = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
        goto done;
      }
      if (width(v) > w[c]) w[c] = width(v);
    }
    nrow++;
  }
  if (rc != SQLITE_DONE) {
    r = db_fail(db, f, "reading the report");
    goto done;
  }
  /* Right-align columns of numbers; a column of NULLs only is text. */
  for (int c = 0; c < ncol; c++) numeric[c] = numeric[c] && any[c];
  for (size_t row = 0; row <= nrow; row++) {
    for (int c = 0; c < ncol; c++) {
      const char *v = row == 0 ? sqlite3_column_name(s, c) : cells[(row - 1) * (size_t)ncol + (size_t)c];
      const size_t gap = w[c] - width(v);
      const bool last = c == ncol - 1;
      if (c) fputs("  ", out);
      if (numeric[c] && row) pad(out, gap);
      fputs(v, out);
      if (!(numeric[c] && row) && !last) pad(out, gap);
    }
    fputc('\n', out);
  }
done:
  sqlite3_reset(s);
  for (size_t i = 0; i < nrow * (size_t)ncol; i++) free(cells[i]);
  free(cells);
  free(w);
  free(numeric);
  free(any);
  if (nrows) *nrows = nrow;
  return r;
}

/* One row as "name  value" lines. */
static eg_err row_fields(eg_db *db, sqlite3_stmt *s, FILE *out, eg_fault *f) {
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    size_t w = 0;
    for (int c = 0; c < sqlite3_column_count(s); c++)
      if (width(sqlite3_column_name(s, c)) > w) w = width(sqlite3_column_name(s, c));
    for (int c = 0; c < sqlite3_column_count(s); c++) {
      char *v = cell_text(s, c);
      fputs(sqlite3_column_name(s, c), out);
      pad(out, w - width(sqlite3_column_name(s, c)) + 2);
      fprintf(out, "%s\n", v ? v : "?");
      free(v);
    }
  }
  sqlite3_reset(s);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? EG_OK : db_fail(db, f, "reading the report");
}

eg_err eg_db_report_run(eg_db *db, int64_t run_id, bool json, FILE *out, eg_fault *f) {
  eg_err r = resolve_run(db, &run_id, f);
  if (r != EG_OK) return r;
  const stmt_id ids[3] = {json ? S_RUN_JSON : S_RUN_TEXT, json ? S_IMAGES_JSON : S_IMAGES_TEXT,
                          json ? S_UNITS_JSON : S_UNITS_TEXT};
  for (int i = 0; i < 3; i++) {
    sqlite3_stmt *s = stmt(db, ids[i], f);
    if (!s) return EG_DB;
    sqlite3_bind_int64(s, 1, run_id);
    size_t n;
    if (json) r = rows_json(db, s, out, &n, f);
    else if (i == 0) r = row_fields(db, s, out, f);
    else {
      fprintf(out, "\n%s:\n", i == 1 ? "images" : "units");
      r = rows_table(db, s, out, &n, f);
    }
    if (r != EG_OK) return r;
  }
  return EG_OK;
}

/* "24:0A:C4-00.00.01", "240ac4000001" -> "24:0a:c4:00:00:01"; false if not a MAC. */
static bool normalize_mac(const char *in, char out[18]) {
  int nd = 0;
  char digits[12];
  for (const char *p = in; *p; p++) {
    const char c = (char)(*p | 0x20);
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
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

eg_err eg_db_report_unit(eg_db *db, const char *mac_or_slot, bool json, FILE *out, eg_fault *f) {
  if (!mac_or_slot || !*mac_or_slot) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no MAC or slot given");
  char mac[18];
  const bool is_mac = normalize_mac(mac_or_slot, mac);
  int64_t n = 0;
  for (int pass = 0; pass < 2; pass++) {
    sqlite3_stmt *s = stmt(db, pass == 0 ? S_UNIT_HIST_COUNT : json ? S_UNIT_HIST_JSON : S_UNIT_HIST_TEXT, f);
    if (!s) return EG_DB;
    if (is_mac) sqlite3_bind_text(s, 1, mac, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, mac_or_slot, -1, SQLITE_TRANSIENT);
    if (pass == 0) {
      const int rc = sqlite3_step(s);
      n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
      sqlite3_reset(s);
      if (rc != SQLITE_ROW) return db_fail(db, f, "finding the unit");
      if (!n) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no unit with MAC or slot %s", mac_or_slot);
      continue;
    }
    size_t rows;
    return json ? rows_json(db, s, out, &rows, f) : rows_table(db, s, out, &rows, f);
  }
  return EG_OK;
}

eg_err eg_db_list_runs(eg_db *db, int limit, bool json, FILE *out, eg_fault *f) {
  sqlite3_stmt *s = stmt(db, json ? S_RUNS_JSON : S_RUNS_TEXT, f);
  if (!s) return EG_DB;
  sqlite3_bind_int(s, 1, limit > 0 ? limit : -1);
  size_t n;
  return json ? rows_json(db, s, out, &n, f) : rows_table(db, s, out, &n, f);
}
