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
#include "table.h"

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

/* One table row: the device's own words, NULL ("-") where unknown; the
 * table printer keeps each row on one line. */
static void add_row(eg_table *t, const eg_port_info *in) {
  char vidpid[16], desc[300];
  snprintf(vidpid, sizeof vidpid, "%04x:%04x", (unsigned)in->vid & 0xffff, (unsigned)in->pid & 0xffff);
  if (in->manufacturer[0] && in->product[0])
    snprintf(desc, sizeof desc, "%.127s %.127s", in->manufacturer, in->product);
  else
    snprintf(desc, sizeof desc, "%s", in->product[0] ? in->product : in->description);
  eg_table_str(t, in->name[0] ? in->name : NULL);
  eg_table_str(t, in->transport[0] ? in->transport : NULL);
  eg_table_str(t, in->vid >= 0 && in->pid >= 0 ? vidpid : NULL);
  eg_table_str(t, in->location[0] ? in->location : NULL);
  eg_table_str(t, in->serial[0] ? in->serial : NULL);
  eg_table_str(t, desc[0] ? desc : NULL);
  eg_table_str(t, in->by_id[0] ? in->by_id : NULL);
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
  static const eg_col cols[] = {{"PORT"}, {"TYPE"}, {"VID:PID"}, {"LOCATION"}, {"SERIAL"}, {"DESCRIPTION"}, {"BY-ID"}};
  eg_table *t = eg_table_new(cols, sizeof cols / sizeof cols[0]);
  for (size_t i = 0; t && i < count; i++) add_row(t, &list[i]);
  if (!t || eg_table_text(t, out, 0, false) != EG_OK) fputs("out of memory printing the port list\n", out);
  eg_table_free(t);
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
