/* port_util.h - the helpers below the port backends (port_backend.h shows
 * the layers): failure messages and the one errno table, non-blocking I/O
 * on a file descriptor, termios speeds and modem lines, URLs and TCP
 * connect, exclusive-use locks, the libserialport port list. They never call
 * a backend or port.c. Private to src/port*.c; names start with eg__. The
 * pure functions are exposed for the unit tests.
 */
#ifndef EG_PORT_UTIL_H
#define EG_PORT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "port.h"

/* ------------------------------------------------ failures (port_fd.c) */

/* Format a one-line message into p->errmsg and, if f is not NULL, into f
 * (stage OPEN, no opcode). Returns code. */
eg_err eg__port_fail(eg_port *p, eg_fault *f, eg_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The next line of a /proc text (no newline) into buf, advancing *cur;
 * lines that do not fit are skipped. False at the end. */
bool eg__next_line(const char **cur, char *buf, size_t cap);

/* What a port was doing when the OS said no: decides the eg_err an errno
 * becomes (eg__errno_code). */
typedef enum eg__op {
  EG__OP_OPEN,    /* opening, connecting, locking */
  EG__OP_IO,      /* read, write, flush, poll */
  EG__OP_CONFIG,  /* baud rate, termios */
  EG__OP_LINES    /* DTR/RTS */
} eg__op;

/* The one place an errno is judged: our words for it ("the device
 * disappeared (unplugged?)", "connection refused", ...; strerror's for the
 * rest) ... */
const char *eg__errno_words(int err);
/* ... and the code it is during `op`: a vanished device or connection is
 * EG_PORT_GONE during I/O (EG_PORT_OPEN while opening), EBUSY is
 * EG_PORT_BUSY, ENOTTY and friends are EG_RESET_UNSUPPORTED for the lines
 * and EG_PORT_CONFIG for settings, anything else EG_PORT_OPEN / EG_IO /
 * EG_PORT_CONFIG by op. */
eg_err eg__errno_code(int err, eg__op op);
/* eg__port_fail with "<formatted>: <words> [ENAME]" and eg__errno_code. */
eg_err eg__port_os_fail(eg_port *p, eg_fault *f, eg__op op, int err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ------------------------------------- fd-based backends (port_fd.c) */

/* Non-blocking read/write on p->fd as port.h describes; p->backend->socket
 * picks recv/send (MSG_NOSIGNAL, EOF = the peer closed) or read/write (a tty
 * read of 0 is "nothing yet" unless the line hung up). */
eg_err eg__fd_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done);
eg_err eg__fd_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done);
/* Read and drop what a socket holds right now (FIONREAD), never more; each
 * chunk goes to `chunk` first when it is not NULL (RFC 2217 parses it so
 * commands among stale data are still honoured). EOF -> EG_PORT_GONE. */
eg_err eg__fd_drain(eg_port *p, eg_err (*chunk)(eg_port *p, uint8_t *buf, size_t n));
/* tcflush(TCIFLUSH) for a tty, eg__fd_drain for a socket. */
eg_err eg__fd_flush_input(eg_port *p);
/* eg_port_diagnose for an fd: the socket's SO_ERROR, or the tty's hang-up
 * and whether its device node is still there. */
eg_err eg__fd_diagnose(eg_port *p, eg_fault *f);
/* Close p->fd (a backend's close when the fd is all it has). */
void eg__fd_close(eg_port *p);

/* Table entries for what a backend does not have. */
eg_err eg__port_connected(eg_port *p, eg_fault *f);      /* finish_connect: nothing to finish */
eg_err eg__port_no_lines(eg_port *p, int dtr, int rts);  /* set_lines: EG_RESET_UNSUPPORTED */
eg_err eg__port_baud_ignored(eg_port *p, uint32_t baud); /* set_baud: only remembered */
bool eg__port_no_queue(const eg_port *p);                /* wants_write: false */
eg_err eg__port_nothing_pending(eg_port *p);             /* flush_pending: EG_OK */

/* -------------------------------------- termios (port_termios.c) */

/* The Bxxx constant for baud; false if termios has none. */
bool eg__tty_speed(uint32_t baud, speed_t *out);
/* Raw 8N1, no flow control, reads that never wait: applied to t. */
void eg__termios_raw(struct termios *t);
/* Set p->fd's speed to baud (a Bxxx rate) with TCSANOW and read it back:
 * tcsetattr() succeeds if any change took, so only the read-back proves it.
 * raw: make the line raw 8N1 first (opening a pty). EG_PORT_CONFIG. */
eg_err eg__termios_set_speed(eg_port *p, eg_fault *f, uint32_t baud, bool raw);
/* After a driver was asked for baud by other means (libserialport): the
 * rate it really runs at (termios2: a Bxxx constant, or BOTHER and the
 * number) must be within 2% of baud. EG_PORT_CONFIG. */
eg_err eg__termios_check_speed(eg_port *p, eg_fault *f, uint32_t baud);
/* The rate of a speed code (Bxxx, or BOTHER with the termios2 ospeed); 0
 * for a code we do not know. */
uint32_t eg__termios_rate(speed_t code, speed_t ospeed);
/* Within 2% (the kernel's own rounding when it re-encodes a rate)? */
bool eg__termios_rate_close(uint32_t actual, uint32_t want);
/* DTR/RTS on a tty fd (1 asserted, 0 released, -1 keep): both in one
 * TIOCMGET/TIOCMSET, one alone with TIOCMBIS/TIOCMBIC. Every ioctl is
 * checked; a failure is described in msg (the ioctl, the line, the
 * errno's words) and judged by eg__errno_code(err, EG__OP_LINES). */
eg_err eg__modem_set(int fd, int dtr, int rts, char *msg, size_t cap);
/* TIOCM_* bits after applying dtr/rts (same convention) to `bits`. */
int eg__modem_apply(int bits, int dtr, int rts);

/* ----------------------------------------- URLs and TCP (port_net.c) */

/* True if name starts with `scheme` ("socket://", "rfc2217://"; any case). */
bool eg__url_has_scheme(const char *name, const char *scheme);
/* Split "<scheme>host:port[?option[=value][&option...]]" ("[v6]:port" for
 * IPv6 literals). The options (pyserial's, e.g. ?ign_set_control) are checked
 * for shape and ignored. On failure returns false with the reason in msg. */
bool eg__url_parse(const char *name, const char *scheme, char *host, size_t hostcap, char *port,
                   size_t portcap, char *msg, size_t msgcap);
/* A backend's check for "<scheme>host:port" URLs: the parse, and the lock
 * key "host:port" (host lower-cased, so that socket:// and rfc2217:// to one
 * server port are one lock). */
eg_err eg__url_check(const char *name, const char *scheme, char *key, size_t keycap, char *why, size_t whycap);
/* Parse p->name as a `scheme` URL, resolve it and start a non-blocking
 * connect (TCP_NODELAY): p->fd set, p->connecting if still in progress. */
eg_err eg__net_connect(eg_port *p, eg_fault *f, const char *scheme);
/* finish_connect for a socket: SO_ERROR read and worded ("connection
 * refused"); p->connecting cleared once the peer is known. */
eg_err eg__net_finish_connect(eg_port *p, eg_fault *f);

/* ------------------------------------------- locks (port_lock.c) */

/* Lock the device at p->path for exclusive use: flock(LOCK_EX|LOCK_NB) on
 * a descriptor of our own. EG_PORT_BUSY "port X is in use by PID N" when
 * another holds it (or opened it with TIOCEXCL). */
eg_err eg__lock_device(eg_port *p, eg_fault *f);
/* The same for a network port: a lock file named after `key` (host:port). */
eg_err eg__lock_url(eg_port *p, eg_fault *f, const char *key);
/* on: once the backend has opened p->fd, TIOCEXCL, so that other opens of
 * the tty fail with EBUSY (all but root's); best effort, flock is the lock.
 * off: TIOCNXCL, before the backend closes p->fd (a pty slave outlives our
 * close while its master is open, and would keep the flag). */
void eg__lock_exclusive(eg_port *p, bool on);
/* Give the lock up (after the backend closed the port). */
void eg__lock_release(eg_port *p);
/* The PID holding a FLOCK write lock on the file dev_major:dev_minor:ino
 * according to /proc/locks text; 0 if none is listed (or the holder lives in
 * a PID namespace we cannot see). */
pid_t eg__locks_holder(const char *text, unsigned dev_major, unsigned dev_minor, unsigned long ino);
/* The lock file for a network key: "<dir>/espgang-<key, sanitised>.lock".
 * dir: $ESPGANG_LOCK_DIR, else /run/lock, else /tmp (port_lock.c says why).
 * False if it does not fit. */
bool eg__lock_file_for(const char *key, char *out, size_t cap);

/* ------------------------------------------ port list (port_list.c) */

/* The sysfs USB port ("1-1.4") in a resolved /sys/devices/... path: its
 * last component shaped bus-port[.port...]; "" if none. */
void eg__usb_location(const char *syspath, char *out, size_t cap);
/* The entry of `dir` whose realpath is `target` (the smallest name if
 * several), written as dir/entry; false (out "") if none. */
bool eg__find_link(const char *dir, const char *target, char *out, size_t cap);

#endif
