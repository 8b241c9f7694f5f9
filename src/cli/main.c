/* main.c - the espgang command: parse (args.c), dispatch, and make sure
 * what was printed reached its destination.
 *
 * Output is part of the result: `espgang runs DB > /dev/full` or a report
 * to a closed stdout must not exit 0 with nothing written. Standard output
 * and error are flushed and checked at the end; a write error turns a
 * successful exit into EG_EXIT_INTERNAL (3) with one line on stderr. A
 * closed stdout is refused before anything runs. (A closed pipe ends the
 * process by SIGPIPE, as for any Unix filter.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "errors.h"

/* A closed descriptor 0, 1 or 2 would be handed to the next open(): the
 * log database or an image would become "stdout", and printf would write
 * into it. Each closed one is opened on /dev/null first. Returns false
 * when stdout was closed (its output has nowhere to go). */
static bool guard_std_fds(void) {
  bool stdout_ok = true;
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (n >= 0 && n != fd) close(n); /* cannot happen: the lowest free descriptor is fd */
    if (fd == 1) stdout_ok = false;
  }
  return stdout_ok;
}

/* Flush and check both streams; returns the exit code to use. */
static int finish_output(int rc) {
  const bool out_bad = fflush(stdout) != 0 || ferror(stdout);
  const int out_errno = errno;
  if (out_bad) {
    fprintf(stderr, "espgang: cannot write to standard output: %s\n", strerror(out_errno));
    if (rc == EG_EXIT_OK) rc = EG_EXIT_INTERNAL;
  }
  /* Nothing can be said about a failing stderr; its status says it. */
  if ((fflush(stderr) != 0 || ferror(stderr)) && rc == EG_EXIT_OK) rc = EG_EXIT_INTERNAL;
  return rc;
}

static int run(eg_cli *c, const eg_cli_request *req) {
  if (req->version) {
    printf("espgang %s\n", EG_VERSION);
    return EG_EXIT_OK;
  }
  if (req->help) {
    eg_cli_print_help(stdout, c->command);
    return EG_EXIT_OK;
  }
  if (!c->command) {
    eg_cli_error("no command given (see espgang --help)");
    return EG_EXIT_USAGE;
  }
  if (strcmp(c->command, "flash") == 0) return eg_cmd_flash(c);
  if (strcmp(c->command, "station") == 0) return eg_cmd_station(c);
  if (strcmp(c->command, "ports") == 0) return eg_cmd_ports(c);
  return eg_cmd_esptool(c);
}

int main(int argc, char **argv) {
  if (!guard_std_fds()) {
    eg_cli_error("standard output is closed; give it a file or /dev/null");
    return finish_output(EG_EXIT_INTERNAL);
  }
  /* The log's reports take their own options (cmd_report.c). */
  const int report_rc = eg_cmd_report_main(argc, argv);
  if (report_rc >= 0) return finish_output(report_rc);
  eg_cli c;
  eg_cli_request req;
  int rc = eg_cli_parse(argc, argv, &c, &req);
  if (rc == EG_EXIT_OK) rc = run(&c, &req);
  eg_cli_release(&c);
  return finish_output(rc);
}
