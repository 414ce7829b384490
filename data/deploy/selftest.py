"""Self-test of an EdgeOpt deployment package, to run on the board.

1. Checks the SHA-256 of every file against SHA256SUMS (a truncated or modified package fails here).
2. Runs the stored sample inputs through each model file in its runtime (LiteRT for .tflite, ONNX
   Runtime for .onnx) and compares the outputs with EdgeOpt's, within the tolerance metadata.json
   states for that file; reports top-1 agreement and accuracy on the samples.
3. Measures latency at batch 1 (p50/p95 after warm-up; as many threads as the device has cores,
   per EdgeOpt's catalogue, at most this machine's) and writes measurements.json (the board, the
   runtimes, every figure, each model's SHA-256 and the estimator's view of the model), which
   `edgeopt calibrate --measured measurements.json` folds into your local calibration.

    python3 selftest.py [--runs 200] [--threads N] [--out measurements.json]

Exit code: 0 passed, 1 failed (checksum or outputs), 2 no runtime installed for any model file.
"""
import argparse
import hashlib
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edgeopt_image  # noqa: E402


def check_sums(digests=None):
    """Problems found (empty: every file matches); `digests` gets each file's SHA-256."""
    path = os.path.join(HERE, "SHA256SUMS")
    if not os.path.exists(path):
        return ["SHA256SUMS is missing: the package is incomplete; download it again"]
    problems = []
    digests = {} if digests is None else digests
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            digest, name = line.rstrip("\n").split("  ", 1)
            file = os.path.join(HERE, name)
            if not os.path.exists(file):
                problems.append(f"{name}: missing")
                continue
            h = hashlib.sha256()
            with open(file, "rb") as g:
                for chunk in iter(lambda: g.read(1 << 20), b""):
                    h.update(chunk)
            digests[name] = h.hexdigest()
            if h.hexdigest() != digest:
                problems.append(f"{name}: SHA-256 {h.hexdigest()} does not match {digest} (the file was truncated or modified)")
    return problems


def compare(outputs, reference, tolerance):
    diff = float(np.max(np.abs(outputs - reference)))
    scale = float(np.max(np.abs(reference))) or 1.0
    allowed = tolerance.get("atol_fraction_of_max", 0.0) * scale
    close = diff <= allowed
    if tolerance.get("kind") == "float":
        close = bool(np.all(np.abs(outputs - reference) <= tolerance["rtol"] * np.abs(reference) + allowed))
    agreement = float(np.mean(np.argmax(outputs, axis=1) == np.argmax(reference, axis=1)))
    return {"max_abs_diff": diff, "max_abs_reference": scale, "allowed_abs_diff": allowed, "within_tolerance": bool(close),
            "top1_agreement": agreement, "passed": bool(close and agreement >= tolerance.get("min_top1_agreement", 1.0))}


def main():
    parser = argparse.ArgumentParser(description="EdgeOpt package self-test")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=os.path.join(HERE, "measurements.json"))
    args = parser.parse_args()

    digests = {}
    problems = check_sums(digests)
    if problems:
        print("FAILED: the package's checksums do not match:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        print("Download or unzip the package again.", file=sys.stderr)
        return 1
    print("checksums: every file matches SHA256SUMS")
    meta = edgeopt_image.metadata()
    estimator = meta.get("estimator") or {}
    threads = args.threads or min(estimator.get("threads") or os.cpu_count() or 1, os.cpu_count() or 1)
    samples = meta.get("samples")
    inputs = reference = labels = None
    if samples:
        inputs = np.load(os.path.join(HERE, samples["inputs"])).astype(np.float32)
        reference = np.load(os.path.join(HERE, samples["reference_outputs"])).astype(np.float32)
        labels = np.array(samples["labels"])
    results, ran, failed = [], 0, False
    for model in meta["models"]:
        if model["format"] == "eom":
            continue
        entry = {"path": model["path"], "format": model["format"], "precision": model["precision"], "sha256": digests.get(model["path"]),
                 "threads": threads, "estimate": model.get("estimate")}
        try:
            runner = edgeopt_image.Runner(os.path.join(HERE, model["path"]), model["runtime"], threads)
        except RuntimeError as e:
            entry["status"] = f"not run: {e}"
            print(f"{model['path']}: {entry['status']}")
            results.append(entry)
            continue
        entry["runtime"] = runner.runtime_name
        ran += 1
        if inputs is not None:
            layout = samples["layout"]
            outs = np.concatenate([runner.run(inputs[k:k + 1], layout) for k in range(len(inputs))])
            # An int8 output saturates at the ends of its grid: compare where it can represent EdgeOpt's.
            ref = reference if runner.output_range is None else np.clip(reference, *runner.output_range)
            entry["outputs"] = compare(outs.reshape(reference.shape), ref, model["tolerance"])
            entry["outputs"]["tolerance"] = model["tolerance"]
            entry["sample_accuracy"] = float(np.mean(np.argmax(outs, axis=1) == labels))
            entry["samples"] = int(len(inputs))
            ok = entry["outputs"]["passed"]
            failed = failed or not ok
            print(f"{model['path']} ({runner.runtime_name}): outputs vs EdgeOpt's on {len(inputs)} samples: max |diff| "
                  f"{entry['outputs']['max_abs_diff']:.3g} (allowed {entry['outputs']['allowed_abs_diff']:.3g}), top-1 agreement "
                  f"{100 * entry['outputs']['top1_agreement']:.1f} %, sample accuracy {100 * entry['sample_accuracy']:.1f} %: "
                  f"{'ok' if ok else 'FAILED'}")
            x = inputs[:1]
        else:
            x = edgeopt_image.preprocess(np.zeros((meta["preprocessing"]["input"]["height"], meta["preprocessing"]["input"]["width"], 1), np.uint8), meta)
        entry["latency_ms"] = edgeopt_image.latency(runner, x, samples["layout"] if samples else meta["preprocessing"]["input"]["layout"], args.runs)
        est = model.get("estimate")
        print(f"{model['path']}: latency p50 {entry['latency_ms']['p50']:.3f} ms, p95 {entry['latency_ms']['p95']:.3f} ms (batch 1, {threads} threads, {args.runs} runs)"
              + (f"; EdgeOpt estimated {est['latency_ms']:.3f} ms for {meta['device']['id']} (an estimate)" if est else ""))
        results.append(entry)
    report = {"kind": "edgeopt-measurements", "version": 1, "device": meta["device"]["id"], "technique": meta["technique"],
              "precision": meta["precision"], "host": {"machine": platform.machine(), "system": platform.system(), "node": platform.node(),
                                                       "python": platform.python_version(), "processor": platform.processor()},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "models": results,
              "edgeopt_version": meta.get("edgeopt_version"),
              "package_files": {m["path"]: meta["files"][m["path"]]["sha256"] for m in meta["models"] if m["path"] in meta.get("files", {})},
              "layers": estimator.get("layers"),
              "passed": bool(ran > 0 and not failed)}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out} (fold it into EdgeOpt's estimates for this board: edgeopt calibrate --measured measurements.json)")
    if ran == 0:
        print("no model file could be run: install its runtime (see README.md)", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
