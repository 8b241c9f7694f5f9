/* dash.h - the live station dashboard: what `espgang station` shows in a
 * browser, served by espgang itself on the station's libuv loop.
 *
 * The station feeds it slot state changes and unit events (the same shape
 * as eg_sched_events, so a scheduler callback forwards straight in); the
 * dashboard keeps the current state of every slot, the shift's counters and
 * the latest failures, and serves:
 *   GET /            the page: one self-contained HTML document (inline CSS
 *                    and JS, a Content-Security-Policy that lets it load
 *                    nothing and connect only to this server)
 *   GET /api/state   the snapshot (eg_dash_snapshot), application/json
 *   GET /api/events  Server-Sent Events: one event per change, each a JSON
 *                    object with "event" (below), "id: <instance>-<seq>" so
 *                    a reconnecting browser resumes (Last-Event-ID) from the
 *                    last EG_DASH_REPLAY events (if they fill at most half
 *                    its client_out_cap), else starts again with a
 *                    snapshot; a comment line every heartbeat
 *   GET /healthz     "ok" (never needs the token)
 * HEAD works for each; other methods 405, other paths 404.
 *
 * Events (SSE data, and on_event for the station's --json output; one line
 * of JSON each; unit events carry every member of eg_json_unit, as the
 * flash command's --json does):
 *   snapshot       the whole state, as GET /api/state (first on a new stream)
 *   slot_state     index, slot, state, state_text, note, since_ms
 *   unit_start     index + the unit record
 *   stage          index, slot, attempt, stage, stage_label
 *   progress       index, slot, stage, done, total (at most one per slot per
 *                  progress_ms; the last value always follows)
 *   unit_identity  index + the unit record (MAC, chip... now known)
 *   unit_done      index + the unit record + will_retry, recorded, and for
 *                  a failure fail_stage_label, error_text
 *   failure        one element of the snapshot's failures[] (every failed
 *                  attempt, retried or not)
 *   counters       the snapshot's counters object, after each final result
 *   message        text, time_ms: a station-wide notice
 *
 * Counters of the shift (since eg_dash_open): a unit counts once, when its
 * last attempt ends (unit_done with will_retry false): passed, failed,
 * aborted, skipped (already held what it needs: not flashed); units =
 * passed + failed; first_pass = units that passed on
 * attempt 1; first_pass_yield = first_pass / units (null when units is 0);
 * units_per_hour = units * 3600000 / max(elapsed ms, 60000); attempts counts
 * every unit_done.
 *
 * Slot state: set by eg_dash_slot_state, and implied by unit events:
 * unit_start puts a slot in FLASHING, a final unit_done in PASS or FAIL
 * (ABORTED and SKIPPED leave the state to the station). The slot also keeps the unit's stage,
 * progress, identity and its last result (result, fail stage, error code,
 * the chip's status bytes, message); a unit_start with attempt 1 (a new
 * board) clears the last result, a retry keeps the failure it retries.
 *
 * Access: the server binds `address` (default 127.0.0.1). A non-loopback
 * address needs a token (eg_dash_open refuses it otherwise). With a token,
 * every request but /healthz must carry it: "Authorization: Bearer TOKEN",
 * or the cookie that "GET /?token=TOKEN" sets (HttpOnly, SameSite=Strict,
 * named per port) before redirecting to "/"; else 401. Tokens are compared in
 * constant time. Without a token (loopback only) the Host header must name a
 * loopback host (localhost, 127.x.x.x, [::1]), which defeats DNS rebinding.
 *
 * Threading and memory: loop thread only; nothing blocks. Memory is bounded:
 * the slots given at open, the latest max_failures failures, the last
 * EG_DASH_REPLAY events, and per client at most client_out_cap bytes queued
 * (a client that falls further behind is dropped; its browser reconnects).
 * Labels and strings passed in are copied. Out-of-range slot indexes are
 * ignored.
 */
#ifndef EG_DASH_H
#define EG_DASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "errors.h"
#include "unit.h"

/* A slot's place in the station cycle: waiting -> flashing -> pass/fail ->
 * removal -> waiting. Columns: name, JSON name (stable: MES reads it),
 * the tile's words (short: a 100-slot grid has small tiles). */
#define EG_STATION_STATE_MAP(XX)                 \
  XX(WAITING,  "waiting",  "waiting")            \
  XX(FLASHING, "flashing", "flashing")           \
  XX(PASS,     "pass",     "passed")             \
  XX(FAIL,     "fail",     "failed")             \
  XX(REMOVAL,  "removal",  "remove board")       \
  XX(OFFLINE,  "offline",  "offline")

typedef enum eg_station_state {
#define EG_STATION_STATE_ENUM(name, json, words) EG_STATION_##name,
  EG_STATION_STATE_MAP(EG_STATION_STATE_ENUM)
#undef EG_STATION_STATE_ENUM
  EG_STATION__COUNT
} eg_station_state;

const char *eg_station_state_name(eg_station_state s);  /* "waiting" */
const char *eg_station_state_words(eg_station_state s); /* "remove board" */

#define EG_DASH_REPLAY 512       /* events kept for a resuming client */
#define EG_DASH_TOKEN_MIN 16
#define EG_DASH_TOKEN_MAX 128

typedef struct eg_dash eg_dash;

typedef struct eg_dash_options {
  const char *station;         /* the manifest's station name; required */
  const char *const *labels;   /* nslots slot labels, in slot order */
  size_t nslots;
  const char *address;         /* numeric IPv4/IPv6; NULL: "127.0.0.1" */
  int port;                    /* 0: ephemeral (see eg_dash_url) */
  const char *token;           /* NULL: none (loopback only); else
                                  EG_DASH_TOKEN_MIN..MAX characters of
                                  A-Z a-z 0-9 - . _ ~ */
  size_t max_failures;         /* failures kept; 0: 50 */
  size_t max_clients;          /* HTTP connections; 0: 256 */
  size_t client_out_cap;       /* bytes queued per client; 0: 1 MiB */
  uint32_t heartbeat_ms;       /* SSE comment interval; 0: 15000 */
  uint32_t progress_ms;        /* min gap between progress events per slot; 0: 500 */
  uint32_t request_timeout_ms; /* 0: 30000 */
  uint32_t stall_timeout_ms;   /* 0: 30000 */
  /* The wall clock, Unix epoch ms (tests fake it); NULL: CLOCK_REALTIME. */
  int64_t (*clock_ms)(void *ctx);
  void *clock_ctx;
  /* Every event, as the one line of JSON sent to browsers (no newline):
   * what the station's --json output prints. Optional. */
  void (*on_event)(void *ctx, const char *json);
  void *event_ctx;
} eg_dash_options;

/* Start serving on `loop`. EG_INVAL: bad options (no station, a bad token,
 * a non-loopback address without a token, a non-numeric address); EG_IO: the
 * port cannot be bound; EG_NOMEM. f says which, in one line. */
eg_err eg_dash_open(eg_dash **out, uv_loop_t *loop, const eg_dash_options *o, eg_fault *f);
/* "http://127.0.0.1:8080/" with the bound port (the host's name for a
 * wildcard address). Without the token; valid until close. */
const char *eg_dash_url(const eg_dash *d);
int eg_dash_port(const eg_dash *d);
/* Stop serving: every client is disconnected; cb(ctx) runs when all handles
 * are closed and d is freed. No eg_dash_* call on d after this. */
void eg_dash_close(eg_dash *d, void (*cb)(void *ctx), void *ctx);

/* ---- feeding (same arguments as eg_sched_events; loop thread) ---- */

/* The slot's station state; note: extra words for the tile ("already
 * passed: not re-flashed", "port /dev/ttyUSB3 missing") or NULL. No event
 * when neither changed. */
void eg_dash_slot_state(eg_dash *d, size_t slot, eg_station_state st, const char *note);
void eg_dash_unit_start(eg_dash *d, size_t slot, const eg_unit_record *u);
void eg_dash_unit_stage(eg_dash *d, size_t slot, const eg_unit_record *u, eg_stage stage);
void eg_dash_unit_identity(eg_dash *d, size_t slot, const eg_unit_record *u);
void eg_dash_unit_progress(eg_dash *d, size_t slot, const eg_unit_record *u, uint64_t done, uint64_t total);
/* u->result PASS, FAIL, ABORTED or SKIPPED; will_retry: another attempt follows (the
 * unit is not counted yet); recorded: the log holds the row (false shows
 * "NOT RECORDED" on the tile). */
void eg_dash_unit_done(eg_dash *d, size_t slot, const eg_unit_record *u, bool will_retry, bool recorded);
/* A station-wide notice (database trouble, stopping...). */
void eg_dash_message(eg_dash *d, const char *text);

/* ---- reading ---- */

typedef struct eg_dash_counters {
  uint64_t units, passed, failed, aborted, skipped, first_pass, attempts;
  double first_pass_yield; /* < 0 when units is 0 */
  double units_per_hour;
  int64_t started_ms;
} eg_dash_counters;

void eg_dash_get_counters(const eg_dash *d, eg_dash_counters *out);
/* The snapshot as JSON (malloc'd; NULL when out of memory):
 * {"event":"snapshot","station","version","started_ms","now_ms","max_failures",
 *  "counters":{units,passed,failed,aborted,skipped,first_pass,attempts,
 *              first_pass_yield,units_per_hour,started_ms},
 *  "slots":[{index,slot,state,state_text,note,since_ms,in_state_ms,port,
 *            attempt,stage,stage_label,done,total,mac,chip,chip_desc,
 *            last_result,last_stage,last_stage_label,last_error,
 *            last_error_text,
 *            last_status,last_message,last_finished_ms,recorded}],
 *  "failures":[{index,slot,mac,chip,attempt,stage,stage_label,error,
 *               error_text,opcode,status,message,time_ms,will_retry}]}
 * newest failure first; absent values are "" (strings) or 0 (numbers);
 * last_result is "" until the slot's first unit ends. */
char *eg_dash_snapshot(const eg_dash *d);
/* Live SSE clients (tests, diagnostics). */
size_t eg_dash_clients(const eg_dash *d);

/* A random token for a station that listens beyond localhost: 32 characters
 * of [0-9a-f] (128 bits from getrandom). buf >= 33 bytes. EG_IO if the
 * kernel has no randomness to give. */
eg_err eg_dash_make_token(char *buf, size_t len);

#endif
