"""Image loading and preprocessing shared by the examples and selftest.py of an EdgeOpt package.

Only the standard library and NumPy: PNG (8-bit, any colour type, non-interlaced) is decoded here;
JPEG and others need Pillow (`pip install pillow`). The preprocessing is the one EdgeOpt measured
the model with, read from metadata.json.
"""
import argparse
import json
import os
import struct
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def metadata():
    with open(os.path.join(HERE, "metadata.json"), encoding="utf-8") as f:
        return json.load(f)


def _png(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or interlace != 0 or colour == 3:
        raise ValueError("only 8-bit, non-interlaced, non-palette PNGs are decoded without Pillow (pip install pillow)")
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 0:
                p = 0
            elif kind == 1:
                p = a
            elif kind == 2:
                p = b
            elif kind == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        out[y] = cur
        prev = cur
    img = out.reshape(height, width, channels)
    return img[:, :, :1] if channels == 2 else img[:, :, :3]


def load_image(path):
    """An image file as uint8 HxWxC (C = 1 or 3)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        try:
            return _png(data)
        except ValueError:
            pass
    try:
        from PIL import Image
    except ImportError as e:
        raise SystemExit(f"{path}: only PNG files are read without Pillow; pip install pillow") from e
    img = np.asarray(Image.open(path).convert("RGB"))
    return img


def preprocess(img, meta):
    """uint8 HxWxC -> float32 [1, ...] in the model's input layout, scaled as EdgeOpt measured it."""
    spec = meta["preprocessing"]["input"]
    norm = meta["preprocessing"]["normalization"]
    h, w, c = spec["height"], spec["width"], spec["channels"]
    if img.shape[2] != c:
        if c == 1:  # luminance, as EdgeOpt's image loader computes it
            rgb = img.astype(np.int32)  # in uint8, G * 150 would wrap around
            img = ((rgb[:, :, 0] * 77 + rgb[:, :, 1] * 150 + rgb[:, :, 2] * 29) >> 8).astype(np.uint8)[:, :, None]
        else:
            img = np.repeat(img, 3, axis=2)
    if img.shape[0] != h or img.shape[1] != w:  # nearest neighbour: good enough for an example
        ys = (np.arange(h) * img.shape[0] / h).astype(int)
        xs = (np.arange(w) * img.shape[1] / w).astype(int)
        img = img[ys][:, xs]
    x = img.astype(np.float32) * np.float32(norm["scale"])
    if norm.get("mean"):
        mean = np.array(norm["mean"], dtype=np.float32)
        std = np.array(norm["std"], dtype=np.float32)
        x = (x - mean) / std
    layout = spec["layout"]
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    elif layout == "NC":
        x = x.reshape(-1)
    return x[None].astype(np.float32)


def to_layout(x, have, want_shape):
    """Transposes an NCHW batch to NHWC when the runtime's file wants that (TFLite files are NHWC)."""
    if have == "NCHW" and x.ndim == 4 and list(want_shape[1:]) == [x.shape[2], x.shape[3], x.shape[1]] and x.shape[1] != x.shape[3]:
        return x.transpose(0, 2, 3, 1)
    return x


def _version(package):
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return "unknown"


class Runner:
    """One model file in its own runtime, fed float inputs in the layout of metadata's samples."""

    def __init__(self, path, runtime, threads=None):
        self.path = path
        self.output_range = None  # (low, high) for an int8 output; outputs saturate there
        self.kind = "tflite" if path.endswith(".tflite") else "onnx"
        if self.kind == "tflite":
            try:
                from ai_edge_litert.interpreter import Interpreter
                self.runtime_name = "LiteRT (ai-edge-litert " + _version("ai-edge-litert") + ")"
            except ImportError:
                try:
                    from tflite_runtime.interpreter import Interpreter
                    self.runtime_name = "tflite-runtime " + _version("tflite-runtime")
                except ImportError as e:
                    raise RuntimeError("LiteRT is not installed: pip install ai-edge-litert") from e
            self.interpreter = Interpreter(model_path=path, num_threads=threads)
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            scale, zero = self.output["quantization"]
            if self.output["dtype"] in (np.int8, np.uint8):  # what an int8 output can represent
                info = np.iinfo(self.output["dtype"])
                self.output_range = ((info.min - zero) * scale, (info.max - zero) * scale)
        else:
            try:
                import onnxruntime as ort
            except ImportError as e:
                raise RuntimeError("ONNX Runtime is not installed: pip install onnxruntime") from e
            self.runtime_name = "ONNX Runtime " + ort.__version__
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name

    def run(self, x, layout):
        """x: float32 [1, ...] in `layout`; returns the float32 outputs [1, classes]."""
        if self.kind == "onnx":
            return self.session.run(None, {self.input_name: x})[0]
        x = to_layout(x, layout, self.input["shape"])
        scale, zero = self.input["quantization"]
        if self.input["dtype"] in (np.int8, np.uint8):
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        scale, zero = self.output["quantization"]
        if self.output["dtype"] in (np.int8, np.uint8):
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)


def latency(runner, x, layout, runs):
    """p50/p95 in ms at batch 1, after a warm-up."""
    for _ in range(max(5, runs // 10)):
        runner.run(x, layout)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        runner.run(x, layout)
        times.append(1000 * (time.perf_counter() - t))
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)), "runs": runs, "batch": 1}


def classify_main(extension, doc):
    """The examples' command line: classify an image file with the packaged `extension` model."""
    meta = metadata()
    models = [m["path"] for m in meta["models"] if m["path"].endswith(extension)]
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("--model", default=models[0] if models else None, help="one of: " + ", ".join(models))
    args = parser.parse_args()
    runner = Runner(os.path.join(HERE, args.model), None)
    x = preprocess(load_image(args.image), meta)
    scores = runner.run(x, meta["preprocessing"]["input"]["layout"])[0]
    names = meta.get("class_names") or []
    for k in np.argsort(-scores)[:5]:
        label = names[k] if k < len(names) else str(k)
        print(f"{label}\t{scores[k]:.4f}")
