#!/usr/bin/env bash
# The ESP32 family end to end (issue 10): one gang run over a mixed
# simulated rack - ESP32, S2, S3, C2, C3, C5, C6, C61, H2, P4 and ESP8266 -
# every board reset into its loader over RFC 2217 with the sequence its port
# needs, including USB-Serial/JTAG boards, a USB-OTG board and a
# USB-Serial/JTAG board that re-enumerate on reset, a chip in Secure
# Download Mode (flashed the way its ROM allows: no stub, raw writes, no MD5)
# and a chip with flash encryption on (refused before anything is written).
# Images are per chip (chip: auto), each with its chip's id in the header.
# Every row of the log and every flash file is checked; then a second run
# with skip_flashed rewrites nothing; then esptool's commands on a few chips,
# and an image for the wrong chip refused.
#
# usage: family.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/out" "$work/out2" "$work/cli"
need_stub
cd "$work"

# slot: chip, IMAGE_CHIP_ID, bootloader offset, espsim settings, manifest transport
rack=(
  "esp32    0  0x1000 chip=esp32                                        uart"
  "esp32s3  9  0x0    chip=esp32s3,port=usb-serial-jtag                 usb-serial-jtag"
  "esp32c3  5  0x0    chip=esp32c3                                      uart"
  "esp32c6  13 0x0    chip=esp32c6,port=usb-serial-jtag                 usb-serial-jtag"
  "esp32h2  16 0x0    chip=esp32h2                                      uart"
  "esp32p4  18 0x2000 chip=esp32p4,port=usb-serial-jtag                 usb-serial-jtag"
  "esp8266  -1 0x0    chip=esp8266                                      uart"
  "esp32s3  9  0x0    chip=esp32s3,port=usb-otg                         usb-otg"
  "esp32c3  5  0x0    chip=esp32c3,secure_download_mode=true            uart"
  "esp32c6  13 0x0    chip=esp32c6,flash_encryption=true                uart"
  "esp32s2  2  0x1000 chip=esp32s2                                      uart"
  "esp32c2  12 0x0    chip=esp32c2,crystal=26                           uart"
  "esp32c5  23 0x2000 chip=esp32c5                                      uart"
  "esp32c61 20 0x0    chip=esp32c61                                     uart"
  "esp32c3  5  0x0    chip=esp32c3,port=usb-serial-jtag,usb_reenumerate=true usb-serial-jtag"
  "esp32p4  18 0x2000 chip=esp32p4,revision=v3.1                        uart"
)
n=${#rack[@]}
slot() { printf 'slot%02d' "$1"; }
field() { echo "${rack[$(($1 - 1))]}" | awk "{print \$$2}"; }

# Images per chip: a bootloader at the chip's offset and an app at 0x10000,
# each carrying the chip's IMAGE_CHIP_ID (the ESP8266 format has none).
declare -A done_chip=()
for i in $(seq 1 $n); do
  chip=$(field "$i" 1) id=$(field "$i" 2)
  [ -n "${done_chip[$chip]:-}" ] && continue
  done_chip[$chip]=1
  mkdir -p "img/$chip"
  opt=(); [ "$id" -ge 0 ] && opt=(--chip-id "$id")
  "$mkimage" "${opt[@]}" bootloader "img/$chip/bootloader.bin"
  "$mkimage" "${opt[@]}" app "img/$chip/app.bin" 60000 $((0x100 + ${id#-}))
done

args=()
for i in $(seq 1 $n); do args+=(--slot "$(slot "$i"):$(field "$i" 4)"); done
start_espsim --fast --count "$n" --tcp 0 --flash-dir "$work/flash" --event-log "$work/ev" --usb-reenum-ms 300 "${args[@]}"

{
  cat <<EOF
station: family-bench
chip: auto
images:
EOF
  for chip in $(printf '%s\n' "${!done_chip[@]}" | sort); do
    off=
    for i in $(seq 1 $n); do [ "$(field "$i" 1)" = "$chip" ] && { off=$(field "$i" 3); break; }; done
    echo "  $chip:"
    echo "    - {offset: $off, file: img/$chip/bootloader.bin}"
    echo "    - {offset: 0x10000, file: img/$chip/app.bin}"
  done
  cat <<EOF
baud: 460800
before: default_reset
after: hard_reset
stub: $stub_dir
retries: 0
ports:
EOF
  for i in $(seq 1 $n); do
    url=$(sim_field "$i" rfc2217)
    [ -n "$url" ] || fail "no rfc2217 URL for board $i"
    echo "  - {slot: $(slot "$i"), url: \"$url\", transport: $(field "$i" 5)}"
  done
} >family.yaml

set +e
"$espgang" flash family.yaml --timing-log timing.jsonl >out 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "exit $rc, expected 1 (the encrypted board is refused)"

# Every board but the encrypted one passed, its chip recognised, its images
# on its flash at its chip's offsets.
for i in $(seq 1 $n); do
  s=$(slot "$i") chip=$(field "$i" 1) off=$(field "$i" 3)
  case $i in
    10)
      [ "$(q "select result || ' ' || error_code || ' ' || flash_encryption from units where slot = '$s'")" = "fail SECURITY 1" ] ||
        fail "$s (flash encryption): $(q "select result, error_code, flash_encryption, message from units where slot = '$s'")"
      f=$(sim_field "$i" flash)
      [ "$(od -An -tx1 -N16 -j 65536 "$f" | tr -d ' \n')" = "ffffffffffffffffffffffffffffffff" ] || fail "$s: written despite encryption"
      continue
      ;;
  esac
  [ "$(q "select result from units where slot = '$s'")" = pass ] ||
    fail "$s ($chip): $(q "select result, fail_stage, error_code, message from units where slot = '$s'")"
  f=$(sim_field "$i" flash)
  cmp -s -i "$((off)):0" -n "$(stat -c %s "img/$chip/bootloader.bin")" "$f" "img/$chip/bootloader.bin" ||
    fail "$s ($chip): bootloader not at $off"
  cmp -s -i 65536:0 -n "$(stat -c %s "img/$chip/app.bin")" "$f" "img/$chip/app.bin" || fail "$s ($chip): app not at 0x10000"
done

# The log knows each chip, its transport and its security state.
[ "$(q "select count(distinct chip) from units")" = 11 ] || fail "chips: $(q "select slot, chip from units")"
[ "$(q "select chip from units where slot = 'slot07'")" = ESP8266 ] || fail "slot07 chip"
[ "$(q "select chip from units where slot = 'slot06'")" = ESP32-P4 ] || fail "slot06 chip"
# Both P4s ran a stub: each its revision's build (v1.0: esp32p4-rev1.json,
# v3.1: esp32p4.json; espsim resets a chip given the other build's stub).
[ "$(q "select group_concat(rev_major || '.' || rev_minor || ':' || stub, ' ') from (select * from units where chip = 'ESP32-P4' order by slot)")" = "1.0:1 3.1:1" ] ||
  fail "P4 stubs: $(q "select slot, rev_major, rev_minor, stub, message from units where chip = 'ESP32-P4'")"
[ "$(q "select transport from units where slot = 'slot02'")" = usb-serial-jtag ] || fail "slot02 transport: $(q "select transport from units where slot = 'slot02'")"
[ "$(q "select transport from units where slot = 'slot08'")" = usb-otg ] || fail "slot08 transport"
[ "$(q "select transport from units where slot = 'slot01'")" = uart ] || fail "slot01 transport"
# Secure Download Mode: recorded, no stub, no MAC (the ROM refuses register
# reads), images written but not verified (no MD5 in SDM).
[ "$(q "select secure_download || ' ' || stub || ' ' || coalesce(mac, '-') from units where slot = 'slot09'")" = "1 0 -" ] ||
  fail "slot09 (SDM): $(q "select secure_download, stub, mac from units where slot = 'slot09'")"
[ "$(q "select group_concat(action) from unit_images where unit_id = (select id from units where slot = 'slot09')")" = "written,written" ] ||
  fail "slot09 images: $(q "select * from unit_images where unit_id = (select id from units where slot = 'slot09')")"
[ "$(q "select secure_download from units where slot = 'slot03'")" = 0 ] || fail "slot03 secure_download"
# The USB boards that re-enumerate waited for their port and were not reset twice.
for s in slot08 slot15; do
  [ "$(q "select port_wait_ms > 0 from units where slot = '$s'")" = 1 ] ||
    fail "$s: no port wait recorded: $(q "select port_wait_ms, message from units where slot = '$s'")"
done
# Every other board was verified image by image.
[ "$(q "select count(*) from unit_images where action = 'verified'")" = $(( (n - 2) * 2 )) ] ||
  fail "verified images: $(q "select count(*), action from unit_images group by action")"
# The timing log has a record per request.
grep -q '"op":"FLASH_DEFL_DATA"' timing.jsonl || fail "timing log"

# A second run with skip_flashed: nothing is rewritten where the loader can
# hash (SDM and the encrypted board aside).
sed -i 's/^retries: 0$/retries: 0\nskip_flashed: true/' family.yaml
set +e
"$espgang" flash family.yaml >out2 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "second run: exit $rc"
run2=$(q "select max(id) from runs")
[ "$(q "select count(*) from unit_images i join units u on u.id = i.unit_id where u.run_id = $run2 and i.action = 'skipped'")" = $(( (n - 2) * 2 )) ] ||
  fail "skip_flashed: $(q "select u.slot, i.action from unit_images i join units u on u.id = i.unit_id where u.run_id = $run2")"

# esptool's commands on single chips, over the same rack.
s3=$(sim_field 2 rfc2217) c3=$(sim_field 3 rfc2217) e8266=$(sim_field 7 rfc2217)
{
  "$espgang" -p "$s3" --stub "$stub_dir" flash_id
  "$espgang" -p "$c3" --stub "$stub_dir" --chip esp32c3 read_flash 0x10000 0x1000 c3.bin
  cmp -n 4096 c3.bin img/esp32c3/app.bin
  "$espgang" -p "$e8266" --stub "$stub_dir" erase_region 0x10000 0x1000
  cmp -s -i 65536:0 -n 16 "$(sim_field 7 flash)" /dev/zero && false
  [ "$(od -An -tx1 -N4 -j 65536 "$(sim_field 7 flash)" | tr -d ' \n')" = ffffffff ]
} >cli 2>&1 || fail "esptool commands on S3/C3/ESP8266"
grep -q "Manufacturer:" cli || fail "flash_id output"
# An image built for the C3 offered to the S3: refused before writing.
set +e
"$espgang" -p "$s3" --stub "$stub_dir" write_flash 0x10000 img/esp32c3/app.bin >>cli 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "wrong-chip image: exit $rc"
grep -q "IMAGE_CHIP" cli || fail "wrong-chip image: no IMAGE_CHIP in the output"
grep -q "image is for ESP32-C3" cli || fail "wrong-chip image: reason"
echo "family: $n boards of 11 chips flashed in one run (both ESP32-P4 stub builds); SDM, flash encryption, USB re-enumeration, skip_flashed, CLI"
