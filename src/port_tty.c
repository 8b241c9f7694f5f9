/* port_tty.c - the termios backend, for pseudo-terminals (espsim's ptys,
 * socat links) which libserialport cannot open on Linux: it looks every port
 * up in /sys/class/tty/<name>/device (ptys have none) and sp_open() issues
 * TIOCMGET, which a pty refuses. Ptys have no modem lines: can_reset = false.
 *
 * The speed matters even though a pty moves bytes instantly: espsim reads
 * the slave's termios speed to decide whether host and "chip" agree on the
 * baud rate and garbles the bytes when they do not, as a real UART would. So
 * every eg_port_set_baud really sets it, and we read it back to be sure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "port_impl.h"

static const struct {
  uint32_t baud;
  speed_t speed;
} tty_speeds[] = {
  {1200, B1200},       {2400, B2400},       {4800, B4800},       {9600, B9600},       {19200, B19200},
  {38400, B38400},     {57600, B57600},     {115200, B115200},   {230400, B230400},   {460800, B460800},
  {500000, B500000},   {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
  {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000}, {3500000, B3500000},
  {4000000, B4000000},
};

bool eg__tty_speed(uint32_t baud, speed_t *out) {
  for (size_t i = 0; i < sizeof tty_speeds / sizeof tty_speeds[0]; i++)
    if (tty_speeds[i].baud == baud) {
      *out = tty_speeds[i].speed;
      return true;
    }
  return false;
}

bool eg__tty_drivers_say_pty(const char *text, unsigned maj, unsigned min) {
  /* Lines of /proc/tty/drivers: name, device prefix, major, minor or
   * minor range "a-b", type ("pty:slave", "pty:master", "serial", ...). */
  const char *line = text;
  while (line && *line) {
    const char *nl = strchr(line, '\n');
    char buf[256];
    const size_t len = nl ? (size_t)(nl - line) : strlen(line);
    if (len < sizeof buf) {
      memcpy(buf, line, len);
      buf[len] = '\0';
      unsigned m = 0, lo = 0, hi = 0;
      char range[64], type[64];
      if (sscanf(buf, "%*s %*s %u %63s %63s", &m, range, type) == 3) {
        const int got = sscanf(range, "%u-%u", &lo, &hi);
        if (got == 1) hi = lo;
        if (got >= 1 && m == maj && min >= lo && min <= hi && strncmp(type, "pty", 3) == 0) return true;
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  return false;
}

bool eg__tty_is_pty(const char *path) {
  /* /dev/pts/ptmx is the multiplexer: opening it makes a new master. */
  if (strncmp(path, "/dev/pts/", 9) == 0) return strcmp(path + 9, "ptmx") != 0;
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode)) return false;
  const unsigned maj = major(st.st_rdev), min = minor(st.st_rdev);
  /* Unix98 pty slaves: majors 136-143 (Documentation/admin-guide/devices.txt). */
  if (maj >= 136 && maj <= 143) return true;
  /* Anything else the kernel says a pty driver owns (legacy BSD ptys). */
  FILE *fp = fopen("/proc/tty/drivers", "re");
  if (!fp) return false;
  char text[8192];
  const size_t n = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[n] = '\0';
  return eg__tty_drivers_say_pty(text, maj, min);
}

/* Apply `speed` to t, write it, and read it back: tcsetattr() succeeds if
 * *any* of the changes took, so only the read-back proves the rate. */
static eg_err apply(eg_port *p, eg_fault *f, struct termios *t, speed_t speed, uint32_t baud) {
  if (cfsetispeed(t, speed) < 0 || cfsetospeed(t, speed) < 0)
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: cannot set %u baud: %s", p->name, baud, strerror(errno));
  if (tcsetattr(p->fd, TCSANOW, t) < 0) {
    const int err = errno;
    return eg__port_fail(p, f, eg__port_errno(err, EG_PORT_CONFIG, EG_PORT_CONFIG), "%s: tcsetattr (%u baud): %s",
                         p->name, baud, strerror(err));
  }
  struct termios back;
  if (tcgetattr(p->fd, &back) < 0) {
    const int err = errno;
    return eg__port_fail(p, f, eg__port_errno(err, EG_PORT_CONFIG, EG_PORT_CONFIG), "%s: tcgetattr: %s", p->name,
                         strerror(err));
  }
  if (cfgetospeed(&back) != speed || cfgetispeed(&back) != speed)
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: the terminal did not take %u baud", p->name, baud);
  return EG_OK;
}

eg_err eg__tty_open(eg_port *p, eg_fault *f) {
  speed_t speed;
  if (!eg__tty_speed(p->baud, &speed))
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: unsupported baud rate %u for a pseudo-terminal", p->name, p->baud);
  p->fd = open(p->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (p->fd < 0) return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: %s", p->name, strerror(errno));
  struct termios t;
  if (tcgetattr(p->fd, &t) < 0) {
    const eg_err e = eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: not a terminal: %s", p->name, strerror(errno));
    close(p->fd);
    p->fd = -1;
    return e;
  }
  /* Raw 8N1: no echo, no line editing, no CR/NL translation, no signals from
   * 0x03, no XON/XOFF eating 0x11/0x13, no RTS/CTS; reads never wait (the
   * caller polls). */
  cfmakeraw(&t);
  t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
  t.c_cflag |= CS8 | CLOCAL | CREAD;
  t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 0;
  const eg_err e = apply(p, f, &t, speed, p->baud);
  if (e != EG_OK) {
    close(p->fd);
    p->fd = -1;
    return e;
  }
  p->can_reset = false;
  return EG_OK;
}

eg_err eg__tty_set_baud(eg_port *p, uint32_t baud) {
  speed_t speed;
  if (!eg__tty_speed(baud, &speed))
    return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: unsupported baud rate %u for a pseudo-terminal", p->name, baud);
  struct termios t;
  if (tcgetattr(p->fd, &t) < 0) {
    const int err = errno;
    return eg__port_fail(p, NULL, eg__port_errno(err, EG_PORT_CONFIG, EG_PORT_CONFIG), "%s: tcgetattr: %s", p->name,
                         strerror(err));
  }
  /* TCSANOW, never TCSADRAIN: draining would block the loop; the caller
   * orders the switch after the bytes it cares about. */
  return apply(p, NULL, &t, speed, baud);
}
