/* recorder.c - ordered database calls on one work thread (see recorder.h). */
#include "recorder.h"

#include <stdio.h>
#include <stdlib.h>

#include "jsonw.h"

typedef enum call_kind { CALL_UNIT_BEGIN, CALL_UNIT_UPDATE, CALL_UNIT_FINISH, CALL_RUN_END, CALL_QUERY } call_kind;

typedef struct call {
  struct call *next;
  call_kind kind;
  int64_t unit_id;
  eg_unit_record rec;
  const char *run_status;
  eg_recorder_fn fn; /* CALL_QUERY */
  void *arg;
  eg_recorder_cb cb;
  void *ctx;
  eg_err result; /* of the database call */
  eg_fault fault;
} call;

struct eg_recorder {
  uv_loop_t *loop;
  eg_db *db;
  int64_t run_id;
  call *head, *tail; /* waiting */
  call *running;     /* on the work thread: one batch, a list */
  uv_work_t work;
  bool had_error;
};

eg_recorder *eg_recorder_new(uv_loop_t *loop, eg_db *db, int64_t run_id) {
  eg_recorder *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->loop = loop;
  r->db = db;
  r->run_id = run_id;
  r->work.data = r;
  return r;
}

void eg_recorder_free(eg_recorder *r) { free(r); }
bool eg_recorder_idle(const eg_recorder *r) { return !r->running && !r->head; }
int64_t eg_recorder_run_id(const eg_recorder *r) { return r->run_id; }
bool eg_recorder_had_error(const eg_recorder *r) { return r->had_error; }

/* Work thread: the database call itself. */
static void run_call(eg_recorder *r, call *c) {
  eg_fault_clear(&c->fault);
  switch (c->kind) {
  case CALL_UNIT_BEGIN:
    c->result = eg_db_unit_begin(r->db, r->run_id, &c->rec, &c->unit_id, &c->fault);
    return;
  case CALL_UNIT_UPDATE:
    c->result = eg_db_unit_update(r->db, c->unit_id, &c->rec, &c->fault);
    return;
  case CALL_UNIT_FINISH:
    c->result = c->unit_id ? eg_db_unit_finish(r->db, c->unit_id, &c->rec, &c->fault)
                           : eg_fault_set(&c->fault, EG_DB, EG_STAGE_NONE, -1, "the unit's row was never created");
    return;
  case CALL_RUN_END:
    c->result = eg_db_run_end(r->db, r->run_id, c->run_status, &c->fault);
    return;
  case CALL_QUERY:
    c->result = c->fn(r->db, c->arg, &c->fault);
    return;
  }
}

/* Several calls waiting: one transaction for all (group commit, one fsync);
 * if it cannot be committed, every call in it failed. A batch that cannot
 * be opened runs its calls one transaction each, as a single call does. */
static void work_cb(uv_work_t *w) {
  eg_recorder *r = w->data;
  eg_fault bf;
  eg_fault_clear(&bf);
  const bool batch = r->running->next && eg_db_batch_begin(r->db, &bf) == EG_OK;
  for (call *c = r->running; c; c = c->next) run_call(r, c);
  if (!batch || eg_db_batch_commit(r->db, &bf) == EG_OK) return;
  for (call *c = r->running; c; c = c->next) {
    if (c->result != EG_OK) continue;
    c->result = bf.code;
    c->fault = bf;
    if (c->kind == CALL_UNIT_BEGIN) c->unit_id = 0; /* its row is gone with the batch */
  }
}

/* The database refused a record: never lose it, print it. */
static void spill(eg_recorder *r, const call *c) {
  r->had_error = true;
  if (c->kind == CALL_RUN_END) {
    fprintf(stderr, "espgang: database error closing run %lld: %s\n", (long long)r->run_id, c->fault.msg);
    return;
  }
  fprintf(stderr, "espgang: database error: %s; the record follows as JSON\n", c->fault.msg);
  char *line = eg_json_unit(&c->rec, "unit_not_recorded");
  if (line) {
    fprintf(stderr, "%s\n", line);
    free(line);
  }
}

static void pump(eg_recorder *r);

static void after_work_cb(uv_work_t *w, int status) {
  eg_recorder *r = w->data;
  call *batch = r->running;
  r->running = NULL;
  for (call *c = batch; c; c = c->next) {
    if (status < 0 && c->result == EG_OK)
      c->result = eg_fault_set(&c->fault, EG_DB, EG_STAGE_NONE, -1, "work queue: %s", uv_strerror(status));
    if (c->result != EG_OK && c->kind != CALL_QUERY) spill(r, c);
  }
  pump(r); /* start the next batch before the callbacks add more */
  while (batch) {
    call *c = batch;
    batch = c->next;
    if (c->cb) c->cb(c->ctx, c->result, &c->fault, c->unit_id);
    free(c);
  }
}

/* Everything waiting goes to the work thread as one batch (at most
 * BATCH_MAX calls, so a callback's answer never waits behind too many). */
#define BATCH_MAX 512

static void pump(eg_recorder *r) {
  if (r->running || !r->head) return;
  r->running = r->head;
  call *last = r->head;
  for (int n = 1; n < BATCH_MAX && last->next; n++) last = last->next;
  r->head = last->next;
  last->next = NULL;
  if (!r->head) r->tail = NULL;
  if (uv_queue_work(r->loop, &r->work, work_cb, after_work_cb) != 0) {
    /* Cannot happen with a live loop; run it here rather than lose it. */
    work_cb(&r->work);
    after_work_cb(&r->work, 0);
  }
}

static call *enqueue(eg_recorder *r, call_kind kind, int64_t unit_id, const eg_unit_record *u, const char *status,
                     eg_recorder_cb cb, void *ctx) {
  if (kind == CALL_UNIT_UPDATE) { /* only the newest state of a unit matters */
    for (call *q = r->head; q; q = q->next)
      if (q->kind == CALL_UNIT_UPDATE && q->unit_id == unit_id) {
        q->rec = *u;
        return q;
      }
  }
  call *c = calloc(1, sizeof *c);
  if (!c) {
    fprintf(stderr, "espgang: out of memory queueing a database write\n");
    abort(); /* losing a record silently is worse than stopping */
  }
  c->kind = kind;
  c->unit_id = unit_id;
  if (u) c->rec = *u;
  c->run_status = status;
  c->cb = cb;
  c->ctx = ctx;
  if (r->tail)
    r->tail->next = c;
  else
    r->head = c;
  r->tail = c;
  return c;
}

void eg_recorder_unit_begin(eg_recorder *r, const eg_unit_record *u, eg_recorder_cb cb, void *ctx) {
  enqueue(r, CALL_UNIT_BEGIN, 0, u, NULL, cb, ctx);
  pump(r);
}

void eg_recorder_unit_update(eg_recorder *r, int64_t unit_id, const eg_unit_record *u) {
  if (!unit_id) return;
  enqueue(r, CALL_UNIT_UPDATE, unit_id, u, NULL, NULL, NULL);
  pump(r);
}

void eg_recorder_unit_finish(eg_recorder *r, int64_t unit_id, const eg_unit_record *u, eg_recorder_cb cb, void *ctx) {
  enqueue(r, CALL_UNIT_FINISH, unit_id, u, NULL, cb, ctx);
  pump(r);
}

void eg_recorder_run_end(eg_recorder *r, const char *status, eg_recorder_cb cb, void *ctx) {
  enqueue(r, CALL_RUN_END, 0, NULL, status, cb, ctx);
  pump(r);
}

void eg_recorder_call(eg_recorder *r, eg_recorder_fn fn, void *arg, eg_recorder_cb cb, void *ctx) {
  call *c = enqueue(r, CALL_QUERY, 0, NULL, NULL, cb, ctx);
  c->fn = fn;
  c->arg = arg;
  pump(r);
}
