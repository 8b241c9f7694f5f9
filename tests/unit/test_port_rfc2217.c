/* test_port_rfc2217.c - the rfc2217:// backend against a small RFC 2217
 * server written here: a loopback TCP listener whose accepted socket the
 * test drives itself (reading what the client sent byte for byte, writing
 * Telnet sequences at it), and, for the event-loop test, an echo server on a
 * second uv_poll in the same loop as the client.
 *
 * Expected wire bytes are written out literally from RFC 854/2217 (IAC 255,
 * SB 250, SE 240, WILL 251, WONT 252, DO 253, DONT 254; options BINARY 0,
 * SGA 3, COM-PORT-OPTION 44), not computed by the code under test.
 *
 * Every test checks that it leaves exactly as many open fds as it found.
 * poll() timeouts are safety nets against a hang, never measurements.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fdcheck.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "port.h"
#include "port_backend.h"
#include "port_rfc2217.h"
#include "port_util.h"

#define SAFETY_MS 10000

enum { IAC = 255, DONT = 254, DO = 253, WONT = 252, WILL = 251, SB = 250, NOP = 241, SE = 240 };
enum { BINARY = 0, ECHO_OPT = 1, SGA = 3, TTYPE = 24, NAWS = 31, COMPORT = 44 };

/* ------------------------------------------------------------ helpers */


static void wait_fd(int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events};
  int rc;
  do rc = poll(&pfd, 1, SAFETY_MS);
  while (rc < 0 && errno == EINTR);
  if (rc <= 0) fail_msg("fd %d not ready for 0x%x within %d ms", fd, events, SAFETY_MS);
}

static void read_exact(int fd, uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    wait_fd(fd, POLLIN);
    const ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) fail_msg("read returned %zd (%s) after %zu of %zu bytes", r, strerror(errno), got, n);
    got += (size_t)r;
  }
}

static void write_all(int fd, const void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    const ssize_t w = send(fd, (const uint8_t *)buf + off, n - off, MSG_NOSIGNAL);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
      wait_fd(fd, POLLOUT);
      continue;
    }
    if (w <= 0) fail_msg("write: %s", strerror(errno));
    off += (size_t)w;
  }
}

/* Compare and, on a difference, print where and both sides around it. */
static void assert_bytes(const uint8_t *got, const uint8_t *want, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++) {
    if (got[i] == want[i]) continue;
    char g[64] = "", w[64] = "";
    for (size_t j = i; j < n && j < i + 12; j++) {
      snprintf(g + strlen(g), sizeof g - strlen(g), "%02x ", got[j]);
      snprintf(w + strlen(w), sizeof w - strlen(w), "%02x ", want[j]);
    }
    fail_msg("%s: byte %zu of %zu differs:\n  got  %s\n  want %s", what, i, n, g, w);
  }
}

/* The peer must send exactly these bytes next. */
static void expect_wire(int peer, const uint8_t *want, size_t n, const char *what) {
  uint8_t *got = malloc(n ? n : 1);
  assert_non_null(got);
  read_exact(peer, got, n);
  assert_bytes(got, want, n, what);
  free(got);
}

/* Nothing else was sent before this point: a data byte written now through
 * the port must be the very next byte on the wire. */
static void expect_nothing_more(eg_port *p, int peer) {
  size_t done = 0;
  assert_int_equal(eg_port_write(p, (const uint8_t *)"!", 1, &done), EG_OK);
  assert_int_equal(done, 1);
  uint8_t b = 0;
  read_exact(peer, &b, 1);
  if (b != '!') fail_msg("an unexpected byte 0x%02x was on the wire", b);
}

/* A loopback listener on an ephemeral port; rcvbuf > 0 shrinks what accepted
 * sockets may buffer. Returns the port number. */
static int listen_local(int *lfd, int rcvbuf) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0) assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *lfd = fd;
  return ntohs(a.sin_port);
}

/* Send everything the port queued, waiting for writable as a loop would. */
static void flush_port(eg_port *p) {
  for (int i = 0; eg_port_wants_write(p); i++) {
    if (i > 1000) fail_msg("the port never emptied its queue");
    wait_fd(p->fd, POLLOUT);
    const eg_err e = eg_port_flush_pending(p);
    if (e != EG_OK) fail_msg("flush_pending: %s (%s)", eg_err_name(e), p->errmsg);
  }
}

/* Open rfc2217://127.0.0.1:port at baud and complete the connect. */
static void rfc_open(eg_port *p, int port, uint32_t baud, const char *query) {
  char url[128];
  snprintf(url, sizeof url, "rfc2217://127.0.0.1:%d%s", port, query ? query : "");
  eg_fault f;
  eg_fault_clear(&f);
  eg_err e = eg_port_open(p, url, baud, &f);
  if (e != EG_OK) fail_msg("eg_port_open(%s): %s: %s", url, eg_err_name(e), f.msg);
  assert_ptr_equal(p->backend, &eg__port_rfc2217);
  for (int i = 0; p->connecting && i < 100; i++) {
    wait_fd(p->fd, POLLOUT);
    e = eg_port_finish_connect(p, &f);
    if (e != EG_OK) fail_msg("finish_connect(%s): %s: %s", url, eg_err_name(e), f.msg);
  }
  assert_false(p->connecting);
  flush_port(p);
}

/* What the client sends on connect at 115200 baud, from RFC 2217. */
static const uint8_t HELLO_115200[] = {
    IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, COMPORT,
    IAC, SB, COMPORT, 1, 0x00, 0x01, 0xC2, 0x00, IAC, SE, /* SET-BAUDRATE 115200 big-endian */
    IAC, SB, COMPORT, 2, 8, IAC, SE,                       /* SET-DATASIZE 8 */
    IAC, SB, COMPORT, 3, 1, IAC, SE,                       /* SET-PARITY NONE */
    IAC, SB, COMPORT, 4, 1, IAC, SE,                       /* SET-STOPSIZE 1 */
    IAC, SB, COMPORT, 5, 1, IAC, SE,                       /* SET-CONTROL no flow control */
};

/* Client and accepted server socket, hello consumed. */
static void session(eg_port *p, int *peer) {
  int lfd = -1;
  const int port = listen_local(&lfd, 0);
  rfc_open(p, port, 115200, NULL);
  *peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(*peer >= 0);
  close(lfd);
  expect_wire(*peer, HELLO_115200, sizeof HELLO_115200, "hello");
}

/* Read through the port until it has nothing more: the port returns 0 and
 * the kernel holds nothing for it. */
static size_t port_read_all(eg_port *p, uint8_t *out, size_t cap) {
  size_t got = 0;
  for (;;) {
    size_t done = 0;
    const eg_err e = eg_port_read(p, out + got, cap - got, &done);
    if (e != EG_OK) fail_msg("eg_port_read: %s (%s)", eg_err_name(e), p->errmsg);
    got += done;
    if (done > 0) continue;
    int avail = 0;
    assert_int_equal(ioctl(p->fd, FIONREAD, &avail), 0);
    if (avail == 0) return got;
  }
}

/* Wait until the kernel holds at least n unread bytes for fd. */
static void wait_avail(int fd, int n) {
  for (int avail = 0;;) {
    assert_int_equal(ioctl(fd, FIONREAD, &avail), 0);
    if (avail >= n) return;
    wait_fd(fd, POLLIN);
    struct pollfd pfd = {.fd = fd};
    poll(&pfd, 0, 1); /* more of a segment train may still be on its way */
  }
}

/* --------------------------------------------- the test server's decoder */

/* Decodes what the client sent: data (unescaped) and commands, each with the
 * data offset it came at. Written independently of the port's parser. */
typedef struct srv_cmd {
  size_t at;        /* data bytes before it */
  uint8_t kind;     /* SB, or the verb WILL/WONT/DO/DONT */
  uint8_t b[16];    /* SB: option, command, value (unescaped); verb: option */
  size_t n;
} srv_cmd;

typedef struct srv_dec {
  int st; /* 0 data, 1 after IAC, 2 after a verb */
  uint8_t verb;
  bool in_sb;
  srv_cmd cur;
  uint8_t *data;
  size_t len, cap;
  srv_cmd cmd[64];
  size_t ncmd;
} srv_dec;

static void dec_data(srv_dec *d, uint8_t c) {
  if (d->len == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 4096;
    d->data = realloc(d->data, d->cap);
    assert_non_null(d->data);
  }
  d->data[d->len++] = c;
}

static void dec_cmd(srv_dec *d, const srv_cmd *c) {
  if (d->ncmd == sizeof d->cmd / sizeof d->cmd[0]) fail_msg("test server: too many commands");
  d->cmd[d->ncmd] = *c;
  d->cmd[d->ncmd].at = d->len;
  d->ncmd++;
}

static void dec_feed(srv_dec *d, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const uint8_t c = b[i];
    if (d->st == 2) {
      srv_cmd v = {.kind = d->verb, .b = {c}, .n = 1};
      dec_cmd(d, &v);
      d->st = 0;
    } else if (d->st == 1) {
      d->st = 0;
      if (c == IAC) {
        if (d->in_sb) {
          if (d->cur.n < sizeof d->cur.b) d->cur.b[d->cur.n++] = c;
        } else {
          dec_data(d, c);
        }
      } else if (c == SB) {
        d->in_sb = true;
        memset(&d->cur, 0, sizeof d->cur);
        d->cur.kind = SB;
      } else if (c == SE) {
        if (!d->in_sb) fail_msg("client sent SE outside a subnegotiation");
        dec_cmd(d, &d->cur);
        d->in_sb = false;
      } else if (c >= WILL && c <= DONT) {
        d->verb = c;
        d->st = 2;
      } else {
        fail_msg("client sent IAC %u", c);
      }
    } else if (c == IAC) {
      d->st = 1;
    } else if (d->in_sb) {
      if (d->cur.n < sizeof d->cur.b) d->cur.b[d->cur.n++] = c;
    } else {
      dec_data(d, c);
    }
  }
}

/* ------------------------------------------------------------ URLs */

static void expect_open_fails(const char *name, eg_err want, const char *needle1, const char *needle2) {
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_port_open(&p, name, 115200, &f);
  if (e != want) fail_msg("open(%s): got %s, want %s (%s)", name, eg_err_name(e), eg_err_name(want), f.msg);
  assert_int_equal(f.code, want);
  assert_int_equal(f.stage, EG_STAGE_OPEN);
  assert_int_equal(p.fd, -1);
  assert_null(p.impl);
  assert_string_equal(p.errmsg, f.msg);
  assert_null(strchr(f.msg, '\n'));
  if (needle1 && !strstr(f.msg, needle1)) fail_msg("open(%s): \"%s\" lacks \"%s\"", name, f.msg, needle1);
  if (needle2 && !strstr(f.msg, needle2)) fail_msg("open(%s): \"%s\" lacks \"%s\"", name, f.msg, needle2);
  assert_false(eg_port_wants_write(&p));
  eg_port_close(&p);
  eg_port_close(&p);
}

static void test_url_parse(void **state) {
  (void)state;
  char host[256], port[8], msg[128];
  static const struct {
    const char *scheme, *url, *host, *port;
  } good[] = {
    {"rfc2217://", "rfc2217://127.0.0.1:4000", "127.0.0.1", "4000"},
    {"rfc2217://", "RFC2217://ser2net.lan:2001", "ser2net.lan", "2001"},
    {"rfc2217://", "rfc2217://[::1]:4000?ign_set_control", "::1", "4000"},
    {"rfc2217://", "rfc2217://h:4000?ign_set_control&timeout=3&logging=debug", "h", "4000"},
    {"rfc2217://", "rfc2217://h:4000?ign_set_control=1", "h", "4000"},
    {"rfc2217://", "rfc2217://h:4000?poll_modem&future-option=a:b/c", "h", "4000"},
    {"socket://", "socket://h:5?logging=debug", "h", "5"},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (!eg__url_parse(good[i].url, good[i].scheme, host, sizeof host, port, sizeof port, msg, sizeof msg))
      fail_msg("%s: rejected: %s", good[i].url, msg);
    assert_string_equal(host, good[i].host);
    assert_string_equal(port, good[i].port);
  }
  static const struct {
    const char *url, *why;
  } bad[] = {
    {"rfc2217://", "no port: expected rfc2217://host:port"},
    {"rfc2217://host", "no port: expected rfc2217://host:port"},
    {"rfc2217://host:", "no port after ':'"},
    {"rfc2217://host:?ign_set_control", "no port after ':'"},
    {"rfc2217://host?x=1:4000", "no port"},
    {"rfc2217://:4000", "empty host"},
    {"rfc2217://host:0", "range"},
    {"rfc2217://host:65536", "range"},
    {"rfc2217://host:40a0", "not a number"},
    {"rfc2217://host:4000/ign_set_control", "not a number (unexpected '/')"},
    {"rfc2217://::1:4000", "brackets: rfc2217://[address]:port"},
    {"rfc2217://[::1]4000", "no port: expected rfc2217://[address]:port"},
    {"rfc2217://host:4000?", "empty option name after '?'"},
    {"rfc2217://host:4000?&ign_set_control", "empty option name after '?'"},
    {"rfc2217://host:4000?a&&b", "empty option name after '&'"},
    {"rfc2217://host:4000?=1", "empty option name"},
    {"rfc2217://host:4000?ign set", "invalid character in option \"ign set\""},
    {"rfc2217://host:4000?a=b c", "invalid character"},
    {"rfc2217://host:4000?a?b", "invalid character"},
    {"rfc2217://host:4000?a#frag", "invalid character"},
    {"socket://127.0.0.1:4000", "not a rfc2217:// URL"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (eg__url_parse(bad[i].url, "rfc2217://", host, sizeof host, port, sizeof port, msg, sizeof msg))
      fail_msg("%s: accepted as host \"%s\" port \"%s\"", bad[i].url, host, port);
    if (!strstr(msg, bad[i].why)) fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].url, msg, bad[i].why);
  }
  assert_true(eg__url_has_scheme("Rfc2217://x:1", "rfc2217://"));
  assert_false(eg__url_has_scheme("rfc2217:/x:1", "rfc2217://"));

  /* Through eg_port_open: one line naming the URL and the reason. */
  expect_open_fails("rfc2217://host", EG_PORT_OPEN, "cannot open rfc2217://host: malformed URL", "no port");
  expect_open_fails("rfc2217://127.0.0.1:4000?", EG_PORT_OPEN, "malformed URL", "empty option name");
  expect_open_fails("rfc2217://127.0.0.1:99999", EG_PORT_OPEN, "malformed URL", "range");
  expect_open_fails("rfc2217://no-such-host.invalid:4000", EG_PORT_OPEN, "no-such-host.invalid", "resolve");
  expect_open_fails("telnet://127.0.0.1:23", EG_PORT_OPEN, "unsupported URL", "rfc2217://");
}

static void test_unknown_options_ignored(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_local(&lfd, 0);
  eg_port p;
  rfc_open(&p, port, 115200, "?ign_set_control&timeout=3&something_new=x");
  assert_true(strstr(p.name, "?ign_set_control") != NULL);
  const int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(peer >= 0);
  close(lfd);
  expect_wire(peer, HELLO_115200, sizeof HELLO_115200, "hello");
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

/* ------------------------------------------------- what the client sends */

static void test_negotiation_and_baud(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_local(&lfd, 0);
  char url[64];
  snprintf(url, sizeof url, "rfc2217://127.0.0.1:%d", port);
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&p, url, 115200, &f), EG_OK);
  assert_ptr_equal(p.backend, &eg__port_rfc2217);
  assert_true(p.can_reset);
  assert_string_equal(p.path, "");
  assert_int_equal(p.baud, 115200);
  assert_int_equal(p.dtr, -1);
  assert_int_equal(p.rts, -1);
  /* Issued before the connect completes (or right after): queued behind
   * the negotiation, never ahead of it. */
  assert_int_equal(eg_port_set_baud(&p, 921600), EG_OK);
  assert_int_equal(p.baud, 921600);
  for (int i = 0; p.connecting && i < 100; i++) {
    wait_fd(p.fd, POLLOUT);
    assert_int_equal(eg_port_finish_connect(&p, &f), EG_OK);
  }
  assert_int_equal(eg_port_finish_connect(&p, &f), EG_OK); /* again: no-op */
  flush_port(&p);
  const int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(peer >= 0);
  close(lfd);
  expect_wire(peer, HELLO_115200, sizeof HELLO_115200, "hello");
  static const uint8_t b921600[] = {IAC, SB, COMPORT, 1, 0x00, 0x0E, 0x10, 0x00, IAC, SE};
  expect_wire(peer, b921600, sizeof b921600, "SET-BAUDRATE 921600");

  /* 0xFF inside a value is doubled like data. */
  assert_int_equal(eg_port_set_baud(&p, 0x00FFFFFFu), EG_OK);
  static const uint8_t bffffff[] = {IAC, SB, COMPORT, 1, 0x00, IAC, IAC, IAC, IAC, IAC, IAC, IAC, SE};
  expect_wire(peer, bffffff, sizeof bffffff, "SET-BAUDRATE 0x00FFFFFF");
  assert_int_equal(eg_port_set_baud(&p, 0xFF01FF02u), EG_OK);
  static const uint8_t bff01[] = {IAC, SB, COMPORT, 1, IAC, IAC, 0x01, IAC, IAC, 0x02, IAC, SE};
  expect_wire(peer, bff01, sizeof bff01, "SET-BAUDRATE 0xFF01FF02");
  assert_int_equal(eg_port_set_baud(&p, 0), EG_PORT_CONFIG);
  assert_int_equal(p.baud, 0xFF01FF02u);
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
  assert_int_equal(p.fd, -1);
  assert_null(p.impl);
}

static void test_open_at_other_baud(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_local(&lfd, 0);
  eg_port p;
  rfc_open(&p, port, 65535, NULL); /* 00 00 FF FF: escaped in the first SB */
  const int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(peer >= 0);
  close(lfd);
  uint8_t want[sizeof HELLO_115200 + 2];
  memcpy(want, HELLO_115200, 15 + 4);
  const uint8_t v[] = {0x00, 0x00, IAC, IAC, IAC, IAC};
  memcpy(want + 19, v, sizeof v);
  memcpy(want + 25, HELLO_115200 + 23, sizeof HELLO_115200 - 23);
  expect_wire(peer, want, sizeof want, "hello at 65535");
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

static void test_set_lines(void **state) {
  (void)state;
  eg_port p;
  int peer;
  session(&p, &peer);
  static const struct {
    int dtr, rts;
    uint8_t c1, c2; /* SET-CONTROL values in wire order; 0 = none */
  } cases[] = {
    {1, 0, 8, 12}, {0, 1, 9, 11}, {1, 1, 8, 11}, {0, 0, 9, 12}, {-1, 1, 11, 0}, {0, -1, 9, 0}, {1, -1, 8, 0},
    {-1, 0, 12, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(eg_port_set_lines(&p, cases[i].dtr, cases[i].rts), EG_OK);
    uint8_t want[14] = {IAC, SB, COMPORT, 5, cases[i].c1, IAC, SE, IAC, SB, COMPORT, 5, cases[i].c2, IAC, SE};
    char what[64];
    snprintf(what, sizeof what, "set_lines(%d, %d)", cases[i].dtr, cases[i].rts);
    expect_wire(peer, want, cases[i].c2 ? 14 : 7, what);
    if (cases[i].dtr >= 0) assert_int_equal(p.dtr, cases[i].dtr);
    if (cases[i].rts >= 0) assert_int_equal(p.rts, cases[i].rts);
  }
  /* Nothing to do, nothing sent; bad values are refused before the wire. */
  assert_int_equal(eg_port_set_lines(&p, -1, -1), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, 2, 0), EG_INVAL);
  assert_int_equal(eg_port_set_lines(&p, 0, -2), EG_INVAL);
  assert_int_equal(p.dtr, 1); /* from {1, -1} */
  assert_int_equal(p.rts, 0); /* from {-1, 0} */
  expect_nothing_more(&p, peer);

  /* In the stream: data before the command stays before it, data after
   * stays after. */
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"ab", 2, &done), EG_OK);
  assert_int_equal(done, 2);
  assert_int_equal(eg_port_set_lines(&p, 1, 0), EG_OK);
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"cd", 2, &done), EG_OK);
  assert_int_equal(done, 2);
  static const uint8_t order[] = {'a', 'b', IAC, SB, COMPORT, 5, 8, IAC, SE, IAC, SB, COMPORT, 5, 12, IAC, SE, 'c', 'd'};
  expect_wire(peer, order, sizeof order, "data, set_lines, data");
  close(peer);
  eg_port_close(&p);
}

static void test_data_out_escaped(void **state) {
  (void)state;
  eg_port p;
  int peer;
  session(&p, &peer);
  uint8_t all[256 + 3];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  all[256] = all[257] = IAC; /* a run of them, and one last */
  all[258] = 0x00;
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, all, sizeof all, &done), EG_OK);
  assert_int_equal(done, sizeof all);
  assert_false(eg_port_wants_write(&p));
  uint8_t want[sizeof all + 3];
  memcpy(want, all, 255);
  const uint8_t tail[] = {IAC, IAC, IAC, IAC, IAC, IAC, 0x00};
  memcpy(want + 255, tail, sizeof tail);
  expect_wire(peer, want, sizeof want, "all byte values");
  /* One byte alone. */
  assert_int_equal(eg_port_write(&p, all + 255, 1, &done), EG_OK);
  assert_int_equal(done, 1);
  expect_wire(peer, tail, 2, "0xFF alone");
  assert_int_equal(eg_port_write(&p, all, 0, &done), EG_OK);
  assert_int_equal(done, 0);
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

/* ------------------------------------------------ what the client reads */

typedef struct bytes {
  uint8_t b[1024];
  size_t n;
} bytes;

static void put(bytes *s, size_t n, ...) {
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) s->b[s->n++] = (uint8_t)va_arg(ap, int);
  va_end(ap);
}

static void test_data_in_split_everywhere(void **state) {
  (void)state;
  eg_port p;
  int peer;
  session(&p, &peer);
  /* A stream with every byte value as data and the server's answers,
   * notifications and negotiation among it. */
  bytes s = {.n = 0};
  bytes want = {.n = 0};
  for (int i = 0; i < 128; i++) s.b[s.n++] = want.b[want.n++] = (uint8_t)i;
  put(&s, 10, IAC, SB, COMPORT, 101, 0x00, 0x01, 0xC2, 0x00, IAC, SE); /* SET-BAUDRATE answer */
  for (int i = 128; i < 255; i++) s.b[s.n++] = want.b[want.n++] = (uint8_t)i;
  put(&s, 2, IAC, IAC);
  want.b[want.n++] = 255;
  put(&s, 7, IAC, SB, COMPORT, 107, IAC, IAC, IAC); /* NOTIFY-MODEMSTATE 0xFF, value escaped */
  put(&s, 1, SE);
  put(&s, 2, IAC, NOP);
  put(&s, 6, IAC, DO, BINARY, IAC, WILL, SGA); /* agreements: no reply */
  put(&s, 7, IAC, SB, COMPORT, 106, 0x60, IAC, SE); /* NOTIFY-LINESTATE */
  put(&s, 5, 'e', 'n', 'd', IAC, IAC);
  memcpy(want.b + want.n, "end\xff", 4);
  want.n += 4;
  put(&s, 7, IAC, SB, COMPORT, 105, 8, IAC, SE); /* SET-CONTROL answer */
  put(&s, 4, IAC, SB, COMPORT, 100);           /* a signature longer than any kept */
  for (int i = 0; i < 150; i++) s.b[s.n++] = 'x';
  put(&s, 2, IAC, SE);
  put(&s, 6, IAC, SB, TTYPE, 1, IAC, SE); /* another option's subnegotiation */
  put(&s, 1, 'Z');
  want.b[want.n++] = 'Z';

  const uint32_t answers0 = eg__rfc2217_state(&p)->answers;
  uint8_t got[1024];
  for (size_t k = 0; k <= s.n; k++) {
    size_t n = 0;
    if (k > 0) {
      write_all(peer, s.b, k);
      wait_avail(p.fd, (int)k);
      n = port_read_all(&p, got, sizeof got);
    }
    write_all(peer, s.b + k, s.n - k);
    while (n < want.n) {
      wait_fd(p.fd, POLLIN);
      size_t done = 0;
      const eg_err e = eg_port_read(&p, got + n, sizeof got - n, &done);
      if (e != EG_OK) fail_msg("split at %zu: read: %s (%s)", k, eg_err_name(e), p.errmsg);
      n += done;
    }
    assert_int_equal(n, want.n);
    char what[64];
    snprintf(what, sizeof what, "stream split at %zu", k);
    assert_bytes(got, want.b, want.n, what);
    assert_int_equal(port_read_all(&p, got, sizeof got), 0);
    assert_int_equal(eg__rfc2217_state(&p)->rx, EG__TN_DATA);
    assert_false(eg__rfc2217_state(&p)->in_sb);
  }
  assert_int_equal(eg__rfc2217_state(&p)->modemstate, 0xFF);
  assert_int_equal(eg__rfc2217_state(&p)->linestate, 0x60);
  assert_int_equal(eg__rfc2217_state(&p)->answers - answers0, 2 * (s.n + 1));
  /* Agreements to our own requests are not answered. */
  assert_false(eg_port_wants_write(&p));
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

static void test_malformed_subnegotiation(void **state) {
  (void)state;
  eg_port p;
  int peer;
  session(&p, &peer);
  /* An IAC that is neither IAC nor SE inside SB ends it: the data after a
   * lost SE is not swallowed. A stray SE is ignored. */
  static const uint8_t s[] = {'A', IAC, SB, COMPORT, 107, 0x10, IAC, NOP, 'B', IAC, SE, 'C',
                              IAC, SB, COMPORT, 107, IAC, SB, COMPORT, 107, 0x20, IAC, SE, 'D'};
  write_all(peer, s, sizeof s);
  uint8_t got[16];
  size_t n = 0;
  while (n < 4) {
    wait_fd(p.fd, POLLIN);
    size_t done = 0;
    assert_int_equal(eg_port_read(&p, got + n, sizeof got - n, &done), EG_OK);
    n += done;
  }
  assert_int_equal(n, 4);
  assert_memory_equal(got, "ABCD", 4);
  assert_int_equal(eg__rfc2217_state(&p)->modemstate, 0x20); /* only the complete one counted */
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

static void test_refuses_unknown_options(void **state) {
  (void)state;
  eg_port p;
  int peer;
  session(&p, &peer);
  static const uint8_t s[] = {'a', IAC, WILL, ECHO_OPT, 'b', IAC, DO, TTYPE, IAC, WILL, COMPORT, IAC, WILL,
                              COMPORT, IAC, DO, NAWS, IAC, DONT, TTYPE, IAC, WONT, ECHO_OPT, 'c'};
  write_all(peer, s, sizeof s);
  uint8_t got[8];
  size_t n = 0;
  while (n < 3) {
    wait_fd(p.fd, POLLIN);
    size_t done = 0;
    assert_int_equal(eg_port_read(&p, got + n, sizeof got - n, &done), EG_OK);
    n += done;
  }
  assert_memory_equal(got, "abc", 3);
  /* ECHO and TERMINAL-TYPE and NAWS refused, the server's side of the Com
   * Port option accepted once; DONT/WONT of what is off need no answer. */
  static const uint8_t replies[] = {IAC, DONT, ECHO_OPT, IAC, WONT, TTYPE, IAC, DO, COMPORT, IAC, WONT, NAWS};
  expect_wire(peer, replies, sizeof replies, "replies");
  expect_nothing_more(&p, peer);

  /* The server takes back BINARY (refusal of ours: no answer), offers it
   * again (accepted), agrees to our COM-PORT-OPTION and then refuses it
   * (acknowledged): lines and baud cannot be set any more. */
  static const uint8_t s2[] = {IAC, WONT, BINARY, IAC, WILL, BINARY, IAC, DO, COMPORT, IAC, DONT, COMPORT, 'd'};
  write_all(peer, s2, sizeof s2);
  wait_fd(p.fd, POLLIN);
  size_t done = 0;
  n = port_read_all(&p, got, sizeof got);
  assert_int_equal(n, 1);
  assert_int_equal(got[0], 'd');
  static const uint8_t replies2[] = {IAC, DO, BINARY, IAC, WONT, COMPORT};
  expect_wire(peer, replies2, sizeof replies2, "replies to BINARY and COM-PORT changes");
  assert_int_equal(eg_port_set_lines(&p, 1, 1), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(p.errmsg, "refused the Com Port option"));
  assert_int_equal(p.dtr, -1);
  assert_int_equal(eg_port_set_baud(&p, 460800), EG_PORT_CONFIG);
  assert_int_equal(p.baud, 115200);
  expect_nothing_more(&p, peer);

  /* Asked to do it after all: accepted, and lines work again. */
  static const uint8_t s3[] = {IAC, DO, COMPORT, 'e'};
  write_all(peer, s3, sizeof s3);
  wait_fd(p.fd, POLLIN);
  n = port_read_all(&p, got, sizeof got);
  assert_int_equal(n, 1);
  assert_int_equal(got[0], 'e');
  static const uint8_t replies3[] = {IAC, WILL, COMPORT};
  expect_wire(peer, replies3, sizeof replies3, "accepting COM-PORT");
  assert_int_equal(eg_port_set_lines(&p, 0, -1), EG_OK);
  static const uint8_t dtr_off[] = {IAC, SB, COMPORT, 5, 9, IAC, SE};
  expect_wire(peer, dtr_off, sizeof dtr_off, "DTR off");
  (void)done;
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

static void test_flush_input_purges(void **state) {
  (void)state;
  eg_port p;
  int peer;
  session(&p, &peer);
  /* Stale data with a notification and a negotiation request among it: the
   * data goes, the request is still answered. */
  static const uint8_t s[] = {'s', 't', 'a', 'l', 'e', IAC, SB, COMPORT, 107, 0x30, IAC, SE,
                              IAC, IAC, IAC, WILL, ECHO_OPT, 'm', 'o', 'r', 'e'};
  write_all(peer, s, sizeof s);
  wait_avail(p.fd, (int)sizeof s);
  assert_int_equal(eg_port_flush_input(&p), EG_OK);
  int left = -1;
  assert_int_equal(ioctl(p.fd, FIONREAD, &left), 0);
  assert_int_equal(left, 0);
  assert_int_equal(eg__rfc2217_state(&p)->modemstate, 0x30);
  static const uint8_t want[] = {IAC, DONT, ECHO_OPT, IAC, SB, COMPORT, 12, 1, IAC, SE};
  expect_wire(peer, want, sizeof want, "refusal, then PURGE-DATA receive");
  write_all(peer, "new", 3);
  uint8_t got[8];
  size_t n = 0;
  while (n < 3) {
    wait_fd(p.fd, POLLIN);
    size_t done = 0;
    assert_int_equal(eg_port_read(&p, got + n, sizeof got - n, &done), EG_OK);
    n += done;
  }
  assert_memory_equal(got, "new", 3);
  /* A sequence split by the flush is completed by the next read. */
  static const uint8_t part1[] = {'x', IAC, SB, COMPORT};
  static const uint8_t part2[] = {107, 0x40, IAC, SE, 'y'};
  write_all(peer, part1, sizeof part1);
  wait_avail(p.fd, (int)sizeof part1);
  assert_int_equal(eg_port_flush_input(&p), EG_OK);
  expect_wire(peer, want + 3, 7, "PURGE-DATA receive");
  write_all(peer, part2, sizeof part2);
  wait_fd(p.fd, POLLIN);
  n = port_read_all(&p, got, sizeof got);
  assert_int_equal(n, 1);
  assert_int_equal(got[0], 'y');
  assert_int_equal(eg__rfc2217_state(&p)->modemstate, 0x40);
  expect_nothing_more(&p, peer);
  close(peer);
  eg_port_close(&p);
}

/* ------------------------------------------------------- back-pressure */

static void srv_read_some(int peer, srv_dec *d, size_t most) {
  uint8_t buf[8192];
  if (most > sizeof buf) most = sizeof buf;
  wait_fd(peer, POLLIN);
  const ssize_t r = read(peer, buf, most);
  if (r <= 0) fail_msg("server read: %zd (%s)", r, strerror(errno));
  dec_feed(d, buf, (size_t)r);
}

static void test_backpressure_order(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_local(&lfd, 4096);
  eg_port p;
  rfc_open(&p, port, 115200, NULL);
  const int sndbuf = 4096;
  assert_int_equal(setsockopt(p.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  const int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(peer >= 0);
  close(lfd);

  enum { N = 768 * 1024 };
  uint8_t *data = malloc(N);
  assert_non_null(data);
  for (size_t i = 0; i < N; i++) data[i] = i % 3 == 0 ? 0xFF : (uint8_t)(i * 7 + (i >> 11));

  srv_dec d = {.st = 0};
  size_t off = 0, lines_at = 0, partial = 0, refused = 0, calls = 0;
  bool lines_sent = false;
  while (off < N) {
    const size_t chunk = N - off < 5000 ? N - off : 5000;
    size_t done = 0;
    const eg_err e = eg_port_write(&p, data + off, chunk, &done);
    if (e != EG_OK) fail_msg("write at %zu: %s (%s)", off, eg_err_name(e), p.errmsg);
    calls++;
    if (done > 0 && done < chunk) partial++;
    if (done == 0) {
      refused++;
      assert_true(eg_port_wants_write(&p));
    }
    off += done;
    /* The lines change while the socket is full and data waits in the
     * port's queue: it must go out after exactly `off` data bytes. */
    if (!lines_sent && off >= N / 2 && eg_port_wants_write(&p)) {
      assert_int_equal(eg_port_set_lines(&p, 1, 1), EG_OK);
      assert_true(eg_port_wants_write(&p));
      lines_sent = true;
      lines_at = off;
    }
    if (done < chunk) {
      srv_read_some(peer, &d, 6000);
      const eg_err f = eg_port_flush_pending(&p);
      if (f != EG_OK) fail_msg("flush_pending: %s (%s)", eg_err_name(f), p.errmsg);
    }
  }
  if (!lines_sent) fail_msg("the socket never filled up: no back-pressure to test");
  while (eg_port_wants_write(&p)) {
    srv_read_some(peer, &d, 8192);
    assert_int_equal(eg_port_flush_pending(&p), EG_OK);
  }
  while (d.len < N || d.ncmd < 12) srv_read_some(peer, &d, 8192);

  /* Committed bytes add up: none lost, none resent. */
  assert_int_equal(off, N);
  assert_int_equal(d.len, N);
  assert_bytes(d.data, data, N, "data after back-pressure");
  assert_true(partial > 0);
  /* Hello (5 verbs + 5 SBs), then DTR on and RTS on at lines_at, and no
   * other command. */
  assert_int_equal(d.ncmd, 12);
  for (size_t i = 0; i < 10; i++) assert_int_equal(d.cmd[i].at, 0);
  for (size_t i = 10; i < 12; i++) {
    assert_int_equal(d.cmd[i].kind, SB);
    assert_int_equal(d.cmd[i].n, 3);
    assert_int_equal(d.cmd[i].b[0], COMPORT);
    assert_int_equal(d.cmd[i].b[1], 5);
    assert_int_equal(d.cmd[i].at, lines_at);
  }
  assert_int_equal(d.cmd[10].b[2], 8);
  assert_int_equal(d.cmd[11].b[2], 11);
  print_message("back-pressure: %zu writes, %zu partial, %zu refused; lines at byte %zu of %d\n", calls, partial,
                refused, lines_at, N);
  free(data);
  free(d.data);
  close(peer);
  eg_port_close(&p);
}

/* ------------------------------------------------- connection failures */

static void test_peer_close_is_gone(void **state) {
  (void)state;
  /* Default SIGPIPE disposition: a send without MSG_NOSIGNAL would kill
   * the test. */
  struct sigaction old, dfl = {.sa_handler = SIG_DFL};
  sigemptyset(&dfl.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);

  eg_port p;
  int peer;
  session(&p, &peer);
  /* Data, then the peer goes away mid-subnegotiation. */
  static const uint8_t s[] = {'h', 'i', IAC, SB, COMPORT};
  write_all(peer, s, sizeof s);
  close(peer);
  uint8_t got[8];
  wait_fd(p.fd, POLLIN);
  size_t done = 0;
  assert_int_equal(eg_port_read(&p, got, sizeof got, &done), EG_OK);
  assert_int_equal(done, 2);
  assert_memory_equal(got, "hi", 2);
  const eg_err e = eg_port_read(&p, got, sizeof got, &done);
  if (e != EG_PORT_GONE) fail_msg("read after peer close: %s (%s)", eg_err_name(e), p.errmsg);
  assert_int_equal(done, 0);
  assert_non_null(strstr(p.errmsg, "closed"));

  /* Writes fail too once the peer's RST is back (the first may still be
   * taken by the kernel). */
  uint8_t chunk[1024];
  memset(chunk, 0xFF, sizeof chunk);
  eg_err w = EG_OK;
  for (int i = 0; i < 200 && w == EG_OK; i++) {
    w = eg_port_write(&p, chunk, sizeof chunk, &done);
    if (w == EG_OK) {
      struct pollfd pfd = {.fd = p.fd, .events = POLLIN};
      poll(&pfd, 1, 20); /* give the RST time to come back */
    }
  }
  if (w != EG_PORT_GONE) fail_msg("writes to a closed peer: %s (%s)", eg_err_name(w), p.errmsg);
  assert_non_null(strstr(p.errmsg, "write failed"));
  eg_port_close(&p);
  assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

static void test_connection_refused(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_local(&lfd, 0);
  close(lfd); /* a port that was just free */
  char url[64];
  snprintf(url, sizeof url, "rfc2217://127.0.0.1:%d", port);
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  eg_err e = eg_port_open(&p, url, 115200, &f);
  for (int i = 0; e == EG_OK && p.connecting && i < 100; i++) {
    wait_fd(p.fd, POLLOUT);
    e = eg_port_finish_connect(&p, &f);
  }
  if (e != EG_PORT_OPEN) fail_msg("connect to a closed port: %s (%s)", eg_err_name(e), f.msg);
  assert_int_equal(f.code, EG_PORT_OPEN);
  assert_non_null(strstr(f.msg, url));
  assert_non_null(strstr(f.msg, "connection refused"));
  eg_port_close(&p);
  assert_int_equal(p.fd, -1);
  assert_null(p.impl);
  eg_port_close(&p);
}

static void test_other_backends_and_closed(void **state) {
  (void)state;
  /* socket://: nothing is ever queued. */
  int lfd = -1;
  const int port = listen_local(&lfd, 0);
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", port);
  eg_port p;
  assert_int_equal(eg_port_open(&p, url, 115200, NULL), EG_OK);
  assert_ptr_equal(p.backend, &eg__port_tcp);
  for (int i = 0; p.connecting && i < 100; i++) {
    wait_fd(p.fd, POLLOUT);
    assert_int_equal(eg_port_finish_connect(&p, NULL), EG_OK);
  }
  const int peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(peer >= 0);
  close(lfd);
  uint8_t ff[4] = {IAC, IAC, 1, IAC};
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, ff, sizeof ff, &done), EG_OK);
  assert_int_equal(done, 4);
  assert_false(eg_port_wants_write(&p));
  assert_int_equal(eg_port_flush_pending(&p), EG_OK);
  expect_wire(peer, ff, sizeof ff, "socket:// bytes unescaped");
  close(peer);
  eg_port_close(&p);
  assert_false(eg_port_wants_write(&p));
  assert_int_equal(eg_port_flush_pending(&p), EG_INVAL);

  /* Zeroed, never opened (as eg_dev embeds it). */
  eg_port z;
  memset(&z, 0, sizeof z);
  z.fd = -1;
  assert_false(eg_port_wants_write(&z));
  assert_int_equal(eg_port_flush_pending(&z), EG_INVAL);
  eg_port_close(&z);

  /* A closed RFC 2217 port. */
  eg_port r;
  int rpeer;
  session(&r, &rpeer);
  close(rpeer);
  eg_port_close(&r);
  assert_null(r.impl);
  assert_false(eg_port_wants_write(&r));
  assert_int_equal(eg_port_flush_pending(&r), EG_INVAL);
  assert_int_equal(eg_port_set_lines(&r, 1, 1), EG_INVAL);
  assert_int_equal(eg_port_read(&r, ff, sizeof ff, &done), EG_INVAL);
}

/* ----------------------------------------------- in a libuv event loop */

/* The client side is driven as device.c drives a port: one uv_poll on the
 * fd, writable watched while the caller has bytes to send or the port has
 * queued output. The server is an RFC 2217 echo server on a second uv_poll
 * in the same loop: it greets like pyserial's server (WILL ECHO, WILL SGA,
 * DO BINARY, WILL COM-PORT-OPTION), echoes data, answers every command with
 * code + 100 and a NOTIFY-MODEMSTATE after it. */
typedef struct uvt {
  uv_poll_t cpoll, spoll;
  uv_timer_t guard;
  eg_port *p;
  int cev, sev;
  const uint8_t *payload;
  size_t n, sent, lines_at, baud_at;
  uint8_t *echo;
  size_t echo_len;
  int sfd;
  srv_dec dec;
  size_t data_seen, cmds_seen;
  uint8_t *sout;
  size_t sout_off, sout_len, sout_cap;
  bool closed, timed_out, failed;
  char why[300];
  unsigned client_callbacks, queued_seen;
} uvt;

static void uvt_close(uvt *t) {
  if (t->closed) return;
  t->closed = true;
  uv_close((uv_handle_t *)&t->cpoll, NULL);
  uv_close((uv_handle_t *)&t->spoll, NULL);
  uv_close((uv_handle_t *)&t->guard, NULL);
}

static void uvt_fail(uvt *t, const char *what, eg_err e) {
  snprintf(t->why, sizeof t->why, "%s: %s (%s)", what, eg_err_name(e), t->p->errmsg);
  t->failed = true;
  uvt_close(t);
}

static void on_client(uv_poll_t *h, int status, int events);
static void on_server(uv_poll_t *h, int status, int events);

static void client_poll_update(uvt *t) {
  int ev = UV_READABLE;
  if (t->sent < t->n || eg_port_wants_write(t->p)) ev |= UV_WRITABLE;
  if (ev != t->cev) uv_poll_start(&t->cpoll, ev, on_client);
  t->cev = ev;
}

static void sout_put(uvt *t, const uint8_t *b, size_t n) {
  if (t->sout_len + n > t->sout_cap) {
    t->sout_cap = 2 * (t->sout_len + n);
    t->sout = realloc(t->sout, t->sout_cap);
    assert_non_null(t->sout);
  }
  memcpy(t->sout + t->sout_len, b, n);
  t->sout_len += n;
}

static void server_poll_update(uvt *t) {
  const int ev = UV_READABLE | (t->sout_off < t->sout_len ? UV_WRITABLE : 0);
  if (ev != t->sev) uv_poll_start(&t->spoll, ev, on_server);
  t->sev = ev;
}

static void on_client(uv_poll_t *h, int status, int events) {
  uvt *t = h->data;
  if (t->closed) return;
  t->client_callbacks++;
  if (status < 0) {
    uvt_fail(t, "client poll", EG_IO);
    return;
  }
  if (events & UV_WRITABLE) {
    if (eg_port_wants_write(t->p)) t->queued_seen++;
    eg_err e = eg_port_flush_pending(t->p);
    if (e != EG_OK) {
      uvt_fail(t, "flush_pending", e);
      return;
    }
    while (t->sent < t->n) {
      /* Stop at the points where the commands go in. */
      size_t lim = t->n;
      if (t->sent < t->lines_at) lim = t->lines_at;
      else if (t->sent < t->baud_at) lim = t->baud_at;
      size_t done = 0;
      e = eg_port_write(t->p, t->payload + t->sent, lim - t->sent, &done);
      if (e != EG_OK) {
        uvt_fail(t, "write", e);
        return;
      }
      t->sent += done;
      if (done > 0 && t->sent == t->lines_at && (e = eg_port_set_lines(t->p, 1, 0)) != EG_OK) {
        uvt_fail(t, "set_lines", e);
        return;
      }
      if (done > 0 && t->sent == t->baud_at && (e = eg_port_set_baud(t->p, 460800)) != EG_OK) {
        uvt_fail(t, "set_baud", e);
        return;
      }
      if (done == 0) break;
    }
  }
  if (events & UV_READABLE) {
    for (;;) {
      size_t done = 0;
      const eg_err e = eg_port_read(t->p, t->echo + t->echo_len, t->n + 64 - t->echo_len, &done);
      if (e != EG_OK) {
        uvt_fail(t, "read", e);
        return;
      }
      if (done == 0) break;
      t->echo_len += done;
      if (t->echo_len > t->n) {
        snprintf(t->why, sizeof t->why, "more echo than was sent");
        t->failed = true;
        uvt_close(t);
        return;
      }
    }
  }
  if (t->echo_len == t->n && t->sent == t->n && !eg_port_wants_write(t->p)) {
    uvt_close(t);
    return;
  }
  client_poll_update(t);
}

/* Echo the data decoded since last time (escaped) and answer the commands
 * among it, each in its place. */
static void server_answer(uvt *t) {
  for (; t->cmds_seen <= t->dec.ncmd; t->cmds_seen++) {
    const size_t upto = t->cmds_seen < t->dec.ncmd ? t->dec.cmd[t->cmds_seen].at : t->dec.len;
    for (; t->data_seen < upto; t->data_seen++) {
      const uint8_t c = t->dec.data[t->data_seen];
      sout_put(t, &c, 1);
      if (c == IAC) sout_put(t, &c, 1);
    }
    if (t->cmds_seen == t->dec.ncmd) break;
    const srv_cmd *c = &t->dec.cmd[t->cmds_seen];
    if (c->kind != SB || c->n < 2 || c->b[0] != COMPORT) continue;
    const uint8_t head[] = {IAC, SB, COMPORT, (uint8_t)(c->b[1] + 100)};
    sout_put(t, head, sizeof head);
    for (size_t i = 2; i < c->n; i++) {
      sout_put(t, &c->b[i], 1);
      if (c->b[i] == IAC) sout_put(t, &c->b[i], 1);
    }
    const uint8_t tail[] = {IAC, SE, IAC, SB, COMPORT, 107, 0x30, IAC, SE};
    sout_put(t, tail, sizeof tail);
  }
}

static void on_server(uv_poll_t *h, int status, int events) {
  uvt *t = h->data;
  if (t->closed) return;
  if (status < 0) {
    snprintf(t->why, sizeof t->why, "server poll: %s", uv_strerror(status));
    t->failed = true;
    uvt_close(t);
    return;
  }
  if (events & UV_READABLE) {
    uint8_t buf[4096];
    const ssize_t r = recv(t->sfd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
      snprintf(t->why, sizeof t->why, "server read: %zd (%s)", r, strerror(errno));
      t->failed = true;
      uvt_close(t);
      return;
    }
    if (r > 0) {
      dec_feed(&t->dec, buf, (size_t)r);
      server_answer(t);
    }
  }
  if ((events & UV_WRITABLE) && t->sout_off < t->sout_len) {
    const ssize_t w = send(t->sfd, t->sout + t->sout_off, t->sout_len - t->sout_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) t->sout_off += (size_t)w;
    if (t->sout_off == t->sout_len) t->sout_off = t->sout_len = 0;
  }
  server_poll_update(t);
}

static void on_guard(uv_timer_t *h) {
  uvt *t = h->data;
  t->timed_out = true;
  uvt_close(t);
}

static void test_uv_loop_echo(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_local(&lfd, 4096);
  char url[64];
  snprintf(url, sizeof url, "rfc2217://127.0.0.1:%d", port);
  eg_port p;
  assert_int_equal(eg_port_open(&p, url, 115200, NULL), EG_OK);
  /* Small buffers: the port's queue and the writable watch get used. */
  const int sndbuf = 4096;
  assert_int_equal(setsockopt(p.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
  /* The connect completes in the loop as device.c completes it; here the
   * server must be accepted first, which a listening socket does in the
   * kernel anyway. */
  for (int i = 0; p.connecting && i < 100; i++) {
    wait_fd(p.fd, POLLOUT);
    assert_int_equal(eg_port_finish_connect(&p, NULL), EG_OK);
  }
  const int sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  assert_true(sfd >= 0);
  close(lfd);

  enum { N = 256 * 1024 };
  uint8_t *payload = malloc(N);
  uvt t = {.p = &p, .sfd = sfd, .n = N, .lines_at = N / 3, .baud_at = 2 * N / 3};
  t.echo = malloc(N + 64);
  assert_non_null(payload);
  assert_non_null(t.echo);
  for (size_t i = 0; i < N; i++) payload[i] = (uint8_t)(i ^ (i >> 8)) | (i % 5 == 0 ? 0xFF : 0);
  t.payload = payload;
  static const uint8_t greet[] = {IAC, WILL, ECHO_OPT, IAC, WILL, SGA, IAC, DO, BINARY, IAC, WILL, COMPORT};
  sout_put(&t, greet, sizeof greet);

  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_poll_init(&loop, &t.cpoll, p.fd), 0);
  assert_int_equal(uv_poll_init(&loop, &t.spoll, sfd), 0);
  assert_int_equal(uv_timer_init(&loop, &t.guard), 0);
  t.cpoll.data = t.spoll.data = t.guard.data = &t;
  client_poll_update(&t);
  server_poll_update(&t);
  assert_int_equal(uv_timer_start(&t.guard, on_guard, SAFETY_MS, 0), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);

  if (t.timed_out) fail_msg("timed out: sent %zu, echoed %zu of %d", t.sent, t.echo_len, N);
  if (t.failed) fail_msg("%s", t.why);
  assert_int_equal(t.echo_len, N);
  assert_bytes(t.echo, payload, N, "echo");
  assert_int_equal(t.dec.len, N);
  /* The client's replies to the greeting and its commands, in place. */
  bool dont_echo = false, do_comport = false;
  size_t sb_after_hello = 0;
  for (size_t i = 0; i < t.dec.ncmd; i++) {
    const srv_cmd *c = &t.dec.cmd[i];
    if (c->kind == DONT && c->b[0] == ECHO_OPT) dont_echo = true;
    if (c->kind == DO && c->b[0] == COMPORT) do_comport = true;
    if (c->kind == WILL && c->b[0] == SGA) assert_int_equal(c->at, 0); /* only our own request */
    if (c->kind != SB || c->at == 0) continue;
    sb_after_hello++;
    if (c->b[1] == 5) {
      assert_int_equal(c->at, N / 3);
      assert_int_equal(c->b[2], sb_after_hello == 1 ? 8 : 12);
    } else {
      assert_int_equal(c->b[1], 1);
      assert_int_equal(c->at, 2 * N / 3);
      static const uint8_t be460800[] = {0x00, 0x07, 0x08, 0x00};
      assert_memory_equal(c->b + 2, be460800, 4);
    }
  }
  assert_true(dont_echo);
  assert_true(do_comport);
  assert_int_equal(sb_after_hello, 3);
  assert_int_equal(eg__rfc2217_state(&p)->modemstate, 0x30);
  assert_int_equal(eg__rfc2217_state(&p)->answers, 5 + 3); /* hello's five settings, then three */
  assert_int_equal(p.dtr, 1);
  assert_int_equal(p.rts, 0);
  assert_int_equal(p.baud, 460800);
  assert_true(t.queued_seen > 0);
  print_message("uv echo: %u client callbacks (%u with output queued in the port) for %d bytes each way\n",
                t.client_callbacks, t.queued_seen, N);
  free(payload);
  free(t.echo);
  free(t.sout);
  free(t.dec.data);
  close(sfd);
  eg_port_close(&p);
}

int main(void) {
  /* libuv opens a process-wide pipe (its signal lock) at the first loop
   * init and keeps it: take it here so the fd counts compare like with like. */
  uv_loop_t warm;
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_url_parse, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_unknown_options_ignored, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_negotiation_and_baud, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_open_at_other_baud, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_set_lines, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_data_out_escaped, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_data_in_split_everywhere, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_malformed_subnegotiation, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_refuses_unknown_options, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_flush_input_purges, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_backpressure_order, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_peer_close_is_gone, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_connection_refused, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_other_backends_and_closed, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_uv_loop_echo, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
