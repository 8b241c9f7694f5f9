/* test_espsim_rom.c - espsim's ROM loader model, command by command,
 * including the error paths (see tools/espsim/rom.c). */
#include "test_espsim_host.h"

#include "chips.h"

static void write_reg(th *h, uint32_t addr, uint32_t v) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_write_reg(pkt, addr, v, 0xFFFFFFFF, 0));
  th_expect_ok(h, EG_OP_WRITE_REG, 4);
}

static void attach_and_params(th *h, uint32_t size) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_spi_attach(pkt, 0, true));
  th_expect_ok(h, EG_OP_SPI_ATTACH, 4);
  th_send_pkt(h, pkt, eg_req_spi_set_params(pkt, size));
  th_expect_ok(h, EG_OP_SPI_SET_PARAMS, 4);
}

static void test_sync_value_and_sticky_header(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  th_sync(&h, 4);
  assert_int_equal(h.f[0].n, 12);
  eg_resp r;
  assert_int_equal(eg_resp_parse(h.f[0].p, h.f[0].n, 4, 0, &r), EG_OK);
  assert_int_equal(r.value, 0x20120707);
  /* WRITE_REG carries the last READ_REG value */
  assert_int_equal(th_rom_read_reg(&h, 0x40001000), 0x00F01D83);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_write_reg(pkt, 0x3FF00000, 1, 0xFFFFFFFF, 0));
  r = th_reply(&h, EG_OP_WRITE_REG, 4, 0);
  assert_int_equal(r.value, 0x00F01D83);
  th_free(&h);
}

static void test_unsupported_eight_times_previous_header(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF5A004), 0xC4000001);
  static const uint8_t ops[] = {EG_OP_GET_SECURITY_INFO, EG_OP_ERASE_FLASH, EG_OP_READ_FLASH, EG_OP_RUN_USER_CODE,
                                0x0C, 0x42};
  for (size_t k = 0; k < sizeof ops; k++) {
    uint8_t pkt[64];
    th_send_pkt(&h, pkt, eg_req_simple(pkt, ops[k]));
    assert_int_equal(th_pending(&h), 8);
    for (int i = 0; i < 8; i++) {
      th_frame *f = th_next(&h);
      /* the header of the previous reply: READ_REG, value of word 1 */
      static const uint8_t want[12] = {0x01, 0x0A, 0x04, 0x00, 0x01, 0x00, 0x00, 0xC4, 0x01, 0x05, 0x00, 0x00};
      assert_int_equal(f->n, 12);
      assert_memory_equal(f->p, want, 12);
    }
  }
  th_free(&h);
}

static void test_efuse_mac_and_chip(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  const uint8_t mac[6] = {0x30, 0xae, 0xa4, 0x12, 0xc0, 0xdb}; /* bytes that need SLIP escapes */
  memcpy(o.mac, mac, 6);
  th h;
  th_init(&h, &o);
  const uint32_t w1 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(1));
  const uint32_t w2 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(2));
  uint8_t got[6];
  eg_esp32_mac(w1, w2, got);
  assert_memory_equal(got, mac, 6);
  /* CRC8 (poly 0x8C reflected) in word 2 bits 23:16 */
  uint8_t crc = 0;
  for (int i = 0; i < 6; i++) {
    crc ^= mac[i];
    for (int b = 0; b < 8; b++) crc = (uint8_t)(crc & 1 ? (crc >> 1) ^ 0x8C : crc >> 1);
  }
  assert_int_equal((w2 >> 16) & 0xFF, crc);
  const uint32_t w3 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(3));
  const uint32_t w5 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(5));
  const uint32_t date = th_rom_read_reg(&h, EG_ESP32_APB_CTL_DATE);
  assert_int_equal(eg_esp32_major_rev(w3, w5, date), 3);
  assert_int_equal(eg_esp32_package(w3), 0);
  th_free(&h);
}

static void test_crystal_from_clkdiv(void **s) {
  (void)s;
  const eg_chip *c = eg_chip_get(EG_CHIP_ESP32);
  for (int xtal = 26; xtal <= 40; xtal += 14) {
    esim_dev_opts o;
    esim_dev_opts_default(&o);
    esim_timing_fast(&o.timing);
    o.crystal_mhz = xtal;
    th h;
    th_init(&h, &o);
    const uint32_t div = th_rom_read_reg(&h, 0x3FF40014);
    if (xtal == 40) assert_int_equal(div, 0x15A); /* trace */
    assert_int_equal(eg_crystal_mhz(c, 115200, div), xtal);
    th_free(&h);
  }
}

/* esptool's ESP32 ROM formula (chips.c eg_esp32_rom_baud_value) must land
 * within a UART's tolerance of the requested rate; the raw rate must not. */
static void test_change_baud_rom_quirk(void **s) {
  (void)s;
  const uint32_t rates[] = {230400, 460800, 921600, 1500000, 2000000};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
    for (int quirk = 0; quirk <= 1; quirk++) {
      th h;
      th_init(&h, NULL);
      const uint32_t cali = th_rom_read_reg(&h, EG_ESP32_RTC_CALI_REG);
      const uint32_t w4 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(4));
      const uint32_t v = quirk ? eg_esp32_rom_baud_value(rates[i], cali, w4) : rates[i];
      uint8_t pkt[64];
      th_send_pkt(&h, pkt, eg_req_change_baud(pkt, v, 0));
      th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 4);
      const double got = esim_dev_baud(h.dev);
      const double err = (got - rates[i]) / rates[i];
      if (quirk) assert_true(err > -0.01 && err < 0.01);
      else assert_true(err > 0.025 || err < -0.025); /* the default ROM clock error is 3 % */
      /* UART_CLKDIV now reads the new divider */
      const uint32_t div = th_rom_read_reg(&h, 0x3FF40014);
      assert_int_not_equal(div, 0x15A);
      th_free(&h);
    }
  }
}

/* The reply goes out at the old rate, then two 0xC0 at the new one. */
static void test_change_baud_reply_then_switch(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  h.host_baud = 115200;
  const uint32_t cali = th_rom_read_reg(&h, EG_ESP32_RTC_CALI_REG);
  const uint32_t w4 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(4));
  uint8_t pkt[64];
  th_send_pkt_norun(&h, pkt, eg_req_change_baud(pkt, eg_esp32_rom_baud_value(460800, cali, w4), 0));
  uint8_t buf[256];
  uint64_t t = h.t;
  size_t k = 0;
  for (int guard = 0; guard < 10 && k == 0; guard++) {
    t = esim_dev_next_event(h.dev);
    k = esim_dev_tx_take(h.dev, t, buf, sizeof buf, 115200);
  }
  /* the whole reply, ungarbled at 115200, and nothing after it */
  static const uint8_t want[] = {0xC0, 0x01, 0x0F, 0x04, 0x00};
  assert_true(k >= 14);
  assert_memory_equal(buf, want, sizeof want);
  assert_int_equal(esim_dev_baud(h.dev), 115200);
  size_t k2 = esim_dev_tx_take(h.dev, t, buf, sizeof buf, 460800); /* applies the switch */
  if (k2 == 0) k2 = esim_dev_tx_take(h.dev, t, buf, sizeof buf, 460800);
  assert_true(esim_dev_baud(h.dev) > 455000 && esim_dev_baud(h.dev) < 466000);
  assert_int_equal(k2, 2);
  assert_int_equal(buf[0], 0xC0);
  assert_int_equal(buf[1], 0xC0);
  th_free(&h);
}

/* The divider changes at its own time: a host that follows the rate and
 * sends its next command before the simulator's loop has pumped output
 * again (a busy rack) is still heard at the new rate. */
static void test_change_baud_takes_effect_without_output_pump(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  h.host_baud = 115200;
  const uint32_t cali = th_rom_read_reg(&h, EG_ESP32_RTC_CALI_REG);
  const uint32_t w4 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(4));
  uint8_t pkt[64];
  th_send_pkt_norun(&h, pkt, eg_req_change_baud(pkt, eg_esp32_rom_baud_value(460800, cali, w4), 0));
  uint8_t buf[256];
  size_t k = 0;
  for (int guard = 0; guard < 10 && k == 0; guard++) {
    h.t = esim_dev_next_event(h.dev);
    k = esim_dev_tx_take(h.dev, h.t, buf, sizeof buf, 115200); /* the reply; the switch waits behind it */
  }
  assert_true(k >= 14);
  assert_int_equal(esim_dev_baud(h.dev), 115200);
  /* 5 ms later the host, now at 460800, asks again; nothing pumped output. */
  h.host_baud = 460800;
  h.t += 5000;
  th_send_pkt_norun(&h, pkt, eg_req_read_reg(pkt, EG_ESP32_RTC_CALI_REG));
  esim_dev_stats st;
  esim_dev_get_stats(h.dev, &st);
  assert_int_equal(st.rx_garbled, 0);
  th_run(&h);
  th_drain(&h);
  assert_int_equal(th_rom_read_reg(&h, EG_ESP32_RTC_CALI_REG), cali);
  th_free(&h);
}

static void test_autobaud_and_mismatch(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  /* ROM autobauds to whatever the host syncs at */
  h.host_baud = 921600;
  th_sync(&h, 4);
  assert_int_equal(esim_dev_baud(h.dev), 921600);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF40014), 40000000 / 921600 - 1);
  /* after CHANGE_BAUDRATE autobaud is off: a host at another rate garbles */
  const uint32_t cali = th_rom_read_reg(&h, EG_ESP32_RTC_CALI_REG);
  const uint32_t w4 = th_rom_read_reg(&h, EG_ESP32_EFUSE_WORD(4));
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, eg_esp32_rom_baud_value(460800, cali, w4), 0));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 4);
  th_drain(&h);
  h.host_baud = 115200;
  th_send_pkt(&h, pkt, eg_req_sync(pkt));
  assert_int_equal(th_pending(&h), 0);
  esim_dev_stats st;
  esim_dev_get_stats(h.dev, &st);
  assert_true(st.rx_garbled >= 46);
  /* at the right rate it answers again */
  h.host_baud = 460800;
  th_sync(&h, 4);
  th_free(&h);
}

static void test_rdid_sfdp_via_registers(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  /* before SPI_ATTACH the flash is not on the bus: MISO reads 1s */
  write_reg(&h, 0x3FF4202C, 23);
  write_reg(&h, 0x3FF4201C, 0x90000000);
  write_reg(&h, 0x3FF42024, 0x7000009F);
  write_reg(&h, 0x3FF42080, 0);
  write_reg(&h, 0x3FF42000, 1u << 18);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF42000), 0);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF42080), 0x00FFFFFF);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true));
  th_expect_ok(&h, EG_OP_SPI_ATTACH, 4);
  write_reg(&h, 0x3FF42080, 0);
  write_reg(&h, 0x3FF42000, 1u << 18);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF42080), 0x001640C8);
  /* SFDP reads 0 (QEMU's flash model in the traces) */
  write_reg(&h, 0x3FF4202C, 31);
  write_reg(&h, 0x3FF42020, 0x5C000007);
  write_reg(&h, 0x3FF4201C, 0xF0000000);
  write_reg(&h, 0x3FF42024, 0x7000005A);
  write_reg(&h, 0x3FF42004, 0);
  write_reg(&h, 0x3FF42080, 0xDEADBEEF);
  write_reg(&h, 0x3FF42000, 1u << 18);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF42080), 0);
  /* a raw READ (03h) user command returns flash bytes */
  write_reg(&h, 0x3FF4202C, 31);
  write_reg(&h, 0x3FF42020, 23u << 26);
  write_reg(&h, 0x3FF4201C, 0xD0000000);
  write_reg(&h, 0x3FF42024, 0x70000003);
  write_reg(&h, 0x3FF42004, 0x1000u << 8);
  write_reg(&h, 0x3FF42000, 1u << 18);
  assert_int_equal(th_rom_read_reg(&h, 0x3FF42080), 0xFFFFFFFF);
  /* unknown register: 0 until written, then the value */
  assert_int_equal(th_rom_read_reg(&h, 0x3FFE1234), 0);
  write_reg(&h, 0x3FFE1234, 0x12345678);
  assert_int_equal(th_rom_read_reg(&h, 0x3FFE1234), 0x12345678);
  /* masked write keeps the other bits */
  th_send_pkt(&h, pkt, eg_req_write_reg(pkt, 0x3FFE1234, 0xFFFF0000, 0x00FF0000, 0));
  th_expect_ok(&h, EG_OP_WRITE_REG, 4);
  assert_int_equal(th_rom_read_reg(&h, 0x3FFE1234), 0x12FF5678);
  th_free(&h);
}

static void test_write_flash_uncompressed_and_md5(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  attach_and_params(&h, 4u << 20);
  const size_t n = 5000; /* not a multiple of the 1 KB block: last block padded */
  uint8_t *img = th_image(n, 1);
  uint8_t *pkt = malloc(8192);
  const uint32_t blocks = (uint32_t)((n + 0x3FF) / 0x400);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, (uint32_t)n, blocks, 0x400, 0x30000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 4);
  for (uint32_t seq = 0; seq < blocks; seq++) {
    size_t k = n - seq * 0x400 < 0x400 ? n - seq * 0x400 : 0x400;
    th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DATA, seq, img + seq * 0x400, k, 0x400));
    th_expect_ok(&h, EG_OP_FLASH_DATA, 4);
  }
  size_t fs;
  const uint8_t *fl = esim_dev_flash(h.dev, &fs);
  assert_memory_equal(fl + 0x30000, img, n);
  assert_int_equal(fl[0x30000 + n], 0xFF); /* padding was 0xFF */
  /* MD5: 32 lowercase hex characters */
  th_send_pkt(&h, pkt, eg_req_flash_md5(pkt, 0x30000, (uint32_t)n));
  eg_resp r = th_reply(&h, EG_OP_SPI_FLASH_MD5, 4, 32);
  assert_true(r.ok);
  uint8_t dig[16];
  char hex[33];
  EVP_Digest(img, n, dig, NULL, EVP_md5(), NULL);
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", dig[i]);
  assert_memory_equal(r.data, hex, 32);
  /* READ_FLASH_SLOW: always 64 bytes */
  th_send_pkt(&h, pkt, eg_req_read_flash_slow(pkt, 0x30010, 16));
  r = th_reply(&h, EG_OP_READ_FLASH_SLOW, 4, 64);
  assert_true(r.ok);
  assert_memory_equal(r.data, img + 0x10, 64);
  th_send_pkt(&h, pkt, eg_req_read_flash_slow(pkt, 0x30010, 65));
  r = th_reply(&h, EG_OP_READ_FLASH_SLOW, 4, 0);
  assert_false(r.ok);
  assert_int_equal(r.error, 0x0A);
  free(pkt);
  free(img);
  th_free(&h);
}

/* Compressed write with 1 KB blocks: the inflate stream crosses block
 * boundaries, the ROM erases the whole region at BEGIN. */
static void test_write_flash_deflated(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  attach_and_params(&h, 4u << 20);
  /* non-blank flash around the target to see what gets erased */
  size_t fs;
  uint8_t *fl = (uint8_t *)esim_dev_flash(h.dev, &fs);
  memset(fl + 0x40000, 0x00, 0x30000);
  const size_t n = 70000;
  uint8_t *img = th_image(n, 2);
  size_t zn;
  uint8_t *z = th_deflate(img, n, &zn);
  const uint32_t blocks = (uint32_t)((zn + 0x3FF) / 0x400);
  const uint32_t erase = (uint32_t)((n + 0x3FF) / 0x400 * 0x400);
  uint8_t *pkt = malloc(8192);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, erase, blocks, 0x400, 0x40000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_DEFL_BEGIN, 4);
  /* the whole erase region is blank right after BEGIN: 70 KB -> 18 sectors */
  for (size_t i = 0; i < 18 * 4096; i++) assert_int_equal(fl[0x40000 + i], 0xFF);
  assert_int_equal(fl[0x40000 + 18 * 4096], 0x00);
  for (uint32_t seq = 0; seq < blocks; seq++) {
    size_t k = zn - seq * 0x400 < 0x400 ? zn - seq * 0x400 : 0x400;
    th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, seq, z + seq * 0x400, k, 0));
    th_expect_ok(&h, EG_OP_FLASH_DEFL_DATA, 4);
  }
  assert_memory_equal(fl + 0x40000, img, n);
  assert_int_equal(fl[0x40000 + n], 0xFF);
  free(pkt);
  free(z);
  free(img);
  th_free(&h);
}

static void test_data_errors(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  attach_and_params(&h, 4u << 20);
  const size_t n = 4096;
  uint8_t *img = th_image(n, 3);
  size_t zn;
  uint8_t *z = th_deflate(img, n, &zn);
  uint8_t *pkt = malloc(8192);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, 4096, 3, 0x400, 0x50000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_DEFL_BEGIN, 4);
  /* bad checksum -> 01 07 */
  size_t len = eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 0, z, 0x400, 0);
  pkt[4] ^= 0x55;
  th_send_pkt(&h, pkt, len);
  eg_resp r = th_reply(&h, EG_OP_FLASH_DEFL_DATA, 4, 0);
  assert_false(r.ok);
  assert_int_equal(r.status[0], 1);
  assert_int_equal(r.error, 0x07);
  /* wrong sequence -> 01 05 */
  th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 1, z, 0x400, 0));
  r = th_reply(&h, EG_OP_FLASH_DEFL_DATA, 4, 0);
  assert_false(r.ok);
  assert_int_equal(r.error, 0x05);
  /* length field disagreeing with the data -> 01 05 */
  len = eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 0, z, 0x400, 0);
  eg_put_u32(pkt + 8, 0x3FF);
  th_send_pkt(&h, pkt, len);
  r = th_reply(&h, EG_OP_FLASH_DEFL_DATA, 4, 0);
  assert_int_equal(r.error, 0x05);
  /* size field longer than the frame -> 01 05 */
  len = eg_req_read_reg(pkt, 0x40001000);
  eg_put_u16(pkt + 2, 8);
  th_send_pkt(&h, pkt, len);
  r = th_reply(&h, EG_OP_READ_REG, 4, 0);
  assert_int_equal(r.error, 0x05);
  /* corrupt deflate data -> 01 0B */
  uint8_t junk[64];
  memset(junk, 0xA5, sizeof junk);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, 4096, 1, 0x400, 0x50000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_DEFL_BEGIN, 4);
  th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 0, junk, sizeof junk, 0));
  r = th_reply(&h, EG_OP_FLASH_DEFL_DATA, 4, 0);
  assert_int_equal(r.error, 0x0B);
  /* a data block before any BEGIN -> 01 05; a misaligned BEGIN -> 01 01 */
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 4096, 4, 0x400, 0x50100, false, 0));
  r = th_reply(&h, EG_OP_FLASH_BEGIN, 4, 0);
  assert_int_equal(r.error, 0x01);
  th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DATA, 0, img, 0x400, 0x400));
  r = th_reply(&h, EG_OP_FLASH_DATA, 4, 0);
  assert_int_equal(r.error, 0x05);
  /* MEM_DATA with a bad checksum -> 01 07 (esptool #280, #617) */
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, 64, 1, 0x1800, 0x3FFE0000, false, 0));
  th_expect_ok(&h, EG_OP_MEM_BEGIN, 4);
  len = eg_req_data(pkt, EG_OP_MEM_DATA, 0, img, 64, 0);
  pkt[4] ^= 1;
  th_send_pkt(&h, pkt, len);
  r = th_reply(&h, EG_OP_MEM_DATA, 4, 0);
  assert_int_equal(r.error, 0x07);
  /* MEM_BEGIN outside RAM -> 01 0F */
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, 64, 1, 0x1800, 0x20000000, false, 0));
  r = th_reply(&h, EG_OP_MEM_BEGIN, 4, 0);
  assert_int_equal(r.error, 0x0F);
  free(pkt);
  free(z);
  free(img);
  th_free(&h);
}

/* The ROM addresses only what SPI_SET_PARAMS told it (2 MB by default). */
static void test_rom_flash_size_default(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true));
  th_expect_ok(&h, EG_OP_SPI_ATTACH, 4);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 4096, 4, 0x400, 0x300000, false, 0));
  eg_resp r = th_reply(&h, EG_OP_FLASH_BEGIN, 4, 0);
  assert_false(r.ok);
  th_send_pkt(&h, pkt, eg_req_spi_set_params(pkt, 4u << 20));
  th_expect_ok(&h, EG_OP_SPI_SET_PARAMS, 4);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 4096, 4, 0x400, 0x300000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 4);
  th_free(&h);
}

/* SPIEraseArea's pattern (timing-facts §2): from an aligned start, 16
 * sectors first, blocks only while more than 16 sectors remain. */
static void test_rom_erase_pattern(void **s) {
  (void)s;
  static const struct {
    uint32_t addr, len, erases;
  } cases[] = {
      {0x10000, 0x4000, 4},    /* 4 sectors */
      {0x10000, 0x20000, 32},  /* 16 + 16 sectors: the "BUG of 6.0 erase" */
      {0x10000, 0x30000, 33},  /* 16 sectors, 1 block, 16 sectors */
      {0x1F000, 0x13000, 1 + 1 + 2}, /* 1 sector to the boundary, 1 block, 2 sectors */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    th h;
    th_init(&h, NULL);
    attach_and_params(&h, 4u << 20);
    uint8_t pkt[64];
    esim_dev_stats a, b;
    esim_dev_get_stats(h.dev, &a);
    th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, cases[i].len, 1, 0x400, cases[i].addr, false, 0));
    th_expect_ok(&h, EG_OP_FLASH_BEGIN, 4);
    esim_dev_get_stats(h.dev, &b);
    assert_int_equal(b.erases - a.erases, cases[i].erases);
    th_free(&h);
  }
}

/* With real timing the ROM erases before replying: the reply time shows
 * the erase (16 sectors x 45 ms). */
static void test_rom_begin_waits_for_erase(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  th h;
  th_init(&h, &o);
  attach_and_params(&h, 4u << 20);
  uint8_t pkt[64];
  const uint64_t t0 = h.t;
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0x10000, 64, 0x400, 0x100000, false, 0));
  th_frame *f = th_next(&h);
  assert_int_equal(f->p[1], EG_OP_FLASH_BEGIN);
  assert_true(f->t - t0 >= 16 * 45000);
  assert_true(f->t - t0 < 16 * 45000 + 20000);
  th_free(&h);
}

/* Bytes sent while the ROM is busy fill its 128-byte FIFO; the rest is lost. */
static void test_rom_fifo_overflow_while_busy(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  th h;
  th_init(&h, &o);
  attach_and_params(&h, 4u << 20);
  uint8_t pkt[64];
  th_send_pkt_norun(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0x40000, 1, 0x400, 0x100000, false, 0));
  /* let the ROM start erasing, then stream 20 SYNCs at it */
  h.t += 10000;
  esim_dev_advance(h.dev, h.t);
  for (int i = 0; i < 20; i++) th_send_pkt_norun(&h, pkt, eg_req_sync(pkt));
  th_run(&h);
  esim_dev_stats st;
  esim_dev_get_stats(h.dev, &st);
  assert_true(st.rx_overflow > 500);
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 4);
  /* at most the SYNCs that fit in 128 bytes got through (2 x 46 bytes) */
  assert_true(th_pending(&h) <= 16);
  th_free(&h);
}

/* The event log's clock origin (the first time the device saw) and, per
 * command, how long its frame waited for the CPU: the benchmark's chip time
 * (tools/bench/attrib.mjs reads both). */
typedef struct logcap {
  char lines[64][192];
  int n;
} logcap;

static void cap_log(void *ctx, const char *line) {
  logcap *c = ctx;
  if (c->n < 64) snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

static const char *cap_find(const logcap *c, const char *what) {
  for (int i = 0; i < c->n; i++)
    if (strstr(c->lines[i], what)) return c->lines[i];
  return NULL;
}

static void test_event_log_clock_and_waited(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  logcap cap = {0};
  o.log = cap_log;
  o.log_ctx = &cap;
  th h;
  th_init(&h, &o);
  attach_and_params(&h, 4u << 20);
  assert_true(cap.n > 0);
  /* the first time the device saw is th_send_pkt's first: 1000 + 100 us */
  if (!strstr(cap.lines[0], "0.000000 test clock origin 1100 us")) fail_msg("first line: '%s'", cap.lines[0]);
  const char *c1 = cap_find(&cap, "cmd SPI_ATTACH (0x0d) size=8 waited=0us");
  if (!c1) fail_msg("no 'cmd SPI_ATTACH ... waited=0us' line; first: '%s'", cap.lines[0]);
  /* FLASH_BEGIN erases 16 sectors before it answers; a SYNC sent right
   * behind it waits in the FIFO until the ROM is free again. */
  uint8_t pkt[64];
  th_send_pkt_norun(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0x10000, 64, 0x400, 0x100000, false, 0));
  th_send_pkt_norun(&h, pkt, eg_req_sync(pkt));
  th_run(&h);
  const char *line = cap_find(&cap, "cmd SYNC (0x08) size=36 waited=");
  if (!line) fail_msg("no 'cmd SYNC' line");
  const unsigned long long waited = strtoull(strstr(line, "waited=") + 7, NULL, 10);
  if (waited < 16 * 45000ull - 1000 || waited > 16 * 45000ull + 20000)
    fail_msg("SYNC waited %llu us behind a 16-sector erase (%u us each): '%s'", waited, 45000u, line);
  th_free(&h);
}

static void test_flash_end_leaves_loader(void **s) {
  (void)s;
  for (uint32_t flag = 0; flag <= 1; flag++) {
    th h;
    th_init(&h, NULL);
    uint8_t pkt[64];
    th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0, 0, 0x400, 0, false, 0));
    th_drain(&h);
    th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_END, flag));
    th_expect_ok(&h, EG_OP_FLASH_END, 4);
    if (flag == 1) {
      /* run user code: blank flash, so the ROM complains about the header */
      assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_APP);
      th_run_until(&h, h.t + 300000);
      assert_non_null(strstr((char *)h.noise, "invalid header: 0xffffffff"));
      th_send_pkt(&h, pkt, eg_req_sync(pkt));
      assert_int_equal(th_pending(&h), 0);
    } else {
      /* reboot with the strapping still latched: banner, download mode */
      assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
      assert_non_null(strstr((char *)h.noise, "rst:0xc (SW_CPU_RESET),boot:0x3 (DOWNLOAD_BOOT"));
      assert_non_null(strstr((char *)h.noise, "waiting for download"));
      th_sync(&h, 4);
    }
    th_free(&h);
  }
}

static void test_mem_end_runs_stub_by_address(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  th_run_legacy_stub(&h);
  th_free(&h);
  th_init(&h, NULL);
  th_run_new_stub(&h);
  th_free(&h);
  /* forced flavour wins over the address */
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.stub = ESIM_STUB_NEW;
  th_init(&h, &o);
  th_run_stub_at(&h, 0x400BE000, 0x400BE658);
  assert_int_equal(esim_dev_stub(h.dev), ESIM_STUB_NEW);
  th_free(&h);
  /* MEM_END with no_exec = 1 stays in the ROM */
  th_init(&h, NULL);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_mem_end(pkt, 0));
  th_expect_ok(&h, EG_OP_MEM_END, 4);
  assert_int_equal(th_pending(&h), 0);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
  th_free(&h);
}

static void test_reset_banner(void **s) {
  (void)s;
  th h;
  th_init(&h, NULL);
  esim_dev_reset(h.dev, h.t, true);
  th_run(&h);
  assert_non_null(strstr((char *)h.noise, "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))"));
  th_sync(&h, 4);
  th_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sync_value_and_sticky_header),
      cmocka_unit_test(test_unsupported_eight_times_previous_header),
      cmocka_unit_test(test_efuse_mac_and_chip),
      cmocka_unit_test(test_crystal_from_clkdiv),
      cmocka_unit_test(test_change_baud_rom_quirk),
      cmocka_unit_test(test_change_baud_reply_then_switch),
      cmocka_unit_test(test_change_baud_takes_effect_without_output_pump),
      cmocka_unit_test(test_autobaud_and_mismatch),
      cmocka_unit_test(test_rdid_sfdp_via_registers),
      cmocka_unit_test(test_write_flash_uncompressed_and_md5),
      cmocka_unit_test(test_write_flash_deflated),
      cmocka_unit_test(test_data_errors),
      cmocka_unit_test(test_rom_flash_size_default),
      cmocka_unit_test(test_rom_erase_pattern),
      cmocka_unit_test(test_rom_begin_waits_for_erase),
      cmocka_unit_test(test_rom_fifo_overflow_while_busy),
      cmocka_unit_test(test_event_log_clock_and_waited),
      cmocka_unit_test(test_flash_end_leaves_loader),
      cmocka_unit_test(test_mem_end_runs_stub_by_address),
      cmocka_unit_test(test_reset_banner),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
