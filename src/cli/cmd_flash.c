/* cmd_flash.c - `espgang flash MANIFEST`: the gang production run. The
 * manifest becomes a job list (one job per slot, the same operations on
 * each) that the scheduler runs with the log's recorder: every unit's row
 * exists before its port is touched. --retry-failed reruns the latest run
 * of this station and manifest: its failed slots, or (--by-mac) the units
 * whose MAC failed there, decided at each device's gate (gate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "display.h"
#include "gangrun.h"
#include "jsonw.h"
#include "table.h"

typedef struct flashctx {
  eg_display *disp;
  const eg_slot *slots;
  size_t nslots;
  eg_unit_record *final; /* latest record per slot */
  bool *recorded;
  bool json;
} flashctx;

static void ev_start(void *ctx, size_t slot, const eg_unit_record *u) {
  flashctx *fc = ctx;
  char text[64];
  snprintf(text, sizeof text, u->attempt > 1 ? "attempt %d" : "starting", u->attempt);
  eg_display_state(fc->disp, slot, text);
  if (fc->json) {
    char *s = eg_json_unit(u, "unit_start");
    eg_display_json(fc->disp, s);
    free(s);
  }
}

static void ev_stage(void *ctx, size_t slot, const eg_unit_record *u, eg_stage stage) {
  flashctx *fc = ctx;
  char text[64];
  if (u->attempt > 1)
    snprintf(text, sizeof text, "%s (try %d)", eg_stage_label(stage), u->attempt);
  else
    snprintf(text, sizeof text, "%s", eg_stage_label(stage));
  eg_display_state(fc->disp, slot, text);
}

static void ev_identity(void *ctx, size_t slot, const eg_unit_record *u) {
  flashctx *fc = ctx;
  if (fc->json) {
    char *s = eg_json_unit(u, "unit_identity");
    eg_display_json(fc->disp, s);
    free(s);
  }
  (void)slot;
}

static void ev_progress(void *ctx, size_t slot, const eg_unit_record *u, uint64_t done, uint64_t total) {
  flashctx *fc = ctx;
  (void)u;
  eg_display_progress(fc->disp, slot, done, total);
}

static void ev_done(void *ctx, size_t slot, const eg_unit_record *u, bool will_retry, bool recorded_ok, eg_dev *dev) {
  flashctx *fc = ctx;
  (void)dev;
  /* The summary keeps the unit's identity from any attempt: a retry that
   * failed before the MAC was read is still that unit. */
  const eg_unit_record prev = fc->final[slot];
  fc->final[slot] = *u;
  eg_unit_record *fin = &fc->final[slot];
  if (!fin->has_mac && prev.has_mac) memcpy(fin->mac, prev.mac, sizeof fin->mac), fin->has_mac = true;
  if (!fin->chip[0] && prev.chip[0]) memcpy(fin->chip, prev.chip, sizeof fin->chip);
  if (!fin->has_flash_id && prev.has_flash_id) fin->flash_id = prev.flash_id, fin->has_flash_id = true;
  fc->recorded[slot] = recorded_ok;
  const double secs = (double)(u->finished_ms - u->started_ms) / 1000.0;
  char mac[18], text[200];
  eg_unit_mac_str(fin, mac, sizeof mac);
  if (fc->json) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "unit_done");
    eg_jw_unit(&w, u);
    eg_jw_bool(&w, "will_retry", will_retry);
    eg_jw_bool(&w, "recorded", recorded_ok);
    char *s = eg_jw_close(&w);
    eg_display_json(fc->disp, s);
    free(s);
  }
  if (u->result == EG_RESULT_PASS) {
    snprintf(text, sizeof text, "PASS  %s  %.1f s", mac, secs);
    eg_display_result(fc->disp, slot, true, text);
    return;
  }
  if (u->result == EG_RESULT_SKIPPED) {
    snprintf(text, sizeof text, "SKIPPED  %s  %.150s", mac[0] ? mac : "-", u->fault.msg);
    eg_display_result(fc->disp, slot, true, text);
    return;
  }
  snprintf(text, sizeof text, "%s  %s %s: %s%s", u->result == EG_RESULT_ABORTED ? "ABORTED" : "FAIL", mac[0] ? mac : "-",
           eg_stage_name(u->fault.stage), eg_err_name(u->fault.code), will_retry ? "  (retrying)" : "");
  eg_display_result(fc->disp, slot, false, text);
  /* The reason: above the live rows on a terminal; otherwise one line on
   * stderr (stdout has the rows and the summary). */
  if (eg_display_mode_of(fc->disp) == EG_DISPLAY_TTY)
    eg_display_message(fc->disp, "%s: %s", fc->slots[slot].slot, u->fault.msg);
  else if (!fc->json)
    eg_cli_error("%s: %s", fc->slots[slot].slot, u->fault.msg);
}

static void ev_log(void *ctx, size_t slot, const char *line) {
  flashctx *fc = ctx;
  eg_display_message(fc->disp, "%s: %s", fc->slots[slot].slot, line);
}

static void ev_stopping(void *ctx, int signum) {
  flashctx *fc = ctx;
  eg_display_message(fc->disp, "signal %d: stopping; units in flight will be recorded as aborted", signum);
}

/* The summary table: slot, MAC, result, time, error. */
/* The result as the operator's summary shows it: what needs a look in capitals. */
static const char *result_shown(eg_result r) {
  return r == EG_RESULT_FAIL ? "FAIL" : r == EG_RESULT_ABORTED ? "ABORTED" : eg_result_name(r);
}

static void print_summary(const flashctx *fc, const eg_sched_summary *sum, int64_t run_id, const char *db_path) {
  static const eg_col cols[] = {{"SLOT"}, {"MAC"}, {"RESULT"}, {"TIME", EG_RIGHT}, {"ERROR"}};
  eg_table *t = eg_table_new(cols, sizeof cols / sizeof cols[0]);
  for (size_t i = 0; t && i < fc->nslots; i++) {
    const eg_unit_record *u = &fc->final[i];
    char mac[18], err[320] = "", secs[32];
    eg_unit_mac_str(u, mac, sizeof mac);
    if (u->result != EG_RESULT_PASS && u->fault.code != EG_OK)
      snprintf(err, sizeof err, "%s/%s: %s", eg_stage_name(u->fault.stage), eg_err_name(u->fault.code), u->fault.msg);
    if (!fc->recorded[i]) strncat(err, " [NOT RECORDED]", sizeof err - strlen(err) - 1);
    snprintf(secs, sizeof secs, "%.1fs", u->finished_ms ? (double)(u->finished_ms - u->started_ms) / 1000.0 : 0.0);
    eg_table_str(t, fc->slots[i].slot);
    eg_table_str(t, mac[0] ? mac : NULL);
    eg_table_str(t, result_shown(u->result));
    eg_table_str(t, secs);
    eg_table_str(t, err[0] ? err : "");
  }
  putchar('\n');
  if (!t || eg_table_text(t, stdout, 0, false) != EG_OK) printf("(the summary table needs more memory than there is)\n");
  eg_table_free(t);
  char skipped[32] = "";
  if (sum->skipped) snprintf(skipped, sizeof skipped, ", %zu skipped", sum->skipped);
  printf("\n%zu passed, %zu failed, %zu aborted%s of %zu units (%zu attempts) in %.1f s; run #%lld recorded in %s\n",
         sum->passed, sum->failed, sum->aborted, skipped, sum->units, sum->attempts, (double)sum->elapsed_ms / 1000.0,
         (long long)run_id, db_path);
}

int eg_cmd_flash(eg_cli *c) {
  if (c->nargs != 1) {
    eg_cli_error("usage: espgang flash MANIFEST.yaml [--operator NAME] [--retry-failed [--by-mac] "
                 "[--allow-changed-images]] [--json]");
    return EG_EXIT_USAGE;
  }
  if (c->nports) {
    eg_cli_error("flash takes its ports from the manifest; -p is not allowed");
    return EG_EXIT_USAGE;
  }
  eg_gangrun g;
  flashctx fc;
  memset(&fc, 0, sizeof fc);
  uv_loop_t loop;
  uv_loop_init(&loop);
  eg_fault f;
  eg_fault_clear(&f);
  bool nothing = false;
  int rc = eg_gangrun_prepare(&g, c, false, &nothing);
  if (rc != EG_EXIT_OK || nothing) goto out;
  const eg_manifest *m = &g.m;

  fc.slots = g.slots;
  fc.nslots = g.nslots;
  fc.json = c->json;
  fc.final = calloc(g.nslots ? g.nslots : 1, sizeof *fc.final);
  fc.recorded = calloc(g.nslots ? g.nslots : 1, sizeof *fc.recorded);
  const char **labels = calloc(g.nslots ? g.nslots : 1, sizeof *labels);
  if (!fc.final || !fc.recorded || !labels) {
    free(labels);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  for (size_t i = 0; i < g.nslots; i++) {
    labels[i] = g.slots[i].slot;
    fc.recorded[i] = true;
  }
  const eg_display_mode dm = c->json ? EG_DISPLAY_JSON : isatty(STDOUT_FILENO) ? EG_DISPLAY_TTY : EG_DISPLAY_PLAIN;
  fc.disp = eg_display_new(&loop, stdout, dm, g.nslots, labels);
  free(labels);
  if (!fc.disp) {
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  if (!c->json) {
    printf("espgang %s: station %s, %zu slot(s), %s, %zu image(s), %s at %u baud, log %s\n", EG_VERSION, m->station,
           g.nslots, m->set.chip ? m->set.chip->name : "any chip", m->nimages,
           eg_stubs_any(g.stubs) ? "stub" : "ROM only", m->set.baud, m->db_path);
    fflush(stdout);
  }
  if ((rc = eg_gangrun_begin(&g, c, &loop, false)) != EG_EXIT_OK) goto out;
  const eg_sched_config cfg = {
    .jobs = g.jobs, .njobs = g.nslots, .recorder = g.rec, .handle_signals = true, .gate = &g.gate};
  static const eg_sched_events events = {
    .on_unit_start = ev_start,
    .on_unit_stage = ev_stage,
    .on_unit_identity = ev_identity,
    .on_unit_progress = ev_progress,
    .on_unit_done = ev_done,
    .on_log = ev_log,
    .on_stopping = ev_stopping,
  };
  eg_sched_summary sum;
  memset(&sum, 0, sizeof sum);
  if (eg_sched_run(&loop, &cfg, &events, &fc, &sum, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  eg_display_finish(fc.disp);
  if (c->json) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "summary");
    eg_jw_int(&w, "run_id", g.run_id);
    if (g.parent_run_id) {
      eg_jw_int(&w, "parent_run_id", g.parent_run_id);
      eg_jw_str(&w, "retry_mode", g.by_mac ? "mac" : "slot");
    }
    eg_jw_uint(&w, "units", sum.units);
    eg_jw_uint(&w, "passed", sum.passed);
    eg_jw_uint(&w, "failed", sum.failed);
    eg_jw_uint(&w, "aborted", sum.aborted);
    eg_jw_uint(&w, "skipped", sum.skipped);
    eg_jw_uint(&w, "attempts", sum.attempts);
    eg_jw_bool(&w, "interrupted", sum.interrupted);
    eg_jw_bool(&w, "db_error", sum.db_error);
    eg_jw_uint(&w, "elapsed_ms", sum.elapsed_ms);
    eg_jw_str(&w, "database", m->db_path);
    char *s = eg_jw_close(&w);
    eg_display_json(fc.disp, s);
    free(s);
  } else {
    print_summary(&fc, &sum, g.run_id, m->db_path);
  }
  rc = sum.db_error ? EG_EXIT_INTERNAL
       : sum.interrupted ? EG_EXIT_ABORTED
       : (sum.failed || sum.aborted) ? EG_EXIT_FAILED
                                     : EG_EXIT_OK;
out:
  if (fc.disp) eg_display_free(fc.disp);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(fc.final);
  free(fc.recorded);
  return eg_gangrun_free(&g, c, rc);
}
