/* simdev_int.h - internals shared by the device model's files (simdev.c,
 * rom.c, stub.c, regs.c, flash.c). Not part of the public API.
 *
 * Time: every handler gets the CPU time cursor `t` (µs) at which the
 * command starts and advances it by what the work costs; output is queued
 * with the time it enters the UART TX FIFO. The flash chip has its own busy
 * timeline (flash_busy) so the stubs can overlap an erase with inflating.
 */
#ifndef ESIM_SIMDEV_INT_H
#define ESIM_SIMDEV_INT_H

#include <zlib.h>

#include "simchip.h"
#include "simdev.h"

#define ESIM_SECTOR 0x1000u
#define ESIM_BLOCK 0x10000u
#define ESIM_SECTORS_PER_BLOCK 16u
#define ESIM_PP_CHUNK 32u          /* ROM SPIWrite: 32 bytes per page program */
#define ESIM_UART_FIFO 128u        /* ESP32 UART RX FIFO (timing-facts §6) */
#define ESIM_LS_BUF (0x4000u + 64u) /* LS: MAX_WRITE_BLOCK + 64 per RX buffer */
#define ESIM_LS_MAX_DATA (0x4000u + 16u)
#define ESIM_NS_BUF (8u + 0x4000u + 0xFFu) /* NS frame_buffer.c */
#define ESIM_ROM_BUF (8u + 16u + 0x1800u) /* ROM: largest MEM_DATA block + headers */
#define ESIM_DECODE_CAP ESIM_LS_BUF
#define ESIM_TX_CAP (4u << 20)     /* output backlog beyond which chatter is dropped */
/* What an app's console output (a boot loop, log lines) can pile up while
 * no host reads: the chip transmits at the line rate whether or not anyone
 * listens, and the host side keeps one tty buffer of it (Linux n_tty's
 * N_TTY_BUF_SIZE, 4096 bytes); the rest is lost on the wire. */
#define ESIM_CHATTER_CAP 4096u

/* Registers every chip answers the same way (doc §4.1, §8.3); the rest is
 * per chip (simchip.c). */
#define ESIM_REG_MAGIC 0x40001000u
#define ESIM_SPI_CMD 0x00u            /* every SPI1 layout: CMD at +0, ADDR at +4 */
#define ESIM_SPI_ADDR 0x04u

/* Why the chip restarted; the boot log words differ per ROM generation. */
typedef enum esim_rst {
  ESIM_RST_POWERON,
  ESIM_RST_SW_CPU,   /* software reset (FLASH_END(0), MEM_END to 0) */
  ESIM_RST_RTCWDT,   /* RTC watchdog (boot loop, esptool's watchdog reset) */
  ESIM_RST_USB_UART  /* core reset from the USB-Serial/JTAG's RTS */
} esim_rst;

typedef struct esim_chunk {
  struct esim_chunk *next;
  uint64_t t;          /* earliest time (TX: enters the FIFO; RX: reached the device) */
  uint32_t len, off;
  uint32_t host_baud;  /* RX: host rate when received */
  uint32_t set_baud;   /* TX marker: switch the UART to this rate (len == 0) */
  uint32_t set_clkdiv; /* ...and this UART_CLKDIV value */
  bool is_baud;        /* TX marker */
  uint8_t data[];
} esim_chunk;

typedef struct esim_queue {
  esim_chunk *head, *tail;
  size_t bytes;
} esim_queue;

typedef struct esim_frame {
  struct esim_frame *next;
  uint64_t t;  /* completed at */
  uint32_t len;
  uint8_t data[];
} esim_frame;

typedef enum esim_slip_st { SLIP_NO_FRAME, SLIP_IN_FRAME, SLIP_ESCAPING, SLIP_DROP } esim_slip_st;

/* A flash write session (FLASH_BEGIN / FLASH_DEFL_BEGIN ... END), shared
 * by the ROM and both stubs; each interprets the fields its own way. */
typedef struct esim_write {
  bool active;
  bool compressed;
  bool z_ready;          /* zs initialised */
  z_stream zs;
  uint32_t offset;       /* BEGIN offset */
  uint32_t size;         /* BEGIN size/erase_size */
  uint32_t num_blocks, block_size;
  uint32_t next_seq;
  uint32_t next_write;   /* flash address of the next byte written */
  uint32_t remaining;    /* stub: uncompressed bytes still expected */
  uint32_t remaining_compressed;
  /* stub just-in-time erase */
  uint32_t next_erase;   /* address of the next sector to erase */
  uint32_t erase_remaining; /* LS: sectors; NS: bytes */
  bool dirty_seen;       /* NS blank-skip heuristic */
  uint8_t last_error;    /* LS fs.last_error */
  uint8_t *out;          /* inflate output buffer (32 KB) */
  uint32_t out_len;
  bool corrupted;        /* md5_mismatch already applied in this session */
  bool inflate_done;
} esim_write;

typedef enum esim_op_state {
  OPST_IDLE,
  OPST_READ_FLASH  /* stub streaming READ_FLASH, waiting for acks */
} esim_op_state;

struct esim_dev {
  esim_dev_opts o;
  esim_chip chipv;         /* the chip's row, resolved (esim_chip_resolve) */
  const esim_chip *chip;   /* = &chipv */
  uint32_t xtal_hz;        /* the real crystal */
  uint32_t uart_clk;       /* UART clock: xtal x chip->uart_clk_mult */
  int rev_major, rev_minor;
  esim_regimg img;         /* eFuse words and fixed registers (esim_chip_encode) */
  char name[32];
  uint8_t *flash;
  size_t flash_size;
  bool flash_owned;

  uint64_t now;          /* latest time seen */
  uint64_t cpu_t;        /* CPU busy until */
  uint64_t flash_busy;   /* flash chip busy (erase/program) until */
  uint64_t t0;           /* first time seen, for log stamps */
  bool t0_set;
  uint64_t frame_t;      /* the frame being processed arrived whole */

  esim_mode mode;
  esim_stub_flavour flavour;

  /* UART */
  uint32_t baud;         /* applied rate; 0 = broken divider */
  uint32_t clkdiv;       /* UART_CLKDIV register value */
  bool autobaud;         /* ROM before CHANGE_BAUDRATE: follows the host's rate */

  /* input */
  esim_queue rxq;
  esim_slip_st slip;
  uint8_t *dec;          /* ESIM_DECODE_CAP */
  uint32_t dec_len;
  esim_frame *fq_head, *fq_tail;
  unsigned fq_count;
  uint32_t fifo_used;    /* ROM: bytes held in the RX FIFO while busy */

  /* output */
  esim_queue txq;

  /* ROM loader */
  uint8_t r_op;          /* header of the last reply (the ROM reuses it) */
  uint32_t r_value;
  bool rom_attached;     /* SPI_ATTACH done */
  uint32_t rom_chip_size; /* SPI_SET_PARAMS total size (ROM default 2 MB) */
  bool rom_sync_seen;    /* ignore_first_sync */
  bool rom_left;         /* FLASH_END from ROM: no more answers */
  uint32_t mem_remaining, mem_next_seq, mem_blocks, mem_block_size, mem_addr;
  bool mem_active;
  uint32_t mem_text_addr;  /* first MEM_BEGIN address since the last MEM_END */
  bool mem_seen_ns;        /* a segment was loaded at a NS (esp-flasher-stub) address */
  bool mem_seen_ls;        /* ... at an address only the legacy stub uses */
  uint8_t rbuf[8 + 64 + 4]; /* ROM reply buffer: later ROMs leave its old bytes in status 3-4 */

  /* stub */
  uint32_t stub_chip_size; /* SPIParamCfg total size */
  uint8_t ns_accum;        /* NS accumulated post-process error (status byte 0) */
  esim_op_state opst;
  struct {
    uint32_t addr, len, packet, max_in_flight, sent, acked, sent_packets, acked_packets;
    void *md5;             /* EVP_MD_CTX */
  } rf;

  esim_write w;

  /* registers */
  uint32_t spi[64];        /* SPI1 registers base..base+0xFC */
  bool spi_wel;            /* flash write-enable latch */
  uint32_t *sparse_addr, *sparse_val;
  size_t sparse_n, sparse_cap;
  uint32_t rtc_cali;

  /* app / boot chatter */
  uint64_t next_chatter;   /* ESIM_NEVER when silent */
  uint32_t chatter_count;
  bool app_valid;          /* app image header seen when booting */

  /* boot mode and RTC state */
  bool strap_download;     /* the straps latched at the last system reset said download */
  uint32_t option1;        /* RTC_CNTL_OPTION1 (FORCE_DOWNLOAD_BOOT survives a watchdog reset) */
  bool wdt_unlocked;       /* RTC WDT write protection opened with the key */
  uint32_t wdt_timeout;    /* CONFIG1 */
  uint64_t wdt_fire_at;    /* armed RTC watchdog: system reset then; ESIM_NEVER = off */

  /* USB ports (README "USB ports") */
  bool usb_force_dl;       /* USB-Serial/JTAG: DTR alone set "download at the next reset" */
  bool usb_boot_dl;        /* ... as latched when the reset began */
  bool reenum_pending;     /* the USB port re-enumerates (esim_dev_take_reenumerate) */

  /* auto-reset circuit (esim_dev_set_lines) */
  bool line_dtr, line_rts; /* host lines, true = asserted */
  bool en_low;             /* EN pulled low through the RTS transistor */
  uint64_t en_fell;        /* when EN went low */
  uint64_t strap_at;       /* when the chip samples GPIO0; ESIM_NEVER = no boot pending */

  /* faults runtime */
  uint64_t rng;
  uint64_t rx_count;       /* host bytes heard (for stall/disconnect) */
  uint32_t op_seen[256];   /* per-opcode counts (disconnect_at) */
  bool disconnect_pending;
  bool disconnect_fired;
  uint32_t md5_budget;     /* write sessions still to corrupt */

  esim_dev_stats st;
};

/* simdev.c */
void esim_log(esim_dev *d, uint64_t t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "cmd NAME (0xOP) size=N waited=Wus": a command starts at t. */
void esim_log_cmd(esim_dev *d, uint64_t t, uint8_t op, uint32_t size);
void esim_tx_raw(esim_dev *d, uint64_t t, const uint8_t *p, size_t n);
/* SLIP-encode and queue a frame; `t` = time the frame enters the FIFO. */
void esim_tx_frame(esim_dev *d, uint64_t t, const uint8_t *p, size_t n);
/* Queue a frame in two parts: the first `split` bytes at t1 (LS sends the
 * reply header before running the command), the rest and the end at t2. */
void esim_tx_frame_split(esim_dev *d, uint64_t t1, uint64_t t2, const uint8_t *p, size_t n, size_t split);
void esim_tx_baud(esim_dev *d, uint64_t t, uint32_t baud, uint32_t clkdiv);
uint64_t esim_rand(esim_dev *d);
double esim_rand01(esim_dev *d);
void esim_enter_rom(esim_dev *d, uint64_t t, esim_rst why, bool banner);
void esim_enter_app(esim_dev *d, uint64_t t, esim_rst why);
void esim_enter_stub(esim_dev *d, uint64_t t, esim_stub_flavour f);
/* A software CPU reset (FLASH_END(0), an exception): the latched straps
 * stand, so the ROM loader again; a USB-OTG port re-enumerates. */
void esim_cpu_reset(esim_dev *d, uint64_t t);
void esim_set_uart(esim_dev *d, uint32_t baud, uint32_t clkdiv);
void esim_write_reset(esim_dev *d);
/* UART divider for a rate: integer part | fraction << 20 (ESP32 layout). */
uint32_t esim_clkdiv_for(uint32_t clk_hz, uint32_t baud);
uint32_t esim_baud_from_clkdiv(uint32_t clk_hz, uint32_t clkdiv);

/* MEM_END with an entry point: which stub the uploaded image is. */
esim_stub_flavour esim_stub_for_upload(esim_dev *d, uint32_t entry);
/* GET_SECURITY_INFO's payload (chip->sec_info_len bytes) for this device. */
size_t esim_security_info(const esim_dev *d, uint8_t *out);

/* rom.c / stub.c: process one request frame at CPU time *t. */
void esim_rom_frame(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n);
void esim_stub_frame(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n);
/* stub.c: a frame arriving while a READ_FLASH waits for acks. */
void esim_stub_read_ack(esim_dev *d, uint64_t *t, const uint8_t *f, size_t n);
void esim_stub_reset(esim_dev *d);

/* regs.c */
void esim_regs_reset(esim_dev *d);
uint32_t esim_reg_read(esim_dev *d, uint32_t addr);
void esim_reg_write(esim_dev *d, uint64_t t, uint32_t addr, uint32_t value);
/* The ROM's SPIRead leaves these in SPI1 USR/USR2 (stub-read-flash trace). */
void esim_regs_after_flash_read(esim_dev *d);

/* flash.c: all addresses are physical (wrapped modulo the chip size). */
uint32_t esim_fl_phys(const esim_dev *d, uint32_t addr);
/* Wait for the chip, then read n bytes: *t advances by the read time. */
void esim_fl_read(esim_dev *d, uint64_t *t, uint32_t addr, uint8_t *out, size_t n);
/* Program (NOR: bits can only be cleared), 32 bytes per page program.
 * Returns false when the write_error fault hit (from that op on, nothing
 * more of this call is programmed). */
bool esim_fl_program(esim_dev *d, uint64_t *t, uint32_t addr, const uint8_t *p, size_t n);
typedef enum esim_erase_kind { ESIM_ERASE_SECTOR, ESIM_ERASE_BLOCK, ESIM_ERASE_CHIP } esim_erase_kind;
/* Start an erase once the chip is ready (waiting from *t); if `wait`, *t
 * also waits until it is done. */
void esim_fl_erase(esim_dev *d, uint64_t *t, esim_erase_kind k, uint32_t addr, bool wait);
/* Non-blocking variant (LS start_next_erase): false if the chip is busy at *t. */
bool esim_fl_erase_if_ready(esim_dev *d, uint64_t *t, esim_erase_kind k, uint32_t addr);
/* The ROM's SPIEraseArea pattern (timing-facts §2); false on a bad range. */
bool esim_fl_erase_area(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len, uint32_t chip_size);
void esim_fl_md5(esim_dev *d, uint64_t *t, uint32_t addr, uint32_t len, uint8_t digest[16]);
bool esim_fl_is_blank(const esim_dev *d, uint32_t addr, uint32_t len);
void esim_md5_bytes(const uint8_t *p, size_t n, uint8_t digest[16]);
void *esim_md5_new(void);
void esim_md5_update(void *ctx, const uint8_t *p, size_t n);
void esim_md5_final(void *ctx, uint8_t digest[16]); /* frees ctx */
void esim_md5_free(void *ctx);

#endif
