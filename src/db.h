/* db.h - the SQLite traceability log.
 *
 * Schema: schema/espgang.sql (current, for humans) and schema/migrations/
 * (applied in order at open; the schema_version table says where a file is).
 * WAL mode, synchronous=FULL: when eg_db_unit_finish() returns EG_OK the row
 * is on disk. A unit's row is written when it starts (result in_progress) so
 * a crash leaves evidence; eg_db_recover() marks such rows aborted.
 *
 * Errors: EG_DB with SQLite's words in f->msg; EG_INVAL for a run or unit
 * that does not exist or an argument the log cannot take (f->msg says which).
 * A database written by a newer espgang (higher schema version) is refused.
 *
 * Threading: an eg_db is used by one thread at a time (the scheduler runs all
 * calls in order on one libuv work thread so the loop never blocks on disk).
 * Ownership: eg_db_close() releases everything.
 */
#ifndef EG_DB_H
#define EG_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "errors.h"
#include "image.h"
#include "unit.h"

typedef struct eg_db eg_db;

/* Open or create, apply pending migrations. EG_DB with SQLite's words in f. */
eg_err eg_db_open(eg_db **out, const char *path, eg_fault *f);
void eg_db_close(eg_db *db);
int eg_db_schema_version(eg_db *db);

/* Units left in_progress by a process that died -> aborted (message says
 * so); their runs get an end time and status "crashed". *count = rows fixed.
 * Runs begun through this handle, and runs whose writer process is still
 * alive on this host, are left alone. */
eg_err eg_db_recover(eg_db *db, int *count, eg_fault *f);

/* What a run is. Columns: name, stored name. */
#define EG_RUN_KIND_MAP(XX) \
  XX(FLASH,   "flash")      \
  XX(STATION, "station")    /* a station session: one long run */

typedef enum eg_run_kind {
#define EG_RUN_KIND_ENUM(name, str) EG_RUN_##name,
  EG_RUN_KIND_MAP(EG_RUN_KIND_ENUM)
#undef EG_RUN_KIND_ENUM
  EG_RUN_KIND__COUNT
} eg_run_kind;

/* How a --retry-failed run chose its units. NONE: not a retry (NULL). */
#define EG_RETRY_MODE_MAP(XX) \
  XX(NONE, NULL)              \
  XX(SLOT, "slot")            \
  XX(MAC,  "mac")

typedef enum eg_retry_mode {
#define EG_RETRY_MODE_ENUM(name, str) EG_RETRY_##name,
  EG_RETRY_MODE_MAP(EG_RETRY_MODE_ENUM)
#undef EG_RETRY_MODE_ENUM
  EG_RETRY_MODE__COUNT
} eg_retry_mode;

const char *eg_run_kind_name(eg_run_kind k);     /* "flash"; NULL out of range */
const char *eg_retry_mode_name(eg_retry_mode m); /* "slot"; NULL for NONE */

typedef struct eg_run_info {
  const char *station;
  const char *operator_name;   /* NULL if not given */
  const char *host;
  const char *tool_version;
  const char *command_line;
  const char *manifest_path;   /* NULL for CLI runs without a manifest */
  const char *manifest_text;
  size_t manifest_len;
  const uint8_t *manifest_sha256; /* 32 bytes or NULL */
  eg_run_kind kind;              /* 0 = FLASH */
  int64_t parent_run_id;         /* the run a retry retries; 0 none */
  eg_retry_mode retry_mode;      /* NONE unless parent_run_id is set */
} eg_run_info;

eg_err eg_db_run_begin(eg_db *db, const eg_run_info *info, int64_t *run_id, eg_fault *f);
/* One row per image of the run: offset, size, file, sha256 (file), md5 (as
 * flashed), and the chip it is for ("ESP32-C3" as eg_chip.name; NULL: every
 * chip of the run). */
eg_err eg_db_run_image(eg_db *db, int64_t run_id, int index, const eg_image *img, const char *chip, eg_fault *f);
/* status: "finished" or "interrupted". */
eg_err eg_db_run_end(eg_db *db, int64_t run_id, const char *status, eg_fault *f);

/* Insert the unit's row (result in_progress) and return its id. */
eg_err eg_db_unit_begin(eg_db *db, int64_t run_id, const eg_unit_record *u, int64_t *unit_id, eg_fault *f);
/* Update every column from u (identity learned, stage times so far) and
 * its unit_images rows (one per u->images entry whose action is not NONE). */
eg_err eg_db_unit_update(eg_db *db, int64_t unit_id, const eg_unit_record *u, eg_fault *f);
/* Final update; durable when it returns EG_OK (outside a batch). */
eg_err eg_db_unit_finish(eg_db *db, int64_t unit_id, const eg_unit_record *u, eg_fault *f);

/* Group commit: the calls made between eg_db_batch_begin() and
 * eg_db_batch_commit() share one transaction, so one fsync stores them all
 * (a rack's 256 first rows at once rather than one after another). Each call
 * still succeeds or fails on its own (a savepoint each: a refused call is
 * undone alone), but nothing of the batch is durable, and none of its rows
 * may be acted on, before eg_db_batch_commit() returns EG_OK; if it fails,
 * the whole batch is undone. */
eg_err eg_db_batch_begin(eg_db *db, eg_fault *f);
eg_err eg_db_batch_commit(eg_db *db, eg_fault *f);

/* ------------------------------------------------ rerun from the log
 * For `flash --retry-failed`: the scheduler works on the runs of its own
 * station and manifest only. */

/* The latest run (highest id) of `station` whose manifest_sha256 is
 * `manifest_sha256` (32 bytes). EG_INVAL (f says so) when there is none. */
eg_err eg_db_latest_run(eg_db *db, const char *station, const uint8_t *manifest_sha256, int64_t *run_id, eg_fault *f);

/* Slots whose latest attempt in run `run_id` (0 = the latest run of any
 * station; prefer eg_db_latest_run()) neither passed nor was skipped. In the
 * order the slots first started. Caller frees each string and the array. */
eg_err eg_db_failed_slots(eg_db *db, int64_t run_id, char ***slots, size_t *count, eg_fault *f);

/* For --retry-failed --by-mac: *retry = the MAC ("24:0a:c4:00:00:01") has a
 * failed or aborted attempt in a run of (station, manifest) and no pass
 * after its last such attempt. An attempt without a MAC counts as the MAC's
 * when another attempt in its run and slot read that MAC. */
eg_err eg_db_mac_needs_retry(eg_db *db, const char *station, const uint8_t *manifest_sha256, const char *mac,
                             bool *retry, eg_fault *f);

/* The images a run recorded, for refusing changed images on a retry. */
typedef struct eg_db_image_ref {
  int idx;
  uint32_t offset;
  char sha256[65];  /* of the file, lower-case hex */
  char chip[32];    /* "" = every chip */
} eg_db_image_ref;
/* *refs (caller frees) holds *count images in idx order; EG_INVAL for no such run. */
eg_err eg_db_run_images(eg_db *db, int64_t run_id, eg_db_image_ref **refs, size_t *count, eg_fault *f);

/* ------------------------------------------------ reading for reports
 * Reports never write: eg_db_open_readonly() takes one or more files
 * (`--db a.db --db b.db`), each an existing regular file holding an espgang
 * log, and never creates, writes or migrates one. A file at an older schema
 * is copied into memory and the copy migrated. Missing files, directories,
 * FIFOs, non-SQLite files and logs from a newer espgang are refused (EG_INVAL
 * for what the path is, EG_DB for what SQLite says), f->msg naming the path. */
eg_err eg_db_open_readonly(eg_db **out, const char *const *paths, size_t npaths, eg_fault *f);
size_t eg_db_files(const eg_db *db);                 /* 1 for eg_db_open() */
/* Schema version a file had on disk (before any in-memory migration). */
int eg_db_file_version(const eg_db *db, size_t file);

/* Rows as stored. Strings are NUL-terminated copies owned by the eg_log;
 * NULL in the database is NULL here, unknown integers are -1. `db` is the
 * file's index in eg_db_open_readonly()'s list (0 for eg_db_open()). */
typedef struct eg_log_run {
  int db;
  int64_t id, parent_run_id;            /* parent 0: not a retry */
  const char *started_at, *ended_at, *station, *operator_name, *host, *status, *kind, *retry_mode;
  const char *manifest_path, *manifest_sha256, *tool_version, *command_line;
  int64_t units, passed, failed, aborted, skipped, attempts; /* stored counts */
} eg_log_run;

typedef struct eg_log_attempt {
  int db;
  int64_t id, run_id;
  const char *slot, *port, *usb_location, *transport, *chip, *chip_desc, *mac, *flash_mfr, *flash_device;
  const char *key_purposes, *fallback_log, *started_at, *finished_at, *result, *fail_stage, *error_code;
  const char *status_bytes, *message;
  int attempt, rev_major, rev_minor, stub, secure_boot, flash_encryption, secure_download; /* -1 unknown */
  int64_t flash_id, flash_size, crystal_mhz, sec_flags, flash_crypt_cnt, baud, baud_requested, fallbacks;
  int64_t port_wait_ms, duration_ms, opcode, bytes_tx, bytes_rx;
  int64_t stage_ms[EG_STAGE__COUNT];
} eg_log_attempt;

typedef struct eg_log_image {
  int db;
  int64_t run_id;
  int idx;
  int64_t offset, size;
  const char *file, *sha256, *md5, *chip;
} eg_log_image;

typedef struct eg_log {
  eg_log_run *runs;          /* by (db, id) */
  size_t nruns;
  eg_log_attempt *attempts;  /* by (db, id) */
  size_t nattempts;
  eg_log_image *images;      /* by (db, run_id, idx) */
  size_t nimages;
  struct eg_log_chunk *arena; /* the strings */
} eg_log;

/* Every run of every file. */
eg_err eg_db_load_runs(eg_db *db, eg_log *log, eg_fault *f);
/* The attempts and images of the runs with want[i] set (i indexes
 * log->runs; NULL = every run). */
eg_err eg_db_load_attempts(eg_db *db, eg_log *log, const bool *want, eg_fault *f);
void eg_log_free(eg_log *log);

/* The SQLite handle, for queries kept in other files (db_rerun.c); the same
 * threading rule applies. */
struct sqlite3;
struct sqlite3 *eg_db_sqlite(eg_db *db);

#endif
