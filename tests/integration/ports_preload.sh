#!/usr/bin/env bash
# `espgang ports` through libserialport's real enumeration: espsim's ptys
# made USB adapters by tests/preload/fakeusb.c (LD_PRELOAD) must be listed,
# table and --json, with what their fake sysfs says (a CP2102 per slot).
# The JSON lines are compared whole: the output format is the contract.
#
# usage: ports_preload.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
itest_init "$1" "$2"
show_on_fail "$work/ports.json" "$work/ports.txt"
shim=$build/tests/preload/libegfakeusb.so
[ -f "$shim" ] || fail "no $shim"
start_espsim --fast --count 2 --pty "$work/sim"

preloaded() {
  LD_PRELOAD="$shim${LD_PRELOAD:+:$LD_PRELOAD}" EG_FAKEUSB_DIR="$work/sim" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}

preloaded "$espgang" ports --json >"$work/ports.json" || fail "espgang ports --json failed"
for n in 1 2; do
  want="{\"name\":\"/dev/ttyESPSIM0$n\",\"transport\":\"usb\",\"description\":\"CP2102 USB to UART Bridge Controller - ESPSIM-0$n\",\"vid\":4292,\"pid\":60000,\"bus\":1,\"address\":$((n + 1)),\"location\":\"1-1.$n\",\"serial\":\"ESPSIM-0$n\",\"manufacturer\":\"Silicon Labs\",\"product\":\"CP2102 USB to UART Bridge Controller\",\"by_path\":null,\"by_id\":null}"
  grep -qxF "$want" "$work/ports.json" || fail "slot0$n: no line $want"
done
# Every line is one object, and the list is sorted by name.
while IFS= read -r line; do
  case "$line" in "{"*"}") ;; *) fail "not a JSON object: $line" ;; esac
done <"$work/ports.json"
sed -n 's/^{"name":"\([^"]*\)".*/\1/p' "$work/ports.json" >"$work/names"
sort -V -c "$work/names" || fail "ports --json is not sorted by name"

preloaded "$espgang" ports >"$work/ports.txt" || fail "espgang ports failed"
head -n 1 "$work/ports.txt" | grep -q '^PORT  *TYPE  *VID:PID  *LOCATION  *SERIAL  *DESCRIPTION  *BY-ID$' || fail "table header"
grep -Eq '^/dev/ttyESPSIM01 +usb +10c4:ea60 +1-1\.1 +ESPSIM-01 +Silicon Labs CP2102 USB to UART Bridge Controller +-$' "$work/ports.txt" ||
  fail "table row for slot01"

# Without the double the same machine lists no such port.
"$espgang" ports --json | grep -q ttyESPSIM && fail "a fake port without the double"
echo "espgang ports lists the fake USB adapters through libserialport"
