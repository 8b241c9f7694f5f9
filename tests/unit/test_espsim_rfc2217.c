/* test_espsim_rfc2217.c - espsim's RFC 2217 server: the Telnet/Com Port
 * codec (tools/espsim/rfc2217.c) on byte streams split anywhere, then the
 * link (simlink.c) over a socketpair: detection on the first byte, 0xFF
 * doubling both ways, SET-BAUDRATE as the host's UART rate, DTR/RTS into
 * the device's auto-reset circuit, purge and flow control.
 *
 * Byte values: RFC 854 (IAC 255, DONT 254, DO 253, WONT 252, WILL 251,
 * SB 250, SE 240, NOP 241), RFC 2217 (COM-PORT-OPTION 44; SET-BAUDRATE 1,
 * SET-CONTROL 5, PURGE-DATA 12, ...; answers at +100). */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "test_espsim_host.h"
#include "rfc2217.h"
#include "simlink.h"

/* ------------------------------------------------------------ the codec */

typedef struct rec {
  esim_rfc2217_ev ev;
  uint32_t value;
  bool dtr, rts;
  uint32_t baud;
  size_t at_data; /* data bytes delivered before this event */
} rec;

typedef struct col {
  esim_rfc2217 s;
  uint8_t data[4096];
  size_t nd;
  uint8_t reply[4096];
  size_t nr;
  rec ev[64];
  size_t ne;
} col;

static void col_cb(void *ctx, esim_rfc2217_ev ev, const uint8_t *p, size_t n, uint32_t value) {
  col *c = ctx;
  switch (ev) {
  case ESIM_RFC2217_DATA:
    assert_true(n > 0);
    assert_true(c->nd + n <= sizeof c->data);
    memcpy(c->data + c->nd, p, n);
    c->nd += n;
    return;
  case ESIM_RFC2217_REPLY:
    assert_true(c->nr + n <= sizeof c->reply);
    memcpy(c->reply + c->nr, p, n);
    c->nr += n;
    return;
  case ESIM_RFC2217_BAUD:
  case ESIM_RFC2217_LINES:
  case ESIM_RFC2217_PURGE:
  case ESIM_RFC2217_FLOW:
    assert_true(c->ne < 64);
    c->ev[c->ne++] = (rec){ev, value, c->s.dtr, c->s.rts, c->s.baud, c->nd};
    return;
  }
}

static void col_init(col *c) {
  memset(c, 0, sizeof *c);
  esim_rfc2217_init(&c->s, 115200);
}

static void feed(col *c, const uint8_t *p, size_t n) { esim_rfc2217_rx(&c->s, p, n, col_cb, c); }

#define FEED(c, ...)                                  \
  do {                                                \
    static const uint8_t in_[] = {__VA_ARGS__};       \
    feed((c), in_, sizeof in_);                       \
  } while (0)

/* Expect the replies since the last call to be exactly these bytes. */
static size_t reply_mark;
static void expect_reply(col *c, const uint8_t *want, size_t n) {
  if (c->nr - reply_mark != n || (n && memcmp(c->reply + reply_mark, want, n) != 0)) {
    char got[512] = "", exp[512] = "";
    for (size_t i = reply_mark; i < c->nr && i - reply_mark < 150; i++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%02x ", c->reply[i]);
    for (size_t i = 0; i < n && i < 150; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%02x ", want[i]);
    fail_msg("replies: got [%s], want [%s]", got, exp);
  }
  reply_mark = c->nr;
}
#define EXPECT_REPLY(c, ...)                          \
  do {                                                \
    static const uint8_t w_[] = {__VA_ARGS__};        \
    expect_reply((c), w_, sizeof w_);                 \
  } while (0)
#define EXPECT_NO_REPLY(c) expect_reply((c), NULL, 0)

static void test_negotiation(void **s) {
  (void)s;
  col c;
  col_init(&c);
  reply_mark = 0;
  assert_false(esim_rfc2217_comport(&c.s));
  /* espgang's opening: WILL/DO BINARY, WILL/DO SGA, WILL COM-PORT-OPTION */
  FEED(&c, 255, 251, 0, 255, 253, 0, 255, 251, 3, 255, 253, 3, 255, 251, 44);
  EXPECT_REPLY(&c, 255, 253, 0, 255, 251, 0, 255, 253, 3, 255, 251, 3, 255, 253, 44);
  assert_true(esim_rfc2217_comport(&c.s));
  /* asked again: already agreed, no answer (RFC 1143: no loops) */
  FEED(&c, 255, 251, 0, 255, 253, 0, 255, 251, 44);
  EXPECT_NO_REPLY(&c);
  /* pyserial's: DO ECHO (refused), DO COM-PORT-OPTION (agreed) */
  FEED(&c, 255, 253, 1, 255, 253, 44);
  EXPECT_REPLY(&c, 255, 252, 1, 255, 251, 44);
  /* unknown options are refused every time they are offered or asked for */
  FEED(&c, 255, 251, 24, 255, 253, 31, 255, 251, 24);
  EXPECT_REPLY(&c, 255, 254, 24, 255, 252, 31, 255, 254, 24);
  /* ...and their WONT/DONT need no answer */
  FEED(&c, 255, 252, 24, 255, 254, 31);
  EXPECT_NO_REPLY(&c);
  /* switching an agreed option off is confirmed once */
  FEED(&c, 255, 254, 0, 255, 254, 0, 255, 252, 3, 255, 252, 3);
  EXPECT_REPLY(&c, 255, 252, 0, 255, 254, 3);
  /* and it can be switched on again */
  FEED(&c, 255, 253, 0);
  EXPECT_REPLY(&c, 255, 251, 0);
  assert_int_equal(c.nd, 0);
  assert_int_equal(c.ne, 0);
  assert_int_equal(c.s.ignored, 4); /* the four refusals */
}

static void test_data_and_iac_doubling(void **s) {
  (void)s;
  col c;
  col_init(&c);
  reply_mark = 0;
  FEED(&c, 'A', 255, 255, 'B', 255, 255, 255, 255, 'C', 0xC0, 0, 255, 255);
  static const uint8_t want[] = {'A', 255, 'B', 255, 255, 'C', 0xC0, 0, 255};
  assert_int_equal(c.nd, sizeof want);
  assert_memory_equal(c.data, want, sizeof want);
  EXPECT_NO_REPLY(&c);
  /* a lone IAC at the end waits for its partner */
  FEED(&c, 'x', 255);
  assert_int_equal(c.nd, sizeof want + 1);
  FEED(&c, 255, 'y');
  assert_int_equal(c.nd, sizeof want + 3);
  assert_memory_equal(c.data + sizeof want, "x\xffy", 3);

  /* the server's escaping, with an output buffer that ends mid-pair */
  static const uint8_t in[] = {1, 255, 2, 255, 255};
  uint8_t out[16];
  size_t used;
  assert_int_equal(esim_rfc2217_escape(out, 2, in, sizeof in, &used), 1);
  assert_int_equal(used, 1);
  assert_int_equal(esim_rfc2217_escape(out, 3, in, sizeof in, &used), 3);
  assert_int_equal(used, 2);
  assert_int_equal(esim_rfc2217_escape(out, sizeof out, in, sizeof in, &used), 8);
  assert_int_equal(used, 5);
  static const uint8_t esc[] = {1, 255, 255, 2, 255, 255, 255, 255};
  assert_memory_equal(out, esc, sizeof esc);
}

static void test_subnegotiation_values(void **s) {
  (void)s;
  col c;
  col_init(&c);
  reply_mark = 0;
  /* SET-BAUDRATE 131071 = 00 01 FF FF: each FF doubled inside SB */
  FEED(&c, 255, 250, 44, 1, 0, 1, 255, 255, 255, 255, 255, 240);
  assert_int_equal(c.s.baud, 131071);
  assert_int_equal(c.ne, 1);
  assert_int_equal(c.ev[0].ev, ESIM_RFC2217_BAUD);
  assert_int_equal(c.ev[0].value, 131071);
  EXPECT_REPLY(&c, 255, 250, 44, 101, 0, 1, 255, 255, 255, 255, 255, 240);
  /* value 0 is a query: the current rate, no change */
  FEED(&c, 255, 250, 44, 1, 0, 0, 0, 0, 255, 240);
  EXPECT_REPLY(&c, 255, 250, 44, 101, 0, 1, 255, 255, 255, 255, 255, 240);
  assert_int_equal(c.ne, 1);
  /* 921600 = 00 0E 10 00 */
  FEED(&c, 255, 250, 44, 1, 0, 14, 16, 0, 255, 240);
  assert_int_equal(c.s.baud, 921600);
  EXPECT_REPLY(&c, 255, 250, 44, 101, 0, 14, 16, 0, 255, 240);
  /* masks: 0xFF comes back doubled */
  FEED(&c, 255, 250, 44, 10, 255, 255, 255, 240, 255, 250, 44, 11, 0x30, 255, 240);
  EXPECT_REPLY(&c, 255, 250, 44, 110, 255, 255, 255, 240, 255, 250, 44, 111, 0x30, 255, 240);
  assert_int_equal(c.s.linestate_mask, 255);
  assert_int_equal(c.s.modemstate_mask, 0x30);
  /* 8N1 only: any data size, parity, stop size (and a query) gets 8 / none / 1 */
  FEED(&c, 255, 250, 44, 2, 7, 255, 240, 255, 250, 44, 2, 0, 255, 240, 255, 250, 44, 3, 3, 255, 240, 255, 250, 44, 4, 2,
       255, 240);
  EXPECT_REPLY(&c, 255, 250, 44, 102, 8, 255, 240, 255, 250, 44, 102, 8, 255, 240, 255, 250, 44, 103, 1, 255, 240, 255,
               250, 44, 104, 1, 255, 240);
  /* signature: a query is answered, the client's own is not */
  FEED(&c, 255, 250, 44, 0, 255, 240, 255, 250, 44, 0, 'p', 'y', 255, 240);
  EXPECT_REPLY(&c, 255, 250, 44, 100, 'e', 's', 'p', 's', 'i', 'm', 255, 240);
  /* line and modem state: nothing to report */
  FEED(&c, 255, 250, 44, 6, 255, 240, 255, 250, 44, 7, 255, 240);
  EXPECT_REPLY(&c, 255, 250, 44, 106, 0, 255, 240, 255, 250, 44, 107, 0, 255, 240);
  /* flow control suspend/resume: events, no answer */
  FEED(&c, 255, 250, 44, 8, 255, 240);
  assert_true(c.s.suspended);
  FEED(&c, 255, 250, 44, 9, 255, 240);
  assert_false(c.s.suspended);
  EXPECT_NO_REPLY(&c);
  assert_int_equal(c.ne, 4);
  assert_int_equal(c.ev[2].ev, ESIM_RFC2217_FLOW);
  assert_int_equal(c.ev[2].value, 1);
  assert_int_equal(c.ev[3].value, 0);
  /* purge 1..3 acknowledged; 0 and 4 are not purges */
  FEED(&c, 255, 250, 44, 12, 1, 255, 240, 255, 250, 44, 12, 2, 255, 240, 255, 250, 44, 12, 3, 255, 240);
  EXPECT_REPLY(&c, 255, 250, 44, 112, 1, 255, 240, 255, 250, 44, 112, 2, 255, 240, 255, 250, 44, 112, 3, 255, 240);
  FEED(&c, 255, 250, 44, 12, 0, 255, 240, 255, 250, 44, 12, 4, 255, 240);
  EXPECT_NO_REPLY(&c);
  assert_int_equal(c.ne, 7);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(c.ev[4 + i].ev, ESIM_RFC2217_PURGE);
    assert_int_equal(c.ev[4 + i].value, (uint32_t)i + 1);
  }
  assert_int_equal(c.s.ignored, 2);
  assert_int_equal(c.nd, 0);
}

static void test_set_control(void **s) {
  (void)s;
  /* value sent -> value answered; * = LINES event */
  static const struct {
    uint8_t v, ans;
    bool lines;
  } t[] = {{0, 1, 0},   {1, 1, 0},   {2, 1, 0},   {3, 1, 0},   {4, 6, 0},   {5, 5, 0},   {4, 5, 0},
           {6, 6, 0},   {7, 9, 0},   {8, 8, 1},   {7, 8, 0},   {10, 12, 0}, {11, 11, 1}, {10, 11, 0},
           {9, 9, 1},   {12, 12, 1}, {10, 12, 0}, {13, 14, 0}, {15, 14, 0}, {16, 14, 0}, {17, 1, 0},
           {18, 14, 0}, {19, 1, 0}};
  col c;
  col_init(&c);
  reply_mark = 0;
  size_t nlines = 0;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    const uint8_t cmd[] = {255, 250, 44, 5, t[i].v, 255, 240};
    feed(&c, cmd, sizeof cmd);
    const uint8_t want[] = {255, 250, 44, 105, t[i].ans, 255, 240};
    expect_reply(&c, want, sizeof want);
    nlines += t[i].lines;
    assert_int_equal(c.ne, nlines);
  }
  /* the LINES events carry the state: DTR on, RTS on, DTR off, RTS off */
  assert_true(c.ev[0].dtr && !c.ev[0].rts);
  assert_true(c.ev[1].dtr && c.ev[1].rts);
  assert_true(!c.ev[2].dtr && c.ev[2].rts);
  assert_true(!c.ev[3].dtr && !c.ev[3].rts);
  /* unknown values: no answer */
  FEED(&c, 255, 250, 44, 5, 20, 255, 240, 255, 250, 44, 5, 255, 255, 255, 240);
  EXPECT_NO_REPLY(&c);
  assert_int_equal(c.s.ignored, 2);
}

static void test_malformed(void **s) {
  (void)s;
  col c;
  col_init(&c);
  reply_mark = 0;
  FEED(&c, 255, 250, 44, 1, 0, 1, 194, 255, 240); /* SET-BAUDRATE, 3 value bytes */
  FEED(&c, 255, 250, 44, 5, 8, 8, 255, 240);      /* SET-CONTROL, 2 value bytes */
  FEED(&c, 255, 250, 44, 42, 1, 255, 240);        /* unknown command */
  FEED(&c, 255, 250, 44, 255, 240);               /* option only */
  FEED(&c, 255, 250, 255, 240);                   /* empty */
  FEED(&c, 255, 250, 24, 1, 255, 240);            /* another option's SB (TTYPE SEND) */
  FEED(&c, 255, 240);                             /* stray SE */
  FEED(&c, 255, 16);                              /* IAC + a byte that is no command */
  FEED(&c, 255, 241);                             /* NOP: fine */
  /* an over-long subnegotiation (a 200-byte "signature") is dropped whole */
  uint8_t big[210];
  big[0] = 255;
  big[1] = 250;
  big[2] = 44;
  big[3] = 0;
  memset(big + 4, 'x', 200);
  big[204] = 255;
  big[205] = 240;
  feed(&c, big, 206);
  /* an SB never closed: the next IAC command ends it and is obeyed */
  FEED(&c, 255, 250, 44, 1, 0, 0, 255, 251, 0);
  EXPECT_REPLY(&c, 255, 253, 0);
  assert_int_equal(c.s.baud, 115200);
  assert_int_equal(c.ne, 0);
  assert_int_equal(c.s.commands, 0);
  assert_int_equal(c.s.ignored, 10);
  /* and data still flows */
  FEED(&c, 'o', 'k', 255, 255);
  assert_int_equal(c.nd, 3);
  assert_memory_equal(c.data, "ok\xff", 3);
}

/* One stream with a bit of everything, fed whole, in two pieces split at
 * every position, and byte by byte: the same data, answers and events. */
static const uint8_t mixed[] = {
    255, 251, 0, 255, 253, 0, 255, 251, 3, 255, 253, 3, 255, 251, 44, /* espgang's opening */
    255, 253, 1, 255, 253, 44,                                         /* DO ECHO, DO COM-PORT */
    255, 250, 44, 1, 0, 1, 255, 255, 255, 255, 255, 240,               /* baud 131071 */
    'A', 255, 255, 'B',                                                /* data A FF B */
    255, 250, 44, 5, 8, 255, 240,                                      /* DTR on */
    255, 250, 44, 5, 11, 255, 240,                                     /* RTS on */
    0xC0, 1, 2, 255, 255, 0xC0,                                        /* data */
    255, 250, 44, 12, 3, 255, 240,                                     /* purge both */
    255, 250, 44, 5, 7, 255, 240,                                      /* DTR? */
    255, 241, 'Z',                                                     /* NOP, data */
    255, 251, 24,                                                      /* WILL TTYPE: refused */
    255, 250, 24, 1, 255, 240,                                         /* its SB: ignored */
    'E', 'N', 'D'};

static void test_split_anywhere(void **s) {
  (void)s;
  col ref;
  col_init(&ref);
  feed(&ref, mixed, sizeof mixed);
  static const uint8_t want_data[] = {'A', 255, 'B', 0xC0, 1, 2, 255, 0xC0, 'Z', 'E', 'N', 'D'};
  assert_int_equal(ref.nd, sizeof want_data);
  assert_memory_equal(ref.data, want_data, sizeof want_data);
  static const uint8_t want_reply[] = {255, 253, 0,   255, 251, 0,   255, 253, 3,   255, 251, 3,   255, 253, 44,
                                       255, 252, 1,   255, 251, 44,  255, 250, 44,  101, 0,   1,   255, 255, 255,
                                       255, 255, 240, 255, 250, 44,  105, 8,   255, 240, 255, 250, 44,  105, 11,
                                       255, 240, 255, 250, 44,  112, 3,   255, 240, 255, 250, 44,  105, 8,   255,
                                       240, 255, 254, 24};
  assert_int_equal(ref.nr, sizeof want_reply);
  assert_memory_equal(ref.reply, want_reply, sizeof want_reply);
  assert_int_equal(ref.ne, 4);
  assert_int_equal(ref.ev[0].ev, ESIM_RFC2217_BAUD);
  assert_int_equal(ref.ev[0].at_data, 0);
  assert_int_equal(ref.ev[1].ev, ESIM_RFC2217_LINES);
  assert_int_equal(ref.ev[1].at_data, 3); /* after A FF B */
  assert_true(ref.ev[1].dtr && !ref.ev[1].rts);
  assert_true(ref.ev[2].dtr && ref.ev[2].rts);
  assert_int_equal(ref.ev[3].ev, ESIM_RFC2217_PURGE);
  assert_int_equal(ref.ev[3].at_data, 8);

  for (size_t cut = 0; cut <= sizeof mixed; cut++) {
    col c;
    col_init(&c);
    feed(&c, mixed, cut);
    feed(&c, mixed + cut, sizeof mixed - cut);
    if (c.nd != ref.nd || memcmp(c.data, ref.data, ref.nd) || c.nr != ref.nr || memcmp(c.reply, ref.reply, ref.nr) ||
        c.ne != ref.ne || memcmp(c.ev, ref.ev, ref.ne * sizeof ref.ev[0]))
      fail_msg("split at %zu differs from the whole stream", cut);
  }
  col c;
  col_init(&c);
  for (size_t i = 0; i < sizeof mixed; i++) feed(&c, mixed + i, 1);
  assert_int_equal(c.nd, ref.nd);
  assert_memory_equal(c.data, ref.data, ref.nd);
  assert_int_equal(c.nr, ref.nr);
  assert_memory_equal(c.reply, ref.reply, ref.nr);
  assert_int_equal(c.ne, ref.ne);
  assert_memory_equal(c.ev, ref.ev, ref.ne * sizeof ref.ev[0]);
}

/* ------------------------------------------------------------- the link */

/* The test's side of the connection: a small telnet client decoder. */
typedef struct lk {
  uv_loop_t loop;
  esim_dev *dev;
  esim_link *link;
  int fd, dev_fd;
  bool closed;
  int gone;
  /* what arrived */
  uint8_t raw[65536];
  size_t nraw;
  uint8_t data[65536]; /* telnet-decoded */
  size_t ndata;
  uint8_t cmds[4096];  /* IAC sequences, verbatim */
  size_t ncmds;
  int tst;             /* 0 data, 1 IAC, 2 verb, 3 SB, 4 SB IAC */
  bool telnet;
  /* SLIP frames in the data */
  eg_slip_dec dec;
  uint8_t decbuf[8192];
  int frames;
  int ff_values; /* READ_REG replies carrying 0xFFFFFFFE */
  uint8_t last[64];
  size_t last_len;
} lk;

static void lk_frame(void *ctx, eg_slip_event ev, const uint8_t *p, size_t n, eg_err err) {
  lk *k = ctx;
  (void)err;
  if (ev != EG_SLIP_FRAME) return;
  k->frames++;
  eg_resp r;
  if (eg_resp_parse(p, n, 4, 0, &r) == EG_OK && r.op == EG_OP_READ_REG && r.value == 0xFFFFFFFE) k->ff_values++;
  k->last_len = n < sizeof k->last ? n : sizeof k->last;
  memcpy(k->last, p, k->last_len);
}

static void lk_data(lk *k, uint8_t b) {
  if (k->ndata < sizeof k->data) k->data[k->ndata++] = b;
  eg_slip_dec_push(&k->dec, &b, 1, lk_frame, k);
}

static void lk_byte(lk *k, uint8_t b) {
  if (k->nraw < sizeof k->raw) k->raw[k->nraw++] = b;
  if (!k->telnet) {
    lk_data(k, b);
    return;
  }
  switch (k->tst) {
  case 0:
    if (b == 255) k->tst = 1;
    else lk_data(k, b);
    return;
  case 1:
    if (b == 255) {
      lk_data(k, b);
      k->tst = 0;
      return;
    }
    k->cmds[k->ncmds++] = 255;
    k->cmds[k->ncmds++] = b;
    k->tst = b == 250 ? 3 : b >= 251 ? 2 : 0;
    return;
  case 2:
    k->cmds[k->ncmds++] = b;
    k->tst = 0;
    return;
  case 3:
    if (b == 255) {
      k->tst = 4;
      return;
    }
    k->cmds[k->ncmds++] = b;
    return;
  default:
    if (b == 255) {
      k->cmds[k->ncmds++] = 255; /* doubled value byte, kept once */
      k->tst = 3;
    } else {
      k->cmds[k->ncmds++] = 255;
      k->cmds[k->ncmds++] = b;
      k->tst = 0;
    }
    return;
  }
}

static void lk_read(lk *k) {
  uint8_t buf[4096];
  for (;;) {
    const ssize_t n = read(k->fd, buf, sizeof buf);
    if (n <= 0) return;
    for (ssize_t i = 0; i < n; i++) lk_byte(k, buf[i]);
  }
}

#define LK_UNTIL(k, cond)                                            \
  do {                                                               \
    const uint64_t deadline_ = uv_hrtime() + 10000000000ull;         \
    while (!(cond)) {                                                \
      uv_run(&(k)->loop, UV_RUN_NOWAIT);                             \
      lk_read(k);                                                    \
      if (uv_hrtime() > deadline_) fail_msg("timed out: %s", #cond); \
      usleep(200);                                                   \
    }                                                                \
  } while (0)

/* Let the loop run for `ms` of wall time (only to let nothing happen). */
static void lk_idle(lk *k, unsigned ms) {
  const uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000ull;
  while (uv_hrtime() < end) {
    uv_run(&k->loop, UV_RUN_NOWAIT);
    lk_read(k);
    usleep(200);
  }
}

static void lk_on_event(esim_link *l, esim_link_event ev, void *ctx) {
  (void)l;
  if (ev == ESIM_LINK_PEER_GONE) ((lk *)ctx)->gone++;
}

static void lk_on_closed(esim_link *l, void *ctx) {
  (void)l;
  ((lk *)ctx)->closed = true;
}

static void lk_start(lk *k, bool fast, const char *fault) {
  memset(k, 0, sizeof *k);
  uv_loop_init(&k->loop);
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  if (fast) esim_timing_fast(&o.timing);
  if (fault) assert_int_equal(esim_fault_apply(&o.faults, fault, NULL, 0), EG_OK);
  o.name = "rfc";
  assert_int_equal(esim_dev_new(&k->dev, &o), EG_OK);
  eg_slip_dec_init(&k->dec, k->decbuf, sizeof k->decbuf);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  k->fd = sv[0];
  k->dev_fd = sv[1];
  esim_link_opts lo;
  esim_link_opts_default(&lo);
  lo.fast = fast;
  lo.rfc2217 = true;
  lo.on_event = lk_on_event;
  lo.ctx = k;
  k->link = esim_link_start(&k->loop, k->dev, sv[1], &lo);
  assert_non_null(k->link);
}

static void lk_finish(lk *k) {
  esim_link_close(k->link, lk_on_closed);
  LK_UNTIL(k, k->closed);
  uv_run(&k->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&k->loop), 0);
  esim_dev_free(k->dev);
  if (k->fd >= 0) close(k->fd);
}

static void lk_write(lk *k, const uint8_t *p, size_t n) { assert_int_equal(write(k->fd, p, n), (ssize_t)n); }
#define LK_SEND(k, ...)                              \
  do {                                               \
    static const uint8_t s_[] = {__VA_ARGS__};       \
    lk_write((k), s_, sizeof s_);                    \
  } while (0)

/* A request as a telnet client sends it: SLIP, then every 0xFF doubled. */
static void lk_send_pkt(lk *k, const uint8_t *pkt, size_t n) {
  uint8_t raw[512], esc[1024];
  const size_t rl = eg_slip_encode(raw, pkt, n);
  if (!k->telnet) {
    lk_write(k, raw, rl);
    return;
  }
  size_t used;
  const size_t el = esim_rfc2217_escape(esc, sizeof esc, raw, rl, &used);
  assert_int_equal(used, rl);
  lk_write(k, esc, el);
}

static void lk_sync(lk *k) {
  uint8_t pkt[64];
  const int f0 = k->frames;
  lk_send_pkt(k, pkt, eg_req_sync(pkt));
  LK_UNTIL(k, k->frames >= f0 + 8);
  eg_resp r;
  assert_int_equal(eg_resp_parse(k->last, k->last_len, 4, 0, &r), EG_OK);
  assert_int_equal(r.op, EG_OP_SYNC);
  assert_int_equal(r.value, EG_SYNC_VALUE);
}

/* WRITE_REG 0xFFFFFFFE to a scratch register and READ_REG it back: 0xFF in
 * both directions. */
static uint32_t lk_ff_roundtrip(lk *k) {
  uint8_t pkt[64];
  int f0 = k->frames;
  lk_send_pkt(k, pkt, eg_req_write_reg(pkt, 0x3FF00010, 0xFFFFFFFE, 0xFFFFFFFF, 0));
  LK_UNTIL(k, k->frames >= f0 + 1);
  f0 = k->frames;
  lk_send_pkt(k, pkt, eg_req_read_reg(pkt, 0x3FF00010));
  LK_UNTIL(k, k->frames >= f0 + 1);
  eg_resp r;
  assert_int_equal(eg_resp_parse(k->last, k->last_len, 4, 0, &r), EG_OK);
  assert_int_equal(r.op, EG_OP_READ_REG);
  return r.value;
}

static bool has(const uint8_t *hay, size_t n, const void *needle, size_t m) {
  for (size_t i = 0; i + m <= n; i++)
    if (!memcmp(hay + i, needle, m)) return true;
  return false;
}

static bool data_has(const lk *k, const char *s) { return has(k->data, k->ndata, s, strlen(s)); }

static void test_link_raw_client(void **s) {
  (void)s;
  lk k;
  lk_start(&k, true, NULL);
  lk_sync(&k); /* first byte 0xC0: raw */
  assert_false(esim_link_rfc2217(k.link));
  assert_int_equal(lk_ff_roundtrip(&k), 0xFFFFFFFE);
  /* the reply went out as the device sent it: FE FF FF FF, not doubled */
  static const uint8_t v[] = {0x0A, 0x04, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0x00};
  assert_true(has(k.raw, k.nraw, v, sizeof v));
  lk_finish(&k);
}

static void telnet_session(bool fast) {
  lk k;
  lk_start(&k, fast, NULL);
  k.telnet = true;
  /* espgang's opening, then 115200 8N1, no flow control, all in one go */
  LK_SEND(&k, 255, 251, 0, 255, 253, 0, 255, 251, 3, 255, 253, 3, 255, 251, 44, 255, 250, 44, 1, 0, 1, 194, 0, 255, 240,
          255, 250, 44, 2, 8, 255, 240, 255, 250, 44, 3, 1, 255, 240, 255, 250, 44, 4, 1, 255, 240, 255, 250, 44, 5, 1,
          255, 240);
  static const uint8_t answers[] = {255, 253, 0,   255, 251, 0,   255, 253, 3,   255, 251, 3,   255, 253, 44,
                                    255, 250, 44,  101, 0,   1,   194, 0,   255, 240, 255, 250, 44,  102, 8,
                                    255, 240, 255, 250, 44,  103, 1,   255, 240, 255, 250, 44,  104, 1,   255,
                                    240, 255, 250, 44,  105, 1,   255, 240};
  LK_UNTIL(&k, k.ncmds >= sizeof answers);
  assert_int_equal(k.ncmds, sizeof answers);
  assert_memory_equal(k.cmds, answers, sizeof answers);
  assert_true(esim_link_rfc2217(k.link));
  lk_sync(&k);
  assert_int_equal(lk_ff_roundtrip(&k), 0xFFFFFFFE);
  /* on the wire the device's FE FF FF FF came with every FF doubled */
  static const uint8_t v[] = {0x0A, 0x04, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00};
  assert_true(has(k.raw, k.nraw, v, sizeof v));
  lk_finish(&k);
}

static void test_link_telnet_fast(void **s) {
  (void)s;
  telnet_session(true);
}

static void test_link_telnet_paced(void **s) {
  (void)s;
  telnet_session(false);
}

/* DTR/RTS over RFC 2217 reset the board: EN held, released with GPIO0 low
 * (download mode, banner), then a HardReset (the app's boot log). */
static void test_link_reset_lines(void **s) {
  (void)s;
  lk k;
  lk_start(&k, true, NULL);
  k.telnet = true;
  LK_SEND(&k, 255, 251, 44, 255, 250, 44, 1, 0, 1, 194, 0, 255, 240);
  LK_SEND(&k, 255, 250, 44, 5, 12, 255, 240, 255, 250, 44, 5, 11, 255, 240); /* RTS off, RTS on: EN low */
  LK_UNTIL(&k, esim_dev_mode(k.dev) == ESIM_MODE_RESET);
  /* DTR on, RTS off in one write: EN released, GPIO0 low within the EN delay */
  LK_SEND(&k, 255, 250, 44, 5, 8, 255, 240, 255, 250, 44, 5, 12, 255, 240);
  LK_UNTIL(&k, data_has(&k, "waiting for download\r\n"));
  assert_true(data_has(&k, "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"));
  assert_int_equal(esim_dev_mode(k.dev), ESIM_MODE_ROM);
  LK_SEND(&k, 255, 250, 44, 5, 9, 255, 240); /* DTR off: (0,0) */
  lk_sync(&k);
  /* HardReset: RTS on, later RTS off */
  LK_SEND(&k, 255, 250, 44, 5, 11, 255, 240);
  LK_UNTIL(&k, esim_dev_mode(k.dev) == ESIM_MODE_RESET);
  LK_SEND(&k, 255, 250, 44, 5, 12, 255, 240);
  LK_UNTIL(&k, data_has(&k, "boot:0x13 (SPI_FAST_FLASH_BOOT)"));
  assert_int_equal(esim_dev_mode(k.dev), ESIM_MODE_APP);
  lk_finish(&k);
}

/* A client that goes away while it holds EN low lets the lines go: the
 * chip boots (GPIO0 released: the app). */
static void test_link_close_releases_lines(void **s) {
  (void)s;
  lk k;
  lk_start(&k, true, NULL);
  k.telnet = true;
  LK_SEND(&k, 255, 251, 44, 255, 250, 44, 5, 11, 255, 240);
  LK_UNTIL(&k, esim_dev_mode(k.dev) == ESIM_MODE_RESET);
  close(k.fd);
  k.fd = -1;
  LK_UNTIL(&k, k.gone == 1);
  /* The link stopped; the model runs on when next advanced (the next
   * client's link does that): 1 ms later the chip has booted. */
  esim_dev_advance(k.dev, uv_hrtime() / 1000 + ESIM_STRAP_DELAY_US);
  assert_int_equal(esim_dev_mode(k.dev), ESIM_MODE_APP);
  lk_finish(&k);
}

/* SET-BAUDRATE is the host's UART rate: the app's 115200 boot log read at
 * 9600 is garbage; at 115200 it is readable. */
static void test_link_baud_garbles(void **s) {
  (void)s;
  for (int pass = 0; pass < 2; pass++) {
    lk k;
    lk_start(&k, true, NULL);
    k.telnet = true;
    if (pass == 0) LK_SEND(&k, 255, 251, 44, 255, 250, 44, 1, 0, 0, 37, 128, 255, 240); /* 9600 */
    else LK_SEND(&k, 255, 251, 44, 255, 250, 44, 1, 0, 1, 194, 0, 255, 240);            /* 115200 */
    LK_SEND(&k, 255, 250, 44, 5, 11, 255, 240);
    LK_UNTIL(&k, esim_dev_mode(k.dev) == ESIM_MODE_RESET);
    LK_SEND(&k, 255, 250, 44, 5, 12, 255, 240);
    LK_UNTIL(&k, esim_dev_mode(k.dev) == ESIM_MODE_APP);
    esim_dev_stats st;
    LK_UNTIL(&k, (esim_dev_get_stats(k.dev, &st), st.tx_bytes >= 90));
    lk_idle(&k, 50);
    assert_true(k.ndata > 0);
    if (pass == 0) {
      assert_false(data_has(&k, "POWERON"));
      assert_true(st.tx_garbled > 0);
    } else {
      assert_true(data_has(&k, "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"));
    }
    lk_finish(&k);
  }
}

/* FLOWCONTROL-SUSPEND holds device data back; PURGE-DATA 1 discards what
 * was held; RESUME lets new data through. */
static void test_link_suspend_and_purge(void **s) {
  (void)s;
  lk k;
  lk_start(&k, true, NULL);
  k.telnet = true;
  LK_SEND(&k, 255, 251, 44, 255, 250, 44, 8, 255, 240);
  LK_UNTIL(&k, k.ncmds >= 3); /* DO COM-PORT */
  uint8_t pkt[64];
  lk_send_pkt(&k, pkt, eg_req_sync(pkt));
  uint64_t to_host = 0;
  LK_UNTIL(&k, (esim_link_counts(k.link, NULL, &to_host), to_host >= 8 * 14));
  lk_idle(&k, 20);
  assert_int_equal(k.ndata, 0); /* held back */
  const size_t c0 = k.ncmds;
  LK_SEND(&k, 255, 250, 44, 12, 1, 255, 240, 255, 250, 44, 9, 255, 240);
  LK_UNTIL(&k, k.ncmds >= c0 + 7);
  static const uint8_t ack[] = {255, 250, 44, 112, 1, 255, 240};
  assert_memory_equal(k.cmds + c0, ack, sizeof ack);
  lk_idle(&k, 20);
  assert_int_equal(k.frames, 0); /* the held replies are gone */
  lk_sync(&k);
  assert_int_equal(k.frames, 8);
  lk_finish(&k);
}

/* Device output full of 0xFF while the client does not read: the server's
 * writes come back short, some of them between the two bytes of a doubled
 * 0xFF; every reply must still arrive intact and in order. */
static void test_link_short_writes(void **s) {
  (void)s;
  lk k;
  lk_start(&k, true, NULL);
  k.telnet = true;
  const int small = 2048; /* the kernel doubles it: a few KB in flight */
  assert_int_equal(setsockopt(k.dev_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  LK_SEND(&k, 255, 251, 44);
  assert_int_equal(lk_ff_roundtrip(&k), 0xFFFFFFFE);
  const int f0 = k.frames, v0 = k.ff_values;
  enum { N = 3000 };
  uint8_t one[32];
  uint8_t pkt[64];
  const size_t rl = eg_slip_encode(one, pkt, eg_req_read_reg(pkt, 0x3FF00010));
  uint8_t *all = malloc(N * rl);
  for (int i = 0; i < N; i++) memcpy(all + (size_t)i * rl, one, rl);
  size_t off = 0;
  const uint64_t deadline = uv_hrtime() + 10000000000ull;
  while (off < N * rl) { /* write everything, never read */
    const ssize_t w = write(k.fd, all + off, N * rl - off);
    if (w > 0) off += (size_t)w;
    else assert_true(errno == EAGAIN);
    uv_run(&k.loop, UV_RUN_NOWAIT);
    if (uv_hrtime() > deadline) fail_msg("the server stopped reading");
    usleep(100);
  }
  free(all);
  for (int i = 0; i < 50; i++) { /* let the server run into a full socket */
    uv_run(&k.loop, UV_RUN_NOWAIT);
    usleep(200);
  }
  LK_UNTIL(&k, k.frames >= f0 + N);
  lk_idle(&k, 20);
  assert_int_equal(k.frames, f0 + N);
  assert_int_equal(k.ff_values, v0 + N);
  lk_finish(&k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_negotiation),
      cmocka_unit_test(test_data_and_iac_doubling),
      cmocka_unit_test(test_subnegotiation_values),
      cmocka_unit_test(test_set_control),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_split_anywhere),
      cmocka_unit_test(test_link_raw_client),
      cmocka_unit_test(test_link_telnet_fast),
      cmocka_unit_test(test_link_telnet_paced),
      cmocka_unit_test(test_link_reset_lines),
      cmocka_unit_test(test_link_close_releases_lines),
      cmocka_unit_test(test_link_baud_garbles),
      cmocka_unit_test(test_link_suspend_and_purge),
      cmocka_unit_test(test_link_short_writes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
