/* port.c - the backend-independent half of port.h: choosing the backend,
 * non-blocking read/write/flush on the one fd every backend ends up with,
 * errno classification, and printing the port list for `espgang ports`.
 */
#include "port.h"
#include "jsonw.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "port_impl.h"

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

eg_err eg__port_errno(int err, eg_err unsupported, eg_err other) {
  switch (err) {
    /* The device or the connection is gone: unplugged USB adapter (EIO,
     * ENXIO, ENODEV), a pty whose master closed (EIO), a dead peer. */
    case EIO: case ENXIO: case ENODEV: case EBADF: case EPIPE: case ECONNRESET:
    case ECONNABORTED: case ENOTCONN: case ESHUTDOWN: case ETIMEDOUT:
    case EHOSTUNREACH: case ENETUNREACH: case ENETDOWN: case EHOSTDOWN:
      return EG_PORT_GONE;
    case ENOTTY: case EINVAL: case EOPNOTSUPP:
#if ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
#endif
      return unsupported;
    default:
      return other;
  }
}

static bool is_gone(int err) { return eg__port_errno(err, EG_IO, EG_IO) == EG_PORT_GONE; }

eg_err eg_port_open(eg_port *p, const char *name, uint32_t baud, eg_fault *f) {
  memset(p, 0, sizeof *p);
  p->fd = -1;
  p->dtr = p->rts = -1;
  if (!name || !*name) return eg__port_fail(p, f, EG_PORT_OPEN, "no port name given");
  const size_t len = strlen(name);
  if (len >= sizeof p->name)
    return eg__port_fail(p, f, EG_PORT_OPEN, "port name too long (%zu bytes, at most %zu): %.60s...", len,
                         sizeof p->name - 1, name);
  memcpy(p->name, name, len + 1);
  if (baud == 0) return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: invalid baud rate 0", name);
  p->baud = baud;

  if (eg__tcp_is_url(name)) {
    p->kind = EG_PORT_TCP;
    return eg__tcp_open(p, f);
  }
  if (eg__rfc2217_is_url(name)) {
    p->kind = EG_PORT_RFC2217;
    return eg__rfc2217_open(p, f);
  }
  if (strstr(name, "://"))
    return eg__port_fail(p, f, EG_PORT_OPEN,
                         "%s: unsupported URL (only socket://host:port and rfc2217://host:port are)", name);

  /* Follow symlinks (/dev/serial/by-id/..., espsim's links to ptys): the
   * backend is chosen by what the name really is, and libserialport needs the
   * real /dev name (it looks up /sys/class/tty/<what follows /dev/>). */
  char real[PATH_MAX];
  if (!realpath(name, real)) return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: %s", name, strerror(errno));
  const size_t rlen = strlen(real);
  if (rlen >= sizeof p->path)
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: resolved path too long (%zu bytes)", name, rlen);
  memcpy(p->path, real, rlen + 1);

  if (eg__tty_is_pty(p->path)) {
    p->kind = EG_PORT_TTY;
    return eg__tty_open(p, f);
  }
  p->kind = EG_PORT_SERIAL;
  return eg__serial_open(p, f);
}

eg_err eg_port_finish_connect(eg_port *p, eg_fault *f) {
  if (p->fd < 0) return eg__port_fail(p, f, EG_INVAL, "%s: port is not open", p->name);
  switch (p->kind) {
    case EG_PORT_TCP:
      return eg__tcp_finish_connect(p, f);
    case EG_PORT_RFC2217:
      return eg__rfc2217_finish_connect(p, f);
    case EG_PORT_SERIAL:
    case EG_PORT_TTY:
      return EG_OK;
  }
  return EG_OK;
}

void eg_port_close(eg_port *p) {
  switch (p->kind) {
    case EG_PORT_SERIAL:
      eg__serial_close(p); /* the fd belongs to libserialport */
      break;
    case EG_PORT_RFC2217:
      eg__rfc2217_close(p);
      break;
    case EG_PORT_TTY:
    case EG_PORT_TCP:
      break;
  }
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  p->connecting = false;
}

eg_err eg_port_set_baud(eg_port *p, uint32_t baud) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (baud == 0) return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: invalid baud rate 0", p->name);
  eg_err e = EG_OK;
  switch (p->kind) {
    case EG_PORT_SERIAL:
      e = eg__serial_set_baud(p, baud);
      break;
    case EG_PORT_TTY:
      e = eg__tty_set_baud(p, baud);
      break;
    case EG_PORT_TCP:
      break; /* raw bytes: the rate only matters to whoever is on the far side */
    case EG_PORT_RFC2217:
      e = eg__rfc2217_set_baud(p, baud);
      break;
  }
  if (e == EG_OK) p->baud = baud;
  return e;
}

eg_err eg_port_set_lines(eg_port *p, int dtr, int rts) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (dtr < -1 || dtr > 1 || rts < -1 || rts > 1)
    return eg__port_fail(p, NULL, EG_INVAL, "%s: invalid DTR/RTS values %d/%d (1, 0 or -1)", p->name, dtr, rts);
  switch (p->kind) {
    case EG_PORT_SERIAL:
    case EG_PORT_RFC2217:
      break;
    case EG_PORT_TTY:
      return eg__port_fail(p, NULL, EG_RESET_UNSUPPORTED,
                           "%s is a pseudo-terminal: it has no DTR/RTS lines to reset a chip", p->name);
    case EG_PORT_TCP:
      return eg__port_fail(p, NULL, EG_RESET_UNSUPPORTED,
                           "%s is a TCP socket: it has no DTR/RTS lines to reset a chip", p->name);
  }
  if (!p->can_reset)
    return eg__port_fail(p, NULL, EG_RESET_UNSUPPORTED, "%s cannot drive DTR/RTS", p->name);
  if (dtr < 0 && rts < 0) return EG_OK;
  if (p->kind == EG_PORT_RFC2217) {
    const eg_err e = eg__rfc2217_set_lines(p, dtr, rts); /* sets errmsg */
    if (e != EG_OK) return e;
  } else {
    char why[160];
    const eg_err e = eg__modem_set(p->fd, dtr, rts, why, sizeof why);
    if (e != EG_OK) return eg__port_fail(p, NULL, e, "%s: %s", p->name, why);
  }
  if (dtr >= 0) p->dtr = dtr;
  if (rts >= 0) p->rts = rts;
  return EG_OK;
}

/* With VMIN = VTIME = 0 a tty read() returns 0 both when nothing has arrived
 * and when the line is hung up (an unplugged USB adapter; a pty whose master
 * closed, on kernels that do not answer EIO). poll() tells them apart without
 * waiting: a hung-up tty reports POLLHUP/POLLERR. */
static bool tty_hung_up(int fd) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int rc;
  do rc = poll(&pfd, 1, 0);
  while (rc < 0 && errno == EINTR);
  return rc > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL));
}

eg_err eg_port_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done) {
  *done = 0;
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (cap == 0 || p->connecting) return EG_OK;
  if (p->kind == EG_PORT_RFC2217) return eg__rfc2217_read(p, buf, cap, done);
  const bool sock = p->kind == EG_PORT_TCP;
  for (;;) {
    const ssize_t n = sock ? recv(p->fd, buf, cap, 0) : read(p->fd, buf, cap);
    if (n > 0) {
      *done = (size_t)n;
      return EG_OK;
    }
    if (n == 0) {
      if (sock) return eg__port_fail(p, NULL, EG_PORT_GONE, "%s: connection closed by the peer", p->name);
      if (tty_hung_up(p->fd)) return eg__port_fail(p, NULL, EG_PORT_GONE, "%s: hung up", p->name);
      return EG_OK;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return EG_OK;
    return eg__port_fail(p, NULL, is_gone(err) ? EG_PORT_GONE : EG_IO, "%s: read failed: %s", p->name, strerror(err));
  }
}

eg_err eg_port_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done) {
  *done = 0;
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (p->connecting) return EG_OK;
  if (p->kind == EG_PORT_RFC2217) return eg__rfc2217_write(p, buf, n, done);
  const bool sock = p->kind == EG_PORT_TCP;
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
    return eg__port_fail(p, NULL, is_gone(err) ? EG_PORT_GONE : EG_IO, "%s: write failed: %s", p->name,
                         strerror(err));
  }
  *done = off;
  return EG_OK;
}

eg_err eg__drain_socket(eg_port *p, eg_err (*chunk)(eg_port *p, uint8_t *buf, size_t n)) {
  int avail = 0;
  if (ioctl(p->fd, FIONREAD, &avail) < 0) {
    const int err = errno;
    return eg__port_fail(p, NULL, is_gone(err) ? EG_PORT_GONE : EG_IO, "%s: FIONREAD failed: %s", p->name,
                         strerror(err));
  }
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
    if (n == 0) return eg__port_fail(p, NULL, EG_PORT_GONE, "%s: connection closed by the peer", p->name);
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    return eg__port_fail(p, NULL, is_gone(err) ? EG_PORT_GONE : EG_IO, "%s: read failed: %s", p->name,
                         strerror(err));
  }
  return EG_OK;
}

eg_err eg_port_flush_input(eg_port *p) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  switch (p->kind) {
    case EG_PORT_SERIAL:
    case EG_PORT_TTY:
      if (tcflush(p->fd, TCIFLUSH) < 0) {
        const int err = errno;
        return eg__port_fail(p, NULL, is_gone(err) ? EG_PORT_GONE : EG_IO, "%s: tcflush failed: %s", p->name,
                             strerror(err));
      }
      return EG_OK;
    case EG_PORT_TCP:
      if (p->connecting) return EG_OK;
      return eg__drain_socket(p, NULL);
    case EG_PORT_RFC2217:
      return eg__rfc2217_flush_input(p);
  }
  return EG_OK;
}

bool eg_port_wants_write(const eg_port *p) {
  if (p->fd < 0) return false;
  switch (p->kind) {
    case EG_PORT_SERIAL:
    case EG_PORT_TTY:
    case EG_PORT_TCP:
      return false; /* writes go straight to the OS */
    case EG_PORT_RFC2217:
      return eg__rfc2217_wants_write(p);
  }
  return false;
}

eg_err eg_port_flush_pending(eg_port *p) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  switch (p->kind) {
    case EG_PORT_SERIAL:
    case EG_PORT_TTY:
    case EG_PORT_TCP:
      return EG_OK;
    case EG_PORT_RFC2217:
      return eg__rfc2217_flush_pending(p);
  }
  return EG_OK;
}

/* ------------------------------------------------------------ printing */

static void json_field_str(FILE *out, const char *key, const char *v, bool first) {
  fprintf(out, "%s\"%s\":", first ? "" : ",", key);
  if (v[0]) eg_json_quote(out, v);
  else fputs("null", out);
}

static void json_field_int(FILE *out, const char *key, int v) {
  fprintf(out, ",\"%s\":", key);
  if (v >= 0) fprintf(out, "%d", v);
  else fputs("null", out);
}

enum { COL_PORT, COL_TYPE, COL_VIDPID, COL_LOCATION, COL_SERIAL, COL_DESC, COL_BYID, COL__COUNT };

/* The cells of one table row; "-" for unknown. */
static void row_cells(const eg_port_info *in, char cells[COL__COUNT][300]) {
  snprintf(cells[COL_PORT], 300, "%s", in->name[0] ? in->name : "-");
  snprintf(cells[COL_TYPE], 300, "%s", in->transport[0] ? in->transport : "-");
  if (in->vid >= 0 && in->pid >= 0) snprintf(cells[COL_VIDPID], 300, "%04x:%04x", (unsigned)in->vid, (unsigned)in->pid);
  else snprintf(cells[COL_VIDPID], 300, "-");
  snprintf(cells[COL_LOCATION], 300, "%s", in->location[0] ? in->location : "-");
  snprintf(cells[COL_SERIAL], 300, "%s", in->serial[0] ? in->serial : "-");
  if (in->manufacturer[0] && in->product[0])
    snprintf(cells[COL_DESC], 300, "%.127s %.127s", in->manufacturer, in->product);
  else if (in->product[0])
    snprintf(cells[COL_DESC], 300, "%s", in->product);
  else
    snprintf(cells[COL_DESC], 300, "%s", in->description[0] ? in->description : "-");
  snprintf(cells[COL_BYID], 300, "%s", in->by_id[0] ? in->by_id : "-");
  /* One row is one line, whatever a device calls itself. */
  for (int c = 0; c < COL__COUNT; c++)
    for (char *ch = cells[c]; *ch; ch++)
      if ((unsigned char)*ch < 0x20) *ch = ' ';
}

void eg_port_print_infos(FILE *out, const eg_port_info *list, size_t count, bool json) {
  if (json) {
    for (size_t i = 0; i < count; i++) {
      const eg_port_info *in = &list[i];
      fputc('{', out);
      json_field_str(out, "name", in->name, true);
      json_field_str(out, "transport", in->transport, false);
      json_field_str(out, "description", in->description, false);
      json_field_int(out, "vid", in->vid);
      json_field_int(out, "pid", in->pid);
      json_field_int(out, "bus", in->bus);
      json_field_int(out, "address", in->address);
      json_field_str(out, "location", in->location, false);
      json_field_str(out, "serial", in->serial, false);
      json_field_str(out, "manufacturer", in->manufacturer, false);
      json_field_str(out, "product", in->product, false);
      json_field_str(out, "by_path", in->by_path, false);
      json_field_str(out, "by_id", in->by_id, false);
      fputs("}\n", out);
    }
    return;
  }
  if (count == 0) {
    fputs("no serial ports found\n", out);
    return;
  }
  static const char *const head[COL__COUNT] = {"PORT", "TYPE", "VID:PID", "LOCATION", "SERIAL", "DESCRIPTION",
                                               "BY-ID"};
  size_t width[COL__COUNT];
  for (int c = 0; c < COL__COUNT; c++) width[c] = strlen(head[c]);
  char cells[COL__COUNT][300];
  for (size_t i = 0; i < count; i++) {
    row_cells(&list[i], cells);
    for (int c = 0; c < COL__COUNT; c++)
      if (strlen(cells[c]) > width[c]) width[c] = strlen(cells[c]);
  }
  for (int c = 0; c < COL__COUNT; c++) {
    if (c == COL__COUNT - 1) fprintf(out, "%s\n", head[c]);
    else fprintf(out, "%-*s  ", (int)width[c], head[c]);
  }
  for (size_t i = 0; i < count; i++) {
    row_cells(&list[i], cells);
    for (int c = 0; c < COL__COUNT; c++) {
      if (c == COL__COUNT - 1) fprintf(out, "%s\n", cells[c]);
      else fprintf(out, "%-*s  ", (int)width[c], cells[c]);
    }
  }
}

eg_err eg_port_print_list(FILE *out, bool json) {
  eg_port_info *list = NULL;
  size_t count = 0;
  const eg_err e = eg_port_list(&list, &count);
  if (e != EG_OK) return e;
  eg_port_print_infos(out, list, count, json);
  eg_port_list_free(list, count);
  return EG_OK;
}
