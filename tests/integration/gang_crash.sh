#!/usr/bin/env bash
# Nothing recorded is ever lost:
#  1. kill -9 of espgang mid-run: every unit that had finished keeps its
#     row; the next start marks the rest aborted and the run crashed; then
#     --retry-failed re-flashes exactly those.
#  2. SIGINT mid-run: espgang stops cleanly (exit 4), units in flight are
#     recorded as aborted with the stage they were in, the run interrupted.
# espsim runs with its realistic timing here (the point is to stop espgang
# while units are genuinely in flight); boards 3-8 answer 150 ms late,
# so boards 1-2 finish first.
#
# usage: gang_crash.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
gang=
show_on_fail "$work/out1" "$work/out2" "$work/out3"
need_stub
mkdir -p "$work/images"
"$mkimage" app "$work/images/app.bin" 200000
cat >"$work/rack.yaml" <<EOF
station: crash-test
chip: esp32
images:
  - {offset: 0x10000, file: images/app.bin}
baud: 921600
before: no_reset
after: no_reset
stub: $stub_dir
retries: 0
ports:
  - {glob: "rack/slot*"}
EOF

start_sim() { start_espsim --count 8 --pty "$work/rack" --flash-dir "$work/flash" "$@"; }
stop_sim() { stop_espsim; }
wait_for() { # sql-condition timeout-seconds
  for _ in $(seq 1 $(($2 * 10))); do
    [ "$(q "$1" 2>/dev/null || echo 0)" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
slow=()
for n in 3 4 5 6 7 8; do slow+=(--fault "slot0$n:delay=150ms"); done

# ---- 1. kill -9 mid-run
start_sim "${slow[@]}"
(cd "$work" && exec "$espgang" flash rack.yaml) >"$work/out1" 2>&1 &
gang=$!
wait_for "select count(*) >= 2 from units where result = 'pass'" 60 || fail "no unit finished within 60 s"
wait_for "select count(*) >= 1 from units where result = 'in_progress' and fail_stage in ('erase', 'write', 'verify')" 30 ||
  fail "no unit was writing when espgang was to be killed"
passed_before=$(q "select group_concat(slot || '=' || mac, ' ') from (select * from units where result = 'pass' order by slot)")
kill -KILL "$gang"
wait "$gang" 2>/dev/null || true
gang=
inflight=$(q "select count(*) from units where result = 'in_progress'")
[ "$inflight" -ge 1 ] || fail "nothing was in flight at the kill"
# The finished units survived the kill exactly as they were.
[ "$(q "select group_concat(slot || '=' || mac, ' ') from (select * from units where result = 'pass' order by slot)")" = "$passed_before" ] ||
  fail "finished units changed after kill -9"
[ "$(q "select count(*) from units where result = 'pass' and (finished_at is null or duration_ms is null)")" = 0 ] ||
  fail "a finished unit lost its end time"
stop_sim

# The next start marks what was left in progress as aborted, then
# --retry-failed flashes exactly those slots (fast simulator this time).
start_sim --fast
set +e
(cd "$work" && "$espgang" flash rack.yaml --retry-failed) >"$work/out2" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "re-flash after the crash: exit $rc"
grep -q "$inflight unit(s) left in progress by an earlier espgang were marked aborted" "$work/out2" ||
  fail "no recovery notice: $(head -n 3 "$work/out2")"
[ "$(q "select status from runs where id = 1")" = crashed ] || fail "run 1 status $(q 'select status from runs where id = 1')"
[ "$(q "select count(*) from units where run_id = 1 and result = 'aborted'")" = "$inflight" ] || fail "aborted rows"
[ "$(q "select count(*) from units where run_id = 1 and result = 'aborted' and error_code = 'ABORTED' and fail_stage is not null and message like '%ended before this unit finished%'")" = "$inflight" ] ||
  fail "aborted rows lack the reason: $(q "select message from units where run_id = 1 and result = 'aborted' limit 1")"
[ "$(q "select count(*) from units where run_id = 2")" = "$inflight" ] || fail "--retry-failed flashed $(q "select count(*) from units where run_id = 2") slots, expected $inflight"
[ "$(q "select count(*) from units where run_id = 2 and result = 'pass'")" = "$inflight" ] || fail "re-flash did not pass"
for f in "$work"/flash/slot*.bin; do
  cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/app.bin")" "$f" "$work/images/app.bin" || fail "$(basename "$f") does not hold the app"
done
stop_sim

# ---- 2. SIGINT mid-run
rm -f "$work/espgang.db"*
start_sim "${slow[@]}"
(cd "$work" && exec "$espgang" flash rack.yaml --json) >"$work/out3" 2>&1 &
gang=$!
wait_for "select count(*) >= 3 from units where result = 'in_progress' and fail_stage in ('erase', 'write', 'verify')" 60 ||
  fail "units never started writing"
kill -INT "$gang"
set +e
wait "$gang"
rc=$?
set -e
gang=
[ $rc -eq 4 ] || fail "SIGINT: exit $rc, expected 4"
[ "$(q "select status from runs")" = interrupted ] || fail "run status $(q 'select status from runs')"
[ "$(q "select count(*) from units where result = 'in_progress'")" = 0 ] || fail "units left in progress after SIGINT"
aborted=$(q "select count(*) from units where result = 'aborted'")
[ "$aborted" -ge 3 ] || fail "only $aborted units aborted"
[ "$(q "select count(*) from units where result = 'aborted' and error_code = 'ABORTED' and fail_stage in ('erase','write','verify','stub','sync','detect','attach','baud') and message like 'stopped by the operator%'")" = "$aborted" ] ||
  fail "aborted rows: $(q "select slot, fail_stage, error_code, message from units where result = 'aborted'")"
grep -q '"event":"summary"' "$work/out3" && grep -q '"interrupted":true' "$work/out3" || fail "no JSON summary"
echo "kill -9 lost nothing; SIGINT recorded every unit"
