/* station.c - `espgang station` (station.h). */
#include "station.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define PROBE_MS 1000
#define MAX_PROBES 16
#define QUIET_PROBES 2 /* silent probes in a row that say a finished board was taken out */
#define NEVER UINT64_MAX

typedef struct st_slot {
  eg_station *st;
  size_t index;
  eg_station_state state;
  char note[200];
  bool flashing;     /* the scheduler has the port: from the seat to on_job_idle */
  bool probing;      /* a probe of the pool is on it */
  bool known;        /* a probe has said whether the port is there */
  bool present;      /* ... and it was */
  uint64_t due;      /* next probe (loop ms) */
  bool has_mac;      /* the last unit's MAC */
  uint8_t mac[6];
  char last[200];    /* the last unit's result in words (PASS/FAIL/REMOVAL notes) */
  uint32_t rate;     /* the rate its board last answered at (0: unknown) */
  int quiet;         /* probes in a row that heard nothing from a finished board */
  const eg_chip *chip; /* the last unit's chip (its MAC's registers), NULL: unknown */
  size_t watch;      /* its folder's watch, or SIZE_MAX */
  const char *base;  /* the path's last component (inotify names it) */
} st_slot;

typedef struct st_probe {
  eg_probe probe;
  eg_station *st;
  st_slot *slot;     /* NULL: free */
  eg_probe_config cfg;
} st_probe;

typedef struct st_watch {
  eg_station *st;
  uv_fs_event_t ev;
  char dir[PATH_MAX];
  bool live;
} st_watch;

struct eg_station {
  uv_loop_t *loop;
  const eg_station_config *cfg;
  const eg_station_events *ev;
  void *ctx;
  eg_sched *sched;
  st_slot *slots;
  st_probe *probes;
  unsigned nprobes;
  st_watch *watches;
  size_t nwatches;
  uv_timer_t tick;
  bool tick_live;
  bool stopping;
  eg_station_counters c;
  uint64_t probes_run, probe_bytes;
};

/* ------------------------------------------------------------ helpers */

static uint32_t probe_ms(const eg_station *st) { return st->cfg->probe_ms ? st->cfg->probe_ms : PROBE_MS; }

static void set_state(st_slot *sl, eg_station_state s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_state(st_slot *sl, eg_station_state s, const char *fmt, ...) {
  char note[sizeof sl->note];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(note, sizeof note, fmt, ap);
  va_end(ap);
  if (sl->state == s && strcmp(sl->note, note) == 0) return;
  sl->state = s;
  snprintf(sl->note, sizeof sl->note, "%s", note);
  const eg_station *st = sl->st;
  if (st->ev->on_state) st->ev->on_state(st->ctx, sl->index, s, sl->note);
}

static void message(eg_station *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void message(eg_station *st, const char *fmt, ...) {
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (st->ev->on_message) st->ev->on_message(st->ctx, text);
}

static void fill_counters(const eg_station *st, eg_station_counters *out) {
  *out = st->c;
  const int64_t now = eg_clock_epoch_ms();
  out->elapsed_ms = now > st->c.started_ms ? (uint64_t)(now - st->c.started_ms) : 0;
  out->first_pass_yield = out->units ? (double)out->first_pass / (double)out->units : -1.0;
  const uint64_t span = out->elapsed_ms > 60000 ? out->elapsed_ms : 60000;
  out->units_per_hour = (double)out->units * 3600000.0 / (double)span;
}

void eg_station_get_counters(const eg_station *st, eg_station_counters *out) { fill_counters(st, out); }
eg_station_state eg_station_slot_state(const eg_station *st, size_t slot) { return st->slots[slot].state; }

/* ------------------------------------------------------------ probing */

static void schedule(eg_station *st);

static bool mac_eq(const st_slot *sl, const eg_probe_result *r) {
  return sl->has_mac && r->has_mac && memcmp(sl->mac, r->mac, sizeof sl->mac) == 0;
}

/* Hand the port to the scheduler: a new unit. */
static void seat(st_slot *sl) {
  eg_station *st = sl->st;
  sl->flashing = true;
  sl->quiet = 0;
  sl->has_mac = false;
  set_state(sl, EG_STATION_FLASHING, "%s", "");
  if (eg_sched_seat(st->sched, sl->index) != EG_OK) { /* stopping */
    sl->flashing = false;
    set_state(sl, EG_STATION_WAITING, "%s", "");
  }
}

/* What a probe found, for a slot between units. */
static void probe_done(eg_probe *pr, const eg_probe_result *r) {
  st_probe *sp = pr->data;
  eg_station *st = sp->st;
  st_slot *sl = sp->slot;
  sp->slot = NULL;
  sl->probing = false;
  st->probes_run++;
  st->probe_bytes += r->bytes_tx + r->bytes_rx;
  const bool appeared = sl->known && !sl->present && r->outcome != EG_PROBE_ABSENT;
  sl->known = true;
  sl->present = r->outcome != EG_PROBE_ABSENT;
  sl->due = uv_now(st->loop) + probe_ms(st);
  if (r->outcome == EG_PROBE_FOUND) sl->rate = r->baud;
  if (st->stopping) return;
  if (r->outcome != EG_PROBE_SILENT) sl->quiet = 0;
  switch (sl->state) {
  case EG_STATION_WAITING:
  case EG_STATION_OFFLINE:
    switch (r->outcome) {
    case EG_PROBE_FOUND:
      seat(sl);
      break;
    case EG_PROBE_NOISE:
      /* A board that talks but will not sync: seated now if its port just
       * appeared (it is a new board: its failure is recorded), otherwise
       * only shown, so line noise on an empty adapter never makes rows. */
      if (appeared) {
        seat(sl);
        break;
      }
      set_state(sl, EG_STATION_WAITING, "%s", eg_probe_outcome_words(r->outcome));
      break;
    case EG_PROBE_SILENT:
      set_state(sl, EG_STATION_WAITING, "%s", "");
      break;
    case EG_PROBE_ABSENT:
      set_state(sl, EG_STATION_WAITING, "%s", "no port");
      break;
    case EG_PROBE_ERROR:
      set_state(sl, EG_STATION_OFFLINE, "%s", r->msg);
      break;
    case EG_PROBE__COUNT:
      break;
    }
    break;
  case EG_STATION_PASS:
  case EG_STATION_FAIL:
  case EG_STATION_REMOVAL:
    switch (r->outcome) {
    case EG_PROBE_FOUND:
      if (r->has_mac && sl->has_mac && !mac_eq(sl, r)) { /* swapped between two probes */
        seat(sl);
        break;
      }
      set_state(sl, EG_STATION_REMOVAL, "%s", sl->last);
      break;
    case EG_PROBE_NOISE:
      set_state(sl, EG_STATION_REMOVAL, "%s", sl->last);
      break;
    case EG_PROBE_SILENT:
      /* Nobody answered: taken out, or a loaded machine missed the reply.
       * Only a second silent probe in a row says removed (a board taken
       * for gone would be seated again as a new unit). */
      if (++sl->quiet < QUIET_PROBES) {
        sl->due = uv_now(st->loop) + probe_ms(st) / 2;
        break;
      }
      set_state(sl, EG_STATION_WAITING, "%s", "");
      sl->has_mac = false;
      break;
    case EG_PROBE_ABSENT: /* taken out: the port went */
      set_state(sl, EG_STATION_WAITING, "%s", "no port");
      sl->has_mac = false;
      break;
    case EG_PROBE_ERROR:
      break; /* keep the result shown; try again next period */
    case EG_PROBE__COUNT:
      break;
    }
    break;
  case EG_STATION_FLASHING: /* cannot happen: flashing slots are not probed */
  case EG_STATION__COUNT:
    break;
  }
  schedule(st);
}

static void start_probe(eg_station *st, st_probe *sp, st_slot *sl) {
  const eg_job *job = &st->cfg->jobs[sl->index];
  sp->cfg = st->cfg->probe;
  /* Between units the MAC tells a swapped board from the one just done;
   * before a unit it is the device's job. */
  const bool after_unit = sl->state == EG_STATION_PASS || sl->state == EG_STATION_FAIL || sl->state == EG_STATION_REMOVAL;
  /* The finished board's own chip (a manifest may say chip: auto). */
  sp->cfg.chip = after_unit && sl->chip ? sl->chip : after_unit ? sp->cfg.chip : NULL;
  /* Ask first at the rate the board last answered at (a stub left running
   * listens at the transfer rate): one rate's timeouts saved per probe. */
  if (after_unit && sl->rate && sp->cfg.rates[1] == sl->rate) {
    sp->cfg.rates[1] = sp->cfg.rates[0];
    sp->cfg.rates[0] = sl->rate;
  }
  sp->cfg.hard_reset_after = after_unit && st->cfg->hard_reset_probe;
  sp->slot = sl;
  sl->probing = true;
  if (eg_probe_start(&sp->probe, job->port, &sp->cfg, probe_done) != EG_OK) {
    sp->slot = NULL;
    sl->probing = false;
    sl->due = uv_now(st->loop) + probe_ms(st);
  }
}

static void on_tick(uv_timer_t *t) { schedule(t->data); }

/* Start the probes that are due (earliest first, within the pool) and arm
 * the timer for the next one. */
static void schedule(eg_station *st) {
  if (st->stopping) return;
  const uint64_t now = uv_now(st->loop);
  for (;;) {
    st_probe *free_probe = NULL;
    for (unsigned k = 0; k < st->nprobes && !free_probe; k++)
      if (!st->probes[k].slot && !eg_probe_busy(&st->probes[k].probe)) free_probe = &st->probes[k];
    if (!free_probe) return; /* a probe ending calls us again */
    st_slot *next = NULL;
    for (size_t i = 0; i < st->cfg->njobs; i++) {
      st_slot *sl = &st->slots[i];
      if (sl->flashing || sl->probing) continue;
      if (!next || sl->due < next->due) next = sl;
    }
    if (!next) return;
    if (next->due > now) {
      uv_timer_start(&st->tick, on_tick, next->due - now, 0);
      return;
    }
    start_probe(st, free_probe, next);
  }
}

/* ------------------------------------------------------------ folder watches */

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
  st_watch *w = h->data;
  eg_station *st = w->st;
  (void)events;
  if (status < 0 || st->stopping) return;
  const size_t wi = (size_t)(w - st->watches);
  const uint64_t now = uv_now(st->loop);
  for (size_t i = 0; i < st->cfg->njobs; i++) {
    st_slot *sl = &st->slots[i];
    if (sl->watch != wi || (filename && strcmp(filename, sl->base) != 0)) continue;
    if (!sl->flashing && !sl->probing) sl->due = now;
  }
  schedule(st);
}

/* Watch the folder of every device path (deduplicated): a board seated or
 * pulled there is noticed at once instead of at the next period. */
static void setup_watches(eg_station *st) {
  st->watches = calloc(st->cfg->njobs ? st->cfg->njobs : 1, sizeof *st->watches);
  if (!st->watches) return;
  for (size_t i = 0; i < st->cfg->njobs; i++) {
    st_slot *sl = &st->slots[i];
    const char *port = st->cfg->jobs[i].port;
    if (strstr(port, "://")) continue;
    const char *slash = strrchr(port, '/');
    char dir[PATH_MAX];
    if (slash == port) snprintf(dir, sizeof dir, "/");
    else if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - port), port);
    else snprintf(dir, sizeof dir, ".");
    sl->base = slash ? slash + 1 : port;
    size_t w = 0;
    while (w < st->nwatches && strcmp(st->watches[w].dir, dir) != 0) w++;
    if (w == st->nwatches) {
      st_watch *nw = &st->watches[st->nwatches];
      nw->st = st;
      snprintf(nw->dir, sizeof nw->dir, "%s", dir);
      uv_fs_event_init(st->loop, &nw->ev);
      nw->ev.data = nw;
      nw->live = true;
      st->nwatches++;
      const int rc = uv_fs_event_start(&nw->ev, on_fs_event, dir, 0);
      if (rc != 0)
        message(st, "not watching %s (%s): its ports are probed every %u ms", dir, uv_strerror(rc), probe_ms(st));
    }
    sl->watch = w;
  }
}

/* ------------------------------------------------------------ the scheduler's events */

static void ev_ready(void *ctx, eg_sched *s) {
  eg_station *st = ctx;
  st->sched = s;
  const uint64_t now = uv_now(st->loop);
  /* The first probes spread over one period. */
  for (size_t i = 0; i < st->cfg->njobs; i++) st->slots[i].due = now + (uint64_t)probe_ms(st) * i / st->cfg->njobs;
  for (size_t i = 0; i < st->cfg->njobs; i++)
    if (st->ev->on_state) st->ev->on_state(st->ctx, i, EG_STATION_WAITING, "");
  setup_watches(st);
  if (st->ev->on_ready) st->ev->on_ready(st->ctx, st);
  schedule(st);
}

static void ev_unit_start(void *ctx, size_t job, const eg_unit_record *u) {
  eg_station *st = ctx;
  if (u->attempt == 1) st->c.seated++;
  set_state(&st->slots[job], EG_STATION_FLASHING, "%s", u->attempt > 1 ? "retrying" : "");
  if (st->ev->on_unit_start) st->ev->on_unit_start(st->ctx, job, u);
}

static void ev_unit_stage(void *ctx, size_t job, const eg_unit_record *u, eg_stage stage) {
  eg_station *st = ctx;
  if (st->ev->on_unit_stage) st->ev->on_unit_stage(st->ctx, job, u, stage);
}

static void ev_unit_identity(void *ctx, size_t job, const eg_unit_record *u) {
  eg_station *st = ctx;
  if (st->ev->on_unit_identity) st->ev->on_unit_identity(st->ctx, job, u);
}

static void ev_unit_progress(void *ctx, size_t job, const eg_unit_record *u, uint64_t done, uint64_t total) {
  eg_station *st = ctx;
  if (st->ev->on_unit_progress) st->ev->on_unit_progress(st->ctx, job, u, done, total);
}

static void ev_unit_done(void *ctx, size_t job, const eg_unit_record *u, bool will_retry, bool recorded_ok, eg_dev *dev) {
  eg_station *st = ctx;
  st_slot *sl = &st->slots[job];
  (void)dev;
  st->c.attempts++;
  if (st->ev->on_unit_done) st->ev->on_unit_done(st->ctx, job, u, will_retry, recorded_ok);
  if (will_retry) return;
  /* The unit is over: what the board is, for telling it from the next. */
  if (u->has_mac) {
    sl->has_mac = true;
    memcpy(sl->mac, u->mac, sizeof sl->mac);
  }
  sl->rate = u->baud;
  sl->chip = u->chip[0] ? eg_chip_by_name(u->chip) : NULL;
  char mac[18];
  eg_unit_mac_str(u, mac, sizeof mac);
  if (!mac[0]) snprintf(mac, sizeof mac, "-");
  /* The note a display shows beside the state: the board and, for a
   * failure, where and why (the dashboard shows the rest). */
  eg_station_state to = EG_STATION_FAIL;
  switch (u->result) {
  case EG_RESULT_PASS:
    st->c.passed++;
    st->c.units++;
    if (u->attempt == 1) st->c.first_pass++;
    to = EG_STATION_PASS;
    snprintf(sl->last, sizeof sl->last, "%s", mac);
    break;
  case EG_RESULT_SKIPPED:
    st->c.skipped++;
    to = EG_STATION_PASS;
    snprintf(sl->last, sizeof sl->last, "%s %s", mac,
             st->cfg->gate && st->cfg->gate->mode == EG_GATE_FAILED_MAC ? "did not fail here: not re-flashed"
                                                                        : "already passed: not re-flashed");
    break;
  case EG_RESULT_FAIL:
    st->c.failed++;
    st->c.units++;
    snprintf(sl->last, sizeof sl->last, "%s %s/%s", mac, eg_stage_name(u->fault.stage), eg_err_name(u->fault.code));
    break;
  case EG_RESULT_ABORTED:
  case EG_RESULT_IN_PROGRESS:
    st->c.aborted++;
    snprintf(sl->last, sizeof sl->last, "%s aborted", mac);
    break;
  }
  set_state(sl, to, "%s", sl->last);
  if (st->ev->on_counters) {
    eg_station_counters c;
    fill_counters(st, &c);
    st->ev->on_counters(st->ctx, &c);
  }
}

static void ev_log(void *ctx, size_t job, const char *line) {
  eg_station *st = ctx;
  if (st->ev->on_log) st->ev->on_log(st->ctx, job, line);
}

static void ev_job_idle(void *ctx, size_t job) {
  eg_station *st = ctx;
  st_slot *sl = &st->slots[job];
  sl->flashing = false;
  /* Look at the finished board at once: removed already, or still there. */
  sl->due = uv_now(st->loop);
  schedule(st);
}

/* ------------------------------------------------------------ stopping */

static void shutdown_handles(eg_station *st) {
  if (st->stopping) return;
  st->stopping = true;
  if (st->tick_live) {
    st->tick_live = false;
    uv_close((uv_handle_t *)&st->tick, NULL);
  }
  for (unsigned k = 0; k < st->nprobes; k++) eg_probe_close(&st->probes[k].probe, NULL);
  for (size_t w = 0; w < st->nwatches; w++)
    if (st->watches[w].live) {
      st->watches[w].live = false;
      uv_close((uv_handle_t *)&st->watches[w].ev, NULL);
    }
}

static void ev_stopping(void *ctx, int signum) {
  eg_station *st = ctx;
  message(st, "signal %d: stopping the station; units in flight are recorded as aborted", signum);
  shutdown_handles(st);
}

static void ev_finished(void *ctx) {
  eg_station *st = ctx;
  shutdown_handles(st);
  if (st->ev->on_finished) st->ev->on_finished(st->ctx);
}

void eg_station_stop(eg_station *st) {
  shutdown_handles(st);
  if (st->sched) eg_sched_stop(st->sched);
}

/* ------------------------------------------------------------ run */

eg_err eg_station_run(uv_loop_t *loop, const eg_station_config *cfg, const eg_station_events *ev, void *ctx,
                      eg_station_summary *out, eg_fault *f) {
  static const eg_station_events no_events;
  if (!cfg->recorder || cfg->njobs == 0)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "a station needs slots and a log");
  eg_station *st = calloc(1, sizeof *st);
  const unsigned np = cfg->max_probes ? cfg->max_probes : MAX_PROBES;
  if (st) {
    st->slots = calloc(cfg->njobs, sizeof *st->slots);
    st->probes = calloc(np, sizeof *st->probes);
  }
  if (!st || !st->slots || !st->probes) {
    if (st) free(st->slots), free(st->probes);
    free(st);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  st->loop = loop;
  st->cfg = cfg;
  st->ev = ev ? ev : &no_events;
  st->ctx = ctx;
  st->nprobes = np;
  st->c.started_ms = eg_clock_epoch_ms();
  for (size_t i = 0; i < cfg->njobs; i++) {
    st_slot *sl = &st->slots[i];
    sl->st = st;
    sl->index = i;
    sl->state = EG_STATION_WAITING;
    sl->watch = SIZE_MAX;
    sl->base = cfg->jobs[i].port;
  }
  for (unsigned k = 0; k < np; k++) {
    st->probes[k].st = st;
    eg_probe_init(&st->probes[k].probe, loop, &st->probes[k]);
  }
  uv_timer_init(loop, &st->tick);
  st->tick.data = st;
  st->tick_live = true;

  const eg_sched_config sc = {
    .jobs = cfg->jobs,
    .njobs = cfg->njobs,
    .recorder = cfg->recorder,
    .handle_signals = cfg->handle_signals,
    .gate = cfg->gate,
    .station = true,
  };
  static const eg_sched_events sev = {
    .on_unit_start = ev_unit_start,
    .on_unit_stage = ev_unit_stage,
    .on_unit_identity = ev_unit_identity,
    .on_unit_progress = ev_unit_progress,
    .on_unit_done = ev_unit_done,
    .on_log = ev_log,
    .on_stopping = ev_stopping,
    .on_ready = ev_ready,
    .on_job_idle = ev_job_idle,
    .on_finished = ev_finished,
  };
  eg_station_summary sum;
  memset(&sum, 0, sizeof sum);
  const eg_err r = eg_sched_run(loop, &sc, &sev, st, &sum.sched, f);
  shutdown_handles(st); /* a failed start: close what was opened */
  uv_run(loop, UV_RUN_DEFAULT);
  fill_counters(st, &sum.counters);
  sum.probes = st->probes_run;
  sum.probe_bytes = st->probe_bytes;
  if (out) *out = sum;
  free(st->watches);
  free(st->probes);
  free(st->slots);
  free(st);
  return r;
}
