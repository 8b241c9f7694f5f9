/* link.c - one port on the loop, carrying SLIP frames (see link.h). */
#include "link.h"

#include <stdio.h>
#include <string.h>

/* Reads per readable event: enough for a burst at 5 Mbaud, bounded so one
 * busy port cannot starve the others. */
#define READS_PER_EVENT 16
/* What a drain reads at most (esptool's flush_input takes what is there). */
#define DRAIN_READS 64

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

static void handle_closed(uv_handle_t *h) {
  eg_link *l = h->data;
  if (h == (uv_handle_t *)&l->poll) l->poll_closing = false;
  if (--l->handles == 0 && l->state == EG_LINK_CLOSING && l->close_cb) l->close_cb(l);
}

void eg_link_init(eg_link *l, uv_loop_t *loop, const eg_link_callbacks *cb, void *data) {
  memset(l, 0, sizeof *l);
  l->loop = loop;
  if (cb) l->cb = *cb;
  l->data = data;
  l->port.fd = -1;
  l->state = EG_LINK_CLOSED;
  eg_slip_dec_init(&l->dec, l->rxframe, sizeof l->rxframe);
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  l->handles = 1;
}

/* Watch for what we need: writable while connecting or while output waits
 * (ours, or the port's own: RFC 2217 commands), readable otherwise. */
static void watch(eg_link *l) {
  if (!l->poll_live) return;
  int ev = l->state == EG_LINK_CONNECTING ? UV_WRITABLE : UV_READABLE;
  if (l->tx_off < l->tx_len || eg_port_wants_write(&l->port)) ev |= UV_WRITABLE;
  if (ev == l->poll_events) return;
  l->poll_events = ev;
  uv_poll_start(&l->poll, ev, on_poll);
}

/* Stop using the port: close it, drop queued output and any partial frame.
 * The poll handle is closed asynchronously (uv_close); a new one is made on
 * the next open. */
static void shut(eg_link *l) {
  l->epoch++;
  uv_timer_stop(&l->timer);
  if (l->poll_live) {
    l->poll_live = false;
    l->poll_closing = true;
    uv_close((uv_handle_t *)&l->poll, handle_closed);
  }
  eg_port_close(&l->port);
  eg_slip_dec_reset(&l->dec);
  l->tx_len = l->tx_off = 0;
  l->draining = false;
}

static void fail(eg_link *l, eg_err code, const char *msg) {
  if (l->state == EG_LINK_CLOSING || l->state == EG_LINK_CLOSED) return;
  char line[384];
  snprintf(line, sizeof line, "%s", msg && *msg ? msg : eg_strerror(code));
  shut(l);
  l->state = EG_LINK_CLOSED;
  if (l->cb.on_error) l->cb.on_error(l, code, line);
}

/* The port's last words, or a generic text. */
static const char *port_words(const eg_link *l, eg_err e) { return l->port.errmsg[0] ? l->port.errmsg : eg_strerror(e); }

static void up(eg_link *l) {
  uv_timer_stop(&l->timer);
  l->state = EG_LINK_UP;
  l->opens++;
  watch(l);
  if (l->cb.on_up) l->cb.on_up(l);
}

static eg_err start(eg_link *l, eg_fault *f) {
  eg_fault pf;
  eg_fault_clear(&pf);
  const eg_err e = eg_port_open(&l->port, l->name, l->baud, &pf);
  if (e != EG_OK) {
    if (f) *f = pf;
    return e;
  }
  const int rc = uv_poll_init(l->loop, &l->poll, l->port.fd);
  if (rc < 0) {
    eg_port_close(&l->port);
    return eg_fault_set(f, EG_PORT_OPEN, EG_STAGE_OPEN, -1, "port %s: cannot watch its descriptor: %s", l->name,
                        uv_strerror(rc));
  }
  l->poll.data = l;
  l->poll_live = true;
  l->poll_events = 0;
  l->handles++;
  if (l->port.connecting) {
    l->state = EG_LINK_CONNECTING;
    watch(l);
    uv_timer_start(&l->timer, on_timer, l->connect_timeout_ms, 0);
    return EG_OK;
  }
  up(l);
  return EG_OK;
}

eg_err eg_link_open(eg_link *l, const char *name, uint32_t baud, uint32_t connect_timeout_ms, eg_fault *f) {
  snprintf(l->name, sizeof l->name, "%s", name);
  l->baud = baud;
  l->connect_timeout_ms = connect_timeout_ms ? connect_timeout_ms : 3000;
  return start(l, f);
}

void eg_link_rename(eg_link *l, const char *name) { snprintf(l->name, sizeof l->name, "%s", name); }

void eg_link_reopen(eg_link *l, uint32_t delay_ms) {
  if (l->state == EG_LINK_CLOSING) return;
  shut(l);
  l->state = EG_LINK_WAITING;
  uv_timer_start(&l->timer, on_timer, delay_ms, 0);
}

static void flush(eg_link *l) {
  /* What the port queued (RFC 2217 commands) was issued before our bytes. */
  if (eg_port_wants_write(&l->port)) {
    const eg_err e = eg_port_flush_pending(&l->port);
    if (e != EG_OK) {
      fail(l, e, port_words(l, e));
      return;
    }
  }
  while (l->tx_off < l->tx_len) {
    size_t done = 0;
    const eg_err e = eg_port_write(&l->port, l->tx + l->tx_off, l->tx_len - l->tx_off, &done);
    l->tx_off += done;
    l->bytes_tx += done;
    if (e != EG_OK) {
      fail(l, e, port_words(l, e));
      return;
    }
    if (done == 0) break;
  }
  if (l->tx_off == l->tx_len) l->tx_off = l->tx_len = 0;
  watch(l);
}

eg_err eg_link_send(eg_link *l, const uint8_t *raw, size_t len, bool lead_end) {
  if (l->state != EG_LINK_UP) return EG_INVAL;
  if (l->tx_off > 0) { /* compact */
    memmove(l->tx, l->tx + l->tx_off, l->tx_len - l->tx_off);
    l->tx_len -= l->tx_off;
    l->tx_off = 0;
  }
  if (l->tx_len + 1 + eg_slip_max_encoded(len) > sizeof l->tx) return EG_INVAL;
  if (lead_end) l->tx[l->tx_len++] = EG_SLIP_END;
  l->tx_len += eg_slip_encode(l->tx + l->tx_len, raw, len);
  flush(l);
  return EG_OK;
}

eg_err eg_link_set_baud(eg_link *l, uint32_t baud) {
  if (l->state != EG_LINK_UP) return EG_INVAL;
  const eg_err e = eg_port_set_baud(&l->port, baud);
  if (e != EG_OK) return e;
  l->baud = baud;
  watch(l); /* an RFC 2217 port may have queued SET-BAUDRATE */
  return EG_OK;
}

eg_err eg_link_set_lines(eg_link *l, int dtr, int rts) {
  if (l->state != EG_LINK_UP) return EG_INVAL;
  const eg_err e = eg_port_set_lines(&l->port, dtr, rts);
  if (e == EG_OK) watch(l); /* an RFC 2217 port may have queued SET-CONTROL */
  return e;
}

/* SLIP events -> callbacks, unless the link stopped meanwhile. */
static void slip_event(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  eg_link *l = ctx;
  (void)err;
  switch (ev) {
  case EG_SLIP_FRAME:
    if (!l->draining && l->cb.on_frame) l->cb.on_frame(l, data, len);
    return;
  case EG_SLIP_NOISE:
    if (l->cb.on_noise) l->cb.on_noise(l, data, len);
    return;
  case EG_SLIP_ERROR:
    return; /* the decoder resynchronises at the next 0xC0 by itself */
  }
}

/* Read up to `reads` chunks and decode them. False if the link stopped (an
 * error, or a callback closed or reopened it). */
static bool read_some(eg_link *l, int reads) {
  uint8_t buf[4096];
  const unsigned epoch = l->epoch;
  for (int i = 0; i < reads; i++) {
    size_t got = 0;
    const eg_err e = eg_port_read(&l->port, buf, sizeof buf, &got);
    if (e != EG_OK) {
      fail(l, e, port_words(l, e));
      return false;
    }
    if (got == 0) return true;
    l->bytes_rx += got;
    eg_slip_dec_push(&l->dec, buf, got, slip_event, l);
    if (l->epoch != epoch || l->state != EG_LINK_UP) return false;
    if (got < sizeof buf) return true;
  }
  return true;
}

void eg_link_drain(eg_link *l) {
  if (l->state != EG_LINK_UP) return;
  l->draining = true;
  const bool alive = read_some(l, DRAIN_READS);
  l->draining = false;
  if (alive) eg_slip_dec_reset(&l->dec);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  eg_link *l = h->data;
  if (!l->poll_live) return;
  if (status < 0) {
    /* libuv says UV_EBADF for any POLLERR: ask the port what it was (a
     * refused connect, an unplugged adapter). */
    const eg_err e = eg_port_diagnose(&l->port, NULL);
    fail(l, e, port_words(l, e));
    return;
  }
  if (l->state == EG_LINK_CONNECTING) {
    if (!(events & UV_WRITABLE)) return;
    eg_fault cf;
    eg_fault_clear(&cf);
    const eg_err e = eg_port_finish_connect(&l->port, &cf);
    if (e != EG_OK) {
      fail(l, e, cf.msg[0] ? cf.msg : port_words(l, e));
      return;
    }
    if (l->port.connecting) return; /* not yet: wait for the next writable */
    up(l);
    return;
  }
  if (l->state != EG_LINK_UP) return;
  const unsigned epoch = l->epoch;
  if (events & UV_WRITABLE) flush(l);
  if (l->epoch != epoch || l->state != EG_LINK_UP || !(events & UV_READABLE)) return;
  if (!read_some(l, READS_PER_EVENT)) return;
  watch(l); /* reading may have queued Telnet answers (RFC 2217) */
}

static void on_timer(uv_timer_t *t) {
  eg_link *l = t->data;
  switch (l->state) {
  case EG_LINK_CONNECTING: {
    char msg[384];
    snprintf(msg, sizeof msg, "port %s: connection not established within %u ms", l->name, l->connect_timeout_ms);
    fail(l, EG_PORT_OPEN, msg);
    return;
  }
  case EG_LINK_WAITING: {
    if (l->poll_closing) { /* the old handle's memory is not ours again yet */
      uv_timer_start(&l->timer, on_timer, 1, 0);
      return;
    }
    eg_fault f;
    eg_fault_clear(&f);
    l->state = EG_LINK_CLOSED;
    const eg_err e = start(l, &f);
    if (e != EG_OK && l->cb.on_error) l->cb.on_error(l, e, f.msg);
    return;
  }
  case EG_LINK_CLOSED:
  case EG_LINK_UP:
  case EG_LINK_CLOSING:
    return;
  }
}

void eg_link_stop(eg_link *l) {
  if (l->state == EG_LINK_CLOSING) return;
  shut(l);
  l->state = EG_LINK_CLOSED;
}

void eg_link_close(eg_link *l, void (*close_cb)(eg_link *l)) {
  if (l->state == EG_LINK_CLOSING) return;
  shut(l);
  l->state = EG_LINK_CLOSING;
  l->close_cb = close_cb;
  uv_close((uv_handle_t *)&l->timer, handle_closed);
}
