/* image.c - load, header-patch, pad and compress firmware images (image.h).
 *
 * Facts: ../shared/docs/esp-serial-protocol.md §6; esptool v5.3.1
 * cmds.py write_flash / _update_image_flash_params and bin_image.py
 * ESP32FirmwareImage / ESP8266ROMFirmwareImage (read for behaviour only).
 */
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "fileio.h"
#include "proto.h"

#define IMAGE_MAGIC 0xE9u
#define COMMON_HDR_LEN 8u   /* magic, segment count, mode, size|freq, entry u32 */
#define EXT_HDR_LEN 16u     /* ESP32 and later: wp pin ... append_digest (last byte) */
#define SEG_HDR_LEN 8u      /* load address u32, length u32 */
#define MAX_SEGMENTS 16u    /* esptool BaseFirmwareImage.verify */
#define DIGEST_FLAG_AT (COMMON_HDR_LEN + EXT_HDR_LEN - 1) /* byte 23 */
#define SHA256_LEN 32u
#define DETECT_FALLBACK (4u << 20) /* esptool: "Could not auto-detect flash size, defaulting to 4MB" */

static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ---------------------------------------------------------------- hashes */

/* One-shot digests. EVP_Digest only fails on allocation failure or when the
 * provider refuses the algorithm (MD5 under a strict FIPS config); the API
 * returns void, so a failure leaves an all-zero digest, which can never match
 * the chip's answer and so surfaces as a verify failure rather than silently. */
void eg_md5(const uint8_t *buf, size_t n, uint8_t out[16]) {
  static const uint8_t empty = 0;
  if (EVP_Digest(buf ? buf : &empty, n, out, NULL, EVP_md5(), NULL) != 1) memset(out, 0, 16);
}

void eg_sha256(const uint8_t *buf, size_t n, uint8_t out[32]) {
  static const uint8_t empty = 0;
  if (EVP_Digest(buf ? buf : &empty, n, out, NULL, EVP_sha256(), NULL) != 1) memset(out, 0, 32);
}

/* ------------------------------------------------------------------- hex */

char *eg_hex(char *out, const uint8_t *bytes, size_t n) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0xF];
  }
  out[2 * n] = '\0';
  return out;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads exactly 2n characters and never looks past them: the ROM's MD5 reply
 * is 32 hex characters followed by status bytes, not a C string. A NUL inside
 * the 2n characters is simply "not a hex digit", so short strings are safe. */
bool eg_unhex(uint8_t *out, size_t n, const char *hex) {
  for (size_t i = 0; i < n; i++) {
    const int hi = hex_digit(hex[2 * i]);
    if (hi < 0) return false;
    const int lo = hex_digit(hex[2 * i + 1]);
    if (lo < 0) return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

/* ---------------------------------------------------------------- images */

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

/* Take ownership of buf (file bytes, capacity >= pad4(len)): pad with 0xFF to
 * a multiple of 4 as esptool's pad_to(image, 4), hash the file as read and the
 * padded data. */
static void adopt(eg_image *img, uint8_t *buf, size_t len, uint32_t offset) {
  img->offset = offset;
  img->data = buf;
  img->file_len = len;
  eg_sha256(buf, len, img->file_sha256);
  img->len = pad4(len);
  memset(buf + len, 0xFF, img->len - len);
  eg_md5(img->data, img->len, img->md5);
}

eg_err eg_image_load(eg_image *img, const char *path, uint32_t offset, eg_fault *f) {
  memset(img, 0, sizeof *img);
  uint8_t *buf;
  size_t len;
  eg_err e = eg_file_read(path, "image", EG_IMAGE_MAX_SIZE, EG_IMAGE_TOO_LARGE, 3, &buf, &len, f);
  if (e != EG_OK) return e;
  if (len == 0) {
    free(buf);
    return eg_fault_set(f, EG_IMAGE_EMPTY, EG_STAGE_NONE, -1, "image %s: the file is empty", path);
  }
  if (!(img->path = strdup(path))) {
    free(buf);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "image %s: out of memory", path);
  }
  adopt(img, buf, len, offset);
  return EG_OK;
}

eg_err eg_image_from_mem(eg_image *img, const uint8_t *buf, size_t len, uint32_t offset, eg_fault *f) {
  memset(img, 0, sizeof *img);
  if (len == 0 || !buf)
    return eg_fault_set(f, EG_IMAGE_EMPTY, EG_STAGE_NONE, -1, "in-memory image for 0x%08x is empty", offset);
  if (len > EG_IMAGE_MAX_SIZE)
    return eg_fault_set(f, EG_IMAGE_TOO_LARGE, EG_STAGE_NONE, -1, "in-memory image for 0x%08x: %zu bytes, more than the %u-byte limit",
                        offset, len, EG_IMAGE_MAX_SIZE);
  uint8_t *copy = malloc(pad4(len));
  if (!copy) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "in-memory image for 0x%08x: out of memory", offset);
  memcpy(copy, buf, len);
  adopt(img, copy, len, offset);
  return EG_OK;
}

void eg_image_free(eg_image *img) {
  if (!img) return;
  free(img->path);
  free(img->data);
  free(img->zdata);
  memset(img, 0, sizeof *img);
}

/* ------------------------------------------------------- header patching */

static bool is_keep(const char *s) { return !s || strcasecmp(s, "keep") == 0; }

/* "80m, 40m, 26m, 20m" for messages. */
static const char *list_codes(char *buf, size_t cap, const eg_code *t, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < cap; i++)
    used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", t[i].name);
  return buf;
}

/* Walk the image as esptool's BOOTLOADER_IMAGE constructor does over the
 * padded bytes (ESP32FirmwareImage for ESP32 and later, ESP8266ROMFirmwareImage
 * for the ESP8266), plus its verify(). Anything its constructor or verify()
 * would raise on makes this return false with the reason in why. On success
 * *data_length is esptool's data_length: the end of the checksum byte, which
 * sits at the last byte of a 16-byte block (ESP32 family only; the ESP8266
 * parser has none, *data_length is then 0). What esptool merely warns about
 * (unexpected chip id) goes to warn. */
static bool parse_bootloader(const eg_chip *chip, const uint8_t *d, size_t len, size_t *data_length, char *why,
                             size_t whylen, char *warn, size_t warnlen) {
  const bool ext = chip->id != EG_CHIP_ESP8266;
  size_t pos = COMMON_HDR_LEN;
  *data_length = 0;
  if (len < COMMON_HDR_LEN) { /* struct.unpack of the 8-byte header fails */
    snprintf(why, whylen, "shorter than its %u-byte header", COMMON_HDR_LEN);
    return false;
  }
  const unsigned nseg = d[1];
  if (ext) {
    if (len < COMMON_HDR_LEN + EXT_HDR_LEN) {
      snprintf(why, whylen, "ends inside its extended header");
      return false;
    }
    /* esptool only warns about a chip id from another chip. */
    const uint16_t image_chip = get_le16(d + 12);
    if (chip->chip_id >= 0 && image_chip != (uint16_t)chip->chip_id)
      snprintf(warn, warnlen, "unexpected chip ID %u in image (%s is %d)", image_chip, chip->name, chip->chip_id);
    /* ...but refuses an append_digest byte other than 0 or 1. */
    if (d[DIGEST_FLAG_AT] > 1) {
      snprintf(why, whylen, "invalid append_digest byte 0x%02x", d[DIGEST_FLAG_AT]);
      return false;
    }
    pos += EXT_HDR_LEN;
  }
  for (unsigned i = 0; i < nseg; i++) {
    if (len - pos < SEG_HDR_LEN) {
      snprintf(why, whylen, "ends inside the header of segment %u", i);
      return false;
    }
    const uint32_t seg_len = get_le32(d + pos + 4);
    pos += SEG_HDR_LEN;
    if (seg_len > len - pos) {
      snprintf(why, whylen, "segment %u (0x%08x, %u bytes) runs past the end of the file", i, get_le32(d + pos - 8),
               seg_len);
      return false;
    }
    pos += seg_len;
  }
  /* Checksum: skip to the last byte of the current 16-byte block, read it. */
  pos += 15 - pos % 16;
  if (pos >= len) {
    snprintf(why, whylen, "has no checksum byte after its segments");
    return false;
  }
  pos++;
  /* verify() runs after every segment was read. */
  if (nseg > MAX_SEGMENTS) {
    snprintf(why, whylen, "has %u segments (max %u)", nseg, MAX_SEGMENTS);
    return false;
  }
  if (ext) *data_length = pos;
  return true;
}

/* Resolve and validate the three arguments. Names are checked whenever they
 * are given (a typo in a manifest is a mistake whichever image it meets;
 * esptool's CLI likewise refuses names outside its choices before it
 * connects). "detect" resolves to a size here too, but its validity depends
 * on the unit, so an inexpressible detected size is reported by the caller
 * only when it would be written. Codes: -1 keep. */
typedef struct header_args {
  int mode, freq, size;
  bool size_detect;
  const char *detected_name; /* NULL when the detected size has no name */
} header_args;

static eg_err resolve_args(const eg_chip *chip, const char *mode, const char *freq, const char *size,
                           uint32_t detected_size, header_args *a, eg_fault *f) {
  char list[128];
  a->mode = a->freq = a->size = -1;
  a->size_detect = false;
  a->detected_name = NULL;
  if (!is_keep(mode) && (a->mode = eg_flash_mode_code(mode)) < 0)
    return eg_fault_set(f, EG_IMAGE_HEADER, EG_STAGE_NONE, -1, "flash mode '%s' is not one of qio, qout, dio, dout", mode);
  if (!is_keep(freq) && (a->freq = eg_chip_freq_code(chip, freq)) < 0)
    return eg_fault_set(f, EG_IMAGE_HEADER, EG_STAGE_NONE, -1, "flash frequency '%s' is not supported by %s (%s)", freq,
                        chip->name, list_codes(list, sizeof list, chip->flash_freqs, chip->nflash_freqs));
  if (!is_keep(size) && strcasecmp(size, "detect") == 0) {
    a->size_detect = true;
    a->detected_name = eg_flash_size_name(detected_size ? detected_size : DETECT_FALLBACK);
    a->size = a->detected_name ? eg_chip_size_code(chip, a->detected_name) : -1;
  } else if (!is_keep(size) && (a->size = eg_chip_size_code(chip, size)) < 0) {
    return eg_fault_set(f, EG_IMAGE_HEADER, EG_STAGE_NONE, -1, "flash size '%s' is not supported by %s (%s)", size,
                        chip->name, list_codes(list, sizeof list, chip->flash_sizes, chip->nflash_sizes));
  }
  return EG_OK;
}

/* esptool v5.3.1 _update_image_flash_params, step by step:
 *   1. len < 8, address != BOOTLOADER_FLASH_OFFSET, or all three "keep":
 *      return the image silently.
 *   2. byte 0 != 0xE9: warn "doesn't look like an image file, so not changing
 *      any flash settings" and return it unchanged.
 *   3. Parse it with the chip's BOOTLOADER_IMAGE class and verify(); on any
 *      exception warn "is not a valid <chip> image, so not changing any flash
 *      settings" and return it unchanged. This is what keeps data that merely
 *      starts with 0xE9 (e.g. an encrypted image) untouched.
 *   4. Replace byte 2 (mode) and byte 3 (size high nibble + freq low nibble)
 *      for each argument that is not "keep"; an argument the chip's tables do
 *      not know raises FatalError (the whole write-flash stops).
 *   5. If byte 23 == 1, re-parse, and write SHA-256(image[0:data_length]) at
 *      data_length, keeping whatever follows the old digest (merged binaries).
 *      Python slicing means a digest cut short by the end of the file is
 *      completed: the image then grows to data_length + 32. We do the same.
 * The SHA step runs even when bytes 2-3 did not change, so a stale digest is
 * corrected too.
 * Divergence: esptool tests `CHIP_NAME != "esp8266"` against "ESP8266", which
 * is never equal, so for an ESP8266 image with byte 23 == 1 it re-parses with
 * a class that has no data_length and crashes. The intent (ESP8266 images have
 * no extended header, hence no digest) is what we implement. */
eg_err eg_image_patch_header(eg_image *img, const eg_chip *chip, const char *mode, const char *freq,
                             const char *size, uint32_t detected_size, eg_fault *f) {
  if (!img || !chip || !img->data)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "eg_image_patch_header: no image or chip");
  if (img->zdata)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "image %s: header patched after compression",
                        img->path ? img->path : "(memory)");
  header_args a;
  eg_err e = resolve_args(chip, mode, freq, size, detected_size, &a, f);
  if (e != EG_OK) return e;
  img->note[0] = '\0';

  if (img->len < 8 || img->offset != chip->bootloader_offset || (is_keep(mode) && is_keep(freq) && is_keep(size)))
    return EG_OK;
  uint8_t *d = img->data;
  if (d[0] != IMAGE_MAGIC) {
    snprintf(img->note, sizeof img->note,
             "image at 0x%x doesn't look like an image file, so not changing any flash settings", img->offset);
    return EG_OK;
  }
  char why[96] = "", warn[96] = "";
  size_t data_length = 0;
  if (!parse_bootloader(chip, d, img->len, &data_length, why, sizeof why, warn, sizeof warn)) {
    snprintf(img->note, sizeof img->note, "image at 0x%x is not a valid %s image (%s), so not changing any flash settings",
             img->offset, chip->name, why);
    return EG_OK;
  }
  if (warn[0]) snprintf(img->note, sizeof img->note, "image at 0x%x: %s", img->offset, warn);

  if (a.size_detect && a.size < 0) {
    char list[128];
    if (a.detected_name)
      return eg_fault_set(f, EG_IMAGE_HEADER, EG_STAGE_NONE, -1, "detected flash size %s is not supported by %s (%s)",
                          a.detected_name, chip->name, list_codes(list, sizeof list, chip->flash_sizes, chip->nflash_sizes));
    return eg_fault_set(f, EG_IMAGE_HEADER, EG_STAGE_NONE, -1, "detected flash size of %u bytes has no %s header code",
                        detected_size, chip->name);
  }
  const uint8_t mode_b = a.mode >= 0 ? (uint8_t)a.mode : d[2];
  const uint8_t freq_n = a.freq >= 0 ? (uint8_t)a.freq : (uint8_t)(d[3] & 0x0F);
  const uint8_t size_n = a.size >= 0 ? (uint8_t)a.size : (uint8_t)(d[3] & 0xF0);
  bool changed = d[2] != mode_b || d[3] != (uint8_t)(size_n | freq_n);
  d[2] = mode_b;
  d[3] = (uint8_t)(size_n | freq_n);

  if (chip->id != EG_CHIP_ESP8266 && d[DIGEST_FLAG_AT] == 1) {
    if (img->len < data_length + SHA256_LEN) {
      /* Digest missing or cut short: esptool's result is data_length + 32 long. */
      uint8_t *nd = realloc(img->data, data_length + SHA256_LEN);
      if (!nd)
        return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "image %s: out of memory", img->path ? img->path : "(memory)");
      memset(nd + img->len, 0, data_length + SHA256_LEN - img->len);
      img->data = d = nd;
      img->len = data_length + SHA256_LEN;
      changed = true;
    }
    uint8_t digest[SHA256_LEN];
    eg_sha256(d, data_length, digest);
    if (memcmp(d + data_length, digest, SHA256_LEN) != 0) changed = true;
    memcpy(d + data_length, digest, SHA256_LEN);
  }
  img->header_patched = changed;
  eg_md5(img->data, img->len, img->md5);
  return EG_OK;
}

/* ------------------------------------------------ ROM alignment, zlib */

eg_err eg_image_rom_aligned(const eg_image *src, eg_image *dst, eg_fault *f) {
  memset(dst, 0, sizeof *dst);
  if (!src->data || src->len == 0)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "eg_image_rom_aligned: empty image");
  /* esptool (no stub): "It is not possible to write to not aligned addresses
   * without stub", so it moves the address down to the sector start and
   * prepends that many 0xFF bytes. It does so after padding to 4, so the result
   * is not re-padded (an offset that is not a multiple of 4 gives a length that
   * is not one either, exactly as esptool sends it). */
  const size_t over = src->offset % EG_SECTOR_SIZE;
  const char *name = src->path ? src->path : "(memory)";
  if (!(dst->data = malloc(over + src->len)))
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "image %s: out of memory", name);
  if (src->path && !(dst->path = strdup(src->path))) {
    eg_image_free(dst);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "image %s: out of memory", name);
  }
  memset(dst->data, 0xFF, over);
  memcpy(dst->data + over, src->data, src->len);
  dst->len = over + src->len;
  dst->offset = src->offset - (uint32_t)over;
  dst->file_len = src->file_len;
  memcpy(dst->file_sha256, src->file_sha256, sizeof dst->file_sha256);
  dst->header_patched = src->header_patched;
  memcpy(dst->note, src->note, sizeof dst->note);
  eg_md5(dst->data, dst->len, dst->md5);
  return EG_OK;
}

bool eg_image_erase_warning(const char *name, uint32_t offset, char *out, size_t cap) {
  const uint32_t over = offset % EG_SECTOR_SIZE;
  if (cap) out[0] = '\0';
  if (!over) return false;
  const uint32_t start = offset - over;
  snprintf(out, cap,
           "image %s at 0x%08x is not aligned to a 0x%x-byte flash sector: the %u byte%s 0x%08x..0x%08x before it "
           "will be erased",
           name, offset, EG_SECTOR_SIZE, over, over == 1 ? "" : "s", start, offset - 1);
  return true;
}

/* zlib.compress(data, 9) in Python is compress2(level 9): zlib container,
 * default window (15 bits) and memLevel (8), default strategy. Same library,
 * same parameters, same bytes: the length esptool reports in its traces is
 * what the tests check. */
eg_err eg_image_compress(eg_image *img, eg_fault *f) {
  if (img->zdata) return EG_OK;
  const char *name = img->path ? img->path : "(memory)";
  if (!img->data) return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "eg_image_compress: empty image");
  uLongf zlen = compressBound((uLong)img->len);
  uint8_t *z = malloc(zlen);
  if (!z) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "image %s: out of memory compressing", name);
  const int rc = compress2(z, &zlen, img->data, (uLong)img->len, Z_BEST_COMPRESSION);
  if (rc != Z_OK) {
    free(z);
    return eg_fault_set(f, EG_COMPRESS, EG_STAGE_NONE, -1, "image %s: zlib compress2 failed (%d)", name, rc);
  }
  uint8_t *shrunk = realloc(z, zlen ? zlen : 1);
  img->zdata = shrunk ? shrunk : z;
  img->zlen = zlen;
  return EG_OK;
}
