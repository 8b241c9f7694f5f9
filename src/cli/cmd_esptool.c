/* cmd_esptool.c - esptool's commands, run on every -p port at once.
 *
 * One loop, one eg_dev per port, one live display; the images of
 * write-flash are loaded, patched and compressed once and shared.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "device.h"
#include "display.h"
#include "image.h"
#include "jsonw.h"
#include "prep.h"

typedef struct portrun {
  eg_dev dev;
  struct runner *r;
  size_t index;
  eg_dev_op *ops;
  char label[64];
  char out_path[4096];
  eg_err result;
} portrun;

typedef struct runner {
  uv_loop_t loop;
  eg_cli *c;
  eg_dev_config dcfg;
  const eg_stub *stubs[EG_CHIP__COUNT];
  eg_stub stub_storage[EG_CHIP__COUNT];
  portrun *ports;
  size_t n, remaining;
  eg_display *disp;
  uv_signal_t sig_int, sig_term;
  bool interrupted;
  /* images */
  eg_image *images;
  const eg_image **image_ptrs;
  size_t nimages;
  eg_imageset *set;
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

static portrun *pr_of(eg_dev *d) { return d->data; }

static void on_stage(eg_dev *d, eg_stage s) {
  portrun *p = pr_of(d);
  char text[96];
  if (s == EG_STAGE_WRITE && d->op_i < d->nops && d->ops[d->op_i].kind == EG_OPK_WRITE) {
    const eg_image *src = eg_imageset_source(p->r->set, d->ops[d->op_i].index);
    snprintf(text, sizeof text, "writing 0x%05x", src ? src->offset : 0);
  } else {
    snprintf(text, sizeof text, "%s", eg_stage_label(s));
  }
  eg_display_state(p->r->disp, p->index, text);
}

static void on_identity(eg_dev *d) {
  portrun *p = pr_of(d);
  if (d->stage != EG_STAGE_DETECT) return; /* print once, when the chip is known */
  char mac[18], xtal[32] = "crystal unknown";
  if (d->rec.crystal_mhz) snprintf(xtal, sizeof xtal, "crystal %d MHz", d->rec.crystal_mhz);
  eg_display_message(p->r->disp, "%s: %s, MAC %s, %s", p->label, d->rec.chip_desc[0] ? d->rec.chip_desc : d->rec.chip,
                     eg_unit_mac_str(&d->rec, mac, sizeof mac), xtal);
}

static void on_progress(eg_dev *d, uint64_t done, uint64_t total) {
  portrun *p = pr_of(d);
  eg_display_progress(p->r->disp, p->index, done, total);
}

static void on_log(eg_dev *d, const char *line) {
  portrun *p = pr_of(d);
  eg_display_message(p->r->disp, "%s: %s", p->label, line);
}

static void print_results(portrun *p);

static void dev_closed(eg_dev *d) {
  portrun *p = pr_of(d);
  runner *r = p->r;
  if (--r->remaining == 0) {
    eg_display_finish(r->disp);
    uv_close((uv_handle_t *)&r->sig_int, NULL);
    uv_close((uv_handle_t *)&r->sig_term, NULL);
  }
}

static void on_done(eg_dev *d, eg_err result) {
  portrun *p = pr_of(d);
  p->result = result;
  print_results(p);
  eg_dev_close(d, dev_closed);
}

static void on_signal(uv_signal_t *h, int signum) {
  runner *r = h->data;
  (void)signum;
  if (r->interrupted) return;
  r->interrupted = true;
  eg_display_message(r->disp, "interrupted: stopping every port");
  for (size_t i = 0; i < r->n; i++) eg_dev_abort(&r->ports[i].dev);
}

/* What each command prints for a port that finished. */
static void print_results(portrun *p) {
  runner *r = p->r;
  eg_dev *d = &p->dev;
  const char *cmd = r->c->command;
  const double secs = (double)(d->rec.finished_ms - d->rec.started_ms) / 1000.0;
  char mac[18];
  eg_unit_mac_str(&d->rec, mac, sizeof mac);
  if (eg_display_mode_of(r->disp) == EG_DISPLAY_JSON) {
    eg_jw w;
    eg_jw_open(&w);
    eg_jw_str(&w, "event", "port_done");
    eg_jw_str(&w, "command", cmd);
    eg_jw_unit(&w, &d->rec);
    if (strcmp(cmd, "read-flash") == 0 && p->result == EG_OK) eg_jw_str(&w, "file", p->out_path);
    char *s = eg_jw_close(&w);
    eg_display_json(r->disp, s);
    free(s);
  }
  if (p->result != EG_OK) {
    char st[16], text[200];
    const eg_fault *f = &d->rec.fault;
    snprintf(text, sizeof text, "%s %s: %s%s%s%s", p->result == EG_ABORTED ? "ABORTED" : "FAIL", eg_stage_name(f->stage),
             eg_err_name(f->code), f->nstatus ? " [" : "", f->nstatus ? eg_fault_status_hex(f, st, sizeof st) : "",
             f->nstatus ? "]" : "");
    eg_display_result(r->disp, p->index, false, text);
    eg_display_message(r->disp, "%s: error: %s", p->label, f->msg);
    return;
  }
  if (strcmp(cmd, "read-flash") == 0) {
    uint32_t len = 0;
    const uint8_t *data = eg_dev_read_data(d, d->nops - 1, &len);
    FILE *f = fopen(p->out_path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
      if (f) fclose(f);
      eg_fault_set(&d->rec.fault, EG_FILE_WRITE, EG_STAGE_READ, -1, "cannot write %s: %s", p->out_path, strerror(errno));
      p->result = EG_FILE_WRITE;
      eg_display_result(r->disp, p->index, false, "FAIL: cannot write the file");
      eg_display_message(r->disp, "%s: error: %s", p->label, d->rec.fault.msg);
      return;
    }
    eg_display_message(r->disp, "%s: read %u bytes at 0x%x in %.1f s (%.1f kbit/s) to '%s'", p->label, len,
                       d->ops[d->nops - 1].addr, secs, secs > 0 ? len * 8 / secs / 1000 : 0.0, p->out_path);
  } else if (strcmp(cmd, "flash-id") == 0) {
    const char *size = eg_flash_size_name(d->rec.flash_size);
    eg_display_message(r->disp, "%s: Manufacturer: %02x  Device: %04x  Detected flash size: %s", p->label,
                       eg_jedec_manufacturer(d->flash_id), eg_jedec_device(d->flash_id), size ? size : "Unknown");
  } else if (strcmp(cmd, "chip-id") == 0) {
    eg_display_message(r->disp, "%s: %s has no chip ID; MAC: %s", p->label, d->rec.chip, mac);
  } else if (strcmp(cmd, "read-mac") == 0) {
    eg_display_message(r->disp, "%s: MAC: %s", p->label, mac);
  } else if (strcmp(cmd, "verify-flash") == 0) {
    eg_display_message(r->disp, "%s: verification successful (digests matched)", p->label);
  }
  char text[128];
  snprintf(text, sizeof text, "OK %.1f s (%s, %u baud)", secs, d->rec.stub ? "stub" : "ROM", d->rec.baud);
  eg_display_result(r->disp, p->index, true, text);
}

/* ------------------------------------------------------------ setup */

static bool load_pairs(runner *r, size_t first) {
  eg_cli *c = r->c;
  const size_t n = c->nargs - first;
  if (n == 0 || n % 2) {
    eg_cli_error("%s needs ADDRESS FILE pairs", c->command);
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
  /* Overlaps are always a mistake. */
  for (size_t i = 0; i < r->nimages; i++)
    for (size_t j = i + 1; j < r->nimages; j++) {
      const eg_image *x = &r->images[i], *y = &r->images[j];
      if (x->offset < y->offset + y->len && y->offset < x->offset + x->len) {
        eg_cli_error("%s (0x%x..0x%zx) overlaps %s (0x%x..0x%zx)", x->path, x->offset, x->offset + x->len, y->path,
                     y->offset, y->offset + y->len);
        return false;
      }
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

/* Build the per-port operations of the command. false: usage error printed. */
static bool build_ops(runner *r, eg_dev_op **ops_out, size_t *nops_out, uint32_t *read_addr, uint32_t *read_size,
                      const char **read_file) {
  eg_cli *c = r->c;
  const char *cmd = c->command;
  eg_dev_op *ops = calloc(r->nimages + 2 + 1, sizeof *ops);
  size_t n = 0;
  if (!ops) return false;
  *ops_out = ops;
  if (strcmp(cmd, "flash-id") == 0 || strcmp(cmd, "chip-id") == 0 || strcmp(cmd, "read-mac") == 0) {
    if (c->nargs) {
      eg_cli_error("%s takes no arguments", cmd);
      return false;
    }
  } else if (strcmp(cmd, "erase-flash") == 0) {
    if (c->nargs) {
      eg_cli_error("erase-flash takes no arguments");
      return false;
    }
    ops[n++].kind = EG_OPK_ERASE_ALL;
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
    *read_addr = a;
    *read_size = s;
    *read_file = c->args[2];
    ops[n++] = (eg_dev_op){.kind = EG_OPK_READ, .addr = a, .size = s};
  } else if (strcmp(cmd, "write-flash") == 0 || strcmp(cmd, "verify-flash") == 0) {
    if (!check_flash_arg(c, "--flash-mode", c->flash_mode, false) || !check_flash_arg(c, "--flash-freq", c->flash_freq, false) ||
        !check_flash_arg(c, "--flash-size", c->flash_size, true))
      return false;
    if (!load_pairs(r, 0)) return false;
    const bool write = strcmp(cmd, "write-flash") == 0;
    if (write && c->erase_all) ops[n++].kind = EG_OPK_ERASE_ALL;
    for (size_t i = 0; i < r->nimages; i++) ops[n++] = (eg_dev_op){.kind = write ? EG_OPK_WRITE : EG_OPK_VERIFY, .index = i};
  } else {
    eg_cli_error("unknown command %s", cmd);
    return false;
  }
  *nops_out = n;
  return true;
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
  eg_dev_op *ops = NULL;
  size_t nops = 0;
  uint32_t read_addr = 0, read_size = 0;
  const char *read_file = NULL;
  r->c = c;
  uv_loop_init(&r->loop);
  if (!build_ops(r, &ops, &nops, &read_addr, &read_size, &read_file)) goto out;

  /* The stub. */
  char note[512] = "";
  const eg_stub_mode mode = c->no_stub ? EG_STUB_NONE : c->stub_path ? EG_STUB_PATH : EG_STUB_AUTO;
  if (!eg_cli_load_stubs(mode, c->stub_path, c->chip, r->stub_storage, r->stubs, false, note, sizeof note)) goto out;

  bool any_stub = false;
  for (int k = 0; k < EG_CHIP__COUNT; k++) any_stub = any_stub || r->stubs[k];
  if (note[0]) fprintf(stderr, "espgang: %s\n", note);

  /* Images: patched and compressed once for every port. */
  const bool keep_all = (!c->flash_mode || strcasecmp(c->flash_mode, "keep") == 0) &&
                        (!c->flash_freq || strcasecmp(c->flash_freq, "keep") == 0) &&
                        (!c->flash_size || strcasecmp(c->flash_size, "keep") == 0);
  if (r->nimages) {
    if (!c->chip && !keep_all) {
      eg_cli_error("--flash-mode/--flash-freq/--flash-size other than keep need --chip");
      goto out;
    }
    const bool compress = c->compress == 1 || (c->compress == -1 && any_stub);
    r->set = eg_imageset_new(c->chip ? c->chip : eg_chip_get(EG_CHIP_ESP32), r->image_ptrs, r->nimages, c->flash_mode,
                             c->flash_freq, c->flash_size, compress);
    eg_fault f;
    eg_fault_clear(&f);
    if (!r->set || eg_imageset_warm(r->set, !any_stub, &f) != EG_OK) {
      eg_cli_error("%s", r->set ? f.msg : "out of memory");
      goto out;
    }
  }

  eg_timeouts_default(&r->dcfg.timeouts);
  const uint32_t baud = c->baud ? c->baud : 460800;
  r->dcfg.chip = c->chip;
  r->dcfg.before = c->before;
  r->dcfg.after = c->after;
  r->dcfg.baud = baud;
  r->dcfg.connect_baud = baud < 115200 ? baud : 115200;
  r->dcfg.stubs = r->stubs;
  r->dcfg.images = r->set;
  r->dcfg.flash_size = c->flash_size ? c->flash_size : "keep";
  r->dcfg.verify = !c->no_verify;
  r->dcfg.connect_attempts = c->connect_attempts;
  r->dcfg.trace = c->trace;
  if (c->after == EG_AFTER_SOFT_RESET && any_stub && (!c->chip || c->chip->id != EG_CHIP_ESP8266)) {
    eg_cli_error("--after soft-reset needs --no-stub: the ESP32-family stubs cannot start the application");
    goto out;
  }

  r->n = c->nports;
  r->ports = calloc(r->n, sizeof *r->ports);
  const char **labels = calloc(r->n, sizeof *labels);
  if (!r->ports || !labels) {
    free(labels);
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  static const eg_dev_callbacks cbs = {
    .on_stage = on_stage, .on_identity = on_identity, .on_progress = on_progress, .on_done = on_done, .on_log = on_log};
  for (size_t i = 0; i < r->n; i++) {
    portrun *p = &r->ports[i];
    p->r = r;
    p->index = i;
    port_label(c->ports[i], p->label, sizeof p->label);
    labels[i] = p->label;
    if (!(p->ops = calloc(nops ? nops : 1, sizeof *p->ops))) {
      free(labels);
      rc = EG_EXIT_INTERNAL;
      goto out;
    }
    memcpy(p->ops, ops, nops * sizeof *ops);
    if (read_file) out_name(read_file, p->label, r->n > 1, p->out_path, sizeof p->out_path);
    eg_dev_init(&p->dev, &r->loop, c->ports[i], &r->dcfg, p->ops, nops, &cbs, p);
    snprintf(p->dev.rec.slot, sizeof p->dev.rec.slot, "%s", p->label);
  }
  const eg_display_mode dm = c->json ? EG_DISPLAY_JSON : isatty(STDOUT_FILENO) ? EG_DISPLAY_TTY : EG_DISPLAY_PLAIN;
  r->disp = eg_display_new(&r->loop, stdout, dm, r->n, labels);
  free(labels);
  if (!r->disp) {
    rc = EG_EXIT_INTERNAL;
    goto out;
  }
  uv_signal_init(&r->loop, &r->sig_int);
  uv_signal_init(&r->loop, &r->sig_term);
  r->sig_int.data = r->sig_term.data = r;
  uv_signal_start(&r->sig_int, on_signal, SIGINT);
  uv_signal_start(&r->sig_term, on_signal, SIGTERM);
  r->remaining = r->n;
  for (size_t i = 0; i < r->n; i++) eg_dev_start(&r->ports[i].dev);
  uv_run(&r->loop, UV_RUN_DEFAULT);

  size_t failed = 0;
  for (size_t i = 0; i < r->n; i++)
    if (r->ports[i].result != EG_OK) failed++;
  if (r->n > 1 && eg_display_mode_of(r->disp) != EG_DISPLAY_JSON)
    printf("%zu of %zu ports succeeded\n", r->n - failed, r->n);
  rc = r->interrupted ? EG_EXIT_ABORTED : failed ? EG_EXIT_FAILED : EG_EXIT_OK;
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
  if (r->ports)
    for (size_t i = 0; i < r->n; i++) free(r->ports[i].ops);
  free(r->ports);
  eg_imageset_free(r->set);
  for (size_t i = 0; i < r->nimages; i++) eg_image_free(&r->images[i]);
  free(r->images);
  free(r->image_ptrs);
  eg_cli_free_stubs(r->stub_storage);
  free(ops);
  free(r);
  return rc;
}
