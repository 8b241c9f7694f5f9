/* test_port.c - the port layer against real kernel objects: pty pairs from
 * openpty() (the termios backend), loopback TCP listeners made here (the
 * socket:// backend), and the pure helpers of the port list. There may be no
 * serial port on the machine, so nothing here depends on one; the
 * libserialport backend is exercised through its failure paths only.
 *
 * Every test checks that it leaves exactly as many open fds as it found.
 * poll() timeouts below are safety nets against a hang, not measurements.
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
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "port.h"
#include "port_backend.h"
#include "port_util.h"

#define SAFETY_MS 5000

/* ------------------------------------------------------------ helpers */


typedef struct pty_pair {
  int master, slave;
  char name[64];
} pty_pair;

static void pty_make(pty_pair *pp) {
  assert_int_equal(openpty(&pp->master, &pp->slave, pp->name, NULL, NULL), 0);
  /* The test's own slave fd only keeps the pair alive while the port opens
   * its own; close it so the port is the slave's only user. */
  close(pp->slave);
  pp->slave = -1;
  /* Raw master: what the port writes arrives unchanged. */
  struct termios t;
  assert_int_equal(tcgetattr(pp->master, &t), 0);
  cfmakeraw(&t);
  assert_int_equal(tcsetattr(pp->master, TCSANOW, &t), 0);
}

static void pty_free(pty_pair *pp) {
  if (pp->master >= 0) close(pp->master);
  pp->master = -1;
}

static void wait_fd(int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events};
  int rc;
  do rc = poll(&pfd, 1, SAFETY_MS);
  while (rc < 0 && errno == EINTR);
  if (rc <= 0) fail_msg("fd %d not ready for 0x%x within %d ms", fd, events, SAFETY_MS);
}

/* Read exactly n bytes from a blocking-ish fd, polling first. */
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

/* Read exactly n bytes through the port. */
static void port_read_exact(eg_port *p, uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    wait_fd(p->fd, POLLIN);
    size_t done = 0;
    const eg_err e = eg_port_read(p, buf + got, n - got, &done);
    if (e != EG_OK) fail_msg("eg_port_read: %s (%s)", eg_err_name(e), p->errmsg);
    got += done;
  }
}

static void write_all(int fd, const void *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    const ssize_t w = write(fd, (const uint8_t *)buf + off, n - off);
    if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
      wait_fd(fd, POLLOUT);
      continue;
    }
    if (w <= 0) fail_msg("write: %s", strerror(errno));
    off += (size_t)w;
  }
}

static speed_t slave_speed(const char *slave, speed_t *ispeed) {
  const int fd = open(slave, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fd >= 0);
  struct termios t;
  assert_int_equal(tcgetattr(fd, &t), 0);
  close(fd);
  *ispeed = cfgetispeed(&t);
  return cfgetospeed(&t);
}

static void open_pty_port(eg_port *p, const pty_pair *pp, uint32_t baud) {
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_port_open(p, pp->name, baud, &f);
  if (e != EG_OK) fail_msg("eg_port_open(%s): %s: %s", pp->name, eg_err_name(e), f.msg);
}

/* A loopback listener on an ephemeral port, for the family `host` resolves
 * to first (what eg_port_open tries first). Returns the port number. */
static int listen_on(const char *host, int *lfd) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host, "0", &hints, &res) != 0) return -1;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4) < 0) {
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  *lfd = fd;
  return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Open socket://url and complete the connect the way the event loop would. */
static void tcp_connect(eg_port *p, const char *url) {
  eg_fault f;
  eg_fault_clear(&f);
  eg_err e = eg_port_open(p, url, 115200, &f);
  if (e != EG_OK) fail_msg("eg_port_open(%s): %s: %s", url, eg_err_name(e), f.msg);
  assert_ptr_equal(p->backend, &eg__port_tcp);
  for (int i = 0; p->connecting && i < 100; i++) {
    wait_fd(p->fd, POLLOUT);
    e = eg_port_finish_connect(p, &f);
    if (e != EG_OK) fail_msg("finish_connect(%s): %s: %s", url, eg_err_name(e), f.msg);
  }
  assert_false(p->connecting);
}

/* --------------------------------------------------------- pty backend */

static void test_pty_open_by_path(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);
  char real[PATH_MAX];
  assert_non_null(realpath(pp.name, real));
  assert_ptr_equal(p.backend, &eg__port_tty);
  assert_string_equal(p.name, pp.name);
  assert_string_equal(p.path, real);
  assert_true(p.fd >= 0);
  assert_true(fcntl(p.fd, F_GETFL) & O_NONBLOCK);
  assert_true(fcntl(p.fd, F_GETFD) & FD_CLOEXEC);
  assert_false(p.can_reset);
  assert_false(p.connecting);
  assert_int_equal(p.baud, 115200);
  assert_int_equal(p.dtr, -1);
  assert_int_equal(p.rts, -1);
  assert_null(p.impl);

  /* 8N1, raw, no flow control, reads never wait. */
  struct termios t;
  assert_int_equal(tcgetattr(p.fd, &t), 0);
  assert_int_equal(t.c_cflag & CSIZE, CS8);
  assert_int_equal(t.c_cflag & (PARENB | CSTOPB | CRTSCTS), 0);
  assert_int_equal(t.c_cflag & (CLOCAL | CREAD), CLOCAL | CREAD);
  assert_int_equal(t.c_iflag & (IXON | IXOFF | ICRNL | INLCR | IGNCR), 0);
  assert_int_equal(t.c_lflag & (ICANON | ECHO | ISIG), 0);
  assert_int_equal(t.c_oflag & OPOST, 0);
  assert_int_equal(t.c_cc[VMIN], 0);
  assert_int_equal(t.c_cc[VTIME], 0);

  assert_int_equal(eg_port_set_lines(&p, 1, 0), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(p.errmsg, "pseudo-terminal"));
  assert_non_null(strstr(p.errmsg, pp.name));
  assert_int_equal(eg_port_set_lines(&p, -1, -1), EG_RESET_UNSUPPORTED);
  assert_int_equal(eg_port_set_lines(&p, 2, 0), EG_INVAL);
  assert_int_equal(p.dtr, -1);
  /* Not TCP: nothing to finish. */
  assert_int_equal(eg_port_finish_connect(&p, NULL), EG_OK);

  eg_port_close(&p);
  assert_int_equal(p.fd, -1);
  eg_port_close(&p); /* idempotent */
  assert_int_equal(p.fd, -1);
  pty_free(&pp);
}

static void test_pty_open_by_symlink(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  char dir[] = "/tmp/eg-port-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char link1[PATH_MAX], link2[PATH_MAX];
  snprintf(link1, sizeof link1, "%s/espsim0", dir);
  snprintf(link2, sizeof link2, "%s/board-a", dir);
  assert_int_equal(symlink(pp.name, link1), 0);
  assert_int_equal(symlink(link1, link2), 0); /* a link to a link */

  char real[PATH_MAX];
  assert_non_null(realpath(pp.name, real));
  const char *names[] = {link1, link2};
  for (size_t i = 0; i < 2; i++) {
    eg_port p;
    eg_fault f;
    eg_fault_clear(&f);
    assert_int_equal(eg_port_open(&p, names[i], 921600, &f), EG_OK);
    assert_ptr_equal(p.backend, &eg__port_tty);
    assert_string_equal(p.name, names[i]);
    assert_string_equal(p.path, real);
    assert_false(p.can_reset);
    assert_int_equal(eg_port_set_lines(&p, 0, 1), EG_RESET_UNSUPPORTED);
    speed_t is;
    assert_int_equal(slave_speed(pp.name, &is), B921600);
    eg_port_close(&p);
  }
  unlink(link2);
  unlink(link1);
  rmdir(dir);
  pty_free(&pp);
}

static void test_pty_baud_really_changes(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);
  speed_t is, os = slave_speed(pp.name, &is);
  assert_int_equal(os, B115200);
  assert_int_equal(is, B115200);

  static const struct {
    uint32_t baud;
    speed_t speed;
  } rates[] = {{9600, B9600},       {57600, B57600},     {230400, B230400},   {460800, B460800},
               {921600, B921600},   {1500000, B1500000}, {2000000, B2000000}, {3000000, B3000000},
               {4000000, B4000000}, {115200, B115200}};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
    const eg_err e = eg_port_set_baud(&p, rates[i].baud);
    if (e != EG_OK) fail_msg("set_baud(%u): %s: %s", rates[i].baud, eg_err_name(e), p.errmsg);
    assert_int_equal(p.baud, rates[i].baud);
    /* What a second opener of the slave sees ... */
    os = slave_speed(pp.name, &is);
    assert_int_equal(os, rates[i].speed);
    assert_int_equal(is, rates[i].speed);
    /* ... and what the master's holder (espsim) sees. */
    struct termios t;
    assert_int_equal(tcgetattr(pp.master, &t), 0);
    assert_int_equal(cfgetospeed(&t), rates[i].speed);
  }
  eg_port_close(&p);
  pty_free(&pp);
}

static void test_pty_unsupported_rate(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 460800);

  assert_int_equal(eg_port_set_baud(&p, 123456), EG_PORT_CONFIG);
  assert_non_null(strstr(p.errmsg, "123456"));
  assert_int_equal(p.baud, 460800);
  speed_t is;
  assert_int_equal(slave_speed(pp.name, &is), B460800);
  assert_int_equal(eg_port_set_baud(&p, 0), EG_PORT_CONFIG);
  assert_int_equal(eg_port_set_baud(&p, 4000001), EG_PORT_CONFIG);
  assert_non_null(strstr(p.errmsg, "4000001"));
  assert_int_equal(p.baud, 460800);
  /* Still usable after refusing. */
  assert_int_equal(eg_port_set_baud(&p, 1500000), EG_OK);
  assert_int_equal(slave_speed(pp.name, &is), B1500000);
  eg_port_close(&p);

  /* Refused at open: nothing is left open. */
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&p, pp.name, 250000, &f), EG_PORT_CONFIG);
  assert_int_equal(f.code, EG_PORT_CONFIG);
  assert_int_equal(f.stage, EG_STAGE_OPEN);
  assert_non_null(strstr(f.msg, "250000"));
  assert_string_equal(f.msg, p.errmsg);
  assert_int_equal(p.fd, -1);
  eg_port_close(&p);
  pty_free(&pp);
}

static void test_pty_bytes_both_ways(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);

  /* Every byte value: CR/LF, ^C, XON/XOFF, DEL and SLIP's 0xC0/0xDB must
   * pass untouched in both directions. */
  uint8_t all[256], back[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, all, sizeof all, &done), EG_OK);
  assert_int_equal(done, sizeof all);
  read_exact(pp.master, back, sizeof back);
  assert_memory_equal(back, all, sizeof all);

  for (int i = 0; i < 256; i++) all[i] = (uint8_t)(255 - i);
  write_all(pp.master, all, sizeof all);
  memset(back, 0, sizeof back);
  port_read_exact(&p, back, sizeof back);
  assert_memory_equal(back, all, sizeof all);

  /* Nothing more to read: 0 bytes, not an error. */
  assert_int_equal(eg_port_read(&p, back, sizeof back, &done), EG_OK);
  assert_int_equal(done, 0);
  /* Zero-length calls are no-ops. */
  assert_int_equal(eg_port_write(&p, all, 0, &done), EG_OK);
  assert_int_equal(done, 0);
  assert_int_equal(eg_port_read(&p, back, 0, &done), EG_OK);
  assert_int_equal(done, 0);
  eg_port_close(&p);
  pty_free(&pp);
}

static void test_pty_large_write_partial(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 921600);

  const size_t n = 1u << 20;
  uint8_t *src = malloc(n), *dst = malloc(n);
  assert_non_null(src);
  assert_non_null(dst);
  for (size_t i = 0; i < n; i++) src[i] = (uint8_t)((i * 131u) ^ (i >> 9));

  /* Nobody reads the master: the pty fills and the port reports how far
   * it got instead of blocking. */
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, src, n, &done), EG_OK);
  assert_true(done > 0);
  assert_true(done < n);
  size_t sent = done;
  /* The kernel's pty flush work may free a little room behind our back;
   * writing on soon moves nothing, and never blocks. */
  for (int i = 0; i < 100; i++) {
    assert_int_equal(eg_port_write(&p, src + sent, n - sent, &done), EG_OK);
    sent += done;
    if (done == 0) break;
  }
  assert_int_equal(done, 0); /* full */
  assert_true(sent < n);

  /* Drain and refill until all of it went through, in order. */
  size_t got = 0;
  while (got < n) {
    wait_fd(pp.master, POLLIN);
    const ssize_t r = read(pp.master, dst + got, n - got);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    assert_true(r > 0);
    got += (size_t)r;
    assert_true(got <= sent);
    if (sent < n) {
      assert_int_equal(eg_port_write(&p, src + sent, n - sent, &done), EG_OK);
      sent += done;
    }
  }
  assert_int_equal(sent, n);
  assert_memory_equal(dst, src, n);
  free(src);
  free(dst);
  eg_port_close(&p);
  pty_free(&pp);
}

static void test_pty_master_close_is_gone(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);
  uint8_t buf[64];
  size_t done = 99;
  assert_int_equal(eg_port_read(&p, buf, sizeof buf, &done), EG_OK);
  assert_int_equal(done, 0);

  pty_free(&pp); /* the simulator went away */
  const eg_err e = eg_port_read(&p, buf, sizeof buf, &done);
  if (e != EG_PORT_GONE) fail_msg("read after master close: %s (%s)", eg_err_name(e), p.errmsg);
  assert_int_equal(done, 0);
  assert_non_null(strstr(p.errmsg, p.name));
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"x", 1, &done), EG_PORT_GONE);
  assert_int_equal(done, 0);
  eg_port_close(&p);
}

static void test_pty_flush_input(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);
  write_all(pp.master, "stale boot log", 14);
  wait_fd(p.fd, POLLIN);
  assert_int_equal(eg_port_flush_input(&p), EG_OK);
  write_all(pp.master, "fresh", 5);
  uint8_t buf[32];
  port_read_exact(&p, buf, 5);
  assert_memory_equal(buf, "fresh", 5);
  size_t done = 0;
  assert_int_equal(eg_port_read(&p, buf, sizeof buf, &done), EG_OK);
  assert_int_equal(done, 0);
  eg_port_close(&p);
  pty_free(&pp);
}

/* The fd in a libuv loop: uv_poll_t says readable, eg_port_read gets what
 * the master wrote. */
typedef struct uv_ctx {
  eg_port *port;
  uv_poll_t poll;
  uv_timer_t guard;
  uint8_t got[128];
  size_t len, want;
  int callbacks;
  bool timed_out;
  eg_err err;
} uv_ctx;

static void uv_finish(uv_ctx *c) {
  uv_poll_stop(&c->poll);
  uv_timer_stop(&c->guard);
  uv_close((uv_handle_t *)&c->poll, NULL);
  uv_close((uv_handle_t *)&c->guard, NULL);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  uv_ctx *c = h->data;
  c->callbacks++;
  if (status < 0 || !(events & UV_READABLE)) {
    c->err = EG_IO;
    uv_finish(c);
    return;
  }
  size_t done = 0;
  c->err = eg_port_read(c->port, c->got + c->len, sizeof c->got - c->len, &done);
  c->len += done;
  if (c->err != EG_OK || c->len >= c->want) uv_finish(c);
}

static void on_guard(uv_timer_t *t) {
  uv_ctx *c = t->data;
  c->timed_out = true;
  uv_finish(c);
}

static void test_pty_in_uv_loop(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);

  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  uv_ctx c = {.port = &p, .err = EG_OK};
  static const char msg[] = "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT)\r\nwaiting for download\r\n";
  c.want = sizeof msg - 1;
  assert_int_equal(uv_poll_init(&loop, &c.poll, p.fd), 0);
  c.poll.data = &c;
  assert_int_equal(uv_timer_init(&loop, &c.guard), 0);
  c.guard.data = &c;
  assert_int_equal(uv_poll_start(&c.poll, UV_READABLE, on_readable), 0);
  assert_int_equal(uv_timer_start(&c.guard, on_guard, SAFETY_MS, 0), 0);

  write_all(pp.master, msg, c.want);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_false(c.timed_out);
  assert_int_equal(c.err, EG_OK);
  assert_true(c.callbacks >= 1);
  assert_int_equal(c.len, c.want);
  assert_memory_equal(c.got, msg, c.want);
  eg_port_close(&p);
  pty_free(&pp);
}

/* ---------------------------------------------------- open failures */

static void expect_open_fails(const char *name, uint32_t baud, eg_err want, const char *needle1,
                              const char *needle2) {
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_port_open(&p, name, baud, &f);
  if (e != want)
    fail_msg("open(%s): got %s, want %s (%s)", name ? name : "(null)", eg_err_name(e), eg_err_name(want), f.msg);
  assert_int_equal(f.code, want);
  assert_int_equal(f.stage, EG_STAGE_OPEN);
  assert_int_equal(f.opcode, -1);
  assert_int_equal(p.fd, -1);
  assert_null(p.impl);
  assert_string_equal(p.errmsg, f.msg);
  assert_null(strchr(f.msg, '\n'));
  if (needle1 && !strstr(f.msg, needle1)) fail_msg("open(%s): \"%s\" lacks \"%s\"", name, f.msg, needle1);
  if (needle2 && !strstr(f.msg, needle2)) fail_msg("open(%s): \"%s\" lacks \"%s\"", name, f.msg, needle2);
  eg_port_close(&p); /* safe after a failed open */
  eg_port_close(&p);
  /* A NULL fault is allowed; the message still lands in errmsg. */
  assert_int_equal(eg_port_open(&p, name, baud, NULL), want);
  assert_true(p.errmsg[0] != '\0');
  eg_port_close(&p);
}

static void test_open_failures(void **state) {
  (void)state;
  expect_open_fails("/dev/ttyUSB-espgang-no-such-port", 115200, EG_PORT_OPEN, "/dev/ttyUSB-espgang-no-such-port",
                    strerror(ENOENT));
  expect_open_fails(NULL, 115200, EG_PORT_OPEN, "no port name", NULL);
  expect_open_fails("", 115200, EG_PORT_OPEN, "no port name", NULL);
  /* A character device that is no serial port goes to libserialport, which
   * finds nothing in sysfs for it. */
  expect_open_fails("/dev/null", 115200, EG_PORT_OPEN, "/dev/null", "not a serial port");
  expect_open_fails("ftp://localhost:4000", 115200, EG_PORT_OPEN, "ftp://localhost:4000", "socket://");
  expect_open_fails("/dev/null", 0, EG_PORT_CONFIG, "baud", NULL);

  char dir[] = "/tmp/eg-port-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char dangling[PATH_MAX], file[PATH_MAX];
  snprintf(dangling, sizeof dangling, "%s/gone", dir);
  snprintf(file, sizeof file, "%s/plain", dir);
  assert_int_equal(symlink("/dev/pts/espgang-none", dangling), 0);
  expect_open_fails(dangling, 115200, EG_PORT_OPEN, dangling, strerror(ENOENT));
  FILE *fp = fopen(file, "w");
  assert_non_null(fp);
  fclose(fp);
  expect_open_fails(file, 115200, EG_PORT_OPEN, file, "not a serial port");
  expect_open_fails(dir, 115200, EG_PORT_OPEN, dir, "not a serial port");
  unlink(dangling);
  unlink(file);
  rmdir(dir);

  char longname[400];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  longname[0] = '/';
  expect_open_fails(longname, 115200, EG_PORT_OPEN, "too long", NULL);
}

static void test_closed_port_calls(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  open_pty_port(&p, &pp, 115200);
  eg_port_close(&p);
  uint8_t buf[4];
  size_t done = 7;
  assert_int_equal(eg_port_read(&p, buf, sizeof buf, &done), EG_INVAL);
  assert_int_equal(done, 0);
  done = 7;
  assert_int_equal(eg_port_write(&p, buf, sizeof buf, &done), EG_INVAL);
  assert_int_equal(done, 0);
  assert_int_equal(eg_port_set_baud(&p, 115200), EG_INVAL);
  assert_int_equal(eg_port_set_lines(&p, 0, 0), EG_INVAL);
  assert_int_equal(eg_port_flush_input(&p), EG_INVAL);
  assert_int_equal(eg_port_finish_connect(&p, NULL), EG_INVAL);
  pty_free(&pp);

  /* The way eg_dev embeds it: zeroed, fd = -1, never opened. */
  eg_port z;
  memset(&z, 0, sizeof z);
  z.fd = -1;
  eg_port_close(&z);
  assert_int_equal(z.fd, -1);
}

/* ------------------------------------------------------- TCP backend */

static void test_tcp_url_parse(void **state) {
  (void)state;
  char host[256], port[8], msg[128];
  static const struct {
    const char *url, *host, *port;
  } good[] = {
    {"socket://127.0.0.1:5555", "127.0.0.1", "5555"},
    {"socket://localhost:1", "localhost", "1"},
    {"SOCKET://board-7.lan:65535", "board-7.lan", "65535"},
    {"socket://[::1]:4000", "::1", "4000"},
    {"socket://[fe80::1%eth0]:80", "fe80::1%eth0", "80"},
    {"socket://h:007", "h", "7"},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (!eg__url_parse(good[i].url, "socket://", host, sizeof host, port, sizeof port, msg, sizeof msg))
      fail_msg("%s: rejected: %s", good[i].url, msg);
    assert_string_equal(host, good[i].host);
    assert_string_equal(port, good[i].port);
  }
  static const struct {
    const char *url, *why;
  } bad[] = {
    {"socket://", "no port"},
    {"socket://host", "no port"},
    {"socket://host:", "no port"},
    {"socket://:4000", "empty host"},
    {"socket://[]:4000", "empty host"},
    {"socket://host:0", "range"},
    {"socket://host:65536", "range"},
    {"socket://host:99999999999999999999999", "range"},
    {"socket://host:12ab", "not a number"},
    {"socket://host:-1", "not a number"},
    {"socket://host:80/path", "not a number"},
    {"socket://host: 80", "not a number"},
    {"socket://[::1", "']'"},
    {"socket://[::1]", "no port"},
    {"socket://[::1]x80", "no port"},
    {"socket://::1:80", "brackets"},
    {"serial:///dev/ttyUSB0", "socket://"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (eg__url_parse(bad[i].url, "socket://", host, sizeof host, port, sizeof port, msg, sizeof msg))
      fail_msg("%s: accepted as host \"%s\" port \"%s\"", bad[i].url, host, port);
    if (!strstr(msg, bad[i].why)) fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].url, msg, bad[i].why);
  }
  /* Through eg_port_open: EG_PORT_OPEN naming the URL and the reason. */
  expect_open_fails("socket://host", 115200, EG_PORT_OPEN, "socket://host", "no port");
  expect_open_fails("socket://:4000", 115200, EG_PORT_OPEN, "socket://:4000", "empty host");
  expect_open_fails("socket://127.0.0.1:70000", 115200, EG_PORT_OPEN, "malformed URL", "range");
  expect_open_fails("socket://no-such-host.invalid:4000", 115200, EG_PORT_OPEN, "no-such-host.invalid",
                    "resolve");
}

static void tcp_exercise(const char *host) {
  int lfd = -1;
  const int port = listen_on(host, &lfd);
  assert_true(port > 0);
  char url[128];
  snprintf(url, sizeof url, "socket://%s:%d", host, port);

  eg_port p;
  tcp_connect(&p, url);
  assert_string_equal(p.name, url);
  assert_string_equal(p.path, "");
  assert_false(p.can_reset);
  assert_true(fcntl(p.fd, F_GETFL) & O_NONBLOCK);
  int nodelay = 0;
  socklen_t len = sizeof nodelay;
  assert_int_equal(getsockopt(p.fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
  assert_true(nodelay != 0);
  assert_int_equal(eg_port_finish_connect(&p, NULL), EG_OK); /* again: no-op */

  const int peer = accept(lfd, NULL, NULL);
  assert_true(peer >= 0);
  close(lfd);

  /* Baud is remembered only; no lines. */
  assert_int_equal(eg_port_set_baud(&p, 921600), EG_OK);
  assert_int_equal(p.baud, 921600);
  assert_int_equal(eg_port_set_baud(&p, 0), EG_PORT_CONFIG);
  assert_int_equal(p.baud, 921600);
  assert_int_equal(eg_port_set_lines(&p, 1, 1), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(p.errmsg, "TCP"));

  uint8_t all[256], back[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, all, sizeof all, &done), EG_OK);
  assert_int_equal(done, sizeof all);
  read_exact(peer, back, sizeof back);
  assert_memory_equal(back, all, sizeof all);
  write_all(peer, all, sizeof all);
  memset(back, 0, sizeof back);
  port_read_exact(&p, back, sizeof back);
  assert_memory_equal(back, all, sizeof all);

  /* flush_input drops what is queued now, and only that. */
  write_all(peer, "stale", 5);
  for (int avail = 0; avail < 5;) {
    wait_fd(p.fd, POLLIN);
    assert_int_equal(ioctl(p.fd, FIONREAD, &avail), 0);
  }
  assert_int_equal(eg_port_flush_input(&p), EG_OK);
  int left = -1;
  assert_int_equal(ioctl(p.fd, FIONREAD, &left), 0);
  assert_int_equal(left, 0);
  write_all(peer, "new", 3);
  port_read_exact(&p, back, 3);
  assert_memory_equal(back, "new", 3);

  /* The peer goes away: EOF is EG_PORT_GONE. */
  close(peer);
  wait_fd(p.fd, POLLIN);
  const eg_err e = eg_port_read(&p, back, sizeof back, &done);
  if (e != EG_PORT_GONE) fail_msg("read after peer close: %s (%s)", eg_err_name(e), p.errmsg);
  assert_int_equal(done, 0);
  assert_non_null(strstr(p.errmsg, "closed"));
  eg_port_close(&p);
  assert_int_equal(p.fd, -1);
  eg_port_close(&p);
}

static void test_tcp_numeric(void **state) {
  (void)state;
  tcp_exercise("127.0.0.1");
}

static void test_tcp_localhost(void **state) {
  (void)state;
  tcp_exercise("localhost");
}

static void test_tcp_ipv6_literal(void **state) {
  (void)state;
  int lfd = -1;
  const int port = listen_on("::1", &lfd);
  if (port <= 0) skip(); /* no IPv6 loopback on this machine */
  char url[64];
  snprintf(url, sizeof url, "socket://[::1]:%d", port);
  eg_port p;
  tcp_connect(&p, url);
  const int peer = accept(lfd, NULL, NULL);
  assert_true(peer >= 0);
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"v6", 2, &done), EG_OK);
  assert_int_equal(done, 2);
  uint8_t b[2];
  read_exact(peer, b, 2);
  assert_memory_equal(b, "v6", 2);
  close(peer);
  close(lfd);
  eg_port_close(&p);
}

static void test_tcp_refused(void **state) {
  (void)state;
  /* A port that was just free: bind, learn the number, close. */
  int lfd = -1;
  const int port = listen_on("127.0.0.1", &lfd);
  assert_true(port > 0);
  close(lfd);
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", port);

  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  eg_err e = eg_port_open(&p, url, 115200, &f);
  /* Refused either at once or, like any non-blocking connect, later. */
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
}

static void test_tcp_write_after_peer_close(void **state) {
  (void)state;
  /* Default SIGPIPE disposition: if the port wrote without MSG_NOSIGNAL,
   * this test process would die here. */
  struct sigaction old, dfl = {.sa_handler = SIG_DFL};
  sigemptyset(&dfl.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);

  int lfd = -1;
  const int port = listen_on("127.0.0.1", &lfd);
  assert_true(port > 0);
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", port);
  eg_port p;
  tcp_connect(&p, url);
  const int peer = accept(lfd, NULL, NULL);
  assert_true(peer >= 0);
  close(lfd);
  close(peer);

  /* The first write after the peer's FIN is accepted by the kernel; the
   * peer answers with RST; a later write fails with EPIPE/ECONNRESET. */
  uint8_t chunk[1024];
  memset(chunk, 0x5a, sizeof chunk);
  eg_err e = EG_OK;
  int writes = 0;
  for (; writes < 200 && e == EG_OK; writes++) {
    size_t done = 0;
    e = eg_port_write(&p, chunk, sizeof chunk, &done);
    if (e == EG_OK) {
      struct pollfd pfd = {.fd = p.fd, .events = POLLIN};
      poll(&pfd, 1, 20); /* give the RST time to come back */
    }
  }
  if (e != EG_PORT_GONE) fail_msg("after %d writes to a closed peer: %s (%s)", writes, eg_err_name(e), p.errmsg);
  assert_non_null(strstr(p.errmsg, "write failed"));
  eg_port_close(&p);
  assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

/* ------------------------------------------------- modem-line helpers */

static void test_modem_apply(void **state) {
  (void)state;
  assert_int_equal(eg__modem_apply(0, 1, 1), TIOCM_DTR | TIOCM_RTS);
  assert_int_equal(eg__modem_apply(TIOCM_DTR | TIOCM_RTS, 0, 0), 0);
  assert_int_equal(eg__modem_apply(TIOCM_DTR | TIOCM_RTS | TIOCM_CTS, 0, -1), TIOCM_RTS | TIOCM_CTS);
  assert_int_equal(eg__modem_apply(TIOCM_CTS, -1, 1), TIOCM_RTS | TIOCM_CTS);
  assert_int_equal(eg__modem_apply(TIOCM_DTR | TIOCM_CD, -1, -1), TIOCM_DTR | TIOCM_CD);
  /* UnixTightReset's (IO0 low, EN high) step: DTR asserted, RTS released. */
  assert_int_equal(eg__modem_apply(TIOCM_RTS, 1, 0), TIOCM_DTR);
}

/* A pty has no modem lines: the ioctl failure must be reported, not
 * swallowed (the classic "board never enters download mode" bug). */
static void test_modem_ioctl_failure_reported(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  const int fd = open(pp.name, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fd >= 0);
  char msg[160];
  assert_int_equal(eg__modem_set(fd, 1, 1, msg, sizeof msg), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(msg, "TIOCMGET"));
  assert_int_equal(eg__modem_set(fd, 1, -1, msg, sizeof msg), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(msg, "DTR"));
  assert_int_equal(eg__modem_set(fd, -1, 0, msg, sizeof msg), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(msg, "RTS"));
  /* EBADF: a descriptor that is not open is a bug of ours, not an unplug
   * (an unplugged adapter answers EIO; port_fd.c's errno table). */
  assert_int_equal(eg__modem_set(-1, 0, 0, msg, sizeof msg), EG_IO);
  close(fd);
  pty_free(&pp);
}

/* -------------------------------------------------- list and helpers */

static void test_tty_drivers_parse(void **state) {
  (void)state;
  static const char text[] =
    "/dev/tty             /dev/tty        5       0 system:/dev/tty\n"
    "/dev/ptmx            /dev/ptmx       5       2 system\n"
    "serial               /dev/ttyS       4 64-111 serial\n"
    "pty_slave            /dev/pts      136 0-1048575 pty:slave\n"
    "pty_master           /dev/ptm      128 0-1048575 pty:master\n"
    "pty_slave            /dev/ttyp       3 0-255 pty:slave\n"
    "garbage line\n"
    "usbserial            /dev/ttyUSB   188 0-511 serial";
  assert_true(eg__tty_drivers_say_pty(text, 136, 5));
  assert_true(eg__tty_drivers_say_pty(text, 3, 255));
  assert_false(eg__tty_drivers_say_pty(text, 3, 256));
  assert_true(eg__tty_drivers_say_pty(text, 128, 0));
  assert_false(eg__tty_drivers_say_pty(text, 4, 64));
  assert_false(eg__tty_drivers_say_pty(text, 188, 0));
  assert_false(eg__tty_drivers_say_pty(text, 5, 2));
  assert_false(eg__tty_drivers_say_pty(text, 7, 0));
  assert_false(eg__tty_drivers_say_pty("", 136, 0));
}

static void test_is_pty(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  char real[PATH_MAX];
  assert_non_null(realpath(pp.name, real));
  assert_true(eg__tty_is_pty(real));
  assert_false(eg__tty_is_pty("/dev/null"));
  assert_false(eg__tty_is_pty("/dev/espgang-none"));
  assert_false(eg__tty_is_pty("/tmp"));
  assert_false(eg__tty_is_pty("/dev/pts/ptmx"));
  pty_free(&pp);
}

static void test_tty_speed_table(void **state) {
  (void)state;
  speed_t s;
  assert_true(eg__tty_speed(115200, &s));
  assert_int_equal(s, B115200);
  assert_true(eg__tty_speed(921600, &s));
  assert_int_equal(s, B921600);
  assert_true(eg__tty_speed(2000000, &s));
  assert_int_equal(s, B2000000);
  assert_true(eg__tty_speed(4000000, &s));
  assert_int_equal(s, B4000000);
  assert_false(eg__tty_speed(0, &s));
  assert_false(eg__tty_speed(74880, &s)); /* the ESP8266 boot-log rate has no Bxxx */
  assert_false(eg__tty_speed(4000001, &s));
}

/* The rate a driver reports back: a Bxxx code, or BOTHER (0010000) and the
 * number, as libserialport 0.1.1 sets every rate above 460800. */
static void test_termios_rate_readback(void **state) {
  (void)state;
  assert_int_equal(eg__termios_rate(B115200, 0), 115200);
  assert_int_equal(eg__termios_rate(B921600, 12345), 921600); /* the code wins */
  assert_int_equal(eg__termios_rate(0010000, 921600), 921600);
  assert_int_equal(eg__termios_rate(0010000, 74880), 74880);
  assert_int_equal(eg__termios_rate(B0, 0), 0);
  /* Within the kernel's 2%: a CP2102 at 921600 really runs 923077. */
  assert_true(eg__termios_rate_close(921600, 921600));
  assert_true(eg__termios_rate_close(923077, 921600));
  assert_true(eg__termios_rate_close(921600 + 18432, 921600));
  assert_false(eg__termios_rate_close(921600 + 18433, 921600));
  assert_false(eg__termios_rate_close(1000000, 2000000)); /* clamped: garbage later */
  assert_false(eg__termios_rate_close(0, 115200));
}

/* libserialport 0.1.1 cannot open a pty, for two reasons (its linux.c and
 * serialport.c): sp_get_port_by_name looks the port up as
 * /sys/class/tty/<name after "/dev/"> ("pts/N": no such entry, ptys are not
 * in sysfs), and sp_open's first ioctl is TIOCMGET, which a pty refuses.
 * Hence the termios backend for ptys, and tests/preload/fakeusb.c to run
 * libserialport's code anyway (test_port_serial.c). */
static void test_serial_backend_refuses_pty(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  eg_port p;
  memset(&p, 0, sizeof p);
  p.fd = -1;
  p.backend = &eg__port_serial;
  p.caps = eg__port_serial.caps;
  p.baud = 115200;
  snprintf(p.name, sizeof p.name, "%s", pp.name);
  snprintf(p.path, sizeof p.path, "%s", pp.name);
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg__port_serial.open(&p, &f), EG_PORT_OPEN);
  char want[128];
  snprintf(want, sizeof want, "not a serial port (no /sys/class/tty/%s)", pp.name + 5);
  if (!strstr(f.msg, want)) fail_msg("\"%s\" lacks \"%s\"", f.msg, want);
  assert_int_equal(p.fd, -1);
  assert_null(p.impl);
  const int fd = open(pp.name, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fd >= 0);
  int bits = 0;
  assert_int_equal(ioctl(fd, TIOCMGET, &bits), -1);
  if (errno != EINVAL && errno != ENOTTY) fail_msg("TIOCMGET on a pty: %s", strerror(errno));
  close(fd);
  pty_free(&pp);
}

static void test_usb_location(void **state) {
  (void)state;
  char loc[64];
  eg__usb_location("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4:1.0/ttyUSB0", loc, sizeof loc);
  assert_string_equal(loc, "1-1.4");
  eg__usb_location("/sys/devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0", loc, sizeof loc); /* cdc_acm */
  assert_string_equal(loc, "3-2");
  eg__usb_location("/sys/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.1/1-1.1.3/1-1.1.3:1.0/ttyUSB2", loc,
                   sizeof loc);
  assert_string_equal(loc, "1-1.1.3");
  eg__usb_location("/sys/devices/pnp0/00:05/tty/ttyS0", loc, sizeof loc);
  assert_string_equal(loc, "");
  eg__usb_location("/sys/devices/platform/serial8250/tty/ttyS1", loc, sizeof loc);
  assert_string_equal(loc, "");
  eg__usb_location("/sys/devices/virtual/i2c-1/1-", loc, sizeof loc);
  assert_string_equal(loc, "");
  eg__usb_location("", loc, sizeof loc);
  assert_string_equal(loc, "");
  char tiny[4];
  eg__usb_location("/sys/devices/usb1/1-1/1-1.4/1-1.4:1.0", tiny, sizeof tiny);
  assert_string_equal(tiny, ""); /* "1-1.4" does not fit: neither truncated nor the parent "1-1" */
}

static void test_find_link(void **state) {
  (void)state;
  pty_pair pp;
  pty_make(&pp);
  char real[PATH_MAX];
  assert_non_null(realpath(pp.name, real));
  char dir[] = "/tmp/eg-port-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char a[PATH_MAX], b[PATH_MAX], o[PATH_MAX], out[256];
  snprintf(a, sizeof a, "%s/usb-Silicon_Labs_CP2102-if00-port0", dir);
  snprintf(b, sizeof b, "%s/usb-Silicon_Labs_CP2102_0001-if00-port0", dir);
  snprintf(o, sizeof o, "%s/other", dir);
  assert_int_equal(symlink(pp.name, b), 0);
  assert_int_equal(symlink(pp.name, a), 0);
  assert_int_equal(symlink("/dev/null", o), 0);
  assert_true(eg__find_link(dir, real, out, sizeof out));
  assert_string_equal(out, a); /* smallest name of the two that match */
  assert_false(eg__find_link(dir, "/dev/espgang-none", out, sizeof out));
  assert_string_equal(out, "");
  assert_false(eg__find_link("/nonexistent-espgang-dir", real, out, sizeof out));
  assert_string_equal(out, "");
  unlink(a);
  unlink(b);
  unlink(o);
  rmdir(dir);
  pty_free(&pp);
}

int main(void) {
  /* libuv creates a process-wide pipe (its signal lock) on the first loop
   * init and never closes it; make that happen before the fd counting. */
  uv_loop_t warm;
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_pty_open_by_path, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_open_by_symlink, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_baud_really_changes, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_unsupported_rate, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_bytes_both_ways, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_large_write_partial, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_master_close_is_gone, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_flush_input, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_pty_in_uv_loop, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_open_failures, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_closed_port_calls, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tcp_url_parse, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tcp_numeric, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tcp_localhost, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tcp_ipv6_literal, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tcp_refused, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tcp_write_after_peer_close, setup_fds, teardown_fds),
    cmocka_unit_test(test_modem_apply),
    cmocka_unit_test_setup_teardown(test_modem_ioctl_failure_reported, setup_fds, teardown_fds),
    cmocka_unit_test(test_tty_drivers_parse),
    cmocka_unit_test_setup_teardown(test_is_pty, setup_fds, teardown_fds),
    cmocka_unit_test(test_tty_speed_table),
    cmocka_unit_test(test_termios_rate_readback),
    cmocka_unit_test_setup_teardown(test_serial_backend_refuses_pty, setup_fds, teardown_fds),
    cmocka_unit_test(test_usb_location),
    cmocka_unit_test_setup_teardown(test_find_link, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
