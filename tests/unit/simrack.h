/* simrack.h - simulated boards in process for the scheduler, probe and
 * station tests: each board is espsim's device model behind a pty (the
 * simulator's link on the master, espgang on the slave's path), all on the
 * test's loop, --fast. espgang opens a symlink to the pty in a folder of the
 * board's own, as espsim's DIR/slotNN: a board can be pulled (the pty and
 * the symlink vanish; a freed /dev/pts number may be taken at once by
 * another test's pty, the symlink never points there) and a new one seated
 * on a fresh pty.
 *
 * Header-only (static functions): include it once per test file.
 */
#ifndef EG_TEST_SIMRACK_H
#define EG_TEST_SIMRACK_H

#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "image.h"
#include "simdev.h"
#include "simlink.h"

typedef struct simboard {
  esim_dev *sim;
  esim_link *link;
  int master, slave;
  char pts[128];  /* the pty slave */
  char dir[64];   /* the board's folder */
  char path[96];  /* dir/tty -> pts: what espgang opens */
  bool seated;
} simboard;

static inline void simrack_link_closed(esim_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}

/* A board with this MAC (last byte) and faults (NULL: none) on a new pty. */
static inline void simboard_seat(simboard *b, uv_loop_t *loop, uint8_t mac_last, const esim_faults *faults) {
  memset(b, 0, sizeof *b);
  assert_int_equal(openpty(&b->master, &b->slave, b->pts, NULL, NULL), 0);
  snprintf(b->dir, sizeof b->dir, "/tmp/simrack-XXXXXX");
  assert_non_null(mkdtemp(b->dir));
  snprintf(b->path, sizeof b->path, "%s/tty", b->dir);
  assert_int_equal(symlink(b->pts, b->path), 0);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.mac[5] = mac_last;
  if (faults) o.faults = *faults;
  o.seed = 42 + mac_last;
  assert_int_equal(esim_dev_new(&b->sim, &o), EG_OK);
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.pty_slave_fd = b->slave;
  b->link = esim_link_start(loop, b->sim, b->master, &lo);
  assert_non_null(b->link);
  b->seated = true;
}

/* Pull the board: the simulator lets go of the pty, whose path vanishes;
 * the host side hangs up. The model is freed once the loop has closed the
 * link (simboard_free). */
static inline void simboard_pull(simboard *b) {
  if (!b->seated) return;
  b->seated = false;
  unlink(b->path);
  rmdir(b->dir);
  esim_link_close(b->link, simrack_link_closed); /* closes the master */
  b->link = NULL;
  close(b->slave);
  b->slave = -1;
}

/* After the loop has run the link's close. */
static inline void simboard_free(simboard *b) {
  simboard_pull(b);
  esim_dev_free(b->sim);
  b->sim = NULL;
}

/* Deterministic pseudo-firmware: compressible but not trivially. */
static inline void simrack_image(eg_image *img, uint32_t offset, size_t len, uint32_t seed) {
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  uint32_t x = seed | 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    buf[i] = (i % 64 < 40) ? (uint8_t)(x & 0x0F) : (uint8_t)(i >> 4);
  }
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(img, buf, len, offset, &f), EG_OK);
  free(buf);
}

static inline void assert_board_holds(const simboard *b, const eg_image *img) {
  size_t size = 0;
  const uint8_t *flash = esim_dev_flash(b->sim, &size);
  assert_true(img->offset + img->len <= size);
  if (memcmp(flash + img->offset, img->data, img->len) != 0) fail_msg("flash differs from the image at 0x%x", img->offset);
}

/* Run the loop until *flag or `ms` of loop time (then fail: a hang). */
static inline void simrack_run_until(uv_loop_t *loop, const bool *flag, uint64_t ms) {
  const uint64_t t0 = uv_now(loop);
  while (!*flag) {
    uv_run(loop, UV_RUN_ONCE);
    if (uv_now(loop) - t0 > ms) fail_msg("nothing happened for %llu ms", (unsigned long long)ms);
  }
}

#endif
