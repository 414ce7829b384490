"""Which runtime is faster where: for every exported TFLite file of an `edgeopt optimize` run,
LiteRT's latency at batch 1 on this host (one thread, XNNPACK) next to the FP32 TFLite file's,
as a ratio, and next to EdgeOpt's own LibTorch figure for the same variant.

    python bench/bench_runtimes.py --bin build/edgeopt [--results DIR]

Without --results it runs `edgeopt optimize` on the Fashion-MNIST CNN of tests/data
(ptq_int8, qat_int8, hybrid, prune_unstructured). The LiteRT/ONNX Runtime figures are the
ones `optimize` measured (results.json: exports[].runtime_accuracy.latency_ms); it prints a
table and writes bench_runtimes.json next to results.json."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "edgeopt"))
    p.add_argument("--results")
    args = p.parse_args()
    results = args.results
    if not results:
        results = tempfile.mkdtemp(prefix="edgeopt-bench-runtimes-")
        cmd = [args.bin, "optimize", os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx"), "--dataset", "fashion-mnist",
               "--no-download", "--techniques", "ptq_int8,qat_int8,hybrid,prune_unstructured", "--max-train-images", "3000",
               "--devices", "raspberry_pi_4", "--out", results, "--json"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
    with open(os.path.join(results, "results.json"), encoding="utf-8") as f:
        res = json.load(f)
    base = res["baseline"]
    fp32 = next((e for e in base["exports"] if e["format"] == "tflite" and e["kind"] == "fp32"), None)
    fp32_ms = (fp32 or {}).get("runtime_accuracy", {}).get("latency_ms", {}).get("p50")
    rows = []
    for v in [base] + res["variants"]:
        if v.get("status") != "completed":
            continue
        for e in v["exports"]:
            ra = e.get("runtime_accuracy", {})
            if "latency_ms" not in ra:
                continue
            ms = ra["latency_ms"]["p50"]
            rows.append({"technique": v["technique"], "file": e["path"], "runtime": ra["runtime"], "runtime_p50_ms": ms,
                         "ratio_vs_fp32_tflite": ms / fp32_ms if fp32_ms and e["format"] == "tflite" else None,
                         "edgeopt_p50_ms_1thread": v["host_latency_ms_1thread"]["p50"],
                         "runtime_accuracy": ra["accuracy"], "edgeopt_accuracy": v["accuracy"]})
    print(f"{'technique':20} {'file':34} {'runtime':28} {'p50 ms':>8} {'vs FP32':>8} {'EdgeOpt 1t ms':>14}")
    for r in rows:
        ratio = f"{r['ratio_vs_fp32_tflite']:.2f}x" if r["ratio_vs_fp32_tflite"] else "-"
        print(f"{r['technique']:20} {r['file']:34} {r['runtime']:28} {r['runtime_p50_ms']:8.3f} {ratio:>8} {r['edgeopt_p50_ms_1thread']:14.3f}")
    with open(os.path.join(results, "bench_runtimes.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2)
    if not rows:
        print("no runtime latency in results.json: is LiteRT installed in the venv?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
