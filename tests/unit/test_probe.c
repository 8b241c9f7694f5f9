/* test_probe.c - the station's quiet probe (probe.h) against simulated
 * boards in process (simrack.h) and against ports where nobody answers,
 * somebody only talks, nothing exists, or the port cannot be used. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "simrack.h"

#include "device.h"
#include "probe.h"

typedef struct pctx {
  bool done;
  int calls;
  eg_probe_result r;
  bool closed;
} pctx;

static void probe_cb(eg_probe *p, const eg_probe_result *r) {
  pctx *c = p->data;
  c->done = true;
  c->calls++;
  c->r = *r;
}

static void probe_closed(eg_probe *p) { ((pctx *)p->data)->closed = true; }

static eg_probe_config rom_config(void) {
  eg_probe_config c;
  memset(&c, 0, sizeof c);
  c.before = EG_BEFORE_NO_RESET;
  c.rates[0] = 115200;
  c.sync_ms = 100;
  c.chip = eg_chip_get(EG_CHIP_ESP32);
  return c;
}

/* One probe of `port`, run to its end. */
static eg_probe_result probe_once(uv_loop_t *loop, eg_probe *p, pctx *c, const char *port, const eg_probe_config *cfg) {
  c->done = false;
  assert_int_equal(eg_probe_start(p, port, cfg, probe_cb), EG_OK);
  assert_true(eg_probe_busy(p));
  assert_int_equal(eg_probe_start(p, port, cfg, probe_cb), EG_INVAL); /* one at a time */
  assert_false(c->done);                                             /* never from within start */
  simrack_run_until(loop, &c->done, 10000);
  assert_false(eg_probe_busy(p));
  return c->r;
}

static void finish(uv_loop_t *loop, eg_probe *p, pctx *c) {
  eg_probe_close(p, probe_closed);
  while (!c->closed) uv_run(loop, UV_RUN_ONCE);
}

static void found_rom_reads_the_mac(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  simboard b;
  simboard_seat(&b, &loop, 0x07, NULL);
  eg_probe p;
  pctx c = {0};
  eg_probe_init(&p, &loop, &c);
  const eg_probe_config cfg = rom_config();
  eg_probe_result r = probe_once(&loop, &p, &c, b.path, &cfg);
  assert_int_equal(r.outcome, EG_PROBE_FOUND);
  assert_true(r.has_mac);
  const uint8_t want[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x07};
  assert_memory_equal(r.mac, want, 6);
  assert_false(r.stub);
  assert_int_equal(r.baud, 115200);
  assert_true(r.bytes_tx > 0 && r.bytes_rx > 0);
  /* The same probe again, SYNC only: what a waiting slot asks. */
  eg_probe_config sync_only = cfg;
  sync_only.chip = NULL;
  r = probe_once(&loop, &p, &c, b.path, &sync_only);
  assert_int_equal(r.outcome, EG_PROBE_FOUND);
  assert_false(r.has_mac);
  assert_int_equal(r.bytes_tx, 46); /* one SYNC frame: 44 bytes and two 0xC0 */
  assert_int_equal(c.calls, 2);
  /* Nothing was written to the chip: its flash is still blank. */
  size_t size;
  const uint8_t *flash = esim_dev_flash(b.sim, &size);
  for (size_t i = 0; i < 0x20000; i++)
    if (flash[i] != 0xFF) fail_msg("the probe changed the flash at 0x%zx", i);
  finish(&loop, &p, &c);
  simboard_pull(&b);
  uv_run(&loop, UV_RUN_DEFAULT);
  simboard_free(&b);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* The legacy stub, recognised by espsim by its load address; its code is
 * never run (test_device.c does the same). */
static void make_stub(eg_stub *s) {
  memset(s, 0, sizeof *s);
  s->text_len = 3540;
  s->text = malloc(s->text_len);
  for (size_t i = 0; i < s->text_len; i++) s->text[i] = (uint8_t)(i * 7 + 3);
  s->text_start = 0x400BE000;
  s->data_len = 156;
  s->data = malloc(s->data_len);
  memset(s->data, 0xA5, s->data_len);
  s->data_start = 0x3FFEBBAC;
  s->entry = 0x400BE658;
}

static void dev_done(eg_dev *d, eg_err r) {
  (void)r;
  *(bool *)d->data = true;
}
static void dev_closed(eg_dev *d) { (void)d; }

static void found_stub_at_the_transfer_rate(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  simboard b;
  simboard_seat(&b, &loop, 0x09, NULL);
  /* A finished unit left the stub running at 921600 (--after no-reset-stub). */
  eg_stub stub;
  make_stub(&stub);
  const eg_stub *stubs[EG_CHIP__COUNT] = {0};
  stubs[EG_CHIP_ESP32] = &stub;
  eg_dev_config dc;
  memset(&dc, 0, sizeof dc);
  eg_timeouts_default(&dc.timeouts);
  dc.chip = eg_chip_get(EG_CHIP_ESP32);
  dc.before = EG_BEFORE_NO_RESET;
  dc.after = EG_AFTER_NO_RESET_STUB;
  dc.connect_baud = 115200;
  dc.baud = 921600;
  dc.flash_size = "detect";
  dc.connect_attempts = 2;
  dc.stubs = stubs;
  bool done = false;
  const eg_dev_callbacks cbs = {.on_done = dev_done};
  eg_dev d;
  assert_int_equal(eg_dev_init(&d, &loop, b.path, &dc, NULL, 0, &cbs, &done), EG_OK);
  eg_dev_start(&d);
  simrack_run_until(&loop, &done, 10000);
  assert_int_equal(d.rec.result, EG_RESULT_PASS);
  eg_dev_close(&d, dev_closed);
  assert_int_equal(esim_dev_mode(b.sim), ESIM_MODE_STUB);

  eg_probe p;
  pctx c = {0};
  eg_probe_init(&p, &loop, &c);
  eg_probe_config cfg = rom_config();
  cfg.rates[1] = 921600; /* the first rate garbles; the second finds it */
  const eg_probe_result r = probe_once(&loop, &p, &c, b.path, &cfg);
  assert_int_equal(r.outcome, EG_PROBE_FOUND);
  assert_true(r.stub);
  assert_int_equal(r.baud, 921600);
  assert_true(r.has_mac);
  assert_int_equal(r.mac[5], 0x09);
  finish(&loop, &p, &c);
  simboard_pull(&b);
  uv_run(&loop, UV_RUN_DEFAULT);
  simboard_free(&b);
  free(stub.text);
  free(stub.data);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A pty with nobody on the other side, or somebody who only talks. */
typedef struct talker {
  int master;
  uv_timer_t t;
} talker;

static void talk(uv_timer_t *t) {
  talker *k = t->data;
  static const char line[] = "rst:0x10 (RTCWDT_RTC_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\ninvalid header: 0xffffffff\r\n";
  if (write(k->master, line, sizeof line - 1) < 0) { /* the host is slow: drop it, as a UART would */
  }
}

static void silent_and_noise(bool talking) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int master, slave;
  char path[128];
  assert_int_equal(openpty(&master, &slave, path, NULL, NULL), 0);
  talker k = {.master = master};
  uv_timer_init(&loop, &k.t);
  k.t.data = &k;
  if (talking) uv_timer_start(&k.t, talk, 5, 20);
  eg_probe p;
  pctx c = {0};
  eg_probe_init(&p, &loop, &c);
  eg_probe_config cfg = rom_config();
  cfg.sync_ms = 60;
  cfg.tries = 2;
  const eg_probe_result r = probe_once(&loop, &p, &c, path, &cfg);
  assert_int_equal(r.outcome, talking ? EG_PROBE_NOISE : EG_PROBE_SILENT);
  if (talking) assert_true(r.noise_bytes > 0);
  else assert_int_equal(r.noise_bytes, 0);
  if (r.elapsed_ms < 2 * 60) fail_msg("gave up after %u ms, before its two tries of 60 ms", r.elapsed_ms);
  assert_int_equal(r.bytes_tx, 2 * 46 + 1); /* two SYNCs; the second leads with one more 0xC0 */
  finish(&loop, &p, &c);
  uv_close((uv_handle_t *)&k.t, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  close(master);
  close(slave);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void silent_port(void **state) {
  (void)state;
  silent_and_noise(false);
}

static void talking_board(void **state) {
  (void)state;
  silent_and_noise(true);
}

static void absent_and_unusable(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  eg_probe p;
  pctx c = {0};
  eg_probe_init(&p, &loop, &c);
  const eg_probe_config cfg = rom_config();
  /* No such path: nothing is opened. */
  eg_probe_result r = probe_once(&loop, &p, &c, "/tmp/eg-no-such-dir/ttyUSB9", &cfg);
  assert_int_equal(r.outcome, EG_PROBE_ABSENT);
  assert_int_equal(r.bytes_tx, 0);
  if (!strstr(r.msg, "no such file")) fail_msg("message: %s", r.msg);
  /* A network port that refuses: nobody there. */
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t len = sizeof sa;
  getsockname(s, (struct sockaddr *)&sa, &len);
  close(s); /* the port is free again: connections are refused */
  char url[64];
  snprintf(url, sizeof url, "socket://127.0.0.1:%d", ntohs(sa.sin_port));
  r = probe_once(&loop, &p, &c, url, &cfg);
  assert_int_equal(r.outcome, EG_PROBE_ABSENT);
  /* Something that exists but is no port. */
  char file[] = "/tmp/test_probe_XXXXXX";
  const int fd = mkstemp(file);
  assert_true(fd >= 0);
  close(fd);
  r = probe_once(&loop, &p, &c, file, &cfg);
  assert_int_equal(r.outcome, EG_PROBE_ERROR);
  assert_true(r.msg[0] != '\0');
  unlink(file);
  finish(&loop, &p, &c);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void closed_while_probing(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  int master, slave;
  char path[128];
  assert_int_equal(openpty(&master, &slave, path, NULL, NULL), 0);
  eg_probe p;
  pctx c = {0};
  eg_probe_init(&p, &loop, &c);
  const eg_probe_config cfg = rom_config();
  assert_int_equal(eg_probe_start(&p, path, &cfg, probe_cb), EG_OK);
  for (int i = 0; i < 5; i++) uv_run(&loop, UV_RUN_NOWAIT); /* under way: SYNC sent, waiting */
  eg_probe_close(&p, probe_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(c.closed);
  assert_int_equal(c.calls, 0); /* a closed probe never reports */
  close(master);
  close(slave);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(found_rom_reads_the_mac),
    cmocka_unit_test(found_stub_at_the_transfer_rate),
    cmocka_unit_test(silent_port),
    cmocka_unit_test(talking_board),
    cmocka_unit_test(absent_and_unusable),
    cmocka_unit_test(closed_while_probing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
