/* port_impl.h - private to port.c and its backends (port_tty.c,
 * port_serial.c, port_tcp.c, port_rfc2217.c). Not an API: names start with
 * eg__.
 *
 * Backends are entered from port.c's switch on p->kind. An open function gets
 * p with name, path (resolved, "" for URLs) and baud filled in and fd = -1; on
 * failure it releases everything it acquired, leaves fd = -1 and reports via
 * eg__port_fail. The pure helpers at the end are exposed for the unit tests.
 */
#ifndef EG_PORT_IMPL_H
#define EG_PORT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "port.h"

/* Format a one-line message into p->errmsg and, if f is not NULL, into f
 * (stage OPEN, no opcode). Returns code. */
eg_err eg__port_fail(eg_port *p, eg_fault *f, eg_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map a failed call's errno: a vanished device -> EG_PORT_GONE, ENOTTY and
 * friends -> `unsupported`, anything else -> `other`. */
eg_err eg__port_errno(int err, eg_err unsupported, eg_err other);
/* Read and drop what a socket holds right now (FIONREAD), never more; each
 * chunk goes to `chunk` first when it is not NULL (RFC 2217 parses it so
 * commands among stale data are still honoured). EOF -> EG_PORT_GONE. */
eg_err eg__drain_socket(eg_port *p, eg_err (*chunk)(eg_port *p, uint8_t *buf, size_t n));

/* --- termios backend (port_tty.c) --- */
eg_err eg__tty_open(eg_port *p, eg_fault *f);
eg_err eg__tty_set_baud(eg_port *p, uint32_t baud);
/* True if the resolved path is a pseudo-terminal (see port_tty.c). */
bool eg__tty_is_pty(const char *path);
/* The Bxxx constant for baud; false if termios has none. */
bool eg__tty_speed(uint32_t baud, speed_t *out);
/* True if /proc/tty/drivers text names a "pty*" driver owning maj:min. */
bool eg__tty_drivers_say_pty(const char *text, unsigned maj, unsigned min);

/* --- libserialport backend (port_serial.c) --- */
eg_err eg__serial_open(eg_port *p, eg_fault *f);
eg_err eg__serial_set_baud(eg_port *p, uint32_t baud);
void eg__serial_close(eg_port *p);
/* DTR/RTS on a tty fd (1 asserted, 0 released, -1 keep): both in one
 * TIOCMGET/TIOCMSET, one alone with TIOCMBIS/TIOCMBIC. Every ioctl is
 * checked; a failure is described in msg. */
eg_err eg__modem_set(int fd, int dtr, int rts, char *msg, size_t cap);
/* TIOCM_* bits after applying dtr/rts (same convention) to `bits`. */
int eg__modem_apply(int bits, int dtr, int rts);
/* The sysfs USB port ("1-1.4") in a resolved /sys/devices/... path: its
 * last component shaped bus-port[.port...]; "" if none. */
void eg__usb_location(const char *syspath, char *out, size_t cap);
/* The entry of `dir` whose realpath is `target` (the smallest name if
 * several), written as dir/entry; false (out "") if none. */
bool eg__find_link(const char *dir, const char *target, char *out, size_t cap);

/* --- TCP backend (port_tcp.c); its URL parser and connect serve rfc2217 too --- */
/* True if name starts with `scheme` ("socket://", "rfc2217://"; any case). */
bool eg__url_has_scheme(const char *name, const char *scheme);
/* Split "<scheme>host:port[?option[=value][&option...]]" ("[v6]:port" for
 * IPv6 literals). The options (pyserial's, e.g. ?ign_set_control) are checked
 * for shape and ignored. On failure returns false with the reason in msg. */
bool eg__url_parse(const char *name, const char *scheme, char *host, size_t hostcap, char *port,
                   size_t portcap, char *msg, size_t msgcap);
/* True if name starts with "socket://" (any case). */
bool eg__tcp_is_url(const char *name);
/* eg__url_parse for "socket://". */
bool eg__tcp_parse(const char *name, char *host, size_t hostcap, char *port, size_t portcap,
                   char *msg, size_t msgcap);
/* Parse p->name as a `scheme` URL, resolve it and start a non-blocking
 * connect (TCP_NODELAY): p->fd set, p->connecting if still in progress.
 * Leaves p->can_reset alone. */
eg_err eg__tcp_connect(eg_port *p, eg_fault *f, const char *scheme);
eg_err eg__tcp_open(eg_port *p, eg_fault *f);
eg_err eg__tcp_finish_connect(eg_port *p, eg_fault *f);

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

/* True if name starts with "rfc2217://" (any case). */
bool eg__rfc2217_is_url(const char *name);
eg_err eg__rfc2217_open(eg_port *p, eg_fault *f);
eg_err eg__rfc2217_finish_connect(eg_port *p, eg_fault *f);
void eg__rfc2217_close(eg_port *p);
/* The port.h calls for an open RFC 2217 port (port.c checked fd, connecting
 * for read/write, and argument ranges). They set p->errmsg on failure. */
eg_err eg__rfc2217_set_baud(eg_port *p, uint32_t baud);
eg_err eg__rfc2217_set_lines(eg_port *p, int dtr, int rts);
eg_err eg__rfc2217_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done);
eg_err eg__rfc2217_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done);
eg_err eg__rfc2217_flush_input(eg_port *p);
eg_err eg__rfc2217_flush_pending(eg_port *p);
bool eg__rfc2217_wants_write(const eg_port *p);

#endif
