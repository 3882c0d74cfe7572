#!/usr/bin/env bash
# Instructions Shoal executes per create, an old Shoal against a new one: a count that does
# not move with the machine's load, unlike CPU time. For each binary in turn (ROUNDS times):
# a `shoal sim` fleet of 100 engines x 30 containers, `shoal manage` under
# `valgrind --tool=callgrind` with instrumentation off until every reservation is known, then
# on for 30 s of unnamed creates by `wrk -c4` (scripts/create_cost.lua). Callgrind serializes
# Shoal's threads, so its creates/s are no speed figure; what counts is instructions per create.
#
#   scripts/create_instructions.sh OLD_SHOAL NEW_SHOAL [ROUNDS]
#
# Needs valgrind and wrk (Debian: valgrind, wrk). Ports: engines from 21000, Shoal on 19980.
# callgrind_annotate target/bench/create-<side>-<time>.callgrind.1 shows where they go. Note
# that valgrind counts a `rep stosb` memset byte by byte, so zeroing weighs far more here than
# in CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old shoal binary}
new=${2:?new shoal binary}
rounds=${3:-1}
engines=100 per=30 port_base=21000 api=19980
mkdir -p target/bench
# shellcheck source=scripts/create_fleet.sh
source scripts/create_fleet.sh
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

run() {
    local side=$1 bin=$2 dir shoal out
    dir=$(mktemp -d /tmp/create-instr-XXXX)
    out="target/bench/create-$side-$(date -u +%H%M%S).callgrind"
    start_fleet "$bin" "$dir"
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bin" manage "file://$dir/addrs" -H 127.0.0.1:$api --log-level warn >"$dir/manage.log" 2>&1 &
    shoal=$!
    pids+=($shoal)
    wait_known "$side" "$dir" $shoal
    sleep 3
    callgrind_control -i on $shoal >/dev/null 2>&1
    local n
    n=$(wrk -t1 -c4 -d30s -s scripts/create_cost.lua "http://127.0.0.1:$api" | awk '/requests in/ {print $1}')
    callgrind_control -i off $shoal >/dev/null 2>&1
    callgrind_control -d $shoal >/dev/null 2>&1
    sleep 2
    kill $sim $shoal 2>/dev/null || true
    wait $sim $shoal 2>/dev/null || true
    local ir
    ir=$(grep -h '^totals:' "$out"* | awk '{s += $2} END {printf "%.0f", s}')
    echo "$side: $n creates, $ir instructions = $((ir / n)) per create ($out)"
    rm -rf "$dir"
}

for round in $(seq 1 "$rounds"); do
    run old "$old"
    run new "$new"
done
