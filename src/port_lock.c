/* port_lock.c - exclusive use of a port while espgang has it open, and who
 * holds it when we cannot have it.
 *
 * Devices (serial ports, ptys): as pyserial's exclusive mode (esptool's),
 * flock(LOCK_EX | LOCK_NB) on the device node, then TIOCEXCL once the
 * backend has its fd. The flock is taken on a descriptor of our own, opened
 * before the backend opens the port: libserialport's sp_open() rewrites
 * termios and re-applies DTR/RTS, which must not happen to a port another
 * process is flashing. flock is on the inode, so two symlinks to one device
 * (/dev/serial/by-id/..., espsim's slot links) meet at one lock; it also
 * excludes a second eg_port of this very process (another open file
 * description), and it meets pyserial's own flock, so esptool and espgang
 * keep off each other's ports. TIOCEXCL makes every other open of the tty
 * fail with EBUSY (root's excepted), so a program that does not flock cannot
 * open it either. The flag is a property of the tty, not of our descriptor,
 * and a pty slave outlives our close while its master is open (espsim keeps
 * it), so we clear it (TIOCNXCL) before we let go.
 *
 * Network ports (socket://, rfc2217://): there is no device node; a lock file
 * named after host:port stands for it, so two espgang processes on one rack
 * station cannot both drive one ser2net port (socket:// and rfc2217:// to the
 * same host:port are one lock; names are not resolved, so "localhost" and
 * "127.0.0.1" are two). Where: $ESPGANG_LOCK_DIR if set (a shared folder for
 * stations that share network ports), else /run/lock, the FHS place for lock
 * files: shared by every user (world-writable, sticky), on tmpfs so nothing
 * stale survives a reboot; else /tmp. The file holds the PID for people; the
 * lock itself is a flock on it, which dies with its holder, so a killed
 * espgang never leaves a port locked. We unlink the file while still holding
 * the lock, and whoever locks a file checks that it is still the one under
 * that name (else it was unlinked under it and it tries again).
 *
 * Who holds it: flock does not say. /proc/locks does: it lists every lock
 * with the holder's PID (translated into our PID namespace) and the locked
 * inode as major:minor:inode, the same numbers stat() gives us for the
 * device node or the lock file, even when TIOCEXCL keeps us from opening it.
 * A holder we cannot see there (another namespace, a program that only set
 * TIOCEXCL) is reported without a PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "port_util.h"

struct eg__port_lock {
  int fd;          /* holds the flock */
  char *file;      /* lock file to unlink on release; NULL for a device */
  bool exclusive;  /* TIOCEXCL set on the port's fd */
};

pid_t eg__locks_holder(const char *text, unsigned dev_major, unsigned dev_minor, unsigned long ino) {
  /* "1: FLOCK  ADVISORY  WRITE 1234 00:1a:3 0 EOF"; a waiter's line has
   * "->" after the number and holds nothing. OFD locks show pid -1. */
  char buf[256];
  for (const char *cur = text; eg__next_line(&cur, buf, sizeof buf);) {
    char type[16], mode[16], rw[16];
    long pid = 0;
    unsigned maj = 0, min = 0;
    unsigned long in = 0;
    if (!strstr(buf, "->") &&
        sscanf(buf, "%*[^:]: %15s %15s %15s %ld %x:%x:%lu", type, mode, rw, &pid, &maj, &min, &in) == 7 &&
        strcmp(rw, "WRITE") == 0 && pid > 0 && maj == dev_major && min == dev_minor && in == ino)
      return (pid_t)pid;
  }
  return 0;
}

/* Who holds a write lock on the file st describes (0: unknown). */
static pid_t holder_of(const struct stat *st) {
  FILE *fp = fopen("/proc/locks", "re");
  if (!fp) return 0;
  char *text = NULL;
  size_t cap = 0;
  pid_t pid = 0;
  /* Line by line: the file can be long on a busy machine. */
  while (!pid && getline(&text, &cap, fp) > 0)
    pid = eg__locks_holder(text, major(st->st_dev), minor(st->st_dev), (unsigned long)st->st_ino);
  free(text);
  fclose(fp);
  return pid;
}

static eg_err busy(eg_port *p, eg_fault *f, pid_t pid) {
  if (pid <= 0)
    return eg__port_fail(p, f, EG_PORT_BUSY, "port %s is in use by another program (it holds the port exclusively)",
                         p->name);
  char comm[64] = "", path[64];
  snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
  FILE *fp = fopen(path, "re");
  if (fp) {
    if (fgets(comm, sizeof comm, fp)) comm[strcspn(comm, "\n")] = '\0';
    fclose(fp);
  }
  const bool self = pid == getpid();
  if (!comm[0] && !self) return eg__port_fail(p, f, EG_PORT_BUSY, "port %s is in use by PID %ld", p->name, (long)pid);
  return eg__port_fail(p, f, EG_PORT_BUSY, "port %s is in use by PID %ld (%s)", p->name, (long)pid,
                       self ? "this process: is the port named twice?" : comm);
}

static eg_err keep(eg_port *p, eg_fault *f, int fd, const char *file) {
  struct eg__port_lock *l = calloc(1, sizeof *l);
  char *copy = file ? strdup(file) : NULL;
  if (!l || (file && !copy)) {
    free(l);
    free(copy);
    if (file) unlink(file);
    close(fd);
    return eg__port_fail(p, f, EG_NOMEM, "cannot open %s: out of memory", p->name);
  }
  l->fd = fd;
  l->file = copy;
  p->lock = l;
  return EG_OK;
}

eg_err eg__lock_device(eg_port *p, eg_fault *f) {
  const int fd = open(p->path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    struct stat st;
    if (err == EBUSY && stat(p->path, &st) == 0) return busy(p, f, holder_of(&st));
    return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot open %s", p->name);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    const int err = errno;
    struct stat st;
    const pid_t pid = err == EWOULDBLOCK && fstat(fd, &st) == 0 ? holder_of(&st) : 0;
    close(fd);
    if (err == EWOULDBLOCK) return busy(p, f, pid);
    return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot lock %s (flock)", p->name);
  }
  return keep(p, f, fd, NULL);
}

bool eg__lock_file_for(const char *key, char *out, size_t cap) {
  const char *dir = getenv("ESPGANG_LOCK_DIR");
  if (!dir || !*dir) dir = access("/run/lock", W_OK | X_OK) == 0 ? "/run/lock" : "/tmp";
  int n = snprintf(out, cap, "%s/espgang-", dir);
  if (n < 0 || (size_t)n >= cap) return false;
  size_t k = (size_t)n;
  /* One key, one file name: ':' (host:port, IPv6) becomes '_', anything
   * that is not [a-z0-9.-] becomes %XX ('_' included). */
  for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
    char one[4];
    if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-') snprintf(one, sizeof one, "%c", *c);
    else if (*c == ':') snprintf(one, sizeof one, "_");
    else snprintf(one, sizeof one, "%%%02X", *c);
    const size_t l = strlen(one);
    if (k + l >= cap) return false;
    memcpy(out + k, one, l + 1);
    k += l;
  }
  n = snprintf(out + k, cap - k, ".lock");
  return n >= 0 && (size_t)n < cap - k;
}

eg_err eg__lock_url(eg_port *p, eg_fault *f, const char *key) {
  char file[PATH_MAX];
  if (!eg__lock_file_for(key, file, sizeof file))
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: lock file name too long", p->name);
  for (int tries = 0; tries < 5; tries++) {
    const int fd = open(file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) return eg__port_os_fail(p, f, EG__OP_OPEN, errno, "cannot open %s: lock file %s", p->name, file);
    (void)fchmod(fd, 0666); /* past the umask, for other users; fails harmlessly if not ours */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      const int err = errno;
      struct stat st;
      pid_t pid = err == EWOULDBLOCK && fstat(fd, &st) == 0 ? holder_of(&st) : 0;
      if (err == EWOULDBLOCK && pid <= 0) {
        /* Not in /proc/locks (another PID namespace): the PID it wrote. */
        char text[32] = "";
        const ssize_t n = pread(fd, text, sizeof text - 1, 0);
        if (n > 0) text[n] = '\0', pid = (pid_t)strtol(text, NULL, 10);
      }
      close(fd);
      if (err == EWOULDBLOCK) return busy(p, f, pid);
      return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot lock %s (%s)", p->name, file);
    }
    struct stat held, named;
    if (fstat(fd, &held) != 0 || stat(file, &named) != 0 || held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
      close(fd); /* unlinked by its last holder after we opened it */
      continue;
    }
    char text[32];
    const int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
      /* The PID is for people; the flock is the lock. */
    }
    return keep(p, f, fd, file);
  }
  return eg__port_fail(p, f, EG_PORT_BUSY, "port %s: its lock file %s keeps changing hands", p->name, file);
}

void eg__lock_exclusive(eg_port *p, bool on) {
  if (!p->lock || p->fd < 0) return;
  if (on && isatty(p->fd)) p->lock->exclusive = ioctl(p->fd, TIOCEXCL) == 0;
  if (!on && p->lock->exclusive) {
    (void)ioctl(p->fd, TIOCNXCL);
    p->lock->exclusive = false;
  }
}

void eg__lock_release(eg_port *p) {
  struct eg__port_lock *l = p->lock;
  if (!l) return;
  if (l->file) {
    (void)unlink(l->file); /* while still locked; EPERM in someone else's sticky dir is harmless */
    free(l->file);
  }
  close(l->fd);
  free(l);
  p->lock = NULL;
}
