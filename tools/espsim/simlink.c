/* simlink.c - the UART wire between an esim_dev and a host fd (simlink.h).
 *
 * Receive side: host bytes are read from the fd only while fewer than the
 * read-ahead (one UART FIFO, 128 bytes, or 8 ms of the line at high rates:
 * rx_ahead) are "on the wire"; each byte is given the time its last bit
 * reaches the chip (10 bits at the host's rate, back to back), and is handed
 * to the device when that time has come. So a host writing a 16 KB block at
 * 115200 sees its writes accepted at 11.5 KB/s, as with a real adapter whose
 * buffers are full.
 *
 * Transmit side: the device's output leaves at its UART rate, 10 bits per
 * byte, each byte no earlier than the device queued it.
 *
 * One timer per link, re-armed for the next thing due and never sooner than
 * one tick (1 ms): every tick releases everything due in both directions.
 *
 * RFC 2217 (opts.rfc2217): the client's first byte decides. IAC (255): the
 * connection speaks Telnet + Com Port Control (rfc2217.c): data bytes go on
 * the wire as above, SET-BAUDRATE becomes the host's UART rate (so rates
 * garble as on a pty), SET-CONTROL DTR/RTS drive the device's auto-reset
 * circuit at the moment they are read (as ser2net's TIOCMSET overtakes the
 * data still queued in the tty), and the device's output is sent with 0xFF
 * doubled. Anything else: a raw socket, exactly as without the option.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rfc2217.h"
#include "simlink.h"
#include "ttyspeed.h"

/* Host bytes read ahead of the wire: what the adapter and the tty hold on
 * their way to the chip. At least the ESP32 UART RX FIFO (128 bytes); at
 * high rates the bytes of RX_AHEAD_MS on the line, so that a service that
 * comes a few ticks late (a loop busy with a whole rack) still finds the
 * next bytes queued and the line never idles for the simulator's sake. Each
 * byte still reaches the chip at its own time on the wire; only the host's
 * write() returns earlier, as with an adapter's buffer (CP2102N: 512-byte
 * TX FIFO; FT232R 256; the tty's own buffer in front). */
#define RX_AHEAD_MIN 128u
#define RX_AHEAD_MS 8u
#define RX_AHEAD_MAX 4096u
#define OUT_HIGH (64u * 1024u) /* stop taking device output beyond this unsent backlog */
#define TAKE_MAX 4096u
#define RFC2217_BAUD 115200u   /* the port's rate until the client sets one */

typedef enum tn_mode {
  TN_UNKNOWN, /* opts.rfc2217, nothing read yet */
  TN_RAW,     /* raw bytes */
  TN_TELNET   /* RFC 2217 */
} tn_mode;

struct esim_link {
  uv_loop_t *loop;
  esim_dev *dev;
  int fd;
  esim_link_opts o;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_events;
  bool poll_ok, timer_ok;
  bool active;
  bool closing;
  int handles;
  esim_link_close_cb close_cb;
  /* receive wire */
  double rx_line;              /* µs: when the last byte read ahead completes */
  uint8_t pend[RX_AHEAD_MAX];  /* bytes on the wire: [pend_off, pend_off + pend_len) */
  double pend_t[RX_AHEAD_MAX];
  size_t pend_off, pend_len;
  size_t ahead;                /* read-ahead for the current rate (rx_ahead) */
  /* transmit wire */
  double tx_line;
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  uint32_t last_host_baud;
  bool host_baud_known;
  uint64_t from_host, to_host;
  /* RFC 2217 */
  tn_mode tn_mode;
  esim_rfc2217 tn;
  uint64_t tn_now;       /* time of the bytes being parsed */
  uint8_t *ctl;          /* answers for the client, sent before device data */
  size_t ctl_off, ctl_len, ctl_cap;
  bool iac_half;         /* the second 0xFF of a doubled data byte is still unsent */
  bool lines_touched;    /* the client drove DTR/RTS: release them when it goes */
};

static uint64_t now_us(const esim_link *l) {
  (void)l;
  return uv_hrtime() / 1000;
}

void esim_link_opts_default(esim_link_opts *o) {
  memset(o, 0, sizeof *o);
  o->pty_slave_fd = -1;
  o->tick_us = 1000;
}

esim_dev *esim_link_dev(const esim_link *l) { return l->dev; }

void esim_link_counts(const esim_link *l, uint64_t *from_host, uint64_t *to_host) {
  if (from_host) *from_host = l->from_host;
  if (to_host) *to_host = l->to_host;
}

bool esim_link_active(const esim_link *l) { return l->active; }

bool esim_link_rfc2217(const esim_link *l) { return l->tn_mode == TN_TELNET; }

/* The rate the wire is paced at: the device's UART, or a USB port's. */
static uint32_t wire_rate(const esim_link *l) { return l->o.usb_rate ? l->o.usb_rate : esim_dev_baud(l->dev); }

static uint32_t host_baud(esim_link *l, uint64_t now) {
  if (l->o.usb_rate) return 0; /* USB CDC ignores the line coding: nothing garbles */
  uint32_t b;
  if (l->tn_mode == TN_TELNET) b = l->tn.baud;
  else if (l->o.pty_slave_fd >= 0) b = esim_tty_out_speed(l->o.pty_slave_fd);
  else if (l->o.host_baud_cb) b = l->o.host_baud_cb(l->o.ctx);
  else b = l->o.host_baud;
  if (l->host_baud_known && b != l->last_host_baud && l->o.pty_slave_fd >= 0) {
    /* The host (re)configured the port: what an open looks like on a pty. */
    esim_dev_host_attached(l->dev, now);
  }
  l->last_host_baud = b;
  l->host_baud_known = true;
  return b;
}

static double byte_us(uint32_t rate) {
  if (rate < 300) rate = 115200; /* a broken divider still clocks garbage out */
  return 10e6 / (double)rate;
}

static size_t rx_ahead(const esim_link *l, uint32_t hb) {
  const uint32_t rate = hb ? hb : wire_rate(l);
  const uint64_t n = (uint64_t)rate / 10u * RX_AHEAD_MS / 1000u;
  return n < RX_AHEAD_MIN ? RX_AHEAD_MIN : n > RX_AHEAD_MAX ? RX_AHEAD_MAX : (size_t)n;
}

static void stop_io(esim_link *l) {
  if (l->poll_ok && l->poll_events) uv_poll_stop(&l->poll);
  l->poll_events = 0;
  if (l->timer_ok) uv_timer_stop(&l->timer);
}

/* A client that drove DTR/RTS and goes away lets both go, as a tty's close
 * (HUPCL) drops them: EN released, so a chip held in reset boots. */
static void release_lines(esim_link *l) {
  if (!l->lines_touched) return;
  l->lines_touched = false;
  esim_dev_set_lines(l->dev, now_us(l), false, false);
}

static void go_inactive(esim_link *l, esim_link_event ev) {
  if (!l->active) return;
  l->active = false;
  stop_io(l);
  release_lines(l);
  if ((ev == ESIM_LINK_DISCONNECT || ev == ESIM_LINK_REENUMERATE) && l->fd >= 0) {
    /* Pull the cable: the host sees EOF (socket) or EIO/hang-up (pty). */
    shutdown(l->fd, SHUT_RDWR);
    if (!l->o.keep_fd) {
      close(l->fd);
      l->fd = -1;
    }
  }
  if (l->o.on_event) l->o.on_event(l, ev, l->o.ctx);
}

/* Hand the device the bytes whose time on the wire is over, stamped with
 * the time the last of them arrived rather than the service's: a service
 * that runs late (the tick, a busy loop) does not make the chip late. */
static void deliver_due(esim_link *l, uint64_t now, uint32_t hb) {
  size_t k = 0;
  const uint8_t *p = l->pend + l->pend_off;
  const double *pt = l->pend_t + l->pend_off;
  while (k < l->pend_len && (l->o.fast || pt[k] <= (double)now)) k++;
  if (!k) return;
  const uint64_t at = l->o.fast || pt[k - 1] >= (double)now ? now : (uint64_t)ceil(pt[k - 1]);
  esim_dev_rx(l->dev, at, p, k, hb);
  l->pend_len -= k;
  l->pend_off = l->pend_len ? l->pend_off + k : 0;
}

/* Host bytes for the device's UART: straight in (fast), or onto the
 * simulated wire, each timed at 10 bits at the host's rate (on raw TCP there
 * is none: the wire then runs at the device's rate). */
static void take_data(esim_link *l, uint64_t now, uint32_t hb, const uint8_t *p, size_t n) {
  if (!n) return;
  if (l->o.fast) {
    esim_dev_rx(l->dev, now, p, n, hb);
    return;
  }
  const double bu = byte_us(hb ? hb : wire_rate(l));
  if (l->pend_off + l->pend_len + n > RX_AHEAD_MAX && l->pend_off) { /* room at the end */
    memmove(l->pend, l->pend + l->pend_off, l->pend_len);
    memmove(l->pend_t, l->pend_t + l->pend_off, l->pend_len * sizeof l->pend_t[0]);
    l->pend_off = 0;
  }
  for (size_t i = 0; i < n && l->pend_off + l->pend_len < RX_AHEAD_MAX; i++) {
    const double start = l->rx_line > (double)now ? l->rx_line : (double)now;
    l->rx_line = start + bu;
    l->pend[l->pend_off + l->pend_len] = p[i];
    l->pend_t[l->pend_off + l->pend_len++] = l->rx_line;
  }
}

static void ctl_append(esim_link *l, const uint8_t *p, size_t n) {
  if (l->ctl_off && l->ctl_off == l->ctl_len) l->ctl_off = l->ctl_len = 0;
  if (l->ctl_len + n > l->ctl_cap) {
    size_t cap = l->ctl_cap ? 2 * l->ctl_cap : 256;
    while (cap < l->ctl_len + n) cap *= 2;
    uint8_t *b = realloc(l->ctl, cap);
    if (!b) return; /* an answer lost: the client times out, as with a dropped packet */
    l->ctl = b;
    l->ctl_cap = cap;
  }
  memcpy(l->ctl + l->ctl_len, p, n);
  l->ctl_len += n;
}

static void on_telnet(void *ctx, esim_rfc2217_ev ev, const uint8_t *p, size_t n, uint32_t value) {
  esim_link *l = ctx;
  switch (ev) {
  case ESIM_RFC2217_DATA:
    take_data(l, l->tn_now, l->o.usb_rate ? 0 : l->tn.baud, p, n);
    return;
  case ESIM_RFC2217_REPLY:
    ctl_append(l, p, n);
    return;
  case ESIM_RFC2217_BAUD:
  case ESIM_RFC2217_FLOW: {
    /* l->tn.baud / l->tn.suspended are read where they matter */
    char note[64];
    if (ev == ESIM_RFC2217_BAUD) snprintf(note, sizeof note, "rfc2217: host rate %u baud", (unsigned)value);
    else snprintf(note, sizeof note, "rfc2217: output %s", value ? "suspended" : "resumed");
    esim_dev_note(l->dev, l->tn_now, note);
    return;
  }
  case ESIM_RFC2217_LINES:
    l->lines_touched = true;
    esim_dev_set_lines(l->dev, l->tn_now, l->tn.dtr, l->tn.rts);
    return;
  case ESIM_RFC2217_PURGE:
    esim_dev_note(l->dev, l->tn_now, value == 1 ? "rfc2217: purge rx" : value == 2 ? "rfc2217: purge tx" : "rfc2217: purge rx+tx");
    if (value & 1) l->out_off = l->out_len = 0; /* device output not yet sent */
    if (value & 2) {                            /* client data not yet on the line */
      l->pend_len = l->pend_off = 0;
      l->rx_line = (double)l->tn_now;
    }
    return;
  }
}

static void host_input(esim_link *l, uint64_t now, uint32_t hb, const uint8_t *p, size_t n) {
  if (l->tn_mode == TN_UNKNOWN) {
    l->tn_mode = p[0] == ESIM_TN_IAC ? TN_TELNET : TN_RAW;
    esim_dev_note(l->dev, now, l->tn_mode == TN_TELNET ? "host speaks RFC 2217" : "host: raw bytes");
  }
  if (l->tn_mode != TN_TELNET) {
    take_data(l, now, hb, p, n);
    return;
  }
  l->tn_now = now;
  esim_rfc2217_rx(&l->tn, p, n, on_telnet, l);
}

/* Returns false when the host went away. Paced: at most what fits in the
 * read-ahead (telnet overhead only makes the data shorter). */
static bool read_more(esim_link *l, uint64_t now, uint32_t hb) {
  if (l->fd < 0) return false;
  uint8_t buf[16384];
  for (int rounds = 0; rounds < (l->o.fast ? 4 : 1); rounds++) {
    const size_t want = l->o.fast ? sizeof buf : l->pend_len < l->ahead ? l->ahead - l->pend_len : 0;
    if (!want) return true;
    const ssize_t n = read(l->fd, buf, want);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    l->from_host += (uint64_t)n;
    host_input(l, now, l->tn_mode == TN_TELNET && !l->o.usb_rate ? l->tn.baud : hb, buf, (size_t)n);
    if ((size_t)n < want) return true;
  }
  return true;
}

static bool out_append(esim_link *l, const uint8_t *p, size_t n) {
  if (l->out_off && l->out_off == l->out_len) l->out_off = l->out_len = 0;
  if (l->out_len + n > l->out_cap) {
    if (l->out_off) {
      memmove(l->out, l->out + l->out_off, l->out_len - l->out_off);
      l->out_len -= l->out_off;
      l->out_off = 0;
    }
    if (l->out_len + n > l->out_cap) {
      size_t cap = l->out_cap ? l->out_cap : 8192;
      while (cap < l->out_len + n) cap *= 2;
      uint8_t *b = realloc(l->out, cap);
      if (!b) return false;
      l->out = b;
      l->out_cap = cap;
    }
  }
  memcpy(l->out + l->out_len, p, n);
  l->out_len += n;
  return true;
}

static void pump_tx(esim_link *l, uint64_t now, uint32_t hb) {
  uint8_t buf[TAKE_MAX];
  for (int guard = 0; guard < 64; guard++) {
    if (l->out_len - l->out_off > OUT_HIGH) return; /* host not reading: hold back */
    const uint64_t ready = esim_dev_tx_ready_at(l->dev);
    if (ready == ESIM_NEVER || ready > now) return;
    const uint32_t b0 = esim_dev_baud(l->dev);
    const double bu = byte_us(wire_rate(l));
    const double start = l->tx_line > (double)ready ? l->tx_line : (double)ready;
    size_t budget = TAKE_MAX;
    if (!l->o.fast) {
      if (start + bu > (double)now) return;
      const double fit = ((double)now - start) / bu;
      budget = fit < (double)TAKE_MAX ? (size_t)fit : TAKE_MAX;
      if (!budget) return;
    }
    const size_t k = esim_dev_tx_take(l->dev, now, buf, budget, hb);
    if (k) {
      if (!l->o.fast) l->tx_line = start + (double)k * bu;
      l->to_host += k;
      out_append(l, buf, k);
    } else if (esim_dev_baud(l->dev) == b0) {
      return;
    }
  }
}

static bool soft_error(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* Telnet: first the half of a doubled 0xFF a short write left behind, then
 * the answers, then device data with 0xFF doubled (unless the client said
 * FLOWCONTROL-SUSPEND). Returns false when the host went away. */
static bool flush_telnet(esim_link *l) {
  if (l->fd < 0) return true;
  if (l->iac_half) {
    static const uint8_t ff = ESIM_TN_IAC;
    const ssize_t w = write(l->fd, &ff, 1);
    if (w != 1) return w < 0 && soft_error();
    l->iac_half = false;
  }
  while (l->ctl_off < l->ctl_len) {
    const ssize_t w = write(l->fd, l->ctl + l->ctl_off, l->ctl_len - l->ctl_off);
    if (w <= 0) return w < 0 && soft_error();
    l->ctl_off += (size_t)w;
  }
  l->ctl_off = l->ctl_len = 0;
  while (!l->tn.suspended && l->out_off < l->out_len) {
    uint8_t tmp[8192];
    const uint8_t *src = l->out + l->out_off;
    size_t used;
    const size_t k = esim_rfc2217_escape(tmp, sizeof tmp, src, l->out_len - l->out_off, &used);
    const ssize_t w = write(l->fd, tmp, k);
    if (w <= 0) return w < 0 && soft_error();
    /* Which input bytes did those w bytes carry? */
    size_t acc = 0, i = 0;
    while (i < used) {
      const size_t sz = src[i] == ESIM_TN_IAC ? 2 : 1;
      if (acc + sz > (size_t)w) {
        if (acc < (size_t)w) { /* FF went out, its double did not */
          i++;
          l->iac_half = true;
        }
        break;
      }
      acc += sz;
      i++;
    }
    l->out_off += i;
    if ((size_t)w < k) return true;
  }
  if (l->out_off == l->out_len) l->out_off = l->out_len = 0;
  return true;
}

/* Returns false when the host went away. */
static bool flush_out(esim_link *l) {
  if (l->tn_mode == TN_TELNET) return flush_telnet(l);
  while (l->fd >= 0 && l->out_off < l->out_len) {
    const ssize_t n = write(l->fd, l->out + l->out_off, l->out_len - l->out_off);
    if (n > 0) {
      l->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    return false;
  }
  if (l->out_off == l->out_len) l->out_off = l->out_len = 0;
  return true;
}

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

static void rearm(esim_link *l, uint64_t now) {
  if (!l->active) return;
  int ev = 0;
  if (l->o.fast || l->pend_len < l->ahead) ev |= UV_READABLE;
  const bool out_waits = l->out_off < l->out_len && !(l->tn_mode == TN_TELNET && l->tn.suspended);
  if (out_waits || l->ctl_off < l->ctl_len || l->iac_half) ev |= UV_WRITABLE;
  if (ev != l->poll_events) {
    if (ev) uv_poll_start(&l->poll, ev, on_poll);
    else uv_poll_stop(&l->poll);
    l->poll_events = ev;
  }
  /* When is the next thing due? */
  double next = -1;
  if (l->pend_len) next = l->pend_t[l->pend_off];
  const uint64_t dn = esim_dev_next_event(l->dev);
  if (dn != ESIM_NEVER) {
    double t = (double)dn;
    if (dn <= now) {
      /* output waiting for the line (or for the host to read) */
      if (l->out_len - l->out_off > OUT_HIGH) t = -1;
      else t = l->tx_line + byte_us(wire_rate(l));
      if (t >= 0 && t <= (double)now) t = (double)now + 1;
    }
    if (t >= 0 && (next < 0 || t < next)) next = t;
  }
  if (next < 0) {
    uv_timer_stop(&l->timer);
    return;
  }
  uint64_t delay_ms = 0;
  if (!l->o.fast || next > (double)now) {
    const double wait = next - (double)now;
    const unsigned tick = l->o.tick_us ? l->o.tick_us : 1000;
    delay_ms = wait <= 0 ? 0 : (uint64_t)((wait + 999.0) / 1000.0);
    const uint64_t min_ms = (tick + 999) / 1000;
    if (!l->o.fast && delay_ms < min_ms) delay_ms = min_ms;
  }
  uv_timer_start(&l->timer, on_timer, delay_ms, 0);
}

static void service(esim_link *l) {
  if (!l->active) return;
  const uint64_t now = now_us(l);
  uint32_t hb = host_baud(l, now);
  l->ahead = rx_ahead(l, hb);
  deliver_due(l, now, hb);
  if (!read_more(l, now, hb)) {
    go_inactive(l, ESIM_LINK_PEER_GONE);
    return;
  }
  if (l->tn_mode == TN_TELNET && !l->o.usb_rate) hb = l->tn.baud; /* just detected, or SET-BAUDRATE read */
  deliver_due(l, now, hb);
  esim_dev_advance(l->dev, now);
  if (esim_dev_take_disconnect(l->dev)) {
    go_inactive(l, ESIM_LINK_DISCONNECT);
    return;
  }
  if (esim_dev_take_reenumerate(l->dev)) {
    go_inactive(l, ESIM_LINK_REENUMERATE);
    return;
  }
  pump_tx(l, now, hb);
  if (!flush_out(l)) {
    go_inactive(l, ESIM_LINK_PEER_GONE);
    return;
  }
  rearm(l, now);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  esim_link *l = h->data;
  (void)events;
  if (status < 0 && status != UV_EAGAIN) {
    go_inactive(l, ESIM_LINK_PEER_GONE);
    return;
  }
  service(l);
}

static void on_timer(uv_timer_t *t) { service(t->data); }

bool esim_lines_decode(const uint8_t *msg, size_t n, bool *dtr, bool *rts) {
  if (n != 2 || msg[0] > 1 || msg[1] > 1) return false;
  *dtr = msg[0] == 1;
  *rts = msg[1] == 1;
  return true;
}

void esim_link_kick(esim_link *l) {
  if (l && !l->closing) service(l);
}

esim_link *esim_link_start(uv_loop_t *loop, esim_dev *dev, int fd, const esim_link_opts *opts) {
  if (!loop || !dev || fd < 0) {
    errno = EINVAL;
    return NULL;
  }
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return NULL;
  esim_link *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->loop = loop;
  l->dev = dev;
  l->fd = fd;
  if (opts) l->o = *opts;
  else esim_link_opts_default(&l->o);
  int r = uv_poll_init(loop, &l->poll, fd);
  if (r < 0) {
    free(l);
    errno = -r;
    return NULL;
  }
  l->poll_ok = true;
  l->poll.data = l;
  uv_timer_init(loop, &l->timer);
  l->timer_ok = true;
  l->timer.data = l;
  l->active = true;
  l->tn_mode = l->o.rfc2217 ? TN_UNKNOWN : TN_RAW;
  esim_rfc2217_init(&l->tn, RFC2217_BAUD);
  const uint64_t now = now_us(l);
  l->rx_line = l->tx_line = (double)now;
  l->ahead = RX_AHEAD_MIN;
  esim_dev_advance(dev, now);
  rearm(l, now);
  return l;
}

static void on_handle_closed(uv_handle_t *h) {
  esim_link *l = h->data;
  if (--l->handles > 0) return;
  if (!l->o.keep_fd && l->fd >= 0) close(l->fd);
  l->fd = -1;
  if (l->close_cb) l->close_cb(l, l->o.ctx);
  free(l->out);
  free(l->ctl);
  free(l);
}

void esim_link_close(esim_link *l, esim_link_close_cb cb) {
  if (!l || l->closing) return;
  l->closing = true;
  l->active = false;
  l->close_cb = cb;
  stop_io(l);
  release_lines(l);
  l->handles = 2;
  uv_close((uv_handle_t *)&l->poll, on_handle_closed);
  uv_close((uv_handle_t *)&l->timer, on_handle_closed);
}
