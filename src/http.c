#include "http.h"

#include <string.h>

static const struct {
  const char *name, *text;
  int status;
} http_errs[] = {
#define EG_HTTP_ERR_ROW(name, status, text) {#name, text, status},
  EG_HTTP_ERR_MAP(EG_HTTP_ERR_ROW)
#undef EG_HTTP_ERR_ROW
};

const char *eg_http_err_name(eg_http_err e) {
  return (unsigned)e < EG_HTTP_ERR__COUNT ? http_errs[e].name : "UNKNOWN";
}

const char *eg_http_err_text(eg_http_err e) {
  return (unsigned)e < EG_HTTP_ERR__COUNT ? http_errs[e].text : "unknown error";
}

int eg_http_err_status(eg_http_err e) {
  return (unsigned)e < EG_HTTP_ERR__COUNT ? http_errs[e].status : 500;
}

/* Reason phrases of RFC 9110 section 15 for the statuses espgang sends. */
static const struct {
  int status;
  const char *reason;
} reasons[] = {
  {200, "OK"},
  {204, "No Content"},
  {303, "See Other"},
  {400, "Bad Request"},
  {401, "Unauthorized"},
  {403, "Forbidden"},
  {404, "Not Found"},
  {405, "Method Not Allowed"},
  {408, "Request Timeout"},
  {413, "Content Too Large"},
  {414, "URI Too Long"},
  {421, "Misdirected Request"},
  {431, "Request Header Fields Too Large"},
  {500, "Internal Server Error"},
  {501, "Not Implemented"},
  {503, "Service Unavailable"},
  {505, "HTTP Version Not Supported"},
};

const char *eg_http_reason(int status) {
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].status == status) return reasons[i].reason;
  return "Unknown";
}

/* ------------------------------------------------------------ characters */

/* tchar of RFC 9110 5.6.2: the characters of a method or a field name. */
static bool is_tchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(uint8_t c) { return c == ' ' || c == '\t'; }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool ieq_n(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return false;
  return true;
}

static bool ieq(const char *a, const char *b) {
  const size_t n = strlen(a);
  return n == strlen(b) && ieq_n(a, b, n);
}

/* --------------------------------------------------------------- parser */

void eg_http_parser_init(eg_http_parser *p, uint8_t *buf, size_t cap, size_t body_max) {
  memset(p, 0, sizeof *p);
  p->buf = buf;
  p->cap = cap;
  p->body_max = body_max < cap ? body_max : 0;
  p->head_max = cap - p->body_max;
  p->line_max = EG_HTTP_LINE_MAX < p->head_max ? EG_HTTP_LINE_MAX : p->head_max;
  eg_http_parser_reset(p);
}

void eg_http_parser_reset(eg_http_parser *p) {
  p->len = 0;
  p->line_start = 0;
  p->cr = false;
  p->saw_content_length = false;
  p->hosts = 0;
  p->phase = EG_HTTP_P_START;
  p->err = EG_HTTP_ERR_NONE;
  memset(&p->req, 0, sizeof p->req);
}

void eg_http_next(eg_http_parser *p) { eg_http_parser_reset(p); }

static eg_http_err parse_version(const char *v, size_t n, int *minor) {
  if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
    return EG_HTTP_ERR_VERSION;
  if (v[5] != '1' || v[7] > '1') return EG_HTTP_ERR_VERSION_UNSUPPORTED;
  *minor = v[7] - '0';
  return EG_HTTP_ERR_NONE;
}

/* The request-target, NUL terminated in place: sets path and query. */
static eg_http_err parse_target(eg_http_req *r, char *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const uint8_t c = (uint8_t)t[i];
    if (c < 0x21 || c > 0x7E || c == '#') return EG_HTTP_ERR_TARGET;
  }
  if (n == 1 && t[0] == '*') {
    r->path = t;
    return EG_HTTP_ERR_NONE;
  }
  char *path = t;
  if (t[0] != '/') {
    /* Absolute form (RFC 9112 3.2.2: a server must accept it): keep the
     * path and query, drop scheme and authority. */
    size_t skip = 0;
    if (n > 7 && ieq_n(t, "http://", 7)) skip = 7;
    else if (n > 8 && ieq_n(t, "https://", 8)) skip = 8;
    else return EG_HTTP_ERR_TARGET;
    size_t end = skip;
    while (end < n && t[end] != '/' && t[end] != '?') end++;
    if (end == skip) return EG_HTTP_ERR_TARGET; /* no authority */
    path = t + end;
  }
  char *q = strchr(path, '?');
  if (q) {
    *q = '\0';
    r->query = q + 1;
  }
  r->path = path[0] ? path : "/";
  return EG_HTTP_ERR_NONE;
}

static eg_http_err parse_request_line(eg_http_parser *p, char *s, size_t n) {
  eg_http_req *r = &p->req;
  char *sp1 = memchr(s, ' ', n);
  if (!sp1 || sp1 == s) return EG_HTTP_ERR_REQUEST_LINE;
  char *sp2 = s + n - 1;
  while (*sp2 != ' ') sp2--;
  if (sp2 == sp1 || sp2 == sp1 + 1) return EG_HTTP_ERR_REQUEST_LINE; /* one space, or an empty target */
  if (memchr(sp1 + 1, ' ', (size_t)(sp2 - sp1 - 1))) return EG_HTTP_ERR_REQUEST_LINE;
  const size_t mlen = (size_t)(sp1 - s);
  if (mlen > EG_HTTP_METHOD_MAX) return EG_HTTP_ERR_METHOD;
  for (size_t i = 0; i < mlen; i++)
    if (!is_tchar((uint8_t)s[i])) return EG_HTTP_ERR_METHOD;
  const eg_http_err ve = parse_version(sp2 + 1, (size_t)(s + n - sp2 - 1), &r->version_minor);
  if (ve != EG_HTTP_ERR_NONE) return ve;
  *sp1 = '\0';
  *sp2 = '\0';
  r->method = s;
  return parse_target(r, sp1 + 1, (size_t)(sp2 - sp1 - 1));
}

static eg_http_err parse_content_length(eg_http_parser *p, const char *v) {
  const size_t n = strlen(v);
  if (n == 0 || n > 18) return EG_HTTP_ERR_CONTENT_LENGTH;
  uint64_t val = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return EG_HTTP_ERR_CONTENT_LENGTH;
    val = val * 10 + (uint64_t)(v[i] - '0');
  }
  if (p->saw_content_length && val != p->req.content_length) return EG_HTTP_ERR_CONTENT_LENGTH;
  p->saw_content_length = true;
  p->req.content_length = val;
  return EG_HTTP_ERR_NONE;
}

static eg_http_err parse_header_line(eg_http_parser *p, char *s, size_t n) {
  eg_http_req *r = &p->req;
  if (is_ows((uint8_t)s[0])) return EG_HTTP_ERR_HEADER_FOLD;
  char *colon = memchr(s, ':', n);
  if (!colon) return EG_HTTP_ERR_HEADER_COLON;
  if (colon == s) return EG_HTTP_ERR_HEADER_NAME;
  if (is_ows((uint8_t)colon[-1])) return EG_HTTP_ERR_HEADER_SPACE;
  for (const char *c = s; c < colon; c++)
    if (!is_tchar((uint8_t)*c)) return EG_HTTP_ERR_HEADER_NAME;
  char *v = colon + 1, *end = s + n;
  while (v < end && is_ows((uint8_t)*v)) v++;
  while (end > v && is_ows((uint8_t)end[-1])) end--;
  for (const char *c = v; c < end; c++) {
    const uint8_t b = (uint8_t)*c;
    if (b != '\t' && (b < 0x20 || b == 0x7F)) return EG_HTTP_ERR_HEADER_VALUE;
  }
  if (r->nheaders == EG_HTTP_MAX_HEADERS) return EG_HTTP_ERR_TOO_MANY_HEADERS;
  *colon = '\0';
  *end = '\0';
  r->headers[r->nheaders++] = (eg_http_header){s, v};
  if (ieq(s, "host")) {
    if (++p->hosts > 1) return EG_HTTP_ERR_HOST_DUPLICATE;
    r->host = v;
  } else if (ieq(s, "content-length")) {
    return parse_content_length(p, v);
  } else if (ieq(s, "transfer-encoding")) {
    return EG_HTTP_ERR_TRANSFER_ENCODING;
  }
  return EG_HTTP_ERR_NONE;
}

/* The empty line: the header section is complete. */
static eg_http_err end_of_head(eg_http_parser *p) {
  eg_http_req *r = &p->req;
  if (r->version_minor == 1 && p->hosts == 0) return EG_HTTP_ERR_HOST_MISSING;
  if (r->content_length > p->body_max) return EG_HTTP_ERR_BODY_TOO_LARGE;
  bool close = false, keep = false;
  for (size_t i = 0; i < r->nheaders; i++)
    if (ieq(r->headers[i].name, "connection")) {
      close = close || eg_http_list_has(r->headers[i].value, "close");
      keep = keep || eg_http_list_has(r->headers[i].value, "keep-alive");
    }
  /* RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive". */
  r->keep_alive = !close && (r->version_minor == 1 || keep);
  return EG_HTTP_ERR_NONE;
}

/* A line (without CR/LF) ends at p->len. Returns an error, or NONE with
 * p->phase moved on. */
static eg_http_err end_line(eg_http_parser *p) {
  char *s = (char *)p->buf + p->line_start;
  const size_t n = p->len - p->line_start;
  switch (p->phase) {
  case EG_HTTP_P_START:
    return EG_HTTP_ERR_NONE; /* an empty line before the request (RFC 9112 2.2) */
  case EG_HTTP_P_LINE: {
    p->buf[p->len++] = '\0'; /* room was kept for it */
    const eg_http_err e = parse_request_line(p, s, n);
    p->phase = EG_HTTP_P_HEADER;
    p->line_start = p->len;
    return e;
  }
  case EG_HTTP_P_HEADER: {
    if (n == 0) {
      const eg_http_err e = end_of_head(p);
      if (e == EG_HTTP_ERR_NONE) p->phase = p->req.content_length ? EG_HTTP_P_BODY : EG_HTTP_P_DONE;
      if (p->phase == EG_HTTP_P_BODY) p->req.body = p->buf + p->len;
      return e;
    }
    p->buf[p->len++] = '\0';
    const eg_http_err e = parse_header_line(p, s, n);
    p->line_start = p->len;
    return e;
  }
  case EG_HTTP_P_BODY:
  case EG_HTTP_P_DONE:
  case EG_HTTP_P_ERROR:
    break;
  }
  return EG_HTTP_ERR_NONE;
}

static eg_http_state fail(eg_http_parser *p, eg_http_err e, size_t i, size_t *used) {
  p->phase = EG_HTTP_P_ERROR;
  p->err = e;
  *used = i;
  return EG_HTTP_ERROR;
}

eg_http_state eg_http_push(eg_http_parser *p, const uint8_t *in, size_t n, size_t *used) {
  size_t i = 0;
  while (i < n || p->phase == EG_HTTP_P_DONE) {
    switch (p->phase) {
    case EG_HTTP_P_DONE:
      *used = i;
      return EG_HTTP_DONE;
    case EG_HTTP_P_ERROR:
      *used = 0;
      return EG_HTTP_ERROR;
    case EG_HTTP_P_BODY: {
      const size_t have = (size_t)(p->buf + p->len - p->req.body);
      size_t k = (size_t)p->req.content_length - have;
      if (k > n - i) k = n - i;
      memcpy(p->buf + p->len, in + i, k);
      p->len += k;
      i += k;
      if (have + k == p->req.content_length) p->phase = EG_HTTP_P_DONE;
      continue;
    }
    case EG_HTTP_P_START:
    case EG_HTTP_P_LINE:
    case EG_HTTP_P_HEADER:
      break;
    }
    const uint8_t c = in[i++];
    if (p->cr && c != '\n') return fail(p, EG_HTTP_ERR_LINE_ENDING, i, used);
    p->cr = false;
    if (c == '\r') {
      p->cr = true;
      continue;
    }
    if (c == '\n') {
      const eg_http_err e = end_line(p);
      if (e != EG_HTTP_ERR_NONE) return fail(p, e, i, used);
      continue;
    }
    if (p->phase == EG_HTTP_P_START) {
      p->phase = EG_HTTP_P_LINE;
      p->line_start = p->len;
    }
    if (p->phase == EG_HTTP_P_LINE && p->len - p->line_start >= p->line_max)
      return fail(p, EG_HTTP_ERR_URI_TOO_LONG, i, used);
    if (p->len + 1 >= p->head_max) return fail(p, EG_HTTP_ERR_HEADERS_TOO_LARGE, i, used); /* +1: the line's NUL */
    p->buf[p->len++] = c;
  }
  *used = i;
  return p->phase == EG_HTTP_P_ERROR ? EG_HTTP_ERROR : EG_HTTP_MORE;
}

/* -------------------------------------------------------------- helpers */

const char *eg_http_header_get(const eg_http_req *r, const char *name) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (ieq(r->headers[i].name, name)) return r->headers[i].value;
  return NULL;
}

bool eg_http_list_has(const char *list, const char *token) {
  const size_t tn = strlen(token);
  const char *s = list;
  while (*s) {
    while (*s == ',' || is_ows((uint8_t)*s)) s++;
    const char *e = s;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > s && is_ows((uint8_t)t[-1])) t--;
    if ((size_t)(t - s) == tn && ieq_n(s, token, tn)) return true;
    s = e;
  }
  return false;
}

/* Find name=value in a list of items separated by `sep`, items trimmed of
 * spaces; copy the value. */
static bool find_pair(const char *list, char sep, const char *name, char *out, size_t cap) {
  const size_t nn = strlen(name);
  const char *s = list;
  while (*s) {
    while (*s == sep || *s == ' ') s++;
    const char *e = strchr(s, sep);
    if (!e) e = s + strlen(s);
    if ((size_t)(e - s) > nn && memcmp(s, name, nn) == 0 && s[nn] == '=') {
      const char *v = s + nn + 1;
      size_t vn = (size_t)(e - v);
      while (vn && v[vn - 1] == ' ') vn--;
      if (vn + 1 > cap) return false;
      memcpy(out, v, vn);
      out[vn] = '\0';
      return true;
    }
    s = e;
  }
  return false;
}

bool eg_http_query_get(const char *query, const char *name, char *out, size_t cap) {
  return query && find_pair(query, '&', name, out, cap);
}

bool eg_http_cookie_get(const eg_http_req *r, const char *name, char *out, size_t cap) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (ieq(r->headers[i].name, "cookie") && find_pair(r->headers[i].value, ';', name, out, cap)) return true;
  return false;
}
