#!/usr/bin/env bash
# A gang run over RFC 2217 with real resets: every board is reset into the
# bootloader with esptool's DTR/RTS sequences (through espsim's model of the
# auto-reset circuit) and hard-reset into its application afterwards. One
# board's circuit cannot pull GPIO0 low: it must be reported as booting
# normally, quoting its boot log, on both attempts.
#
# usage: gang_rfc2217.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/out"
need_stub
mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" app "$work/images/app.bin" 200000

start_espsim --fast --count 6 --tcp 0 --flash-dir "$work/flash" --event-log "$work/ev" \
  --fault slot04:not_in_download_mode

{
  cat <<EOF
station: rfc2217-bench
chip: esp32
images:
  - {offset: 0x1000, file: images/bootloader.bin}
  - {offset: 0x10000, file: images/app.bin}
baud: 921600
before: default_reset
after: hard_reset
stub: $stub_dir
retries: 1
ports:
EOF
  for i in 1 2 3 4 5 6; do
    url=$(sim_field $i rfc2217)
    [ -n "$url" ] || fail "no rfc2217 URL for board $i: $(cat "$work/espsim.json")"
    echo "  - {slot: B$i, url: \"$url\"}"
  done
} >"$work/rack.yaml"

set +e
(cd "$work" && "$espgang" flash rack.yaml) >"$work/out" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "exit $rc, expected 1 (board 4 cannot enter download mode)"

for i in 1 2 3 5 6; do
  [ "$(q "select result || ' ' || attempt || ' ' || (reset_ms > 0) || ' ' || (after_ms >= 100) from units where slot = 'B$i'")" = "pass 1 1 1" ] ||
    fail "B$i: $(q "select result, attempt, reset_ms, after_ms, error_code, message from units where slot = 'B$i'")"
  f=$(sim_field $i flash)
  cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/app.bin")" "$f" "$work/images/app.bin" || fail "B$i flash"
  # The hard reset booted the application (espsim's event log says so).
  grep -q "app" "$work/ev/slot0$i.log" || fail "B$i: no app boot after the hard reset"
done
[ "$(q "select count(*) from units where slot = 'B4' and result = 'fail' and fail_stage = 'sync' and error_code = 'NOT_DOWNLOAD_MODE' and message like '%boot:0x13 (SPI_FAST_FLASH_BOOT)%'")" = 2 ] ||
  fail "B4: $(q "select attempt, result, fail_stage, error_code, message from units where slot = 'B4'")"
echo "RFC 2217 gang run: resets into download mode, hard resets into the app, a bad circuit diagnosed"
