/* espsim_usb_test.c - the espsim binary's USB ports and --pty-lines, in
 * real time over ptys:
 *   slot01  ESP32-C3 on its USB-Serial/JTAG (303a:1001)
 *   slot02  ESP32-S3 on its USB-OTG CDC (303a:0009)
 *   slot03  ESP32 behind a USB-UART bridge (10c4:ea60, two-transistor circuit)
 * DTR/RTS go through each slot's datagram socket DIR/slotNN.lines (2-byte
 * messages {dtr, rts}). Checked:
 *   - the start-up JSON: usb VID:PID, port_kind, by_path (USB slots), tty,
 *     lines;
 *   - slot03: UnixTightReset -> the download banner, SYNC answered; the
 *     hard reset -> the app's boot log, SYNC unanswered;
 *   - slot01: ClassicReset boots the app (rst:0x15, no download mode), the
 *     USB-Serial/JTAG sequence enters download mode; the port never leaves
 *     the bus (same /dev/pts name);
 *   - slot02: UnixTightReset resets the chip and the port goes: the open fd
 *     hangs up, DIR/slot02 and DIR/by-path/slot02 vanish and come back
 *     pointing at a new /dev/pts name within --usb-reenum-ms, where the
 *     ROM answers SYNC;
 *   - a malformed lines message is ignored and logged;
 *   - SIGTERM: exit 0, sockets and links removed.
 *
 * usage: espsim_usb_test /path/to/espsim */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"
#include "slip.h"

static char logdir[300];

static void dump_logs(void) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "tail -n 20 %s/*.log 1>&2", logdir);
  if (system(cmd) != 0) fprintf(stderr, "(no event logs)\n");
}

static void sleep_ms(unsigned ms) { usleep(ms * 1000u); }

typedef struct dev {
  char slot[16], pty[512], tty[128], by_path[512], lines[512], usb[16], kind[32];
} dev;

static int lines_sock;

static void send_msg(const char *path, const uint8_t *msg, size_t n) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) fail("socket path too long: %s", path);
  memcpy(sa.sun_path, path, strlen(path));
  if (sendto(lines_sock, msg, n, 0, (struct sockaddr *)&sa, sizeof sa) != (ssize_t)n)
    fail("sendto %s: %s", path, strerror(errno));
}

static void send_lines(const dev *d, int dtr, int rts) {
  const uint8_t msg[2] = {(uint8_t)dtr, (uint8_t)rts};
  send_msg(d->lines, msg, 2);
}

static int open_port(const char *path) {
  const int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) fail("open %s: %s", path, strerror(errno));
  struct termios t;
  tcgetattr(fd, &t);
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  tcsetattr(fd, TCSANOW, &t);
  return fd;
}

/* Read what comes within ms into buf (NUL-terminated); returns -1 when the
 * port hung up, else the byte count. */
static int drain(int fd, char *buf, size_t cap, unsigned ms) {
  size_t n = 0;
  const double end = now_s() + ms / 1000.0;
  while (now_s() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0) continue;
    if (p.revents & (POLLHUP | POLLERR)) {
      buf[n] = 0;
      return -1;
    }
    const ssize_t k = read(fd, buf + n, cap - 1 - n);
    if (k < 0 && errno == EIO) {
      buf[n] = 0;
      return -1;
    }
    if (k > 0) n += (size_t)k;
    if (n >= cap - 1) break;
  }
  buf[n] = 0;
  return (int)n;
}

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

/* SYNC: true when the 8 replies came within ms. */
static bool sync_answers(int fd, unsigned ms) {
  uint8_t pkt[64], raw[128];
  const size_t n = eg_req_sync(pkt);
  const size_t rl = eg_slip_encode(raw, pkt, n);
  if (write(fd, raw, rl) != (ssize_t)rl) fail("write: %s", strerror(errno));
  eg_slip_dec dec;
  uint8_t buf[512];
  eg_slip_dec_init(&dec, buf, sizeof buf);
  frames f = {0};
  const double end = now_s() + ms / 1000.0;
  while (f.n < 8 && now_s() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0) continue;
    uint8_t in[1024];
    const ssize_t k = read(fd, in, sizeof in);
    if (k > 0) eg_slip_dec_push(&dec, in, (size_t)k, on_frame, &f);
  }
  if (f.n < 8) return false;
  eg_resp r;
  return eg_resp_parse(f.last, f.last_len, 4, 0, &r) == EG_OK && r.op == EG_OP_SYNC && r.ok;
}

/* esptool reset.py sequences, chip-family-facts §10 */
static void unix_tight(const dev *d) {
  send_lines(d, 0, 0);
  send_lines(d, 1, 1);
  send_lines(d, 0, 1);
  sleep_ms(100);
  send_lines(d, 1, 0);
  sleep_ms(50);
  send_lines(d, 0, 0);
}

static void classic(const dev *d) {
  send_lines(d, 0, 0); /* DTR=0 (RTS stays 0) */
  send_lines(d, 0, 1); /* RTS=1 */
  sleep_ms(100);
  send_lines(d, 1, 1); /* DTR=1 */
  send_lines(d, 1, 0); /* RTS=0 */
  sleep_ms(50);
  send_lines(d, 0, 0);
}

static void usb_jtag(const dev *d) {
  send_lines(d, 0, 0);
  sleep_ms(100);
  send_lines(d, 1, 0);
  sleep_ms(100);
  send_lines(d, 1, 1);
  send_lines(d, 0, 1);
  sleep_ms(100);
  send_lines(d, 0, 0);
}

static void hard_reset(const dev *d) {
  send_lines(d, 0, 1);
  sleep_ms(100);
  send_lines(d, 0, 0);
}

static void link_target(const char *link, char *out, size_t cap) {
  const ssize_t n = readlink(link, out, cap - 1);
  if (n < 0) {
    out[0] = 0;
    return;
  }
  out[n] = 0;
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
  snprintf(tmpdir, sizeof tmpdir, "/tmp/espsim-usb-XXXXXX");
  if (!mkdtemp(tmpdir)) fail("mkdtemp: %s", strerror(errno));
  char ptydir[300], flashdir[300];
  snprintf(ptydir, sizeof ptydir, "%s/ports", tmpdir);
  snprintf(flashdir, sizeof flashdir, "%s/flash", tmpdir);
  snprintf(logdir, sizeof logdir, "%s/log", tmpdir);
  lines_sock = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (lines_sock < 0) fail("socket: %s", strerror(errno));

  int outp[2];
  if (pipe(outp) < 0) fail("pipe");
  child = fork();
  if (child == 0) {
    dup2(outp[1], 1);
    close(outp[0]);
    execl(espsim, espsim, "-n", "3", "--pty", ptydir, "--pty-lines", "--flash-dir", flashdir, "--fast",
          "--usb-reenum-ms", "300", "--event-log", logdir, "--slot", "slot01:chip=esp32c3,port=usb-serial-jtag",
          "--slot", "slot02:chip=esp32s3,port=usb-otg", (char *)NULL);
    _exit(127);
  }
  close(outp[1]);
  FILE *out = fdopen(outp[0], "r");
  char line[4096];
  dev devs[3];
  memset(devs, 0, sizeof devs);
  int nd = 0;
  bool ready = false;
  while (fgets(line, sizeof line, out)) {
    if (strstr(line, "\"ready\":true")) {
      ready = true;
      break;
    }
    if (nd == 3) fail("more device lines than asked: %s", line);
    dev *d = &devs[nd++];
    if (!json_str(line, "slot", d->slot, sizeof d->slot) || !json_str(line, "pty", d->pty, sizeof d->pty) ||
        !json_str(line, "tty", d->tty, sizeof d->tty) || !json_str(line, "lines", d->lines, sizeof d->lines) ||
        !json_str(line, "usb", d->usb, sizeof d->usb) || !json_str(line, "port_kind", d->kind, sizeof d->kind))
      fail("device line lacks a key: %s", line);
    json_str(line, "by_path", d->by_path, sizeof d->by_path);
  }
  if (!ready || nd != 3) fail("no ready line after 3 devices");
  dev *jtag = &devs[0], *otg = &devs[1], *uart = &devs[2];
  if (strcmp(jtag->usb, "303a:1001") || strcmp(jtag->kind, "usb-serial-jtag") || !jtag->by_path[0])
    fail("slot01: usb %s kind %s by_path '%s'", jtag->usb, jtag->kind, jtag->by_path);
  if (strcmp(otg->usb, "303a:0009") || strcmp(otg->kind, "usb-otg") || !otg->by_path[0])
    fail("slot02: usb %s kind %s by_path '%s'", otg->usb, otg->kind, otg->by_path);
  if (strcmp(uart->usb, "10c4:ea60") || strcmp(uart->kind, "uart") || uart->by_path[0])
    fail("slot03: usb %s kind %s by_path '%s'", uart->usb, uart->kind, uart->by_path);
  char buf[8192], target[256];
  link_target(jtag->by_path, target, sizeof target);
  if (strcmp(target, jtag->tty)) fail("%s -> '%s', JSON tty %s", jtag->by_path, target, jtag->tty);

  /* slot03: the two-transistor circuit */
  int fd = open_port(uart->pty);
  unix_tight(uart);
  drain(fd, buf, sizeof buf, 300);
  if (!strstr(buf, "waiting for download")) fail("slot03: no download banner after UnixTightReset: '%s'", buf);
  if (!sync_answers(fd, 2000)) fail("slot03: no SYNC answer in download mode");
  hard_reset(uart);
  drain(fd, buf, sizeof buf, 300);
  if (!strstr(buf, "SPI_FAST_FLASH_BOOT")) fail("slot03: no app boot after the hard reset: '%s'", buf);
  if (sync_answers(fd, 400)) fail("slot03: the app answered SYNC");
  close(fd);

  /* slot01: USB-Serial/JTAG */
  fd = open_port(jtag->by_path);
  classic(jtag);
  drain(fd, buf, sizeof buf, 300);
  if (!strstr(buf, "rst:0x15 (USB_UART_CHIP_RESET)") || !strstr(buf, "SPI_FAST_FLASH_BOOT"))
    fail("slot01: ClassicReset should boot the app with a USB core reset: '%s'", buf);
  if (sync_answers(fd, 400)) fail("slot01: ClassicReset put the USB-Serial/JTAG chip in download mode");
  usb_jtag(jtag);
  drain(fd, buf, sizeof buf, 300);
  if (!strstr(buf, "waiting for download")) fail("slot01: no download banner after USBJTAGSerialReset: '%s'", buf);
  if (!sync_answers(fd, 2000)) fail("slot01: no SYNC answer after USBJTAGSerialReset");
  link_target(jtag->by_path, target, sizeof target);
  if (strcmp(target, jtag->tty)) fail("slot01: the USB-Serial/JTAG port moved to %s", target);
  close(fd);

  /* slot02: USB-OTG re-enumerates */
  fd = open_port(otg->by_path);
  unix_tight(otg);
  if (drain(fd, buf, sizeof buf, 1000) != -1) fail("slot02: the open port did not hang up on reset");
  close(fd);
  struct stat st;
  if (lstat(otg->by_path, &st) == 0 && lstat(otg->pty, &st) == 0) {
    link_target(otg->by_path, target, sizeof target);
    if (!strcmp(target, otg->tty)) fail("slot02: still at %s right after the reset", target);
  }
  const double end = now_s() + 5;
  target[0] = 0;
  while (now_s() < end) {
    link_target(otg->by_path, target, sizeof target);
    if (target[0]) break;
    sleep_ms(20);
  }
  if (!target[0]) fail("slot02: %s did not come back", otg->by_path);
  if (!strcmp(target, otg->tty)) fail("slot02: came back under the same name %s", target);
  char t2[256];
  link_target(otg->pty, t2, sizeof t2);
  if (strcmp(t2, target)) fail("slot02: %s -> %s but %s -> %s", otg->pty, t2, otg->by_path, target);
  fd = open_port(otg->by_path);
  if (!sync_answers(fd, 2000)) fail("slot02: no SYNC answer on the re-enumerated port %s", target);
  close(fd);

  /* a malformed message is logged and ignored */
  const uint8_t bad[3] = {1, 0, 0};
  send_msg(uart->lines, bad, 3);
  sleep_ms(100);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "grep -q '3-byte message ignored' %s/slot03.log", logdir);
  if (system(cmd) != 0) fail("slot03: the 3-byte lines message was not logged as ignored");

  kill(child, SIGTERM);
  int status;
  const double stop = now_s() + 10;
  while (waitpid(child, &status, WNOHANG) == 0) {
    if (now_s() > stop) fail("espsim did not exit after SIGTERM");
    usleep(10000);
  }
  child = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("exit status %d", status);
  for (int i = 0; i < 3; i++) {
    if (lstat(devs[i].lines, &st) == 0) fail("%s left behind", devs[i].lines);
    if (devs[i].by_path[0] && lstat(devs[i].by_path, &st) == 0) fail("%s left behind", devs[i].by_path);
  }
  fclose(out);
  printf("espsim USB ports and --pty-lines: ok\n");
  return 0;
}
