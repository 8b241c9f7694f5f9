#!/usr/bin/env bash
# The reports over real runs: two stations and two manifests flashing one
# espsim rack with faults, into one shared database and into one database
# each; then every report view checked against the databases (CSV and JSON
# parsed back: report_check.mjs) and the HTML page rendered in headless
# Chromium (tests/browser/report.test.mjs; screenshot kept in
# BUILD_DIR/test-artifacts/report/).
#
# usage: reports.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/out"
need_stub

mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" partitions "$work/images/partitions.bin"
"$mkimage" app "$work/images/app-a.bin" 120000
"$mkimage" app "$work/images/app-b.bin" 90000

# manifest NAME STATION DATABASE APP SLOT=NN...   (slot SLOT on rack/slotNN)
manifest() {
  local name=$1 station=$2 db=$3 app=$4
  shift 4
  {
    echo "station: $station"
    echo "database: $db"
    echo "chip: esp32"
    echo "images:"
    echo "  - {offset: 0x1000, file: images/bootloader.bin}"
    echo "  - {offset: 0x8000, file: images/partitions.bin}"
    echo "  - {offset: 0x10000, file: images/$app}"
    echo "baud: 921600"
    echo "before: no_reset"
    echo "after: no_reset"
    echo "stub: $stub_dir"
    echo "retries: 1"
    echo "timeouts: {command: 0.5}"
    echo "ports:"
    local n
    for n in "$@"; do echo "  - {slot: ${n%%=*}, path: rack/slot${n#*=}}"; done
  } >"$work/$name"
}
manifest a.yaml line-a shared.db app-a.bin A1=01 A2=02 A3=03 A4=04
manifest b.yaml line-b shared.db app-b.bin B1=05 B2=06 B3=07 B4=08
manifest a2.yaml line-a a.db app-a.bin A1=01 A2=02 A3=03 A4=04
manifest b2.yaml line-b b.db app-b.bin B1=05 B2=06 B3=07 B4=08

{
  echo "slot02: md5_mismatch                 # verify always fails"
  echo "slot03: md5_mismatch=1               # the first write session only: its retry passes"
  echo "slot06: not_in_download_mode         # never syncs"
  echo "slot07: flash_write_error_at=0x12000 # the chip refuses a block (status bytes)"
} >"$work/faults.yaml"
start_espsim --fast --count 8 --pty "$work/rack" --flash-dir "$work/flash" --faults "$work/faults.yaml" --seed 5

flash() { # manifest: exit 0 or 1 (some units failed) is fine
  local rc=0
  (cd "$work" && "$espgang" flash "$1" --operator ci) >>"$work/out" 2>&1 || rc=$?
  [ $rc -le 1 ] || fail "espgang flash $1 exit $rc"
}
flash a.yaml
flash b.yaml
flash a.yaml
flash a2.yaml
flash b2.yaml
stop_espsim

for db in shared a b; do
  [ "$(sqlite3 "$work/$db.db" "select count(*) from units where result = 'in_progress'")" = 0 ] || fail "$db.db: units in progress"
done
[ "$(sqlite3 "$work/shared.db" "select group_concat(station, ' ') from (select station from runs order by id)")" = "line-a line-b line-a" ] ||
  fail "shared.db runs: $(sqlite3 "$work/shared.db" 'select id, station from runs')"

node "$src/tests/integration/report_check.mjs" "$espgang" "$work"
node "$src/tests/browser/report.test.mjs" "$espgang" "$work" "$build/test-artifacts/report"
echo "reports: every view matches the databases"
