/* port_rfc2217.h - the RFC 2217 backend's state (port_rfc2217.c), in a
 * header of its own so that its unit test can look at what the Telnet
 * parser concluded. Private: names start with eg__.
 */
#ifndef EG_PORT_RFC2217_H
#define EG_PORT_RFC2217_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "port.h"

/* --- RFC 2217 backend (port_rfc2217.c) --- */
#define EG__RFC_OUT_CAP 8192  /* queued output: escaped data and commands */
#define EG__RFC_OUT_DATA 4096 /* data is queued only up to this fill, so commands always find room */
#define EG__RFC_SB_CAP 64     /* longest subnegotiation kept; longer ones are skipped whole */

/* Where the receive parser is between two bytes (a Telnet sequence may be
 * split across reads). */
typedef enum eg__tn_rx { EG__TN_DATA, EG__TN_IAC, EG__TN_VERB } eg__tn_rx;
/* One side of one option we support: RFC 1143's NO / WANTYES / YES (we never
 * change our mind after the start, so the queue bits are not needed). */
typedef enum eg__tn_opt { EG__TN_NO, EG__TN_WANTYES, EG__TN_YES } eg__tn_opt;
/* The options we support, as indexes into us[]/them[]. */
enum { EG__TN_BINARY, EG__TN_SGA, EG__TN_COMPORT, EG__TN_NOPTS };

struct eg__rfc2217 {
  uint8_t out[EG__RFC_OUT_CAP]; /* wire bytes not yet sent: out[out_off..out_len) */
  size_t out_off, out_len;
  eg__tn_rx rx;
  uint8_t verb;               /* WILL/WONT/DO/DONT awaiting its option byte */
  bool in_sb, sb_overflow;    /* inside IAC SB ... IAC SE */
  uint8_t sb[EG__RFC_SB_CAP];
  size_t sb_len;
  uint8_t us[EG__TN_NOPTS], them[EG__TN_NOPTS]; /* eg__tn_opt: we do it / they do it */
  bool comport_refused;       /* the server sent DONT COM-PORT-OPTION */
  int linestate, modemstate;  /* last NOTIFY-LINESTATE/-MODEMSTATE value, -1 none */
  uint32_t answers;           /* server answers (command + 100) to our commands seen */
};

/* p->impl of an open rfc2217:// port. */
static inline struct eg__rfc2217 *eg__rfc2217_state(const eg_port *p) { return (struct eg__rfc2217 *)p->impl; }

#endif
