/* text.c - control characters found and escaped (text.h). */
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n) and its code point; 0 when
 * s[0] does not start one (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
  const unsigned char c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) return *cp = c, 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1Fu, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0Fu, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07u, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = v << 6 | (s[i] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

static bool is_control(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

bool eg_text_has_control(const char *s, size_t n, size_t *at) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp = 0;
    const size_t len = utf8_seq(u + i, n - i, &cp);
    if (!len || is_control(cp)) {
      if (at) *at = i;
      return true;
    }
    i += len;
  }
  return false;
}

/* The shown form of the character at u[i] into piece (>= 12 bytes); *len
 * gets how many input bytes it covers. Returns the piece's length. */
static size_t piece_at(const unsigned char *u, size_t n, size_t i, char *piece, size_t *len) {
  uint32_t cp = 0;
  *len = utf8_seq(u + i, n - i, &cp);
  if (!*len) { /* a byte that is not UTF-8 */
    *len = 1;
    return (size_t)snprintf(piece, 12, "\\x%02x", u[i]);
  }
  if (cp == '\n' || cp == '\r' || cp == '\t')
    return (size_t)snprintf(piece, 12, "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
  if (cp < 0x20 || cp == 0x7F) return (size_t)snprintf(piece, 12, "\\x%02x", (unsigned)cp);
  if (is_control(cp)) return (size_t)snprintf(piece, 12, "\\u%04x", (unsigned)cp);
  memcpy(piece, u + i, *len);
  return *len;
}

char *eg_text_escape_n(char *out, size_t cap, const char *s, size_t n) {
  static const char dots[] = "...";
  const unsigned char *u = (const unsigned char *)s;
  char piece[12];
  size_t len, total = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i += len) total += piece_at(u, n, i, piece, &len);
  /* When it all fits, all of it; else as many whole pieces as leave room
   * for "..." (never half an escape or half a UTF-8 sequence). */
  const size_t room = total < cap ? cap : cap > sizeof dots ? cap - (sizeof dots - 1) : 0;
  size_t o = 0;
  for (size_t i = 0; i < n; i += len) {
    const size_t plen = piece_at(u, n, i, piece, &len);
    if (o + plen >= room) {
      if (cap >= sizeof dots) memcpy(out + o, dots, sizeof dots);
      return out;
    }
    memcpy(out + o, piece, plen);
    out[o += plen] = '\0';
  }
  return out;
}

char *eg_text_escape(char *out, size_t cap, const char *s) { return eg_text_escape_n(out, cap, s ? s : "", s ? strlen(s) : 0); }
