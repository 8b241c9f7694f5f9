/* fdcheck.h - cmocka setup/teardown that fail a test which leaks file
 * descriptors (counted in /proc/self/fd). Header-only: each test program
 * includes it once. */
#ifndef EG_TEST_FDCHECK_H
#define EG_TEST_FDCHECK_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static int setup_fds(void **state) {
  *state = (void *)(intptr_t)count_fds();
  return 0;
}

static int teardown_fds(void **state) {
  const int before = (int)(intptr_t)*state;
  const int after = count_fds();
  if (before != after) {
    fprintf(stderr, "fd leak: %d open before the test, %d after\n", before, after);
    return -1;
  }
  return 0;
}

#endif
