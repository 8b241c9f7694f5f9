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
#include <sys/un.h>
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
  int next_master, next_slave; /* USB re-enumeration: the port's next pty, allocated while */
  char next_name[64];          /* the old one still holds its number, so the name changes */
  char pty_link[PATH_MAX + 32]; /* DIR/slotNN */
  char by_path[PATH_MAX + 48];  /* USB slots: DIR/by-path/slotNN, like udev's by-path links */
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
  bool usb_gone;           /* USB port off the bus (re-enumerating) until `reenum` fires */
  uv_timer_t reenum;
  bool reenum_ok;
  /* --pty-lines: DTR/RTS from a datagram socket DIR/slotNN.lines */
  int lines_fd;
  uv_poll_t lines_poll;
  bool lines_poll_ok;
  char lines_path[PATH_MAX + 48];
  FILE *log;
} slot;

struct app {
  uv_loop_t *loop;
  slot *slots;
  int count;
  bool use_pty, use_tcp, fast, pty_lines;
  char pty_dir[PATH_MAX];
  char flash_dir[PATH_MAX];
  char log_dir[PATH_MAX];
  int tcp_port;
  unsigned replug_ms;
  unsigned usb_reenum_ms;
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
        "  --chip NAME            chip of every device: esp32 (default), esp32s2, esp32s3, esp32c2, esp32c3,\n"
        "                         esp32c5, esp32c6, esp32c61, esp32h2, esp32p4, esp8266\n"
        "  --pty DIR              one pty per device, symlinks DIR/slot01..\n"
        "  --tcp PORT             TCP listeners on 127.0.0.1:PORT..PORT+N-1 (0 = ephemeral);\n"
        "                         raw (socket://) or RFC 2217 (rfc2217://, DTR/RTS reset the board)\n"
        "  --flash-dir DIR        flash files DIR/slotNN.bin (default: a new temp dir, kept)\n"
        "  --flash-id HEX         JEDEC ID mfr|type<<8|cap<<16 (default 0x1640C8)\n"
        "  --mac MAC              first device's MAC (default 24:0a:c4:00:00:01)\n"
        "  --crystal MHZ          crystal in MHz (default: the chip's; 26/40 ESP32, C2, ESP8266; 40/48 C5)\n"
        "  --fast                 no flash/processing delays and no wire pacing\n"
        "  --rack FILE.yaml       per-device settings and faults (alias --faults)\n"
        "  --slot SPEC            slotNN:key[=value][,key...]: a setting (chip=, port=, revision=, ...) or a fault\n"
        "                         (repeatable; 'all:' for every device; alias --fault)\n"
        "  --event-log DIR        per-device event log DIR/slotNN.log\n"
        "  --seed N               seed for random faults and garbling (default 1)\n"
        "  --timing FILE.yaml     override the timing model\n"
        "  --stub auto|legacy|new which flasher stub MEM_END starts (default auto, by load address)\n"
        "  --rom-clock-error PCT  ROM's crystal estimate error for CHANGE_BAUDRATE (default 6)\n"
        "  --replug-ms MS         after a disconnect fault, re-create the pty after MS (default 1000, 0 = never)\n"
        "  --usb-reenum-ms MS     a USB port that re-enumerates is gone this long (default 500)\n"
        "  --pty-lines            per device a datagram socket DIR/slotNN.lines: 2-byte messages\n"
        "                         {dtr, rts} (1 = asserted) drive its reset lines as RFC 2217 does\n"
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

/* One "key[=value]" for a device: a setting (chip, port, ...) or a fault. */
static void apply_slot_item(esim_dev_opts *o, const char *item, const char *what) {
  char key[64], err[256];
  const char *eq = strchr(item, '=');
  const size_t kl = eq ? (size_t)(eq - item) : strlen(item);
  if (kl == 0 || kl >= sizeof key) die("%s: bad item '%s'", what, item);
  memcpy(key, item, kl);
  key[kl] = 0;
  const int r = esim_setting_apply(o, key, eq ? eq + 1 : NULL, err, sizeof err);
  if (r < 0) die("%s: %s", what, err);
  if (r == 0 && esim_fault_apply(&o->faults, item, err, sizeof err) != EG_OK) die("%s: %s", what, err);
}

/* Apply "key[=v][,key...]" to one device. */
static void apply_slot_list(esim_dev_opts *o, const char *list, const char *what) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", list) >= (int)sizeof buf) die("%s: list too long", what);
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) apply_slot_item(o, tok, what);
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

static void slot_node(esim_dev_opts *o, yaml_document_t *doc, yaml_node_t *n, const char *path, const char *slotname) {
  char what[300];
  snprintf(what, sizeof what, "%s:%zu (%s)", path, n->start_mark.line + 1, slotname);
  if (n->type == YAML_SCALAR_NODE) {
    apply_slot_list(o, yaml_scalar(doc, n), what);
  } else if (n->type == YAML_SEQUENCE_NODE) {
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
      const char *s = yaml_scalar(doc, yaml_document_get_node(doc, *it));
      if (!s) die("%s: list items must be 'key[=value]' strings", what);
      apply_slot_list(o, s, what);
    }
  } else {
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
      yaml_node_t *kn = yaml_document_get_node(doc, pr->key), *vn = yaml_document_get_node(doc, pr->value);
      const char *k = yaml_scalar(doc, kn);
      snprintf(what, sizeof what, "%s:%zu (%s)", path, kn ? kn->start_mark.line + 1 : 0, slotname);
      if (k && !strcmp(k, "faults") && vn && vn->type != YAML_SCALAR_NODE) {
        slot_node(o, doc, vn, path, slotname); /* faults: [..] or {..} nested */
        continue;
      }
      const char *v = yaml_scalar(doc, vn);
      if (!k || !v) die("%s: entries must be 'name: value'", what);
      char spec[512];
      snprintf(spec, sizeof spec, "%s=%s", k, v);
      apply_slot_item(o, spec, what);
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
        if (idx == 0 || idx == i) slot_node(&a->slots[i - 1].opts, &doc, v, path, k);
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

/* A new pty: master, our own slave fd (so the master never sees EIO and we
 * can read the host's termios speed), raw 8N1 at 115200. */
static void alloc_pty(int *master, int *slave, char *name, size_t cap) {
  *master = posix_openpt(O_RDWR | O_NOCTTY);
  if (*master < 0) die("cannot create pty: %s", strerror(errno));
  if (grantpt(*master) < 0 || unlockpt(*master) < 0) die("cannot unlock pty: %s", strerror(errno));
  const char *n = ptsname(*master);
  if (!n) die("ptsname: %s", strerror(errno));
  snprintf(name, cap, "%s", n);
  *slave = open(name, O_RDWR | O_NOCTTY);
  if (*slave < 0) die("cannot open %s: %s", name, strerror(errno));
  /* Raw, 8N1, 115200 until the host says otherwise: without this the line
   * discipline would echo the device's bytes back to it. */
  struct termios t;
  if (tcgetattr(*slave, &t) == 0) {
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    tcsetattr(*slave, TCSANOW, &t);
  }
}

/* DIR/slotNN (and DIR/by-path/slotNN for a USB slot) -> the current pty. */
static void link_pty(slot *s) {
  unlink(s->pty_link);
  if (symlink(s->pty_name, s->pty_link) < 0) die("cannot create %s: %s", s->pty_link, strerror(errno));
  if (s->by_path[0]) {
    unlink(s->by_path);
    if (symlink(s->pty_name, s->by_path) < 0) die("cannot create %s: %s", s->by_path, strerror(errno));
  }
}

static void open_pty(slot *s) {
  alloc_pty(&s->master, &s->slave, s->pty_name, sizeof s->pty_name);
  link_pty(s);
}

static void close_pty(slot *s) {
  if (s->pty_link[0]) unlink(s->pty_link);
  if (s->by_path[0]) unlink(s->by_path);
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
  if (s->opts.port != ESIM_PORT_UART) {
    /* A USB port: the host's line coding means nothing, and the bytes move
     * at USB full speed (12 Mbit/s on the bus, about 1 MB/s of CDC data;
     * paced as a 10 Mbit/s line, an estimate) whatever the chip's UART. */
    o->pty_slave_fd = -1;
    o->usb_rate = 10000000;
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
static void usb_leave(slot *s);

static void on_idle(uv_timer_t *t) {
  slot *s = t->data;
  if (s->link || s->app->stopping) return;
  const uint64_t now = now_us();
  esim_dev_advance(s->dev, now);
  if (esim_dev_take_reenumerate(s->dev)) usb_leave(s);
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
  if ((s->unplugged || s->usb_gone) && s->master >= 0) close_pty(s); /* the link no longer polls it */
  if (s->app->stopping) return;
  if (s->pending_client >= 0) {
    const int fd = s->pending_client;
    s->pending_client = -1;
    start_tcp_link(s, fd);
    return;
  }
  if (!s->unplugged && !s->usb_gone) start_pty_link(s);
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
  (void)esim_dev_take_reenumerate(s->dev); /* the replug is the new enumeration */
  s->unplugged = false;
  if (s->app->use_pty) {
    open_pty(s);
    if (!s->link && !s->link_closing) start_pty_link(s);
  }
}

/* The USB port is back on the bus: a new pty (a new /dev/pts name, as a
 * new /dev/ttyACMn), the slot's links pointing at it. */
static void on_reenum(uv_timer_t *t) {
  slot *s = t->data;
  if (s->app->stopping) return;
  if (s->link_closing) { /* the old link still holds the old pty: a moment later */
    uv_timer_start(&s->reenum, on_reenum, 5, 0);
    return;
  }
  s->usb_gone = false;
  if (s->app->use_pty && !s->unplugged && s->next_master >= 0) {
    if (s->master >= 0) close_pty(s); /* a link still closing let go of it by now */
    s->master = s->next_master;
    s->slave = s->next_slave;
    snprintf(s->pty_name, sizeof s->pty_name, "%s", s->next_name);
    s->next_master = s->next_slave = -1;
    link_pty(s);
    fprintf(stderr, "espsim: %s: USB port back as %s\n", s->name, s->pty_name);
    if (!s->link && !s->link_closing) start_pty_link(s);
  }
}

/* The chip reset and its USB port left the bus (README "USB ports"): the
 * pty goes (the host's open fd sees EIO/hang-up), a TCP client is dropped,
 * and --usb-reenum-ms later the port enumerates again. The control lines
 * of the new enumeration start released. */
static void usb_leave(slot *s) {
  const uint64_t now = now_us();
  if (s->reenum_ok) uv_timer_start(&s->reenum, on_reenum, s->app->usb_reenum_ms, 0);
  if (s->usb_gone) return;
  s->usb_gone = true;
  esim_dev_note(s->dev, now, "usb: port removed");
  if (s->app->use_pty && s->next_master < 0)
    alloc_pty(&s->next_master, &s->next_slave, s->next_name, sizeof s->next_name);
  if (s->link) close_link(s);
  else if (s->master >= 0) close_pty(s);
  esim_dev_set_lines(s->dev, now, false, false);
}

static void on_link_event(esim_link *l, esim_link_event ev, void *ctx) {
  slot *s = ctx;
  (void)l;
  if (ev == ESIM_LINK_REENUMERATE) {
    usb_leave(s);
    return;
  }
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

/* --pty-lines: the modem-control lines of the pty, as an adapter's DTR/RTS
 * (README "Control lines for ptys"). Each datagram of exactly 2 bytes,
 * {dtr, rts} with 1 = asserted and 0 = released, is one TIOCMSET: both
 * lines change at that instant, as esim_dev_set_lines() takes them from
 * an RFC 2217 SET-CONTROL. Anything else is ignored (logged). While a USB
 * port is off the bus its lines reach nothing. */
static void on_lines(uv_poll_t *h, int status, int events) {
  slot *s = h->data;
  (void)events;
  if (status < 0) return;
  for (;;) {
    uint8_t msg[16];
    const ssize_t n = recv(s->lines_fd, msg, sizeof msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) return;
    const uint64_t now = now_us();
    bool dtr, rts;
    if (!esim_lines_decode(msg, n > (ssize_t)sizeof msg ? sizeof msg + 1 : (size_t)n, &dtr, &rts)) {
      char note[96];
      snprintf(note, sizeof note, "lines: %zd-byte message ignored (want 2 bytes, each 0 or 1)", n);
      esim_dev_note(s->dev, now, note);
      continue;
    }
    if (s->usb_gone || s->unplugged) {
      esim_dev_note(s->dev, now, "lines: port not there, message ignored");
      continue;
    }
    esim_dev_set_lines(s->dev, now, dtr, rts);
    if (esim_dev_take_reenumerate(s->dev)) {
      usb_leave(s);
      continue;
    }
    if (s->link) esim_link_kick(s->link);
    else if (s->idle_ok) on_idle(&s->idle);
  }
}

static void open_lines_socket(slot *s) {
  snprintf(s->lines_path, sizeof s->lines_path, "%s/%s.lines", s->app->pty_dir, s->name);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  const size_t plen = strlen(s->lines_path);
  if (plen >= sizeof sa.sun_path) die("%s: path too long for a socket", s->lines_path);
  memcpy(sa.sun_path, s->lines_path, plen + 1);
  s->lines_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->lines_fd < 0) die("socket: %s", strerror(errno));
  unlink(s->lines_path);
  if (bind(s->lines_fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("cannot bind %s: %s", s->lines_path, strerror(errno));
  uv_poll_init(s->app->loop, &s->lines_poll, s->lines_fd);
  s->lines_poll.data = s;
  s->lines_poll_ok = true;
  uv_poll_start(&s->lines_poll, UV_READABLE, on_lines);
}

static void on_accept(uv_poll_t *h, int status, int events) {
  slot *s = h->data;
  (void)events;
  if (status < 0) return;
  for (;;) {
    const int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if ((s->link && s->link_is_tcp) || s->pending_client >= 0 || s->usb_gone) {
      close(fd); /* one host at a time; a USB port off the bus takes none */
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->unplugged && !s->app->use_pty) {
      /* No pty to replug: a new TCP connection is the replug. */
      if (s->replug_ok) uv_timer_stop(&s->replug);
      esim_dev_reset(s->dev, now_us(), true);
      (void)esim_dev_take_reenumerate(s->dev);
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

/* ------------------------------------------------------------ start-up JSON */

/* One line per device (README "Starting it"). */
static void print_slot_json(const slot *s) {
  const app *a = s->app;
  const uint8_t *m = s->opts.mac;
  esim_dev_info info;
  esim_dev_get_info(s->dev, &info);
  printf("{\"slot\":\"%s\",\"index\":%d", s->name, s->index);
  if (s->removed) printf(",\"seated\":false");
  if (a->use_pty) printf(",\"pty\":\"%s\",\"tty\":\"%s\"", s->pty_link, s->pty_name);
  if (a->use_pty && s->by_path[0]) printf(",\"by_path\":\"%s\"", s->by_path);
  if (s->lines_path[0]) printf(",\"lines\":\"%s\"", s->lines_path);
  if (a->use_tcp) printf(",\"url\":\"socket://127.0.0.1:%d\",\"rfc2217\":\"rfc2217://127.0.0.1:%d\"", s->port, s->port);
  printf(",\"chip\":\"%s\",\"chip_name\":\"%s\",\"revision\":\"v%d.%d\",\"crystal_mhz\":%d", info.chip,
         info.display, info.rev_major, info.rev_minor, info.crystal_mhz);
  printf(",\"port_kind\":\"%s\",\"usb\":\"%04x:%04x\"", esim_port_kind_name(s->opts.port), info.usb_vid, info.usb_pid);
  printf(",\"secure_download_mode\":%s,\"flash_crypt_cnt\":%u,\"flash_encryption\":%s,\"secure_boot\":%s",
         s->opts.sec.secure_download ? "true" : "false", (unsigned)s->opts.sec.flash_crypt_cnt,
         __builtin_popcount(s->opts.sec.flash_crypt_cnt) & 1 ? "true" : "false",
         s->opts.sec.secure_boot ? "true" : "false");
  printf(",\"bootloader_offset\":%u", (unsigned)info.bootloader_offset);
  printf(",\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\",\"flash_id\":\"0x%06x\",\"flash_size\":%zu,\"flash\":\"%s\"}\n",
         m[0], m[1], m[2], m[3], m[4], m[5], (unsigned)s->opts.flash_id, s->flash_size, s->flash_path);
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
    if (s->reenum_ok) uv_close((uv_handle_t *)&s->reenum, on_close_noop);
    if (s->lines_poll_ok) uv_close((uv_handle_t *)&s->lines_poll, on_close_noop);
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
  if (s->reenum_ok) uv_timer_stop(&s->reenum); /* a USB port re-enumerating stays gone */
  s->usb_gone = false;
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
  a.usb_reenum_ms = 500;
  a.tick_us = 1000;
  uint32_t flash_id = 0x1640C8; /* default of every device; a slot's flash_id= overrides */
  uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01};
  int crystal = 0;
  int chip = ESIM_CHIP_ESP32;
  uint64_t seed = 1;
  double rom_err = 0.06;
  esim_stub_flavour stub = ESIM_STUB_AUTO;
  const char *faults_file = NULL, *timing_file = NULL, *control_path = NULL, *empty = NULL;
  char **fault_specs = calloc((size_t)argc + 1, sizeof *fault_specs);
  int nfault_specs = 0;

  enum { O_CHIP = 300, O_PTY = 256, O_TCP, O_FLASH_DIR, O_FLASH_ID, O_MAC, O_CRYSTAL, O_FAST, O_FAULTS, O_FAULT, O_EVLOG,
         O_SEED, O_TIMING, O_STUB, O_ROMERR, O_REPLUG, O_TICK, O_REENUM, O_PTY_LINES, O_CONTROL, O_EMPTY };
  static const struct option lo[] = {
      {"count", required_argument, NULL, 'n'},    {"pty", required_argument, NULL, O_PTY},
      {"tcp", required_argument, NULL, O_TCP},    {"flash-dir", required_argument, NULL, O_FLASH_DIR},
      {"flash-id", required_argument, NULL, O_FLASH_ID}, {"mac", required_argument, NULL, O_MAC},
      {"crystal", required_argument, NULL, O_CRYSTAL}, {"fast", no_argument, NULL, O_FAST},
      {"faults", required_argument, NULL, O_FAULTS}, {"fault", required_argument, NULL, O_FAULT},
      {"rack", required_argument, NULL, O_FAULTS},   {"slot", required_argument, NULL, O_FAULT},
      {"chip", required_argument, NULL, O_CHIP},
      {"event-log", required_argument, NULL, O_EVLOG}, {"seed", required_argument, NULL, O_SEED},
      {"timing", required_argument, NULL, O_TIMING}, {"stub", required_argument, NULL, O_STUB},
      {"rom-clock-error", required_argument, NULL, O_ROMERR}, {"replug-ms", required_argument, NULL, O_REPLUG},
      {"tick-us", required_argument, NULL, O_TICK}, {"help", no_argument, NULL, 'h'},
      {"usb-reenum-ms", required_argument, NULL, O_REENUM}, {"pty-lines", no_argument, NULL, O_PTY_LINES},
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
      if (!parse_ulong(optarg, 100, &v) || (v != 40 && v != 26 && v != 48 && v != 32))
        die("--crystal: 26, 32, 40 or 48, not '%s'", optarg);
      crystal = (int)v;
      break;
    case O_CHIP:
      chip = esim_chip_by_name(optarg);
      if (chip < 0) die("--chip: unknown chip '%s' (see --help)", optarg);
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
    case O_PTY_LINES: a.pty_lines = true; break;
    case O_REENUM:
      if (!parse_ulong(optarg, 600000, &v) || v == 0) die("--usb-reenum-ms: 1..600000, not '%s'", optarg);
      a.usb_reenum_ms = (unsigned)v;
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
  if (a.pty_lines && !a.use_pty) die("--pty-lines needs --pty DIR");
  if (a.use_tcp && a.tcp_port > 0 && a.tcp_port + a.count - 1 > 65535) die("--tcp: ports run past 65535");

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
    s->master = s->slave = s->listen_fd = s->lines_fd = s->next_master = s->next_slave = -1;
    s->pending_client = -1;
    snprintf(s->name, sizeof s->name, "slot%0*d", digits, i + 1);
    esim_dev_opts_default(&s->opts);
    s->opts.chip = (esim_chip_id)chip;
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
    if (!colon) die("--slot '%s': expected slotNN:key[=value]", spec);
    char who[32];
    const size_t wl = (size_t)(colon - spec);
    if (wl == 0 || wl >= sizeof who) die("--slot '%s': bad slot", spec);
    memcpy(who, spec, wl);
    who[wl] = 0;
    const int idx = slot_index(who, a.count);
    if (idx < 0) die("--slot '%s': no device '%s' (slot01..slot%0*d or all)", spec, who, digits, a.count);
    for (int i = 1; i <= a.count; i++)
      if (idx == 0 || idx == i) apply_slot_list(&a.slots[i - 1].opts, colon + 1, spec);
  }
  free(fault_specs);

  /* Every device's settings checked before anything is created. */
  for (int i = 0; i < a.count; i++) {
    slot *s = &a.slots[i];
    char err[256];
    if (esim_dev_opts_check(&s->opts, err, sizeof err) != EG_OK) die("%s: %s", s->name, err);
    s->flash_size = eg_flash_size_from_jedec(s->opts.flash_id);
    if (!s->flash_size)
      die("%s: flash id 0x%06x: unknown capacity byte 0x%02x", s->name, (unsigned)s->opts.flash_id,
          (unsigned)(s->opts.flash_id >> 16));
  }

  for (int i = 0; i < a.count; i++) {
    slot *s = &a.slots[i];
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
    uv_timer_init(a.loop, &s->reenum);
    s->reenum.data = s;
    s->reenum_ok = true;
    if (a.use_pty) {
      snprintf(s->pty_link, sizeof s->pty_link, "%s/%s", a.pty_dir, s->name);
      if (s->opts.port != ESIM_PORT_UART) {
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/by-path", a.pty_dir);
        mkdir_p(dir);
        snprintf(s->by_path, sizeof s->by_path, "%s/%s", dir, s->name);
      }
      open_pty(s);
      if (a.pty_lines) open_lines_socket(s);
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

  for (int i = 0; i < a.count; i++) print_slot_json(&a.slots[i]);
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
    if (s->next_master >= 0) close(s->next_master);
    if (s->next_slave >= 0) close(s->next_slave);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->lines_fd >= 0) close(s->lines_fd);
    if (s->lines_path[0]) unlink(s->lines_path);
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
