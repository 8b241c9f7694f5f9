/* stubfile.c - Espressif flasher stub JSON files: parse (libyaml event API)
 * and find (stubfile.h). Facts: ../shared/docs/esp-serial-protocol.md §8.1;
 * esptool v5 loader.py StubFlasher, esptool v4.2-v4.7 get_stub_json_path,
 * esptool-js lib/stubFlasher.js (read for behaviour only).
 */
#include "stubfile.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include <openssl/evp.h>

#include "fileio.h"

/* Stub files are tens of KB (the largest, with plugins, ~100 KB); anything
 * far bigger is not a stub. */
#define STUB_FILE_MAX (16u << 20)
/* Unknown keys may hold nested values (plugins: a few levels). libyaml's
 * scanner costs O(depth) per token inside flow collections, so a file of
 * millions of '[' would take hours: deeper than this is refused. */
#define STUB_MAX_DEPTH 64

/* ------------------------------------------------------------ messages */

/* Every format error: "stub file <name>: [line L, column C: ]<problem>". */
static eg_err fmt_err(eg_fault *f, const char *name, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static eg_err fmt_err(eg_fault *f, const char *name, const yaml_mark_t *mark, const char *fmt, ...) {
  char problem[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(problem, sizeof problem, fmt, ap);
  va_end(ap);
  if (mark) /* libyaml counts from 0; editors count from 1 */
    return eg_fault_set(f, EG_STUB_FORMAT, EG_STAGE_NONE, -1, "stub file %s: line %zu, column %zu: %s", name,
                        mark->line + 1, mark->column + 1, problem);
  return eg_fault_set(f, EG_STUB_FORMAT, EG_STAGE_NONE, -1, "stub file %s: %s", name, problem);
}

/* A scalar shown in a message: at most 24 bytes, non-printables as '?'. */
static const char *show(char *buf, size_t cap, const unsigned char *v, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 4 < cap && i < 24; i++) buf[o++] = v[i] >= 0x20 && v[i] < 0x7F ? (char)v[i] : '?';
  if (n > 24 && o + 4 < cap) buf[o++] = '.', buf[o++] = '.', buf[o++] = '.';
  buf[o] = '\0';
  return buf;
}

/* ------------------------------------------------------------ values */

/* JSON numbers as esptool writes them (decimal; esptool-js too), or hex
 * ("0x400A8000", quoted or plain) as people write them by hand. No sign, no
 * fraction, no exponent, no octal: a leading 0 before more digits would mean
 * octal in YAML 1.1 and is invalid JSON, so it is refused rather than guessed. */
static bool parse_u32(const unsigned char *v, size_t n, uint32_t *out) {
  uint64_t acc = 0;
  if (n == 0) return false;
  if (n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    for (size_t i = 2; i < n; i++) {
      const unsigned char c = v[i];
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      acc = acc << 4 | (uint64_t)d;
      if (acc > UINT32_MAX) return false;
    }
  } else {
    if (n > 1 && v[0] == '0') return false;
    for (size_t i = 0; i < n; i++) {
      if (v[i] < '0' || v[i] > '9') return false;
      acc = acc * 10 + (uint64_t)(v[i] - '0');
      if (acc > UINT32_MAX) return false;
    }
  }
  *out = (uint32_t)acc;
  return true;
}

static bool is_b64(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Standard base64 as Python's base64.b64decode accepts what esptool ships:
 * whitespace is skipped, '=' padding is required (the character count is a
 * multiple of 4) and only at the end. Stricter than Python in one way: other
 * characters are refused rather than silently dropped, since in a stub they
 * can only mean a damaged file. The checks are ours (with positions for the
 * message); the decoding is libcrypto's EVP_DecodeBlock, which would accept
 * '=' anywhere and counts the '=' of the last group as zero bytes in its
 * result, so that count is taken off. Returns NULL with *why set on error;
 * an empty input gives a non-NULL buffer and *outlen 0. */
static uint8_t *b64_decode(const unsigned char *in, size_t n, size_t *outlen, char *why, size_t whylen) {
  unsigned char *packed = malloc(n + 1); /* the input without whitespace */
  uint8_t *out = NULL;
  size_t m = 0, pad = 0;
  if (!packed) {
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const unsigned char c = in[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      if (++pad > 2) {
        snprintf(why, whylen, "too much '=' padding at character %zu", i + 1);
        goto out;
      }
    } else if (!is_b64(c)) {
      snprintf(why, whylen, "invalid base64 character 0x%02x at character %zu", c, i + 1);
      goto out;
    } else if (pad) {
      snprintf(why, whylen, "base64 data after '=' padding at character %zu", i + 1);
      goto out;
    }
    packed[m++] = c;
  }
  if (m % 4) {
    snprintf(why, whylen, "base64 length %zu is not a multiple of 4 (incorrect padding)", m);
    goto out;
  }
  if (m > INT_MAX) { /* EVP_DecodeBlock takes an int; stub files are capped far below */
    snprintf(why, whylen, "base64 text too long");
    goto out;
  }
  if (!(out = malloc(m / 4 * 3 + 1))) {
    snprintf(why, whylen, "out of memory");
    goto out;
  }
  const int r = EVP_DecodeBlock(out, packed, (int)m);
  if (r < 0 || (size_t)r < pad) { /* cannot happen after the checks above */
    snprintf(why, whylen, "libcrypto refused the base64 text");
    free(out);
    out = NULL;
    goto out;
  }
  *outlen = (size_t)r - pad;
out:
  free(packed);
  return out;
}

/* ------------------------------------------------------------ parser */

enum { K_TEXT, K_TEXT_START, K_ENTRY, K_DATA, K_DATA_START, K_BSS_START, K__COUNT };
static const char *const key_names[K__COUNT] = {"text", "text_start", "entry", "data", "data_start", "bss_start"};

typedef struct parse {
  yaml_parser_t p;
  yaml_event_t ev;
  bool have_ev;
  const char *name;
  eg_fault *f;
} parse;

/* Next event into ps->ev (the previous one is released). libyaml's own
 * errors carry a mark; its context ("while parsing a flow mapping") helps. */
static eg_err next(parse *ps) {
  if (ps->have_ev) yaml_event_delete(&ps->ev);
  ps->have_ev = false;
  if (!yaml_parser_parse(&ps->p, &ps->ev)) {
    const char *problem = ps->p.problem ? ps->p.problem : "malformed YAML/JSON";
    if (ps->p.context)
      return fmt_err(ps->f, ps->name, &ps->p.problem_mark, "%s (%s)", problem, ps->p.context);
    return fmt_err(ps->f, ps->name, &ps->p.problem_mark, "%s", problem);
  }
  ps->have_ev = true;
  return EG_OK;
}

/* Skip the value that starts with the current event (a scalar, an alias, or
 * a whole mapping/sequence), so unknown keys may hold anything up to
 * STUB_MAX_DEPTH levels. libyaml's parser keeps its own stacks on the heap,
 * so depth costs memory, not C stack. */
static eg_err skip_value(parse *ps) {
  size_t depth = 0;
  for (;;) {
    switch (ps->ev.type) {
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      if (++depth >= STUB_MAX_DEPTH) /* the top-level object is one more level */
        return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "nested more than %d levels deep", STUB_MAX_DEPTH);
      break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
      if (depth == 0) return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "a key without a value");
      depth--;
      break;
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT: break;
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
      return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "unexpected end of a value");
    }
    if (depth == 0) return EG_OK;
    eg_err e = next(ps);
    if (e != EG_OK) return e;
  }
}

static const char *event_what(yaml_event_type_t t) {
  switch (t) {
  case YAML_MAPPING_START_EVENT: return "an object";
  case YAML_SEQUENCE_START_EVENT: return "an array";
  case YAML_ALIAS_EVENT: return "a YAML alias";
  case YAML_SCALAR_EVENT: return "a value";
  case YAML_NO_EVENT:
  case YAML_STREAM_START_EVENT:
  case YAML_STREAM_END_EVENT:
  case YAML_DOCUMENT_START_EVENT:
  case YAML_DOCUMENT_END_EVENT:
  case YAML_MAPPING_END_EVENT:
  case YAML_SEQUENCE_END_EVENT: break;
  }
  return "nothing";
}

/* One known key's value (ps->ev, already checked to be a scalar). */
static eg_err take_value(parse *ps, eg_stub *s, int k) {
  const unsigned char *v = ps->ev.data.scalar.value;
  const size_t n = ps->ev.data.scalar.length;
  const yaml_mark_t *m = &ps->ev.start_mark;
  char shown[32], why[96];
  switch (k) {
  case K_TEXT:
  case K_DATA: {
    size_t len = 0;
    uint8_t *bytes = b64_decode(v, n, &len, why, sizeof why);
    if (!bytes) return fmt_err(ps->f, ps->name, m, "key '%s': %s", key_names[k], why);
    if (k == K_TEXT) {
      if (len == 0) {
        free(bytes);
        return fmt_err(ps->f, ps->name, m, "key 'text' is empty");
      }
      s->text = bytes;
      s->text_len = len;
    } else if (len == 0) { /* no data segment to upload */
      free(bytes);
    } else {
      s->data = bytes;
      s->data_len = len;
    }
    return EG_OK;
  }
  case K_TEXT_START:
  case K_ENTRY:
  case K_DATA_START:
  case K_BSS_START: {
    uint32_t u;
    if (!parse_u32(v, n, &u))
      return fmt_err(ps->f, ps->name, m, "key '%s': '%s' is not a 32-bit unsigned integer (decimal or 0x hex)",
                     key_names[k], show(shown, sizeof shown, v, n));
    if (k == K_TEXT_START) s->text_start = u;
    else if (k == K_ENTRY) s->entry = u;
    else if (k == K_DATA_START) s->data_start = u;
    else s->bss_start = u, s->has_bss = true;
    return EG_OK;
  }
  }
  return EG_INVAL;
}

static eg_err parse_doc(parse *ps, eg_stub *s) {
  bool seen[K__COUNT] = {false};
  yaml_mark_t key_mark[K__COUNT];
  eg_err e;
  if ((e = next(ps)) != EG_OK) return e;
  if (ps->ev.type != YAML_STREAM_START_EVENT) return fmt_err(ps->f, ps->name, NULL, "no YAML/JSON stream");
  if ((e = next(ps)) != EG_OK) return e;
  if (ps->ev.type == YAML_STREAM_END_EVENT) return fmt_err(ps->f, ps->name, NULL, "the file holds no JSON object");
  if (ps->ev.type != YAML_DOCUMENT_START_EVENT) return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "no document");
  if ((e = next(ps)) != EG_OK) return e;
  if (ps->ev.type != YAML_MAPPING_START_EVENT)
    return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "expected a JSON object, found %s", event_what(ps->ev.type));
  const yaml_mark_t map_mark = ps->ev.start_mark;
  for (;;) {
    if ((e = next(ps)) != EG_OK) return e;
    if (ps->ev.type == YAML_MAPPING_END_EVENT) break;
    if (ps->ev.type != YAML_SCALAR_EVENT)
      return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "expected a key, found %s", event_what(ps->ev.type));
    int k = -1;
    for (int i = 0; i < K__COUNT; i++)
      if (ps->ev.data.scalar.length == strlen(key_names[i]) &&
          memcmp(ps->ev.data.scalar.value, key_names[i], ps->ev.data.scalar.length) == 0)
        k = i;
    const yaml_mark_t km = ps->ev.start_mark;
    if ((e = next(ps)) != EG_OK) return e;
    if (k < 0) { /* plugin_*, plugins, anything newer: not ours */
      if ((e = skip_value(ps)) != EG_OK) return e;
      continue;
    }
    if (seen[k])
      return fmt_err(ps->f, ps->name, &km, "key '%s' appears twice (first at line %zu)", key_names[k],
                     key_mark[k].line + 1);
    seen[k] = true;
    key_mark[k] = km;
    if (ps->ev.type != YAML_SCALAR_EVENT)
      return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "key '%s': expected %s, found %s", key_names[k],
                     k == K_TEXT || k == K_DATA ? "a base64 string" : "an integer", event_what(ps->ev.type));
    if ((e = take_value(ps, s, k)) != EG_OK) return e;
  }
  if ((e = next(ps)) != EG_OK) return e; /* DOCUMENT_END */
  if ((e = next(ps)) != EG_OK) return e;
  if (ps->ev.type != YAML_STREAM_END_EVENT)
    return fmt_err(ps->f, ps->name, &ps->ev.start_mark, "more than one document (only one JSON object is allowed)");

  /* esptool reads text, text_start and entry unconditionally (KeyError
   * otherwise) and data_start together with data. */
  static const int required[] = {K_TEXT, K_TEXT_START, K_ENTRY};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    if (!seen[required[i]])
      return fmt_err(ps->f, ps->name, &map_mark, "required key '%s' is missing", key_names[required[i]]);
  if (seen[K_DATA] && !seen[K_DATA_START])
    return fmt_err(ps->f, ps->name, &key_mark[K_DATA], "key 'data' without 'data_start'");
  /* The chip's address space is 32 bits: a segment must not wrap around. */
  if ((uint64_t)s->text_start + s->text_len > (uint64_t)UINT32_MAX + 1)
    return fmt_err(ps->f, ps->name, &key_mark[K_TEXT], "text (%zu bytes at 0x%08x) runs past the 32-bit address space",
                   s->text_len, s->text_start);
  if (s->data && (uint64_t)s->data_start + s->data_len > (uint64_t)UINT32_MAX + 1)
    return fmt_err(ps->f, ps->name, &key_mark[K_DATA], "data (%zu bytes at 0x%08x) runs past the 32-bit address space",
                   s->data_len, s->data_start);
  return EG_OK;
}

eg_err eg_stub_load_mem(eg_stub *s, const char *buf, size_t len, const char *name, eg_fault *f) {
  memset(s, 0, sizeof *s);
  if (!name) name = "(memory)";
  snprintf(s->path, sizeof s->path, "%s", name);
  parse ps;
  memset(&ps, 0, sizeof ps);
  ps.name = name;
  ps.f = f;
  if (!yaml_parser_initialize(&ps.p)) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "stub file %s: out of memory", name);
  yaml_parser_set_input_string(&ps.p, (const unsigned char *)(buf ? buf : ""), buf ? len : 0);
  const eg_err e = parse_doc(&ps, s);
  if (ps.have_ev) yaml_event_delete(&ps.ev);
  yaml_parser_delete(&ps.p);
  if (e != EG_OK) {
    free(s->text);
    free(s->data);
    memset(s, 0, sizeof *s);
  }
  return e;
}

eg_err eg_stub_load(eg_stub *s, const char *path, eg_fault *f) {
  memset(s, 0, sizeof *s);
  uint8_t *buf;
  size_t len;
  eg_err e = eg_file_read(path, "stub file", STUB_FILE_MAX, EG_STUB_FORMAT, 0, &buf, &len, f);
  if (e != EG_OK) return e;
  e = eg_stub_load_mem(s, (const char *)buf, len, path, f);
  free(buf);
  return e;
}

void eg_stub_free(eg_stub *s) {
  if (!s) return;
  free(s->text);
  free(s->data);
  memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------ finding */

static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The search and what it has looked at so far (for EG_STUB_NOT_FOUND). */
typedef struct finder {
  const eg_chip *chip;
  const char *name; /* the JSON base name: chip->arg_name, or another build's (chip->stub_old) */
  char *out;
  size_t outlen;
  eg_fault *f;
  eg_err found; /* EG_OK once a file was chosen, EG_INVAL if it did not fit */
  char looked[1024];
  size_t nlooked;
} finder;

static void looked(finder *fd, const char *where) {
  if (fd->nlooked >= sizeof fd->looked - 1) return;
  fd->nlooked += (size_t)snprintf(fd->looked + fd->nlooked, sizeof fd->looked - fd->nlooked, "%s%s",
                                  fd->nlooked ? ", " : "", where);
  if (fd->nlooked > sizeof fd->looked - 1) fd->nlooked = sizeof fd->looked - 1;
}

/* Try dir + "/" + rel; true when the file exists (then fd->found says
 * whether it could be returned). "/" + rel for dir "/" avoids "//". */
static bool try(finder *fd, const char *dir, const char *rel) {
  char p[PATH_MAX + 256];
  const size_t dl = strlen(dir);
  const int n = snprintf(p, sizeof p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", rel);
  if (n < 0 || (size_t)n >= sizeof p || !is_file(p)) return false;
  if ((size_t)n >= fd->outlen) {
    fd->found = eg_fault_set(fd->f, EG_INVAL, EG_STAGE_NONE, -1, "stub file path too long: %s", p);
    return true;
  }
  memcpy(fd->out, p, (size_t)n + 1);
  fd->found = EG_OK;
  return true;
}

/* "32" for esp32, "8266" for esp8266, "32s3" for esp32s3: esptool 4.2-4.7
 * named its files stub_flasher_<this>.json (CHIP_NAME lowercased, "-", "(",
 * ")" dropped, then "esp" removed). */
static void v4_name(const eg_chip *chip, char *buf, size_t cap) {
  const char *a = chip->arg_name;
  snprintf(buf, cap, "stub_flasher_%s.json", strncmp(a, "esp", 3) == 0 ? a + 3 : a);
}

/* A stub folder: <name>.json, 2/<name>.json, 1/<name>.json, and for the
 * chip's own stub the esptool 4 name (esptool 4 had one build per chip). */
static bool try_folder(finder *fd, const char *dir) {
  char rel[96], v4[64];
  v4_name(fd->chip, v4, sizeof v4);
  snprintf(rel, sizeof rel, "%s.json", fd->name);
  if (try(fd, dir, rel)) return true;
  snprintf(rel, sizeof rel, "2/%s.json", fd->name);
  if (try(fd, dir, rel)) return true;
  snprintf(rel, sizeof rel, "1/%s.json", fd->name);
  if (try(fd, dir, rel)) return true;
  return fd->name == fd->chip->arg_name && try(fd, dir, v4);
}

/* <nm>/esptool-js/lib/targets/stub_flasher/<chip>.json for a node_modules folder. */
static bool try_esptool_js(finder *fd, const char *node_modules) {
  char rel[128];
  snprintf(rel, sizeof rel, "esptool-js/lib/targets/stub_flasher/%s.json", fd->name);
  return try(fd, node_modules, rel);
}

/* Is dir the same folder as p or one of its ancestors (textually)? */
static bool is_ancestor_or_self(const char *dir, const char *p) {
  const size_t n = strlen(dir);
  if (n == 1 && dir[0] == '/') return p[0] == '/';
  return strncmp(dir, p, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* node_modules/ in `start` and each parent up to /; stops early at a folder
 * the walk from `visited` (NULL: none) already covered. */
static bool walk_up(finder *fd, const char *start, const char *visited) {
  char dir[PATH_MAX], nm[PATH_MAX + 16], where[PATH_MAX + 64];
  if (snprintf(dir, sizeof dir, "%s", start) >= (int)sizeof dir) return false;
  if (visited && is_ancestor_or_self(dir, visited)) return false;
  snprintf(where, sizeof where, "node_modules from %s up", dir);
  looked(fd, where);
  for (;;) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
    if (visited && is_ancestor_or_self(dir, visited)) return false;
    snprintf(nm, sizeof nm, "%s%snode_modules", dir, n == 1 && dir[0] == '/' ? "" : "/");
    if (try_esptool_js(fd, nm)) return true;
    char *slash = strrchr(dir, '/');
    if (!slash || (slash == dir && n == 1)) return false; /* was "/" or relative and exhausted */
    if (slash == dir) dir[1] = '\0';                      /* "/work" -> "/" */
    else *slash = '\0';
  }
}

/* Python 3 site folders matching a glob, newest python3.N first. */
static int vers_desc(const void *a, const void *b) {
  return strverscmp(*(const char *const *)b, *(const char *const *)a);
}

static bool try_sites(finder *fd, const char *pattern) {
  glob_t g;
  bool hit = false;
  looked(fd, pattern);
  if (glob(pattern, GLOB_ONLYDIR, NULL, &g) != 0) return false;
  qsort(g.gl_pathv, g.gl_pathc, sizeof g.gl_pathv[0], vers_desc);
  char rel[128], v4[64];
  v4_name(fd->chip, v4, sizeof v4);
  for (size_t i = 0; i < g.gl_pathc && !hit; i++) {
    const char *site = g.gl_pathv[i];
    /* esptool 5: set 2 (esp-flasher-stub) then set 1 (legacy), as its
     * StubFlasher does by default; esptool 4.2-4.7: one file per chip. */
    snprintf(rel, sizeof rel, "esptool/targets/stub_flasher/2/%s.json", fd->name);
    if ((hit = try(fd, site, rel))) break;
    snprintf(rel, sizeof rel, "esptool/targets/stub_flasher/1/%s.json", fd->name);
    if ((hit = try(fd, site, rel))) break;
    if (fd->name != fd->chip->arg_name) continue;
    snprintf(rel, sizeof rel, "esptool/targets/stub_flasher/%s", v4);
    hit = try(fd, site, rel);
  }
  globfree(&g);
  return hit;
}

static eg_err not_found(finder *fd, const char *lead) {
  char msg[sizeof fd->f->msg];
  const int n = snprintf(msg, sizeof msg, "%s%s", lead, fd->looked);
  if (n >= (int)sizeof msg) memcpy(msg + sizeof msg - 4, "...", 4);
  return eg_fault_set(fd->f, EG_STUB_NOT_FOUND, EG_STAGE_NONE, -1, "%s", msg);
}

eg_err eg_stub_find_in(const eg_chip *chip, const char *user_path, const eg_stub_env *env, char *out, size_t outlen,
                       eg_fault *f) {
  return eg_stub_find_build_in(chip, false, user_path, env, out, outlen, f);
}

eg_err eg_stub_find_build_in(const eg_chip *chip, bool old, const char *user_path, const eg_stub_env *env, char *out,
                             size_t outlen, eg_fault *f) {
  if (!chip || !out || outlen == 0) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "eg_stub_find: no chip or buffer");
  if (old && !chip->stub_old)
    return eg_fault_set(f, EG_STUB_NOT_FOUND, EG_STAGE_NONE, -1, "%s has no older stub build", chip->name);
  finder fd = {.chip = chip, .name = old ? chip->stub_old : chip->arg_name, .out = out, .outlen = outlen, .f = f,
               .found = EG_STUB_NOT_FOUND};
  char lead[160], v4[64];
  out[0] = '\0';
  v4_name(chip, v4, sizeof v4);
  if (old) snprintf(v4, sizeof v4, "%s.json", fd.name); /* no esptool 4 name: say the one looked for */

  if (user_path) {
    if (is_file(user_path) && old) /* one file is the chip's stub; the older build is another file */
      return eg_fault_set(f, EG_STUB_NOT_FOUND, EG_STAGE_NONE, -1, "stub %s is one file: no %s.json beside it",
                          user_path, fd.name);
    if (is_file(user_path)) {
      if (strlen(user_path) >= outlen)
        return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "stub file path too long: %s", user_path);
      snprintf(out, outlen, "%s", user_path);
      return EG_OK;
    }
    if (!is_dir(user_path))
      return eg_fault_set(f, EG_STUB_NOT_FOUND, EG_STAGE_NONE, -1, "stub path %s: %s", user_path,
                          access(user_path, F_OK) == 0 ? "neither a file nor a folder" : strerror(errno));
    if (try_folder(&fd, user_path)) return fd.found;
    return eg_fault_set(f, EG_STUB_NOT_FOUND, EG_STAGE_NONE, -1,
                        "no flasher stub for %s in %s (looked for %s.json, 2/%s.json, 1/%s.json, %s)", chip->name,
                        user_path, fd.name, fd.name, fd.name, v4);
  }

  if (env->stub_dir) {
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "ESPGANG_STUB_DIR=%s", env->stub_dir);
    looked(&fd, where);
    if (try_folder(&fd, env->stub_dir)) return fd.found;
  }
  if (env->cwd && walk_up(&fd, env->cwd, NULL)) return fd.found;
  if (env->exe_dir && walk_up(&fd, env->exe_dir, env->cwd)) return fd.found;
  for (size_t i = 0; i < EG_STUB_MAX_ROOTS && env->npm_roots[i]; i++) {
    looked(&fd, env->npm_roots[i]);
    if (try_esptool_js(&fd, env->npm_roots[i])) return fd.found;
  }
  for (size_t i = 0; i < EG_STUB_MAX_ROOTS && env->site_globs[i]; i++)
    if (try_sites(&fd, env->site_globs[i])) return fd.found;
  snprintf(lead, sizeof lead, "no flasher stub file for %s (%s.json, %s) found; set ESPGANG_STUB_DIR or give a path. Looked in: ",
           chip->name, fd.name, v4);
  return not_found(&fd, lead);
}

/* ------------------------------------------------------------ defaults */

typedef struct arena {
  char *p;
  size_t left;
} arena;

/* Copy of a printf result in env->storage; NULL when it does not fit. */
static const char *keep(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *keep(arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(a->p, a->left, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= a->left) return NULL;
  const char *s = a->p;
  a->p += n + 1;
  a->left -= (size_t)n + 1;
  return s;
}

/* A folder name inside a glob pattern: escape glob's special characters. */
static const char *glob_escaped(arena *a, const char *s) {
  char tmp[PATH_MAX * 2];
  size_t o = 0;
  for (; *s && o + 2 < sizeof tmp; s++) {
    if (strchr("*?[]\\", *s)) tmp[o++] = '\\';
    tmp[o++] = *s;
  }
  tmp[o] = '\0';
  return *s ? NULL : keep(a, "%s", tmp);
}

static void add(const char **list, const char *s) {
  if (!s) return;
  for (size_t i = 0; i + 1 < EG_STUB_MAX_ROOTS; i++)
    if (!list[i]) {
      list[i] = s;
      return;
    }
}

void eg_stub_env_default(eg_stub_env *env) {
  memset(env, 0, sizeof *env);
  arena a = {env->storage, sizeof env->storage};
  const char *v = getenv("ESPGANG_STUB_DIR");
  if (v && *v) env->stub_dir = keep(&a, "%s", v);

  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf)) env->cwd = keep(&a, "%s", buf);
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash) {
      if (slash == buf) slash[1] = '\0';
      else *slash = '\0';
      env->exe_dir = keep(&a, "%s", buf);
    }
  }

  add(env->npm_roots, "/usr/lib/node_modules");
  add(env->npm_roots, "/usr/local/lib/node_modules");
  if ((v = getenv("NODE_PATH")) && *v) {
    const char *p = v;
    while (*p) {
      const size_t len = strcspn(p, ":");
      if (len) add(env->npm_roots, keep(&a, "%.*s", (int)len, p));
      p += len;
      if (*p == ':') p++;
    }
  }

  const char *venv = (v = getenv("VIRTUAL_ENV")) && *v ? glob_escaped(&a, v) : NULL;
  const char *home = (v = getenv("HOME")) && *v ? glob_escaped(&a, v) : NULL;
  if (venv) add(env->site_globs, keep(&a, "%s/lib/python3*/site-packages", venv));
  if (home) {
    add(env->site_globs, keep(&a, "%s/.local/lib/python3*/site-packages", home));
    add(env->site_globs, keep(&a, "%s/.local/share/pipx/venvs/esptool/lib/python3*/site-packages", home));
  }
  add(env->site_globs, "/usr/local/lib/python3*/dist-packages");
  add(env->site_globs, "/usr/local/lib/python3*/site-packages");
  add(env->site_globs, "/usr/lib/python3/dist-packages");
}

eg_err eg_stub_find(const eg_chip *chip, const char *user_path, char *out, size_t outlen, eg_fault *f) {
  return eg_stub_find_build(chip, false, user_path, out, outlen, f);
}

eg_err eg_stub_find_build(const eg_chip *chip, bool old, const char *user_path, char *out, size_t outlen, eg_fault *f) {
  eg_stub_env *env = malloc(sizeof *env); /* 16 KB: keep it off the loop's stack */
  if (!env) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory looking for a stub");
  eg_stub_env_default(env);
  const eg_err e = eg_stub_find_build_in(chip, old, user_path, env, out, outlen, f);
  free(env);
  return e;
}
