/* test_fileio.c - src/fileio.c, the one whole-file reader: exact bytes and
 * slack, every kind of file that is not a regular file refused by its type
 * without blocking (FIFO with and without a writer, character device,
 * directory, socket, a symlink to a FIFO), the size limit from fstat and
 * while reading, messages with and without the "what path: " prefix; and
 * src/text.c, the control-character finder and escaper used for what
 * espgang shows but did not write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fileio.h"
#include "text.h"

/* Hang guard: a read that blocks (the defect this module fixes) ends the
 * process through the default SIGALRM action, so ctest reports it at once.
 * Not a timing target. */
#define HANG_GUARD_S 20

typedef struct tmp {
  char dir[64];
} tmp;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int tmp_setup(void **state) {
  tmp *t = calloc(1, sizeof *t);
  snprintf(t->dir, sizeof t->dir, "/tmp/eg_fileio_XXXXXX");
  if (!mkdtemp(t->dir)) return -1;
  *state = t;
  return 0;
}

static int tmp_teardown(void **state) {
  tmp *t = *state;
  nftw(t->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  free(t);
  return 0;
}

static void put(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void msg_is(const eg_fault *f, const char *want) {
  if (strcmp(f->msg, want) != 0) fail_msg("message\n  got  \"%s\"\n  want \"%s\"", f->msg, want);
}

/* ------------------------------------------------------------ reading */

static void test_reads_bytes_and_slack(void **state) {
  tmp *t = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/a.bin", t->dir);
  uint8_t want[10000];
  for (size_t i = 0; i < sizeof want; i++) want[i] = (uint8_t)(i * 13 + 1);
  put(path, want, sizeof want);
  uint8_t *buf = NULL;
  size_t len = 0;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_file_read(path, "image", sizeof want, EG_IMAGE_TOO_LARGE, 5, &buf, &len, &f), EG_OK);
  assert_int_equal(len, sizeof want);
  assert_memory_equal(buf, want, sizeof want);
  for (size_t i = 0; i < 5; i++) assert_int_equal(buf[len + i], 0); /* slack zeroed */
  free(buf);

  /* Empty: not an error, and still a buffer (with its slack). */
  snprintf(path, sizeof path, "%s/empty", t->dir);
  put(path, "", 0);
  assert_int_equal(eg_file_read(path, "image", 100, EG_IMAGE_TOO_LARGE, 1, &buf, &len, &f), EG_OK);
  assert_non_null(buf);
  assert_int_equal(len, 0);
  assert_int_equal(buf[0], 0);
  free(buf);

  /* A file of /proc reports size 0 but has content: read to EOF. */
  assert_int_equal(eg_file_read("/proc/self/status", NULL, 1 << 20, EG_IMAGE_TOO_LARGE, 1, &buf, &len, &f), EG_OK);
  assert_true(len > 0);
  assert_non_null(strstr((const char *)buf, "Name:"));
  free(buf);
}

static void test_size_limit(void **state) {
  tmp *t = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/big", t->dir);
  uint8_t data[101];
  memset(data, 'x', sizeof data);
  put(path, data, sizeof data);
  uint8_t *buf = (uint8_t *)1;
  size_t len = 99;
  eg_fault f;
  eg_fault_clear(&f);
  /* The caller's code, exactly at the limit accepted, one over refused. */
  assert_int_equal(eg_file_read(path, "stub file", 101, EG_STUB_FORMAT, 0, &buf, &len, &f), EG_OK);
  free(buf);
  assert_int_equal(eg_file_read(path, "stub file", 100, EG_STUB_FORMAT, 0, &buf, &len, &f), EG_STUB_FORMAT);
  assert_null(buf);
  assert_int_equal(len, 0);
  assert_int_equal(f.code, EG_STUB_FORMAT);
  char want[256];
  snprintf(want, sizeof want, "stub file %s: 101 bytes, more than the 100-byte limit", path);
  msg_is(&f, want);
  /* A file whose size fstat does not know (/proc): the limit while reading. */
  eg_fault_clear(&f);
  assert_int_equal(eg_file_read("/proc/self/maps", NULL, 8, EG_MANIFEST, 0, &buf, &len, &f), EG_MANIFEST);
  msg_is(&f, "more than the 8-byte limit");
}

static void test_missing_and_unreadable_paths(void **state) {
  tmp *t = *state;
  char path[128], want[256];
  uint8_t *buf;
  size_t len;
  eg_fault f;
  snprintf(path, sizeof path, "%s/none", t->dir);
  eg_fault_clear(&f);
  assert_int_equal(eg_file_read(path, "image", 10, EG_IMAGE_TOO_LARGE, 0, &buf, &len, &f), EG_FILE_OPEN);
  snprintf(want, sizeof want, "image %s: No such file or directory", path);
  msg_is(&f, want);
  /* Without `what`: the bare problem. */
  eg_fault_clear(&f);
  assert_int_equal(eg_file_read(path, NULL, 10, EG_IMAGE_TOO_LARGE, 0, &buf, &len, &f), EG_FILE_OPEN);
  msg_is(&f, "No such file or directory");
  eg_fault_clear(&f);
  assert_int_equal(eg_file_check_regular(path, "log database", &f), EG_FILE_OPEN);
  snprintf(want, sizeof want, "log database %s: No such file or directory", path);
  msg_is(&f, want);
}

/* Each kind of non-regular file, by its type, at once. */
static void test_not_regular_files(void **state) {
  tmp *t = *state;
  char fifo[128], dir[128], sock[128], link[128], want[256];
  uint8_t *buf = (uint8_t *)1;
  size_t len = 7;
  eg_fault f;
  snprintf(fifo, sizeof fifo, "%s/fifo", t->dir);
  snprintf(dir, sizeof dir, "%s/dir", t->dir);
  snprintf(sock, sizeof sock, "%s/sock", t->dir);
  snprintf(link, sizeof link, "%s/link", t->dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(symlink(fifo, link), 0);
  const int s = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(s >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  assert_true(strlen(sock) < sizeof sa.sun_path);
  memcpy(sa.sun_path, sock, strlen(sock) + 1);
  assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);

  static const struct {
    int which;
    const char *kind;
  } cases[] = {{0, "a FIFO (named pipe)"}, {1, "a directory"}, {2, "a socket"}, {3, "a FIFO (named pipe)"},
               {4, "a character device"}, {5, "a character device"}};
  const char *paths[] = {fifo, dir, sock, link, "/dev/zero", "/dev/null"};
  alarm(HANG_GUARD_S);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p = paths[cases[i].which];
    eg_fault_clear(&f);
    const eg_err e = eg_file_read(p, "image", 1 << 20, EG_IMAGE_TOO_LARGE, 0, &buf, &len, &f);
    if (e != EG_FILE_OPEN) fail_msg("%s: %s (%s)", p, eg_err_name(e), f.msg);
    assert_null(buf);
    assert_int_equal(len, 0);
    snprintf(want, sizeof want, "image %s: is %s, not a regular file", p, cases[i].kind);
    msg_is(&f, want);
    eg_fault_clear(&f);
    assert_int_equal(eg_file_check_regular(p, "image", &f), EG_FILE_OPEN);
    msg_is(&f, want);
  }
  /* A FIFO that does have a writer is refused all the same (it is not a
   * file: its bytes are whatever the writer sends, for as long as it likes). */
  const int w = open(fifo, O_RDWR | O_NONBLOCK);
  assert_true(w >= 0);
  assert_int_equal(write(w, "abc", 3), 3);
  eg_fault_clear(&f);
  assert_int_equal(eg_file_read(fifo, NULL, 1 << 20, EG_IMAGE_TOO_LARGE, 0, &buf, &len, &f), EG_FILE_OPEN);
  msg_is(&f, "is a FIFO (named pipe), not a regular file");
  alarm(0);
  close(w);
  close(s);
}

/* ------------------------------------------------------------ text */

static void escaped_is(const char *in, size_t n, const char *want) {
  char out[256];
  eg_text_escape_n(out, sizeof out, in, n);
  if (strcmp(out, want) != 0) fail_msg("escape\n  got  \"%s\"\n  want \"%s\"", out, want);
}

static void test_text_escape(void **state) {
  (void)state;
  escaped_is("ttyUSB0", 7, "ttyUSB0");
  escaped_is("A\n1", 3, "A\\n1");
  escaped_is("\r\t", 2, "\\r\\t");
  escaped_is("\x1b[2J", 4, "\\x1b[2J");
  escaped_is("a\x7f", 2, "a\\x7f");
  escaped_is("a\0b", 3, "a\\x00b");                   /* NUL inside counted text */
  escaped_is("\xc2\x9b" "2J", 4, "\\u009b2J");        /* C1 CSI as UTF-8 */
  escaped_is("\xc2\x85", 2, "\\u0085");               /* NEL */
  escaped_is("\x9b" "2J", 3, "\\x9b2J");              /* a lone 0x9B byte: CSI on 8-bit terminals */
  escaped_is("\xe2\x80\xae" "abc", 6, "\\u202eabc");  /* bidi override */
  escaped_is("\xe2\x80\xa8", 3, "\\u2028");           /* line separator */
  escaped_is("Gr\xc3\xb6\xc3\x9f" "e \xe2\x9c\x93", 11, "Gr\xc3\xb6\xc3\x9f" "e \xe2\x9c\x93"); /* printable UTF-8 kept */
  escaped_is("\xc0\xaf", 2, "\\xc0\\xaf");            /* overlong '/' */
  escaped_is("\xed\xa0\x80", 3, "\\xed\\xa0\\x80");   /* a surrogate */
  escaped_is("\xf0\x9f\x98", 3, "\\xf0\\x9f\\x98");   /* cut short */
  escaped_is("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"); /* U+1F600 kept */
  char out[8];
  eg_text_escape(out, sizeof out, NULL);
  assert_string_equal(out, "");
}

static void test_text_escape_truncates(void **state) {
  (void)state;
  char out[10];
  /* Fits exactly: no dots. */
  eg_text_escape(out, sizeof out, "123456789");
  assert_string_equal(out, "123456789");
  eg_text_escape(out, sizeof out, "1234567890");
  assert_string_equal(out, "123456...");
  /* Never cut inside an escape or a UTF-8 sequence. */
  eg_text_escape(out, sizeof out, "12\x1b\x1b\x1b");
  assert_string_equal(out, "12\\x1b...");
  eg_text_escape(out, sizeof out, "12345\xe2\x9c\x93zz");
  assert_string_equal(out, "12345...");
  /* Every length of buffer: terminated, within bounds (ASan checks). */
  for (size_t cap = 1; cap < sizeof out; cap++) {
    memset(out, 'Z', sizeof out);
    eg_text_escape(out, cap, "\x1b\x1b\x1b\x1b\x1b");
    assert_true(strlen(out) < cap);
  }
}

static void test_text_has_control(void **state) {
  (void)state;
  size_t at = 99;
  assert_false(eg_text_has_control("slot-A1", 7, &at));
  assert_int_equal(at, 99);
  assert_false(eg_text_has_control("", 0, NULL));
  assert_true(eg_text_has_control("ab\ncd", 5, &at));
  assert_int_equal(at, 2);
  assert_true(eg_text_has_control("A\xc2\x9b", 3, &at));
  assert_int_equal(at, 1);
  assert_true(eg_text_has_control("AB\x9b", 3, &at));
  assert_int_equal(at, 2);
  assert_true(eg_text_has_control("\x7f", 1, &at));
  assert_int_equal(at, 0);
  assert_true(eg_text_has_control("x\xe2\x81\xa6", 4, &at)); /* U+2066 isolate */
  assert_int_equal(at, 1);
  assert_false(eg_text_has_control("\xc2\xa0\xe2\x80\x94", 5, NULL)); /* NBSP, em dash */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_reads_bytes_and_slack, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_size_limit, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_missing_and_unreadable_paths, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_not_regular_files, tmp_setup, tmp_teardown),
    cmocka_unit_test(test_text_escape),
    cmocka_unit_test(test_text_escape_truncates),
    cmocka_unit_test(test_text_has_control),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
