/* port_serial.c - the serial port backend: real serial ports (USB adapters,
 * UARTs) through libserialport. Every path that is not a pty ends here.
 *
 * Quirks handled here (libserialport 0.1.1, Linux; its serialport.c and
 * linux.c):
 * - sp_get_port_by_name() looks the port up as /sys/class/tty/<name minus
 *   "/dev/">, so a /dev/serial/by-id/... symlink is "not found": we hand it
 *   the resolved path.
 * - Only SP_ERR_FAIL has an OS message (sp_last_error_message, to be freed);
 *   the other codes get our own words.
 * - sp_open() reads the modem lines (TIOCMGET) and re-applies them
 *   (TIOCMBIS/TIOCMBIC) with the termios; it leaves the fd blocking on some
 *   versions: we set O_NONBLOCK and FD_CLOEXEC ourselves and do all I/O on
 *   the fd with the shared fd helpers.
 * - DTR/RTS go through the modem-line ioctls on the fd (port_termios.c says
 *   why not sp_set_dtr()/sp_set_rts()).
 */
#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "port_backend.h"
#include "port_util.h"

static struct sp_port *sp_of(const eg_port *p) { return p->impl; }

/* Our words for a libserialport failure; the OS's for SP_ERR_FAIL. Call
 * right after the failing call (the message comes from errno). */
static void sp_reason(enum sp_return r, char *buf, size_t cap) {
  switch (r) {
    case SP_OK:
      snprintf(buf, cap, "no error");
      return;
    case SP_ERR_FAIL: {
      char *m = sp_last_error_message();
      snprintf(buf, cap, "%s", m ? m : "the OS reported a failure");
      if (m) sp_free_error_message(m);
      return;
    }
    case SP_ERR_ARG:
      snprintf(buf, cap, "invalid argument");
      return;
    case SP_ERR_MEM:
      snprintf(buf, cap, "out of memory");
      return;
    case SP_ERR_SUPP:
      snprintf(buf, cap, "not supported by this OS or device");
      return;
  }
  snprintf(buf, cap, "libserialport error %d", (int)r);
}

static void release(eg_port *p, bool opened) {
  struct sp_port *sp = sp_of(p);
  if (!sp) return;
  if (opened) sp_close(sp); /* closes the fd; nothing to do about a failed close */
  sp_free_port(sp);
  p->impl = NULL;
  p->fd = -1;
}

static void serial_close(eg_port *p) { release(p, p->fd >= 0); }

static eg_err configure(eg_port *p, eg_fault *f) {
  char why[160];
  struct sp_port_config *cfg = NULL;
  enum sp_return r = sp_new_config(&cfg);
  if (r != SP_OK) {
    sp_reason(r, why, sizeof why);
    return eg__port_fail(p, f, EG_NOMEM, "%s: %s", p->name, why);
  }
  /* Start from the current settings so RTS/DTR keep their levels (some
   * adapters reset the chip when they move), then 8N1 without flow control
   * and the rate, applied with one call. */
  const char *step = "reading the settings";
  r = sp_get_config(sp_of(p), cfg);
  if (r == SP_OK) step = "8N1 without flow control", r = sp_set_config_bits(cfg, 8);
  if (r == SP_OK) r = sp_set_config_parity(cfg, SP_PARITY_NONE);
  if (r == SP_OK) r = sp_set_config_stopbits(cfg, 1);
  if (r == SP_OK) r = sp_set_config_flowcontrol(cfg, SP_FLOWCONTROL_NONE);
  if (r == SP_OK) step = "the baud rate", r = sp_set_config_baudrate(cfg, (int)p->baud);
  if (r == SP_OK) step = "applying the settings", r = sp_set_config(sp_of(p), cfg);
  sp_free_config(cfg);
  if (r != SP_OK) {
    sp_reason(r, why, sizeof why);
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: cannot configure %u baud 8N1 (%s): %s", p->name, p->baud, step,
                         why);
  }
  return EG_OK;
}

static eg_err serial_open(eg_port *p, eg_fault *f) {
  char why[160];
  if (p->baud > INT_MAX) return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: unsupported baud rate %u", p->name, p->baud);
  struct sp_port *sp = NULL;
  enum sp_return r = sp_get_port_by_name(p->path, &sp);
  if (r != SP_OK) {
    if (r == SP_ERR_ARG) {
      if (strncmp(p->path, "/dev/", 5) != 0)
        return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: not a serial port (%s is not a device in /dev)",
                             p->name, p->path);
      return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: not a serial port (no /sys/class/tty/%s)", p->name,
                           p->path + 5);
    }
    sp_reason(r, why, sizeof why);
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: %s", p->name, why);
  }
  p->impl = sp;
  r = sp_open(sp, SP_MODE_READ_WRITE);
  if (r != SP_OK) {
    const int err = errno;
    release(p, false);
    if (r == SP_ERR_FAIL) return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot open %s", p->name);
    sp_reason(r, why, sizeof why);
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: %s", p->name, why);
  }
  int fd = -1;
  r = sp_get_port_handle(sp, &fd);
  if (r != SP_OK || fd < 0) {
    sp_reason(r, why, sizeof why);
    release(p, true);
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: no file descriptor: %s", p->name, why);
  }
  p->fd = fd;
  const int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    const int err = errno;
    release(p, true);
    return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot open %s (fcntl)", p->name);
  }
  eg_err e = configure(p, f);
  if (e == EG_OK) e = eg__termios_check_speed(p, f, p->baud);
  if (e != EG_OK) {
    release(p, true);
    return e;
  }
  return EG_OK;
}

static eg_err serial_set_baud(eg_port *p, uint32_t baud) {
  if (baud > INT_MAX) return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: unsupported baud rate %u", p->name, baud);
  const enum sp_return r = sp_set_baudrate(sp_of(p), (int)baud);
  if (r != SP_OK) {
    const int err = errno;
    if (r == SP_ERR_FAIL) return eg__port_os_fail(p, NULL, EG__OP_CONFIG, err, "%s: cannot set %u baud", p->name, baud);
    char why[160];
    sp_reason(r, why, sizeof why);
    return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: cannot set %u baud: %s", p->name, baud, why);
  }
  return eg__termios_check_speed(p, NULL, baud);
}

static eg_err serial_set_lines(eg_port *p, int dtr, int rts) {
  char why[160];
  const eg_err e = eg__modem_set(p->fd, dtr, rts, why, sizeof why);
  return e == EG_OK ? EG_OK : eg__port_fail(p, NULL, e, "%s: %s", p->name, why);
}

const eg_port_backend eg__port_serial = {
  .scheme = NULL,
  .caps = {.kind = "serial port", .can_reset = true, .has_baud = true, .is_network = false},
  .socket = false,
  .lock = EG__LOCK_DEVICE,
  .check = NULL,
  .claims = NULL, /* every path no other backend claims */
  .open = serial_open,
  .finish_connect = eg__port_connected,
  .close = serial_close,
  .read = eg__fd_read,
  .write = eg__fd_write,
  .set_baud = serial_set_baud,
  .set_lines = serial_set_lines,
  .flush_input = eg__fd_flush_input,
  .wants_write = eg__port_no_queue,
  .flush_pending = eg__port_nothing_pending,
};
