/* port_list.c - the serial ports libserialport finds (sysfs on Linux), for
 * `espgang ports` (printed by src/cli/cmd_ports.c) and the manifest's USB
 * matching (VID:PID, serial number, USB location, /dev/serial links).
 */
#include <dirent.h>
#include <libserialport.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "port_util.h"


static bool usb_port_name(const char *s, size_t len) {
  /* bus-port[.port...]: digits '-' digits ('.' digits)* */
  size_t i = 0, digits = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9') i++, digits++;
  if (!digits || i >= len || s[i] != '-') return false;
  i++;
  for (;;) {
    digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++, digits++;
    if (!digits) return false;
    if (i == len) return true;
    if (s[i] != '.') return false;
    i++;
  }
}

void eg__usb_location(const char *syspath, char *out, size_t cap) {
  if (cap) out[0] = '\0';
  const char *s = syspath, *best = NULL;
  size_t best_len = 0;
  while (*s) {
    while (*s == '/') s++;
    const char *end = strchr(s, '/');
    const size_t len = end ? (size_t)(end - s) : strlen(s);
    if (len && usb_port_name(s, len)) best = s, best_len = len;
    s += len;
  }
  /* The deepest one is the port the adapter hangs on; if it does not fit,
   * nothing (a parent hub's port would name the wrong socket). */
  if (best && best_len < cap) {
    memcpy(out, best, best_len);
    out[best_len] = '\0';
  }
}

bool eg__find_link(const char *dir, const char *target, char *out, size_t cap) {
  if (cap) out[0] = '\0';
  DIR *d = opendir(dir);
  if (!d) return false;
  char best[NAME_MAX + 1] = "";
  const struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char link[PATH_MAX], real[PATH_MAX];
    if (snprintf(link, sizeof link, "%s/%s", dir, de->d_name) >= (int)sizeof link) continue;
    if (!realpath(link, real) || strcmp(real, target) != 0) continue;
    if (!best[0] || strcmp(de->d_name, best) < 0) snprintf(best, sizeof best, "%s", de->d_name);
  }
  closedir(d);
  if (!best[0]) return false;
  if (snprintf(out, cap, "%s/%s", dir, best) >= (int)cap) {
    if (cap) out[0] = '\0';
    return false;
  }
  return true;
}

static void copy_str(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

static void fill_info(eg_port_info *in, const struct sp_port *sp) {
  memset(in, 0, sizeof *in);
  in->vid = in->pid = in->bus = in->address = -1;
  copy_str(in->name, sizeof in->name, sp_get_port_name(sp));
  copy_str(in->description, sizeof in->description, sp_get_port_description(sp));
  switch (sp_get_port_transport(sp)) {
    case SP_TRANSPORT_NATIVE:
      copy_str(in->transport, sizeof in->transport, "native");
      break;
    case SP_TRANSPORT_USB:
      copy_str(in->transport, sizeof in->transport, "usb");
      in->usb = true;
      break;
    case SP_TRANSPORT_BLUETOOTH:
      copy_str(in->transport, sizeof in->transport, "bluetooth");
      break;
  }
  if (in->usb) {
    int vid = -1, pid = -1, bus = -1, addr = -1;
    if (sp_get_port_usb_vid_pid(sp, &vid, &pid) == SP_OK && vid >= 0 && pid >= 0) in->vid = vid, in->pid = pid;
    if (sp_get_port_usb_bus_address(sp, &bus, &addr) == SP_OK && bus >= 0 && addr >= 0)
      in->bus = bus, in->address = addr;
    copy_str(in->serial, sizeof in->serial, sp_get_port_usb_serial(sp));
    copy_str(in->manufacturer, sizeof in->manufacturer, sp_get_port_usb_manufacturer(sp));
    copy_str(in->product, sizeof in->product, sp_get_port_usb_product(sp));
  }
  char real[PATH_MAX];
  if (realpath(in->name, real)) {
    eg__find_link("/dev/serial/by-path", real, in->by_path, sizeof in->by_path);
    eg__find_link("/dev/serial/by-id", real, in->by_id, sizeof in->by_id);
  }
  /* /sys/class/tty/ttyUSB0/device -> .../usb1/1-1/1-1.4/1-1.4:1.0/ttyUSB0 */
  const char *base = strrchr(in->name, '/');
  base = base ? base + 1 : in->name;
  char link[PATH_MAX], sys[PATH_MAX];
  if (*base && snprintf(link, sizeof link, "/sys/class/tty/%s/device", base) < (int)sizeof link &&
      realpath(link, sys))
    eg__usb_location(sys, in->location, sizeof in->location);
}

static int by_name(const void *a, const void *b) {
  /* ttyUSB2 before ttyUSB10 */
  return strverscmp(((const eg_port_info *)a)->name, ((const eg_port_info *)b)->name);
}

eg_err eg_port_list(eg_port_info **out, size_t *count) {
  *out = NULL;
  *count = 0;
  struct sp_port **ports = NULL;
  const enum sp_return r = sp_list_ports(&ports);
  switch (r) {
    case SP_OK:
      break;
    case SP_ERR_MEM:
      return EG_NOMEM;
    case SP_ERR_ARG:
    case SP_ERR_FAIL:
    case SP_ERR_SUPP:
      return EG_IO;
  }
  size_t n = 0;
  while (ports[n]) n++;
  if (n == 0) {
    sp_free_port_list(ports);
    return EG_OK;
  }
  eg_port_info *list = calloc(n, sizeof *list);
  if (!list) {
    sp_free_port_list(ports);
    return EG_NOMEM;
  }
  for (size_t i = 0; i < n; i++) fill_info(&list[i], ports[i]);
  sp_free_port_list(ports);
  qsort(list, n, sizeof *list, by_name);
  *out = list;
  *count = n;
  return EG_OK;
}

void eg_port_list_free(eg_port_info *list, size_t count) {
  (void)count;
  free(list);
}

eg_err eg_port_find_location(const char *location, char *name, size_t cap) {
  eg_port_info *list = NULL;
  size_t count = 0;
  const eg_err e = eg_port_list(&list, &count);
  if (e != EG_OK) return e;
  eg_err r = EG_PORT_OPEN;
  for (size_t i = 0; i < count && r != EG_OK; i++)
    if (location && *location && strcmp(list[i].location, location) == 0) {
      snprintf(name, cap, "%s", list[i].name);
      r = EG_OK;
    }
  eg_port_list_free(list, count);
  return r;
}
