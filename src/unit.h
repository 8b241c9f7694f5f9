/* unit.h - what espgang knows about one unit (one attempt on one port): the
 * record the device state machine fills, the display shows and db.c stores.
 * Plain data, safe to copy.
 */
#ifndef EG_UNIT_H
#define EG_UNIT_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

typedef enum eg_result {
  EG_RESULT_IN_PROGRESS, /* stored as "in_progress" */
  EG_RESULT_PASS,        /* "pass" */
  EG_RESULT_FAIL,        /* "fail" */
  EG_RESULT_ABORTED,     /* "aborted" */
  EG_RESULT_SKIPPED      /* "skipped": deliberately not flashed (it already holds the images) */
} eg_result;

const char *eg_result_name(eg_result r);

typedef struct eg_unit_record {
  char slot[64];          /* the manifest's label, or the port name */
  char port[256];         /* as opened: /dev/ttyUSB3, socket://127.0.0.1:5000 */
  char usb_location[64];  /* "1-1.4" or "" */
  int attempt;            /* 1 for the first try of this unit in the run */

  /* Identity, filled as it is learned; has_* say what is known. */
  char chip[32];          /* "ESP32" */
  char chip_desc[64];     /* "ESP32-D0WDQ6-V3 (revision v3.0)" */
  int rev_major, rev_minor;
  bool has_mac;
  uint8_t mac[6];
  bool has_flash_id;
  uint32_t flash_id;      /* RDID as read: mfr | type << 8 | capacity << 16 */
  uint32_t flash_size;    /* bytes; 0 unknown */
  int crystal_mhz;        /* 0 unknown */

  uint32_t baud;          /* baud used for the data transfer */
  bool stub;              /* flasher stub running (false: ROM only) */
  uint64_t bytes_tx, bytes_rx; /* on the wire, after SLIP escaping */

  uint32_t stage_ms[EG_STAGE__COUNT]; /* wall time spent in each stage */
  int64_t started_ms, finished_ms;    /* Unix epoch milliseconds */

  eg_result result;
  eg_fault fault;         /* code EG_OK when passed */
} eg_unit_record;

/* Zero the record, set fault to "none" and result to IN_PROGRESS. */
void eg_unit_record_init(eg_unit_record *u);
/* "24:0a:c4:00:00:01"; buf >= 18 bytes. "" when no MAC is known. */
const char *eg_unit_mac_str(const eg_unit_record *u, char *buf, unsigned long len);
/* JEDEC manufacturer byte and device word as esptool prints them
 * ("Manufacturer: c8", "Device: 4016"). */
static inline unsigned eg_jedec_manufacturer(uint32_t id) { return id & 0xFF; }
static inline unsigned eg_jedec_device(uint32_t id) { return ((id >> 8) & 0xFF) << 8 | ((id >> 16) & 0xFF); }

#endif
