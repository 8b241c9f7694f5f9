/* db_rerun.c - the log's answer to a station's gate (db_rerun.h). */
#include "db_rerun.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char MAC_LAST_SQL[] = "SELECT id, result = 'pass', run_id FROM units "
                                  "WHERE mac = ?1 AND result IN ('pass', 'fail', 'aborted') ORDER BY id DESC LIMIT 1";
static const char RUN_SIG_SQL[] = "SELECT offset, md5 FROM run_images WHERE run_id = ?1 ORDER BY offset, md5";

static eg_err fail_sql(sqlite3 *h, eg_fault *f, const char *what) {
  return eg_fault_set(f, EG_DB, EG_STAGE_NONE, -1, "%s: %s", what, sqlite3_errmsg(h));
}

static eg_err prepare(eg_db *db, const char *sql, sqlite3_stmt **s, eg_fault *f) {
  sqlite3 *h = eg_db_sqlite(db);
  if (sqlite3_prepare_v2(h, sql, -1, s, NULL) != SQLITE_OK) return fail_sql(h, f, "preparing a gate query");
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
