/* proto.h - ESP serial bootloader packets: request builders and the response
 * parser. Pure functions over byte buffers; no I/O. Every multi-byte field is
 * packed and unpacked explicitly as little-endian (never a struct cast).
 * Facts and their sources: ../shared/docs/esp-serial-protocol.md §1-§2.
 *
 * Requests are built unescaped into a caller buffer; SLIP-encode them with
 * eg_slip_encode() before writing. A request is 8 header bytes + data.
 */
#ifndef EG_PROTO_H
#define EG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* Opcodes (§2). */
#define EG_OPCODE_MAP(XX)          \
  XX(FLASH_BEGIN, 0x02)            \
  XX(FLASH_DATA, 0x03)             \
  XX(FLASH_END, 0x04)              \
  XX(MEM_BEGIN, 0x05)              \
  XX(MEM_END, 0x06)                \
  XX(MEM_DATA, 0x07)               \
  XX(SYNC, 0x08)                   \
  XX(WRITE_REG, 0x09)              \
  XX(READ_REG, 0x0A)               \
  XX(SPI_SET_PARAMS, 0x0B)         \
  XX(SPI_ATTACH, 0x0D)             \
  XX(READ_FLASH_SLOW, 0x0E)        \
  XX(CHANGE_BAUDRATE, 0x0F)        \
  XX(FLASH_DEFL_BEGIN, 0x10)       \
  XX(FLASH_DEFL_DATA, 0x11)        \
  XX(FLASH_DEFL_END, 0x12)         \
  XX(SPI_FLASH_MD5, 0x13)          \
  XX(GET_SECURITY_INFO, 0x14)      \
  XX(ERASE_FLASH, 0xD0)            \
  XX(ERASE_REGION, 0xD1)           \
  XX(READ_FLASH, 0xD2)             \
  XX(RUN_USER_CODE, 0xD3)

enum {
#define EG_OP_ENUM(name, val) EG_OP_##name = val,
  EG_OPCODE_MAP(EG_OP_ENUM)
#undef EG_OP_ENUM
};

/* "FLASH_DEFL_DATA"; "0x??" style names are not produced: unknown -> "UNKNOWN". */
const char *eg_op_name(int op);

#define EG_REQ_HDR 8          /* direction, op, size u16, checksum u32 */
#define EG_DATA_SUBHDR 16     /* len, seq, 0, 0 before a *_DATA payload */
#define EG_RESP_HDR 8         /* direction, op, size u16, value u32 */
#define EG_SYNC_VALUE 0x20120707u /* the ROM's SYNC reply value (trace) */

/* Block sizes (§2.1). */
#define EG_ROM_WRITE_BLOCK 0x400u
#define EG_STUB_WRITE_BLOCK 0x4000u
#define EG_RAM_BLOCK 0x1800u
#define EG_SECTOR_SIZE 0x1000u
#define EG_READ_PACKET 0x1000u /* READ_FLASH packet size (stub) */
/* Largest request data a stub accepts (LS: 0x4000 + 16). */
#define EG_MAX_REQ_DATA (EG_STUB_WRITE_BLOCK + EG_DATA_SUBHDR)
/* Largest unescaped request / response we ever build or accept. */
#define EG_MAX_PACKET (EG_REQ_HDR + EG_MAX_REQ_DATA)

/* Status byte counts (§1.4). */
#define EG_STATUS_ROM_ESP32 4
#define EG_STATUS_ROM_ESP8266 2
#define EG_STATUS_STUB 2

/* ROM error codes (status byte 1 when byte 0 == 1). */
#define EG_ROM_ERR_MAP(XX)                           \
  XX(0x05, INVALID_MESSAGE, "invalid message / unknown command") \
  XX(0x06, FAILED_RESULT, "message ok, result wrong") \
  XX(0x07, CHECKSUM, "checksum error")               \
  XX(0x08, FLASH_WRITE, "flash write error")         \
  XX(0x09, FLASH_READ, "flash read error")           \
  XX(0x0A, FLASH_READ_LENGTH, "flash read length error") \
  XX(0x0B, DEFLATE, "deflate failed")                \
  XX(0x0C, DEFLATE_ADLER32, "deflate Adler32 error") \
  XX(0x0D, DEFLATE_PARAM, "deflate parameter error") \
  XX(0x0E, RAM_SIZE, "invalid RAM binary size")      \
  XX(0x0F, RAM_ADDRESS, "invalid RAM binary address") \
  XX(0x00, UNDEFINED, "undefined")                   \
  XX(0x01, INVALID_PARAM, "invalid input parameter") \
  XX(0x02, MALLOC, "malloc failed")                  \
  XX(0x03, SEND, "send failed")                      \
  XX(0x04, RECEIVE, "receive failed")                \
  XX(0x64, SEC_INVALID_PARAM, "invalid parameter")   \
  XX(0x65, SEC_INVALID_FORMAT, "invalid format")     \
  XX(0x66, SEC_TOO_LONG, "description too long")     \
  XX(0x67, SEC_BAD_ENCODING, "bad encoding description") \
  XX(0x69, SEC_NO_STORAGE, "insufficient storage")

enum {
#define EG_ROM_ERR_ENUM(code, name, text) EG_ROM_ERR_##name = code,
  EG_ROM_ERR_MAP(EG_ROM_ERR_ENUM)
#undef EG_ROM_ERR_ENUM
};

/* Stub error codes (status byte 0 when non-zero). */
#define EG_STUB_ERR_MAP(XX)                           \
  XX(0xC0, BAD_DATA_LEN, "bad data length")           \
  XX(0xC1, BAD_DATA_CHECKSUM, "bad data checksum")    \
  XX(0xC2, BAD_BLOCKSIZE, "bad block size")           \
  XX(0xC3, INVALID_COMMAND, "invalid command")        \
  XX(0xC4, FAILED_SPI_OP, "SPI operation failed")     \
  XX(0xC5, FAILED_SPI_UNLOCK, "SPI unlock failed")    \
  XX(0xC6, NOT_IN_FLASH_MODE, "not in flash mode")    \
  XX(0xC7, INFLATE_ERROR, "inflate error")            \
  XX(0xC8, NOT_ENOUGH_DATA, "not enough data")        \
  XX(0xC9, TOO_MUCH_DATA, "too much data")            \
  XX(0xCA, NAND_PROGRAM, "NAND program failed")       \
  XX(0xCB, NAND_ERASE, "NAND erase failed")           \
  XX(0xFF, CMD_NOT_IMPLEMENTED, "command not implemented")

enum {
#define EG_STUB_ERR_ENUM(code, name, text) EG_STUB_ERR_##name = code,
  EG_STUB_ERR_MAP(EG_STUB_ERR_ENUM)
#undef EG_STUB_ERR_ENUM
};

/* Name and text of a ROM / stub error code; "UNKNOWN" / "unknown error". */
const char *eg_rom_err_name(uint8_t code);
const char *eg_rom_err_text(uint8_t code);
const char *eg_stub_err_name(uint8_t code);
const char *eg_stub_err_text(uint8_t code);

/* Little-endian helpers. */
static inline void eg_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void eg_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t eg_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t eg_get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Checksum of a *_DATA payload: 0xEF XOR every byte (§1.2). */
uint8_t eg_checksum(const uint8_t *data, size_t n);

/* Generic request: header + `n` data bytes copied from `data` (may be NULL
 * when n == 0). `out` must hold EG_REQ_HDR + n. Returns the packet length. */
size_t eg_req(uint8_t *out, uint8_t op, const uint8_t *data, size_t n, uint32_t checksum);

/* Builders for every opcode. Each returns the packet length written to out.
 * `out` must hold EG_REQ_HDR + the data size (EG_MAX_PACKET always suffices,
 * plus padding for eg_req_data with pad_to). */
size_t eg_req_sync(uint8_t *out);
size_t eg_req_read_reg(uint8_t *out, uint32_t addr);
size_t eg_req_write_reg(uint8_t *out, uint32_t addr, uint32_t value, uint32_t mask, uint32_t delay_us);
/* FLASH_BEGIN / FLASH_DEFL_BEGIN / MEM_BEGIN. `with_encrypt_word` adds the
 * 5th word (never for the ESP32/ESP8266 ROM; always for stubs, as esptool). */
size_t eg_req_begin(uint8_t *out, uint8_t op, uint32_t size, uint32_t num_blocks, uint32_t block_size,
                    uint32_t offset, bool with_encrypt_word, uint32_t encrypted);
/* FLASH_DATA / FLASH_DEFL_DATA / MEM_DATA: len, seq, 0, 0, payload, with the
 * checksum over the payload. If pad_to > n the payload is padded with 0xFF up
 * to pad_to bytes (esptool pads FLASH_DATA blocks; never DEFL or MEM). */
size_t eg_req_data(uint8_t *out, uint8_t op, uint32_t seq, const uint8_t *payload, size_t n, size_t pad_to);
/* FLASH_END / FLASH_DEFL_END: flag 0 = reboot, 1 = run user code (ROM) / stay (stub). */
size_t eg_req_end(uint8_t *out, uint8_t op, uint32_t flag);
/* MEM_END: no_exec = (entry == 0). */
size_t eg_req_mem_end(uint8_t *out, uint32_t entry);
/* SPI_ATTACH: the ROM takes 8 bytes (hspi_arg + 4 zero bytes), stubs exactly 4. */
size_t eg_req_spi_attach(uint8_t *out, uint32_t hspi_arg, bool rom);
/* SPI_SET_PARAMS with esptool's fixed geometry (§5.4). */
size_t eg_req_spi_set_params(uint8_t *out, uint32_t total_size);
size_t eg_req_change_baud(uint8_t *out, uint32_t new_baud, uint32_t old_baud);
size_t eg_req_flash_md5(uint8_t *out, uint32_t addr, uint32_t size);
size_t eg_req_read_flash_slow(uint8_t *out, uint32_t addr, uint32_t len);
size_t eg_req_erase_region(uint8_t *out, uint32_t addr, uint32_t size);
size_t eg_req_read_flash(uint8_t *out, uint32_t addr, uint32_t len, uint32_t packet_size, uint32_t max_in_flight);
/* Commands without data: GET_SECURITY_INFO, ERASE_FLASH, RUN_USER_CODE. */
size_t eg_req_simple(uint8_t *out, uint8_t op);
/* The 4-byte acknowledgement the host sends during READ_FLASH. Not a
 * command packet: just the u32 byte count, to be SLIP-framed. */
size_t eg_read_ack(uint8_t *out, uint32_t received);

/* A parsed response frame. `data` points into the frame passed to the parser. */
typedef struct eg_resp {
  uint8_t op;
  uint16_t size;       /* the size field */
  uint32_t value;      /* READ_REG result; SYNC: 0x20120707 from the ROM, 0 from a stub */
  const uint8_t *data; /* command-specific data before the status bytes */
  size_t data_len;
  uint8_t status[4];   /* status bytes as received */
  uint8_t nstatus;
  bool ok;             /* status byte 0 == 0 */
  uint8_t error;       /* ROM: status[1]; stub: status[0]; 0 if ok */
} eg_resp;

/* Parse a response frame. `status_len` is 4 (ESP32-family ROM) or 2 (stub,
 * ESP8266 ROM). `expect_data` is the command data length expected before the
 * status bytes (0 for most commands; 32 for ROM MD5, 16 for stub MD5, 20/12
 * for GET_SECURITY_INFO); like esptool v5 the status is read right after the
 * expected data, so trailing reserved bytes are ignored.
 *   EG_PROTO_SHORT     frame shorter than header + expect_data + status_len
 *   EG_PROTO_DIRECTION first byte is not 0x01
 *   EG_PROTO_SIZE      size field larger than the bytes present
 * A well-formed reply with a failure status still returns EG_OK: check r->ok.
 * A failed command may send its status without the expected data (the ROM's
 * "unknown command", a stub's 0xFF): when the reply is too short for
 * expect_data but its first byte is non-zero, it is parsed as such a failure
 * (as esptool's check_command does): status = its first bytes (up to
 * status_len), data_len = 0, EG_OK. */
eg_err eg_resp_parse(const uint8_t *frame, size_t len, size_t status_len, size_t expect_data, eg_resp *r);

/* True when `r` is the ROM's "unknown command" answer (§1.3: data[0] != 0 and
 * data[1] == 0x05, whatever the echoed opcode). */
bool eg_resp_is_rom_unsupported(const eg_resp *r);

/* Describe a status for humans: "ROM error 0x05 INVALID_MESSAGE (invalid
 * message / unknown command)", "stub error 0xC1 BAD_DATA_CHECKSUM (bad data
 * checksum)", or "ok". Truncated to fit len; returns buf. */
const char *eg_resp_describe(const eg_resp *r, bool stub, char *buf, size_t len);

#endif
