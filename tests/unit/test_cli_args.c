/* test_cli_args.c - src/cli/args.c: the command line's parser and help.
 *
 * The help must stay true to what the parser accepts: every option of the
 * table appears in the help of each command that takes it (and in no other
 * command's), every option-looking word of every help text is an option
 * that command takes, and each command's help is its own (write-flash's
 * lists -fm, flash's does not). Then every parse error exits 2 with one
 * line, and values are parsed exactly (no wrap-around, no silent
 * truncation of long "--port=..." arguments).
 *
 * args.c lives in the espgang executable, not in the core library, so it
 * is compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "../../src/cli/args.c"

/* ------------------------------------------------------------ helpers */

/* The help of `command` (NULL: global) as a malloc'd string. */
static char *help_of(const char *command) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_true(eg_cli_print_help(f, command));
  assert_int_equal(fclose(f), 0);
  return buf;
}

/* Does `text` hold `word` as a whole word (not inside "--no-stub" for
 * "--stub", nor "-fm" for "-f")? */
static bool has_word(const char *text, const char *word) {
  const size_t n = strlen(word);
  for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
    const bool start = p == text || strchr(" ,([\n", p[-1]);
    const bool end = !p[n] || strchr(" ,)]\n=:", p[n]);
    if (start && end) return true;
  }
  return false;
}

/* Parse a command line given as one string (split at spaces). stderr goes
 * to a temp file: *err gets what was printed (malloc'd). */
static int parse_str(const char *line, eg_cli *c, eg_cli_request *req, char **err) {
  static char storage[4096];
  char *argv[64];
  int argc = 0;
  snprintf(storage, sizeof storage, "espgang %s", line);
  for (char *save = NULL, *t = strtok_r(storage, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
    argv[argc++] = t;
  argv[argc] = NULL;
  fflush(stderr);
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  const int saved = dup(2);
  dup2(fileno(tmp), 2);
  const int rc = eg_cli_parse(argc, argv, c, req);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  const long n = ftell(tmp) >= 0 ? (fseek(tmp, 0, SEEK_END), ftell(tmp)) : 0;
  rewind(tmp);
  *err = calloc((size_t)n + 1, 1);
  assert_int_equal(fread(*err, 1, (size_t)n, tmp), (size_t)n);
  fclose(tmp);
  return rc;
}

/* Must fail with exit 2 and one line on stderr containing `needle`. */
static void refused(const char *line, const char *needle) {
  eg_cli c;
  eg_cli_request req;
  char *err = NULL;
  const int rc = parse_str(line, &c, &req, &err);
  const char *nl = strchr(err, '\n');
  if (rc != EG_EXIT_USAGE || !strstr(err, needle) || !nl || nl[1] || strncmp(err, "espgang: ", 9) != 0)
    fail_msg("'%s': exit %d, stderr \"%s\"; want exit 2 and one line with \"%s\"", line, rc, err, needle);
  free(err);
  eg_cli_release(&c);
}

static void accepted(const char *line, eg_cli *c, eg_cli_request *req) {
  char *err = NULL;
  const int rc = parse_str(line, c, req, &err);
  if (rc != EG_EXIT_OK || *err) fail_msg("'%s': exit %d, stderr \"%s\"", line, rc, err);
  free(err);
}

/* ------------------------------------------------------------ help */

static void test_help_lists_exactly_what_is_accepted(void **state) {
  (void)state;
  size_t nopts = 0, ncmds = 0;
  while (eg_cli_option_name(nopts, NULL)) nopts++;
  while (eg_cli_command_name(ncmds)) ncmds++;
  assert_true(nopts >= 20);
  assert_true(ncmds >= 15);
  char *global = help_of(NULL);
  for (size_t k = 0; k < ncmds; k++) {
    const char *cname = eg_cli_command_name(k);
    char *h = help_of(cname);
    char usage[64];
    snprintf(usage, sizeof usage, "usage: espgang %s ", cname);
    if (strncmp(h, usage, strlen(usage)) != 0) fail_msg("%s: help does not start with \"%s\":\n%s", cname, usage, h);
    for (size_t i = 0; i < nopts; i++) {
      const char *shortn = NULL;
      const char *longn = eg_cli_option_name(i, &shortn);
      const bool takes = eg_cli_command_takes(cname, longn);
      if (has_word(h, longn) != takes)
        fail_msg("%s --help %s %s, but the parser %s it:\n%s", cname, takes ? "does not list" : "lists", longn,
                 takes ? "takes" : "refuses", h);
      if (shortn && has_word(h, shortn) != takes) fail_msg("%s --help and %s (%s) disagree", cname, shortn, longn);
    }
    /* Every option-looking word of the help is an option of this command. */
    for (const char *p = h; (p = strstr(p, " -")); p++) {
      char word[32];
      size_t n = 0;
      const char *q = p + 1;
      while (q[n] && (q[n] == '-' || (q[n] >= 'a' && q[n] <= 'z')) && n < sizeof word - 1) n++;
      memcpy(word, q, n);
      word[n] = '\0';
      if (n < 2 || !strcmp(word, "--")) continue;
      const opt *o = find_opt(word);
      if (!o) fail_msg("%s --help mentions %s, which is no option", cname, word);
      if (!eg_cli_command_takes(cname, o->long_name)) fail_msg("%s --help mentions %s, which %s refuses", cname, word, cname);
    }
    if (strcmp(cname, "help") && strcmp(cname, "version") && !has_word(global, cname))
      fail_msg("the global help does not list the command %s", cname);
    free(h);
  }
  /* Every option is in some help, and the global help says how to get the rest. */
  for (size_t i = 0; i < nopts; i++) {
    const char *longn = eg_cli_option_name(i, NULL);
    bool somewhere = false;
    for (size_t k = 0; k < ncmds && !somewhere; k++) {
      char *h = help_of(eg_cli_command_name(k));
      somewhere = has_word(h, longn);
      free(h);
    }
    if (!somewhere) fail_msg("option %s is in no help text", longn);
  }
  assert_non_null(strstr(global, "espgang COMMAND --help"));
  free(global);
  assert_false(eg_cli_print_help(stdout, "no-such-command"));
}

/* Each help's %s is filled from the settings and tables, never printed raw,
 * and each line fits the terminal. */
static void test_help_text_is_filled_and_wrapped(void **state) {
  (void)state;
  for (size_t k = 0;; k++) {
    const char *cname = k == 0 ? NULL : eg_cli_command_name(k - 1);
    if (k > 0 && !cname) break;
    char *h = help_of(cname);
    if (strchr(h, '%')) fail_msg("%s: unfilled %% in help:\n%s", cname ? cname : "global", h);
    for (const char *line = h; *line;) {
      const size_t n = strcspn(line, "\n");
      if (n > HELP_WIDTH) fail_msg("%s: help line of %zu columns: %.*s", cname ? cname : "global", n, (int)n, line);
      line += n + (line[n] == '\n');
    }
    free(h);
  }
  char *w = help_of("write-flash");
  assert_non_null(strstr(w, "(default 460800)"));
  assert_non_null(strstr(w, "9600..5000000"));
  assert_non_null(strstr(w, "default-reset (default)"));
  free(w);
}

/* ------------------------------------------------------------ parsing */

static void test_help_requests(void **state) {
  (void)state;
  eg_cli c;
  eg_cli_request req;
  accepted("write_flash --help", &c, &req);
  assert_true(req.help);
  assert_string_equal(c.command, "write-flash");
  eg_cli_release(&c);
  accepted("-h erase_region", &c, &req);
  assert_true(req.help);
  assert_string_equal(c.command, "erase-region");
  eg_cli_release(&c);
  accepted("help read_flash", &c, &req);
  assert_true(req.help);
  assert_string_equal(c.command, "read-flash");
  eg_cli_release(&c);
  accepted("--help", &c, &req);
  assert_true(req.help);
  assert_null(c.command);
  eg_cli_release(&c);
  accepted("version", &c, &req);
  assert_true(req.version);
  eg_cli_release(&c);
  refused("help nothing", "help: unknown command 'nothing'");
  refused("version 2", "usage: espgang version");
}

static void test_values(void **state) {
  (void)state;
  eg_cli c;
  eg_cli_request req;
  /* A long --port=... is not cut into an unknown option. */
  char line[512];
  snprintf(line, sizeof line, "--port=socket://127.0.0.1:5001/%0200d flash_id -b 921600 --before=no_reset", 7);
  accepted(line, &c, &req);
  assert_int_equal(c.nports, 1);
  assert_int_equal(strlen(c.ports[0]), strlen("socket://127.0.0.1:5001/") + 200);
  assert_int_equal(c.baud, 921600);
  assert_int_equal(c.before, EG_BEFORE_NO_RESET);
  eg_cli_release(&c);
  /* Defaults come from eg_settings_default. */
  accepted("-p x read_mac", &c, &req);
  eg_settings d;
  eg_settings_default(&d);
  assert_int_equal(c.connect_attempts, d.connect_attempts);
  assert_int_equal(c.before, d.before);
  assert_int_equal(c.after, d.after);
  assert_int_equal(c.compress, d.compress);
  eg_cli_release(&c);
  /* "--" ends the options: a file named like an option. */
  accepted("-p x write_flash -- 0x1000 -weird.bin", &c, &req);
  assert_int_equal(c.nargs, 2);
  assert_string_equal(c.args[1], "-weird.bin");
  eg_cli_release(&c);
  accepted("runs db --limit 5", &c, &req);
  assert_int_equal(c.limit, 5);
  eg_cli_release(&c);
  accepted("report db --run 9223372036854775807", &c, &req);
  assert_true(c.run_id == 9223372036854775807LL);
  eg_cli_release(&c);

  uint32_t u = 0;
  assert_true(eg_cli_parse_u32("0x1000", &u) && u == 0x1000);
  assert_true(eg_cli_parse_u32("4k", &u) && u == 4096);
  assert_true(eg_cli_parse_u32("4MB", &u) && u == 4u << 20);
  assert_true(eg_cli_parse_u32("4095m", &u) && u == 4095u << 20);
  assert_false(eg_cli_parse_u32("4096m", &u));                 /* 4 GiB: one past */
  assert_false(eg_cli_parse_u32("0x40000000000000k", &u));     /* 2^64 after the multiply: used to wrap to 0 */
  assert_false(eg_cli_parse_u32("-1", &u));
  assert_false(eg_cli_parse_u32(" 5", &u));
  assert_false(eg_cli_parse_u32("0x", &u));
  assert_false(eg_cli_parse_u32("", &u));
  assert_false(eg_cli_parse_u32("12q", &u));
}

/* Every parse error: exit 2, one line, saying what is wrong. */
static void test_errors_exit_2(void **state) {
  (void)state;
  refused("bogus", "unknown command 'bogus'");
  refused("--bogus flash_id", "unknown option --bogus");
  refused("--port", "option --port needs a value (PORT)");
  refused("flash_id --json=yes", "option --json takes no value");
  refused("-b 100 flash_id", "invalid baud rate '100' (9600..5000000)");
  refused("-b 5000001 flash_id", "invalid baud rate");
  refused("-b 0x40000000000000k flash_id", "invalid baud rate");
  refused("-c esp99 flash_id", "unknown chip 'esp99'");
  refused("--before sometimes flash_id", "invalid --before 'sometimes'");
  refused("--after never flash_id", "invalid --after 'never'");
  refused("--connect-attempts 0 flash_id", "invalid --connect-attempts '0' (1..100)");
  refused("--connect-attempts 101 flash_id", "(1..100)");
  refused("runs db --limit 0", "invalid --limit '0'");
  refused("runs db --limit 4294967295", "invalid --limit");   /* used to become a negative int */
  refused("report db --run 0", "invalid --run '0'");
  refused("report db --run 99999999999999999999", "invalid --run"); /* used to clamp to LLONG_MAX */
  refused("report db --run 5x", "invalid --run");
  refused("--port= flash_id", "empty port name");
  refused("--stub= -p x flash_id", "empty path");
  refused("flash m.yaml --operator=", "empty name");
  /* Options a command would silently ignore. */
  refused("flash m.yaml -b 921600", "option --baud does not apply to flash (see espgang flash --help)");
  refused("-p /dev/ttyUSB0 flash m.yaml", "option --port does not apply to flash");
  refused("flash m.yaml --stub x", "option --stub does not apply to flash");
  refused("write_flash --operator me 0 a.bin", "option --operator does not apply to write-flash");
  refused("verify_flash -z 0 a.bin", "option --compress does not apply to verify-flash");
  refused("read_mac --limit 3", "option --limit does not apply to read-mac");
  refused("runs db --run 3", "option --run does not apply to runs");
  refused("ports -p x", "option --port does not apply to ports");
  refused("--json", "option --json needs a command");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_help_lists_exactly_what_is_accepted),
    cmocka_unit_test(test_help_text_is_filled_and_wrapped),
    cmocka_unit_test(test_help_requests),
    cmocka_unit_test(test_values),
    cmocka_unit_test(test_errors_exit_2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
