/* simchip.c - the chip table (simchip.h): one row per simulated chip.
 *
 * Facts the simulator shares with espgang's host side come from espgang's
 * chip table (src/chips.c, each with its source there): names, magic word,
 * GET_SECURITY_INFO length and chip id, UART_CLKDIV and its clock divider,
 * the SPI1 register addresses, the MAC register, the bootloader offset, the
 * USB ports and their registers (UARTDEV_BUF_NO, GPIO_STRAP, OPTION1), the
 * RTC calibration and C5 PCR_SYSCLK registers: esim_chip_resolve() copies
 * them into a device's row. Everything a chip *does* with them is espsim's
 * own and below: the eFuse bit fields it encodes (an independent
 * transcription, so a wrong decoder in espgang cannot hide behind a shared
 * function), ROM generation and replies, beliefs about the crystal, RAM
 * ranges, stub load addresses, banners, the RTC watchdog, reset states.
 *
 * Sources, cited per row and field as "file:line":
 *   [T]   esptool v5.3.1 esptool/targets/<chip>.py (read with
 *         `git show v5.3.1:esptool/targets/<chip>.py` in espressif/esptool)
 *   [T4]  esptool v4.8.1 esptool/targets/<chip>.py (CHIP_DETECT_MAGIC_VALUE,
 *         dropped in v5 for chips detected by GET_SECURITY_INFO)
 *   [S1]/[S2] esptool v5.3.1 esptool/targets/stub_flasher/{1,2}/<chip>.json
 *         text_start / data_start / entry
 *   [JS]  esptool-js 0.7.0 lib/targets/<chip>.js
 *   [F]   /work/shared/docs/chip-family-facts.md (section)
 *   [C3T] /work/shared/data/rom-traces/esp32c3/ (genuine C3 ROM transcripts)
 *   [E32T] /work/shared/data/rom-traces/ (genuine ESP32 ROM transcripts)
 *   [IDF] ESP-IDF components/soc/<chip>/include/soc/esp_rom_caps.h
 *         (ESP_ROM_USB_OTG_NUM, ESP_ROM_USB_SERIAL_DEVICE_NUM)
 * Values no source gives are marked "assumed" with the reason; README.md
 * ("Chips") lists them again.
 */
#include <string.h>
#include <strings.h>

#include "chips.h"
#include "simchip.h"

/* SPI_MEM (S2 and later): the idle and after-read values of USR/USR2 are
 * the C3's [C3T] (rom-flash-id.trace READ_REG
 * 0x60002018 -> 0x800000c0, 0x60002020 -> 0x70000000; stub-write-flash
 * after the esp-flasher-stub's OHAI: 0xd00000c0, 0x70000003); assumed the
 * same for every SPI_MEM chip (same peripheral, no other trace). */
#define SPI_MEM_STATE .spi_usr_idle = 0x800000C0u, .spi_usr2_idle = 0x70000000u, .spi_usr_read = 0xD00000C0u, \
                      .spi_usr2_read = 0x70000003u

#define BITS(a, l, w, v) {(a), (l), (w), (v)}
#define FIELD1(a, l, w) {{BITS(a, l, w, 0)}}

/* ESP32 major revision is a code spread over three registers [T esp32.py:208-221]:
 * (APB_CTL_DATE b31)<<2 | (word5 b20)<<1 | word3 b15; 0->0, 1->1, 3->2, 7->3. */
static const uint8_t esp32_major_code[4] = {0, 1, 3, 7};

static const esim_reg_const esp32_consts[] = {
    {0x3FF5A010u, 0x00000050u}, /* eFuse word 4: CK8M 0x50 [E32T]; esptool uses it in the baud workaround */
    {0x3FF6607Cu, 0x16042000u}, /* APB_CTL_DATE without bit 31 (the major code adds it) [E32T 0x96042000] */
    {0x3FF44038u, 0x0000000Fu}, /* GPIO_STRAP as the ESP32 traces read it (QEMU's strapping) [E32T] */
};

static const esim_chip chips[ESIM_CHIP__COUNT] = {
    [ESIM_CHIP_ESP8266] =
        {
            .id = ESIM_CHIP_ESP8266,
            .eg = EG_CHIP_ESP8266,
            .rom = ESIM_ROM_ESP8266,
            .xtal_default = 26,
            .xtal_alt = 40,
            .belief = ESIM_BELIEF_40MHZ, /* its ROM prints at 74880 = 115200 x 26/40 with a 26 MHz crystal */
            .spi_usr2_idle = 0x40000000u, .spi_usr_read = 0x50000000u, .spi_usr2_read = 0x70000003u, /* assumed: ESP32's */
            .mac_style = ESIM_MAC_ESP8266, /* OTP MAC0 0x3FF00050, MAC1 0x3FF00054, MAC3 0x3FF0005C [T esp8266.py:18-20,139-150] */
            .ram = {{0x3FFE8000u, 0x40000000u}, {0x40100000u, 0x40110000u}}, /* DRAM, IRAM incl. the cache
                                                   area both stubs load into [JS esp8266.js MEMORY_MAP, S1/S2] */
            .stub1 = {0x4010D000u, 0x3FFFACACu, 0x4010D004u}, /* [S1 esp8266.json] */
            .stub2 = {0x4010C500u, 0x3FFFAE68u, 0x4010C504u}, /* [S2 esp8266.json] */
            .rom_header = "\r\n ets Jan  8 2013,",
            .boot_dl = "(1,7)",  /* assumed: ESP8266 boot mode (1,x) = UART download */
            .boot_spi = "(3,6)", /* assumed: (3,x) = flash boot */
        },
    [ESIM_CHIP_ESP32] =
        {
            .id = ESIM_CHIP_ESP32,
            .eg = EG_CHIP_ESP32,
            .rom = ESIM_ROM_ESP32,
            .xtal_default = 40,
            .xtal_alt = 26,
            .belief = ESIM_BELIEF_RTC_CALI, /* [T esp32.py:418-446], [F] §3 */
            .spi_usr_idle = 0, .spi_usr2_idle = 0x40000000u, /* [E32T] */
            .spi_usr_read = 0x50000000u, .spi_usr2_read = 0x70000003u, /* [E32T stub-read-flash.trace] */
            .mac_style = ESIM_MAC_ESP32, /* words 1/2 [T esp32.py:313-324] */
            .major = {{BITS(0x3FF5A00Cu, 15, 1, 0), BITS(0x3FF5A014u, 20, 1, 1), BITS(0x3FF6607Cu, 31, 1, 2)}},
            .major_code = esp32_major_code,
            .minor = FIELD1(0x3FF5A014u, 24, 2),                                     /* word5[25:24] [T esp32.py:205-206] */
            .pkg = {{BITS(0x3FF5A00Cu, 9, 3, 0), BITS(0x3FF5A00Cu, 2, 1, 3)}}, /* [T esp32.py:199-203] */
            .crypt_cnt = FIELD1(0x3FF5A000u, 20, 7),  /* FLASH_CRYPT_CNT [T esp32.py:42-43] */
            .secure_boot = FIELD1(0x3FF5A018u, 4, 1), /* ABS_DONE_0 [T esp32.py:45-46] */
            .rev_major = 3, .rev_minor = 0,           /* ECO3, as the traces [E32T] */
            .consts = esp32_consts,
            .nconsts = sizeof esp32_consts / sizeof esp32_consts[0],
            .ram = {{0x3FFAE000u, 0x40000000u}, {0x40070000u, 0x400C2000u}, {0x3FF80000u, 0x3FF82000u},
                    {0x50000000u, 0x50002000u}}, /* DRAM, IRAM, RTC fast/slow */
            .stub1 = {0x400BE000u, 0x3FFDEBACu, 0x400BE658u}, /* [S1 esp32.json] */
            .stub2 = {0x400A8000u, 0x3FFDED68u, 0x400A9074u}, /* [S2 esp32.json] */
            .rom_header = "ets Jul 29 2019 12:21:46\r\n\r\n",
            .boot_dl = "0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))",
            .boot_spi = "0x13 (SPI_FAST_FLASH_BOOT)",
        },
    [ESIM_CHIP_ESP32S2] =
        {
            .id = ESIM_CHIP_ESP32S2,
            .eg = EG_CHIP_ESP32S2,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3,     /* assumed: the C3's [C3T]; the S2 reply stops before it */
            .xtal_default = 40, /* fixed [T esp32s2.py:203-205] */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .major = FIELD1(0x3F41A050u, 18, 2), /* BLOCK1 w3[19:18] [T esp32s2.py:139-141] */
            .minor = {{BITS(0x3F41A050u, 20, 1, 3), BITS(0x3F41A054u, 4, 3, 0)}}, /* w3 b20<<3 | w4[6:4] [T :132-137] */
            .pkg = FIELD1(0x3F41A050u, 21, 4), /* flash_cap w3[24:21] (psram_cap 0) [T :143-152] */
            .crypt_cnt = FIELD1(0x3F41A034u, 18, 3),  /* [T esp32s2.py:64-65] */
            .secure_boot = FIELD1(0x3F41A038u, 20, 1), /* [T esp32s2.py:67-68] */
            .rev_major = 1, .rev_minor = 0, /* assumed: a production revision */
            .ram = {{0x3FFB0000u, 0x40000000u}, {0x40020000u, 0x40070000u}, {0x3FF9E000u, 0x3FFA0000u},
                    {0x40070000u, 0x40072000u}, {0x50000000u, 0x50002000u}}, /* [JS esp32s2.js MEMORY_MAP] */
            .stub1 = {0x40028000u, 0x3FFE2C00u, 0x400288ACu}, /* [S1 esp32s2.json] */
            .stub2 = {0x40028000u, 0x3FFE2DBCu, 0x40029144u}, /* [S2 esp32s2.json] */
            .rom_header = "ESP-ROM:esp32s2-rc4-20191025\r\nBuild:Oct 25 2019\r\n", /* assumed (no S2 trace) */
            .boot_dl = "0x0 (DOWNLOAD(USB/UART0/1))",
            .boot_spi = "0x8 (SPI_FAST_FLASH_BOOT)",
            .buf_no_otg = 2,
            .wdt_config0 = 0x3F408094u, .wdt_config1 = 0x3F408098u, .wdt_wprotect = 0x3F4080ACu, /* [T esp32s2.py:85-89] */
        },
    [ESIM_CHIP_ESP32S3] =
        {
            .id = ESIM_CHIP_ESP32S3,
            .eg = EG_CHIP_ESP32S3,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 40, /* fixed [T esp32s3.py:241-243] */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .major = FIELD1(0x60007058u, 24, 2), /* w5[25:24] [T esp32s3.py:173-181] */
            .minor = {{BITS(0x60007058u, 23, 1, 3), BITS(0x60007050u, 18, 3, 0)}}, /* [T :152-171] */
            .pkg = FIELD1(0x60007050u, 21, 3), /* w3[23:21] [T :138-140] */
            .crypt_cnt = FIELD1(0x60007034u, 18, 3),  /* [T esp32s3.py:67-68] */
            .secure_boot = FIELD1(0x60007038u, 20, 1), /* [T esp32s3.py:70-71] */
            .rev_major = 0, .rev_minor = 2, /* assumed: v0.2, the common production revision */
            .ram = {{0x3FC88000u, 0x3FD00000u}, {0x40370000u, 0x403E0000u}, {0x600FE000u, 0x60100000u},
                    {0x50000000u, 0x50002000u}}, /* [JS esp32s3.js MEMORY_MAP] */
            .stub1 = {0x40378000u, 0x3FCB2C00u, 0x40378C94u},
            .stub2 = {0x40378000u, 0x3FCB2DBCu, 0x40379474u},
            /* a public boot log of an S3 in download mode (github Junanjunan/keyboard_ESP32-S3 docs/ESP32S3/JTAG.md) */
            .rom_header = "ESP-ROM:esp32s3-20210327\r\nBuild:Mar 27 2021\r\n",
            .boot_dl = "0x0 (DOWNLOAD(USB/UART0))",
            .boot_spi = "0x8 (SPI_FAST_FLASH_BOOT)",
            .buf_no_jtag = 4, .buf_no_otg = 3, /* [IDF esp32s3]: OTG 3, USB_SERIAL_JTAG 4 (esptool-js compares 3) */
            .wdt_config0 = 0x60008098u, .wdt_config1 = 0x6000809Cu, .wdt_wprotect = 0x600080B0u, /* [T :86-89] */
        },
    [ESIM_CHIP_ESP32C2] =
        {
            .id = ESIM_CHIP_ESP32C2,
            .eg = EG_CHIP_ESP32C2,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 40,
            .xtal_alt = 26,
            .belief = ESIM_BELIEF_40MHZ, /* "The ROM code thinks it uses a 40 MHz XTAL" [T esp32c2.py:127-147] */
            .mac_style = ESIM_MAC_WORDS,
            .major = FIELD1(0x60008844u, 20, 2), /* [T esp32c2.py:103-105] */
            .minor = FIELD1(0x60008844u, 16, 4), /* [T esp32c2.py:99-101] */
            .pkg = FIELD1(0x60008844u, 22, 3),   /* [T esp32c2.py:73-81] */
            .crypt_cnt = FIELD1(0x60008830u, 7, 3),    /* [T esp32c2.py:31-32] */
            .secure_boot = FIELD1(0x60008830u, 21, 1), /* [T esp32c2.py:28-29] */
            .rev_major = 1, .rev_minor = 0, /* v1.0: esptool runs no stub on C2 rev 0 [T esp32c2.py:149-153] */
            .ram = {{0x3FCA0000u, 0x3FCE0000u}, {0x4037C000u, 0x403C0000u}}, /* [JS esp32c2.js MEMORY_MAP] */
            .stub1 = {0x40380000u, 0x3FCB6BACu, 0x403805DAu},
            .stub2 = {0x40380000u, 0x3FCB6D6Cu, 0x4038105Cu},
            .rom_header = "ESP-ROM:esp8684-api2-20220127\r\nBuild:Jan 27 2022\r\n", /* assumed */
            .boot_dl = "0x4 (DOWNLOAD(UART0))",
            .boot_spi = "0xc (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x60008084u, .wdt_config1 = 0x60008088u, .wdt_wprotect = 0x6000809Cu, /* [T :64-67] */
        },
    [ESIM_CHIP_ESP32C3] =
        {
            .id = ESIM_CHIP_ESP32C3,
            .eg = EG_CHIP_ESP32C3,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3,  /* [C3T] GET_SECURITY_INFO: api_version 3 */
            .key_purposes = {0, 0, 0, 0, 0, 0, 0x0C}, /* [C3T] as the genuine ROM reports them */
            .xtal_default = 40, /* fixed [T esp32c3.py:163-165] */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .major = FIELD1(0x60008858u, 24, 2), /* w5[25:24] [T esp32c3.py:125-127] */
            .minor = {{BITS(0x60008858u, 23, 1, 3), BITS(0x60008850u, 18, 3, 0)}}, /* [T :118-123] */
            .pkg = FIELD1(0x60008850u, 21, 3), /* w3[23:21] [T :114-116] */
            .crypt_cnt = FIELD1(0x60008834u, 18, 3),  /* [T esp32c3.py:64-65] */
            .secure_boot = FIELD1(0x60008838u, 20, 1), /* [T esp32c3.py:67-68] */
            .rev_major = 0, .rev_minor = 3, /* [C3T] w3 0x000c0000: "revision v0.3" */
            .ram = {{0x3FC80000u, 0x3FCE0000u}, {0x4037C000u, 0x403E0000u}, {0x50000000u, 0x50002000u}},
            .stub1 = {0x40380000u, 0x3FC96BB8u, 0x403806D2u}, /* [S1], [C3T stub1-read-flash.trace] */
            .stub2 = {0x40380000u, 0x3FC96D68u, 0x40380F2Eu}, /* [S2], [C3T stub-write-flash.trace] */
            .rom_header = "ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\n", /* [C3T] README */
            .boot_dl = "0x2 (UART0_BOOT)", /* [C3T] README: the genuine ROM's words for its strapping */
            .boot_spi = "0xc (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x60008090u, .wdt_config1 = 0x60008094u, .wdt_wprotect = 0x600080A8u, /* [T :80-83] */
        },
    [ESIM_CHIP_ESP32C5] =
        {
            .id = ESIM_CHIP_ESP32C5,
            .eg = EG_CHIP_ESP32C5,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 48,
            .xtal_alt = 40,
            .belief = ESIM_BELIEF_EXPECTED, /* PCR_SYSCLK_CONF_REG 0x60096110 [30:24] [T esp32c5.py:59-61,137-178] */
            .mac_style = ESIM_MAC_WORDS,
            .mac_ext = 0xFFFE,      /* EUI-64 ff:fe [F] §2 */
            .major = FIELD1(0x600B484Cu, 4, 2), /* w2[5:4] [F] §2 */
            .minor = FIELD1(0x600B484Cu, 0, 4), /* w2[3:0] */
            .pkg = FIELD1(0x600B484Cu, 26, 3),  /* w2[28:26] */
            .crypt_cnt = FIELD1(0x600B4834u, 16, 3),   /* [T esp32c5.py:48-49] */
            .secure_boot = FIELD1(0x600B4838u, 25, 1), /* [T esp32c5.py:51-52] */
            .rev_major = 1, .rev_minor = 0, /* assumed: a production revision */
            .ram = {{0x40800000u, 0x40860000u}, {0x50000000u, 0x50004000u}}, /* [JS esp32c5.js MEMORY_MAP] */
            .stub1 = {0x40800000u, 0x40852BB8u, 0x40800A88u},
            .stub2 = {0x40800000u, 0x40852F0Cu, 0x408014EEu},
            .rom_header = "ESP-ROM:esp32c5-eco2-20250121\r\nBuild:Jan 21 2025\r\n", /* assumed */
            .boot_dl = "0x18 (DOWNLOAD(USB/UART0/SDIO_FEI_FEO))",
            .boot_spi = "0x18 (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x600B1C00u, .wdt_config1 = 0x600B1C04u, .wdt_wprotect = 0x600B1C18u, /* as C6 [F] §6 */
        },
    [ESIM_CHIP_ESP32C6] =
        {
            .id = ESIM_CHIP_ESP32C6,
            .eg = EG_CHIP_ESP32C6,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 40, /* fixed [T esp32c6.py:148-150] */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .mac_ext = 0xFFFE,
            .major = FIELD1(0x600B0850u, 22, 2), /* w3[23:22] [T esp32c6.py:107-109] */
            .minor = FIELD1(0x600B0850u, 18, 4), /* w3[21:18] [T :103-105] */
            .pkg = FIELD1(0x600B0850u, 24, 3),   /* w3[26:24] [T :99-101] */
            .crypt_cnt = FIELD1(0x600B0834u, 18, 3),   /* [T esp32c6.py:57-58] */
            .secure_boot = FIELD1(0x600B0838u, 20, 1), /* [T esp32c6.py:60-61] */
            .rev_major = 0, .rev_minor = 1, /* assumed: v0.1, a production revision */
            .ram = {{0x40800000u, 0x40880000u}, {0x50000000u, 0x50004000u}}, /* [JS esp32c6.js MEMORY_MAP] */
            .stub1 = {0x40800000u, 0x40852BB4u, 0x408006C2u},
            .stub2 = {0x40800000u, 0x40852F0Cu, 0x40801252u},
            .rom_header = "ESP-ROM:esp32c6-20220919\r\nBuild:Sep 19 2022\r\n", /* assumed */
            .boot_dl = "0x4 (DOWNLOAD(USB/UART/SDIO_REI_REO))",
            .boot_spi = "0xc (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x600B1C00u, .wdt_config1 = 0x600B1C04u, .wdt_wprotect = 0x600B1C18u, /* [T :68-70] */
        },
    [ESIM_CHIP_ESP32C61] =
        {
            .id = ESIM_CHIP_ESP32C61,
            .eg = EG_CHIP_ESP32C61,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 40, /* fixed [F] §3 */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .major = FIELD1(0x600B484Cu, 4, 2), /* w2[5:4] [T esp32c61.py:86-88] */
            .minor = FIELD1(0x600B484Cu, 0, 4), /* w2[3:0] [T :82-84] */
            .pkg = FIELD1(0x600B484Cu, 26, 3),  /* w2[28:26] [T :78-80] */
            .crypt_cnt = FIELD1(0x600B4830u, 23, 3),   /* [T esp32c61.py:41-42] */
            .secure_boot = FIELD1(0x600B4834u, 26, 1), /* [T esp32c61.py:44-45] */
            .rev_major = 1, .rev_minor = 0, /* assumed */
            .ram = {{0x40800000u, 0x40860000u}, {0x50000000u, 0x50004000u}}, /* [JS esp32c61.js MEMORY_MAP] */
            .stub2 = {0x40800000u, 0x40816D68u, 0x4080104Eu}, /* no set-1 stub [F] §7 */
            .rom_header = "ESP-ROM:esp32c61-20240417\r\nBuild:Apr 17 2024\r\n", /* assumed */
            .boot_dl = "0x4 (DOWNLOAD(USB/UART0))",
            .boot_spi = "0xc (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x600B1C00u, .wdt_config1 = 0x600B1C04u, .wdt_wprotect = 0x600B1C18u, /* as C6 [F] §6 */
        },
    [ESIM_CHIP_ESP32H2] =
        {
            .id = ESIM_CHIP_ESP32H2,
            .eg = EG_CHIP_ESP32H2,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 32, /* fixed [T esp32h2.py:73-75] */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .mac_ext = 0xFFFE,
            .major = FIELD1(0x600B0850u, 21, 2), /* w3[22:21] [T esp32h2.py:58-60] */
            .minor = FIELD1(0x600B0850u, 18, 3), /* w3[20:18] [T :54-56] */
            .pkg = FIELD1(0x600B0854u, 0, 3),    /* w4[2:0] [T :50-52] */
            .crypt_cnt = FIELD1(0x600B0834u, 18, 3),   /* inherits C6's */
            .secure_boot = FIELD1(0x600B0838u, 20, 1),
            .rev_major = 0, .rev_minor = 1, /* assumed */
            .ram = {{0x40800000u, 0x40880000u}, {0x50000000u, 0x50004000u}}, /* [JS esp32h2.js MEMORY_MAP] */
            .stub1 = {0x40800000u, 0x40842BB4u, 0x408006C2u},
            .stub2 = {0x40800000u, 0x40842D68u, 0x40800F26u},
            .rom_header = "ESP-ROM:esp32h2-20221101\r\nBuild:Nov  1 2022\r\n", /* assumed */
            .boot_dl = "0x4 (DOWNLOAD(USB/UART0))",
            .boot_spi = "0xc (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x600B1C00u, .wdt_config1 = 0x600B1C04u, .wdt_wprotect = 0x600B1C1Cu, /* [T :17-19] */
        },
    [ESIM_CHIP_ESP32P4] =
        {
            .id = ESIM_CHIP_ESP32P4,
            .eg = EG_CHIP_ESP32P4,
            .rom = ESIM_ROM_LATER,
            SPI_MEM_STATE,
            .api_version = 3, /* assumed: the C3's [C3T] */
            .xtal_default = 40, /* fixed [T esp32p4.py:166-168] */
            .belief = ESIM_BELIEF_TRUE,
            .mac_style = ESIM_MAC_WORDS,
            .major = {{BITS(0x5012D04Cu, 4, 2, 0), BITS(0x5012D04Cu, 23, 1, 2)}}, /* [T esp32p4.py:150-153] */
            .minor = FIELD1(0x5012D04Cu, 0, 4), /* w2[3:0] [T :146-148] */
            .pkg = FIELD1(0x5012D04Cu, 20, 3),  /* w2[22:20] [T :142-144] */
            .crypt_cnt = FIELD1(0x5012D034u, 18, 3),   /* [T esp32p4.py:66-68] */
            .secure_boot = FIELD1(0x5012D038u, 20, 1), /* [T esp32p4.py:71-72] */
            .rev_major = 1, .rev_minor = 0, /* assumed: v1.x boards (esptool-js then loads esp32p4-rev1.json) */
            .ram = {{0x4FF00000u, 0x4FFA0000u}, {0x50108000u, 0x50110000u}}, /* [JS esp32p4.js MEMORY_MAP] */
            .stub1 = {0x4FF10000u, 0x4FF62C00u, 0x4FF10BA0u},    /* [S1 esp32p4-rev1.json] */
            .stub2 = {0x4FF10000u, 0x4FF62DB8u, 0x4FF1130Eu},    /* [S2 esp32p4-rev1.json] */
            .stub2_v3 = {0x4FF50000u, 0x4FF72DB8u, 0x4FF5130Eu}, /* [S2 esp32p4.json], revision >= 3.0 */
            .rom_header = "ESP-ROM:esp32p4-eco2-20240710\r\nBuild:Jul 10 2024\r\n", /* assumed */
            .boot_dl = "0x4 (DOWNLOAD(USB/UART0/1))",
            .boot_spi = "0xc (SPI_FAST_FLASH_BOOT)",
            .wdt_config0 = 0x50116000u, .wdt_config1 = 0x50116004u, .wdt_wprotect = 0x50116018u, /* [T :132-135] */
        },
};

static const eg_chip *wire(esim_chip_id id) {
  return eg_chip_get(chips[(unsigned)id < ESIM_CHIP__COUNT ? id : ESIM_CHIP_ESP32].eg);
}

void esim_chip_resolve(esim_chip_id id, esim_chip *c) {
  if ((unsigned)id >= ESIM_CHIP__COUNT) id = ESIM_CHIP_ESP32;
  *c = chips[id];
  const eg_chip *w = eg_chip_get(c->eg);
  c->name = w->arg_name;
  c->display = w->name;
  c->magic = w->nmagic ? w->magic[0] : 0;
  c->sec_info_len = w->rom_security_info_len;
  c->chip_id = w->chip_id >= 0 ? (uint32_t)w->chip_id : 0;
  c->uart_clkdiv_reg = w->uart_clkdiv_reg;
  c->uart_clk_mult = w->xtal_clk_divider ? w->xtal_clk_divider : 1;
  /* SPI1 as offsets from its base (CMD +0 and ADDR +4 on every layout) */
  c->spi_base = w->spi.base;
  c->spi_usr = (uint8_t)(w->spi.usr - w->spi.base);
  c->spi_usr1 = (uint8_t)(w->spi.usr1 - w->spi.base);
  c->spi_usr2 = (uint8_t)(w->spi.usr2 - w->spi.base);
  c->spi_mosi_dlen = w->spi.mosi_dlen ? (uint8_t)(w->spi.mosi_dlen - w->spi.base) : 0;
  c->spi_miso_dlen = w->spi.miso_dlen ? (uint8_t)(w->spi.miso_dlen - w->spi.base) : 0;
  c->spi_w0 = (uint8_t)(w->spi.w0 - w->spi.base);
  c->spi_addr_msb = w->spi_addr_msb;
  c->mac_reg = w->mac_rule == EG_MAC_ESP8266_OTP ? w->efuse_base : w->mac_reg;
  c->bootloader_offset = w->bootloader_offset;
  c->usb_jtag = w->usb_serial_jtag;
  c->usb_otg = w->usb_otg_block != 0;
  c->otg_pid = c->usb_otg ? (uint16_t)w->chip_id : 0; /* 303a:<IMAGE_CHIP_ID> [F] §6 */
  c->uartdev_buf_no = w->uartdev_buf_no;
  /* a row's own values win: the S3's, where esptool-js's 3 is the OTG's
   * number by ESP-IDF's esp_rom_caps.h (README "Chips") */
  if (!c->buf_no_jtag && w->uartdev_jtag >= 0) c->buf_no_jtag = (uint8_t)w->uartdev_jtag;
  if (!c->buf_no_otg && w->uartdev_otg >= 0) c->buf_no_otg = (uint8_t)w->uartdev_otg;
  c->option1_reg = w->otg_option1_reg;
  c->option1_force_dl = w->otg_option1_mask;
  c->strap_reg = w->otg_strap_reg;
  c->rtc_cali_reg = w->rtc_cali_reg;
  c->rom_xtal_reg = w->rom_xtal_expect.addr;
}

int esim_chip_by_name(const char *name) {
  const eg_chip *w = eg_chip_by_name(name);
  if (!w) return -1;
  for (int i = 0; i < ESIM_CHIP__COUNT; i++)
    if (chips[i].eg == w->id) return i;
  return -1;
}

const char *esim_chip_name(esim_chip_id c) { return wire(c)->arg_name; }
const char *esim_chip_display(esim_chip_id c) { return wire(c)->name; }

/* ------------------------------------------------------------- encoding */

uint8_t esim_mac_crc8(const uint8_t mac[6]) {
  /* CRC-8, reflected polynomial 0x8C, init 0 (espefuse efuse/esp32/fields.py
   * calc_crc): 24:0a:c4:00:00:01 -> 0xBE, as eFuse word 2 reads in the
   * ESP32 traces (0x00BE240A). */
  uint8_t r = 0;
  for (int i = 0; i < 6; i++) {
    r ^= mac[i];
    for (int k = 0; k < 8; k++) r = (uint8_t)((r & 1) ? (r >> 1) ^ 0x8C : r >> 1);
  }
  return r;
}

static uint32_t *img_slot(esim_regimg *img, uint32_t addr) {
  for (unsigned i = 0; i < img->n; i++)
    if (img->addr[i] == addr) return &img->val[i];
  if (img->n == ESIM_REGIMG_MAX) return NULL; /* the table rows stay far below this */
  img->addr[img->n] = addr;
  img->val[img->n] = 0;
  return &img->val[img->n++];
}

static void img_or(esim_regimg *img, uint32_t addr, uint32_t bits) {
  uint32_t *v = img_slot(img, addr);
  if (v) *v |= bits;
}

static void put_field(esim_regimg *img, const esim_field *f, uint32_t value) {
  for (int i = 0; i < ESIM_FIELD_PIECES; i++) {
    const esim_bits *b = &f->p[i];
    if (!b->addr) continue;
    const uint32_t mask = b->width >= 32 ? 0xFFFFFFFFu : (1u << b->width) - 1u;
    img_or(img, b->addr, ((value >> b->vlsb) & mask) << b->lsb);
  }
}

void esim_chip_encode(const esim_chip *c, const esim_dev_opts *o, int major, int minor, esim_regimg *img) {
  memset(img, 0, sizeof *img);
  for (unsigned i = 0; i < c->nconsts; i++) img_or(img, c->consts[i].addr, c->consts[i].value);
  const uint8_t *m = o->mac;
  switch (c->mac_style) {
  case ESIM_MAC_ESP8266:
    /* MAC3 = OUI, MAC1 = m3 m4, MAC0 [31:24] = m5 (esptool read_mac takes
     * the OUI from MAC3 when it is not 0). */
    img_or(img, 0x3FF00050u, (uint32_t)m[5] << 24);
    img_or(img, 0x3FF00054u, (uint32_t)m[3] << 8 | m[4]);
    img_or(img, 0x3FF0005Cu, (uint32_t)m[0] << 16 | (uint32_t)m[1] << 8 | m[2]);
    img_or(img, 0x3FF00058u, 0);
    break;
  case ESIM_MAC_ESP32:
    img_or(img, c->mac_reg, (uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5]);
    img_or(img, c->mac_reg + 4, (uint32_t)esim_mac_crc8(m) << 16 | (uint32_t)m[0] << 8 | m[1]);
    break;
  case ESIM_MAC_WORDS:
    img_or(img, c->mac_reg, (uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5]);
    img_or(img, c->mac_reg + 4, (uint32_t)c->mac_ext << 16 | (uint32_t)m[0] << 8 | m[1]);
    break;
  }
  if (c->mac_style != ESIM_MAC_ESP8266) {
    const int mj = major < 0 ? 0 : major > 3 ? 3 : major;
    put_field(img, &c->major, c->major_code ? c->major_code[mj] : (uint32_t)major);
    put_field(img, &c->minor, (uint32_t)minor);
    put_field(img, &c->pkg, 0);
    put_field(img, &c->crypt_cnt, o->sec.flash_crypt_cnt);
    put_field(img, &c->secure_boot, o->sec.secure_boot ? 1 : 0);
  }
}

bool esim_regimg_get(const esim_regimg *img, uint32_t addr, uint32_t *val) {
  for (unsigned i = 0; i < img->n; i++) {
    if (img->addr[i] == addr) {
      *val = img->val[i];
      return true;
    }
  }
  return false;
}

/* ---------------------------------------------------------------- stubs */

bool esim_chip_addr_is_legacy(const esim_chip *c, uint32_t addr) {
  if (!c->stub1.text) return false;
  /* text_start is shared by both sets on most chips: only a distinct one
   * tells; data_start always differs. */
  return addr == c->stub1.data || (addr == c->stub1.text && addr != c->stub2.text);
}

bool esim_chip_addr_is_new(const esim_chip *c, uint32_t addr) {
  return (c->stub2.text && addr == c->stub2.text) || (c->stub2_v3.text && addr == c->stub2_v3.text);
}

bool esim_chip_stub_wrong_rev(const esim_chip *c, uint32_t entry, int rev_major) {
  if (!c->stub2_v3.entry || !entry) return false;
  if (rev_major >= 3) return entry == c->stub1.entry || entry == c->stub2.entry;
  return entry == c->stub2_v3.entry;
}

esim_stub_flavour esim_chip_stub_flavour(const esim_chip *c, bool seen_legacy, bool seen_new, uint32_t entry) {
  if ((c->stub1.entry && entry == c->stub1.entry) || seen_legacy) return ESIM_STUB_LEGACY;
  if (seen_new) return ESIM_STUB_NEW;
  return ESIM_STUB_LEGACY; /* anything else: as espsim always did for the ESP32 */
}
