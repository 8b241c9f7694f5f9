#!/usr/bin/env bash
# reflash_bench - what fast reflashing (skip_flashed) saves. One espsim rack
# of N boards at its realistic timing, the gang bench's images (1.39 MB
# application, bootloader, partition table) at 921600 baud with the stub:
#   1. a first flash of blank boards,
#   2. the same manifest again with skip_flashed: true (every region already
#      holds its image: each is hashed on the chip and skipped),
#   3. a new application with skip_flashed: true (bootloader and partition
#      table skipped, the application written).
# Prints each run's wall time, mean time per unit and what happened to the
# images (from the log), and the ratio to the first flash. Figures, not
# pass/fail.
#
# usage: tools/bench/reflash_bench.sh [BUILD_DIR] [N]     (default: build 16)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=$(cd "${1:-build}" && pwd)
n=${2:-16}
espgang=$build/src/espgang espsim=$build/tools/espsim/espsim mkimage=$build/mkimage
[ -x "$espgang" ] && [ -x "$espsim" ] || { echo "build first: cmake --build $build" >&2; exit 2; }
[ -f node_modules/esptool-js/package.json ] || npm ci --no-audit --no-fund --loglevel=error

work=$(mktemp -d)
sim=
trap '[ -n "$sim" ] && kill -TERM $sim 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" partitions "$work/images/partitions.bin"
"$mkimage" app "$work/images/app.bin" 1388912

manifest() { # $1: skip_flashed
  cat >"$work/rack.yaml" <<EOF
station: reflash-bench
chip: esp32
images:
  - {offset: 0x1000, file: images/bootloader.bin}
  - {offset: 0x8000, file: images/partitions.bin}
  - {offset: 0x10000, file: images/app.bin}
flash: {mode: dio, freq: 40m, size: detect}
baud: 921600
before: no_reset
after: no_reset
stub: $root/node_modules/esptool-js/lib/targets/stub_flasher
retries: 0
skip_flashed: $1
ports: [{glob: "rack/slot*"}]
EOF
}

"$espsim" --count "$n" --pty "$work/rack" --flash-dir "$work/flash" >"$work/sim.json" 2>"$work/sim.err" &
sim=$!
for _ in $(seq 1 200); do grep -q '"ready"' "$work/sim.json" 2>/dev/null && break; sleep 0.05; done

q() { sqlite3 -batch -noheader "$work/espgang.db" "$1"; }
first=
printf '%-34s %8s %8s %7s  %s\n' run wall_s unit_s ratio "images (written/verified/skipped)"
run() { # $1: label
  local t0 t1 run_id
  t0=$(date +%s.%N)
  (cd "$work" && "$espgang" flash rack.yaml --json >"$work/out" 2>&1) || {
    echo "espgang failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
  t1=$(date +%s.%N)
  run_id=$(q "select max(id) from runs")
  [ "$(q "select count(*) from units where run_id = $run_id and result = 'pass'")" = "$n" ] ||
    { echo "$1: not every board passed" >&2; exit 1; }
  local unit actions wall
  unit=$(q "select avg(duration_ms) / 1000.0 from units where run_id = $run_id")
  actions=$(q "select sum(action = 'written') || '/' || sum(action = 'verified') || '/' || sum(action = 'skipped')
               from unit_images i join units u on u.id = i.unit_id where u.run_id = $run_id")
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  [ -n "$first" ] || first=$wall
  printf '%-34s %8s %8.1f %6.2fx  %s\n' "$1" "$wall" "$unit" "$(awk -v w="$wall" -v f="$first" 'BEGIN { print w / f }')" "$actions"
}

manifest false
run "first flash ($n boards)"
manifest true
run "again, skip_flashed: true"
"$mkimage" app "$work/images/app.bin" 1388912 7   # another application
run "new app, skip_flashed: true"
echo "(unit_s: mean time per board, all boards in parallel; ratio: wall time against the first flash)"
