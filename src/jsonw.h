/* jsonw.h - espgang's one JSON writer: one-line events (--json output,
 * records spilled to stderr when the database refuses them) and whole
 * documents streamed to a FILE (reports).
 *
 * Event:    eg_jw w; eg_jw_open(&w); eg_jw_str(&w, "k", "v"); ...;
 *           char *line = eg_jw_close(&w);  (malloc'd, no newline; NULL if out of memory)
 * Document: eg_jw_start(&w, stdout); eg_jw_array(&w, "units");
 *           eg_jw_object(&w, NULL); ... eg_jw_end(&w); eg_jw_end(&w);
 *           eg_jw_finish(&w);              (closes what is open; false on a write error)
 * Inside an array the key is NULL; inside an object it names the member.
 * eg_jw_newline() puts a line break before the next value, so a document can
 * keep one record per line (grep-able) and still be one JSON text.
 * Strings are escaped per RFC 8259; NULL strings are written as null.
 */
#ifndef EG_JSONW_H
#define EG_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "unit.h"

#define EG_JW_DEPTH 16

typedef struct eg_jw {
  FILE *f;
  char *buf;
  size_t len;
  bool own;               /* f is our memstream (eg_jw_open) */
  bool nl;                /* a line break before the next value */
  int depth;              /* containers open; 1 = the outer object */
  int n[EG_JW_DEPTH];     /* members written per open container */
  bool arr[EG_JW_DEPTH];  /* that container is an array */
} eg_jw;

void eg_jw_open(eg_jw *w);
void eg_jw_start(eg_jw *w, FILE *out);
void eg_jw_object(eg_jw *w, const char *key);
void eg_jw_array(eg_jw *w, const char *key);
void eg_jw_end(eg_jw *w);
void eg_jw_newline(eg_jw *w);
bool eg_jw_finish(eg_jw *w);
void eg_jw_null(eg_jw *w, const char *key);
/* A number with `decimals` digits after the point (0..9); NaN/inf -> null. */
void eg_jw_fixed(eg_jw *w, const char *key, double val, int decimals);
/* A member whose value is already JSON (a number as printed, a nested object
 * or array from another writer); NULL -> null. The caller vouches for it. */
void eg_jw_raw(eg_jw *w, const char *key, const char *json);
void eg_jw_str(eg_jw *w, const char *key, const char *val);
void eg_jw_int(eg_jw *w, const char *key, long long val);
void eg_jw_uint(eg_jw *w, const char *key, unsigned long long val);
void eg_jw_num(eg_jw *w, const char *key, double val);
void eg_jw_bool(eg_jw *w, const char *key, bool val);
char *eg_jw_close(eg_jw *w);
/* Write `s` as a quoted, escaped JSON string (RFC 8259); NULL -> null.
 * Bytes that are not valid UTF-8 become U+FFFD, so the output stays valid
 * JSON whatever a port name, USB string or chip message contains. */
void eg_json_quote(FILE *f, const char *s);
/* The same for n bytes (may contain NUL). */
void eg_json_quote_n(FILE *f, const char *s, size_t n);

/* Every field of a unit record as one JSON object with "event": event. */
char *eg_json_unit(const eg_unit_record *u, const char *event);
/* Append the record's members to an open writer. */
void eg_jw_unit(eg_jw *w, const eg_unit_record *u);

#endif
