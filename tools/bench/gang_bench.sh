#!/usr/bin/env bash
# gang_bench - how espgang drives a rack: one event loop, every port at its
# own line rate. Starts espsim with N boards at its realistic (hardware-like)
# timing, gang-flashes a 1.39 MB application (the size of esptool's published
# 921600-baud figure) plus bootloader and partition table, and prints:
#   - wall time of the whole run and of each unit (all units overlap),
#   - effective throughput per board and for the rack,
#   - espgang's CPU time and share of one core, its peak memory,
#   - espsim's CPU share (the simulated rack's cost, for scale).
# Figures, not pass/fail: compare a single board against esptool's published
# ~13.5 s for this image, and N boards against N x that.
#
# usage: tools/bench/gang_bench.sh [BUILD_DIR] [N ...]     (default: build 1 16 32)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${1:-build}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 16 32)
build=$(cd "$build" && pwd)
espgang=$build/src/espgang espsim=$build/tools/espsim/espsim mkimage=$build/mkimage
[ -x "$espgang" ] && [ -x "$espsim" ] || { echo "build first: cmake --build $build" >&2; exit 2; }
[ -f node_modules/esptool-js/package.json ] || npm ci --no-audit --no-fund --loglevel=error
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (tools/install-deps)" >&2; exit 2; }

work=$(mktemp -d)
sim=
trap '[ -n "$sim" ] && kill -TERM $sim 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/images"
"$mkimage" bootloader "$work/images/bootloader.bin"
"$mkimage" partitions "$work/images/partitions.bin"
"$mkimage" app "$work/images/app.bin" 1388912
app_bytes=$(stat -c %s "$work/images/app.bin")
total_bytes=$((app_bytes + 24160 + 3072))

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

printf '%-6s %9s %9s %9s %11s %11s %9s %9s %9s\n' boards wall_s unit_s unit_max "KB/s/board" "KB/s rack" gang_cpu gang_rss espsim_cpu
for n in "${counts[@]}"; do
  rm -rf "$work/rack" "$work/flash" "$work/espgang.db"*
  cat >"$work/rack.yaml" <<EOF
station: bench
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
ports: [{glob: "rack/slot*"}]
EOF
  "$espsim" --count "$n" --pty "$work/rack" --flash-dir "$work/flash" >"$work/sim.json" 2>"$work/sim.err" &
  sim=$!
  for _ in $(seq 1 200); do grep -q '"ready"' "$work/sim.json" 2>/dev/null && break; sleep 0.05; done
  sim0=$(cpu_ticks $sim)
  t0=$(date +%s.%N)
  (cd "$work" && /usr/bin/time -f '%U %S %M' -o "$work/time" "$espgang" flash rack.yaml --json >"$work/out" 2>&1) || {
    echo "espgang failed with $n boards:" >&2; tail -5 "$work/out" >&2; exit 1; }
  t1=$(date +%s.%N)
  sim1=$(cpu_ticks $sim)
  kill -TERM $sim; wait $sim 2>/dev/null || true; sim=
  read -r user sys rss <"$work/time"
  stats=$(sqlite3 -batch -noheader "$work/espgang.db" \
    "select avg(duration_ms)/1000.0, max(duration_ms)/1000.0, sum(result='pass') from units")
  IFS='|' read -r unit_avg unit_max passed <<<"$stats"
  [ "$passed" = "$n" ] || { echo "only $passed of $n boards passed" >&2; exit 1; }
  awk -v n="$n" -v t0="$t0" -v t1="$t1" -v ua="$unit_avg" -v um="$unit_max" -v u="$user" -v s="$sys" -v rss="$rss" \
      -v b="$total_bytes" -v s0="$sim0" -v s1="$sim1" -v hz="$hz" 'BEGIN {
    wall = t1 - t0
    printf "%-6d %9.1f %9.1f %9.1f %11.1f %11.1f %8.1f%% %7.1fMB %8.1f%%\n", n, wall, ua, um, b / ua / 1000,
           n * b / wall / 1000, 100 * (u + s) / wall, rss / 1024, 100 * (s1 - s0) / hz / wall }'
done
echo "(unit_s: mean time per board, all boards in parallel; gang_cpu: espgang's CPU time as a share of one core;"
echo " espsim_cpu: the simulator's, for the whole rack. esptool's published figure for this image: ~13.5 s on one board.)"
