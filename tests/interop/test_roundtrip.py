"""Round trip (issue 12): EdgeOpt reads what it ships and what peers ship, with the accuracy their
own runtime gives.

- Every file `edgeopt optimize` exports (.tflite: FP32, FP16 weights, dynamic-range int8,
  full-integer int8 with float and with int8 I/O; .onnx: FP32 and QDQ int8) of a zoo model (the
  pretrained fashion-mnist-small) and of the third-party Keras MNIST fixture imports back into
  EdgeOpt, and `edgeopt evaluate` on it equals the accuracy the file's own runtime gave on the same
  test split (LiteRT for .tflite, ONNX Runtime for .onnx, as `optimize` measured it and wrote in
  results.json) within 0.1 point. `inspect`, `benchmark` and `estimate` work on every .tflite.
- QDQ files NNCF writes of the ONNX fixtures (nncf_quantize.py) score in EdgeOpt as in ONNX
  Runtime running them as written, within 0.1 point. ONNX Runtime's own quantize_static files are
  checked the same way in test_qdq_import.py.

Run with -s to see the table (file, runtime accuracy, EdgeOpt accuracy, gap)."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHARED, optimize_run, run_cli
from test_evaluate import mnist_all_test, ort_accuracy  # noqa: F401 (fixture)
from test_qdq_import import FIXTURES, fixture_inputs, qdq_accuracy

POINTS = 0.1
TECHNIQUES = "ptq_int8,prune_unstructured"


def optimize(model, dataset, data_dir, out, normalize):
    return optimize_run(model, dataset, data_dir, out, normalize, TECHNIQUES, "raspberry_pi_4,coral_usb_pi4")


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    if not os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    out = tmp_path_factory.mktemp("zoo") / "run"
    model = os.path.join(ROOT, "data", "zoo", "pretrained", "fashion-mnist-small.eom")
    return out, optimize(model, "fashion-mnist", None, out, "unit"), ["--dataset", "fashion-mnist", "--normalize", "unit"]


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory, mnist_all_test):  # noqa: F811
    model = os.path.join(SHARED, "fixtures", "models", "keras2.3_mnist_cnn.h5")
    if not os.path.exists(model):
        pytest.skip("../shared is not present")
    data_dir, _, _ = mnist_all_test
    out = tmp_path_factory.mktemp("keras") / "run"
    res = optimize(model, "mnist", data_dir, out, "auto")
    return out, res, ["--dataset", "mnist", "--data-dir", data_dir, "--normalize", res["normalization"]["name"]]


def table_row(name, runtime, theirs, ours):
    print(f"| {name} | {runtime} {theirs * 100:.2f} % | EdgeOpt {ours * 100:.2f} % | {(ours - theirs) * 100:+.2f} pt |")


@pytest.mark.parametrize("run", ["zoo_run", "keras_run"])
def test_every_export_reads_back_with_its_runtimes_accuracy(run, request):
    out, res, data_args = request.getfixturevalue(run)
    kinds = set()
    for v in [res["baseline"]] + res["variants"]:
        for e in v["exports"]:
            path = str(out / e["path"])
            theirs = e["runtime_accuracy"]["accuracy"]
            r = run_cli("evaluate", path, *data_args, "--no-download", "--json")
            assert r.code == 0, (e["path"], r.stderr)
            ours = r.json()
            assert ours["samples"] == e["runtime_accuracy"]["samples"]
            table_row(f"{run}: {e['path']}", e["runtime_accuracy"]["runtime"], theirs, ours["accuracy"])
            assert abs(ours["accuracy"] - theirs) * 100 <= POINTS, (e["path"], ours["accuracy"], theirs)
            kinds.add((e["format"], e["kind"], e.get("io", "")))
            if e["format"] != "tflite":
                continue
            info = run_cli("inspect", path, "--json")
            assert info.code == 0, info.stderr
            assert info.json()["format"] == "tflite"
            assert info.json()["params"] > 0 and info.json()["macs"] > 0
            bench = run_cli("benchmark", path, "--runs", "3", "--json")
            assert bench.code == 0, bench.stderr
            est = run_cli("estimate", path, "--device", "raspberry_pi_4", "--json")
            assert est.code == 0, est.stderr
    assert {("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "dynamic_int8"), ("onnx", "fp32"), ("onnx", "qdq_int8")} <= {k[:2] for k in kinds}
    assert {("tflite", "int8", "float32"), ("tflite", "int8", "int8")} <= kinds, kinds


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_nncf_quantized_fixture_reads_back_with_onnx_runtimes_accuracy(shared_dir, mnist_all_test, tmp_path, fixture):  # noqa: F811
    if importlib.util.find_spec("nncf") is None:  # not imported here: see nncf_quantize.py
        pytest.skip("nncf is not installed (tests/interop/requirements.txt)")
    data_dir, images, labels = mnist_all_test
    src, source_eval, x = fixture_inputs(shared_dir, data_dir, images, fixture)
    prep = source_eval["preprocessing"]
    calib = tmp_path / "calib.npy"
    np.save(calib, x[:200])  # calibration on the train copy's digits (the first 1,000 of the file)
    dst = str(tmp_path / ("nncf_" + fixture))
    q = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "nncf_quantize.py"), src, dst, str(calib)],
                       capture_output=True, text=True, timeout=600)
    assert q.returncode == 0, q.stderr[-2000:]
    assert "QuantizeLinear" in q.stdout and "DequantizeLinear" in q.stdout, q.stdout

    info = run_cli("inspect", dst, "--json")
    assert info.code == 0, info.stderr
    ours = run_cli("evaluate", dst, "--dataset", "mnist", "--data-dir", data_dir, "--normalize", prep["normalize"], "--json", "--no-download")
    assert ours.code == 0, ours.stderr
    reference = qdq_accuracy(dst, x, labels)
    table_row(f"NNCF {fixture}", "ONNX Runtime (as written)", reference, ours.json()["accuracy"])
    print(f"  (the FP32 source: {source_eval['accuracy'] * 100:.2f} % in EdgeOpt; ONNX Runtime with its default optimizations, "
          f"its own int8 kernels: {ort_accuracy(dst, x, labels) * 100:.2f} %)")
    assert abs(ours.json()["accuracy"] - reference) * 100 <= POINTS, (ours.json()["accuracy"], reference)
    for args in (("benchmark", dst, "--runs", "3", "--json"), ("estimate", dst, "--device", "coral_usb_pi4", "--json")):
        assert run_cli(*args).code == 0, args


# The Edge TPU's operations (https://coral.ai/docs/edgetpu/models-intro/#supported-operations, the
# same list Axis publishes for its Edge-TPU-based ARTPEC-7), by TFLite builtin name. The compiler
# maps a graph up to the first op outside this list and leaves the rest to the CPU. Read here from
# Axis's copy up to RESIZE_BILINEAR, and from an older copy of Coral's table (SUB, TANH,
# RESIZE_NEAREST_NEIGHBOR); SLICE … TRANSPOSE_CONV are as Coral's current page lists them, not
# re-read in the session that wrote this (check TRANSPOSE and SOFTMAX there first if this fails).
EDGETPU_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
    "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU",
    "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE",
    "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
}


@pytest.mark.parametrize("run", ["zoo_run", "keras_run"])
def test_full_integer_file_is_int8_between_its_ends_and_maps_to_the_edge_tpu(run, request):
    """What `edgetpu_compiler` takes: int8 input and output, only int8 tensors between them (int32
    for biases and shape operands), every op on the Edge TPU's list; and EdgeOpt reads it back."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    out, res, data_args = request.getfixturevalue(run)
    ptq = next(v for v in res["variants"] if v["technique"] == "ptq_int8")
    e = next(e for e in ptq["exports"] if e["format"] == "tflite" and e["kind"] == "int8" and e["io"] == "int8")
    i = litert.Interpreter(model_path=str(out / e["path"]))
    i.allocate_tensors()
    assert i.get_input_details()[0]["dtype"] == np.int8 and i.get_output_details()[0]["dtype"] == np.int8
    for t in i.get_tensor_details():
        assert t["dtype"] in (np.int8, np.int32), (t["name"], t["dtype"])
        if t["dtype"] == np.int8:
            assert len(t["quantization_parameters"]["scales"]) > 0, t["name"]
    # The ops as the file holds them: without XNNPACK, which would take them over as one DELEGATE node.
    plain = litert.Interpreter(model_path=str(out / e["path"]), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    plain.allocate_tensors()
    ops = {op["op_name"] for op in plain._get_ops_details()}
    assert ops <= EDGETPU_OPS, ops - EDGETPU_OPS
    info = run_cli("inspect", out / e["path"], "--json")
    assert info.code == 0 and info.json()["format"] == "tflite", info.stderr
