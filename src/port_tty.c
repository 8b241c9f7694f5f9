/* port_tty.c - the pseudo-terminal backend (espsim's ptys, socat links),
 * through termios: libserialport cannot open a pty on Linux (it looks every
 * port up in /sys/class/tty/<name>/device, which ptys lack, and sp_open()
 * issues TIOCMGET, which a pty refuses). Ptys have no modem lines: the port
 * cannot reset a chip.
 *
 * The speed matters even though a pty moves bytes instantly: espsim reads
 * the slave's termios speed to decide whether host and "chip" agree on the
 * baud rate and garbles the bytes when they do not, as a real UART would. So
 * every eg_port_set_baud really sets it, and reads it back to be sure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "port_backend.h"
#include "port_util.h"

bool eg__tty_drivers_say_pty(const char *text, unsigned maj, unsigned min) {
  /* Lines of /proc/tty/drivers: name, device prefix, major, minor or
   * minor range "a-b", type ("pty:slave", "pty:master", "serial", ...). */
  char buf[256];
  for (const char *cur = text; eg__next_line(&cur, buf, sizeof buf);) {
    unsigned m = 0, lo = 0, hi = 0;
    char range[64], type[64];
    if (sscanf(buf, "%*s %*s %u %63s %63s", &m, range, type) == 3) {
      const int got = sscanf(range, "%u-%u", &lo, &hi);
      if (got == 1) hi = lo;
      if (got >= 1 && m == maj && min >= lo && min <= hi && strncmp(type, "pty", 3) == 0) return true;
    }
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

static eg_err tty_open(eg_port *p, eg_fault *f) {
  p->fd = open(p->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (p->fd < 0) return eg__port_os_fail(p, f, EG__OP_OPEN, errno, "cannot open %s", p->name);
  const eg_err e = eg__termios_set_speed(p, f, p->baud, true);
  if (e != EG_OK) eg__fd_close(p);
  return e;
}

static eg_err tty_set_baud(eg_port *p, uint32_t baud) { return eg__termios_set_speed(p, NULL, baud, false); }

const eg_port_backend eg__port_tty = {
  .scheme = NULL,
  .caps = {.kind = "pseudo-terminal", .can_reset = false, .has_baud = true, .is_network = false},
  .socket = false,
  .lock = EG__LOCK_DEVICE,
  .check = NULL,
  .claims = eg__tty_is_pty,
  .open = tty_open,
  .finish_connect = eg__port_connected,
  .close = eg__fd_close,
  .read = eg__fd_read,
  .write = eg__fd_write,
  .set_baud = tty_set_baud,
  .set_lines = eg__port_no_lines,
  .flush_input = eg__fd_flush_input,
  .wants_write = eg__port_no_queue,
  .flush_pending = eg__port_nothing_pending,
};
