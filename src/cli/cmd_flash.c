/* cmd_flash.c - `espgang flash MANIFEST`: the gang production run. The
 * manifest becomes a job list (one job per slot, the same operations on
 * each) that the scheduler runs with the log's recorder: every unit's row
 * exists before its port is touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "db.h"
#include "display.h"
#include "jobs.h"
#include "jsonw.h"
#include "manifest.h"
#include "prep.h"
#include "recorder.h"
#include "scheduler.h"

typedef struct flashctx {
  eg_display *disp;
  const eg_slot *slots;
  size_t nslots;
  eg_unit_record *final; /* latest record per slot */
  bool *recorded;
  bool json;
} flashctx;

static void diag(void *ctx, const char *file, int line, int col, const char *msg) {
  (void)ctx;
  if (line > 0)
    fprintf(stderr, "%s:%d:%d: %s\n", file, line, col, msg);
  else
    fprintf(stderr, "%s: %s\n", file, msg);
}

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
static void print_summary(const flashctx *fc, const eg_sched_summary *sum, int64_t run_id, const char *db_path) {
  size_t w = 4;
  for (size_t i = 0; i < fc->nslots; i++)
    if (strlen(fc->slots[i].slot) > w) w = strlen(fc->slots[i].slot);
  printf("\n%-*s  %-17s  %-7s  %7s  %s\n", (int)w, "SLOT", "MAC", "RESULT", "TIME", "ERROR");
  for (size_t i = 0; i < fc->nslots; i++) {
    const eg_unit_record *u = &fc->final[i];
    char mac[18], err[320] = "";
    eg_unit_mac_str(u, mac, sizeof mac);
    if (u->result != EG_RESULT_PASS && u->fault.code != EG_OK)
      snprintf(err, sizeof err, "%s/%s: %s", eg_stage_name(u->fault.stage), eg_err_name(u->fault.code), u->fault.msg);
    if (!fc->recorded[i]) strncat(err, " [NOT RECORDED]", sizeof err - strlen(err) - 1);
    const double secs = u->finished_ms ? (double)(u->finished_ms - u->started_ms) / 1000.0 : 0.0;
    printf("%-*s  %-17s  %-7s  %6.1fs  %s\n", (int)w, fc->slots[i].slot, mac[0] ? mac : "-",
           u->result == EG_RESULT_PASS ? "pass" : u->result == EG_RESULT_FAIL ? "FAIL" : u->result == EG_RESULT_ABORTED ? "ABORTED" : u->result == EG_RESULT_SKIPPED ? "skipped" : "?",
           secs, err);
  }
  printf("\n%zu passed, %zu failed, %zu aborted of %zu units (%zu attempts) in %.1f s; run #%lld recorded in %s\n", sum->passed,
         sum->failed, sum->aborted, sum->units, sum->attempts, (double)sum->elapsed_ms / 1000.0, (long long)run_id, db_path);
}

int eg_cmd_flash(eg_cli *c) {
  if (c->nargs != 1) {
    eg_cli_error("usage: espgang flash MANIFEST.yaml [--operator NAME] [--retry-failed] [--json]");
    return EG_EXIT_USAGE;
  }
  if (c->nports) {
    eg_cli_error("flash takes its ports from the manifest; -p is not allowed");
    return EG_EXIT_USAGE;
  }
  int rc = EG_EXIT_USAGE;
  eg_manifest m;
  memset(&m, 0, sizeof m);
  eg_slot *slots = NULL;
  size_t nslots = 0;
  eg_db *db = NULL;
  eg_stub storage[EG_CHIP__COUNT];
  const eg_stub *stubs[EG_CHIP__COUNT];
  memset(storage, 0, sizeof storage);
  eg_plans plans;
  memset(&plans, 0, sizeof plans);
  eg_dev_config dcfg;
  eg_job *jobs = NULL;
  eg_recorder *rec = NULL;
  struct eg_timing_log *timing = NULL;
  flashctx fc;
  memset(&fc, 0, sizeof fc);
  uv_loop_t loop;
  uv_loop_init(&loop);
  eg_fault f;
  eg_fault_clear(&f);

  if (eg_manifest_load(&m, c->args[0], diag, NULL) != EG_OK) goto out;
  if (eg_manifest_slots(&m, &slots, &nslots, diag, NULL) != EG_OK) goto out;
  /* What each port can do, before any of them is touched: a rack on ptys
   * asking for resets is refused once, not unit by unit. */
  for (size_t i = 0; i < nslots; i++) {
    char why[512];
    if (eg_jobs_check_port(slots[i].port, &m.set, why, sizeof why) != EG_OK) {
      fprintf(stderr, "%s: slot %s: %s\n", m.path, slots[i].slot, why);
      goto out;
    }
  }

  if (eg_db_open(&db, m.db_path, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  int recovered = 0;
  if (eg_db_recover(db, &recovered, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  if (recovered)
    fprintf(stderr, "espgang: %d unit(s) left in progress by an earlier espgang were marked aborted in %s\n", recovered, m.db_path);

  if (c->retry_failed) {
    char **failed = NULL;
    size_t nfailed = 0;
    const eg_err fe = eg_db_failed_slots(db, 0, &failed, &nfailed, &f);
    if (fe != EG_OK) {
      eg_cli_error("--retry-failed: %s", f.msg);
      rc = fe == EG_INVAL ? EG_EXIT_USAGE : EG_EXIT_INTERNAL; /* EG_INVAL: no run to retry yet */
      goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < nslots; i++) {
      bool keep = false;
      for (size_t j = 0; j < nfailed; j++) keep = keep || strcmp(failed[j], slots[i].slot) == 0;
      if (keep) slots[k++] = slots[i];
    }
    for (size_t j = 0; j < nfailed; j++) free(failed[j]);
    free(failed);
    nslots = k;
    if (nslots == 0) {
      printf("nothing to re-flash: every slot of the latest run passed\n");
      rc = EG_EXIT_OK;
      goto out;
    }
    fprintf(stderr, "espgang: re-flashing %zu slot(s) that did not pass in the latest run\n", nslots);
  }

  char note[512] = "";
  if (!eg_cli_load_stubs(m.set.stub_mode, m.set.stub_path, m.set.chip, storage, stubs, false, note, sizeof note)) goto out;
  if (note[0]) fprintf(stderr, "espgang: %s\n", note);
  /* Every image is patched (for its chip) and compressed once, before any
   * port starts. */
  if (eg_plans_build(&plans, &m, stubs, &f) != EG_OK) {
    fprintf(stderr, "%s: %s\n", m.path, f.msg);
    goto out;
  }
  char why[256];
  if (eg_dev_config_build(&dcfg, &m.set, stubs, NULL, c->trace, why, sizeof why) != EG_OK) {
    fprintf(stderr, "%s: %s\n", m.path, why);
    goto out;
  }
  eg_plans_config(&plans, &dcfg);
  dcfg.allow_plaintext_on_encrypted = m.allow_plaintext_on_encrypted;
  dcfg.timing = timing = eg_cli_timing_begin(c);

  fc.slots = slots;
  fc.nslots = nslots;
  fc.json = c->json;
  fc.final = calloc(nslots ? nslots : 1, sizeof *fc.final);
  fc.recorded = calloc(nslots ? nslots : 1, sizeof *fc.recorded);
  jobs = calloc(nslots ? nslots : 1, sizeof *jobs);
  const char **labels = calloc(nslots ? nslots : 1, sizeof *labels);
  if (!fc.final || !fc.recorded || !jobs || !labels) {
    free(labels);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  for (size_t i = 0; i < nslots; i++) {
    labels[i] = slots[i].slot;
    fc.recorded[i] = true;
  }
  const eg_display_mode dm = c->json ? EG_DISPLAY_JSON : isatty(STDOUT_FILENO) ? EG_DISPLAY_TTY : EG_DISPLAY_PLAIN;
  fc.disp = eg_display_new(&loop, stdout, dm, nslots, labels);
  free(labels);
  if (!fc.disp) {
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  if (!c->json) {
    printf("espgang %s: station %s, %zu slot(s), %s, %zu image(s), %s at %u baud, log %s\n", EG_VERSION, m.station, nslots,
           m.set.chip ? m.set.chip->name : "any chip", m.nimages, eg_stubs_any(stubs) ? "stub" : "ROM only", m.set.baud,
           m.db_path);
    fflush(stdout);
  }

  /* The run and its images are recorded before any port starts. */
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const eg_run_info info = {
    .station = m.station,
    .operator_name = c->operator_name,
    .host = host,
    .tool_version = EG_VERSION,
    .command_line = c->command_line,
    .manifest_path = m.path,
    .manifest_text = m.text,
    .manifest_len = m.text_len,
    .manifest_sha256 = m.sha256,
  };
  int64_t run_id = 0;
  if (eg_db_run_begin(db, &info, &run_id, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  /* One row per image of the run, with its chip when images are per chip
   * (its index is what each unit's image rows refer to). */
  for (int k = 0; k <= EG_CHIP__COUNT; k++) {
    const eg_dev_plan *pl = k < EG_CHIP__COUNT ? plans.by_chip[k] : plans.per_chip ? NULL : &plans.any;
    if (!pl) continue;
    const eg_chip *chip = k < EG_CHIP__COUNT ? eg_chip_get((eg_chip_id)k) : NULL;
    const bool rom = chip ? !stubs[k] : !eg_stubs_any(stubs);
    for (size_t i = 0; i < eg_imageset_count(pl->images); i++) {
      eg_fault pf;
      eg_fault_clear(&pf);
      const eg_wimage *w = eg_imageset_get(pl->images, i, 0, rom, &pf);
      const eg_image *img = w ? &w->img : eg_imageset_source(pl->images, i);
      if (eg_db_run_image(db, run_id, (int)(pl->image_base + i), img, chip ? chip->arg_name : NULL, &f) != EG_OK) {
        eg_cli_error("%s", f.msg);
        rc = EG_EXIT_INTERNAL;
        goto out;
      }
    }
  }
  if (!(rec = eg_recorder_new(&loop, db, run_id))) {
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  for (size_t i = 0; i < nslots; i++) {
    eg_job *j = &jobs[i];
    snprintf(j->label, sizeof j->label, "%s", slots[i].slot);
    snprintf(j->port, sizeof j->port, "%s", slots[i].port);
    snprintf(j->usb_location, sizeof j->usb_location, "%s", slots[i].usb_location);
    j->cfg = &dcfg;
    j->ops = plans.per_chip ? NULL : plans.any.ops; /* per chip: the detected chip's plan */
    j->nops = plans.per_chip ? 0 : plans.any.nops;
    j->usb = slots[i].usb;
    j->max_attempts = 1 + m.set.retries;
  }
  const eg_sched_config cfg = {.jobs = jobs, .njobs = nslots, .recorder = rec, .handle_signals = true};
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
    eg_jw_int(&w, "run_id", run_id);
    eg_jw_uint(&w, "units", sum.units);
    eg_jw_uint(&w, "passed", sum.passed);
    eg_jw_uint(&w, "failed", sum.failed);
    eg_jw_uint(&w, "aborted", sum.aborted);
    eg_jw_uint(&w, "attempts", sum.attempts);
    eg_jw_bool(&w, "interrupted", sum.interrupted);
    eg_jw_bool(&w, "db_error", sum.db_error);
    eg_jw_uint(&w, "elapsed_ms", sum.elapsed_ms);
    eg_jw_str(&w, "database", m.db_path);
    char *s = eg_jw_close(&w);
    eg_display_json(fc.disp, s);
    free(s);
  } else {
    print_summary(&fc, &sum, run_id, m.db_path);
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
  free(jobs);
  eg_plans_free(&plans);
  eg_recorder_free(rec);
  if (!eg_cli_timing_end(c, timing) && rc == EG_EXIT_OK) rc = EG_EXIT_USAGE;

  eg_cli_free_stubs(storage);
  if (db) eg_db_close(db);
  free(slots);
  eg_manifest_free(&m);
  return rc;
}
