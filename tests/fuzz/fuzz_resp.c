/* fuzz_resp.c - libFuzzer target for the response parser (src/proto.c).
 *
 * Every input is parsed as a response frame with both status lengths (2:
 * stub / ESP8266 ROM, 4: ESP32-family ROM) and a range of expect_data values,
 * from 0 to SIZE_MAX. Checked: a parse that succeeds describes bytes inside
 * the frame and inside its size field, its status bytes are the frame's,
 * ok/error agree with them; a failure is one of the documented errors;
 * eg_resp_describe always terminates within its buffer. The input is
 * copied to an exact-size heap buffer so ASan sees any read past the frame.
 * Any violation aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)        \
  do {                  \
    if (!(x)) abort();  \
  } while (0)

static void check_one(const uint8_t *f, size_t len, size_t sl, size_t expect) {
  eg_resp r;
  const eg_err e = eg_resp_parse(f, len, sl, expect, &r);
  if (e != EG_OK) {
    CHECK(e == EG_PROTO_SHORT || e == EG_PROTO_DIRECTION || e == EG_PROTO_SIZE);
    if (e == EG_PROTO_DIRECTION) CHECK(len >= EG_RESP_HDR && f[0] != 0x01);
    if (e == EG_PROTO_SIZE) CHECK(len >= EG_RESP_HDR && eg_get_u16(f + 2) > len - EG_RESP_HDR);
    return;
  }
  CHECK(len >= EG_RESP_HDR && f[0] == 0x01);
  CHECK(r.op == f[1]);
  CHECK(r.size == eg_get_u16(f + 2) && r.size <= len - EG_RESP_HDR);
  CHECK(r.value == eg_get_u32(f + 4));
  CHECK(r.data == f + EG_RESP_HDR);
  CHECK(r.nstatus >= 2 && r.nstatus <= sl);
  CHECK(r.data_len <= r.size && r.nstatus <= r.size - r.data_len);
  if (r.data_len == expect && r.nstatus == sl) {
    CHECK(memcmp(r.status, f + EG_RESP_HDR + expect, sl) == 0);
  } else {
    /* A failure status without the expected data (esptool check_command). */
    CHECK(r.data_len == 0 && !r.ok);
    CHECK(memcmp(r.status, f + EG_RESP_HDR, r.nstatus) == 0);
  }
  CHECK(r.ok == (r.status[0] == 0));
  if (r.ok) CHECK(r.error == 0);
  else CHECK(r.error == r.status[0] || r.error == r.status[1]);
  if (eg_resp_is_rom_unsupported(&r)) CHECK(!r.ok && r.status[1] == 0x05);
  /* Describe into buffers of several sizes; all NUL-terminated in place. */
  char buf[160];
  const size_t lens[] = {1, 2, 7, 16, 40, sizeof buf};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    for (int stub = 0; stub < 2; stub++) {
      memset(buf, 0x7F, sizeof buf);
      CHECK(eg_resp_describe(&r, stub, buf, lens[i]) == buf);
      CHECK(memchr(buf, '\0', lens[i]) != NULL);
      for (size_t k = lens[i]; k < sizeof buf; k++) CHECK(buf[k] == 0x7F);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *f = malloc(size ? size : 1);
  CHECK(f);
  if (size) memcpy(f, data, size);
  const size_t expects[] = {0, 1, 2, 3, 4, 12, 16, 20, 32, 64, 0x4000, size, size ? size - 1 : 0,
                            size > 8 ? size - 8 : 0, size > 12 ? size - 12 : 0, (size_t)-1, (size_t)-2,
                            (size_t)-3, (size_t)-4, (size_t)-5, (size_t)1 << 40};
  for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++) {
    check_one(f, size, 2, expects[i]);
    check_one(f, size, 4, expects[i]);
  }
  /* No other status length is accepted. */
  eg_resp r;
  CHECK(eg_resp_parse(f, size, 0, 0, &r) == EG_INVAL);
  CHECK(eg_resp_parse(f, size, 3, 0, &r) == EG_INVAL);
  CHECK(eg_resp_parse(f, size, 5, 0, &r) == EG_INVAL);
  free(f);
  return 0;
}
