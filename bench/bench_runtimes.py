"""Which runtime is faster where: for every TFLite file an `edgeopt optimize` run exported, LiteRT's
latency at batch 1 on this host (one thread, XNNPACK) and its ratio to the run's FP32 TFLite file,
next to EdgeOpt's own executor (LibTorch, one thread) running the same file (EdgeOpt imports
.tflite) and its ratio to the same FP32 file. ONNX files: ONNX Runtime's figure from results.json.

    python bench/bench_runtimes.py --bin build/edgeopt [--results DIR] [--model M --dataset D] [--markdown]

Without --results it runs `edgeopt optimize` (ptq_int8, qat_int8, hybrid, prune_unstructured) on
--model (default: the Fashion-MNIST CNN of tests/data). LiteRT is timed here, round-robin over the
files (so a load change on a shared host hits them all alike); EdgeOpt with one `edgeopt benchmark`
call over the same files (which also interleaves its rounds). It prints a table (Markdown with
--markdown, as in docs/runtime-latency.md) and writes bench_runtimes.json next to results.json."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def litert_p50(paths, runs, rounds=5):
    """p50 in ms at batch 1, one thread, `runs` invocations per file spread over `rounds` rounds."""
    from ai_edge_litert.interpreter import Interpreter
    interpreters = {}
    for p in paths:
        i = Interpreter(model_path=p, num_threads=1)
        i.allocate_tensors()
        d = i.get_input_details()[0]
        x = np.zeros(d["shape"], dtype=d["dtype"])
        i.set_tensor(d["index"], x)
        for _ in range(20):
            i.invoke()
        interpreters[p] = i
    times = {p: [] for p in paths}
    for _ in range(rounds):
        for p, i in interpreters.items():
            for _ in range(max(1, runs // rounds)):
                t = time.perf_counter()
                i.invoke()
                times[p].append(1000 * (time.perf_counter() - t))
    return {p: float(np.percentile(t, 50)) for p, t in times.items()}


def edgeopt_p50(binary, paths, runs):
    r = subprocess.run([binary, "benchmark", *paths, "--runs", str(runs), "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return {m["model"]: m["host_latency_ms_1thread"]["p50"] for m in json.loads(r.stdout)["models"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "edgeopt"))
    p.add_argument("--results")
    p.add_argument("--model", default=os.path.join(ROOT, "tests", "data", "models", "fashion_cnn.onnx"))
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--normalize", default="auto")
    p.add_argument("--techniques", default="ptq_int8,qat_int8,hybrid,prune_unstructured")
    p.add_argument("--runs", type=int, default=500, help="timed runs per file and runtime")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()
    results = args.results
    if not results:
        results = tempfile.mkdtemp(prefix="edgeopt-bench-runtimes-")
        cmd = [args.bin, "optimize", args.model, "--dataset", args.dataset, "--no-download", "--techniques", args.techniques,
               "--max-train-images", "3000", "--devices", "raspberry_pi_4", "--normalize", args.normalize, "--out", results, "--json"]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(r.stderr)
    with open(os.path.join(results, "results.json"), encoding="utf-8") as f:
        res = json.load(f)
    variants = [v for v in [res["baseline"]] + res["variants"] if v.get("status", "completed") == "completed"]
    tflite = [(v, e) for v in variants for e in v["exports"] if e["format"] == "tflite" and "path" in e]
    fp32 = next((os.path.join(results, e["path"]) for v, e in tflite if v is variants[0] and e["kind"] == "fp32"), None)
    if not tflite or not fp32:
        print("no FP32 TFLite export in results.json", file=sys.stderr)
        return 1
    paths = [os.path.join(results, e["path"]) for _, e in tflite]
    load = os.getloadavg()[0]
    lite = litert_p50(paths, args.runs)
    ours = edgeopt_p50(args.bin, paths, args.runs)
    rows = []
    for (v, e), path in zip(tflite, paths):
        rows.append({"technique": v["technique"], "file": e["path"], "kind": e["kind"], "io": e.get("io", ""),
                     "litert_p50_ms": lite[path], "litert_vs_fp32": lite[path] / lite[fp32],
                     "edgeopt_p50_ms": ours[path], "edgeopt_vs_fp32": ours[path] / ours[fp32],
                     "edgeopt_over_litert": ours[path] / lite[path],
                     "litert_accuracy": e.get("runtime_accuracy", {}).get("accuracy"), "edgeopt_accuracy": v["accuracy"]})
    for v in variants:
        for e in v["exports"]:
            ra = e.get("runtime_accuracy", {})
            if e["format"] == "onnx" and "latency_ms" in ra:
                rows.append({"technique": v["technique"], "file": e["path"], "kind": e["kind"], "io": "", "runtime": ra["runtime"],
                             "onnxruntime_p50_ms_from_results": ra["latency_ms"]["p50"], "edgeopt_p50_ms_variant": v["host_latency_ms_1thread"]["p50"]})
    header = f"model {os.path.basename(args.model) if not args.results else os.path.basename(str(res.get('model', '?')))}, batch 1, 1 thread, {args.runs} runs per file, load average {load:.1f} when started"
    if args.markdown:
        print(f"<!-- {header} -->")
        print("| file | kind | LiteRT p50 ms | LiteRT vs its FP32 | EdgeOpt p50 ms | EdgeOpt vs its FP32 | faster here |")
        print("|---|---|---:|---:|---:|---:|---|")
    else:
        print(header)
        print(f"{'file':34} {'kind':22} {'LiteRT ms':>10} {'vs FP32':>8} {'EdgeOpt ms':>11} {'vs FP32':>8}  faster")
    for r in rows:
        if "litert_p50_ms" not in r:
            continue
        kind = r["kind"] + (f" ({r['io']} I/O)" if r["kind"] == "int8" else "")
        q = r["edgeopt_over_litert"]
        faster = f"LiteRT {q:.1f}x" if q > 1 else f"EdgeOpt {1 / q:.1f}x"
        if args.markdown:
            print(f"| {r['file']} | {kind} | {r['litert_p50_ms']:.3f} | {r['litert_vs_fp32']:.2f}x | {r['edgeopt_p50_ms']:.3f} | {r['edgeopt_vs_fp32']:.2f}x | {faster} |")
        else:
            print(f"{r['file']:34} {kind:22} {r['litert_p50_ms']:10.3f} {r['litert_vs_fp32']:7.2f}x {r['edgeopt_p50_ms']:11.3f} {r['edgeopt_vs_fp32']:7.2f}x  {faster}")
    with open(os.path.join(results, "bench_runtimes.json"), "w", encoding="utf-8") as f:
        json.dump({"note": header, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
