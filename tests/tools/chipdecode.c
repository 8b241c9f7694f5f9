/* chipdecode - the chip table's identity decoder as a filter, for
 * tests/esptool-js/chip-oracle.mjs (ctest integration.chip_oracle), which
 * compares it with esptool-js's own target classes.
 *
 * Reads lines from stdin, writes one JSON object per line to stdout:
 *   list <chip>
 *     {"chip":..., "regs":"0x... 0x...", "clkdiv":"0x..." or null, ...}
 *     the registers eg_chip_ident_regs() lists, in order, space separated;
 *     clkdiv when the crystal is estimated from that register; then the
 *     row's constants esptool-js also has (chip id, bootloader offset, SPI
 *     registers, MAC register, header codes, magic values, USB facts).
 *   <chip> <baud> [<addr>=<value> ...]   (numbers in C syntax, 0x...)
 *     eg_chip_decode() of those values (registers not given read 0) and
 *     what follows from it; "unlisted" names given registers the device
 *     would not read (they are ignored by the decode).
 * A bad line gets {"error": "..."}; the exit status is 0 unless stdin or
 * stdout fail. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chips.h"
#include "jsonw.h"

static void put(char *line) {
  if (!line) {
    fputs("{\"error\":\"out of memory\"}\n", stdout);
    return;
  }
  fputs(line, stdout);
  fputc('\n', stdout);
  free(line);
}

static void error(const char *msg, const char *detail) {
  eg_jw w;
  eg_jw_open(&w);
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", msg, detail);
  eg_jw_str(&w, "error", buf);
  put(eg_jw_close(&w));
}

static bool parse_u32(const char *s, uint32_t *out) {
  char *end;
  errno = 0;
  const unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end || v > 0xFFFFFFFFull) return false;
  *out = (uint32_t)v;
  return true;
}

static void hex_list(char *buf, size_t cap, const uint32_t *v, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s0x%08x", i ? " " : "", v[i]);
}

/* "80m=15 40m=0 ..." */
static void code_list(char *buf, size_t cap, const eg_code *t, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%s=%u", i ? " " : "", t[i].name, t[i].code);
}

static void list(const eg_chip *c) {
  uint32_t addrs[EG_CHIP_IDENT_MAX];
  const size_t n = eg_chip_ident_regs(c, addrs, EG_CHIP_IDENT_MAX);
  char regs[EG_CHIP_IDENT_MAX * 11 + 1], clk[16], spi[8 * 11 + 1], magic[16 * 11 + 1], sizes[256], freqs[128];
  hex_list(regs, sizeof regs, addrs, n);
  snprintf(clk, sizeof clk, "0x%08x", c->uart_clkdiv_reg);
  const uint32_t s[] = {c->spi.base, c->spi.usr, c->spi.usr1, c->spi.usr2, c->spi.mosi_dlen, c->spi.miso_dlen, c->spi.w0};
  hex_list(spi, sizeof spi, s, sizeof s / sizeof s[0]);
  hex_list(magic, sizeof magic, c->magic, c->nmagic);
  code_list(sizes, sizeof sizes, c->flash_sizes, c->nflash_sizes);
  code_list(freqs, sizeof freqs, c->flash_freqs, c->nflash_freqs);
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "chip", c->arg_name);
  eg_jw_str(&w, "name", c->name);
  eg_jw_str(&w, "regs", regs);
  eg_jw_str(&w, "clkdiv", c->xtal_rule == EG_XTAL_ESTIMATE ? clk : NULL);
  eg_jw_int(&w, "chip_id", c->chip_id);
  eg_jw_uint(&w, "bootloader_offset", c->bootloader_offset);
  eg_jw_str(&w, "spi", spi);
  eg_jw_uint(&w, "mac_reg", c->mac_reg);
  eg_jw_str(&w, "sizes", sizes);
  eg_jw_str(&w, "freqs", freqs);
  eg_jw_str(&w, "magic", magic);
  eg_jw_bool(&w, "magic_primary", c->magic_primary);
  eg_jw_uint(&w, "usb_otg_block", c->usb_otg_block);
  eg_jw_uint(&w, "uartdev", c->uartdev_buf_no);
  eg_jw_int(&w, "uartdev_otg", c->uartdev_otg);
  eg_jw_int(&w, "uartdev_jtag", c->uartdev_jtag);
  eg_jw_uint(&w, "enc_write_align", c->enc_write_align);
  eg_jw_uint(&w, "xtal_clk_divider", c->xtal_clk_divider);
  put(eg_jw_close(&w));
}

static void decode(const eg_chip *c, uint32_t baud, char **tok, size_t ntok) {
  uint32_t addrs[EG_CHIP_IDENT_MAX], vals[EG_CHIP_IDENT_MAX] = {0}, unlisted[64];
  size_t nun = 0;
  const size_t n = eg_chip_ident_regs(c, addrs, EG_CHIP_IDENT_MAX);
  for (size_t t = 0; t < ntok; t++) {
    char *eq = strchr(tok[t], '=');
    uint32_t a, v;
    if (!eq) return error("not addr=value", tok[t]);
    *eq = '\0';
    if (!parse_u32(tok[t], &a) || !parse_u32(eq + 1, &v)) return error("bad number in", tok[t]);
    size_t k = 0;
    while (k < n && addrs[k] != a) k++;
    if (k < n) vals[k] = v;
    else if (nun < sizeof unlisted / sizeof unlisted[0]) unlisted[nun++] = a;
  }
  eg_chip_ident id;
  eg_chip_decode(c, vals, baud, &id);
  char mac[18], ext[6], un[64 * 11 + 1], hex[16];
  snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", id.mac[0], id.mac[1], id.mac[2], id.mac[3], id.mac[4],
           id.mac[5]);
  snprintf(ext, sizeof ext, "%02x:%02x", id.mac_ext[0], id.mac_ext[1]);
  hex_list(un, sizeof un, unlisted, nun);
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "chip", c->arg_name);
  eg_jw_str(&w, "desc", id.desc);
  eg_jw_bool(&w, "has_rev", id.has_rev);
  eg_jw_int(&w, "major", id.rev_major);
  eg_jw_int(&w, "minor", id.rev_minor);
  eg_jw_int(&w, "pkg", id.pkg);
  eg_jw_str(&w, "mac", id.has_mac ? mac : NULL);
  eg_jw_str(&w, "mac_ext", id.has_mac_ext ? ext : NULL);
  eg_jw_int(&w, "crystal", id.crystal_mhz);
  eg_jw_int(&w, "rom_xtal_expect", id.rom_xtal_expect_mhz);
  eg_jw_uint(&w, "spi_attach", id.spi_attach_arg);
  eg_jw_uint(&w, "rom_baud_921600", eg_chip_rom_baud_value(c, &id, 921600));
  eg_jw_bool(&w, "flash_encryption", id.flash_encryption);
  eg_jw_bool(&w, "secure_boot", id.secure_boot);
  eg_jw_str(&w, "stub", eg_chip_stub_name(c, &id));
  const uint32_t ua = eg_chip_uartdev_buf_no(c, &id);
  snprintf(hex, sizeof hex, "0x%08x", ua);
  eg_jw_str(&w, "uartdev", ua ? hex : NULL);
  eg_jw_str(&w, "unlisted", un);
  put(eg_jw_close(&w));
}

int main(void) {
  char line[8192];
  while (fgets(line, sizeof line, stdin)) {
    char *tok[600];
    size_t ntok = 0;
    for (char *s = strtok(line, " \t\r\n"); s && ntok < sizeof tok / sizeof tok[0]; s = strtok(NULL, " \t\r\n"))
      tok[ntok++] = s;
    if (!ntok) continue;
    if (strcmp(tok[0], "list") == 0) {
      const eg_chip *c = ntok == 2 ? eg_chip_by_name(tok[1]) : NULL;
      if (!c) error("list needs one chip name", ntok == 2 ? tok[1] : "");
      else list(c);
    } else {
      const eg_chip *c = eg_chip_by_name(tok[0]);
      uint32_t baud;
      if (!c) error("unknown chip", tok[0]);
      else if (ntok < 2 || !parse_u32(tok[1], &baud)) error("bad baud for", tok[0]);
      else decode(c, baud, tok + 2, ntok - 2);
    }
    if (fflush(stdout) != 0) return 1;
  }
  return ferror(stdin) ? 1 : 0;
}
