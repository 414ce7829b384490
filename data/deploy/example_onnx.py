"""Classifies an image file with the packaged .onnx model in ONNX Runtime (pip install onnxruntime).

    python3 example_onnx.py IMAGE [--model model/FILE.onnx]
"""
import argparse
import os

import numpy as np

import edgeopt_image


def main():
    meta = edgeopt_image.metadata()
    models = [m["path"] for m in meta["models"] if m["path"].endswith(".onnx")]
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--model", default=models[0] if models else None, help="one of: " + ", ".join(models))
    args = parser.parse_args()
    runner = edgeopt_image.Runner(os.path.join(edgeopt_image.HERE, args.model), "onnx")
    x = edgeopt_image.preprocess(edgeopt_image.load_image(args.image), meta)
    scores = runner.run(x, meta["preprocessing"]["input"]["layout"])[0]
    names = meta.get("class_names") or []
    for k in np.argsort(-scores)[:5]:
        label = names[k] if k < len(names) else str(k)
        print(f"{label}\t{scores[k]:.4f}")


if __name__ == "__main__":
    main()
