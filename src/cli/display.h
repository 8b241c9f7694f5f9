/* display.h - what the operator sees while many ports run.
 *
 * Three modes:
 *   TTY    one live line per port (state, percent, rate), redrawn in place
 *          at most 5 times a second; messages scroll above them.
 *   plain  (stdout not a terminal) one line per state change, progress at
 *          each 25 %, the result; no control characters.
 *   json   one JSON object per line per event, for automation.
 * Rows are fixed at creation (one per port/slot). Loop thread only.
 */
#ifndef EG_DISPLAY_H
#define EG_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "unit.h"

typedef enum eg_display_mode { EG_DISPLAY_TTY, EG_DISPLAY_PLAIN, EG_DISPLAY_JSON } eg_display_mode;

typedef struct eg_display eg_display;

eg_display *eg_display_new(uv_loop_t *loop, FILE *out, eg_display_mode mode, size_t rows, const char *const *labels);
void eg_display_free(eg_display *d);
eg_display_mode eg_display_mode_of(const eg_display *d);

/* A row's state text ("sync", "write 0x10000", "verify"). */
void eg_display_state(eg_display *d, size_t row, const char *state);
/* Progress of the row's current step, in bytes. */
void eg_display_progress(eg_display *d, size_t row, uint64_t done, uint64_t total);
/* Final text of the row ("PASS 12.3 s", "FAIL write: ..."). */
void eg_display_result(eg_display *d, size_t row, bool ok, const char *text);
/* A permanent message (printed above the live rows). In JSON mode it is
 * emitted as {"event":"message","text":...}. */
void eg_display_message(eg_display *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A raw JSON line (JSON mode only; ignored otherwise). */
void eg_display_json(eg_display *d, const char *line);
/* Stop live redraws; leave the final rows on screen. */
void eg_display_finish(eg_display *d);

#endif
