#!/usr/bin/env bash
# Runs Shoal's whole benchmark: the placer alone, then the cluster benchmark at 100, 1,000
# and 5,000 simulated engines (30 containers each), event fan-in, and proxy overhead against
# a simulated engine and, when there is one, the machine's own dockerd (on which the bench
# makes one image and one container of its own, and removes them afterwards).
#
#   scripts/bench.sh                 # everything; output also in target/bench/<date>.txt
#   scripts/bench.sh --nodes 1000    # extra arguments go to `shoal-bench`
#   scripts/bench.sh --only proxy    # the proxy-overhead scenarios alone (a few seconds)
#
# Needs about 3 × 5,000 + a few hundred open files per process (`ulimit -n`). Exit status:
# `shoal-bench`'s, so 2 when a scenario was skipped (e.g. no busybox-static for dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."

# `shoal` (the daemon, also the fleet: `shoal sim`), `shoal-bench` and the placer's example.
cargo build --release --bins --examples
mkdir -p target/bench
out="target/bench/$(date -u +%Y%m%dT%H%M%SZ).txt"

# What `shoal-bench` (PID $1) made on the daemon for proxy_dockerd, by the names it uses.
# The bench removes them itself; this covers a bench killed before it could.
remove_leftovers() {
  local pid=$1
  docker rm -f "shoal-bench-proxy-$pid" >/dev/null 2>&1 || true
  docker rmi "shoal-bench/busybox:$pid" >/dev/null 2>&1 || true
}

set +e
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || true)"
  echo "# nproc $(nproc), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), ulimit -n $(ulimit -n)"
  if [[ " $* " != *" --only proxy "* && " $* " != *" --only=proxy "* ]]; then
    echo "## placer alone: cargo run --release -p shoal-bench --example placement_bench"
    target/release/examples/placement_bench
  fi
  dockerd=()
  if [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1; then
    dockerd=(--dockerd unix:///var/run/docker.sock)
  fi
  echo "## cluster: shoal-bench ${dockerd[*]} $*"
  status=0
  target/release/shoal-bench "${dockerd[@]}" "$@" &
  bench=$!
  trap 'kill "$bench" 2>/dev/null || true; wait "$bench" 2>/dev/null || true; remove_leftovers "$bench"' INT TERM
  wait "$bench" || status=$?
  trap - INT TERM
  if [ ${#dockerd[@]} -gt 0 ]; then remove_leftovers "$bench"; fi
  exit "$status"
} 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
echo "saved in $out"
exit "$status"
