#!/usr/bin/env bash
# The bad-input catalogue runner (ctest integration.badinput): every case of
# cases.txt (format there) runs under a timeout against a simulated rack
# whose flash and log already hold a real run. Each case must
#   - finish (a hang is a failure: the timeout's 124),
#   - exit with the case's status,
#   - print exactly ONE line on stderr, matching the case's regex,
#   - leave every byte of every simulated flash (outside the case's allowed
#     ranges) and every row of the log database as they were.
#
# usage: run.sh BUILD_DIR SOURCE_DIR [CASES_FILE] [NAME_REGEX]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
itest_init "$1" "$2"
cases_file=${3:-$here/cases.txt}
only=${4:-}
case_timeout=10
show_on_fail "$work/setup.out"

# ------------------------------------------------------------ the rack, with one real run in its log
W=$work
cp -R "$here/files/." "$W/"
mkdir -p "$W/images" "$W/emptydir"
"$mkimage" bootloader "$W/images/bootloader.bin"
"$mkimage" partitions "$W/images/partitions.bin"
"$mkimage" app "$W/images/app.bin" 20000
head -c 16 /dev/urandom >"$W/images/small.bin"
"$mkimage" --chip-id 5 app "$W/images/c3app.bin" 20000   # an image built for the ESP32-C3
: >"$W/images/empty.bin"
start_espsim --fast --count 2 --pty "$W/rack" --flash-dir "$W/flash" --seed 3
P1=$(sim_field 1 pty) P2=$(sim_field 2 pty)
F1=$(sim_field 1 flash) F2=$(sim_field 2 flash)
[ -n "$P1" ] && [ -n "$F2" ] || fail "cannot parse espsim's device lines: $(cat "$W/espsim.json")"
(cd "$W" && timeout 60 "$espgang" flash good.yaml) >"$W/setup.out" 2>&1 || fail "the setup run failed"
DB=$W/espgang.db
[ "$(q "select count(*) from units where result = 'pass'")" = 2 ] || fail "the setup run did not record 2 passing units"

# ------------------------------------------------------------ the oddities the cases use
for f in fifo.bin fifo.yaml fifo.json fifo.db; do mkfifo "$W/$f"; done
: >"$W/empty.db"
cp "$W/good.yaml" "$W/good.yaml.txt"
head -c $((2 << 20)) /dev/zero | tr '\0' '#' >"$W/big.yaml"                 # 2 MiB of comment
{ printf 'station: '; head -c 200000 /dev/zero | tr '\0' '['; head -c 200000 /dev/zero | tr '\0' ']'; echo; } >"$W/deep.yaml"
{ printf 'station: ['; seq -f '&a%g 1' 0 89999 | paste -sd, -; printf ']\n'; } >"$W/anchors.yaml"   # 90,000 anchors
{ printf 'station: s\nchip: esp32\nports: [{glob: "rack/slot*"}]\nimages:\n'                      # 20,000 images
  printf '  - {offset: 0x10000, file: images/app.bin}\n%.0s' $(seq 20000); } >"$W/many-images.yaml"
{ printf '{"plugins": '; head -c 200000 /dev/zero | tr '\0' '['; head -c 200000 /dev/zero | tr '\0' ']'
  printf ', "text": "AA==", "text_start": 1, "entry": 1}\n'; } >"$W/deep-stub.json"

ESP="-p $P1 --chip esp32 --before no_reset --after no_reset --no-stub"
export espgang W P1 P2 DB ESP

# ------------------------------------------------------------ what must not change
# Every row of the log, one per line (sqlite3's dump: schema and INSERTs).
db_rows() { sqlite3 -batch "$DB" .dump; }
# Is flash file $2 the same as its snapshot $1, except the bytes [a, b)?
same_flash() {
  local ref=$1 cur=$2 a=${3:-0} b=${4:-0}
  [ "$(stat -c %s "$ref")" = "$(stat -c %s "$cur")" ] || return 1
  [ "$b" -le "$a" ] && { cmp -s "$ref" "$cur"; return; }
  { [ "$a" -eq 0 ] || cmp -s -n "$a" "$ref" "$cur"; } && cmp -s -i "$b" "$ref" "$cur"
}
flash_files=("$F1" "$F2")
snapshot() {
  db_rows >"$W/db.before"
  for i in 0 1; do cp "${flash_files[$i]}" "$W/flash.ref.$i"; done
}
snapshot

# ------------------------------------------------------------ the cases
line_re='^([^ ]+) +([0-9]+) +(([a-z]+=[^ ]+ +)*)('"'"'[^'"'"']*'"'"'|"([^"\\]|\\.)*") +-- (.*)$'
passed=0 failed=0 total=0
report_fail() {
  echo "FAIL $name: $*"
  echo "     command: $cmd"
  echo "     exit $rc; stderr:"; sed 's/^/       | /' "$W/case.err" | cat -A | head -n 10 || true
  failed=$((failed + 1))
  snapshot # judge the next case on its own, not on this one's damage
}

while IFS= read -r line || [ -n "$line" ]; do
  [[ -z "${line// /}" || "$line" =~ ^# ]] && continue
  [[ "$line" =~ $line_re ]] || fail "cases.txt: cannot parse: $line"
  name=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]} keys=${BASH_REMATCH[3]} cmd=${BASH_REMATCH[7]}
  eval "regex=${BASH_REMATCH[5]}"
  [ -n "$only" ] && ! [[ "$name" =~ $only ]] && continue
  total=$((total + 1))
  db_rule=same
  allow=("" "")
  for kv in $keys; do
    case "$kv" in
      db=append) db_rule=append ;;
      flash=*) n=${kv#flash=}; n=${n%%:*}; allow[$((n - 1))]=${kv#flash=*:} ;;
      *) fail "cases.txt: $name: unknown key $kv" ;;
    esac
  done

  set +e
  (cd "$W" && timeout -k 2 "$case_timeout" bash -c "$cmd") >"$W/case.out" 2>"$W/case.err" </dev/null
  rc=$?
  set -e
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then report_fail "did not finish within ${case_timeout} s (hung)"; continue; fi
  if [ "$rc" != "$want" ]; then report_fail "exit $rc, want $want"; continue; fi
  nlines=$(wc -l <"$W/case.err")
  if [ "$nlines" != 1 ] || [ -n "$(tail -c 1 "$W/case.err")" ]; then
    report_fail "stderr has $nlines line(s), want exactly one"; continue
  fi
  if ! grep -Eq -- "$regex" "$W/case.err"; then report_fail "stderr does not match: $regex"; continue; fi
  db_rows >"$W/db.after"
  if [ $db_rule = same ] && ! cmp -s "$W/db.before" "$W/db.after"; then
    diff "$W/db.before" "$W/db.after" | head -n 10 || true; report_fail "the log database changed (above)"; continue
  fi
  if [ $db_rule = append ] && grep -vxFf "$W/db.after" "$W/db.before" >"$W/db.lost"; then
    head -n 10 "$W/db.lost"; report_fail "rows of the log database changed or vanished (above)"; continue
  fi
  bad_flash=
  for i in 0 1; do
    a=0 b=0
    if [ -n "${allow[$i]}" ]; then a=$((${allow[$i]%-*})) b=$((${allow[$i]#*-})); fi
    same_flash "$W/flash.ref.$i" "${flash_files[$i]}" "$a" "$b" || bad_flash="$bad_flash device $((i + 1))"
  done
  if [ -n "$bad_flash" ]; then report_fail "simulated flash changed outside the allowed range:$bad_flash"; continue; fi
  [ $db_rule = same ] && [ -z "${allow[0]}${allow[1]}" ] || snapshot # what a case may change is the next one's "before"
  passed=$((passed + 1))
done <"$cases_file"

stop_espsim
echo "badinput: $total cases"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$total" -gt 0 ]
