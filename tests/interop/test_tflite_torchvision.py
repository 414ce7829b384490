"""torchvision's MobileNet v2 and ResNet-18 (random weights, seeded) export to TFLite with
`edgeopt export` and run in LiteRT: FP32 outputs equal PyTorch's within 1e-4 of their range;
the FP16-weight and dynamic-range int8 files run and stay close. EdgeOpt reads each file back
(depthwise convolutions, residual adds, ReLU6, the mean pool) with the ONNX model's MACs."""
import os

import numpy as np
import pytest

from conftest import run_cli

litert = pytest.importorskip("ai_edge_litert.interpreter")
torch = pytest.importorskip("torch")
tvm = pytest.importorskip("torchvision.models")


def run_litert(path, x_nchw):
    i = litert.Interpreter(model_path=str(path))
    i.allocate_tensors()
    d = i.get_input_details()[0]
    assert list(d["shape"]) == [1, x_nchw.shape[2], x_nchw.shape[3], x_nchw.shape[1]], "TFLite files are NHWC, batch 1"
    i.set_tensor(d["index"], x_nchw.transpose(0, 2, 3, 1).copy())
    i.invoke()
    return i.get_tensor(i.get_output_details()[0]["index"])


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_torchvision_model_exports_to_tflite_and_runs_in_litert(name, tmp_path):
    torch.manual_seed(0)
    model = getattr(tvm, name)().eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        ref = model(x).numpy()
    onnx_path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, x, str(onnx_path), opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    macs = run_cli("inspect", onnx_path, "--json").json()["macs"]
    scale = float(np.abs(ref).max())
    for kind, tolerance in (("fp32", 1e-4), ("fp16", 2e-2), ("dynamic_int8", 0.2)):
        out = tmp_path / f"{name}.{kind}.tflite"
        r = run_cli("export", onnx_path, "--format", "tflite", "--kind", kind, "--out", out, "--json")
        assert r.code == 0, r.stderr
        got = run_litert(out, x.numpy())
        err = float(np.abs(got - ref).max()) / scale
        print(f"{name} {kind}: {os.path.getsize(out)} bytes, max |LiteRT - PyTorch| = {err:.2e} of the output range")
        assert err <= tolerance, (kind, err)
        back = run_cli("inspect", out, "--json")
        assert back.code == 0, back.stderr
        assert back.json()["format"] == "tflite" and back.json()["macs"] == macs, (kind, back.json()["macs"], macs)
