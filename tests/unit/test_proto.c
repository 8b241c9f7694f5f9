/* test_proto.c - request builders and the response parser (src/proto.c),
 * checked byte for byte against esptool v5.3.1 talking to a genuine ESP32
 * ROM and esptool's legacy stub (the "Write N bytes:" and "Received full
 * packet:" lines of /work/shared/data/rom-traces/ transcripts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"
#include "slip.h"

/* ------------------------------------------------------------ helpers */

static void hex(char *out, size_t cap, const uint8_t *p, size_t n) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && o + 3 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", p[i]);
}

static void bytes_eq(const char *what, const uint8_t *got, size_t ngot, const uint8_t *want, size_t nwant) {
  if (ngot == nwant && (nwant == 0 || memcmp(got, want, nwant) == 0)) return;
  char *a = malloc(4 * 1024), *b = malloc(4 * 1024);
  hex(a, 4096, got, ngot);
  hex(b, 4096, want, nwant);
  size_t first = 0;
  while (first < ngot && first < nwant && got[first] == want[first]) first++;
  fail_msg("%s (first difference at byte %zu):\n  got  (%zu) %s\n  want (%zu) %s", what, first, ngot, a, nwant, b);
}

/* "c0000a04..." -> bytes; spaces ignored. Returns the byte count. */
static size_t unhex(uint8_t *out, size_t cap, const char *s) {
  size_t n = 0;
  while (*s) {
    if (*s == ' ') {
      s++;
      continue;
    }
    unsigned v;
    assert_true(sscanf(s, "%2x", &v) == 1);
    assert_true(n < cap);
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

/* SLIP-encode a built packet and compare with the bytes esptool wrote. */
static void wire_eq(const char *what, const uint8_t *pkt, size_t n, const char *want_hex) {
  uint8_t *wire = malloc(eg_slip_max_encoded(n));
  uint8_t *want = malloc(strlen(want_hex) / 2 + 1);
  const size_t nw = eg_slip_encode(wire, pkt, n);
  const size_t nwant = unhex(want, strlen(want_hex) / 2 + 1, want_hex);
  bytes_eq(what, wire, nw, want, nwant);
  free(wire);
  free(want);
}

/* Parse a response given as hex. */
static eg_err parse_hex(const char *h, size_t status_len, size_t expect, eg_resp *r, uint8_t *frame, size_t cap) {
  const size_t n = unhex(frame, cap, h);
  return eg_resp_parse(frame, n, status_len, expect, r);
}

/* A macro, so a failure reports the caller's line. */
#define err_eq(got, want)                                                       \
  do {                                                                          \
    const eg_err got_ = (got), want_ = (want);                                  \
    if (got_ != want_) fail_msg("error %s, want %s", eg_err_name(got_), eg_err_name(want_)); \
  } while (0)

/* ------------------------------------------------------------ requests */

static void test_sync(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  const size_t n = eg_req_sync(p);
  assert_int_equal(n, 44);
  wire_eq("SYNC", p, n,
          "c000082400000000000707122055555555555555555555555555555555555555555555555555555555555555"
          "55c0");
}

static void test_read_reg(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  size_t n = eg_req_read_reg(p, 0x40001000u);
  assert_int_equal(n, 12);
  wire_eq("READ_REG magic", p, n, "c0000a04000000000000100040c0");
  n = eg_req_read_reg(p, 0x3FF5A00Cu);
  wire_eq("READ_REG efuse word3", p, n, "c0000a0400000000000ca0f53fc0");
  n = eg_req_read_reg(p, 0x3FF6607Cu);
  wire_eq("READ_REG APB_CTL_DATE", p, n, "c0000a0400000000007c60f63fc0");
  n = eg_req_read_reg(p, 0x3FF40014u);
  wire_eq("READ_REG UART_CLKDIV", p, n, "c0000a0400000000001400f43fc0");
}

static void test_write_reg(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  size_t n = eg_req_write_reg(p, 0x3FF4202Cu, 23, 0xFFFFFFFFu, 0);
  assert_int_equal(n, 24);
  wire_eq("WRITE_REG MISO_DLEN", p, n, "c000091000000000002c20f43f17000000ffffffff00000000c0");
  n = eg_req_write_reg(p, 0x3FF4201Cu, 0x90000000u, 0xFFFFFFFFu, 0);
  wire_eq("WRITE_REG USR", p, n, "c000091000000000001c20f43f00000090ffffffff00000000c0");
  n = eg_req_write_reg(p, 0x3FF42024u, 0x7000009Fu, 0xFFFFFFFFu, 0);
  wire_eq("WRITE_REG USR2", p, n, "c000091000000000002420f43f9f000070ffffffff00000000c0");
  n = eg_req_write_reg(p, 0x3FF42000u, 0x00040000u, 0xFFFFFFFFu, 0);
  wire_eq("WRITE_REG CMD", p, n, "c000091000000000000020f43f00000400ffffffff00000000c0");
  /* Mask and delay are placed too (esptool always sends ~0 and 0). */
  n = eg_req_write_reg(p, 0x11223344u, 0x55667788u, 0x0000FF00u, 1000);
  wire_eq("WRITE_REG mask/delay", p, n, "c00009100000000000443322118877665500ff0000e8030000c0");
}

static void test_spi_attach(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  size_t n = eg_req_spi_attach(p, 0, true);
  assert_int_equal(n, 16);
  wire_eq("SPI_ATTACH ROM", p, n, "c0000d0800000000000000000000000000c0");
  n = eg_req_spi_attach(p, 0, false); /* stubs take exactly 4 bytes */
  assert_int_equal(n, 12);
  wire_eq("SPI_ATTACH stub", p, n, "c0000d04000000000000000000c0");
  n = eg_req_spi_attach(p, 1, true); /* HSPI */
  wire_eq("SPI_ATTACH ROM HSPI", p, n, "c0000d0800000000000100000000000000c0");
}

static void test_spi_set_params(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  const size_t n = eg_req_spi_set_params(p, 4u << 20);
  assert_int_equal(n, 32);
  wire_eq("SPI_SET_PARAMS 4MB", p, n, "c0000b1800000000000000000000004000000001000010000000010000ffff0000c0");
}

static void test_begin(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  /* ROM: 16 bytes, size rounded up to 0x400 blocks, 7 compressed blocks. */
  size_t n = eg_req_begin(p, EG_OP_FLASH_DEFL_BEGIN, 0x4000, 7, 0x400, 0x10000, false, 0);
  assert_int_equal(n, 24);
  wire_eq("FLASH_DEFL_BEGIN ROM", p, n, "c0001010000000000000400000070000000004000000000100c0");
  /* Stub: 20 bytes (encrypt word), one 0x4000 block. */
  n = eg_req_begin(p, EG_OP_FLASH_DEFL_BEGIN, 0x4000, 1, 0x4000, 0x20000, true, 0);
  assert_int_equal(n, 28);
  wire_eq("FLASH_DEFL_BEGIN stub", p, n, "c000101400000000000040000001000000004000000000020000000000c0");
  /* MEM_BEGIN for the stub's text and data segments. */
  n = eg_req_begin(p, EG_OP_MEM_BEGIN, 0xDD4, 1, 0x1800, 0x400BE000u, false, 0);
  wire_eq("MEM_BEGIN text", p, n, "c00005100000000000d40d0000010000000018000000e00b40c0");
  n = eg_req_begin(p, EG_OP_MEM_BEGIN, 0x9C, 1, 0x1800, 0x3FFDEBACu, false, 0);
  wire_eq("MEM_BEGIN data", p, n, "c000051000000000009c0000000100000000180000acebfd3fc0");
  /* esptool's "run": FLASH_BEGIN(0, 0, 0x400, 0) to the ESP32 ROM. */
  n = eg_req_begin(p, EG_OP_FLASH_BEGIN, 0, 0, 0x400, 0, false, 0);
  wire_eq("FLASH_BEGIN run", p, n, "c0000210000000000000000000000000000004000000000000c0");
  /* Encrypted flag set. */
  n = eg_req_begin(p, EG_OP_FLASH_BEGIN, 0x1000, 1, 0x4000, 0x8000, true, 1);
  wire_eq("FLASH_BEGIN encrypted", p, n, "c000021400000000000010000001000000004000000080000001000000c0");
}

static void test_end(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  size_t n = eg_req_end(p, EG_OP_FLASH_DEFL_END, 1);
  assert_int_equal(n, 12);
  wire_eq("FLASH_DEFL_END stay", p, n, "c0001204000000000001000000c0");
  n = eg_req_end(p, EG_OP_FLASH_END, 0);
  wire_eq("FLASH_END reboot", p, n, "c0000404000000000000000000c0");
  n = eg_req_mem_end(p, 0x400BE658u);
  assert_int_equal(n, 16);
  wire_eq("MEM_END entry", p, n, "c000060800000000000000000058e60b40c0");
  n = eg_req_mem_end(p, 0); /* no entry point: no_exec = 1 */
  wire_eq("MEM_END no exec", p, n, "c000060800000000000100000000000000c0");
}

static void test_md5_read_erase_baud(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  size_t n = eg_req_flash_md5(p, 0x10000, 0x4000);
  assert_int_equal(n, 24);
  wire_eq("SPI_FLASH_MD5 ROM", p, n, "c0001310000000000000000100004000000000000000000000c0");
  n = eg_req_flash_md5(p, 0x20000, 0x4000);
  wire_eq("SPI_FLASH_MD5 stub", p, n, "c0001310000000000000000200004000000000000000000000c0");
  n = eg_req_read_flash(p, 0x20000, 0x2000, 0x1000, 64);
  assert_int_equal(n, 24);
  wire_eq("READ_FLASH", p, n, "c000d210000000000000000200002000000010000040000000c0");
  n = eg_req_erase_region(p, 0x20000, 0x1000);
  assert_int_equal(n, 16);
  wire_eq("ERASE_REGION", p, n, "c000d10800000000000000020000100000c0");
  n = eg_req_read_flash_slow(p, 0x1000, 64);
  wire_eq("READ_FLASH_SLOW", p, n, "c0000e0800000000000010000040000000c0");
  n = eg_req_change_baud(p, 921600, 0);
  wire_eq("CHANGE_BAUDRATE ROM", p, n, "c0000f080000000000 00100e00 00000000 c0");
  n = eg_req_change_baud(p, 921600, 115200);
  wire_eq("CHANGE_BAUDRATE stub", p, n, "c0000f080000000000 00100e00 00c20100 c0");
}

static void test_simple_and_ack(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  size_t n = eg_req_simple(p, EG_OP_GET_SECURITY_INFO);
  assert_int_equal(n, 8);
  wire_eq("GET_SECURITY_INFO", p, n, "c00014000000000000c0");
  n = eg_req_simple(p, EG_OP_ERASE_FLASH);
  wire_eq("ERASE_FLASH", p, n, "c000d0000000000000c0");
  n = eg_req_simple(p, EG_OP_RUN_USER_CODE);
  wire_eq("RUN_USER_CODE", p, n, "c000d3000000000000c0");
  /* READ_FLASH acknowledgements, as esptool wrote them. */
  n = eg_read_ack(p, 0x1000);
  assert_int_equal(n, 4);
  wire_eq("READ_FLASH ack 4096", p, n, "c000100000c0");
  n = eg_read_ack(p, 0x2000);
  wire_eq("READ_FLASH ack 8192", p, n, "c000200000c0");
  n = eg_read_ack(p, 0xC0DB0000u); /* bytes that need escaping */
  wire_eq("READ_FLASH ack escaped", p, n, "c00000dbdddbdcc0");
}

static void test_generic_req(void **state) {
  (void)state;
  uint8_t p[64];
  const uint8_t d[] = {0xAA, 0xBB, 0xCC};
  size_t n = eg_req(p, 0x42, d, sizeof d, 0x12345678u);
  const uint8_t want[] = {0x00, 0x42, 0x03, 0x00, 0x78, 0x56, 0x34, 0x12, 0xAA, 0xBB, 0xCC};
  bytes_eq("eg_req", p, n, want, sizeof want);
  n = eg_req(p, 0x42, NULL, 0, 0);
  const uint8_t want0[] = {0x00, 0x42, 0, 0, 0, 0, 0, 0};
  bytes_eq("eg_req empty", p, n, want0, sizeof want0);
}

/* The last FLASH_DEFL_DATA block esptool sent to the ROM (seq 6, 668 bytes of
 * zlib data, checksum 0x84, not padded; rom-write-flash.trace "Write 699 bytes"). */
static const char defl_block6[] =
  "c00011ac02840000009c02000006000000000000000000000013faa02ffae166f4c7000cc42d18845b711b6ec71df81feec4"
  "60dc85bb710fee45c47d1882a1b81f0fe0410cc3708cdbdc43188951188d87f108c6e0513c86b11887c7311e4f600226e249"
  "4cc253781a93f10c9ec573781e2f600a5ec454bc8497f10a5ec56b781d6f601adec45b781bd33103ef602666e15dbc87d928"
  "dbdcfbf8001f620ee6e2237c8c79f804f3b1000bb1088bb1044bb10ccbf1295660253ec32aacc61aacc53a7c8e2fb01e1bf0"
  "25bec2d7f806df6223bec3267c8fcdd8821ff023b6621bb6e327fc8c5fb003bf62277661377ec3eff8037bf027f6e22fecc3"
  "dff807fb7100ff22fd57f45b1441511c824371180ec71128862371148ae36894dbdc312889523816c7a134cae07894c50938"
  "1127a11c4ec6293815e5e1701a4ec719a8808aa884ca3813557016aae26c9c836a3817d5510335510be7a136eaa02eeaa13e"
  "ce470334c405b8101e0117a1111aa3099ae26234c325688e16b8142dd10aad71192e471bb4c515b81257e16ab4437b5c836b"
  "711d3aa0233aa133bae07a74c50db811ddd01d3dd013bdd01b37a10ffaa21f6e467f0cdbdc40dc8241b815b7e176dc81ffe1"
  "4e0cc65db81bf7e05e44dc8721188afbf1001ec4300cc7083c84911885d178188f600c1ec563188b71781ce3f1042660229e"
  "c4243c85a73119cfe0593c87e7f102a6e0454cc54b7819afe055bc86d7f106a6e14dbc85b7311d33f00e666216dec57b988d"
  "02bc8f0ff021e6602e3ec2c798874f301f0bb0108bb0184bb014cbb01c9f620556e233acc26aacc15aacc3e7f802ebb1015f"
  "e22b7c8d6ff02d36e23b6cc2f7d88c2df8013f622bb6613b7ec2cff8053bf02b76621776e337fc8e3fb0077f622ffec23efc"
  "8d7fb01f07f02f921c7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7c1d7cfd7ffffa3faac88ddbddc0"
  ;

typedef struct collect {
  uint8_t frame[EG_MAX_PACKET];
  size_t len;
  int nframes;
} collect;

static void on_frame(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  collect *c = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME) fail_msg("unexpected SLIP event %d", (int)ev);
  assert_true(len <= sizeof c->frame);
  memcpy(c->frame, data, len);
  c->len = len;
  c->nframes++;
}

static void test_defl_data_from_trace(void **state) {
  (void)state;
  uint8_t wire[800];
  const size_t nwire = unhex(wire, sizeof wire, defl_block6);
  assert_int_equal(nwire, 699);
  /* Take the zlib payload out of the recorded frame... */
  collect *c = malloc(sizeof *c);
  memset(c, 0, sizeof *c);
  uint8_t dbuf[EG_MAX_PACKET];
  eg_slip_dec d;
  eg_slip_dec_init(&d, dbuf, sizeof dbuf);
  assert_int_equal(eg_slip_dec_push(&d, wire, nwire, on_frame, c), nwire);
  assert_int_equal(c->nframes, 1);
  assert_int_equal(c->len, EG_REQ_HDR + EG_DATA_SUBHDR + 668);
  const uint8_t *payload = c->frame + EG_REQ_HDR + EG_DATA_SUBHDR;
  assert_int_equal(eg_checksum(payload, 668), 0x84);
  /* ...and rebuild the whole request from it: header, sub-header, checksum,
   * no padding, SLIP escaping must all match what esptool sent. */
  uint8_t p[EG_MAX_PACKET];
  const size_t n = eg_req_data(p, EG_OP_FLASH_DEFL_DATA, 6, payload, 668, 0);
  assert_int_equal(n, 8 + 16 + 668);
  wire_eq("FLASH_DEFL_DATA seq 6", p, n, defl_block6);
  free(c);
}

static void test_checksum(void **state) {
  (void)state;
  assert_int_equal(eg_checksum(NULL, 0), 0xEF);
  const uint8_t one[] = {0xEF};
  assert_int_equal(eg_checksum(one, 1), 0x00);
  const uint8_t abc[] = {0x01, 0x02, 0x04, 0x80};
  assert_int_equal(eg_checksum(abc, sizeof abc), 0xEF ^ 0x87);
  uint8_t ff[0x400];
  memset(ff, 0xFF, sizeof ff);
  assert_int_equal(eg_checksum(ff, sizeof ff), 0xEF); /* even count of 0xFF */
  assert_int_equal(eg_checksum(ff, 3), 0x10);
}

/* FLASH_DATA is padded with 0xFF up to the block size and the checksum covers
 * the padding; the checksum field is the 8-bit value with zero upper bytes. */
static void test_data_padding(void **state) {
  (void)state;
  uint8_t p[EG_MAX_PACKET];
  const uint8_t pl[] = {0x01, 0x02, 0x03};
  size_t n = eg_req_data(p, EG_OP_FLASH_DATA, 5, pl, sizeof pl, 8);
  /* checksum = 0xEF ^ 1 ^ 2 ^ 3 ^ 0xFF x5 = 0xEF ^ 0xFF = 0x10 */
  const uint8_t want[] = {0x00, 0x03, 0x18, 0x00, 0x10, 0x00, 0x00, 0x00,  /* header */
                          0x08, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,  /* len 8, seq 5 */
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  /* 0, 0 */
                          0x01, 0x02, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}; /* padded */
  bytes_eq("FLASH_DATA padded", p, n, want, sizeof want);

  /* No padding when pad_to <= n (DEFL and MEM blocks). */
  n = eg_req_data(p, EG_OP_MEM_DATA, 0, pl, sizeof pl, 2);
  assert_int_equal(n, 8 + 16 + 3);
  assert_int_equal(p[2], 19);
  assert_int_equal(eg_get_u32(p + 8), 3);
  assert_int_equal(eg_get_u32(p + 4), 0xEF ^ 0x01 ^ 0x02 ^ 0x03);

  /* A full ROM block of 0x400 with a 1-byte payload; a checksum of 0xFF
   * still leaves the upper three bytes zero. */
  const uint8_t x[] = {0xEF};
  n = eg_req_data(p, EG_OP_FLASH_DATA, 0xFFFFFFFFu, x, 1, EG_ROM_WRITE_BLOCK);
  assert_int_equal(n, 8 + 16 + 0x400);
  assert_int_equal(eg_get_u16(p + 2), 16 + 0x400);
  assert_int_equal(eg_get_u32(p + 4), 0xFF); /* 0xEF ^ 0xEF ^ (0xFF x 0x3FF) = 0xFF */
  assert_int_equal(eg_get_u32(p + 12), 0xFFFFFFFFu);
  for (size_t i = 1; i < 0x400; i++) assert_int_equal(p[24 + i], 0xFF);
  assert_int_equal(eg_checksum(p + 24, 0x400), p[4]);

  /* A largest stub block. */
  uint8_t *big = malloc(EG_STUB_WRITE_BLOCK);
  for (size_t i = 0; i < EG_STUB_WRITE_BLOCK; i++) big[i] = (uint8_t)(i * 7);
  n = eg_req_data(p, EG_OP_FLASH_DEFL_DATA, 2, big, EG_STUB_WRITE_BLOCK, 0);
  assert_int_equal(n, EG_MAX_PACKET);
  assert_int_equal(eg_get_u16(p + 2), EG_MAX_REQ_DATA);
  assert_int_equal(eg_get_u32(p + 4), eg_checksum(big, EG_STUB_WRITE_BLOCK));
  free(big);
}

/* A block of padding only: no payload pointer at all (UBSan: memcpy from NULL). */
static void test_data_padding_only(void **state) {
  (void)state;
  uint8_t p[64];
  memset(p, 0, sizeof p);
  size_t n = eg_req_data(p, EG_OP_FLASH_DATA, 0, NULL, 0, 4);
  assert_int_equal(n, 8 + 16 + 4);
  assert_int_equal(eg_get_u16(p + 2), 16 + 4);
  assert_int_equal(eg_get_u32(p + 8), 4);
  assert_int_equal(eg_get_u32(p + 24), 0xFFFFFFFFu);
  assert_int_equal(eg_get_u32(p + 4), 0xEF); /* four 0xFF cancel out */
  n = eg_req_data(p, EG_OP_MEM_DATA, 1, NULL, 0, 0);
  assert_int_equal(n, 8 + 16);
  assert_int_equal(eg_get_u32(p + 8), 0);
  assert_int_equal(eg_get_u32(p + 4), 0xEF);
}

static void test_le_helpers(void **state) {
  (void)state;
  uint8_t b[4];
  eg_put_u32(b, 0x20120707u);
  const uint8_t w[] = {0x07, 0x07, 0x12, 0x20};
  bytes_eq("put_u32", b, 4, w, 4);
  assert_int_equal(eg_get_u32(w), 0x20120707u);
  eg_put_u16(b, 0xABCD);
  assert_int_equal(b[0], 0xCD);
  assert_int_equal(b[1], 0xAB);
  assert_int_equal(eg_get_u16(b), 0xABCD);
  const uint8_t hi[] = {0xFF, 0xFF, 0xFF, 0xFF};
  assert_int_equal(eg_get_u32(hi), 0xFFFFFFFFu);
}

/* ------------------------------------------------------------ names */

static void test_op_names(void **state) {
  (void)state;
  static const struct { int op; const char *name; } ops[] = {
    {0x02, "FLASH_BEGIN"}, {0x03, "FLASH_DATA"}, {0x04, "FLASH_END"}, {0x05, "MEM_BEGIN"},
    {0x06, "MEM_END"}, {0x07, "MEM_DATA"}, {0x08, "SYNC"}, {0x09, "WRITE_REG"}, {0x0A, "READ_REG"},
    {0x0B, "SPI_SET_PARAMS"}, {0x0D, "SPI_ATTACH"}, {0x0E, "READ_FLASH_SLOW"}, {0x0F, "CHANGE_BAUDRATE"},
    {0x10, "FLASH_DEFL_BEGIN"}, {0x11, "FLASH_DEFL_DATA"}, {0x12, "FLASH_DEFL_END"},
    {0x13, "SPI_FLASH_MD5"}, {0x14, "GET_SECURITY_INFO"}, {0xD0, "ERASE_FLASH"},
    {0xD1, "ERASE_REGION"}, {0xD2, "READ_FLASH"}, {0xD3, "RUN_USER_CODE"},
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) assert_string_equal(eg_op_name(ops[i].op), ops[i].name);
  const int unknown[] = {-1, 0x00, 0x01, 0x0C, 0x15, 0xD4, 0xFF, 0x100, 0x108};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) assert_string_equal(eg_op_name(unknown[i]), "UNKNOWN");
}

static void test_error_code_names(void **state) {
  (void)state;
  static const struct { uint8_t c; const char *name, *text; } rom[] = {
    {0x00, "UNDEFINED", "undefined"}, {0x01, "INVALID_PARAM", "invalid input parameter"},
    {0x02, "MALLOC", "malloc failed"}, {0x03, "SEND", "send failed"}, {0x04, "RECEIVE", "receive failed"},
    {0x05, "INVALID_MESSAGE", "invalid message / unknown command"},
    {0x06, "FAILED_RESULT", "message ok, result wrong"}, {0x07, "CHECKSUM", "checksum error"},
    {0x08, "FLASH_WRITE", "flash write error"}, {0x09, "FLASH_READ", "flash read error"},
    {0x0A, "FLASH_READ_LENGTH", "flash read length error"}, {0x0B, "DEFLATE", "deflate failed"},
    {0x0C, "DEFLATE_ADLER32", "deflate Adler32 error"}, {0x0D, "DEFLATE_PARAM", "deflate parameter error"},
    {0x0E, "RAM_SIZE", "invalid RAM binary size"}, {0x0F, "RAM_ADDRESS", "invalid RAM binary address"},
    {0x64, "SEC_INVALID_PARAM", "invalid parameter"}, {0x65, "SEC_INVALID_FORMAT", "invalid format"},
    {0x66, "SEC_TOO_LONG", "description too long"}, {0x67, "SEC_BAD_ENCODING", "bad encoding description"},
    {0x69, "SEC_NO_STORAGE", "insufficient storage"},
  };
  for (size_t i = 0; i < sizeof rom / sizeof rom[0]; i++) {
    assert_string_equal(eg_rom_err_name(rom[i].c), rom[i].name);
    assert_string_equal(eg_rom_err_text(rom[i].c), rom[i].text);
  }
  static const struct { uint8_t c; const char *name; } stub[] = {
    {0xC0, "BAD_DATA_LEN"}, {0xC1, "BAD_DATA_CHECKSUM"}, {0xC2, "BAD_BLOCKSIZE"}, {0xC3, "INVALID_COMMAND"},
    {0xC4, "FAILED_SPI_OP"}, {0xC5, "FAILED_SPI_UNLOCK"}, {0xC6, "NOT_IN_FLASH_MODE"}, {0xC7, "INFLATE_ERROR"},
    {0xC8, "NOT_ENOUGH_DATA"}, {0xC9, "TOO_MUCH_DATA"}, {0xCA, "NAND_PROGRAM"}, {0xCB, "NAND_ERASE"},
    {0xFF, "CMD_NOT_IMPLEMENTED"},
  };
  for (size_t i = 0; i < sizeof stub / sizeof stub[0]; i++) {
    assert_string_equal(eg_stub_err_name(stub[i].c), stub[i].name);
    assert_true(strlen(eg_stub_err_text(stub[i].c)) > 0);
    assert_string_not_equal(eg_stub_err_text(stub[i].c), "unknown error");
  }
  assert_string_equal(eg_stub_err_text(0xFF), "command not implemented");
  assert_string_equal(eg_stub_err_text(0xC1), "bad data checksum");
  /* Codes in neither table. */
  const uint8_t rom_unknown[] = {0x10, 0x63, 0x68, 0x6A, 0xC0, 0xFF};
  for (size_t i = 0; i < sizeof rom_unknown; i++) {
    assert_string_equal(eg_rom_err_name(rom_unknown[i]), "UNKNOWN");
    assert_string_equal(eg_rom_err_text(rom_unknown[i]), "unknown error");
  }
  const uint8_t stub_unknown[] = {0x00, 0x01, 0x05, 0xBF, 0xCC, 0xEE, 0xFE};
  for (size_t i = 0; i < sizeof stub_unknown; i++) {
    assert_string_equal(eg_stub_err_name(stub_unknown[i]), "UNKNOWN");
    assert_string_equal(eg_stub_err_text(stub_unknown[i]), "unknown error");
  }
}

/* ------------------------------------------------------------ responses */

static void test_resp_rom(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  /* SYNC reply from the ROM. */
  err_eq(parse_hex("010804000707122000000000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_SYNC);
  assert_int_equal(r.size, 4);
  assert_int_equal(r.value, EG_SYNC_VALUE);
  assert_true(r.ok);
  assert_int_equal(r.nstatus, 4);
  assert_int_equal(r.data_len, 0);
  assert_int_equal(r.error, 0);
  assert_false(eg_resp_is_rom_unsupported(&r));
  /* READ_REG of the magic register: ESP32. */
  err_eq(parse_hex("010a0400831df00000000000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_READ_REG);
  assert_int_equal(r.value, 0x00F01D83u);
  assert_true(r.ok);
  /* eFuse MAC words. */
  err_eq(parse_hex("010a04000a24be0000000000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.value, 0x00BE240Au);
  err_eq(parse_hex("010a0400010000c400000000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.value, 0xC4000001u);
  /* JEDEC ID from SPI W0. */
  err_eq(parse_hex("010a0400c840160000000000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.value, 0x001640C8u);
  /* SPI_ATTACH: the ROM leaves a stale value; status is what counts. */
  err_eq(parse_hex("010d04000080000000000000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_SPI_ATTACH);
  assert_int_equal(r.value, 0x8000);
  assert_true(r.ok);
  /* Reserved ROM status bytes are kept but do not decide success. */
  err_eq(parse_hex("01090400000000000000abcd", 4, 0, &r, f, sizeof f), EG_OK);
  assert_true(r.ok);
  assert_int_equal(r.status[2], 0xAB);
  assert_int_equal(r.status[3], 0xCD);
}

static void test_resp_stub(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  err_eq(parse_hex("01080200000000000000", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_SYNC);
  assert_int_equal(r.value, 0); /* a stub answers SYNC with value 0 */
  assert_true(r.ok);
  assert_int_equal(r.nstatus, 2);
  err_eq(parse_hex("010a0200831df0000000", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.value, 0x00F01D83u);
  assert_true(r.ok);
  err_eq(parse_hex("01120200000000000000", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_FLASH_DEFL_END);
  assert_true(r.ok);
  err_eq(parse_hex("01d20200000000000000", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_READ_FLASH);
  assert_true(r.ok);
}

static void test_resp_md5(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  const uint8_t raw[16] = {0xbd, 0xa9, 0xc2, 0x14, 0x04, 0x90, 0xe5, 0x07,
                           0xc2, 0xdb, 0x0c, 0x84, 0xfd, 0xb6, 0x93, 0xa4};
  /* ROM: 32 lowercase hex characters, then 4 status bytes. */
  err_eq(parse_hex("0113240000001000626461396332313430343930653530376332646230633834666462363933613400000000", 4,
                   32, &r, f, sizeof f),
         EG_OK);
  assert_int_equal(r.op, EG_OP_SPI_FLASH_MD5);
  assert_int_equal(r.size, 36);
  assert_true(r.ok);
  assert_int_equal(r.data_len, 32);
  assert_ptr_equal(r.data, f + 8);
  bytes_eq("ROM MD5 text", r.data, r.data_len, (const uint8_t *)"bda9c2140490e507c2db0c84fdb693a4", 32);
  /* Stub: 16 raw bytes, then 2 status bytes. Same digest. */
  err_eq(parse_hex("0113120000000000bda9c2140490e507c2db0c84fdb693a40000", 2, 16, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.size, 18);
  assert_true(r.ok);
  bytes_eq("stub MD5", r.data, r.data_len, raw, 16);
  /* A stub MD5 reply whose status reports a SPI failure. */
  err_eq(parse_hex("0113120000000000bda9c2140490e507c2db0c84fdb693a4c400", 2, 16, &r, f, sizeof f), EG_OK);
  assert_false(r.ok);
  assert_int_equal(r.error, 0xC4);
  /* The ROM MD5 reply read as if it had no data: its status would be the
   * first hex characters, which is why expect_data matters. */
  err_eq(parse_hex("0113240000001000626461396332313430343930653530376332646230633834666462363933613400000000", 4, 0,
                   &r, f, sizeof f),
         EG_OK);
  assert_false(r.ok);
  assert_int_equal(r.status[0], 'b');
}

static void test_resp_failures(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  char d[128];
  /* The ROM's answer to GET_SECURITY_INFO on an ESP32: a stale opcode
   * (SYNC) and value, status 01 05. */
  err_eq(parse_hex("010804000707122001050000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_SYNC);
  assert_false(r.ok);
  assert_int_equal(r.error, EG_ROM_ERR_INVALID_MESSAGE);
  assert_true(eg_resp_is_rom_unsupported(&r));
  assert_string_equal(eg_resp_describe(&r, false, d, sizeof d),
                      "ROM error 0x05 INVALID_MESSAGE (invalid message / unknown command)");
  /* Other ROM failures are not "unsupported". */
  err_eq(parse_hex("011104000000000001070000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_false(r.ok);
  assert_int_equal(r.error, EG_ROM_ERR_CHECKSUM);
  assert_false(eg_resp_is_rom_unsupported(&r));
  assert_string_equal(eg_resp_describe(&r, false, d, sizeof d), "ROM error 0x07 CHECKSUM (checksum error)");
  err_eq(parse_hex("011004000000000001080000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_string_equal(eg_resp_describe(&r, false, d, sizeof d), "ROM error 0x08 FLASH_WRITE (flash write error)");
  err_eq(parse_hex("011004000000000001330000", 4, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.error, 0x33);
  assert_string_equal(eg_resp_describe(&r, false, d, sizeof d), "ROM error 0x33 UNKNOWN (unknown error)");
  /* The stub's "not implemented". */
  err_eq(parse_hex("0114020000000000ff00", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_GET_SECURITY_INFO);
  assert_false(r.ok);
  assert_int_equal(r.error, EG_STUB_ERR_CMD_NOT_IMPLEMENTED);
  assert_false(eg_resp_is_rom_unsupported(&r));
  assert_string_equal(eg_resp_describe(&r, true, d, sizeof d),
                      "stub error 0xFF CMD_NOT_IMPLEMENTED (command not implemented)");
  /* Stub failures with a named code. */
  err_eq(parse_hex("0111020000000000c100", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.error, EG_STUB_ERR_BAD_DATA_CHECKSUM);
  assert_string_equal(eg_resp_describe(&r, true, d, sizeof d), "stub error 0xC1 BAD_DATA_CHECKSUM (bad data checksum)");
  err_eq(parse_hex("0112020000000000c800", 2, 0, &r, f, sizeof f), EG_OK);
  assert_string_equal(eg_resp_describe(&r, true, d, sizeof d), "stub error 0xC8 NOT_ENOUGH_DATA (not enough data)");
  /* The legacy stub's answer to an over-long request: C0 EE. */
  err_eq(parse_hex("0103020000000000c0ee", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.error, EG_STUB_ERR_BAD_DATA_LEN);
  assert_int_equal(r.status[1], 0xEE);
  /* ESP8266 ROM: 2 status bytes, 01 then the ROM code. */
  err_eq(parse_hex("01110200000000000107", 2, 0, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.error, EG_ROM_ERR_CHECKSUM);
  assert_string_equal(eg_resp_describe(&r, false, d, sizeof d), "ROM error 0x07 CHECKSUM (checksum error)");
  /* Success is described as "ok". */
  err_eq(parse_hex("01080200000000000000", 2, 0, &r, f, sizeof f), EG_OK);
  assert_string_equal(eg_resp_describe(&r, true, d, sizeof d), "ok");
  /* A small buffer truncates safely. */
  err_eq(parse_hex("0114020000000000ff00", 2, 0, &r, f, sizeof f), EG_OK);
  char small[8];
  memset(small, 'x', sizeof small);
  assert_ptr_equal(eg_resp_describe(&r, true, small, sizeof small), small);
  assert_string_equal(small, "stub er");
}

/* A reply too short for the data the command should return can still carry
 * the chip's failure status (esptool check_command reads the first two data
 * bytes then): the ROM's "unknown command" to GET_SECURITY_INFO, the stub's
 * 0xFF to it, a ROM MD5 that failed. The status must not be lost. */
static void test_resp_failure_without_expected_data(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  char d[128];
  err_eq(parse_hex("010804000707122001050000", 4, 20, &r, f, sizeof f), EG_OK);
  assert_false(r.ok);
  assert_int_equal(r.data_len, 0);
  assert_int_equal(r.nstatus, 4);
  assert_int_equal(r.status[0], 0x01);
  assert_int_equal(r.status[1], 0x05);
  assert_int_equal(r.error, EG_ROM_ERR_INVALID_MESSAGE);
  assert_true(eg_resp_is_rom_unsupported(&r));

  err_eq(parse_hex("0114020000000000ff00", 2, 20, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.op, EG_OP_GET_SECURITY_INFO);
  assert_false(r.ok);
  assert_int_equal(r.data_len, 0);
  assert_int_equal(r.nstatus, 2);
  assert_int_equal(r.error, 0xFF);
  assert_string_equal(eg_resp_describe(&r, true, d, sizeof d),
                      "stub error 0xFF CMD_NOT_IMPLEMENTED (command not implemented)");
  err_eq(parse_hex("0114020000000000ff00", 2, 12, &r, f, sizeof f), EG_OK);
  assert_int_equal(r.error, 0xFF);

  err_eq(parse_hex("011304000000000001060000", 4, 32, &r, f, sizeof f), EG_OK);
  assert_false(r.ok);
  assert_int_equal(r.error, EG_ROM_ERR_FAILED_RESULT);
  err_eq(parse_hex("0113020000000000c400", 2, 16, &r, f, sizeof f), EG_OK);
  assert_false(r.ok);
  assert_int_equal(r.error, EG_STUB_ERR_FAILED_SPI_OP);

  /* Whatever the expected length, even absurd, no data is claimed. */
  const size_t huge[] = {(size_t)-1, (size_t)-2, (size_t)-4, (size_t)1 << 40};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    err_eq(parse_hex("0113120000000000bda9c2140490e507c2db0c84fdb693a40000", 2, huge[i], &r, f, sizeof f), EG_OK);
    assert_false(r.ok);
    assert_int_equal(r.data_len, 0);
    assert_int_equal(r.status[0], 0xbd);
  }

  /* A short reply that claims success is still malformed. */
  err_eq(parse_hex("011404000000000000000000", 4, 20, &r, f, sizeof f), EG_PROTO_SHORT);
  err_eq(parse_hex("01130200000000000000", 2, 16, &r, f, sizeof f), EG_PROTO_SHORT);
  /* One status byte is not a status. */
  err_eq(parse_hex("011301000000000001", 4, 32, &r, f, sizeof f), EG_PROTO_SHORT);
}

static void test_resp_malformed(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  /* Every length shorter than the header. */
  const uint8_t hdr[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20};
  for (size_t n = 0; n < sizeof hdr; n++) {
    memset(&r, 0x5A, sizeof r);
    err_eq(eg_resp_parse(hdr, n, 4, 0, &r), EG_PROTO_SHORT);
    assert_false(r.ok); /* the result is cleared, not left stale */
    assert_int_equal(r.nstatus, 0);
  }
  /* Header only, size 0: no status at all. */
  err_eq(eg_resp_parse(hdr, sizeof hdr, 4, 0, &r), EG_PROTO_SIZE);
  err_eq(parse_hex("0108000007071220", 4, 0, &r, f, sizeof f), EG_PROTO_SHORT);
  err_eq(parse_hex("0108000007071220", 2, 0, &r, f, sizeof f), EG_PROTO_SHORT);
  /* Wrong direction byte: a request echoed back, and a raw READ_FLASH data
   * frame (the MD5 frame from stub-read-flash.trace). */
  err_eq(parse_hex("000804000707122000000000", 4, 0, &r, f, sizeof f), EG_PROTO_DIRECTION);
  err_eq(parse_hex("60d2f0cf6aaf3b111dee007e91f79396", 2, 0, &r, f, sizeof f), EG_PROTO_DIRECTION);
  err_eq(parse_hex("ff0804000707122000000000", 4, 0, &r, f, sizeof f), EG_PROTO_DIRECTION);
  /* The stub's OHAI greeting is not a response. */
  err_eq(eg_resp_parse((const uint8_t *)"OHAI", 4, 2, 0, &r), EG_PROTO_SHORT);
  /* Size field larger than the frame. */
  err_eq(parse_hex("010a0500831df00000000000", 4, 0, &r, f, sizeof f), EG_PROTO_SIZE);
  err_eq(parse_hex("010affff831df00000000000", 4, 0, &r, f, sizeof f), EG_PROTO_SIZE);
  err_eq(parse_hex("0113240000001000bda9c2140490e507c2db0c84fdb693a40000", 2, 16, &r, f, sizeof f), EG_PROTO_SIZE);
  /* Size field smaller than the frame: the bytes after it are not status. */
  err_eq(parse_hex("010a0200831df000000001050000", 2, 0, &r, f, sizeof f), EG_OK);
  assert_true(r.ok);
  /* A ROM 4-status reply parsed with 4 status bytes but only 2 present. */
  err_eq(parse_hex("010a0200831df0000000", 4, 0, &r, f, sizeof f), EG_PROTO_SHORT);
  /* Status lengths the parser cannot hold. */
  err_eq(parse_hex("010804000707122000000000", 5, 0, &r, f, sizeof f), EG_INVAL);
  err_eq(parse_hex("010804000707122000000000", (size_t)-1, 0, &r, f, sizeof f), EG_INVAL);
  /* Neither layout: with no status bytes any reply would read as success. */
  err_eq(parse_hex("011004000000000001080000", 0, 0, &r, f, sizeof f), EG_INVAL);
  err_eq(parse_hex("011004000000000001080000", 1, 0, &r, f, sizeof f), EG_INVAL);
  err_eq(parse_hex("011004000000000001080000", 3, 0, &r, f, sizeof f), EG_INVAL);
}

/* expect_data beyond anything the frame can hold must not wrap around into
 * a "valid" reply with an absurd data length. */
static void test_resp_huge_expect(void **state) {
  (void)state;
  uint8_t f[128];
  eg_resp r;
  const size_t huge[] = {(size_t)-1, (size_t)-2, (size_t)-3, (size_t)-4, (size_t)-5, (size_t)1 << 40, 0x10000};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    err_eq(parse_hex("010804000707122000000000", 4, huge[i], &r, f, sizeof f), EG_PROTO_SHORT);
    err_eq(parse_hex("01080200000000000000", 2, huge[i], &r, f, sizeof f), EG_PROTO_SHORT);
    err_eq(parse_hex("010a04000a24be0000000000", 4, huge[i], &r, f, sizeof f), EG_PROTO_SHORT);
    assert_int_equal(r.data_len, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sync),
    cmocka_unit_test(test_read_reg),
    cmocka_unit_test(test_write_reg),
    cmocka_unit_test(test_spi_attach),
    cmocka_unit_test(test_spi_set_params),
    cmocka_unit_test(test_begin),
    cmocka_unit_test(test_end),
    cmocka_unit_test(test_md5_read_erase_baud),
    cmocka_unit_test(test_simple_and_ack),
    cmocka_unit_test(test_generic_req),
    cmocka_unit_test(test_defl_data_from_trace),
    cmocka_unit_test(test_checksum),
    cmocka_unit_test(test_data_padding),
    cmocka_unit_test(test_data_padding_only),
    cmocka_unit_test(test_le_helpers),
    cmocka_unit_test(test_op_names),
    cmocka_unit_test(test_error_code_names),
    cmocka_unit_test(test_resp_rom),
    cmocka_unit_test(test_resp_stub),
    cmocka_unit_test(test_resp_md5),
    cmocka_unit_test(test_resp_failures),
    cmocka_unit_test(test_resp_failure_without_expected_data),
    cmocka_unit_test(test_resp_malformed),
    cmocka_unit_test(test_resp_huge_expect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
