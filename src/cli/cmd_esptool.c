/* cmd_esptool.c - esptool's commands, run on every -p port at once.
 *
 * The command line becomes a job list (one job per port, the same
 * operations on each) that the scheduler runs with a live display and no
 * log; the images of write-flash are loaded, patched and compressed once and
 * shared. read-flash files are opened before any board is touched and
 * written off the loop thread (uv_fs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "display.h"
#include "image.h"
#include "jobs.h"
#include "jsonw.h"
#include "prep.h"
#include "scheduler.h"

/* read-flash: one output file per port. */
typedef struct outfile {
  struct runner *r;
  size_t job;
  char path[4096];
  int fd;
  bool created;        /* it did not exist before: removed if the read fails */
  uint8_t *data;       /* taken from the device */
  uint32_t len;
  uint64_t read_ms;
  uv_fs_t req;
} outfile;

typedef struct runner {
  uv_loop_t loop;
  eg_cli *c;
  eg_settings set;
  eg_dev_config dcfg;
  const eg_stub *stubs[EG_CHIP__COUNT];
  const eg_stub *stubs_old[EG_CHIP__COUNT];
  eg_stub stub_storage[EG_CLI_STUB_STORAGE];
  eg_job *jobs;
  eg_err *results;
  outfile *out;        /* read-flash only */
  size_t n;
  eg_display *disp;
  eg_dev_op ops[EG_CLI_MAX_IMAGES + 2];
  size_t nops;
  /* images */
  eg_image *images;
  const eg_image **image_ptrs;
  size_t nimages;
  eg_imageset *imgs;
  struct eg_timing_log *timing; /* --timing-log */
} runner;

/* Label for a port: "ttyUSB0", "slot03", "127.0.0.1:5001". */
static void port_label(const char *port, char *out, size_t n) {
  bool ok = false;
  char msg[128];
  if (eg_port_url(port, &ok, out, n, msg, sizeof msg) && ok) return;
  const char *slash = strrchr(port, '/');
  snprintf(out, n, "%s", slash && slash[1] ? slash + 1 : port);
}

/* read-flash output name for port i: FILE as given for one port, else the
 * port's label before the extension. */
static void out_name(const char *file, const char *label, bool many, char *out, size_t n) {
  if (!many) {
    snprintf(out, n, "%s", file);
    return;
  }
  char safe[64];
  size_t j = 0;
  for (const char *s = label; *s && j + 1 < sizeof safe; s++) safe[j++] = (*s == ':' || *s == '/') ? '_' : *s;
  safe[j] = '\0';
  const char *dot = strrchr(file, '.');
  const char *slash = strrchr(file, '/');
  if (dot && (!slash || dot > slash))
    snprintf(out, n, "%.*s-%s%s", (int)(dot - file), file, safe, dot);
  else
    snprintf(out, n, "%s-%s", file, safe);
}

/* --------------------------------------------------------------- events */

static void ev_stage(void *ctx, size_t job, const eg_unit_record *u, eg_stage stage) {
  runner *r = ctx;
  (void)u;
  eg_display_state(r->disp, job, eg_stage_label(stage));
}

static void ev_identity(void *ctx, size_t job, const eg_unit_record *u) {
  runner *r = ctx;
  if (u->has_flash_id) return; /* print once, when the chip is known */
  char mac[18], xtal[32] = "crystal unknown";
  if (u->crystal_mhz) snprintf(xtal, sizeof xtal, "crystal %d MHz", u->crystal_mhz);
  eg_display_message(r->disp, "%s: %s, MAC %s, %s", r->jobs[job].label, u->chip_desc[0] ? u->chip_desc : u->chip,
                     eg_unit_mac_str(u, mac, sizeof mac), xtal);
}

static void ev_progress(void *ctx, size_t job, const eg_unit_record *u, uint64_t done, uint64_t total) {
  runner *r = ctx;
  (void)u;
  eg_display_progress(r->disp, job, done, total);
}

static void ev_log(void *ctx, size_t job, const char *line) {
  runner *r = ctx;
  eg_display_message(r->disp, "%s: %s", r->jobs[job].label, line);
}

static void ev_stopping(void *ctx, int signum) {
  runner *r = ctx;
  (void)signum;
  eg_display_message(r->disp, "interrupted: stopping every port");
}

static double secs_of(const eg_unit_record *u) { return (double)(u->finished_ms - u->started_ms) / 1000.0; }

static void show_ok(runner *r, size_t job, const eg_unit_record *u) {
  char text[128];
  snprintf(text, sizeof text, "OK %.1f s (%s, %u baud)", secs_of(u), u->stub ? "stub" : "ROM", u->baud);
  eg_display_result(r->disp, job, true, text);
}

static void show_fail(runner *r, size_t job, eg_err result, const eg_fault *f) {
  char st[16], text[200];
  r->results[job] = result;
  snprintf(text, sizeof text, "%s %s: %s%s%s%s", result == EG_ABORTED ? "ABORTED" : "FAIL", eg_stage_name(f->stage),
           eg_err_name(f->code), f->nstatus ? " [" : "", f->nstatus ? eg_fault_status_hex(f, st, sizeof st) : "",
           f->nstatus ? "]" : "");
  eg_display_result(r->disp, job, false, text);
  /* The reason: above the live rows on a terminal; otherwise one line on
   * stderr, where scripts look for errors (stdout has the rows or JSON). */
  if (eg_display_mode_of(r->disp) == EG_DISPLAY_TTY)
    eg_display_message(r->disp, "%s: error: %s", r->jobs[job].label, f->msg);
  else
    eg_cli_error("%s: error: %s", r->jobs[job].label, f->msg);
}

static void json_done(runner *r, const eg_unit_record *u, const char *file) {
  if (eg_display_mode_of(r->disp) != EG_DISPLAY_JSON) return;
  eg_jw w;
  eg_jw_open(&w);
  eg_jw_str(&w, "event", "port_done");
  eg_jw_str(&w, "command", r->c->command);
  eg_jw_unit(&w, u);
  if (file) eg_jw_str(&w, "file", file);
  char *s = eg_jw_close(&w);
  eg_display_json(r->disp, s);
  free(s);
}

/* read-flash: the data goes to its file off the loop thread: write, trim
 * to the length read, close. */
static void out_closed(uv_fs_t *req) {
  outfile *o = req->data;
  uv_fs_req_cleanup(req);
  o->fd = -1;
}

static void out_fail(outfile *o, const char *what, int err) {
  runner *r = o->r;
  eg_fault f;
  eg_fault_set(&f, EG_FILE_WRITE, EG_STAGE_READ, -1, "cannot %s %s: %s", what, o->path, uv_strerror(err));
  show_fail(r, o->job, EG_FILE_WRITE, &f);
  free(o->data);
  o->data = NULL;
  uv_fs_close(&r->loop, &o->req, o->fd, out_closed);
}

static void out_trimmed(uv_fs_t *req) {
  outfile *o = req->data;
  runner *r = o->r;
  const ssize_t rc = req->result;
  uv_fs_req_cleanup(req);
  if (rc < 0) {
    out_fail(o, "truncate", (int)rc);
    return;
  }
  const double secs = (double)o->read_ms / 1000.0;
  eg_display_message(r->disp, "%s: read %u bytes at 0x%x in %.1f s (%.1f kbit/s) to '%s'", r->jobs[o->job].label, o->len,
                     r->ops[r->nops - 1].addr, secs, secs > 0 ? o->len * 8 / secs / 1000 : 0.0, o->path);
  char text[128];
  snprintf(text, sizeof text, "OK %.1f s", secs);
  eg_display_result(r->disp, o->job, true, text);
  free(o->data);
  o->data = NULL;
  uv_fs_close(&r->loop, &o->req, o->fd, out_closed);
}

static void out_written(uv_fs_t *req) {
  outfile *o = req->data;
  const ssize_t rc = req->result;
  uv_fs_req_cleanup(req);
  if (rc < 0 || (size_t)rc != o->len) {
    out_fail(o, "write", rc < 0 ? (int)rc : UV_EIO);
    return;
  }
  uv_fs_ftruncate(&o->r->loop, &o->req, o->fd, o->len, out_trimmed);
}

static void out_start(outfile *o, eg_dev *dev) {
  runner *r = o->r;
  o->data = eg_dev_take_read_data(dev, r->nops - 1, &o->len);
  o->read_ms = (uint64_t)(dev->rec.finished_ms - dev->rec.started_ms);
  const uv_buf_t buf = uv_buf_init((char *)o->data, o->len);
  o->req.data = o;
  if (!o->data || uv_fs_write(&r->loop, &o->req, o->fd, &buf, 1, 0, out_written) != 0)
    out_fail(o, "write", UV_ENOMEM);
}

static void ev_done(void *ctx, size_t job, const eg_unit_record *u, bool will_retry, bool recorded_ok, eg_dev *dev) {
  runner *r = ctx;
  (void)will_retry, (void)recorded_ok;
  const char *cmd = r->c->command;
  outfile *o = r->out ? &r->out[job] : NULL;
  json_done(r, u, o && u->result == EG_RESULT_PASS ? o->path : NULL);
  if (u->result != EG_RESULT_PASS) {
    show_fail(r, job, u->fault.code != EG_OK ? u->fault.code : EG_IO, &u->fault);
    if (o && o->created) unlink(o->path); /* nothing was read: leave no empty file behind */
    return;
  }
  r->results[job] = EG_OK;
  char mac[18];
  eg_unit_mac_str(u, mac, sizeof mac);
  const char *label = r->jobs[job].label;
  if (o) {
    out_start(o, dev);
    return;
  }
  if (strcmp(cmd, "flash-id") == 0) {
    const char *size = eg_flash_size_name(u->flash_size);
    eg_display_message(r->disp, "%s: Manufacturer: %02x  Device: %04x  Detected flash size: %s", label,
                       eg_jedec_manufacturer(u->flash_id), eg_jedec_device(u->flash_id), size ? size : "Unknown");
  } else if (strcmp(cmd, "chip-id") == 0) {
    eg_display_message(r->disp, "%s: %s has no chip ID; MAC: %s", label, u->chip, mac);
  } else if (strcmp(cmd, "read-mac") == 0) {
    eg_display_message(r->disp, "%s: MAC: %s", label, mac);
  } else if (strcmp(cmd, "verify-flash") == 0) {
    eg_display_message(r->disp, "%s: verification successful (digests matched)", label);
  }
  show_ok(r, job, u);
}

/* ------------------------------------------------------------ setup */

static bool load_pairs(runner *r, size_t first) {
  eg_cli *c = r->c;
  const size_t n = c->nargs - first;
  if (n == 0 || n % 2) {
    eg_cli_error("%s needs ADDRESS FILE pairs", c->command);
    return false;
  }
  if (n / 2 > EG_CLI_MAX_IMAGES) {
    eg_cli_error("%s: at most %d images", c->command, EG_CLI_MAX_IMAGES);
    return false;
  }
  r->nimages = n / 2;
  r->images = calloc(r->nimages, sizeof *r->images);
  r->image_ptrs = calloc(r->nimages, sizeof *r->image_ptrs);
  if (!r->images || !r->image_ptrs) return false;
  for (size_t i = 0; i < r->nimages; i++) {
    uint32_t addr;
    const char *a = c->args[first + 2 * i], *file = c->args[first + 2 * i + 1];
    if (!eg_cli_parse_u32(a, &addr)) {
      eg_cli_error("invalid address '%s'", a);
      return false;
    }
    if (addr % 4) {
      eg_cli_error("address 0x%x of %s is not a multiple of 4", addr, file);
      return false;
    }
    eg_fault f;
    eg_fault_clear(&f);
    if (eg_image_load(&r->images[i], file, addr, &f) != EG_OK) {
      eg_cli_error("%s", f.msg);
      return false;
    }
    r->image_ptrs[i] = &r->images[i];
  }
  /* Overlaps are always a mistake, at sector granularity as esptool checks
   * them: writing an image erases every 4 KiB sector it touches, so two
   * images sharing a sector would erase each other's bytes. An image that
   * starts inside a sector alone takes the bytes before it along: said. */
  const bool erase_all = r->set.erase == EG_ERASE_ALL;
  for (size_t i = 0; i < r->nimages; i++) {
    const eg_image *x = &r->images[i];
    const uint64_t xs = x->offset & ~(uint64_t)(EG_SECTOR_SIZE - 1),
                   xe = ((uint64_t)x->offset + x->len + EG_SECTOR_SIZE - 1) & ~(uint64_t)(EG_SECTOR_SIZE - 1);
    for (size_t j = i + 1; j < r->nimages; j++) {
      const eg_image *y = &r->images[j];
      const uint64_t ys = y->offset & ~(uint64_t)(EG_SECTOR_SIZE - 1),
                     ye = ((uint64_t)y->offset + y->len + EG_SECTOR_SIZE - 1) & ~(uint64_t)(EG_SECTOR_SIZE - 1);
      if (xs < ye && ys < xe) {
        eg_cli_error("%s (0x%x..0x%zx) overlaps %s (0x%x..0x%zx): they share a 4 KiB flash sector, and writing one "
                     "erases the other",
                     x->path, x->offset, x->offset + x->len - 1, y->path, y->offset, y->offset + y->len - 1);
        return false;
      }
    }
  }
  for (size_t i = 0; i < r->nimages; i++) {
    const eg_image *x = &r->images[i];
    char note[256];
    if (!erase_all && eg_image_erase_warning(x->path, x->offset, note, sizeof note)) eg_cli_warn("%s", note);
  }
  return true;
}

static bool check_flash_arg(const eg_cli *c, const char *what, const char *val, bool size) {
  if (!val || strcasecmp(val, "keep") == 0 || (size && strcasecmp(val, "detect") == 0)) return true;
  const eg_chip *chip = c->chip ? c->chip : eg_chip_get(EG_CHIP_ESP32);
  bool ok;
  if (strcmp(what, "--flash-mode") == 0)
    ok = eg_flash_mode_code(val) >= 0;
  else if (size)
    ok = eg_chip_size_code(chip, val) >= 0;
  else
    ok = eg_chip_freq_code(chip, val) >= 0;
  if (!ok) eg_cli_error("invalid %s '%s' for %s", what, val, chip->name);
  return ok;
}

/* The command line's settings, over the one set of defaults. */
static void cli_settings(const eg_cli *c, eg_settings *s) {
  eg_settings_default(s);
  s->chip = c->chip;
  s->before = c->before;
  s->after = c->after;
  if (c->baud) s->baud = c->baud;
  s->stub_mode = c->no_stub ? EG_STUB_NONE : c->stub_path ? EG_STUB_PATH : EG_STUB_AUTO;
  s->stub_path = c->stub_path;
  if (c->flash_mode) snprintf(s->flash_mode, sizeof s->flash_mode, "%s", c->flash_mode);
  if (c->flash_freq) snprintf(s->flash_freq, sizeof s->flash_freq, "%s", c->flash_freq);
  if (c->flash_size) snprintf(s->flash_size, sizeof s->flash_size, "%s", c->flash_size);
  s->erase = c->erase_all ? EG_ERASE_ALL : EG_ERASE_WRITTEN;
  s->verify = !c->no_verify;
  s->skip_flashed = c->skip_flashed;
  s->compress = c->compress;
  s->retries = 0; /* esptool's commands try once */
  s->connect_attempts = c->connect_attempts;
}

/* The per-port operations of the command. false: usage error printed. */
static bool build_ops(runner *r, const char **read_file) {
  eg_cli *c = r->c;
  const char *cmd = c->command;
  eg_dev_op *ops = r->ops;
  size_t n = 0;
  if (strcmp(cmd, "flash-id") == 0 || strcmp(cmd, "chip-id") == 0 || strcmp(cmd, "read-mac") == 0 ||
      strcmp(cmd, "erase-flash") == 0) {
    if (c->nargs) {
      eg_cli_error("%s takes no arguments", cmd);
      return false;
    }
    if (strcmp(cmd, "erase-flash") == 0) ops[n++].kind = EG_OPK_ERASE_ALL;
  } else if (strcmp(cmd, "erase-region") == 0) {
    uint32_t a, s;
    if (c->nargs != 2 || !eg_cli_parse_u32(c->args[0], &a) || !eg_cli_parse_u32(c->args[1], &s)) {
      eg_cli_error("usage: erase-region ADDRESS SIZE");
      return false;
    }
    if ((a | s) % 0x1000 || s == 0) {
      eg_cli_error("erase-region: address 0x%x and size 0x%x must be non-zero multiples of 0x1000 (4 KiB)", a, s);
      return false;
    }
    ops[n++] = (eg_dev_op){.kind = EG_OPK_ERASE_REGION, .addr = a, .size = s};
  } else if (strcmp(cmd, "read-flash") == 0) {
    uint32_t a, s = 0;
    if (c->nargs != 3 || !eg_cli_parse_u32(c->args[0], &a) ||
        (strcasecmp(c->args[1], "all") != 0 && (!eg_cli_parse_u32(c->args[1], &s) || s == 0))) {
      eg_cli_error("usage: read-flash ADDRESS SIZE|ALL FILE");
      return false;
    }
    *read_file = c->args[2];
    ops[n++] = (eg_dev_op){.kind = EG_OPK_READ, .addr = a, .size = s};
  } else if (strcmp(cmd, "write-flash") == 0 || strcmp(cmd, "verify-flash") == 0) {
    if (!check_flash_arg(c, "--flash-mode", c->flash_mode, false) ||
        !check_flash_arg(c, "--flash-freq", c->flash_freq, false) ||
        !check_flash_arg(c, "--flash-size", c->flash_size, true))
      return false;
    if (!load_pairs(r, 0)) return false;
    n = eg_ops_for_images(ops, &r->set, r->nimages, strcmp(cmd, "verify-flash") == 0);
  } else {
    eg_cli_error("unknown command %s", cmd);
    return false;
  }
  r->nops = n;
  return true;
}

/* Open every read-flash output before any board is touched: an unwritable
 * path is bad input, not a failed read after minutes of work. */
static bool open_outputs(runner *r, const char *file) {
  r->out = calloc(r->n, sizeof *r->out);
  if (!r->out) return false;
  for (size_t i = 0; i < r->n; i++) {
    outfile *o = &r->out[i];
    o->r = r;
    o->job = i;
    o->fd = -1;
    out_name(file, r->jobs[i].label, r->n > 1, o->path, sizeof o->path);
    struct stat st;
    o->created = stat(o->path, &st) != 0;
    o->fd = open(o->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (o->fd < 0) {
      eg_cli_error("cannot write %s: %s", o->path, strerror(errno));
      return false;
    }
  }
  return true;
}

static void close_outputs(runner *r) {
  for (size_t i = 0; r->out && i < r->n; i++) {
    if (r->out[i].fd >= 0) close(r->out[i].fd);
    free(r->out[i].data);
  }
  free(r->out);
}

int eg_cmd_esptool(eg_cli *c) {
  if (c->nports == 0) {
    eg_cli_error("%s needs at least one -p PORT", c->command);
    return EG_EXIT_USAGE;
  }
  for (size_t i = 0; i < c->nports; i++)
    for (size_t j = i + 1; j < c->nports; j++)
      if (strcmp(c->ports[i], c->ports[j]) == 0) {
        eg_cli_error("port %s is given twice", c->ports[i]);
        return EG_EXIT_USAGE;
      }
  runner *r = calloc(1, sizeof *r);
  if (!r) return EG_EXIT_INTERNAL;
  int rc = EG_EXIT_USAGE;
  const char *read_file = NULL;
  r->c = c;
  uv_loop_init(&r->loop);
  cli_settings(c, &r->set);
  /* Every port, and what it can do, before any of them is touched. */
  for (size_t i = 0; i < c->nports; i++) {
    char why[512];
    if (eg_jobs_check_port(c->ports[i], &r->set, why, sizeof why) != EG_OK) {
      eg_cli_error("%s", why);
      goto out;
    }
  }
  if (!build_ops(r, &read_file)) goto out;

  /* The stub. */
  char note[512] = "";
  if (!eg_cli_load_stubs(r->set.stub_mode, r->set.stub_path, r->set.chip, r->stub_storage, r->stubs, r->stubs_old, false, note,
                         sizeof note))
    goto out;
  const bool any_stub = eg_stubs_any(r->stubs);
  if (note[0]) fprintf(stderr, "espgang: %s\n", note);

  /* Images: patched and compressed once for every port. */
  if (r->nimages) {
    const eg_settings *s = &r->set;
    const bool keep_all = !strcasecmp(s->flash_mode, "keep") && !strcasecmp(s->flash_freq, "keep") &&
                          !strcasecmp(s->flash_size, "keep");
    if (!s->chip && !keep_all) {
      eg_cli_error("--flash-mode/--flash-freq/--flash-size other than keep need --chip");
      goto out;
    }
    r->imgs = eg_imageset_new(s->chip ? s->chip : eg_chip_get(EG_CHIP_ESP32), r->image_ptrs, r->nimages, s->flash_mode,
                             s->flash_freq, s->flash_size, eg_settings_compress(s, any_stub));
    eg_fault f;
    eg_fault_clear(&f);
    if (!r->imgs || eg_imageset_warm(r->imgs, !any_stub, &f) != EG_OK) {
      eg_cli_error("%s", r->imgs ? f.msg : "out of memory");
      goto out;
    }
  }
  char why[256];
  if (eg_dev_config_build(&r->dcfg, &r->set, r->stubs, r->imgs, c->trace, why, sizeof why) != EG_OK) {
    eg_cli_error("%s", why);
    goto out;
  }
  r->dcfg.stubs_old = r->stubs_old;
  r->dcfg.timing = r->timing = eg_cli_timing_begin(c);

  r->n = c->nports;
  r->jobs = calloc(r->n, sizeof *r->jobs);
  r->results = calloc(r->n, sizeof *r->results);
  const char **labels = calloc(r->n, sizeof *labels);
  if (!r->jobs || !r->results || !labels) {
    free(labels);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  for (size_t i = 0; i < r->n; i++) {
    eg_job *j = &r->jobs[i];
    port_label(c->ports[i], j->label, sizeof j->label);
    snprintf(j->port, sizeof j->port, "%s", c->ports[i]);
    j->cfg = &r->dcfg;
    j->ops = r->ops;
    j->nops = r->nops;
    j->max_attempts = 1 + r->set.retries;
    labels[i] = j->label;
    r->results[i] = EG_IO; /* until the port reports */
  }
  eg_jobs_identify_ports(r->jobs, r->n);
  if (read_file && !open_outputs(r, read_file)) {
    free(labels);
    goto out;
  }
  const eg_display_mode dm = c->json ? EG_DISPLAY_JSON : isatty(STDOUT_FILENO) ? EG_DISPLAY_TTY : EG_DISPLAY_PLAIN;
  r->disp = eg_display_new(&r->loop, stdout, dm, r->n, labels);
  free(labels);
  if (!r->disp) {
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  static const eg_sched_events events = {
    .on_unit_stage = ev_stage,
    .on_unit_identity = ev_identity,
    .on_unit_progress = ev_progress,
    .on_unit_done = ev_done,
    .on_log = ev_log,
    .on_stopping = ev_stopping,
  };
  const eg_sched_config scfg = {.jobs = r->jobs, .njobs = r->n, .handle_signals = true};
  eg_sched_summary sum;
  eg_fault f;
  eg_fault_clear(&f);
  if (eg_sched_run(&r->loop, &scfg, &events, r, &sum, &f) != EG_OK) {
    eg_cli_error("%s", f.msg);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  eg_display_finish(r->disp);
  size_t failed = 0;
  for (size_t i = 0; i < r->n; i++) failed += r->results[i] != EG_OK;
  if (r->n > 1 && eg_display_mode_of(r->disp) != EG_DISPLAY_JSON) printf("%zu of %zu ports succeeded\n", r->n - failed, r->n);
  rc = eg_cli_exit_code(r->results, r->n, sum.interrupted);
  if (!eg_cli_timing_end(c, r->timing) && rc == EG_EXIT_OK) rc = EG_EXIT_USAGE;
  r->timing = NULL;
  if (eg_display_mode_of(r->disp) == EG_DISPLAY_JSON) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "summary");
    eg_jw_str(&w, "command", c->command);
    eg_jw_uint(&w, "ports", r->n);
    eg_jw_uint(&w, "failed", failed);
    eg_jw_int(&w, "exit", rc);
    char *line = eg_jw_close(&w);
    eg_display_json(r->disp, line);
    free(line);
  }
out:
  if (r->disp) eg_display_free(r->disp);
  uv_run(&r->loop, UV_RUN_DEFAULT); /* let close callbacks run */
  if (uv_loop_close(&r->loop) != 0) fprintf(stderr, "espgang: internal: handles left open\n");
  close_outputs(r);
  if (r->timing) eg_cli_timing_end(c, r->timing);
  free(r->jobs);
  free(r->results);
  eg_imageset_free(r->imgs);
  for (size_t i = 0; i < r->nimages; i++) eg_image_free(&r->images[i]);
  free(r->images);
  free(r->image_ptrs);
  eg_cli_free_stubs(r->stub_storage);
  free(r);
  return rc;
}
