/* stubfile.h - Espressif's flasher stub, loaded from the JSON files esptool
 * and esptool-js ship (keys: text, text_start, entry, data, data_start,
 * bss_start; text/data base64). espgang never ships a stub of its own.
 * Facts: ../shared/docs/esp-serial-protocol.md §8.
 *
 * Files are read with libyaml (JSON is valid YAML for these files).
 */
#ifndef EG_STUBFILE_H
#define EG_STUBFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chips.h"
#include "errors.h"

typedef struct eg_stub {
  char path[4096];      /* file it came from */
  uint8_t *text;        /* decoded; owned */
  size_t text_len;
  uint32_t text_start;
  uint8_t *data;        /* decoded; owned; NULL when the file has no data */
  size_t data_len;
  uint32_t data_start;
  uint32_t entry;
  bool has_bss;
  uint32_t bss_start;
} eg_stub;

/* Load and validate one stub file: text and entry are required, integers
 * must fit 32 bits, base64 must decode. Errors -> EG_STUB_FORMAT with the
 * file name and the problem (and line/column when libyaml knows it). */
eg_err eg_stub_load(eg_stub *s, const char *path, eg_fault *f);
/* Same, from a buffer; `name` is used in messages. */
eg_err eg_stub_load_mem(eg_stub *s, const char *buf, size_t len, const char *name, eg_fault *f);
void eg_stub_free(eg_stub *s);

/* Find the stub file for `chip`.
 *  user_path != NULL: a file (used as is) or a folder holding <chip>.json,
 *    2/<chip>.json, 1/<chip>.json or stub_flasher_<n>.json (esptool 4).
 *  user_path == NULL: search, in order: $ESPGANG_STUB_DIR; esptool-js under
 *    node_modules/ in the current directory and its parents, beside the
 *    executable and its parents, and the global npm roots; esptool's Python
 *    package (stub_flasher/2, then 1, then esptool 4's naming) under the
 *    usual site-/dist-packages folders.
 * Writes the chosen path to out. EG_STUB_NOT_FOUND lists where it looked. */
eg_err eg_stub_find(const eg_chip *chip, const char *user_path, char *out, size_t outlen, eg_fault *f);

#endif
