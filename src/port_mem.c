/* port_mem.c - the in-memory backend, "mem://NAME" (port_mem.h): one end of
 * a socketpair for the caller, the other for the peer registered under NAME;
 * DTR/RTS and baud changes become calls to the peer. The registry below is
 * the port layer's only mutable state outside an eg_port (port_mem.h says
 * why); a mutex guards it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port_backend.h"
#include "port_mem.h"
#include "port_util.h"

#define SCHEME "mem://"

typedef struct entry {
  char name[EG_PORT_MEM_NAME_MAX]; /* "" = free */
  eg_port_mem_peer peer;
  void *ctx;
  bool open;
} entry;

static struct {
  pthread_mutex_t mu;
  entry e[EG_PORT_MEM_MAX];
} registry = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* An open port's copy of its peer, so that calls need no lock. */
typedef struct mem_state {
  char name[EG_PORT_MEM_NAME_MAX];
  eg_port_mem_peer peer;
  void *ctx;
  bool dtr, rts;
} mem_state;

/* Call with the mutex held. */
static entry *find(const char *name) {
  for (size_t i = 0; i < EG_PORT_MEM_MAX; i++)
    if (registry.e[i].name[0] && strcmp(registry.e[i].name, name) == 0) return &registry.e[i];
  return NULL;
}

eg_err eg_port_mem_register(const char *name, const eg_port_mem_peer *peer, void *ctx) {
  if (!name || !*name || strlen(name) >= EG_PORT_MEM_NAME_MAX || !peer || !peer->attach) return EG_INVAL;
  eg_err e = EG_INVAL;
  pthread_mutex_lock(&registry.mu);
  if (!find(name))
    for (size_t i = 0; i < EG_PORT_MEM_MAX; i++)
      if (!registry.e[i].name[0]) {
        entry *en = &registry.e[i];
        strcpy(en->name, name);
        en->peer = *peer;
        en->ctx = ctx;
        en->open = false;
        e = EG_OK;
        break;
      }
  pthread_mutex_unlock(&registry.mu);
  return e;
}

void eg_port_mem_unregister(const char *name) {
  if (!name) return;
  pthread_mutex_lock(&registry.mu);
  entry *en = find(name);
  if (en) memset(en, 0, sizeof *en);
  pthread_mutex_unlock(&registry.mu);
}

static const char *name_of(const char *url) { return url + strlen(SCHEME); }

static eg_err mem_check(const char *name, eg_port_caps *caps, char *key, size_t keycap, char *why, size_t whycap) {
  (void)key;
  (void)keycap;
  pthread_mutex_lock(&registry.mu);
  const entry *en = find(name_of(name));
  const bool lines = en && en->peer.set_lines;
  pthread_mutex_unlock(&registry.mu);
  if (!en) {
    if (whycap) snprintf(why, whycap, "cannot open %s: no in-memory port is registered under that name", name);
    return EG_PORT_OPEN;
  }
  caps->can_reset = lines;
  return EG_OK;
}

static void unmark(const char *name) {
  pthread_mutex_lock(&registry.mu);
  entry *en = find(name);
  if (en) en->open = false;
  pthread_mutex_unlock(&registry.mu);
}

static eg_err mem_open(eg_port *p, eg_fault *f) {
  mem_state *st = calloc(1, sizeof *st);
  if (!st) return eg__port_fail(p, f, EG_NOMEM, "cannot open %s: out of memory", p->name);
  pthread_mutex_lock(&registry.mu);
  entry *en = find(name_of(p->name));
  const bool taken = en && en->open;
  if (en && !taken) {
    en->open = true;
    strcpy(st->name, en->name);
    st->peer = en->peer;
    st->ctx = en->ctx;
  }
  pthread_mutex_unlock(&registry.mu);
  if (!en || taken) {
    free(st);
    if (taken) return eg__port_fail(p, f, EG_PORT_BUSY, "port %s is in use by PID %ld (this process)", p->name, (long)getpid());
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: no in-memory port is registered under that name", p->name);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    const int err = errno;
    unmark(st->name);
    free(st);
    return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot open %s (socketpair)", p->name);
  }
  if (!st->peer.attach(st->ctx, sv[1])) {
    close(sv[0]);
    close(sv[1]);
    unmark(st->name);
    free(st);
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: its peer refused the connection", p->name);
  }
  p->fd = sv[0];
  p->impl = st;
  if (st->peer.set_baud) st->peer.set_baud(st->ctx, p->baud);
  return EG_OK;
}

static void mem_close(eg_port *p) {
  mem_state *st = p->impl;
  eg__fd_close(p);
  if (!st) return;
  if (st->peer.detach) st->peer.detach(st->ctx);
  unmark(st->name);
  free(st);
  p->impl = NULL;
}

static eg_err mem_set_baud(eg_port *p, uint32_t baud) {
  const mem_state *st = p->impl;
  if (st->peer.set_baud) st->peer.set_baud(st->ctx, baud);
  return EG_OK;
}

static eg_err mem_set_lines(eg_port *p, int dtr, int rts) {
  mem_state *st = p->impl;
  if (!st->peer.set_lines) return eg__port_no_lines(p, dtr, rts);
  if (dtr >= 0) st->dtr = dtr;
  if (rts >= 0) st->rts = rts;
  st->peer.set_lines(st->ctx, st->dtr, st->rts);
  return EG_OK;
}

const eg_port_backend eg__port_mem = {
  .scheme = SCHEME,
  .caps = {.kind = "in-memory port", .can_reset = false, .has_baud = true, .is_network = false},
  .socket = true,
  .lock = EG__LOCK_NONE,
  .check = mem_check,
  .claims = NULL,
  .open = mem_open,
  .finish_connect = eg__port_connected,
  .close = mem_close,
  .read = eg__fd_read,
  .write = eg__fd_write,
  .set_baud = mem_set_baud,
  .set_lines = mem_set_lines,
  .flush_input = eg__fd_flush_input,
  .wants_write = eg__port_no_queue,
  .flush_pending = eg__port_nothing_pending,
};
