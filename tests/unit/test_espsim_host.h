/* test_espsim_host.h - a tiny in-process "host" for the espsim model tests:
 * builds requests with espgang's proto.h, feeds them to an esim_dev in
 * virtual time, and collects the reply frames. Header-only (static
 * functions) so each test_espsim_*.c stays one translation unit. */
#ifndef TEST_ESPSIM_HOST_H
#define TEST_ESPSIM_HOST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <cmocka.h>

#include "proto.h"
#include "simdev.h"
#include "slip.h"

typedef struct th_frame {
  uint8_t *p;
  size_t n;
  uint64_t t; /* virtual time the frame's last byte was taken */
} th_frame;

typedef struct th {
  esim_dev *dev;
  esim_dev_opts o;
  uint64_t t;
  uint32_t host_baud; /* 0 = TCP-like */
  eg_slip_dec dec;
  uint8_t decbuf[20000];
  th_frame *f;
  size_t nf, capf, next;
  uint8_t noise[8192]; /* bytes seen outside frames (boot logs) */
  size_t nnoise;
  uint64_t taken;      /* bytes taken from the device */
} th;

static inline void th_cb(void *ctx, eg_slip_event ev, const uint8_t *data, size_t len, eg_err err) {
  th *h = ctx;
  (void)err;
  if (ev == EG_SLIP_NOISE) {
    for (size_t i = 0; i < len && h->nnoise < sizeof h->noise - 1; i++) h->noise[h->nnoise++] = data[i];
    h->noise[h->nnoise] = 0;
    return;
  }
  if (ev != EG_SLIP_FRAME) return;
  if (h->nf == h->capf) {
    h->capf = h->capf ? 2 * h->capf : 64;
    h->f = realloc(h->f, h->capf * sizeof *h->f);
    assert_non_null(h->f);
  }
  h->f[h->nf].p = malloc(len);
  memcpy(h->f[h->nf].p, data, len);
  h->f[h->nf].n = len;
  h->f[h->nf].t = h->t;
  h->nf++;
}

/* opts may be NULL (trace device, fast timing). */
static inline void th_init(th *h, const esim_dev_opts *opts) {
  memset(h, 0, sizeof *h);
  if (opts) {
    h->o = *opts;
  } else {
    esim_dev_opts_default(&h->o);
    esim_timing_fast(&h->o.timing);
  }
  if (!h->o.name) h->o.name = "test";
  assert_int_equal(esim_dev_new(&h->dev, &h->o), EG_OK);
  eg_slip_dec_init(&h->dec, h->decbuf, sizeof h->decbuf);
  h->t = 1000;
}

static inline void th_free(th *h) {
  esim_dev_free(h->dev);
  for (size_t i = 0; i < h->nf; i++) free(h->f[i].p);
  free(h->f);
}

/* Let the device run until it has nothing more to do before `limit`. */
static inline void th_run_limit(th *h, uint64_t limit) {
  uint8_t buf[8192];
  for (;;) {
    uint64_t nt = esim_dev_next_event(h->dev);
    if (nt == ESIM_NEVER || nt > limit) break;
    if (nt > h->t) h->t = nt;
    size_t k = esim_dev_tx_take(h->dev, h->t, buf, sizeof buf, h->host_baud);
    h->taken += k;
    if (k) eg_slip_dec_push(&h->dec, buf, k, th_cb, h);
  }
}

/* Run, then let virtual time reach `until`. */
static inline void th_run_until(th *h, uint64_t until) {
  th_run_limit(h, until);
  if (until > h->t) {
    h->t = until;
    esim_dev_advance(h->dev, h->t);
  }
}

/* Run everything due within the next minute of virtual time (an app's
 * chatter never ends). */
static inline void th_run(th *h) { th_run_limit(h, h->t + 60000000ull); }

static inline void th_send_raw(th *h, const uint8_t *p, size_t n) {
  h->t += 100;
  esim_dev_rx(h->dev, h->t, p, n, h->host_baud);
  th_run(h);
}

/* Send an unescaped packet without running the device. */
static inline void th_send_pkt_norun(th *h, const uint8_t *pkt, size_t n) {
  uint8_t *raw = malloc(eg_slip_max_encoded(n));
  size_t rl = eg_slip_encode(raw, pkt, n);
  h->t += 100;
  esim_dev_rx(h->dev, h->t, raw, rl, h->host_baud);
  free(raw);
}

static inline void th_send_pkt(th *h, const uint8_t *pkt, size_t n) {
  th_send_pkt_norun(h, pkt, n);
  th_run(h);
}

static inline size_t th_pending(const th *h) { return h->nf - h->next; }

/* Next unread frame (fails if none). */
static inline th_frame *th_next(th *h) {
  if (h->next >= h->nf) fail_msg("expected a reply frame, got none");
  return &h->f[h->next++];
}

static inline void th_drain(th *h) { h->next = h->nf; }

/* Parse the next frame as a reply to op with status_len status bytes and
 * expect_data bytes of data; checks direction/op. */
static inline eg_resp th_reply(th *h, uint8_t op, size_t status_len, size_t expect_data) {
  th_frame *f = th_next(h);
  eg_resp r;
  assert_int_equal(eg_resp_parse(f->p, f->n, status_len, expect_data, &r), EG_OK);
  assert_int_equal(r.op, op);
  return r;
}

static inline void th_expect_ok(th *h, uint8_t op, size_t status_len) {
  eg_resp r = th_reply(h, op, status_len, 0);
  if (!r.ok) fail_msg("%s failed: status %02x %02x", eg_op_name(op), r.status[0], r.status[1]);
}

static inline uint32_t th_rom_read_reg(th *h, uint32_t addr) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_read_reg(pkt, addr));
  eg_resp r = th_reply(h, EG_OP_READ_REG, 4, 0);
  assert_true(r.ok);
  return r.value;
}

static inline uint32_t th_stub_read_reg(th *h, uint32_t addr) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_read_reg(pkt, addr));
  eg_resp r = th_reply(h, EG_OP_READ_REG, 2, 0);
  assert_true(r.ok);
  return r.value;
}

static inline void th_sync(th *h, size_t status_len) {
  uint8_t pkt[64];
  th_send_pkt(h, pkt, eg_req_sync(pkt));
  for (int i = 0; i < 8; i++) th_expect_ok(h, EG_OP_SYNC, status_len);
  assert_int_equal(th_pending(h), 0);
}

/* Upload a fake stub (MEM_BEGIN/DATA/END) at text_addr; expects OHAI. */
static inline void th_run_stub_at(th *h, uint32_t text_addr, uint32_t entry) {
  uint8_t seg[3540];
  for (size_t i = 0; i < sizeof seg; i++) seg[i] = (uint8_t)(i * 31 + 7);
  uint8_t pkt[8192];
  size_t n = eg_req_begin(pkt, EG_OP_MEM_BEGIN, sizeof seg, 1, 0x1800, text_addr, false, 0);
  th_send_pkt(h, pkt, n);
  th_expect_ok(h, EG_OP_MEM_BEGIN, 4);
  n = eg_req_data(pkt, EG_OP_MEM_DATA, 0, seg, sizeof seg, 0);
  th_send_pkt(h, pkt, n);
  th_expect_ok(h, EG_OP_MEM_DATA, 4);
  n = eg_req_mem_end(pkt, entry);
  th_send_pkt(h, pkt, n);
  th_expect_ok(h, EG_OP_MEM_END, 4);
  th_frame *f = th_next(h);
  assert_int_equal(f->n, 4);
  assert_memory_equal(f->p, "OHAI", 4);
  assert_int_equal(esim_dev_mode(h->dev), ESIM_MODE_STUB);
}

static inline void th_run_legacy_stub(th *h) {
  th_run_stub_at(h, 0x400BE000, 0x400BE658);
  assert_int_equal(esim_dev_stub(h->dev), ESIM_STUB_LEGACY);
}

static inline void th_run_new_stub(th *h) {
  th_run_stub_at(h, 0x400A8000, 0x400A902C);
  assert_int_equal(esim_dev_stub(h->dev), ESIM_STUB_NEW);
}

/* Deterministic test image with some redundancy (compresses ~2:1). */
static inline uint8_t *th_image(size_t n, uint32_t seed) {
  uint8_t *p = malloc(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    if (i >= 64 && (x >> 28) < 9) p[i] = p[i - 64 + ((x >> 20) & 7)];
    else p[i] = (uint8_t)(x >> 16);
  }
  return p;
}

/* Highly compressible (>= 8:1): a 1 KB pattern with sparse changes. */
static inline uint8_t *th_image_z(size_t n, uint32_t seed) {
  uint8_t *base = th_image(1024, seed);
  uint8_t *p = malloc(n);
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(base[i % 1024] ^ (i % 97 == 0 ? (uint8_t)(i >> 10) : 0));
  free(base);
  return p;
}

static inline uint8_t *th_deflate(const uint8_t *in, size_t n, size_t *out_len) {
  uLongf cap = compressBound(n);
  uint8_t *out = malloc(cap);
  assert_int_equal(compress2(out, &cap, in, n, 9), Z_OK);
  *out_len = cap;
  return out;
}

#endif
