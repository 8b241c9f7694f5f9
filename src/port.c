/* port.c - the port API (port.h) over the backend tables (port_backend.h):
 * which backend a name means, what a name may be before anything is opened,
 * the lock around an open port, and the argument checks every call shares.
 * The backends never call back here.
 */
#include "port.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "port_backend.h"
#include "port_util.h"

/* The choice, first match wins: a URL goes to the backend of its scheme; a
 * path, once resolved, to the first device backend that claims it (ptys),
 * else libserialport. */
static const eg_port_backend *const backends[] = {
  &eg__port_tcp, &eg__port_rfc2217, &eg__port_mem, &eg__port_tty, &eg__port_serial,
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

const eg_port_backend *const *eg__port_backends(size_t *count) {
  *count = NBACKENDS;
  return backends;
}

/* What a name comes to, before anything is opened. */
typedef struct choice {
  const eg_port_backend *backend;
  eg_port_caps caps;
  char path[PATH_MAX]; /* resolved, devices only */
  char key[300];       /* lock key, network URLs only */
} choice;

static eg_err refuse(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static eg_err refuse(char *why, size_t cap, const char *fmt, ...) {
  if (why && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    for (char *c = why; *c; c++)
      if (*c == '\n' || *c == '\r') *c = ' ';
  }
  return EG_PORT_OPEN;
}

static eg_err check_name(const char *name, char *why, size_t cap) {
  if (!name || !*name) return refuse(why, cap, "no port name given");
  const size_t len = strlen(name);
  if (len >= sizeof ((eg_port *)0)->name)
    return refuse(why, cap, "port name too long (%zu bytes, at most %zu): %.60s...", len,
                  sizeof ((eg_port *)0)->name - 1, name);
  return EG_OK;
}

static eg_err choose_url(const char *name, choice *c, char *why, size_t cap) {
  for (size_t i = 0; i < NBACKENDS; i++) {
    const eg_port_backend *b = backends[i];
    if (!b->scheme || !eg__url_has_scheme(name, b->scheme)) continue;
    c->backend = b;
    c->caps = b->caps;
    char reason[300] = "";
    const eg_err e = b->check(name, &c->caps, c->key, sizeof c->key, reason, sizeof reason);
    if (e != EG_OK) return refuse(why, cap, "%s", reason);
    return EG_OK;
  }
  /* Name the schemes people may use (mem:// is for tests). */
  char list[128] = "";
  for (size_t i = 0; i < NBACKENDS; i++)
    if (backends[i]->scheme && backends[i]->caps.is_network)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%shost:port", list[0] ? " and " : "",
               backends[i]->scheme);
  return refuse(why, cap, "%s: unsupported URL (only %s are)", name, list);
}

/* The kernel files every tty under the "tty" class; a character device of
 * another class (/dev/null is "mem") is no serial port. Ptys and devices
 * without a sysfs entry pass: the backend's open decides. */
static bool other_class(const struct stat *st, char *cls, size_t cap) {
  char link[64], real[PATH_MAX];
  snprintf(link, sizeof link, "/sys/dev/char/%u:%u/subsystem", major(st->st_rdev), minor(st->st_rdev));
  if (!realpath(link, real)) return false;
  const char *base = strrchr(real, '/');
  base = base ? base + 1 : real;
  const size_t n = strlen(base);
  if (n >= cap) return false;
  memcpy(cls, base, n + 1);
  return strcmp(base, "tty") != 0;
}

static eg_err choose_path(const char *name, choice *c, char *why, size_t cap) {
  /* Follow symlinks (/dev/serial/by-id/..., espsim's links to ptys): the
   * backend is chosen by what the name really is, and libserialport needs
   * the real /dev name. */
  if (!realpath(name, c->path)) {
    const int err = errno;
    char target[PATH_MAX];
    const ssize_t n = readlink(name, target, sizeof target - 1);
    if (err == ENOENT && n > 0) {
      target[n] = '\0';
      return refuse(why, cap, "cannot open %s: it links to %s, which does not exist (%s)", name, target, eg__errno_words(err));
    }
    return refuse(why, cap, "cannot open %s: %s", name, eg__errno_words(err));
  }
  if (strlen(c->path) >= sizeof ((eg_port *)0)->path)
    return refuse(why, cap, "cannot open %s: resolved path too long (%zu bytes)", name, strlen(c->path));
  struct stat st;
  if (stat(c->path, &st) != 0) return refuse(why, cap, "cannot open %s: %s", name, eg__errno_words(errno));
  if (S_ISREG(st.st_mode)) return refuse(why, cap, "%s is a regular file, not a serial port", name);
  if (S_ISDIR(st.st_mode)) return refuse(why, cap, "%s is a directory, not a serial port", name);
  if (!S_ISCHR(st.st_mode)) return refuse(why, cap, "%s is not a serial port (not a character device)", name);
  for (size_t i = 0; i < NBACKENDS; i++) {
    const eg_port_backend *b = backends[i];
    if (b->scheme || (b->claims && !b->claims(c->path))) continue;
    char cls[64];
    if (!b->claims && other_class(&st, cls, sizeof cls))
      return refuse(why, cap, "%s is not a serial port (the kernel lists it as a %s device)", name, cls);
    c->backend = b;
    c->caps = b->caps;
    return EG_OK;
  }
  return refuse(why, cap, "%s: no backend for it", name); /* the table ends with a catch-all */
}

static eg_err choose(const char *name, choice *c, char *why, size_t cap) {
  memset(c, 0, sizeof *c);
  const eg_err e = check_name(name, why, cap);
  if (e != EG_OK) return e;
  return strstr(name, "://") ? choose_url(name, c, why, cap) : choose_path(name, c, why, cap);
}

eg_err eg_port_check(const char *name, eg_port_caps *caps, char *why, size_t cap) {
  choice c;
  const eg_err e = choose(name, &c, why, cap);
  if (e == EG_OK && caps) *caps = c.caps;
  if (e == EG_OK && why && cap) why[0] = '\0';
  return e;
}

const char *eg_port_kind_name(const eg_port *p) { return p->backend ? p->backend->caps.kind : "port"; }

eg_err eg_port_open(eg_port *p, const char *name, uint32_t baud, eg_fault *f) {
  memset(p, 0, sizeof *p);
  p->fd = -1;
  p->dtr = p->rts = -1;
  char why[sizeof p->errmsg];
  eg_err e = check_name(name, why, sizeof why);
  if (e != EG_OK) return eg__port_fail(p, f, e, "%s", why);
  memcpy(p->name, name, strlen(name) + 1);
  if (baud == 0) return eg__port_fail(p, f, EG_PORT_CONFIG, "%s: invalid baud rate 0", name);
  p->baud = baud;
  choice *c = malloc(sizeof *c); /* PATH_MAX and more: not on a loop's stack */
  if (!c) return eg__port_fail(p, f, EG_NOMEM, "cannot open %s: out of memory", name);
  e = choose(name, c, why, sizeof why);
  if (e != EG_OK) {
    free(c);
    return eg__port_fail(p, f, e, "%s", why);
  }
  p->backend = c->backend;
  p->caps = c->caps;
  p->can_reset = c->caps.can_reset;
  memcpy(p->path, c->path, strlen(c->path) + 1); /* choose() checked the length */
  switch (c->backend->lock) {
    case EG__LOCK_DEVICE:
      e = eg__lock_device(p, f);
      break;
    case EG__LOCK_URL:
      e = eg__lock_url(p, f, c->key);
      break;
    case EG__LOCK_NONE:
      break;
  }
  free(c);
  if (e != EG_OK) return e;
  e = p->backend->open(p, f);
  if (e != EG_OK) {
    eg__lock_release(p);
    p->fd = -1;
    return e;
  }
  eg__lock_exclusive(p, true);
  return EG_OK;
}

eg_err eg_port_finish_connect(eg_port *p, eg_fault *f) {
  if (p->fd < 0) return eg__port_fail(p, f, EG_INVAL, "%s: port is not open", p->name);
  return p->backend->finish_connect(p, f);
}

eg_err eg_port_diagnose(eg_port *p, eg_fault *f) {
  if (p->fd < 0) return eg__port_fail(p, f, EG_INVAL, "%s: port is not open", p->name);
  return eg__fd_diagnose(p, f);
}

void eg_port_close(eg_port *p) {
  if (p->backend && p->fd >= 0) {
    eg__lock_exclusive(p, false);
    p->backend->close(p);
  }
  eg__lock_release(p);
  if (p->fd >= 0) close(p->fd); /* a struct some caller filled in by hand */
  p->fd = -1;
  p->connecting = false;
}

eg_err eg_port_set_baud(eg_port *p, uint32_t baud) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (baud == 0) return eg__port_fail(p, NULL, EG_PORT_CONFIG, "%s: invalid baud rate 0", p->name);
  const eg_err e = p->backend->set_baud(p, baud);
  if (e == EG_OK) p->baud = baud;
  return e;
}

eg_err eg_port_set_lines(eg_port *p, int dtr, int rts) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (dtr < -1 || dtr > 1 || rts < -1 || rts > 1)
    return eg__port_fail(p, NULL, EG_INVAL, "%s: invalid DTR/RTS values %d/%d (1, 0 or -1)", p->name, dtr, rts);
  if (!p->can_reset) return eg__port_no_lines(p, dtr, rts);
  if (dtr < 0 && rts < 0) return EG_OK;
  const eg_err e = p->backend->set_lines(p, dtr, rts);
  if (e != EG_OK) return e;
  if (dtr >= 0) p->dtr = dtr;
  if (rts >= 0) p->rts = rts;
  return EG_OK;
}

eg_err eg_port_read(eg_port *p, uint8_t *buf, size_t cap, size_t *done) {
  *done = 0;
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (cap == 0 || p->connecting) return EG_OK;
  return p->backend->read(p, buf, cap, done);
}

eg_err eg_port_write(eg_port *p, const uint8_t *buf, size_t n, size_t *done) {
  *done = 0;
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  if (p->connecting) return EG_OK;
  return p->backend->write(p, buf, n, done);
}

bool eg_port_wants_write(const eg_port *p) { return p->fd >= 0 && p->backend->wants_write(p); }

eg_err eg_port_flush_pending(eg_port *p) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  return p->backend->flush_pending(p);
}

eg_err eg_port_flush_input(eg_port *p) {
  if (p->fd < 0) return eg__port_fail(p, NULL, EG_INVAL, "%s: port is not open", p->name);
  return p->backend->flush_input(p);
}

bool eg_port_url(const char *name, bool *ok, char *label, size_t labelcap, char *msg, size_t msgcap) {
  for (size_t i = 0; i < NBACKENDS; i++) {
    const eg_port_backend *b = backends[i];
    if (!name || !b->scheme || !b->caps.is_network || !eg__url_has_scheme(name, b->scheme)) continue;
    char host[256], port[16];
    *ok = eg__url_parse(name, b->scheme, host, sizeof host, port, sizeof port, msg, msgcap);
    if (labelcap) snprintf(label, labelcap, "%s:%s", *ok ? host : "", *ok ? port : "");
    return true;
  }
  return false;
}
