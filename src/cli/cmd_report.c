/* cmd_report.c - reading the traceability log: report, runs, history,
 * yield (alias stats).
 *
 * The report commands parse their own options (eg_cmd_report_main, called
 * by main() before the global parser) and open every database read-only:
 * they never create, write or migrate a file, and a manifest named to find
 * the database is read for its `database:` and `station:` keys only (its
 * images need not exist).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <yaml.h>

#include "cli.h"
#include "db.h"
#include "fileio.h"
#include "image.h"
#include "port.h"
#include "report.h"

static const char report_usage[] =
  "usage: espgang report|runs|history|yield [DB|MANIFEST] [KEY] [options]\n"
  "  report                 units of the latest run (or of the runs chosen), one row per unit\n"
  "  runs                   runs, newest first (default --last 20)\n"
  "  history [MAC|SLOT]     every attempt, newest first (--mac / --slot work too)\n"
  "  yield (or stats)       first-pass and final yield per run/station/day, failure Pareto,\n"
  "                         time per stage (median, p95), attempts per unit\n"
  "Sources (read-only; never created or migrated):\n"
  "  DB | MANIFEST          a log database, or a manifest naming one (its station is a filter)\n"
  "  --db PATH              a log database; repeat to report over several, keyed by station\n"
  "Filters:\n"
  "  --run N (repeatable)   --last N              --station NAME\n"
  "  --since T --until T    T: 2026-12-01, 2026-12-01T10:00 (UTC) or back from now: 8h, 2d, 30m, 1w\n"
  "  --manifest PATH|SHA    runs of that manifest (file's sha256, or a hex prefix)\n"
  "  --result pass|fail|aborted|skipped|in_progress   --slot NAME   --mac MAC   --chip CHIP\n"
  "Output:\n"
  "  (text table, fits 100 columns)  --wide (every column)  --csv (RFC 4180)  --json\n"
  "  --by run|station|day|failures|stages|attempts  (yield: one table; --csv needs one)\n"
  "  --html FILE            (report) one self-contained page with charts\n";

typedef enum { R_DB, R_RUN, R_LAST, R_SINCE, R_UNTIL, R_STATION, R_MANIFEST, R_RESULT, R_SLOT, R_MAC, R_CHIP,
               R_JSON, R_CSV, R_WIDE, R_HTML, R_BY, R_HELP } ropt_id;

static const struct {
  const char *name;
  ropt_id id;
  bool arg;
} ropts[] = {
  {"--db", R_DB, true}, {"--run", R_RUN, true}, {"--last", R_LAST, true}, {"--limit", R_LAST, true},
  {"--since", R_SINCE, true}, {"--until", R_UNTIL, true}, {"--station", R_STATION, true},
  {"--manifest", R_MANIFEST, true}, {"--result", R_RESULT, true}, {"--slot", R_SLOT, true},
  {"--mac", R_MAC, true}, {"--chip", R_CHIP, true}, {"--json", R_JSON, false}, {"--csv", R_CSV, false},
  {"--wide", R_WIDE, false}, {"--html", R_HTML, true}, {"--by", R_BY, true}, {"--help", R_HELP, false},
  {"-h", R_HELP, false},
};

static const struct {
  const char *word;
  eg_rep_view view;
} views[] = {
  {"report", EG_REP_UNITS}, {"runs", EG_REP_RUNS}, {"history", EG_REP_HISTORY},
  {"yield", EG_REP_YIELD}, {"stats", EG_REP_YIELD},
};

static const char *const results[] = {"pass", "fail", "aborted", "skipped", "in_progress"};

static bool is_manifest(const char *p) {
  const char *dot = strrchr(p, '.');
  return dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0);
}

/* The manifest's top-level `station:` and `database:` (resolved against its
 * folder; default espgang.db there), without loading images or ports. */
static bool manifest_source(const char *path, char **station, char **db_path) {
  *station = *db_path = NULL;
  /* The one reader: a FIFO or a device is refused, never waited on. */
  uint8_t *text = NULL;
  size_t len = 0;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_file_read(path, "manifest", 1u << 20, EG_MANIFEST, 1, &text, &len, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    return false;
  }
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_string(&p, text, len);
  int depth = 0;
  bool key = true, ok = true;
  char *last_key = NULL, *database = NULL;
  for (bool done = false; !done;) {
    yaml_event_t e;
    if (!yaml_parser_parse(&p, &e)) {
      eg_cli_error("%s:%zu:%zu: %s", path, p.problem_mark.line + 1, p.problem_mark.column + 1,
                   p.problem ? p.problem : "YAML syntax error");
      ok = false;
      break;
    }
    switch (e.type) {
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
      if (depth == 1) key = !key; /* a nested value of a top-level key */
      depth++;
      break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT: depth--; break;
    case YAML_SCALAR_EVENT:
      if (depth == 1) {
        const char *v = (const char *)e.data.scalar.value;
        if (key) free(last_key), last_key = strdup(v);
        else if (last_key && strcmp(last_key, "station") == 0) free(*station), *station = strdup(v);
        else if (last_key && strcmp(last_key, "database") == 0) free(database), database = strdup(v);
        key = !key;
      }
      break;
    case YAML_STREAM_END_EVENT: done = true; break;
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_ALIAS_EVENT: break;
    }
    yaml_event_delete(&e);
  }
  yaml_parser_delete(&p);
  free(text);
  free(last_key);
  if (ok) {
    const char *slash = strrchr(path, '/');
    const int dirlen = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    const char *name = database ? database : "espgang.db";
    if (name[0] == '/') *db_path = strdup(name);
    else if (asprintf(db_path, "%.*s/%s", slash && dirlen == 0 ? 1 : dirlen, dir, name) < 0) *db_path = NULL;
    if (!*db_path) ok = false;
  }
  free(database);
  if (!ok) free(*station), *station = NULL;
  return ok;
}

/* --manifest: a file's sha256, or a hex prefix as given. */
static bool manifest_filter(const char *arg, char out[65]) {
  struct stat st;
  if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
    FILE *fp = fopen(arg, "rb");
    if (!fp) {
      eg_cli_error("%s: %s", arg, strerror(errno));
      return false;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1), sha[32];
    const size_t n = buf ? fread(buf, 1, (size_t)st.st_size, fp) : 0;
    fclose(fp);
    if (!buf || n != (size_t)st.st_size) {
      free(buf);
      eg_cli_error("%s: cannot read", arg);
      return false;
    }
    eg_sha256(buf, n, sha);
    free(buf);
    eg_hex(out, sha, 32);
    return true;
  }
  const size_t len = strlen(arg);
  bool hex = len >= 4 && len <= 64;
  for (size_t i = 0; hex && i < len; i++) hex = isxdigit((unsigned char)arg[i]);
  if (!hex) {
    eg_cli_error("--manifest '%s': neither a file nor a sha256 prefix (4 to 64 hex digits)", arg);
    return false;
  }
  for (size_t i = 0; i <= len; i++) out[i] = (char)tolower((unsigned char)arg[i]);
  return true;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool parse_count(const char *opt, const char *v, long long min, long long *out) {
  char *end = NULL;
  errno = 0;
  *out = strtoll(v, &end, 10);
  if (errno || !end || *end || !*v || *out < min) {
    eg_cli_error("invalid %s '%s' (a number >= %lld)", opt, v, min);
    return false;
  }
  return true;
}

typedef struct rargs {
  eg_rep_view view;
  const char **dbs;
  size_t ndb;
  int64_t *runs;
  eg_rep_filter flt;
  eg_rep_opts o;
  const char *html;
  const char *positional[2];
  size_t npos;
  char manifest_sha[65];
  char *station_from_manifest, *db_from_manifest;
} rargs;

static int parse_args(int argc, char **argv, int cmd_index, rargs *a) {
  a->o.width = 100;
  a->o.section = -1;
  for (int i = 1; i < argc; i++) {
    if (i == cmd_index) continue;
    const char *arg = argv[i];
    if (arg[0] != '-' || !arg[1]) {
      if (a->npos == 2) {
        eg_cli_error("unexpected argument '%s' (see espgang %s --help)", arg, argv[cmd_index]);
        return EG_EXIT_USAGE;
      }
      a->positional[a->npos++] = arg;
      continue;
    }
    char name[32];
    const char *val = NULL, *eq = strchr(arg, '=');
    snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    for (char *p = name + 2; *p; p++)
      if (*p == '_') *p = '-';
    size_t k = 0;
    while (k < sizeof ropts / sizeof ropts[0] && strcmp(ropts[k].name, name) != 0) k++;
    if (k == sizeof ropts / sizeof ropts[0]) {
      eg_cli_error("unknown option %s for %s (see espgang %s --help)", arg, argv[cmd_index], argv[cmd_index]);
      return EG_EXIT_USAGE;
    }
    if (ropts[k].arg) {
      if (eq) val = eq + 1;
      else if (i + 1 < argc) val = argv[++i];
      else {
        eg_cli_error("option %s needs a value", name);
        return EG_EXIT_USAGE;
      }
    } else if (eq) {
      eg_cli_error("option %s takes no value", name);
      return EG_EXIT_USAGE;
    }
    long long n;
    switch (ropts[k].id) {
    case R_DB: a->dbs[a->ndb++] = val; break;
    case R_RUN:
      if (!parse_count("--run", val, 1, &n)) return EG_EXIT_USAGE;
      a->runs[a->flt.nruns++] = n;
      break;
    case R_LAST:
      if (!parse_count(name, val, 1, &n)) return EG_EXIT_USAGE;
      if (n > 1000000) {
        eg_cli_error("invalid %s '%s' (at most 1000000)", name, val);
        return EG_EXIT_USAGE;
      }
      a->flt.last = (int)n;
      break;
    case R_SINCE:
    case R_UNTIL:
      if (!eg_rep_parse_time(val, now_ms(), ropts[k].id == R_SINCE ? a->flt.since : a->flt.until)) {
        eg_cli_error("invalid %s '%s' (2026-12-01, 2026-12-01T10:00, or a duration back from now: 8h, 2d, 30m)",
                     name, val);
        return EG_EXIT_USAGE;
      }
      break;
    case R_STATION: a->flt.station = val; break;
    case R_MANIFEST:
      if (!manifest_filter(val, a->manifest_sha)) return EG_EXIT_USAGE;
      a->flt.manifest = a->manifest_sha;
      break;
    case R_RESULT: {
      size_t r = 0;
      while (r < sizeof results / sizeof results[0] && strcasecmp(results[r], val) != 0) r++;
      if (r == sizeof results / sizeof results[0]) {
        eg_cli_error("invalid --result '%s' (pass, fail, aborted, skipped, in_progress)", val);
        return EG_EXIT_USAGE;
      }
      a->flt.result = results[r];
      break;
    }
    case R_SLOT: a->flt.slot = val; break;
    case R_MAC:
      if (!eg_rep_normalize_mac(val, a->flt.mac)) {
        eg_cli_error("invalid --mac '%s' (6 bytes in hex, e.g. 24:0a:c4:00:00:01)", val);
        return EG_EXIT_USAGE;
      }
      break;
    case R_CHIP: a->flt.chip = val; break;
    case R_JSON: a->o.format = EG_REP_JSON; break;
    case R_CSV: a->o.format = EG_REP_CSV; break;
    case R_WIDE: a->o.wide = true, a->o.width = 0; break;
    case R_HTML: a->html = val; break;
    case R_BY:
      if ((a->o.section = eg_rep_section_parse(val)) < 0) {
        eg_cli_error("invalid --by '%s' (run, station, day, failures, stages, attempts)", val);
        return EG_EXIT_USAGE;
      }
      break;
    case R_HELP: fputs(report_usage, stdout); return EG_EXIT_OK + 100; /* done, exit 0 */
    }
  }
  return EG_EXIT_OK;
}

/* The positional arguments: a source (database or manifest), then for
 * history a MAC or slot. */
static int place_positionals(rargs *a) {
  size_t next = 0;
  if (next < a->npos && (a->view != EG_REP_HISTORY || a->npos == 2 || a->ndb == 0)) {
    const char *src = a->positional[next++];
    if (is_manifest(src)) {
      if (!manifest_source(src, &a->station_from_manifest, &a->db_from_manifest)) return EG_EXIT_USAGE;
      a->dbs[a->ndb++] = a->db_from_manifest;
      if (!a->flt.station) a->flt.station = a->station_from_manifest;
    } else {
      a->dbs[a->ndb++] = src;
    }
  }
  if (next < a->npos) {
    if (a->view != EG_REP_HISTORY) {
      eg_cli_error("unexpected argument '%s'", a->positional[next]);
      return EG_EXIT_USAGE;
    }
    const char *key = a->positional[next];
    if (!eg_rep_normalize_mac(key, a->flt.mac)) a->flt.slot = key;
  }
  if (!a->ndb) {
    eg_cli_error("no log database: give DB, MANIFEST or --db PATH (see --help)");
    return EG_EXIT_USAGE;
  }
  if (a->view == EG_REP_HISTORY && !a->flt.mac[0] && !a->flt.slot) {
    eg_cli_error("history needs a MAC or a slot (a second argument, --mac or --slot)");
    return EG_EXIT_USAGE;
  }
  if (a->html && a->view != EG_REP_UNITS) {
    eg_cli_error("--html goes with report");
    return EG_EXIT_USAGE;
  }
  return EG_EXIT_OK;
}

/* Is argv[i] one of the report commands? Skips the values of options that
 * take one, so `espgang --db x.db report` and `espgang report` both count. */
int eg_cmd_report_main(int argc, char **argv) {
  int cmd = -1;
  eg_rep_view view = EG_REP_UNITS;
  for (int i = 1; i < argc && cmd < 0; i++) {
    if (argv[i][0] == '-') {
      for (size_t k = 0; k < sizeof ropts / sizeof ropts[0]; k++)
        if (ropts[k].arg && strcmp(argv[i], ropts[k].name) == 0) i++;
      continue;
    }
    for (size_t k = 0; k < sizeof views / sizeof views[0]; k++)
      if (strcmp(argv[i], views[k].word) == 0) cmd = i, view = views[k].view;
    if (cmd < 0) return -1; /* another command */
  }
  if (cmd < 0) return -1;
  rargs a;
  memset(&a, 0, sizeof a);
  a.view = view;
  a.dbs = calloc((size_t)argc + 1, sizeof *a.dbs);
  a.runs = calloc((size_t)argc + 1, sizeof *a.runs);
  if (!a.dbs || !a.runs) return EG_EXIT_INTERNAL;
  a.flt.runs = a.runs;
  int rc = parse_args(argc, argv, cmd, &a);
  if (rc == EG_EXIT_OK) rc = place_positionals(&a);
  if (rc != EG_EXIT_OK) {
    free(a.dbs), free(a.runs), free(a.station_from_manifest), free(a.db_from_manifest);
    return rc == EG_EXIT_OK + 100 ? EG_EXIT_OK : rc;
  }
  a.o.view = view;
  if (view == EG_REP_UNITS) a.flt.latest_only = true;
  if (view == EG_REP_RUNS && !a.flt.last && !a.flt.nruns && !a.flt.since[0] && !a.flt.until[0]) a.flt.last = 20;

  eg_db *db = NULL;
  eg_fault f;
  eg_fault_clear(&f);
  eg_rep rep;
  memset(&rep, 0, sizeof rep);
  eg_err e = eg_db_open_readonly(&db, a.dbs, a.ndb, &f);
  if (e == EG_OK) e = eg_rep_load(&rep, db, &a.flt, &f);
  if (e == EG_OK && a.html) {
    FILE *out = fopen(a.html, "wb");
    if (!out) e = eg_fault_set(&f, EG_FILE_WRITE, EG_STAGE_NONE, -1, "%s: %s", a.html, strerror(errno));
    else {
      e = eg_report_html(&rep, &a.flt, out, &f);
      if (fclose(out) != 0 && e == EG_OK) e = eg_fault_set(&f, EG_FILE_WRITE, EG_STAGE_NONE, -1, "%s: write failed", a.html);
    }
  } else if (e == EG_OK) {
    e = eg_report(&rep, &a.flt, &a.o, stdout, &f);
  }
  if (e != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = e == EG_DB || e == EG_NOMEM || e == EG_IO ? EG_EXIT_INTERNAL : EG_EXIT_USAGE;
  }
  eg_rep_free(&rep);
  eg_db_close(db);
  free(a.dbs), free(a.runs), free(a.station_from_manifest), free(a.db_from_manifest);
  return rc;
}
