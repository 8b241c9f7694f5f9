/* test_http_server.c - the HTTP server (src/http_server.c) over real
 * loopback sockets on a libuv loop: keep-alive, HTTP/1.0, pipelining (in
 * order, with read backpressure: a client that pipelines and never reads
 * costs at most about out_cap), HEAD, malformed requests answered and
 * closed, request and stall timeouts, streams (shared buffers, a client that
 * never reads is dropped at out_cap), the connection limit, a handler that
 * does not answer, bind errors, and closing with clients connected.
 *
 * The client is a plain non-blocking socket in the same thread; every wait
 * pumps the loop (test_http_client.h). Every test ends with the loop closed
 * (no handle left) and as many fds open as it found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fdcheck.h"
#include <signal.h>
#include "test_http_client.h"

#include "http_server.h"

/* ------------------------------------------------------------- fixture */

#define BIG_LEN (64 * 1024)

typedef struct srv {
  uv_loop_t loop;
  eg_http_server *s;
  int port;
  size_t requests;
  size_t max_queued;          /* the most output queued at any request */
  eg_http_conn *stream;       /* the open stream, if any */
  size_t streams_closed;
  bool closed;
  bool no_answer;             /* the handler forgets to answer */
  char *big;
} srv;

static void on_request(void *ctx, eg_http_conn *c, const eg_http_req *r) {
  srv *t = ctx;
  t->requests++;
  const size_t q = eg_http_conn_queued(c);
  if (q > t->max_queued) t->max_queued = q;
  if (t->no_answer) return;
  if (strcmp(r->path, "/stream") == 0) {
    if (eg_http_stream_begin(c, 200, "Cache-Control: no-store\r\n", "text/event-stream")) t->stream = c;
    return;
  }
  if (strcmp(r->path, "/big") == 0) {
    eg_http_respond(c, 200, NULL, "application/octet-stream", t->big, BIG_LEN);
    return;
  }
  /* Echo: "<method> <path>" so pipelined answers can be told apart. */
  char body[256];
  const int n = snprintf(body, sizeof body, "%s %s", r->method, r->path);
  eg_http_respond(c, 200, "X-Test: yes\r\n", "text/plain", body, (size_t)n);
}

static void on_stream_closed(void *ctx, eg_http_conn *c) {
  srv *t = ctx;
  if (t->stream == c) t->stream = NULL;
  t->streams_closed++;
}

static void start(srv *t, const eg_http_server_opts *o) {
  memset(t, 0, sizeof *t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  t->big = malloc(BIG_LEN);
  assert_non_null(t->big);
  for (size_t i = 0; i < BIG_LEN; i++) t->big[i] = (char)('a' + i % 26);
  const eg_http_server_cbs cbs = {.on_request = on_request, .on_stream_closed = on_stream_closed};
  eg_fault f;
  eg_fault_clear(&f);
  const eg_http_server_opts def = {0};
  if (eg_http_server_start(&t->s, &t->loop, o ? o : &def, &cbs, t, &f) != EG_OK) fail_msg("start: %s", f.msg);
  t->port = eg_http_server_port(t->s);
  assert_true(t->port > 0);
}

static void closed_cb(void *ctx) { ((srv *)ctx)->closed = true; }

static void stop(srv *t) {
  eg_http_server_close(t->s, closed_cb, t);
  assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
  assert_true(t->closed);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  free(t->big);
}

static void expect_response(srv *t, tcl *c, int status, const char *body, const char *connection) {
  tresp r;
  if (!tcl_response(&t->loop, c, &r, false)) fail_msg("no response (want %d %s); got so far: \"%s\"", status, body, c->buf);
  if (r.status != status || (body && strcmp(r.body, body) != 0))
    fail_msg("got %d \"%s\", want %d \"%s\"", r.status, r.body, status, body ? body : "(any)");
  const char *conn = tresp_header(&r, "connection");
  if (connection && (!conn || strcmp(conn, connection) != 0))
    fail_msg("Connection: got \"%s\", want \"%s\"", conn ? conn : "(none)", connection);
  tresp_free(&r);
}

/* ---------------------------------------------------------------- tests */

static void test_keep_alive(void **state) {
  (void)state;
  srv t;
  start(&t, NULL);
  tcl c;
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c, "GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n");
  expect_response(&t, &c, 200, "GET /one", "keep-alive");
  tcl_sends(&t.loop, &c, "GET /two HTTP/1.1\r\nHost: localhost\r\n\r\n");
  expect_response(&t, &c, 200, "GET /two", "keep-alive");
  assert_int_equal(eg_http_server_conns(t.s), 1);
  /* The last one asks to close: answered, then the server closes. */
  tcl_sends(&t.loop, &c, "GET /three HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  expect_response(&t, &c, 200, "GET /three", "close");
  assert_true(tcl_wait_eof(&t.loop, &c, TCL_WAIT_MS));
  tcl_close(&c);
  /* HTTP/1.0 closes unless it asks to keep the connection. */
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c, "GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  expect_response(&t, &c, 200, "GET /ten", "keep-alive");
  tcl_sends(&t.loop, &c, "GET /old HTTP/1.0\r\n\r\n");
  expect_response(&t, &c, 200, "GET /old", "close");
  assert_true(tcl_wait_eof(&t.loop, &c, TCL_WAIT_MS));
  tcl_close(&c);
  assert_int_equal(t.requests, 5);
  stop(&t);
}

static void test_pipelining_in_order(void **state) {
  (void)state;
  srv t;
  start(&t, NULL);
  tcl c;
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c,
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 4\r\n\r\nbodyGET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n");
  expect_response(&t, &c, 200, "GET /a", "keep-alive");
  /* HEAD: the GET's Content-Length, no body: the next response follows at once. */
  tresp r;
  assert_true(tcl_response(&t.loop, &c, &r, true));
  assert_int_equal(r.status, 200);
  assert_string_equal(tresp_header(&r, "content-length"), "7");
  tresp_free(&r);
  expect_response(&t, &c, 200, "POST /c", "keep-alive");
  expect_response(&t, &c, 200, "GET /d", "close");
  assert_true(tcl_wait_eof(&t.loop, &c, TCL_WAIT_MS));
  if (c.len) fail_msg("bytes after the last response: \"%s\"", c.buf);
  assert_int_equal(t.requests, 4); /* nothing after Connection: close is read */
  tcl_close(&c);
  stop(&t);
}

/* 300 pipelined requests for a 64 KiB body, and the client reads nothing
 * for a while: the server stops reading requests once out_cap / 2 waits, so
 * what it holds stays near out_cap; then every answer arrives, in order. */
static void test_pipelining_backpressure(void **state) {
  (void)state;
  const eg_http_server_opts o = {.out_cap = 256 * 1024};
  srv t;
  start(&t, &o);
  tcl c;
  tcl_open(&c, t.port, 16 * 1024);
  enum { N = 300 };
  static const char one[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  char *all = malloc(N * (sizeof one - 1));
  assert_non_null(all);
  for (int i = 0; i < N; i++) memcpy(all + i * (sizeof one - 1), one, sizeof one - 1);
  tcl_send(&t.loop, &c, all, N * (sizeof one - 1));
  free(all);
  pump(&t.loop, 300);
  const size_t answered_early = t.requests;
  printf("# before the client reads: %zu of %d requests answered, at most %zu bytes queued (out_cap %zu)\n",
         answered_early, N, t.max_queued, o.out_cap);
  assert_true(answered_early < N);
  assert_true(t.max_queued <= o.out_cap / 2 + BIG_LEN);
  for (int i = 0; i < N; i++) {
    tresp r;
    if (!tcl_response(&t.loop, &c, &r, false)) fail_msg("response %d missing", i);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, BIG_LEN);
    assert_memory_equal(r.body, t.big, BIG_LEN);
    tresp_free(&r);
  }
  assert_int_equal(t.requests, N);
  assert_true(t.max_queued <= o.out_cap / 2 + BIG_LEN);
  tcl_close(&c);
  stop(&t);
}

/* Malformed requests get their status, a reason, Connection: close, and the
 * connection ends even though the client sent more. */
static void test_malformed_answered_and_closed(void **state) {
  (void)state;
  static const struct {
    const char *req;
    int status;
  } cases[] = {
    {"GET / HTTP/1.1\r\n\r\n", 400},
    {"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n", 413},
    {"GET / HTTP/1.1\r\nHost: x\r\n\x01: y\r\n\r\n", 400},
  };
  srv t;
  start(&t, NULL);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tcl c;
    tcl_open(&c, t.port, 0);
    tcl_sends(&t.loop, &c, cases[i].req);
    tcl_sends(&t.loop, &c, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    tresp r;
    if (!tcl_response(&t.loop, &c, &r, false)) fail_msg("case %zu: no response", i);
    if (r.status != cases[i].status) fail_msg("case %zu: status %d, want %d (%s)", i, r.status, cases[i].status, r.body);
    assert_string_equal(tresp_header(&r, "connection"), "close");
    assert_non_null(strstr(r.body, eg_http_reason(cases[i].status)));
    tresp_free(&r);
    assert_true(tcl_wait_eof(&t.loop, &c, TCL_WAIT_MS));
    tcl_close(&c);
  }
  /* A request line over the limit: 414, and a header section: 431. */
  char huge[EG_HTTP_HEAD_MAX + 100];
  memset(huge, 'a', sizeof huge);
  memcpy(huge, "GET /", 5);
  tcl c;
  tcl_open(&c, t.port, 0);
  tcl_send(&t.loop, &c, huge, sizeof huge);
  expect_response(&t, &c, 414, NULL, "close");
  tcl_close(&c);
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
  tcl_send(&t.loop, &c, huge, sizeof huge);
  expect_response(&t, &c, 431, NULL, "close");
  tcl_close(&c);
  assert_int_equal(t.requests, 0);
  stop(&t);
}

static void test_unanswered_is_500(void **state) {
  (void)state;
  srv t;
  start(&t, NULL);
  t.no_answer = true;
  tcl c;
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_response(&t, &c, 500, NULL, "close");
  tcl_close(&c);
  stop(&t);
}

static bool conns_zero(void *arg) { return eg_http_server_conns(((srv *)arg)->s) == 0; }

static void test_request_timeout(void **state) {
  (void)state;
  const eg_http_server_opts o = {.request_timeout_ms = 150};
  srv t;
  start(&t, &o);
  /* Slowloris: a request that never ends. */
  tcl c;
  tcl_open(&c, t.port, 0);
  const uint64_t t0 = tcl_now_ms();
  tcl_sends(&t.loop, &c, "GET / HTTP/1.1\r\nHost: x\r\nX-1: a\r\n");
  pump(&t.loop, 60);
  tcl_sends(&t.loop, &c, "X-2: b\r\n");
  assert_true(tcl_wait_eof(&t.loop, &c, TCL_WAIT_MS));
  const uint64_t took = tcl_now_ms() - t0;
  printf("# an unfinished request was dropped after %llu ms (timeout 150)\n", (unsigned long long)took);
  assert_true(took >= 140);
  tcl_close(&c);
  /* An idle keep-alive connection too, after its last answer. */
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_response(&t, &c, 200, "GET /x", "keep-alive");
  assert_true(tcl_wait_eof(&t.loop, &c, TCL_WAIT_MS));
  tcl_close(&c);
  assert_true(pump_until(&t.loop, conns_zero, &t, TCL_WAIT_MS));
  stop(&t);
}

static bool stream_open(void *arg) { return ((srv *)arg)->stream != NULL; }
static bool stream_gone(void *arg) { return ((srv *)arg)->streams_closed > 0; }

static void test_stream(void **state) {
  (void)state;
  srv t;
  start(&t, NULL);
  tcl a, b;
  tcl_open(&a, t.port, 0);
  tcl_sends(&t.loop, &a, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(pump_until(&t.loop, stream_open, &t, TCL_WAIT_MS));
  eg_http_conn *sa = t.stream;
  tcl_open(&b, t.port, 0);
  t.stream = NULL;
  tcl_sends(&t.loop, &b, "GET /stream HTTP/1.0\r\n\r\n");
  assert_true(pump_until(&t.loop, stream_open, &t, TCL_WAIT_MS));
  eg_http_conn *sb = t.stream;
  /* One shared buffer to both. */
  eg_http_buf *ev = eg_http_buf_new("data: one\n\n", 11);
  assert_true(eg_http_stream_send(sa, ev));
  assert_true(eg_http_stream_send(sb, ev));
  eg_http_buf_unref(ev);
  assert_true(eg_http_stream_send_str(sa, "data: two\n\n"));
  assert_true(tcl_wait_for(&t.loop, &a, "data: two\n\n", TCL_WAIT_MS));
  assert_true(tcl_wait_for(&t.loop, &b, "data: one\n\n", TCL_WAIT_MS));
  /* A stream's head: no Content-Length, Connection: close. */
  assert_non_null(strstr(a.buf, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(a.buf, "Content-Type: text/event-stream\r\n"));
  assert_non_null(strstr(a.buf, "Connection: close\r\n"));
  assert_null(strstr(a.buf, "Content-Length"));
  const char *body = strstr(a.buf, "\r\n\r\n") + 4;
  assert_string_equal(body, "data: one\n\ndata: two\n\n");
  /* Input on a stream is ignored. */
  tcl_sends(&t.loop, &a, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  pump(&t.loop, 30);
  assert_int_equal(t.requests, 2);
  /* The client leaves: on_stream_closed, and sends to it fail from then on. */
  tcl_close(&a);
  assert_true(pump_until(&t.loop, stream_gone, &t, TCL_WAIT_MS));
  assert_int_equal(t.streams_closed, 1);
  (void)sb;
  /* Closing the server closes the other stream. */
  stop(&t);
  assert_int_equal(t.streams_closed, 2);
  tcl_close(&b);
}

/* A stream client that never reads: the server queues up to out_cap, then
 * drops it. How much went out first depends on the kernel's buffers; the
 * memory the server holds does not. */
static void test_stuck_stream_dropped(void **state) {
  (void)state;
  const eg_http_server_opts o = {.out_cap = 64 * 1024};
  srv t;
  start(&t, &o);
  tcl c;
  tcl_open(&c, t.port, 4096);
  tcl_sends(&t.loop, &c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(pump_until(&t.loop, stream_open, &t, TCL_WAIT_MS));
  char chunk[4096];
  memset(chunk, 'e', sizeof chunk);
  eg_http_buf *b = eg_http_buf_new(chunk, sizeof chunk);
  size_t sent = 0, max_queued = 0;
  bool dropped = false;
  for (int i = 0; i < 100000 && !dropped; i++) {
    eg_http_conn *s = t.stream;
    if (!eg_http_stream_send(s, b)) {
      dropped = true;
      break;
    }
    sent += sizeof chunk;
    if (eg_http_conn_queued(s) > max_queued) max_queued = eg_http_conn_queued(s);
    uv_run(&t.loop, UV_RUN_NOWAIT);
  }
  eg_http_buf_unref(b);
  printf("# dropped after %zu bytes; at most %zu queued (out_cap %zu)\n", sent, max_queued, o.out_cap);
  assert_true(dropped);
  assert_true(max_queued <= o.out_cap);
  assert_true(pump_until(&t.loop, stream_gone, &t, TCL_WAIT_MS));
  tcl_close(&c);
  stop(&t);
}

/* Output that makes no progress for stall_timeout_ms drops the stream even
 * under out_cap. */
static void test_stalled_stream_dropped(void **state) {
  (void)state;
  const eg_http_server_opts o = {.out_cap = 64 * 1024 * 1024, .stall_timeout_ms = 150};
  srv t;
  start(&t, &o);
  tcl c;
  tcl_open(&c, t.port, 4096);
  tcl_sends(&t.loop, &c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(pump_until(&t.loop, stream_open, &t, TCL_WAIT_MS));
  /* 16 MiB: more than loopback buffers take, far less than out_cap. */
  const size_t n = 16u << 20;
  char *big = malloc(n);
  assert_non_null(big);
  memset(big, 's', n);
  eg_http_buf *b = eg_http_buf_new(big, n);
  free(big);
  assert_true(eg_http_stream_send(t.stream, b));
  eg_http_buf_unref(b);
  assert_true(eg_http_conn_queued(t.stream) > 0);
  const uint64_t t0 = tcl_now_ms();
  assert_true(pump_until(&t.loop, stream_gone, &t, TCL_WAIT_MS));
  printf("# a stalled stream was dropped after %llu ms (stall timeout 150)\n", (unsigned long long)(tcl_now_ms() - t0));
  tcl_close(&c);
  stop(&t);
}

/* A browser that has gone while events are still being sent: the writes
 * fail with EPIPE and the stream ends; with SIGPIPE at its
 * default disposition a write without MSG_NOSIGNAL would kill the process
 * (found by test_dash before the server sent with MSG_NOSIGNAL). */
static void test_client_gone_no_sigpipe(void **state) {
  (void)state;
  struct sigaction dfl, old;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
  srv t;
  start(&t, NULL);
  tcl c;
  tcl_open(&c, t.port, 0);
  tcl_sends(&t.loop, &c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_true(pump_until(&t.loop, stream_open, &t, TCL_WAIT_MS));
  /* The client reads what came (so its close is a FIN, not a reset) and
   * closes; before the loop notices the EOF, the server writes: the first
   * write is answered with a reset, the next one gets EPIPE. */
  assert_true(tcl_wait_for(&t.loop, &c, "\r\n\r\n", TCL_WAIT_MS));
  tcl_close(&c);
  eg_http_conn *sc = t.stream;
  for (int i = 0; i < 3; i++) {
    poll(NULL, 0, 20);
    eg_http_stream_send_str(sc, "data: still here?\n\n");
  }
  assert_true(pump_until(&t.loop, stream_gone, &t, TCL_WAIT_MS));
  stop(&t);
  assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

static void test_connection_limit(void **state) {
  (void)state;
  const eg_http_server_opts o = {.max_conns = 3};
  srv t;
  start(&t, &o);
  tcl c[4];
  for (int i = 0; i < 3; i++) {
    tcl_open(&c[i], t.port, 0);
    tcl_sends(&t.loop, &c[i], "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    t.stream = NULL;
    assert_true(pump_until(&t.loop, stream_open, &t, TCL_WAIT_MS));
  }
  tcl_open(&c[3], t.port, 0);
  assert_true(tcl_wait_eof(&t.loop, &c[3], TCL_WAIT_MS));
  assert_non_null(strstr(c[3].buf, "HTTP/1.1 503 Service Unavailable\r\n"));
  tcl_close(&c[3]);
  /* One leaves, one more may come. */
  tcl_close(&c[0]);
  assert_true(pump_until(&t.loop, stream_gone, &t, TCL_WAIT_MS));
  tcl_open(&c[0], t.port, 0);
  tcl_sends(&t.loop, &c[0], "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_response(&t, &c[0], 200, "GET /x", "keep-alive");
  stop(&t);
  for (int i = 0; i < 3; i++) tcl_close(&c[i]);
}

static void test_bind_errors(void **state) {
  (void)state;
  srv t;
  start(&t, NULL);
  eg_http_server *s2 = NULL;
  const eg_http_server_cbs cbs = {.on_request = on_request};
  eg_fault f;
  eg_fault_clear(&f);
  const eg_http_server_opts taken = {.port = t.port};
  assert_int_equal(eg_http_server_start(&s2, &t.loop, &taken, &cbs, &t, &f), EG_IO);
  assert_null(s2);
  assert_non_null(strstr(f.msg, "already in use"));
  const eg_http_server_opts name = {.address = "localhost"};
  assert_int_equal(eg_http_server_start(&s2, &t.loop, &name, &cbs, &t, &f), EG_INVAL);
  assert_non_null(strstr(f.msg, "localhost: not a numeric"));
  const eg_http_server_opts port = {.port = 70000};
  assert_int_equal(eg_http_server_start(&s2, &t.loop, &port, &cbs, &t, &f), EG_INVAL);
  /* IPv6 loopback, where the machine has it. */
  const eg_http_server_opts v6 = {.address = "::1"};
  if (eg_http_server_start(&s2, &t.loop, &v6, &cbs, &t, &f) == EG_OK) {
    assert_true(eg_http_server_port(s2) > 0);
    eg_http_server_close(s2, NULL, NULL);
  }
  stop(&t);
}

int main(void) {
  /* libuv opens process-wide fds with the first loop: open them before the
   * fd counts start. */
  uv_loop_t warm;
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_keep_alive, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pipelining_in_order, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pipelining_backpressure, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_malformed_answered_and_closed, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_unanswered_is_500, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_request_timeout, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_stream, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_stuck_stream_dropped, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_stalled_stream_dropped, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_client_gone_no_sigpipe, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_connection_limit, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_bind_errors, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
