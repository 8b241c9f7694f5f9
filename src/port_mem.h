/* port_mem.h - in-memory ports, for tests: "mem://NAME" opens one end of a
 * fresh socketpair whose other end goes to a peer the test registered under
 * NAME (espsim's link: esim_link_start(loop, dev, fd, opts)). The port is
 * then an fd like any other for the caller's poll, and its DTR/RTS and baud
 * changes reach the peer as calls (wire them to esim_dev_set_lines() and to
 * the link's host rate), so resets run in process, without a pty or a TCP
 * listener.
 *
 * Contract
 *   - The registry is process-wide, the one piece of mutable state of the
 *     port layer outside an eg_port (a port is named by a string, so the
 *     name must lead somewhere); it is guarded by a mutex and holds at most
 *     EG_PORT_MEM_MAX names. Tests only: production code never registers.
 *   - eg_port_mem_register copies *peer; ctx must stay valid until
 *     eg_port_mem_unregister, which must not be called while a port of that
 *     name is open.
 *   - One open port per name (a second open is EG_PORT_BUSY, like a locked
 *     device).
 *   - Callbacks run on the thread that calls the port functions, from
 *     eg_port_open / eg_port_set_lines / eg_port_set_baud / eg_port_close.
 */
#ifndef EG_PORT_MEM_H
#define EG_PORT_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "errors.h"

#define EG_PORT_MEM_MAX 64
#define EG_PORT_MEM_NAME_MAX 64 /* bytes of NAME, terminator included */

typedef struct eg_port_mem_peer {
  /* mem://NAME was opened: fd is the peer's end of an AF_UNIX stream
   * socketpair (non-blocking, close-on-exec), now owned by the peer. Return
   * false to refuse the open (the port closes fd then). Required. */
  bool (*attach)(void *ctx, int fd);
  /* The port closed its end (the peer's end now reads EOF). May be NULL. */
  void (*detach)(void *ctx);
  /* The lines after a change, both levels (true = asserted); they start
   * released at open, as espsim's RFC 2217 front end assumes. NULL: the
   * port has no DTR/RTS (can_reset false, like a pty). */
  void (*set_lines)(void *ctx, bool dtr, bool rts);
  /* The host's rate: at open, then at every change. May be NULL. */
  void (*set_baud)(void *ctx, uint32_t baud);
} eg_port_mem_peer;

/* EG_INVAL: empty or too long name, no attach callback, name taken, table
 * full. NAME is what follows "mem://". */
eg_err eg_port_mem_register(const char *name, const eg_port_mem_peer *peer, void *ctx);
void eg_port_mem_unregister(const char *name);

#endif
