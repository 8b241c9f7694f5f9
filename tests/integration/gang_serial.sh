#!/usr/bin/env bash
# The real-adapter path (issue 9 item 5): espgang's libserialport backend
# (libserialport's own open, baud and modem-line code) against simulated
# boards. espsim's ptys become USB serial adapters through the LD_PRELOAD
# double tests/preload/fakeusb.c; their DTR/RTS changes reach each board's
# auto-reset circuit through espsim --pty-lines (DIR/slotNN.lines), as
# SET-CONTROL does over RFC 2217 (gang_rfc2217.sh). So default_reset puts
# the boards into download mode and hard_reset boots their application,
# over a "serial port" path, in a gang run (two boards matched by USB serial
# number and USB location through libserialport's port list) and with the
# esptool-style command. One board's circuit cannot pull GPIO0 low: it must
# be diagnosed as booting normally.
#
# usage: gang_serial.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/out" "$work/cli.out"
"$espsim" --help 2>&1 | grep -q -- --pty-lines || { echo "espsim has no --pty-lines: skipped"; exit 77; }
shim=$build/tests/preload/libegfakeusb.so
[ -f "$shim" ] || fail "no $shim"
need_stub
mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" app "$work/images/app.bin" 200000

preloaded() {
  LD_PRELOAD="$shim${LD_PRELOAD:+:$LD_PRELOAD}" EG_FAKEUSB_DIR="$work/sim" EG_FAKEUSB_IDS=07=303a:1001 \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}

start_espsim --fast --count 7 --pty "$work/sim" --pty-lines --flash-dir "$work/flash" --event-log "$work/ev" \
  --fault slot04:not_in_download_mode --slot slot07:chip=esp32c3,port=usb-serial-jtag

cat >"$work/rack.yaml" <<YAML
station: serial-bench
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
  - {slot: B1, path: sim/slot01}
  - {slot: B2, path: sim/slot02}
  - {slot: B3, path: sim/slot03}
  - {slot: B4, path: sim/slot04}
  - {slot: B5, usb: {vid: 0x10c4, pid: 0xea60, serial: "ESPSIM-05"}}
  - {slot: B6, usb: {location: "1-1.6"}}
YAML

set +e
(cd "$work" && preloaded "$espgang" flash rack.yaml) >"$work/out" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "exit $rc, expected 1 (board 4 cannot enter download mode)"

for i in 1 2 3 5 6; do
  [ "$(q "select result || ' ' || attempt || ' ' || (reset_ms > 0) || ' ' || (after_ms >= 100) || ' ' || baud from units where slot = 'B$i'")" = "pass 1 1 1 921600" ] ||
    fail "B$i: $(q "select result, attempt, reset_ms, after_ms, baud, error_code, message from units where slot = 'B$i'")"
  f=$(sim_field $i flash)
  cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/app.bin")" "$f" "$work/images/app.bin" || fail "B$i flash"
  # The lines reset it into the bootloader, and the hard reset booted the
  # application (espsim's event log says so).
  grep -q "download mode" "$work/ev/slot0$i.log" || fail "B$i: no reset into download mode"
  grep -q "app" "$work/ev/slot0$i.log" || fail "B$i: no app boot after the hard reset"
done
# The USB-matched slots were found through libserialport's list.
[ "$(q "select port from units where slot = 'B5'")" = /dev/ttyESPSIM05 ] || fail "B5 port: $(q "select port from units where slot = 'B5'")"
[ "$(q "select port from units where slot = 'B6'")" = /dev/ttyESPSIM06 ] || fail "B6 port: $(q "select port from units where slot = 'B6'")"
[ "$(q "select count(*) from units where slot = 'B4' and result = 'fail' and fail_stage = 'sync' and error_code = 'NOT_DOWNLOAD_MODE' and message like '%boot:0x13 (SPI_FAST_FLASH_BOOT)%'")" = 2 ] ||
  fail "B4: $(q "select attempt, result, fail_stage, error_code, message from units where slot = 'B4'")"

# The esptool-style command on one board, which runs its application now:
# only default_reset brings it back into the bootloader.
"$mkimage" app "$work/images/app2.bin" 150000
set +e
preloaded "$espgang" -p "$work/sim/slot02" -b 460800 --before default_reset --after hard_reset \
  --stub "$stub_dir" write_flash 0x10000 "$work/images/app2.bin" >"$work/cli.out" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "write_flash over the libserialport backend: exit $rc"
cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/app2.bin")" "$(sim_field 2 flash)" "$work/images/app2.bin" || fail "slot02 flash after write_flash"
# A -p port that is a chip's own USB-Serial/JTAG (303a:1001 in the OS's
# port list): the esptool-style command resets it the way that port needs
# (esptool's USBJTAGSerialReset), as a manifest slot would.
"$mkimage" --chip-id 5 app "$work/images/c3.bin" 100000
set +e
preloaded "$espgang" -p "$work/sim/slot07" --chip esp32c3 --before default_reset --after hard_reset \
  --stub "$stub_dir" write_flash 0x10000 "$work/images/c3.bin" >"$work/cli.out" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || fail "write_flash to a USB-Serial/JTAG port: exit $rc"
cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/c3.bin")" "$(sim_field 7 flash)" "$work/images/c3.bin" || fail "slot07 flash"
grep -q "download mode" "$work/ev/slot07.log" || fail "slot07: no reset into download mode"
# A slot bound to its USB location (issue 10: not to a /dev/ttyACMn name):
# a C3 whose USB-Serial/JTAG port re-enumerates on every reset comes back
# under another device name (fakeusb names each enumeration after its pty);
# the unit follows the location, and its log says so.
stop_espsim
start_espsim --fast --count 1 --pty "$work/sim2" --pty-lines --flash-dir "$work/flash2" --usb-reenum-ms 300 \
  --slot slot01:chip=esp32c3,port=usb-serial-jtag,usb_reenumerate=true
cat >"$work/usb.yaml" <<YAML
station: usb-location
chip: esp32c3
images:
  - {offset: 0x10000, file: images/c3.bin}
baud: 460800
before: default_reset
after: hard_reset
stub: $stub_dir
retries: 0
database: usb.db
ports:
  - {slot: U1, usb: {location: "1-1.1"}}
YAML
renamed() {
  LD_PRELOAD="$shim${LD_PRELOAD:+:$LD_PRELOAD}" EG_FAKEUSB_DIR="$work/sim2" EG_FAKEUSB_IDS=01=303a:1001 \
    EG_FAKEUSB_RENAME=1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}
first=$(renamed "$espgang" ports --json | sed -n 's/^{"name":"\(\/dev\/ttyESPSIM01p[0-9]*\)".*/\1/p')
[ -n "$first" ] || fail "no renamed fake port listed"
set +e
(cd "$work" && renamed "$espgang" flash usb.yaml) >"$work/out" 2>&1
rc=$?
set -e
uq() { sqlite3 -batch -noheader "$work/usb.db" "$1"; }
[ $rc -eq 0 ] || fail "USB-location slot: exit $rc: $(uq "select result, fail_stage, error_code, message, fallback_log from units")"
[ "$(uq "select port from units")" = "$first" ] || fail "U1 started on $(uq "select port from units"), not $first"
uq "select fallback_log from units" | grep -q "port $first came back as /dev/ttyESPSIM01p[0-9]* (USB location 1-1.1)" ||
  fail "no rename in the log: $(uq "select port_wait_ms, fallback_log from units")"
[ "$(uq "select port_wait_ms > 0 and transport = 'usb-serial-jtag' from units")" = 1 ] ||
  fail "U1: $(uq "select port_wait_ms, transport from units")"
cmp -s -i 65536:0 -n "$(stat -c %s "$work/images/c3.bin")" "$(sim_field 1 flash)" "$work/images/c3.bin" || fail "U1 flash"
echo "libserialport backend: resets into download mode, hard resets into the app, USB matching, a bad circuit diagnosed"
