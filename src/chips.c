/* chips.c - the chip table (see chips.h for the contract).
 *
 * Sources, cited next to each fact:
 *   ET   = esptool v5.3.1 (tag commit 0d2dfefe), esptool/<file>:<line>
 *   EJS  = esptool-js 0.7.0 (npm), lib/<file>:<line>
 *   FACT = ../shared/docs/chip-family-facts.md §n (it cites ET for each row)
 *   PROT = ../shared/docs/esp-serial-protocol.md §n
 * Inheritance in ET: ESP32 -> S2, S3, C3, P4; C3 -> C2, C6; C6 -> C5, C61, H2
 * (FACT conventions). A value a chip inherits cites the class defining it.
 */
#include "chips.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define ANY (-1)

/* ------------------------------------------------------------ image header tables */

/* Size codes, ESP32 and later (ET targets/esp32.py:80-89). */
static const eg_code esp32_sizes[] = {
  {"1MB", 0x00}, {"2MB", 0x10}, {"4MB", 0x20}, {"8MB", 0x30},
  {"16MB", 0x40}, {"32MB", 0x50}, {"64MB", 0x60}, {"128MB", 0x70},
};
/* ESP8266 (ET targets/esp8266.py:34-44). */
static const eg_code esp8266_sizes[] = {
  {"512KB", 0x00}, {"256KB", 0x10}, {"1MB", 0x20}, {"2MB", 0x30}, {"4MB", 0x40},
  {"2MB-c1", 0x50}, {"4MB-c1", 0x60}, {"8MB", 0x80}, {"16MB", 0x90},
};
/* Frequency codes: ESP8266, ESP32, S2, S3, C3, P4 (ET targets/esp32.py:91-96,
 * targets/esp8266.py:46-51; the others inherit ESP32's). */
static const eg_code esp32_freqs[] = {{"80m", 0xF}, {"40m", 0x0}, {"26m", 0x1}, {"20m", 0x2}};
/* ESP32-C6: 80m is written as 0 to work around the ROM's MSPI divider (ET targets/esp32c6.py:77-81). */
static const eg_code c6_freqs[] = {{"80m", 0x0}, {"40m", 0x0}, {"20m", 0x2}};
/* ESP32-C5 and C61 (ET targets/esp32c5.py:63-67, targets/esp32c61.py:47-51). */
static const eg_code c5_freqs[] = {{"80m", 0xF}, {"40m", 0x0}, {"20m", 0x2}};
static const eg_code h2_freqs[] = {{"48m", 0xF}, {"24m", 0x0}, {"16m", 0x1}, {"12m", 0x2}}; /* ET targets/esp32h2.py:26-31 */
static const eg_code c2_freqs[] = {{"60m", 0xF}, {"30m", 0x0}, {"20m", 0x1}, {"15m", 0x2}}; /* ET targets/esp32c2.py:45-50 */

/* ------------------------------------------------------------ magic values
 * READ_REG(0x40001000). ET v5 detects only ESP8266, ESP32 and S2 by magic
 * (USES_MAGIC_VALUE, ET targets/esp32c3.py:34 etc.); the other chips' values
 * are a fallback (a stub that does not answer GET_SECURITY_INFO) and what a
 * simulator answers. */
static const uint32_t magic_esp8266[] = {0xFFF0C101}; /* ET targets/esp8266.py:15 */
static const uint32_t magic_esp32[] = {0x00F01D83};   /* ET targets/esp32.py:20 */
static const uint32_t magic_s2[] = {0x000007C6};      /* ET targets/esp32s2.py:24 */
static const uint32_t magic_s3[] = {0x00000009};      /* PROT §4.1; EJS esploader.js:60 */
static const uint32_t magic_c3[] = {0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F}; /* PROT §4.1; EJS esploader.js:31-34 */
static const uint32_t magic_c6[] = {0x2CE0806F};                                     /* PROT §4.1; EJS esploader.js:38 */
static const uint32_t magic_h2[] = {0xD7B73E80, 0x97E30068};             /* PROT §4.1; EJS esploader.js:55-56 */
static const uint32_t magic_c2[] = {0x6F51306F, 0x7C41A06F, 0x0C21E06F}; /* PROT §4.1; EJS esploader.js:25-27 */
static const uint32_t magic_c5[] = {0x1101406F, 0x63E1406F, 0x5FD1406F, 0x30E1706F}; /* EJS targets/esp32c5.js:44 */
/* EJS targets/esp32c61.js:7 and esploader.js:44; 0x7211606F: PROT §4.1 (esp-serial-flasher). */
static const uint32_t magic_c61[] = {0x33F0206F, 0x2421606F, 0x4F81606F, 0x7211606F};
/* EJS targets/esp32p4.js:12 and esploader.js:74. EJS also lists 0x0, which
 * any failed read could return (PROT §4.1: "none reliable"): left out. */
static const uint32_t magic_p4[] = {0x0ADDBAD0, 0x07039AD9};

/* ------------------------------------------------------------ package names */

/* ESP32: package = w3[11:9] + (w3 b2) << 3, sub = w3 b0 (single core), "-V3"
 * names on revision v3 (ET targets/esp32.py:199-203,223-240). */
static const eg_pkg_name esp32_pkgs[] = {
  {0, 1, ANY, "ESP32-S0WDQ6"}, {0, ANY, 3, "ESP32-D0WDQ6-V3"}, {0, ANY, ANY, "ESP32-D0WDQ6"},
  {1, 1, ANY, "ESP32-S0WD"},   {1, ANY, 3, "ESP32-D0WD-V3"},   {1, ANY, ANY, "ESP32-D0WD"},
  {2, ANY, ANY, "ESP32-D2WD"}, {4, ANY, ANY, "ESP32-U4WDH"},   {5, ANY, 3, "ESP32-PICO-V3"},
  {5, ANY, ANY, "ESP32-PICO-D4"}, {6, ANY, ANY, "ESP32-PICO-V3-02"}, {7, ANY, ANY, "ESP32-D0WDR2-V3"},
};
/* S2: esptool keys flash_cap + 100 * psram_cap (ET targets/esp32s2.py:162-175). */
static const eg_pkg_name s2_pkgs[] = {
  {0, 0, ANY, "ESP32-S2"}, {1, 0, ANY, "ESP32-S2FH2"}, {2, 0, ANY, "ESP32-S2FH4"},
  {2, 1, ANY, "ESP32-S2FNR2"}, {0, 1, ANY, "ESP32-S2R2"},
};
static const eg_pkg_name s3_pkgs[] = {{0, ANY, ANY, "ESP32-S3 (QFN56)"}, {1, ANY, ANY, "ESP32-S3-PICO-1 (LGA56)"}}; /* ET targets/esp32s3.py:188-191 */
static const eg_pkg_name c3_pkgs[] = {                                                                               /* ET targets/esp32c3.py:139-144 */
  {0, ANY, ANY, "ESP32-C3 (QFN32)"}, {1, ANY, ANY, "ESP8685 (QFN28)"},
  {2, ANY, ANY, "ESP32-C3 AZ (QFN32)"}, {3, ANY, ANY, "ESP8686 (QFN24)"},
};
static const eg_pkg_name c2_pkgs[] = {{0, ANY, ANY, "ESP32-C2"}, {1, ANY, ANY, "ESP8684H"}}; /* ET targets/esp32c2.py:77-81 */
/* C6: package 1 is FH4 or FH8 by flash_cap (ET targets/esp32c6.py:115-131). */
static const eg_pkg_name c6_pkgs[] = {
  {0, ANY, ANY, "ESP32-C6 (QFN40)"}, {1, 1, ANY, "ESP32-C6FH4 (QFN32)"}, {1, 2, ANY, "ESP32-C6FH8 (QFN32)"},
};
static const eg_pkg_name c5_pkgs[] = {{0, ANY, ANY, "ESP32-C5"}};   /* ET targets/esp32c5.py:115-121 */
static const eg_pkg_name c61_pkgs[] = {{0, ANY, ANY, "ESP32-C61"}}; /* ET targets/esp32c61.py:90-96 */
static const eg_pkg_name h2_pkgs[] = {{0, ANY, ANY, "ESP32-H2"}};   /* ET targets/esp32h2.py:62-68 */
static const eg_pkg_name p4_pkgs[] = {{0, ANY, ANY, "ESP32-P4"}};   /* ET targets/esp32p4.py:155-161 */

/* ------------------------------------------------------------ register scripts */

#define ALL 0xFFFFFFFFu
#define W(a, v) {EG_REGW_WRITE, (a), (v), ALL, false}
#define SCRIPT(a) {(a), N(a)}

/* RTC watchdog off and super-watchdog auto-feed, for USB-Serial/JTAG ports
 * (ET targets/esp32c3.py:222-243, targets/esp32s3.py:310-326,
 * targets/esp32p4.py:250-266): unlock, CONFIG0 = 0, lock; unlock SWD,
 * SWD_CONF |= auto-feed (read on the host, as esptool), lock. */
#define WDT_DISABLE(wprot, wkey, cfg0, swd_wprot, swd_key, swd_conf, feed)                              \
  {                                                                                                     \
    W(wprot, wkey), W(cfg0, 0), W(wprot, 0), W(swd_wprot, swd_key), {EG_REGW_SET_BITS, (swd_conf), (feed), ALL, false}, \
      W(swd_wprot, 0),                                                                                  \
  }
/* Watchdog reset (ET targets/esp32s2.py:276-284 and the same method in
 * esp32s3.py:335-343, esp32c3.py:245-253, esp32p4.py:277-285): unlock,
 * CONFIG1 = 2000 (timeout), CONFIG0 = (1 << 31) | (5 << 28) | (1 << 8) | 2
 * (enable, reset system), lock, wait 0.5 s for the reset. */
#define WDT_RESET(wprot, wkey, cfg0, cfg1)                                                                \
  {                                                                                                       \
    W(wprot, wkey), W(cfg1, 2000), W(cfg0, 0xD0000102u), W(wprot, 0), {EG_REGW_DELAY_US, 0, 500000, 0, false}, \
  }
#define WKEY 0x50D83AA1u     /* RTC_CNTL_WDT_WKEY, every chip (ET targets/esp32s2.py:89) */
#define SWD_WKEY 0x8F1D312Au /* RTC_CNTL_SWD_WKEY on S3 and C3 (ET targets/esp32s3.py:84, esp32c3.py:78) */

/* S2: RTC_CNTL 0x3F408000 + 0x94 / 0x98 / 0xAC (ET targets/esp32s2.py:85-89). No SWD handling. */
static const eg_regwrite s2_wdt_reset[] = WDT_RESET(0x3F4080ACu, WKEY, 0x3F408094u, 0x3F408098u);
/* S3: RTC_CNTL 0x60008000 + 0x98 / 0x9C / 0xB0; SWD_CONF +0xB4 bit 31, SWD_WPROTECT +0xB8 (ET targets/esp32s3.py:80-89). */
static const eg_regwrite s3_wdt_disable[] = WDT_DISABLE(0x600080B0u, WKEY, 0x60008098u, 0x600080B8u, SWD_WKEY, 0x600080B4u, 1u << 31);
static const eg_regwrite s3_wdt_reset[] = WDT_RESET(0x600080B0u, WKEY, 0x60008098u, 0x6000809Cu);
/* S3 clears "force download boot" (RTC_CNTL_OPTION1 0x6000812C bit 0, masked
 * WRITE_REG) before any hard reset, errors ignored (ET targets/esp32s3.py:345-356). */
static const eg_regwrite s3_reset_prefix[] = {{EG_REGW_WRITE, 0x6000812Cu, 0, 0x1, true}};
/* C3: RTC_CNTL 0x60008000 + 0x90 / 0x94 / 0xA8; SWD_CONF +0xAC bit 31, SWD_WPROTECT +0xB0 (ET targets/esp32c3.py:74-83). */
static const eg_regwrite c3_wdt_disable[] = WDT_DISABLE(0x600080A8u, WKEY, 0x60008090u, 0x600080B0u, SWD_WKEY, 0x600080ACu, 1u << 31);
static const eg_regwrite c3_wdt_reset[] = WDT_RESET(0x600080A8u, WKEY, 0x60008090u, 0x60008094u);
/* C2: RTC_CNTL 0x60008000 + 0x84 / 0x88 / 0x9C (ET targets/esp32c2.py:63-67); it
 * overrides _post_connect, so no watchdog disable (ET targets/esp32c2.py:149-153). */
static const eg_regwrite c2_wdt_reset[] = WDT_RESET(0x6000809Cu, WKEY, 0x60008084u, 0x60008088u);
/* C6 (and C5, C61 which inherit it): LP_WDT 0x600B1C00 + 0x00 / 0x04 / 0x18;
 * SWD_CONF +0x1C bit 18, SWD_WPROTECT +0x20, SWD key = WDT key (ET targets/esp32c6.py:67-75).
 * C6 itself has no watchdog reset (USB-Serial/JTAG bug, ET targets/esp32c6.py:208-211);
 * C5 and C61 re-enable C3's method on these registers (ET targets/esp32c5.py:225-227,
 * targets/esp32c61.py:112-114). */
static const eg_regwrite c6_wdt_disable[] = WDT_DISABLE(0x600B1C18u, WKEY, 0x600B1C00u, 0x600B1C20u, WKEY, 0x600B1C1Cu, 1u << 18);
static const eg_regwrite c6_wdt_reset[] = WDT_RESET(0x600B1C18u, WKEY, 0x600B1C00u, 0x600B1C04u);
/* H2: LP_WDT 0x600B1C00 + 0x00 / 0x04 / 0x1C; SWD_CONF +0x20 bit 18, SWD_WPROTECT +0x24
 * (ET targets/esp32h2.py:16-24). No watchdog reset (ET targets/esp32h2.py:77-79). */
static const eg_regwrite h2_wdt_disable[] = WDT_DISABLE(0x600B1C1Cu, WKEY, 0x600B1C00u, 0x600B1C24u, WKEY, 0x600B1C20u, 1u << 18);
/* P4: LP_WDT 0x50116000 + 0x00 / 0x04 / 0x18; SWD_CONF +0x1C bit 18, SWD_WPROTECT +0x20
 * (ET targets/esp32p4.py:131-140). Its disable unlocks with the SWD key, same value. */
static const eg_regwrite p4_wdt_disable[] = WDT_DISABLE(0x50116018u, WKEY, 0x50116000u, 0x50116020u, WKEY, 0x5011601Cu, 1u << 18);
static const eg_regwrite p4_wdt_reset[] = WDT_RESET(0x50116018u, WKEY, 0x50116000u, 0x50116004u);

/* P4 ECO6/ECO7 flash power-up (ET targets/esp32p4.py:87-97,293-358): pad group
 * on, LDO current limit and TIEH select on, PMU flash force-on, then limit
 * off, target cleared, voltage from eFuse, TIEH select off. */
#define P4_PMU 0x50115000u /* DR_REG_LPAON_BASE 0x50110000 + 0x5000 */
static const eg_regwrite p4_flash_power[] = {
  W(0x5011010Cu, 1), /* LP_SYSTEM_REG_ANA_XPD_PAD_GROUP_REG */
  {EG_REGW_DELAY_US, 0, 10000, 0, false},
  {EG_REGW_SET_BITS, P4_PMU + 0x1BC, 1u << 27, ALL, false}, /* PMU_EXT_LDO_P0_0P1A_ANA_REG |= EN_CUR_LIM_0 */
  {EG_REGW_SET_BITS, P4_PMU + 0x1B8, 1u << 7, ALL, false},  /* PMU_EXT_LDO_P0_0P1A_REG |= FORCE_TIEH_SEL_0 */
  {EG_REGW_SET_BITS, P4_PMU + 0x3FC, 3u, ALL, false},       /* PMU_DATE_REG |= 3 */
  {EG_REGW_DELAY_US, 0, 50, 0, false},
  {EG_REGW_CLEAR_BITS, P4_PMU + 0x1BC, 1u << 27, ALL, false},
  {EG_REGW_CLEAR_BITS, P4_PMU + 0x1B8, 0xFFu << 23, ALL, false}, /* TARGET0_0 */
  {EG_REGW_SET_BITS, P4_PMU + 0x1B8, 0x80u, ALL, false},
  {EG_REGW_CLEAR_BITS, P4_PMU + 0x1B8, 1u << 7, ALL, false},
  {EG_REGW_DELAY_US, 0, 1800, 0, false},
};
/* ECO7 with DOWNLOAD_MODE_XPD_ON: only release the force-on (ET targets/esp32p4.py:305-321). */
static const eg_regwrite p4_flash_power_xpd[] = {W(P4_PMU + 0x3FC, 0)};

/* ------------------------------------------------------------ row helpers */

/* SPI1 layouts (FACT §4). ESP32: USR +0x1C, USR1 +0x20, USR2 +0x24, MOSI_DLEN
 * +0x28, MISO_DLEN +0x2C, W0 +0x80. S2 and later: USR +0x18, USR1 +0x1C, USR2
 * +0x20, MOSI_DLEN +0x24, MISO_DLEN +0x28, W0 +0x58. ESP8266: lengths in USR1, W0 +0x40. */
#define SPI_ESP32(b) {(b), (b), (b) + 0x04, (b) + 0x1C, (b) + 0x20, (b) + 0x24, (b) + 0x28, (b) + 0x2C, (b) + 0x80}
#define SPI_S2(b) {(b), (b), (b) + 0x04, (b) + 0x18, (b) + 0x1C, (b) + 0x20, (b) + 0x24, (b) + 0x28, (b) + 0x58}
#define SPI_8266(b) {(b), (b), (b) + 0x04, (b) + 0x1C, (b) + 0x20, (b) + 0x24, 0, 0, (b) + 0x40}

#define B(a, s, w) {(a), (s), (w)}
#define F1(a, s, w) {{0, 0, 0}, {(a), (s), (w)}}
#define F2(ha, hs, hw, la, ls, lw) {{(ha), (hs), (hw)}, {(la), (ls), (lw)}}
#define PKGS(a) .pkg_names = (a), .npkg_names = N(a)
#define MAGIC(a) .magic = (a), .nmagic = N(a)
#define SIZES(a) .flash_sizes = (a), .nflash_sizes = N(a)
#define FREQS(a) .flash_freqs = (a), .nflash_freqs = N(a)
/* Hard reset by port kind: UART bridge, USB-Serial/JTAG, USB-OTG. */
#define RESETS(u, j, o) .hard_reset = {[EG_USB_NONE] = (u), [EG_USB_SERIAL_JTAG] = (j), [EG_USB_OTG] = (o)}
#define CLASSIC EG_HARD_RESET_CLASSIC

/* What every ROM after the ESP32 shares (FACT §7 table; PROT §2): status 4
 * bytes, the 5th FLASH_BEGIN word, deflate, MD5 and READ_FLASH_SLOW, blocks
 * ROM 0x400 / stub 0x4000 / RAM 0x1800 (ET loader.py:342,344; StubMixin
 * FLASH_WRITE_SIZE, ET loader.py:2134), encrypted writes 16-aligned through
 * the ROM too (ET loader.py:401; cmds.py:1072-1082), ESP32-style image check
 * (ET cmds.py:980-1065), GET_SECURITY_INFO with 20 bytes (FACT §1). */
#define LATER_ROM                                                                                         \
  .rom_status_len = 4, .rom_begin_encrypt_word = true, .rom_has_security_info = true, .rom_deflate = true, \
  .rom_md5 = true, .rom_read_flash_slow = true, .rom_attach = EG_ATTACH_ZERO, .rom_spi_set_params = true,  \
  .rom_write_block = 0x400,                                                                               \
  .stub_write_block = 0x4000, .ram_block = 0x1800, .enc_write_align = 16, .enc_write = true,             \
  .rom_enc_write = true, .image_check = true, .mac_rule = EG_MAC_EFUSE, .desc_rule = EG_DESC_PACKAGE,    \
  .xtal_clk_divider = 1
/* GET_SECURITY_INFO's 20-byte reply with the chip id (FACT §1). */
#define SECINFO20 .rom_security_info_len = 20
/* CHANGE_BAUDRATE takes the rate as is, also in Secure Download Mode (ET loader.py:1546-1556). */
#define BAUD_PLAIN .rom_baud = EG_ROM_BAUD_PLAIN, .rom_baud_in_sdm = true
/* UART0 CLKDIV of every chip after the S2 (ET targets/esp32c3.py:40, esp32s3.py:99). */
#define CLKDIV_C3 .uart_clkdiv_reg = 0x60000014

/* ------------------------------------------------------------ the table */

static const eg_chip chips[EG_CHIP__COUNT] = {
  [EG_CHIP_ESP8266] = {
    .id = EG_CHIP_ESP8266, .name = "ESP8266", .arg_name = "esp8266",
    MAGIC(magic_esp8266), .magic_primary = true, .chip_id = -1,
    .rom_security_info_len = 0,                  /* ROM rejects 0x14 (FACT §1) */
    .rom_status_len = 2,                         /* FACT §9 */
    .rom_begin_encrypt_word = false,             /* ET loader.py:1112-1118 */
    .rom_deflate = false, .rom_md5 = false,      /* stub_and_esp32_function_only, ET loader.py:162-166,1444,1525 */
    .rom_read_flash_slow = false,                /* FACT §7 */
    .rom_erase_size_bug = true,                  /* ET targets/esp8266.py:152-169 */
    .rom_attach = EG_ATTACH_FLASH_BEGIN,         /* ET targets/esp8266.py:114-121 */
    .rom_spi_set_params = false,                 /* ET targets/esp8266.py:122-125 */
    .rom_baud = EG_ROM_BAUD_NONE,                /* ET loader.py:1545 (same attribute), __init__.py:601-608 */
    .bootloader_offset = 0x0,                    /* ET targets/esp8266.py:53 */
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .enc_write_align = 16, .enc_write = false,   /* ET loader.py:401; encryption refused, ET cmds.py:1072-1082 */
    .spi = SPI_8266(0x60000200), .spi_addr_msb = true, /* ET targets/esp8266.py:22-28; loader.py:362 */
    SIZES(esp8266_sizes), FREQS(esp32_freqs),
    .image_check = false,                        /* ET cmds.py:980 */
    /* OTP words MAC0 0x3FF00050, MAC1 +4, (+8), MAC3 +12 (ET targets/esp8266.py:18-20,64-70). */
    .efuse_base = 0x3FF00050, .mac_rule = EG_MAC_ESP8266_OTP, .mac_reg = 0, /* the OTP rule reads efuse_base */
    .rev_rule = EG_REV_NONE, .desc_rule = EG_DESC_ESP8266, /* ET targets/esp8266.py:91-106 */
    .xtal_rule = EG_XTAL_ESTIMATE, .xtal_clk_divider = 2, .uart_clkdiv_reg = 0x60000014, /* ET targets/esp8266.py:30,32 */
    /* No flash encryption or secure boot (ET loader.py:1311-1328 defaults). */
    .uartdev_otg = -1, .uartdev_jtag = -1,       /* no USB */
    RESETS(CLASSIC, CLASSIC, CLASSIC),           /* ET loader.py:2085-2093 */
  },
  [EG_CHIP_ESP32] = {
    .id = EG_CHIP_ESP32, .name = "ESP32", .arg_name = "esp32",
    MAGIC(magic_esp32), .magic_primary = true, .chip_id = 0, /* ET targets/esp32.py:18,20 */
    .rom_security_info_len = 0, .rom_status_len = 4, .rom_begin_encrypt_word = false, /* FACT §1, §9; ET loader.py:1112-1118 */
    .rom_deflate = true, .rom_md5 = true, .rom_read_flash_slow = true, /* ET targets/esp32.py:390-416 */
    .rom_attach = EG_ATTACH_ESP32_PADS,          /* ET cmds.py:1670-1715, targets/esp32.py:299-311 */
    .rom_spi_set_params = true,                  /* ET loader.py flash_set_parameters */
    .rom_baud = EG_ROM_BAUD_ESP32_RTC, .rom_baud_in_sdm = true, /* ET targets/esp32.py:418-446 */
    .bootloader_offset = 0x1000,                 /* ET targets/esp32.py:98 */
    .rom_write_block = 0x400, .stub_write_block = 0x4000, .ram_block = 0x1800,
    .enc_write_align = 32, .enc_write = true,    /* ET targets/esp32.py:120 */
    .rom_enc_write = false,                      /* stub only, ET cmds.py:1072-1082 */
    .spi = SPI_ESP32(0x3FF42000), .spi_addr_msb = true, /* ET targets/esp32.py:28-33,59; loader.py:362 */
    SIZES(esp32_sizes), FREQS(esp32_freqs),
    .image_check = true,
    /* eFuse word n at 0x3FF5A000 + 4n (ET targets/esp32.py:34,313-315); MAC in
     * w1, w2 (w2[31:16] is a CRC) (ET targets/esp32.py:317-324). */
    .efuse_base = 0x3FF5A000, .mac_rule = EG_MAC_EFUSE, .mac_reg = 0x3FF5A004,
    /* Major: w3 b15, w5 b20, APB_CTL_DATE b31; minor w5[25:24] (ET targets/esp32.py:54-57,205-221). */
    .rev_rule = EG_REV_ESP32,
    .rev_minor = F1(0x3FF5A014, 24, 2),
    .rev_aux = {B(0x3FF5A00C, 15, 1), B(0x3FF5A014, 20, 1), B(0x3FF6607C, 31, 1)},
    /* Package w3[11:9] + (w3 b2) << 3; single core w3 b0 (ET targets/esp32.py:199-203,228). */
    .desc_rule = EG_DESC_PACKAGE, .pkg = F2(0x3FF5A00C, 2, 1, 0x3FF5A00C, 9, 3), .pkg_sub = B(0x3FF5A00C, 0, 1),
    PKGS(esp32_pkgs),
    .xtal_rule = EG_XTAL_ESTIMATE, .xtal_clk_divider = 1, .uart_clkdiv_reg = 0x3FF40014, /* ET targets/esp32.py:61,63 */
    /* CHANGE_BAUDRATE quirk inputs: RTCCALICFG1 >> 7 & 0x1FFFFFF, eFuse w4 & 0xFF (ET targets/esp32.py:65-67,418-430). */
    .rtc_cali_reg = 0x3FF5F06C, .rom_ck8m = B(0x3FF5A010, 0, 8),
    /* SPI pads: w5 clk[4:0] q[9:5] d[14:10] cs[19:15], w3 hd[8:4] (ET targets/esp32.py:299-311). */
    .spi_pads = {B(0x3FF5A014, 0, 5), B(0x3FF5A014, 5, 5), B(0x3FF5A014, 10, 5), B(0x3FF5A014, 15, 5), B(0x3FF5A00C, 4, 5)},
    /* Security (ET targets/esp32.py:39-47,171-190): FLASH_CRYPT_CNT w0[26:20];
     * ABS_DONE_0 w6 b4, ABS_DONE_1 w6 b5 from v3.0; DISABLE_DL_ENCRYPT w6 b7. */
    .crypt_cnt = B(0x3FF5A000, 20, 7), .secure_boot = B(0x3FF5A018, 4, 1), .secure_boot_rev3 = B(0x3FF5A018, 5, 1),
    .dl_encrypt_disabled = B(0x3FF5A018, 7, 1),
    .uartdev_otg = -1, .uartdev_jtag = -1,       /* no USB */
    RESETS(CLASSIC, CLASSIC, CLASSIC),           /* ET loader.py:2085-2093 */
  },
  [EG_CHIP_ESP32S2] = {
    .id = EG_CHIP_ESP32S2, .name = "ESP32-S2", .arg_name = "esp32s2",
    MAGIC(magic_s2), .magic_primary = true, .chip_id = 2, /* ET targets/esp32s2.py:17,24 */
    LATER_ROM, .rev_rule = EG_REV_FIELDS, BAUD_PLAIN,
    .rom_security_info_len = 12,                 /* no chip id in the reply (FACT §1, §8) */
    .bootloader_offset = 0x1000,                 /* inherited, ET targets/esp32.py:98 */
    .usb_otg_block = 0x800,                      /* USB_RAM_BLOCK, ET targets/esp32s2.py:77,272-274,317-321 */
    .spi = SPI_S2(0x3F402000), .spi_addr_msb = false, /* ET targets/esp32s2.py:26-34 */
    SIZES(esp32_sizes), FREQS(esp32_freqs),
    /* EFUSE_BASE 0x3F41A000, BLOCK1 = MAC at +0x44 (ET targets/esp32s2.py:36,43-45). */
    .efuse_base = 0x3F41A000, .mac_reg = 0x3F41A044,
    /* Major w3[19:18]; minor w3 b20 << 3 | w4[6:4] (ET targets/esp32s2.py:132-141). */
    .rev_major = F1(0x3F41A050, 18, 2), .rev_minor = F2(0x3F41A050, 20, 1, 0x3F41A054, 4, 3),
    /* flash_cap w3[24:21], psram_cap w3[31:28] (ET targets/esp32s2.py:143-155). */
    .pkg = F1(0x3F41A050, 21, 4), .pkg_sub = B(0x3F41A050, 28, 4), PKGS(s2_pkgs),
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 40,  /* ET targets/esp32s2.py:203-205 */
    .uart_clkdiv_reg = 0x3F400014,               /* ET targets/esp32s2.py:38 */
    /* ET targets/esp32s2.py:61-68. */
    .crypt_cnt = B(0x3F41A034, 18, 3), .secure_boot = B(0x3F41A038, 20, 1), .dl_encrypt_disabled = B(0x3F41A030, 19, 1),
    .usb_pins = {19, 20},                        /* ET targets/esp32s2.py:307-311 */
    .uartdev_buf_no = 0x3FFFFD14, .uartdev_otg = 2, .uartdev_jtag = -1, /* EJS targets/esp32s2.js:52-53 */
    .wdt_reset = SCRIPT(s2_wdt_reset),
    RESETS(CLASSIC, CLASSIC, EG_HARD_RESET_OTG_STRAPS), /* ET targets/esp32s2.py:286-299 */
    .otg_strap_reg = 0x3F404038, .otg_strap_mask = 1u << 3, /* GPIO_STRAP, SPI boot (ET targets/esp32s2.py:79-83) */
    .otg_option1_reg = 0x3F408128, .otg_option1_mask = 0x1,
  },
  [EG_CHIP_ESP32S3] = {
    .id = EG_CHIP_ESP32S3, .name = "ESP32-S3", .arg_name = "esp32s3",
    MAGIC(magic_s3), .chip_id = 9,               /* ET targets/esp32s3.py:18,37 */
    LATER_ROM, SECINFO20, BAUD_PLAIN, CLKDIV_C3,
    .bootloader_offset = 0x0,                    /* ET targets/esp32s3.py:39 */
    .usb_otg_block = 0x800,                      /* ET targets/esp32s3.py:91,328-330,389-393 */
    .spi = SPI_S2(0x60002000), .spi_addr_msb = false, /* ET targets/esp32s3.py:27-35 */
    SIZES(esp32_sizes), FREQS(esp32_freqs),
    .efuse_base = 0x60007000, .mac_reg = 0x60007044, /* ET targets/esp32s3.py:44-47 */
    /* Major w5[25:24]; minor w5 b23 << 3 | w3[20:18]; both 0 on ECO0: raw
     * minor & 7 == 0, BLOCK2 (0x6000705C) w4[1:0] == 1 and w3[26:24] == 1
     * (ET targets/esp32s3.py:142-181). */
    .rev_rule = EG_REV_ESP32S3,
    .rev_major = F1(0x60007058, 24, 2), .rev_minor = F2(0x60007058, 23, 1, 0x60007050, 18, 3),
    .rev_aux = {B(0x6000706C, 0, 2), B(0x60007050, 24, 3)},
    .pkg = F1(0x60007050, 21, 3), PKGS(s3_pkgs), /* ET targets/esp32s3.py:138-140 */
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 40,  /* ET targets/esp32s3.py:241-243 */
    .crypt_cnt = B(0x60007034, 18, 3), .secure_boot = B(0x60007038, 20, 1), .dl_encrypt_disabled = B(0x60007030, 20, 1), /* ET targets/esp32s3.py:64-71 */
    .usb_serial_jtag = true, .usb_pins = {19, 20}, /* ET targets/esp32s3.py:379-383 */
    .uartdev_buf_no = 0x3FCEF14C, .uartdev_otg = -1, .uartdev_jtag = 3, /* EJS targets/esp32s3.js:25-26 */
    .wdt_disable = SCRIPT(s3_wdt_disable), .wdt_reset = SCRIPT(s3_wdt_reset), .hard_reset_prefix = SCRIPT(s3_reset_prefix),
    RESETS(CLASSIC, CLASSIC, EG_HARD_RESET_OTG_STRAPS), /* ET targets/esp32s3.py:357-369 */
    .otg_strap_reg = 0x60004038, .otg_strap_mask = 1u << 3, /* ET targets/esp32s3.py:93-97 */
    .otg_option1_reg = 0x6000812C, .otg_option1_mask = 0x1,
    .stub_sb_entry_ptr = 0x3FCEF688,             /* rom_spiflash_legacy_funcs.read (ET loader.py:1381-1429) */
  },
  [EG_CHIP_ESP32C3] = {
    .id = EG_CHIP_ESP32C3, .name = "ESP32-C3", .arg_name = "esp32c3",
    MAGIC(magic_c3), .chip_id = 5,               /* ET targets/esp32c3.py:17,34 */
    LATER_ROM, SECINFO20, BAUD_PLAIN, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .bootloader_offset = 0x0,                    /* ET targets/esp32c3.py:36 */
    .spi = SPI_S2(0x60002000), .spi_addr_msb = false, /* ET targets/esp32c3.py:24-32 */
    SIZES(esp32_sizes), FREQS(esp32_freqs),
    .legacy_min_rev_minor = true,                /* ET cmds.py:1051-1056 */
    .efuse_base = 0x60008800, .mac_reg = 0x60008844, /* ET targets/esp32c3.py:42-44 */
    /* Major w5[25:24]; minor w5 b23 << 3 | w3[20:18] (ET targets/esp32c3.py:118-127). */
    .rev_major = F1(0x60008858, 24, 2), .rev_minor = F2(0x60008858, 23, 1, 0x60008850, 18, 3),
    .pkg = F1(0x60008850, 21, 3), PKGS(c3_pkgs), /* ET targets/esp32c3.py:114-116 */
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 40,  /* ET targets/esp32c3.py:163-165 */
    .crypt_cnt = B(0x60008834, 18, 3), .secure_boot = B(0x60008838, 20, 1), .dl_encrypt_disabled = B(0x60008830, 20, 1), /* ET targets/esp32c3.py:61-68 */
    .usb_serial_jtag = true, .usb_pins = {18, 19}, /* ET targets/esp32c3.py:258-262 */
    .uartdev_otg = -1, .uartdev_jtag = -1,       /* not in EJS (FACT "Not found") */
    .wdt_disable = SCRIPT(c3_wdt_disable), .wdt_reset = SCRIPT(c3_wdt_reset),
    RESETS(CLASSIC, CLASSIC, CLASSIC),           /* ESP32ROM -> ET loader.py:2085-2093 */
    .no_stub_secure_boot = true,                 /* ET cmds.py:2475-2479 */
  },
  [EG_CHIP_ESP32C6] = {
    .id = EG_CHIP_ESP32C6, .name = "ESP32-C6", .arg_name = "esp32c6",
    MAGIC(magic_c6), .chip_id = 13,              /* ET targets/esp32c6.py:16 */
    LATER_ROM, SECINFO20, BAUD_PLAIN, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .bootloader_offset = 0x0,                    /* ET targets/esp32c6.py:23 */
    .spi = SPI_S2(0x60003000), .spi_addr_msb = false, /* ET targets/esp32c6.py:25-31 */
    SIZES(esp32_sizes), FREQS(c6_freqs),
    .efuse_base = 0x600B0800, .mac_reg = 0x600B0844, .mac_eui64 = true, /* ET targets/esp32c6.py:35-37,155-170 */
    /* Major w3[23:22], minor w3[21:18], package w3[26:24], flash_cap w4[2:0] (ET targets/esp32c6.py:99-113). */
    .rev_major = F1(0x600B0850, 22, 2), .rev_minor = F1(0x600B0850, 18, 4),
    .pkg = F1(0x600B0850, 24, 3), .pkg_sub = B(0x600B0854, 0, 3), PKGS(c6_pkgs),
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 40,  /* ET targets/esp32c6.py:148-150 */
    .crypt_cnt = B(0x600B0834, 18, 3), .secure_boot = B(0x600B0838, 20, 1), .dl_encrypt_disabled = B(0x600B0830, 20, 1), /* ET targets/esp32c6.py:54-61 */
    .usb_serial_jtag = true, .usb_pins = {12, 13}, /* ET targets/esp32c6.py:199-206 */
    .uartdev_otg = -1, .uartdev_jtag = -1,       /* not in EJS (FACT "Not found") */
    .wdt_disable = SCRIPT(c6_wdt_disable),       /* no wdt_reset: ET targets/esp32c6.py:208-211 */
    RESETS(CLASSIC, CLASSIC, CLASSIC),
  },
  [EG_CHIP_ESP32H2] = {
    .id = EG_CHIP_ESP32H2, .name = "ESP32-H2", .arg_name = "esp32h2",
    MAGIC(magic_h2), .chip_id = 16,              /* ET targets/esp32h2.py:14 */
    LATER_ROM, SECINFO20, BAUD_PLAIN, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .bootloader_offset = 0x0,
    .spi = SPI_S2(0x60003000), .spi_addr_msb = false, /* inherited, ET targets/esp32c6.py:25-31 */
    SIZES(esp32_sizes), FREQS(h2_freqs),
    .efuse_base = 0x600B0800, .mac_reg = 0x600B0844, .mac_eui64 = true, /* inherited, ET targets/esp32c6.py:35-37,155-170 */
    /* Major w3[22:21], minor w3[20:18], package w4[2:0] (ET targets/esp32h2.py:50-60). */
    .rev_major = F1(0x600B0850, 21, 2), .rev_minor = F1(0x600B0850, 18, 3),
    .pkg = F1(0x600B0854, 0, 3), PKGS(h2_pkgs),
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 32,  /* ET targets/esp32h2.py:73-75 */
    .crypt_cnt = B(0x600B0834, 18, 3), .secure_boot = B(0x600B0838, 20, 1), .dl_encrypt_disabled = B(0x600B0830, 20, 1), /* inherited, ET targets/esp32c6.py:54-61 */
    .usb_serial_jtag = true, .usb_pins = {26, 27}, /* ET targets/esp32h2.py:81-88 */
    /* EJS targets/esp32h2.js:23-24 copies the S3's address, which is not in
     * the H2's memory (DRAM 0x408xxxxx, FACT §6): kept only because
     * esptool-js reads it on connect (a simulator must answer it). */
    .uartdev_buf_no = 0x3FCEF14C, .uartdev_otg = -1, .uartdev_jtag = 3,
    .wdt_disable = SCRIPT(h2_wdt_disable),       /* no wdt_reset: ET targets/esp32h2.py:77-79 */
    RESETS(CLASSIC, CLASSIC, CLASSIC),
  },
  [EG_CHIP_ESP32C2] = {
    .id = EG_CHIP_ESP32C2, .name = "ESP32-C2", .arg_name = "esp32c2",
    MAGIC(magic_c2), .chip_id = 12,              /* ET targets/esp32c2.py:17 */
    LATER_ROM, SECINFO20, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .rom_baud = EG_ROM_BAUD_XTAL26_AS_40, .rom_baud_in_sdm = false, /* ET targets/esp32c2.py:120-147 */
    .bootloader_offset = 0x0,
    .spi = SPI_S2(0x60002000), .spi_addr_msb = false, /* inherited, ET targets/esp32c3.py:24-32 */
    SIZES(esp32_sizes), FREQS(c2_freqs),
    /* MAC at BLOCK2 0x60008840; its word 1 also holds package [24:22], major
     * [21:20], minor [19:16] (ET targets/esp32c2.py:24-26,73-105). */
    .efuse_base = 0x60008800, .mac_reg = 0x60008840,
    .rev_major = F1(0x60008844, 20, 2), .rev_minor = F1(0x60008844, 16, 4),
    .pkg = F1(0x60008844, 22, 3), PKGS(c2_pkgs),
    .xtal_rule = EG_XTAL_ESTIMATE,               /* ET targets/esp32c2.py:116-118 */
    .crypt_cnt = B(0x60008830, 7, 3), .secure_boot = B(0x60008830, 21, 1), .dl_encrypt_disabled = B(0x60008830, 6, 1), /* ET targets/esp32c2.py:28-35 */
    .uartdev_otg = -1, .uartdev_jtag = -1,       /* no USB port in ET (FACT "Not found") */
    .wdt_reset = SCRIPT(c2_wdt_reset),           /* no wdt_disable: ET targets/esp32c2.py:149-153 */
    RESETS(CLASSIC, CLASSIC, CLASSIC),
    .no_stub_rev0 = true,                        /* ECO0 (ET targets/esp32c2.py:149-153) */
  },
  [EG_CHIP_ESP32C5] = {
    .id = EG_CHIP_ESP32C5, .name = "ESP32-C5", .arg_name = "esp32c5",
    MAGIC(magic_c5), .chip_id = 23,              /* ET targets/esp32c5.py:18 */
    LATER_ROM, SECINFO20, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .rom_baud = EG_ROM_BAUD_XTAL_EXPECT, .rom_baud_in_sdm = false, /* ET targets/esp32c5.py:145-178 */
    .bootloader_offset = 0x2000,                 /* ET targets/esp32c5.py:20 */
    .spi = SPI_S2(0x60003000), .spi_addr_msb = false, /* inherited, ET targets/esp32c6.py:25-31 */
    SIZES(esp32_sizes), FREQS(c5_freqs),
    .efuse_base = 0x600B4800, .mac_reg = 0x600B4844, .mac_eui64 = true, /* ET targets/esp32c5.py:22-24; read_mac from esp32c6.py:155-170 */
    /* Major w2[5:4], minor w2[3:0], package w2[28:26] (ET targets/esp32c5.py:103-113). */
    .rev_major = F1(0x600B484C, 4, 2), .rev_minor = F1(0x600B484C, 0, 4),
    .pkg = F1(0x600B484C, 26, 3), PKGS(c5_pkgs),
    .xtal_rule = EG_XTAL_ESTIMATE,               /* ET targets/esp32c5.py:132-135 */
    .rom_xtal_expect = B(0x60096110, 24, 7),     /* PCR_SYSCLK_CONF XTAL_FREQ (ET targets/esp32c5.py:59-61,137-140) */
    .crypt_cnt = B(0x600B4834, 16, 3), .secure_boot = B(0x600B4838, 25, 1), .dl_encrypt_disabled = B(0x600B4830, 20, 1), /* ET targets/esp32c5.py:45-52 */
    .usb_serial_jtag = true, .usb_pins = {13, 14}, /* ET targets/esp32c5.py:216-223 */
    .uartdev_buf_no = 0x4085F514, .uartdev_otg = -1, .uartdev_jtag = 3, /* EJS targets/esp32c5.js:42,172-176 */
    .wdt_disable = SCRIPT(c6_wdt_disable), .wdt_reset = SCRIPT(c6_wdt_reset), /* C6 registers, C3 method (ET targets/esp32c5.py:225-227) */
    RESETS(CLASSIC, EG_HARD_RESET_USB, CLASSIC), /* ET targets/esp32c5.py:142-143 */
  },
  [EG_CHIP_ESP32C61] = {
    .id = EG_CHIP_ESP32C61, .name = "ESP32-C61", .arg_name = "esp32c61",
    MAGIC(magic_c61), .chip_id = 20,             /* ET targets/esp32c61.py:15 */
    LATER_ROM, SECINFO20, BAUD_PLAIN, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .bootloader_offset = 0x0,                    /* inherited, ET targets/esp32c6.py:23 */
    .spi = SPI_S2(0x60003000), .spi_addr_msb = false, /* inherited, ET targets/esp32c6.py:25-31 */
    SIZES(esp32_sizes), FREQS(c5_freqs),
    .efuse_base = 0x600B4800, .mac_reg = 0x600B4844, /* ET targets/esp32c61.py:19-21; base MAC only, :101-110 */
    /* Major w2[5:4], minor w2[3:0], package w2[28:26] (ET targets/esp32c61.py:78-88). */
    .rev_major = F1(0x600B484C, 4, 2), .rev_minor = F1(0x600B484C, 0, 4),
    .pkg = F1(0x600B484C, 26, 3), PKGS(c61_pkgs),
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 40,  /* inherited, ET targets/esp32c6.py:148-150 */
    .crypt_cnt = B(0x600B4830, 23, 3), .secure_boot = B(0x600B4834, 26, 1), .dl_encrypt_disabled = B(0x600B4830, 14, 1), /* ET targets/esp32c61.py:38-45 */
    /* USB-Serial/JTAG on GPIO 12/13: inherited check_spi_connection
     * (ET targets/esp32c6.py:199-206) and watchdog disable (esp32c3.py:222-243). */
    .usb_serial_jtag = true, .usb_pins = {12, 13},
    .uartdev_otg = -1, .uartdev_jtag = -1,       /* not in EJS (FACT "Not found") */
    .wdt_disable = SCRIPT(c6_wdt_disable), .wdt_reset = SCRIPT(c6_wdt_reset), /* ET targets/esp32c61.py:112-114 */
    RESETS(CLASSIC, CLASSIC, CLASSIC),
  },
  [EG_CHIP_ESP32P4] = {
    .id = EG_CHIP_ESP32P4, .name = "ESP32-P4", .arg_name = "esp32p4",
    MAGIC(magic_p4), .chip_id = 18,              /* ET targets/esp32p4.py:17,42 */
    LATER_ROM, SECINFO20, BAUD_PLAIN, .rev_rule = EG_REV_FIELDS, CLKDIV_C3,
    .bootloader_offset = 0x2000,                 /* ET targets/esp32p4.py:24 */
    .usb_otg_block = 0x800,                      /* ET targets/esp32p4.py:78,242-244,364-368 */
    .spi = SPI_S2(0x5008D000), .spi_addr_msb = false, /* ET targets/esp32p4.py:32-40 */
    SIZES(esp32_sizes), FREQS(esp32_freqs),
    .flash_power = EG_FLASH_POWER_P4_ECO6,       /* ET targets/esp32p4.py:242-248,293-358 */
    .efuse_base = 0x5012D000, .mac_reg = 0x5012D044, /* ET targets/esp32p4.py:28-30 */
    /* Major w2 b23 << 2 | w2[5:4], minor w2[3:0], package w2[22:20] (ET targets/esp32p4.py:142-153). */
    .rev_major = F2(0x5012D04C, 23, 1, 0x5012D04C, 4, 2), .rev_minor = F1(0x5012D04C, 0, 4),
    .pkg = F1(0x5012D04C, 20, 3), PKGS(p4_pkgs),
    .xtal_rule = EG_XTAL_FIXED, .xtal_mhz = 40,  /* ET targets/esp32p4.py:166-168 */
    .crypt_cnt = B(0x5012D034, 18, 3), .secure_boot = B(0x5012D038, 20, 1), .dl_encrypt_disabled = B(0x5012D030, 20, 1), /* ET targets/esp32p4.py:63-72 */
    .flash_xpd_on = B(0x5012D034, 16, 1),        /* ET targets/esp32p4.py:66-69 */
    .usb_serial_jtag = true, .usb_pins = {24, 25}, /* ET targets/esp32p4.py:268-275 */
    /* .bss UartDev.buff_uart_no: (rev < 3.0 ? 0x4FF3FEB0 : 0x4FFBFEB0) + 24; OTG 5, JTAG 6 (EJS targets/esp32p4.js:74-76,211-216). */
    .uartdev_buf_no = 0x4FF3FEC8, .uartdev_buf_no_rev3 = 0x4FFBFEC8, .uartdev_otg = 5, .uartdev_jtag = 6,
    .wdt_disable = SCRIPT(p4_wdt_disable), .wdt_reset = SCRIPT(p4_wdt_reset),
    RESETS(CLASSIC, CLASSIC, EG_HARD_RESET_WATCHDOG), /* ET targets/esp32p4.py:287-291 */
    .otg_strap_reg = 0x500E0038, .otg_strap_mask = 0x8, /* not used by its reset; ET targets/esp32p4.py:80-83 */
    .otg_option1_reg = 0x50110008, .otg_option1_mask = 0x4,
    .stub_old = "esp32p4-rev1", .stub_old_below_major = 3, /* ET targets/esp32p4.py:370-373 */
  },
};

/* ------------------------------------------------------------ lookup */

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

char *eg_chip_names(char *buf, size_t cap, const char *sep) {
  size_t used = 0;
  if (!cap) return buf;
  buf[0] = '\0';
  for (size_t i = 0; i < EG_CHIP__COUNT && used < cap - 1; i++) {
    const int n = snprintf(buf + used, cap - used, "%s%s", i ? sep : "", chips[i].arg_name);
    if (n < 0) break;
    used += (size_t)n;
  }
  return buf;
}

/* ------------------------------------------------------------ identity */

static uint32_t bits_of(eg_bits b, uint32_t v) {
  if (!b.width) return 0;
  return (v >> b.shift) & (b.width >= 32 ? 0xFFFFFFFFu : (1u << b.width) - 1);
}

/* The registers read after detection: the identity list. */
typedef struct regset {
  uint32_t addr[EG_CHIP_IDENT_MAX];
  size_t n;
} regset;

static void add_reg(regset *r, uint32_t addr) {
  if (!addr) return;
  for (size_t i = 0; i < r->n; i++)
    if (r->addr[i] == addr) return;
  /* EG_CHIP_IDENT_MAX bounds every row (test_chips checks it); a row that
   * outgrew it loses the extra registers rather than memory. */
  if (r->n < EG_CHIP_IDENT_MAX) r->addr[r->n++] = addr;
}

static void add_bits(regset *r, eg_bits b) {
  if (b.width) add_reg(r, b.addr);
}

static void add_field(regset *r, eg_field f) {
  add_bits(r, f.hi);
  add_bits(r, f.lo);
}

/* In the order a reader of esptool's trace expects: MAC, revision and
 * package, crystal, CHANGE_BAUDRATE inputs, SPI pads, security. */
static void ident_regset(const eg_chip *c, regset *r) {
  r->n = 0;
  switch (c->mac_rule) {
  case EG_MAC_EFUSE:
    add_reg(r, c->mac_reg);
    add_reg(r, c->mac_reg + 4);
    break;
  case EG_MAC_ESP8266_OTP: /* MAC0, MAC1, MAC3 (ET targets/esp8266.py:135-150) */
    add_reg(r, c->efuse_base);
    add_reg(r, c->efuse_base + 4);
    add_reg(r, c->efuse_base + 12);
    break;
  }
  switch (c->rev_rule) {
  case EG_REV_NONE: break;
  case EG_REV_ESP32:
    for (size_t i = 0; i < N(c->rev_aux); i++) add_bits(r, c->rev_aux[i]);
    add_field(r, c->rev_minor);
    break;
  case EG_REV_FIELDS:
  case EG_REV_ESP32S3:
    add_field(r, c->rev_major);
    add_field(r, c->rev_minor);
    for (size_t i = 0; i < N(c->rev_aux); i++) add_bits(r, c->rev_aux[i]);
    break;
  }
  switch (c->desc_rule) {
  case EG_DESC_PACKAGE:
    add_field(r, c->pkg);
    add_bits(r, c->pkg_sub);
    break;
  case EG_DESC_ESP8266: /* the 128 OTP bits (ET targets/esp8266.py:64-70) */
    for (uint32_t i = 0; i < 4; i++) add_reg(r, c->efuse_base + 4 * i);
    break;
  }
  switch (c->xtal_rule) {
  case EG_XTAL_FIXED: break;
  case EG_XTAL_ESTIMATE: add_reg(r, c->uart_clkdiv_reg); break;
  }
  switch (c->rom_baud) {
  case EG_ROM_BAUD_NONE:
  case EG_ROM_BAUD_PLAIN:
  case EG_ROM_BAUD_XTAL26_AS_40: break;
  case EG_ROM_BAUD_ESP32_RTC:
    add_reg(r, c->rtc_cali_reg);
    add_bits(r, c->rom_ck8m);
    break;
  case EG_ROM_BAUD_XTAL_EXPECT: add_bits(r, c->rom_xtal_expect); break;
  }
  switch (c->rom_attach) {
  case EG_ATTACH_ZERO:
  case EG_ATTACH_FLASH_BEGIN: break;
  case EG_ATTACH_ESP32_PADS:
    for (size_t i = 0; i < N(c->spi_pads); i++) add_bits(r, c->spi_pads[i]);
    break;
  }
  add_bits(r, c->crypt_cnt);
  add_bits(r, c->secure_boot);
  add_bits(r, c->secure_boot_rev3);
  add_bits(r, c->dl_encrypt_disabled);
  switch (c->flash_power) {
  case EG_FLASH_POWER_NONE: break;
  case EG_FLASH_POWER_P4_ECO6: add_bits(r, c->flash_xpd_on); break;
  }
}

size_t eg_chip_ident_regs(const eg_chip *c, uint32_t *addrs, size_t cap) {
  regset r;
  ident_regset(c, &r);
  for (size_t i = 0; i < r.n && i < cap; i++) addrs[i] = r.addr[i];
  return r.n;
}

/* The values read, looked up by address (a register not in the list reads 0). */
typedef struct regvals {
  const regset *set;
  const uint32_t *vals;
} regvals;

static uint32_t reg(const regvals *v, uint32_t addr) {
  for (size_t i = 0; i < v->set->n; i++)
    if (v->set->addr[i] == addr) return v->vals[i];
  return 0;
}

static uint32_t get_bits(const regvals *v, eg_bits b) {
  return b.width ? bits_of(b, reg(v, b.addr)) : 0;
}

static uint32_t get_field(const regvals *v, eg_field f) {
  return get_bits(v, f.hi) << f.lo.width | get_bits(v, f.lo);
}

/* MAC = b[15:8], b[7:0], a[31:24], a[23:16], a[15:8], a[7:0]
 * (ET targets/esp32.py:317-324 for w1/w2, targets/esp32c3.py:173-180). */
static void mac_from_words(uint32_t a, uint32_t b, uint8_t mac[6]) {
  mac[0] = (uint8_t)(b >> 8);
  mac[1] = (uint8_t)b;
  mac[2] = (uint8_t)(a >> 24);
  mac[3] = (uint8_t)(a >> 16);
  mac[4] = (uint8_t)(a >> 8);
  mac[5] = (uint8_t)a;
}

static void decode_mac(const eg_chip *c, const regvals *v, eg_chip_ident *out) {
  switch (c->mac_rule) {
  case EG_MAC_EFUSE: {
    const uint32_t a = reg(v, c->mac_reg), b = reg(v, c->mac_reg + 4);
    mac_from_words(a, b, out->mac);
    out->has_mac = true;
    /* EUI-64 middle bytes: b[31:16] (ET targets/esp32c6.py:155-170). */
    if (c->mac_eui64) {
      out->has_mac_ext = true;
      out->mac_ext[0] = (uint8_t)(b >> 24);
      out->mac_ext[1] = (uint8_t)(b >> 16);
    }
    break;
  }
  case EG_MAC_ESP8266_OTP: {
    /* ET targets/esp8266.py:135-150: OUI = MAC3[23:0] if MAC3 != 0, else by
     * MAC1[23:16]: 0 -> 18:FE:34, 1 -> AC:D0:74, other -> "Unknown OUI". */
    const uint32_t mac0 = reg(v, c->efuse_base), mac1 = reg(v, c->efuse_base + 4), mac3 = reg(v, c->efuse_base + 12);
    uint32_t oui;
    if (mac3 != 0) oui = mac3 & 0xFFFFFF;
    else if (((mac1 >> 16) & 0xFF) == 0) oui = 0x18FE34;
    else if (((mac1 >> 16) & 0xFF) == 1) oui = 0xACD074;
    else break; /* esptool: FatalError("Unknown OUI"): no MAC */
    out->mac[0] = (uint8_t)(oui >> 16);
    out->mac[1] = (uint8_t)(oui >> 8);
    out->mac[2] = (uint8_t)oui;
    out->mac[3] = (uint8_t)(mac1 >> 8);
    out->mac[4] = (uint8_t)mac1;
    out->mac[5] = (uint8_t)(mac0 >> 24);
    out->has_mac = true;
    break;
  }
  }
}

/* ESP32 major revision from its three bits (ET targets/esp32.py:208-221). */
static int esp32_major(uint32_t bit0, uint32_t bit1, uint32_t bit2) {
  switch (bit2 << 2 | bit1 << 1 | bit0) {
  case 1: return 1;
  case 3: return 2;
  case 7: return 3;
  default: return 0;
  }
}

static void decode_rev(const eg_chip *c, const regvals *v, eg_chip_ident *out) {
  switch (c->rev_rule) {
  case EG_REV_NONE: return;
  case EG_REV_FIELDS:
    out->rev_major = (int)get_field(v, c->rev_major);
    out->rev_minor = (int)get_field(v, c->rev_minor);
    break;
  case EG_REV_ESP32:
    out->rev_major = esp32_major(get_bits(v, c->rev_aux[0]), get_bits(v, c->rev_aux[1]), get_bits(v, c->rev_aux[2]));
    out->rev_minor = (int)get_field(v, c->rev_minor);
    break;
  case EG_REV_ESP32S3: {
    /* ECO0: "the major version field was allocated to other purposes when
     * block version is v1.1" (ET targets/esp32s3.py:142-150). */
    const uint32_t minor = get_field(v, c->rev_minor);
    const bool eco0 = (minor & 7) == 0 && get_bits(v, c->rev_aux[0]) == 1 && get_bits(v, c->rev_aux[1]) == 1;
    out->rev_major = eco0 ? 0 : (int)get_field(v, c->rev_major);
    out->rev_minor = eco0 ? 0 : (int)minor;
    break;
  }
  }
  out->has_rev = true;
}

static const char *pkg_name(const eg_chip *c, int pkg, int sub, int major) {
  for (size_t i = 0; i < c->npkg_names; i++) {
    const eg_pkg_name *p = &c->pkg_names[i];
    if (p->pkg == pkg && (p->sub == ANY || p->sub == sub) && (p->major == ANY || p->major == major)) return p->name;
  }
  return NULL;
}

/* ESP8266 / ESP8285 from the 128 OTP bits (ET targets/esp8266.py:72-106):
 * ESP8285 when bit 4 or bit 80 is set; its flash size from bits 4, 121, 122,
 * 123; H (high temperature) when bit 5 is set. */
static const char *esp8266_name(const eg_chip *c, const regvals *v) {
  const uint32_t w0 = reg(v, c->efuse_base), w2 = reg(v, c->efuse_base + 8), w3 = reg(v, c->efuse_base + 12);
  const bool r0_4 = w0 >> 4 & 1, r3_25 = w3 >> 25 & 1, r3_26 = w3 >> 26 & 1, r3_27 = w3 >> 27 & 1;
  if (!r0_4 && !(w2 >> 16 & 1)) return "ESP8266EX";
  int flash = -1;
  if (r0_4 && !r3_25 && !r3_27) flash = r3_26 ? 2 : 1;
  if (!r0_4 && r3_25 && !r3_27) flash = r3_26 ? 4 : 2;
  const bool hot = w0 >> 5 & 1;
  switch (flash) {
  case 1: return hot ? "ESP8285H08" : "ESP8285N08";
  case 2: return hot ? "ESP8285H16" : "ESP8285N16";
  default: return "ESP8285";
  }
}

static void decode_desc(const eg_chip *c, const regvals *v, eg_chip_ident *out) {
  const char *name = NULL;
  switch (c->desc_rule) {
  case EG_DESC_PACKAGE:
    out->pkg = (int)get_field(v, c->pkg);
    name = pkg_name(c, out->pkg, c->pkg_sub.width ? (int)get_bits(v, c->pkg_sub) : ANY, out->rev_major);
    break;
  case EG_DESC_ESP8266: name = esp8266_name(c, v); break;
  }
  /* "<name> (revision vMAJ.MIN)" (every ET target get_chip_description);
   * "Unknown <chip>" for a package the table lacks. */
  char unknown[40];
  if (!name) {
    snprintf(unknown, sizeof unknown, "Unknown %s", c->name);
    name = unknown;
  }
  if (out->has_rev)
    snprintf(out->desc, sizeof out->desc, "%s (revision v%d.%d)", name, out->rev_major, out->rev_minor);
  else
    snprintf(out->desc, sizeof out->desc, "%s", name);
}

/* esptool's estimate: baud * (CLKDIV & 0xFFFFF) / 1e6 / divider, then > 45
 * -> 48, > 33 -> 40, else 26 (ET loader.py:367,2055-2076). Integers, so the
 * thresholds compare exactly. */
static int estimate_xtal(const eg_chip *c, uint32_t baud, uint32_t clkdiv) {
  const uint64_t hz = (uint64_t)baud * (clkdiv & 0xFFFFF); /* = est * 1e6 * divider */
  const uint64_t div = c->xtal_clk_divider ? c->xtal_clk_divider : 1;
  if (hz > 45000000ull * div) return 48;
  if (hz > 33000000ull * div) return 40;
  return 26;
}

static int xtal_of(const eg_chip *c, uint32_t baud, uint32_t clkdiv) {
  switch (c->xtal_rule) {
  case EG_XTAL_FIXED: return c->xtal_mhz;
  case EG_XTAL_ESTIMATE: return baud ? estimate_xtal(c, baud, clkdiv) : 0;
  }
  return 0;
}

static bool popcount_odd(uint32_t v) {
  bool odd = false;
  for (; v; v &= v - 1) odd = !odd;
  return odd;
}

static uint32_t esp32_pads(const eg_chip *c, const regvals *v) {
  uint32_t p[5];
  for (size_t i = 0; i < 5; i++) p[i] = get_bits(v, c->spi_pads[i]);
  if (!p[0] && !p[1] && !p[2] && !p[3] && !p[4]) return 0; /* default pins */
  /* hd << 24 | cs << 18 | d << 12 | q << 6 | clk, eFuse values unchanged
   * (ET cmds.py:1670-1715; PROT §10 on pins 30/31). */
  return p[0] | p[1] << 6 | p[2] << 12 | p[3] << 18 | p[4] << 24;
}

/* The ESP32 ROM's crystal estimate x 40: TIMERS_RTC_CALI_VALUE (RTCCALICFG1
 * >> 7 & 0x1FFFFFF) * 15625 * CK8M (ET targets/esp32.py:65-67,418-430). */
static uint64_t esp32_rom_cal_x40(uint32_t rtc_cali, uint32_t ck8m) {
  return (uint64_t)((rtc_cali >> 7) & 0x1FFFFFF) * 15625u * ck8m;
}

void eg_chip_decode(const eg_chip *c, const uint32_t *vals, uint32_t baud, eg_chip_ident *out) {
  regset set;
  ident_regset(c, &set);
  const regvals v = {&set, vals};
  memset(out, 0, sizeof *out);
  out->chip = c;
  decode_mac(c, &v, out);
  decode_rev(c, &v, out);
  decode_desc(c, &v, out);
  out->crystal_mhz = xtal_of(c, baud, reg(&v, c->uart_clkdiv_reg));
  switch (c->rom_baud) {
  case EG_ROM_BAUD_NONE:
  case EG_ROM_BAUD_PLAIN:
  case EG_ROM_BAUD_XTAL26_AS_40: break;
  case EG_ROM_BAUD_ESP32_RTC:
    out->rom_cal_x40 = esp32_rom_cal_x40(reg(&v, c->rtc_cali_reg), get_bits(&v, c->rom_ck8m));
    break;
  case EG_ROM_BAUD_XTAL_EXPECT: out->rom_xtal_expect_mhz = (int)get_bits(&v, c->rom_xtal_expect); break;
  }
  switch (c->rom_attach) {
  case EG_ATTACH_ZERO:
  case EG_ATTACH_FLASH_BEGIN: break;
  case EG_ATTACH_ESP32_PADS: out->spi_attach_arg = esp32_pads(c, &v); break;
  }
  /* Security (ET targets/esp32.py:177-190 get_flash_encryption_enabled /
   * get_secure_boot_enabled, inherited with each chip's registers). */
  out->flash_crypt_cnt = get_bits(&v, c->crypt_cnt);
  out->flash_encryption = popcount_odd(out->flash_crypt_cnt);
  out->secure_boot = get_bits(&v, c->secure_boot) || (eg_chip_rev(out) >= 300 && get_bits(&v, c->secure_boot_rev3));
  out->dl_encrypt_disabled = get_bits(&v, c->dl_encrypt_disabled) != 0;
  out->flash_xpd_on = get_bits(&v, c->flash_xpd_on) != 0;
}

/* ------------------------------------------------------------ encode (simulators) */

typedef struct regout {
  const regset *set;
  uint32_t *vals;
} regout;

static void put_bits(const regout *o, eg_bits b, uint32_t v) {
  if (!b.width) return;
  for (size_t i = 0; i < o->set->n; i++)
    if (o->set->addr[i] == b.addr) {
      const uint32_t mask = (b.width >= 32 ? 0xFFFFFFFFu : (1u << b.width) - 1) << b.shift;
      o->vals[i] = (o->vals[i] & ~mask) | ((v << b.shift) & mask);
    }
}

static void put_field(const regout *o, eg_field f, uint32_t v) {
  put_bits(o, f.lo, v);
  put_bits(o, f.hi, f.lo.width < 32 ? v >> f.lo.width : 0);
}

static void put_reg(const regout *o, uint32_t addr, uint32_t v) { put_bits(o, (eg_bits){addr, 0, 32}, v); }

void eg_chip_encode(const eg_chip *c, const eg_chip_sim *f, uint32_t baud, uint32_t *vals) {
  regset set;
  ident_regset(c, &set);
  const regout o = {&set, vals};
  memset(vals, 0, set.n * sizeof *vals);
  const uint8_t *m = f->mac;
  const uint32_t low = (uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5];
  switch (c->mac_rule) {
  case EG_MAC_EFUSE:
    put_reg(&o, c->mac_reg, low);
    put_bits(&o, (eg_bits){c->mac_reg + 4, 0, 16}, (uint32_t)m[0] << 8 | m[1]);
    if (c->mac_eui64) put_bits(&o, (eg_bits){c->mac_reg + 4, 16, 16}, (uint32_t)f->mac_ext[0] << 8 | f->mac_ext[1]);
    break;
  case EG_MAC_ESP8266_OTP: /* OUI in MAC3 (an OUI of 0 would read as 18:fe:34) */
    put_reg(&o, c->efuse_base + 12, (uint32_t)m[0] << 16 | (uint32_t)m[1] << 8 | m[2]);
    put_reg(&o, c->efuse_base + 4, (uint32_t)m[3] << 8 | m[4]);
    put_reg(&o, c->efuse_base, (uint32_t)m[5] << 24);
    break;
  }
  switch (c->rev_rule) {
  case EG_REV_NONE: break;
  case EG_REV_FIELDS:
  case EG_REV_ESP32S3: /* rev_aux (the ECO0 block version) stays 0 */
    put_field(&o, c->rev_major, (uint32_t)f->rev_major);
    put_field(&o, c->rev_minor, (uint32_t)f->rev_minor);
    break;
  case EG_REV_ESP32: {
    /* The bit pattern esp32_major() maps to the major: 0, 1, 3, 7. */
    const uint32_t code = f->rev_major >= 3 ? 7 : f->rev_major == 2 ? 3 : f->rev_major == 1 ? 1 : 0;
    for (size_t i = 0; i < 3; i++) put_bits(&o, c->rev_aux[i], code >> i & 1);
    put_field(&o, c->rev_minor, (uint32_t)f->rev_minor);
    break;
  }
  }
  switch (c->desc_rule) {
  case EG_DESC_PACKAGE:
    put_field(&o, c->pkg, (uint32_t)f->pkg);
    put_bits(&o, c->pkg_sub, (uint32_t)f->pkg_sub);
    break;
  case EG_DESC_ESP8266: break;
  }
  switch (c->xtal_rule) {
  case EG_XTAL_FIXED: break;
  case EG_XTAL_ESTIMATE:
    /* CLKDIV = UART clock / baud, rounded (the ROM's own auto-baud). */
    if (baud)
      put_reg(&o, c->uart_clkdiv_reg,
              (uint32_t)(((uint64_t)f->crystal_mhz * 1000000u * c->xtal_clk_divider + baud / 2) / baud) & 0xFFFFF);
    break;
  }
  put_bits(&o, c->rom_xtal_expect, (uint32_t)f->rom_xtal_expect_mhz);
  put_bits(&o, c->crypt_cnt, f->flash_encryption ? 1 : 0);
  put_bits(&o, c->secure_boot, f->secure_boot ? 1 : 0);
}

uint32_t eg_chip_rom_baud_value(const eg_chip *c, const eg_chip_ident *id, uint32_t baud) {
  switch (c->rom_baud) {
  case EG_ROM_BAUD_NONE: return 0;
  case EG_ROM_BAUD_PLAIN: return baud;
  case EG_ROM_BAUD_ESP32_RTC: {
    /* The ROM derives its divider from the drifting 8 MHz clock: send
     * baud * f_rom // f_valid, f_valid 40 MHz if f_rom > 33 MHz else 26 MHz
     * (ET targets/esp32.py:432-446). Without calibration data esptool would
     * send 0, which no ROM can use: send the rate unchanged. */
    const uint64_t x40 = id ? id->rom_cal_x40 : 0;
    if (!x40) return baud;
    const uint64_t f_valid = x40 > 33000000ull * 40 ? 40000000ull : 26000000ull;
    return (uint32_t)((uint64_t)baud * x40 / (f_valid * 40));
  }
  case EG_ROM_BAUD_XTAL26_AS_40:
    /* The C2 ROM assumes a 40 MHz crystal (ET targets/esp32c2.py:127-135). */
    return id && id->crystal_mhz == 26 ? (uint32_t)((uint64_t)baud * 40 / 26) : baud;
  case EG_ROM_BAUD_XTAL_EXPECT:
    /* The C5 ROM computes the divider from the crystal it expects
     * (ET targets/esp32c5.py:151-165). */
    if (id && id->crystal_mhz == 48 && id->rom_xtal_expect_mhz == 40) return (uint32_t)((uint64_t)baud * 40 / 48);
    if (id && id->crystal_mhz == 40 && id->rom_xtal_expect_mhz == 48) return (uint32_t)((uint64_t)baud * 48 / 40);
    return baud;
  }
  return baud;
}

const char *eg_chip_stub_name(const eg_chip *c, const eg_chip_ident *id) {
  if (c->stub_old && id && id->has_rev && id->rev_major < c->stub_old_below_major) return c->stub_old;
  return c->arg_name;
}

bool eg_chip_stub_allowed(const eg_chip *c, const eg_chip_ident *id, bool sdm, const char **why) {
  const char *w = NULL;
  /* ET cmds.py:2470-2484 and targets/esp32c2.py:149-153, in esptool's order. */
  if (sdm) w = "the stub is not supported in Secure Download Mode";
  else if (c->no_stub_secure_boot && id && id->secure_boot) w = "the stub is not supported on this chip with secure boot";
  else if (c->no_stub_rev0 && id && id->has_rev && eg_chip_rev(id) == 0) w = "the stub does not support this chip revision (v0.0)";
  if (why) *why = w;
  return !w;
}

eg_regscript eg_chip_flash_power_script(const eg_chip *c, const eg_chip_ident *id) {
  const eg_regscript none = {NULL, 0};
  switch (c->flash_power) {
  case EG_FLASH_POWER_NONE: return none;
  case EG_FLASH_POWER_P4_ECO6: {
    /* Only v3.1 and v3.2 (ECO6/ECO7) start with the flash off; v3.2 with
     * DOWNLOAD_MODE_XPD_ON only releases the force-on (ET targets/esp32p4.py:298-321). */
    const int rev = id ? eg_chip_rev(id) : -1;
    if (rev == 302 && id->flash_xpd_on) return (eg_regscript)SCRIPT(p4_flash_power_xpd);
    if (rev == 301 || rev == 302) return (eg_regscript)SCRIPT(p4_flash_power);
    return none;
  }
  }
  return none;
}

/* ------------------------------------------------------------ flash */

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

/* On USB-OTG the RAM block and the stub's write block are USB_RAM_BLOCK; the
 * ROM's write block stays 0x400 (ET targets/esp32s2.py:272-274,317-321). */
uint32_t eg_chip_write_block(const eg_chip *c, bool stub, eg_usb_mode usb) {
  if (!stub) return c->rom_write_block;
  return usb == EG_USB_OTG && c->usb_otg_block ? c->usb_otg_block : c->stub_write_block;
}

uint32_t eg_chip_ram_block(const eg_chip *c, eg_usb_mode usb) {
  return usb == EG_USB_OTG && c->usb_otg_block ? c->usb_otg_block : c->ram_block;
}

uint32_t eg_chip_rom_erase_size(const eg_chip *c, uint32_t offset, uint32_t size) {
  if (!c->rom_erase_size_bug) return size;
  /* The ESP8266 ROM erases more than asked around 64 KiB block boundaries;
   * esptool asks for less (ET targets/esp8266.py:152-169). */
  const uint32_t sector = 0x1000, per_block = 16;
  const uint32_t nsect = (uint32_t)(((uint64_t)size + sector - 1) / sector);
  const uint32_t start = offset / sector;
  uint32_t head = per_block - start % per_block;
  if (nsect < head) head = nsect;
  if (nsect < 2 * head) return (nsect + 1) / 2 * sector;
  return (nsect - head) * sector;
}

eg_image_check eg_chip_check_image(const eg_chip *c, const uint8_t *hdr, size_t len, int rev_major, int rev_minor,
                                   char *why, size_t whylen) {
  if (whylen) why[0] = '\0';
  /* Skipped on ESP8266 (ET cmds.py:980); the extended header is 24 bytes:
   * chip_id u16 @12, min_rev u8 @14, min_rev_full u16 @15, max_rev_full
   * u16 @17 (ET bin_image.py:1001-1026). */
  if (!c->image_check || len < 24 || hdr[0] != 0xE9) return EG_IMAGE_NOT_CHECKED;
  const unsigned image_chip = (unsigned)hdr[12] | (unsigned)hdr[13] << 8;
  const unsigned min_rev = hdr[14];
  const unsigned min_full = (unsigned)hdr[15] | (unsigned)hdr[16] << 8;
  const unsigned max_full = (unsigned)hdr[17] | (unsigned)hdr[18] << 8;
  if (c->chip_id < 0 || image_chip != (unsigned)c->chip_id) {
    const eg_chip *o = eg_chip_by_chip_id((int)image_chip);
    if (o)
      snprintf(why, whylen, "image is for %s (chip id %u), the chip is an %s", o->name, image_chip, c->name);
    else
      snprintf(why, whylen, "image is for chip id %u (not a chip espgang knows), the chip is an %s (chip id %d)",
               image_chip, c->name, c->chip_id);
    return EG_IMAGE_WRONG_CHIP;
  }
  /* Which revision fields count (ET cmds.py:1024-1035): max_rev_full 0 ->
   * legacy min_rev; 0xFFFF -> the full fields unless min_rev_full is 0 and
   * min_rev is not; anything else -> the full fields. */
  const bool full = max_full != 0 && !(max_full == 0xFFFF && min_full == 0 && min_rev != 0);
  const int rev = rev_major * 100 + rev_minor;
  if (full) {
    if (rev >= (int)min_full && rev <= (int)max_full) return EG_IMAGE_OK;
    if (max_full == 0xFFFF)
      snprintf(why, whylen, "image needs revision >= v%u.%u, chip is v%d.%d", min_full / 100, min_full % 100, rev_major,
               rev_minor);
    else
      snprintf(why, whylen, "image needs revision v%u.%u to v%u.%u, chip is v%d.%d", min_full / 100, min_full % 100,
               max_full / 100, max_full % 100, rev_major, rev_minor);
    return EG_IMAGE_WRONG_REV;
  }
  /* Legacy min_rev: the minor revision on C3, the major elsewhere (ET cmds.py:1049-1063). */
  if (c->legacy_min_rev_minor) {
    if (rev_minor >= (int)min_rev) return EG_IMAGE_OK;
    snprintf(why, whylen, "image needs minor revision >= %u (legacy min_rev), chip is v%d.%d", min_rev, rev_major,
             rev_minor);
    return EG_IMAGE_WRONG_REV;
  }
  if (rev_major >= (int)min_rev) return EG_IMAGE_OK;
  snprintf(why, whylen, "image needs revision >= v%u.0 (legacy min_rev %u), chip is v%d.%d", min_rev, min_rev, rev_major,
           rev_minor);
  return EG_IMAGE_WRONG_REV;
}

/* ------------------------------------------------------------ USB, resets */

#define ESPRESSIF_VID 0x303A    /* ET loader.py:381 */
#define USB_JTAG_SERIAL_PID 0x1001 /* ET loader.py:383 */

eg_usb_mode eg_chip_usb_mode(int vid, int pid, const eg_chip **otg_chip) {
  if (otg_chip) *otg_chip = NULL;
  if (vid != ESPRESSIF_VID) return EG_USB_NONE;
  if (pid == USB_JTAG_SERIAL_PID) return EG_USB_SERIAL_JTAG; /* ET loader.py:1266-1270 */
  /* USB-OTG: the PID is the chip's IMAGE_CHIP_ID (ET loader.py:1272-1276),
   * for the chips that have USB-OTG. */
  for (size_t i = 0; i < EG_CHIP__COUNT; i++)
    if (chips[i].usb_otg_block && chips[i].chip_id == pid) {
      if (otg_chip) *otg_chip = &chips[i];
      return EG_USB_OTG;
    }
  return EG_USB_NONE;
}

eg_usb_mode eg_chip_usb_mode_from_uartdev(const eg_chip *c, uint32_t value) {
  const int v = (int)(value & 0xFF); /* EJS compares the low byte (targets/esp32s2.js:222-223) */
  if (c->uartdev_otg >= 0 && v == c->uartdev_otg) return EG_USB_OTG;
  if (c->uartdev_jtag >= 0 && v == c->uartdev_jtag) return EG_USB_SERIAL_JTAG;
  return EG_USB_NONE;
}

uint32_t eg_chip_uartdev_buf_no(const eg_chip *c, const eg_chip_ident *id) {
  if (c->uartdev_buf_no_rev3 && id && id->has_rev && id->rev_major >= 3) return c->uartdev_buf_no_rev3;
  return c->uartdev_buf_no;
}

eg_hard_reset eg_chip_hard_reset(const eg_chip *c, eg_usb_mode usb) {
  return (unsigned)usb < EG_USB__COUNT ? c->hard_reset[usb] : EG_HARD_RESET_CLASSIC;
}

eg_hard_reset eg_chip_otg_reset(const eg_chip *c, uint32_t strap, uint32_t option1) {
  /* GPIO0 low (no SPI-boot strap) and download not forced over USB: a
   * watchdog reset; otherwise the USB hard reset (ET targets/esp32s2.py:286-299). */
  if (!(strap & c->otg_strap_mask) && !(option1 & c->otg_option1_mask) && c->wdt_reset.n) return EG_HARD_RESET_WATCHDOG;
  return EG_HARD_RESET_USB;
}

/* ------------------------------------------------------------ shared helpers */

static const char *const mode_names[] = {"qio", "qout", "dio", "dout"}; /* ET cmds.py:103-108 */

int eg_flash_mode_code(const char *name) {
  for (int i = 0; i < 4; i++)
    if (name && strcasecmp(name, mode_names[i]) == 0) return i;
  return -1;
}

const char *eg_flash_mode_name(int code) {
  return code >= 0 && code < 4 ? mode_names[code] : NULL;
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

/* PROT §5.2 (ET cmds.py DETECTED_FLASH_SIZES). */
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

/* ------------------------------------------------------------ ESP32 (legacy API) */

void eg_esp32_mac(uint32_t word1, uint32_t word2, uint8_t mac[6]) { mac_from_words(word1, word2, mac); }

int eg_esp32_major_rev(uint32_t word3, uint32_t word5, uint32_t apb_ctl_date) {
  const eg_bits *a = chips[EG_CHIP_ESP32].rev_aux;
  return esp32_major(bits_of(a[0], word3), bits_of(a[1], word5), bits_of(a[2], apb_ctl_date));
}

int eg_esp32_minor_rev(uint32_t word5) { return (int)bits_of(chips[EG_CHIP_ESP32].rev_minor.lo, word5); }

int eg_esp32_package(uint32_t word3) {
  const eg_field f = chips[EG_CHIP_ESP32].pkg;
  return (int)(bits_of(f.hi, word3) << f.lo.width | bits_of(f.lo, word3));
}

const char *eg_esp32_package_name(int pkg, int major_rev) {
  const char *n = pkg_name(&chips[EG_CHIP_ESP32], pkg, 0, major_rev);
  return n ? n : "Unknown ESP32";
}

uint32_t eg_esp32_spi_pads(uint32_t word3, uint32_t word5) {
  const eg_chip *c = &chips[EG_CHIP_ESP32];
  const uint32_t addrs[] = {EG_ESP32_EFUSE_WORD(3), EG_ESP32_EFUSE_WORD(5)};
  const uint32_t vals[] = {word3, word5};
  const regset set = {{addrs[0], addrs[1]}, 2};
  const regvals v = {&set, vals};
  return esp32_pads(c, &v);
}

int eg_crystal_mhz(const eg_chip *c, uint32_t baud, uint32_t uart_clkdiv) { return xtal_of(c, baud, uart_clkdiv); }

uint32_t eg_esp32_rom_baud_value(uint32_t baud, uint32_t rtc_cali, uint32_t efuse_word4) {
  const eg_chip *c = &chips[EG_CHIP_ESP32];
  eg_chip_ident id;
  memset(&id, 0, sizeof id);
  id.rom_cal_x40 = esp32_rom_cal_x40(rtc_cali, bits_of(c->rom_ck8m, efuse_word4));
  return eg_chip_rom_baud_value(c, &id, baud);
}
