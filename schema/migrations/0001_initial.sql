-- 0001_initial.sql: the first schema of the espgang traceability log.
--
-- Applied by src/db.c inside one transaction; db.c records it in
-- schema_version. Never edit a migration that has shipped: add the next one.
-- Times are ISO-8601 UTC with milliseconds ("2024-05-01T12:34:56.789Z"),
-- so they sort as text. Hashes are lower-case hex.

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
  attempts        INTEGER NOT NULL DEFAULT 0
);

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
  PRIMARY KEY (run_id, idx)
);

-- One attempt on one port. Written when the attempt starts (in_progress) so a
-- crash leaves evidence, updated as the unit is learned, finished durably.
CREATE TABLE units (
  id            INTEGER PRIMARY KEY,
  run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  slot          TEXT NOT NULL,
  port          TEXT NOT NULL,
  usb_location  TEXT,
  attempt       INTEGER NOT NULL,
  chip          TEXT,
  chip_desc     TEXT,
  rev_major     INTEGER,
  rev_minor     INTEGER,
  mac           TEXT,                  -- "24:0a:c4:00:00:01"
  flash_id      INTEGER,               -- JEDEC RDID: mfr | type << 8 | capacity << 16
  flash_mfr     TEXT,                  -- as esptool prints it: "c8"
  flash_device  TEXT,                  -- "4016"
  flash_size    INTEGER,               -- bytes
  crystal_mhz   INTEGER,
  baud          INTEGER,
  stub          INTEGER CHECK (stub IN (0, 1)),
  bytes_tx      INTEGER NOT NULL DEFAULT 0,
  bytes_rx      INTEGER NOT NULL DEFAULT 0,
  -- Wall time per stage (src/errors.h EG_STAGE_MAP, one column each).
  none_ms       INTEGER NOT NULL DEFAULT 0,
  open_ms       INTEGER NOT NULL DEFAULT 0,
  reset_ms      INTEGER NOT NULL DEFAULT 0,
  sync_ms       INTEGER NOT NULL DEFAULT 0,
  detect_ms     INTEGER NOT NULL DEFAULT 0,
  stub_ms       INTEGER NOT NULL DEFAULT 0,
  baud_ms       INTEGER NOT NULL DEFAULT 0,
  attach_ms     INTEGER NOT NULL DEFAULT 0,
  erase_ms      INTEGER NOT NULL DEFAULT 0,
  write_ms      INTEGER NOT NULL DEFAULT 0,
  verify_ms     INTEGER NOT NULL DEFAULT 0,
  read_ms       INTEGER NOT NULL DEFAULT 0,
  after_ms      INTEGER NOT NULL DEFAULT 0,
  started_at    TEXT NOT NULL,
  finished_at   TEXT,
  duration_ms   INTEGER,
  result        TEXT NOT NULL DEFAULT 'in_progress'
                CHECK (result IN ('in_progress', 'pass', 'fail', 'aborted')),
  fail_stage    TEXT,                  -- eg_stage_name
  error_code    TEXT,                  -- eg_err_name
  opcode        INTEGER,               -- command in flight
  status_bytes  TEXT,                  -- the chip's status bytes: "01 05"
  message       TEXT
);

CREATE INDEX units_mac ON units (mac);
CREATE INDEX units_run_slot ON units (run_id, slot);

-- Each slot's latest attempt in each run: what "did this board pass?" means.
CREATE VIEW latest_units AS
  SELECT * FROM units AS u
  WHERE u.id = (SELECT v.id FROM units AS v
                WHERE v.run_id = u.run_id AND v.slot = u.slot
                ORDER BY v.attempt DESC, v.id DESC LIMIT 1);
