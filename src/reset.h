/* reset.h - esptool's DTR/RTS sequences as data (protocol doc §3.1).
 *
 * Convention: 1 = asserted (the pin driven low through the adapter's
 * auto-reset circuit: DTR -> GPIO0 (IO0), RTS -> EN); -1 = leave the line as
 * it is. A plan is a list of steps ending with {EG_RESET_END}; each step sets
 * the lines (both in one ioctl when both are given, as esptool's
 * UnixTightReset does) and then waits wait_ms. The device state machine runs
 * a plan with its timer; nothing here does I/O.
 */
#ifndef EG_RESET_H
#define EG_RESET_H

#include <stdbool.h>
#include <stdint.h>

#include "options.h"

#define EG_RESET_END -2

typedef struct eg_reset_step {
  int8_t dtr, rts;  /* 1, 0, -1 (leave), or EG_RESET_END in dtr */
  uint16_t wait_ms; /* after setting the lines */
} eg_reset_step;

/* The plan for connect attempt `attempt` (0-based). default-reset cycles
 * through esptool's POSIX order: UnixTight(50 ms), UnixTight(550 ms),
 * Classic(50 ms), Classic(550 ms). usb-reset is the USB-JTAG-Serial
 * sequence. NULL for no-reset / no-reset-no-sync. `name` gets a label. */
const eg_reset_step *eg_reset_plan(eg_before before, int attempt, const char **name);
/* --after hard-reset: RTS pulse, 100 ms (esptool HardReset); over the
 * chip's own USB port 200 ms and 200 ms more to settle. */
const eg_reset_step *eg_hard_reset_plan(void);
const eg_reset_step *eg_usb_hard_reset_plan(void);

#endif
