#!/usr/bin/env bash
# esptool's documented workflows, run with espgang in place of esptool
# against espsim (fast timing), over pseudo-terminals, raw TCP or RFC 2217,
# with the flasher stub or ROM only. Every result is checked against the
# simulated chips' flash files, byte for byte. Over RFC 2217 the boards are
# really reset: --before default_reset (esptool's DTR/RTS sequences through
# the simulated auto-reset circuit) and --after hard_reset (the app boots).
#
# usage: cli_workflows.sh BUILD_DIR SOURCE_DIR pty|tcp|rfc2217 stub|rom
set -euo pipefail
transport=$3 mode=$4
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
step() { echo "--- $*"; }

"$mkimage" bootloader "$work/bootloader.bin"
"$mkimage" app "$work/app.bin" 600000

# slot03 drops the connection 40 kB into its session: a multi-port
# command must finish the others and report that one.
start_espsim --fast --count 3 --pty "$work/rack" --tcp 0 --flash-dir "$work/flash" \
  --fault 'slot03:disconnect_after_bytes=40000' --seed 7

# Port of device N for this transport.
port() {
  local key=pty
  [ "$transport" = tcp ] && key=url
  [ "$transport" = rfc2217 ] && key=rfc2217
  sim_field "$1" $key
}
flashfile() { sim_field "$1" flash; }
P1=$(port 1) P2=$(port 2) P3=$(port 3)
F1=$(flashfile 1) F2=$(flashfile 2) F3=$(flashfile 3)
[ -n "$P1" ] && [ -n "$F1" ] || fail "cannot parse espsim's device lines: $(cat "$work/espsim.json")"

if [ "$mode" = stub ]; then
  need_stub
  stub=(--stub "$stub_dir")
else
  stub=(--no-stub)
fi
# Ptys and raw sockets carry no DTR/RTS: esptool users pass the same options.
if [ "$transport" = rfc2217 ]; then
  opts=(--chip esp32 --before default_reset --after hard_reset "${stub[@]}")
else
  opts=(--chip esp32 --before no_reset --after no_reset "${stub[@]}")
fi

# region_equals FLASHFILE OFFSET FILE
region_equals() { cmp -s -i "$2:0" -n "$(stat -c %s "$3")" "$1" "$3"; }
all_ff() { cmp -s -n "$(stat -c %s "$1")" "$1" <(head -c "$(stat -c %s "$1")" /dev/zero | tr '\0' '\377'); }

step "flash_id"
out=$("$espgang" -p "$P1" "${opts[@]}" flash_id)
echo "$out"
grep -q "Manufacturer: c8" <<<"$out" || fail "flash_id: no manufacturer c8"
grep -q "Device: 4016" <<<"$out" || fail "flash_id: no device 4016"
grep -q "Detected flash size: 4MB" <<<"$out" || fail "flash_id: no 4MB"
grep -q "24:0a:c4:00:00:01" <<<"$out" || fail "flash_id: MAC not shown"

step "chip_id, read_mac (underscore and dash spellings)"
out=$("$espgang" -p "$P2" "${opts[@]}" chip_id)
grep -q "ESP32 has no chip ID; MAC: 24:0a:c4:00:00:02" <<<"$out" || fail "chip_id: $out"
out=$("$espgang" -p "$P2" "${opts[@]}" read-mac)
grep -q "MAC: 24:0a:c4:00:00:02" <<<"$out" || fail "read-mac: $out"

step "flash_id on a terminal: live progress lines with cursor control"
if command -v script >/dev/null; then
  script -qec "$espgang -p $P2 ${opts[*]} flash_id" /dev/null >"$work/tty.out" 2>&1 || fail "flash_id under a terminal failed: $(cat "$work/tty.out")"
  grep -q $'\x1b\[' "$work/tty.out" || fail "no cursor control on a terminal"
  grep -q "Manufacturer: c8" "$work/tty.out" || fail "flash_id result missing on a terminal"
fi

step "write_flash -z --flash_mode dio --flash_freq 80m --flash_size 4MB 0x0 app.bin"
"$espgang" -p "$P1" "${opts[@]}" write_flash -z --flash_mode dio --flash_freq 80m --flash_size 4MB 0x0 "$work/app.bin"
region_equals "$F1" 0 "$work/app.bin" || fail "app.bin at 0x0 differs"

step "write_flash 0x1000 bootloader.bin (header kept)"
"$espgang" -p "$P1" "${opts[@]}" write-flash 0x1000 "$work/bootloader.bin"
region_equals "$F1" 4096 "$work/bootloader.bin" || fail "bootloader at 0x1000 differs"

step "write_flash --flash_mode qio --flash_freq 80m --flash_size 4MB 0x1000 bootloader.bin (header patched)"
"$espgang" -p "$P1" "${opts[@]}" write_flash --flash_mode qio --flash_freq 80m --flash_size 4MB 0x1000 "$work/bootloader.bin"
hdr=$(od -An -tx1 -j $((0x1002)) -N 2 "$F1" | tr -d ' \n')
[ "$hdr" = "002f" ] || fail "header bytes 2-3 are $hdr, expected 00 2f (qio, 4MB|80m)"
"$espgang" -p "$P1" "${opts[@]}" verify_flash --flash_mode qio --flash_freq 80m --flash_size 4MB 0x1000 "$work/bootloader.bin" ||
  fail "verify_flash of the patched bootloader failed"
if "$espgang" -p "$P1" "${opts[@]}" verify_flash 0x1000 "$work/bootloader.bin" >/dev/null 2>&1; then
  fail "verify_flash of the unpatched file passed against patched flash"
fi

step "write_flash 0x200800 (inside a sector): warned, the sector's first bytes erased, the image written"
"$espgang" -p "$P1" "${opts[@]}" write_flash 0x200000 "$work/bootloader.bin" 2>/dev/null || fail "write_flash 0x200000"
all_ff <(tail -c +$((0x200000 + 1)) "$F1" | head -c 2048) && fail "nothing written at 0x200000 to be erased"
"$espgang" -p "$P1" "${opts[@]}" write_flash 0x200800 "$work/bootloader.bin" 2>"$work/warn.err" || fail "unaligned write_flash: $(cat "$work/warn.err")"
grep -q "^espgang: warning: image .*bootloader.bin at 0x00200800 is not aligned to a 0x1000-byte flash sector: the 2048 bytes 0x00200000..0x002007ff before it will be erased$" "$work/warn.err" ||
  fail "no erase warning: $(cat "$work/warn.err")"
region_equals "$F1" $((0x200800)) "$work/bootloader.bin" || fail "bootloader at 0x200800 differs"
all_ff <(tail -c +$((0x200000 + 1)) "$F1" | head -c 2048) || fail "the sector's first 2048 bytes were not erased"

step "read_flash 0 0x400000 fileread.bin"
"$espgang" -p "$P1" "${opts[@]}" read_flash 0 0x400000 "$work/fileread.bin"
cmp -s "$work/fileread.bin" "$F1" || fail "read_flash result differs from the flash"

step "erase_region 0x0 0x1000"
cp "$F1" "$work/before-erase.bin"
"$espgang" -p "$P1" "${opts[@]}" erase_region 0x0 0x1000
all_ff <(head -c 4096 "$F1") || fail "erase_region left data"
cmp -s -i 4096:4096 "$F1" "$work/before-erase.bin" || fail "erase_region changed flash beyond 0x1000"

step "erase_flash"
"$espgang" -p "$P1" "${opts[@]}" erase_flash
all_ff "$F1" || fail "erase_flash left data"

step "multi-port write_flash 0x10000 app.bin on 3 ports, one of which disconnects"
set +e
"$espgang" -p "$P1" -p "$P2" -p "$P3" "${opts[@]}" write_flash 0x10000 "$work/app.bin" >"$work/multi.out" 2>&1
rc=$?
set -e
cat "$work/multi.out"
[ $rc -eq 1 ] || fail "multi-port exit code $rc, expected 1 (one port failed)"
region_equals "$F1" $((0x10000)) "$work/app.bin" || fail "port 1 not written"
region_equals "$F2" $((0x10000)) "$work/app.bin" || fail "port 2 not written"
grep -q "slot03.*FAIL\|FAIL.*slot03\|127.0.0.1:[0-9]*.*FAIL" "$work/multi.out" || grep -q "FAIL" "$work/multi.out" || fail "the failing port is not reported"
grep -q "2 of 3 ports succeeded" "$work/multi.out" || fail "summary line missing"

step "bad input: one-line errors"
set +e
"$espgang" -p "$P2" "${opts[@]}" write_flash 0x10000 "$work/missing.bin" 2>"$work/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "missing image: exit $rc, expected 2"
grep -q "missing.bin" "$work/err" || fail "missing image error does not name the file"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "error is not one line: $(cat "$work/err")"
step "ports"
"$espgang" ports >"$work/ports.txt" || fail "espgang ports failed"
"$espgang" ports --json >"$work/ports.json" || fail "espgang ports --json failed"
while read -r line; do
  case "$line" in "{"*"}") ;; *) fail "ports --json line is not an object: $line" ;; esac
done <"$work/ports.json"
echo "all workflows passed ($transport, $mode)"
