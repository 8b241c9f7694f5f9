/* device_int.h - private to the device state machine: device.c (events,
 * requests, the dispatch tables), dev_connect.c (bring-up: open, reset,
 * sync, detect, identity, baud, stub, attach) and dev_flash.c (the flash
 * operations and --after). Not an API: names start with eg__dev.
 *
 * Every step sends at most one request and arms the one timer; device.c
 * routes the reply (or the timer) by d->state to the step's handler below.
 */
#ifndef EG_DEVICE_INT_H
#define EG_DEVICE_INT_H

#include "device.h"

#define EG_DEV_CMD_ATTEMPTS 3 /* esptool's WRITE_BLOCK_ATTEMPTS, for every resendable command */
#define EG_DEV_OHAI_TIMEOUT_MS 3000

/* --- device.c: shared machinery --- */
void eg__dev_log(eg_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Enter a state (and its stage: time accounting, on_stage). */
void eg__dev_enter(eg_dev *d, eg_dev_state s);
void eg__dev_arm(eg_dev *d, uint32_t ms);
/* Send the request built in d->pkt (len bytes) in state s and wait up to
 * timeout_ms for a reply to its opcode carrying expect_data data bytes. */
void eg__dev_request(eg_dev *d, eg_dev_state s, size_t len, size_t expect_data, uint32_t timeout_ms);
/* Queue a raw frame (READ_FLASH acks); false if the device failed. */
bool eg__dev_send_frame(eg_dev *d, const uint8_t *raw, size_t len, bool lead_end);
/* Timing records (cfg->timing): open one for a request just sent (closing
 * any still open), close it with the reply's size (0: no reply). */
void eg__dev_timing_open(eg_dev *d, uint8_t op, uint32_t seq, size_t bytes_out, uint16_t attempt);
void eg__dev_timing_close(eg_dev *d, size_t reply_bytes);
/* Send the request in d->pkt again, unchanged. */
void eg__dev_resend(eg_dev *d, const char *why);
/* Fail with the current stage; opcode -1 for none. */
void eg__dev_fail(eg_dev *d, eg_err code, int opcode, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Fail because the chip refused a command: its status bytes go to the log. */
void eg__dev_fail_status(eg_dev *d, const eg_resp *r, const char *what);
void eg__dev_finish(eg_dev *d, eg_err result);
void eg__dev_progress(eg_dev *d, uint64_t done, uint64_t total);
/* Status bytes a reply carries now (4 until known otherwise). */
size_t eg__dev_status_len(const eg_dev *d);
/* Milliseconds `bytes` take on the wire at the current rate. */
uint32_t eg__dev_wire_ms(const eg_dev *d, size_t bytes);
/* Drop what has arrived (text still feeds the boot log). */
void eg__dev_drain(eg_dev *d);
/* Change the host's rate; false if the device failed. */
bool eg__dev_switch_baud(eg_dev *d, uint32_t baud);
/* Run a register script built in d->script[0..n); the state's handler in
 * device.c continues when it is done. */
void eg__dev_script_run(eg_dev *d, eg_dev_state s, size_t n);
void eg__dev_script_reply(eg_dev *d, const eg_resp *r);
/* Append a chip table script (eg_regscript) to d->script from index n;
 * returns the new count. */
size_t eg__dev_script_add(eg_dev *d, size_t n, eg_regscript rs);
/* Run the DTR/RTS plan in d->reset_seq from step 0 in state s. */
void eg__dev_reset_run(eg_dev *d, eg_dev_state s);

/* --- dev_connect.c: bring-up --- */
void eg__dev_connect_up(eg_dev *d);               /* the link is up (first open or reopen) */
void eg__dev_connect_attempt(eg_dev *d);          /* next connect attempt (reset + sync) */
void eg__dev_reset_done(eg_dev *d);               /* --before plan finished: sync */
void eg__dev_send_sync(eg_dev *d);
void eg__dev_sync_frame(eg_dev *d, const uint8_t *frame, size_t len);
void eg__dev_sync_timeout(eg_dev *d);             /* SYNC_WAIT timer */
void eg__dev_synced(eg_dev *d);
void eg__dev_secinfo_reply(eg_dev *d, const uint8_t *frame, size_t len);
void eg__dev_read_magic(eg_dev *d);
void eg__dev_magic_reply(eg_dev *d, const eg_resp *r);
void eg__dev_identified(eg_dev *d);               /* IDENTIFY script done */
void eg__dev_bringup_next(eg_dev *d);             /* the next bring-up step (power, watchdog, baud, stub, attach) */
void eg__dev_baud_reply(eg_dev *d, const eg_resp *r);
void eg__dev_baud_settled(eg_dev *d);
void eg__dev_mem_reply(eg_dev *d, const eg_resp *r);
void eg__dev_mem_end_reply(eg_dev *d);
void eg__dev_stub_started(eg_dev *d);
void eg__dev_attach_reply(eg_dev *d, const eg_resp *r);
void eg__dev_flash_id_done(eg_dev *d);            /* FLASH_ID script done */
void eg__dev_set_params_reply(eg_dev *d, const eg_resp *r);
/* A link error while connecting: reopen if the chip has not answered yet. */
bool eg__dev_may_reopen(const eg_dev *d);

/* --- dev_adapt.c: the adaptive link --- */
/* A failure about to end the unit: absorbed (true) when the link can fall
 * back (the ROM's rate change, or a step down through the stub). */
bool eg__dev_adapt(eg_dev *d, eg_err code, const eg_resp *r, const char *why);
void eg__dev_baud_down_reply(eg_dev *d, const eg_resp *r); /* r NULL: no reply */
void eg__dev_baud_down_settled(eg_dev *d);
/* A failure while a fallback is under way: the unit records the failure
 * that started it instead (true), the later one goes into fallback_log. */
bool eg__dev_adapt_failed(eg_dev *d, eg_err code, const char *msg);
void eg__dev_adapt_resumed(eg_dev *d); /* the reconnect worked: fallback over */
void eg__dev_adapt_free(eg_dev *d);

/* --- dev_flash.c: operations and --after --- */
/* Attached: pick the chip's plan, refuse what must not be written (image
 * for another chip or revision, plaintext on an encrypted chip), ask the
 * gate, then run the operations. */
void eg__dev_ops_check(eg_dev *d);
void eg__dev_ops_start(eg_dev *d);                /* the gate said go: run d->ops */
void eg__dev_ops_resume(eg_dev *d);               /* after a reconnect: the current op again, then the rest */
void eg__dev_ops_failed(eg_dev *d);               /* the unit failed: mark the image it was on */
void eg__dev_erase_reply(eg_dev *d, const eg_resp *r);
void eg__dev_write_begin_reply(eg_dev *d, const eg_resp *r);
void eg__dev_write_data_reply(eg_dev *d, const eg_resp *r);
void eg__dev_write_end_reply(eg_dev *d, const eg_resp *r);
void eg__dev_write_timeout(eg_dev *d);
void eg__dev_md5_reply(eg_dev *d, const eg_resp *r);
void eg__dev_read_begin_reply(eg_dev *d, const eg_resp *r);
void eg__dev_read_frame(eg_dev *d, const uint8_t *p, size_t len);
void eg__dev_read_slow_reply(eg_dev *d, const eg_resp *r);
void eg__dev_after_reset_done(eg_dev *d);
void eg__dev_after_script_done(eg_dev *d);
void eg__dev_after_begin_reply(eg_dev *d, const eg_resp *r);
void eg__dev_after_end_reply(eg_dev *d, const eg_resp *r);

#endif
