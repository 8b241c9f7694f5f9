/* jobs.h - one place that turns what the user asked for (eg_settings, from
 * a manifest or from the command line) into what the scheduler runs: the
 * device configuration, the operations, the rule checks that can be made
 * before any board is touched.
 */
#ifndef EG_JOBS_H
#define EG_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "device.h"
#include "manifest.h"
#include "options.h"
#include "prep.h"
#include "stubfile.h"

/* Is any stub loaded? */
bool eg_stubs_any(const eg_stub *const stubs[EG_CHIP__COUNT]);
/* Compress the images? (-1: when a stub runs, esptool's rule.) */
bool eg_settings_compress(const eg_settings *s, bool any_stub);

/* Fill cfg from s. stubs: indexed by chip id (entries may be NULL: ROM
 * only); images may be NULL when no operation writes. Checks the rules
 * that do not depend on a board (EG_USAGE with the reason in why, one line
 * naming the setting as the manifest spells it). */
eg_err eg_dev_config_build(eg_dev_config *cfg, const eg_settings *s, const eg_stub *const stubs[EG_CHIP__COUNT],
                           eg_imageset *images, bool trace, char *why, size_t whylen);

/* Can `port` be used as these settings ask, known before it is opened:
 * the name must be a port (eg_port_check: exit 2 otherwise), and a port
 * without DTR/RTS (a pseudo-terminal, raw TCP) cannot do a reset before or
 * after; both impossible options are named in one message. EG_OK or the
 * error with a one-line reason in why. */
eg_err eg_jobs_check_port(const char *port, const eg_settings *s, char *why, size_t whylen);

/* For -p ports given as device paths: what the OS says about each (one
 * listing for all) - the USB location, and the transport from the USB
 * VID:PID (the chip's own USB-Serial/JTAG or USB-OTG port: its resets and
 * its re-enumeration; a bridge: EG_USB_NONE), as a manifest's slots get
 * them. URLs and unlisted paths are left as they are. */
struct eg_job;
void eg_jobs_identify_ports(struct eg_job *jobs, size_t n);

/* The operations that write nimages images: the whole-chip erase first when
 * s->erase is all, then one WRITE (verify: VERIFY) per image. ops must hold
 * nimages + 1. Returns the count. */
size_t eg_ops_for_images(eg_dev_op *ops, const eg_settings *s, size_t nimages, bool verify_only);

/* A manifest's images and operations, for each chip it may meet: one plan
 * for every chip (images: a list), or one per chip (images: {CHIP: [...]},
 * a mixed rack). Each plan's images are patched for its chip and compressed
 * once (when its chip's stub runs), before any port starts. */
typedef struct eg_plans {
  bool per_chip;
  eg_dev_plan any;                                /* images: a list */
  eg_dev_plan plan[EG_CHIP__COUNT];               /* images per chip */
  const eg_dev_plan *by_chip[EG_CHIP__COUNT];     /* for eg_dev_config.plans */
  const eg_image **imgs[EG_CHIP__COUNT + 1];      /* owned */
  eg_dev_op *ops[EG_CHIP__COUNT + 1];             /* owned */
} eg_plans;

/* EG_OK, or the imageset's error in f (a header that cannot be patched,
 * out of memory). */
eg_err eg_plans_build(eg_plans *p, const eg_manifest *m, const eg_stub *const stubs[EG_CHIP__COUNT], eg_fault *f);
/* Point cfg at the plans (plans per chip, or the one plan's images). */
void eg_plans_config(const eg_plans *p, eg_dev_config *cfg);
void eg_plans_free(eg_plans *p);

#endif
