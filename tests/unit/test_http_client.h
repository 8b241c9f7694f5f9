/* test_http_client.h - a plain-socket HTTP client for the server tests
 * (test_http_server.c, test_dash.c), in the same thread as the server's
 * loop: every wait pumps the loop (uv_run NOWAIT) between non-blocking
 * reads, so the test never blocks the server it talks to. Waits are bounded
 * by a deadline (safety nets, not measurements). Header-only: each test
 * program includes it once. */
#ifndef EG_TEST_HTTP_CLIENT_H
#define EG_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define TCL_WAIT_MS 5000
/* Not every test program uses every helper. */
#define TCL_FN static __attribute__((unused))

TCL_FN uint64_t tcl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop for about ms milliseconds. */
TCL_FN void pump(uv_loop_t *loop, int ms) {
  const uint64_t end = tcl_now_ms() + (uint64_t)ms;
  do {
    uv_run(loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
  } while (tcl_now_ms() < end);
}

/* Run the loop until cond(arg) or ms pass; returns cond's last value. */
TCL_FN bool pump_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, int ms) {
  const uint64_t end = tcl_now_ms() + (uint64_t)ms;
  for (;;) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (cond(arg)) return true;
    if (tcl_now_ms() >= end) return false;
    poll(NULL, 0, 1);
  }
}

typedef struct tcl {
  int fd;
  char *buf; /* received, not yet consumed; NUL terminated */
  size_t len, cap;
  bool eof;
} tcl;

/* Connect to 127.0.0.1:port (the kernel completes the handshake from the
 * listen backlog, so this does not need the loop). rcvbuf > 0 shrinks the
 * receive buffer first (a client that never reads fills up sooner). */
TCL_FN void tcl_open(tcl *c, int port, int rcvbuf) {
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) abort();
  if (rcvbuf > 0) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) abort();
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  c->cap = 4096;
  c->buf = calloc(1, c->cap);
  if (!c->buf) abort();
}

TCL_FN void tcl_close(tcl *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  free(c->buf);
  c->buf = NULL;
}

/* Send everything, pumping the loop while the socket is full. */
TCL_FN void tcl_send(uv_loop_t *loop, tcl *c, const void *data, size_t n) {
  const char *p = data;
  const uint64_t end = tcl_now_ms() + TCL_WAIT_MS;
  while (n) {
    const ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
      continue;
    }
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return; /* the server closed: the test reads why */
    if (tcl_now_ms() > end) return;
    uv_run(loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
  }
}

TCL_FN void tcl_sends(uv_loop_t *loop, tcl *c, const char *s) { tcl_send(loop, c, s, strlen(s)); }

/* Read what is there (no waiting); true if anything arrived or EOF. */
TCL_FN bool tcl_poll(tcl *c) {
  bool got = false;
  for (;;) {
    if (c->cap - c->len < 4096) {
      c->cap *= 2;
      c->buf = realloc(c->buf, c->cap);
      if (!c->buf) abort();
    }
    const ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (k > 0) {
      c->len += (size_t)k;
      c->buf[c->len] = '\0';
      got = true;
      continue;
    }
    if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      got = got || !c->eof;
      c->eof = true;
    }
    return got;
  }
}

/* Drop the first n received bytes. */
TCL_FN void tcl_consume(tcl *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
  c->buf[c->len] = '\0';
}

/* Pump until the buffer holds `s` (true) or EOF / the deadline. */
TCL_FN bool tcl_wait_for(uv_loop_t *loop, tcl *c, const char *s, int ms) {
  const uint64_t end = tcl_now_ms() + (uint64_t)ms;
  for (;;) {
    uv_run(loop, UV_RUN_NOWAIT);
    tcl_poll(c);
    if (strstr(c->buf, s)) return true;
    if (c->eof || tcl_now_ms() >= end) return false;
    poll(NULL, 0, 1);
  }
}

/* Pump until the server closes the connection (true) or the deadline. */
TCL_FN bool tcl_wait_eof(uv_loop_t *loop, tcl *c, int ms) {
  const uint64_t end = tcl_now_ms() + (uint64_t)ms;
  for (;;) {
    uv_run(loop, UV_RUN_NOWAIT);
    tcl_poll(c);
    if (c->eof) return true;
    if (tcl_now_ms() >= end) return false;
    poll(NULL, 0, 1);
  }
}

typedef struct tresp {
  int status;
  char head[4096];  /* the header lines, "\r\n"-separated */
  char *body;       /* Content-Length bytes (NUL terminated), or NULL */
  size_t body_len;
} tresp;

/* The value of a response header (case-insensitive name), or NULL; copied
 * into a static buffer valid until the next call. */
TCL_FN const char *tresp_header(const tresp *r, const char *name) {
  static char val[1024];
  const size_t n = strlen(name);
  for (const char *p = r->head; *p;) {
    const char *e = strstr(p, "\r\n");
    if (!e) e = p + strlen(p);
    if ((size_t)(e - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ') v++;
      snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
      return val;
    }
    p = *e ? e + 2 : e;
  }
  return NULL;
}

TCL_FN void tresp_free(tresp *r) {
  free(r->body);
  r->body = NULL;
}

/* Read one whole response (status line, headers, Content-Length body; no
 * body when head_only) and consume it. false on EOF or the deadline. */
TCL_FN bool tcl_response(uv_loop_t *loop, tcl *c, tresp *r, bool head_only) {
  memset(r, 0, sizeof *r);
  if (!tcl_wait_for(loop, c, "\r\n\r\n", TCL_WAIT_MS)) return false;
  const char *end = strstr(c->buf, "\r\n\r\n");
  const size_t hl = (size_t)(end - c->buf);
  if (sscanf(c->buf, "HTTP/1.1 %d", &r->status) != 1) return false;
  const char *first = strstr(c->buf, "\r\n");
  snprintf(r->head, sizeof r->head, "%.*s", (int)(end - first - 2 < 0 ? 0 : end - first - 2), first + 2);
  const char *cl = tresp_header(r, "content-length");
  const size_t blen = cl && !head_only ? strtoul(cl, NULL, 10) : 0;
  const uint64_t deadline = tcl_now_ms() + TCL_WAIT_MS;
  while (c->len < hl + 4 + blen) {
    uv_run(loop, UV_RUN_NOWAIT);
    tcl_poll(c);
    if (c->len >= hl + 4 + blen) break;
    if (c->eof || tcl_now_ms() > deadline) return false;
    poll(NULL, 0, 1);
  }
  r->body = malloc(blen + 1);
  if (!r->body) abort();
  memcpy(r->body, c->buf + hl + 4, blen);
  r->body[blen] = '\0';
  r->body_len = blen;
  tcl_consume(c, hl + 4 + blen);
  return true;
}

/* GET (or any method) with Host: localhost on a fresh connection, read the
 * response, close. extra: more header lines ("X: y\r\n") or NULL. */
TCL_FN bool http_once(uv_loop_t *loop, int port, const char *method, const char *target, const char *extra, tresp *r) {
  tcl c;
  tcl_open(&c, port, 0);
  char req[2048];
  snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s\r\n", method, target,
           extra ? extra : "");
  tcl_sends(loop, &c, req);
  const bool ok = tcl_response(loop, &c, r, strcmp(method, "HEAD") == 0);
  tcl_close(&c);
  return ok;
}

#endif
