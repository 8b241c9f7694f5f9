/* http.h - an HTTP/1.1 request parser (RFC 9112) for the station dashboard:
 * a push parser in the manner of slip.c. Bytes in, one request out; no I/O,
 * no allocation. The caller owns the parser and its buffer, whose size bounds
 * what one request may hold.
 *
 * Use:
 *   eg_http_parser p; uint8_t buf[EG_HTTP_HEAD_MAX + EG_HTTP_BODY_MAX];
 *   eg_http_parser_init(&p, buf, sizeof buf, EG_HTTP_BODY_MAX);
 *   size_t used; switch (eg_http_push(&p, in, n, &used)) {
 *   case EG_HTTP_MORE:  all n bytes were taken; feed more later
 *   case EG_HTTP_DONE:  p.req is a complete request, built from the first
 *                       `used` bytes; handle it, eg_http_next(&p), then push
 *                       in + used (a pipelined request may follow)
 *   case EG_HTTP_ERROR: p.err says why, eg_http_err_status(p.err) is the
 *                       status to answer with; answer and close (the stream
 *                       cannot be resynchronised). Pushing again returns
 *                       ERROR until eg_http_parser_reset().
 *
 * Strings in p.req (method, path, query, header names and values) are NUL
 * terminated and point into the caller's buffer; they stay valid until the
 * next eg_http_next()/eg_http_parser_reset(). Pushing after DONE without
 * eg_http_next() takes nothing and returns DONE again.
 *
 * What is accepted (RFC 9112 section numbers):
 *   - request-line: method SP request-target SP HTTP-version, single spaces
 *     (3); empty lines before it are skipped (2.2); method a token of at most
 *     EG_HTTP_METHOD_MAX characters; request-target in origin form ("/p?q"),
 *     asterisk form ("*") or absolute form ("http://host/p": the path is
 *     kept, 3.2.2); visible ASCII only, no fragment; HTTP/1.0 or HTTP/1.1
 *     (another HTTP/x.y is 505).
 *   - lines end with CRLF or a bare LF (2.2); a bare CR is an error.
 *   - field-name ":" OWS field-value OWS (5); whitespace before the colon and
 *     obsolete line folding are rejected (5.1, 5.2); values may hold SP,
 *     HTAB, visible ASCII and bytes >= 0x80, never other control bytes.
 *   - Host: exactly one in HTTP/1.1 (RFC 9110 7.2, RFC 9112 3.2); at most one
 *     in HTTP/1.0.
 *   - body: Content-Length only, all values equal (6.3); Transfer-Encoding is
 *     not implemented (501), a body over the limit is 413.
 * Limits: the request line at most `line_max` bytes (414), the header
 * section (request line included, CR/LF not counted) at most cap - body_max
 * bytes (431), at most EG_HTTP_MAX_HEADERS fields (431).
 */
#ifndef EG_HTTP_H
#define EG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EG_HTTP_MAX_HEADERS 32
#define EG_HTTP_METHOD_MAX 16
#define EG_HTTP_LINE_MAX 2048  /* default request-line limit */
#define EG_HTTP_HEAD_MAX 8192  /* default header-section limit */
#define EG_HTTP_BODY_MAX 1024  /* default body limit: a small operator POST */

/* Why a request was refused. Columns: name, HTTP status to answer with,
 * words for the response body and the logs. */
#define EG_HTTP_ERR_MAP(XX)                                                       \
  XX(NONE,              0,   "no error")                                          \
  XX(REQUEST_LINE,      400, "malformed request line")                           \
  XX(METHOD,            400, "malformed method")                                  \
  XX(TARGET,            400, "malformed request target")                          \
  XX(VERSION,           400, "malformed HTTP version")                            \
  XX(VERSION_UNSUPPORTED, 505, "HTTP version not supported")                      \
  XX(LINE_ENDING,       400, "carriage return not followed by line feed")        \
  XX(URI_TOO_LONG,      414, "request line longer than the limit")               \
  XX(HEADER_COLON,      400, "header line without a colon")                       \
  XX(HEADER_NAME,       400, "malformed header name")                             \
  XX(HEADER_SPACE,      400, "whitespace between a header name and its colon")   \
  XX(HEADER_VALUE,      400, "control character in a header value")             \
  XX(HEADER_FOLD,       400, "obsolete header line folding")                      \
  XX(HEADERS_TOO_LARGE, 431, "header section larger than the limit")             \
  XX(TOO_MANY_HEADERS,  431, "more header fields than the limit")                 \
  XX(HOST_MISSING,      400, "HTTP/1.1 request without a Host header")           \
  XX(HOST_DUPLICATE,    400, "more than one Host header")                        \
  XX(CONTENT_LENGTH,    400, "malformed or conflicting Content-Length")          \
  XX(TRANSFER_ENCODING, 501, "Transfer-Encoding is not implemented")             \
  XX(BODY_TOO_LARGE,    413, "request body larger than the limit")

typedef enum eg_http_err {
#define EG_HTTP_ERR_ENUM(name, status, text) EG_HTTP_ERR_##name,
  EG_HTTP_ERR_MAP(EG_HTTP_ERR_ENUM)
#undef EG_HTTP_ERR_ENUM
  EG_HTTP_ERR__COUNT
} eg_http_err;

const char *eg_http_err_name(eg_http_err e);  /* "URI_TOO_LONG" */
const char *eg_http_err_text(eg_http_err e);  /* "request line longer than the limit" */
int eg_http_err_status(eg_http_err e);        /* 414 */
/* "Not Found" for 404 etc.; "Unknown" for a status not in the table. */
const char *eg_http_reason(int status);

typedef struct eg_http_header {
  const char *name;  /* as sent (case preserved) */
  const char *value; /* leading and trailing SP/HTAB removed */
} eg_http_header;

typedef struct eg_http_req {
  const char *method;  /* "GET"; a token, case-sensitive (RFC 9110 9.1) */
  const char *path;    /* "/api/state" or "*"; never empty */
  const char *query;   /* what followed '?', or NULL */
  int version_minor;   /* HTTP/1.<minor>: 0 or 1 */
  eg_http_header headers[EG_HTTP_MAX_HEADERS];
  size_t nheaders;
  const char *host;    /* the Host header, or NULL (HTTP/1.0 only) */
  uint64_t content_length;
  const uint8_t *body; /* content_length bytes (NULL when 0) */
  bool keep_alive;     /* the client allows another request on the connection */
} eg_http_req;

typedef enum eg_http_state {
  EG_HTTP_MORE,  /* need more bytes */
  EG_HTTP_DONE,  /* p->req is complete */
  EG_HTTP_ERROR  /* p->err */
} eg_http_state;

typedef enum eg_http_phase {
  EG_HTTP_P_START,  /* before the request line (skipping empty lines) */
  EG_HTTP_P_LINE,   /* in the request line */
  EG_HTTP_P_HEADER, /* in a header line (or the empty line ending them) */
  EG_HTTP_P_BODY,   /* collecting content_length bytes */
  EG_HTTP_P_DONE,
  EG_HTTP_P_ERROR
} eg_http_phase;

typedef struct eg_http_parser {
  uint8_t *buf;       /* caller-owned, cap bytes */
  size_t cap;
  size_t head_max;    /* cap - body_max */
  size_t body_max;
  size_t line_max;    /* request-line limit (EG_HTTP_LINE_MAX; at most head_max) */
  size_t len;         /* bytes used in buf */
  size_t line_start;  /* where the current line begins in buf */
  bool cr;            /* the previous byte was a CR */
  bool saw_content_length;
  unsigned hosts;     /* Host headers seen */
  eg_http_phase phase;
  eg_http_err err;
  eg_http_req req;
} eg_http_parser;

/* cap must exceed body_max by at least 64 bytes (a minimal request). */
void eg_http_parser_init(eg_http_parser *p, uint8_t *buf, size_t cap, size_t body_max);
/* Forget everything, errors included. */
void eg_http_parser_reset(eg_http_parser *p);
/* After DONE: make ready for the next request on the same connection. */
void eg_http_next(eg_http_parser *p);
/* Feed n bytes; *used says how many were taken (all of them unless DONE
 * stopped early, and 0..n on ERROR). */
eg_http_state eg_http_push(eg_http_parser *p, const uint8_t *in, size_t n, size_t *used);

/* ---- helpers over a parsed request (pure) ---- */

/* The first header with this name (ASCII case-insensitive), or NULL. */
const char *eg_http_header_get(const eg_http_req *r, const char *name);
/* Does a comma-separated token list ("keep-alive, Upgrade") hold `token`
 * (ASCII case-insensitive)? */
bool eg_http_list_has(const char *list, const char *token);
/* The value of `name` in an "a=1&b=2" query (no percent-decoding: callers
 * ask for values limited to unreserved characters). Copied into out (NUL
 * terminated); false when absent or longer than cap - 1. */
bool eg_http_query_get(const char *query, const char *name, char *out, size_t cap);
/* The value of cookie `name` in any Cookie header ("a=1; b=2"). Same rules. */
bool eg_http_cookie_get(const eg_http_req *r, const char *name, char *out, size_t cap);

#endif
