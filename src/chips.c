#include "chips.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Header size codes (§6.3). ESP32 and later share one table. */
static const eg_code esp32_sizes[] = {
  {"1MB", 0x00}, {"2MB", 0x10}, {"4MB", 0x20}, {"8MB", 0x30},
  {"16MB", 0x40}, {"32MB", 0x50}, {"64MB", 0x60}, {"128MB", 0x70},
};
/* ESP8266 (esptool targets/esp8266.py FLASH_SIZES). */
static const eg_code esp8266_sizes[] = {
  {"512KB", 0x00}, {"256KB", 0x10}, {"1MB", 0x20}, {"2MB", 0x30}, {"4MB", 0x40},
  {"2MB-c1", 0x50}, {"4MB-c1", 0x60}, {"8MB", 0x80}, {"16MB", 0x90},
};
/* Header frequency codes: ESP8266, ESP32, S2, S3, C3 (esptool FLASH_FREQUENCY). */
static const eg_code esp32_freqs[] = {{"80m", 0xF}, {"40m", 0x0}, {"26m", 0x1}, {"20m", 0x2}};
/* ESP32-C6: 80m is written as 0 to work around the ROM's MSPI divider. */
static const eg_code c6_freqs[] = {{"80m", 0x0}, {"40m", 0x0}, {"20m", 0x2}};
static const eg_code h2_freqs[] = {{"48m", 0xF}, {"24m", 0x0}, {"16m", 0x1}, {"12m", 0x2}};
static const eg_code c2_freqs[] = {{"60m", 0xF}, {"30m", 0x0}, {"20m", 0x1}, {"15m", 0x2}};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint32_t magic_esp8266[] = {0xFFF0C101};
static const uint32_t magic_esp32[] = {0x00F01D83};
static const uint32_t magic_s2[] = {0x000007C6};
static const uint32_t magic_s3[] = {0x00000009};
static const uint32_t magic_c3[] = {0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F};
static const uint32_t magic_c6[] = {0x2CE0806F};
static const uint32_t magic_h2[] = {0xD7B73E80};
static const uint32_t magic_c2[] = {0x6F51306F, 0x7C41A06F, 0x0C21E06F};

/* SPI1 layouts (§5.1). ESP32: USR +0x1C, USR1 +0x20, USR2 +0x24, MOSI_DLEN
 * +0x28, MISO_DLEN +0x2C, W0 +0x80. S2 and later: USR +0x18, USR1 +0x1C, USR2
 * +0x20, MOSI_DLEN +0x24, MISO_DLEN +0x28, W0 +0x58. ESP8266: lengths in USR1. */
#define SPI_ESP32(b) {(b), (b), (b) + 0x04, (b) + 0x1C, (b) + 0x20, (b) + 0x24, (b) + 0x28, (b) + 0x2C, (b) + 0x80}
#define SPI_S2(b) {(b), (b), (b) + 0x04, (b) + 0x18, (b) + 0x1C, (b) + 0x20, (b) + 0x24, (b) + 0x28, (b) + 0x58}
#define SPI_8266(b) {(b), (b), (b) + 0x04, (b) + 0x1C, (b) + 0x20, (b) + 0x24, 0, 0, (b) + 0x40}

static const eg_chip chips[EG_CHIP__COUNT] = {
  [EG_CHIP_ESP8266] = {
    .id = EG_CHIP_ESP8266, .name = "ESP8266", .arg_name = "esp8266",
    .magic = magic_esp8266, .nmagic = N(magic_esp8266), .chip_id = -1,
    .bootloader_offset = 0x0, .rom_status_len = 2,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 2, .uart_clkdiv_reg = 0x60000014,
    .spi = SPI_8266(0x60000200),
    .flash_sizes = esp8266_sizes, .nflash_sizes = N(esp8266_sizes),
    .flash_freqs = esp32_freqs, .nflash_freqs = N(esp32_freqs),
  },
  [EG_CHIP_ESP32] = {
    .id = EG_CHIP_ESP32, .name = "ESP32", .arg_name = "esp32",
    .magic = magic_esp32, .nmagic = N(magic_esp32), .chip_id = 0,
    .bootloader_offset = 0x1000, .rom_status_len = 4,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x3FF40014,
    .spi = SPI_ESP32(0x3FF42000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = esp32_freqs, .nflash_freqs = N(esp32_freqs),
    .efuse_base = 0x3FF5A000, .mac_reg = 0x3FF5A004,
  },
  [EG_CHIP_ESP32S2] = {
    .id = EG_CHIP_ESP32S2, .name = "ESP32-S2", .arg_name = "esp32s2",
    .magic = magic_s2, .nmagic = N(magic_s2), .chip_id = 2,
    .bootloader_offset = 0x1000, .rom_status_len = 4,
    .rom_begin_encrypt_word = true, .rom_has_security_info = true,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x3F400014,
    .spi = SPI_S2(0x3F402000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = esp32_freqs, .nflash_freqs = N(esp32_freqs),
    .efuse_base = 0x3F41A000, .mac_reg = 0x3F41A044,
  },
  [EG_CHIP_ESP32S3] = {
    .id = EG_CHIP_ESP32S3, .name = "ESP32-S3", .arg_name = "esp32s3",
    .magic = magic_s3, .nmagic = N(magic_s3), .chip_id = 9,
    .bootloader_offset = 0x0, .rom_status_len = 4,
    .rom_begin_encrypt_word = true, .rom_has_security_info = true,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x60000014,
    .spi = SPI_S2(0x60002000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = esp32_freqs, .nflash_freqs = N(esp32_freqs),
    .efuse_base = 0x60007000, .mac_reg = 0x60007044,
  },
  [EG_CHIP_ESP32C3] = {
    .id = EG_CHIP_ESP32C3, .name = "ESP32-C3", .arg_name = "esp32c3",
    .magic = magic_c3, .nmagic = N(magic_c3), .chip_id = 5,
    .bootloader_offset = 0x0, .rom_status_len = 4,
    .rom_begin_encrypt_word = true, .rom_has_security_info = true,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x60000014,
    .spi = SPI_S2(0x60002000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = esp32_freqs, .nflash_freqs = N(esp32_freqs),
    .efuse_base = 0x60008800, .mac_reg = 0x60008844,
  },
  [EG_CHIP_ESP32C6] = {
    .id = EG_CHIP_ESP32C6, .name = "ESP32-C6", .arg_name = "esp32c6",
    .magic = magic_c6, .nmagic = N(magic_c6), .chip_id = 13,
    .bootloader_offset = 0x0, .rom_status_len = 4,
    .rom_begin_encrypt_word = true, .rom_has_security_info = true,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x60000014,
    .spi = SPI_S2(0x60003000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = c6_freqs, .nflash_freqs = N(c6_freqs),
    .efuse_base = 0x600B0800, .mac_reg = 0x600B0844,
  },
  [EG_CHIP_ESP32H2] = {
    .id = EG_CHIP_ESP32H2, .name = "ESP32-H2", .arg_name = "esp32h2",
    .magic = magic_h2, .nmagic = N(magic_h2), .chip_id = 16,
    .bootloader_offset = 0x0, .rom_status_len = 4,
    .rom_begin_encrypt_word = true, .rom_has_security_info = true,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x60000014,
    .spi = SPI_S2(0x60003000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = h2_freqs, .nflash_freqs = N(h2_freqs),
  },
  [EG_CHIP_ESP32C2] = {
    .id = EG_CHIP_ESP32C2, .name = "ESP32-C2", .arg_name = "esp32c2",
    .magic = magic_c2, .nmagic = N(magic_c2), .chip_id = 12,
    .bootloader_offset = 0x0, .rom_status_len = 4,
    .rom_begin_encrypt_word = true, .rom_has_security_info = true,
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x60000014,
    .spi = SPI_S2(0x60002000),
    .flash_sizes = esp32_sizes, .nflash_sizes = N(esp32_sizes),
    .flash_freqs = c2_freqs, .nflash_freqs = N(c2_freqs),
    .efuse_base = 0x60008800, .mac_reg = 0x60008840,
  },
};

const eg_chip *eg_chip_get(eg_chip_id id) {
  return (unsigned)id < EG_CHIP__COUNT ? &chips[id] : NULL;
}

/* Compare ignoring case and the '-' esptool's names have ("ESP32-S3" == "esp32s3"). */
static bool name_eq(const char *a, const char *b) {
  for (;;) {
    while (*a == '-' || *a == '_') a++;
    while (*b == '-' || *b == '_') b++;
    if (!*a || !*b) return *a == *b;
    /* tolower, not `| 0x20`: that also folds control bytes onto digits. */
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    a++, b++;
  }
}

const eg_chip *eg_chip_by_name(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < EG_CHIP__COUNT; i++)
    if (name_eq(name, chips[i].arg_name)) return &chips[i];
  return NULL;
}

const eg_chip *eg_chip_by_magic(uint32_t magic) {
  for (size_t i = 0; i < EG_CHIP__COUNT; i++)
    for (size_t j = 0; j < chips[i].nmagic; j++)
      if (chips[i].magic[j] == magic) return &chips[i];
  return NULL;
}

const eg_chip *eg_chip_by_chip_id(int chip_id) {
  if (chip_id < 0) return NULL;
  for (size_t i = 0; i < EG_CHIP__COUNT; i++)
    if (chips[i].chip_id == chip_id) return &chips[i];
  return NULL;
}

static const char *const mode_names[] = {"qio", "qout", "dio", "dout"};

int eg_flash_mode_code(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && strcasecmp(name, mode_names[i]) == 0) return i;
  return -1;
}

const char *eg_flash_mode_name(int code) {
  return code >= 0 && code < 4 ? mode_names[code] : NULL;
}

static int find_code(const eg_code *t, size_t n, const char *name) {
  for (size_t i = 0; name && i < n; i++)
    if (strcasecmp(t[i].name, name) == 0) return t[i].code;
  return -1;
}

int eg_chip_size_code(const eg_chip *c, const char *size_name) {
  return find_code(c->flash_sizes, c->nflash_sizes, size_name);
}

int eg_chip_freq_code(const eg_chip *c, const char *freq_name) {
  return find_code(c->flash_freqs, c->nflash_freqs, freq_name);
}

static const struct { const char *name; uint32_t bytes; } size_names[] = {
  {"256KB", 256u << 10}, {"512KB", 512u << 10}, {"1MB", 1u << 20}, {"2MB", 2u << 20},
  {"4MB", 4u << 20}, {"8MB", 8u << 20}, {"16MB", 16u << 20}, {"32MB", 32u << 20},
  {"64MB", 64u << 20}, {"128MB", 128u << 20}, {"256MB", 256u << 20},
  {"2MB-c1", 2u << 20}, {"4MB-c1", 4u << 20},
};

uint32_t eg_flash_size_bytes(const char *size_name) {
  for (size_t i = 0; size_name && i < N(size_names); i++)
    if (strcasecmp(size_names[i].name, size_name) == 0) return size_names[i].bytes;
  return 0;
}

const char *eg_flash_size_name(uint32_t bytes) {
  for (size_t i = 0; i < N(size_names); i++)
    if (size_names[i].bytes == bytes) return size_names[i].name;
  return NULL;
}

bool eg_jedec_is_absent(uint32_t id) {
  id &= 0xFFFFFF;
  return id == 0xFFFFFF || id == 0x000000 || id == 0xFFFF3F;
}

uint32_t eg_flash_size_from_jedec(uint32_t id) {
  if (eg_jedec_is_absent(id)) return 0;
  const uint8_t mfr = id & 0xFF;
  if (mfr == 0x1F) { /* Adesto: density in bits [12:8] of the device id */
    const uint8_t code = (id >> 8) & 0x1F;
    return code >= 0x04 && code <= 0x09 ? (512u << 10) << (code - 0x04) : 0;
  }
  const uint8_t code = (id >> 16) & 0xFF;
  switch (code) {
  case 0x12: case 0x32: return 256u << 10;
  case 0x13: case 0x33: return 512u << 10;
  case 0x14: case 0x34: return 1u << 20;
  case 0x15: case 0x35: return 2u << 20;
  case 0x16: case 0x36: return 4u << 20;
  case 0x17: case 0x37: return 8u << 20;
  case 0x18: case 0x38: return 16u << 20;
  case 0x19: case 0x39: return 32u << 20;
  case 0x1A: case 0x3A: case 0x20: return 64u << 20;
  case 0x1B: case 0x21: return 128u << 20;
  case 0x1C: case 0x22: return 256u << 20;
  default: return 0;
  }
}

void eg_esp32_mac(uint32_t word1, uint32_t word2, uint8_t mac[6]) {
  mac[0] = (uint8_t)(word2 >> 8);
  mac[1] = (uint8_t)word2;
  mac[2] = (uint8_t)(word1 >> 24);
  mac[3] = (uint8_t)(word1 >> 16);
  mac[4] = (uint8_t)(word1 >> 8);
  mac[5] = (uint8_t)word1;
}

int eg_esp32_major_rev(uint32_t word3, uint32_t word5, uint32_t apb_ctl_date) {
  const unsigned v = ((apb_ctl_date >> 31) & 1u) << 2 | ((word5 >> 20) & 1u) << 1 | ((word3 >> 15) & 1u);
  switch (v) {
  case 1: return 1;
  case 3: return 2;
  case 7: return 3;
  default: return 0;
  }
}

int eg_esp32_minor_rev(uint32_t word5) { return (int)((word5 >> 24) & 0x3); }

int eg_esp32_package(uint32_t word3) {
  return (int)(((word3 >> 9) & 0x7) + (((word3 >> 2) & 1u) << 3));
}

const char *eg_esp32_package_name(int pkg, int major_rev) {
  const bool rev3 = major_rev == 3;
  switch (pkg) {
  case 0: return rev3 ? "ESP32-D0WDQ6-V3" : "ESP32-D0WDQ6";
  case 1: return rev3 ? "ESP32-D0WD-V3" : "ESP32-D0WD";
  case 2: return "ESP32-D2WD";
  case 4: return "ESP32-U4WDH";
  case 5: return rev3 ? "ESP32-PICO-V3" : "ESP32-PICO-D4";
  case 6: return "ESP32-PICO-V3-02";
  case 7: return "ESP32-D0WDR2-V3";
  default: return "Unknown ESP32";
  }
}

uint32_t eg_esp32_spi_pads(uint32_t word3, uint32_t word5) {
  const uint32_t clk = word5 & 0x1F, q = (word5 >> 5) & 0x1F, d = (word5 >> 10) & 0x1F,
                 cs = (word5 >> 15) & 0x1F, hd = (word3 >> 4) & 0x1F;
  if (!clk && !q && !d && !cs && !hd) return 0;
  /* Packed as esptool does (eFuse values unchanged; see §10 on pins 30/31). */
  return clk | q << 6 | d << 12 | cs << 18 | hd << 24;
}

int eg_crystal_mhz(const eg_chip *c, uint32_t baud, uint32_t uart_clkdiv) {
  /* esptool does not estimate these: their crystal is fixed (targets
   * esp32c3.py / esp32c6.py: 40 MHz, esp32h2.py: 32 MHz), and the UART
   * divider does not give it. */
  switch (c->id) {
  case EG_CHIP_ESP32C3:
  case EG_CHIP_ESP32C6: return 40;
  case EG_CHIP_ESP32H2: return 32;
  case EG_CHIP_ESP8266:
  case EG_CHIP_ESP32:
  case EG_CHIP_ESP32S2:
  case EG_CHIP_ESP32S3:
  case EG_CHIP_ESP32C2:
  case EG_CHIP__COUNT: break;
  }
  const double est = (double)baud * (double)(uart_clkdiv & 0xFFFFF) / 1e6 / (c->xtal_clk_divider ? c->xtal_clk_divider : 1);
  if (est > 45) return 48;
  if (est > 33) return 40;
  return 26;
}

uint32_t eg_esp32_rom_baud_value(uint32_t baud, uint32_t rtc_cali, uint32_t efuse_word4) {
  const uint64_t cali = (rtc_cali >> 7) & 0x1FFFFFF;
  const uint64_t ck8m = efuse_word4 & 0xFF;
  /* f_rom = cali * 15625 * ck8m / 40; f_valid = 40 MHz if f_rom > 33 MHz else 26 MHz */
  const uint64_t f_rom_x40 = cali * 15625u * ck8m; /* f_rom * 40 */
  if (f_rom_x40 == 0) return baud;                 /* no calibration data: send as is */
  const uint64_t f_valid = f_rom_x40 > 33000000ull * 40 ? 40000000ull : 26000000ull;
  return (uint32_t)((uint64_t)baud * f_rom_x40 / (f_valid * 40));
}
