/* port_serial.c - real serial ports through libserialport, and the port
 * list for `espgang ports` / USB matching.
 *
 * Quirks handled here (libserialport 0.1.1, Linux):
 * - sp_get_port_by_name() looks the port up as /sys/class/tty/<name minus
 *   "/dev/">, so a /dev/serial/by-id/... symlink is "not found": port.c hands
 *   us the resolved path.
 * - Only SP_ERR_FAIL has an OS message (sp_last_error_message, to be freed);
 *   the other codes get our own words.
 * - sp_open() leaves the fd blocking on some versions; we set O_NONBLOCK and
 *   FD_CLOEXEC ourselves and do all I/O on the fd.
 * - DTR/RTS: sp_set_dtr()/sp_set_rts() re-read and re-write the whole termios
 *   (tcsetattr, and the termios2 baud ioctl for odd rates) for every line
 *   change, and cannot change both lines at once. esptool's UnixTightReset
 *   needs DTR and RTS to move together (TIOCMGET/TIOCMSET) and pyserial moves
 *   one line with TIOCMBIS/TIOCMBIC; we issue exactly those ioctls on the fd
 *   and check each result (an ignored DTR/RTS ioctl means a board that
 *   silently never enters download mode).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "port_impl.h"

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
  if (!p->sp) return;
  if (opened) sp_close(p->sp); /* nothing to do about a failed close */
  sp_free_port(p->sp);
  p->sp = NULL;
  p->fd = -1;
}

void eg__serial_close(eg_port *p) { release(p, p->fd >= 0); }

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
  r = sp_get_config(p->sp, cfg);
  if (r == SP_OK) step = "8N1 without flow control", r = sp_set_config_bits(cfg, 8);
  if (r == SP_OK) r = sp_set_config_parity(cfg, SP_PARITY_NONE);
  if (r == SP_OK) r = sp_set_config_stopbits(cfg, 1);
  if (r == SP_OK) r = sp_set_config_flowcontrol(cfg, SP_FLOWCONTROL_NONE);
  if (r == SP_OK) step = "the baud rate", r = sp_set_config_baudrate(cfg, (int)p->baud);
  if (r == SP_OK) step = "applying the settings", r = sp_set_config(p->sp, cfg);
  sp_free_config(cfg);
  if (r != SP_OK) {
    sp_reason(r, why, sizeof why);
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: cannot configure %u baud 8N1 (%s): %s", p->name, p->baud, step,
                         why);
  }
  return EG_OK;
}

/* Drivers clamp or round rates they cannot make (a CP2102 asked for
 * 2000000) and write the real one back into termios, re-encoded as a Bxxx
 * constant when within 2% of one. tcsetattr() still succeeds, so for the
 * rates that have a constant we read it back: a mismatch here means garbage
 * on the wire later. Odd rates (termios2 BOTHER) are taken on trust. */
static eg_err check_speed(eg_port *p, eg_fault *f, uint32_t baud) {
  speed_t want;
  if (!eg__tty_speed(baud, &want)) return EG_OK;
  struct termios t;
  if (tcgetattr(p->fd, &t) < 0) {
    const int err = errno;
    return eg__port_fail(p, f, eg__port_errno(err, EG_PORT_CONFIG, EG_PORT_CONFIG), "%s: tcgetattr: %s", p->name,
                         strerror(err));
  }
  if (cfgetospeed(&t) != want)
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: the driver did not take %u baud (termios speed code 0%o)", p->name,
                         baud, (unsigned)cfgetospeed(&t));
  return EG_OK;
}

eg_err eg__serial_open(eg_port *p, eg_fault *f) {
  char why[160];
  if (p->baud > INT_MAX) return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: unsupported baud rate %u", p->name, p->baud);
  enum sp_return r = sp_get_port_by_name(p->path, &p->sp);
  if (r != SP_OK) {
    p->sp = NULL;
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
  r = sp_open(p->sp, SP_MODE_READ_WRITE);
  if (r != SP_OK) {
    sp_reason(r, why, sizeof why);
    sp_free_port(p->sp);
    p->sp = NULL;
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: %s", p->name, why);
  }
  int fd = -1;
  r = sp_get_port_handle(p->sp, &fd);
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
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: fcntl: %s", p->name, strerror(err));
  }
  eg_err e = configure(p, f);
  if (e == EG_OK) e = check_speed(p, f, p->baud);
  if (e != EG_OK) {
    release(p, true);
    return e;
  }
  p->can_reset = true;
  return EG_OK;
}

eg_err eg__serial_set_baud(eg_port *p, uint32_t baud) {
  if (baud > INT_MAX) return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: unsupported baud rate %u", p->name, baud);
  const enum sp_return r = sp_set_baudrate(p->sp, (int)baud);
  if (r != SP_OK) {
    const int err = errno;
    char why[160];
    sp_reason(r, why, sizeof why);
    const eg_err code = r == SP_ERR_FAIL ? eg__port_errno(err, EG_PORT_CONFIG, EG_PORT_CONFIG) : EG_PORT_CONFIG;
    return eg__port_fail(p, NULL, code, "%s: cannot set %u baud: %s", p->name, baud, why);
  }
  return check_speed(p, NULL, baud);
}

int eg__modem_apply(int bits, int dtr, int rts) {
  if (dtr == 1) bits |= TIOCM_DTR;
  if (dtr == 0) bits &= ~TIOCM_DTR;
  if (rts == 1) bits |= TIOCM_RTS;
  if (rts == 0) bits &= ~TIOCM_RTS;
  return bits;
}

static eg_err modem_fail(int err, const char *what, char *msg, size_t cap) {
  snprintf(msg, cap, "%s failed: %s", what, strerror(err));
  return eg__port_errno(err, EG_RESET_UNSUPPORTED, EG_IO);
}

eg_err eg__modem_set(int fd, int dtr, int rts, char *msg, size_t cap) {
  msg[0] = '\0';
  if (dtr >= 0 && rts >= 0) {
    /* esptool's UnixTightReset: both lines in one TIOCMSET, so the chip
     * never sees the intermediate state. */
    int bits = 0;
    if (ioctl(fd, TIOCMGET, &bits) < 0) return modem_fail(errno, "TIOCMGET (reading DTR/RTS)", msg, cap);
    bits = eg__modem_apply(bits, dtr, rts);
    if (ioctl(fd, TIOCMSET, &bits) < 0) return modem_fail(errno, "TIOCMSET (setting DTR and RTS)", msg, cap);
    return EG_OK;
  }
  if (dtr >= 0) {
    int bit = TIOCM_DTR;
    if (ioctl(fd, dtr ? TIOCMBIS : TIOCMBIC, &bit) < 0)
      return modem_fail(errno, dtr ? "TIOCMBIS (asserting DTR)" : "TIOCMBIC (releasing DTR)", msg, cap);
  }
  if (rts >= 0) {
    int bit = TIOCM_RTS;
    if (ioctl(fd, rts ? TIOCMBIS : TIOCMBIC, &bit) < 0)
      return modem_fail(errno, rts ? "TIOCMBIS (asserting RTS)" : "TIOCMBIC (releasing RTS)", msg, cap);
  }
  return EG_OK;
}

/* ------------------------------------------------------------- listing */

static bool usb_port_name(const char *s, size_t len) {
  /* bus-port[.port...]: digits '-' digits ('.' digits)* */
  size_t i = 0, digits = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9') i++, digits++;
  if (!digits || i >= len || s[i] != '-') return false;
  i++;
  for (;;) {
    digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++, digits++;
    if (!digits) return false;
    if (i == len) return true;
    if (s[i] != '.') return false;
    i++;
  }
}

void eg__usb_location(const char *syspath, char *out, size_t cap) {
  if (cap) out[0] = '\0';
  const char *s = syspath, *best = NULL;
  size_t best_len = 0;
  while (*s) {
    while (*s == '/') s++;
    const char *end = strchr(s, '/');
    const size_t len = end ? (size_t)(end - s) : strlen(s);
    if (len && usb_port_name(s, len)) best = s, best_len = len;
    s += len;
  }
  /* The deepest one is the port the adapter hangs on; if it does not fit,
   * nothing (a parent hub's port would name the wrong socket). */
  if (best && best_len < cap) {
    memcpy(out, best, best_len);
    out[best_len] = '\0';
  }
}

bool eg__find_link(const char *dir, const char *target, char *out, size_t cap) {
  if (cap) out[0] = '\0';
  DIR *d = opendir(dir);
  if (!d) return false;
  char best[NAME_MAX + 1] = "";
  const struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char link[PATH_MAX], real[PATH_MAX];
    if (snprintf(link, sizeof link, "%s/%s", dir, de->d_name) >= (int)sizeof link) continue;
    if (!realpath(link, real) || strcmp(real, target) != 0) continue;
    if (!best[0] || strcmp(de->d_name, best) < 0) snprintf(best, sizeof best, "%s", de->d_name);
  }
  closedir(d);
  if (!best[0]) return false;
  if (snprintf(out, cap, "%s/%s", dir, best) >= (int)cap) {
    if (cap) out[0] = '\0';
    return false;
  }
  return true;
}

static void copy_str(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

static void fill_info(eg_port_info *in, const struct sp_port *sp) {
  memset(in, 0, sizeof *in);
  in->vid = in->pid = in->bus = in->address = -1;
  copy_str(in->name, sizeof in->name, sp_get_port_name(sp));
  copy_str(in->description, sizeof in->description, sp_get_port_description(sp));
  switch (sp_get_port_transport(sp)) {
    case SP_TRANSPORT_NATIVE:
      copy_str(in->transport, sizeof in->transport, "native");
      break;
    case SP_TRANSPORT_USB:
      copy_str(in->transport, sizeof in->transport, "usb");
      in->usb = true;
      break;
    case SP_TRANSPORT_BLUETOOTH:
      copy_str(in->transport, sizeof in->transport, "bluetooth");
      break;
  }
  if (in->usb) {
    int vid = -1, pid = -1, bus = -1, addr = -1;
    if (sp_get_port_usb_vid_pid(sp, &vid, &pid) == SP_OK && vid >= 0 && pid >= 0) in->vid = vid, in->pid = pid;
    if (sp_get_port_usb_bus_address(sp, &bus, &addr) == SP_OK && bus >= 0 && addr >= 0)
      in->bus = bus, in->address = addr;
    copy_str(in->serial, sizeof in->serial, sp_get_port_usb_serial(sp));
    copy_str(in->manufacturer, sizeof in->manufacturer, sp_get_port_usb_manufacturer(sp));
    copy_str(in->product, sizeof in->product, sp_get_port_usb_product(sp));
  }
  char real[PATH_MAX];
  if (realpath(in->name, real)) {
    eg__find_link("/dev/serial/by-path", real, in->by_path, sizeof in->by_path);
    eg__find_link("/dev/serial/by-id", real, in->by_id, sizeof in->by_id);
  }
  /* /sys/class/tty/ttyUSB0/device -> .../usb1/1-1/1-1.4/1-1.4:1.0/ttyUSB0 */
  const char *base = strrchr(in->name, '/');
  base = base ? base + 1 : in->name;
  char link[PATH_MAX], sys[PATH_MAX];
  if (*base && snprintf(link, sizeof link, "/sys/class/tty/%s/device", base) < (int)sizeof link &&
      realpath(link, sys))
    eg__usb_location(sys, in->location, sizeof in->location);
}

static int by_name(const void *a, const void *b) {
  /* ttyUSB2 before ttyUSB10 */
  return strverscmp(((const eg_port_info *)a)->name, ((const eg_port_info *)b)->name);
}

eg_err eg_port_list(eg_port_info **out, size_t *count) {
  *out = NULL;
  *count = 0;
  struct sp_port **ports = NULL;
  const enum sp_return r = sp_list_ports(&ports);
  switch (r) {
    case SP_OK:
      break;
    case SP_ERR_MEM:
      return EG_NOMEM;
    case SP_ERR_ARG:
    case SP_ERR_FAIL:
    case SP_ERR_SUPP:
      return EG_IO;
  }
  size_t n = 0;
  while (ports[n]) n++;
  if (n == 0) {
    sp_free_port_list(ports);
    return EG_OK;
  }
  eg_port_info *list = calloc(n, sizeof *list);
  if (!list) {
    sp_free_port_list(ports);
    return EG_NOMEM;
  }
  for (size_t i = 0; i < n; i++) fill_info(&list[i], ports[i]);
  sp_free_port_list(ports);
  qsort(list, n, sizeof *list, by_name);
  *out = list;
  *count = n;
  return EG_OK;
}

void eg_port_list_free(eg_port_info *list, size_t count) {
  (void)count;
  free(list);
}
