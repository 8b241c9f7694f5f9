#include "slip.h"

void eg_slip_dec_init(eg_slip_dec *d, uint8_t *buf, size_t cap) {
  d->buf = buf;
  d->cap = cap;
  d->len = 0;
  d->state = EG_SLIP_OUTSIDE;
  d->generation = 0;
  d->frames = d->errors = d->noise_bytes = 0;
}

void eg_slip_dec_reset(eg_slip_dec *d) {
  d->len = 0;
  d->state = EG_SLIP_OUTSIDE;
  d->generation++;
}

size_t eg_slip_dec_push(eg_slip_dec *d, const uint8_t *in, size_t n, eg_slip_cb cb, void *ctx) {
  const unsigned gen = d->generation;
  size_t noise_start = 0, noise_len = 0; /* a run of noise bytes within `in` */
  size_t i;

/* Report pending noise before any other event so events stay in order. */
#define FLUSH_NOISE()                                            \
  do {                                                           \
    if (noise_len) {                                             \
      d->noise_bytes += noise_len;                               \
      cb(ctx, EG_SLIP_NOISE, in + noise_start, noise_len, EG_OK); \
      noise_len = 0;                                             \
      if (d->generation != gen) return i;                        \
    }                                                            \
  } while (0)

  for (i = 0; i < n; i++) {
    const uint8_t b = in[i];
    switch (d->state) {
    case EG_SLIP_OUTSIDE:
      if (b == EG_SLIP_END) {
        FLUSH_NOISE();
        d->state = EG_SLIP_INSIDE;
        d->len = 0;
      } else {
        if (!noise_len) noise_start = i;
        noise_len++;
      }
      break;
    case EG_SLIP_INSIDE:
      if (b == EG_SLIP_END) {
        if (d->len == 0) break; /* repeated 0xC0: still between frames */
        d->frames++;
        d->state = EG_SLIP_OUTSIDE;
        cb(ctx, EG_SLIP_FRAME, d->buf, d->len, EG_OK);
        d->len = 0;
        if (d->generation != gen) return i + 1;
      } else if (b == EG_SLIP_ESC) {
        d->state = EG_SLIP_ESCAPED;
      } else if (d->len < d->cap) {
        d->buf[d->len++] = b;
      } else {
        d->errors++;
        d->state = EG_SLIP_DISCARD;
        d->len = 0;
        cb(ctx, EG_SLIP_ERROR, NULL, 0, EG_SLIP_OVERSIZE);
        if (d->generation != gen) return i + 1;
      }
      break;
    case EG_SLIP_ESCAPED: {
      uint8_t v;
      if (b == EG_SLIP_ESC_END) {
        v = EG_SLIP_END;
      } else if (b == EG_SLIP_ESC_ESC) {
        v = EG_SLIP_ESC;
      } else {
        d->errors++;
        /* A 0xC0 right after 0xDB ends the broken frame; anything else means
         * we drop input until the next 0xC0. */
        d->state = b == EG_SLIP_END ? EG_SLIP_OUTSIDE : EG_SLIP_DISCARD;
        d->len = 0;
        cb(ctx, EG_SLIP_ERROR, NULL, 0, EG_SLIP_ESCAPE);
        if (d->generation != gen) return i + 1;
        break;
      }
      if (d->len < d->cap) {
        d->buf[d->len++] = v;
        d->state = EG_SLIP_INSIDE;
      } else {
        d->errors++;
        d->state = EG_SLIP_DISCARD;
        d->len = 0;
        cb(ctx, EG_SLIP_ERROR, NULL, 0, EG_SLIP_OVERSIZE);
        if (d->generation != gen) return i + 1;
      }
      break;
    }
    case EG_SLIP_DISCARD:
      if (b == EG_SLIP_END) d->state = EG_SLIP_OUTSIDE;
      break;
    }
  }
  FLUSH_NOISE();
#undef FLUSH_NOISE
  return n;
}

size_t eg_slip_encode(uint8_t *out, const uint8_t *in, size_t n) {
  size_t o = 0;
  out[o++] = EG_SLIP_END;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == EG_SLIP_END) {
      out[o++] = EG_SLIP_ESC;
      out[o++] = EG_SLIP_ESC_END;
    } else if (in[i] == EG_SLIP_ESC) {
      out[o++] = EG_SLIP_ESC;
      out[o++] = EG_SLIP_ESC_ESC;
    } else {
      out[o++] = in[i];
    }
  }
  out[o++] = EG_SLIP_END;
  return o;
}
