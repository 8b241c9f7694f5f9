/* regs.c - the register map READ_REG/WRITE_REG see, and the SPI1 "user
 * command" engine esptool drives through them (doc §5.1).
 *
 * Values: every register the five traces read answers with the trace's
 * value; eFuse words 1/2 carry the configured MAC (doc §4.3) with its CRC8;
 * UART0_CLKDIV follows the current rate; the RTC calibration register makes
 * esptool's CHANGE_BAUDRATE formula (doc §8.3) land on the requested rate.
 * Any other address reads 0 until written (QEMU's behaviour for unmapped
 * peripherals), then returns what was written. */
#include <stdlib.h>
#include <string.h>

#include "simdev_int.h"

/* CRC-8, reflected polynomial 0x8C, init 0: esp_crc8() as espefuse
 * documents it (efuse/esp32/fields.py calc_crc). 24:0a:c4:00:00:01 -> 0xBE,
 * as eFuse word 2 reads in the traces (0x00BE240A). */
static uint8_t mac_crc8(const uint8_t *m) {
  uint8_t r = 0;
  for (int i = 0; i < 6; i++) {
    r ^= m[i];
    for (int k = 0; k < 8; k++) r = (uint8_t)((r & 1) ? (r >> 1) ^ 0x8C : r >> 1);
  }
  return r;
}

static uint32_t efuse_word(const esim_dev *d, unsigned n) {
  const uint8_t *m = d->o.mac;
  switch (n) {
  case 1: return (uint32_t)m[2] << 24 | (uint32_t)m[3] << 16 | (uint32_t)m[4] << 8 | m[5];
  case 2: return (uint32_t)mac_crc8(m) << 16 | (uint32_t)m[0] << 8 | m[1];
  case 3: return 0x00008000; /* CHIP_VER_REV1, package 0 (D0WDQ6): trace */
  case 4: return 0x00000050; /* CK8M frequency 0x50: trace */
  case 5: return 0x00100000; /* CHIP_VER_REV2: trace; with APB_CTL_DATE bit 31 -> v3.0 */
  default: return 0;         /* words 0 and 6: trace (no encryption, no secure boot) */
  }
}

void esim_regs_reset(esim_dev *d) {
  memset(d->spi, 0, sizeof d->spi);
  /* SPI1 USER2 reads 0x40000000 after reset in the traces (QEMU). */
  d->spi[ESIM_SPI_USR2 / 4] = 0x40000000;
  d->spi_wel = false;
  d->sparse_n = 0;
}

void esim_regs_after_flash_read(esim_dev *d) {
  /* ROM SPIRead runs READ (03h) as a user command: USR = ADDR|MISO,
   * USER2 = 8-bit command 0x03. stub-read-flash.trace reads these values
   * after the previous session's MD5. */
  d->spi[ESIM_SPI_USR / 4] = 0x50000000;
  d->spi[ESIM_SPI_USR2 / 4] = 0x70000003;
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

uint32_t esim_reg_read(esim_dev *d, uint32_t addr) {
  if (addr == ESIM_REG_MAGIC) return 0x00F01D83; /* ESP32 (doc §4.1, trace) */
  if (addr >= ESIM_REG_EFUSE0 && addr < ESIM_REG_EFUSE0 + 0x80 && (addr & 3) == 0)
    return efuse_word(d, (addr - ESIM_REG_EFUSE0) / 4);
  if (addr == ESIM_REG_APB_DATE) return 0x96042000; /* trace; bit 31 = ECO3 */
  if (addr == ESIM_REG_UART0_CLKDIV) return d->clkdiv;
  if (addr == ESIM_REG_RTC_CALI) return d->rtc_cali << 7; /* TIMERS_RTC_CALI_VALUE at bit 7 */
  if (addr == ESIM_REG_GPIO_STRAP) return 0x0000000F;     /* trace (QEMU's strapping) */
  if (addr >= ESIM_SPI1_BASE && addr < ESIM_SPI1_BASE + 0x100 && (addr & 3) == 0)
    return d->spi[(addr - ESIM_SPI1_BASE) / 4];
  size_t i;
  if (sparse_find(d, addr, &i)) return d->sparse_val[i];
  return 0; /* e.g. 0x3FF48074 (RTC_CNTL_SDIO_CONF) reads 0 in the trace */
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
  const uint32_t usr = d->spi[ESIM_SPI_USR / 4];
  const uint32_t usr1 = d->spi[ESIM_SPI_USR1 / 4];
  const uint32_t usr2 = d->spi[ESIM_SPI_USR2 / 4];
  const uint8_t cmd = (uint8_t)usr2;
  const bool has_addr = usr & (1u << 30), has_miso = usr & (1u << 28), has_mosi = usr & (1u << 27);
  const unsigned addr_bits = has_addr ? ((usr1 >> 26) & 0x3F) + 1 : 0;
  uint32_t addr = 0;
  if (addr_bits) addr = addr_bits >= 32 ? d->spi[ESIM_SPI_ADDR / 4] : d->spi[ESIM_SPI_ADDR / 4] >> (32 - addr_bits);
  const unsigned miso_bits = has_miso ? (d->spi[ESIM_SPI_MISO_DLEN / 4] & 0xFFFFFF) + 1 : 0;
  const unsigned mosi_bits = has_mosi ? (d->spi[ESIM_SPI_MOSI_DLEN / 4] & 0xFFFFFF) + 1 : 0;
  unsigned miso_bytes = (miso_bits + 7) / 8;
  if (miso_bytes > 64) miso_bytes = 64;
  uint8_t in[64];
  memset(in, 0, sizeof in);
  uint8_t mosi[64];
  for (unsigned i = 0; i < 64; i++) mosi[i] = (uint8_t)(d->spi[ESIM_SPI_W0 / 4 + i / 4] >> (8 * (i % 4)));
  (void)mosi_bits;
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
    uint32_t *w = &d->spi[ESIM_SPI_W0 / 4 + i / 4];
    *w = (*w & ~(0xFFu << (8 * (i % 4)))) | ((uint32_t)in[i] << (8 * (i % 4)));
  }
}

void esim_reg_write(esim_dev *d, uint64_t t, uint32_t addr, uint32_t value) {
  if (addr >= ESIM_SPI1_BASE && addr < ESIM_SPI1_BASE + 0x100 && (addr & 3) == 0) {
    const uint32_t off = addr - ESIM_SPI1_BASE;
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
  if (addr == ESIM_REG_UART0_CLKDIV) {
    /* A host may program the divider directly; the rate follows. */
    const uint32_t clk = (uint32_t)d->o.crystal_mhz * 1000000u;
    esim_tx_baud(d, t, esim_baud_from_clkdiv(clk, value), value);
    d->autobaud = false;
    return;
  }
  if (addr == ESIM_REG_MAGIC || (addr >= ESIM_REG_EFUSE0 && addr < ESIM_REG_EFUSE0 + 0x80) ||
      addr == ESIM_REG_APB_DATE || addr == ESIM_REG_RTC_CALI || addr == ESIM_REG_GPIO_STRAP)
    return; /* ROM and read-only registers */
  sparse_store(d, addr, value);
}
