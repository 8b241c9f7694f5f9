/* test_dash.c - the station dashboard (src/dash.c) on a libuv loop with a
 * fake wall clock: the shift's counters and the snapshot's numbers after a
 * scripted shift, the events one change makes (and does not make), progress
 * throttling, the bounded failures list; over real loopback sockets: the
 * routes, the page's self-containment and CSP, Server-Sent Events framing,
 * resuming by Last-Event-ID, heartbeats, 60 clients at once, a client that
 * never reads dropped while a reading one gets every event, the token and
 * Host rules, and the option errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fdcheck.h"
#include "test_http_client.h"

#include <openssl/evp.h>

#include "dash.h"
#include "image.h"

#define T0 1700000000000LL

/* ------------------------------------------------------------- fixture */

typedef struct fx {
  uv_loop_t loop;
  eg_dash *d;
  int64_t now;        /* the fake wall clock */
  char *events[8192]; /* on_event lines */
  size_t nevents;
  bool closed;
} fx;

static int64_t fake_clock(void *ctx) { return ((fx *)ctx)->now; }

static void on_event(void *ctx, const char *json) {
  fx *t = ctx;
  if (t->nevents < sizeof t->events / sizeof t->events[0]) t->events[t->nevents++] = strdup(json);
}

static const char *const labels4[] = {"A1", "A2", "A3", "A4"};

static void open_with(fx *t, eg_dash_options *o) {
  memset(t, 0, sizeof *t);
  assert_int_equal(uv_loop_init(&t->loop), 0);
  t->now = T0;
  if (!o->station) o->station = "line3";
  if (!o->labels) {
    o->labels = labels4;
    o->nslots = 4;
  }
  o->clock_ms = fake_clock;
  o->clock_ctx = t;
  o->on_event = on_event;
  o->event_ctx = t;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_dash_open(&t->d, &t->loop, o, &f) != EG_OK) fail_msg("eg_dash_open: %s", f.msg);
}

static void closed_cb(void *ctx) { ((fx *)ctx)->closed = true; }

static void close_fx(fx *t) {
  eg_dash_close(t->d, closed_cb, t);
  assert_int_equal(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
  assert_true(t->closed);
  assert_int_equal(uv_loop_close(&t->loop), 0);
  for (size_t i = 0; i < t->nevents; i++) free(t->events[i]);
}

static void contains(const char *what, const char *hay, const char *needle) {
  if (hay && strstr(hay, needle)) return;
  fail_msg("%s:\n  in   %s\n  want %s", what, hay ? hay : "(null)", needle);
}

/* The "event" name of a captured line. */
static const char *ev_name(const char *json, char *buf, size_t cap) {
  const char *p = strstr(json, "\"event\":\"");
  if (!p) return "";
  p += 9;
  const char *e = strchr(p, '"');
  snprintf(buf, cap, "%.*s", (int)(e - p), p);
  return buf;
}

/* Fail unless events [from, nevents) are exactly these names. */
static void names_are(fx *t, size_t from, const char *const *want, size_t n) {
  char got[1024] = "", w[1024] = "", b[64];
  for (size_t i = from; i < t->nevents; i++)
    snprintf(got + strlen(got), sizeof got - strlen(got), "%s ", ev_name(t->events[i], b, sizeof b));
  for (size_t i = 0; i < n; i++) snprintf(w + strlen(w), sizeof w - strlen(w), "%s ", want[i]);
  if (strcmp(got, w) != 0) fail_msg("events:\n  got  %s\n  want %s", got, w);
}

static eg_unit_record unit(const char *slot, int attempt, uint8_t mac_last) {
  eg_unit_record u;
  eg_unit_record_init(&u);
  snprintf(u.slot, sizeof u.slot, "%s", slot);
  snprintf(u.port, sizeof u.port, "/dev/ttyUSB%d", mac_last);
  u.attempt = attempt;
  u.started_ms = T0;
  return u;
}

static void identify(eg_unit_record *u, uint8_t mac_last) {
  snprintf(u->chip, sizeof u->chip, "ESP32");
  snprintf(u->chip_desc, sizeof u->chip_desc, "ESP32-D0WD-V3 (revision v3.0)");
  u->has_mac = true;
  const uint8_t mac[6] = {0x24, 0x0a, 0xc4, 0, 0, mac_last};
  memcpy(u->mac, mac, 6);
}

static void fail_with(eg_unit_record *u, eg_err code, eg_stage stage, const uint8_t *st, size_t nst, const char *msg) {
  u->result = EG_RESULT_FAIL;
  eg_fault_set(&u->fault, code, stage, -1, "%s", msg);
  if (nst) eg_fault_status(&u->fault, st, nst);
}

/* A shift of three slots: A1 passes first time; A2 fails SYNC, is retried
 * and passes; A3 fails at write with the chip's status bytes and its record
 * is refused; then a unit on A1 is aborted. */
static void play_shift(fx *t) {
  eg_unit_record u = unit("A1", 1, 1);
  eg_dash_unit_start(t->d, 0, &u);
  eg_dash_unit_stage(t->d, 0, &u, EG_STAGE_DETECT);
  identify(&u, 1);
  eg_dash_unit_identity(t->d, 0, &u);
  eg_dash_unit_stage(t->d, 0, &u, EG_STAGE_WRITE);
  eg_dash_unit_progress(t->d, 0, &u, 1000, 1000);
  u.result = EG_RESULT_PASS;
  u.finished_ms = T0 + 5000;
  eg_dash_unit_done(t->d, 0, &u, false, true);

  u = unit("A2", 1, 2);
  eg_dash_unit_start(t->d, 1, &u);
  eg_dash_unit_stage(t->d, 1, &u, EG_STAGE_SYNC);
  fail_with(&u, EG_NO_SYNC, EG_STAGE_SYNC, NULL, 0, "no answer to SYNC after 7 attempts");
  u.finished_ms = T0 + 6000;
  eg_dash_unit_done(t->d, 1, &u, true, true);
  u = unit("A2", 2, 2);
  eg_dash_unit_start(t->d, 1, &u);
  identify(&u, 2);
  u.result = EG_RESULT_PASS;
  u.finished_ms = T0 + 9000;
  eg_dash_unit_done(t->d, 1, &u, false, true);

  u = unit("A3", 1, 3);
  eg_dash_unit_start(t->d, 2, &u);
  identify(&u, 3);
  static const uint8_t st[2] = {0x01, 0x05};
  fail_with(&u, EG_DEVICE_STATUS, EG_STAGE_WRITE, st, 2, "FLASH_DEFL_DATA refused: \"status\" 01 05\t<b>");
  u.finished_ms = T0 + 7000;
  eg_dash_unit_done(t->d, 2, &u, false, false);

  u = unit("A1", 1, 4);
  eg_dash_unit_start(t->d, 0, &u);
  u.result = EG_RESULT_ABORTED;
  eg_fault_set(&u.fault, EG_ABORTED, EG_STAGE_SYNC, -1, "stopped");
  u.finished_ms = T0 + 9500;
  eg_dash_unit_done(t->d, 0, &u, false, true);

  /* A board that already holds what it needs: counted apart, not a unit of
   * this shift's yield, the slot's state left to the station. */
  u = unit("A4", 1, 5);
  eg_dash_unit_start(t->d, 3, &u);
  identify(&u, 5);
  u.result = EG_RESULT_SKIPPED;
  eg_fault_set(&u.fault, EG_SKIPPED, EG_STAGE_NONE, -1, "24:0a:c4:00:00:05 passed in run 3");
  u.finished_ms = T0 + 9900;
  eg_dash_unit_done(t->d, 3, &u, false, true);
  eg_dash_slot_state(t->d, 3, EG_STATION_REMOVAL, "already passed: not re-flashed");
}

/* ---------------------------------------------------------------- state */

static void test_counters_and_snapshot(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  play_shift(&t);
  t.now = T0 + 30 * 60 * 1000; /* half an hour into the shift */
  eg_dash_counters c;
  eg_dash_get_counters(t.d, &c);
  assert_int_equal(c.units, 3);
  assert_int_equal(c.passed, 2);
  assert_int_equal(c.failed, 1);
  assert_int_equal(c.aborted, 1);
  assert_int_equal(c.skipped, 1);
  assert_int_equal(c.first_pass, 1);
  assert_int_equal(c.attempts, 6);
  assert_true(c.first_pass_yield > 0.3333 && c.first_pass_yield < 0.3334);
  assert_true(c.units_per_hour > 5.9999 && c.units_per_hour < 6.0001); /* 3 units in 30 min */
  assert_int_equal(c.started_ms, T0);
  char *s = eg_dash_snapshot(t.d);
  contains("header", s, "{\"event\":\"snapshot\",\"station\":\"line3\",\"version\":\"" EG_VERSION "\",\"started_ms\":1700000000000,"
                        "\"now_ms\":1700001800000,\"max_failures\":50,");
  contains("counters", s,
           "\"counters\":{\"units\":3,\"passed\":2,\"failed\":1,\"aborted\":1,\"skipped\":1,\"first_pass\":1,\"attempts\":6,"
           "\"first_pass_yield\":0.333,\"units_per_hour\":6.000,\"started_ms\":1700000000000}");
  /* A1: aborted, so its state stays flashing (the station says what next). */
  contains("slot A1", s,
           "{\"index\":0,\"slot\":\"A1\",\"state\":\"flashing\",\"state_text\":\"flashing\",\"note\":\"\","
           "\"since_ms\":1700000000000,\"in_state_ms\":1800000,\"port\":\"/dev/ttyUSB4\",\"attempt\":1,\"stage\":\"\","
           "\"stage_label\":\"\",\"done\":0,\"total\":0,\"mac\":\"\",\"chip\":\"\",\"chip_desc\":\"\",\"last_result\":\"aborted\","
           "\"last_stage\":\"sync\",\"last_stage_label\":\"connecting\",\"last_error\":\"ABORTED\","
           "\"last_error_text\":\"stopped by the operator\",\"last_status\":\"\",\"last_message\":\"stopped\","
           "\"last_finished_ms\":1700000009500,\"recorded\":true}");
  contains("slot A2", s,
           "{\"index\":1,\"slot\":\"A2\",\"state\":\"pass\",\"state_text\":\"passed\",\"note\":\"\",\"since_ms\":1700000000000,"
           "\"in_state_ms\":1800000,\"port\":\"/dev/ttyUSB2\",\"attempt\":2,\"stage\":\"\",\"stage_label\":\"\",\"done\":0,"
           "\"total\":0,\"mac\":\"24:0a:c4:00:00:02\",\"chip\":\"ESP32\",\"chip_desc\":\"ESP32-D0WD-V3 (revision v3.0)\","
           "\"last_result\":\"pass\",\"last_stage\":\"\",\"last_stage_label\":\"\",\"last_error\":\"\",\"last_error_text\":\"\","
           "\"last_status\":\"\",\"last_message\":\"\",\"last_finished_ms\":1700000009000,\"recorded\":true}");
  contains("slot A4 (skipped)", s,
           "{\"index\":3,\"slot\":\"A4\",\"state\":\"removal\",\"state_text\":\"remove board\","
           "\"note\":\"already passed: not re-flashed\",\"since_ms\":1700000000000,\"in_state_ms\":1800000,"
           "\"port\":\"/dev/ttyUSB5\",\"attempt\":1,\"stage\":\"\",\"stage_label\":\"\",\"done\":0,\"total\":0,"
           "\"mac\":\"24:0a:c4:00:00:05\",\"chip\":\"ESP32\",\"chip_desc\":\"ESP32-D0WD-V3 (revision v3.0)\","
           "\"last_result\":\"skipped\",\"last_stage\":\"\",\"last_stage_label\":\"\",\"last_error\":\"SKIPPED\","
           "\"last_error_text\":\"not flashed: the unit already holds what it needs\",\"last_status\":\"\","
           "\"last_message\":\"24:0a:c4:00:00:05 passed in run 3\",\"last_finished_ms\":1700000009900,\"recorded\":true}");
  contains("slot A3", s,
           "{\"index\":2,\"slot\":\"A3\",\"state\":\"fail\",\"state_text\":\"failed\",\"note\":\"\",\"since_ms\":1700000000000,"
           "\"in_state_ms\":1800000,\"port\":\"/dev/ttyUSB3\",\"attempt\":1,\"stage\":\"\",\"stage_label\":\"\",\"done\":0,"
           "\"total\":0,\"mac\":\"24:0a:c4:00:00:03\",\"chip\":\"ESP32\",\"chip_desc\":\"ESP32-D0WD-V3 (revision v3.0)\","
           "\"last_result\":\"fail\",\"last_stage\":\"write\",\"last_stage_label\":\"writing\",\"last_error\":\"DEVICE_STATUS\","
           "\"last_error_text\":\"the device reported a failed command\",\"last_status\":\"01 05\","
           "\"last_message\":\"FLASH_DEFL_DATA refused: \\\"status\\\" 01 05\\t<b>\",\"last_finished_ms\":1700000007000,"
           "\"recorded\":false}");
  /* Every failed attempt, newest first; the aborted unit is not a failure. */
  contains("failures", s,
           "\"failures\":[{\"index\":2,\"slot\":\"A3\",\"mac\":\"24:0a:c4:00:00:03\",\"chip\":\"ESP32\",\"attempt\":1,"
           "\"stage\":\"write\",\"stage_label\":\"writing\",\"error\":\"DEVICE_STATUS\","
           "\"error_text\":\"the device reported a failed command\",\"opcode\":-1,\"status\":\"01 05\","
           "\"message\":\"FLASH_DEFL_DATA refused: \\\"status\\\" 01 05\\t<b>\",\"time_ms\":1700000007000,\"will_retry\":false},"
           "{\"index\":1,\"slot\":\"A2\",\"mac\":\"\",\"chip\":\"\",\"attempt\":1,\"stage\":\"sync\",\"stage_label\":\"connecting\","
           "\"error\":\"NO_SYNC\",\"error_text\":\"no answer to SYNC; is the chip in download mode?\",\"opcode\":-1,"
           "\"status\":\"\",\"message\":\"no answer to SYNC after 7 attempts\",\"time_ms\":1700000006000,"
           "\"will_retry\":true}]}");
  free(s);
  /* The first minute counts as a minute: 3 units 10 s in are 180/h, not 1080. */
  t.now = T0 + 10000;
  eg_dash_get_counters(t.d, &c);
  assert_true(c.units_per_hour > 179.999 && c.units_per_hour < 180.001);
  close_fx(&t);
}

static void test_yield_undefined_without_units(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  eg_dash_counters c;
  eg_dash_get_counters(t.d, &c);
  assert_true(c.first_pass_yield < 0);
  assert_int_equal(c.units, 0);
  char *s = eg_dash_snapshot(t.d);
  contains("no units yet", s, "\"first_pass_yield\":null,\"units_per_hour\":0.000");
  contains("slots start waiting", s, "\"slot\":\"A4\",\"state\":\"waiting\",\"state_text\":\"waiting\"");
  contains("no failures", s, "\"failures\":[]}");
  free(s);
  close_fx(&t);
}

static void test_events_one_per_change(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  t.now = T0 + 100;
  eg_unit_record u = unit("A1", 1, 7);
  eg_dash_slot_state(t.d, 0, EG_STATION_FLASHING, NULL);
  eg_dash_unit_start(t.d, 0, &u); /* already flashing: no second slot_state */
  eg_dash_unit_stage(t.d, 0, &u, EG_STAGE_WRITE);
  eg_dash_unit_progress(t.d, 0, &u, 0, 4096);
  identify(&u, 7);
  eg_dash_unit_identity(t.d, 0, &u);
  static const uint8_t st[2] = {0x01, 0x63};
  fail_with(&u, EG_MD5_MISMATCH, EG_STAGE_VERIFY, st, 2, "md5 differs");
  t.now = T0 + 200;
  eg_dash_unit_done(t.d, 0, &u, false, true);
  static const char *const want[] = {"slot_state", "unit_start", "stage", "progress", "unit_identity",
                                     "unit_done",  "failure",    "slot_state", "counters"};
  names_are(&t, 0, want, sizeof want / sizeof want[0]);
  assert_string_equal(t.events[0], "{\"event\":\"slot_state\",\"index\":0,\"slot\":\"A1\",\"state\":\"flashing\","
                                   "\"state_text\":\"flashing\",\"note\":\"\",\"since_ms\":1700000000100}");
  assert_string_equal(t.events[2], "{\"event\":\"stage\",\"index\":0,\"slot\":\"A1\",\"attempt\":1,\"stage\":\"write\","
                                   "\"stage_label\":\"writing\"}");
  assert_string_equal(t.events[3], "{\"event\":\"progress\",\"index\":0,\"slot\":\"A1\",\"stage\":\"write\",\"done\":0,"
                                   "\"total\":4096}");
  /* unit events carry the record as the flash command's --json does. */
  contains("unit_done", t.events[5], "{\"event\":\"unit_done\",\"index\":0,\"slot\":\"A1\",\"port\":\"/dev/ttyUSB7\",\"attempt\":1,"
                                     "\"result\":\"fail\",\"chip\":\"ESP32\"");
  contains("unit_done", t.events[5], "\"fail_stage\":\"verify\",\"error\":\"MD5_MISMATCH\",\"status\":\"01 63\","
                                     "\"message\":\"md5 differs\",\"will_retry\":false,\"recorded\":true,"
                                     "\"fail_stage_label\":\"verifying\","
                                     "\"error_text\":\"flash MD5 differs from the image's MD5\"}");
  assert_string_equal(t.events[7], "{\"event\":\"slot_state\",\"index\":0,\"slot\":\"A1\",\"state\":\"fail\","
                                   "\"state_text\":\"failed\",\"note\":\"\",\"since_ms\":1700000000200}");

  /* Nothing changes: nothing is sent. A note alone is a change, but keeps
   * the time in state. Out-of-range slots are ignored. */
  const size_t n = t.nevents;
  eg_dash_slot_state(t.d, 0, EG_STATION_FAIL, NULL);
  eg_dash_slot_state(t.d, 0, EG_STATION_FAIL, "");
  eg_dash_slot_state(t.d, 4, EG_STATION_WAITING, NULL);
  eg_dash_unit_start(t.d, 99, &u);
  eg_dash_unit_done(t.d, 4, &u, false, true);
  eg_dash_slot_state(t.d, 0, (eg_station_state)77, NULL);
  assert_int_equal(t.nevents, n);
  t.now = T0 + 300;
  eg_dash_slot_state(t.d, 0, EG_STATION_FAIL, "take it to rework");
  assert_int_equal(t.nevents, n + 1);
  assert_string_equal(t.events[n], "{\"event\":\"slot_state\",\"index\":0,\"slot\":\"A1\",\"state\":\"fail\","
                                   "\"state_text\":\"failed\",\"note\":\"take it to rework\",\"since_ms\":1700000000200}");
  eg_dash_message(t.d, "database \"slow\"");
  assert_string_equal(t.events[n + 1], "{\"event\":\"message\",\"text\":\"database \\\"slow\\\"\",\"time_ms\":1700000000300}");
  /* A new board clears the last result; a retry keeps the failure it retries. */
  u = unit("A1", 1, 8);
  eg_dash_unit_start(t.d, 0, &u);
  char *s = eg_dash_snapshot(t.d);
  contains("new board", s, "\"slot\":\"A1\",\"state\":\"flashing\"");
  contains("new board", s, "\"mac\":\"\",\"chip\":\"\",\"chip_desc\":\"\",\"last_result\":\"\"");
  free(s);
  close_fx(&t);
}

static bool nevents_at_least(void *arg) {
  fx *t = arg;
  return t->nevents >= 4;
}

static void test_progress_throttled(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {.progress_ms = 100};
  open_with(&t, &o);
  eg_unit_record u = unit("A2", 1, 1);
  eg_dash_unit_start(t.d, 1, &u);
  eg_dash_unit_stage(t.d, 1, &u, EG_STAGE_WRITE);
  const size_t n0 = t.nevents;
  for (uint64_t k = 0; k < 10; k++) eg_dash_unit_progress(t.d, 1, &u, k * 100, 1000);
  assert_int_equal(t.nevents, n0 + 1); /* the first at once, the rest held */
  contains("first", t.events[n0], "\"done\":0,\"total\":1000}");
  /* The timer sends the latest value once. */
  pump_until(&t.loop, nevents_at_least, &t, 2000);
  pump(&t.loop, 250);
  assert_int_equal(t.nevents, n0 + 2);
  contains("held back", t.events[n0 + 1], "\"done\":900,\"total\":1000}");
  /* The last step always goes out at once. */
  eg_dash_unit_progress(t.d, 1, &u, 1000, 1000);
  assert_int_equal(t.nevents, n0 + 3);
  contains("complete", t.events[n0 + 2], "\"done\":1000,\"total\":1000}");
  /* A held value is dropped by a stage change (which resets progress). */
  eg_dash_unit_progress(t.d, 1, &u, 10, 1000);
  eg_dash_unit_progress(t.d, 1, &u, 20, 1000);
  eg_dash_unit_stage(t.d, 1, &u, EG_STAGE_VERIFY);
  const size_t n1 = t.nevents;
  pump(&t.loop, 250);
  assert_int_equal(t.nevents, n1);
  close_fx(&t);
}

static void test_failures_bounded(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {.max_failures = 3};
  open_with(&t, &o);
  for (int i = 0; i < 5; i++) {
    eg_unit_record u = unit("A1", 1, (uint8_t)i);
    eg_dash_unit_start(t.d, 0, &u);
    char msg[32];
    snprintf(msg, sizeof msg, "failure %d", i);
    fail_with(&u, EG_TIMEOUT, EG_STAGE_ERASE, NULL, 0, msg);
    u.finished_ms = T0 + i;
    eg_dash_unit_done(t.d, 0, &u, false, true);
  }
  char *s = eg_dash_snapshot(t.d);
  const char *f = strstr(s, "\"failures\":[");
  assert_non_null(f);
  const char *m4 = strstr(f, "failure 4"), *m3 = strstr(f, "failure 3"), *m2 = strstr(f, "failure 2");
  if (!m4 || !m3 || !m2 || !(m4 < m3 && m3 < m2) || strstr(f, "failure 1") || strstr(f, "failure 0"))
    fail_msg("want failures 4, 3, 2 (newest first) and no others: %s", f);
  contains("max", s, "\"max_failures\":3,");
  free(s);
  close_fx(&t);
}

/* ------------------------------------------------------------------ HTTP */

static void test_routes_and_page(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  play_shift(&t);
  const int port = eg_dash_port(t.d);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  assert_string_equal(eg_dash_url(t.d), url);

  tresp r;
  assert_true(http_once(&t.loop, port, "GET", "/", NULL, &r));
  assert_int_equal(r.status, 200);
  assert_string_equal(tresp_header(&r, "content-type"), "text/html; charset=utf-8");
  /* One self-contained document: nothing referenced outside it. */
  assert_non_null(strstr(r.body, "<!doctype html>"));
  assert_null(strstr(r.body, "/*EG_CSS*/"));
  assert_null(strstr(r.body, "/*EG_JS*/"));
  assert_null(strstr(r.body, "src="));
  assert_null(strstr(r.body, "http:"));
  assert_null(strstr(r.body, "https:"));
  assert_null(strstr(r.body, "@import"));
  assert_non_null(strstr(r.body, "href=\"data:,\"")); /* no favicon request */
  /* The CSP allows exactly the page's inline script and style, by hash. */
  char csp[1024];
  snprintf(csp, sizeof csp, "%s", tresp_header(&r, "content-security-policy"));
  const char *tags[2][2] = {{"<script>", "</script>"}, {"<style>", "</style>"}};
  const char *dirs[2] = {"script-src 'sha256-", "style-src 'sha256-"};
  for (int k = 0; k < 2; k++) {
    const char *a = strstr(r.body, tags[k][0]) + strlen(tags[k][0]);
    const char *b = strstr(a, tags[k][1]);
    uint8_t dg[32];
    eg_sha256((const uint8_t *)a, (size_t)(b - a), dg);
    unsigned char b64[48];
    EVP_EncodeBlock(b64, dg, 32);
    char want[128];
    snprintf(want, sizeof want, "%s%s'", dirs[k], (char *)b64);
    contains("CSP hash of the inline block", csp, want);
  }
  contains("CSP", csp, "default-src 'none';");
  contains("CSP", csp, "connect-src 'self';");
  const size_t page_len = r.body_len;
  tresp_free(&r);

  assert_true(http_once(&t.loop, port, "HEAD", "/", NULL, &r));
  assert_int_equal(r.status, 200);
  assert_int_equal(strtoul(tresp_header(&r, "content-length"), NULL, 10), page_len);
  tresp_free(&r);

  /* /api/state is the snapshot (the clock stands still, so byte for byte). */
  assert_true(http_once(&t.loop, port, "GET", "/api/state", NULL, &r));
  assert_int_equal(r.status, 200);
  assert_string_equal(tresp_header(&r, "content-type"), "application/json");
  assert_string_equal(tresp_header(&r, "cache-control"), "no-store");
  char *snap = eg_dash_snapshot(t.d);
  assert_string_equal(r.body, snap);
  free(snap);
  tresp_free(&r);

  static const struct {
    const char *method, *target;
    int status;
    const char *body;
  } cases[] = {
    {"GET", "/healthz", 200, "ok\n"},
    {"HEAD", "/healthz", 200, ""},
    {"GET", "/favicon.ico", 204, ""},
    {"GET", "/api/state?pretty=1", 200, NULL},
    {"GET", "/nope", 404, "404 Not Found\n"},
    {"GET", "/api/state/", 404, NULL},
    {"POST", "/api/state", 405, NULL},
    {"DELETE", "/", 405, NULL},
    {"OPTIONS", "*", 404, NULL},
    {"POST", "/healthz", 405, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_true(http_once(&t.loop, port, cases[i].method, cases[i].target, NULL, &r));
    if (r.status != cases[i].status || (cases[i].body && strcmp(r.body, cases[i].body) != 0))
      fail_msg("%s %s: got %d \"%s\", want %d", cases[i].method, cases[i].target, r.status, r.body, cases[i].status);
    if (r.status == 405) assert_string_equal(tresp_header(&r, "allow"), "GET, HEAD");
    tresp_free(&r);
  }
  close_fx(&t);
}

/* Without a token, only loopback names are answered: a page on a rebound
 * DNS name cannot read the station. */
static void test_host_check(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  const int port = eg_dash_port(t.d);
  static const struct {
    const char *host;
    int status;
  } cases[] = {
    {"localhost", 200},    {"LOCALHOST:8080", 200}, {"127.0.0.1:1", 200},        {"127.1.2.3", 200},
    {"[::1]:8080", 200},   {"localhost.", 200},     {"evil.example", 403},       {"127.0.0.1.evil.example", 403},
    {"localhost.evil", 403}, {"[::2]", 403},        {"", 403},                   {"127.0.0.x", 403},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tcl c;
    tcl_open(&c, port, 0);
    char req[256];
    snprintf(req, sizeof req, "GET /api/state HTTP/1.1\r\nHost: %s\r\n\r\n", cases[i].host);
    tcl_sends(&t.loop, &c, req);
    tresp r;
    assert_true(tcl_response(&t.loop, &c, &r, false));
    if (r.status != cases[i].status) fail_msg("Host: %s -> %d, want %d", cases[i].host, r.status, cases[i].status);
    tresp_free(&r);
    tcl_close(&c);
  }
  /* HTTP/1.0 without a Host (a script, not a browser) is answered. */
  tcl c;
  tcl_open(&c, port, 0);
  tcl_sends(&t.loop, &c, "GET /healthz HTTP/1.0\r\n\r\n");
  tresp r;
  assert_true(tcl_response(&t.loop, &c, &r, false));
  assert_int_equal(r.status, 200);
  tresp_free(&r);
  tcl_close(&c);
  close_fx(&t);
}

/* ------------------------------------------------------------------ SSE */

typedef struct frame {
  char id[64];
  char *data; /* NULL for comments and retry-only blocks */
  char raw[64];
} frame;

/* Wait for one event block ("...\n\n") and parse it. */
static bool sse_next(uv_loop_t *loop, tcl *c, frame *f) {
  memset(f, 0, sizeof *f);
  if (!tcl_wait_for(loop, c, "\n\n", TCL_WAIT_MS)) return false;
  char *end = strstr(c->buf, "\n\n");
  const size_t n = (size_t)(end - c->buf) + 2;
  snprintf(f->raw, sizeof f->raw, "%.*s", (int)(n < 63 ? n : 63), c->buf);
  *end = '\0';
  for (char *line = c->buf; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (strncmp(line, "id: ", 4) == 0) snprintf(f->id, sizeof f->id, "%s", line + 4);
    else if (strncmp(line, "data: ", 6) == 0) f->data = strdup(line + 6);
    line = nl ? nl + 1 : NULL;
  }
  tcl_consume(c, n);
  return true;
}

/* Open /api/events (extra headers optional), check the head, and consume
 * it and the retry block. */
static void sse_open(fx *t, tcl *c, const char *extra) {
  tcl_open(c, eg_dash_port(t->d), 0);
  char req[512];
  snprintf(req, sizeof req, "GET /api/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n%s\r\n",
           extra ? extra : "");
  tcl_sends(&t->loop, c, req);
  if (!tcl_wait_for(&t->loop, c, "\r\n\r\n", TCL_WAIT_MS)) fail_msg("no head: %s", c->buf);
  assert_int_equal(strncmp(c->buf, "HTTP/1.1 200 OK\r\n", 17), 0);
  contains("SSE head", c->buf, "Content-Type: text/event-stream; charset=utf-8\r\n");
  contains("SSE head", c->buf, "Cache-Control: no-store\r\n");
  assert_null(strstr(c->buf, "Content-Length"));
  tcl_consume(c, (size_t)(strstr(c->buf, "\r\n\r\n") - c->buf) + 4);
  frame f;
  assert_true(sse_next(&t->loop, c, &f));
  assert_string_equal(f.raw, "retry: 2000\n\n");
}

static void test_sse_framing_and_resume(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  play_shift(&t);
  const size_t before = t.nevents;
  tcl a;
  sse_open(&t, &a, NULL);
  /* A fresh stream starts with the snapshot, numbered as the last event. */
  frame f;
  assert_true(sse_next(&t.loop, &a, &f));
  char *snap = eg_dash_snapshot(t.d);
  assert_string_equal(f.data, snap);
  free(snap);
  free(f.data);
  char inst[16];
  snprintf(inst, sizeof inst, "%.*s", (int)(strchr(f.id, '-') - f.id), f.id);
  char want_id[64];
  snprintf(want_id, sizeof want_id, "%s-%zu", inst, before);
  assert_string_equal(f.id, want_id);
  /* Each later change: the next id, the on_event line as data. */
  char ids[5][64];
  for (int i = 0; i < 5; i++) {
    char m[32];
    snprintf(m, sizeof m, "note %d", i);
    eg_dash_message(t.d, m);
    assert_true(sse_next(&t.loop, &a, &f));
    snprintf(want_id, sizeof want_id, "%s-%zu", inst, before + 1 + (size_t)i);
    assert_string_equal(f.id, want_id);
    assert_string_equal(f.data, t.events[before + (size_t)i]);
    snprintf(ids[i], sizeof ids[i], "%s", f.id);
    free(f.data);
  }
  /* A browser that reconnects with the id of note 1 gets notes 2..4, not a
   * snapshot. */
  tcl b;
  char hdr[128];
  snprintf(hdr, sizeof hdr, "Last-Event-ID: %s\r\n", ids[1]);
  sse_open(&t, &b, hdr);
  for (int i = 2; i < 5; i++) {
    assert_true(sse_next(&t.loop, &b, &f));
    assert_string_equal(f.id, ids[i]);
    assert_string_equal(f.data, t.events[before + (size_t)i]);
    free(f.data);
  }
  eg_dash_message(t.d, "live again");
  assert_true(sse_next(&t.loop, &b, &f));
  contains("live", f.data, "\"text\":\"live again\"");
  free(f.data);
  tcl_close(&b);
  /* Up to date: nothing to replay, the next event comes live. */
  snprintf(want_id, sizeof want_id, "%s-%zu", inst, before + 6);
  snprintf(hdr, sizeof hdr, "Last-Event-ID: %s\r\n", want_id);
  sse_open(&t, &b, hdr);
  eg_dash_message(t.d, "after");
  assert_true(sse_next(&t.loop, &b, &f));
  contains("live", f.data, "\"text\":\"after\"");
  free(f.data);
  tcl_close(&b);
  /* Another instance's id, a future id, garbage: a snapshot. */
  static const char *const stale[] = {"00000000-3", "", "x", NULL};
  char future[64];
  snprintf(future, sizeof future, "%s-999999", inst);
  for (int i = 0; i < 4; i++) {
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %s\r\n", stale[i] ? stale[i] : future);
    sse_open(&t, &b, hdr);
    assert_true(sse_next(&t.loop, &b, &f));
    contains("snapshot", f.data, "{\"event\":\"snapshot\"");
    free(f.data);
    tcl_close(&b);
  }
  /* Too old: more than EG_DASH_REPLAY events since. */
  for (int i = 0; i < EG_DASH_REPLAY + 10; i++) eg_dash_message(t.d, "filler");
  snprintf(hdr, sizeof hdr, "Last-Event-ID: %s\r\n", ids[0]);
  sse_open(&t, &b, hdr);
  assert_true(sse_next(&t.loop, &b, &f));
  contains("snapshot", f.data, "{\"event\":\"snapshot\"");
  free(f.data);
  tcl_close(&b);
  tcl_close(&a);
  close_fx(&t);
}

/* A replay larger than half the client's queue would drop it, and the
 * browser would come back with the same id forever: it gets a snapshot. */
static void test_big_replay_is_a_snapshot(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {.client_out_cap = 64 * 1024};
  open_with(&t, &o);
  tcl a;
  sse_open(&t, &a, NULL);
  frame f;
  assert_true(sse_next(&t.loop, &a, &f)); /* snapshot, id <instance>-0 */
  free(f.data);
  char inst[16];
  snprintf(inst, sizeof inst, "%.*s", (int)(strchr(f.id, '-') - f.id), f.id);
  tcl_close(&a);
  char big[201];
  memset(big, 'y', 200);
  big[200] = '\0';
  for (int i = 0; i < 200; i++) eg_dash_message(t.d, big); /* frames of ~270 bytes: ~54 KiB */
  static const struct {
    int from;
    const char *first_event;
  } cases[] = {
    {0, "snapshot"},   /* 200 frames: more than 32 KiB */
    {80, "snapshot"},  /* 120 frames: ~32.5 KiB */
    {100, "message"},  /* 100 frames: ~27 KiB */
    {199, "message"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char hdr[64], want[64];
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %s-%d\r\n", inst, cases[i].from);
    sse_open(&t, &a, hdr);
    assert_true(sse_next(&t.loop, &a, &f));
    snprintf(want, sizeof want, "{\"event\":\"%s\"", cases[i].first_event);
    if (strncmp(f.data, want, strlen(want)) != 0) fail_msg("resume from %d: got %.40s, want %s", cases[i].from, f.data, want);
    if (strcmp(cases[i].first_event, "message") == 0) {
      snprintf(want, sizeof want, "%s-%d", inst, cases[i].from + 1);
      assert_string_equal(f.id, want);
    }
    free(f.data);
    tcl_close(&a);
  }
  close_fx(&t);
}

static void test_heartbeat(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {.heartbeat_ms = 40};
  open_with(&t, &o);
  tcl a;
  sse_open(&t, &a, NULL);
  frame f;
  assert_true(sse_next(&t.loop, &a, &f)); /* snapshot */
  free(f.data);
  assert_true(sse_next(&t.loop, &a, &f));
  assert_string_equal(f.raw, ": heartbeat\n\n");
  assert_null(f.data);
  tcl_close(&a);
  close_fx(&t);
}

typedef struct count_arg {
  fx *t;
  size_t n;
} count_arg;

static bool clients_are(void *arg) {
  count_arg *c = arg;
  return eg_dash_clients(c->t->d) == c->n;
}

static void test_sixty_clients(void **state) {
  (void)state;
  enum { N = 60 };
  fx t;
  eg_dash_options o = {0};
  open_with(&t, &o);
  static tcl c[N];
  for (int i = 0; i < N; i++) sse_open(&t, &c[i], NULL);
  count_arg ca = {&t, N};
  assert_true(pump_until(&t.loop, clients_are, &ca, TCL_WAIT_MS));
  eg_unit_record u = unit("A3", 1, 9);
  eg_dash_unit_start(t.d, 2, &u);
  for (int i = 0; i < N; i++) {
    frame f;
    assert_true(sse_next(&t.loop, &c[i], &f)); /* snapshot */
    free(f.data);
    assert_true(sse_next(&t.loop, &c[i], &f));
    assert_string_equal(f.data, t.events[0]); /* slot_state */
    free(f.data);
    assert_true(sse_next(&t.loop, &c[i], &f));
    assert_string_equal(f.data, t.events[1]); /* unit_start */
    free(f.data);
  }
  for (int i = 0; i < N; i++) tcl_close(&c[i]);
  ca.n = 0;
  assert_true(pump_until(&t.loop, clients_are, &ca, TCL_WAIT_MS));
  close_fx(&t);
}

/* A client that never reads is dropped at client_out_cap; a reading client
 * beside it receives every event, in order, ids consecutive. */
static void test_slow_client_dropped(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {.client_out_cap = 32 * 1024};
  open_with(&t, &o);
  tcl slow, fast;
  tcl_open(&slow, eg_dash_port(t.d), 4096);
  tcl_sends(&t.loop, &slow, "GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n");
  sse_open(&t, &fast, NULL);
  count_arg ca = {&t, 2};
  assert_true(pump_until(&t.loop, clients_are, &ca, TCL_WAIT_MS));
  frame f;
  assert_true(sse_next(&t.loop, &fast, &f));
  free(f.data);
  char text[1001];
  memset(text, 'x', 1000);
  text[1000] = '\0';
  size_t got = 0, sent = 0, next_seq = 0;
  bool dropped = false;
  for (int round = 0; round < 4000; round++) {
    eg_dash_message(t.d, text);
    sent++;
    uv_run(&t.loop, UV_RUN_NOWAIT);
    tcl_poll(&fast);
    char *e;
    while ((e = strstr(fast.buf, "\n\n"))) {
      const char *id = strstr(fast.buf, "id: ");
      assert_non_null(id);
      const size_t seq = strtoul(strchr(id, '-') + 1, NULL, 10);
      if (next_seq && seq != next_seq) fail_msg("event %zu after %zu", seq, next_seq - 1);
      next_seq = seq + 1;
      got++;
      tcl_consume(&fast, (size_t)(e - fast.buf) + 2);
    }
    if (!dropped && eg_dash_clients(t.d) == 1) {
      dropped = true;
      printf("# the client that never reads was dropped after %zu events of ~1 KiB\n", sent);
    }
    if (dropped && sent >= 2000) break;
  }
  assert_true(dropped);
  /* The reader catches up on the rest. */
  while (got < sent) {
    frame g;
    if (!sse_next(&t.loop, &fast, &g)) fail_msg("reader got %zu of %zu events", got, sent);
    free(g.data);
    got++;
  }
  assert_int_equal(eg_dash_clients(t.d), 1);
  tcl_close(&slow);
  tcl_close(&fast);
  close_fx(&t);
}

/* ---------------------------------------------------------------- token */

#define TOKEN "0123456789abcdef-._~XYZ"

static void test_token(void **state) {
  (void)state;
  fx t;
  eg_dash_options o = {.token = TOKEN};
  open_with(&t, &o);
  const int port = eg_dash_port(t.d);
  char cookie_name[32];
  snprintf(cookie_name, sizeof cookie_name, "eg_token_%d", port);
  tresp r;
  static const struct {
    const char *target, *extra;
    int status;
  } cases[] = {
    {"/", NULL, 401},
    {"/api/state", NULL, 401},
    {"/api/events", NULL, 401},
    {"/nope", NULL, 401}, /* nothing is revealed without the token, not even 404s */
    {"/api/state", "Authorization: Bearer " TOKEN "\r\n", 200},
    {"/api/state", "Authorization: bearer   " TOKEN "\r\n", 200},
    {"/api/state", "Authorization: Bearer " TOKEN "x\r\n", 401},
    {"/api/state", "Authorization: Bearer 0123456789abcdef-._~XY\r\n", 401},
    {"/api/state", "Authorization: Basic " TOKEN "\r\n", 401},
    {"/api/state?token=" TOKEN, NULL, 200},
    {"/api/state?token=wrong", NULL, 401},
    {"/nope", "Authorization: Bearer " TOKEN "\r\n", 404},
    {"/healthz", NULL, 200},
    {"/favicon.ico", NULL, 204}, /* the browser's own request: never a 404 or 401 in its console */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_true(http_once(&t.loop, port, "GET", cases[i].target, cases[i].extra, &r));
    if (r.status != cases[i].status)
      fail_msg("%s %s: %d, want %d", cases[i].target, cases[i].extra ? cases[i].extra : "", r.status, cases[i].status);
    if (r.status == 401) assert_string_equal(tresp_header(&r, "www-authenticate"), "Bearer realm=\"espgang\"");
    tresp_free(&r);
  }
  /* ?token= on the page: a cookie and a redirect to the bare page. */
  assert_true(http_once(&t.loop, port, "GET", "/?token=" TOKEN, NULL, &r));
  assert_int_equal(r.status, 303);
  assert_string_equal(tresp_header(&r, "location"), "/");
  char want[256];
  snprintf(want, sizeof want, "%s=%s; Path=/; Max-Age=2592000; HttpOnly; SameSite=Strict", cookie_name, TOKEN);
  assert_string_equal(tresp_header(&r, "set-cookie"), want);
  tresp_free(&r);
  /* The cookie opens the page, the state and the event stream. */
  char hdr[256];
  snprintf(hdr, sizeof hdr, "Cookie: other=1; %s=%s\r\n", cookie_name, TOKEN);
  assert_true(http_once(&t.loop, port, "GET", "/", hdr, &r));
  assert_int_equal(r.status, 200);
  tresp_free(&r);
  tcl c;
  sse_open(&t, &c, hdr);
  tcl_close(&c);
  /* Another port's cookie is not this one. */
  snprintf(hdr, sizeof hdr, "Cookie: eg_token_%d=%s\r\n", port + 1, TOKEN);
  assert_true(http_once(&t.loop, port, "GET", "/api/state", hdr, &r));
  assert_int_equal(r.status, 401);
  tresp_free(&r);
  /* With a token the Host is not checked (the token is the check). */
  tcl_open(&c, port, 0);
  tcl_sends(&t.loop, &c, "GET /api/state HTTP/1.1\r\nHost: station.example\r\nAuthorization: Bearer " TOKEN "\r\n\r\n");
  assert_true(tcl_response(&t.loop, &c, &r, false));
  assert_int_equal(r.status, 200);
  tresp_free(&r);
  tcl_close(&c);
  close_fx(&t);
}

static void test_open_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  eg_dash *d = NULL;
  eg_fault f;
  static const struct {
    eg_dash_options o;
    eg_err err;
    const char *msg;
  } cases[] = {
    {{.station = NULL}, EG_INVAL, "no station name"},
    {{.station = "s", .token = "short"}, EG_INVAL, "5 characters; it needs 16 to 128"},
    {{.station = "s", .token = "0123456789abcdef/"}, EG_INVAL, "character 17 is not one of"},
    {{.station = "s", .address = "0.0.0.0"}, EG_INVAL, "listening on 0.0.0.0 (beyond this machine) needs a token"},
    {{.station = "s", .address = "192.168.1.10"}, EG_INVAL, "needs a token"},
    {{.station = "s", .address = "::"}, EG_INVAL, "needs a token"},
    {{.station = "s", .address = "localhost", .token = TOKEN}, EG_INVAL, "not a numeric"},
    {{.station = "s", .nslots = 2}, EG_INVAL, "no slot labels"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    eg_fault_clear(&f);
    const eg_err e = eg_dash_open(&d, &loop, &cases[i].o, &f);
    if (e != cases[i].err || !strstr(f.msg, cases[i].msg))
      fail_msg("case %zu: %s \"%s\", want %s \"%s\"", i, eg_err_name(e), f.msg, eg_err_name(cases[i].err), cases[i].msg);
    assert_null(d);
  }
  /* Wildcard with a token: fine; the URL names this host. */
  const eg_dash_options any = {.station = "s", .address = "0.0.0.0", .token = TOKEN};
  assert_int_equal(eg_dash_open(&d, &loop, &any, &f), EG_OK);
  char host[256];
  size_t hn = sizeof host;
  assert_int_equal(uv_os_gethostname(host, &hn), 0);
  char want[300];
  snprintf(want, sizeof want, "http://%s:%d/", host, eg_dash_port(d));
  assert_string_equal(eg_dash_url(d), want);
  /* Its port is taken for a second one. */
  const eg_dash_options same = {.station = "s", .port = eg_dash_port(d)};
  eg_dash *d2 = NULL;
  assert_int_equal(eg_dash_open(&d2, &loop, &same, &f), EG_IO);
  assert_null(d2);
  contains("port taken", f.msg, "cannot listen on 127.0.0.1 port");
  eg_dash_close(d, NULL, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_make_token(void **state) {
  (void)state;
  char a[33], b[33];
  assert_int_equal(eg_dash_make_token(a, sizeof a), EG_OK);
  assert_int_equal(eg_dash_make_token(b, sizeof b), EG_OK);
  assert_int_equal(strlen(a), 32);
  assert_int_equal(strspn(a, "0123456789abcdef"), 32);
  assert_string_not_equal(a, b);
  assert_int_equal(eg_dash_make_token(a, 32), EG_INVAL);
  /* A made token is a valid one. */
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  const eg_dash_options o = {.station = "s", .token = b};
  eg_dash *d = NULL;
  eg_fault f;
  assert_int_equal(eg_dash_open(&d, &loop, &o, &f), EG_OK);
  eg_dash_close(d, NULL, NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  uv_loop_t warm; /* libuv's process-wide fds, before the fd counts start */
  if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0) return 1;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_counters_and_snapshot, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_yield_undefined_without_units, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_events_one_per_change, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_progress_throttled, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_failures_bounded, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_routes_and_page, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_host_check, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_sse_framing_and_resume, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_big_replay_is_a_snapshot, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_heartbeat, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_sixty_clients, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_slow_client_dropped, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_token, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_open_errors, setup_fds, teardown_fds),
    cmocka_unit_test_setup_teardown(test_make_token, setup_fds, teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
