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
echo "a refused record went to stderr as JSON; the others were stored"
