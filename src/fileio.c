/* fileio.c - the one whole-file reader (fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "what path: problem", or the bare problem when what is NULL. */
static eg_err fail(eg_fault *f, eg_err code, const char *what, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static eg_err fail(eg_fault *f, eg_err code, const char *what, const char *path, const char *fmt, ...) {
  char problem[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(problem, sizeof problem, fmt, ap);
  va_end(ap);
  if (what) return eg_fault_set(f, code, EG_STAGE_NONE, -1, "%s %s: %s", what, path, problem);
  return eg_fault_set(f, code, EG_STAGE_NONE, -1, "%s", problem);
}

/* What a file that is not a regular file is, for the message. */
static const char *type_name(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

static eg_err check_mode(const struct stat *st, const char *what, const char *path, eg_fault *f) {
  if (S_ISREG(st->st_mode)) return EG_OK;
  return fail(f, EG_FILE_OPEN, what, path, "is %s, not a regular file", type_name(st->st_mode));
}

eg_err eg_file_check_regular(const char *path, const char *what, eg_fault *f) {
  struct stat st;
  if (stat(path, &st) != 0) return fail(f, EG_FILE_OPEN, what, path, "%s", strerror(errno));
  return check_mode(&st, what, path, f);
}

/* size 0: not known (the file grew while it was read). */
static eg_err too_big(eg_fault *f, eg_err code, const char *what, const char *path, uint64_t size, size_t max) {
  if (size) return fail(f, code, what, path, "%llu bytes, more than the %zu-byte limit", (unsigned long long)size, max);
  return fail(f, code, what, path, "more than the %zu-byte limit", max);
}

/* Open a regular file for reading: *fd and its fstat, or an error. */
static eg_err open_regular(const char *path, const char *what, int *fd, struct stat *st, eg_fault *f) {
  /* The type first, by name: refusing a device after opening it would be
   * too late (a tty's open raises DTR and RTS). */
  eg_err e = eg_file_check_regular(path, what, f);
  if (e != EG_OK) return e;
  *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (*fd < 0) return fail(f, EG_FILE_OPEN, what, path, "%s", strerror(errno));
  if (fstat(*fd, st) != 0) {
    const int en = errno;
    close(*fd);
    return fail(f, EG_FILE_OPEN, what, path, "%s", strerror(en));
  }
  if ((e = check_mode(st, what, path, f)) != EG_OK) /* replaced since the stat above */
    close(*fd);
  return e;
}

/* read(2) until cap bytes or the end; -1 with errno on error. */
static ssize_t read_full(int fd, uint8_t *buf, size_t cap) {
  size_t n = 0;
  while (n < cap) {
    const ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    n += (size_t)r;
  }
  return (ssize_t)n;
}

eg_err eg_file_read_head(const char *path, const char *what, uint8_t *buf, size_t cap, size_t *got, eg_fault *f) {
  *got = 0;
  int fd;
  struct stat st;
  const eg_err e = open_regular(path, what, &fd, &st, f);
  if (e != EG_OK) return e;
  const ssize_t r = read_full(fd, buf, cap);
  const int en = errno;
  close(fd);
  if (r < 0) return fail(f, EG_FILE_READ, what, path, "read failed: %s", strerror(en));
  *got = (size_t)r;
  return EG_OK;
}

eg_err eg_file_read(const char *path, const char *what, size_t max, eg_err too_large, size_t slack, uint8_t **out,
                    size_t *len, eg_fault *f) {
  *out = NULL;
  *len = 0;
  int fd;
  struct stat st;
  const eg_err e = open_regular(path, what, &fd, &st, f);
  if (e != EG_OK) return e;
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return too_big(f, too_large, what, path, (uint64_t)st.st_size, max);
  }
  /* Size from fstat, plus one byte to see the end of a file that did not
   * grow; keep reading to EOF in case it did (up to the limit). Files of
   * /proc report size 0: they grow from a page. */
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
  if (cap > max + 1) cap = max + 1;
  size_t n = 0;
  uint8_t *buf = malloc(cap + slack);
  for (;;) {
    if (!buf) {
      close(fd);
      return fail(f, EG_NOMEM, what, path, "out of memory");
    }
    if (n == cap) {
      if (cap > max) {
        free(buf);
        close(fd);
        return too_big(f, too_large, what, path, 0, max);
      }
      const size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
      uint8_t *nb = realloc(buf, ncap + slack);
      if (!nb) free(buf);
      buf = nb;
      cap = ncap;
      continue;
    }
    const ssize_t r = read_full(fd, buf + n, cap - n);
    if (r < 0) {
      const int en = errno;
      free(buf);
      close(fd);
      return fail(f, EG_FILE_READ, what, path, "read failed: %s", strerror(en));
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (n > max) {
    free(buf);
    return too_big(f, too_large, what, path, 0, max);
  }
  memset(buf + n, 0, slack);
  *out = buf;
  *len = n;
  return EG_OK;
}
