/* test_port_errors.c - errors that say what happened (issue 9): a refused
 * TCP connection reads "connection refused" and an unplugged adapter "the
 * device disappeared (unplugged?)", wherever the event loop learns of them.
 * libuv reports POLLERR to a poll callback as status UV_EBADF, so a caller
 * that printed uv_strerror() said "bad file descriptor"; eg_port_diagnose
 * asks the fd instead. An unplug is made with TIOCVHANGUP on the pty slave,
 * which is what the kernel does to the tty of a USB adapter that goes away
 * (read/write EIO, poll POLLERR|POLLHUP).
 *
 * First the port alone in a loop, then the whole device state machine
 * (device.c's poll callback), in process against espsim.
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
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#include "device.h"
#include "image.h"
#include "port.h"
#include "prep.h"
#include "simdev.h"
#include "simlink.h"

/* A loopback port number that nothing listens on (bound, then closed). */
static int closed_port(void) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* TIOCVHANGUP needs CAP_SYS_ADMIN. */
static bool can_hang_up(void) {
  int m, s;
  if (openpty(&m, &s, NULL, NULL, NULL) != 0) return false;
  const bool ok = ioctl(s, TIOCVHANGUP) == 0;
  close(s);
  close(m);
  return ok;
}

/* ------------------------------------------------- the port in a loop */

typedef struct watch {
  eg_port *p;
  uv_poll_t poll;
  uv_timer_t guard;
  int status;       /* the poll callback's status (0 if it reported events) */
  int events;
  eg_err e;
  eg_fault f;
  bool done, timed_out;
} watch;

static void on_guard(uv_timer_t *t) {
  watch *w = t->data;
  w->timed_out = true;
  w->done = true;
  uv_poll_stop(&w->poll);
}

/* What a link layer does: an error status -> ask the port; writable while
 * connecting -> finish the connect; readable -> read. */
static void on_event(uv_poll_t *h, int status, int events) {
  watch *w = h->data;
  w->status = status;
  w->events = events;
  if (status < 0) w->e = eg_port_diagnose(w->p, &w->f);
  else if (w->p->connecting) w->e = eg_port_finish_connect(w->p, &w->f);
  else {
    uint8_t buf[64];
    size_t got = 0;
    w->e = eg_port_read(w->p, buf, sizeof buf, &got);
    if (w->e == EG_OK && got == 0) return; /* nothing yet */
    snprintf(w->f.msg, sizeof w->f.msg, "%s", w->p->errmsg);
  }
  if (w->e == EG_OK && w->p->connecting) return;
  w->done = true;
  uv_poll_stop(h);
  uv_timer_stop(&w->guard);
}

static void watch_run(watch *w, eg_port *p, int events) {
  memset(w, 0, sizeof *w);
  w->p = p;
  eg_fault_clear(&w->f);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_poll_init(&loop, &w->poll, p->fd), 0);
  w->poll.data = w;
  uv_timer_init(&loop, &w->guard);
  w->guard.data = w;
  uv_timer_start(&w->guard, on_guard, 5000, 0);
  uv_poll_start(&w->poll, events, on_event);
  while (!w->done) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&w->poll, NULL);
  uv_close((uv_handle_t *)&w->guard, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_false(w->timed_out);
}

static void test_refused_connect_in_a_loop(void **state) {
  (void)state;
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", closed_port());
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  eg_err e = eg_port_open(&p, url, 115200, &f);
  if (e == EG_OK && p.connecting) {
    watch w;
    watch_run(&w, &p, UV_WRITABLE);
    e = w.e;
    f = w.f;
    print_message("refused connect reported by the loop as status %d (%s)\n", w.status,
                  w.status < 0 ? uv_strerror(w.status) : "events");
  }
  if (e != EG_PORT_OPEN) fail_msg("%s: %s (%s), want PORT_OPEN", url, eg_err_name(e), f.msg);
  if (!strstr(f.msg, "connection refused") || !strstr(f.msg, url)) fail_msg("message: \"%s\"", f.msg);
  assert_null(strstr(f.msg, "bad file descriptor"));
  eg_port_close(&p);
}

static void test_diagnose_hung_up_tty(void **state) {
  (void)state;
  if (!can_hang_up()) skip();
  int master, slave;
  char name[64];
  assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
  eg_port p;
  assert_int_equal(eg_port_open(&p, name, 115200, NULL), EG_OK);
  /* The adapter goes away. */
  assert_int_equal(ioctl(slave, TIOCVHANGUP), 0);
  watch w;
  watch_run(&w, &p, UV_READABLE | UV_WRITABLE);
  print_message("hang-up reported by the loop as status %d (%s)\n", w.status, w.status < 0 ? uv_strerror(w.status) : "events");
  if (w.e != EG_PORT_GONE) fail_msg("hung up: %s (%s), want PORT_GONE", eg_err_name(w.e), w.f.msg);
  if (!strstr(w.f.msg, "the device disappeared (unplugged?)")) fail_msg("message: \"%s\"", w.f.msg);
  assert_null(strstr(w.f.msg, "bad file descriptor"));
  /* A write meets EIO, worded the same. */
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, (const uint8_t *)"x", 1, &done), EG_PORT_GONE);
  if (!strstr(p.errmsg, "write failed: the device disappeared (unplugged?) [EIO]")) fail_msg("write: \"%s\"", p.errmsg);
  eg_port_close(&p);
  close(slave);
  close(master);
}

/* An open port whose poll saw nothing wrong still gets an answer. */
static void test_diagnose_healthy(void **state) {
  (void)state;
  int master, slave;
  char name[64];
  assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
  eg_port p;
  assert_int_equal(eg_port_open(&p, name, 115200, NULL), EG_OK);
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_diagnose(&p, &f), EG_IO);
  assert_non_null(strstr(f.msg, name));
  eg_port_close(&p);
  assert_int_equal(eg_port_diagnose(&p, &f), EG_INVAL);
  close(slave);
  close(master);
}

/* ------------------------------------------- the device state machine */

typedef struct rig {
  uv_loop_t loop;
  int master, slave;
  char path[64];
  esim_dev *sim;
  esim_link *link;
  eg_dev dev;
  eg_dev_config cfg;
  bool done, hang_up_in_write;
  uint64_t hang_up_after_rx; /* > 0: unplug once the board heard this much (and went quiet) */
  uv_timer_t watcher;
  eg_err result;
  eg_image img;
  const eg_image *imgp[1];
  eg_imageset *set;
} rig;

static void rig_done(eg_dev *d, eg_err r) {
  rig *g = d->data;
  g->done = true;
  g->result = r;
}

/* Unplug in the middle of the image: at the first progress report. */
static void rig_progress(eg_dev *d, uint64_t done, uint64_t total) {
  rig *g = d->data;
  if (g->hang_up_in_write && done > 0 && done < total) {
    g->hang_up_in_write = false;
    assert_int_equal(ioctl(g->slave, TIOCVHANGUP), 0);
  }
}

/* Unplug while espgang waits for a reply (nothing to write): the loop
 * learns of it from the poll alone. */
static void rig_watch(uv_timer_t *t) {
  rig *g = t->data;
  esim_dev_stats st;
  esim_dev_get_stats(g->sim, &st);
  if (g->hang_up_after_rx && g->dev.stage == EG_STAGE_WRITE && st.rx_bytes >= g->hang_up_after_rx) {
    g->hang_up_after_rx = 0;
    assert_int_equal(ioctl(g->slave, TIOCVHANGUP), 0);
    uv_timer_stop(t);
  }
}

static void rig_link_closed(esim_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}
static void rig_dev_closed(eg_dev *d) { (void)d; }

static void rig_config(rig *g) {
  eg_timeouts_default(&g->cfg.timeouts);
  g->cfg.chip = eg_chip_get(EG_CHIP_ESP32);
  g->cfg.before = EG_BEFORE_NO_RESET;
  g->cfg.after = EG_AFTER_NO_RESET;
  g->cfg.connect_baud = 115200;
  g->cfg.baud = 115200;
  g->cfg.flash_size = "detect";
  g->cfg.connect_attempts = 1;
  g->cfg.timeouts.command_ms = 1000;
}

static eg_err rig_run(rig *g, const char *port, const eg_dev_op *ops, size_t nops) {
  static const eg_dev_callbacks cbs = {.on_done = rig_done, .on_progress = rig_progress};
  assert_int_equal(eg_dev_init(&g->dev, &g->loop, port, &g->cfg, ops, nops, &cbs, g), EG_OK);
  eg_dev_start(&g->dev);
  const uint64_t t0 = uv_now(&g->loop);
  while (!g->done) {
    uv_run(&g->loop, UV_RUN_ONCE);
    if (uv_now(&g->loop) - t0 > 60000) fail_msg("the device did not finish within 60 s of loop time");
  }
  return g->result;
}

static void rig_close(rig *g) {
  eg_dev_close(&g->dev, rig_dev_closed);
  if (g->link) esim_link_close(g->link, rig_link_closed);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&g->loop), 0);
}

/* espgang's device on a refused socket:// port: the unit's fault says
 * "connection refused", not "bad file descriptor". */
static void test_device_refused_connect(void **state) {
  (void)state;
  rig g;
  memset(&g, 0, sizeof g);
  assert_int_equal(uv_loop_init(&g.loop), 0);
  rig_config(&g);
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", closed_port());
  const eg_err e = rig_run(&g, url, NULL, 0);
  const eg_fault *f = &g.dev.rec.fault;
  if (e != EG_PORT_OPEN || !strstr(f->msg, "connection refused"))
    fail_msg("refused connect: %s, \"%s\"; want PORT_OPEN, \"connection refused\"", eg_err_name(e), f->msg);
  assert_null(strstr(f->msg, "bad file descriptor"));
  assert_int_equal(f->stage, EG_STAGE_OPEN);
  rig_close(&g);
}

static void rig_pty_sim(rig *g, const esim_faults *faults) {
  memset(g, 0, sizeof *g);
  assert_int_equal(uv_loop_init(&g->loop), 0);
  assert_int_equal(openpty(&g->master, &g->slave, g->path, NULL, NULL), 0);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  if (faults) o.faults = *faults;
  assert_int_equal(esim_dev_new(&g->sim, &o), EG_OK);
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.pty_slave_fd = g->slave;
  g->link = esim_link_start(&g->loop, g->sim, g->master, &lo);
  assert_non_null(g->link);
  rig_config(g);
  static uint8_t data[200000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 131 + (i >> 9));
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(&g->img, data, sizeof data, 0x10000, &f), EG_OK);
  g->imgp[0] = &g->img;
  g->set = eg_imageset_new(g->cfg.chip, g->imgp, 1, "keep", "keep", "keep", false);
  assert_non_null(g->set);
  g->cfg.images = g->set;
}

static void rig_pty_sim_free(rig *g) {
  rig_close(g);
  esim_dev_free(g->sim);
  close(g->slave);
  eg_imageset_free(g->set);
  eg_image_free(&g->img);
}

static void expect_unplugged(rig *g, eg_err e) {
  const eg_fault *df = &g->dev.rec.fault;
  print_message("unplugged: %s: %s\n", eg_err_name(e), df->msg);
  if (e != EG_PORT_GONE || !strstr(df->msg, "the device disappeared (unplugged?)"))
    fail_msg("unplugged: %s, \"%s\"; want PORT_GONE, \"the device disappeared (unplugged?)\"", eg_err_name(e), df->msg);
  assert_null(strstr(df->msg, "bad file descriptor"));
  assert_int_equal(df->stage, EG_STAGE_WRITE);
}

/* espgang's device flashing a board whose adapter is unplugged mid-write:
 * the next write meets EIO. */
static void test_device_unplug_mid_write(void **state) {
  (void)state;
  if (!can_hang_up()) skip();
  rig g;
  rig_pty_sim(&g, NULL);
  g.hang_up_in_write = true;
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = rig_run(&g, g.path, ops, 1);
  assert_false(g.hang_up_in_write); /* the unplug happened */
  expect_unplugged(&g, e);
  rig_pty_sim_free(&g);
}

/* The same while espgang waits for the board's reply: only the poll tells
 * (POLLERR, which libuv hands over as UV_EBADF). */
static void test_device_unplug_while_waiting(void **state) {
  (void)state;
  if (!can_hang_up()) skip();
  esim_faults faults;
  esim_faults_clear(&faults);
  faults.stall_after_bytes = 60000; /* mid-image: the board goes quiet, espgang waits */
  rig g;
  rig_pty_sim(&g, &faults);
  g.cfg.timeouts.command_ms = 5000;
  g.hang_up_after_rx = faults.stall_after_bytes;
  uv_timer_init(&g.loop, &g.watcher);
  g.watcher.data = &g;
  uv_timer_start(&g.watcher, rig_watch, 10, 10);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = rig_run(&g, g.path, ops, 1);
  assert_int_equal(g.hang_up_after_rx, 0); /* the unplug happened */
  uv_close((uv_handle_t *)&g.watcher, NULL);
  expect_unplugged(&g, e);
  rig_pty_sim_free(&g);
}

int main(void) {
  uv_loop_t warm; /* libuv's process-wide signal pipe, before any fd counting */
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_refused_connect_in_a_loop, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_diagnose_hung_up_tty, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_diagnose_healthy, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_device_refused_connect, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_device_unplug_mid_write, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_device_unplug_while_waiting, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
