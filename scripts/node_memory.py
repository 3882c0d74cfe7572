#!/usr/bin/env python3
"""What a node costs Shoal at rest: resident memory and open files per engine, old binary
against new, over one simulated fleet per size.

    scripts/node_memory.py --engines 5000 --containers 0,30 --shoal old=/work/old/shoal --shoal new=target/release/shoal

For each containers-per-engine count M: starts the fleet (`shoal sim` processes of at most
2,500 engines, the first `--shoal` binary's), then for each binary `shoal manage` over it,
waits until every node is healthy with every container known and every reservation known,
waits `--settle` seconds (start-up connections close), and reads VmRSS, VmHWM and the open
descriptors from /proc. Per-node fixed memory is the difference between M = 0 runs and
nothing; per-container memory is (RSS at M - RSS at 0) / (N x M). One JSON line per run.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_round import mem_kb, start_fleet, wait_ready  # noqa: E402


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def run(name, exe, listing, engines, per, api_port, settle):
    started = time.time()
    p = subprocess.Popen(
        [exe, "manage", f"file://{listing}", "-H", f"127.0.0.1:{api_port}", "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(api_port, engines, engines * per, limit=float(os.environ.get("READY_LIMIT", "900")))
        ready_s = time.time() - started
        fds_at_ready = fds(p.pid)
        time.sleep(settle)
        out = {
            "binary": name, "engines": engines, "containers_per_engine": per,
            "ready_s": round(ready_s, 1),
            "rss_kb": mem_kb(p.pid, "VmRSS"), "hwm_kb": mem_kb(p.pid, "VmHWM"),
            "fds_at_ready": fds_at_ready, "fds_at_rest": fds(p.pid),
        }
        print(json.dumps(out), flush=True)
        return out
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", type=int, default=5000)
    ap.add_argument("--containers", default="0,30")
    ap.add_argument("--shoal", action="append", required=True, help="name=path")
    ap.add_argument("--port-base", type=int, default=10000)
    ap.add_argument("--api-port", type=int, default=9001)
    ap.add_argument("--settle", type=float, default=5.0)
    args = ap.parse_args()
    bins = [s.split("=", 1) for s in args.shoal]
    tmp = tempfile.mkdtemp(prefix="node-memory-")
    results = []
    for per in [int(c) for c in args.containers.split(",")]:
        sims, listing = start_fleet(bins[0][1], args.engines, per, args.port_base, tmp)
        try:
            for name, exe in bins:
                results.append(run(name, exe, listing, args.engines, per, args.api_port, args.settle))
        finally:
            for s in sims:
                s.send_signal(signal.SIGKILL)
                s.wait()
    by = {(r["binary"], r["containers_per_engine"]): r for r in results}
    for name, _ in bins:
        zero = by.get((name, 0))
        for r in results:
            if r["binary"] != name:
                continue
            line = (f"{name:>5} {r['engines']} x {r['containers_per_engine']}: ready {r['ready_s']} s, "
                    f"RSS {r['rss_kb'] / 1024:.0f} MiB, peak {r['hwm_kb'] / 1024:.0f} MiB, "
                    f"fds {r['fds_at_ready']} at ready, {r['fds_at_rest']} at rest; "
                    f"per engine {r['rss_kb'] * 1024 / r['engines']:.0f} B")
            n = r["engines"] * r["containers_per_engine"]
            if n:
                line += f", per container {r['rss_kb'] * 1024 / n:.0f} B resident, {r['hwm_kb'] * 1024 / n:.0f} B peak"
                if zero:
                    line += f" ({(r['rss_kb'] - zero['rss_kb']) * 1024 / n:.0f} B above the x 0 run)"
            print(line)


if __name__ == "__main__":
    main()
