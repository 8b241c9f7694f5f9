/* dev_flash.c - the flash operations of an attached unit (erase, write,
 * verify, read) and the --after action. Facts: ../shared/docs/
 * esp-serial-protocol.md §6 (writing), §7 (reading), §9 (after), and
 * timing-facts.md §2 (how the ROM and the stubs erase and write).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_int.h"
#include "reset.h"

#define READ_SLOW_LEN 64 /* READ_FLASH_SLOW always answers 64 bytes */

static void next_op(eg_dev *d);
static void after(eg_dev *d);
static void write_begin(eg_dev *d);
static void image_action(eg_dev *d, eg_image_action a);

/* The chip's plan: a mixed rack gives each chip its own images. */
static bool pick_plan(eg_dev *d) {
  if (!d->cfg->plans) {
    d->images = d->cfg->images;
    return true;
  }
  const eg_dev_plan *p = d->cfg->plans[d->chip->id];
  if (!p) {
    eg__dev_fail(d, EG_WRONG_CHIP, -1, "port %s: found %s, and this job has no images for it", d->port_name,
                 d->chip->name);
    return false;
  }
  d->images = p->images;
  d->image_base = p->image_base;
  d->ops = p->ops;
  d->nops = p->nops;
  if (d->nops > d->nread_bufs) {
    uint8_t **nb = realloc(d->read_bufs, d->nops * sizeof *nb);
    if (!nb) {
      eg__dev_fail(d, EG_NOMEM, -1, "out of memory");
      return false;
    }
    for (size_t i = d->nread_bufs; i < d->nops; i++) nb[i] = NULL;
    d->read_bufs = nb;
    d->nread_bufs = d->nops;
  }
  return true;
}

/* What must not be written to this unit, known before the first byte is:
 * an image built for another chip or revision (esptool's write-flash
 * check), plaintext on a chip whose flash encryption is on, the bootloader
 * region of an ESP32 with Secure Boot V1, and operations the ROM refuses in
 * Secure Download Mode. */
static bool refuse(eg_dev *d) {
  const eg_chip *c = d->chip;
  const eg_unit_record *u = &d->rec;
  bool writes = false;
  for (size_t i = 0; i < d->nops; i++) {
    const eg_dev_op *op = &d->ops[i];
    if (d->sdm && (op->kind == EG_OPK_READ || op->kind == EG_OPK_VERIFY)) {
      eg__dev_fail(d, EG_SECURITY, -1, "port %s: the %s is in Secure Download Mode: its ROM refuses to %s flash",
                   d->port_name, c->name, op->kind == EG_OPK_READ ? "read" : "hash (verify)");
      return true;
    }
    if (op->kind != EG_OPK_WRITE) continue;
    writes = true;
    const eg_image *src = eg_imageset_source(d->images, op->index);
    char why[200];
    /* Only files that look like an app or bootloader image are checked (esptool
     * skips what does not load as one): magic 0xE9 and 1..16 segments. */
    const bool looks_like_image = src->len >= 24 && src->data[0] == 0xE9 && src->data[1] >= 1 && src->data[1] <= 16;
    if (!d->cfg->force && !d->sdm && looks_like_image &&
        eg_chip_check_image(c, src->data, src->len, u->rev_major, u->rev_minor, why, sizeof why) >= EG_IMAGE_WRONG_CHIP) {
      eg__dev_fail(d, EG_IMAGE_CHIP, -1, "%s at 0x%x: %s", src->path ? src->path : "image", src->offset, why);
      return true;
    }
    /* Secure Boot V1 keeps the key in the chip: a new bootloader below
     * 0x8000 bricks it (esptool cmds.py write_flash). */
    if (!d->cfg->force && c->id == EG_CHIP_ESP32 && u->secure_boot == EG_TRI_YES && src->offset < 0x8000) {
      eg__dev_fail(d, EG_SECURITY, -1, "port %s: Secure Boot V1 is on: writing %s at 0x%x (below 0x8000) would "
                   "brick the chip", d->port_name, src->path ? src->path : "an image", src->offset);
      return true;
    }
  }
  if (writes && u->flash_encryption == EG_TRI_YES && !d->cfg->allow_plaintext_on_encrypted) {
    eg__dev_fail(d, EG_SECURITY, -1, "port %s: flash encryption is on (FLASH_CRYPT_CNT 0x%x): refusing to write "
                 "plaintext images the chip would not boot (set security: {plaintext_on_encrypted: allow} to override)",
                 d->port_name, u->flash_crypt_cnt);
    return true;
  }
  return false;
}

void eg__dev_ops_failed(eg_dev *d) {
  if (!d->ops || d->op_i >= d->nops) return;
  const eg_stage st = d->stage;
  if (st == EG_STAGE_WRITE || st == EG_STAGE_VERIFY) image_action(d, EG_IMAGE_FAILED);
}

void eg__dev_ops_check(eg_dev *d) {
  if (!pick_plan(d) || refuse(d)) return;
  if (d->cb.on_gate) {
    eg__dev_enter(d, EG_DS_GATE);
    d->cb.on_gate(d);
    return;
  }
  eg__dev_ops_start(d);
}

void eg__dev_ops_start(eg_dev *d) {
  d->ops_started = true;
  d->op_i = 0;
  next_op(d);
}

void eg__dev_ops_resume(eg_dev *d) { next_op(d); }

static void op_done(eg_dev *d) {
  d->op_i++;
  next_op(d);
}

/* What happened to the current op's image, for the log's unit_images. */
static void image_action(eg_dev *d, eg_image_action a) {
  const eg_dev_op *op = &d->ops[d->op_i];
  if (op->kind != EG_OPK_WRITE && op->kind != EG_OPK_VERIFY) return;
  const eg_image *src = eg_imageset_source(d->images, op->index);
  eg_unit_image(&d->rec, (unsigned)(d->image_base + op->index), src ? src->offset : 0, a,
                (uint32_t)(uv_now(d->loop) - d->op_t0));
}

/* ---------------------------------------------------------------- erase */

static void start_erase(eg_dev *d, const eg_dev_op *op) {
  const eg_timeouts *t = &d->cfg->timeouts;
  const bool all = op->kind == EG_OPK_ERASE_ALL;
  const uint32_t addr = all ? 0 : op->addr, size = all ? d->flash_size : op->size;
  eg__dev_enter(d, EG_DS_ERASE);
  if (!all && ((addr | size) & (EG_SECTOR_SIZE - 1))) {
    eg__dev_fail(d, EG_INVAL, EG_OP_ERASE_REGION, "erase region 0x%x+0x%x is not 4 KiB aligned", addr, size);
    return;
  }
  if ((uint64_t)addr + size > d->flash_size) {
    eg__dev_fail(d, EG_FLASH_TOO_SMALL, EG_OP_ERASE_REGION, "erase region 0x%x+0x%x is beyond the %u-byte flash", addr,
                 size, d->flash_size);
    return;
  }
  size_t len;
  uint32_t timeout;
  if (d->stub_running && all) {
    len = eg_req_simple(d->pkt, EG_OP_ERASE_FLASH);
    timeout = t->chip_erase_ms;
  } else if (d->stub_running) {
    len = eg_req_erase_region(d->pkt, addr, size);
    timeout = eg_timeout_per_mb(t, t->erase_per_mb_ms, size, t->command_ms);
  } else {
    /* The ROM has no erase command, but FLASH_BEGIN erases the region it is
     * given before replying (the ESP8266 ROM needs its erase-size fix). */
    const uint32_t block = eg_chip_write_block(d->chip, false, d->usb);
    len = eg_req_begin(d->pkt, EG_OP_FLASH_BEGIN, eg_chip_rom_erase_size(d->chip, addr, size), eg_blocks(size, block),
                       block, addr, d->chip->rom_begin_encrypt_word, 0);
    timeout = eg_timeout_per_mb(t, t->erase_per_mb_ms, size, t->command_ms);
  }
  eg__dev_request(d, EG_DS_ERASE, len, 0, timeout);
}

void eg__dev_erase_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "erase");
    return;
  }
  op_done(d);
}

/* --------------------------------------------------------------- verify */

static void verify_image(eg_dev *d, const eg_wimage *w, eg_dev_state s) {
  d->wimg = w;
  const eg_timeouts *t = &d->cfg->timeouts;
  eg__dev_request(d, s, eg_req_flash_md5(d->pkt, w->img.offset, (uint32_t)w->img.len),
                  d->stub_running ? 16 : 32, eg_timeout_per_mb(t, t->md5_per_mb_ms, w->img.len, t->command_ms));
}

void eg__dev_md5_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "SPI_FLASH_MD5");
    return;
  }
  /* The ROM answers 32 hex characters, a stub 16 raw bytes (§2). */
  uint8_t got[16];
  if (d->stub_running) {
    memcpy(got, r->data, 16);
  } else if (!eg_unhex(got, 16, (const char *)r->data)) {
    eg__dev_fail(d, EG_PROTO_GARBAGE, EG_OP_SPI_FLASH_MD5, "MD5 reply is not 32 hex digits");
    return;
  }
  const eg_image *img = &d->wimg->img;
  if (d->state == EG_DS_SKIP_CHECK) {
    /* --skip-flashed: the region already holds the image (esptool v5). */
    if (memcmp(got, img->md5, 16) == 0) {
      eg__dev_log(d, "0x%x+0x%zx already holds the image: not written", img->offset, img->len);
      image_action(d, EG_IMAGE_SKIPPED);
      op_done(d);
      return;
    }
    write_begin(d);
    return;
  }
  if (memcmp(got, img->md5, 16) != 0) {
    char a[33], b[33];
    eg_hex(a, got, 16);
    eg_hex(b, img->md5, 16);
    /* Say whether the region is merely erased: a write that never landed. */
    uint8_t *ff = malloc(img->len);
    bool empty = false;
    if (ff) {
      uint8_t m[16];
      memset(ff, 0xFF, img->len);
      eg_md5(ff, img->len, m);
      empty = memcmp(m, got, 16) == 0;
      free(ff);
    }
    eg__dev_fail(d, EG_MD5_MISMATCH, EG_OP_SPI_FLASH_MD5, "flash MD5 %s differs from image MD5 %s at 0x%x (%zu bytes)%s",
                 a, b, img->offset, img->len, empty ? ": the region is empty (erased, never written)" : "");
    return;
  }
  eg__dev_log(d, "verified 0x%x+0x%zx", img->offset, img->len);
  image_action(d, EG_IMAGE_VERIFIED);
  op_done(d);
}

/* ---------------------------------------------------------------- write */

static uint32_t block_timeout(eg_dev *d, uint32_t i) {
  const eg_timeouts *t = &d->cfg->timeouts;
  return eg_timeout_per_mb(t, t->write_per_mb_ms, eg_wimage_block_out(d->wimg, d->blk_size, i), t->command_ms);
}

/* Compressed writes need FLASH_DEFL_*: every stub, every ROM but the
 * ESP8266's. Without them the raw bytes go (esptool: compress = IS_STUB
 * unless asked, and the ESP8266 ROM cannot inflate). */
static bool deflate(const eg_dev *d) {
  /* Secure Download Mode takes FLASH_BEGIN/DATA only (serial-protocol.rst). */
  return d->wimg->compressed && (d->stub_running || (d->chip->rom_deflate && !d->sdm));
}
static size_t wire_len(const eg_dev *d) { return deflate(d) ? d->wimg->img.zlen : d->wimg->img.len; }
static const uint8_t *wire(const eg_dev *d) { return deflate(d) ? d->wimg->img.zdata : d->wimg->img.data; }

static void send_block(eg_dev *d) {
  const bool defl = deflate(d);
  const uint8_t op = defl ? EG_OP_FLASH_DEFL_DATA : EG_OP_FLASH_DATA;
  const size_t n = eg_block_len(wire_len(d), d->blk_size, d->blk);
  const size_t len = eg_req_data(d->pkt, op, d->blk, wire(d) + (size_t)d->blk * d->blk_size, n, defl ? 0 : d->blk_size);
  /* The ROM writes a block before answering, so its timeout scales with that
   * block; a stub answers first and writes while the next block arrives, so
   * the previous block's write time lands on this reply. */
  uint32_t timeout = d->cfg->timeouts.command_ms;
  if (!d->stub_running)
    timeout = block_timeout(d, d->blk);
  else if (d->blk > 0)
    timeout = block_timeout(d, d->blk - 1);
  eg__dev_request(d, EG_DS_WRITE_DATA, len, 0, timeout);
}

/* Can this unit hash its flash? Not in Secure Download Mode, not from the
 * ESP8266 ROM (esptool then skips the check: NotImplementedInROMError). */
static bool can_md5(const eg_dev *d) { return !d->sdm && (d->stub_running || d->chip->rom_md5); }

static void written(eg_dev *d) {
  if (d->cfg->verify && can_md5(d)) {
    verify_image(d, d->wimg, EG_DS_VERIFY);
    return;
  }
  if (d->cfg->verify) eg__dev_log(d, "0x%x written; cannot verify it here (%s)", d->wimg->img.offset,
                                  d->sdm ? "Secure Download Mode" : "no MD5 in this ROM");
  image_action(d, EG_IMAGE_WRITTEN);
  op_done(d);
}

static void blocks_sent(eg_dev *d) {
  if (d->stub_running) {
    /* The stub acknowledged the last block before writing it: FLASH_DEFL_END
     * (stay) answers only once everything is on the flash. */
    const uint8_t op = deflate(d) ? EG_OP_FLASH_DEFL_END : EG_OP_FLASH_END;
    eg__dev_request(d, EG_DS_WRITE_END, eg_req_end(d->pkt, op, 1), 0, block_timeout(d, d->nblk ? d->nblk - 1 : 0));
    return;
  }
  written(d); /* never FLASH_END to the ROM: it would leave the loader */
}

void eg__dev_write_end_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "finishing the write");
    return;
  }
  written(d);
}

void eg__dev_write_data_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "write block refused");
    return;
  }
  d->blk++;
  const uint64_t total = wire_len(d), sent = (uint64_t)d->blk * d->blk_size;
  eg__dev_progress(d, sent > total ? total : sent, total);
  if (d->blk < d->nblk)
    send_block(d);
  else
    blocks_sent(d);
}

void eg__dev_write_timeout(eg_dev *d) {
  if (++d->cmd_tries < EG_DEV_CMD_ATTEMPTS) {
    eg__dev_resend(d, "no reply");
    return;
  }
  eg__dev_fail(d, EG_TIMEOUT, d->expect_op, "port %s: no reply to %s block %u of %u after %d attempts (%u ms each)",
               d->port_name, eg_op_name(d->expect_op), d->blk, d->nblk, EG_DEV_CMD_ATTEMPTS, d->reply_timeout_ms);
}

void eg__dev_write_begin_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "write begin refused");
    return;
  }
  d->blk = 0;
  eg__dev_progress(d, 0, wire_len(d));
  if (d->nblk == 0)
    blocks_sent(d);
  else
    send_block(d);
}

/* The variant of image `index` this unit needs (its flash size, ROM or
 * stub); NULL after failing the unit. */
static const eg_wimage *image_for(eg_dev *d, size_t index) {
  eg_fault f;
  eg_fault_clear(&f);
  const eg_wimage *w = eg_imageset_get(d->images, index, d->rec.flash_size, !d->stub_running, &f);
  if (!w) eg__dev_fail(d, f.code, -1, "%s", f.msg);
  return w;
}

static void start_write(eg_dev *d, const eg_dev_op *op) {
  eg__dev_enter(d, EG_DS_WRITE_BEGIN);
  const eg_wimage *w = image_for(d, op->index);
  if (!w) return;
  if ((uint64_t)w->img.offset + w->img.len > d->flash_size) {
    eg__dev_fail(d, EG_FLASH_TOO_SMALL, -1, "image %s (0x%x+0x%zx) does not fit in the %u-byte flash",
                 w->img.path ? w->img.path : "", w->img.offset, w->img.len, d->flash_size);
    return;
  }
  d->wimg = w;
  /* --skip-flashed: hash the region first where the loader can (esptool
   * turns it off with erase-all, on the ESP8266 ROM and in SDM). */
  if (d->cfg->skip_flashed && can_md5(d) && d->cfg->erase != EG_ERASE_ALL) {
    verify_image(d, w, EG_DS_SKIP_CHECK);
    return;
  }
  write_begin(d);
}

static void write_begin(eg_dev *d) {
  const eg_wimage *w = d->wimg;
  eg__dev_enter(d, EG_DS_WRITE_BEGIN);
  const bool stub = d->stub_running, defl = deflate(d);
  d->blk_size = eg_chip_write_block(d->chip, stub, d->usb);
  d->nblk = eg_blocks(wire_len(d), d->blk_size);
  const eg_timeouts *t = &d->cfg->timeouts;
  /* Stubs take the exact size and erase just in time; the ROM erases the
   * whole (1 KiB rounded, for compressed writes) region before replying. */
  const uint32_t size = (uint32_t)w->img.len;
  uint32_t rom_size =
    defl ? (uint32_t)((size + EG_ROM_WRITE_BLOCK - 1) / EG_ROM_WRITE_BLOCK * EG_ROM_WRITE_BLOCK) : size;
  if (!stub) rom_size = eg_chip_rom_erase_size(d->chip, w->img.offset, rom_size); /* ESP8266 ROM erase bug */
  const uint32_t timeout = stub ? t->command_ms : eg_timeout_per_mb(t, t->erase_per_mb_ms, rom_size, t->command_ms);
  const bool word5 = stub || d->chip->rom_begin_encrypt_word;
  const size_t len = eg_req_begin(d->pkt, defl ? EG_OP_FLASH_DEFL_BEGIN : EG_OP_FLASH_BEGIN, stub ? size : rom_size,
                                  d->nblk, d->blk_size, w->img.offset, word5, 0);
  eg__dev_log(d, "write %s 0x%x: %zu bytes, %zu on the wire, %u blocks", defl ? "compressed" : "raw", w->img.offset,
              w->img.len, wire_len(d), d->nblk);
  eg__dev_request(d, EG_DS_WRITE_BEGIN, len, 0, timeout);
}

static void start_verify(eg_dev *d, const eg_dev_op *op) {
  eg__dev_enter(d, EG_DS_VERIFY);
  const eg_wimage *w = image_for(d, op->index);
  if (w) verify_image(d, w, EG_DS_VERIFY);
}

/* ----------------------------------------------------------------- read */

/* READ_FLASH (stub): data packets, each acknowledged with the running count,
 * then a 16-byte MD5 frame. The ROM reads 64 bytes per READ_FLASH_SLOW. */
static uint8_t *read_buf(eg_dev *d) { return d->read_bufs[d->op_i]; }

static void read_slow_next(eg_dev *d) {
  const eg_dev_op *op = &d->ops[d->op_i];
  eg__dev_request(d, EG_DS_READ_SLOW, eg_req_read_flash_slow(d->pkt, op->addr + d->read_got, READ_SLOW_LEN),
                  READ_SLOW_LEN, d->cfg->timeouts.command_ms);
}

static void start_read(eg_dev *d, const eg_dev_op *op) {
  eg__dev_enter(d, EG_DS_READ_BEGIN);
  d->read_got = 0;
  d->read_size = op->size ? op->size : d->flash_size;
  if ((uint64_t)op->addr + d->read_size > d->flash_size) {
    eg__dev_fail(d, EG_FLASH_TOO_SMALL, EG_OP_READ_FLASH, "read 0x%x+0x%x is beyond the %u-byte flash", op->addr,
                 d->read_size, d->flash_size);
    return;
  }
  free(d->read_bufs[d->op_i]);
  if (!(d->read_bufs[d->op_i] = malloc(d->read_size ? d->read_size : 1))) {
    eg__dev_fail(d, EG_NOMEM, -1, "out of memory for a %u-byte read", d->read_size);
    return;
  }
  eg__dev_progress(d, 0, d->read_size);
  if (!d->stub_running) {
    read_slow_next(d);
    return;
  }
  if (!d->md5ctx) d->md5ctx = EVP_MD_CTX_new();
  if (!d->md5ctx || !EVP_DigestInit_ex(d->md5ctx, EVP_md5(), NULL)) {
    eg__dev_fail(d, EG_NOMEM, -1, "cannot start MD5");
    return;
  }
  eg__dev_request(d, EG_DS_READ_BEGIN, eg_req_read_flash(d->pkt, op->addr, d->read_size, EG_READ_PACKET, 64), 0,
                  d->cfg->timeouts.command_ms);
}

static uint32_t packet_timeout(const eg_dev *d) {
  return d->cfg->timeouts.read_packet_ms + eg__dev_wire_ms(d, 2 * EG_READ_PACKET);
}

void eg__dev_read_begin_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "READ_FLASH refused");
    return;
  }
  d->state = EG_DS_READ_DATA;
  eg__dev_arm(d, packet_timeout(d));
}

void eg__dev_read_frame(eg_dev *d, const uint8_t *p, size_t len) {
  if (d->read_got >= d->read_size) { /* the MD5 frame */
    if (len != 16) {
      eg__dev_fail(d, EG_PROTO_GARBAGE, EG_OP_READ_FLASH, "expected the 16-byte MD5 after the data, got %zu bytes", len);
      return;
    }
    uint8_t md5[16];
    unsigned int mlen = 0;
    EVP_DigestFinal_ex(d->md5ctx, md5, &mlen);
    memcpy(d->read_md5, p, 16);
    if (memcmp(md5, p, 16) != 0) {
      char a[33], b[33];
      eg__dev_fail(d, EG_MD5_MISMATCH, EG_OP_READ_FLASH, "read data MD5 %s, the stub computed %s", eg_hex(a, md5, 16),
                   eg_hex(b, p, 16));
      return;
    }
    uv_timer_stop(&d->timer);
    op_done(d);
    return;
  }
  if (len > d->read_size - d->read_got || (len < EG_READ_PACKET && d->read_got + len < d->read_size)) {
    eg__dev_fail(d, EG_PROTO_GARBAGE, EG_OP_READ_FLASH, "READ_FLASH packet of %zu bytes at offset %u of %u", len,
                 d->read_got, d->read_size);
    return;
  }
  memcpy(read_buf(d) + d->read_got, p, len);
  EVP_DigestUpdate(d->md5ctx, p, len);
  eg__dev_timing_close(d, len); /* the packet, timed from the previous ack */
  d->read_got += (uint32_t)len;
  uint8_t ack[4];
  eg_read_ack(ack, d->read_got);
  if (!eg__dev_send_frame(d, ack, sizeof ack, false)) return;
  eg__dev_timing_open(d, EG_OP_READ_FLASH, d->read_got / EG_READ_PACKET, sizeof ack, 0);
  eg__dev_progress(d, d->read_got, d->read_size);
  eg__dev_arm(d, packet_timeout(d));
}

void eg__dev_read_slow_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "READ_FLASH_SLOW refused");
    return;
  }
  const uint32_t n = d->read_size - d->read_got < READ_SLOW_LEN ? d->read_size - d->read_got : READ_SLOW_LEN;
  memcpy(read_buf(d) + d->read_got, r->data, n);
  d->read_got += n;
  eg__dev_progress(d, d->read_got, d->read_size);
  if (d->read_got < d->read_size) {
    read_slow_next(d);
    return;
  }
  eg_md5(read_buf(d), d->read_size, d->read_md5);
  op_done(d);
}

/* ------------------------------------------------------------------ ops */

static void next_op(eg_dev *d) {
  if (d->finished) return;
  if (d->op_i >= d->nops) {
    after(d);
    return;
  }
  const eg_dev_op *op = &d->ops[d->op_i];
  d->op_t0 = uv_now(d->loop);
  switch (op->kind) {
  case EG_OPK_ERASE_ALL:
  case EG_OPK_ERASE_REGION:
    start_erase(d, op);
    return;
  case EG_OPK_WRITE:
    start_write(d, op);
    return;
  case EG_OPK_VERIFY:
    start_verify(d, op);
    return;
  case EG_OPK_READ:
    start_read(d, op);
    return;
  }
  eg__dev_fail(d, EG_INVAL, -1, "unknown operation %d", (int)op->kind);
}

/* ---------------------------------------------------------------- after */

void eg__dev_after_reset_done(eg_dev *d) { eg__dev_finish(d, EG_OK); }

void eg__dev_after_end_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "leaving the loader");
    return;
  }
  eg__dev_finish(d, EG_OK);
}

void eg__dev_after_begin_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "leaving the loader");
    return;
  }
  /* FLASH_END(1): the ROM runs the user code; FLASH_END(0) to the legacy
   * stub: it reboots into the ROM loader. */
  const uint32_t flag = d->cfg->after == EG_AFTER_SOFT_RESET ? 1 : 0;
  eg__dev_request(d, EG_DS_AFTER_END, eg_req_end(d->pkt, EG_OP_FLASH_END, flag), 0, d->cfg->timeouts.command_ms);
}

/* Slots of the --after scripts. */
enum { SLOT_STRAP = 0, SLOT_OPTION1 };

/* The hard reset this chip needs on this port (esptool hard_reset): an RTS
 * pulse (longer over the chip's own USB), or the RTC watchdog, or for
 * USB-OTG the straps decide. */
static void hard_reset(eg_dev *d, eg_hard_reset how) {
  const eg_chip *c = d->chip;
  d->after_kind = (int)how;
  switch (how) {
  case EG_HARD_RESET_WATCHDOG:
    if (c->wdt_reset.n && !d->sdm) {
      eg__dev_script_run(d, EG_DS_AFTER_SCRIPT, eg__dev_script_add(d, 0, c->wdt_reset));
      return;
    }
    d->after_kind = EG_HARD_RESET_CLASSIC; /* no watchdog script, or refused in SDM: RTS */
    d->reset_seq = eg_hard_reset_plan();
    eg__dev_reset_run(d, EG_DS_AFTER_RESET);
    return;
  case EG_HARD_RESET_OTG_STRAPS: {
    /* Read the boot straps first; eg_chip_otg_reset() then decides. */
    size_t n = 0;
    d->script[n++] = (eg_regop){'R', SLOT_STRAP, c->otg_strap_reg, 0, 0, true};
    d->script[n++] = (eg_regop){'R', SLOT_OPTION1, c->otg_option1_reg, 0, 0, true};
    eg__dev_script_run(d, EG_DS_AFTER_SCRIPT, n);
    return;
  }
  case EG_HARD_RESET_USB:
    d->reset_seq = eg_usb_hard_reset_plan();
    eg__dev_reset_run(d, EG_DS_AFTER_RESET);
    return;
  case EG_HARD_RESET_CLASSIC:
    d->reset_seq = eg_hard_reset_plan();
    eg__dev_reset_run(d, EG_DS_AFTER_RESET);
    return;
  }
}

void eg__dev_after_script_done(eg_dev *d) {
  switch ((eg_hard_reset)d->after_kind) {
  case EG_HARD_RESET_OTG_STRAPS:
    hard_reset(d, eg_chip_otg_reset(d->chip, d->reg_slot[SLOT_STRAP], d->reg_slot[SLOT_OPTION1]));
    return;
  case EG_HARD_RESET_WATCHDOG:
    /* The watchdog fires within its 2000-tick timeout: give it 0.5 s as
     * esptool does (targets' watchdog_reset). */
    eg__dev_enter(d, EG_DS_AFTER_WAIT);
    eg__dev_arm(d, 500);
    return;
  case EG_HARD_RESET_USB:
  case EG_HARD_RESET_CLASSIC:
    /* The prefix script ran (S3: clear the force-download bit, errors
     * ignored); now the pulse itself. */
    hard_reset(d, (eg_hard_reset)d->after_kind);
    return;
  }
}

static void after(eg_dev *d) {
  const eg_chip *c = d->chip;
  switch (d->cfg->after) {
  case EG_AFTER_HARD_RESET: {
    const eg_hard_reset how = eg_chip_hard_reset(c, d->usb);
    if (c->hard_reset_prefix.n && !d->sdm && (how == EG_HARD_RESET_CLASSIC || how == EG_HARD_RESET_USB)) {
      d->after_kind = (int)how;
      eg__dev_script_run(d, EG_DS_AFTER_SCRIPT, eg__dev_script_add(d, 0, c->hard_reset_prefix));
      return;
    }
    hard_reset(d, how);
    return;
  }
  case EG_AFTER_SOFT_RESET:
    if (d->stub_running) {
      eg__dev_enter(d, EG_DS_AFTER_BEGIN);
      eg__dev_fail(d, EG_INVAL, -1, "--after soft-reset is not possible while the %s stub runs (use --no-stub)",
                   c->name);
      return;
    }
    break;
  case EG_AFTER_NO_RESET:
    if (!d->stub_running) {
      eg__dev_enter(d, EG_DS_AFTER_END);
      eg__dev_finish(d, EG_OK);
      return;
    }
    break;
  case EG_AFTER_NO_RESET_STUB:
    eg__dev_enter(d, EG_DS_AFTER_END);
    eg__dev_finish(d, EG_OK);
    return;
  }
  /* FLASH_BEGIN(0, 0, block, 0) then FLASH_END (esptool's run / soft reset). */
  const uint32_t block = eg_chip_write_block(c, d->stub_running, d->usb);
  eg__dev_request(d, EG_DS_AFTER_BEGIN,
                  eg_req_begin(d->pkt, EG_OP_FLASH_BEGIN, 0, 0, block, 0, d->stub_running || c->rom_begin_encrypt_word, 0),
                  0, d->cfg->timeouts.command_ms);
}
