-- espgang.sql: the current schema of the espgang traceability log, in one
-- piece, for people (sqlite3 espgang.db, reports, other tools).
--
-- Not executed by espgang: src/db.c applies schema/migrations/NNNN_*.sql in
-- order (embedded at build time) and records each in schema_version.
-- tests/unit/test_db.c checks that this file and the migrations produce the
-- same tables, columns, indexes and views. Schema version: 3.
--
-- Conventions: times are ISO-8601 UTC with milliseconds
-- ("2024-05-01T12:34:56.789Z"), so text order is time order; hashes are
-- lower-case hex; unknown values are NULL, never 0 or "".

-- Which migrations a database has (db.c creates this table itself).
CREATE TABLE schema_version (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,             -- "0001_initial.sql"
  applied_at TEXT NOT NULL
);

-- One invocation of espgang (one manifest, many units).
CREATE TABLE runs (
  id              INTEGER PRIMARY KEY,
  started_at      TEXT NOT NULL,
  ended_at        TEXT,
  station         TEXT NOT NULL,
  operator        TEXT,
  host            TEXT,
  -- The process writing the run, as the OS names it: eg_db_recover() leaves
  -- a run alone while that process is still alive on this machine.
  pid             INTEGER,
  pid_host        TEXT,
  tool_version    TEXT,
  command_line    TEXT,
  manifest_path   TEXT,
  manifest_sha256 TEXT,
  manifest_text   TEXT,
  status          TEXT NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'finished', 'interrupted', 'crashed')),
  -- Counts over slots, judged by each slot's latest attempt; attempts counts rows.
  units           INTEGER NOT NULL DEFAULT 0,
  passed          INTEGER NOT NULL DEFAULT 0,
  failed          INTEGER NOT NULL DEFAULT 0,
  aborted         INTEGER NOT NULL DEFAULT 0,
  attempts        INTEGER NOT NULL DEFAULT 0,
  -- A --retry-failed run names the run it retries (reports show the chain)
  -- and how it chose its units: by slot or by MAC.
  parent_run_id   INTEGER REFERENCES runs(id),
  retry_mode      TEXT CHECK (retry_mode IN ('slot', 'mac')),
  -- 'station': a station session, one long run of units as they are seated.
  kind            TEXT NOT NULL DEFAULT 'flash' CHECK (kind IN ('flash', 'station')),
  skipped         INTEGER NOT NULL DEFAULT 0   -- slots whose latest attempt was skipped
);

CREATE INDEX runs_station_manifest ON runs (station, manifest_sha256);

-- The images a run flashed.
CREATE TABLE run_images (
  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  idx       INTEGER NOT NULL,
  offset    INTEGER NOT NULL,
  size      INTEGER NOT NULL,          -- bytes written (padded to 4)
  file_size INTEGER NOT NULL,          -- bytes in the file
  file      TEXT,
  sha256    TEXT NOT NULL,             -- of the file as read
  md5       TEXT NOT NULL,             -- of the bytes as flashed
  chip      TEXT,                      -- "ESP32-C3": only for that chip; NULL: every chip
  PRIMARY KEY (run_id, idx)
);

-- One attempt on one port. Written when the attempt starts (in_progress) so a
-- crash leaves evidence, updated as the unit is learned, finished durably.
CREATE TABLE units (
  id               INTEGER PRIMARY KEY,
  run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  slot             TEXT NOT NULL,
  port             TEXT NOT NULL,
  usb_location     TEXT,
  attempt          INTEGER NOT NULL,
  transport        TEXT CHECK (transport IN ('uart', 'usb-serial-jtag', 'usb-otg')),
  chip             TEXT,
  chip_desc        TEXT,
  rev_major        INTEGER,
  rev_minor        INTEGER,
  mac              TEXT,                  -- "24:0a:c4:00:00:01"
  flash_id         INTEGER,               -- JEDEC RDID: mfr | type << 8 | capacity << 16
  flash_mfr        TEXT,                  -- as esptool prints it: "c8"
  flash_device     TEXT,                  -- "4016"
  flash_size       INTEGER,               -- bytes
  crystal_mhz      INTEGER,
  -- Security: GET_SECURITY_INFO as received (flags word, FLASH_CRYPT_CNT,
  -- key purposes as hex bytes "0c0d000000000000"), and the three states 0/1.
  sec_flags        INTEGER,
  flash_crypt_cnt  INTEGER,
  key_purposes     TEXT,
  secure_boot      INTEGER CHECK (secure_boot IN (0, 1)),
  flash_encryption INTEGER CHECK (flash_encryption IN (0, 1)),
  secure_download  INTEGER CHECK (secure_download IN (0, 1)),
  baud_requested   INTEGER,               -- the configured transfer rate
  baud             INTEGER,               -- the rate actually used
  fallbacks        INTEGER,               -- link fallbacks taken (count)
  fallback_log     TEXT,                  -- one line per fallback
  port_wait_ms     INTEGER,               -- waited for a vanished port before this attempt
  stub             INTEGER CHECK (stub IN (0, 1)),
  bytes_tx         INTEGER NOT NULL DEFAULT 0,
  bytes_rx         INTEGER NOT NULL DEFAULT 0,
  -- Wall time per stage (src/errors.h EG_STAGE_MAP, one column each).
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
  -- skipped: deliberately not flashed (a retry by MAC found it had passed).
  result           TEXT NOT NULL DEFAULT 'in_progress'
                   CHECK (result IN ('in_progress', 'pass', 'fail', 'aborted', 'skipped')),
  fail_stage       TEXT,                  -- eg_stage_name
  error_code       TEXT,                  -- eg_err_name
  opcode           INTEGER,               -- command in flight
  status_bytes     TEXT,                  -- the chip's status bytes: "01 05"
  message          TEXT
);

CREATE INDEX units_mac ON units (mac);
CREATE INDEX units_run_slot ON units (run_id, slot);

-- Each unit's latest attempt: what "did this board pass?" means. A unit is
-- a run of attempts in one slot (attempt 1, 2, ...); a station session
-- seats many units in one slot, each beginning again at attempt 1.
CREATE VIEW latest_units AS
  SELECT * FROM units AS u
  WHERE COALESCE((SELECT v.attempt FROM units AS v
                  WHERE v.run_id = u.run_id AND v.slot = u.slot AND v.id > u.id
                  ORDER BY v.id LIMIT 1), 1) = 1;

-- What happened to each image (idx = run_images.idx) in one attempt:
-- written (not checked), verified (written, MD5 matched), skipped (flash MD5
-- already matched: fast reflash), failed (writing or verifying it failed).
CREATE TABLE unit_images (
  unit_id     INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
  idx         INTEGER NOT NULL,
  offset      INTEGER NOT NULL,
  action      TEXT NOT NULL CHECK (action IN ('written', 'skipped', 'verified', 'failed')),
  duration_ms INTEGER,
  PRIMARY KEY (unit_id, idx)
);
