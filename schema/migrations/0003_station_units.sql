-- 0003_station_units.sql: latest_units for station sessions.
--
-- A gang run has one unit per slot, so "the slot's last attempt" was the
-- unit. A station session seats many boards in one slot, each starting
-- again at attempt 1 (the report model's rule: a new board in a slot begins
-- at attempt 1). The view now keeps every attempt that is the last of its
-- unit: the next row of the same run and slot is absent or begins a new
-- unit. The runs' stored counts, computed over this view when a run closes,
-- are recounted for the station sessions written before (the only runs with
-- several units per slot).

DROP VIEW latest_units;

CREATE VIEW latest_units AS
  SELECT * FROM units AS u
  WHERE COALESCE((SELECT v.attempt FROM units AS v
                  WHERE v.run_id = u.run_id AND v.slot = u.slot AND v.id > u.id
                  ORDER BY v.id LIMIT 1), 1) = 1;

UPDATE runs SET (units, passed, failed, aborted, skipped) = (
  SELECT COUNT(*), COALESCE(SUM(result = 'pass'), 0), COALESCE(SUM(result = 'fail'), 0),
         COALESCE(SUM(result = 'aborted'), 0), COALESCE(SUM(result = 'skipped'), 0)
  FROM latest_units WHERE run_id = runs.id)
WHERE kind = 'station' AND status <> 'running';
