#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

void eg_json_quote_n(FILE *out, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', out);
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c), i++;
    else if (c == '\n') fputs("\\n", out), i++;
    else if (c == '\r') fputs("\\r", out), i++;
    else if (c == '\t') fputs("\\t", out), i++;
    else if (c < 0x20 || c == 0x7F) fprintf(out, "\\u%04x", c), i++;
    else if (c < 0x80) fputc(c, out), i++;
    else {
      /* Length and valid second-byte range of a UTF-8 sequence (RFC 3629):
       * no overlongs, no surrogates, nothing above U+10FFFF. */
      size_t len = 0;
      unsigned char lo = 0x80, hi = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) len = 2;
      else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
      else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
      bool ok = len && i + len <= n && s[i + 1] >= lo && s[i + 1] <= hi;
      for (size_t k = 2; ok && k < len; k++) ok = s[i + k] >= 0x80 && s[i + k] <= 0xBF;
      if (ok) fwrite(s + i, 1, len, out), i += len;
      else fputs("\\ufffd", out), i++;
    }
  }
  fputc('"', out);
}

void eg_json_quote(FILE *f, const char *s) {
  if (!s) {
    fputs("null", f);
    return;
  }
  eg_json_quote_n(f, s, strlen(s));
}

static void begin(eg_jw *w, FILE *f, bool own) {
  memset(w, 0, sizeof *w);
  w->f = f;
  w->own = own;
  if (w->f) {
    fputc('{', w->f);
    w->depth = 1;
  }
}

void eg_jw_open(eg_jw *w) {
  begin(w, NULL, true);
  /* The stream keeps pointers to buf and len: they live in *w. */
  w->f = open_memstream(&w->buf, &w->len);
  if (w->f) {
    fputc('{', w->f);
    w->depth = 1;
  }
}

void eg_jw_start(eg_jw *w, FILE *out) { begin(w, out, false); }

/* Separator, optional line break, and the key when inside an object. */
static void key(eg_jw *w, const char *k) {
  const int d = w->depth <= EG_JW_DEPTH ? w->depth - 1 : EG_JW_DEPTH - 1;
  if (d >= 0 && w->n[d]++) fputc(',', w->f);
  if (w->nl) fputc('\n', w->f), w->nl = false;
  if (d >= 0 && !w->arr[d]) {
    eg_json_quote(w->f, k ? k : "");
    fputc(':', w->f);
  }
}

static void open_container(eg_jw *w, const char *k, bool array) {
  if (!w->f) return;
  key(w, k);
  fputc(array ? '[' : '{', w->f);
  if (w->depth < EG_JW_DEPTH) {
    w->n[w->depth] = 0;
    w->arr[w->depth] = array;
  }
  w->depth++;
}

void eg_jw_object(eg_jw *w, const char *k) { open_container(w, k, false); }
void eg_jw_array(eg_jw *w, const char *k) { open_container(w, k, true); }

void eg_jw_end(eg_jw *w) {
  if (!w->f || w->depth <= 0) return;
  w->depth--;
  if (w->nl) fputc('\n', w->f), w->nl = false;
  fputc(w->depth < EG_JW_DEPTH && w->arr[w->depth] ? ']' : '}', w->f);
}

void eg_jw_newline(eg_jw *w) { w->nl = true; }

bool eg_jw_finish(eg_jw *w) {
  if (!w->f) return false;
  while (w->depth > 0) eg_jw_end(w);
  fputc('\n', w->f);
  const bool ok = !ferror(w->f);
  w->f = NULL;
  return ok;
}

void eg_jw_null(eg_jw *w, const char *k) {
  if (!w->f) return;
  key(w, k);
  fputs("null", w->f);
}

void eg_jw_fixed(eg_jw *w, const char *k, double val, int decimals) {
  if (!w->f) return;
  key(w, k);
  if (val != val || val > 1e300 || val < -1e300) fputs("null", w->f);
  else fprintf(w->f, "%.*f", decimals < 0 ? 0 : decimals > 9 ? 9 : decimals, val);
}

void eg_jw_str(eg_jw *w, const char *k, const char *val) {
  if (!w->f) return;
  key(w, k);
  eg_json_quote(w->f, val);
}

void eg_jw_int(eg_jw *w, const char *k, long long val) {
  if (!w->f) return;
  key(w, k);
  fprintf(w->f, "%lld", val);
}

void eg_jw_uint(eg_jw *w, const char *k, unsigned long long val) {
  if (!w->f) return;
  key(w, k);
  fprintf(w->f, "%llu", val);
}

void eg_jw_num(eg_jw *w, const char *k, double val) {
  if (!w->f) return;
  key(w, k);
  fprintf(w->f, "%.3f", val);
}

void eg_jw_bool(eg_jw *w, const char *k, bool val) {
  if (!w->f) return;
  key(w, k);
  fputs(val ? "true" : "false", w->f);
}

void eg_jw_raw(eg_jw *w, const char *k, const char *json) {
  if (!w->f) return;
  key(w, k);
  fputs(json ? json : "null", w->f);
}

char *eg_jw_close(eg_jw *w) {
  if (!w->f || !w->own) return NULL;
  while (w->depth > 0) eg_jw_end(w);
  if (fclose(w->f) != 0) {
    free(w->buf);
    return NULL;
  }
  w->f = NULL;
  return w->buf;
}

void eg_jw_unit(eg_jw *w, const eg_unit_record *u) {
  char mac[18], st[16];
  eg_jw_str(w, "slot", u->slot);
  eg_jw_str(w, "port", u->port);
  if (u->usb_location[0]) eg_jw_str(w, "usb_location", u->usb_location);
  eg_jw_int(w, "attempt", u->attempt);
  eg_jw_str(w, "result", eg_result_name(u->result));
  if (u->chip[0]) eg_jw_str(w, "chip", u->chip);
  if (u->chip_desc[0]) eg_jw_str(w, "chip_desc", u->chip_desc);
  if (u->has_mac) eg_jw_str(w, "mac", eg_unit_mac_str(u, mac, sizeof mac));
  if (u->has_flash_id) {
    char id[16];
    snprintf(id, sizeof id, "0x%06x", u->flash_id);
    eg_jw_str(w, "flash_id", id);
    eg_jw_uint(w, "flash_size", u->flash_size);
  }
  if (u->crystal_mhz) eg_jw_int(w, "crystal_mhz", u->crystal_mhz);
  eg_jw_uint(w, "baud", u->baud);
  eg_jw_bool(w, "stub", u->stub);
  eg_jw_uint(w, "bytes_tx", u->bytes_tx);
  eg_jw_uint(w, "bytes_rx", u->bytes_rx);
  eg_jw_int(w, "started_ms", u->started_ms);
  if (u->finished_ms) {
    eg_jw_int(w, "finished_ms", u->finished_ms);
    eg_jw_int(w, "duration_ms", u->finished_ms - u->started_ms);
  }
  for (int s = 1; s < EG_STAGE__COUNT; s++)
    if (u->stage_ms[s]) {
      char k[32];
      snprintf(k, sizeof k, "%s_ms", eg_stage_name((eg_stage)s));
      eg_jw_uint(w, k, u->stage_ms[s]);
    }
  if (u->fault.code != EG_OK) {
    eg_jw_str(w, "fail_stage", eg_stage_name(u->fault.stage));
    eg_jw_str(w, "error", eg_err_name(u->fault.code));
    if (u->fault.opcode >= 0) eg_jw_int(w, "opcode", u->fault.opcode);
    if (u->fault.nstatus) eg_jw_str(w, "status", eg_fault_status_hex(&u->fault, st, sizeof st));
    eg_jw_str(w, "message", u->fault.msg);
  }
}

char *eg_json_unit(const eg_unit_record *u, const char *event) {
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", event);
  eg_jw_unit(&w, u);
  return eg_jw_close(&w);
}
