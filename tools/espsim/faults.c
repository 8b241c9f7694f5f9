/* faults.c - fault and timing specs from text ("drop_rate=0.001",
 * "disconnect_at=FLASH_DEFL_DATA:3", "sector_erase_ms=45"), shared by the
 * command line and the YAML files. */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto.h"
#include "simdev.h"

int esim_op_by_name(const char *name) {
  if (!name || !*name) return -1;
  if (isdigit((unsigned char)name[0])) {
    char *end;
    errno = 0;
    const int base = name[0] == '0' && (name[1] == 'x' || name[1] == 'X') ? 16 : 10;
    unsigned long v = strtoul(name, &end, base);
    return errno || *end || v > 0xFF ? -1 : (int)v;
  }
  static const struct {
    const char *n;
    int op;
  } ops[] = {
#define ESIM_OP_ROW(name, val) {#name, val},
      EG_OPCODE_MAP(ESIM_OP_ROW)
#undef ESIM_OP_ROW
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcasecmp(ops[i].n, name)) return ops[i].op;
  return -1;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  /* decimal unless 0x: "08" is eight, not bad octal */
  const int base = s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
  unsigned long long v = strtoull(s, &end, base);
  if (errno || *end || s[0] == '-') return false;
  *out = v;
  return true;
}

static bool parse_double(const char *s, double *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || v < 0) return false;
  *out = v;
  return true;
}

static bool parse_bool(const char *s, bool *out) {
  if (!s || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1") || !strcasecmp(s, "on")) {
    *out = true;
    return true;
  }
  if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0") || !strcasecmp(s, "off")) {
    *out = false;
    return true;
  }
  return false;
}

/* "5ms", "500us", "0.25s", "5" (milliseconds) -> microseconds. */
static bool parse_duration_us(const char *s, uint64_t *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || v < 0 || end == s) return false;
  double mult = 1000.0;
  if (!*end || !strcmp(end, "ms")) mult = 1000.0;
  else if (!strcmp(end, "us")) mult = 1.0;
  else if (!strcmp(end, "s")) mult = 1e6;
  else return false;
  *out = (uint64_t)(v * mult + 0.5);
  return true;
}

static eg_err bad(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
  if (err && errlen) snprintf(err, errlen, fmt, a, b ? b : "");
  return EG_INVAL;
}

eg_err esim_fault_apply(esim_faults *f, const char *spec, char *err, size_t errlen) {
  char key[64];
  const char *eq = strchr(spec, '=');
  size_t kl = eq ? (size_t)(eq - spec) : strlen(spec);
  if (kl == 0 || kl >= sizeof key) return bad(err, errlen, "bad fault '%s'%s", spec, NULL);
  memcpy(key, spec, kl);
  key[kl] = 0;
  const char *val = eq ? eq + 1 : NULL;
  double dv;
  uint64_t uv;
  bool bv;

#define NEED_VAL()                                                           \
  do {                                                                       \
    if (!val) return bad(err, errlen, "fault '%s' needs a value%s", key, NULL); \
  } while (0)

  if (!strcmp(key, "drop_rate") || !strcmp(key, "drop_rate_rx") || !strcmp(key, "drop_rate_tx") ||
      !strcmp(key, "corrupt_rate") || !strcmp(key, "corrupt_rate_rx") || !strcmp(key, "corrupt_rate_tx")) {
    NEED_VAL();
    if (!parse_double(val, &dv) || dv > 1.0) return bad(err, errlen, "%s: '%s' is not a rate in [0,1]", key, val);
    const bool drop = key[0] == 'd';
    const bool rx = !strstr(key, "_tx"), tx = !strstr(key, "_rx");
    if (drop) {
      if (rx) f->drop_rate_rx = dv;
      if (tx) f->drop_rate_tx = dv;
    } else {
      if (rx) f->corrupt_rate_rx = dv;
      if (tx) f->corrupt_rate_tx = dv;
    }
    return EG_OK;
  }
  if (!strcmp(key, "delay") || !strcmp(key, "delay_rx") || !strcmp(key, "delay_tx")) {
    NEED_VAL();
    if (!parse_duration_us(val, &uv) || uv > 60000000) return bad(err, errlen, "%s: bad duration '%s'", key, val);
    if (strcmp(key, "delay_tx")) f->delay_rx_us = (uint32_t)uv;
    if (strcmp(key, "delay_rx")) f->delay_tx_us = (uint32_t)uv;
    return EG_OK;
  }
  if (!strcmp(key, "stall_after_bytes") || !strcmp(key, "disconnect_after_bytes")) {
    NEED_VAL();
    if (!parse_u64(val, &uv) || uv == 0) return bad(err, errlen, "%s: '%s' is not a positive count", key, val);
    if (key[0] == 's') f->stall_after_bytes = uv;
    else f->disconnect_after_bytes = uv;
    return EG_OK;
  }
  if (!strcmp(key, "disconnect_at")) {
    NEED_VAL();
    char name[64];
    const char *colon = strchr(val, ':');
    size_t nl = colon ? (size_t)(colon - val) : strlen(val);
    if (nl == 0 || nl >= sizeof name) return bad(err, errlen, "%s: bad opcode '%s'", key, val);
    memcpy(name, val, nl);
    name[nl] = 0;
    const int op = esim_op_by_name(name);
    if (op < 0) return bad(err, errlen, "%s: unknown opcode '%s'", key, name);
    uint64_t nth = 1;
    if (colon && (!parse_u64(colon + 1, &nth) || nth == 0 || nth > UINT32_MAX))
      return bad(err, errlen, "%s: bad occurrence '%s'", key, colon + 1);
    f->disconnect_at_op = op;
    f->disconnect_at_nth = (uint32_t)nth;
    return EG_OK;
  }
  if (!strcmp(key, "not_in_download_mode") || !strcmp(key, "ignore_first_sync")) {
    if (!parse_bool(val, &bv)) return bad(err, errlen, "%s: '%s' is not a boolean", key, val);
    if (key[0] == 'n') f->not_in_download_mode = bv;
    else f->ignore_first_sync = bv;
    return EG_OK;
  }
  if (!strcmp(key, "flash_write_error_at")) {
    NEED_VAL();
    if (!parse_u64(val, &uv) || uv > UINT32_MAX) return bad(err, errlen, "%s: bad address '%s'", key, val);
    f->flash_write_error = true;
    f->flash_write_error_addr = (uint32_t)uv;
    return EG_OK;
  }
  if (!strcmp(key, "md5_mismatch")) {
    if (!val || !strcasecmp(val, "true") || !strcasecmp(val, "always")) {
      f->md5_mismatch = UINT32_MAX;
      return EG_OK;
    }
    if (parse_bool(val, &bv) && !isdigit((unsigned char)val[0])) {
      f->md5_mismatch = bv ? UINT32_MAX : 0;
      return EG_OK;
    }
    if (!parse_u64(val, &uv) || uv > UINT32_MAX) return bad(err, errlen, "%s: bad count '%s'", key, val);
    f->md5_mismatch = (uint32_t)uv;
    return EG_OK;
  }
  if (!strcmp(key, "slow_erase")) {
    NEED_VAL();
    if (!parse_double(val, &dv) || dv <= 0 || dv > 1000) return bad(err, errlen, "%s: bad factor '%s'", key, val);
    f->slow_erase = dv;
    return EG_OK;
  }
  if (!strcmp(key, "rom_baud_error")) {
    /* signed percentage: the rate the ROM's UART ends up at after
     * CHANGE_BAUDRATE is off by this much ("8", "-8", "8%") */
    NEED_VAL();
    char *end;
    errno = 0;
    const double pct = strtod(val, &end);
    if (errno || end == val || (*end && strcmp(end, "%")) || pct == 0 || pct < -50 || pct > 50)
      return bad(err, errlen, "%s: '%s' is not a percentage in [-50, 50] other than 0", key, val);
    f->rom_baud_error = pct / 100.0;
    return EG_OK;
  }
  if (!strcmp(key, "noise_above")) {
    /* RATE:P - a marginal line (a long cable, a slow level shifter): fine
     * at RATE and below, a bit flipped in one byte of 1/P above it. */
    NEED_VAL();
    char *end = NULL;
    errno = 0;
    const unsigned long long rate = strtoull(val, &end, 10);
    if (errno || end == val || *end != ':' || rate == 0 || rate > 100000000)
      return bad(err, errlen, "%s: '%s' is not RATE:PROBABILITY", key, val);
    const char *pv = end + 1;
    const double p = strtod(pv, &end);
    if (end == pv || *end || !(p > 0 && p <= 1)) return bad(err, errlen, "%s: probability '%s' not in (0, 1]", key, pv);
    f->noise_above_baud = (uint32_t)rate;
    f->noise_above_rate = p;
    return EG_OK;
  }
  if (!strcmp(key, "baud_ceiling")) {
    NEED_VAL();
    if (!parse_u64(val, &uv) || uv == 0 || uv > 100000000) return bad(err, errlen, "%s: bad rate '%s'", key, val);
    f->baud_ceiling = (uint32_t)uv;
    return EG_OK;
  }
#undef NEED_VAL
  return bad(err, errlen, "unknown fault '%s'%s", key, NULL);
}

eg_err esim_timing_apply(esim_timing *t, const char *key, const char *value, char *err, size_t errlen) {
  static const struct {
    const char *name;
    size_t off;
    bool ns;
  } keys[] = {
#define K(f) {#f, offsetof(esim_timing, f), false}
#define KN(f) {#f, offsetof(esim_timing, f), true}
      K(rom_cmd_us),       K(rom_sync_us),      K(stub_cmd_us),         K(stub_boot_us),
      K(reset_boot_us),    K(baud_switch_us),   K(sector_erase_us),     K(block_erase_us),
      K(chip_erase_base_us), K(chip_erase_per_block_us), K(page_program_us), KN(read_ns_per_byte),
      KN(md5_ns_per_byte), KN(inflate_ns_per_byte), K(rx_latency_us),   K(tx_latency_us),
#undef K
#undef KN
  };
  char base[64];
  snprintf(base, sizeof base, "%s", key);
  /* "sector_erase_ms" / "sector_erase_s" are accepted for "*_us" fields. */
  double scale = 1.0;
  size_t bl = strlen(base);
  if (bl > 3 && !strcmp(base + bl - 3, "_ms")) {
    base[bl - 3] = 0;
    strncat(base, "_us", sizeof base - strlen(base) - 1);
    scale = 1000.0;
  } else if (bl > 2 && !strcmp(base + bl - 2, "_s") && strcmp(base + bl - 3, "_us")) {
    base[bl - 2] = 0;
    strncat(base, "_us", sizeof base - strlen(base) - 1);
    scale = 1e6;
  }
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (strcmp(keys[i].name, base)) continue;
    double v;
    if (!parse_double(value, &v)) return bad(err, errlen, "timing %s: bad number '%s'", key, value);
    if (keys[i].ns && scale != 1.0) return bad(err, errlen, "timing %s: %s is per byte in ns", key, keys[i].name);
    v *= scale;
    if (v > 4e9) return bad(err, errlen, "timing %s: '%s' too large", key, value);
    *(uint32_t *)((char *)t + keys[i].off) = (uint32_t)(v + 0.5);
    return EG_OK;
  }
  return bad(err, errlen, "unknown timing key '%s'%s", key, NULL);
}

/* ------------------------------------------------------- slot settings */

static bool parse_revision(const char *s, int *major, int *minor) {
  if (!s) return false;
  if (*s == 'v' || *s == 'V') s++;
  unsigned a, b;
  char tail;
  if (sscanf(s, "%u.%u%c", &a, &b, &tail) != 2 || a > 3 || b > 15) return false;
  *major = (int)a;
  *minor = (int)b;
  return true;
}

bool esim_parse_mac(const char *s, uint8_t mac[6]) {
  unsigned v[6];
  char tail;
  if (!s || sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) return false;
  for (int i = 0; i < 6; i++) {
    if (v[i] > 255) return false;
    mac[i] = (uint8_t)v[i];
  }
  return true;
}

int esim_port_kind_by_name(const char *s) {
  if (!s) return -1;
  if (!strcasecmp(s, "uart")) return ESIM_PORT_UART;
  if (!strcasecmp(s, "usb-serial-jtag") || !strcasecmp(s, "usb_serial_jtag") || !strcasecmp(s, "jtag"))
    return ESIM_PORT_USB_JTAG;
  if (!strcasecmp(s, "usb-otg") || !strcasecmp(s, "usb_otg") || !strcasecmp(s, "otg")) return ESIM_PORT_USB_OTG;
  return -1;
}

const char *esim_port_kind_name(esim_port_kind k) {
  switch (k) {
  case ESIM_PORT_UART: return "uart";
  case ESIM_PORT_USB_JTAG: return "usb-serial-jtag";
  case ESIM_PORT_USB_OTG: return "usb-otg";
  }
  return "?";
}

int esim_setting_apply(esim_dev_opts *o, const char *key, const char *val, char *err, size_t errlen) {
  uint64_t uv;
  bool bv;
  if (!strcmp(key, "chip")) {
    const int c = esim_chip_by_name(val);
    if (c < 0) {
      bad(err, errlen, "chip: unknown chip '%s'%s (esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, "
                       "esp32c61, esp32h2, esp32p4, esp8266)", val ? val : "", NULL);
      return -1;
    }
    o->chip = (esim_chip_id)c;
    return 1;
  }
  if (!strcmp(key, "revision")) {
    if (!parse_revision(val, &o->rev_major, &o->rev_minor)) {
      bad(err, errlen, "revision: '%s' is not vMAJOR.MINOR (0..3 . 0..15)%s", val ? val : "", NULL);
      return -1;
    }
    return 1;
  }
  if (!strcmp(key, "crystal") || !strcmp(key, "rom_xtal")) {
    if (!parse_u64(val, &uv) || (uv != 26 && uv != 32 && uv != 40 && uv != 48)) {
      bad(err, errlen, "%s: '%s' is not 26, 32, 40 or 48 (MHz)", key, val ? val : "");
      return -1;
    }
    if (key[0] == 'c') o->crystal_mhz = (int)uv;
    else o->rom_xtal_mhz = (int)uv;
    return 1;
  }
  if (!strcmp(key, "port")) {
    const int k = esim_port_kind_by_name(val);
    if (k < 0) {
      bad(err, errlen, "port: '%s' is not uart, usb-serial-jtag or usb-otg%s", val ? val : "", NULL);
      return -1;
    }
    o->port = (esim_port_kind)k;
    return 1;
  }
  if (!strcmp(key, "mac")) {
    if (!esim_parse_mac(val, o->mac)) {
      bad(err, errlen, "mac: bad MAC '%s'%s", val ? val : "", NULL);
      return -1;
    }
    return 1;
  }
  if (!strcmp(key, "flash_id")) {
    if (!parse_u64(val, &uv) || uv > 0xFFFFFF) {
      char buf[64];
      snprintf(buf, sizeof buf, "0x%s", val ? val : "");
      if (!parse_u64(buf, &uv) || uv > 0xFFFFFF) {
        bad(err, errlen, "flash_id: bad JEDEC ID '%s'%s", val ? val : "", NULL);
        return -1;
      }
    }
    o->flash_id = (uint32_t)uv;
    return 1;
  }
  if (!strcmp(key, "usb_reenumerate")) {
    if (!parse_bool(val, &bv)) {
      bad(err, errlen, "%s: '%s' is not a boolean", key, val ? val : "");
      return -1;
    }
    o->usb_reenumerate = bv;
    return 1;
  }
  if (!strcmp(key, "secure_download_mode") || !strcmp(key, "secure_boot") || !strcmp(key, "flash_encryption")) {
    if (!parse_bool(val, &bv)) {
      bad(err, errlen, "%s: '%s' is not a boolean", key, val ? val : "");
      return -1;
    }
    if (!strcmp(key, "secure_download_mode")) o->sec.secure_download = bv;
    else if (!strcmp(key, "secure_boot")) o->sec.secure_boot = bv;
    else o->sec.flash_crypt_cnt = bv ? 1 : 0; /* one bit burnt: odd, encryption on */
    return 1;
  }
  if (!strcmp(key, "flash_crypt_cnt")) {
    if (!parse_u64(val, &uv) || uv > 127) {
      bad(err, errlen, "%s: '%s' is not a count 0..127", key, val ? val : "");
      return -1;
    }
    o->sec.flash_crypt_cnt = (uint8_t)uv;
    return 1;
  }
  return 0;
}
