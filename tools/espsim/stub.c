/* stub.c - the two ESP32 flasher stubs, as their sources behave (read for
 * facts, not copied):
 *
 *   LEGACY  esptool-legacy-flasher-stub (esptool set "1"; text 0x400BE000):
 *           stub_flasher.c cmd_loop, stub_write_flash.c, stub_commands.c.
 *   NEW     esp-flasher-stub (esptool set "2", esptool-js 0.7.0; text
 *           0x400A8000): command_handler.c handle_command.
 *
 * Replies have 2 status bytes and value 0 (READ_REG excepted). Quirks kept
 * on purpose because a host meets them on real chips:
 *   - LS sends every reply's 8-byte header before running the command and
 *     the status after (cmd_loop), so a long ERASE_FLASH/MD5 shows its
 *     header at once.
 *   - LS computes several statuses as `verify_data_len(...) || handler(...)`,
 *     a C logical OR: a bad length or failing handler there reports 0x01,
 *     not 0xC0 (ERASE_REGION, ERASE_FLASH, MD5, SPI_ATTACH, SPI_SET_PARAMS,
 *     MEM_BEGIN, MEM_END).
 *   - LS acknowledges FLASH_(DEFL_)DATA right after checking length and
 *     checksum, then inflates/erases/writes while the next block arrives; a
 *     write or inflate error is reported by a later DATA reply or by END.
 *   - NS sends the full reply after the command; DATA/READ_FLASH/baud work
 *     runs after the reply ("post-process") and an error there is returned
 *     instead of running the *next* command.
 */
#include <string.h>

#include "proto.h"
#include "simdev_int.h"

/* LS esp_command_error / NS esp_response_code (high byte). */
enum {
  S_OK = 0x00,
  S_BAD_DATA_LEN = 0xC0,
  S_BAD_DATA_CHECKSUM = 0xC1,
  S_BAD_BLOCKSIZE = 0xC2,
  S_INVALID_COMMAND = 0xC3,
  S_FAILED_SPI_OP = 0xC4,
  S_NOT_IN_FLASH_MODE = 0xC6,
  S_INFLATE_ERROR = 0xC7,
  S_NOT_ENOUGH_DATA = 0xC8,
  S_TOO_MUCH_DATA = 0xC9,
  S_NOT_IMPLEMENTED = 0xFF
};

void esim_stub_reset(esim_dev *d) {
  if (d->rf.md5) esim_md5_free(d->rf.md5);
  memset(&d->rf, 0, sizeof d->rf);
  d->opst = OPST_IDLE;
  d->ns_accum = S_OK;
  d->stub_chip_size = 16u << 20; /* LS: SPIParamCfg(..., FLASH_MAX_SIZE = 16 MB) at boot */
  d->mem_active = false;
  d->mem_remaining = 0;
}


/* WRITE_REG with N x (addr, value, mask, delay_us) records, as both stubs
 * accept: masked bits keep their value, each delay is spent first. */
static void write_regs(esim_dev *d, uint64_t *t, const uint8_t *data, size_t size) {
  for (size_t off = 0; off + 16 <= size; off += 16) {
    const uint32_t a = eg_get_u32(data + off), v = eg_get_u32(data + off + 4);
    const uint32_t mask = eg_get_u32(data + off + 8), delay = eg_get_u32(data + off + 12);
    *t += delay;
    uint32_t nv = v & mask;
    if (mask != 0xFFFFFFFFu) nv |= esim_reg_read(d, a) & ~mask;
    esim_reg_write(d, *t, a, nv);
  }
}

static uint32_t word(const uint8_t *data, size_t size, unsigned i) {
  return 4u * i + 4 <= size ? eg_get_u32(data + 4 * i) : 0;
}

/* ------------------------------------------------------------------ LS */

/* One LS reply: header at t_hdr, [data] + error + status at t_end. */
static void ls_reply(esim_dev *d, uint64_t t_hdr, uint64_t t_end, uint8_t op, uint16_t len_ret, uint32_t value,
                     const uint8_t *data, size_t dlen, uint8_t err, uint8_t status) {
  uint8_t buf[8 + 20 + 2];
  buf[0] = 0x01;
  buf[1] = op;
  eg_put_u16(buf + 2, len_ret);
  eg_put_u32(buf + 4, value);
  if (dlen) memcpy(buf + 8, data, dlen);
  buf[8 + dlen] = err;
  buf[9 + dlen] = status;
  esim_tx_frame_split(d, t_hdr, t_end, buf, 10 + dlen, 8);
  esim_log(d, t_end, "reply %s value=0x%08x status=%02x %02x", eg_op_name(op), (unsigned)value, err, status);
}

/* stub_write_flash.c start_next_erase: a 64 KB block if aligned and at
 * least 16 sectors remain, else one sector; never waits for the chip. */
static bool ls_start_next_erase(esim_dev *d, uint64_t *t) {
  esim_write *w = &d->w;
  if (w->erase_remaining == 0) return true;
  const bool block = w->erase_remaining >= ESIM_SECTORS_PER_BLOCK && (w->next_erase / ESIM_SECTOR) % ESIM_SECTORS_PER_BLOCK == 0;
  if (!esim_fl_erase_if_ready(d, t, block ? ESIM_ERASE_BLOCK : ESIM_ERASE_SECTOR, w->next_erase)) return false;
  const uint32_t n = block ? ESIM_SECTORS_PER_BLOCK : 1;
  w->erase_remaining -= n;
  w->next_erase += n * ESIM_SECTOR;
  return true;
}

/* stub_write_flash.c handle_flash_data */
static void ls_flash_data(esim_dev *d, uint64_t *t, const uint8_t *p, uint32_t len) {
  esim_write *w = &d->w;
  if (len > w->remaining) len = w->remaining; /* trailing padding of the last block */
  if (len == 0) return;
  const uint32_t last_sector = (w->next_write + len) / ESIM_SECTOR;
  while (w->erase_remaining > 0 && w->next_erase / ESIM_SECTOR <= last_sector) {
    if (*t < d->flash_busy) *t = d->flash_busy; /* the stub spins on spiflash_is_ready */
    ls_start_next_erase(d, t);
  }
  bool ok = (uint64_t)w->next_write + len <= d->stub_chip_size; /* ROM SPIWrite range check */
  if (ok) ok = esim_fl_program(d, t, w->next_write, p, len);
  if (!ok) w->last_error = S_FAILED_SPI_OP;
  w->next_write += len;
  w->remaining -= len;
}

/* stub_write_flash.c handle_flash_deflated_data */
static void ls_defl_data(esim_dev *d, uint64_t *t, const uint8_t *in, uint32_t length) {
  esim_write *w = &d->w;
  if (w->remaining == 0 && length > 4) {
    w->last_error = S_TOO_MUCH_DATA;
    return;
  }
  bool done = false, failed = false;
  while (length > 0 && w->remaining > 0 && !done && !failed) {
    ls_start_next_erase(d, t); /* opportunistic: erase while inflating */
    w->zs.next_in = (Bytef *)(uintptr_t)in;
    w->zs.avail_in = length;
    w->zs.next_out = w->out + w->out_len;
    w->zs.avail_out = 32768 - w->out_len;
    const int r = w->z_ready ? inflate(&w->zs, Z_NO_FLUSH) : Z_STREAM_ERROR;
    const uint32_t consumed = length - w->zs.avail_in;
    const uint32_t produced = 32768 - w->out_len - w->zs.avail_out;
    w->remaining_compressed -= consumed;
    length -= consumed;
    in += consumed;
    w->out_len += produced;
    *t += ((uint64_t)produced * d->o.timing.inflate_ns_per_byte + 500) / 1000;
    if (r == Z_STREAM_END) done = true;
    else if (r != Z_OK && r != Z_BUF_ERROR) failed = true;
    if (done || w->out_len == 32768) {
      ls_flash_data(d, t, w->out, w->out_len);
      w->out_len = 0;
    }
    if (!done && !failed && consumed == 0 && produced == 0) break;
  }
  if (failed) w->last_error = S_INFLATE_ERROR;
  if (done && w->remaining > 0) w->last_error = S_NOT_ENOUGH_DATA;
}

/* stub_commands.c handle_flash_erase: 0 or the non-zero code that the
 * caller's `||` turns into 1. */
static int ls_erase_region(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len) {
  if (addr % ESIM_SECTOR) return 0x32;
  if (len % ESIM_SECTOR) return 0x33;
  while (len > 0 && addr % ESIM_BLOCK) {
    if ((uint64_t)addr + ESIM_SECTOR > d->stub_chip_size) return 0x35;
    esim_fl_erase(d, t, ESIM_ERASE_SECTOR, addr, true);
    len -= ESIM_SECTOR;
    addr += ESIM_SECTOR;
  }
  while (len > ESIM_BLOCK) { /* strictly more than a block: 64 KB left goes sector by sector */
    if ((uint64_t)addr + ESIM_BLOCK > d->stub_chip_size) return 0x36;
    esim_fl_erase(d, t, ESIM_ERASE_BLOCK, addr, true);
    len -= ESIM_BLOCK;
    addr += ESIM_BLOCK;
  }
  while (len > 0) {
    if ((uint64_t)addr + ESIM_SECTOR > d->stub_chip_size) return 0x37;
    esim_fl_erase(d, t, ESIM_ERASE_SECTOR, addr, true);
    len -= ESIM_SECTOR;
    addr += ESIM_SECTOR;
  }
  return 0;
}

static void md5_range(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len, uint8_t dig[16]) {
  esim_fl_md5(d, t, addr, len, dig);
}

/* READ_FLASH streaming (both stubs): send packets while the in-flight rule
 * allows, then wait for the host's 4-byte acknowledgement frames; after the
 * last ack, the 16-byte MD5 of everything sent. */
static void rf_finish(esim_dev *d, uint64_t t) {
  uint8_t dig[16];
  esim_md5_final(d->rf.md5, dig);
  d->rf.md5 = NULL;
  esim_tx_frame(d, t, dig, 16);
  esim_log(d, t, "read_flash done: %u bytes sent, md5 frame", (unsigned)d->rf.sent);
  d->opst = OPST_IDLE;
}

static void rf_pump(esim_dev *d, uint64_t *t) {
  for (;;) {
    bool may_send;
    if (d->flavour == ESIM_STUB_LEGACY) {
      /* stub_commands.c handle_flash_read compares *bytes* in flight with
       * max_in_flight (a packet count in esptool's mind): with esptool's 64
       * it allows one packet (doc §7). */
      if (!(d->rf.acked < d->rf.len && d->rf.acked <= d->rf.sent)) {
        rf_finish(d, *t);
        return;
      }
      may_send = d->rf.sent < d->rf.len && d->rf.sent - d->rf.acked < d->rf.max_in_flight;
    } else {
      if (!(d->rf.sent < d->rf.len || d->rf.acked < d->rf.len)) {
        rf_finish(d, *t);
        return;
      }
      may_send = d->rf.sent < d->rf.len && d->rf.sent_packets - d->rf.acked_packets < 1;
    }
    if (!may_send) {
      d->opst = OPST_READ_FLASH; /* wait for an ack frame */
      return;
    }
    uint32_t n = d->rf.len - d->rf.sent;
    if (n > d->rf.packet) n = d->rf.packet;
    uint8_t buf[4096];
    esim_fl_read(d, t, d->rf.addr, buf, n);
    esim_md5_update(d->rf.md5, buf, n);
    *t += ((uint64_t)n * d->o.timing.md5_ns_per_byte + 500) / 1000;
    esim_tx_frame(d, *t, buf, n);
    d->rf.addr += n;
    d->rf.sent += n;
    d->rf.sent_packets++;
  }
}

static void rf_start(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len, uint32_t packet, uint32_t inflight) {
  memset(&d->rf, 0, sizeof d->rf);
  d->rf.addr = addr;
  d->rf.len = len;
  d->rf.packet = packet;
  d->rf.max_in_flight = inflight;
  d->rf.md5 = esim_md5_new();
  esim_log(d, *t, "read_flash 0x%06x+%u packet %u in-flight %u", (unsigned)addr, (unsigned)len, (unsigned)packet,
           (unsigned)inflight);
  if (packet == 0) { /* nothing can ever be sent: the stub waits for acks */
    d->opst = OPST_READ_FLASH;
    return;
  }
  rf_pump(d, t);
}

void esim_stub_read_ack(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n) {
  *t += d->o.timing.stub_cmd_us;
  if (d->flavour == ESIM_STUB_LEGACY) {
    /* SLIP_recv(&num_acked, 4): keeps the first 4 bytes, r = min(len, 4) */
    if (n < 4) {
      esim_log(d, *t, "read_flash: %zu-byte ack, giving up", n);
      rf_finish(d, *t);
      return;
    }
    d->rf.acked = eg_get_u32(f);
  } else {
    if (n != 4) {
      esim_log(d, *t, "read_flash: %zu-byte ack, giving up", n);
      rf_finish(d, *t);
      return;
    }
    d->rf.acked = eg_get_u32(f);
    d->rf.acked_packets++;
  }
  rf_pump(d, t);
}

/* A stub request: the header fields and the first five words (0 past the
 * data). LS handlers see the frame copied into a zeroed buffer of the
 * declared size (LS trusts the header's length). */
typedef struct stub_req {
  uint8_t op;
  uint16_t size;
  uint32_t checksum;
  const uint8_t *data;
  uint32_t w[5];
} stub_req;

/* What an LS handler puts in its reply besides the header. */
typedef struct ls_ans {
  uint8_t status;    /* second status byte (SPI_SET_PARAMS: SPIParamCfg's result) */
  uint8_t data[20];
  size_t dlen;
} ls_ans;

#define LS_NO_REPLY (-1)
#define LS_SEC_INFO 0xFF /* ls_cmd.reply_data: the chip's security info length */

/* Run the command; returns the error byte (0 ok) or LS_NO_REPLY. */
typedef int (*ls_run_fn)(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a);
/* After the reply, when the command succeeded. */
typedef void (*ls_post_fn)(esim_dev *d, uint64_t *t, const stub_req *r);

static int ls_sync(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t;
  (void)a;
  if (r->size != 36) return S_BAD_DATA_LEN;
  uint8_t buf[10] = {0x01, EG_OP_SYNC, 0x02, 0x00, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 7; i++) esim_tx_frame(d, t_hdr, buf, sizeof buf);
  return S_OK;
}

static int ls_erase_flash(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t_hdr;
  (void)a;
  if (r->size != 0) return 1;
  esim_fl_erase(d, t, ESIM_ERASE_CHIP, 0, true); /* SPIEraseChip waits */
  return S_OK;
}

static int ls_erase_region_cmd(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t_hdr;
  (void)a;
  return r->size != 8 ? 1 : ls_erase_region(d, t, r->w[0], r->w[1]) ? 1 : S_OK;
}

/* CHANGE_BAUDRATE, READ_FLASH: checked here, done after the reply. */
static int ls_len8(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)d, (void)t, (void)t_hdr, (void)a;
  return r->size == 8 ? S_OK : S_BAD_DATA_LEN;
}

static int ls_len16(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)d, (void)t, (void)t_hdr, (void)a;
  return r->size == 16 ? S_OK : S_BAD_DATA_LEN;
}

static int ls_md5(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t_hdr;
  if (r->size != 16) return 1;
  if ((uint64_t)r->w[0] + r->w[1] > d->stub_chip_size) return 1; /* SPIRead fails -> 0x63 -> `||` -> 1 */
  md5_range(d, t, r->w[0], r->w[1], a->data);
  a->dlen = 16;
  return S_OK;
}

/* FLASH_BEGIN / FLASH_DEFL_BEGIN as both stubs start a write session:
 * (uncompressed) size, blocks, block size, offset; w[4], the encrypt flag,
 * is not modelled. Each stub then sets up its own erase plan. */
static void stub_begin_session(esim_dev *d, const stub_req *r) {
  esim_write *w = &d->w;
  esim_write_reset(d);
  w->active = true;
  w->compressed = r->op == EG_OP_FLASH_DEFL_BEGIN;
  w->remaining = r->w[0];
  w->num_blocks = r->w[1];
  w->block_size = r->w[2];
  w->offset = w->next_write = r->w[3];
  w->last_error = S_OK;
  if (w->compressed) {
    w->remaining_compressed = r->w[1] * r->w[2];
    memset(&w->zs, 0, sizeof w->zs);
    w->z_ready = inflateInit(&w->zs) == Z_OK;
  }
}

static int ls_flash_begin(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr, (void)a;
  esim_write *w = &d->w;
  if (r->size != 16 && r->size != 20) return S_BAD_DATA_LEN;
  if (r->w[2] > 0x4000) return S_BAD_BLOCKSIZE;
  stub_begin_session(d, r);
  /* just-in-time erase by sectors (stub_write_flash.c) */
  w->next_erase = r->w[3] & ~(ESIM_SECTOR - 1);
  w->erase_remaining = ((r->w[3] % ESIM_SECTOR) + r->w[0] + ESIM_SECTOR - 1) / ESIM_SECTOR;
  return S_OK;
}

/* ACK first: check, reply, then write (ls_flash_data_post) while the next
 * block arrives. */
static int ls_flash_data_cmd(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr, (void)a;
  esim_write *w = &d->w;
  if (!w->active) return S_NOT_IN_FLASH_MODE;
  int err = w->last_error;
  const uint32_t payload = (uint32_t)r->size - 16;
  if (r->size < 16 || r->w[0] != payload) err = S_BAD_DATA_LEN;
  if (r->size >= 16 && eg_checksum(r->data + 16, payload) != r->checksum) err = S_BAD_DATA_CHECKSUM;
  return err;
}

static int ls_flash_end(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr, (void)r, (void)a;
  esim_write *w = &d->w;
  if (!w->active) return S_NOT_IN_FLASH_MODE;
  if (w->remaining > 0) return S_NOT_ENOUGH_DATA;
  w->active = false;
  return w->last_error;
}

static int ls_spi_set_params(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr;
  if (r->size != 24) return 1;
  d->stub_chip_size = r->w[1];
  a->status = 0; /* SPIParamCfg's result */
  return S_OK;
}

static int ls_spi_attach(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)d, (void)t, (void)t_hdr, (void)a;
  return r->size != 4 ? 1 : S_OK;
}

static int ls_write_reg(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t_hdr, (void)a;
  if (r->size % 16) return S_BAD_DATA_LEN;
  write_regs(d, t, r->data, r->size);
  return S_OK;
}

static int ls_read_reg(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)d, (void)t, (void)t_hdr, (void)a;
  return r->size == 4 ? S_OK : S_BAD_DATA_LEN; /* the value went out with the header */
}

static int ls_mem_begin(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr, (void)a;
  if (r->size != 16) return 1;
  d->mem_active = true;
  d->mem_addr = r->w[3];
  d->mem_remaining = r->w[0];
  if (esim_chip_addr_is_new(d->chip, r->w[3])) d->mem_seen_ns = true;
  if (esim_chip_addr_is_legacy(d->chip, r->w[3])) d->mem_seen_ls = true;
  return S_OK;
}

static int ls_mem_data(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr, (void)a;
  const uint32_t len = (uint32_t)r->size - 16;
  if (!d->mem_active && len > 0) return S_NOT_IN_FLASH_MODE;
  if (len > d->mem_remaining) return S_TOO_MUCH_DATA;
  if (len % 4) return S_BAD_DATA_LEN;
  d->mem_remaining -= len;
  d->mem_addr += len;
  return S_OK;
}

static int ls_mem_end(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr, (void)a;
  if (r->size != 8) return 1;
  const int err = d->mem_remaining > 0 ? 1 : S_OK;
  d->mem_remaining = 0;
  d->mem_active = false;
  return err;
}

/* LS on S2 and later (stub_flasher.c ESP32S2_OR_LATER): the ROM's payload,
 * sent like MD5's between the header and the status (assumed: no trace);
 * on the ESP32 and ESP8266 the command is not there: NOT_IMPLEMENTED. */
static int ls_get_security_info(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t, (void)t_hdr;
  if (!d->chip->sec_info_len) return S_NOT_IMPLEMENTED;
  if (r->size != 0) return 1; /* verify_data_len || ...: `||` turns it into 1 */
  a->dlen = esim_security_info(d, a->data);
  return S_OK;
}

static int ls_run_user_code(esim_dev *d, uint64_t *t, uint64_t t_hdr, const stub_req *r, ls_ans *a) {
  (void)t_hdr, (void)r, (void)a;
  /* cmd_loop returns without a reply; stub_main returns into the ROM,
   * which goes on to boot from flash. */
  esim_log(d, *t, "stub: RUN_USER_CODE, leaving the stub");
  esim_enter_app(d, *t, ESIM_RST_SW_CPU);
  return LS_NO_REPLY;
}

static void ls_baud_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  /* stub_io_set_baudrate(current = 2nd word, new = 1st word): 10 ms,
   * divider = current divider * current / new, 1 ms. The result is off
   * when the 2nd word is not the real current rate (0 breaks the UART). */
  *t += d->o.timing.baud_switch_us;
  const uint64_t div16 = ((uint64_t)(d->clkdiv & 0xFFFFF) << 4) | ((d->clkdiv >> 20) & 0xF);
  uint32_t clkdiv = 0, actual = 0;
  if (r->w[0]) {
    const uint64_t nd = div16 * r->w[1] / r->w[0];
    clkdiv = (uint32_t)((nd >> 4) & 0xFFFFF) | (uint32_t)((nd & 0xF) << 20);
    actual = esim_baud_from_clkdiv(d->uart_clk, clkdiv);
  }
  esim_log(d, *t, "stub: CHANGE_BAUDRATE %u (old %u) -> UART %u baud", (unsigned)r->w[0], (unsigned)r->w[1],
           (unsigned)actual);
  esim_tx_baud(d, *t, actual, clkdiv);
  *t += 1000;
}

static void ls_read_flash_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  if (r->w[2] > 4096) {
    esim_log(d, *t, "stub: READ_FLASH packet %u > 4096: nothing sent", (unsigned)r->w[2]);
    return; /* handle_flash_read returns at once */
  }
  rf_start(d, t, r->w[0], r->w[1], r->w[2], r->w[3]);
}

static void ls_flash_data_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  if (r->op == EG_OP_FLASH_DEFL_DATA) ls_defl_data(d, t, r->data + 16, (uint32_t)r->size - 16);
  else ls_flash_data(d, t, r->data + 16, (uint32_t)r->size - 16);
}

static void ls_flash_end_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  if (r->w[0] != 0) return;
  /* Flush, 10 ms, software_reset(): esptool says this re-enters the ROM
   * loader (the strapping is still latched). */
  *t += 10000;
  esim_log(d, *t, "stub: FLASH_END(reboot): software reset");
  esim_cpu_reset(d, *t);
}

/* MEM_END with an entry point starts another stub (both flavours). */
static void stub_restart(esim_dev *d, uint64_t *t, uint32_t entry) {
  *t += 1000;
  esim_enter_stub(d, *t, esim_stub_for_upload(d, entry));
}

static void ls_mem_end_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  if (r->w[1] != 0) stub_restart(d, t, r->w[1]);
}

/* LS cmd_loop: opcode, data bytes in the reply besides the status, the
 * command and what runs after a successful reply. Anything else:
 * ESP_CMD_NOT_IMPLEMENTED (GET_SECURITY_INFO on the ESP32 too). */
typedef struct ls_cmd {
  uint8_t op;
  uint8_t reply_data;
  ls_run_fn run;
  ls_post_fn post;
} ls_cmd;

static const ls_cmd ls_cmds[] = {
    {EG_OP_SYNC, 0, ls_sync, NULL},
    {EG_OP_ERASE_FLASH, 0, ls_erase_flash, NULL},
    {EG_OP_ERASE_REGION, 0, ls_erase_region_cmd, NULL},
    {EG_OP_CHANGE_BAUDRATE, 0, ls_len8, ls_baud_post},
    {EG_OP_READ_FLASH, 0, ls_len16, ls_read_flash_post},
    {EG_OP_SPI_FLASH_MD5, 16, ls_md5, NULL},
    {EG_OP_FLASH_BEGIN, 0, ls_flash_begin, NULL},
    {EG_OP_FLASH_DEFL_BEGIN, 0, ls_flash_begin, NULL},
    {EG_OP_FLASH_DATA, 0, ls_flash_data_cmd, ls_flash_data_post},
    {EG_OP_FLASH_DEFL_DATA, 0, ls_flash_data_cmd, ls_flash_data_post},
    {EG_OP_FLASH_END, 0, ls_flash_end, ls_flash_end_post},
    {EG_OP_FLASH_DEFL_END, 0, ls_flash_end, ls_flash_end_post},
    {EG_OP_SPI_SET_PARAMS, 0, ls_spi_set_params, NULL},
    {EG_OP_SPI_ATTACH, 0, ls_spi_attach, NULL},
    {EG_OP_WRITE_REG, 0, ls_write_reg, NULL},
    {EG_OP_READ_REG, 0, ls_read_reg, NULL},
    {EG_OP_MEM_BEGIN, 0, ls_mem_begin, NULL},
    {EG_OP_MEM_DATA, 0, ls_mem_data, NULL},
    {EG_OP_MEM_END, 0, ls_mem_end, ls_mem_end_post},
    {EG_OP_RUN_USER_CODE, 0, ls_run_user_code, NULL},
    {EG_OP_GET_SECURITY_INFO, LS_SEC_INFO, ls_get_security_info, NULL},
};

static void ls_frame(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n) {
  if (n < 8) {
    esim_log(d, *t, "stub: frame of %zu bytes ignored", n);
    return;
  }
  stub_req r;
  memset(&r, 0, sizeof r);
  r.op = f[1];
  r.size = eg_get_u16(f + 2);
  r.checksum = eg_get_u32(f + 4);
  /* LS trusts the header's length; bytes the frame lacks are whatever the
   * buffer held (zeros here). */
  uint8_t data[ESIM_LS_BUF];
  const size_t avail = n - 8 < sizeof data ? n - 8 : sizeof data;
  memset(data, 0, r.size < sizeof data ? r.size : sizeof data);
  memcpy(data, f + 8, avail < r.size ? avail : r.size);
  r.data = data;
  for (unsigned i = 0; i < 5; i++) r.w[i] = word(data, r.size, i);
  d->st.commands++;
  esim_log_cmd(d, *t, r.op, r.size);
  *t += d->o.timing.stub_cmd_us;
  const uint64_t t_hdr = *t;
  const ls_cmd *c = NULL;
  for (size_t i = 0; i < sizeof ls_cmds / sizeof ls_cmds[0]; i++)
    if (ls_cmds[i].op == r.op) c = &ls_cmds[i];
  const uint32_t value = r.op == EG_OP_READ_REG && r.size == 4 ? esim_reg_read(d, r.w[0]) : 0;
  size_t rdata = c ? c->reply_data : 0;
  if (rdata == LS_SEC_INFO) rdata = d->chip->sec_info_len;
  const uint16_t len_ret = (uint16_t)(2 + rdata);
  if (r.size > ESIM_LS_MAX_DATA) {
    ls_reply(d, t_hdr, *t, r.op, len_ret, value, NULL, 0, S_BAD_DATA_LEN, 0xEE);
    return;
  }
  ls_ans a;
  memset(&a, 0, sizeof a);
  const int err = c ? c->run(d, t, t_hdr, &r, &a) : S_NOT_IMPLEMENTED;
  if (err == LS_NO_REPLY) return;
  ls_reply(d, t_hdr, *t, r.op, len_ret, value, a.data, a.dlen, (uint8_t)err, a.status);
  if (err == S_OK && c->post) c->post(d, t, &r);
}

/* ------------------------------------------------------------------ NS */

static void ns_reply(esim_dev *d, uint64_t t, uint8_t op, uint8_t code, uint32_t value, const uint8_t *data,
                     size_t dlen) {
  uint8_t buf[8 + 20 + 2];
  if (code != S_OK) { /* errors carry no data and value 0 */
    dlen = 0;
    value = 0;
  }
  buf[0] = 0x01;
  buf[1] = op;
  eg_put_u16(buf + 2, (uint16_t)(dlen + 2));
  eg_put_u32(buf + 4, value);
  if (dlen) memcpy(buf + 8, data, dlen);
  buf[8 + dlen] = code; /* response code, big-endian u16: 0xC100 -> C1 00 */
  buf[9 + dlen] = 0;
  esim_tx_frame(d, t, buf, 10 + dlen);
  esim_log(d, t, "reply %s value=0x%08x status=%02x 00", eg_op_name(op), (unsigned)value, code);
}

/* s_conditional_erase_next: until the first non-blank sector, read each
 * sector and skip its erase when blank; then erase without reading, 64 KB
 * when aligned and at least 64 KB remain, else 4 KB. Never waits for the
 * chip (stub_lib_flash_start_next_erase with timeout 0). */
static uint8_t ns_erase_next(esim_dev *d, uint64_t *t) {
  esim_write *w = &d->w;
  if (w->erase_remaining == 0) return S_OK;
  if (!w->dirty_seen) {
    uint8_t buf[ESIM_SECTOR];
    esim_fl_read(d, t, w->next_erase, buf, ESIM_SECTOR);
    bool blank = true;
    for (size_t i = 0; i < sizeof buf; i++)
      if (buf[i] != 0xFF) {
        blank = false;
        break;
      }
    if (blank) {
      const uint32_t step = w->erase_remaining < ESIM_SECTOR ? w->erase_remaining : ESIM_SECTOR;
      w->next_erase += ESIM_SECTOR;
      w->erase_remaining -= step;
      return S_OK;
    }
    w->dirty_seen = true;
  }
  const bool block = w->next_erase % ESIM_BLOCK == 0 && w->erase_remaining >= ESIM_BLOCK;
  if (!esim_fl_erase_if_ready(d, t, block ? ESIM_ERASE_BLOCK : ESIM_ERASE_SECTOR, w->next_erase)) return S_OK;
  const uint32_t step = block ? ESIM_BLOCK : ESIM_SECTOR;
  w->next_erase += step;
  w->erase_remaining = w->erase_remaining > step ? w->erase_remaining - step : 0;
  return S_OK;
}

static uint8_t ns_write(esim_dev *d, uint64_t *t, const uint8_t *p, uint32_t size) {
  esim_write *w = &d->w;
  while (w->next_erase < w->next_write + size && w->erase_remaining > 0) {
    if (*t < d->flash_busy) *t = d->flash_busy;
    ns_erase_next(d, t);
  }
  bool ok = (uint64_t)w->next_write + size <= d->stub_chip_size;
  if (ok) ok = esim_fl_program(d, t, w->next_write, p, size);
  if (!ok) return S_FAILED_SPI_OP;
  w->remaining -= size; /* uint32: more data than declared wraps, and END says BAD_DATA_LEN */
  w->next_write += size;
  return S_OK;
}

static uint8_t ns_defl_post(esim_dev *d, uint64_t *t, const uint8_t *data, size_t size) {
  esim_write *w = &d->w;
  const uint32_t data_size = word(data, size, 0), seq = word(data, size, 1);
  const uint8_t *in = data + 16;
  if (seq == 0) w->out_len = 0;
  uint32_t left = data_size;
  if (left > size - 16) left = (uint32_t)(size - 16);
  bool done = false;
  while (!done && left > 0) {
    uint8_t e = ns_erase_next(d, t);
    if (e) return e;
    w->zs.next_in = (Bytef *)(uintptr_t)in;
    w->zs.avail_in = left;
    w->zs.next_out = w->out + w->out_len;
    w->zs.avail_out = 32768 - w->out_len;
    const int r = w->z_ready ? inflate(&w->zs, Z_NO_FLUSH) : Z_STREAM_ERROR;
    const uint32_t consumed = left - w->zs.avail_in, produced = 32768 - w->out_len - w->zs.avail_out;
    left -= consumed;
    in += consumed;
    w->remaining_compressed -= consumed;
    w->out_len += produced;
    *t += ((uint64_t)produced * d->o.timing.inflate_ns_per_byte + 500) / 1000;
    if (r == Z_STREAM_END) done = true;
    else if (r != Z_OK && r != Z_BUF_ERROR) return S_INFLATE_ERROR;
    if (done || w->out_len == 32768) {
      e = ns_write(d, t, w->out, w->out_len);
      if (e) return e;
      w->out_len = 0;
    }
    if (!done && consumed == 0 && produced == 0) break;
  }
  return S_OK;
}

/* What an NS handler answers besides its response code. */
typedef struct ns_ans {
  uint32_t value;
  uint8_t data[20];
  size_t dlen;
} ns_ans;

#define NS_NO_REPLY 0x100

/* Run the command (before the reply); returns the response code or
 * NS_NO_REPLY. */
typedef int (*ns_run_fn)(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a);
/* The post-process after a successful reply; its error answers the next
 * command. */
typedef uint8_t (*ns_post_fn)(esim_dev *d, uint64_t *t, const stub_req *r);

static int ns_sync(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)a;
  if (r->size != 36) return S_BAD_DATA_LEN;
  for (int i = 0; i < 7; i++) ns_reply(d, *t, r->op, S_OK, 0, NULL, 0);
  return S_OK;
}

static int ns_flash_begin(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)a;
  esim_write *w = &d->w;
  if (r->size != 16 && r->size != 20) return S_BAD_DATA_LEN;
  stub_begin_session(d, r);
  /* erase plan in bytes, blank sectors skipped (s_conditional_erase_next) */
  const uint32_t start = r->w[3] & ~(ESIM_SECTOR - 1);
  const uint64_t end = ((uint64_t)r->w[3] + r->w[0] + ESIM_SECTOR - 1) & ~(uint64_t)(ESIM_SECTOR - 1);
  w->erase_remaining = (uint32_t)(end - start);
  w->next_erase = start;
  w->dirty_seen = false;
  return ns_erase_next(d, t);
}

static int ns_flash_data(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size < 16) return S_NOT_ENOUGH_DATA;
  if (!d->w.active) return S_NOT_IN_FLASH_MODE;
  if (r->w[0] != (uint32_t)r->size - 16) return S_TOO_MUCH_DATA;
  if (eg_checksum(r->data + 16, r->size - 16) != r->checksum) return S_BAD_DATA_CHECKSUM;
  return S_OK;
}

static int ns_defl_data(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size < 16) return S_BAD_DATA_LEN;
  if (!d->w.active) return S_NOT_IN_FLASH_MODE;
  if (r->w[0] > (uint32_t)r->size - 16 || eg_checksum(r->data + 16, r->w[0]) != r->checksum)
    return S_BAD_DATA_CHECKSUM;
  return S_OK;
}

static int ns_flash_end(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size != 4) return S_BAD_DATA_LEN;
  if (!d->w.active) return S_NOT_IN_FLASH_MODE;
  if (d->w.remaining != 0) return S_BAD_DATA_LEN;
  esim_write_reset(d); /* reboot flag: "TODO: Implement reboot" in NS */
  return S_OK;
}

static int ns_mem_begin(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size != 16) return S_BAD_DATA_LEN;
  d->mem_active = true;
  d->mem_remaining = r->w[0];
  d->mem_addr = r->w[3];
  if (esim_chip_addr_is_new(d->chip, r->w[3])) d->mem_seen_ns = true;
  if (esim_chip_addr_is_legacy(d->chip, r->w[3])) d->mem_seen_ls = true;
  return S_OK;
}

static int ns_mem_data(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size < 16) return S_NOT_ENOUGH_DATA;
  if (!d->mem_active) return S_NOT_IN_FLASH_MODE;
  if (d->mem_remaining < r->w[0]) return S_TOO_MUCH_DATA;
  if (r->w[0] != (uint32_t)r->size - 16) return S_TOO_MUCH_DATA;
  d->mem_remaining -= r->w[0];
  d->mem_addr += r->w[0];
  return S_OK;
}

static int ns_mem_end(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size != 8) return S_BAD_DATA_LEN;
  if (!d->mem_active) return S_NOT_IN_FLASH_MODE;
  d->mem_active = false;
  return S_OK;
}

static int ns_write_reg(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)a;
  if (r->size == 0 || r->size % 16) return S_NOT_ENOUGH_DATA;
  write_regs(d, t, r->data, r->size);
  return S_OK;
}

static int ns_read_reg(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t;
  if (r->size != 4) return S_BAD_DATA_LEN;
  a->value = esim_reg_read(d, r->w[0]);
  return S_OK;
}

static int ns_spi_attach(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)d, (void)t, (void)a;
  return r->size != 4 ? S_BAD_DATA_LEN : S_OK;
}

static int ns_spi_set_params(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t, (void)a;
  if (r->size != 24) return S_BAD_DATA_LEN;
  d->stub_chip_size = r->w[1];
  return S_OK;
}

/* CHANGE_BAUDRATE and READ_FLASH: length checked here, work in the post. */
static int ns_len8(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)d, (void)t, (void)a;
  return r->size != 8 ? S_BAD_DATA_LEN : S_OK;
}

static int ns_len16(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)d, (void)t, (void)a;
  return r->size != 16 ? S_BAD_DATA_LEN : S_OK;
}

static int ns_md5(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  if (r->size != 16) return S_BAD_DATA_LEN;
  if ((uint64_t)r->w[0] + r->w[1] > d->stub_chip_size) return S_FAILED_SPI_OP;
  md5_range(d, t, r->w[0], r->w[1], a->data);
  a->dlen = 16;
  return S_OK;
}

/* NS asks the ROM (ets_efuse security info): the same payload as the ROM's
 * own reply (C3 stub-read-flash.trace, 20 bytes); where the ROM has none
 * (ESP32, ESP8266) STUB_LIB_ERR_NOT_SUPPORTED. */
static int ns_get_security_info(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)t;
  if (r->size != 0) return S_BAD_DATA_LEN;
  a->dlen = esim_security_info(d, a->data);
  return a->dlen ? S_OK : S_NOT_IMPLEMENTED;
}

static int ns_erase_flash(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)r, (void)a;
  esim_fl_erase(d, t, ESIM_ERASE_CHIP, 0, true);
  return S_OK;
}

static int ns_erase_region(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)a;
  if (r->size != 8 || r->w[0] % ESIM_SECTOR || r->w[1] % ESIM_SECTOR) return S_BAD_DATA_LEN;
  uint32_t addr = r->w[0], left = r->w[1];
  while (left > 0) {
    const bool block = addr % ESIM_BLOCK == 0 && left >= ESIM_BLOCK;
    esim_fl_erase(d, t, block ? ESIM_ERASE_BLOCK : ESIM_ERASE_SECTOR, addr, true);
    const uint32_t step = block ? ESIM_BLOCK : ESIM_SECTOR;
    addr += step;
    left -= step;
  }
  return S_OK;
}

static int ns_run_user_code(esim_dev *d, uint64_t *t, const stub_req *r, ns_ans *a) {
  (void)r, (void)a;
  esim_log(d, *t, "stub: RUN_USER_CODE: no-op in NS, no reply");
  return NS_NO_REPLY;
}

static uint8_t ns_flash_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  uint32_t k = (uint32_t)r->size - 16;
  if (k > d->w.remaining) k = d->w.remaining;
  return ns_write(d, t, r->data + 16, k);
}

static uint8_t ns_defl_post_cmd(esim_dev *d, uint64_t *t, const stub_req *r) {
  return ns_defl_post(d, t, r->data, r->size);
}

static uint8_t ns_baud_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  const uint32_t clkdiv = r->w[0] ? esim_clkdiv_for(d->uart_clk, r->w[0]) : 0;
  const uint32_t actual = r->w[0] ? esim_baud_from_clkdiv(d->uart_clk, clkdiv) : 0;
  esim_log(d, *t, "stub: CHANGE_BAUDRATE %u -> UART %u baud", (unsigned)r->w[0], (unsigned)actual);
  esim_tx_baud(d, *t, actual, clkdiv);
  return S_OK;
}

static uint8_t ns_read_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  if (r->w[2] > 4096) return S_BAD_DATA_LEN;
  rf_start(d, t, r->w[0], r->w[1], r->w[2], 1);
  return S_OK;
}

static uint8_t ns_mem_end_post(esim_dev *d, uint64_t *t, const stub_req *r) {
  if (r->w[0] == 0) stub_restart(d, t, r->w[1]);
  return S_OK;
}

/* NS handle_command: opcode, the command, its post-process. Anything
 * else: 0xD5..0xEF NOT_IMPLEMENTED, otherwise INVALID_COMMAND. */
typedef struct ns_cmd {
  uint8_t op;
  ns_run_fn run;
  ns_post_fn post;
} ns_cmd;

static const ns_cmd ns_cmds[] = {
    {EG_OP_SYNC, ns_sync, NULL},
    {EG_OP_FLASH_BEGIN, ns_flash_begin, NULL},
    {EG_OP_FLASH_DEFL_BEGIN, ns_flash_begin, NULL},
    {EG_OP_FLASH_DATA, ns_flash_data, ns_flash_post},
    {EG_OP_FLASH_DEFL_DATA, ns_defl_data, ns_defl_post_cmd},
    {EG_OP_FLASH_END, ns_flash_end, NULL},
    {EG_OP_FLASH_DEFL_END, ns_flash_end, NULL},
    {EG_OP_MEM_BEGIN, ns_mem_begin, NULL},
    {EG_OP_MEM_DATA, ns_mem_data, NULL},
    {EG_OP_MEM_END, ns_mem_end, ns_mem_end_post},
    {EG_OP_WRITE_REG, ns_write_reg, NULL},
    {EG_OP_READ_REG, ns_read_reg, NULL},
    {EG_OP_SPI_ATTACH, ns_spi_attach, NULL},
    {EG_OP_SPI_SET_PARAMS, ns_spi_set_params, NULL},
    {EG_OP_CHANGE_BAUDRATE, ns_len8, ns_baud_post},
    {EG_OP_SPI_FLASH_MD5, ns_md5, NULL},
    {EG_OP_GET_SECURITY_INFO, ns_get_security_info, NULL},
    {EG_OP_READ_FLASH, ns_len16, ns_read_post},
    {EG_OP_ERASE_FLASH, ns_erase_flash, NULL},
    {EG_OP_ERASE_REGION, ns_erase_region, NULL},
    {EG_OP_RUN_USER_CODE, ns_run_user_code, NULL},
};

static void ns_frame(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n) {
  if (n < 2) return;
  stub_req r;
  memset(&r, 0, sizeof r);
  r.op = f[1];
  *t += d->o.timing.stub_cmd_us;
  d->st.commands++;
  if (n < 8) {
    ns_reply(d, *t, r.op, S_BAD_DATA_LEN, 0, NULL, 0);
    return;
  }
  r.size = eg_get_u16(f + 2);
  r.checksum = eg_get_u32(f + 4);
  r.data = f + 8;
  esim_log_cmd(d, *t, r.op, r.size);
  if (f[0] != 0x00) {
    ns_reply(d, *t, r.op, S_INVALID_COMMAND, 0, NULL, 0);
    return;
  }
  if (n != (size_t)r.size + 8) {
    ns_reply(d, *t, r.op, S_BAD_DATA_LEN, 0, NULL, 0);
    return;
  }
  if (d->ns_accum != S_OK) {
    /* The previous command's post-process failed: that error answers this
     * command, which is not run. */
    ns_reply(d, *t, r.op, d->ns_accum, 0, NULL, 0);
    d->ns_accum = S_OK;
    return;
  }
  for (unsigned i = 0; i < 5; i++) r.w[i] = word(r.data, r.size, i);
  const ns_cmd *c = NULL;
  for (size_t i = 0; i < sizeof ns_cmds / sizeof ns_cmds[0]; i++)
    if (ns_cmds[i].op == r.op) c = &ns_cmds[i];
  ns_ans a;
  memset(&a, 0, sizeof a);
  int code;
  if (c) code = c->run(d, t, &r, &a);
  else code = r.op >= 0xD5 && r.op <= 0xEF ? S_NOT_IMPLEMENTED : S_INVALID_COMMAND;
  if (code == NS_NO_REPLY) return;
  ns_reply(d, *t, r.op, (uint8_t)code, a.value, a.data, a.dlen);
  if (code != S_OK || !c->post) return;
  const uint8_t e = c->post(d, t, &r);
  if (e != S_OK) {
    esim_log(d, *t, "stub: post-process error 0x%02x, reported on the next command", e);
    d->ns_accum = e;
  }
}

void esim_stub_frame(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n) {
  if (d->flavour == ESIM_STUB_NEW) ns_frame(d, t, f, n);
  else ls_frame(d, t, f, n);
}
