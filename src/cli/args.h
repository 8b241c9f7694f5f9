/* args.h - the espgang command line: its commands and options as one table,
 * the parser, and the help texts generated from that table (so the help
 * lists exactly what the parser accepts, command by command).
 *
 * esptool compatibility: commands and long options may be spelled with
 * dashes or underscores (write_flash / write-flash, --flash_mode /
 * --flash-mode); options may come before or after the command; "--long=V"
 * and "--long V" both work; "--" ends the options. An option a command does
 * not use is refused (it would otherwise be silently ignored).
 *
 * Exit codes: every parse error is a usage error (EG_EXIT_USAGE, 2) with a
 * one-line message on stderr; EG_EXIT_INTERNAL only when out of memory.
 */
#ifndef EG_CLI_ARGS_H
#define EG_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"

typedef struct eg_cli_request {
  bool help;    /* -h/--help (or the "help" command): print help, exit 0 */
  bool version; /* --version (or the "version" command) */
} eg_cli_request;

/* Parse argv into *c (the strings stay argv's; c->ports, c->args and
 * c->command_line are malloc'd: eg_cli_release). c->command is the dashed
 * name or NULL. Returns EG_EXIT_OK or the exit code of the error (the
 * message is printed). On EG_EXIT_OK with req->help, c->command names the
 * command whose help was asked for (NULL: the global help). */
int eg_cli_parse(int argc, char **argv, eg_cli *c, eg_cli_request *req);
void eg_cli_release(eg_cli *c);

/* The help of one command (usage, what it does, each option it accepts
 * with its default), or the global help for NULL. false for an unknown
 * command. */
bool eg_cli_print_help(FILE *out, const char *command);

/* For the tests: the option table and the command names, by index
 * (NULL past the end). */
const char *eg_cli_option_name(size_t i, const char **short_name);
const char *eg_cli_command_name(size_t i);
/* Does `command` (dashed) accept the option `long_name`? */
bool eg_cli_command_takes(const char *command, const char *long_name);

#endif
