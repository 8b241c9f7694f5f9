/* db_rerun.h - what the gate policies and --retry-failed ask the log.
 *
 * Queries only (nothing here writes). Same rules as db.h: one thread at a
 * time per eg_db (the recorder's work thread while a run is on), EG_DB with
 * SQLite's words, EG_INVAL with the reason in f->msg.
 *
 * Reruns work on the runs of one station and one manifest (its sha256)
 * only: another station's or another manifest's runs in the same database
 * are never picked.
 */
#ifndef EG_DB_RERUN_H
#define EG_DB_RERUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* The latest run (highest id) of `station` whose manifest_sha256 is
 * `manifest_sha256` (32 bytes). EG_INVAL (f says so) when there is none. */
eg_err eg_db_latest_run(eg_db *db, const char *station, const uint8_t *manifest_sha256, int64_t *run_id, eg_fault *f);

/* --retry-failed --by-mac: *retry = the MAC ("24:0a:c4:00:00:01") has a
 * failed or aborted attempt in a run of (station, manifest) and no pass in
 * those runs after its last such attempt. An attempt that failed before it
 * read the MAC counts as the MAC's when another attempt of the same run and
 * slot read it. */
eg_err eg_db_mac_needs_retry(eg_db *db, const char *station, const uint8_t *manifest_sha256, const char *mac,
                             bool *retry, eg_fault *f);

/* The images a run recorded (for refusing changed images on a retry). */
typedef struct eg_db_image_ref {
  int idx;
  uint32_t offset;
  char sha256[65];  /* of the file, lower-case hex */
  char chip[32];    /* "" = every chip */
} eg_db_image_ref;
/* *refs (caller frees) holds *count images in idx order; EG_INVAL for no
 * such run. */
eg_err eg_db_run_images(eg_db *db, int64_t run_id, eg_db_image_ref **refs, size_t *count, eg_fault *f);

/* A station's "already passed": *passed = the MAC's latest attempt that
 * could have changed its flash (pass, fail or aborted; skipped attempts
 * wrote nothing), in any run of any station, passed, and that run's images
 * are exactly `images` ("offset:md5" per image as flashed, ordered by offset
 * and joined by ",", as eg_images_signature() in gate.h builds it).
 * *unit_id: that attempt's row (0 if none). */
eg_err eg_db_mac_passed(eg_db *db, const char *mac, const char *images, bool *passed, int64_t *unit_id, eg_fault *f);

#endif
