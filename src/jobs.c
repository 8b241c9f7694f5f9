/* jobs.c - from settings to device configuration and operations (jobs.h). */
#include "jobs.h"

#include <stdio.h>

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

size_t eg_ops_for_images(eg_dev_op *ops, const eg_settings *s, size_t nimages, bool verify_only) {
  size_t n = 0;
  if (!verify_only && s->erase == EG_ERASE_ALL) ops[n++] = (eg_dev_op){.kind = EG_OPK_ERASE_ALL};
  for (size_t i = 0; i < nimages; i++)
    ops[n++] = (eg_dev_op){.kind = verify_only ? EG_OPK_VERIFY : EG_OPK_WRITE, .index = i};
  return n;
}
