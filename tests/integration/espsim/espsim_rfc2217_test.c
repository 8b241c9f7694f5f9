/* espsim_rfc2217_test.c - the espsim binary as an RFC 2217 server, driven
 * the way a flasher drives a board through ser2net, with real waits:
 *
 *   slot01: Telnet/Com Port negotiation, 115200 8N1; esptool's
 *           UnixTightReset(0.05) (doc §3.1: (0,0) (1,1) (0,1) 100 ms (1,0)
 *           50 ms (0,0)) -> the ROM's download banner, SYNC at 115200 with
 *           its 8 replies, READ_REG; then esptool's HardReset (RTS pulse,
 *           100 ms) -> the app's boot log (a bootloader image is in flash),
 *           no SYNC answer; then SIGUSR1 and a raw socket:// client on the
 *           same port still talks plain SLIP;
 *   slot02: not_in_download_mode (the circuit cannot pull GPIO0 low): the
 *           same UnixTightReset boots the app.
 *
 * The client here is a minimal one of its own (not src/port_rfc2217.c), so
 * the server is checked against the RFC, not against our client. espsim is
 * always killed, whatever fails; its event logs are printed on failure.
 *
 * usage: espsim_rfc2217_test /path/to/espsim */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"
#include "slip.h"

static void dump_logs(void) {
  char dir[300];
  snprintf(dir, sizeof dir, "%s/log", tmpdir);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    FILE *f = fopen(p, "r");
    if (!f) continue;
    fprintf(stderr, "--- %s\n", p);
    char line[512];
    while (fgets(line, sizeof line, f)) fputs(line, stderr);
    fclose(f);
  }
  closedir(d);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------ a telnet client */

typedef struct conn {
  int fd;
  bool telnet;
  int st; /* 0 data, 1 IAC, 2 verb, 3 SB, 4 SB IAC */
  uint8_t cmds[4096]; /* IAC sequences as received (SB values undoubled) */
  size_t ncmds;
  char text[16384];   /* data bytes, NUL-terminated (boot logs) */
  size_t ntext;
  eg_slip_dec dec;
  uint8_t decbuf[4096];
  int frames;
  uint8_t last[64];
  size_t last_len;
} conn;

static void on_frame(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  conn *c = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME) return;
  c->frames++;
  c->last_len = len < sizeof c->last ? len : sizeof c->last;
  memcpy(c->last, data, c->last_len);
}

static void data_byte(conn *c, uint8_t b) {
  if (c->ntext < sizeof c->text - 1) {
    c->text[c->ntext++] = b ? (char)b : '.';
    c->text[c->ntext] = 0;
  }
  eg_slip_dec_push(&c->dec, &b, 1, on_frame, c);
}

static void cmd_byte(conn *c, uint8_t b) {
  if (c->ncmds < sizeof c->cmds) c->cmds[c->ncmds++] = b;
}

static void rx_byte(conn *c, uint8_t b) {
  if (!c->telnet) {
    data_byte(c, b);
    return;
  }
  switch (c->st) {
  case 0:
    if (b == 255) c->st = 1;
    else data_byte(c, b);
    return;
  case 1:
    if (b == 255) {
      data_byte(c, b);
      c->st = 0;
      return;
    }
    cmd_byte(c, 255);
    cmd_byte(c, b);
    c->st = b == 250 ? 3 : b >= 251 ? 2 : 0;
    return;
  case 2:
    cmd_byte(c, b);
    c->st = 0;
    return;
  case 3:
    if (b == 255) c->st = 4;
    else cmd_byte(c, b);
    return;
  default:
    if (b == 255) {
      cmd_byte(c, 255);
      c->st = 3;
    } else {
      cmd_byte(c, 255);
      cmd_byte(c, b);
      c->st = 0;
    }
    return;
  }
}

/* Read what is there, waiting up to ms for the first byte. */
static void pump(conn *c, int ms) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0) return;
  uint8_t buf[4096];
  const ssize_t k = read(c->fd, buf, sizeof buf);
  if (k == 0) fail("espsim closed the connection");
  for (ssize_t i = 0; i < k; i++) rx_byte(c, buf[i]);
}

#define WAIT_FOR(c, secs, cond, ...)                  \
  do {                                                \
    const double end_ = now_s() + (secs);             \
    while (!(cond)) {                                 \
      if (now_s() > end_) fail(__VA_ARGS__);          \
      pump((c), 20);                                  \
    }                                                 \
  } while (0)

static void conn_open(conn *c, int port, bool telnet) {
  memset(c, 0, sizeof *c);
  c->telnet = telnet;
  eg_slip_dec_init(&c->dec, c->decbuf, sizeof c->decbuf);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) fail("connect %d: %s", port, strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void send_bytes(conn *c, const uint8_t *p, size_t n) {
  if (write(c->fd, p, n) != (ssize_t)n) fail("write: %s", strerror(errno));
}

static bool has_cmd(const conn *c, const uint8_t *want, size_t n) {
  for (size_t i = 0; i + n <= c->ncmds; i++)
    if (!memcmp(c->cmds + i, want, n)) return true;
  return false;
}

/* Negotiate and set 115200 8N1, no flow control, as espgang's client does. */
static void rfc2217_open(conn *c, int port) {
  conn_open(c, port, true);
  static const uint8_t hello[] = {255, 251, 0, 255, 253, 0, 255, 251, 3, 255, 253, 3, 255, 251, 44,
                                  255, 250, 44, 1, 0, 1, 194, 0, 255, 240, 255, 250, 44, 2, 8, 255, 240,
                                  255, 250, 44, 3, 1, 255, 240, 255, 250, 44, 4, 1, 255, 240,
                                  255, 250, 44, 5, 1, 255, 240};
  send_bytes(c, hello, sizeof hello);
  static const uint8_t do_comport[] = {255, 253, 44};
  static const uint8_t baud_ack[] = {255, 250, 44, 101, 0, 1, 194, 0, 255, 240};
  static const uint8_t flow_ack[] = {255, 250, 44, 105, 1, 255, 240};
  WAIT_FOR(c, 5, has_cmd(c, flow_ack, sizeof flow_ack), "no answer to SET-CONTROL(no flow control)");
  if (!has_cmd(c, do_comport, sizeof do_comport)) fail("COM-PORT-OPTION not agreed");
  if (!has_cmd(c, baud_ack, sizeof baud_ack)) fail("SET-BAUDRATE 115200 not acknowledged");
}

/* Set DTR and RTS (1 = asserted) in one write, two SET-CONTROL commands. */
static void set_lines(conn *c, int dtr, int rts) {
  const uint8_t cmd[] = {255, 250, 44, 5, (uint8_t)(dtr ? 8 : 9), 255, 240,
                         255, 250, 44, 5, (uint8_t)(rts ? 11 : 12), 255, 240};
  send_bytes(c, cmd, sizeof cmd);
}

/* esptool UnixTightReset(0.05), then DTR=0 once more. */
static void unix_tight_reset(conn *c) {
  set_lines(c, 0, 0);
  set_lines(c, 1, 1);
  set_lines(c, 0, 1);
  sleep_ms(100);
  set_lines(c, 1, 0);
  sleep_ms(50);
  set_lines(c, 0, 0);
  set_lines(c, 0, 0);
}

/* esptool HardReset: RTS pulse, DTR released. */
static void hard_reset(conn *c) {
  set_lines(c, 0, 1);
  sleep_ms(100);
  set_lines(c, 0, 0);
}

static void send_pkt(conn *c, const uint8_t *pkt, size_t n) {
  uint8_t raw[256], esc[512];
  size_t rl = eg_slip_encode(raw, pkt, n), el = 0;
  for (size_t i = 0; i < rl; i++) {
    esc[el++] = raw[i];
    if (c->telnet && raw[i] == 255) esc[el++] = 255;
  }
  send_bytes(c, esc, el);
}

static void sync_ok(conn *c) {
  uint8_t pkt[64];
  const int f0 = c->frames;
  send_pkt(c, pkt, eg_req_sync(pkt));
  WAIT_FOR(c, 5, c->frames >= f0 + 8, "SYNC: %d replies, want 8", c->frames - f0);
  eg_resp r;
  if (eg_resp_parse(c->last, c->last_len, 4, 0, &r) != EG_OK || r.op != EG_OP_SYNC || !r.ok ||
      r.value != EG_SYNC_VALUE)
    fail("bad SYNC reply");
  pump(c, 100);
  if (c->frames != f0 + 8) fail("SYNC: %d replies, want 8", c->frames - f0);
}

static uint32_t read_reg(conn *c, uint32_t addr) {
  uint8_t pkt[64];
  const int f0 = c->frames;
  send_pkt(c, pkt, eg_req_read_reg(pkt, addr));
  WAIT_FOR(c, 5, c->frames > f0, "no READ_REG reply");
  eg_resp r;
  if (eg_resp_parse(c->last, c->last_len, 4, 0, &r) != EG_OK || r.op != EG_OP_READ_REG || !r.ok)
    fail("bad READ_REG reply");
  return r.value;
}

static void no_sync_answer(conn *c) {
  uint8_t pkt[64];
  const int f0 = c->frames;
  send_pkt(c, pkt, eg_req_sync(pkt));
  const double end = now_s() + 0.3;
  while (now_s() < end) pump(c, 20);
  if (c->frames != f0) fail("the app answered SYNC");
}

static const char download_banner[] =
    "ets Jul 29 2019 12:21:46\r\n\r\n"
    "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
    "waiting for download\r\n";
static const char app_boot[] = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n";

static void clear_text(conn *c) {
  c->ntext = 0;
  c->text[0] = 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s /path/to/espsim\n", argv[0]);
    return 2;
  }
  const char *espsim = argv[1];
  atexit(cleanup);
  fail_hook = dump_logs;
  signal(SIGPIPE, SIG_IGN);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/espsim-rfc2217-XXXXXX");
  if (!mkdtemp(tmpdir)) fail("mkdtemp: %s", strerror(errno));

  /* slot01's flash holds a bootloader image header, so the app boots fully */
  char flashdir[300], logdir[300], flash1[400];
  snprintf(flashdir, sizeof flashdir, "%s/flash", tmpdir);
  snprintf(logdir, sizeof logdir, "%s/log", tmpdir);
  snprintf(flash1, sizeof flash1, "%s/slot01.bin", flashdir);
  if (mkdir(flashdir, 0755) < 0) fail("mkdir %s", flashdir);
  {
    FILE *f = fopen(flash1, "wb");
    if (!f) fail("cannot create %s", flash1);
    uint8_t *img = malloc(4 << 20);
    memset(img, 0xFF, 4 << 20);
    img[0x1000] = 0xE9;
    if (fwrite(img, 1, 4 << 20, f) != 4 << 20) fail("cannot write %s", flash1);
    free(img);
    fclose(f);
  }

  int outp[2];
  if (pipe(outp) < 0) fail("pipe");
  child = fork();
  if (child == 0) {
    dup2(outp[1], 1);
    close(outp[0]);
    execl(espsim, espsim, "-n", "2", "--tcp", "0", "--flash-dir", flashdir, "--event-log", logdir, "--fault",
          "slot02:not_in_download_mode", (char *)NULL);
    _exit(127);
  }
  close(outp[1]);
  FILE *out = fdopen(outp[0], "r");
  char line[2048];
  int port[3] = {0, 0, 0};
  bool ready = false;
  while (fgets(line, sizeof line, out)) {
    if (strstr(line, "\"ready\":true")) {
      ready = true;
      break;
    }
    char slot[32], url[128], rfc[128];
    if (!json_str(line, "slot", slot, sizeof slot) || !json_str(line, "url", url, sizeof url) ||
        !json_str(line, "rfc2217", rfc, sizeof rfc))
      fail("device line lacks slot/url/rfc2217: %s", line);
    int i = !strcmp(slot, "slot01") ? 1 : !strcmp(slot, "slot02") ? 2 : 0;
    int p1 = 0, p2 = 0;
    if (!i || sscanf(url, "socket://127.0.0.1:%d", &p1) != 1 || sscanf(rfc, "rfc2217://127.0.0.1:%d", &p2) != 1 ||
        p1 != p2 || p1 <= 0)
      fail("bad device line: %s", line);
    port[i] = p1;
  }
  if (!ready || !port[1] || !port[2]) fail("no ready line or missing devices");

  /* slot01: reset into download mode, SYNC at 115200 */
  conn c;
  rfc2217_open(&c, port[1]);
  unix_tight_reset(&c);
  WAIT_FOR(&c, 2, strstr(c.text, "waiting for download\r\n"), "no download banner after UnixTightReset: '%s'", c.text);
  if (strcmp(c.text, download_banner) != 0) fail("boot output '%s', want the download banner", c.text);
  static const uint8_t dtr_on[] = {255, 250, 44, 105, 8, 255, 240}, rts_off[] = {255, 250, 44, 105, 12, 255, 240};
  if (!has_cmd(&c, dtr_on, sizeof dtr_on) || !has_cmd(&c, rts_off, sizeof rts_off))
    fail("SET-CONTROL not acknowledged");
  sync_ok(&c);
  if (read_reg(&c, 0x40001000) != 0x00F01D83) fail("magic register");

  /* HardReset: the app boots and prints its log; it never answers SYNC */
  clear_text(&c);
  hard_reset(&c);
  WAIT_FOR(&c, 3, strstr(c.text, "Calling app_main()"), "no app boot log after HardReset: '%s'", c.text);
  if (!strstr(c.text, app_boot)) fail("app boot log without '%s': '%s'", app_boot, c.text);
  if (strstr(c.text, "waiting for download")) fail("HardReset entered download mode");
  no_sync_answer(&c);
  close(c.fd);

  /* SIGUSR1 (BOOT+RESET on every board), then a raw client on the same port */
  kill(child, SIGUSR1);
  sleep_ms(200);
  conn_open(&c, port[1], false);
  sync_ok(&c);
  if (read_reg(&c, 0x3FF5A004) != 0xC4000001) fail("slot01 MAC word over raw TCP");
  close(c.fd);

  /* slot02: the circuit cannot pull GPIO0 low: the app boots */
  rfc2217_open(&c, port[2]);
  /* The app reboots when a host attaches (the fault's adapter reset on
   * open) and then loops on its RTC watchdog (rst:0x10 every 200 ms): let
   * that boot log pass, so that a rst:0x1 afterwards is the reset's. */
  for (int i = 0; i < 15; i++) pump(&c, 20);
  clear_text(&c);
  unix_tight_reset(&c);
  WAIT_FOR(&c, 2, strstr(c.text, app_boot), "slot02: no app boot log after the reset: '%s'", c.text);
  if (strstr(c.text, "waiting for download")) fail("slot02 entered download mode: '%s'", c.text);
  no_sync_answer(&c);
  close(c.fd);

  kill(child, SIGTERM);
  int status;
  const double end = now_s() + 10;
  pid_t w;
  while ((w = waitpid(child, &status, WNOHANG)) == 0) {
    if (now_s() > end) fail("espsim did not exit after SIGTERM");
    sleep_ms(10);
  }
  child = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("exit status %d", status);
  fclose(out);
  printf("espsim RFC 2217: ok\n");
  return 0;
}
