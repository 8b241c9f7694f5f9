-- 0002_link_security_retry.sql: how a unit was reached (transport, link
-- adaptation, port waits), its security state, per-image actions (fast
-- reflash), a 'skipped' result, and runs that retry runs or are stations.
--
-- Applied by src/db.c inside the migration's transaction (foreign keys on).
-- SQLite cannot alter a CHECK constraint, so `units` is rebuilt (SQLite's
-- "make other kinds of table schema changes" procedure): the latest_units
-- view goes first (a view naming a table being renamed is an error), rows
-- are copied with their ids, then the indexes and the view come back.
-- Nothing references units in schema 1, so dropping the old table deletes
-- nothing elsewhere. New columns are NULL for rows written before this
-- migration: "unknown", not "no".

DROP VIEW latest_units;

CREATE TABLE units_new (
  id               INTEGER PRIMARY KEY,
  run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  slot             TEXT NOT NULL,
  port             TEXT NOT NULL,
  usb_location     TEXT,
  attempt          INTEGER NOT NULL,
  -- How the host reached the chip's loader.
  transport        TEXT CHECK (transport IN ('uart', 'usb-serial-jtag', 'usb-otg')),
  chip             TEXT,
  chip_desc        TEXT,
  rev_major        INTEGER,
  rev_minor        INTEGER,
  mac              TEXT,
  flash_id         INTEGER,
  flash_mfr        TEXT,
  flash_device     TEXT,
  flash_size       INTEGER,
  crystal_mhz      INTEGER,
  -- Security state: GET_SECURITY_INFO's flags word and fields as received
  -- (key_purposes: lower-case hex, one byte per key block), and what they
  -- (or the chip's eFuses) say, 0/1.
  sec_flags        INTEGER,
  flash_crypt_cnt  INTEGER,
  key_purposes     TEXT,
  secure_boot      INTEGER CHECK (secure_boot IN (0, 1)),
  flash_encryption INTEGER CHECK (flash_encryption IN (0, 1)),
  secure_download  INTEGER CHECK (secure_download IN (0, 1)),
  -- Link: the configured transfer rate, the rate used (baud), and each
  -- fallback taken on the way (one line each in fallback_log).
  baud_requested   INTEGER,
  baud             INTEGER,
  fallbacks        INTEGER,
  fallback_log     TEXT,
  -- Time spent waiting for a vanished port to come back before this attempt.
  port_wait_ms     INTEGER,
  stub             INTEGER CHECK (stub IN (0, 1)),
  bytes_tx         INTEGER NOT NULL DEFAULT 0,
  bytes_rx         INTEGER NOT NULL DEFAULT 0,
  none_ms          INTEGER NOT NULL DEFAULT 0,
  open_ms          INTEGER NOT NULL DEFAULT 0,
  reset_ms         INTEGER NOT NULL DEFAULT 0,
  sync_ms          INTEGER NOT NULL DEFAULT 0,
  detect_ms        INTEGER NOT NULL DEFAULT 0,
  stub_ms          INTEGER NOT NULL DEFAULT 0,
  baud_ms          INTEGER NOT NULL DEFAULT 0,
  attach_ms        INTEGER NOT NULL DEFAULT 0,
  erase_ms         INTEGER NOT NULL DEFAULT 0,
  write_ms         INTEGER NOT NULL DEFAULT 0,
  verify_ms        INTEGER NOT NULL DEFAULT 0,
  read_ms          INTEGER NOT NULL DEFAULT 0,
  after_ms         INTEGER NOT NULL DEFAULT 0,
  started_at       TEXT NOT NULL,
  finished_at      TEXT,
  duration_ms      INTEGER,
  -- skipped: deliberately not flashed (e.g. a retry by MAC found it passed).
  result           TEXT NOT NULL DEFAULT 'in_progress'
                   CHECK (result IN ('in_progress', 'pass', 'fail', 'aborted', 'skipped')),
  fail_stage       TEXT,
  error_code       TEXT,
  opcode           INTEGER,
  status_bytes     TEXT,
  message          TEXT
);

INSERT INTO units_new (id, run_id, slot, port, usb_location, attempt, chip, chip_desc, rev_major, rev_minor, mac,
                       flash_id, flash_mfr, flash_device, flash_size, crystal_mhz, baud, stub, bytes_tx, bytes_rx,
                       none_ms, open_ms, reset_ms, sync_ms, detect_ms, stub_ms, baud_ms, attach_ms, erase_ms,
                       write_ms, verify_ms, read_ms, after_ms, started_at, finished_at, duration_ms, result,
                       fail_stage, error_code, opcode, status_bytes, message)
  SELECT id, run_id, slot, port, usb_location, attempt, chip, chip_desc, rev_major, rev_minor, mac,
         flash_id, flash_mfr, flash_device, flash_size, crystal_mhz, baud, stub, bytes_tx, bytes_rx,
         none_ms, open_ms, reset_ms, sync_ms, detect_ms, stub_ms, baud_ms, attach_ms, erase_ms,
         write_ms, verify_ms, read_ms, after_ms, started_at, finished_at, duration_ms, result,
         fail_stage, error_code, opcode, status_bytes, message
  FROM units;

DROP TABLE units;
ALTER TABLE units_new RENAME TO units;

CREATE INDEX units_mac ON units (mac);
CREATE INDEX units_run_slot ON units (run_id, slot);

CREATE VIEW latest_units AS
  SELECT * FROM units AS u
  WHERE u.id = (SELECT v.id FROM units AS v
                WHERE v.run_id = u.run_id AND v.slot = u.slot
                ORDER BY v.attempt DESC, v.id DESC LIMIT 1);

-- What happened to each image of a unit's attempt. idx is run_images.idx.
--   written   written, not (yet) checked by MD5
--   verified  written, then its flash MD5 matched the image
--   skipped   not written: the flash MD5 already matched (fast reflash)
--   failed    writing or verifying this region failed
CREATE TABLE unit_images (
  unit_id     INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
  idx         INTEGER NOT NULL,
  offset      INTEGER NOT NULL,
  action      TEXT NOT NULL CHECK (action IN ('written', 'skipped', 'verified', 'failed')),
  duration_ms INTEGER,
  PRIMARY KEY (unit_id, idx)
);

-- A run that retries another (--retry-failed) names it; retry_mode says how
-- it chose its units. A station session (kind 'station') is one long run.
ALTER TABLE runs ADD COLUMN parent_run_id INTEGER REFERENCES runs(id);
ALTER TABLE runs ADD COLUMN retry_mode TEXT CHECK (retry_mode IN ('slot', 'mac'));
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'flash' CHECK (kind IN ('flash', 'station'));
-- Slots whose latest attempt was skipped (counted in units like the others).
ALTER TABLE runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_station_manifest ON runs (station, manifest_sha256);

-- Images per chip: NULL = the image is for every chip of the run.
ALTER TABLE run_images ADD COLUMN chip TEXT;
