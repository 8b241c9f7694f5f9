/* port_termios.c - below the tty backends (pseudo-terminals and
 * libserialport's serial ports): the baud rate table, raw 8N1, setting and
 * proving a speed, and DTR/RTS through the modem-line ioctls.
 *
 * DTR/RTS: libserialport's sp_set_dtr()/sp_set_rts() re-read and re-write
 * the whole termios for every line change and cannot change both lines at
 * once. esptool's UnixTightReset needs DTR and RTS to move together
 * (TIOCMGET/TIOCMSET) and pyserial moves one line with TIOCMBIS/TIOCMBIC; we
 * issue exactly those ioctls and check each result (an ignored DTR/RTS ioctl
 * means a board that silently never enters download mode).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "port_util.h"

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

void eg__termios_raw(struct termios *t) {
  /* No echo, no line editing, no CR/NL translation, no signals from 0x03,
   * no XON/XOFF eating 0x11/0x13, no RTS/CTS; reads never wait (the caller
   * polls). */
  cfmakeraw(t);
  t->c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS);
  t->c_cflag |= CS8 | CLOCAL | CREAD;
  t->c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
  t->c_cc[VMIN] = 0;
  t->c_cc[VTIME] = 0;
}

eg_err eg__termios_set_speed(eg_port *p, eg_fault *f, uint32_t baud, bool raw) {
  speed_t speed;
  if (!eg__tty_speed(baud, &speed))
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: unsupported baud rate %u for a %s", p->name, baud, p->caps.kind);
  struct termios t;
  if (tcgetattr(p->fd, &t) < 0) return eg__port_os_fail(p, f, EG__OP_CONFIG, errno, "%s: tcgetattr", p->name);
  if (raw) eg__termios_raw(&t);
  if (cfsetispeed(&t, speed) < 0 || cfsetospeed(&t, speed) < 0)
    return eg__port_os_fail(p, f, EG__OP_CONFIG, errno, "%s: cannot set %u baud", p->name, baud);
  /* TCSANOW, never TCSADRAIN: draining would block the loop; the caller
   * orders the switch after the bytes it cares about. */
  if (tcsetattr(p->fd, TCSANOW, &t) < 0)
    return eg__port_os_fail(p, f, EG__OP_CONFIG, errno, "%s: tcsetattr (%u baud)", p->name, baud);
  struct termios back;
  if (tcgetattr(p->fd, &back) < 0) return eg__port_os_fail(p, f, EG__OP_CONFIG, errno, "%s: tcgetattr", p->name);
  if (cfgetospeed(&back) != speed || cfgetispeed(&back) != speed)
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: the terminal did not take %u baud", p->name, baud);
  return EG_OK;
}

/* Drivers clamp or round rates they cannot make (a CP2102 asked for
 * 2000000) and write the real one back into termios, re-encoded as a Bxxx
 * constant when within 2% of one. tcsetattr() still succeeds, so for the
 * rates that have a constant we read it back: a mismatch here means garbage
 * on the wire later. */
eg_err eg__termios_check_speed(eg_port *p, eg_fault *f, uint32_t baud) {
  speed_t want;
  if (!eg__tty_speed(baud, &want)) return EG_OK;
  struct termios t;
  if (tcgetattr(p->fd, &t) < 0) return eg__port_os_fail(p, f, EG__OP_CONFIG, errno, "%s: tcgetattr", p->name);
  if (cfgetospeed(&t) != want)
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: the driver did not take %u baud (termios speed code 0%o)", p->name,
                         baud, (unsigned)cfgetospeed(&t));
  return EG_OK;
}

int eg__modem_apply(int bits, int dtr, int rts) {
  if (dtr == 1) bits |= TIOCM_DTR;
  if (dtr == 0) bits &= ~TIOCM_DTR;
  if (rts == 1) bits |= TIOCM_RTS;
  if (rts == 0) bits &= ~TIOCM_RTS;
  return bits;
}

static eg_err modem_fail(int err, const char *what, char *msg, size_t cap) {
  snprintf(msg, cap, "%s failed: %s", what, eg__errno_words(err));
  return eg__errno_code(err, EG__OP_LINES);
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
