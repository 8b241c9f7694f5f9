#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define DEF_MAX_CONNS 256
#define DEF_OUT_CAP (1u << 20)
#define DEF_REQUEST_TIMEOUT_MS 30000
#define DEF_STALL_TIMEOUT_MS 30000
#define LINGER_MS 2000
#define ACCEPT_PAUSE_MS 100 /* out of fds: stop accepting for a moment */
#define ACCEPT_BATCH 64
#define READ_BUF 4096
#define PARSE_BUF (EG_HTTP_HEAD_MAX + EG_HTTP_BODY_MAX)
#define IOV_MAX_SEND 16

/* Sockets are plain non-blocking fds watched by uv_poll, as the ports are
 * (src/port.c): every send passes MSG_NOSIGNAL, so a browser that has gone
 * gives EPIPE instead of killing the station with SIGPIPE (uv_write uses
 * writev, which cannot be told so), and the output queue is ours, counted
 * to the byte for out_cap. */

typedef enum conn_state {
  CONN_READING,   /* parsing and answering requests */
  CONN_STREAMING, /* a stream's body is being written; input is discarded */
  CONN_FINISHING, /* the last response is queued: shut down, then linger */
  CONN_CLOSING    /* handles closing; freed in the close callback */
} conn_state;

typedef struct outq {
  eg_http_buf *buf;
  size_t off; /* bytes of buf already sent */
  struct outq *next;
} outq;

struct eg_http_conn {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd;
  eg_http_server *srv;
  eg_http_conn *prev, *next;
  conn_state state;
  int open_handles;      /* poll + timer; the fd is closed and c freed at 0 */
  int events;            /* what the poll watches now */
  bool paused;           /* requests not read: too much output waiting */
  bool is_head;          /* the request being answered is HEAD */
  bool keep_alive;       /* ... and allows another */
  bool answered;         /* ... and was answered */
  bool stream;           /* on_stream_closed is owed */
  bool shut;             /* our side is shut down: lingering */
  outq *out_head, *out_tail;
  size_t queued;         /* bytes in the queue not yet sent */
  uint64_t sent;         /* bytes sent in all; stall detection */
  uint64_t armed_sent;
  size_t pend_len;       /* unparsed bytes kept at rbuf while paused */
  void *data;
  char peer[64];
  eg_http_parser parser;
  uint8_t pbuf[PARSE_BUF];
  uint8_t rbuf[READ_BUF];
};

struct eg_http_server {
  uv_loop_t *loop;
  uv_poll_t listen_poll;
  uv_timer_t accept_timer;
  int listen_fd;
  eg_http_server_opts o;
  eg_http_server_cbs cbs;
  void *ctx;
  int port;
  size_t nconns;
  eg_http_conn *conns;
  bool closing;
  int open_handles; /* listen_poll + accept_timer */
  void (*on_closed)(void *ctx);
  void *closed_ctx;
};

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
static void on_poll(uv_poll_t *h, int status, int events);

static void maybe_finish_server(eg_http_server *s) {
  if (!s->closing || s->open_handles || s->nconns) return;
  void (*cb)(void *) = s->on_closed;
  void *ctx = s->closed_ctx;
  free(s);
  if (cb) cb(ctx);
}

static void drop_queue(eg_http_conn *c) {
  while (c->out_head) {
    outq *q = c->out_head;
    c->out_head = q->next;
    eg_http_buf_unref(q->buf);
    free(q);
  }
  c->out_tail = NULL;
  c->queued = 0;
}

static void conn_handle_closed(uv_handle_t *h) {
  eg_http_conn *c = h->data;
  if (--c->open_handles) return;
  eg_http_server *s = c->srv;
  close(c->fd); /* after the poll handle is closed, as libuv asks */
  if (c->stream && s->cbs.on_stream_closed) s->cbs.on_stream_closed(s->ctx, c);
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  free(c);
  maybe_finish_server(s);
}

/* Close now; what is queued is dropped. */
static void conn_close(eg_http_conn *c) {
  if (c->state == CONN_CLOSING) return;
  c->state = CONN_CLOSING;
  drop_queue(c);
  uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

size_t eg_http_conn_queued(const eg_http_conn *c) { return c->queued; }
void eg_http_conn_set_data(eg_http_conn *c, void *data) { c->data = data; }
void *eg_http_conn_data(const eg_http_conn *c) { return c->data; }
const char *eg_http_conn_peer(const eg_http_conn *c) { return c->peer; }

/* Watch for input unless paused or lingering is over; for output while any
 * is queued. */
static void watch(eg_http_conn *c) {
  if (c->state == CONN_CLOSING) return;
  const int ev = (c->paused ? 0 : UV_READABLE) | (c->queued ? UV_WRITABLE : 0);
  if (ev == c->events) return;
  c->events = ev;
  if (ev) uv_poll_start(&c->poll, ev, on_poll);
  else uv_poll_stop(&c->poll);
}

static void on_timer(uv_timer_t *t);

/* Watch queued output: the timer drops the connection if not one byte of it
 * is taken for stall_timeout_ms. */
static void arm_stall(eg_http_conn *c) {
  if (uv_is_active((uv_handle_t *)&c->timer)) return;
  c->armed_sent = c->sent;
  uv_timer_start(&c->timer, on_timer, c->srv->o.stall_timeout_ms, 0);
}

static void arm_request(eg_http_conn *c) {
  uv_timer_start(&c->timer, on_timer, c->srv->o.request_timeout_ms, 0);
}

static void on_timer(uv_timer_t *t) {
  eg_http_conn *c = t->data;
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
    if (c->queued == 0) return;
    if (c->sent != c->armed_sent) {
      arm_stall(c);
      return;
    }
    conn_close(c); /* stuck: nothing taken for stall_timeout_ms */
    return;
  case CONN_CLOSING:
    return;
  }
}

static void resume_reading(eg_http_conn *c);

/* Our side is done: FIN once the queue is empty, then discard input until
 * the client closes or LINGER_MS pass. */
static void shut_when_drained(eg_http_conn *c) {
  if (c->state != CONN_FINISHING || c->queued || c->shut) return;
  c->shut = true;
  shutdown(c->fd, SHUT_WR);
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
}

/* Send what the kernel takes now. false: the connection failed and is
 * closing. */
static bool flush(eg_http_conn *c) {
  while (c->out_head) {
    struct iovec iov[IOV_MAX_SEND];
    int n = 0;
    for (outq *q = c->out_head; q && n < IOV_MAX_SEND; q = q->next, n++)
      iov[n] = (struct iovec){q->buf->data + q->off, q->buf->len - q->off};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    const ssize_t k = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      conn_close(c); /* EPIPE, ECONNRESET...: the client has gone */
      return false;
    }
    size_t left = (size_t)k;
    c->sent += left;
    c->queued -= left;
    while (left && c->out_head) {
      outq *q = c->out_head;
      const size_t avail = q->buf->len - q->off;
      if (left < avail) {
        q->off += left;
        break;
      }
      left -= avail;
      c->out_head = q->next;
      eg_http_buf_unref(q->buf);
      free(q);
    }
    if (!c->out_head) c->out_tail = NULL;
  }
  if (c->paused && c->queued <= c->srv->o.out_cap / 4) resume_reading(c);
  if (c->state == CONN_CLOSING) return false;
  shut_when_drained(c);
  watch(c);
  if (c->queued && c->state != CONN_READING) arm_stall(c);
  return true;
}

/* Queue b (a reference is taken) and send what can go now. false: dropped
 * for exceeding out_cap, or the client has gone; the connection is closing.
 * A write is always allowed on an empty queue, so one response larger than
 * out_cap still goes out. */
static bool conn_write(eg_http_conn *c, eg_http_buf *b) {
  if (c->state == CONN_CLOSING) return false;
  if (c->queued && c->queued + b->len > c->srv->o.out_cap) {
    conn_close(c);
    return false;
  }
  if (b->len == 0) return true;
  outq *q = malloc(sizeof *q);
  if (!q) {
    conn_close(c);
    return false;
  }
  *q = (outq){eg_http_buf_ref(b), 0, NULL};
  if (c->out_tail) c->out_tail->next = q;
  else c->out_head = q;
  c->out_tail = q;
  c->queued += b->len;
  /* Already waiting for the socket to drain: the poll sends it all then. */
  if (c->events & UV_WRITABLE) return true;
  return flush(c);
}

/* The last response is queued: the connection ends after it. */
static void finish(eg_http_conn *c) {
  if (c->state == CONN_CLOSING || c->state == CONN_FINISHING) return;
  c->state = CONN_FINISHING;
  c->paused = false;
  uv_timer_stop(&c->timer);
  shut_when_drained(c);
  if (c->queued) arm_stall(c);
  watch(c);
}

/* ------------------------------------------------------------ responses */

/* RFC 9110 5.6.7 IMF-fixdate, without strftime's locale. */
static void http_date(char out[64]) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* One buffer: status line, headers, and (unless HEAD) the body. */
static eg_http_buf *build(const eg_http_conn *c, int status, const char *headers, const char *ctype, const void *body,
                          size_t len, bool stream, bool keep) {
  char date[64], clen[48] = "";
  http_date(date);
  if (!stream && status != 204) snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len); /* RFC 9110 8.6 */
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
    if (c->queued > c->srv->o.out_cap / 2) {
      memmove(c->rbuf, in, n);
      c->pend_len = n;
      c->paused = true;
      watch(c);
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
  watch(c);
}

static void on_readable(eg_http_conn *c) {
  for (int rounds = 0; rounds < 16 && c->state != CONN_CLOSING && !c->paused; rounds++) {
    const ssize_t k = recv(c->fd, c->rbuf, READ_BUF, MSG_DONTWAIT);
    if (k == 0) {
      conn_close(c); /* the client is done, or gone */
      return;
    }
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) conn_close(c);
      return;
    }
    switch (c->state) {
    case CONN_READING:
      feed(c, c->rbuf, (size_t)k);
      break;
    case CONN_STREAMING:
    case CONN_FINISHING:
    case CONN_CLOSING:
      break; /* discarded */
    }
    if ((size_t)k < READ_BUF) return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  eg_http_conn *c = h->data;
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (events & UV_WRITABLE) flush(c);
  if ((events & (UV_READABLE | UV_DISCONNECT)) && c->state != CONN_CLOSING) on_readable(c);
}

static void conn_start(eg_http_server *s, int fd) {
  eg_http_conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  c->srv = s;
  c->fd = fd;
  if (uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
    close(fd);
    free(c);
    return;
  }
  uv_timer_init(s->loop, &c->timer);
  c->poll.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  eg_http_parser_init(&c->parser, c->pbuf, sizeof c->pbuf, EG_HTTP_BODY_MAX);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  }
  if (s->nconns > s->o.max_conns) {
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* best effort */ }
    conn_close(c);
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* events are small and must go out at once */
  arm_request(c);
  watch(c);
}

static void accept_again(uv_timer_t *t);

static void on_accept(uv_poll_t *h, int status, int events) {
  eg_http_server *s = h->data;
  (void)events;
  if (status < 0 || s->closing) return;
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    const int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      conn_start(s, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      /* The pending connection stays readable: without a pause the loop
       * would spin on it. */
      uv_poll_stop(&s->listen_poll);
      uv_timer_start(&s->accept_timer, accept_again, ACCEPT_PAUSE_MS, 0);
    }
    return;
  }
}

static void accept_again(uv_timer_t *t) {
  eg_http_server *s = t->data;
  if (!s->closing) uv_poll_start(&s->listen_poll, UV_READABLE, on_accept);
}

/* --------------------------------------------------------------- server */

eg_err eg_http_server_start(eg_http_server **out, uv_loop_t *loop, const eg_http_server_opts *o,
                            const eg_http_server_cbs *cbs, void *ctx, eg_fault *f) {
  *out = NULL;
  const char *address = o->address ? o->address : "127.0.0.1";
  if (o->port < 0 || o->port > 65535)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "port %d is out of range (0..65535)", o->port);
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t alen = 0;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)o->port);
    alen = sizeof *a4;
  } else if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)o->port);
    alen = sizeof *a6;
  } else {
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "%s: not a numeric IPv4 or IPv6 address", address);
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return eg_fault_set(f, EG_IO, EG_STAGE_NONE, -1, "cannot make a socket: %s", strerror(errno));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* restart at once after a stop */
  if (bind(fd, (struct sockaddr *)&addr, alen) != 0 || listen(fd, 128) != 0) {
    const int err = errno;
    close(fd);
    return eg_fault_set(f, EG_IO, EG_STAGE_NONE, -1, "cannot listen on %s port %d: %s", address, o->port,
                        strerror(err));
  }
  eg_http_server *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  s->loop = loop;
  s->listen_fd = fd;
  s->o = *o;
  s->o.address = NULL; /* the caller's string may go */
  if (!s->o.max_conns) s->o.max_conns = DEF_MAX_CONNS;
  if (!s->o.out_cap) s->o.out_cap = DEF_OUT_CAP;
  if (!s->o.request_timeout_ms) s->o.request_timeout_ms = DEF_REQUEST_TIMEOUT_MS;
  if (!s->o.stall_timeout_ms) s->o.stall_timeout_ms = DEF_STALL_TIMEOUT_MS;
  s->cbs = *cbs;
  s->ctx = ctx;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  uv_poll_init_socket(loop, &s->listen_poll, fd);
  uv_timer_init(loop, &s->accept_timer);
  s->listen_poll.data = s->accept_timer.data = s;
  s->open_handles = 2;
  uv_poll_start(&s->listen_poll, UV_READABLE, on_accept);
  *out = s;
  return EG_OK;
}

int eg_http_server_port(const eg_http_server *s) { return s->port; }
size_t eg_http_server_conns(const eg_http_server *s) { return s->nconns; }

static void server_handle_closed(uv_handle_t *h) {
  eg_http_server *s = h->data;
  if (--s->open_handles == 0) close(s->listen_fd);
  maybe_finish_server(s);
}

void eg_http_server_close(eg_http_server *s, void (*on_closed)(void *ctx), void *ctx) {
  if (s->closing) return;
  s->closing = true;
  s->on_closed = on_closed;
  s->closed_ctx = ctx;
  for (eg_http_conn *c = s->conns; c; c = c->next) conn_close(c);
  uv_close((uv_handle_t *)&s->listen_poll, server_handle_closed);
  uv_close((uv_handle_t *)&s->accept_timer, server_handle_closed);
}
