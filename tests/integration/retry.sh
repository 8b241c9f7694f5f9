#!/usr/bin/env bash
# Reruns from the log (flash --retry-failed) with two stations and two
# manifests sharing one database: the run retried is always the latest of
# the same station and the same manifest (never another station's, never
# another manifest's), by slot and --by-mac (espsim's two racks give the
# same MACs to different boards: a MAC that failed at station A is not a
# reason to flash it at station B); the chain is recorded (parent_run_id,
# retry_mode); a changed image is refused (exit 2, one line, no run, no
# board touched) unless --allow-changed-images; a station started with
# --retry-failed --by-mac flashes only the failed MAC.
#
# usage: retry.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
need_stub

mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" app "$work/images/app.bin" 20000

manifest() { # file station rack slots... (settings shared; database shared)
  local file=$1 station=$2 rack=$3
  shift 3
  {
    echo "station: $station"
    echo "database: shared.db"
    echo "chip: esp32"
    echo "images:"
    echo "  - {offset: 0x1000, file: images/bootloader.bin}"
    echo "  - {offset: 0x10000, file: images/app.bin}"
    echo "baud: 921600"
    echo "before: no_reset"
    echo "after: no_reset"
    echo "stub: $stub_dir"
    echo "retries: 0"
    echo "timeouts: {command: 0.5, sync: 0.02}"
    echo "ports:"
    for s in "$@"; do echo "  - {slot: ${station: -1}$s, path: $rack/slot0$s}"; done
  } >"$work/$file"
}
manifest a.yaml line-A rackA 1 2 3 4
manifest a2.yaml line-A rackA 1 4      # the same station, another manifest
manifest b.yaml line-B rackB 1 2 3 4
manifest c.yaml line-C rackA 1         # never run

# Two racks; both number their MACs from 24:0a:c4:00:00:01.
"$espsim" --fast -n 4 --pty "$work/rackA" --flash-dir "$work/flashA" --seed 3 \
  --fault slot02:md5_mismatch --fault slot03:md5_mismatch=1 >"$work/simA.json" 2>"$work/simA.err" &
simA=$!
"$espsim" --fast -n 4 --pty "$work/rackB" --flash-dir "$work/flashB" --seed 4 \
  --fault slot01:md5_mismatch=1 >"$work/simB.json" 2>"$work/simB.err" &
simB=$!
trap 'kill -TERM $simA $simB 2>/dev/null; wait $simA $simB 2>/dev/null; _itest_cleanup' EXIT
for _ in $(seq 1 100); do
  grep -q ready "$work/simA.json" 2>/dev/null && grep -q ready "$work/simB.json" 2>/dev/null && break
  sleep 0.05
done
show_on_fail "$work/out"

qs() { sqlite3 -batch -noheader "$work/shared.db" "$1"; }
run_flash() { # expected-exit args...
  local want=$1 rc=0
  shift
  (cd "$work" && "$espgang" flash "$@") >"$work/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || fail "flash $* exit $rc, expected $want: $(cat "$work/out")"
}
slots_of() { qs "select group_concat(slot, ' ') from (select slot from units where run_id = $1 order by slot)"; }
chain() { qs "select kind || ' ' || station || ' ' || coalesce(parent_run_id, '-') || ' ' || coalesce(retry_mode, '-') from runs where id = $1"; }

run_flash 1 a.yaml                     # run 1: A2 and A3 fail
run_flash 1 b.yaml                     # run 2: B1 fails
run_flash 0 a2.yaml                    # run 3: line-A, other manifest, all pass
[ "$(qs "select group_concat(id || ':' || station || ':' || failed, ' ') from runs")" = "1:line-A:2 2:line-B:1 3:line-A:0" ] ||
  fail "runs: $(qs 'select id, station, failed from runs')"

# Nothing of this station and manifest yet: refused before any board.
run_flash 2 c.yaml --retry-failed
grep -q "no run of station line-C" "$work/out" || fail "c.yaml: $(cat "$work/out")"
[ "$(wc -l <"$work/out")" = 1 ] || fail "c.yaml: more than one line: $(cat "$work/out")"

# By slot: run 1 is retried (not run 2, another station; not run 3, another manifest).
run_flash 1 a.yaml --retry-failed      # run 4: A2 fails again, A3 passes
[ "$(chain 4)" = "flash line-A 1 slot" ] || fail "run 4 chain: $(chain 4)"
[ "$(slots_of 4)" = "A2 A3" ] || fail "run 4 slots: $(slots_of 4)"
[ "$(qs "select group_concat(slot || '=' || result, ' ') from (select * from units where run_id = 4 order by slot)")" = "A2=fail A3=pass" ] ||
  fail "run 4 results: $(qs 'select slot, result, error_code from units where run_id = 4')"
run_flash 1 a.yaml --retry-failed      # run 5: only A2 is left
[ "$(chain 5)" = "flash line-A 4 slot" ] || fail "run 5 chain: $(chain 5)"
[ "$(slots_of 5)" = "A2" ] || fail "run 5 slots: $(slots_of 5)"

# By MAC at station B: only B1's MAC failed there. B2 has A2's MAC (both
# racks count from :01), which failed at station A only: skipped.
run_flash 0 b.yaml --retry-failed --by-mac   # run 6
[ "$(chain 6)" = "flash line-B 2 mac" ] || fail "run 6 chain: $(chain 6)"
mac1=$(sed -n 's/.*"index":1,.*"mac":"\([^"]*\)".*/\1/p' "$work/simB.json")
mac2=$(sed -n 's/.*"index":2,.*"mac":"\([^"]*\)".*/\1/p' "$work/simB.json")
[ "$mac2" = "$(qs "select mac from units where run_id = 1 and slot = 'A2'")" ] || fail "the racks do not share MACs"
[ "$(qs "select group_concat(slot || '=' || result || '=' || mac, ' ') from (select * from units where run_id = 6 order by slot)")" = \
  "B1=pass=$mac1 B2=skipped=$mac2 B3=skipped=24:0a:c4:00:00:03 B4=skipped=24:0a:c4:00:00:04" ] ||
  fail "run 6: $(qs 'select slot, result, mac, message from units where run_id = 6')"
qs "select message from units where run_id = 6 and slot = 'B2'" | grep -q "no failed attempt" ||
  fail "run 6 B2 message: $(qs "select message from units where run_id = 6 and slot = 'B2'")"
grep -q "1 passed, 0 failed, 0 aborted, 3 skipped of 4 units" "$work/out" || fail "run 6 summary: $(grep passed "$work/out")"
# Again: B1 passed since, so nothing is flashed.
run_flash 0 b.yaml --retry-failed --by-mac   # run 7
[ "$(qs "select group_concat(result, ' ') from units where run_id = 7")" = "skipped skipped skipped skipped" ] ||
  fail "run 7: $(qs 'select slot, result from units where run_id = 7')"

# A changed image: refused before any board is touched, one line, no run.
runs_before=$(qs "select count(*) from runs")
sumA=$(md5sum "$work/flashA/slot02.bin")
"$mkimage" app "$work/images/app.bin" 20000 99
run_flash 2 a.yaml --retry-failed
[ "$(wc -l <"$work/out")" = 1 ] || fail "changed image: not one line: $(cat "$work/out")"
grep -q "image images/app.bin at 0x10000 changed since run #5" "$work/out" || fail "changed image: $(cat "$work/out")"
[ "$(qs "select count(*) from runs")" = "$runs_before" ] || fail "a refused retry recorded a run"
[ "$(md5sum "$work/flashA/slot02.bin")" = "$sumA" ] || fail "a refused retry touched a board"
run_flash 1 a.yaml --retry-failed --allow-changed-images   # run 8: A2 again
[ "$(chain 8)" = "flash line-A 5 slot" ] || fail "run 8 chain: $(chain 8)"
[ "$(slots_of 8)" = "A2" ] || fail "run 8 slots: $(slots_of 8)"
[ "$(qs "select sha256 from run_images where run_id = 8 and offset = 65536")" = "$(sha256sum "$work/images/app.bin" | cut -d' ' -f1)" ] ||
  fail "run 8 records the new image"

# A station with --retry-failed --by-mac: every board of rack A is seated;
# only A2's MAC failed (and never passed): flashed; the others are skipped.
# The boards are put back into download mode first (espsim SIGUSR1: BOOT +
# RESET on each), as boards seated in a station are: the flash runs above
# left their stubs listening at 921600 (after: no_reset).
kill -USR1 $simA
(cd "$work" && exec "$espgang" station a.yaml --retry-failed --by-mac --allow-changed-images --json --probe-ms 100) \
  >"$work/station.json" 2>"$work/station.err" &
gang=$!
for _ in $(seq 1 200); do
  [ "$(grep -c '"event":"unit_done"' "$work/station.json" 2>/dev/null)" -ge 4 ] && break
  sleep 0.05
done
kill -INT $gang
rc=0
wait $gang || rc=$?
gang=
[ $rc = 0 ] || fail "station exit $rc: $(cat "$work/station.err")"
sid=$(qs "select max(id) from runs")
[ "$(chain "$sid")" = "station line-A 8 mac" ] || fail "station run chain: $(chain "$sid")"
[ "$(qs "select status from runs where id = $sid")" = finished ] || fail "station run status"
[ "$(qs "select group_concat(slot || '=' || result, ' ') from (select * from units where run_id = $sid order by slot)")" = \
  "A1=skipped A2=fail A3=skipped A4=skipped" ] ||
  fail "station by MAC: $(qs "select slot, result, message from units where run_id = $sid")"

# A station killed with kill -9 leaves its session running; the next
# espgang on that log marks it crashed.
(cd "$work" && exec "$espgang" station a.yaml --reflash --json --probe-ms 100) >"$work/station2.json" 2>"$work/station2.err" &
gang=$!
for _ in $(seq 1 200); do
  grep -q '"event":"unit_start"' "$work/station2.json" 2>/dev/null && break
  sleep 0.02
done
kill -KILL $gang
wait $gang 2>/dev/null || true
gang=
kid=$(qs "select max(id) from runs")
[ "$(qs "select kind || ' ' || status from runs where id = $kid")" = "station running" ] ||
  fail "killed station: $(qs "select kind, status from runs where id = $kid")"
run_flash 0 a2.yaml
[ "$(qs "select status from runs where id = $kid")" = crashed ] || fail "killed station not marked crashed"
[ "$(qs "select count(*) from units where run_id = $kid and result = 'in_progress'")" = 0 ] ||
  fail "killed station left units in progress"
echo "retry: the right run every time, by slot and by MAC, across two stations and two manifests"
