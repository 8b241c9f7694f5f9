/* regs.c - the register map READ_REG/WRITE_REG see, and the SPI1 "user
 * command" engine esptool drives through them (doc §5.1), for whichever
 * chip the device is (simchip.c gives the addresses).
 *
 * Values: the magic word; the eFuse words and fixed registers of the
 * chip's register image (esim_chip_encode: MAC, revision, package,
 * security state); UART0_CLKDIV follows the current rate; on the ESP32 the
 * RTC calibration register makes esptool's CHANGE_BAUDRATE formula (doc
 * §8.3) land on the requested rate; the C5's PCR_SYSCLK_CONF tells the
 * crystal its ROM expects; GPIO_STRAP and RTC_CNTL_OPTION1 tell how the
 * chip booted; UARTDEV_BUF_NO names the port the ROM talks on. Any other
 * address reads 0 until written (QEMU's behaviour for unmapped
 * peripherals, seen in the traces), then returns what was written. */
#include <stdlib.h>
#include <string.h>

#include "simdev_int.h"

#define WDT_WKEY 0x50D83AA1u           /* RTC_CNTL_WDT_WKEY (esptool esp32c3.py:83) */

void esim_regs_reset(esim_dev *d) {
  memset(d->spi, 0, sizeof d->spi);
  d->spi[d->chip->spi_usr / 4] = d->chip->spi_usr_idle;
  d->spi[d->chip->spi_usr2 / 4] = d->chip->spi_usr2_idle;
  d->spi_wel = false;
  d->sparse_n = 0;
}

void esim_regs_after_flash_read(esim_dev *d) {
  /* The ROM's SPIRead runs READ (03h) as a user command and leaves USR =
   * ADDR|MISO, USER2 = 8-bit command 0x03 (ESP32 stub-read-flash.trace;
   * C3 stub-write-flash.trace after the esp-flasher-stub's start). */
  d->spi[d->chip->spi_usr / 4] = d->chip->spi_usr_read;
  d->spi[d->chip->spi_usr2 / 4] = d->chip->spi_usr2_read;
}

static bool sparse_find(const esim_dev *d, uint32_t addr, size_t *idx) {
  for (size_t i = 0; i < d->sparse_n; i++) {
    if (d->sparse_addr[i] == addr) {
      *idx = i;
      return true;
    }
  }
  return false;
}

static bool in_spi(const esim_dev *d, uint32_t addr) {
  return addr >= d->chip->spi_base && addr < d->chip->spi_base + 0x100 && (addr & 3) == 0;
}

/* Registers whose value follows the device's state. */
static bool dynamic_reg(esim_dev *d, uint32_t addr, uint32_t *v) {
  const esim_chip *c = d->chip;
  if (addr == ESIM_REG_MAGIC) {
    *v = c->magic;
    return true;
  }
  if (addr == c->uart_clkdiv_reg) {
    *v = d->clkdiv;
    return true;
  }
  if (c->belief == ESIM_BELIEF_RTC_CALI && c->rtc_cali_reg && addr == c->rtc_cali_reg) {
    *v = d->rtc_cali << 7; /* TIMERS_RTC_CALI_VALUE at bit 7 */
    return true;
  }
  if (c->belief == ESIM_BELIEF_EXPECTED && c->rom_xtal_reg && addr == c->rom_xtal_reg) {
    *v = (uint32_t)(d->o.rom_xtal_mhz ? d->o.rom_xtal_mhz : 40) << 24;
    return true;
  }
  if (c->strap_reg && addr == c->strap_reg) {
    *v = d->strap_download ? 0x00u : 0x08u; /* bit 3: GPIO0 high = SPI boot */
    return true;
  }
  if (c->option1_reg && addr == c->option1_reg) {
    *v = d->option1;
    return true;
  }
  if (c->uartdev_buf_no && addr == c->uartdev_buf_no) {
    switch (d->o.port) {
    case ESIM_PORT_UART: *v = 0; break;
    case ESIM_PORT_USB_JTAG: *v = c->buf_no_jtag; break;
    case ESIM_PORT_USB_OTG: *v = c->buf_no_otg; break;
    }
    return true;
  }
  return false;
}

uint32_t esim_reg_read(esim_dev *d, uint32_t addr) {
  uint32_t v = 0;
  if (dynamic_reg(d, addr, &v)) return v;
  if (esim_regimg_get(&d->img, addr, &v)) return v;
  if (in_spi(d, addr)) return d->spi[(addr - d->chip->spi_base) / 4];
  size_t i;
  if (sparse_find(d, addr, &i)) return d->sparse_val[i];
  return 0; /* e.g. 0x3FF48074 (RTC_CNTL_SDIO_CONF) reads 0 in the ESP32 trace */
}

static void sparse_store(esim_dev *d, uint32_t addr, uint32_t v) {
  size_t i;
  if (sparse_find(d, addr, &i)) {
    d->sparse_val[i] = v;
    return;
  }
  if (d->sparse_n == d->sparse_cap) {
    if (d->sparse_cap >= 4096) return; /* a host poking this much gets no memory */
    const size_t cap = d->sparse_cap ? 2 * d->sparse_cap : 32;
    uint32_t *a = realloc(d->sparse_addr, cap * sizeof *a);
    if (!a) return;
    d->sparse_addr = a;
    uint32_t *b = realloc(d->sparse_val, cap * sizeof *b);
    if (!b) return;
    d->sparse_val = b;
    d->sparse_cap = cap;
  }
  d->sparse_addr[d->sparse_n] = addr;
  d->sparse_val[d->sparse_n] = v;
  d->sparse_n++;
}

/* One SPI transaction on the flash bus, as the flash chip answers it. */
static void spi_user_command(esim_dev *d, uint64_t t) {
  const esim_chip *c = d->chip;
  const uint32_t usr = d->spi[c->spi_usr / 4];
  const uint32_t usr1 = d->spi[c->spi_usr1 / 4];
  const uint32_t usr2 = d->spi[c->spi_usr2 / 4];
  const uint8_t cmd = (uint8_t)usr2;
  const bool has_addr = usr & (1u << 30), has_miso = usr & (1u << 28), has_mosi = usr & (1u << 27);
  const unsigned addr_bits = has_addr ? ((usr1 >> 26) & 0x3F) + 1 : 0;
  const uint32_t areg = d->spi[ESIM_SPI_ADDR / 4];
  uint32_t addr = 0;
  if (addr_bits) addr = !c->spi_addr_msb || addr_bits >= 32 ? areg : areg >> (32 - addr_bits);
  unsigned miso_bits = 0, mosi_bits = 0;
  if (c->spi_miso_dlen) {
    miso_bits = has_miso ? (d->spi[c->spi_miso_dlen / 4] & 0xFFFFFF) + 1 : 0;
    mosi_bits = has_mosi ? (d->spi[c->spi_mosi_dlen / 4] & 0xFFFFFF) + 1 : 0;
  } else {
    /* ESP8266: bit lengths in USR1, MISO [16:8], MOSI [25:17] (esptool
     * loader.py set_data_lengths) */
    miso_bits = has_miso ? ((usr1 >> 8) & 0x1FF) + 1 : 0;
    mosi_bits = has_mosi ? ((usr1 >> 17) & 0x1FF) + 1 : 0;
  }
  unsigned miso_bytes = (miso_bits + 7) / 8;
  if (miso_bytes > 64) miso_bytes = 64;
  uint8_t in[64];
  memset(in, 0, sizeof in);
  uint8_t mosi[64];
  for (unsigned i = 0; i < 64; i++) mosi[i] = (uint8_t)(d->spi[c->spi_w0 / 4 + i / 4] >> (8 * (i % 4)));
  esim_log(d, t, "spi user command 0x%02x addr=0x%06x miso=%u bits", cmd, (unsigned)addr, miso_bits);
  if (!d->rom_attached) {
    /* Flash pins not routed (ROM before SPI_ATTACH): MISO floats high. */
    memset(in, 0xFF, sizeof in);
  } else {
    const bool busy = d->flash_busy > t;
    switch (cmd) {
    case 0x9F: /* RDID: manufacturer, memory type, capacity */
      in[0] = (uint8_t)d->o.flash_id;
      in[1] = (uint8_t)(d->o.flash_id >> 8);
      in[2] = (uint8_t)(d->o.flash_id >> 16);
      break;
    case 0x05: /* RDSR: WIP bit 0, WEL bit 1 */
      in[0] = (uint8_t)((busy ? 1 : 0) | (d->spi_wel ? 2 : 0));
      break;
    case 0x06: d->spi_wel = true; break;  /* WREN */
    case 0x04: d->spi_wel = false; break; /* WRDI */
    case 0x03: /* READ */
    case 0x0B: /* FAST_READ (dummy cycles configured by the host) */
      for (unsigned i = 0; i < miso_bytes; i++) in[i] = d->flash[esim_fl_phys(d, addr + i)];
      break;
    case 0x20: /* SE */
    case 0xD8: /* BE 64K */
    case 0xC7: /* CE */
    case 0x60: /* CE */
      if (d->spi_wel && !busy) {
        uint64_t tt = t;
        esim_fl_erase(d, &tt, cmd == 0x20 ? ESIM_ERASE_SECTOR : cmd == 0xD8 ? ESIM_ERASE_BLOCK : ESIM_ERASE_CHIP,
                      addr, false);
        d->spi_wel = false;
      }
      break;
    case 0x02: /* PP: MOSI bytes from W0.. */
      if (d->spi_wel && !busy && has_mosi) {
        uint64_t tt = t;
        unsigned nb = (mosi_bits + 7) / 8;
        if (nb > 64) nb = 64;
        esim_fl_program(d, &tt, addr, mosi, nb);
        d->spi_wel = false;
      }
      break;
    default:
      /* SFDP (5Ah), status 2/3 (35h/15h), reset (66h/99h), anything else:
       * QEMU's flash model answered 0 in the traces. */
      break;
    }
  }
  for (unsigned i = 0; i < miso_bytes; i++) {
    uint32_t *w = &d->spi[c->spi_w0 / 4 + i / 4];
    *w = (*w & ~(0xFFu << (8 * (i % 4)))) | ((uint32_t)in[i] << (8 * (i % 4)));
  }
}

/* esptool's watchdog reset (esp32c3.py:245-253): unlock WPROTECT with the
 * key, write CONFIG1 (timeout) and CONFIG0 with EN (bit 31) and a stage-0
 * action; the RTC watchdog then resets the whole system. */
static void wdt_write(esim_dev *d, uint64_t t, uint32_t addr, uint32_t value) {
  const esim_chip *c = d->chip;
  if (addr == c->wdt_wprotect) {
    d->wdt_unlocked = value == WDT_WKEY;
  } else if (addr == c->wdt_config1) {
    d->wdt_timeout = value;
  } else if (addr == c->wdt_config0 && d->wdt_unlocked) {
    const bool en = value & (1u << 31), stage0 = (value >> 28) & 7;
    if (en && stage0) {
      /* CONFIG1 counts RTC slow clock cycles (~136 kHz RC_SLOW; assumed) */
      const uint64_t after = (uint64_t)(d->wdt_timeout ? d->wdt_timeout : 1) * 1000000u / 136000u;
      d->wdt_fire_at = t + after;
      esim_log(d, t, "RTC watchdog armed: system reset in %llu us", (unsigned long long)after);
    } else {
      d->wdt_fire_at = ESIM_NEVER;
    }
  }
  sparse_store(d, addr, value);
}

void esim_reg_write(esim_dev *d, uint64_t t, uint32_t addr, uint32_t value) {
  const esim_chip *c = d->chip;
  if (in_spi(d, addr)) {
    const uint32_t off = addr - c->spi_base;
    if (off == ESIM_SPI_CMD) {
      /* The command bits self-clear when the transaction is done; the
       * transaction takes microseconds, well under one READ_REG. */
      if (value & (1u << 18)) spi_user_command(d, t);
      d->spi[0] = 0;
      return;
    }
    d->spi[off / 4] = value;
    return;
  }
  if (addr == c->uart_clkdiv_reg) {
    /* A host may program the divider directly; the rate follows. */
    esim_tx_baud(d, t, esim_baud_from_clkdiv(d->uart_clk, value), value);
    d->autobaud = false;
    return;
  }
  if (c->option1_reg && addr == c->option1_reg) {
    d->option1 = value;
    return;
  }
  if (c->wdt_config0 && (addr == c->wdt_config0 || addr == c->wdt_config1 || addr == c->wdt_wprotect)) {
    wdt_write(d, t, addr, value);
    return;
  }
  uint32_t old;
  if (addr == ESIM_REG_MAGIC || (c->rtc_cali_reg && addr == c->rtc_cali_reg) || esim_regimg_get(&d->img, addr, &old) ||
      (c->strap_reg && addr == c->strap_reg))
    return; /* ROM, eFuse and read-only registers */
  sparse_store(d, addr, value);
}
