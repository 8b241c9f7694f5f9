/* test_http.c - the HTTP/1.1 request parser (src/http.c): well-formed
 * requests in every accepted form, split at every byte, pipelined; one or
 * more malformed inputs for every error class of EG_HTTP_ERR_MAP (a table
 * test that fails if a class has no case); the limits at their edges; the
 * helpers over a parsed request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

#define BODY_MAX 64
#define CAP (EG_HTTP_HEAD_MAX + BODY_MAX)

typedef struct fixture {
  eg_http_parser p;
  uint8_t buf[CAP];
} fixture;

static fixture fx;

static void init(size_t cap, size_t body_max) { eg_http_parser_init(&fx.p, fx.buf, cap, body_max); }

/* Push all of s in one go; expect `want` and (for DONE) all bytes used. */
static eg_http_state push_all(const char *s, size_t *used) {
  size_t u = 0;
  const eg_http_state st = eg_http_push(&fx.p, (const uint8_t *)s, strlen(s), &u);
  if (used) *used = u;
  return st;
}

static const char *state_name(eg_http_state s) {
  switch (s) {
  case EG_HTTP_MORE: return "MORE";
  case EG_HTTP_DONE: return "DONE";
  case EG_HTTP_ERROR: return "ERROR";
  }
  return "?";
}

static void expect_done(const char *req) {
  init(CAP, BODY_MAX);
  size_t used = 0;
  const eg_http_state st = push_all(req, &used);
  if (st != EG_HTTP_DONE || used != strlen(req))
    fail_msg("%s: got %s (%s) after %zu of %zu bytes, want DONE after all", req, state_name(st),
             eg_http_err_name(fx.p.err), used, strlen(req));
}

static void str_eq(const char *what, const char *got, const char *want) {
  if (got == want || (got && want && strcmp(got, want) == 0)) return;
  fail_msg("%s: got \"%s\", want \"%s\"", what, got ? got : "(null)", want ? want : "(null)");
}

/* ------------------------------------------------------------ accepted */

static void test_simple_get(void **state) {
  (void)state;
  expect_done("GET /api/state?x=1&token=abc HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent:  curl/8 \t\r\n"
              "X-Empty:\r\n\r\n");
  const eg_http_req *r = &fx.p.req;
  str_eq("method", r->method, "GET");
  str_eq("path", r->path, "/api/state");
  str_eq("query", r->query, "x=1&token=abc");
  assert_int_equal(r->version_minor, 1);
  assert_int_equal(r->nheaders, 3);
  str_eq("host", r->host, "127.0.0.1:8080");
  str_eq("header 1 name", r->headers[1].name, "User-Agent");
  str_eq("header 1 value (trimmed)", r->headers[1].value, "curl/8");
  str_eq("empty value", r->headers[2].value, "");
  assert_true(r->keep_alive);
  assert_int_equal(r->content_length, 0);
  assert_null(r->body);
}

static void test_forms(void **state) {
  (void)state;
  static const struct {
    const char *req, *path, *query;
  } cases[] = {
    {"GET http://station:8080/api/state?a=b HTTP/1.1\r\nHost: station\r\n\r\n", "/api/state", "a=b"},
    {"GET HTTP://station HTTP/1.1\r\nHost: station\r\n\r\n", "/", NULL},
    {"GET https://station?x HTTP/1.1\r\nHost: station\r\n\r\n", "/", "x"},
    {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "*", NULL},
    {"\r\n\r\nGET /after-empty-lines HTTP/1.1\r\nHost: a\r\n\r\n", "/after-empty-lines", NULL},
    {"GET /bare-lf HTTP/1.1\nHost: a\n\n", "/bare-lf", NULL},
    {"GET /q? HTTP/1.1\r\nHost: a\r\n\r\n", "/q", ""},
    {"GET /%7euser/a%20b;p HTTP/1.0\r\n\r\n", "/%7euser/a%20b;p", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    expect_done(cases[i].req);
    str_eq(cases[i].req, fx.p.req.path, cases[i].path);
    str_eq(cases[i].req, fx.p.req.query, cases[i].query);
  }
}

static void test_keep_alive(void **state) {
  (void)state;
  static const struct {
    const char *req;
    bool keep;
  } cases[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true}, /* a different token */
    {"GET / HTTP/1.0\r\n\r\n", false},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    expect_done(cases[i].req);
    if (fx.p.req.keep_alive != cases[i].keep)
      fail_msg("%s: keep_alive %d, want %d", cases[i].req, fx.p.req.keep_alive, cases[i].keep);
  }
}

/* A request's fields as one string, to compare parses. */
static void summary(const eg_http_req *r, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s|%s|%s|1.%d|%d|%llu|", r->method, r->path, r->query ? r->query : "-", r->version_minor,
                   r->keep_alive, (unsigned long long)r->content_length);
  for (size_t i = 0; i < r->nheaders && n > 0 && (size_t)n < cap; i++)
    n += snprintf(out + n, cap - (size_t)n, "%s=%s;", r->headers[i].name, r->headers[i].value);
  if (r->content_length && n > 0 && (size_t)n + r->content_length < cap) {
    memcpy(out + n, r->body, (size_t)r->content_length);
    out[n + (int)r->content_length] = '\0';
  }
}

/* Every split of the input into two pushes, and byte by byte, gives the same
 * request as one push. */
static void test_split_everywhere(void **state) {
  (void)state;
  static const char *reqs[] = {
    "GET /api/events HTTP/1.1\r\nHost: localhost\r\nLast-Event-ID: 0a1b2c3d-17\r\nCookie: a=1; eg_token_80=x\r\n\r\n",
    "\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello\r\nbody",
    "GET http://h/p?q HTTP/1.0\nConnection: keep-alive\n\n",
  };
  for (size_t k = 0; k < sizeof reqs / sizeof reqs[0]; k++) {
    const char *s = reqs[k];
    const size_t n = strlen(s);
    char want[2048], got[2048];
    expect_done(s);
    summary(&fx.p.req, want, sizeof want);
    for (size_t cut = 0; cut <= n; cut++) {
      init(CAP, BODY_MAX);
      size_t u1 = 0, u2 = 0;
      const eg_http_state a = eg_http_push(&fx.p, (const uint8_t *)s, cut, &u1);
      const eg_http_state b = eg_http_push(&fx.p, (const uint8_t *)s + cut, n - cut, &u2);
      if (cut < n && (a != EG_HTTP_MORE || u1 != cut)) fail_msg("%s cut at %zu: first push %s used %zu", s, cut, state_name(a), u1);
      if (b != EG_HTTP_DONE || u1 + u2 != n) fail_msg("%s cut at %zu: %s after %zu bytes", s, cut, state_name(b), u1 + u2);
      summary(&fx.p.req, got, sizeof got);
      str_eq("split parse", got, want);
    }
    init(CAP, BODY_MAX);
    eg_http_state st = EG_HTTP_MORE;
    for (size_t i = 0; i < n; i++) {
      size_t u = 0;
      st = eg_http_push(&fx.p, (const uint8_t *)s + i, 1, &u);
      assert_int_equal(u, 1);
      if (i + 1 < n) assert_int_equal(st, EG_HTTP_MORE);
    }
    assert_int_equal(st, EG_HTTP_DONE);
    summary(&fx.p.req, got, sizeof got);
    str_eq("byte by byte", got, want);
  }
}

static void test_pipelined(void **state) {
  (void)state;
  const char *two = "GET /one HTTP/1.1\r\nHost: a\r\n\r\nHEAD /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /thr";
  init(CAP, BODY_MAX);
  size_t used = 0, off = 0;
  assert_int_equal(push_all(two, &used), EG_HTTP_DONE);
  assert_int_equal(used, strlen("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"));
  str_eq("first", fx.p.req.path, "/one");
  /* Pushing again before next() takes nothing. */
  size_t again = 99;
  assert_int_equal(eg_http_push(&fx.p, (const uint8_t *)two + used, 5, &again), EG_HTTP_DONE);
  assert_int_equal(again, 0);
  off = used;
  eg_http_next(&fx.p);
  assert_int_equal(push_all(two + off, &used), EG_HTTP_DONE);
  str_eq("second method", fx.p.req.method, "HEAD");
  str_eq("second path", fx.p.req.path, "/two");
  assert_false(fx.p.req.keep_alive);
  off += used;
  eg_http_next(&fx.p);
  assert_int_equal(push_all(two + off, &used), EG_HTTP_MORE);
  assert_int_equal(used, strlen("GET /thr"));
}

static void test_body(void **state) {
  (void)state;
  /* Repeated equal Content-Length values are one value (RFC 9112 6.3); the
   * body may hold any byte, NUL included. */
  init(CAP, BODY_MAX);
  static const char req[] = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nab\0deGET";
  size_t used = 0;
  assert_int_equal(eg_http_push(&fx.p, (const uint8_t *)req, sizeof req - 1, &used), EG_HTTP_DONE);
  assert_int_equal(used, sizeof req - 1 - 3); /* stops before the next request */
  assert_int_equal(fx.p.req.content_length, 5);
  assert_memory_equal(fx.p.req.body, "ab\0de", 5);

  /* Exactly the limit is fine; one more byte is 413. */
  char big[512];
  snprintf(big, sizeof big, "PUT /b HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", BODY_MAX);
  init(CAP, BODY_MAX);
  assert_int_equal(push_all(big, &used), EG_HTTP_MORE);
  char body[BODY_MAX];
  memset(body, 'x', sizeof body);
  assert_int_equal(eg_http_push(&fx.p, (const uint8_t *)body, sizeof body, &used), EG_HTTP_DONE);
  assert_int_equal(used, BODY_MAX);
  snprintf(big, sizeof big, "PUT /b HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", BODY_MAX + 1);
  init(CAP, BODY_MAX);
  assert_int_equal(push_all(big, &used), EG_HTTP_ERROR);
  assert_int_equal(fx.p.err, EG_HTTP_ERR_BODY_TOO_LARGE);
  assert_int_equal(eg_http_err_status(fx.p.err), 413);
}

/* ----------------------------------------------------------- malformed */

typedef struct bad {
  const char *req;
  eg_http_err err;
} bad;

static char long_line[EG_HTTP_LINE_MAX + 64], long_head[EG_HTTP_HEAD_MAX + 64], many[4096];

static void make_long_inputs(void) {
  /* A request line of line_max + 1 bytes. */
  const char *pre = "GET /", *post = " HTTP/1.1";
  size_t n = 0;
  n += (size_t)snprintf(long_line, sizeof long_line, "%s", pre);
  while (n < EG_HTTP_LINE_MAX + 1 - strlen(post)) long_line[n++] = 'a';
  snprintf(long_line + n, sizeof long_line - n, "%s\r\nHost: a\r\n\r\n", post);
  /* One header value that overflows the header section. */
  n = (size_t)snprintf(long_head, sizeof long_head, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
  while (n < EG_HTTP_HEAD_MAX + 8) long_head[n++] = 'v';
  long_head[n] = '\0';
  /* EG_HTTP_MAX_HEADERS + 1 fields. */
  n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: a\r\n");
  for (int i = 0; i < EG_HTTP_MAX_HEADERS; i++) n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: %d\r\n", i, i);
  snprintf(many + n, sizeof many - n, "\r\n");
}

static const bad bads[] = {
  {"GET /\r\n\r\n", EG_HTTP_ERR_REQUEST_LINE}, /* HTTP/0.9 */
  {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_REQUEST_LINE},
  {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_REQUEST_LINE},
  {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", EG_HTTP_ERR_REQUEST_LINE},
  {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_REQUEST_LINE},
  {"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_REQUEST_LINE},
  {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_METHOD},
  {"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_METHOD},
  {"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_TARGET},
  {"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_TARGET},
  {"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_TARGET},
  {"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_TARGET},
  {"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_TARGET},
  {"CONNECT host:443 HTTP/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_TARGET},
  {"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", EG_HTTP_ERR_VERSION},
  {"GET / http/1.1\r\nHost: a\r\n\r\n", EG_HTTP_ERR_VERSION},
  {"GET / HTTP/11\r\nHost: a\r\n\r\n", EG_HTTP_ERR_VERSION},
  {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", EG_HTTP_ERR_VERSION_UNSUPPORTED},
  {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", EG_HTTP_ERR_VERSION_UNSUPPORTED},
  {"GET / HTTP/1.1\rHost: a\r\n\r\n", EG_HTTP_ERR_LINE_ENDING},
  {"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", EG_HTTP_ERR_LINE_ENDING},
  {long_line, EG_HTTP_ERR_URI_TOO_LONG},
  {"GET / HTTP/1.1\r\nHost a\r\n\r\n", EG_HTTP_ERR_HEADER_COLON},
  {"GET / HTTP/1.1\r\n: a\r\n\r\n", EG_HTTP_ERR_HEADER_NAME},
  {"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", EG_HTTP_ERR_HEADER_NAME},
  {"GET / HTTP/1.1\r\nH\xc3\xb6st: a\r\n\r\n", EG_HTTP_ERR_HEADER_NAME},
  {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", EG_HTTP_ERR_HEADER_SPACE},
  {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", EG_HTTP_ERR_HEADER_SPACE},
  {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n", EG_HTTP_ERR_HEADER_VALUE},
  {"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", EG_HTTP_ERR_HEADER_VALUE},
  {"GET / HTTP/1.1\r\nHost: a\r\nX: one\r\n two\r\n\r\n", EG_HTTP_ERR_HEADER_FOLD},
  {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", EG_HTTP_ERR_HEADER_FOLD},
  {long_head, EG_HTTP_ERR_HEADERS_TOO_LARGE},
  {many, EG_HTTP_ERR_TOO_MANY_HEADERS},
  {"GET / HTTP/1.1\r\n\r\n", EG_HTTP_ERR_HOST_MISSING},
  {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", EG_HTTP_ERR_HOST_DUPLICATE},
  {"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", EG_HTTP_ERR_HOST_DUPLICATE},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", EG_HTTP_ERR_CONTENT_LENGTH},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", EG_HTTP_ERR_CONTENT_LENGTH},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", EG_HTTP_ERR_CONTENT_LENGTH},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", EG_HTTP_ERR_CONTENT_LENGTH},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", EG_HTTP_ERR_CONTENT_LENGTH},
  {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", EG_HTTP_ERR_TRANSFER_ENCODING},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", EG_HTTP_ERR_TRANSFER_ENCODING},
  {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n", EG_HTTP_ERR_BODY_TOO_LARGE},
};

static void test_malformed_every_class(void **state) {
  (void)state;
  make_long_inputs();
  bool covered[EG_HTTP_ERR__COUNT] = {false};
  for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
    init(CAP, BODY_MAX);
    size_t used = 0;
    const size_t n = strlen(bads[i].req);
    const eg_http_state st = eg_http_push(&fx.p, (const uint8_t *)bads[i].req, n, &used);
    if (st != EG_HTTP_ERROR || fx.p.err != bads[i].err)
      fail_msg("case %zu \"%.60s\": got %s %s, want ERROR %s", i, bads[i].req, state_name(st), eg_http_err_name(fx.p.err),
               eg_http_err_name(bads[i].err));
    assert_true(used <= n);
    covered[bads[i].err] = true;
    /* Sticky until reset, and then the parser works again. */
    size_t again = 7;
    assert_int_equal(eg_http_push(&fx.p, (const uint8_t *)"GET", 3, &again), EG_HTTP_ERROR);
    assert_int_equal(again, 0);
    eg_http_parser_reset(&fx.p);
    assert_int_equal(push_all("GET / HTTP/1.0\r\n\r\n", NULL), EG_HTTP_DONE);
    /* The same error arrives byte by byte. */
    init(CAP, BODY_MAX);
    eg_http_state sb = EG_HTTP_MORE;
    for (size_t k = 0; k < n && sb == EG_HTTP_MORE; k++) sb = eg_http_push(&fx.p, (const uint8_t *)bads[i].req + k, 1, &used);
    if (sb != EG_HTTP_ERROR || fx.p.err != bads[i].err)
      fail_msg("case %zu byte by byte: got %s %s, want %s", i, state_name(sb), eg_http_err_name(fx.p.err),
               eg_http_err_name(bads[i].err));
  }
  for (int e = 1; e < EG_HTTP_ERR__COUNT; e++)
    if (!covered[e]) fail_msg("error class %s has no malformed case in this test", eg_http_err_name((eg_http_err)e));
  /* Every class answers with a client-error or not-implemented status. */
  for (int e = 1; e < EG_HTTP_ERR__COUNT; e++) {
    const int s = eg_http_err_status((eg_http_err)e);
    assert_true(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
    assert_string_not_equal(eg_http_reason(s), "Unknown");
  }
  str_eq("out of range", eg_http_err_name((eg_http_err)999), "UNKNOWN");
}

/* The limits hold exactly at their edges, in a small buffer too. */
static void test_limits(void **state) {
  (void)state;
  char req[EG_HTTP_LINE_MAX + 64];
  size_t n = (size_t)snprintf(req, sizeof req, "GET /");
  while (n < EG_HTTP_LINE_MAX - strlen(" HTTP/1.1")) req[n++] = 'a';
  snprintf(req + n, sizeof req - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
  expect_done(req); /* the request line is exactly EG_HTTP_LINE_MAX bytes */
  assert_int_equal(strlen(fx.p.req.path) + strlen("GET  HTTP/1.1"), EG_HTTP_LINE_MAX);

  char hdrs[4096];
  n = (size_t)snprintf(hdrs, sizeof hdrs, "GET / HTTP/1.1\r\nHost: a\r\n");
  for (int i = 1; i < EG_HTTP_MAX_HEADERS; i++) n += (size_t)snprintf(hdrs + n, sizeof hdrs - n, "X-%d: %d\r\n", i, i);
  snprintf(hdrs + n, sizeof hdrs - n, "\r\n");
  expect_done(hdrs);
  assert_int_equal(fx.p.req.nheaders, EG_HTTP_MAX_HEADERS);

  /* A 100-byte buffer without a body: the head (lines + one byte each for
   * their terminators) must fit in 99 bytes. */
  uint8_t small[100];
  eg_http_parser p;
  eg_http_parser_init(&p, small, sizeof small, 0);
  const char *fits = "GET /0123456789012345678901234567890123456789 HTTP/1.1\r\nHost: abcdefghijklmnopqrstuvwxyzab\r\n\r\n";
  size_t used = 0;
  /* line 1: 54 bytes + its NUL, line 2: 34 + NUL: 90 of 100 */
  assert_int_equal(eg_http_push(&p, (const uint8_t *)fits, strlen(fits), &used), EG_HTTP_DONE);
  eg_http_parser_reset(&p);
  const char *over = "GET /0123456789012345678901234567890123456789 HTTP/1.1\r\nHost: abcdefghijklmnopqrstuvwxyzabcdefghijklm\r\n\r\n";
  /* 55 + 45 + 1: one byte more than the buffer; one byte less fits */
  assert_int_equal(eg_http_push(&p, (const uint8_t *)over, strlen(over), &used), EG_HTTP_ERROR);
  assert_int_equal(p.err, EG_HTTP_ERR_HEADERS_TOO_LARGE);
  eg_http_parser_reset(&p);
  const char *edge = "GET /0123456789012345678901234567890123456789 HTTP/1.1\r\nHost: abcdefghijklmnopqrstuvwxyzabcdefghijkl\r\n\r\n";
  assert_int_equal(eg_http_push(&p, (const uint8_t *)edge, strlen(edge), &used), EG_HTTP_DONE);
}

/* -------------------------------------------------------------- helpers */

static void test_helpers(void **state) {
  (void)state;
  expect_done("GET /?xtoken=1&token=abc-._~&empty=&t2=x HTTP/1.1\r\nHOST: a\r\nAuthorization: Bearer s3cret\r\n"
              "Cookie: a=1; eg_token_8080=tok123\r\nCookie: b=2\r\n\r\n");
  const eg_http_req *r = &fx.p.req;
  str_eq("header, any case", eg_http_header_get(r, "authorization"), "Bearer s3cret");
  str_eq("Host, any case", eg_http_header_get(r, "host"), "a");
  assert_null(eg_http_header_get(r, "x-missing"));
  char v[32];
  assert_true(eg_http_query_get(r->query, "token", v, sizeof v));
  str_eq("query token (not xtoken)", v, "abc-._~");
  assert_true(eg_http_query_get(r->query, "empty", v, sizeof v));
  str_eq("empty value", v, "");
  assert_false(eg_http_query_get(r->query, "toke", v, sizeof v));
  assert_false(eg_http_query_get(r->query, "token", v, 4)); /* too long for the buffer */
  assert_false(eg_http_query_get(NULL, "token", v, sizeof v));
  assert_true(eg_http_cookie_get(r, "eg_token_8080", v, sizeof v));
  str_eq("cookie", v, "tok123");
  assert_true(eg_http_cookie_get(r, "b", v, sizeof v));
  str_eq("cookie in a second header", v, "2");
  assert_false(eg_http_cookie_get(r, "eg_token_80", v, sizeof v));

  assert_true(eg_http_list_has("keep-alive, Upgrade", "upgrade"));
  assert_true(eg_http_list_has(" ,close ,", "close"));
  assert_false(eg_http_list_has("closed, xclose", "close"));
  assert_false(eg_http_list_has("", "close"));

  str_eq("reason 404", eg_http_reason(404), "Not Found");
  str_eq("reason 431", eg_http_reason(431), "Request Header Fields Too Large");
  str_eq("reason 999", eg_http_reason(999), "Unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_simple_get),
    cmocka_unit_test(test_forms),
    cmocka_unit_test(test_keep_alive),
    cmocka_unit_test(test_split_everywhere),
    cmocka_unit_test(test_pipelined),
    cmocka_unit_test(test_body),
    cmocka_unit_test(test_malformed_every_class),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
