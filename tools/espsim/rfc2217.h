/* rfc2217.h - the access-server side of Telnet (RFC 854) with the Com Port
 * Control option (RFC 2217), as espsim's TCP front end speaks it to
 * pyserial's `rfc2217://` and espgang's port_rfc2217.c: the subset a
 * flasher needs (baud, DTR/RTS, purge), as ser2net serves it.
 *
 * Contract
 *   - Pure codec: no I/O, no allocation, no file-scope state. The caller
 *     owns the esim_rfc2217 struct (esim_rfc2217_init); any number coexist.
 *   - esim_rfc2217_rx() takes the client's bytes split anywhere and reports,
 *     in stream order and synchronously, through one callback:
 *       DATA   p,n   bytes for the serial line (IAC IAC already undoubled;
 *                    p points into the input or at a constant 0xFF);
 *       REPLY  p,n   bytes to send back to the client as they are (option
 *                    answers, command acknowledgements; already encoded);
 *       BAUD   value the client set the line rate (s->baud);
 *       LINES        DTR or RTS was set (s->dtr, s->rts; also when unchanged);
 *       PURGE  value 1 = the server's receive buffer (device -> client data
 *                    not yet sent), 2 = its transmit buffer (client -> device
 *                    data not yet on the line), 3 = both;
 *       FLOW   value 1 = FLOWCONTROL-SUSPEND (stop sending data to the
 *                    client), 0 = FLOWCONTROL-RESUME.
 *     p is valid only during the callback.
 *   - It never fails: malformed input (an unknown command, a truncated or
 *     over-long subnegotiation, an IAC followed by something unexpected) is
 *     skipped the way a telnet server skips it, never passed on as data.
 *   - Options: BINARY (0), SUPPRESS-GO-AHEAD (3) and COM-PORT-OPTION (44)
 *     are accepted in both directions (WILL -> DO, DO -> WILL, answered once
 *     per state change, RFC 1143 style); every other option is refused
 *     (WILL -> DONT, DO -> WONT). The data path is always 8-bit clean (the
 *     server behaves as if BINARY were on), as ser2net does.
 *   - Com port commands (client -> server, acknowledged with cmd + 100 and
 *     the value applied, its 0xFF bytes doubled): SIGNATURE 0 (empty = a
 *     query: answered "espsim"), SET-BAUDRATE 1 (u32 big-endian, 0 = query),
 *     SET-DATASIZE 2 / SET-PARITY 3 / SET-STOPSIZE 4 (only 8N1 is modelled:
 *     every request, query included, is answered 8 / 1 (none) / 1),
 *     SET-CONTROL 5 (see rfc2217.c), NOTIFY-LINESTATE 6 / NOTIFY-MODEMSTATE 7
 *     (answered with the current state: 0, nothing to report), FLOWCONTROL-
 *     SUSPEND 8 / RESUME 9 (no answer, as pyserial's server), SET-LINESTATE-
 *     MASK 10, SET-MODEMSTATE-MASK 11, PURGE-DATA 12 (1..3; other values are
 *     ignored). A command with a value of the wrong length is ignored.
 */
#ifndef ESIM_RFC2217_H
#define ESIM_RFC2217_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Telnet (RFC 854) */
#define ESIM_TN_IAC 255u
#define ESIM_TN_DONT 254u
#define ESIM_TN_DO 253u
#define ESIM_TN_WONT 252u
#define ESIM_TN_WILL 251u
#define ESIM_TN_SB 250u
#define ESIM_TN_SE 240u
#define ESIM_TN_OPT_BINARY 0u
#define ESIM_TN_OPT_SGA 3u
#define ESIM_TN_OPT_COMPORT 44u

/* RFC 2217 client -> server commands (server answers: + 100) */
#define ESIM_CPC_SIGNATURE 0u
#define ESIM_CPC_SET_BAUDRATE 1u
#define ESIM_CPC_SET_DATASIZE 2u
#define ESIM_CPC_SET_PARITY 3u
#define ESIM_CPC_SET_STOPSIZE 4u
#define ESIM_CPC_SET_CONTROL 5u
#define ESIM_CPC_NOTIFY_LINESTATE 6u
#define ESIM_CPC_NOTIFY_MODEMSTATE 7u
#define ESIM_CPC_FLOWCONTROL_SUSPEND 8u
#define ESIM_CPC_FLOWCONTROL_RESUME 9u
#define ESIM_CPC_SET_LINESTATE_MASK 10u
#define ESIM_CPC_SET_MODEMSTATE_MASK 11u
#define ESIM_CPC_PURGE_DATA 12u
#define ESIM_CPC_SERVER 100u

#define ESIM_RFC2217_SB_MAX 64u /* longest subnegotiation kept (a signature); longer ones are dropped */

typedef enum esim_rfc2217_ev {
  ESIM_RFC2217_DATA,
  ESIM_RFC2217_REPLY,
  ESIM_RFC2217_BAUD,
  ESIM_RFC2217_LINES,
  ESIM_RFC2217_PURGE,
  ESIM_RFC2217_FLOW
} esim_rfc2217_ev;

typedef void (*esim_rfc2217_cb)(void *ctx, esim_rfc2217_ev ev, const uint8_t *p, size_t n, uint32_t value);

typedef enum esim_tn_state {
  ESIM_TN_ST_DATA,   /* plain data */
  ESIM_TN_ST_IAC,    /* after IAC */
  ESIM_TN_ST_VERB,   /* after IAC DO/DONT/WILL/WONT: the option follows */
  ESIM_TN_ST_SB,     /* inside IAC SB ... */
  ESIM_TN_ST_SB_IAC  /* IAC inside a subnegotiation */
} esim_tn_state;

typedef struct esim_rfc2217 {
  /* parser */
  esim_tn_state st;
  uint8_t verb;
  uint8_t sb[ESIM_RFC2217_SB_MAX];
  size_t sb_len;
  bool sb_overflow;
  /* option states (bit i = option i of BINARY, SGA, COM-PORT, see rfc2217.c) */
  uint8_t local_on;  /* we WILL */
  uint8_t remote_on; /* they WILL (we said DO) */
  /* the port as the client configured it */
  uint32_t baud;
  bool dtr, rts, brk;
  uint8_t linestate_mask, modemstate_mask;
  bool suspended;
  /* counters, for logs and tests */
  uint32_t commands; /* com port commands processed */
  uint32_t ignored;  /* malformed or unknown commands, options refused */
} esim_rfc2217;

/* Initial state: no option agreed, line at `baud` 8N1, DTR/RTS released. */
void esim_rfc2217_init(esim_rfc2217 *s, uint32_t baud);
/* Feed client bytes; events go to cb(ctx, ...) in stream order. */
void esim_rfc2217_rx(esim_rfc2217 *s, const uint8_t *in, size_t n, esim_rfc2217_cb cb, void *ctx);
/* True once the client asked for the Com Port option (either direction). */
bool esim_rfc2217_comport(const esim_rfc2217 *s);

/* Escape device data for the client (0xFF -> FF FF) into out[cap]; stops
 * before a byte that does not fit. *used = input bytes consumed. Returns
 * the bytes written. */
size_t esim_rfc2217_escape(uint8_t *out, size_t cap, const uint8_t *in, size_t n, size_t *used);

#endif
