/* control.h - espsim's control socket (--control PATH): boards are seated
 * in and removed from their slots while espsim runs, so a test can play a
 * production shift against a station.
 *
 * A UNIX stream socket; any number of clients; each sends lines and gets
 * exactly one JSON line back per line, in order:
 *
 *   remove SLOT        the board is pulled: its pty vanishes (symlink gone,
 *                      the host's side hangs up), TCP/RFC 2217 clients are
 *                      dropped and new connections refused
 *   seat SLOT [mac=MAC] [fault=SPEC]... [flash=blank|keep]
 *                      a new board in download mode: a fresh device (fresh
 *                      MAC from a counter unless mac= is given; no faults
 *                      unless fault= gives them, SPEC as --fault's list:
 *                      "md5_mismatch,delay_tx=1ms"), its flash erased unless
 *                      flash=keep (the same board back); the pty reappears
 *                      (same symlink), the TCP port listens again
 *   status [SLOT]      every slot (or one)
 *   help
 *
 * Replies: {"ok":true,"event":"removed"|"seated","slot":...,"mac":...,
 * "seated":bool,"pty":...,"url":...}, {"ok":true,"event":"status",
 * "slots":[{...}]}, or {"ok":false,"error":"..."}. SLOT is "slot03", "3".
 *
 * The board's own state lives in main.c; it offers these hooks. Loop
 * thread only.
 */
#ifndef ESIM_CONTROL_H
#define ESIM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "simdev.h"

typedef struct esim_seat {
  bool has_mac;
  uint8_t mac[6];
  esim_faults faults;
  bool keep_flash;
} esim_seat;

typedef struct esim_control_hooks {
  /* 0-based slot index of "slot03" / "3", or -1. */
  int (*find)(void *app, const char *name);
  bool (*seated)(void *app, int slot);
  void (*remove)(void *app, int slot);
  /* 0: seated; 1: not yet possible (the last connection is still closing:
   * ask again); -1: refused (err says why). */
  int (*seat)(void *app, int slot, const esim_seat *s, char *err, size_t errlen);
  /* The slot's JSON members, without braces ("\"slot\":\"slot03\",..."). */
  void (*describe)(void *app, int slot, char *buf, size_t len);
  int (*count)(void *app);
} esim_control_hooks;

typedef struct esim_control esim_control;

/* Listen on `path` (an existing file there is replaced). base_mac: MACs
 * given to seated boards count up from it. NULL with err on failure. */
esim_control *esim_control_start(uv_loop_t *loop, const char *path, const esim_control_hooks *hooks, void *app,
                                 const uint8_t base_mac[6], char *err, size_t errlen);
/* Stop listening, drop the clients, unlink the socket; memory is freed once
 * the handles are closed. */
void esim_control_close(esim_control *c);

#endif
