/* station.h - `espgang station`: a rack that flashes each board the moment
 * it is seated, all shift long.
 *
 * The units run in the one scheduler (scheduler.h, station mode): a slot is
 * a job that units pass through, each unit its own row in the log, the gate
 * (gate.h) deciding whether a seated board is flashed. The station watches
 * every slot between units and seats the next one. A slot's cycle:
 *
 *   WAITING   nobody there. A new unit is noticed when a probe (probe.h)
 *             finds a chip in download mode, or when the port appears (its
 *             path comes back, a refused connection is accepted) and a
 *             board there talks: -> FLASHING
 *   FLASHING  the scheduler runs the unit (its attempts, the gate).
 *             -> PASS (passed, or skipped: "already passed") or FAIL
 *   PASS/FAIL the result, the board still seated. The next probe finds it
 *             there (the same MAC, or a board that talks) -> REMOVAL;
 *             finds the port gone, or twice in a row nobody answering
 *             (one missed reply on a loaded machine is not a removal)
 *             -> WAITING (removed);
 *             finds another MAC -> FLASHING (a swap: a new unit)
 *   REMOVAL   waiting for the finished board to be taken out (as above)
 *   OFFLINE   the port exists but cannot be used (busy, no permission):
 *             probed again every period
 *
 * Probing: one probe per slot at a time, at most `max_probes` at once
 * (a pool: a 100-slot rack never opens 100 ports at once), each slot every
 * `probe_ms`, the first ones staggered over one period; a slot that is
 * FLASHING is never probed (its port is the device's). A change in a
 * watched folder (inotify, e.g. /dev/serial/by-path or espsim's pty folder)
 * probes its slots at once. See probe.h for what one probe costs.
 *
 * Stopping: SIGINT/SIGTERM (or eg_station_stop) abort the units in flight
 * (recorded as aborted), close every probe and watch, and end the session
 * (the run's end is recorded as finished). A killed station leaves its run
 * 'running' for the next espgang to mark crashed (db.h eg_db_recover).
 *
 * Threading and ownership: loop thread only; eg_station_run runs the loop
 * until everything is closed; the config and the jobs must outlive it.
 */
#ifndef EG_STATION_H
#define EG_STATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dash.h"
#include "gate.h"
#include "probe.h"
#include "scheduler.h"

/* A slot's place in the cycle: eg_station_state, EG_STATION_STATE_MAP and
 * its names (eg_station_state_name, eg_station_state_words) are dash.h's,
 * the dashboard's vocabulary being the station's. */

/* The shift's counters. A unit counts once, when its last attempt ends:
 * passed, failed, skipped (turned away by the gate), aborted (stopped);
 * units = passed + failed; first_pass = passed on attempt 1;
 * first_pass_yield = first_pass / units (< 0 while units is 0);
 * units_per_hour = units * 3600000 / max(elapsed ms, 60000); seated = units
 * started; attempts = every attempt ended. */
typedef struct eg_station_counters {
  uint64_t seated, units, passed, failed, skipped, aborted, first_pass, attempts;
  double first_pass_yield;
  double units_per_hour;
  int64_t started_ms;  /* Unix epoch ms */
  uint64_t elapsed_ms;
} eg_station_counters;

typedef struct eg_station eg_station;

typedef struct eg_station_config {
  const eg_job *jobs;           /* one per slot: label, port, device config, attempts */
  size_t njobs;
  eg_recorder *recorder;        /* required: every unit is recorded */
  const eg_gate *gate;          /* NULL: every seated unit is flashed */
  eg_probe_config probe;        /* reset plan, rates; chip: the manifest's (MAC reads) */
  bool hard_reset_probe;        /* probes of finished boards reset them back into their app */
  uint32_t probe_ms;            /* period per slot; 0: 1000 */
  unsigned max_probes;          /* probes at once; 0: 16 */
  bool handle_signals;          /* SIGINT/SIGTERM stop the station */
} eg_station_config;

typedef struct eg_station_events {
  /* A slot's state or note changed (note: extra words for the tile, "" for
   * none). */
  void (*on_state)(void *ctx, size_t slot, eg_station_state st, const char *note);
  /* The units, as the scheduler reports them (scheduler.h). */
  void (*on_unit_start)(void *ctx, size_t slot, const eg_unit_record *u);
  void (*on_unit_stage)(void *ctx, size_t slot, const eg_unit_record *u, eg_stage stage);
  void (*on_unit_identity)(void *ctx, size_t slot, const eg_unit_record *u);
  void (*on_unit_progress)(void *ctx, size_t slot, const eg_unit_record *u, uint64_t done, uint64_t total);
  void (*on_unit_done)(void *ctx, size_t slot, const eg_unit_record *u, bool will_retry, bool recorded);
  /* After each unit's final result. */
  void (*on_counters)(void *ctx, const eg_station_counters *c);
  /* A station-wide notice (stopping, a watch that could not be set up). */
  void (*on_message)(void *ctx, const char *text);
  void (*on_log)(void *ctx, size_t slot, const char *line); /* device trace, optional */
  /* Once, before the loop runs: the handle for eg_station_stop. */
  void (*on_ready)(void *ctx, eg_station *st);
  /* Once, at the end: every unit and the session's end are recorded; close
   * what you opened on the loop (the dashboard) so that it can end. */
  void (*on_finished)(void *ctx);
} eg_station_events;

typedef struct eg_station_summary {
  eg_station_counters counters;
  eg_sched_summary sched;
  uint64_t probes;              /* probes run */
  uint64_t probe_bytes;         /* bytes they moved, both ways */
} eg_station_summary;

/* Run the station on `loop` until stopped. EG_OK when the session was
 * carried out (see the summary for db_error); EG_NOMEM / EG_INVAL with f. */
eg_err eg_station_run(uv_loop_t *loop, const eg_station_config *cfg, const eg_station_events *ev, void *ctx,
                      eg_station_summary *out, eg_fault *f);
/* Stop: abort the units in flight, close everything, end the session. */
void eg_station_stop(eg_station *st);
void eg_station_get_counters(const eg_station *st, eg_station_counters *out);
eg_station_state eg_station_slot_state(const eg_station *st, size_t slot);

#endif
