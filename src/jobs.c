/* jobs.c - from settings to device configuration and operations (jobs.h). */
#include "jobs.h"

#include "port.h"
#include "scheduler.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool eg_stubs_any(const eg_stub *const stubs[EG_CHIP__COUNT]) {
  for (int k = 0; stubs && k < EG_CHIP__COUNT; k++)
    if (stubs[k]) return true;
  return false;
}

bool eg_settings_compress(const eg_settings *s, bool any_stub) {
  return s->compress == 1 || (s->compress == -1 && any_stub);
}

eg_err eg_dev_config_build(eg_dev_config *cfg, const eg_settings *s, const eg_stub *const stubs[EG_CHIP__COUNT],
                           eg_imageset *images, bool trace, char *why, size_t whylen) {
  const bool any_stub = eg_stubs_any(stubs);
  /* The ESP32-family stubs cannot start the application (esptool refuses
   * soft-reset with the stub on every chip but the ESP8266). */
  if (s->after == EG_AFTER_SOFT_RESET && any_stub && (!s->chip || s->chip->id != EG_CHIP_ESP8266)) {
    snprintf(why, whylen, "after: soft-reset needs the ROM loader (stub: none / --no-stub): the %s stub cannot start "
                          "the application", s->chip ? s->chip->name : "ESP32-family");
    return EG_USAGE;
  }
  *cfg = (eg_dev_config){
    .chip = s->chip,
    .before = s->before,
    .after = s->after,
    .baud = s->baud,
    /* esptool syncs at min(115200, baud): never faster than the transfer. */
    .connect_baud = s->connect_baud < s->baud ? s->connect_baud : s->baud,
    .stubs = stubs,
    .images = images,
    .flash_size = s->flash_size,
    .verify = s->verify,
    .skip_flashed = s->skip_flashed,
    .erase = s->erase,
    .timeouts = s->timeouts,
    .connect_attempts = s->connect_attempts,
    .trace = trace,
  };
  return EG_OK;
}

eg_err eg_jobs_check_port(const char *port, const eg_settings *s, char *why, size_t whylen) {
  eg_port_caps caps;
  const eg_err e = eg_port_check(port, &caps, why, whylen);
  if (e != EG_OK) return e;
  const bool before = s->before == EG_BEFORE_DEFAULT_RESET || s->before == EG_BEFORE_USB_RESET;
  const bool after = s->after == EG_AFTER_HARD_RESET;
  if (caps.can_reset || (!before && !after)) return EG_OK;
  char both[160] = "";
  if (before) snprintf(both, sizeof both, "before %s", eg_before_name(s->before));
  if (after)
    snprintf(both + strlen(both), sizeof both - strlen(both), "%safter %s", before ? " and " : "", eg_after_name(s->after));
  snprintf(why, whylen, "port %s is a %s without DTR/RTS lines: %s %s impossible there (use no-reset%s)", port,
           caps.kind, both, before && after ? "are" : "is", before && after ? " for both" : "");
  return EG_RESET_UNSUPPORTED;
}

size_t eg_ops_for_images(eg_dev_op *ops, const eg_settings *s, size_t nimages, bool verify_only) {
  size_t n = 0;
  if (!verify_only && s->erase == EG_ERASE_ALL) ops[n++] = (eg_dev_op){.kind = EG_OPK_ERASE_ALL};
  for (size_t i = 0; i < nimages; i++)
    ops[n++] = (eg_dev_op){.kind = verify_only ? EG_OPK_VERIFY : EG_OPK_WRITE, .index = i};
  return n;
}

/* One plan from the manifest images [first, first + n) for `chip` (NULL:
 * every chip; then the manifest's chip, or the ESP32's header tables when
 * nothing is patched). */
static eg_err plan_build(eg_plans *p, int slot, eg_dev_plan *plan, const eg_manifest *m, size_t first, size_t n,
                         const eg_chip *chip, const eg_stub *const stubs[EG_CHIP__COUNT], eg_fault *f) {
  const eg_image **imgs = calloc(n ? n : 1, sizeof *imgs);
  eg_dev_op *ops = calloc(n + 1, sizeof *ops);
  p->imgs[slot] = imgs;
  p->ops[slot] = ops;
  if (!imgs || !ops) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  for (size_t i = 0; i < n; i++) imgs[i] = &m->images[first + i].image;
  const eg_stub *stub = chip ? stubs[chip->id] : NULL;
  const bool any_stub = chip ? stub != NULL : eg_stubs_any(stubs);
  plan->images = eg_imageset_new(chip ? chip : eg_chip_get(EG_CHIP_ESP32), imgs, n, m->set.flash_mode,
                                 m->set.flash_freq, m->set.flash_size, eg_settings_compress(&m->set, any_stub));
  if (!plan->images) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  plan->ops = ops;
  plan->nops = eg_ops_for_images(ops, &m->set, n, false);
  plan->image_base = first;
  /* Compression (and the ROM's aligned copies) once, before any port. */
  return eg_imageset_warm(plan->images, !any_stub, f);
}

eg_err eg_plans_build(eg_plans *p, const eg_manifest *m, const eg_stub *const stubs[EG_CHIP__COUNT], eg_fault *f) {
  memset(p, 0, sizeof *p);
  p->per_chip = m->images_per_chip;
  if (!p->per_chip) return plan_build(p, EG_CHIP__COUNT, &p->any, m, 0, m->nimages, m->set.chip, stubs, f);
  for (size_t i = 0; i < m->nimages;) {
    const eg_chip *chip = m->images[i].chip;
    size_t j = i;
    while (j < m->nimages && m->images[j].chip == chip) j++;
    const eg_err e = plan_build(p, chip->id, &p->plan[chip->id], m, i, j - i, chip, stubs, f);
    if (e != EG_OK) return e;
    p->by_chip[chip->id] = &p->plan[chip->id];
    i = j;
  }
  return EG_OK;
}

void eg_plans_config(const eg_plans *p, eg_dev_config *cfg) {
  if (p->per_chip) {
    cfg->plans = p->by_chip;
    cfg->images = NULL;
  } else {
    cfg->plans = NULL;
    cfg->images = p->any.images;
  }
}

void eg_plans_free(eg_plans *p) {
  eg_imageset_free(p->any.images);
  for (int c = 0; c < EG_CHIP__COUNT; c++) eg_imageset_free(p->plan[c].images);
  for (int k = 0; k <= EG_CHIP__COUNT; k++) {
    free(p->imgs[k]);
    free(p->ops[k]);
  }
  memset(p, 0, sizeof *p);
}

void eg_jobs_identify_ports(eg_job *jobs, size_t n) {
  eg_port_info *list = NULL;
  size_t count = 0;
  if (eg_port_list(&list, &count) != EG_OK) return; /* nothing listed: nothing known */
  for (size_t k = 0; k < n; k++) {
    char real[PATH_MAX];
    if (strstr(jobs[k].port, "://") || !realpath(jobs[k].port, real)) continue;
    for (size_t i = 0; i < count; i++) {
      char pr[PATH_MAX];
      if (!realpath(list[i].name, pr) || strcmp(pr, real) != 0) continue;
      if (list[i].location[0]) snprintf(jobs[k].usb_location, sizeof jobs[k].usb_location, "%s", list[i].location);
      if (list[i].usb) jobs[k].usb = eg_chip_usb_mode(list[i].vid, list[i].pid, NULL);
    }
  }
  eg_port_list_free(list, count);
}
