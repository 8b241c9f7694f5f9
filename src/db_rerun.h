/* db_rerun.h - what a station's gate asks the log beyond db.h's rerun
 * queries (eg_db_latest_run, eg_db_mac_needs_retry, eg_db_run_images).
 *
 * Queries only (nothing here writes). Same rules as db.h: one thread at a
 * time per eg_db (the recorder's work thread while a run is on), EG_DB with
 * SQLite's words, EG_INVAL with the reason in f->msg.
 */
#ifndef EG_DB_RERUN_H
#define EG_DB_RERUN_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

/* A station's "already passed": *passed = the MAC's latest attempt that
 * could have changed its flash (pass, fail or aborted; skipped attempts
 * wrote nothing), in any run of any station, passed, and that run's images
 * are exactly `images` ("offset:md5" per image as flashed, ordered by offset
 * and joined by ",", as eg_images_signature() in gate.h builds it).
 * *unit_id: that attempt's row (0 if none). */
eg_err eg_db_mac_passed(eg_db *db, const char *mac, const char *images, bool *passed, int64_t *unit_id, eg_fault *f);

#endif
