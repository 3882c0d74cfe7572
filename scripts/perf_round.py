#!/usr/bin/env python3
"""Issue 16's load-independent costs of `ps -a` and `/info`, old binary against new, in one
session over one simulated fleet.

    scripts/perf_round.py --engines 1000 --shoal old=/path/to/old/shoal --shoal new=target/release/shoal

Starts `shoal sim` (the first `--shoal` binary's), then for each binary in turn, `--rounds`
times alternating: `shoal manage` over the fleet, waits for the full view and every
reservation known, and measures Shoal's own CPU time (utime + stime from /proc) per
request, less what the idle process spends in the same time (periodic refreshes), beside
wall times that depend on the machine's load; and resident memory (VmRSS after the reads,
VmHWM) per container. Prints one JSON line per measurement and a table at the end.
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def mem_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {body[:200]!r}")
        return body


def wait_ready(port, nodes, containers, limit=600):
    c = None
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            c = c or Client(port)
            info = json.loads(c.get("/info"))
            healthy = sum(
                1
                for r in info.get("SystemStatus") or []
                if r[0].endswith("└ Status") and r[1] == "Healthy"
            )
            if healthy == nodes and info.get("Containers", 0) >= containers:
                cl = json.loads(c.get("/shoal/api/cluster"))
                pending = sum(n["containers"]["unreserved"] for n in cl["nodes"])
                if pending == 0:
                    return
        except Exception:
            c = None
        time.sleep(0.2)
    raise RuntimeError("shoal never showed the whole fleet")


def quantile(lat, q):
    lat = sorted(lat)
    return lat[min(len(lat) - 1, max(0, int(len(lat) * q + 0.999999) - 1))] * 1e3


def serial(port, pid, path, count):
    c = Client(port)
    c.get(path)
    lat = []
    c0 = cpu_s(pid)
    t0 = time.time()
    size = 0
    for _ in range(count):
        t = time.time()
        size = len(c.get(path))
        lat.append(time.time() - t)
    return lat, cpu_s(pid) - c0, time.time() - t0, size


def concurrent(port, pid, path, clients, seconds):
    done = [0] * clients
    stop = time.time() + seconds

    def worker(i):
        c = Client(port)
        while time.time() < stop:
            c.get(path)
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    c0 = cpu_s(pid)
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), cpu_s(pid) - c0, time.time() - t0


def idle_rate(pid, seconds):
    c0 = cpu_s(pid)
    time.sleep(seconds)
    return (cpu_s(pid) - c0) / seconds


def measure(label, exe, addrs, nodes, per, args):
    port = args.api_port
    log = open(os.path.join(args.dir, f"manage-{label}.log"), "w")
    p = subprocess.Popen(
        [exe, "manage", f"file://{addrs}", "-H", f"127.0.0.1:{port}", "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        t0 = time.time()
        wait_ready(port, nodes, nodes * per)
        ready_s = time.time() - t0
        time.sleep(1)
        rss_ready = mem_kb(p.pid, "VmRSS")
        idle = idle_rate(p.pid, args.idle)
        out = {"binary": label, "nodes": nodes, "containers": nodes * per, "ready_s": round(ready_s, 2)}
        lat, cpu, wall, size = serial(port, p.pid, "/containers/json?all=1", args.lists)
        out["list_bytes"] = size
        out["list_p50_ms"] = round(quantile(lat, 0.5), 1)
        out["list_p99_ms"] = round(quantile(lat, 0.99), 1)
        out["list_cpu_ms"] = round((cpu - idle * wall) * 1e3 / len(lat), 2)
        out["list_cpu_ms_raw"] = round(cpu * 1e3 / len(lat), 2)
        lat, cpu, wall, _ = serial(port, p.pid, "/info", args.infos)
        out["info_p50_ms"] = round(quantile(lat, 0.5), 3)
        out["info_p99_ms"] = round(quantile(lat, 0.99), 3)
        out["info_cpu_us"] = round((cpu - idle * wall) * 1e6 / len(lat), 1)
        out["info_cpu_us_raw"] = round(cpu * 1e6 / len(lat), 1)
        n, cpu, wall = concurrent(port, p.pid, "/containers/json?all=1", 16, args.seconds)
        out["list16_per_s"] = round(n / wall, 1)
        out["list16_cpu_ms"] = round((cpu - idle * wall) * 1e3 / max(n, 1), 2)
        out["idle_cpu_pct"] = round(idle * 100, 1)
        out["rss_ready_mib"] = round(rss_ready / 1024, 1)
        out["rss_after_mib"] = round(mem_kb(p.pid, "VmRSS") / 1024, 1)
        out["hwm_mib"] = round(mem_kb(p.pid, "VmHWM") / 1024, 1)
        out["rss_ready_b_per_container"] = round(rss_ready * 1024 / (nodes * per))
        out["hwm_b_per_container"] = round(mem_kb(p.pid, "VmHWM") * 1024 / (nodes * per))
        out["load1"] = os.getloadavg()[0]
        print(json.dumps(out), flush=True)
        return out
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def start_fleet(exe, engines, per, port_base, tmp):
    """`exe sim` processes of at most 2,500 engines each (the open-file limit), engine i on
    `port_base + i`, `per` containers each; answers them and a file listing every engine's
    address, written once all of them listen."""
    sims = []
    for first in range(0, engines, 2500):
        count = min(2500, engines - first)
        f = os.path.join(tmp, f"addrs-{per}-{first}")
        proc = subprocess.Popen(
            [exe, "sim", "--engines", str(count), "--port-base", str(port_base + first),
             "--first-index", str(first), "--containers-per-engine", str(per),
             "--addrs-file", f],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, f"sim-{per}-{first}.log"), "w"),
        )
        sims.append((proc, f, count))
    try:
        for proc, f, count in sims:
            while not os.path.exists(f) or len(open(f).read().split()) < count:
                if proc.poll() is not None:
                    raise RuntimeError(f"a sim exited, see {tmp}/sim-{per}-*.log")
                time.sleep(0.2)
    except BaseException:
        for proc, _, _ in sims:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        raise
    listing = os.path.join(tmp, f"engines-{per}")
    with open(listing, "w") as out:
        for _, f, _ in sims:
            out.write(open(f).read())
    return [proc for proc, _, _ in sims], listing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", type=int, default=1000)
    ap.add_argument("--per", type=int, default=30)
    ap.add_argument("--shoal", action="append", required=True, help="label=path")
    ap.add_argument("--port-base", type=int, default=11000)
    ap.add_argument("--api-port", type=int, default=10999)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lists", type=int, default=20)
    ap.add_argument("--infos", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--idle", type=float, default=3)
    args = ap.parse_args()
    args.dir = tempfile.mkdtemp(prefix="perf-round-")
    bins = [s.split("=", 1) for s in args.shoal]
    sims, addrs = start_fleet(bins[0][1], args.engines, args.per, args.port_base, args.dir)
    try:
        results = []
        for _ in range(args.rounds):
            for label, exe in bins:
                results.append(measure(label, exe, addrs, args.engines, args.per, args))
        keys = [k for k in results[0] if k not in ("binary",)]
        print("| figure | " + " | ".join(r["binary"] for r in results) + " |", file=sys.stderr)
        for k in keys:
            print(f"| {k} | " + " | ".join(str(r[k]) for r in results) + " |", file=sys.stderr)
    finally:
        for p in sims:
            p.send_signal(signal.SIGKILL)
            p.wait()


if __name__ == "__main__":
    main()
