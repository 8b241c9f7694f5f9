/* rfc2217.c - Telnet + RFC 2217 access-server codec (rfc2217.h).
 *
 * Facts: RFC 854 (IAC and the command bytes, IAC IAC = a data 0xFF, also
 * inside a subnegotiation), RFC 855 (IAC SB <option> ... IAC SE), RFC 1143
 * (answer a DO/WILL only when it changes the option's state, so two peers
 * never loop), RFC 2217 (the Com Port commands, the server's answers at
 * cmd + 100 with the value actually applied). What the clients send was
 * read from pyserial's serial/rfc2217.py: on open it requests DO ECHO, WILL
 * SGA, DO SGA, DO and WILL COM-PORT-OPTION, waits until WILL COM-PORT-OPTION
 * is answered with DO, then sets baud, data size, parity and stop size and
 * checks that each answer repeats its value; SET-CONTROL answers are
 * checked the same way (DTR ON -> 8 ...). espgang's client opens with WILL
 * and DO BINARY, WILL and DO SGA, WILL COM-PORT-OPTION and does not wait.
 */
#include <string.h>

#include "rfc2217.h"

/* Bits of local_on/remote_on for the options we accept. */
static int opt_bit(uint8_t opt) {
  switch (opt) {
  case ESIM_TN_OPT_BINARY: return 1;
  case ESIM_TN_OPT_SGA: return 2;
  case ESIM_TN_OPT_COMPORT: return 4;
  default: return 0;
  }
}

void esim_rfc2217_init(esim_rfc2217 *s, uint32_t baud) {
  memset(s, 0, sizeof *s);
  s->st = ESIM_TN_ST_DATA;
  s->baud = baud;
}

bool esim_rfc2217_comport(const esim_rfc2217 *s) {
  return ((s->local_on | s->remote_on) & opt_bit(ESIM_TN_OPT_COMPORT)) != 0;
}

size_t esim_rfc2217_escape(uint8_t *out, size_t cap, const uint8_t *in, size_t n, size_t *used) {
  size_t o = 0, i = 0;
  for (; i < n; i++) {
    if (in[i] == ESIM_TN_IAC) {
      if (o + 2 > cap) break;
      out[o++] = ESIM_TN_IAC;
      out[o++] = ESIM_TN_IAC;
    } else {
      if (o + 1 > cap) break;
      out[o++] = in[i];
    }
  }
  *used = i;
  return o;
}

static void reply_option(esim_rfc2217_cb cb, void *ctx, uint8_t verb, uint8_t opt) {
  const uint8_t r[3] = {ESIM_TN_IAC, verb, opt};
  cb(ctx, ESIM_RFC2217_REPLY, r, 3, 0);
}

/* IAC SB 44 <cmd+100> <value, 0xFF doubled> IAC SE */
static void reply_sb(esim_rfc2217_cb cb, void *ctx, uint8_t cmd, const uint8_t *v, size_t n) {
  uint8_t r[8 + 2 * ESIM_RFC2217_SB_MAX];
  size_t k = 0, used;
  r[k++] = ESIM_TN_IAC;
  r[k++] = ESIM_TN_SB;
  r[k++] = ESIM_TN_OPT_COMPORT;
  r[k++] = (uint8_t)(cmd + ESIM_CPC_SERVER);
  k += esim_rfc2217_escape(r + k, sizeof r - 2 - k, v, n, &used);
  r[k++] = ESIM_TN_IAC;
  r[k++] = ESIM_TN_SE;
  cb(ctx, ESIM_RFC2217_REPLY, r, k, 0);
}

static void reply_u8(esim_rfc2217_cb cb, void *ctx, uint8_t cmd, uint8_t v) { reply_sb(cb, ctx, cmd, &v, 1); }

static void negotiate(esim_rfc2217 *s, uint8_t verb, uint8_t opt, esim_rfc2217_cb cb, void *ctx) {
  const int bit = opt_bit(opt);
  switch (verb) {
  case ESIM_TN_WILL:
    if (!bit) {
      s->ignored++;
      reply_option(cb, ctx, ESIM_TN_DONT, opt);
    } else if (!(s->remote_on & bit)) {
      s->remote_on |= (uint8_t)bit;
      reply_option(cb, ctx, ESIM_TN_DO, opt);
    }
    return;
  case ESIM_TN_WONT:
    if (bit && (s->remote_on & bit)) {
      s->remote_on &= (uint8_t)~bit;
      reply_option(cb, ctx, ESIM_TN_DONT, opt);
    }
    return;
  case ESIM_TN_DO:
    if (!bit) {
      s->ignored++;
      reply_option(cb, ctx, ESIM_TN_WONT, opt);
    } else if (!(s->local_on & bit)) {
      s->local_on |= (uint8_t)bit;
      reply_option(cb, ctx, ESIM_TN_WILL, opt);
    }
    return;
  case ESIM_TN_DONT:
    if (bit && (s->local_on & bit)) {
      s->local_on &= (uint8_t)~bit;
      reply_option(cb, ctx, ESIM_TN_WONT, opt);
    }
    return;
  default:
    return;
  }
}

/* SET-CONTROL (RFC 2217 values). The answer is the state now in force: a
 * query answers the current setting, a flow-control mode we do not model
 * answers "no flow control" (1 outbound, 14 inbound), so a client that
 * checks the answer learns it was not applied. BREAK is acknowledged but
 * not modelled on the line. Values beyond 19 are unknown: no answer. */
static bool set_control(esim_rfc2217 *s, uint8_t v, esim_rfc2217_cb cb, void *ctx) {
  uint8_t ans;
  switch (v) {
  case 0: case 1: case 2: case 3: case 17: case 19: ans = 1; break;
  case 4: ans = s->brk ? 5 : 6; break;
  case 5: s->brk = true; ans = 5; break;
  case 6: s->brk = false; ans = 6; break;
  case 7: ans = s->dtr ? 8 : 9; break;
  case 8: case 9:
    s->dtr = v == 8;
    cb(ctx, ESIM_RFC2217_LINES, NULL, 0, 0);
    ans = v;
    break;
  case 10: ans = s->rts ? 11 : 12; break;
  case 11: case 12:
    s->rts = v == 11;
    cb(ctx, ESIM_RFC2217_LINES, NULL, 0, 0);
    ans = v;
    break;
  case 13: case 14: case 15: case 16: case 18: ans = 14; break;
  default:
    return false;
  }
  reply_u8(cb, ctx, ESIM_CPC_SET_CONTROL, ans);
  return true;
}

/* One Com Port command (sb = 44 cmd value...). False if malformed or unknown. */
static bool com_port_command(esim_rfc2217 *s, esim_rfc2217_cb cb, void *ctx) {
  const uint8_t cmd = s->sb[1];
  const uint8_t *v = s->sb + 2;
  const size_t vn = s->sb_len - 2;
  switch (cmd) {
  case ESIM_CPC_SIGNATURE:
    if (vn == 0) reply_sb(cb, ctx, cmd, (const uint8_t *)"espsim", 6);
    return true; /* a client's own signature needs no answer */
  case ESIM_CPC_SET_BAUDRATE: {
    if (vn != 4) break;
    const uint32_t b = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    if (b) {
      s->baud = b;
      cb(ctx, ESIM_RFC2217_BAUD, NULL, 0, b);
    }
    const uint8_t a[4] = {(uint8_t)(s->baud >> 24), (uint8_t)(s->baud >> 16), (uint8_t)(s->baud >> 8),
                          (uint8_t)s->baud};
    reply_sb(cb, ctx, cmd, a, 4);
    return true;
  }
  case ESIM_CPC_SET_DATASIZE:
    if (vn != 1) break;
    reply_u8(cb, ctx, cmd, 8);
    return true;
  case ESIM_CPC_SET_PARITY:
  case ESIM_CPC_SET_STOPSIZE:
    if (vn != 1) break;
    reply_u8(cb, ctx, cmd, 1);
    return true;
  case ESIM_CPC_SET_CONTROL:
    return vn == 1 && set_control(s, v[0], cb, ctx);
  case ESIM_CPC_NOTIFY_LINESTATE:
  case ESIM_CPC_NOTIFY_MODEMSTATE:
    /* No line errors, no modem inputs wired (CTS/DSR/RI/CD float). */
    reply_u8(cb, ctx, cmd, 0);
    return true;
  case ESIM_CPC_FLOWCONTROL_SUSPEND:
  case ESIM_CPC_FLOWCONTROL_RESUME:
    s->suspended = cmd == ESIM_CPC_FLOWCONTROL_SUSPEND;
    cb(ctx, ESIM_RFC2217_FLOW, NULL, 0, s->suspended);
    return true;
  case ESIM_CPC_SET_LINESTATE_MASK:
  case ESIM_CPC_SET_MODEMSTATE_MASK:
    if (vn != 1) break;
    if (cmd == ESIM_CPC_SET_LINESTATE_MASK) s->linestate_mask = v[0];
    else s->modemstate_mask = v[0];
    reply_u8(cb, ctx, cmd, v[0]);
    return true;
  case ESIM_CPC_PURGE_DATA:
    if (vn != 1 || v[0] < 1 || v[0] > 3) break;
    cb(ctx, ESIM_RFC2217_PURGE, NULL, 0, v[0]);
    reply_u8(cb, ctx, cmd, v[0]);
    return true;
  default:
    break;
  }
  return false;
}

static void subnegotiation(esim_rfc2217 *s, esim_rfc2217_cb cb, void *ctx) {
  /* Another option's subnegotiation, a truncated or over-long one, or a
   * command we do not know: skipped. */
  if (!s->sb_overflow && s->sb_len >= 2 && s->sb[0] == ESIM_TN_OPT_COMPORT && com_port_command(s, cb, ctx))
    s->commands++;
  else
    s->ignored++;
}

/* A byte after IAC outside a subnegotiation. */
static void after_iac(esim_rfc2217 *s, uint8_t b, esim_rfc2217_cb cb, void *ctx) {
  static const uint8_t ff = ESIM_TN_IAC;
  switch (b) {
  case ESIM_TN_IAC:
    cb(ctx, ESIM_RFC2217_DATA, &ff, 1, 0);
    s->st = ESIM_TN_ST_DATA;
    return;
  case ESIM_TN_SB:
    s->sb_len = 0;
    s->sb_overflow = false;
    s->st = ESIM_TN_ST_SB;
    return;
  case ESIM_TN_WILL:
  case ESIM_TN_WONT:
  case ESIM_TN_DO:
  case ESIM_TN_DONT:
    s->verb = b;
    s->st = ESIM_TN_ST_VERB;
    return;
  default:
    /* NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, a stray SE, or a byte that is
     * no telnet command at all: nothing for a serial line. */
    if (b != 241u) s->ignored++; /* NOP is no error */
    s->st = ESIM_TN_ST_DATA;
    return;
  }
}

void esim_rfc2217_rx(esim_rfc2217 *s, const uint8_t *in, size_t n, esim_rfc2217_cb cb, void *ctx) {
  size_t run = 0; /* start of the pending run of plain data bytes */
  size_t i = 0;
#define FLUSH_RUN()                                                            \
  do {                                                                         \
    if (i > run) cb(ctx, ESIM_RFC2217_DATA, in + run, i - run, 0);             \
  } while (0)
  for (; i < n; i++) {
    const uint8_t b = in[i];
    switch (s->st) {
    case ESIM_TN_ST_DATA:
      if (b != ESIM_TN_IAC) continue; /* part of the run */
      FLUSH_RUN();
      s->st = ESIM_TN_ST_IAC;
      break;
    case ESIM_TN_ST_IAC:
      after_iac(s, b, cb, ctx);
      break;
    case ESIM_TN_ST_VERB:
      negotiate(s, s->verb, b, cb, ctx);
      s->st = ESIM_TN_ST_DATA;
      break;
    case ESIM_TN_ST_SB:
      if (b == ESIM_TN_IAC) {
        s->st = ESIM_TN_ST_SB_IAC;
      } else if (s->sb_len < sizeof s->sb) {
        s->sb[s->sb_len++] = b;
      } else {
        s->sb_overflow = true;
      }
      break;
    case ESIM_TN_ST_SB_IAC:
      if (b == ESIM_TN_IAC) {
        if (s->sb_len < sizeof s->sb) s->sb[s->sb_len++] = b;
        else s->sb_overflow = true;
        s->st = ESIM_TN_ST_SB;
      } else if (b == ESIM_TN_SE) {
        s->st = ESIM_TN_ST_DATA;
        subnegotiation(s, cb, ctx);
      } else {
        /* IAC <command> inside SB: the subnegotiation was never closed
         * (RFC 855 leaves this undefined). Drop it and take the command. */
        s->ignored++;
        after_iac(s, b, cb, ctx);
      }
      break;
    }
    run = i + 1;
  }
  FLUSH_RUN(); /* run == n unless the input ended in data */
#undef FLUSH_RUN
}
