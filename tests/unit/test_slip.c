/* test_slip.c - the SLIP codec (src/slip.c): encoding, and the streaming
 * decoder fed the same bytes split at every position, with noise, repeated
 * 0xC0, broken escapes, over-long frames and resets from the callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slip.h"

/* ------------------------------------------------------------ helpers */

static void hex(char *out, size_t cap, const uint8_t *p, size_t n) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n && o + 3 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", p[i]);
}

/* Fail, printing both byte strings, unless they are equal. */
static void bytes_eq(const char *what, const uint8_t *got, size_t ngot, const uint8_t *want, size_t nwant) {
  if (ngot == nwant && (nwant == 0 || memcmp(got, want, nwant) == 0)) return;
  char a[4096], b[4096];
  hex(a, sizeof a, got, ngot);
  hex(b, sizeof b, want, nwant);
  fail_msg("%s:\n  got  (%zu) %s\n  want (%zu) %s", what, ngot, a, nwant, b);
}

/* Deterministic PRNG (xorshift32) so a failure is reproducible. */
static uint32_t rnd(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

/* Every event the decoder reports, in order. Adjacent NOISE events are merged
 * so the log does not depend on where the input was split. */
#define MAX_EV 64
typedef struct ev {
  eg_slip_event type;
  eg_err err;
  uint8_t data[600];
  size_t len;
} ev;

typedef struct log_t {
  ev e[MAX_EV];
  size_t n;
  /* Optional: reset the decoder from inside the callback at event #reset_at. */
  eg_slip_dec *dec;
  size_t reset_at; /* (size_t)-1: never */
  size_t calls;
} log_t;

static void log_init(log_t *l) {
  memset(l, 0, sizeof *l);
  l->reset_at = (size_t)-1;
}

static void on_event(void *ctx, eg_slip_event type, const uint8_t *data, size_t len, eg_err err) {
  log_t *l = ctx;
  const size_t call = l->calls++;
  switch (type) {
  case EG_SLIP_FRAME:
    assert_non_null(data);
    assert_true(len >= 1); /* empty frames are never reported */
    assert_int_equal(err, EG_OK);
    break;
  case EG_SLIP_NOISE:
    assert_non_null(data);
    assert_true(len >= 1);
    assert_int_equal(err, EG_OK);
    for (size_t i = 0; i < len; i++) assert_int_not_equal(data[i], EG_SLIP_END);
    break;
  case EG_SLIP_ERROR:
    assert_null(data);
    assert_int_equal(len, 0);
    assert_true(err == EG_SLIP_ESCAPE || err == EG_SLIP_OVERSIZE);
    break;
  }
  if (type == EG_SLIP_NOISE && l->n > 0 && l->e[l->n - 1].type == EG_SLIP_NOISE) {
    ev *p = &l->e[l->n - 1];
    assert_true(p->len + len <= sizeof p->data);
    memcpy(p->data + p->len, data, len);
    p->len += len;
  } else {
    assert_true(l->n < MAX_EV);
    ev *p = &l->e[l->n++];
    p->type = type;
    p->err = err;
    assert_true(len <= sizeof p->data);
    if (len) memcpy(p->data, data, len);
    p->len = len;
  }
  if (call == l->reset_at) eg_slip_dec_reset(l->dec);
}

static const char *ev_name(eg_slip_event t) {
  switch (t) {
  case EG_SLIP_FRAME: return "FRAME";
  case EG_SLIP_NOISE: return "NOISE";
  case EG_SLIP_ERROR: return "ERROR";
  }
  return "?";
}

/* One expected event. */
typedef struct want_ev {
  eg_slip_event type;
  const uint8_t *data;
  size_t len;
  eg_err err;
} want_ev;

static void log_eq(const char *what, const log_t *l, const want_ev *w, size_t nw) {
  if (l->n != nw) {
    char buf[2048];
    size_t o = 0;
    for (size_t i = 0; i < l->n && o < sizeof buf - 64; i++)
      o += (size_t)snprintf(buf + o, sizeof buf - o, " %s(%zu%s%s)", ev_name(l->e[i].type), l->e[i].len,
                            l->e[i].type == EG_SLIP_ERROR ? " " : "",
                            l->e[i].type == EG_SLIP_ERROR ? eg_err_name(l->e[i].err) : "");
    fail_msg("%s: got %zu events [%s ], want %zu", what, l->n, buf, nw);
  }
  for (size_t i = 0; i < nw; i++) {
    if (l->e[i].type != w[i].type)
      fail_msg("%s: event %zu is %s, want %s", what, i, ev_name(l->e[i].type), ev_name(w[i].type));
    if (w[i].type == EG_SLIP_ERROR) {
      if (l->e[i].err != w[i].err)
        fail_msg("%s: event %zu error %s, want %s", what, i, eg_err_name(l->e[i].err), eg_err_name(w[i].err));
    } else {
      char name[128];
      snprintf(name, sizeof name, "%s: event %zu (%s) bytes", what, i, ev_name(w[i].type));
      bytes_eq(name, l->e[i].data, l->e[i].len, w[i].data, w[i].len);
    }
  }
}

/* Push `in` to a fresh decoder (capacity `cap`) in pieces whose ends are
 * `cuts` (sorted positions in (0, n)), checking every push consumes all. */
static void decode_split(const uint8_t *in, size_t n, size_t cap, const size_t *cuts, size_t ncuts, log_t *l) {
  uint8_t *buf = malloc(cap ? cap : 1); /* exact size: ASan catches any write past cap */
  assert_non_null(buf);
  eg_slip_dec d;
  eg_slip_dec_init(&d, buf, cap);
  log_init(l);
  size_t pos = 0;
  for (size_t c = 0; c <= ncuts; c++) {
    const size_t end = c < ncuts ? cuts[c] : n;
    assert_true(end >= pos);
    const size_t used = eg_slip_dec_push(&d, in + pos, end - pos, on_event, l);
    assert_int_equal(used, end - pos);
    pos = end;
  }
  free(buf);
}

static void decode_all(const uint8_t *in, size_t n, size_t cap, log_t *l) { decode_split(in, n, cap, NULL, 0, l); }

/* ------------------------------------------------------------ encoder */

static void test_encode_plain(void **state) {
  (void)state;
  const uint8_t in[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20};
  uint8_t out[32];
  const uint8_t want[] = {0xC0, 0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0xC0};
  const size_t n = eg_slip_encode(out, in, sizeof in);
  bytes_eq("plain", out, n, want, sizeof want);
}

static void test_encode_escapes(void **state) {
  (void)state;
  const uint8_t in[] = {0xC0, 0xDB, 0x01, 0xDB, 0xDC, 0xC0, 0xDD, 0xC0};
  const uint8_t want[] = {0xC0, 0xDB, 0xDC, 0xDB, 0xDD, 0x01, 0xDB, 0xDD, 0xDC,
                          0xDB, 0xDC, 0xDD, 0xDB, 0xDC, 0xC0};
  uint8_t out[64];
  memset(out, 0xAA, sizeof out);
  const size_t n = eg_slip_encode(out, in, sizeof in);
  bytes_eq("escapes", out, n, want, sizeof want);
  assert_int_equal(out[n], 0xAA); /* nothing written past the frame */
}

static void test_encode_empty_and_worst_case(void **state) {
  (void)state;
  uint8_t out[2 * 300 + 2 + 1];
  const uint8_t want_empty[] = {0xC0, 0xC0};
  size_t n = eg_slip_encode(out, NULL, 0);
  bytes_eq("empty", out, n, want_empty, sizeof want_empty);
  assert_int_equal(eg_slip_max_encoded(0), 2);

  /* A payload of only 0xC0/0xDB bytes needs exactly the worst-case size. */
  uint8_t in[300];
  for (size_t i = 0; i < sizeof in; i++) in[i] = i % 2 ? 0xC0 : 0xDB;
  out[sizeof out - 1] = 0x5A;
  n = eg_slip_encode(out, in, sizeof in);
  assert_int_equal(n, eg_slip_max_encoded(sizeof in));
  assert_int_equal(n, 2 * sizeof in + 2);
  assert_int_equal(out[sizeof out - 1], 0x5A);
  for (size_t i = 1; i + 1 < n; i++) assert_int_not_equal(out[i], 0xC0); /* no END inside */
}

/* The SYNC request as esptool wrote it (rom-flash-id.trace, "Write 46 bytes"). */
static void test_encode_sync_from_trace(void **state) {
  (void)state;
  uint8_t pkt[44] = {0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20};
  memset(pkt + 12, 0x55, 32);
  uint8_t want[46] = {0xC0, 0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20};
  memset(want + 13, 0x55, 32);
  want[45] = 0xC0;
  uint8_t out[100];
  const size_t n = eg_slip_encode(out, pkt, sizeof pkt);
  bytes_eq("SYNC", out, n, want, sizeof want);
}

/* ------------------------------------------------------------ decoder */

/* A realistic stream: the ROM's boot log, then two frames (one containing
 * both escapes) separated by extra 0xC0s, more noise, a third frame. */
static const char boot_log[] =
  "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n";
static const uint8_t f1[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00};
static const uint8_t f2[] = {0x01, 0x0A, 0x04, 0x00, 0xC0, 0xDB, 0xF0, 0x00, 0xDB, 0x00, 0xC0, 0x00};
static const uint8_t f3[] = {'O', 'H', 'A', 'I'};
static const char noise2[] = "ets Jul 29 2019 12:21:46\r\n";

static size_t build_stream(uint8_t *s) {
  size_t n = 0;
  memcpy(s + n, boot_log, strlen(boot_log));
  n += strlen(boot_log);
  n += eg_slip_encode(s + n, f1, sizeof f1);
  s[n++] = 0xC0; /* repeated delimiters between frames */
  s[n++] = 0xC0;
  n += eg_slip_encode(s + n, f2, sizeof f2);
  memcpy(s + n, noise2, strlen(noise2));
  n += strlen(noise2);
  s[n++] = 0xC0; /* an empty frame: C0 C0 */
  s[n++] = 0xC0;
  n += eg_slip_encode(s + n, f3, sizeof f3);
  return n;
}

static const want_ev stream_want[] = {
  {EG_SLIP_NOISE, (const uint8_t *)boot_log, sizeof boot_log - 1, EG_OK},
  {EG_SLIP_FRAME, f1, sizeof f1, EG_OK},
  {EG_SLIP_FRAME, f2, sizeof f2, EG_OK},
  {EG_SLIP_NOISE, (const uint8_t *)noise2, sizeof noise2 - 1, EG_OK},
  {EG_SLIP_FRAME, f3, sizeof f3, EG_OK},
};

static void test_decode_stream_whole(void **state) {
  (void)state;
  uint8_t s[512];
  const size_t n = build_stream(s);
  log_t *l = malloc(sizeof *l);
  uint8_t buf[64];
  eg_slip_dec d;
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  assert_int_equal(eg_slip_dec_push(&d, s, n, on_event, l), n);
  log_eq("whole", l, stream_want, 5);
  assert_int_equal(d.frames, 3);
  assert_int_equal(d.errors, 0);
  assert_int_equal(d.noise_bytes, strlen(boot_log) + strlen(noise2));
  assert_int_equal(d.state, EG_SLIP_OUTSIDE);
  free(l);
}

static void test_decode_split_every_position(void **state) {
  (void)state;
  uint8_t s[512];
  const size_t n = build_stream(s);
  log_t *l = malloc(sizeof *l);
  char what[64];
  /* Byte by byte. */
  size_t cuts[512] = {0};
  for (size_t i = 1; i < n; i++) cuts[i - 1] = i;
  decode_split(s, n, 64, cuts, n - 1, l);
  log_eq("byte by byte", l, stream_want, 5);
  /* Every single cut, and every pair of cuts. */
  for (size_t a = 1; a < n; a++) {
    snprintf(what, sizeof what, "cut at %zu", a);
    decode_split(s, n, 64, &a, 1, l);
    log_eq(what, l, stream_want, 5);
    for (size_t b = a; b < n; b += 7) {
      const size_t two[2] = {a, b};
      snprintf(what, sizeof what, "cuts at %zu,%zu", a, b);
      decode_split(s, n, 64, two, 2, l);
      log_eq(what, l, stream_want, 5);
    }
  }
  /* Random splits, including empty pushes. */
  uint32_t seed = 0x5EED1234u;
  for (int round = 0; round < 500; round++) {
    size_t nc = 0, pos = 0;
    while (nc < 40) {
      pos += rnd(&seed) % 12; /* 0: an empty push */
      if (pos >= n) break;
      cuts[nc++] = pos;
    }
    snprintf(what, sizeof what, "random round %d", round);
    decode_split(s, n, 64, cuts, nc, l);
    log_eq(what, l, stream_want, 5);
  }
  free(l);
}

static void test_decode_repeated_end(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  /* Before, between and after frames; C0 C0 alone is an empty frame. */
  const uint8_t in[] = {0xC0, 0xC0, 0xC0, 0x01, 0x02, 0xC0, 0xC0, 0xC0, 0xC0, 0x03, 0xC0, 0xC0, 0xC0};
  decode_all(in, sizeof in, 16, l);
  const uint8_t a[] = {0x01, 0x02}, b[] = {0x03};
  const want_ev w[] = {{EG_SLIP_FRAME, a, 2, EG_OK}, {EG_SLIP_FRAME, b, 1, EG_OK}};
  log_eq("repeated C0", l, w, 2);

  const uint8_t only_ends[] = {0xC0, 0xC0, 0xC0, 0xC0, 0xC0, 0xC0, 0xC0};
  decode_all(only_ends, sizeof only_ends, 16, l);
  log_eq("only C0s", l, NULL, 0);
  free(l);
}

/* A frame needs its own opening 0xC0: bytes right after a frame's closing
 * 0xC0 are noise (esp-serial-flasher's rule), and the next 0xC0 opens. */
static void test_decode_shared_delimiter_is_noise(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  const uint8_t in[] = {0xC0, 0x01, 0xC0, 0x03, 0xC0, 0x04, 0xC0};
  decode_all(in, sizeof in, 16, l);
  const uint8_t a[] = {0x01}, nz[] = {0x03}, b[] = {0x04};
  const want_ev w[] = {{EG_SLIP_FRAME, a, 1, EG_OK}, {EG_SLIP_NOISE, nz, 1, EG_OK}, {EG_SLIP_FRAME, b, 1, EG_OK}};
  log_eq("shared delimiter", l, w, 3);
  free(l);
}

static void test_decode_boot_log_then_frame(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  uint8_t s[256];
  size_t n = strlen(boot_log);
  memcpy(s, boot_log, n);
  const uint8_t resp[] = {0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00};
  n += eg_slip_encode(s + n, resp, sizeof resp);
  decode_all(s, n, 32, l);
  const want_ev w[] = {{EG_SLIP_NOISE, (const uint8_t *)boot_log, strlen(boot_log), EG_OK},
                       {EG_SLIP_FRAME, resp, sizeof resp, EG_OK}};
  log_eq("boot log", l, w, 2);

  /* Noise alone, with no frame after it, is still reported at the end of the push. */
  decode_all((const uint8_t *)"abc", 3, 32, l);
  const want_ev w2[] = {{EG_SLIP_NOISE, (const uint8_t *)"abc", 3, EG_OK}};
  log_eq("trailing noise", l, w2, 1);
  free(l);
}

static void test_decode_bad_escape(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  const uint8_t next[] = {0x03, 0x04};
  const want_ev w[] = {{EG_SLIP_ERROR, NULL, 0, EG_SLIP_ESCAPE}, {EG_SLIP_FRAME, next, 2, EG_OK}};
  /* 0xDB followed by an ordinary byte: the rest of that frame is dropped
   * (not reported as noise) and the next frame decodes. */
  const uint8_t a[] = {0xC0, 0x01, 0xDB, 0x05, 0x02, 0x99, 0xC0, 0xC0, 0x03, 0x04, 0xC0};
  decode_all(a, sizeof a, 16, l);
  log_eq("DB 05", l, w, 2);
  /* 0xDB then 0xDB. */
  const uint8_t b[] = {0xC0, 0xDB, 0xDB, 0xDD, 0xC0, 0xC0, 0x03, 0x04, 0xC0};
  decode_all(b, sizeof b, 16, l);
  log_eq("DB DB", l, w, 2);
  /* 0xDB then 0xC0: that 0xC0 closes the broken frame. */
  const uint8_t c[] = {0xC0, 0x01, 0xDB, 0xC0, 0xC0, 0x03, 0x04, 0xC0};
  decode_all(c, sizeof c, 16, l);
  log_eq("DB C0", l, w, 2);
  /* Same streams split byte by byte. */
  size_t cuts[16] = {0};
  for (size_t i = 1; i < sizeof a; i++) cuts[i - 1] = i;
  decode_split(a, sizeof a, 16, cuts, sizeof a - 1, l);
  log_eq("DB 05 bytewise", l, w, 2);
  decode_split(c, sizeof c, 16, cuts, sizeof c - 1, l);
  log_eq("DB C0 bytewise", l, w, 2);

  uint8_t buf[16];
  eg_slip_dec d;
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  eg_slip_dec_push(&d, a, sizeof a, on_event, l);
  assert_int_equal(d.errors, 1);
  assert_int_equal(d.frames, 1);
  assert_int_equal(d.noise_bytes, 0);
  free(l);
}

static void test_decode_oversize(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  enum { CAP = 8 };
  uint8_t s[128];
  uint8_t big[CAP + 1], fits[CAP];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(0x10 + i);
  for (size_t i = 0; i < sizeof fits; i++) fits[i] = (uint8_t)(0x40 + i);
  fits[CAP - 1] = 0xC0; /* last byte escaped: fills the buffer exactly */

  size_t n = eg_slip_encode(s, big, sizeof big);
  n += eg_slip_encode(s + n, fits, sizeof fits);
  const want_ev w[] = {{EG_SLIP_ERROR, NULL, 0, EG_SLIP_OVERSIZE}, {EG_SLIP_FRAME, fits, CAP, EG_OK}};
  decode_all(s, n, CAP, l);
  log_eq("oversize then exact fit", l, w, 2);
  size_t cuts[128] = {0};
  for (size_t i = 1; i < n; i++) cuts[i - 1] = i;
  decode_split(s, n, CAP, cuts, n - 1, l);
  log_eq("oversize bytewise", l, w, 2);

  /* The byte that overflows is an escaped one. */
  uint8_t big2[CAP + 1];
  memcpy(big2, fits, CAP);
  big2[CAP] = 0xDB;
  n = eg_slip_encode(s, big2, sizeof big2);
  n += eg_slip_encode(s + n, fits, sizeof fits);
  decode_all(s, n, CAP, l);
  log_eq("oversize on escape", l, w, 2);

  /* A long frame: one error, not one per extra byte; its tail is not noise. */
  uint8_t huge[100];
  memset(huge, 0x33, sizeof huge);
  n = eg_slip_encode(s, huge, sizeof huge);
  n += eg_slip_encode(s + n, fits, sizeof fits);
  uint8_t buf[CAP];
  eg_slip_dec d;
  eg_slip_dec_init(&d, buf, CAP);
  log_init(l);
  assert_int_equal(eg_slip_dec_push(&d, s, n, on_event, l), n);
  log_eq("huge", l, w, 2);
  assert_int_equal(d.errors, 1);
  assert_int_equal(d.noise_bytes, 0);
  free(l);
}

/* Capacity 0: no frame fits, nothing is ever written to the buffer. */
static void test_decode_zero_capacity(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  eg_slip_dec d;
  eg_slip_dec_init(&d, NULL, 0);
  log_init(l);
  const uint8_t in[] = {0xC0, 0x01, 0xC0, 0xC0, 0xDB, 0xDC, 0xC0, 0xC0, 0xC0};
  assert_int_equal(eg_slip_dec_push(&d, in, sizeof in, on_event, l), sizeof in);
  const want_ev w[] = {{EG_SLIP_ERROR, NULL, 0, EG_SLIP_OVERSIZE}, {EG_SLIP_ERROR, NULL, 0, EG_SLIP_OVERSIZE}};
  log_eq("cap 0", l, w, 2);
  free(l);
}

/* The decoder never writes outside the caller's buffer: guard bytes around it
 * stay intact whatever the input. */
static void test_decode_memory_bounded(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  enum { CAP = 16, GUARD = 16 };
  uint8_t mem[GUARD + CAP + GUARD];
  uint32_t seed = 0xC0FFEEu;
  for (int round = 0; round < 300; round++) {
    memset(mem, 0xA5, sizeof mem);
    eg_slip_dec d;
    eg_slip_dec_init(&d, mem + GUARD, CAP);
    log_init(l);
    l->reset_at = (size_t)-1;
    uint8_t in[200];
    for (size_t i = 0; i < sizeof in; i++) {
      const uint32_t r = rnd(&seed) % 8;
      in[i] = r == 0 ? 0xC0 : r == 1 ? 0xDB : r == 2 ? 0xDC : (uint8_t)rnd(&seed);
    }
    /* Log capacity is bounded; feed in chunks and clear the log between. */
    for (size_t pos = 0; pos < sizeof in; pos += 20) {
      log_init(l);
      assert_int_equal(eg_slip_dec_push(&d, in + pos, 20, on_event, l), 20);
      for (size_t i = 0; i < l->n; i++)
        if (l->e[i].type == EG_SLIP_FRAME) assert_true(l->e[i].len <= CAP);
      assert_true(d.len <= CAP);
    }
    for (size_t i = 0; i < GUARD; i++) {
      assert_int_equal(mem[i], 0xA5);
      assert_int_equal(mem[GUARD + CAP + i], 0xA5);
    }
  }
  free(l);
}

static void test_reset_from_callback(void **state) {
  (void)state;
  log_t *l = malloc(sizeof *l);
  uint8_t buf[16];
  eg_slip_dec d;
  const uint8_t one[] = {0x01}, two[] = {0x02};

  /* Reset on the first frame: the rest of this push is dropped, push()
   * returns how much it consumed (up to the frame's closing 0xC0). */
  const uint8_t in[] = {0xC0, 0x01, 0xC0, 0xC0, 0x02, 0xC0};
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  l->dec = &d;
  l->reset_at = 0;
  assert_int_equal(eg_slip_dec_push(&d, in, sizeof in, on_event, l), 3);
  const want_ev w1[] = {{EG_SLIP_FRAME, one, 1, EG_OK}};
  log_eq("reset on frame", l, w1, 1);
  assert_int_equal(d.state, EG_SLIP_OUTSIDE);
  assert_int_equal(d.len, 0);
  /* The caller may push the remainder; it decodes from scratch. */
  l->reset_at = (size_t)-1;
  assert_int_equal(eg_slip_dec_push(&d, in + 3, sizeof in - 3, on_event, l), sizeof in - 3);
  const want_ev w2[] = {{EG_SLIP_FRAME, one, 1, EG_OK}, {EG_SLIP_FRAME, two, 1, EG_OK}};
  log_eq("after reset", l, w2, 2);

  /* Reset on noise: push() stops before the 0xC0 that ended the noise. */
  const uint8_t nz[] = {'a', 'b', 0xC0, 0x01, 0xC0};
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  l->dec = &d;
  l->reset_at = 0;
  assert_int_equal(eg_slip_dec_push(&d, nz, sizeof nz, on_event, l), 2);
  assert_int_equal(l->n, 1);
  assert_int_equal(l->e[0].type, EG_SLIP_NOISE);
  assert_int_equal(d.state, EG_SLIP_OUTSIDE);

  /* Reset on noise at the very end of the input: everything was consumed. */
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  l->dec = &d;
  l->reset_at = 0;
  assert_int_equal(eg_slip_dec_push(&d, (const uint8_t *)"xyz", 3, on_event, l), 3);

  /* Reset on an error: a broken frame mid-input; the decoder is between
   * frames afterwards, not discarding. */
  const uint8_t bad[] = {0xC0, 0x01, 0xDB, 0x07, 0x08, 0xC0, 0xC0, 0x02, 0xC0};
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  l->dec = &d;
  l->reset_at = 0;
  assert_int_equal(eg_slip_dec_push(&d, bad, sizeof bad, on_event, l), 4);
  assert_int_equal(l->n, 1);
  assert_int_equal(l->e[0].err, EG_SLIP_ESCAPE);
  assert_int_equal(d.state, EG_SLIP_OUTSIDE);

  /* Reset from outside the callback drops a partial frame. */
  eg_slip_dec_init(&d, buf, sizeof buf);
  log_init(l);
  const uint8_t part[] = {0xC0, 0x55, 0x66};
  eg_slip_dec_push(&d, part, sizeof part, on_event, l);
  assert_int_equal(d.len, 2);
  eg_slip_dec_reset(&d);
  const uint8_t rest[] = {0x77, 0xC0, 0x02, 0xC0};
  eg_slip_dec_push(&d, rest, sizeof rest, on_event, l);
  /* 0x77 is now outside a frame: noise; the 0xC0 after it opens "02". */
  const uint8_t n77[] = {0x77};
  const want_ev w3[] = {{EG_SLIP_NOISE, n77, 1, EG_OK}, {EG_SLIP_FRAME, two, 1, EG_OK}};
  log_eq("external reset", l, w3, 2);
  free(l);
}

/* Property: any sequence of payloads, encoded and concatenated with random
 * extra delimiters and pushed in random pieces, decodes to the same payloads
 * (empty ones vanish). */
static void test_round_trip_random(void **state) {
  (void)state;
  enum { CAP = 300, NP = 6 };
  uint32_t seed = 12345u;
  uint8_t *stream = malloc(NP * (2 * CAP + 8));
  log_t *l = malloc(sizeof *l);
  uint8_t payload[NP][CAP];
  size_t plen[NP];
  for (int round = 0; round < 400; round++) {
    size_t n = 0;
    for (int p = 0; p < NP; p++) {
      plen[p] = rnd(&seed) % 4 == 0 ? rnd(&seed) % 3 : rnd(&seed) % (CAP + 1);
      for (size_t i = 0; i < plen[p]; i++) {
        const uint32_t r = rnd(&seed) % 6;
        payload[p][i] = r == 0 ? 0xC0 : r == 1 ? 0xDB : r == 2 ? 0xDC : r == 3 ? 0xDD : (uint8_t)rnd(&seed);
      }
      const size_t extra = rnd(&seed) % 3;
      for (size_t e = 0; e < extra; e++) stream[n++] = 0xC0;
      n += eg_slip_encode(stream + n, payload[p], plen[p]);
    }
    size_t cuts[64], nc = 0, pos = 0;
    while (nc < 64) {
      pos += 1 + rnd(&seed) % 200;
      if (pos >= n) break;
      cuts[nc++] = pos;
    }
    decode_split(stream, n, CAP, cuts, nc, l);
    want_ev w[NP];
    size_t nw = 0;
    for (int p = 0; p < NP; p++)
      if (plen[p]) w[nw++] = (want_ev){EG_SLIP_FRAME, payload[p], plen[p], EG_OK};
    char what[48];
    snprintf(what, sizeof what, "round trip %d", round);
    log_eq(what, l, w, nw);
  }
  free(stream);
  free(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_encode_plain),
    cmocka_unit_test(test_encode_escapes),
    cmocka_unit_test(test_encode_empty_and_worst_case),
    cmocka_unit_test(test_encode_sync_from_trace),
    cmocka_unit_test(test_decode_stream_whole),
    cmocka_unit_test(test_decode_split_every_position),
    cmocka_unit_test(test_decode_repeated_end),
    cmocka_unit_test(test_decode_shared_delimiter_is_noise),
    cmocka_unit_test(test_decode_boot_log_then_frame),
    cmocka_unit_test(test_decode_bad_escape),
    cmocka_unit_test(test_decode_oversize),
    cmocka_unit_test(test_decode_zero_capacity),
    cmocka_unit_test(test_decode_memory_bounded),
    cmocka_unit_test(test_reset_from_callback),
    cmocka_unit_test(test_round_trip_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
