#include "unit.h"

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
