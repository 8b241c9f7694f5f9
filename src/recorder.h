/* recorder.h - the traceability log's pipeline: every database call of a run
 * in order, on one libuv work thread, so the loop never waits for the disk.
 *
 * The scheduler asks for a unit's row before it touches the unit's port
 * (unit_begin), updates it as the unit is learned (unit_update: coalesced,
 * only the newest state of a unit is written), and makes the final row
 * durable before the result is shown (unit_finish). A record the database
 * refuses is never lost: it is printed to stderr as one JSON line
 * ("unit_not_recorded") and the callback says so.
 *
 * Calls are served strictly in the order made. Calls waiting together go
 * to the work thread as one batch in one transaction (group commit: one
 * fsync for a rack's rows, eg_db_batch_begin); each callback runs after the
 * batch is committed. Callbacks run on the loop thread. The eg_db must
 * outlive the recorder and be used by nobody else while calls are queued. Free only when eg_recorder_idle() is true.
 */
#ifndef EG_RECORDER_H
#define EG_RECORDER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db.h"
#include "errors.h"
#include "unit.h"

typedef struct eg_recorder eg_recorder;

/* result EG_OK: stored (unit_id set by unit_begin). Otherwise the fault
 * says why and the record went to stderr. */
typedef void (*eg_recorder_cb)(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id);

eg_recorder *eg_recorder_new(uv_loop_t *loop, eg_db *db, int64_t run_id);
void eg_recorder_free(eg_recorder *r);
bool eg_recorder_idle(const eg_recorder *r);
int64_t eg_recorder_run_id(const eg_recorder *r);
/* True once any record was refused (the run's exit status says so). */
bool eg_recorder_had_error(const eg_recorder *r);

void eg_recorder_unit_begin(eg_recorder *r, const eg_unit_record *u, eg_recorder_cb cb, void *ctx);
void eg_recorder_unit_update(eg_recorder *r, int64_t unit_id, const eg_unit_record *u);
void eg_recorder_unit_finish(eg_recorder *r, int64_t unit_id, const eg_unit_record *u, eg_recorder_cb cb, void *ctx);
/* status: "finished" or "interrupted". */
void eg_recorder_run_end(eg_recorder *r, const char *status, eg_recorder_cb cb, void *ctx);

/* A query of the caller's own (the gate policies' look-ups), run on the
 * work thread in order with the writes, so it sees every record asked for
 * before it (inside the batch's transaction: it must read, or write through
 * db.c's calls, never BEGIN itself). fn may use only db and arg; its result and fault reach cb on
 * the loop thread (unit_id 0). A failed query loses no record: nothing is
 * spilled and had_error is not set; the caller decides. */
typedef eg_err (*eg_recorder_fn)(eg_db *db, void *arg, eg_fault *f);
void eg_recorder_call(eg_recorder *r, eg_recorder_fn fn, void *arg, eg_recorder_cb cb, void *ctx);

#endif
