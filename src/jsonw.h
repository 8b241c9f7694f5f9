/* jsonw.h - a tiny JSON object writer for one-line events (--json output,
 * records spilled to stderr when the database refuses them).
 *
 * Usage: eg_jw w; eg_jw_open(&w); eg_jw_str(&w, "k", "v"); ...;
 * char *line = eg_jw_close(&w);   (malloc'd, no newline; NULL if out of memory)
 * Strings are escaped per RFC 8259; NULL strings are written as null.
 */
#ifndef EG_JSONW_H
#define EG_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "unit.h"

typedef struct eg_jw {
  FILE *f;
  char *buf;
  size_t len;
  int n; /* members written */
} eg_jw;

void eg_jw_open(eg_jw *w);
void eg_jw_str(eg_jw *w, const char *key, const char *val);
void eg_jw_int(eg_jw *w, const char *key, long long val);
void eg_jw_uint(eg_jw *w, const char *key, unsigned long long val);
void eg_jw_num(eg_jw *w, const char *key, double val);
void eg_jw_bool(eg_jw *w, const char *key, bool val);
/* A member whose value is already JSON (a nested object or array written by
 * another writer); NULL -> null. The caller vouches that it is valid JSON. */
void eg_jw_raw(eg_jw *w, const char *key, const char *json);
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
