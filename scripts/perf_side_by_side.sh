#!/usr/bin/env bash
# Issue 16's figures, an old Shoal against a new one in one session: each scenario runs for
# OLD, then NEW, then OLD and NEW again (ROUNDS times), so both see the same machine. The
# harness is the same for both (this tree's `shoal-bench` and `scripts/perf_round.py`,
# given each `shoal` binary), so only Shoal differs.
#
#   scripts/perf_side_by_side.sh OLD_SHOAL NEW_SHOAL [ROUNDS]
#   scripts/perf_side_by_side.sh /tmp/old/shoal target/release/shoal 2
#
# Figures (every line also in target/bench/side-by-side-<date>.txt):
#   - `perf_round.py` at 1,000 and 5,000 × 30: Shoal CPU per `ps -a` and per `/info`, their
#     p50/p99, `ps -a` at 16 clients, VmRSS and VmHWM per container;
#   - `shoal-bench --only cluster --nodes 1000`: start-up, reads, creates and starts (with
#     Shoal's CPU per operation) and peak RSS;
#   - `shoal-bench --only events`: 100 subscribers, 10,000 events at 10,000/s;
#   - `shoal-bench --only proxy`: proxied requests against the simulated engine and, with
#     `--dockerd`, the machine's dockerd (Shoal's CPU per request, the ratio to the engine
#     alone, the added p50).
# Ports: engines from 20000 (perf_round) and 26000 (shoal-bench), below the ephemeral
# range. Needs `cargo build --release -p shoal -p shoal-bench` first.
set -euo pipefail
cd "$(dirname "$0")/.."

old=${1:?old shoal binary}
new=${2:?new shoal binary}
rounds=${3:-2}
bench=target/release/shoal-bench
mkdir -p target/bench
out="target/bench/side-by-side-$(date -u +%Y%m%dT%H%M%SZ).txt"

say() { echo "### $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$out"; }

for round in $(seq 1 "$rounds"); do
    say "round $round: perf_round.py 1,000 x 30"
    python3 scripts/perf_round.py --engines 1000 --shoal "old=$old" --shoal "new=$new" --rounds 1 \
        --lists 20 --infos 1000 --seconds 5 --port-base 20000 --api-port 19990 2>&1 | tee -a "$out"
    for side in old new; do
        bin=$old
        [[ $side == new ]] && bin=$new
        say "round $round, $side: cluster 1,000 x 30"
        "$bench" --shoal "$bin" --only cluster --nodes 1000 --duration 3s --port-base 26000 \
            2>&1 | tee -a "$out" || true
        say "round $round, $side: events"
        "$bench" --shoal "$bin" --only events --nodes 1000 --port-base 26000 --events 10000 \
            2>&1 | tee -a "$out" || true
        say "round $round, $side: proxy"
        "$bench" --shoal "$bin" --only proxy --dockerd unix:///var/run/docker.sock \
            --duration 3s --port-base 26000 2>&1 | tee -a "$out" || true
    done
    say "round $round: perf_round.py 5,000 x 30"
    python3 scripts/perf_round.py --engines 5000 --shoal "old=$old" --shoal "new=$new" --rounds 1 \
        --lists 10 --infos 300 --seconds 3 --port-base 20000 --api-port 19990 2>&1 | tee -a "$out"
done
echo "figures in $out"
