"""EdgeOpt reads QDQ int8 ONNX written by others: ONNX Runtime's quantize_static (per-tensor and
per-channel weights, uint8 and int8 activations) on the shared MNIST fixtures. `edgeopt
inspect/evaluate/benchmark/estimate` work on the files, and EdgeOpt's accuracy (its int8
executor) equals ONNX Runtime's on the same 10,000 digits within 0.1 point.

ONNX Runtime is run twice: with graph optimizations off it computes exactly what the QDQ graph
says (float arithmetic between Q/DQ pairs), which is the reference; with its default
optimizations it fuses the pairs into its own int8 kernels, whose u8s8 products saturate on x86
CPUs without VNNI (this host: AVX2 only), and it loses up to half a point more. Both are printed."""
import os

import numpy as np
import pytest

from conftest import run_cli
from test_evaluate import mnist_all_test, normalized, ort_accuracy  # noqa: F401 (fixture)

quantization = pytest.importorskip("onnxruntime.quantization")

FIXTURES = {
    "keras2onnx_mnist_nhwc.onnx": (28, 28, 1),
    "pytorch1.10_mnist_cnn.onnx": (1, 28, 28),
}


def fixture_inputs(shared_dir, data_dir, images, fixture):
    """A fixture's path, EdgeOpt's evaluation of it (accuracy, the preprocessing it found) and the
    MNIST digits as its input."""
    src = os.path.join(shared_dir, "fixtures", "models", fixture)
    r = run_cli("evaluate", src, "--dataset", "mnist", "--data-dir", data_dir, "--normalize", "auto", "--json", "--no-download")
    assert r.code == 0, r.stderr
    prep = r.json()["preprocessing"]
    return src, r.json(), normalized(images, prep).reshape((-1,) + FIXTURES[fixture]).astype(np.float32)


def qdq_accuracy(path, x, labels):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    step = inp.shape[0] if isinstance(inp.shape[0], int) else 500  # a fixed export batch runs as exported
    out = np.concatenate([session.run(None, {inp.name: x[i:i + step]})[0] for i in range(0, len(x), step)])
    return float((out.argmax(1) == labels).mean())


class Reader(quantization.CalibrationDataReader):
    def __init__(self, name, x):
        self.items = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


def quantize(src, dst, x, per_channel, activation_type):
    import onnx
    import onnxruntime as ort
    model = onnx.load(src)
    if model.opset_import[0].version < 13:  # per-axis DequantizeLinear exists from opset 13
        model = onnx.version_converter.convert_version(model, 13)
        src = dst + ".opset13.onnx"
        onnx.save(model, src)
    name = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    quantization.quantize_static(src, dst, Reader(name, x), quant_format=quantization.QuantFormat.QDQ, per_channel=per_channel,
                                 activation_type=activation_type, weight_type=quantization.QuantType.QInt8)


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
@pytest.mark.parametrize("per_channel,activations", [(False, "QUInt8"), (True, "QInt8")])
def test_ort_quantized_fixture_reads_back_with_ort_accuracy(shared_dir, mnist_all_test, tmp_path, fixture, per_channel, activations):  # noqa: F811
    data_dir, images, labels = mnist_all_test
    src, source_eval, x = fixture_inputs(shared_dir, data_dir, images, fixture)
    prep = source_eval["preprocessing"]
    dst = str(tmp_path / ("q_" + fixture))
    # Calibration on 200 of the train copy's digits (the first 1,000 of the file); scoring on all 10,000.
    quantize(src, dst, x[:200], per_channel, getattr(quantization.QuantType, activations))

    info = run_cli("inspect", dst, "--json")
    assert info.code == 0, info.stderr
    assert info.json()["format"] == "onnx"

    ours = run_cli("evaluate", dst, "--dataset", "mnist", "--data-dir", data_dir, "--normalize", prep["normalize"], "--json", "--no-download")
    assert ours.code == 0, ours.stderr
    reference = qdq_accuracy(dst, x, labels)
    optimized = ort_accuracy(dst, x, labels)
    print(f"{fixture} per_channel={per_channel} {activations}: EdgeOpt {ours.json()['accuracy']:.4f}, ONNX Runtime as written "
          f"{reference:.4f}, ONNX Runtime optimized {optimized:.4f}")
    assert abs(ours.json()["accuracy"] - reference) <= 0.001, (ours.json()["accuracy"], reference)

    bench = run_cli("benchmark", dst, "--runs", "5", "--json")
    assert bench.code == 0, bench.stderr
    est = run_cli("estimate", dst, "--device", "raspberry_pi_4", "--json")
    assert est.code == 0, est.stderr
