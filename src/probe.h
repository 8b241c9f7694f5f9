/* probe.h - a station's quiet look at one port: is a board there, is it in
 * download mode, which one is it?
 *
 * One probe, start to finish, on the loop (every wait a timer):
 *   1. a device path is looked up first (uv_fs_stat): absent -> ABSENT,
 *      without opening anything;
 *   2. the link is opened (link.h); a refused or timed-out connection to a
 *      socket:// or rfc2217:// port is ABSENT, any other open failure ERROR;
 *   3. where the port can drive DTR/RTS and `before` has a plan, the plan's
 *      first sequence (reset.h) puts the chip into its loader;
 *   4. SYNC, up to `tries` times per rate, each try waiting `sync_ms` for
 *      the first reply (the other seven replies are left for whoever talks
 *      next: the device drains before its own SYNC). Two rates when
 *      `rates[1]` is set: a stub left running by the last unit listens at
 *      the transfer rate, a fresh ROM at the connect rate;
 *   5. with `chip` set, READ_REG of the chip's identity registers
 *      (eg_chip_ident_regs) decoded into the MAC (eg_chip_decode);
 *   6. with `hard_reset_after` and a reset done in 3, esptool's HardReset
 *      so a finished board goes back to its application;
 *   7. the port is closed (synchronously: the next opener finds it free).
 * Only SYNC and READ_REG are ever sent: nothing is written to the chip.
 *
 * Outcomes: FOUND (a loader answered SYNC; `mac` when read), NOISE (no
 * answer, but the board sent bytes: its application or a boot loop),
 * SILENT (the port is there, nothing was heard), ABSENT (no such path,
 * connection refused, or the port vanished during the probe), ERROR (there
 * but unusable: busy, no permission; msg says).
 *
 * Cost, at 115200 baud: a FOUND probe moves 46 bytes out and 14 in
 * (SYNC and its first reply: ~6 ms on the wire, plus the ROM's ~1-7 ms and
 * the adapter's latency); reading an ESP32's MAC adds 8 READ_REGs (~2.5 ms
 * each). A port where nothing answers is held tries x sync_ms (default 2 x
 * 100 ms per rate). A reset plan adds 150 ms (UnixTightReset(0.05)), the
 * hard reset 100 ms. An absent device path costs one stat().
 *
 * Ownership: the caller embeds the eg_probe, calls eg_probe_init once, may
 * run any number of probes one after another (eg_probe_start after the
 * previous one's callback), and ends with eg_probe_close, whose callback
 * says when the struct may be freed. Loop thread only.
 */
#ifndef EG_PROBE_H
#define EG_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "chips.h"
#include "link.h"
#include "options.h"

/* Columns: name, the words a display shows. */
#define EG_PROBE_OUTCOME_MAP(XX)                        \
  XX(FOUND,  "a chip in download mode answered")         \
  XX(NOISE,  "a board talks but does not answer SYNC")   \
  XX(SILENT, "nothing answers")                          \
  XX(ABSENT, "no port")                                  \
  XX(ERROR,  "the port cannot be used")

typedef enum eg_probe_outcome {
#define EG_PROBE_OUTCOME_ENUM(name, words) EG_PROBE_##name,
  EG_PROBE_OUTCOME_MAP(EG_PROBE_OUTCOME_ENUM)
#undef EG_PROBE_OUTCOME_ENUM
  EG_PROBE__COUNT
} eg_probe_outcome;

const char *eg_probe_outcome_name(eg_probe_outcome o); /* "FOUND" */
const char *eg_probe_outcome_words(eg_probe_outcome o);

typedef struct eg_probe_config {
  eg_before before;         /* the reset plan (where the port can reset) */
  uint32_t rates[2];        /* SYNC rates; rates[1] 0: one rate */
  uint32_t sync_ms;         /* wait for the first SYNC reply; 0: 100 */
  int tries;                /* SYNC tries per rate; 0: 2 */
  uint32_t reg_ms;          /* wait for each READ_REG reply; 0: 200 */
  uint32_t connect_ms;      /* network ports' connect timeout; 0: 1000 */
  const eg_chip *chip;      /* read this chip's MAC; NULL: SYNC only */
  bool hard_reset_after;    /* after a reset into the loader, HardReset back */
} eg_probe_config;

typedef struct eg_probe_result {
  eg_probe_outcome outcome;
  bool stub;                /* FOUND: a flasher stub answered (SYNC value 0) */
  uint32_t baud;            /* FOUND: the rate it answered at */
  bool has_mac;
  uint8_t mac[6];
  size_t noise_bytes;       /* bytes heard outside frames */
  uint64_t bytes_tx, bytes_rx;
  uint32_t elapsed_ms;
  char msg[256];            /* ERROR / ABSENT: the port's words */
} eg_probe_result;

typedef struct eg_probe eg_probe;
typedef void (*eg_probe_cb)(eg_probe *p, const eg_probe_result *r);

typedef enum eg_probe_phase {
  EG_PROBE_IDLE, EG_PROBE_STAT, EG_PROBE_OPENING, EG_PROBE_RESET, EG_PROBE_SYNC, EG_PROBE_REGS,
  EG_PROBE_AFTER, EG_PROBE_DONE /* reported on the next loop turn */, EG_PROBE_CLOSING
} eg_probe_phase;

struct eg_probe {
  void *data;               /* the caller's pointer */
  /* --- private --- */
  uv_loop_t *loop;
  eg_link link;
  uv_timer_t timer;
  uv_fs_t stat_req;
  bool stat_busy;
  eg_probe_phase phase;
  const eg_probe_config *cfg;
  char port[256];
  eg_probe_cb cb;
  eg_probe_result res;
  uint64_t t0;
  const struct eg_reset_step *steps;
  int step;
  bool did_reset;
  int rate_i, try_i;
  uint8_t status_len;
  uint32_t regs[EG_CHIP_IDENT_MAX];
  uint32_t vals[EG_CHIP_IDENT_MAX];
  size_t nregs, reg_i;
  uint64_t tx0, rx0;        /* the link's counters when this probe began */
  unsigned handles;
  void (*close_cb)(eg_probe *p);
};

void eg_probe_init(eg_probe *p, uv_loop_t *loop, void *data);
/* Probe `port` (copied); cfg must outlive the probe. cb runs once, on the
 * loop, never from within this call. EG_INVAL if a probe is running. */
eg_err eg_probe_start(eg_probe *p, const char *port, const eg_probe_config *cfg, eg_probe_cb cb);
bool eg_probe_busy(const eg_probe *p);
/* Stop a running probe now (its callback never runs) and release
 * everything; close_cb (may be NULL) runs when the struct may be freed. */
void eg_probe_close(eg_probe *p, void (*close_cb)(eg_probe *p));

#endif
