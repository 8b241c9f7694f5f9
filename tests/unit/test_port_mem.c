/* test_port_mem.c - the in-memory backend (mem://NAME, port_mem.h): the
 * registry's rules, bytes both ways through the socketpair, the peer's
 * callbacks, one open per name; then espsim's device model behind it (its
 * link on the peer's end, DTR/RTS wired to its auto-reset circuit, the baud
 * to its host rate), driven by espgang's device state machine: esptool's
 * default_reset puts a board that runs its application into download mode
 * and hard_reset boots the application again, in process, with no pty and
 * no TCP listener.
 *
 * Every test checks that it leaves exactly as many open fds as it found.
 * poll() timeouts and loop-time limits are safety nets against a hang.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fdcheck.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "device.h"
#include "image.h"
#include "port.h"
#include "port_mem.h"
#include "prep.h"
#include "simdev.h"
#include "simlink.h"

/* ------------------------------------------------ a peer that is the test */

typedef struct rec_peer {
  int fd;                 /* the peer's end, while attached */
  int attaches, detaches;
  bool refuse;
  int nlines;
  bool dtr[32], rts[32];  /* every set_lines call, in order */
  int nbauds;
  uint32_t baud[8];
} rec_peer;

static bool rp_attach(void *ctx, int fd) {
  rec_peer *r = ctx;
  if (r->refuse) return false;
  r->fd = fd;
  r->attaches++;
  return true;
}
static void rp_detach(void *ctx) {
  rec_peer *r = ctx;
  r->detaches++;
}
static void rp_lines(void *ctx, bool dtr, bool rts) {
  rec_peer *r = ctx;
  if (r->nlines < 32) r->dtr[r->nlines] = dtr, r->rts[r->nlines] = rts;
  r->nlines++;
}
static void rp_baud(void *ctx, uint32_t baud) {
  rec_peer *r = ctx;
  if (r->nbauds < 8) r->baud[r->nbauds] = baud;
  r->nbauds++;
}

static const eg_port_mem_peer rec_full = {.attach = rp_attach, .detach = rp_detach, .set_lines = rp_lines, .set_baud = rp_baud};

static void wait_fd(int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events};
  int rc;
  do rc = poll(&pfd, 1, 5000);
  while (rc < 0 && errno == EINTR);
  if (rc <= 0) fail_msg("fd %d not ready for 0x%x within 5 s", fd, events);
}

static void test_registry_rules(void **state) {
  (void)state;
  rec_peer r = {.fd = -1};
  const eg_port_mem_peer no_attach = {.set_lines = rp_lines};
  assert_int_equal(eg_port_mem_register("", &rec_full, &r), EG_INVAL);
  assert_int_equal(eg_port_mem_register(NULL, &rec_full, &r), EG_INVAL);
  assert_int_equal(eg_port_mem_register("a", &no_attach, &r), EG_INVAL);
  assert_int_equal(eg_port_mem_register("a", NULL, &r), EG_INVAL);
  char longname[EG_PORT_MEM_NAME_MAX + 1];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(eg_port_mem_register(longname, &rec_full, &r), EG_INVAL);
  assert_int_equal(eg_port_mem_register("a", &rec_full, &r), EG_OK);
  assert_int_equal(eg_port_mem_register("a", &rec_full, &r), EG_INVAL); /* taken */

  /* The table holds EG_PORT_MEM_MAX names, then refuses. */
  char name[32];
  for (int i = 1; i < EG_PORT_MEM_MAX; i++) {
    snprintf(name, sizeof name, "fill%d", i);
    assert_int_equal(eg_port_mem_register(name, &rec_full, &r), EG_OK);
  }
  assert_int_equal(eg_port_mem_register("one-too-many", &rec_full, &r), EG_INVAL);
  for (int i = 1; i < EG_PORT_MEM_MAX; i++) {
    snprintf(name, sizeof name, "fill%d", i);
    eg_port_mem_unregister(name);
  }
  eg_port_mem_unregister("a");
  eg_port_mem_unregister("a");      /* twice: harmless */
  eg_port_mem_unregister(NULL);
  assert_int_equal(eg_port_mem_register("a", &rec_full, &r), EG_OK); /* free again */
  eg_port_mem_unregister("a");
}

static void test_check_and_caps(void **state) {
  (void)state;
  rec_peer r = {.fd = -1};
  eg_port_caps caps;
  char why[256];
  assert_int_equal(eg_port_check("mem://nobody", &caps, why, sizeof why), EG_PORT_OPEN);
  assert_non_null(strstr(why, "mem://nobody"));
  assert_non_null(strstr(why, "no in-memory port"));

  assert_int_equal(eg_port_mem_register("lines", &rec_full, &r), EG_OK);
  const eg_port_mem_peer bare = {.attach = rp_attach};
  assert_int_equal(eg_port_mem_register("bare", &bare, &r), EG_OK);
  memset(&caps, 0, sizeof caps);
  assert_int_equal(eg_port_check("mem://lines", &caps, why, sizeof why), EG_OK);
  assert_string_equal(caps.kind, "in-memory port");
  assert_true(caps.can_reset);
  assert_true(caps.has_baud);
  assert_false(caps.is_network);
  assert_int_equal(eg_port_check("MEM://bare", &caps, why, sizeof why), EG_OK); /* scheme in any case */
  assert_false(caps.can_reset);

  /* A port without lines refuses a reset the way a pty does. */
  eg_port p;
  assert_int_equal(eg_port_open(&p, "mem://bare", 115200, NULL), EG_OK);
  assert_false(p.can_reset);
  assert_string_equal(eg_port_kind_name(&p), "in-memory port");
  assert_int_equal(eg_port_set_lines(&p, 1, 0), EG_RESET_UNSUPPORTED);
  assert_non_null(strstr(p.errmsg, "no DTR/RTS"));
  eg_port_close(&p);
  close(r.fd);
  eg_port_mem_unregister("lines");
  eg_port_mem_unregister("bare");
}

static void test_bytes_lines_baud(void **state) {
  (void)state;
  rec_peer r = {.fd = -1};
  assert_int_equal(eg_port_mem_register("bench", &rec_full, &r), EG_OK);
  eg_port p;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&p, "mem://bench", 115200, &f), EG_OK);
  assert_int_equal(r.attaches, 1);
  assert_true(r.fd >= 0);
  assert_true(p.fd >= 0);
  assert_false(p.connecting);
  assert_true(p.can_reset);
  assert_int_equal(r.nbauds, 1); /* the open rate */
  assert_int_equal(r.baud[0], 115200);

  /* Host to peer and back, every byte value. */
  uint8_t all[256], got[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  size_t done = 0;
  assert_int_equal(eg_port_write(&p, all, sizeof all, &done), EG_OK);
  assert_int_equal(done, sizeof all);
  size_t n = 0;
  while (n < sizeof got) {
    wait_fd(r.fd, POLLIN);
    const ssize_t k = read(r.fd, got + n, sizeof got - n);
    assert_true(k > 0);
    n += (size_t)k;
  }
  assert_memory_equal(got, all, sizeof all);
  assert_int_equal(write(r.fd, "pong", 4), 4);
  wait_fd(p.fd, POLLIN);
  assert_int_equal(eg_port_read(&p, got, sizeof got, &done), EG_OK);
  assert_int_equal(done, 4);
  assert_memory_equal(got, "pong", 4);

  /* flush_input drops what is queued. */
  assert_int_equal(write(r.fd, "stale", 5), 5);
  wait_fd(p.fd, POLLIN);
  assert_int_equal(eg_port_flush_input(&p), EG_OK);
  assert_int_equal(eg_port_read(&p, got, sizeof got, &done), EG_OK);
  assert_int_equal(done, 0);

  /* Lines: the peer always hears both levels; -1 keeps one. */
  assert_int_equal(eg_port_set_lines(&p, 1, 0), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, -1, 1), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, 0, -1), EG_OK);
  assert_int_equal(eg_port_set_lines(&p, -1, -1), EG_OK); /* nothing to say: no call */
  assert_int_equal(eg_port_set_lines(&p, 2, 0), EG_INVAL);
  assert_int_equal(r.nlines, 3);
  assert_true(r.dtr[0] && !r.rts[0]);
  assert_true(r.dtr[1] && r.rts[1]);
  assert_true(!r.dtr[2] && r.rts[2]);
  assert_int_equal(p.dtr, 0);
  assert_int_equal(p.rts, 1);

  assert_int_equal(eg_port_set_baud(&p, 921600), EG_OK);
  assert_int_equal(p.baud, 921600);
  assert_int_equal(r.nbauds, 2);
  assert_int_equal(r.baud[1], 921600);

  /* One open per name. */
  eg_port q;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&q, "mem://bench", 115200, &f), EG_PORT_BUSY);
  assert_non_null(strstr(f.msg, "in use by PID"));
  eg_port_close(&q);

  /* Close: the peer is told and reads EOF. */
  eg_port_close(&p);
  assert_int_equal(p.fd, -1);
  assert_int_equal(r.detaches, 1);
  wait_fd(r.fd, POLLIN);
  assert_int_equal(read(r.fd, got, 1), 0);
  close(r.fd);

  /* Open again after close; a refusing peer fails the open cleanly. */
  assert_int_equal(eg_port_open(&p, "mem://bench", 9600, NULL), EG_OK);
  assert_int_equal(r.attaches, 2);
  eg_port_close(&p);
  close(r.fd);
  r.refuse = true;
  eg_fault_clear(&f);
  assert_int_equal(eg_port_open(&p, "mem://bench", 9600, &f), EG_PORT_OPEN);
  assert_non_null(strstr(f.msg, "refused"));
  assert_int_equal(p.fd, -1);
  eg_port_close(&p);
  r.refuse = false;
  assert_int_equal(eg_port_open(&p, "mem://bench", 9600, NULL), EG_OK); /* the refusal freed the name */
  eg_port_close(&p);
  close(r.fd);
  eg_port_mem_unregister("bench");
}

/* --------------------------------------------- espsim behind a mem:// port */

typedef struct sim_rig {
  uv_loop_t loop;
  esim_dev *sim;
  esim_link *link;
  uint32_t host_baud;
  int nlines;
  bool dtr[64], rts[64];
  /* espgang's side */
  eg_dev dev;
  eg_dev_config cfg;
  bool done;
  eg_err result;
  eg_image img;
  const eg_image *imgp[1];
  eg_imageset *set;
} sim_rig;

static uint32_t rig_host_baud(void *ctx) { return ((sim_rig *)ctx)->host_baud; }
static void rig_link_closed(esim_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}

static bool rig_attach(void *ctx, int fd) {
  sim_rig *g = ctx;
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.host_baud_cb = rig_host_baud;
  lo.ctx = g;
  g->link = esim_link_start(&g->loop, g->sim, fd, &lo);
  return g->link != NULL;
}
static void rig_detach(void *ctx) {
  sim_rig *g = ctx;
  if (g->link) esim_link_close(g->link, rig_link_closed);
  g->link = NULL;
}
/* The lines drive the board's auto-reset circuit, as espsim's RFC 2217
 * front end does with SET-CONTROL. */
static void rig_lines(void *ctx, bool dtr, bool rts) {
  sim_rig *g = ctx;
  if (g->nlines < 64) g->dtr[g->nlines] = dtr, g->rts[g->nlines] = rts;
  g->nlines++;
  esim_dev_set_lines(g->sim, uv_hrtime() / 1000, dtr, rts);
}
static void rig_baud(void *ctx, uint32_t baud) { ((sim_rig *)ctx)->host_baud = baud; }

static const eg_port_mem_peer rig_peer = {.attach = rig_attach, .detach = rig_detach, .set_lines = rig_lines, .set_baud = rig_baud};

static void rig_done(eg_dev *d, eg_err r) {
  sim_rig *g = d->data;
  g->done = true;
  g->result = r;
}
static void rig_dev_closed(eg_dev *d) { (void)d; }

static void rig_setup(sim_rig *g, const char *name) {
  memset(g, 0, sizeof *g);
  assert_int_equal(uv_loop_init(&g->loop), 0);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.seed = 7;
  assert_int_equal(esim_dev_new(&g->sim, &o), EG_OK);
  /* The board runs its application: only a reset into the bootloader
   * makes it listen. */
  esim_dev_reset(g->sim, uv_hrtime() / 1000, false);
  esim_dev_advance(g->sim, uv_hrtime() / 1000 + 10000);
  assert_int_equal(esim_dev_mode(g->sim), ESIM_MODE_APP);
  assert_int_equal(eg_port_mem_register(name, &rig_peer, g), EG_OK);
  eg_timeouts_default(&g->cfg.timeouts);
  g->cfg.chip = eg_chip_get(EG_CHIP_ESP32);
  g->cfg.before = EG_BEFORE_DEFAULT_RESET;
  g->cfg.after = EG_AFTER_HARD_RESET;
  g->cfg.connect_baud = 115200;
  g->cfg.baud = 460800;
  g->cfg.flash_size = "detect";
  g->cfg.verify = true;
  g->cfg.connect_attempts = 2;
  g->cfg.timeouts.command_ms = 500;
}

static eg_err rig_run(sim_rig *g, const char *url, const eg_dev_op *ops, size_t nops) {
  static const eg_dev_callbacks cbs = {.on_done = rig_done};
  assert_int_equal(eg_dev_init(&g->dev, &g->loop, url, &g->cfg, ops, nops, &cbs, g), EG_OK);
  eg_dev_start(&g->dev);
  const uint64_t t0 = uv_now(&g->loop);
  while (!g->done) {
    uv_run(&g->loop, UV_RUN_ONCE);
    if (uv_now(&g->loop) - t0 > 60000) fail_msg("the device did not finish within 60 s of loop time");
  }
  return g->result;
}

static void rig_teardown(sim_rig *g, const char *name) {
  eg_dev_close(&g->dev, rig_dev_closed);
  if (g->link) esim_link_close(g->link, rig_link_closed);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&g->loop), 0);
  eg_port_mem_unregister(name);
  esim_dev_free(g->sim);
  eg_imageset_free(g->set);
  eg_image_free(&g->img);
}

/* The reset sequences reach the circuit exactly as reset.c plans them
 * (esptool's UnixTightReset, then HardReset), the board enters download
 * mode, takes the image, and boots its application at the end. */
static void test_espsim_reset_and_flash(void **state) {
  (void)state;
  sim_rig g;
  rig_setup(&g, "board1");
  uint8_t data[20000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 31 + (i >> 7));
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(&g.img, data, sizeof data, 0x10000, &f), EG_OK);
  g.imgp[0] = &g.img;
  g.set = eg_imageset_new(g.cfg.chip, g.imgp, 1, "keep", "keep", "keep", true);
  assert_non_null(g.set);
  g.cfg.images = g.set;
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = rig_run(&g, "mem://board1", ops, 1);
  if (e != EG_OK) fail_msg("flash through mem:// failed: %s: %s", eg_err_name(e), g.dev.rec.fault.msg);

  /* UnixTightReset(0.05) from released lines, then HardReset (reset.c):
   * (0,0) (1,1) (0,1) (1,0) (0,0) (0,0) | (0,1) (0,0). */
  static const bool want_dtr[] = {0, 1, 0, 1, 0, 0, 0, 0};
  static const bool want_rts[] = {0, 1, 1, 0, 0, 0, 1, 0};
  if (g.nlines != 8) fail_msg("%d line changes reached the board, want 8", g.nlines);
  for (int i = 0; i < 8; i++)
    if (g.dtr[i] != want_dtr[i] || g.rts[i] != want_rts[i])
      fail_msg("line change %d: DTR %d RTS %d, want DTR %d RTS %d", i, g.dtr[i], g.rts[i], want_dtr[i], want_rts[i]);

  size_t size = 0;
  const uint8_t *flash = esim_dev_flash(g.sim, &size);
  assert_true(size >= 0x10000 + sizeof data);
  assert_memory_equal(flash + 0x10000, data, sizeof data);
  /* The hard reset's EN pulse rebooted the chip with GPIO0 high. */
  esim_dev_advance(g.sim, uv_hrtime() / 1000 + 10000);
  if (esim_dev_mode(g.sim) != ESIM_MODE_APP) fail_msg("after hard_reset the board is in %s, want app", esim_mode_name(esim_dev_mode(g.sim)));
  esim_dev_stats st;
  esim_dev_get_stats(g.sim, &st);
  assert_true(st.resets >= 3); /* ours (app boot) + the download reset + the hard reset */
  assert_int_equal(g.host_baud, 460800); /* the rate change reached the simulated UART */
  assert_int_equal(g.dev.rec.baud, 460800);
  rig_teardown(&g, "board1");
}

/* The other side of the proof: without the reset the same board, running
 * its application, never answers. */
static void test_espsim_needs_the_reset(void **state) {
  (void)state;
  sim_rig g;
  rig_setup(&g, "board2");
  g.cfg.before = EG_BEFORE_NO_RESET;
  g.cfg.after = EG_AFTER_NO_RESET;
  g.cfg.connect_attempts = 1;
  const eg_err e = rig_run(&g, "mem://board2", NULL, 0);
  if (e != EG_NO_SYNC && e != EG_NOT_DOWNLOAD_MODE) fail_msg("no reset: %s (%s)", eg_err_name(e), g.dev.rec.fault.msg);
  assert_int_equal(g.nlines, 0);
  assert_int_equal(esim_dev_mode(g.sim), ESIM_MODE_APP);
  rig_teardown(&g, "board2");
}

int main(void) {
  uv_loop_t warm; /* libuv's process-wide signal pipe, before any fd counting */
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_registry_rules, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_check_and_caps, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_bytes_lines_baud, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_espsim_reset_and_flash, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_espsim_needs_the_reset, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
