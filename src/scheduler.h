/* scheduler.h - the scheduler: runs a list of jobs on one loop, every port at
 * once, each unit recorded when a recorder is given.
 *
 * A job is one port with the operations to run on the unit there, the device
 * configuration, and a retry policy. The esptool-style command line and the
 * manifest's gang run are two ways to build the list (jobs.h); both run here.
 *
 * Life of a unit: with a recorder, its row is inserted (in_progress) before
 * its port is opened, and a unit whose row the log refuses is not flashed;
 * identity and stage times are recorded as they are learned; the final row
 * is durable before on_unit_done reports the result. A failed unit is tried
 * again on the same port (a new attempt row) while the failure is one
 * another attempt may change (eg_err_retryable) and attempts remain; a port
 * that vanished is given time to come back first. One unit never waits for
 * another. eg_sched_stop() (SIGINT/SIGTERM with handle_signals) aborts the
 * units in flight; their rows say aborted.
 *
 * A gate (gate.h) decides, once a unit's chip, MAC and flash are known and
 * before anything is written, whether it is flashed; the log is consulted
 * on the recorder's work thread. A unit the gate turns away ends with
 * result skipped (its row says why).
 *
 * Station mode (config.station): a job is a slot that units pass through.
 * Nothing starts by itself: eg_sched_seat() starts a new unit on an idle
 * job (attempt 1, its own row), the unit runs its attempts, and the job
 * becomes idle again (on_job_idle, once the port is released) for the next
 * unit. A port that vanishes or cannot be opened ends the unit without
 * another attempt (in a station the board was pulled; the next one seated
 * there is a new unit). The run goes on until eg_sched_stop(), and its end
 * is recorded as finished.
 */
#ifndef EG_SCHEDULER_H
#define EG_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "device.h"
#include "gate.h"
#include "recorder.h"
#include "unit.h"

typedef struct eg_job {
  char label[64];               /* the slot's name, or the port's */
  char port[256];               /* what the port layer opens */
  char usb_location[64];        /* "" when unknown */
  const eg_dev_config *cfg;
  const eg_dev_op *ops;         /* may be shared by jobs */
  size_t nops;
  int max_attempts;             /* >= 1 */
  eg_usb_mode usb;              /* how the port reaches the chip, when known (a UART bridge: NONE) */
  void *user;                   /* the builder's pointer */
} eg_job;

typedef struct eg_sched eg_sched;

typedef struct eg_sched_events {
  void (*on_unit_start)(void *ctx, size_t job, const eg_unit_record *u);
  void (*on_unit_stage)(void *ctx, size_t job, const eg_unit_record *u, eg_stage stage);
  void (*on_unit_identity)(void *ctx, size_t job, const eg_unit_record *u);
  void (*on_unit_progress)(void *ctx, size_t job, const eg_unit_record *u, uint64_t done, uint64_t total);
  /* The attempt is over. recorded_ok: its row is durable (always true
   * without a recorder); false: the log refused it and the record went to
   * stderr as JSON. dev is the finished device (its read data may be taken
   * with eg_dev_take_read_data) or NULL when it never started. */
  void (*on_unit_done)(void *ctx, size_t job, const eg_unit_record *u, bool will_retry, bool recorded_ok,
                       eg_dev *dev);
  void (*on_log)(void *ctx, size_t job, const char *line); /* trace, optional */
  void (*on_stopping)(void *ctx, int signum);              /* a stop was requested */
  /* The scheduler is set up and the loop is about to run: the handle for
   * eg_sched_seat() / eg_sched_stop(), valid until eg_sched_run returns. */
  void (*on_ready)(void *ctx, eg_sched *s);
  /* Station mode: the job's unit is over and its port released; the job
   * takes the next eg_sched_seat(). */
  void (*on_job_idle)(void *ctx, size_t job);
  /* Once, at the end: every unit and the run's end are recorded and the
   * scheduler closes its handles. Close yours (a server, a watch) so the
   * loop can end. */
  void (*on_finished)(void *ctx);
} eg_sched_events;

typedef struct eg_sched_config {
  const eg_job *jobs;
  size_t njobs;
  eg_recorder *recorder;        /* NULL: nothing is recorded */
  uint32_t retry_delay_ms;      /* pause before a retry (0: 500 ms) */
  uint32_t port_wait_ms;        /* how long a vanished port may take to come back before a retry
                                 * (0: the job's timeouts.port_back, else 10 s) */
  bool handle_signals;          /* SIGINT/SIGTERM stop the run cleanly */
  const eg_gate *gate;          /* NULL: every unit is flashed (gate.h) */
  bool station;                 /* station mode (above) */
} eg_sched_config;

typedef struct eg_sched_summary {
  size_t units, passed, failed, aborted, skipped; /* station: units seated */
  size_t attempts;
  bool interrupted;
  bool db_error;                /* some record could not be stored */
  uint64_t elapsed_ms;
} eg_sched_summary;

/* Run every job on `loop` until each has finished (or been aborted); with a
 * recorder, the run's end is recorded too. Returns EG_OK when the run was
 * carried out (units may still have failed: see the summary). */
eg_err eg_sched_run(uv_loop_t *loop, const eg_sched_config *cfg, const eg_sched_events *ev, void *ctx,
                    eg_sched_summary *out, eg_fault *f);
/* Abort every unit in flight. Safe to call from a uv callback. */
void eg_sched_stop(eg_sched *s);
/* Station mode: a new unit is on job `job` (seated): start it. EG_INVAL
 * when not in station mode, stopping, or the job is busy (its unit is not
 * over, or its port not yet released: wait for on_job_idle). */
eg_err eg_sched_seat(eg_sched *s, size_t job);
/* Station mode: is the job idle (ready for eg_sched_seat)? */
bool eg_sched_job_idle(const eg_sched *s, size_t job);

#endif
