/* device.h - one board on one port: the ESP serial protocol, as one state
 * machine per port.
 *
 * An eg_dev drives one board through esptool's whole flow without ever
 * blocking. Connection bring-up (dev_connect.c): open the link, reset into
 * the bootloader (--before), sync, detect the chip, read its identity (MAC,
 * revision, crystal), raise the baud rate in the ROM and upload the flasher
 * stub (or stay in ROM mode), attach the SPI flash and read its JEDEC ID.
 * Then the flash operations (dev_flash.c): erase, write with the shared
 * compressed images, MD5 verify, read; then the --after action. Every wait
 * is a uv_timer; bytes move through the link (link.h), which hands the
 * device whole SLIP frames. A hundred eg_devs share one loop.
 *
 * Where a unit is: d->state, one value of EG_DEV_STATE_MAP below. Each state
 * belongs to one stage (the log's vocabulary, errors.h) and says what the
 * device is waiting for; a reply or a timer moves it on (device.c's two
 * switches are the whole table of what each event means in each state).
 *
 * Ownership: the caller embeds/allocates the eg_dev and keeps it alive until
 * the close callback of eg_dev_close() has run. The config, the imageset and
 * the ops must outlive the device. Callbacks run on the loop thread.
 *
 * Failure model: the device never gives up silently. When it finishes,
 * on_done gets the final eg_err and d->rec (eg_unit_record) holds the result,
 * identity, timings, bytes on the wire, and the fault: stage, command, the
 * chip's status bytes and a one-line message.
 */
#ifndef EG_DEVICE_H
#define EG_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "chips.h"
#include "errors.h"
#include "link.h"
#include "options.h"
#include "proto.h"
#include "prep.h"
#include "stubfile.h"
#include "unit.h"

typedef enum eg_opk {
  EG_OPK_ERASE_ALL,    /* ERASE_FLASH (stub) / whole-chip FLASH_BEGIN (ROM) */
  EG_OPK_ERASE_REGION, /* addr, size: multiples of 4 KiB */
  EG_OPK_WRITE,        /* image `index` of the imageset (+ verify if cfg.verify) */
  EG_OPK_VERIFY,       /* MD5 of image `index` against the flash */
  EG_OPK_READ          /* addr, size (0: the whole flash) into a buffer the device allocates */
} eg_opk;

typedef struct eg_dev_op {
  eg_opk kind;
  size_t index;        /* WRITE / VERIFY */
  uint32_t addr, size; /* ERASE_REGION / READ */
} eg_dev_op;

/* What to do to one chip: the images (patched and compressed once, shared)
 * and the operations on them. A mixed rack has one per chip. */
typedef struct eg_dev_plan {
  eg_imageset *images;        /* NULL when no WRITE/VERIFY ops */
  const eg_dev_op *ops;
  size_t nops;
  size_t image_base;          /* the run's index of images[0] (the log's run_images.idx) */
} eg_dev_plan;

typedef struct eg_dev_config {
  const eg_chip *chip;        /* expected chip; NULL: accept whatever is detected */
  /* Per-chip plans (a mixed rack): when non-NULL, the detected chip's entry
   * replaces the images and operations given to eg_dev_init, and a chip
   * without an entry is refused before anything is written. */
  const eg_dev_plan *const *plans;
  eg_before before;
  eg_after after;
  uint32_t connect_baud;      /* SYNC rate (esptool: min(115200, baud)) */
  uint32_t baud;              /* transfer rate after CHANGE_BAUDRATE */
  const eg_stub *const *stubs; /* indexed by eg_chip_id; NULL (or a NULL entry): ROM only */
  /* The older stub some revisions need (eg_chip.stub_old: ESP32-P4 below
   * v3.0); indexed by eg_chip_id; NULL: ROM only for those revisions. */
  const eg_stub *const *stubs_old;
  eg_imageset *images;        /* NULL when no WRITE/VERIFY ops */
  const char *flash_size;     /* "keep", "detect" or "4MB" (SPI_SET_PARAMS and checks) */
  bool verify;                /* MD5 after each WRITE */
  bool skip_flashed;          /* MD5 each region before writing; skip it when it already holds the image */
  eg_erase_policy erase;      /* ERASE_ALL turns skip_flashed off (esptool) */
  /* Write plaintext images to a chip whose flash encryption is on (its
   * bootloader will not run them): refused unless this is set. */
  bool allow_plaintext_on_encrypted;
  /* Skip esptool's safety checks (image chip/revision, Secure Boot v1
   * bootloader region), as esptool --force. */
  bool force;
  eg_timeouts timeouts;
  int connect_attempts;       /* esptool: 7 */
  bool trace;                 /* call on_log for every packet */
  struct eg_timing_log *timing; /* when set: one record per request/reply (timing.h) */
} eg_dev_config;

typedef struct eg_dev eg_dev;

typedef struct eg_dev_callbacks {
  void (*on_stage)(eg_dev *d, eg_stage stage);       /* stage entered */
  void (*on_identity)(eg_dev *d);                    /* chip / MAC / flash learned */
  /* Optional. Everything is known about the unit (chip, MAC, flash) and
   * nothing has been written yet: the caller decides, now or later, with
   * eg_dev_gate() whether the operations run. The device waits in
   * EG_DS_GATE meanwhile (no timer: the caller owns the wait). */
  void (*on_gate)(eg_dev *d);
  void (*on_progress)(eg_dev *d, uint64_t done, uint64_t total); /* bytes of the current op */
  void (*on_done)(eg_dev *d, eg_err result);         /* finished; d->rec is final */
  void (*on_log)(eg_dev *d, const char *line);       /* optional trace, may be NULL */
} eg_dev_callbacks;

/* The states. Columns: name; the stage it belongs to; what ends it (NONE:
 * nothing, LINK: the link coming up, TIMER: the timer, SYNC: SYNC replies,
 * REPLY: the reply to the request in flight (or its timeout), OHAI: the
 * stub's greeting (or MEM_END's reply), DATA: READ_FLASH packets); and in
 * words what the device waits for. */
#define EG_DEV_STATE_MAP(XX)                                                                            \
  XX(IDLE,             NONE,   NONE,  "nothing: not started")                                           \
  XX(OPENING,          OPEN,   LINK,  "the link to come up (open, TCP connect, or a reopen)")           \
  XX(RESETTING,        RESET,  TIMER, "the next step of the --before DTR/RTS plan")                     \
  XX(SYNC_WAIT,        SYNC,   SYNC,  "the first reply to SYNC")                                        \
  XX(SYNC_MORE,        SYNC,   SYNC,  "the other 7 replies to SYNC")                                    \
  XX(SYNC_PAUSE,       SYNC,   TIMER, "50 ms between SYNC tries")                                       \
  XX(SECINFO,          DETECT, REPLY, "the reply to GET_SECURITY_INFO")                                 \
  XX(SECINFO_DRAIN,    DETECT, TIMER, "200 ms: the ROM repeats its unsupported-command answer")         \
  XX(MAGIC,            DETECT, REPLY, "the magic value (READ_REG 0x40001000)")                          \
  XX(IDENTIFY,         DETECT, REPLY, "eFuse and register reads (a register script)")                   \
  XX(USB_PREP,         DETECT, REPLY, "RTC watchdog off over USB-Serial/JTAG (a register script)")      \
  XX(ROM_BAUD,         BAUD,   REPLY, "the ROM's reply to CHANGE_BAUDRATE")                             \
  XX(ROM_BAUD_SETTLE,  BAUD,   TIMER, "50 ms at the new rate (esptool's settle time)")                  \
  XX(STUB_MEM,         STUB,   REPLY, "the reply to a MEM_BEGIN / MEM_DATA of the stub upload")         \
  XX(STUB_MEM_END,     STUB,   OHAI,  "the ROM's reply to MEM_END (or the stub's OHAI)")                \
  XX(STUB_OHAI,        STUB,   OHAI,  "the stub's OHAI greeting")                                       \
  XX(STUB_BAUD,        BAUD,   REPLY, "the stub's reply to CHANGE_BAUDRATE")                            \
  XX(STUB_BAUD_SETTLE, BAUD,   TIMER, "50 ms at the new rate")                                          \
  XX(BAUD_DOWN,        BAUD,   REPLY, "the stub's reply to a lower CHANGE_BAUDRATE (the line garbles)") \
  XX(BAUD_DOWN_SETTLE, BAUD,   TIMER, "50 ms at the lower rate, then the held request again")           \
  XX(FLASH_POWER,      ATTACH, REPLY, "the flash powered on (ESP32-P4 ECO6, a register script)")        \
  XX(ATTACH,           ATTACH, REPLY, "the reply to SPI_ATTACH")                                        \
  XX(FLASH_ID,         ATTACH, REPLY, "the RDID user command (a register script)")                      \
  XX(SET_PARAMS,       ATTACH, REPLY, "the reply to SPI_SET_PARAMS")                                    \
  XX(GATE,             ATTACH, NONE,  "the caller's go-ahead (on_gate / eg_dev_gate)")                  \
  XX(SKIP_CHECK,       VERIFY, REPLY, "the region's MD5 before writing it (--skip-flashed)")            \
  XX(ERASE,            ERASE,  REPLY, "the end of an erase (ERASE_FLASH/REGION, ROM FLASH_BEGIN)")      \
  XX(WRITE_BEGIN,      WRITE,  REPLY, "the reply to FLASH_(DEFL_)BEGIN")                                \
  XX(WRITE_DATA,       WRITE,  REPLY, "the reply to a FLASH_(DEFL_)DATA block")                         \
  XX(WRITE_END,        WRITE,  REPLY, "FLASH_(DEFL_)END(stay): the stub's last write")                  \
  XX(VERIFY,           VERIFY, REPLY, "the flash's MD5 (SPI_FLASH_MD5)")                                \
  XX(READ_BEGIN,       READ,   REPLY, "the reply to READ_FLASH")                                        \
  XX(READ_DATA,        READ,   DATA,  "READ_FLASH data packets, then the MD5 frame")                    \
  XX(READ_SLOW,        READ,   REPLY, "the reply to READ_FLASH_SLOW (ROM)")                             \
  XX(AFTER_SCRIPT,     AFTER,  REPLY, "register writes before or for a reset (a register script)")      \
  XX(AFTER_WAIT,       AFTER,  TIMER, "0.5 s for the watchdog to reset the chip")                       \
  XX(AFTER_RESET,      AFTER,  TIMER, "the next step of the --after DTR/RTS plan")                      \
  XX(AFTER_BEGIN,      AFTER,  REPLY, "the reply to FLASH_BEGIN(0) before leaving the loader")          \
  XX(AFTER_END,        AFTER,  REPLY, "the reply to FLASH_END")                                         \
  XX(DONE,             NONE,   NONE,  "nothing: finished (on_done has run)")

typedef enum eg_dev_state {
#define EG_DEV_STATE_ENUM(name, stage, awaits, what) EG_DS_##name,
  EG_DEV_STATE_MAP(EG_DEV_STATE_ENUM)
#undef EG_DEV_STATE_ENUM
  EG_DS__COUNT
} eg_dev_state;

/* What ends a state (the map's third column). */
typedef enum eg_dev_awaits {
  EG_AWAIT_NONE,
  EG_AWAIT_LINK,
  EG_AWAIT_TIMER,
  EG_AWAIT_SYNC,
  EG_AWAIT_REPLY,
  EG_AWAIT_OHAI,
  EG_AWAIT_DATA
} eg_dev_awaits;

const char *eg_dev_state_name(eg_dev_state s);
eg_dev_awaits eg_dev_state_awaits(eg_dev_state s);
/* The stage a state belongs to (EG_STAGE_NONE for IDLE and DONE). */
eg_stage eg_dev_state_stage(eg_dev_state s);

#define EG_DEV_BOOTLOG 1024
#define EG_DEV_REGS 32
#define EG_DEV_SLOT_UARTDEV 28  /* identity script: the ROM's UARTDEV_BUF_NO */
#define EG_DEV_SLOT_UARTDEV3 29 /* ... at its second place (P4 from v3.0) */

/* A register script: reads, writes, polls and waits run in order (chip
 * identity, the RDID user command, watchdog and power scripts). */
typedef struct eg_regop {
  uint8_t kind;       /* 'R' read into slot, 'W' write value under mask, 'S' write saved slot,
                         'P' poll until value's bits clear, 'O' write slot | value,
                         'A' write slot & ~value, 'D' wait value microseconds */
  uint8_t slot;
  uint32_t addr, value, mask; /* mask 0: all bits */
  bool ignore_error;  /* a refused or lost reply does not fail the unit (esptool's try/except) */
} eg_regop;

struct eg_dev {
  /* --- set by eg_dev_init, read-only afterwards --- */
  uv_loop_t *loop;
  const eg_dev_config *cfg;
  const eg_dev_op *ops;
  size_t nops;
  eg_dev_callbacks cb;
  void *data;                 /* caller's pointer */
  char port_name[256];

  /* --- public results --- */
  eg_unit_record rec;         /* identity, timings, result, fault */
  const eg_chip *chip;        /* detected chip */
  uint32_t flash_id;
  uint32_t flash_size;        /* bytes used for SPI_SET_PARAMS / checks */
  uint8_t read_md5[16];       /* READ: MD5 the stub reported */
  eg_chip_ident ident;        /* what the eFuses say (chip description, MAC, revision...) */
  bool sdm;                   /* the chip is in Secure Download Mode */
  /* How the port reaches the chip: set by the caller after eg_dev_init
   * when known (USB VID:PID of the port), else learned from the chip's
   * UARTDEV_BUF_NO where the table has it. */
  eg_usb_mode usb;
  eg_dev_state state;         /* where the unit is */
  eg_stage stage;             /* = eg_dev_state_stage(state) while running; the last one when done */
  int reopens;                /* port reopened after an early error */
  uint64_t away_t0;           /* uv_now when the port was found gone from the system (0: here) */
  bool away_in_reset;         /* ...and it went during our reset (its USB re-enumerating) */
  bool away_spent;            /* ...and was waited for (timeouts.port_back_ms) in vain: not again this unit */
  /* A port bound to a USB location (rec.usb_location) that left the bus is
   * looked for there while it is waited for: it may come back under another
   * device name (/dev/ttyACM0 -> /dev/ttyACM1). The lookup runs on libuv's
   * thread pool. */
  uv_work_t locate_req;
  bool locating;
  eg_err located_err;
  char located[256];

  /* --- private --- */
  eg_link link;
  uv_timer_t timer;
  unsigned handles_open;
  bool closing, finished;
  void (*close_cb)(eg_dev *d);
  uint64_t stage_t0;

  char bootlog[EG_DEV_BOOTLOG];
  size_t bootlog_len;

  bool stub_running;
  uint8_t status_len;         /* status bytes in replies: 0 unknown, 2 or 4 */
  uint32_t cur_baud;
  int attempt;                /* connect attempt (0-based) */
  int tries;                  /* SYNC tries within an attempt */
  int sync_replies;
  bool sync_stub_seen;
  bool stub_found;            /* a stub was already running when we synced */
  /* The adaptive link (dev_adapt.c). */
  uint32_t link_baud;         /* the transfer rate aimed at: cfg->baud, lower after stepping down */
  bool rom_baud_raised;       /* the ROM took CHANGE_BAUDRATE and we switched (no stub yet) */
  bool rom_baud_off;          /* the ROM's rate change failed once: esptool's way from now on */
  int steps_down;
  bool ops_started;           /* the gate said go */
  bool resume_ops;            /* reconnected mid-operations: carry on at op_i after the bring-up */
  struct eg_dev_held *held;   /* the request to send again after stepping down */
  unsigned bringup_done;      /* bring-up steps done (dev_connect.c) */
  bool script_delay;          /* a script's 'D' step is waiting on the timer */
  int skipped_frames;

  /* the request in flight */
  uint8_t pkt[EG_MAX_PACKET + 64]; /* as built (unescaped), kept for a resend */
  size_t pkt_len;
  uint8_t expect_op;
  size_t expect_data;
  uint32_t reply_timeout_ms;
  uint32_t req_timeout_ms;    /* the timeout asked for, before the wire time is added */
  int cmd_tries;              /* resends of the current request */
  bool have_refusal;
  eg_resp first_refusal;      /* the chip's first refusal of the current request */

  /* reset plans */
  const struct eg_reset_step *reset_seq;
  int reset_step;

  /* register scripts */
  eg_regop script[EG_DEV_REGS];
  size_t nscript, script_i;
  uint32_t reg_slot[EG_DEV_REGS];
  int poll_count;

  /* stub upload */
  bool stub_uploaded;
  int mem_seg;                /* 0 text, 1 data */
  uint32_t mem_seq, mem_blocks;

  /* operations (the chip's plan) */
  eg_imageset *images;
  size_t image_base;
  size_t op_i;
  uint64_t op_t0;             /* uv_now when the current op began */
  const eg_wimage *wimg;
  uint32_t blk, nblk, blk_size;
  uint32_t read_size, read_got;
  uint8_t **read_bufs;        /* one per op (READ ops only), device-owned */
  size_t nread_bufs;
  struct eg_timing_rec *tm;   /* the exchange in flight (cfg->timing only) */
  int after_kind;             /* eg_hard_reset being carried out */
  struct evp_md_ctx_st *md5ctx;
};

/* Prepare (no I/O yet). ops may be empty (identity only). */
eg_err eg_dev_init(eg_dev *d, uv_loop_t *loop, const char *port_name, const eg_dev_config *cfg,
                   const eg_dev_op *ops, size_t nops, const eg_dev_callbacks *cb, void *data);
/* Open the port and start. Failures are reported through on_done. */
void eg_dev_start(eg_dev *d);
/* The answer to on_gate: run the operations (EG_OK), or finish now without
 * writing anything with `result` (e.g. EG_SKIPPED) and the message why. */
void eg_dev_gate(eg_dev *d, eg_err result, const char *why);
/* Stop as soon as possible: the result becomes ABORTED (on_done is called). */
void eg_dev_abort(eg_dev *d);
/* Close handles; close_cb runs when the device may be freed. Call after
 * on_done (or to tear down a device that was never started). */
void eg_dev_close(eg_dev *d, void (*close_cb)(eg_dev *d));

/* The data read by READ op i (NULL if op i is not a finished READ). The
 * buffer stays the device's (freed by eg_dev_close) unless taken. */
const uint8_t *eg_dev_read_data(const eg_dev *d, size_t op_index, uint32_t *len);
/* The same, handing the buffer over: the caller frees it. */
uint8_t *eg_dev_take_read_data(eg_dev *d, size_t op_index, uint32_t *len);

#endif
