/* text.h - text espgang did not write (port names, slot labels from a
 * manifest, USB strings, file names, what a device sent), made safe to show
 * on a terminal or in a one-line message.
 *
 * A control character in such text can clear the screen, move the cursor,
 * retitle the terminal (ESC, C1 CSI 0x9B), split one log line into two
 * (newline) or reorder what is shown (bidi overrides). These functions find
 * them and escape them; they never allocate.
 *
 * What counts as a control character here: C0 (0x00-0x1F, so newline and
 * tab too), DEL (0x7F), C1 (U+0080-U+009F), the line and paragraph
 * separators U+2028/U+2029, the bidi embeddings/overrides/isolates
 * U+202A-U+202E and U+2066-U+2069, and any byte that is not part of valid
 * UTF-8 (a lone 0x9B byte is CSI to an 8-bit terminal).
 */
#ifndef EG_TEXT_H
#define EG_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) holds a control character; *at (may be NULL) gets the
 * byte offset of the first. */
bool eg_text_has_control(const char *s, size_t n, size_t *at);

/* Copy s[0..n) into out (cap bytes, cap >= 1; always NUL-terminated) with
 * each control character escaped: \n \r \t as such, other single bytes as
 * \xHH, escaped code points (C1, separators, bidi) as \uHHHH. Text that does
 * not fit is cut at a character boundary and ends in "...". Returns out. */
char *eg_text_escape_n(char *out, size_t cap, const char *s, size_t n);
/* Same for a NUL-terminated string (NULL shows as ""). */
char *eg_text_escape(char *out, size_t cap, const char *s);

#endif
