#include "display.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

#define REDRAW_MS 200

typedef struct row {
  char label[64];
  char state[96];
  char result[160];
  bool has_result, ok;
  uint64_t done, total;
  uint64_t rate_t0, rate_b0; /* for the transfer rate */
  double rate;               /* bytes per second */
  int last_quarter;          /* plain mode: last 25 % step printed */
  uint64_t last_json_ms;
} row;

struct eg_display {
  uv_loop_t *loop;
  FILE *out;
  eg_display_mode mode;
  size_t nrows;
  row *rows;
  size_t drawn;     /* TTY: live lines currently on screen */
  bool dirty, finished;
  uv_timer_t timer;
  bool timer_on;
  int label_w;
};

static void redraw(eg_display *d);

static void on_timer(uv_timer_t *t) {
  eg_display *d = t->data;
  if (d->dirty) redraw(d);
}

eg_display *eg_display_new(uv_loop_t *loop, FILE *out, eg_display_mode mode, size_t rows, const char *const *labels) {
  eg_display *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->rows = calloc(rows ? rows : 1, sizeof *d->rows);
  if (!d->rows) {
    free(d);
    return NULL;
  }
  d->loop = loop;
  d->out = out;
  d->mode = mode;
  d->nrows = rows;
  d->label_w = 4;
  for (size_t i = 0; i < rows; i++) {
    snprintf(d->rows[i].label, sizeof d->rows[i].label, "%s", labels[i]);
    snprintf(d->rows[i].state, sizeof d->rows[i].state, "waiting");
    d->rows[i].last_quarter = -1;
    const int w = (int)strlen(d->rows[i].label);
    if (w > d->label_w) d->label_w = w > 40 ? 40 : w;
  }
  if (mode == EG_DISPLAY_TTY) {
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_timer, REDRAW_MS, REDRAW_MS);
    uv_unref((uv_handle_t *)&d->timer); /* never keeps the loop alive */
    d->timer_on = true;
  }
  return d;
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

void eg_display_free(eg_display *d) {
  if (!d) return;
  free(d->rows);
  if (d->timer_on) {
    /* The struct holding the timer is freed in the close callback. */
    d->timer_on = false;
    uv_timer_stop(&d->timer);
    d->rows = NULL;
    uv_close((uv_handle_t *)&d->timer, timer_closed);
    return;
  }
  free(d);
}

eg_display_mode eg_display_mode_of(const eg_display *d) { return d->mode; }

static void fmt_rate(char *buf, size_t n, double bps) {
  if (bps >= 1e6)
    snprintf(buf, n, "%.1f MB/s", bps / 1e6);
  else if (bps >= 1e3)
    snprintf(buf, n, "%.1f kB/s", bps / 1e3);
  else
    snprintf(buf, n, "%.0f B/s", bps);
}

static void render_row(eg_display *d, const row *r, char *buf, size_t n) {
  if (r->has_result) {
    snprintf(buf, n, "%-*.*s  %s", d->label_w, d->label_w, r->label, r->result);
    return;
  }
  if (r->total) {
    char rate[32] = "";
    if (r->rate > 0) fmt_rate(rate, sizeof rate, r->rate);
    const int pct = (int)(r->done * 100 / r->total);
    char bar[21];
    const int fill = pct / 5;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = '\0';
    snprintf(buf, n, "%-*.*s  %-22.22s [%s] %3d%%  %s", d->label_w, d->label_w, r->label, r->state, bar, pct, rate);
    return;
  }
  snprintf(buf, n, "%-*.*s  %s", d->label_w, d->label_w, r->label, r->state);
}

static void clear_live(eg_display *d) {
  if (d->mode != EG_DISPLAY_TTY || !d->drawn) return;
  fprintf(d->out, "\x1b[%zuA", d->drawn); /* up to the first live line */
  fputs("\x1b[J", d->out);                /* clear to the end of the screen */
  d->drawn = 0;
}

static void redraw(eg_display *d) {
  if (d->mode != EG_DISPLAY_TTY || d->finished) return;
  clear_live(d);
  char line[512];
  for (size_t i = 0; i < d->nrows; i++) {
    render_row(d, &d->rows[i], line, sizeof line);
    fprintf(d->out, "%s\x1b[K\n", line);
  }
  d->drawn = d->nrows;
  d->dirty = false;
  fflush(d->out);
}

static void json_state(eg_display *d, size_t i, const char *event) {
  const row *r = &d->rows[i];
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", event);
  eg_jw_str(&w, "slot", r->label);
  eg_jw_str(&w, "state", r->state);
  if (r->total) {
    eg_jw_uint(&w, "done", r->done);
    eg_jw_uint(&w, "total", r->total);
    eg_jw_num(&w, "rate_bps", r->rate);
  }
  char *s = eg_jw_close(&w);
  if (s) {
    fprintf(d->out, "%s\n", s);
    fflush(d->out);
    free(s);
  }
}

void eg_display_state(eg_display *d, size_t i, const char *state) {
  if (i >= d->nrows) return;
  row *r = &d->rows[i];
  if (strcmp(r->state, state) == 0) return;
  snprintf(r->state, sizeof r->state, "%s", state);
  r->done = r->total = 0;
  r->rate = 0;
  r->last_quarter = -1;
  r->has_result = false;
  switch (d->mode) {
  case EG_DISPLAY_TTY:
    d->dirty = true;
    return;
  case EG_DISPLAY_PLAIN:
    fprintf(d->out, "%s: %s\n", r->label, state);
    fflush(d->out);
    return;
  case EG_DISPLAY_JSON:
    json_state(d, i, "state");
    return;
  }
}

void eg_display_progress(eg_display *d, size_t i, uint64_t done, uint64_t total) {
  if (i >= d->nrows) return;
  row *r = &d->rows[i];
  const uint64_t now = uv_now(d->loop);
  if (done == 0 || r->total != total || done < r->done) {
    r->rate_t0 = now;
    r->rate_b0 = done;
  } else if (now > r->rate_t0 + 300) {
    r->rate = (double)(done - r->rate_b0) * 1000.0 / (double)(now - r->rate_t0);
  }
  r->done = done;
  r->total = total;
  switch (d->mode) {
  case EG_DISPLAY_TTY:
    d->dirty = true;
    return;
  case EG_DISPLAY_PLAIN: {
    const int q = total ? (int)(done * 4 / total) : 4;
    if (q > r->last_quarter && q > 0) {
      r->last_quarter = q;
      char rate[32] = "";
      if (r->rate > 0) fmt_rate(rate, sizeof rate, r->rate);
      fprintf(d->out, "%s: %s %d%%%s%s\n", r->label, r->state, q * 25, rate[0] ? " " : "", rate);
      fflush(d->out);
    }
    return;
  }
  case EG_DISPLAY_JSON:
    if (done == total || now >= r->last_json_ms + 500) {
      r->last_json_ms = now;
      json_state(d, i, "progress");
    }
    return;
  }
}

void eg_display_result(eg_display *d, size_t i, bool ok, const char *text) {
  if (i >= d->nrows) return;
  row *r = &d->rows[i];
  r->has_result = true;
  r->ok = ok;
  snprintf(r->result, sizeof r->result, "%s", text);
  switch (d->mode) {
  case EG_DISPLAY_TTY:
    d->dirty = true;
    redraw(d);
    return;
  case EG_DISPLAY_PLAIN:
    fprintf(d->out, "%s: %s\n", r->label, text);
    fflush(d->out);
    return;
  case EG_DISPLAY_JSON:
    return; /* the caller emits the full record */
  }
}

void eg_display_message(eg_display *d, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (d->mode == EG_DISPLAY_JSON) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "message");
    eg_jw_str(&w, "text", msg);
    char *s = eg_jw_close(&w);
    if (s) {
      fprintf(d->out, "%s\n", s);
      free(s);
    }
    fflush(d->out);
    return;
  }
  clear_live(d);
  fprintf(d->out, "%s\n", msg);
  d->dirty = true;
  if (d->mode == EG_DISPLAY_TTY && !d->finished) redraw(d);
  fflush(d->out);
}

void eg_display_json(eg_display *d, const char *line) {
  if (d->mode != EG_DISPLAY_JSON || !line) return;
  fprintf(d->out, "%s\n", line);
  fflush(d->out);
}

void eg_display_finish(eg_display *d) {
  if (d->mode == EG_DISPLAY_TTY && !d->finished) {
    d->dirty = true;
    redraw(d);
  }
  d->finished = true;
  if (d->timer_on) uv_timer_stop(&d->timer);
}
