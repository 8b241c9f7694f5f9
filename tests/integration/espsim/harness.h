/* harness.h - what the espsim integration test programs share: the child
 * espsim process and its scratch dir (always killed and removed at exit),
 * fail() (optionally running a hook first, e.g. to print espsim's event
 * logs), a monotonic clock, and reading a string field from espsim's JSON
 * lines. Header-only: each test program includes it once. */
#ifndef ESIM_TEST_HARNESS_H
#define ESIM_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t child = -1;
static char tmpdir[256];
static void (*fail_hook)(void); /* runs in fail(), after the child is killed */

/* atexit(): kill espsim, remove the scratch dir. */
static void cleanup(void) {
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  if (tmpdir[0]) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
  }
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  if (child > 0) kill(child, SIGKILL);
  if (fail_hook) fail_hook();
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copy the string value of "key":"..." from a JSON line. */
static bool json_str(const char *line, const char *key, char *out, size_t cap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(line, pat);
  if (!p) return false;
  p += strlen(pat);
  const char *e = strchr(p, '"');
  if (!e || (size_t)(e - p) >= cap) return false;
  memcpy(out, p, (size_t)(e - p));
  out[e - p] = 0;
  return true;
}

#endif
