/* simdev.c - the device model's core: time, input decoding, the command
 * queue, output queue, UART rates and garbling, byte-level faults and the
 * chip's modes (ROM loader, stub, app). Command handling lives in rom.c and
 * stub.c, registers in regs.c, the flash chip in flash.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "chips.h"
#include "simchip.h"
#include "simdev_int.h"

/* ---------------------------------------------------------------- defaults */

void esim_timing_default(esim_timing *t) {
  memset(t, 0, sizeof *t);
  t->rom_cmd_us = 150;
  t->rom_sync_us = 1000;
  t->stub_cmd_us = 30;
  t->stub_boot_us = 1500;
  t->reset_boot_us = 40000;
  t->baud_switch_us = 10000;
  t->sector_erase_us = 45000;
  t->block_erase_us = 150000;
  t->chip_erase_base_us = 1500000;
  t->chip_erase_per_block_us = 210000;
  t->page_program_us = 200;
  t->read_ns_per_byte = 250;
  t->md5_ns_per_byte = 330;
  t->inflate_ns_per_byte = 600;
  t->rx_latency_us = 500;
  t->tx_latency_us = 500;
}

void esim_timing_fast(esim_timing *t) { memset(t, 0, sizeof *t); }

void esim_faults_clear(esim_faults *f) {
  memset(f, 0, sizeof *f);
  f->disconnect_at_op = -1;
  f->slow_erase = 1.0;
}

void esim_dev_opts_default(esim_dev_opts *o) {
  memset(o, 0, sizeof *o);
  o->chip = ESIM_CHIP_ESP32;
  o->rev_major = o->rev_minor = -1;
  o->port = ESIM_PORT_UART;
  static const uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01};
  memcpy(o->mac, mac, 6);
  o->flash_id = 0x1640C8;
  o->crystal_mhz = 0;
  o->rom_clock_error = 0.06;
  o->stub = ESIM_STUB_AUTO;
  esim_timing_default(&o->timing);
  esim_faults_clear(&o->faults);
  o->seed = 1;
  o->baud_tolerance = 0.005;
}

const char *esim_mode_name(esim_mode m) {
  switch (m) {
  case ESIM_MODE_ROM: return "rom";
  case ESIM_MODE_STUB: return "stub";
  case ESIM_MODE_APP: return "app";
  case ESIM_MODE_STALLED: return "stalled";
  case ESIM_MODE_DISCONNECTED: return "disconnected";
  case ESIM_MODE_RESET: return "reset";
  }
  return "?";
}

const char *esim_stub_name(esim_stub_flavour f) {
  switch (f) {
  case ESIM_STUB_AUTO: return "auto";
  case ESIM_STUB_LEGACY: return "legacy";
  case ESIM_STUB_NEW: return "new";
  }
  return "?";
}

/* ------------------------------------------------------------------ basics */

void esim_log(esim_dev *d, uint64_t t, const char *fmt, ...) {
  if (!d->o.log) return;
  char buf[512];
  const uint64_t rel = t >= d->t0 ? t - d->t0 : 0;
  int k = snprintf(buf, sizeof buf, "%llu.%06llu %s ", (unsigned long long)(rel / 1000000),
                   (unsigned long long)(rel % 1000000), d->name);
  if (k < 0 || (size_t)k >= sizeof buf) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
  va_end(ap);
  d->o.log(d->o.log_ctx, buf);
}

/* The log's time origin, on the caller's clock (espsim: CLOCK_MONOTONIC
 * microseconds, as uv_hrtime), so that a host's own timestamps can be set
 * beside the log's (tools/bench). */
static void start_clock(esim_dev *d, uint64_t now) {
  if (d->t0_set) return;
  d->t0 = now;
  d->t0_set = true;
  esim_log(d, now, "clock origin %llu us", (unsigned long long)now);
}

void esim_log_cmd(esim_dev *d, uint64_t t, uint8_t op, uint32_t size) {
  /* waited: how long the whole frame sat in the chip before this command
   * began (the CPU still busy with earlier work) - the benchmark's chip time. */
  const uint64_t waited = t > d->frame_t ? t - d->frame_t : 0;
  esim_log(d, t, "cmd %s (0x%02x) size=%u waited=%lluus", eg_op_name(op), op, (unsigned)size,
           (unsigned long long)waited);
}

/* xorshift64*: deterministic per seed; the model has no other randomness. */
uint64_t esim_rand(esim_dev *d) {
  uint64_t x = d->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  d->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

double esim_rand01(esim_dev *d) { return (double)(esim_rand(d) >> 11) / 9007199254740992.0; }

static esim_chunk *chunk_new(uint64_t t, const uint8_t *p, size_t n) {
  esim_chunk *c = malloc(sizeof *c + n);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->t = t;
  c->len = (uint32_t)n;
  if (n) memcpy(c->data, p, n);
  return c;
}

static void q_push(esim_queue *q, esim_chunk *c) {
  c->next = NULL;
  if (q->tail) q->tail->next = c;
  else q->head = c;
  q->tail = c;
  q->bytes += c->len;
}

static void q_pop(esim_queue *q) {
  esim_chunk *c = q->head;
  if (!c) return;
  q->head = c->next;
  if (!q->head) q->tail = NULL;
  q->bytes -= c->len - c->off;
  free(c);
}

static void q_clear(esim_queue *q) {
  while (q->head) q_pop(q);
  q->bytes = 0;
}

static void fq_clear(esim_dev *d) {
  while (d->fq_head) {
    esim_frame *f = d->fq_head;
    d->fq_head = f->next;
    free(f);
  }
  d->fq_tail = NULL;
  d->fq_count = 0;
}

/* ------------------------------------------------------------------ output */

void esim_tx_raw(esim_dev *d, uint64_t t, const uint8_t *p, size_t n) {
  if (d->mode == ESIM_MODE_STALLED || d->mode == ESIM_MODE_DISCONNECTED || d->mode == ESIM_MODE_RESET) return;
  if (d->txq.bytes + n > ESIM_TX_CAP) {
    esim_log(d, t, "tx backlog full, %zu bytes dropped", n);
    return;
  }
  const uint64_t when = t + d->o.timing.tx_latency_us + d->o.faults.delay_tx_us;
  /* Keep the queue in time order even when latency settings changed. */
  esim_chunk *c = chunk_new(d->txq.tail && d->txq.tail->t > when ? d->txq.tail->t : when, p, n);
  if (!c) return;
  q_push(&d->txq, c);
}

static size_t slip_escape(uint8_t *out, const uint8_t *in, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == 0xC0) {
      out[o++] = 0xDB;
      out[o++] = 0xDC;
    } else if (in[i] == 0xDB) {
      out[o++] = 0xDB;
      out[o++] = 0xDD;
    } else {
      out[o++] = in[i];
    }
  }
  return o;
}

void esim_tx_frame_split(esim_dev *d, uint64_t t1, uint64_t t2, const uint8_t *p, size_t n, size_t split) {
  if (split > n) split = n;
  uint8_t *buf = malloc(2 * n + 2);
  if (!buf) return;
  buf[0] = 0xC0;
  size_t a = 1 + slip_escape(buf + 1, p, split);
  if (t2 <= t1 || split == 0 || split == n) {
    size_t b = a + slip_escape(buf + a, p + split, n - split);
    buf[b++] = 0xC0;
    esim_tx_raw(d, t2 > t1 ? t2 : t1, buf, b);
  } else {
    esim_tx_raw(d, t1, buf, a);
    size_t b = slip_escape(buf + a, p + split, n - split);
    buf[a + b] = 0xC0;
    esim_tx_raw(d, t2, buf + a, b + 1);
  }
  free(buf);
  d->st.replies++;
}

void esim_tx_frame(esim_dev *d, uint64_t t, const uint8_t *p, size_t n) {
  esim_tx_frame_split(d, t, t, p, n, n);
}

void esim_tx_baud(esim_dev *d, uint64_t t, uint32_t baud, uint32_t clkdiv) {
  esim_chunk *c = chunk_new(t, NULL, 0);
  if (!c) return;
  if (d->txq.tail && d->txq.tail->t > c->t) c->t = d->txq.tail->t;
  c->is_baud = true;
  c->set_baud = baud;
  c->set_clkdiv = clkdiv;
  q_push(&d->txq, c);
}

/* ------------------------------------------------------------------- UART */

uint32_t esim_clkdiv_for(uint32_t clk_hz, uint32_t baud) {
  if (!baud) return 0;
  const uint64_t div16 = ((uint64_t)clk_hz * 16 + baud / 2) / baud;
  return (uint32_t)((div16 >> 4) & 0xFFFFF) | (uint32_t)((div16 & 0xF) << 20);
}

uint32_t esim_baud_from_clkdiv(uint32_t clk_hz, uint32_t clkdiv) {
  const uint64_t div16 = ((uint64_t)(clkdiv & 0xFFFFF) << 4) | ((clkdiv >> 20) & 0xF);
  if (div16 < 16) return 0; /* the UART cannot run below a divider of 1 */
  return (uint32_t)(((uint64_t)clk_hz * 16 + div16 / 2) / div16);
}

void esim_set_uart(esim_dev *d, uint32_t baud, uint32_t clkdiv) {
  d->baud = baud;
  d->clkdiv = clkdiv;
}

/* The ROM's autobaud lands on an integer divider one below xtal/baud: the
 * trace reads 0x15A (346) at 115200 with 40 MHz (40e6/115200 = 347.2). */
static uint32_t autobaud_clkdiv(const esim_dev *d, uint32_t baud) {
  uint32_t div = d->uart_clk / baud;
  return div > 1 ? div - 1 : 1;
}

static void uart_autobaud(esim_dev *d, uint32_t baud) {
  esim_set_uart(d, baud, autobaud_clkdiv(d, baud));
}

uint32_t esim_dev_baud(const esim_dev *d) { return d->baud; }

/* What the line does to bytes between the host's UART and the device's. */
typedef enum line_effect {
  LINE_CLEAN,    /* same rate (or no host UART: TCP) */
  LINE_RESAMPLE, /* different rates: the receiver samples the sender's bits */
  LINE_NOISE     /* broken divider or above the baud ceiling: garbage */
} line_effect;

static line_effect line_state(const esim_dev *d, uint32_t host_baud) {
  if (d->baud == 0) return LINE_NOISE;
  /* The ceiling is a nominal rate: a divider's rounding does not cross it. */
  if (d->o.faults.baud_ceiling && d->baud > (double)d->o.faults.baud_ceiling * 1.025) return LINE_NOISE;
  if (host_baud == 0) return LINE_CLEAN;
  const double r = fabs((double)d->baud - (double)host_baud) / (double)host_baud;
  return r > d->o.baud_tolerance ? LINE_RESAMPLE : LINE_CLEAN;
}

/* Line level of sender bit m of a burst of 8N1 bytes sent back to back:
 * start bit 0, data LSB first, stop bit 1, idle 1 after the burst. */
static int line_bit(const uint8_t *in, size_t nbits, size_t m) {
  if (m >= nbits) return 1;
  const size_t j = m % 10;
  if (j == 0) return 0;
  if (j == 9) return 1;
  return (in[m / 10] >> (j - 1)) & 1;
}

/* A UART at `rx` baud receiving a burst sent at `tx` baud, as the hardware
 * does it: wait for a falling edge (detected within 1/16 of a bit, the
 * phase drawn from the seeded PRNG), check the start bit at its middle,
 * sample 8 data bits at their middles, take the byte whatever the stop bit
 * says (a framing error still delivers it), look for the next edge after
 * the stop bit's middle. Up to ~4 % apart this reproduces the bytes; further
 * apart bytes split, merge and change, as on a real line. Returns the
 * number of bytes received (at most cap; cap >= 6 * n + 8 never truncates). */
static size_t uart_resample(esim_dev *d, const uint8_t *in, size_t n, double tx, double rx, uint8_t *out,
                            size_t cap) {
  const size_t nbits = n * 10;
  const double tr = tx / rx; /* a receiver bit in sender bits */
  double t = 0;
  size_t o = 0, floor_m = 0;
  while (o < cap) {
    size_t m = (size_t)ceil(t - 1e-9);
    if (m < floor_m) m = floor_m;
    while (m < nbits && !(line_bit(in, nbits, m) == 0 && (m == 0 || line_bit(in, nbits, m - 1) == 1))) m++;
    if (m >= nbits) break;
    floor_m = m + 1;
    const double t0 = (double)m + esim_rand01(d) * tr / 16.0;
    if (line_bit(in, nbits, (size_t)floor(t0 + 0.5 * tr)) != 0) { /* false start */
      t = t0 + 0.5 * tr;
      continue;
    }
    uint8_t b = 0;
    for (int i = 0; i < 8; i++)
      if (line_bit(in, nbits, (size_t)floor(t0 + (1.5 + i) * tr))) b |= (uint8_t)(1u << i);
    out[o++] = b;
    t = t0 + 9.5 * tr;
  }
  return o;
}

/* noise_above: the line is marginal above a rate (the nominal rate: a
 * divider's rounding does not cross it). */
static bool noisy(const esim_dev *d) {
  const esim_faults *f = &d->o.faults;
  return f->noise_above_baud && d->baud > (double)f->noise_above_baud * 1.025;
}

/* Apply the line to `n` bytes in place or into a new buffer (*buf may be
 * replaced; the caller frees it if it changed). Returns the new count. */
static size_t apply_line(esim_dev *d, line_effect e, uint8_t **buf, size_t n, double tx, double rx) {
  switch (e) {
  case LINE_CLEAN: return n;
  case LINE_NOISE:
    for (size_t i = 0; i < n; i++) (*buf)[i] = (uint8_t)esim_rand(d);
    return n;
  case LINE_RESAMPLE: {
    const size_t cap = 6 * n + 8;
    uint8_t *o = malloc(cap);
    if (!o) return 0;
    const size_t k = uart_resample(d, *buf, n, tx, rx, o, cap);
    *buf = o;
    return k;
  }
  }
  return n;
}

/* ------------------------------------------------------------- the chip */

/* The reset-reason words each ROM generation prints ("rst:0x1 (POWERON)"). */
static const char *rst_words(const esim_dev *d, esim_rst why) {
  const bool esp32 = d->chip->rom == ESIM_ROM_ESP32;
  switch (why) {
  case ESIM_RST_POWERON: return esp32 ? "0x1 (POWERON_RESET)" : "0x1 (POWERON)";
  case ESIM_RST_SW_CPU: return esp32 ? "0xc (SW_CPU_RESET)" : "0xc (RTC_SW_CPU_RST)";
  case ESIM_RST_RTCWDT: return esp32 ? "0x10 (RTCWDT_RTC_RESET)" : "0x10 (RTCWDT_RTC_RST)";
  case ESIM_RST_USB_UART: return "0x15 (USB_UART_CHIP_RESET)";
  }
  return "?";
}

/* ESP8266 "rst cause" numbers (1 power-on, 2 external/software, 4 watchdog). */
static int rst_cause_8266(esim_rst why) {
  switch (why) {
  case ESIM_RST_POWERON: return 1;
  case ESIM_RST_SW_CPU:
  case ESIM_RST_USB_UART: return 2;
  case ESIM_RST_RTCWDT: return 4;
  }
  return 2;
}

/* The ROM's first lines after a reset: its header, then reason and boot
 * mode ("rst:0x1 (POWERON),boot:0x5 (...)"). */
static int boot_lines(const esim_dev *d, char *buf, size_t cap, esim_rst why, bool download) {
  const esim_chip *c = d->chip;
  if (c->rom == ESIM_ROM_ESP8266)
    return snprintf(buf, cap, "%srst cause:%d, boot mode:%s\r\n\r\n", c->rom_header, rst_cause_8266(why),
                    download ? c->boot_dl : c->boot_spi);
  return snprintf(buf, cap, "%srst:%s,boot:%s\r\n", c->rom_header, rst_words(d, why),
                  download ? c->boot_dl : c->boot_spi);
}

/* The rate the ROM prints at before it has heard the host: 115200 by its
 * own clock, which is the crystal it believes in (ESP8266 and ESP32-C2
 * with 26 MHz: 74880; the C5's expected crystal). */
static uint32_t rom_print_baud(const esim_dev *d) {
  uint32_t believed = d->xtal_hz;
  switch (d->chip->belief) {
  case ESIM_BELIEF_TRUE:
  case ESIM_BELIEF_RTC_CALI: break; /* the ESP32's UART runs from the crystal it knows */
  case ESIM_BELIEF_40MHZ: believed = 40000000u; break;
  case ESIM_BELIEF_EXPECTED: believed = (uint32_t)(d->o.rom_xtal_mhz ? d->o.rom_xtal_mhz : 40) * 1000000u; break;
  }
  return (uint32_t)((uint64_t)115200u * d->xtal_hz / believed);
}

void esim_write_reset(esim_dev *d) {
  if (d->w.z_ready) inflateEnd(&d->w.zs);
  uint8_t *out = d->w.out;
  memset(&d->w, 0, sizeof d->w);
  d->w.out = out;
}

static void chatter(esim_dev *d, uint64_t t, const char *s) {
  const size_t n = strlen(s);
  if (d->txq.bytes + n > ESIM_CHATTER_CAP) return; /* nobody reading: lost on the wire */
  esim_tx_raw(d, t, (const uint8_t *)s, n);
}

void esim_enter_rom(esim_dev *d, uint64_t t, esim_rst why, bool banner) {
  d->mode = ESIM_MODE_ROM;
  d->flavour = ESIM_STUB_AUTO;
  d->autobaud = true;
  uart_autobaud(d, rom_print_baud(d));
  d->r_op = 0;
  d->r_value = 0;
  d->rom_attached = false;
  /* ROM default until SPI_SET_PARAMS (doc §5.4); the ESP8266 ROM has no
   * SPI_SET_PARAMS and addresses the whole chip. */
  d->rom_chip_size = d->chip->rom == ESIM_ROM_ESP8266 ? (uint32_t)d->flash_size : 2u << 20;
  d->rom_sync_seen = false;
  d->rom_left = false;
  d->mem_active = false;
  d->mem_seen_ns = false;
  d->mem_seen_ls = false;
  d->mem_text_addr = 0;
  d->next_chatter = ESIM_NEVER;
  esim_write_reset(d);
  esim_stub_reset(d);
  esim_regs_reset(d);
  d->fifo_used = 0;
  if (banner) {
    char buf[256];
    int k = boot_lines(d, buf, sizeof buf, why, true);
    if (d->chip->rom != ESIM_ROM_ESP8266 && k > 0 && (size_t)k < sizeof buf)
      snprintf(buf + k, sizeof buf - (size_t)k, "waiting for download\r\n");
    const uint64_t tb = t + d->o.timing.reset_boot_us;
    chatter(d, tb, buf);
    /* The ROM prints before it listens: 10 bits per byte. */
    d->cpu_t = tb + (uint64_t)strlen(buf) * 10 * 1000000 / d->baud;
  } else if (d->cpu_t < t) {
    d->cpu_t = t;
  }
}

void esim_enter_stub(esim_dev *d, uint64_t t, esim_stub_flavour f) {
  d->mode = ESIM_MODE_STUB;
  d->flavour = f;
  d->autobaud = false;
  esim_write_reset(d);
  esim_stub_reset(d);
  /* Both stubs attach the flash at boot (LS stub_main spi_flash_attach,
   * NS stub_lib_flash_init). */
  d->rom_attached = true;
  /* NS reads the flash while it starts: right after its OHAI the C3 reads
   * SPI_MEM USR/USR2 as after a READ (C3 stub-write-flash.trace); the
   * legacy stub leaves them (C3 stub1-read-flash.trace, ESP32 traces). */
  if (f == ESIM_STUB_NEW) esim_regs_after_flash_read(d);
  static const uint8_t ohai[4] = {'O', 'H', 'A', 'I'};
  const uint64_t tb = t + d->o.timing.stub_boot_us;
  esim_tx_frame(d, tb, ohai, 4);
  if (d->cpu_t < tb) d->cpu_t = tb;
  esim_log(d, t, "stub %s running", esim_stub_name(f));
}

/* The first word at the bootloader offset (the image magic 0xE9 when a
 * bootloader is there). */
static uint32_t boot_word(const esim_dev *d) {
  uint32_t word = 0xFFFFFFFF;
  const uint32_t off = d->chip->bootloader_offset;
  if (d->flash_size >= off + 4) memcpy(&word, d->flash + off, 4);
  return word;
}

/* What a booting app prints (ESP-IDF style), at the ROM's print rate. */
void esim_enter_app(esim_dev *d, uint64_t t, esim_rst why) {
  d->mode = ESIM_MODE_APP;
  d->flavour = ESIM_STUB_AUTO;
  d->autobaud = false;
  const uint32_t rate = rom_print_baud(d);
  esim_set_uart(d, rate, autobaud_clkdiv(d, rate));
  esim_write_reset(d);
  esim_stub_reset(d);
  fq_clear(d);
  char buf[1024];
  const uint64_t tb = t + d->o.timing.reset_boot_us;
  const uint32_t word = boot_word(d);
  d->app_valid = (word & 0xFF) == 0xE9;
  int k = boot_lines(d, buf, sizeof buf, why, false);
  if (k < 0 || (size_t)k >= sizeof buf) k = 0;
  if (d->app_valid) {
    snprintf(buf + k, sizeof buf - (size_t)k,
             "mode:DIO, clock div:2\r\n"
             "load:0x3fff0030,len:7104\r\n"
             "entry 0x4008064c\r\n"
             "I (31) boot: ESP-IDF v5.1.2 2nd stage bootloader\r\n"
             "I (31) boot: chip revision: v%d.%d\r\n"
             "I (35) boot.%s: SPI Speed      : 40MHz\r\n"
             "I (40) boot.%s: SPI Mode       : DIO\r\n"
             "I (44) boot.%s: SPI Flash Size : 4MB\r\n"
             "I (49) boot: Loaded app from partition at offset 0x10000\r\n"
             "I (120) cpu_start: Starting scheduler on PRO CPU.\r\n"
             "I (130) main_task: Calling app_main()\r\n",
             d->rev_major, d->rev_minor, d->chip->name, d->chip->name, d->chip->name);
    chatter(d, tb, buf);
    d->next_chatter = tb + 1000000;
  } else {
    /* No bootloader image: the ROM complains and the RTC watchdog resets
     * the chip, over and over. */
    snprintf(buf + k, sizeof buf - (size_t)k, "invalid header: 0x%08x\r\n", (unsigned)word);
    chatter(d, tb, buf);
    d->next_chatter = tb + 200000;
  }
  d->chatter_count = 0;
  if (d->cpu_t < tb) d->cpu_t = tb;
}

static void do_chatter(esim_dev *d, uint64_t t) {
  char buf[320];
  d->chatter_count++;
  if (d->app_valid) {
    const uint64_t ms = (t - d->t0) / 1000;
    snprintf(buf, sizeof buf, "I (%llu) app: tick %u, free heap 283412\r\n", (unsigned long long)ms,
             d->chatter_count);
    chatter(d, t, buf);
    d->next_chatter = t + 1000000;
  } else {
    int k = boot_lines(d, buf, sizeof buf, ESIM_RST_RTCWDT, false);
    if (k < 0 || (size_t)k >= sizeof buf) k = 0;
    snprintf(buf + k, sizeof buf - (size_t)k, "invalid header: 0x%08x\r\n", (unsigned)boot_word(d));
    chatter(d, t, buf);
    d->next_chatter = t + 200000;
  }
}

/* -------------------------------------------------------------- identity */

esim_stub_flavour esim_stub_for_upload(esim_dev *d, uint32_t entry) {
  esim_stub_flavour fl = d->o.stub;
  if (fl == ESIM_STUB_AUTO) fl = esim_chip_stub_flavour(d->chip, d->mem_seen_ls, d->mem_seen_ns, entry);
  d->mem_seen_ns = d->mem_seen_ls = false;
  return fl;
}

/* GET_SECURITY_INFO (esptool loader.py:1232-1250): flags (bit 0 secure
 * boot, bit 2 Secure Download Mode), the flash crypt count, 7 key-purpose
 * bytes, chip id, API version; the S2 stops after byte 11. */
size_t esim_security_info(const esim_dev *d, uint8_t *out) {
  const esim_chip *c = d->chip;
  uint32_t flags = 0;
  if (d->o.sec.secure_boot) flags |= 1u << 0;
  if (d->o.sec.secure_download) flags |= 1u << 2;
  memset(out, 0, 20);
  eg_put_u32(out, flags);
  out[4] = d->o.sec.flash_crypt_cnt;
  memcpy(out + 5, c->key_purposes, 7);
  eg_put_u32(out + 12, c->chip_id);
  eg_put_u32(out + 16, c->api_version);
  return c->sec_info_len;
}

/* --------------------------------------------------------------- lifetime */

/* The options a chip cannot have: a crystal it does not take, a revision
 * out of the eFuse fields' range, Secure Download Mode or a crypt count on
 * a ROM without GET_SECURITY_INFO, a USB port it lacks... */
eg_err esim_dev_opts_check(const esim_dev_opts *o, char *err, size_t errlen) {
  if (!o || (unsigned)o->chip >= ESIM_CHIP__COUNT) {
    snprintf(err, errlen, "unknown chip");
    return EG_INVAL;
  }
  esim_chip cv;
  esim_chip_resolve(o->chip, &cv);
  const esim_chip *c = &cv;
  const int x = o->crystal_mhz ? o->crystal_mhz : c->xtal_default;
  const int major = o->rev_major >= 0 ? o->rev_major : c->rev_major;
  const int minor = o->rev_minor >= 0 ? o->rev_minor : c->rev_minor;
  const unsigned cnt_bits = c->crypt_cnt.p[0].width;
  if (x != c->xtal_default && (!c->xtal_alt || x != c->xtal_alt)) {
    if (c->xtal_alt) snprintf(err, errlen, "%s takes a %d or %d MHz crystal, not %d", c->display, c->xtal_default, c->xtal_alt, x);
    else snprintf(err, errlen, "%s has a fixed %d MHz crystal, not %d", c->display, c->xtal_default, x);
    return EG_INVAL;
  }
  if (o->rom_xtal_mhz && c->belief != ESIM_BELIEF_EXPECTED) {
    snprintf(err, errlen, "rom_xtal applies to the ESP32-C5 only, not %s", c->display);
    return EG_INVAL;
  }
  if (c->mac_style == ESIM_MAC_ESP8266 && (o->rev_major > 0 || o->rev_minor > 0)) {
    snprintf(err, errlen, "ESP8266 has no revision eFuses");
    return EG_INVAL;
  }
  if (major < 0 || major > 3 || minor < 0 || minor >= (1 << (c->minor.p[0].width + c->minor.p[1].width))) {
    snprintf(err, errlen, "%s cannot encode revision v%d.%d", c->display, major, minor);
    return EG_INVAL;
  }
  if (o->sec.secure_download && c->sec_info_len == 0) {
    snprintf(err, errlen, "%s has no Secure Download Mode (its ROM lacks GET_SECURITY_INFO)", c->display);
    return EG_INVAL;
  }
  if (c->mac_style == ESIM_MAC_ESP8266 && (o->sec.flash_crypt_cnt || o->sec.secure_boot)) {
    snprintf(err, errlen, "ESP8266 has no flash encryption or secure boot");
    return EG_INVAL;
  }
  if (o->sec.flash_crypt_cnt >= (1u << cnt_bits)) {
    snprintf(err, errlen, "%s's SPI_BOOT_CRYPT_CNT has %u bits: %u does not fit", c->display, cnt_bits,
             (unsigned)o->sec.flash_crypt_cnt);
    return EG_INVAL;
  }
  if (o->port == ESIM_PORT_USB_JTAG && !c->usb_jtag) {
    snprintf(err, errlen, "%s has no USB-Serial/JTAG peripheral", c->display);
    return EG_INVAL;
  }
  if (o->port == ESIM_PORT_USB_OTG && !c->usb_otg) {
    snprintf(err, errlen, "%s has no USB-OTG download port (S2, S3, P4 have)", c->display);
    return EG_INVAL;
  }
  return EG_OK;
}

void esim_dev_get_info(const esim_dev *d, esim_dev_info *info) {
  memset(info, 0, sizeof *info);
  info->chip = d->chip->name;
  info->display = d->chip->display;
  info->rev_major = d->rev_major;
  info->rev_minor = d->rev_minor;
  info->crystal_mhz = d->o.crystal_mhz;
  info->bootloader_offset = d->chip->bootloader_offset;
  switch (d->o.port) {
  case ESIM_PORT_UART: /* a CP2102N bridge, as on DevKitC boards */
    info->usb_vid = 0x10C4;
    info->usb_pid = 0xEA60;
    break;
  case ESIM_PORT_USB_JTAG: /* (0x303A, 0x1001) [F] §6, esptool loader.py:381-383 */
    info->usb_vid = 0x303A;
    info->usb_pid = 0x1001;
    break;
  case ESIM_PORT_USB_OTG: /* (0x303A, IMAGE_CHIP_ID) */
    info->usb_vid = 0x303A;
    info->usb_pid = d->chip->otg_pid;
    break;
  }
}

eg_err esim_dev_new(esim_dev **out, const esim_dev_opts *o) {
  *out = NULL;
  if (!o || (unsigned)o->chip >= ESIM_CHIP__COUNT) return EG_INVAL;
  char why[160];
  if (esim_dev_opts_check(o, why, sizeof why) != EG_OK) return EG_INVAL;
  esim_chip cv;
  esim_chip_resolve(o->chip, &cv);
  const esim_chip *chip = &cv;
  const int major = o->rev_major >= 0 ? o->rev_major : chip->rev_major;
  const int minor = o->rev_minor >= 0 ? o->rev_minor : chip->rev_minor;
  const int xtal = o->crystal_mhz ? o->crystal_mhz : chip->xtal_default;
  size_t fsize = o->flash_size;
  if (!fsize) fsize = eg_flash_size_from_jedec(o->flash_id);
  if (!fsize) return EG_INVAL;
  esim_dev *d = calloc(1, sizeof *d);
  if (!d) return EG_NOMEM;
  d->o = *o;
  d->o.name = NULL;
  d->chipv = cv;
  d->chip = &d->chipv;
  d->o.crystal_mhz = xtal;
  d->xtal_hz = (uint32_t)xtal * 1000000u;
  d->uart_clk = d->xtal_hz * chip->uart_clk_mult;
  d->rev_major = major;
  d->rev_minor = minor;
  esim_chip_encode(d->chip, o, major, minor, &d->img);
  /* A UART board starts strapped for download (BOOT+RESET before the host
   * came); a USB board starts powered normally and put into download mode
   * through its USB port: the straps say SPI boot, the USB-Serial/JTAG's
   * reset or the OTG CDC's FORCE_DOWNLOAD_BOOT brought it there. */
  d->strap_download = o->port == ESIM_PORT_UART && !o->faults.not_in_download_mode;
  if (o->port == ESIM_PORT_USB_OTG && chip->option1_reg) d->option1 = chip->option1_force_dl;
  d->wdt_fire_at = ESIM_NEVER;
  snprintf(d->name, sizeof d->name, "%s", o->name ? o->name : "dev");
  if (d->o.baud_tolerance <= 0) d->o.baud_tolerance = 0.005;
  if (d->o.faults.slow_erase <= 0) d->o.faults.slow_erase = 1.0;
  d->dec = malloc(ESIM_DECODE_CAP);
  d->w.out = malloc(32768);
  if (!d->dec || !d->w.out) {
    esim_dev_free(d);
    return EG_NOMEM;
  }
  if (o->flash) {
    d->flash = o->flash;
    d->flash_size = fsize;
  } else {
    d->flash = malloc(fsize);
    if (!d->flash) {
      esim_dev_free(d);
      return EG_NOMEM;
    }
    memset(d->flash, 0xFF, fsize);
    d->flash_size = fsize;
    d->flash_owned = true;
  }
  d->rng = o->seed * 0x9E3779B97F4A7C15ULL + 0x1234567;
  if (!d->rng) d->rng = 1;
  for (const char *p = d->name; *p; p++) d->rng = (d->rng ^ (uint8_t)*p) * 0x100000001B3ULL;
  /* ROM's belief of the crystal (doc §8.3): f_rom = cali * 15625 * ck8m / 40
   * with ck8m = eFuse word4 & 0xFF = 0x50 (trace). */
  const double f_rom = (double)xtal * 1e6 * (1.0 + o->rom_clock_error);
  d->rtc_cali = (uint32_t)(f_rom / (15625.0 * 80.0 / 40.0) + 0.5);
  d->md5_budget = o->faults.md5_mismatch;
  d->cpu_t = 0;
  d->strap_at = ESIM_NEVER;
  if (o->faults.not_in_download_mode) {
    esim_enter_app(d, 0, ESIM_RST_POWERON);
  } else {
    esim_enter_rom(d, 0, ESIM_RST_POWERON, false);
  }
  *out = d;
  return EG_OK;
}

void esim_dev_free(esim_dev *d) {
  if (!d) return;
  q_clear(&d->rxq);
  q_clear(&d->txq);
  fq_clear(d);
  if (d->w.z_ready) inflateEnd(&d->w.zs);
  esim_stub_reset(d);
  free(d->w.out);
  free(d->dec);
  free(d->sparse_addr);
  free(d->sparse_val);
  if (d->flash_owned) free(d->flash);
  free(d);
}

/* Everything in flight is lost when the chip resets. */
static void drop_io(esim_dev *d, uint64_t now) {
  q_clear(&d->rxq);
  q_clear(&d->txq);
  fq_clear(d);
  d->slip = SLIP_NO_FRAME;
  d->dec_len = 0;
  d->cpu_t = now;
  d->flash_busy = now; /* a reset aborts an erase in progress */
  d->disconnect_pending = false;
  d->next_chatter = ESIM_NEVER;
  d->strap_at = ESIM_NEVER;
  d->wdt_fire_at = ESIM_NEVER; /* any reset stops the RTC watchdog */
  d->st.resets++;
}

/* A USB port drops off the bus when the chip resets and comes back when
 * its ROM starts the USB stack again: the ROM's USB-OTG CDC on every reset;
 * the USB-Serial/JTAG peripheral only on a system reset (its own RTS reset
 * is a core reset that keeps it enumerated: esptool's USB hard reset keeps
 * using the open port, reset.py HardReset uses_usb; the watchdog reset "may
 * cause the port to re-enumerate", esptool docs advanced-options.rst:40)
 * unless the slot says it re-enumerates on every reset. */
static void usb_reset_notice(esim_dev *d, uint64_t t, bool system_reset) {
  bool gone = false;
  switch (d->o.port) {
  case ESIM_PORT_UART: break;
  case ESIM_PORT_USB_JTAG: gone = system_reset || d->o.usb_reenumerate; break;
  case ESIM_PORT_USB_OTG: gone = true; break;
  }
  if (!gone) return;
  d->reenum_pending = true;
  esim_log(d, t, "usb: the port leaves the bus and re-enumerates");
}

bool esim_dev_take_reenumerate(esim_dev *d) {
  const bool r = d->reenum_pending;
  d->reenum_pending = false;
  return r;
}

void esim_cpu_reset(esim_dev *d, uint64_t t) {
  usb_reset_notice(d, t, false);
  esim_enter_rom(d, t, ESIM_RST_SW_CPU, true);
}

void esim_dev_reset(esim_dev *d, uint64_t now, bool download) {
  if (now < d->now) now = d->now;
  d->now = now;
  drop_io(d, now);
  if (d->en_low) {
    /* The adapter still pulls EN low: the chip cannot start. */
    esim_log(d, now, "reset: held in reset by EN (RTS asserted, DTR released)");
    d->mode = ESIM_MODE_RESET;
    d->en_fell = now;
    return;
  }
  esim_log(d, now, "reset (%s)", download ? "download mode" : "boot");
  usb_reset_notice(d, now, true);
  d->strap_download = download && !d->o.faults.not_in_download_mode;
  if (d->strap_download) {
    esim_enter_rom(d, now, ESIM_RST_POWERON, true);
  } else {
    esim_enter_app(d, now, ESIM_RST_POWERON);
  }
}

/* ------------------------------------------------------ auto-reset circuit
 *
 * The usual ESP32 dev-board circuit (DevKitC and most clones): two NPN
 * transistors cross-wired between the adapter's DTR/RTS and the chip's EN
 * and GPIO0, so that EN = low only for (DTR released, RTS asserted) and
 * GPIO0 = low only for (DTR asserted, RTS released); (0,0) and (1,1) leave
 * both pulled up. That is why esptool's sequences can pass through (1,1)
 * between their steps without harm. EN also has an RC delay: the chip
 * leaves reset about 1 ms after the transistor lets go, and it latches
 * GPIO0 then (datasheet: GPIO0 held >= 1 ms after EN rises), so
 * ClassicReset's "DTR=1; RTS=0" (EN released a moment before GPIO0 is
 * pulled low) still lands in download mode. A pulse on EN shorter than
 * 50 us does not reset the chip (datasheet: CHIP_PU low >= 50 us). */

/* When a low EN becomes a reset: ESIM_NEVER if it is not low or already is. */
static uint64_t hold_at(const esim_dev *d) {
  if (!d->en_low || d->mode == ESIM_MODE_RESET || d->mode == ESIM_MODE_DISCONNECTED) return ESIM_NEVER;
  return d->en_fell + ESIM_EN_MIN_PULSE_US;
}

static void circuit_hold(esim_dev *d, uint64_t t) {
  esim_log(d, t, "EN low: chip held in reset (was %s)", esim_mode_name(d->mode));
  drop_io(d, t);
  d->mode = ESIM_MODE_RESET;
}

/* EN (or the USB reset) let go: the chip starts. What it boots:
 *   UART: GPIO0 as the circuit holds it now (a system reset: straps sampled);
 *   USB-Serial/JTAG: a core reset, the straps are not sampled again
 *     (esptool docs troubleshooting.rst "Leaving Download Mode in
 *     USB-Serial/JTAG Mode"): download if the peripheral's flag was set
 *     when the reset began, or if the chip was strapped for download at its
 *     last system reset;
 *   USB-OTG: the ROM's / app's CDC code restarts the chip the way the
 *     circuit would (esptool drives OTG ports with its UART sequences,
 *     loader.py:821-863): download when "GPIO0" (DTR alone) is asserted,
 *     recorded in RTC_CNTL_OPTION1 FORCE_DOWNLOAD_BOOT. */
static void circuit_boot(esim_dev *d, uint64_t t) {
  d->strap_at = ESIM_NEVER;
  const bool io0_low = d->line_dtr && !d->line_rts;
  bool dl = io0_low;
  esim_rst why = ESIM_RST_POWERON;
  bool system_reset = true;
  switch (d->o.port) {
  case ESIM_PORT_UART: break;
  case ESIM_PORT_USB_JTAG:
    dl = d->usb_boot_dl || d->strap_download;
    why = ESIM_RST_USB_UART;
    system_reset = false;
    break;
  case ESIM_PORT_USB_OTG:
    why = ESIM_RST_SW_CPU;
    system_reset = false;
    if (d->chip->option1_reg) {
      if (dl) d->option1 |= d->chip->option1_force_dl;
      else d->option1 &= ~d->chip->option1_force_dl;
    }
    break;
  }
  if (d->o.port == ESIM_PORT_UART) d->strap_download = io0_low && !d->o.faults.not_in_download_mode;
  usb_reset_notice(d, t, system_reset);
  if (dl && d->o.faults.not_in_download_mode) {
    esim_log(d, t, "straps: download asked for but the board cannot enter it (fault): app boots");
    esim_enter_app(d, t, why);
  } else if (dl) {
    esim_log(d, t, "straps: download mode");
    esim_enter_rom(d, t, why, true);
  } else {
    esim_log(d, t, "straps: SPI boot: app boots");
    esim_enter_app(d, t, why);
  }
}

/* The RTC watchdog armed through WRITE_REG (esptool's watchdog reset) runs
 * out: a system reset, so the straps are sampled again (GPIO0 through the
 * auto-reset circuit on a UART board; nothing holds it on a USB board) and
 * RTC_CNTL_OPTION1's FORCE_DOWNLOAD_BOOT, which survives it, still counts
 * (why esptool clears it first, esp32s3.py:346-356). */
static void wdt_fire(esim_dev *d, uint64_t t) {
  esim_log(d, t, "RTC watchdog: system reset");
  drop_io(d, t);
  const bool io0_low = d->o.port == ESIM_PORT_UART && d->line_dtr && !d->line_rts;
  const bool forced = d->chip->option1_reg && (d->option1 & d->chip->option1_force_dl);
  d->strap_download = io0_low && !d->o.faults.not_in_download_mode;
  usb_reset_notice(d, t, true);
  if (d->strap_download || forced) esim_enter_rom(d, t, ESIM_RST_RTCWDT, true);
  else esim_enter_app(d, t, ESIM_RST_RTCWDT);
}

void esim_dev_set_lines(esim_dev *d, uint64_t now, bool dtr, bool rts) {
  if (now < d->now) now = d->now;
  /* Whatever was due happens with the old lines (a pending strap sample). */
  esim_dev_advance(d, now);
  if (dtr == d->line_dtr && rts == d->line_rts) return;
  d->line_dtr = dtr;
  d->line_rts = rts;
  /* RTS alone resets the chip on every kind of port; the USB-Serial/JTAG
   * peripheral reads DTR alone as "download at the next reset" and both
   * released as "forget it" (esptool reset.py USBJTAGSerialReset: "Set
   * IO0", then "Calls inverted to go through (1,1) instead of (0,0)"). */
  const bool en_low = rts && !dtr;
  if (d->o.port == ESIM_PORT_USB_JTAG) {
    if (dtr && !rts) d->usb_force_dl = true;
    else if (!dtr && !rts) d->usb_force_dl = false;
    esim_log(d, now, "lines DTR=%d RTS=%d: reset %s, download flag %s", dtr, rts, en_low ? "asserted" : "released",
             d->usb_force_dl ? "set" : "clear");
  } else {
    esim_log(d, now, "lines DTR=%d RTS=%d: EN %s, GPIO0 %s", dtr, rts, en_low ? "low" : "released",
             dtr && !rts ? "low" : "released");
  }
  if (en_low == d->en_low) return;
  d->en_low = en_low;
  if (d->mode == ESIM_MODE_DISCONNECTED) return; /* unplugged: the lines reach nothing */
  if (en_low) {
    d->en_fell = now;
    d->usb_boot_dl = d->usb_force_dl;
    d->strap_at = ESIM_NEVER; /* still booting: back into reset */
    return;
  }
  if (d->mode == ESIM_MODE_RESET) {
    d->strap_at = now + ESIM_STRAP_DELAY_US;
  } else {
    esim_log(d, now, "EN pulse of %llu us ignored (shorter than %u us)", (unsigned long long)(now - d->en_fell),
             ESIM_EN_MIN_PULSE_US);
  }
}

void esim_dev_note(esim_dev *d, uint64_t now, const char *what) {
  esim_log(d, now < d->now ? d->now : now, "%s", what);
}

void esim_dev_host_attached(esim_dev *d, uint64_t now) {
  if (now < d->now) now = d->now;
  d->now = now;
  start_clock(d, now);
  if (d->mode == ESIM_MODE_APP && d->o.faults.not_in_download_mode) {
    q_clear(&d->txq);
    esim_log(d, now, "host attached: app reboots (adapter reset on open)");
    esim_enter_app(d, now, ESIM_RST_POWERON);
  }
}

/* ------------------------------------------------------------------ input */

static void frame_done(esim_dev *d, uint64_t t) {
  const uint32_t n = d->dec_len;
  d->dec_len = 0;
  if (n == 0) return; /* C0 C0: an empty frame is ignored by every loader */
  if (d->mode == ESIM_MODE_STUB && d->fq_count >= 1 && d->opst == OPST_IDLE) {
    if (d->flavour == ESIM_STUB_NEW) {
      /* NS: both frame buffers are full (one running, one waiting): the
       * ISR has nowhere to put this frame (frame_buffer_acquire NULL). */
      esim_log(d, t, "rx frame lost: both stub buffers busy");
      d->st.rx_overflow++;
      return;
    }
    /* LS: the ISR overwrites ub.command, the older waiting frame is lost. */
    esim_frame *old = d->fq_tail;
    esim_log(d, t, "rx frame lost: overwritten by the next one (stub still busy)");
    d->st.rx_overflow++;
    if (d->fq_head == old) {
      d->fq_head = d->fq_tail = NULL;
      d->fq_count = 0;
    } else {
      esim_frame *p = d->fq_head;
      while (p->next != old) p = p->next;
      p->next = NULL;
      d->fq_tail = p;
      d->fq_count--;
    }
    free(old);
  }
  esim_frame *f = malloc(sizeof *f + n);
  if (!f) return;
  f->next = NULL;
  f->t = t;
  f->len = n;
  memcpy(f->data, d->dec, n);
  if (d->fq_tail) d->fq_tail->next = f;
  else d->fq_head = f;
  d->fq_tail = f;
  d->fq_count++;
}

static uint32_t decode_cap(const esim_dev *d) {
  if (d->mode == ESIM_MODE_STUB) return d->flavour == ESIM_STUB_NEW ? ESIM_NS_BUF : ESIM_LS_BUF;
  return ESIM_ROM_BUF;
}

/* SLIP receive. The stubs' decoders (LS slip.c SLIP_recv_byte, NS slip.c
 * slip_recv_byte) toggle: 0xC0 switches between "no frame" and "in frame",
 * so C0 C0 is an empty frame and the next frame needs its own opening C0; a
 * stray C0 therefore costs them frames until the host's C0s pair up again.
 * The ROM is modelled with the robust reading (a C0 right after a C0 opens
 * the frame), so garbage before a host's packet costs at most that packet.
 * Errors: LS ignores a bad escape and ends an over-long frame at its buffer
 * size, receiving the rest as a new frame; NS drops the frame and waits for
 * the next C0; the ROM drops the frame up to the next C0, which opens one. */
static void slip_byte(esim_dev *d, uint64_t t, uint8_t b) {
  const bool rom = d->mode == ESIM_MODE_ROM;
  const bool ls = d->mode == ESIM_MODE_STUB && d->flavour == ESIM_STUB_LEGACY;
  switch (d->slip) {
  case SLIP_NO_FRAME:
    if (b == 0xC0) {
      d->slip = SLIP_IN_FRAME;
      d->dec_len = 0;
    }
    return;
  case SLIP_DROP:
    if (b == 0xC0) {
      d->slip = SLIP_IN_FRAME;
      d->dec_len = 0;
    }
    return;
  case SLIP_IN_FRAME:
    if (b == 0xC0) {
      if (rom && d->dec_len == 0) return; /* repeated C0: still the start */
      d->slip = SLIP_NO_FRAME;
      frame_done(d, t);
      return;
    }
    if (b == 0xDB) {
      d->slip = SLIP_ESCAPING;
      return;
    }
    break;
  case SLIP_ESCAPING:
    d->slip = SLIP_IN_FRAME;
    if (b == 0xDC) b = 0xC0;
    else if (b == 0xDD) b = 0xDB;
    else {
      if (ls) return;
      esim_log(d, t, "rx SLIP escape error, frame dropped");
      d->dec_len = 0;
      if (b == 0xC0) d->slip = rom ? SLIP_IN_FRAME : SLIP_NO_FRAME;
      else d->slip = rom ? SLIP_DROP : SLIP_NO_FRAME;
      return;
    }
    break;
  }
  if (d->dec_len >= decode_cap(d)) {
    if (ls) {
      frame_done(d, t); /* ub.read == MAX_WRITE_BLOCK+64: frame "finished" */
    } else {
      esim_log(d, t, "rx frame too long, dropped");
      d->st.rx_overflow++;
      d->slip = rom ? SLIP_DROP : SLIP_NO_FRAME;
      d->dec_len = 0;
      return;
    }
  }
  d->dec[d->dec_len++] = b;
}

static void fire_disconnect(esim_dev *d, uint64_t t, const char *why) {
  esim_log(d, t, "fault disconnect (%s)", why);
  d->disconnect_pending = true;
  d->disconnect_fired = true;
  d->mode = ESIM_MODE_DISCONNECTED;
  q_clear(&d->txq);
  q_clear(&d->rxq);
  fq_clear(d);
}

/* A rate change the chip made before t whose turn in the output queue has
 * come (everything it sent before the change has gone out) takes effect
 * now, not when the link next pumps output: the UART's divider changed at
 * its own time, and bytes arriving after it are received at the new rate
 * however late the simulator's loop gets round to them. */
static void rate_changes_due(esim_dev *d, uint64_t t) {
  while (d->txq.head && d->txq.head->is_baud && d->txq.head->t <= t) {
    esim_chunk *c = d->txq.head;
    esim_log(d, c->t, "uart %u -> %u baud", (unsigned)d->baud, (unsigned)c->set_baud);
    esim_set_uart(d, c->set_baud, c->set_clkdiv);
    q_pop(&d->txq);
  }
}

static void process_input(esim_dev *d, esim_chunk *c) {
  const uint64_t t = c->t;
  const uint8_t *p = c->data + c->off;
  const size_t n = c->len - c->off;
  if (d->mode == ESIM_MODE_DISCONNECTED || d->mode == ESIM_MODE_STALLED || d->mode == ESIM_MODE_RESET) return;
  rate_changes_due(d, t);
  /* The ROM's autobaud measures the host's bit time (doc §3.2). A link
   * without a UART rate (raw TCP) is taken as 115200, the rate every client
   * syncs at (esptool: min(115200, requested), chip-family-facts §3), so
   * a ROM that printed its banner at 74880 still ends up there. */
  const uint32_t host_rate = c->host_baud ? c->host_baud : 115200u;
  if (d->autobaud && host_rate != d->baud && d->mode == ESIM_MODE_ROM) {
    esim_log(d, t, "autobaud: %u -> %u", (unsigned)d->baud, (unsigned)host_rate);
    uart_autobaud(d, host_rate);
  }
  const esim_faults *fl = &d->o.faults;
  uint8_t *wire = malloc(n ? n : 1);
  if (!wire) return;
  size_t m = 0;
  enum { NONE, STALL, DISCONNECT } fire = NONE;
  /* the host's bytes, as its UART sends them (byte faults included) */
  for (size_t i = 0; i < n && fire == NONE; i++) {
    uint8_t b = p[i];
    d->rx_count++;
    d->st.rx_bytes++;
    if (fl->stall_after_bytes && d->rx_count == fl->stall_after_bytes) fire = STALL;
    if (fl->disconnect_after_bytes && !d->disconnect_fired && d->rx_count == fl->disconnect_after_bytes) fire = DISCONNECT;
    if (fl->drop_rate_rx > 0 && esim_rand01(d) < fl->drop_rate_rx) {
      d->st.rx_dropped++;
      esim_log(d, t, "fault drop rx byte 0x%02x", b);
      continue;
    }
    if (noisy(d) && esim_rand01(d) < fl->noise_above_rate) {
      const uint8_t nb = (uint8_t)(b ^ (1u << (esim_rand(d) & 7)));
      esim_log(d, t, "fault noise rx byte 0x%02x -> 0x%02x at %u baud", b, nb, (unsigned)d->baud);
      b = nb;
    }
    if (fl->corrupt_rate_rx > 0 && esim_rand01(d) < fl->corrupt_rate_rx) {
      const uint8_t nb = (uint8_t)(b ^ (1u << (esim_rand(d) & 7)));
      esim_log(d, t, "fault corrupt rx byte 0x%02x -> 0x%02x", b, nb);
      b = nb;
    }
    wire[m++] = b;
  }
  /* what the device's UART makes of them */
  const line_effect le = line_state(d, c->host_baud);
  uint8_t *rxd = wire;
  if (le != LINE_CLEAN) d->st.rx_garbled += m;
  const size_t k = apply_line(d, le, &rxd, m, c->host_baud, d->baud);
  for (size_t i = 0; i < k; i++) {
    if (d->mode == ESIM_MODE_ROM) {
      /* The ROM polls its 128-byte FIFO only between commands. */
      if (t < d->cpu_t) {
        if (d->fifo_used >= ESIM_UART_FIFO) {
          d->st.rx_overflow++;
          if (d->st.rx_overflow < 20 || d->st.rx_overflow % 1000 == 0)
            esim_log(d, t, "rx FIFO overflow while busy, byte lost");
          continue;
        }
        d->fifo_used++;
      } else {
        d->fifo_used = 0;
      }
    }
    if (d->mode == ESIM_MODE_ROM || d->mode == ESIM_MODE_STUB) slip_byte(d, t, rxd[i]);
  }
  if (rxd != wire) free(rxd);
  free(wire);
  if (fire == STALL) {
    esim_log(d, t, "fault stall after %llu bytes", (unsigned long long)d->rx_count);
    d->mode = ESIM_MODE_STALLED;
    q_clear(&d->txq);
    q_clear(&d->rxq);
    fq_clear(d);
  } else if (fire == DISCONNECT) {
    fire_disconnect(d, t, "after bytes");
  }
}

static void process_frame(esim_dev *d, esim_frame *f) {
  uint64_t t = d->cpu_t > f->t ? d->cpu_t : f->t;
  d->frame_t = f->t;
  const esim_faults *fl = &d->o.faults;
  if (d->opst == OPST_IDLE && f->len >= 2 && (d->mode == ESIM_MODE_ROM || d->mode == ESIM_MODE_STUB)) {
    const uint8_t op = f->data[1];
    d->op_seen[op]++;
    if (fl->disconnect_at_op == op && !d->disconnect_fired &&
        d->op_seen[op] == (fl->disconnect_at_nth ? fl->disconnect_at_nth : 1)) {
      fire_disconnect(d, t, eg_op_name(op));
      return;
    }
  }
  switch (d->mode) {
  case ESIM_MODE_ROM:
    esim_rom_frame(d, &t, f->data, f->len);
    break;
  case ESIM_MODE_STUB:
    if (d->opst == OPST_READ_FLASH) esim_stub_read_ack(d, &t, f->data, f->len);
    else esim_stub_frame(d, &t, f->data, f->len);
    break;
  case ESIM_MODE_APP:
  case ESIM_MODE_STALLED:
  case ESIM_MODE_DISCONNECTED:
  case ESIM_MODE_RESET:
    break;
  }
  if (t > d->cpu_t) d->cpu_t = t;
}

void esim_dev_rx(esim_dev *d, uint64_t now, const uint8_t *p, size_t n, uint32_t host_baud) {
  if (now < d->now) now = d->now;
  start_clock(d, now);
  esim_dev_advance(d, now);
  if (!n) return;
  if (d->mode == ESIM_MODE_DISCONNECTED || d->mode == ESIM_MODE_STALLED || d->mode == ESIM_MODE_RESET) {
    d->st.rx_bytes += n;
    return;
  }
  uint64_t t = now + d->o.timing.rx_latency_us + d->o.faults.delay_rx_us;
  if (d->rxq.tail && d->rxq.tail->t > t) t = d->rxq.tail->t;
  esim_chunk *c = chunk_new(t, p, n);
  if (!c) return;
  c->host_baud = host_baud;
  q_push(&d->rxq, c);
  esim_dev_advance(d, now);
}

void esim_dev_advance(esim_dev *d, uint64_t now) {
  if (now < d->now) now = d->now;
  d->now = now;
  start_clock(d, now);
  for (;;) {
    const uint64_t t_in = d->rxq.head ? d->rxq.head->t : ESIM_NEVER;
    uint64_t t_fr = ESIM_NEVER;
    if (d->fq_head) t_fr = d->cpu_t > d->fq_head->t ? d->cpu_t : d->fq_head->t;
    const uint64_t t_ch = d->mode == ESIM_MODE_APP ? d->next_chatter : ESIM_NEVER;
    const uint64_t t_hold = hold_at(d);
    uint64_t tmin = t_in < t_fr ? t_in : t_fr;
    if (t_ch < tmin) tmin = t_ch;
    if (t_hold < tmin) tmin = t_hold;
    if (d->strap_at < tmin) tmin = d->strap_at;
    if (d->wdt_fire_at < tmin) tmin = d->wdt_fire_at;
    if (tmin > now || tmin == ESIM_NEVER) break;
    /* The circuit first: a reset at the same instant wins over the chip. */
    if (t_hold == tmin) {
      circuit_hold(d, t_hold);
    } else if (d->wdt_fire_at == tmin) {
      wdt_fire(d, tmin);
    } else if (d->strap_at == tmin) {
      circuit_boot(d, tmin);
    } else if (t_fr == tmin) {
      esim_frame *f = d->fq_head;
      d->fq_head = f->next;
      if (!d->fq_head) d->fq_tail = NULL;
      d->fq_count--;
      process_frame(d, f);
      free(f);
    } else if (t_in == tmin) {
      esim_chunk *c = d->rxq.head;
      d->rxq.head = c->next;
      if (!d->rxq.head) d->rxq.tail = NULL;
      d->rxq.bytes -= c->len - c->off;
      process_input(d, c);
      free(c);
    } else {
      do_chatter(d, t_ch);
    }
  }
}

uint64_t esim_dev_next_event(const esim_dev *d) {
  uint64_t t = hold_at(d);
  if (d->strap_at < t) t = d->strap_at;
  if (d->wdt_fire_at < t) t = d->wdt_fire_at;
  if (d->rxq.head && d->rxq.head->t < t) t = d->rxq.head->t;
  if (d->fq_head) {
    const uint64_t tf = d->cpu_t > d->fq_head->t ? d->cpu_t : d->fq_head->t;
    if (tf < t) t = tf;
  }
  if (d->mode == ESIM_MODE_APP && d->next_chatter < t) t = d->next_chatter;
  if (d->txq.head && d->txq.head->t < t) t = d->txq.head->t;
  return t;
}

uint64_t esim_dev_tx_ready_at(const esim_dev *d) { return d->txq.head ? d->txq.head->t : ESIM_NEVER; }

size_t esim_dev_tx_take(esim_dev *d, uint64_t now, uint8_t *out, size_t max, uint32_t host_baud) {
  esim_dev_advance(d, now);
  size_t n = 0;
  const esim_faults *fl = &d->o.faults;
  while (d->txq.head && d->txq.head->t <= now) {
    esim_chunk *c = d->txq.head;
    if (c->is_baud) {
      if (n) break; /* let the caller pace what it has at the old rate */
      esim_log(d, c->t, "uart %u -> %u baud", (unsigned)d->baud, (unsigned)c->set_baud);
      esim_set_uart(d, c->set_baud, c->set_clkdiv);
      q_pop(&d->txq);
      break;
    }
    const line_effect le = line_state(d, host_baud);
    /* a resampling receiver may see up to ~6 bytes per byte sent */
    size_t room = max - n;
    if (le == LINE_RESAMPLE) room = room >= 14 ? (room - 8) / 6 : 1;
    uint8_t *wire = out + n;
    size_t m = 0;
    uint8_t tmp[64];
    if (le == LINE_RESAMPLE) {
      wire = tmp;
      if (room > sizeof tmp) room = sizeof tmp;
    }
    while (c->off < c->len && m < room) {
      uint8_t b = c->data[c->off++];
      d->txq.bytes--;
      d->st.tx_bytes++;
      if (fl->drop_rate_tx > 0 && esim_rand01(d) < fl->drop_rate_tx) {
        esim_log(d, now, "fault drop tx byte 0x%02x", b);
        continue;
      }
      if (noisy(d) && esim_rand01(d) < fl->noise_above_rate) {
        const uint8_t nb = (uint8_t)(b ^ (1u << (esim_rand(d) & 7)));
        esim_log(d, now, "fault noise tx byte 0x%02x -> 0x%02x at %u baud", b, nb, (unsigned)d->baud);
        b = nb;
      }
      if (fl->corrupt_rate_tx > 0 && esim_rand01(d) < fl->corrupt_rate_tx) {
        const uint8_t nb = (uint8_t)(b ^ (1u << (esim_rand(d) & 7)));
        esim_log(d, now, "fault corrupt tx byte 0x%02x -> 0x%02x", b, nb);
        b = nb;
      }
      wire[m++] = b;
    }
    if (le != LINE_CLEAN) d->st.tx_garbled += m;
    if (le == LINE_RESAMPLE) {
      uint8_t *rs = wire;
      const size_t k = apply_line(d, le, &rs, m, d->baud, host_baud);
      const size_t fit = k < max - n ? k : max - n;
      memcpy(out + n, rs, fit);
      n += fit;
      if (rs != wire) free(rs);
    } else {
      uint8_t *w = wire;
      n += apply_line(d, le, &w, m, d->baud, host_baud);
    }
    if (c->off == c->len) {
      d->txq.head = c->next;
      if (!d->txq.head) d->txq.tail = NULL;
      free(c);
    }
    if (n >= max || le == LINE_RESAMPLE) break;
  }
  return n;
}

bool esim_dev_take_disconnect(esim_dev *d) {
  const bool r = d->disconnect_pending;
  d->disconnect_pending = false;
  return r;
}

esim_mode esim_dev_mode(const esim_dev *d) { return d->mode; }
esim_stub_flavour esim_dev_stub(const esim_dev *d) {
  return d->mode == ESIM_MODE_STUB ? d->flavour : ESIM_STUB_AUTO;
}

const uint8_t *esim_dev_flash(const esim_dev *d, size_t *size) {
  if (size) *size = d->flash_size;
  return d->flash;
}

uint32_t esim_dev_read_reg(esim_dev *d, uint32_t addr) { return esim_reg_read(d, addr); }

bool esim_dev_idle(const esim_dev *d, uint64_t now) {
  return !d->rxq.head && !d->fq_head && !d->txq.head && d->cpu_t <= now && d->flash_busy <= now &&
         d->opst == OPST_IDLE && d->strap_at == ESIM_NEVER && hold_at(d) == ESIM_NEVER &&
         d->wdt_fire_at == ESIM_NEVER;
}

void esim_dev_get_stats(const esim_dev *d, esim_dev_stats *s) { *s = d->st; }
