#include "gang.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "jsonw.h"

/* A database call waiting for (or running on) the work thread. */
typedef enum job_kind { JOB_UNIT_BEGIN, JOB_UNIT_UPDATE, JOB_UNIT_FINISH, JOB_RUN_END } job_kind;

typedef struct slotrun slotrun;

typedef struct dbjob {
  struct dbjob *next;
  job_kind kind;
  slotrun *sr;
  eg_unit_record rec;
  bool will_retry;
  const char *run_status;
  eg_err result;    /* of the database call */
  eg_fault fault;
  int64_t unit_id;
} dbjob;

struct slotrun {
  eg_sched *s;
  size_t index;
  eg_dev dev;
  bool dev_live;        /* initialised and not yet closed */
  bool dev_running;     /* started and not finished */
  int attempt;
  int64_t unit_id;
  bool retry_pending;
  bool start_when_closed;
  bool done;            /* no further attempt */
  uv_timer_t retry_timer;
  eg_unit_record last;  /* final record of the latest attempt */
};

struct eg_sched {
  uv_loop_t *loop;
  const eg_sched_config *cfg;
  const eg_sched_events *ev;
  void *ctx;
  eg_dev_config dcfg;
  const eg_stub *stubs[EG_CHIP__COUNT];
  eg_dev_op *ops;
  size_t nops;
  slotrun *slots;
  size_t remaining;     /* slots not done */
  bool stopping, ending, ended;
  int64_t run_id;
  uint64_t t0;
  eg_sched_summary sum;
  /* database queue */
  dbjob *q_head, *q_tail;
  dbjob *running;
  uv_work_t work;
  /* signals */
  uv_signal_t sig_int, sig_term;
  bool signals_on;
  unsigned handles;     /* timers + signals still open */
};

static int64_t now_epoch_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---------------------------------------------------------- db queue */

static void pump(eg_sched *s);

static void work_cb(uv_work_t *w) {
  eg_sched *s = w->data;
  dbjob *j = s->running;
  eg_fault_clear(&j->fault);
  switch (j->kind) {
  case JOB_UNIT_BEGIN:
    j->result = eg_db_unit_begin(s->cfg->db, s->run_id, &j->rec, &j->unit_id, &j->fault);
    return;
  case JOB_UNIT_UPDATE:
    j->result = eg_db_unit_update(s->cfg->db, j->sr->unit_id, &j->rec, &j->fault);
    return;
  case JOB_UNIT_FINISH:
    j->result = j->sr->unit_id ? eg_db_unit_finish(s->cfg->db, j->sr->unit_id, &j->rec, &j->fault)
                               : eg_fault_set(&j->fault, EG_DB, EG_STAGE_NONE, -1, "the unit's row was never created");
    return;
  case JOB_RUN_END:
    j->result = eg_db_run_end(s->cfg->db, s->run_id, j->run_status, &j->fault);
    return;
  }
}

/* The database refused a record: never lose it, print it. */
static void spill(eg_sched *s, const dbjob *j) {
  s->sum.db_error = true;
  fprintf(stderr, "espgang: database error: %s; the record follows as JSON\n", j->fault.msg);
  char *line = eg_json_unit(&j->rec, "unit_not_recorded");
  if (line) {
    fprintf(stderr, "%s\n", line);
    free(line);
  }
}

static void start_attempt(slotrun *sr);
static void begin_device(slotrun *sr);
static void unit_finished(slotrun *sr, dbjob *j);
static void maybe_end(eg_sched *s);

static void after_work_cb(uv_work_t *w, int status) {
  eg_sched *s = w->data;
  dbjob *j = s->running;
  s->running = NULL;
  if (status < 0 && j->result == EG_OK) j->result = EG_DB;
  switch (j->kind) {
  case JOB_UNIT_BEGIN:
    if (j->result != EG_OK) spill(s, j);
    j->sr->unit_id = j->result == EG_OK ? j->unit_id : 0;
    begin_device(j->sr);
    break;
  case JOB_UNIT_UPDATE:
    if (j->result != EG_OK) spill(s, j);
    break;
  case JOB_UNIT_FINISH:
    if (j->result != EG_OK) spill(s, j);
    unit_finished(j->sr, j);
    break;
  case JOB_RUN_END:
    if (j->result != EG_OK) {
      s->sum.db_error = true;
      fprintf(stderr, "espgang: database error closing the run: %s\n", j->fault.msg);
    }
    s->ended = true;
    break;
  }
  free(j);
  pump(s);
  if (s->ended && !s->running && !s->q_head) maybe_end(s);
}

static void pump(eg_sched *s) {
  if (s->running || !s->q_head) return;
  s->running = s->q_head;
  s->q_head = s->q_head->next;
  if (!s->q_head) s->q_tail = NULL;
  s->work.data = s;
  if (uv_queue_work(s->loop, &s->work, work_cb, after_work_cb) != 0) {
    /* Cannot happen with a live loop; run it inline rather than lose it. */
    work_cb(&s->work);
    after_work_cb(&s->work, 0);
  }
}

/* Queue a database call; it runs after every call queued before it. */
static void enqueue(eg_sched *s, job_kind kind, slotrun *sr, const eg_unit_record *rec, bool will_retry,
                    const char *run_status) {
  if (kind == JOB_UNIT_UPDATE) { /* coalesce with a queued update of the same unit */
    for (dbjob *q = s->q_head; q; q = q->next)
      if (q->kind == JOB_UNIT_UPDATE && q->sr == sr) {
        q->rec = *rec;
        return;
      }
  }
  dbjob *j = calloc(1, sizeof *j);
  if (!j) {
    fprintf(stderr, "espgang: out of memory queueing a database write\n");
    abort(); /* losing a record silently is worse than stopping */
  }
  j->kind = kind;
  j->sr = sr;
  j->will_retry = will_retry;
  j->run_status = run_status;
  if (rec) j->rec = *rec;
  if (s->q_tail)
    s->q_tail->next = j;
  else
    s->q_head = j;
  s->q_tail = j;
  pump(s);
}

/* ---------------------------------------------------------- devices */

static slotrun *dev_slot(eg_dev *d) { return d->data; }

static void dev_stage(eg_dev *d, eg_stage stage) {
  slotrun *sr = dev_slot(d);
  eg_sched *s = sr->s;
  if (s->ev->on_unit_stage) s->ev->on_unit_stage(s->ctx, sr->index, &d->rec, stage);
  if (sr->unit_id) enqueue(s, JOB_UNIT_UPDATE, sr, &d->rec, false, NULL);
}

static void dev_identity(eg_dev *d) {
  slotrun *sr = dev_slot(d);
  eg_sched *s = sr->s;
  if (s->ev->on_unit_identity) s->ev->on_unit_identity(s->ctx, sr->index, &d->rec);
  if (sr->unit_id) enqueue(s, JOB_UNIT_UPDATE, sr, &d->rec, false, NULL);
}

static void dev_progress(eg_dev *d, uint64_t done, uint64_t total) {
  slotrun *sr = dev_slot(d);
  if (sr->s->ev->on_unit_progress) sr->s->ev->on_unit_progress(sr->s->ctx, sr->index, &d->rec, done, total);
}

static void dev_log_cb(eg_dev *d, const char *line) {
  slotrun *sr = dev_slot(d);
  if (sr->s->ev->on_log) sr->s->ev->on_log(sr->s->ctx, sr->index, line);
}

static void begin_device(slotrun *sr);

static void dev_closed(eg_dev *d) {
  slotrun *sr = dev_slot(d);
  sr->dev_live = false;
  if (sr->start_when_closed) {
    sr->start_when_closed = false;
    begin_device(sr);
  }
}

static void retry_fire(uv_timer_t *t) {
  slotrun *sr = t->data;
  sr->retry_pending = false;
  if (sr->s->stopping) {
    sr->done = true;
    sr->s->remaining--;
    maybe_end(sr->s);
    return;
  }
  start_attempt(sr);
}

static void dev_done(eg_dev *d, eg_err result) {
  slotrun *sr = dev_slot(d);
  eg_sched *s = sr->s;
  sr->dev_running = false;
  const int max_attempts = 1 + (s->cfg->manifest->set.retries > 0 ? s->cfg->manifest->set.retries : 0);
  const bool retry = result != EG_OK && result != EG_ABORTED && !s->stopping && sr->attempt < max_attempts;
  sr->last = d->rec;
  sr->retry_pending = retry;
  enqueue(s, JOB_UNIT_FINISH, sr, &d->rec, retry, NULL);
  eg_dev_close(d, dev_closed);
}

static const eg_dev_callbacks dev_callbacks = {
  .on_stage = dev_stage,
  .on_identity = dev_identity,
  .on_progress = dev_progress,
  .on_done = dev_done,
  .on_log = dev_log_cb,
};

/* The FINISH row is durable: show the result, then retry or close the slot. */
static void unit_finished(slotrun *sr, dbjob *j) {
  eg_sched *s = sr->s;
  s->sum.attempts++;
  if (s->ev->on_unit_done) s->ev->on_unit_done(s->ctx, sr->index, &j->rec, j->will_retry, j->result == EG_OK);
  if (j->will_retry && !s->stopping) {
    /* Start again once the device's handles are closed and a short pause
     * has let the port settle. */
    uv_timer_start(&sr->retry_timer, retry_fire, s->cfg->retry_delay_ms ? s->cfg->retry_delay_ms : 500, 0);
    return;
  }
  sr->retry_pending = false;
  switch (j->rec.result) {
  case EG_RESULT_PASS: s->sum.passed++; break;
  case EG_RESULT_FAIL: s->sum.failed++; break;
  case EG_RESULT_ABORTED: s->sum.aborted++; break;
  case EG_RESULT_IN_PROGRESS: case EG_RESULT_SKIPPED: break;
  }
  sr->done = true;
  s->remaining--;
  maybe_end(s);
}

static void start_attempt(slotrun *sr) {
  eg_sched *s = sr->s;
  const eg_slot *slot = &s->cfg->slots[sr->index];
  sr->attempt++;
  sr->unit_id = 0;
  eg_unit_record rec;
  eg_unit_record_init(&rec);
  snprintf(rec.slot, sizeof rec.slot, "%s", slot->slot);
  snprintf(rec.port, sizeof rec.port, "%s", slot->port);
  snprintf(rec.usb_location, sizeof rec.usb_location, "%s", slot->usb_location);
  rec.attempt = sr->attempt;
  rec.started_ms = now_epoch_ms();
  sr->last = rec;
  if (s->ev->on_unit_start) s->ev->on_unit_start(s->ctx, sr->index, &rec);
  /* The row exists before the port is touched: a crash leaves evidence. */
  enqueue(s, JOB_UNIT_BEGIN, sr, &rec, false, NULL);
}

static void begin_device(slotrun *sr) {
  eg_sched *s = sr->s;
  if (sr->dev_live) { /* the previous attempt's handles are still closing */
    sr->start_when_closed = true;
    return;
  }
  const eg_slot *slot = &s->cfg->slots[sr->index];
  eg_dev_init(&sr->dev, s->loop, slot->port, &s->dcfg, s->ops, s->nops, &dev_callbacks, sr);
  sr->dev.rec = sr->last; /* slot, attempt, start time */
  sr->dev_live = true;
  if (s->stopping) {
    /* Stopped while the row was being written: record it as aborted. */
    sr->dev_running = true;
    eg_dev_abort(&sr->dev);
    return;
  }
  sr->dev_running = true;
  eg_dev_start(&sr->dev);
}

/* ------------------------------------------------------------ run end */

static void handle_closed(uv_handle_t *h) {
  eg_sched *s = h->data;
  s->handles--;
}

static void maybe_end(eg_sched *s) {
  if (s->remaining > 0) return;
  if (!s->ending) {
    s->ending = true;
    enqueue(s, JOB_RUN_END, NULL, NULL, false, s->sum.interrupted ? "interrupted" : "finished");
    return;
  }
  if (!s->ended || s->running || s->q_head) return;
  /* Everything recorded: close our handles so the loop can end. */
  for (size_t i = 0; i < s->cfg->nslots; i++) {
    uv_handle_t *h = (uv_handle_t *)&s->slots[i].retry_timer;
    if (!uv_is_closing(h)) uv_close(h, handle_closed);
  }
  if (s->signals_on) {
    s->signals_on = false;
    uv_close((uv_handle_t *)&s->sig_int, handle_closed);
    uv_close((uv_handle_t *)&s->sig_term, handle_closed);
  }
}

void eg_sched_stop(eg_sched *s) {
  if (s->stopping) return;
  s->stopping = true;
  s->sum.interrupted = true;
  for (size_t i = 0; i < s->cfg->nslots; i++) {
    slotrun *sr = &s->slots[i];
    if (sr->done) continue;
    if (sr->dev_running) {
      eg_dev_abort(&sr->dev);
    } else if (sr->retry_pending && uv_is_active((uv_handle_t *)&sr->retry_timer)) {
      /* Between attempts: the last attempt's row is final already. */
      uv_timer_stop(&sr->retry_timer);
      sr->retry_pending = false;
      sr->done = true;
      switch (sr->last.result) {
      case EG_RESULT_PASS: s->sum.passed++; break;
      case EG_RESULT_FAIL: s->sum.failed++; break;
      case EG_RESULT_ABORTED: case EG_RESULT_IN_PROGRESS: s->sum.aborted++; break;
      case EG_RESULT_SKIPPED: break;
      }
      s->remaining--;
    }
    /* A unit whose row is still being inserted is aborted in begin_device;
     * one whose final row is being written finishes in unit_finished. */
  }
  maybe_end(s);
}

static void on_signal(uv_signal_t *h, int signum) {
  eg_sched *s = h->data;
  if (s->ev->on_stopping) s->ev->on_stopping(s->ctx, signum);
  eg_sched_stop(s);
}

/* ---------------------------------------------------------------- run */

static eg_err build_ops(eg_sched *s, eg_fault *f) {
  const eg_manifest *m = s->cfg->manifest;
  s->nops = (m->set.erase == EG_ERASE_ALL ? 1 : 0) + m->nimages;
  s->ops = calloc(s->nops, sizeof *s->ops);
  if (!s->ops) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  size_t n = 0;
  if (m->set.erase == EG_ERASE_ALL) s->ops[n++].kind = EG_OPK_ERASE_ALL;
  for (size_t i = 0; i < m->nimages; i++) {
    s->ops[n].kind = EG_OPK_WRITE;
    s->ops[n].index = i;
    n++;
  }
  return EG_OK;
}

eg_err eg_sched_run(uv_loop_t *loop, const eg_sched_config *cfg, const eg_sched_events *ev, void *ctx,
                    eg_sched_summary *out, eg_fault *f) {
  static const eg_sched_events no_events;
  eg_sched *s = calloc(1, sizeof *s);
  if (!s) return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
  s->loop = loop;
  s->cfg = cfg;
  s->ev = ev ? ev : &no_events;
  s->ctx = ctx;
  s->t0 = uv_now(loop);
  const eg_manifest *m = cfg->manifest;
  eg_err e = build_ops(s, f);
  if (e != EG_OK) goto out;
  s->stubs[m->set.chip->id] = cfg->stub;
  s->dcfg = (eg_dev_config){
    .chip = m->set.chip,
    .before = m->set.before,
    .after = m->set.after,
    .connect_baud = m->set.connect_baud,
    .baud = m->set.baud,
    .stubs = s->stubs,
    .images = cfg->images,
    .flash_size = m->set.flash_size,
    .verify = m->set.verify,
    .timeouts = m->set.timeouts,
    .connect_attempts = 7,
    .trace = cfg->trace,
  };
  s->slots = calloc(cfg->nslots ? cfg->nslots : 1, sizeof *s->slots);
  if (!s->slots) {
    e = eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory");
    goto out;
  }
  /* The run and its images are recorded before any port starts. */
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const eg_run_info info = {
    .station = m->station,
    .operator_name = cfg->operator_name,
    .host = host,
    .tool_version = EG_VERSION,
    .command_line = cfg->command_line,
    .manifest_path = m->path,
    .manifest_text = m->text,
    .manifest_len = m->text_len,
    .manifest_sha256 = m->sha256,
  };
  if ((e = eg_db_run_begin(cfg->db, &info, &s->run_id, f)) != EG_OK) goto out;
  for (size_t i = 0; i < eg_imageset_count(cfg->images); i++) {
    eg_fault pf;
    eg_fault_clear(&pf);
    const eg_wimage *w = eg_imageset_get(cfg->images, i, 0, cfg->stub == NULL, &pf);
    const eg_image *img = w ? &w->img : eg_imageset_source(cfg->images, i);
    if ((e = eg_db_run_image(cfg->db, s->run_id, (int)i, img, NULL, f)) != EG_OK) goto out;
  }
  s->sum.run_id = s->run_id;
  s->sum.units = cfg->nslots;
  s->remaining = cfg->nslots;
  for (size_t i = 0; i < cfg->nslots; i++) {
    slotrun *sr = &s->slots[i];
    sr->s = s;
    sr->index = i;
    uv_timer_init(loop, &sr->retry_timer);
    sr->retry_timer.data = sr;
    s->handles++;
  }
  if (cfg->handle_signals) {
    uv_signal_init(loop, &s->sig_int);
    uv_signal_init(loop, &s->sig_term);
    s->sig_int.data = s->sig_term.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    s->signals_on = true;
    s->handles += 2;
  }
  for (size_t i = 0; i < cfg->nslots; i++) start_attempt(&s->slots[i]);
  if (cfg->nslots == 0) maybe_end(s);
  uv_run(loop, UV_RUN_DEFAULT);
  s->sum.elapsed_ms = uv_now(loop) - s->t0;
  if (out) *out = s->sum;
  e = EG_OK;
out:
  free(s->ops);
  free(s->slots);
  free(s);
  return e;
}
