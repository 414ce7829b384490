"""`edgeopt evaluate` against the source runtime on the same images: the accuracies must agree
within 0.05 points. ONNX Runtime and PyTorch run live; Keras figures come from
tools/fixtures/make_shared_goldens.py (TensorFlow is not installed in CI)."""
import gzip
import json
import os
import shutil
import sys

import numpy as np
import pytest

from conftest import ROOT, run_cli

sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
from idx import load_split  # noqa: E402

MODELS = os.path.join(ROOT, "tests", "data", "models")


def normalized(images, prep):
    """The preprocessing edgeopt reported, redone in numpy (HWC uint8 -> float)."""
    presets = {"unit": (1 / 255, [0.0], [1.0]), "raw": (1.0, [0.0], [1.0]), "symmetric": (1 / 255, [0.5], [0.5]),
               "mnist": (1 / 255, [0.1307], [0.3081]), "fashion-mnist": (1 / 255, [0.2860], [0.3530])}
    scale, mean, std = presets[prep["normalize"]]
    x = images.astype(np.float32) * np.float32(scale)
    return (x - np.float32(mean[0])) / np.float32(std[0])


def ort_accuracy(model_path, x, labels):
    import onnxruntime as ort
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    step = inp.shape[0] if isinstance(inp.shape[0], int) else 500  # a fixed export batch runs as exported
    correct = 0
    for i in range(0, len(x), step):
        out = sess.run(None, {inp.name: x[i:i + step]})[0]
        correct += int((out.argmax(1) == labels[i:i + step]).sum())
    return correct / len(x)


@pytest.fixture(scope="module")
def mnist_all_test(tmp_path_factory, request):
    """mnist-10k as an official split: all 10,000 digits are the test split (the train files are a
    copy of the first 1,000, used only by --normalize auto)."""
    shared = os.path.join(ROOT, "..", "shared", "datasets", "mnist-10k")
    if not os.path.isdir(shared):
        pytest.skip("../shared is not present")
    d = tmp_path_factory.mktemp("mnist_all")
    for kind in ("images-idx3", "labels-idx1"):
        src = os.path.join(shared, f"t10k-{kind}-ubyte.gz")
        shutil.copy(src, d / f"t10k-{kind}-ubyte.gz")
        with gzip.open(src, "rb") as f:
            raw = bytearray(f.read())
        header = 16 if kind.startswith("images") else 8
        item = 784 if kind.startswith("images") else 1
        raw[4:8] = (1000).to_bytes(4, "big")
        with gzip.open(d / f"train-{kind}-ubyte.gz", "wb") as f:
            f.write(bytes(raw[:header + 1000 * item]))
    images, labels = load_split(shared, "test")
    return str(d), images, labels


def test_pytorch_onnx_fixture_matches_onnxruntime(shared_dir, mnist_all_test):
    data_dir, images, labels = mnist_all_test
    model = os.path.join(shared_dir, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    r = run_cli("evaluate", model, "--dataset", "mnist", "--data-dir", data_dir, "--normalize", "auto", "--json", "--no-download")
    assert r.code == 0, r.stderr
    res = r.json()
    assert res["samples"] == 10000
    x = normalized(images, res["preprocessing"]).reshape(-1, 1, 28, 28)
    ref = ort_accuracy(model, x, labels)
    assert abs(res["accuracy"] - ref) <= 0.0005, (res["accuracy"], ref)
    assert ref > 0.9, "auto normalisation should find how the model was trained"
    lo, hi = res["accuracy_ci95"]
    assert lo < res["accuracy"] < hi


def test_keras2onnx_nhwc_fixture_matches_onnxruntime(shared_dir, mnist_all_test):
    data_dir, images, labels = mnist_all_test
    model = os.path.join(shared_dir, "fixtures", "models", "keras2onnx_mnist_nhwc.onnx")
    r = run_cli("evaluate", model, "--dataset", "mnist", "--data-dir", data_dir, "--normalize", "auto", "--json", "--no-download")
    assert r.code == 0, r.stderr
    res = r.json()
    x = normalized(images, res["preprocessing"]).reshape(-1, 28, 28, 1)
    ref = ort_accuracy(model, x, labels)
    assert abs(res["accuracy"] - ref) <= 0.0005, (res["accuracy"], ref)
    assert ref > 0.9


def test_keras_h5_fixture_matches_keras(shared_dir, mnist_all_test):
    data_dir, _, _ = mnist_all_test
    with open(os.path.join(ROOT, "tests", "interop", "expected_keras_fixtures.json")) as f:
        expected = json.load(f)["keras2.3_mnist_cnn.h5"]
    model = os.path.join(shared_dir, "fixtures", "models", "keras2.3_mnist_cnn.h5")
    r = run_cli("evaluate", model, "--dataset", "mnist", "--data-dir", data_dir, "--normalize", "unit", "--json", "--no-download")
    assert r.code == 0, r.stderr
    assert abs(r.json()["accuracy"] - expected["mnist10k_accuracy_unit"]) <= 0.0005


def test_one_split_dataset_is_split_and_says_so(shared_dir):
    model = os.path.join(shared_dir, "fixtures", "models", "pytorch1.10_mnist_cnn.onnx")
    r = run_cli("evaluate", model, "--dataset", "mnist", "--data-dir", os.path.join(shared_dir, "datasets", "mnist-10k"),
                "--json", "--no-download")
    assert r.code == 0, r.stderr
    res = r.json()
    assert 0 < res["samples"] < 10000
    assert "split" in res["dataset"]["split_note"].lower()
    assert res["dataset"]["train_samples"] + res["dataset"]["test_samples"] == 10000


@pytest.mark.parametrize("fmt", ["onnx", "pt"])
def test_fashion_model_matches_source_runtime(fashion_dir, fmt):
    model = os.path.join(MODELS, "fashion_cnn." + fmt)
    r = run_cli("evaluate", model, "--dataset", "fashion-mnist", "--json", "--no-download")
    assert r.code == 0, r.stderr
    res = r.json()
    assert res["samples"] == 10000
    assert "official" in res["dataset"]["split_note"].lower()
    images, labels = load_split(fashion_dir, "test")
    x = (images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    if fmt == "onnx":
        ref = ort_accuracy(model, x, labels)
    else:
        import torch
        m = torch.jit.load(model).eval()
        with torch.no_grad():
            ref = float(np.mean(np.concatenate([m(torch.from_numpy(x[i:i + 1000])).argmax(1).numpy()
                                                for i in range(0, len(x), 1000)]) == labels))
    assert abs(res["accuracy"] - ref) <= 0.0005, (res["accuracy"], ref)
