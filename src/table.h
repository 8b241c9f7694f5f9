/* table.h - espgang's one table printer: rows of typed cells rendered as an
 * aligned terminal table, as CSV (RFC 4180) or as JSON, from the same rows.
 *
 *   static const eg_col cols[] = {{"slot"}, {"units", EG_RIGHT}, {"message", .wide = true, .shrink = true}};
 *   eg_table *t = eg_table_new(cols, 3);
 *   eg_table_str(t, "A1"); eg_table_int(t, 16); eg_table_str(t, NULL);   (one row: one cell per column)
 *   eg_table_text(t, stdout, 100, false);  or eg_table_csv / eg_table_json
 *   eg_table_free(t);
 *
 * Cells: text (NULL = no value), integers, fixed-point numbers. No value
 * shows as "-" in text, an empty field in CSV and null in JSON. Text output
 * replaces control characters with spaces and measures width in UTF-8 code
 * points; when the table is wider than `width`, the .shrink columns are
 * cut (widest first, ending in "…", U+2026) until it fits. .wide columns appear
 * only when `wide` is true, in every format. Out of memory is sticky: the
 * print functions then return EG_NOMEM and print nothing.
 */
#ifndef EG_TABLE_H
#define EG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "errors.h"
#include "jsonw.h"

typedef enum eg_align { EG_LEFT, EG_RIGHT } eg_align;

typedef struct eg_col {
  const char *name;   /* header, CSV header and JSON key */
  eg_align align;
  bool wide;          /* only with --wide */
  bool shrink;        /* may be cut to fit the width */
} eg_col;

typedef struct eg_table eg_table;

eg_table *eg_table_new(const eg_col *cols, size_t ncols); /* NULL if out of memory */
void eg_table_free(eg_table *t);

void eg_table_str(eg_table *t, const char *s);
void eg_table_int(eg_table *t, long long v);
void eg_table_num(eg_table *t, double v, int decimals); /* NaN: no value */
void eg_table_null(eg_table *t);
size_t eg_table_rows(const eg_table *t);
const eg_col *eg_table_cols(const eg_table *t); /* as given to eg_table_new */

/* Text: header and rows; width 0 = no limit. Columns are separated by two
 * spaces; the last text column is not padded. */
eg_err eg_table_text(const eg_table *t, FILE *out, unsigned width, bool wide);
/* CSV: header line, then rows; every line ends in CRLF; fields holding a
 * comma, quote, CR or LF are quoted with quotes doubled. */
eg_err eg_table_csv(const eg_table *t, FILE *out, bool wide);
/* HTML: a <table> with class `cls`; every cell carries data-k="column" and
 * numbers also data-v="value" (what a test or a script reads back). Text is
 * escaped; no value shows as "-". */
eg_err eg_table_html(const eg_table *t, FILE *out, const char *cls, bool wide);
/* Text as HTML character data / attribute value (&, <, >, ", '). */
void eg_html_escape(FILE *out, const char *s);
/* JSON: the rows as an array of objects, one per line, into an open writer
 * under `key` (NULL inside an array). */
eg_err eg_table_json(const eg_table *t, eg_jw *w, const char *key, bool wide);

#endif
