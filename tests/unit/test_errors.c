/* test_errors.c - the error model (src/errors.c): the X-macro tables and
 * eg_fault, the record of what the chip said that travels into the log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"

static void test_err_names_and_messages(void **state) {
  (void)state;
  assert_true(EG_ERR__COUNT > 30);
  for (int i = 0; i < EG_ERR__COUNT; i++) {
    const char *n = eg_err_name((eg_err)i), *m = eg_strerror((eg_err)i);
    assert_non_null(n);
    assert_non_null(m);
    if (!*n || !*m) fail_msg("code %d: name \"%s\", message \"%s\"", i, n, m);
    /* Names are stored in the database: upper-case identifiers. */
    for (const char *p = n; *p; p++)
      if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) fail_msg("code %d: name \"%s\"", i, n);
    assert_string_not_equal(n, "UNKNOWN");
    for (int j = 0; j < i; j++) {
      if (strcmp(n, eg_err_name((eg_err)j)) == 0) fail_msg("codes %d and %d share the name %s", j, i, n);
      if (strcmp(m, eg_strerror((eg_err)j)) == 0) fail_msg("codes %d and %d share the message \"%s\"", j, i, m);
    }
  }
  /* The enum and the tables line up (a shifted table would pass the loop). */
  assert_int_equal(EG_OK, 0);
  assert_string_equal(eg_err_name(EG_OK), "OK");
  assert_string_equal(eg_strerror(EG_OK), "success");
  assert_string_equal(eg_err_name(EG_TIMEOUT), "TIMEOUT");
  assert_string_equal(eg_strerror(EG_TIMEOUT), "timed out waiting for the device");
  assert_string_equal(eg_err_name(EG_SLIP_ESCAPE), "SLIP_ESCAPE");
  assert_string_equal(eg_err_name(EG_SLIP_OVERSIZE), "SLIP_OVERSIZE");
  assert_string_equal(eg_err_name(EG_PROTO_SHORT), "PROTO_SHORT");
  assert_string_equal(eg_err_name(EG_UNSUPPORTED), "UNSUPPORTED");
  assert_string_equal(eg_err_name(EG_MD5_MISMATCH), "MD5_MISMATCH");
  assert_string_equal(eg_strerror(EG_MD5_MISMATCH), "flash MD5 differs from the image's MD5");
  assert_string_equal(eg_err_name(EG_DB), "DB");
}

static void test_err_out_of_range(void **state) {
  (void)state;
  const int bad[] = {EG_ERR__COUNT, EG_ERR__COUNT + 1, -1, -1000, 0x7FFFFFFF};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_string_equal(eg_err_name((eg_err)bad[i]), "UNKNOWN");
    assert_string_equal(eg_strerror((eg_err)bad[i]), "unknown error");
  }
}

static void test_stage_names(void **state) {
  (void)state;
  for (int i = 0; i < EG_STAGE__COUNT; i++) {
    const char *n = eg_stage_name((eg_stage)i);
    assert_non_null(n);
    assert_true(strlen(n) > 0);
    for (const char *p = n; *p; p++) assert_true(*p >= 'a' && *p <= 'z');
    for (int j = 0; j < i; j++) assert_string_not_equal(n, eg_stage_name((eg_stage)j));
  }
  assert_string_equal(eg_stage_name(EG_STAGE_NONE), "none");
  assert_string_equal(eg_stage_name(EG_STAGE_SYNC), "sync");
  assert_string_equal(eg_stage_name(EG_STAGE_VERIFY), "verify");
  assert_string_equal(eg_stage_name(EG_STAGE_AFTER), "after");
  assert_string_equal(eg_stage_name(EG_STAGE__COUNT), "unknown");
  assert_string_equal(eg_stage_name((eg_stage)-1), "unknown");
}

static void test_stage_labels(void **state) {
  (void)state;
  for (int i = 0; i < EG_STAGE__COUNT; i++) {
    const char *l = eg_stage_label((eg_stage)i);
    assert_true(strlen(l) > 0);
    for (int j = 0; j < i; j++) assert_string_not_equal(l, eg_stage_label((eg_stage)j));
  }
  assert_string_equal(eg_stage_label(EG_STAGE_SYNC), "connecting");
  assert_string_equal(eg_stage_label(EG_STAGE_WRITE), "writing");
  assert_string_equal(eg_stage_label(EG_STAGE__COUNT), "?");
}

/* The class column decides retries and exit codes: spot-check the ones the
 * README's exit-code table and the retry policy name. */
static void test_err_classes(void **state) {
  (void)state;
  assert_int_equal(eg_err_class_of(EG_OK), EG_CLASS_OK);
  assert_int_equal(eg_err_class_of(EG_TIMEOUT), EG_CLASS_UNIT);
  assert_int_equal(eg_err_class_of(EG_MD5_MISMATCH), EG_CLASS_UNIT);
  assert_int_equal(eg_err_class_of(EG_WRONG_CHIP), EG_CLASS_FINAL);
  assert_int_equal(eg_err_class_of(EG_FLASH_TOO_SMALL), EG_CLASS_FINAL);
  assert_int_equal(eg_err_class_of(EG_MANIFEST), EG_CLASS_INPUT);
  assert_int_equal(eg_err_class_of(EG_RESET_UNSUPPORTED), EG_CLASS_INPUT);
  assert_int_equal(eg_err_class_of(EG_DB), EG_CLASS_INTERNAL);
  assert_int_equal(eg_err_class_of(EG_ABORTED), EG_CLASS_ABORT);
  assert_int_equal(eg_err_class_of((eg_err)-1), EG_CLASS_INTERNAL);
  assert_true(eg_err_retryable(EG_NO_SYNC));
  assert_false(eg_err_retryable(EG_WRONG_CHIP));
  assert_false(eg_err_retryable(EG_USAGE));
  assert_false(eg_err_retryable(EG_ABORTED));
  /* Only OK is class OK. */
  for (int e = 1; e < EG_ERR__COUNT; e++) assert_int_not_equal(eg_err_class_of((eg_err)e), EG_CLASS_OK);
}

static void test_fault_clear(void **state) {
  (void)state;
  eg_fault f;
  memset(&f, 0xA5, sizeof f);
  eg_fault_clear(&f);
  assert_int_equal(f.code, EG_OK);
  assert_int_equal(f.stage, EG_STAGE_NONE);
  assert_int_equal(f.opcode, -1);
  assert_int_equal(f.nstatus, 0);
  assert_string_equal(f.msg, "");
  for (size_t i = 0; i < sizeof f.status; i++) assert_int_equal(f.status[i], 0);
}

static void test_fault_set(void **state) {
  (void)state;
  eg_fault f;
  eg_fault_clear(&f);
  const uint8_t st[] = {0x01, 0x05, 0x00, 0x00};
  eg_fault_status(&f, st, 4);
  assert_int_equal(eg_fault_set(&f, EG_DEVICE_STATUS, EG_STAGE_WRITE, 0x11, "port %s: block %d of %u", "/dev/ttyUSB3", 6, 7u),
                   EG_DEVICE_STATUS);
  assert_int_equal(f.code, EG_DEVICE_STATUS);
  assert_int_equal(f.stage, EG_STAGE_WRITE);
  assert_int_equal(f.opcode, 0x11);
  assert_string_equal(f.msg, "port /dev/ttyUSB3: block 6 of 7");
  /* Setting a fault forgets the previous status bytes. */
  assert_int_equal(f.nstatus, 0);
  for (size_t i = 0; i < sizeof f.status; i++) assert_int_equal(f.status[i], 0);
  /* No message. */
  assert_int_equal(eg_fault_set(&f, EG_TIMEOUT, EG_STAGE_SYNC, -1, NULL), EG_TIMEOUT);
  assert_string_equal(f.msg, "");
  assert_int_equal(f.opcode, -1);
  /* A NULL fault only returns the code. */
  assert_int_equal(eg_fault_set(NULL, EG_NO_SYNC, EG_STAGE_SYNC, 8, "x %d", 1), EG_NO_SYNC);
}

/* A message is one line: line breaks inside become spaces, trailing ones go. */
static void test_fault_one_line(void **state) {
  (void)state;
  eg_fault f;
  eg_fault_clear(&f);
  eg_fault_set(&f, EG_IO, EG_STAGE_OPEN, -1, "first\nsecond\rthird");
  assert_string_equal(f.msg, "first second third");
  eg_fault_set(&f, EG_IO, EG_STAGE_OPEN, -1, "%s", "boot log:\nwaiting for download\n");
  assert_string_equal(f.msg, "boot log: waiting for download");
  eg_fault_set(&f, EG_IO, EG_STAGE_OPEN, -1, "cannot open: %s\r\n", "Permission denied");
  assert_string_equal(f.msg, "cannot open: Permission denied");
  eg_fault_set(&f, EG_IO, EG_STAGE_OPEN, -1, "\n\n");
  assert_string_equal(f.msg, "");
  eg_fault_set(&f, EG_IO, EG_STAGE_OPEN, -1, "keep trailing space ");
  assert_string_equal(f.msg, "keep trailing space ");
  for (const char *p = f.msg; *p; p++) assert_true(*p != '\n' && *p != '\r');
  /* A line break right at the truncation point is trailing too. */
  char big[400];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[sizeof f.msg - 2] = '\n';
  eg_fault_set(&f, EG_MANIFEST, EG_STAGE_NONE, -1, "%s", big);
  assert_int_equal(strlen(f.msg), sizeof f.msg - 2);
  assert_null(strchr(f.msg, '\n'));
}

static void test_fault_truncates(void **state) {
  (void)state;
  eg_fault f;
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[300] = '\n'; /* past the cut: must not matter */
  memset(&f, 0xA5, sizeof f);
  eg_fault_clear(&f);
  eg_fault_set(&f, EG_MANIFEST, EG_STAGE_NONE, -1, "%s", big);
  assert_int_equal(strlen(f.msg), sizeof f.msg - 1);
  for (size_t i = 0; i < sizeof f.msg - 1; i++) assert_int_equal(f.msg[i], 'x');
}

static void test_fault_status(void **state) {
  (void)state;
  eg_fault f;
  char hex[12];
  eg_fault_clear(&f);
  assert_string_equal(eg_fault_status_hex(&f, hex, sizeof hex), "");
  const uint8_t rom[] = {0x01, 0x05, 0x00, 0x00};
  eg_fault_status(&f, rom, 4);
  assert_int_equal(f.nstatus, 4);
  assert_memory_equal(f.status, rom, 4);
  assert_ptr_equal(eg_fault_status_hex(&f, hex, sizeof hex), hex);
  assert_string_equal(hex, "01 05 00 00");
  const uint8_t stub[] = {0xFF, 0x00};
  eg_fault_status(&f, stub, 2);
  assert_int_equal(f.nstatus, 2);
  assert_string_equal(eg_fault_status_hex(&f, hex, sizeof hex), "ff 00");
  /* More than four bytes: only four are kept. */
  const uint8_t six[] = {0xC1, 0x00, 0xAA, 0xBB, 0xCC, 0xDD};
  eg_fault_status(&f, six, sizeof six);
  assert_int_equal(f.nstatus, 4);
  assert_string_equal(eg_fault_status_hex(&f, hex, sizeof hex), "c1 00 aa bb");
}

/* "The chip said nothing": no bytes, no pointer (UBSan: memcpy from NULL). */
static void test_fault_status_none(void **state) {
  (void)state;
  eg_fault f;
  char hex[12];
  eg_fault_clear(&f);
  const uint8_t rom[] = {0x01, 0x05, 0x00, 0x00};
  eg_fault_status(&f, rom, 4);
  eg_fault_status(&f, NULL, 0);
  assert_int_equal(f.nstatus, 0);
  assert_string_equal(eg_fault_status_hex(&f, hex, sizeof hex), "");
}

/* eg_fault_status_hex never writes past len, ends in whole bytes, and gives
 * the whole text from the documented 12 bytes on. */
static void test_fault_status_hex_small_buffers(void **state) {
  (void)state;
  eg_fault f;
  eg_fault_clear(&f);
  const uint8_t rom[] = {0x01, 0x05, 0x00, 0x00};
  eg_fault_status(&f, rom, 4);
  static const char *const whole[] = {"", "01", "01 05", "01 05 00", "01 05 00 00"};
  size_t prev = 0;
  for (size_t len = 0; len < 20; len++) {
    char buf[32];
    memset(buf, '#', sizeof buf);
    assert_ptr_equal(eg_fault_status_hex(&f, buf, len), buf);
    for (size_t i = len; i < sizeof buf; i++)
      if (buf[i] != '#') fail_msg("len %zu: byte %zu written", len, i);
    if (len == 0) continue;
    const size_t n = strlen(buf);
    assert_true(n < len);
    bool ok = false;
    for (size_t k = 0; k < 5; k++) ok |= strcmp(buf, whole[k]) == 0;
    if (!ok) fail_msg("len %zu: \"%s\" is not a whole-byte prefix", len, buf);
    assert_true(n >= prev);
    prev = n;
    if (len >= 12) assert_string_equal(buf, "01 05 00 00");
  }
}

/* A fault that arrived as bytes (copied, or read back) with an impossible
 * count must not make eg_fault_status_hex read past the status array. */
static void test_fault_status_hex_bad_count(void **state) {
  (void)state;
  eg_fault f;
  eg_fault_clear(&f);
  f.status[0] = 0x01;
  f.status[1] = 0x07;
  f.nstatus = 200;
  memset(f.msg, 'Z', sizeof f.msg - 1); /* what follows the array */
  f.msg[sizeof f.msg - 1] = '\0';
  char hex[64];
  assert_string_equal(eg_fault_status_hex(&f, hex, sizeof hex), "01 07 00 00");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_err_names_and_messages),
    cmocka_unit_test(test_err_out_of_range),
    cmocka_unit_test(test_stage_names),
    cmocka_unit_test(test_stage_labels),
    cmocka_unit_test(test_err_classes),
    cmocka_unit_test(test_fault_clear),
    cmocka_unit_test(test_fault_set),
    cmocka_unit_test(test_fault_one_line),
    cmocka_unit_test(test_fault_truncates),
    cmocka_unit_test(test_fault_status),
    cmocka_unit_test(test_fault_status_none),
    cmocka_unit_test(test_fault_status_hex_small_buffers),
    cmocka_unit_test(test_fault_status_hex_bad_count),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
