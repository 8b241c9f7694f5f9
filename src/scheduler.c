/* scheduler.c - the scheduler (see scheduler.h). */
#include "scheduler.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "port.h"

#define RETRY_DELAY_MS 500     /* let a port settle between attempts */
#define PORT_WAIT_MS 10000     /* a replugged USB adapter enumerates in a second or two */
#define PORT_POLL_MS 200

typedef enum slot_phase {
  PH_IDLE,       /* not started; station mode: waiting for the next unit */
  PH_RECORDING,  /* the attempt's row is being inserted */
  PH_RUNNING,    /* the device is working */
  PH_FINISHING,  /* the final row is being written */
  PH_WAITING,    /* between attempts: pause, or waiting for the port to come back */
  PH_DONE        /* no further attempt */
} slot_phase;

typedef struct slotrun {
  eg_sched *s;
  size_t index;
  slot_phase phase;
  eg_dev dev;
  bool dev_live;          /* initialised and not yet closed */
  bool start_when_closed; /* the next attempt waits for the last one's handles */
  int attempt;
  int64_t unit_id;
  uint64_t wait_t0;       /* when waiting for the port began */
  bool wait_port;         /* the last attempt lost its port */
  uint32_t port_waited_ms; /* how long this attempt waited for its port */
  bool idle_pending;      /* station: tell on_job_idle once the device is closed */
  eg_gate_ask ask;        /* the gate's question about this attempt's unit */
  uv_timer_t timer;       /* retry pause / port polling */
  uv_fs_t stat_req;
  bool stat_busy;         /* a port poll in flight (a stat, or a USB location lookup) */
  uv_work_t loc_req;      /* the lookup of a job bound to a USB location */
  eg_err loc_err;
  char loc_name[256];
  char port[256];         /* the job's port as last seen: a USB-location slot follows its port's renames */
  eg_unit_record last;    /* the latest attempt's record */
} slotrun;

struct eg_sched {
  uv_loop_t *loop;
  const eg_sched_config *cfg;
  const eg_sched_events *ev;
  void *ctx;
  slotrun *slots;
  size_t remaining;       /* slots not done */
  bool stopping, ending, ended, finished;
  uint64_t t0;
  eg_sched_summary sum;
  uv_signal_t sig_int, sig_term;
  bool signals_on;
};

static void start_attempt(slotrun *sr);
static void begin_device(slotrun *sr);
static void maybe_end(eg_sched *s);

static const eg_job *job_of(const slotrun *sr) { return &sr->s->cfg->jobs[sr->index]; }

static void count_result(eg_sched *s, eg_result r) {
  switch (r) {
  case EG_RESULT_PASS: s->sum.passed++; break;
  case EG_RESULT_FAIL: s->sum.failed++; break;
  case EG_RESULT_SKIPPED: s->sum.skipped++; break;
  case EG_RESULT_ABORTED:
  case EG_RESULT_IN_PROGRESS: s->sum.aborted++; break;
  }
}

static void job_idle(slotrun *sr) {
  sr->idle_pending = false;
  if (sr->s->ev->on_job_idle) sr->s->ev->on_job_idle(sr->s->ctx, sr->index);
}

/* The job ends for good: the run waits for no further attempt of it. */
static void job_done(slotrun *sr) {
  eg_sched *s = sr->s;
  sr->phase = PH_DONE;
  s->remaining--;
  maybe_end(s);
}

/* The unit is over (no further attempt). A station's job waits for the
 * next unit; any other job is done. */
static void slot_done(slotrun *sr) {
  eg_sched *s = sr->s;
  count_result(s, sr->last.result);
  if (s->cfg->station && !s->stopping) {
    sr->phase = PH_IDLE;
    sr->idle_pending = true;
    if (!sr->dev_live) job_idle(sr);
    return;
  }
  job_done(sr);
}

/* ---------------------------------------------------------- the device */

static slotrun *dev_slot(eg_dev *d) { return d->data; }

static void dev_stage(eg_dev *d, eg_stage stage) {
  slotrun *sr = dev_slot(d);
  eg_sched *s = sr->s;
  if (s->ev->on_unit_stage) s->ev->on_unit_stage(s->ctx, sr->index, &d->rec, stage);
  if (s->cfg->recorder) eg_recorder_unit_update(s->cfg->recorder, sr->unit_id, &d->rec);
}

static void dev_identity(eg_dev *d) {
  slotrun *sr = dev_slot(d);
  eg_sched *s = sr->s;
  if (s->ev->on_unit_identity) s->ev->on_unit_identity(s->ctx, sr->index, &d->rec);
  if (s->cfg->recorder) eg_recorder_unit_update(s->cfg->recorder, sr->unit_id, &d->rec);
}

static void dev_progress(eg_dev *d, uint64_t done, uint64_t total) {
  slotrun *sr = dev_slot(d);
  if (sr->s->ev->on_unit_progress) sr->s->ev->on_unit_progress(sr->s->ctx, sr->index, &d->rec, done, total);
}

static void dev_log(eg_dev *d, const char *line) {
  slotrun *sr = dev_slot(d);
  if (sr->s->ev->on_log) sr->s->ev->on_log(sr->s->ctx, sr->index, line);
}

static void dev_closed(eg_dev *d) {
  slotrun *sr = dev_slot(d);
  sr->dev_live = false;
  if (sr->start_when_closed) {
    sr->start_when_closed = false;
    begin_device(sr);
    return;
  }
  if (sr->phase == PH_IDLE && sr->idle_pending) job_idle(sr);
}

/* The gate's answer (gate.c): run the operations, or end the unit without
 * writing. The recorder serves calls in order, so the answer comes before
 * the final row of an attempt that was aborted meanwhile: a device no
 * longer at its gate ignores it. */
static void gate_answer(void *ctx, eg_err decision, const char *why) {
  slotrun *sr = ctx;
  if (sr->phase != PH_RUNNING || !sr->dev_live) return;
  eg_dev_gate(&sr->dev, decision, why);
}

static void dev_gate(eg_dev *d) {
  slotrun *sr = dev_slot(d);
  eg_gate_ask_start(&sr->ask, sr->s->cfg->gate, sr->s->cfg->recorder, &d->rec, gate_answer, sr);
}

/* Would another attempt be worth it? In a station a port that vanished or
 * will not open means the board was pulled: the next one seated is a new
 * unit, not this unit's retry. */
static bool will_retry(const slotrun *sr, eg_err result) {
  const eg_sched *s = sr->s;
  if (s->cfg->station && (result == EG_PORT_GONE || result == EG_PORT_OPEN)) return false;
  return result != EG_OK && eg_err_retryable(result) && !s->stopping && sr->attempt < job_of(sr)->max_attempts;
}

static void attempt_over(slotrun *sr, const eg_unit_record *u, bool retry, bool recorded_ok) {
  eg_sched *s = sr->s;
  s->sum.attempts++;
  if (!recorded_ok) s->sum.db_error = true;
  if (s->ev->on_unit_done) s->ev->on_unit_done(s->ctx, sr->index, u, retry, recorded_ok, sr->dev_live ? &sr->dev : NULL);
  if (sr->dev_live) eg_dev_close(&sr->dev, dev_closed);
}

static void retry_fire(uv_timer_t *t);

static void schedule_retry(slotrun *sr) {
  sr->phase = PH_WAITING;
  sr->wait_t0 = uv_now(sr->s->loop);
  const uint32_t pause = sr->s->cfg->retry_delay_ms ? sr->s->cfg->retry_delay_ms : RETRY_DELAY_MS;
  uv_timer_start(&sr->timer, retry_fire, pause, 0);
}

static void finished_cb(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id) {
  slotrun *sr = ctx;
  (void)f, (void)unit_id;
  const bool retry = will_retry(sr, sr->last.fault.code) && sr->last.result == EG_RESULT_FAIL;
  attempt_over(sr, &sr->last, retry, result == EG_OK);
  if (retry && !sr->s->stopping) {
    schedule_retry(sr);
    return;
  }
  slot_done(sr);
}

static void dev_done(eg_dev *d, eg_err result) {
  slotrun *sr = dev_slot(d);
  eg_sched *s = sr->s;
  sr->last = d->rec;
  /* A port bound to a USB location that came back under another name: the
   * next attempt opens that one. */
  if (job_of(sr)->usb_location[0]) snprintf(sr->port, sizeof sr->port, "%s", d->port_name);
  sr->wait_port = result == EG_PORT_GONE;
  sr->phase = PH_FINISHING;
  if (s->cfg->recorder) {
    eg_recorder_unit_finish(s->cfg->recorder, sr->unit_id, &d->rec, finished_cb, sr);
    return;
  }
  finished_cb(sr, EG_OK, NULL, 0);
}

static const eg_dev_callbacks dev_callbacks = {
  .on_stage = dev_stage,
  .on_identity = dev_identity,
  .on_progress = dev_progress,
  .on_done = dev_done,
  .on_log = dev_log,
};

/* With a gate that consults the log. */
static const eg_dev_callbacks dev_callbacks_gated = {
  .on_stage = dev_stage,
  .on_identity = dev_identity,
  .on_gate = dev_gate,
  .on_progress = dev_progress,
  .on_done = dev_done,
  .on_log = dev_log,
};

/* ------------------------------------------------------------ attempts */

static void begin_device(slotrun *sr) {
  eg_sched *s = sr->s;
  if (sr->dev_live) { /* the previous attempt's handles are still closing */
    sr->start_when_closed = true;
    return;
  }
  const eg_job *job = job_of(sr);
  sr->phase = PH_RUNNING;
  const eg_dev_callbacks *cbs = eg_gate_active(s->cfg->gate) ? &dev_callbacks_gated : &dev_callbacks;
  if (eg_dev_init(&sr->dev, s->loop, sr->port, job->cfg, job->ops, job->nops, cbs, sr) != EG_OK) {
    eg_fault_set(&sr->last.fault, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory starting the unit");
    sr->last.result = EG_RESULT_FAIL;
    sr->last.finished_ms = eg_clock_epoch_ms();
    dev_done(&sr->dev, EG_NOMEM);
    return;
  }
  sr->dev.rec = sr->last; /* slot, attempt, start time */
  sr->dev.usb = job->usb;
  sr->dev_live = true;
  if (s->stopping) { /* stopped while the row was being written: record it as aborted */
    eg_dev_abort(&sr->dev);
    return;
  }
  eg_dev_start(&sr->dev);
}

/* The row exists (or the log refused it: then the board is not touched). */
static void begun_cb(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id) {
  slotrun *sr = ctx;
  if (result != EG_OK) {
    sr->unit_id = 0;
    sr->last.result = EG_RESULT_FAIL;
    sr->last.finished_ms = eg_clock_epoch_ms();
    eg_fault_set(&sr->last.fault, EG_DB, EG_STAGE_NONE, -1, "not flashed: the log refused the unit's row (%s)", f->msg);
    attempt_over(sr, &sr->last, false, false);
    slot_done(sr);
    return;
  }
  sr->unit_id = unit_id;
  begin_device(sr);
}

static void start_attempt(slotrun *sr) {
  eg_sched *s = sr->s;
  const eg_job *job = job_of(sr);
  sr->attempt++;
  sr->unit_id = 0;
  eg_unit_record rec;
  eg_unit_record_init(&rec);
  snprintf(rec.slot, sizeof rec.slot, "%s", job->label);
  if (!sr->port[0]) snprintf(sr->port, sizeof sr->port, "%s", job->port);
  snprintf(rec.port, sizeof rec.port, "%s", sr->port);
  snprintf(rec.usb_location, sizeof rec.usb_location, "%s", job->usb_location);
  rec.attempt = sr->attempt;
  rec.started_ms = eg_clock_epoch_ms();
  rec.port_wait_ms = sr->port_waited_ms;
  sr->last = rec;
  if (s->ev->on_unit_start) s->ev->on_unit_start(s->ctx, sr->index, &rec);
  if (s->cfg->recorder) {
    /* The row exists before the port is touched: a crash leaves evidence. */
    sr->phase = PH_RECORDING;
    eg_recorder_unit_begin(s->cfg->recorder, &rec, begun_cb, sr);
    return;
  }
  begin_device(sr);
}

/* A vanished port (a board unplugged, a USB adapter re-enumerating) gets
 * time to come back before the next attempt opens it; network ports are
 * retried at once (their connect has its own timeout). */
static void port_polled(slotrun *sr, bool exists);

static void stat_cb(uv_fs_t *req) {
  slotrun *sr = req->data;
  const bool exists = req->result >= 0;
  uv_fs_req_cleanup(req);
  port_polled(sr, exists);
}

/* Off the loop: the port at the job's USB location now. */
static void loc_work(uv_work_t *w) {
  slotrun *sr = w->data;
  sr->loc_err = eg_port_find_location(job_of(sr)->usb_location, sr->loc_name, sizeof sr->loc_name);
}

static void loc_cb(uv_work_t *w, int status) {
  slotrun *sr = w->data;
  const bool found = status == 0 && sr->loc_err == EG_OK;
  if (found) snprintf(sr->port, sizeof sr->port, "%s", sr->loc_name);
  port_polled(sr, found);
}

static void port_polled(slotrun *sr, bool exists) {
  sr->stat_busy = false;
  eg_sched *s = sr->s;
  if (s->stopping || sr->phase != PH_WAITING) {
    if (sr->phase == PH_WAITING) slot_done(sr);
    return;
  }
  const uint64_t waited = uv_now(s->loop) - sr->wait_t0;
  /* The manifest's timeouts.port_back covers this wait too. */
  const eg_dev_config *dc = job_of(sr)->cfg;
  const uint32_t limit = s->cfg->port_wait_ms       ? s->cfg->port_wait_ms
                         : dc && dc->timeouts.port_back_ms ? dc->timeouts.port_back_ms
                                                           : PORT_WAIT_MS;
  if (exists || waited >= limit) {
    sr->port_waited_ms = (uint32_t)waited;
    start_attempt(sr);
    return;
  }
  uv_timer_start(&sr->timer, retry_fire, PORT_POLL_MS, 0);
}

static void retry_fire(uv_timer_t *t) {
  slotrun *sr = t->data;
  eg_sched *s = sr->s;
  if (s->stopping) {
    slot_done(sr);
    return;
  }
  sr->port_waited_ms = 0;
  const eg_job *job = job_of(sr);
  if (sr->wait_port && !strstr(sr->port, "://")) {
    sr->stat_busy = true;
    if (job->usb_location[0]) { /* it may come back under another name */
      sr->loc_req.data = sr;
      if (uv_queue_work(s->loop, &sr->loc_req, loc_work, loc_cb) == 0) return;
    } else {
      sr->stat_req.data = sr;
      if (uv_fs_stat(s->loop, &sr->stat_req, sr->port, stat_cb) == 0) return;
    }
    sr->stat_busy = false;
  }
  start_attempt(sr);
}

/* ------------------------------------------------------------ run end */

static void run_ended(void *ctx, eg_err result, const eg_fault *f, int64_t unit_id) {
  eg_sched *s = ctx;
  (void)f, (void)unit_id;
  if (result != EG_OK) s->sum.db_error = true;
  s->ended = true;
  maybe_end(s);
}

static void maybe_end(eg_sched *s) {
  if (s->remaining > 0) return;
  if (!s->ending) {
    s->ending = true;
    if (s->cfg->recorder) {
      /* A station's session ends by being stopped: that is its finish. */
      const bool interrupted = s->sum.interrupted && !s->cfg->station;
      eg_recorder_run_end(s->cfg->recorder, interrupted ? "interrupted" : "finished", run_ended, s);
      return;
    }
    s->ended = true;
  }
  if (!s->ended || s->finished) return;
  s->finished = true;
  if (s->ev->on_finished) s->ev->on_finished(s->ctx);
  /* Everything recorded: close our handles so the loop can end. */
  for (size_t i = 0; i < s->cfg->njobs; i++) {
    uv_handle_t *h = (uv_handle_t *)&s->slots[i].timer;
    if (!uv_is_closing(h)) uv_close(h, NULL);
  }
  if (s->signals_on) {
    s->signals_on = false;
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
  }
}

void eg_sched_stop(eg_sched *s) {
  if (s->stopping) return;
  s->stopping = true;
  s->sum.interrupted = true;
  for (size_t i = 0; i < s->cfg->njobs; i++) {
    slotrun *sr = &s->slots[i];
    switch (sr->phase) {
    case PH_RUNNING:
      eg_dev_abort(&sr->dev);
      break;
    case PH_WAITING:
      /* Between attempts: the last attempt's row is final already. A port
       * poll in flight ends the slot when it returns. */
      uv_timer_stop(&sr->timer);
      if (!sr->stat_busy) slot_done(sr);
      break;
    case PH_IDLE: /* a station's job between units; nothing runs */
      if (s->cfg->station) job_done(sr);
      break;
    case PH_RECORDING: /* aborted in begin_device once its row exists */
    case PH_FINISHING: /* ends in finished_cb */
    case PH_DONE:
      break;
    }
  }
  maybe_end(s);
}

static void on_signal(uv_signal_t *h, int signum) {
  eg_sched *s = h->data;
  if (s->ev->on_stopping) s->ev->on_stopping(s->ctx, signum);
  eg_sched_stop(s);
}

/* ---------------------------------------------------------------- run */

eg_err eg_sched_run(uv_loop_t *loop, const eg_sched_config *cfg, const eg_sched_events *ev, void *ctx,
                    eg_sched_summary *out, eg_fault *f) {
  static const eg_sched_events no_events;
  eg_sched *s = calloc(1, sizeof *s);
  if (!s) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  s->slots = calloc(cfg->njobs ? cfg->njobs : 1, sizeof *s->slots);
  if (!s->slots) {
    free(s);
    return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  }
  s->loop = loop;
  s->cfg = cfg;
  s->ev = ev ? ev : &no_events;
  s->ctx = ctx;
  s->t0 = uv_now(loop);
  s->sum.units = cfg->station ? 0 : cfg->njobs;
  s->remaining = cfg->njobs;
  for (size_t i = 0; i < cfg->njobs; i++) {
    slotrun *sr = &s->slots[i];
    sr->s = s;
    sr->index = i;
    uv_timer_init(loop, &sr->timer);
    sr->timer.data = sr;
  }
  if (cfg->handle_signals) {
    uv_signal_init(loop, &s->sig_int);
    uv_signal_init(loop, &s->sig_term);
    s->sig_int.data = s->sig_term.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    s->signals_on = true;
  }
  if (s->ev->on_ready) s->ev->on_ready(s->ctx, s);
  if (!cfg->station)
    for (size_t i = 0; i < cfg->njobs; i++) start_attempt(&s->slots[i]);
  if (cfg->njobs == 0) maybe_end(s);
  uv_run(loop, UV_RUN_DEFAULT);
  s->sum.elapsed_ms = uv_now(loop) - s->t0;
  if (cfg->recorder && eg_recorder_had_error(cfg->recorder)) s->sum.db_error = true;
  if (out) *out = s->sum;
  free(s->slots);
  free(s);
  return EG_OK;
}

eg_err eg_sched_seat(eg_sched *s, size_t job) {
  if (!s->cfg->station || s->stopping || job >= s->cfg->njobs) return EG_INVAL;
  slotrun *sr = &s->slots[job];
  if (sr->phase != PH_IDLE || sr->idle_pending) return EG_INVAL;
  sr->attempt = 0;
  sr->port_waited_ms = 0;
  s->sum.units++;
  start_attempt(sr);
  return EG_OK;
}

bool eg_sched_job_idle(const eg_sched *s, size_t job) {
  return s->cfg->station && !s->stopping && job < s->cfg->njobs && s->slots[job].phase == PH_IDLE &&
         !s->slots[job].idle_pending;
}
