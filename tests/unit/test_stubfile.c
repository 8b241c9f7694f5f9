/* test_stubfile.c - src/stubfile.c: parsing stub JSON (decimal and hex
 * integers, base64 checked against OpenSSL's encoder, unknown keys of any
 * shape skipped, every malformation reported with file, key and line:column),
 * and finding the file (each layout and the search order, in fake trees).
 *
 * Hermetic: everything is written by the test into a mkdtemp folder, except
 * test_real_files: esptool-js's own stub files from node_modules (after
 * `npm ci`) and any file ESPGANG_TEST_STUB_JSON names (colon-separated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chips.h"
#include "stubfile.h"

/* ------------------------------------------------------------ helpers */

static void contains(const char *what, const char *hay, const char *needle) {
  if (!strstr(hay, needle)) fail_msg("%s: \"%s\" does not contain \"%s\"", what, hay, needle);
}

static void bytes_eq(const char *what, const uint8_t *got, size_t ngot, const uint8_t *want, size_t nwant) {
  if (ngot == nwant && (nwant == 0 || memcmp(got, want, nwant) == 0)) return;
  size_t first = 0;
  while (first < ngot && first < nwant && got[first] == want[first]) first++;
  fail_msg("%s: lengths %zu / %zu, first difference at %zu", what, ngot, nwant, first);
}

static const eg_chip *esp32(void) { return eg_chip_get(EG_CHIP_ESP32); }

static eg_err load_str(eg_stub *s, const char *json, eg_fault *f) {
  eg_fault_clear(f);
  return eg_stub_load_mem(s, json, strlen(json), "t.json", f);
}

/* Parse must fail with EG_STUB_FORMAT and a message holding every needle. */
static void bad(const char *json, const char *n1, const char *n2) {
  eg_stub s;
  eg_fault f;
  const eg_err e = load_str(&s, json, &f);
  if (e != EG_STUB_FORMAT) fail_msg("accepted or wrong error (%s) for: %s", eg_err_name(e), json);
  assert_int_equal(f.code, EG_STUB_FORMAT);
  contains(json, f.msg, "stub file t.json");
  if (n1) contains(json, f.msg, n1);
  if (n2) contains(json, f.msg, n2);
  assert_null(s.text);
  assert_null(s.data);
  assert_null(strchr(f.msg, '\n'));
}

typedef struct tmp {
  char dir[64];
  char cwd[4096];
} tmp;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int tmp_setup(void **state) {
  tmp *t = calloc(1, sizeof *t);
  snprintf(t->dir, sizeof t->dir, "/tmp/eg_stub_XXXXXX");
  if (!mkdtemp(t->dir) || !getcwd(t->cwd, sizeof t->cwd)) return -1;
  *state = t;
  return 0;
}

static int tmp_teardown(void **state) {
  tmp *t = *state;
  if (chdir(t->cwd) != 0) return -1;
  nftw(t->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  free(t);
  return 0;
}

/* mkdir -p of the folder part of path, then write a file there. */
static void put(const char *path, const char *content) {
  char d[4096];
  snprintf(d, sizeof d, "%s", path);
  for (char *p = d + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(d, 0755);
      *p = '/';
    }
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(content, fp);
  assert_int_equal(fclose(fp), 0);
}

static void mkdirs(const char *path) {
  char f[4096];
  snprintf(f, sizeof f, "%s/.keep", path);
  put(f, "");
}

/* A valid stub whose entry tells the files apart. */
static const char *stub_json(char *buf, size_t cap, unsigned tag) {
  snprintf(buf, cap, "{\"entry\": %u, \"text\": \"AAEC\", \"text_start\": %u}", 0x40080000u + tag, 0x40080000u);
  return buf;
}

/* ------------------------------------------------------------ parsing */

static void test_parse_esptool_js_shape(void **state) {
  (void)state;
  /* The shape esptool-js 0.7.0 ships (decimal integers, 4-space indent). */
  const char *json = "{\n"
                     "    \"entry\": 1074434092,\n"
                     "    \"text\": \"AAECAwQ=\",\n"
                     "    \"text_start\": 1074429952,\n"
                     "    \"data\": \"3q2+7w==\",\n"
                     "    \"data_start\": 1073606000,\n"
                     "    \"bss_start\": 1073528832\n"
                     "}\n";
  eg_stub s;
  eg_fault f;
  assert_int_equal(load_str(&s, json, &f), EG_OK);
  assert_int_equal(s.entry, 0x400A902C);
  assert_int_equal(s.text_start, 0x400A8000);
  const uint8_t text[] = {0, 1, 2, 3, 4};
  bytes_eq("text", s.text, s.text_len, text, sizeof text);
  const uint8_t data[] = {0xDE, 0xAD, 0xBE, 0xEF};
  bytes_eq("data", s.data, s.data_len, data, sizeof data);
  assert_int_equal(s.data_start, 1073606000u);
  assert_true(s.has_bss);
  assert_int_equal(s.bss_start, 0x3FFCC000);
  assert_string_equal(s.path, "t.json");
  eg_stub_free(&s);
  assert_null(s.text);
  eg_stub_free(&s);
}

static void test_parse_hex_optional_and_unknown(void **state) {
  (void)state;
  /* Hex quoted and plain; no data, no bss; plugin keys of every shape,
   * including the nested object esptool's set-2 ESP32-S3 file carries. */
  const char *json = "{\"text_start\": \"0x400A8000\", \"entry\": 0X400a902C,\n"
                     " \"plugin_first_opcode\": 213, \"plugin_table_offset\": 156,\n"
                     " \"plugins\": {\"nand\": {\"text\": \"!!not base64!!\", \"handlers\": {\"0xD5\": [1, {\"a\": []}]}}},\n"
                     " \"future\": [[[]], null, true],\n"
                     " \"text\": \"/+8=\"}";
  eg_stub s;
  eg_fault f;
  if (load_str(&s, json, &f) != EG_OK) fail_msg("%s", f.msg);
  assert_int_equal(s.text_start, 0x400A8000);
  assert_int_equal(s.entry, 0x400A902C);
  const uint8_t text[] = {0xFF, 0xEF};
  bytes_eq("text", s.text, s.text_len, text, sizeof text);
  assert_null(s.data);
  assert_int_equal(s.data_len, 0);
  assert_false(s.has_bss);
  eg_stub_free(&s);

  /* Integer bounds. */
  assert_int_equal(load_str(&s, "{\"text\": \"AA==\", \"text_start\": 0, \"entry\": 4294967295}", &f), EG_OK);
  assert_int_equal(s.entry, 0xFFFFFFFFu);
  assert_int_equal(s.text_len, 1);
  eg_stub_free(&s);
  assert_int_equal(load_str(&s, "{\"text\": \"AA==\", \"text_start\": 0, \"entry\": 0xffffffff}", &f), EG_OK);
  assert_int_equal(s.entry, 0xFFFFFFFFu);
  eg_stub_free(&s);
  /* Empty data: nothing to upload. */
  assert_int_equal(load_str(&s, "{\"text\": \"AA==\", \"text_start\": 0, \"entry\": 0, \"data\": \"\", \"data_start\": 5}", &f), EG_OK);
  assert_null(s.data);
  eg_stub_free(&s);
  /* Block YAML is YAML too (and JSON with "\/" escapes is JSON). */
  assert_int_equal(load_str(&s, "text: \"A\\/8=\"\ntext_start: 16\nentry: 17\n", &f), EG_OK);
  const uint8_t slash[] = {0x03, 0xFF};
  bytes_eq("escaped slash", s.text, s.text_len, slash, sizeof slash);
  eg_stub_free(&s);
}

/* The ways a JSON writer may format the same object. */
static void test_parse_json_formatting(void **state) {
  (void)state;
  static const char *const forms[] = {
    "{\"entry\":1,\"text\":\"AA==\",\"text_start\":2,\"plugins\":{\"a\":[1,2]}}",                /* compact */
    "{\n\t\"entry\": 1,\n\t\"text\": \"AA==\",\n\t\"text_start\": 2\n}",                       /* tabs */
    "{\r\n  \"entry\": 1,\r\n  \"text\": \"AA==\",\r\n  \"text_start\": 2\r\n}\r\n",              /* CRLF */
    "\xef\xbb\xbf{\"entry\": 1, \"text\": \"AA==\", \"text_start\": 2}",                        /* UTF-8 BOM */
    "{\"entry\": 1, \"text\": \"AA==\", \"text_start\": 2, \"plugin_x\": \"\\u00e9\"}\n\n",       /* escapes */
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    eg_stub s;
    eg_fault f;
    if (load_str(&s, forms[i], &f) != EG_OK) fail_msg("form %zu: %s", i, f.msg);
    assert_int_equal(s.entry, 1);
    assert_int_equal(s.text_start, 2);
    assert_int_equal(s.text_len, 1);
    assert_int_equal(s.text[0], 0);
    eg_stub_free(&s);
  }
}

/* Every length 1..70 and every byte value, encoded by OpenSSL (an
 * independent encoder), with line breaks every 76 characters as MIME does. */
static void test_base64_against_openssl(void **state) {
  (void)state;
  uint8_t raw[300];
  for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 151 + 7);
  for (size_t n = 1; n <= sizeof raw; n = n < 70 ? n + 1 : n * 2) {
    if (n > sizeof raw) n = sizeof raw;
    char enc[512], wrapped[600], json[800];
    const int len = EVP_EncodeBlock((unsigned char *)enc, raw, (int)n);
    size_t o = 0;
    for (int i = 0; i < len; i++) {
      if (i && i % 76 == 0) wrapped[o++] = ' '; /* whitespace inside the string is skipped */
      wrapped[o++] = enc[i];
    }
    wrapped[o] = '\0';
    snprintf(json, sizeof json, "{\"text\": \"%s\", \"text_start\": 1, \"entry\": 2}", wrapped);
    eg_stub s;
    eg_fault f;
    if (load_str(&s, json, &f) != EG_OK) fail_msg("n=%zu: %s", n, f.msg);
    bytes_eq("base64", s.text, s.text_len, raw, n);
    eg_stub_free(&s);
    if (n == sizeof raw) break;
  }
}

static void test_parse_errors(void **state) {
  (void)state;
  /* Missing required keys: the key is named. */
  bad("{\"text\": \"AA==\", \"text_start\": 1}", "'entry'", "missing");
  bad("{\"entry\": 1, \"text_start\": 1}", "'text'", "missing");
  bad("{\"text\": \"AA==\", \"entry\": 1}", "'text_start'", "missing");
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 2, \"data\": \"AA==\"}", "'data' without 'data_start'", NULL);
  /* Integers. */
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 4294967296}", "'entry'", "4294967296");
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 0x100000000}", "'entry'", "32-bit");
  bad("{\"text\": \"AA==\", \"text_start\": -1, \"entry\": 1}", "'text_start'", "'-1'");
  bad("{\"text\": \"AA==\", \"text_start\": 1.5, \"entry\": 1}", "'text_start'", "'1.5'");
  bad("{\"text\": \"AA==\", \"text_start\": 1e3, \"entry\": 1}", "'text_start'", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": 0x, \"entry\": 1}", "'text_start'", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": 0755, \"entry\": 1}", "'text_start'", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": \"\", \"entry\": 1}", "'text_start'", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": null, \"entry\": 1}", "'text_start'", "'null'");
  bad("{\"text\": \"AA==\", \"text_start\": [1], \"entry\": 1}", "'text_start'", "an array");
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"bss_start\": {}, \"entry\": 1}", "'bss_start'", "an object");
  /* Base64. */
  bad("{\"text\": \"AA*=\", \"text_start\": 1, \"entry\": 1}", "'text'", "0x2a");
  bad("{\"text\": \"AAE\", \"text_start\": 1, \"entry\": 1}", "'text'", "padding");
  bad("{\"text\": \"AA=A\", \"text_start\": 1, \"entry\": 1}", "'text'", "after '='");
  bad("{\"text\": \"A===\", \"text_start\": 1, \"entry\": 1}", "'text'", "padding");
  bad("{\"text\": \"\", \"text_start\": 1, \"entry\": 1}", "'text'", "empty");
  bad("{\"text\": 12, \"text_start\": 1, \"entry\": 1}", "'text'", "padding");
  bad("{\"text\": [\"AA==\"], \"text_start\": 1, \"entry\": 1}", "'text'", "a base64 string");
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 1, \"data\": \"%%%%\", \"data_start\": 0}", "'data'", NULL);
  /* Structure. */
  bad("", "no JSON object", NULL);
  bad("[1, 2]", "expected a JSON object", "an array");
  bad("\"text\"", "expected a JSON object", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 1", "line 2, column 1", "expected ',' or '}'"); /* EOF */
  bad("{\"text\": \"AA==\", \"text\": \"AA==\", \"text_start\": 1, \"entry\": 1}", "'text' appears twice", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 1}\n---\n{}\n", "more than one document", NULL);
  bad("{[1]: 2, \"text\": \"AA==\", \"text_start\": 1, \"entry\": 1}", "expected a key", NULL);
  bad("{\"text\": &a \"AA==\", \"text_start\": 1, \"entry\": *a}", "'entry'", "alias");
  bad("\t{\"text\": \"AA==\"}", "line 1, column 1", NULL);
  /* Address space. */
  bad("{\"text\": \"AAAA\", \"text_start\": 4294967294, \"entry\": 1}", "32-bit address space", NULL);
  bad("{\"text\": \"AA==\", \"text_start\": 1, \"entry\": 1, \"data\": \"AAAA\", \"data_start\": 0xFFFFFFFF}",
      "data (3 bytes at 0xffffffff)", NULL);
}

static void test_error_positions(void **state) {
  (void)state;
  /* Line and column (1-based) of the offending value. */
  bad("{\n  \"text\": \"AA==\",\n  \"text_start\": 1,\n  \"entry\": \"x12\"\n}\n", "line 4, column 12", "'x12'");
  bad("{\n  \"text\": \"AA==\",\n  \"text_start\": 1,\n  \"entry\": 1,\n  \"text\": \"AA==\"\n}", "line 5, column 3",
      "first at line 2");
  /* libyaml's own errors keep its position too. */
  bad("{\n  \"text\": \"AA==\",\n  \"text_start\": 1,,\n}", "line 3", NULL);
}

static void test_load_file(void **state) {
  tmp *t = *state;
  char path[256], buf[128];
  snprintf(path, sizeof path, "%s/esp32.json", t->dir);
  put(path, stub_json(buf, sizeof buf, 5));
  eg_stub s;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_load(&s, path, &f), EG_OK);
  assert_string_equal(s.path, path);
  assert_int_equal(s.entry, 0x40080005);
  eg_stub_free(&s);

  snprintf(path, sizeof path, "%s/bad.json", t->dir);
  put(path, "{\"text\": \"AA==\"}");
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_load(&s, path, &f), EG_STUB_FORMAT);
  contains("bad file", f.msg, path);
  contains("bad file", f.msg, "'text_start'");

  snprintf(path, sizeof path, "%s/none.json", t->dir);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_load(&s, path, &f), EG_FILE_OPEN);
  contains("missing", f.msg, path);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_load(&s, t->dir, &f), EG_FILE_OPEN);
  contains("directory", f.msg, "is a directory");
}

/* The base64 string of `key` in a JSON file's raw text (no escapes in
 * base64), into a malloc'd NUL-terminated copy. */
static char *raw_b64(const char *raw, const char *key) {
  char k[32];
  snprintf(k, sizeof k, "\"%s\"", key);
  const char *p = strstr(raw, k);
  if (!p) return NULL;
  const char *q = strchr(p + strlen(k), '"');
  assert_non_null(q);
  const char *end = strchr(q + 1, '"');
  assert_non_null(end);
  return strndup(q + 1, (size_t)(end - q - 1));
}

/* The decoded bytes, encoded again by OpenSSL's encoder, must give back the
 * file's string exactly: a decoder that kept the '=' padding bytes, dropped
 * a group or misplaced a bit cannot pass (the decoder is libcrypto's
 * EVP_DecodeBlock, the check its independent encoder). */
static void reencodes_to(const char *path, const char *key, const uint8_t *bytes, size_t n, const char *want) {
  char *enc = malloc(4 * (n / 3 + 1) + 1);
  assert_non_null(enc);
  EVP_EncodeBlock((unsigned char *)enc, bytes, (int)n);
  if (strcmp(enc, want) != 0)
    fail_msg("%s: '%s' decoded to %zu bytes, which encode to %zu characters, not the file's %zu", path, key, n,
             strlen(enc), strlen(want));
  free(enc);
}

static void check_real(const char *path) {
  eg_stub s;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_stub_load(&s, path, &f) != EG_OK) fail_msg("%s", f.msg);
  assert_true(s.text_len > 1000);
  assert_true(s.entry >= s.text_start && s.entry < s.text_start + s.text_len);
  assert_non_null(s.data);
  assert_true(s.data_len > 0);
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  char *raw = malloc(1 << 20);
  const size_t n = fread(raw, 1, (1 << 20) - 1, fp);
  fclose(fp);
  raw[n] = '\0';
  char *text = raw_b64(raw, "text"), *data = raw_b64(raw, "data");
  assert_non_null(text);
  assert_non_null(data);
  reencodes_to(path, "text", s.text, s.text_len, text);
  reencodes_to(path, "data", s.data, s.data_len, data);
  free(text);
  free(data);
  free(raw);
  printf("# %s: text %zu bytes at 0x%08x, entry 0x%08x, data %zu bytes at 0x%08x\n", path, s.text_len, s.text_start,
         s.entry, s.data_len, s.data_start);
  eg_stub_free(&s);
}

/* Every stub file of esptool-js (node_modules after `npm ci`, which
 * tools/run-tests does), plus any file ESPGANG_TEST_STUB_JSON names
 * (colon-separated); skipped when there is none. */
static void test_real_files(void **state) {
  (void)state;
  int checked = 0;
  const char *list = getenv("ESPGANG_TEST_STUB_JSON");
  if (list && *list) {
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *p = strtok_r(buf, ":", &save); p; p = strtok_r(NULL, ":", &save)) check_real(p), checked++;
  }
  static const char *const names[] = {"esp32", "esp32s2", "esp32s3", "esp32c2", "esp32c3", "esp32c6", "esp32h2",
                                      "esp8266"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/node_modules/esptool-js/lib/targets/stub_flasher/%s.json", EG_SOURCE_DIR, names[i]);
    if (access(p, R_OK) == 0) check_real(p), checked++;
  }
  if (!checked) skip();
}

/* A stub path that is a FIFO or a device is refused by its type at once
 * (opening a FIFO used to block). SIGALRM ends a hung test (a guard). */
static void test_load_not_regular(void **state) {
  tmp *t = *state;
  char path[128];
  snprintf(path, sizeof path, "%s/esp32.json", t->dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  eg_stub s;
  eg_fault f;
  eg_fault_clear(&f);
  alarm(20);
  assert_int_equal(eg_stub_load(&s, path, &f), EG_FILE_OPEN);
  contains("fifo", f.msg, path);
  contains("fifo", f.msg, "is a FIFO (named pipe), not a regular file");
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_load(&s, "/dev/zero", &f), EG_FILE_OPEN);
  contains("device", f.msg, "stub file /dev/zero: is a character device");
  /* The stub finder does not take a FIFO in a stub folder for a file. */
  char out[256];
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find(esp32(), t->dir, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  alarm(0);
}

/* Unknown keys may nest, but not without bound: libyaml's scanner is
 * quadratic in flow nesting, so 200,000 levels of '[' under an unknown key
 * used to run for minutes. Refused at level 64, at its position. */
static void test_deep_nesting(void **state) {
  (void)state;
  const size_t levels = 200000;
  char *j = malloc(2 * levels + 128);
  assert_non_null(j);
  size_t n = (size_t)sprintf(j, "{\"plugins\": ");
  memset(j + n, '[', levels), n += levels;
  memset(j + n, ']', levels), n += levels;
  n += (size_t)sprintf(j + n, ", \"text\": \"AA==\", \"text_start\": 1, \"entry\": 1}");
  alarm(20);
  eg_stub s;
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_load_mem(&s, j, n, "deep.json", &f), EG_STUB_FORMAT);
  /* "{" is level 1, so the 64th "[" (column 13 + 63) is level 65, the first one too deep. */
  contains("deep", f.msg, "stub file deep.json: line 1, column 76: nested more than 64 levels deep");
  alarm(0);
  free(j);
  /* Plugin data a few levels deep is still skipped. */
  bad("{\"plugins\": [[[[[[[[1]]]]]]]], \"text_start\": 1, \"entry\": 1}", "'text'", "missing");
}

/* Base64 lengths with and without '=' padding: EVP_DecodeBlock counts the
 * padding as zero bytes, the loader must not. */
static void test_base64_padding_lengths(void **state) {
  (void)state;
  static const struct {
    const char *b64;
    size_t len;
    uint8_t first;
  } v[] = {{"AA==", 1, 0x00}, {"/w==", 1, 0xFF}, {"AAE=", 2, 0x00}, {"AAEC", 3, 0x00}, {"AAECAw==", 4, 0x00},
           {" AAEC\\nAw== ", 4, 0x00}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char json[128];
    snprintf(json, sizeof json, "{\"text\": \"%s\", \"text_start\": 1, \"entry\": 1}", v[i].b64);
    eg_stub s;
    eg_fault f;
    if (load_str(&s, json, &f) != EG_OK) fail_msg("%s: %s", v[i].b64, f.msg);
    if (s.text_len != v[i].len) fail_msg("%s: %zu bytes, want %zu", v[i].b64, s.text_len, v[i].len);
    assert_int_equal(s.text[0], v[i].first);
    eg_stub_free(&s);
  }
  /* '=' that EVP_DecodeBlock would take as zero bits inside the text. */
  bad("{\"text\": \"A=AA\", \"text_start\": 1, \"entry\": 1}", "'text'", "after '='");
  bad("{\"text\": \"AA==AAAA\", \"text_start\": 1, \"entry\": 1}", "'text'", "after '='");
  bad("{\"text\": \"AA\\u0000A\", \"text_start\": 1, \"entry\": 1}", "'text'", "0x00");
}

/* ------------------------------------------------------------ finding */

typedef struct env_b {
  eg_stub_env env;
  char paths[8][512];
} env_b;

/* An env with nothing from the machine in it. */
static void empty_env(env_b *e) { memset(e, 0, sizeof *e); }

static const char *P(env_b *e, int i, const char *fmt, const char *dir) {
  snprintf(e->paths[i], sizeof e->paths[i], fmt, dir);
  return e->paths[i];
}

static void find_is(const eg_chip *c, const char *user, const eg_stub_env *env, const char *want) {
  char out[4096];
  eg_fault f;
  eg_fault_clear(&f);
  const eg_err e = eg_stub_find_in(c, user, env, out, sizeof out, &f);
  if (e != EG_OK) fail_msg("want %s, got %s: %s", want, eg_err_name(e), f.msg);
  assert_string_equal(out, want);
  /* What is found loads. */
  eg_stub s;
  eg_fault_clear(&f);
  if (eg_stub_load(&s, out, &f) != EG_OK) fail_msg("%s", f.msg);
  eg_stub_free(&s);
}

static void test_find_user_path(void **state) {
  tmp *t = *state;
  char a[1024], b[512], buf[128];
  env_b e;
  empty_env(&e);
  /* A file is used as is, whatever its name. */
  snprintf(a, sizeof a, "%s/my-stub.txt", t->dir);
  put(a, stub_json(buf, sizeof buf, 1));
  find_is(esp32(), a, &e.env, a);

  /* A folder: each layout alone, then the precedence among them. */
  static const char *const layouts[] = {"esp32.json", "2/esp32.json", "1/esp32.json", "stub_flasher_32.json"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(b, sizeof b, "%s/only%zu", t->dir, i);
    snprintf(a, sizeof a, "%s/%s", b, layouts[i]);
    put(a, stub_json(buf, sizeof buf, (unsigned)i));
    find_is(esp32(), b, &e.env, a);
  }
  snprintf(b, sizeof b, "%s/all", t->dir);
  for (size_t i = 4; i-- > 0;) {
    snprintf(a, sizeof a, "%s/%s", b, layouts[i]);
    put(a, stub_json(buf, sizeof buf, (unsigned)i));
    find_is(esp32(), b, &e.env, a); /* each newly added, higher layout wins */
  }
  /* The esptool 4 name for other chips. */
  snprintf(b, sizeof b, "%s/v4", t->dir);
  snprintf(a, sizeof a, "%s/stub_flasher_8266.json", b);
  put(a, stub_json(buf, sizeof buf, 9));
  find_is(eg_chip_get(EG_CHIP_ESP8266), b, &e.env, a);
  snprintf(a, sizeof a, "%s/stub_flasher_32s3.json", b);
  put(a, stub_json(buf, sizeof buf, 9));
  find_is(eg_chip_get(EG_CHIP_ESP32S3), b, &e.env, a);

  /* A folder without the file; a path that does not exist. Nothing else is
   * searched even though the env would have a file. */
  e.env.stub_dir = P(&e, 0, "%s/all", t->dir);
  char out[4096];
  eg_fault f;
  snprintf(b, sizeof b, "%s/only0", t->dir);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(eg_chip_get(EG_CHIP_ESP32C3), b, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  contains("folder", f.msg, b);
  contains("folder", f.msg, "esp32c3.json");
  contains("folder", f.msg, "stub_flasher_32c3.json");
  snprintf(b, sizeof b, "%s/nope", t->dir);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), b, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  contains("missing", f.msg, b);
  contains("missing", f.msg, "No such file");
  /* Found but does not fit the caller's buffer. */
  snprintf(a, sizeof a, "%s/my-stub.txt", t->dir);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), a, &e.env, out, 8, &f), EG_INVAL);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), NULL, &e.env, out, 8, &f), EG_INVAL);
}

/* The P4's older stub build (esp32p4-rev1.json, for revisions below v3.0)
 * is found by its own name in the same layouts, never under the chip's own
 * name; a chip without an older build has none; a single file given as the
 * path is only the chip's own stub. */
static void test_find_old_build(void **state) {
  tmp *t = *state;
  char a[1024], b[512], buf[128], out[4096];
  env_b e;
  empty_env(&e);
  const eg_chip *p4 = eg_chip_get(EG_CHIP_ESP32P4);
  eg_fault f;
  snprintf(b, sizeof b, "%s/p4", t->dir);
  snprintf(a, sizeof a, "%s/2/esp32p4.json", b);
  put(a, stub_json(buf, sizeof buf, 1));
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_build_in(p4, true, b, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  contains("old, missing", f.msg, "esp32p4-rev1.json");
  snprintf(a, sizeof a, "%s/2/esp32p4-rev1.json", b);
  put(a, stub_json(buf, sizeof buf, 2));
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_build_in(p4, true, b, &e.env, out, sizeof out, &f), EG_OK);
  assert_string_equal(out, a);
  snprintf(a, sizeof a, "%s/2/esp32p4.json", b);
  find_is(p4, b, &e.env, a); /* the chip's own build is still the v3 one */
  /* Searched in ESPGANG_STUB_DIR and npm roots like the chip's own. */
  e.env.stub_dir = b;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_build_in(p4, true, NULL, &e.env, out, sizeof out, &f), EG_OK);
  contains("stub dir", out, "esp32p4-rev1.json");
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_build_in(esp32(), true, b, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  contains("no old build", f.msg, "no older stub build");
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_build_in(p4, true, a, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  contains("one file", f.msg, "one file");
}

static void test_find_search_order(void **state) {
  tmp *t = *state;
  char buf[128], want[9][512];
  const char *d = t->dir;
  env_b e;
  empty_env(&e);
  e.env.stub_dir = P(&e, 0, "%s/stubdir", d);
  e.env.cwd = P(&e, 1, "%s/proj/sub/deeper", d);
  e.env.exe_dir = P(&e, 2, "%s/opt/espgang/bin", d);
  e.env.npm_roots[0] = P(&e, 3, "%s/usr/lib/node_modules", d);
  e.env.npm_roots[1] = P(&e, 4, "%s/nodepath", d);
  e.env.site_globs[0] = P(&e, 5, "%s/venv/lib/python3*/site-packages", d);
  e.env.site_globs[1] = P(&e, 6, "%s/usr/lib/python3/dist-packages", d);
  mkdirs(e.env.cwd);
  mkdirs(e.env.exe_dir);
  /* Highest priority last in this list; each is created in turn and must win. */
  snprintf(want[0], 512, "%s/usr/lib/python3/dist-packages/esptool/targets/stub_flasher/stub_flasher_32.json", d);
  snprintf(want[1], 512, "%s/usr/lib/python3/dist-packages/esptool/targets/stub_flasher/1/esp32.json", d);
  snprintf(want[2], 512, "%s/venv/lib/python3.9/site-packages/esptool/targets/stub_flasher/2/esp32.json", d);
  snprintf(want[3], 512, "%s/venv/lib/python3.11/site-packages/esptool/targets/stub_flasher/1/esp32.json", d);
  snprintf(want[4], 512, "%s/nodepath/esptool-js/lib/targets/stub_flasher/esp32.json", d);
  snprintf(want[5], 512, "%s/usr/lib/node_modules/esptool-js/lib/targets/stub_flasher/esp32.json", d);
  snprintf(want[6], 512, "%s/opt/node_modules/esptool-js/lib/targets/stub_flasher/esp32.json", d);
  snprintf(want[7], 512, "%s/proj/node_modules/esptool-js/lib/targets/stub_flasher/esp32.json", d);
  snprintf(want[8], 512, "%s/stubdir/2/esp32.json", d);
  /* Nothing yet: the message says where it looked. */
  char out[4096];
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), NULL, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  contains("not found", f.msg, "no flasher stub file for ESP32");
  contains("not found", f.msg, "ESPGANG_STUB_DIR=");
  assert_true(strlen(f.msg) < sizeof f.msg);
  if (strlen(f.msg) >= sizeof f.msg - 4) contains("truncated", f.msg + strlen(f.msg) - 3, "...");
  for (size_t i = 0; i < 9; i++) {
    put(want[i], stub_json(buf, sizeof buf, (unsigned)i));
    find_is(esp32(), NULL, &e.env, want[i]);
  }
  /* esptool 5 order inside one site folder: 2 before 1 (python3.11 already
   * had set 1; adding set 2 there wins over python3.9's set 2 only because
   * 3.11 is newer). */
  e.env.stub_dir = NULL;
  e.env.cwd = e.env.exe_dir = NULL;
  e.env.npm_roots[0] = NULL;
  char s2[512];
  snprintf(s2, sizeof s2, "%s/venv/lib/python3.11/site-packages/esptool/targets/stub_flasher/2/esp32.json", d);
  find_is(esp32(), NULL, &e.env, want[3]);
  char js[128];
  put(s2, stub_json(js, sizeof js, 20));
  find_is(esp32(), NULL, &e.env, s2);
}

static void test_find_walk_stops_at_root(void **state) {
  tmp *t = *state;
  /* The exe walk must not re-list folders the cwd walk already covered, and
   * "/" itself is reached (its node_modules is tried) without looping. */
  env_b e;
  empty_env(&e);
  e.env.cwd = P(&e, 0, "%s/a/b", t->dir);
  e.env.exe_dir = P(&e, 1, "%s/a/b/c", t->dir);
  char out[4096];
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), NULL, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  char from[600];
  snprintf(from, sizeof from, "node_modules from %s/a/b/c up", t->dir);
  contains("exe walk", f.msg, from);
  e.env.exe_dir = P(&e, 1, "%s/a", t->dir); /* an ancestor of cwd: nothing new */
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), NULL, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
  snprintf(from, sizeof from, "node_modules from %s/a up", t->dir);
  assert_null(strstr(f.msg, from));
  e.env.cwd = "/";
  e.env.exe_dir = NULL;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find_in(esp32(), NULL, &e.env, out, sizeof out, &f), EG_STUB_NOT_FOUND);
}

/* The process's own places: ESPGANG_STUB_DIR, NODE_PATH, VIRTUAL_ENV, HOME. */
static void test_find_default_env(void **state) {
  tmp *t = *state;
  char dir[512], file[600], buf[128];
  snprintf(dir, sizeof dir, "%s/envdir", t->dir);
  snprintf(file, sizeof file, "%s/1/esp32.json", dir);
  put(file, stub_json(buf, sizeof buf, 3));
  setenv("ESPGANG_STUB_DIR", dir, 1);
  setenv("NODE_PATH", "/x/nm::/y/nm", 1);
  setenv("VIRTUAL_ENV", "/v[1]", 1);
  char home[1024];
  snprintf(home, sizeof home, "%s", getenv("HOME") ? getenv("HOME") : "");
  setenv("HOME", "/home/u", 1);
  eg_stub_env *env = malloc(sizeof *env);
  eg_stub_env_default(env);
  assert_string_equal(env->stub_dir, dir);
  assert_non_null(env->cwd);
  assert_non_null(env->exe_dir);
  assert_int_equal(env->exe_dir[0], '/');
  assert_string_equal(env->npm_roots[0], "/usr/lib/node_modules");
  assert_string_equal(env->npm_roots[1], "/usr/local/lib/node_modules");
  assert_string_equal(env->npm_roots[2], "/x/nm");
  assert_string_equal(env->npm_roots[3], "/y/nm");
  assert_null(env->npm_roots[4]);
  assert_string_equal(env->site_globs[0], "/v\\[1\\]/lib/python3*/site-packages");
  assert_string_equal(env->site_globs[1], "/home/u/.local/lib/python3*/site-packages");
  assert_string_equal(env->site_globs[2], "/home/u/.local/share/pipx/venvs/esptool/lib/python3*/site-packages");
  assert_string_equal(env->site_globs[3], "/usr/local/lib/python3*/dist-packages");
  assert_string_equal(env->site_globs[4], "/usr/local/lib/python3*/site-packages");
  assert_string_equal(env->site_globs[5], "/usr/lib/python3/dist-packages");
  assert_null(env->site_globs[6]);
  free(env);
  /* ESPGANG_STUB_DIR comes first, whatever else this machine has. */
  char out[4096];
  eg_fault f;
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find(esp32(), NULL, out, sizeof out, &f), EG_OK);
  assert_string_equal(out, file);
  /* cwd: chdir into a tree with node_modules (ESPGANG_STUB_DIR unset). */
  unsetenv("ESPGANG_STUB_DIR");
  snprintf(file, sizeof file, "%s/w/node_modules/esptool-js/lib/targets/stub_flasher/esp32c3.json", t->dir);
  put(file, stub_json(buf, sizeof buf, 4));
  snprintf(dir, sizeof dir, "%s/w/x", t->dir);
  mkdirs(dir);
  assert_int_equal(chdir(dir), 0);
  eg_fault_clear(&f);
  assert_int_equal(eg_stub_find(eg_chip_get(EG_CHIP_ESP32C3), NULL, out, sizeof out, &f), EG_OK);
  assert_string_equal(out, file);
  unsetenv("NODE_PATH");
  unsetenv("VIRTUAL_ENV");
  if (home[0]) setenv("HOME", home, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_esptool_js_shape),
    cmocka_unit_test(test_parse_hex_optional_and_unknown),
    cmocka_unit_test(test_parse_json_formatting),
    cmocka_unit_test(test_base64_against_openssl),
    cmocka_unit_test(test_parse_errors),
    cmocka_unit_test(test_error_positions),
    cmocka_unit_test_setup_teardown(test_load_file, tmp_setup, tmp_teardown),
    cmocka_unit_test(test_real_files),
    cmocka_unit_test_setup_teardown(test_load_not_regular, tmp_setup, tmp_teardown),
    cmocka_unit_test(test_deep_nesting),
    cmocka_unit_test(test_base64_padding_lengths),
    cmocka_unit_test_setup_teardown(test_find_user_path, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_find_old_build, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_find_search_order, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_find_walk_stops_at_root, tmp_setup, tmp_teardown),
    cmocka_unit_test_setup_teardown(test_find_default_env, tmp_setup, tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
