/* test_espsim_faults.c - espsim's fault injection, one fault at a time,
 * plus the fault and timing spec parsers (tools/espsim/faults.c). */
#include "test_espsim_host.h"

#include "chips.h"

static void opts_with(esim_dev_opts *o, const char *spec) {
  esim_dev_opts_default(o);
  esim_timing_fast(&o->timing);
  char err[128];
  if (spec) assert_int_equal(esim_fault_apply(&o->faults, spec, err, sizeof err), EG_OK);
}

static size_t count_syncs(th *h, int n) {
  uint8_t pkt[64];
  size_t before = h->nf;
  for (int i = 0; i < n; i++) th_send_pkt(h, pkt, eg_req_sync(pkt));
  return h->nf - before;
}

static void test_spec_parsing(void **s) {
  (void)s;
  esim_faults f;
  char err[128];
  esim_faults_clear(&f);
  assert_int_equal(esim_fault_apply(&f, "drop_rate=0.25", err, sizeof err), EG_OK);
  assert_true(f.drop_rate_rx == 0.25 && f.drop_rate_tx == 0.25);
  assert_int_equal(esim_fault_apply(&f, "corrupt_rate_tx=0.5", err, sizeof err), EG_OK);
  assert_true(f.corrupt_rate_tx == 0.5 && f.corrupt_rate_rx == 0);
  assert_int_equal(esim_fault_apply(&f, "delay_rx=2ms", err, sizeof err), EG_OK);
  assert_int_equal(f.delay_rx_us, 2000);
  assert_int_equal(esim_fault_apply(&f, "delay=150us", err, sizeof err), EG_OK);
  assert_int_equal(f.delay_tx_us, 150);
  assert_int_equal(esim_fault_apply(&f, "disconnect_at=flash_defl_data:3", err, sizeof err), EG_OK);
  assert_int_equal(f.disconnect_at_op, 0x11);
  assert_int_equal(f.disconnect_at_nth, 3);
  assert_int_equal(esim_fault_apply(&f, "disconnect_at=0x0a", err, sizeof err), EG_OK);
  assert_int_equal(f.disconnect_at_op, 0x0A);
  assert_int_equal(f.disconnect_at_nth, 1);
  assert_int_equal(esim_fault_apply(&f, "flash_write_error_at=0x12345", err, sizeof err), EG_OK);
  assert_true(f.flash_write_error);
  assert_int_equal(f.flash_write_error_addr, 0x12345);
  assert_int_equal(esim_fault_apply(&f, "md5_mismatch", err, sizeof err), EG_OK);
  assert_int_equal(f.md5_mismatch, UINT32_MAX);
  assert_int_equal(esim_fault_apply(&f, "md5_mismatch=2", err, sizeof err), EG_OK);
  assert_int_equal(f.md5_mismatch, 2);
  assert_int_equal(esim_fault_apply(&f, "not_in_download_mode", err, sizeof err), EG_OK);
  assert_true(f.not_in_download_mode);
  assert_int_equal(esim_fault_apply(&f, "slow_erase=3.5", err, sizeof err), EG_OK);
  assert_true(f.slow_erase == 3.5);
  assert_int_equal(esim_fault_apply(&f, "baud_ceiling=460800", err, sizeof err), EG_OK);
  assert_int_equal(f.baud_ceiling, 460800);
  assert_int_equal(esim_fault_apply(&f, "rom_baud_error=-8%", err, sizeof err), EG_OK);
  assert_true(f.rom_baud_error > -0.0801 && f.rom_baud_error < -0.0799);
  assert_int_equal(esim_fault_apply(&f, "stall_after_bytes=20000", err, sizeof err), EG_OK);
  assert_int_equal(f.stall_after_bytes, 20000);
  assert_int_equal(esim_fault_apply(&f, "disconnect_after_bytes=0800", err, sizeof err), EG_OK);
  assert_int_equal(f.disconnect_after_bytes, 800); /* decimal, not octal */
  /* malformed */
  static const char *const bad[] = {"drop_rate=2",       "drop_rate=x",         "drop_rate",
                                    "delay=5h",          "disconnect_at=NOPE",  "disconnect_at=SYNC:0",
                                    "stall_after_bytes=0", "slow_erase=-1",     "baud_ceiling=0",
                                    "rom_baud_error=0",  "rom_baud_error=60",   "rom_baud_error=x",
                                    "no_such_fault",     "=1",                  "flash_write_error_at=zz"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    if (esim_fault_apply(&f, bad[i], err, sizeof err) != EG_INVAL) fail_msg("'%s' was accepted", bad[i]);
    assert_true(err[0] != 0);
  }
  assert_int_equal(esim_op_by_name("READ_FLASH"), 0xD2);
  assert_int_equal(esim_op_by_name("sync"), 0x08);
  assert_int_equal(esim_op_by_name("0x300"), -1);
  assert_int_equal(esim_op_by_name("frobnicate"), -1);
}

static void test_timing_apply(void **s) {
  (void)s;
  esim_timing t;
  esim_timing_default(&t);
  char err[128];
  assert_int_equal(esim_timing_apply(&t, "sector_erase_ms", "60", err, sizeof err), EG_OK);
  assert_int_equal(t.sector_erase_us, 60000);
  assert_int_equal(esim_timing_apply(&t, "chip_erase_base_s", "2.5", err, sizeof err), EG_OK);
  assert_int_equal(t.chip_erase_base_us, 2500000);
  assert_int_equal(esim_timing_apply(&t, "md5_ns_per_byte", "100", err, sizeof err), EG_OK);
  assert_int_equal(t.md5_ns_per_byte, 100);
  assert_int_equal(esim_timing_apply(&t, "page_program_us", "180", err, sizeof err), EG_OK);
  assert_int_equal(t.page_program_us, 180);
  assert_int_equal(esim_timing_apply(&t, "md5_ns_per_byte_ms", "1", err, sizeof err), EG_INVAL);
  assert_int_equal(esim_timing_apply(&t, "warp_us", "1", err, sizeof err), EG_INVAL);
  assert_int_equal(esim_timing_apply(&t, "page_program_us", "-3", err, sizeof err), EG_INVAL);
  assert_int_equal(esim_timing_apply(&t, "page_program_us", "fast", err, sizeof err), EG_INVAL);
}

static void test_drop_rx_all_and_tx_all(void **s) {
  (void)s;
  esim_dev_opts o;
  th h;
  opts_with(&o, "drop_rate_rx=1");
  th_init(&h, &o);
  assert_int_equal(count_syncs(&h, 3), 0);
  esim_dev_stats st;
  esim_dev_get_stats(h.dev, &st);
  assert_int_equal(st.rx_dropped, 3 * 46);
  th_free(&h);
  opts_with(&o, "drop_rate_tx=1");
  th_init(&h, &o);
  assert_int_equal(count_syncs(&h, 3), 0);
  assert_int_equal(h.nnoise, 0);
  th_free(&h);
  /* rate 0.5: deterministic per seed, and some but not all answers survive */
  opts_with(&o, "drop_rate=0.02");
  o.seed = 42;
  th_init(&h, &o);
  const size_t a = count_syncs(&h, 20);
  th_free(&h);
  th_init(&h, &o);
  const size_t b = count_syncs(&h, 20);
  th_free(&h);
  assert_int_equal(a, b);
  assert_true(a > 0 && a < 160);
}

static void test_corrupt(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "corrupt_rate_rx=1");
  th h;
  th_init(&h, &o);
  assert_int_equal(count_syncs(&h, 2), 0);
  th_free(&h);
  opts_with(&o, "corrupt_rate_tx=1");
  th_init(&h, &o);
  count_syncs(&h, 1);
  /* every reply byte has one bit flipped: no valid SYNC reply survives */
  for (size_t i = 0; i < h.nf; i++) assert_false(h.f[i].n == 12 && h.f[i].p[0] == 1 && h.f[i].p[1] == 8);
  th_free(&h);
}

static void test_delay(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "delay_tx=20ms");
  th h;
  th_init(&h, &o);
  const uint64_t t0 = h.t;
  count_syncs(&h, 1);
  assert_true(h.nf == 8);
  assert_true(h.f[0].t - t0 >= 20000);
  th_free(&h);
  opts_with(&o, "delay_rx=7ms");
  th_init(&h, &o);
  const uint64_t t1 = h.t;
  count_syncs(&h, 1);
  assert_true(h.f[0].t - t1 >= 7000);
  th_free(&h);
}

static void test_stall_after_bytes(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "stall_after_bytes=100");
  th h;
  th_init(&h, &o);
  assert_int_equal(count_syncs(&h, 2), 16); /* 92 bytes: both answered */
  assert_int_equal(count_syncs(&h, 1), 0);  /* byte 100 is inside this one */
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_STALLED);
  assert_int_equal(count_syncs(&h, 3), 0);
  assert_false(esim_dev_take_disconnect(h.dev));
  th_free(&h);
}

static void test_disconnect_after_bytes_and_at_op(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "disconnect_after_bytes=50");
  th h;
  th_init(&h, &o);
  assert_int_equal(count_syncs(&h, 1), 8);
  assert_false(esim_dev_take_disconnect(h.dev));
  assert_int_equal(count_syncs(&h, 1), 0);
  assert_true(esim_dev_take_disconnect(h.dev));
  assert_false(esim_dev_take_disconnect(h.dev)); /* reported once */
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_DISCONNECTED);
  /* a reset (replug) brings it back, and the fault does not fire again */
  esim_dev_reset(h.dev, h.t, true);
  th_run(&h);
  assert_int_equal(count_syncs(&h, 2), 16);
  th_free(&h);

  opts_with(&o, "disconnect_at=READ_REG:2");
  th_init(&h, &o);
  assert_int_equal(th_rom_read_reg(&h, 0x40001000), 0x00F01D83);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  assert_int_equal(th_pending(&h), 0);
  assert_true(esim_dev_take_disconnect(h.dev));
  th_free(&h);
}

static void test_not_in_download_mode(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "not_in_download_mode");
  th h;
  th_init(&h, &o);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_APP);
  th_run_until(&h, h.t + 3000000);
  assert_non_null(strstr((char *)h.noise, "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"));
  assert_int_equal(count_syncs(&h, 3), 0);
  /* with an app image in flash the app boots and chatters */
  size_t fs;
  uint8_t *flash = (uint8_t *)esim_dev_flash(h.dev, &fs);
  flash[0x1000] = 0xE9;
  h.nnoise = 0;
  esim_dev_host_attached(h.dev, h.t);
  th_run_until(&h, h.t + 2500000);
  assert_non_null(strstr((char *)h.noise, "boot: ESP-IDF"));
  assert_non_null(strstr((char *)h.noise, "app: tick 2"));
  /* even a reset with BOOT held boots the app: the strapping is wrong */
  esim_dev_reset(h.dev, h.t, true);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_APP);
  th_free(&h);
}

static void test_md5_mismatch(void **s) {
  (void)s;
  for (int budget = 1; budget <= 2; budget++) {
    esim_dev_opts o;
    opts_with(&o, budget == 1 ? "md5_mismatch=1" : "md5_mismatch");
    th h;
    th_init(&h, &o);
    th_run_legacy_stub(&h);
    uint8_t *img = th_image_z(0x3000, 5);
    size_t zn;
    uint8_t *z = th_deflate(img, 0x3000, &zn);
    uint8_t want[16];
    EVP_Digest(img, 0x3000, want, NULL, EVP_md5(), NULL);
    for (int session = 0; session < 2; session++) {
      uint8_t *pkt = malloc(EG_MAX_PACKET);
      th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, 0x3000, 1, 0x4000, 0x9000, true, 0));
      th_expect_ok(&h, EG_OP_FLASH_DEFL_BEGIN, 2);
      th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 0, z, zn, 0));
      th_expect_ok(&h, EG_OP_FLASH_DEFL_DATA, 2);
      th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_DEFL_END, 1));
      th_expect_ok(&h, EG_OP_FLASH_DEFL_END, 2);
      th_send_pkt(&h, pkt, eg_req_flash_md5(pkt, 0x9000, 0x3000));
      eg_resp r = th_reply(&h, EG_OP_SPI_FLASH_MD5, 2, 16);
      const bool same = !memcmp(r.data, want, 16);
      /* budget 1: only the first session is hit; unlimited: every one */
      if (session == 0 || budget == 2) assert_false(same);
      else assert_true(same);
      free(pkt);
    }
    free(z);
    free(img);
    th_free(&h);
  }
}

static void test_slow_erase(void **s) {
  (void)s;
  uint64_t took[2];
  for (int k = 0; k < 2; k++) {
    esim_dev_opts o;
    esim_dev_opts_default(&o);
    if (k) assert_int_equal(esim_fault_apply(&o.faults, "slow_erase=4", NULL, 0), EG_OK);
    th h;
    th_init(&h, &o);
    th_run_legacy_stub(&h);
    uint8_t pkt[64];
    const uint64_t t0 = h.t;
    th_send_pkt(&h, pkt, eg_req_erase_region(pkt, 0x10000, 0x10000));
    th_frame *f = th_next(&h);
    assert_int_equal(f->p[1], EG_OP_ERASE_REGION);
    took[k] = f->t - t0;
    th_free(&h);
  }
  /* 64 KB = 16 sectors for LS (exactly one block goes sector by sector) */
  assert_true(took[0] >= 16 * 45000);
  assert_true(took[1] >= 4 * 16 * 45000);
  assert_true(took[1] < 4 * took[0] + 20000);
}

static void test_baud_ceiling(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "baud_ceiling=460800");
  th h;
  th_init(&h, &o);
  th_run_legacy_stub(&h);
  h.host_baud = 115200;
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 460800, 115200));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  h.host_baud = 460800;
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83); /* at the ceiling: fine */
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 921600, 460800));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  h.host_baud = 921600;
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  assert_int_equal(th_pending(&h), 0); /* above it: garbage both ways */
  esim_dev_stats st;
  esim_dev_get_stats(h.dev, &st);
  assert_true(st.rx_garbled >= 14);
  th_free(&h);
}

/* The ceiling is about the line, whoever set the rate: the ROM's
 * CHANGE_BAUDRATE, the esp-flasher-stub's, and over TCP too (a host
 * without a UART rate still sees garbage). */
static void test_baud_ceiling_rom_ns_tcp(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "baud_ceiling=460800");
  uint8_t pkt[64];
  /* ROM, TCP-like host */
  th h;
  th_init(&h, &o);
  th_sync(&h, 4);
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 921600 * 1.06, 0)); /* esptool's ESP32 correction (doc §8.3) */
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 4);
  th_run(&h);
  assert_true(esim_dev_baud(h.dev) > 900000);
  const size_t before = h.nf;
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  assert_int_equal(h.nf, before); /* garbage both ways, no frame */
  th_free(&h);
  /* esp-flasher-stub, TCP-like host: fine at the ceiling, garbage above */
  th_init(&h, &o);
  th_run_new_stub(&h);
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 460800, 115200));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83);
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 921600, 460800));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  const size_t n0 = h.nf;
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  assert_int_equal(h.nf, n0);
  esim_dev_stats st;
  esim_dev_get_stats(h.dev, &st);
  assert_true(st.rx_garbled >= 14);
  th_free(&h);
}

/* rom_baud_error: the ROM answers CHANGE_BAUDRATE, then listens at a wrong
 * rate (a board whose ROM mis-sets its divider): a host at the rate it
 * asked for gets no answer; the same device after a reset is fine. */
static void test_rom_baud_error(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "rom_baud_error=8");
  o.chip = ESIM_CHIP_ESP32C3; /* no RTC calibration: the value is the rate */
  th h;
  th_init(&h, &o);
  h.host_baud = 115200;
  th_sync(&h, 4);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 460800, 0));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 4); /* the reply at the old rate is fine */
  th_run(&h);
  const uint32_t rate = esim_dev_baud(h.dev);
  assert_true(rate > 460800 * 1.07 && rate < 460800 * 1.09);
  h.host_baud = 460800;
  const size_t before = h.nf;
  th_send_pkt(&h, pkt, eg_req_sync(pkt));
  assert_int_equal(h.nf, before); /* 8 % apart: garbage */
  /* reconnect at the connect rate: a reset brings autobaud back */
  esim_dev_reset(h.dev, h.t, true);
  th_run(&h);
  th_drain(&h);
  h.host_baud = 115200;
  th_sync(&h, 4);
  /* the stub path is not affected: it sets its own divider */
  th_run_stub_at(&h, 0x40380000, 0x40380F2E);
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 460800, 115200));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  h.host_baud = 460800;
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x6921506F);
  th_free(&h);
}

static void test_ignore_first_sync(void **s) {
  (void)s;
  esim_dev_opts o;
  opts_with(&o, "ignore_first_sync");
  th h;
  th_init(&h, &o);
  assert_int_equal(count_syncs(&h, 1), 0);
  assert_int_equal(count_syncs(&h, 1), 8);
  th_free(&h);
}

/* Bytes garble on a rate mismatch even with zero-cost timing (--fast). */
static void test_garble_in_fast_mode(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  th_run_legacy_stub(&h); /* the stub does not autobaud */
  h.host_baud = 230400;
  assert_int_equal(count_syncs(&h, 1), 0);
  h.host_baud = 115200 * 1.02; /* within 2.5 %: fine */
  assert_int_equal(count_syncs(&h, 1), 8);
  th_free(&h);
}

/* Different rates: the receiving UART samples the sender's bits. Close
 * rates still work (a UART tolerates a few %), far ones garble, and a fast
 * receiver sees more bytes than were sent. */
static void test_uart_resampling(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  th_run_legacy_stub(&h);
  h.host_baud = (uint32_t)(115200 * 1.03);
  assert_int_equal(count_syncs(&h, 1), 8);
  h.host_baud = (uint32_t)(115200 * 0.97);
  assert_int_equal(count_syncs(&h, 1), 8);
  h.host_baud = (uint32_t)(115200 * 1.08);
  assert_int_equal(count_syncs(&h, 1), 0);
  h.host_baud = 115200;
  assert_int_equal(count_syncs(&h, 1), 8);
  /* a host at 4x: the stub's 8 replies arrive as more, different bytes */
  esim_dev_stats a, b;
  esim_dev_get_stats(h.dev, &a);
  const uint64_t taken0 = h.taken;
  uint8_t pkt[64];
  th_send_pkt_norun(&h, pkt, eg_req_sync(pkt));
  h.host_baud = 460800;
  th_run(&h);
  esim_dev_get_stats(h.dev, &b);
  assert_int_equal(b.tx_bytes - a.tx_bytes, 8 * 12); /* 8 x C0 + 10 bytes + C0 */
  assert_true(h.taken - taken0 > 8 * 12);
  th_free(&h);
}

/* A host that skips esptool's ESP32 CHANGE_BAUDRATE correction is 6 % off
 * (the default ROM clock error) and cannot talk to the ROM any more. */
static void test_rom_baud_without_correction(void **s) {
  (void)s;
  for (int correct = 0; correct <= 1; correct++) {
    th h;
    th_init(&h, NULL);
    h.host_baud = 115200;
    const uint32_t cali = th_rom_read_reg(&h, 0x3FF5F06C);
    const uint32_t w4 = th_rom_read_reg(&h, 0x3FF5A010);
    uint8_t pkt[64];
    th_send_pkt(&h, pkt, eg_req_change_baud(pkt, correct ? eg_esp32_rom_baud_value(460800, cali, w4) : 460800, 0));
    th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 4);
    h.host_baud = 460800;
    th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
    size_t ok = 0;
    while (th_pending(&h)) {
      th_frame *f = th_next(&h);
      ok += f->n == 12 && f->p[1] == EG_OP_READ_REG && eg_get_u32(f->p + 4) == 0x00F01D83;
    }
    assert_int_equal(ok, correct ? 1 : 0);
    th_free(&h);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_parsing),
      cmocka_unit_test(test_timing_apply),
      cmocka_unit_test(test_drop_rx_all_and_tx_all),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_delay),
      cmocka_unit_test(test_stall_after_bytes),
      cmocka_unit_test(test_disconnect_after_bytes_and_at_op),
      cmocka_unit_test(test_not_in_download_mode),
      cmocka_unit_test(test_md5_mismatch),
      cmocka_unit_test(test_slow_erase),
      cmocka_unit_test(test_baud_ceiling),
      cmocka_unit_test(test_baud_ceiling_rom_ns_tcp),
      cmocka_unit_test(test_rom_baud_error),
      cmocka_unit_test(test_ignore_first_sync),
      cmocka_unit_test(test_garble_in_fast_mode),
      cmocka_unit_test(test_uart_resampling),
      cmocka_unit_test(test_rom_baud_without_correction),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
