/* cmd_ports.c - `espgang ports [--json]`: the serial ports libserialport
 * finds (eg_port_list), as a table with aligned columns (PORT TYPE VID:PID
 * LOCATION SERIAL DESCRIPTION BY-ID; "no serial ports found" when empty) or,
 * with --json, one JSON object per port per line (unknown values are null).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "jsonw.h"
#include "port.h"

static void json_field_str(FILE *out, const char *key, const char *v, bool first) {
  fprintf(out, "%s\"%s\":", first ? "" : ",", key);
  if (v[0]) eg_json_quote(out, v);
  else fputs("null", out);
}

static void json_field_int(FILE *out, const char *key, int v) {
  fprintf(out, ",\"%s\":", key);
  if (v >= 0) fprintf(out, "%d", v);
  else fputs("null", out);
}

enum { COL_PORT, COL_TYPE, COL_VIDPID, COL_LOCATION, COL_SERIAL, COL_DESC, COL_BYID, COL__COUNT };

/* The cells of one table row; "-" for unknown. */
static void row_cells(const eg_port_info *in, char cells[COL__COUNT][300]) {
  snprintf(cells[COL_PORT], 300, "%s", in->name[0] ? in->name : "-");
  snprintf(cells[COL_TYPE], 300, "%s", in->transport[0] ? in->transport : "-");
  if (in->vid >= 0 && in->pid >= 0) snprintf(cells[COL_VIDPID], 300, "%04x:%04x", (unsigned)in->vid, (unsigned)in->pid);
  else snprintf(cells[COL_VIDPID], 300, "-");
  snprintf(cells[COL_LOCATION], 300, "%s", in->location[0] ? in->location : "-");
  snprintf(cells[COL_SERIAL], 300, "%s", in->serial[0] ? in->serial : "-");
  if (in->manufacturer[0] && in->product[0])
    snprintf(cells[COL_DESC], 300, "%.127s %.127s", in->manufacturer, in->product);
  else if (in->product[0])
    snprintf(cells[COL_DESC], 300, "%s", in->product);
  else
    snprintf(cells[COL_DESC], 300, "%s", in->description[0] ? in->description : "-");
  snprintf(cells[COL_BYID], 300, "%s", in->by_id[0] ? in->by_id : "-");
  /* One row is one line, whatever a device calls itself. */
  for (int c = 0; c < COL__COUNT; c++)
    for (char *ch = cells[c]; *ch; ch++)
      if ((unsigned char)*ch < 0x20) *ch = ' ';
}

void eg_ports_print(FILE *out, const eg_port_info *list, size_t count, bool json) {
  if (json) {
    for (size_t i = 0; i < count; i++) {
      const eg_port_info *in = &list[i];
      fputc('{', out);
      json_field_str(out, "name", in->name, true);
      json_field_str(out, "transport", in->transport, false);
      json_field_str(out, "description", in->description, false);
      json_field_int(out, "vid", in->vid);
      json_field_int(out, "pid", in->pid);
      json_field_int(out, "bus", in->bus);
      json_field_int(out, "address", in->address);
      json_field_str(out, "location", in->location, false);
      json_field_str(out, "serial", in->serial, false);
      json_field_str(out, "manufacturer", in->manufacturer, false);
      json_field_str(out, "product", in->product, false);
      json_field_str(out, "by_path", in->by_path, false);
      json_field_str(out, "by_id", in->by_id, false);
      fputs("}\n", out);
    }
    return;
  }
  if (count == 0) {
    fputs("no serial ports found\n", out);
    return;
  }
  static const char *const head[COL__COUNT] = {"PORT", "TYPE", "VID:PID", "LOCATION", "SERIAL", "DESCRIPTION",
                                               "BY-ID"};
  size_t width[COL__COUNT];
  for (int c = 0; c < COL__COUNT; c++) width[c] = strlen(head[c]);
  char cells[COL__COUNT][300];
  for (size_t i = 0; i < count; i++) {
    row_cells(&list[i], cells);
    for (int c = 0; c < COL__COUNT; c++)
      if (strlen(cells[c]) > width[c]) width[c] = strlen(cells[c]);
  }
  for (int c = 0; c < COL__COUNT; c++) {
    if (c == COL__COUNT - 1) fprintf(out, "%s\n", head[c]);
    else fprintf(out, "%-*s  ", (int)width[c], head[c]);
  }
  for (size_t i = 0; i < count; i++) {
    row_cells(&list[i], cells);
    for (int c = 0; c < COL__COUNT; c++) {
      if (c == COL__COUNT - 1) fprintf(out, "%s\n", cells[c]);
      else fprintf(out, "%-*s  ", (int)width[c], cells[c]);
    }
  }
}

int eg_cmd_ports(eg_cli *c) {
  if (c->nargs) {
    eg_cli_error("usage: espgang ports [--json]");
    return EG_EXIT_USAGE;
  }
  eg_port_info *list = NULL;
  size_t count = 0;
  const eg_err e = eg_port_list(&list, &count);
  if (e != EG_OK) {
    eg_cli_error("cannot list the serial ports: %s", eg_strerror(e));
    return EG_EXIT_INTERNAL;
  }
  eg_ports_print(stdout, list, count, c->json);
  eg_port_list_free(list, count);
  return EG_EXIT_OK;
}
