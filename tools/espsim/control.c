/* control.c - espsim's control socket: seat and remove boards (control.h). */
#include "control.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048
#define RETRY_MS 5

typedef struct client {
  esim_control *c;
  uv_pipe_t pipe;
  char buf[LINE_MAX_BYTES];
  size_t len;
  bool closing;
  struct client *next;
} client;

struct esim_control {
  uv_loop_t *loop;
  uv_pipe_t server;
  char path[108];
  const esim_control_hooks *h;
  void *app;
  uint8_t next_mac[6];
  client *clients;
  uv_timer_t retry; /* a seat that had to wait for a closing connection */
  unsigned handles;
  bool closing;
};

static void handle_closed(uv_handle_t *h) {
  esim_control *c = h->data;
  if (--c->handles == 0) free(c);
}

/* ------------------------------------------------------------ replies */

static void write_done(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
  free(req);
}

static void reply(client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(client *cl, const char *fmt, ...) {
  if (cl->closing) return;
  char *line = malloc(8192);
  uv_write_t *req = malloc(sizeof *req);
  if (!line || !req) {
    free(line);
    free(req);
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, 8190, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > 8190) n = 8190;
  line[n++] = '\n';
  req->data = line;
  uv_buf_t b = uv_buf_init(line, (unsigned)n);
  if (uv_write(req, (uv_stream_t *)&cl->pipe, &b, 1, write_done) != 0) write_done(req, -1);
}

/* A JSON string's inside for short texts we wrote ourselves (errors quote
 * what the client sent: escape it). */
static void json_text(char *out, size_t len, const char *s) {
  size_t j = 0;
  for (; *s && j + 7 < len; s++) {
    const unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      out[j++] = '\\';
      out[j++] = (char)ch;
    } else if (ch < 0x20 || ch >= 0x7F) {
      j += (size_t)snprintf(out + j, len - j, "\\u%04x", ch);
    } else {
      out[j++] = (char)ch;
    }
  }
  out[j] = '\0';
}

static void reply_error(client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(client *cl, const char *fmt, ...) {
  char raw[512], esc[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  json_text(esc, sizeof esc, raw);
  reply(cl, "{\"ok\":false,\"error\":\"%s\"}", esc);
}

/* ------------------------------------------------------------ commands */

static void mac_next(uint8_t mac[6]) {
  for (int i = 5; i >= 0; i--)
    if (++mac[i] != 0) break;
}

/* "seat SLOT [mac=..] [fault=..].. [flash=..]" after the slot. */
static bool parse_seat(char *args, esim_seat *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  esim_faults_clear(&s->faults);
  char *save = NULL;
  for (char *tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
    if (!strncmp(tok, "mac=", 4)) {
      if (!esim_parse_mac(tok + 4, s->mac)) return snprintf(err, errlen, "bad MAC '%s'", tok + 4), false;
      s->has_mac = true;
    } else if (!strncmp(tok, "fault=", 6)) {
      char *fsave = NULL;
      for (char *f = strtok_r(tok + 6, ",", &fsave); f; f = strtok_r(NULL, ",", &fsave))
        if (esim_fault_apply(&s->faults, f, err, errlen) != EG_OK) return false;
    } else if (!strcmp(tok, "flash=keep")) {
      s->keep_flash = true;
    } else if (!strcmp(tok, "flash=blank")) {
      s->keep_flash = false;
    } else {
      return snprintf(err, errlen, "unknown seat argument '%s' (mac=, fault=, flash=keep|blank)", tok), false;
    }
  }
  return true;
}

static void reply_slot(client *cl, const char *event, int slot) {
  char desc[2048];
  cl->c->h->describe(cl->c->app, slot, desc, sizeof desc);
  reply(cl, "{\"ok\":true,\"event\":\"%s\",%s}", event, desc);
}

static void reply_status(client *cl, int only) {
  esim_control *c = cl->c;
  const int n = c->h->count(c->app);
  size_t cap = 256 + (size_t)n * 1024, len = 0;
  char *out = malloc(cap);
  if (!out) return reply_error(cl, "out of memory");
  len += (size_t)snprintf(out + len, cap - len, "{\"ok\":true,\"event\":\"status\",\"slots\":[");
  bool first = true;
  for (int i = 0; i < n; i++) {
    if (only >= 0 && i != only) continue;
    char desc[1024];
    c->h->describe(c->app, i, desc, sizeof desc);
    len += (size_t)snprintf(out + len, cap - len, "%s{%s}", first ? "" : ",", desc);
    first = false;
  }
  snprintf(out + len, cap - len, "]}");
  reply(cl, "%s", out);
  free(out);
}

/* One line. false: it must wait (a seat behind a closing connection); it
 * is tried again from the retry timer. */
static bool command(client *cl, char *line) {
  esim_control *c = cl->c;
  char *save = NULL;
  char *verb = strtok_r(line, " \t\r", &save);
  if (!verb) return true; /* empty line: nothing to say */
  char *who = strtok_r(NULL, " \t\r", &save);
  char *rest = save ? save : (char *)"";
  const int slot = who ? c->h->find(c->app, who) : -1;
  if (!strcmp(verb, "help")) {
    reply(cl, "{\"ok\":true,\"event\":\"help\",\"commands\":[\"remove SLOT\",\"seat SLOT [mac=MAC] "
              "[fault=SPEC]... [flash=blank|keep]\",\"status [SLOT]\"]}");
    return true;
  }
  if (!strcmp(verb, "status")) {
    if (who && slot < 0) reply_error(cl, "no slot '%s'", who);
    else reply_status(cl, who ? slot : -1);
    return true;
  }
  if (strcmp(verb, "remove") != 0 && strcmp(verb, "seat") != 0) {
    reply_error(cl, "unknown command '%s' (remove, seat, status, help)", verb);
    return true;
  }
  if (!who || slot < 0) {
    reply_error(cl, "%s: no slot '%s'", verb, who ? who : "");
    return true;
  }
  if (!strcmp(verb, "remove")) {
    if (!c->h->seated(c->app, slot)) {
      reply_error(cl, "remove: %s has no board", who);
      return true;
    }
    c->h->remove(c->app, slot);
    reply_slot(cl, "removed", slot);
    return true;
  }
  if (c->h->seated(c->app, slot)) {
    reply_error(cl, "seat: %s already has a board (remove it first)", who);
    return true;
  }
  char args[LINE_MAX_BYTES], err[256] = "";
  snprintf(args, sizeof args, "%s", rest);
  esim_seat s;
  if (!parse_seat(args, &s, err, sizeof err)) {
    reply_error(cl, "seat %s: %s", who, err);
    return true;
  }
  if (!s.has_mac) memcpy(s.mac, c->next_mac, sizeof s.mac);
  const int r = c->h->seat(c->app, slot, &s, err, sizeof err);
  if (r > 0) return false;
  if (r < 0) {
    reply_error(cl, "seat %s: %s", who, err);
    return true;
  }
  if (!s.has_mac) mac_next(c->next_mac);
  reply_slot(cl, "seated", slot);
  return true;
}

static void on_retry(uv_timer_t *t);

/* Run the client's complete lines, in order, until one has to wait. */
static void process(client *cl) {
  while (!cl->closing) {
    char *nl = memchr(cl->buf, '\n', cl->len);
    if (!nl) {
      if (cl->len == sizeof cl->buf) { /* no room for the rest of the line */
        reply_error(cl, "line longer than %d bytes", LINE_MAX_BYTES);
        cl->len = 0;
      }
      return;
    }
    const size_t n = (size_t)(nl - cl->buf);
    char line[LINE_MAX_BYTES];
    memcpy(line, cl->buf, n);
    line[n] = '\0';
    if (!command(cl, line)) {
      uv_timer_start(&cl->c->retry, on_retry, RETRY_MS, 0);
      return;
    }
    memmove(cl->buf, nl + 1, cl->len - n - 1);
    cl->len -= n + 1;
  }
}

static void on_retry(uv_timer_t *t) {
  esim_control *c = t->data;
  for (client *cl = c->clients; cl; cl = cl->next) process(cl);
}

/* ------------------------------------------------------------ clients */

static void client_closed(uv_handle_t *h) {
  client *cl = h->data;
  esim_control *c = cl->c;
  for (client **p = &c->clients; *p; p = &(*p)->next)
    if (*p == cl) {
      *p = cl->next;
      break;
    }
  free(cl);
  handle_closed((uv_handle_t *)&c->server); /* one handle fewer (data is c) */
}

static void drop_client(client *cl) {
  if (cl->closing) return;
  cl->closing = true;
  uv_close((uv_handle_t *)&cl->pipe, client_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  client *cl = h->data;
  (void)suggested;
  *buf = uv_buf_init(cl->buf + cl->len, (unsigned)(sizeof cl->buf - cl->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  client *cl = s->data;
  (void)buf;
  if (n < 0) {
    drop_client(cl);
    return;
  }
  cl->len += (size_t)n;
  process(cl);
}

static void on_connection(uv_stream_t *server, int status) {
  esim_control *c = server->data;
  if (status < 0 || c->closing) return;
  client *cl = calloc(1, sizeof *cl);
  if (!cl) return;
  cl->c = c;
  uv_pipe_init(c->loop, &cl->pipe, 0);
  cl->pipe.data = cl;
  c->handles++;
  cl->next = c->clients;
  c->clients = cl;
  if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0 || uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0)
    drop_client(cl);
}

/* ------------------------------------------------------------ life */

esim_control *esim_control_start(uv_loop_t *loop, const char *path, const esim_control_hooks *hooks, void *app,
                                 const uint8_t base_mac[6], char *err, size_t errlen) {
  if (strlen(path) >= sizeof ((esim_control *)0)->path) {
    snprintf(err, errlen, "--control %s: path too long for a UNIX socket", path);
    return NULL;
  }
  esim_control *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->loop = loop;
  c->h = hooks;
  c->app = app;
  memcpy(c->next_mac, base_mac, 6);
  snprintf(c->path, sizeof c->path, "%s", path);
  uv_pipe_init(loop, &c->server, 0);
  c->server.data = c;
  uv_timer_init(loop, &c->retry);
  c->retry.data = c;
  c->handles = 2;
  unlink(path);
  int rc = uv_pipe_bind(&c->server, path);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&c->server, 16, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "--control %s: %s", path, uv_strerror(rc));
    esim_control_close(c);
    return NULL;
  }
  return c;
}

void esim_control_close(esim_control *c) {
  if (!c || c->closing) return;
  c->closing = true;
  for (client *cl = c->clients; cl; cl = cl->next) drop_client(cl);
  uv_close((uv_handle_t *)&c->retry, handle_closed);
  uv_close((uv_handle_t *)&c->server, handle_closed);
  unlink(c->path);
}
