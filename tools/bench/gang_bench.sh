#!/usr/bin/env bash
# gang_bench - the scaling table alone: espgang gang-flashing racks of N
# simulated boards (espsim at its hardware-like timing), one run per size,
# printed and not written anywhere. The whole report (repeats and spread,
# per-stage attribution, esptool-js side by side) is tools/bench/bench.mjs,
# which writes tools/bench/RESULTS.md.
#
# usage: tools/bench/gang_bench.sh [BUILD_DIR] [N ...]     (default: build 1 16 32)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 16 32)
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (tools/install-deps)" >&2; exit 2; }
list=$(IFS=,; echo "${counts[*]}")
exec node tools/bench/bench.mjs --build "$build" --boards "$list" --attrib none --peer none --repeat 1 --no-write
