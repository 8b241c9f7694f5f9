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
  EG_RESULT_SKIPPED      /* "skipped": deliberately not flashed (it already holds
                          * the images, or a retry by MAC found it already passed) */
} eg_result;

const char *eg_result_name(eg_result r);

/* How the host reaches the chip's loader. Columns: name, stored name (NULL:
 * unknown, stored as NULL). */
#define EG_TRANSPORT_MAP(XX)                   \
  XX(UNKNOWN,         NULL)                    \
  XX(UART,            "uart")                  \
  XX(USB_SERIAL_JTAG, "usb-serial-jtag")       \
  XX(USB_OTG,         "usb-otg")

typedef enum eg_transport {
#define EG_TRANSPORT_ENUM(name, str) EG_TRANSPORT_##name,
  EG_TRANSPORT_MAP(EG_TRANSPORT_ENUM)
#undef EG_TRANSPORT_ENUM
  EG_TRANSPORT__COUNT
} eg_transport;

/* "uart", ...; NULL for UNKNOWN or out of range. */
const char *eg_transport_name(eg_transport t);

/* A yes/no fact that may not be known. Zero is "unknown", so a zeroed record
 * never claims anything. */
typedef enum eg_tri { EG_TRI_UNKNOWN, EG_TRI_NO, EG_TRI_YES } eg_tri;

/* What happened to one image region in one attempt (table unit_images).
 * NONE: not reached; no row is stored. */
#define EG_IMAGE_ACTION_MAP(XX) \
  XX(NONE,     NULL)            \
  XX(WRITTEN,  "written")       \
  XX(VERIFIED, "verified")      \
  XX(SKIPPED,  "skipped")       \
  XX(FAILED,   "failed")

typedef enum eg_image_action {
#define EG_IMAGE_ACTION_ENUM(name, str) EG_IMAGE_##name,
  EG_IMAGE_ACTION_MAP(EG_IMAGE_ACTION_ENUM)
#undef EG_IMAGE_ACTION_ENUM
  EG_IMAGE__COUNT
} eg_image_action;

/* "written", ...; NULL for NONE or out of range. */
const char *eg_image_action_name(eg_image_action a);

/* Images one record can describe; the manifest allows no more per chip. */
#define EG_UNIT_MAX_IMAGES 64 /* the manifest allows no more in all */
/* Bytes of GET_SECURITY_INFO's key_purposes (esp-serial-protocol.md 4.2). */
#define EG_KEY_PURPOSES_MAX 8

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

  eg_transport transport;

  /* Security state. has_sec_info: GET_SECURITY_INFO answered, so sec_flags,
   * flash_crypt_cnt and key_purposes[0..nkey_purposes) are as received. The
   * three states may also come from eFuses (ESP32), hence their own tri. */
  bool has_sec_info;
  uint32_t sec_flags;
  uint8_t flash_crypt_cnt;
  uint8_t key_purposes[EG_KEY_PURPOSES_MAX];
  uint8_t nkey_purposes;
  eg_tri secure_boot, flash_encryption, secure_download;

  uint32_t baud_requested; /* the configured transfer rate; 0 unknown */
  uint32_t baud;          /* baud used for the data transfer */
  /* Link fallbacks taken: count and one line each ("921600 -> 460800 at
   * image 1 block 37"), appended by eg_unit_fallback(). */
  uint32_t fallbacks;
  char fallback_log[512];
  uint32_t port_wait_ms;  /* waited for a vanished port before this attempt */
  bool stub;              /* flasher stub running (false: ROM only) */
  uint64_t bytes_tx, bytes_rx; /* on the wire, after SLIP escaping */

  uint32_t stage_ms[EG_STAGE__COUNT]; /* wall time spent in each stage */
  int64_t started_ms, finished_ms;    /* Unix epoch milliseconds */

  /* What was done to each image this unit touched, and how long it took;
   * idx is the run_images index. nimages = entries used, in the order
   * first touched. */
  struct {
    uint16_t idx;
    uint32_t offset;
    eg_image_action action;
    uint32_t duration_ms;
  } images[EG_UNIT_MAX_IMAGES];
  uint8_t nimages;

  eg_result result;
  eg_fault fault;         /* code EG_OK when passed */
} eg_unit_record;

/* Zero the record, set fault to "none" and result to IN_PROGRESS. */
void eg_unit_record_init(eg_unit_record *u);
/* "24:0a:c4:00:00:01"; buf >= 18 bytes. "" when no MAC is known. */
const char *eg_unit_mac_str(const eg_unit_record *u, char *buf, unsigned long len);
/* Count one link fallback and append its line to fallback_log (a full log
 * keeps its earlier lines and ends in "..."). */
void eg_unit_fallback(eg_unit_record *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record what happened to run image `idx`: its entry is updated, or a new
 * one added (ignored when EG_UNIT_MAX_IMAGES are used). */
void eg_unit_image(eg_unit_record *u, unsigned idx, uint32_t offset, eg_image_action a, uint32_t duration_ms);
/* JEDEC manufacturer byte and device word as esptool prints them
 * ("Manufacturer: c8", "Device: 4016"). */
static inline unsigned eg_jedec_manufacturer(uint32_t id) { return id & 0xFF; }
static inline unsigned eg_jedec_device(uint32_t id) { return ((id >> 8) & 0xFF) << 8 | ((id >> 16) & 0xFF); }

#endif
