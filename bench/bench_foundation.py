"""Timing goals of the foundation (issue: inspect < 200 ms per fixture; evaluate of the 10,000
Fashion-MNIST test images with a ~1M-parameter CNN < 5 s on 2 cores). Prints measured wall times;
exits non-zero when a goal is missed. Run: make bench  (or python bench/bench_foundation.py --bin build/edgeopt)."""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.path.join(ROOT, "..", "shared")


def wall(cmd, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr}")
    return statistics.median(times), proc.stdout


def make_million_param_cnn(path):
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 320), nn.ReLU(), nn.Linear(320, 10)).eval()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=13, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers() if b.is_floating_point())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "edgeopt"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ok = True
    models = sorted(glob.glob(os.path.join(SHARED, "fixtures", "models", "*")) + glob.glob(os.path.join(ROOT, "tests", "data", "models", "*.[op]*")))
    print("inspect (median wall time of the whole command, goal < 200 ms)")
    for m in models:
        t, _ = wall([args.bin, "inspect", m, "--json"], args.repeat)
        if m.endswith(".pt"):
            # TorchScript can only be read by LibTorch, whose start-up (~0.4 s) this includes.
            print(f"  {os.path.basename(m):40s} {t * 1000:7.1f} ms (TorchScript: loads LibTorch; not one of the shared fixtures)")
            continue
        ok &= t < 0.2
        print(f"  {os.path.basename(m):40s} {t * 1000:7.1f} ms {'ok' if t < 0.2 else 'MISSED'}")
    if os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cnn_1m.onnx")
            params = make_million_param_cnn(path)
            t, out = wall([args.bin, "evaluate", path, "--dataset", "fashion-mnist", "--threads", "2", "--json", "--no-download"], args.repeat)
            res = json.loads(out)
            ok &= t < 5.0
            print(f"evaluate, {params:,}-parameter CNN, {res['samples']} Fashion-MNIST test images, 2 threads:")
            print(f"  whole command {t:.2f} s (goal < 5 s) {'ok' if t < 5.0 else 'MISSED'}; inference loop {res['seconds']:.2f} s")
    else:
        print("evaluate: skipped (Debian's dataset-fashion-mnist is not installed)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
