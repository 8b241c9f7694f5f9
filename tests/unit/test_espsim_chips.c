/* test_espsim_chips.c - every simulated chip answers as esptool expects
 * that chip to answer. The expectations are written here from esptool
 * v5.3.1's target classes (esptool/targets/<chip>.py: decoders, register
 * addresses, stub JSONs) independently of tools/espsim/simchip.c, so a slip
 * in the chip table shows up as a mismatch:
 *   - SYNC with the ROM's status length (ESP8266 2, others 4);
 *   - the magic register; GET_SECURITY_INFO (20 bytes, S2 12, ESP32 and
 *     ESP8266 answer "invalid message" as esptool expects);
 *   - MAC, major/minor revision, package, crypt count and secure boot
 *     decoded with esptool's formulas from the eFuse words;
 *   - the crystal esptool estimates from UART_CLKDIV (or the chip's fixed one);
 *   - the JEDEC id through the chip's SPI1 register layout;
 *   - both stub sets (set 1 = legacy, set 2 = esp-flasher-stub) loaded at
 *     their JSON addresses start the right stub;
 *   - ROM CHANGE_BAUDRATE with esptool's compensation lands on the rate
 *     (C2 with 26 MHz, C5 with 48 vs 40 MHz), without it does not;
 *   - the ESP8266 ROM's command set and FLASH_BEGIN erase-size bug;
 *   - the boot banner of each ROM generation. */
#include "test_espsim_host.h"

typedef struct chip_expect {
  esim_chip_id id;
  size_t status_len;
  uint32_t magic;
  size_t sec_len;
  uint32_t chip_id;
  int xtal;              /* default crystal in MHz */
  uint32_t clkdiv_reg;   /* 0: esptool does not estimate (fixed crystal) */
  unsigned clk_divider;  /* esptool XTAL_CLK_DIVIDER */
  uint32_t spi_base;
  int layout;            /* 0 ESP8266, 1 ESP32, 2 SPI_MEM */
  int major, minor;      /* default revision */
  uint32_t s1_text, s1_data, s1_entry, s2_text, s2_data, s2_entry;
  const char *banner;    /* a piece of the download-mode banner */
} chip_expect;

/* esptool v5.3.1 esptool/targets/CHIP.py and stub_flasher/{1,2}/CHIP.json. */
static const chip_expect chips[] = {
    {ESIM_CHIP_ESP8266, 2, 0xFFF0C101, 0, 0, 26, 0x60000014, 2, 0x60000200, 0, 0, 0, 0x4010D000, 0x3FFFACAC,
     0x4010D004, 0x4010C500, 0x3FFFAE68, 0x4010C504, "boot mode:(1,7)"},
    {ESIM_CHIP_ESP32, 4, 0x00F01D83, 0, 0, 40, 0x3FF40014, 1, 0x3FF42000, 1, 3, 0, 0x400BE000, 0x3FFDEBAC,
     0x400BE658, 0x400A8000, 0x3FFDED68, 0x400A9074, "waiting for download"},
    {ESIM_CHIP_ESP32S2, 4, 0x000007C6, 12, 2, 40, 0, 1, 0x3F402000, 2, 1, 0, 0x40028000, 0x3FFE2C00, 0x400288AC,
     0x40028000, 0x3FFE2DBC, 0x40029144, "ESP-ROM:esp32s2"},
    {ESIM_CHIP_ESP32S3, 4, 0x00000009, 20, 9, 40, 0, 1, 0x60002000, 2, 0, 2, 0x40378000, 0x3FCB2C00, 0x40378C94,
     0x40378000, 0x3FCB2DBC, 0x40379474, "ESP-ROM:esp32s3-20210327"},
    {ESIM_CHIP_ESP32C2, 4, 0x6F51306F, 20, 12, 40, 0x60000014, 1, 0x60002000, 2, 1, 0, 0x40380000, 0x3FCB6BAC,
     0x403805DA, 0x40380000, 0x3FCB6D6C, 0x4038105C, "ESP-ROM:esp8684"},
    {ESIM_CHIP_ESP32C3, 4, 0x6921506F, 20, 5, 40, 0, 1, 0x60002000, 2, 0, 3, 0x40380000, 0x3FC96BB8, 0x403806D2,
     0x40380000, 0x3FC96D68, 0x40380F2E, "ESP-ROM:esp32c3-api1-20210207"},
    {ESIM_CHIP_ESP32C5, 4, 0x1101406F, 20, 23, 48, 0x60000014, 1, 0x60003000, 2, 1, 0, 0x40800000, 0x40852BB8,
     0x40800A88, 0x40800000, 0x40852F0C, 0x408014EE, "ESP-ROM:esp32c5"},
    {ESIM_CHIP_ESP32C6, 4, 0x2CE0806F, 20, 13, 40, 0, 1, 0x60003000, 2, 0, 1, 0x40800000, 0x40852BB4, 0x408006C2,
     0x40800000, 0x40852F0C, 0x40801252, "ESP-ROM:esp32c6"},
    {ESIM_CHIP_ESP32C61, 4, 0x33F0206F, 20, 20, 40, 0, 1, 0x60003000, 2, 1, 0, 0, 0, 0, 0x40800000, 0x40816D68,
     0x4080104E, "ESP-ROM:esp32c61"},
    {ESIM_CHIP_ESP32H2, 4, 0xD7B73E80, 20, 16, 32, 0, 1, 0x60003000, 2, 0, 1, 0x40800000, 0x40842BB4, 0x408006C2,
     0x40800000, 0x40842D68, 0x40800F26, "ESP-ROM:esp32h2"},
    {ESIM_CHIP_ESP32P4, 4, 0x0ADDBAD0, 20, 18, 40, 0, 1, 0x5008D000, 2, 1, 0, 0x4FF10000, 0x4FF62C00, 0x4FF10BA0,
     0x4FF10000, 0x4FF62DB8, 0x4FF1130E, "ESP-ROM:esp32p4"},
};
#define NCHIPS (sizeof chips / sizeof chips[0])

static void chip_init(th *h, esim_chip_id id, void (*tweak)(esim_dev_opts *)) {
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.chip = id;
  static const uint8_t mac[6] = {0x7c, 0xdf, 0xa1, 0x12, 0x34, 0x56};
  memcpy(o.mac, mac, 6);
  if (tweak) tweak(&o);
  th_init(h, &o);
}

static uint32_t rreg(th *h, size_t sl, uint32_t addr) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_read_reg(pkt, addr));
  eg_resp r = th_reply(h, EG_OP_READ_REG, sl, 0);
  if (!r.ok) fail_msg("READ_REG 0x%08x failed: %02x %02x", addr, r.status[0], r.status[1]);
  return r.value;
}

static void wreg(th *h, size_t sl, uint32_t addr, uint32_t v) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_write_reg(pkt, addr, v, 0xFFFFFFFF, 0));
  th_expect_ok(h, EG_OP_WRITE_REG, sl);
}

/* ------------------------------------------------ esptool's decoders */

typedef struct decoded {
  uint8_t mac[6];
  int major, minor, pkg, crypt_cnt, secure_boot;
} decoded;

/* Written from esptool v5.3.1 esptool/targets/<chip>.py read_mac,
 * get_{major,minor}_chip_version, get_pkg_version, and the
 * EFUSE_SPI_BOOT_CRYPT_CNT / EFUSE_SECURE_BOOT_EN registers. */
static void esptool_decode(th *h, esim_chip_id id, size_t sl, decoded *d) {
  memset(d, 0, sizeof *d);
  uint32_t a, b, w;
  switch (id) {
  case ESIM_CHIP_ESP8266: {
    const uint32_t mac0 = rreg(h, sl, 0x3FF00050), mac1 = rreg(h, sl, 0x3FF00054), mac3 = rreg(h, sl, 0x3FF0005C);
    assert_true(mac3 != 0);
    d->mac[0] = (uint8_t)(mac3 >> 16), d->mac[1] = (uint8_t)(mac3 >> 8), d->mac[2] = (uint8_t)mac3;
    d->mac[3] = (uint8_t)(mac1 >> 8), d->mac[4] = (uint8_t)mac1, d->mac[5] = (uint8_t)(mac0 >> 24);
    /* ESP8285 bits (esp8266.py get_chip_description): 4 and 80 clear */
    assert_int_equal(mac0 & (1u << 4), 0);
    assert_int_equal(rreg(h, sl, 0x3FF00058) & (1u << 16), 0);
    return;
  }
  case ESIM_CHIP_ESP32: {
    const uint32_t w1 = rreg(h, sl, 0x3FF5A004), w2 = rreg(h, sl, 0x3FF5A008);
    const uint32_t w3 = rreg(h, sl, 0x3FF5A00C), w5 = rreg(h, sl, 0x3FF5A014);
    const uint32_t apb = rreg(h, sl, 0x3FF6607C);
    d->mac[0] = (uint8_t)(w2 >> 8), d->mac[1] = (uint8_t)w2;
    for (int i = 0; i < 4; i++) d->mac[2 + i] = (uint8_t)(w1 >> (24 - 8 * i));
    const unsigned code = ((apb >> 31) & 1) << 2 | ((w5 >> 20) & 1) << 1 | ((w3 >> 15) & 1);
    d->major = code == 0 ? 0 : code == 1 ? 1 : code == 3 ? 2 : code == 7 ? 3 : -1;
    d->minor = (int)((w5 >> 24) & 3);
    d->pkg = (int)(((w3 >> 9) & 7) + (((w3 >> 2) & 1) << 3));
    d->crypt_cnt = (int)((rreg(h, sl, 0x3FF5A000) >> 20) & 0x7F);
    d->secure_boot = (rreg(h, sl, 0x3FF5A018) >> 4) & 1;
    return;
  }
  case ESIM_CHIP_ESP32S2:
    a = rreg(h, sl, 0x3F41A044), b = rreg(h, sl, 0x3F41A048), w = rreg(h, sl, 0x3F41A050);
    d->major = (int)((w >> 18) & 3);
    d->minor = (int)(((w >> 20) & 1) << 3 | ((rreg(h, sl, 0x3F41A054) >> 4) & 7));
    d->pkg = (int)(((w >> 21) & 0xF) + 100 * ((w >> 28) & 0xF));
    d->crypt_cnt = (int)((rreg(h, sl, 0x3F41A034) >> 18) & 7);
    d->secure_boot = (rreg(h, sl, 0x3F41A038) >> 20) & 1;
    break;
  case ESIM_CHIP_ESP32S3:
  case ESIM_CHIP_ESP32C3: {
    const uint32_t base = id == ESIM_CHIP_ESP32S3 ? 0x60007000 : 0x60008800;
    a = rreg(h, sl, base + 0x44), b = rreg(h, sl, base + 0x48);
    const uint32_t w3 = rreg(h, sl, base + 0x44 + 12), w5 = rreg(h, sl, base + 0x44 + 20);
    d->major = (int)((w5 >> 24) & 3);
    d->minor = (int)(((w5 >> 23) & 1) << 3 | ((w3 >> 18) & 7));
    d->pkg = (int)((w3 >> 21) & 7);
    d->crypt_cnt = (int)((rreg(h, sl, base + 0x34) >> 18) & 7);
    d->secure_boot = (rreg(h, sl, base + 0x38) >> 20) & 1;
    break;
  }
  case ESIM_CHIP_ESP32C2:
    a = rreg(h, sl, 0x60008840), b = rreg(h, sl, 0x60008844);
    d->major = (int)((b >> 20) & 3);
    d->minor = (int)((b >> 16) & 0xF);
    d->pkg = (int)((b >> 22) & 7);
    d->crypt_cnt = (int)((rreg(h, sl, 0x60008830) >> 7) & 7);
    d->secure_boot = (rreg(h, sl, 0x60008830) >> 21) & 1;
    break;
  case ESIM_CHIP_ESP32C5:
  case ESIM_CHIP_ESP32C61:
    a = rreg(h, sl, 0x600B4844), b = rreg(h, sl, 0x600B4848), w = rreg(h, sl, 0x600B4844 + 8);
    d->major = (int)((w >> 4) & 3);
    d->minor = (int)(w & 0xF);
    d->pkg = (int)((w >> 26) & 7);
    if (id == ESIM_CHIP_ESP32C5) {
      d->crypt_cnt = (int)((rreg(h, sl, 0x600B4834) >> 16) & 7);
      d->secure_boot = (rreg(h, sl, 0x600B4838) >> 25) & 1;
    } else {
      d->crypt_cnt = (int)((rreg(h, sl, 0x600B4830) >> 23) & 7);
      d->secure_boot = (rreg(h, sl, 0x600B4834) >> 26) & 1;
    }
    break;
  case ESIM_CHIP_ESP32C6:
  case ESIM_CHIP_ESP32H2:
    a = rreg(h, sl, 0x600B0844), b = rreg(h, sl, 0x600B0848), w = rreg(h, sl, 0x600B0844 + 12);
    if (id == ESIM_CHIP_ESP32C6) {
      d->major = (int)((w >> 22) & 3);
      d->minor = (int)((w >> 18) & 0xF);
      d->pkg = (int)((w >> 24) & 7);
    } else {
      d->major = (int)((w >> 21) & 3);
      d->minor = (int)((w >> 18) & 7);
      d->pkg = (int)(rreg(h, sl, 0x600B0844 + 16) & 7);
    }
    d->crypt_cnt = (int)((rreg(h, sl, 0x600B0834) >> 18) & 7);
    d->secure_boot = (rreg(h, sl, 0x600B0838) >> 20) & 1;
    break;
  case ESIM_CHIP_ESP32P4:
    a = rreg(h, sl, 0x5012D044), b = rreg(h, sl, 0x5012D048), w = rreg(h, sl, 0x5012D044 + 8);
    d->major = (int)(((w >> 23) & 1) << 2 | ((w >> 4) & 3));
    d->minor = (int)(w & 0xF);
    d->pkg = (int)((w >> 20) & 7);
    d->crypt_cnt = (int)((rreg(h, sl, 0x5012D034) >> 18) & 7);
    d->secure_boot = (rreg(h, sl, 0x5012D038) >> 20) & 1;
    break;
  case ESIM_CHIP__COUNT:
  default:
    fail();
    return;
  }
  d->mac[0] = (uint8_t)(b >> 8), d->mac[1] = (uint8_t)b;
  for (int i = 0; i < 4; i++) d->mac[2 + i] = (uint8_t)(a >> (24 - 8 * i));
}

/* ------------------------------------------------------------- tests */

static void test_identity_every_chip(void **s) {
  (void)s;
  for (size_t i = 0; i < NCHIPS; i++) {
    const chip_expect *e = &chips[i];
    th h;
    chip_init(&h, e->id, NULL);
    th_sync(&h, e->status_len);
    assert_int_equal(rreg(&h, e->status_len, 0x40001000), e->magic);
    decoded d;
    esptool_decode(&h, e->id, e->status_len, &d);
    static const uint8_t want_mac[6] = {0x7c, 0xdf, 0xa1, 0x12, 0x34, 0x56};
    if (memcmp(d.mac, want_mac, 6))
      fail_msg("%s: MAC %02x:%02x:%02x:%02x:%02x:%02x", esim_chip_name(e->id), d.mac[0], d.mac[1], d.mac[2],
               d.mac[3], d.mac[4], d.mac[5]);
    if (e->id != ESIM_CHIP_ESP8266) {
      if (d.major != e->major || d.minor != e->minor)
        fail_msg("%s: revision v%d.%d, want v%d.%d", esim_chip_name(e->id), d.major, d.minor, e->major, e->minor);
      assert_int_equal(d.pkg, 0);
      assert_int_equal(d.crypt_cnt, 0);
      assert_int_equal(d.secure_boot, 0);
    }
    /* The crystal esptool sees: estimated from UART_CLKDIV at 115200
     * (loader.py get_crystal_freq buckets), or the chip's fixed value. */
    esim_dev_info info;
    esim_dev_get_info(h.dev, &info);
    assert_int_equal(info.crystal_mhz, e->xtal);
    if (e->clkdiv_reg) {
      const double est = 115200.0 * (rreg(&h, e->status_len, e->clkdiv_reg) & 0xFFFFF) / 1e6 / e->clk_divider;
      const int bucket = est > 45 ? 48 : est > 33 ? 40 : 26;
      if (bucket != e->xtal) fail_msg("%s: crystal estimate %.2f MHz -> %d", esim_chip_name(e->id), est, bucket);
    }
    /* GET_SECURITY_INFO */
    uint8_t pkt[64];
    th_send_pkt(&h, pkt, eg_req_simple(pkt, EG_OP_GET_SECURITY_INFO));
    if (e->sec_len == 0) {
      /* the ROM lacks it: "invalid message" in the previous reply's header, 8 times */
      for (int k = 0; k < 8; k++) {
        th_frame *f = th_next(&h);
        assert_int_equal(f->n, 8 + e->status_len);
        assert_int_equal(f->p[1], EG_OP_READ_REG);
        assert_int_equal(f->p[8], 1);
        assert_int_equal(f->p[9], 5);
      }
    } else {
      eg_resp r = th_reply(&h, EG_OP_GET_SECURITY_INFO, 4, e->sec_len);
      assert_true(r.ok);
      assert_int_equal(r.data_len, e->sec_len);
      assert_int_equal(eg_get_u32(r.data), 0); /* flags */
      assert_int_equal(r.data[4], 0);          /* crypt count */
      if (e->sec_len == 20) assert_int_equal(eg_get_u32(r.data + 12), e->chip_id);
    }
    assert_int_equal(th_pending(&h), 0);
    th_free(&h);
  }
}

/* RDID (9Fh) through the chip's SPI1 registers, as esptool's
 * run_spiflash_command does it (loader.py:1886-1991). */
static uint32_t rdid(th *h, const chip_expect *e) {
  const size_t sl = e->status_len;
  const uint32_t b = e->spi_base;
  const uint32_t usr = e->layout == 2 ? 0x18 : 0x1C, usr2 = e->layout == 2 ? 0x20 : 0x24;
  const uint32_t w0 = e->layout == 0 ? 0x40 : e->layout == 1 ? 0x80 : 0x58;
  if (e->layout == 0) wreg(h, sl, b + 0x20, 23u << 8); /* ESP8266: MISO bit length in USR1 */
  else wreg(h, sl, b + (e->layout == 2 ? 0x28 : 0x2C), 23);
  wreg(h, sl, b + usr, 0x90000000);
  wreg(h, sl, b + usr2, 0x7000009F);
  wreg(h, sl, b + w0, 0);
  wreg(h, sl, b, 1u << 18);
  assert_int_equal(rreg(h, sl, b) & (1u << 18), 0);
  return rreg(h, sl, b + w0) & 0xFFFFFF;
}

static void test_flash_id_every_chip(void **s) {
  (void)s;
  for (size_t i = 0; i < NCHIPS; i++) {
    const chip_expect *e = &chips[i];
    th h;
    chip_init(&h, e->id, NULL);
    th_sync(&h, e->status_len);
    /* before the flash is attached MISO floats high */
    assert_int_equal(rdid(&h, e), 0xFFFFFF);
    uint8_t pkt[64];
    if (e->id == ESIM_CHIP_ESP8266) {
      /* esptool: the ESP8266 ROM attaches on FLASH_BEGIN(0, 0) (esp8266.py:114-120) */
      th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0, 0, 0x400, 0, false, 0));
      th_expect_ok(&h, EG_OP_FLASH_BEGIN, 2);
    } else {
      th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true));
      th_expect_ok(&h, EG_OP_SPI_ATTACH, 4);
    }
    if (rdid(&h, e) != 0x1640C8) fail_msg("%s: RDID 0x%06x", esim_chip_name(e->id), rdid(&h, e));
    th_free(&h);
  }
}

static void load_stub(th *h, size_t sl, uint32_t text, uint32_t data, uint32_t entry) {
  uint8_t seg[256];
  memset(seg, 0x5A, sizeof seg);
  uint8_t pkt[1024];
  const uint32_t addr[2] = {text, data};
  for (int k = 0; k < 2; k++) {
    th_send_pkt(h, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, sizeof seg, 1, 0x1800, addr[k], false, 0));
    th_expect_ok(h, EG_OP_MEM_BEGIN, sl);
    th_send_pkt(h, pkt, eg_req_data(pkt, EG_OP_MEM_DATA, 0, seg, sizeof seg, 0));
    th_expect_ok(h, EG_OP_MEM_DATA, sl);
  }
  th_send_pkt(h, pkt, eg_req_mem_end(pkt, entry));
  th_expect_ok(h, EG_OP_MEM_END, sl);
  th_frame *f = th_next(h);
  assert_int_equal(f->n, 4);
  assert_memory_equal(f->p, "OHAI", 4);
}

static void test_stub_sets_every_chip(void **s) {
  (void)s;
  for (size_t i = 0; i < NCHIPS; i++) {
    const chip_expect *e = &chips[i];
    for (int set = 1; set <= 2; set++) {
      if (set == 1 && !e->s1_text) continue; /* C61 has no set-1 stub */
      th h;
      chip_init(&h, e->id, NULL);
      th_sync(&h, e->status_len);
      if (set == 1) load_stub(&h, e->status_len, e->s1_text, e->s1_data, e->s1_entry);
      else load_stub(&h, e->status_len, e->s2_text, e->s2_data, e->s2_entry);
      const esim_stub_flavour want = set == 1 ? ESIM_STUB_LEGACY : ESIM_STUB_NEW;
      if (esim_dev_stub(h.dev) != want)
        fail_msg("%s set %d: stub %s", esim_chip_name(e->id), set, esim_stub_name(esim_dev_stub(h.dev)));
      /* the stub answers SYNC with value 0, 2 status bytes */
      th_sync(&h, 2);
      uint8_t pkt[64];
      th_send_pkt(&h, pkt, eg_req_simple(pkt, EG_OP_GET_SECURITY_INFO));
      if (e->sec_len) {
        eg_resp r = th_reply(&h, EG_OP_GET_SECURITY_INFO, 2, e->sec_len);
        assert_true(r.ok);
        if (e->sec_len == 20) assert_int_equal(eg_get_u32(r.data + 12), e->chip_id);
      } else {
        eg_resp r = th_reply(&h, EG_OP_GET_SECURITY_INFO, 2, 0);
        assert_false(r.ok);
      }
      th_free(&h);
    }
  }
}

/* esptool-js 0.7.0 ships its own esp-flasher-stub build: same text_start,
 * other data_start/entry; it must start NS too. */
static void test_esptool_js_stub_addresses(void **s) {
  (void)s;
  static const struct {
    esim_chip_id id;
    uint32_t text, data, entry;
  } js[] = {{ESIM_CHIP_ESP32, 0x400a8000, 0x3ffded6c, 0x400a902c}, {ESIM_CHIP_ESP32S2, 0x40028000, 0x3ffe2dc0, 0x400290a4},
            {ESIM_CHIP_ESP32C3, 0x40380000, 0x3fc96d68, 0x40380e9a}, {ESIM_CHIP_ESP32P4, 0x4ff10000, 0x4ff62db8, 0x4ff11456},
            {ESIM_CHIP_ESP8266, 0x4010c500, 0x3fffae6c, 0x4010c504}, {ESIM_CHIP_ESP32C5, 0x40800000, 0x40852f0c, 0x408015d2}};
  for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
    th h;
    chip_init(&h, js[i].id, NULL);
    const size_t sl = js[i].id == ESIM_CHIP_ESP8266 ? 2 : 4;
    load_stub(&h, sl, js[i].text, js[i].data, js[i].entry);
    assert_int_equal(esim_dev_stub(h.dev), ESIM_STUB_NEW);
    th_free(&h);
  }
}

static void xtal26(esim_dev_opts *o) { o->crystal_mhz = 26; }
static void c5_48_40(esim_dev_opts *o) {
  o->crystal_mhz = 48;
  o->rom_xtal_mhz = 40;
}

/* The ROM's new rate after CHANGE_BAUDRATE(value). */
static uint32_t rom_baud_after(th *h, uint32_t value) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_change_baud(pkt, value, 0));
  th_expect_ok(h, EG_OP_CHANGE_BAUDRATE, 4);
  th_run(h);
  return esim_dev_baud(h->dev);
}

static bool near(uint32_t got, uint32_t want) { return got > want * 0.98 && got < want * 1.02; }

static void test_rom_baud_quirks(void **s) {
  (void)s;
  th h;
  /* C2 with a 26 MHz crystal: its ROM believes 40 MHz, esptool sends
   * baud * 40 // 26 (esp32c2.py:127-147) */
  chip_init(&h, ESIM_CHIP_ESP32C2, xtal26);
  th_sync(&h, 4);
  const double est = 115200.0 * (rreg(&h, 4, 0x60000014) & 0xFFFFF) / 1e6;
  assert_true(est < 33); /* esptool detects 26 MHz */
  assert_true(near(rom_baud_after(&h, 460800u * 40 / 26), 460800));
  th_free(&h);
  chip_init(&h, ESIM_CHIP_ESP32C2, xtal26);
  th_sync(&h, 4);
  const uint32_t plain = rom_baud_after(&h, 460800);
  assert_false(near(plain, 460800)); /* without the compensation: 460800 x 26/40 */
  assert_true(near(plain, 460800u * 26 / 40));
  th_free(&h);
  /* C5: detected 48 MHz, ROM expects 40 (PCR_SYSCLK_CONF [30:24]):
   * esptool sends baud * 40 // 48 (esp32c5.py:137-178) */
  chip_init(&h, ESIM_CHIP_ESP32C5, c5_48_40);
  th_sync(&h, 4);
  assert_int_equal((rreg(&h, 4, 0x60096110) >> 24) & 0x7F, 40);
  const double est5 = 115200.0 * (rreg(&h, 4, 0x60000014) & 0xFFFFF) / 1e6;
  assert_true(est5 > 45);
  assert_true(near(rom_baud_after(&h, 921600u * 40 / 48), 921600));
  th_free(&h);
  /* a chip without a quirk: the value is the rate */
  chip_init(&h, ESIM_CHIP_ESP32S3, NULL);
  th_sync(&h, 4);
  assert_true(near(rom_baud_after(&h, 921600), 921600));
  th_free(&h);
}

/* ESP8266 ROM: 2 status bytes, no CHANGE_BAUDRATE/DEFL/MD5/SPI_ATTACH, the
 * erase-size bug that esptool's get_erase_size works around. */
static void test_esp8266_rom(void **s) {
  (void)s;
  th h;
  chip_init(&h, ESIM_CHIP_ESP8266, NULL);
  th_sync(&h, 2);
  const uint8_t ops[] = {EG_OP_CHANGE_BAUDRATE, EG_OP_FLASH_DEFL_BEGIN, EG_OP_SPI_FLASH_MD5, EG_OP_SPI_ATTACH,
                         EG_OP_SPI_SET_PARAMS, EG_OP_GET_SECURITY_INFO};
  for (size_t i = 0; i < sizeof ops; i++) {
    uint8_t pkt[64];
    uint8_t data[24];
    memset(data, 0, sizeof data);
    th_send_pkt(&h, pkt, eg_req(pkt, ops[i], data, sizeof data, 0));
    for (int k = 0; k < 8; k++) {
      th_frame *f = th_next(&h);
      assert_int_equal(f->n, 10);
      assert_int_equal(f->p[8], 1);
      assert_int_equal(f->p[9], 5);
    }
  }
  /* Fill 0x10000..0x40000 with data, then write 3 sectors at 0x11000 the
   * esptool way: erase size from get_erase_size, exactly the 3 sectors go. */
  size_t fsz;
  uint8_t *fl = (uint8_t *)esim_dev_flash(h.dev, &fsz);
  memset(fl + 0x10000, 0x00, 0x30000);
  /* esptool get_erase_size(0x11000, 0x3000): 3 sectors, head 15 ->
   * 3 < 30 -> (3+1)//2 = 2 sectors; the ROM erases 2 x 2 = 4. */
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 2 * 0x1000, 3, 0x400, 0x11000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 2);
  for (uint32_t a = 0x11000; a < 0x15000; a++)
    if (fl[a] != 0xFF) fail_msg("ESP8266 erase: 0x%x not erased", a);
  assert_int_equal(fl[0x10FFF], 0x00);
  assert_int_equal(fl[0x15000], 0x00);
  /* the plain size (3 sectors) erases 6: the bug esptool works around */
  memset(fl + 0x10000, 0x00, 0x30000);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 3 * 0x1000, 3, 0x400, 0x11000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 2);
  assert_int_equal(fl[0x16FFF], 0xFF);
  assert_int_equal(fl[0x17000], 0x00);
  /* aligned, many sectors: get_erase_size(0x20000, 0x20000) = 32 - 16 =
   * 16 sectors; the ROM erases head (16) + 16 = 32 */
  memset(fl + 0x10000, 0x00, 0x30000);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 16 * 0x1000, 32, 0x1000, 0x20000, false, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 2);
  assert_int_equal(fl[0x1FFFF], 0x00);
  assert_int_equal(fl[0x20000], 0xFF);
  assert_int_equal(fl[0x3FFFF], 0xFF);
  assert_int_equal(fl[0x40000], 0xFF); /* beyond the region we dirtied */
  th_free(&h);
}

static void test_banners(void **s) {
  (void)s;
  for (size_t i = 0; i < NCHIPS; i++) {
    const chip_expect *e = &chips[i];
    th h;
    chip_init(&h, e->id, NULL);
    esim_dev_reset(h.dev, h.t, true);
    th_run(&h);
    if (!strstr((char *)h.noise, e->banner))
      fail_msg("%s: banner '%s' lacks '%s'", esim_chip_name(e->id), h.noise, e->banner);
    /* esptool looks for "boot:0x" (or the ESP8266's "boot mode:") and "waiting for download" */
    if (e->id != ESIM_CHIP_ESP8266) {
      assert_non_null(strstr((char *)h.noise, "waiting for download"));
      assert_non_null(strstr((char *)h.noise, "boot:0x"));
    }
    th_free(&h);
  }
}

/* The ESP8266 and the C2 with 26 MHz print their boot log at 74880: a
 * host at 115200 reads garbage (a well-known sight). */
static void test_banner_rate(void **s) {
  (void)s;
  th h;
  chip_init(&h, ESIM_CHIP_ESP8266, NULL);
  esim_dev_reset(h.dev, h.t, true);
  th_run_until(&h, h.t + 1000);
  assert_int_equal(esim_dev_baud(h.dev), 74880);
  th_free(&h);
  chip_init(&h, ESIM_CHIP_ESP32C2, xtal26);
  esim_dev_reset(h.dev, h.t, true);
  th_run_until(&h, h.t + 1000);
  assert_int_equal(esim_dev_baud(h.dev), 74880);
  th_free(&h);
  chip_init(&h, ESIM_CHIP_ESP32C3, NULL);
  esim_dev_reset(h.dev, h.t, true);
  th_run_until(&h, h.t + 1000);
  assert_int_equal(esim_dev_baud(h.dev), 115200);
  th_free(&h);
}

static void test_option_checks(void **s) {
  (void)s;
  esim_dev_opts o;
  char err[200];
  esim_dev_opts_default(&o);
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_OK);
  o.chip = ESIM_CHIP_ESP32H2;
  o.crystal_mhz = 40;
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_INVAL);
  assert_non_null(strstr(err, "32 MHz"));
  esim_dev_opts_default(&o);
  o.sec.secure_download = true;
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_INVAL);
  assert_non_null(strstr(err, "Secure Download"));
  esim_dev *d = NULL;
  assert_int_equal(esim_dev_new(&d, &o), EG_INVAL);
  esim_dev_opts_default(&o);
  o.chip = ESIM_CHIP_ESP32C2;
  o.port = ESIM_PORT_USB_JTAG;
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_INVAL);
  o.chip = ESIM_CHIP_ESP32C3;
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_OK);
  o.port = ESIM_PORT_USB_OTG;
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_INVAL);
  o.chip = ESIM_CHIP_ESP32S3;
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_OK);
  o.sec.flash_crypt_cnt = 8; /* 3 bits */
  assert_int_equal(esim_dev_opts_check(&o, err, sizeof err), EG_INVAL);
  /* settings from text */
  esim_dev_opts_default(&o);
  assert_int_equal(esim_setting_apply(&o, "chip", "ESP32-C6", err, sizeof err), 1);
  assert_int_equal(o.chip, ESIM_CHIP_ESP32C6);
  assert_int_equal(esim_setting_apply(&o, "revision", "v0.2", err, sizeof err), 1);
  assert_int_equal(o.rev_major, 0);
  assert_int_equal(o.rev_minor, 2);
  assert_int_equal(esim_setting_apply(&o, "port", "usb-serial-jtag", err, sizeof err), 1);
  assert_int_equal(o.port, ESIM_PORT_USB_JTAG);
  assert_int_equal(esim_setting_apply(&o, "flash_encryption", "true", err, sizeof err), 1);
  assert_int_equal(o.sec.flash_crypt_cnt, 1);
  assert_int_equal(esim_setting_apply(&o, "md5_mismatch", NULL, err, sizeof err), 0);
  assert_int_equal(esim_setting_apply(&o, "chip", "esp32z9", err, sizeof err), -1);
  assert_non_null(strstr(err, "esp32z9"));
  assert_int_equal(esim_setting_apply(&o, "revision", "4.0", err, sizeof err), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identity_every_chip), cmocka_unit_test(test_flash_id_every_chip),
      cmocka_unit_test(test_stub_sets_every_chip), cmocka_unit_test(test_esptool_js_stub_addresses),
      cmocka_unit_test(test_rom_baud_quirks),     cmocka_unit_test(test_esp8266_rom),
      cmocka_unit_test(test_banners),             cmocka_unit_test(test_banner_rate),
      cmocka_unit_test(test_option_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
