/* test_espsim_usb.c - what DTR/RTS mean on a USB port (README "USB ports"),
 * in virtual time, with esptool's sequences written out from esptool
 * v5.3.1 esptool/reset.py (chip-family-facts §10), and when a USB port
 * re-enumerates:
 *   - USB-Serial/JTAG: USBJTAGSerialReset enters download mode with a core
 *     reset (rst:0x15); ClassicReset and UnixTightReset do not (the
 *     peripheral's download flag is set by DTR alone and cleared by (0,0),
 *     the reset is RTS alone); the USB hard reset boots the app, unless
 *     the board was strapped for download at power-up (a core reset does
 *     not sample the straps: esptool docs troubleshooting.rst); the
 *     watchdog reset (esptool's register writes) is a system reset: the app
 *     boots and the port re-enumerates; an RTS reset does not re-enumerate;
 *   - USB-OTG (S3): the CDC code restarts the chip as the circuit would, so
 *     UnixTightReset enters download mode, the hard reset boots the app;
 *     every reset re-enumerates; RTC_CNTL_OPTION1's FORCE_DOWNLOAD_BOOT
 *     follows, and esptool's S3 hard reset path (clear it, then the
 *     watchdog) boots the app. */
#include "test_espsim_host.h"

static void usb_init(th *h, esim_chip_id chip, esim_port_kind port, bool reenum_always) {
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  esim_timing_fast(&o.timing);
  o.chip = chip;
  o.port = port;
  o.usb_reenumerate = reenum_always;
  th_init(h, &o);
}

static void clear_noise(th *h) {
  h->nnoise = 0;
  h->noise[0] = 0;
}

/* -1 = leave the line; each step then waits `wait_ms` (0: 20 us, the next
 * ioctl). */
typedef struct step {
  int dtr, rts;
  uint32_t wait_ms;
} step;

static void play(th *h, const step *s, size_t n) {
  bool dtr = false, rts = false;
  for (size_t i = 0; i < n; i++) {
    if (s[i].dtr >= 0) dtr = s[i].dtr;
    if (s[i].rts >= 0) rts = s[i].rts;
    esim_dev_set_lines(h->dev, h->t, dtr, rts);
    th_run_until(h, h->t + (s[i].wait_ms ? s[i].wait_ms * 1000u : 20u));
  }
  th_run_until(h, h->t + 200000);
}

/* esptool reset.py USBJTAGSerialReset */
static const step usb_jtag_reset[] = {{-1, 0, 0}, {0, -1, 100}, {1, -1, 0}, {-1, 0, 100}, {-1, 1, 0},
                                      {0, -1, 0}, {-1, 1, 100}, {0, -1, 0}, {-1, 0, 0}};
/* ClassicReset: DTR0 RTS1 . 100 ms . DTR1 RTS0 . 50 ms . DTR0 */
static const step classic_reset[] = {{0, -1, 0}, {-1, 1, 100}, {1, -1, 0}, {-1, 0, 50}, {0, -1, 0}};
/* UnixTightReset: (0,0) (1,1) (0,1) . 100 ms . (1,0) . 50 ms . (0,0), DTR0 */
static const step unix_tight_reset[] = {{0, 0, 0}, {1, 1, 0}, {0, 1, 100}, {1, 0, 50}, {0, 0, 0}, {0, -1, 0}};
/* HardReset with uses_usb: RTS1 . 200 ms . RTS0 . 200 ms */
static const step usb_hard_reset[] = {{-1, 1, 200}, {-1, 0, 200}};

static void expect_rom(th *h, const char *rst) {
  assert_int_equal(esim_dev_mode(h->dev), ESIM_MODE_ROM);
  if (!strstr((char *)h->noise, "waiting for download")) fail_msg("no download banner in '%s'", (char *)h->noise);
  if (rst && !strstr((char *)h->noise, rst)) fail_msg("'%s' lacks '%s'", (char *)h->noise, rst);
  th_sync(h, 4);
}

static void expect_app(th *h) {
  assert_int_equal(esim_dev_mode(h->dev), ESIM_MODE_APP);
  assert_non_null(strstr((char *)h->noise, "SPI_FAST_FLASH_BOOT"));
}

static void test_jtag_usb_reset_enters_download(void **s) {
  (void)s;
  th h;
  usb_init(&h, ESIM_CHIP_ESP32C3, ESIM_PORT_USB_JTAG, false);
  /* from the app (a hard reset first), then esptool's USB sequence */
  play(&h, usb_hard_reset, 2);
  expect_app(&h);
  assert_false(esim_dev_take_reenumerate(h.dev)); /* a core reset keeps USB up */
  clear_noise(&h);
  play(&h, usb_jtag_reset, sizeof usb_jtag_reset / sizeof usb_jtag_reset[0]);
  expect_rom(&h, "rst:0x15 (USB_UART_CHIP_RESET)");
  assert_false(esim_dev_take_reenumerate(h.dev));
  th_free(&h);
}

static void test_jtag_uart_sequences_do_not(void **s) {
  (void)s;
  const struct {
    const step *seq;
    size_t n;
  } seqs[] = {{classic_reset, sizeof classic_reset / sizeof classic_reset[0]},
              {unix_tight_reset, sizeof unix_tight_reset / sizeof unix_tight_reset[0]}};
  for (size_t i = 0; i < 2; i++) {
    th h;
    usb_init(&h, ESIM_CHIP_ESP32S3, ESIM_PORT_USB_JTAG, false);
    play(&h, seqs[i].seq, seqs[i].n);
    expect_app(&h);
    /* a second time, from the app: still no download mode */
    clear_noise(&h);
    play(&h, seqs[i].seq, seqs[i].n);
    expect_app(&h);
    th_free(&h);
  }
}

static void test_jtag_strapped_board_stays_in_download(void **s) {
  (void)s;
  th h;
  usb_init(&h, ESIM_CHIP_ESP32C6, ESIM_PORT_USB_JTAG, false);
  /* BOOT held while EN was pressed: the straps latch download mode */
  esim_dev_reset(h.dev, h.t, true);
  th_run(&h);
  assert_true(esim_dev_take_reenumerate(h.dev)); /* EN is a system reset */
  clear_noise(&h);
  play(&h, usb_hard_reset, 2);
  expect_rom(&h, "USB_UART_CHIP_RESET"); /* "the chip stays in download mode" */
  th_free(&h);
}

static void wreg(th *h, uint32_t addr, uint32_t v, uint32_t mask) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_write_reg(pkt, addr, v, mask, 0));
  th_expect_ok(h, EG_OP_WRITE_REG, 4);
}

/* A WRITE_REG answered within 2 ms (a USB round trip), as esptool sends
 * them one after the other. */
static void wreg_quick(th *h, uint32_t addr, uint32_t v) {
  uint8_t pkt[64];
  const size_t before = h->nf;
  th_send_pkt_norun(h, pkt, eg_req_write_reg(pkt, addr, v, 0xFFFFFFFF, 0));
  th_run_until(h, h->t + 2000);
  assert_int_equal(h->nf, before + 1);
  th_expect_ok(h, EG_OP_WRITE_REG, 4);
}

/* esptool esp32c3.py watchdog_reset: unlock, CONFIG1 = 2000, CONFIG0 =
 * EN | stage0 system reset | ..., lock, sleep 0.5 s. */
static void watchdog_reset(th *h, uint32_t config0, uint32_t config1, uint32_t wprotect) {
  wreg_quick(h, wprotect, 0x50D83AA1);
  wreg_quick(h, config1, 2000);
  wreg_quick(h, config0, (1u << 31) | (5u << 28) | (1u << 8) | 2);
  wreg_quick(h, wprotect, 0);
  th_run_until(h, h->t + 500000);
}

static void test_jtag_watchdog_reset(void **s) {
  (void)s;
  th h;
  usb_init(&h, ESIM_CHIP_ESP32C3, ESIM_PORT_USB_JTAG, false);
  th_sync(&h, 4);
  clear_noise(&h);
  watchdog_reset(&h, 0x60008090, 0x60008094, 0x600080A8);
  expect_app(&h);
  assert_non_null(strstr((char *)h.noise, "rst:0x10 (RTCWDT_RTC_RST)"));
  assert_true(esim_dev_take_reenumerate(h.dev));
  th_free(&h);
  /* without the unlock key the watchdog stays off */
  usb_init(&h, ESIM_CHIP_ESP32C3, ESIM_PORT_USB_JTAG, false);
  th_sync(&h, 4);
  wreg_quick(&h, 0x60008094, 2000);
  wreg_quick(&h, 0x60008090, (1u << 31) | (5u << 28) | 2);
  th_run_until(&h, h.t + 500000);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
  th_free(&h);
}

static void test_jtag_reenumerates_always_when_asked(void **s) {
  (void)s;
  th h;
  usb_init(&h, ESIM_CHIP_ESP32H2, ESIM_PORT_USB_JTAG, true);
  play(&h, usb_jtag_reset, sizeof usb_jtag_reset / sizeof usb_jtag_reset[0]);
  expect_rom(&h, NULL);
  assert_true(esim_dev_take_reenumerate(h.dev));
  assert_false(esim_dev_take_reenumerate(h.dev)); /* reported once */
  th_free(&h);
}

static void test_otg(void **s) {
  (void)s;
  th h;
  usb_init(&h, ESIM_CHIP_ESP32S3, ESIM_PORT_USB_OTG, false);
  /* started in download mode through the CDC: FORCE_DOWNLOAD_BOOT set, the
   * straps say SPI boot (GPIO_STRAP bit 3) */
  assert_int_equal(th_rom_read_reg(&h, 0x6000812C) & 1, 1);
  assert_int_equal(th_rom_read_reg(&h, 0x60004038) & 0x8, 0x8);
  play(&h, usb_hard_reset, 2);
  expect_app(&h);
  assert_true(esim_dev_take_reenumerate(h.dev));
  clear_noise(&h);
  play(&h, unix_tight_reset, sizeof unix_tight_reset / sizeof unix_tight_reset[0]);
  expect_rom(&h, NULL);
  assert_true(esim_dev_take_reenumerate(h.dev));
  assert_int_equal(th_rom_read_reg(&h, 0x6000812C) & 1, 1);
  /* esptool esp32s3.py hard_reset on OTG: clear OPTION1 bit 0 (masked
   * WRITE_REG), strap bit 3 is set so... a watchdog reset leaves download
   * mode only once FORCE_DOWNLOAD_BOOT is clear */
  clear_noise(&h);
  watchdog_reset(&h, 0x60008098, 0x6000809C, 0x600080B0);
  expect_rom(&h, "RTCWDT"); /* FORCE_DOWNLOAD_BOOT survives the watchdog */
  assert_true(esim_dev_take_reenumerate(h.dev));
  wreg(&h, 0x6000812C, 0, 0x1);
  clear_noise(&h);
  watchdog_reset(&h, 0x60008098, 0x6000809C, 0x600080B0);
  expect_app(&h);
  assert_true(esim_dev_take_reenumerate(h.dev));
  th_free(&h);
}

/* A UART board (the two-transistor circuit) never re-enumerates. */
static void test_uart_never_reenumerates(void **s) {
  (void)s;
  th h;
  usb_init(&h, ESIM_CHIP_ESP32C3, ESIM_PORT_UART, false);
  play(&h, unix_tight_reset, sizeof unix_tight_reset / sizeof unix_tight_reset[0]);
  expect_rom(&h, "rst:0x1 (POWERON)");
  esim_dev_reset(h.dev, h.t, true);
  th_run(&h);
  assert_false(esim_dev_take_reenumerate(h.dev));
  th_free(&h);
}

/* What each port reports as its USB identity and the ROM's console port. */
static void test_usb_identity(void **s) {
  (void)s;
  th h;
  esim_dev_info info;
  usb_init(&h, ESIM_CHIP_ESP32S3, ESIM_PORT_USB_JTAG, false);
  esim_dev_get_info(h.dev, &info);
  assert_int_equal(info.usb_vid, 0x303A);
  assert_int_equal(info.usb_pid, 0x1001);
  assert_int_equal(th_rom_read_reg(&h, 0x3FCEF14C), 4); /* ESP_ROM_USB_SERIAL_DEVICE_NUM (ESP-IDF) */
  th_free(&h);
  usb_init(&h, ESIM_CHIP_ESP32S2, ESIM_PORT_USB_OTG, false);
  esim_dev_get_info(h.dev, &info);
  assert_int_equal(info.usb_pid, 0x0002);
  assert_int_equal(th_rom_read_reg(&h, 0x3FFFFD14), 2); /* esptool-js esp32s2.js:52-53 */
  th_free(&h);
  usb_init(&h, ESIM_CHIP_ESP32P4, ESIM_PORT_USB_OTG, false);
  esim_dev_get_info(h.dev, &info);
  assert_int_equal(info.usb_pid, 0x0012);
  th_free(&h);
  usb_init(&h, ESIM_CHIP_ESP32, ESIM_PORT_UART, false);
  esim_dev_get_info(h.dev, &info);
  assert_int_equal(info.usb_vid, 0x10C4);
  th_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jtag_usb_reset_enters_download),
      cmocka_unit_test(test_jtag_uart_sequences_do_not),
      cmocka_unit_test(test_jtag_strapped_board_stays_in_download),
      cmocka_unit_test(test_jtag_watchdog_reset),
      cmocka_unit_test(test_jtag_reenumerates_always_when_asked),
      cmocka_unit_test(test_otg),
      cmocka_unit_test(test_uart_never_reenumerates),
      cmocka_unit_test(test_usb_identity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
