/* dev_adapt.c - the adaptive link: a unit whose line misbehaves at the
 * transfer rate falls back instead of failing (issue 9.3).
 *
 * 1. Raising the rate in the ROM before the stub upload is espgang's own
 *    optimisation (esptool changes the rate through the stub). If anything
 *    fails between the ROM's CHANGE_BAUDRATE and the stub's first reply (a
 *    ROM that mis-set its divider, a line that garbles at the new rate), the
 *    unit goes back to the connect rate, resets the chip into its loader
 *    again (the ROM keeps a wrong divider until it is reset) and continues
 *    esptool's way: stub upload at the connect rate, then the stub sets the
 *    rate. Once per unit.
 * 2. With the stub running, a request that keeps failing (3 attempts) with
 *    the signs of a garbling line - no reply, a reply that does not parse,
 *    or the loader saying the data arrived damaged - makes the unit step
 *    down (921600 -> 460800 -> 230400 -> 115200): the stub is told the new
 *    rate, the host follows, and the same request goes again (a write goes
 *    on from the block that failed). When the line is so bad that the stub
 *    never hears the new rate (no reply), the unit reconnects as in 1 - a
 *    reset, the stub at the connect rate, then the lower rate - and the
 *    operation it was in starts again (a compressed image cannot resume in
 *    the middle of its stream). At most three steps.
 * Each fallback is one line in the unit's record (fallback_log), so the
 * log and the reports show it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_int.h"

#define MAX_STEPS 3
#define SETTLE_MS 50 /* esptool's wait after a rate change */

struct eg_dev_held {
  eg_dev_state state;
  size_t len, expect_data;
  uint32_t timeout_ms;
  uint8_t pkt[EG_MAX_PACKET + 64];
  /* The failure that started a step down, kept until the fallback has
   * worked: when it does not, that failure is what the unit records (the
   * fallback's own trouble goes into fallback_log). */
  bool pending;
  eg_fault orig;
};

/* The signs of a line that damages bytes, rather than a loader that means
 * what it says. */
static bool garbling(eg_err code, const eg_resp *r, bool stub) {
  static const eg_err line_trouble[] = {
    EG_TIMEOUT, EG_PROTO_GARBAGE, EG_PROTO_SHORT, EG_PROTO_SIZE, EG_PROTO_DIRECTION, EG_SLIP_ESCAPE,
    EG_SLIP_OVERSIZE, EG_STUB_NO_OHAI,
    EG_UNSUPPORTED, /* a damaged opcode reads as an unknown command */
  };
  for (size_t i = 0; i < sizeof line_trouble / sizeof line_trouble[0]; i++)
    if (code == line_trouble[i]) return true;
  if (code != EG_DEVICE_STATUS || !r) return false;
  /* ROM: receive failed, invalid message, checksum error (protocol doc
   * §1.4). Stub: bad data length, bad checksum, invalid command, not
   * enough / too much data. */
  if (!stub) return r->status[1] == 0x04 || r->status[1] == 0x05 || r->status[1] == 0x07;
  return r->status[0] == 0xC0 || r->status[0] == 0xC1 || r->status[0] == 0xC3 || r->status[0] == 0xC8 ||
         r->status[0] == 0xC9;
}

/* The next standard rate below `baud`, not below the connect rate. */
static uint32_t lower(uint32_t baud, uint32_t floor) {
  static const uint32_t rates[] = {3000000, 2000000, 1500000, 921600, 460800, 230400, 115200};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
    if (rates[i] < baud) return rates[i] < floor ? floor : rates[i];
  return floor;
}

static void where(const eg_dev *d, char *buf, size_t n) {
  if (d->state == EG_DS_WRITE_DATA && d->wimg)
    snprintf(buf, n, "image 0x%x block %u of %u", d->wimg->img.offset, d->blk, d->nblk);
  else
    snprintf(buf, n, "%s", eg_op_name(d->expect_op));
}

/* Back to the connect rate through a reset (the chip's side cannot be
 * told anything at the current one); the bring-up aims at link_baud. */
static void reconnect(eg_dev *d) {
  d->rom_baud_off = true;
  d->rom_baud_raised = false;
  d->stub_running = false;
  d->stub_found = false;
  d->stub_uploaded = false;
  d->bringup_done = 0;
  uv_timer_stop(&d->timer);
  if (!eg__dev_switch_baud(d, d->cfg->connect_baud)) return;
  if (d->attempt >= d->cfg->connect_attempts) d->attempt = d->cfg->connect_attempts - 1;
  eg__dev_connect_attempt(d);
}

static bool resets(const eg_dev *d) {
  return d->link.port.can_reset && (d->cfg->before == EG_BEFORE_DEFAULT_RESET || d->cfg->before == EG_BEFORE_USB_RESET);
}

/* 1: back to the connect rate, reset, stub first. Without a reset the ROM
 * keeps the rate it cannot be heard at: the unit fails, saying so. */
static bool rom_fallback(eg_dev *d, const char *why) {
  const uint32_t target = d->link_baud;
  if (!resets(d)) {
    d->rom_baud_off = true; /* not absorbed: the failure is recorded as it is, with this line */
    eg_unit_fallback(&d->rec, "ROM CHANGE_BAUDRATE to %u failed (%s); no reset on this port to fall back", target,
                     why);
    return false;
  }
  eg_unit_fallback(&d->rec, "ROM CHANGE_BAUDRATE to %u failed (%s): reconnected at %u, the stub set the rate", target,
                   why, d->cfg->connect_baud);
  eg__dev_log(d, "the ROM at %u baud does not answer (%s): falling back to esptool's order", target, why);
  reconnect(d); /* one more connect attempt, with a reset where the port can */
  return true;
}

/* 2: one step down through the stub, then the held request again. */
static bool step_down(eg_dev *d, eg_err code, const eg_resp *r, const char *why) {
  if (!d->held && !(d->held = malloc(sizeof *d->held))) return false;
  const uint32_t from = d->cur_baud, to = lower(from, d->cfg->connect_baud);
  char at[96];
  where(d, at, sizeof at);
  eg_unit_fallback(&d->rec, "%u -> %u at %s (%s)", from, to, at, why);
  eg__dev_log(d, "stepping down %u -> %u at %s (%s)", from, to, at, why);
  d->steps_down++;
  d->link_baud = to;
  d->held->state = d->state;
  d->held->len = d->pkt_len;
  d->held->expect_data = d->expect_data;
  d->held->timeout_ms = d->req_timeout_ms;
  memcpy(d->held->pkt, d->pkt, d->pkt_len);
  d->held->pending = true;
  eg_fault_set(&d->held->orig, code, d->stage, r ? r->op : d->expect_op, "%s", why);
  if (r) eg_fault_status(&d->held->orig, r->status, r->nstatus);
  uv_timer_stop(&d->timer);
  /* The legacy stub needs the current rate to compute its divider. */
  eg__dev_request(d, EG_DS_BAUD_DOWN, eg_req_change_baud(d->pkt, to, from), 0, d->cfg->timeouts.command_ms);
  return true;
}

bool eg__dev_adapt(eg_dev *d, eg_err code, const eg_resp *r, const char *why) {
  if (d->finished || d->closing || !garbling(code, r, d->stub_running)) return false;
  /* A failure of the rate change itself is not retried by another one. */
  if (d->state == EG_DS_BAUD_DOWN || d->state == EG_DS_STUB_BAUD) return false;
  if (!d->stub_running && d->rom_baud_raised && !d->rom_baud_off) return rom_fallback(d, why);
  if (d->stub_running && eg_dev_state_awaits(d->state) == EG_AWAIT_REPLY && d->steps_down < MAX_STEPS &&
      d->cur_baud > d->cfg->connect_baud && d->link.port.caps.has_baud)
    return step_down(d, code, r, why);
  return false;
}

/* The stub's answer. None: the line garbles so badly that it never heard
 * us; reconnect through a reset where the port can, and start the
 * operation again. */
void eg__dev_baud_down_reply(eg_dev *d, const eg_resp *r) {
  if (r && !r->ok) {
    eg__dev_fail_status(d, r, "lower baud rate refused");
    return;
  }
  if (!r) {
    if (!resets(d)) {
      eg__dev_fail(d, EG_TIMEOUT, EG_OP_CHANGE_BAUDRATE,
                   "no answer to CHANGE_BAUDRATE at %u, and the port cannot reset the chip to fall back further",
                   d->cur_baud);
      return;
    }
    eg_unit_fallback(&d->rec, "no answer at %u: reset and reconnected at %u to reach %u; the operation started again",
                     d->cur_baud, d->cfg->connect_baud, d->link_baud);
    d->resume_ops = d->ops_started; /* before the operations: the bring-up simply runs on */
    reconnect(d);
    return;
  }
  if (!eg__dev_switch_baud(d, d->link_baud)) return;
  eg__dev_enter(d, EG_DS_BAUD_DOWN_SETTLE);
  eg__dev_arm(d, SETTLE_MS);
}

void eg__dev_baud_down_settled(eg_dev *d) {
  eg__dev_drain(d);
  if (d->finished) return;
  struct eg_dev_held *h = d->held;
  h->pending = false; /* the lower rate is in place: what fails now fails on its own */
  memcpy(d->pkt, h->pkt, h->len);
  eg__dev_request(d, h->state, h->len, h->expect_data, h->timeout_ms);
}

bool eg__dev_adapt_failed(eg_dev *d, eg_err code, const char *msg) {
  if (!d->held || !d->held->pending) return false;
  d->held->pending = false;
  eg_unit_fallback(&d->rec, "the fallback failed: %s/%s: %s", eg_stage_name(d->stage), eg_err_name(code), msg);
  d->rec.fault = d->held->orig;
  eg__dev_finish(d, d->held->orig.code);
  return true;
}

void eg__dev_adapt_resumed(eg_dev *d) {
  if (d->held) d->held->pending = false;
}

void eg__dev_adapt_free(eg_dev *d) {
  free(d->held);
  d->held = NULL;
}
