/* fuzz_manifest.c - libFuzzer target: eg_manifest_load_mem on arbitrary
 * bytes, as if read from <scratch>/fuzz.yaml. The scratch folder holds the
 * images the seed manifests name (images/bootloader.bin, partitions.bin,
 * app.bin), so inputs get past the file checks into the cross-image ones.
 *
 * Besides the sanitizers it checks the loader's contract:
 *   - every diagnostic is one non-empty line without control characters,
 *     at a position inside the text (line 0 only for the file as a whole),
 *     delivered in file order;
 *   - on EG_OK: station, chip and database are set, at least one image and
 *     one port, images sorted by offset, each loaded and 4-byte aligned,
 *     station and slot names free of control characters, no error reported;
 *   - on failure: at least one error was reported and *m is zeroed.
 * Build: CC=clang cmake -DEG_FUZZ=ON ...; make fuzz_manifest
 * Run:   ./tests/fuzz/fuzz_manifest -dict=../tests/fuzz/fuzz_manifest.dict \
 *          corpus-dir ../tests/fuzz/corpus/manifest */
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch folder, made once per process (libFuzzer's entry points take
 * no context); removed at exit. */
static char scratch[64];
static char manifest_path[96];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static void cleanup(void) {
  if (scratch[0]) nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void image(const char *name, size_t n, uint8_t first) {
  char p[160];
  snprintf(p, sizeof p, "%s/images/%s", scratch, name);
  FILE *f = fopen(p, "wb");
  if (!f) __builtin_trap();
  for (size_t i = 0; i < n; i++) fputc(i ? (int)((i * 7 + 3) & 0xFF) : first, f);
  fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(scratch, sizeof scratch, "/tmp/eg-fuzz-manifest-XXXXXX");
  if (!mkdtemp(scratch)) __builtin_trap();
  atexit(cleanup);
  char p[96];
  snprintf(p, sizeof p, "%s/images", scratch);
  mkdir(p, 0700);
  image("bootloader.bin", 4096, 0xE9);
  image("partitions.bin", 3072, 0xAA);
  image("app.bin", 65536, 0xE9);
  snprintf(manifest_path, sizeof manifest_path, "%s/fuzz.yaml", scratch);
  return 0;
}

typedef struct seen {
  int n, errors, last_line, last_col;
  size_t text_lines;
} seen;

static void on_diag(void *ctx, const char *file, int line, int col, const char *msg) {
  seen *s = ctx;
  if (strcmp(file, manifest_path) != 0 || !msg || !*msg) __builtin_trap();
  if (eg_text_has_control(msg, strlen(msg), NULL)) __builtin_trap(); /* one line, nothing for the terminal */
  if (line < 0 || col < 0 || (line == 0) != (col == 0)) __builtin_trap();
  if ((size_t)line > s->text_lines + 1) __builtin_trap();
  if (line < s->last_line || (line == s->last_line && col < s->last_col)) __builtin_trap(); /* file order */
  s->last_line = line, s->last_col = col;
  s->n++;
  if (strncmp(msg, "warning: ", 9) != 0) s->errors++;
}

static bool all_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  seen s = {0};
  s.text_lines = 1;
  for (size_t i = 0; i < size; i++) s.text_lines += data[i] == '\n' || data[i] == '\r';
  eg_manifest m;
  const eg_err e = eg_manifest_load_mem(&m, manifest_path, (const char *)data, size, on_diag, &s);
  if (e == EG_OK) {
    if (s.errors) __builtin_trap();
    if (!m.station || !m.set.chip || !m.db_path || !m.nimages || !m.nports || !m.images || !m.ports) __builtin_trap();
    if (eg_text_has_control(m.station, strlen(m.station), NULL)) __builtin_trap();
    if (m.text_len != size || memcmp(m.text, data, size) != 0) __builtin_trap();
    for (size_t i = 0; i < m.nimages; i++) {
      const eg_mimage *im = &m.images[i];
      if (!im->image.data || !im->image.len || im->offset % 4) __builtin_trap();
      if (i && im->offset < m.images[i - 1].offset) __builtin_trap();
    }
    for (size_t i = 0; i < m.nports; i++) {
      const eg_mport *p = &m.ports[i];
      if (p->slot && (!*p->slot || eg_text_has_control(p->slot, strlen(p->slot), NULL))) __builtin_trap();
      if (p->kind != EG_MPORT_USB && !p->target) __builtin_trap();
    }
    eg_manifest_free(&m);
  } else {
    if (e != EG_MANIFEST && e != EG_NOMEM) __builtin_trap();
    if (e == EG_MANIFEST && !s.errors) __builtin_trap();
    if (!all_zero(&m, sizeof m)) __builtin_trap();
  }
  return 0;
}
