/* flash.c - the SPI NOR flash chip: contents, NOR program semantics (a
 * program can only clear bits; erase sets 0xFF), addresses wrapping at the
 * chip size (a 24-bit address beyond the capacity aliases, as on a real
 * chip), and the time each operation takes (timing-facts §1-§2):
 * sector/block/chip erase, 32-byte page programs as the ROM's SPIWrite
 * issues them, reads at the SPI read rate. The chip is busy until
 * d->flash_busy; anything that needs it waits for that first. */
#include <openssl/evp.h>
#include <string.h>

#include "simdev_int.h"

uint32_t esim_fl_phys(const esim_dev *d, uint32_t addr) { return (uint32_t)(addr % d->flash_size); }

static uint64_t ns_to_us(uint64_t bytes, uint32_t ns_per_byte) { return (bytes * ns_per_byte + 500) / 1000; }

void *esim_md5_new(void) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  if (c && EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1) {
    EVP_MD_CTX_free(c);
    return NULL;
  }
  return c;
}

void esim_md5_update(void *ctx, const uint8_t *p, size_t n) {
  if (ctx && n) EVP_DigestUpdate((EVP_MD_CTX *)ctx, p, n);
}

void esim_md5_final(void *ctx, uint8_t digest[16]) {
  unsigned len = 16;
  memset(digest, 0, 16);
  if (!ctx) return;
  EVP_DigestFinal_ex((EVP_MD_CTX *)ctx, digest, &len);
  EVP_MD_CTX_free((EVP_MD_CTX *)ctx);
}

void esim_md5_free(void *ctx) { EVP_MD_CTX_free((EVP_MD_CTX *)ctx); }

void esim_md5_bytes(const uint8_t *p, size_t n, uint8_t digest[16]) {
  void *c = esim_md5_new();
  esim_md5_update(c, p, n);
  esim_md5_final(c, digest);
}

static void wait_ready(esim_dev *d, uint64_t *t) {
  if (*t < d->flash_busy) *t = d->flash_busy;
}

static void copy_out(const esim_dev *d, uint32_t addr, uint8_t *out, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint32_t a = esim_fl_phys(d, (uint32_t)(addr + i));
    size_t k = d->flash_size - a;
    if (k > n - i) k = n - i;
    memcpy(out + i, d->flash + a, k);
    i += k;
  }
}

void esim_fl_read(esim_dev *d, uint64_t *t, uint32_t addr, uint8_t *out, size_t n) {
  wait_ready(d, t);
  copy_out(d, addr, out, n);
  *t += ns_to_us(n, d->o.timing.read_ns_per_byte);
  esim_regs_after_flash_read(d);
}

bool esim_fl_is_blank(const esim_dev *d, uint32_t addr, uint32_t len) {
  for (uint32_t i = 0; i < len; i++)
    if (d->flash[esim_fl_phys(d, addr + i)] != 0xFF) return false;
  return true;
}

void esim_fl_md5(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len, uint8_t digest[16]) {
  wait_ready(d, t);
  void *c = esim_md5_new();
  uint8_t buf[4096];
  uint32_t done = 0;
  while (done < len) {
    uint32_t k = len - done > sizeof buf ? (uint32_t)sizeof buf : len - done;
    copy_out(d, addr + done, buf, k);
    esim_md5_update(c, buf, k);
    done += k;
  }
  esim_md5_final(c, digest);
  *t += ns_to_us(len, d->o.timing.read_ns_per_byte + d->o.timing.md5_ns_per_byte);
  esim_regs_after_flash_read(d);
}

bool esim_fl_program(esim_dev *d, uint64_t *t, uint32_t addr, const uint8_t *p, size_t n) {
  wait_ready(d, t);
  const esim_faults *fl = &d->o.faults;
  size_t i = 0;
  bool ok = true;
  const uint32_t first = addr;
  while (i < n) {
    const uint32_t a = (uint32_t)(addr + i);
    size_t k = ESIM_PP_CHUNK - (a % ESIM_PP_CHUNK);
    if (k > n - i) k = n - i;
    *t += d->o.timing.page_program_us;
    d->st.page_programs++;
    if (fl->flash_write_error && fl->flash_write_error_addr >= a && fl->flash_write_error_addr - a < k) {
      esim_log(d, *t, "fault flash write error at 0x%06x (program of %zu bytes at 0x%06x)",
               (unsigned)fl->flash_write_error_addr, k, (unsigned)a);
      ok = false;
      break;
    }
    for (size_t j = 0; j < k; j++) d->flash[esim_fl_phys(d, (uint32_t)(a + j))] &= p[i + j];
    i += k;
  }
  d->flash_busy = *t;
  if (ok && n && d->w.active && !d->w.corrupted && d->md5_budget) {
    /* md5_mismatch fault: one bit of what was just written flips. */
    const uint32_t pa = esim_fl_phys(d, first);
    d->flash[pa] ^= 0x01;
    d->w.corrupted = true;
    if (d->md5_budget != UINT32_MAX) d->md5_budget--;
    esim_log(d, *t, "fault md5_mismatch: bit 0 of 0x%06x flipped", (unsigned)pa);
  }
  return ok;
}

static uint32_t nonblank_blocks(const esim_dev *d) {
  uint32_t n = 0;
  for (size_t b = 0; b < d->flash_size; b += ESIM_BLOCK) {
    const uint8_t *p = d->flash + b;
    size_t len = d->flash_size - b < ESIM_BLOCK ? d->flash_size - b : ESIM_BLOCK;
    /* word-wise scan: the common case is a blank block */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (w != UINT64_MAX) break;
    }
    if (i < len) {
      for (; i < len; i++)
        if (p[i] != 0xFF) break;
      if (i < len) n++;
    }
  }
  return n;
}

static void do_erase(esim_dev *d, uint64_t start, esim_erase_kind k, uint32_t addr) {
  const esim_timing *tm = &d->o.timing;
  double dur = 0;
  uint32_t base = 0, len = 0;
  switch (k) {
  case ESIM_ERASE_SECTOR:
    dur = tm->sector_erase_us;
    base = esim_fl_phys(d, addr) & ~(ESIM_SECTOR - 1);
    len = ESIM_SECTOR;
    break;
  case ESIM_ERASE_BLOCK:
    dur = tm->block_erase_us;
    base = esim_fl_phys(d, addr) & ~(ESIM_BLOCK - 1);
    len = ESIM_BLOCK;
    break;
  case ESIM_ERASE_CHIP:
    /* Chip erase time grows with the non-blank blocks (esptool #300). */
    dur = (double)tm->chip_erase_base_us + (double)tm->chip_erase_per_block_us * nonblank_blocks(d);
    base = 0;
    len = (uint32_t)d->flash_size;
    break;
  }
  dur *= d->o.faults.slow_erase;
  if (base + (uint64_t)len > d->flash_size) len = (uint32_t)(d->flash_size - base);
  memset(d->flash + base, 0xFF, len);
  d->flash_busy = start + (uint64_t)dur;
  d->st.erases++;
  esim_log(d, start, "flash erase %s 0x%06x+0x%x (%.1f ms)",
           k == ESIM_ERASE_SECTOR ? "sector" : k == ESIM_ERASE_BLOCK ? "block" : "chip", (unsigned)base,
           (unsigned)len, dur / 1000.0);
}

void esim_fl_erase(esim_dev *d, uint64_t *t, esim_erase_kind k, uint32_t addr, bool wait) {
  wait_ready(d, t);
  do_erase(d, *t, k, addr);
  if (wait) *t = d->flash_busy;
}

bool esim_fl_erase_if_ready(esim_dev *d, uint64_t *t, esim_erase_kind k, uint32_t addr) {
  if (d->flash_busy > *t) return false;
  do_erase(d, *t, k, addr);
  return true;
}

/* The ROM's SPIEraseArea (IDF esp_rom_spiflash_erase_area, timing-facts
 * §2): sectors up to the next 64 KB boundary - 16 of them when the start is
 * already aligned ("BUG of 6.0 erase") - then 64 KB blocks while more than
 * 16 sectors remain, then the rest sector by sector. Each erase waits. */
bool esim_fl_erase_area(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len, uint32_t chip_size) {
  if (addr % ESIM_SECTOR) return false;
  if ((uint64_t)addr + len > chip_size) return false;
  uint32_t sector = addr / ESIM_SECTOR;
  uint32_t total = (len + ESIM_SECTOR - 1) / ESIM_SECTOR;
  uint32_t head = ESIM_SECTORS_PER_BLOCK - sector % ESIM_SECTORS_PER_BLOCK;
  if (head > total) head = total;
  for (uint32_t i = 0; i < head; i++, sector++) esim_fl_erase(d, t, ESIM_ERASE_SECTOR, sector * ESIM_SECTOR, true);
  total -= head;
  while (total > ESIM_SECTORS_PER_BLOCK) {
    esim_fl_erase(d, t, ESIM_ERASE_BLOCK, sector * ESIM_SECTOR, true);
    sector += ESIM_SECTORS_PER_BLOCK;
    total -= ESIM_SECTORS_PER_BLOCK;
  }
  for (; total; total--, sector++) esim_fl_erase(d, t, ESIM_ERASE_SECTOR, sector * ESIM_SECTOR, true);
  return true;
}
