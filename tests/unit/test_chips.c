/* test_chips.c - the chip table (src/chips.c).
 *
 * - Lookups, the table's self-checks (flashrom style: every row complete and
 *   consistent), image-header codes, flash size from JEDEC IDs.
 * - Identity decoding against the genuine ROMs: the READ_REG replies in
 *   tests/data/rom-traces/rom-flash-id.trace (ESP32) and
 *   esp32c3/rom-flash-id.trace (ESP32-C3) are decoded and must give what
 *   esptool v5.3.1 printed in the same trace ("Chip type:", "MAC:",
 *   "Crystal frequency:").
 * - Identity decoding for every chip from register values built bit by bit
 *   from esptool v5.3.1's target classes (each case names the rule), with
 *   the cases esptool-js 0.7.0 gets differently (it is the oracle for the
 *   rest: tests/esptool-js/chip-oracle.mjs).
 * - CHANGE_BAUDRATE values, SPI_ATTACH argument, security bits, the image
 *   check, USB identification, resets, scripts and block sizes. */
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

#define NA(a) (sizeof(a) / sizeof((a)[0]))

static const eg_chip *chip(eg_chip_id id) { return eg_chip_get(id); }

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
  CHIP_EQ(eg_chip_by_name("esp32c5"), EG_CHIP_ESP32C5);
  CHIP_EQ(eg_chip_by_name("ESP32-C61"), EG_CHIP_ESP32C61);
  CHIP_EQ(eg_chip_by_name("esp32-c61"), EG_CHIP_ESP32C61);
  CHIP_EQ(eg_chip_by_name("esp32p4"), EG_CHIP_ESP32P4);
  CHIP_EQ(eg_chip_by_name("ESP32-P4"), EG_CHIP_ESP32P4);
  /* Every chip by both of its names. */
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = eg_chip_get((eg_chip_id)i);
    CHIP_EQ(eg_chip_by_name(c->name), i);
    CHIP_EQ(eg_chip_by_name(c->arg_name), i);
  }
  /* Not chips, or the preview parts espgang leaves out (H4, H21, S31, E22). */
  const char *bad[] = {"", "esp", "esp3", "esp32s", "esp32s33", "esp32-s", "esp32c", "esp32c62", "esp32c6x",
                       "esp32h4", "esp32h21", "esp32s31", "esp32e22", "esp8285", "esp32 ", " esp32", "auto",
                       "esp32s2x", "esp32p", "esp32p41", "esp32c610"};
  for (size_t i = 0; i < NA(bad); i++) {
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

static void test_names_list(void **state) {
  (void)state;
  char buf[256];
  assert_string_equal(eg_chip_names(buf, sizeof buf, ", "),
                      "esp8266, esp32, esp32s2, esp32s3, esp32c3, esp32c6, esp32h2, esp32c2, esp32c5, esp32c61, esp32p4");
  assert_string_equal(eg_chip_names(buf, sizeof buf, "|"),
                      "esp8266|esp32|esp32s2|esp32s3|esp32c3|esp32c6|esp32h2|esp32c2|esp32c5|esp32c61|esp32p4");
  /* Truncated, still terminated. */
  char small[12];
  memset(small, 'x', sizeof small);
  assert_string_equal(eg_chip_names(small, sizeof small, ", "), "esp8266, es");
  char one[1] = {'x'};
  assert_string_equal(eg_chip_names(one, 1, ", "), "");
}

static void test_by_magic(void **state) {
  (void)state;
  /* PROT §4.1 and esptool-js 0.7.0 lib/esploader.js magic2Chip / targets. */
  static const struct { uint32_t magic; eg_chip_id id; } known[] = {
    {0xFFF0C101u, EG_CHIP_ESP8266}, {0x00F01D83u, EG_CHIP_ESP32},   {0x000007C6u, EG_CHIP_ESP32S2},
    {0x00000009u, EG_CHIP_ESP32S3}, {0x6921506Fu, EG_CHIP_ESP32C3}, {0x1B31506Fu, EG_CHIP_ESP32C3},
    {0x4881606Fu, EG_CHIP_ESP32C3}, {0x4361606Fu, EG_CHIP_ESP32C3}, {0x6F51306Fu, EG_CHIP_ESP32C2},
    {0x7C41A06Fu, EG_CHIP_ESP32C2}, {0x0C21E06Fu, EG_CHIP_ESP32C2}, {0x2CE0806Fu, EG_CHIP_ESP32C6},
    {0xD7B73E80u, EG_CHIP_ESP32H2}, {0x97E30068u, EG_CHIP_ESP32H2}, {0x1101406Fu, EG_CHIP_ESP32C5},
    {0x63E1406Fu, EG_CHIP_ESP32C5}, {0x5FD1406Fu, EG_CHIP_ESP32C5}, {0x30E1706Fu, EG_CHIP_ESP32C5},
    {0x33F0206Fu, EG_CHIP_ESP32C61}, {0x2421606Fu, EG_CHIP_ESP32C61}, {0x4F81606Fu, EG_CHIP_ESP32C61},
    {0x7211606Fu, EG_CHIP_ESP32C61}, {0x0ADDBAD0u, EG_CHIP_ESP32P4}, {0x07039AD9u, EG_CHIP_ESP32P4},
  };
  for (size_t i = 0; i < NA(known); i++) CHIP_EQ(eg_chip_by_magic(known[i].magic), known[i].id);
  /* 0 is what a failed read looks like (esptool-js maps it to the P4): no chip. */
  const uint32_t unknown[] = {0x00000000u, 0xFFFFFFFFu, 0x00F01D82u, 0x00000008u, 0x000007C7u, 0x1101406Eu};
  for (size_t i = 0; i < NA(unknown); i++) {
    const eg_chip *c = eg_chip_by_magic(unknown[i]);
    if (c) fail_msg("magic 0x%08x matched %s", unknown[i], c->name);
  }
  /* The value the ROM returned in the trace: READ_REG 0x40001000 -> 83 1d f0 00. */
  CHIP_EQ(eg_chip_by_magic(0x00F01D83u), EG_CHIP_ESP32);
  /* esptool detects only these by magic (USES_MAGIC_VALUE). */
  for (int i = 0; i < EG_CHIP__COUNT; i++)
    assert_int_equal(chip((eg_chip_id)i)->magic_primary, i == EG_CHIP_ESP8266 || i == EG_CHIP_ESP32 || i == EG_CHIP_ESP32S2);
}

static void test_by_chip_id(void **state) {
  (void)state;
  /* IMAGE_CHIP_ID of each esptool v5.3.1 target (FACT §1). */
  CHIP_EQ(eg_chip_by_chip_id(0), EG_CHIP_ESP32);
  CHIP_EQ(eg_chip_by_chip_id(2), EG_CHIP_ESP32S2);
  CHIP_EQ(eg_chip_by_chip_id(9), EG_CHIP_ESP32S3);
  CHIP_EQ(eg_chip_by_chip_id(5), EG_CHIP_ESP32C3);
  CHIP_EQ(eg_chip_by_chip_id(12), EG_CHIP_ESP32C2);
  CHIP_EQ(eg_chip_by_chip_id(13), EG_CHIP_ESP32C6);
  CHIP_EQ(eg_chip_by_chip_id(16), EG_CHIP_ESP32H2);
  CHIP_EQ(eg_chip_by_chip_id(18), EG_CHIP_ESP32P4);
  CHIP_EQ(eg_chip_by_chip_id(20), EG_CHIP_ESP32C61);
  CHIP_EQ(eg_chip_by_chip_id(23), EG_CHIP_ESP32C5);
  /* esptool's UNSUPPORTED_CHIPS (4, 6, 7, 10, 14, 17), unused ids, -1. */
  const int unknown[] = {-1, -2, 1, 3, 4, 6, 7, 10, 14, 17, 19, 21, 22, 24, 255, 0x7FFFFFFF};
  for (size_t i = 0; i < NA(unknown); i++) CHIP_NULL(eg_chip_by_chip_id(unknown[i]));
  CHIP_NULL(eg_chip_get(EG_CHIP__COUNT));
  CHIP_NULL(eg_chip_get((eg_chip_id)-1));
}

/* ------------------------------------------------------------ table self-checks */

static bool in_list(const uint32_t *list, size_t n, uint32_t addr) {
  for (size_t i = 0; i < n; i++)
    if (list[i] == addr) return true;
  return false;
}

/* A field the decoder reads must be among the registers the device reads. */
static void check_bits_listed(const eg_chip *c, const char *what, eg_bits b, const uint32_t *regs, size_t n) {
  if (!b.width) return;
  if (!in_list(regs, n, b.addr)) fail_msg("%s: %s at 0x%08x is not an identity register", c->name, what, b.addr);
  if (b.shift + b.width > 32) fail_msg("%s: %s bits %u+%u", c->name, what, b.shift, b.width);
}

static void check_script(const eg_chip *c, const char *what, eg_regscript s) {
  if (!s.n) {
    assert_null(s.ops);
    return;
  }
  assert_non_null(s.ops);
  for (size_t i = 0; i < s.n; i++) {
    const eg_regwrite *o = &s.ops[i];
    switch (o->kind) {
    case EG_REGW_DELAY_US:
      if (!o->value || o->value > 1000000) fail_msg("%s %s[%zu]: delay %u us", c->name, what, i, o->value);
      break;
    case EG_REGW_WRITE:
    case EG_REGW_SET_BITS:
    case EG_REGW_CLEAR_BITS:
      if (!o->addr || o->addr % 4) fail_msg("%s %s[%zu]: address 0x%08x", c->name, what, i, o->addr);
      if (!o->mask) fail_msg("%s %s[%zu]: mask 0", c->name, what, i);
      if (o->kind != EG_REGW_WRITE && !o->value) fail_msg("%s %s[%zu]: no bits", c->name, what, i);
      break;
    }
  }
}

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
    /* ESP8266 and ESP32 ROMs are the old kind; S2 has the short security info. */
    const bool old = i == EG_CHIP_ESP8266 || i == EG_CHIP_ESP32;
    if (c->bootloader_offset != 0 && c->bootloader_offset != 0x1000 && c->bootloader_offset != 0x2000)
      fail_msg("%s: bootloader offset 0x%x", c->name, c->bootloader_offset);
    assert_int_equal(c->chip_id < 0, i == EG_CHIP_ESP8266);
    assert_int_equal(c->rom_status_len, i == EG_CHIP_ESP8266 ? 2 : 4);
    assert_int_equal(c->rom_begin_encrypt_word, !old);
    assert_int_equal(c->rom_has_security_info, !old);
    assert_int_equal(c->rom_security_info_len, old ? 0 : i == EG_CHIP_ESP32S2 ? 12 : 20);
    assert_int_equal(c->rom_deflate, i != EG_CHIP_ESP8266);
    assert_int_equal(c->rom_md5, i != EG_CHIP_ESP8266);
    assert_int_equal(c->rom_read_flash_slow, i != EG_CHIP_ESP8266);
    assert_int_equal(c->rom_erase_size_bug, i == EG_CHIP_ESP8266);
    assert_int_equal(c->rom_attach == EG_ATTACH_FLASH_BEGIN, i == EG_CHIP_ESP8266);
    assert_int_equal(c->rom_attach == EG_ATTACH_ESP32_PADS, i == EG_CHIP_ESP32);
    assert_int_equal(c->rom_spi_set_params, i != EG_CHIP_ESP8266);
    assert_int_equal(c->rom_baud == EG_ROM_BAUD_NONE, i == EG_CHIP_ESP8266);
    assert_int_equal(c->rom_write_block, 0x400);
    assert_int_equal(c->stub_write_block, 0x4000);
    assert_int_equal(c->ram_block, 0x1800);
    assert_int_equal(c->usb_otg_block, i == EG_CHIP_ESP32S2 || i == EG_CHIP_ESP32S3 || i == EG_CHIP_ESP32P4 ? 0x800 : 0);
    assert_int_equal(c->enc_write_align, i == EG_CHIP_ESP32 ? 32 : 16);
    assert_int_equal(c->enc_write, i != EG_CHIP_ESP8266);
    assert_int_equal(c->rom_enc_write, !old);
    assert_int_equal(c->image_check, i != EG_CHIP_ESP8266);
    assert_int_equal(c->legacy_min_rev_minor, i == EG_CHIP_ESP32C3);
    assert_int_equal(c->spi_addr_msb, old);
    assert_true(c->xtal_clk_divider == 1 || c->xtal_clk_divider == 2);
    assert_true(c->uart_clkdiv_reg != 0);
    switch (c->xtal_rule) {
    case EG_XTAL_FIXED: assert_true(c->xtal_mhz == 32 || c->xtal_mhz == 40); break;
    case EG_XTAL_ESTIMATE: assert_int_equal(c->xtal_mhz, 0); break;
    }
    /* SPI1 registers: inside the block, CMD at its base, distinct, W0 last. */
    const eg_spi_regs *s = &c->spi;
    assert_int_equal(s->cmd, s->base);
    assert_true(s->base != 0);
    const uint32_t regs[] = {s->addr, s->usr, s->usr1, s->usr2, s->w0};
    for (size_t k = 0; k < NA(regs); k++) {
      if (regs[k] <= s->base || regs[k] >= s->base + 0x100 || regs[k] % 4)
        fail_msg("%s: SPI register 0x%08x outside base 0x%08x", c->name, regs[k], s->base);
      for (size_t m = 0; m < k; m++) assert_int_not_equal(regs[k], regs[m]);
      if (k + 1 < NA(regs)) assert_true(regs[k] < s->w0);
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

    /* Identity registers: at most EG_CHIP_IDENT_MAX, distinct, word
     * aligned, and every field the decoder reads is among them. */
    uint32_t ident[EG_CHIP_IDENT_MAX];
    const size_t n = eg_chip_ident_regs(c, ident, NA(ident));
    assert_true(n >= 3 && n <= EG_CHIP_IDENT_MAX);
    for (size_t k = 0; k < n; k++) {
      if (!ident[k] || ident[k] % 4) fail_msg("%s: identity register 0x%08x", c->name, ident[k]);
      for (size_t m = 0; m < k; m++)
        if (ident[k] == ident[m]) fail_msg("%s: identity register 0x%08x twice", c->name, ident[k]);
    }
    assert_int_equal(eg_chip_ident_regs(c, NULL, 0), n); /* the count without a buffer */
    if (c->mac_rule == EG_MAC_EFUSE) assert_true(c->mac_reg && in_list(ident, n, c->mac_reg) && in_list(ident, n, c->mac_reg + 4));
    else assert_true(!c->mac_reg && in_list(ident, n, c->efuse_base) && in_list(ident, n, c->efuse_base + 12));
    check_bits_listed(c, "major.hi", c->rev_major.hi, ident, n);
    check_bits_listed(c, "major.lo", c->rev_major.lo, ident, n);
    check_bits_listed(c, "minor.hi", c->rev_minor.hi, ident, n);
    check_bits_listed(c, "minor.lo", c->rev_minor.lo, ident, n);
    for (size_t k = 0; k < NA(c->rev_aux); k++) check_bits_listed(c, "rev_aux", c->rev_aux[k], ident, n);
    check_bits_listed(c, "pkg.hi", c->pkg.hi, ident, n);
    check_bits_listed(c, "pkg.lo", c->pkg.lo, ident, n);
    check_bits_listed(c, "pkg_sub", c->pkg_sub, ident, n);
    check_bits_listed(c, "crypt_cnt", c->crypt_cnt, ident, n);
    check_bits_listed(c, "secure_boot", c->secure_boot, ident, n);
    check_bits_listed(c, "secure_boot_rev3", c->secure_boot_rev3, ident, n);
    check_bits_listed(c, "dl_encrypt_disabled", c->dl_encrypt_disabled, ident, n);
    check_bits_listed(c, "rom_ck8m", c->rom_ck8m, ident, n);
    check_bits_listed(c, "rom_xtal_expect", c->rom_xtal_expect, ident, n);
    check_bits_listed(c, "flash_xpd_on", c->flash_xpd_on, ident, n);
    for (size_t k = 0; k < NA(c->spi_pads); k++) check_bits_listed(c, "spi_pads", c->spi_pads[k], ident, n);
    assert_int_equal(in_list(ident, n, c->uart_clkdiv_reg), c->xtal_rule == EG_XTAL_ESTIMATE);
    /* Every chip but the ESP8266 has a revision, a package table and
     * security eFuses; the revision fields exist for the field rule. */
    if (i != EG_CHIP_ESP8266) {
      assert_int_equal(c->desc_rule, EG_DESC_PACKAGE);
      assert_true(c->npkg_names > 0 && c->pkg.lo.width > 0);
      for (size_t k = 0; k < c->npkg_names; k++) assert_true(strncmp(c->pkg_names[k].name, "ESP", 3) == 0);
      assert_true(c->rev_minor.lo.width > 0);
      if (c->rev_rule != EG_REV_ESP32) assert_true(c->rev_major.lo.width > 0);
      assert_true(c->crypt_cnt.width > 0 && c->secure_boot.width > 0 && c->dl_encrypt_disabled.width > 0);
      assert_true(c->mac_reg >= c->efuse_base && c->mac_reg < c->efuse_base + 0x100);
    }
    assert_int_equal(c->rev_rule == EG_REV_ESP32, i == EG_CHIP_ESP32);
    assert_int_equal(c->rev_rule == EG_REV_ESP32S3, i == EG_CHIP_ESP32S3);
    assert_int_equal(c->mac_eui64, i == EG_CHIP_ESP32C6 || i == EG_CHIP_ESP32H2 || i == EG_CHIP_ESP32C5);

    /* USB and resets. */
    const bool otg = c->usb_otg_block != 0;
    if (c->usb_serial_jtag || otg) assert_true(c->usb_pins[0] && c->usb_pins[1] == c->usb_pins[0] + 1);
    else assert_true(!c->usb_pins[0] && !c->usb_pins[1]);
    /* -1 unknown; 0 would be UART0, never a USB port (and is what a row
     * that forgot the column holds). */
    assert_true(c->uartdev_otg == -1 || c->uartdev_otg > 0);
    assert_true(c->uartdev_jtag == -1 || c->uartdev_jtag > 0);
    if (c->uartdev_otg >= 0 || c->uartdev_jtag >= 0) assert_true(c->uartdev_buf_no != 0);
    check_script(c, "wdt_disable", c->wdt_disable);
    check_script(c, "wdt_reset", c->wdt_reset);
    check_script(c, "hard_reset_prefix", c->hard_reset_prefix);
    /* The watchdog disable is for USB-Serial/JTAG ports only. */
    if (c->wdt_disable.n) assert_true(c->usb_serial_jtag);
    for (int u = 0; u < EG_USB__COUNT; u++) {
      const eg_hard_reset r = eg_chip_hard_reset(c, (eg_usb_mode)u);
      if (r == EG_HARD_RESET_WATCHDOG) assert_true(c->wdt_reset.n > 0);
      if (r == EG_HARD_RESET_OTG_STRAPS) assert_true(u == EG_USB_OTG && c->otg_strap_reg && c->otg_option1_reg);
    }
    assert_int_equal(eg_chip_hard_reset(c, EG_USB_NONE), EG_HARD_RESET_CLASSIC);
    /* Stub names: the arg name, P4 also its old one. */
    assert_string_equal(eg_chip_stub_name(c, NULL), c->arg_name);
    assert_int_equal(c->stub_old != NULL, i == EG_CHIP_ESP32P4);
    assert_int_equal(c->stub_sb_entry_ptr, i == EG_CHIP_ESP32S3 ? 0x3FCEF688u : 0);
    assert_int_equal(c->no_stub_secure_boot, i == EG_CHIP_ESP32C3);
    assert_int_equal(c->no_stub_rev0, i == EG_CHIP_ESP32C2);
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
  /* S2 and later use the other SPI layout (§5.1); the C3 trace's RDID used
   * USR 0x60002018, USR2 0x60002020, MISO_DLEN 0x60002028, W0 0x60002058. */
  const eg_chip *c3 = eg_chip_get(EG_CHIP_ESP32C3);
  assert_int_equal(c3->spi.usr, 0x60002018u);
  assert_int_equal(c3->spi.usr2, 0x60002020u);
  assert_int_equal(c3->spi.miso_dlen, 0x60002028u);
  assert_int_equal(c3->spi.w0, 0x60002058u);
  const eg_chip *s3 = eg_chip_get(EG_CHIP_ESP32S3);
  assert_int_equal(s3->spi.usr, 0x60002018u);
  assert_int_equal(s3->spi.miso_dlen, 0x60002028u);
  assert_int_equal(s3->spi.w0, 0x60002058u);
  /* Bases from FACT §4. */
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32S2)->spi.base, 0x3F402000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32C2)->spi.base, 0x60002000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32C6)->spi.base, 0x60003000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32C61)->spi.base, 0x60003000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32C5)->spi.base, 0x60003000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32H2)->spi.base, 0x60003000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32P4)->spi.base, 0x5008D000u);
  assert_int_equal(eg_chip_get(EG_CHIP_ESP32P4)->spi.w0, 0x5008D058u);
  const eg_chip *e8266 = eg_chip_get(EG_CHIP_ESP8266);
  assert_int_equal(e8266->spi.w0, 0x60000240u);
  assert_int_equal(e8266->spi.usr1, 0x60000220u);
  assert_int_equal(e8266->xtal_clk_divider, 2);
  /* Bootloader offsets (issue 10; FACT §4). */
  static const uint32_t boot[EG_CHIP__COUNT] = {
    [EG_CHIP_ESP8266] = 0, [EG_CHIP_ESP32] = 0x1000, [EG_CHIP_ESP32S2] = 0x1000, [EG_CHIP_ESP32S3] = 0,
    [EG_CHIP_ESP32C3] = 0, [EG_CHIP_ESP32C6] = 0, [EG_CHIP_ESP32H2] = 0, [EG_CHIP_ESP32C2] = 0,
    [EG_CHIP_ESP32C5] = 0x2000, [EG_CHIP_ESP32C61] = 0, [EG_CHIP_ESP32P4] = 0x2000,
  };
  for (int i = 0; i < EG_CHIP__COUNT; i++) assert_int_equal(chip((eg_chip_id)i)->bootloader_offset, boot[i]);
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

/* Fixed crystals (esptool does not estimate them; the divider would say 48
 * or 26): S2, S3, C3, C6, C61, P4 40 MHz, H2 32 MHz. ESP8266, ESP32, C2 and
 * C5 are estimated (FACT §3). */
static void test_crystal_fixed(void **state) {
  (void)state;
  static const struct { eg_chip_id id; int mhz; } fixed[] = {
    {EG_CHIP_ESP32S2, 40}, {EG_CHIP_ESP32S3, 40}, {EG_CHIP_ESP32C3, 40}, {EG_CHIP_ESP32C6, 40},
    {EG_CHIP_ESP32C61, 40}, {EG_CHIP_ESP32P4, 40}, {EG_CHIP_ESP32H2, 32},
  };
  const uint32_t divs[] = {0, 226, 0x15A, 417, 694, 0xFFFFF};
  const uint32_t bauds[] = {0, 115200, 921600};
  for (size_t i = 0; i < NA(fixed); i++)
    for (size_t d = 0; d < NA(divs); d++)
      for (size_t b = 0; b < NA(bauds); b++)
        assert_int_equal(eg_crystal_mhz(chip(fixed[i].id), bauds[b], divs[d]), fixed[i].mhz);
  const eg_chip_id est[] = {EG_CHIP_ESP32, EG_CHIP_ESP32C2, EG_CHIP_ESP32C5};
  for (size_t i = 0; i < NA(est); i++) {
    assert_int_equal(eg_crystal_mhz(chip(est[i]), 115200, 226), 26);
    assert_int_equal(eg_crystal_mhz(chip(est[i]), 115200, 0x15A), 40);
    assert_int_equal(eg_crystal_mhz(chip(est[i]), 115200, 417), 48);
    assert_int_equal(eg_crystal_mhz(chip(est[i]), 0, 417), 0); /* line rate unknown */
  }
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

/* ------------------------------------------------------------ identity: helpers */

typedef struct regval {
  uint32_t addr, value;
} regval;

/* Decode `rv` (register, value) for chip `id`: every register given must be
 * one the device reads (eg_chip_ident_regs), the others read 0. */
static void decode(eg_chip_id id, const regval *rv, size_t n, uint32_t baud, eg_chip_ident *out) {
  const eg_chip *c = chip(id);
  uint32_t addrs[EG_CHIP_IDENT_MAX], vals[EG_CHIP_IDENT_MAX] = {0};
  const size_t na = eg_chip_ident_regs(c, addrs, NA(addrs));
  for (size_t i = 0; i < n; i++) {
    size_t k = 0;
    while (k < na && addrs[k] != rv[i].addr) k++;
    if (k == na) fail_msg("%s: 0x%08x is not among the registers the device reads", c->name, rv[i].addr);
    vals[k] = rv[i].value;
  }
  eg_chip_decode(c, vals, baud, out);
  assert_ptr_equal(out->chip, c);
}

static const char *mac_str(const uint8_t mac[6], char *buf, size_t len) {
  snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return buf;
}

#define DESC_EQ(id_, want)                                                                          \
  do {                                                                                              \
    if (strcmp((id_).desc, (want)) != 0) fail_msg("%s: desc \"%s\", want \"%s\"", (id_).chip->name, (id_).desc, (want)); \
  } while (0)
#define MAC_EQ(id_, want)                                                                           \
  do {                                                                                              \
    char m_[18];                                                                                    \
    assert_true((id_).has_mac);                                                                     \
    if (strcmp(mac_str((id_).mac, m_, sizeof m_), (want)) != 0)                                     \
      fail_msg("%s: MAC %s, want %s", (id_).chip->name, m_, (want));                                \
  } while (0)

/* ------------------------------------------------------------ identity: genuine ROM traces */

/* What one esptool --trace transcript shows: READ_REG address -> value (the
 * ROM's reply, header value field) and the lines esptool printed. */
typedef struct trace_info {
  regval regs[64];
  bool changed[64]; /* read again with another value (SPI registers do) */
  size_t nregs;
  char chip_type[80], mac[32], crystal[16];
} trace_info;

static uint32_t le32_hex(const char *h) {
  unsigned b[4];
  if (sscanf(h, "%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3]) != 4) fail_msg("bad hex '%.8s'", h);
  return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void copy_field(char *dst, size_t cap, const char *line, const char *label) {
  const char *p = line + strlen(label);
  while (*p == ' ') p++;
  const size_t n = strcspn(p, "\r\n");
  if (n >= cap) fail_msg("trace line too long: %s", line);
  memcpy(dst, p, n);
  dst[n] = '\0';
}

static void read_trace(const char *rel, trace_info *t) {
  char path[512];
  snprintf(path, sizeof path, "%s/tests/data/rom-traces/%s", EG_SOURCE_DIR, rel);
  FILE *fp = fopen(path, "r");
  if (!fp) fail_msg("cannot open %s", path);
  memset(t, 0, sizeof *t);
  char line[1024];
  uint32_t pending = 0;
  bool want_reply = false;
  while (fgets(line, sizeof line, fp)) {
    const char *p;
    /* "--- Cmd READ_REG (0x0a) | data_len 4 | ... | data 50880060 ---" */
    if (strstr(line, "Cmd READ_REG (0x0a)") && (p = strstr(line, "| data "))) {
      pending = le32_hex(p + 7);
      want_reply = true;
    } else if (want_reply && (p = strstr(line, "Received full packet: 010a"))) {
      /* 01 0a <size u16> <value u32> ...: the value is bytes 4..7. */
      const uint32_t v = le32_hex(p + strlen("Received full packet: ") + 8);
      bool seen = false;
      for (size_t i = 0; i < t->nregs; i++)
        if (t->regs[i].addr == pending) {
          if (t->regs[i].value != v) t->changed[i] = true;
          seen = true;
        }
      if (!seen && t->nregs < NA(t->regs)) t->regs[t->nregs++] = (regval){pending, v};
      want_reply = false;
    } else if (strncmp(line, "Chip type:", 10) == 0) {
      copy_field(t->chip_type, sizeof t->chip_type, line, "Chip type:");
    } else if (strncmp(line, "MAC:", 4) == 0) {
      copy_field(t->mac, sizeof t->mac, line, "MAC:");
    } else if (strncmp(line, "Crystal frequency:", 18) == 0) {
      copy_field(t->crystal, sizeof t->crystal, line, "Crystal frequency:");
    }
  }
  fclose(fp);
  assert_true(t->nregs > 0);
  assert_true(t->chip_type[0] && t->mac[0] && t->crystal[0]);
}

/* Decode what the trace's ROM answered; registers esptool did not read in
 * that session (it reads only what it prints) read 0, and are named. */
static void decode_trace(eg_chip_id id, const trace_info *t, uint32_t baud, eg_chip_ident *out) {
  const eg_chip *c = chip(id);
  uint32_t addrs[EG_CHIP_IDENT_MAX], vals[EG_CHIP_IDENT_MAX] = {0};
  const size_t na = eg_chip_ident_regs(c, addrs, NA(addrs));
  for (size_t k = 0; k < na; k++) {
    bool found = false;
    for (size_t i = 0; i < t->nregs; i++)
      if (t->regs[i].addr == addrs[k]) {
        if (t->changed[i]) fail_msg("%s: identity register 0x%08x changed during the trace", c->name, addrs[k]);
        vals[k] = t->regs[i].value;
        found = true;
      }
    if (!found) print_message("  %s: 0x%08x not read in the trace, taken as 0\n", c->name, addrs[k]);
  }
  eg_chip_decode(c, vals, baud, out);
}

/* ESP32 ECO3 ROM, esptool v5.3.1 at 115200 over TCP (rom-traces/README.md):
 * "Chip type: ESP32-D0WDQ6-V3 (revision v3.0)", "MAC: 24:0a:c4:00:00:01",
 * "Crystal frequency: 40MHz". */
static void test_trace_esp32(void **state) {
  (void)state;
  trace_info t;
  read_trace("rom-flash-id.trace", &t);
  assert_string_equal(t.chip_type, "ESP32-D0WDQ6-V3 (revision v3.0)");
  eg_chip_ident id;
  decode_trace(EG_CHIP_ESP32, &t, 115200, &id);
  DESC_EQ(id, t.chip_type);
  MAC_EQ(id, t.mac);
  char xtal[16];
  snprintf(xtal, sizeof xtal, "%dMHz", id.crystal_mhz);
  assert_string_equal(xtal, t.crystal);
  assert_int_equal(id.rev_major, 3);
  assert_int_equal(id.rev_minor, 0);
  assert_int_equal(eg_chip_rev(&id), 300);
  /* esptool sent SPI_ATTACH with 0 (all pad eFuses zero) in the trace. */
  assert_int_equal(id.spi_attach_arg, 0);
  assert_false(id.has_mac_ext);
  assert_string_equal(eg_chip_stub_name(id.chip, &id), "esp32");
}

/* ESP32-C3 ROM (esp32c3/README.md): "ESP32-C3 (QFN32) (revision v0.3)",
 * MAC 24:0a:c4:00:00:01, 40 MHz; the C3's crystal is fixed, so no CLKDIV
 * read: the line rate does not matter. */
static void test_trace_esp32c3(void **state) {
  (void)state;
  trace_info t;
  read_trace("esp32c3/rom-flash-id.trace", &t);
  assert_string_equal(t.chip_type, "ESP32-C3 (QFN32) (revision v0.3)");
  const uint32_t bauds[] = {115200, 0, 921600};
  for (size_t b = 0; b < NA(bauds); b++) {
    eg_chip_ident id;
    decode_trace(EG_CHIP_ESP32C3, &t, bauds[b], &id);
    DESC_EQ(id, t.chip_type);
    MAC_EQ(id, t.mac);
    char xtal[16];
    snprintf(xtal, sizeof xtal, "%dMHz", id.crystal_mhz);
    assert_string_equal(xtal, t.crystal);
    assert_int_equal(id.rev_major, 0);
    assert_int_equal(id.rev_minor, 3);
    assert_int_equal(id.pkg, 0);
    assert_int_equal(id.spi_attach_arg, 0);
    /* No CHANGE_BAUDRATE quirk on the C3. */
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 460800), 460800);
  }
  /* Every register esptool read for the chip type and MAC is one the device reads. */
  uint32_t addrs[EG_CHIP_IDENT_MAX];
  const size_t na = eg_chip_ident_regs(chip(EG_CHIP_ESP32C3), addrs, NA(addrs));
  const uint32_t esptool_read[] = {0x60008850, 0x60008858, 0x60008844, 0x60008848};
  for (size_t i = 0; i < NA(esptool_read); i++) assert_true(in_list(addrs, na, esptool_read[i]));
}

/* ------------------------------------------------------------ identity: each chip */

/* ESP32 (ET targets/esp32.py:199-240): single core, -V3 and package 7 names
 * (esptool-js 0.7.0 gets these three differently). */
static void test_decode_esp32(void **state) {
  (void)state;
  const uint32_t W1 = 0x3FF5A004, W2 = 0x3FF5A008, W3 = 0x3FF5A00C, W5 = 0x3FF5A014, APB = 0x3FF6607C;
  const uint32_t b0 = 1u << 15, b1 = 1u << 20, b2 = 1u << 31;
  static const struct {
    uint32_t w3, w5, apb;
    const char *desc;
  } t[] = {
    {b0, b1, b2, "ESP32-D0WDQ6-V3 (revision v3.0)"},
    {b0 | 1, b1, b2, "ESP32-S0WDQ6 (revision v3.0)"},          /* single core: no -V3 */
    {b0 | 1 << 9 | 1, b1 | 2u << 24, b2, "ESP32-S0WD (revision v3.2)"},
    {b0 | 1 << 9, b1 | 1u << 24, b2, "ESP32-D0WD-V3 (revision v3.1)"},
    {b0 | 1 << 9, b1, 0, "ESP32-D0WD (revision v2.0)"},
    {b0, 0, 0, "ESP32-D0WDQ6 (revision v1.0)"},
    {2 << 9, 0, 0, "ESP32-D2WD (revision v0.0)"},
    {b0 | 4 << 9, 0, b2, "ESP32-U4WDH (revision v0.0)"},       /* bits 0 and 2: no revision esptool knows */
    {b0 | 5 << 9, b1, b2, "ESP32-PICO-V3 (revision v3.0)"},
    {b0 | 5 << 9, 0, 0, "ESP32-PICO-D4 (revision v1.0)"},
    {b0 | 6 << 9, b1, b2, "ESP32-PICO-V3-02 (revision v3.0)"},
    {b0 | 7 << 9, b1 | 3u << 24, b2, "ESP32-D0WDR2-V3 (revision v3.3)"},
    {3 << 9, 0, 0, "Unknown ESP32 (revision v0.0)"},
    {1 << 2, 0, 0, "Unknown ESP32 (revision v0.0)"},           /* package 8 */
  };
  for (size_t i = 0; i < NA(t); i++) {
    const regval rv[] = {{W1, 0xC4000001}, {W2, 0xFFBE240A}, {W3, t[i].w3}, {W5, t[i].w5}, {APB, t[i].apb}};
    eg_chip_ident id;
    decode(EG_CHIP_ESP32, rv, NA(rv), 115200, &id);
    DESC_EQ(id, t[i].desc);
    MAC_EQ(id, "24:0a:c4:00:00:01"); /* w2[31:16] is the CRC */
  }
}

/* ESP8266 (ET targets/esp8266.py:64-106,135-150): MAC from the OTP words,
 * ESP8266EX / ESP8285 names, no revision. */
static void test_decode_esp8266(void **state) {
  (void)state;
  const uint32_t MAC0 = 0x3FF00050, MAC1 = 0x3FF00054, W2 = 0x3FF00058, MAC3 = 0x3FF0005C, CLK = 0x60000014;
  eg_chip_ident id;
  {
    const regval rv[] = {{MAC0, 0xEF000000}, {MAC1, 0x0000ABCD}, {CLK, 694}};
    decode(EG_CHIP_ESP8266, rv, NA(rv), 115200, &id);
    MAC_EQ(id, "18:fe:34:ab:cd:ef");
    DESC_EQ(id, "ESP8266EX");
    assert_false(id.has_rev);
    assert_int_equal(id.crystal_mhz, 40); /* 115200 * 694 / 1e6 / 2 = 39.98 */
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 460800), 0); /* no CHANGE_BAUDRATE in this ROM */
  }
  {
    const regval rv[] = {{MAC0, 0x12345678}, {MAC1, 0x00010203}, {CLK, 451}};
    decode(EG_CHIP_ESP8266, rv, NA(rv), 115200, &id);
    MAC_EQ(id, "ac:d0:74:02:03:12");
    assert_int_equal(id.crystal_mhz, 26); /* 51.96 / 2 */
  }
  {
    const regval rv[] = {{MAC0, 0x9A000000}, {MAC1, 0x00FF5678}, {MAC3, 0x00123456}};
    decode(EG_CHIP_ESP8266, rv, NA(rv), 115200, &id);
    MAC_EQ(id, "12:34:56:56:78:9a"); /* MAC3 wins over MAC1[23:16] */
  }
  {
    const regval rv[] = {{MAC0, 0x9A000000}, {MAC1, 0x00025678}};
    decode(EG_CHIP_ESP8266, rv, NA(rv), 115200, &id);
    assert_false(id.has_mac); /* esptool: "Unknown OUI" */
  }
  /* ESP8285: OTP bit 4 (MAC0 b4) or bit 80 (word 2 b16); flash size from
   * bits 4, 121-123 (word 3 b25-27); H with bit 5. */
  static const struct {
    uint32_t mac0, w2, mac3;
    const char *desc;
  } t[] = {
    {1 << 4, 0, 0, "ESP8285N08"},
    {1 << 4 | 1 << 5, 0, 0, "ESP8285H08"},
    {1 << 4, 0, 1u << 26, "ESP8285N16"},
    {1 << 4 | 1 << 5, 0, 1u << 26, "ESP8285H16"},
    {1 << 4, 0, 1u << 27, "ESP8285"},
    {0, 1 << 16, 0, "ESP8285"},
    {0, 1 << 16, 1u << 25, "ESP8285N16"},
    {1 << 5, 1 << 16, 1u << 25, "ESP8285H16"},
    {0, 1 << 16, 1u << 25 | 1u << 26, "ESP8285"},   /* "4" is not in esptool's table */
    {0, 0, 1u << 25 | 1u << 26, "ESP8266EX"},       /* neither ESP8285 bit */
    {1 << 5, 1 << 15, 0, "ESP8266EX"},
  };
  for (size_t i = 0; i < NA(t); i++) {
    const regval rv[] = {{MAC0, t[i].mac0}, {W2, t[i].w2}, {MAC3, t[i].mac3}};
    decode(EG_CHIP_ESP8266, rv, NA(rv), 115200, &id);
    DESC_EQ(id, t[i].desc);
  }
}

/* S2 (ET targets/esp32s2.py:128-175): names by flash + 100 * PSRAM caps,
 * minor = w3 b20 << 3 | w4[6:4]; 40 MHz fixed. */
static void test_decode_s2(void **state) {
  (void)state;
  const uint32_t A = 0x3F41A044, B = 0x3F41A048, W3 = 0x3F41A050, W4 = 0x3F41A054;
  static const struct {
    uint32_t w3, w4;
    const char *desc;
  } t[] = {
    {0, 0, "ESP32-S2 (revision v0.0)"},
    {1u << 21 | 1u << 18, 1u << 4, "ESP32-S2FH2 (revision v1.1)"},
    {2u << 21, 0, "ESP32-S2FH4 (revision v0.0)"},
    {2u << 21 | 1u << 28 | 1u << 20, 3u << 4, "ESP32-S2FNR2 (revision v0.11)"},
    {1u << 28 | 2u << 18, 0x0F, "ESP32-S2R2 (revision v2.0)"}, /* w4[3:0] is not the package here */
    {3u << 21, 0, "Unknown ESP32-S2 (revision v0.0)"},
    {1u << 21 | 1u << 28, 0, "Unknown ESP32-S2 (revision v0.0)"}, /* 101 */
  };
  for (size_t i = 0; i < NA(t); i++) {
    const regval rv[] = {{A, 0x56789ABC}, {B, 0x00001234}, {W3, t[i].w3}, {W4, t[i].w4}};
    eg_chip_ident id;
    decode(EG_CHIP_ESP32S2, rv, NA(rv), 115200, &id);
    DESC_EQ(id, t[i].desc);
    MAC_EQ(id, "12:34:56:78:9a:bc");
    assert_int_equal(id.crystal_mhz, 40);
  }
}

/* S3 (ET targets/esp32s3.py:138-193): the ECO0 rule. */
static void test_decode_s3(void **state) {
  (void)state;
  const uint32_t W3 = 0x60007050, W5 = 0x60007058, BLK2W4 = 0x6000706C;
  static const struct {
    uint32_t w3, w5, blk2w4;
    const char *desc;
  } t[] = {
    {0, 0, 0, "ESP32-S3 (QFN56) (revision v0.0)"},
    {1u << 21 | 2u << 18, 0, 0, "ESP32-S3-PICO-1 (LGA56) (revision v0.2)"},
    {1u << 24, 1u << 24, 0, "ESP32-S3 (QFN56) (revision v1.0)"},      /* blk major 0: not ECO0 */
    {1u << 24, 1u << 24, 1, "ESP32-S3 (QFN56) (revision v0.0)"},      /* ECO0: major reads 0 */
    {1u << 24 | 1u << 18, 1u << 24, 1, "ESP32-S3 (QFN56) (revision v1.1)"}, /* minor & 7 != 0 */
    {1u << 24, 1u << 24 | 1u << 23, 1, "ESP32-S3 (QFN56) (revision v0.0)"}, /* raw minor 8: & 7 == 0 */
    {2u << 24, 1u << 24, 1, "ESP32-S3 (QFN56) (revision v1.0)"},      /* blk minor 2 */
    {1u << 24 | 2u << 18, 2u << 24 | 1u << 23, 0, "ESP32-S3 (QFN56) (revision v2.10)"},
    {2u << 21, 0, 0, "Unknown ESP32-S3 (revision v0.0)"},
  };
  for (size_t i = 0; i < NA(t); i++) {
    const regval rv[] = {{W3, t[i].w3}, {W5, t[i].w5}, {BLK2W4, t[i].blk2w4}};
    eg_chip_ident id;
    decode(EG_CHIP_ESP32S3, rv, NA(rv), 115200, &id);
    DESC_EQ(id, t[i].desc);
    assert_int_equal(id.crystal_mhz, 40);
  }
}

/* C3 packages (ET targets/esp32c3.py:114-147). */
static void test_decode_c3(void **state) {
  (void)state;
  const uint32_t W3 = 0x60008850, W5 = 0x60008858;
  static const struct {
    uint32_t w3, w5;
    const char *desc;
  } t[] = {
    {1u << 21 | 4u << 18, 1u << 24, "ESP8685 (QFN28) (revision v1.4)"},
    {2u << 21, 0, "ESP32-C3 AZ (QFN32) (revision v0.0)"},
    {3u << 21 | 7u << 18, 3u << 24 | 1u << 23, "ESP8686 (QFN24) (revision v3.15)"},
    {4u << 21, 0, "Unknown ESP32-C3 (revision v0.0)"},
  };
  for (size_t i = 0; i < NA(t); i++) {
    const regval rv[] = {{W3, t[i].w3}, {W5, t[i].w5}};
    eg_chip_ident id;
    decode(EG_CHIP_ESP32C3, rv, NA(rv), 115200, &id);
    DESC_EQ(id, t[i].desc);
  }
}

/* C2: package and revision share the MAC's second word (ET
 * targets/esp32c2.py:24-26,73-105); crystal estimated; CHANGE_BAUDRATE
 * quirk for 26 MHz (ET targets/esp32c2.py:120-147). */
static void test_decode_c2(void **state) {
  (void)state;
  const uint32_t A = 0x60008840, B = 0x60008844, CLK = 0x60000014;
  eg_chip_ident id;
  const regval rv26[] = {{A, 0xC4000001}, {B, 1u << 22 | 1u << 20 | 2u << 16 | 0x240A}, {CLK, 226}};
  decode(EG_CHIP_ESP32C2, rv26, NA(rv26), 115200, &id);
  DESC_EQ(id, "ESP8684H (revision v1.2)");
  MAC_EQ(id, "24:0a:c4:00:00:01");
  assert_int_equal(id.crystal_mhz, 26); /* 115200 * 226 / 1e6 = 26.04 */
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 460800), 708923); /* 460800 * 40 // 26 */
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 115200), 177230);
  const regval rv40[] = {{A, 0xC4000001}, {B, 0x240A}, {CLK, 0x15A}};
  decode(EG_CHIP_ESP32C2, rv40, NA(rv40), 115200, &id);
  DESC_EQ(id, "ESP32-C2 (revision v0.0)");
  assert_int_equal(id.crystal_mhz, 40);
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 460800), 460800);
  /* Line rate unknown (TCP): no crystal, no quirk. */
  decode(EG_CHIP_ESP32C2, rv26, NA(rv26), 0, &id);
  assert_int_equal(id.crystal_mhz, 0);
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 460800), 460800);
  const regval rv7[] = {{B, 7u << 22}};
  decode(EG_CHIP_ESP32C2, rv7, NA(rv7), 115200, &id);
  DESC_EQ(id, "Unknown ESP32-C2 (revision v0.0)");
  assert_false(chip(EG_CHIP_ESP32C2)->rom_baud_in_sdm);
}

/* C6 (ET targets/esp32c6.py:99-170): FH4 / FH8 by flash_cap, EUI-64. H2
 * inherits the MAC rule (ET targets/esp32h2.py:50-75). */
static void test_decode_c6_h2(void **state) {
  (void)state;
  const uint32_t A = 0x600B0844, B = 0x600B0848, W3 = 0x600B0850, W4 = 0x600B0854;
  static const struct {
    uint32_t w3, w4;
    const char *desc;
  } t[] = {
    {0, 0, "ESP32-C6 (QFN40) (revision v0.0)"},
    {1u << 22 | 1u << 18, 5, "ESP32-C6 (QFN40) (revision v1.1)"},
    {1u << 24 | 2u << 18, 1, "ESP32-C6FH4 (QFN32) (revision v0.2)"},
    {1u << 24 | 0xFu << 18, 2, "ESP32-C6FH8 (QFN32) (revision v0.15)"},
    {1u << 24, 3, "Unknown ESP32-C6 (revision v0.0)"},
    {2u << 24, 0, "Unknown ESP32-C6 (revision v0.0)"},
  };
  for (size_t i = 0; i < NA(t); i++) {
    const regval rv[] = {{A, 0xC4000001}, {B, 0xFFFE240A}, {W3, t[i].w3}, {W4, t[i].w4}};
    eg_chip_ident id;
    decode(EG_CHIP_ESP32C6, rv, NA(rv), 115200, &id);
    DESC_EQ(id, t[i].desc);
    MAC_EQ(id, "24:0a:c4:00:00:01");
    assert_true(id.has_mac_ext);
    assert_int_equal(id.mac_ext[0], 0xFF);
    assert_int_equal(id.mac_ext[1], 0xFE);
    assert_int_equal(id.crystal_mhz, 40);
  }
  /* H2: major w3[22:21], minor w3[20:18], package w4[2:0], 32 MHz. */
  const regval h2[] = {{A, 0x00000001}, {B, 0x1234AABB}, {W3, 1u << 21 | 2u << 18}, {W4, 0}};
  eg_chip_ident id;
  decode(EG_CHIP_ESP32H2, h2, NA(h2), 115200, &id);
  DESC_EQ(id, "ESP32-H2 (revision v1.2)");
  MAC_EQ(id, "aa:bb:00:00:00:01");
  assert_int_equal(id.mac_ext[0], 0x12);
  assert_int_equal(id.mac_ext[1], 0x34);
  assert_int_equal(id.crystal_mhz, 32);
  const regval h2u[] = {{W4, 1}};
  decode(EG_CHIP_ESP32H2, h2u, NA(h2u), 115200, &id);
  DESC_EQ(id, "Unknown ESP32-H2 (revision v0.0)");
}

/* C5 (ET targets/esp32c5.py:103-178): fields in w2, estimated crystal, the
 * ROM's expected crystal in PCR_SYSCLK_CONF[30:24]; C61 has the same fields,
 * a fixed 40 MHz and no EUI-64 (ET targets/esp32c61.py:78-110). */
static void test_decode_c5_c61(void **state) {
  (void)state;
  const uint32_t A = 0x600B4844, B = 0x600B4848, W2 = 0x600B484C, CLK = 0x60000014, PCR = 0x60096110;
  eg_chip_ident id;
  {
    const regval rv[] = {{A, 0x33445566}, {B, 0xFFFE1122}, {W2, 1u << 4 | 2}, {CLK, 417}, {PCR, 40u << 24 | 0x00FFFFFF}};
    decode(EG_CHIP_ESP32C5, rv, NA(rv), 115200, &id);
    DESC_EQ(id, "ESP32-C5 (revision v1.2)");
    MAC_EQ(id, "11:22:33:44:55:66");
    assert_true(id.has_mac_ext);
    assert_int_equal(id.crystal_mhz, 48);         /* 115200 * 417 = 48.04 MHz */
    assert_int_equal(id.rom_xtal_expect_mhz, 40);
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), 768000); /* 921600 * 40 // 48 */
  }
  {
    const regval rv[] = {{W2, 1u << 26}, {CLK, 0x15A}, {PCR, 48u << 24}};
    decode(EG_CHIP_ESP32C5, rv, NA(rv), 115200, &id);
    DESC_EQ(id, "Unknown ESP32-C5 (revision v0.0)");
    assert_int_equal(id.crystal_mhz, 40);
    assert_int_equal(id.rom_xtal_expect_mhz, 48);
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), 1105920); /* 921600 * 48 // 40 */
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 115201), 138241);  /* floor */
  }
  {
    const regval rv[] = {{CLK, 0x15A}, {PCR, 40u << 24}};
    decode(EG_CHIP_ESP32C5, rv, NA(rv), 115200, &id);
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), 921600); /* as expected */
  }
  assert_false(chip(EG_CHIP_ESP32C5)->rom_baud_in_sdm);
  {
    const regval rv[] = {{A, 0x33445566}, {B, 0xFFFE1122}, {W2, 3u << 4 | 0xF}};
    decode(EG_CHIP_ESP32C61, rv, NA(rv), 0, &id);
    DESC_EQ(id, "ESP32-C61 (revision v3.15)");
    MAC_EQ(id, "11:22:33:44:55:66");
    assert_false(id.has_mac_ext);
    assert_int_equal(id.crystal_mhz, 40);
    assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), 921600);
  }
}

/* P4 (ET targets/esp32p4.py:142-161,293-373): major = w2 b23 << 2 | w2[5:4];
 * stub and UARTDEV_BUF_NO by revision; flash power-up on v3.1 / v3.2. */
static void test_decode_p4(void **state) {
  (void)state;
  const uint32_t A = 0x5012D044, B = 0x5012D048, W2 = 0x5012D04C, RD1 = 0x5012D034;
  const eg_chip *p4 = chip(EG_CHIP_ESP32P4);
  eg_chip_ident id;
  const regval r1[] = {{A, 0x00000102}, {B, 0x0000ABCD}, {W2, 1u << 4}};
  decode(EG_CHIP_ESP32P4, r1, NA(r1), 115200, &id);
  DESC_EQ(id, "ESP32-P4 (revision v1.0)");
  MAC_EQ(id, "ab:cd:00:00:01:02");
  assert_string_equal(eg_chip_stub_name(p4, &id), "esp32p4-rev1");
  assert_int_equal(eg_chip_uartdev_buf_no(p4, &id), 0x4FF3FEB0u + 24);
  assert_int_equal(eg_chip_flash_power_script(p4, &id).n, 0);
  const regval r31[] = {{W2, 3u << 4 | 1}};
  decode(EG_CHIP_ESP32P4, r31, NA(r31), 115200, &id);
  DESC_EQ(id, "ESP32-P4 (revision v3.1)");
  assert_string_equal(eg_chip_stub_name(p4, &id), "esp32p4");
  assert_int_equal(eg_chip_uartdev_buf_no(p4, &id), 0x4FFBFEB0u + 24);
  eg_regscript s = eg_chip_flash_power_script(p4, &id);
  assert_int_equal(s.n, 11);
  assert_int_equal(s.ops[0].kind, EG_REGW_WRITE);
  assert_int_equal(s.ops[0].addr, 0x5011010Cu);
  assert_int_equal(s.ops[0].value, 1);
  assert_int_equal(s.ops[1].kind, EG_REGW_DELAY_US);
  assert_int_equal(s.ops[1].value, 10000);
  assert_int_equal(s.ops[7].kind, EG_REGW_CLEAR_BITS);
  assert_int_equal(s.ops[7].addr, 0x501151B8u);
  assert_int_equal(s.ops[7].value, 0x7F800000u);
  assert_int_equal(s.ops[10].value, 1800);
  const regval r32[] = {{W2, 3u << 4 | 2}, {RD1, 1u << 16}};
  decode(EG_CHIP_ESP32P4, r32, NA(r32), 115200, &id);
  assert_true(id.flash_xpd_on);
  s = eg_chip_flash_power_script(p4, &id);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.ops[0].addr, 0x501153FCu);
  assert_int_equal(s.ops[0].value, 0);
  const regval r32b[] = {{W2, 3u << 4 | 2}};
  decode(EG_CHIP_ESP32P4, r32b, NA(r32b), 115200, &id);
  assert_int_equal(eg_chip_flash_power_script(p4, &id).n, 11);
  const regval r50[] = {{W2, 1u << 23 | 1u << 4 | 3}};
  decode(EG_CHIP_ESP32P4, r50, NA(r50), 115200, &id);
  DESC_EQ(id, "ESP32-P4 (revision v5.3)");
  const regval r40[] = {{W2, 1u << 23}};
  decode(EG_CHIP_ESP32P4, r40, NA(r40), 115200, &id);
  DESC_EQ(id, "ESP32-P4 (revision v4.0)");
  assert_int_equal(eg_chip_flash_power_script(p4, &id).n, 0);
  const regval rpk[] = {{W2, 1u << 20}};
  decode(EG_CHIP_ESP32P4, rpk, NA(rpk), 115200, &id);
  DESC_EQ(id, "Unknown ESP32-P4 (revision v0.0)");
  /* No other chip has a flash power script or an old stub. */
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    if (i == EG_CHIP_ESP32P4) continue;
    memset(&id, 0, sizeof id);
    id.has_rev = true;
    id.rev_major = 3;
    id.rev_minor = 1;
    assert_int_equal(eg_chip_flash_power_script(chip((eg_chip_id)i), &id).n, 0);
    id.rev_major = 0;
    assert_string_equal(eg_chip_stub_name(chip((eg_chip_id)i), &id), chip((eg_chip_id)i)->arg_name);
  }
}

/* eg_chip_encode (for simulators) and eg_chip_decode are inverses: random
 * facts within each field's width, every package name of the table. */
static uint32_t lcg(uint32_t *x) {
  *x = *x * 1664525u + 1013904223u;
  return *x >> 8;
}

static int width_of(eg_field f) { return f.hi.width + f.lo.width; }

static void test_encode_roundtrip(void **state) {
  (void)state;
  uint32_t seed = 12345;
  const uint32_t bauds[] = {115200, 921600, 230400};
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = chip((eg_chip_id)i);
    for (int k = 0; k < 300; k++) {
      eg_chip_sim f;
      memset(&f, 0, sizeof f);
      for (size_t b = 0; b < 6; b++) f.mac[b] = (uint8_t)lcg(&seed);
      if (i == EG_CHIP_ESP8266 && !(f.mac[0] | f.mac[1] | f.mac[2])) f.mac[2] = 1; /* OUI 0 reads as 18:fe:34 */
      f.mac_ext[0] = (uint8_t)lcg(&seed);
      f.mac_ext[1] = (uint8_t)lcg(&seed);
      f.rev_major = c->rev_rule == EG_REV_ESP32 ? (int)(lcg(&seed) % 4) : (int)(lcg(&seed) % (1u << width_of(c->rev_major)));
      f.rev_minor = (int)(lcg(&seed) % (1u << width_of(c->rev_minor)));
      const char *name = "ESP8266EX";
      if (c->npkg_names) {
        const eg_pkg_name *p = &c->pkg_names[lcg(&seed) % c->npkg_names];
        f.pkg = p->pkg;
        f.pkg_sub = p->sub >= 0 ? p->sub : c->pkg_sub.width ? (int)(lcg(&seed) % (1u << c->pkg_sub.width)) : 0;
        if (p->major >= 0) f.rev_major = p->major;
        /* The first entry that matches names it (the table's order). */
        for (size_t n = 0; n < c->npkg_names; n++) {
          const eg_pkg_name *q = &c->pkg_names[n];
          if (q->pkg == f.pkg && (q->sub < 0 || q->sub == f.pkg_sub) && (q->major < 0 || q->major == f.rev_major)) {
            name = q->name;
            break;
          }
        }
      }
      const int xtals[] = {26, 40, 48};
      f.crystal_mhz = c->xtal_rule == EG_XTAL_FIXED ? c->xtal_mhz : xtals[lcg(&seed) % 3];
      f.rom_xtal_expect_mhz = lcg(&seed) % 2 ? 40 : 48;
      f.flash_encryption = lcg(&seed) % 2;
      f.secure_boot = lcg(&seed) % 2;
      const uint32_t baud = bauds[k % 3];
      uint32_t vals[EG_CHIP_IDENT_MAX];
      eg_chip_encode(c, &f, baud, vals);
      eg_chip_ident id;
      eg_chip_decode(c, vals, baud, &id);
      char want[80], m[18];
      if (c->rev_rule != EG_REV_NONE) snprintf(want, sizeof want, "%s (revision v%d.%d)", name, f.rev_major, f.rev_minor);
      else snprintf(want, sizeof want, "%s", name);
      if (strcmp(id.desc, want) != 0) fail_msg("%s case %d: desc \"%s\", want \"%s\"", c->name, k, id.desc, want);
      assert_true(id.has_mac);
      if (memcmp(id.mac, f.mac, 6) != 0) fail_msg("%s case %d: MAC %s", c->name, k, mac_str(id.mac, m, sizeof m));
      assert_int_equal(id.has_mac_ext, c->mac_eui64);
      if (c->mac_eui64) assert_memory_equal(id.mac_ext, f.mac_ext, 2);
      if (c->rev_rule != EG_REV_NONE) {
        assert_int_equal(id.rev_major, f.rev_major);
        assert_int_equal(id.rev_minor, f.rev_minor);
        assert_int_equal(id.pkg, f.pkg);
      }
      if (id.crystal_mhz != f.crystal_mhz) fail_msg("%s case %d @%u: crystal %d, want %d", c->name, k, baud, id.crystal_mhz, f.crystal_mhz);
      assert_int_equal(id.rom_xtal_expect_mhz, c->rom_xtal_expect.width ? f.rom_xtal_expect_mhz : 0);
      const bool sec = c->crypt_cnt.width != 0;
      assert_int_equal(id.flash_encryption, sec && f.flash_encryption);
      assert_int_equal(id.secure_boot, sec && f.secure_boot);
      assert_int_equal(id.spi_attach_arg, 0);
    }
  }
}

/* ESP32's SPI_ATTACH argument and CHANGE_BAUDRATE value from the decode. */
static void test_decode_esp32_attach_and_baud(void **state) {
  (void)state;
  const uint32_t W3 = 0x3FF5A00C, W4 = 0x3FF5A010, W5 = 0x3FF5A014, CALI = 0x3FF5F06C, CLK = 0x3FF40014;
  eg_chip_ident id;
  /* clk 6, q 17, d 8, cs 16 in w5, hd 11 in w3 (with revision bits around). */
  const regval rv[] = {{W3, 11u << 4 | 1u << 15}, {W5, 6u | 17u << 5 | 8u << 10 | 16u << 15 | 1u << 20},
                       {W4, 100 | 0x1F00}, {CALI, 1050u << 7 | 0x7F}, {CLK, 0x15A}};
  decode(EG_CHIP_ESP32, rv, NA(rv), 115200, &id);
  assert_int_equal(id.spi_attach_arg, 11u << 24 | 16u << 18 | 8u << 12 | 17u << 6 | 6u);
  /* f_rom = 1050 * 15625 * 100 / 40 = 41 015 625 -> 921600 * f_rom // 40e6 = 945000. */
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), 945000);
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), eg_esp32_rom_baud_value(921600, 1050u << 7, 100));
  /* No calibration read: the rate as is. */
  const regval none[] = {{CLK, 0x15A}};
  decode(EG_CHIP_ESP32, none, NA(none), 115200, &id);
  assert_int_equal(id.spi_attach_arg, 0);
  assert_int_equal(eg_chip_rom_baud_value(id.chip, &id, 921600), 921600);
  /* Other chips: SPI_ATTACH 0 whatever their eFuses say; plain rates. */
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = chip((eg_chip_id)i);
    uint32_t addrs[EG_CHIP_IDENT_MAX], vals[EG_CHIP_IDENT_MAX];
    const size_t n = eg_chip_ident_regs(c, addrs, NA(addrs));
    for (size_t k = 0; k < n; k++) vals[k] = 0x5A5A5A5Au;
    eg_chip_decode(c, vals, 115200, &id);
    if (i != EG_CHIP_ESP32) assert_int_equal(id.spi_attach_arg, 0);
    if (c->rom_baud == EG_ROM_BAUD_PLAIN) assert_int_equal(eg_chip_rom_baud_value(c, &id, 230400), 230400);
  }
  assert_int_equal(eg_chip_rom_baud_value(chip(EG_CHIP_ESP32S3), NULL, 230400), 230400);
}

/* Flash encryption and secure boot as esptool reads them outside Secure
 * Download Mode (ET targets/esp32.py:171-190 and each target's registers). */
static void test_decode_security(void **state) {
  (void)state;
  eg_chip_ident id;
  static const struct {
    uint32_t w0, w6, w3, w5, apb;
    bool enc, sb, dl;
  } esp32[] = {
    {0, 0, 0, 0, 0, false, false, false},
    {1u << 20, 0, 0, 0, 0, true, false, false},
    {3u << 20, 0, 0, 0, 0, false, false, false},
    {7u << 20, 0, 0, 0, 0, true, false, false},
    {0x7Fu << 20, 1u << 4, 0, 0, 0, true, true, false},
    {1u << 19 | 1u << 27, 1u << 5, 0, 0, 0, false, false, false},           /* outside FLASH_CRYPT_CNT; ABS_DONE_1 before v3 */
    {0, 1u << 5, 1u << 15, 1u << 20, 1u << 31, false, true, false},          /* ABS_DONE_1 on v3.0 */
    {0, 1u << 7, 0, 0, 0, false, false, true},
  };
  for (size_t i = 0; i < NA(esp32); i++) {
    const regval rv[] = {{0x3FF5A000, esp32[i].w0}, {0x3FF5A018, esp32[i].w6}, {0x3FF5A00C, esp32[i].w3},
                         {0x3FF5A014, esp32[i].w5}, {0x3FF6607C, esp32[i].apb}};
    decode(EG_CHIP_ESP32, rv, NA(rv), 115200, &id);
    if (id.flash_encryption != esp32[i].enc || id.secure_boot != esp32[i].sb || id.dl_encrypt_disabled != esp32[i].dl)
      fail_msg("ESP32 case %zu: enc %d sb %d dl %d, want %d %d %d", i, id.flash_encryption, id.secure_boot,
               id.dl_encrypt_disabled, esp32[i].enc, esp32[i].sb, esp32[i].dl);
  }
  decode(EG_CHIP_ESP32, (regval[]){{0x3FF5A000, 5u << 20}}, 1, 115200, &id);
  assert_int_equal(id.flash_crypt_cnt, 5);
  /* One case per chip: (crypt-cnt register, the lowest bit of its 3-bit
   * field, secure-boot register, its bit, DIS_DOWNLOAD_MANUAL_ENCRYPT
   * register, its bit). */
  static const struct {
    eg_chip_id id;
    uint32_t cnt_reg, cnt_val, sb_reg, sb_bit, dl_reg, dl_bit;
  } t[] = {
    {EG_CHIP_ESP32S2, 0x3F41A034, 1u << 18, 0x3F41A038, 1u << 20, 0x3F41A030, 1u << 19},
    {EG_CHIP_ESP32S3, 0x60007034, 1u << 18, 0x60007038, 1u << 20, 0x60007030, 1u << 20},
    {EG_CHIP_ESP32C3, 0x60008834, 1u << 18, 0x60008838, 1u << 20, 0x60008830, 1u << 20},
    {EG_CHIP_ESP32C2, 0x60008830, 1u << 7, 0x60008830, 1u << 21, 0x60008830, 1u << 6},
    {EG_CHIP_ESP32C6, 0x600B0834, 1u << 18, 0x600B0838, 1u << 20, 0x600B0830, 1u << 20},
    {EG_CHIP_ESP32H2, 0x600B0834, 1u << 18, 0x600B0838, 1u << 20, 0x600B0830, 1u << 20},
    {EG_CHIP_ESP32C5, 0x600B4834, 1u << 16, 0x600B4838, 1u << 25, 0x600B4830, 1u << 20},
    {EG_CHIP_ESP32C61, 0x600B4830, 1u << 23, 0x600B4834, 1u << 26, 0x600B4830, 1u << 14},
    {EG_CHIP_ESP32P4, 0x5012D034, 1u << 18, 0x5012D038, 1u << 20, 0x5012D030, 1u << 20},
  };
  for (size_t i = 0; i < NA(t); i++) {
    const char *name = chip(t[i].id)->name;
    /* Each alone. */
    decode(t[i].id, (regval[]){{t[i].cnt_reg, t[i].cnt_val}}, 1, 115200, &id);
    if (!id.flash_encryption || id.secure_boot || id.dl_encrypt_disabled) fail_msg("%s: crypt cnt alone", name);
    decode(t[i].id, (regval[]){{t[i].cnt_reg, t[i].cnt_val * 3}}, 1, 115200, &id); /* two bits: even */
    if (id.flash_encryption) fail_msg("%s: even crypt cnt", name);
    decode(t[i].id, (regval[]){{t[i].sb_reg, t[i].sb_bit}}, 1, 115200, &id);
    if (id.flash_encryption || !id.secure_boot || id.dl_encrypt_disabled) fail_msg("%s: secure boot alone", name);
    decode(t[i].id, (regval[]){{t[i].dl_reg, t[i].dl_bit}}, 1, 115200, &id);
    if (id.flash_encryption || id.secure_boot || !id.dl_encrypt_disabled) fail_msg("%s: dl-encrypt alone", name);
    /* Everything else set: none of them. */
    decode(t[i].id, (regval[]){{t[i].cnt_reg, ~(t[i].cnt_val * 7)}}, 1, 115200, &id);
    if (t[i].cnt_reg != t[i].sb_reg && t[i].cnt_reg != t[i].dl_reg && id.flash_encryption)
      fail_msg("%s: neighbours of the crypt cnt", name);
  }
  /* ESP8266: none of it. */
  decode(EG_CHIP_ESP8266, (regval[]){{0x3FF00050, 0xFFFFFFFF}}, 1, 115200, &id);
  assert_false(id.flash_encryption || id.secure_boot || id.dl_encrypt_disabled);
}

/* When esptool loads no stub (ET cmds.py:2470-2484, targets/esp32c2.py:149-153). */
static void test_stub_allowed(void **state) {
  (void)state;
  const char *why = "x";
  eg_chip_ident id;
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = chip((eg_chip_id)i);
    memset(&id, 0, sizeof id);
    id.has_rev = c->rev_rule != EG_REV_NONE;
    id.rev_major = 1;
    assert_true(eg_chip_stub_allowed(c, &id, false, &why));
    assert_null(why);
    assert_true(eg_chip_stub_allowed(c, NULL, false, NULL));
    assert_false(eg_chip_stub_allowed(c, &id, true, &why));
    assert_string_equal(why, "the stub is not supported in Secure Download Mode");
    assert_false(eg_chip_stub_allowed(c, NULL, true, NULL));
    /* Secure boot: only the C3 refuses. */
    id.secure_boot = true;
    assert_int_equal(eg_chip_stub_allowed(c, &id, false, &why), i != EG_CHIP_ESP32C3);
    if (i == EG_CHIP_ESP32C3) assert_string_equal(why, "the stub is not supported on this chip with secure boot");
    /* v0.0: only the C2 refuses (v0.1 and v1.0 are fine). */
    id.secure_boot = false;
    id.rev_major = 0;
    assert_int_equal(eg_chip_stub_allowed(c, &id, false, &why), i != EG_CHIP_ESP32C2 || !id.has_rev);
    if (i == EG_CHIP_ESP32C2) assert_string_equal(why, "the stub does not support this chip revision (v0.0)");
    id.rev_minor = 1;
    assert_true(eg_chip_stub_allowed(c, &id, false, NULL));
  }
  /* Decoded: a C2 with its revision word all zero, a C3 with SECURE_BOOT_EN. */
  decode(EG_CHIP_ESP32C2, (regval[]){{0x60008844, 0x240A}}, 1, 115200, &id);
  assert_false(eg_chip_stub_allowed(id.chip, &id, false, NULL));
  decode(EG_CHIP_ESP32C3, (regval[]){{0x60008838, 1u << 20}}, 1, 115200, &id);
  assert_false(eg_chip_stub_allowed(id.chip, &id, false, NULL));
}

/* ------------------------------------------------------------ image check */

static void hdr(uint8_t h[24], unsigned chip_id, unsigned min_rev, unsigned min_full, unsigned max_full) {
  memset(h, 0, 24);
  h[0] = 0xE9;
  h[1] = 3;
  h[8] = 0xEE;
  h[12] = (uint8_t)chip_id;
  h[13] = (uint8_t)(chip_id >> 8);
  h[14] = (uint8_t)min_rev;
  h[15] = (uint8_t)min_full;
  h[16] = (uint8_t)(min_full >> 8);
  h[17] = (uint8_t)max_full;
  h[18] = (uint8_t)(max_full >> 8);
}

#define CHECK(cid, maj, min, want, want_why)                                                              \
  do {                                                                                                    \
    char why_[160];                                                                                       \
    const eg_image_check r_ = eg_chip_check_image(chip(cid), h, sizeof h, (maj), (min), why_, sizeof why_); \
    if (r_ != (want) || strcmp(why_, (want_why)) != 0)                                                    \
      fail_msg("%s v%d.%d: got %d \"%s\", want %d \"%s\"", chip(cid)->name, (maj), (min), r_, why_, (want), (want_why)); \
  } while (0)

/* esptool's write-flash check (ET cmds.py:980-1065). */
static void test_check_image(void **state) {
  (void)state;
  uint8_t h[24];
  /* Each chip accepts its own id with no revision limits, refuses another's. */
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = chip((eg_chip_id)i);
    if (c->chip_id < 0) continue;
    hdr(h, (unsigned)c->chip_id, 0, 0, 0xFFFF);
    CHECK((eg_chip_id)i, 0, 0, EG_IMAGE_OK, "");
    for (int j = 0; j < EG_CHIP__COUNT; j++) {
      const eg_chip *o = chip((eg_chip_id)j);
      if (j == i || o->chip_id < 0) continue;
      hdr(h, (unsigned)o->chip_id, 0, 0, 0xFFFF);
      char why[160], want[160];
      snprintf(want, sizeof want, "image is for %s (chip id %d), the chip is an %s", o->name, o->chip_id, c->name);
      assert_int_equal(eg_chip_check_image(c, h, sizeof h, 9, 9, why, sizeof why), EG_IMAGE_WRONG_CHIP);
      assert_string_equal(why, want);
    }
  }
  hdr(h, 5, 0, 0, 0xFFFF);
  CHECK(EG_CHIP_ESP32S3, 0, 2, EG_IMAGE_WRONG_CHIP, "image is for ESP32-C3 (chip id 5), the chip is an ESP32-S3");
  hdr(h, 99, 0, 0, 0xFFFF);
  CHECK(EG_CHIP_ESP32S3, 0, 2, EG_IMAGE_WRONG_CHIP,
        "image is for chip id 99 (not a chip espgang knows), the chip is an ESP32-S3 (chip id 9)");
  hdr(h, 0x0109, 0, 0, 0xFFFF); /* the id is 16 bits */
  CHECK(EG_CHIP_ESP32S3, 0, 2, EG_IMAGE_WRONG_CHIP,
        "image is for chip id 265 (not a chip espgang knows), the chip is an ESP32-S3 (chip id 9)");

  /* Legacy min_rev (max_rev_full 0): the major revision... */
  hdr(h, 0, 3, 0, 0);
  CHECK(EG_CHIP_ESP32, 3, 0, EG_IMAGE_OK, "");
  CHECK(EG_CHIP_ESP32, 2, 9, EG_IMAGE_WRONG_REV, "image needs revision >= v3.0 (legacy min_rev 3), chip is v2.9");
  hdr(h, 9, 1, 0, 0);
  CHECK(EG_CHIP_ESP32S3, 0, 2, EG_IMAGE_WRONG_REV, "image needs revision >= v1.0 (legacy min_rev 1), chip is v0.2");
  CHECK(EG_CHIP_ESP32S3, 1, 0, EG_IMAGE_OK, "");
  /* ...but the minor on the C3, whatever the major. */
  hdr(h, 5, 3, 0, 0);
  CHECK(EG_CHIP_ESP32C3, 0, 3, EG_IMAGE_OK, "");
  CHECK(EG_CHIP_ESP32C3, 0, 2, EG_IMAGE_WRONG_REV, "image needs minor revision >= 3 (legacy min_rev), chip is v0.2");
  CHECK(EG_CHIP_ESP32C3, 1, 0, EG_IMAGE_WRONG_REV, "image needs minor revision >= 3 (legacy min_rev), chip is v1.0");
  /* max_rev_full 0xFFFF with min_rev_full 0 and min_rev set: still legacy. */
  hdr(h, 13, 1, 0, 0xFFFF);
  CHECK(EG_CHIP_ESP32C6, 0, 1, EG_IMAGE_WRONG_REV, "image needs revision >= v1.0 (legacy min_rev 1), chip is v0.1");
  CHECK(EG_CHIP_ESP32C6, 1, 0, EG_IMAGE_OK, "");
  /* Full fields, no maximum. */
  hdr(h, 9, 0, 1, 0xFFFF);
  CHECK(EG_CHIP_ESP32S3, 0, 0, EG_IMAGE_WRONG_REV, "image needs revision >= v0.1, chip is v0.0");
  CHECK(EG_CHIP_ESP32S3, 0, 1, EG_IMAGE_OK, "");
  CHECK(EG_CHIP_ESP32S3, 1, 0, EG_IMAGE_OK, "");
  /* min_rev beside full fields does not count (min_rev_full set). */
  hdr(h, 9, 7, 1, 0xFFFF);
  CHECK(EG_CHIP_ESP32S3, 0, 1, EG_IMAGE_OK, "");
  /* Full fields with a maximum. */
  hdr(h, 5, 0, 3, 199);
  CHECK(EG_CHIP_ESP32C3, 0, 3, EG_IMAGE_OK, "");
  CHECK(EG_CHIP_ESP32C3, 1, 99, EG_IMAGE_OK, "");
  CHECK(EG_CHIP_ESP32C3, 2, 0, EG_IMAGE_WRONG_REV, "image needs revision v0.3 to v1.99, chip is v2.0");
  CHECK(EG_CHIP_ESP32C3, 0, 2, EG_IMAGE_WRONG_REV, "image needs revision v0.3 to v1.99, chip is v0.2");
  hdr(h, 18, 0, 300, 399);
  CHECK(EG_CHIP_ESP32P4, 1, 0, EG_IMAGE_WRONG_REV, "image needs revision v3.0 to v3.99, chip is v1.0");
  /* min_rev_full 0 with a maximum: the full fields (max is not 0xFFFF). */
  hdr(h, 0, 3, 0, 100);
  CHECK(EG_CHIP_ESP32, 3, 0, EG_IMAGE_WRONG_REV, "image needs revision v0.0 to v1.0, chip is v3.0");

  /* Not checked: ESP8266, too short, not an image. */
  char why[64] = "x";
  hdr(h, 0, 0, 0, 0);
  assert_int_equal(eg_chip_check_image(chip(EG_CHIP_ESP8266), h, sizeof h, 0, 0, why, sizeof why), EG_IMAGE_NOT_CHECKED);
  assert_string_equal(why, "");
  assert_int_equal(eg_chip_check_image(chip(EG_CHIP_ESP32), h, 23, 0, 0, why, sizeof why), EG_IMAGE_NOT_CHECKED);
  hdr(h, 5, 0, 0, 0xFFFF);
  h[0] = 0xEA;
  assert_int_equal(eg_chip_check_image(chip(EG_CHIP_ESP32), h, sizeof h, 0, 0, why, sizeof why), EG_IMAGE_NOT_CHECKED);
  /* A short message buffer is cut, still terminated. */
  hdr(h, 5, 0, 0, 0xFFFF);
  char tiny[8];
  assert_int_equal(eg_chip_check_image(chip(EG_CHIP_ESP32), h, sizeof h, 0, 0, tiny, sizeof tiny), EG_IMAGE_WRONG_CHIP);
  assert_string_equal(tiny, "image i");
}

/* ------------------------------------------------------------ USB, resets, scripts */

static void test_usb(void **state) {
  (void)state;
  const eg_chip *c = NULL;
  /* ET loader.py:381-383,1266-1276. */
  assert_int_equal(eg_chip_usb_mode(0x303A, 0x1001, &c), EG_USB_SERIAL_JTAG);
  assert_null(c);
  assert_int_equal(eg_chip_usb_mode(0x303A, 2, &c), EG_USB_OTG);
  CHIP_EQ(c, EG_CHIP_ESP32S2);
  assert_int_equal(eg_chip_usb_mode(0x303A, 9, &c), EG_USB_OTG);
  CHIP_EQ(c, EG_CHIP_ESP32S3);
  assert_int_equal(eg_chip_usb_mode(0x303A, 0x12, &c), EG_USB_OTG);
  CHIP_EQ(c, EG_CHIP_ESP32P4);
  assert_int_equal(eg_chip_usb_mode(0x303A, 0x12, NULL), EG_USB_OTG);
  const int other[][2] = {{0x303A, 5}, {0x303A, 0}, {0x303A, 0x1002}, {0x10C4, 0xEA60}, {0x1A86, 0x7523},
                          {0x10C4, 0x1001}, {-1, -1}, {0x303A, -1}};
  for (size_t i = 0; i < NA(other); i++) {
    c = chip(EG_CHIP_ESP32);
    if (eg_chip_usb_mode(other[i][0], other[i][1], &c) != EG_USB_NONE || c)
      fail_msg("%04x:%04x is not an Espressif USB port", other[i][0], other[i][1]);
  }
  /* UARTDEV_BUF_NO (esptool-js 0.7.0): the low byte counts. */
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32S2), 2), EG_USB_OTG);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32S2), 0xAB02), EG_USB_OTG);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32S2), 3), EG_USB_NONE);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32S3), 3), EG_USB_SERIAL_JTAG);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32S3), 0), EG_USB_NONE);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32C5), 3), EG_USB_SERIAL_JTAG);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32P4), 5), EG_USB_OTG);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32P4), 6), EG_USB_SERIAL_JTAG);
  assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32P4), 0x106), EG_USB_SERIAL_JTAG);
  for (uint32_t v = 0; v < 8; v++) {
    assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32C3), v), EG_USB_NONE);
    assert_int_equal(eg_chip_usb_mode_from_uartdev(chip(EG_CHIP_ESP32), v), EG_USB_NONE);
  }
  assert_int_equal(eg_chip_uartdev_buf_no(chip(EG_CHIP_ESP32S2), NULL), 0x3FFFFD14u);
  assert_int_equal(eg_chip_uartdev_buf_no(chip(EG_CHIP_ESP32S3), NULL), 0x3FCEF14Cu);
  assert_int_equal(eg_chip_uartdev_buf_no(chip(EG_CHIP_ESP32C5), NULL), 0x4085F514u);
  assert_int_equal(eg_chip_uartdev_buf_no(chip(EG_CHIP_ESP32P4), NULL), 0x4FF3FEC8u);
  assert_int_equal(eg_chip_uartdev_buf_no(chip(EG_CHIP_ESP32C3), NULL), 0);
  /* USB port pins (the GPIOs esptool warns about). */
  static const struct { eg_chip_id id; uint8_t a, b; bool jtag; } pins[] = {
    {EG_CHIP_ESP32S2, 19, 20, false}, {EG_CHIP_ESP32S3, 19, 20, true}, {EG_CHIP_ESP32C3, 18, 19, true},
    {EG_CHIP_ESP32C6, 12, 13, true},  {EG_CHIP_ESP32C61, 12, 13, true}, {EG_CHIP_ESP32C5, 13, 14, true},
    {EG_CHIP_ESP32H2, 26, 27, true},  {EG_CHIP_ESP32P4, 24, 25, true},  {EG_CHIP_ESP32C2, 0, 0, false},
    {EG_CHIP_ESP32, 0, 0, false},     {EG_CHIP_ESP8266, 0, 0, false},
  };
  for (size_t i = 0; i < NA(pins); i++) {
    const eg_chip *p = chip(pins[i].id);
    if (p->usb_pins[0] != pins[i].a || p->usb_pins[1] != pins[i].b || p->usb_serial_jtag != pins[i].jtag)
      fail_msg("%s: USB pins %u/%u jtag %d", p->name, p->usb_pins[0], p->usb_pins[1], p->usb_serial_jtag);
  }
}

static void test_resets(void **state) {
  (void)state;
  /* FACT §6 "Hard reset". */
  static const struct { eg_chip_id id; eg_hard_reset r[EG_USB__COUNT]; } t[] = {
    {EG_CHIP_ESP8266, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32S2, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_OTG_STRAPS}},
    {EG_CHIP_ESP32S3, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_OTG_STRAPS}},
    {EG_CHIP_ESP32C3, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32C6, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32H2, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32C2, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32C5, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_USB, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32C61, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC}},
    {EG_CHIP_ESP32P4, {EG_HARD_RESET_CLASSIC, EG_HARD_RESET_CLASSIC, EG_HARD_RESET_WATCHDOG}},
  };
  for (size_t i = 0; i < NA(t); i++)
    for (int u = 0; u < EG_USB__COUNT; u++)
      if (eg_chip_hard_reset(chip(t[i].id), (eg_usb_mode)u) != t[i].r[u])
        fail_msg("%s, USB mode %d: reset %d, want %d", chip(t[i].id)->name, u, eg_chip_hard_reset(chip(t[i].id), (eg_usb_mode)u),
                 t[i].r[u]);
  assert_int_equal(eg_chip_hard_reset(chip(EG_CHIP_ESP32), EG_USB__COUNT), EG_HARD_RESET_CLASSIC);
  /* S2 / S3 on USB-OTG: watchdog when GPIO0 strapped low (bit 3 clear) and
   * download not forced (OPTION1 bit 0 clear), else the USB reset. */
  for (int k = 0; k < 2; k++) {
    const eg_chip *c = chip(k ? EG_CHIP_ESP32S3 : EG_CHIP_ESP32S2);
    assert_int_equal(c->otg_strap_reg, k ? 0x60004038u : 0x3F404038u);
    assert_int_equal(c->otg_option1_reg, k ? 0x6000812Cu : 0x3F408128u);
    assert_int_equal(eg_chip_otg_reset(c, 0, 0), EG_HARD_RESET_WATCHDOG);
    assert_int_equal(eg_chip_otg_reset(c, ~(1u << 3), ~1u), EG_HARD_RESET_WATCHDOG);
    assert_int_equal(eg_chip_otg_reset(c, 1u << 3, 0), EG_HARD_RESET_USB);
    assert_int_equal(eg_chip_otg_reset(c, 0, 1), EG_HARD_RESET_USB);
  }
  /* The S3's prefix: clear OPTION1 bit 0 with a masked write, errors ignored. */
  const eg_regscript p = chip(EG_CHIP_ESP32S3)->hard_reset_prefix;
  assert_int_equal(p.n, 1);
  assert_int_equal(p.ops[0].kind, EG_REGW_WRITE);
  assert_int_equal(p.ops[0].addr, 0x6000812Cu);
  assert_int_equal(p.ops[0].value, 0);
  assert_int_equal(p.ops[0].mask, 1);
  assert_true(p.ops[0].ignore_error);
  for (int i = 0; i < EG_CHIP__COUNT; i++)
    if (i != EG_CHIP_ESP32S3) assert_int_equal(chip((eg_chip_id)i)->hard_reset_prefix.n, 0);
}

/* The watchdog scripts, register by register, from FACT §6's table. */
static void test_watchdog_scripts(void **state) {
  (void)state;
  static const struct {
    eg_chip_id id;
    uint32_t cfg0, cfg1, wprot, swd_conf, swd_bit, swd_wprot, swd_key;
    bool disable, reset;
  } t[] = {
    {EG_CHIP_ESP32S2, 0x3F408094, 0x3F408098, 0x3F4080AC, 0, 0, 0, 0, false, true},
    {EG_CHIP_ESP32S3, 0x60008098, 0x6000809C, 0x600080B0, 0x600080B4, 1u << 31, 0x600080B8, 0x8F1D312A, true, true},
    {EG_CHIP_ESP32C3, 0x60008090, 0x60008094, 0x600080A8, 0x600080AC, 1u << 31, 0x600080B0, 0x8F1D312A, true, true},
    {EG_CHIP_ESP32C2, 0x60008084, 0x60008088, 0x6000809C, 0, 0, 0, 0, false, true},
    {EG_CHIP_ESP32C6, 0x600B1C00, 0x600B1C04, 0x600B1C18, 0x600B1C1C, 1u << 18, 0x600B1C20, 0x50D83AA1, true, false},
    {EG_CHIP_ESP32C61, 0x600B1C00, 0x600B1C04, 0x600B1C18, 0x600B1C1C, 1u << 18, 0x600B1C20, 0x50D83AA1, true, true},
    {EG_CHIP_ESP32C5, 0x600B1C00, 0x600B1C04, 0x600B1C18, 0x600B1C1C, 1u << 18, 0x600B1C20, 0x50D83AA1, true, true},
    {EG_CHIP_ESP32H2, 0x600B1C00, 0x600B1C04, 0x600B1C1C, 0x600B1C20, 1u << 18, 0x600B1C24, 0x50D83AA1, true, false},
    {EG_CHIP_ESP32P4, 0x50116000, 0x50116004, 0x50116018, 0x5011601C, 1u << 18, 0x50116020, 0x50D83AA1, true, true},
    {EG_CHIP_ESP32, 0, 0, 0, 0, 0, 0, 0, false, false},
    {EG_CHIP_ESP8266, 0, 0, 0, 0, 0, 0, 0, false, false},
  };
  const uint32_t WKEY = 0x50D83AA1;
  for (size_t i = 0; i < NA(t); i++) {
    const eg_chip *c = chip(t[i].id);
    const eg_regscript d = c->wdt_disable, r = c->wdt_reset;
    if ((d.n != 0) != t[i].disable || (r.n != 0) != t[i].reset) fail_msg("%s: scripts %zu/%zu", c->name, d.n, r.n);
    if (t[i].disable) {
      /* WPROTECT=WKEY; CONFIG0=0; WPROTECT=0; SWD_WPROTECT=key; SWD_CONF |= bit; SWD_WPROTECT=0. */
      const eg_regwrite want[] = {
        {EG_REGW_WRITE, t[i].wprot, WKEY, 0xFFFFFFFF, false},  {EG_REGW_WRITE, t[i].cfg0, 0, 0xFFFFFFFF, false},
        {EG_REGW_WRITE, t[i].wprot, 0, 0xFFFFFFFF, false},     {EG_REGW_WRITE, t[i].swd_wprot, t[i].swd_key, 0xFFFFFFFF, false},
        {EG_REGW_SET_BITS, t[i].swd_conf, t[i].swd_bit, 0xFFFFFFFF, false}, {EG_REGW_WRITE, t[i].swd_wprot, 0, 0xFFFFFFFF, false},
      };
      assert_int_equal(d.n, NA(want));
      for (size_t k = 0; k < NA(want); k++)
        if (d.ops[k].kind != want[k].kind || d.ops[k].addr != want[k].addr || d.ops[k].value != want[k].value ||
            d.ops[k].mask != want[k].mask || d.ops[k].ignore_error)
          fail_msg("%s wdt_disable[%zu]: %d 0x%08x 0x%08x", c->name, k, d.ops[k].kind, d.ops[k].addr, d.ops[k].value);
    }
    if (t[i].reset) {
      /* WPROTECT=WKEY; CONFIG1=2000; CONFIG0=0xD0000102; WPROTECT=0; 0.5 s. */
      const eg_regwrite want[] = {
        {EG_REGW_WRITE, t[i].wprot, WKEY, 0xFFFFFFFF, false}, {EG_REGW_WRITE, t[i].cfg1, 2000, 0xFFFFFFFF, false},
        {EG_REGW_WRITE, t[i].cfg0, 0xD0000102, 0xFFFFFFFF, false}, {EG_REGW_WRITE, t[i].wprot, 0, 0xFFFFFFFF, false},
        {EG_REGW_DELAY_US, 0, 500000, 0, false},
      };
      assert_int_equal(r.n, NA(want));
      for (size_t k = 0; k < NA(want); k++)
        if (r.ops[k].kind != want[k].kind || r.ops[k].addr != want[k].addr || r.ops[k].value != want[k].value ||
            r.ops[k].mask != want[k].mask)
          fail_msg("%s wdt_reset[%zu]: %d 0x%08x 0x%08x", c->name, k, r.ops[k].kind, r.ops[k].addr, r.ops[k].value);
    }
  }
}

/* ------------------------------------------------------------ flash */

static void test_blocks(void **state) {
  (void)state;
  /* FACT §6 "Block sizes over OTG": RAM and the stub's FLASH_DATA drop to
   * 0x800 on S2, S3, P4 over USB-OTG; the ROM's write block stays 0x400. */
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = chip((eg_chip_id)i);
    const bool otg = i == EG_CHIP_ESP32S2 || i == EG_CHIP_ESP32S3 || i == EG_CHIP_ESP32P4;
    for (int u = 0; u < EG_USB__COUNT; u++) {
      const bool small = otg && u == EG_USB_OTG;
      assert_int_equal(eg_chip_write_block(c, false, (eg_usb_mode)u), 0x400);
      assert_int_equal(eg_chip_write_block(c, true, (eg_usb_mode)u), small ? 0x800 : 0x4000);
      assert_int_equal(eg_chip_ram_block(c, (eg_usb_mode)u), small ? 0x800 : 0x1800);
    }
  }
}

/* The ESP8266 ROM erase-size workaround (ET targets/esp8266.py:152-169),
 * worked by hand: sectors n, start s, head = min(16 - s % 16, n); n < 2 *
 * head -> (n + 1) / 2 sectors, else n - head. */
static void test_rom_erase_size(void **state) {
  (void)state;
  const eg_chip *e = chip(EG_CHIP_ESP8266);
  static const struct { uint32_t off, size, want; } t[] = {
    {0, 0x1000, 0x1000},       /* n 1, head 1: 1 < 2 -> 1 sector */
    {0, 0x10000, 0x8000},      /* n 16, head 16: 16 < 32 -> 8 */
    {0x1000, 0x20000, 0x11000},/* n 32, s 1, head 15: 32 - 15 = 17 */
    {0xF000, 0x3000, 0x2000},  /* n 3, s 15, head 1: 3 - 1 = 2 */
    {0, 1, 0x1000},            /* a partial sector counts */
    {0, 0, 0},
    {0x10000, 0x100000, 0xF0000}, /* n 256, s 16, head 16: 256 - 16 = 240 */
  };
  for (size_t i = 0; i < NA(t); i++)
    if (eg_chip_rom_erase_size(e, t[i].off, t[i].size) != t[i].want)
      fail_msg("0x%x+0x%x: 0x%x, want 0x%x", t[i].off, t[i].size, eg_chip_rom_erase_size(e, t[i].off, t[i].size), t[i].want);
  for (int i = 1; i < EG_CHIP__COUNT; i++)
    assert_int_equal(eg_chip_rom_erase_size(chip((eg_chip_id)i), 0x1000, 0x12345), 0x12345);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_by_name),
    cmocka_unit_test(test_by_name_exact_bytes),
    cmocka_unit_test(test_names_list),
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
    cmocka_unit_test(test_trace_esp32),
    cmocka_unit_test(test_trace_esp32c3),
    cmocka_unit_test(test_decode_esp32),
    cmocka_unit_test(test_decode_esp8266),
    cmocka_unit_test(test_decode_s2),
    cmocka_unit_test(test_decode_s3),
    cmocka_unit_test(test_decode_c3),
    cmocka_unit_test(test_decode_c2),
    cmocka_unit_test(test_decode_c6_h2),
    cmocka_unit_test(test_decode_c5_c61),
    cmocka_unit_test(test_decode_p4),
    cmocka_unit_test(test_encode_roundtrip),
    cmocka_unit_test(test_decode_esp32_attach_and_baud),
    cmocka_unit_test(test_decode_security),
    cmocka_unit_test(test_stub_allowed),
    cmocka_unit_test(test_check_image),
    cmocka_unit_test(test_usb),
    cmocka_unit_test(test_resets),
    cmocka_unit_test(test_watchdog_scripts),
    cmocka_unit_test(test_blocks),
    cmocka_unit_test(test_rom_erase_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
