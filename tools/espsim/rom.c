/* rom.c - the mask ROMs' UART download loop: the ESP32's ("ets Jul 29
 * 2019", ECO3), the later chips' (S2 ... P4, the ESP32-C3's "ESP-ROM:
 * esp32c3-api1-20210207" is the one traced) and the ESP8266's, with the
 * differences of each generation as data (rom_cmds[] and the chip table).
 *
 * What the traces show and this file reproduces byte for byte:
 *   - replies carry 4 status bytes: [0 ok / 1 fail, error code, x, x]. The
 *     ESP32 ROM writes all four (x = 0); the C3 ROM writes only the first
 *     two and the last two are whatever its reply buffer held from earlier
 *     replies (C3 stub-write-flash.trace: SYNC status 00 00 61 39 = 'a' '9',
 *     characters 2-3 of the previous session's MD5 hex reply). d->rbuf is
 *     that buffer; the ESP8266 ROM sends 2 status bytes (esptool
 *     loader.py:652-655);
 *   - the reply header is reused from one reply to the next: `value` only
 *     changes on READ_REG (the register) and SYNC (the first 4 bytes of the
 *     SYNC data, 0x20120707), so WRITE_REG, SPI_ATTACH, FLASH_DEFL_*, MD5
 *     replies carry the last READ_REG/SYNC value (ESP32 and C3 traces);
 *   - a command the ROM lacks is answered with status 01 05 in the *previous*
 *     reply's header (opcode included: 010804000707122001050000 right after
 *     SYNC), eight times (esptool loader.py: "Unsupported command response is
 *     sent 8 times");
 *   - SYNC is answered with 8 identical replies.
 * Error codes on paths the traces do not show are the protocol doc's ROM
 * table (§1.4); README.md lists which ones are inferred.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "simdev_int.h"

#define ROM_OK 0x00
#define ROM_E_PARAM 0x01    /* invalid input parameter */
#define ROM_E_FORMAT 0x05   /* invalid message format / unknown command */
#define ROM_E_RESULT 0x06   /* message ok, result wrong */
#define ROM_E_CHECKSUM 0x07
#define ROM_E_FLASH_WRITE 0x08
#define ROM_E_FLASH_READ 0x09
#define ROM_E_READ_LEN 0x0A
#define ROM_E_DEFLATE 0x0B
#define ROM_E_ADLER 0x0C
#define ROM_E_RAM_SIZE 0x0E
#define ROM_E_RAM_ADDR 0x0F

/* The ESP32 default SPI pins packed as an SPI_ATTACH argument (doc §5.3):
 * CLK 6, Q 7, D 8, CS 11, HD 9. */
#define SPI_DEFAULT_PINS (6u | 7u << 6 | 8u << 12 | 11u << 18 | 9u << 24)

static size_t status_len(const esim_dev *d) { return d->chip->rom == ESIM_ROM_ESP8266 ? 2 : 4; }

/* Fill the status after `dlen` data bytes of the reply buffer and send the
 * frame; the header (bytes 0-7) is already in place. */
static void send_rbuf(esim_dev *d, uint64_t t, size_t dlen, uint8_t err) {
  uint8_t *b = d->rbuf;
  b[8 + dlen] = err ? 1 : 0;
  b[9 + dlen] = err;
  if (d->chip->rom == ESIM_ROM_ESP32) b[10 + dlen] = b[11 + dlen] = 0;
  esim_tx_frame(d, t, b, 8 + dlen + status_len(d));
}

static void reply(esim_dev *d, uint64_t t, uint8_t op, const uint8_t *data, size_t dlen, uint8_t err) {
  uint8_t *b = d->rbuf;
  d->r_op = op;
  b[0] = 0x01;
  b[1] = op;
  eg_put_u16(b + 2, (uint16_t)(dlen + status_len(d)));
  eg_put_u32(b + 4, d->r_value);
  if (dlen) memcpy(b + 8, data, dlen);
  send_rbuf(d, t, dlen, err);
  esim_log(d, t, "reply %s value=0x%08x status=%02x %02x%s", eg_op_name(op), (unsigned)d->r_value, b[8 + dlen],
           err, dlen ? " +data" : "");
}

static void unsupported(esim_dev *d, uint64_t t, uint8_t op) {
  uint8_t *b = d->rbuf;
  b[0] = 0x01;
  b[1] = d->r_op;
  eg_put_u16(b + 2, (uint16_t)status_len(d));
  eg_put_u32(b + 4, d->r_value);
  for (int i = 0; i < 8; i++) send_rbuf(d, t, 0, ROM_E_FORMAT);
  esim_log(d, t, "reply unsupported op 0x%02x: 8 x status 01 05 in the previous header (op 0x%02x)", op, d->r_op);
}

static bool ram_range_ok(const esim_dev *d, uint32_t addr, uint32_t size, uint8_t *err) {
  /* Where the loader accepts RAM downloads: DRAM, IRAM, RTC memory
   * (per chip, simchip.c). */
  for (size_t i = 0; i < sizeof d->chip->ram / sizeof d->chip->ram[0]; i++) {
    const uint32_t lo = d->chip->ram[i][0], hi = d->chip->ram[i][1];
    if (lo == hi) continue;
    if (addr >= lo && addr < hi) {
      if ((uint64_t)addr + size > hi) {
        *err = ROM_E_RAM_SIZE;
        return false;
      }
      return true;
    }
  }
  *err = ROM_E_RAM_ADDR;
  return false;
}

/* Program what the ROM inflated or received, then read it back for its
 * 8-bit CRC check (doc §1.4, error 0x08). */
static uint8_t rom_write(esim_dev *d, uint64_t *t, const uint8_t *p, size_t n) {
  if (!d->rom_attached) return ROM_E_FLASH_WRITE;
  if ((uint64_t)d->w.next_write + n > d->rom_chip_size) return ROM_E_FLASH_WRITE;
  const bool ok = esim_fl_program(d, t, d->w.next_write, p, n);
  uint8_t tmp[4096];
  for (size_t off = 0; off < n; off += sizeof tmp) {
    size_t k = n - off < sizeof tmp ? n - off : sizeof tmp;
    esim_fl_read(d, t, d->w.next_write + (uint32_t)off, tmp, k);
  }
  d->w.next_write += (uint32_t)n;
  return ok ? ROM_OK : ROM_E_FLASH_WRITE;
}

static uint8_t rom_inflate_block(esim_dev *d, uint64_t *t, const uint8_t *in, size_t n) {
  esim_write *w = &d->w;
  if (w->inflate_done) return n ? ROM_E_DEFLATE : ROM_OK;
  w->zs.next_in = (Bytef *)(uintptr_t)in;
  w->zs.avail_in = (uInt)n;
  uint8_t out[4096];
  for (;;) {
    w->zs.next_out = out;
    w->zs.avail_out = sizeof out;
    const int r = inflate(&w->zs, Z_NO_FLUSH);
    const size_t produced = sizeof out - w->zs.avail_out;
    *t += (produced * d->o.timing.inflate_ns_per_byte + 500) / 1000;
    if (produced) {
      const uint8_t e = rom_write(d, t, out, produced);
      if (e) return e;
    }
    if (r == Z_STREAM_END) {
      w->inflate_done = true;
      return ROM_OK;
    }
    if (r == Z_DATA_ERROR) {
      const bool adler = w->zs.msg && strstr(w->zs.msg, "incorrect data check");
      return adler ? ROM_E_ADLER : ROM_E_DEFLATE;
    }
    if (r == Z_NEED_DICT || r == Z_MEM_ERROR || r == Z_STREAM_ERROR) return ROM_E_DEFLATE;
    if (w->zs.avail_in == 0 && produced < sizeof out) return ROM_OK; /* wants the next block */
    if (r == Z_BUF_ERROR && produced == 0) return ROM_OK;
  }
}

/* FLASH_END / FLASH_DEFL_END: the ROM leaves its loader. */
static void rom_leave(esim_dev *d, uint64_t t, uint32_t flag) {
  esim_write_reset(d);
  if (flag == 0) {
    /* Reboot: a CPU reset keeps the latched strapping, so download mode
     * again (the legacy stub relies on the same for FLASH_END(0)). */
    esim_log(d, t, "rom: FLASH_END(reboot): software reset");
    esim_cpu_reset(d, t);
  } else {
    esim_log(d, t, "rom: FLASH_END(run user code): leaving the loader");
    esim_enter_app(d, t, ESIM_RST_SW_CPU);
  }
}

/* ------------------------------------------------------------ commands
 *
 * One function per opcode, chosen from rom_cmds[] below. Each gets the
 * request with its first six words decoded (0 past the end) after the
 * generic checks (direction, declared vs received length, the opcode's
 * minimum length) have passed, and the CPU time cursor already advanced
 * by the ROM's command latency. */

typedef struct rom_req {
  uint8_t op;
  uint16_t size;      /* the header's data length */
  uint32_t chk;       /* the header's checksum field */
  const uint8_t *data;
  uint32_t w[6];
} rom_req;

typedef void (*rom_fn)(esim_dev *d, uint64_t *t, const rom_req *r);

static void rom_sync(esim_dev *d, uint64_t *t, const rom_req *r) {
  d->r_op = r->op;
  if (r->size >= 4) d->r_value = r->w[0];
  uint8_t *b = d->rbuf;
  b[0] = 1;
  b[1] = r->op;
  eg_put_u16(b + 2, (uint16_t)status_len(d));
  eg_put_u32(b + 4, d->r_value);
  for (int i = 0; i < 8; i++) send_rbuf(d, *t, 0, ROM_OK);
  esim_log(d, *t, "reply SYNC x8 value=0x%08x", (unsigned)d->r_value);
}

static void rom_read_reg(esim_dev *d, uint64_t *t, const rom_req *r) {
  d->r_value = esim_reg_read(d, r->w[0]);
  reply(d, *t, r->op, NULL, 0, ROM_OK);
}

static void rom_write_reg(esim_dev *d, uint64_t *t, const rom_req *r) {
  for (size_t off = 0; off + 16 <= r->size; off += 16) {
    const uint32_t addr = eg_get_u32(r->data + off), val = eg_get_u32(r->data + off + 4);
    const uint32_t mask = eg_get_u32(r->data + off + 8), delay = eg_get_u32(r->data + off + 12);
    *t += delay;
    uint32_t v = val & mask;
    if (mask != 0xFFFFFFFFu) v |= esim_reg_read(d, addr) & ~mask;
    esim_reg_write(d, *t, addr, v);
  }
  reply(d, *t, r->op, NULL, 0, ROM_OK);
}

static void rom_mem_begin(esim_dev *d, uint64_t *t, const rom_req *r) {
  uint8_t err = ROM_OK;
  if (!ram_range_ok(d, r->w[3], r->w[0], &err)) {
    reply(d, *t, r->op, NULL, 0, err);
    return;
  }
  d->mem_active = true;
  d->mem_remaining = r->w[0];
  d->mem_blocks = r->w[1];
  d->mem_block_size = r->w[2];
  d->mem_addr = r->w[3];
  d->mem_next_seq = 0;
  if (!d->mem_text_addr) d->mem_text_addr = r->w[3];
  if (esim_chip_addr_is_new(d->chip, r->w[3])) d->mem_seen_ns = true;
  if (esim_chip_addr_is_legacy(d->chip, r->w[3])) d->mem_seen_ls = true;
  reply(d, *t, r->op, NULL, 0, ROM_OK);
}

static void rom_mem_data(esim_dev *d, uint64_t *t, const rom_req *r) {
  const uint32_t len = r->w[0], seq = r->w[1];
  uint8_t err = ROM_OK;
  if (len != (uint32_t)r->size - 16) err = ROM_E_FORMAT;
  else if (eg_checksum(r->data + 16, len) != (uint8_t)r->chk) err = ROM_E_CHECKSUM;
  else if (!d->mem_active || seq != d->mem_next_seq) err = ROM_E_FORMAT;
  else if (len > d->mem_remaining) err = ROM_E_RAM_SIZE;
  if (!err) {
    d->mem_remaining -= len;
    d->mem_addr += len;
    d->mem_next_seq++;
  }
  reply(d, *t, r->op, NULL, 0, err);
}

static void rom_mem_end(esim_dev *d, uint64_t *t, const rom_req *r) {
  const uint32_t no_exec = r->w[0], entry = r->w[1];
  d->mem_active = false;
  reply(d, *t, r->op, NULL, 0, ROM_OK);
  if (no_exec != 0) return;
  if (entry == 0) {
    esim_log(d, *t, "rom: MEM_END jumps to 0: exception, reset");
    esim_cpu_reset(d, *t + 1000);
    return;
  }
  if (esim_chip_stub_wrong_rev(d->chip, entry, d->rev_major)) {
    esim_log(d, *t, "rom: MEM_END runs 0x%08x: a stub for other revisions than v%d.%d: exception, reset",
             (unsigned)entry, d->rev_major, d->rev_minor);
    d->mem_text_addr = 0;
    esim_cpu_reset(d, *t + 1000);
    return;
  }
  esim_log(d, *t, "rom: MEM_END runs 0x%08x (text at 0x%08x)", (unsigned)entry, (unsigned)d->mem_text_addr);
  d->mem_text_addr = 0;
  esim_enter_stub(d, *t, esim_stub_for_upload(d, entry));
}

static void rom_spi_attach(esim_dev *d, uint64_t *t, const rom_req *r) {
  d->rom_attached = r->w[0] == 0 || r->w[0] == SPI_DEFAULT_PINS;
  if (!d->rom_attached) esim_log(d, *t, "rom: SPI_ATTACH 0x%08x: no flash on those pins", (unsigned)r->w[0]);
  reply(d, *t, r->op, NULL, 0, ROM_OK);
}

static void rom_spi_set_params(esim_dev *d, uint64_t *t, const rom_req *r) {
  d->rom_chip_size = r->w[1];
  reply(d, *t, r->op, NULL, 0, ROM_OK);
}

/* The clock the ROM divides by when it computes a CHANGE_BAUDRATE divider
 * (simchip.h esim_baud_belief): esptool compensates with baud * belief /
 * real where it knows the quirk (doc §8.3; esptool esp32c2.py:127-147,
 * esp32c5.py:137-178). */
static uint64_t rom_believed_clock(const esim_dev *d) {
  switch (d->chip->belief) {
  case ESIM_BELIEF_TRUE: return d->uart_clk;
  case ESIM_BELIEF_RTC_CALI: return (uint64_t)d->rtc_cali * 15625u * 80u / 40u;
  case ESIM_BELIEF_40MHZ: return 40000000ull * d->chip->uart_clk_mult;
  case ESIM_BELIEF_EXPECTED: return (uint64_t)(d->o.rom_xtal_mhz ? d->o.rom_xtal_mhz : 40) * 1000000u;
  }
  return d->uart_clk;
}

static void rom_change_baudrate(esim_dev *d, uint64_t *t, const rom_req *r) {
  /* The ROM divides its own idea of the clock by the value sent; the UART
   * runs from the real crystal. */
  const uint32_t v = r->w[0];
  uint32_t clkdiv = 0, actual = 0;
  if (v) {
    clkdiv = esim_clkdiv_for((uint32_t)rom_believed_clock(d), v);
    actual = esim_baud_from_clkdiv(d->uart_clk, clkdiv);
  }
  if (d->o.faults.rom_baud_error != 0 && v) {
    /* fault rom_baud_error: the ROM replies, then runs at a wrong rate */
    actual = (uint32_t)((double)actual * (1.0 + d->o.faults.rom_baud_error));
    clkdiv = esim_clkdiv_for(d->uart_clk, actual);
    esim_log(d, *t, "fault rom_baud_error: the ROM's divider is off by %+.1f %%", d->o.faults.rom_baud_error * 100);
  }
  reply(d, *t, r->op, NULL, 0, ROM_OK);
  esim_log(d, *t, "rom: CHANGE_BAUDRATE value %u -> UART %u baud", (unsigned)v, (unsigned)actual);
  d->autobaud = false;
  esim_tx_baud(d, *t, actual, clkdiv);
  /* esp-serial-flasher slip.c: "bootloader sends two dummy (0xC0) bytes
   * after response when baud rate is changed". */
  static const uint8_t two_c0[2] = {0xC0, 0xC0};
  esim_tx_raw(d, *t, two_c0, 2);
}

static void rom_get_security_info(esim_dev *d, uint64_t *t, const rom_req *r) {
  uint8_t info[20];
  const size_t n = esim_security_info(d, info);
  reply(d, *t, r->op, info, n, ROM_OK);
}

static void rom_read_flash_slow(esim_dev *d, uint64_t *t, const rom_req *r) {
  const uint32_t addr = r->w[0], len = r->w[1];
  if (len > 64) {
    reply(d, *t, r->op, NULL, 0, ROM_E_READ_LEN);
    return;
  }
  if ((uint64_t)addr + len > d->rom_chip_size) {
    reply(d, *t, r->op, NULL, 0, ROM_E_FLASH_READ);
    return;
  }
  uint8_t buf[64];
  if (d->rom_attached) esim_fl_read(d, t, addr, buf, 64);
  else memset(buf, 0xFF, sizeof buf);
  reply(d, *t, r->op, buf, 64, ROM_OK);
}

static void rom_flash_md5(esim_dev *d, uint64_t *t, const rom_req *r) {
  const uint32_t addr = r->w[0], len = r->w[1];
  if ((uint64_t)addr + len > d->rom_chip_size) {
    reply(d, *t, r->op, NULL, 0, ROM_E_FLASH_READ);
    return;
  }
  uint8_t dig[16];
  if (d->rom_attached) {
    esim_fl_md5(d, t, addr, len, dig);
  } else {
    void *c = esim_md5_new();
    uint8_t ff[256];
    memset(ff, 0xFF, sizeof ff);
    for (uint32_t k = 0; k < len; k += sizeof ff) esim_md5_update(c, ff, len - k < sizeof ff ? len - k : sizeof ff);
    esim_md5_final(c, dig);
  }
  char hex[33];
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", dig[i]);
  reply(d, *t, r->op, (const uint8_t *)hex, 32, ROM_OK);
}

/* The ESP8266 ROM's FLASH_BEGIN erase-size bug (esptool docs
 * serial-protocol.rst "Erase Size Bug"): asked for n sectors with h left in
 * the first 64 KB block, it erases 2n when n < h, else h + n. esptool's
 * workaround (esptool v5.3.1 esptool/targets/esp8266.py:152-169) is the
 * inverse of exactly this. */
static uint32_t esp8266_erase_len(uint32_t offset, uint32_t size) {
  const uint32_t n = (size + ESIM_SECTOR - 1) / ESIM_SECTOR;
  uint32_t h = ESIM_SECTORS_PER_BLOCK - (offset / ESIM_SECTOR) % ESIM_SECTORS_PER_BLOCK;
  return (n < h ? 2 * n : h + n) * ESIM_SECTOR;
}

/* FLASH_BEGIN / FLASH_DEFL_BEGIN */
static void rom_flash_begin(esim_dev *d, uint64_t *t, const rom_req *r) {
  const uint32_t blocks = r->w[1], bsize = r->w[2], offset = r->w[3];
  uint32_t erase = r->w[0];
  esim_write *ws = &d->w;
  esim_write_reset(d);
  if (d->chip->rom == ESIM_ROM_ESP8266) {
    /* It has no SPI_ATTACH: FLASH_BEGIN attaches the flash (esptool sends
     * FLASH_BEGIN(0, 0) for that, esp8266.py:114-120). */
    d->rom_attached = true;
    if (erase) erase = esp8266_erase_len(offset, erase);
  }
  if (!d->rom_attached) {
    reply(d, *t, r->op, NULL, 0, ROM_E_RESULT);
    return;
  }
  /* The later ROMs take a 5th word, 1 = write encrypted (doc §6.1); the
   * ESP32's ignores it. Encryption itself is not modelled (README). */
  if (d->chip->rom == ESIM_ROM_LATER && r->size >= 20 && r->w[4])
    esim_log(d, *t, "rom: FLASH_BEGIN asks for an encrypted write (not modelled: stored as sent)");
  /* The ROM erases the whole region before it replies (doc §6.1). */
  if (erase && !esim_fl_erase_area(d, t, offset, erase, d->rom_chip_size)) {
    reply(d, *t, r->op, NULL, 0, ROM_E_PARAM);
    return;
  }
  ws->active = true;
  ws->compressed = r->op == EG_OP_FLASH_DEFL_BEGIN;
  ws->offset = ws->next_write = offset;
  ws->size = erase;
  ws->num_blocks = blocks;
  ws->block_size = bsize;
  ws->next_seq = 0;
  if (ws->compressed) {
    memset(&ws->zs, 0, sizeof ws->zs);
    if (inflateInit(&ws->zs) != Z_OK) {
      reply(d, *t, r->op, NULL, 0, ROM_E_DEFLATE);
      return;
    }
    ws->z_ready = true;
  }
  reply(d, *t, r->op, NULL, 0, ROM_OK);
}

/* FLASH_DATA / FLASH_DEFL_DATA */
static void rom_flash_data(esim_dev *d, uint64_t *t, const rom_req *r) {
  const uint32_t len = r->w[0], seq = r->w[1];
  const bool defl = r->op == EG_OP_FLASH_DEFL_DATA;
  esim_write *ws = &d->w;
  uint8_t err = ROM_OK;
  if (!ws->active || ws->compressed != defl) err = ROM_E_FORMAT;
  else if (len != (uint32_t)r->size - 16) err = ROM_E_FORMAT;
  else if (eg_checksum(r->data + 16, len) != (uint8_t)r->chk) err = ROM_E_CHECKSUM;
  else if (seq != ws->next_seq) err = ROM_E_FORMAT;
  if (!err) {
    err = defl ? rom_inflate_block(d, t, r->data + 16, len) : rom_write(d, t, r->data + 16, len);
    ws->next_seq++;
  }
  reply(d, *t, r->op, NULL, 0, err);
}

/* FLASH_END / FLASH_DEFL_END */
static void rom_flash_end(esim_dev *d, uint64_t *t, const rom_req *r) {
  reply(d, *t, r->op, NULL, 0, ROM_OK);
  rom_leave(d, *t, r->w[0]);
}

/* The ROMs' command sets: opcode, the data length below which the ROM
 * answers "invalid message" (01 05), the generations that have it, whether
 * Secure Download Mode still takes it, the handler. A command a ROM lacks,
 * or one SDM refuses, gets the ROM's "invalid message" answer (esptool
 * raises UnsupportedCommandError on it; for SDM it expects exactly that of
 * the S2's READ_REG, esptool v5.3.1 esptool/cmds.py:175-186).
 *   - ESP8266: 0x02-0x0A only (esptool docs serial-protocol.rst, the
 *     ESP8266 command table; no SPI_ATTACH/SET_PARAMS/DEFL/MD5/baud).
 *   - ESP32: no GET_SECURITY_INFO (chip-family-facts §1).
 *   - SDM: SYNC, SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE, FLASH_BEGIN/
 *     DATA/END, GET_SECURITY_INFO ("Supported in Secure Download Mode",
 *     esptool docs serial-protocol.rst:309-321). */
enum { G8266 = 1 << ESIM_ROM_ESP8266, G32 = 1 << ESIM_ROM_ESP32, GLATER = 1 << ESIM_ROM_LATER };
#define GALL (G8266 | G32 | GLATER)

typedef struct rom_cmd {
  uint8_t op;
  uint8_t need;
  uint8_t gens;
  bool sdm;
  rom_fn fn;
} rom_cmd;

static const rom_cmd rom_cmds[] = {
    {EG_OP_SYNC, 0, GALL, true, rom_sync},
    {EG_OP_READ_REG, 4, GALL, false, rom_read_reg},
    {EG_OP_WRITE_REG, 16, GALL, false, rom_write_reg},
    {EG_OP_MEM_BEGIN, 16, GALL, false, rom_mem_begin},
    {EG_OP_MEM_DATA, 16, GALL, false, rom_mem_data},
    {EG_OP_MEM_END, 8, GALL, false, rom_mem_end},
    {EG_OP_FLASH_BEGIN, 16, GALL, true, rom_flash_begin},
    {EG_OP_FLASH_DATA, 16, GALL, true, rom_flash_data},
    {EG_OP_FLASH_END, 4, GALL, true, rom_flash_end},
    {EG_OP_SPI_ATTACH, 4, G32 | GLATER, true, rom_spi_attach},
    {EG_OP_SPI_SET_PARAMS, 24, G32 | GLATER, true, rom_spi_set_params},
    {EG_OP_CHANGE_BAUDRATE, 8, G32 | GLATER, true, rom_change_baudrate},
    {EG_OP_READ_FLASH_SLOW, 8, G32 | GLATER, false, rom_read_flash_slow},
    {EG_OP_FLASH_DEFL_BEGIN, 16, G32 | GLATER, false, rom_flash_begin},
    {EG_OP_FLASH_DEFL_DATA, 16, G32 | GLATER, false, rom_flash_data},
    {EG_OP_FLASH_DEFL_END, 4, G32 | GLATER, false, rom_flash_end},
    {EG_OP_SPI_FLASH_MD5, 16, G32 | GLATER, false, rom_flash_md5},
    {EG_OP_GET_SECURITY_INFO, 0, GLATER, true, rom_get_security_info},
};

static const rom_cmd *rom_cmd_for(const esim_dev *d, uint8_t op) {
  for (size_t i = 0; i < sizeof rom_cmds / sizeof rom_cmds[0]; i++) {
    const rom_cmd *c = &rom_cmds[i];
    if (c->op != op) continue;
    if (!(c->gens & (1 << d->chip->rom))) return NULL;
    if (d->o.sec.secure_download && !c->sdm) return NULL;
    return c;
  }
  return NULL;
}

void esim_rom_frame(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n) {
  if (n < 8) {
    esim_log(d, *t, "rom: frame of %zu bytes ignored", n);
    return;
  }
  if (f[0] != 0x00) {
    esim_log(d, *t, "rom: frame with direction 0x%02x ignored", f[0]);
    return;
  }
  rom_req r;
  memset(&r, 0, sizeof r);
  r.op = f[1];
  r.size = eg_get_u16(f + 2);
  r.chk = eg_get_u32(f + 4);
  r.data = f + 8;
  const size_t avail = n - 8;
  d->st.commands++;
  esim_log_cmd(d, *t, r.op, r.size);

  const rom_cmd *c = rom_cmd_for(d, r.op);
  if (!c) {
    *t += d->o.timing.rom_cmd_us;
    unsupported(d, *t, r.op);
    return;
  }
  if (r.op == EG_OP_SYNC && d->o.faults.ignore_first_sync && !d->rom_sync_seen) {
    d->rom_sync_seen = true;
    esim_log(d, *t, "fault ignore_first_sync: SYNC unanswered");
    return;
  }
  d->rom_sync_seen = true;
  *t += r.op == EG_OP_SYNC ? d->o.timing.rom_sync_us : d->o.timing.rom_cmd_us;
  if (avail < r.size || r.size < c->need) {
    reply(d, *t, r.op, NULL, 0, ROM_E_FORMAT);
    return;
  }
  for (size_t i = 0; i < 6 && 4 * i + 4 <= r.size; i++) r.w[i] = eg_get_u32(r.data + 4 * i);
  c->fn(d, t, &r);
}
