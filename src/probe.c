/* probe.c - a station's quiet look at one port (probe.h). */
#include "probe.h"

#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "reset.h"

#define SYNC_MS 100
#define TRIES 2
#define REG_MS 200
#define CONNECT_MS 1000

const char *eg_probe_outcome_name(eg_probe_outcome o) {
  switch (o) {
#define EG_PROBE_NAME_CASE(name, words) \
  case EG_PROBE_##name:                 \
    return #name;
    EG_PROBE_OUTCOME_MAP(EG_PROBE_NAME_CASE)
#undef EG_PROBE_NAME_CASE
  case EG_PROBE__COUNT:
    break;
  }
  return "?";
}

const char *eg_probe_outcome_words(eg_probe_outcome o) {
  switch (o) {
#define EG_PROBE_WORDS_CASE(name, words) \
  case EG_PROBE_##name:                  \
    return words;
    EG_PROBE_OUTCOME_MAP(EG_PROBE_WORDS_CASE)
#undef EG_PROBE_WORDS_CASE
  case EG_PROBE__COUNT:
    break;
  }
  return "?";
}

static void on_up(eg_link *l);
static void on_frame(eg_link *l, const uint8_t *frame, size_t len);
static void on_noise(eg_link *l, const uint8_t *bytes, size_t len);
static void on_error(eg_link *l, eg_err code, const char *msg);

static const eg_link_callbacks link_cbs = {.on_up = on_up, .on_frame = on_frame, .on_noise = on_noise, .on_error = on_error};

void eg_probe_init(eg_probe *p, uv_loop_t *loop, void *data) {
  memset(p, 0, sizeof *p);
  p->loop = loop;
  p->data = data;
  eg_link_init(&p->link, loop, &link_cbs, p);
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  p->phase = EG_PROBE_IDLE;
}

bool eg_probe_busy(const eg_probe *p) { return p->phase != EG_PROBE_IDLE; }

static uint32_t or_default(uint32_t v, uint32_t def) { return v ? v : def; }

/* ------------------------------------------------------------ the end */

static void report(uv_timer_t *t) {
  eg_probe *p = t->data;
  p->phase = EG_PROBE_IDLE;
  if (p->cb) p->cb(p, &p->res);
}

/* Close the port now (the next opener finds it free), then tell the caller
 * from a fresh loop iteration: never from inside the link's callbacks or
 * eg_probe_start. */
static void finish(eg_probe *p, eg_probe_outcome o) {
  p->res.outcome = o;
  p->res.bytes_tx = p->link.bytes_tx - p->tx0;
  p->res.bytes_rx = p->link.bytes_rx - p->rx0;
  p->res.elapsed_ms = (uint32_t)(uv_now(p->loop) - p->t0);
  eg_link_stop(&p->link);
  p->phase = EG_PROBE_DONE;
  uv_timer_start(&p->timer, report, 0, 0);
}

static void finish_msg(eg_probe *p, eg_probe_outcome o, const char *msg) {
  snprintf(p->res.msg, sizeof p->res.msg, "%s", msg);
  finish(p, o);
}

/* ------------------------------------------------------------ resets */

static void on_timer(uv_timer_t *t);

/* Wait for the next step. A link callback may have ended the probe inside
 * the call that led here (the port vanished during a drain or a send): its
 * report must not be replaced by a wait. */
static void arm(eg_probe *p, uint32_t ms) {
  if (p->phase == EG_PROBE_DONE || p->phase == EG_PROBE_IDLE || p->phase == EG_PROBE_CLOSING) return;
  uv_timer_start(&p->timer, on_timer, ms, 0);
}
static void send_sync(eg_probe *p);

static void start_sync(eg_probe *p) {
  p->phase = EG_PROBE_SYNC;
  p->try_i = 0;
  send_sync(p);
}

static void run_plan(eg_probe *p, eg_probe_phase phase, const eg_reset_step *plan);

/* After a reset into the loader, esptool's HardReset puts the board back
 * into its application; otherwise, or then, the probe is over. */
static void after_or_finish(eg_probe *p) {
  if (p->cfg->hard_reset_after && p->did_reset && p->phase != EG_PROBE_AFTER) {
    run_plan(p, EG_PROBE_AFTER, eg_hard_reset_plan());
    return;
  }
  finish(p, EG_PROBE_FOUND);
}

static void run_steps(eg_probe *p) {
  for (;;) {
    const eg_reset_step *st = &p->steps[p->step];
    if (st->dtr == EG_RESET_END) {
      if (p->phase == EG_PROBE_RESET) {
        eg_link_drain(&p->link); /* the boot banner still counts as noise */
        if (p->phase == EG_PROBE_RESET) start_sync(p);
        return;
      }
      after_or_finish(p); /* the hard reset after is done */
      return;
    }
    p->step++;
    const eg_err e = eg_link_set_lines(&p->link, st->dtr, st->rts);
    if (e != EG_OK) {
      if (p->phase == EG_PROBE_AFTER) { /* found anyway; the board stays in its loader */
        finish(p, EG_PROBE_FOUND);
        return;
      }
      finish_msg(p, e == EG_PORT_GONE ? EG_PROBE_ABSENT : EG_PROBE_ERROR, p->link.port.errmsg);
      return;
    }
    if (st->wait_ms) {
      arm(p, st->wait_ms);
      return;
    }
  }
}

static void run_plan(eg_probe *p, eg_probe_phase phase, const eg_reset_step *plan) {
  p->phase = phase;
  p->steps = plan;
  p->step = 0;
  run_steps(p);
}

/* ------------------------------------------------------------ SYNC and registers */

static void send_sync(eg_probe *p) {
  uint8_t pkt[EG_MAX_PACKET];
  const size_t len = eg_req_sync(pkt);
  /* Every other try leads with one more 0xC0 (see dev_connect.c: a stub that
   * took line noise for a frame start is put back in step). */
  if (eg_link_send(&p->link, pkt, len, p->try_i % 2 == 1) != EG_OK) {
    if (p->phase == EG_PROBE_SYNC) finish_msg(p, EG_PROBE_ERROR, "cannot queue SYNC");
    return;
  }
  arm(p, or_default(p->cfg->sync_ms, SYNC_MS));
}

static void send_reg(eg_probe *p) {
  uint8_t pkt[EG_MAX_PACKET];
  const size_t len = eg_req_read_reg(pkt, p->regs[p->reg_i]);
  if (eg_link_send(&p->link, pkt, len, false) != EG_OK) {
    if (p->phase == EG_PROBE_REGS) after_or_finish(p);
    return;
  }
  arm(p, or_default(p->cfg->reg_ms, REG_MS));
}

/* Found: read the MAC, reset back, or end. */
static void found(eg_probe *p) {
  uv_timer_stop(&p->timer);
  p->nregs = p->cfg->chip ? eg_chip_ident_regs(p->cfg->chip, p->regs, EG_CHIP_IDENT_MAX) : 0;
  if (p->nregs > EG_CHIP_IDENT_MAX) p->nregs = EG_CHIP_IDENT_MAX;
  p->reg_i = 0;
  if (p->nregs) {
    p->phase = EG_PROBE_REGS;
    send_reg(p);
    return;
  }
  after_or_finish(p);
}

static void regs_done(eg_probe *p) {
  eg_chip_ident id;
  memset(&id, 0, sizeof id);
  eg_chip_decode(p->cfg->chip, p->vals, p->res.baud, &id);
  p->res.has_mac = id.has_mac;
  memcpy(p->res.mac, id.mac, sizeof p->res.mac);
  after_or_finish(p);
}

static void on_timer(uv_timer_t *t) {
  eg_probe *p = t->data;
  switch (p->phase) {
  case EG_PROBE_RESET:
  case EG_PROBE_AFTER:
    run_steps(p);
    return;
  case EG_PROBE_SYNC: {
    if (++p->try_i < (p->cfg->tries > 0 ? p->cfg->tries : TRIES)) {
      send_sync(p);
      return;
    }
    const uint32_t next = p->rate_i == 0 ? p->cfg->rates[1] : 0;
    if (next && next != p->cfg->rates[0]) {
      p->rate_i = 1;
      p->try_i = 0;
      if (eg_link_set_baud(&p->link, next) != EG_OK) {
        finish_msg(p, EG_PROBE_ERROR, p->link.port.errmsg);
        return;
      }
      p->res.baud = next;
      eg_link_drain(&p->link);
      if (p->phase == EG_PROBE_SYNC) send_sync(p);
      return;
    }
    finish(p, p->res.noise_bytes ? EG_PROBE_NOISE : EG_PROBE_SILENT);
    return;
  }
  case EG_PROBE_REGS:
    /* A loader that answered SYNC but not READ_REG: found, MAC unknown. */
    after_or_finish(p);
    return;
  case EG_PROBE_IDLE:
  case EG_PROBE_STAT:
  case EG_PROBE_OPENING:
  case EG_PROBE_DONE:
  case EG_PROBE_CLOSING:
    return;
  }
}

/* ------------------------------------------------------------ link events */

static void on_up(eg_link *l) {
  eg_probe *p = l->data;
  if (p->phase != EG_PROBE_OPENING) return;
  const eg_reset_step *plan = l->port.can_reset ? eg_reset_plan(p->cfg->before, 0, NULL) : NULL;
  if (plan) {
    p->did_reset = true;
    run_plan(p, EG_PROBE_RESET, plan);
    return;
  }
  start_sync(p);
}

static void on_frame(eg_link *l, const uint8_t *frame, size_t len) {
  eg_probe *p = l->data;
  if (len < EG_RESP_HDR || frame[0] != 0x01) return;
  eg_resp r;
  if (p->phase == EG_PROBE_SYNC && frame[1] == EG_OP_SYNC) {
    /* 4 status bytes from an ESP32-family ROM, 2 from a stub or the ESP8266 ROM. */
    const size_t sl = eg_get_u16(frame + 2) >= 4 ? 4 : 2;
    if (eg_resp_parse(frame, len, sl, 0, &r) != EG_OK || !r.ok) return;
    p->status_len = (uint8_t)sl;
    p->res.stub = r.value == 0;
    found(p);
    return;
  }
  if (p->phase == EG_PROBE_REGS && frame[1] == EG_OP_READ_REG) {
    if (eg_resp_parse(frame, len, p->status_len, 0, &r) != EG_OK || !r.ok) return;
    uv_timer_stop(&p->timer);
    p->vals[p->reg_i++] = r.value;
    if (p->reg_i < p->nregs) {
      send_reg(p);
      return;
    }
    regs_done(p);
  }
}

static void on_noise(eg_link *l, const uint8_t *bytes, size_t len) {
  eg_probe *p = l->data;
  (void)bytes;
  p->res.noise_bytes += len;
}

static void on_error(eg_link *l, eg_err code, const char *msg) {
  eg_probe *p = l->data;
  uv_timer_stop(&p->timer);
  const bool network = strstr(p->port, "://") != NULL;
  /* A vanished port, or a network port that refuses us: nobody is there. */
  const bool absent = code == EG_PORT_GONE || (network && code == EG_PORT_OPEN);
  if (p->phase == EG_PROBE_AFTER || p->phase == EG_PROBE_REGS) { /* found; the port went afterwards */
    finish(p, EG_PROBE_FOUND);
    return;
  }
  finish_msg(p, absent ? EG_PROBE_ABSENT : EG_PROBE_ERROR, msg);
}

/* ------------------------------------------------------------ start */

static void part_closed(eg_probe *p) {
  if (--p->handles == 0 && p->close_cb) p->close_cb(p);
}

static void open_link(eg_probe *p) {
  p->phase = EG_PROBE_OPENING;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_link_open(&p->link, p->port, p->cfg->rates[0], or_default(p->cfg->connect_ms, CONNECT_MS), &f);
  if (e != EG_OK) {
    const bool network = strstr(p->port, "://") != NULL;
    finish_msg(p, network && e == EG_PORT_OPEN ? EG_PROBE_ABSENT : EG_PROBE_ERROR, f.msg);
  }
}

static void stat_cb(uv_fs_t *req) {
  eg_probe *p = req->data;
  const int result = (int)req->result;
  uv_fs_req_cleanup(req);
  p->stat_busy = false;
  if (p->phase == EG_PROBE_CLOSING) { /* closed meanwhile */
    part_closed(p);
    return;
  }
  if (p->phase != EG_PROBE_STAT) return;
  if (result < 0) {
    snprintf(p->res.msg, sizeof p->res.msg, "%.200s: %s", p->port, uv_strerror(result));
    finish(p, EG_PROBE_ABSENT);
    return;
  }
  open_link(p);
}

eg_err eg_probe_start(eg_probe *p, const char *port, const eg_probe_config *cfg, eg_probe_cb cb) {
  if (p->phase != EG_PROBE_IDLE || p->stat_busy) return EG_INVAL;
  snprintf(p->port, sizeof p->port, "%s", port);
  p->cfg = cfg;
  p->cb = cb;
  memset(&p->res, 0, sizeof p->res);
  p->res.baud = cfg->rates[0];
  p->t0 = uv_now(p->loop);
  p->did_reset = false;
  p->rate_i = 0;
  p->try_i = 0;
  p->tx0 = p->link.bytes_tx;
  p->rx0 = p->link.bytes_rx;
  p->status_len = 4;
  p->nregs = p->reg_i = 0;
  if (strstr(port, "://")) {
    open_link(p);
    return EG_OK;
  }
  p->phase = EG_PROBE_STAT;
  p->stat_req.data = p;
  if (uv_fs_stat(p->loop, &p->stat_req, port, stat_cb) != 0) {
    open_link(p); /* cannot ask: let the open say */
    return EG_OK;
  }
  p->stat_busy = true;
  return EG_OK;
}

/* ------------------------------------------------------------ close */

static void link_closed(eg_link *l) { part_closed(l->data); }
static void timer_closed(uv_handle_t *h) { part_closed(h->data); }

void eg_probe_close(eg_probe *p, void (*close_cb)(eg_probe *p)) {
  p->close_cb = close_cb;
  p->cb = NULL;
  p->phase = EG_PROBE_CLOSING;
  p->handles = 2 + (p->stat_busy ? 1 : 0);
  eg_link_close(&p->link, link_closed);
  uv_close((uv_handle_t *)&p->timer, timer_closed);
}
