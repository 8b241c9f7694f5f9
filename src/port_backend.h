/* port_backend.h - what a port backend is: one const table of functions
 * per transport, chosen by port.c from its table of name patterns. Private
 * to src/port*.c (names start with eg__), not an API.
 *
 * Layers (no file calls up):
 *   port.c            the public API: validates arguments, chooses the
 *                     backend, locks the port, calls the table
 *   port_serial.c, port_tty.c, port_tcp.c, port_rfc2217.c, port_mem.c
 *                     one backend each; they call only the helpers below
 *   port_fd.c (errors, errno words, fd I/O), port_termios.c (speeds, modem
 *   lines), port_net.c (URLs, TCP connect), port_lock.c (exclusive use),
 *   port_list.c (libserialport's port list)
 *                     helpers (port_util.h); they call nothing above
 *
 * The contract of a table's functions, all non-NULL except where noted:
 *   check   (URL backends; NULL for device paths) is `name` well formed, and
 *           what will the port offer? May adjust *caps; writes the lock key
 *           (for EG__LOCK_URL) into key; on failure EG_PORT_OPEN with the
 *           reason in why. Opens nothing.
 *   claims  (device backends; NULL = every path) is this resolved path one
 *           of mine? Checked in table order.
 *   open    gets p with backend, caps, name, path (resolved, "" for URLs)
 *           and baud filled in, fd = -1, the lock already held. On failure
 *           it releases everything it acquired, leaves fd = -1 and reports
 *           through eg__port_fail/eg__port_os_fail (f may be NULL).
 *   close   releases what open acquired, the fd included; called once per
 *           successful open.
 *   the rest: the port.h call of the same name on an open port (port.c has
 *           checked fd >= 0, the argument ranges, p->can_reset for
 *           set_lines, and p->connecting for read/write); they set errmsg.
 */
#ifndef EG_PORT_BACKEND_H
#define EG_PORT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "port.h"

/* How a port is kept for exclusive use while open (port_lock.c). */
typedef enum eg__lock_kind {
  EG__LOCK_DEVICE, /* flock on the device node, TIOCEXCL once open */
  EG__LOCK_URL,    /* flock on a lock file named after host:port */
  EG__LOCK_NONE    /* in-process ports: the registry refuses a second open */
} eg__lock_kind;

struct eg_port_backend {
  const char *scheme;   /* "socket://" (any case), or NULL: device paths */
  eg_port_caps caps;    /* what the port offers (kind names it) */
  bool socket;          /* the fd is a socket (send/recv, SO_ERROR, EOF = peer gone) */
  eg__lock_kind lock;
  eg_err (*check)(const char *name, eg_port_caps *caps, char *key, size_t keycap, char *why, size_t whycap);
  bool (*claims)(const char *real);
  eg_err (*open)(eg_port *p, eg_fault *f);
  eg_err (*finish_connect)(eg_port *p, eg_fault *f);
  void (*close)(eg_port *p);
  eg_err (*read)(eg_port *p, uint8_t *buf, size_t cap, size_t *done);
  eg_err (*write)(eg_port *p, const uint8_t *buf, size_t n, size_t *done);
  eg_err (*set_baud)(eg_port *p, uint32_t baud);
  eg_err (*set_lines)(eg_port *p, int dtr, int rts);
  eg_err (*flush_input)(eg_port *p);
  bool (*wants_write)(const eg_port *p);
  eg_err (*flush_pending)(eg_port *p);
};

extern const eg_port_backend eg__port_tcp;     /* port_tcp.c */
extern const eg_port_backend eg__port_rfc2217; /* port_rfc2217.c */
extern const eg_port_backend eg__port_mem;     /* port_mem.c */
extern const eg_port_backend eg__port_tty;     /* port_tty.c */
extern const eg_port_backend eg__port_serial;  /* port_serial.c */

/* port.c's choice table in order (for the self-check test). */
const eg_port_backend *const *eg__port_backends(size_t *count);

/* --- pty detection (port_tty.c: the tty backend's claims) --- */
/* True if the resolved path is a pseudo-terminal slave. */
bool eg__tty_is_pty(const char *path);
/* True if /proc/tty/drivers text names a "pty*" driver owning maj:min. */
bool eg__tty_drivers_say_pty(const char *text, unsigned maj, unsigned min);

#endif
