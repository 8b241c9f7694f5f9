#include "prep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "proto.h"

/* One built variant, keyed by what it depends on. */
typedef struct variant {
  struct variant *next;
  size_t index;
  uint32_t size_key; /* detected flash size it was patched for (0 = not size-dependent) */
  bool rom;          /* ROM-aligned copy */
  eg_wimage w;
} variant;

struct eg_imageset {
  const eg_chip *chip;
  const eg_image *const *images;
  size_t count;
  char mode[16], freq[16], size[16];
  bool compress;
  variant *variants;
};

eg_imageset *eg_imageset_new(const eg_chip *chip, const eg_image *const *images, size_t count,
                             const char *mode, const char *freq, const char *size, bool compress) {
  eg_imageset *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->chip = chip;
  s->images = images;
  s->count = count;
  snprintf(s->mode, sizeof s->mode, "%s", mode ? mode : "keep");
  snprintf(s->freq, sizeof s->freq, "%s", freq ? freq : "keep");
  snprintf(s->size, sizeof s->size, "%s", size ? size : "keep");
  s->compress = compress;
  return s;
}

static void wimage_free(eg_wimage *w) {
  eg_image_free(&w->img);
  free(w->rom_out);
  free(w->stub_out);
}

void eg_imageset_free(eg_imageset *s) {
  if (!s) return;
  for (variant *v = s->variants, *n; v; v = n) {
    n = v->next;
    wimage_free(&v->w);
    free(v);
  }
  free(s);
}

size_t eg_imageset_count(const eg_imageset *s) { return s->count; }
const eg_image *eg_imageset_source(const eg_imageset *s, size_t index) {
  return index < s->count ? s->images[index] : NULL;
}

/* Would eg_image_patch_header change this image? Only a bootloader image
 * (0xE9 at the chip's bootloader offset) with not all three args "keep". */
static bool patchable(const eg_imageset *s, const eg_image *img) {
  return img->offset == s->chip->bootloader_offset && img->len >= 8 && img->data[0] == 0xE9 &&
         !(strcasecmp(s->mode, "keep") == 0 && strcasecmp(s->freq, "keep") == 0 &&
           strcasecmp(s->size, "keep") == 0);
}

static bool depends_on_size(const eg_imageset *s, const eg_image *img) {
  return patchable(s, img) && strcasecmp(s->size, "detect") == 0;
}

bool eg_imageset_size_dependent(const eg_imageset *s) {
  for (size_t i = 0; i < s->count; i++)
    if (depends_on_size(s, s->images[i])) return true;
  return false;
}

/* Per-block output sizes: inflate the compressed stream feeding `block`
 * bytes at a time and count what each block yields. */
static eg_err block_outputs(const eg_wimage *w, uint32_t block, uint32_t **out, uint32_t *nblocks, eg_fault *f) {
  const size_t wire = eg_wimage_wire_len(w);
  const uint32_t n = eg_blocks(wire, block);
  uint32_t *sizes = calloc(n ? n : 1, sizeof *sizes);
  if (!sizes) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory preparing %s", w->img.path ? w->img.path : "image");
  if (!w->compressed) {
    for (uint32_t i = 0; i < n; i++) sizes[i] = (uint32_t)eg_block_len(wire, block, i);
  } else {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) {
      free(sizes);
      return eg_fault_set(f, EG_COMPRESS, EG_STAGE_NONE, -1, "inflateInit failed");
    }
    uint8_t sink[16384];
    for (uint32_t i = 0; i < n; i++) {
      z.next_in = (Bytef *)(w->img.zdata + (size_t)i * block);
      z.avail_in = (uInt)eg_block_len(wire, block, i);
      uint64_t produced = 0;
      int rc = Z_OK;
      do {
        z.next_out = sink;
        z.avail_out = sizeof sink;
        rc = inflate(&z, Z_NO_FLUSH);
        produced += sizeof sink - z.avail_out;
      } while ((rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0)));
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        inflateEnd(&z);
        free(sizes);
        return eg_fault_set(f, EG_COMPRESS, EG_STAGE_NONE, -1, "compressed image does not inflate (zlib %d)", rc);
      }
      sizes[i] = (uint32_t)produced;
    }
    inflateEnd(&z);
  }
  *out = sizes;
  *nblocks = n;
  return EG_OK;
}

static eg_err build(eg_imageset *s, size_t index, uint32_t size_key, bool rom, eg_wimage *w, eg_fault *f) {
  const eg_image *src = s->images[index];
  eg_err e;
  memset(w, 0, sizeof *w);
  w->source_index = index;
  if (rom && (src->offset & (EG_SECTOR_SIZE - 1)))
    e = eg_image_rom_aligned(src, &w->img, f);
  else
    e = eg_image_from_mem(&w->img, src->data, src->len, src->offset, f);
  if (e != EG_OK) return e;
  /* Keep the file's identity for the log. */
  memcpy(w->img.file_sha256, src->file_sha256, sizeof w->img.file_sha256);
  w->img.file_len = src->file_len;
  if (src->path && !w->img.path && !(w->img.path = strdup(src->path))) { /* eg_image_rom_aligned keeps it */
    wimage_free(w);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  if (patchable(s, src)) {
    e = eg_image_patch_header(&w->img, s->chip, s->mode, s->freq, s->size, size_key, f);
    if (e != EG_OK) {
      wimage_free(w);
      return e;
    }
  }
  if (s->compress) {
    e = eg_image_compress(&w->img, f);
    if (e != EG_OK) {
      wimage_free(w);
      return e;
    }
    w->compressed = w->img.zlen < w->img.len;
  }
  w->rom_block = s->chip->rom_write_block;
  w->stub_block = s->chip->stub_write_block;
  if ((e = block_outputs(w, w->rom_block, &w->rom_out, &w->rom_nblocks, f)) != EG_OK ||
      (e = block_outputs(w, w->stub_block, &w->stub_out, &w->stub_nblocks, f)) != EG_OK) {
    wimage_free(w);
    return e;
  }
  return EG_OK;
}

const eg_wimage *eg_imageset_get(eg_imageset *s, size_t index, uint32_t flash_size, bool rom, eg_fault *f) {
  if (index >= s->count) {
    eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no image %zu", index);
    return NULL;
  }
  const eg_image *src = s->images[index];
  const uint32_t size_key = depends_on_size(s, src) ? flash_size : 0;
  const bool rom_key = rom && (src->offset & (EG_SECTOR_SIZE - 1)) != 0;
  for (variant *v = s->variants; v; v = v->next)
    if (v->index == index && v->size_key == size_key && v->rom == rom_key) return &v->w;
  variant *v = calloc(1, sizeof *v);
  if (!v) {
    eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    return NULL;
  }
  if (build(s, index, size_key, rom_key, &v->w, f) != EG_OK) {
    free(v);
    return NULL;
  }
  v->index = index;
  v->size_key = size_key;
  v->rom = rom_key;
  v->next = s->variants;
  s->variants = v;
  return &v->w;
}

eg_err eg_imageset_warm(eg_imageset *s, bool rom, eg_fault *f) {
  for (size_t i = 0; i < s->count; i++) {
    if (depends_on_size(s, s->images[i])) continue;
    if (!eg_imageset_get(s, i, 0, rom, f)) return f->code;
  }
  return EG_OK;
}

uint32_t eg_wimage_block_out(const eg_wimage *w, uint32_t block, uint32_t i) {
  if (block == w->rom_block && i < w->rom_nblocks) return w->rom_out[i];
  if (block == w->stub_block && i < w->stub_nblocks) return w->stub_out[i];
  return block;
}
