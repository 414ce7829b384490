"""`edgeopt inspect` against what the source framework counts, and `edgeopt run` against the
source runtime's logits on the same input (1e-4 relative)."""
import json
import os

import numpy as np
import pytest

from conftest import ROOT, run_cli

MODELS = os.path.join(ROOT, "tests", "data", "models")


def onnx_param_count(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    return sum(numpy_helper.to_array(t).size for t in m.graph.initializer
               if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE))


@pytest.mark.parametrize("name", ["pytorch1.10_mnist_cnn.onnx", "keras2onnx_mnist_nhwc.onnx"])
def test_inspect_onnx_fixture(shared_dir, name):
    path = os.path.join(shared_dir, "fixtures", "models", name)
    r = run_cli("inspect", path, "--json")
    assert r.code == 0, r.stderr
    j = r.json()
    assert j["format"] == "onnx"
    assert j["params"] == onnx_param_count(path)
    assert j["macs"] > 0
    assert j["outputs"][0]["shape"][-1] == 10
    assert j["inputs"][0]["layout"] == ("NHWC" if "nhwc" in name else "NCHW")
    assert sum(layer["params"] for layer in j["layers"]) >= j["params"]


@pytest.mark.parametrize("name", ["keras2.3_mnist_cnn.h5", "keras2.15_cifar10_cnn.h5"])
def test_inspect_keras_fixture(shared_dir, name):
    with open(os.path.join(ROOT, "tests", "interop", "expected_keras_fixtures.json")) as f:
        expected = json.load(f)[name]
    r = run_cli("inspect", os.path.join(shared_dir, "fixtures", "models", name), "--json")
    assert r.code == 0, r.stderr
    j = r.json()
    assert j["format"] == "keras-h5"
    assert j["params"] == expected["params"]
    assert j["inputs"][0]["layout"] == "NHWC"


def test_inspect_torchscript_counts_params_and_buffers():
    import torch
    path = os.path.join(MODELS, "fashion_cnn.pt")
    m = torch.jit.load(path)
    expected = sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers() if b.is_floating_point())
    r = run_cli("inspect", path, "--json")
    assert r.code == 0, r.stderr
    j = r.json()
    assert j["format"] == "torchscript"
    assert j["params"] == expected
    assert j["inputs"][0]["shape"] == [-1, 1, 28, 28]


def test_run_matches_onnxruntime_and_torch(tmp_path):
    import onnxruntime as ort
    import torch
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    for name in ("fashion_cnn.onnx", "fashion_cnn.pt"):
        path = os.path.join(MODELS, name)
        r = run_cli("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
        assert r.code == 0, r.stderr
        ours = np.load(tmp_path / "y.npy")
        if name.endswith(".onnx"):
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        else:
            with torch.no_grad():
                ref = torch.jit.load(path).eval()(torch.from_numpy(x)).numpy()
        assert np.max(np.abs(ours - ref)) / max(1e-3, np.max(np.abs(ref))) <= 1e-4
