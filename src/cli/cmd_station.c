/* cmd_station.c - `espgang station MANIFEST`: the station (station.h) with
 * the operator's views: one live line per slot plus the shift's counters
 * on a terminal, or (--json) one JSON object per line per event:
 *
 *   station        once: station, run_id, database, slots, policy, probe_ms
 *   slot_state     index, slot, state (station.h names), note, time_ms
 *   unit_start, unit_identity
 *                  index + every member of the unit record (as flash --json)
 *   stage          index, slot, attempt, stage, stage_label
 *   progress       index, slot, done, total (at most every 500 ms per slot,
 *                  and the last)
 *   unit_done      index + the record + will_retry, recorded
 *   counters       after each unit's final result (station.h)
 *   message        text
 *   summary        once, at the end: the counters, probes, db_error
 *
 * With --http [ADDR:]PORT the dashboard (dash.h) is fed every slot change
 * and unit event, and closed once everything is recorded. It is opened
 * before the session is recorded or any port touched: an address in use, or
 * beyond localhost without --token, is exit 2.
 *
 * Exit status: 0 when the session ended cleanly (stopped by SIGINT/SIGTERM:
 * that is how a station ends; failed units are in the log), 2 bad input,
 * 3 a record the log refused (it went to stderr as JSON).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "clock.h"
#include "dash.h"
#include "display.h"
#include "gangrun.h"
#include "jsonw.h"
#include "station.h"

#define PROGRESS_JSON_MS 500

typedef struct stationctx {
  eg_display *disp;          /* terminal (NULL with --json) */
  bool json;
  const eg_gangrun *g;
  size_t nslots;
  uint64_t *progress_at;     /* --json: last progress event per slot (loop ms) */
  uv_loop_t *loop;
  eg_dash *dash;             /* --http; NULL once closed */
} stationctx;

static void emit(const stationctx *sc, eg_jw *w) {
  (void)sc;
  char *s = eg_jw_close(w);
  if (!s) return;
  fprintf(stdout, "%s\n", s);
  fflush(stdout);
  free(s);
}

static void open_slot_event(const stationctx *sc, eg_jw *w, const char *event, size_t slot) {
  eg_jw_open(w);
  eg_jw_str(w, "event", event);
  eg_jw_uint(w, "index", slot);
  eg_jw_str(w, "slot", sc->g->jobs[slot].label);
}

static void ev_state(void *ctx, size_t slot, eg_station_state st, const char *note) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_slot_state(sc->dash, slot, st, note);
  if (sc->json) {
    eg_jw w;
    open_slot_event(sc, &w, "slot_state", slot);
    eg_jw_str(&w, "state", eg_station_state_name(st));
    eg_jw_str(&w, "note", note);
    eg_jw_int(&w, "time_ms", eg_clock_epoch_ms());
    emit(sc, &w);
    return;
  }
  char text[256];
  snprintf(text, sizeof text, "%s%s%s%s", eg_station_state_words(st), note[0] ? " (" : "", note, note[0] ? ")" : "");
  eg_display_state(sc->disp, slot, text);
}

static void unit_event(const stationctx *sc, const char *event, size_t slot, const eg_unit_record *u) {
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", event);
  eg_jw_uint(&w, "index", slot);
  eg_jw_unit(&w, u);
  emit(sc, &w);
}

static void ev_unit_start(void *ctx, size_t slot, const eg_unit_record *u) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_unit_start(sc->dash, slot, u);
  if (sc->json) unit_event(sc, "unit_start", slot, u);
}

static void ev_unit_identity(void *ctx, size_t slot, const eg_unit_record *u) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_unit_identity(sc->dash, slot, u);
  if (sc->json) unit_event(sc, "unit_identity", slot, u);
}

static void ev_unit_stage(void *ctx, size_t slot, const eg_unit_record *u, eg_stage stage) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_unit_stage(sc->dash, slot, u, stage);
  if (!sc->json) {
    char text[96];
    snprintf(text, sizeof text, "flashing: %s%s", eg_stage_label(stage), u->attempt > 1 ? " (retry)" : "");
    eg_display_state(sc->disp, slot, text);
    return;
  }
  eg_jw w;
  open_slot_event(sc, &w, "stage", slot);
  eg_jw_int(&w, "attempt", u->attempt);
  eg_jw_str(&w, "stage", eg_stage_name(stage));
  eg_jw_str(&w, "stage_label", eg_stage_label(stage));
  emit(sc, &w);
}

static void ev_unit_progress(void *ctx, size_t slot, const eg_unit_record *u, uint64_t done, uint64_t total) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_unit_progress(sc->dash, slot, u, done, total);
  if (!sc->json) {
    eg_display_progress(sc->disp, slot, done, total);
    return;
  }
  const uint64_t now = uv_now(sc->loop);
  if (done != total && now < sc->progress_at[slot] + PROGRESS_JSON_MS) return;
  sc->progress_at[slot] = now;
  eg_jw w;
  open_slot_event(sc, &w, "progress", slot);
  eg_jw_uint(&w, "done", done);
  eg_jw_uint(&w, "total", total);
  emit(sc, &w);
}

static void ev_unit_done(void *ctx, size_t slot, const eg_unit_record *u, bool will_retry, bool recorded) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_unit_done(sc->dash, slot, u, will_retry, recorded);
  if (!sc->json) {
    if (u->result == EG_RESULT_FAIL || !recorded)
      eg_display_message(sc->disp, "%s: %s%s%s", sc->g->jobs[slot].label, u->fault.msg, will_retry ? " (retrying)" : "",
                         recorded ? "" : " [NOT RECORDED]");
    return;
  }
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "unit_done");
  eg_jw_uint(&w, "index", slot);
  eg_jw_unit(&w, u);
  eg_jw_bool(&w, "will_retry", will_retry);
  eg_jw_bool(&w, "recorded", recorded);
  emit(sc, &w);
}

static void counters_json(eg_jw *w, const eg_station_counters *c) {
  eg_jw_uint(w, "seated", c->seated);
  eg_jw_uint(w, "units", c->units);
  eg_jw_uint(w, "passed", c->passed);
  eg_jw_uint(w, "failed", c->failed);
  eg_jw_uint(w, "skipped", c->skipped);
  eg_jw_uint(w, "aborted", c->aborted);
  eg_jw_uint(w, "first_pass", c->first_pass);
  eg_jw_uint(w, "attempts", c->attempts);
  if (c->first_pass_yield >= 0) eg_jw_num(w, "first_pass_yield", c->first_pass_yield);
  else eg_jw_str(w, "first_pass_yield", NULL);
  eg_jw_num(w, "units_per_hour", c->units_per_hour);
  eg_jw_int(w, "started_ms", c->started_ms);
  eg_jw_uint(w, "elapsed_ms", c->elapsed_ms);
}

static void counters_text(char *buf, size_t n, const eg_station_counters *c) {
  char yield[32] = "-";
  if (c->first_pass_yield >= 0) snprintf(yield, sizeof yield, "%.1f %%", c->first_pass_yield * 100.0);
  snprintf(buf, n, "%llu units: %llu passed, %llu failed; %llu skipped, %llu aborted; first-pass yield %s; %.0f units/h",
           (unsigned long long)c->units, (unsigned long long)c->passed, (unsigned long long)c->failed,
           (unsigned long long)c->skipped, (unsigned long long)c->aborted, yield, c->units_per_hour);
}

static void ev_counters(void *ctx, const eg_station_counters *c) {
  stationctx *sc = ctx;
  if (sc->json) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "counters");
    counters_json(&w, c);
    emit(sc, &w);
    return;
  }
  char text[256];
  counters_text(text, sizeof text, c);
  eg_display_state(sc->disp, sc->nslots, text);
}

static void ev_message(void *ctx, const char *text) {
  stationctx *sc = ctx;
  if (sc->dash) eg_dash_message(sc->dash, text);
  if (sc->json) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "message");
    eg_jw_str(&w, "text", text);
    emit(sc, &w);
    return;
  }
  eg_display_message(sc->disp, "%s", text);
}

static void dash_closed(void *ctx) { (void)ctx; }

/* Everything is recorded: the dashboard goes, so the loop can end. */
static void ev_finished(void *ctx) {
  stationctx *sc = ctx;
  if (!sc->dash) return;
  eg_dash_close(sc->dash, dash_closed, NULL);
  sc->dash = NULL;
}

/* --http [ADDR:]PORT: "8080", "0.0.0.0:8080", "[::1]:8080". */
static bool parse_http(const char *spec, char *addr, size_t len, int *port) {
  const char *colon = strrchr(spec, ':');
  const char *p = colon ? colon + 1 : spec;
  addr[0] = '\0';
  if (colon) {
    const char *a = spec;
    size_t n = (size_t)(colon - spec);
    if (n >= 2 && a[0] == '[' && a[n - 1] == ']') a++, n -= 2; /* [IPv6] */
    if (n == 0 || n >= len) return false;
    memcpy(addr, a, n);
    addr[n] = '\0';
  }
  uint32_t v;
  if (!eg_cli_parse_u32(p, &v) || v > 65535 || strspn(p, "0123456789") != strlen(p)) return false;
  *port = (int)v;
  return true;
}

static void ev_log(void *ctx, size_t slot, const char *line) {
  stationctx *sc = ctx;
  if (sc->json) return;
  eg_display_message(sc->disp, "%s: %s", sc->g->jobs[slot].label, line);
}

int eg_cmd_station(eg_cli *c) {
  if (c->nargs != 1) {
    eg_cli_error("usage: espgang station MANIFEST.yaml [--operator NAME] [--reflash | --retry-failed --by-mac "
                 "[--allow-changed-images]] [--http [ADDR:]PORT [--token TOKEN]] [--json]");
    return EG_EXIT_USAGE;
  }
  if (c->nports) {
    eg_cli_error("station takes its ports from the manifest; -p is not allowed");
    return EG_EXIT_USAGE;
  }
  if (c->reflash && c->retry_failed) {
    eg_cli_error("--reflash and --retry-failed contradict each other");
    return EG_EXIT_USAGE;
  }
  eg_gangrun g;
  stationctx sc;
  memset(&sc, 0, sizeof sc);
  uv_loop_t loop;
  uv_loop_init(&loop);
  eg_fault f;
  eg_fault_clear(&f);
  bool nothing = false;
  int rc = eg_gangrun_prepare(&g, c, true, &nothing);
  if (rc != EG_EXIT_OK || nothing) goto out;
  const eg_manifest *m = &g.m;
  sc.g = &g;
  sc.json = c->json;
  sc.nslots = g.nslots;
  sc.loop = &loop;
  sc.progress_at = calloc(g.nslots, sizeof *sc.progress_at);
  if (!sc.progress_at) {
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  if (!c->json) {
    const char **labels = calloc(g.nslots + 1, sizeof *labels);
    if (!labels) {
      rc = EG_EXIT_INTERNAL;
      goto out;
    }
    for (size_t i = 0; i < g.nslots; i++) labels[i] = g.slots[i].slot;
    labels[g.nslots] = "shift";
    sc.disp = eg_display_new(&loop, stdout, isatty(STDOUT_FILENO) ? EG_DISPLAY_TTY : EG_DISPLAY_PLAIN, g.nslots + 1,
                             labels);
    free(labels);
    if (!sc.disp) {
      rc = EG_EXIT_INTERNAL;
      goto out;
    }
  }
  if (c->token && !c->http) {
    eg_cli_error("--token goes with --http");
    rc = EG_EXIT_USAGE;
    goto out;
  }
  if (c->http) {
    char addr[64];
    int port = 0;
    if (!parse_http(c->http, addr, sizeof addr, &port)) {
      eg_cli_error("--http %s: expected PORT or ADDR:PORT (a numeric address; [::1]:PORT for IPv6)", c->http);
      rc = EG_EXIT_USAGE;
      goto out;
    }
    const char **labels = calloc(g.nslots, sizeof *labels);
    if (!labels) {
      rc = EG_EXIT_INTERNAL;
      goto out;
    }
    for (size_t i = 0; i < g.nslots; i++) labels[i] = g.jobs ? g.jobs[i].label : g.slots[i].slot;
    const eg_dash_options o = {
      .station = m->station,
      .labels = labels,
      .nslots = g.nslots,
      .address = addr[0] ? addr : NULL,
      .port = port,
      .token = c->token,
    };
    const eg_err de = eg_dash_open(&sc.dash, &loop, &o, &f);
    free(labels);
    if (de != EG_OK) {
      eg_cli_error("--http %s: %s", c->http, f.msg);
      rc = de == EG_NOMEM ? EG_EXIT_INTERNAL : EG_EXIT_USAGE;
      goto out;
    }
  }
  if ((rc = eg_gangrun_begin(&g, c, &loop, true)) != EG_EXIT_OK) goto out;

  eg_station_config cfg = {
    .jobs = g.jobs,
    .njobs = g.nslots,
    .recorder = g.rec,
    .gate = &g.gate,
    .probe_ms = c->probe_ms,
    .max_probes = c->max_probes,
    .handle_signals = true,
    /* A finished board that was reset into its application goes back there
     * after a probe has read its MAC. */
    .hard_reset_probe = m->set.after == EG_AFTER_HARD_RESET,
  };
  cfg.probe.before = m->set.before;
  cfg.probe.chip = m->set.chip;
  cfg.probe.rates[0] = g.dcfg.connect_baud;
  /* Without a reset the last unit's stub may still listen at the transfer
   * rate (after: no-reset), as dev_connect.c alternates. */
  if (m->set.before == EG_BEFORE_NO_RESET && g.dcfg.baud != g.dcfg.connect_baud) cfg.probe.rates[1] = g.dcfg.baud;
  /* esptool's SYNC timeout (100 ms), or the manifest's if longer: a ROM
   * answers in a few ms, and a probe that misses a reply on a busy machine
   * would take a seated board for gone. */
  cfg.probe.sync_ms = m->set.timeouts.sync_ms > 100 ? m->set.timeouts.sync_ms : 100;

  const char *policy = eg_gate_mode_words(eg_gate_active(&g.gate) ? g.gate.mode : EG_GATE_ALL);
  if (c->json) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "station");
    eg_jw_str(&w, "station", m->station);
    eg_jw_int(&w, "run_id", g.run_id);
    eg_jw_str(&w, "database", m->db_path);
    eg_jw_uint(&w, "slots", g.nslots);
    eg_jw_str(&w, "policy", policy);
    if (g.parent_run_id) eg_jw_int(&w, "parent_run_id", g.parent_run_id);
    eg_jw_uint(&w, "probe_ms", c->probe_ms ? c->probe_ms : 1000);
    if (sc.dash) eg_jw_str(&w, "url", eg_dash_url(sc.dash));
    emit(&sc, &w);
  } else {
    printf("espgang %s: station %s, %zu slot(s), %s, %zu image(s), %s at %u baud; %s; session run #%lld in %s; "
           "Ctrl-C ends the session\n",
           EG_VERSION, m->station, g.nslots, m->set.chip ? m->set.chip->name : "any chip", m->nimages,
           eg_stubs_any(g.stubs) ? "stub" : "ROM only", m->set.baud,
           policy, (long long)g.run_id, m->db_path);
    if (sc.dash) printf("dashboard: %s%s\n", eg_dash_url(sc.dash), c->token ? " (add ?token=TOKEN once)" : "");
    fflush(stdout);
  }
  static const eg_station_events events = {
    .on_state = ev_state,
    .on_unit_start = ev_unit_start,
    .on_unit_stage = ev_unit_stage,
    .on_unit_identity = ev_unit_identity,
    .on_unit_progress = ev_unit_progress,
    .on_unit_done = ev_unit_done,
    .on_counters = ev_counters,
    .on_message = ev_message,
    .on_log = ev_log,
    .on_finished = ev_finished,
  };
  eg_station_summary sum;
  memset(&sum, 0, sizeof sum);
  if (eg_station_run(&loop, &cfg, &events, &sc, &sum, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  if (sc.disp) eg_display_finish(sc.disp);
  if (c->json) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "summary");
    eg_jw_int(&w, "run_id", g.run_id);
    counters_json(&w, &sum.counters);
    eg_jw_uint(&w, "probes", sum.probes);
    eg_jw_uint(&w, "probe_bytes", sum.probe_bytes);
    eg_jw_bool(&w, "db_error", sum.sched.db_error);
    eg_jw_str(&w, "database", m->db_path);
    emit(&sc, &w);
  } else {
    char text[256];
    counters_text(text, sizeof text, &sum.counters);
    printf("\nstation %s: %s; session run #%lld recorded in %s\n", m->station, text, (long long)g.run_id, m->db_path);
  }
  rc = sum.sched.db_error ? EG_EXIT_INTERNAL : EG_EXIT_OK;
out:
  ev_finished(&sc); /* a dashboard opened before a failure */
  if (sc.disp) eg_display_free(sc.disp);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(sc.progress_at);
  return eg_gangrun_free(&g, c, rc);
}
