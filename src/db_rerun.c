/* db_rerun.c - the log's answers for reruns and stations (db_rerun.h). */
#include "db_rerun.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An attempt belongs to a MAC when it read that MAC, or when it read none
 * (it failed before) and another attempt of its run and slot did. */
#define MAC_OWNS(u)                                                                                   \
  "(" u ".mac = ?3 OR (" u ".mac IS NULL AND EXISTS (SELECT 1 FROM units AS k WHERE k.run_id = " u \
  ".run_id AND k.slot = " u ".slot AND k.mac = ?3)))"

static const char LATEST_RUN_SQL[] = "SELECT MAX(id) FROM runs WHERE station = ?1 AND manifest_sha256 = ?2";
static const char LAST_FAIL_SQL[] = "SELECT MAX(u.id) FROM units AS u JOIN runs AS r ON r.id = u.run_id "
                                    "WHERE r.station = ?1 AND r.manifest_sha256 = ?2 "
                                    "AND u.result IN ('fail', 'aborted') AND " MAC_OWNS("u");
static const char PASS_AFTER_SQL[] = "SELECT COUNT(*) FROM units AS u JOIN runs AS r ON r.id = u.run_id "
                                     "WHERE r.station = ?1 AND r.manifest_sha256 = ?2 AND u.result = 'pass' "
                                     "AND u.mac = ?3 AND u.id > ?4";
static const char RUN_IMAGES_SQL[] = "SELECT idx, offset, sha256 FROM run_images WHERE run_id = ?1 ORDER BY idx";
static const char RUN_EXISTS_SQL[] = "SELECT COUNT(*) FROM runs WHERE id = ?1";
static const char MAC_LAST_SQL[] = "SELECT id, result = 'pass', run_id FROM units "
                                  "WHERE mac = ?1 AND result IN ('pass', 'fail', 'aborted') ORDER BY id DESC LIMIT 1";
static const char RUN_SIG_SQL[] = "SELECT offset, md5 FROM run_images WHERE run_id = ?1 ORDER BY offset";

static eg_err fail_sql(sqlite3 *h, eg_fault *f, const char *what) {
  return eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", what, sqlite3_errmsg(h));
}

static eg_err prepare(eg_db *db, const char *sql, sqlite3_stmt **s, eg_fault *f) {
  sqlite3 *h = eg_db_sqlite(db);
  if (sqlite3_prepare_v2(h, sql, -1, s, NULL) != SQLITE_OK) return fail_sql(h, f, "preparing a rerun query");
  return EG_OK;
}

/* One integer from a one-row query whose parameters are already bound; 0
 * for NULL. */
static eg_err one_int(eg_db *db, sqlite3_stmt *s, int64_t *out, const char *what, eg_fault *f) {
  const int rc = sqlite3_step(s);
  *out = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL ? sqlite3_column_int64(s, 0) : 0;
  const eg_err r = rc == SQLITE_ROW || rc == SQLITE_DONE ? EG_OK : fail_sql(eg_db_sqlite(db), f, what);
  sqlite3_finalize(s);
  return r;
}

eg_err eg_db_latest_run(eg_db *db, const char *station, const uint8_t *manifest_sha256, int64_t *run_id, eg_fault *f) {
  *run_id = 0;
  if (!station || !manifest_sha256)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a station and a manifest sha256 are needed");
  char hex[65];
  eg_hex(hex, manifest_sha256, 32);
  sqlite3_stmt *s;
  eg_err r = prepare(db, LATEST_RUN_SQL, &s, f);
  if (r != EG_OK) return r;
  sqlite3_bind_text(s, 1, station, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, hex, -1, SQLITE_TRANSIENT);
  if ((r = one_int(db, s, run_id, "finding the latest run", f)) != EG_OK) return r;
  if (!*run_id)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1,
                        "no earlier run of station %s with this manifest (sha256 %.12s...) in the log", station, hex);
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
  sqlite3_stmt *s;
  eg_err r = prepare(db, LAST_FAIL_SQL, &s, f);
  if (r != EG_OK) return r;
  sqlite3_bind_text(s, 1, station, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, hex, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, mac, -1, SQLITE_TRANSIENT);
  if ((r = one_int(db, s, &last_fail, "looking up the MAC's failures", f)) != EG_OK) return r;
  if (!last_fail) return EG_OK; /* it never failed here */
  if ((r = prepare(db, PASS_AFTER_SQL, &s, f)) != EG_OK) return r;
  sqlite3_bind_text(s, 1, station, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, hex, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, mac, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 4, last_fail);
  if ((r = one_int(db, s, &passes, "looking up the MAC's passes", f)) != EG_OK) return r;
  *retry = passes == 0;
  return EG_OK;
}

eg_err eg_db_run_images(eg_db *db, int64_t run_id, eg_db_image_ref **refs, size_t *count, eg_fault *f) {
  *refs = NULL, *count = 0;
  sqlite3_stmt *s;
  int64_t exists = 0;
  eg_err r = prepare(db, RUN_EXISTS_SQL, &s, f);
  if (r != EG_OK) return r;
  sqlite3_bind_int64(s, 1, run_id);
  if ((r = one_int(db, s, &exists, "looking up a run", f)) != EG_OK) return r;
  if (!exists) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no run %lld in the log", (long long)run_id);
  if ((r = prepare(db, RUN_IMAGES_SQL, &s, f)) != EG_OK) return r;
  sqlite3_bind_int64(s, 1, run_id);
  eg_db_image_ref *list = NULL;
  size_t n = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    eg_db_image_ref *l = realloc(list, (n + 1) * sizeof *l);
    if (!l) {
      sqlite3_finalize(s);
      free(list);
      return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    }
    list = l;
    eg_db_image_ref *e = &list[n++];
    memset(e, 0, sizeof *e);
    e->idx = sqlite3_column_int(s, 0);
    e->offset = (uint32_t)sqlite3_column_int64(s, 1);
    const unsigned char *sha = sqlite3_column_text(s, 2);
    snprintf(e->sha256, sizeof e->sha256, "%s", sha ? (const char *)sha : "");
  }
  if (rc != SQLITE_DONE) {
    r = fail_sql(eg_db_sqlite(db), f, "reading the run's images");
    sqlite3_finalize(s);
    free(list);
    return r;
  }
  sqlite3_finalize(s);
  *refs = list, *count = n;
  return EG_OK;
}

/* Does run `run_id` record exactly the images of signature `images`? */
static eg_err run_has_images(eg_db *db, int64_t run_id, const char *images, bool *same, eg_fault *f) {
  *same = false;
  sqlite3_stmt *s;
  const eg_err r = prepare(db, RUN_SIG_SQL, &s, f);
  if (r != EG_OK) return r;
  sqlite3_bind_int64(s, 1, run_id);
  const char *want = images;
  bool match = true;
  int rc;
  /* Walk the signature as the rows come ("offset:md5" joined by ","). */
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char *md5 = sqlite3_column_text(s, 1);
    char item[96];
    snprintf(item, sizeof item, "%s%lld:%s", want == images ? "" : ",", (long long)sqlite3_column_int64(s, 0),
             md5 ? (const char *)md5 : "");
    const size_t n = strlen(item);
    if (!match || strncmp(want, item, n) != 0) {
      match = false;
      continue;
    }
    want += n;
  }
  const eg_err out = rc == SQLITE_DONE ? EG_OK : fail_sql(eg_db_sqlite(db), f, "reading a run's images");
  sqlite3_finalize(s);
  *same = out == EG_OK && match && *want == '\0' && want != images;
  return out;
}

eg_err eg_db_mac_passed(eg_db *db, const char *mac, const char *images, bool *passed, int64_t *unit_id, eg_fault *f) {
  *passed = false;
  *unit_id = 0;
  if (!mac || !images) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a MAC and the images are needed");
  sqlite3_stmt *s;
  eg_err r = prepare(db, MAC_LAST_SQL, &s, f);
  if (r != EG_OK) return r;
  sqlite3_bind_text(s, 1, mac, -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s);
  bool pass = false;
  int64_t run_id = 0;
  if (rc == SQLITE_ROW) {
    *unit_id = sqlite3_column_int64(s, 0);
    pass = sqlite3_column_int(s, 1) == 1;
    run_id = sqlite3_column_int64(s, 2);
  }
  r = rc == SQLITE_ROW || rc == SQLITE_DONE ? EG_OK : fail_sql(eg_db_sqlite(db), f, "looking up the MAC");
  sqlite3_finalize(s);
  if (r != EG_OK || !pass) return r;
  return run_has_images(db, run_id, images, passed, f);
}
