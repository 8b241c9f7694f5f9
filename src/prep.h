/* prep.h - images prepared for writing, shared by every port of a run.
 *
 * An eg_imageset holds the loaded images of a job (owned by the caller: the
 * manifest or the CLI) and lazily builds, once each, the variants ports need:
 *   - header-patched for the flash size a unit reports (only when the flash
 *     size argument is "detect" and the image is a bootloader at the chip's
 *     bootloader offset; every other image has a single variant),
 *   - 4 KiB-aligned with a 0xFF prefix for ROM-only writes at unaligned offsets,
 *   - zlib-compressed (level 9) when compression is on and it helps, as
 *     esptool does ("only use compression if it reduces the size"),
 *   - the uncompressed byte count of each compressed block, so every
 *     FLASH_DEFL_DATA gets esptool's size-scaled timeout.
 * Variants are immutable once built; a port keeps only its cursor. All of it
 * runs on the loop thread (not thread-safe).
 */
#ifndef EG_PREP_H
#define EG_PREP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chips.h"
#include "errors.h"
#include "image.h"

typedef struct eg_wimage {
  eg_image img;          /* what the chip will hold: img.offset, img.data/len, img.md5 */
  bool compressed;       /* write with FLASH_DEFL_* (img.zdata) */
  size_t source_index;   /* which image of the set */
  /* Bytes the chip writes for each block, for the ROM's and the stub's block
   * size (esptool's per-block decompress); computed when the variant is built. */
  uint32_t rom_block, stub_block;
  uint32_t *rom_out, *stub_out;
  uint32_t rom_nblocks, stub_nblocks;
} eg_wimage;

typedef struct eg_imageset eg_imageset;

/* `images[i]` must outlive the set. mode/freq/size: "keep", a value, or (size)
 * "detect". Returns NULL on allocation failure. */
eg_imageset *eg_imageset_new(const eg_chip *chip, const eg_image *const *images, size_t count,
                             const char *mode, const char *freq, const char *size, bool compress);
void eg_imageset_free(eg_imageset *s);
size_t eg_imageset_count(const eg_imageset *s);
const eg_image *eg_imageset_source(const eg_imageset *s, size_t index);
/* True when the variant of some image depends on the unit's flash size. */
bool eg_imageset_size_dependent(const eg_imageset *s);

/* The variant of image `index` for a unit whose detected flash size is
 * flash_size (0 = unknown) in ROM-only (`rom`) or stub mode. Built on first
 * use. NULL with f set on failure (bad header value, out of memory). */
const eg_wimage *eg_imageset_get(eg_imageset *s, size_t index, uint32_t flash_size, bool rom, eg_fault *f);
/* Build every variant that does not depend on the unit, so a run pays for
 * compression before any port starts. */
eg_err eg_imageset_warm(eg_imageset *s, bool rom, eg_fault *f);

/* Bytes the chip writes for block i when sending `block`-byte blocks
 * (block must be the chip's ROM or stub block size). */
uint32_t eg_wimage_block_out(const eg_wimage *w, uint32_t block, uint32_t i);
/* Bytes sent for the image body: zlen or len. */
static inline size_t eg_wimage_wire_len(const eg_wimage *w) { return w->compressed ? w->img.zlen : w->img.len; }
static inline const uint8_t *eg_wimage_wire(const eg_wimage *w) { return w->compressed ? w->img.zdata : w->img.data; }

#endif
