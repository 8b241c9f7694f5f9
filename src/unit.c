#include "unit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *eg_result_name(eg_result r) {
  switch (r) {
  case EG_RESULT_IN_PROGRESS: return "in_progress";
  case EG_RESULT_PASS: return "pass";
  case EG_RESULT_FAIL: return "fail";
  case EG_RESULT_ABORTED: return "aborted";
  case EG_RESULT_SKIPPED: return "skipped";
  }
  return "unknown";
}

void eg_unit_record_init(eg_unit_record *u) {
  memset(u, 0, sizeof *u);
  eg_fault_clear(&u->fault);
  u->result = EG_RESULT_IN_PROGRESS;
}

const char *eg_unit_mac_str(const eg_unit_record *u, char *buf, unsigned long len) {
  if (!u->has_mac) {
    if (len) buf[0] = '\0';
    return buf;
  }
  snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", u->mac[0], u->mac[1], u->mac[2], u->mac[3],
           u->mac[4], u->mac[5]);
  return buf;
}

const char *eg_transport_name(eg_transport t) {
  static const char *const names[] = {
#define EG_TRANSPORT_STR(name, str) str,
    EG_TRANSPORT_MAP(EG_TRANSPORT_STR)
#undef EG_TRANSPORT_STR
  };
  return (unsigned)t < EG_TRANSPORT__COUNT ? names[t] : NULL;
}

const char *eg_image_action_name(eg_image_action a) {
  static const char *const names[] = {
#define EG_IMAGE_ACTION_STR(name, str) str,
    EG_IMAGE_ACTION_MAP(EG_IMAGE_ACTION_STR)
#undef EG_IMAGE_ACTION_STR
  };
  return (unsigned)a < EG_IMAGE__COUNT ? names[a] : NULL;
}

void eg_unit_fallback(eg_unit_record *u, const char *fmt, ...) {
  u->fallbacks++;
  const size_t cap = sizeof u->fallback_log, used = strlen(u->fallback_log);
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  /* Keep the first lines whole: they say where the trouble began. */
  if (used + (used ? 1 : 0) + strlen(line) < cap)
    snprintf(u->fallback_log + used, cap - used, "%s%s", used ? "\n" : "", line);
  else if (used + 4 < cap && (used < 3 || strcmp(u->fallback_log + used - 3, "...") != 0))
    snprintf(u->fallback_log + used, cap - used, "\n...");
}

void eg_unit_image(eg_unit_record *u, unsigned idx, uint32_t offset, eg_image_action a, uint32_t duration_ms) {
  unsigned k = 0;
  while (k < u->nimages && u->images[k].idx != idx) k++;
  if (k == u->nimages) {
    if (k >= EG_UNIT_MAX_IMAGES) return;
    u->nimages++;
  }
  u->images[k].idx = (uint16_t)idx;
  u->images[k].offset = offset;
  u->images[k].action = a;
  u->images[k].duration_ms = duration_ms;
}
