/* device.c - the device state machine's events (see device.h): requests and
 * their replies, the timer, the link's callbacks, and the two dispatch
 * tables that say what a reply and a timeout mean in each state. The steps
 * themselves live in dev_connect.c (bring-up) and dev_flash.c (operations).
 *
 * Replies are matched by opcode as esptool does (up to 100 unrelated frames
 * are skipped); the ROM's "unsupported command" answer is recognised by its
 * status bytes whatever opcode it echoes. A refused or lost reply to an
 * idempotent command is sent again (3 attempts), keeping the chip's first
 * answer for the log. Facts: ../shared/docs/esp-serial-protocol.md.
 */
#include "device_int.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "reset.h"
#include "timing.h"

#define UNSUPPORTED_DRAIN_MS 200 /* esptool sleeps 0.2 s to drain the repeated error */
#define MAX_SKIPPED 100          /* esptool reads up to 100 frames for a matching reply */
#define RDID_POLLS 10            /* esptool polls the SPI CMD register at most 10 times */
#define MAX_REOPENS 3
#define REOPEN_DELAY_MS 300
/* A port that left the bus while we were connecting (a chip's own USB port
 * re-enumerates when the chip resets: USB-OTG on every reset, esptool docs
 * advanced-options.rst) is waited for, not counted as a failure: poll
 * every PORT_BACK_POLL_MS, up to timeouts.port_back_ms. */
#define PORT_BACK_POLL_MS 100

/* ------------------------------------------------------------ the map */

static const char *const state_names[] = {
#define EG_DEV_STATE_NAME(name, stage, awaits, what) #name,
  EG_DEV_STATE_MAP(EG_DEV_STATE_NAME)
#undef EG_DEV_STATE_NAME
};

static const eg_stage state_stages[] = {
#define EG_DEV_STATE_STAGE(name, stage, awaits, what) EG_STAGE_##stage,
  EG_DEV_STATE_MAP(EG_DEV_STATE_STAGE)
#undef EG_DEV_STATE_STAGE
};

static const eg_dev_awaits state_awaits[] = {
#define EG_DEV_STATE_AWAITS(name, stage, awaits, what) EG_AWAIT_##awaits,
  EG_DEV_STATE_MAP(EG_DEV_STATE_AWAITS)
#undef EG_DEV_STATE_AWAITS
};

eg_dev_awaits eg_dev_state_awaits(eg_dev_state s) { return (unsigned)s < EG_DS__COUNT ? state_awaits[s] : EG_AWAIT_NONE; }
const char *eg_dev_state_name(eg_dev_state s) { return (unsigned)s < EG_DS__COUNT ? state_names[s] : "?"; }
eg_stage eg_dev_state_stage(eg_dev_state s) { return (unsigned)s < EG_DS__COUNT ? state_stages[s] : EG_STAGE_NONE; }

/* ------------------------------------------------------------ helpers */

void eg__dev_log(eg_dev *d, const char *fmt, ...) {
  if (!d->cfg->trace || !d->cb.on_log) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  d->cb.on_log(d, line);
}

static void set_stage(eg_dev *d, eg_stage s) {
  const uint64_t now = uv_now(d->loop);
  d->rec.stage_ms[d->stage] += (uint32_t)(now - d->stage_t0);
  d->stage_t0 = now;
  if (s == d->stage) return;
  d->stage = s;
  d->rec.bytes_tx = d->link.bytes_tx;
  d->rec.bytes_rx = d->link.bytes_rx;
  /* Until something fails, the fault's stage tracks where the unit is (the
   * log shows it for units in progress). */
  if (d->rec.fault.code == EG_OK) d->rec.fault.stage = s;
  if (d->cb.on_stage) d->cb.on_stage(d, s);
}

void eg__dev_enter(eg_dev *d, eg_dev_state s) {
  d->state = s;
  const eg_stage st = eg_dev_state_stage(s);
  if (st != EG_STAGE_NONE) set_stage(d, st);
}

static void on_timer(uv_timer_t *t);

void eg__dev_arm(eg_dev *d, uint32_t ms) { uv_timer_start(&d->timer, on_timer, ms, 0); }

size_t eg__dev_status_len(const eg_dev *d) { return d->status_len ? d->status_len : 4; }

uint32_t eg__dev_wire_ms(const eg_dev *d, size_t bytes) {
  const uint32_t baud = d->cur_baud ? d->cur_baud : 115200;
  return (uint32_t)((uint64_t)bytes * 10u * 1000u / baud);
}

void eg__dev_progress(eg_dev *d, uint64_t done, uint64_t total) {
  if (d->cb.on_progress) d->cb.on_progress(d, done, total);
}

void eg__dev_finish(eg_dev *d, eg_err result) {
  if (d->finished) return;
  set_stage(d, d->stage); /* account the time of the last stage */
  d->finished = true;
  d->state = EG_DS_DONE;
  uv_timer_stop(&d->timer);
  eg__dev_timing_close(d, 0);
  d->rec.bytes_tx = d->link.bytes_tx;
  d->rec.bytes_rx = d->link.bytes_rx;
  eg_link_stop(&d->link); /* the port is free for a retry or another tool */
  d->rec.finished_ms = eg_clock_epoch_ms();
  if (result == EG_OK) {
    d->rec.result = EG_RESULT_PASS;
    eg_fault_clear(&d->rec.fault);
  } else {
    if (result != EG_SKIPPED) eg__dev_ops_failed(d);
    d->rec.result = result == EG_ABORTED   ? EG_RESULT_ABORTED
                    : result == EG_SKIPPED ? EG_RESULT_SKIPPED
                                           : EG_RESULT_FAIL;
    if (d->rec.fault.code == EG_OK) eg_fault_set(&d->rec.fault, result, d->stage, -1, "%s", eg_strerror(result));
  }
  if (d->md5ctx) {
    EVP_MD_CTX_free(d->md5ctx);
    d->md5ctx = NULL;
  }
  if (d->cb.on_done) d->cb.on_done(d, result);
}

void eg__dev_fail(eg_dev *d, eg_err code, int opcode, const char *fmt, ...) {
  if (d->finished) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (eg__dev_adapt(d, code, NULL, msg) || eg__dev_adapt_failed(d, code, msg)) return;
  eg_fault_set(&d->rec.fault, code, d->stage, opcode, "%s", msg);
  eg__dev_finish(d, code);
}

void eg__dev_fail_status(eg_dev *d, const eg_resp *r, const char *what) {
  char desc[128];
  eg_resp_describe(r, d->stub_running, desc, sizeof desc);
  char why[256];
  snprintf(why, sizeof why, "%s: %s %s", what, eg_op_name(r->op), desc);
  if (eg__dev_adapt(d, EG_DEVICE_STATUS, r, why) || eg__dev_adapt_failed(d, EG_DEVICE_STATUS, why)) return;
  eg_fault_set(&d->rec.fault, EG_DEVICE_STATUS, d->stage, r->op, "%s: %s %s", what, eg_op_name(r->op), desc);
  eg_fault_status(&d->rec.fault, r->status, r->nstatus);
  eg__dev_finish(d, EG_DEVICE_STATUS);
}

static void link_lost(eg_dev *d, eg_err code, const char *msg);

bool eg__dev_send_frame(eg_dev *d, const uint8_t *raw, size_t len, bool lead_end) {
  const eg_err e = eg_link_send(&d->link, raw, len, lead_end);
  if (e != EG_OK && !d->finished && (e == EG_PORT_GONE || !eg_link_is_up(&d->link))) {
    /* The port went (the link reports it too, once): handled as a loss. */
    char msg[384];
    snprintf(msg, sizeof msg, "%s", d->link.port.errmsg[0] ? d->link.port.errmsg : eg_strerror(e));
    eg_link_stop(&d->link);
    uv_timer_stop(&d->timer);
    link_lost(d, EG_PORT_GONE, msg);
    return false;
  }
  if (e != EG_OK && !d->finished)
    eg__dev_fail(d, e, len > 1 ? raw[1] : -1, "port %s: cannot send (%s)", d->port_name,
                 d->link.port.errmsg[0] ? d->link.port.errmsg : eg_strerror(e));
  return !d->finished;
}

/* Timing records (cfg->timing): the exchange in flight is closed when its
 * reply arrives, or left without one when it is sent again or abandoned. */
void eg__dev_timing_close(eg_dev *d, size_t reply_bytes) {
  if (!d->tm) return;
  if (reply_bytes) {
    d->tm->t_reply_us = eg_timing_now_us();
    d->tm->bytes_in = (uint32_t)reply_bytes;
  }
  eg_timing_add(d->cfg->timing, d->tm);
  free(d->tm);
  d->tm = NULL;
}

void eg__dev_timing_open(eg_dev *d, uint8_t op, uint32_t seq, size_t bytes_out, uint16_t attempt) {
  if (!d->cfg->timing) return;
  eg__dev_timing_close(d, 0);
  if (!(d->tm = calloc(1, sizeof *d->tm))) return;
  const char *who = d->rec.slot[0] ? d->rec.slot : d->port_name;
  snprintf(d->tm->slot, sizeof d->tm->slot, "%.*s", (int)sizeof d->tm->slot - 1, who);
  d->tm->op = op;
  d->tm->stage = (uint8_t)d->stage;
  d->tm->attempt = attempt;
  d->tm->seq = seq;
  d->tm->bytes_out = (uint32_t)bytes_out;
  d->tm->baud = d->cur_baud;
  d->tm->t_sent_us = eg_timing_now_us();
}

/* The sequence number of a *_DATA request (its second data word). */
static uint32_t req_seq(const eg_dev *d) {
  const uint8_t op = d->pkt[1];
  return (op == EG_OP_FLASH_DATA || op == EG_OP_FLASH_DEFL_DATA || op == EG_OP_MEM_DATA) && d->pkt_len >= 16
           ? eg_get_u32(d->pkt + EG_REQ_HDR + 4)
           : 0;
}

void eg__dev_request(eg_dev *d, eg_dev_state s, size_t len, size_t expect_data, uint32_t timeout_ms) {
  eg__dev_enter(d, s);
  d->expect_op = d->pkt[1];
  d->expect_data = expect_data;
  d->skipped_frames = 0;
  d->pkt_len = len;
  d->cmd_tries = 0;
  d->have_refusal = false;
  d->req_timeout_ms = timeout_ms;
  /* The reply can only start once the request is on the wire. */
  d->reply_timeout_ms = timeout_ms + eg__dev_wire_ms(d, eg_slip_max_encoded(len) / 2 + len / 2) + 20;
  eg__dev_log(d, "TX %s (%zu bytes at %u baud)", eg_op_name(d->pkt[1]), len, d->cur_baud);
  if (!eg__dev_send_frame(d, d->pkt, len, false)) return;
  eg__dev_timing_open(d, d->pkt[1], req_seq(d), len, 0);
  eg__dev_arm(d, d->reply_timeout_ms);
}

void eg__dev_resend(eg_dev *d, const char *why) {
  eg__dev_log(d, "%s: %s, sending it again (attempt %d of %d)", eg_op_name(d->expect_op), why, d->cmd_tries + 1,
              EG_DEV_CMD_ATTEMPTS);
  d->skipped_frames = 0;
  if (!eg__dev_send_frame(d, d->pkt, d->pkt_len, false)) return;
  eg__dev_timing_open(d, d->pkt[1], req_seq(d), d->pkt_len, (uint16_t)(d->cmd_tries + 1));
  eg__dev_arm(d, d->reply_timeout_ms);
}

void eg__dev_drain(eg_dev *d) { eg_link_drain(&d->link); }

bool eg__dev_switch_baud(eg_dev *d, uint32_t baud) {
  const eg_err e = eg_link_set_baud(&d->link, baud);
  if (e != EG_OK) {
    eg__dev_fail(d, e, EG_OP_CHANGE_BAUDRATE, "port %s: cannot set %u baud: %s", d->port_name, baud,
                 d->link.port.errmsg);
    return false;
  }
  d->cur_baud = baud;
  d->rec.baud = baud;
  return true;
}

/* Commands that are safe to send again after a lost or refused reply (line
 * noise: a dropped byte makes the ROM answer 0x05 or 0x07, or nothing).
 * Not CHANGE_BAUDRATE (the chip may have switched), not MEM_END or the
 * *_END commands (the chip may have acted), not READ_FLASH (streaming). */
static bool retryable(uint8_t op) {
  switch (op) {
  case EG_OP_READ_REG:
  case EG_OP_WRITE_REG:
  case EG_OP_SPI_ATTACH:
  case EG_OP_SPI_SET_PARAMS:
  case EG_OP_MEM_BEGIN:
  case EG_OP_MEM_DATA:
  case EG_OP_FLASH_BEGIN:
  case EG_OP_FLASH_DATA:
  case EG_OP_FLASH_DEFL_BEGIN:
  case EG_OP_FLASH_DEFL_DATA:
  case EG_OP_SPI_FLASH_MD5:
  case EG_OP_READ_FLASH_SLOW:
  case EG_OP_ERASE_REGION:
  case EG_OP_ERASE_FLASH:
    return true;
  }
  return false;
}

/* ------------------------------------------------------ register scripts */

/* Where a finished script continues: by the state that ran it. */
static void script_done(eg_dev *d) {
  d->nscript = d->script_i = 0;
  switch (d->state) {
  case EG_DS_IDENTIFY:
    eg__dev_identified(d);
    return;
  case EG_DS_USB_PREP:
  case EG_DS_FLASH_POWER:
    eg__dev_bringup_next(d);
    return;
  case EG_DS_FLASH_ID:
    eg__dev_flash_id_done(d);
    return;
  case EG_DS_AFTER_SCRIPT:
    eg__dev_after_script_done(d);
    return;
  case EG_DS_IDLE:
  case EG_DS_OPENING:
  case EG_DS_RESETTING:
  case EG_DS_SYNC_WAIT:
  case EG_DS_SYNC_MORE:
  case EG_DS_SYNC_PAUSE:
  case EG_DS_SECINFO:
  case EG_DS_SECINFO_DRAIN:
  case EG_DS_MAGIC:
  case EG_DS_ROM_BAUD:
  case EG_DS_ROM_BAUD_SETTLE:
  case EG_DS_STUB_MEM:
  case EG_DS_STUB_MEM_END:
  case EG_DS_STUB_OHAI:
  case EG_DS_STUB_BAUD:
  case EG_DS_STUB_BAUD_SETTLE:
  case EG_DS_BAUD_DOWN:
  case EG_DS_BAUD_DOWN_SETTLE:
  case EG_DS_ATTACH:
  case EG_DS_SET_PARAMS:
  case EG_DS_GATE:
  case EG_DS_SKIP_CHECK:
  case EG_DS_ERASE:
  case EG_DS_WRITE_BEGIN:
  case EG_DS_WRITE_DATA:
  case EG_DS_WRITE_END:
  case EG_DS_VERIFY:
  case EG_DS_READ_BEGIN:
  case EG_DS_READ_DATA:
  case EG_DS_READ_SLOW:
  case EG_DS_AFTER_WAIT:
  case EG_DS_AFTER_RESET:
  case EG_DS_AFTER_BEGIN:
  case EG_DS_AFTER_END:
  case EG_DS_DONE:
  case EG_DS__COUNT:
    eg__dev_fail(d, EG_INVAL, -1, "internal: a register script ended in state %s", eg_dev_state_name(d->state));
    return;
  }
}

static void script_step(eg_dev *d) {
  if (d->script_i >= d->nscript) {
    script_done(d);
    return;
  }
  const eg_regop *op = &d->script[d->script_i];
  size_t len;
  switch (op->kind) {
  case 'R':
  case 'P':
    len = eg_req_read_reg(d->pkt, op->addr);
    break;
  case 'S':
    len = eg_req_write_reg(d->pkt, op->addr, d->reg_slot[op->slot], 0xFFFFFFFF, 0);
    break;
  case 'O':
    len = eg_req_write_reg(d->pkt, op->addr, d->reg_slot[op->slot] | op->value, 0xFFFFFFFF, 0);
    break;
  case 'A':
    len = eg_req_write_reg(d->pkt, op->addr, d->reg_slot[op->slot] & ~op->value, 0xFFFFFFFF, 0);
    break;
  case 'D':
    d->script_delay = true;
    d->script_i++;
    eg__dev_arm(d, (op->value + 999) / 1000);
    return;
  default:
    len = eg_req_write_reg(d->pkt, op->addr, op->value, op->mask ? op->mask : 0xFFFFFFFF, 0);
    break;
  }
  eg__dev_request(d, d->state, len, 0, d->cfg->timeouts.command_ms);
}

void eg__dev_script_run(eg_dev *d, eg_dev_state s, size_t n) {
  eg__dev_enter(d, s);
  d->nscript = n;
  d->script_i = 0;
  d->poll_count = 0;
  script_step(d);
}

size_t eg__dev_script_add(eg_dev *d, size_t n, eg_regscript rs) {
  /* A read-modify-write reads into the slot after the script's own. */
  for (size_t i = 0; i < rs.n && n + 2 <= EG_DEV_REGS; i++) {
    const eg_regwrite *w = &rs.ops[i];
    const uint8_t slot = EG_DEV_REGS - 1;
    switch (w->kind) {
    case EG_REGW_WRITE:
      d->script[n++] = (eg_regop){'W', 0, w->addr, w->value, w->mask, w->ignore_error};
      break;
    case EG_REGW_SET_BITS:
    case EG_REGW_CLEAR_BITS:
      d->script[n++] = (eg_regop){'R', slot, w->addr, 0, 0, w->ignore_error};
      d->script[n++] = (eg_regop){w->kind == EG_REGW_SET_BITS ? 'O' : 'A', slot, w->addr, w->value, 0, w->ignore_error};
      break;
    case EG_REGW_DELAY_US:
      d->script[n++] = (eg_regop){'D', 0, 0, w->value, 0, false};
      break;
    }
  }
  return n;
}

/* A script step that may fail (esptool's try/except) moves on. */
static bool script_skip_error(eg_dev *d) {
  if (d->script_i >= d->nscript || !d->script[d->script_i].ignore_error) return false;
  eg__dev_log(d, "register 0x%08x: no answer or refused; ignored as esptool does", d->script[d->script_i].addr);
  d->script_i++;
  script_step(d);
  return true;
}

void eg__dev_script_reply(eg_dev *d, const eg_resp *r) {
  const eg_regop *op = &d->script[d->script_i];
  if (!r->ok) {
    if (script_skip_error(d)) return;
    eg__dev_fail_status(d, r, op->kind == 'R' || op->kind == 'P' ? "register read" : "register write");
    return;
  }
  if (op->kind == 'R') d->reg_slot[op->slot] = r->value;
  if (op->kind == 'P' && (r->value & op->value)) {
    if (++d->poll_count >= RDID_POLLS) {
      eg__dev_fail(d, EG_TIMEOUT, EG_OP_READ_REG, "port %s: SPI command did not complete (register 0x%08x)",
                   d->port_name, op->addr);
      return;
    }
    script_step(d); /* poll again */
    return;
  }
  d->poll_count = 0;
  d->script_i++;
  script_step(d);
}

/* ------------------------------------------------------------ reset plans */

/* Set the lines of each step and wait its time; on_timer comes back here. */
static void reset_continue(eg_dev *d) {
  const eg_dev_state s = d->state;
  for (;;) {
    const eg_reset_step *st = &d->reset_seq[d->reset_step];
    if (st->dtr == EG_RESET_END) {
      if (s == EG_DS_RESETTING)
        eg__dev_reset_done(d);
      else
        eg__dev_after_reset_done(d);
      return;
    }
    const eg_err e = eg_link_set_lines(&d->link, st->dtr, st->rts);
    if (e != EG_OK && (e == EG_PORT_GONE || !eg_link_is_up(&d->link))) {
      /* The port went while we reset the chip (its own USB port left the
       * bus): the link's loss, handled as such. */
      char msg[384];
      snprintf(msg, sizeof msg, "%s", d->link.port.errmsg[0] ? d->link.port.errmsg : eg_strerror(e));
      eg_link_stop(&d->link);
      link_lost(d, EG_PORT_GONE, msg);
      return;
    }
    if (e != EG_OK) {
      eg__dev_fail(d, e, -1, "port %s: cannot set DTR/RTS: %s", d->port_name,
                   d->link.port.errmsg[0] ? d->link.port.errmsg : eg_strerror(e));
      return;
    }
    d->reset_step++;
    if (st->wait_ms) {
      eg__dev_arm(d, st->wait_ms);
      return;
    }
  }
}

void eg__dev_reset_run(eg_dev *d, eg_dev_state s) {
  eg__dev_enter(d, s);
  d->reset_step = 0;
  reset_continue(d);
}

/* -------------------------------------------------------- boot log text */

static void bootlog_add(eg_dev *d, const uint8_t *p, size_t n) {
  /* While probing at the transfer rate, text printed at the ROM's 115200
   * arrives as garbage: keep only what was heard at the connect rate. */
  if ((d->stage == EG_STAGE_SYNC || d->stage == EG_STAGE_RESET) && d->cur_baud != d->cfg->connect_baud) return;
  for (size_t i = 0; i < n; i++) {
    if (d->bootlog_len + 1 >= sizeof d->bootlog) {
      /* Keep the newest text, dropping whole lines so a boot line such as
       * "rst:0x1 (POWERON_RESET),boot:0x13 (...)" is never cut in two. */
      size_t cut = sizeof d->bootlog / 2;
      while (cut < d->bootlog_len && d->bootlog[cut - 1] != '\n') cut++;
      if (cut >= d->bootlog_len) cut = sizeof d->bootlog / 2;
      memmove(d->bootlog, d->bootlog + cut, d->bootlog_len - cut);
      d->bootlog_len -= cut;
    }
    d->bootlog[d->bootlog_len++] = (char)p[i];
  }
  d->bootlog[d->bootlog_len] = '\0';
}

/* ------------------------------------------------------------- replies */

/* --before no-reset-no-sync: nothing says whether the ROM (4 status bytes
 * on the ESP32 family) or a stub (2) is listening. The first reply to our
 * opcode tells: its size field is the expected data plus the status. */
static void learn_status_len(eg_dev *d, const uint8_t *frame, size_t len) {
  if (d->status_len || len < EG_RESP_HDR || frame[0] != 0x01 || frame[1] != d->expect_op) return;
  const size_t size = eg_get_u16(frame + 2);
  if (size < d->expect_data) return;
  const size_t sl = size - d->expect_data;
  if (sl != EG_STATUS_STUB && sl != EG_STATUS_ROM_ESP32) return;
  d->status_len = (uint8_t)sl;
  d->stub_running = sl == EG_STATUS_STUB; /* the ESP8266 ROM also says 2: corrected once the chip is known */
  eg__dev_log(d, "no sync: %zu status bytes, %s", sl, d->stub_running ? "a stub is running" : "the ROM is listening");
}

/* A matching reply, by state: what it means. */
static void dispatch_reply(eg_dev *d, const eg_resp *r, const uint8_t *frame, size_t len) {
  switch (d->state) {
  case EG_DS_SECINFO:
    eg__dev_secinfo_reply(d, frame, len);
    return;
  case EG_DS_MAGIC:
    eg__dev_magic_reply(d, r);
    return;
  case EG_DS_IDENTIFY:
  case EG_DS_USB_PREP:
  case EG_DS_FLASH_POWER:
  case EG_DS_FLASH_ID:
  case EG_DS_AFTER_SCRIPT:
    eg__dev_script_reply(d, r);
    return;
  case EG_DS_ROM_BAUD:
  case EG_DS_STUB_BAUD:
    eg__dev_baud_reply(d, r);
    return;
  case EG_DS_BAUD_DOWN:
    eg__dev_baud_down_reply(d, r);
    return;
  case EG_DS_STUB_MEM:
    eg__dev_mem_reply(d, r);
    return;
  case EG_DS_STUB_MEM_END:
    eg__dev_mem_end_reply(d); /* esptool ignores MEM_END errors from the ROM; the greeting decides */
    return;
  case EG_DS_ATTACH:
    eg__dev_attach_reply(d, r);
    return;
  case EG_DS_SET_PARAMS:
    eg__dev_set_params_reply(d, r);
    return;
  case EG_DS_ERASE:
    eg__dev_erase_reply(d, r);
    return;
  case EG_DS_WRITE_BEGIN:
    eg__dev_write_begin_reply(d, r);
    return;
  case EG_DS_WRITE_DATA:
    eg__dev_write_data_reply(d, r);
    return;
  case EG_DS_WRITE_END:
    eg__dev_write_end_reply(d, r);
    return;
  case EG_DS_SKIP_CHECK:
  case EG_DS_VERIFY:
    eg__dev_md5_reply(d, r);
    return;
  case EG_DS_READ_BEGIN:
    eg__dev_read_begin_reply(d, r);
    return;
  case EG_DS_READ_SLOW:
    eg__dev_read_slow_reply(d, r);
    return;
  case EG_DS_AFTER_BEGIN:
    eg__dev_after_begin_reply(d, r);
    return;
  case EG_DS_AFTER_END:
    eg__dev_after_end_reply(d, r);
    return;
  case EG_DS_IDLE:
  case EG_DS_OPENING:
  case EG_DS_RESETTING:
  case EG_DS_SYNC_WAIT:
  case EG_DS_SYNC_MORE:
  case EG_DS_SYNC_PAUSE:
  case EG_DS_SECINFO_DRAIN:
  case EG_DS_ROM_BAUD_SETTLE:
  case EG_DS_STUB_OHAI:
  case EG_DS_STUB_BAUD_SETTLE:
  case EG_DS_READ_DATA:
  case EG_DS_AFTER_RESET:
  case EG_DS_AFTER_WAIT:
  case EG_DS_BAUD_DOWN_SETTLE:
  case EG_DS_GATE:
  case EG_DS_DONE:
  case EG_DS__COUNT:
    return; /* no request of ours is outstanding: a stale frame */
  }
}

static void on_response(eg_dev *d, const uint8_t *frame, size_t len) {
  eg_resp r;
  learn_status_len(d, frame, len);
  const eg_err e = eg_resp_parse(frame, len, eg__dev_status_len(d), d->expect_data, &r);
  if (e != EG_OK || r.op != d->expect_op) {
    /* Not our reply. The ROM's "unsupported command" echoes a stale opcode,
     * so recognise it by its status (§1.3). */
    if (e == EG_OK && !d->stub_running && eg_resp_is_rom_unsupported(&r)) {
      if (d->state == EG_DS_SECINFO) {
        eg__dev_enter(d, EG_DS_SECINFO_DRAIN);
        eg__dev_arm(d, UNSUPPORTED_DRAIN_MS);
        return;
      }
      eg_fault_set(&d->rec.fault, EG_UNSUPPORTED, d->stage, d->expect_op, "port %s: the ROM does not implement %s",
                   d->port_name, eg_op_name(d->expect_op));
      eg_fault_status(&d->rec.fault, r.status, r.nstatus);
      eg__dev_finish(d, EG_UNSUPPORTED);
      return;
    }
    if (++d->skipped_frames > MAX_SKIPPED) {
      eg__dev_fail(d, EG_PROTO_GARBAGE, d->expect_op, "port %s: %d frames without a reply to %s", d->port_name,
                   d->skipped_frames, eg_op_name(d->expect_op));
      return;
    }
    eg__dev_log(d, "skipped frame op=0x%02x len=%zu (%s)", len > 1 ? frame[1] : 0, len, eg_err_name(e));
    return;
  }
  uv_timer_stop(&d->timer);
  eg__dev_timing_close(d, len);
  eg__dev_log(d, "RX %s %s value=0x%08x", eg_op_name(r.op), r.ok ? "ok" : "FAIL", r.value);
  if (!r.ok && retryable(r.op) && d->state != EG_DS_SECINFO) {
    /* Keep the chip's first answer: it is the root cause, a resend may be
     * refused differently (the ROM then says 0x05 for a block out of order). */
    if (!d->have_refusal) {
      d->first_refusal = r;
      d->have_refusal = true;
    }
    if (++d->cmd_tries < EG_DEV_CMD_ATTEMPTS) {
      char st[32];
      snprintf(st, sizeof st, "refused (%02x %02x)", r.status[0], r.status[1]);
      eg__dev_resend(d, st);
      return;
    }
    char what[160];
    snprintf(what, sizeof what, "refused %d times%s", EG_DEV_CMD_ATTEMPTS,
             memcmp(r.status, d->first_refusal.status, 2) ? " (first answer kept; later ones differed)" : "");
    if (d->state == EG_DS_WRITE_DATA)
      snprintf(what + strlen(what), sizeof what - strlen(what), " at block %u of %u of the image at 0x%x", d->blk,
               d->nblk, d->wimg->img.offset);
    eg__dev_fail_status(d, &d->first_refusal, what);
    return;
  }
  dispatch_reply(d, &r, frame, len);
}

static bool is_ohai(const uint8_t *p, size_t n) { return n == 4 && memcmp(p, "OHAI", 4) == 0; }

/* A whole frame from the link, by what the state waits for. */
static void on_frame(eg_link *l, const uint8_t *frame, size_t len) {
  eg_dev *d = l->data;
  if (d->finished) return;
  switch (eg_dev_state_awaits(d->state)) {
  case EG_AWAIT_SYNC:
    eg__dev_sync_frame(d, frame, len);
    return;
  case EG_AWAIT_OHAI:
    if (is_ohai(frame, len)) {
      eg__dev_stub_started(d);
      return;
    }
    if (d->state == EG_DS_STUB_MEM_END) on_response(d, frame, len);
    return;
  case EG_AWAIT_DATA:
    eg__dev_read_frame(d, frame, len);
    return;
  case EG_AWAIT_REPLY:
    on_response(d, frame, len);
    return;
  case EG_AWAIT_NONE:
  case EG_AWAIT_LINK:
  case EG_AWAIT_TIMER:
    return; /* stale frames (late SYNC replies, garbage after a baud change) */
  }
}

static void on_noise(eg_link *l, const uint8_t *bytes, size_t len) {
  eg_dev *d = l->data;
  if (!d->finished) bootlog_add(d, bytes, len);
}

static void on_up(eg_link *l) {
  eg_dev *d = l->data;
  if (d->finished) return;
  if (d->away_t0) {
    const uint32_t waited = (uint32_t)(uv_now(d->loop) - d->away_t0);
    d->rec.port_wait_ms += waited;
    d->away_t0 = 0;
    eg__dev_log(d, "port %s is back after %u ms", d->port_name, waited);
    /* It left because our reset restarted the chip's USB stack: the chip
     * is in the loader now; another reset would only send it away again. */
    if (d->away_in_reset) {
      d->away_in_reset = false;
      eg__dev_reset_done(d);
      return;
    }
  }
  eg__dev_connect_up(d);
}

static void part_closed(eg_dev *d);

/* Off the loop: where is the slot's USB location now? */
static void locate_work(uv_work_t *w) {
  eg_dev *d = w->data;
  d->located_err = eg_port_find_location(d->rec.usb_location, d->located, sizeof d->located);
}

static void locate_done(uv_work_t *w, int status) {
  eg_dev *d = w->data;
  d->locating = false;
  if (d->closing) {
    part_closed(d);
    return;
  }
  d->handles_open--;
  if (status != 0 || d->located_err != EG_OK || d->finished || !d->away_t0 || !strcmp(d->located, d->port_name))
    return;
  eg__dev_log(d, "port %s came back at USB location %s as %s", d->port_name, d->rec.usb_location, d->located);
  eg_unit_fallback(&d->rec, "port %s came back as %s (USB location %s)", d->port_name, d->located,
                   d->rec.usb_location);
  snprintf(d->port_name, sizeof d->port_name, "%s", d->located);
  eg_link_rename(&d->link, d->located); /* the reopen that is polling uses it */
}

/* Waiting for a port bound to a USB location: look there too. */
static void locate(eg_dev *d) {
  if (d->locating || !d->rec.usb_location[0] || strstr(d->port_name, "://")) return;
  d->locate_req.data = d;
  if (uv_queue_work(d->loop, &d->locate_req, locate_work, locate_done) != 0) return;
  d->locating = true;
  d->handles_open++;
}

/* The port failed. Before the chip has answered, reopen it (within the
 * connect attempts); after, the chip's state is gone: the unit fails. */
static void link_lost(eg_dev *d, eg_err code, const char *msg) {
  if (d->finished) return;
  /* The --after reset was given and the chip restarted: its own USB port
   * leaving the bus now is the reset working, not a failure. */
  if (d->state == EG_DS_AFTER_RESET || d->state == EG_DS_AFTER_WAIT ||
      (d->state == EG_DS_AFTER_SCRIPT && d->after_kind == EG_HARD_RESET_WATCHDOG)) {
    eg__dev_log(d, "port left after the reset (%s): the chip restarted", msg);
    uv_timer_stop(&d->timer);
    eg__dev_finish(d, EG_OK);
    return;
  }
  uv_timer_stop(&d->timer);
  if (eg__dev_may_reopen(d)) {
    /* Gone from the system (no device node now), or dropped while we were
     * resetting the chip (its own USB port left the bus: a URL's server
     * refuses us until it is back): it is re-enumerating; wait for the same
     * name to come back instead of counting failures. */
    const bool absent = !strstr(d->port_name, "://") && eg_port_check(d->port_name, NULL, NULL, 0) != EG_OK;
    const uint64_t now = uv_now(d->loop);
    /* Our reset sent it away when it went during the reset or the SYNCs
     * right after it (the chip answered nothing yet: may_reopen). */
    const bool resetting = d->cfg->before == EG_BEFORE_DEFAULT_RESET || d->cfg->before == EG_BEFORE_USB_RESET;
    const bool by_reset = resetting && (d->stage == EG_STAGE_RESET || d->stage == EG_STAGE_SYNC);
    /* One wait per unit: once given up on, the reopens below are quick
     * (a board pulled while connecting frees its slot after one
     * timeouts.port_back_ms, not one per reopen). */
    const bool waiting = !d->away_t0 || now - d->away_t0 < d->cfg->timeouts.port_back_ms;
    if ((absent || by_reset || d->away_t0) && !d->away_spent && waiting) {
      if (!d->away_t0) {
        d->away_t0 = now;
        d->away_in_reset = by_reset;
        eg__dev_log(d, "port %s left (%s): waiting for it to come back", d->port_name, msg);
      }
      if (absent) locate(d);
      eg__dev_enter(d, EG_DS_OPENING);
      eg_link_reopen(&d->link, PORT_BACK_POLL_MS);
      return;
    }
    if (d->away_t0) { /* given up on: the wait is part of the record */
      d->rec.port_wait_ms += (uint32_t)(now - d->away_t0);
      d->away_t0 = 0;
      d->away_spent = true;
    }
    if (d->reopens < MAX_REOPENS) {
      d->reopens++;
      eg__dev_log(d, "port error before the chip answered (%s): reopening (%d of %d)", msg, d->reopens, MAX_REOPENS);
      eg__dev_enter(d, EG_DS_OPENING);
      eg_link_reopen(&d->link, REOPEN_DELAY_MS);
      return;
    }
  }
  if (d->stage == EG_STAGE_OPEN) {
    eg__dev_fail(d, code, -1, "%s", msg);
    return;
  }
  eg__dev_fail(d, code == EG_PORT_OPEN ? EG_PORT_OPEN : EG_PORT_GONE, d->expect_op ? d->expect_op : -1,
               "%s (during %s)", msg, eg_stage_name(d->stage));
}

static void on_link_error(eg_link *l, eg_err code, const char *msg) { link_lost(l->data, code, msg); }

static const eg_link_callbacks link_callbacks = {
  .on_up = on_up, .on_frame = on_frame, .on_noise = on_noise, .on_error = on_link_error};

/* ------------------------------------------------------------- timeouts */

/* No reply in time to a command: resend an idempotent one, else fail. */
static void command_timeout(eg_dev *d) {
  if (retryable(d->expect_op) && ++d->cmd_tries < EG_DEV_CMD_ATTEMPTS) {
    eg__dev_resend(d, "no reply");
    return;
  }
  if (eg_dev_state_awaits(d->state) == EG_AWAIT_REPLY && d->nscript && script_skip_error(d)) return;
  eg__dev_fail(d, EG_TIMEOUT, d->expect_op, "port %s: no reply to %s within %u ms%s", d->port_name,
               eg_op_name(d->expect_op), d->reply_timeout_ms, retryable(d->expect_op) ? " (3 attempts)" : "");
}

static void on_timer(uv_timer_t *t) {
  eg_dev *d = t->data;
  if (d->finished) return;
  if (d->script_delay) {
    d->script_delay = false;
    script_step(d);
    return;
  }
  switch (d->state) {
  case EG_DS_RESETTING:
  case EG_DS_AFTER_RESET:
    reset_continue(d);
    return;
  case EG_DS_SYNC_WAIT:
    eg__dev_sync_timeout(d);
    return;
  case EG_DS_SYNC_PAUSE:
    eg__dev_send_sync(d);
    return;
  case EG_DS_SYNC_MORE:
    eg__dev_synced(d); /* fewer than 8 replies: good enough */
    return;
  case EG_DS_SECINFO:
    eg__dev_read_magic(d); /* no answer at all: fall back to the magic value */
    return;
  case EG_DS_SECINFO_DRAIN:
    eg__dev_drain(d);
    eg__dev_read_magic(d);
    return;
  case EG_DS_ROM_BAUD_SETTLE:
  case EG_DS_STUB_BAUD_SETTLE:
    eg__dev_baud_settled(d);
    return;
  case EG_DS_BAUD_DOWN:
    eg__dev_baud_down_reply(d, NULL); /* it may have switched all the same */
    return;
  case EG_DS_BAUD_DOWN_SETTLE:
    eg__dev_baud_down_settled(d);
    return;
  case EG_DS_STUB_MEM_END:
    eg__dev_mem_end_reply(d); /* the ROM's reply may never come; the greeting decides */
    return;
  case EG_DS_STUB_OHAI:
    eg__dev_fail(d, EG_STUB_NO_OHAI, EG_OP_MEM_END, "port %s: the flasher stub did not start (no OHAI after MEM_END)",
                 d->port_name);
    return;
  case EG_DS_WRITE_DATA:
    eg__dev_write_timeout(d);
    return;
  case EG_DS_READ_DATA:
    eg__dev_fail(d, EG_TIMEOUT, EG_OP_READ_FLASH, "port %s: READ_FLASH stalled at %u of %u bytes", d->port_name,
                 d->read_got, d->read_size);
    return;
  case EG_DS_AFTER_WAIT:
    eg__dev_finish(d, EG_OK);
    return;
  case EG_DS_MAGIC:
  case EG_DS_IDENTIFY:
  case EG_DS_USB_PREP:
  case EG_DS_FLASH_POWER:
  case EG_DS_AFTER_SCRIPT:
  case EG_DS_ROM_BAUD:
  case EG_DS_STUB_MEM:
  case EG_DS_STUB_BAUD:
  case EG_DS_ATTACH:
  case EG_DS_FLASH_ID:
  case EG_DS_SET_PARAMS:
  case EG_DS_ERASE:
  case EG_DS_WRITE_BEGIN:
  case EG_DS_WRITE_END:
  case EG_DS_SKIP_CHECK:
  case EG_DS_VERIFY:
  case EG_DS_READ_BEGIN:
  case EG_DS_READ_SLOW:
  case EG_DS_AFTER_BEGIN:
  case EG_DS_AFTER_END:
    command_timeout(d);
    return;
  case EG_DS_IDLE:
  case EG_DS_OPENING: /* the link times out a connect itself */
  case EG_DS_GATE:    /* the caller owns this wait */
  case EG_DS_DONE:
  case EG_DS__COUNT:
    return;
  }
}

/* ----------------------------------------------------------------- API */

eg_err eg_dev_init(eg_dev *d, uv_loop_t *loop, const char *port_name, const eg_dev_config *cfg, const eg_dev_op *ops,
                   size_t nops, const eg_dev_callbacks *cb, void *data) {
  memset(d, 0, sizeof *d);
  d->loop = loop;
  d->cfg = cfg;
  d->ops = ops;
  d->nops = nops;
  if (cb) d->cb = *cb;
  d->data = data;
  snprintf(d->port_name, sizeof d->port_name, "%s", port_name);
  eg_unit_record_init(&d->rec);
  snprintf(d->rec.port, sizeof d->rec.port, "%s", port_name);
  if (nops) {
    d->read_bufs = calloc(nops, sizeof *d->read_bufs);
    if (!d->read_bufs) return EG_NOMEM;
  }
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  eg_link_init(&d->link, loop, &link_callbacks, d);
  d->handles_open = 2;
  d->stage = EG_STAGE_NONE;
  d->state = EG_DS_IDLE;
  return EG_OK;
}

void eg_dev_start(eg_dev *d) {
  d->rec.started_ms = eg_clock_epoch_ms();
  d->stage_t0 = uv_now(d->loop);
  eg__dev_enter(d, EG_DS_OPENING);
  const eg_dev_config *c = d->cfg;
  const uint32_t open_baud = c->before == EG_BEFORE_NO_RESET_NO_SYNC ? c->baud : c->connect_baud;
  d->cur_baud = open_baud;
  d->rec.baud = open_baud;
  d->link_baud = c->baud;
  d->rec.baud_requested = c->baud;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_link_open(&d->link, d->port_name, open_baud, c->timeouts.command_ms, &f);
  if (e != EG_OK) {
    d->rec.fault = f;
    d->rec.fault.stage = d->stage;
    eg__dev_finish(d, e);
  }
}

void eg_dev_gate(eg_dev *d, eg_err result, const char *why) {
  if (d->finished || d->state != EG_DS_GATE) return;
  if (result == EG_OK) {
    eg__dev_ops_start(d);
    return;
  }
  eg__dev_fail(d, result, -1, "%s", why && *why ? why : eg_strerror(result));
}

void eg_dev_abort(eg_dev *d) {
  if (d->finished) return;
  eg_fault_set(&d->rec.fault, EG_ABORTED, d->stage, d->expect_op ? d->expect_op : -1,
               "stopped by the operator during %s", eg_stage_name(d->stage));
  eg__dev_finish(d, EG_ABORTED);
}

static void free_reads(eg_dev *d) {
  for (size_t i = 0; d->read_bufs && i < d->nops; i++) free(d->read_bufs[i]);
  free(d->read_bufs);
  d->read_bufs = NULL;
}

static void part_closed(eg_dev *d) {
  if (--d->handles_open == 0) {
    free_reads(d);
    if (d->close_cb) d->close_cb(d);
  }
}

static void timer_closed(uv_handle_t *h) { part_closed(h->data); }
static void link_closed(eg_link *l) { part_closed(l->data); }

void eg_dev_close(eg_dev *d, void (*close_cb)(eg_dev *d)) {
  if (d->closing) return;
  d->closing = true;
  d->close_cb = close_cb;
  d->finished = true; /* silent teardown when it never finished: no on_done */
  free(d->tm);
  d->tm = NULL;
  eg__dev_adapt_free(d);
  if (d->md5ctx) {
    EVP_MD_CTX_free(d->md5ctx);
    d->md5ctx = NULL;
  }
  uv_close((uv_handle_t *)&d->timer, timer_closed);
  eg_link_close(&d->link, link_closed);
}

const uint8_t *eg_dev_read_data(const eg_dev *d, size_t op_index, uint32_t *len) {
  if (op_index >= d->nops || d->ops[op_index].kind != EG_OPK_READ || !d->read_bufs) return NULL;
  if (len) *len = d->ops[op_index].size ? d->ops[op_index].size : d->flash_size;
  return d->read_bufs[op_index];
}

uint8_t *eg_dev_take_read_data(eg_dev *d, size_t op_index, uint32_t *len) {
  uint8_t *p = (uint8_t *)eg_dev_read_data(d, op_index, len);
  if (p) d->read_bufs[op_index] = NULL;
  return p;
}
