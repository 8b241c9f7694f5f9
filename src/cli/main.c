/* main.c - argument parsing and dispatch for the espgang command line.
 *
 * esptool compatibility: commands and long options may be spelled with
 * dashes or underscores (write_flash / write-flash, --flash_mode /
 * --flash-mode); global options may come before or after the command.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "errors.h"

static const char usage[] =
  "usage: espgang [options] COMMAND [ARGS]\n"
  "\n"
  "Production flashing of ESP32 boards, many ports at once from one event loop.\n"
  "\n"
  "Gang production run (the main job):\n"
  "  flash MANIFEST.yaml            flash every slot of the manifest concurrently, verify each\n"
  "                                 by MD5 and record every unit in the manifest's SQLite log\n"
  "      --operator NAME            recorded with the run\n"
  "      --retry-failed             flash only the slots whose latest attempt in the latest\n"
  "                                 run did not pass\n"
  "      --json                     one JSON event per line instead of the live display\n"
  "      --by-mac                   with --retry-failed: flash a unit only if its MAC failed\n"
  "                                 (and has not passed since); the others are recorded skipped\n"
  "      --allow-changed-images     with --retry-failed: the images may differ from the run's\n"
  "  station MANIFEST.yaml          run until stopped, flashing each board the moment it is\n"
  "                                 seated; one row per unit, one session run in the log\n"
  "      --reflash                  flash boards that already passed with these images\n"
  "      --retry-failed --by-mac    flash only boards whose MAC failed at this station\n"
  "      --http [ADDR:]PORT         live dashboard (localhost unless ADDR; then --token)\n"
  "      --token TOKEN              access token for the dashboard\n"
  "      --probe-ms N               how often an empty or finished slot is probed (1000)\n"
  "      --max-probes N             probes at once (16)\n"
  "      --operator NAME, --json\n"
  "Reading the log (read-only; `espgang report --help` lists filters and formats):\n"
  "  report DB|MANIFEST             units of the latest run (--run N, --last N, --since 8h ...)\n"
  "  runs DB|MANIFEST               the latest runs with their yields\n"
  "  history DB|MANIFEST MAC|SLOT   every attempt on one unit, newest first\n"
  "  yield DB|MANIFEST              yields per run/station/day, failure Pareto, stage times\n"
  "      --csv | --json | --wide | --html FILE (report) | --db A --db B (several logs)\n"
  "  ports [--json]                 serial ports with VID:PID, serial number, USB location\n"
  "\n"
  "esptool-compatible commands (each runs on every -p PORT at once):\n"
  "  flash-id                       chip, MAC and SPI flash JEDEC ID and size\n"
  "  chip-id                        chip description (ESP32: no chip id, shows the MAC)\n"
  "  read-mac                       base MAC address\n"
  "  read-flash ADDR SIZE FILE      read flash to FILE (SIZE may be ALL); with several ports\n"
  "                                 each file gets the port's name before its extension\n"
  "  write-flash [opts] ADDR FILE [ADDR FILE ...]\n"
  "      -z, --compress / -u, --no-compress   (default: compressed when the stub runs)\n"
  "      -fm, --flash-mode keep|qio|qout|dio|dout    (default keep)\n"
  "      -ff, --flash-freq keep|80m|40m|26m|20m      (default keep)\n"
  "      -fs, --flash-size keep|detect|1MB..128MB    (default keep)\n"
  "      -e, --erase-all            erase the whole flash first\n"
  "      --no-verify                skip the MD5 check after each image\n"
  "  verify-flash [opts] ADDR FILE [ADDR FILE ...]   compare flash MD5 with the files\n"
  "  erase-flash                    erase the whole flash\n"
  "  erase-region ADDR SIZE         erase a 4 KiB-aligned region\n"
  "\n"
  "Options:\n"
  "  -p, --port PORT      serial port, pseudo-terminal, socket://host:port (raw TCP) or\n"
  "                       rfc2217://host:port (RFC 2217: baud and DTR/RTS over the\n"
  "                       network); repeat for several ports\n"
  "  -b, --baud N         transfer baud rate (default 460800); the connection starts at\n"
  "                       115200 and is raised with CHANGE_BAUDRATE\n"
  "  -c, --chip CHIP      auto (default), esp32, esp32s2, esp32s3, esp32c3, esp32c6,\n"
  "                       esp32h2, esp32c2, esp8266; another chip is refused\n"
  "  --before ACTION      default-reset (default), usb-reset, no-reset, no-reset-no-sync\n"
  "  --after ACTION       hard-reset (default), soft-reset, no-reset, no-reset-stub\n"
  "                       (pseudo-terminals and socket:// have no DTR/RTS: use no-reset)\n"
  "  --no-stub            ROM bootloader only\n"
  "  --stub PATH          flasher stub JSON file or folder (default: an installed\n"
  "                       esptool-js or esptool; ROM only when none is found)\n"
  "  --connect-attempts N (default 7)\n"
  "  --trace              log every packet\n"
  "  --json               JSON lines on stdout\n"
  "  -h, --help, --version\n"
  "\n"
  "Exit status: 0 all ports/units passed, 1 some failed, 2 bad input, 3 database or\n"
  "internal error, 4 interrupted.\n";

void eg_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("espgang: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

bool eg_cli_parse_u32(const char *s, uint32_t *out) {
  if (!s || !*s) return false;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 0);
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
  v *= mul;
  if (v > 0xFFFFFFFFull) return false;
  *out = (uint32_t)v;
  return true;
}

/* "--flash_mode" -> "--flash-mode" (in place on a copy). */
static void dashify(char *s) {
  for (; *s; s++)
    if (*s == '_') *s = '-';
}

typedef enum { O_PORT, O_BAUD, O_CHIP, O_BEFORE, O_AFTER, O_NO_STUB, O_STUB, O_ATTEMPTS, O_TRACE, O_JSON, O_COMPRESS,
               O_NO_COMPRESS, O_MODE, O_FREQ, O_SIZE, O_ERASE_ALL, O_NO_VERIFY, O_OPERATOR, O_RETRY_FAILED, O_RUN,
               O_LIMIT, O_HELP, O_VERSION, O_BY_MAC, O_ALLOW_CHANGED, O_REFLASH, O_HTTP, O_TOKEN, O_PROBE_MS,
               O_MAX_PROBES } opt_id;

typedef struct opt {
  const char *long_name;
  const char *short_name; /* "-p", "-fm" or NULL */
  opt_id id;
  bool arg;
} opt;

static const opt opts[] = {
  {"--port", "-p", O_PORT, true},       {"--baud", "-b", O_BAUD, true},
  {"--chip", "-c", O_CHIP, true},       {"--before", NULL, O_BEFORE, true},
  {"--after", "-a", O_AFTER, true},     {"--no-stub", NULL, O_NO_STUB, false},
  {"--stub", NULL, O_STUB, true},       {"--connect-attempts", NULL, O_ATTEMPTS, true},
  {"--trace", "-t", O_TRACE, false},    {"--json", NULL, O_JSON, false},
  {"--compress", "-z", O_COMPRESS, false}, {"--no-compress", "-u", O_NO_COMPRESS, false},
  {"--flash-mode", "-fm", O_MODE, true}, {"--flash-freq", "-ff", O_FREQ, true},
  {"--flash-size", "-fs", O_SIZE, true}, {"--erase-all", "-e", O_ERASE_ALL, false},
  {"--no-verify", NULL, O_NO_VERIFY, false}, {"--operator", NULL, O_OPERATOR, true},
  {"--retry-failed", NULL, O_RETRY_FAILED, false}, {"--run", NULL, O_RUN, true},
  {"--limit", NULL, O_LIMIT, true},     {"--help", "-h", O_HELP, false},
  {"--version", NULL, O_VERSION, false},
  {"--by-mac", NULL, O_BY_MAC, false},  {"--allow-changed-images", NULL, O_ALLOW_CHANGED, false},
  {"--reflash", NULL, O_REFLASH, false}, {"--http", NULL, O_HTTP, true},
  {"--token", NULL, O_TOKEN, true},     {"--probe-ms", NULL, O_PROBE_MS, true},
  {"--max-probes", NULL, O_MAX_PROBES, true},
};

static const char *const commands[] = {"flash-id", "chip-id", "read-mac", "read-flash", "write-flash", "verify-flash",
                                       "erase-flash", "erase-region", "flash", "station", "report", "runs", "history", "ports",
                                       "version", "help"};

static int parse(int argc, char **argv, eg_cli *c) {
  memset(c, 0, sizeof *c);
  c->compress = -1;
  c->connect_attempts = EG_CONNECT_ATTEMPTS;
  c->before = EG_BEFORE_DEFAULT_RESET;
  c->after = EG_AFTER_HARD_RESET;
  c->ports = calloc((size_t)argc + 1, sizeof *c->ports);
  c->args = calloc((size_t)argc + 1, sizeof *c->args);
  if (!c->ports || !c->args) return EG_EXIT_INTERNAL;
  /* The command line as typed, for the log. */
  size_t total = 1;
  for (int i = 0; i < argc; i++) total += strlen(argv[i]) + 1;
  if (!(c->command_line = calloc(total, 1))) return EG_EXIT_INTERNAL;
  for (int i = 0; i < argc; i++) {
    if (i) strcat(c->command_line, " ");
    strcat(c->command_line, argv[i]);
  }

  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (a[0] == '-' && a[1] && !(isdigit((unsigned char)a[1]))) {
      char name[64];
      const char *val = NULL;
      snprintf(name, sizeof name, "%s", a);
      char *eq = strchr(name, '=');
      if (eq && name[1] == '-') {
        *eq = '\0';
        val = a + (eq - name) + 1;
      }
      if (name[1] == '-') dashify(name + 2);
      const opt *o = NULL;
      for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
        if (strcmp(name, opts[k].long_name) == 0 || (opts[k].short_name && strcmp(name, opts[k].short_name) == 0)) {
          o = &opts[k];
          break;
        }
      if (!o) {
        eg_cli_error("unknown option %s (see espgang --help)", a);
        return EG_EXIT_USAGE;
      }
      if (o->arg && !val) {
        if (i + 1 >= argc) {
          eg_cli_error("option %s needs a value", a);
          return EG_EXIT_USAGE;
        }
        val = argv[++i];
      }
      if (!o->arg && val) {
        eg_cli_error("option %s takes no value", name);
        return EG_EXIT_USAGE;
      }
      uint32_t u = 0;
      switch (o->id) {
      case O_PORT: c->ports[c->nports++] = val; break;
      case O_BAUD:
        if (!eg_cli_parse_u32(val, &u) || !eg_baud_in_range(u)) {
          eg_cli_error("invalid baud rate '%s' (%u..%u)", val, EG_BAUD_MIN, EG_BAUD_MAX);
          return EG_EXIT_USAGE;
        }
        c->baud = u;
        break;
      case O_CHIP:
        if (strcasecmp(val, "auto") == 0) {
          c->chip = NULL;
        } else if (!(c->chip = eg_chip_by_name(val))) {
          eg_cli_error("unknown chip '%s' (auto, esp32, esp32s2, esp32s3, esp32c3, esp32c6, esp32h2, esp32c2, esp8266)", val);
          return EG_EXIT_USAGE;
        }
        break;
      case O_BEFORE:
        if (!eg_before_parse(val, &c->before)) {
          eg_cli_error("invalid --before '%s' (default-reset, usb-reset, no-reset, no-reset-no-sync)", val);
          return EG_EXIT_USAGE;
        }
        c->before_set = true;
        break;
      case O_AFTER:
        if (!eg_after_parse(val, &c->after)) {
          eg_cli_error("invalid --after '%s' (hard-reset, soft-reset, no-reset, no-reset-stub)", val);
          return EG_EXIT_USAGE;
        }
        c->after_set = true;
        break;
      case O_NO_STUB: c->no_stub = true; break;
      case O_STUB: c->stub_path = val; break;
      case O_ATTEMPTS:
        if (!eg_cli_parse_u32(val, &u) || u < 1 || u > EG_CONNECT_ATTEMPTS_MAX) {
          eg_cli_error("invalid --connect-attempts '%s' (1..%d)", val, EG_CONNECT_ATTEMPTS_MAX);
          return EG_EXIT_USAGE;
        }
        c->connect_attempts = (int)u;
        break;
      case O_TRACE: c->trace = true; break;
      case O_JSON: c->json = true; break;
      case O_COMPRESS: c->compress = 1; break;
      case O_NO_COMPRESS: c->compress = 0; break;
      case O_MODE: c->flash_mode = val; break;
      case O_FREQ: c->flash_freq = val; break;
      case O_SIZE: c->flash_size = val; break;
      case O_ERASE_ALL: c->erase_all = true; break;
      case O_NO_VERIFY: c->no_verify = true; break;
      case O_OPERATOR: c->operator_name = val; break;
      case O_RETRY_FAILED: c->retry_failed = true; break;
      case O_RUN: {
        char *end = NULL;
        c->run_id = strtoll(val, &end, 10);
        if (!end || *end || c->run_id < 1) {
          eg_cli_error("invalid --run '%s' (a run number)", val);
          return EG_EXIT_USAGE;
        }
        break;
      }
      case O_LIMIT:
        if (!eg_cli_parse_u32(val, &u) || u < 1) {
          eg_cli_error("invalid --limit '%s'", val);
          return EG_EXIT_USAGE;
        }
        c->limit = (int)u;
        break;
      case O_BY_MAC: c->by_mac = true; break;
      case O_ALLOW_CHANGED: c->allow_changed_images = true; break;
      case O_REFLASH: c->reflash = true; break;
      case O_HTTP: c->http = val; break;
      case O_TOKEN: c->token = val; break;
      case O_PROBE_MS:
        if (!eg_cli_parse_u32(val, &u) || u < 10 || u > 3600000) {
          eg_cli_error("invalid --probe-ms '%s' (10..3600000)", val);
          return EG_EXIT_USAGE;
        }
        c->probe_ms = u;
        break;
      case O_MAX_PROBES:
        if (!eg_cli_parse_u32(val, &u) || u < 1 || u > 1000) {
          eg_cli_error("invalid --max-probes '%s' (1..1000)", val);
          return EG_EXIT_USAGE;
        }
        c->max_probes = u;
        break;
      case O_HELP: c->command = "help"; break;
      case O_VERSION: c->command = "version"; break;
      }
      continue;
    }
    if (!c->command) {
      char cmd[64];
      snprintf(cmd, sizeof cmd, "%s", a);
      dashify(cmd);
      for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(cmd, commands[k]) == 0) c->command = commands[k];
      if (!c->command) {
        eg_cli_error("unknown command '%s' (see espgang --help)", a);
        return EG_EXIT_USAGE;
      }
      continue;
    }
    c->args[c->nargs++] = a;
  }
  return EG_EXIT_OK;
}

int main(int argc, char **argv) {
  /* The log's reports take their own options (cmd_report.c). */
  const int report_rc = eg_cmd_report_main(argc, argv);
  if (report_rc >= 0) return report_rc;
  eg_cli c;
  int rc = parse(argc, argv, &c);
  if (rc == EG_EXIT_OK) {
    if (!c.command || strcmp(c.command, "help") == 0) {
      fputs(usage, c.command ? stdout : stderr);
      rc = c.command ? EG_EXIT_OK : EG_EXIT_USAGE;
    } else if (strcmp(c.command, "version") == 0) {
      printf("espgang %s\n", EG_VERSION);
    } else if (strcmp(c.command, "flash") == 0) {
      rc = eg_cmd_flash(&c);
    } else if (strcmp(c.command, "station") == 0) {
      rc = eg_cmd_station(&c);
    } else if (strcmp(c.command, "ports") == 0) {
      rc = eg_cmd_ports(&c);
    } else {
      rc = eg_cmd_esptool(&c);
    }
  }
  free(c.ports);
  free(c.args);
  free(c.command_line);
  return rc;
}
