/* gang.h - the gang run: every slot of a manifest flashed at once from one
 * loop, each unit recorded in the SQLite log.
 *
 * Life of a unit: its row is inserted (in_progress) before its port is
 * opened; identity and stage times are updated as they are learned; the final
 * row is durable before on_unit_done reports the result. A failed unit is
 * retried on the same port (a new attempt row) up to manifest->retries times;
 * one unit never waits for another. eg_sched_stop() (SIGINT) aborts the
 * units in flight; their rows say aborted.
 *
 * Database calls run in order on one libuv work thread, so the loop never
 * waits for the disk. Everything else runs on the loop thread.
 */
#ifndef EG_GANG_H
#define EG_GANG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "db.h"
#include "device.h"
#include "manifest.h"
#include "prep.h"
#include "stubfile.h"
#include "unit.h"

typedef struct eg_sched eg_sched;

typedef struct eg_sched_events {
  void (*on_unit_start)(void *ctx, size_t slot, const eg_unit_record *u);
  void (*on_unit_stage)(void *ctx, size_t slot, const eg_unit_record *u, eg_stage stage);
  void (*on_unit_identity)(void *ctx, size_t slot, const eg_unit_record *u);
  void (*on_unit_progress)(void *ctx, size_t slot, const eg_unit_record *u, uint64_t done, uint64_t total);
  /* The row is durable (or recorded_ok is false: the database refused it and
   * the record was written to stderr as JSON instead). */
  void (*on_unit_done)(void *ctx, size_t slot, const eg_unit_record *u, bool will_retry, bool recorded_ok);
  void (*on_log)(void *ctx, size_t slot, const char *line); /* trace, optional */
  void (*on_stopping)(void *ctx, int signum);                 /* a stop was requested */
} eg_sched_events;

typedef struct eg_sched_config {
  const eg_manifest *manifest;
  const eg_slot *slots;
  size_t nslots;
  eg_db *db;
  const eg_stub *stub;           /* for the manifest's chip; NULL: ROM only */
  eg_imageset *images;
  const char *operator_name;     /* optional */
  const char *command_line;
  bool trace;
  uint32_t retry_delay_ms;       /* pause before a retry (default 500) */
  bool handle_signals;           /* SIGINT/SIGTERM stop the run cleanly */
} eg_sched_config;

typedef struct eg_sched_summary {
  int64_t run_id;
  size_t units, passed, failed, aborted;
  size_t attempts;
  bool interrupted;
  bool db_error;                 /* some record could not be stored */
  uint64_t elapsed_ms;
} eg_sched_summary;

/* Run the whole gang on `loop` until every unit has finished (or been
 * aborted). Returns EG_OK when the run was carried out (units may still have
 * failed: see the summary), or an error that stopped it from starting. */
eg_err eg_sched_run(uv_loop_t *loop, const eg_sched_config *cfg, const eg_sched_events *ev, void *ctx,
                    eg_sched_summary *out, eg_fault *f);
/* Abort every unit in flight. Safe to call from a uv callback. */
void eg_sched_stop(eg_sched *s);

#endif
