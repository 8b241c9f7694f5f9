/* fakeusb.c - an LD_PRELOAD test double that makes espsim's pseudo-terminals
 * look like USB serial adapters, so that espgang's libserialport backend
 * (libserialport's own sp_get_port_by_name, sp_open, baud and modem-line
 * code) runs against a simulated board, and every DTR/RTS change reaches the
 * board's auto-reset circuit.
 *
 * Configuration: EG_FAKEUSB_DIR=DIR, the folder of espsim's --pty symlinks
 * DIR/slotNN -> /dev/pts/M. Each slot becomes the USB adapter
 * /dev/ttyESPSIMNN (a CP2102: VID:PID 10c4:ea60, serial "ESPSIM-NN", USB
 * port 1-1.N); resolving DIR/slotNN (or the pty itself) gives that name.
 * EG_FAKEUSB_IDS="NN=VVVV:PPPP[,...]" gives slot NN another VID:PID (hex),
 * e.g. 07=303a:1001 for a chip's own USB-Serial/JTAG port (then named as
 * Espressif's "USB JTAG/serial debug unit").
 * EG_FAKEUSB_RENAME=1 names each adapter after its pty as well,
 * /dev/ttyESPSIMNNpM for /dev/pts/M: a board whose USB port re-enumerates
 * (espsim gives it a new pty) comes back under a new name at the same USB
 * location, as /dev/ttyACM0 may come back as /dev/ttyACM1; the old name is
 * gone.
 * DTR/RTS changes go to DIR/slotNN.lines, a UNIX datagram socket (espsim
 * --pty-lines), as 2-byte messages {dtr, rts}, 1 = asserted.
 *
 * What libserialport 0.1.1 does on Linux (its linux.c and serialport.c, read
 * for this), and what is answered here:
 *   sp_get_port_by_name -> get_port_details: lstat("/sys/class/tty/<name>"):
 *     a symlink; readlink() of it: a path under a USB interface (so the
 *     transport is USB); fopen("/sys/class/tty/<name>/device/../../X") for X
 *     in busnum, devnum, idVendor, idProduct, product, manufacturer, serial
 *     (it tries ../, ../../, ... until busnum opens; we answer at ../../,
 *     where sysfs has the USB device).
 *   sp_list_ports: opendir("/sys/class/tty") and readdir_r(): the fake
 *     entries follow the real ones.
 *   sp_open: open(name, O_RDWR|O_NONBLOCK|O_NOCTTY) -> the pty; tcgetattr;
 *     ioctl(TIOCMGET), which a pty refuses with EINVAL; then the settings
 *     with tcsetattr and the lines re-applied with TIOCMBIS/TIOCMBIC.
 *   sp_set_baudrate / sp_set_config: tcsetattr (and TCSETS2 for odd rates),
 *     which the pty takes as it is: espsim reads the slave's speed.
 * espgang itself resolves the name (realpath), stats it (pty detection, its
 * lock) and opens it for its lock; those are answered consistently. The
 * modem lines (TIOCMGET/TIOCMSET/TIOCMBIS/TIOCMBIC) are kept here per slot,
 * starting as the kernel leaves them after an open (DTR and RTS asserted),
 * and each change is sent to the slot's .lines socket; if it cannot be
 * delivered the ioctl fails with that errno (a silently lost line change is
 * the bug this exists to catch). The last close of a slot with HUPCL set (as
 * libserialport sets it) drops both lines, as the kernel does.
 *
 * A test double, not espgang code: its per-slot state is process-wide by
 * nature (it stands in for the kernel), guarded by a mutex.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define FAKE_DEV "/dev/ttyESPSIM"
#define CLASS_DIR "/sys/class/tty"
#define FAKE_CLASS CLASS_DIR "/ttyESPSIM"
#define MAX_SLOT 99
#define MAX_FD 4096
#define MAX_DIRS 8
#define USB_SERIAL_MAJOR 188 /* ttyUSB (Documentation/admin-guide/devices.txt) */

/* ------------------------------------------------------ the real calls */

#define REAL(name, ...)                                                   \
  static __typeof__(name) *real_##name;                                   \
  if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static char *r_realpath(const char *p, char *out) {
  REAL(realpath);
  return real_realpath(p, out);
}
static int r_stat(const char *p, struct stat *st) {
  REAL(stat);
  return real_stat(p, st);
}
static int r_lstat(const char *p, struct stat *st) {
  REAL(lstat);
  return real_lstat(p, st);
}
static int r_fstat(int fd, struct stat *st) {
  REAL(fstat);
  return real_fstat(fd, st);
}
static ssize_t r_readlink(const char *p, char *buf, size_t n) {
  REAL(readlink);
  return real_readlink(p, buf, n);
}
static int r_open(const char *p, int flags, mode_t mode) {
  REAL(open);
  return real_open(p, flags, mode);
}
static int r_close(int fd) {
  REAL(close);
  return real_close(fd);
}

/* ------------------------------------------------------------- state */

static struct {
  pthread_mutex_t mu;
  int lines[MAX_SLOT + 1];   /* TIOCM_* bits per slot */
  int opens[MAX_SLOT + 1];   /* our fds open on the slot */
  unsigned char fd_slot[MAX_FD]; /* slot of an fd we opened, 0 = none */
  DIR *dirs[MAX_DIRS];       /* opendir(/sys/class/tty) streams... */
  int next_slot[MAX_DIRS];   /* ...and the next fake entry to list */
} st = {.mu = PTHREAD_MUTEX_INITIALIZER};

static const char *dir_of_slots(void) {
  const char *d = getenv("EG_FAKEUSB_DIR");
  return d && *d ? d : NULL;
}

/* The pty behind slot n, or false. */
static bool slot_pty(int n, char *pty, size_t cap) {
  const char *dir = dir_of_slots();
  if (!dir || n < 1 || n > MAX_SLOT) return false;
  char link[PATH_MAX], real[PATH_MAX];
  snprintf(link, sizeof link, "%s/slot%02d", dir, n);
  if (!r_realpath(link, real) || strncmp(real, "/dev/pts/", 9) != 0) return false;
  snprintf(pty, cap, "%s", real);
  return true;
}

static bool renaming(void) {
  const char *e = getenv("EG_FAKEUSB_RENAME");
  return e && !strcmp(e, "1");
}

/* Slot n's adapter name after "ttyESPSIM": "NN", or "NNpM" when renaming. */
static void name_tail(int n, const char *pty, char *out, size_t cap) {
  if (renaming()) snprintf(out, cap, "%02dp%s", n, pty + 9);
  else snprintf(out, cap, "%02d", n);
}

/* "PREFIXnn[pM][rest]" -> nn (1..99) with *rest after the name; else 0
 * (also when renaming and M is not the slot's pty now: that name is gone). */
static int slot_in(const char *path, const char *prefix, const char **rest) {
  const size_t l = strlen(prefix);
  if (!path || strncmp(path, prefix, l) != 0) return 0;
  const char *d = path + l;
  if (d[0] < '0' || d[0] > '9' || d[1] < '0' || d[1] > '9') return 0;
  const int n = (d[0] - '0') * 10 + (d[1] - '0');
  char pty[PATH_MAX], tail[64];
  if (n < 1 || !slot_pty(n, pty, sizeof pty)) return 0;
  name_tail(n, pty, tail, sizeof tail);
  const size_t tl = strlen(tail);
  if (strncmp(d, tail, tl) != 0 || (d[tl] >= '0' && d[tl] <= '9')) return 0;
  if (rest) *rest = d + tl;
  return n;
}

/* "/dev/ttyESPSIM..." (or another prefix) for slot n now; "" if it has no pty. */
static void fake_name(int n, const char *prefix, char *out, size_t cap) {
  char pty[PATH_MAX], tail[64];
  if (!slot_pty(n, pty, sizeof pty)) {
    snprintf(out, cap, "%s", "");
    return;
  }
  name_tail(n, pty, tail, sizeof tail);
  snprintf(out, cap, "%s%s", prefix, tail);
}

static int fake_dev_slot(const char *path) {
  const char *rest = NULL;
  const int n = slot_in(path, FAKE_DEV, &rest);
  return n && !*rest ? n : 0;
}

/* The slot whose pty is `real` (a resolved path), or 0. */
static int slot_of_pty(const char *real) {
  if (!real || strncmp(real, "/dev/pts/", 9) != 0) return 0;
  char pty[PATH_MAX];
  for (int n = 1; n <= MAX_SLOT; n++)
    if (slot_pty(n, pty, sizeof pty) && strcmp(pty, real) == 0) return n;
  return 0;
}

/* The slot of a descriptor on a slot's pty, or 0. */
static int slot_of_fd(int fd) {
  if (fd >= 0 && fd < MAX_FD) {
    pthread_mutex_lock(&st.mu);
    const int n = st.fd_slot[fd];
    pthread_mutex_unlock(&st.mu);
    if (n) return n;
  }
  struct stat s;
  if (r_fstat(fd, &s) != 0 || !S_ISCHR(s.st_mode)) return 0;
  char pty[PATH_MAX];
  struct stat t;
  for (int n = 1; n <= MAX_SLOT; n++)
    if (slot_pty(n, pty, sizeof pty) && r_stat(pty, &t) == 0 && t.st_rdev == s.st_rdev) return n;
  return 0;
}

/* Tell the board: {dtr, rts}, 1 = asserted. 0 or -errno. */
static int send_lines(int n, int bits) {
  const char *dir = dir_of_slots();
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (!dir || snprintf(a.sun_path, sizeof a.sun_path, "%s/slot%02d.lines", dir, n) >= (int)sizeof a.sun_path)
    return -ENAMETOOLONG;
  const int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  const unsigned char msg[2] = {(bits & TIOCM_DTR) ? 1 : 0, (bits & TIOCM_RTS) ? 1 : 0};
  const ssize_t w = sendto(s, msg, sizeof msg, 0, (const struct sockaddr *)&a, sizeof a);
  const int err = w == (ssize_t)sizeof msg ? 0 : errno ? errno : EIO;
  r_close(s);
  if (err) fprintf(stderr, "fakeusb: slot%02d: cannot deliver DTR/RTS to %s: %s\n", n, a.sun_path, strerror(err));
  return -err;
}

/* ---------------------------------------------------- fake sysfs text */

/* The sysfs device path of slot n's tty, as readlink/realpath give it. */
static void sys_device(int n, char *out, size_t cap, bool relative) {
  snprintf(out, cap, "%s/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.%d/1-1.%d:1.0/ttyUSB%d",
           relative ? "../.." : "/sys", n, n, n - 1);
}

/* Slot n's VID:PID: EG_FAKEUSB_IDS's entry for it, else a CP2102's. */
static void slot_ids(int n, unsigned *vid, unsigned *pid) {
  *vid = 0x10c4, *pid = 0xea60;
  const char *s = getenv("EG_FAKEUSB_IDS");
  for (; s && *s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL) {
    int k;
    unsigned v, p;
    if (sscanf(s, "%d=%x:%x", &k, &v, &p) == 3 && k == n) *vid = v, *pid = p;
  }
}

static bool attr_text(int n, const char *attr, char *out, size_t cap) {
  unsigned vid, pid;
  slot_ids(n, &vid, &pid);
  const bool espressif = vid == 0x303a;
  if (!strcmp(attr, "busnum")) snprintf(out, cap, "1\n");
  else if (!strcmp(attr, "devnum")) snprintf(out, cap, "%d\n", n + 1);
  else if (!strcmp(attr, "idVendor")) snprintf(out, cap, "%04x\n", vid);
  else if (!strcmp(attr, "idProduct")) snprintf(out, cap, "%04x\n", pid);
  else if (!strcmp(attr, "manufacturer")) snprintf(out, cap, "%s\n", espressif ? "Espressif" : "Silicon Labs");
  else if (!strcmp(attr, "product"))
    snprintf(out, cap, "%s\n", espressif ? "USB JTAG/serial debug unit" : "CP2102 USB to UART Bridge Controller");
  else if (!strcmp(attr, "serial")) snprintf(out, cap, "ESPSIM-%02d\n", n);
  else return false;
  return true;
}

/* ------------------------------------------------------ interceptions */

char *realpath(const char *path, char *resolved) {
  char buf[PATH_MAX];
  const char *rest = NULL;
  const int fake = fake_dev_slot(path);
  int n = slot_in(path, FAKE_CLASS, &rest);
  if (fake || (n && !strcmp(rest, "/device"))) {
    if (fake) snprintf(buf, sizeof buf, "%s", path);
    else sys_device(n, buf, sizeof buf, false);
  } else {
    if (!r_realpath(path, buf)) return NULL;
    n = slot_of_pty(buf);
    if (n) fake_name(n, FAKE_DEV, buf, sizeof buf);
  }
  if (!resolved && !(resolved = malloc(PATH_MAX))) return NULL;
  snprintf(resolved, PATH_MAX, "%s", buf);
  return resolved;
}

static int fake_stat(int n, struct stat *s) {
  char pty[PATH_MAX];
  if (!slot_pty(n, pty, sizeof pty) || r_stat(pty, s) != 0) return -1;
  s->st_rdev = makedev(USB_SERIAL_MAJOR, n); /* not a pty: a ttyUSB */
  return 0;
}

static int link_stat(struct stat *s) {
  memset(s, 0, sizeof *s);
  s->st_mode = S_IFLNK | 0777;
  s->st_nlink = 1;
  return 0;
}

static int class_link_slot(const char *path) {
  const char *rest = NULL;
  const int n = slot_in(path, FAKE_CLASS, &rest);
  return n && !*rest ? n : 0;
}

int stat(const char *path, struct stat *s) {
  const int n = fake_dev_slot(path);
  return n ? fake_stat(n, s) : r_stat(path, s);
}
int stat64(const char *path, struct stat64 *s) { return stat(path, (struct stat *)s); }

int lstat(const char *path, struct stat *s) {
  int n = fake_dev_slot(path);
  if (n) return fake_stat(n, s);
  if (class_link_slot(path)) return link_stat(s);
  return r_lstat(path, s);
}
int lstat64(const char *path, struct stat64 *s) { return lstat(path, (struct stat *)s); }

/* libserialport 0.1.1 as Debian built it calls glibc's old stat entry
 * points (_STAT_VER 1 on x86_64: the same struct stat). */
int __xstat(int ver, const char *path, struct stat *s);
int __lxstat(int ver, const char *path, struct stat *s);
int __xstat(int ver, const char *path, struct stat *s) {
  (void)ver;
  return stat(path, s);
}
int __lxstat(int ver, const char *path, struct stat *s) {
  (void)ver;
  return lstat(path, s);
}

ssize_t readlink(const char *path, char *buf, size_t n) {
  const int slot = class_link_slot(path);
  if (!slot) return r_readlink(path, buf, n);
  char target[PATH_MAX];
  sys_device(slot, target, sizeof target, true);
  char name[128];
  fake_name(slot, "/tty/ttyESPSIM", name, sizeof name);
  snprintf(target + strlen(target), sizeof target - strlen(target), "%s", name);
  const size_t l = strlen(target);
  const size_t k = l < n ? l : n; /* readlink: no terminator, truncated */
  memcpy(buf, target, k);
  return (ssize_t)k;
}

FILE *fopen(const char *path, const char *mode) {
  REAL(fopen);
  const char *rest = NULL;
  const int n = slot_in(path, FAKE_CLASS, &rest);
  char text[128];
  if (n && strncmp(rest, "/device/../../", 14) == 0 && !strchr(rest + 14, '/') && attr_text(n, rest + 14, text, sizeof text)) {
    FILE *f = fmemopen(NULL, sizeof text, "w+");
    if (!f) return NULL;
    fputs(text, f);
    rewind(f);
    return f;
  }
  if (n && strncmp(rest, "/device/", 8) == 0) {
    errno = ENOENT; /* the other depths: nothing there, as in sysfs */
    return NULL;
  }
  return real_fopen(path, mode);
}

/* A new descriptor on slot n: the first one raises DTR and RTS, as the
 * kernel does when a tty is opened. */
static int track_open(int fd, int n) {
  if (fd < 0) return fd;
  bool first = false;
  pthread_mutex_lock(&st.mu);
  if (fd < MAX_FD) st.fd_slot[fd] = (unsigned char)n;
  first = st.opens[n]++ == 0;
  if (first) st.lines[n] = TIOCM_DTR | TIOCM_RTS;
  pthread_mutex_unlock(&st.mu);
  if (first) (void)send_lines(n, TIOCM_DTR | TIOCM_RTS);
  return fd;
}

static int open_fake(int n, int flags, mode_t mode) {
  char pty[PATH_MAX];
  if (!slot_pty(n, pty, sizeof pty)) {
    errno = ENODEV;
    return -1;
  }
  return track_open(r_open(pty, flags, mode), n);
}

static mode_t mode_arg(int flags, va_list ap) { return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0; }

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  const int n = fake_dev_slot(path);
  return n ? open_fake(n, flags, mode) : r_open(path, flags, mode);
}
int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  const mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  return open(path, flags, mode);
}
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open(path, flags); }

int close(int fd) {
  int n = 0;
  bool last = false;
  if (fd >= 0 && fd < MAX_FD) {
    pthread_mutex_lock(&st.mu);
    n = st.fd_slot[fd];
    if (n) {
      st.fd_slot[fd] = 0;
      last = --st.opens[n] == 0;
    }
    pthread_mutex_unlock(&st.mu);
  }
  if (last) {
    struct termios t;
    if (tcgetattr(fd, &t) == 0 && (t.c_cflag & HUPCL)) {
      pthread_mutex_lock(&st.mu);
      st.lines[n] &= ~(TIOCM_DTR | TIOCM_RTS);
      pthread_mutex_unlock(&st.mu);
      (void)send_lines(n, 0);
    }
  }
  return r_close(fd);
}

int ioctl(int fd, unsigned long req, ...) {
  REAL(ioctl);
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  const bool modem = req == TIOCMGET || req == TIOCMSET || req == TIOCMBIS || req == TIOCMBIC;
  const int n = modem ? slot_of_fd(fd) : 0;
  if (!n) return real_ioctl(fd, req, arg);
  int *bits = arg;
  if (!bits) {
    errno = EFAULT;
    return -1;
  }
  pthread_mutex_lock(&st.mu);
  int v = st.lines[n];
  if (req == TIOCMGET) *bits = v;
  else if (req == TIOCMSET) v = (v & ~(TIOCM_DTR | TIOCM_RTS)) | (*bits & (TIOCM_DTR | TIOCM_RTS));
  else if (req == TIOCMBIS) v |= *bits & (TIOCM_DTR | TIOCM_RTS);
  else v &= ~(*bits & (TIOCM_DTR | TIOCM_RTS));
  st.lines[n] = v;
  pthread_mutex_unlock(&st.mu);
  if (req == TIOCMGET) return 0;
  /* Every set is sent, changed or not: the circuit just sees the same
   * levels again. */
  const int e = send_lines(n, v);
  if (e < 0) {
    errno = -e;
    return -1;
  }
  return 0;
}

DIR *opendir(const char *name) {
  REAL(opendir);
  DIR *d = real_opendir(name);
  if (d && strcmp(name, CLASS_DIR) == 0) {
    pthread_mutex_lock(&st.mu);
    for (int i = 0; i < MAX_DIRS; i++)
      if (!st.dirs[i]) {
        st.dirs[i] = d;
        st.next_slot[i] = 1;
        break;
      }
    pthread_mutex_unlock(&st.mu);
  }
  return d;
}

int closedir(DIR *d) {
  REAL(closedir);
  pthread_mutex_lock(&st.mu);
  for (int i = 0; i < MAX_DIRS; i++)
    if (st.dirs[i] == d) st.dirs[i] = NULL;
  pthread_mutex_unlock(&st.mu);
  return real_closedir(d);
}

/* After the real entries of /sys/class/tty: one per slot. readdir_r is
 * deprecated, but it is what libserialport 0.1.1 calls. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
int readdir_r(DIR *d, struct dirent *entry, struct dirent **result) {
  REAL(readdir_r);
  const int r = real_readdir_r(d, entry, result);
  if (r != 0 || *result) return r;
  pthread_mutex_lock(&st.mu);
  int i = 0;
  while (i < MAX_DIRS && st.dirs[i] != d) i++;
  int n = i < MAX_DIRS ? st.next_slot[i] : 0;
  pthread_mutex_unlock(&st.mu);
  char pty[PATH_MAX];
  while (n >= 1 && n <= MAX_SLOT && !slot_pty(n, pty, sizeof pty)) n++;
  if (n < 1 || n > MAX_SLOT) return 0;
  pthread_mutex_lock(&st.mu);
  st.next_slot[i] = n + 1;
  pthread_mutex_unlock(&st.mu);
  memset(entry, 0, sizeof *entry);
  entry->d_ino = 1000000 + (ino_t)n;
  entry->d_type = DT_LNK;
  fake_name(n, "ttyESPSIM", entry->d_name, sizeof entry->d_name);
  *result = entry;
  return 0;
}
