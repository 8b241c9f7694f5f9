/* test_port_check.c - what the port layer decides before anything is
 * opened: eg_port_check's refusals and capabilities (the CLI's exit 2 for a
 * malformed or http:// URL, a regular file, a directory, a FIFO; the
 * capabilities that let it reject an impossible --before and --after in one
 * message), eg_port_open refusing the same names with the same words, the
 * backend table's self-check (every entry complete, one catch-all, last),
 * and the one errno table's words and codes.
 *
 * Every test checks that it leaves exactly as many open fds as it found.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fdcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "port.h"
#include "port_backend.h"
#include "port_util.h"

/* eg_port_check must refuse `name` with EG_PORT_OPEN and words holding both
 * needles; eg_port_open must refuse it the same way. */
static void expect_refused(const char *name, const char *needle1, const char *needle2) {
  char why[300] = "untouched";
  eg_port_caps caps = {.kind = "untouched"};
  const eg_err e = eg_port_check(name, &caps, why, sizeof why);
  if (e != EG_PORT_OPEN) fail_msg("check(%s): %s, want PORT_OPEN (%s)", name ? name : "(null)", eg_err_name(e), why);
  assert_string_equal(caps.kind, "untouched"); /* caps only on success */
  assert_null(strchr(why, '\n'));
  if (needle1 && !strstr(why, needle1)) fail_msg("check(%s): \"%s\" lacks \"%s\"", name, why, needle1);
  if (needle2 && !strstr(why, needle2)) fail_msg("check(%s): \"%s\" lacks \"%s\"", name, why, needle2);
  assert_int_equal(eg_port_check(name, NULL, NULL, 0), EG_PORT_OPEN); /* both optional */
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&p, name, 115200, &f), EG_PORT_OPEN);
  if (strcmp(f.msg, why) != 0) fail_msg("open(%s) says \"%s\", check says \"%s\"", name, f.msg, why);
  assert_int_equal(p.fd, -1);
  eg_port_close(&p);
}

static void expect_caps(const char *name, const char *kind, bool can_reset, bool has_baud, bool is_network) {
  char why[300] = "stale";
  eg_port_caps caps;
  memset(&caps, 0, sizeof caps);
  const eg_err e = eg_port_check(name, &caps, why, sizeof why);
  if (e != EG_OK) fail_msg("check(%s): %s (%s)", name, eg_err_name(e), why);
  assert_string_equal(why, "");
  assert_string_equal(caps.kind, kind);
  assert_int_equal(caps.can_reset, can_reset);
  assert_int_equal(caps.has_baud, has_baud);
  assert_int_equal(caps.is_network, is_network);
}

static void test_refusals(void **state) {
  (void)state;
  expect_refused(NULL, "no port name", NULL);
  expect_refused("", "no port name", NULL);
  char longname[400];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  longname[0] = '/';
  expect_refused(longname, "too long", NULL);
  /* URLs */
  expect_refused("http://10.0.0.1:80", "http://10.0.0.1:80", "unsupported URL");
  expect_refused("ftp://h:1", "socket://host:port", "rfc2217://host:port");
  expect_refused("socket://host", "malformed URL", "no port");
  expect_refused("socket://:4000", "malformed URL", "empty host");
  expect_refused("rfc2217://127.0.0.1:99999", "malformed URL", "range");
  expect_refused("rfc2217://[::1:4000", "malformed URL", "]");
  expect_refused("rfc2217://h:4000?", "malformed URL", "empty option name");
  /* paths */
  expect_refused("/dev/ttyUSB-espgang-no-such-port", "/dev/ttyUSB-espgang-no-such-port", strerror(ENOENT));
  char dir[] = "/tmp/eg-check-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char file[PATH_MAX], fifo[PATH_MAX], dangling[PATH_MAX];
  snprintf(file, sizeof file, "%s/image.bin", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  snprintf(dangling, sizeof dangling, "%s/gone", dir);
  FILE *fp = fopen(file, "w");
  assert_non_null(fp);
  fclose(fp);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(symlink("/dev/pts/espgang-none", dangling), 0);
  expect_refused(file, file, "is a regular file, not a serial port");
  expect_refused(dir, dir, "is a directory, not a serial port");
  /* A FIFO is refused, not opened (an open would wait for a writer). */
  expect_refused(fifo, fifo, "not a character device");
  expect_refused(dangling, "/dev/pts/espgang-none", "does not exist");
  unlink(file);
  unlink(fifo);
  unlink(dangling);
  rmdir(dir);
  /* A character device the kernel files under another class than tty. */
  struct stat st;
  if (stat("/sys/dev/char/1:3/subsystem", &st) == 0) expect_refused("/dev/null", "/dev/null", "mem device");
  else expect_refused("/dev/null", "/dev/null", "not a serial port"); /* libserialport's words at open */
}

/* A listener that counts the connections made to it. */
static int listen_any(int *port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void test_capabilities(void **state) {
  (void)state;
  int port = 0;
  const int lfd = listen_any(&port);
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", port);
  expect_caps(url, "TCP socket", false, false, true);
  snprintf(url, sizeof url, "RFC2217://127.0.0.1:%d?ign_set_control", port);
  expect_caps(url, "RFC 2217 server", true, true, true);
  /* Nothing connected: the check opens nothing. */
  struct pollfd pfd = {.fd = lfd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 50), 0);
  close(lfd);
  /* No DNS either: an unresolvable name passes the check (open says why). */
  expect_caps("socket://no-such-host.invalid:4000", "TCP socket", false, false, true);

  int master, slave;
  char name[64];
  assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
  expect_caps(name, "pseudo-terminal", false, true, false);
  char dir[] = "/tmp/eg-check-XXXXXX", link[PATH_MAX];
  assert_non_null(mkdtemp(dir));
  snprintf(link, sizeof link, "%s/slot01", dir);
  assert_int_equal(symlink(name, link), 0);
  expect_caps(link, "pseudo-terminal", false, true, false); /* decided by what the link points at */
  unlink(link);
  rmdir(dir);
  close(slave);
  close(master);
}

/* What an open port says about itself matches the check. */
static void test_open_port_caps(void **state) {
  (void)state;
  int master, slave;
  char name[64];
  assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
  eg_port p;
  assert_string_equal(eg_port_kind_name(&(eg_port){.fd = -1}), "port");
  assert_int_equal(eg_port_open(&p, name, 115200, NULL), EG_OK);
  assert_string_equal(eg_port_kind_name(&p), "pseudo-terminal");
  assert_string_equal(p.caps.kind, "pseudo-terminal");
  assert_false(p.can_reset);
  assert_int_equal(p.can_reset, p.caps.can_reset);
  assert_int_equal(eg_port_set_lines(&p, 1, 1), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(p.errmsg, "pseudo-terminal"));
  assert_non_null(strstr(p.errmsg, "no DTR/RTS"));
  eg_port_close(&p);
  close(slave);
  close(master);
}

static void test_backend_table(void **state) {
  (void)state;
  size_t n = 0;
  const eg_port_backend *const *t = eg__port_backends(&n);
  assert_true(n >= 5);
  size_t catch_all = 0;
  for (size_t i = 0; i < n; i++) {
    const eg_port_backend *b = t[i];
    const char *k = b->caps.kind;
    if (!k || !*k) fail_msg("backend %zu has no kind", i);
    if (!b->open || !b->finish_connect || !b->close || !b->read || !b->write || !b->set_baud || !b->set_lines ||
        !b->flush_input || !b->wants_write || !b->flush_pending)
      fail_msg("%s: incomplete table", k);
    for (size_t j = 0; j < i; j++) {
      if (strcmp(t[j]->caps.kind, k) == 0) fail_msg("two backends called %s", k);
      if (b->scheme && t[j]->scheme && strcasecmp(b->scheme, t[j]->scheme) == 0) fail_msg("scheme %s twice", b->scheme);
    }
    if (b->scheme) {
      /* URL backends: a check, a socket, no path claims, no device lock. */
      const size_t sl = strlen(b->scheme);
      if (sl < 4 || strcmp(b->scheme + sl - 3, "://") != 0) fail_msg("%s: scheme \"%s\"", k, b->scheme);
      if (!b->check || b->claims || !b->socket || b->lock == EG__LOCK_DEVICE) fail_msg("%s: URL backend misdeclared", k);
      if (b->caps.is_network != (b->lock == EG__LOCK_URL)) fail_msg("%s: network ports lock a URL", k);
    } else {
      if (b->check || b->socket || b->lock != EG__LOCK_DEVICE || b->caps.is_network) fail_msg("%s: device backend misdeclared", k);
      if (!b->claims) {
        catch_all++;
        if (i != n - 1) fail_msg("%s claims every path but is not last", k);
      }
    }
  }
  assert_int_equal(catch_all, 1);
  assert_ptr_equal(t[n - 1], &eg__port_serial);
}

static void test_errno_words(void **state) {
  (void)state;
  static const int gone[] = {EIO, ENXIO, ENODEV};
  for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++) {
    assert_string_equal(eg__errno_words(gone[i]), "the device disappeared (unplugged?)");
    assert_int_equal(eg__errno_code(gone[i], EG__OP_IO), EG_PORT_GONE);
    assert_int_equal(eg__errno_code(gone[i], EG__OP_LINES), EG_PORT_GONE);
    assert_int_equal(eg__errno_code(gone[i], EG__OP_OPEN), EG_PORT_OPEN);
  }
  assert_string_equal(eg__errno_words(ECONNREFUSED), "connection refused");
  assert_int_equal(eg__errno_code(ECONNREFUSED, EG__OP_OPEN), EG_PORT_OPEN);
  assert_int_equal(eg__errno_code(ECONNRESET, EG__OP_IO), EG_PORT_GONE);
  assert_int_equal(eg__errno_code(EPIPE, EG__OP_IO), EG_PORT_GONE);
  assert_int_equal(eg__errno_code(EBUSY, EG__OP_OPEN), EG_PORT_BUSY);
  assert_int_equal(eg__errno_code(ENOTTY, EG__OP_LINES), EG_RESET_UNSUPPORTED);
  assert_int_equal(eg__errno_code(EINVAL, EG__OP_LINES), EG_RESET_UNSUPPORTED);
  assert_int_equal(eg__errno_code(ENOTTY, EG__OP_CONFIG), EG_PORT_CONFIG);
  assert_int_equal(eg__errno_code(ENOTTY, EG__OP_IO), EG_IO);
  assert_int_equal(eg__errno_code(EACCES, EG__OP_IO), EG_IO);
  assert_int_equal(eg__errno_code(EBADF, EG__OP_IO), EG_IO); /* our bug, not an unplug */
  assert_non_null(strstr(eg__errno_words(EACCES), "permission denied"));
  assert_string_equal(eg__errno_words(EROFS), strerror(EROFS)); /* the rest: the C library's words */

  /* The message shape: what we tried, our words, the errno's name. */
  eg_port p;
  memset(&p, 0, sizeof p);
  p.fd = -1;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg__port_os_fail(&p, &f, EG__OP_IO, EIO, "/dev/ttyUSB3: write failed"), EG_PORT_GONE);
  assert_string_equal(p.errmsg, "/dev/ttyUSB3: write failed: the device disappeared (unplugged?) [EIO]");
  assert_string_equal(f.msg, p.errmsg);
  assert_int_equal(f.code, EG_PORT_GONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_refusals, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_capabilities, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_open_port_caps, setup_fds, teardown_fds),
    cmocka_unit_test(test_backend_table),
    cmocka_unit_test(test_errno_words),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
