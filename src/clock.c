#include "clock.h"

#include <stdio.h>
#include <time.h>

int64_t eg_clock_epoch_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *eg_clock_iso_ms(int64_t ms, char buf[32]) {
  /* Floor division, so times before 1970 still print their own second. */
  const time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int frac = (int)(ms - (int64_t)sec * 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  const size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, 32 - n, ".%03dZ", frac);
  return buf;
}
