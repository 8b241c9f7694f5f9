/* simdev.h - espsim's device model: one ESP chip (ESP32, ESP32-S2, S3, C2,
 * C3, C5, C6, C61, H2, P4 or ESP8266; simchip.c) in download mode (mask ROM
 * loader, then a flasher stub), bytes in / bytes out, with time.
 *
 * Contract
 *   - Pure model: no I/O, no clock, no threads, no file-scope state. The
 *     caller passes the current time (virtual microseconds, any monotonic
 *     base) into every call; times must never decrease. Any number of
 *     devices may coexist.
 *   - The caller owns the esim_dev (esim_dev_new / esim_dev_free). The flash
 *     array is either caller-owned (opts.flash, e.g. an mmap of the flash
 *     file: the model writes through to it) or, when opts.flash is NULL,
 *     allocated and owned by the model (filled with 0xFF).
 *   - Host bytes go in with esim_dev_rx() stamped with the time their last
 *     bit reached the device; the device's UART output comes out of
 *     esim_dev_tx_take(), each byte no earlier than the time the device put
 *     it in its TX FIFO. Pacing on the wire (10 bits per byte at
 *     esim_dev_baud()) is the caller's job (simlink.c does it).
 *   - State changes (flash contents, registers) are applied when a command
 *     is processed; the time they take is accounted on the device's CPU and
 *     flash timelines, which delays later replies. So the flash array is
 *     current whenever the device is idle, but a test that looks at it
 *     mid-command may see the result early.
 *   - Errors: esim_dev_new returns EG_NOMEM / EG_INVAL (src/errors.h). The
 *     byte-level calls cannot fail; malformed input is answered the way the
 *     real loader answers it.
 *
 * Facts and their sources: /work/shared/docs/esp-serial-protocol.md (the
 * "protocol doc"), timing-facts.md, and the five ROM/stub traces, which win
 * over everything else. README.md in this folder lists each modelled
 * behaviour with its source and every known difference from hardware.
 */
#ifndef ESIM_SIMDEV_H
#define ESIM_SIMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define ESIM_NEVER UINT64_MAX

/* The simulated chip (README "Chips"; facts per chip in simchip.c). */
typedef enum esim_chip_id {
  ESIM_CHIP_ESP8266,
  ESIM_CHIP_ESP32,
  ESIM_CHIP_ESP32S2,
  ESIM_CHIP_ESP32S3,
  ESIM_CHIP_ESP32C2,
  ESIM_CHIP_ESP32C3,
  ESIM_CHIP_ESP32C5,
  ESIM_CHIP_ESP32C6,
  ESIM_CHIP_ESP32C61,
  ESIM_CHIP_ESP32H2,
  ESIM_CHIP_ESP32P4,
  ESIM_CHIP__COUNT
} esim_chip_id;

/* "esp32c3" (as --chip and esptool take it) -> id; -1 if unknown. */
int esim_chip_by_name(const char *name);
const char *esim_chip_name(esim_chip_id c);    /* "esp32c3" */
const char *esim_chip_display(esim_chip_id c); /* "ESP32-C3" */

/* How the host reaches the chip (README "USB ports"). */
typedef enum esim_port_kind {
  ESIM_PORT_UART,     /* a USB-UART bridge and the two-transistor auto-reset circuit */
  ESIM_PORT_USB_JTAG, /* the chip's USB-Serial/JTAG peripheral (303a:1001) */
  ESIM_PORT_USB_OTG   /* the ROM's USB-OTG CDC-ACM (S2, S3, P4): re-enumerates on every reset */
} esim_port_kind;

/* Security state burnt into the eFuses (README "Security states"). */
typedef struct esim_security {
  bool secure_download;   /* Secure Download Mode: the ROM takes only the documented subset */
  uint8_t flash_crypt_cnt;/* SPI_BOOT_CRYPT_CNT: flash encryption is on when its popcount is odd */
  bool secure_boot;       /* SECURE_BOOT_EN */
} esim_security;

/* Which flasher stub the device runs after MEM_END. AUTO picks from the
 * uploaded text segment: 0x400A8000 (esp-flasher-stub, esptool set "2",
 * esptool-js 0.7.0) -> NEW, anything else -> LEGACY (esptool set "1"). */
typedef enum esim_stub_flavour {
  ESIM_STUB_AUTO,
  ESIM_STUB_LEGACY, /* esptool-legacy-flasher-stub ("LS") */
  ESIM_STUB_NEW     /* esp-flasher-stub ("NS") */
} esim_stub_flavour;

/* What the chip is running. */
typedef enum esim_mode {
  ESIM_MODE_ROM,          /* mask ROM UART download loop */
  ESIM_MODE_STUB,         /* flasher stub command loop */
  ESIM_MODE_APP,          /* booted from flash / user code: chatter, never answers */
  ESIM_MODE_STALLED,      /* stall fault: hears nothing, says nothing */
  ESIM_MODE_DISCONNECTED, /* disconnect fault fired: dead until esim_dev_reset */
  ESIM_MODE_RESET         /* held in reset by EN (auto-reset circuit), or EN just
                             released and the straps not yet sampled: silent, deaf */
} esim_mode;

/* The timing model. Every figure's source is in README.md ("Timing model").
 * esim_timing_default() gives the hardware-like defaults, esim_timing_fast()
 * all zeros (unit tests, --fast). */
typedef struct esim_timing {
  uint32_t rom_cmd_us;        /* ROM: request received -> reply starts */
  uint32_t rom_sync_us;       /* ROM: SYNC received -> first reply */
  uint32_t stub_cmd_us;       /* stub: request received -> reply starts */
  uint32_t stub_boot_us;      /* MEM_END reply -> stub's OHAI */
  uint32_t reset_boot_us;     /* reset -> ROM banner starts */
  uint32_t baud_switch_us;    /* LS: reply -> UART divider changed (ets_delay_us(10000)) */
  uint32_t sector_erase_us;   /* 4 KB sector erase (20h) */
  uint32_t block_erase_us;    /* 64 KB block erase (D8h) */
  uint32_t chip_erase_base_us;      /* chip erase (C7h) of a blank chip */
  uint32_t chip_erase_per_block_us; /* + this per non-blank 64 KB block */
  uint32_t page_program_us;   /* one 32-byte page program: WREN + PP + WIP poll */
  uint32_t read_ns_per_byte;  /* SPI flash read by ROM/stub code */
  uint32_t md5_ns_per_byte;   /* MD5 on the chip's CPU */
  uint32_t inflate_ns_per_byte; /* inflate on the chip's CPU, per output byte */
  uint32_t rx_latency_us;     /* USB adapter, host -> chip (added to every byte) */
  uint32_t tx_latency_us;     /* USB adapter, chip -> host (added to every output) */
} esim_timing;

void esim_timing_default(esim_timing *t);
void esim_timing_fast(esim_timing *t);

/* Fault injection (README.md "Faults"). Zero/false = off. Rates are
 * probabilities per byte; the _rx half applies to host->device bytes, the
 * _tx half to device->host bytes. */
typedef struct esim_faults {
  double drop_rate_rx, drop_rate_tx;       /* byte silently lost */
  double corrupt_rate_rx, corrupt_rate_tx; /* one random bit flipped */
  uint32_t delay_rx_us, delay_tx_us;       /* extra latency per direction */
  uint64_t stall_after_bytes;      /* after N host bytes: stop answering for good */
  uint64_t disconnect_after_bytes; /* after N host bytes: drop the connection */
  int disconnect_at_op;            /* opcode, -1 = off */
  uint32_t disconnect_at_nth;      /* ...at its nth occurrence (1-based) */
  bool not_in_download_mode;       /* booted into the app: boot log + chatter, no SYNC */
  bool flash_write_error;          /* every program covering flash_write_error_addr fails */
  uint32_t flash_write_error_addr;
  uint32_t md5_mismatch;           /* flip a bit after the next N write sessions; UINT32_MAX = all */
  double slow_erase;               /* erase time factor (1.0 = normal; 0 means 1.0) */
  uint32_t baud_ceiling;           /* device rate above this garbles every byte */
  uint32_t noise_above_baud;       /* device rate above this: each byte gets a bit flipped ... */
  double noise_above_rate;         /* ... with this probability (a marginal line) */
  bool ignore_first_sync;          /* ROM ignores the first SYNC after reset (autobaud) */
  double rom_baud_error;           /* ROM CHANGE_BAUDRATE replies, then runs this far off (0.08 = +8 %) */
} esim_faults;

void esim_faults_clear(esim_faults *f);

/* One line of the per-device event log, without newline, prefixed by the
 * time in seconds. Called synchronously from the esim_dev_* calls. */
typedef void (*esim_log_fn)(void *ctx, const char *line);

typedef struct esim_dev_opts {
  esim_chip_id chip;          /* default ESP32 (the trace device) */
  int rev_major, rev_minor;   /* chip revision in eFuse; -1 = the chip's default */
  esim_security sec;
  esim_port_kind port;        /* what DTR/RTS mean (esim_dev_set_lines) */
  bool usb_reenumerate;       /* USB-Serial/JTAG: re-enumerate on every reset, not only system resets */
  uint8_t mac[6];             /* base MAC (eFuse); default 24:0a:c4:00:00:01 */
  uint32_t flash_id;          /* JEDEC ID as W0 returns it: mfr | type<<8 | cap<<16 */
  int crystal_mhz;            /* 0 = the chip's default; else one the chip allows (26/40/48/32) */
  int rom_xtal_mhz;           /* ESP32-C5: the crystal its ROM expects (0 = 40) */
  double rom_clock_error;     /* ROM's idea of the crystal vs the truth (default +0.06 = 6 % fast);
                                 drives the RTC calibration register (doc §8.3) */
  uint8_t *flash;             /* caller-owned flash array of flash_size bytes, or NULL */
  size_t flash_size;          /* 0 = from flash_id's capacity byte */
  esim_stub_flavour stub;     /* AUTO unless forced */
  esim_timing timing;
  esim_faults faults;
  uint64_t seed;              /* PRNG seed for faults and garbling */
  double baud_tolerance;      /* rates further apart than this are resampled bit by bit
                                 (default 0.005); bytes then survive up to ~4 %, as on a real line */
  esim_log_fn log;            /* may be NULL */
  void *log_ctx;
  const char *name;           /* "slot01", for the log; copied */
} esim_dev_opts;

/* Defaults of the trace device: MAC 24:0a:c4:00:00:01, GD25Q32 (0x1640C8,
 * 4 MB), 40 MHz, LEGACY/NEW by address, default timing, no faults. */
void esim_dev_opts_default(esim_dev_opts *o);

typedef struct esim_dev esim_dev;

/* Create a device in ROM download mode, UART at 115200, idle (as if it was
 * reset into download mode before the host arrived: no banner is sent).
 * With faults.not_in_download_mode it starts in the app instead. */
eg_err esim_dev_new(esim_dev **out, const esim_dev_opts *o);
void esim_dev_free(esim_dev *d);

/* Host bytes that reached the device at now_us. host_baud is the host's
 * UART rate (the pty's termios speed), or 0 when there is no UART on the
 * host side (TCP, socketpair): then rates never garble. */
void esim_dev_rx(esim_dev *d, uint64_t now_us, const uint8_t *p, size_t n, uint32_t host_baud);
/* Run everything due up to now_us. */
void esim_dev_advance(esim_dev *d, uint64_t now_us);
/* Earliest time at which the device has something to do or to send, or
 * ESIM_NEVER. The caller should call esim_dev_advance()/tx_take() then. */
uint64_t esim_dev_next_event(const esim_dev *d);
/* Time the first pending output byte may start on the wire, or ESIM_NEVER. */
uint64_t esim_dev_tx_ready_at(const esim_dev *d);
/* Take up to max output bytes that are ready by now_us (advance first).
 * Stops after a UART rate change so the caller can re-pace: a reply is sent
 * at the old rate, then esim_dev_baud() changes. Bytes are garbled when
 * host_baud (0 = none) and the device's rate disagree. */
size_t esim_dev_tx_take(esim_dev *d, uint64_t now_us, uint8_t *out, size_t max, uint32_t host_baud);
/* The device UART's current rate in baud (0 when a bad divider broke it). */
uint32_t esim_dev_baud(const esim_dev *d);
/* True once when a disconnect fault fired; the caller drops the link. */
bool esim_dev_take_disconnect(esim_dev *d);
/* True once when the device's USB port left the bus because the chip
 * reset (README "USB ports"): the front end removes the port and brings it
 * back under a new name after the re-enumeration delay. */
bool esim_dev_take_reenumerate(esim_dev *d);
/* A host opened the port (TCP accept, pty termios change). Only the
 * not_in_download_mode fault reacts: the adapter's reset-on-open reboots
 * the app, which prints its boot log again. */
void esim_dev_host_attached(esim_dev *d, uint64_t now_us);
/* Reset the chip (power cycle, or the operator's BOOT+RESET buttons).
 * download = BOOT held: ROM banner and download mode; else the app boots.
 * Pending I/O is dropped. Clears a stall or disconnect. If the auto-reset
 * circuit holds EN low at that moment (esim_dev_set_lines), the chip stays
 * in reset until EN is released. */
void esim_dev_reset(esim_dev *d, uint64_t now_us, bool download);

/* The board's reset logic driven by the host's DTR/RTS (true = asserted,
 * as RFC 2217's "ON"); what the lines mean depends on opts.port (README
 * "USB ports"). A UART board's auto-reset circuit (README "Auto-reset
 * circuit"): two transistors,
 * EN pulled low while RTS is asserted and DTR is not, GPIO0 pulled low while
 * DTR is asserted and RTS is not; (0,0) and (1,1) release both.
 *   - EN low for at least ESIM_EN_MIN_PULSE_US resets the chip: it is held
 *     in reset (ESIM_MODE_RESET: no output, input ignored); a shorter pulse
 *     does nothing.
 *   - ESIM_STRAP_DELAY_US after EN is released the chip samples GPIO0: low
 *     -> ROM download mode with its banner; high -> the app boots. The
 *     not_in_download_mode fault keeps GPIO0 high (the app always boots).
 * Lines start released (0,0). Changes take effect at now_us; the sampling
 * happens in esim_dev_advance() like any other event. Only RFC 2217 front
 * ends call this: ptys and raw TCP carry no DTR/RTS. */
void esim_dev_set_lines(esim_dev *d, uint64_t now_us, bool dtr, bool rts);
#define ESIM_EN_MIN_PULSE_US 50u  /* datasheet: CHIP_PU low >= 50 us resets */
#define ESIM_STRAP_DELAY_US 1000u /* EN's RC delay; GPIO0 must hold >= 1 ms after EN rises */

/* A front end's event for the device's event log (one line, at now_us). */
void esim_dev_note(esim_dev *d, uint64_t now_us, const char *what);

/* Introspection for tests and the CLI. */
esim_mode esim_dev_mode(const esim_dev *d);
esim_stub_flavour esim_dev_stub(const esim_dev *d); /* LEGACY/NEW in ESIM_MODE_STUB, else AUTO */
const uint8_t *esim_dev_flash(const esim_dev *d, size_t *size);
uint32_t esim_dev_read_reg(esim_dev *d, uint32_t addr); /* as READ_REG would answer */
bool esim_dev_idle(const esim_dev *d, uint64_t now_us); /* nothing queued, nothing running */

typedef struct esim_dev_stats {
  uint64_t rx_bytes, tx_bytes;     /* host bytes heard / device bytes handed out */
  uint64_t commands, replies;      /* requests processed / reply frames queued */
  uint64_t rx_dropped, rx_garbled, tx_garbled, rx_overflow;
  uint64_t erases, page_programs;
  uint64_t resets;                 /* esim_dev_reset calls and EN pulses that reset the chip */
} esim_dev_stats;
void esim_dev_get_stats(const esim_dev *d, esim_dev_stats *s);

/* Names for logs and JSON. */
const char *esim_mode_name(esim_mode m);
const char *esim_stub_name(esim_stub_flavour f);

/* Fault and timing specs (faults.c, timing.c). `err` gets a one-line reason
 * on failure. */
/* "md5_mismatch", "drop_rate=0.001", "disconnect_at=FLASH_DEFL_DATA:3" ... */
eg_err esim_fault_apply(esim_faults *f, const char *spec, char *err, size_t errlen);
/* "sector_erase_us=45000" (also "_ms" spellings, see README). */
eg_err esim_timing_apply(esim_timing *t, const char *key, const char *value, char *err, size_t errlen);
/* Opcode by name ("FLASH_DEFL_DATA", "flash_defl_data", "0x11"); -1 if unknown. */
int esim_op_by_name(const char *name);

/* A per-slot setting (README "Slot settings"): chip, revision, crystal,
 * rom_xtal, port, mac, flash_id, secure_download_mode, flash_encryption,
 * flash_crypt_cnt, secure_boot. Returns 1 when applied, 0 when `key` is not
 * a setting (a fault, then), -1 with `err` set on a bad value. */
int esim_setting_apply(esim_dev_opts *o, const char *key, const char *val, char *err, size_t errlen);
/* Whether the settings fit the chip (crystal, revision range, SDM only
 * where GET_SECURITY_INFO exists, a USB port the chip has...); `err` gets
 * the reason. esim_dev_new() refuses what this refuses. */
eg_err esim_dev_opts_check(const esim_dev_opts *o, char *err, size_t errlen);
bool esim_parse_mac(const char *s, uint8_t mac[6]);
int esim_port_kind_by_name(const char *s);
const char *esim_port_kind_name(esim_port_kind k);
/* Facts the front end reports per device. */
typedef struct esim_dev_info {
  const char *chip, *display;  /* "esp32c3", "ESP32-C3" */
  int rev_major, rev_minor, crystal_mhz;
  uint16_t usb_vid, usb_pid;   /* what the port would enumerate as */
  uint32_t bootloader_offset;
} esim_dev_info;
void esim_dev_get_info(const esim_dev *d, esim_dev_info *info);

#endif
