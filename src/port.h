/* port.h - one serial link to one board, behind one interface. The backend
 * is chosen from the port's name (port.c's table, first match wins):
 *
 *   "socket://host:port"   TCP socket: raw bytes over TCP (esptool/pyserial
 *                          spelling); no baud, no DTR/RTS.
 *   "rfc2217://host:port[?options]"  RFC 2217 server: a serial port behind a
 *                          Telnet Com Port Control server (ser2net, esp-link,
 *                          pyserial's rfc2217_server, espsim). Baud and
 *                          DTR/RTS are commands sent in line with the data;
 *                          data bytes 0xFF are doubled on the wire, so a write
 *                          can leave bytes queued in the port (see
 *                          eg_port_wants_write).
 *   "mem://NAME"           in-memory port: one end of a socketpair whose other
 *                          end a test's peer owns (port_mem.h); for tests.
 *   a path resolving to a pseudo-terminal: termios (libserialport cannot open
 *                          a pty); no DTR/RTS.
 *   any other path         serial port through libserialport: 8N1, no flow
 *                          control, baud changes, DTR/RTS.
 *
 * Every backend ends up as one non-blocking file descriptor (p->fd) that the
 * caller watches with a uv_poll_t; reads and writes never block. The caller
 * owns the eg_port struct (embed it); eg_port_close() releases what open
 * acquired and leaves fd = -1. Not thread-safe; one loop thread uses it.
 *
 * Exclusive use: while a port is open it is locked (pyserial's exclusive
 * mode): a device with flock(LOCK_EX) and TIOCEXCL, a network URL through a
 * lock file (port_lock.c says where and why). A port that another process
 * (or another eg_port of this process) holds fails to open with
 * EG_PORT_BUSY, "port X is in use by PID N", before a byte is sent or a line
 * moves.
 *
 * Errors: eg_err codes; the failing operation and what the OS said go into
 * the eg_fault given to eg_port_open (may be NULL), and for every call (open
 * included) into p->errmsg, one line naming the port. Each errno is worded
 * once (port_fd.c): a vanished device reads "the device disappeared
 * (unplugged?)", a refused connection "connection refused". A vanished device
 * or connection is EG_PORT_GONE. Calls other than open/close on a closed
 * port return EG_INVAL.
 *
 * eg_port_close() is safe on a struct whose open failed, twice, and on a
 * zeroed struct with fd = -1 (never on uninitialised memory).
 */
#ifndef EG_PORT_H
#define EG_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* What a port can do, known from its name alone (eg_port_check) or from the
 * open port (p->caps). */
typedef struct eg_port_caps {
  const char *kind; /* "serial port", "pseudo-terminal", "TCP socket", "RFC 2217 server", "in-memory port" */
  bool can_reset;   /* DTR/RTS can be driven: --before default_reset/usb_reset, --after hard_reset */
  bool has_baud;    /* the host's rate reaches a UART (false for raw TCP: the rate means nothing there) */
  bool is_network;  /* a URL reached over the network (no device node) */
} eg_port_caps;

typedef struct eg_port_backend eg_port_backend; /* private: port_backend.h */
struct eg__port_lock;                           /* private: port_lock.c */

typedef struct eg_port {
  const eg_port_backend *backend; /* chosen from the name; NULL when never opened */
  eg_port_caps caps;    /* what this port can do (valid from a successful open on) */
  char name[256];       /* as the user gave it */
  char path[256];       /* resolved device path (symlinks followed); "" for URLs */
  int fd;               /* non-blocking; -1 when closed */
  uint32_t baud;        /* current host-side rate (TCP: remembered, no effect) */
  bool can_reset;       /* = caps.can_reset (kept for callers) */
  bool connecting;      /* TCP, RFC 2217: connect() in progress, wait for writable */
  int dtr, rts;         /* last values set (1 = asserted), -1 unknown */
  void *impl;           /* the backend's own state (libserialport handle, Telnet state, ...) */
  struct eg__port_lock *lock; /* held while open */
  char errmsg[256];     /* last failure in one line ("" if none since open) */
} eg_port;

/* Can `name` be opened, and what will the port be able to do? Decided from
 * the name and the file system alone: nothing is opened, no board is
 * touched, no name is resolved through DNS. Refused (EG_PORT_OPEN, the reason
 * in `why`, one line naming the port): an empty or too long name, an
 * unsupported URL scheme (http://), a malformed URL, a path that does not
 * exist, a regular file, a directory, anything else that is not a character
 * device, a character device the kernel says is no tty, an unregistered
 * mem:// name. On success *caps (may be NULL) says what an open port will
 * offer; a caller refuses an impossible --before and --after together from
 * it. Every refusal here is bad input (exit 2). `why` may be NULL. */
eg_err eg_port_check(const char *name, eg_port_caps *caps, char *why, size_t cap);

/* "serial port", "pseudo-terminal", "TCP socket", "RFC 2217 server",
 * "in-memory port"; "port" before a successful open. For messages. */
const char *eg_port_kind_name(const eg_port *p);

/* Open `name` at `baud`, 8N1, no flow control, non-blocking, locked for
 * exclusive use (EG_PORT_BUSY when another holds it). The name is checked
 * as eg_port_check does first. URLs may carry pyserial's
 * "?option&option=value" tail, which is ignored (a malformed one is
 * EG_PORT_OPEN). DTR and RTS are left as they are (some adapters reset the
 * chip on open). RFC 2217: the Telnet negotiation and the settings (baud,
 * 8N1, no flow control) are queued at once and go out as soon as the
 * connection is up; the server's answers are not awaited. EG_NOMEM if its
 * state cannot be allocated. */
eg_err eg_port_open(eg_port *p, const char *name, uint32_t baud, eg_fault *f);
/* TCP, RFC 2217: call when the fd first becomes writable while p->connecting; returns
 * EG_OK once connected, EG_PORT_OPEN ("connection refused", ... in f) if refused.
 * If the connection is still in progress it returns EG_OK and leaves
 * p->connecting true (wait for writable again). A host name resolving to
 * several addresses: open uses the first whose connect() does not fail at
 * once; there is no fallback after that, because the caller already watches
 * this fd (use a numeric address to choose). Name resolution in open is a
 * blocking getaddrinfo(); numeric addresses never touch DNS. RFC 2217: once
 * connected it also sends what it can of the queued negotiation. Other
 * backends: EG_OK. */
eg_err eg_port_finish_connect(eg_port *p, eg_fault *f);
/* The event loop reported an error condition on p->fd (libuv calls a poll
 * callback with status UV_EBADF for POLLERR, whatever its cause: a refused
 * connect, a reset connection, a hung-up tty after an unplug). Finds out
 * what happened from the fd (a socket's pending error, the tty's state, the
 * device node) and returns it like the failing call would have: while
 * connecting "connection refused" and the like (EG_PORT_OPEN); afterwards a
 * vanished device or connection (EG_PORT_GONE) or EG_IO. Never EG_OK on an
 * open port; EG_INVAL on a closed one. Sets p->errmsg and f (may be NULL;
 * stage OPEN, which the caller overrides). */
eg_err eg_port_diagnose(eg_port *p, eg_fault *f);
void eg_port_close(eg_port *p);

/* Change the host-side baud rate (ptys: the termios speed, which espsim
 * reads). Ptys and serial ports at rates with a Bxxx constant read the speed
 * back: a driver that did not take it is EG_PORT_CONFIG, p->baud unchanged.
 * TCSANOW: bytes still queued may go out at the new rate. RFC 2217: queues
 * SET-BAUDRATE behind the data written before it and returns at once;
 * EG_PORT_CONFIG if the server has refused the Com Port option. TCP: the
 * rate is only remembered. mem://: the peer's set_baud is called. */
eg_err eg_port_set_baud(eg_port *p, uint32_t baud);
/* Drive DTR/RTS: 1 = asserted (pin low), 0 = released, -1 = leave as is.
 * Both are applied in one TIOCMSET where the backend can (esptool's
 * UnixTightReset); one alone with TIOCMBIS/TIOCMBIC (pyserial's way).
 * EG_RESET_UNSUPPORTED when !p->can_reset or the driver refuses the ioctl
 * (ENOTTY/EINVAL); EG_PORT_GONE if the device vanished; EG_INVAL for values
 * other than 1/0/-1. p->dtr/p->rts change only on success. RFC 2217: two
 * SET-CONTROL commands back to back (DTR first, then RTS), queued behind the
 * data written before them; returns at once (acknowledgements are read and
 * dropped by eg_port_read); EG_RESET_UNSUPPORTED once the server has refused
 * the Com Port option; EG_IO if the output queue is full (the server has not
 * read for a long time). mem://: the peer's set_lines gets both levels. */
eg_err eg_port_set_lines(eg_port *p, int dtr, int rts);

/* Non-blocking I/O. *done = bytes moved; 0 means "would block". A write
 * moves as much as the OS takes now and reports partial progress; on a
 * socket it never raises SIGPIPE. While p->connecting both move 0 bytes.
 * On an error *done still counts the bytes taken before it.
 * RFC 2217: a read returns data bytes only (Telnet commands, answers and
 * notifications are consumed, and any reply they need is queued), so it may
 * return 0 although the fd was readable. A write's *done counts input bytes
 * committed: sent, or escaped into the port's queue (bounded; a few KiB),
 * never to be offered again; call eg_port_flush_pending when the fd is
 * writable while eg_port_wants_write. */
eg_err eg_port_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done);
eg_err eg_port_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done);
/* True while the port holds queued output (RFC 2217 only; false for the
 * other backends and for a closed port): watch the fd for writable and call
 * eg_port_flush_pending. */
bool eg_port_wants_write(const eg_port *p);
/* Send what the OS takes now of the queued output, without blocking; EG_OK
 * with bytes still queued means "would block". A no-op (EG_OK) for the other
 * backends and while p->connecting. Errors as for eg_port_write. */
eg_err eg_port_flush_pending(eg_port *p);
/* Drop whatever input has arrived but not been read (tcflush; sockets: read
 * and discard what is queued now, FIONREAD bytes, without blocking; RFC 2217:
 * the same through the Telnet parser, then a PURGE-DATA (receive buffer)
 * command is queued for the server's side). */
eg_err eg_port_flush_input(eg_port *p);

/* Network ports: "socket://host:port" and "rfc2217://host:port[?options]".
 * Returns false for names that are not such URLs. For a URL, *ok tells
 * whether it parses; `label` gets "host:port" (the slot name a manifest
 * gives a URL port), `msg` the reason when it does not parse. */
bool eg_port_url(const char *name, bool *ok, char *label, size_t labelcap, char *msg, size_t msgcap);

/* What `espgang ports` and the manifest's USB matching know about a port. */
typedef struct eg_port_info {
  char name[256];         /* /dev/ttyUSB0 */
  char by_path[256];      /* /dev/serial/by-path/... pointing at it, or "" */
  char by_id[256];        /* /dev/serial/by-id/..., or "" */
  char description[256];
  char transport[16];     /* "native", "usb" or "bluetooth" */
  bool usb;
  int vid, pid;           /* -1 when not USB */
  int bus, address;       /* libserialport's USB bus/address, -1 unknown */
  char location[64];      /* sysfs USB port path "1-1.4", "" unknown */
  char serial[128], manufacturer[128], product[128];
} eg_port_info;

/* List serial ports (libserialport), sorted by name (ttyUSB2 before
 * ttyUSB10). *out is NULL when *count is 0. The caller frees with
 * eg_port_list_free. EG_IO if libserialport cannot enumerate. Printing the
 * list is the CLI's business (src/cli/cmd_ports.c). */
eg_err eg_port_list(eg_port_info **out, size_t *count);
void eg_port_list_free(eg_port_info *list, size_t count);
/* The port the OS lists at USB location `location` ("1-1.4"): its name in
 * `name`. EG_PORT_OPEN when none is there now; EG_IO when the ports cannot
 * be listed. Blocking (sysfs reads): call it off the loop. */
eg_err eg_port_find_location(const char *location, char *name, size_t cap);

#endif
