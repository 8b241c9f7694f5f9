/* test_manifest.c - the production manifest (src/manifest.c): exact parsed
 * values of valid manifests, and for each kind of mistake the exact
 * file:line:column it is reported at. Every manifest is written to a fresh
 * temporary folder together with the image files it names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <regex.h>
#include <yaml.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"

/* ------------------------------------------------------------ fixture */

typedef struct fx {
  char dir[256];
  char path[300]; /* <dir>/m.yaml */
  char *diags[64];
  int ndiags;
  eg_manifest m;
  bool loaded;
} fx;

static void on_diag(void *ctx, const char *file, int line, int col, const char *msg) {
  fx *x = ctx;
  assert_true(x->ndiags < 64);
  assert_int_not_equal(asprintf(&x->diags[x->ndiags++], "%s:%d:%d: %s", file, line, col, msg), -1);
}

static void put(fx *x, const char *name, const void *data, size_t len) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", x->dir, name);
  /* Create parent folders ("images/app.bin"). */
  for (char *s = p + strlen(x->dir) + 1; (s = strchr(s, '/')); s++) {
    *s = '\0';
    mkdir(p, 0755);
    *s = '/';
  }
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

/* An image of n bytes; byte 0 = first, the rest a counting pattern. */
static void put_image(fx *x, const char *name, size_t n, uint8_t first) {
  uint8_t *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 7 + 3);
  if (n) b[0] = first;
  put(x, name, b, n);
  free(b);
}

static void put_default_images(fx *x) {
  put_image(x, "images/bootloader.bin", 1000, 0xE9);
  put_image(x, "images/partitions.bin", 3072, 0xAA);
  put_image(x, "images/app.bin", 5000, 0xE9);
}

static int setup(void **state) {
  fx *x = calloc(1, sizeof *x);
  snprintf(x->dir, sizeof x->dir, "/tmp/eg-manifest-XXXXXX");
  assert_non_null(mkdtemp(x->dir));
  snprintf(x->path, sizeof x->path, "%s/m.yaml", x->dir);
  *state = x;
  return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int teardown(void **state) {
  fx *x = *state;
  if (x->loaded) eg_manifest_free(&x->m);
  for (int i = 0; i < x->ndiags; i++) free(x->diags[i]);
  nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(x);
  return 0;
}

static eg_err load(fx *x, const char *yaml) {
  put(x, "m.yaml", yaml, strlen(yaml));
  for (int i = 0; i < x->ndiags; i++) free(x->diags[i]);
  x->ndiags = 0;
  if (x->loaded) eg_manifest_free(&x->m);
  const eg_err r = eg_manifest_load(&x->m, x->path, on_diag, x);
  x->loaded = r == EG_OK;
  return r;
}

static void dump(const fx *x) {
  for (int i = 0; i < x->ndiags; i++) print_message("  diag %d: %s\n", i, x->diags[i]);
}

/* Diagnostic i is exactly "<manifest>:line:col: " followed by a message
 * containing `needle`. */
static void diag_is(const fx *x, int i, int line, int col, const char *needle) {
  char prefix[400];
  snprintf(prefix, sizeof prefix, "%s:%d:%d: ", x->path, line, col);
  if (i >= x->ndiags || strncmp(x->diags[i], prefix, strlen(prefix)) != 0 ||
      !strstr(x->diags[i] + strlen(prefix), needle)) {
    dump(x);
    fail_msg("diag %d: want \"%s...%s...\", got \"%s\"", i, prefix, needle, i < x->ndiags ? x->diags[i] : "(none)");
  }
}

static void ndiags_is(const fx *x, int n) {
  if (x->ndiags != n) {
    dump(x);
    fail_msg("want %d diagnostics, got %d", n, x->ndiags);
  }
}

/* One error: load fails with exactly this diagnostic. */
static void one_error(fx *x, const char *yaml, int line, int col, const char *needle) {
  assert_int_equal(load(x, yaml), EG_MANIFEST);
  ndiags_is(x, 1);
  diag_is(x, 0, line, col, needle);
}

#define HEAD "station: s\nchip: esp32\n"
#define IMAGES "images:\n  - {offset: 0x10000, file: images/app.bin}\n"
#define PORTS "ports:\n  - {url: \"socket://127.0.0.1:5001\"}\n"

/* ------------------------------------------------------------ valid */

static void test_full_manifest_values(void **state) {
  fx *x = *state;
  put_default_images(x);
  put(x, "stubs/esp32.json", "{}", 2);
  uint8_t sha[32];
  {
    eg_image img;
    eg_fault f;
    char p[512];
    snprintf(p, sizeof p, "%s/images/app.bin", x->dir);
    assert_int_equal(eg_image_load(&img, p, 0, &f), EG_OK);
    memcpy(sha, img.file_sha256, 32);
    eg_image_free(&img);
  }
  char hex[65], yaml[4096];
  eg_hex(hex, sha, 32);
  snprintf(yaml, sizeof yaml,
           "# the example from the manual\n"
           "station: line3-bench-A\n"
           "database: logs/espgang.db\n"
           "chip: ESP32\n"
           "images:\n"
           "  - offset: 0x10000\n"
           "    file: images/app.bin\n"
           "    sha256: %s\n"
           "  - {offset: 0x1000, file: images/bootloader.bin}\n"
           "  - {offset: 32768, file: images/partitions.bin}\n"
           "flash:\n"
           "  mode: dio\n"
           "  freq: 40m\n"
           "  size: 4MB\n"
           "baud: 921600\n"
           "connect_baud: 57600\n"
           "before: no_reset\n"
           "after: no-reset-stub\n"
           "stub: stubs\n"
           "erase: all\n"
           "verify: false\n"
           "compress: False\n"
           "retries: 3\n"
           "timeouts:\n"
           "  command: 5\n"
           "  sync: 0.25\n"
           "  write_per_mb: 1.5e1\n"
           "ports:\n"
           "  - {slot: A1, path: /dev/serial/by-path/pci-0000:00:14.0-usb-0:1.1:1.0-port0}\n"
           "  - {glob: \"rack/slot*\"}\n"
           "  - {slot: B1, usb: {vid: 0x10c4, pid: 0xea60, serial: \"01234\", location: \"1-1.4\"}}\n"
           "  - {slot: C1, url: \"socket://127.0.0.1:5001\"}\n",
           hex);
  assert_int_equal(load(x, yaml), EG_OK);
  ndiags_is(x, 0);
  const eg_manifest *m = &x->m;
  char want[512];
  assert_string_equal(m->path, x->path);
  assert_string_equal(m->dir, x->dir);
  assert_int_equal(m->text_len, strlen(yaml));
  assert_memory_equal(m->text, yaml, strlen(yaml));
  uint8_t text_sha[32];
  eg_sha256((const uint8_t *)yaml, strlen(yaml), text_sha);
  assert_memory_equal(m->sha256, text_sha, 32);
  assert_string_equal(m->station, "line3-bench-A");
  snprintf(want, sizeof want, "%s/logs/espgang.db", x->dir);
  assert_string_equal(m->db_path, want);
  assert_ptr_equal(m->set.chip, eg_chip_get(EG_CHIP_ESP32));
  /* Sorted by offset. */
  assert_int_equal(m->nimages, 3);
  assert_int_equal(m->images[0].offset, 0x1000);
  assert_string_equal(m->images[0].file, "images/bootloader.bin");
  snprintf(want, sizeof want, "%s/images/bootloader.bin", x->dir);
  assert_string_equal(m->images[0].path, want);
  assert_int_equal(m->images[0].image.file_len, 1000);
  assert_int_equal(m->images[0].image.data[0], 0xE9);
  assert_false(m->images[0].has_sha256);
  assert_int_equal(m->images[0].line, 9);
  assert_int_equal(m->images[0].col, 5);
  assert_int_equal(m->images[1].offset, 0x8000);
  assert_string_equal(m->images[1].file, "images/partitions.bin");
  assert_int_equal(m->images[1].image.file_len, 3072);
  assert_int_equal(m->images[2].offset, 0x10000);
  assert_string_equal(m->images[2].file, "images/app.bin");
  assert_int_equal(m->images[2].image.file_len, 5000);
  assert_true(m->images[2].has_sha256);
  assert_memory_equal(m->images[2].sha256, sha, 32);
  assert_int_equal(m->images[2].line, 6);
  assert_int_equal(m->images[2].col, 5);
  assert_string_equal(m->set.flash_mode, "dio");
  assert_string_equal(m->set.flash_freq, "40m");
  assert_string_equal(m->set.flash_size, "4MB");
  assert_int_equal(m->set.baud, 921600);
  assert_int_equal(m->set.connect_baud, 57600);
  assert_int_equal(m->set.before, EG_BEFORE_NO_RESET);
  assert_int_equal(m->set.after, EG_AFTER_NO_RESET_STUB);
  assert_int_equal(m->set.stub_mode, EG_STUB_PATH);
  snprintf(want, sizeof want, "%s/stubs", x->dir);
  assert_string_equal(m->set.stub_path, want);
  assert_int_equal(m->set.erase, EG_ERASE_ALL);
  assert_false(m->set.verify);
  assert_false(m->set.compress);
  assert_int_equal(m->set.retries, 3);
  assert_int_equal(m->set.timeouts.command_ms, 5000);
  assert_int_equal(m->set.timeouts.sync_ms, 250);
  assert_int_equal(m->set.timeouts.write_per_mb_ms, 15000);
  eg_timeouts def;
  eg_timeouts_default(&def);
  assert_int_equal(m->set.timeouts.max_ms, def.max_ms);
  assert_int_equal(m->set.timeouts.md5_per_mb_ms, def.md5_per_mb_ms);

  assert_int_equal(m->nports, 4);
  assert_int_equal(m->ports[0].kind, EG_MPORT_PATH);
  assert_string_equal(m->ports[0].slot, "A1");
  assert_string_equal(m->ports[0].target, "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1.1:1.0-port0");
  assert_int_equal(m->ports[0].line, 29);
  assert_int_equal(m->ports[0].col, 5);
  assert_int_equal(m->ports[1].kind, EG_MPORT_GLOB);
  assert_null(m->ports[1].slot);
  snprintf(want, sizeof want, "%s/rack/slot*", x->dir); /* relative: the manifest's folder */
  assert_string_equal(m->ports[1].target, want);
  assert_int_equal(m->ports[2].kind, EG_MPORT_USB);
  assert_string_equal(m->ports[2].slot, "B1");
  assert_null(m->ports[2].target);
  assert_int_equal(m->ports[2].vid, 0x10c4);
  assert_int_equal(m->ports[2].pid, 0xea60);
  assert_string_equal(m->ports[2].serial, "01234");
  assert_string_equal(m->ports[2].location, "1-1.4");
  assert_int_equal(m->ports[3].kind, EG_MPORT_URL);
  assert_string_equal(m->ports[3].target, "socket://127.0.0.1:5001");
}

static void test_minimal_defaults(void **state) {
  fx *x = *state;
  put_default_images(x);
  assert_int_equal(load(x, HEAD IMAGES PORTS), EG_OK);
  ndiags_is(x, 0);
  const eg_manifest *m = &x->m;
  char want[512];
  snprintf(want, sizeof want, "%s/espgang.db", x->dir);
  assert_string_equal(m->db_path, want);
  assert_string_equal(m->set.flash_mode, "keep");
  assert_string_equal(m->set.flash_freq, "keep");
  assert_string_equal(m->set.flash_size, "keep");
  assert_int_equal(m->set.baud, 460800);
  assert_int_equal(m->set.connect_baud, 115200);
  assert_int_equal(m->set.before, EG_BEFORE_DEFAULT_RESET);
  assert_int_equal(m->set.after, EG_AFTER_HARD_RESET);
  assert_int_equal(m->set.stub_mode, EG_STUB_AUTO);
  assert_null(m->set.stub_path);
  assert_int_equal(m->set.erase, EG_ERASE_WRITTEN);
  assert_true(m->set.verify);
  assert_int_equal(m->set.compress, -1); /* esptool's rule: compressed when the stub runs */
  assert_int_equal(m->set.retries, 1);
  eg_timeouts def;
  eg_timeouts_default(&def);
  assert_memory_equal(&m->set.timeouts, &def, sizeof def);
  assert_int_equal(m->nimages, 1);
  assert_int_equal(m->nports, 1);
}

static void test_spellings(void **state) {
  fx *x = *state;
  put_default_images(x);
  /* Chip names as eg_chip_by_name takes them, esptool's two spellings of
   * resets, 0o octal and +decimal integers, chip-specific frequencies. */
  assert_int_equal(load(x, "station: \"123\"\nchip: ESP32-H2\nbefore: no-reset_no_sync\nafter: soft_reset\n"
                           "stub: none\nbaud: +115200\nflash: {freq: 48m, size: keep, mode: qout}\n"
                           "images:\n  - {offset: 0o200000, file: images/app.bin}\n" PORTS),
                   EG_OK);
  ndiags_is(x, 0);
  assert_string_equal(x->m.station, "123");
  assert_ptr_equal(x->m.set.chip, eg_chip_get(EG_CHIP_ESP32H2));
  assert_int_equal(x->m.set.before, EG_BEFORE_NO_RESET_NO_SYNC);
  assert_int_equal(x->m.set.after, EG_AFTER_SOFT_RESET);
  assert_int_equal(x->m.set.stub_mode, EG_STUB_NONE);
  assert_int_equal(x->m.set.baud, 115200);
  assert_int_equal(x->m.images[0].offset, 0x10000);
  assert_string_equal(x->m.set.flash_freq, "48m");
  assert_string_equal(x->m.set.flash_mode, "qout");
}

/* An image at the bootloader offset is normal; only one that does not start
 * with 0xE9 while flash parameters are to be written gets a warning. */
static void test_bootloader_offset(void **state) {
  fx *x = *state;
  put_default_images(x);
  put_image(x, "images/raw.bin", 100, 0x00);
  assert_int_equal(load(x, HEAD "flash: {mode: dio}\nimages:\n  - {offset: 0x1000, file: images/bootloader.bin}\n" PORTS),
                   EG_OK);
  ndiags_is(x, 0);
  assert_int_equal(load(x, HEAD "flash: {mode: keep, freq: keep, size: keep}\n"
                                "images:\n  - {offset: 0x1000, file: images/raw.bin}\n" PORTS),
                   EG_OK);
  ndiags_is(x, 0);
  assert_int_equal(load(x, HEAD "flash: {mode: dio}\nimages:\n  - {offset: 0x1000, file: images/raw.bin}\n" PORTS),
                   EG_OK);
  ndiags_is(x, 1);
  diag_is(x, 0, 5, 5, "warning: image images/raw.bin at the ESP32 bootloader offset 0x1000 does not start with 0xE9");
}

/* ------------------------------------------------------------ errors */

static void test_every_error_reported(void **state) {
  fx *x = *state;
  put_default_images(x);
  /* Three unrelated mistakes: three diagnostics, in file order. */
  assert_int_equal(load(x, "station: s\n"
                           "chip: esp33\n"
                           IMAGES
                           "baud: fast\n"
                           "ports:\n"
                           "  - {path: /dev/null, url: \"socket://h:1\"}\n"),
                   EG_MANIFEST);
  ndiags_is(x, 3);
  diag_is(x, 0, 2, 7, "chip: unknown chip 'esp33' (known: auto, esp8266, esp32, esp32s2");
  diag_is(x, 1, 5, 7, "baud: expected an integer, got a string");
  diag_is(x, 2, 7, 5, "ports[0]: needs exactly one of path, glob, usb, url (found path and url)");
  assert_false(x->loaded);
}

static void test_missing_required(void **state) {
  fx *x = *state;
  assert_int_equal(load(x, "baud: 115200\n"), EG_MANIFEST);
  ndiags_is(x, 4);
  diag_is(x, 0, 1, 1, "missing required key 'station'");
  diag_is(x, 1, 1, 1, "missing required key 'chip'");
  diag_is(x, 2, 1, 1, "missing required key 'images'");
  diag_is(x, 3, 1, 1, "missing required key 'ports'");
}

static void test_yaml_syntax_error(void **state) {
  fx *x = *state;
  /* libyaml: the flow sequence opened on line 2 is never closed. */
  assert_int_equal(load(x, "station: s\nchip: [esp32\nbaud: 1\n"), EG_MANIFEST);
  ndiags_is(x, 1);
  diag_is(x, 0, 3, 5, "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence (line 2, column 7)");
  /* A tab where indentation is expected. */
  assert_int_equal(load(x, "station: s\n\tchip: esp32\n"), EG_MANIFEST);
  ndiags_is(x, 1);
  diag_is(x, 0, 2, 1, "YAML syntax error: found a tab character that violates indentation");
  /* Invalid UTF-8 (a reader error, located by byte offset). */
  assert_int_equal(load(x, "station: s\nchip: \xff\n"), EG_MANIFEST);
  ndiags_is(x, 1);
  diag_is(x, 0, 2, 7, "YAML error: invalid leading UTF-8 octet");
}

static void test_empty_and_documents(void **state) {
  fx *x = *state;
  one_error(x, "# nothing here\n", 1, 1, "the manifest is empty");
  put_default_images(x);
  one_error(x, HEAD IMAGES PORTS "---\nstation: t\n", 7, 1, "only one YAML document is allowed");
  one_error(x, "- station: s\n", 1, 1, "manifest: expected a mapping, got a list");
}

static void test_missing_file(void **state) {
  fx *x = *state;
  char p[400];
  snprintf(p, sizeof p, "%s/nope.yaml", x->dir);
  assert_int_equal(eg_manifest_load(&x->m, p, on_diag, x), EG_FILE_OPEN);
  ndiags_is(x, 1);
  char want[512];
  snprintf(want, sizeof want, "%s:0:0: cannot open the manifest: No such file or directory", p);
  assert_string_equal(x->diags[0], want);
  /* A folder, and something far too large to be a manifest. */
  assert_int_equal(eg_manifest_load(&x->m, x->dir, on_diag, x), EG_FILE_OPEN);
  ndiags_is(x, 2);
  assert_non_null(strstr(x->diags[1], "cannot open the manifest: is a directory, not a regular file"));
  char *big = malloc(3u << 20);
  memset(big, '#', 3u << 20);
  put(x, "big.yaml", big, 3u << 20);
  free(big);
  snprintf(p, sizeof p, "%s/big.yaml", x->dir);
  assert_int_equal(eg_manifest_load(&x->m, p, on_diag, x), EG_MANIFEST);
  ndiags_is(x, 3);
  assert_non_null(strstr(x->diags[2], "cannot read the manifest: 3145728 bytes, more than the 1048576-byte limit"));
}

/* Hang guard for the tests below: before fileio.c, opening a FIFO blocked
 * until a writer came (forever) and 200,000 levels of '[' took minutes. The
 * default SIGALRM action ends the test process, so ctest reports a failure
 * instead of waiting for its own timeout. Not a timing target. */
#define HANG_GUARD_S 20

/* A manifest that is a FIFO or a device is refused at once, by its type. */
static void test_manifest_not_regular(void **state) {
  fx *x = *state;
  char p[400];
  snprintf(p, sizeof p, "%s/fifo.yaml", x->dir);
  assert_int_equal(mkfifo(p, 0600), 0);
  alarm(HANG_GUARD_S);
  assert_int_equal(eg_manifest_load(&x->m, p, on_diag, x), EG_FILE_OPEN);
  ndiags_is(x, 1);
  char want[512];
  snprintf(want, sizeof want, "%s:0:0: cannot open the manifest: is a FIFO (named pipe), not a regular file", p);
  assert_string_equal(x->diags[0], want);
  assert_int_equal(eg_manifest_load(&x->m, "/dev/zero", on_diag, x), EG_FILE_OPEN);
  ndiags_is(x, 2);
  assert_string_equal(x->diags[1], "/dev/zero:0:0: cannot open the manifest: is a character device, not a regular file");
  alarm(0);
}

/* Nesting far beyond a manifest's 4 levels is refused at the first node
 * deeper than 32, at its line:column, in every YAML style. */
static void test_deep_nesting(void **state) {
  fx *x = *state;
  put_default_images(x);
  const size_t levels = 200000;
  char *y = malloc(6 * levels + 64);
  assert_non_null(y);
  alarm(HANG_GUARD_S);
  /* flow sequences: "station: [[[[...]]]]" (400 KB, under the 1 MB limit) */
  size_t n = (size_t)sprintf(y, "station: ");
  memset(y + n, '[', levels), n += levels;
  memset(y + n, ']', levels), n += levels;
  y[n++] = '\n', y[n] = '\0';
  /* The root mapping is level 1: the 32nd '[' is level 33. */
  one_error(x, y, 1, 10 + 31, "nested more than 32 levels deep (a manifest needs 4)");
  /* flow mappings: "station: {a: {a: ... 1}}" */
  n = (size_t)sprintf(y, "station: ");
  for (size_t i = 0; i < levels; i++) memcpy(y + n, "{a: ", 4), n += 4;
  y[n++] = '1';
  memset(y + n, '}', levels), n += levels;
  y[n++] = '\n', y[n] = '\0';
  one_error(x, y, 1, 10 + 4 * 31, "nested more than 32 levels deep");
  /* block sequences: "station:\n- - - - x" */
  n = (size_t)sprintf(y, "station:\n");
  for (size_t i = 0; i < levels; i++) memcpy(y + n, "- ", 2), n += 2;
  y[n++] = 'x', y[n++] = '\n', y[n] = '\0';
  one_error(x, y, 2, 1 + 2 * 31, "nested more than 32 levels deep");
  alarm(0);
  free(y);
  /* 32 levels (the root and 31 lists) are parsed, and refused for what
   * they are, not for their depth. */
  char ok[256];
  n = (size_t)sprintf(ok, "station: ");
  memset(ok + n, '[', 31), n += 31;
  ok[n++] = '1';
  memset(ok + n, ']', 31), n += 31;
  snprintf(ok + n, sizeof ok - n, "\nchip: esp32\n" IMAGES PORTS);
  one_error(x, ok, 1, 10, "station: expected a string, got a list");
}

/* Counts that would make libyaml or the pairwise checks quadratic are
 * bounded: each refused at once with one error, where it starts. */
static void test_count_limits(void **state) {
  fx *x = *state;
  put_default_images(x);
  char *y = malloc(1 << 20);
  assert_non_null(y);
  alarm(HANG_GUARD_S);
  /* 90,000 anchors: libyaml compares each with every earlier one. */
  size_t n = (size_t)sprintf(y, "station: [");
  for (int i = 0; i < 90000; i++) n += (size_t)sprintf(y + n, "%s&a%d 1", i ? "," : "", i);
  n += (size_t)sprintf(y + n, "]\n");
  /* the 257th anchor: "&a256" after "[" and 256 items */
  size_t col = 11;
  for (int i = 0; i < 256; i++) col += (size_t)snprintf(NULL, 0, "&a%d 1,", i);
  one_error(x, y, 1, (int)col, "more than 256 anchors (&name); is it a manifest?");
  /* 20,000 images at one offset: 200 million overlapping pairs. */
  n = (size_t)sprintf(y, HEAD PORTS "images:\n");
  for (int i = 0; i < 20000; i++) n += (size_t)sprintf(y + n, "  - {offset: 0x10000, file: images/app.bin}\n");
  one_error(x, y, 6, 3, "images: 20000 images, more than 64");
  /* 20,000 port entries with one label: duplicate checks by pairs. */
  n = (size_t)sprintf(y, HEAD IMAGES "ports:\n");
  for (int i = 0; i < 20000; i++) n += (size_t)sprintf(y + n, "  - {slot: A, url: \"socket://h:1\"}\n");
  one_error(x, y, 6, 3, "ports: 20000 entries, more than 1024");
  /* A mapping of 20,000 keys: duplicate key checks by pairs. */
  n = (size_t)sprintf(y, HEAD IMAGES PORTS "timeouts:\n");
  for (int i = 0; i < 20000; i++) n += (size_t)sprintf(y + n, "  k%d: 1\n", i);
  one_error(x, y, 8, 3, "timeouts: 20000 keys, but it takes at most 10 (allowed: command, sync,");
  alarm(0);
  free(y);
  /* Within the limits: anchors and aliases work, a few unknown keys are
   * each named. */
  assert_int_equal(load(x, HEAD IMAGES "ports:\n  - {slot: A, usb: &cp {vid: 0x10c4, pid: 0xea60}}\n"
                                       "  - {slot: B, usb: *cp}\n"),
                   EG_OK);
  assert_int_equal(x->m.nports, 2);
  assert_int_equal(x->m.ports[1].vid, 0x10c4);
  assert_int_equal(load(x, HEAD IMAGES PORTS "timeouts: {a: 1, b: 2}\n"), EG_MANIFEST);
  ndiags_is(x, 2);
  diag_is(x, 0, 7, 12, "timeouts: unknown key 'a'");
  diag_is(x, 1, 7, 18, "timeouts: unknown key 'b'");
}

/* The same checks from memory; relative paths resolve against the folder
 * of the name given. */
static void test_load_mem(void **state) {
  fx *x = *state;
  put_default_images(x);
  const char *y = HEAD IMAGES PORTS;
  eg_manifest m;
  assert_int_equal(eg_manifest_load_mem(&m, x->path, y, strlen(y), on_diag, x), EG_OK);
  ndiags_is(x, 0);
  assert_string_equal(m.station, "s");
  assert_int_equal(m.text_len, strlen(y));
  assert_string_equal(m.text, y);
  assert_int_equal(m.nimages, 1);
  assert_int_equal(m.images[0].image.file_len, 5000);
  eg_manifest_free(&m);
  assert_int_equal(eg_manifest_load_mem(&m, x->path, "station: [1", 11, on_diag, x), EG_MANIFEST);
  ndiags_is(x, 1);
  assert_non_null(strstr(x->diags[0], "m.yaml:2:1: YAML syntax error"));
}

static void test_unknown_and_duplicate_keys(void **state) {
  fx *x = *state;
  put_default_images(x);
  one_error(x, HEAD IMAGES PORTS "verfy: true\n", 7, 1,
            "manifest: unknown key 'verfy' (allowed: station, database, chip, images, flash, baud, connect_baud, "
            "before, after, stub, erase, verify, compress, retries, timeouts, ports, skip_flashed, security)");
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/app.bin, sha: 12}\n" PORTS, 4, 45,
            "images[0]: unknown key 'sha' (allowed: offset, file, sha256)");
  one_error(x, HEAD IMAGES PORTS "flash:\n  mode: dio\n  speed: 80m\n", 9, 3,
            "flash: unknown key 'speed' (allowed: mode, freq, size)");
  one_error(x, HEAD IMAGES PORTS "timeouts: {command: 3, erase: 9}\n", 7, 24, "timeouts: unknown key 'erase'");
  one_error(x, HEAD IMAGES "ports:\n  - {usb: {vid: 1, product: x}}\n", 6, 20,
            "usb: unknown key 'product' (allowed: vid, pid, serial, location)");
  one_error(x, HEAD IMAGES PORTS "baud: 115200\nbaud: 921600\n", 8, 1,
            "manifest: duplicate key 'baud' (first at line 7, column 1)");
  one_error(x, HEAD IMAGES "ports:\n  - {slot: a, slot: b, path: /dev/null}\n", 6, 15,
            "ports[0]: duplicate key 'slot' (first at line 6, column 6)");
}

static void test_wrong_types(void **state) {
  fx *x = *state;
  put_default_images(x);
  one_error(x, "station: 123\nchip: esp32\n" IMAGES PORTS, 1, 10,
            "station: expected a string, got an integer (quote it to make it a string)");
  one_error(x, HEAD IMAGES PORTS "verify: yes\n", 7, 9, "verify: expected true or false, got a string");
  one_error(x, HEAD "images: {offset: 0}\n" PORTS, 3, 9, "images: expected a list, got a mapping");
  one_error(x, HEAD "images:\n  - images/app.bin\n" PORTS, 4, 5, "images[0]: expected a mapping, got a string");
  one_error(x, HEAD IMAGES "ports: /dev/ttyUSB0\n", 5, 8, "ports: expected a list, got a string");
  one_error(x, HEAD IMAGES PORTS "flash: dio\n", 7, 8, "flash: expected a mapping, got a string");
  one_error(x, HEAD IMAGES PORTS "database:\n", 7, 10, "database: expected a string, got nothing (null)");
  one_error(x, HEAD IMAGES PORTS "retries: 1.5\n", 7, 10, "retries: expected an integer, got a number");
  one_error(x, HEAD IMAGES PORTS "stub: !!binary aGk=\n", 7, 7, "stub: expected a string, got a value with an unsupported tag");
  one_error(x, HEAD IMAGES PORTS "station2: &a [*a]\n", 7, 1, "unknown key 'station2'");
  /* An alias cycle where a mapping is expected is just a type error. */
  one_error(x, HEAD "images: &a [*a]\n" PORTS, 3, 9, "images[0]: expected a mapping, got a list");
}

static void test_bad_numbers(void **state) {
  fx *x = *state;
  put_default_images(x);
  one_error(x, HEAD "images:\n  - {offset: 0x10z0, file: images/app.bin}\n" PORTS, 4, 14,
            "offset: expected an integer, got a string");
  one_error(x, HEAD "images:\n  - {offset: 0x10002, file: images/app.bin}\n" PORTS, 4, 14,
            "offset: 0x10002 is not a multiple of 4");
  one_error(x, HEAD "images:\n  - {offset: -4, file: images/app.bin}\n" PORTS, 4, 14,
            "offset: -4 is out of range (0..4294967295)");
  one_error(x, HEAD "images:\n  - {offset: 0x100000000, file: images/app.bin}\n" PORTS, 4, 14,
            "offset: 0x100000000 is out of range");
  one_error(x, HEAD IMAGES PORTS "baud: 99999999999999999999999\n", 7, 7, "baud: 99999999999999999999999 is too large");
  one_error(x, HEAD IMAGES PORTS "baud: 1200\n", 7, 7, "baud: 1200 is out of range (9600..5000000)");
  one_error(x, HEAD IMAGES PORTS "connect_baud: 6000000\n", 7, 15, "connect_baud: 6000000 is out of range (9600..5000000)");
  one_error(x, HEAD IMAGES PORTS "retries: 11\n", 7, 10, "retries: 11 is out of range (0..10)");
  one_error(x, HEAD IMAGES PORTS "timeouts:\n  command: 0\n", 8, 12, "timeouts.command: 0 s is out of range");
  one_error(x, HEAD IMAGES PORTS "timeouts:\n  sync: .inf\n", 8, 9, "timeouts.sync: must be a finite number of seconds");
  one_error(x, HEAD IMAGES PORTS "timeouts:\n  max: fast\n", 8, 8, "timeouts.max: expected a number of seconds, got a string");
  one_error(x, HEAD IMAGES "ports:\n  - {usb: {vid: 0x10000}}\n", 6, 17, "usb.vid: 0x10000 is out of range (0..65535)");
}

static void test_chip_and_flash(void **state) {
  fx *x = *state;
  put_default_images(x);
  one_error(x, "station: s\nchip: esp31\n" IMAGES PORTS, 2, 7, "chip: unknown chip 'esp31'");
  one_error(x, HEAD IMAGES PORTS "flash: {freq: 48m}\n", 7, 15,
            "flash.freq: '48m' is not a flash frequency of the ESP32 (allowed: keep, 80m, 40m, 26m, 20m)");
  one_error(x, HEAD IMAGES PORTS "flash: {size: 3MB}\n", 7, 15,
            "flash.size: '3MB' is not a flash size of the ESP32 (allowed: keep, detect, 1MB, 2MB, 4MB");
  one_error(x, HEAD IMAGES PORTS "flash: {mode: DIO}\n", 7, 15,
            "flash.mode: unknown mode 'DIO' (allowed: keep, qio, qout, dio, dout)");
  /* 2MB-c1 is an ESP8266 size only. */
  one_error(x, HEAD IMAGES PORTS "flash: {size: 2MB-c1}\n", 7, 15, "flash.size: '2MB-c1' is not a flash size of the ESP32");
  assert_int_equal(load(x, "station: s\nchip: esp8266\n" IMAGES PORTS "flash: {size: 2MB-c1}\n"), EG_OK);
  one_error(x, HEAD IMAGES PORTS "before: hard_reset\n", 7, 9, "before: unknown reset 'hard_reset' (allowed: default-reset");
  one_error(x, HEAD IMAGES PORTS "after: default-reset\n", 7, 8, "after: unknown action 'default-reset' (allowed: hard-reset");
  one_error(x, HEAD IMAGES PORTS "erase: some\n", 7, 8, "erase: unknown policy 'some' (allowed: written, all)");
  one_error(x, HEAD IMAGES PORTS "stub: stubs/esp32.json\n", 7, 7, "stub: ");
  assert_non_null(strstr(x->diags[0], "/stubs/esp32.json: No such file or directory"));
}

static void test_image_files(void **state) {
  fx *x = *state;
  put_default_images(x);
  put_image(x, "images/empty.bin", 0, 0);
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/nope.bin}\n" PORTS, 4, 29, "file: ");
  assert_non_null(strstr(x->diags[0], "images/nope.bin"));
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/empty.bin}\n" PORTS, 4, 29, "empty");
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images}\n" PORTS, 4, 29, "file: ");
  one_error(x, HEAD "images:\n  - {file: images/app.bin}\n" PORTS, 4, 5, "images[0]: missing required key 'offset'");
  one_error(x, HEAD "images:\n  - {offset: 0}\n" PORTS, 4, 5, "images[0]: missing required key 'file'");
  one_error(x, HEAD "images: []\n" PORTS, 3, 9, "images: at least one image is required");
  /* A bad offset and a missing file in one entry: both reported. */
  assert_int_equal(load(x, HEAD "images:\n  - {offset: 3, file: images/nope.bin}\n" PORTS), EG_MANIFEST);
  ndiags_is(x, 2);
  diag_is(x, 0, 4, 14, "offset: 0x3 is not a multiple of 4");
  diag_is(x, 1, 4, 23, "file: ");
}

static void test_sha256_pin(void **state) {
  fx *x = *state;
  put_default_images(x);
  eg_image img;
  eg_fault f;
  char p[512], actual[65], yaml[1024];
  snprintf(p, sizeof p, "%s/images/app.bin", x->dir);
  assert_int_equal(eg_image_load(&img, p, 0, &f), EG_OK);
  eg_hex(actual, img.file_sha256, 32);
  eg_image_free(&img);
  const char *pin = "3b0c000000000000000000000000000000000000000000000000000000000000";
  snprintf(yaml, sizeof yaml, HEAD "images:\n  - offset: 0x10000\n    file: images/app.bin\n    sha256: %s\n" PORTS, pin);
  char want[400];
  snprintf(want, sizeof want, "sha256: images/app.bin does not match the pin: expected %s, actual %s", pin, actual);
  one_error(x, yaml, 6, 13, want);
  /* Upper-case hex is the same pin. */
  for (char *c = actual; *c; c++) *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
  snprintf(yaml, sizeof yaml, HEAD "images:\n  - offset: 0x10000\n    file: images/app.bin\n    sha256: \"%s\"\n" PORTS,
           actual);
  assert_int_equal(load(x, yaml), EG_OK);
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/app.bin, sha256: 3b0c}\n" PORTS, 4, 53,
            "sha256: expected 64 hex digits, got '3b0c'");
}

static void test_overlaps(void **state) {
  fx *x = *state;
  put_default_images(x); /* app.bin: 5000 bytes */
  /* 0x10000 + 5000 = 0x11388 > 0x11000: real overlap; named both ways. */
  one_error(x, HEAD "images:\n  - {offset: 0x11000, file: images/partitions.bin}\n"
                    "  - {offset: 0x10000, file: images/app.bin}\n" PORTS,
            4, 5, "image images/partitions.bin at 0x11000 overlaps image images/app.bin (0x10000..0x11387, line 5)");
  /* 0x11388 .. : no byte shared, but sector 0x11000 is. */
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/app.bin}\n"
                    "  - {offset: 0x11400, file: images/partitions.bin}\n" PORTS,
            5, 5, "image images/partitions.bin at 0x11400 shares the 4 KiB flash sector 0x11000 with image images/app.bin");
  /* Same offset twice. */
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/app.bin}\n"
                    "  - {offset: 0x10000, file: images/partitions.bin}\n" PORTS,
            5, 5, "overlaps image images/app.bin");
  /* Adjacent sectors are fine. */
  assert_int_equal(load(x, HEAD "images:\n  - {offset: 0x10000, file: images/app.bin}\n"
                                "  - {offset: 0x12000, file: images/partitions.bin}\n" PORTS),
                   EG_OK);
}

static void test_beyond_flash(void **state) {
  fx *x = *state;
  put_default_images(x);
  one_error(x, HEAD "flash: {size: 1MB}\nimages:\n  - {offset: 0xFF000, file: images/app.bin}\n" PORTS, 5, 5,
            "image images/app.bin (0xff000..0x100387) does not fit in the 1MB flash (flash.size)");
  /* detect/keep: the size is not known before the chip answers. */
  assert_int_equal(load(x, HEAD "flash: {size: detect}\nimages:\n  - {offset: 0xFF000, file: images/app.bin}\n" PORTS), EG_OK);
  assert_int_equal(load(x, HEAD "flash: {size: 2MB}\nimages:\n  - {offset: 0xFF000, file: images/app.bin}\n" PORTS), EG_OK);
}

static void test_ports_errors(void **state) {
  fx *x = *state;
  put_default_images(x);
  one_error(x, HEAD IMAGES "ports:\n  - {slot: A}\n", 6, 5, "ports[0]: needs exactly one of path, glob, usb, url (found none)");
  one_error(x, HEAD IMAGES "ports:\n  - {path: /dev/a, glob: \"/dev/b*\"}\n", 6, 5, "(found path and glob)");
  one_error(x, HEAD IMAGES "ports:\n  - {slot: A, path: /dev/a}\n  - {slot: A, path: /dev/b}\n", 7, 12,
            "slot: duplicate label 'A' (also on line 6)");
  one_error(x, HEAD IMAGES "ports:\n  - {url: \"tcp://h:1\"}\n", 6, 11, "url: 'tcp://h:1' is not socket://host:port");
  one_error(x, HEAD IMAGES "ports:\n  - {url: \"socket://h:70000\"}\n", 6, 11, "is not socket://host:port");
  one_error(x, HEAD IMAGES "ports:\n  - {usb: {}}\n", 6, 11, "usb: give at least one of vid, pid, serial, location");
  one_error(x, HEAD IMAGES "ports: []\n", 5, 8, "ports: at least one port is required");
  one_error(x, HEAD IMAGES "ports:\n  - {path: \"\"}\n", 6, 12, "path: must not be empty");
}

/* Names shown on screens and stored in the log refuse control characters,
 * at the value's line:column; every diagnostic shows them escaped, so it
 * stays one line and carries no terminal escape. */
static void test_control_characters(void **state) {
  fx *x = *state;
  put_default_images(x);
  static const struct {
    const char *yaml_value, *shown;
  } bad[] = {
    {"\"A\\n1\"", "'A\\n1'"},          /* newline */
    {"\"A\\e[2J\"", "'A\\x1b[2J'"},     /* ESC: clear screen */
    {"\"A\\x7f\"", "'A\\x7f'"},          /* DEL */
    {"\"A\\x9b2J\"", "'A\\u009b2J'"},    /* C1 CSI */
    {"\"A\\N\"", "'A\\u0085'"},          /* C1 NEL */
    {"\"A\\u202e1\"", "'A\\u202e1'"},    /* bidi override */
    {"\"A\\t1\"", "'A\\t1'"},            /* tab */
  };
  char y[512], want[128];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(y, sizeof y, HEAD IMAGES "ports:\n  - {slot: %s, url: \"socket://127.0.0.1:5001\"}\n", bad[i].yaml_value);
    snprintf(want, sizeof want, "slot: %s contains a control character at byte 2", bad[i].shown);
    one_error(x, y, 6, 12, want);
    for (const char *d = x->diags[0]; *d; d++)
      if ((unsigned char)*d < 0x20 || (unsigned char)*d == 0x7f) fail_msg("raw control byte 0x%02x in: %s", *d, x->diags[0]);
  }
  one_error(x, "station: \"line\\e]0;owned\\a\"\nchip: esp32\n" IMAGES PORTS, 1, 10,
            "station: 'line\\x1b]0;owned\\x07' contains a control character at byte 5");
  /* A quoted key with an escape: the unknown-key message shows it escaped. */
  one_error(x, HEAD IMAGES PORTS "\"x\\e[31m\": 1\n", 7, 1, "unknown key 'x\\x1b[31m'");
  /* Printable UTF-8 is fine. */
  assert_int_equal(load(x, HEAD IMAGES "ports:\n  - {slot: \"Größe-1 ✓\", url: \"socket://127.0.0.1:5001\"}\n"), EG_OK);
  ndiags_is(x, 0);
  assert_string_equal(x->m.ports[0].slot, "Größe-1 ✓");
}

/* An image inside a 4 KiB sector: the erase takes the sector's bytes before
 * it; a warning names them and the image (as esptool warns). */
static void test_unaligned_image_warning(void **state) {
  fx *x = *state;
  put_default_images(x);
  put_image(x, "images/small.bin", 16, 0x00);
  assert_int_equal(load(x, HEAD "images:\n  - {offset: 0x1004, file: images/small.bin}\n" PORTS), EG_OK);
  ndiags_is(x, 1);
  diag_is(x, 0, 4, 5,
          "warning: image images/small.bin at 0x00001004 is not aligned to a 0x1000-byte flash sector: "
          "the 4 bytes 0x00001000..0x00001003 before it will be erased");
  assert_int_equal(load(x, HEAD "images:\n  - {offset: 0x10000, file: images/app.bin}\n"
                                "  - {offset: 0x13ffc, file: images/small.bin}\n" PORTS), EG_OK);
  ndiags_is(x, 1);
  diag_is(x, 0, 5, 5, "the 4092 bytes 0x00013000..0x00013ffb before it will be erased");
  /* Aligned, or the whole chip erased anyway: nothing to say. */
  assert_int_equal(load(x, HEAD "images:\n  - {offset: 0x2000, file: images/small.bin}\n" PORTS), EG_OK);
  ndiags_is(x, 0);
  assert_int_equal(load(x, HEAD "erase: all\nimages:\n  - {offset: 0x1004, file: images/small.bin}\n" PORTS), EG_OK);
  ndiags_is(x, 0);
}

/* An image or stub path that is a FIFO or a device: refused at its entry,
 * at once (it used to block in open() until a writer came). */
static void test_files_not_regular(void **state) {
  fx *x = *state;
  put_default_images(x);
  char p[400];
  snprintf(p, sizeof p, "%s/images/fifo.bin", x->dir);
  assert_int_equal(mkfifo(p, 0600), 0);
  snprintf(p, sizeof p, "%s/stub.json", x->dir);
  assert_int_equal(mkfifo(p, 0600), 0);
  alarm(HANG_GUARD_S);
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: images/fifo.bin}\n" PORTS, 4, 29,
            "/images/fifo.bin: is a FIFO (named pipe), not a regular file");
  one_error(x, HEAD "images:\n  - {offset: 0x10000, file: /dev/zero}\n" PORTS, 4, 29,
            "file: image /dev/zero: is a character device, not a regular file");
  one_error(x, HEAD "stub: stub.json\n" IMAGES PORTS, 3, 7, "/stub.json is neither a regular file nor a folder");
  /* An existing log must be a regular file (SQLite would say "disk I/O
   * error", exit 3, once the run started); a new one is created. */
  one_error(x, HEAD "database: stub.json\n" IMAGES PORTS, 3, 11, "/stub.json is a FIFO (named pipe), not a regular file");
  one_error(x, HEAD "database: images\n" IMAGES PORTS, 3, 11, "/images is a directory, not a regular file");
  assert_int_equal(load(x, HEAD "database: new.db\n" IMAGES PORTS), EG_OK);
  alarm(0);
}

/* ------------------------------------------------------------ slots */

static eg_err slots(fx *x, eg_slot **out, size_t *n) {
  for (int i = 0; i < x->ndiags; i++) free(x->diags[i]);
  x->ndiags = 0;
  return eg_manifest_slots(&x->m, out, n, on_diag, x);
}

static void test_slots_paths_and_globs(void **state) {
  fx *x = *state;
  put_default_images(x);
  put(x, "rack/slot1", "", 0);
  put(x, "rack/slot2", "", 0);
  put(x, "rack/slot10", "", 0);
  put(x, "dev/ttyX", "", 0);
  char link[512], target[512];
  snprintf(link, sizeof link, "%s/dev/by-path-x", x->dir);
  snprintf(target, sizeof target, "%s/dev/ttyX", x->dir);
  assert_int_equal(symlink(target, link), 0);
  assert_int_equal(load(x, HEAD IMAGES "ports:\n"
                                       "  - {glob: \"rack/slot*\"}\n"
                                       "  - {slot: L, path: dev/by-path-x}\n"
                                       "  - {url: \"socket://127.0.0.1:5001\"}\n"),
                   EG_OK);
  eg_slot *s;
  size_t n;
  assert_int_equal(slots(x, &s, &n), EG_OK);
  ndiags_is(x, 0);
  assert_int_equal(n, 5);
  /* Natural order: slot2 before slot10. */
  assert_string_equal(s[0].slot, "slot1");
  assert_string_equal(s[1].slot, "slot2");
  assert_string_equal(s[2].slot, "slot10");
  char want[512];
  snprintf(want, sizeof want, "%s/rack/slot2", x->dir);
  assert_string_equal(s[1].port, want);
  assert_string_equal(s[1].usb_location, "");
  assert_string_equal(s[3].slot, "L");
  assert_string_equal(s[3].port, link);
  assert_string_equal(s[4].slot, "127.0.0.1:5001");
  assert_string_equal(s[4].port, "socket://127.0.0.1:5001");
  free(s);

  /* A labelled glob with several matches: <slot>-<n>; with one: <slot>. */
  assert_int_equal(load(x, HEAD IMAGES "ports:\n  - {slot: R, glob: \"rack/slot1*\"}\n  - {slot: T, glob: \"rack/slot2\"}\n"),
                   EG_OK);
  assert_int_equal(slots(x, &s, &n), EG_OK);
  assert_int_equal(n, 3);
  assert_string_equal(s[0].slot, "R-1");
  assert_string_equal(s[1].slot, "R-2");
  snprintf(want, sizeof want, "%s/rack/slot10", x->dir);
  assert_string_equal(s[1].port, want);
  assert_string_equal(s[2].slot, "T");
  free(s);
}

static void test_slots_errors(void **state) {
  fx *x = *state;
  put_default_images(x);
  put(x, "rack/slot1", "", 0);
  put(x, "rack/slot2", "", 0);
  put(x, "dev/ttyX", "", 0);
  char link[512], target[512];
  snprintf(link, sizeof link, "%s/dev/alias", x->dir);
  snprintf(target, sizeof target, "%s/dev/ttyX", x->dir);
  assert_int_equal(symlink(target, link), 0);
  assert_int_equal(load(x, HEAD IMAGES "ports:\n"
                                       "  - {path: dev/ttyX}\n"         /* line 6 */
                                       "  - {path: dev/alias}\n"        /* 7: the same device */
                                       "  - {glob: \"rack/none*\"}\n"   /* 8: no match */
                                       "  - {path: dev/missing}\n"      /* 9 */
                                       "  - {slot: R-2, url: \"socket://h:1\"}\n" /* 10 */
                                       "  - {slot: R, glob: \"rack/slot*\"}\n"    /* 11: makes */
                                       "  - {usb: {vid: 0x10c4, serial: \"no-such-serial-for-espgang-tests\"}}\n"),
                   EG_OK);
  eg_slot *s = (eg_slot *)1;
  size_t n = 99;
  assert_int_equal(slots(x, &s, &n), EG_MANIFEST);
  assert_null(s);
  assert_int_equal(n, 0);
  ndiags_is(x, 5);
  diag_is(x, 0, 7, 5, "(slot alias) is the same port as slot ttyX (entry on line 6)");
  diag_is(x, 1, 8, 5, "glob ");
  assert_non_null(strstr(x->diags[1], "/rack/none* matches no port"));
  diag_is(x, 2, 9, 5, "dev/missing: No such file or directory");
  diag_is(x, 3, 11, 5, "slot label 'R-2' is used twice (also by the entry on line 10)");
  diag_is(x, 4, 12, 5, "no USB serial port matches vid 0x10c4 serial no-such-serial-for-espgang-tests");
}


/* ------------------------------------------------------------ the family */

/* chip: auto with images per chip: a mixed rack. Each chip's list is
 * checked on its own (overlaps, bootloader offset); transport per port;
 * security and skip_flashed. */
static void test_images_per_chip(void **state) {
  fx *x = *state;
  put_default_images(x);
  assert_int_equal(load(x, "station: s\nchip: auto\n"
                           "images:\n"
                           "  esp32c3:\n"
                           "    - {offset: 0x0, file: images/bootloader.bin}\n"
                           "    - {offset: 0x10000, file: images/app.bin}\n"
                           "  esp32:\n"
                           "    - {offset: 0x1000, file: images/bootloader.bin}\n"
                           "    - {offset: 0x10000, file: images/app.bin}\n"
                           "flash: {freq: 40m}\n"
                           "skip_flashed: true\n"
                           "security: {plaintext_on_encrypted: allow}\n"
                           "ports:\n"
                           "  - {url: \"rfc2217://127.0.0.1:5001\", transport: usb-serial-jtag}\n"
                           "  - {url: \"socket://127.0.0.1:5002\"}\n"),
                   EG_OK);
  const eg_manifest *m = &x->m;
  assert_null(m->set.chip);
  assert_true(m->images_per_chip);
  assert_true(m->set.skip_flashed);
  assert_true(m->allow_plaintext_on_encrypted);
  assert_int_equal(m->nimages, 4);
  /* Sorted by chip (table order: ESP32 before C3), then offset. */
  assert_ptr_equal(m->images[0].chip, eg_chip_get(EG_CHIP_ESP32));
  assert_int_equal(m->images[0].offset, 0x1000);
  assert_ptr_equal(m->images[2].chip, eg_chip_get(EG_CHIP_ESP32C3));
  assert_int_equal(m->images[2].offset, 0x0);
  assert_string_equal(m->set.flash_freq, "40m");
  assert_int_equal(m->ports[0].usb, EG_USB_SERIAL_JTAG);
  assert_int_equal(m->ports[1].usb, EG_USB_NONE);
  eg_slot *slots = NULL;
  size_t n = 0;
  assert_int_equal(eg_manifest_slots(m, &slots, &n, NULL, NULL), EG_OK);
  assert_int_equal(n, 2);
  assert_int_equal(slots[0].usb, EG_USB_SERIAL_JTAG);
  free(slots);
}

static void test_images_per_chip_errors(void **state) {
  fx *x = *state;
  put_default_images(x);
  /* Not a chip. */
  one_error(x, "station: s\nchip: auto\nimages:\n  esp33: [{offset: 0, file: images/app.bin}]\n" PORTS, 4, 3,
            "images: 'esp33' is not a chip");
  /* Another chip than the manifest's. */
  one_error(x, HEAD "images:\n  esp32s3: [{offset: 0, file: images/app.bin}]\n" PORTS, 4, 3,
            "images: esp32s3: the manifest's chip is esp32");
  /* A frequency one of the listed chips does not have (the H2's are 48m/24m/16m/12m). */
  one_error(x, "station: s\nchip: auto\nflash: {freq: 40m}\nimages:\n  esp32: [{offset: 0x10000, file: images/app.bin}]\n"
            "  esp32h2: [{offset: 0x10000, file: images/app.bin}]\n" PORTS, 3, 15,
            "flash.freq: '40m' is not a flash frequency of the ESP32-H2");
  /* chip: auto with one list cannot patch a bootloader header. */
  one_error(x, "station: s\nchip: auto\nflash: {mode: dio}\n" IMAGES PORTS, 3, 8,
            "flash: with chip: auto and one image list, the bootloader header cannot be patched");
  /* Overlap only within one chip's list: the same offsets for two chips are fine. */
  one_error(x, "station: s\nchip: auto\nimages:\n  esp32c3:\n    - {offset: 0x10000, file: images/app.bin}\n"
            "    - {offset: 0x10800, file: images/bootloader.bin}\n" PORTS, 6, 7, "overlaps image images/app.bin");
  one_error(x, HEAD IMAGES PORTS "security: {plaintext_on_encrypted: yes}\n", 7, 36,
            "security.plaintext_on_encrypted: 'yes' (allowed: refuse, allow)");
  one_error(x, HEAD IMAGES "ports:\n  - {url: \"socket://127.0.0.1:5001\", transport: usb}\n", 6, 49,
            "transport: 'usb' (allowed: uart, usb-serial-jtag, usb-otg)");
}

/* ------------------------------------------------------------ schema vs chip table */

/* schema/manifest.schema.json names chips and their flash frequencies and
 * sizes; the C loader takes them from src/chips.c. Check the two agree for
 * every chip (the corpus test in tests/schema/ checks the rest). */

static yaml_node_t *jget(yaml_document_t *d, yaml_node_t *n, const char *key) {
  assert_non_null(n);
  assert_int_equal(n->type, YAML_MAPPING_NODE);
  for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(d, p->key);
    if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
      return yaml_document_get_node(d, p->value);
  }
  fail_msg("schema: no key %s", key);
  return NULL;
}

static bool matches(const char *pattern, const char *s) {
  regex_t re;
  assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  const bool m = regexec(&re, s, 0, NULL, 0) == 0;
  regfree(&re);
  return m;
}

/* The enum list as "a,b,c" (schema order). */
static void enum_str(yaml_document_t *d, yaml_node_t *list, char *out, size_t cap) {
  assert_int_equal(list->type, YAML_SEQUENCE_NODE);
  out[0] = '\0';
  for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++)
    snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "",
             (char *)yaml_document_get_node(d, *it)->data.scalar.value);
}

static void test_schema_matches_chip_table(void **state) {
  (void)state;
  FILE *fp = fopen(EG_SOURCE_DIR "/schema/manifest.schema.json", "rb");
  assert_non_null(fp);
  yaml_parser_t parser;
  yaml_document_t d;
  assert_true(yaml_parser_initialize(&parser));
  yaml_parser_set_input_file(&parser, fp);
  assert_true(yaml_parser_load(&parser, &d));
  yaml_node_t *root = yaml_document_get_root_node(&d);
  yaml_node_t *props = jget(&d, root, "properties");

  /* chip: anyOf "auto" then one pattern per chip. */
  yaml_node_t *any = jget(&d, jget(&d, props, "chip"), "anyOf");
  assert_int_equal(any->data.sequence.items.top - any->data.sequence.items.start, EG_CHIP__COUNT + 1);
  assert_string_equal((char *)jget(&d, yaml_document_get_node(&d, *any->data.sequence.items.start), "const")->data.scalar.value,
                      "auto");
  yaml_node_item_t *const patterns = any->data.sequence.items.start + 1;
  for (int id = 0; id < EG_CHIP__COUNT; id++) {
    const eg_chip *c = eg_chip_get((eg_chip_id)id);
    char upper[32], underscored[32];
    snprintf(upper, sizeof upper, "%s", c->arg_name);
    for (char *p = upper; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(underscored, sizeof underscored, "%s", c->name);
    for (char *p = underscored; *p; p++) *p = *p == '-' ? '_' : *p;
    const char *spellings[] = {c->arg_name, c->name, upper, underscored};
    for (size_t k = 0; k < 4; k++) {
      int hits = 0;
      for (yaml_node_item_t *it = patterns; it < any->data.sequence.items.top; it++)
        hits += matches((char *)jget(&d, yaml_document_get_node(&d, *it), "pattern")->data.scalar.value, spellings[k]);
      if (hits != 1) fail_msg("schema chip patterns: '%s' matches %d patterns", spellings[k], hits);
      assert_ptr_equal(eg_chip_by_name(spellings[k]), c);
    }
  }
  static const char *const bad[] = {"esp33", "esp32s", "esp32s3x", "esp", "esp 32", "xesp32"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    for (yaml_node_item_t *it = patterns; it < any->data.sequence.items.top; it++)
      if (matches((char *)jget(&d, yaml_document_get_node(&d, *it), "pattern")->data.scalar.value, bad[k]))
        fail_msg("schema accepts chip '%s'", bad[k]);
    assert_null(eg_chip_by_name(bad[k]));
  }

  /* flash.mode: keep and the four modes. */
  char got[512], want[512];
  enum_str(&d, jget(&d, jget(&d, jget(&d, jget(&d, props, "flash"), "properties"), "mode"), "enum"), got, sizeof got);
  snprintf(want, sizeof want, "keep,%s,%s,%s,%s", eg_flash_mode_name(0), eg_flash_mode_name(1), eg_flash_mode_name(2),
           eg_flash_mode_name(3));
  assert_string_equal(got, want);

  /* allOf: one rule per chip with exactly that chip's frequencies and sizes. */
  yaml_node_t *all = jget(&d, root, "allOf");
  int covered[EG_CHIP__COUNT] = {0};
  for (yaml_node_item_t *it = all->data.sequence.items.start; it < all->data.sequence.items.top; it++) {
    yaml_node_t *rule = yaml_document_get_node(&d, *it);
    const char *pat = (char *)jget(&d, jget(&d, jget(&d, jget(&d, rule, "if"), "properties"), "chip"), "pattern")
                        ->data.scalar.value;
    const eg_chip *c = NULL;
    for (int id = 0; id < EG_CHIP__COUNT; id++)
      if (matches(pat, eg_chip_get((eg_chip_id)id)->arg_name)) {
        assert_null(c);
        c = eg_chip_get((eg_chip_id)id);
      }
    assert_non_null(c);
    covered[c->id]++;
    yaml_node_t *fp2 = jget(&d, jget(&d, jget(&d, jget(&d, rule, "then"), "properties"), "flash"), "properties");
    enum_str(&d, jget(&d, jget(&d, fp2, "freq"), "enum"), got, sizeof got);
    snprintf(want, sizeof want, "keep");
    for (size_t i = 0; i < c->nflash_freqs; i++) snprintf(want + strlen(want), sizeof want - strlen(want), ",%s", c->flash_freqs[i].name);
    if (strcmp(got, want) != 0) fail_msg("%s frequencies: schema %s, chips.c %s", c->name, got, want);
    enum_str(&d, jget(&d, jget(&d, fp2, "size"), "enum"), got, sizeof got);
    snprintf(want, sizeof want, "keep,detect");
    for (size_t i = 0; i < c->nflash_sizes; i++) snprintf(want + strlen(want), sizeof want - strlen(want), ",%s", c->flash_sizes[i].name);
    if (strcmp(got, want) != 0) fail_msg("%s sizes: schema %s, chips.c %s", c->name, got, want);
  }
  for (int id = 0; id < EG_CHIP__COUNT; id++)
    if (covered[id] != 1) fail_msg("%s has %d flash rules in the schema", eg_chip_get((eg_chip_id)id)->name, covered[id]);
  yaml_document_delete(&d);
  yaml_parser_delete(&parser);
  fclose(fp);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_full_manifest_values, setup, teardown),
    cmocka_unit_test_setup_teardown(test_minimal_defaults, setup, teardown),
    cmocka_unit_test_setup_teardown(test_spellings, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bootloader_offset, setup, teardown),
    cmocka_unit_test_setup_teardown(test_every_error_reported, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
    cmocka_unit_test_setup_teardown(test_yaml_syntax_error, setup, teardown),
    cmocka_unit_test_setup_teardown(test_empty_and_documents, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unknown_and_duplicate_keys, setup, teardown),
    cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_numbers, setup, teardown),
    cmocka_unit_test_setup_teardown(test_chip_and_flash, setup, teardown),
    cmocka_unit_test_setup_teardown(test_image_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_sha256_pin, setup, teardown),
    cmocka_unit_test_setup_teardown(test_overlaps, setup, teardown),
    cmocka_unit_test_setup_teardown(test_beyond_flash, setup, teardown),
    cmocka_unit_test_setup_teardown(test_ports_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_control_characters, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unaligned_image_warning, setup, teardown),
    cmocka_unit_test_setup_teardown(test_files_not_regular, setup, teardown),
    cmocka_unit_test_setup_teardown(test_manifest_not_regular, setup, teardown),
    cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
    cmocka_unit_test_setup_teardown(test_count_limits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_load_mem, setup, teardown),
    cmocka_unit_test_setup_teardown(test_slots_paths_and_globs, setup, teardown),
    cmocka_unit_test_setup_teardown(test_slots_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_images_per_chip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_images_per_chip_errors, setup, teardown),
    cmocka_unit_test(test_schema_matches_chip_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
