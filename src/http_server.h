/* http_server.h - a small HTTP/1.1 server on the caller's libuv loop, for
 * the station dashboard: complete responses and long-lived streams
 * (Server-Sent Events). Everything runs on the loop thread; nothing blocks.
 *
 * Ownership: the server owns its listener and connections. A connection
 * (eg_http_conn) is valid from on_request until the response is complete,
 * or, for a stream, until on_stream_closed has been called for it.
 *
 * Requests: each connection has its own push parser (http.h) and buffer.
 * A malformed request is answered by the server itself (400, 413, 414, 431,
 * 501, 505; text body, "Connection: close") and the connection closed. A
 * well-formed request goes to on_request, which must answer it before
 * returning, with eg_http_respond() or eg_http_stream_begin() (otherwise the
 * server answers 500). Pipelined requests are answered in order; while a
 * connection has more than out_cap / 2 bytes of responses waiting, the
 * server reads no further requests from it (so a client that pipelines and
 * never reads costs at most about out_cap bytes).
 *
 * Bounds on a client that is slow or stuck:
 *   - a request must be complete within request_timeout_ms of the
 *     connection's accept or of the previous request (idle keep-alive
 *     included); else the connection is closed;
 *   - queued output: a write that would take a connection above out_cap
 *     bytes drops the connection; output that makes no progress for
 *     stall_timeout_ms drops it too;
 *   - at most max_conns connections; one more is accepted and closed at once
 *     (after a 503 if the kernel takes it without waiting).
 * After the last response (Connection: close, HTTP/1.0, an error) the server
 * shuts down its side and discards input for up to 2 s before closing, so
 * the response is not lost to a reset.
 *
 * HEAD is answered like GET without the body (Content-Length kept).
 */
#ifndef EG_HTTP_SERVER_H
#define EG_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "errors.h"
#include "http.h"

typedef struct eg_http_server eg_http_server;
typedef struct eg_http_conn eg_http_conn;

typedef struct eg_http_server_opts {
  const char *address;          /* numeric IPv4 or IPv6; NULL: "127.0.0.1" */
  int port;                     /* 0: an ephemeral port (eg_http_server_port) */
  size_t max_conns;             /* 0: 256 */
  size_t out_cap;               /* bytes queued per connection; 0: 1 MiB */
  uint32_t request_timeout_ms;  /* 0: 30000 */
  uint32_t stall_timeout_ms;    /* 0: 30000 */
} eg_http_server_opts;

typedef struct eg_http_server_cbs {
  /* A well-formed request; answer it before returning. */
  void (*on_request)(void *ctx, eg_http_conn *c, const eg_http_req *req);
  /* A stream ended (the client left, was dropped, or the server closes).
   * The connection pointer is invalid once this returns. Optional. */
  void (*on_stream_closed)(void *ctx, eg_http_conn *c);
} eg_http_server_cbs;

/* Bind and listen. EG_INVAL for a bad address, EG_IO when bind/listen fail
 * (port taken...), EG_NOMEM; f says which and why. */
eg_err eg_http_server_start(eg_http_server **out, uv_loop_t *loop, const eg_http_server_opts *o,
                            const eg_http_server_cbs *cbs, void *ctx, eg_fault *f);
/* The bound port (the chosen one when opts.port was 0). */
int eg_http_server_port(const eg_http_server *s);
/* Live connections (for tests and diagnostics). */
size_t eg_http_server_conns(const eg_http_server *s);
/* Close the listener and every connection (streams get on_stream_closed);
 * on_closed(ctx) runs once every handle is closed and the server freed. */
void eg_http_server_close(eg_http_server *s, void (*on_closed)(void *ctx), void *ctx);

/* ---- answering a request (inside on_request) ----
 * `headers`: extra header lines, each ending in "\r\n", or NULL. The server
 * adds Date, Content-Length (not for streams), Connection, and
 * X-Content-Type-Options: nosniff. */
void eg_http_respond(eg_http_conn *c, int status, const char *headers, const char *content_type,
                     const void *body, size_t len);
/* Start a response whose body is written later with eg_http_stream_send and
 * ends when the connection closes (no Content-Length; Connection: close).
 * For HEAD, the head is sent and the connection completes like a response.
 * Returns false if the connection could not take it (then it is closing). */
bool eg_http_stream_begin(eg_http_conn *c, int status, const char *headers, const char *content_type);

/* A read-only, reference-counted byte buffer: one event frame shared by
 * every stream it is sent to. */
typedef struct eg_http_buf {
  unsigned refs;
  size_t len;
  char data[];
} eg_http_buf;

/* A buffer holding a copy of data (refs = 1); NULL when out of memory. */
eg_http_buf *eg_http_buf_new(const void *data, size_t len);
eg_http_buf *eg_http_buf_ref(eg_http_buf *b);
void eg_http_buf_unref(eg_http_buf *b);

/* Queue b on a stream (takes its own reference). false: the connection is
 * closing, or this write would exceed out_cap and the connection is being
 * dropped (on_stream_closed follows from the loop, never from this call). */
bool eg_http_stream_send(eg_http_conn *c, eg_http_buf *b);
/* The same for a copy of a string. */
bool eg_http_stream_send_str(eg_http_conn *c, const char *s);
/* Bytes queued on the connection and not yet taken by the kernel. */
size_t eg_http_conn_queued(const eg_http_conn *c);
/* The caller's pointer for a connection (NULL until set). */
void eg_http_conn_set_data(eg_http_conn *c, void *data);
void *eg_http_conn_data(const eg_http_conn *c);
/* The peer's address as text ("127.0.0.1:51234"). */
const char *eg_http_conn_peer(const eg_http_conn *c);

#endif
