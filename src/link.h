/* link.h - the link layer: one port on the loop, carrying SLIP frames.
 *
 * Between a port (port.h: bytes on a file descriptor, four backends) and the
 * protocol machine (device.h: requests and replies). The link owns the
 * port's handle, the uv_poll watching it, the SLIP decoder and the output
 * queue, the non-blocking TCP connect, and reopening a port. It hands the
 * device whole frames, the bytes seen between frames (a ROM's boot log), and
 * "up" / "error" events; the device never sees a file descriptor.
 *
 * Life: eg_link_init -> eg_link_open (synchronous failures are returned;
 * everything later arrives as callbacks) -> on_up -> frames... An error
 * (the port vanished, the peer hung up, a connect refused or timed out)
 * stops the link and calls on_error once; the caller then either
 * eg_link_reopen()s it (on_up again when it is back) or gives up.
 * eg_link_close() releases the handles; its callback says when the struct
 * may be freed.
 *
 * Callbacks run on the loop thread, from within the link's own uv
 * callbacks. A callback may call any eg_link_* function, including
 * eg_link_reopen and eg_link_close: the link stops delivering the rest of
 * what it was processing (it checks its epoch after every callback).
 *
 * Ownership: the caller embeds the eg_link and keeps it alive until the
 * close callback has run. Not thread-safe.
 */
#ifndef EG_LINK_H
#define EG_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "errors.h"
#include "port.h"
#include "proto.h"
#include "slip.h"

typedef struct eg_link eg_link;

typedef struct eg_link_callbacks {
  /* The port is open (and, for network ports, connected): send away. */
  void (*on_up)(eg_link *l);
  /* One whole, unescaped SLIP frame (valid during the call). */
  void (*on_frame)(eg_link *l, const uint8_t *frame, size_t len);
  /* Bytes outside any frame: the chip's text (boot log, app chatter). */
  void (*on_noise)(eg_link *l, const uint8_t *bytes, size_t len);
  /* The link failed and is stopped: code is EG_PORT_GONE (vanished, hung
   * up), EG_PORT_OPEN (connect refused / timed out, reopen failed) or
   * EG_IO; msg is one line naming the port. Called once per failure. */
  void (*on_error)(eg_link *l, eg_err code, const char *msg);
} eg_link_callbacks;

typedef enum eg_link_state {
  EG_LINK_CLOSED,     /* not open (initial, or after an error) */
  EG_LINK_CONNECTING, /* network port: connect() in progress */
  EG_LINK_UP,         /* open: frames flow */
  EG_LINK_WAITING,    /* eg_link_reopen: waiting before opening again */
  EG_LINK_CLOSING     /* eg_link_close called */
} eg_link_state;

#define EG_LINK_TXBUF (2 * (2 * EG_MAX_PACKET + 2) + 4) /* two frames: a request and a READ_FLASH ack */
#define EG_LINK_RXFRAME (EG_MAX_PACKET + 64)

struct eg_link {
  /* --- set by eg_link_init --- */
  uv_loop_t *loop;
  eg_link_callbacks cb;
  void *data;                  /* the caller's pointer */

  /* --- read-only for the caller --- */
  eg_port port;                /* name, caps, can_reset, errmsg... */
  eg_link_state state;
  uint64_t bytes_tx, bytes_rx; /* on the wire, after SLIP escaping */
  int opens;                   /* successful opens (1 + reopens) */

  /* --- private --- */
  char name[256];              /* what to open */
  uint32_t baud;               /* rate to open at (follows eg_link_set_baud) */
  uint32_t connect_timeout_ms;
  uv_poll_t poll;
  uv_timer_t timer;            /* connect timeout, reopen delay */
  bool poll_live;              /* poll initialised and not being closed */
  bool poll_closing;           /* uv_close(poll) called, its callback not yet run */
  int poll_events;
  unsigned handles;            /* open uv handles (timer + poll) */
  unsigned epoch;              /* bumped whenever the port is closed */
  bool draining;               /* eg_link_drain: frames are stale */
  void (*close_cb)(eg_link *l);
  eg_slip_dec dec;
  uint8_t rxframe[EG_LINK_RXFRAME];
  uint8_t tx[EG_LINK_TXBUF];
  size_t tx_len, tx_off;
};

/* Prepare (no I/O). The timer is initialised; eg_link_close must follow. */
void eg_link_init(eg_link *l, uv_loop_t *loop, const eg_link_callbacks *cb, void *data);
/* Open `name` at `baud` and start watching it. A failure known at once (no
 * such device, a malformed URL, the port in use) is returned with the
 * port's one-line words in f (stage OPEN); later ones (a refused or slow
 * connect: connect_timeout_ms) arrive through on_error. on_up follows. */
eg_err eg_link_open(eg_link *l, const char *name, uint32_t baud, uint32_t connect_timeout_ms, eg_fault *f);
/* Close the port and open it again after delay_ms (a USB adapter glitching
 * as it is plugged, a network serial server still dropping its previous
 * client, a board re-enumerating). on_up when it is back, on_error if the
 * open fails. */
void eg_link_reopen(eg_link *l, uint32_t delay_ms);
/* The port is now called `name` (a USB port that came back under another
 * device name): the next (re)open uses it. */
void eg_link_rename(eg_link *l, const char *name);
/* Queue one SLIP frame of len raw bytes and send what the port takes now.
 * lead_end: send one extra 0xC0 first (puts a receiver that took line
 * noise for a frame start back in step). EG_INVAL if the queue is full
 * (never in the request/reply protocol: one request at a time plus acks). */
eg_err eg_link_send(eg_link *l, const uint8_t *raw, size_t len, bool lead_end);
/* Host-side baud rate; remembered for a reopen. */
eg_err eg_link_set_baud(eg_link *l, uint32_t baud);
/* DTR/RTS (1 asserted, 0 released, -1 leave), see eg_port_set_lines. */
eg_err eg_link_set_lines(eg_link *l, int dtr, int rts);
/* esptool's flush_input: read and drop what has arrived (text still goes to
 * on_noise; frames are dropped), then forget any partial frame. */
void eg_link_drain(eg_link *l);
/* Close the port now (the unit is over; a retry may open it again) and
 * stay closed, without callbacks. */
void eg_link_stop(eg_link *l);
/* Release everything; close_cb (may be NULL) runs when the struct may be
 * freed. No callback fires after this call. */
void eg_link_close(eg_link *l, void (*close_cb)(eg_link *l));

static inline bool eg_link_is_up(const eg_link *l) { return l->state == EG_LINK_UP; }

#endif
