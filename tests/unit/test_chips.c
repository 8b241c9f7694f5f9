/* test_chips.c - the chip table (src/chips.c): lookups, image-header codes,
 * flash size from JEDEC IDs, and the ESP32 eFuse decoding, checked against
 * what esptool v5.3.1 printed for the ESP32 in rom-flash-id.trace:
 *   READ_REG 0x3FF5A00C (word3) = 0x00008000   READ_REG 0x3FF5A014 (word5) = 0x00100000
 *   READ_REG 0x3FF6607C (APB_CTL_DATE) = 0x96042000
 *   -> "Chip type: ESP32-D0WDQ6-V3 (revision v3.0)"
 *   READ_REG 0x3FF40014 (UART_CLKDIV) = 0x0000015A at 115200 -> "Crystal frequency: 40MHz"
 *   READ_REG 0x3FF5A008 (word2) = 0x00BE240A, 0x3FF5A004 (word1) = 0xC4000001
 *   -> "MAC: 24:0a:c4:00:00:01"
 *   RDID via SPI W0 = 0x001640C8 -> "Manufacturer: c8", "Device: 4016", "4MB"
 *   SPI_ATTACH argument 0 (all SPI pad eFuses zero). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chips.h"
#include "unit.h"

/* Fail with the name of the chip each side points to. */
#define CHIP_EQ(got, want_id)                                                                     \
  do {                                                                                            \
    const eg_chip *g_ = (got);                                                                    \
    const eg_chip *w_ = eg_chip_get(want_id);                                                     \
    if (g_ != w_) fail_msg("got %s, want %s", g_ ? g_->name : "NULL", w_ ? w_->name : "NULL");    \
  } while (0)
#define CHIP_NULL(got)                                          \
  do {                                                          \
    const eg_chip *g_ = (got);                                  \
    if (g_) fail_msg("got %s, want NULL", g_->name);            \
  } while (0)

/* ------------------------------------------------------------ lookups */

static void test_by_name(void **state) {
  (void)state;
  CHIP_EQ(eg_chip_by_name("esp32"), EG_CHIP_ESP32);
  CHIP_EQ(eg_chip_by_name("ESP32"), EG_CHIP_ESP32);
  CHIP_EQ(eg_chip_by_name("Esp32"), EG_CHIP_ESP32);
  CHIP_EQ(eg_chip_by_name("esp32-s3"), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_name("ESP32-S3"), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_name("esp32s3"), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_name("ESP32S3"), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_name("esp32_s3"), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_name("esp32-s2"), EG_CHIP_ESP32S2);
  CHIP_EQ(eg_chip_by_name("ESP32-C3"), EG_CHIP_ESP32C3);
  CHIP_EQ(eg_chip_by_name("esp32c2"), EG_CHIP_ESP32C2);
  CHIP_EQ(eg_chip_by_name("esp32-c6"), EG_CHIP_ESP32C6);
  CHIP_EQ(eg_chip_by_name("ESP32H2"), EG_CHIP_ESP32H2);
  CHIP_EQ(eg_chip_by_name("esp8266"), EG_CHIP_ESP8266);
  CHIP_EQ(eg_chip_by_name("ESP8266"), EG_CHIP_ESP8266);
  /* Every chip by both of its names. */
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = eg_chip_get((eg_chip_id)i);
    CHIP_EQ(eg_chip_by_name(c->name), i);
    CHIP_EQ(eg_chip_by_name(c->arg_name), i);
  }
  /* Not chips (or chips espgang does not know). */
  const char *bad[] = {"", "esp", "esp3", "esp32s", "esp32s33", "esp32-s", "esp32p4", "ESP32-P4", "esp32c5",
                       "esp32c61", "esp32h4", "esp8285", "esp32 ", " esp32", "auto", "esp32s2x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const eg_chip *c = eg_chip_by_name(bad[i]);
    if (c) fail_msg("\"%s\" matched %s", bad[i], c->name);
  }
  CHIP_NULL(eg_chip_by_name(NULL));
}

/* Only letters compare without case: control characters that differ from a
 * digit by bit 5 are not that digit ("esp\x13\x12" is not "esp32"). */
static void test_by_name_exact_bytes(void **state) {
  (void)state;
  CHIP_NULL(eg_chip_by_name("esp\x13\x12"));
  CHIP_NULL(eg_chip_by_name("ESP\x13\x12-\x13\x13"));
  CHIP_NULL(eg_chip_by_name("esp32s\x13"));
  CHIP_NULL(eg_chip_by_name("esp32\x7f"));
  CHIP_NULL(eg_chip_by_name("\x05sp32"));
  CHIP_NULL(eg_chip_by_name("esp32c\x16"));
}

static void test_by_magic(void **state) {
  (void)state;
  /* Every magic value of the protocol doc's §4.1 table. */
  static const struct { uint32_t magic; eg_chip_id id; } known[] = {
    {0xFFF0C101u, EG_CHIP_ESP8266}, {0x00F01D83u, EG_CHIP_ESP32},   {0x000007C6u, EG_CHIP_ESP32S2},
    {0x00000009u, EG_CHIP_ESP32S3}, {0x6921506Fu, EG_CHIP_ESP32C3}, {0x1B31506Fu, EG_CHIP_ESP32C3},
    {0x4881606Fu, EG_CHIP_ESP32C3}, {0x4361606Fu, EG_CHIP_ESP32C3}, {0x6F51306Fu, EG_CHIP_ESP32C2},
    {0x7C41A06Fu, EG_CHIP_ESP32C2}, {0x0C21E06Fu, EG_CHIP_ESP32C2}, {0x2CE0806Fu, EG_CHIP_ESP32C6},
    {0xD7B73E80u, EG_CHIP_ESP32H2},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) CHIP_EQ(eg_chip_by_magic(known[i].magic), known[i].id);
  /* The doc's chips espgang's table does not carry (C5, C61, P4's
   * unreliable values) and values no ROM returns. */
  const uint32_t unknown[] = {0x1101406Fu, 0x5FD1406Fu, 0x7211606Fu, 0x00000000u, 0x0ADDBAD0u,
                              0xFFFFFFFFu, 0x00F01D82u, 0x00000008u, 0x000007C7u};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const eg_chip *c = eg_chip_by_magic(unknown[i]);
    if (c) fail_msg("magic 0x%08x matched %s", unknown[i], c->name);
  }
  /* The value the ROM returned in the trace: READ_REG 0x40001000 -> 83 1d f0 00. */
  CHIP_EQ(eg_chip_by_magic(0x00F01D83u), EG_CHIP_ESP32);
}

static void test_by_chip_id(void **state) {
  (void)state;
  CHIP_EQ(eg_chip_by_chip_id(0), EG_CHIP_ESP32);
  CHIP_EQ(eg_chip_by_chip_id(2), EG_CHIP_ESP32S2);
  CHIP_EQ(eg_chip_by_chip_id(9), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_chip_id(5), EG_CHIP_ESP32C3);
  CHIP_EQ(eg_chip_by_chip_id(12), EG_CHIP_ESP32C2);
  CHIP_EQ(eg_chip_by_chip_id(13), EG_CHIP_ESP32C6);
  CHIP_EQ(eg_chip_by_chip_id(16), EG_CHIP_ESP32H2);
  const int unknown[] = {-1, -2, 1, 3, 4, 18, 20, 23, 255, 0x7FFFFFFF};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) CHIP_NULL(eg_chip_by_chip_id(unknown[i]));
  CHIP_NULL(eg_chip_get(EG_CHIP__COUNT));
  CHIP_NULL(eg_chip_get((eg_chip_id)-1));
}

/* ------------------------------------------------------------ table self-checks */

static void test_table_self_check(void **state) {
  (void)state;
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = eg_chip_get((eg_chip_id)i);
    assert_non_null(c);
    assert_int_equal(c->id, i);
    assert_non_null(c->name);
    assert_true(strlen(c->name) > 0);
    assert_non_null(c->arg_name);
    /* arg_name: lowercase letters and digits only, as stub files are named. */
    for (const char *p = c->arg_name; *p; p++)
      if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) fail_msg("%s: arg_name \"%s\"", c->name, c->arg_name);
    for (int j = 0; j < i; j++) {
      const eg_chip *o = eg_chip_get((eg_chip_id)j);
      if (strcmp(o->arg_name, c->arg_name) == 0) fail_msg("arg_name %s twice", c->arg_name);
      if (strcmp(o->name, c->name) == 0) fail_msg("name %s twice", c->name);
      if (c->chip_id >= 0 && o->chip_id == c->chip_id) fail_msg("chip_id %d: %s and %s", c->chip_id, o->name, c->name);
    }
    /* Magic values: present, and each leads back to this chip (unique). */
    assert_non_null(c->magic);
    assert_true(c->nmagic >= 1);
    for (size_t k = 0; k < c->nmagic; k++) CHIP_EQ(eg_chip_by_magic(c->magic[k]), i);
    if (c->chip_id >= 0) CHIP_EQ(eg_chip_by_chip_id(c->chip_id), i);
    /* Bootloader offset, status bytes, BEGIN's 5th word and GET_SECURITY_INFO:
     * ESP8266 and ESP32 ROMs are the old kind. */
    const bool old = i == EG_CHIP_ESP8266 || i == EG_CHIP_ESP32;
    if (c->bootloader_offset != 0 && c->bootloader_offset != 0x1000 && c->bootloader_offset != 0x2000)
      fail_msg("%s: bootloader offset 0x%x", c->name, c->bootloader_offset);
    assert_int_equal(c->rom_status_len, i == EG_CHIP_ESP8266 ? 2 : 4);
    assert_int_equal(c->rom_begin_encrypt_word, !old);
    assert_int_equal(c->rom_has_security_info, !old);
    assert_int_equal(c->rom_write_block, 0x400);
    assert_int_equal(c->stub_write_block, 0x4000);
    assert_int_equal(c->ram_block, 0x1800);
    assert_true(c->xtal_clk_divider == 1 || c->xtal_clk_divider == 2);
    assert_true(c->uart_clkdiv_reg != 0);
    /* SPI1 registers: inside the block, CMD at its base, distinct, W0 last. */
    const eg_spi_regs *s = &c->spi;
    assert_int_equal(s->cmd, s->base);
    const uint32_t regs[] = {s->addr, s->usr, s->usr1, s->usr2, s->w0};
    for (size_t k = 0; k < sizeof regs / sizeof regs[0]; k++) {
      if (regs[k] <= s->base || regs[k] >= s->base + 0x100 || regs[k] % 4)
        fail_msg("%s: SPI register 0x%08x outside base 0x%08x", c->name, regs[k], s->base);
      for (size_t m = 0; m < k; m++) assert_int_not_equal(regs[k], regs[m]);
      if (k + 1 < sizeof regs / sizeof regs[0]) assert_true(regs[k] < s->w0);
    }
    if (i == EG_CHIP_ESP8266) {
      assert_int_equal(s->mosi_dlen, 0);
      assert_int_equal(s->miso_dlen, 0);
    } else {
      assert_true(s->mosi_dlen > s->usr2 && s->mosi_dlen < s->w0);
      assert_int_equal(s->miso_dlen, s->mosi_dlen + 4);
    }
    /* Header tables: sizes only in the high nibble, frequencies in the low. */
    assert_true(c->nflash_sizes > 0 && c->nflash_freqs > 0);
    for (size_t k = 0; k < c->nflash_sizes; k++) {
      assert_int_equal(c->flash_sizes[k].code & 0x0F, 0);
      assert_true(eg_flash_size_bytes(c->flash_sizes[k].name) > 0);
      for (size_t m = 0; m < k; m++) assert_string_not_equal(c->flash_sizes[k].name, c->flash_sizes[m].name);
    }
    for (size_t k = 0; k < c->nflash_freqs; k++) {
      assert_true(c->flash_freqs[k].code <= 0x0F);
      for (size_t m = 0; m < k; m++) assert_string_not_equal(c->flash_freqs[k].name, c->flash_freqs[m].name);
    }
    assert_int_not_equal(eg_chip_size_code(c, "4MB"), -1);
    /* The MAC lives in the eFuse block when it is decoded. */
    if (c->efuse_base) assert_true(c->mac_reg >= c->efuse_base && c->mac_reg < c->efuse_base + 0x100);
  }
}

/* The ESP32 registers esptool touched in rom-flash-id.trace. */
static void test_esp32_registers(void **state) {
  (void)state;
  const eg_chip *c = eg_chip_get(EG_CHIP_ESP32);
  assert_string_equal(c->name, "ESP32");
  assert_string_equal(c->arg_name, "esp32");
  assert_int_equal(c->bootloader_offset, 0x1000);
  assert_int_equal(c->uart_clkdiv_reg, 0x3FF40014u);
  assert_int_equal(c->spi.cmd, 0x3FF42000u);
  assert_int_equal(c->spi.addr, 0x3FF42004u);
  assert_int_equal(c->spi.usr, 0x3FF4201Cu);
  assert_int_equal(c->spi.usr1, 0x3FF42020u);
  assert_int_equal(c->spi.usr2, 0x3FF42024u);
  assert_int_equal(c->spi.mosi_dlen, 0x3FF42028u);
  assert_int_equal(c->spi.miso_dlen, 0x3FF4202Cu);
  assert_int_equal(c->spi.w0, 0x3FF42080u);
  assert_int_equal(c->efuse_base, 0x3FF5A000u);
  assert_int_equal(c->mac_reg, EG_ESP32_EFUSE_WORD(1));
  assert_int_equal(EG_ESP32_EFUSE_WORD(3), 0x3FF5A00Cu);
  assert_int_equal(EG_ESP32_EFUSE_WORD(5), 0x3FF5A014u);
  /* S2 and later use the other SPI layout (§5.1). */
  const eg_chip *s3 = eg_chip_get(EG_CHIP_ESP32S3);
  assert_int_equal(s3->spi.usr, 0x60002018u);
  assert_int_equal(s3->spi.miso_dlen, 0x60002028u);
  assert_int_equal(s3->spi.w0, 0x60002058u);
  const eg_chip *e8266 = eg_chip_get(EG_CHIP_ESP8266);
  assert_int_equal(e8266->spi.w0, 0x60000240u);
  assert_int_equal(e8266->xtal_clk_divider, 2);
}

/* ------------------------------------------------------------ header codes */

static void test_header_codes(void **state) {
  (void)state;
  const eg_chip *c = eg_chip_get(EG_CHIP_ESP32);
  /* ESP32, dio / 80m / 4MB: byte 2 = 0x02, byte 3 = 0x2F. */
  const int mode = eg_flash_mode_code("dio");
  const int size = eg_chip_size_code(c, "4MB"), freq = eg_chip_freq_code(c, "80m");
  assert_int_equal(mode, 0x02);
  assert_int_equal(size | freq, 0x2F);
  /* The rest of the ESP32 tables (esptool targets/esp32.py). */
  static const struct { const char *n; int code; } sizes[] = {
    {"1MB", 0x00}, {"2MB", 0x10}, {"4MB", 0x20}, {"8MB", 0x30}, {"16MB", 0x40},
    {"32MB", 0x50}, {"64MB", 0x60}, {"128MB", 0x70}, {"256KB", -1}, {"512KB", -1},
    {"256MB", -1}, {"3MB", -1}, {"", -1}, {"keep", -1}, {"detect", -1},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (eg_chip_size_code(c, sizes[i].n) != sizes[i].code)
      fail_msg("ESP32 size %s: got %d, want %d", sizes[i].n, eg_chip_size_code(c, sizes[i].n), sizes[i].code);
  assert_int_equal(eg_chip_size_code(c, NULL), -1);
  assert_int_equal(eg_chip_size_code(c, "4mb"), 0x20); /* names compare without case */
  static const struct { const char *n; int code; } freqs[] = {
    {"80m", 0xF}, {"40m", 0x0}, {"26m", 0x1}, {"20m", 0x2}, {"60m", -1}, {"48m", -1}, {"80", -1},
  };
  for (size_t i = 0; i < sizeof freqs / sizeof freqs[0]; i++)
    if (eg_chip_freq_code(c, freqs[i].n) != freqs[i].code)
      fail_msg("ESP32 freq %s: got %d, want %d", freqs[i].n, eg_chip_freq_code(c, freqs[i].n), freqs[i].code);
  assert_int_equal(eg_chip_freq_code(c, NULL), -1);

  /* Other chips' tables differ. */
  const eg_chip *e8266 = eg_chip_get(EG_CHIP_ESP8266);
  assert_int_equal(eg_chip_size_code(e8266, "512KB"), 0x00);
  assert_int_equal(eg_chip_size_code(e8266, "256KB"), 0x10);
  assert_int_equal(eg_chip_size_code(e8266, "1MB"), 0x20);
  assert_int_equal(eg_chip_size_code(e8266, "4MB"), 0x40);
  assert_int_equal(eg_chip_size_code(e8266, "2MB-c1"), 0x50);
  assert_int_equal(eg_chip_size_code(e8266, "4MB-c1"), 0x60);
  assert_int_equal(eg_chip_size_code(e8266, "8MB"), 0x80);
  assert_int_equal(eg_chip_size_code(e8266, "16MB"), 0x90);
  assert_int_equal(eg_chip_size_code(e8266, "32MB"), -1);
  const eg_chip *c6 = eg_chip_get(EG_CHIP_ESP32C6);
  assert_int_equal(eg_chip_freq_code(c6, "80m"), 0x0); /* esptool's ROM MSPI workaround */
  assert_int_equal(eg_chip_freq_code(c6, "40m"), 0x0);
  assert_int_equal(eg_chip_freq_code(c6, "20m"), 0x2);
  assert_int_equal(eg_chip_freq_code(c6, "26m"), -1);
  const eg_chip *h2 = eg_chip_get(EG_CHIP_ESP32H2);
  assert_int_equal(eg_chip_freq_code(h2, "48m"), 0xF);
  assert_int_equal(eg_chip_freq_code(h2, "24m"), 0x0);
  assert_int_equal(eg_chip_freq_code(h2, "16m"), 0x1);
  assert_int_equal(eg_chip_freq_code(h2, "12m"), 0x2);
  assert_int_equal(eg_chip_freq_code(h2, "80m"), -1);
  const eg_chip *c2 = eg_chip_get(EG_CHIP_ESP32C2);
  assert_int_equal(eg_chip_freq_code(c2, "60m"), 0xF);
  assert_int_equal(eg_chip_freq_code(c2, "30m"), 0x0);
  assert_int_equal(eg_chip_freq_code(c2, "20m"), 0x1);
  assert_int_equal(eg_chip_freq_code(c2, "15m"), 0x2);
  const eg_chip *s3 = eg_chip_get(EG_CHIP_ESP32S3);
  assert_int_equal(eg_chip_size_code(s3, "16MB") | eg_chip_freq_code(s3, "40m"), 0x40);
}

static void test_flash_modes_and_sizes(void **state) {
  (void)state;
  static const char *const modes[] = {"qio", "qout", "dio", "dout"};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(eg_flash_mode_code(modes[i]), i);
    assert_string_equal(eg_flash_mode_name(i), modes[i]);
  }
  assert_int_equal(eg_flash_mode_code("DIO"), 2);
  assert_int_equal(eg_flash_mode_code("keep"), -1);
  assert_int_equal(eg_flash_mode_code("qi"), -1);
  assert_int_equal(eg_flash_mode_code(""), -1);
  assert_int_equal(eg_flash_mode_code(NULL), -1);
  assert_null(eg_flash_mode_name(4));
  assert_null(eg_flash_mode_name(-1));

  static const struct { const char *n; uint32_t bytes; } sizes[] = {
    {"256KB", 256u << 10}, {"512KB", 512u << 10}, {"1MB", 1u << 20}, {"2MB", 2u << 20},
    {"4MB", 4u << 20}, {"8MB", 8u << 20}, {"16MB", 16u << 20}, {"32MB", 32u << 20},
    {"64MB", 64u << 20}, {"128MB", 128u << 20}, {"256MB", 256u << 20},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    assert_int_equal(eg_flash_size_bytes(sizes[i].n), sizes[i].bytes);
    assert_string_equal(eg_flash_size_name(sizes[i].bytes), sizes[i].n);
  }
  assert_int_equal(eg_flash_size_bytes("2MB-c1"), 2u << 20);
  assert_int_equal(eg_flash_size_bytes("4MB-c1"), 4u << 20);
  assert_int_equal(eg_flash_size_bytes("4mb"), 4u << 20);
  assert_int_equal(eg_flash_size_bytes("3MB"), 0);
  assert_int_equal(eg_flash_size_bytes(""), 0);
  assert_int_equal(eg_flash_size_bytes(NULL), 0);
  assert_null(eg_flash_size_name(0));
  assert_null(eg_flash_size_name(3u << 20));
  assert_null(eg_flash_size_name((4u << 20) + 1));
}

/* ------------------------------------------------------------ JEDEC */

static void test_flash_size_from_jedec(void **state) {
  (void)state;
  /* The §5.2 table: capacity code in the third byte, any manufacturer. */
  static const struct { uint8_t code; uint32_t bytes; } t[] = {
    {0x12, 256u << 10}, {0x32, 256u << 10}, {0x13, 512u << 10}, {0x33, 512u << 10},
    {0x14, 1u << 20},   {0x34, 1u << 20},   {0x15, 2u << 20},   {0x35, 2u << 20},
    {0x16, 4u << 20},   {0x36, 4u << 20},   {0x17, 8u << 20},   {0x37, 8u << 20},
    {0x18, 16u << 20},  {0x38, 16u << 20},  {0x19, 32u << 20},  {0x39, 32u << 20},
    {0x1A, 64u << 20},  {0x3A, 64u << 20},  {0x20, 64u << 20},  {0x1B, 128u << 20},
    {0x21, 128u << 20}, {0x1C, 256u << 20}, {0x22, 256u << 20},
  };
  const uint8_t mfrs[] = {0xC8, 0xEF, 0x20, 0xC2, 0x68, 0x5E};
  for (size_t m = 0; m < sizeof mfrs; m++)
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
      const uint32_t id = mfrs[m] | 0x40u << 8 | (uint32_t)t[i].code << 16;
      if (eg_flash_size_from_jedec(id) != t[i].bytes)
        fail_msg("id 0x%06x: got %u, want %u", id, eg_flash_size_from_jedec(id), t[i].bytes);
      assert_false(eg_jedec_is_absent(id));
    }
  /* The trace's GD25Q32: 0x001640C8 -> 4 MB; esptool printed c8 / 4016. */
  assert_int_equal(eg_flash_size_from_jedec(0x001640C8u), 4u << 20);
  assert_int_equal(eg_jedec_manufacturer(0x001640C8u), 0xC8);
  assert_int_equal(eg_jedec_device(0x001640C8u), 0x4016);
  /* Codes not in the table. */
  const uint8_t unknown[] = {0x00, 0x10, 0x11, 0x1D, 0x1F, 0x23, 0x30, 0x31, 0x3B, 0x40, 0x80, 0xFF};
  for (size_t i = 0; i < sizeof unknown; i++) {
    const uint32_t id = 0xC8u | 0x40u << 8 | (uint32_t)unknown[i] << 16;
    if (eg_flash_size_from_jedec(id)) fail_msg("id 0x%06x: got %u, want 0", id, eg_flash_size_from_jedec(id));
  }
  /* Adesto (0x1F): density in the low 5 bits of the second byte. */
  static const struct { uint8_t code; uint32_t bytes; } adesto[] = {
    {0x04, 512u << 10}, {0x05, 1u << 20}, {0x06, 2u << 20}, {0x07, 4u << 20}, {0x08, 8u << 20}, {0x09, 16u << 20},
  };
  for (size_t i = 0; i < sizeof adesto / sizeof adesto[0]; i++) {
    /* Upper bits of the second byte (family) and the third byte do not matter. */
    const uint32_t id = 0x1Fu | (uint32_t)(0x80 | adesto[i].code) << 8 | 0x16u << 16;
    if (eg_flash_size_from_jedec(id) != adesto[i].bytes)
      fail_msg("Adesto id 0x%06x: got %u, want %u", id, eg_flash_size_from_jedec(id), adesto[i].bytes);
  }
  assert_int_equal(eg_flash_size_from_jedec(0x1Fu | 0x03u << 8 | 0x16u << 16), 0);
  assert_int_equal(eg_flash_size_from_jedec(0x1Fu | 0x0Au << 8), 0);
  assert_int_equal(eg_flash_size_from_jedec(0x1Fu | 0x00u << 8), 0);
  /* "No flash" IDs. */
  const uint32_t absent[] = {0xFFFFFFu, 0x000000u, 0xFFFF3Fu};
  for (size_t i = 0; i < 3; i++) {
    assert_true(eg_jedec_is_absent(absent[i]));
    assert_int_equal(eg_flash_size_from_jedec(absent[i]), 0);
  }
  assert_false(eg_jedec_is_absent(0x001640C8u));
  assert_false(eg_jedec_is_absent(0xFFFF3Eu));
  assert_false(eg_jedec_is_absent(0x3FFFFFu));
}

/* ------------------------------------------------------------ ESP32 eFuses */

static void test_esp32_mac(void **state) {
  (void)state;
  uint8_t mac[6];
  const uint8_t want[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01};
  eg_esp32_mac(0xC4000001u, 0x00BE240Au, mac);
  assert_memory_equal(mac, want, 6);
  /* Printed as esptool prints it. */
  eg_unit_record u;
  eg_unit_record_init(&u);
  memcpy(u.mac, mac, 6);
  u.has_mac = true;
  char s[18];
  assert_string_equal(eg_unit_mac_str(&u, s, sizeof s), "24:0a:c4:00:00:01");
  /* The CRC in word2's upper half is dropped. */
  eg_esp32_mac(0xC4000001u, 0xFFBE240Au, mac);
  assert_memory_equal(mac, want, 6);
  /* Every byte from its own place. */
  const uint8_t w2[6] = {0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC};
  eg_esp32_mac(0x56789ABCu, 0x00001234u, mac);
  assert_memory_equal(mac, w2, 6);
}

static void test_esp32_revision_and_package(void **state) {
  (void)state;
  const uint32_t word3 = 0x00008000u, word5 = 0x00100000u, apb = 0x96042000u;
  const int major = eg_esp32_major_rev(word3, word5, apb), minor = eg_esp32_minor_rev(word5);
  const int pkg = eg_esp32_package(word3);
  assert_int_equal(major, 3);
  assert_int_equal(minor, 0);
  assert_int_equal(pkg, 0);
  char desc[64];
  snprintf(desc, sizeof desc, "%s (revision v%d.%d)", eg_esp32_package_name(pkg, major), major, minor);
  assert_string_equal(desc, "ESP32-D0WDQ6-V3 (revision v3.0)");

  /* The major revision's bit combinations (esptool get_major_chip_version). */
  const uint32_t b0 = 1u << 15, b1 = 1u << 20, b2 = 1u << 31;
  assert_int_equal(eg_esp32_major_rev(0, 0, 0), 0);
  assert_int_equal(eg_esp32_major_rev(b0, 0, 0), 1);
  assert_int_equal(eg_esp32_major_rev(b0, b1, 0), 2);
  assert_int_equal(eg_esp32_major_rev(b0, b1, b2), 3);
  assert_int_equal(eg_esp32_major_rev(0, b1, 0), 0);   /* 2 */
  assert_int_equal(eg_esp32_major_rev(0, 0, b2), 0);   /* 4 */
  assert_int_equal(eg_esp32_major_rev(b0, 0, b2), 0);  /* 5 */
  assert_int_equal(eg_esp32_major_rev(0, b1, b2), 0);  /* 6 */
  /* Neighbouring bits do not count. */
  assert_int_equal(eg_esp32_major_rev(~b0, ~b1, ~b2), 0);
  assert_int_equal(eg_esp32_major_rev(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu), 3);

  assert_int_equal(eg_esp32_minor_rev(0x01000000u), 1);
  assert_int_equal(eg_esp32_minor_rev(0x02000000u), 2);
  assert_int_equal(eg_esp32_minor_rev(0x03000000u), 3);
  assert_int_equal(eg_esp32_minor_rev(0xFCFFFFFFu), 0);

  assert_int_equal(eg_esp32_package(1u << 9), 1);
  assert_int_equal(eg_esp32_package(5u << 9), 5);
  assert_int_equal(eg_esp32_package(7u << 9), 7);
  assert_int_equal(eg_esp32_package(1u << 2), 8);
  assert_int_equal(eg_esp32_package(7u << 9 | 1u << 2), 15);
  assert_int_equal(eg_esp32_package(~(7u << 9 | 1u << 2)), 0);

  static const struct { int pkg, major; const char *name; } names[] = {
    {0, 3, "ESP32-D0WDQ6-V3"}, {0, 1, "ESP32-D0WDQ6"}, {1, 3, "ESP32-D0WD-V3"}, {1, 0, "ESP32-D0WD"},
    {2, 3, "ESP32-D2WD"},      {4, 1, "ESP32-U4WDH"},  {5, 3, "ESP32-PICO-V3"}, {5, 1, "ESP32-PICO-D4"},
    {6, 3, "ESP32-PICO-V3-02"}, {7, 3, "ESP32-D0WDR2-V3"}, {3, 3, "Unknown ESP32"}, {8, 1, "Unknown ESP32"},
    {-1, 3, "Unknown ESP32"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    assert_string_equal(eg_esp32_package_name(names[i].pkg, names[i].major), names[i].name);
}

static void test_esp32_spi_pads(void **state) {
  (void)state;
  /* The trace: all pad eFuses zero -> SPI_ATTACH 0. */
  assert_int_equal(eg_esp32_spi_pads(0x00008000u, 0x00100000u), 0);
  /* clk 6, q 17, d 8, cs 16, hd 11, packed as esptool's
   * hd << 24 | cs << 18 | d << 12 | q << 6 | clk. */
  const uint32_t word5 = 6u | 17u << 5 | 8u << 10 | 16u << 15, word3 = 11u << 4;
  assert_int_equal(eg_esp32_spi_pads(word3, word5), 11u << 24 | 16u << 18 | 8u << 12 | 17u << 6 | 6u);
  /* One non-zero pad is enough to pack; other eFuse bits are ignored. */
  assert_int_equal(eg_esp32_spi_pads(0, 1u << 15), 1u << 18);
  assert_int_equal(eg_esp32_spi_pads(1u << 4, 0), 1u << 24);
  assert_int_equal(eg_esp32_spi_pads(~(0x1Fu << 4), ~0xFFFFFu), 0);
  assert_int_equal(eg_esp32_spi_pads(0xFFFFFFFFu, 0xFFFFFFFFu), 31u << 24 | 31u << 18 | 31u << 12 | 31u << 6 | 31u);
}

static void test_crystal(void **state) {
  (void)state;
  const eg_chip *esp32 = eg_chip_get(EG_CHIP_ESP32), *e8266 = eg_chip_get(EG_CHIP_ESP8266);
  /* The trace: UART_CLKDIV 0x15A at 115200 -> 39.86 -> 40 MHz. */
  assert_int_equal(eg_crystal_mhz(esp32, 115200, 0x15A), 40);
  /* Only the divider's 20 bits count (the fraction lives above them). */
  assert_int_equal(eg_crystal_mhz(esp32, 115200, 0x15A | 0xFFF00000u), 40);
  assert_int_equal(eg_crystal_mhz(esp32, 115200, 226), 26);  /* 26.04 */
  assert_int_equal(eg_crystal_mhz(esp32, 115200, 417), 48);  /* 48.04 */
  assert_int_equal(eg_crystal_mhz(esp32, 460800, 87), 40);   /* 40.09 */
  /* Thresholds: > 33 is 40, > 45 is 48. */
  assert_int_equal(eg_crystal_mhz(esp32, 1000000, 33), 26);
  assert_int_equal(eg_crystal_mhz(esp32, 1000000, 34), 40);
  assert_int_equal(eg_crystal_mhz(esp32, 1000000, 45), 40);
  assert_int_equal(eg_crystal_mhz(esp32, 1000000, 46), 48);
  assert_int_equal(eg_crystal_mhz(esp32, 115200, 0), 26);
  /* ESP8266: the UART clock is twice the crystal. */
  assert_int_equal(eg_crystal_mhz(e8266, 115200, 694), 40); /* 79.95 / 2 */
  assert_int_equal(eg_crystal_mhz(e8266, 115200, 451), 26); /* 51.96 / 2 */
}

/* C3 and C6 have a fixed 40 MHz crystal, H2 32 MHz: esptool does not
 * estimate it from the divider (which would say 48 or 26 there). S2, S3 and
 * C2 are estimated like the ESP32. */
static void test_crystal_fixed(void **state) {
  (void)state;
  const uint32_t divs[] = {0, 226, 0x15A, 417, 694, 0xFFFFF};
  for (size_t i = 0; i < sizeof divs / sizeof divs[0]; i++) {
    assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32C3), 115200, divs[i]), 40);
    assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32C6), 115200, divs[i]), 40);
    assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32H2), 115200, divs[i]), 32);
  }
  assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32S2), 115200, 226), 26);
  assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32S3), 115200, 0x15A), 40);
  assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32C2), 115200, 226), 26);
  assert_int_equal(eg_crystal_mhz(eg_chip_get(EG_CHIP_ESP32C2), 115200, 0x15A), 40);
}

/* esptool targets/esp32.py change_baud, worked by hand:
 *   f_rom = ((rtc_cali >> 7) & 0x1FFFFFF) * 15625 * (word4 & 0xFF) / 40
 *   f_valid = 40 MHz if f_rom > 33 MHz else 26 MHz
 *   sent = int(baud * f_rom // f_valid) */
static void test_esp32_rom_baud_value(void **state) {
  (void)state;
  /* cali 1024, ck8m 100: f_rom = 1024 * 15625 * 100 / 40 = 40 000 000 exactly. */
  assert_int_equal(eg_esp32_rom_baud_value(921600, 1024u << 7, 100), 921600);
  /* cali 1050: f_rom = 41 015 625; 921600 * 41015625 / 40e6 = 945000. */
  assert_int_equal(eg_esp32_rom_baud_value(921600, 1050u << 7, 100), 945000);
  /* cali 1000, ck8m 97: f_rom = 37 890 625; 115200 * 37890625 / 40e6 = 109125. */
  assert_int_equal(eg_esp32_rom_baud_value(115200, 1000u << 7, 97), 109125);
  /* cali 1010, ck8m 99: f_rom = 1 562 343 750 / 40 = 39 058 593.75;
   * 460800 * that / 40e6 = 449955.0 -> 449955. */
  assert_int_equal(eg_esp32_rom_baud_value(460800, 1010u << 7, 99), 449955);
  /* cali 1003, ck8m 101: f_rom = 39 571 484.375; 230400 * that / 40e6
   * = 227931.75 -> 227931 (rounded down, as Python's //). */
  assert_int_equal(eg_esp32_rom_baud_value(230400, 1003u << 7, 101), 227931);
  /* 26 MHz crystal: cali 700, ck8m 100: f_rom = 27 343 750 (<= 33 MHz);
   * 115200 * 27343750 / 26e6 = 121153.8 -> 121153. */
  assert_int_equal(eg_esp32_rom_baud_value(115200, 700u << 7, 100), 121153);
  /* Exactly 33 MHz is still "26 MHz": cali 844.8 is not integral, so use
   * cali 1056, ck8m 80: f_rom = 1056 * 15625 * 80 / 40 = 33 000 000;
   * 115200 * 33e6 / 26e6 = 146215.38 -> 146215. */
  assert_int_equal(eg_esp32_rom_baud_value(115200, 1056u << 7, 80), 146215);
  /* Bits outside the fields are ignored: the low 7 bits of the calibration
   * register and word4's bits above the CK8M byte. */
  assert_int_equal(eg_esp32_rom_baud_value(921600, 1050u << 7 | 0x7F, 100 | 0x1F00), 945000);
  /* No calibration data: the rate is sent unchanged (esptool would send 0,
   * which no ROM can use). */
  assert_int_equal(eg_esp32_rom_baud_value(921600, 0, 100), 921600);
  assert_int_equal(eg_esp32_rom_baud_value(921600, 1024u << 7, 0), 921600);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_by_name),
    cmocka_unit_test(test_by_name_exact_bytes),
    cmocka_unit_test(test_by_magic),
    cmocka_unit_test(test_by_chip_id),
    cmocka_unit_test(test_table_self_check),
    cmocka_unit_test(test_esp32_registers),
    cmocka_unit_test(test_header_codes),
    cmocka_unit_test(test_flash_modes_and_sizes),
    cmocka_unit_test(test_flash_size_from_jedec),
    cmocka_unit_test(test_esp32_mac),
    cmocka_unit_test(test_esp32_revision_and_package),
    cmocka_unit_test(test_esp32_spi_pads),
    cmocka_unit_test(test_crystal),
    cmocka_unit_test(test_crystal_fixed),
    cmocka_unit_test(test_esp32_rom_baud_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
