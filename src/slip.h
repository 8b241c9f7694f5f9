/* slip.h - SLIP framing as the ESP serial protocol uses it (RFC 1055 bytes:
 * END 0xC0 at both ends of a frame, 0xDB 0xDC for 0xC0, 0xDB 0xDD for 0xDB).
 *
 * A pure streaming codec: no I/O, no allocation. The decoder owns nothing; the
 * caller gives it a buffer whose size bounds the longest frame accepted.
 *
 * Decoding rules (the robust choice of esp-serial-flasher, not esptool's
 * "Invalid head of packet"): bytes outside a frame are reported as NOISE (the
 * ROM's boot log arrives this way), repeated 0xC0 are skipped (empty frames
 * are never reported), an invalid escape or an over-long frame is reported as
 * an ERROR and the decoder discards input up to the next 0xC0, then resumes.
 * Bytes may arrive split anywhere: state is kept between eg_slip_dec_push()
 * calls.
 */
#ifndef EG_SLIP_H
#define EG_SLIP_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define EG_SLIP_END 0xC0
#define EG_SLIP_ESC 0xDB
#define EG_SLIP_ESC_END 0xDC
#define EG_SLIP_ESC_ESC 0xDD

typedef enum eg_slip_event {
  EG_SLIP_FRAME, /* data/len: one complete, unescaped frame (len >= 1) */
  EG_SLIP_NOISE, /* data/len: bytes seen outside any frame */
  EG_SLIP_ERROR  /* err: EG_SLIP_ESCAPE or EG_SLIP_OVERSIZE; data NULL */
} eg_slip_event;

/* Called synchronously from eg_slip_dec_push(). `data` is valid only during
 * the call. The callback may not call eg_slip_dec_push() on the same decoder,
 * but it may reset it (eg_slip_dec_reset) to drop the rest of the input. */
typedef void (*eg_slip_cb)(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len,
                           eg_err err);

typedef enum eg_slip_state {
  EG_SLIP_OUTSIDE, /* between frames */
  EG_SLIP_INSIDE,  /* collecting a frame */
  EG_SLIP_ESCAPED, /* inside, after 0xDB */
  EG_SLIP_DISCARD  /* after an error, until the next 0xC0 */
} eg_slip_state;

typedef struct eg_slip_dec {
  uint8_t *buf;       /* caller-owned, cap bytes */
  size_t cap;
  size_t len;         /* bytes of the frame collected so far */
  eg_slip_state state;
  unsigned generation; /* bumped by reset, so push() notices a reset from the callback */
  /* counters, for diagnostics */
  uint64_t frames, errors, noise_bytes;
} eg_slip_dec;

void eg_slip_dec_init(eg_slip_dec *d, uint8_t *buf, size_t cap);
/* Forget any partial frame; the next byte is read as outside a frame. */
void eg_slip_dec_reset(eg_slip_dec *d);
/* Feed n bytes; events are delivered through cb in stream order. If the
 * callback resets the decoder, the remaining input of this call is dropped
 * and push() returns the number of bytes consumed up to that point. */
size_t eg_slip_dec_push(eg_slip_dec *d, const uint8_t *in, size_t n, eg_slip_cb cb, void *ctx);

/* Worst-case encoded size of an n-byte payload. */
static inline size_t eg_slip_max_encoded(size_t n) { return 2 * n + 2; }
/* Encode one frame (leading and trailing 0xC0) into out, which must hold
 * eg_slip_max_encoded(n) bytes. Returns the encoded length. */
size_t eg_slip_encode(uint8_t *out, const uint8_t *in, size_t n);

#endif
