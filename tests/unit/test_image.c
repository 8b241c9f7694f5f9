/* test_image.c - src/image.c: loading (and every way a file can be wrong),
 * padding and hashes, the bootloader header patch against the values of
 * esptool's tables (doc §6.3) on a synthetic ESP32 bootloader built here,
 * the appended SHA-256, ROM alignment, zlib as esptool does it (the trace
 * image compresses to the 6812 bytes esptool reported), block helpers, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "chips.h"
#include "image.h"

/* ------------------------------------------------------------ helpers */

static void hexs(char *out, size_t cap, const uint8_t *p, size_t n) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && o + 3 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", p[i]);
}

static void bytes_eq(const char *what, const uint8_t *got, size_t ngot, const uint8_t *want, size_t nwant) {
  if (ngot == nwant && (nwant == 0 || memcmp(got, want, nwant) == 0)) return;
  char a[200], b[200];
  size_t first = 0;
  while (first < ngot && first < nwant && got[first] == want[first]) first++;
  hexs(a, sizeof a, got + first, ngot - first < 32 ? ngot - first : 32);
  hexs(b, sizeof b, want + first, nwant - first < 32 ? nwant - first : 32);
  fail_msg("%s: lengths %zu / %zu, first difference at %zu:\n  got  %s\n  want %s", what, ngot, nwant, first, a, b);
}

static void contains(const char *what, const char *hay, const char *needle) {
  if (!strstr(hay, needle)) fail_msg("%s: \"%s\" does not contain \"%s\"", what, hay, needle);
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static const eg_chip *esp32(void) { return eg_chip_get(EG_CHIP_ESP32); }

/* A temporary folder per test, removed afterwards. */
typedef struct tmp {
  char dir[64];
} tmp;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int tmp_setup(void **state) {
  tmp *t = calloc(1, sizeof *t);
  snprintf(t->dir, sizeof t->dir, "/tmp/eg_image_XXXXXX");
  if (!mkdtemp(t->dir)) return -1;
  *state = t;
  return 0;
}

static int tmp_teardown(void **state) {
  tmp *t = *state;
  chmod(t->dir, 0700);
  nftw(t->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  free(t);
  return 0;
}

static void write_file(const char *path, const void *p, size_t n) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(p, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
}

/* Synthetic ESP32-family bootloader image, laid out as esptool's
 * ESP32FirmwareImage writes one: 8-byte header, 16-byte extended header
 * (append_digest in byte 23), segments (8-byte header + data), 0 padding up
 * to the checksum in the last byte of a 16-byte block, then the SHA-256 of
 * everything before it when `digest`. `tail` extra bytes follow (a merged
 * binary). Returns the length; *data_length is where the digest goes. */
typedef struct boot {
  uint8_t b[4096];
  size_t len, data_length;
} boot;

static void build_boot(boot *bt, uint8_t mode, uint8_t size_freq, bool digest, uint16_t chip_id, unsigned nseg,
                       size_t tail) {
  static const uint32_t seg_len[] = {0x24, 0x10, 0x8, 0x4};
  uint8_t *b = bt->b;
  memset(b, 0, sizeof bt->b);
  b[0] = 0xE9;
  b[1] = (uint8_t)nseg;
  b[2] = mode;
  b[3] = size_freq;
  put32(b + 4, 0x40080400);
  b[8] = 0xEE;  /* wp pin disabled */
  b[12] = (uint8_t)chip_id, b[13] = (uint8_t)(chip_id >> 8);
  b[23] = digest ? 1 : 0;
  size_t pos = 24;
  uint8_t cks = 0xEF;
  for (unsigned i = 0; i < nseg; i++) {
    const uint32_t n = seg_len[i % 4];
    put32(b + pos, 0x3FFF0000u + 0x100u * i);
    put32(b + pos + 4, n);
    pos += 8;
    for (uint32_t j = 0; j < n; j++) {
      b[pos + j] = (uint8_t)(i * 31 + j * 7 + 1);
      cks ^= b[pos + j];
    }
    pos += n;
  }
  pos += 15 - pos % 16;
  b[pos++] = cks;
  bt->data_length = pos;
  if (digest) {
    SHA256(b, pos, b + pos);
    pos += 32;
  }
  for (size_t i = 0; i < tail; i++) b[pos++] = (uint8_t)(0xA0 + i);
  bt->len = pos;
}

static void load_mem(eg_image *img, const uint8_t *p, size_t n, uint32_t off) {
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_image_from_mem(img, p, n, off, &f) != EG_OK) fail_msg("from_mem: %s", f.msg);
}

static void patch_ok(eg_image *img, const eg_chip *c, const char *m, const char *fr, const char *s, uint32_t det) {
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_image_patch_header(img, c, m, fr, s, det, &f);
  if (e != EG_OK) fail_msg("patch %s/%s/%s: %s %s", m, fr, s, eg_err_name(e), f.msg);
}

/* MD5 straight from libcrypto (MD5() itself is deprecated in OpenSSL 3). */
static void MD5(const uint8_t *p, size_t n, uint8_t out[16]) {
  assert_int_equal(EVP_Digest(p, n, out, NULL, EVP_md5(), NULL), 1);
}

static void md5_is_of_data(const eg_image *img) {
  uint8_t m[16];
  MD5(img->data, img->len, m);
  bytes_eq("md5 field", img->md5, 16, m, 16);
}

/* ------------------------------------------------------------ loading */

static void test_load_pads_and_hashes(void **state) {
  tmp *t = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/five.bin", t->dir);
  const uint8_t five[5] = {1, 2, 3, 4, 5};
  write_file(path, five, 5);
  eg_image img;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, path, 0x10000, &f), EG_OK);
  assert_string_equal(img.path, path);
  assert_int_equal(img.offset, 0x10000);
  assert_int_equal(img.file_len, 5);
  assert_int_equal(img.len, 8);
  const uint8_t want[8] = {1, 2, 3, 4, 5, 0xFF, 0xFF, 0xFF};
  bytes_eq("padded", img.data, img.len, want, 8);
  uint8_t sha[32], md5[16];
  SHA256(five, 5, sha); /* of the file as read, not the padded data */
  MD5(want, 8, md5);    /* of what the chip will hold */
  bytes_eq("file sha256", img.file_sha256, 32, sha, 32);
  bytes_eq("md5", img.md5, 16, md5, 16);
  assert_null(img.zdata);
  assert_false(img.header_patched);
  eg_image_free(&img);
  assert_null(img.data);

  /* A multiple of 4 is not padded. */
  eg_image m;
  load_mem(&m, want, 8, 0);
  assert_int_equal(m.len, 8);
  assert_int_equal(m.file_len, 8);
  assert_null(m.path);
  bytes_eq("unpadded", m.data, m.len, want, 8);
  eg_image_free(&m);
  eg_image_free(&m); /* freeing twice is harmless */
}

static void test_load_errors(void **state) {
  tmp *t = *state;
  char path[160];
  eg_image img;
  eg_fault f;

  snprintf(path, sizeof path, "%s/missing.bin", t->dir);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, path, 0, &f), EG_FILE_OPEN);
  contains("missing", f.msg, path);
  contains("missing", f.msg, "No such file");
  assert_null(img.data);

  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, t->dir, 0, &f), EG_FILE_OPEN);
  contains("directory", f.msg, t->dir);
  contains("directory", f.msg, "is a directory");

  snprintf(path, sizeof path, "%s/empty.bin", t->dir);
  write_file(path, "", 0);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, path, 0, &f), EG_IMAGE_EMPTY);
  contains("empty", f.msg, path);
  assert_null(img.data);

  /* A path through a regular file: ENOTDIR. */
  char through[200];
  snprintf(through, sizeof through, "%s/x", path);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, through, 0, &f), EG_FILE_OPEN);
  contains("not a dir", f.msg, through);

  /* Larger than EG_IMAGE_MAX_SIZE: a sparse file, refused before reading. */
  snprintf(path, sizeof path, "%s/huge.bin", t->dir);
  const int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)EG_IMAGE_MAX_SIZE + 1), 0);
  close(fd);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, path, 0, &f), EG_IMAGE_TOO_LARGE);
  contains("huge", f.msg, path);
  contains("huge", f.msg, "268435457");

  /* Exactly at the limit is not refused for its size (read it? 256 MiB is
   * too slow for a unit test; from_mem checks the same bound). */
  uint8_t one = 0;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(&img, &one, (size_t)EG_IMAGE_MAX_SIZE + 1, 0, &f), EG_IMAGE_TOO_LARGE);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_from_mem(&img, &one, 0, 0x1000, &f), EG_IMAGE_EMPTY);
  assert_null(img.data);
}

/* A FIFO or a device as an image: refused by its type, at once (opening a
 * FIFO used to block until a writer came; /dev/zero was read up to the
 * 256 MiB limit). SIGALRM ends the test if it hangs (a guard, not a timing
 * target). */
static void test_load_not_regular(void **state) {
  tmp *t = *state;
  char path[160];
  eg_image img;
  eg_fault f;
  snprintf(path, sizeof path, "%s/fifo.bin", t->dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  alarm(20);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, path, 0x10000, &f), EG_FILE_OPEN);
  char want[256];
  snprintf(want, sizeof want, "image %s: is a FIFO (named pipe), not a regular file", path);
  assert_string_equal(f.msg, want);
  assert_null(img.data);
  eg_fault_clear(&f);
  assert_int_equal(eg_image_load(&img, "/dev/zero", 0x10000, &f), EG_FILE_OPEN);
  assert_string_equal(f.msg, "image /dev/zero: is a character device, not a regular file");
  alarm(0);
}

/* esptool's warning for an offset inside a flash sector, as one line naming
 * the image and the bytes the sector erase takes along. */
static void test_erase_warning(void **state) {
  (void)state;
  char out[256];
  assert_true(eg_image_erase_warning("small.bin", 0x1004, out, sizeof out));
  assert_string_equal(out, "image small.bin at 0x00001004 is not aligned to a 0x1000-byte flash sector: "
                           "the 4 bytes 0x00001000..0x00001003 before it will be erased");
  assert_true(eg_image_erase_warning("a", 0xFFFFF, out, sizeof out));
  assert_string_equal(out, "image a at 0x000fffff is not aligned to a 0x1000-byte flash sector: "
                           "the 4095 bytes 0x000ff000..0x000ffffe before it will be erased");
  assert_true(eg_image_erase_warning("b", 0x10001, out, sizeof out));
  contains("one byte", out, "the 1 byte 0x00010000..0x00010000 before it");
  for (uint32_t off = 0; off < 0x10000; off += 0x1000) {
    strcpy(out, "x");
    assert_false(eg_image_erase_warning("c", off, out, sizeof out));
    assert_string_equal(out, "");
  }
  /* A short buffer: cut, still terminated. */
  char tiny[16];
  assert_true(eg_image_erase_warning("small.bin", 0x1004, tiny, sizeof tiny));
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

/* A file the process may not read. Root reads mode-000 files, so as root the
 * check runs in a child that has dropped to "nobody". */
static int unreadable_check(const char *path) {
  eg_image img;
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_image_load(&img, path, 0, &f);
  if (e != EG_FILE_OPEN || !strstr(f.msg, path) || !strstr(f.msg, "Permission denied")) {
    fprintf(stderr, "unreadable: %s %s\n", eg_err_name(e), f.msg);
    return 1;
  }
  return 0;
}

static void test_load_unreadable(void **state) {
  tmp *t = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/secret.bin", t->dir);
  write_file(path, "abcd", 4);
  assert_int_equal(chmod(path, 0), 0);
  if (geteuid() != 0) {
    assert_int_equal(unreadable_check(path), 0);
    return;
  }
  assert_int_equal(chmod(t->dir, 0755), 0);
  fflush(NULL);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(unreadable_check(path));
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_trace_image_md5_and_compression(void **state) {
  (void)state;
  eg_image img;
  eg_fault f;
  eg_fault_clear(&f);
  const char *path = EG_SOURCE_DIR "/tests/data/rom-traces/img16k.bin";
  if (eg_image_load(&img, path, 0x10000, &f) != EG_OK) fail_msg("%s", f.msg);
  assert_int_equal(img.len, 16384);
  char hex[33];
  assert_string_equal(eg_hex(hex, img.md5, 16), "bda9c2140490e507c2db0c84fdb693a4");
  assert_int_equal(eg_image_compress(&img, &f), EG_OK);
  /* esptool v5.3.1: "Compressed 16384 bytes to 6812..." */
  assert_int_equal(img.zlen, 6812);
  assert_int_equal(img.zdata[0], 0x78); /* zlib container, level 9 ... */
  assert_int_equal(img.zdata[1], 0xDA); /* ... FLEVEL 3 ("maximum compression") */
  uint8_t *back = malloc(img.len);
  uLongf blen = img.len;
  assert_int_equal(uncompress(back, &blen, img.zdata, img.zlen), Z_OK);
  bytes_eq("inflated", back, blen, img.data, img.len);
  free(back);
  /* Idempotent: the same buffer. */
  const uint8_t *z = img.zdata;
  assert_int_equal(eg_image_compress(&img, &f), EG_OK);
  assert_ptr_equal(img.zdata, z);
  assert_int_equal(img.zlen, 6812);
  /* Patching after compression is refused (the shared data would diverge). */
  eg_fault_clear(&f);
  assert_int_equal(eg_image_patch_header(&img, esp32(), "dio", "keep", "keep", 0, &f), EG_INVAL);
  eg_image_free(&img);
}

static void test_compress_roundtrip(void **state) {
  (void)state;
  /* Incompressible and compressible halves; odd length (padded to 4). */
  const size_t n = 100003;
  uint8_t *buf = malloc(n);
  uint32_t x = 0x12345678;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    buf[i] = i < n / 2 ? (uint8_t)x : (uint8_t)(i / 64);
  }
  eg_image img;
  load_mem(&img, buf, n, 0x20000);
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_compress(&img, &f), EG_OK);
  assert_true(img.zlen > n / 2 && img.zlen < n);
  uint8_t *back = malloc(img.len);
  uLongf blen = img.len;
  assert_int_equal(uncompress(back, &blen, img.zdata, img.zlen), Z_OK);
  assert_int_equal(blen, 100004);
  bytes_eq("roundtrip", back, blen, img.data, img.len);
  assert_int_equal(back[n], 0xFF);
  free(back);
  free(buf);
  eg_image_free(&img);
}

/* ------------------------------------------------------------ header patch */

typedef struct vec {
  const char *mode, *freq, *size;
  uint32_t detected;
  uint8_t b2, b3;
} vec;

static void test_patch_vectors(void **state) {
  (void)state;
  /* Start from dout (3), 2MB/26m (0x11) so every field visibly changes. */
  static const vec v[] = {
    {"dio", "80m", "4MB", 0, 0x02, 0x2F},
    {"qio", "40m", "16MB", 0, 0x00, 0x40},
    {"qout", "20m", "1MB", 0, 0x01, 0x02},
    {"dout", "26m", "128MB", 0, 0x03, 0x71},
    {"keep", "40m", "8MB", 0, 0x03, 0x30},    /* mode kept */
    {"dio", "keep", "16MB", 0, 0x02, 0x41},   /* freq nibble kept */
    {"dio", "80m", "keep", 0, 0x02, 0x1F},    /* size nibble kept */
    {"keep", "keep", "detect", 8u << 20, 0x03, 0x31},
    {"keep", "keep", "detect", 0, 0x03, 0x21}, /* nothing detected: 4MB */
    {"keep", "keep", "detect", 32u << 20, 0x03, 0x51},
    {"DIO", "80M", "4mb", 0, 0x02, 0x2F},      /* case-insensitive as chips.c */
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    boot bt;
    build_boot(&bt, 0x03, 0x11, false, 0, 2, 0);
    eg_image img;
    load_mem(&img, bt.b, bt.len, 0x1000);
    uint8_t before[16];
    memcpy(before, img.md5, 16);
    patch_ok(&img, esp32(), v[i].mode, v[i].freq, v[i].size, v[i].detected);
    if (img.data[2] != v[i].b2 || img.data[3] != v[i].b3)
      fail_msg("vector %zu (%s/%s/%s, %u): got %02x %02x, want %02x %02x", i, v[i].mode, v[i].freq, v[i].size,
               v[i].detected, img.data[2], img.data[3], v[i].b2, v[i].b3);
    assert_true(img.header_patched);
    assert_string_equal(img.note, "");
    /* Nothing but bytes 2-3 changed (no digest in this image). */
    bt.b[2] = v[i].b2, bt.b[3] = v[i].b3;
    bytes_eq("rest of image", img.data, img.len, bt.b, bt.len);
    md5_is_of_data(&img);
    assert_memory_not_equal(img.md5, before, 16);
    eg_image_free(&img);
  }
}

static void test_patch_same_values_is_not_a_change(void **state) {
  (void)state;
  boot bt;
  build_boot(&bt, 0x02, 0x2F, false, 0, 2, 0);
  eg_image img;
  load_mem(&img, bt.b, bt.len, 0x1000);
  patch_ok(&img, esp32(), "dio", "80m", "4MB", 0);
  assert_false(img.header_patched);
  bytes_eq("unchanged", img.data, img.len, bt.b, bt.len);
  eg_image_free(&img);
}

/* Each reason esptool leaves the image alone. */
static void test_patch_skipped(void **state) {
  (void)state;
  boot bt;
  eg_image img;
  struct {
    const char *what;
    uint32_t offset;
    int mutate; /* 0 none, 1 magic, 2 truncate segment, 3 17 segments, 4 bad digest flag, 5 no checksum, 6 short */
    const char *mode, *freq, *size;
    const char *note;
  } c[] = {
    {"wrong offset 0x0", 0x0, 0, "dio", "80m", "4MB", ""},
    {"wrong offset 0x8000", 0x8000, 0, "dio", "80m", "4MB", ""},
    {"all keep", 0x1000, 0, "keep", "keep", "keep", ""},
    {"NULL means keep", 0x1000, 0, NULL, NULL, NULL, ""},
    {"byte 0 not 0xE9", 0x1000, 1, "dio", "80m", "4MB", "doesn't look like an image file"},
    {"segment past end", 0x1000, 2, "dio", "80m", "4MB", "not a valid ESP32 image (segment 1"},
    {"17 segments", 0x1000, 3, "dio", "80m", "4MB", "17 segments (max 16)"},
    {"append_digest 2", 0x1000, 4, "dio", "80m", "4MB", "append_digest byte 0x02"},
    {"no checksum byte", 0x1000, 5, "dio", "80m", "4MB", "no checksum byte"},
    {"inside extended header", 0x1000, 6, "dio", "80m", "4MB", "extended header"},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    build_boot(&bt, 0x03, 0x11, true, 0, c[i].mutate == 3 ? 17 : 2, 0);
    size_t len = bt.len;
    switch (c[i].mutate) {
    case 1: bt.b[0] = 0xEA; break;
    case 2: put32(bt.b + 24 + 8 + 0x24 + 4, 0x1000); break; /* segment 1 claims 4 KiB */
    case 4: bt.b[23] = 2; break;
    case 5: len = bt.data_length - 4; break;                /* cut the checksum byte off (the
                                                                 0xFF pad must not replace it) */
    case 6: len = 20; break;
    default: break;
    }
    load_mem(&img, bt.b, len, c[i].offset);
    const size_t plen = img.len;
    uint8_t *copy = malloc(plen);
    memcpy(copy, img.data, plen);
    uint8_t md5[16];
    memcpy(md5, img.md5, 16);
    eg_fault f;
    eg_fault_clear(&f);
    if (eg_image_patch_header(&img, esp32(), c[i].mode, c[i].freq, c[i].size, 0, &f) != EG_OK)
      fail_msg("%s: %s", c[i].what, f.msg);
    if (img.header_patched) fail_msg("%s: patched", c[i].what);
    bytes_eq(c[i].what, img.data, img.len, copy, plen);
    bytes_eq(c[i].what, img.md5, 16, md5, 16);
    if (c[i].note[0] == '\0') assert_string_equal(img.note, "");
    else contains(c[i].what, img.note, c[i].note);
    free(copy);
    eg_image_free(&img);
  }
  /* Shorter than 8 bytes at the bootloader offset. */
  const uint8_t tiny[4] = {0xE9, 0, 0, 0};
  load_mem(&img, tiny, 4, 0x1000);
  patch_ok(&img, esp32(), "dio", "80m", "4MB", 0);
  assert_false(img.header_patched);
  assert_int_equal(img.data[2], 0);
  eg_image_free(&img);
}

static void test_patch_digest(void **state) {
  (void)state;
  for (unsigned tail = 0; tail <= 40; tail += 40) {
    boot bt;
    build_boot(&bt, 0x03, 0x11, true, 0, 3, tail);
    eg_image img;
    load_mem(&img, bt.b, bt.len, 0x1000);
    patch_ok(&img, esp32(), "dio", "80m", "4MB", 0);
    assert_true(img.header_patched);
    assert_int_equal(img.data[2], 0x02);
    assert_int_equal(img.data[3], 0x2F);
    /* The digest at data_length is SHA-256 of [0, data_length) of the patched bytes. */
    uint8_t want[32];
    SHA256(img.data, bt.data_length, want);
    bytes_eq("digest", img.data + bt.data_length, 32, want, 32);
    assert_memory_not_equal(img.data + bt.data_length, bt.b + bt.data_length, 32);
    /* Everything else, including a merged binary's tail, is as it was. */
    bytes_eq("before digest", img.data + 4, bt.data_length - 4, bt.b + 4, bt.data_length - 4);
    bytes_eq("tail", img.data + bt.data_length + 32, img.len - bt.data_length - 32, bt.b + bt.data_length + 32,
             bt.len - bt.data_length - 32);
    md5_is_of_data(&img);
    eg_image_free(&img);
  }
}

static void test_patch_digest_fixes_stale_and_short(void **state) {
  (void)state;
  /* Same values but a stale digest: esptool rewrites the digest anyway. */
  boot bt;
  build_boot(&bt, 0x02, 0x2F, true, 0, 2, 0);
  bt.b[bt.data_length] ^= 0x55;
  eg_image img;
  load_mem(&img, bt.b, bt.len, 0x1000);
  patch_ok(&img, esp32(), "dio", "keep", "keep", 0);
  assert_true(img.header_patched);
  uint8_t want[32];
  SHA256(img.data, bt.data_length, want);
  bytes_eq("fixed digest", img.data + bt.data_length, 32, want, 32);
  eg_image_free(&img);

  /* Digest cut short by the end of the file: esptool's slicing completes it,
   * the image grows to data_length + 32. */
  build_boot(&bt, 0x03, 0x11, true, 0, 2, 0);
  load_mem(&img, bt.b, bt.data_length + 8, 0x1000);
  patch_ok(&img, esp32(), "dio", "80m", "4MB", 0);
  assert_int_equal(img.len, bt.data_length + 32);
  SHA256(img.data, bt.data_length, want);
  bytes_eq("completed digest", img.data + bt.data_length, 32, want, 32);
  md5_is_of_data(&img);
  eg_image_free(&img);
}

static void test_patch_chip_id_warning(void **state) {
  (void)state;
  boot bt;
  build_boot(&bt, 0x03, 0x11, false, 9 /* ESP32-S3 */, 2, 0);
  eg_image img;
  load_mem(&img, bt.b, bt.len, 0x1000);
  patch_ok(&img, esp32(), "dio", "80m", "4MB", 0);
  assert_true(img.header_patched); /* esptool only warns */
  contains("chip id", img.note, "unexpected chip ID 9");
  eg_image_free(&img);
}

static void test_patch_bad_values(void **state) {
  (void)state;
  struct {
    const char *mode, *freq, *size;
    uint32_t offset, detected;
    const char *named;
  } c[] = {
    {"dio", "70m", "4MB", 0x1000, 0, "'70m'"},
    {"dio", "80m", "5MB", 0x1000, 0, "'5MB'"},
    {"fast", "80m", "4MB", 0x1000, 0, "'fast'"},
    {"dio", "48m", "4MB", 0x1000, 0, "ESP32"},       /* an ESP32-H2 frequency */
    {"dio", "80m", "512KB", 0x1000, 0, "'512KB'"},   /* an ESP8266 size */
    {"dio", "70m", "4MB", 0x10000, 0, "'70m'"},      /* refused even where nothing is patched */
    {"keep", "keep", "detect", 0x1000, 256u << 20, "256MB"},
    {"keep", "keep", "detect", 0x1000, 3u << 20, "3145728"},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    boot bt;
    build_boot(&bt, 0x03, 0x11, true, 0, 2, 0);
    eg_image img;
    load_mem(&img, bt.b, bt.len, c[i].offset);
    eg_fault f;
    eg_fault_clear(&f);
    const eg_err e = eg_image_patch_header(&img, esp32(), c[i].mode, c[i].freq, c[i].size, c[i].detected, &f);
    if (e != EG_IMAGE_HEADER) fail_msg("case %zu: %s (%s)", i, eg_err_name(e), f.msg);
    assert_int_equal(f.code, EG_IMAGE_HEADER);
    contains("message", f.msg, c[i].named);
    bytes_eq("untouched", img.data, img.len, bt.b, bt.len);
    eg_image_free(&img);
  }
  /* A detected size the chip cannot express only matters when patching. */
  boot bt;
  build_boot(&bt, 0x03, 0x11, false, 0, 2, 0);
  eg_image img;
  load_mem(&img, bt.b, bt.len, 0x10000);
  patch_ok(&img, esp32(), "keep", "keep", "detect", 256u << 20);
  eg_image_free(&img);
}

static void test_patch_other_chips(void **state) {
  (void)state;
  /* ESP32-C6 writes 80m as 0 (chips.c); bootloader at 0x0. */
  boot bt;
  build_boot(&bt, 0x03, 0x1F, false, 13, 2, 0);
  eg_image img;
  load_mem(&img, bt.b, bt.len, 0x0);
  patch_ok(&img, eg_chip_get(EG_CHIP_ESP32C6), "dio", "80m", "8MB", 0);
  assert_int_equal(img.data[2], 0x02);
  assert_int_equal(img.data[3], 0x30);
  eg_image_free(&img);
  /* 0x1000 is not the C6's bootloader offset. */
  load_mem(&img, bt.b, bt.len, 0x1000);
  patch_ok(&img, eg_chip_get(EG_CHIP_ESP32C6), "dio", "80m", "8MB", 0);
  assert_false(img.header_patched);
  eg_image_free(&img);

  /* ESP8266 (V1 image, no extended header): byte 23 is segment data and must
   * not be taken for the digest flag. */
  uint8_t e[64];
  memset(e, 0, sizeof e);
  e[0] = 0xE9, e[1] = 1, e[2] = 0, e[3] = 0x00;
  put32(e + 4, 0x40100000);
  put32(e + 8, 0x3FFE8000);
  put32(e + 12, 20);
  for (int i = 0; i < 20; i++) e[16 + i] = 1; /* e[23] == 1 */
  /* 16 + 20 = 36 -> checksum at 47 */
  e[47] = 0xEF;
  load_mem(&img, e, 48, 0x0);
  patch_ok(&img, eg_chip_get(EG_CHIP_ESP8266), "dio", "40m", "4MB", 0);
  assert_true(img.header_patched);
  assert_int_equal(img.data[2], 0x02);
  assert_int_equal(img.data[3], 0x40);
  bytes_eq("esp8266 rest", img.data + 4, 44, e + 4, 44);
  assert_int_equal(img.len, 48);
  eg_image_free(&img);
}

/* ------------------------------------------------------------ ROM alignment */

static void test_rom_aligned(void **state) {
  (void)state;
  const uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  eg_image src, dst;
  load_mem(&src, d, 8, 0x10010);
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_image_rom_aligned(&src, &dst, &f), EG_OK);
  assert_int_equal(dst.offset, 0x10000);
  assert_int_equal(dst.len, 0x18);
  for (size_t i = 0; i < 0x10; i++) assert_int_equal(dst.data[i], 0xFF);
  bytes_eq("payload", dst.data + 0x10, 8, d, 8);
  md5_is_of_data(&dst);
  bytes_eq("file sha kept", dst.file_sha256, 32, src.file_sha256, 32);
  assert_int_equal(dst.file_len, 8);
  eg_image_free(&dst);

  /* Aligned: an identical copy. */
  eg_image_free(&src);
  load_mem(&src, d, 8, 0x20000);
  assert_int_equal(eg_image_rom_aligned(&src, &dst, &f), EG_OK);
  assert_int_equal(dst.offset, 0x20000);
  bytes_eq("aligned copy", dst.data, dst.len, src.data, src.len);
  bytes_eq("aligned md5", dst.md5, 16, src.md5, 16);
  assert_ptr_not_equal(dst.data, src.data);
  eg_image_free(&dst);
  eg_image_free(&src);
}

/* ------------------------------------------------------------ small helpers */

static void test_blocks(void **state) {
  (void)state;
  assert_int_equal(eg_blocks(0, 0x400), 0);
  assert_int_equal(eg_blocks(1, 0x400), 1);
  assert_int_equal(eg_blocks(0x400, 0x400), 1);
  assert_int_equal(eg_blocks(0x401, 0x400), 2);
  assert_int_equal(eg_blocks(6812, 0x400), 7); /* the trace: 7 FLASH_DEFL_DATA blocks */
  assert_int_equal(eg_block_len(6812, 0x400, 0), 0x400);
  assert_int_equal(eg_block_len(6812, 0x400, 6), 6812 - 6 * 0x400);
  assert_int_equal(eg_block_len(6812, 0x400, 7), 0);
  assert_int_equal(eg_block_len(0x800, 0x400, 1), 0x400);
  assert_int_equal(eg_blocks(6812, 0x4000), 1);
  assert_int_equal(eg_block_len(6812, 0x4000, 0), 6812);
}

static void test_hex(void **state) {
  (void)state;
  const uint8_t b[4] = {0x00, 0xAB, 0x7F, 0xF0};
  char out[9];
  memset(out, 'x', sizeof out);
  assert_string_equal(eg_hex(out, b, 4), "00ab7ff0");
  uint8_t got[4];
  assert_true(eg_unhex(got, 4, "00AB7fF0"));
  bytes_eq("unhex", got, 4, b, 4);
  assert_false(eg_unhex(got, 4, "00ab7ff"));   /* short: the NUL is not a digit */
  assert_false(eg_unhex(got, 4, "00ab7fg0"));
  assert_false(eg_unhex(got, 2, " 0ab"));
  assert_true(eg_unhex(got, 0, ""));
  /* Exactly 2n characters and no terminator (the ROM's MD5 reply): ASan
   * catches any read past them. */
  char *raw = malloc(32);
  memcpy(raw, "bda9c2140490e507c2db0c84fdb693a4", 32);
  uint8_t md5[16];
  assert_true(eg_unhex(md5, 16, raw));
  char back[33];
  assert_string_equal(eg_hex(back, md5, 16), "bda9c2140490e507c2db0c84fdb693a4");
  free(raw);
}

static void test_digests(void **state) {
  (void)state;
  /* RFC 1321 / FIPS 180-2 vectors. */
  uint8_t m[16], s[32];
  char h[65];
  eg_md5((const uint8_t *)"", 0, m);
  assert_string_equal(eg_hex(h, m, 16), "d41d8cd98f00b204e9800998ecf8427e");
  eg_md5((const uint8_t *)"abc", 3, m);
  assert_string_equal(eg_hex(h, m, 16), "900150983cd24fb0d6963f7d28e17f72");
  eg_sha256((const uint8_t *)"abc", 3, s);
  assert_string_equal(eg_hex(h, s, 32), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  eg_sha256(NULL, 0, s);
  assert_string_equal(eg_hex(h, s, 32), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_load_pads_and_hashes, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_load_errors, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_load_unreadable, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_load_not_regular, tmp_setup, tmp_teardown),
    cmocka_unit_test(test_erase_warning),
    cmocka_unit_test(test_trace_image_md5_and_compression),
    cmocka_unit_test(test_compress_roundtrip),
    cmocka_unit_test(test_patch_vectors),
    cmocka_unit_test(test_patch_same_values_is_not_a_change),
    cmocka_unit_test(test_patch_skipped),
    cmocka_unit_test(test_patch_digest),
    cmocka_unit_test(test_patch_digest_fixes_stale_and_short),
    cmocka_unit_test(test_patch_chip_id_warning),
    cmocka_unit_test(test_patch_bad_values),
    cmocka_unit_test(test_patch_other_chips),
    cmocka_unit_test(test_rom_aligned),
    cmocka_unit_test(test_blocks),
    cmocka_unit_test(test_hex),
    cmocka_unit_test(test_digests),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
