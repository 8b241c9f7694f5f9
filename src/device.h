/* device.h - one board on one port: the protocol state machine.
 *
 * An eg_dev drives one port through esptool's whole flow without ever
 * blocking: open, reset into the bootloader (--before), sync, detect the chip,
 * read its identity (MAC, revision, crystal, flash JEDEC ID), upload the
 * flasher stub (raising the baud rate in the ROM first) or stay in ROM mode,
 * attach and configure the SPI flash, run a list of operations (erase, write
 * with the shared compressed images, MD5 verify, read), then the --after
 * action. Every wait is a uv_timer; bytes move through a uv_poll on the
 * port's fd. A hundred eg_devs share one loop.
 *
 * Ownership: the caller embeds/allocates the eg_dev and keeps it alive until
 * the close callback of eg_dev_close() has run. The config, the imageset and
 * the ops (including read buffers) must outlive the device. Callbacks run on
 * the loop thread.
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
#include "options.h"
#include "port.h"
#include "proto.h"
#include "prep.h"
#include "slip.h"
#include "stubfile.h"
#include "unit.h"

typedef enum eg_opk {
  EG_OPK_ERASE_ALL,    /* ERASE_FLASH (stub) / whole-chip FLASH_BEGIN (ROM) */
  EG_OPK_ERASE_REGION, /* addr, size: multiples of 4 KiB */
  EG_OPK_WRITE,        /* image `index` of the imageset (+ verify if cfg.verify) */
  EG_OPK_VERIFY,       /* MD5 of image `index` against the flash */
  EG_OPK_READ          /* addr, size into buf */
} eg_opk;

typedef struct eg_dev_op {
  eg_opk kind;
  size_t index;        /* WRITE / VERIFY */
  uint32_t addr, size; /* ERASE_REGION / READ (size 0 for READ: whole flash) */
  uint8_t *buf;        /* READ: caller-owned, size bytes (or flash size when size 0: the device allocates -> see read_result) */
} eg_dev_op;

typedef struct eg_dev_config {
  const eg_chip *chip;        /* expected chip; NULL: accept whatever is detected */
  eg_before before;
  eg_after after;
  uint32_t connect_baud;      /* SYNC rate (esptool: min(115200, baud)) */
  uint32_t baud;              /* transfer rate after CHANGE_BAUDRATE */
  const eg_stub *const *stubs; /* indexed by eg_chip_id; NULL (or a NULL entry): ROM only */
  eg_imageset *images;        /* NULL when no WRITE/VERIFY ops */
  const char *flash_size;     /* "keep", "detect" or "4MB" (SPI_SET_PARAMS and checks) */
  bool verify;                /* MD5 after each WRITE */
  eg_timeouts timeouts;
  int connect_attempts;       /* esptool: 7 */
  bool trace;                 /* call on_log for every packet */
} eg_dev_config;

typedef struct eg_dev eg_dev;

typedef struct eg_dev_callbacks {
  void (*on_stage)(eg_dev *d, eg_stage stage);       /* stage entered */
  void (*on_identity)(eg_dev *d);                    /* chip / MAC / flash learned */
  void (*on_progress)(eg_dev *d, uint64_t done, uint64_t total); /* bytes of the current op */
  void (*on_done)(eg_dev *d, eg_err result);         /* finished; d->rec is final */
  void (*on_log)(eg_dev *d, const char *line);       /* optional trace, may be NULL */
} eg_dev_callbacks;

/* Internal states (exposed for the struct; not an API). */
typedef enum eg_dev_state {
  EG_DS_IDLE,
  EG_DS_CONNECTING,   /* TCP connect in progress */
  EG_DS_REOPEN,       /* the port failed before the chip answered: reopening */
  EG_DS_RESET,        /* running a DTR/RTS sequence (before or --after) */
  EG_DS_SYNC,         /* SYNC sent, waiting for the first reply */
  EG_DS_SYNC_MORE,    /* collecting the other 7 replies */
  EG_DS_SYNC_PAUSE,   /* 50 ms between SYNC tries */
  EG_DS_SECINFO,      /* GET_SECURITY_INFO */
  EG_DS_UNSUPPORTED_DRAIN, /* 200 ms drain after the ROM's "unsupported" */
  EG_DS_REGS,         /* running a register script */
  EG_DS_CMD,          /* a generic command: reply goes to d->next */
  EG_DS_BAUD_SETTLE,  /* 50 ms after switching the host baud */
  EG_DS_MEM,          /* stub upload: MEM_BEGIN / MEM_DATA */
  EG_DS_MEM_END,      /* MEM_END sent */
  EG_DS_OHAI,         /* waiting for the stub's greeting */
  EG_DS_WRITE,        /* FLASH(_DEFL)_DATA in flight */
  EG_DS_READ,         /* READ_FLASH data packets */
  EG_DS_READ_SLOW,    /* READ_FLASH_SLOW commands */
  EG_DS_DONE
} eg_dev_state;

typedef void (*eg_dev_step)(eg_dev *d, const void *resp);

#define EG_DEV_TXBUF (2 * (EG_MAX_PACKET + 64) + 4)
#define EG_DEV_RXFRAME (EG_MAX_PACKET + 64)
#define EG_DEV_BOOTLOG 1024

/* A register script: reads, writes and polls run in order (chip identity,
 * the RDID user command). */
typedef struct eg_regop {
  uint8_t kind;       /* 'R' read into slot, 'W' write value, 'S' write saved slot, 'P' poll until mask clear */
  uint8_t slot;
  uint32_t addr, value;
} eg_regop;

struct eg_dev {
  /* --- set by eg_dev_init, read-only afterwards --- */
  uv_loop_t *loop;
  const eg_dev_config *cfg;
  const eg_dev_op *ops;
  size_t nops;
  eg_dev_callbacks cb;
  void *data;                 /* caller's pointer */

  /* --- public results --- */
  eg_unit_record rec;         /* identity, timings, result, fault */
  const eg_chip *chip;        /* detected chip */
  uint32_t flash_id;
  uint32_t flash_size;        /* bytes used for SPI_SET_PARAMS / checks */
  uint8_t read_md5[16];       /* READ: MD5 the stub reported */

  /* --- private --- */
  eg_port port;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_events;
  bool poll_initialised, poll_started, closing, aborted, finished;
  unsigned handles_open;
  void (*close_cb)(eg_dev *d);
  eg_dev_state state;
  eg_stage stage;
  uint64_t stage_t0;
  uint64_t op_t0;

  eg_slip_dec dec;
  uint8_t rxframe[EG_DEV_RXFRAME];
  uint8_t tx[EG_DEV_TXBUF];
  size_t tx_len, tx_off;
  uint8_t pkt[EG_MAX_PACKET + 64];  /* request being built (unescaped) */
  char bootlog[EG_DEV_BOOTLOG];
  size_t bootlog_len;

  bool stub_running;
  uint8_t status_len;
  uint32_t cur_baud;
  int attempt;                /* connect attempt (0-based) */
  int reopens;                /* port reopened after an early error */
  int tries;                  /* tries within an attempt / block attempts */
  int sync_replies;
  bool sync_stub_seen;
  int skipped_frames;
  uint8_t expect_op;
  size_t pkt_len;             /* length of the request in pkt, for a resend */
  int cmd_tries;              /* resends of the current request */
  bool have_refusal;
  size_t expect_data;
  uint32_t reply_timeout_ms;
  eg_dev_step next;           /* continuation for EG_DS_CMD */

  /* reset sequences */
  const struct eg_reset_step *reset_seq;
  int reset_step;
  eg_dev_step reset_done;     /* continuation after the sequence */

  /* register scripts */
  const eg_regop *regs;
  size_t nregs, reg_i;
  uint32_t reg_slot[16];
  eg_regop identity_ops[16];  /* per-device scripts built from the chip table */
  int poll_count;
  eg_dev_step regs_done;

  /* stub upload */
  bool stub_uploaded;
  int mem_seg;                /* 0 text, 1 data */
  uint32_t mem_seq, mem_blocks;

  /* operations */
  size_t op_i;
  const eg_wimage *wimg;
  uint32_t blk, nblk, blk_size;
  eg_resp first_refusal;      /* the chip's first refusal of the current request */
  uint64_t progress_done, progress_total;
  uint32_t read_size, read_got, read_acked;
  uint8_t *read_owned;        /* READ with size 0 */
  struct evp_md_ctx_st *md5ctx;
};

/* Prepare (no I/O yet). ops may be empty (identity only). */
eg_err eg_dev_init(eg_dev *d, uv_loop_t *loop, const char *port_name, const eg_dev_config *cfg,
                   const eg_dev_op *ops, size_t nops, const eg_dev_callbacks *cb, void *data);
/* Open the port and start. Failures are reported through on_done. */
void eg_dev_start(eg_dev *d);
/* Stop as soon as possible: the result becomes ABORTED (on_done is called). */
void eg_dev_abort(eg_dev *d);
/* Close handles; close_cb runs when the device may be freed. Call after
 * on_done (or to tear down a device that was never started). */
void eg_dev_close(eg_dev *d, void (*close_cb)(eg_dev *d));

/* The data read by READ op i (its buf, or the device-owned buffer). */
const uint8_t *eg_dev_read_data(const eg_dev *d, size_t op_index, uint32_t *len);

#endif
