"""ONNX Runtime runs EdgeOpt's ONNX exports and agrees with the IR reference.

The exports come from the C++ unit tests: run
    EDGEOPT_EXPORT_DIR=/tmp/edgeopt-export build/edgeopt_core_tests --gtest_filter='OnnxExport*'
then this file with the same EDGEOPT_EXPORT_DIR. Each <stem>.onnx sits next to <stem>.input.npy
and <stem>.expected.npy (computed by the test's plain reference evaluator).
"""
import glob
import os

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

EXPORT_DIR = os.environ.get("EDGEOPT_EXPORT_DIR", "")


def exported_models():
    if not EXPORT_DIR or not os.path.isdir(EXPORT_DIR):
        return []
    return sorted(glob.glob(os.path.join(EXPORT_DIR, "*.onnx")))


MODELS = exported_models()
if not MODELS:
    pytest.skip("EDGEOPT_EXPORT_DIR is not set or holds no exports; run the OnnxExport C++ tests with it first",
                allow_module_level=True)


def run(path, x, optimize):
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x})[0]


def inputs_for(path):
    stem = path[: -len(".onnx")]
    return np.load(stem + ".input.npy"), np.load(stem + ".expected.npy")


@pytest.mark.parametrize("path", MODELS, ids=lambda p: os.path.basename(p))
def test_model_is_valid_onnx(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "N", "the batch is symbolic"


@pytest.mark.parametrize("path", MODELS, ids=lambda p: os.path.basename(p))
def test_onnxruntime_matches_the_ir_reference(path):
    x, expected = inputs_for(path)
    got = run(path, x, optimize=False)
    assert got.shape == expected.shape
    if "qdq" in os.path.basename(path):
        # Fake-quant in float: identical math, except that an accumulation-order difference can
        # move a value across a rounding boundary of an activation's grid.
        close = np.abs(got - expected) <= 1e-4
        assert close.mean() >= 0.95, f"only {close.mean():.3f} of the outputs agree"
        assert np.max(np.abs(got - expected)) <= 0.05
    else:
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("path", [p for p in MODELS if "qdq" in os.path.basename(p)], ids=lambda p: os.path.basename(p))
def test_qdq_runs_with_int8_kernels_and_stays_close(path):
    x, expected = inputs_for(path)
    got = run(path, x, optimize=True)  # QDQ fused into integer kernels
    assert np.max(np.abs(got - expected)) <= 0.05
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_batch_is_really_symbolic():
    path = next(p for p in MODELS if "fp32" in os.path.basename(p))
    x, _ = inputs_for(path)
    big = np.concatenate([x, x, x], axis=0)
    got = run(path, big, optimize=True)
    assert got.shape[0] == big.shape[0]
    np.testing.assert_allclose(got[: x.shape[0]], got[x.shape[0]: 2 * x.shape[0]], atol=1e-6)
