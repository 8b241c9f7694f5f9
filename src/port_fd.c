/* port_fd.c - below the backends: one-line failure messages, the one table
 * that judges an errno, and the non-blocking read/write/drain/diagnose every
 * fd-based backend shares (port_util.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "port_backend.h"
#include "port_util.h"

eg_err eg__port_fail(eg_port *p, eg_fault *f, eg_err code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
  va_end(ap);
  for (char *c = p->errmsg; *c; c++)
    if (*c == '\n' || *c == '\r') *c = ' ';
  if (f) eg_fault_set(f, code, EG_STAGE_OPEN, -1, "%s", p->errmsg);
  return code;
}

bool eg__next_line(const char **cur, char *buf, size_t cap) {
  while (*cur && **cur) {
    const char *line = *cur, *nl = strchr(line, '\n');
    const size_t len = nl ? (size_t)(nl - line) : strlen(line);
    *cur = nl ? nl + 1 : NULL;
    if (len < cap) { /* longer lines are none of what we look for */
      memcpy(buf, line, len);
      buf[len] = '\0';
      return true;
    }
  }
  return false;
}

/* ------------------------------------------------------------ errnos */

/* What an errno means for a port, whatever call returned it. */
typedef enum errno_kind {
  K_GONE,        /* the device or the connection is gone (or never came) */
  K_BUSY,        /* another program has it */
  K_UNSUPPORTED, /* the driver does not do this (a pty asked for DTR/RTS) */
  K_OTHER
} errno_kind;

static const struct {
  int err;
  errno_kind kind;
  const char *words; /* NULL: strerror's */
} errno_table[] = {
  /* An unplugged USB adapter: the kernel hangs its tty up (read/write EIO,
   * poll POLLERR|POLLHUP) and the node vanishes; an open meanwhile gives
   * ENXIO or ENODEV. A pty whose master closed answers EIO too. */
  {EIO, K_GONE, "the device disappeared (unplugged?)"},
  {ENXIO, K_GONE, "the device disappeared (unplugged?)"},
  {ENODEV, K_GONE, "the device disappeared (unplugged?)"},
  /* Network ports. */
  {ECONNREFUSED, K_GONE, "connection refused"},
  {ECONNRESET, K_GONE, "connection reset by the peer"},
  {EPIPE, K_GONE, "connection closed by the peer"},
  {ECONNABORTED, K_GONE, "connection aborted"},
  {ENOTCONN, K_GONE, "not connected"},
  {ESHUTDOWN, K_GONE, "connection shut down"},
  {ETIMEDOUT, K_GONE, "connection timed out"},
  {EHOSTUNREACH, K_GONE, "no route to the host"},
  {ENETUNREACH, K_GONE, "network unreachable"},
  {ENETDOWN, K_GONE, "network down"},
  {EHOSTDOWN, K_GONE, "host down"},
  /* TIOCEXCL: another program opened the tty exclusively. */
  {EBUSY, K_BUSY, "in use by another program (opened exclusively)"},
  {EACCES, K_OTHER, "permission denied (is the user in the dialout group?)"},
  /* A driver without modem lines or settings: ptys refuse TIOCMGET. */
  {ENOTTY, K_UNSUPPORTED, "not supported by this device"},
  {EINVAL, K_UNSUPPORTED, "not supported by the driver"},
  {EOPNOTSUPP, K_UNSUPPORTED, "not supported by the driver"},
#if ENOTSUP != EOPNOTSUPP
  {ENOTSUP, K_UNSUPPORTED, "not supported by the driver"},
#endif
};

static int row_of(int err) {
  for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++)
    if (errno_table[i].err == err) return (int)i;
  return -1;
}

const char *eg__errno_words(int err) {
  const int r = row_of(err);
  return r >= 0 && errno_table[r].words ? errno_table[r].words : strerror(err);
}

eg_err eg__errno_code(int err, eg__op op) {
  const int r = row_of(err);
  const errno_kind k = r >= 0 ? errno_table[r].kind : K_OTHER;
  if (k == K_BUSY) return EG_PORT_BUSY;
  switch (op) {
    case EG__OP_OPEN:
      return EG_PORT_OPEN;
    case EG__OP_IO:
      return k == K_GONE ? EG_PORT_GONE : EG_IO;
    case EG__OP_CONFIG:
      return k == K_GONE ? EG_PORT_GONE : EG_PORT_CONFIG;
    case EG__OP_LINES:
      return k == K_GONE ? EG_PORT_GONE : k == K_UNSUPPORTED ? EG_RESET_UNSUPPORTED : EG_IO;
  }
  return EG_IO;
}

eg_err eg__port_os_fail(eg_port *p, eg_fault *f, eg__op op, int err, const char *fmt, ...) {
  char head[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(head, sizeof head, fmt, ap);
  va_end(ap);
  const char *name = strerrorname_np(err);
  char num[16];
  if (!name) snprintf(num, sizeof num, "errno %d", err), name = num;
  return eg__port_fail(p, f, eg__errno_code(err, op), "%s: %s [%s]", head, eg__errno_words(err), name);
}

/* ------------------------------------------------------------- fd I/O */

/* With VMIN = VTIME = 0 a tty read() returns 0 both when nothing has arrived
 * and when the line is hung up (an unplugged USB adapter; a pty whose master
 * closed, on kernels that do not answer EIO). poll() tells them apart without
 * waiting: a hung-up tty reports POLLHUP/POLLERR. */
static short revents_now(int fd) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int rc;
  do rc = poll(&pfd, 1, 0);
  while (rc < 0 && errno == EINTR);
  return rc > 0 ? pfd.revents : 0;
}

static eg_err peer_closed(eg_port *p) {
  return eg__port_fail(p, NULL, EG_PORT_GONE, "%s: connection closed by the peer", p->name);
}

static eg_err hung_up(eg_port *p) {
  return eg__port_fail(p, NULL, EG_PORT_GONE, "%s: hung up: %s", p->name, eg__errno_words(EIO));
}

eg_err eg__fd_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done) {
  const bool sock = p->backend->socket;
  for (;;) {
    const ssize_t n = sock ? recv(p->fd, buf, cap, 0) : read(p->fd, buf, cap);
    if (n > 0) {
      *done = (size_t)n;
      return EG_OK;
    }
    if (n == 0) {
      if (sock) return peer_closed(p);
      if (revents_now(p->fd) & (POLLHUP | POLLERR | POLLNVAL)) return hung_up(p);
      return EG_OK;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return EG_OK;
    return eg__port_os_fail(p, NULL, EG__OP_IO, err, "%s: read failed", p->name);
  }
}

eg_err eg__fd_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done) {
  const bool sock = p->backend->socket;
  size_t off = 0;
  while (off < n) {
    /* MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill us. */
    const ssize_t w = sock ? send(p->fd, buf + off, n - off, MSG_NOSIGNAL) : write(p->fd, buf + off, n - off);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w == 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    *done = off;
    return eg__port_os_fail(p, NULL, EG__OP_IO, err, "%s: write failed", p->name);
  }
  *done = off;
  return EG_OK;
}

eg_err eg__fd_drain(eg_port *p, eg_err (*chunk)(eg_port *p, uint8_t *buf, size_t n)) {
  int avail = 0;
  if (ioctl(p->fd, FIONREAD, &avail) < 0) return eg__port_os_fail(p, NULL, EG__OP_IO, errno, "%s: FIONREAD failed", p->name);
  /* Only what is queued now: a peer that keeps sending cannot keep us here. */
  uint8_t junk[4096];
  size_t left = avail > 0 ? (size_t)avail : 0;
  while (left > 0) {
    const ssize_t n = recv(p->fd, junk, left < sizeof junk ? left : sizeof junk, MSG_DONTWAIT);
    if (n > 0) {
      left -= (size_t)n;
      if (chunk) {
        const eg_err e = chunk(p, junk, (size_t)n);
        if (e != EG_OK) return e;
      }
      continue;
    }
    if (n == 0) return peer_closed(p);
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    return eg__port_os_fail(p, NULL, EG__OP_IO, err, "%s: read failed", p->name);
  }
  return EG_OK;
}

eg_err eg__fd_flush_input(eg_port *p) {
  if (p->backend->socket) return p->connecting ? EG_OK : eg__fd_drain(p, NULL);
  if (tcflush(p->fd, TCIFLUSH) < 0) return eg__port_os_fail(p, NULL, EG__OP_IO, errno, "%s: tcflush failed", p->name);
  return EG_OK;
}

eg_err eg__fd_diagnose(eg_port *p, eg_fault *f) {
  const short rev = revents_now(p->fd);
  if (p->backend->socket) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      if (p->connecting) return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot connect to %s", p->name);
      return eg__port_os_fail(p, f, EG__OP_IO, err, "%s", p->name);
    }
    if (rev & (POLLHUP | POLLRDHUP)) {
      const eg_err e = peer_closed(p);
      if (f) eg_fault_set(f, e, EG_STAGE_OPEN, -1, "%s", p->errmsg);
      return e;
    }
    return eg__port_fail(p, f, p->connecting ? EG_PORT_OPEN : EG_IO, "%s: the OS reported an error on the connection",
                         p->name);
  }
  /* A tty: an unplugged adapter is hung up at once; udev removes its node a
   * moment later. */
  struct stat st;
  if (p->path[0] && stat(p->path, &st) != 0 && errno == ENOENT)
    return eg__port_fail(p, f, EG_PORT_GONE, "%s: %s (%s no longer exists)", p->name, eg__errno_words(ENODEV),
                         p->path);
  if (rev & (POLLHUP | POLLERR | POLLNVAL)) {
    const eg_err e = hung_up(p);
    if (f) eg_fault_set(f, e, EG_STAGE_OPEN, -1, "%s", p->errmsg);
    return e;
  }
  return eg__port_fail(p, f, EG_IO, "%s: the OS reported an error on the port", p->name);
}

void eg__fd_close(eg_port *p) {
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
}

/* ------------------------------------------- what a backend lacks */

eg_err eg__port_connected(eg_port *p, eg_fault *f) {
  (void)p;
  (void)f;
  return EG_OK;
}

eg_err eg__port_no_lines(eg_port *p, int dtr, int rts) {
  (void)dtr;
  (void)rts;
  return eg__port_fail(p, NULL, EG_RESET_UNSUPPORTED, "%s (%s) has no DTR/RTS lines to reset a chip", p->name,
                       p->caps.kind);
}

eg_err eg__port_baud_ignored(eg_port *p, uint32_t baud) {
  (void)p;
  (void)baud;
  return EG_OK; /* raw bytes: the rate only matters to whoever is on the far side */
}

bool eg__port_no_queue(const eg_port *p) {
  (void)p;
  return false; /* writes go straight to the OS */
}

eg_err eg__port_nothing_pending(eg_port *p) {
  (void)p;
  return EG_OK;
}
