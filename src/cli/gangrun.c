/* gangrun.c - from a manifest to a recorded run (gangrun.h). */
#include "gangrun.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_rerun.h"

void eg_gangrun_diag(void *ctx, const char *file, int line, int col, const char *msg) {
  (void)ctx;
  if (line > 0)
    fprintf(stderr, "%s:%d:%d: %s\n", file, line, col, msg);
  else
    fprintf(stderr, "%s: %s\n", file, msg);
}

/* A rerun takes the images of the run it retries: the same files, or the
 * operator says otherwise. */
static int check_images(eg_gangrun *g, eg_cli *c) {
  eg_db_image_ref *refs = NULL;
  size_t n = 0;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_db_run_images(g->db, g->parent_run_id, &refs, &n, &f) != EG_OK) {
    eg_cli_error("--retry-failed: %s", f.msg);
    return EG_EXIT_INTERNAL;
  }
  char why[512] = "";
  for (size_t i = 0; i < g->m.nimages && !why[0]; i++) {
    const eg_mimage *mi = &g->m.images[i];
    char sha[65];
    eg_hex(sha, mi->image.file_sha256, 32);
    const char *chip = mi->chip ? mi->chip->arg_name : "";
    const eg_db_image_ref *r = NULL;
    for (size_t k = 0; k < n && !r; k++)
      if (refs[k].offset == mi->offset && strcmp(refs[k].chip, chip) == 0) r = &refs[k];
    if (!r)
      snprintf(why, sizeof why, "image %s at 0x%x was not in run #%lld", mi->file, (unsigned)mi->offset,
               (long long)g->parent_run_id);
    else if (strcmp(r->sha256, sha) != 0)
      snprintf(why, sizeof why, "image %s at 0x%x changed since run #%lld (sha256 %.12s... then, %.12s... now)", mi->file,
               (unsigned)mi->offset, (long long)g->parent_run_id, r->sha256, sha);
  }
  if (!why[0] && n != g->m.nimages)
    snprintf(why, sizeof why, "run #%lld had %zu image(s), the manifest has %zu", (long long)g->parent_run_id, n,
             g->m.nimages);
  free(refs);
  if (why[0] && !c->allow_changed_images) {
    eg_cli_error("--retry-failed: %s; pass --allow-changed-images to flash the new images", why);
    return EG_EXIT_USAGE;
  }
  if (why[0]) fprintf(stderr, "espgang: --allow-changed-images: %s\n", why);
  return EG_EXIT_OK;
}

/* --retry-failed: the run retried is the latest of this station with this
 * manifest; by slot, only its failed slots run; by MAC, every slot runs and
 * the gate decides per unit. */
static int choose_retry(eg_gangrun *g, eg_cli *c, bool station, bool *nothing_to_do) {
  eg_fault f;
  eg_fault_clear(&f);
  if (station && !c->by_mac) {
    eg_cli_error("station --retry-failed needs --by-mac: a slot sees a new board with every unit, so only the MAC can "
                 "say which failed");
    return EG_EXIT_USAGE;
  }
  eg_err e = eg_db_latest_run(g->db, g->m.station, g->m.sha256, &g->parent_run_id, &f);
  if (e != EG_OK) {
    eg_cli_error("--retry-failed: %s", f.msg);
    return e == EG_INVAL ? EG_EXIT_USAGE : EG_EXIT_INTERNAL;
  }
  const int rc = check_images(g, c);
  if (rc != EG_EXIT_OK) return rc;
  g->by_mac = c->by_mac;
  if (c->by_mac) {
    g->gate = (eg_gate){.mode = EG_GATE_FAILED_MAC, .station = g->m.station, .manifest_sha256 = g->m.sha256};
    fprintf(stderr, "espgang: retrying run #%lld by MAC: a unit is flashed only if its MAC failed there (or later) "
                    "without a pass since\n", (long long)g->parent_run_id);
    return EG_EXIT_OK;
  }
  char **failed = NULL;
  size_t nfailed = 0;
  if ((e = eg_db_failed_slots(g->db, g->parent_run_id, &failed, &nfailed, &f)) != EG_OK) {
    eg_cli_error("--retry-failed: %s", f.msg);
    return e == EG_INVAL ? EG_EXIT_USAGE : EG_EXIT_INTERNAL;
  }
  size_t k = 0;
  for (size_t i = 0; i < g->nslots; i++) {
    bool keep = false;
    for (size_t j = 0; j < nfailed; j++) keep = keep || strcmp(failed[j], g->slots[i].slot) == 0;
    if (keep) g->slots[k++] = g->slots[i];
  }
  for (size_t j = 0; j < nfailed; j++) free(failed[j]);
  free(failed);
  g->nslots = k;
  if (k == 0) {
    printf("nothing to re-flash: every slot of run #%lld (station %s) passed\n", (long long)g->parent_run_id,
           g->m.station);
    *nothing_to_do = true;
    return EG_EXIT_OK;
  }
  fprintf(stderr, "espgang: re-flashing %zu slot(s) whose latest attempt in run #%lld failed\n", k,
          (long long)g->parent_run_id);
  return EG_EXIT_OK;
}

int eg_gangrun_prepare(eg_gangrun *g, eg_cli *c, bool station, bool *nothing_to_do) {
  memset(g, 0, sizeof *g);
  *nothing_to_do = false;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_manifest_load(&g->m, c->args[0], eg_gangrun_diag, NULL) != EG_OK) return EG_EXIT_USAGE;
  const eg_err se = station ? eg_manifest_station_slots(&g->m, &g->slots, &g->nslots, eg_gangrun_diag, NULL)
                            : eg_manifest_slots(&g->m, &g->slots, &g->nslots, eg_gangrun_diag, NULL);
  if (se != EG_OK) return EG_EXIT_USAGE;
  /* What each port can do, before any of them is touched: a rack on ptys
   * asking for resets is refused once, not unit by unit. A station's port
   * that is not there yet is checked by its first unit. */
  for (size_t i = 0; i < g->nslots; i++) {
    char why[512];
    struct stat st;
    if (station && !strstr(g->slots[i].port, "://") && stat(g->slots[i].port, &st) != 0 && errno == ENOENT) continue;
    if (eg_jobs_check_port(g->slots[i].port, &g->m.set, why, sizeof why) != EG_OK) {
      fprintf(stderr, "%s: slot %s: %s\n", g->m.path, g->slots[i].slot, why);
      return EG_EXIT_USAGE;
    }
  }
  if (eg_db_open(&g->db, g->m.db_path, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    return EG_EXIT_INTERNAL;
  }
  int recovered = 0;
  if (eg_db_recover(g->db, &recovered, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    return EG_EXIT_INTERNAL;
  }
  if (recovered)
    fprintf(stderr, "espgang: %d unit(s) left in progress by an earlier espgang were marked aborted in %s\n", recovered,
            g->m.db_path);
  if (c->retry_failed) {
    const int rc = choose_retry(g, c, station, nothing_to_do);
    if (rc != EG_EXIT_OK || *nothing_to_do) return rc;
  } else if (c->by_mac || c->allow_changed_images) {
    eg_cli_error("--by-mac and --allow-changed-images go with --retry-failed");
    return EG_EXIT_USAGE;
  } else if (station) {
    /* A station flashes a board once: one that passed with these images is
     * recorded as skipped, unless --reflash. */
    g->gate = (eg_gate){.mode = EG_GATE_NOT_PASSED, .reflash = c->reflash};
  }

  char note[512] = "";
  if (!eg_cli_load_stubs(g->m.set.stub_mode, g->m.set.stub_path, g->m.set.chip, g->storage, g->stubs, g->stubs_old, false, note,
                         sizeof note))
    return EG_EXIT_USAGE;
  if (note[0]) fprintf(stderr, "espgang: %s\n", note);
  /* Every image is patched (for its chip) and compressed once, before any
   * port starts. */
  if (eg_plans_build(&g->plans, &g->m, g->stubs, &f) != EG_OK) {
    fprintf(stderr, "%s: %s\n", g->m.path, f.msg);
    return EG_EXIT_USAGE;
  }
  char why[256];
  if (eg_dev_config_build(&g->dcfg, &g->m.set, g->stubs, NULL, c->trace, why, sizeof why) != EG_OK) {
    fprintf(stderr, "%s: %s\n", g->m.path, why);
    return EG_EXIT_USAGE;
  }
  g->dcfg.stubs_old = g->stubs_old;
  eg_plans_config(&g->plans, &g->dcfg);
  g->dcfg.allow_plaintext_on_encrypted = g->m.allow_plaintext_on_encrypted;
  /* The images as each plan prepared them, at the run's image index (what
   * each unit's image rows and the gate's "same images" refer to). */
  g->recorded = calloc(g->m.nimages, sizeof *g->recorded);
  g->recorded_chip = calloc(g->m.nimages, sizeof *g->recorded_chip);
  if (!g->recorded || !g->recorded_chip) return EG_EXIT_INTERNAL;
  for (int k = 0; k <= EG_CHIP__COUNT; k++) {
    const eg_dev_plan *pl = k < EG_CHIP__COUNT ? g->plans.by_chip[k] : g->plans.per_chip ? NULL : &g->plans.any;
    if (!pl) continue;
    const eg_chip *chip = k < EG_CHIP__COUNT ? eg_chip_get((eg_chip_id)k) : NULL;
    const bool rom = chip ? !g->stubs[k] : !eg_stubs_any(g->stubs);
    for (size_t i = 0; i < eg_imageset_count(pl->images) && pl->image_base + i < g->m.nimages; i++) {
      eg_fault pf;
      eg_fault_clear(&pf);
      const eg_wimage *w = eg_imageset_get(pl->images, i, 0, rom, &pf);
      const size_t at = pl->image_base + i;
      g->recorded[at] = w ? &w->img : eg_imageset_source(pl->images, i);
      g->recorded_chip[at] = chip ? chip->arg_name : NULL;
      if (at + 1 > g->nrecorded) g->nrecorded = at + 1;
    }
  }
  if (!(g->images_sig = eg_images_signature(g->recorded, g->nrecorded))) return EG_EXIT_INTERNAL;
  g->gate.images = g->images_sig;
  g->dcfg.timing = g->timing = eg_cli_timing_begin(c);
  return EG_EXIT_OK;
}

int eg_gangrun_begin(eg_gangrun *g, eg_cli *c, uv_loop_t *loop, bool station) {
  eg_fault f;
  eg_fault_clear(&f);
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const eg_run_info info = {
    .station = g->m.station,
    .operator_name = c->operator_name,
    .host = host,
    .tool_version = EG_VERSION,
    .command_line = c->command_line,
    .manifest_path = g->m.path,
    .manifest_text = g->m.text,
    .manifest_len = g->m.text_len,
    .manifest_sha256 = g->m.sha256,
    .kind = station ? EG_RUN_STATION : EG_RUN_FLASH,
    .parent_run_id = g->parent_run_id,
    .retry_mode = !g->parent_run_id ? EG_RETRY_NONE : g->by_mac ? EG_RETRY_MAC : EG_RETRY_SLOT,
  };
  /* The run and its images are recorded before any port starts. */
  if (eg_db_run_begin(g->db, &info, &g->run_id, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    return EG_EXIT_INTERNAL;
  }
  /* One row per image, with its chip when images are per chip. */
  for (size_t i = 0; i < g->nrecorded; i++)
    if (g->recorded[i] && eg_db_run_image(g->db, g->run_id, (int)i, g->recorded[i], g->recorded_chip[i], &f) != EG_OK) {
      eg_cli_error("%s", f.msg);
      return EG_EXIT_INTERNAL;
    }
  g->rec = eg_recorder_new(loop, g->db, g->run_id);
  g->jobs = calloc(g->nslots ? g->nslots : 1, sizeof *g->jobs);
  if (!g->rec || !g->jobs) return EG_EXIT_INTERNAL;
  for (size_t i = 0; i < g->nslots; i++) {
    eg_job *j = &g->jobs[i];
    snprintf(j->label, sizeof j->label, "%s", g->slots[i].slot);
    snprintf(j->port, sizeof j->port, "%s", g->slots[i].port);
    snprintf(j->usb_location, sizeof j->usb_location, "%s", g->slots[i].usb_location);
    j->cfg = &g->dcfg;
    j->ops = g->plans.per_chip ? NULL : g->plans.any.ops; /* per chip: the detected chip's plan */
    j->nops = g->plans.per_chip ? 0 : g->plans.any.nops;
    j->usb = g->slots[i].usb;
    j->max_attempts = 1 + g->m.set.retries;
  }
  return EG_EXIT_OK;
}

int eg_gangrun_free(eg_gangrun *g, eg_cli *c, int rc) {
  free(g->jobs);
  eg_recorder_free(g->rec);
  free(g->images_sig);
  eg_plans_free(&g->plans);
  free(g->recorded);
  free(g->recorded_chip);
  if (!eg_cli_timing_end(c, g->timing) && rc == EG_EXIT_OK) rc = EG_EXIT_USAGE;
  eg_cli_free_stubs(g->storage);
  if (g->db) eg_db_close(g->db);
  free(g->slots);
  eg_manifest_free(&g->m);
  return rc;
}
