#!/usr/bin/env bash
# When the database refuses a finished unit's record (disk full, a broken
# file), the record is not lost: it goes to stderr as one JSON line, the
# summary marks the unit NOT RECORDED and espgang exits 3. The refusal is
# injected with an SQLite trigger on one slot; the other units are stored.
#
# usage: gang_dberror.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/out" "$work/err"
need_stub
mkdir -p "$work/images"
"$mkimage" app "$work/images/app.bin" 100000
cat >"$work/rack.yaml" <<EOF
station: db-error
chip: esp32
images: [{offset: 0x10000, file: images/app.bin}]
before: no_reset
after: no_reset
stub: $stub_dir
ports: [{glob: "rack/slot*"}]
EOF
start_espsim --fast --count 3 --pty "$work/rack" --flash-dir "$work/flash"

# A first run creates the database (and must store everything).
(cd "$work" && "$espgang" flash rack.yaml) >"$work/out" 2>"$work/err" || fail "first run failed"
[ "$(q "select count(*) from units where result = 'pass'")" = 3 ] || fail "first run rows"

q "create trigger refuse_slot02 before update on units
   when new.slot = 'slot02' and new.result <> 'in_progress'
   begin select raise(abort, 'disk full (injected by the test)'); end"

set +e
(cd "$work" && "$espgang" flash rack.yaml) >"$work/out" 2>"$work/err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "exit $rc, expected 3 (a record could not be stored)"
grep -q "database error: .*disk full (injected by the test)" "$work/err" || fail "no database error on stderr"
line=$(grep '"event":"unit_not_recorded"' "$work/err") || fail "the refused record was not printed"
for want in '"slot":"slot02"' '"result":"pass"' '"mac":"24:0a:c4:00:00:02"' '"attempt":1'; do
  grep -qF "$want" <<<"$line" || fail "spilled record lacks $want: $line"
done
grep -q "slot02 .*pass.*\[NOT RECORDED\]" "$work/out" || fail "summary does not flag slot02: $(grep slot02 "$work/out")"
[ "$(q "select count(*) from units where run_id = 2 and result = 'pass'")" = 2 ] || fail "the other units were not stored"
[ "$(q "select result from units where run_id = 2 and slot = 'slot02'")" = in_progress ] ||
  fail "slot02's row: $(q "select * from units where run_id = 2 and slot = 'slot02'")"

# A log that cannot take a unit's first row: the board is not touched (the
# promise is a row before the port), the record goes to stderr, exit 3.
# First a corrupt index page (the damaged page is caught when it is first
# touched - cell_size_check - so no unit row goes in and no board is
# written), then a log that refuses the INSERT itself (the scheduler's path).
q "drop trigger refuse_slot02"
"$mkimage" app "$work/images/app.bin" 100000 77   # another image: any write would show
sums=$(md5sum "$work"/flash/*.bin)
cp "$work/espgang.db" "$work/corrupt.db"
page=$(sqlite3 -batch -noheader "$work/corrupt.db" "pragma page_size")
root=$(sqlite3 -batch -noheader "$work/corrupt.db" "select rootpage from sqlite_master where name = 'units_run_slot'")
printf '\377%.0s' $(seq 64) | dd of="$work/corrupt.db" bs=1 seek=$(( (root - 1) * page + 8 )) conv=notrunc 2>/dev/null
sed 's/^station: db-error$/station: db-error\ndatabase: corrupt.db/' "$work/rack.yaml" >"$work/corrupt.yaml"
set +e
(cd "$work" && "$espgang" flash corrupt.yaml) >"$work/out" 2>"$work/err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "corrupt log: exit $rc, expected 3"
grep -q "malformed" "$work/err" || fail "corrupt log: no reason given"
[ "$(md5sum "$work"/flash/*.bin)" = "$sums" ] || fail "corrupt log: a board was written"
q "create trigger refuse_rows before insert on units begin select raise(abort, 'no room for a row (injected)'); end"
set +e
(cd "$work" && "$espgang" flash rack.yaml) >"$work/out" 2>"$work/err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "refused rows: exit $rc, expected 3"
[ "$(grep -c "not flashed: the log refused the unit's row (.*no room for a row (injected))" "$work/err")" = 3 ] ||
  fail "refused rows: each unit's reason on stderr: $(cat "$work/err")"
[ "$(grep -c '"event":"unit_not_recorded"' "$work/err")" -ge 3 ] || fail "refused rows: records not printed"
[ "$(md5sum "$work"/flash/*.bin)" = "$sums" ] || fail "refused rows: a board was written without its row"
echo "a refused record went to stderr as JSON; the others were stored; no board written without its row"
