/* test_options.c - esptool-compatible option names and the timeout rule
 * (src/options.c), and the unit record helpers (src/unit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"
#include "unit.h"

/* ------------------------------------------------------------ --before / --after */

static void test_before_spellings(void **state) {
  (void)state;
  static const struct { const char *v5, *v4; eg_before b; } t[] = {
    {"default-reset", "default_reset", EG_BEFORE_DEFAULT_RESET},
    {"usb-reset", "usb_reset", EG_BEFORE_USB_RESET},
    {"no-reset", "no_reset", EG_BEFORE_NO_RESET},
    {"no-reset-no-sync", "no_reset_no_sync", EG_BEFORE_NO_RESET_NO_SYNC},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    eg_before b = (eg_before)99;
    assert_true(eg_before_parse(t[i].v5, &b));
    assert_int_equal(b, t[i].b);
    b = (eg_before)99;
    assert_true(eg_before_parse(t[i].v4, &b));
    assert_int_equal(b, t[i].b);
    /* Printed in the v5 (dashed) spelling. */
    assert_string_equal(eg_before_name(t[i].b), t[i].v5);
  }
  const char *bad[] = {"", "default", "reset", "no-reset-stub", "hard-reset", "Default-Reset", "NO_RESET",
                       "default-reset ", " no-reset", "no-reset-no-sync-", "no_reset-no-syn", "usb"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eg_before b = EG_BEFORE_USB_RESET;
    if (eg_before_parse(bad[i], &b)) fail_msg("--before \"%s\" accepted as %s", bad[i], eg_before_name(b));
    assert_int_equal(b, EG_BEFORE_USB_RESET); /* untouched on failure */
  }
  eg_before b = EG_BEFORE_USB_RESET;
  assert_false(eg_before_parse(NULL, &b));
  assert_string_equal(eg_before_name((eg_before)4), "?");
  assert_string_equal(eg_before_name((eg_before)-1), "?");
}

static void test_after_spellings(void **state) {
  (void)state;
  static const struct { const char *v5, *v4; eg_after a; } t[] = {
    {"hard-reset", "hard_reset", EG_AFTER_HARD_RESET},
    {"soft-reset", "soft_reset", EG_AFTER_SOFT_RESET},
    {"no-reset", "no_reset", EG_AFTER_NO_RESET},
    {"no-reset-stub", "no_reset_stub", EG_AFTER_NO_RESET_STUB},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    eg_after a = (eg_after)99;
    assert_true(eg_after_parse(t[i].v5, &a));
    assert_int_equal(a, t[i].a);
    a = (eg_after)99;
    assert_true(eg_after_parse(t[i].v4, &a));
    assert_int_equal(a, t[i].a);
    assert_string_equal(eg_after_name(t[i].a), t[i].v5);
  }
  /* There is no no_reset_stay (§3.3); before-only values are not after values. */
  const char *bad[] = {"", "no-reset-stay", "no_reset_stay", "default-reset", "usb-reset", "no-reset-no-sync",
                       "Hard-Reset", "hard", "hard-reset\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eg_after a = EG_AFTER_SOFT_RESET;
    if (eg_after_parse(bad[i], &a)) fail_msg("--after \"%s\" accepted as %s", bad[i], eg_after_name(a));
    assert_int_equal(a, EG_AFTER_SOFT_RESET);
  }
  eg_after a = EG_AFTER_SOFT_RESET;
  assert_false(eg_after_parse(NULL, &a));
  assert_string_equal(eg_after_name((eg_after)4), "?");
}

static void test_erase_policy(void **state) {
  (void)state;
  eg_erase_policy e = (eg_erase_policy)9;
  assert_true(eg_erase_parse("written", &e));
  assert_int_equal(e, EG_ERASE_WRITTEN);
  assert_true(eg_erase_parse("all", &e));
  assert_int_equal(e, EG_ERASE_ALL);
  assert_string_equal(eg_erase_name(EG_ERASE_WRITTEN), "written");
  assert_string_equal(eg_erase_name(EG_ERASE_ALL), "all");
  assert_string_equal(eg_erase_name((eg_erase_policy)2), "?");
  e = EG_ERASE_ALL;
  assert_false(eg_erase_parse("none", &e));
  assert_false(eg_erase_parse("", &e));
  assert_false(eg_erase_parse("All", &e));
  assert_false(eg_erase_parse(NULL, &e));
  assert_int_equal(e, EG_ERASE_ALL);
}

/* ------------------------------------------------------------ timeouts */

static void test_timeouts_default(void **state) {
  (void)state;
  eg_timeouts t;
  memset(&t, 0xFF, sizeof t);
  eg_timeouts_default(&t);
  /* esptool v5.3.1 loader.py (protocol doc §2.2). */
  assert_int_equal(t.command_ms, 3000);
  assert_int_equal(t.sync_ms, 100);
  assert_int_equal(t.mem_end_ms, 200);
  assert_int_equal(t.chip_erase_ms, 120000);
  assert_int_equal(t.max_ms, 240000);
  assert_int_equal(t.erase_per_mb_ms, 30000);
  assert_int_equal(t.write_per_mb_ms, 40000);
  assert_int_equal(t.md5_per_mb_ms, 8000);
  assert_int_equal(t.read_packet_ms, 3000);
  assert_int_equal(t.port_back_ms, 10000);
}

static void test_timeout_per_mb(void **state) {
  (void)state;
  eg_timeouts t;
  eg_timeouts_default(&t);
  /* esptool's timeout_per_mb(s, n) = s * n / 1e6 (MB = 10^6 bytes), at least 3 s. */
  assert_int_equal(eg_timeout_per_mb(&t, t.erase_per_mb_ms, 16384, 3000), 3000);     /* 491 ms -> floor */
  assert_int_equal(eg_timeout_per_mb(&t, t.erase_per_mb_ms, 0, 3000), 3000);
  assert_int_equal(eg_timeout_per_mb(&t, t.erase_per_mb_ms, 100000, 3000), 3000);    /* exactly 3000 */
  assert_int_equal(eg_timeout_per_mb(&t, t.erase_per_mb_ms, 100034, 3000), 3001);    /* 3001.02 */
  assert_int_equal(eg_timeout_per_mb(&t, t.erase_per_mb_ms, 4194304, 3000), 125829); /* 4 MB region */
  assert_int_equal(eg_timeout_per_mb(&t, t.md5_per_mb_ms, 16u << 20, 3000), 134217);  /* 16 MB MD5 */
  assert_int_equal(eg_timeout_per_mb(&t, t.write_per_mb_ms, 0x4000, 3000), 3000);    /* one stub block */
  assert_int_equal(eg_timeout_per_mb(&t, t.write_per_mb_ms, 1000000, 3000), 40000);
  /* Capped at max_ms (240 s) ... */
  assert_int_equal(eg_timeout_per_mb(&t, t.write_per_mb_ms, 16u << 20, 3000), 240000);
  assert_int_equal(eg_timeout_per_mb(&t, t.write_per_mb_ms, 6000000, 3000), 240000); /* exactly 240000 */
  assert_int_equal(eg_timeout_per_mb(&t, t.write_per_mb_ms, 6000025, 3000), 240000);
  /* ... even above the floor's value; a floor above the cap is capped too. */
  assert_int_equal(eg_timeout_per_mb(&t, t.write_per_mb_ms, 0, 300000), 240000);
  /* Without a table there is no cap. */
  assert_int_equal(eg_timeout_per_mb(NULL, t.write_per_mb_ms, 16u << 20, 3000), 671088);
  assert_int_equal(eg_timeout_per_mb(NULL, t.write_per_mb_ms, 10, 3000), 3000);
  /* A different floor. */
  assert_int_equal(eg_timeout_per_mb(&t, t.md5_per_mb_ms, 1000, 500), 500);
  assert_int_equal(eg_timeout_per_mb(&t, t.md5_per_mb_ms, 1000, 0), 8);
}

/* Sizes far beyond any flash must not wrap around to a short timeout. */
static void test_timeout_per_mb_saturates(void **state) {
  (void)state;
  eg_timeouts t;
  eg_timeouts_default(&t);
  const uint64_t sizes[] = {(uint64_t)1 << 40, (uint64_t)1 << 50, UINT64_MAX / 40000 + 1, UINT64_MAX};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    const uint32_t capped = eg_timeout_per_mb(&t, t.write_per_mb_ms, sizes[i], 3000);
    if (capped != 240000) fail_msg("size %llu: got %u ms, want 240000", (unsigned long long)sizes[i], capped);
    const uint32_t uncapped = eg_timeout_per_mb(NULL, t.write_per_mb_ms, sizes[i], 3000);
    if (uncapped != UINT32_MAX) fail_msg("size %llu, no cap: got %u ms, want %u", (unsigned long long)sizes[i], uncapped, UINT32_MAX);
  }
  assert_int_equal(eg_timeout_per_mb(NULL, UINT32_MAX, UINT64_MAX, 0), UINT32_MAX);
  /* Just below the 32-bit limit is exact. */
  assert_int_equal(eg_timeout_per_mb(NULL, 1000, 4294967295000ull, 0), UINT32_MAX);
  assert_int_equal(eg_timeout_per_mb(NULL, 1000, 4294967294000ull, 0), UINT32_MAX - 1);
}

/* ------------------------------------------------------------ unit record */

static void test_result_names(void **state) {
  (void)state;
  assert_string_equal(eg_result_name(EG_RESULT_IN_PROGRESS), "in_progress");
  assert_string_equal(eg_result_name(EG_RESULT_PASS), "pass");
  assert_string_equal(eg_result_name(EG_RESULT_FAIL), "fail");
  assert_string_equal(eg_result_name(EG_RESULT_ABORTED), "aborted");
  assert_string_equal(eg_result_name(EG_RESULT_SKIPPED), "skipped");
  assert_string_equal(eg_result_name((eg_result)5), "unknown");
  assert_string_equal(eg_result_name((eg_result)-1), "unknown");
}

static void test_unit_record(void **state) {
  (void)state;
  eg_unit_record *u = malloc(sizeof *u);
  memset(u, 0xA5, sizeof *u);
  eg_unit_record_init(u);
  assert_int_equal(u->result, EG_RESULT_IN_PROGRESS);
  assert_int_equal(u->fault.code, EG_OK);
  assert_int_equal(u->fault.opcode, -1);
  assert_int_equal(u->fault.nstatus, 0);
  assert_false(u->has_mac);
  assert_false(u->has_flash_id);
  assert_false(u->stub);
  assert_string_equal(u->slot, "");
  assert_string_equal(u->chip, "");
  assert_int_equal(u->bytes_tx, 0);
  for (int i = 0; i < EG_STAGE__COUNT; i++) assert_int_equal(u->stage_ms[i], 0);

  char s[18];
  memset(s, '#', sizeof s);
  assert_string_equal(eg_unit_mac_str(u, s, sizeof s), ""); /* no MAC known */
  const uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0x00, 0x00, 0x01};
  memcpy(u->mac, mac, 6);
  assert_string_equal(eg_unit_mac_str(u, s, sizeof s), ""); /* bytes alone do not count */
  u->has_mac = true;
  assert_ptr_equal(eg_unit_mac_str(u, s, sizeof s), s);
  assert_string_equal(s, "24:0a:c4:00:00:01");
  const uint8_t ff[6] = {0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA};
  memcpy(u->mac, ff, 6);
  assert_string_equal(eg_unit_mac_str(u, s, sizeof s), "ff:ee:dd:cc:bb:aa");
  /* A short buffer truncates without writing past it. */
  char small[8];
  memset(small, '#', sizeof small);
  eg_unit_mac_str(u, small, 5);
  assert_string_equal(small, "ff:e");
  assert_int_equal(small[5], '#');
  eg_unit_mac_str(u, small, 0);
  assert_int_equal(small[0], 'f');
  u->has_mac = false;
  memset(small, '#', sizeof small);
  eg_unit_mac_str(u, small, 0);
  assert_int_equal(small[0], '#');
  free(u);
}

static void test_jedec_print(void **state) {
  (void)state;
  /* esptool prints "Manufacturer: c8" / "Device: 4016" for 0x001640C8. */
  assert_int_equal(eg_jedec_manufacturer(0x001640C8u), 0xC8);
  assert_int_equal(eg_jedec_device(0x001640C8u), 0x4016);
  assert_int_equal(eg_jedec_manufacturer(0x001840EFu), 0xEF);
  assert_int_equal(eg_jedec_device(0x001840EFu), 0x4018);
  assert_int_equal(eg_jedec_device(0xFF123456u), 0x3412);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_before_spellings),
    cmocka_unit_test(test_after_spellings),
    cmocka_unit_test(test_erase_policy),
    cmocka_unit_test(test_timeouts_default),
    cmocka_unit_test(test_timeout_per_mb),
    cmocka_unit_test(test_timeout_per_mb_saturates),
    cmocka_unit_test(test_result_names),
    cmocka_unit_test(test_unit_record),
    cmocka_unit_test(test_jedec_print),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
