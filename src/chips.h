/* chips.h - the chip table: facts about each ESP chip as data.
 * Sources: ../shared/docs/esp-serial-protocol.md §2.1, §4, §5, §6.3 and
 * the esptool targets sources (read, not copied). ESP32 is complete; the other
 * chips carry the detection, SPI and image-header facts the doc gives.
 *
 * The table is constant and shared by every port; nothing here is mutable.
 */
#ifndef EG_CHIPS_H
#define EG_CHIPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum eg_chip_id {
  EG_CHIP_ESP8266,
  EG_CHIP_ESP32,
  EG_CHIP_ESP32S2,
  EG_CHIP_ESP32S3,
  EG_CHIP_ESP32C3,
  EG_CHIP_ESP32C6,
  EG_CHIP_ESP32H2,
  EG_CHIP_ESP32C2,
  EG_CHIP__COUNT
} eg_chip_id;

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

typedef struct eg_chip {
  eg_chip_id id;
  const char *name;      /* "ESP32-S3", as esptool prints it */
  const char *arg_name;  /* "esp32s3", as --chip takes it and stub files are named */
  const uint32_t *magic; /* values READ_REG(0x40001000) may return; NULL-terminated by nmagic */
  size_t nmagic;
  int chip_id;           /* GET_SECURITY_INFO / image chip id, -1 if none */
  uint32_t bootloader_offset;
  uint8_t rom_status_len;   /* 4 (ESP32 family) or 2 (ESP8266) */
  bool rom_begin_encrypt_word; /* ROM FLASH_BEGIN takes the 5th word (S2 and later) */
  bool rom_has_security_info;  /* ROM implements GET_SECURITY_INFO (S2 and later) */
  uint32_t rom_write_block, stub_write_block, ram_block;
  uint8_t xtal_clk_divider;    /* UART clock = xtal / this (ESP8266: 2) */
  uint32_t uart_clkdiv_reg;    /* UART0 CLKDIV, for the crystal estimate */
  eg_spi_regs spi;
  /* Image header tables (§6.3): byte 3 high nibble = size, low = freq. */
  const eg_code *flash_sizes; size_t nflash_sizes;
  const eg_code *flash_freqs; size_t nflash_freqs;
  /* eFuse facts; efuse_base == 0 when espgang does not decode them. */
  uint32_t efuse_base;
  uint32_t mac_reg;            /* first MAC word; second is mac_reg + 4 (ESP32: word1/word2) */
} eg_chip;

/* The magic-value register every ESP ROM answers READ_REG for. */
#define EG_CHIP_MAGIC_REG 0x40001000u

/* ESP32 registers espgang reads (§4.3, §8.3). */
#define EG_ESP32_EFUSE_WORD(n) (0x3FF5A000u + 4u * (n))
#define EG_ESP32_APB_CTL_DATE 0x3FF6607Cu
#define EG_ESP32_RTC_CALI_REG 0x3FF5F06Cu /* ROM's CK8M calibration, for CHANGE_BAUDRATE */

/* Lookup. NULL when unknown. */
const eg_chip *eg_chip_get(eg_chip_id id);
const eg_chip *eg_chip_by_name(const char *name); /* "esp32", "ESP32-S3", "esp32-s3" */
const eg_chip *eg_chip_by_magic(uint32_t magic);
const eg_chip *eg_chip_by_chip_id(int chip_id);

/* Flash mode codes (byte 2 of the header): qio 0, qout 1, dio 2, dout 3.
 * Returns -1 for an unknown name. */
int eg_flash_mode_code(const char *name);
const char *eg_flash_mode_name(int code);
/* Header codes for this chip; -1 when the chip has no such size/frequency. */
int eg_chip_size_code(const eg_chip *c, const char *size_name);
int eg_chip_freq_code(const eg_chip *c, const char *freq_name);

/* Flash size in bytes from a size name ("4MB", "512KB"); 0 when unknown. */
uint32_t eg_flash_size_bytes(const char *size_name);
/* "4MB" etc. for a byte count that is a table size; NULL otherwise. */
const char *eg_flash_size_name(uint32_t bytes);

/* Flash size from a JEDEC RDID value (id = mfr | type << 8 | capacity << 16)
 * per §5.2; 0 when the ID is unknown or means "no flash". */
uint32_t eg_flash_size_from_jedec(uint32_t id);
bool eg_jedec_is_absent(uint32_t id);

/* ESP32 eFuse decoding (§4.3). words[n] = READ_REG(EFUSE_WORD(n)), n = 0..6. */
void eg_esp32_mac(uint32_t word1, uint32_t word2, uint8_t mac[6]);
int eg_esp32_major_rev(uint32_t word3, uint32_t word5, uint32_t apb_ctl_date);
int eg_esp32_minor_rev(uint32_t word5);
int eg_esp32_package(uint32_t word3);
const char *eg_esp32_package_name(int pkg, int major_rev);
/* SPI_ATTACH argument from the SPI pad eFuses (0 = default pins). */
uint32_t eg_esp32_spi_pads(uint32_t word3, uint32_t word5);
/* Crystal in MHz (26, 40 or 48) from the UART divider and the current baud;
 * fixed for the chips esptool does not estimate (C3, C6: 40; H2: 32). */
int eg_crystal_mhz(const eg_chip *c, uint32_t baud, uint32_t uart_clkdiv);
/* The value the ESP32 ROM must be sent in CHANGE_BAUDRATE so the real rate is
 * `baud` (§8.3): baud * f_rom / f_valid. rtc_cali = READ_REG(0x3FF5F06C),
 * efuse_word4 = READ_REG(EFUSE_WORD(4)). */
uint32_t eg_esp32_rom_baud_value(uint32_t baud, uint32_t rtc_cali, uint32_t efuse_word4);

#endif
