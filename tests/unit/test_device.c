/* test_device.c - the per-port state machine against espsim's device model,
 * in process: espgang's device on an in-memory port (mem://, port_mem.h),
 * the simulator's link on the other end of it, one libuv loop for both; the
 * port's DTR/RTS drive the simulated board's reset circuit and its baud
 * rate is the host's UART rate the simulator compares with its own.
 * The simulator runs --fast (no delays) so these tests check behaviour, not
 * speed; every result is compared with the simulated chip's flash. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "device.h"
#include "port_mem.h"
#include "image.h"
#include "prep.h"
#include "simdev.h"
#include "simlink.h"
#include "timing.h"

typedef struct harness {
  uv_loop_t loop;
  char name[32];   /* mem://NAME */
  char path[128];
  uint32_t host_baud;
  bool no_lines;   /* the port has no DTR/RTS (like a pty) */
  esim_dev *sim;
  esim_link *link;
  esim_link *link2; /* a second link (a TCP client), when a test makes one */
  eg_dev dev;
  eg_dev_config cfg;
  eg_stub stub;
  const eg_stub *stubs[EG_CHIP__COUNT];
  bool done;
  eg_err result;
  int stages_seen[EG_STAGE__COUNT];
  /* images */
  eg_image img[3];
  const eg_image *imgp[3];
  size_t nimg;
  eg_imageset *set;
} harness;

static void on_done(eg_dev *d, eg_err r) {
  harness *h = d->data;
  h->done = true;
  h->result = r;
}

static void on_stage(eg_dev *d, eg_stage s) {
  harness *h = d->data;
  h->stages_seen[s]++;
}

static void on_log(eg_dev *d, const char *line) {
  (void)d;
  if (getenv("TEST_DEVICE_TRACE")) fprintf(stderr, "  dev: %s\n", line);
}

static const eg_dev_callbacks cbs = {.on_done = on_done, .on_stage = on_stage, .on_log = on_log};

/* A synthetic stub: the simulator does not run its code, it recognises the
 * stub by its load address (0x400BE000 legacy, 0x400A8000 esp-flasher-stub). */
static void make_stub(eg_stub *s, uint32_t text_start, uint32_t entry) {
  memset(s, 0, sizeof *s);
  s->text_len = 3540;
  s->text = malloc(s->text_len);
  for (size_t i = 0; i < s->text_len; i++) s->text[i] = (uint8_t)(i * 7 + 3);
  s->text_start = text_start;
  s->data_len = 156;
  s->data = malloc(s->data_len);
  memset(s->data, 0xA5, s->data_len);
  s->data_start = 0x3FFEBBAC;
  s->entry = entry;
}

/* The peer of the in-memory port: espsim's link on its end, the lines to
 * the board's reset circuit, the host's rate for the UART model. */
static uint32_t peer_host_baud(void *ctx) { return ((harness *)ctx)->host_baud; }
static void peer_link_closed(esim_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}
static bool peer_attach(void *ctx, int fd) {
  harness *h = ctx;
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  lo.host_baud_cb = peer_host_baud;
  lo.ctx = h;
  h->link = esim_link_start(&h->loop, h->sim, fd, &lo);
  return h->link != NULL;
}
static void peer_detach(void *ctx) {
  harness *h = ctx;
  if (h->link) esim_link_close(h->link, peer_link_closed);
  h->link = NULL;
}
static void peer_lines(void *ctx, bool dtr, bool rts) {
  harness *h = ctx;
  esim_dev_set_lines(h->sim, uv_hrtime() / 1000, dtr, rts);
}
static void peer_baud(void *ctx, uint32_t baud) { ((harness *)ctx)->host_baud = baud; }
static const eg_port_mem_peer peer = {.attach = peer_attach, .detach = peer_detach, .set_lines = peer_lines,
                                      .set_baud = peer_baud};
static const eg_port_mem_peer peer_no_lines = {.attach = peer_attach, .detach = peer_detach, .set_baud = peer_baud};

static void h_setup(harness *h, const esim_faults *faults) {
  static int n;
  memset(h, 0, sizeof *h);
  assert_int_equal(uv_loop_init(&h->loop), 0);
  snprintf(h->name, sizeof h->name, "dev%d", ++n);
  snprintf(h->path, sizeof h->path, "mem://%s", h->name);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  if (faults) o.faults = *faults;
  o.seed = 42;
  assert_int_equal(esim_dev_new(&h->sim, &o), EG_OK);
  assert_int_equal(eg_port_mem_register(h->name, &peer, h), EG_OK);
  eg_timeouts_default(&h->cfg.timeouts);
  h->cfg.chip = eg_chip_get(EG_CHIP_ESP32);
  h->cfg.before = EG_BEFORE_NO_RESET;
  h->cfg.after = EG_AFTER_NO_RESET_STUB;
  h->cfg.connect_baud = 115200;
  h->cfg.baud = 115200;
  h->cfg.flash_size = "detect";
  h->cfg.verify = true;
  h->cfg.connect_attempts = 3;
  h->cfg.trace = getenv("TEST_DEVICE_TRACE") != NULL;
  h->cfg.stubs = h->stubs;
}

static void use_stub(harness *h, bool legacy) {
  make_stub(&h->stub, legacy ? 0x400BE000 : 0x400A8000, legacy ? 0x400BE658 : 0x400A902C);
  h->stubs[EG_CHIP_ESP32] = &h->stub;
}

/* Deterministic pseudo-firmware: compressible but not trivially. */
static void add_image(harness *h, uint32_t offset, size_t len, uint32_t seed) {
  uint8_t *b = malloc(len);
  uint32_t x = seed | 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    b[i] = (i % 64 < 40) ? (uint8_t)(x & 0x0F) : (uint8_t)(i >> 4);
  }
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(&h->img[h->nimg], b, len, offset, &f), EG_OK);
  free(b);
  h->imgp[h->nimg] = &h->img[h->nimg];
  h->nimg++;
}

static void make_set(harness *h, bool compress) {
  h->set = eg_imageset_new(h->cfg.chip, h->imgp, h->nimg, "keep", "keep", "keep", compress);
  assert_non_null(h->set);
  h->cfg.images = h->set;
}

static void link_closed(esim_link *l, void *ctx) {
  (void)l;
  (void)ctx;
}
static void dev_closed(eg_dev *d) { (void)d; }

/* Run the device to completion (the test fails if it takes more than 60 s
 * of loop time, which would mean a hang: every wait has a timer). */
static eg_err h_run(harness *h, const eg_dev_op *ops, size_t nops) {
  assert_int_equal(eg_dev_init(&h->dev, &h->loop, h->path, &h->cfg, ops, nops, &cbs, h), EG_OK);
  eg_dev_start(&h->dev);
  const uint64_t t0 = uv_now(&h->loop);
  while (!h->done) {
    uv_run(&h->loop, UV_RUN_ONCE);
    assert_true(uv_now(&h->loop) - t0 < 60000);
  }
  return h->result;
}

static void h_teardown(harness *h) {
  eg_dev_close(&h->dev, dev_closed);
  if (h->link) esim_link_close(h->link, link_closed);
  if (h->link2) esim_link_close(h->link2, link_closed);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  eg_port_mem_unregister(h->name);
  esim_dev_free(h->sim);
  eg_imageset_free(h->set);
  for (size_t i = 0; i < h->nimg; i++) eg_image_free(&h->img[i]);
  free(h->stub.text);
  free(h->stub.data);
}

static void assert_flash_holds(harness *h, const eg_image *img) {
  size_t size = 0;
  const uint8_t *flash = esim_dev_flash(h->sim, &size);
  assert_true(img->offset + img->len <= size);
  if (memcmp(flash + img->offset, img->data, img->len) != 0) {
    size_t i = 0;
    while (flash[img->offset + i] == img->data[i]) i++;
    fail_msg("flash differs from the image at 0x%zx: flash %02x, image %02x", img->offset + i, flash[img->offset + i],
             img->data[i]);
  }
}

/* --------------------------------------------------------------- tests */

static void identity_rom(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  assert_int_equal(h_run(&h, NULL, 0), EG_OK);
  char mac[18];
  assert_string_equal(eg_unit_mac_str(&h.dev.rec, mac, sizeof mac), "24:0a:c4:00:00:01");
  assert_string_equal(h.dev.rec.chip, "ESP32");
  assert_string_equal(h.dev.rec.chip_desc, "ESP32-D0WDQ6-V3 (revision v3.0)");
  assert_int_equal(h.dev.rec.rev_major, 3);
  assert_int_equal(h.dev.rec.crystal_mhz, 40);
  assert_int_equal(h.dev.flash_id, 0x1640C8);
  assert_int_equal(h.dev.rec.flash_size, 4u << 20);
  assert_false(h.dev.rec.stub);
  assert_int_equal(h.dev.rec.result, EG_RESULT_PASS);
  assert_true(h.dev.rec.bytes_tx > 0 && h.dev.rec.bytes_rx > 0);
  assert_int_equal(h.stages_seen[EG_STAGE_STUB], 0);
  h_teardown(&h);
}

static void write_rom_compressed(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  add_image(&h, 0x10000, 50000, 1);
  add_image(&h, 0x1000, 6000, 2);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}, {.kind = EG_OPK_WRITE, .index = 1}};
  assert_int_equal(h_run(&h, ops, 2), EG_OK);
  assert_flash_holds(&h, &h.img[0]);
  assert_flash_holds(&h, &h.img[1]);
  assert_true(h.stages_seen[EG_STAGE_VERIFY] >= 1);
  h_teardown(&h);
}

static void write_rom_raw_unaligned(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  add_image(&h, 0x20800, 3000, 3); /* not 4 KiB aligned: the ROM copy gets a 0xFF prefix */
  make_set(&h, false);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(h_run(&h, ops, 1), EG_OK);
  assert_flash_holds(&h, &h.img[0]);
  h_teardown(&h);
}

static void write_stub(bool legacy, uint32_t baud) {
  harness h;
  h_setup(&h, NULL);
  use_stub(&h, legacy);
  h.cfg.baud = baud;
  add_image(&h, 0x10000, 200000, 4);
  add_image(&h, 0x8000, 3072, 5);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}, {.kind = EG_OPK_WRITE, .index = 1}};
  assert_int_equal(h_run(&h, ops, 2), EG_OK);
  assert_true(h.dev.rec.stub);
  assert_int_equal(h.dev.rec.baud, baud);
  assert_int_equal(esim_dev_mode(h.sim), ESIM_MODE_STUB);
  assert_int_equal(esim_dev_stub(h.sim), legacy ? ESIM_STUB_LEGACY : ESIM_STUB_NEW);
  /* The chip's real rate: the divider is an integer, so within 1 %. */
  const double dev_baud = esim_dev_baud(h.sim);
  if (dev_baud < baud * 0.99 || dev_baud > baud * 1.01) fail_msg("device UART at %.0f baud, asked %u", dev_baud, baud);
  assert_flash_holds(&h, &h.img[0]);
  assert_flash_holds(&h, &h.img[1]);
  h_teardown(&h);
}

static void write_legacy_stub_921600(void **state) {
  (void)state;
  write_stub(true, 921600);
}

static void write_new_stub_460800(void **state) {
  (void)state;
  write_stub(false, 460800);
}

static void read_back(bool stub) {
  harness h;
  h_setup(&h, NULL);
  if (stub) use_stub(&h, true);
  add_image(&h, 0x30000, 9000, 6);
  make_set(&h, true);
  const uint32_t size = 12288;
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}, {.kind = EG_OPK_READ, .addr = 0x30000, .size = size}};
  assert_int_equal(h_run(&h, ops, 2), EG_OK);
  uint32_t got = 0;
  const uint8_t *buf = eg_dev_read_data(&h.dev, 1, &got);
  assert_non_null(buf);
  assert_int_equal(got, size);
  assert_memory_equal(buf, h.img[0].data, h.img[0].len);
  for (size_t i = h.img[0].len; i < size; i++) assert_int_equal(buf[i], 0xFF);
  uint8_t md5[16];
  eg_md5(buf, size, md5);
  assert_memory_equal(md5, h.dev.read_md5, 16);
  h_teardown(&h);
}

static void read_stub(void **state) {
  (void)state;
  read_back(true);
}

static void read_rom_slow(void **state) {
  (void)state;
  read_back(false);
}

static void erase_region_and_all(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  use_stub(&h, true);
  add_image(&h, 0x40000, 20000, 7);
  add_image(&h, 0x80000, 20000, 8);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}, {.kind = EG_OPK_WRITE, .index = 1},
                           {.kind = EG_OPK_ERASE_REGION, .addr = 0x40000, .size = 0x5000}};
  assert_int_equal(h_run(&h, ops, 3), EG_OK);
  size_t size;
  const uint8_t *flash = esim_dev_flash(h.sim, &size);
  for (size_t i = 0x40000; i < 0x45000; i++)
    if (flash[i] != 0xFF) fail_msg("byte 0x%zx not erased", i);
  assert_flash_holds(&h, &h.img[1]);
  h_teardown(&h);

  h_setup(&h, NULL);
  use_stub(&h, true);
  const eg_dev_op all[] = {{.kind = EG_OPK_ERASE_ALL}};
  assert_int_equal(h_run(&h, all, 1), EG_OK);
  flash = esim_dev_flash(h.sim, &size);
  for (size_t i = 0; i < size; i++)
    if (flash[i] != 0xFF) fail_msg("byte 0x%zx not erased", i);
  h_teardown(&h);
}

static void erase_region_rom(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  add_image(&h, 0x50000, 8192, 9);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}, {.kind = EG_OPK_ERASE_REGION, .addr = 0x50000, .size = 0x1000}};
  assert_int_equal(h_run(&h, ops, 2), EG_OK);
  size_t size;
  const uint8_t *flash = esim_dev_flash(h.sim, &size);
  for (size_t i = 0x50000; i < 0x51000; i++)
    if (flash[i] != 0xFF) fail_msg("byte 0x%zx not erased by the ROM's FLASH_BEGIN", i);
  assert_memory_equal(flash + 0x51000, h.img[0].data + 0x1000, 0x1000);
  h_teardown(&h);
}

static void wrong_chip(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  h.cfg.chip = eg_chip_get(EG_CHIP_ESP32S3);
  assert_int_equal(h_run(&h, NULL, 0), EG_WRONG_CHIP);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_DETECT);
  assert_non_null(strstr(h.dev.rec.fault.msg, "expected ESP32-S3, found ESP32"));
  h_teardown(&h);
}

static void auto_chip(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  h.cfg.chip = NULL; /* GET_SECURITY_INFO (unsupported by the ESP32 ROM), then the magic value */
  assert_int_equal(h_run(&h, NULL, 0), EG_OK);
  assert_string_equal(h.dev.rec.chip, "ESP32");
  h_teardown(&h);
}

static void reset_impossible_on_pty(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  /* A port without DTR/RTS, as a pty. */
  eg_port_mem_unregister(h.name);
  assert_int_equal(eg_port_mem_register(h.name, &peer_no_lines, &h), EG_OK);
  h.cfg.before = EG_BEFORE_DEFAULT_RESET;
  assert_int_equal(h_run(&h, NULL, 0), EG_RESET_UNSUPPORTED);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_RESET);
  assert_non_null(strstr(h.dev.rec.fault.msg, "cannot drive DTR/RTS"));
  assert_int_equal(h.dev.rec.bytes_tx, 0); /* refused before touching the chip */
  h_teardown(&h);
}

/* A port gone from the system before the chip answered (a board pulled
 * while connecting, or a chip's USB port that never comes back) is waited
 * for once, timeouts.port_back_ms, then reopened a few times quickly: the
 * slot is free after one wait, not one per reopen. The port is a pty behind
 * a symlink; the board is "pulled" 50 ms in (symlink removed, master
 * closed) and never comes back. */
typedef struct pulled {
  int master;
  char link[128];
} pulled;

static void pull_board(uv_timer_t *t) {
  pulled *p = t->data;
  unlink(p->link);
  close(p->master);
  p->master = -1;
}

static void port_absent_waited_once(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  pulled p = {.master = -1};
  int slave = -1;
  char tty[64];
  assert_int_equal(openpty(&p.master, &slave, tty, NULL, NULL), 0);
  close(slave);
  snprintf(p.link, sizeof p.link, "/tmp/espgang-test-pulled-%d", (int)getpid());
  unlink(p.link);
  assert_int_equal(symlink(tty, p.link), 0);
  snprintf(h.path, sizeof h.path, "%s", p.link);
  h.cfg.timeouts.port_back_ms = 400;
  uv_timer_t t;
  uv_timer_init(&h.loop, &t);
  t.data = &p;
  uv_timer_start(&t, pull_board, 50, 0);
  const eg_err e = h_run(&h, NULL, 0);
  uv_close((uv_handle_t *)&t, NULL);
  if (e != EG_PORT_OPEN && e != EG_PORT_GONE) fail_msg("ended in %s: %s", eg_err_name(e), h.dev.rec.fault.msg);
  if (h.dev.reopens != 3) fail_msg("reopens %d, waited %u: %s", h.dev.reopens, h.dev.rec.port_wait_ms, h.dev.rec.fault.msg);
  /* One wait of 400 ms (polled every 100 ms), not four. */
  if (h.dev.rec.port_wait_ms < 400 || h.dev.rec.port_wait_ms >= 800)
    fail_msg("waited %u ms for the port", h.dev.rec.port_wait_ms);
  if (p.master >= 0) close(p.master);
  unlink(p.link);
  h_teardown(&h);
}

static void fault_md5_mismatch(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.md5_mismatch = UINT32_MAX;
  harness h;
  h_setup(&h, &f);
  use_stub(&h, true);
  add_image(&h, 0x10000, 30000, 10);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(h_run(&h, ops, 1), EG_MD5_MISMATCH);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_VERIFY);
  assert_int_equal(h.dev.rec.fault.opcode, EG_OP_SPI_FLASH_MD5);
  assert_non_null(strstr(h.dev.rec.fault.msg, "differs from image MD5"));
  h_teardown(&h);
}

static void fault_flash_write_error(bool stub) {
  esim_faults f;
  esim_faults_clear(&f);
  f.flash_write_error = true;
  f.flash_write_error_addr = 0x12000;
  harness h;
  h_setup(&h, &f);
  if (stub) use_stub(&h, true);
  add_image(&h, 0x10000, 40000, 11);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(h_run(&h, ops, 1), EG_DEVICE_STATUS);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_WRITE);
  assert_true(h.dev.rec.fault.nstatus >= 2);
  if (stub)
    assert_int_equal(h.dev.rec.fault.status[0], EG_STUB_ERR_FAILED_SPI_OP);
  else {
    assert_int_equal(h.dev.rec.fault.status[0], 0x01);
    assert_int_equal(h.dev.rec.fault.status[1], EG_ROM_ERR_FLASH_WRITE);
  }
  h_teardown(&h);
}

static void fault_write_error_rom(void **state) {
  (void)state;
  fault_flash_write_error(false);
}

static void fault_write_error_stub(void **state) {
  (void)state;
  fault_flash_write_error(true);
}

static void fault_not_in_download_mode(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.not_in_download_mode = true;
  harness h;
  h_setup(&h, &f);
  h.cfg.connect_attempts = 1;
  assert_int_equal(h_run(&h, NULL, 0), EG_NOT_DOWNLOAD_MODE);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_SYNC);
  assert_non_null(strstr(h.dev.rec.fault.msg, "not into download mode"));
  h_teardown(&h);
}

static void fault_stall(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.stall_after_bytes = 4000;
  harness h;
  h_setup(&h, &f);
  h.cfg.timeouts.command_ms = 300; /* keep the test short; the behaviour is the same */
  add_image(&h, 0x10000, 60000, 12);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(h_run(&h, ops, 1), EG_TIMEOUT);
  assert_true(h.dev.rec.fault.opcode >= 0);
  h_teardown(&h);
}

static void fault_disconnect(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.disconnect_at_op = EG_OP_FLASH_DEFL_DATA;
  f.disconnect_at_nth = 3;
  harness h;
  h_setup(&h, &f);
  add_image(&h, 0x10000, 60000, 13);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = h_run(&h, ops, 1);
  if (e != EG_PORT_GONE && e != EG_TIMEOUT) fail_msg("disconnect ended in %s: %s", eg_err_name(e), h.dev.rec.fault.msg);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_WRITE);
  h_teardown(&h);
}

static void fault_drops_are_retried(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.drop_rate_rx = 0.0002; /* a lost byte corrupts a block: checksum/timeouts, then a resend */
  harness h;
  h_setup(&h, &f);
  h.cfg.timeouts.command_ms = 500;
  add_image(&h, 0x10000, 30000, 14);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = h_run(&h, ops, 1);
  if (e != EG_OK) fail_msg("drops were not recovered: %s: %s", eg_err_name(e), h.dev.rec.fault.msg);
  assert_flash_holds(&h, &h.img[0]);
  h_teardown(&h);
}

static void abort_stops(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  add_image(&h, 0x10000, 100000, 15);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(eg_dev_init(&h.dev, &h.loop, h.path, &h.cfg, ops, 1, &cbs, &h), EG_OK);
  eg_dev_start(&h.dev);
  while (!h.done && h.dev.stage != EG_STAGE_WRITE) uv_run(&h.loop, UV_RUN_ONCE);
  eg_dev_abort(&h.dev);
  assert_true(h.done);
  assert_int_equal(h.result, EG_ABORTED);
  assert_int_equal(h.dev.rec.result, EG_RESULT_ABORTED);
  assert_int_equal(h.dev.rec.fault.stage, EG_STAGE_WRITE);
  h_teardown(&h);
}


/* A slow adapter (FTDI's 16 ms latency timer on every reply) only slows
 * things down. */
static void fault_latency_only_slows(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.delay_tx_us = 16000;
  harness h;
  h_setup(&h, &f);
  use_stub(&h, true);
  add_image(&h, 0x10000, 40000, 16);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const uint64_t t0 = uv_now(&h.loop);
  assert_int_equal(h_run(&h, ops, 1), EG_OK);
  assert_true(uv_now(&h.loop) - t0 >= 16 * 20); /* at least 20 replies, each 16 ms late */
  assert_flash_holds(&h, &h.img[0]);
  h_teardown(&h);
}

/* The ROM ignores the first SYNC after reset (autobaud settling): the retry
 * connects. */
static void fault_first_sync_ignored(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.ignore_first_sync = true;
  harness h;
  h_setup(&h, &f);
  assert_int_equal(h_run(&h, NULL, 0), EG_OK);
  assert_string_equal(h.dev.rec.chip, "ESP32");
  h_teardown(&h);
}

/* Erases ten times slower: still within esptool's size-scaled timeouts. */
static void fault_slow_erase_rom(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.slow_erase = 10;
  harness h;
  h_setup(&h, &f);
  add_image(&h, 0x10000, 30000, 17);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(h_run(&h, ops, 1), EG_OK);
  assert_flash_holds(&h, &h.img[0]);
  h_teardown(&h);
}

/* A board whose UART garbles above 460800: the baud change succeeds (the
 * reply comes at the old rate), then nothing is understood. The unit must
 * fail with a timeout in the stub stage, not hang. */
/* The adaptive link (issue 9.3), 1: a line that garbles every byte above
 * 460800. The ROM's rate change to 921600 works, the stub upload at that
 * rate does not: the unit resets the chip, uploads the stub at the connect
 * rate, lets the stub set 921600, finds that garbles too, asks the stub for
 * 460800 - which it cannot hear at 921600 - so resets again and has the
 * stub set 460800, where it writes. Every fallback is in the record. */
static void fault_baud_ceiling(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.baud_ceiling = 460800;
  harness h;
  h_setup(&h, &f);
  use_stub(&h, true);
  h.cfg.before = EG_BEFORE_DEFAULT_RESET; /* the ROM keeps a rate until it is reset */
  h.cfg.baud = 921600;
  h.cfg.timeouts.command_ms = 300;
  add_image(&h, 0x10000, 40000, 22);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = h_run(&h, ops, 1);
  if (e != EG_OK) fail_msg("%s: %s", eg_err_name(e), h.dev.rec.fault.msg);
  assert_flash_holds(&h, &h.img[0]);
  assert_true(h.dev.rec.stub);
  assert_int_equal(h.dev.rec.baud_requested, 921600);
  assert_int_equal(h.dev.rec.baud, 460800);
  assert_int_equal(h.dev.rec.fallbacks, 3);
  if (!strstr(h.dev.rec.fallback_log, "ROM CHANGE_BAUDRATE to 921600 failed") ||
      !strstr(h.dev.rec.fallback_log, "921600 -> 460800 at ") ||
      !strstr(h.dev.rec.fallback_log, "no answer at 921600: reset and reconnected at 115200 to reach 460800"))
    fail_msg("fallback log: %s", h.dev.rec.fallback_log);
  h_teardown(&h);
}

/* The adaptive link, 3: a marginal line (a bit flipped in one byte of 500
 * above 460800): short commands pass at 921600, 16 KiB blocks do not. The
 * stub hears the lower rate, and the write goes on from the block that
 * failed - without a reset (none is possible here). */
static void fault_noise_steps_down(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  char err[128];
  assert_int_equal(esim_fault_apply(&f, "noise_above=460800:0.002", err, sizeof err), EG_OK);
  harness h;
  h_setup(&h, &f);
  use_stub(&h, true);
  h.cfg.baud = 921600;
  h.cfg.timeouts.command_ms = 300;
  add_image(&h, 0x10000, 150000, 24);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = h_run(&h, ops, 1);
  if (e != EG_OK) fail_msg("%s: %s (fallbacks: %s)", eg_err_name(e), h.dev.rec.fault.msg, h.dev.rec.fallback_log);
  assert_flash_holds(&h, &h.img[0]);
  assert_int_equal(h.dev.rec.baud, 460800);
  if (!strstr(h.dev.rec.fallback_log, "921600 -> 460800 at ") || strstr(h.dev.rec.fallback_log, "reconnected"))
    fail_msg("fallback log: %s", h.dev.rec.fallback_log);
  h_teardown(&h);
}

/* The adaptive link, 2: a ROM that answers CHANGE_BAUDRATE and then runs
 * 10 % off (a mis-set divider): back to the connect rate, the stub sets the
 * rate, the unit finishes at the rate asked for. Without a reset the ROM
 * keeps its wrong rate: the unit then fails, saying so. */
static void fault_rom_baud_error(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  char err[128];
  assert_int_equal(esim_fault_apply(&f, "rom_baud_error=10", err, sizeof err), EG_OK);
  harness h;
  h_setup(&h, &f);
  use_stub(&h, false);
  h.cfg.before = EG_BEFORE_DEFAULT_RESET;
  h.cfg.baud = 921600;
  h.cfg.timeouts.command_ms = 300;
  add_image(&h, 0x10000, 30000, 23);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  eg_err e = h_run(&h, ops, 1);
  if (e != EG_OK) fail_msg("%s: %s", eg_err_name(e), h.dev.rec.fault.msg);
  assert_flash_holds(&h, &h.img[0]);
  assert_int_equal(h.dev.rec.baud, 921600);
  assert_int_equal(h.dev.rec.fallbacks, 1);
  assert_non_null(strstr(h.dev.rec.fallback_log, "ROM CHANGE_BAUDRATE to 921600 failed"));
  h_teardown(&h);

  h_setup(&h, &f);
  use_stub(&h, false);
  h.cfg.baud = 921600; /* no reset: before no-reset */
  h.cfg.timeouts.command_ms = 300;
  e = h_run(&h, NULL, 0);
  assert_int_not_equal(e, EG_OK);
  assert_int_equal(h.dev.rec.fallbacks, 1);
  h_teardown(&h);
}

/* Corrupted bytes: a bad checksum is refused and the block sent again. */
static void fault_corruption_recovered(void **state) {
  (void)state;
  esim_faults f;
  esim_faults_clear(&f);
  f.corrupt_rate_rx = 0.00002; /* about one block in three arrives damaged */
  harness h;
  h_setup(&h, &f);
  use_stub(&h, false);
  h.cfg.timeouts.command_ms = 500;
  add_image(&h, 0x10000, 120000, 18);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  const eg_err e = h_run(&h, ops, 1);
  if (e != EG_OK) fail_msg("corruption was not recovered: %s: %s", eg_err_name(e), h.dev.rec.fault.msg);
  assert_flash_holds(&h, &h.img[0]);
  h_teardown(&h);
}


/* A network serial server that drops the first connection (still busy
 * with the previous client) and serves the second: the device opens the
 * port again instead of failing the unit. */
typedef struct flaky_server {
  harness *h;
  int listen_fd;
  uv_poll_t poll;
  int accepted;
} flaky_server;

static void flaky_accept(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  flaky_server *fs = p->data;
  const int fd = accept4(fs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  if (++fs->accepted == 1) {
    struct linger lg = {1, 0}; /* reset, as a server refusing a second client does */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    return;
  }
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = true;
  fs->h->link2 = esim_link_start(&fs->h->loop, fs->h->sim, fd, &lo);
  assert_non_null(fs->h->link2);
}

static void reopen_after_dropped_connection(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  /* The device talks over TCP here: detach the pty link (one link per device). */
  esim_link_close(h.link, link_closed);
  h.link = NULL;
  flaky_server fs = {.h = &h};
  fs.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fs.listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(fs.listen_fd, 4), 0);
  socklen_t len = sizeof sa;
  getsockname(fs.listen_fd, (struct sockaddr *)&sa, &len);
  assert_int_equal(uv_poll_init(&h.loop, &fs.poll, fs.listen_fd), 0);
  fs.poll.data = &fs;
  uv_poll_start(&fs.poll, UV_READABLE, flaky_accept);
  snprintf(h.path, sizeof h.path, "socket://127.0.0.1:%d", ntohs(sa.sin_port));
  assert_int_equal(h_run(&h, NULL, 0), EG_OK);
  assert_int_equal(fs.accepted, 2);
  assert_int_equal(h.dev.reopens, 1);
  assert_string_equal(h.dev.rec.chip, "ESP32");
  uv_close((uv_handle_t *)&fs.poll, NULL);
  close(fs.listen_fd);
  h_teardown(&h);
}


/* --before no_reset_no_sync: talk at once, to whatever listens. After a
 * session that left the stub running, the next one finds the stub (2 status
 * bytes) and does not upload it again; on a fresh chip it finds the ROM. */
static void no_sync_finds_rom_or_stub(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  use_stub(&h, true);
  h.cfg.before = EG_BEFORE_NO_RESET_NO_SYNC;
  assert_int_equal(h_run(&h, NULL, 0), EG_OK);
  assert_string_equal(h.dev.rec.chip, "ESP32");
  assert_int_equal(h.stages_seen[EG_STAGE_STUB], 1); /* the ROM answered: stub uploaded */
  assert_true(h.dev.rec.stub);
  /* Second session: the stub is still running (after: no_reset_stub). */
  eg_dev_close(&h.dev, dev_closed);
  uv_run(&h.loop, UV_RUN_NOWAIT);
  h.done = false;
  memset(h.stages_seen, 0, sizeof h.stages_seen);
  add_image(&h, 0x10000, 20000, 19);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
  assert_int_equal(h_run(&h, ops, 1), EG_OK);
  assert_int_equal(h.stages_seen[EG_STAGE_STUB], 0); /* found running */
  assert_true(h.dev.rec.stub);
  assert_flash_holds(&h, &h.img[0]);
  h_teardown(&h);
}

/* on_gate: the caller decides, here after a pause longer than the command
 * timeout (the device must not time out while it waits for the caller). */
typedef struct gate_ctx {
  uv_timer_t t;
  eg_dev *d;
  eg_err answer;
  int calls;
} gate_ctx;
static gate_ctx the_gate;

static void gate_fire(uv_timer_t *t) {
  gate_ctx *g = t->data;
  eg_dev_gate(g->d, g->answer, g->answer == EG_OK ? NULL : "MAC 24:0a:c4:00:00:01 already passed");
}

static void on_gate(eg_dev *d) {
  the_gate.d = d;
  the_gate.calls++;
  assert_int_equal(d->state, EG_DS_GATE);
  assert_true(d->rec.has_mac); /* identity is known at the gate */
  uv_timer_start(&the_gate.t, gate_fire, 150, 0);
}

static void gate_decides(void **state) {
  (void)state;
  static const eg_dev_callbacks gcbs = {.on_done = on_done, .on_stage = on_stage, .on_log = on_log, .on_gate = on_gate};
  for (int round = 0; round < 2; round++) {
    harness h;
    h_setup(&h, NULL);
    h.cfg.timeouts.command_ms = 50; /* shorter than the gate's pause */
    add_image(&h, 0x10000, 9000, 21);
    make_set(&h, true);
    memset(&the_gate, 0, sizeof the_gate);
    the_gate.answer = round == 0 ? EG_SKIPPED : EG_OK;
    uv_timer_init(&h.loop, &the_gate.t);
    the_gate.t.data = &the_gate;
    const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}};
    assert_int_equal(eg_dev_init(&h.dev, &h.loop, h.path, &h.cfg, ops, 1, &gcbs, &h), EG_OK);
    eg_dev_start(&h.dev);
    while (!h.done) uv_run(&h.loop, UV_RUN_ONCE);
    assert_int_equal(the_gate.calls, 1);
    size_t size;
    const uint8_t *flash = esim_dev_flash(h.sim, &size);
    if (round == 0) {
      assert_int_equal(h.result, EG_SKIPPED);
      assert_int_equal(h.dev.rec.result, EG_RESULT_SKIPPED);
      assert_string_equal(h.dev.rec.fault.msg, "MAC 24:0a:c4:00:00:01 already passed");
      assert_int_equal(h.stages_seen[EG_STAGE_WRITE], 0);
      for (size_t i = 0x10000; i < 0x10000 + 9000; i++)
        if (flash[i] != 0xFF) fail_msg("skipped unit written at 0x%zx", i);
    } else {
      assert_int_equal(h.result, EG_OK);
      assert_flash_holds(&h, &h.img[0]);
    }
    uv_close((uv_handle_t *)&the_gate.t, NULL);
    h_teardown(&h);
  }
}

/* --skip-flashed: a region that already holds the image is hashed, not
 * written; the log says so per image. Timing records: one per exchange. */
static void skip_flashed(void **state) {
  (void)state;
  harness h;
  h_setup(&h, NULL);
  use_stub(&h, false);
  add_image(&h, 0x10000, 30000, 31);
  add_image(&h, 0x40000, 5000, 32);
  make_set(&h, true);
  const eg_dev_op ops[] = {{.kind = EG_OPK_WRITE, .index = 0}, {.kind = EG_OPK_WRITE, .index = 1}};
  assert_int_equal(h_run(&h, ops, 2), EG_OK);
  assert_int_equal(h.dev.rec.images[0].action, EG_IMAGE_VERIFIED);
  assert_int_equal(h.dev.rec.images[1].action, EG_IMAGE_VERIFIED);
  /* Change the second image's region behind the device's back. */
  size_t size;
  uint8_t *flash = (uint8_t *)esim_dev_flash(h.sim, &size);
  flash[0x40000 + 100] ^= 0x55;
  esim_dev_stats before, after;
  esim_dev_get_stats(h.sim, &before);
  eg_dev_close(&h.dev, dev_closed);
  uv_run(&h.loop, UV_RUN_NOWAIT);
  h.done = false;
  h.cfg.skip_flashed = true;
  eg_timing_log tl;
  memset(&tl, 0, sizeof tl);
  h.cfg.timing = &tl;
  assert_int_equal(h_run(&h, ops, 2), EG_OK);
  esim_dev_get_stats(h.sim, &after);
  assert_int_equal(h.dev.rec.images[0].action, EG_IMAGE_SKIPPED);
  assert_int_equal(h.dev.rec.images[0].offset, 0x10000);
  assert_int_equal(h.dev.rec.images[1].action, EG_IMAGE_VERIFIED); /* it differed: written again */
  assert_flash_holds(&h, &h.img[1]);
  /* Only the changed region was programmed: the first run wrote 35000
   * bytes, this one 5000 of them (7x fewer page programs). */
  const uint64_t first = before.page_programs, second = after.page_programs - before.page_programs;
  if (second * 5 > first) fail_msg("second run programmed %llu pages, the first %llu", (unsigned long long)second,
                                   (unsigned long long)first);
  /* Timing: every request has a record; replies have both times. */
  size_t md5 = 0, data = 0;
  for (size_t i = 0; i < tl.n; i++) {
    const eg_timing_rec *t = &tl.recs[i];
    if (t->op == EG_OP_SPI_FLASH_MD5) md5++;
    if (t->op == EG_OP_FLASH_DEFL_DATA) data++;
    if (t->t_reply_us) assert_true(t->t_reply_us >= t->t_sent_us);
  }
  assert_int_equal(md5, 3); /* two checks, one verify */
  assert_true(data >= 1);
  eg_timing_free(&tl);
  h_teardown(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(identity_rom),
    cmocka_unit_test(gate_decides),
    cmocka_unit_test(skip_flashed),
    cmocka_unit_test(write_rom_compressed),
    cmocka_unit_test(write_rom_raw_unaligned),
    cmocka_unit_test(write_legacy_stub_921600),
    cmocka_unit_test(write_new_stub_460800),
    cmocka_unit_test(read_stub),
    cmocka_unit_test(read_rom_slow),
    cmocka_unit_test(erase_region_and_all),
    cmocka_unit_test(erase_region_rom),
    cmocka_unit_test(wrong_chip),
    cmocka_unit_test(auto_chip),
    cmocka_unit_test(reset_impossible_on_pty),
    cmocka_unit_test(port_absent_waited_once),
    cmocka_unit_test(fault_md5_mismatch),
    cmocka_unit_test(fault_write_error_rom),
    cmocka_unit_test(fault_write_error_stub),
    cmocka_unit_test(fault_not_in_download_mode),
    cmocka_unit_test(fault_stall),
    cmocka_unit_test(fault_disconnect),
    cmocka_unit_test(fault_drops_are_retried),
    cmocka_unit_test(abort_stops),
    cmocka_unit_test(fault_latency_only_slows),
    cmocka_unit_test(fault_first_sync_ignored),
    cmocka_unit_test(fault_slow_erase_rom),
    cmocka_unit_test(fault_baud_ceiling),
    cmocka_unit_test(fault_rom_baud_error),
    cmocka_unit_test(fault_noise_steps_down),
    cmocka_unit_test(fault_corruption_recovered),
    cmocka_unit_test(reopen_after_dropped_connection),
    cmocka_unit_test(no_sync_finds_rom_or_stub),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
