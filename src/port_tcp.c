/* port_tcp.c - the TCP socket backend, "socket://host:port" (pyserial's
 * spelling, which esptool accepts): raw bytes over one TCP connection, e.g.
 * to espsim's TCP front end or a serial-to-network bridge. No baud rate
 * (remembered, never sent), no DTR/RTS. The URL, the connect and all the
 * I/O are the shared helpers'.
 */
#include "port_backend.h"
#include "port_util.h"

#define SCHEME "socket://"

static eg_err tcp_check(const char *name, eg_port_caps *caps, char *key, size_t keycap, char *why, size_t whycap) {
  (void)caps;
  return eg__url_check(name, SCHEME, key, keycap, why, whycap);
}

static eg_err tcp_open(eg_port *p, eg_fault *f) { return eg__net_connect(p, f, SCHEME); }

const eg_port_backend eg__port_tcp = {
  .scheme = SCHEME,
  .caps = {.kind = "TCP socket", .can_reset = false, .has_baud = false, .is_network = true},
  .socket = true,
  .lock = EG__LOCK_URL,
  .check = tcp_check,
  .claims = NULL,
  .open = tcp_open,
  .finish_connect = eg__net_finish_connect,
  .close = eg__fd_close,
  .read = eg__fd_read,
  .write = eg__fd_write,
  .set_baud = eg__port_baud_ignored,
  .set_lines = eg__port_no_lines,
  .flush_input = eg__fd_flush_input,
  .wants_write = eg__port_no_queue,
  .flush_pending = eg__port_nothing_pending,
};
