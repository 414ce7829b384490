"""The seven techniques (plus hybrid's int4 variant) on the small, medium and large Fashion-MNIST zoo
models and, with --third-party, on the third-party MNIST models of ../shared/fixtures, against the
bars of the techniques issue. Every number comes from `edgeopt optimize --json` (the whole test
split, sizes read from disk, host latency measured at batch 1). Zoo models are trained first when
missing (`edgeopt zoo train`, seeded; ~10 min each on 2 cores). Exits non-zero when a bar is missed
or the run of the medium model takes more than 5 minutes. The issue's acceptance is the medium model plus one
third-party model (with --third-party): the exit code is non-zero when the medium model misses a bar, or when no
third-party model meets all of them; other misses are printed for information.

Run: make bench-techniques   (or python bench/bench_techniques.py --bin build/edgeopt [--models medium] [--third-party])"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TECHNIQUES = ["ptq_int8", "ptq_int4", "prune_unstructured", "prune_structured", "qat_int8", "distillation", "hybrid",
              "hybrid_int4"]
SHARED = os.path.join(ROOT, "..", "shared")
# Third-party models on the 10,000 real MNIST digits of ../shared (EdgeOpt splits them 80/20).
THIRD_PARTY = ["keras2.3_mnist_cnn.h5", "keras2onnx_mnist_nhwc.onnx", "pytorch1.10_mnist_cnn.onnx"]
# technique: (max accuracy drop in points, max size vs FP32, max 1-thread latency vs FP32, extra)
BARS = {
    "ptq_int8": (0.3, 0.28, 0.6, None),
    "ptq_int4": (1.0, 0.16, None, None),
    "prune_unstructured": (0.5, 0.35, None, None),
    "prune_structured": (0.6, None, 0.75, "macs"),
    "qat_int8": (0.1, 0.28, None, "qat"),
    "distillation": (1.0, None, None, "student"),
    "hybrid": (1.0, 0.10, None, None),
    "hybrid_int4": (1.0, 0.10, None, None),
}


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def ensure_model(binary, zoo_dir, size, threads):
    path = os.path.join(zoo_dir, f"fashion-mnist-{size}.eom")
    if not os.path.exists(path):
        print(f"training fashion-mnist-{size} (missing from {zoo_dir}) ...", flush=True)
        run([binary, "zoo", "train", f"fashion-mnist-{size}", "--out", zoo_dir, "--threads", str(threads)])
    return path


def check(technique, v, base, all_variants):
    """The bar's verdict and the figures it used, as text."""
    drop_max, size_max, lat_max, extra = BARS[technique]
    failures = []
    if v["accuracy_drop_pp"] > drop_max:
        failures.append(f"drop {v['accuracy_drop_pp']:.2f} > {drop_max}")
    size_ratio = v["size_bytes"] / base["size_bytes"]
    if size_max is not None and size_ratio > size_max:
        failures.append(f"size {size_ratio:.3f}x > {size_max}x")
    lat_ratio = v["host_latency_ms_1thread"]["p50"] / base["host_latency_ms_1thread"]["p50"]
    if lat_max is not None and lat_ratio > lat_max:
        failures.append(f"latency {lat_ratio:.2f}x > {lat_max}x")
    other = ""
    if extra == "macs":
        macs_ratio = v["macs"] / base["macs"]
        other = f"MACs {macs_ratio:.2f}x"
        if macs_ratio > 0.70:
            failures.append(f"MACs {macs_ratio:.2f}x > 0.70x")
    elif extra == "qat":
        ptq = all_variants.get("ptq_int8")
        if ptq and ptq["status"] == "completed":
            other = f"PTQ drop {ptq['accuracy_drop_pp']:.2f}"
            if v["accuracy"] < ptq["accuracy"]:
                failures.append("worse than ptq_int8")
    elif extra == "student":
        params_ratio = base["params"] / v["params"]
        other = f"{params_ratio:.1f}x fewer params"
        if params_ratio < 4:
            failures.append(f"only {params_ratio:.1f}x fewer params")
        gain = v.get("metrics", {}).get("gain_over_student_alone_pp")
        if gain is not None:
            other += f", +{gain:.2f} pt over student alone"
            if gain < 1.0:
                failures.append(f"gain {gain:.2f} pt < 1.0")
    return size_ratio, lat_ratio, other, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "edgeopt"))
    ap.add_argument("--zoo-dir", default=os.path.join(ROOT, "build", "zoo"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-techniques"))
    ap.add_argument("--models", default="small,medium,large")
    ap.add_argument("--threads", type=int, default=0, help="for zoo training (0: all cores)")
    ap.add_argument("--third-party", action="store_true", help="also the third-party MNIST models of ../shared/fixtures")
    args = ap.parse_args()
    os.makedirs(args.zoo_dir, exist_ok=True)
    runs = []  # (label, model, dataset arguments)
    for size in filter(None, args.models.split(",")):
        runs.append((f"fashion-mnist-{size}", ensure_model(args.bin, args.zoo_dir, size, args.threads), ["--dataset", "fashion-mnist"]))
    if args.third_party:
        data_dir = os.path.join(SHARED, "datasets", "mnist-10k")
        for name in THIRD_PARTY:
            runs.append((name, os.path.join(SHARED, "fixtures", "models", name),
                         ["--dataset", "mnist", "--data-dir", data_dir, "--normalize", "auto"]))
    missed = []
    for label, model, dataset in runs:
        out = os.path.join(args.out, label)
        t = time.perf_counter()
        res = json.loads(run([args.bin, "optimize", model, *dataset, "--no-download", "--out", out,
                              "--techniques", ",".join(TECHNIQUES), "--devices", "raspberry_pi_4", "--json"]))
        seconds = time.perf_counter() - t
        base = res["baseline"]
        print(f"\n{label}: FP32 {100 * base['accuracy']:.2f} % on {base['samples']} test images "
              f"({res['preprocessing']}), {base['params']:,} params, {base['size_bytes']:,} B, "
              f"p50 {base['host_latency_ms_1thread']['p50']:.3f} ms (1 thread) / {base['host_latency_ms']['p50']:.3f} ms "
              f"({base['host_latency_ms']['threads']} threads); {len(TECHNIQUES)} techniques in {seconds:.0f} s")
        print(f"| technique | accuracy | drop (pt) | size vs FP32 | latency vs FP32 (1 thread / all) | other | seconds (estimate) | bar |")
        print("|---|---|---|---|---|---|---|---|")
        variants = {v["technique"]: v for v in res["variants"]}
        for technique in TECHNIQUES:
            v = variants.get(technique)
            if not v or v["status"] != "completed":
                print(f"| {technique} | failed: {v['error'] if v else 'missing'} | | | | | | **missed** |")
                missed.append(f"{label}/{technique} failed")
                continue
            size_ratio, lat_ratio, other, failures = check(technique, v, base, variants)
            lat_all = v["host_latency_ms"]["p50"] / base["host_latency_ms"]["p50"]
            verdict = "met" if not failures else "**missed**: " + "; ".join(failures)
            print(f"| {technique} | {100 * v['accuracy']:.2f} % | {v['accuracy_drop_pp']:.2f} | {size_ratio:.3f}x | "
                  f"{lat_ratio:.2f}x / {lat_all:.2f}x | {other} | {v['seconds']:.0f} ({v.get('estimated_seconds', 0):.0f}) | {verdict} |")
            missed += [f"{label}/{technique}: {f}" for f in failures]
        if label == "fashion-mnist-medium" and seconds > 300:
            missed.append(f"{label}: the whole run took {seconds:.0f} s > 300 s")
    if missed:
        print("\nmissed:\n  " + "\n  ".join(missed))
    labels = [label for label, _, _ in runs]
    clean = {label for label in labels if not any(m.startswith(label + "/") or m.startswith(label + ":") for m in missed)}
    failed = []
    if "fashion-mnist-medium" in labels and "fashion-mnist-medium" not in clean:
        failed.append("the medium model misses a bar")
    third = [name for name in THIRD_PARTY if name in labels]
    if third:
        met = [name for name in third if name in clean]
        print(f"\nthird-party models meeting every bar: {', '.join(met) if met else 'none'}")
        if not met:
            failed.append("no third-party model meets every bar")
    print("acceptance: " + ("missed (" + "; ".join(failed) + ")" if failed else "met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
