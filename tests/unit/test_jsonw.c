/* test_jsonw.c - the one JSON writer (src/jsonw.c): one-line events,
 * streamed documents with nested objects and arrays, escaping (RFC 8259,
 * invalid UTF-8 as U+FFFD), null and fixed-point numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonw.h"

static void expect(const char *got, const char *want) {
  if (!got || strcmp(got, want) != 0) fail_msg("got:\n%s\nwant:\n%s", got ? got : "(null)", want);
}

static void test_event_line(void **state) {
  (void)state;
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "unit_done");
  eg_jw_int(&w, "n", -3);
  eg_jw_uint(&w, "bytes", 18446744073709551615ULL);
  eg_jw_num(&w, "rate", 1.5);
  eg_jw_bool(&w, "ok", false);
  eg_jw_str(&w, "none", NULL);
  eg_jw_str(&w, "msg", "a\"b\\c\n\x01\xff é");
  char *s = eg_jw_close(&w);
  expect(s, "{\"event\":\"unit_done\",\"n\":-3,\"bytes\":18446744073709551615,\"rate\":1.500,\"ok\":false,"
            "\"none\":null,\"msg\":\"a\\\"b\\\\c\\n\\u0001\\ufffd é\"}");
  free(s);
}

static void test_document(void **state) {
  (void)state;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  eg_jw w;
  eg_jw_start(&w, m);
  eg_jw_str(&w, "report", "units");
  eg_jw_object(&w, "filters");
  eg_jw_null(&w, "station");
  eg_jw_end(&w);
  eg_jw_array(&w, "units");
  for (int i = 0; i < 2; i++) {
    eg_jw_newline(&w);
    eg_jw_object(&w, NULL);
    eg_jw_int(&w, "i", i);
    eg_jw_fixed(&w, "yield", 2.0 / 3.0 * 100, 2);
    eg_jw_array(&w, "empty");
    eg_jw_end(&w);
    eg_jw_end(&w);
  }
  eg_jw_newline(&w);
  eg_jw_end(&w);
  eg_jw_array(&w, "open");
  eg_jw_int(&w, NULL, 7);
  eg_jw_fixed(&w, NULL, 0.0 / 0.0, 1);
  assert_true(eg_jw_finish(&w)); /* closes "open" and the document */
  fclose(m);
  expect(buf, "{\"report\":\"units\",\"filters\":{\"station\":null},\"units\":[\n"
              "{\"i\":0,\"yield\":66.67,\"empty\":[]},\n"
              "{\"i\":1,\"yield\":66.67,\"empty\":[]}\n"
              "],\"open\":[7,null]}\n");
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_event_line),
    cmocka_unit_test(test_document),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
