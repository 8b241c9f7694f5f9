# lib.sh - shared by the integration scripts (sourced, not run).
#
#   itest_init BUILD_DIR SOURCE_DIR   sets espgang, espsim, mkimage, src, work
#                                     (a scratch dir) and the EXIT trap
#   show_on_fail FILE...              print these files if the script fails
#   need_stub                         esptool-js's stub files (npm ci if missing)
#   start_espsim ARGS...              espsim in the background ($sim), its JSON
#                                     lines in $work/espsim.json; waits for ready
#   stop_espsim                       SIGTERM and wait
#   sim_field N KEY                   KEY of espsim's device N ("pty", "url", ...)
#   q SQL                             one query on $work/espgang.db
#   fail MESSAGE                      print and exit 1
# KEEP=1 keeps the scratch dir for a look afterwards.

itest_init() {
  build=$1 src=$2
  espgang=$build/src/espgang
  espsim=$build/tools/espsim/espsim
  mkimage=$build/mkimage
  stub_dir=$src/node_modules/esptool-js/lib/targets/stub_flasher
  work=$(mktemp -d)
  sim=
  _itest_show=()
  trap _itest_cleanup EXIT
}

show_on_fail() { _itest_show+=("$@"); }

_itest_cleanup() {
  local rc=$?
  [ -n "${gang:-}" ] && kill -KILL "$gang" 2>/dev/null
  [ -n "$sim" ] && kill -TERM "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
  if [ $rc -ne 0 ]; then
    local f
    for f in "${_itest_show[@]}" "$work/espsim.err"; do
      [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 40 "$f"; }
    done
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need_stub() {
  [ -f "$stub_dir/esp32.json" ] || (cd "$src" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

start_espsim() {
  "$espsim" "$@" >"$work/espsim.json" 2>"$work/espsim.err" &
  sim=$!
  local _
  for _ in $(seq 1 200); do
    grep -q '"ready"' "$work/espsim.json" 2>/dev/null && return 0
    kill -0 "$sim" 2>/dev/null || break
    sleep 0.05
  done
  fail "espsim did not start"
}

stop_espsim() {
  kill -TERM "$sim"
  wait "$sim" || true
  sim=
}

sim_field() { sed -n "s/.*\"index\":$1,.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$work/espsim.json" | head -n 1; }

q() { sqlite3 -batch -noheader "$work/espgang.db" "$1"; }
