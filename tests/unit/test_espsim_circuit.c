/* test_espsim_circuit.c - the board's auto-reset circuit in espsim's device
 * model (esim_dev_set_lines), in virtual time: esptool's reset sequences
 * as the protocol doc §3.1 gives them (written out here, independently of
 * src/reset.c), then espgang's own plans, played the way an RFC 2217 client
 * sends them (DTR command first, then RTS, microseconds apart).
 *
 * Circuit facts (README "Auto-reset circuit"): EN low while RTS is asserted
 * and DTR is not, GPIO0 low while DTR is asserted and RTS is not; EN low for
 * >= 50 us resets; GPIO0 is sampled 1 ms after EN is released. */
#include "test_espsim_host.h"

#include "reset.h"

static const char download_banner[] =
    "ets Jul 29 2019 12:21:46\r\n\r\n"
    "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
    "waiting for download\r\n";
static const char app_boot[] = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n";

/* One step of a sequence: set the lines given (-1 = leave), then wait. */
typedef struct step {
  int dtr, rts;
  uint32_t wait_us;
} step;

typedef struct lines {
  bool dtr, rts;
} lines;

/* Apply one change of both lines at once (TIOCMSET), or DTR then RTS
 * `gap_us` apart as an RFC 2217 client's two SET-CONTROL commands. */
static void set(th *h, lines *l, int dtr, int rts, uint32_t gap_us) {
  if (gap_us == 0) {
    if (dtr >= 0) l->dtr = dtr;
    if (rts >= 0) l->rts = rts;
    esim_dev_set_lines(h->dev, h->t, l->dtr, l->rts);
    return;
  }
  if (dtr >= 0) {
    l->dtr = dtr;
    esim_dev_set_lines(h->dev, h->t, l->dtr, l->rts);
    th_run_until(h, h->t + gap_us);
  }
  if (rts >= 0) {
    l->rts = rts;
    esim_dev_set_lines(h->dev, h->t, l->dtr, l->rts);
    th_run_until(h, h->t + gap_us);
  }
}

/* Play steps; a step without a wait is followed by the next one `gap_us`
 * later (the next ioctl or command). */
static void play(th *h, lines *l, const step *s, size_t n, uint32_t gap_us) {
  for (size_t i = 0; i < n; i++) {
    set(h, l, s[i].dtr, s[i].rts, gap_us);
    th_run_until(h, h->t + (s[i].wait_us ? s[i].wait_us : gap_us));
  }
}

static void clear_noise(th *h) {
  h->nnoise = 0;
  h->noise[0] = 0;
}

static void init_fast(th *h, const char *fault) {
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  if (fault) assert_int_equal(esim_fault_apply(&o.faults, fault, NULL, 0), EG_OK);
  th_init(h, &o);
}

static void expect_download(th *h) {
  th_run_until(h, h->t + 100000);
  assert_int_equal(esim_dev_mode(h->dev), ESIM_MODE_ROM);
  if (!strstr((char *)h->noise, download_banner)) fail_msg("no download banner in '%s'", (char *)h->noise);
  assert_null(strstr((char *)h->noise, "boot:0x13"));
  th_sync(h, 4); /* the ROM answers: 8 replies */
}

static void expect_app(th *h) {
  th_run_until(h, h->t + 100000);
  assert_int_equal(esim_dev_mode(h->dev), ESIM_MODE_APP);
  if (!strstr((char *)h->noise, app_boot)) fail_msg("no app boot log in '%s'", (char *)h->noise);
  assert_null(strstr((char *)h->noise, "waiting for download"));
  /* blank flash: the ROM finds no bootloader */
  assert_non_null(strstr((char *)h->noise, "invalid header: 0xffffffff"));
  uint8_t pkt[64];
  const size_t before = h->nf;
  th_send_pkt_norun(h, pkt, eg_req_sync(pkt));
  th_run_until(h, h->t + 300000);
  assert_int_equal(h->nf, before); /* the app never answers SYNC */
}

/* esptool UnixTightReset(0.05): (0,0) (1,1) (0,1) 100 ms (1,0) 50 ms (0,0), DTR=0 */
static const step unix_tight[] = {{0, 0, 0}, {1, 1, 0}, {0, 1, 100000}, {1, 0, 50000}, {0, 0, 0}, {0, -1, 0}};
/* esptool ClassicReset(0.05): DTR=0; RTS=1; 100 ms; DTR=1; RTS=0; 50 ms; DTR=0 */
static const step classic[] = {{0, -1, 0}, {-1, 1, 100000}, {1, -1, 0}, {-1, 0, 50000}, {0, -1, 0}};
/* esptool HardReset: RTS=1; 100 ms; RTS=0 (DTR stays released) */
static const step hard[] = {{-1, 1, 100000}, {-1, 0, 0}};

static void test_unix_tight_enters_download_mode(void **s) {
  (void)s;
  /* both lines in one TIOCMSET, and as two RFC 2217 commands 20 us apart */
  for (uint32_t gap = 0; gap <= 20; gap += 20) {
    th h;
    init_fast(&h, NULL);
    lines l = {0};
    esim_dev_stats st0, st1;
    esim_dev_get_stats(h.dev, &st0);
    play(&h, &l, unix_tight, 6, gap);
    esim_dev_get_stats(h.dev, &st1);
    assert_int_equal(st1.resets - st0.resets, 1);
    expect_download(&h);
    th_free(&h);
  }
}

static void test_classic_enters_download_mode(void **s) {
  (void)s;
  for (uint32_t gap = 1; gap <= 500; gap *= 10) { /* 1, 10, 100 us between commands */
    th h;
    init_fast(&h, NULL);
    lines l = {0};
    /* From the app running: the reset must bring the ROM back. */
    esim_dev_reset(h.dev, h.t, false);
    th_run_until(&h, h.t + 10000);
    assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_APP);
    clear_noise(&h);
    play(&h, &l, classic, 5, gap);
    expect_download(&h);
    th_free(&h);
  }
}

/* pyserial waits for each SET-CONTROL answer (>= 50 ms): ClassicReset's
 * DTR=1 and RTS=0 then arrive far more than the 1 ms EN delay apart, the
 * chip samples GPIO0 high and boots its app (esptool #383; the reason for
 * Espressif's esp_rfc2217_server). */
static void test_classic_with_slow_commands_boots_the_app(void **s) {
  (void)s;
  th h;
  init_fast(&h, NULL);
  lines l = {0};
  play(&h, &l, classic, 5, 2000); /* 2 ms between commands */
  expect_app(&h);
  th_free(&h);
}

static void test_hard_reset_boots_the_app(void **s) {
  (void)s;
  th h;
  init_fast(&h, NULL);
  lines l = {0};
  play(&h, &l, hard, 2, 20);
  expect_app(&h);
  /* with a bootloader in flash, the 2nd stage and the app speak */
  size_t fs;
  uint8_t *flash = (uint8_t *)esim_dev_flash(h.dev, &fs);
  flash[0x1000] = 0xE9;
  clear_noise(&h);
  play(&h, &l, hard, 2, 20);
  th_run_until(&h, h.t + 1500000);
  assert_non_null(strstr((char *)h.noise, app_boot));
  assert_non_null(strstr((char *)h.noise, "I (130) main_task: Calling app_main()"));
  assert_non_null(strstr((char *)h.noise, "app: tick 1"));
  th_free(&h);
}

/* (1,1) and (0,0) leave EN and GPIO0 alone: the loader keeps its state. */
static void test_both_asserted_does_not_reset(void **s) {
  (void)s;
  th h;
  init_fast(&h, NULL);
  th_sync(&h, 4);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true));
  th_expect_ok(&h, EG_OP_SPI_ATTACH, 4);
  esim_dev_stats st0, st1;
  esim_dev_get_stats(h.dev, &st0);
  esim_dev_set_lines(h.dev, h.t, true, true);
  th_run_until(&h, h.t + 200000);
  esim_dev_set_lines(h.dev, h.t, false, false);
  th_run_until(&h, h.t + 200000);
  esim_dev_set_lines(h.dev, h.t, true, true);
  th_run_until(&h, h.t + 200000);
  esim_dev_get_stats(h.dev, &st1);
  assert_int_equal(st1.resets, st0.resets);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
  assert_int_equal(h.nnoise, 0); /* no banner: nothing rebooted */
  /* still attached: a flash read works without a new SPI_ATTACH */
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  assert_int_equal(th_reply(&h, EG_OP_READ_REG, 4, 0).value, 0x00F01D83);
  th_free(&h);
}

/* EN pulses: 30 us does nothing; 100 us resets. */
static void test_short_pulse_does_not_reset(void **s) {
  (void)s;
  th h;
  init_fast(&h, NULL);
  th_sync(&h, 4);
  esim_dev_set_lines(h.dev, h.t, false, true); /* EN low */
  th_run_until(&h, h.t + 30);
  esim_dev_set_lines(h.dev, h.t, true, true); /* released */
  th_run_until(&h, h.t + 100000);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
  assert_int_equal(h.nnoise, 0);
  th_sync(&h, 4);
  esim_dev_set_lines(h.dev, h.t, false, true);
  th_run_until(&h, h.t + 100);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_RESET);
  esim_dev_set_lines(h.dev, h.t, true, true); /* released with GPIO0 high */
  expect_app(&h);
  th_free(&h);
}

/* While EN is low the chip is silent and deaf; the strap is read 1 ms after
 * EN rises, whatever GPIO0 did before. */
static void test_held_in_reset(void **s) {
  (void)s;
  th h;
  init_fast(&h, NULL);
  esim_dev_reset(h.dev, h.t, false); /* app chattering */
  th_run_until(&h, h.t + 500000);
  assert_true(h.nnoise > 0);
  esim_dev_set_lines(h.dev, h.t, false, true);
  th_run_until(&h, h.t + 1000);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_RESET);
  const uint64_t taken = h.taken;
  uint8_t pkt[64];
  th_send_pkt_norun(&h, pkt, eg_req_sync(pkt));
  th_run_until(&h, h.t + 2000000);
  assert_int_equal(h.taken, taken); /* no chatter, no SYNC reply */
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_RESET);
  /* operator reset while the adapter holds EN: still held */
  esim_dev_reset(h.dev, h.t, true);
  th_run_until(&h, h.t + 100000);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_RESET);
  assert_int_equal(h.taken, taken);
  /* release EN with GPIO0 high, pull GPIO0 low 500 us later (inside the
   * EN delay): download mode */
  esim_dev_set_lines(h.dev, h.t, true, true);
  th_run_until(&h, h.t + 500);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_RESET);
  esim_dev_set_lines(h.dev, h.t, true, false);
  clear_noise(&h);
  expect_download(&h);
  /* EN dropping again inside the delay restarts the reset */
  esim_dev_set_lines(h.dev, h.t, false, true);
  th_run_until(&h, h.t + 200);
  esim_dev_set_lines(h.dev, h.t, true, true);
  th_run_until(&h, h.t + 500);
  esim_dev_set_lines(h.dev, h.t, false, true);
  th_run_until(&h, h.t + 5000);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_RESET);
  esim_dev_set_lines(h.dev, h.t, false, false);
  clear_noise(&h);
  expect_app(&h);
  th_free(&h);
}

/* With the hardware timing: the banner leaves reset_boot_us after the chip
 * starts, i.e. 1 ms (EN delay) + 40 ms after EN was released. */
static void test_banner_timing(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  th h;
  th_init(&h, &o);
  lines l = {0};
  play(&h, &l, unix_tight, 3, 20); /* up to EN held low, 100 ms */
  const uint64_t release = h.t;
  esim_dev_set_lines(h.dev, h.t, true, true); /* DTR on: EN released */
  esim_dev_set_lines(h.dev, h.t, true, false);
  esim_dev_advance(h.dev, release + ESIM_STRAP_DELAY_US);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
  assert_int_equal(esim_dev_tx_ready_at(h.dev), release + 1000 + o.timing.reset_boot_us + o.timing.tx_latency_us);
  th_run_until(&h, h.t + 200000);
  assert_string_equal((char *)h.noise, download_banner);
  th_free(&h);
}

/* The fault: the circuit cannot pull GPIO0 low, the app always boots. */
static void test_not_in_download_mode_fault(void **s) {
  (void)s;
  th h;
  init_fast(&h, "not_in_download_mode");
  lines l = {0};
  th_run_until(&h, h.t + 10000);
  clear_noise(&h);
  play(&h, &l, unix_tight, 6, 0);
  expect_app(&h);
  th_free(&h);
}

/* A reset clears a stalled chip. */
static void test_reset_clears_stall(void **s) {
  (void)s;
  th h;
  init_fast(&h, "stall_after_bytes=10");
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_sync(pkt));
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_STALLED);
  lines l = {0};
  play(&h, &l, unix_tight, 6, 0);
  th_drain(&h);
  expect_download(&h);
  th_free(&h);
}

/* espgang's own plans (src/reset.c), sent as port_rfc2217.c sends them:
 * each step as SET-CONTROL DTR, then RTS, back to back. */
static void play_plan(th *h, lines *l, const eg_reset_step *p) {
  for (; p->dtr != EG_RESET_END; p++) {
    set(h, l, p->dtr, p->rts, 5);
    th_run_until(h, h->t + (uint64_t)p->wait_ms * 1000 + 5);
  }
}

static void test_espgang_plans(void **s) {
  (void)s;
  for (int attempt = 0; attempt < 4; attempt++) {
    th h;
    init_fast(&h, NULL);
    lines l = {0};
    const char *name;
    play_plan(&h, &l, eg_reset_plan(EG_BEFORE_DEFAULT_RESET, attempt, &name));
    expect_download(&h);
    th_free(&h);
  }
  th h;
  init_fast(&h, NULL);
  lines l = {0};
  play_plan(&h, &l, eg_hard_reset_plan());
  expect_app(&h);
  th_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unix_tight_enters_download_mode),
      cmocka_unit_test(test_classic_enters_download_mode),
      cmocka_unit_test(test_classic_with_slow_commands_boots_the_app),
      cmocka_unit_test(test_hard_reset_boots_the_app),
      cmocka_unit_test(test_both_asserted_does_not_reset),
      cmocka_unit_test(test_short_pulse_does_not_reset),
      cmocka_unit_test(test_held_in_reset),
      cmocka_unit_test(test_banner_timing),
      cmocka_unit_test(test_not_in_download_mode_fault),
      cmocka_unit_test(test_reset_clears_stall),
      cmocka_unit_test(test_espgang_plans),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
