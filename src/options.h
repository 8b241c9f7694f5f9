/* options.h - the esptool-compatible choices shared by the CLI, the manifest
 * and the device state machine: --before, --after, stub and erase policy,
 * the timeout table (§2.2 of the protocol doc), and eg_settings: every knob
 * a job runs with, with the one set of defaults and limits that both the
 * manifest and the command line start from. Plain data.
 */
#ifndef EG_OPTIONS_H
#define EG_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum eg_before {
  EG_BEFORE_DEFAULT_RESET,  /* DTR/RTS reset strategies, then sync */
  EG_BEFORE_USB_RESET,      /* USB-JTAG-Serial sequence, then sync */
  EG_BEFORE_NO_RESET,       /* sync only */
  EG_BEFORE_NO_RESET_NO_SYNC /* nothing: the loader is assumed to be talking */
} eg_before;

typedef enum eg_after {
  EG_AFTER_HARD_RESET,    /* RTS pulse */
  EG_AFTER_SOFT_RESET,    /* ROM: run user code; not possible from the ESP32 stub */
  EG_AFTER_NO_RESET,      /* stay; a running stub is asked to return to the ROM */
  EG_AFTER_NO_RESET_STUB  /* leave the stub running */
} eg_after;

typedef enum eg_stub_mode {
  EG_STUB_AUTO, /* find an installed esptool-js / esptool stub; ROM-only if none */
  EG_STUB_PATH, /* a file or folder the user gave; failing to load it is an error */
  EG_STUB_NONE  /* ROM only (--no-stub) */
} eg_stub_mode;

typedef enum eg_erase_policy {
  EG_ERASE_WRITTEN, /* erase only what the images cover (esptool's default) */
  EG_ERASE_ALL      /* erase the whole chip first (esptool --erase-all) */
} eg_erase_policy;

/* Parse both esptool spellings ("default-reset", "default_reset").
 * Return false for an unknown name. */
bool eg_before_parse(const char *s, eg_before *out);
bool eg_after_parse(const char *s, eg_after *out);
bool eg_erase_parse(const char *s, eg_erase_policy *out);
const char *eg_before_name(eg_before b); /* dashed, v5 spelling */
const char *eg_after_name(eg_after a);
const char *eg_erase_name(eg_erase_policy e);

/* Timeouts in milliseconds (esptool defaults; every one overridable). */
typedef struct eg_timeouts {
  uint32_t command_ms;        /* DEFAULT_TIMEOUT 3 s */
  uint32_t sync_ms;           /* SYNC_TIMEOUT 0.1 s */
  uint32_t mem_end_ms;        /* MEM_END_ROM_TIMEOUT 0.2 s */
  uint32_t chip_erase_ms;     /* CHIP_ERASE_TIMEOUT 120 s */
  uint32_t max_ms;            /* MAX_TIMEOUT 240 s */
  uint32_t erase_per_mb_ms;   /* ERASE_REGION_TIMEOUT_PER_MB 30 s */
  uint32_t write_per_mb_ms;   /* ERASE_WRITE_TIMEOUT_PER_MB 40 s */
  uint32_t md5_per_mb_ms;     /* MD5_TIMEOUT_PER_MB 8 s */
  uint32_t read_packet_ms;    /* per READ_FLASH packet, 3 s */
  uint32_t port_back_ms;      /* a port that left the bus while connecting (a chip's own USB
                               * re-enumerating): waited for this long, once per unit; 10 s */
} eg_timeouts;

void eg_timeouts_default(eg_timeouts *t);
/* esptool's timeout_per_mb: per_mb * bytes / 1e6, at least `floor_ms`, at
 * most t->max_ms when t is non-NULL. */
uint32_t eg_timeout_per_mb(const eg_timeouts *t, uint32_t per_mb_ms, uint64_t bytes, uint32_t floor_ms);

/* Limits shared by the manifest and the command line. ESP32 UARTs top out
 * at APB 80 MHz / 16 = 5 Mbaud; below 9600 nothing would finish in time. */
#define EG_BAUD_MIN 9600u
#define EG_BAUD_MAX 5000000u
#define EG_CONNECT_ATTEMPTS 7      /* esptool's DEFAULT_CONNECT_ATTEMPTS */
#define EG_CONNECT_ATTEMPTS_MAX 100
#define EG_RETRIES_MAX 10

struct eg_chip;

/* What a job runs with, from a manifest or the command line. Strings that
 * come from the user are borrowed (stub_path); the flash fields are short
 * names held here. */
typedef struct eg_settings {
  const struct eg_chip *chip; /* expected chip; NULL = auto (whatever answers) */
  eg_before before;
  eg_after after;
  uint32_t baud;              /* transfer rate after CHANGE_BAUDRATE */
  uint32_t connect_baud;      /* SYNC rate */
  eg_stub_mode stub_mode;
  const char *stub_path;      /* EG_STUB_PATH */
  char flash_mode[16];        /* "keep" or qio/qout/dio/dout */
  char flash_freq[16];        /* "keep" or a frequency of the chip */
  char flash_size[16];        /* "keep", "detect" or a size */
  eg_erase_policy erase;
  bool verify;                /* MD5 after each write */
  bool skip_flashed;          /* MD5 first; skip regions that already hold the image (esptool v5) */
  int compress;               /* -1: when the stub runs (esptool's rule), 0 no, 1 yes */
  int retries;                /* extra attempts per unit */
  int connect_attempts;
  eg_timeouts timeouts;
} eg_settings;

/* esptool's defaults: default-reset / hard-reset, 460800 baud after a
 * 115200 connect, stub auto, flash mode/freq/size keep, erase what is
 * written, verify, compress with the stub, 7 connect attempts; plus
 * espgang's one retry per unit. */
void eg_settings_default(eg_settings *s);
bool eg_baud_in_range(uint32_t baud);

#endif
