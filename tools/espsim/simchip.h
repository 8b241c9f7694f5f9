/* simchip.h - what espsim knows about each chip, as one table row per chip
 * (simchip.c), and the encoder that turns a device's identity (MAC,
 * revision, security state) into the eFuse words the ROM shows to
 * READ_REG. Internal to the device model.
 *
 * Contract
 *   - esim_chip_resolve() never fails (an invalid id gives the ESP32); the
 *     rows are constant; shared facts come from espgang's chip table.
 *   - Facts come with their source in simchip.c (esptool v5.3.1 target
 *     files and line numbers, esptool-js 0.7.0, the genuine transcripts, or
 *     /work/shared/docs/chip-family-facts.md); a value that no source gives
 *     says so and why it was chosen.
 *   - The eFuse encoder is espsim's own code: it places bits as the
 *     decoders in esptool describe them, so a wrong decoder in espgang
 *     cannot hide behind a shared function.
 */
#ifndef ESIM_SIMCHIP_H
#define ESIM_SIMCHIP_H

#include <stdbool.h>
#include <stdint.h>

#include "chips.h"
#include "simdev.h"

/* Which mask-ROM loader generation: command set, reply layout, banner. */
typedef enum esim_rom_gen {
  ESIM_ROM_ESP8266, /* 2 status bytes, no DEFL/MD5/baud/attach, erase-size bug */
  ESIM_ROM_ESP32,   /* 4 status bytes, all written; no GET_SECURITY_INFO */
  ESIM_ROM_LATER    /* S2 and later: GET_SECURITY_INFO; 4 status bytes of which 2 are written */
} esim_rom_gen;

/* What the ROM believes its crystal is when it computes a CHANGE_BAUDRATE
 * divider. */
typedef enum esim_baud_belief {
  ESIM_BELIEF_TRUE,     /* the real crystal: the requested rate comes out */
  ESIM_BELIEF_RTC_CALI, /* ESP32: its CK8M-calibrated estimate (--rom-clock-error) */
  ESIM_BELIEF_40MHZ,    /* ESP8266, ESP32-C2: always 40 MHz */
  ESIM_BELIEF_EXPECTED  /* ESP32-C5: PCR_SYSCLK_CONF's expected crystal (opts.rom_xtal_mhz) */
} esim_baud_belief;

typedef enum esim_mac_style {
  ESIM_MAC_ESP8266, /* OTP MAC0/MAC1/MAC3 */
  ESIM_MAC_ESP32,   /* eFuse words 1/2 with the CRC8 in word 2 [23:16] */
  ESIM_MAC_WORDS    /* MAC_REG = m2..m5, MAC_REG+4 = m0 m1 (| EUI-64 extension << 16) */
} esim_mac_style;

/* Bits [vlsb, vlsb + width) of a field's value live at addr [lsb, lsb + width). */
typedef struct esim_bits {
  uint32_t addr; /* 0 = unused piece */
  uint8_t lsb, width, vlsb;
} esim_bits;

#define ESIM_FIELD_PIECES 3
typedef struct esim_field {
  esim_bits p[ESIM_FIELD_PIECES];
} esim_field;

typedef struct esim_stub_addrs {
  uint32_t text, data, entry; /* 0 = no such stub */
} esim_stub_addrs;

typedef struct esim_reg_const {
  uint32_t addr, value;
} esim_reg_const;

/* One chip. The fields marked [wire] come from espgang's chip table
 * (src/chips.c) through esim_chip_resolve(); the static rows leave them 0. */
typedef struct esim_chip {
  esim_chip_id id;
  eg_chip_id eg;       /* its row in espgang's chip table */
  const char *name;    /* [wire] "esp32c3" */
  const char *display; /* [wire] "ESP32-C3" */
  esim_rom_gen rom;
  uint32_t magic;      /* [wire] READ_REG(0x40001000) */
  uint8_t sec_info_len; /* [wire] GET_SECURITY_INFO payload: 0 (ROM lacks it), 12 (S2) or 20 */
  uint32_t chip_id;     /* [wire] */
  uint32_t api_version;
  uint8_t key_purposes[7];

  /* UART and crystal */
  uint32_t uart_clkdiv_reg; /* [wire] */
  uint8_t uart_clk_mult;    /* [wire] UART clock = crystal x this (ESP8266: 2, esptool XTAL_CLK_DIVIDER) */
  uint8_t xtal_default, xtal_alt; /* MHz; xtal_alt 0 = only the default */
  esim_baud_belief belief;
  uint32_t rtc_cali_reg;    /* [wire] ESP32: the RTC calibration esptool reads */
  uint32_t rom_xtal_reg;    /* [wire] C5: PCR_SYSCLK_CONF, [30:24] = the crystal the ROM expects */

  /* SPI1 / SPI_MEM1: absolute base, register offsets */
  uint32_t spi_base;        /* [wire] */
  uint8_t spi_usr, spi_usr1, spi_usr2, spi_mosi_dlen, spi_miso_dlen, spi_w0; /* [wire] dlen 0: lengths in USR1 */
  bool spi_addr_msb;        /* [wire] the address sits in ADDR's top bits (ESP32, ESP8266) */
  uint32_t spi_usr_idle, spi_usr2_idle; /* USR / USR2 after reset */
  uint32_t spi_usr_read, spi_usr2_read; /* ... after the ROM's SPIRead */

  /* eFuse */
  esim_mac_style mac_style;
  uint32_t mac_reg;         /* [wire] (ESP8266: MAC0) */
  uint16_t mac_ext;         /* EUI-64 bytes 3-4 in MAC_REG+4 [31:16] (C5, C6, H2) */
  esim_field major, minor, pkg, crypt_cnt, secure_boot;
  const uint8_t *major_code; /* value written for major 0..3 (ESP32's code table); NULL = the number */
  uint8_t rev_major, rev_minor; /* defaults */
  const esim_reg_const *consts; /* fixed register values (e.g. ESP32 CK8M, strap) */
  uint8_t nconsts;

  /* RAM that MEM_BEGIN accepts, [start, end) */
  uint32_t ram[5][2];

  /* Flasher stubs: esptool set 1 (legacy) and set 2 (esp-flasher-stub); P4
   * has a second set-2 build for revision >= 3.0. */
  esim_stub_addrs stub1, stub2, stub2_v3;

  uint32_t bootloader_offset; /* [wire] */

  /* Boot log pieces */
  const char *rom_header; /* printed first after a reset ("ets Jul 29 2019 12:21:46\r\n\r\n") */
  const char *boot_dl;    /* "0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))" */
  const char *boot_spi;   /* "0x13 (SPI_FAST_FLASH_BOOT)" */

  /* USB */
  bool usb_jtag, usb_otg;   /* [wire] */
  uint16_t otg_pid;         /* [wire] 303a:PID of the ROM's USB-OTG CDC (IMAGE_CHIP_ID) */
  uint32_t uartdev_buf_no;  /* [wire] ROM .bss variable naming the console port; 0 = not modelled */
  uint8_t buf_no_jtag, buf_no_otg; /* [wire] unless the row sets them */

  /* RTC watchdog (esptool's watchdog reset), 0 = none */
  uint32_t wdt_config0, wdt_config1, wdt_wprotect;
  uint32_t option1_reg, option1_force_dl; /* [wire] RTC_CNTL_OPTION1 FORCE_DOWNLOAD_BOOT */
  uint32_t strap_reg;       /* [wire] GPIO_STRAP: bit 3 = 1 unless download strapping */
} esim_chip;

/* The chip's row with the [wire] facts filled in from espgang's table. */
void esim_chip_resolve(esim_chip_id id, esim_chip *out);

/* The chip's register image: every eFuse word and fixed register READ_REG
 * shows, encoded from the device options. */
#define ESIM_REGIMG_MAX 24
typedef struct esim_regimg {
  uint32_t addr[ESIM_REGIMG_MAX], val[ESIM_REGIMG_MAX];
  unsigned n;
} esim_regimg;

void esim_chip_encode(const esim_chip *c, const esim_dev_opts *o, int major, int minor, esim_regimg *img);
/* Look up an address; false if the image does not hold it. */
bool esim_regimg_get(const esim_regimg *img, uint32_t addr, uint32_t *val);

/* The stub set MEM_* loaded: NEW (esp-flasher-stub) or LEGACY, from the
 * addresses seen (README "Stubs"). */
esim_stub_flavour esim_chip_stub_flavour(const esim_chip *c, bool seen_legacy, bool seen_new, uint32_t entry);
/* Does this load address belong to the chip's legacy / new stub? */
bool esim_chip_addr_is_legacy(const esim_chip *c, uint32_t addr);
/* A stub built for other revisions of this chip (ESP32-P4: esp32p4.json is
 * for v3.0 and later, esp32p4-rev1.json below; esptool targets/esp32p4.py
 * stub_json_name). It calls ROM functions at addresses this revision does
 * not have: modelled as an exception and a reset (assumed), like a jump to
 * 0. */
bool esim_chip_stub_wrong_rev(const esim_chip *c, uint32_t entry, int rev_major);
bool esim_chip_addr_is_new(const esim_chip *c, uint32_t addr);

/* 8-bit CRC of the ESP32 MAC (espefuse calc_crc). */
uint8_t esim_mac_crc8(const uint8_t mac[6]);

#endif
