#!/usr/bin/env bash
# Runs Shoal's whole benchmark: the placer alone, then the cluster benchmark at 100, 1,000
# and 5,000 simulated engines (30 containers each), event fan-in, and proxy overhead against
# a simulated engine and, read-only, the machine's own dockerd when there is one.
#
#   scripts/bench.sh                 # everything; output also in target/bench/<date>.txt
#   scripts/bench.sh --nodes 1000    # extra arguments go to `shoal bench`
#
# Needs about 3 × 5,000 + a few hundred open files per process (`ulimit -n`).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins --examples
mkdir -p target/bench
out="target/bench/$(date -u +%Y%m%dT%H%M%SZ).txt"

{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || true)"
  echo "# nproc $(nproc), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), ulimit -n $(ulimit -n)"
  echo "## placer alone: cargo run --release --example placement_bench"
  target/release/examples/placement_bench
  dockerd=()
  if [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1; then
    dockerd=(--dockerd unix:///var/run/docker.sock)
  fi
  echo "## cluster: shoal bench ${dockerd[*]} $*"
  target/release/shoal bench "${dockerd[@]}" "$@"
} 2>&1 | tee "$out"
echo "saved in $out"
