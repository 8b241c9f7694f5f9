/* test_port_serial.c - espgang's libserialport backend driven for real
 * (issue 9 item 5): libserialport's own sp_get_port_by_name, sp_open,
 * sp_set_baudrate and espgang's modem-line ioctls on its descriptor, against
 * a pty made to look like a USB adapter by tests/preload/fakeusb.c, whose
 * DTR/RTS changes arrive as datagrams on the slot's .lines socket (what
 * espsim --pty-lines reads). Without the double libserialport cannot open a
 * pty at all (test_port.c: test_serial_backend_refuses_pty says why).
 *
 * main() runs the tests in a child process with LD_PRELOAD set (and
 * EG_FAKEUSB_DIR, a scratch folder of slot links), then removes the folder.
 * The last test puts espsim's device model behind the slot, with the .lines
 * datagrams driving its auto-reset circuit, and runs espgang's device with
 * default_reset and hard_reset over the libserialport backend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fdcheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "device.h"
#include "image.h"
#include "port.h"
#include "port_backend.h"
#include "port_util.h"
#include "prep.h"
#include "simdev.h"
#include "simlink.h"

/* The kernel's struct termios2 (asm-generic/termbits.h), which cannot be
 * included beside <termios.h>: the actual rate of a BOTHER speed. */
struct k_termios2 {
  tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
  cc_t c_line;
  cc_t c_cc[19];
  speed_t c_ispeed, c_ospeed;
};
#define K_TCGETS2 _IOR('T', 0x2A, struct k_termios2)

/* ------------------------------------------------------------ a slot */

typedef struct slot {
  int master, slave;     /* the pty; slave kept for espsim's host rate */
  char pty[64];
  char link[PATH_MAX];   /* EG_FAKEUSB_DIR/slotNN */
  char lines[PATH_MAX];  /* EG_FAKEUSB_DIR/slotNN.lines */
  int lines_fd;          /* bound datagram socket, -1 when none */
} slot;

static void slot_make(slot *s, int n, bool with_lines) {
  memset(s, 0, sizeof *s);
  const char *dir = getenv("EG_FAKEUSB_DIR");
  assert_non_null(dir);
  assert_int_equal(openpty(&s->master, &s->slave, s->pty, NULL, NULL), 0);
  struct termios t;
  assert_int_equal(tcgetattr(s->master, &t), 0);
  cfmakeraw(&t);
  assert_int_equal(tcsetattr(s->master, TCSANOW, &t), 0);
  snprintf(s->link, sizeof s->link, "%s/slot%02d", dir, n);
  snprintf(s->lines, sizeof s->lines, "%s/slot%02d.lines", dir, n);
  assert_int_equal(symlink(s->pty, s->link), 0);
  s->lines_fd = -1;
  if (with_lines) {
    s->lines_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s->lines_fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    assert_true(strlen(s->lines) < sizeof a.sun_path);
    memcpy(a.sun_path, s->lines, strlen(s->lines) + 1);
    assert_int_equal(bind(s->lines_fd, (struct sockaddr *)&a, sizeof a), 0);
  }
}

static void slot_free(slot *s) {
  unlink(s->link);
  if (s->lines_fd >= 0) {
    close(s->lines_fd);
    unlink(s->lines);
  }
  close(s->slave);
  close(s->master);
}

/* Every {dtr, rts} datagram queued now, as "DR" digit pairs: "11 00 10". */
static void take_lines(slot *s, char *out, size_t cap) {
  out[0] = '\0';
  unsigned char m[8];
  ssize_t n;
  while ((n = recv(s->lines_fd, m, sizeof m, 0)) > 0) {
    if (n != 2 || m[0] > 1 || m[1] > 1) fail_msg("bad lines datagram: %zd bytes, %u %u", n, m[0], m[1]);
    snprintf(out + strlen(out), cap - strlen(out), "%s%d%d", out[0] ? " " : "", m[0], m[1]);
  }
}

/* The rate the slave runs at, as espsim reads it (a Bxxx code, or BOTHER
 * and the number: libserialport sets 921600 and up that way). */
static uint32_t slave_rate(const slot *s) {
  struct k_termios2 t2;
  assert_int_equal(ioctl(s->slave, K_TCGETS2, &t2), 0);
  return eg__termios_rate(t2.c_cflag & CBAUD, t2.c_ospeed);
}

/* ------------------------------------------------------------ tests */

static void test_libserialport_opens_the_fake(void **state) {
  (void)state;
  slot s;
  slot_make(&s, 1, true);
  eg_port_caps caps;
  char why[256];
  assert_int_equal(eg_port_check(s.link, &caps, why, sizeof why), EG_OK);
  assert_string_equal(caps.kind, "serial port");
  assert_true(caps.can_reset);

  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_port_open(&p, s.link, 115200, &f) != EG_OK) fail_msg("open %s: %s", s.link, f.msg);
  assert_ptr_equal(p.backend, &eg__port_serial);
  assert_string_equal(p.path, "/dev/ttyESPSIM01");
  assert_true(p.can_reset);
  /* libserialport's own sysfs lookup ran: it knows the adapter. */
  struct sp_port *sp = p.impl;
  assert_non_null(sp);
  int vid = 0, pid = 0;
  assert_int_equal(sp_get_port_usb_vid_pid(sp, &vid, &pid), SP_OK);
  assert_int_equal(vid, 0x10c4);
  assert_int_equal(pid, 0xea60);
  assert_string_equal(sp_get_port_usb_serial(sp), "ESPSIM-01");
  assert_int_equal(sp_get_port_transport(sp), SP_TRANSPORT_USB);

  /* Opening raised both lines; sp_open and our configuration re-applied
   * them: the board has only ever seen (1,1). */
  char got[256];
  take_lines(&s, got, sizeof got);
  assert_true(got[0] != '\0');
  for (const char *c = got; *c; c += c[2] ? 3 : 2)
    if (c[0] != '1' || c[1] != '1') fail_msg("lines at open: %s", got);

  /* Each change is one datagram with both levels; -1 keeps a line. */
  assert_int_equal(eg_port_set_lines(&p, 0, 0), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, 1, 0), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, -1, 1), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, 0, -1), EG_OK);
  take_lines(&s, got, sizeof got);
  assert_string_equal(got, "00 10 11 01");

  /* libserialport's baud code on the pty: a rate in its table (B460800),
   * then rates it sets through termios2 BOTHER (921600: its Linux table
   * ends at 460800; an odd 250000), each as the slave's termios says. */
  assert_int_equal(slave_rate(&s), 115200);
  static const uint32_t rates[] = {460800, 921600, 250000, 2000000};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
    if (eg_port_set_baud(&p, rates[i]) != EG_OK) fail_msg("set_baud %u: %s", rates[i], p.errmsg);
    assert_int_equal(slave_rate(&s), rates[i]);
    assert_int_equal(p.baud, rates[i]);
  }
  take_lines(&s, got, sizeof got); /* sp_set_baudrate re-applies the lines: same levels */
  for (const char *c = got; *c; c += c[2] ? 3 : 2)
    if (c[0] != '0' || c[1] != '1') fail_msg("lines during baud changes: %s", got);

  /* Bytes both ways. */
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"\xc0\x00\x08", 3, &done), EG_OK);
  assert_int_equal(done, 3);
  uint8_t b[8];
  struct pollfd pfd = {.fd = s.master, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 5000), 1);
  assert_int_equal(read(s.master, b, sizeof b), 3);
  assert_memory_equal(b, "\xc0\x00\x08", 3);
  assert_int_equal(write(s.master, "\xc0\x01", 2), 2);
  pfd.fd = p.fd;
  assert_int_equal(poll(&pfd, 1, 5000), 1);
  assert_int_equal(eg_port_read(&p, b, sizeof b, &done), EG_OK);
  assert_int_equal(done, 2);

  /* The same adapter twice: locked. */
  eg_port q;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&q, "/dev/ttyESPSIM01", 115200, &f), EG_PORT_BUSY);
  eg_port_close(&q);

  /* Close: HUPCL (libserialport sets it) drops both lines. */
  eg_port_close(&p);
  take_lines(&s, got, sizeof got);
  assert_string_equal(got, "00");
  slot_free(&s);
}

/* A line change that cannot reach the board fails loudly, never silently
 * (the double's own rule: a lost DTR/RTS change is the bug it exists to
 * catch). */
static void test_lost_line_change_is_an_error(void **state) {
  (void)state;
  slot s;
  slot_make(&s, 2, true);
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_port_open(&p, s.link, 115200, &f) != EG_OK) fail_msg("open: %s", f.msg);
  close(s.lines_fd); /* the board's end goes away */
  unlink(s.lines);
  s.lines_fd = -1;
  const eg_err e = eg_port_set_lines(&p, 1, 0);
  if (e == EG_OK) fail_msg("DTR/RTS went nowhere, yet set_lines succeeded");
  assert_non_null(strstr(p.errmsg, "TIOCMSET"));
  eg_port_close(&p);
  /* libserialport's sp_open re-applies the lines: with nowhere to send
   * them it fails, and so does the open. */
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&p, s.link, 115200, &f), EG_PORT_OPEN);
  assert_int_equal(p.fd, -1);
  eg_port_close(&p);
  slot_free(&s);
}

/* espgang's port list through libserialport's enumeration. */
static void test_port_list_sees_the_fake(void **state) {
  (void)state;
  slot s;
  slot_make(&s, 3, true);
  eg_port_info *list = NULL;
  size_t n = 0;
  assert_int_equal(eg_port_list(&list, &n), EG_OK);
  const eg_port_info *in = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i].name, "/dev/ttyESPSIM03") == 0) in = &list[i];
  if (!in) fail_msg("/dev/ttyESPSIM03 not among the %zu ports listed", n);
  assert_true(in->usb);
  assert_string_equal(in->transport, "usb");
  assert_int_equal(in->vid, 0x10c4);
  assert_int_equal(in->pid, 0xea60);
  assert_int_equal(in->bus, 1);
  assert_int_equal(in->address, 4);
  assert_string_equal(in->serial, "ESPSIM-03");
  assert_string_equal(in->manufacturer, "Silicon Labs");
  assert_string_equal(in->product, "CP2102 USB to UART Bridge Controller");
  assert_string_equal(in->location, "1-1.3");
  eg_port_list_free(list, n);
  slot_free(&s);
}

/* ------------------------------- espsim's board behind the fake adapter */

typedef struct rig {
  uv_loop_t loop;
  slot s;
  esim_dev *sim;
  esim_link *link;
  uv_poll_t lines_poll;
  char seen[512];        /* datagrams, consecutive repeats folded */
  eg_dev dev;
  eg_dev_config cfg;
  bool done;
  eg_err result;
  eg_image img;
  const eg_image *imgp[1];
  eg_imageset *set;
} rig;

/* What espsim --pty-lines does with a datagram: the circuit moves. */
static void on_lines(uv_poll_t *h, int status, int events) {
  rig *g = h->data;
  (void)events;
  if (status < 0) return;
  unsigned char m[2];
  while (recv(g->s.lines_fd, m, sizeof m, 0) == 2) {
    esim_dev_set_lines(g->sim, uv_hrtime() / 1000, m[0], m[1]);
    const char pair[3] = {m[0] ? '1' : '0', m[1] ? '1' : '0', '\0'};
    const size_t l = strlen(g->seen);
    if (l < 2 || strcmp(g->seen + l - 2, pair) != 0)
      snprintf(g->seen + l, sizeof g->seen - l, "%s%s", l ? " " : "", pair);
  }
}

static void rig_done(eg_dev *d, eg_err r) {
  rig *g = d->data;
  g->done = true;
  g->result = r;
}
static void rig_link_closed(esim_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}
static void rig_dev_closed(eg_dev *d) { (void)d; }

static void test_espsim_resets_through_libserialport(void **state) {
  (void)state;
  rig g;
  memset(&g, 0, sizeof g);
  assert_int_equal(uv_loop_init(&g.loop), 0);
  slot_make(&g.s, 4, true);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  assert_int_equal(esim_dev_new(&g.sim, &o), EG_OK);
  /* The board runs its application until something resets it. */
  esim_dev_reset(g.sim, uv_hrtime() / 1000, false);
  esim_dev_advance(g.sim, uv_hrtime() / 1000 + 10000);
  assert_int_equal(esim_dev_mode(g.sim), ESIM_MODE_APP);
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.keep_fd = true;
  lo.pty_slave_fd = g.s.slave; /* the host's rate: what libserialport set */
  g.link = esim_link_start(&g.loop, g.sim, g.s.master, &lo);
  assert_non_null(g.link);
  assert_int_equal(uv_poll_init(&g.loop, &g.lines_poll, g.s.lines_fd), 0);
  g.lines_poll.data = &g;
  uv_poll_start(&g.lines_poll, UV_READABLE, on_lines);

  uint8_t data[30000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 73 + (i >> 8));
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(&g.img, data, sizeof data, 0x10000, &f), EG_OK);
  g.imgp[0] = &g.img;
  g.set = eg_imageset_new(eg_chip_get(EG_CHIP_ESP32), g.imgp, 1, "keep", "keep", "keep", true);
  assert_non_null(g.set);
  eg_timeouts_default(&g.cfg.timeouts);
  g.cfg.chip = eg_chip_get(EG_CHIP_ESP32);
  g.cfg.before = EG_BEFORE_DEFAULT_RESET;
  g.cfg.after = EG_AFTER_HARD_RESET;
  g.cfg.connect_baud = 115200;
  g.cfg.baud = 460800;
  g.cfg.flash_size = "detect";
  g.cfg.verify = true;
  g.cfg.connect_attempts = 2;
  g.cfg.images = g.set;
  g.cfg.timeouts.command_ms = 1000;

  static const eg_dev_callbacks cbs = {.on_done = rig_done};
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(eg_dev_init(&g.dev, &g.loop, g.s.link, &g.cfg, ops, 1, &cbs, &g), EG_OK);
  eg_dev_start(&g.dev);
  const uint64_t t0 = uv_now(&g.loop);
  while (!g.done) {
    uv_run(&g.loop, UV_RUN_ONCE);
    if (uv_now(&g.loop) - t0 > 60000) fail_msg("the device did not finish within 60 s of loop time");
  }
  if (g.result != EG_OK) fail_msg("flash over libserialport: %s: %s", eg_err_name(g.result), g.dev.rec.fault.msg);
  /* The close's HUPCL datagram, if the loop has not read it yet. */
  for (int i = 0; i < 100 && strlen(g.seen) < 2; i++) uv_run(&g.loop, UV_RUN_NOWAIT);
  on_lines(&g.lines_poll, 0, UV_READABLE);

  /* Open (1,1); UnixTightReset: (0,0) (1,1) (0,1) (1,0) (0,0); HardReset:
   * (0,1) (0,0); repeats folded (libserialport re-applies the levels on
   * every baud change, the close drops them again). */
  assert_string_equal(g.seen, "11 00 11 01 10 00 01 00");
  size_t size = 0;
  const uint8_t *flash = esim_dev_flash(g.sim, &size);
  assert_memory_equal(flash + 0x10000, data, sizeof data);
  esim_dev_advance(g.sim, uv_hrtime() / 1000 + 10000);
  if (esim_dev_mode(g.sim) != ESIM_MODE_APP)
    fail_msg("after hard_reset the board is in %s, want app", esim_mode_name(esim_dev_mode(g.sim)));
  assert_int_equal(g.dev.rec.baud, 460800);
  assert_ptr_equal(g.dev.link.port.backend, &eg__port_serial);

  eg_dev_close(&g.dev, rig_dev_closed);
  esim_link_close(g.link, rig_link_closed);
  uv_close((uv_handle_t *)&g.lines_poll, NULL);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&g.loop), 0);
  esim_dev_free(g.sim);
  eg_imageset_free(g.set);
  eg_image_free(&g.img);
  slot_free(&g.s);
}

/* ------------------------------------------------------------ main */

static int run_all(void) {
  uv_loop_t warm; /* libuv's process-wide signal pipe, before any fd counting */
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_libserialport_opens_the_fake, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_lost_line_change_is_an_error, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_port_list_sees_the_fake, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_espsim_resets_through_libserialport, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv) {
  (void)argc;
  if (getenv("EG_FAKEUSB_DIR")) return run_all(); /* the child, under the double */
  char dir[] = "/tmp/eg-fakeusb-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  const pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    char preload[PATH_MAX * 2], asan[512];
    const char *old = getenv("LD_PRELOAD");
    snprintf(preload, sizeof preload, "%s%s%s", EG_FAKEUSB_LIB, old ? ":" : "", old ? old : "");
    /* Under ASan the double comes before its runtime in the library list. */
    const char *aold = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", aold ? aold : "", aold ? ":" : "");
    setenv("LD_PRELOAD", preload, 1);
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("EG_FAKEUSB_DIR", dir, 1);
    execv("/proc/self/exe", argv);
    perror("exec");
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  DIR *d = opendir(dir); /* whatever a failed test left behind */
  if (d) {
    const struct dirent *de;
    char path[PATH_MAX];
    while ((de = readdir(d)))
      if (de->d_name[0] != '.' && snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < (int)sizeof path) unlink(path);
    closedir(d);
  }
  rmdir(dir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
