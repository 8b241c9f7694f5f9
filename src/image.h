/* image.h - a firmware image as the chip will hold it.
 *
 * Load a .bin once, patch the bootloader header (flash mode/freq/size) exactly
 * as esptool does, pad it, compress it once with zlib level 9, and share the
 * result read-only with every port: a port keeps only its own block cursor.
 * Facts: ../shared/docs/esp-serial-protocol.md §6.
 *
 * Ownership: eg_image owns its buffers; eg_image_free releases them. After
 * eg_image_compress() an image is immutable and may be shared.
 */
#ifndef EG_IMAGE_H
#define EG_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chips.h"
#include "errors.h"

#define EG_IMAGE_MAX_SIZE (256u << 20) /* refuse files over 256 MiB */

typedef struct eg_image {
  char *path;              /* file it came from (NULL for in-memory images) */
  uint32_t offset;         /* flash address where data[0] goes */
  uint8_t *data;           /* file bytes, header-patched, padded to 4 with 0xFF */
  size_t len;
  size_t file_len;         /* bytes in the file */
  uint8_t file_sha256[32]; /* SHA-256 of the file as read (for the log and pins) */
  uint8_t md5[16];         /* MD5 of data: what SPI_FLASH_MD5 must return */
  uint8_t *zdata;          /* zlib (level 9) of data; NULL before eg_image_compress */
  size_t zlen;
  bool header_patched;     /* bytes 2/3 (and maybe the SHA-256) were changed */
  char note[192];          /* what esptool would have warned about while patching
                            * (e.g. "not a valid ESP32 image, so not changing any
                            * flash settings"); "" when there was nothing to say */
} eg_image;

/* Load `path` for flash address `offset`: read, pad to a multiple of 4 with
 * 0xFF, compute file SHA-256 and MD5. Errors name the file in f->msg. */
eg_err eg_image_load(eg_image *img, const char *path, uint32_t offset, eg_fault *f);
/* Same, from memory (copied). */
eg_err eg_image_from_mem(eg_image *img, const uint8_t *buf, size_t len, uint32_t offset, eg_fault *f);
/* Releases the buffers and zeroes *img; NULL and zeroed images are fine. */
void eg_image_free(eg_image *img);

/* Patch the header at the chip's bootloader offset, as esptool's
 * _update_image_flash_params: each of mode/freq/size is "keep" (or NULL), a
 * value ("dio", "80m", "4MB") or, for size, "detect" (use detected_size
 * bytes, or 4MB when detected_size is 0). Does nothing (EG_OK, header_patched
 * false) unless offset == bootloader offset, len >= 8, not all three are
 * "keep", byte 0 == 0xE9 and the image parses as a bootloader image (header,
 * segments, checksum byte; as esptool, which otherwise only warns: see
 * img->note). If byte 23 == 1 (not ESP8266) the appended SHA-256 is
 * recomputed. header_patched is true when a byte changed. Updates md5. Must
 * be called before eg_image_compress (else EG_INVAL). Names unknown for this
 * chip are refused on every call, patched or not; a detected size the chip's
 * header cannot express only when patching: EG_IMAGE_HEADER naming it. */
eg_err eg_image_patch_header(eg_image *img, const eg_chip *chip, const char *mode, const char *freq,
                             const char *size, uint32_t detected_size, eg_fault *f);

/* A copy for ROM-only writes at an address that is not 4 KiB aligned:
 * offset aligned down, 0xFF bytes prepended (esptool does this for the ROM).
 * For aligned images the copy is identical. */
eg_err eg_image_rom_aligned(const eg_image *src, eg_image *dst, eg_fault *f);

/* The warning esptool prints for an image that does not start on a 4 KiB
 * flash sector (cmds.py write_flash: "Flash address ... is not aligned to a
 * 0x1000 byte flash sector. N bytes before this address will be erased"):
 * the chip erases whole sectors, so the bytes of that sector before the
 * image are lost (with the ROM loader too, which is sent 0xFF for them).
 * Writes one line without a newline into out, naming the image (`name`, as
 * the user gave it) and the byte range, and returns true; returns false
 * (out "") for an aligned offset. Shared by the manifest loader and the
 * command line's write-flash. */
bool eg_image_erase_warning(const char *name, uint32_t offset, char *out, size_t cap);

/* zlib.compress(data, 9). Idempotent. */
eg_err eg_image_compress(eg_image *img, eg_fault *f);

/* Split helpers: number of blocks of `block` bytes covering n bytes, and the
 * bounds of block i (the last one shorter). */
static inline uint32_t eg_blocks(size_t n, size_t block) { return (uint32_t)((n + block - 1) / block); }
static inline size_t eg_block_len(size_t n, size_t block, uint32_t i) {
  const size_t start = (size_t)i * block;
  return start >= n ? 0 : (n - start < block ? n - start : block);
}

/* Hex helpers (lower case). out must hold 2*n+1. */
char *eg_hex(char *out, const uint8_t *bytes, size_t n);
/* Parse 2*n hex characters into bytes; false if malformed. */
bool eg_unhex(uint8_t *out, size_t n, const char *hex);
/* MD5 / SHA-256 of a buffer (libcrypto). */
void eg_md5(const uint8_t *buf, size_t n, uint8_t out[16]);
void eg_sha256(const uint8_t *buf, size_t n, uint8_t out[32]);

#endif
