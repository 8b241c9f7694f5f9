/* fuzz_http.c - libFuzzer target for the HTTP request parser (src/http.c).
 *
 * Input: byte 0 picks the buffer (low 6 bits: capacity 80 + 24 * n bytes,
 * exactly that much on the heap so ASan sees any overrun; high 2 bits: the
 * body limit 0, 16, 64 or 1024 bytes, capped below the capacity), byte 1
 * the piece size of a second, split parse; the rest is the stream (requests
 * may be pipelined). Checked:
 *   - every request is well formed: method a token of 1..16 characters, path
 *     "*" or starting with '/', target bytes visible ASCII without '#',
 *     header names tokens, values without control bytes or outer spaces,
 *     every string inside the buffer, Host present in HTTP/1.1, the body
 *     within the limit, keep_alive as RFC 9112 9.3 says;
 *   - push() takes all input on MORE, at most all on DONE/ERROR, and an
 *     error names a real status (400, 413, 414, 431, 501, 505);
 *   - the split parse yields exactly the same requests and the same end;
 *   - each request written back in canonical form parses to itself.
 * Any violation aborts, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)       \
  do {                 \
    if (!(x)) abort(); \
  } while (0)

#define MAX_REQS 64

static bool tchar(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_inside(const eg_http_parser *p, const void *s, size_t n) {
  const uint8_t *b = s;
  CHECK(b >= p->buf && b + n <= p->buf + p->cap);
}

static bool ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

/* Every member of a request obeys the grammar it was parsed by. */
static void check_req(const eg_http_parser *p, const eg_http_req *r) {
  const size_t ml = strlen(r->method);
  CHECK(ml >= 1 && ml <= EG_HTTP_METHOD_MAX);
  check_inside(p, r->method, ml + 1);
  for (size_t i = 0; i < ml; i++) CHECK(tchar((uint8_t)r->method[i]));
  const size_t pl = strlen(r->path);
  CHECK(pl >= 1 && (r->path[0] == '/' || strcmp(r->path, "*") == 0));
  if (strcmp(r->path, "/") != 0) check_inside(p, r->path, pl + 1); /* "/" may be the parser's own */
  for (size_t i = 0; i < pl; i++) CHECK(r->path[i] > 0x20 && r->path[i] < 0x7F && r->path[i] != '#');
  if (r->query) {
    const size_t ql = strlen(r->query);
    check_inside(p, r->query, ql + 1);
    for (size_t i = 0; i < ql; i++) CHECK(r->query[i] > 0x20 && r->query[i] < 0x7F && r->query[i] != '#');
  }
  CHECK(r->version_minor == 0 || r->version_minor == 1);
  CHECK(r->nheaders <= EG_HTTP_MAX_HEADERS);
  size_t hosts = 0;
  bool close = false, keep = false;
  for (size_t i = 0; i < r->nheaders; i++) {
    const char *n = r->headers[i].name, *v = r->headers[i].value;
    const size_t nl = strlen(n), vl = strlen(v);
    CHECK(nl >= 1);
    check_inside(p, n, nl + 1);
    check_inside(p, v, vl + 1);
    for (size_t k = 0; k < nl; k++) CHECK(tchar((uint8_t)n[k]));
    for (size_t k = 0; k < vl; k++) CHECK(v[k] == '\t' || ((uint8_t)v[k] >= 0x20 && (uint8_t)v[k] != 0x7F));
    if (vl) CHECK(v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t');
    if (ieq(n, "host")) hosts++;
    CHECK(!ieq(n, "transfer-encoding"));
    if (ieq(n, "connection")) {
      close = close || eg_http_list_has(v, "close");
      keep = keep || eg_http_list_has(v, "keep-alive");
    }
  }
  CHECK(hosts <= 1);
  if (r->version_minor == 1) CHECK(hosts == 1 && r->host);
  CHECK(r->keep_alive == (!close && (r->version_minor == 1 || keep)));
  CHECK(r->content_length <= p->body_max);
  if (r->content_length) {
    CHECK(r->body != NULL);
    check_inside(p, r->body, (size_t)r->content_length);
  }
}

/* The request in canonical form: one space, CRLF, "name: value". */
static size_t canonical(const eg_http_req *r, char **out) {
  size_t len = 0;
  FILE *f = open_memstream(out, &len);
  CHECK(f);
  fprintf(f, "%s %s%s%s HTTP/1.%d\r\n", r->method, r->path, r->query ? "?" : "", r->query ? r->query : "",
          r->version_minor);
  for (size_t i = 0; i < r->nheaders; i++) fprintf(f, "%s: %s\r\n", r->headers[i].name, r->headers[i].value);
  fputs("\r\n", f);
  if (r->content_length) fwrite(r->body, 1, (size_t)r->content_length, f);
  CHECK(fclose(f) == 0);
  return len;
}

typedef struct outcome {
  char *reqs[MAX_REQS]; /* canonical forms */
  size_t lens[MAX_REQS];
  size_t n;
  eg_http_state end;
  eg_http_err err;
} outcome;

static void record(outcome *o, const eg_http_parser *p) {
  check_req(p, &p->req);
  CHECK(o->n < MAX_REQS);
  o->lens[o->n] = canonical(&p->req, &o->reqs[o->n]);
  o->n++;
}

/* Parse `in` delivered `piece` bytes at a time (0: all at once). */
static void run(outcome *o, eg_http_parser *p, const uint8_t *in, size_t n, size_t piece) {
  memset(o, 0, sizeof *o);
  eg_http_parser_reset(p);
  size_t pos = 0;
  o->end = EG_HTTP_MORE;
  while (pos < n && o->n < MAX_REQS) {
    const size_t avail = piece && n - pos > piece ? piece : n - pos;
    size_t used = 0;
    const eg_http_state st = eg_http_push(p, in + pos, avail, &used);
    CHECK(used <= avail);
    pos += used;
    if (st == EG_HTTP_MORE) {
      CHECK(used == avail);
      continue;
    }
    if (st == EG_HTTP_ERROR) {
      o->end = EG_HTTP_ERROR;
      o->err = p->err;
      const int status = eg_http_err_status(p->err);
      CHECK(p->err != EG_HTTP_ERR_NONE && p->err < EG_HTTP_ERR__COUNT);
      CHECK(status == 400 || status == 413 || status == 414 || status == 431 || status == 501 || status == 505);
      /* Stuck until reset. */
      size_t again = 1;
      CHECK(eg_http_push(p, in, n, &again) == EG_HTTP_ERROR && again == 0);
      return;
    }
    /* DONE: pushing again before next() takes nothing. */
    record(o, p);
    size_t again = 1;
    CHECK(eg_http_push(p, in + pos, n - pos, &again) == EG_HTTP_DONE && again == 0);
    eg_http_next(p);
  }
}

static void free_outcome(outcome *o) {
  for (size_t i = 0; i < o->n; i++) free(o->reqs[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = 80 + 24 * (size_t)(data[0] & 0x3F);
  static const size_t bodies[4] = {0, 16, 64, 1024};
  size_t body_max = bodies[data[0] >> 6];
  if (body_max > cap - 64) body_max = cap - 64;
  const size_t piece = 1 + data[1] % 17;
  const uint8_t *in = data + 2;
  const size_t n = size - 2;

  uint8_t *buf = malloc(cap);
  CHECK(buf);
  eg_http_parser p;
  eg_http_parser_init(&p, buf, cap, body_max);

  outcome a, b;
  run(&a, &p, in, n, 0);
  run(&b, &p, in, n, piece);
  CHECK(a.n == b.n && a.end == b.end && a.err == b.err);
  for (size_t i = 0; i < a.n; i++) CHECK(a.lens[i] == b.lens[i] && memcmp(a.reqs[i], b.reqs[i], a.lens[i]) == 0);

  /* Round trip through a roomy parser: the canonical form is the request. */
  const size_t big = 64 * 1024;
  uint8_t *bbuf = malloc(big);
  CHECK(bbuf);
  eg_http_parser q;
  eg_http_parser_init(&q, bbuf, big, body_max);
  for (size_t i = 0; i < a.n; i++) {
    size_t used = 0;
    eg_http_parser_reset(&q);
    CHECK(eg_http_push(&q, (const uint8_t *)a.reqs[i], a.lens[i], &used) == EG_HTTP_DONE);
    CHECK(used == a.lens[i]);
    check_req(&q, &q.req);
    char *again = NULL;
    const size_t len = canonical(&q.req, &again);
    CHECK(len == a.lens[i] && memcmp(again, a.reqs[i], len) == 0);
    free(again);
  }
  free(bbuf);
  free_outcome(&a);
  free_outcome(&b);
  free(buf);
  return 0;
}
