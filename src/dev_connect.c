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
/* After CHANGE_BAUDRATE's reply the host switches its rate, waits, and drops
 * what arrived (the ROM's two 0xC0s at the new rate, garbage from the switch).
 * The ROM changes its divider as soon as the reply has left and takes the
 * next command at once: esp-serial-flasher's ROM path sends it with no pause
 * (esp_loader.c esp_loader_change_transmission_rate: "target's baud rate is
 * changed upon return"); 5 ms covers the ROM's divider write and an adapter's
 * own rate change. The legacy stub waits 10 ms (ets_delay_us(10000) in
 * stub_io_set_baudrate) before switching: 25 ms there, as esp-serial-flasher
 * waits after the stub's reply (esp-serial-protocol.md §8.3). esptool sleeps
 * 50 ms in both cases (loader.py:1545-1556). */
#define ROM_BAUD_SETTLE_MS 5
#define STUB_BAUD_SETTLE_MS 25

/* Slots of the RDID script (the identity script uses 0..EG_CHIP_IDENT_MAX). */
enum { SLOT_USR = 0, SLOT_USR2, SLOT_ID };

static void detect(eg_dev *d);
static void identify(eg_dev *d);
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
                 d->port_name, eg_port_kind_name(p),
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
    /* A USB-Serial/JTAG port has its own reset sequence (esptool picks it
     * by the port's PID, reset.py USBJTAGSerialReset). */
    const eg_before plan = d->usb == EG_USB_SERIAL_JTAG ? EG_BEFORE_USB_RESET : c->before;
    d->reset_seq = eg_reset_plan(plan, attempt, &name);
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
  if (!eg__dev_send_frame(d, d->pkt, len, d->tries % 2 == 1)) return;
  eg__dev_timing_open(d, EG_OP_SYNC, (uint32_t)d->tries, len, 0);
  eg__dev_arm(d, d->reply_timeout_ms);
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
  if (d->sync_replies == 0) {
    d->status_len = (uint8_t)sl;
    eg__dev_timing_close(d, len);
  }
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
  d->stub_running = d->stub_found = d->sync_stub_seen;
  eg__dev_log(d, "synced (%d replies, %s)", d->sync_replies, d->stub_running ? "stub running" : "ROM");
  detect(d);
}

/* --------------------------------------------------------------- detect */

/* The security state as the log records it: from GET_SECURITY_INFO where
 * the ROM has it, else (ESP32) from the eFuses read for the identity. */
static eg_tri tri(bool v) { return v ? EG_TRI_YES : EG_TRI_NO; }

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
  if (!c->usb_serial_jtag && !c->usb_otg_block) d->usb = EG_USB_NONE; /* no USB on this chip: a UART */
  if (d->sdm) {
    /* Secure Download Mode: the ROM refuses register reads, so no
     * identity (esptool prints none either); the security state is known. */
    snprintf(d->rec.chip_desc, sizeof d->rec.chip_desc, "%s (Secure Download Mode)", c->name);
    if (d->cb.on_identity) d->cb.on_identity(d);
    eg__dev_bringup_next(d);
    return;
  }
  identify(d);
}

void eg__dev_magic_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok && d->rec.has_sec_info) {
    /* esptool: a 12-byte security info and a refused READ_REG can only be
     * an ESP32-S2 in Secure Download Mode (cmds.py detect_chip). */
    d->sdm = true;
    d->rec.secure_download = EG_TRI_YES;
    chip_found(d, eg_chip_get(EG_CHIP_ESP32S2), "refused READ_REG after 12-byte security info", r->value);
    return;
  }
  if (!r->ok) {
    eg__dev_fail_status(d, r, "reading the chip's magic value");
    return;
  }
  chip_found(d, eg_chip_by_magic(r->value), "magic value", r->value);
}

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

/* GET_SECURITY_INFO (§4.2): flags u32, flash_crypt_cnt u8, 7 key purposes,
 * then chip_id u32 and api_version u32 (absent on the S2: 12 bytes). */
void eg__dev_secinfo_reply(eg_dev *d, const uint8_t *frame, size_t len) {
  eg_resp r;
  const size_t sl = eg__dev_status_len(d);
  const size_t data = len >= EG_RESP_HDR + sl ? len - EG_RESP_HDR - sl : 0;
  const size_t want = data >= 20 ? 20 : 12;
  if (data >= 12 && eg_resp_parse(frame, len, sl, want, &r) == EG_OK && r.ok) {
    eg_unit_record *u = &d->rec;
    u->has_sec_info = true;
    u->sec_flags = eg_get_u32(r.data);
    u->flash_crypt_cnt = r.data[4];
    memcpy(u->key_purposes, r.data + 5, 7);
    u->nkey_purposes = 7;
    u->secure_boot = tri(u->sec_flags & (1u << 0));           /* SECURE_BOOT_EN */
    u->secure_download = tri(u->sec_flags & (1u << 2));       /* SECURE_DOWNLOAD_ENABLE */
    u->flash_encryption = tri(__builtin_popcount(u->flash_crypt_cnt) & 1); /* odd count: on (cmds.py) */
    d->sdm = u->secure_download == EG_TRI_YES;
    if (want == 20) {
      const int chip_id = (int)eg_get_u32(r.data + 12);
      chip_found(d, eg_chip_by_chip_id(chip_id), "chip id", (uint32_t)chip_id);
      return;
    }
  }
  eg__dev_read_magic(d); /* S2 (12 bytes), a stub without it (0xFF), or anything else */
}

/* ------------------------------------------------------------- identify */

/* What esptool reads after detection: MAC, revision, package, crystal and
 * whatever CHANGE_BAUDRATE and SPI_ATTACH need (the chip table says which
 * registers, chips.c decodes them), plus the ROM's UARTDEV_BUF_NO when the
 * port's kind is not known from the host side. */
static void identify(eg_dev *d) {
  const eg_chip *c = d->chip;
  uint32_t addrs[EG_CHIP_IDENT_MAX];
  const size_t n = eg_chip_ident_regs(c, addrs, EG_CHIP_IDENT_MAX);
  memset(d->reg_slot, 0, sizeof d->reg_slot);
  size_t k = 0;
  for (size_t i = 0; i < n && k < EG_DEV_REGS; i++) d->script[k++] = (eg_regop){'R', (uint8_t)i, addrs[i], 0, 0, false};
  /* UARTDEV_BUF_NO depends on the revision on the P4: read both places
   * when there are two (the decode picks one). */
  if (d->usb == EG_USB_NONE && c->uartdev_buf_no && k + 2 <= EG_DEV_REGS) {
    d->script[k++] = (eg_regop){'R', EG_DEV_SLOT_UARTDEV, c->uartdev_buf_no, 0, 0, true};
    if (c->uartdev_buf_no_rev3)
      d->script[k++] = (eg_regop){'R', EG_DEV_SLOT_UARTDEV3, c->uartdev_buf_no_rev3, 0, 0, true};
  }
  eg__dev_script_run(d, EG_DS_IDENTIFY, k);
}

void eg__dev_identified(eg_dev *d) {
  const eg_chip *c = d->chip;
  eg_unit_record *u = &d->rec;
  /* The crystal is estimated from the UART divider the ROM auto-bauded to
   * and the rate we talk at; over a raw TCP socket the real line rate is
   * unknown (the device may still run at an earlier session's), so say
   * nothing rather than guess (decode with baud 0). */
  const uint32_t line = d->link.port.caps.has_baud ? d->cur_baud : 0;
  eg_chip_decode(c, d->reg_slot, line, &d->ident);
  const eg_chip_ident *id = &d->ident;
  u->has_mac = id->has_mac;
  memcpy(u->mac, id->mac, sizeof u->mac);
  u->rev_major = id->rev_major;
  u->rev_minor = id->rev_minor;
  snprintf(u->chip_desc, sizeof u->chip_desc, "%s", id->desc);
  u->crystal_mhz = id->crystal_mhz;
  if (!u->has_sec_info) { /* the eFuses say it (ESP32, ESP8266) */
    u->secure_boot = tri(id->secure_boot);
    u->flash_encryption = tri(id->flash_encryption);
    u->flash_crypt_cnt = (uint8_t)id->flash_crypt_cnt;
    u->secure_download = EG_TRI_NO; /* no such mode on these chips */
  }
  if (d->usb == EG_USB_NONE && c->uartdev_buf_no) {
    const uint32_t v = c->uartdev_buf_no_rev3 && eg_chip_uartdev_buf_no(c, id) == c->uartdev_buf_no_rev3
                         ? d->reg_slot[EG_DEV_SLOT_UARTDEV3]
                         : d->reg_slot[EG_DEV_SLOT_UARTDEV];
    d->usb = eg_chip_usb_mode_from_uartdev(c, v);
    eg__dev_log(d, "UARTDEV_BUF_NO 0x%08x: %s", v,
                d->usb == EG_USB_SERIAL_JTAG ? "USB-Serial/JTAG" : d->usb == EG_USB_OTG ? "USB-OTG" : "UART");
    if (d->usb == EG_USB_NONE) u->transport = EG_TRANSPORT_UART;
  }
  if (!c->usb_serial_jtag && !c->usb_otg_block) u->transport = EG_TRANSPORT_UART;
  if (d->usb == EG_USB_SERIAL_JTAG) u->transport = EG_TRANSPORT_USB_SERIAL_JTAG;
  if (d->usb == EG_USB_OTG) u->transport = EG_TRANSPORT_USB_OTG;
  if (d->cb.on_identity) d->cb.on_identity(d);
  eg__dev_bringup_next(d);
}

/* ------------------------------------------------------ stub and baud */

/* The stub this unit gets: none in Secure Download Mode or where the chip's
 * rules forbid one (C3 with secure boot, C2 v0.0); the older build for the
 * revisions that need it (ESP32-P4 below v3.0). */
static const eg_stub *stub_for(eg_dev *d) {
  const eg_chip *c = d->chip;
  const char *why = NULL;
  if (!eg_chip_stub_allowed(c, &d->ident, d->sdm, &why)) return NULL;
  const bool old = c->stub_old && strcmp(eg_chip_stub_name(c, &d->ident), c->stub_old) == 0;
  const eg_stub *const *set = old ? d->cfg->stubs_old : d->cfg->stubs;
  return set ? set[c->id] : NULL;
}

static void change_baud(eg_dev *d) {
  uint32_t value = d->link_baud, old = 0;
  if (d->stub_running)
    old = d->cur_baud; /* the legacy stub needs the current rate to compute its divider */
  else
    value = eg_chip_rom_baud_value(d->chip, &d->ident, d->link_baud); /* the ROM's crystal quirks (§8.3) */
  eg__dev_log(d, "CHANGE_BAUDRATE %u (sent %u, old %u)", d->link_baud, value, old);
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
  if (!eg__dev_switch_baud(d, d->link_baud)) return;
  if (d->state == EG_DS_ROM_BAUD) d->rom_baud_raised = true;
  const bool stub = d->state == EG_DS_STUB_BAUD;
  eg__dev_enter(d, stub ? EG_DS_STUB_BAUD_SETTLE : EG_DS_ROM_BAUD_SETTLE);
  eg__dev_arm(d, stub ? STUB_BAUD_SETTLE_MS : ROM_BAUD_SETTLE_MS);
}

void eg__dev_baud_settled(eg_dev *d) {
  eg__dev_drain(d);
  if (!d->finished) eg__dev_bringup_next(d);
}

/* Upload the stub: MEM_BEGIN + MEM_DATA for text, then data, then MEM_END. */
static void upload_next(eg_dev *d) {
  const eg_stub *st = stub_for(d);
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
    const uint32_t block = eg_chip_ram_block(d->chip, d->usb);
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
  eg__dev_bringup_next(d);
}

enum { BU_FLASH_POWER = 1u << 0, BU_USB_PREP = 1u << 1 };

/* What still has to happen before the flash is attached, in esptool's
 * order: power the flash (P4), keep the RTC watchdog from resetting a chip
 * on its own USB port (esptool _post_connect), raise the baud rate (in the
 * ROM before the stub upload, to upload it faster), upload the stub, or
 * raise it through the stub. Re-entered after each step. */
void eg__dev_bringup_next(eg_dev *d) {
  const eg_chip *c = d->chip;
  if (!(d->bringup_done & BU_FLASH_POWER)) {
    d->bringup_done |= BU_FLASH_POWER;
    const eg_regscript ps = d->sdm ? (eg_regscript){0} : eg_chip_flash_power_script(c, &d->ident);
    if (ps.n) {
      eg__dev_script_run(d, EG_DS_FLASH_POWER, eg__dev_script_add(d, 0, ps));
      return;
    }
  }
  if (!(d->bringup_done & BU_USB_PREP)) {
    d->bringup_done |= BU_USB_PREP;
    if (d->usb == EG_USB_SERIAL_JTAG && !d->sdm && !d->stub_found && c->wdt_disable.n) {
      eg__dev_log(d, "USB-Serial/JTAG: disabling the RTC watchdog");
      eg__dev_script_run(d, EG_DS_USB_PREP, eg__dev_script_add(d, 0, c->wdt_disable));
      return;
    }
  }
  const eg_stub *stub = stub_for(d);
  const bool want_stub = stub && !d->stub_running;
  /* The ROM's CHANGE_BAUDRATE: not on the ESP8266 (0), not in Secure
   * Download Mode on chips that refuse it there (C2, C5). */
  /* Raising the rate in the ROM first is our optimisation (esptool does it
   * through the stub); after a ROM that mis-set its divider, esptool's way
   * (dev_adapt.c). */
  const bool rom_can_baud = !d->rom_baud_off && eg_chip_rom_baud_value(c, &d->ident, d->link_baud) != 0 &&
                            (!d->sdm || c->rom_baud_in_sdm);
  if (d->link_baud != d->cur_baud && (d->stub_running || rom_can_baud)) {
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
  const eg_chip *c = d->chip;
  if (d->stub_running) { /* the stubs attach the flash themselves at boot */
    eg__dev_enter(d, EG_DS_ATTACH);
    if (d->sdm) /* not reachable: no stub in SDM */
      eg__dev_flash_id_done(d);
    else
      read_flash_id(d);
    return;
  }
  switch (c->rom_attach) {
  case EG_ATTACH_FLASH_BEGIN: {
    /* The ESP8266 ROM has no SPI_ATTACH: FLASH_BEGIN(0, 0) attaches
     * (esptool targets/esp8266.py flash_spi_attach). */
    const uint32_t block = eg_chip_write_block(c, false, d->usb);
    eg__dev_request(d, EG_DS_ATTACH, eg_req_begin(d->pkt, EG_OP_FLASH_BEGIN, 0, 0, block, 0, false, 0), 0,
                    d->cfg->timeouts.command_ms);
    return;
  }
  case EG_ATTACH_ESP32_PADS:
  case EG_ATTACH_ZERO:
    /* The ESP32 ROM does not attach in-package flash by itself: send the SPI
     * pads from eFuse (0 = default pins; always 0 in Secure Download Mode). */
    eg__dev_request(d, EG_DS_ATTACH, eg_req_spi_attach(d->pkt, d->sdm ? 0 : d->ident.spi_attach_arg, true), 0,
                    d->cfg->timeouts.command_ms);
    return;
  }
}

void eg__dev_attach_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "SPI_ATTACH");
    return;
  }
  if (d->sdm) { /* register reads are refused: no JEDEC ID (esptool skips it too) */
    eg__dev_flash_id_done(d);
    return;
  }
  read_flash_id(d);
}

void eg__dev_flash_id_done(eg_dev *d) {
  const char *sz = d->cfg->flash_size ? d->cfg->flash_size : "detect";
  const uint32_t fixed = eg_flash_size_bytes(sz);
  uint32_t detected = 0;
  if (!d->sdm) {
    d->flash_id = d->reg_slot[SLOT_ID] & 0xFFFFFF;
    d->rec.flash_id = d->flash_id;
    d->rec.has_flash_id = true;
    detected = eg_flash_size_from_jedec(d->flash_id);
    d->rec.flash_size = detected;
    if (eg_jedec_is_absent(d->flash_id) && (d->nops > 0 || d->cfg->plans)) {
      eg__dev_fail(d, EG_NO_FLASH, EG_OP_READ_REG, "port %s: flash JEDEC ID 0x%06x: no SPI flash answered",
                   d->port_name, d->flash_id);
      return;
    }
  }
  /* A fixed size wins; "detect" and "keep" use the JEDEC size, 4 MB when the
   * ID is unknown (esptool's fallback); in Secure Download Mode nothing can
   * be detected and esptool assumes 16 MB for erase-region. */
  d->flash_size = fixed ? fixed : detected ? detected : d->sdm ? 16u << 20 : 4u << 20;
  if (!detected && !d->sdm) eg__dev_log(d, "unknown flash ID 0x%06x, assuming %u bytes", d->flash_id, d->flash_size);
  if (!d->stub_running && !d->chip->rom_spi_set_params) { /* ESP8266 ROM: not implemented, skipped */
    eg__dev_set_params_reply(d, &(eg_resp){.ok = true});
    return;
  }
  eg__dev_request(d, EG_DS_SET_PARAMS, eg_req_spi_set_params(d->pkt, d->flash_size), 0, d->cfg->timeouts.command_ms);
}

void eg__dev_set_params_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    eg__dev_fail_status(d, r, "SPI_SET_PARAMS");
    return;
  }
  if (d->cb.on_identity) d->cb.on_identity(d);
  if (d->resume_ops) { /* reconnected by the adaptive link: the checks and the gate are behind us */
    d->resume_ops = false;
    eg__dev_adapt_resumed(d);
    eg__dev_ops_resume(d);
    return;
  }
  eg__dev_ops_check(d);
}
