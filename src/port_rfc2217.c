/* port_rfc2217.c - "rfc2217://host:port": a serial port behind a Telnet Com
 * Port Control server (RFC 2217 over RFC 854 Telnet): ser2net, esp-link,
 * pyserial's rfc2217_server.py (what esptool's own tests use), espsim.
 *
 * Wire format, both directions: data bytes, with 0xFF (IAC) doubled; commands
 * start with IAC: IAC WILL/WONT/DO/DONT <option> negotiates an option, IAC SB
 * <option> <bytes, 0xFF doubled> IAC SE carries an option's parameters, IAC
 * <other> is a one-byte command (NOP, GA, ...), ignored here.
 *
 * What we send at connect: WILL/DO BINARY (8-bit clean data both ways),
 * WILL/DO SGA (no go-aheads), WILL COM-PORT-OPTION, then SET-BAUDRATE (u32
 * big-endian), SET-DATASIZE 8, SET-PARITY 1 (none), SET-STOPSIZE 1,
 * SET-CONTROL 1 (no flow control). pyserial's client sends the same
 * settings; its options differ a little (DO ECHO and DO COM-PORT-OPTION, no
 * BINARY request): we ask for BINARY because firmware images are full of
 * 0x00 and 0x0D bytes that a non-binary Telnet path may rewrite, and accept
 * the server's side of COM-PORT-OPTION when it offers it. Later:
 * SET-BAUDRATE, SET-CONTROL 8/9 (DTR on/off) and 11/12 (RTS on/off),
 * PURGE-DATA 1.
 *
 * No waiting for answers. pyserial blocks until the server echoes each
 * command with code + 100 (and has ?ign_set_control for servers that answer
 * SET-CONTROL wrongly, sredird among them); we cannot block in the loop, and
 * nothing needs the answer: the server executes commands in stream order, so
 * a SET-CONTROL queued between two writes takes effect between them on the
 * serial side, and the device's reset waits are timers of 50 ms and more.
 * Answers and the server's NOTIFY-LINESTATE/-MODEMSTATE are parsed and
 * dropped (the last values are kept for diagnostics). FLOWCONTROL-SUSPEND/
 * RESUME from the server are ignored: TCP's own back-pressure holds us.
 *
 * Option negotiation (RFC 854, RFC 1143's loop-free rules, reduced): for
 * BINARY, SGA and COM-PORT-OPTION an agreement to our request is not
 * answered, an offer or request we did not make is accepted once, and a
 * refusal of an enabled option is acknowledged; every other option is
 * refused (DONT for WILL, WONT for DO). A server that refuses COM-PORT-OPTION
 * (DONT 44) makes later baud and line changes fail instead of being ignored.
 *
 * Malformed input: an IAC inside a subnegotiation followed by anything but
 * IAC or SE ends the subnegotiation (dropped) and is taken as a command, so
 * a lost SE cannot swallow the data that follows. Subnegotiations longer than
 * EG__RFC_SB_CAP are skipped whole.
 *
 * Output goes through one queue (struct eg__rfc2217.out) so that escaped
 * data and commands leave in the order they were issued whatever the socket
 * takes: a write escapes into the queue (data only up to EG__RFC_OUT_DATA,
 * leaving room for commands), then sends what the socket takes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port_backend.h"
#include "port_rfc2217.h"
#include "port_util.h"

#define SCHEME "rfc2217://"

/* RFC 854 */
enum {
  TN_SE = 240,
  TN_SB = 250,
  TN_WILL = 251,
  TN_WONT = 252,
  TN_DO = 253,
  TN_DONT = 254,
  TN_IAC = 255,
};
/* Options: RFC 856 BINARY, RFC 858 SUPPRESS-GO-AHEAD, RFC 2217 COM-PORT. */
enum { OPT_BINARY = 0, OPT_SGA = 3, OPT_COMPORT = 44 };
/* RFC 2217 client-to-server command codes; the server answers with +100. */
enum {
  CPC_SET_BAUDRATE = 1,
  CPC_SET_DATASIZE = 2,
  CPC_SET_PARITY = 3,
  CPC_SET_STOPSIZE = 4,
  CPC_SET_CONTROL = 5,
  CPC_PURGE_DATA = 12,
  CPC_SERVER = 100,
  CPC_NOTIFY_LINESTATE = CPC_SERVER + 6,
  CPC_NOTIFY_MODEMSTATE = CPC_SERVER + 7,
};
enum { PARITY_NONE = 1, STOPSIZE_1 = 1, CONTROL_NO_FLOW = 1 };
enum { CONTROL_DTR_ON = 8, CONTROL_DTR_OFF = 9, CONTROL_RTS_ON = 11, CONTROL_RTS_OFF = 12 };
enum { PURGE_RECEIVE = 1 };

typedef struct eg__rfc2217 rfc_state;

/* ------------------------------------------------------------- output */

static size_t queued(const rfc_state *st) { return st->out_len - st->out_off; }

/* Move the unsent bytes to the front of the queue. */
static void compact(rfc_state *st) {
  if (st->out_off == 0) return;
  memmove(st->out, st->out + st->out_off, queued(st));
  st->out_len -= st->out_off;
  st->out_off = 0;
}

/* Send what the socket takes now. -1 with *err on failure. */
static int send_some(eg_port *p, int *err) {
  rfc_state *st = eg__rfc2217_state(p);
  while (st->out_off < st->out_len) {
    /* MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill us. */
    const ssize_t w = send(p->fd, st->out + st->out_off, st->out_len - st->out_off, MSG_NOSIGNAL);
    if (w > 0) {
      st->out_off += (size_t)w;
      continue;
    }
    if (w == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    *err = errno;
    return -1;
  }
  if (st->out_off == st->out_len) st->out_off = st->out_len = 0;
  return 0;
}

static eg_err send_queued(eg_port *p) {
  if (p->connecting) return EG_OK;
  int err = 0;
  if (send_some(p, &err) == 0) return EG_OK;
  return eg__port_os_fail(p, NULL, EG__OP_IO, err, "%s: write failed", p->name);
}

/* Queue wire bytes (a command, already escaped) behind everything queued. */
static eg_err queue_raw(eg_port *p, const uint8_t *b, size_t n) {
  rfc_state *st = eg__rfc2217_state(p);
  if (n > EG__RFC_OUT_CAP - queued(st))
    return eg__port_fail(p, NULL, EG_IO, "%s: RFC 2217 output queue full (%zu bytes waiting; the server is not reading)",
                         p->name, queued(st));
  if (st->out_len + n > EG__RFC_OUT_CAP) compact(st);
  memcpy(st->out + st->out_len, b, n);
  st->out_len += n;
  return EG_OK;
}

static eg_err queue_verb(eg_port *p, uint8_t verb, uint8_t opt) {
  const uint8_t b[3] = {TN_IAC, verb, opt};
  return queue_raw(p, b, sizeof b);
}

/* IAC SB COM-PORT-OPTION cmd value... IAC SE, 0xFF in the value doubled. */
static eg_err queue_sb(eg_port *p, uint8_t cmd, const uint8_t *val, size_t n) {
  uint8_t b[4 + 2 * 4 + 2];
  size_t k = 0;
  b[k++] = TN_IAC;
  b[k++] = TN_SB;
  b[k++] = OPT_COMPORT;
  b[k++] = cmd;
  for (size_t i = 0; i < n && i < 4; i++) {
    b[k++] = val[i];
    if (val[i] == TN_IAC) b[k++] = TN_IAC;
  }
  b[k++] = TN_IAC;
  b[k++] = TN_SE;
  return queue_raw(p, b, k);
}

static eg_err queue_sb1(eg_port *p, uint8_t cmd, uint8_t v) { return queue_sb(p, cmd, &v, 1); }

static eg_err queue_baud(eg_port *p, uint32_t baud) {
  const uint8_t be[4] = {(uint8_t)(baud >> 24), (uint8_t)(baud >> 16), (uint8_t)(baud >> 8), (uint8_t)baud};
  return queue_sb(p, CPC_SET_BAUDRATE, be, sizeof be);
}

/* Escape data into the queue while it stays under EG__RFC_OUT_DATA; returns
 * the input bytes taken. */
static size_t queue_data(rfc_state *st, const uint8_t *buf, size_t n) {
  compact(st);
  size_t room = st->out_len < EG__RFC_OUT_DATA ? EG__RFC_OUT_DATA - st->out_len : 0;
  size_t in = 0;
  while (in < n && room > 0) {
    const uint8_t *ff = memchr(buf + in, TN_IAC, n - in);
    size_t run = ff ? (size_t)(ff - (buf + in)) : n - in;
    if (run > room) run = room;
    memcpy(st->out + st->out_len, buf + in, run);
    st->out_len += run;
    room -= run;
    in += run;
    if (in < n && buf[in] == TN_IAC) {
      if (room < 2) break;
      st->out[st->out_len++] = TN_IAC;
      st->out[st->out_len++] = TN_IAC;
      room -= 2;
      in++;
    }
  }
  return in;
}

/* -------------------------------------------------------------- input */

static int opt_index(uint8_t opt) {
  switch (opt) {
    case OPT_BINARY: return EG__TN_BINARY;
    case OPT_SGA: return EG__TN_SGA;
    case OPT_COMPORT: return EG__TN_COMPORT;
    default: return -1;
  }
}

/* The server sent IAC verb opt. */
static eg_err negotiate(eg_port *p, uint8_t verb, uint8_t opt) {
  rfc_state *st = eg__rfc2217_state(p);
  const int i = opt_index(opt);
  /* WILL/WONT speak of the server's side (them), DO/DONT of ours (us). */
  const bool about_them = verb == TN_WILL || verb == TN_WONT;
  const bool yes = verb == TN_WILL || verb == TN_DO;
  const uint8_t agree = about_them ? TN_DO : TN_WILL, refuse = about_them ? TN_DONT : TN_WONT;
  if (i < 0) return yes ? queue_verb(p, refuse, opt) : EG_OK; /* unknown: always off */
  uint8_t *side = about_them ? &st->them[i] : &st->us[i];
  if (opt == OPT_COMPORT && !about_them) st->comport_refused = !yes;
  if (yes) {
    const bool answer = *side == EG__TN_NO; /* WANTYES: it is the answer to ours */
    *side = EG__TN_YES;
    return answer ? queue_verb(p, agree, opt) : EG_OK;
  }
  const bool answer = *side == EG__TN_YES; /* WANTYES: our request refused, no reply */
  *side = EG__TN_NO;
  return answer ? queue_verb(p, refuse, opt) : EG_OK;
}

static void subnegotiation(rfc_state *st) {
  if (st->sb_overflow || st->sb_len < 2 || st->sb[0] != OPT_COMPORT) return;
  const uint8_t cmd = st->sb[1];
  if (cmd == CPC_NOTIFY_LINESTATE && st->sb_len >= 3) st->linestate = st->sb[2];
  else if (cmd == CPC_NOTIFY_MODEMSTATE && st->sb_len >= 3) st->modemstate = st->sb[2];
  else if (cmd > CPC_SERVER && cmd <= CPC_SERVER + CPC_PURGE_DATA) st->answers++;
}

static void sb_byte(rfc_state *st, uint8_t c) {
  if (st->sb_len < sizeof st->sb) st->sb[st->sb_len++] = c;
  else st->sb_overflow = true;
}

/* Run n received bytes through the Telnet parser; data bytes go to out
 * (which may be `in` itself: out never gets ahead of in). */
static eg_err parse(eg_port *p, const uint8_t *in, size_t n, uint8_t *out, size_t *nout) {
  rfc_state *st = eg__rfc2217_state(p);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t c = in[i];
    switch (st->rx) {
      case EG__TN_DATA:
        if (c == TN_IAC) st->rx = EG__TN_IAC;
        else if (st->in_sb) sb_byte(st, c);
        else out[k++] = c;
        break;
      case EG__TN_IAC:
        st->rx = EG__TN_DATA;
        if (c == TN_IAC) {
          if (st->in_sb) sb_byte(st, c);
          else out[k++] = c;
          break;
        }
        if (c == TN_SE) {
          if (st->in_sb) subnegotiation(st);
          st->in_sb = false;
          break;
        }
        st->in_sb = false; /* any other command ends (drops) a subnegotiation */
        if (c == TN_SB) {
          st->in_sb = true;
          st->sb_overflow = false;
          st->sb_len = 0;
        } else if (c == TN_WILL || c == TN_WONT || c == TN_DO || c == TN_DONT) {
          st->verb = c;
          st->rx = EG__TN_VERB;
        }
        break;
      case EG__TN_VERB: {
        st->rx = EG__TN_DATA;
        const eg_err e = negotiate(p, st->verb, c);
        if (e != EG_OK) return e;
        break;
      }
    }
  }
  *nout = k;
  return EG_OK;
}

/* ------------------------------------------------------------ backend */

static eg_err rfc_check(const char *name, eg_port_caps *caps, char *key, size_t keycap, char *why, size_t whycap) {
  (void)caps;
  return eg__url_check(name, SCHEME, key, keycap, why, whycap);
}

static void rfc_close(eg_port *p) {
  free(p->impl);
  p->impl = NULL;
  eg__fd_close(p);
}

static eg_err rfc_open(eg_port *p, eg_fault *f) {
  rfc_state *st = calloc(1, sizeof *st);
  if (!st) return eg__port_fail(p, f, EG_NOMEM, "cannot open %s: out of memory", p->name);
  const eg_err e = eg__net_connect(p, f, SCHEME);
  if (e != EG_OK) {
    free(st);
    return e;
  }
  p->impl = st;
  st->rx = EG__TN_DATA;
  st->linestate = st->modemstate = -1;
  for (int i = 0; i < EG__TN_NOPTS; i++) st->us[i] = st->them[i] = EG__TN_WANTYES;
  st->them[EG__TN_COMPORT] = EG__TN_NO; /* the server's side of it is its business */
  static const uint8_t hello[] = {
      TN_IAC, TN_WILL, OPT_BINARY, TN_IAC, TN_DO, OPT_BINARY, TN_IAC, TN_WILL, OPT_SGA,
      TN_IAC, TN_DO,   OPT_SGA,    TN_IAC, TN_WILL, OPT_COMPORT,
  };
  /* An empty queue has room for all of it: these cannot fail. */
  (void)queue_raw(p, hello, sizeof hello);
  (void)queue_baud(p, p->baud);
  (void)queue_sb1(p, CPC_SET_DATASIZE, 8);
  (void)queue_sb1(p, CPC_SET_PARITY, PARITY_NONE);
  (void)queue_sb1(p, CPC_SET_STOPSIZE, STOPSIZE_1);
  (void)queue_sb1(p, CPC_SET_CONTROL, CONTROL_NO_FLOW);
  if (p->connecting) return EG_OK;
  int err = 0;
  if (send_some(p, &err) == 0) return EG_OK;
  rfc_close(p);
  return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot open %s: sending the Telnet negotiation failed", p->name);
}

static eg_err rfc_finish_connect(eg_port *p, eg_fault *f) {
  const eg_err e = eg__net_finish_connect(p, f);
  if (e != EG_OK || p->connecting) return e;
  const eg_err s = send_queued(p);
  if (s != EG_OK && f) eg_fault_set(f, s, EG_STAGE_OPEN, -1, "%s", p->errmsg);
  return s;
}

static bool rfc_wants_write(const eg_port *p) { return queued(eg__rfc2217_state(p)) > 0; }

static eg_err rfc_flush_pending(eg_port *p) { return send_queued(p); }

static eg_err rfc_set_baud(eg_port *p, uint32_t baud) {
  if (eg__rfc2217_state(p)->comport_refused)
    return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: the RFC 2217 server refused the Com Port option: cannot set %u baud",
                         p->name, baud);
  const eg_err e = queue_baud(p, baud);
  return e != EG_OK ? e : send_queued(p);
}

static eg_err rfc_set_lines(eg_port *p, int dtr, int rts) {
  if (eg__rfc2217_state(p)->comport_refused)
    return eg__port_fail(p, NULL, EG_RESET_UNSUPPORTED,
                         "%s: the RFC 2217 server refused the Com Port option: it cannot drive DTR/RTS", p->name);
  /* Two commands where a tty takes one TIOCMSET: DTR first, as pyserial's
   * and esptool's resets set DTR before RTS. Both are queued before any
   * byte is sent, so they leave in one segment when the socket has room. */
  if (dtr >= 0) {
    const eg_err e = queue_sb1(p, CPC_SET_CONTROL, dtr ? CONTROL_DTR_ON : CONTROL_DTR_OFF);
    if (e != EG_OK) return e;
  }
  if (rts >= 0) {
    const eg_err e = queue_sb1(p, CPC_SET_CONTROL, rts ? CONTROL_RTS_ON : CONTROL_RTS_OFF);
    if (e != EG_OK) return e;
  }
  return send_queued(p);
}

static eg_err rfc_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done) {
  *done = 0;
  /* A burst of commands yields no data: read on a few times rather than
   * report "would block" while more is queued. */
  for (int tries = 0; tries < 8; tries++) {
    const ssize_t n = recv(p->fd, buf, cap, 0);
    if (n > 0) {
      size_t got = 0;
      eg_err e = parse(p, buf, (size_t)n, buf, &got);
      /* Replies to the server's negotiation leave at once if they can. */
      if (e == EG_OK && queued(eg__rfc2217_state(p)) > 0) e = send_queued(p);
      if (e != EG_OK) return e;
      if (got > 0) {
        *done = got;
        return EG_OK;
      }
      continue;
    }
    if (n == 0) return eg__port_fail(p, NULL, EG_PORT_GONE, "%s: connection closed by the peer", p->name);
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return EG_OK;
    return eg__port_os_fail(p, NULL, EG__OP_IO, err, "%s: read failed", p->name);
  }
  return EG_OK;
}

static eg_err rfc_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done) {
  *done = 0;
  rfc_state *st = eg__rfc2217_state(p);
  /* What is queued goes first: it was issued first. */
  eg_err e = send_queued(p);
  if (e != EG_OK) return e;
  size_t in = 0;
  while (in < n) {
    in += queue_data(st, buf + in, n - in);
    e = send_queued(p);
    if (e != EG_OK) break;
    /* Bytes still queued: the socket is full; the rest waits for writable. */
    if (queued(st) > 0) break;
  }
  *done = in; /* queued bytes are committed: never offer them again */
  return e;
}

/* A chunk of stale input: honour the telnet commands in it, drop the data. */
static eg_err parse_and_drop(eg_port *p, uint8_t *buf, size_t n) {
  size_t got = 0;
  return parse(p, buf, n, buf, &got);
}

static eg_err rfc_flush_input(eg_port *p) {
  if (!p->connecting) {
    const eg_err e = eg__fd_drain(p, parse_and_drop);
    if (e != EG_OK) return e;
  }
  /* And the server's buffer of what the chip sent and we have not had. */
  const eg_err e = queue_sb1(p, CPC_PURGE_DATA, PURGE_RECEIVE);
  return e != EG_OK ? e : send_queued(p);
}

const eg_port_backend eg__port_rfc2217 = {
  .scheme = SCHEME,
  .caps = {.kind = "RFC 2217 server", .can_reset = true, .has_baud = true, .is_network = true},
  .socket = true,
  .lock = EG__LOCK_URL,
  .check = rfc_check,
  .claims = NULL,
  .open = rfc_open,
  .finish_connect = rfc_finish_connect,
  .close = rfc_close,
  .read = rfc_read,
  .write = rfc_write,
  .set_baud = rfc_set_baud,
  .set_lines = rfc_set_lines,
  .flush_input = rfc_flush_input,
  .wants_write = rfc_wants_write,
  .flush_pending = rfc_flush_pending,
};
