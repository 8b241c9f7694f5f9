/* gate.c - the gate policies (gate.h). */
#include "gate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_rerun.h"

const char *eg_gate_mode_words(eg_gate_mode m) {
  switch (m) {
#define EG_GATE_MODE_CASE(name, words) \
  case EG_GATE_##name:                 \
    return words;
    EG_GATE_MODE_MAP(EG_GATE_MODE_CASE)
#undef EG_GATE_MODE_CASE
  case EG_GATE__COUNT:
    break;
  }
  return "?";
}

/* By offset, then MD5 (images per chip may share an offset): the order of
 * db_rerun.c's query. */
static int by_offset(const void *a, const void *b) {
  const eg_image *x = *(const eg_image *const *)a, *y = *(const eg_image *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  char mx[33], my[33];
  return strcmp(eg_hex(mx, x->md5, 16), eg_hex(my, y->md5, 16));
}

char *eg_images_signature(const eg_image *const *images, size_t n) {
  const eg_image **sorted = calloc(n ? n : 1, sizeof *sorted);
  size_t m = 0;
  char *out = malloc(n * 48 + 1); /* "4294967295:" + 32 hex + "," per image */
  if (!sorted || !out) {
    free(sorted);
    free(out);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (images[i]) sorted[m++] = images[i]; /* NULL: an index no plan uses */
  qsort(sorted, m, sizeof *sorted, by_offset);
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < m; i++) {
    char md5[33];
    len += (size_t)sprintf(out + len, "%s%u:%s", i ? "," : "", (unsigned)sorted[i]->offset, eg_hex(md5, sorted[i]->md5, 16));
  }
  free(sorted);
  return out;
}

bool eg_gate_active(const eg_gate *g) {
  if (!g) return false;
  switch (g->mode) {
  case EG_GATE_ALL: return false;
  case EG_GATE_NOT_PASSED: return !g->reflash;
  case EG_GATE_FAILED_MAC: return true;
  case EG_GATE__COUNT: break;
  }
  return false;
}

/* Work thread: the log's answer. */
static eg_err query(eg_db *db, void *arg, eg_fault *f) {
  eg_gate_ask *a = arg;
  const eg_gate *g = a->gate;
  int64_t unit_id = 0;
  switch (g->mode) {
  case EG_GATE_NOT_PASSED: {
    const eg_err r = eg_db_mac_passed(db, a->mac, g->images, &a->answer, &unit_id, f);
    if (r == EG_OK && a->answer)
      snprintf(a->why, sizeof a->why, "already passed with these images (unit %lld): not re-flashed", (long long)unit_id);
    return r;
  }
  case EG_GATE_FAILED_MAC: {
    const eg_err r = eg_db_mac_needs_retry(db, g->station, g->manifest_sha256, a->mac, &a->answer, f);
    if (r == EG_OK && !a->answer)
      snprintf(a->why, sizeof a->why, "%s has no failed attempt without a pass since in station %s's runs of this "
               "manifest: not re-flashed", a->mac, g->station);
    return r;
  }
  case EG_GATE_ALL:
  case EG_GATE__COUNT:
    break;
  }
  a->answer = false;
  return EG_OK;
}

/* Loop thread: from the answer to the decision. */
static void answered(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id) {
  eg_gate_ask *a = ctx;
  (void)unit_id;
  if (result != EG_OK) {
    snprintf(a->why, sizeof a->why, "not flashed: the log could not answer the gate (%s)", f->msg);
    a->cb(a->ctx, EG_DB, a->why);
    return;
  }
  /* NOT_PASSED: a pass found means skip; FAILED_MAC: a retry needed means flash. */
  const bool flash = a->gate->mode == EG_GATE_NOT_PASSED ? !a->answer : a->answer;
  a->cb(a->ctx, flash ? EG_OK : EG_SKIPPED, flash ? "" : a->why);
}

void eg_gate_ask_start(eg_gate_ask *a, const eg_gate *g, eg_recorder *rec, const eg_unit_record *u, eg_gate_cb cb,
                       void *ctx) {
  memset(a, 0, sizeof *a);
  a->gate = g;
  a->cb = cb;
  a->ctx = ctx;
  if (!eg_gate_active(g) || !rec) {
    cb(ctx, EG_OK, "");
    return;
  }
  if (!u->has_mac) {
    if (g->mode == EG_GATE_FAILED_MAC) {
      snprintf(a->why, sizeof a->why, "no MAC could be read, so the log cannot say it failed before: not re-flashed");
      cb(ctx, EG_SKIPPED, a->why);
      return;
    }
    cb(ctx, EG_OK, ""); /* NOT_PASSED: nothing to match, flash it */
    return;
  }
  eg_unit_mac_str(u, a->mac, sizeof a->mac);
  eg_recorder_call(rec, query, a, answered, a);
}
