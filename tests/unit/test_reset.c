/* test_reset.c - esptool's DTR/RTS plans, played through a model of the
 * usual ESP32 auto-reset circuit (two transistors: EN is pulled low when
 * RTS is asserted and DTR is not; GPIO0 is pulled low when DTR is asserted
 * and RTS is not; (1,1) and (0,0) leave both released). The chip is held in
 * reset while EN is low and samples GPIO0 shortly after EN rises (EN's RC
 * delay; the datasheet asks GPIO0 to be held >= 1 ms after EN rises):
 * GPIO0 low then means download mode. Every default-reset plan must leave
 * the chip in download mode with both lines released, and --after
 * hard-reset must boot the application. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reset.h"

#define SAMPLE_DELAY_US 1000 /* GPIO0 sampled this long after EN rises */

typedef struct outcome {
  int boots;           /* EN releases after a reset pulse */
  bool download;       /* GPIO0 low when the (last) boot sampled it */
  uint32_t en_low_us;  /* length of the (last) reset pulse */
  int dtr, rts;        /* line states at the end */
  uint32_t total_ms;   /* the plan's length */
} outcome;

/* Play a plan with a 1 us clock: steps without a wait happen at once, one
 * after the other (microseconds apart on a real adapter). */
static outcome play(const eg_reset_step *plan, int dtr0, int rts0) {
  outcome o;
  memset(&o, 0, sizeof o);
  int dtr = dtr0, rts = rts0;
  uint64_t t = 0, en_low_since = 0, release_at = UINT64_MAX;
  bool en_low = rts && !dtr;
  for (const eg_reset_step *s = plan; s->dtr != EG_RESET_END; s++) {
    if (s->dtr >= 0) dtr = s->dtr;
    if (s->rts >= 0) rts = s->rts;
    const bool now_low = rts && !dtr;
    if (now_low && !en_low) en_low_since = t;
    if (!now_low && en_low && t - en_low_since >= 50) { /* a real reset pulse (>= 50 us) */
      o.boots++;
      o.en_low_us = (uint32_t)(t - en_low_since);
      release_at = t;
    }
    en_low = now_low;
    t += 1; /* the next ioctl */
    /* Sample GPIO0 if the boot's sampling moment falls in this step's wait. */
    const uint64_t wait = (uint64_t)s->wait_ms * 1000;
    if (release_at != UINT64_MAX && release_at + SAMPLE_DELAY_US >= t - 1 && release_at + SAMPLE_DELAY_US < t + wait) {
      o.download = dtr && !rts;
      release_at = UINT64_MAX;
    }
    t += wait;
  }
  o.dtr = dtr;
  o.rts = rts;
  o.total_ms = (uint32_t)(t / 1000);
  return o;
}

static void default_reset_enters_download_mode(void **state) {
  (void)state;
  const char *names[4];
  for (int attempt = 0; attempt < 8; attempt++) {
    const eg_reset_step *plan = eg_reset_plan(EG_BEFORE_DEFAULT_RESET, attempt, &names[attempt % 4]);
    assert_non_null(plan);
    /* From idle lines and from lines left asserted by a crashed tool. */
    for (int start = 0; start < 2; start++) {
      const outcome o = play(plan, start, start);
      if (o.boots != 1 || !o.download)
        fail_msg("%s (attempt %d, lines %d/%d): boots %d, download %d", names[attempt % 4], attempt, start, start, o.boots,
                 o.download);
      assert_true(o.en_low_us >= 100000); /* EN held low 100 ms */
      assert_int_equal(o.dtr, 0);          /* both released: the chip runs */
      assert_int_equal(o.rts, 0);
    }
  }
  /* esptool's POSIX order, cycled over the attempts. */
  assert_string_equal(names[0], "UnixTightReset(0.05)");
  assert_string_equal(names[1], "UnixTightReset(0.55)");
  assert_string_equal(names[2], "ClassicReset(0.05)");
  assert_string_equal(names[3], "ClassicReset(0.55)");
  const char *n;
  const outcome slow = play(eg_reset_plan(EG_BEFORE_DEFAULT_RESET, 1, &n), 0, 0);
  const outcome fast = play(eg_reset_plan(EG_BEFORE_DEFAULT_RESET, 0, &n), 0, 0);
  assert_int_equal(slow.total_ms - fast.total_ms, 500); /* 0.55 s vs 0.05 s reset_delay */
}

static void hard_reset_boots_the_app(void **state) {
  (void)state;
  const outcome o = play(eg_hard_reset_plan(), 0, 0);
  assert_int_equal(o.boots, 1);
  assert_false(o.download);
  assert_int_equal(o.en_low_us / 1000, 100);
  assert_int_equal(o.dtr, 0);
  assert_int_equal(o.rts, 0);
}

static void usb_reset_sequence(void **state) {
  (void)state;
  const char *name = NULL;
  const eg_reset_step *p = eg_reset_plan(EG_BEFORE_USB_RESET, 3, &name);
  assert_string_equal(name, "USBJTAGSerialReset");
  /* RTS=0,DTR=0; 100 ms; DTR=1,RTS=0; 100 ms; RTS=1,DTR=0,RTS=1; 100 ms; DTR=0,RTS=0 (doc §3.1),
   * one line at a time in esptool's order (through (1,1), never (0,0), before the reset). */
  const eg_reset_step want[] = {{-1, 0, 0}, {0, -1, 100}, {1, -1, 0}, {-1, 0, 100}, {-1, 1, 0},
                                {0, -1, 0},  {-1, 1, 100}, {0, -1, 0}, {-1, 0, 0}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(p[i].dtr, want[i].dtr);
    assert_int_equal(p[i].rts, want[i].rts);
    assert_int_equal(p[i].wait_ms, want[i].wait_ms);
  }
  assert_int_equal(p[9].dtr, EG_RESET_END);
}

static void no_reset_has_no_plan(void **state) {
  (void)state;
  const char *name = NULL;
  assert_null(eg_reset_plan(EG_BEFORE_NO_RESET, 0, &name));
  assert_string_equal(name, "none");
  assert_null(eg_reset_plan(EG_BEFORE_NO_RESET_NO_SYNC, 0, NULL));
}

/* The model is not vacuous: a plan that releases EN with GPIO0 high boots
 * the app, and one that never pulses EN does not boot at all. */
static void model_self_check(void **state) {
  (void)state;
  const eg_reset_step app[] = {{0, 1, 100}, {0, 0, 50}, {1, 0, 10}, {0, 0, 0}, {EG_RESET_END, EG_RESET_END, 0}};
  const outcome a = play(app, 0, 0);
  assert_int_equal(a.boots, 1);
  assert_false(a.download);
  const eg_reset_step none[] = {{1, 1, 100}, {0, 0, 0}, {EG_RESET_END, EG_RESET_END, 0}};
  assert_int_equal(play(none, 0, 0).boots, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(default_reset_enters_download_mode),
    cmocka_unit_test(hard_reset_boots_the_app),
    cmocka_unit_test(usb_reset_sequence),
    cmocka_unit_test(no_reset_has_no_plan),
    cmocka_unit_test(model_self_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
