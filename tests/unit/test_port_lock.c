/* test_port_lock.c - exclusive use of a port (issue 9 item 2): a second
 * process (fork) that opens a port espgang holds gets EG_PORT_BUSY, "port X
 * is in use by PID N", before anything is sent or changed: on one pty, on
 * one pty through two different symlinks, on one network server port
 * (socket:// and rfc2217:// to the same host:port), as a non-root user whom
 * TIOCEXCL keeps from opening the tty at all; a holder that dies lets go;
 * the lock file of a URL goes away with the port. Plus the pure parts: the
 * /proc/locks parser and the lock file's name.
 *
 * Each child reports its eg_port_open result and message through a pipe and
 * is always waited for. Every test checks that it leaves exactly as many
 * open fds as it found.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "port.h"
#include "port_util.h"

typedef struct child_says {
  eg_err code;
  char msg[256];
} child_says;

/* Fork; the child drops to `uid` when >= 0, opens `name`, reports, and
 * either closes the port or (hold) exits without closing it. */
static child_says open_in_child(const char *name, int uid, bool hold) {
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    child_says s = {.code = EG_INVAL};
    if (uid >= 0 && setuid((uid_t)uid) != 0) {
      snprintf(s.msg, sizeof s.msg, "setuid: %s", strerror(errno));
    } else {
      eg_port p;
      eg_fault f;
      eg_fault_clear(&f);
      s.code = eg_port_open(&p, name, 115200, &f);
      snprintf(s.msg, sizeof s.msg, "%s", f.msg);
      if (!hold) eg_port_close(&p);
    }
    if (write(pfd[1], &s, sizeof s) != (ssize_t)sizeof s) _exit(3);
    _exit(0); /* no atexit handlers, no cmocka teardown in the child */
  }
  close(pfd[1]);
  child_says s;
  memset(&s, 0, sizeof s);
  const ssize_t n = read(pfd[0], &s, sizeof s);
  close(pfd[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (n != (ssize_t)sizeof s) fail_msg("the child said nothing (status 0x%x)", status);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return s;
}

static void expect_busy(const child_says *s, const char *name, pid_t holder) {
  if (s->code != EG_PORT_BUSY) fail_msg("second open of %s: %s (%s), want PORT_BUSY", name, eg_err_name(s->code), s->msg);
  char want[400];
  snprintf(want, sizeof want, "port %s is in use by PID %ld", name, (long)holder);
  if (strncmp(s->msg, want, strlen(want)) != 0) fail_msg("message \"%s\", want it to start \"%s\"", s->msg, want);
  assert_null(strchr(s->msg, '\n'));
}

typedef struct pty_rig {
  int master;
  char name[64];
  char dir[32];
  char link1[PATH_MAX], link2[PATH_MAX];
} pty_rig;

static void rig_make(pty_rig *r) {
  int slave;
  assert_int_equal(openpty(&r->master, &slave, r->name, NULL, NULL), 0);
  close(slave);
  snprintf(r->dir, sizeof r->dir, "/tmp/eg-lock-XXXXXX");
  assert_non_null(mkdtemp(r->dir));
  snprintf(r->link1, sizeof r->link1, "%s/slot01", r->dir);
  snprintf(r->link2, sizeof r->link2, "%s/by-id-board", r->dir);
  assert_int_equal(symlink(r->name, r->link1), 0);
  assert_int_equal(symlink(r->name, r->link2), 0);
}

static void rig_free(pty_rig *r) {
  unlink(r->link1);
  unlink(r->link2);
  rmdir(r->dir);
  close(r->master);
}

static speed_t slave_speed(const char *name) {
  const int fd = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fd >= 0);
  struct termios t;
  assert_int_equal(tcgetattr(fd, &t), 0);
  close(fd);
  return cfgetospeed(&t);
}

static void test_pty_second_process(void **state) {
  (void)state;
  pty_rig r;
  rig_make(&r);
  eg_port p;
  assert_int_equal(eg_port_open(&p, r.name, 921600, NULL), EG_OK);
  child_says s = open_in_child(r.name, -1, false);
  expect_busy(&s, r.name, getpid());
  /* Refused before touching the port: the child wanted 115200, the line
   * still runs at ours. */
  assert_int_equal(slave_speed(r.name), B921600);
  /* Our own port still works. */
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"ok", 2, &done), EG_OK);
  assert_int_equal(done, 2);
  eg_port_close(&p);
  s = open_in_child(r.name, -1, false);
  if (s.code != EG_OK) fail_msg("after close the port is free, but: %s (%s)", eg_err_name(s.code), s.msg);
  rig_free(&r);
}

static void test_two_symlinks_one_device(void **state) {
  (void)state;
  pty_rig r;
  rig_make(&r);
  eg_port p;
  assert_int_equal(eg_port_open(&p, r.link1, 115200, NULL), EG_OK);
  child_says s = open_in_child(r.link2, -1, false);
  expect_busy(&s, r.link2, getpid());
  s = open_in_child(r.name, -1, false);
  expect_busy(&s, r.name, getpid());
  /* The same process naming it twice (a manifest listing one port under two
   * names) is refused as well, and told so. */
  eg_port q;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&q, r.link2, 115200, &f), EG_PORT_BUSY);
  assert_non_null(strstr(f.msg, "this process"));
  eg_port_close(&q);
  eg_port_close(&p);
  rig_free(&r);
}

/* A holder that dies without closing lets go: the flock dies with it. */
static void test_dead_holder_lets_go(void **state) {
  (void)state;
  pty_rig r;
  rig_make(&r);
  child_says s = open_in_child(r.link1, -1, true);
  assert_int_equal(s.code, EG_OK);
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_port_open(&p, r.link1, 115200, &f) != EG_OK) fail_msg("after the holder died: %s", f.msg);
  eg_port_close(&p);
  rig_free(&r);
}

/* Not root: TIOCEXCL keeps the second process from even opening the tty
 * (EBUSY), and /proc/locks still names the holder. Our close clears the
 * flag again (the pty slave outlives it while the master is open). */
static void test_tiocexcl_non_root(void **state) {
  (void)state;
  if (geteuid() != 0) skip(); /* needs a second user to drop to */
  pty_rig r;
  rig_make(&r);
  assert_int_equal(chmod(r.name, 0666), 0);
  assert_int_equal(chmod(r.dir, 0755), 0);
  eg_port p;
  assert_int_equal(eg_port_open(&p, r.link1, 115200, NULL), EG_OK);
  child_says s = open_in_child(r.link2, 65534, false);
  expect_busy(&s, r.link2, getpid());
  /* Prove it was TIOCEXCL that refused the open (not only the flock). */
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (setuid(65534) != 0) _exit(2);
    const int fd = open(r.name, O_RDWR | O_NOCTTY | O_NONBLOCK);
    _exit(fd < 0 && errno == EBUSY ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("a non-root open of the held tty did not get EBUSY");
  eg_port_close(&p);
  s = open_in_child(r.link2, 65534, false);
  if (s.code != EG_OK) fail_msg("after close a non-root user still cannot open it: %s (%s)", eg_err_name(s.code), s.msg);
  rig_free(&r);
}

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

static void test_url_second_process(void **state) {
  (void)state;
  char dir[] = "/tmp/eg-locks-XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(setenv("ESPGANG_LOCK_DIR", dir, 1), 0);
  int port = 0;
  const int lfd = listen_any(&port);
  char url[64], other[80], key[32], file[PATH_MAX];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", port);
  snprintf(other, sizeof other, "RFC2217://127.0.0.1:%d?ign_set_control", port);
  snprintf(key, sizeof key, "127.0.0.1:%d", port);
  assert_true(eg__lock_file_for(key, file, sizeof file));

  eg_port p;
  assert_int_equal(eg_port_open(&p, url, 115200, NULL), EG_OK);
  struct pollfd pfd = {.fd = lfd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 5000), 1);
  const int conn = accept(lfd, NULL, NULL);
  assert_true(conn >= 0);
  /* The lock file exists and holds our PID. */
  FILE *fp = fopen(file, "r");
  assert_non_null(fp);
  long held = 0;
  assert_int_equal(fscanf(fp, "%ld", &held), 1);
  fclose(fp);
  assert_int_equal(held, getpid());

  child_says s = open_in_child(other, -1, false);
  expect_busy(&s, other, getpid());
  s = open_in_child(url, -1, false);
  expect_busy(&s, url, getpid());
  /* The children never connected (RFC 2217 would have sent its Telnet
   * negotiation at once). */
  assert_int_equal(poll(&pfd, 1, 100), 0);

  eg_port_close(&p);
  struct stat st;
  assert_int_equal(stat(file, &st), -1); /* gone with the port */
  assert_int_equal(errno, ENOENT);
  s = open_in_child(url, -1, false);
  if (s.code != EG_OK) fail_msg("after close: %s (%s)", eg_err_name(s.code), s.msg);
  close(conn);
  /* The child's connection, accepted and dropped. */
  if (poll(&pfd, 1, 2000) == 1) {
    const int c2 = accept(lfd, NULL, NULL);
    if (c2 >= 0) close(c2);
  }
  close(lfd);
  unsetenv("ESPGANG_LOCK_DIR");
  rmdir(dir);
}

static void test_locks_parser(void **state) {
  (void)state;
  static const char text[] =
      "1: POSIX  ADVISORY  READ 10866 fe:00:10953572 128 128\n"
      "2: FLOCK  ADVISORY  WRITE 4242 00:1a:3 0 EOF\n"
      "2: -> FLOCK  ADVISORY  WRITE 5151 00:1a:7 0 EOF\n"
      "3: OFDLCK ADVISORY  WRITE -1 00:1a:9 0 EOF\n"
      "4: FLOCK  ADVISORY  WRITE 777 fe:01:123456789 0 EOF\n"
      "5: FLOCK  ADVISORY  READ 888 00:1a:11 0 EOF";
  assert_int_equal(eg__locks_holder(text, 0x00, 0x1a, 3), 4242);
  assert_int_equal(eg__locks_holder(text, 0xfe, 0x01, 123456789ul), 777);
  assert_int_equal(eg__locks_holder(text, 0x00, 0x1a, 7), 0);  /* a waiter holds nothing */
  assert_int_equal(eg__locks_holder(text, 0x00, 0x1a, 9), 0);  /* OFD: no PID */
  assert_int_equal(eg__locks_holder(text, 0x00, 0x1a, 11), 0); /* shared, not ours to report */
  assert_int_equal(eg__locks_holder(text, 0xfe, 0x00, 10953572), 0);
  assert_int_equal(eg__locks_holder(text, 0x00, 0x1b, 3), 0);
  assert_int_equal(eg__locks_holder("", 0, 0, 0), 0);
}

static void test_lock_file_names(void **state) {
  (void)state;
  char out[PATH_MAX];
  assert_int_equal(setenv("ESPGANG_LOCK_DIR", "/x/locks", 1), 0);
  assert_true(eg__lock_file_for("127.0.0.1:4000", out, sizeof out));
  assert_string_equal(out, "/x/locks/espgang-127.0.0.1_4000.lock");
  assert_true(eg__lock_file_for("::1:4000", out, sizeof out));
  assert_string_equal(out, "/x/locks/espgang-__1_4000.lock");
  assert_true(eg__lock_file_for("ser_2net/x:7", out, sizeof out)); /* '_' and '/' escaped: names stay distinct */
  assert_string_equal(out, "/x/locks/espgang-ser%5F2net%2Fx_7.lock");
  char small[24];
  assert_false(eg__lock_file_for("127.0.0.1:4000", small, sizeof small));
  unsetenv("ESPGANG_LOCK_DIR");
  assert_true(eg__lock_file_for("h:1", out, sizeof out));
  if (access("/run/lock", W_OK | X_OK) == 0) assert_string_equal(out, "/run/lock/espgang-h_1.lock");
  else assert_string_equal(out, "/tmp/espgang-h_1.lock");
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_pty_second_process, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_two_symlinks_one_device, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_dead_holder_lets_go, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_tiocexcl_non_root, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_url_second_process, setup_fds, teardown_fds),
    cmocka_unit_test(test_locks_parser),
    cmocka_unit_test(test_lock_file_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
