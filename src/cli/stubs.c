/* stubs.c - which flasher stub each chip gets (see cli.h).
 *
 * A stub path the user gave (--stub, stub: in a manifest) must give a stub:
 * a path that does not exist, is neither a regular file nor a folder, or a
 * folder with no stub for any chip is an error (exit 2), never a silent fall
 * back to the ROM loader. Only the automatic search may find nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* The older build of chip i's stub (P4 below v3.0) where the chip has one
 * and the same search finds it; a stub that does not load is an error. */
static bool load_old(const eg_chip *c, const char *path, eg_stub *slot, const eg_stub **out) {
  char file[4096];
  eg_fault f;
  eg_fault_clear(&f);
  if (!c->stub_old || eg_stub_find_build(c, true, path, file, sizeof file, &f) != EG_OK) return true;
  if (eg_stub_load(slot, file, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    return false;
  }
  *out = slot;
  return true;
}

bool eg_cli_load_stubs(eg_stub_mode mode, const char *path, const eg_chip *chip, eg_stub *storage,
                       const eg_stub *stubs[EG_CHIP__COUNT], const eg_stub *old[EG_CHIP__COUNT], bool quiet_missing,
                       char *note, size_t note_len) {
  (void)quiet_missing;
  memset(storage, 0, sizeof(eg_stub) * EG_CLI_STUB_STORAGE);
  for (int i = 0; i < EG_CHIP__COUNT; i++) stubs[i] = old[i] = NULL;
  if (note_len) note[0] = '\0';
  if (mode == EG_STUB_NONE) return true;
  struct stat st;
  if (mode == EG_STUB_PATH) {
    if (stat(path, &st) != 0) {
      eg_cli_error("stub path %s: %s", path, strerror(errno));
      return false;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      eg_cli_error("stub path %s is neither a regular file nor a folder", path);
      return false;
    }
    if (!chip && S_ISREG(st.st_mode)) {
      eg_cli_error("--stub %s is one chip's stub file: give --chip too (or a folder of stub files)", path);
      return false;
    }
  }
  bool any = false;
  for (int i = 0; i < EG_CHIP__COUNT; i++) {
    const eg_chip *c = eg_chip_get((eg_chip_id)i);
    if (chip && c != chip) continue;
    char file[4096];
    eg_fault f;
    eg_fault_clear(&f);
    if (eg_stub_find(c, mode == EG_STUB_PATH ? path : NULL, file, sizeof file, &f) != EG_OK) {
      if (mode == EG_STUB_PATH && chip) {
        eg_cli_error("%s", f.msg);
        return false;
      }
      if (chip || i == EG_CHIP_ESP32)
        snprintf(note, note_len, "no flasher stub for %s found (%s); using the ROM loader only", c->name, f.msg);
      continue;
    }
    if (eg_stub_load(&storage[i], file, &f) != EG_OK) {
      eg_cli_error("%s", f.msg);
      eg_cli_free_stubs(storage);
      return false;
    }
    stubs[i] = &storage[i];
    any = true;
    if (!load_old(c, mode == EG_STUB_PATH ? path : NULL, &storage[EG_CHIP__COUNT + i], &old[i])) {
      eg_cli_free_stubs(storage);
      return false;
    }
  }
  if (mode == EG_STUB_PATH && !any) { /* a folder without any chip's stub (chip NULL) */
    eg_cli_error("stub folder %s holds no flasher stub for any chip (looked for CHIP.json, 2/CHIP.json, 1/CHIP.json, "
                 "stub_flasher_N.json, e.g. esp32.json)", path);
    return false;
  }
  return true;
}

void eg_cli_free_stubs(eg_stub *storage) {
  for (int i = 0; i < EG_CLI_STUB_STORAGE; i++) eg_stub_free(&storage[i]);
}
