/* cmd_report.c - reading the traceability log: report, runs, history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "db.h"
#include "manifest.h"

static void diag(void *ctx, const char *file, int line, int col, const char *msg) {
  (void)ctx;
  fprintf(stderr, "%s:%d:%d: %s\n", file, line, col, msg);
}

/* A .yaml/.yml argument is a manifest: use its database. */
static bool is_manifest(const char *p) {
  const char *dot = strrchr(p, '.');
  return dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0);
}

int eg_cmd_report(eg_cli *c) {
  const bool history = strcmp(c->command, "history") == 0;
  if (c->nargs != (history ? 2u : 1u)) {
    eg_cli_error(history ? "usage: espgang history DB|MANIFEST MAC|SLOT [--json]"
                         : "usage: espgang %s DB|MANIFEST [--run N] [--limit N] [--json]",
                 c->command);
    return EG_EXIT_USAGE;
  }
  char *db_path = NULL;
  eg_manifest m;
  memset(&m, 0, sizeof m);
  if (is_manifest(c->args[0])) {
    if (eg_manifest_load(&m, c->args[0], diag, NULL) != EG_OK) return EG_EXIT_USAGE;
    db_path = strdup(m.db_path);
    eg_manifest_free(&m);
  } else {
    db_path = strdup(c->args[0]);
  }
  if (!db_path) return EG_EXIT_INTERNAL;
  FILE *probe = fopen(db_path, "rb");
  if (!probe) {
    eg_cli_error("no log database at %s", db_path);
    free(db_path);
    return EG_EXIT_USAGE;
  }
  fclose(probe);
  eg_db *db = NULL;
  eg_fault f;
  eg_fault_clear(&f);
  int rc = EG_EXIT_OK;
  if (eg_db_open(&db, db_path, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    free(db_path);
    return EG_EXIT_INTERNAL;
  }
  eg_err e;
  if (history)
    e = eg_db_report_unit(db, c->args[1], c->json, stdout, &f);
  else if (strcmp(c->command, "runs") == 0)
    e = eg_db_list_runs(db, c->limit ? c->limit : 20, c->json, stdout, &f);
  else
    e = eg_db_report_run(db, c->run_id, c->json, stdout, &f);
  if (e != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = e == EG_DB ? EG_EXIT_INTERNAL : EG_EXIT_USAGE;
  }
  eg_db_close(db);
  free(db_path);
  return rc;
}
