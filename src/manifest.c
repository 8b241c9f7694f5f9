/* manifest.c - load and validate the production manifest (see manifest.h).
 *
 * The file is read once into memory (so the text that is hashed and stored in
 * the log is exactly the text that was parsed) and loaded with libyaml's
 * document API. The walk below is driven by the format, never by the shape
 * of the document, so it cannot recurse without bound even on documents
 * with alias cycles.
 *
 * Scalars are typed the way YAML 1.2's core schema types them, because that
 * is what the JSON-Schema side (schema/manifest.schema.json, checked with
 * the npm `yaml` package) sees: a plain `123` is an integer, `true` a
 * boolean, `~` null; a quoted scalar is always a string. So the two cannot
 * disagree about `station: 123` (both say: not a string).
 *
 * Diagnostics are collected and delivered sorted by position once the whole
 * file has been checked, so the operator gets every problem, in file order.
 */
#include "manifest.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "fileio.h"
#include "port.h"
#include "text.h"

#define MANIFEST_MAX_BYTES (1u << 20)
/* The deepest value of a manifest is 4 levels down (manifest > ports > entry
 * > usb), and anchors (&name) save typing a repeated usb: match or two;
 * anything nested far deeper or with far more anchors is not a manifest
 * (see check_shape). */
#define MANIFEST_MAX_DEPTH 32
#define MANIFEST_MAX_ANCHORS 256
/* Counts that keep every check below cheap (the overlap and duplicate checks
 * compare pairs) and far above any rack: a flash holds a handful of images;
 * a port entry is a glob or a USB match for many boards. */
#define MANIFEST_MAX_IMAGES 64
#define MANIFEST_MAX_PORTS 1024
/* A mapping may hold this many keys beyond the ones it takes, each then
 * reported by name as unknown or duplicate; past that, one error for all. */
#define MAP_EXTRA_KEYS 16
/* Flash is erased in 4 KiB sectors (esptool FLASH_SECTOR_SIZE). */
#define SECTOR 0x1000u
/* Timeouts: at least 1 ms, at most one day. */
#define TIMEOUT_MIN_S 0.001
#define TIMEOUT_MAX_S 86400.0

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- diagnostics */

typedef struct diag {
  int line, col;
  size_t seq;
  char *msg;
} diag;

typedef struct mctx {
  const char *file; /* as given, for messages */
  yaml_document_t *doc;
  eg_manifest *m;
  diag *diags;
  size_t ndiags, capdiags;
  int nerrors;
  bool oom;
  bool chip_ok;     /* chip: named a known chip or auto */
} mctx;

static void vreport(mctx *c, bool error, int line, int col, const char *fmt, va_list ap) {
  char *raw = NULL;
  if (vasprintf(&raw, fmt, ap) < 0) {
    c->oom = true;
    return;
  }
  /* Messages quote what the manifest says (keys, values, file names): its
   * control characters are shown escaped, so a diagnostic stays one line
   * and cannot drive the operator's terminal. */
  const size_t mcap = 4 * strlen(raw) + 8;
  char *msg = malloc(mcap);
  if (msg) eg_text_escape(msg, mcap, raw);
  free(raw);
  if (!msg) {
    c->oom = true;
    return;
  }
  if (!error) {
    char *w = NULL;
    if (asprintf(&w, "warning: %s", msg) < 0) w = NULL;
    free(msg);
    if (!(msg = w)) {
      c->oom = true;
      return;
    }
  }
  if (c->ndiags == c->capdiags) {
    const size_t cap = c->capdiags ? 2 * c->capdiags : 16;
    diag *d = realloc(c->diags, cap * sizeof *d);
    if (!d) {
      free(msg);
      c->oom = true;
      return;
    }
    c->diags = d, c->capdiags = cap;
  }
  c->diags[c->ndiags] = (diag){line, col, c->ndiags, msg};
  c->ndiags++;
  if (error) c->nerrors++;
}

__attribute__((format(printf, 4, 5))) static void err_at(mctx *c, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(c, true, line, col, fmt, ap);
  va_end(ap);
}

/* libyaml marks are 0-based; diagnostics are 1-based. */
__attribute__((format(printf, 3, 4))) static void err(mctx *c, const yaml_node_t *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(c, true, n ? (int)n->start_mark.line + 1 : 1, n ? (int)n->start_mark.column + 1 : 1, fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void warn_at(mctx *c, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(c, false, line, col, fmt, ap);
  va_end(ap);
}

static int diag_cmp(const void *a, const void *b) {
  const diag *x = a, *y = b;
  if (x->line != y->line) return x->line < y->line ? -1 : 1;
  if (x->col != y->col) return x->col < y->col ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void flush_diags(mctx *c, eg_diag_cb cb, void *ctx) {
  if (c->ndiags) qsort(c->diags, c->ndiags, sizeof *c->diags, diag_cmp);
  for (size_t i = 0; i < c->ndiags; i++) {
    if (cb) cb(ctx, c->file, c->diags[i].line, c->diags[i].col, c->diags[i].msg);
    free(c->diags[i].msg);
  }
  free(c->diags);
  c->diags = NULL;
  c->ndiags = c->capdiags = 0;
}

/* ---------------------------------------------------------------- scalars */

/* YAML 1.2 core schema resolution of an untagged plain scalar. */
typedef enum sv_kind { SV_STR, SV_INT, SV_FLOAT, SV_BOOL, SV_NULL, SV_SEQ, SV_MAP, SV_BADTAG } sv_kind;

static bool all_in(const char *s, const char *set) {
  if (!*s) return false;
  for (; *s; s++)
    if (!strchr(set, *s)) return false;
  return true;
}

static bool is_core_int(const char *s) {
  if (strncmp(s, "0x", 2) == 0) return all_in(s + 2, "0123456789abcdefABCDEF");
  if (strncmp(s, "0o", 2) == 0) return all_in(s + 2, "01234567");
  if (*s == '-' || *s == '+') s++;
  return all_in(s, "0123456789");
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, .inf, .nan */
static bool is_core_float(const char *s) {
  static const char *const special[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                        "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"};
  for (size_t i = 0; i < N(special); i++)
    if (strcmp(s, special[i]) == 0) return true;
  if (*s == '-' || *s == '+') s++;
  size_t intd = 0, fracd = 0;
  while (*s >= '0' && *s <= '9') s++, intd++;
  if (*s == '.') {
    s++;
    while (*s >= '0' && *s <= '9') s++, fracd++;
  }
  if (intd == 0 && fracd == 0) return false;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '-' || *s == '+') s++;
    size_t expd = 0;
    while (*s >= '0' && *s <= '9') s++, expd++;
    if (!expd) return false;
  }
  return *s == '\0';
}

static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static sv_kind node_kind(const yaml_node_t *n) {
  switch (n->type) {
  case YAML_SEQUENCE_NODE: return SV_SEQ;
  case YAML_MAPPING_NODE: return SV_MAP;
  case YAML_NO_NODE: return SV_NULL;
  case YAML_SCALAR_NODE: break;
  }
  const char *tag = (const char *)n->tag;
  const char *s = sval(n);
  if (tag && strcmp(tag, YAML_STR_TAG) != 0) {
    /* Explicitly tagged: honour the core tags, refuse anything else. */
    if (strcmp(tag, YAML_INT_TAG) == 0) return SV_INT;
    if (strcmp(tag, YAML_FLOAT_TAG) == 0) return SV_FLOAT;
    if (strcmp(tag, YAML_BOOL_TAG) == 0) return SV_BOOL;
    if (strcmp(tag, YAML_NULL_TAG) == 0) return SV_NULL;
    return SV_BADTAG;
  }
  /* libyaml gives every untagged scalar the str tag; only the style tells a
   * quoted "123" (a string) from a plain 123 (an integer). */
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return SV_STR;
  if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) return SV_NULL;
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE") || !strcmp(s, "false") ||
      !strcmp(s, "False") || !strcmp(s, "FALSE"))
    return SV_BOOL;
  if (is_core_int(s)) return SV_INT;
  if (is_core_float(s)) return SV_FLOAT;
  return SV_STR;
}

static const char *kind_name(sv_kind k) {
  switch (k) {
  case SV_STR: return "a string";
  case SV_INT: return "an integer";
  case SV_FLOAT: return "a number";
  case SV_BOOL: return "a boolean";
  case SV_NULL: return "nothing (null)";
  case SV_SEQ: return "a list";
  case SV_MAP: return "a mapping";
  case SV_BADTAG: return "a value with an unsupported tag";
  }
  return "?";
}

static yaml_node_t *node(mctx *c, int id) { return yaml_document_get_node(c->doc, id); }

static void type_error(mctx *c, const yaml_node_t *n, const char *key, const char *want) {
  const sv_kind k = node_kind(n);
  const bool want_str = strcmp(want, "a string") == 0;
  err(c, n, "%s: expected %s, got %s%s", key, want, kind_name(k),
      want_str && (k == SV_INT || k == SV_FLOAT || k == SV_BOOL) ? " (quote it to make it a string)" : "");
}

/* A non-empty string. */
static bool get_str(mctx *c, const yaml_node_t *n, const char *key, const char **out) {
  if (node_kind(n) != SV_STR) return type_error(c, n, key, "a string"), false;
  if (!*sval(n)) return err(c, n, "%s: must not be empty", key), false;
  if (strlen(sval(n)) != n->data.scalar.length) return err(c, n, "%s: contains a NUL character", key), false;
  *out = sval(n);
  return true;
}

/* A name shown on the operator's screen and stored in the log (station,
 * slot): a non-empty string without control characters (text.h), which
 * would otherwise drive the terminal or split a log line. */
static bool get_label(mctx *c, const yaml_node_t *n, const char *key, const char **out) {
  if (!get_str(c, n, key, out)) return false;
  size_t at = 0;
  if (eg_text_has_control(*out, strlen(*out), &at)) {
    err(c, n, "%s: '%s' contains a control character at byte %zu (not allowed in a name shown on screens and in the log)",
        key, *out, at + 1);
    return false;
  }
  return true;
}

/* An integer in [min, max]. */
static bool get_int(mctx *c, const yaml_node_t *n, const char *key, int64_t min, int64_t max, int64_t *out) {
  if (node_kind(n) != SV_INT) return type_error(c, n, key, "an integer"), false;
  const char *s = sval(n);
  int base = 10;
  bool neg = false;
  if (!strncmp(s, "0x", 2)) base = 16, s += 2;
  else if (!strncmp(s, "0o", 2)) base = 8, s += 2;
  else if (*s == '-' || *s == '+') neg = *s == '-', s++;
  if (!*s) return err(c, n, "%s: '%s' is not an integer", key, sval(n)), false;
  uint64_t v = 0;
  for (; *s; s++) {
    const unsigned d = *s <= '9' ? (unsigned)(*s - '0') : (unsigned)((*s | 0x20) - 'a' + 10);
    if (d >= (unsigned)base) return err(c, n, "%s: '%s' is not an integer", key, sval(n)), false;
    if (v > (UINT64_MAX - d) / (unsigned)base) return err(c, n, "%s: %s is too large", key, sval(n)), false;
    v = v * (unsigned)base + d;
  }
  if (v > (uint64_t)INT64_MAX) return err(c, n, "%s: %s is too large", key, sval(n)), false;
  const int64_t x = neg ? -(int64_t)v : (int64_t)v;
  if (x < min || x > max)
    return err(c, n, "%s: %s is out of range (%lld..%lld)", key, sval(n), (long long)min, (long long)max), false;
  *out = x;
  return true;
}

static bool get_bool(mctx *c, const yaml_node_t *n, const char *key, bool *out) {
  if (node_kind(n) != SV_BOOL) return type_error(c, n, key, "true or false"), false;
  const char *s = sval(n);
  if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return *out = true, true;
  if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return *out = false, true;
  return err(c, n, "%s: '%s' is not true or false", key, s), false;
}

/* Seconds (integer or decimal) -> milliseconds. */
static bool get_seconds(mctx *c, const yaml_node_t *n, const char *key, uint32_t *ms) {
  const sv_kind k = node_kind(n);
  if (k != SV_INT && k != SV_FLOAT) return type_error(c, n, key, "a number of seconds"), false;
  const char *s = sval(n);
  double v;
  if (k == SV_INT) {
    int64_t i;
    if (!get_int(c, n, key, 0, (int64_t)TIMEOUT_MAX_S, &i)) return false;
    v = (double)i;
  } else {
    if (strchr(s, 'i') || strchr(s, 'I') || strchr(s, 'n') || strchr(s, 'N'))
      return err(c, n, "%s: must be a finite number of seconds", key), false;
    char *end;
    errno = 0;
    v = strtod(s, &end);
    if (*end || errno) return err(c, n, "%s: '%s' is not a number", key, s), false;
  }
  if (!(v >= TIMEOUT_MIN_S && v <= TIMEOUT_MAX_S))
    return err(c, n, "%s: %s s is out of range (0.001..86400 seconds)", key, s), false;
  *ms = (uint32_t)llround(v * 1000.0);
  return true;
}

/* ---------------------------------------------------------------- mappings */

/* Check `map` is a mapping with only `keys` (each at most once) and hand
 * back the value node of each key (NULL when absent). */
static bool map_fields(mctx *c, const yaml_node_t *map, const char *where, const char *const *keys, size_t nkeys,
                       yaml_node_t **vals) {
  for (size_t i = 0; i < nkeys; i++) vals[i] = NULL;
  if (map->type != YAML_MAPPING_NODE) {
    err(c, map, "%s: expected a mapping, got %s", where, kind_name(node_kind(map)));
    return false;
  }
  const yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
  char allowed[512] = "";
  size_t len = 0;
  for (size_t j = 0; j < nkeys && len < sizeof allowed; j++)
    len += (size_t)snprintf(allowed + len, sizeof allowed - len, "%s%s", j ? ", " : "", keys[j]);
  if ((size_t)(top - start) > nkeys + MAP_EXTRA_KEYS) { /* the duplicate check below compares pairs */
    err(c, map, "%s: %zu keys, but it takes at most %zu (allowed: %s)", where, (size_t)(top - start), nkeys, allowed);
    return false;
  }
  for (const yaml_node_pair_t *p = start; p < top; p++) {
    yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
    if (!k || !v) continue;
    if (k->type != YAML_SCALAR_NODE) {
      err(c, k, "%s: a key must be a plain name, not %s", where, kind_name(node_kind(k)));
      continue;
    }
    const char *name = sval(k);
    bool dup = false;
    for (const yaml_node_pair_t *q = start; q < p && !dup; q++) {
      const yaml_node_t *qk = node(c, q->key);
      if (qk && qk->type == YAML_SCALAR_NODE && strcmp(sval(qk), name) == 0) {
        err(c, k, "%s: duplicate key '%s' (first at line %d, column %d)", where, name, (int)qk->start_mark.line + 1,
            (int)qk->start_mark.column + 1);
        dup = true;
      }
    }
    if (dup) continue;
    size_t i = 0;
    while (i < nkeys && strcmp(keys[i], name) != 0) i++;
    if (i < nkeys) {
      vals[i] = v;
      continue;
    }
    err(c, k, "%s: unknown key '%s' (allowed: %s)", where, name, allowed);
  }
  return true;
}

static char *xstrdup(mctx *c, const char *s) {
  char *d = strdup(s);
  if (!d) c->oom = true;
  return d;
}

/* `rel` relative to the manifest's folder, unless absolute. */
static char *resolve(mctx *c, const char *rel) {
  if (rel[0] == '/') return xstrdup(c, rel);
  char *out = NULL;
  if (asprintf(&out, "%s/%s", c->m->dir, rel) < 0) {
    c->oom = true;
    return NULL;
  }
  return out;
}

/* ---------------------------------------------------------------- sections */

enum { R_STATION, R_DATABASE, R_CHIP, R_IMAGES, R_FLASH, R_BAUD, R_CONNECT_BAUD, R_BEFORE, R_AFTER, R_STUB,
       R_ERASE, R_VERIFY, R_COMPRESS, R_RETRIES, R_TIMEOUTS, R_PORTS, R_SKIP_FLASHED, R_SECURITY, R__COUNT };
static const char *const root_keys[R__COUNT] = {
  "station", "database", "chip", "images", "flash", "baud", "connect_baud", "before", "after", "stub",
  "erase", "verify", "compress", "retries", "timeouts", "ports", "skip_flashed", "security"};

/* A list of names for messages: "a, b, c". */
static void join_codes(char *buf, size_t cap, const char *first, const char *second, const eg_code *t, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  if (first) len += (size_t)snprintf(buf + len, cap - len, "%s", first);
  if (second && len < cap) len += (size_t)snprintf(buf + len, cap - len, ", %s", second);
  for (size_t i = 0; i < n && len < cap; i++) len += (size_t)snprintf(buf + len, cap - len, ", %s", t[i].name);
}

static bool code_in(const eg_code *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0) return true;
  return false;
}

/* The chips a value must suit: the manifest's chip, or with chip: auto
 * every chip the images name (every chip of the table for a plain list). */
static bool chip_used(const eg_manifest *m, const eg_chip *ch) {
  if (m->set.chip) return ch == m->set.chip;
  if (!m->images_per_chip) return true;
  for (size_t i = 0; i < m->nimages; i++)
    if (m->images[i].chip == ch) return true;
  return false;
}

/* A flash frequency or size, checked against each chip it must suit; the
 * first that lacks it is named. */
static void check_code(mctx *c, const yaml_node_t *n, const char *key, const char *s, bool size) {
  eg_manifest *m = c->m;
  char allowed[256];
  for (int id = 0; id < EG_CHIP__COUNT; id++) {
    const eg_chip *ch = eg_chip_get((eg_chip_id)id);
    if (!chip_used(m, ch)) continue;
    const eg_code *t = size ? ch->flash_sizes : ch->flash_freqs;
    const size_t nt = size ? ch->nflash_sizes : ch->nflash_freqs;
    if (code_in(t, nt, s)) continue;
    join_codes(allowed, sizeof allowed, "keep", size ? "detect" : NULL, t, nt);
    err(c, n, "%s: '%s' is not a flash %s of the %s (allowed: %s)", key, s, size ? "size" : "frequency", ch->name,
        allowed);
    return;
  }
  snprintf(size ? m->set.flash_size : m->set.flash_freq, sizeof m->set.flash_size, "%s", s);
}

static void parse_flash(mctx *c, const yaml_node_t *fn) {
  eg_manifest *m = c->m;
  enum { F_MODE, F_FREQ, F_SIZE, F__COUNT };
  static const char *const keys[F__COUNT] = {"mode", "freq", "size"};
  yaml_node_t *v[F__COUNT];
  if (!map_fields(c, fn, "flash", keys, F__COUNT, v)) return;
  const char *s;
  char allowed[256];
  if (v[F_MODE] && get_str(c, v[F_MODE], "flash.mode", &s)) {
    /* Exact lower-case names, as esptool's --flash-mode choices. */
    if (strcmp(s, "keep") != 0 && (eg_flash_mode_code(s) < 0 || strcmp(eg_flash_mode_name(eg_flash_mode_code(s)), s)))
      err(c, v[F_MODE], "flash.mode: unknown mode '%s' (allowed: keep, qio, qout, dio, dout)", s);
    else
      snprintf(m->set.flash_mode, sizeof m->set.flash_mode, "%s", s);
  }
  if (v[F_FREQ] && get_str(c, v[F_FREQ], "flash.freq", &s)) {
    if (strcmp(s, "keep") == 0) snprintf(m->set.flash_freq, sizeof m->set.flash_freq, "keep");
    else if (!c->chip_ok) { /* the chip's own error is reported; nothing to check against */
    } else check_code(c, v[F_FREQ], "flash.freq", s, false);
  }
  if (v[F_SIZE] && get_str(c, v[F_SIZE], "flash.size", &s)) {
    if (strcmp(s, "keep") == 0 || strcmp(s, "detect") == 0) snprintf(m->set.flash_size, sizeof m->set.flash_size, "%s", s);
    else if (!c->chip_ok) {
    } else check_code(c, v[F_SIZE], "flash.size", s, true);
  }
  (void)allowed;
}

static void parse_timeouts(mctx *c, const yaml_node_t *tn) {
  eg_timeouts *t = &c->m->set.timeouts;
  static const char *const keys[] = {"command", "sync", "mem_end", "chip_erase", "max",
                                     "erase_per_mb", "write_per_mb", "md5_per_mb", "read_packet", "port_back"};
  uint32_t *const dst[N(keys)] = {&t->command_ms, &t->sync_ms, &t->mem_end_ms,
                                  &t->chip_erase_ms, &t->max_ms, &t->erase_per_mb_ms,
                                  &t->write_per_mb_ms, &t->md5_per_mb_ms, &t->read_packet_ms,
                                  &t->port_back_ms};
  yaml_node_t *v[N(keys)];
  if (!map_fields(c, tn, "timeouts", keys, N(keys), v)) return;
  for (size_t i = 0; i < N(keys); i++) {
    char key[32];
    snprintf(key, sizeof key, "timeouts.%s", keys[i]);
    if (v[i]) get_seconds(c, v[i], key, dst[i]);
  }
}

static int image_cmp(const void *a, const void *b) {
  const eg_mimage *x = a, *y = b;
  const int cx = x->chip ? (int)x->chip->id + 1 : 0, cy = y->chip ? (int)y->chip->id + 1 : 0;
  if (cx != cy) return cx < cy ? -1 : 1;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return x->line != y->line ? (x->line < y->line ? -1 : 1) : 0;
}

static int image_cmp(const void *a, const void *b);

/* One list of images (the whole `images:` or one chip's list of it),
 * appended to m->images. */
static void parse_image_list(mctx *c, const yaml_node_t *in, const eg_chip *chip, const char *prefix) {
  eg_manifest *m = c->m;
  const size_t n = (size_t)(in->data.sequence.items.top - in->data.sequence.items.start);
  if (n == 0) return err(c, in, "%s: at least one image is required", prefix);
  enum { I_OFFSET, I_FILE, I_SHA256, I__COUNT };
  static const char *const keys[I__COUNT] = {"offset", "file", "sha256"};
  for (size_t i = 0; i < n; i++) {
    const yaml_node_t *e = node(c, in->data.sequence.items.start[i]);
    if (!e) continue;
    char where[64];
    snprintf(where, sizeof where, "%s[%zu]", prefix, i);
    yaml_node_t *v[I__COUNT];
    if (!map_fields(c, e, where, keys, I__COUNT, v)) continue;
    eg_mimage *mi = &m->images[m->nimages];
    memset(mi, 0, sizeof *mi);
    mi->chip = chip;
    mi->line = (int)e->start_mark.line + 1;
    mi->col = (int)e->start_mark.column + 1;
    int64_t off = 0;
    if (!v[I_OFFSET]) err(c, e, "%s: missing required key 'offset'", where);
    else if (get_int(c, v[I_OFFSET], "offset", 0, UINT32_MAX, &off) && off % 4)
      /* FLASH_BEGIN/FLASH_DATA need 4-byte aligned addresses. */
      err(c, v[I_OFFSET], "offset: 0x%llx is not a multiple of 4", (long long)off);
    const char *file = NULL;
    if (!v[I_FILE]) err(c, e, "%s: missing required key 'file'", where);
    else get_str(c, v[I_FILE], "file", &file);
    const char *pin = NULL;
    if (v[I_SHA256] && get_str(c, v[I_SHA256], "sha256", &pin)) {
      if (strlen(pin) != 64 || !eg_unhex(mi->sha256, 32, pin))
        err(c, v[I_SHA256], "sha256: expected 64 hex digits, got '%s'", pin);
      else
        mi->has_sha256 = true;
    }
    if (!file) continue;
    /* Load even when the offset is bad, so a missing file is reported too. */
    mi->offset = (uint32_t)off;
    mi->file = xstrdup(c, file);
    mi->path = resolve(c, file);
    m->nimages++;
    if (!mi->file || !mi->path) continue;
    eg_fault f;
    eg_fault_clear(&f);
    const eg_err r = eg_image_load(&mi->image, mi->path, mi->offset, &f);
    if (r != EG_OK) {
      if (r == EG_NOMEM) c->oom = true;
      err(c, v[I_FILE], "file: %s", f.msg[0] ? f.msg : eg_strerror(r));
      eg_image_free(&mi->image);
      memset(&mi->image, 0, sizeof mi->image);
    } else if (mi->image.file_len == 0) {
      err(c, v[I_FILE], "file: %s is empty", mi->path);
    } else if (mi->has_sha256 && memcmp(mi->sha256, mi->image.file_sha256, 32) != 0) {
      char want[65], got[65];
      err(c, v[I_SHA256], "sha256: %s does not match the pin: expected %s, actual %s", file,
          eg_hex(want, mi->sha256, 32), eg_hex(got, mi->image.file_sha256, 32));
    }
  }
}

static size_t seq_len(const yaml_node_t *n) {
  return n->type == YAML_SEQUENCE_NODE ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

/* images: a list for every chip, or a map of lists per chip (a mixed rack:
 * images: {esp32c3: [...], esp32s3: [...]}). */
static void parse_images(mctx *c, const yaml_node_t *in) {
  eg_manifest *m = c->m;
  size_t total = 0;
  if (in->type == YAML_SEQUENCE_NODE) {
    total = seq_len(in);
  } else if (in->type == YAML_MAPPING_NODE) {
    /* One image written without its list dash ("images: {offset: ..}"). */
    for (const yaml_node_pair_t *pr = in->data.mapping.pairs.start; pr < in->data.mapping.pairs.top; pr++) {
      const yaml_node_t *k = node(c, pr->key);
      if (k && k->type == YAML_SCALAR_NODE && (!strcmp(sval(k), "offset") || !strcmp(sval(k), "file")))
        return type_error(c, in, "images", "a list");
    }
    m->images_per_chip = true;
    for (const yaml_node_pair_t *pr = in->data.mapping.pairs.start; pr < in->data.mapping.pairs.top; pr++) {
      const yaml_node_t *v = node(c, pr->value);
      if (v) total += seq_len(v);
    }
  } else {
    return type_error(c, in, "images", "a list, or a map of lists per chip");
  }
  if (total > MANIFEST_MAX_IMAGES) return err(c, in, "images: %zu images, more than %d", total, MANIFEST_MAX_IMAGES);
  if (!(m->images = calloc(total ? total : 1, sizeof *m->images))) {
    c->oom = true;
    return;
  }
  if (!m->images_per_chip) {
    parse_image_list(c, in, NULL, "images");
  } else {
    if (in->data.mapping.pairs.start == in->data.mapping.pairs.top) return err(c, in, "images: no chip listed");
    for (const yaml_node_pair_t *pr = in->data.mapping.pairs.start; pr < in->data.mapping.pairs.top; pr++) {
      const yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
      if (!k || !v) continue;
      const char *name = k->type == YAML_SCALAR_NODE ? sval(k) : "";
      const eg_chip *chip = eg_chip_by_name(name);
      char where[64];
      snprintf(where, sizeof where, "images.%s", name);
      if (!chip) {
        char names[256];
        err(c, k, "images: '%s' is not a chip (known: %s)", name, eg_chip_names(names, sizeof names, ", "));
        continue;
      }
      bool dup = false;
      for (size_t i = 0; i < m->nimages; i++) dup = dup || m->images[i].chip == chip;
      if (dup) {
        err(c, k, "images: %s is listed twice", chip->arg_name);
        continue;
      }
      if (c->chip_ok && m->set.chip && chip != m->set.chip) {
        err(c, k, "images: %s: the manifest's chip is %s (use chip: auto for a rack of several chips)",
            chip->arg_name, m->set.chip->arg_name);
        continue;
      }
      if (v->type != YAML_SEQUENCE_NODE) {
        type_error(c, v, where, "a list");
        continue;
      }
      parse_image_list(c, v, chip, where);
    }
  }
  qsort(m->images, m->nimages, sizeof *m->images, image_cmp);
}

/* Cross-image checks, once the chip and flash size are known; reported at
 * the image's entry. */
static void check_images(mctx *c) {
  eg_manifest *m = c->m;
  const uint32_t fixed = strcmp(m->set.flash_size, "keep") && strcmp(m->set.flash_size, "detect")
                           ? eg_flash_size_bytes(m->set.flash_size) : 0;
  uint64_t prev_end = 0; /* the furthest end of the images before (of the same chip), exclusive */
  for (size_t i = 0; i < m->nimages; i++) {
    const eg_mimage *a = &m->images[i];
    if (i > 0 && m->images[i - 1].chip != a->chip) prev_end = 0; /* another chip's list */
    if (!a->image.len) continue; /* not loaded: already reported */
    /* The chip erases whole 4 KiB sectors: an image that starts inside one
     * takes the sector's bytes before it along (esptool warns the same).
     * Not said when an image before it shares the sector (an error below),
     * when the offset itself is refused, or when the whole chip is erased. */
    char note[256];
    const bool shared = prev_end > (a->offset & ~(uint64_t)(SECTOR - 1));
    if (!shared && a->offset % 4 == 0 && m->set.erase != EG_ERASE_ALL &&
        eg_image_erase_warning(a->file, a->offset, note, sizeof note))
      warn_at(c, a->line, a->col, "%s", note);
    const uint64_t end = (uint64_t)a->offset + a->image.len; /* exclusive */
    if (end > prev_end) prev_end = end;
    if (fixed && end > fixed)
      err_at(c, a->line, a->col, "image %s (0x%x..0x%llx) does not fit in the %s flash (flash.size)", a->file,
             a->offset, (unsigned long long)end - 1, m->set.flash_size);
    /* Overlap, at sector granularity as esptool checks it: writing an image
     * erases every 4 KiB sector it touches, so two images sharing a sector
     * would destroy each other's bytes. */
    const uint64_t a_last_sector = (end - 1) & ~(uint64_t)(SECTOR - 1);
    for (size_t j = i + 1; j < m->nimages && m->images[j].chip == a->chip; j++) {
      const eg_mimage *b = &m->images[j];
      const uint64_t b_first_sector = b->offset & ~(uint64_t)(SECTOR - 1);
      if (b_first_sector > a_last_sector) break; /* sorted: the rest start even later */
      if (!b->image.len) continue;
      if (b->offset < end)
        err_at(c, b->line, b->col, "image %s at 0x%x overlaps image %s (0x%x..0x%llx, line %d)", b->file, b->offset,
               a->file, a->offset, (unsigned long long)end - 1, a->line);
      else
        err_at(c, b->line, b->col,
               "image %s at 0x%x shares the 4 KiB flash sector 0x%llx with image %s (0x%x..0x%llx, line %d); "
               "erasing one would erase the other",
               b->file, b->offset, (unsigned long long)b_first_sector, a->file, a->offset,
               (unsigned long long)end - 1, a->line);
    }
    /* esptool writes the flash parameters into the bootloader's header only
     * when it starts with the image magic 0xE9; say so rather than silently
     * flash a bootloader with other parameters than the manifest asks for. */
    const eg_chip *ch = a->chip ? a->chip : m->set.chip;
    if (ch && a->offset == ch->bootloader_offset && a->image.data[0] != 0xE9 &&
        (strcmp(m->set.flash_mode, "keep") || strcmp(m->set.flash_freq, "keep") || strcmp(m->set.flash_size, "keep")))
      warn_at(c, a->line, a->col,
              "image %s at the %s bootloader offset 0x%x does not start with 0xE9, so flash mode/freq/size "
              "will not be written into its header", a->file, ch->name, a->offset);
  }
}

static void parse_security(mctx *c, const yaml_node_t *sn) {
  enum { S_PLAINTEXT, S__COUNT };
  static const char *const keys[S__COUNT] = {"plaintext_on_encrypted"};
  yaml_node_t *v[S__COUNT];
  if (!map_fields(c, sn, "security", keys, S__COUNT, v)) return;
  const char *s;
  if (v[S_PLAINTEXT] && get_str(c, v[S_PLAINTEXT], "security.plaintext_on_encrypted", &s)) {
    if (strcmp(s, "allow") == 0) c->m->allow_plaintext_on_encrypted = true;
    else if (strcmp(s, "refuse") == 0) c->m->allow_plaintext_on_encrypted = false;
    else err(c, v[S_PLAINTEXT], "security.plaintext_on_encrypted: '%s' (allowed: refuse, allow)", s);
  }
}

/* How a port reaches its chip, by the names the log uses. */
static bool transport_parse(const char *s, eg_usb_mode *out) {
  static const struct { const char *name; eg_usb_mode mode; } t[] = {
    {"uart", EG_USB_NONE}, {"usb-serial-jtag", EG_USB_SERIAL_JTAG}, {"usb-otg", EG_USB_OTG}};
  for (size_t i = 0; i < N(t); i++)
    if (strcmp(s, t[i].name) == 0) return *out = t[i].mode, true;
  return false;
}

static void parse_usb(mctx *c, const yaml_node_t *un, eg_mport *p) {
  enum { U_VID, U_PID, U_SERIAL, U_LOCATION, U__COUNT };
  static const char *const keys[U__COUNT] = {"vid", "pid", "serial", "location"};
  yaml_node_t *v[U__COUNT];
  p->vid = p->pid = -1;
  if (!map_fields(c, un, "usb", keys, U__COUNT, v)) return;
  if (!v[U_VID] && !v[U_PID] && !v[U_SERIAL] && !v[U_LOCATION])
    return err(c, un, "usb: give at least one of vid, pid, serial, location (an empty match would take every port)");
  int64_t x;
  if (v[U_VID] && get_int(c, v[U_VID], "usb.vid", 0, 0xFFFF, &x)) p->vid = (int)x;
  if (v[U_PID] && get_int(c, v[U_PID], "usb.pid", 0, 0xFFFF, &x)) p->pid = (int)x;
  const char *s;
  if (v[U_SERIAL] && get_str(c, v[U_SERIAL], "usb.serial", &s)) p->serial = xstrdup(c, s);
  if (v[U_LOCATION] && get_str(c, v[U_LOCATION], "usb.location", &s)) p->location = xstrdup(c, s);
}

static void parse_ports(mctx *c, const yaml_node_t *pn) {
  eg_manifest *m = c->m;
  if (pn->type != YAML_SEQUENCE_NODE) return type_error(c, pn, "ports", "a list");
  const size_t n = (size_t)(pn->data.sequence.items.top - pn->data.sequence.items.start);
  if (n == 0) return err(c, pn, "ports: at least one port is required");
  if (n > MANIFEST_MAX_PORTS)
    return err(c, pn, "ports: %zu entries, more than %d (a glob or a usb match takes many ports)", n, MANIFEST_MAX_PORTS);
  m->ports = calloc(n, sizeof *m->ports);
  if (!m->ports) {
    c->oom = true;
    return;
  }
  enum { P_SLOT, P_PATH, P_GLOB, P_USB, P_URL, P_TRANSPORT, P__COUNT };
  static const char *const keys[P__COUNT] = {"slot", "path", "glob", "usb", "url", "transport"};
  for (size_t i = 0; i < n; i++) {
    const yaml_node_t *e = node(c, pn->data.sequence.items.start[i]);
    if (!e) continue;
    char where[32];
    snprintf(where, sizeof where, "ports[%zu]", i);
    yaml_node_t *v[P__COUNT];
    if (!map_fields(c, e, where, keys, P__COUNT, v)) continue;
    eg_mport *p = &m->ports[m->nports];
    *p = (eg_mport){.vid = -1, .pid = -1, .line = (int)e->start_mark.line + 1, .col = (int)e->start_mark.column + 1};
    int kinds = 0;
    char found[64] = "";
    for (int k = P_PATH; k <= P_URL; k++)
      if (v[k]) {
        snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", kinds ? " and " : "", keys[k]);
        kinds++;
      }
    if (kinds != 1) {
      if (kinds == 0) err(c, e, "%s: needs exactly one of path, glob, usb, url (found none)", where);
      else err(c, e, "%s: needs exactly one of path, glob, usb, url (found %s)", where, found);
    }
    const char *s;
    if (v[P_SLOT] && get_label(c, v[P_SLOT], "slot", &s)) {
      if (strlen(s) >= sizeof(((eg_slot *)0)->slot)) err(c, v[P_SLOT], "slot: label longer than 63 bytes");
      for (size_t j = 0; j < m->nports; j++)
        if (m->ports[j].slot && strcmp(m->ports[j].slot, s) == 0)
          err(c, v[P_SLOT], "slot: duplicate label '%s' (also on line %d)", s, m->ports[j].line);
      p->slot = xstrdup(c, s);
    }
    /* Each given kind is checked (so every mistake is reported), even when
     * there are several; the last one stays in p (the entry is in error). */
    if (v[P_PATH] && get_str(c, v[P_PATH], "path", &s)) free(p->target), p->kind = EG_MPORT_PATH, p->target = resolve(c, s);
    if (v[P_GLOB] && get_str(c, v[P_GLOB], "glob", &s)) free(p->target), p->kind = EG_MPORT_GLOB, p->target = resolve(c, s);
    if (v[P_URL] && get_str(c, v[P_URL], "url", &s)) {
      bool ok = false;
      char label[300], why[200];
      if (!eg_port_url(s, &ok, label, sizeof label, why, sizeof why))
        err(c, v[P_URL], "url: '%s' is not socket://host:port or rfc2217://host:port", s);
      else if (!ok)
        err(c, v[P_URL], "url: '%s' is not socket://host:port or rfc2217://host:port: %s", s, why);
      free(p->target), p->kind = EG_MPORT_URL, p->target = xstrdup(c, s);
    }
    if (v[P_USB]) p->kind = EG_MPORT_USB, parse_usb(c, v[P_USB], p);
    if (v[P_TRANSPORT] && get_str(c, v[P_TRANSPORT], "transport", &s) && !transport_parse(s, &p->usb))
      err(c, v[P_TRANSPORT], "transport: '%s' (allowed: uart, usb-serial-jtag, usb-otg)", s);
    m->nports++;
  }
}

/* ---------------------------------------------------------------- load */

static void free_port(eg_mport *p) {
  free(p->slot), free(p->target), free(p->serial), free(p->location);
}

void eg_manifest_free(eg_manifest *m) {
  if (!m) return;
  for (size_t i = 0; i < m->nimages; i++) {
    eg_image_free(&m->images[i].image);
    free(m->images[i].file), free(m->images[i].path);
  }
  free(m->images);
  for (size_t i = 0; i < m->nports; i++) free_port(&m->ports[i]);
  free(m->ports);
  free(m->path), free(m->dir), free(m->text), free(m->station), free(m->db_path), free(m->stub_path);
  memset(m, 0, sizeof *m);
}

/* Line/column of a byte offset, for libyaml reader errors (which carry an
 * offset, not a mark). */
static void offset_pos(const char *text, size_t len, size_t off, int *line, int *col) {
  *line = 1, *col = 1;
  for (size_t i = 0; i < off && i < len; i++) {
    if (text[i] == '\n') (*line)++, *col = 1;
    else if (((unsigned char)text[i] & 0xC0) != 0x80) (*col)++;
  }
}

static void syntax_error(mctx *c, const yaml_parser_t *p) {
  int line, col;
  if (p->error == YAML_READER_ERROR) {
    offset_pos(c->m->text, c->m->text_len, p->problem_offset, &line, &col);
    err_at(c, line, col, "YAML error: %s", p->problem ? p->problem : "cannot read the file");
    return;
  }
  line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
  if (p->context)
    err_at(c, line, col, "YAML syntax error: %s %s (line %d, column %d)", p->problem ? p->problem : "error",
           p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
  else
    err_at(c, line, col, "YAML syntax error: %s", p->problem ? p->problem : "error");
}

/* An existing log must be a regular file: SQLite would report a FIFO or a
 * folder as a database error (exit 3) once the run has started; here it is
 * the manifest's mistake. (A log that does not exist yet is created.) */
static void check_database(mctx *c, const yaml_node_t *n) {
  const char *db = c->m->db_path;
  struct stat st;
  eg_fault f;
  eg_fault_clear(&f);
  if (stat(db, &st) == 0 && eg_file_check_regular(db, NULL, &f) != EG_OK) err(c, n, "database: %s %s", db, f.msg);
}

static void parse_root(mctx *c, const yaml_node_t *root) {
  eg_manifest *m = c->m;
  yaml_node_t *v[R__COUNT];
  if (!map_fields(c, root, "manifest", root_keys, R__COUNT, v)) return;
  static const int required[] = {R_STATION, R_CHIP, R_IMAGES, R_PORTS};
  for (size_t i = 0; i < N(required); i++)
    if (!v[required[i]]) err(c, root, "missing required key '%s'", root_keys[required[i]]);

  const char *s;
  int64_t x;
  if (v[R_STATION] && get_label(c, v[R_STATION], "station", &s)) m->station = xstrdup(c, s);
  if (v[R_DATABASE] && get_str(c, v[R_DATABASE], "database", &s) && (m->db_path = resolve(c, s))) check_database(c, v[R_DATABASE]);
  if (v[R_CHIP] && get_str(c, v[R_CHIP], "chip", &s)) {
    if (strcmp(s, "auto") == 0) {
      c->chip_ok = true; /* whatever answers; images per chip say which chips may */
    } else if ((m->set.chip = eg_chip_by_name(s))) {
      c->chip_ok = true;
    } else {
      char names[256];
      err(c, v[R_CHIP], "chip: unknown chip '%s' (known: auto, %s)", s, eg_chip_names(names, sizeof names, ", "));
    }
  }
  if (v[R_IMAGES]) parse_images(c, v[R_IMAGES]);
  if (v[R_FLASH]) parse_flash(c, v[R_FLASH]);
  /* The bootloader's offset and header codes are the chip's: with chip:
   * auto and one list for every chip, nothing says which chip to patch for. */
  if (v[R_FLASH] && c->chip_ok && !m->set.chip && !m->images_per_chip &&
      (strcmp(m->set.flash_mode, "keep") || strcmp(m->set.flash_freq, "keep") || strcmp(m->set.flash_size, "keep") != 0))
    err(c, v[R_FLASH], "flash: with chip: auto and one image list, the bootloader header cannot be patched (which "
        "chip's?): keep mode/freq/size, or give images per chip (images: {esp32: [...], esp32s3: [...]})");
  if (v[R_BAUD] && get_int(c, v[R_BAUD], "baud", EG_BAUD_MIN, EG_BAUD_MAX, &x)) m->set.baud = (uint32_t)x;
  if (v[R_CONNECT_BAUD] && get_int(c, v[R_CONNECT_BAUD], "connect_baud", EG_BAUD_MIN, EG_BAUD_MAX, &x))
    m->set.connect_baud = (uint32_t)x;
  if (v[R_BEFORE] && get_str(c, v[R_BEFORE], "before", &s) && !eg_before_parse(s, &m->set.before))
    err(c, v[R_BEFORE], "before: unknown reset '%s' (allowed: default-reset, usb-reset, no-reset, no-reset-no-sync; "
        "'_' may stand for '-')", s);
  if (v[R_AFTER] && get_str(c, v[R_AFTER], "after", &s) && !eg_after_parse(s, &m->set.after))
    err(c, v[R_AFTER], "after: unknown action '%s' (allowed: hard-reset, soft-reset, no-reset, no-reset-stub; "
        "'_' may stand for '-')", s);
  if (v[R_STUB] && get_str(c, v[R_STUB], "stub", &s)) {
    if (strcmp(s, "auto") == 0) m->set.stub_mode = EG_STUB_AUTO;
    else if (strcmp(s, "none") == 0) m->set.stub_mode = EG_STUB_NONE;
    else {
      struct stat st;
      m->set.stub_mode = EG_STUB_PATH;
      m->set.stub_path = m->stub_path = resolve(c, s);
      if (m->set.stub_path && stat(m->set.stub_path, &st) != 0)
        err(c, v[R_STUB], "stub: %s: %s (give auto, none, a stub .json file or a folder)", m->set.stub_path, strerror(errno));
      else if (m->set.stub_path && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        err(c, v[R_STUB], "stub: %s is neither a regular file nor a folder (give auto, none, a stub .json file or a folder)",
            m->set.stub_path);
    }
  }
  if (v[R_ERASE] && get_str(c, v[R_ERASE], "erase", &s) && !eg_erase_parse(s, &m->set.erase))
    err(c, v[R_ERASE], "erase: unknown policy '%s' (allowed: written, all)", s);
  if (v[R_VERIFY]) get_bool(c, v[R_VERIFY], "verify", &m->set.verify);
  bool compress;
  if (v[R_COMPRESS] && get_bool(c, v[R_COMPRESS], "compress", &compress)) m->set.compress = compress;
  if (v[R_RETRIES] && get_int(c, v[R_RETRIES], "retries", 0, EG_RETRIES_MAX, &x)) m->set.retries = (int)x;
  if (v[R_TIMEOUTS]) parse_timeouts(c, v[R_TIMEOUTS]);
  if (v[R_IMAGES]) check_images(c);
  if (v[R_SKIP_FLASHED]) get_bool(c, v[R_SKIP_FLASHED], "skip_flashed", &m->set.skip_flashed);
  if (v[R_SECURITY]) parse_security(c, v[R_SECURITY]);
  if (v[R_PORTS]) parse_ports(c, v[R_PORTS]);
}

/* Refuse a document nested deeper than MANIFEST_MAX_DEPTH or holding more
 * than MANIFEST_MAX_ANCHORS anchors, at the first node over the limit,
 * walking libyaml's events (no recursion, no document built). Why before
 * the document is loaded: libyaml costs O(N^2) for both. Its scanner
 * re-checks every pending simple key (one per open flow collection) for
 * each token, so 200,000 levels of "[" (400 KB) take minutes; its loader
 * compares each new anchor with every earlier one and looks each alias up
 * in a list, so 90,000 anchors take tens of seconds. The walk stops at the
 * first node over a limit, before the cost grows. A syntax error is left
 * for the document loader to report. */
static bool check_shape(mctx *c) {
  yaml_parser_t p;
  yaml_event_t ev;
  if (!yaml_parser_initialize(&p)) return c->oom = true, false;
  yaml_parser_set_input_string(&p, (const unsigned char *)c->m->text, c->m->text_len);
  int depth = 0, anchors = 0;
  bool ok = true;
  for (;;) {
    if (!yaml_parser_parse(&p, &ev)) break;
    const yaml_event_type_t t = ev.type;
    const int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
    const bool anchored = (t == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
                          (t == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor) ||
                          (t == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor);
    if (anchored && ++anchors > MANIFEST_MAX_ANCHORS) {
      err_at(c, line, col, "more than %d anchors (&name); is it a manifest?", MANIFEST_MAX_ANCHORS);
      ok = false;
    } else if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
      if (++depth > MANIFEST_MAX_DEPTH) {
        err_at(c, line, col, "nested more than %d levels deep (a manifest needs 4); is it a manifest?",
               MANIFEST_MAX_DEPTH);
        ok = false;
      }
    } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
      depth--;
    }
    yaml_event_delete(&ev);
    if (!ok || t == YAML_STREAM_END_EVENT) break;
  }
  yaml_parser_delete(&p);
  return ok;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* Parse and validate m->text (owned by m from here on). */
static eg_err load_text(eg_manifest *m, const char *path, eg_diag_cb cb, void *ctx);

eg_err eg_manifest_load(eg_manifest *m, const char *path, eg_diag_cb cb, void *ctx) {
  memset(m, 0, sizeof *m);
  eg_fault f;
  eg_fault_clear(&f);
  uint8_t *text = NULL;
  size_t len = 0;
  /* Regular files only (a FIFO or a device would block or never end). */
  const eg_err r = eg_file_read(path, NULL, MANIFEST_MAX_BYTES, EG_MANIFEST, 1, &text, &len, &f);
  if (r != EG_OK) {
    /* The callback gets the path as the file name: the message does not repeat it. */
    char why[300];
    snprintf(why, sizeof why, "cannot %s the manifest: %s", r == EG_FILE_OPEN ? "open" : "read", f.msg);
    if (cb) cb(ctx, path, 0, 0, why);
    return r;
  }
  m->text = (char *)text; /* NUL-terminated: one byte of slack, zeroed */
  m->text_len = len;
  return load_text(m, path, cb, ctx);
}

eg_err eg_manifest_load_mem(eg_manifest *m, const char *path, const char *text, size_t len, eg_diag_cb cb, void *ctx) {
  memset(m, 0, sizeof *m);
  if (len > MANIFEST_MAX_BYTES) {
    char why[128];
    snprintf(why, sizeof why, "cannot read the manifest: %zu bytes, more than the %u-byte limit", len, MANIFEST_MAX_BYTES);
    if (cb) cb(ctx, path, 0, 0, why);
    return EG_MANIFEST;
  }
  if (!(m->text = malloc(len + 1))) return EG_NOMEM;
  if (len) memcpy(m->text, text, len);
  m->text[len] = '\0';
  m->text_len = len;
  return load_text(m, path, cb, ctx);
}

static eg_err load_text(eg_manifest *m, const char *path, eg_diag_cb cb, void *ctx) {
  mctx c = {.file = path, .m = m};
  eg_sha256((const uint8_t *)m->text, m->text_len, m->sha256);
  m->path = strdup(path);
  m->dir = dir_of(path);
  if (!m->path || !m->dir) {
    eg_manifest_free(m);
    return EG_NOMEM;
  }
  eg_settings_default(&m->set); /* the one set of defaults (options.h) */

  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    eg_manifest_free(m);
    return EG_NOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)m->text, m->text_len);
  c.doc = &doc;
  if (!check_shape(&c)) {
    /* reported; the document is never built */
  } else if (!yaml_parser_load(&parser, &doc)) {
    syntax_error(&c, &parser);
  } else {
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) err_at(&c, 1, 1, "the manifest is empty");
    else {
      parse_root(&c, root);
      /* A second document would be silently ignored by a YAML reader that
       * only takes the first; refuse it. */
      yaml_document_t more;
      if (!yaml_parser_load(&parser, &more)) syntax_error(&c, &parser);
      else {
        const yaml_node_t *r2 = yaml_document_get_root_node(&more);
        if (r2) err_at(&c, (int)more.start_mark.line + 1, (int)more.start_mark.column + 1,
                       "only one YAML document is allowed in a manifest");
        yaml_document_delete(&more);
      }
    }
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);

  if (!m->db_path && !c.oom && asprintf(&m->db_path, "%s/espgang.db", m->dir) < 0) m->db_path = NULL, c.oom = true;
  const bool failed = c.nerrors > 0 || c.oom;
  flush_diags(&c, cb, ctx);
  if (failed) {
    eg_manifest_free(m);
    return c.oom && !c.nerrors ? EG_NOMEM : EG_MANIFEST;
  }
  return EG_OK;
}

/* ---------------------------------------------------------------- slots */

typedef struct slots_ctx {
  mctx c;
  eg_slot *slots;
  char **ident; /* resolved identity of each slot's port, for duplicates */
  const eg_mport **from;
  size_t n, cap;
  eg_port_info *ports;
  size_t nports;
  bool listed;
  eg_err list_err;
  bool allow_absent; /* a station: a path may appear later */
} slots_ctx;

static int vers_cmp(const void *a, const void *b) {
  return strverscmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static void add_slot(slots_ctx *s, const eg_mport *mp, const char *label, const char *port, const char *location,
                     const char *ident, eg_usb_mode usb) {
  mctx *c = &s->c;
  /* A label taken from a port's file name (glob, usb) may hold anything. */
  size_t at = 0;
  if (eg_text_has_control(label, strlen(label), &at))
    return err_at(c, mp->line, mp->col, "slot label '%s' (from port %s) contains a control character at byte %zu; "
                  "give the entry a slot: name", label, port, at + 1);
  if (strlen(label) >= sizeof s->slots[0].slot)
    return err_at(c, mp->line, mp->col, "slot label '%s' is longer than 63 bytes", label);
  if (strlen(port) >= sizeof s->slots[0].port)
    return err_at(c, mp->line, mp->col, "port name '%s' is longer than 255 bytes", port);
  for (size_t i = 0; i < s->n; i++) {
    if (strcmp(s->slots[i].slot, label) == 0)
      return err_at(c, mp->line, mp->col, "slot label '%s' is used twice (also by the entry on line %d)", label,
                    s->from[i]->line);
    if (strcmp(s->ident[i], ident) == 0)
      return err_at(c, mp->line, mp->col, "port %s (slot %s) is the same port as slot %s (entry on line %d)", port,
                    label, s->slots[i].slot, s->from[i]->line);
  }
  if (s->n == s->cap) {
    const size_t cap = s->cap ? 2 * s->cap : 16;
    eg_slot *ns = realloc(s->slots, cap * sizeof *ns);
    if (ns) s->slots = ns;
    char **ni = realloc(s->ident, cap * sizeof *ni);
    if (ni) s->ident = ni;
    const eg_mport **nf = realloc(s->from, cap * sizeof *nf);
    if (nf) s->from = nf;
    if (!ns || !ni || !nf) {
      c->oom = true;
      return;
    }
    s->cap = cap;
  }
  eg_slot *sl = &s->slots[s->n];
  memset(sl, 0, sizeof *sl);
  snprintf(sl->slot, sizeof sl->slot, "%s", label);
  snprintf(sl->port, sizeof sl->port, "%s", port);
  snprintf(sl->usb_location, sizeof sl->usb_location, "%s", location ? location : "");
  sl->usb = mp->usb != EG_USB_NONE ? mp->usb : usb;
  if (!(s->ident[s->n] = strdup(ident))) {
    c->oom = true;
    return;
  }
  s->from[s->n] = mp;
  s->n++;
}

static void list_ports(slots_ctx *s) {
  if (s->listed) return;
  s->listed = true;
  s->list_err = eg_port_list(&s->ports, &s->nports);
  if (s->list_err != EG_OK) s->ports = NULL, s->nports = 0;
}

/* A device path or symlink: the resolved device is its identity; a USB
 * location is filled in when the OS lists it. */
static void add_path_slot(slots_ctx *s, const eg_mport *mp, const char *label, const char *path) {
  char real[PATH_MAX];
  struct stat st;
  if (stat(path, &st) != 0) {
    if (s->allow_absent && errno == ENOENT) return add_slot(s, mp, label, path, NULL, path, EG_USB_NONE);
    return err_at(&s->c, mp->line, mp->col, "port %s: %s", path, strerror(errno));
  }
  if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
  const char *location = NULL;
  eg_usb_mode usb = EG_USB_NONE;
  list_ports(s);
  for (size_t i = 0; i < s->nports; i++) {
    char pr[PATH_MAX];
    if (!realpath(s->ports[i].name, pr) || strcmp(pr, real) != 0) continue;
    if (s->ports[i].location[0]) location = s->ports[i].location;
    if (s->ports[i].usb) usb = eg_chip_usb_mode(s->ports[i].vid, s->ports[i].pid, NULL);
  }
  add_slot(s, mp, label, path, location, real, usb);
}

static void expand_glob(slots_ctx *s, const eg_mport *mp) {
  glob_t g;
  const int r = glob(mp->target, GLOB_NOSORT, NULL, &g);
  if (r == GLOB_NOMATCH || (r == 0 && g.gl_pathc == 0)) {
    if (r == 0) globfree(&g);
    return err_at(&s->c, mp->line, mp->col, "glob %s matches no port", mp->target);
  }
  if (r != 0) {
    if (r == GLOB_NOSPACE) s->c.oom = true;
    return err_at(&s->c, mp->line, mp->col, "glob %s cannot be read", mp->target);
  }
  /* Natural order, so /dev/ttyUSB2 comes before /dev/ttyUSB10. */
  qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, vers_cmp);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    char label[PATH_MAX];
    if (mp->slot && g.gl_pathc > 1) snprintf(label, sizeof label, "%s-%zu", mp->slot, i + 1);
    else snprintf(label, sizeof label, "%s", mp->slot ? mp->slot : base_name(g.gl_pathv[i]));
    add_path_slot(s, mp, label, g.gl_pathv[i]);
  }
  globfree(&g);
}

static void expand_usb(slots_ctx *s, const eg_mport *mp) {
  list_ports(s);
  char what[256];
  int len = snprintf(what, sizeof what, "no USB serial port matches");
  if (mp->vid >= 0) len += snprintf(what + len, sizeof what - (size_t)len, " vid 0x%04x", mp->vid);
  if (mp->pid >= 0) len += snprintf(what + len, sizeof what - (size_t)len, " pid 0x%04x", mp->pid);
  if (mp->serial) len += snprintf(what + len, sizeof what - (size_t)len, " serial %s", mp->serial);
  if (mp->location) len += snprintf(what + len, sizeof what - (size_t)len, " location %s", mp->location);
  if (s->list_err != EG_OK)
    return err_at(&s->c, mp->line, mp->col, "%s (cannot list serial ports: %s)", what, eg_strerror(s->list_err));
  size_t nmatch = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t k = 0;
    for (size_t i = 0; i < s->nports; i++) {
      const eg_port_info *pi = &s->ports[i];
      if (!pi->usb || (mp->vid >= 0 && pi->vid != mp->vid) || (mp->pid >= 0 && pi->pid != mp->pid) ||
          (mp->serial && strcmp(pi->serial, mp->serial) != 0) || (mp->location && strcmp(pi->location, mp->location) != 0))
        continue;
      if (pass == 0) {
        nmatch++;
        continue;
      }
      k++;
      char label[PATH_MAX], real[PATH_MAX];
      if (mp->slot && nmatch > 1) snprintf(label, sizeof label, "%s-%zu", mp->slot, k);
      else snprintf(label, sizeof label, "%s", mp->slot ? mp->slot : base_name(pi->name));
      if (!realpath(pi->name, real)) snprintf(real, sizeof real, "%s", pi->name);
      /* The by-path name survives re-enumeration (native USB chips come
       * back as a new ttyACM after a reset); prefer it for opening. */
      add_slot(s, mp, label, pi->by_path[0] ? pi->by_path : pi->name, pi->location, real,
               eg_chip_usb_mode(pi->vid, pi->pid, NULL));
    }
  }
  if (!nmatch) err_at(&s->c, mp->line, mp->col, "%s", what);
}

static eg_err expand_slots(const eg_manifest *m, bool allow_absent, eg_slot **out, size_t *count, eg_diag_cb cb,
                           void *ctx) {
  *out = NULL, *count = 0;
  slots_ctx s = {.c = {.file = m->path, .m = (eg_manifest *)m}, .allow_absent = allow_absent};
  for (size_t i = 0; i < m->nports; i++) {
    const eg_mport *mp = &m->ports[i];
    switch (mp->kind) {
    case EG_MPORT_PATH:
      add_path_slot(&s, mp, mp->slot ? mp->slot : base_name(mp->target), mp->target);
      break;
    case EG_MPORT_GLOB: expand_glob(&s, mp); break;
    case EG_MPORT_USB: expand_usb(&s, mp); break;
    case EG_MPORT_URL: {
      bool ok = false;
      char label[300], why[200];
      const bool url = eg_port_url(mp->target, &ok, label, sizeof label, why, sizeof why);
      add_slot(&s, mp, mp->slot ? mp->slot : url && ok ? label : mp->target, mp->target, NULL, mp->target,
               EG_USB_NONE);
      break;
    }
    }
  }
  if (s.listed && s.ports) eg_port_list_free(s.ports, s.nports);
  for (size_t i = 0; i < s.n; i++) free(s.ident[i]);
  free(s.ident);
  free(s.from);
  const bool failed = s.c.nerrors > 0 || s.c.oom;
  const int nerrors = s.c.nerrors;
  flush_diags(&s.c, cb, ctx);
  if (failed) {
    free(s.slots);
    return nerrors ? EG_MANIFEST : EG_NOMEM;
  }
  *out = s.slots, *count = s.n;
  return EG_OK;
}

eg_err eg_manifest_slots(const eg_manifest *m, eg_slot **out, size_t *count, eg_diag_cb cb, void *ctx) {
  return expand_slots(m, false, out, count, cb, ctx);
}

eg_err eg_manifest_station_slots(const eg_manifest *m, eg_slot **out, size_t *count, eg_diag_cb cb, void *ctx) {
  return expand_slots(m, true, out, count, cb, ctx);
}
