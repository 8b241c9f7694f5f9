/* gangrun.h - what `flash` and `station` share: from a manifest to a
 * recorded run ready for the scheduler.
 *
 * eg_gangrun_prepare: the manifest and its slots, the log (opened,
 * recovered), the stubs, the images prepared once, the device
 * configuration, the operations, and the rerun's choice (--retry-failed:
 * the run retried, its images compared). Everything that can refuse the
 * job does so here, before any board is touched. eg_gangrun_begin then
 * records the run and its images and makes the recorder and one job per
 * slot. eg_gangrun_free releases everything (safe on a partly prepared
 * struct) and writes the --timing-log.
 */
#ifndef EG_CLI_GANGRUN_H
#define EG_CLI_GANGRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cli.h"
#include "db.h"
#include "gate.h"
#include "jobs.h"
#include "manifest.h"
#include "recorder.h"
#include "scheduler.h"

typedef struct eg_gangrun {
  eg_manifest m;
  eg_slot *slots;
  size_t nslots;
  eg_db *db;
  eg_stub storage[EG_CLI_STUB_STORAGE];
  const eg_stub *stubs[EG_CHIP__COUNT];
  const eg_stub *stubs_old[EG_CHIP__COUNT]; /* older builds (P4 below v3.0) */
  eg_plans plans;             /* the images and operations, for every chip or per chip */
  const eg_image **recorded;  /* as prepared and recorded in run_images, by index */
  const char **recorded_chip; /* each one's chip (arg name), NULL: every chip */
  size_t nrecorded;
  eg_dev_config dcfg;
  struct eg_timing_log *timing; /* --timing-log */
  /* the rerun */
  int64_t parent_run_id;      /* 0: not a retry */
  bool by_mac;
  char *images_sig;           /* eg_images_signature of `recorded` */
  eg_gate gate;
  /* the run */
  int64_t run_id;
  eg_recorder *rec;
  eg_job *jobs;
} eg_gangrun;

/* station: the manifest's paths may be absent now. Returns EG_EXIT_OK, or
 * the exit code after printing why (one line). *nothing_to_do: a
 * --retry-failed found no slot to retry (exit 0, message printed). */
int eg_gangrun_prepare(eg_gangrun *g, eg_cli *c, bool station, bool *nothing_to_do);
/* Record the run (kind station or flash) and its images; make the recorder
 * and the jobs. EG_EXIT_OK or EG_EXIT_INTERNAL (printed). */
int eg_gangrun_begin(eg_gangrun *g, eg_cli *c, uv_loop_t *loop, bool station);
/* Release everything; returns rc, or EG_EXIT_USAGE when the --timing-log
 * file could not be written after a run that passed. */
int eg_gangrun_free(eg_gangrun *g, eg_cli *c, int rc);

/* Diagnostics of the manifest loader, as file:line:col: message. */
void eg_gangrun_diag(void *ctx, const char *file, int line, int col, const char *msg);

#endif
