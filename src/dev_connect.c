/* dev_connect.c - connection bring-up: from an open link to an attached
 * flash. The port is reset into the bootloader (--before), synced, the chip
 * detected and identified, the baud rate raised (in the ROM before the stub
 * upload: fewer seconds on the wire; esptool does it through the stub), the
 * flasher stub uploaded (or ROM mode kept), the SPI flash attached and its
 * JEDEC ID read. Facts: ../shared/docs/esp-serial-protocol.md §3-§5, §8.
 */
#include <stdio.h>
#include <string.h>

#include "device_int.h"
#include "reset.h"

#define SYNC_TRIES 5   /* SYNC attempts per connect attempt (esptool) */
#define SYNC_PAUSE_MS 50
#define SYNC_REPLIES 8 /* the ROM and the stubs answer SYNC 8 times */
#define BAUD_SETTLE_MS 50 /* esptool: "get rid of garbage sent during baud rate change" */

/* Slots of the register scripts. */
enum { SLOT_W1, SLOT_W2, SLOT_W3, SLOT_W5, SLOT_APB, SLOT_CLKDIV, SLOT_W4, SLOT_CALI, SLOT_USR, SLOT_USR2, SLOT_ID };

static void detect(eg_dev *d);
static void identify(eg_dev *d);
static void bringup_next(eg_dev *d);
static void attach(eg_dev *d);

/* ------------------------------------------------------------- connect */

bool eg__dev_may_reopen(const eg_dev *d) {
  return !d->closing && (d->stage == EG_STAGE_OPEN || d->stage == EG_STAGE_RESET || d->stage == EG_STAGE_SYNC) &&
         d->sync_replies == 0 && d->attempt < d->cfg->connect_attempts;
}

void eg__dev_connect_up(eg_dev *d) {
  const eg_dev_config *c = d->cfg;
  /* Reject what this port can never do before touching the chip. */
  const bool needs_lines = c->before == EG_BEFORE_DEFAULT_RESET || c->before == EG_BEFORE_USB_RESET;
  const eg_port *p = &d->link.port;
  if (!p->can_reset && (needs_lines || c->after == EG_AFTER_HARD_RESET)) {
    eg__dev_enter(d, needs_lines ? EG_DS_RESETTING : EG_DS_AFTER_RESET);
    eg__dev_fail(d, EG_RESET_UNSUPPORTED, -1, "port %s cannot drive DTR/RTS (%s), so --%s %s is impossible; use --%s %s",
                 d->port_name, p->kind == EG_PORT_TCP ? "a TCP socket" : "a pseudo-terminal",
                 needs_lines ? "before" : "after", needs_lines ? eg_before_name(c->before) : eg_after_name(c->after),
                 needs_lines ? "before" : "after", "no-reset");
    return;
  }
  if (c->before == EG_BEFORE_NO_RESET_NO_SYNC) {
    /* Assume a loader is listening; learn the status length from replies. */
    eg__dev_enter(d, EG_DS_SYNC_WAIT);
    d->status_len = 0;
    d->stub_running = false;
    detect(d);
    return;
  }
  eg__dev_connect_attempt(d);
}

void eg__dev_connect_attempt(eg_dev *d) {
  const eg_dev_config *c = d->cfg;
  if (d->attempt >= c->connect_attempts) {
    /* Explain from what the chip printed (esptool's _connect_attempt). */
    const char *boot = strstr(d->bootlog, "boot:0x");
    const bool waiting = strstr(d->bootlog, "waiting for download") != NULL;
    char line[96];
    if (boot && !waiting) {
      /* The printable line holding "boot:0x...". */
      const char *b = boot, *e = boot;
      while (b > d->bootlog && b[-1] != '\n' && b[-1] != '\r') b--;
      while (*e && *e != '\n' && *e != '\r') e++;
      size_t j = 0;
      for (const char *q = b; q < e && j + 1 < sizeof line; q++) line[j++] = (*q >= 0x20 && *q < 0x7F) ? *q : '.';
      line[j] = '\0';
      eg__dev_fail(d, EG_NOT_DOWNLOAD_MODE, EG_OP_SYNC,
                   "port %s: the chip booted normally, not into download mode (\"%s\"); hold BOOT/GPIO0 low during "
                   "reset or check the auto-reset circuit",
                   d->port_name, line);
      return;
    }
    if (d->bootlog_len) {
      /* The most recent text the chip sent, printable characters only. */
      const size_t from = d->bootlog_len > 60 ? d->bootlog_len - 60 : 0;
      size_t j = 0;
      for (const char *q = d->bootlog + from; *q && *q != '\n' && *q != '\r' && j + 1 < sizeof line; q++)
        line[j++] = (*q >= 0x20 && *q < 0x7F) ? *q : '.';
      line[j] = '\0';
      eg__dev_fail(d, EG_NO_SYNC, EG_OP_SYNC,
                   "port %s: no answer to SYNC after %d attempts; the chip sent %zu other bytes, lately \"%s\"%s",
                   d->port_name, d->attempt, d->bootlog_len, line,
                   waiting ? " (it is waiting for download: TX path down?)" : "");
      return;
    }
    eg__dev_fail(d, EG_NO_SYNC, EG_OP_SYNC,
                 "port %s: no answer to SYNC after %d attempts (is the chip powered and in download mode?)", d->port_name,
                 d->attempt);
    return;
  }
  const int attempt = d->attempt++;
  d->tries = 0;
  /* Without a reset, a flasher stub left running by an earlier session
   * (esp-flasher-stub does not reboot on FLASH_END, and --after
   * no-reset-stub leaves it on purpose) listens at the transfer rate, not
   * at the ROM's: alternate the two. A freshly reset ROM auto-bauds. */
  if (c->before == EG_BEFORE_NO_RESET && c->baud != c->connect_baud) {
    const uint32_t rate = attempt % 2 ? c->baud : c->connect_baud;
    if (rate != d->cur_baud && !eg__dev_switch_baud(d, rate)) return;
  }
  eg__dev_drain(d);
  if (c->before == EG_BEFORE_DEFAULT_RESET || c->before == EG_BEFORE_USB_RESET) {
    const char *name = "";
    d->reset_seq = eg_reset_plan(c->before, attempt, &name);
    eg__dev_log(d, "reset: %s", name);
    eg__dev_reset_run(d, EG_DS_RESETTING);
    return;
  }
  eg__dev_send_sync(d);
}

void eg__dev_reset_done(eg_dev *d) {
  d->tries = 0;
  eg__dev_send_sync(d);
}

void eg__dev_send_sync(eg_dev *d) {
  eg__dev_drain(d);
  if (d->finished) return;
  d->sync_replies = 0;
  d->sync_stub_seen = true;
  eg__dev_enter(d, EG_DS_SYNC_WAIT);
  d->expect_op = EG_OP_SYNC;
  d->expect_data = 0;
  const size_t len = eg_req_sync(d->pkt);
  d->pkt_len = len;
  d->reply_timeout_ms = d->cfg->timeouts.sync_ms + eg__dev_wire_ms(d, len + 2) + 20;
  eg__dev_log(d, "TX SYNC (try %d, %u baud)", d->tries + 1, d->cur_baud);
  /* A receiver that took a stray 0xC0 in line noise (a wrong baud rate) as
   * the start of a frame stays out of step: each request's leading 0xC0
   * then closes an empty frame and its body is ignored; esp-flasher-stub's
   * decoder does exactly that. Every other try sends one extra 0xC0 first,
   * which puts such a receiver back in step and costs an in-step one at
   * most that try (the ROM ignores repeated 0xC0s). */
  if (eg__dev_send_frame(d, d->pkt, len, d->tries % 2 == 1)) eg__dev_arm(d, d->reply_timeout_ms);
}

void eg__dev_sync_timeout(eg_dev *d) {
  /* No reply: pause, try again, then the next connect attempt. */
  if (++d->tries < SYNC_TRIES) {
    eg__dev_enter(d, EG_DS_SYNC_PAUSE);
    eg__dev_arm(d, SYNC_PAUSE_MS);
    return;
  }
  eg__dev_connect_attempt(d);
}

void eg__dev_sync_frame(eg_dev *d, const uint8_t *frame, size_t len) {
  eg_resp r;
  /* Before the chip is known, the status length follows the reply: 4 bytes
   * from an ESP32-family ROM, 2 from a stub or the ESP8266 ROM. */
  if (len < EG_RESP_HDR || frame[0] != 0x01 || frame[1] != EG_OP_SYNC) return;
  const size_t sl = eg_get_u16(frame + 2) >= 4 ? 4 : 2;
  if (eg_resp_parse(frame, len, sl, 0, &r) != EG_OK || !r.ok) return;
  if (d->sync_replies == 0) d->status_len = (uint8_t)sl;
  d->sync_replies++;
  d->sync_stub_seen = d->sync_stub_seen && r.value == 0;
  if (d->sync_replies >= SYNC_REPLIES) {
    eg__dev_synced(d);
    return;
  }
  d->state = EG_DS_SYNC_MORE;
  eg__dev_arm(d, d->cfg->timeouts.sync_ms); /* a quiet period ends the collection */
}

void eg__dev_synced(eg_dev *d) {
  uv_timer_stop(&d->timer);
  d->stub_running = d->sync_stub_seen;
  eg__dev_log(d, "synced (%d replies, %s)", d->sync_replies, d->stub_running ? "stub running" : "ROM");
  detect(d);
}

/* --------------------------------------------------------------- detect */

static void chip_found(eg_dev *d, const eg_chip *c, const char *how, uint32_t what) {
  if (!c) {
    eg__dev_fail(d, EG_UNKNOWN_CHIP, EG_OP_READ_REG, "port %s: %s 0x%08x matches no known chip", d->port_name, how, what);
    return;
  }
  if (d->cfg->chip && c != d->cfg->chip) {
    eg__dev_fail(d, EG_WRONG_CHIP, EG_OP_READ_REG, "port %s: expected %s, found %s (%s 0x%08x)", d->port_name,
                 d->cfg->chip->name, c->name, how, what);
    return;
  }
  d->chip = c;
  snprintf(d->rec.chip, sizeof d->rec.chip, "%s", c->name);
  if (d->cfg->before == EG_BEFORE_NO_RESET_NO_SYNC && c->rom_status_len == EG_STATUS_STUB)
    d->stub_running = false; /* ESP8266: 2 status bytes from its ROM too; assume the ROM */
  if (!d->stub_running) d->status_len = c->rom_status_len;
  identify(d);
}

void eg__dev_magic_reply(eg_dev *d, const eg_resp *r) { chip_found(d, eg_chip_by_magic(r->value), "magic value", r->value); }

void eg__dev_read_magic(eg_dev *d) {
  eg__dev_request(d, EG_DS_MAGIC, eg_req_read_reg(d->pkt, EG_CHIP_MAGIC_REG), 0, d->cfg->timeouts.command_ms);
}

static void detect(eg_dev *d) {
  /* GET_SECURITY_INFO first, as esptool; skipped when the expected chip's ROM
   * is known not to implement it (ESP32, ESP8266): the ROM's answer to an
   * unknown command costs a 200 ms drain. */
  if (d->cfg->chip && !d->cfg->chip->rom_has_security_info && !d->stub_running) {
    eg__dev_read_magic(d);
    return;
  }
  eg__dev_request(d, EG_DS_SECINFO, eg_req_simple(d->pkt, EG_OP_GET_SECURITY_INFO), 0, d->cfg->timeouts.command_ms);
}

void eg__dev_secinfo_reply(eg_dev *d, const uint8_t *frame, size_t len) {
  eg_resp r;
  /* 20 data bytes (S3 and later), 12 on the S2 (no chip id). */
  if (eg_resp_parse(frame, len, eg__dev_status_len(d), 20, &r) == EG_OK && r.ok) {
    const int chip_id = (int)eg_get_u32(r.data + 12);
    chip_found(d, eg_chip_by_chip_id(chip_id), "chip id", (uint32_t)chip_id);
    return;
  }
  eg__dev_read_magic(d); /* S2 (12 bytes), a stub without it (0xFF), or anything else */
}

/* ------------------------------------------------------------- identify */

static void identify(eg_dev *d) {
  const eg_chip *c = d->chip;
  memset(d->reg_slot, 0, sizeof d->reg_slot);
  eg_regop *o = d->script;
  size_t n = 0;
  if (c->id == EG_CHIP_ESP32) {
    /* What esptool reads for chip_id / read_mac and the CHANGE_BAUDRATE
     * calibration. */
    o[n++] = (eg_regop){'R', SLOT_W1, EG_ESP32_EFUSE_WORD(1), 0};
    o[n++] = (eg_regop){'R', SLOT_W2, EG_ESP32_EFUSE_WORD(2), 0};
    o[n++] = (eg_regop){'R', SLOT_W3, EG_ESP32_EFUSE_WORD(3), 0};
    o[n++] = (eg_regop){'R', SLOT_W5, EG_ESP32_EFUSE_WORD(5), 0};
    o[n++] = (eg_regop){'R', SLOT_APB, EG_ESP32_APB_CTL_DATE, 0};
    o[n++] = (eg_regop){'R', SLOT_CLKDIV, 0x3FF40014, 0};
    o[n++] = (eg_regop){'R', SLOT_W4, EG_ESP32_EFUSE_WORD(4), 0};
    o[n++] = (eg_regop){'R', SLOT_CALI, EG_ESP32_RTC_CALI_REG, 0};
  } else {
    /* Other chips: the UART divider and the MAC words. */
    o[n++] = (eg_regop){'R', SLOT_CLKDIV, c->uart_clkdiv_reg, 0};
    if (c->mac_reg) {
      o[n++] = (eg_regop){'R', SLOT_W1, c->mac_reg, 0};
      o[n++] = (eg_regop){'R', SLOT_W2, c->mac_reg + 4, 0};
    }
  }
  eg__dev_script_run(d, EG_DS_IDENTIFY, n);
}

void eg__dev_identified(eg_dev *d) {
  const eg_chip *c = d->chip;
  uint32_t *s = d->reg_slot;
  if (c->id == EG_CHIP_ESP32) {
    eg_esp32_mac(s[SLOT_W1], s[SLOT_W2], d->rec.mac);
    d->rec.has_mac = true;
    d->rec.rev_major = eg_esp32_major_rev(s[SLOT_W3], s[SLOT_W5], s[SLOT_APB]);
    d->rec.rev_minor = eg_esp32_minor_rev(s[SLOT_W5]);
    snprintf(d->rec.chip_desc, sizeof d->rec.chip_desc, "%s (revision v%d.%d)",
             eg_esp32_package_name(eg_esp32_package(s[SLOT_W3]), d->rec.rev_major), d->rec.rev_major, d->rec.rev_minor);
  } else if (c->mac_reg) {
    eg_esp32_mac(s[SLOT_W1], s[SLOT_W2] & 0xFFFF, d->rec.mac);
    d->rec.has_mac = true;
    snprintf(d->rec.chip_desc, sizeof d->rec.chip_desc, "%s", c->name);
  } else {
    snprintf(d->rec.chip_desc, sizeof d->rec.chip_desc, "%s", c->name);
  }
  /* The crystal is estimated from the UART divider the ROM auto-bauded to
   * and the rate we talk at; over a raw TCP socket the real line rate is
   * unknown (the device may still run at an earlier session's), so say
   * nothing rather than guess. */
  d->rec.crystal_mhz = d->link.port.kind == EG_PORT_TCP ? 0 : eg_crystal_mhz(c, d->cur_baud, s[SLOT_CLKDIV]);
  if (d->cb.on_identity) d->cb.on_identity(d);
  bringup_next(d);
}

/* ------------------------------------------------------ stub and baud */

static void change_baud(eg_dev *d) {
  uint32_t value = d->cfg->baud, old = 0;
  if (d->stub_running) {
    old = d->cur_baud; /* the legacy stub needs the current rate to compute its divider */
  } else if (d->chip->id == EG_CHIP_ESP32) {
    /* ESP32 ROM quirk (§8.3): it derives the divider from its drifting 8 MHz
     * clock, so send baud * f_rom / f_valid. */
    value = eg_esp32_rom_baud_value(d->cfg->baud, d->reg_slot[SLOT_CALI], d->reg_slot[SLOT_W4]);
  }
  eg__dev_log(d, "CHANGE_BAUDRATE %u (sent %u, old %u)", d->cfg->baud, value, old);
  eg__dev_request(d, d->stub_running ? EG_DS_STUB_BAUD : EG_DS_ROM_BAUD, eg_req_change_baud(d->pkt, value, old), 0,
                  d->cfg->timeouts.command_ms);
}

void eg__dev_baud_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "baud rate change refused");
    return;
  }
  /* The reply came at the old rate; now switch the host side and let the
   * line settle (esptool sleeps 50 ms and flushes). */
  if (!eg__dev_switch_baud(d, d->cfg->baud)) return;
  eg__dev_enter(d, d->state == EG_DS_STUB_BAUD ? EG_DS_STUB_BAUD_SETTLE : EG_DS_ROM_BAUD_SETTLE);
  eg__dev_arm(d, BAUD_SETTLE_MS);
}

void eg__dev_baud_settled(eg_dev *d) {
  eg__dev_drain(d);
  if (!d->finished) bringup_next(d);
}

/* Upload the stub: MEM_BEGIN + MEM_DATA for text, then data, then MEM_END. */
static void upload_next(eg_dev *d) {
  const eg_stub *st = d->cfg->stubs[d->chip->id];
  for (;;) {
    const uint8_t *seg = d->mem_seg == 0 ? st->text : st->data;
    const size_t seg_len = d->mem_seg == 0 ? st->text_len : st->data_len;
    const uint32_t seg_addr = d->mem_seg == 0 ? st->text_start : st->data_start;
    if (d->mem_seg > 1) {
      eg__dev_request(d, EG_DS_STUB_MEM_END, eg_req_mem_end(d->pkt, st->entry), 0, d->cfg->timeouts.mem_end_ms);
      return;
    }
    if (!seg || seg_len == 0) {
      d->mem_seg++;
      continue;
    }
    const uint32_t block = d->chip->ram_block;
    if (d->mem_blocks == 0) { /* MEM_BEGIN */
      d->mem_blocks = eg_blocks(seg_len, block);
      d->mem_seq = 0;
      eg__dev_request(d, EG_DS_STUB_MEM,
                      eg_req_begin(d->pkt, EG_OP_MEM_BEGIN, (uint32_t)seg_len, d->mem_blocks, block, seg_addr, false, 0),
                      0, d->cfg->timeouts.command_ms);
      return;
    }
    if (d->mem_seq < d->mem_blocks) {
      const size_t n = eg_block_len(seg_len, block, d->mem_seq);
      const size_t len = eg_req_data(d->pkt, EG_OP_MEM_DATA, d->mem_seq, seg + (size_t)d->mem_seq * block, n, 0);
      d->mem_seq++;
      eg__dev_request(d, EG_DS_STUB_MEM, len, 0, d->cfg->timeouts.command_ms);
      return;
    }
    d->mem_seg++;
    d->mem_blocks = 0;
  }
}

void eg__dev_mem_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "stub upload");
    return;
  }
  upload_next(d);
}

void eg__dev_mem_end_reply(eg_dev *d) {
  /* The ROM's answer to MEM_END (or its absence) does not matter: the
   * stub's greeting decides. */
  d->state = EG_DS_STUB_OHAI;
  eg__dev_arm(d, EG_DEV_OHAI_TIMEOUT_MS);
}

void eg__dev_stub_started(eg_dev *d) {
  uv_timer_stop(&d->timer);
  d->stub_running = true;
  d->status_len = EG_STATUS_STUB;
  eg__dev_log(d, "stub running");
  bringup_next(d);
}

/* What still has to happen before the flash is attached: raise the baud rate
 * in the ROM (before the stub upload, to upload it faster), upload the stub,
 * or raise it through the stub. Re-entered after each step. */
static void bringup_next(eg_dev *d) {
  const eg_stub *stub = d->cfg->stubs ? d->cfg->stubs[d->chip->id] : NULL;
  const bool want_stub = stub && !d->stub_running;
  const bool rom_can_baud = d->chip->id != EG_CHIP_ESP8266;
  if (d->cfg->baud != d->cur_baud && (d->stub_running || rom_can_baud)) {
    change_baud(d);
    return;
  }
  if (want_stub && !d->stub_uploaded) {
    d->stub_uploaded = true; /* one try per connection */
    d->mem_seg = 0;
    d->mem_seq = 0;
    d->mem_blocks = 0;
    upload_next(d);
    return;
  }
  d->rec.stub = d->stub_running;
  d->rec.baud = d->cur_baud;
  attach(d);
}

/* --------------------------------------------------------------- attach */

static void read_flash_id(eg_dev *d) {
  const eg_spi_regs *s = &d->chip->spi;
  /* The RDID user command (§5.1): save USR/USR2, 24 bits in, opcode 0x9F,
   * start, poll, read W0, restore. ESP8266 keeps the lengths in USR1. */
  eg_regop *o = d->script;
  size_t n = 0;
  o[n++] = (eg_regop){'R', SLOT_USR, s->usr, 0};
  o[n++] = (eg_regop){'R', SLOT_USR2, s->usr2, 0};
  if (s->miso_dlen)
    o[n++] = (eg_regop){'W', 0, s->miso_dlen, 23};
  else
    o[n++] = (eg_regop){'W', 0, s->usr1, 23u << 8};
  o[n++] = (eg_regop){'W', 0, s->usr, 0x90000000u};
  o[n++] = (eg_regop){'W', 0, s->usr2, 0x70000000u | 0x9F};
  o[n++] = (eg_regop){'W', 0, s->w0, 0};
  o[n++] = (eg_regop){'W', 0, s->cmd, 1u << 18};
  o[n++] = (eg_regop){'P', 0, s->cmd, 1u << 18};
  o[n++] = (eg_regop){'R', SLOT_ID, s->w0, 0};
  o[n++] = (eg_regop){'S', SLOT_USR, s->usr, 0};
  o[n++] = (eg_regop){'S', SLOT_USR2, s->usr2, 0};
  eg__dev_script_run(d, EG_DS_FLASH_ID, n);
}

static void attach(eg_dev *d) {
  if (d->stub_running) { /* the stubs attach the flash themselves at boot */
    eg__dev_enter(d, EG_DS_ATTACH);
    read_flash_id(d);
    return;
  }
  /* The ESP32 ROM does not attach in-package flash by itself: send the SPI
   * pads from eFuse (0 = default pins), as esptool does. */
  const uint32_t arg = d->chip->id == EG_CHIP_ESP32 ? eg_esp32_spi_pads(d->reg_slot[SLOT_W3], d->reg_slot[SLOT_W5]) : 0;
  eg__dev_request(d, EG_DS_ATTACH, eg_req_spi_attach(d->pkt, arg, true), 0, d->cfg->timeouts.command_ms);
}

void eg__dev_attach_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "SPI_ATTACH");
    return;
  }
  read_flash_id(d);
}

void eg__dev_flash_id_done(eg_dev *d) {
  d->flash_id = d->reg_slot[SLOT_ID] & 0xFFFFFF;
  d->rec.flash_id = d->flash_id;
  d->rec.has_flash_id = true;
  const uint32_t detected = eg_flash_size_from_jedec(d->flash_id);
  d->rec.flash_size = detected;
  if (eg_jedec_is_absent(d->flash_id) && d->nops > 0) {
    eg__dev_fail(d, EG_NO_FLASH, EG_OP_READ_REG, "port %s: flash JEDEC ID 0x%06x: no SPI flash answered", d->port_name,
                 d->flash_id);
    return;
  }
  const char *sz = d->cfg->flash_size ? d->cfg->flash_size : "detect";
  const uint32_t fixed = eg_flash_size_bytes(sz);
  /* A fixed size wins; "detect" and "keep" use the JEDEC size, 4 MB when the
   * ID is unknown (esptool's fallback). */
  d->flash_size = fixed ? fixed : (detected ? detected : 4u << 20);
  if (!detected) eg__dev_log(d, "unknown flash ID 0x%06x, assuming %u bytes", d->flash_id, d->flash_size);
  eg__dev_request(d, EG_DS_SET_PARAMS, eg_req_spi_set_params(d->pkt, d->flash_size), 0, d->cfg->timeouts.command_ms);
}

void eg__dev_set_params_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "SPI_SET_PARAMS");
    return;
  }
  if (d->cb.on_identity) d->cb.on_identity(d);
  if (d->cb.on_gate) {
    eg__dev_enter(d, EG_DS_GATE);
    d->cb.on_gate(d);
    return;
  }
  eg__dev_ops_start(d);
}
