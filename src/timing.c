/* timing.c - see timing.h. */
#include "timing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonw.h"
#include "proto.h"

uint64_t eg_timing_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void eg_timing_add(eg_timing_log *t, const eg_timing_rec *rec) {
  if (t->n == t->cap) {
    const size_t cap = t->cap ? 2 * t->cap : 4096;
    eg_timing_rec *nr = realloc(t->recs, cap * sizeof *nr);
    if (!nr) {
      t->dropped++;
      return;
    }
    t->recs = nr;
    t->cap = cap;
  }
  t->recs[t->n++] = *rec;
}

eg_err eg_timing_write(const eg_timing_log *t, const char *path, eg_fault *f) {
  FILE *fp = fopen(path, "w");
  if (!fp) return eg_fault_set(f, EG_FILE_WRITE, EG_STAGE_NONE, -1, "cannot write %s: %s", path, strerror(errno));
  for (size_t i = 0; i < t->n; i++) {
    const eg_timing_rec *r = &t->recs[i];
    fputs("{\"slot\":", fp);
    eg_json_quote(fp, r->slot);
    fprintf(fp,
            ",\"op\":\"%s\",\"stage\":\"%s\",\"attempt\":%u,\"seq\":%u,\"bytes_out\":%u,\"bytes_in\":%u,"
            "\"baud\":%u,\"t_sent_us\":%llu,\"t_reply_us\":%llu}\n",
            eg_op_name(r->op), eg_stage_name((eg_stage)r->stage), r->attempt, r->seq, r->bytes_out, r->bytes_in,
            r->baud, (unsigned long long)r->t_sent_us, (unsigned long long)r->t_reply_us);
  }
  if (t->dropped) fprintf(fp, "{\"dropped\":%zu}\n", t->dropped);
  if (fclose(fp) != 0) return eg_fault_set(f, EG_FILE_WRITE, EG_STAGE_NONE, -1, "cannot write %s: %s", path, strerror(errno));
  return EG_OK;
}

void eg_timing_free(eg_timing_log *t) {
  free(t->recs);
  memset(t, 0, sizeof *t);
}
