/* main.c - the espsim command line: N simulated ESP32 boards, each behind a
 * pty (stable symlink DIR/slotNN) and/or a TCP listener, with a flash file
 * per board. See README.md for every option, the JSON lines and the faults.
 *
 * One libuv loop drives everything. Per device: the model (esim_dev), the
 * flash file (mmap, so the model writes through), a pty whose slave we keep
 * open (so the master never sees EIO and we can read the host's termios
 * speed), a TCP listener, and at most one link (simlink) moving bytes: the
 * pty's, or a TCP client's while one is connected. A TCP client is raw
 * (socket://) or, if its first byte is IAC, RFC 2217 (rfc2217://), which
 * carries DTR/RTS to the board's auto-reset circuit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>
#include <yaml.h>

#include "chips.h"
#include "control.h"
#include "simdev.h"
#include "simlink.h"

#define MAX_DEVICES 999

typedef struct app app;

typedef struct slot {
  app *app;
  int index; /* 1-based */
  char name[16];
  esim_dev *dev;
  esim_dev_opts opts;
  /* flash file */
  char flash_path[PATH_MAX + 32];
  uint8_t *flash;
  size_t flash_size;
  /* pty */
  int master, slave;
  char pty_link[PATH_MAX + 32]; /* DIR/slotNN */
  char pty_name[64];       /* /dev/pts/N */
  /* tcp */
  int listen_fd;
  uv_poll_t listen_poll;
  bool listen_poll_ok;
  int port;
  /* the link moving bytes, and which front end it serves */
  esim_link *link;
  bool link_is_tcp;
  int pending_client;      /* accepted while the pty link was closing */
  bool link_closing;
  uv_timer_t replug;
  bool replug_ok;
  uv_timer_t idle;         /* runs the chip while no host is connected */
  bool idle_ok;
  bool unplugged;          /* disconnect fault: pty gone until replug */
  bool removed;            /* control.c: no board in the slot until seated */
  bool listen_closing;     /* control.c: the listener is being closed */
  FILE *log;
} slot;

struct app {
  uv_loop_t *loop;
  slot *slots;
  int count;
  bool use_pty, use_tcp, fast;
  char pty_dir[PATH_MAX];
  char flash_dir[PATH_MAX];
  char log_dir[PATH_MAX];
  int tcp_port;
  unsigned replug_ms;
  unsigned tick_us;
  uv_signal_t sig_int, sig_term, sig_usr1;
  bool stopping;
  esim_control *control;   /* --control */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("espsim: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static uint64_t now_us(void) { return uv_hrtime() / 1000; }

/* ---------------------------------------------------------------- options */

static void usage(FILE *f) {
  fputs("usage: espsim [options]\n"
        "  -n, --count N          number of devices (default 1)\n"
        "  --pty DIR              one pty per device, symlinks DIR/slot01..\n"
        "  --tcp PORT             TCP listeners on 127.0.0.1:PORT..PORT+N-1 (0 = ephemeral);\n"
        "                         raw (socket://) or RFC 2217 (rfc2217://, DTR/RTS reset the board)\n"
        "  --flash-dir DIR        flash files DIR/slotNN.bin (default: a new temp dir, kept)\n"
        "  --flash-id HEX         JEDEC ID mfr|type<<8|cap<<16 (default 0x1640C8)\n"
        "  --mac MAC              first device's MAC (default 24:0a:c4:00:00:01)\n"
        "  --crystal 40|26        crystal in MHz (default 40)\n"
        "  --fast                 no flash/processing delays and no wire pacing\n"
        "  --faults FILE.yaml     per-device faults\n"
        "  --fault SPEC           slotNN:fault[=value][,fault...] (repeatable; 'all:' for every device)\n"
        "  --event-log DIR        per-device event log DIR/slotNN.log\n"
        "  --seed N               seed for random faults and garbling (default 1)\n"
        "  --timing FILE.yaml     override the timing model\n"
        "  --stub auto|legacy|new which flasher stub MEM_END starts (default auto, by load address)\n"
        "  --rom-clock-error PCT  ROM's crystal estimate error for CHANGE_BAUDRATE (default 6)\n"
        "  --replug-ms MS         after a disconnect fault, re-create the pty after MS (default 1000, 0 = never)\n"
        "  --tick-us US           wire pacing granularity (default 1000)\n"
        "  --control PATH         UNIX socket taking 'seat SLOT ...' / 'remove SLOT' / 'status' lines\n"
        "  --empty SLOTS          start these slots without a board (slot03,slot07 or 3,7 or all)\n"
        "  -h, --help\n",
        f);
}

static void mac_add(uint8_t mac[6], uint64_t k) {
  uint64_t v = 0;
  for (int i = 0; i < 6; i++) v = v << 8 | mac[i];
  v = (v + k) & 0xFFFFFFFFFFFFULL;
  for (int i = 5; i >= 0; i--) {
    mac[i] = (uint8_t)v;
    v >>= 8;
  }
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  /* Decimal unless 0x: slot numbers such as "08" are not octal. */
  const int base = s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
  unsigned long v = strtoul(s, &end, base);
  if (errno || *end || v > max || s[0] == '-') return false;
  *out = v;
  return true;
}

static void mkdir_p(const char *dir) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) die("path too long: %s", dir);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) die("cannot create %s: %s", tmp, strerror(errno));
    *p = '/';
  }
  if (mkdir(tmp, 0755) < 0 && errno != EEXIST) die("cannot create %s: %s", tmp, strerror(errno));
}

static void abs_dir(const char *in, char *out) {
  mkdir_p(in);
  if (!realpath(in, out)) die("cannot resolve %s: %s", in, strerror(errno));
}

/* Apply "fault[=v][,fault...]" to one device's faults. */
static void apply_fault_list(esim_faults *f, const char *list, const char *what) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) die("%s: fault list too long", what);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char err[256];
    if (esim_fault_apply(f, tok, err, sizeof err) != EG_OK) die("%s: %s", what, err);
  }
}

/* "slot03", "3", "all" -> index (0 = all), -1 if not a slot. */
static int slot_index(const char *s, int count) {
  if (!strcmp(s, "all") || !strcmp(s, "*")) return 0;
  if (!strncmp(s, "slot", 4)) s += 4;
  unsigned long v;
  if (!parse_ulong(s, MAX_DEVICES, &v) || v == 0 || (int)v > count) return -1;
  return (int)v;
}

/* ------------------------------------------------------------------ YAML */

static const char *yaml_scalar(yaml_document_t *doc, yaml_node_t *n) {
  (void)doc;
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void load_yaml(const char *path, yaml_document_t *doc) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open %s: %s", path, strerror(errno));
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  if (!yaml_parser_load(&p, doc)) {
    die("%s:%zu: %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "YAML error");
  }
  yaml_parser_delete(&p);
  fclose(f);
}

static void load_timing(const char *path, esim_timing *t) {
  yaml_document_t doc;
  load_yaml(path, &doc);
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root && root->type == YAML_MAPPING_NODE) {
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
      const char *k = yaml_scalar(&doc, yaml_document_get_node(&doc, pr->key));
      const char *v = yaml_scalar(&doc, yaml_document_get_node(&doc, pr->value));
      if (!k || !v) die("%s: timing entries must be 'key: number'", path);
      char err[256];
      if (esim_timing_apply(t, k, v, err, sizeof err) != EG_OK) die("%s: %s", path, err);
    }
  } else if (root) {
    die("%s: expected a mapping of timing keys", path);
  }
  yaml_document_delete(&doc);
}

static void fault_node(esim_faults *f, yaml_document_t *doc, yaml_node_t *n, const char *path, const char *slotname) {
  char what[300];
  snprintf(what, sizeof what, "%s (%s)", path, slotname);
  if (n->type == YAML_SCALAR_NODE) {
    apply_fault_list(f, yaml_scalar(doc, n), what);
  } else if (n->type == YAML_SEQUENCE_NODE) {
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
      const char *s = yaml_scalar(doc, yaml_document_get_node(doc, *it));
      if (!s) die("%s: list items must be fault specs", what);
      apply_fault_list(f, s, what);
    }
  } else {
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
      const char *k = yaml_scalar(doc, yaml_document_get_node(doc, pr->key));
      const char *v = yaml_scalar(doc, yaml_document_get_node(doc, pr->value));
      if (!k || !v) die("%s: fault entries must be 'name: value'", what);
      char spec[512];
      snprintf(spec, sizeof spec, "%s=%s", k, v);
      char err[256];
      if (esim_fault_apply(f, spec, err, sizeof err) != EG_OK) die("%s: %s", what, err);
    }
  }
}

static void load_faults(app *a, const char *path) {
  yaml_document_t doc;
  load_yaml(path, &doc);
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root && root->type != YAML_MAPPING_NODE) die("%s: expected a mapping 'slotNN: faults'", path);
  if (root) {
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
      const char *k = yaml_scalar(&doc, yaml_document_get_node(&doc, pr->key));
      if (!k) die("%s: keys must be slot names", path);
      const int idx = slot_index(k, a->count);
      if (idx < 0) die("%s: '%s' is not a device (slot01..slot%02d or all)", path, k, a->count);
      yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
      for (int i = 1; i <= a->count; i++)
        if (idx == 0 || idx == i) fault_node(&a->slots[i - 1].opts.faults, &doc, v, path, k);
    }
  }
  yaml_document_delete(&doc);
}

/* ------------------------------------------------------------ flash file */

static void open_flash(slot *s) {
  const int fd = open(s->flash_path, O_RDWR | O_CREAT, 0644);
  if (fd < 0) die("cannot open %s: %s", s->flash_path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) die("cannot stat %s: %s", s->flash_path, strerror(errno));
  const bool reuse = (size_t)st.st_size == s->flash_size;
  if (!reuse) {
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)s->flash_size) < 0)
      die("cannot size %s: %s", s->flash_path, strerror(errno));
  }
  s->flash = mmap(NULL, s->flash_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (s->flash == MAP_FAILED) die("cannot map %s: %s", s->flash_path, strerror(errno));
  close(fd);
  if (!reuse) memset(s->flash, 0xFF, s->flash_size); /* a new chip is erased */
}

/* ------------------------------------------------------------------- pty */

static void open_pty(slot *s) {
  s->master = posix_openpt(O_RDWR | O_NOCTTY);
  if (s->master < 0) die("cannot create pty: %s", strerror(errno));
  if (grantpt(s->master) < 0 || unlockpt(s->master) < 0) die("cannot unlock pty: %s", strerror(errno));
  const char *name = ptsname(s->master);
  if (!name) die("ptsname: %s", strerror(errno));
  snprintf(s->pty_name, sizeof s->pty_name, "%s", name);
  s->slave = open(s->pty_name, O_RDWR | O_NOCTTY);
  if (s->slave < 0) die("cannot open %s: %s", s->pty_name, strerror(errno));
  /* Raw, 8N1, 115200 until the host says otherwise: without this the line
   * discipline would echo the device's bytes back to it. */
  struct termios t;
  if (tcgetattr(s->slave, &t) == 0) {
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    tcsetattr(s->slave, TCSANOW, &t);
  }
  unlink(s->pty_link);
  if (symlink(s->pty_name, s->pty_link) < 0) die("cannot create %s: %s", s->pty_link, strerror(errno));
}

static void close_pty(slot *s) {
  if (s->pty_link[0]) unlink(s->pty_link);
  if (s->master >= 0) close(s->master);
  if (s->slave >= 0) close(s->slave);
  s->master = s->slave = -1;
}

/* ----------------------------------------------------------------- links */

static void start_pty_link(slot *s);
static void on_link_event(esim_link *l, esim_link_event ev, void *ctx);

static void link_opts(slot *s, esim_link_opts *o, bool tcp) {
  esim_link_opts_default(o);
  o->fast = s->app->fast;
  o->tick_us = s->app->tick_us;
  o->on_event = on_link_event;
  o->ctx = s;
  if (tcp) {
    o->keep_fd = false;
    o->host_baud = 0;    /* raw TCP has no baud: no garbling */
    o->rfc2217 = true;   /* unless the client speaks RFC 2217 (first byte IAC) */
  } else {
    o->keep_fd = true;
    o->pty_slave_fd = s->slave;
  }
}

static void start_tcp_link(slot *s, int fd) {
  esim_link_opts o;
  link_opts(s, &o, true);
  s->link = esim_link_start(s->app->loop, s->dev, fd, &o);
  if (!s->link) {
    fprintf(stderr, "espsim: %s: cannot start TCP link: %s\n", s->name, strerror(errno));
    close(fd);
    return;
  }
  s->link_is_tcp = true;
  esim_dev_host_attached(s->dev, now_us());
}

static void start_pty_link(slot *s) {
  if (!s->app->use_pty || s->master < 0 || s->app->stopping) return;
  esim_link_opts o;
  link_opts(s, &o, false);
  s->link = esim_link_start(s->app->loop, s->dev, s->master, &o);
  if (!s->link) die("%s: cannot start pty link: %s", s->name, strerror(errno));
  s->link_is_tcp = false;
}

/* With no link the chip still lives: a reset released as the host hung up
 * must still boot (the app after esptool's hard reset), and an app keeps
 * chattering into the void. Advance the model and drop its output until a
 * host attaches again. */
static void on_idle(uv_timer_t *t) {
  slot *s = t->data;
  if (s->link || s->app->stopping) return;
  const uint64_t now = now_us();
  esim_dev_advance(s->dev, now);
  uint8_t sink[512];
  while (esim_dev_tx_take(s->dev, now, sink, sizeof sink, 0) > 0) {}
  const uint64_t next = esim_dev_next_event(s->dev);
  if (next != ESIM_NEVER) uv_timer_start(&s->idle, on_idle, next > now ? (next - now + 999) / 1000 : 1, 0);
}

static void on_link_closed(esim_link *l, void *ctx) {
  slot *s = ctx;
  (void)l;
  s->link_closing = false;
  s->link = NULL;
  if (s->unplugged && s->master >= 0) close_pty(s); /* the link no longer polls it */
  if (s->app->stopping) return;
  if (s->pending_client >= 0) {
    const int fd = s->pending_client;
    s->pending_client = -1;
    start_tcp_link(s, fd);
    return;
  }
  if (!s->unplugged) start_pty_link(s);
  if (!s->link && s->idle_ok) on_idle(&s->idle);
}

static void close_link(slot *s) {
  if (!s->link || s->link_closing) return;
  s->link_closing = true;
  esim_link_close(s->link, on_link_closed);
}

static void on_replug(uv_timer_t *t) {
  slot *s = t->data;
  if (s->app->stopping || s->removed) return;
  fprintf(stderr, "espsim: %s: replugged\n", s->name);
  esim_dev_reset(s->dev, now_us(), true);
  s->unplugged = false;
  if (s->app->use_pty) {
    open_pty(s);
    if (!s->link && !s->link_closing) start_pty_link(s);
  }
}

static void on_link_event(esim_link *l, esim_link_event ev, void *ctx) {
  slot *s = ctx;
  (void)l;
  if (ev == ESIM_LINK_DISCONNECT) {
    fprintf(stderr, "espsim: %s: disconnect fault: %s dropped\n", s->name, s->link_is_tcp ? "TCP client" : "pty");
    /* The board is unplugged: its pty vanishes (symlink removed, once the
     * link has let go of it) and comes back after --replug-ms as a fresh
     * device in download mode. */
    s->unplugged = true;
    if (s->app->replug_ms && s->replug_ok) uv_timer_start(&s->replug, on_replug, s->app->replug_ms, 0);
  }
  close_link(s);
}

static void on_accept(uv_poll_t *h, int status, int events) {
  slot *s = h->data;
  (void)events;
  if (status < 0) return;
  for (;;) {
    const int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if ((s->link && s->link_is_tcp) || s->pending_client >= 0) {
      close(fd); /* one host at a time */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->unplugged && !s->app->use_pty) {
      /* No pty to replug: a new TCP connection is the replug. */
      if (s->replug_ok) uv_timer_stop(&s->replug);
      esim_dev_reset(s->dev, now_us(), true);
      s->unplugged = false;
    }
    if (s->link) {
      s->pending_client = fd; /* the pty link steps aside first */
      close_link(s);
    } else if (s->link_closing) {
      s->pending_client = fd;
    } else {
      start_tcp_link(s, fd);
    }
  }
}

static void open_listener(slot *s, int port) {
  s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->listen_fd < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    die("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
  if (listen(s->listen_fd, 4) < 0) die("listen: %s", strerror(errno));
  socklen_t len = sizeof sa;
  getsockname(s->listen_fd, (struct sockaddr *)&sa, &len);
  s->port = ntohs(sa.sin_port);
  uv_poll_init(s->app->loop, &s->listen_poll, s->listen_fd);
  s->listen_poll.data = s;
  s->listen_poll_ok = true;
  uv_poll_start(&s->listen_poll, UV_READABLE, on_accept);
}

/* ------------------------------------------------------------------- log */

static void log_line(void *ctx, const char *line) {
  FILE *f = ctx;
  fputs(line, f);
  fputc('\n', f);
}

/* ---------------------------------------------------------------- signals */

static void on_close_noop(uv_handle_t *h) { (void)h; }

static void shutdown_all(app *a) {
  if (a->stopping) return;
  a->stopping = true;
  for (int i = 0; i < a->count; i++) {
    slot *s = &a->slots[i];
    if (s->link) {
      s->link_closing = true;
      esim_link_close(s->link, on_link_closed);
    }
    if (s->pending_client >= 0) close(s->pending_client);
    s->pending_client = -1;
    if (s->listen_poll_ok) uv_close((uv_handle_t *)&s->listen_poll, on_close_noop);
    if (s->replug_ok) uv_close((uv_handle_t *)&s->replug, on_close_noop);
    if (s->idle_ok) uv_close((uv_handle_t *)&s->idle, on_close_noop);
  }
  uv_close((uv_handle_t *)&a->sig_int, on_close_noop);
  uv_close((uv_handle_t *)&a->sig_term, on_close_noop);
  uv_close((uv_handle_t *)&a->sig_usr1, on_close_noop);
  esim_control_close(a->control);
}

static void on_signal(uv_signal_t *h, int sig) {
  app *a = h->data;
  if (sig == SIGUSR1) {
    /* The operator pressed BOOT+RESET on every board. */
    for (int i = 0; i < a->count; i++) esim_dev_reset(a->slots[i].dev, now_us(), true);
    return;
  }
  shutdown_all(a);
}

/* ------------------------------------------------- seats (control.c) */

static int board_find(void *ctx, const char *name) {
  app *a = ctx;
  const int i = slot_index(name, a->count);
  return i > 0 ? i - 1 : -1;
}

static int board_count(void *ctx) { return ((app *)ctx)->count; }
static bool board_seated(void *ctx, int i) { return !((app *)ctx)->slots[i].removed; }

static void listen_closed(uv_handle_t *h) { ((slot *)h->data)->listen_closing = false; }

/* Pull the board: the pty goes as on a disconnect fault (but never comes
 * back by itself), and the TCP port stops listening (connections refused). */
static void board_remove(void *ctx, int i) {
  slot *s = &((app *)ctx)->slots[i];
  s->removed = s->unplugged = true;
  if (s->replug_ok) uv_timer_stop(&s->replug);
  if (s->pending_client >= 0) close(s->pending_client);
  s->pending_client = -1;
  if (s->listen_poll_ok) {
    uv_poll_stop(&s->listen_poll);
    close(s->listen_fd);
    s->listen_fd = -1;
    s->listen_poll_ok = false;
    s->listen_closing = true;
    uv_close((uv_handle_t *)&s->listen_poll, listen_closed);
  }
  if (s->link) close_link(s); /* on_link_closed closes the pty */
  else if (!s->link_closing) close_pty(s);
  esim_dev_note(s->dev, now_us(), "board removed (control)");
}

/* A new board: a fresh device in download mode where the old one was. */
static int board_seat(void *ctx, int i, const esim_seat *req, char *err, size_t errlen) {
  app *a = ctx;
  slot *s = &a->slots[i];
  if (s->link || s->link_closing || s->listen_closing) return 1;
  esim_dev_opts o = s->opts;
  memcpy(o.mac, req->mac, 6);
  o.faults = req->faults;
  o.seed = s->opts.seed + 7919; /* another board, other random faults */
  if (!req->keep_flash) memset(s->flash, 0xFF, s->flash_size);
  esim_dev *dev;
  if (esim_dev_new(&dev, &o) != EG_OK) {
    snprintf(err, errlen, "cannot create the device");
    return -1;
  }
  esim_dev_free(s->dev);
  s->dev = dev;
  s->opts = o;
  s->removed = s->unplugged = false;
  if (a->use_tcp) open_listener(s, s->port);
  if (a->use_pty) {
    open_pty(s);
    start_pty_link(s);
  }
  esim_dev_note(s->dev, now_us(), "board seated (control)");
  return 0;
}

static void board_describe(void *ctx, int i, char *buf, size_t len) {
  app *a = ctx;
  const slot *s = &a->slots[i];
  const uint8_t *m = s->opts.mac;
  size_t n = (size_t)snprintf(buf, len, "\"slot\":\"%s\",\"index\":%d,\"seated\":%s,\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\"",
                              s->name, s->index, s->removed ? "false" : "true", m[0], m[1], m[2], m[3], m[4], m[5]);
  if (n < len && a->use_pty) n += (size_t)snprintf(buf + n, len - n, ",\"pty\":\"%s\"", s->pty_link);
  if (n < len && a->use_tcp)
    n += (size_t)snprintf(buf + n, len - n, ",\"url\":\"socket://127.0.0.1:%d\",\"rfc2217\":\"rfc2217://127.0.0.1:%d\"",
                          s->port, s->port);
  if (n < len) snprintf(buf + n, len - n, ",\"flash\":\"%s\"", s->flash_path);
}

static const esim_control_hooks board_hooks = {
  .find = board_find,
  .seated = board_seated,
  .remove = board_remove,
  .seat = board_seat,
  .describe = board_describe,
  .count = board_count,
};

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
  app a;
  memset(&a, 0, sizeof a);
  a.count = 1;
  a.tcp_port = -1;
  a.replug_ms = 1000;
  a.tick_us = 1000;
  uint32_t flash_id = 0x1640C8;
  uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01};
  int crystal = 40;
  uint64_t seed = 1;
  double rom_err = 0.06;
  esim_stub_flavour stub = ESIM_STUB_AUTO;
  const char *faults_file = NULL, *timing_file = NULL, *control_path = NULL, *empty = NULL;
  char **fault_specs = calloc((size_t)argc + 1, sizeof *fault_specs);
  int nfault_specs = 0;

  enum { O_PTY = 256, O_TCP, O_FLASH_DIR, O_FLASH_ID, O_MAC, O_CRYSTAL, O_FAST, O_FAULTS, O_FAULT, O_EVLOG,
         O_SEED, O_TIMING, O_STUB, O_ROMERR, O_REPLUG, O_TICK, O_CONTROL, O_EMPTY };
  static const struct option lo[] = {
      {"count", required_argument, NULL, 'n'},    {"pty", required_argument, NULL, O_PTY},
      {"tcp", required_argument, NULL, O_TCP},    {"flash-dir", required_argument, NULL, O_FLASH_DIR},
      {"flash-id", required_argument, NULL, O_FLASH_ID}, {"mac", required_argument, NULL, O_MAC},
      {"crystal", required_argument, NULL, O_CRYSTAL}, {"fast", no_argument, NULL, O_FAST},
      {"faults", required_argument, NULL, O_FAULTS}, {"fault", required_argument, NULL, O_FAULT},
      {"event-log", required_argument, NULL, O_EVLOG}, {"seed", required_argument, NULL, O_SEED},
      {"timing", required_argument, NULL, O_TIMING}, {"stub", required_argument, NULL, O_STUB},
      {"rom-clock-error", required_argument, NULL, O_ROMERR}, {"replug-ms", required_argument, NULL, O_REPLUG},
      {"tick-us", required_argument, NULL, O_TICK}, {"help", no_argument, NULL, 'h'},
      {"control", required_argument, NULL, O_CONTROL}, {"empty", required_argument, NULL, O_EMPTY},
      {NULL, 0, NULL, 0}};
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "n:h", lo, NULL)) != -1) {
    unsigned long v;
    switch (c) {
    case 'n':
      if (!parse_ulong(optarg, MAX_DEVICES, &v) || v == 0) die("--count: '%s' is not 1..%d", optarg, MAX_DEVICES);
      a.count = (int)v;
      break;
    case O_PTY: snprintf(a.pty_dir, sizeof a.pty_dir, "%s", optarg); a.use_pty = true; break;
    case O_TCP:
      if (!parse_ulong(optarg, 65535, &v)) die("--tcp: bad port '%s'", optarg);
      a.tcp_port = (int)v;
      a.use_tcp = true;
      break;
    case O_FLASH_DIR: snprintf(a.flash_dir, sizeof a.flash_dir, "%s", optarg); break;
    case O_FLASH_ID:
      if (!parse_ulong(optarg, 0xFFFFFF, &v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "0x%s", optarg);
        if (!parse_ulong(buf, 0xFFFFFF, &v)) die("--flash-id: bad JEDEC ID '%s'", optarg);
      }
      flash_id = (uint32_t)v;
      break;
    case O_MAC: if (!esim_parse_mac(optarg, mac)) die("--mac: bad MAC '%s'", optarg); break;
    case O_CRYSTAL:
      if (!parse_ulong(optarg, 100, &v) || (v != 40 && v != 26)) die("--crystal: 40 or 26, not '%s'", optarg);
      crystal = (int)v;
      break;
    case O_FAST: a.fast = true; break;
    case O_FAULTS: faults_file = optarg; break;
    case O_FAULT: fault_specs[nfault_specs++] = optarg; break;
    case O_EVLOG: snprintf(a.log_dir, sizeof a.log_dir, "%s", optarg); break;
    case O_SEED:
      if (!parse_ulong(optarg, ULONG_MAX, &v)) die("--seed: bad number '%s'", optarg);
      seed = v;
      break;
    case O_TIMING: timing_file = optarg; break;
    case O_STUB:
      if (!strcmp(optarg, "auto")) stub = ESIM_STUB_AUTO;
      else if (!strcmp(optarg, "legacy")) stub = ESIM_STUB_LEGACY;
      else if (!strcmp(optarg, "new")) stub = ESIM_STUB_NEW;
      else die("--stub: auto, legacy or new, not '%s'", optarg);
      break;
    case O_ROMERR: {
      char *end;
      const double d = strtod(optarg, &end);
      if (*end || d < -20 || d > 20) die("--rom-clock-error: bad percentage '%s'", optarg);
      rom_err = d / 100.0;
      break;
    }
    case O_REPLUG:
      if (!parse_ulong(optarg, 3600000, &v)) die("--replug-ms: bad value '%s'", optarg);
      a.replug_ms = (unsigned)v;
      break;
    case O_TICK:
      if (!parse_ulong(optarg, 100000, &v) || v < 100) die("--tick-us: 100..100000, not '%s'", optarg);
      a.tick_us = (unsigned)v;
      break;
    case O_CONTROL: control_path = optarg; break;
    case O_EMPTY: empty = optarg; break;
    case 'h': usage(stdout); free(fault_specs); return 0;
    default:
      if (optopt) die("bad or incomplete option '-%c' (see --help)", optopt);
      die("bad or incomplete option '%s' (see --help)", argv[optind - 1]);
    }
  }
  if (optind < argc) die("unexpected argument '%s'", argv[optind]);
  if (!a.use_pty && !a.use_tcp) die("nothing to serve: give --pty DIR and/or --tcp PORT");
  if (a.use_tcp && a.tcp_port > 0 && a.tcp_port + a.count - 1 > 65535) die("--tcp: ports run past 65535");
  const size_t flash_size = eg_flash_size_from_jedec(flash_id);
  if (!flash_size) die("--flash-id 0x%06x: unknown capacity byte 0x%02x", (unsigned)flash_id,
                       (unsigned)(flash_id >> 16));

  signal(SIGPIPE, SIG_IGN);
  a.loop = uv_default_loop();
  a.slots = calloc((size_t)a.count, sizeof *a.slots);
  if (!a.slots) die("out of memory");

  if (a.flash_dir[0]) {
    char tmp[PATH_MAX];
    abs_dir(a.flash_dir, tmp);
    snprintf(a.flash_dir, sizeof a.flash_dir, "%s", tmp);
  } else {
    char tmpl[] = "/tmp/espsim-XXXXXX";
    if (!mkdtemp(tmpl)) die("cannot create a temp dir: %s", strerror(errno));
    snprintf(a.flash_dir, sizeof a.flash_dir, "%s", tmpl);
  }
  if (a.use_pty) {
    char tmp[PATH_MAX];
    abs_dir(a.pty_dir, tmp);
    snprintf(a.pty_dir, sizeof a.pty_dir, "%s", tmp);
  }
  if (a.log_dir[0]) {
    char tmp[PATH_MAX];
    abs_dir(a.log_dir, tmp);
    snprintf(a.log_dir, sizeof a.log_dir, "%s", tmp);
  }

  const int digits = a.count > 99 ? 3 : 2;
  for (int i = 0; i < a.count; i++) {
    slot *s = &a.slots[i];
    s->app = &a;
    s->index = i + 1;
    s->master = s->slave = s->listen_fd = -1;
    s->pending_client = -1;
    snprintf(s->name, sizeof s->name, "slot%0*d", digits, i + 1);
    esim_dev_opts_default(&s->opts);
    memcpy(s->opts.mac, mac, 6);
    mac_add(s->opts.mac, (uint64_t)i);
    s->opts.flash_id = flash_id;
    s->opts.crystal_mhz = crystal;
    s->opts.rom_clock_error = rom_err;
    s->opts.stub = stub;
    s->opts.seed = seed + (uint64_t)i;
    if (a.fast) esim_timing_fast(&s->opts.timing);
  }
  if (timing_file) {
    esim_timing t = a.slots[0].opts.timing;
    load_timing(timing_file, &t);
    for (int i = 0; i < a.count; i++) a.slots[i].opts.timing = t;
  }
  if (faults_file) load_faults(&a, faults_file);
  for (int k = 0; k < nfault_specs; k++) {
    const char *spec = fault_specs[k];
    const char *colon = strchr(spec, ':');
    if (!colon) die("--fault '%s': expected slotNN:fault[=value]", spec);
    char who[32];
    const size_t wl = (size_t)(colon - spec);
    if (wl == 0 || wl >= sizeof who) die("--fault '%s': bad slot", spec);
    memcpy(who, spec, wl);
    who[wl] = 0;
    const int idx = slot_index(who, a.count);
    if (idx < 0) die("--fault '%s': no device '%s' (slot01..slot%0*d or all)", spec, who, digits, a.count);
    for (int i = 1; i <= a.count; i++)
      if (idx == 0 || idx == i) apply_fault_list(&a.slots[i - 1].opts.faults, colon + 1, spec);
  }
  free(fault_specs);

  for (int i = 0; i < a.count; i++) {
    slot *s = &a.slots[i];
    s->flash_size = flash_size;
    snprintf(s->flash_path, sizeof s->flash_path, "%s/%s.bin", a.flash_dir, s->name);
    open_flash(s);
    s->opts.flash = s->flash;
    s->opts.flash_size = s->flash_size;
    s->opts.name = s->name;
    if (a.log_dir[0]) {
      char p[PATH_MAX + 32];
      snprintf(p, sizeof p, "%s/%s.log", a.log_dir, s->name);
      s->log = fopen(p, "w");
      if (!s->log) die("cannot open %s: %s", p, strerror(errno));
      setvbuf(s->log, NULL, _IOLBF, 0);
      s->opts.log = log_line;
      s->opts.log_ctx = s->log;
    }
    if (esim_dev_new(&s->dev, &s->opts) != EG_OK) die("%s: cannot create the device", s->name);
    uv_timer_init(a.loop, &s->replug);
    s->replug.data = s;
    s->replug_ok = true;
    uv_timer_init(a.loop, &s->idle);
    s->idle.data = s;
    s->idle_ok = true;
    if (a.use_pty) {
      snprintf(s->pty_link, sizeof s->pty_link, "%s/%s", a.pty_dir, s->name);
      open_pty(s);
    }
    if (a.use_tcp) open_listener(s, a.tcp_port == 0 ? 0 : a.tcp_port + i);
    esim_dev_host_attached(s->dev, now_us());
    start_pty_link(s);
  }

  if (empty) {
    char list[1024];
    snprintf(list, sizeof list, "%s", empty);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      const int idx = slot_index(tok, a.count);
      if (idx < 0) die("--empty: no device '%s'", tok);
      for (int i = 1; i <= a.count; i++)
        if (idx == 0 || idx == i) board_remove(&a, i - 1);
    }
  }
  if (control_path) {
    char err[300];
    uint8_t base[6];
    memcpy(base, mac, 6);
    mac_add(base, (uint64_t)a.count); /* seated boards continue after the first ones */
    if (!(a.control = esim_control_start(a.loop, control_path, &board_hooks, &a, base, err, sizeof err))) die("%s", err);
  }

  for (int i = 0; i < a.count; i++) {
    slot *s = &a.slots[i];
    const uint8_t *m = s->opts.mac;
    printf("{\"slot\":\"%s\",\"index\":%d", s->name, s->index);
    if (s->removed) printf(",\"seated\":false");
    if (a.use_pty) printf(",\"pty\":\"%s\"", s->pty_link);
    if (a.use_tcp) printf(",\"url\":\"socket://127.0.0.1:%d\",\"rfc2217\":\"rfc2217://127.0.0.1:%d\"", s->port, s->port);
    printf(",\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\",\"flash_id\":\"0x%06x\",\"flash_size\":%zu,\"flash\":\"%s\"}\n",
           m[0], m[1], m[2], m[3], m[4], m[5], (unsigned)flash_id, s->flash_size, s->flash_path);
  }
  printf("{\"ready\":true,\"count\":%d}\n", a.count);
  fflush(stdout);

  uv_signal_init(a.loop, &a.sig_int);
  uv_signal_init(a.loop, &a.sig_term);
  uv_signal_init(a.loop, &a.sig_usr1);
  a.sig_int.data = a.sig_term.data = a.sig_usr1.data = &a;
  uv_signal_start(&a.sig_int, on_signal, SIGINT);
  uv_signal_start(&a.sig_term, on_signal, SIGTERM);
  uv_signal_start(&a.sig_usr1, on_signal, SIGUSR1);

  uv_run(a.loop, UV_RUN_DEFAULT);

  for (int i = 0; i < a.count; i++) {
    slot *s = &a.slots[i];
    close_pty(s);
    if (s->listen_fd >= 0) close(s->listen_fd);
    esim_dev_free(s->dev);
    if (s->flash) {
      msync(s->flash, s->flash_size, MS_SYNC);
      munmap(s->flash, s->flash_size);
    }
    if (s->log) fclose(s->log);
  }
  free(a.slots);
  uv_loop_close(a.loop);
  return 0;
}
