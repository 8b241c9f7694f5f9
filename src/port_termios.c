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

/* The rate a tty really runs at: termios2 (TCGETS2) holds it in c_ospeed
 * when the speed code is BOTHER, as libserialport sets every rate its table
 * lacks (libserialport 0.1.1 serialport.c: its Linux table ends at 460800,
 * so 921600 and up go through TCSETS2). The kernel's struct termios2
 * (asm-generic/termbits.h) cannot be included beside <termios.h>, hence
 * this copy of its layout. */
struct eg__termios2 {
  tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
  cc_t c_line;
  cc_t c_cc[19];
  speed_t c_ispeed, c_ospeed;
};
#define EG__TCGETS2 _IOR('T', 0x2A, struct eg__termios2)
#define EG__BOTHER 0010000 /* CBAUDEX with no rate bits: "the rate is in c_ospeed" */

uint32_t eg__termios_rate(speed_t code, speed_t ospeed) {
  if (code == EG__BOTHER) return ospeed;
  for (size_t i = 0; i < sizeof tty_speeds / sizeof tty_speeds[0]; i++)
    if (tty_speeds[i].speed == code) return tty_speeds[i].baud;
  return 0;
}

bool eg__termios_rate_close(uint32_t actual, uint32_t want) {
  const uint32_t diff = actual > want ? actual - want : want - actual;
  return actual > 0 && (uint64_t)diff * 50 <= want;
}

/* Drivers clamp or round rates they cannot make (a CP2102 asked for
 * 2000000) and write the rate they really set back into termios, as a Bxxx
 * constant when it is within 2% of one (drivers/tty/tty_baudrate.c,
 * tty_termios_encode_baud_rate), else as BOTHER and the number.
 * tcsetattr() and libserialport still succeed, so we read the rate back: a
 * driver that is off by more than the 2% the kernel itself rounds by means
 * garbage on the wire later. */
eg_err eg__termios_check_speed(eg_port *p, eg_fault *f, uint32_t baud) {
  struct eg__termios2 t;
  if (ioctl(p->fd, EG__TCGETS2, &t) < 0) return eg__port_os_fail(p, f, EG__OP_CONFIG, errno, "%s: TCGETS2", p->name);
  const uint32_t actual = eg__termios_rate(t.c_cflag & CBAUD, t.c_ospeed);
  if (!eg__termios_rate_close(actual, baud))
    return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: the driver did not take %u baud (it runs at %u; termios speed code 0%o)",
                         p->name, baud, actual, (unsigned)(t.c_cflag & CBAUD));
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
