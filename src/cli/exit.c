/* exit.c - the exit status of a run, from the class of each result. */
#include "cli.h"

int eg_cli_exit_code(const eg_err *results, size_t n, bool interrupted) {
  if (interrupted) return EG_EXIT_ABORTED;
  int rc = EG_EXIT_OK;
  for (size_t i = 0; i < n; i++) {
    int e = EG_EXIT_OK;
    switch (eg_err_class_of(results[i])) {
    case EG_CLASS_OK:
    case EG_CLASS_SKIP: e = EG_EXIT_OK; break;
    case EG_CLASS_UNIT:
    case EG_CLASS_FINAL: e = EG_EXIT_FAILED; break;
    case EG_CLASS_INPUT: e = EG_EXIT_USAGE; break;
    case EG_CLASS_INTERNAL: e = EG_EXIT_INTERNAL; break;
    case EG_CLASS_ABORT: e = EG_EXIT_ABORTED; break;
    }
    /* Severity order: internal (3) > aborted (4) > bad input (2) > failed (1). */
    static const int rank[] = {[EG_EXIT_OK] = 0, [EG_EXIT_FAILED] = 1, [EG_EXIT_USAGE] = 2, [EG_EXIT_ABORTED] = 3,
                               [EG_EXIT_INTERNAL] = 4};
    if (rank[e] > rank[rc]) rc = e;
  }
  return rc;
}
