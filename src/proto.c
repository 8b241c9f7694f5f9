#include "proto.h"

#include <stdio.h>
#include <string.h>

const char *eg_op_name(int op) {
  switch (op) {
#define EG_OP_CASE(name, val) \
  case val:                   \
    return #name;
    EG_OPCODE_MAP(EG_OP_CASE)
#undef EG_OP_CASE
  }
  return "UNKNOWN";
}

const char *eg_rom_err_name(uint8_t code) {
  switch (code) {
#define EG_CASE(c, name, text) \
  case c:                      \
    return #name;
    EG_ROM_ERR_MAP(EG_CASE)
#undef EG_CASE
  }
  return "UNKNOWN";
}

const char *eg_rom_err_text(uint8_t code) {
  switch (code) {
#define EG_CASE(c, name, text) \
  case c:                      \
    return text;
    EG_ROM_ERR_MAP(EG_CASE)
#undef EG_CASE
  }
  return "unknown error";
}

const char *eg_stub_err_name(uint8_t code) {
  switch (code) {
#define EG_CASE(c, name, text) \
  case c:                      \
    return #name;
    EG_STUB_ERR_MAP(EG_CASE)
#undef EG_CASE
  }
  return "UNKNOWN";
}

const char *eg_stub_err_text(uint8_t code) {
  switch (code) {
#define EG_CASE(c, name, text) \
  case c:                      \
    return text;
    EG_STUB_ERR_MAP(EG_CASE)
#undef EG_CASE
  }
  return "unknown error";
}

uint8_t eg_checksum(const uint8_t *data, size_t n) {
  uint8_t c = 0xEF;
  for (size_t i = 0; i < n; i++) c ^= data[i];
  return c;
}

size_t eg_req(uint8_t *out, uint8_t op, const uint8_t *data, size_t n, uint32_t checksum) {
  out[0] = 0x00;
  out[1] = op;
  eg_put_u16(out + 2, (uint16_t)n);
  eg_put_u32(out + 4, checksum);
  if (n) memcpy(out + EG_REQ_HDR, data, n);
  return EG_REQ_HDR + n;
}

/* Build a request whose data is `count` u32 words. */
static size_t req_words(uint8_t *out, uint8_t op, const uint32_t *w, size_t count) {
  uint8_t data[6 * 4];
  for (size_t i = 0; i < count; i++) eg_put_u32(data + 4 * i, w[i]);
  return eg_req(out, op, data, 4 * count, 0);
}

size_t eg_req_sync(uint8_t *out) {
  uint8_t data[36] = {0x07, 0x07, 0x12, 0x20};
  memset(data + 4, 0x55, 32);
  return eg_req(out, EG_OP_SYNC, data, sizeof data, 0);
}

size_t eg_req_read_reg(uint8_t *out, uint32_t addr) {
  return req_words(out, EG_OP_READ_REG, &addr, 1);
}

size_t eg_req_write_reg(uint8_t *out, uint32_t addr, uint32_t value, uint32_t mask, uint32_t delay_us) {
  const uint32_t w[] = {addr, value, mask, delay_us};
  return req_words(out, EG_OP_WRITE_REG, w, 4);
}

size_t eg_req_begin(uint8_t *out, uint8_t op, uint32_t size, uint32_t num_blocks, uint32_t block_size,
                    uint32_t offset, bool with_encrypt_word, uint32_t encrypted) {
  const uint32_t w[] = {size, num_blocks, block_size, offset, encrypted};
  return req_words(out, op, w, with_encrypt_word ? 5 : 4);
}

size_t eg_req_data(uint8_t *out, uint8_t op, uint32_t seq, const uint8_t *payload, size_t n, size_t pad_to) {
  const size_t len = pad_to > n ? pad_to : n;
  uint8_t *d = out + EG_REQ_HDR;
  eg_put_u32(d, (uint32_t)len);
  eg_put_u32(d + 4, seq);
  eg_put_u32(d + 8, 0);
  eg_put_u32(d + 12, 0);
  if (n) memcpy(d + EG_DATA_SUBHDR, payload, n); /* payload may be NULL when n == 0 */
  if (len > n) memset(d + EG_DATA_SUBHDR + n, 0xFF, len - n);
  const uint8_t sum = eg_checksum(d + EG_DATA_SUBHDR, len);
  out[0] = 0x00;
  out[1] = op;
  eg_put_u16(out + 2, (uint16_t)(EG_DATA_SUBHDR + len));
  eg_put_u32(out + 4, sum); /* upper three bytes 0: LS compares all 32 bits */
  return EG_REQ_HDR + EG_DATA_SUBHDR + len;
}

size_t eg_req_end(uint8_t *out, uint8_t op, uint32_t flag) {
  return req_words(out, op, &flag, 1);
}

size_t eg_req_mem_end(uint8_t *out, uint32_t entry) {
  const uint32_t w[] = {entry == 0 ? 1u : 0u, entry};
  return req_words(out, EG_OP_MEM_END, w, 2);
}

size_t eg_req_spi_attach(uint8_t *out, uint32_t hspi_arg, bool rom) {
  const uint32_t w[] = {hspi_arg, 0};
  return req_words(out, EG_OP_SPI_ATTACH, w, rom ? 2 : 1);
}

size_t eg_req_spi_set_params(uint8_t *out, uint32_t total_size) {
  const uint32_t w[] = {0, total_size, 0x10000, EG_SECTOR_SIZE, 0x100, 0xFFFF};
  return req_words(out, EG_OP_SPI_SET_PARAMS, w, 6);
}

size_t eg_req_change_baud(uint8_t *out, uint32_t new_baud, uint32_t old_baud) {
  const uint32_t w[] = {new_baud, old_baud};
  return req_words(out, EG_OP_CHANGE_BAUDRATE, w, 2);
}

size_t eg_req_flash_md5(uint8_t *out, uint32_t addr, uint32_t size) {
  const uint32_t w[] = {addr, size, 0, 0};
  return req_words(out, EG_OP_SPI_FLASH_MD5, w, 4);
}

size_t eg_req_read_flash_slow(uint8_t *out, uint32_t addr, uint32_t len) {
  const uint32_t w[] = {addr, len};
  return req_words(out, EG_OP_READ_FLASH_SLOW, w, 2);
}

size_t eg_req_erase_region(uint8_t *out, uint32_t addr, uint32_t size) {
  const uint32_t w[] = {addr, size};
  return req_words(out, EG_OP_ERASE_REGION, w, 2);
}

size_t eg_req_read_flash(uint8_t *out, uint32_t addr, uint32_t len, uint32_t packet_size, uint32_t max_in_flight) {
  const uint32_t w[] = {addr, len, packet_size, max_in_flight};
  return req_words(out, EG_OP_READ_FLASH, w, 4);
}

size_t eg_req_simple(uint8_t *out, uint8_t op) { return eg_req(out, op, NULL, 0, 0); }

size_t eg_read_ack(uint8_t *out, uint32_t received) {
  eg_put_u32(out, received);
  return 4;
}

eg_err eg_resp_parse(const uint8_t *frame, size_t len, size_t status_len, size_t expect_data, eg_resp *r) {
  memset(r, 0, sizeof *r);
  /* Only the two loader layouts exist (§1.4); with 0 status bytes every
   * reply would read as success. */
  if (status_len != EG_STATUS_STUB && status_len != EG_STATUS_ROM_ESP32) return EG_INVAL;
  if (len < EG_RESP_HDR) return EG_PROTO_SHORT;
  if (frame[0] != 0x01) return EG_PROTO_DIRECTION;
  r->op = frame[1];
  r->size = eg_get_u16(frame + 2);
  r->value = eg_get_u32(frame + 4);
  if ((size_t)r->size > len - EG_RESP_HDR) return EG_PROTO_SIZE;
  r->data = frame + EG_RESP_HDR;
  size_t at = expect_data, n = status_len; /* where the status is, how long */
  /* Written so that a huge expect_data cannot wrap around. */
  if ((size_t)r->size < status_len || (size_t)r->size - status_len < expect_data) {
    /* Too short for the expected data. A failed command sends no data, only
     * its status: the ROM's 01 05 for an unknown command, a stub's FF 00 for
     * GET_SECURITY_INFO, a failed MD5. Like esptool's check_command, read
     * the first bytes as the status then, so what the chip said is kept; a
     * short reply that claims success is malformed. */
    n = r->size < status_len ? r->size : status_len;
    if (n < 2 || frame[EG_RESP_HDR] == 0) return EG_PROTO_SHORT;
    at = 0;
    expect_data = 0;
  }
  r->data_len = expect_data;
  memcpy(r->status, frame + EG_RESP_HDR + at, n);
  r->nstatus = (uint8_t)n;
  r->ok = r->status[0] == 0;
  if (!r->ok) r->error = status_len == EG_STATUS_STUB && r->status[0] != 1 ? r->status[0] : r->status[1];
  return EG_OK;
}

bool eg_resp_is_rom_unsupported(const eg_resp *r) {
  return r->nstatus >= 2 && r->status[0] != 0 && r->status[1] == EG_ROM_ERR_INVALID_MESSAGE;
}

const char *eg_resp_describe(const eg_resp *r, bool stub, char *buf, size_t len) {
  if (r->ok)
    snprintf(buf, len, "ok");
  else if (stub)
    snprintf(buf, len, "stub error 0x%02X %s (%s)", r->status[0], eg_stub_err_name(r->status[0]),
             eg_stub_err_text(r->status[0]));
  else
    snprintf(buf, len, "ROM error 0x%02X %s (%s)", r->status[1], eg_rom_err_name(r->status[1]),
             eg_rom_err_text(r->status[1]));
  return buf;
}
