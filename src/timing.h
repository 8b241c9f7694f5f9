/* timing.h - where a unit's time goes: one record per request and reply
 * (and per READ_FLASH packet), kept in memory while the loop runs and
 * written as JSON lines afterwards, for the benchmark's attribution (wire
 * time, chip time, host waiting). Recording costs a clock read and an
 * append; nothing touches the disk until eg_timing_write().
 *
 * Times are CLOCK_MONOTONIC microseconds (comparable with espsim's event
 * log when both run on one machine). Loop thread only.
 */
#ifndef EG_TIMING_H
#define EG_TIMING_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct eg_timing_rec {
  char slot[32];
  uint8_t op;          /* request opcode (READ_FLASH for its packets) */
  uint8_t stage;       /* eg_stage */
  uint16_t attempt;    /* resend number, 0 = first */
  uint32_t seq;        /* block / packet number where it has one */
  uint32_t bytes_out;  /* unescaped request bytes (0 for a received packet) */
  uint32_t bytes_in;   /* reply frame bytes */
  uint32_t baud;       /* line rate while it ran */
  uint64_t t_sent_us;  /* the request was handed to the port */
  uint64_t t_reply_us; /* its reply frame was complete (0: none came) */
} eg_timing_rec;

typedef struct eg_timing_log {
  eg_timing_rec *recs;
  size_t n, cap;
  size_t dropped;      /* records lost to a failed allocation */
} eg_timing_log;

uint64_t eg_timing_now_us(void);
/* Append (copies rec). Never fails: a record that cannot be stored counts
 * as dropped. */
void eg_timing_add(eg_timing_log *t, const eg_timing_rec *rec);
/* One JSON object per record, to path (after the loop has ended). */
eg_err eg_timing_write(const eg_timing_log *t, const char *path, eg_fault *f);
void eg_timing_free(eg_timing_log *t);

#endif
