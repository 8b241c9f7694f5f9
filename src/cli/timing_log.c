/* timing_log.c - --timing-log FILE: the device's per-request timing records
 * (timing.h), written after the loop has ended (no file I/O in the loop). */
#include <stdlib.h>

#include "cli.h"
#include "timing.h"

eg_timing_log *eg_cli_timing_begin(const eg_cli *c) {
  return c->timing_log ? calloc(1, sizeof(eg_timing_log)) : NULL;
}

bool eg_cli_timing_end(const eg_cli *c, eg_timing_log *t) {
  if (!t) return true;
  eg_fault f;
  eg_fault_clear(&f);
  const bool ok = eg_timing_write(t, c->timing_log, &f) == EG_OK;
  if (!ok) eg_cli_error("--timing-log: %s", f.msg);
  eg_timing_free(t);
  free(t);
  return ok;
}
