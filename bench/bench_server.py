#!/usr/bin/env python3
"""The service's timing goals, measured on a real `edgeopt serve` (SQLite, loopback), printed as a
table: idle RSS (goal <= 150 MB), API read latency p50/p99 at 200 requests/s while an
optimization runs (goal p99 <= 50 ms), 500 concurrent SSE clients each receiving every event of a
run, and the time from `start` to the first SSE event. Not a test: the figures depend on the
machine (2 cores shared with the optimization itself here)."""
import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODEL = os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def http_get(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def sse_client(host, port, eid, results, index):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /api/optimize/{eid}/progress-stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    ids = []
    running = None  # when the first event a worker wrote (status: running) arrived
    while True:
        line = await reader.readline()
        if not line:
            break
        if line.startswith(b"id: "):
            ids.append(int(line[4:]))
        if running is None and line.startswith(b"data: ") and b'"status":"running"' in line:
            running = time.monotonic()
    writer.close()
    results[index] = (ids, running)


async def paced_reads(host, port, paths, rate, seconds):
    latencies = []
    interval = 1.0 / rate
    start = time.monotonic()
    tasks = []

    async def one(path):
        t = time.monotonic()
        await http_get(host, port, path)
        latencies.append((time.monotonic() - t) * 1000)

    k = 0
    while time.monotonic() - start < seconds:
        tasks.append(asyncio.create_task(one(paths[k % len(paths)])))
        k += 1
        await asyncio.sleep(max(0.0, start + k * interval - time.monotonic()))
    await asyncio.gather(*tasks)
    return latencies


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def create_and_upload(base, **fields):
    body = {"name": "bench", "dataset_name": "fashion_mnist", "target_device": "raspberry_pi_4", "eval_limit": 2000,
            "max_train_images": 4000, "techniques": ["ptq_int8", "prune_unstructured", "ptq_int4"], "devices": ["raspberry_pi_4"]}
    body.update(fields)
    eid = requests.post(base + "/api/experiments/create", json=body, timeout=30).json()["id"]
    with open(MODEL, "rb") as f:
        r = requests.post(base + f"/api/upload/{eid}/model", files={"file": ("fashion_cnn.onnx", f)}, timeout=60)
    r.raise_for_status()
    return eid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "edgeopt"))
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--workers", type=int, default=2, help="in-process workers of serve (2 = both cores busy with the run)")
    args = ap.parse_args()
    store = tempfile.mkdtemp(prefix="edgeopt-bench-")
    proc = subprocess.Popen([args.bin, "serve", "--port", "0", "--store", store, "--workers", str(args.workers)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    port = int(re.search(r":(\d+) ", proc.stdout.readline()).group(1))
    base = f"http://127.0.0.1:{port}"
    rows = [("serve's in-process workers during the run", str(args.workers), "-")]
    try:
        time.sleep(2)
        requests.get(base + "/health", timeout=10)
        rows.append(("idle RSS of serve", f"{rss_mb(proc.pid):.1f} MB", "<= 150 MB"))

        # Two runs: API reads at a steady rate while a run goes on with one client watching it, then
        # the same while 500 SSE clients watch (they all connect at the start, as a burst).
        for clients in (1, args.clients):
            eid = create_and_upload(base)
            results = [None] * clients
            t_start = time.monotonic()
            requests.post(base + f"/api/optimize/{eid}/start", timeout=30).raise_for_status()

            async def run_all():
                watchers = [asyncio.create_task(sse_client("127.0.0.1", port, eid, results, i)) for i in range(clients)]
                reads = await paced_reads("127.0.0.1", port, ["/api/experiments", f"/api/experiments/{eid}", "/api/devices", "/health"],
                                          args.rate, args.seconds)
                await asyncio.gather(*watchers)
                return reads

            reads = asyncio.run(run_all())
            rows.append((f"API reads at {args.rate:.0f} req/s during a run, {clients} SSE client(s)",
                         f"p50 {percentile(reads, 50):.1f} ms, p99 {percentile(reads, 99):.1f} ms", "p99 <= 50 ms"))
            full = requests.get(base + f"/api/optimize/{eid}/events", timeout=30).json()["events"]
            expected = [e["id"] for e in full]
            complete = sum(1 for ids, _ in results if ids == expected)
            rows.append((f"{clients} SSE client(s) each got every event", f"{complete}/{clients} ({len(expected)} events)", "all"))
            firsts = [f for _, f in results if f is not None]
            if firsts:
                rows.append((f"start -> first worker event (running), {clients} client(s)", f"{(min(firsts) - t_start) * 1000:.0f} ms", "-"))
        rows.append(("RSS of serve after the run", f"{rss_mb(proc.pid):.1f} MB", "-"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':<40}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:<40}  {goal}")


if __name__ == "__main__":
    sys.exit(main())
