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

#include <stddef.h>
#include <stdint.h>

#define EG_ERR_MAP(XX)                                                              \
  XX(OK,                "success")                                                  \
  XX(NOMEM,             "out of memory")                                            \
  XX(INVAL,             "invalid argument")                                         \
  XX(IO,                "input/output error")                                       \
  XX(TIMEOUT,           "timed out waiting for the device")                        \
  XX(ABORTED,           "stopped by the operator")                                  \
  /* framing and packets */                                                         \
  XX(SLIP_ESCAPE,       "invalid SLIP escape sequence")                             \
  XX(SLIP_OVERSIZE,     "SLIP frame longer than the limit")                         \
  XX(PROTO_SHORT,       "response shorter than its header or expected data")        \
  XX(PROTO_DIRECTION,   "response with a direction byte other than 0x01")           \
  XX(PROTO_SIZE,        "response size field does not match its length")           \
  XX(PROTO_GARBAGE,     "the device answered with unrecognisable data")            \
  XX(DEVICE_STATUS,     "the device reported a failed command")                    \
  XX(UNSUPPORTED,       "the loader does not implement this command")              \
  /* connection and chip */                                                         \
  XX(NO_SYNC,           "no answer to SYNC; is the chip in download mode?")        \
  XX(NOT_DOWNLOAD_MODE, "the chip booted normally, not into download mode")        \
  XX(WRONG_CHIP,        "the connected chip is not the expected one")             \
  XX(UNKNOWN_CHIP,      "the chip's magic value matches no known chip")            \
  XX(NO_FLASH,          "no SPI flash answered the JEDEC ID command")              \
  XX(MD5_MISMATCH,      "flash MD5 differs from the image's MD5")                  \
  XX(FLASH_TOO_SMALL,   "the image does not fit in the chip's flash")              \
  XX(STUB_NO_OHAI,      "the flasher stub did not announce itself")               \
  /* ports */                                                                       \
  XX(PORT_OPEN,         "cannot open the port")                                     \
  XX(PORT_CONFIG,       "cannot configure the port")                                \
  XX(PORT_GONE,         "the port disappeared")                                     \
  XX(RESET_UNSUPPORTED, "this port cannot drive DTR/RTS for a reset")             \
  /* inputs */                                                                      \
  XX(FILE_OPEN,         "cannot open file")                                         \
  XX(FILE_READ,         "cannot read file")                                         \
  XX(FILE_WRITE,        "cannot write file")                                        \
  XX(IMAGE_EMPTY,       "image file is empty")                                      \
  XX(IMAGE_TOO_LARGE,   "image file is too large")                                  \
  XX(IMAGE_HEADER,      "image header cannot be patched")                          \
  XX(IMAGE_SHA256_PIN,  "image SHA-256 differs from the pinned value")             \
  XX(COMPRESS,          "zlib compression failed")                                  \
  XX(STUB_NOT_FOUND,    "no flasher stub file found")                               \
  XX(STUB_FORMAT,       "flasher stub file is malformed")                           \
  XX(MANIFEST,          "invalid manifest")                                         \
  XX(USAGE,             "invalid command line")                                     \
  XX(DB,                "database error")

typedef enum eg_err {
#define EG_ERR_ENUM(name, msg) EG_##name,
  EG_ERR_MAP(EG_ERR_ENUM)
#undef EG_ERR_ENUM
  EG_ERR__COUNT
} eg_err;

/* "TIMEOUT" etc.; never NULL ("UNKNOWN" for out-of-range values). */
const char *eg_err_name(eg_err e);
/* Human text; never NULL. */
const char *eg_strerror(eg_err e);

/* Where in a unit's life a failure happened. Stored by name in the log. */
#define EG_STAGE_MAP(XX)   \
  XX(NONE, "none")         \
  XX(OPEN, "open")         \
  XX(RESET, "reset")       \
  XX(SYNC, "sync")         \
  XX(DETECT, "detect")     \
  XX(STUB, "stub")         \
  XX(BAUD, "baud")         \
  XX(ATTACH, "attach")     \
  XX(ERASE, "erase")       \
  XX(WRITE, "write")       \
  XX(VERIFY, "verify")     \
  XX(READ, "read")         \
  XX(AFTER, "after")

typedef enum eg_stage {
#define EG_STAGE_ENUM(name, str) EG_STAGE_##name,
  EG_STAGE_MAP(EG_STAGE_ENUM)
#undef EG_STAGE_ENUM
  EG_STAGE__COUNT
} eg_stage;

const char *eg_stage_name(eg_stage s);

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
