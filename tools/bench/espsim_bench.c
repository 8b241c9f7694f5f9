/* espsim_bench.c - figures for espsim's timing model and its CPU cost.
 *
 *   espsim_bench calib
 *       Runs esptool's own flows (v5.3.1 cmds.py write_flash / flash_md5 /
 *       erase_flash, legacy stub) against the device model in *virtual*
 *       time, with the UART wire at 10 bits per byte, and prints how long
 *       each takes next to the published esptool figure it is calibrated
 *       against (timing-facts.md §4). Deterministic; runs in seconds. Exits
 *       1 if the 921600 case (1 388 912 bytes) is not within 10 % of the
 *       published 13.8 s or the 115200 case is faster than its wire time.
 *
 *   espsim_bench cpu PATH/TO/espsim [-n 16] [--baud 921600] [--size BYTES] [--pty]
 *       Starts the espsim binary with N TCP (or pty) devices, drives all of them at
 *       once from this process (stub upload, CHANGE_BAUDRATE, compressed
 *       write, READ_FLASH back), and prints the espsim process's CPU time
 *       per wall-clock second for each phase (from /proc/PID/stat).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "proto.h"
#include "simdev.h"
#include "slip.h"

/* ------------------------------------------------------------- images */

/* Deterministic pseudo-firmware whose zlib -9 ratio is set by `p`: at each
 * step, with probability p, a run of 3..34 bytes repeated from up to 4 KB
 * back (what LZ77 finds in code), else one random literal byte. */
static void make_image(uint8_t *img, size_t n, double p, uint32_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  size_t i = 0;
  while (i < n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const double u = (double)(x >> 11) / 9007199254740992.0;
    if (i >= 64 && u < p) {
      size_t len = 3 + (size_t)((x >> 3) % 32);
      const size_t win = i < 4096 ? i : 4096;
      const size_t dist = 1 + (size_t)((x >> 20) % win);
      for (size_t k = 0; k < len && i < n; k++, i++) img[i] = img[i - dist];
    } else {
      img[i++] = (uint8_t)(x >> 40);
    }
  }
}

static size_t zsize(const uint8_t *img, size_t n, uint8_t **out) {
  uLongf cap = compressBound(n);
  uint8_t *z = malloc(cap);
  if (compress2(z, &cap, img, n, 9) != Z_OK) abort();
  if (out) *out = z;
  else free(z);
  return cap;
}

/* Find p so that the image compresses to about `target` bytes. */
static uint8_t *image_like(size_t n, size_t target, uint8_t **z, size_t *zn) {
  uint8_t *img = malloc(n);
  double lo = 0.0, hi = 0.99;
  for (int i = 0; i < 14; i++) {
    const double mid = (lo + hi) / 2;
    make_image(img, n, mid, 7);
    const size_t s = zsize(img, n, NULL);
    if (s > target) lo = mid;
    else hi = mid;
  }
  make_image(img, n, hi, 7);
  *zn = zsize(img, n, z);
  return img;
}

/* ------------------------------------------------- virtual-time host */

typedef struct vhost {
  esim_dev *dev;
  double t;        /* virtual µs */
  double host_line, dev_line;
  uint32_t host_baud;
  eg_slip_dec dec;
  uint8_t decbuf[8192];
  uint8_t frame[8192];
  size_t frame_len;
  bool have_frame;
} vhost;

static void vh_cb(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  vhost *h = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME || h->have_frame) return;
  memcpy(h->frame, data, len < sizeof h->frame ? len : sizeof h->frame);
  h->frame_len = len;
  h->have_frame = true;
}

static double byte_us(uint32_t baud) { return 10e6 / (double)(baud ? baud : 115200); }

/* The host writes a packet: it is on the wire for 10 bits per byte. */
static void vh_send(vhost *h, const uint8_t *pkt, size_t n) {
  uint8_t *raw = malloc(eg_slip_max_encoded(n));
  const size_t rl = eg_slip_encode(raw, pkt, n);
  const double start = h->host_line > h->t ? h->host_line : h->t;
  h->host_line = start + (double)rl * byte_us(h->host_baud);
  esim_dev_rx(h->dev, (uint64_t)h->host_line, raw, rl, 0);
  free(raw);
}

/* Wait for the next reply frame; returns false if the device goes quiet. */
static bool vh_wait(vhost *h) {
  h->have_frame = false;
  uint8_t buf[512];
  while (!h->have_frame) {
    uint64_t ready = esim_dev_tx_ready_at(h->dev);
    if (ready == ESIM_NEVER) {
      const uint64_t ne = esim_dev_next_event(h->dev);
      if (ne == ESIM_NEVER) return false;
      esim_dev_advance(h->dev, ne);
      continue;
    }
    const double bu = byte_us(esim_dev_baud(h->dev));
    double start = h->dev_line > (double)ready ? h->dev_line : (double)ready;
    const uint64_t at = (uint64_t)ceil(start);
    /* take one small batch, account its wire time */
    const size_t k = esim_dev_tx_take(h->dev, at, buf, 32, 0);
    if (k) {
      h->dev_line = start + (double)k * bu;
      if (h->dev_line > h->t) h->t = h->dev_line;
      eg_slip_dec_push(&h->dec, buf, k, vh_cb, h);
    }
  }
  return true;
}

static void vh_cmd(vhost *h, const uint8_t *pkt, size_t n) {
  vh_send(h, pkt, n);
  if (!vh_wait(h)) {
    fprintf(stderr, "no reply to %s\n", eg_op_name(pkt[1]));
    exit(1);
  }
  const uint8_t *f = h->frame;
  if (h->frame_len < 10 || f[1] != pkt[1] || f[h->frame_len - 2] != 0) {
    fprintf(stderr, "%s failed\n", eg_op_name(pkt[1]));
    exit(1);
  }
}

static void vh_init(vhost *h) {
  memset(h, 0, sizeof *h);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  o.name = "bench";
  if (esim_dev_new(&h->dev, &o) != EG_OK) abort();
  eg_slip_dec_init(&h->dec, h->decbuf, sizeof h->decbuf);
  h->host_baud = 115200;
  h->t = 1000;
}

/* esptool: upload the legacy stub (sizes of esptool's set-1 esp32.json). */
static void vh_stub(vhost *h) {
  static const struct {
    uint32_t addr, size;
  } seg[2] = {{0x400BE000, 3540}, {0x3FFDEBAC, 156}};
  uint8_t *pkt = malloc(EG_MAX_PACKET);
  uint8_t data[0x1800];
  memset(data, 0x5A, sizeof data);
  for (int s = 0; s < 2; s++) {
    vh_cmd(h, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, seg[s].size, 1, 0x1800, seg[s].addr, false, 0));
    vh_cmd(h, pkt, eg_req_data(pkt, EG_OP_MEM_DATA, 0, data, seg[s].size, 0));
  }
  vh_send(h, pkt, eg_req_mem_end(pkt, 0x400BE658));
  vh_wait(h);
  vh_wait(h); /* OHAI */
  free(pkt);
}

static void vh_baud(vhost *h, uint32_t baud) {
  if (baud == h->host_baud) return;
  uint8_t pkt[64];
  vh_cmd(h, pkt, eg_req_change_baud(pkt, baud, h->host_baud));
  h->host_baud = baud;
  h->t += 50000; /* esptool sleeps 50 ms */
}

/* esptool write_flash -z with the stub; returns esptool's "in X seconds". */
static double vh_write(vhost *h, const uint8_t *z, size_t zn, size_t n, uint32_t addr) {
  uint8_t *pkt = malloc(EG_MAX_PACKET + 64);
  const uint32_t blocks = (uint32_t)((zn + 0x3FFF) / 0x4000);
  vh_cmd(h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, (uint32_t)n, blocks, 0x4000, addr, true, 0));
  const double t0 = h->t;
  for (uint32_t seq = 0; seq < blocks; seq++) {
    size_t k = zn - seq * 0x4000u < 0x4000 ? zn - seq * 0x4000u : 0x4000;
    vh_cmd(h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, seq, z + (size_t)seq * 0x4000, k, 0));
  }
  vh_cmd(h, pkt, eg_req_end(pkt, EG_OP_FLASH_DEFL_END, 1));
  free(pkt);
  return (h->t - t0) / 1e6;
}

static double vh_md5(vhost *h, uint32_t addr, size_t n) {
  uint8_t pkt[64];
  const double t0 = h->t;
  vh_cmd(h, pkt, eg_req_flash_md5(pkt, addr, (uint32_t)n));
  return (h->t - t0) / 1e6;
}

typedef struct pub {
  const char *source;
  uint32_t baud;
  size_t size, zsize;
  double seconds;
} pub;

static int calib(void) {
  /* timing-facts.md §4: published esptool write_flash figures, ESP32 + stub */
  static const pub cases[] = {
      {"esptool #129", 115200, 282836, 123726, 10.9},
      {"meatloaf #34 (460800 inferred)", 460800, 2507328, 1483599, 35.2},
      {"esp32.com t=16710 (CH340)", 921600, 1388912, 858612, 13.8},
      {"esp32.com t=16710 (CP2102N)", 2000000, 1388912, 858612, 13.5},
      {"ESPTimeCast #68", 921600, 25184, 16080, 0.5},
  };
  esim_timing t;
  esim_timing_default(&t);
  printf("espsim timing model vs published esptool figures (virtual time, legacy stub)\n");
  printf("  page program %u us / 32 B, sector %u ms, block %u ms, inflate %u ns/B\n\n", t.page_program_us,
         t.sector_erase_us / 1000, t.block_erase_us / 1000, t.inflate_ns_per_byte);
  printf("  %-32s %8s %9s %9s %9s %9s %7s %8s\n", "source", "baud", "bytes", "z bytes", "z sim", "published",
         "espsim", "ratio");
  int rc = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const pub *c = &cases[i];
    uint8_t *z;
    size_t zn;
    uint8_t *img = image_like(c->size, c->zsize, &z, &zn);
    vhost h;
    vh_init(&h);
    vh_stub(&h);
    vh_baud(&h, c->baud);
    const double s = vh_write(&h, z, zn, c->size, 0x10000);
    printf("  %-32s %8u %9zu %9zu %9zu %8.1fs %6.1fs %8.2f\n", c->source, c->baud, c->size, c->zsize, zn, c->seconds,
           s, s / c->seconds);
    if (i == 2 && (s < c->seconds * 0.9 || s > c->seconds * 1.1)) {
      printf("  ^ FAIL: more than 10 %% off the published figure\n");
      rc = 1;
    }
    if (i == 2) {
      const double m = vh_md5(&h, 0x10000, c->size);
      printf("  %-32s MD5 of the %zu bytes: %.2f s\n", "", c->size, m);
    }
    esim_dev_free(h.dev);
    free(z);
    free(img);
  }
  /* wire-bound check: at 115200 the time is the compressed bytes on the wire */
  {
    vhost h;
    vh_init(&h);
    vh_stub(&h);
    uint8_t *z;
    size_t zn;
    uint8_t *img = image_like(282836, 123726, &z, &zn);
    const double s = vh_write(&h, z, zn, 282836, 0x10000);
    printf("\n  115200 wire time of %zu compressed bytes: %.1f s; espsim write: %.1f s\n", zn, zn * 10.0 / 115200, s);
    if (s < zn * 10.0 / 115200) {
      printf("  ^ FAIL: faster than the wire\n");
      rc = 1;
    }
    esim_dev_free(h.dev);
    free(z);
    free(img);
  }
  /* erase_flash: stub, 4 MB, blank vs fully written */
  for (int full = 0; full <= 1; full++) {
    vhost h;
    vh_init(&h);
    size_t fs;
    uint8_t *fl = (uint8_t *)esim_dev_flash(h.dev, &fs);
    if (full) memset(fl, 0x00, fs);
    vh_stub(&h);
    uint8_t pkt[64];
    const double t0 = h.t;
    vh_cmd(&h, pkt, eg_req_simple(pkt, EG_OP_ERASE_FLASH));
    printf("  erase_flash, 4 MB %s: %.1f s (published: 2.0-7 s, GD25Q32 \"4 MB in 15 s\")\n",
           full ? "all written" : "blank", (h.t - t0) / 1e6);
    esim_dev_free(h.dev);
  }
  /* ROM write (no stub) at 115200: no published ESP32 figure */
  {
    vhost h;
    vh_init(&h);
    uint8_t *z;
    size_t zn;
    const size_t n = 282836;
    uint8_t *img = image_like(n, 123726, &z, &zn);
    uint8_t *pkt = malloc(8192);
    vh_cmd(&h, pkt, eg_req_spi_attach(pkt, 0, true));
    vh_cmd(&h, pkt, eg_req_spi_set_params(pkt, 4u << 20));
    const uint32_t blocks = (uint32_t)((zn + 0x3FF) / 0x400);
    const double t0 = h.t;
    vh_cmd(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, (uint32_t)((n + 0x3FF) / 0x400 * 0x400), blocks, 0x400,
                                  0x10000, false, 0));
    const double te = h.t;
    for (uint32_t seq = 0; seq < blocks; seq++) {
      size_t k = zn - seq * 0x400u < 0x400 ? zn - seq * 0x400u : 0x400;
      vh_cmd(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, seq, z + (size_t)seq * 0x400, k, 0));
    }
    printf("  ROM (no stub) write_flash -z of %zu bytes at 115200: erase %.1f s + write %.1f s (wire alone %.1f s)\n",
           n, (te - t0) / 1e6, (h.t - te) / 1e6, zn * 10.0 / 115200);
    free(pkt);
    esim_dev_free(h.dev);
    free(z);
    free(img);
  }
  return rc;
}

/* ----------------------------------------------------------- CPU bench */

typedef struct client {
  int fd;
  eg_slip_dec dec;
  uint8_t decbuf[8192];
  int frames;       /* frames received so far */
  int waiting_for;  /* frame count to reach before the next step */
  int step;
  uint32_t seq;
  uint32_t got;     /* READ_FLASH bytes */
  bool done;
  uint8_t last[64];
  size_t last_len;
  uint8_t *pend; /* SLIP bytes not yet accepted by the fd */
  size_t pend_off, pend_len;
} client;

static void cl_cb(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  client *c = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME) return;
  c->frames++;
  if (len > 16) c->got += (uint32_t)len; /* READ_FLASH data packets */
  c->last_len = len < sizeof c->last ? len : sizeof c->last;
  memcpy(c->last, data, c->last_len);
}

/* Queue a packet; cl_flush writes what the fd takes (a pty accepts bytes
 * only as fast as espsim's wire drains them). */
static void cl_flush(client *c) {
  while (c->pend_off < c->pend_len) {
    ssize_t k = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
    if (k > 0) {
      c->pend_off += (size_t)k;
    } else {
      if (k < 0 && errno != EAGAIN && errno != EINTR) {
        perror("write");
        exit(1);
      }
      return;
    }
  }
}

static void cl_send(client *c, const uint8_t *pkt, size_t n) {
  free(c->pend);
  c->pend = malloc(eg_slip_max_encoded(n));
  c->pend_len = eg_slip_encode(c->pend, pkt, n);
  c->pend_off = 0;
  cl_flush(c);
}

static double cpu_seconds(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  unsigned long ut = 0, st = 0;
  /* fields after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cpu(int argc, char **argv) {
  const char *espsim = argv[0];
  int n = 16;
  uint32_t baud = 921600;
  size_t size = 1 << 20;
  bool use_pty = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--pty")) use_pty = true;
    if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--baud") && i + 1 < argc) baud = (uint32_t)strtoul(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = strtoul(argv[++i], NULL, 0);
  }
  int outp[2];
  if (pipe(outp) < 0) return 1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(outp[1], 1);
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    if (use_pty) execl(espsim, espsim, "-n", nbuf, "--pty", "/tmp/espsim-bench-ptys", (char *)NULL);
    else execl(espsim, espsim, "-n", nbuf, "--tcp", "0", (char *)NULL);
    _exit(127);
  }
  close(outp[1]);
  FILE *out = fdopen(outp[0], "r");
  client *cl = calloc((size_t)n, sizeof *cl);
  char line[1024];
  int k = 0;
  while (k < n && fgets(line, sizeof line, out)) {
    int fd;
    if (use_pty) {
      char *u = strstr(line, "\"pty\":\"");
      if (!u) continue;
      u += 7;
      char *e = strchr(u, '"');
      if (!e) continue;
      *e = 0;
      fd = open(u, O_RDWR | O_NOCTTY);
      if (fd < 0) {
        perror(u);
        kill(pid, SIGKILL);
        return 1;
      }
      struct termios t;
      tcgetattr(fd, &t);
      cfmakeraw(&t);
      cfsetispeed(&t, B115200);
      cfsetospeed(&t, B115200);
      tcsetattr(fd, TCSANOW, &t);
    } else {
      const char *u = strstr(line, "socket://127.0.0.1:");
      if (!u) continue;
      const int port = atoi(u + strlen("socket://127.0.0.1:"));
      fd = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("connect");
        kill(pid, SIGKILL);
        return 1;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    cl[k].fd = fd;
    eg_slip_dec_init(&cl[k].dec, cl[k].decbuf, sizeof cl[k].decbuf);
    k++;
  }
  uint8_t *z;
  size_t zn;
  uint8_t *img = image_like(size, size * 62 / 100, &z, &zn);
  const uint32_t blocks = (uint32_t)((zn + 0x3FFF) / 0x4000);
  uint8_t *pkt = malloc(EG_MAX_PACKET + 64);
  uint8_t stubdata[3540];
  memset(stubdata, 0x5A, sizeof stubdata);
  /* steps: 0 stub begin, 1 data, 2 end(+OHAI), 3 baud, 4 defl begin, 5.. blocks, end, read */
  const char *phase_name[] = {"setup (stub, baud)", "write (compressed, flash-bound)", "read_flash (wire-bound)"};
  double phase_wall[3] = {0}, phase_cpu[3] = {0};
  int phase = 0;
  double w0 = wall(), c0 = cpu_seconds(pid);
  for (;;) {
    int done = 0, min_step = 1 << 30;
    for (int i = 0; i < n; i++) {
      client *c = &cl[i];
      if (c->done) {
        done++;
        continue;
      }
      if (c->frames < c->waiting_for) continue;
      if (c->step < min_step) min_step = c->step;
      switch (c->step) {
      case 0:
        cl_send(c, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, sizeof stubdata, 1, 0x1800, 0x400BE000, false, 0));
        c->waiting_for = c->frames + 1;
        break;
      case 1:
        cl_send(c, pkt, eg_req_data(pkt, EG_OP_MEM_DATA, 0, stubdata, sizeof stubdata, 0));
        c->waiting_for = c->frames + 1;
        break;
      case 2:
        cl_send(c, pkt, eg_req_mem_end(pkt, 0x400BE658));
        c->waiting_for = c->frames + 2;
        break;
      case 3:
        cl_send(c, pkt, eg_req_change_baud(pkt, baud, 115200));
        c->waiting_for = c->frames + 1;
        break;
      case 4:
        if (use_pty) { /* the reply came at the old rate; esptool switches, sleeps 50 ms */
          usleep(50000);
          struct termios t;
          tcgetattr(c->fd, &t);
          const speed_t sp = baud == 921600 ? B921600 : baud == 460800 ? B460800 : baud == 230400 ? B230400 : B115200;
          cfsetispeed(&t, sp);
          cfsetospeed(&t, sp);
          tcsetattr(c->fd, TCSANOW, &t);
          usleep(50000);
          tcflush(c->fd, TCIFLUSH);
        }
        cl_send(c, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, (uint32_t)size, blocks, 0x4000, 0x10000, true, 0));
        c->waiting_for = c->frames + 1;
        c->seq = 0;
        break;
      case 5: {
        size_t len = zn - c->seq * 0x4000u < 0x4000 ? zn - c->seq * 0x4000u : 0x4000;
        cl_send(c, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, c->seq, z + (size_t)c->seq * 0x4000, len, 0));
        c->waiting_for = c->frames + 1;
        if (++c->seq < blocks) c->step--; /* stay */
        break;
      }
      case 6:
        cl_send(c, pkt, eg_req_end(pkt, EG_OP_FLASH_DEFL_END, 1));
        c->waiting_for = c->frames + 1;
        break;
      case 7:
        cl_send(c, pkt, eg_req_read_flash(pkt, 0x10000, (uint32_t)size, 0x1000, 64));
        c->waiting_for = c->frames + 2;
        c->got = 0;
        break;
      case 8:
        cl_send(c, pkt, eg_read_ack(pkt, c->got));
        c->waiting_for = c->frames + 1; /* the next packet, or the MD5 after the last */
        if (c->got < size) c->step--;
        break;
      default:
        c->done = true;
        break;
      }
      c->step++;
    }
    const int new_phase = min_step <= 4 ? 0 : min_step <= 7 ? 1 : 2;
    if (new_phase != phase && min_step != (1 << 30)) {
      const double w = wall(), c = cpu_seconds(pid);
      phase_wall[phase] += w - w0;
      phase_cpu[phase] += c - c0;
      w0 = w;
      c0 = c;
      phase = new_phase;
    }
    if (done == n) break;
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    for (int i = 0; i < n; i++)
      pf[i] = (struct pollfd){.fd = cl[i].fd,
                              .events = (short)(POLLIN | (cl[i].pend_off < cl[i].pend_len ? POLLOUT : 0))};
    poll(pf, (nfds_t)n, 50);
    for (int i = 0; i < n; i++) {
      if (pf[i].revents & POLLOUT) cl_flush(&cl[i]);
      if (!(pf[i].revents & POLLIN)) continue;
      uint8_t buf[16384];
      ssize_t r;
      while ((r = read(cl[i].fd, buf, sizeof buf)) > 0) eg_slip_dec_push(&cl[i].dec, buf, (size_t)r, cl_cb, &cl[i]);
      if (r == 0) {
        fprintf(stderr, "device %d closed\n", i);
        kill(pid, SIGKILL);
        return 1;
      }
    }
    free(pf);
  }
  phase_wall[phase] += wall() - w0;
  phase_cpu[phase] += cpu_seconds(pid) - c0;
  printf("espsim CPU use: %d %s devices at %u baud, %zu-byte image (%zu compressed)\n", n, use_pty ? "pty" : "TCP", baud,
         size, zn);
  double tw = 0, tc = 0;
  for (int p = 0; p < 3; p++) {
    printf("  %-34s wall %6.2f s  espsim CPU %6.2f s  = %5.1f %% of one core\n", phase_name[p], phase_wall[p],
           phase_cpu[p], phase_wall[p] > 0 ? 100.0 * phase_cpu[p] / phase_wall[p] : 0);
    tw += phase_wall[p];
    tc += phase_cpu[p];
  }
  printf("  %-34s wall %6.2f s  espsim CPU %6.2f s  = %5.1f %% of one core\n", "total", tw, tc, 100 * tc / tw);
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  for (int i = 0; i < n; i++) {
    close(cl[i].fd);
    free(cl[i].pend);
  }
  free(cl);
  free(pkt);
  free(z);
  free(img);
  fclose(out);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 2 && !strcmp(argv[1], "calib")) return calib();
  if (argc >= 3 && !strcmp(argv[1], "cpu")) return cpu(argc - 2, argv + 2);
  fprintf(stderr, "usage: %s calib | cpu PATH/TO/espsim [-n 16] [--baud 921600] [--size BYTES] [--pty]\n", argv[0]);
  return 2;
}
