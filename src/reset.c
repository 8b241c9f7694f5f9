#include "reset.h"

#include <stddef.h>

#define END {EG_RESET_END, EG_RESET_END, 0}

/* UnixTightReset(reset_delay): (0,0) (1,1) (0,1) 100 ms (1,0) delay (0,0),
 * then DTR=0 once more (esptool's trailing _setDTR(False)). */
static const eg_reset_step tight_50[] = {{0, 0, 0}, {1, 1, 0}, {0, 1, 100}, {1, 0, 50}, {0, 0, 0}, {0, -1, 0}, END};
static const eg_reset_step tight_550[] = {{0, 0, 0}, {1, 1, 0}, {0, 1, 100}, {1, 0, 550}, {0, 0, 0}, {0, -1, 0}, END};
/* ClassicReset(reset_delay): DTR=0; RTS=1 (EN low); 100 ms; DTR=1 (IO0 low);
 * RTS=0 (EN high: the chip boots and samples IO0); delay; DTR=0. */
static const eg_reset_step classic_50[] = {{0, -1, 0}, {-1, 1, 100}, {1, -1, 0}, {-1, 0, 50}, {0, -1, 0}, END};
static const eg_reset_step classic_550[] = {{0, -1, 0}, {-1, 1, 100}, {1, -1, 0}, {-1, 0, 550}, {0, -1, 0}, END};
/* USBJTAGSerialReset: RTS=0, DTR=0; 100 ms; DTR=1, RTS=0; 100 ms; RTS=1,
 * DTR=0, RTS=1; 100 ms; DTR=0, RTS=0 (protocol doc §3.1). One line per step,
 * in esptool's order: the USB-Serial/JTAG peripheral acts on each line
 * change, and "RTS=1, DTR=0" must pass through (1,1), not (0,0) - which
 * would clear the download flag before the reset (esptool's comment "Calls
 * inverted to go through (1,1) instead of (0,0)"). Setting both in one step
 * would send DTR first over RFC 2217 (two SET-CONTROLs). */
static const eg_reset_step usb_jtag[] = {{-1, 0, 0}, {0, -1, 100}, {1, -1, 0}, {-1, 0, 100}, {-1, 1, 0},
                                         {0, -1, 0},  {-1, 1, 100}, {0, -1, 0}, {-1, 0, 0}, END};
/* HardReset: RTS=1 (EN low), 100 ms, RTS=0 (DTR stays released). */
static const eg_reset_step hard[] = {{0, 1, 100}, {0, 0, 0}, END};
/* HardReset over the chip's own USB (uses_usb): RTS=1, 200 ms, RTS=0, then
 * 200 ms for the port to settle (esptool reset.py HardReset). */
static const eg_reset_step hard_usb[] = {{0, 1, 200}, {0, 0, 200}, END};

const eg_reset_step *eg_reset_plan(eg_before before, int attempt, const char **name) {
  static const struct {
    const eg_reset_step *steps;
    const char *name;
  } order[] = {{tight_50, "UnixTightReset(0.05)"},
               {tight_550, "UnixTightReset(0.55)"},
               {classic_50, "ClassicReset(0.05)"},
               {classic_550, "ClassicReset(0.55)"}};
  switch (before) {
  case EG_BEFORE_DEFAULT_RESET: {
    const size_t i = (size_t)(attempt < 0 ? 0 : attempt) % (sizeof order / sizeof order[0]);
    if (name) *name = order[i].name;
    return order[i].steps;
  }
  case EG_BEFORE_USB_RESET:
    if (name) *name = "USBJTAGSerialReset";
    return usb_jtag;
  case EG_BEFORE_NO_RESET:
  case EG_BEFORE_NO_RESET_NO_SYNC:
    break;
  }
  if (name) *name = "none";
  return NULL;
}

const eg_reset_step *eg_hard_reset_plan(void) { return hard; }
const eg_reset_step *eg_usb_hard_reset_plan(void) { return hard_usb; }
