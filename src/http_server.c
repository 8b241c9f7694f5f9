#include "http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEF_MAX_CONNS 256
#define DEF_OUT_CAP (1u << 20)
#define DEF_REQUEST_TIMEOUT_MS 30000
#define DEF_STALL_TIMEOUT_MS 30000
#define LINGER_MS 2000
#define READ_BUF 4096
#define PARSE_BUF (EG_HTTP_HEAD_MAX + EG_HTTP_BODY_MAX)

typedef enum conn_state {
  CONN_READING,   /* parsing and answering requests */
  CONN_STREAMING, /* a stream's body is being written; input is discarded */
  CONN_FINISHING, /* the last response is queued: shut down, then linger */
  CONN_CLOSING    /* uv_close called; freed in the close callback */
} conn_state;

struct eg_http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  eg_http_server *srv;
  eg_http_conn *prev, *next;
  conn_state state;
  int open_handles;      /* tcp + timer; freed when 0 */
  bool paused;           /* reading stopped: too much output waiting */
  bool is_head;          /* the request being answered is HEAD */
  bool keep_alive;       /* ... and allows another */
  bool answered;         /* ... and was answered */
  bool stream;           /* on_stream_closed is owed */
  bool shut;             /* the shutdown completed: lingering */
  uint64_t writes_done;  /* stall detection: progress since the timer was armed */
  uint64_t armed_writes;
  size_t armed_queued;
  size_t pend_len;       /* unparsed bytes kept at rbuf while paused */
  void *data;
  char peer[64];
  eg_http_parser parser;
  uint8_t pbuf[PARSE_BUF];
  uint8_t rbuf[READ_BUF];
};

struct eg_http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  eg_http_server_opts o;
  eg_http_server_cbs cbs;
  void *ctx;
  int port;
  size_t nconns;
  eg_http_conn *conns;
  bool closing, listener_closed;
  void (*on_closed)(void *ctx);
  void *closed_ctx;
};

typedef struct wreq {
  uv_write_t req;
  eg_http_buf *buf;
} wreq;

/* -------------------------------------------------------------- buffers */

eg_http_buf *eg_http_buf_new(const void *data, size_t len) {
  eg_http_buf *b = malloc(sizeof *b + len + 1);
  if (!b) return NULL;
  b->refs = 1;
  b->len = len;
  if (len) memcpy(b->data, data, len);
  b->data[len] = '\0';
  return b;
}

eg_http_buf *eg_http_buf_ref(eg_http_buf *b) {
  b->refs++;
  return b;
}

void eg_http_buf_unref(eg_http_buf *b) {
  if (b && --b->refs == 0) free(b);
}

/* --------------------------------------------------------- connections */

static void conn_close(eg_http_conn *c);
static void feed(eg_http_conn *c, const uint8_t *in, size_t n);

static void maybe_finish_server(eg_http_server *s) {
  if (!s->closing || !s->listener_closed || s->nconns) return;
  void (*cb)(void *) = s->on_closed;
  void *ctx = s->closed_ctx;
  free(s);
  if (cb) cb(ctx);
}

static void conn_handle_closed(uv_handle_t *h) {
  eg_http_conn *c = h->data;
  if (--c->open_handles) return;
  eg_http_server *s = c->srv;
  if (c->stream && s->cbs.on_stream_closed) s->cbs.on_stream_closed(s->ctx, c);
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  free(c);
  maybe_finish_server(s);
}

/* Close now: queued writes are cancelled (their callbacks run before the
 * close callbacks, so every buffer reference is dropped before the free). */
static void conn_close(eg_http_conn *c) {
  if (c->state == CONN_CLOSING) return;
  c->state = CONN_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

size_t eg_http_conn_queued(const eg_http_conn *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

void eg_http_conn_set_data(eg_http_conn *c, void *data) { c->data = data; }
void *eg_http_conn_data(const eg_http_conn *c) { return c->data; }
const char *eg_http_conn_peer(const eg_http_conn *c) { return c->peer; }

static void on_timer(uv_timer_t *t);

/* Watch queued output: the timer drops the connection if it makes no
 * progress for stall_timeout_ms. */
static void arm_stall(eg_http_conn *c) {
  if (uv_is_active((uv_handle_t *)&c->timer)) return;
  c->armed_writes = c->writes_done;
  c->armed_queued = eg_http_conn_queued(c);
  uv_timer_start(&c->timer, on_timer, c->srv->o.stall_timeout_ms, 0);
}

static void arm_request(eg_http_conn *c) {
  uv_timer_start(&c->timer, on_timer, c->srv->o.request_timeout_ms, 0);
}

static void on_timer(uv_timer_t *t) {
  eg_http_conn *c = t->data;
  const size_t queued = eg_http_conn_queued(c);
  switch (c->state) {
  case CONN_READING:
    conn_close(c); /* the request did not arrive in time */
    return;
  case CONN_STREAMING:
  case CONN_FINISHING:
    if (c->shut) {
      conn_close(c); /* lingered long enough */
      return;
    }
    if (queued == 0) return;
    if (c->writes_done != c->armed_writes || queued < c->armed_queued) {
      arm_stall(c);
      return;
    }
    conn_close(c); /* stuck: no byte taken for stall_timeout_ms */
    return;
  case CONN_CLOSING:
    return;
  }
}

static void resume_reading(eg_http_conn *c);

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  eg_http_conn *c = req->data;
  eg_http_buf_unref(w->buf);
  free(w);
  if (c->state == CONN_CLOSING) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  c->writes_done++;
  if (c->paused && eg_http_conn_queued(c) <= c->srv->o.out_cap / 4) resume_reading(c);
}

/* Queue b (a reference is taken). false: dropped for exceeding out_cap, or
 * the write failed; the connection is closing. A write is always allowed on
 * an empty queue, so one response larger than out_cap still goes out. */
static bool conn_write(eg_http_conn *c, eg_http_buf *b) {
  if (c->state == CONN_CLOSING) return false;
  const size_t queued = eg_http_conn_queued(c);
  if (queued && queued + b->len > c->srv->o.out_cap) {
    conn_close(c);
    return false;
  }
  wreq *w = malloc(sizeof *w);
  if (!w) {
    conn_close(c);
    return false;
  }
  w->buf = eg_http_buf_ref(b);
  w->req.data = c;
  const uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_write) != 0) {
    eg_http_buf_unref(w->buf);
    free(w);
    conn_close(c);
    return false;
  }
  if (c->state != CONN_READING && eg_http_conn_queued(c)) arm_stall(c);
  return true;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  eg_http_conn *c = req->data;
  (void)status;
  if (c->state == CONN_CLOSING) return;
  c->shut = true;
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* The last response is queued: send FIN after it and discard what the client
 * still sends, so the response is not destroyed by a reset. */
static void finish(eg_http_conn *c) {
  if (c->state == CONN_CLOSING || c->state == CONN_FINISHING) return;
  c->state = CONN_FINISHING;
  c->paused = false;
  uv_timer_stop(&c->timer);
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (eg_http_conn_queued(c)) arm_stall(c);
}

/* ------------------------------------------------------------ responses */

/* RFC 9110 5.6.7 IMF-fixdate, without strftime's locale. */
static void http_date(char out[32]) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* One buffer: status line, headers, and (unless HEAD) the body. */
static eg_http_buf *build(const eg_http_conn *c, int status, const char *headers, const char *ctype, const void *body,
                          size_t len, bool stream, bool keep) {
  char date[32], clen[48] = "";
  http_date(date);
  if (!stream) snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
  const char *conn = keep ? "keep-alive" : "close";
  const size_t body_len = c->is_head || stream ? 0 : len;
  const int head_len = snprintf(NULL, 0,
                                "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%s%sConnection: %s\r\n"
                                "X-Content-Type-Options: nosniff\r\n%s\r\n",
                                status, eg_http_reason(status), date, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                                ctype ? "\r\n" : "", clen, conn, headers ? headers : "");
  if (head_len < 0) return NULL;
  eg_http_buf *b = malloc(sizeof *b + (size_t)head_len + body_len + 1);
  if (!b) return NULL;
  b->refs = 1;
  b->len = (size_t)head_len + body_len;
  snprintf(b->data, (size_t)head_len + 1,
           "HTTP/1.1 %d %s\r\nDate: %s\r\n%s%s%s%sConnection: %s\r\n"
           "X-Content-Type-Options: nosniff\r\n%s\r\n",
           status, eg_http_reason(status), date, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
           clen, conn, headers ? headers : "");
  if (body_len) memcpy(b->data + head_len, body, body_len);
  b->data[b->len] = '\0';
  return b;
}

static void send_built(eg_http_conn *c, eg_http_buf *b, bool keep) {
  if (!b) {
    conn_close(c);
    return;
  }
  const bool ok = conn_write(c, b);
  eg_http_buf_unref(b);
  if (ok && !keep) finish(c);
}

void eg_http_respond(eg_http_conn *c, int status, const char *headers, const char *content_type, const void *body,
                     size_t len) {
  if (c->state != CONN_READING || c->answered) return;
  c->answered = true;
  send_built(c, build(c, status, headers, content_type, body, len, false, c->keep_alive), c->keep_alive);
}

bool eg_http_stream_begin(eg_http_conn *c, int status, const char *headers, const char *content_type) {
  if (c->state != CONN_READING || c->answered) return false;
  c->answered = true;
  if (c->is_head) {
    send_built(c, build(c, status, headers, content_type, NULL, 0, true, false), false);
    return false;
  }
  eg_http_buf *b = build(c, status, headers, content_type, NULL, 0, true, false);
  if (!b) {
    conn_close(c);
    return false;
  }
  c->state = CONN_STREAMING;
  c->stream = true;
  c->paused = false;
  uv_timer_stop(&c->timer);
  const bool ok = conn_write(c, b);
  eg_http_buf_unref(b);
  return ok;
}

bool eg_http_stream_send(eg_http_conn *c, eg_http_buf *b) {
  if (c->state != CONN_STREAMING) return false;
  return conn_write(c, b);
}

bool eg_http_stream_send_str(eg_http_conn *c, const char *s) {
  eg_http_buf *b = eg_http_buf_new(s, strlen(s));
  if (!b) return false;
  const bool ok = eg_http_stream_send(c, b);
  eg_http_buf_unref(b);
  return ok;
}

static void respond_error(eg_http_conn *c, int status, const char *text) {
  char body[160];
  const int n = snprintf(body, sizeof body, "%d %s: %s\n", status, eg_http_reason(status), text);
  c->keep_alive = false;
  c->is_head = false;
  c->answered = true;
  send_built(c, build(c, status, NULL, "text/plain; charset=utf-8", body, (size_t)n, false, false), false);
}

/* ---------------------------------------------------------------- input */

static void handle(eg_http_conn *c, const eg_http_req *req) {
  eg_http_server *s = c->srv;
  c->is_head = strcmp(req->method, "HEAD") == 0;
  c->keep_alive = req->keep_alive;
  c->answered = false;
  s->cbs.on_request(s->ctx, c, req);
  if (!c->answered) respond_error(c, 500, "the request was not answered");
}

/* Parse and answer requests in `in`. Stops (keeping the rest at rbuf) when
 * too much output is waiting; resume_reading() continues. */
static void feed(eg_http_conn *c, const uint8_t *in, size_t n) {
  while (c->state == CONN_READING && (n || c->parser.phase == EG_HTTP_P_DONE)) {
    if (eg_http_conn_queued(c) > c->srv->o.out_cap / 2) {
      memmove(c->rbuf, in, n);
      c->pend_len = n;
      if (!c->paused) uv_read_stop((uv_stream_t *)&c->tcp);
      c->paused = true;
      return;
    }
    size_t used = 0;
    const eg_http_state st = eg_http_push(&c->parser, in, n, &used);
    in += used;
    n -= used;
    switch (st) {
    case EG_HTTP_MORE:
      break;
    case EG_HTTP_DONE:
      handle(c, &c->parser.req);
      eg_http_next(&c->parser);
      if (c->state == CONN_READING) arm_request(c);
      break;
    case EG_HTTP_ERROR:
      respond_error(c, eg_http_err_status(c->parser.err), eg_http_err_text(c->parser.err));
      return;
    }
  }
  c->pend_len = 0;
}

static void resume_reading(eg_http_conn *c) {
  c->paused = false;
  const size_t n = c->pend_len;
  c->pend_len = 0;
  feed(c, c->rbuf, n);
  if (c->state == CONN_READING && !c->paused) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  eg_http_conn *c = h->data;
  (void)hint;
  *buf = uv_buf_init((char *)c->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  eg_http_conn *c = st->data;
  if (nread < 0) {
    conn_close(c); /* EOF or error: the client is gone, or done */
    return;
  }
  switch (c->state) {
  case CONN_READING:
    feed(c, (const uint8_t *)buf->base, (size_t)nread);
    return;
  case CONN_STREAMING:
  case CONN_FINISHING:
  case CONN_CLOSING:
    return; /* discarded */
  }
}

static void on_connection(uv_stream_t *listener, int status) {
  eg_http_server *s = listener->data;
  if (status < 0 || s->closing) return;
  eg_http_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  eg_http_parser_init(&c->parser, c->pbuf, sizeof c->pbuf, EG_HTTP_BODY_MAX);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  }
  if (s->nconns > s->o.max_conns) {
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)busy, sizeof busy - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1); /* events are small and must go out at once */
  arm_request(c);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

/* --------------------------------------------------------------- server */

static void free_server(uv_handle_t *h) { free(h->data); }

eg_err eg_http_server_start(eg_http_server **out, uv_loop_t *loop, const eg_http_server_opts *o,
                            const eg_http_server_cbs *cbs, void *ctx, eg_fault *f) {
  *out = NULL;
  eg_http_server *s = calloc(1, sizeof *s);
  if (!s) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  s->loop = loop;
  s->o = *o;
  if (!s->o.address) s->o.address = "127.0.0.1";
  if (!s->o.max_conns) s->o.max_conns = DEF_MAX_CONNS;
  if (!s->o.out_cap) s->o.out_cap = DEF_OUT_CAP;
  if (!s->o.request_timeout_ms) s->o.request_timeout_ms = DEF_REQUEST_TIMEOUT_MS;
  if (!s->o.stall_timeout_ms) s->o.stall_timeout_ms = DEF_STALL_TIMEOUT_MS;
  s->cbs = *cbs;
  s->ctx = ctx;
  if (o->port < 0 || o->port > 65535) {
    free(s);
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "port %d is out of range (0..65535)", o->port);
  }
  struct sockaddr_storage addr;
  if (uv_ip4_addr(s->o.address, o->port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(s->o.address, o->port, (struct sockaddr_in6 *)&addr) != 0) {
    free(s);
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: not a numeric IPv4 or IPv6 address", o->address);
  }
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  int r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (r != 0) {
    eg_fault_set(f, EG_IO, EG_STAGE_NONE, -1, "cannot listen on %s port %d: %s", s->o.address, o->port, uv_strerror(r));
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, free_server);
    return EG_IO;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  *out = s;
  return EG_OK;
}

int eg_http_server_port(const eg_http_server *s) { return s->port; }
size_t eg_http_server_conns(const eg_http_server *s) { return s->nconns; }

static void listener_closed(uv_handle_t *h) {
  eg_http_server *s = h->data;
  s->listener_closed = true;
  maybe_finish_server(s);
}

void eg_http_server_close(eg_http_server *s, void (*on_closed)(void *ctx), void *ctx) {
  if (s->closing) return;
  s->closing = true;
  s->on_closed = on_closed;
  s->closed_ctx = ctx;
  for (eg_http_conn *c = s->conns; c; c = c->next) conn_close(c);
  uv_close((uv_handle_t *)&s->listener, listener_closed);
}
