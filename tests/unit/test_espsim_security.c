/* test_espsim_security.c - security states per device (README "Security
 * states"): Secure Download Mode and the command subset its ROM still takes
 * (esptool docs serial-protocol.rst:309-321), flash encryption (an odd
 * SPI_BOOT_CRYPT_CNT, in GET_SECURITY_INFO and in the eFuse word esptool
 * reads), secure boot (flag bit 0 and SECURE_BOOT_EN). */
#include "test_espsim_host.h"

static void sec_init(th *h, esim_chip_id chip, bool sdm, uint8_t crypt_cnt, bool sb) {
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.chip = chip;
  o.sec.secure_download = sdm;
  o.sec.flash_crypt_cnt = crypt_cnt;
  o.sec.secure_boot = sb;
  th_init(h, &o);
}

/* The ROM's "invalid message": status 01 05 in the previous reply's
 * header, 8 times (what esptool turns into UnsupportedCommandError). */
static void expect_refused(th *h, uint8_t prev_op) {
  for (int k = 0; k < 8; k++) {
    th_frame *f = th_next(h);
    assert_int_equal(f->n, 12);
    assert_int_equal(f->p[1], prev_op);
    assert_int_equal(f->p[8], 1);
    assert_int_equal(f->p[9], 5);
  }
  assert_int_equal(th_pending(h), 0);
}

static eg_resp security_info(th *h, size_t sl, size_t len) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_simple(pkt, EG_OP_GET_SECURITY_INFO));
  eg_resp r = th_reply(h, EG_OP_GET_SECURITY_INFO, sl, len);
  assert_true(r.ok);
  assert_int_equal(r.data_len, len);
  return r;
}

static void test_sdm_command_subset(void **s) {
  (void)s;
  th h;
  sec_init(&h, ESIM_CHIP_ESP32C3, true, 0, false);
  th_sync(&h, 4);
  eg_resp r = security_info(&h, 4, 20);
  assert_int_equal(eg_get_u32(r.data), 1u << 2); /* SECURE_DOWNLOAD_ENABLE */
  assert_int_equal(eg_get_u32(r.data + 12), 5);
  uint8_t pkt[2048];
  /* refused: READ_REG, WRITE_REG, MEM_*, DEFL, MD5, READ_FLASH_SLOW */
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x60008844));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  th_send_pkt(&h, pkt, eg_req_write_reg(pkt, 0x60008000, 1, 0xFFFFFFFF, 0));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, 256, 1, 0x1800, 0x40380000, false, 0));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, 0x1000, 1, 0x400, 0x10000, true, 0));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  th_send_pkt(&h, pkt, eg_req_flash_md5(pkt, 0, 0x1000));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  th_send_pkt(&h, pkt, eg_req_read_flash_slow(pkt, 0, 64));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  /* taken: SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE, FLASH_BEGIN/DATA/END */
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true));
  th_expect_ok(&h, EG_OP_SPI_ATTACH, 4);
  th_send_pkt(&h, pkt, eg_req_spi_set_params(pkt, 4u << 20));
  th_expect_ok(&h, EG_OP_SPI_SET_PARAMS, 4);
  uint8_t *img = th_image(0x800, 7);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0x1000, 2, 0x400, 0x10000, true, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 4);
  for (uint32_t seq = 0; seq < 2; seq++) {
    th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DATA, seq, img + 0x400 * seq, 0x400, 0x400));
    th_expect_ok(&h, EG_OP_FLASH_DATA, 4);
  }
  size_t fsz;
  const uint8_t *fl = esim_dev_flash(h.dev, &fsz);
  assert_memory_equal(fl + 0x10000, img, 0x800);
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 460800, 0));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 4);
  th_run(&h);
  th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_END, 1));
  th_expect_ok(&h, EG_OP_FLASH_END, 4);
  free(img);
  th_free(&h);
}

/* The S2 in SDM: GET_SECURITY_INFO has no chip id, READ_REG of the magic
 * word is refused; esptool then knows it is an S2 in SDM (cmds.py:175-186). */
static void test_s2_sdm_detection(void **s) {
  (void)s;
  th h;
  sec_init(&h, ESIM_CHIP_ESP32S2, true, 0, false);
  th_sync(&h, 4);
  eg_resp r = security_info(&h, 4, 12);
  assert_int_equal(eg_get_u32(r.data), 1u << 2);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  expect_refused(&h, EG_OP_GET_SECURITY_INFO);
  th_free(&h);
  /* without SDM the S2 answers its magic word */
  sec_init(&h, ESIM_CHIP_ESP32S2, false, 0, false);
  th_sync(&h, 4);
  assert_int_equal(th_rom_read_reg(&h, 0x40001000), 0x000007C6);
  th_free(&h);
}

static void test_flash_encryption_and_secure_boot(void **s) {
  (void)s;
  th h;
  /* C6: one crypt-count bit burnt (odd: encryption on), secure boot on */
  sec_init(&h, ESIM_CHIP_ESP32C6, false, 1, true);
  th_sync(&h, 4);
  eg_resp r = security_info(&h, 4, 20);
  assert_int_equal(eg_get_u32(r.data), 1u << 0); /* SECURE_BOOT_EN */
  assert_int_equal(r.data[4], 1);
  /* esptool esp32c6.py:57-61: crypt count at 0x600B0834 [20:18], SB at 0x600B0838 b20 */
  assert_int_equal((th_rom_read_reg(&h, 0x600B0834) >> 18) & 7, 1);
  assert_int_equal((th_rom_read_reg(&h, 0x600B0838) >> 20) & 1, 1);
  th_free(&h);
  /* crypt count 3: two bits, even: encryption was turned off again */
  sec_init(&h, ESIM_CHIP_ESP32S3, false, 3, false);
  th_sync(&h, 4);
  r = security_info(&h, 4, 20);
  assert_int_equal(eg_get_u32(r.data), 0);
  assert_int_equal(r.data[4], 3);
  assert_int_equal((th_rom_read_reg(&h, 0x60007034) >> 18) & 7, 3);
  th_free(&h);
  /* ESP32: FLASH_CRYPT_CNT is eFuse word 0 [26:20], ABS_DONE_0 word 6 b4
   * (esp32.py:42-46); its ROM has no GET_SECURITY_INFO */
  sec_init(&h, ESIM_CHIP_ESP32, false, 1, true);
  th_sync(&h, 4);
  assert_int_equal((th_rom_read_reg(&h, 0x3FF5A000) >> 20) & 0x7F, 1);
  assert_int_equal((th_rom_read_reg(&h, 0x3FF5A018) >> 4) & 1, 1);
  th_free(&h);
}

/* The stubs report the same security state as the ROM. */
static void test_stub_reports_security(void **s) {
  (void)s;
  th h;
  sec_init(&h, ESIM_CHIP_ESP32C3, false, 1, false);
  th_sync(&h, 4);
  th_run_stub_at(&h, 0x40380000, 0x40380F2E);
  assert_int_equal(esim_dev_stub(h.dev), ESIM_STUB_NEW);
  eg_resp r = security_info(&h, 2, 20);
  assert_int_equal(r.data[4], 1);
  assert_int_equal(eg_get_u32(r.data + 12), 5);
  th_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sdm_command_subset),
      cmocka_unit_test(test_s2_sdm_detection),
      cmocka_unit_test(test_flash_encryption_and_secure_boot),
      cmocka_unit_test(test_stub_reports_security),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
