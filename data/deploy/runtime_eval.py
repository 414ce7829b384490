"""Scores exported model files in the runtime that runs them on a device: LiteRT for .tflite,
ONNX Runtime for .onnx. `edgeopt optimize` calls it (through the project's venv) after its own
measurements, so results.json can put each file's accuracy next to EdgeOpt's figure.

    python3 runtime_eval.py JOB.json OUT.json

JOB: {"inputs": "x.npy" (float32, the test split preprocessed in the model's input layout),
      "labels": "y.npy", "layout": "NCHW"|"NHWC"|"NC", "latency_runs": 100,
      "models": [{"id": "...", "path": "model.tflite"}]}
OUT: {"models": [{"id", "runtime", "accuracy", "samples", "latency_ms": {"p50", "p95", "runs", "threads"}}
                 or {"id", "status": "not measured: <why>"}]}
A missing runtime is reported per file, never as a failure of the run.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edgeopt_image  # noqa: E402


def score(runner, x, labels, layout):
    correct = 0
    if runner.kind == "onnx":  # the batch is symbolic: score in batches
        for b in range(0, len(x), 256):
            out = runner.run(x[b:b + 256], layout)
            correct += int((out.argmax(1) == labels[b:b + 256]).sum())
    else:  # TFLite files have a static batch of 1, as on a device
        for k in range(len(x)):
            correct += int(runner.run(x[k:k + 1], layout).argmax() == labels[k])
    return correct / len(x)


def main(job_path, out_path):
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    x = np.load(job["inputs"]).astype(np.float32)
    labels = np.load(job["labels"]).astype(np.int64).reshape(-1)
    results = []
    for model in job["models"]:
        entry = {"id": model["id"]}
        try:
            runner = edgeopt_image.Runner(model["path"], None, threads=1)
        except RuntimeError as e:
            entry["status"] = f"not measured: {e}"
            results.append(entry)
            continue
        except Exception as e:  # a file the runtime refuses: say so, keep going
            entry["status"] = f"not measured: the runtime could not load the file: {e}"
            results.append(entry)
            continue
        try:
            entry["runtime"] = runner.runtime_name
            entry["accuracy"] = score(runner, x, labels, job["layout"])
            entry["samples"] = int(len(x))
            entry["latency_ms"] = edgeopt_image.latency(runner, x[:1], job["layout"], int(job.get("latency_runs", 100)))
            entry["latency_ms"]["threads"] = 1
        except Exception as e:
            entry = {"id": model["id"], "status": f"not measured: the runtime failed on the file: {e}"}
        results.append(entry)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"models": results}, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
