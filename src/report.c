/* report.c - the report views (report, runs, history, yield) as tables in
 * text, CSV or JSON, all through table.c and jsonw.c. The numbers come from
 * report_model.c; their definitions are in report.h. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "table.h"

/* The yield view's tables: key (--by, JSON member) and title (text). */
static const struct {
  const char *key, *title;
} sections[EG_REP_SEC__COUNT] = {
#define EG_REP_SECTION_ROW(n, key, title) {key, title},
  EG_REP_SECTION_MAP(EG_REP_SECTION_ROW)
#undef EG_REP_SECTION_ROW
};

int eg_rep_section_parse(const char *name) {
  for (int i = 0; i < EG_REP_SEC__COUNT; i++)
    if (name && strcmp(name, sections[i].key) == 0) return i;
  return -1;
}

static const char *section_key(eg_rep_section s) { return sections[s].key; }
static const char *section_title(eg_rep_section s) { return sections[s].title; }

/* "2026-12-01T10:00:05.123Z" -> "2026-12-01 10:00" (text) or as stored. */
static const char *when(const char *iso, bool text, char buf[24]) {
  if (!iso || !text) return iso;
  snprintf(buf, 24, "%.16s", iso);
  if (buf[10] == 'T') buf[10] = ' ';
  return buf;
}

static void cell_opt_int(eg_table *t, int64_t v) {
  if (v < 0) eg_table_null(t);
  else eg_table_int(t, v);
}

static void cell_tri(eg_table *t, int v) {
  if (v < 0) eg_table_null(t);
  else eg_table_str(t, v ? "yes" : "no");
}

static void cell_flash(eg_table *t, const char *mfr, const char *dev) {
  char buf[32];
  if (!mfr) {
    eg_table_null(t);
    return;
  }
  snprintf(buf, sizeof buf, "%s/%s", mfr, dev ? dev : "?");
  eg_table_str(t, buf);
}

/* Run label: its id, with the file number when several files are read. */
static void cell_run(eg_table *t, const eg_rep *rep, const eg_log_run *r, bool multi) {
  (void)rep;
  if (!multi) {
    eg_table_int(t, r->id);
    return;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "%d:%lld", r->db + 1, (long long)r->id);
  eg_table_str(t, buf);
}

static bool multi_file(const eg_rep *rep) {
  for (size_t i = 0; i < rep->log.nruns; i++)
    if (rep->log.runs[i].db) return true;
  return false;
}

static eg_err emit(eg_table *t, const eg_rep_opts *o, FILE *out, eg_jw *w, const char *key) {
  if (!t) return EG_NOMEM;
  switch (o->format) {
  case EG_REP_TEXT: return eg_table_text(t, out, o->width, o->wide);
  case EG_REP_CSV: return eg_table_csv(t, out, o->wide);
  case EG_REP_JSON: return eg_table_json(t, w, key, o->wide);
  }
  return EG_INVAL;
}

static eg_err nomem(eg_fault *f) { return eg_fault_set(f, EG_NOMEM, EG_STAGE_NONE, -1, "out of memory"); }

/* ---------------------------------------------------------------- runs */

/* The yield numbers of a group as cells: units, first, passed, fpy, final, tries/unit. */
static void cells_yield(eg_table *t, const eg_rep_yield *y) {
  eg_table_int(t, y->units);
  eg_table_int(t, y->first_pass);
  eg_table_int(t, y->final_pass);
  eg_table_num(t, eg_rep_pct(y->first_pass, y->units), 1);
  eg_table_num(t, eg_rep_pct(y->final_pass, y->units), 1);
  eg_table_num(t, y->units ? (double)y->attempts / (double)y->units : NAN, 2);
}

#define YIELD_COLS                                                                                \
  {"units", EG_RIGHT}, {"first", EG_RIGHT}, {"passed", EG_RIGHT}, {"fpy_pct", EG_RIGHT},          \
    {"final_pct", EG_RIGHT}, {"tries", EG_RIGHT}

static const eg_col run_cols[] = {
  {"run", EG_RIGHT}, {"started"}, {"station", .shrink = true}, {"status"}, {"parent", EG_RIGHT},
  YIELD_COLS,
  {"kind", .wide = true}, {"retry_mode", .wide = true}, {"ended", .wide = true}, {"operator", .wide = true},
  {"host", .wide = true}, {"skipped", EG_RIGHT, .wide = true}, {"in_progress", EG_RIGHT, .wide = true},
  {"manifest_sha256", .wide = true}, {"manifest", .wide = true}, {"espgang", .wide = true},
};

static void run_row(eg_table *t, const eg_rep *rep, size_t ri, const eg_rep_yield *y, bool text, bool multi) {
  const eg_log_run *r = &rep->log.runs[ri];
  char b1[24], b2[24];
  cell_run(t, rep, r, multi);
  eg_table_str(t, when(r->started_at, text, b1));
  eg_table_str(t, r->station);
  eg_table_str(t, r->status);
  if (r->parent_run_id) eg_table_int(t, r->parent_run_id);
  else eg_table_null(t);
  cells_yield(t, y);
  eg_table_str(t, r->kind);
  eg_table_str(t, r->retry_mode);
  eg_table_str(t, when(r->ended_at, text, b2));
  eg_table_str(t, r->operator_name);
  eg_table_str(t, r->host);
  eg_table_int(t, y->skipped);
  eg_table_int(t, y->open);
  eg_table_str(t, r->manifest_sha256);
  eg_table_str(t, r->manifest_path);
  eg_table_str(t, r->tool_version);
}

eg_table *eg_rep_runs_table(eg_rep *rep, const eg_rep_filter *flt, bool text, bool newest_first) {
  eg_rep_group *g;
  size_t n;
  if (eg_rep_groups(rep, flt, EG_REP_SEC_RUN, &g, &n) != EG_OK) return NULL;
  eg_table *t = eg_table_new(run_cols, sizeof run_cols / sizeof run_cols[0]);
  const bool multi = multi_file(rep);
  for (size_t k = 0; t && k < n; k++) {
    const size_t i = newest_first ? n - 1 - k : k;
    run_row(t, rep, g[i].run, &g[i].y, text, multi);
  }
  free(g);
  return t;
}

/* Newest first (the yield view lists runs oldest first). */
static eg_err view_runs(eg_rep *rep, const eg_rep_filter *flt, const eg_rep_opts *o, FILE *out, eg_jw *w,
                        eg_fault *f) {
  eg_table *t = eg_rep_runs_table(rep, flt, o->format == EG_REP_TEXT, true);
  const eg_err r = emit(t, o, out, w, "runs");
  eg_table_free(t);
  return r == EG_NOMEM ? nomem(f) : r;
}

/* ---------------------------------------------------------------- units */

static const eg_col unit_cols[] = {
  {"run", EG_RIGHT}, {"slot", .shrink = true}, {"mac"}, {"result"}, {"tries", EG_RIGHT}, {"first"},
  {"stage"}, {"error"}, {"status"}, {"message", .shrink = true},
  {"station", .wide = true}, {"mac_from", .wide = true}, {"chip", .wide = true}, {"flash", .wide = true},
  {"started", .wide = true}, {"seconds", EG_RIGHT, .wide = true}, {"port", .wide = true},
  {"transport", .wide = true}, {"baud", EG_RIGHT, .wide = true}, {"baud_requested", EG_RIGHT, .wide = true},
  {"fallbacks", EG_RIGHT, .wide = true}, {"port_wait_ms", EG_RIGHT, .wide = true},
  {"secure_boot", .wide = true}, {"flash_encryption", .wide = true}, {"secure_download", .wide = true},
};

/* The failing attempt a unit is judged by: its last one, or the last that
 * failed when a later attempt passed? The last attempt: it is the outcome.
 * For a passed unit the stage/error columns stay empty. */
static void unit_row(eg_table *t, const eg_rep *rep, const eg_rep_unit *u, bool text, bool multi) {
  const eg_log_run *r = &rep->log.runs[u->run];
  const eg_log_attempt *a = u->an;
  const bool failed = !eg_rep_unit_final_pass(u);
  char b[24];
  cell_run(t, rep, r, multi);
  eg_table_str(t, u->slot);
  eg_table_str(t, u->mac);
  eg_table_str(t, a->result);
  eg_table_int(t, (long long)u->n);
  eg_table_str(t, eg_rep_unit_counted(u) ? (eg_rep_unit_first_pass(u) ? "yes" : "no") : NULL);
  eg_table_str(t, failed ? a->fail_stage : NULL);
  eg_table_str(t, failed ? a->error_code : NULL);
  eg_table_str(t, failed ? a->status_bytes : NULL);
  eg_table_str(t, failed ? a->message : NULL);
  eg_table_str(t, r->station);
  eg_table_str(t, !u->mac ? NULL : u->mac_inferred ? "retry chain" : "read");
  eg_table_str(t, u->chip);
  cell_flash(t, u->flash_mfr, u->flash_device);
  eg_table_str(t, when(u->a0->started_at, text, b));
  int64_t ms = 0;
  for (size_t k = 0; k < u->n; k++) ms += eg_rep_attempt(rep, u, k)->duration_ms > 0 ? eg_rep_attempt(rep, u, k)->duration_ms : 0;
  eg_table_num(t, (double)ms / 1000.0, 1);
  eg_table_str(t, a->port);
  eg_table_str(t, a->transport);
  cell_opt_int(t, a->baud);
  cell_opt_int(t, a->baud_requested);
  cell_opt_int(t, a->fallbacks);
  cell_opt_int(t, a->port_wait_ms);
  cell_tri(t, a->secure_boot);
  cell_tri(t, a->flash_encryption);
  cell_tri(t, a->secure_download);
}

static eg_err view_units(eg_rep *rep, const eg_rep_filter *flt, const eg_rep_opts *o, FILE *out, eg_jw *w,
                         eg_fault *f) {
  /* The runs first: a summary line each (text) or the runs table (JSON). */
  if (o->format != EG_REP_CSV) {
    eg_rep_group *g;
    size_t n;
    if (eg_rep_groups(rep, flt, EG_REP_SEC_RUN, &g, &n) != EG_OK) return nomem(f);
    if (o->format == EG_REP_TEXT) {
      for (size_t i = 0; i < n; i++) {
        const eg_log_run *r = &rep->log.runs[g[i].run];
        const eg_rep_yield *y = &g[i].y;
        char b[24];
        fprintf(out, "run %lld  %s  %s  %s  %s", (long long)r->id, r->station, r->kind ? r->kind : "flash",
                r->status, when(r->started_at, true, b));
        if (r->parent_run_id) fprintf(out, "  retries run %lld by %s", (long long)r->parent_run_id,
                                      r->retry_mode ? r->retry_mode : "slot");
        fprintf(out, "\n  %ld units: first-pass yield %.1f%%, final yield %.1f%%", y->units,
                y->units ? eg_rep_pct(y->first_pass, y->units) : 0.0, y->units ? eg_rep_pct(y->final_pass, y->units) : 0.0);
        if (y->skipped || y->open) fprintf(out, " (%ld skipped, %ld in progress)", y->skipped, y->open);
        fprintf(out, "; manifest %.12s\n", r->manifest_sha256 ? r->manifest_sha256 : "-");
      }
      fputc('\n', out);
    } else {
      eg_table *t = eg_rep_runs_table(rep, flt, false, false);
      const eg_err r = emit(t, o, out, w, "runs");
      eg_table_free(t);
      if (r != EG_OK) return free(g), r == EG_NOMEM ? nomem(f) : r;
    }
    free(g);
  }
  eg_table *t = eg_rep_units_table(rep, flt, o->format == EG_REP_TEXT);
  const eg_err r = emit(t, o, out, w, "units");
  eg_rep_units_table_free(t);
  return r == EG_NOMEM ? nomem(f) : r;
}

eg_table *eg_rep_units_table(eg_rep *rep, const eg_rep_filter *flt, bool text) {
  const bool multi = multi_file(rep);
  eg_col *cols = malloc(sizeof unit_cols);
  if (!cols) return NULL;
  memcpy(cols, unit_cols, sizeof unit_cols);
  cols[10].wide = !multi; /* several files: say which station */
  eg_table *t = eg_table_new(cols, sizeof unit_cols / sizeof unit_cols[0]);
  if (!t) free(cols);
  for (size_t i = 0; t && i < rep->nunits; i++)
    if (eg_rep_unit_matches(rep, &rep->units[i], flt)) unit_row(t, rep, &rep->units[i], text, multi);
  return t;
}

void eg_rep_units_table_free(eg_table *t) {
  const eg_col *cols = t ? eg_table_cols(t) : NULL;
  eg_table_free(t);
  free((void *)cols);
}

/* ---------------------------------------------------------------- history */

static const eg_col hist_cols[] = {
  {"run", EG_RIGHT}, {"started"}, {"slot", .shrink = true}, {"try", EG_RIGHT}, {"result"}, {"stage"}, {"error"},
  {"status"}, {"mac"},
  {"message", .wide = true}, {"station", .wide = true}, {"mac_from", .wide = true}, {"chip", .wide = true},
  {"flash", .wide = true}, {"port", .wide = true}, {"seconds", EG_RIGHT, .wide = true},
  {"baud", EG_RIGHT, .wide = true}, {"fallbacks", EG_RIGHT, .wide = true}, {"opcode", .wide = true},
};

static int cmp_newest(const void *x, const void *y, void *ctx) {
  const eg_log_attempt *at = ctx;
  const eg_log_attempt *a = &at[*(const size_t *)x], *b = &at[*(const size_t *)y];
  const int c = strcmp(b->started_at, a->started_at);
  if (c) return c;
  return a->db != b->db ? (a->db < b->db ? -1 : 1) : (a->id < b->id) - (a->id > b->id);
}

static eg_err view_history(eg_rep *rep, const eg_rep_filter *flt, const eg_rep_opts *o, FILE *out, eg_jw *w,
                           eg_fault *f) {
  const size_t n = rep->log.nattempts;
  size_t *idx = malloc((n ? n : 1) * sizeof *idx), m = 0;
  if (!idx) return nomem(f);
  for (size_t i = 0; i < n; i++)
    if (eg_rep_attempt_matches(rep, i, flt)) idx[m++] = i;
  qsort_r(idx, m, sizeof *idx, cmp_newest, rep->log.attempts);
  const bool multi = multi_file(rep), text = o->format == EG_REP_TEXT;
  eg_col cols[sizeof hist_cols / sizeof hist_cols[0]];
  memcpy(cols, hist_cols, sizeof cols);
  cols[10].wide = !multi;
  eg_table *t = eg_table_new(cols, sizeof cols / sizeof cols[0]);
  for (size_t i = 0; t && i < m; i++) {
    const eg_log_attempt *a = &rep->log.attempts[idx[i]];
    const eg_rep_unit *u = &rep->units[rep->unit_of[idx[i]]];
    const eg_log_run *r = &rep->log.runs[u->run];
    char b[24], op[8];
    cell_run(t, rep, r, multi);
    eg_table_str(t, when(a->started_at, text, b));
    eg_table_str(t, a->slot);
    eg_table_int(t, a->attempt);
    eg_table_str(t, a->result);
    eg_table_str(t, a->fail_stage);
    eg_table_str(t, a->error_code);
    eg_table_str(t, a->status_bytes);
    eg_table_str(t, a->mac ? a->mac : u->mac);
    eg_table_str(t, a->message);
    eg_table_str(t, r->station);
    eg_table_str(t, a->mac ? "read" : u->mac ? (u->mac_inferred ? "retry chain" : "unit") : NULL);
    eg_table_str(t, a->chip);
    cell_flash(t, a->flash_mfr, a->flash_device);
    eg_table_str(t, a->port);
    if (a->duration_ms >= 0) eg_table_num(t, (double)a->duration_ms / 1000.0, 1);
    else eg_table_null(t);
    cell_opt_int(t, a->baud);
    cell_opt_int(t, a->fallbacks);
    snprintf(op, sizeof op, "0x%02llx", (unsigned long long)a->opcode);
    eg_table_str(t, a->opcode >= 0 ? op : NULL);
  }
  free(idx);
  if (t && !eg_table_rows(t) && o->format == EG_REP_TEXT) {
    eg_table_free(t);
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1, "no attempt matches");
  }
  const eg_err r = emit(t, o, out, w, "attempts");
  eg_table_free(t);
  return r == EG_NOMEM ? nomem(f) : r;
}

/* ---------------------------------------------------------------- yield */

static const eg_col group_cols[] = {{"key"}, {"runs", EG_RIGHT}, YIELD_COLS};
static const eg_col pareto_cols[] = {
  {"stage"}, {"error"}, {"status"}, {"attempts", EG_RIGHT}, {"units", EG_RIGHT}, {"share_pct", EG_RIGHT},
  {"cumulative_pct", EG_RIGHT}, {"message", .shrink = true, .wide = true},
};
static const eg_col stage_cols[] = {
  {"stage"}, {"n", EG_RIGHT}, {"median_ms", EG_RIGHT}, {"p95_ms", EG_RIGHT}, {"max_ms", EG_RIGHT},
};
static const eg_col attempt_cols[] = {{"attempts", EG_RIGHT}, {"units", EG_RIGHT}, {"share_pct", EG_RIGHT}};

eg_table *eg_rep_section_table(eg_rep *rep, const eg_rep_filter *flt, eg_rep_section s, bool text) {
  eg_table *t = NULL;
  switch (s) {
  case EG_REP_SEC_RUN:
  case EG_REP_SEC_STATION:
  case EG_REP_SEC_DAY: {
    eg_rep_group *g;
    size_t n;
    if (eg_rep_groups(rep, flt, s, &g, &n) != EG_OK) return NULL;
    eg_col cols[sizeof group_cols / sizeof group_cols[0]];
    memcpy(cols, group_cols, sizeof cols);
    cols[0].name = section_key(s);
    /* eg_table keeps the column array: give it one that outlives this frame. */
    eg_col *keep = malloc(sizeof cols);
    if (keep) memcpy(keep, cols, sizeof cols);
    t = keep ? eg_table_new(keep, sizeof cols / sizeof cols[0]) : NULL;
    const bool multi = multi_file(rep);
    for (size_t i = 0; t && i < n; i++) {
      if (s == EG_REP_SEC_RUN) cell_run(t, rep, &rep->log.runs[g[i].run], multi);
      else eg_table_str(t, g[i].key);
      eg_table_int(t, g[i].runs);
      cells_yield(t, &g[i].y);
    }
    free(g);
    if (!t) free(keep);
    return t;
  }
  case EG_REP_SEC_FAILURES: {
    eg_rep_pareto *p;
    size_t n;
    if (eg_rep_failures(rep, flt, &p, &n) != EG_OK) return NULL;
    t = eg_table_new(pareto_cols, sizeof pareto_cols / sizeof pareto_cols[0]);
    for (size_t i = 0; t && i < n; i++) {
      eg_table_str(t, p[i].stage);
      eg_table_str(t, p[i].error);
      eg_table_str(t, p[i].status);
      eg_table_int(t, p[i].attempts);
      eg_table_int(t, p[i].units);
      eg_table_num(t, p[i].share, 1);
      eg_table_num(t, p[i].cumulative, 1);
      eg_table_str(t, p[i].message);
    }
    free(p);
    return t;
  }
  case EG_REP_SEC_STAGES: {
    eg_rep_stage_stat *st;
    size_t n;
    if (eg_rep_stage_stats(rep, flt, &st, &n) != EG_OK) return NULL;
    t = eg_table_new(stage_cols, sizeof stage_cols / sizeof stage_cols[0]);
    for (size_t i = 0; t && i < n; i++) {
      eg_table_str(t, st[i].stage == EG_STAGE__COUNT ? "total" : eg_stage_name(st[i].stage));
      eg_table_int(t, (long long)st[i].n);
      eg_table_num(t, st[i].median, 1);
      eg_table_int(t, st[i].p95);
      eg_table_int(t, st[i].max);
    }
    eg_rep_stage_stats_free(st, n);
    return t;
  }
  case EG_REP_SEC_ATTEMPTS: {
    long hist[10] = {0}, total = 0; /* 1..9 attempts, then "10 or more" in the last bucket */
    for (size_t i = 0; i < rep->nunits; i++) {
      const eg_rep_unit *u = &rep->units[i];
      if (!eg_rep_unit_matches(rep, u, flt) || !eg_rep_unit_counted(u)) continue;
      hist[u->n >= 10 ? 9 : u->n - 1]++, total++;
    }
    t = eg_table_new(attempt_cols, sizeof attempt_cols / sizeof attempt_cols[0]);
    for (int i = 0; t && i < 10; i++) {
      if (!hist[i]) continue;
      eg_table_int(t, i + 1);
      eg_table_int(t, hist[i]);
      eg_table_num(t, eg_rep_pct(hist[i], total), 1);
    }
    (void)text;
    return t;
  }
  case EG_REP_SEC__COUNT: break;
  }
  return NULL;
}

/* The group tables own a copy of their columns (the key column is renamed). */
void eg_rep_section_free(eg_table *t, eg_rep_section s) {
  const eg_col *cols = t ? eg_table_cols(t) : NULL;
  eg_table_free(t);
  if (s == EG_REP_SEC_RUN || s == EG_REP_SEC_STATION || s == EG_REP_SEC_DAY) free((void *)cols);
}

static eg_err view_yield(eg_rep *rep, const eg_rep_filter *flt, const eg_rep_opts *o, FILE *out, eg_jw *w,
                         eg_fault *f) {
  if (o->format == EG_REP_CSV && o->section < 0)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1,
                        "CSV is one table: choose it with --by run|station|day|failures|stages|attempts");
  for (int s = 0; s < EG_REP_SEC__COUNT; s++) {
    if (o->section >= 0 && s != o->section) continue;
    eg_table *t = eg_rep_section_table(rep, flt, (eg_rep_section)s, o->format == EG_REP_TEXT);
    if (!t) return nomem(f);
    if (o->format == EG_REP_TEXT) fprintf(out, "%s%s:\n", s && o->section < 0 ? "\n" : "", section_title((eg_rep_section)s));
    const eg_err r = emit(t, o, out, w, section_key((eg_rep_section)s));
    eg_rep_section_free(t, (eg_rep_section)s);
    if (r != EG_OK) return r == EG_NOMEM ? nomem(f) : r;
  }
  return EG_OK;
}

/* ---------------------------------------------------------------- entry */

static const char *view_name(eg_rep_view v) {
  switch (v) {
  case EG_REP_UNITS: return "units";
  case EG_REP_RUNS: return "runs";
  case EG_REP_HISTORY: return "history";
  case EG_REP_YIELD: return "yield";
  }
  return "?";
}

eg_err eg_report(eg_rep *rep, const eg_rep_filter *flt, const eg_rep_opts *o, FILE *out, eg_fault *f) {
  bool any = false;
  for (size_t i = 0; i < rep->log.nruns && !any; i++) any = rep->selected && rep->selected[i];
  if (!any)
    return eg_fault_set(f, EG_INVAL, EG_STAGE_NONE, -1,
                        rep->log.nruns ? "no run matches the filters" : "the database holds no runs yet");
  eg_jw w;
  if (o->format == EG_REP_JSON) {
    eg_jw_start(&w, out);
    eg_jw_str(&w, "report", view_name(o->view));
  }
  eg_err r = EG_INVAL;
  switch (o->view) {
  case EG_REP_UNITS: r = view_units(rep, flt, o, out, &w, f); break;
  case EG_REP_RUNS: r = view_runs(rep, flt, o, out, &w, f); break;
  case EG_REP_HISTORY: r = view_history(rep, flt, o, out, &w, f); break;
  case EG_REP_YIELD: r = view_yield(rep, flt, o, out, &w, f); break;
  }
  if (o->format == EG_REP_JSON && !eg_jw_finish(&w) && r == EG_OK) r = EG_IO;
  if (r == EG_IO) eg_fault_set(f, EG_IO, EG_STAGE_NONE, -1, "cannot write the report");
  return r;
}
