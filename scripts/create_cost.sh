#!/usr/bin/env bash
# Shoal's CPU per create, an old Shoal against a new one in one session: for each binary in
# turn (OLD, NEW, then again, ROUNDS times), a fresh `shoal sim` fleet of 1,000 engines x 30
# containers, `shoal manage` over it, and once every reservation is known, `wrk` (a C client,
# so the load costs little) makes unnamed creates with placement expressions at 16
# connections for 8 s (scripts/create_cost.lua: shoal-bench's shapes but for its host port). Prints
# creates done, Shoal's CPU (utime + stime) over them and per create, and Shoal's idle CPU
# in 4 s before (periodic refreshes), which the per-create figure includes.
#
#   scripts/create_cost.sh OLD_SHOAL NEW_SHOAL [ROUNDS]
#   PERF=1 scripts/create_cost.sh ...     # also `perf record -g` each run (target/bench/)
#   CONNS=4 scripts/create_cost.sh ...    # another number of connections (16 when not set)
#   ENGINES=5000 scripts/create_cost.sh ... # another fleet size (1,000 when not set; one sim process, so at most ~5,000 here)
#
# Needs wrk (Debian: wrk). Ports: engines from 20000, Shoal on 19990.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old shoal binary}
new=${2:?new shoal binary}
rounds=${3:-2}
engines=${ENGINES:-1000} per=30 port_base=20000 api=19990 conns=${CONNS:-16}
mkdir -p target/bench
# shellcheck source=scripts/create_fleet.sh
source scripts/create_fleet.sh
tick() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

run() {
    local side=$1 bin=$2 dir shoal
    dir=$(mktemp -d /tmp/create-cost-XXXX)
    start_fleet "$bin" "$dir"
    "$bin" manage "file://$dir/addrs" -H 127.0.0.1:$api --log-level warn >"$dir/manage.log" 2>&1 &
    shoal=$!
    pids+=($shoal)
    wait_known "$side" "$dir" $shoal
    local a b idle n
    a=$(tick $shoal); sleep 4; b=$(tick $shoal); idle=$((b - a))
    local perf=
    if [[ -n ${PERF:-} ]]; then
        perf record -F 499 -g -p $shoal -o "target/bench/create-$side-$(date -u +%H%M%S).perf" \
            -- sleep 8 >/dev/null 2>&1 &
        perf=$!
    fi
    a=$(tick $shoal)
    n=$(wrk -t1 -c$conns -d8s -s scripts/create_cost.lua "http://127.0.0.1:$api" | awk '/requests in/ {print $1}')
    b=$(tick $shoal)
    [[ -z $perf ]] || wait $perf
    echo "$side: $n creates in 8 s at $conns connections, Shoal CPU $(((b - a) * 1000 / hz)) ms = $(((b - a) * 1000000 / hz / n)) µs/create (idle before: $((idle * 1000 / hz)) ms in 4 s)"
    kill $sim $shoal 2>/dev/null || true
    wait $sim $shoal 2>/dev/null || true
    rm -rf "$dir"
}

for round in $(seq 1 "$rounds"); do
    echo "### round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    run old "$old"
    run new "$new"
done
