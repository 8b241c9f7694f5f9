/* test_espsim_stub.c - espsim's two flasher stubs (tools/espsim/stub.c):
 * legacy (LS, esptool set 1) and esp-flasher-stub (NS, set 2). */
#include "test_espsim_host.h"

typedef enum { LS, NS } flavour;

static void boot(th *h, flavour f, const esim_dev_opts *o) {
  th_init(h, o);
  if (f == LS) th_run_legacy_stub(h);
  else th_run_new_stub(h);
}

static eg_resp stub_reply(th *h, uint8_t op, size_t expect) { return th_reply(h, op, 2, expect); }

static void expect_status(th *h, uint8_t op, uint8_t s0, uint8_t s1) {
  th_frame *f = th_next(h);
  assert_true(f->n >= 10);
  assert_int_equal(f->p[0], 0x01);
  assert_int_equal(f->p[1], op);
  if (f->p[f->n - 2] != s0 || f->p[f->n - 1] != s1)
    fail_msg("%s: status %02x %02x, want %02x %02x", eg_op_name(op), f->p[f->n - 2], f->p[f->n - 1], s0, s1);
}

/* Write img at addr the way esptool does with a stub: DEFL_BEGIN with the
 * exact size, 16 KB blocks, DEFL_END(1). Returns the END reply status. */
static uint16_t stub_write(th *h, const uint8_t *img, size_t n, uint32_t addr, size_t drop_last_blocks) {
  size_t zn;
  uint8_t *z = th_deflate(img, n, &zn);
  const uint32_t bs = 0x4000;
  const uint32_t blocks = (uint32_t)((zn + bs - 1) / bs);
  uint8_t *pkt = malloc(EG_MAX_PACKET + 64);
  th_send_pkt(h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, (uint32_t)n, blocks, bs, addr, true, 0));
  th_expect_ok(h, EG_OP_FLASH_DEFL_BEGIN, 2);
  for (uint32_t seq = 0; seq + drop_last_blocks < blocks; seq++) {
    size_t k = zn - seq * bs < bs ? zn - seq * bs : bs;
    th_send_pkt(h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, seq, z + seq * bs, k, 0));
    th_expect_ok(h, EG_OP_FLASH_DEFL_DATA, 2);
  }
  th_send_pkt(h, pkt, eg_req_end(pkt, EG_OP_FLASH_DEFL_END, 1));
  th_frame *f = th_next(h);
  assert_int_equal(f->p[1], EG_OP_FLASH_DEFL_END);
  const uint16_t st = (uint16_t)(f->p[f->n - 2] << 8 | f->p[f->n - 1]);
  free(pkt);
  free(z);
  return st;
}

static void md5_of(const uint8_t *p, size_t n, uint8_t d[16]) { EVP_Digest(p, n, d, NULL, EVP_md5(), NULL); }

static void write_and_verify(flavour fl) {
  th h;
  boot(&h, fl, NULL);
  th_sync(&h, 2);
  for (size_t i = 0; i < 8; i++) { /* stub SYNC replies carry value 0 */
    eg_resp r;
    assert_int_equal(eg_resp_parse(h.f[h.nf - 1 - i].p, h.f[h.nf - 1 - i].n, 2, 0, &r), EG_OK);
    assert_int_equal(r.value, 0);
  }
  const size_t n = 100000; /* several 16 KB blocks, not sector aligned */
  uint8_t *img = th_image(n, 7);
  assert_int_equal(stub_write(&h, img, n, 0x10000, 0), 0x0000);
  size_t fs;
  const uint8_t *flash = esim_dev_flash(h.dev, &fs);
  assert_memory_equal(flash + 0x10000, img, n);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_flash_md5(pkt, 0x10000, (uint32_t)n));
  eg_resp r = stub_reply(&h, EG_OP_SPI_FLASH_MD5, 16);
  assert_true(r.ok);
  assert_int_equal(r.size, 18);
  uint8_t want[16];
  md5_of(img, n, want);
  assert_memory_equal(r.data, want, 16);
  free(img);
  th_free(&h);
}

static void test_ls_write_and_md5(void **s) { (void)s; write_and_verify(LS); }
static void test_ns_write_and_md5(void **s) { (void)s; write_and_verify(NS); }

/* The stubs erase just in time, whole sectors covering the write: the
 * sector after the image keeps its old contents. */
static void jit_erase_extent(flavour fl) {
  th h;
  boot(&h, fl, NULL);
  size_t fs;
  uint8_t *flash = (uint8_t *)esim_dev_flash(h.dev, &fs);
  memset(flash + 0x80000, 0x00, 0x20000);
  const size_t n = 0x5432;
  uint8_t *img = th_image(n, 8);
  assert_int_equal(stub_write(&h, img, n, 0x80000, 0), 0x0000);
  assert_memory_equal(flash + 0x80000, img, n);
  for (size_t i = 0x80000 + n; i < 0x86000; i++) assert_int_equal(flash[i], 0xFF); /* rest of the last sector */
  for (size_t i = 0x86000; i < 0x87000; i++) assert_int_equal(flash[i], 0x00);     /* next sector untouched */
  free(img);
  th_free(&h);
}

static void test_ls_jit_erase_extent(void **s) { (void)s; jit_erase_extent(LS); }
static void test_ns_jit_erase_extent(void **s) { (void)s; jit_erase_extent(NS); }

/* NS skips the erase of sectors that are already blank; LS always erases. */
static void test_erase_counts(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    th h;
    boot(&h, (flavour)fl, NULL);
    const size_t n = 0x20000;
    uint8_t *img = th_image(n, 9);
    esim_dev_stats a, b;
    esim_dev_get_stats(h.dev, &a);
    assert_int_equal(stub_write(&h, img, n, 0x100000, 0), 0);
    esim_dev_get_stats(h.dev, &b);
    if (fl == NS) assert_int_equal(b.erases - a.erases, 0);
    else assert_int_equal(b.erases - a.erases, 2); /* two 64 KB blocks */
    /* written again over non-blank flash: now NS erases too */
    assert_int_equal(stub_write(&h, img, n, 0x100000, 0), 0);
    esim_dev_get_stats(h.dev, &a);
    assert_true(a.erases - b.erases >= 2);
    size_t fs;
    const uint8_t *flash = esim_dev_flash(h.dev, &fs);
    assert_memory_equal(flash + 0x100000, img, n);
    free(img);
    th_free(&h);
  }
}

/* Missing data at END: LS 0xC8 NOT_ENOUGH_DATA, NS 0xC0 BAD_DATA_LEN. */
static void test_end_with_missing_data(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    th h;
    boot(&h, (flavour)fl, NULL);
    const size_t n = 80000;
    uint8_t *img = th_image(n, 10);
    const uint16_t st = stub_write(&h, img, n, 0x20000, 1);
    assert_int_equal(st, fl == LS ? 0xC800 : 0xC000);
    free(img);
    th_free(&h);
  }
}

static void test_bad_checksum_and_length(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    th h;
    boot(&h, (flavour)fl, NULL);
    uint8_t img[256];
    memset(img, 0x11, sizeof img);
    uint8_t *pkt = malloc(EG_MAX_PACKET + 64);
    th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 256, 1, 0x4000, 0x30000, true, 0));
    th_expect_ok(&h, EG_OP_FLASH_BEGIN, 2);
    size_t len = eg_req_data(pkt, EG_OP_FLASH_DATA, 0, img, sizeof img, 0);
    pkt[4] ^= 0x01;
    th_send_pkt(&h, pkt, len);
    expect_status(&h, EG_OP_FLASH_DATA, 0xC1, 0x00);
    len = eg_req_data(pkt, EG_OP_FLASH_DATA, 0, img, sizeof img, 0);
    eg_put_u32(pkt + 8, 255);
    th_send_pkt(&h, pkt, len);
    expect_status(&h, EG_OP_FLASH_DATA, fl == LS ? 0xC0 : 0xC9, 0x00);
    /* block size above 16 KB: LS C2 BAD_BLOCKSIZE; NS accepts it */
    th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 256, 1, 0x8000, 0x30000, true, 0));
    expect_status(&h, EG_OP_FLASH_BEGIN, fl == LS ? 0xC2 : 0x00, 0x00);
    /* END before all data arrived keeps the session: LS C8, NS C0 */
    th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_END, 1));
    expect_status(&h, EG_OP_FLASH_END, fl == LS ? 0xC8 : 0xC0, 0x00);
    th_free(&h);
    /* DATA and END without BEGIN: C6 NOT_IN_FLASH_MODE */
    boot(&h, (flavour)fl, NULL);
    th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DATA, 0, img, sizeof img, 0));
    expect_status(&h, EG_OP_FLASH_DATA, 0xC6, 0x00);
    th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_END, 1));
    expect_status(&h, EG_OP_FLASH_END, 0xC6, 0x00);
    free(pkt);
    th_free(&h);
  }
}

/* LS: a request longer than 0x4000+16 bytes of data -> C0 EE. */
static void test_ls_oversize(void **s) {
  (void)s;
  th h;
  boot(&h, LS, NULL);
  const size_t dn = 0x4000 + 32;
  uint8_t *pkt = calloc(1, dn + 8);
  pkt[1] = EG_OP_FLASH_DATA;
  eg_put_u16(pkt + 2, (uint16_t)dn);
  th_send_pkt(&h, pkt, dn + 8);
  expect_status(&h, EG_OP_FLASH_DATA, 0xC0, 0xEE);
  free(pkt);
  th_free(&h);
}

static void test_unknown_and_security_info(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    th h;
    boot(&h, (flavour)fl, NULL);
    uint8_t pkt[64];
    th_send_pkt(&h, pkt, eg_req_simple(pkt, EG_OP_GET_SECURITY_INFO));
    th_frame *f = th_next(&h);
    static const uint8_t want[10] = {0x01, 0x14, 0x02, 0x00, 0, 0, 0, 0, 0xFF, 0x00}; /* stub trace */
    assert_int_equal(f->n, 10);
    assert_memory_equal(f->p, want, 10);
    th_send_pkt(&h, pkt, eg_req_read_flash_slow(pkt, 0, 64));
    expect_status(&h, EG_OP_READ_FLASH_SLOW, fl == LS ? 0xFF : 0xC3, 0x00);
    /* READ_REG answers in value; a wrong length does not */
    assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83);
    uint8_t bad[16] = {0x00, EG_OP_READ_REG, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x40, 0, 0, 0, 0};
    th_send_pkt(&h, bad, sizeof bad);
    eg_resp r = stub_reply(&h, EG_OP_READ_REG, 0);
    assert_false(r.ok);
    assert_int_equal(r.value, 0);
    assert_int_equal(r.status[0], 0xC0);
    th_free(&h);
  }
}

/* LS computes some statuses with C's `||`: 0x01 instead of 0xC0. */
static void test_ls_logical_or_statuses(void **s) {
  (void)s;
  th h;
  boot(&h, LS, NULL);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true)); /* 8 bytes: stubs want 4 */
  expect_status(&h, EG_OP_SPI_ATTACH, 0x01, 0x00);
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, false));
  expect_status(&h, EG_OP_SPI_ATTACH, 0x00, 0x00);
  th_send_pkt(&h, pkt, eg_req_erase_region(pkt, 0x1000, 0x800));
  expect_status(&h, EG_OP_ERASE_REGION, 0x01, 0x00);
  th_free(&h);
  boot(&h, NS, NULL);
  th_send_pkt(&h, pkt, eg_req_spi_attach(pkt, 0, true));
  expect_status(&h, EG_OP_SPI_ATTACH, 0xC0, 0x00);
  th_send_pkt(&h, pkt, eg_req_erase_region(pkt, 0x1000, 0x800));
  expect_status(&h, EG_OP_ERASE_REGION, 0xC0, 0x00);
  th_free(&h);
}

static void read_flash(flavour fl) {
  th h;
  boot(&h, fl, NULL);
  size_t fs;
  uint8_t *flash = (uint8_t *)esim_dev_flash(h.dev, &fs);
  uint8_t *img = th_image(10000, 11);
  memcpy(flash + 0x3000, img, 10000);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_read_flash(pkt, 0x3000, 10000, 0x1000, 64));
  th_expect_ok(&h, EG_OP_READ_FLASH, 2);
  uint32_t got = 0;
  uint8_t *back = malloc(10000);
  while (got < 10000) {
    /* one packet in flight: nothing more until we acknowledge */
    assert_int_equal(th_pending(&h), 1);
    th_frame *f = th_next(&h);
    assert_int_equal(f->n, got + 0x1000 <= 10000 ? 0x1000 : 10000 - got);
    memcpy(back + got, f->p, f->n);
    got += (uint32_t)f->n;
    th_send_pkt(&h, pkt, eg_read_ack(pkt, got));
  }
  assert_memory_equal(back, img, 10000);
  th_frame *f = th_next(&h);
  assert_int_equal(f->n, 16);
  uint8_t want[16];
  md5_of(img, 10000, want);
  assert_memory_equal(f->p, want, 16);
  /* back in the command loop */
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83);
  /* SPIRead left its user command in SPI1 USR/USR2 (stub-read-flash trace) */
  assert_int_equal(th_stub_read_reg(&h, 0x3FF4201C), 0x50000000);
  assert_int_equal(th_stub_read_reg(&h, 0x3FF42024), 0x70000003);
  free(back);
  free(img);
  th_free(&h);
}

static void test_ls_read_flash(void **s) { (void)s; read_flash(LS); }
static void test_ns_read_flash(void **s) { (void)s; read_flash(NS); }

/* LS silently does nothing with a packet size above 4096; NS reports it on
 * the next command. A short ack ends the transfer with the MD5 so far. */
static void test_read_flash_errors(void **s) {
  (void)s;
  th h;
  boot(&h, LS, NULL);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_read_flash(pkt, 0, 0x4000, 0x2000, 64));
  th_expect_ok(&h, EG_OP_READ_FLASH, 2);
  assert_int_equal(th_pending(&h), 0);
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83);
  th_send_pkt(&h, pkt, eg_req_read_flash(pkt, 0, 0x4000, 0x1000, 64));
  th_expect_ok(&h, EG_OP_READ_FLASH, 2);
  th_frame *f = th_next(&h);
  assert_int_equal(f->n, 0x1000);
  uint8_t two[2] = {1, 2};
  uint8_t raw[8];
  th_send_raw(&h, raw, eg_slip_encode(raw, two, 2));
  f = th_next(&h);
  assert_int_equal(f->n, 16); /* MD5 of the 4 KB sent */
  uint8_t want[16];
  size_t fs;
  md5_of(esim_dev_flash(h.dev, &fs), 0x1000, want);
  assert_memory_equal(f->p, want, 16);
  th_free(&h);

  boot(&h, NS, NULL);
  th_send_pkt(&h, pkt, eg_req_read_flash(pkt, 0, 0x4000, 0x2000, 64));
  th_expect_ok(&h, EG_OP_READ_FLASH, 2);
  assert_int_equal(th_pending(&h), 0);
  th_send_pkt(&h, pkt, eg_req_read_reg(pkt, 0x40001000));
  expect_status(&h, EG_OP_READ_REG, 0xC0, 0x00); /* the carried error, READ_REG not run */
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83);
  th_free(&h);
}

static void test_erase_flash_and_region(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    th h;
    boot(&h, (flavour)fl, NULL);
    size_t fs;
    uint8_t *flash = (uint8_t *)esim_dev_flash(h.dev, &fs);
    memset(flash, 0x5A, fs);
    uint8_t pkt[64];
    th_send_pkt(&h, pkt, eg_req_erase_region(pkt, 0x1F000, 0x12000));
    th_expect_ok(&h, EG_OP_ERASE_REGION, 2);
    assert_int_equal(flash[0x1EFFF], 0x5A);
    for (size_t i = 0x1F000; i < 0x31000; i++) assert_int_equal(flash[i], 0xFF);
    assert_int_equal(flash[0x31000], 0x5A);
    th_send_pkt(&h, pkt, eg_req_simple(pkt, EG_OP_ERASE_FLASH));
    th_expect_ok(&h, EG_OP_ERASE_FLASH, 2);
    for (size_t i = 0; i < fs; i += 4093) assert_int_equal(flash[i], 0xFF);
    th_free(&h);
  }
}

/* LS sends the reply header before a long command and the status after
 * (esptool #300); NS sends everything at the end. Chip erase time grows
 * with the non-blank blocks. */
static void test_erase_flash_timing(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    esim_dev_opts o;
    esim_dev_opts_default(&o);
    th h;
    boot(&h, (flavour)fl, &o);
    size_t fs;
    uint8_t *flash = (uint8_t *)esim_dev_flash(h.dev, &fs);
    memset(flash, 0x00, 32 * 0x10000); /* 32 non-blank 64 KB blocks */
    uint8_t pkt[64];
    th_send_pkt_norun(&h, pkt, eg_req_simple(pkt, EG_OP_ERASE_FLASH));
    const uint64_t t0 = h.t;
    th_run_until(&h, t0 + 100000);
    if (fl == LS) {
      /* the header (8 bytes + opening C0) is out, the frame is not complete */
      assert_int_equal(th_pending(&h), 0);
      assert_true(h.taken >= 9);
    }
    th_run(&h);
    th_frame *f = th_next(&h);
    assert_int_equal(f->p[1], EG_OP_ERASE_FLASH);
    const uint64_t want = o.timing.chip_erase_base_us + 32ull * o.timing.chip_erase_per_block_us;
    assert_true(f->t - t0 >= want);
    assert_true(f->t - t0 < want + 50000);
    th_free(&h);
  }
}

/* LS acknowledges a data block before writing it; END waits for the last
 * write. With the default timing the ack comes back in well under the
 * time the block takes to program. */
static void test_ls_ack_before_write(void **s) {
  (void)s;
  esim_dev_opts o;
  esim_dev_opts_default(&o);
  th h;
  boot(&h, LS, &o);
  const size_t n = 0x10000;
  uint8_t *img = th_image_z(n, 12);
  size_t zn;
  uint8_t *z = th_deflate(img, n, &zn);
  uint8_t *pkt = malloc(EG_MAX_PACKET + 64);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, (uint32_t)n, 1, 0x4000, 0x40000, true, 0));
  th_expect_ok(&h, EG_OP_FLASH_DEFL_BEGIN, 2);
  assert_true(zn <= 0x4000);
  const uint64_t t0 = h.t;
  th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 0, z, zn, 0));
  th_frame *ack = th_next(&h);
  assert_int_equal(ack->p[1], EG_OP_FLASH_DEFL_DATA);
  const uint64_t t1 = h.t;
  th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_DEFL_END, 1));
  th_frame *end = th_next(&h);
  assert_int_equal(end->p[1], EG_OP_FLASH_DEFL_END);
  /* 64 KB = 2048 page programs + one 64 KB block erase */
  const uint64_t work = 2048ull * o.timing.page_program_us + o.timing.block_erase_us;
  assert_true(ack->t - t0 < 5000);
  assert_true(end->t - t1 >= work);
  free(pkt);
  free(z);
  free(img);
  th_free(&h);
}

/* Write errors: LS reports 0xC4 on a later reply; NS returns it instead of
 * running the next command. */
static void test_write_error_reporting(void **s) {
  (void)s;
  for (int fl = LS; fl <= NS; fl++) {
    esim_dev_opts o;
    esim_dev_opts_default(&o);
    esim_timing_fast(&o.timing);
    o.faults.flash_write_error = true;
    o.faults.flash_write_error_addr = 0x60100;
    th h;
    boot(&h, (flavour)fl, &o);
    const size_t n = 0x8000;
    uint8_t *img = th_image_z(n, 13);
    size_t zn;
    uint8_t *z = th_deflate(img, n, &zn);
    uint8_t *pkt = malloc(EG_MAX_PACKET + 64);
    th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_DEFL_BEGIN, (uint32_t)n, 1, 0x4000, 0x60000, true, 0));
    th_expect_ok(&h, EG_OP_FLASH_DEFL_BEGIN, 2);
    assert_true(zn <= 0x4000);
    th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_FLASH_DEFL_DATA, 0, z, zn, 0));
    th_expect_ok(&h, EG_OP_FLASH_DEFL_DATA, 2); /* acknowledged before the write failed */
    th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_DEFL_END, 1));
    expect_status(&h, EG_OP_FLASH_DEFL_END, 0xC4, 0x00);
    size_t fs;
    const uint8_t *flash = esim_dev_flash(h.dev, &fs);
    assert_memory_equal(flash + 0x60000, img, 0x100); /* before the bad page program */
    assert_int_equal(flash[0x60100], 0xFF);            /* the failed one */
    free(pkt);
    free(z);
    free(img);
    th_free(&h);
  }
}

static void stub_baud(flavour fl) {
  th h;
  boot(&h, fl, NULL);
  h.host_baud = 115200;
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 921600, 115200));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  const double b = esim_dev_baud(h.dev);
  assert_true(b > 921600 * 0.99 && b < 921600 * 1.01);
  h.host_baud = 921600;
  assert_int_equal(th_stub_read_reg(&h, 0x40001000), 0x00F01D83);
  /* LS trusts the "old" word: 0 breaks its UART, NS ignores it */
  th_send_pkt(&h, pkt, eg_req_change_baud(pkt, 460800, 0));
  th_expect_ok(&h, EG_OP_CHANGE_BAUDRATE, 2);
  if (fl == LS) assert_int_equal(esim_dev_baud(h.dev), 0);
  else assert_true(esim_dev_baud(h.dev) > 455000 && esim_dev_baud(h.dev) < 466000);
  th_free(&h);
}

static void test_ls_change_baud(void **s) { (void)s; stub_baud(LS); }
static void test_ns_change_baud(void **s) { (void)s; stub_baud(NS); }

static void test_flash_end_reboot_and_run_user_code(void **s) {
  (void)s;
  th h;
  boot(&h, LS, NULL);
  uint8_t pkt[64];
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_FLASH_BEGIN, 0, 0, 0x4000, 0, true, 0));
  th_expect_ok(&h, EG_OP_FLASH_BEGIN, 2);
  th_send_pkt(&h, pkt, eg_req_end(pkt, EG_OP_FLASH_END, 0));
  th_expect_ok(&h, EG_OP_FLASH_END, 2);
  /* LS software_reset: back in the ROM loader */
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_ROM);
  th_sync(&h, 4);
  th_free(&h);

  boot(&h, LS, NULL);
  th_send_pkt(&h, pkt, eg_req_simple(pkt, EG_OP_RUN_USER_CODE));
  assert_int_equal(th_pending(&h), 0);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_APP);
  th_free(&h);

  boot(&h, NS, NULL);
  th_send_pkt(&h, pkt, eg_req_simple(pkt, EG_OP_RUN_USER_CODE));
  assert_int_equal(th_pending(&h), 0);
  assert_int_equal(esim_dev_mode(h.dev), ESIM_MODE_STUB); /* NS: a TODO no-op */
  th_free(&h);
}

/* The stub reloads itself: MEM_* inside the stub, then OHAI again. */
static void test_stub_reupload(void **s) {
  (void)s;
  th h;
  boot(&h, LS, NULL);
  uint8_t pkt[8192];
  uint8_t seg[1024];
  memset(seg, 0x33, sizeof seg);
  th_send_pkt(&h, pkt, eg_req_begin(pkt, EG_OP_MEM_BEGIN, sizeof seg, 1, 0x1800, 0x400A8000, false, 0));
  th_expect_ok(&h, EG_OP_MEM_BEGIN, 2);
  th_send_pkt(&h, pkt, eg_req_data(pkt, EG_OP_MEM_DATA, 0, seg, sizeof seg, 0));
  th_expect_ok(&h, EG_OP_MEM_DATA, 2);
  th_send_pkt(&h, pkt, eg_req_mem_end(pkt, 0x400A902C));
  th_expect_ok(&h, EG_OP_MEM_END, 2);
  th_frame *f = th_next(&h);
  assert_memory_equal(f->p, "OHAI", 4);
  assert_int_equal(esim_dev_stub(h.dev), ESIM_STUB_NEW);
  th_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ls_write_and_md5),
      cmocka_unit_test(test_ns_write_and_md5),
      cmocka_unit_test(test_ls_jit_erase_extent),
      cmocka_unit_test(test_ns_jit_erase_extent),
      cmocka_unit_test(test_erase_counts),
      cmocka_unit_test(test_end_with_missing_data),
      cmocka_unit_test(test_bad_checksum_and_length),
      cmocka_unit_test(test_ls_oversize),
      cmocka_unit_test(test_unknown_and_security_info),
      cmocka_unit_test(test_ls_logical_or_statuses),
      cmocka_unit_test(test_ls_read_flash),
      cmocka_unit_test(test_ns_read_flash),
      cmocka_unit_test(test_read_flash_errors),
      cmocka_unit_test(test_erase_flash_and_region),
      cmocka_unit_test(test_erase_flash_timing),
      cmocka_unit_test(test_ls_ack_before_write),
      cmocka_unit_test(test_write_error_reporting),
      cmocka_unit_test(test_ls_change_baud),
      cmocka_unit_test(test_ns_change_baud),
      cmocka_unit_test(test_flash_end_reboot_and_run_user_code),
      cmocka_unit_test(test_stub_reupload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
