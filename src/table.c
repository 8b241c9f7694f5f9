/* table.c - the one table printer (see table.h). */
#include "table.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum cell_kind { C_NULL, C_TEXT, C_NUM } cell_kind;

typedef struct cell {
  cell_kind kind;
  char *text;       /* C_TEXT: the string; C_NUM: the number as printed */
} cell;

struct eg_table {
  const eg_col *cols;
  size_t ncols;
  cell *cells;      /* row-major */
  size_t ncells, cap;
  bool oom;
};

eg_table *eg_table_new(const eg_col *cols, size_t ncols) {
  eg_table *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->cols = cols;
  t->ncols = ncols;
  return t;
}

void eg_table_free(eg_table *t) {
  if (!t) return;
  for (size_t i = 0; i < t->ncells; i++) free(t->cells[i].text);
  free(t->cells);
  free(t);
}

static void push(eg_table *t, cell_kind kind, char *text) {
  if (t->oom || (kind != C_NULL && !text)) {
    t->oom = true;
    free(text);
    return;
  }
  if (t->ncells == t->cap) {
    const size_t cap = t->cap ? 2 * t->cap : 64;
    cell *c = realloc(t->cells, cap * sizeof *c);
    if (!c) {
      t->oom = true;
      free(text);
      return;
    }
    t->cells = c, t->cap = cap;
  }
  t->cells[t->ncells++] = (cell){kind, text};
}

void eg_table_str(eg_table *t, const char *s) { push(t, s ? C_TEXT : C_NULL, s ? strdup(s) : NULL); }
void eg_table_null(eg_table *t) { push(t, C_NULL, NULL); }

void eg_table_int(eg_table *t, long long v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", v);
  push(t, C_NUM, strdup(buf));
}

void eg_table_num(eg_table *t, double v, int decimals) {
  if (isnan(v) || isinf(v)) {
    push(t, C_NULL, NULL);
    return;
  }
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", decimals < 0 ? 0 : decimals > 9 ? 9 : decimals, v);
  push(t, C_NUM, strdup(buf));
}

const eg_col *eg_table_cols(const eg_table *t) { return t->cols; }

size_t eg_table_rows(const eg_table *t) { return t->ncols ? t->ncells / t->ncols : 0; }

static const cell *at(const eg_table *t, size_t row, size_t col) { return &t->cells[row * t->ncols + col]; }

/* ---------------------------------------------------------------- text */

/* Display width in UTF-8 code points. */
static size_t width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) w++;
  return w;
}

/* Write at most `w` columns of s (control characters as spaces); when s is
 * wider, w-1 columns and an ellipsis. Returns the columns written. */
static size_t put_cut(FILE *out, const char *s, size_t w) {
  const bool cut = width(s) > w;
  const size_t keep = cut ? (w ? w - 1 : 0) : w;
  size_t col = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    const bool start = (*p & 0xC0) != 0x80;
    if (start && col == keep) break;
    if (start) col++;
    fputc(*p < 0x20 || *p == 0x7F ? ' ' : *p, out);
  }
  if (cut && w) fputs("\xe2\x80\xa6", out), col++;
  return col;
}

static void pad(FILE *out, size_t n) {
  while (n--) fputc(' ', out);
}

static const char *shown(const cell *c) { return c->kind == C_NULL ? "-" : c->text; }

eg_err eg_table_text(const eg_table *t, FILE *out, unsigned total, bool wide) {
  if (t->oom) return EG_NOMEM;
  const size_t nrows = eg_table_rows(t);
  size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof *w), *minw = calloc(t->ncols ? t->ncols : 1, sizeof *minw);
  if (!w || !minw) {
    free(w), free(minw);
    return EG_NOMEM;
  }
  size_t sum = 0, nshown = 0, last = 0;
  for (size_t c = 0; c < t->ncols; c++) {
    if (t->cols[c].wide && !wide) continue;
    w[c] = width(t->cols[c].name);
    for (size_t r = 0; r < nrows; r++) {
      const size_t cw = width(shown(at(t, r, c)));
      if (cw > w[c]) w[c] = cw;
    }
    /* A cut column keeps room for its header, or 4 columns. */
    minw[c] = t->cols[c].shrink ? (width(t->cols[c].name) > 4 ? width(t->cols[c].name) : 4) : w[c];
    if (minw[c] > w[c]) minw[c] = w[c];
    sum += w[c] + (nshown ? 2 : 0);
    nshown++, last = c;
  }
  /* Cut the widest shrinkable column, one column at a time, until it fits. */
  while (total && sum > total) {
    size_t best = SIZE_MAX;
    for (size_t c = 0; c < t->ncols; c++)
      if (w[c] > minw[c] && (best == SIZE_MAX || w[c] > w[best])) best = c;
    if (best == SIZE_MAX) break;
    w[best]--, sum--;
  }
  for (size_t r = 0; r <= nrows; r++) {
    bool first = true;
    for (size_t c = 0; c < t->ncols; c++) {
      if (t->cols[c].wide && !wide) continue;
      const char *v = r == 0 ? t->cols[c].name : shown(at(t, r - 1, c));
      const bool right = t->cols[c].align == EG_RIGHT;
      if (!first) fputs("  ", out);
      first = false;
      const size_t vw = width(v) < w[c] ? width(v) : w[c];
      if (right) pad(out, w[c] - vw);
      put_cut(out, v, w[c]);
      if (!right && c != last) pad(out, w[c] - vw);
    }
    fputc('\n', out);
  }
  free(w), free(minw);
  return ferror(out) ? EG_IO : EG_OK;
}

/* ---------------------------------------------------------------- CSV */

static void csv_field(FILE *out, const char *s) {
  if (!s) return;
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"') fputc('"', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

eg_err eg_table_csv(const eg_table *t, FILE *out, bool wide) {
  if (t->oom) return EG_NOMEM;
  const size_t nrows = eg_table_rows(t);
  for (size_t r = 0; r <= nrows; r++) {
    bool first = true;
    for (size_t c = 0; c < t->ncols; c++) {
      if (t->cols[c].wide && !wide) continue;
      if (!first) fputc(',', out);
      first = false;
      csv_field(out, r == 0 ? t->cols[c].name : at(t, r - 1, c)->text);
    }
    fputs("\r\n", out);
  }
  return ferror(out) ? EG_IO : EG_OK;
}

/* ---------------------------------------------------------------- HTML */

void eg_html_escape(FILE *out, const char *s) {
  for (; s && *s; s++) switch (*s) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\'': fputs("&#39;", out); break;
    default: fputc((unsigned char)*s < 0x20 && *s != '\n' ? ' ' : *s, out);
    }
}

eg_err eg_table_html(const eg_table *t, FILE *out, const char *cls, bool wide) {
  if (t->oom) return EG_NOMEM;
  const size_t nrows = eg_table_rows(t);
  fputs("<table class=\"", out);
  eg_html_escape(out, cls);
  fputs("\">\n<thead><tr>", out);
  for (size_t c = 0; c < t->ncols; c++) {
    if (t->cols[c].wide && !wide) continue;
    fputs(t->cols[c].align == EG_RIGHT ? "<th class=\"r\">" : "<th>", out);
    eg_html_escape(out, t->cols[c].name);
    fputs("</th>", out);
  }
  fputs("</tr></thead>\n<tbody>\n", out);
  for (size_t r = 0; r < nrows; r++) {
    fputs("<tr>", out);
    for (size_t c = 0; c < t->ncols; c++) {
      if (t->cols[c].wide && !wide) continue;
      const cell *v = at(t, r, c);
      fputs("<td data-k=\"", out);
      eg_html_escape(out, t->cols[c].name);
      if (v->kind == C_NUM) fprintf(out, "\" data-v=\"%s", v->text);
      fputs(t->cols[c].align == EG_RIGHT ? "\" class=\"r\">" : "\">", out);
      eg_html_escape(out, shown(v));
      fputs("</td>", out);
    }
    fputs("</tr>\n", out);
  }
  fputs("</tbody></table>\n", out);
  return ferror(out) ? EG_IO : EG_OK;
}

/* ---------------------------------------------------------------- JSON */

eg_err eg_table_json(const eg_table *t, eg_jw *w, const char *key, bool wide) {
  if (t->oom) return EG_NOMEM;
  const size_t nrows = eg_table_rows(t);
  eg_jw_array(w, key);
  for (size_t r = 0; r < nrows; r++) {
    eg_jw_newline(w);
    eg_jw_object(w, NULL);
    for (size_t c = 0; c < t->ncols; c++) {
      if (t->cols[c].wide && !wide) continue;
      const cell *v = at(t, r, c);
      switch (v->kind) {
      case C_NULL: eg_jw_null(w, t->cols[c].name); break;
      case C_TEXT: eg_jw_str(w, t->cols[c].name, v->text); break;
      case C_NUM: eg_jw_raw(w, t->cols[c].name, v->text); break;
      }
    }
    eg_jw_end(w);
  }
  if (nrows) eg_jw_newline(w);
  eg_jw_end(w);
  return w->f && !ferror(w->f) ? EG_OK : EG_IO;
}
