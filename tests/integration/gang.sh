#!/usr/bin/env bash
# The gang run against a 16-board espsim rack: healthy boards and one of
# each fault kind. Every row of the SQLite log is checked against what
# really happened: the flash files, the injected faults, espsim's MACs.
# Then --retry-failed re-flashes only the failed slots.
#
# usage: gang.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/out"
need_stub

mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" partitions "$work/images/partitions.bin"
"$mkimage" app "$work/images/app.bin" 300000

cat >"$work/rack.yaml" <<EOF
station: gang-test
chip: esp32
images:
  - {offset: 0x1000, file: images/bootloader.bin}
  - {offset: 0x8000, file: images/partitions.bin}
  - {offset: 0x10000, file: images/app.bin}
flash: {mode: dio, freq: 40m, size: detect}
baud: 921600
before: no_reset
after: no_reset
stub: $stub_dir
retries: 1
timeouts: {command: 0.5}
ports:
  - {glob: "rack/slot*"}
EOF

# One board per fault kind; the rest are healthy.
cat >"$work/faults.yaml" <<EOF
slot02: md5_mismatch               # every write: verify fails, retry fails too
slot03: not_in_download_mode       # booted the app: never syncs
slot04: flash_write_error_at=0x12000   # a bad flash cell under the app
slot05: stall_after_bytes=60000    # goes silent mid-write, for good
slot06: disconnect_after_bytes=50000   # cable pulled; replugged after 300 ms
slot07: md5_mismatch=1             # only the first write session: the retry passes
slot08: baud_ceiling=460800        # garbles above 460800 baud
slot09: drop_rate=0.00001          # noisy line: block resends, still passes
slot10: corrupt_rate=0.00001       # likewise with flipped bits
EOF
start_espsim --fast --count 16 --pty "$work/rack" --flash-dir "$work/flash" --faults "$work/faults.yaml" \
  --replug-ms 300 --seed 11

set +e
(cd "$work" && "$espgang" flash rack.yaml --operator ci) >"$work/out" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "espgang exit $rc, expected 1 (some units failed)"

# The run.
[ "$(q "select count(*) from runs")" = 1 ] || fail "expected one run"
[ "$(q "select status || ' ' || operator || ' ' || station from runs")" = "finished ci gang-test" ] ||
  fail "run row: $(q 'select * from runs')"
[ "$(q "select count(*) from run_images")" = 3 ] || fail "run_images"
[ "$(q "select sha256 from run_images where offset = 65536")" = "$(sha256sum "$work/images/app.bin" | cut -d' ' -f1)" ] ||
  fail "app sha256 in run_images"
[ "$(q "select count(*) from units where result = 'in_progress'")" = 0 ] || fail "units left in progress"

latest() { q "select $2 from units where slot = '$1' order by attempt desc limit 1"; }
attempts() { q "select count(*) from units where slot = '$1'"; }
flash_ok() { # the board's flash holds all three images
  local f=$work/flash/$1.bin
  cmp -s -i 4096:0 -n "$(stat -c %s "$work/images/bootloader.bin")" "$f" "$work/images/bootloader.bin" &&
    cmp -s -i 32768:0 -n 3072 "$f" "$work/images/partitions.bin" &&
    cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/app.bin")" "$f" "$work/images/app.bin"
}
mac_of() { sim_field "$((10#${1#slot}))" mac; }

# Healthy boards and the ones that recover: pass, identity as espsim says,
# flash holds the images.
for n in 01 09 10 11 12 13 14 15 16 06 07; do
  s=slot$n
  [ "$(latest $s result)" = pass ] || fail "$s: $(q "select attempt, result, fail_stage, error_code, message from units where slot='$s'")"
  [ "$(latest $s mac)" = "$(mac_of $s)" ] || fail "$s: MAC $(latest $s mac) vs espsim $(mac_of $s)"
  [ "$(latest $s "chip || ' ' || flash_mfr || ' ' || flash_device || ' ' || flash_size || ' ' || crystal_mhz || ' ' || stub || ' ' || baud")" = \
    "ESP32 c8 4016 4194304 40 1 921600" ] || fail "$s identity: $(latest $s "chip, flash_mfr, flash_device, flash_size, crystal_mhz, stub, baud")"
  [ "$(latest $s "write_ms > 0 and verify_ms >= 0 and bytes_tx > 150000 and bytes_rx > 0")" = 1 ] || fail "$s: timings/bytes"
  flash_ok $s || fail "$s: flash does not hold the images"
done
for n in 01 09 10 11 12 13 14 15 16; do [ "$(attempts slot$n)" = 1 ] || fail "slot$n took $(attempts slot$n) attempts"; done

# slot07: first attempt failed verify (the injected flip), the retry passed.
[ "$(attempts slot07)" = 2 ] || fail "slot07 attempts $(attempts slot07)"
[ "$(q "select result || ' ' || fail_stage || ' ' || error_code || ' ' || opcode from units where slot='slot07' and attempt=1")" = \
  "fail verify MD5_MISMATCH 19" ] || fail "slot07 attempt 1: $(q "select * from units where slot='slot07' and attempt=1")"
# slot06: the cable was pulled during the first attempt; the replugged board passed.
[ "$(q "select result || ' ' || error_code from units where slot='slot06' and attempt=1")" = "fail PORT_GONE" ] ||
  [ "$(q "select result || ' ' || error_code from units where slot='slot06' and attempt=1")" = "fail TIMEOUT" ] ||
  fail "slot06 attempt 1: $(q "select * from units where slot='slot06' and attempt=1")"

# The boards that cannot pass: both attempts recorded, each with the cause.
check_fail() { # slot stage error
  [ "$(attempts $1)" = 2 ] || fail "$1: $(attempts $1) attempts, expected 2"
  local got
  got=$(q "select group_concat(result || '/' || fail_stage || '/' || error_code, ' ') from (select * from units where slot='$1' order by attempt)")
  case " $got " in *" fail/$2/$3 "*) ;; *) fail "$1: got [$got], expected a fail/$2/$3" ;; esac
  [ "$(latest $1 result)" = fail ] || fail "$1: latest attempt is not a failure"
  [ -n "$(latest $1 message)" ] || fail "$1: no message"
}
check_fail slot02 verify MD5_MISMATCH
check_fail slot03 sync NOT_DOWNLOAD_MODE
check_fail slot04 write DEVICE_STATUS
check_fail slot05 write TIMEOUT
[ "$(q "select status_bytes from units where slot='slot04' and attempt=1")" = "c4 00" ] ||
  fail "slot04 status bytes: $(q "select status_bytes, message from units where slot='slot04'")"
[ "$(latest slot03 mac)" = "" ] || fail "slot03 never talked, yet has a MAC"
slot08=$(q "select group_concat(result || '/' || fail_stage, ' ') from units where slot='slot08'")
case "$slot08" in *fail/*) ;; *) fail "slot08 (baud ceiling) did not fail: $slot08" ;; esac
# Both say what the adaptive link tried: slot08's ROM rate change cannot be
# undone without a reset (a pty has none); slot05 stepped down, in vain, and
# keeps the write's own failure.
q "select fallback_log from units where slot='slot08' and attempt=1" | grep -q "no reset on this port" ||
  fail "slot08 fallback_log: $(q "select fallback_log from units where slot='slot08'")"
q "select fallback_log from units where slot='slot05' and attempt=1" | grep -q "921600 -> 460800 at image" ||
  fail "slot05 fallback_log: $(q "select fallback_log from units where slot='slot05'")"

# The summary the operator saw matches the log.
grep -q "11 passed, 5 failed, 0 aborted of 16 units" "$work/out" || fail "summary line: $(grep passed "$work/out")"

# Re-flash only the failed slots.
set +e
(cd "$work" && "$espgang" flash rack.yaml --retry-failed) >"$work/out2" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "--retry-failed exit $rc (the same boards still fail)"
[ "$(q "select count(distinct slot) from units where run_id = 2")" = 5 ] ||
  fail "--retry-failed ran $(q "select group_concat(distinct slot) from units where run_id = 2")"
[ "$(q "select group_concat(slot, ' ') from (select distinct slot from units where run_id = 2 order by slot)")" = \
  "slot02 slot03 slot04 slot05 slot08" ] || fail "--retry-failed slots: $(q "select group_concat(distinct slot) from units where run_id = 2")"

# The reports answer "what happened to unit X".
"$espgang" history "$work/espgang.db" "$(mac_of slot07)" >"$work/hist"
grep -q "MD5_MISMATCH" "$work/hist" && grep -q "pass" "$work/hist" || fail "history of slot07: $(cat "$work/hist")"
"$espgang" report "$work/rack.yaml" --run 1 --json >"$work/report.json"
[ "$(grep -c '"slot"' "$work/report.json")" -ge 16 ] || fail "JSON report: $(head -c 400 "$work/report.json")"
echo "gang run: every database row matches the rack"
