/* cli.h - the espgang command line: parsed options shared by the commands. */
#ifndef EG_CLI_H
#define EG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chips.h"
#include "options.h"
#include "stubfile.h"

/* Exit codes (README "Exit codes"). */
enum {
  EG_EXIT_OK = 0,        /* every port / unit succeeded */
  EG_EXIT_FAILED = 1,    /* some ports / units failed */
  EG_EXIT_USAGE = 2,     /* bad input: arguments, manifest, image, stub */
  EG_EXIT_INTERNAL = 3,  /* database or internal error; a record may be on stderr */
  EG_EXIT_ABORTED = 4    /* stopped by SIGINT/SIGTERM */
};

typedef struct eg_cli {
  const char *command;     /* normalised: dashes */
  const char **args;       /* positional arguments after the command */
  size_t nargs;
  const char **ports;      /* -p, repeatable */
  size_t nports;
  uint32_t baud;           /* -b; 0 = default */
  bool before_set, after_set;
  eg_before before;
  eg_after after;
  const eg_chip *chip;     /* -c; NULL = auto */
  bool no_stub;
  const char *stub_path;
  int connect_attempts;
  bool trace;
  const char *timing_log;  /* --timing-log FILE */
  bool json;
  /* write-flash / verify-flash */
  int compress;            /* -1 default (with the stub), 0 -u, 1 -z */
  const char *flash_mode, *flash_freq, *flash_size;
  bool erase_all;
  bool no_verify;
  bool skip_flashed;
  /* flash / station / report */
  const char *operator_name;
  bool retry_failed;
  bool by_mac;               /* --retry-failed --by-mac */
  bool allow_changed_images; /* --retry-failed with images that changed */
  /* station */
  bool reflash;              /* flash units that already passed */
  const char *http;          /* --http [ADDR:]PORT: the dashboard */
  const char *token;         /* --token: required beyond localhost */
  uint32_t probe_ms;         /* 0: the default period */
  uint32_t max_probes;       /* 0: the default */
  long long run_id;
  int limit;
  char *command_line;      /* the whole argv, for the log */
} eg_cli;

/* write-flash / verify-flash: ADDRESS FILE pairs at most. */
#define EG_CLI_MAX_IMAGES 64

/* The exit status for a command whose ports/units ended with these results
 * (EG_OK for a pass): 4 interrupted, else the worst class among them:
 * 3 internal, 2 bad input, 1 a unit failed, 0 all passed (errors.h). */
int eg_cli_exit_code(const eg_err *results, size_t n, bool interrupted);

/* --timing-log: a log to hand the device configuration (NULL without the
 * option), and writing it after the run (false: it could not be written,
 * the message is printed). */
struct eg_timing_log;
struct eg_timing_log *eg_cli_timing_begin(const eg_cli *c);
bool eg_cli_timing_end(const eg_cli *c, struct eg_timing_log *t);

/* Report a usage/input error on stderr: "espgang: <msg>". */
void eg_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, as "espgang: warning: ..." (the run goes on). */
void eg_cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parse "0x1000", "4096", "4k", "1M", "4MB"; false if malformed. */
bool eg_cli_parse_u32(const char *s, uint32_t *out);

/* Commands. Each returns an exit code. */
int eg_cmd_esptool(eg_cli *c);  /* flash-id ... erase-region */
int eg_cmd_flash(eg_cli *c);    /* the gang run from a manifest */
int eg_cmd_station(eg_cli *c);  /* the station: flash each board as it is seated */
/* report / runs / history / yield: parses its own options from argv;
 * returns -1 when argv holds another command. */
int eg_cmd_report_main(int argc, char **argv);
int eg_cmd_ports(eg_cli *c);    /* cmd_ports.c */

/* `espgang ports` output for a list (cmd_ports.c): the table, or with json
 * one object per line. */
struct eg_port_info;
void eg_ports_print(FILE *out, const struct eg_port_info *list, size_t count, bool json);

/* Stubs for the chips a job may meet: stubs[chip id], NULL where none was
 * found (ROM only). mode NONE: all NULL; PATH: the file/folder must give a
 * stub for `chip` (or every chip when chip is NULL and path is a folder);
 * AUTO: whatever the search finds. old[chip id]: the older build some
 * revisions need (chip->stub_old: ESP32-P4 below v3.0), looked for in the
 * same places, NULL when absent (those revisions then use the ROM loader).
 * storage holds 2 * EG_CHIP__COUNT stubs. On a hard error prints it and
 * returns false. */
#define EG_CLI_STUB_STORAGE (2 * EG_CHIP__COUNT)
bool eg_cli_load_stubs(eg_stub_mode mode, const char *path, const eg_chip *chip, eg_stub *storage,
                       const eg_stub *stubs[EG_CHIP__COUNT], const eg_stub *old[EG_CHIP__COUNT], bool quiet_missing,
                       char *note, size_t note_len);
void eg_cli_free_stubs(eg_stub *storage);

#endif
