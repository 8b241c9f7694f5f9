/* report.h - what the traceability reports compute from the log (db.c
 * reads it; this module counts; report.c and report_html.c present it).
 *
 * Definitions (README "Reading the log" says the same):
 *  - attempt: one row of `units`: one try on one port.
 *  - unit: one board in one run: a slot's attempts within one run, in order.
 *    A new unit starts in the same slot and run when an attempt is numbered 1
 *    again or reads a MAC different from the one the unit already has (a
 *    station session seats board after board in one slot).
 *  - a unit's identity (MAC, chip, flash ID) is what any of its attempts
 *    read; when none did, the same slot's unit in the run it retries or in a
 *    run retrying it by slot (--retry-failed, not --by-mac) lends its MAC
 *    (mac_inferred), so a retry that failed before reading the MAC stays
 *    under that MAC.
 *  - a unit's outcome is its last attempt's result. Units counted for
 *    yield: outcome pass, fail or aborted (skipped and in-progress units are
 *    shown, not counted).
 *  - first-pass yield = counted units whose first attempt passed / counted units.
 *  - final yield      = counted units whose last attempt passed / counted units.
 *    Both per run; per station or per day they pool the units of those runs
 *    (a unit's day: the UTC date its first attempt started).
 *  - attempts per unit: attempts of counted units.
 *  - failure Pareto: failed and aborted attempts grouped by (stage, error
 *    code, the chip's status bytes), most frequent first, with their share of
 *    all failed attempts and the running total.
 *  - time per stage: over passed attempts that spent time in the stage:
 *    median (middle value; the mean of the two middle values for an even
 *    count) and p95 (nearest rank: the value at rank ceil(0.95 n)).
 */
#ifndef EG_REPORT_H
#define EG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "db.h"

typedef struct eg_rep_filter {
  const int64_t *runs;      /* --run N (repeatable): run ids, in any file */
  size_t nruns;
  int last;                 /* --last N: the N latest runs; 0 none */
  char since[32], until[32];/* ISO-8601 UTC bounds, "" none; [since, until) */
  const char *station;      /* case-insensitive */
  const char *manifest;     /* lower-case hex sha256 prefix */
  const char *result;       /* unit outcome (attempt result in history) */
  const char *slot;         /* case-insensitive */
  char mac[18];             /* normalised "24:0a:c4:00:00:01"; "" none */
  const char *chip;         /* "esp32c3" or "ESP32-C3" */
  bool latest_only;         /* no run filter given: the latest run only */
} eg_rep_filter;

typedef struct eg_rep_unit {
  size_t run;               /* index in log.runs */
  const char *slot;
  const char *mac;          /* NULL unknown */
  bool mac_inferred;        /* lent by the same slot in the retry chain */
  const char *chip, *flash_mfr, *flash_device;
  size_t first, n;          /* its attempts: order[first .. first + n) */
  const eg_log_attempt *a0, *an; /* first and last attempt */
} eg_rep_unit;

typedef struct eg_rep {
  eg_log log;
  bool *selected;           /* per run: chosen by the filter */
  bool *loaded;             /* per run: its attempts are loaded (selected + chain) */
  size_t *order;            /* attempt indexes by (run, slot, id) */
  eg_rep_unit *units;
  size_t nunits;
  size_t *unit_of;          /* per attempt: its unit */
} eg_rep;

/* Load the runs, choose them by the filter, load their attempts and those of
 * their retry chains, and build the units. */
eg_err eg_rep_load(eg_rep *rep, eg_db *db, const eg_rep_filter *flt, eg_fault *f);
/* The part of eg_rep_load after reading: rep->log filled, selected/loaded
 * set (NULL = all). For tests with synthetic rows. */
eg_err eg_rep_build(eg_rep *rep);
void eg_rep_free(eg_rep *rep);

/* Run-level filter (station, manifest, --run, time overlap). */
bool eg_rep_run_matches(const eg_log_run *r, const eg_rep_filter *flt);
/* Unit-level filter: its run selected, slot, MAC, chip, outcome, time of its first attempt. */
bool eg_rep_unit_matches(const eg_rep *rep, const eg_rep_unit *u, const eg_rep_filter *flt);
/* Attempt-level filter for history (result is the attempt's own). */
bool eg_rep_attempt_matches(const eg_rep *rep, size_t attempt, const eg_rep_filter *flt);

const eg_log_attempt *eg_rep_attempt(const eg_rep *rep, const eg_rep_unit *u, size_t k); /* k-th attempt */
bool eg_rep_unit_counted(const eg_rep_unit *u);
bool eg_rep_unit_first_pass(const eg_rep_unit *u);
bool eg_rep_unit_final_pass(const eg_rep_unit *u);

typedef struct eg_rep_yield {
  long units;        /* counted */
  long first_pass, final_pass;
  long attempts;     /* of counted units */
  long skipped, open;/* not counted: skipped, still in progress */
} eg_rep_yield;

void eg_rep_yield_add(eg_rep_yield *y, const eg_rep_unit *u);
/* 100 * num / den; NaN when den is 0. */
double eg_rep_pct(long num, long den);

typedef struct eg_rep_pareto {
  const char *stage, *error, *status; /* NULL: none recorded */
  long attempts, units;
  double share, cumulative;           /* percent of all failed attempts */
  const char *message;                /* the latest such attempt's */
} eg_rep_pareto;

/* Failed/aborted attempts of the matching units, grouped. *out malloc'd. */
eg_err eg_rep_failures(const eg_rep *rep, const eg_rep_filter *flt, eg_rep_pareto **out, size_t *n);

/* Median and nearest-rank p95 of v[0..n) (sorted in place). n > 0. */
void eg_rep_percentiles(int64_t *v, size_t n, double *median, int64_t *p95);

/* "24-0A-C4:00.00.01", "240ac4000001" -> "24:0a:c4:00:00:01"; false if not a MAC. */
bool eg_rep_normalize_mac(const char *in, char out[18]);
/* Dates "2026-12-01", "2026-12-01T10:00[:ss]" (UTC) or durations back from
 * now_ms: "8h", "2d", "30m", "1w", "90s" -> ISO-8601 UTC with milliseconds. */
bool eg_rep_parse_time(const char *in, int64_t now_ms, char out[32]);
/* Case-insensitive chip match ignoring '-' and '_' ("esp32c3" = "ESP32-C3"). */
bool eg_rep_chip_eq(const char *a, const char *b);

/* ---------------------------------------------------------------- output */

typedef enum eg_rep_view { EG_REP_UNITS, EG_REP_RUNS, EG_REP_HISTORY, EG_REP_YIELD } eg_rep_view;
typedef enum eg_rep_format { EG_REP_TEXT, EG_REP_CSV, EG_REP_JSON } eg_rep_format;

/* The yield view's tables; --by picks one (CSV needs exactly one). */
#define EG_REP_SECTION_MAP(XX)                                   \
  XX(RUN,      "run",      "yield per run")                      \
  XX(STATION,  "station",  "yield per station")                  \
  XX(DAY,      "day",      "yield per day (UTC)")                \
  XX(FAILURES, "failures", "failures by stage and error (Pareto)") \
  XX(STAGES,   "stages",   "time per stage, passed attempts (ms)") \
  XX(ATTEMPTS, "attempts", "attempts per unit")

typedef enum eg_rep_section {
#define EG_REP_SECTION_ENUM(name, key, title) EG_REP_SEC_##name,
  EG_REP_SECTION_MAP(EG_REP_SECTION_ENUM)
#undef EG_REP_SECTION_ENUM
  EG_REP_SEC__COUNT
} eg_rep_section;

/* "run" -> EG_REP_SEC_RUN; -1 when unknown. */
int eg_rep_section_parse(const char *name);

typedef struct eg_rep_opts {
  eg_rep_view view;
  eg_rep_format format;
  bool wide;
  unsigned width;        /* text: total width (100 by default) */
  int section;           /* yield: one section, or -1 for all */
} eg_rep_opts;

/* Print a report. EG_INVAL (f says why) when nothing matches or a
 * combination cannot be printed (CSV of every yield table). */
eg_err eg_report(eg_rep *rep, const eg_rep_filter *flt, const eg_rep_opts *o, FILE *out, eg_fault *f);
/* The self-contained HTML page (report_html.c). */
eg_err eg_report_html(eg_rep *rep, const eg_rep_filter *flt, FILE *out, eg_fault *f);

/* The tables the views print, for report_html.c (free with the matching call). */
struct eg_table;
struct eg_table *eg_rep_units_table(eg_rep *rep, const eg_rep_filter *flt, bool text);
struct eg_table *eg_rep_runs_table(eg_rep *rep, const eg_rep_filter *flt, bool text, bool newest_first); /* eg_table_free */
void eg_rep_units_table_free(struct eg_table *t);
struct eg_table *eg_rep_section_table(eg_rep *rep, const eg_rep_filter *flt, eg_rep_section s, bool text);
void eg_rep_section_free(struct eg_table *t, eg_rep_section s);

/* Numbers shared by the text, CSV, JSON and HTML renderings. */
typedef struct eg_rep_stage_stat {
  eg_stage stage;        /* EG_STAGE__COUNT: the whole attempt (duration_ms) */
  size_t n;
  double median;
  int64_t p95, max;
  int64_t *values;       /* sorted, n of them (for histograms); caller frees */
} eg_rep_stage_stat;
/* Per stage with data, then the total; *out malloc'd, free with eg_rep_stage_stats_free. */
eg_err eg_rep_stage_stats(const eg_rep *rep, const eg_rep_filter *flt, eg_rep_stage_stat **out, size_t *n);
void eg_rep_stage_stats_free(eg_rep_stage_stat *s, size_t n);

/* Groups of matching units by a key (run, station or day) with their yield. */
typedef struct eg_rep_group {
  char key[64];
  size_t run;            /* EG_REP_SEC_RUN: index in log.runs */
  long runs;             /* runs in the group */
  eg_rep_yield y;
} eg_rep_group;
eg_err eg_rep_groups(const eg_rep *rep, const eg_rep_filter *flt, eg_rep_section by, eg_rep_group **out, size_t *n);

#endif
