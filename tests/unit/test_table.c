/* test_table.c - the one table printer (src/table.c): alignment, UTF-8
 * widths, cutting to a total width, --wide columns, CSV quoting and CRLF
 * (RFC 4180), JSON types, and the same rows in all three. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table.h"

static const eg_col cols[] = {
  {"slot"},
  {"units", EG_RIGHT},
  {"yield", EG_RIGHT},
  {"message", .shrink = true},
  {"port", .wide = true},
};

static eg_table *sample(void) {
  eg_table *t = eg_table_new(cols, 5);
  assert_non_null(t);
  eg_table_str(t, "A1");
  eg_table_int(t, 16);
  eg_table_num(t, 93.75, 2);
  eg_table_str(t, "say \"hi\", then\nstop");
  eg_table_str(t, "/dev/ttyUSB0");
  eg_table_str(t, "Zürich-7");
  eg_table_int(t, 2);
  eg_table_num(t, 0.0 / 0.0, 2);
  eg_table_null(t);
  eg_table_str(t, "socket://127.0.0.1:5000");
  return t;
}

static char *render(eg_table *t, int how, unsigned width, bool wide) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  eg_err r = EG_OK;
  if (how == 0) r = eg_table_text(t, m, width, wide);
  else if (how == 1) r = eg_table_csv(t, m, wide);
  else {
    eg_jw w;
    eg_jw_start(&w, m);
    r = eg_table_json(t, &w, "rows", wide);
    assert_true(eg_jw_finish(&w));
  }
  fclose(m);
  assert_int_equal(r, EG_OK);
  return buf;
}

static void expect(const char *got, const char *want) {
  if (strcmp(got, want) != 0) fail_msg("got:\n%s\nwant:\n%s", got, want);
}

static void test_text_aligned(void **state) {
  (void)state;
  eg_table *t = sample();
  assert_int_equal(eg_table_rows(t), 2);
  char *s = render(t, 0, 0, false);
  expect(s, "slot      units  yield  message\n"
            "A1           16  93.75  say \"hi\", then stop\n"
            "Zürich-7      2      -  -\n");
  free(s);
  s = render(t, 0, 0, true);
  expect(s, "slot      units  yield  message              port\n"
            "A1           16  93.75  say \"hi\", then stop  /dev/ttyUSB0\n"
            "Zürich-7      2      -  -                    socket://127.0.0.1:5000\n");
  free(s);
  eg_table_free(t);
}

/* 35 columns: only the shrinkable message column is cut, with an ellipsis. */
static void test_text_cut_to_width(void **state) {
  (void)state;
  eg_table *t = sample();
  char *s = render(t, 0, 35, false);
  expect(s, "slot      units  yield  message\n"
            "A1           16  93.75  say \"hi\", …\n"
            "Zürich-7      2      -  -\n");
  /* Every line within 35 code points. */
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    size_t w = 0;
    for (const char *p = line; *p; p++) w += ((unsigned char)*p & 0xC0) != 0x80;
    if (w > 35) fail_msg("line of %zu columns: %s", w, line);
  }
  free(s);
  /* Narrower than the fixed columns allow: cut down to the header, no further. */
  s = render(t, 0, 10, false);
  expect(s, "slot      units  yield  message\n"
            "A1           16  93.75  say \"h…\n"
            "Zürich-7      2      -  -\n");
  free(s);
  eg_table_free(t);
}

static void test_csv_rfc4180(void **state) {
  (void)state;
  eg_table *t = sample();
  char *s = render(t, 1, 0, true);
  expect(s, "slot,units,yield,message,port\r\n"
            "A1,16,93.75,\"say \"\"hi\"\", then\nstop\",/dev/ttyUSB0\r\n"
            "Zürich-7,2,,,socket://127.0.0.1:5000\r\n");
  free(s);
  s = render(t, 1, 0, false);
  expect(s, "slot,units,yield,message\r\nA1,16,93.75,\"say \"\"hi\"\", then\nstop\"\r\nZürich-7,2,,\r\n");
  free(s);
  eg_table_free(t);
}

static void test_json_types(void **state) {
  (void)state;
  eg_table *t = sample();
  char *s = render(t, 2, 0, false);
  expect(s, "{\"rows\":[\n"
            "{\"slot\":\"A1\",\"units\":16,\"yield\":93.75,\"message\":\"say \\\"hi\\\", then\\nstop\"},\n"
            "{\"slot\":\"Zürich-7\",\"units\":2,\"yield\":null,\"message\":null}\n"
            "]}\n");
  free(s);
  eg_table_free(t);
  /* No rows: an empty array, the header only in text and CSV. */
  t = eg_table_new(cols, 5);
  s = render(t, 2, 0, false);
  expect(s, "{\"rows\":[]}\n");
  free(s);
  s = render(t, 1, 0, false);
  expect(s, "slot,units,yield,message\r\n");
  free(s);
  eg_table_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_text_aligned),
    cmocka_unit_test(test_text_cut_to_width),
    cmocka_unit_test(test_csv_rfc4180),
    cmocka_unit_test(test_json_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
