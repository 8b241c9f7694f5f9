/* chips.h - the chip table: every fact espgang needs about each ESP chip, as
 * constant data, and the small pure functions that apply it.
 *
 * Contract:
 * - The table is constant and shared by every port; nothing here is mutable
 *   and nothing does I/O. Every function is pure and thread-safe.
 * - Per-chip differences are table columns. Where behaviour truly differs it
 *   is named by an enum column (revision rule, CHANGE_BAUDRATE rule, ...) and
 *   chips.c maps the enum to code in a `switch` without `default`, so adding
 *   a rule without handling it does not compile (-Wswitch-enum).
 * - A device identifies a chip in three steps, all driven by this table:
 *     1. detection: GET_SECURITY_INFO's chip id (eg_chip_by_chip_id) where the
 *        ROM has the command (rom_security_info_len != 0), else READ_REG
 *        EG_CHIP_MAGIC_REG (eg_chip_by_magic);
 *     2. READ_REG of every address eg_chip_ident_regs() lists, in order
 *        (not in Secure Download Mode: esptool reads no eFuses there);
 *     3. eg_chip_decode() of the values read -> eg_chip_ident (MAC, revision,
 *        description as esptool prints it, crystal, SPI_ATTACH argument,
 *        flash encryption / secure boot), then eg_chip_rom_baud_value() for
 *        the ROM's CHANGE_BAUDRATE and eg_chip_check_image() for each image.
 * - Sources: every fact carries its source next to it in chips.c (esptool
 *   v5.3.1 file:line, esptool-js 0.7.0 lib/ file:line, or the shared docs
 *   chip-family-facts.md / esp-serial-protocol.md). Where esptool-js and
 *   esptool disagree, the table follows esptool (see
 *   tests/esptool-js/chip-oracle.mjs for the list).
 * - Pointers returned (chips, names, scripts) point into static storage and
 *   live forever. Functions taking an eg_chip never accept NULL unless said.
 */
#ifndef EG_CHIPS_H
#define EG_CHIPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Table order; values are array indexes (stubs[] etc. are indexed by them),
 * so new chips are appended. */
typedef enum eg_chip_id {
  EG_CHIP_ESP8266,
  EG_CHIP_ESP32,
  EG_CHIP_ESP32S2,
  EG_CHIP_ESP32S3,
  EG_CHIP_ESP32C3,
  EG_CHIP_ESP32C6,
  EG_CHIP_ESP32H2,
  EG_CHIP_ESP32C2,
  EG_CHIP_ESP32C5,
  EG_CHIP_ESP32C61,
  EG_CHIP_ESP32P4,
  EG_CHIP__COUNT
} eg_chip_id;

/* ------------------------------------------------------------------ data types */

/* A bit field of a register: (READ_REG(addr) >> shift) & ((1 << width) - 1).
 * width 0 = no such field. */
typedef struct eg_bits {
  uint32_t addr;
  uint8_t shift, width;
} eg_bits;

/* A value made of up to two bit fields: (hi << lo.width) | lo. esptool's
 * "hi_num_word"/"low_num_word" minor revisions and the P4 major are such
 * pairs; most fields use lo only. */
typedef struct eg_field {
  eg_bits hi, lo;
} eg_field;

/* SPI1 registers used to run a user command such as RDID (0x9F), §5.1. */
typedef struct eg_spi_regs {
  uint32_t base;
  uint32_t cmd, addr, usr, usr1, usr2; /* absolute addresses */
  uint32_t mosi_dlen, miso_dlen;       /* 0 when lengths live in USR1 (ESP8266) */
  uint32_t w0;
} eg_spi_regs;

/* One (name, code) pair of an image-header table. */
typedef struct eg_code {
  const char *name; /* "4MB", "80m", "dio" */
  uint8_t code;
} eg_code;

/* One package name: matches when pkg == the package field, sub (-1 = any)
 * == the sub-package field and major (-1 = any) == the major revision. The
 * first match wins; no match gives "Unknown <chip name>" as esptool does. */
typedef struct eg_pkg_name {
  int16_t pkg, sub, major;
  const char *name;
} eg_pkg_name;

/* One step of a register script, run in order by the device (each step is
 * one command; waits are timers). */
typedef enum eg_regw_kind {
  EG_REGW_WRITE,      /* WRITE_REG(addr, value, mask, 0) */
  EG_REGW_SET_BITS,   /* v = READ_REG(addr); WRITE_REG(addr, v | value, 0xFFFFFFFF, 0) (esptool does it on the host) */
  EG_REGW_CLEAR_BITS, /* v = READ_REG(addr); WRITE_REG(addr, v & ~value, 0xFFFFFFFF, 0) */
  EG_REGW_DELAY_US    /* wait `value` microseconds (round up to the timer's resolution) */
} eg_regw_kind;

typedef struct eg_regwrite {
  eg_regw_kind kind;
  uint32_t addr, value, mask;
  bool ignore_error; /* a refused or lost reply is not a failure (esptool's try/except) */
} eg_regwrite;

typedef struct eg_regscript {
  const eg_regwrite *ops;
  size_t n; /* 0: the chip has no such script */
} eg_regscript;

/* How the port reaches the chip, as the host sees it (USB VID:PID). */
typedef enum eg_usb_mode {
  EG_USB_NONE,        /* a USB-UART bridge, a UART, or unknown */
  EG_USB_SERIAL_JTAG, /* the chip's USB-Serial/JTAG: 303A:1001 */
  EG_USB_OTG,         /* the chip's USB-OTG CDC: 303A:<IMAGE_CHIP_ID> */
  EG_USB__COUNT
} eg_usb_mode;

/* What "hard reset" means for a chip on a port kind (esptool hard_reset()). */
typedef enum eg_hard_reset {
  EG_HARD_RESET_CLASSIC,   /* RTS=1, 100 ms, RTS=0 (reset.py HardReset) */
  EG_HARD_RESET_USB,       /* RTS=1, 200 ms, RTS=0, 200 ms (HardReset uses_usb) */
  EG_HARD_RESET_WATCHDOG,  /* run the chip's wdt_reset script */
  EG_HARD_RESET_OTG_STRAPS /* read otg_strap / otg_option1, then eg_chip_otg_reset() decides */
} eg_hard_reset;

/* Rules: which code applies a column (see chips.c for each). */
typedef enum eg_mac_rule {
  EG_MAC_EFUSE,      /* a = [mac_reg], b = [mac_reg + 4]: b[15:8] b[7:0] a[31:0] MSB first */
  EG_MAC_ESP8266_OTP /* MAC0..3 = efuse_base + 0..12: OUI from MAC3 or MAC1[23:16], then MAC1[15:0], MAC0[31:24] */
} eg_mac_rule;

typedef enum eg_rev_rule {
  EG_REV_NONE,   /* ESP8266: esptool prints no revision */
  EG_REV_FIELDS, /* major / minor eFuse fields */
  EG_REV_ESP32,  /* major from three sources (rev_aux[0..2]), minor field */
  EG_REV_ESP32S3 /* fields, both 0 on ECO0 (rev_aux[0] = blk major, [1] = blk minor) */
} eg_rev_rule;

typedef enum eg_desc_rule {
  EG_DESC_PACKAGE, /* pkg_names[] by package (+ sub-package, major) */
  EG_DESC_ESP8266  /* ESP8266EX or ESP8285 variants from OTP bits */
} eg_desc_rule;

typedef enum eg_xtal_rule {
  EG_XTAL_FIXED,   /* xtal_mhz */
  EG_XTAL_ESTIMATE /* from UART_CLKDIV and the line rate (esptool get_crystal_freq) */
} eg_xtal_rule;

typedef enum eg_rom_baud_rule {
  EG_ROM_BAUD_NONE,         /* ROM has no CHANGE_BAUDRATE (ESP8266): keep the sync rate */
  EG_ROM_BAUD_PLAIN,        /* send the rate */
  EG_ROM_BAUD_ESP32_RTC,    /* baud * f_rom / f_valid from the RTC calibration */
  EG_ROM_BAUD_XTAL26_AS_40, /* ESP32-C2: ROM assumes 40 MHz; 26 MHz crystal -> baud * 40 / 26 */
  EG_ROM_BAUD_XTAL_EXPECT   /* ESP32-C5: ROM's expected crystal vs detected (40/48) */
} eg_rom_baud_rule;

typedef enum eg_attach_rule {
  EG_ATTACH_ZERO,       /* ROM SPI_ATTACH(0) */
  EG_ATTACH_ESP32_PADS, /* ROM SPI_ATTACH(pads from eFuse); 0 in Secure Download Mode */
  EG_ATTACH_FLASH_BEGIN /* ESP8266 ROM: no SPI_ATTACH, FLASH_BEGIN(0, 0) instead; no SPI_SET_PARAMS */
} eg_attach_rule;

typedef enum eg_flash_power_rule {
  EG_FLASH_POWER_NONE,
  EG_FLASH_POWER_P4_ECO6 /* ESP32-P4 v3.1/v3.2: power the flash before attaching */
} eg_flash_power_rule;

/* ------------------------------------------------------------------ the row */

typedef struct eg_chip {
  eg_chip_id id;
  const char *name;     /* "ESP32-S3", as esptool prints it */
  const char *arg_name; /* "esp32s3", as --chip takes it and stub files are named */

  /* Detection. */
  const uint32_t *magic; /* values READ_REG(EG_CHIP_MAGIC_REG) may return */
  size_t nmagic;
  bool magic_primary;    /* esptool USES_MAGIC_VALUE: detected by magic, not chip id */
  int chip_id;           /* GET_SECURITY_INFO / image header chip id, -1 if none */
  uint8_t rom_security_info_len; /* GET_SECURITY_INFO reply data bytes: 0 (no command), 12 (S2), 20 */

  /* ROM loader protocol. */
  uint8_t rom_status_len;      /* 4, or 2 (ESP8266) */
  bool rom_begin_encrypt_word; /* ROM FLASH_BEGIN / FLASH_DEFL_BEGIN take the 5th word */
  bool rom_has_security_info;  /* == (rom_security_info_len != 0), kept for callers */
  bool rom_deflate;            /* ROM has FLASH_DEFL_* (not ESP8266) */
  bool rom_md5;                /* ROM has SPI_FLASH_MD5 (not ESP8266) */
  bool rom_read_flash_slow;    /* ROM has READ_FLASH_SLOW (not ESP8266) */
  bool rom_erase_size_bug;     /* ROM FLASH_BEGIN erase size needs eg_chip_rom_erase_size() */
  eg_attach_rule rom_attach;
  bool rom_spi_set_params;     /* ROM takes SPI_SET_PARAMS (not ESP8266: skipped, ET targets/esp8266.py:122-125) */
  eg_rom_baud_rule rom_baud;
  bool rom_baud_in_sdm;        /* CHANGE_BAUDRATE allowed in Secure Download Mode (not C2, C5) */

  /* Flash and images. */
  uint32_t bootloader_offset;
  uint32_t rom_write_block, stub_write_block, ram_block;
  uint32_t usb_otg_block;   /* RAM and stub write block on USB-OTG; 0 = no USB-OTG */
  uint8_t enc_write_align;  /* encrypted writes pad to this (ESP32 32, others 16) */
  bool enc_write;           /* encrypted writes possible at all (not ESP8266) */
  bool rom_enc_write;       /* ... through the ROM loader (not ESP32: stub only) */
  eg_spi_regs spi;
  bool spi_addr_msb;        /* SPI sends addresses from bit 31 (ESP8266, ESP32) */
  const eg_code *flash_sizes; size_t nflash_sizes; /* header byte 3 high nibble */
  const eg_code *flash_freqs; size_t nflash_freqs; /* header byte 3 low nibble */
  bool image_check;         /* esptool checks image chip id / revision (not ESP8266) */
  bool legacy_min_rev_minor;/* legacy min_rev byte is the minor revision (ESP32-C3) */
  eg_flash_power_rule flash_power;

  /* Identity (eFuse and friends). */
  uint32_t efuse_base;  /* eFuse block base (ESP8266: OTP words) */
  eg_mac_rule mac_rule;
  uint32_t mac_reg;     /* EG_MAC_EFUSE: a; b is mac_reg + 4. 0 for the OTP rule (MAC0 at efuse_base) */
  bool mac_eui64;       /* esptool builds an EUI-64 from b[31:16] (C6, H2, C5) */
  eg_rev_rule rev_rule;
  eg_field rev_major, rev_minor;
  eg_bits rev_aux[3];   /* inputs of EG_REV_ESP32 / EG_REV_ESP32S3 (see the rule) */
  eg_desc_rule desc_rule;
  eg_field pkg;         /* package field */
  eg_bits pkg_sub;      /* sub-package field (S2 PSRAM, C6 flash, ESP32 single core) */
  const eg_pkg_name *pkg_names; size_t npkg_names;
  eg_xtal_rule xtal_rule;
  uint8_t xtal_mhz;          /* EG_XTAL_FIXED */
  uint8_t xtal_clk_divider;  /* UART clock = xtal / this (ESP8266: 2) */
  uint32_t uart_clkdiv_reg;  /* UART0 CLKDIV; read only when the crystal is estimated */
  uint32_t rtc_cali_reg;     /* EG_ROM_BAUD_ESP32_RTC: RTCCALICFG1 */
  eg_bits rom_ck8m;          /* EG_ROM_BAUD_ESP32_RTC: eFuse CK8M frequency */
  eg_bits rom_xtal_expect;   /* EG_ROM_BAUD_XTAL_EXPECT: crystal the ROM assumes, MHz */
  eg_bits spi_pads[5];       /* EG_ATTACH_ESP32_PADS: clk, q, d, cs, hd */
  /* Security as esptool reads it outside Secure Download Mode. */
  eg_bits crypt_cnt;         /* flash encryption on when popcount is odd */
  eg_bits secure_boot;       /* secure boot on when set */
  eg_bits secure_boot_rev3;  /* ESP32: ABS_DONE_1 counts from revision v3.0 */
  eg_bits dl_encrypt_disabled; /* DIS_DOWNLOAD_MANUAL_ENCRYPT */
  eg_bits flash_xpd_on;      /* EG_FLASH_POWER_P4_ECO6: DOWNLOAD_MODE_XPD_ON */

  /* USB, watchdogs, resets. */
  bool usb_serial_jtag;       /* the chip has a USB-Serial/JTAG port */
  uint8_t usb_pins[2];        /* GPIOs of its USB port (esptool warns about them); 0,0 none */
  uint32_t uartdev_buf_no;    /* ROM variable: which port the ROM talks on (esptool-js); 0 unknown */
  uint32_t uartdev_buf_no_rev3; /* P4 from v3.0; 0 = same as uartdev_buf_no */
  int8_t uartdev_otg, uartdev_jtag; /* its values for USB-OTG / USB-Serial/JTAG; -1 unknown */
  /* Run after detection only on a USB-Serial/JTAG port, not in Secure
   * Download Mode and not when SYNC found a stub already running (esptool
   * _post_connect); n 0: nothing to do. */
  eg_regscript wdt_disable;
  /* --after watchdog-reset and EG_HARD_RESET_WATCHDOG; n 0 (and in Secure
   * Download Mode): a classic hard reset instead (ET cmds.py:2439-2447). */
  eg_regscript wdt_reset;
  eg_regscript hard_reset_prefix; /* before any hard reset, errors ignored (S3) */
  eg_hard_reset hard_reset[EG_USB__COUNT]; /* by eg_usb_mode */
  uint32_t otg_strap_reg, otg_strap_mask;     /* EG_HARD_RESET_OTG_STRAPS: GPIO strap, "SPI boot" bit */
  uint32_t otg_option1_reg, otg_option1_mask; /* ... RTC OPTION1, "force download boot" bit */

  /* Stub. */
  const char *stub_old;       /* stub name below stub_old_below_major (P4: "esp32p4-rev1"); NULL none */
  uint8_t stub_old_below_major;
  bool no_stub_secure_boot;   /* no stub when secure boot is on (C3) */
  bool no_stub_rev0;          /* no stub on revision v0.0 (C2 ECO0) */
  /* Secure boot on: the ROM will not run MEM_END's entry (S3 ROM bug).
   * Instead: MEM_END(0, 0); old = READ_REG(ptr); WRITE_REG(ptr, entry);
   * READ_FLASH_SLOW(0, 0) without waiting for its reply; after "OHAI",
   * WRITE_REG(ptr, old). 0 = no such workaround. */
  uint32_t stub_sb_entry_ptr;
} eg_chip;

/* The magic-value register every ESP ROM answers READ_REG for. */
#define EG_CHIP_MAGIC_REG 0x40001000u

/* ESP32 registers (§4.3, §8.3); kept for callers that read them directly. */
#define EG_ESP32_EFUSE_WORD(n) (0x3FF5A000u + 4u * (n))
#define EG_ESP32_APB_CTL_DATE 0x3FF6607Cu
#define EG_ESP32_RTC_CALI_REG 0x3FF5F06Cu /* ROM's CK8M calibration, for CHANGE_BAUDRATE */

/* ------------------------------------------------------------------ lookup */

/* NULL when unknown. */
const eg_chip *eg_chip_get(eg_chip_id id);
const eg_chip *eg_chip_by_name(const char *name); /* "esp32", "ESP32-S3", "esp32-s3"; NULL ok */
const eg_chip *eg_chip_by_magic(uint32_t magic);
const eg_chip *eg_chip_by_chip_id(int chip_id);
/* "esp8266, esp32, esp32s2, ..." (arg names in table order, joined by sep)
 * into buf; returns buf. Truncated to cap - 1 characters. */
char *eg_chip_names(char *buf, size_t cap, const char *sep);

/* ------------------------------------------------------------------ identity */

/* Upper bound of eg_chip_ident_regs() for any chip. */
#define EG_CHIP_IDENT_MAX 16

/* What the chip said about itself, decoded. */
typedef struct eg_chip_ident {
  const eg_chip *chip;
  bool has_mac;           /* false only when the ESP8266 OTP has an unknown OUI */
  uint8_t mac[6];         /* base MAC, as esptool's MAC: line */
  bool has_mac_ext;       /* C6, H2, C5: EUI-64 = mac[0..2], mac_ext[0..1], mac[3..5] */
  uint8_t mac_ext[2];
  bool has_rev;           /* false on ESP8266 (no revision) */
  int rev_major, rev_minor;
  int pkg;                /* package field (ESP8266: 0) */
  char desc[64];          /* "ESP32-D0WDQ6-V3 (revision v3.0)", "ESP32-C3 (QFN32) (revision v0.3)" */
  int crystal_mhz;        /* 26, 32, 40, 48; 0 when estimated and the line rate is unknown */
  int rom_xtal_expect_mhz;/* C5: the crystal the ROM assumes; 0 elsewhere */
  uint64_t rom_cal_x40;   /* ESP32: the ROM's crystal estimate x 40, in Hz (0: no data) */
  uint32_t spi_attach_arg;/* ROM SPI_ATTACH argument outside Secure Download Mode */
  uint32_t flash_crypt_cnt;
  bool flash_encryption;  /* popcount(flash_crypt_cnt) odd */
  bool secure_boot;
  bool dl_encrypt_disabled;
  bool flash_xpd_on;      /* P4: DOWNLOAD_MODE_XPD_ON eFuse */
} eg_chip_ident;

/* The registers to READ_REG after detection, in order, into addrs (at most
 * cap); returns how many there are (<= EG_CHIP_IDENT_MAX), even when more
 * than cap. Each address appears once. */
size_t eg_chip_ident_regs(const eg_chip *c, uint32_t *addrs, size_t cap);
/* Decode vals[i] = READ_REG(addrs[i]) of eg_chip_ident_regs(c). baud: the
 * line rate the ROM answered at (for the crystal estimate); 0 if unknown
 * (e.g. a raw TCP socket), then an estimated crystal is 0. */
void eg_chip_decode(const eg_chip *c, const uint32_t *vals, uint32_t baud, eg_chip_ident *out);
/* The inverse, for a simulated chip: what it should answer to the identity
 * reads so that eg_chip_decode() (and esptool) report these facts. */
typedef struct eg_chip_sim {
  uint8_t mac[6];
  uint8_t mac_ext[2];       /* EUI-64 middle bytes, where the chip has them (real chips: ff:fe) */
  int rev_major, rev_minor; /* ESP32: major 0..3; others as wide as their fields */
  int pkg, pkg_sub;         /* package fields (ESP8266: ignored, an ESP8266EX) */
  int crystal_mhz;          /* estimated chips: gives the UART divider at `baud` */
  int rom_xtal_expect_mhz;  /* C5: the crystal its ROM assumes */
  bool flash_encryption, secure_boot;
} eg_chip_sim;
/* vals[i] answers READ_REG(addrs[i]) of eg_chip_ident_regs(c); values wider
 * than their eFuse field are cut to it. The ESP32's RTC calibration words are
 * 0 (a simulator models its own clock drift). */
void eg_chip_encode(const eg_chip *c, const eg_chip_sim *f, uint32_t baud, uint32_t *vals);

/* Revision as esptool compares it: major * 100 + minor. */
static inline int eg_chip_rev(const eg_chip_ident *id) { return id->rev_major * 100 + id->rev_minor; }

/* The value to put in the ROM's CHANGE_BAUDRATE so the line runs at `baud`
 * (old-baud word 0). 0 when the ROM cannot change its rate (ESP8266: stay at
 * the sync rate). Not for a stub: a stub gets `baud` (and the current rate). */
uint32_t eg_chip_rom_baud_value(const eg_chip *c, const eg_chip_ident *id, uint32_t baud);

/* Stub JSON base name ("esp32c3"; P4 below v3.0: "esp32p4-rev1"). id may be
 * NULL (then the current one, arg_name). */
const char *eg_chip_stub_name(const eg_chip *c, const eg_chip_ident *id);

/* May the stub be uploaded? false with the reason (esptool's warning) in
 * *why when esptool would not: Secure Download Mode, C3 with secure boot,
 * C2 v0.0. id may be NULL (only the SDM rule then). */
bool eg_chip_stub_allowed(const eg_chip *c, const eg_chip_ident *id, bool sdm, const char **why);

/* P4 v3.1/v3.2 flash power-up before SPI_ATTACH (esptool power_on_flash);
 * n 0 when nothing is to be done. Not in Secure Download Mode. */
eg_regscript eg_chip_flash_power_script(const eg_chip *c, const eg_chip_ident *id);

/* ------------------------------------------------------------------ flash */

/* Header codes for this chip; -1 when the chip has no such size/frequency. */
int eg_chip_size_code(const eg_chip *c, const char *size_name);
int eg_chip_freq_code(const eg_chip *c, const char *freq_name);
/* Block sizes by loader and port: FLASH_DATA / FLASH_DEFL_DATA and MEM_DATA. */
uint32_t eg_chip_write_block(const eg_chip *c, bool stub, eg_usb_mode usb);
uint32_t eg_chip_ram_block(const eg_chip *c, eg_usb_mode usb);
/* ROM FLASH_BEGIN erase size for writing `size` bytes at `offset` (the
 * ESP8266 ROM erase bug workaround); `size` on every other chip. */
uint32_t eg_chip_rom_erase_size(const eg_chip *c, uint32_t offset, uint32_t size);

/* esptool's write-flash check of one image against the connected chip
 * (cmds.py write_flash): hdr is the image's first bytes, len how many. Call it
 * only for data that parses as a firmware image (image.c's parser, as
 * esptool's LoadFirmwareImage: what does not parse is not checked), and not
 * in Secure Download Mode (no revision) or with --force. */
typedef enum eg_image_check {
  EG_IMAGE_OK,
  EG_IMAGE_NOT_CHECKED, /* ESP8266, or hdr shorter than the 24-byte header / not 0xE9 */
  EG_IMAGE_WRONG_CHIP,  /* chip id in the header is not this chip's */
  EG_IMAGE_WRONG_REV    /* revision outside what the header allows */
} eg_image_check;
eg_image_check eg_chip_check_image(const eg_chip *c, const uint8_t *hdr, size_t len, int rev_major, int rev_minor,
                                   char *why, size_t whylen);

/* ------------------------------------------------------------------ USB, resets */

/* The port kind from the host's USB VID:PID (-1 when not USB). For USB-OTG
 * *otg_chip (may be NULL) is the chip the PID names; otherwise NULL. */
eg_usb_mode eg_chip_usb_mode(int vid, int pid, const eg_chip **otg_chip);
/* The port kind from the ROM's UARTDEV_BUF_NO value (low byte compared, as
 * esptool-js); EG_USB_NONE when unknown for this chip. */
eg_usb_mode eg_chip_usb_mode_from_uartdev(const eg_chip *c, uint32_t value);
/* The UARTDEV_BUF_NO address for this chip (and revision: P4); 0 unknown. */
uint32_t eg_chip_uartdev_buf_no(const eg_chip *c, const eg_chip_ident *id);
/* The hard reset for this chip on this port kind. */
eg_hard_reset eg_chip_hard_reset(const eg_chip *c, eg_usb_mode usb);
/* EG_HARD_RESET_OTG_STRAPS resolved from READ_REG(otg_strap_reg) and
 * READ_REG(otg_option1_reg), as esptool does: WATCHDOG when the strap's
 * SPI-boot bit is clear (GPIO0 held low) and download mode is not forced
 * over USB (OPTION1 bit clear); USB (the 200 ms RTS reset) otherwise. */
eg_hard_reset eg_chip_otg_reset(const eg_chip *c, uint32_t strap, uint32_t option1);

/* ------------------------------------------------------------------ shared helpers */

/* Flash mode codes (byte 2 of the header): qio 0, qout 1, dio 2, dout 3.
 * Returns -1 for an unknown name. */
int eg_flash_mode_code(const char *name);
const char *eg_flash_mode_name(int code);

/* Flash size in bytes from a size name ("4MB", "512KB"); 0 when unknown. */
uint32_t eg_flash_size_bytes(const char *size_name);
/* "4MB" etc. for a byte count that is a table size; NULL otherwise. */
const char *eg_flash_size_name(uint32_t bytes);

/* Flash size from a JEDEC RDID value (id = mfr | type << 8 | capacity << 16)
 * per §5.2; 0 when the ID is unknown or means "no flash". */
uint32_t eg_flash_size_from_jedec(uint32_t id);
bool eg_jedec_is_absent(uint32_t id);

/* ------------------------------------------------------------------ ESP32 (legacy API)
 * Kept for existing callers; implemented on the table. words[n] = READ_REG(EFUSE_WORD(n)). */
void eg_esp32_mac(uint32_t word1, uint32_t word2, uint8_t mac[6]);
int eg_esp32_major_rev(uint32_t word3, uint32_t word5, uint32_t apb_ctl_date);
int eg_esp32_minor_rev(uint32_t word5);
int eg_esp32_package(uint32_t word3);
const char *eg_esp32_package_name(int pkg, int major_rev); /* dual-core names */
/* SPI_ATTACH argument from the SPI pad eFuses (0 = default pins). */
uint32_t eg_esp32_spi_pads(uint32_t word3, uint32_t word5);
/* Crystal in MHz from the UART divider and the current baud; the chip's fixed
 * crystal when esptool does not estimate it. */
int eg_crystal_mhz(const eg_chip *c, uint32_t baud, uint32_t uart_clkdiv);
/* The ESP32 ROM CHANGE_BAUDRATE value (§8.3): baud * f_rom / f_valid.
 * rtc_cali = READ_REG(0x3FF5F06C), efuse_word4 = READ_REG(EFUSE_WORD(4)). */
uint32_t eg_esp32_rom_baud_value(uint32_t baud, uint32_t rtc_cali, uint32_t efuse_word4);

#endif
