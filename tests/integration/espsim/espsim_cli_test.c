/* espsim_cli_test.c - starts the espsim binary with --pty and --tcp for two
 * devices, reads its JSON lines, talks SYNC/READ_REG to slot01 over its pty
 * and to slot02 over TCP, then sends SIGTERM and checks that the symlinks
 * are gone and the exit code is 0. Also: a bad option exits 2 with one
 * line on stderr. The child is always killed, whatever fails.
 *
 * usage: espsim_cli_test /path/to/espsim */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"
#include "slip.h"

typedef struct frames {
  int n;
  uint8_t last[64];
  size_t last_len;
} frames;

static void on_frame(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  frames *f = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME) return;
  f->n++;
  f->last_len = len < sizeof f->last ? len : sizeof f->last;
  memcpy(f->last, data, f->last_len);
}

static void send_pkt(int fd, const uint8_t *pkt, size_t n) {
  uint8_t raw[256];
  size_t rl = eg_slip_encode(raw, pkt, n);
  if (write(fd, raw, rl) != (ssize_t)rl) fail("write: %s", strerror(errno));
}

/* Read until `want` frames arrived (5 s limit). */
static void read_frames(int fd, eg_slip_dec *dec, frames *f, int want) {
  const double end = now_s() + 5;
  while (f->n < want) {
    if (now_s() > end) fail("timed out waiting for reply %d (got %d)", want, f->n);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    uint8_t buf[1024];
    ssize_t k = read(fd, buf, sizeof buf);
    if (k > 0) eg_slip_dec_push(dec, buf, (size_t)k, on_frame, f);
    else if (k == 0) fail("device closed the connection");
  }
}

/* SYNC (8 replies) then READ_REG(addr); returns the register value. */
static uint32_t talk(int fd, uint32_t addr) {
  eg_slip_dec dec;
  uint8_t buf[512];
  eg_slip_dec_init(&dec, buf, sizeof buf);
  frames f = {0};
  uint8_t pkt[64];
  send_pkt(fd, pkt, eg_req_sync(pkt));
  read_frames(fd, &dec, &f, 8);
  eg_resp r;
  if (eg_resp_parse(f.last, f.last_len, 4, 0, &r) != EG_OK || r.op != EG_OP_SYNC || !r.ok || r.value != EG_SYNC_VALUE)
    fail("bad SYNC reply");
  send_pkt(fd, pkt, eg_req_read_reg(pkt, addr));
  read_frames(fd, &dec, &f, 9);
  if (eg_resp_parse(f.last, f.last_len, 4, 0, &r) != EG_OK || r.op != EG_OP_READ_REG || !r.ok)
    fail("bad READ_REG reply");
  return r.value;
}

static void bad_option(const char *espsim) {
  int errp[2];
  if (pipe(errp) < 0) fail("pipe");
  pid_t p = fork();
  if (p == 0) {
    dup2(errp[1], 2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(espsim, espsim, "--tcp", "0", "--no-such-option", (char *)NULL);
    _exit(127);
  }
  close(errp[1]);
  char buf[1024];
  size_t n = 0;
  ssize_t k;
  while ((k = read(errp[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
  buf[n] = 0;
  close(errp[0]);
  int st;
  waitpid(p, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 2) fail("bad option: exit status %d, want 2", WEXITSTATUS(st));
  int lines = 0;
  for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
  if (lines != 1) fail("bad option: %d lines on stderr, want 1: %s", lines, buf);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s /path/to/espsim\n", argv[0]);
    return 2;
  }
  const char *espsim = argv[1];
  atexit(cleanup);
  signal(SIGPIPE, SIG_IGN);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/espsim-cli-XXXXXX");
  if (!mkdtemp(tmpdir)) fail("mkdtemp: %s", strerror(errno));

  bad_option(espsim);

  char ptydir[300], flashdir[300];
  snprintf(ptydir, sizeof ptydir, "%s/ports", tmpdir);
  snprintf(flashdir, sizeof flashdir, "%s/flash", tmpdir);
  int outp[2];
  if (pipe(outp) < 0) fail("pipe");
  child = fork();
  if (child == 0) {
    dup2(outp[1], 1);
    close(outp[0]);
    execl(espsim, espsim, "-n", "2", "--pty", ptydir, "--tcp", "0", "--flash-dir", flashdir, "--fast",
          (char *)NULL);
    _exit(127);
  }
  close(outp[1]);
  FILE *out = fdopen(outp[0], "r");
  char line[2048];
  char pty1[512] = "", pty2[512] = "", url2[512] = "", flash1[512] = "";
  bool ready = false;
  while (fgets(line, sizeof line, out)) {
    if (strstr(line, "\"ready\":true")) {
      if (!strstr(line, "\"count\":2")) fail("ready line: %s", line);
      ready = true;
      break;
    }
    char slot[32];
    if (!json_str(line, "slot", slot, sizeof slot)) fail("not a device line: %s", line);
    if (!strcmp(slot, "slot01")) {
      if (!json_str(line, "pty", pty1, sizeof pty1) || !json_str(line, "flash", flash1, sizeof flash1))
        fail("slot01 line lacks pty/flash: %s", line);
      if (!strstr(line, "\"mac\":\"24:0a:c4:00:00:01\"") || !strstr(line, "\"flash_size\":4194304"))
        fail("slot01 line: %s", line);
    } else if (!strcmp(slot, "slot02")) {
      if (!json_str(line, "pty", pty2, sizeof pty2) || !json_str(line, "url", url2, sizeof url2))
        fail("slot02 line lacks pty/url: %s", line);
      if (!strstr(line, "\"mac\":\"24:0a:c4:00:00:02\"")) fail("slot02 line: %s", line);
    } else {
      fail("unexpected slot %s", slot);
    }
  }
  if (!ready) fail("no ready line");
  char want[600];
  snprintf(want, sizeof want, "%s/slot01", ptydir);
  if (strcmp(pty1, want)) fail("pty path %s, want %s", pty1, want);
  struct stat st;
  if (stat(flash1, &st) != 0 || st.st_size != 4194304) fail("flash file %s missing or wrong size", flash1);

  /* slot01 over its pty */
  int fd = open(pty1, O_RDWR | O_NOCTTY);
  if (fd < 0) fail("open %s: %s", pty1, strerror(errno));
  struct termios t;
  tcgetattr(fd, &t);
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  tcsetattr(fd, TCSANOW, &t);
  if (talk(fd, 0x40001000) != 0x00F01D83) fail("slot01 magic");
  close(fd);

  /* slot02 over TCP */
  int port = 0;
  if (sscanf(url2, "socket://127.0.0.1:%d", &port) != 1 || port <= 0) fail("url %s", url2);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) fail("connect %d: %s", port, strerror(errno));
  if (talk(s, 0x3FF5A004) != 0xC4000002) fail("slot02 MAC word");
  close(s);

  /* SIGTERM: symlinks removed, exit 0 */
  kill(child, SIGTERM);
  int status;
  const double end = now_s() + 10;
  pid_t w;
  while ((w = waitpid(child, &status, WNOHANG)) == 0) {
    if (now_s() > end) fail("espsim did not exit after SIGTERM");
    usleep(10000);
  }
  child = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("exit status %d", status);
  if (lstat(pty1, &st) == 0 || lstat(pty2, &st) == 0) fail("symlinks left behind");
  fclose(out);
  printf("espsim CLI: ok\n");
  return 0;
}
