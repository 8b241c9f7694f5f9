/* fuzz_slip.c - libFuzzer target for the SLIP decoder (src/slip.c).
 *
 * Input: byte 0 picks the decoder capacity (0..63 or 4096), byte 1 the
 * piece size of a second, split decoding (low 5 bits) and which events a
 * third decoding resets on (high bits); the rest is the stream. Checked:
 *   - every event is well formed (frames 1..cap bytes, noise without 0xC0,
 *     errors only SLIP_ESCAPE / SLIP_OVERSIZE), counters agree with events;
 *   - the split decoding reports exactly the same events (noise merged);
 *   - every frame re-encoded decodes back to itself;
 *   - a decoder reset from the callback after each frame (and, per byte 1,
 *     each error and noise run), with the caller pushing the remainder,
 *     still makes progress and keeps the invariants.
 * Any violation aborts, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)        \
  do {                  \
    if (!(x)) abort();  \
  } while (0)

typedef struct rec {
  eg_slip_event type;
  eg_err err;
  size_t off, len; /* into the pool */
} rec;

typedef struct evlog {
  rec *r;
  size_t n, cap;
  uint8_t *pool;
  size_t used, pool_cap;
  size_t frames, errors, noise_bytes;
  size_t dec_cap;
  eg_slip_dec *reset_dec; /* reset this decoder after every event in reset_on, if set */
  unsigned reset_on;      /* bit 1 << eg_slip_event */
} evlog;

static void on_event(void *ctx, eg_slip_event ev, const uint8_t *d, size_t len, eg_err err) {
  evlog *l = ctx;
  switch (ev) {
  case EG_SLIP_FRAME:
    CHECK(d != NULL && len >= 1 && len <= l->dec_cap && err == EG_OK);
    l->frames++;
    break;
  case EG_SLIP_NOISE:
    CHECK(d != NULL && len >= 1 && err == EG_OK);
    for (size_t i = 0; i < len; i++) CHECK(d[i] != EG_SLIP_END);
    l->noise_bytes += len;
    break;
  case EG_SLIP_ERROR:
    CHECK(d == NULL && len == 0 && (err == EG_SLIP_ESCAPE || err == EG_SLIP_OVERSIZE));
    l->errors++;
    break;
  }
  CHECK(l->used + len <= l->pool_cap);
  if (len) memcpy(l->pool + l->used, d, len);
  if (ev == EG_SLIP_NOISE && l->n && l->r[l->n - 1].type == EG_SLIP_NOISE) {
    l->r[l->n - 1].len += len; /* merge: splitting may cut a noise run */
  } else {
    CHECK(l->n < l->cap);
    l->r[l->n++] = (rec){ev, err, l->used, len};
  }
  l->used += len;
  if (l->reset_dec && (l->reset_on & 1u << ev)) eg_slip_dec_reset(l->reset_dec);
}

static void log_init(evlog *l, size_t size, size_t dec_cap) {
  memset(l, 0, sizeof *l);
  l->cap = size + 1;
  l->r = malloc(l->cap * sizeof *l->r);
  l->pool_cap = size + 1;
  l->pool = malloc(l->pool_cap);
  CHECK(l->r && l->pool);
  l->dec_cap = dec_cap;
}

static void log_free(evlog *l) {
  free(l->r);
  free(l->pool);
}

static void check_counters(const evlog *l, const eg_slip_dec *d) {
  CHECK(d->frames == l->frames);
  CHECK(d->errors == l->errors);
  CHECK(d->noise_bytes == l->noise_bytes);
  CHECK(d->len <= d->cap);
}

static void check_same(const evlog *a, const evlog *b) {
  CHECK(a->n == b->n);
  for (size_t i = 0; i < a->n; i++) {
    CHECK(a->r[i].type == b->r[i].type && a->r[i].err == b->r[i].err && a->r[i].len == b->r[i].len);
    CHECK(memcmp(a->pool + a->r[i].off, b->pool + b->r[i].off, a->r[i].len) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = data[0] == 0xFF ? 4096 : data[0] % 64;
  const size_t piece = 1 + data[1] % 32;
  const uint8_t *in = data + 2;
  const size_t n = size - 2;
  /* Exactly cap bytes on the heap: ASan reports any write past the buffer. */
  uint8_t *buf = malloc(cap ? cap : 1);
  CHECK(buf);

  /* A: the whole input in one push. */
  evlog a;
  log_init(&a, n, cap);
  eg_slip_dec d;
  eg_slip_dec_init(&d, buf, cap);
  CHECK(eg_slip_dec_push(&d, in, n, on_event, &a) == n);
  check_counters(&a, &d);
  const eg_slip_state end_state = d.state;
  const size_t end_len = d.len;

  /* B: the same input in pieces (and an empty push between each). */
  evlog b;
  log_init(&b, n, cap);
  eg_slip_dec_init(&d, buf, cap);
  for (size_t pos = 0; pos < n; pos += piece) {
    const size_t k = n - pos < piece ? n - pos : piece;
    CHECK(eg_slip_dec_push(&d, in + pos, k, on_event, &b) == k);
    CHECK(eg_slip_dec_push(&d, in + pos, 0, on_event, &b) == 0);
  }
  check_counters(&b, &d);
  check_same(&a, &b);
  CHECK(d.state == end_state && d.len == end_len);

  /* Round trip: each frame, encoded alone, decodes to itself. */
  uint8_t *enc = malloc(eg_slip_max_encoded(cap ? cap : 1));
  CHECK(enc);
  for (size_t i = 0; i < a.n; i++) {
    if (a.r[i].type != EG_SLIP_FRAME) continue;
    const uint8_t *f = a.pool + a.r[i].off;
    const size_t m = eg_slip_encode(enc, f, a.r[i].len);
    CHECK(m >= a.r[i].len + 2 && m <= eg_slip_max_encoded(a.r[i].len));
    evlog c;
    log_init(&c, m, cap);
    eg_slip_dec_init(&d, buf, cap);
    CHECK(eg_slip_dec_push(&d, enc, m, on_event, &c) == m);
    CHECK(c.n == 1 && c.r[0].type == EG_SLIP_FRAME && c.r[0].len == a.r[i].len);
    CHECK(memcmp(c.pool, f, a.r[i].len) == 0);
    CHECK(d.state == EG_SLIP_OUTSIDE);
    log_free(&c);
  }
  free(enc);

  /* C: reset from the callback after every frame (errors, noise: per byte
   * 1); the caller pushes the rest. Each push must consume at least one byte. */
  evlog c;
  log_init(&c, n, cap);
  eg_slip_dec_init(&d, buf, cap);
  c.reset_dec = &d;
  c.reset_on = 1u << EG_SLIP_FRAME | (data[1] & 0x80 ? 1u << EG_SLIP_ERROR : 0) | (data[1] & 0x40 ? 1u << EG_SLIP_NOISE : 0);
  for (size_t pos = 0; pos < n;) {
    const size_t used = eg_slip_dec_push(&d, in + pos, n - pos, on_event, &c);
    CHECK(used >= 1 && used <= n - pos);
    pos += used;
  }
  CHECK(d.len <= d.cap);
  log_free(&c);

  log_free(&a);
  log_free(&b);
  free(buf);
  return 0;
}
