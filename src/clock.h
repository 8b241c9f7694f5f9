/* clock.h - the one wall clock of espgang: Unix epoch milliseconds for the
 * log, and their ISO-8601 form. (Intervals inside the loop use uv_now.) */
#ifndef EG_CLOCK_H
#define EG_CLOCK_H

#include <stdint.h>

/* Milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME). */
int64_t eg_clock_epoch_ms(void);
/* "2024-05-01T12:34:56.789Z" (UTC; strings of this form sort as times).
 * buf must hold 32 bytes; returns buf. */
const char *eg_clock_iso_ms(int64_t ms, char buf[32]);

#endif
