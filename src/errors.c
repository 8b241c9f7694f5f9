#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[] = {
#define EG_ERR_NAME(name, cls, msg) #name,
  EG_ERR_MAP(EG_ERR_NAME)
#undef EG_ERR_NAME
};

static const char *const err_msgs[] = {
#define EG_ERR_MSG(name, cls, msg) msg,
  EG_ERR_MAP(EG_ERR_MSG)
#undef EG_ERR_MSG
};

static const eg_err_class err_classes[] = {
#define EG_ERR_CLASS(name, cls, msg) EG_CLASS_##cls,
  EG_ERR_MAP(EG_ERR_CLASS)
#undef EG_ERR_CLASS
};

static const char *const stage_names[] = {
#define EG_STAGE_STR(name, str, label) str,
  EG_STAGE_MAP(EG_STAGE_STR)
#undef EG_STAGE_STR
};

static const char *const stage_labels[] = {
#define EG_STAGE_LABEL(name, str, label) label,
  EG_STAGE_MAP(EG_STAGE_LABEL)
#undef EG_STAGE_LABEL
};

const char *eg_err_name(eg_err e) {
  return (unsigned)e < EG_ERR__COUNT ? err_names[e] : "UNKNOWN";
}

const char *eg_strerror(eg_err e) {
  return (unsigned)e < EG_ERR__COUNT ? err_msgs[e] : "unknown error";
}

eg_err_class eg_err_class_of(eg_err e) {
  return (unsigned)e < EG_ERR__COUNT ? err_classes[e] : EG_CLASS_INTERNAL;
}

bool eg_err_retryable(eg_err e) { return eg_err_class_of(e) == EG_CLASS_UNIT; }

const char *eg_stage_name(eg_stage s) {
  return (unsigned)s < EG_STAGE__COUNT ? stage_names[s] : "unknown";
}

const char *eg_stage_label(eg_stage s) {
  return (unsigned)s < EG_STAGE__COUNT ? stage_labels[s] : "?";
}

void eg_fault_clear(eg_fault *f) {
  memset(f, 0, sizeof *f);
  f->opcode = -1;
}

eg_err eg_fault_set(eg_fault *f, eg_err code, eg_stage stage, int opcode, const char *fmt, ...) {
  if (!f) return code;
  f->code = code;
  f->stage = stage;
  f->opcode = opcode;
  f->nstatus = 0;
  memset(f->status, 0, sizeof f->status);
  f->msg[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    /* One line: a message is printed and stored as a single line. Trailing
     * line breaks (strerror-style text, a device's log line) are dropped,
     * inner ones become spaces. */
    size_t n = strlen(f->msg);
    while (n > 0 && (f->msg[n - 1] == '\n' || f->msg[n - 1] == '\r')) f->msg[--n] = '\0';
    for (char *p = f->msg; *p; p++)
      if (*p == '\n' || *p == '\r') *p = ' ';
  }
  return code;
}

void eg_fault_status(eg_fault *f, const uint8_t *status, size_t n) {
  if (n > sizeof f->status) n = sizeof f->status;
  if (n) memcpy(f->status, status, n); /* status may be NULL when n == 0 */
  f->nstatus = (uint8_t)n;
}

const char *eg_fault_status_hex(const eg_fault *f, char *buf, size_t len) {
  size_t used = 0;
  /* nstatus comes from a plain-data struct that may have been copied or
   * read back: never trust it beyond the array. */
  const size_t n = f->nstatus < sizeof f->status ? f->nstatus : sizeof f->status;
  if (len == 0) return buf;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used + 4 <= len; i++)
    used += (size_t)snprintf(buf + used, len - used, i ? " %02x" : "%02x", f->status[i]);
  return buf;
}
