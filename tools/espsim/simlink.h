/* simlink.h - moves bytes between an esim_dev and a host over one file
 * descriptor (pty master, TCP socket, one end of a socketpair) on a
 * caller-supplied libuv loop, with the UART wire model:
 *
 *   - 10 bits per byte at the device's current rate, in both directions;
 *   - back-pressure: host bytes are read from the fd only as fast as the line
 *     delivers them (plus one UART FIFO, 128 bytes), so the kernel buffer
 *     fills and the host's writes block or get EAGAIN, as on real hardware;
 *   - pacing is batched by time: one uv_timer per link releases everything
 *     due every tick (default 1 ms), never one timer per byte;
 *   - with opts.fast, bytes move as soon as they exist (no pacing); rates
 *     still garble when host and device disagree;
 *   - with opts.rfc2217 (TCP), a client whose first byte is IAC (255) speaks
 *     Telnet + RFC 2217 (rfc2217.h): its SET-BAUDRATE is the host's rate
 *     (115200 until set), its DTR/RTS drive esim_dev_set_lines() when read,
 *     and output 0xFF bytes are doubled; when it goes (EOF, close) both
 *     lines are released. Any other first byte: raw bytes, as without it.
 *
 * The host's UART rate: an RFC 2217 client's SET-BAUDRATE, else the pty
 * slave's termios (opts.pty_slave_fd, output speed), else opts.host_baud_cb,
 * else opts.host_baud (0 = no UART, e.g. raw TCP: never garbles).
 *
 * Contract
 *   - esim_link_start() takes the fd (made non-blocking) and owns it unless
 *     opts.keep_fd; it does not own the device or the pty slave fd. The device
 *     must outlive the link. The device's time base is uv_hrtime()/1000.
 *   - One device may be attached to one link at a time.
 *   - esim_link_close() stops all I/O at once; the callback runs from the
 *     loop after every handle is closed; the link's memory is freed right
 *     after the callback returns (libuv style). Call it exactly once.
 *   - Events (opts.on_event) report that the link stopped moving bytes: the
 *     host went away (EOF/error on the fd), a disconnect fault fired or the
 *     device's USB port left the bus (then the fd is shut down so the host
 *     sees EOF/EIO). The link stays allocated until esim_link_close().
 *   - Not thread-safe: use from the loop's thread only.
 */
#ifndef ESIM_SIMLINK_H
#define ESIM_SIMLINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "simdev.h"

typedef struct esim_link esim_link;

typedef enum esim_link_event {
  ESIM_LINK_PEER_GONE,  /* EOF or a hard error on the fd */
  ESIM_LINK_DISCONNECT, /* the device's disconnect fault fired */
  ESIM_LINK_REENUMERATE /* the device's USB port left the bus (chip reset) */
} esim_link_event;

typedef void (*esim_link_event_cb)(esim_link *l, esim_link_event ev, void *ctx);
typedef void (*esim_link_close_cb)(esim_link *l, void *ctx);
typedef uint32_t (*esim_host_baud_fn)(void *ctx);

typedef struct esim_link_opts {
  bool fast;                    /* no wire pacing */
  bool keep_fd;                 /* do not close the fd on esim_link_close() */
  int pty_slave_fd;             /* >= 0: host rate from this fd's termios; -1 otherwise */
  esim_host_baud_fn host_baud_cb; /* used when pty_slave_fd < 0; may be NULL */
  uint32_t host_baud;           /* fixed host rate when neither of the above; 0 = no UART */
  bool rfc2217;                 /* detect RFC 2217 on the client's first byte (TCP) */
  uint32_t usb_rate;            /* a USB port (0 = UART): no host rate, no garbling, the
                                   wire paced at this many bit/s whatever the chip's UART */
  unsigned tick_us;             /* pacing granularity; 0 = 1000 */
  esim_link_event_cb on_event;  /* may be NULL */
  void *ctx;                    /* passed to the callbacks */
} esim_link_opts;

void esim_link_opts_default(esim_link_opts *o);

/* Start moving bytes. Returns NULL with errno set on failure (EINVAL: bad
 * fd; ENOMEM; or the libuv error turned into errno). */
esim_link *esim_link_start(uv_loop_t *loop, esim_dev *dev, int fd, const esim_link_opts *opts);
void esim_link_close(esim_link *l, esim_link_close_cb cb);
esim_dev *esim_link_dev(const esim_link *l);
/* Host bytes read from the fd / device bytes written to it so far. */
void esim_link_counts(const esim_link *l, uint64_t *from_host, uint64_t *to_host);
/* True while the link is moving bytes (no PEER_GONE/DISCONNECT yet). */
bool esim_link_active(const esim_link *l);
/* True once the client turned out to speak RFC 2217 (opts.rfc2217). */
bool esim_link_rfc2217(const esim_link *l);
/* Run the link now: after the caller changed the device from outside (e.g.
 * esim_dev_set_lines from a control socket), so what became due is moved
 * and the timer re-armed. */
void esim_link_kick(esim_link *l);

/* A --pty-lines control message (README "Control lines for ptys"): exactly
 * 2 bytes {dtr, rts}, each 1 (asserted) or 0 (released). Returns false for
 * anything else. */
bool esim_lines_decode(const uint8_t *msg, size_t n, bool *dtr, bool *rts);

#endif
