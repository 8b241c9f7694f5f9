/* manifest_check - load one manifest with eg_manifest_load() and print its
 * diagnostics; for tests/schema/check.js, which holds the C loader and the
 * JSON Schema to the same verdicts.
 *
 *   manifest_check FILE    exit 0 valid, 1 invalid (EG_MANIFEST), 2 other error
 */
#include <stdio.h>

#include "manifest.h"

static void print_diag(void *ctx, const char *file, int line, int col, const char *msg) {
  (void)ctx;
  printf("%s:%d:%d: %s\n", file, line, col, msg);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: manifest_check FILE\n");
    return 2;
  }
  eg_manifest m;
  const eg_err r = eg_manifest_load(&m, argv[1], print_diag, NULL);
  if (r == EG_OK) {
    eg_manifest_free(&m);
    return 0;
  }
  return r == EG_MANIFEST ? 1 : 2;
}
