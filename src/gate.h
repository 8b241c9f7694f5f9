/* gate.h - which units are flashed: the policy asked at each device's gate
 * (chip, MAC and flash known, nothing written yet; device.h on_gate). The
 * log is consulted through the recorder (eg_recorder_call), on its work
 * thread and in order with the writes, never on the loop. Shared by station
 * mode and the reruns of `flash --retry-failed`.
 *
 * Policies:
 *   ALL         every unit is flashed (no gate is installed)
 *   NOT_PASSED  a station: a unit whose MAC already passed with exactly
 *               these images (eg_db_mac_passed) is skipped, unless
 *               `reflash`; a unit without a MAC is flashed
 *   FAILED_MAC  --retry-failed --by-mac: only a MAC with a failed attempt
 *               in this station's and manifest's runs and no pass since
 *               (eg_db_mac_needs_retry) is flashed; others, and a unit
 *               whose MAC could not be read, are skipped
 * The answer: EG_OK (flash), EG_SKIPPED with the reason in words (the unit
 * is recorded as skipped), or EG_DB when the log could not answer (the unit
 * is not flashed and fails with that message: nothing unrecorded is
 * written).
 *
 * Ownership: the caller keeps the eg_gate (and the strings it points to)
 * alive for the run; an eg_gate_ask is owned by the caller (embed one per
 * port) and must stay alive until its callback has run.
 */
#ifndef EG_GATE_H
#define EG_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "image.h"
#include "recorder.h"
#include "unit.h"

/* Columns: name, the words of the --json/summary "policy". */
#define EG_GATE_MODE_MAP(XX)                                   \
  XX(ALL,        "all")                                        \
  XX(NOT_PASSED, "skip units that already passed")             \
  XX(FAILED_MAC, "only MACs whose latest attempt failed")

typedef enum eg_gate_mode {
#define EG_GATE_MODE_ENUM(name, words) EG_GATE_##name,
  EG_GATE_MODE_MAP(EG_GATE_MODE_ENUM)
#undef EG_GATE_MODE_ENUM
  EG_GATE__COUNT
} eg_gate_mode;

const char *eg_gate_mode_words(eg_gate_mode m);

typedef struct eg_gate {
  eg_gate_mode mode;
  const char *station;            /* FAILED_MAC: the runs looked at */
  const uint8_t *manifest_sha256; /* FAILED_MAC: 32 bytes */
  const char *images;             /* NOT_PASSED: eg_images_signature() */
  bool reflash;                   /* NOT_PASSED: flash anyway */
} eg_gate;

/* "offset:md5,..." (the MD5 of each image as flashed, header patches
 * included: what the chip's flash holds afterwards; every chip's images
 * of a mixed rack), ordered by offset then MD5 (NULL entries skipped): the
 * form the log's runs are compared in (db_rerun.h). Caller frees; NULL when
 * out of memory. */
char *eg_images_signature(const eg_image *const *images, size_t n);

/* Does the gate need the log at all? (ALL, or NOT_PASSED with reflash: no.) */
bool eg_gate_active(const eg_gate *g);

typedef struct eg_gate_ask eg_gate_ask;
typedef void (*eg_gate_cb)(void *ctx, eg_err decision, const char *why);

struct eg_gate_ask {
  /* --- private --- */
  const eg_gate *gate;
  char mac[18];
  bool answer;       /* the query's result */
  eg_gate_cb cb;
  void *ctx;
  char why[384];
};

/* Ask about unit u (its MAC). cb runs on the loop thread, after the
 * recorder's earlier calls; without a recorder (nothing to consult) or
 * with an inactive gate it runs at once with EG_OK. */
void eg_gate_ask_start(eg_gate_ask *a, const eg_gate *g, eg_recorder *rec, const eg_unit_record *u, eg_gate_cb cb,
                       void *ctx);

#endif
