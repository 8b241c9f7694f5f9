/* mkimage - make realistic ESP32 firmware images for demos, tests and
 * benchmarks (we ship no firmware binaries).
 *
 *   mkimage [--chip-id N] [--min-rev MAJ.MIN] bootloader|app ...
 *                                     the extended header's chip id (default
 *                                     0, the ESP32; esptool IMAGE_CHIP_ID) and
 *                                     minimum revision (min_rev_full; max_rev_full
 *                                     0xFFFF: no upper bound)
 *   mkimage bootloader OUT            ESP32 second-stage-bootloader-like image
 *                                     (~24 KiB, valid header, segments,
 *                                     checksum and appended SHA-256)
 *   mkimage partitions OUT            a partition table (nvs, phy_init,
 *                                     factory app) with its MD5 entry, 3 KiB
 *   mkimage app OUT SIZE [SEED]       an application image of SIZE bytes
 *                                     whose compressibility is like real
 *                                     firmware (zlib -9 keeps ~60 %)
 *
 * Image layout (esptool's firmware-image-format): 8-byte header (0xE9,
 * segment count, mode, speed/size, entry), 16-byte extended header (chip id,
 * hash-appended flag at byte 23), segments (load address, length, data),
 * zero padding so the checksum byte ends on a 16-byte boundary, checksum
 * (0xEF xor segment data), then the SHA-256 of everything before it.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
  uint8_t *p;
  size_t len, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) {
      perror("mkimage");
      exit(1);
    }
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void put32(buf *b, uint32_t v) {
  const uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(b, x, 4);
}

/* xorshift64*: deterministic pseudo-random bytes. */
static uint64_t rng(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

/* Code-like bytes: a small vocabulary of "instructions" with repeats and
 * literal runs, roughly as compressible as Xtensa firmware. */
static void fill_code(uint8_t *p, size_t n, uint64_t *seed) {
  uint8_t vocab[256][4];
  for (int i = 0; i < 256; i++)
    for (int j = 0; j < 4; j++) vocab[i][j] = (uint8_t)rng(seed);
  size_t i = 0;
  while (i < n) {
    const uint64_t r = rng(seed);
    if ((r & 7) < 4) { /* a common instruction */
      const uint8_t *v = vocab[(r >> 8) & 0x3F];
      for (int j = 0; j < 3 && i < n; j++) p[i++] = v[j];
    } else if ((r & 7) < 6) { /* a rarer one */
      const uint8_t *v = vocab[(r >> 8) & 0xFF];
      for (int j = 0; j < 3 && i < n; j++) p[i++] = v[j];
    } else { /* literal data: addresses, constants */
      for (int j = 0; j < 4 && i < n; j++) p[i++] = (uint8_t)(rng(seed) >> 13);
    }
  }
}

/* Strings and tables: printable text. */
static void fill_text(uint8_t *p, size_t n, uint64_t *seed) {
  static const char *words[] = {"esp_", "wifi", "init", "error", "task", "event", "handler", "config", "%d ", "failed",
                                "0x%08x", "nvs", "partition", "ota", "mqtt", "connect", "timeout", "\n", "[%s] ", "ok"};
  size_t i = 0;
  while (i < n) {
    const char *w = words[rng(seed) % (sizeof words / sizeof words[0])];
    for (size_t j = 0; w[j] && i < n; j++) p[i++] = (uint8_t)w[j];
    if (i < n && (rng(seed) & 3) == 0) p[i++] = 0;
  }
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32]) {
  unsigned int len = 32;
  EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

typedef struct segment {
  uint32_t addr;
  size_t len;
  int kind; /* 0 code, 1 text, 2 zeros */
} segment;

/* The extended header's chip and revision fields (esptool bin_image.py). */
static unsigned chip_id, min_rev_full;

static buf esp_image(const segment *segs, int nseg, uint32_t entry, uint8_t mode, uint8_t speed_size, uint64_t seed) {
  buf b = {0};
  const uint8_t hdr[8] = {0xE9, (uint8_t)nseg, mode, speed_size, (uint8_t)entry, (uint8_t)(entry >> 8), (uint8_t)(entry >> 16),
                          (uint8_t)(entry >> 24)};
  put(&b, hdr, sizeof hdr);
  uint8_t ext[16] = {0};
  ext[0] = 0xEE;   /* WP pin: disabled */
  ext[4] = (uint8_t)chip_id; /* chip id (u16, image bytes 12-13) */
  ext[5] = (uint8_t)(chip_id >> 8);
  ext[6] = (uint8_t)(min_rev_full / 100); /* legacy min_rev (byte 14): the major */
  ext[7] = (uint8_t)min_rev_full;         /* min_rev_full (u16, bytes 15-16): major * 100 + minor */
  ext[8] = (uint8_t)(min_rev_full >> 8);
  ext[9] = 0xFF;                          /* max_rev_full (bytes 17-18): no upper bound */
  ext[10] = 0xFF;
  ext[15] = 1;     /* hash appended (image byte 23) */
  put(&b, ext, sizeof ext);
  uint8_t checksum = 0xEF;
  for (int s = 0; s < nseg; s++) {
    const size_t len = (segs[s].len + 3) & ~(size_t)3;
    uint8_t *data = calloc(1, len);
    if (!data) exit(1);
    if (segs[s].kind == 0)
      fill_code(data, len, &seed);
    else if (segs[s].kind == 1)
      fill_text(data, len, &seed);
    put32(&b, segs[s].addr);
    put32(&b, (uint32_t)len);
    put(&b, data, len);
    for (size_t i = 0; i < len; i++) checksum ^= data[i];
    free(data);
  }
  const uint8_t zero = 0;
  while (b.len % 16 != 15) put(&b, &zero, 1);
  put(&b, &checksum, 1);
  uint8_t digest[32];
  sha256(b.p, b.len, digest);
  put(&b, digest, 32);
  return b;
}

static int write_file(const char *path, const buf *b) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f) != 0) {
    fprintf(stderr, "mkimage: cannot write %s: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

static void partition(buf *b, uint8_t type, uint8_t subtype, uint32_t off, uint32_t size, const char *label) {
  const uint8_t magic[2] = {0xAA, 0x50};
  put(b, magic, 2);
  put(b, &type, 1);
  put(b, &subtype, 1);
  put32(b, off);
  put32(b, size);
  char name[16] = {0};
  strncpy(name, label, sizeof name - 1);
  put(b, name, 16);
  put32(b, 0);
}

int main(int argc, char **argv) {
  while (argc >= 3 && strncmp(argv[1], "--", 2) == 0) {
    char *end = NULL;
    if (strcmp(argv[1], "--chip-id") == 0) {
      chip_id = (unsigned)strtoul(argv[2], &end, 0);
    } else if (strcmp(argv[1], "--min-rev") == 0) {
      const unsigned long maj = strtoul(argv[2], &end, 10);
      unsigned long min = 0;
      if (end && *end == '.') min = strtoul(end + 1, &end, 10);
      min_rev_full = (unsigned)(maj * 100 + min);
    } else {
      break;
    }
    if (!end || *end) {
      fprintf(stderr, "mkimage: bad value for %s: %s\n", argv[1], argv[2]);
      return 2;
    }
    argv += 2, argc -= 2;
  }
  if (argc >= 3 && strcmp(argv[1], "bootloader") == 0) {
    /* dio, 40 MHz, 4 MB in the header: byte 2 = 2, byte 3 = 0x20. */
    const segment segs[] = {{0x3FFF0030, 0x1A00, 1}, {0x40078000, 0x3A00, 0}, {0x40080400, 0xA00, 0}};
    buf b = esp_image(segs, 3, 0x40080400 + 0x100, 0x02, 0x20, 0xB007);
    const int rc = write_file(argv[2], &b);
    free(b.p);
    return rc;
  }
  if (argc >= 3 && strcmp(argv[1], "partitions") == 0) {
    buf b = {0};
    partition(&b, 0x01, 0x02, 0x9000, 0x6000, "nvs");
    partition(&b, 0x01, 0x01, 0xF000, 0x1000, "phy_init");
    partition(&b, 0x00, 0x00, 0x10000, 0x100000, "factory");
    uint8_t md5[16];
    unsigned int len = 16;
    EVP_Digest(b.p, b.len, md5, &len, EVP_md5(), NULL);
    uint8_t mark[16];
    memset(mark, 0xFF, sizeof mark);
    mark[0] = mark[1] = 0xEB;
    put(&b, mark, 16);
    put(&b, md5, 16);
    const uint8_t ff = 0xFF;
    while (b.len < 0xC00) put(&b, &ff, 1);
    const int rc = write_file(argv[2], &b);
    free(b.p);
    return rc;
  }
  if (argc >= 4 && strcmp(argv[1], "app") == 0) {
    char *end = NULL;
    unsigned long size = strtoul(argv[3], &end, 0);
    if (!end || *end || size < 4096 || size > 64ul << 20) {
      fprintf(stderr, "mkimage: app SIZE must be 4096..64M bytes\n");
      return 2;
    }
    const uint64_t seed = argc >= 5 ? strtoull(argv[4], NULL, 0) | 1 : 0xA99;
    /* Roughly: 70 % code (IROM), 20 % strings (DROM), the rest data. */
    const size_t body = size - 24 - 5 * 8 - 16 - 32;
    const segment segs[] = {{0x3F400020, body / 5, 1},       {0x3FFB0000, body / 20, 0}, {0x40080000, body / 20, 0},
                            {0x400D0020, body * 7 / 10, 0}, {0x40090000, body - body / 5 - body / 10 - body * 7 / 10, 0}};
    buf b = esp_image(segs, 5, 0x40081000, 0x02, 0x20, seed);
    const int rc = write_file(argv[2], &b);
    free(b.p);
    return rc;
  }
  fprintf(stderr, "usage: mkimage [--chip-id N] [--min-rev MAJ.MIN] bootloader OUT | partitions OUT | app OUT SIZE [SEED]\n");
  return 2;
}
