/* test_port_list.c - the port list (libserialport's enumeration, whatever
 * this machine has: maybe nothing) and its two printed forms, the table and
 * the JSON lines of `espgang ports` (src/cli/cmd_ports.c, compiled in here:
 * the CLI is no library). tests/preload's fake USB adapter gives the list a
 * known entry in the integration test ports_preload.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fdcheck.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port.h"

#include "../../src/cli/cmd_ports.c"

/* cmd_ports.c reports usage errors through the CLI's printer. */
void eg_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

static void test_port_list(void **state) {
  (void)state;
  eg_port_info *list = (eg_port_info *)1;
  size_t n = 12345;
  assert_int_equal(eg_port_list(&list, &n), EG_OK);
  assert_true((n == 0) == (list == NULL));
  for (size_t i = 0; i < n; i++) {
    const eg_port_info *in = &list[i];
    assert_true(strncmp(in->name, "/dev/", 5) == 0);
    if (i) assert_true(strverscmp(list[i - 1].name, in->name) <= 0);
    assert_true(!strcmp(in->transport, "native") || !strcmp(in->transport, "usb") ||
                !strcmp(in->transport, "bluetooth"));
    assert_int_equal(in->usb, strcmp(in->transport, "usb") == 0);
    if (!in->usb) {
      assert_int_equal(in->vid, -1);
      assert_int_equal(in->pid, -1);
      assert_string_equal(in->serial, "");
    } else {
      assert_true(in->vid >= -1 && in->vid <= 0xffff);
      assert_true(in->pid >= -1 && in->pid <= 0xffff);
    }
    char real[PATH_MAX], lreal[PATH_MAX];
    if (in->by_id[0]) {
      assert_true(strncmp(in->by_id, "/dev/serial/by-id/", 18) == 0);
      assert_non_null(realpath(in->name, real));
      assert_non_null(realpath(in->by_id, lreal));
      assert_string_equal(real, lreal);
    }
    if (in->by_path[0]) {
      assert_true(strncmp(in->by_path, "/dev/serial/by-path/", 20) == 0);
      assert_non_null(realpath(in->name, real));
      assert_non_null(realpath(in->by_path, lreal));
      assert_string_equal(real, lreal);
    }
  }

  /* Both printed forms agree with the list. */
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  assert_non_null(out);
  eg_ports_print(out, list, n, true);
  fclose(out);
  size_t lines = 0;
  for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
  assert_int_equal(lines, n);
  for (size_t i = 0; i < n; i++) assert_non_null(strstr(buf, list[i].name));
  free(buf);

  out = open_memstream(&buf, &len);
  assert_non_null(out);
  eg_ports_print(out, list, n, false);
  fclose(out);
  if (n == 0) assert_string_equal(buf, "no serial ports found\n");
  else assert_true(strncmp(buf, "PORT ", 5) == 0);
  free(buf);
  eg_port_list_free(list, n);
  eg_port_list_free(NULL, 0);
}

/* Terminal columns from line to at: bytes that start a UTF-8 code point. */
static ptrdiff_t display_cols(const char *line, const char *at) {
  ptrdiff_t n = 0;
  for (const char *p = line; p < at; p++)
    if (((unsigned char)*p & 0xC0) != 0x80) n++;
  return n;
}

static void test_print_infos(void **state) {
  (void)state;
  eg_port_info in[2];
  memset(in, 0, sizeof in);
  snprintf(in[0].name, sizeof in[0].name, "/dev/ttyUSB0");
  snprintf(in[0].transport, sizeof in[0].transport, "usb");
  snprintf(in[0].description, sizeof in[0].description, "CP2102 \"x\"\\");
  in[0].usb = true;
  in[0].vid = 0x10c4, in[0].pid = 0xea60, in[0].bus = 1, in[0].address = 7;
  snprintf(in[0].location, sizeof in[0].location, "1-1.4");
  snprintf(in[0].serial, sizeof in[0].serial, "0001\n");
  snprintf(in[0].manufacturer, sizeof in[0].manufacturer, "Silicon Labs \xff");
  snprintf(in[0].product, sizeof in[0].product, "caf\xc3\xa9 \xed\xa0\x80 \x01");
  snprintf(in[0].by_id, sizeof in[0].by_id, "/dev/serial/by-id/usb-x");
  snprintf(in[1].name, sizeof in[1].name, "/dev/ttyS0");
  snprintf(in[1].transport, sizeof in[1].transport, "native");
  snprintf(in[1].description, sizeof in[1].description, "ttyS0");
  in[1].vid = in[1].pid = in[1].bus = in[1].address = -1;

  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  assert_non_null(out);
  eg_ports_print(out, in, 2, true);
  fclose(out);
  assert_string_equal(buf,
                      "{\"name\":\"/dev/ttyUSB0\",\"transport\":\"usb\",\"description\":\"CP2102 \\\"x\\\"\\\\\","
                      "\"vid\":4292,\"pid\":60000,\"bus\":1,\"address\":7,\"location\":\"1-1.4\","
                      "\"serial\":\"0001\\n\",\"manufacturer\":\"Silicon Labs \\ufffd\","
                      "\"product\":\"caf\xc3\xa9 \\ufffd\\ufffd\\ufffd \\u0001\",\"by_path\":null,"
                      "\"by_id\":\"/dev/serial/by-id/usb-x\"}\n"
                      "{\"name\":\"/dev/ttyS0\",\"transport\":\"native\",\"description\":\"ttyS0\","
                      "\"vid\":null,\"pid\":null,\"bus\":null,\"address\":null,\"location\":null,"
                      "\"serial\":null,\"manufacturer\":null,\"product\":null,\"by_path\":null,\"by_id\":null}\n");
  free(buf);

  out = open_memstream(&buf, &len);
  assert_non_null(out);
  eg_ports_print(out, in, 2, false);
  fclose(out);
  /* Three lines; every column starts at the same offset on each. */
  char *l0 = buf, *l1 = strchr(l0, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
  assert_non_null(strchr(l2, '\n'));
  assert_int_equal(strchr(l2, '\n')[1], '\0');
  assert_true(strncmp(l0, "PORT ", 5) == 0);
  const ptrdiff_t vidcol = strstr(l0, "VID:PID") - l0;
  assert_int_equal(strstr(l1, "10c4:ea60") - l1, vidcol);
  assert_int_equal(l2[vidcol], '-');
  const ptrdiff_t loccol = strstr(l0, "LOCATION") - l0;
  assert_int_equal(strstr(l1, "1-1.4") - l1, loccol);
  /* After the description, columns are counted as a terminal shows them:
   * one per UTF-8 code point ("caf\xc3\xa9" is four), not per byte. */
  const ptrdiff_t idcol = strstr(l0, "BY-ID") - l0;
  assert_int_equal(display_cols(l1, strstr(l1, "/dev/serial/by-id/usb-x")), idcol);
  assert_int_equal(l2[idcol], '-');
  assert_non_null(strstr(l2, "ttyS0"));
  /* The serial's newline did not break the row. */
  assert_non_null(strstr(l1, "0001 "));
  free(buf);

  out = open_memstream(&buf, &len);
  assert_non_null(out);
  eg_ports_print(out, NULL, 0, false);
  eg_ports_print(out, NULL, 0, true);
  fclose(out);
  assert_string_equal(buf, "no serial ports found\n");
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_port_list, setup_fds, teardown_fds),
    cmocka_unit_test(test_print_infos),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
