/* manifest.h - the production manifest (YAML): what to flash, how, and on
 * which ports. Format documented in README.md and schema/manifest.schema.json;
 * examples in config/.
 *
 * eg_manifest_load() parses with libyaml, validates everything that can be
 * checked before a port is touched (unknown keys, types, ranges, image files
 * exist and are readable, sha256 pins, overlapping images, images beyond a
 * fixed flash size) and reports *every* problem through the diagnostic
 * callback as file:line:column. Image paths resolve relative to the
 * manifest's folder. The loaded images are kept (eg_image, not compressed).
 * Diagnostics come sorted by position; a message starting "warning: " does
 * not make the load fail; line 0 means the file as a whole (cannot open it).
 * Each message is one line: control characters from the manifest are shown
 * escaped (text.h).
 *
 * Limits: the file must be a regular file (a FIFO or a device is refused
 * without blocking: fileio.h) of at most 1 MiB, nested at most 32 levels
 * deep, with at most 256 anchors, 64 images and 1024 port entries (each a
 * bound on work that grows with the square of the count). Station and slot
 * names must not contain control characters. An image that does not start
 * on a 4 KiB sector gets a warning naming the bytes before it that the
 * sector erase destroys.
 *
 * Ownership: the manifest owns every string and image; eg_manifest_free.
 */
#ifndef EG_MANIFEST_H
#define EG_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chips.h"
#include "errors.h"
#include "image.h"
#include "options.h"

typedef void (*eg_diag_cb)(void *ctx, const char *file, int line, int col, const char *msg);

typedef struct eg_mimage {
  uint32_t offset;
  char *file;          /* as written in the manifest */
  char *path;          /* resolved */
  bool has_sha256;
  uint8_t sha256[32];  /* pin */
  eg_image image;      /* loaded (not header-patched, not compressed) */
  const eg_chip *chip; /* images: {CHIP: [...]}: the chip it is for; NULL: every chip */
  int line, col;
} eg_mimage;

typedef enum eg_mport_kind {
  EG_MPORT_PATH, /* path: a device path or symlink */
  EG_MPORT_GLOB, /* glob: /dev/ttyUSB* - one slot per match, sorted */
  EG_MPORT_USB,  /* usb: {vid, pid, serial, location} - every matching port */
  EG_MPORT_URL   /* url: socket://host:port */
} eg_mport_kind;

typedef struct eg_mport {
  eg_mport_kind kind;
  char *slot;       /* label; NULL = derived from the port */
  char *target;     /* PATH: the path; GLOB: the pattern; URL: the URL; USB: NULL */
  int vid, pid;     /* USB; -1 = any */
  char *serial;     /* USB; NULL = any */
  char *location;   /* USB; NULL = any ("1-1.4") */
  eg_usb_mode usb;  /* transport: how the port reaches the chip (UART bridge, USB-Serial/JTAG,
                       USB-OTG); NONE = not given (a usb match takes it from VID:PID) */
  int line, col;
} eg_mport;

typedef struct eg_manifest {
  char *path;             /* as given */
  char *dir;              /* its folder */
  char *text;             /* the whole file, NUL-terminated */
  size_t text_len;
  uint8_t sha256[32];     /* of text */

  char *station;          /* required */
  char *db_path;          /* resolved; default "<dir>/espgang.db" */
  eg_settings set;        /* chip (required), flash, baud, reset, stub, erase, verify,
                             compress, retries, timeouts: eg_settings_default() plus
                             what the manifest says */
  char *stub_path;        /* owned; set.stub_path points here */
  bool images_per_chip;   /* images: {CHIP: [...]} (set.chip may be NULL: auto) */
  bool allow_plaintext_on_encrypted; /* security: {plaintext_on_encrypted: allow} */
  eg_mimage *images;      /* at least one, sorted by chip (NULL first), then offset */
  size_t nimages;
  eg_mport *ports;        /* at least one */
  size_t nports;
} eg_manifest;

/* Load and validate. Returns EG_OK, or EG_MANIFEST after reporting every
 * problem through cb (also EG_FILE_OPEN / EG_NOMEM for the file itself). */
eg_err eg_manifest_load(eg_manifest *m, const char *path, eg_diag_cb cb, void *ctx);
/* The same from memory: `path` names it in messages and its folder resolves
 * relative paths (as if the text had been read from path). For tests and
 * the fuzz target. */
eg_err eg_manifest_load_mem(eg_manifest *m, const char *path, const char *text, size_t len, eg_diag_cb cb, void *ctx);
void eg_manifest_free(eg_manifest *m);

/* One concrete port to flash. */
typedef struct eg_slot {
  char slot[64];         /* unique label */
  char port[256];        /* what eg_port_open takes */
  char usb_location[64]; /* "" when unknown */
  eg_usb_mode usb;       /* how it reaches the chip, when the manifest or the port's VID:PID says */
} eg_slot;

/* Expand the manifest's ports into concrete slots: globs (sorted), USB
 * matches (eg_port_list), paths and URLs. Errors (a path that does not exist,
 * a pattern or USB match that finds nothing, the same port twice, duplicate
 * labels) are reported through cb with the entry's line:column. On EG_OK
 * the caller frees *out with free(); on error *out is NULL.
 * Relative paths and globs resolve against the manifest's folder. */
eg_err eg_manifest_slots(const eg_manifest *m, eg_slot **out, size_t *count, eg_diag_cb cb, void *ctx);
/* The same for a station: a `path:` port that does not exist yet is a slot
 * still (its board, or its adapter, may be plugged in later); globs and USB
 * matches still need a match now. */
eg_err eg_manifest_station_slots(const eg_manifest *m, eg_slot **out, size_t *count, eg_diag_cb cb, void *ctx);

#endif
