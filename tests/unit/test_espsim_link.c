/* test_espsim_link.c - espsim's link layer (tools/espsim/simlink.c) in
 * process: a device on one end of a socketpair or a pty, the test as the
 * host on the other end, both on one libuv loop. No timing is asserted
 * except upper bounds that slowness cannot break (pacing may only hold
 * bytes back); wall-clock limits are there only to fail instead of hang. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "test_espsim_host.h"
#include "simlink.h"

typedef struct lt {
  uv_loop_t loop;
  esim_dev *dev;
  esim_link *link;
  int host_fd;
  eg_slip_dec dec;
  uint8_t decbuf[8192];
  int frames;
  uint8_t last[256];
  size_t last_len;
  int events[3]; /* per esim_link_event */
  bool closed;
  uint32_t host_baud;
  uint64_t eof;
} lt;

static void lt_cb(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  lt *t = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME) return;
  t->frames++;
  t->last_len = len < sizeof t->last ? len : sizeof t->last;
  memcpy(t->last, data, t->last_len);
}

static void on_event(esim_link *l, esim_link_event ev, void *ctx) {
  lt *t = ctx;
  (void)l;
  t->events[ev]++;
}

static void on_closed(esim_link *l, void *ctx) {
  lt *t = ctx;
  (void)l;
  t->closed = true;
}

static uint32_t host_baud_cb(void *ctx) { return ((lt *)ctx)->host_baud; }

/* Read whatever the device sent; returns bytes read, 0 at EOF sets t->eof. */
static void host_read(lt *t) {
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = read(t->host_fd, buf, sizeof buf);
    if (n > 0) {
      eg_slip_dec_push(&t->dec, buf, (size_t)n, lt_cb, t);
      continue;
    }
    if (n == 0) t->eof++;
    return;
  }
}

/* Spin the loop until cond or ~10 s of wall time (a failure, not a timing). */
#define PUMP_UNTIL(t, cond)                                       \
  do {                                                            \
    uint64_t deadline_ = uv_hrtime() + 10000000000ull;            \
    while (!(cond)) {                                             \
      uv_run(&(t)->loop, UV_RUN_NOWAIT);                          \
      host_read(t);                                               \
      if (uv_hrtime() > deadline_) fail_msg("timed out: %s", #cond); \
      usleep(200);                                                \
    }                                                             \
  } while (0)

static void lt_start(lt *t, const esim_dev_opts *o, bool fast, int dev_fd) {
  uv_loop_init(&t->loop);
  assert_int_equal(esim_dev_new(&t->dev, o), EG_OK);
  eg_slip_dec_init(&t->dec, t->decbuf, sizeof t->decbuf);
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = fast;
  lo.on_event = on_event;
  lo.ctx = t;
  lo.host_baud_cb = host_baud_cb;
  t->link = esim_link_start(&t->loop, t->dev, dev_fd, &lo);
  assert_non_null(t->link);
}

static void lt_socketpair(lt *t, const esim_dev_opts *o, bool fast) {
  memset(t, 0, sizeof *t);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  t->host_fd = sv[0];
  lt_start(t, o, fast, sv[1]);
}

static void lt_finish(lt *t) {
  esim_link_close(t->link, on_closed);
  PUMP_UNTIL(t, t->closed);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  esim_dev_free(t->dev);
  close(t->host_fd);
}

static void host_send(lt *t, const uint8_t *pkt, size_t n) {
  uint8_t raw[256];
  size_t rl = eg_slip_encode(raw, pkt, n);
  assert_int_equal(write(t->host_fd, raw, rl), (ssize_t)rl);
}

static void sync_and_read_reg(lt *t) {
  uint8_t pkt[64];
  const int f0 = t->frames;
  host_send(t, pkt, eg_req_sync(pkt));
  PUMP_UNTIL(t, t->frames >= f0 + 8);
  host_send(t, pkt, eg_req_read_reg(pkt, 0x40001000));
  PUMP_UNTIL(t, t->frames >= f0 + 9);
  eg_resp r;
  assert_int_equal(eg_resp_parse(t->last, t->last_len, 4, 0, &r), EG_OK);
  assert_int_equal(r.op, EG_OP_READ_REG);
  assert_int_equal(r.value, 0x00F01D83);
}

static void test_fast_socketpair(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  lt t;
  lt_socketpair(&t, &o, true);
  sync_and_read_reg(&t);
  uint64_t in, out;
  esim_link_counts(t.link, &in, &out);
  assert_int_equal(in, 46 + 14);
  assert_int_equal(out, 8 * 14 + 14);
  assert_true(esim_link_active(t.link));
  lt_finish(&t);
}

/* Paced at 115200 with the hardware timing: still correct, and never
 * faster than the wire allows. */
static void test_paced_socketpair(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  lt t;
  lt_socketpair(&t, &o, false);
  const uint64_t t0 = uv_hrtime();
  sync_and_read_reg(&t);
  const double elapsed_s = (double)(uv_hrtime() - t0) / 1e9;
  /* 60 bytes in, 126 out at 10 bits per byte: at least 16 ms on the wire */
  assert_true(elapsed_s >= (60.0 + 126.0) * 10 / 115200 * 0.9);
  lt_finish(&t);
}

/* Back-pressure: the link reads host bytes no faster than the line. */
static void test_back_pressure(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  lt t;
  lt_socketpair(&t, &o, false);
  int small = 4096;
  setsockopt(t.host_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  uint8_t junk[65536];
  memset(junk, 0x55, sizeof junk); /* noise outside any frame */
  size_t written = 0;
  bool blocked = false;
  const uint64_t t0 = uv_hrtime();
  while (uv_hrtime() - t0 < 200000000ull) { /* 200 ms */
    ssize_t n = write(t.host_fd, junk, sizeof junk);
    if (n > 0) written += (size_t)n;
    else if (n < 0 && errno == EAGAIN) blocked = true;
    uv_run(&t.loop, UV_RUN_NOWAIT);
    usleep(500);
  }
  const double elapsed = (double)(uv_hrtime() - t0) / 1e9;
  uint64_t in;
  esim_link_counts(t.link, &in, NULL);
  assert_true(blocked);
  /* upper bound: line rate over the elapsed time + one FIFO + a tick */
  const double bound = elapsed * 11520.0 + 128 + 2 * 11.52 + 16;
  if ((double)in > bound) fail_msg("read %llu host bytes in %.3f s, the wire allows %.0f", (unsigned long long)in, elapsed, bound);
  assert_true(in > 0);
  assert_true(written < 1000000);
  lt_finish(&t);
}

/* At high rates the link reads up to 8 ms of the line ahead (an adapter's
 * buffer), at least the 128-byte FIFO: one service takes that much of a
 * long write at once, and never more than the line allows since. */
static void test_read_ahead_at_high_rate(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  lt t;
  lt_socketpair(&t, &o, false);
  t.host_baud = 921600;
  uint8_t junk[4096];
  memset(junk, 0x55, sizeof junk); /* noise outside any frame */
  assert_int_equal(write(t.host_fd, junk, sizeof junk), (ssize_t)sizeof junk);
  const uint64_t t0 = uv_hrtime();
  uint64_t in = 0;
  for (int i = 0; i < 1000 && in == 0; i++) {
    uv_run(&t.loop, UV_RUN_NOWAIT);
    esim_link_counts(t.link, &in, NULL);
  }
  const double elapsed = (double)(uv_hrtime() - t0) / 1e9;
  const uint64_t ahead = 921600 / 10 * 8 / 1000; /* 737 bytes */
  if (in < ahead) fail_msg("first read took %llu bytes, expected the %llu-byte read-ahead", (unsigned long long)in,
                           (unsigned long long)ahead);
  const double bound = (double)ahead + elapsed * 92160.0 + 16;
  if ((double)in > bound) fail_msg("read %llu bytes in %.3f s, read-ahead and line allow %.0f", (unsigned long long)in, elapsed, bound);
  lt_finish(&t);
}

static void test_autobaud_via_host_rate(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  lt t;
  lt_socketpair(&t, &o, true);
  t.host_baud = 921600;
  sync_and_read_reg(&t);
  assert_int_equal(esim_dev_baud(t.dev), 921600);
  lt_finish(&t);
}

static void test_disconnect_fault(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.faults.disconnect_after_bytes = 10;
  lt t;
  lt_socketpair(&t, &o, true);
  uint8_t pkt[64];
  host_send(&t, pkt, eg_req_sync(pkt));
  PUMP_UNTIL(&t, t.events[ESIM_LINK_DISCONNECT] == 1);
  PUMP_UNTIL(&t, t.eof > 0); /* the host sees the cable go */
  assert_false(esim_link_active(t.link));
  assert_int_equal(t.frames, 0);
  esim_link_close(t.link, on_closed);
  PUMP_UNTIL(&t, t.closed);
  assert_int_equal(uv_loop_close(&t.loop), 0);
  esim_dev_free(t.dev);
  close(t.host_fd);
}

/* --pty-lines messages: 2 bytes, each 0 or 1. */
static void test_lines_decode(void **s) {
  (void)s;
  bool dtr = false, rts = false;
  const uint8_t a[2] = {1, 0}, b[2] = {0, 1}, bad1[2] = {2, 0}, bad2[3] = {1, 1, 0};
  assert_true(esim_lines_decode(a, 2, &dtr, &rts));
  assert_true(dtr);
  assert_false(rts);
  assert_true(esim_lines_decode(b, 2, &dtr, &rts));
  assert_false(dtr);
  assert_true(rts);
  assert_false(esim_lines_decode(bad1, 2, &dtr, &rts));
  assert_false(esim_lines_decode(bad2, 3, &dtr, &rts));
  assert_false(esim_lines_decode(a, 1, &dtr, &rts));
  assert_false(dtr); /* untouched by a refused message */
}

/* A USB port over the link: the host's rate means nothing (no garbling at
 * a "wrong" termios speed), and a reset of a USB-OTG chip takes the port
 * off the bus: REENUMERATE, the host sees EOF. */
static void test_usb_link(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.chip = ESIM_CHIP_ESP32S3;
  o.port = ESIM_PORT_USB_OTG;
  lt t;
  memset(&t, 0, sizeof t);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  t.host_fd = sv[0];
  uv_loop_init(&t.loop);
  assert_int_equal(esim_dev_new(&t.dev, &o), EG_OK);
  eg_slip_dec_init(&t.dec, t.decbuf, sizeof t.decbuf);
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.on_event = on_event;
  lo.ctx = &t;
  lo.host_baud_cb = host_baud_cb;
  lo.usb_rate = 10000000;
  t.link = esim_link_start(&t.loop, t.dev, sv[1], &lo);
  assert_non_null(t.link);
  t.host_baud = 9600; /* a UART would garble this */
  uint8_t pkt[64];
  host_send(&t, pkt, eg_req_sync(pkt));
  PUMP_UNTIL(&t, t.frames >= 8);
  esim_dev_set_lines(t.dev, uv_hrtime() / 1000, false, true); /* RTS alone: reset */
  esim_link_kick(t.link);
  esim_dev_set_lines(t.dev, uv_hrtime() / 1000 + 200, false, false);
  esim_link_kick(t.link);
  PUMP_UNTIL(&t, t.events[ESIM_LINK_REENUMERATE] == 1);
  PUMP_UNTIL(&t, t.eof > 0);
  assert_false(esim_link_active(t.link));
  esim_link_close(t.link, on_closed);
  PUMP_UNTIL(&t, t.closed);
  assert_int_equal(uv_loop_close(&t.loop), 0);
  esim_dev_free(t.dev);
  close(t.host_fd);
}

static void test_peer_gone(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  lt t;
  lt_socketpair(&t, &o, true);
  close(t.host_fd);
  t.host_fd = open("/dev/null", O_RDONLY | O_NONBLOCK);
  PUMP_UNTIL(&t, t.events[ESIM_LINK_PEER_GONE] == 1);
  lt_finish(&t);
}

/* A pty, as the espsim CLI uses it: the host opens the slave, sets its
 * speed; the link reads that speed from its own slave fd. */
static void test_pty(void **s) {
  (void)s;
  lt t;
  memset(&t, 0, sizeof t);
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  assert_true(m >= 0);
  assert_int_equal(grantpt(m), 0);
  assert_int_equal(unlockpt(m), 0);
  const char *name = ptsname(m);
  assert_non_null(name);
  int keep = open(name, O_RDWR | O_NOCTTY);
  assert_true(keep >= 0);
  t.host_fd = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(t.host_fd >= 0);
  struct termios tio;
  assert_int_equal(tcgetattr(t.host_fd, &tio), 0);
  cfmakeraw(&tio);
  cfsetispeed(&tio, B460800);
  cfsetospeed(&tio, B460800);
  assert_int_equal(tcsetattr(t.host_fd, TCSANOW, &tio), 0);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  uv_loop_init(&t.loop);
  assert_int_equal(esim_dev_new(&t.dev, &o), EG_OK);
  eg_slip_dec_init(&t.dec, t.decbuf, sizeof t.decbuf);
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.pty_slave_fd = keep;
  lo.on_event = on_event;
  lo.ctx = &t;
  t.link = esim_link_start(&t.loop, t.dev, m, &lo);
  assert_non_null(t.link);
  sync_and_read_reg(&t);
  /* the ROM autobauded to the host's termios speed */
  assert_int_equal(esim_dev_baud(t.dev), 460800);
  lt_finish(&t);
  close(keep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fast_socketpair),
      cmocka_unit_test(test_paced_socketpair),
      cmocka_unit_test(test_back_pressure),
      cmocka_unit_test(test_read_ahead_at_high_rate),
      cmocka_unit_test(test_autobaud_via_host_rate),
      cmocka_unit_test(test_disconnect_fault),
      cmocka_unit_test(test_peer_gone),
      cmocka_unit_test(test_lines_decode),
      cmocka_unit_test(test_usb_link),
      cmocka_unit_test(test_pty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
