/* args.c - commands, options, parser and help of the espgang command line
 * (args.h). The two tables below are the only description of the command
 * line: the parser reads them and the help is printed from them, so a help
 * text cannot name an option the parser refuses, nor leave one out
 * (tests/unit/test_cli_args.c checks both ways). */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define RUNS_DEFAULT_LIMIT 20
#define RUNS_MAX_LIMIT 1000000
#define PROBE_MS_MIN 10
#define PROBE_MS_MAX 3600000
#define PROBE_MS_DEFAULT 1000 /* station.h */
#define MAX_PROBES_MAX 1000
#define MAX_PROBES_DEFAULT 16 /* station.h */
#define HELP_WIDTH 79

/* ------------------------------------------------------------ messages */

/* Messages quote what the user typed or a file named (paths, values): its
 * control characters are shown escaped, so the message stays one line and
 * cannot drive the terminal. */
static void say(const char *lead, const char *fmt, va_list ap) {
  char raw[1024], shown[2048];
  vsnprintf(raw, sizeof raw, fmt, ap);
  fprintf(stderr, "espgang: %s%s\n", lead, eg_text_escape(shown, sizeof shown, raw));
}

void eg_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say("", fmt, ap);
  va_end(ap);
}

void eg_cli_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  say("warning: ", fmt, ap);
  va_end(ap);
}

bool eg_cli_parse_u32(const char *s, uint32_t *out) {
  if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+') return false;
  errno = 0;
  char *end = NULL;
  const unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s) return false;
  unsigned long long mul = 1;
  if (*end) {
    if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0)
      mul = 1024;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0)
      mul = 1024 * 1024;
    else
      return false;
  }
  if (v > 0xFFFFFFFFull / mul) return false; /* before multiplying: no wrap-around */
  *out = (uint32_t)(v * mul);
  return true;
}

/* ------------------------------------------------------------ tables */

/* Which options a command takes, by group. */
enum {
  G_CONN = 1 << 0,  /* how to reach the chips: the esptool-compatible commands */
  G_TRACE = 1 << 1, /* packet log */
  G_JSON = 1 << 2,
  G_WRITE = 1 << 3, /* write-flash only */
  G_IMAGE = 1 << 4, /* header fields of the images: write-flash, verify-flash */
  G_FLASH = 1 << 5, /* the gang run */
  G_RUN = 1 << 6,   /* report */
  G_LIMIT = 1 << 7, /* runs */
  G_ALWAYS = 1 << 8, /* -h, --version */
  G_RERUN = 1 << 9,  /* how --retry-failed chooses: flash, station */
  G_STATION = 1 << 10 /* the station */
};
#define G_ESPTOOL (G_CONN | G_TRACE | G_JSON | G_ALWAYS)

typedef enum opt_id {
  O_PORT, O_BAUD, O_CHIP, O_BEFORE, O_AFTER, O_NO_STUB, O_STUB, O_ATTEMPTS, O_TRACE, O_JSON, O_COMPRESS,
  O_NO_COMPRESS, O_MODE, O_FREQ, O_SIZE, O_ERASE_ALL, O_NO_VERIFY, O_OPERATOR, O_RETRY_FAILED, O_RUN, O_LIMIT,
  O_TIMING_LOG, O_SKIP_FLASHED, O_HELP, O_VERSION, O_BY_MAC, O_ALLOW_CHANGED, O_REFLASH, O_HTTP, O_TOKEN,
  O_PROBE_MS, O_MAX_PROBES, O__COUNT
} opt_id;

typedef struct opt {
  const char *long_name;
  const char *short_name; /* "-p", "-fm" or NULL */
  opt_id id;
  const char *metavar;    /* the value's name in the help; NULL: a flag */
  unsigned group;
  const char *help;       /* may hold %s: the default, from default_of() */
} opt;

static const opt opts[] = {
  {"--port", "-p", O_PORT, "PORT", G_CONN,
   "serial port, pseudo-terminal, socket://HOST:PORT (raw TCP) or rfc2217://HOST:PORT (RFC 2217: baud rate and "
   "DTR/RTS travel over the network); repeat for several ports"},
  {"--baud", "-b", O_BAUD, "N", G_CONN, "transfer baud rate%s; the connection starts at the lower of it and 115200 and "
                                        "is raised with CHANGE_BAUDRATE"},
  {"--chip", "-c", O_CHIP, "CHIP", G_CONN, "auto (default: whatever answers) or %s; another chip is refused"},
  {"--before", NULL, O_BEFORE, "ACTION", G_CONN, "reset into the bootloader: %s"},
  {"--after", "-a", O_AFTER, "ACTION", G_CONN,
   "afterwards: %s (pseudo-terminals and socket:// have no DTR/RTS: use no-reset)"},
  {"--no-stub", NULL, O_NO_STUB, NULL, G_CONN, "ROM bootloader only"},
  {"--stub", NULL, O_STUB, "PATH", G_CONN,
   "flasher stub JSON file or folder of them; it must exist (default: an installed esptool-js or esptool, ROM only "
   "when none is found)"},
  {"--connect-attempts", NULL, O_ATTEMPTS, "N", G_CONN, "connection attempts%s"},
  {"--trace", "-t", O_TRACE, NULL, G_TRACE, "log every packet"},
  {"--timing-log", NULL, O_TIMING_LOG, "FILE", G_TRACE,
   "write one JSON line per request and reply (when sent, when answered, bytes, rate) to FILE afterwards, for "
   "tools/bench"},
  {"--json", NULL, O_JSON, NULL, G_JSON, "one JSON object per line on stdout"},
  {"--compress", "-z", O_COMPRESS, NULL, G_WRITE, "send the images zlib-compressed (default: when the stub runs)"},
  {"--no-compress", "-u", O_NO_COMPRESS, NULL, G_WRITE, "send the images uncompressed"},
  {"--flash-mode", "-fm", O_MODE, "MODE", G_IMAGE, "keep, qio, qout, dio or dout, written into the bootloader's header%s"},
  {"--flash-freq", "-ff", O_FREQ, "FREQ", G_IMAGE, "keep or a frequency of the chip (%s)"},
  {"--flash-size", "-fs", O_SIZE, "SIZE", G_IMAGE, "keep, detect or a size of the chip (%s)"},
  {"--erase-all", "-e", O_ERASE_ALL, NULL, G_WRITE, "erase the whole flash first"},
  {"--no-verify", NULL, O_NO_VERIFY, NULL, G_WRITE, "skip the MD5 check after each image"},
  {"--skip-flashed", NULL, O_SKIP_FLASHED, NULL, G_WRITE,
   "compare each region's flash MD5 with the image first and skip the regions that already hold it"},
  {"--operator", NULL, O_OPERATOR, "NAME", G_FLASH, "recorded with the run"},
  {"--retry-failed", NULL, O_RETRY_FAILED, NULL, G_FLASH,
   "rerun the latest run of this station with this manifest: only its slots whose latest attempt failed"},
  {"--by-mac", NULL, O_BY_MAC, NULL, G_RERUN,
   "with --retry-failed: flash a board only if its MAC failed at this station and manifest and has not passed "
   "since (the others are recorded as skipped)"},
  {"--allow-changed-images", NULL, O_ALLOW_CHANGED, NULL, G_RERUN,
   "with --retry-failed: flash images whose sha256 differs from the retried run's (refused otherwise)"},
  {"--reflash", NULL, O_REFLASH, NULL, G_STATION, "flash boards that already passed with these images (default: "
                                                  "recorded as skipped)"},
  {"--http", NULL, O_HTTP, "[ADDR:]PORT", G_STATION,
   "serve the live dashboard on PORT (localhost; another ADDR needs --token)"},
  {"--token", NULL, O_TOKEN, "TOKEN", G_STATION, "the dashboard's access token (16..128 of A-Z a-z 0-9 - . _ ~)"},
  {"--probe-ms", NULL, O_PROBE_MS, "N", G_STATION, "how often an empty or finished slot is probed, in ms%s"},
  {"--max-probes", NULL, O_MAX_PROBES, "N", G_STATION, "probes at once%s"},
  {"--run", NULL, O_RUN, "N", G_RUN, "the run to show (default: the latest)"},
  {"--limit", NULL, O_LIMIT, "N", G_LIMIT, "how many of the latest runs%s"},
  {"--help", "-h", O_HELP, NULL, G_ALWAYS, "show this help (espgang --help: every command)"},
  {"--version", NULL, O_VERSION, NULL, G_ALWAYS, "print espgang's version"},
};

typedef struct cmd {
  const char *name; /* dashed */
  const char *args; /* positional arguments, for the usage line */
  unsigned groups;
  const char *about;
} cmd;

static const cmd cmds[] = {
  {"flash", "MANIFEST.yaml", G_FLASH | G_RERUN | G_TRACE | G_JSON | G_ALWAYS,
   "Flash every slot of the manifest concurrently, verify each by MD5 and record every unit in the manifest's "
   "SQLite log. Ports, chip, images and settings come from the manifest."},
  {"station", "MANIFEST.yaml", G_FLASH | G_RERUN | G_STATION | G_TRACE | G_JSON | G_ALWAYS,
   "Run until stopped (Ctrl-C), flashing each board the moment it is seated in a slot of the manifest: one row "
   "per board in the log, one station session; a board that already passed is not flashed again."},
  {"report", "DB|MANIFEST", G_RUN | G_JSON | G_ALWAYS, "The units of a run, from the log (a manifest names its log)."},
  {"runs", "DB|MANIFEST", G_LIMIT | G_JSON | G_ALWAYS, "The latest runs, from the log."},
  {"history", "DB|MANIFEST MAC|SLOT", G_JSON | G_ALWAYS, "Every attempt on one unit, newest first."},
  {"yield", "DB|MANIFEST", G_JSON | G_ALWAYS,
   "First-pass and final yield per run, station and day, the failure Pareto, time per stage, attempts per unit "
   "(alias stats; report, runs, history and yield: espgang report --help for their filters and formats)."},
  {"ports", "", G_JSON | G_ALWAYS, "Serial ports with VID:PID, serial number, USB location and /dev/serial/by-path names."},
  {"flash-id", "", G_ESPTOOL, "Chip, MAC and SPI flash JEDEC ID and size."},
  {"chip-id", "", G_ESPTOOL, "Chip description (the ESP32 has no chip ID: shows the MAC)."},
  {"read-mac", "", G_ESPTOOL, "Base MAC address."},
  {"read-flash", "ADDR SIZE|ALL FILE", G_ESPTOOL,
   "Read flash to FILE; with several ports each file gets the port's name before its extension."},
  {"write-flash", "ADDR FILE [ADDR FILE ...]", G_ESPTOOL | G_WRITE | G_IMAGE,
   "Write each FILE at its ADDR (a multiple of 4; one not on a 4 KiB sector takes the sector's bytes before it "
   "along, with a warning; files sharing a sector are refused) and verify it by MD5."},
  {"verify-flash", "ADDR FILE [ADDR FILE ...]", G_ESPTOOL | G_IMAGE, "Compare the flash's MD5 with the files."},
  {"erase-flash", "", G_ESPTOOL, "Erase the whole flash."},
  {"erase-region", "ADDR SIZE", G_ESPTOOL, "Erase a region (address and size multiples of 4 KiB)."},
  {"version", "", G_ALWAYS, "Print espgang's version."},
  {"help", "[COMMAND]", G_ALWAYS, "This help, or a command's."},
};

static const cmd *find_cmd(const char *name) {
  for (size_t i = 0; i < N(cmds); i++)
    if (strcmp(cmds[i].name, name) == 0) return &cmds[i];
  return NULL;
}

/* "write_flash" -> "write-flash", for both spellings. */
static void dashify(char *s) {
  for (; *s; s++)
    if (*s == '_') *s = '-';
}

/* "ESP32: 80m, 40m; default keep" from a chip's code table. */
static void codes_of(char *buf, size_t cap, const char *chip, const eg_code *t, size_t nt, const char *def) {
  size_t n = (size_t)snprintf(buf, cap, "%s: ", chip);
  for (size_t i = 0; i < nt && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", t[i].name);
  if (n < cap) snprintf(buf + n, cap - n, "; default %s", def);
}

/* The "%s" part of an option's help: its default or its choices, from the
 * settings the commands start from (options.h) and the chip table. */
static void default_of(opt_id id, char *buf, size_t cap) {
  eg_settings d;
  eg_settings_default(&d);
  const eg_chip *esp32 = eg_chip_get(EG_CHIP_ESP32);
  size_t n = 0;
  buf[0] = '\0';
  switch (id) {
  case O_BAUD: snprintf(buf, cap, ", %u..%u (default %u)", EG_BAUD_MIN, EG_BAUD_MAX, d.baud); break;
  case O_CHIP:
    for (int i = 0; i < EG_CHIP__COUNT && n < cap; i++)
      n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", eg_chip_get((eg_chip_id)i)->arg_name);
    break;
  case O_BEFORE:
    snprintf(buf, cap, "%s (default), %s, %s, %s", eg_before_name(d.before), eg_before_name(EG_BEFORE_USB_RESET),
             eg_before_name(EG_BEFORE_NO_RESET), eg_before_name(EG_BEFORE_NO_RESET_NO_SYNC));
    break;
  case O_AFTER:
    snprintf(buf, cap, "%s (default), %s, %s, %s", eg_after_name(d.after), eg_after_name(EG_AFTER_SOFT_RESET),
             eg_after_name(EG_AFTER_NO_RESET), eg_after_name(EG_AFTER_NO_RESET_STUB));
    break;
  case O_ATTEMPTS: snprintf(buf, cap, ", 1..%d (default %d)", EG_CONNECT_ATTEMPTS_MAX, d.connect_attempts); break;
  case O_MODE: snprintf(buf, cap, " (default %s)", d.flash_mode); break;
  case O_FREQ: codes_of(buf, cap, esp32->name, esp32->flash_freqs, esp32->nflash_freqs, d.flash_freq); break;
  case O_SIZE: codes_of(buf, cap, esp32->name, esp32->flash_sizes, esp32->nflash_sizes, d.flash_size); break;
  case O_LIMIT: snprintf(buf, cap, ", 1..%d (default %d)", RUNS_MAX_LIMIT, RUNS_DEFAULT_LIMIT); break;
  case O_PROBE_MS: snprintf(buf, cap, ", %d..%d (default %d)", PROBE_MS_MIN, PROBE_MS_MAX, PROBE_MS_DEFAULT); break;
  case O_MAX_PROBES: snprintf(buf, cap, ", 1..%d (default %d)", MAX_PROBES_MAX, MAX_PROBES_DEFAULT); break;
  case O_PORT:
  case O_NO_STUB:
  case O_STUB:
  case O_TRACE:
  case O_TIMING_LOG:
  case O_SKIP_FLASHED:
  case O_JSON:
  case O_COMPRESS:
  case O_NO_COMPRESS:
  case O_ERASE_ALL:
  case O_NO_VERIFY:
  case O_OPERATOR:
  case O_RETRY_FAILED:
  case O_RUN:
  case O_HELP:
  case O_VERSION:
  case O_BY_MAC:
  case O_ALLOW_CHANGED:
  case O_REFLASH:
  case O_HTTP:
  case O_TOKEN:
  case O__COUNT: break;
  }
}

/* ------------------------------------------------------------ help */

/* `text` word-wrapped to HELP_WIDTH, the first line after `lead` (padded
 * to `indent`), the rest indented by `indent`. */
static void wrapped(FILE *out, const char *lead, size_t indent, const char *text) {
  size_t col = (size_t)fprintf(out, "%s", lead);
  if (col && col >= indent) fprintf(out, "\n"), col = 0;
  fprintf(out, "%*s", (int)(indent - col), ""), col = indent;
  bool first = true;
  for (const char *p = text; *p;) {
    while (*p == ' ') p++;
    const size_t w = strcspn(p, " ");
    if (!w) break;
    if (!first && col + 1 + w > HELP_WIDTH) fprintf(out, "\n%*s", (int)indent, ""), col = indent, first = true;
    col += (size_t)fprintf(out, "%s%.*s", first ? "" : " ", (int)w, p);
    first = false;
    p += w;
  }
  fputc('\n', out);
}

static void print_option(FILE *out, const opt *o) {
  char lead[64], def[256], text[768];
  snprintf(lead, sizeof lead, "  %s%s%s%s%s", o->short_name ? o->short_name : "", o->short_name ? ", " : "",
           o->long_name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
  default_of(o->id, def, sizeof def);
  snprintf(text, sizeof text, o->help, def); /* every help has at most one %s (tests check) */
  wrapped(out, lead, 26, text);
}

static void print_options(FILE *out, unsigned groups) {
  for (size_t i = 0; i < N(opts); i++)
    if (opts[i].group & groups) print_option(out, &opts[i]);
}

static void print_cmd_line(FILE *out, const cmd *c) {
  char lead[96];
  snprintf(lead, sizeof lead, "  %s%s%s", c->name, c->args[0] ? " " : "", c->args);
  wrapped(out, lead, 34, c->about);
}

static const char exit_status[] =
  "Exit status: 0 every port/unit passed, 1 some failed, 2 bad input (arguments, manifest, image, stub file, log "
  "database path), 3 database, output or internal error, 4 interrupted.";

bool eg_cli_print_help(FILE *out, const char *command) {
  if (command) {
    const cmd *c = find_cmd(command);
    if (!c) return false;
    fprintf(out, "usage: espgang %s [options]%s%s\n\n", c->name, c->args[0] ? " " : "", c->args);
    wrapped(out, "", 0, c->about);
    fprintf(out, "\noptions:\n");
    print_options(out, c->groups);
    fprintf(out, "\n");
    wrapped(out, "", 0, exit_status);
    return true;
  }
  fprintf(out, "usage: espgang [options] COMMAND [ARGS]\n\n"
               "Production flashing of Espressif chips (ESP32, S2, S3, C2, C3, C5, C6, C61, H2,\n"
               "P4, ESP8266), many ports at once from one event loop.\n\n"
               "Gang production run (the main job):\n");
  for (size_t i = 0; i < N(cmds); i++)
    if (cmds[i].groups & (G_FLASH | G_RUN | G_LIMIT) || !strcmp(cmds[i].name, "history") ||
        !strcmp(cmds[i].name, "yield") || !strcmp(cmds[i].name, "ports"))
      print_cmd_line(out, &cmds[i]);
  fprintf(out, "\nesptool-compatible commands (each runs on every -p PORT at once):\n");
  for (size_t i = 0; i < N(cmds); i++)
    if (cmds[i].groups & G_CONN) print_cmd_line(out, &cmds[i]);
  fprintf(out, "\nOptions of the esptool-compatible commands:\n");
  print_options(out, G_ESPTOOL);
  fputc('\n', out);
  wrapped(out, "", 0, "Each command's own options: espgang COMMAND --help (e.g. espgang write-flash --help). "
                      "Commands and long options may be spelled with '_' for '-' (write_flash, --flash_mode).");
  fputc('\n', out);
  wrapped(out, "", 0, exit_status);
  return true;
}

/* ------------------------------------------------------------ parsing */

static const opt *find_opt(const char *name) {
  for (size_t i = 0; i < N(opts); i++)
    if (strcmp(name, opts[i].long_name) == 0 || (opts[i].short_name && strcmp(name, opts[i].short_name) == 0))
      return &opts[i];
  return NULL;
}

/* An option-looking argument: "-x...", but not "-" alone nor a negative
 * number (left to the command, which refuses it with its own message). */
static bool is_option(const char *a) { return a[0] == '-' && a[1] && !isdigit((unsigned char)a[1]); }

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  eg_cli_error("%s", msg);
  return EG_EXIT_USAGE;
}

/* One option's value into c. */
static int take(eg_cli *c, eg_cli_request *req, const opt *o, const char *shown, const char *val) {
  uint32_t u = 0;
  switch (o->id) {
  case O_PORT:
    if (!*val) return bad("option %s: empty port name", shown);
    c->ports[c->nports++] = val;
    break;
  case O_BAUD:
    if (!eg_cli_parse_u32(val, &u) || !eg_baud_in_range(u))
      return bad("invalid baud rate '%s' (%u..%u)", val, EG_BAUD_MIN, EG_BAUD_MAX);
    c->baud = u;
    break;
  case O_CHIP:
    if (strcasecmp(val, "auto") == 0) {
      c->chip = NULL;
    } else if (!(c->chip = eg_chip_by_name(val))) {
      char names[256];
      default_of(O_CHIP, names, sizeof names);
      return bad("unknown chip '%s' (auto, %s)", val, names);
    }
    break;
  case O_BEFORE:
    if (!eg_before_parse(val, &c->before))
      return bad("invalid --before '%s' (default-reset, usb-reset, no-reset, no-reset-no-sync)", val);
    c->before_set = true;
    break;
  case O_AFTER:
    if (!eg_after_parse(val, &c->after))
      return bad("invalid --after '%s' (hard-reset, soft-reset, no-reset, no-reset-stub)", val);
    c->after_set = true;
    break;
  case O_NO_STUB: c->no_stub = true; break;
  case O_STUB:
    if (!*val) return bad("option %s: empty path", shown);
    c->stub_path = val;
    break;
  case O_ATTEMPTS:
    if (!eg_cli_parse_u32(val, &u) || u < 1 || u > EG_CONNECT_ATTEMPTS_MAX)
      return bad("invalid --connect-attempts '%s' (1..%d)", val, EG_CONNECT_ATTEMPTS_MAX);
    c->connect_attempts = (int)u;
    break;
  case O_TRACE: c->trace = true; break;
  case O_TIMING_LOG:
    if (!*val) return bad("option %s: empty path", shown);
    c->timing_log = val;
    break;
  case O_SKIP_FLASHED: c->skip_flashed = true; break;
  case O_JSON: c->json = true; break;
  case O_COMPRESS: c->compress = 1; break;
  case O_NO_COMPRESS: c->compress = 0; break;
  case O_MODE: c->flash_mode = val; break;
  case O_FREQ: c->flash_freq = val; break;
  case O_SIZE: c->flash_size = val; break;
  case O_ERASE_ALL: c->erase_all = true; break;
  case O_NO_VERIFY: c->no_verify = true; break;
  case O_OPERATOR:
    if (!*val) return bad("option %s: empty name", shown);
    c->operator_name = val;
    break;
  case O_RETRY_FAILED: c->retry_failed = true; break;
  case O_RUN: {
    char *end = NULL;
    errno = 0;
    const long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end || v < 1) return bad("invalid --run '%s' (a run number)", val);
    c->run_id = v;
    break;
  }
  case O_LIMIT:
    if (!eg_cli_parse_u32(val, &u) || u < 1 || u > RUNS_MAX_LIMIT)
      return bad("invalid --limit '%s' (1..%d)", val, RUNS_MAX_LIMIT);
    c->limit = (int)u;
    break;
  case O_BY_MAC: c->by_mac = true; break;
  case O_ALLOW_CHANGED: c->allow_changed_images = true; break;
  case O_REFLASH: c->reflash = true; break;
  case O_HTTP:
    if (!*val) return bad("option %s: empty address", shown);
    c->http = val;
    break;
  case O_TOKEN:
    if (!*val) return bad("option %s: empty token", shown);
    c->token = val;
    break;
  case O_PROBE_MS:
    if (!eg_cli_parse_u32(val, &u) || u < PROBE_MS_MIN || u > PROBE_MS_MAX)
      return bad("invalid --probe-ms '%s' (%d..%d)", val, PROBE_MS_MIN, PROBE_MS_MAX);
    c->probe_ms = u;
    break;
  case O_MAX_PROBES:
    if (!eg_cli_parse_u32(val, &u) || u < 1 || u > MAX_PROBES_MAX)
      return bad("invalid --max-probes '%s' (1..%d)", val, MAX_PROBES_MAX);
    c->max_probes = u;
    break;
  case O_HELP: req->help = true; break;
  case O_VERSION: req->version = true; break;
  case O__COUNT: break;
  }
  return EG_EXIT_OK;
}

int eg_cli_parse(int argc, char **argv, eg_cli *c, eg_cli_request *req) {
  memset(c, 0, sizeof *c);
  memset(req, 0, sizeof *req);
  eg_settings d;
  eg_settings_default(&d); /* the one set of defaults (options.h) */
  c->compress = d.compress;
  c->connect_attempts = d.connect_attempts;
  c->before = d.before;
  c->after = d.after;
  c->limit = RUNS_DEFAULT_LIMIT;
  c->ports = calloc((size_t)argc + 1, sizeof *c->ports);
  c->args = calloc((size_t)argc + 1, sizeof *c->args);
  /* The command line as typed, for the log. */
  size_t total = 1;
  for (int i = 0; i < argc; i++) total += strlen(argv[i]) + 1;
  c->command_line = calloc(total, 1);
  if (!c->ports || !c->args || !c->command_line) return EG_EXIT_INTERNAL;
  for (int i = 0; i < argc; i++) {
    if (i) strcat(c->command_line, " ");
    strcat(c->command_line, argv[i]);
  }

  const opt *given[O__COUNT] = {NULL};
  bool options_done = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!options_done && strcmp(a, "--") == 0) {
      options_done = true;
      continue;
    }
    if (!options_done && is_option(a)) {
      /* "--name=value": the name is what comes before the first '='. */
      const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
      const size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
      char name[48];
      if (nlen >= sizeof name) return bad("unknown option %.*s (see espgang --help)", (int)nlen, a);
      memcpy(name, a, nlen);
      name[nlen] = '\0';
      if (name[1] == '-') dashify(name + 2);
      const opt *o = find_opt(name);
      if (!o) return bad("unknown option %s (see espgang --help)", name);
      const char *val = eq ? eq + 1 : NULL;
      if (o->metavar && !val) {
        if (i + 1 >= argc) return bad("option %s needs a value (%s)", name, o->metavar);
        val = argv[++i];
      }
      if (!o->metavar && val) return bad("option %s takes no value", name);
      const int rc = take(c, req, o, name, val);
      if (rc != EG_EXIT_OK) return rc;
      given[o->id] = o;
      continue;
    }
    if (!c->command) {
      char name[32];
      const cmd *k = NULL;
      if (strlen(a) < sizeof name) {
        memcpy(name, a, strlen(a) + 1);
        dashify(name);
        k = find_cmd(name);
      }
      if (!k) return bad("unknown command '%s' (see espgang --help)", a);
      c->command = k->name;
      continue;
    }
    c->args[c->nargs++] = a;
  }

  /* "help [COMMAND]" is -h for that command; "version" is --version. */
  if (c->command && strcmp(c->command, "help") == 0) {
    req->help = true;
    c->command = NULL;
    if (c->nargs > 1) return bad("usage: espgang help [COMMAND]");
    if (c->nargs == 1) {
      char name[32];
      const cmd *k = NULL;
      if (strlen(c->args[0]) < sizeof name) {
        memcpy(name, c->args[0], strlen(c->args[0]) + 1);
        dashify(name);
        k = find_cmd(name);
      }
      if (!k || strcmp(k->name, "help") == 0) return bad("help: unknown command '%s' (see espgang --help)", c->args[0]);
      c->command = k->name;
      c->nargs = 0;
    }
  } else if (c->command && strcmp(c->command, "version") == 0) {
    req->version = true;
    c->command = NULL;
    if (c->nargs) return bad("usage: espgang version");
  }

  /* An option the command would not read is a mistake, not a no-op. */
  const cmd *k = c->command ? find_cmd(c->command) : NULL;
  for (int id = 0; id < O__COUNT; id++) {
    if (!given[id]) continue;
    if (k && !(given[id]->group & k->groups))
      return bad("option %s does not apply to %s (see espgang %s --help)", given[id]->long_name, k->name, k->name);
    if (!k && !(given[id]->group & G_ALWAYS) && !req->help && !req->version)
      return bad("option %s needs a command (see espgang --help)", given[id]->long_name);
  }
  return EG_EXIT_OK;
}

void eg_cli_release(eg_cli *c) {
  free(c->ports);
  free(c->args);
  free(c->command_line);
  c->ports = NULL, c->args = NULL, c->command_line = NULL;
}

/* ------------------------------------------------------------ tests */

const char *eg_cli_option_name(size_t i, const char **short_name) {
  if (i >= N(opts)) return NULL;
  if (short_name) *short_name = opts[i].short_name;
  return opts[i].long_name;
}

const char *eg_cli_command_name(size_t i) { return i < N(cmds) ? cmds[i].name : NULL; }

bool eg_cli_command_takes(const char *command, const char *long_name) {
  const cmd *k = find_cmd(command);
  const opt *o = find_opt(long_name);
  return k && o && (o->group & k->groups);
}
