"""Quantizes an ONNX model with NNCF's post-training quantization (its ONNX backend, as a user who
quantized with NNCF would) and writes the QDQ model: `python nncf_quantize.py SRC DST CALIB.npy`.
CALIB.npy holds preprocessed calibration inputs in the model's layout, one per row.

Runs in its own process because of two incompatibilities between NNCF 3.4 and this host's Debian
packages, neither of which touches what NNCF computes for ONNX models:
- NNCF imports torch when it is installed and needs a newer one than Debian's torch 1.13
  (torch.uint16); its ONNX backend needs no torch, so torch is hidden from this process.
- NNCF annotates a dataclass field `onnx.TensorProto.DataType | np.dtype`, evaluated at import;
  Debian's protobuf 4.21 enum wrapper has no `|`, so it gets one that returns the union type."""
import sys
import typing

sys.modules["torch"] = None  # noqa: E402 (before nncf: see above)
from google.protobuf.internal import enum_type_wrapper  # noqa: E402

if "__or__" not in vars(enum_type_wrapper.EnumTypeWrapper):
    enum_type_wrapper.EnumTypeWrapper.__or__ = lambda self, other: typing.Union[int, other]

import nncf  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402


def main(src, dst, calib):
    model = onnx.load(src)
    if model.opset_import[0].version < 13:  # NNCF quantizes opset >= 10; per-axis DequantizeLinear needs 13
        model = onnx.version_converter.convert_version(model, 13)
    name = model.graph.input[0].name
    x = np.load(calib).astype(np.float32)
    dataset = nncf.Dataset([x[i:i + 1] for i in range(len(x))], lambda item: {name: item})
    quantized = nncf.quantize(model, dataset, subset_size=len(x))
    onnx.save(quantized, dst)
    print(f"nncf {nncf.__version__}: {sorted({n.op_type for n in quantized.graph.node})}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
