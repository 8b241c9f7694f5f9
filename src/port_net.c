/* port_net.c - below the network backends (socket://, rfc2217://): the URL
 * parser, the lock key of a URL, the non-blocking TCP connect and its
 * completion, in one place for both.
 *
 * The connect is non-blocking: the backend's open returns with p->connecting
 * set when the kernel answered EINPROGRESS, and the caller calls
 * eg_port_finish_connect() when the fd becomes writable (or
 * eg_port_diagnose() when the loop reports an error on it: a refused
 * connection shows up as POLLERR). TCP_NODELAY: the protocol is
 * request/reply with small packets, and Nagle would hold each one back for
 * an ACK.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "port_util.h"

bool eg__url_has_scheme(const char *name, const char *scheme) {
  return strncasecmp(name, scheme, strlen(scheme)) == 0;
}

/* pyserial's "?option[=value][&option...]" after the port (esptool users
 * write rfc2217://host:port?ign_set_control). Options only tune pyserial's
 * own waiting and logging, so every one is ignored here; only the shape is
 * checked, so that a typo like "host:4000?" or "?&x" is not silently taken. */
static bool query_ok(const char *q, char *msg, size_t msgcap) {
  for (;;) {
    const char *end = q + strcspn(q, "&");
    const char *eq = memchr(q, '=', (size_t)(end - q));
    const char *nend = eq ? eq : end;
    if (nend == q) {
      snprintf(msg, msgcap, "empty option name after '%c'", q[-1]);
      return false;
    }
    for (const char *c = q; c < end; c++) {
      const unsigned char u = (unsigned char)*c;
      const bool name_ch = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                           u == '_' || u == '-' || u == '.';
      if (c < nend ? !name_ch : (u <= ' ' || u == '#' || u == '?' || u >= 0x7f)) {
        snprintf(msg, msgcap, "invalid character in option \"%.*s\"", (int)(end - q), q);
        return false;
      }
    }
    if (!*end) return true;
    q = end + 1;
  }
}

bool eg__url_parse(const char *name, const char *scheme, char *host, size_t hostcap, char *port, size_t portcap,
                   char *msg, size_t msgcap) {
  host[0] = port[0] = msg[0] = '\0';
  if (!eg__url_has_scheme(name, scheme)) {
    snprintf(msg, msgcap, "not a %s URL", scheme);
    return false;
  }
  const char *s = name + strlen(scheme);
  const char *h = s, *hend, *colon;
  if (*s == '[') {
    /* IPv6 literal: socket://[::1]:5555 */
    h = s + 1;
    hend = strchr(h, ']');
    if (!hend) {
      snprintf(msg, msgcap, "missing ']' after the IPv6 address");
      return false;
    }
    colon = hend + 1;
    if (*colon != ':') {
      snprintf(msg, msgcap, "no port: expected %s[address]:port", scheme);
      return false;
    }
  } else {
    /* The port's colon is the last one before any '?' (an option's value
     * may hold a colon too). */
    const size_t before_query = strcspn(s, "?");
    colon = NULL;
    for (const char *c = s; c < s + before_query; c++)
      if (*c == ':') colon = c;
    if (!colon) {
      snprintf(msg, msgcap, "no port: expected %shost:port", scheme);
      return false;
    }
    hend = colon;
    if (memchr(s, ':', (size_t)(hend - s))) {
      snprintf(msg, msgcap, "an IPv6 address needs brackets: %s[address]:port", scheme);
      return false;
    }
  }
  const size_t hlen = (size_t)(hend - h);
  if (hlen == 0) {
    snprintf(msg, msgcap, "empty host");
    return false;
  }
  if (hlen >= hostcap) {
    snprintf(msg, msgcap, "host name too long");
    return false;
  }
  const char *p = colon + 1;
  if (!*p || *p == '?') {
    snprintf(msg, msgcap, "no port after ':'");
    return false;
  }
  unsigned long v = 0;
  size_t digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > 65535) break;
  }
  if (*p && *p != '?' && !(*p >= '0' && *p <= '9')) {
    snprintf(msg, msgcap, "port is not a number (unexpected '%c')", *p);
    return false;
  }
  if (v > 65535 || digits == 0 || v == 0) {
    snprintf(msg, msgcap, "port out of range (1-65535)");
    return false;
  }
  if (*p == '?' && !query_ok(p + 1, msg, msgcap)) return false;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  snprintf(port, portcap, "%lu", v);
  return true;
}

eg_err eg__url_check(const char *name, const char *scheme, char *key, size_t keycap, char *why, size_t whycap) {
  char host[256], port[16], msg[128];
  if (!eg__url_parse(name, scheme, host, sizeof host, port, sizeof port, msg, sizeof msg)) {
    if (whycap) snprintf(why, whycap, "cannot open %s: malformed URL: %s", name, msg);
    return EG_PORT_OPEN;
  }
  for (char *c = host; *c; c++) *c = (char)tolower((unsigned char)*c);
  if (keycap) snprintf(key, keycap, "%s:%s", host, port);
  return EG_OK;
}

eg_err eg__net_connect(eg_port *p, eg_fault *f, const char *scheme) {
  char host[256], port[8], why[128];
  if (!eg__url_parse(p->name, scheme, host, sizeof host, port, sizeof port, why, sizeof why))
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: malformed URL: %s", p->name, why);
  /* No AI_ADDRCONFIG: with it glibc ignores loopback, so "localhost" fails
   * on a machine whose only interface is lo (CI sandboxes). */
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  const int g = getaddrinfo(host, port, &hints, &res);
  if (g != 0) {
    const char *reason = g == EAI_SYSTEM ? eg__errno_words(errno) : gai_strerror(g);
    return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: cannot resolve %s: %s", p->name, host, reason);
  }
  int last_err = 0;
  const char *last_step = "connect";
  for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_err = errno, last_step = "socket";
      continue;
    }
    const int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
      last_err = errno, last_step = "TCP_NODELAY";
      close(fd);
      continue;
    }
    const int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    const int cerr = rc < 0 ? errno : 0;
    /* EINTR: an interrupted non-blocking connect goes on in the background,
     * exactly like EINPROGRESS. */
    if (rc == 0 || cerr == EINPROGRESS || cerr == EINTR) {
      p->fd = fd;
      p->connecting = rc != 0;
      freeaddrinfo(res);
      return EG_OK;
    }
    last_err = cerr, last_step = "connect";
    close(fd);
  }
  freeaddrinfo(res);
  if (!last_err) return eg__port_fail(p, f, EG_PORT_OPEN, "cannot open %s: %s has no address", p->name, host);
  if (strcmp(last_step, "connect") == 0)
    return eg__port_os_fail(p, f, EG__OP_OPEN, last_err, "cannot connect to %s", p->name);
  return eg__port_os_fail(p, f, EG__OP_OPEN, last_err, "cannot open %s (%s)", p->name, last_step);
}

eg_err eg__net_finish_connect(eg_port *p, eg_fault *f) {
  if (!p->connecting) return EG_OK;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot connect to %s", p->name);
  /* No error yet: connected, or still trying (called before writable). */
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getpeername(p->fd, (struct sockaddr *)&peer, &plen) < 0) {
    err = errno;
    if (err == ENOTCONN) return EG_OK; /* still in progress: wait for writable */
    return eg__port_os_fail(p, f, EG__OP_OPEN, err, "cannot connect to %s", p->name);
  }
  p->connecting = false;
  return EG_OK;
}
