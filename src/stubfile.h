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

/* Load and validate one stub file: text, text_start and entry are required,
 * data needs data_start, integers (decimal, or 0x hex, quoted or not) must fit
 * 32 bits, base64 must decode (standard alphabet, '=' padded), text must not
 * be empty, unknown keys (plugin_*, plugins, ...) are skipped whatever their
 * value. *s is zeroed first; on error it holds nothing to free. Errors ->
 * EG_STUB_FORMAT with the file name and the problem (and line:column when
 * libyaml knows it); a file that cannot be opened or read -> EG_FILE_OPEN /
 * EG_FILE_READ (the message names it). */
eg_err eg_stub_load(eg_stub *s, const char *path, eg_fault *f);
/* Same, from a buffer; `name` is used in messages. */
eg_err eg_stub_load_mem(eg_stub *s, const char *buf, size_t len, const char *name, eg_fault *f);
void eg_stub_free(eg_stub *s);

/* Find the stub file for `chip` (file names from chip->arg_name, e.g. "esp32").
 *  user_path != NULL: a file (used as is, whatever its name) or a folder
 *    holding, first found wins: <chip>.json, 2/<chip>.json, 1/<chip>.json,
 *    stub_flasher_<n>.json (esptool 4: <n> is arg_name without "esp", "32").
 *    Nothing else is searched.
 *  user_path == NULL: search, in order, first found wins:
 *    1. $ESPGANG_STUB_DIR, with the folder layouts above;
 *    2. esptool-js: node_modules/esptool-js/lib/targets/stub_flasher/<chip>.json
 *       in the current directory and each parent up to /, then beside the
 *       executable (/proc/self/exe) and each parent, then in the global npm
 *       roots /usr/lib/node_modules, /usr/local/lib/node_modules and each
 *       $NODE_PATH entry (<entry>/esptool-js/...);
 *    3. esptool's Python package: <site>/esptool/targets/stub_flasher/
 *       2/<chip>.json, then 1/<chip>.json, then stub_flasher_<n>.json, for each
 *       <site> in Python's import precedence (python3.N: every N, newest
 *       first): $VIRTUAL_ENV/lib/python3.N/site-packages,
 *       ~/.local/lib/python3.N/site-packages, the pipx venv
 *       ~/.local/share/pipx/venvs/esptool/lib/python3.N/site-packages,
 *       /usr/local/lib/python3.N/dist-packages, /usr/local/lib/python3.N/
 *       site-packages, /usr/lib/python3/dist-packages.
 * Writes the chosen path to out. EG_STUB_NOT_FOUND: one line saying what was
 * looked for and where (truncated with "..." when long); EG_INVAL when the
 * path does not fit in outlen. */
eg_err eg_stub_find(const eg_chip *chip, const char *user_path, char *out, size_t outlen, eg_fault *f);
/* The same search for the chip's older stub build when old (chip->stub_old,
 * e.g. esp32p4-rev1.json for ESP32-P4 below v3.0: esptool targets/
 * esp32p4.py stub_json_name); old false is eg_stub_find. The older build
 * has no esptool 4 name, and a user path that is one file holds only the
 * chip's own stub. */
eg_err eg_stub_find_build(const eg_chip *chip, bool old, const char *user_path, char *out, size_t outlen, eg_fault *f);

/* The places eg_stub_find searches, made explicit so tests (and a future
 * "where would it look" command) can replace the machine's own folders.
 * Every pointer may be NULL (that step is skipped); lists end at the first
 * NULL. Strings are borrowed; eg_stub_env_default points them into storage. */
#define EG_STUB_MAX_ROOTS 16
typedef struct eg_stub_env {
  const char *stub_dir;                        /* $ESPGANG_STUB_DIR */
  const char *cwd;                             /* walk up from here for node_modules/ */
  const char *exe_dir;                         /* then up from the executable's folder */
  const char *npm_roots[EG_STUB_MAX_ROOTS];    /* global node_modules folders, in order */
  const char *site_globs[EG_STUB_MAX_ROOTS];   /* Python site folders, glob(3) patterns, in order */
  char storage[16384];
} eg_stub_env;

/* Fill env from this process: environment variables, getcwd(), /proc/self/exe
 * and the fixed system folders listed above. Entries that do not fit in
 * storage are left out. */
void eg_stub_env_default(eg_stub_env *env);
/* eg_stub_find with explicit places (user_path as in eg_stub_find). */
eg_err eg_stub_find_in(const eg_chip *chip, const char *user_path, const eg_stub_env *env, char *out, size_t outlen,
                       eg_fault *f);
eg_err eg_stub_find_build_in(const eg_chip *chip, bool old, const char *user_path, const eg_stub_env *env, char *out,
                             size_t outlen, eg_fault *f);

#endif
