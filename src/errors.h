/* errors.h - the one error model of espgang.
 *
 * Contract: every fallible function returns an eg_err; EG_OK (0) is success,
 * anything else is one of the codes below. The list is an X-macro so the enum,
 * eg_err_name() and eg_strerror() can never drift apart. Codes are stable
 * identifiers: their *names* are stored in the SQLite log, so never rename one.
 *
 * An eg_err says what kind of failure happened. Where the failure involved the
 * chip, the details (stage, command, the chip's status bytes, a message) travel
 * beside it in an eg_fault, field by field, all the way into the database.
 */
#ifndef EG_ERRORS_H
#define EG_ERRORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Columns: name, class (what the failure means for a retry and for the
 * exit status: eg_err_class below), human text. */
#define EG_ERR_MAP(XX)                                                                 \
  XX(OK,                OK,       "success")                                           \
  XX(NOMEM,             INTERNAL, "out of memory")                                     \
  XX(INVAL,             INTERNAL, "invalid argument")                                  \
  XX(IO,                UNIT,     "input/output error")                                \
  XX(TIMEOUT,           UNIT,     "timed out waiting for the device")                  \
  XX(ABORTED,           ABORT,    "stopped by the operator")                           \
  XX(SKIPPED,           SKIP,     "not flashed: the unit already holds what it needs") \
  /* framing and packets */                                                            \
  XX(SLIP_ESCAPE,       UNIT,     "invalid SLIP escape sequence")                      \
  XX(SLIP_OVERSIZE,     UNIT,     "SLIP frame longer than the limit")                  \
  XX(PROTO_SHORT,       UNIT,     "response shorter than its header or expected data") \
  XX(PROTO_DIRECTION,   UNIT,     "response with a direction byte other than 0x01")    \
  XX(PROTO_SIZE,        UNIT,     "response size field does not match its length")     \
  XX(PROTO_GARBAGE,     UNIT,     "the device answered with unrecognisable data")      \
  XX(DEVICE_STATUS,     UNIT,     "the device reported a failed command")              \
  XX(UNSUPPORTED,       FINAL,    "the loader does not implement this command")        \
  /* connection and chip */                                                            \
  XX(NO_SYNC,           UNIT,     "no answer to SYNC; is the chip in download mode?")  \
  XX(NOT_DOWNLOAD_MODE, UNIT,     "the chip booted normally, not into download mode")  \
  XX(WRONG_CHIP,        FINAL,    "the connected chip is not the expected one")        \
  XX(UNKNOWN_CHIP,      FINAL,    "the chip's magic value matches no known chip")      \
  XX(NO_FLASH,          UNIT,     "no SPI flash answered the JEDEC ID command")        \
  XX(MD5_MISMATCH,      UNIT,     "flash MD5 differs from the image's MD5")            \
  XX(FLASH_TOO_SMALL,   FINAL,    "the image does not fit in the chip's flash")        \
  XX(STUB_NO_OHAI,      UNIT,     "the flasher stub did not announce itself")          \
  XX(IMAGE_CHIP,        FINAL,    "the image is for another chip or revision")         \
  XX(SECURITY,          FINAL,    "refused: the chip's security state forbids it")     \
  /* ports */                                                                          \
  XX(PORT_OPEN,         UNIT,     "cannot open the port")                              \
  XX(PORT_CONFIG,       UNIT,     "cannot configure the port")                         \
  XX(PORT_GONE,         UNIT,     "the port disappeared")                              \
  XX(RESET_UNSUPPORTED, INPUT,    "this port cannot drive DTR/RTS for a reset")        \
  XX(PORT_BUSY,         INPUT,    "the port is in use by another process")             \
  /* inputs */                                                                         \
  XX(FILE_OPEN,         INPUT,    "cannot open file")                                  \
  XX(FILE_READ,         INPUT,    "cannot read file")                                  \
  XX(FILE_WRITE,        INPUT,    "cannot write file")                                 \
  XX(IMAGE_EMPTY,       INPUT,    "image file is empty")                               \
  XX(IMAGE_TOO_LARGE,   INPUT,    "image file is too large")                           \
  XX(IMAGE_HEADER,      INPUT,    "image header cannot be patched")                    \
  XX(IMAGE_SHA256_PIN,  INPUT,    "image SHA-256 differs from the pinned value")       \
  XX(COMPRESS,          INTERNAL, "zlib compression failed")                           \
  XX(STUB_NOT_FOUND,    INPUT,    "no flasher stub file found")                        \
  XX(STUB_FORMAT,       INPUT,    "flasher stub file is malformed")                    \
  XX(MANIFEST,          INPUT,    "invalid manifest")                                  \
  XX(USAGE,             INPUT,    "invalid command line")                              \
  XX(DB,                INTERNAL, "database error")

typedef enum eg_err {
#define EG_ERR_ENUM(name, cls, msg) EG_##name,
  EG_ERR_MAP(EG_ERR_ENUM)
#undef EG_ERR_ENUM
  EG_ERR__COUNT
} eg_err;

/* "TIMEOUT" etc.; never NULL ("UNKNOWN" for out-of-range values). */
const char *eg_err_name(eg_err e);
/* Human text; never NULL. */
const char *eg_strerror(eg_err e);

/* What a failure means, one class per code (the map's second column):
 *   OK        success
 *   UNIT      this unit failed; another attempt may pass (line noise, a
 *             board seated badly, a port that came back)      -> exit 1
 *   FINAL     this unit failed and another attempt cannot change it (the
 *             wrong chip, a flash too small, a refused image)  -> exit 1,
 *             never retried
 *   INPUT     bad input: arguments, manifest, image, stub file, a port that
 *             cannot do what was asked; known before a board is touched
 *             wherever possible                                -> exit 2
 *   INTERNAL  database or internal error                       -> exit 3
 *   ABORT     stopped by the operator                          -> exit 4
 *   SKIP      deliberately not flashed (a retry by MAC found the unit
 *             passed, a station saw it before)                 -> exit 0 */
typedef enum eg_err_class {
  EG_CLASS_OK,
  EG_CLASS_UNIT,
  EG_CLASS_FINAL,
  EG_CLASS_INPUT,
  EG_CLASS_INTERNAL,
  EG_CLASS_ABORT,
  EG_CLASS_SKIP
} eg_err_class;

eg_err_class eg_err_class_of(eg_err e);
/* May another attempt on the same unit change the outcome? (class UNIT) */
bool eg_err_retryable(eg_err e);

/* Where in a unit's life a failure happened. Columns: name, the name stored
 * in the log (never rename one), and the words the live display shows. */
#define EG_STAGE_MAP(XX)                     \
  XX(NONE,   "none",   "waiting")            \
  XX(OPEN,   "open",   "opening")            \
  XX(RESET,  "reset",  "resetting")          \
  XX(SYNC,   "sync",   "connecting")         \
  XX(DETECT, "detect", "detecting chip")     \
  XX(STUB,   "stub",   "uploading stub")     \
  XX(BAUD,   "baud",   "changing baud")      \
  XX(ATTACH, "attach", "attaching flash")    \
  XX(ERASE,  "erase",  "erasing")            \
  XX(WRITE,  "write",  "writing")            \
  XX(VERIFY, "verify", "verifying")          \
  XX(READ,   "read",   "reading")            \
  XX(AFTER,  "after",  "resetting (after)")

typedef enum eg_stage {
#define EG_STAGE_ENUM(name, str, label) EG_STAGE_##name,
  EG_STAGE_MAP(EG_STAGE_ENUM)
#undef EG_STAGE_ENUM
  EG_STAGE__COUNT
} eg_stage;

const char *eg_stage_name(eg_stage s);
/* What the live display shows for a unit in this stage ("writing"). */
const char *eg_stage_label(eg_stage s);

/* Everything known about one failure. Plain data, safe to copy. */
typedef struct eg_fault {
  eg_err code;
  eg_stage stage;
  int opcode;          /* command in flight, -1 if none */
  uint8_t status[4];   /* the chip's status bytes as received */
  uint8_t nstatus;     /* 0 if the chip said nothing */
  char msg[256];       /* one line, no trailing newline */
} eg_fault;

/* Reset to "no fault". */
void eg_fault_clear(eg_fault *f);
/* Set code, stage, opcode (-1 for none) and a printf-style message; clears
 * the status bytes. Returns code, so callers can `return eg_fault_set(...)`. */
eg_err eg_fault_set(eg_fault *f, eg_err code, eg_stage stage, int opcode,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Record the chip's status bytes (n <= 4). */
void eg_fault_status(eg_fault *f, const uint8_t *status, size_t n);
/* Status bytes as "01 05" (empty string if none). buf >= 12 bytes. */
const char *eg_fault_status_hex(const eg_fault *f, char *buf, size_t len);

#endif
