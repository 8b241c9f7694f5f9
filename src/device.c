/* device.c - the per-port protocol state machine (see device.h).
 *
 * Shape: every step sends at most one request and arms the one timer; the
 * reply (or the timer) moves the machine on. Replies are matched by opcode
 * as esptool does (up to 100 unrelated frames are skipped); the ROM's
 * "unsupported command" answer is recognised by its status bytes whatever
 * opcode it echoes. Facts: ../shared/docs/esp-serial-protocol.md.
 */
#include "device.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "proto.h"
#include "reset.h"

#define SYNC_TRIES 5          /* SYNC attempts per connect attempt (esptool) */
#define SYNC_PAUSE_MS 50      /* between SYNC tries */
#define SYNC_REPLIES 8        /* the ROM and the stubs answer SYNC 8 times */
#define UNSUPPORTED_DRAIN_MS 200 /* esptool sleeps 0.2 s to drain the repeated error */
#define BAUD_SETTLE_MS 50     /* esptool: "get rid of garbage sent during baud rate change" */
#define CMD_ATTEMPTS 3        /* esptool's WRITE_BLOCK_ATTEMPTS, for every resendable command */
#define MAX_SKIPPED 100       /* esptool reads up to 100 frames for a matching reply */
#define RDID_POLLS 10         /* esptool polls the SPI CMD register at most 10 times */
#define OHAI_TIMEOUT_MS 3000
#define READ_SLOW_LEN 64

/* ---------------------------------------------------------------- helpers */

static int64_t now_epoch_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void dev_log(eg_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dev_log(eg_dev *d, const char *fmt, ...) {
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
  /* Until something fails, the fault's stage tracks where the unit is (the
   * log shows it for units in progress). */
  if (d->rec.fault.code == EG_OK) d->rec.fault.stage = s;
  if (d->cb.on_stage) d->cb.on_stage(d, s);
}

static void finish(eg_dev *d, eg_err result);

/* Fail with the current stage. */
static void fail(eg_dev *d, eg_err code, int opcode, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(eg_dev *d, eg_err code, int opcode, const char *fmt, ...) {
  if (d->finished) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  eg_fault_set(&d->rec.fault, code, d->stage, opcode, "%s", msg);
  finish(d, code);
}

/* Fail because the chip answered a command with a failure status. */
static void fail_status(eg_dev *d, const eg_resp *r, const char *what) {
  char desc[128];
  eg_resp_describe(r, d->stub_running, desc, sizeof desc);
  eg_fault_set(&d->rec.fault, EG_DEVICE_STATUS, d->stage, r->op, "%s: %s %s", what,
               eg_op_name(r->op), desc);
  eg_fault_status(&d->rec.fault, r->status, r->nstatus);
  finish(d, EG_DEVICE_STATUS);
}

static uint32_t wire_ms(const eg_dev *d, size_t bytes) {
  const uint32_t baud = d->cur_baud ? d->cur_baud : 115200;
  return (uint32_t)((uint64_t)bytes * 10u * 1000u / baud);
}

/* ------------------------------------------------------------------- I/O */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_update(eg_dev *d) {
  if (d->finished || d->port.fd < 0) return;
  int ev = d->port.connecting ? UV_WRITABLE : UV_READABLE;
  /* The port may hold output of its own (RFC 2217: escaped data and
   * DTR/RTS/baud commands the socket has not taken yet). */
  if (d->tx_off < d->tx_len || eg_port_wants_write(&d->port)) ev |= UV_WRITABLE;
  if (ev == d->poll_events && d->poll_started) return;
  d->poll_events = ev;
  d->poll_started = true;
  uv_poll_start(&d->poll, ev, on_poll);
}

static void flush_tx(eg_dev *d) {
  /* What the port queued was issued before anything still in tx. */
  const eg_err pe = eg_port_wants_write(&d->port) ? eg_port_flush_pending(&d->port) : EG_OK;
  if (pe != EG_OK) {
    fail(d, pe, d->expect_op ? d->expect_op : -1, "%s", d->port.errmsg[0] ? d->port.errmsg : eg_strerror(pe));
    return;
  }
  while (d->tx_off < d->tx_len) {
    size_t done = 0;
    const eg_err e = eg_port_write(&d->port, d->tx + d->tx_off, d->tx_len - d->tx_off, &done);
    if (e != EG_OK) {
      fail(d, e, d->expect_op ? d->expect_op : -1, "%s", d->port.errmsg[0] ? d->port.errmsg : eg_strerror(e));
      return;
    }
    if (done == 0) break;
    d->tx_off += done;
    d->rec.bytes_tx += done;
  }
  if (d->tx_off == d->tx_len) d->tx_off = d->tx_len = 0;
  poll_update(d);
}

/* Queue one SLIP frame of `len` unescaped bytes. Several frames may queue
 * (READ_FLASH acks) but requests are sent one at a time. */
static void send_frame(eg_dev *d, const uint8_t *raw, size_t len) {
  if (d->tx_off > 0 && d->tx_off == d->tx_len) d->tx_off = d->tx_len = 0;
  if (d->tx_off > 0) { /* compact */
    memmove(d->tx, d->tx + d->tx_off, d->tx_len - d->tx_off);
    d->tx_len -= d->tx_off;
    d->tx_off = 0;
  }
  if (d->tx_len + eg_slip_max_encoded(len) > sizeof d->tx) {
    fail(d, EG_INVAL, raw[1], "internal: transmit buffer full");
    return;
  }
  d->tx_len += eg_slip_encode(d->tx + d->tx_len, raw, len);
  flush_tx(d);
}

static void on_timer(uv_timer_t *t);

static void arm(eg_dev *d, uint32_t ms) {
  uv_timer_start(&d->timer, on_timer, ms, 0);
}

/* Send the request in d->pkt and wait for a reply to its opcode. */
static void request(eg_dev *d, size_t len, size_t expect_data, uint32_t timeout_ms) {
  d->expect_op = d->pkt[1];
  d->expect_data = expect_data;
  d->skipped_frames = 0;
  d->pkt_len = len;
  d->cmd_tries = 0;
  d->have_refusal = false;
  /* The reply can only start once the request is on the wire. */
  d->reply_timeout_ms = timeout_ms + wire_ms(d, eg_slip_max_encoded(len) / 2 + len / 2) + 20;
  dev_log(d, "TX %s (%zu bytes at %u baud)", eg_op_name(d->pkt[1]), len, d->cur_baud);
  send_frame(d, d->pkt, len);
  if (!d->finished) arm(d, d->reply_timeout_ms);
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

/* Send the last request again, unchanged (same sequence number). */
static void resend(eg_dev *d, const char *why) {
  dev_log(d, "%s: %s, sending it again (attempt %d of %d)", eg_op_name(d->expect_op), why, d->cmd_tries + 1,
          CMD_ATTEMPTS);
  d->skipped_frames = 0;
  send_frame(d, d->pkt, d->pkt_len);
  if (!d->finished) arm(d, d->reply_timeout_ms);
}

/* Read and discard what has arrived (the boot log still goes to bootlog),
 * then forget any partial frame: esptool's flush_input. */
static void slip_event(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err);

static void drain(eg_dev *d) {
  uint8_t buf[4096];
  const eg_dev_state saved = d->state;
  d->state = EG_DS_IDLE; /* frames read now are stale */
  for (int i = 0; i < 64; i++) {
    size_t got = 0;
    if (eg_port_read(&d->port, buf, sizeof buf, &got) != EG_OK || got == 0) break;
    d->rec.bytes_rx += got;
    eg_slip_dec_push(&d->dec, buf, got, slip_event, d);
  }
  d->state = saved;
  eg_slip_dec_reset(&d->dec);
}

static void switch_baud(eg_dev *d, uint32_t baud) {
  const eg_err e = eg_port_set_baud(&d->port, baud);
  if (e != EG_OK) {
    fail(d, e, EG_OP_CHANGE_BAUDRATE, "port %s: cannot set %u baud: %s", d->port.name, baud, d->port.errmsg);
    return;
  }
  d->cur_baud = baud;
  d->rec.baud = baud;
  poll_update(d); /* an RFC 2217 port may have queued SET-BAUDRATE */
}

/* --------------------------------------------------------------- finish */

static void finish(eg_dev *d, eg_err result) {
  if (d->finished) return;
  set_stage(d, d->stage); /* account the time of the last stage */
  d->finished = true;
  d->state = EG_DS_DONE;
  uv_timer_stop(&d->timer);
  if (d->poll_started) uv_poll_stop(&d->poll);
  d->poll_started = false;
  eg_port_close(&d->port);
  d->rec.finished_ms = now_epoch_ms();
  if (result == EG_OK) {
    d->rec.result = EG_RESULT_PASS;
    eg_fault_clear(&d->rec.fault);
  } else {
    d->rec.result = result == EG_ABORTED ? EG_RESULT_ABORTED : EG_RESULT_FAIL;
    if (d->rec.fault.code == EG_OK) eg_fault_set(&d->rec.fault, result, d->stage, -1, "%s", eg_strerror(result));
  }
  if (d->md5ctx) {
    EVP_MD_CTX_free(d->md5ctx);
    d->md5ctx = NULL;
  }
  if (d->cb.on_done) d->cb.on_done(d, result);
}

/* ---------------------------------------------------------- the sequence */

static void open_port(eg_dev *d);
static void connect_attempt(eg_dev *d);
static void send_sync(eg_dev *d);
static void synced(eg_dev *d);
static void detect(eg_dev *d);
static void read_magic(eg_dev *d);
static void identify(eg_dev *d);
static void stub_or_baud(eg_dev *d);
static void attach(eg_dev *d);
static void next_op(eg_dev *d);
static void after(eg_dev *d);

/* Generic command with a continuation. */
static void command(eg_dev *d, size_t len, size_t expect_data, uint32_t timeout_ms, eg_dev_step next) {
  d->state = EG_DS_CMD;
  d->next = next;
  request(d, len, expect_data, timeout_ms);
}

/* Status bytes a reply of this device carries now. */
static size_t status_len(const eg_dev *d) { return d->status_len ? d->status_len : 4; }

/* ------------------------------------------------------------ reset */

/* Run the DTR/RTS plan in d->reset_seq, one timer wait per step; `done`
 * continues when it is over. */
static void reset_run(eg_dev *d) {
  const eg_reset_step *seq = d->reset_seq;
  for (;;) {
    const eg_reset_step *st = &seq[d->reset_step];
    if (st->dtr == EG_RESET_END) {
      d->reset_done(d, NULL);
      return;
    }
    const eg_err e = eg_port_set_lines(&d->port, st->dtr, st->rts);
    if (e != EG_OK) {
      fail(d, e, -1, "port %s: cannot set DTR/RTS: %s", d->port.name, d->port.errmsg[0] ? d->port.errmsg : eg_strerror(e));
      return;
    }
    d->reset_step++;
    poll_update(d); /* an RFC 2217 port may have queued the command */
    if (st->wait_ms) {
      d->state = EG_DS_RESET;
      arm(d, st->wait_ms);
      return;
    }
  }
}

static void reset_then_sync(eg_dev *d, const void *unused) {
  (void)unused;
  d->tries = 0;
  set_stage(d, EG_STAGE_SYNC);
  send_sync(d);
}

/* ------------------------------------------------------------- connect */

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

/* Explain a failed connection from what the chip printed (esptool's
 * _connect_attempt diagnosis). */
/* Copy the printable line of `log` that contains `at` (or its tail). */
static void log_line(const char *log, const char *at, char *out, size_t n) {
  const char *b = at, *e = at;
  while (b > log && b[-1] != '\n' && b[-1] != '\r') b--;
  while (*e && *e != '\n' && *e != '\r') e++;
  size_t j = 0;
  for (const char *p = b; p < e && j + 1 < n; p++) out[j++] = (*p >= 0x20 && *p < 0x7F) ? *p : '.';
  out[j] = '\0';
}

static void fail_no_sync(eg_dev *d) {
  const char *boot = strstr(d->bootlog, "boot:0x");
  const bool waiting = strstr(d->bootlog, "waiting for download") != NULL;
  char line[96];
  if (boot && !waiting) {
    log_line(d->bootlog, boot, line, sizeof line);
    fail(d, EG_NOT_DOWNLOAD_MODE, EG_OP_SYNC,
         "port %s: the chip booted normally, not into download mode (\"%s\"); hold BOOT/GPIO0 low during reset or "
         "check the auto-reset circuit",
         d->port.name, line);
    return;
  }
  if (d->bootlog_len) {
    /* The most recent text the chip sent, printable characters only. */
    const size_t from = d->bootlog_len > 60 ? d->bootlog_len - 60 : 0;
    log_line(d->bootlog + from, d->bootlog + from, line, sizeof line);
    fail(d, EG_NO_SYNC, EG_OP_SYNC, "port %s: no answer to SYNC after %d attempts; the chip sent %zu other bytes, lately \"%s\"%s",
         d->port.name, d->attempt, d->bootlog_len, line, waiting ? " (it is waiting for download: TX path down?)" : "");
    return;
  }
  fail(d, EG_NO_SYNC, EG_OP_SYNC, "port %s: no answer to SYNC after %d attempts (is the chip powered and in download mode?)",
       d->port.name, d->attempt);
}

static void connect_attempt(eg_dev *d) {
  if (d->attempt >= d->cfg->connect_attempts) {
    fail_no_sync(d);
    return;
  }
  const int attempt = d->attempt++;
  d->tries = 0;
  /* Without a reset, a flasher stub left running by an earlier session
   * (esp-flasher-stub does not reboot on FLASH_END, and --after
   * no-reset-stub leaves it on purpose) listens at the transfer rate, not
   * at the ROM's: alternate the two. A freshly reset ROM auto-bauds. */
  if (d->cfg->before == EG_BEFORE_NO_RESET && d->cfg->baud != d->cfg->connect_baud) {
    const uint32_t rate = attempt % 2 ? d->cfg->baud : d->cfg->connect_baud;
    if (rate != d->cur_baud) {
      switch_baud(d, rate);
      if (d->finished) return;
    }
  }
  drain(d);
  if (d->cfg->before == EG_BEFORE_DEFAULT_RESET || d->cfg->before == EG_BEFORE_USB_RESET) {
    set_stage(d, EG_STAGE_RESET);
    const char *name = "";
    d->reset_seq = eg_reset_plan(d->cfg->before, attempt, &name);
    d->reset_step = 0;
    d->reset_done = reset_then_sync;
    dev_log(d, "reset: %s", name);
    reset_run(d);
    return;
  }
  set_stage(d, EG_STAGE_SYNC);
  send_sync(d);
}

static void send_sync(eg_dev *d) {
  drain(d);
  d->sync_replies = 0;
  d->sync_stub_seen = true;
  d->state = EG_DS_SYNC;
  /* A receiver that took a stray 0xC0 in line noise (a wrong baud rate) as
   * the start of a frame stays out of step: each request's leading 0xC0
   * then closes an empty frame and its body is ignored; esp-flasher-stub's
   * decoder does exactly that. Every other try sends one extra 0xC0 first,
   * which puts such a receiver back in step and costs an in-step one at
   * most that try (the ROM ignores repeated 0xC0s). */
  if (d->tries % 2 == 1 && d->tx_len + 1 < sizeof d->tx) d->tx[d->tx_len++] = EG_SLIP_END;
  const size_t len = eg_req_sync(d->pkt);
  request(d, len, 0, d->cfg->timeouts.sync_ms);
}

static void sync_reply(eg_dev *d, const uint8_t *frame, size_t len) {
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
    synced(d);
    return;
  }
  d->state = EG_DS_SYNC_MORE;
  arm(d, d->cfg->timeouts.sync_ms); /* quiet period ends the collection */
}

static void synced(eg_dev *d) {
  uv_timer_stop(&d->timer);
  d->stub_running = d->sync_stub_seen;
  dev_log(d, "synced (%d replies, %s)", d->sync_replies, d->stub_running ? "stub running" : "ROM");
  detect(d);
}

/* --------------------------------------------------------------- detect */

static void chip_found(eg_dev *d, const eg_chip *c, const char *how, uint32_t what) {
  if (!c) {
    fail(d, EG_UNKNOWN_CHIP, EG_OP_READ_REG, "port %s: %s 0x%08x matches no known chip", d->port.name, how, what);
    return;
  }
  if (d->cfg->chip && c != d->cfg->chip) {
    fail(d, EG_WRONG_CHIP, EG_OP_READ_REG, "port %s: expected %s, found %s (%s 0x%08x)", d->port.name,
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

static void magic_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  chip_found(d, eg_chip_by_magic(r->value), "magic value", r->value);
}

static void read_magic(eg_dev *d) {
  command(d, eg_req_read_reg(d->pkt, EG_CHIP_MAGIC_REG), 0, d->cfg->timeouts.command_ms, magic_reply);
}

static void detect(eg_dev *d) {
  set_stage(d, EG_STAGE_DETECT);
  /* GET_SECURITY_INFO first, as esptool; skipped when the expected chip's ROM
   * is known not to implement it (ESP32, ESP8266): the ROM's answer to an
   * unknown command costs a 200 ms drain. */
  if (d->cfg->chip && !d->cfg->chip->rom_has_security_info && !d->stub_running) {
    read_magic(d);
    return;
  }
  d->state = EG_DS_SECINFO;
  request(d, eg_req_simple(d->pkt, EG_OP_GET_SECURITY_INFO), 0, d->cfg->timeouts.command_ms);
}

static void secinfo_reply(eg_dev *d, const uint8_t *frame, size_t len) {
  eg_resp r;
  const size_t sl = status_len(d); /* known by now: on_response learnt it from this reply */
  /* 20 data bytes (S3 and later), 12 on the S2 (no chip id). */
  if (eg_resp_parse(frame, len, sl, 20, &r) == EG_OK && r.ok) {
    const int chip_id = (int)eg_get_u32(r.data + 12);
    chip_found(d, eg_chip_by_chip_id(chip_id), "chip id", (uint32_t)chip_id);
    return;
  }
  read_magic(d); /* S2 (12 bytes), a stub without it (0xFF), or anything else */
}

/* -------------------------------------------------------------- regs */

/* Run a register script; `done` continues when it has finished. */
static void regs_step(eg_dev *d);

static void regs_run(eg_dev *d, const eg_regop *ops, size_t n, eg_dev_step done) {
  d->regs = ops;
  d->nregs = n;
  d->reg_i = 0;
  d->poll_count = 0;
  d->regs_done = done;
  regs_step(d);
}

static void regs_step(eg_dev *d) {
  if (d->reg_i >= d->nregs) {
    d->regs_done(d, NULL);
    return;
  }
  const eg_regop *op = &d->regs[d->reg_i];
  size_t len;
  switch (op->kind) {
  case 'R':
  case 'P':
    len = eg_req_read_reg(d->pkt, op->addr);
    break;
  case 'S':
    len = eg_req_write_reg(d->pkt, op->addr, d->reg_slot[op->slot], 0xFFFFFFFF, 0);
    break;
  default:
    len = eg_req_write_reg(d->pkt, op->addr, op->value, 0xFFFFFFFF, 0);
    break;
  }
  d->state = EG_DS_REGS;
  request(d, len, 0, d->cfg->timeouts.command_ms);
}

static void regs_reply(eg_dev *d, const eg_resp *r) {
  const eg_regop *op = &d->regs[d->reg_i];
  if (!r->ok) {
    fail_status(d, r, op->kind == 'R' || op->kind == 'P' ? "register read" : "register write");
    return;
  }
  if (op->kind == 'R') d->reg_slot[op->slot] = r->value;
  if (op->kind == 'P' && (r->value & op->value)) {
    if (++d->poll_count >= RDID_POLLS) {
      fail(d, EG_TIMEOUT, EG_OP_READ_REG, "port %s: SPI command did not complete (register 0x%08x)", d->port.name, op->addr);
      return;
    }
    regs_step(d); /* poll again */
    return;
  }
  d->poll_count = 0;
  d->reg_i++;
  regs_step(d);
}

/* ------------------------------------------------------------- identify */

enum { SLOT_W1, SLOT_W2, SLOT_W3, SLOT_W5, SLOT_APB, SLOT_CLKDIV, SLOT_W4, SLOT_CALI, SLOT_USR, SLOT_USR2, SLOT_ID };

static void identified(eg_dev *d, const void *unused) {
  (void)unused;
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
  d->rec.crystal_mhz = !d->port.caps.has_baud ? 0 : eg_crystal_mhz(c, d->cur_baud, s[SLOT_CLKDIV]);
  if (d->cb.on_identity) d->cb.on_identity(d);
  stub_or_baud(d);
}

static void identify(eg_dev *d) {
  const eg_chip *c = d->chip;
  /* Scripts are static per chip family; the ESP32 one reads what esptool
   * reads for chip_id / read_mac and the CHANGE_BAUDRATE calibration. */
  static const eg_regop esp32_id[] = {
    {'R', SLOT_W1, EG_ESP32_EFUSE_WORD(1), 0}, {'R', SLOT_W2, EG_ESP32_EFUSE_WORD(2), 0},
    {'R', SLOT_W3, EG_ESP32_EFUSE_WORD(3), 0}, {'R', SLOT_W5, EG_ESP32_EFUSE_WORD(5), 0},
    {'R', SLOT_APB, EG_ESP32_APB_CTL_DATE, 0}, {'R', SLOT_CLKDIV, 0x3FF40014, 0},
    {'R', SLOT_W4, EG_ESP32_EFUSE_WORD(4), 0}, {'R', SLOT_CALI, EG_ESP32_RTC_CALI_REG, 0},
  };
  memset(d->reg_slot, 0, sizeof d->reg_slot);
  if (c->id == EG_CHIP_ESP32) {
    regs_run(d, esp32_id, sizeof esp32_id / sizeof esp32_id[0], identified);
    return;
  }
  /* Other chips: the UART divider and the MAC words (addresses from the
   * chip table, so the script lives in the device). */
  d->identity_ops[0] = (eg_regop){'R', SLOT_CLKDIV, c->uart_clkdiv_reg, 0};
  size_t n = 1;
  if (c->mac_reg) {
    d->identity_ops[n++] = (eg_regop){'R', SLOT_W1, c->mac_reg, 0};
    d->identity_ops[n++] = (eg_regop){'R', SLOT_W2, c->mac_reg + 4, 0};
  }
  regs_run(d, d->identity_ops, n, identified);
}

/* ------------------------------------------------------ stub and baud */

static void upload_next(eg_dev *d);

static void baud_settled(eg_dev *d) {
  drain(d);
  stub_or_baud(d);
}

static void baud_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "baud rate change refused");
    return;
  }
  /* The reply came at the old rate; now switch the host side and let the
   * line settle (esptool sleeps 50 ms and flushes). */
  switch_baud(d, d->cfg->baud);
  if (d->finished) return;
  d->state = EG_DS_BAUD_SETTLE;
  arm(d, BAUD_SETTLE_MS);
}

static void change_baud(eg_dev *d) {
  set_stage(d, EG_STAGE_BAUD);
  uint32_t value = d->cfg->baud, old = 0;
  if (d->stub_running) {
    old = d->cur_baud; /* the legacy stub needs the current rate to compute its divider */
  } else if (d->chip->id == EG_CHIP_ESP32) {
    /* ESP32 ROM quirk (§8.3): it derives the divider from its drifting 8 MHz
     * clock, so send baud * f_rom / f_valid. */
    value = eg_esp32_rom_baud_value(d->cfg->baud, d->reg_slot[SLOT_CALI], d->reg_slot[SLOT_W4]);
  }
  dev_log(d, "CHANGE_BAUDRATE %u (sent %u, old %u)", d->cfg->baud, value, old);
  command(d, eg_req_change_baud(d->pkt, value, old), 0, d->cfg->timeouts.command_ms, baud_reply);
}

/* What still has to happen before the flash is attached: raise the baud rate
 * in the ROM (before the stub upload, to upload it faster), upload the stub,
 * or raise it through the stub. Re-entered after each step. */
static void stub_or_baud(eg_dev *d) {
  const eg_stub *stub = d->cfg->stubs ? d->cfg->stubs[d->chip->id] : NULL;
  const bool want_stub = stub && !d->stub_running;
  const bool rom_can_baud = d->chip->id != EG_CHIP_ESP8266;
  if (d->cfg->baud != d->cur_baud && (d->stub_running || rom_can_baud)) {
    change_baud(d);
    return;
  }
  if (want_stub && !d->stub_uploaded) {
    set_stage(d, EG_STAGE_STUB);
    d->stub_uploaded = true; /* one try per connection */
    d->mem_seg = 0;
    d->mem_seq = 0;
    d->mem_blocks = 0;
    d->state = EG_DS_MEM;
    upload_next(d);
    return;
  }
  d->rec.stub = d->stub_running;
  d->rec.baud = d->cur_baud;
  attach(d);
}

/* Upload the stub: MEM_BEGIN + MEM_DATA for text, then data, then MEM_END. */
static void upload_next(eg_dev *d) {
  const eg_stub *st = d->cfg->stubs[d->chip->id];
  for (;;) {
    const uint8_t *seg = d->mem_seg == 0 ? st->text : st->data;
    const size_t seg_len = d->mem_seg == 0 ? st->text_len : st->data_len;
    const uint32_t seg_addr = d->mem_seg == 0 ? st->text_start : st->data_start;
    if (d->mem_seg > 1) {
      d->state = EG_DS_MEM_END;
      request(d, eg_req_mem_end(d->pkt, st->entry), 0, d->cfg->timeouts.mem_end_ms);
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
      request(d, eg_req_begin(d->pkt, EG_OP_MEM_BEGIN, (uint32_t)seg_len, d->mem_blocks, block, seg_addr, false, 0), 0,
              d->cfg->timeouts.command_ms);
      return;
    }
    if (d->mem_seq < d->mem_blocks) {
      const size_t n = eg_block_len(seg_len, block, d->mem_seq);
      const size_t len = eg_req_data(d->pkt, EG_OP_MEM_DATA, d->mem_seq, seg + (size_t)d->mem_seq * block, n, 0);
      d->mem_seq++;
      request(d, len, 0, d->cfg->timeouts.command_ms);
      return;
    }
    d->mem_seg++;
    d->mem_blocks = 0;
  }
}

static void mem_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    fail_status(d, r, "stub upload");
    return;
  }
  upload_next(d);
}

static void stub_started(eg_dev *d) {
  uv_timer_stop(&d->timer);
  d->stub_running = true;
  d->status_len = EG_STATUS_STUB;
  dev_log(d, "stub running");
  stub_or_baud(d);
}

/* --------------------------------------------------------------- attach */

static void flash_params_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "SPI_SET_PARAMS");
    return;
  }
  if (d->cb.on_identity) d->cb.on_identity(d);
  d->op_i = 0;
  next_op(d);
}

static void flash_id_done(eg_dev *d, const void *unused) {
  (void)unused;
  d->flash_id = d->reg_slot[SLOT_ID] & 0xFFFFFF;
  d->rec.flash_id = d->flash_id;
  d->rec.has_flash_id = true;
  const uint32_t detected = eg_flash_size_from_jedec(d->flash_id);
  d->rec.flash_size = detected;
  if (eg_jedec_is_absent(d->flash_id) && d->nops > 0) {
    fail(d, EG_NO_FLASH, EG_OP_READ_REG, "port %s: flash JEDEC ID 0x%06x: no SPI flash answered", d->port.name, d->flash_id);
    return;
  }
  const char *sz = d->cfg->flash_size ? d->cfg->flash_size : "detect";
  const uint32_t fixed = eg_flash_size_bytes(sz);
  /* A fixed size wins; "detect" and "keep" use the JEDEC size, 4 MB when the
   * ID is unknown (esptool's fallback). */
  d->flash_size = fixed ? fixed : (detected ? detected : 4u << 20);
  if (!detected) dev_log(d, "unknown flash ID 0x%06x, assuming %u bytes", d->flash_id, d->flash_size);
  command(d, eg_req_spi_set_params(d->pkt, d->flash_size), 0, d->cfg->timeouts.command_ms, flash_params_reply);
}

static void read_flash_id(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (r && !r->ok) {
    fail_status(d, r, "SPI_ATTACH");
    return;
  }
  const eg_spi_regs *s = &d->chip->spi;
  /* The RDID user command (§5.1): save USR/USR2, 24 bits in, opcode 0x9F,
   * start, poll, read W0, restore. ESP8266 keeps the lengths in USR1. */
  eg_regop *o = d->identity_ops;
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
  regs_run(d, o, n, flash_id_done);
}

static void attach(eg_dev *d) {
  set_stage(d, EG_STAGE_ATTACH);
  if (d->stub_running) { /* the stubs attach the flash themselves at boot */
    read_flash_id(d, NULL);
    return;
  }
  /* The ESP32 ROM does not attach in-package flash by itself: send the SPI
   * pads from eFuse (0 = default pins), as esptool does. */
  const uint32_t arg = d->chip->id == EG_CHIP_ESP32 ? eg_esp32_spi_pads(d->reg_slot[SLOT_W3], d->reg_slot[SLOT_W5]) : 0;
  command(d, eg_req_spi_attach(d->pkt, arg, true), 0, d->cfg->timeouts.command_ms, read_flash_id);
}

/* ------------------------------------------------------------ operations */

static void op_done(eg_dev *d, const void *unused) {
  (void)unused;
  d->op_i++;
  next_op(d);
}

static void progress(eg_dev *d, uint64_t done, uint64_t total) {
  d->progress_done = done;
  d->progress_total = total;
  if (d->cb.on_progress) d->cb.on_progress(d, done, total);
}

static void erase_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "erase");
    return;
  }
  op_done(d, NULL);
}

static void start_erase(eg_dev *d, const eg_dev_op *op) {
  set_stage(d, EG_STAGE_ERASE);
  const eg_timeouts *t = &d->cfg->timeouts;
  const bool all = op->kind == EG_OPK_ERASE_ALL;
  const uint32_t addr = all ? 0 : op->addr, size = all ? d->flash_size : op->size;
  if (!all && ((addr | size) & (EG_SECTOR_SIZE - 1))) {
    fail(d, EG_INVAL, EG_OP_ERASE_REGION, "erase region 0x%x+0x%x is not 4 KiB aligned", addr, size);
    return;
  }
  if ((uint64_t)addr + size > d->flash_size) {
    fail(d, EG_FLASH_TOO_SMALL, EG_OP_ERASE_REGION, "erase region 0x%x+0x%x is beyond the %u-byte flash", addr, size, d->flash_size);
    return;
  }
  if (d->stub_running) {
    if (all)
      command(d, eg_req_simple(d->pkt, EG_OP_ERASE_FLASH), 0, t->chip_erase_ms, erase_reply);
    else
      command(d, eg_req_erase_region(d->pkt, addr, size), 0, eg_timeout_per_mb(t, t->erase_per_mb_ms, size, t->command_ms), erase_reply);
    return;
  }
  /* The ROM has no erase command, but FLASH_BEGIN erases the region it is
   * given before replying. */
  const uint32_t block = d->chip->rom_write_block;
  command(d, eg_req_begin(d->pkt, EG_OP_FLASH_BEGIN, size, eg_blocks(size, block), block, addr, d->chip->rom_begin_encrypt_word, 0), 0,
          eg_timeout_per_mb(t, t->erase_per_mb_ms, size, t->command_ms), erase_reply);
}

static void verify_image(eg_dev *d, const eg_wimage *w);

static void md5_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "SPI_FLASH_MD5");
    return;
  }
  uint8_t got[16];
  if (d->stub_running) {
    memcpy(got, r->data, 16);
  } else if (!eg_unhex(got, 16, (const char *)r->data)) {
    fail(d, EG_PROTO_GARBAGE, EG_OP_SPI_FLASH_MD5, "MD5 reply is not 32 hex digits");
    return;
  }
  const eg_image *img = &d->wimg->img;
  if (memcmp(got, img->md5, 16) != 0) {
    char a[33], b[33];
    eg_hex(a, got, 16);
    eg_hex(b, img->md5, 16);
    uint8_t *ff = malloc(img->len);
    bool empty = false;
    if (ff) {
      uint8_t m[16];
      memset(ff, 0xFF, img->len);
      eg_md5(ff, img->len, m);
      empty = memcmp(m, got, 16) == 0;
      free(ff);
    }
    fail(d, EG_MD5_MISMATCH, EG_OP_SPI_FLASH_MD5, "flash MD5 %s differs from image MD5 %s at 0x%x (%zu bytes)%s", a, b,
         img->offset, img->len, empty ? ": the region is empty (erased, never written)" : "");
    return;
  }
  dev_log(d, "verified 0x%x+0x%zx", img->offset, img->len);
  op_done(d, NULL);
}

static void verify_image(eg_dev *d, const eg_wimage *w) {
  set_stage(d, EG_STAGE_VERIFY);
  d->wimg = w;
  const eg_timeouts *t = &d->cfg->timeouts;
  command(d, eg_req_flash_md5(d->pkt, w->img.offset, (uint32_t)w->img.len), d->stub_running ? 16 : 32,
          eg_timeout_per_mb(t, t->md5_per_mb_ms, w->img.len, t->command_ms), md5_reply);
}

static uint32_t block_timeout(eg_dev *d, uint32_t i) {
  const eg_timeouts *t = &d->cfg->timeouts;
  return eg_timeout_per_mb(t, t->write_per_mb_ms, eg_wimage_block_out(d->wimg, d->blk_size, i), t->command_ms);
}

static void send_block(eg_dev *d) {
  const eg_wimage *w = d->wimg;
  const uint8_t op = w->compressed ? EG_OP_FLASH_DEFL_DATA : EG_OP_FLASH_DATA;
  const size_t n = eg_block_len(eg_wimage_wire_len(w), d->blk_size, d->blk);
  const size_t len = eg_req_data(d->pkt, op, d->blk, eg_wimage_wire(w) + (size_t)d->blk * d->blk_size, n,
                                 w->compressed ? 0 : d->blk_size);
  /* The ROM writes a block before answering, so its timeout scales with that
   * block; a stub answers first and writes while the next block arrives, so
   * the previous block's write time lands on this reply. */
  uint32_t timeout = d->cfg->timeouts.command_ms;
  if (!d->stub_running)
    timeout = block_timeout(d, d->blk);
  else if (d->blk > 0)
    timeout = block_timeout(d, d->blk - 1);
  d->state = EG_DS_WRITE;
  request(d, len, 0, timeout);
}

static void end_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "finishing the write");
    return;
  }
  if (d->cfg->verify)
    verify_image(d, d->wimg);
  else
    op_done(d, NULL);
}

static void blocks_sent(eg_dev *d) {
  const eg_wimage *w = d->wimg;
  if (d->stub_running) {
    /* The stub acknowledged the last block before writing it: FLASH_DEFL_END
     * (stay) answers only once everything is on the flash. */
    const uint8_t op = w->compressed ? EG_OP_FLASH_DEFL_END : EG_OP_FLASH_END;
    command(d, eg_req_end(d->pkt, op, 1), 0, block_timeout(d, d->nblk ? d->nblk - 1 : 0), end_reply);
    return;
  }
  /* Never FLASH_END to the ROM: it would leave the loader. */
  end_reply(d, &(eg_resp){.ok = true});
}

static void write_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    fail_status(d, r, "write block refused");
    return;
  }
  d->blk++;
  progress(d, (uint64_t)d->blk * d->blk_size > eg_wimage_wire_len(d->wimg) ? eg_wimage_wire_len(d->wimg) : (uint64_t)d->blk * d->blk_size,
           eg_wimage_wire_len(d->wimg));
  if (d->blk < d->nblk)
    send_block(d);
  else
    blocks_sent(d);
}

static void begin_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "write begin refused");
    return;
  }
  d->blk = 0;
  d->tries = 0;
  progress(d, 0, eg_wimage_wire_len(d->wimg));
  if (d->nblk == 0)
    blocks_sent(d);
  else
    send_block(d);
}

static void start_write(eg_dev *d, const eg_dev_op *op) {
  set_stage(d, EG_STAGE_WRITE);
  eg_fault f;
  eg_fault_clear(&f);
  const eg_wimage *w = eg_imageset_get(d->cfg->images, op->index, d->rec.flash_size, !d->stub_running, &f);
  if (!w) {
    fail(d, f.code, -1, "%s", f.msg);
    return;
  }
  if ((uint64_t)w->img.offset + w->img.len > d->flash_size) {
    fail(d, EG_FLASH_TOO_SMALL, -1, "image %s (0x%x+0x%zx) does not fit in the %u-byte flash",
         w->img.path ? w->img.path : "", w->img.offset, w->img.len, d->flash_size);
    return;
  }
  d->wimg = w;
  d->blk_size = d->stub_running ? d->chip->stub_write_block : d->chip->rom_write_block;
  d->nblk = eg_blocks(eg_wimage_wire_len(w), d->blk_size);
  const eg_timeouts *t = &d->cfg->timeouts;
  const bool stub = d->stub_running;
  /* Stubs take the exact size and erase just in time; the ROM erases the
   * whole (1 KiB rounded, for compressed writes) region before replying. */
  const uint32_t size = (uint32_t)w->img.len;
  const uint32_t rom_size = w->compressed ? (uint32_t)((size + EG_ROM_WRITE_BLOCK - 1) / EG_ROM_WRITE_BLOCK * EG_ROM_WRITE_BLOCK) : size;
  const uint32_t timeout = stub ? t->command_ms : eg_timeout_per_mb(t, t->erase_per_mb_ms, rom_size, t->command_ms);
  const bool word5 = stub || d->chip->rom_begin_encrypt_word;
  const size_t len = eg_req_begin(d->pkt, w->compressed ? EG_OP_FLASH_DEFL_BEGIN : EG_OP_FLASH_BEGIN, stub ? size : rom_size, d->nblk,
                                  d->blk_size, w->img.offset, word5, 0);
  dev_log(d, "write %s 0x%x: %zu bytes, %zu on the wire, %u blocks", w->compressed ? "compressed" : "raw", w->img.offset,
          w->img.len, eg_wimage_wire_len(w), d->nblk);
  command(d, len, 0, timeout, begin_reply);
}

static void start_verify(eg_dev *d, const eg_dev_op *op) {
  eg_fault f;
  eg_fault_clear(&f);
  set_stage(d, EG_STAGE_VERIFY);
  const eg_wimage *w = eg_imageset_get(d->cfg->images, op->index, d->rec.flash_size, !d->stub_running, &f);
  if (!w) {
    fail(d, f.code, -1, "%s", f.msg);
    return;
  }
  verify_image(d, w);
}

/* READ_FLASH (stub): data packets, each acknowledged with the running count,
 * then a 16-byte MD5 frame. */
static uint8_t *read_buf(eg_dev *d) {
  const eg_dev_op *op = &d->ops[d->op_i];
  return op->buf ? op->buf : d->read_owned;
}

static void read_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "READ_FLASH refused");
    return;
  }
  d->state = EG_DS_READ;
  arm(d, d->cfg->timeouts.read_packet_ms + wire_ms(d, 2 * EG_READ_PACKET));
}

static void read_slow_next(eg_dev *d) {
  const eg_dev_op *op = &d->ops[d->op_i];
  d->state = EG_DS_READ_SLOW;
  request(d, eg_req_read_flash_slow(d->pkt, op->addr + d->read_got, READ_SLOW_LEN), READ_SLOW_LEN, d->cfg->timeouts.command_ms);
}

static void start_read(eg_dev *d, const eg_dev_op *op) {
  set_stage(d, EG_STAGE_READ);
  d->read_got = d->read_acked = 0;
  d->read_size = op->size ? op->size : d->flash_size;
  if ((uint64_t)op->addr + d->read_size > d->flash_size) {
    fail(d, EG_FLASH_TOO_SMALL, EG_OP_READ_FLASH, "read 0x%x+0x%x is beyond the %u-byte flash", op->addr, d->read_size, d->flash_size);
    return;
  }
  if (!op->buf) {
    free(d->read_owned);
    if (!(d->read_owned = malloc(d->read_size ? d->read_size : 1))) {
      fail(d, EG_NOMEM, -1, "out of memory for a %u-byte read", d->read_size);
      return;
    }
  }
  progress(d, 0, d->read_size);
  if (!d->stub_running) {
    read_slow_next(d);
    return;
  }
  if (!d->md5ctx) d->md5ctx = EVP_MD_CTX_new();
  if (!d->md5ctx || !EVP_DigestInit_ex(d->md5ctx, EVP_md5(), NULL)) {
    fail(d, EG_NOMEM, -1, "cannot start MD5");
    return;
  }
  command(d, eg_req_read_flash(d->pkt, op->addr, d->read_size, EG_READ_PACKET, 64), 0, d->cfg->timeouts.command_ms, read_reply);
}

static void read_packet(eg_dev *d, const uint8_t *p, size_t len) {
  if (d->read_got >= d->read_size) { /* the MD5 frame */
    if (len != 16) {
      fail(d, EG_PROTO_GARBAGE, EG_OP_READ_FLASH, "expected the 16-byte MD5 after the data, got %zu bytes", len);
      return;
    }
    uint8_t md5[16];
    unsigned int mlen = 0;
    EVP_DigestFinal_ex(d->md5ctx, md5, &mlen);
    memcpy(d->read_md5, p, 16);
    if (memcmp(md5, p, 16) != 0) {
      char a[33], b[33];
      fail(d, EG_MD5_MISMATCH, EG_OP_READ_FLASH, "read data MD5 %s, the stub computed %s", eg_hex(a, md5, 16), eg_hex(b, p, 16));
      return;
    }
    uv_timer_stop(&d->timer);
    op_done(d, NULL);
    return;
  }
  if (len > d->read_size - d->read_got || (len < EG_READ_PACKET && d->read_got + len < d->read_size)) {
    fail(d, EG_PROTO_GARBAGE, EG_OP_READ_FLASH, "READ_FLASH packet of %zu bytes at offset %u of %u", len, d->read_got, d->read_size);
    return;
  }
  memcpy(read_buf(d) + d->read_got, p, len);
  EVP_DigestUpdate(d->md5ctx, p, len);
  d->read_got += (uint32_t)len;
  uint8_t ack[4];
  eg_read_ack(ack, d->read_got);
  send_frame(d, ack, sizeof ack);
  if (d->finished) return;
  progress(d, d->read_got, d->read_size);
  arm(d, d->cfg->timeouts.read_packet_ms + wire_ms(d, 2 * EG_READ_PACKET));
}

static void read_slow_reply(eg_dev *d, const eg_resp *r) {
  if (!r->ok) {
    fail_status(d, r, "READ_FLASH_SLOW refused");
    return;
  }
  const uint32_t n = d->read_size - d->read_got < READ_SLOW_LEN ? d->read_size - d->read_got : READ_SLOW_LEN;
  memcpy(read_buf(d) + d->read_got, r->data, n);
  d->read_got += n;
  progress(d, d->read_got, d->read_size);
  if (d->read_got < d->read_size) {
    read_slow_next(d);
    return;
  }
  eg_md5(read_buf(d), d->read_size, d->read_md5);
  op_done(d, NULL);
}

static void next_op(eg_dev *d) {
  if (d->aborted) return;
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
  fail(d, EG_INVAL, -1, "unknown operation %d", (int)op->kind);
}

/* ---------------------------------------------------------------- after */

static void done_ok(eg_dev *d, const void *unused) {
  (void)unused;
  finish(d, EG_OK);
}

static void after_end_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "leaving the loader");
    return;
  }
  finish(d, EG_OK);
}

static void after_begin_reply(eg_dev *d, const void *resp) {
  const eg_resp *r = resp;
  if (!r->ok) {
    fail_status(d, r, "leaving the loader");
    return;
  }
  /* FLASH_END(1): ROM runs the user code; FLASH_END(0) to the legacy stub:
   * it reboots into the ROM loader. */
  const uint32_t flag = d->cfg->after == EG_AFTER_SOFT_RESET ? 1 : 0;
  command(d, eg_req_end(d->pkt, EG_OP_FLASH_END, flag), 0, d->cfg->timeouts.command_ms, after_end_reply);
}

static void after(eg_dev *d) {
  set_stage(d, EG_STAGE_AFTER);
  switch (d->cfg->after) {
  case EG_AFTER_HARD_RESET:
    /* Pulse EN through RTS (esptool HardReset); the chip boots its app. */
    d->reset_seq = eg_hard_reset_plan();
    d->reset_step = 0;
    d->reset_done = done_ok;
    reset_run(d);
    return;
  case EG_AFTER_SOFT_RESET:
    if (d->stub_running) {
      fail(d, EG_INVAL, -1, "--after soft-reset is not possible while the ESP32 stub runs (use --no-stub)");
      return;
    }
    break;
  case EG_AFTER_NO_RESET:
    if (!d->stub_running) {
      finish(d, EG_OK);
      return;
    }
    break;
  case EG_AFTER_NO_RESET_STUB:
    finish(d, EG_OK);
    return;
  }
  /* FLASH_BEGIN(0, 0, block, 0) then FLASH_END (esptool's run / soft reset). */
  const uint32_t block = d->stub_running ? d->chip->stub_write_block : d->chip->rom_write_block;
  command(d, eg_req_begin(d->pkt, EG_OP_FLASH_BEGIN, 0, 0, block, 0, d->stub_running || d->chip->rom_begin_encrypt_word, 0), 0,
          d->cfg->timeouts.command_ms, after_begin_reply);
}

/* --------------------------------------------------------------- events */

static bool is_ohai(const uint8_t *p, size_t n) { return n == 4 && memcmp(p, "OHAI", 4) == 0; }

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
  dev_log(d, "no sync: %zu status bytes, %s", sl, d->stub_running ? "a stub is running" : "the ROM is listening");
}

static void on_response(eg_dev *d, const uint8_t *frame, size_t len) {
  eg_resp r;
  learn_status_len(d, frame, len);
  const size_t sl = status_len(d);
  const eg_err e = eg_resp_parse(frame, len, sl, d->expect_data, &r);
  if (e != EG_OK || r.op != d->expect_op) {
    /* Not our reply. The ROM's "unsupported command" echoes a stale opcode,
     * so recognise it by its status (§1.3). */
    if (e == EG_OK && !d->stub_running && eg_resp_is_rom_unsupported(&r) && r.op != d->expect_op) {
      eg_resp u = r;
      if (d->state == EG_DS_SECINFO) {
        d->state = EG_DS_UNSUPPORTED_DRAIN;
        arm(d, UNSUPPORTED_DRAIN_MS);
        return;
      }
      eg_fault_set(&d->rec.fault, EG_UNSUPPORTED, d->stage, d->expect_op, "port %s: the ROM does not implement %s",
                   d->port.name, eg_op_name(d->expect_op));
      eg_fault_status(&d->rec.fault, u.status, u.nstatus);
      finish(d, EG_UNSUPPORTED);
      return;
    }
    if (e == EG_OK && r.op == d->expect_op) {
      /* right opcode but malformed for what we expected */
    } else if (++d->skipped_frames > MAX_SKIPPED) {
      fail(d, EG_PROTO_GARBAGE, d->expect_op, "port %s: %d frames without a reply to %s", d->port.name, d->skipped_frames,
           eg_op_name(d->expect_op));
      return;
    } else {
      dev_log(d, "skipped frame op=0x%02x len=%zu (%s)", len > 1 ? frame[1] : 0, len, eg_err_name(e));
      return;
    }
    fail(d, EG_PROTO_SHORT, d->expect_op, "port %s: malformed reply to %s (%zu bytes: %s)", d->port.name,
         eg_op_name(d->expect_op), len, eg_strerror(e));
    return;
  }
  uv_timer_stop(&d->timer);
  dev_log(d, "RX %s %s value=0x%08x", eg_op_name(r.op), r.ok ? "ok" : "FAIL", r.value);
  if (!r.ok && retryable(r.op) && d->state != EG_DS_SECINFO) {
    /* Keep the chip's first answer: it is the root cause, a resend may be
     * refused differently (the ROM then says 0x05 for a block out of order). */
    if (!d->have_refusal) {
      d->first_refusal = r;
      d->have_refusal = true;
    }
    if (++d->cmd_tries < CMD_ATTEMPTS) {
      char st[16];
      snprintf(st, sizeof st, "refused (%02x %02x)", r.status[0], r.status[1]);
      resend(d, st);
      return;
    }
    char what[160];
    snprintf(what, sizeof what, "refused %d times%s", CMD_ATTEMPTS,
             memcmp(r.status, d->first_refusal.status, 2) ? " (first answer kept; later ones differed)" : "");
    if (d->state == EG_DS_WRITE)
      snprintf(what + strlen(what), sizeof what - strlen(what), " at block %u of %u of the image at 0x%x", d->blk, d->nblk,
               d->wimg->img.offset);
    fail_status(d, &d->first_refusal, what);
    return;
  }
  switch (d->state) {
  case EG_DS_SECINFO:
    secinfo_reply(d, frame, len);
    return;
  case EG_DS_REGS:
    regs_reply(d, &r);
    return;
  case EG_DS_CMD:
    d->next(d, &r);
    return;
  case EG_DS_MEM:
    mem_reply(d, &r);
    return;
  case EG_DS_MEM_END:
    /* esptool ignores MEM_END errors from the ROM; the greeting decides. */
    d->state = EG_DS_OHAI;
    arm(d, OHAI_TIMEOUT_MS);
    return;
  case EG_DS_WRITE:
    write_reply(d, &r);
    return;
  case EG_DS_READ_SLOW:
    read_slow_reply(d, &r);
    return;
  case EG_DS_IDLE:
  case EG_DS_CONNECTING:
  case EG_DS_REOPEN:
  case EG_DS_RESET:
  case EG_DS_SYNC:
  case EG_DS_SYNC_MORE:
  case EG_DS_SYNC_PAUSE:
  case EG_DS_UNSUPPORTED_DRAIN:
  case EG_DS_BAUD_SETTLE:
  case EG_DS_OHAI:
  case EG_DS_READ:
  case EG_DS_DONE:
    return;
  }
}

static void on_frame(eg_dev *d, const uint8_t *frame, size_t len) {
  switch (d->state) {
  case EG_DS_SYNC:
  case EG_DS_SYNC_MORE:
    sync_reply(d, frame, len);
    return;
  case EG_DS_MEM_END:
  case EG_DS_OHAI:
    if (is_ohai(frame, len)) {
      stub_started(d);
      return;
    }
    if (d->state == EG_DS_MEM_END) on_response(d, frame, len);
    return;
  case EG_DS_READ:
    read_packet(d, frame, len);
    return;
  case EG_DS_SECINFO:
  case EG_DS_REGS:
  case EG_DS_CMD:
  case EG_DS_MEM:
  case EG_DS_WRITE:
  case EG_DS_READ_SLOW:
    on_response(d, frame, len);
    return;
  case EG_DS_IDLE:
  case EG_DS_CONNECTING:
  case EG_DS_REOPEN:
  case EG_DS_RESET:
  case EG_DS_SYNC_PAUSE:
  case EG_DS_UNSUPPORTED_DRAIN:
  case EG_DS_BAUD_SETTLE:
  case EG_DS_DONE:
    return; /* stale frames (late SYNC replies, garbage after a baud change) */
  }
}

static void slip_event(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  eg_dev *d = ctx;
  if (d->finished) return;
  switch (ev) {
  case EG_SLIP_FRAME:
    on_frame(d, data, len);
    return;
  case EG_SLIP_NOISE:
    bootlog_add(d, data, len);
    return;
  case EG_SLIP_ERROR:
    dev_log(d, "SLIP error: %s", eg_strerror(err));
    return;
  }
}

static void on_timer(uv_timer_t *t) {
  eg_dev *d = t->data;
  if (d->finished) return;
  switch (d->state) {
  case EG_DS_RESET:
    reset_run(d);
    return;
  case EG_DS_SYNC:
    /* No reply: pause, try again, then the next connect attempt. */
    if (++d->tries < SYNC_TRIES) {
      d->state = EG_DS_SYNC_PAUSE;
      arm(d, SYNC_PAUSE_MS);
    } else {
      connect_attempt(d);
    }
    return;
  case EG_DS_SYNC_PAUSE:
    send_sync(d);
    return;
  case EG_DS_SYNC_MORE:
    synced(d); /* fewer than 8 replies: good enough */
    return;
  case EG_DS_UNSUPPORTED_DRAIN:
    drain(d);
    read_magic(d);
    return;
  case EG_DS_SECINFO:
    read_magic(d); /* no answer at all: fall back to the magic value */
    return;
  case EG_DS_BAUD_SETTLE:
    baud_settled(d);
    return;
  case EG_DS_MEM_END:
    d->state = EG_DS_OHAI; /* the ROM's reply may never come; the greeting decides */
    arm(d, OHAI_TIMEOUT_MS);
    return;
  case EG_DS_OHAI:
    fail(d, EG_STUB_NO_OHAI, EG_OP_MEM_END, "port %s: the flasher stub did not start (no OHAI after MEM_END)", d->port.name);
    return;
  case EG_DS_WRITE:
    if (++d->cmd_tries < CMD_ATTEMPTS) {
      resend(d, "no reply");
      return;
    }
    fail(d, EG_TIMEOUT, d->expect_op, "port %s: no reply to %s block %u of %u after %d attempts (%u ms each)", d->port.name,
         eg_op_name(d->expect_op), d->blk, d->nblk, CMD_ATTEMPTS, d->reply_timeout_ms);
    return;
  case EG_DS_READ:
    fail(d, EG_TIMEOUT, EG_OP_READ_FLASH, "port %s: READ_FLASH stalled at %u of %u bytes", d->port.name, d->read_got, d->read_size);
    return;
  case EG_DS_REGS:
  case EG_DS_CMD:
  case EG_DS_MEM:
  case EG_DS_READ_SLOW:
    if (retryable(d->expect_op) && ++d->cmd_tries < CMD_ATTEMPTS) {
      resend(d, "no reply");
      return;
    }
    fail(d, EG_TIMEOUT, d->expect_op, "port %s: no reply to %s within %u ms%s", d->port.name, eg_op_name(d->expect_op),
         d->reply_timeout_ms, retryable(d->expect_op) ? " (3 attempts)" : "");
    return;
  case EG_DS_CONNECTING:
    fail(d, EG_PORT_OPEN, -1, "port %s: TCP connection not established within %u ms", d->port.name, d->cfg->timeouts.command_ms);
    return;
  case EG_DS_REOPEN:
    d->state = EG_DS_IDLE;
    open_port(d);
    return;
  case EG_DS_IDLE:
  case EG_DS_DONE:
    return;
  }
}

static void connected(eg_dev *d) {
  d->state = EG_DS_IDLE;
  if (d->cfg->before == EG_BEFORE_NO_RESET_NO_SYNC) {
    /* Assume a loader is listening; learn the status length from replies. */
    set_stage(d, EG_STAGE_SYNC);
    d->status_len = 0;
    d->stub_running = false;
    detect(d);
    return;
  }
  connect_attempt(d);
}

/* A port that errors before the chip has said anything (a USB adapter
 * glitching as it is plugged, a network serial server still dropping the
 * previous client) is closed and opened again, within the connect attempts,
 * instead of failing the unit at once. Once the chip has answered, a lost
 * port fails the unit: its state is gone. */
static void handle_closed(uv_handle_t *h);

#define MAX_REOPENS 3
#define REOPEN_DELAY_MS 300

static bool may_reopen(const eg_dev *d) {
  return d->reopens < MAX_REOPENS && !d->closing &&
         (d->stage == EG_STAGE_OPEN || d->stage == EG_STAGE_RESET || d->stage == EG_STAGE_SYNC) &&
         d->sync_replies == 0 && d->attempt < d->cfg->connect_attempts;
}

static void reopen_poll_closed(uv_handle_t *h) {
  eg_dev *d = h->data;
  if (d->closing) {
    handle_closed(h);
    return;
  }
  d->handles_open--;
  d->state = EG_DS_REOPEN;
  arm(d, REOPEN_DELAY_MS);
}

static void reopen(eg_dev *d, const char *why) {
  d->reopens++;
  dev_log(d, "port error before the chip answered (%s): reopening (%d of %d)", why, d->reopens, MAX_REOPENS);
  uv_timer_stop(&d->timer);
  if (d->poll_started) uv_poll_stop(&d->poll);
  d->poll_started = false;
  eg_port_close(&d->port);
  eg_slip_dec_reset(&d->dec);
  d->tx_len = d->tx_off = 0;
  if (d->poll_initialised) {
    d->poll_initialised = false; /* closing it: eg_dev_close must not close it again */
    uv_close((uv_handle_t *)&d->poll, reopen_poll_closed);
    return;
  }
  d->state = EG_DS_REOPEN;
  arm(d, REOPEN_DELAY_MS);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  eg_dev *d = h->data;
  if (d->finished) return;
  if (status < 0) {
    /* libuv says UV_EBADF for any POLLERR: ask the port what it was (a
     * refused connect, an unplugged adapter). */
    const eg_err pe = eg_port_diagnose(&d->port, NULL);
    if (may_reopen(d)) {
      reopen(d, d->port.errmsg);
      return;
    }
    fail(d, pe, d->expect_op ? d->expect_op : -1, "%s (during %s)", d->port.errmsg, eg_stage_name(d->stage));
    return;
  }
  if (d->port.connecting) {
    if (!(events & UV_WRITABLE)) return;
    eg_fault cf;
    eg_fault_clear(&cf);
    const eg_err e = eg_port_finish_connect(&d->port, &cf);
    if (e != EG_OK) {
      if (may_reopen(d)) {
        reopen(d, cf.msg);
        return;
      }
      d->rec.fault = cf;
      d->rec.fault.stage = d->stage;
      finish(d, e);
      return;
    }
    if (d->port.connecting) return; /* not yet: wait for the next writable */
    uv_timer_stop(&d->timer);
    poll_update(d);
    connected(d);
    return;
  }
  if (events & UV_WRITABLE) flush_tx(d);
  if (d->finished || !(events & UV_READABLE)) return;
  uint8_t buf[4096];
  for (int i = 0; i < 16 && !d->finished; i++) {
    size_t got = 0;
    const eg_err e = eg_port_read(&d->port, buf, sizeof buf, &got);
    if (e != EG_OK) {
      if (may_reopen(d)) {
        reopen(d, d->port.errmsg[0] ? d->port.errmsg : eg_strerror(e));
        return;
      }
      fail(d, e, d->expect_op ? d->expect_op : -1, "port %s: the device disappeared during %s (%s)", d->port.name,
           eg_stage_name(d->stage), d->port.errmsg[0] ? d->port.errmsg : eg_strerror(e));
      return;
    }
    if (got == 0) break;
    d->rec.bytes_rx += got;
    eg_slip_dec_push(&d->dec, buf, got, slip_event, d);
    if (got < sizeof buf) break;
  }
  poll_update(d); /* reading may have queued telnet answers (RFC 2217) */
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
  d->port.fd = -1;
  snprintf(d->port.name, sizeof d->port.name, "%s", port_name);
  eg_unit_record_init(&d->rec);
  snprintf(d->rec.port, sizeof d->rec.port, "%s", port_name);
  eg_slip_dec_init(&d->dec, d->rxframe, sizeof d->rxframe);
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  d->handles_open = 1;
  d->stage = EG_STAGE_NONE;
  return EG_OK;
}

/* Open the port and watch it; then connect (or wait for TCP to connect). */
static void open_port(eg_dev *d) {
  const eg_dev_config *c = d->cfg;
  const uint32_t open_baud = c->before == EG_BEFORE_NO_RESET_NO_SYNC ? c->baud : c->connect_baud;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_port_open(&d->port, d->rec.port, open_baud, &f);
  if (e != EG_OK) {
    d->rec.fault = f;
    d->rec.fault.stage = d->stage;
    finish(d, e);
    return;
  }
  d->cur_baud = open_baud;
  d->rec.baud = open_baud;
  /* Reject what this port can never do before touching the chip. */
  const bool needs_lines = c->before == EG_BEFORE_DEFAULT_RESET || c->before == EG_BEFORE_USB_RESET;
  if (!d->port.can_reset && (needs_lines || c->after == EG_AFTER_HARD_RESET)) {
    set_stage(d, needs_lines ? EG_STAGE_RESET : EG_STAGE_AFTER);
    fail(d, EG_RESET_UNSUPPORTED, -1, "port %s cannot drive DTR/RTS (%s), so --%s %s is impossible; use --%s %s", d->port.name,
         eg_port_kind_name(&d->port), needs_lines ? "before" : "after",
         needs_lines ? eg_before_name(c->before) : eg_after_name(c->after), needs_lines ? "before" : "after",
         needs_lines ? "no-reset" : "no-reset");
    return;
  }
  int rc = uv_poll_init(d->loop, &d->poll, d->port.fd);
  if (rc < 0) {
    fail(d, EG_PORT_OPEN, -1, "port %s: cannot watch its descriptor: %s", d->port.name, uv_strerror(rc));
    return;
  }
  d->poll.data = d;
  d->handles_open++;
  d->poll_initialised = true;
  d->poll_events = 0;
  if (d->port.connecting) {
    d->state = EG_DS_CONNECTING;
    poll_update(d);
    arm(d, c->timeouts.command_ms);
    return;
  }
  poll_update(d);
  connected(d);
}

void eg_dev_start(eg_dev *d) {
  d->rec.started_ms = now_epoch_ms();
  d->stage_t0 = uv_now(d->loop);
  set_stage(d, EG_STAGE_OPEN);
  open_port(d);
}

void eg_dev_abort(eg_dev *d) {
  if (d->finished) return;
  d->aborted = true;
  eg_fault_set(&d->rec.fault, EG_ABORTED, d->stage, d->expect_op ? d->expect_op : -1, "stopped by the operator during %s",
               eg_stage_name(d->stage));
  finish(d, EG_ABORTED);
}

static void handle_closed(uv_handle_t *h) {
  eg_dev *d = h->data;
  if (--d->handles_open == 0) {
    free(d->read_owned);
    d->read_owned = NULL;
    if (d->close_cb) d->close_cb(d);
  }
}

void eg_dev_close(eg_dev *d, void (*close_cb)(eg_dev *d)) {
  if (d->closing) return;
  d->closing = true;
  d->close_cb = close_cb;
  if (!d->finished) {
    d->finished = true; /* silent teardown: no on_done */
    if (d->poll_started) uv_poll_stop(&d->poll);
    d->poll_started = false;
    eg_port_close(&d->port);
  }
  if (d->md5ctx) {
    EVP_MD_CTX_free(d->md5ctx);
    d->md5ctx = NULL;
  }
  uv_close((uv_handle_t *)&d->timer, handle_closed);
  if (d->poll_initialised) uv_close((uv_handle_t *)&d->poll, handle_closed);
}

const uint8_t *eg_dev_read_data(const eg_dev *d, size_t op_index, uint32_t *len) {
  if (op_index >= d->nops || d->ops[op_index].kind != EG_OPK_READ) return NULL;
  if (len) *len = d->ops[op_index].size ? d->ops[op_index].size : d->read_size;
  return d->ops[op_index].buf ? d->ops[op_index].buf : d->read_owned;
}
