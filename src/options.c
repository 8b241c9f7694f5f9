#include "options.h"

#include <stdio.h>
#include <string.h>

/* Compare treating '-' and '_' as the same character. */
static bool same_name(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    const char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
    if (x != y) return false;
  }
  return *a == *b;
}

static const char *const before_names[] = {"default-reset", "usb-reset", "no-reset", "no-reset-no-sync"};
static const char *const after_names[] = {"hard-reset", "soft-reset", "no-reset", "no-reset-stub"};
static const char *const erase_names[] = {"written", "all"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

bool eg_before_parse(const char *s, eg_before *out) {
  for (unsigned i = 0; s && i < N(before_names); i++)
    if (same_name(s, before_names[i])) return *out = (eg_before)i, true;
  return false;
}

bool eg_after_parse(const char *s, eg_after *out) {
  for (unsigned i = 0; s && i < N(after_names); i++)
    if (same_name(s, after_names[i])) return *out = (eg_after)i, true;
  return false;
}

bool eg_erase_parse(const char *s, eg_erase_policy *out) {
  for (unsigned i = 0; s && i < N(erase_names); i++)
    if (same_name(s, erase_names[i])) return *out = (eg_erase_policy)i, true;
  return false;
}

const char *eg_before_name(eg_before b) { return (unsigned)b < N(before_names) ? before_names[b] : "?"; }
const char *eg_after_name(eg_after a) { return (unsigned)a < N(after_names) ? after_names[a] : "?"; }
const char *eg_erase_name(eg_erase_policy e) { return (unsigned)e < N(erase_names) ? erase_names[e] : "?"; }

void eg_timeouts_default(eg_timeouts *t) {
  t->command_ms = 3000;
  t->sync_ms = 100;
  t->mem_end_ms = 200;
  t->chip_erase_ms = 120000;
  t->max_ms = 240000;
  t->erase_per_mb_ms = 30000;
  t->write_per_mb_ms = 40000;
  t->md5_per_mb_ms = 8000;
  t->read_packet_ms = 3000;
  t->port_back_ms = 10000;
}

uint32_t eg_timeout_per_mb(const eg_timeouts *t, uint32_t per_mb_ms, uint64_t bytes, uint32_t floor_ms) {
  /* Saturate rather than wrap: an absurd size must give a long timeout, not
   * a short one. */
  uint64_t ms = per_mb_ms && bytes > UINT64_MAX / per_mb_ms ? UINT64_MAX : (uint64_t)per_mb_ms * bytes / 1000000u;
  if (ms < floor_ms) ms = floor_ms;
  if (t && t->max_ms && ms > t->max_ms) ms = t->max_ms;
  return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

void eg_settings_default(eg_settings *s) {
  memset(s, 0, sizeof *s);
  s->chip = NULL;
  s->before = EG_BEFORE_DEFAULT_RESET;
  s->after = EG_AFTER_HARD_RESET;
  s->baud = 460800;
  s->connect_baud = 115200;
  s->stub_mode = EG_STUB_AUTO;
  snprintf(s->flash_mode, sizeof s->flash_mode, "keep");
  snprintf(s->flash_freq, sizeof s->flash_freq, "keep");
  snprintf(s->flash_size, sizeof s->flash_size, "keep");
  s->erase = EG_ERASE_WRITTEN;
  s->verify = true;
  s->compress = -1;
  s->retries = 1;
  s->connect_attempts = EG_CONNECT_ATTEMPTS;
  eg_timeouts_default(&s->timeouts);
}

bool eg_baud_in_range(uint32_t baud) { return baud >= EG_BAUD_MIN && baud <= EG_BAUD_MAX; }
