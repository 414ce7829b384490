// ONNX export of the IR: plain FP32 (every op to its ONNX op, batch as dim_param "N"), and a QDQ
// INT8 form (QuantizeLinear/DequantizeLinear pairs) that ONNX Runtime runs with int8 kernels.
#pragma once

#include <map>
#include <string>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::format {

struct OnnxExportOptions {
  // 13 to 18. HardSwish exists from opset 14; at 13 it is written as x * HardSigmoid(x, 1/6, 1/2).
  int opset = 13;
  // QDQ INT8: each Conv/Gemm weight becomes an int8 initializer with per-channel (axis 0) scales
  // followed by DequantizeLinear (the weight's own Value::quant is used when it is per-channel on
  // axis 0, else symmetric scales); biases stay f32.
  bool qdq_int8 = false;
  // QDQ INT8: run-time values (by IR name) that get QuantizeLinear -> DequantizeLinear, each with
  // one scale and at most one zero point (per tensor). Graph outputs keep their float tensor.
  std::map<std::string, ir::QuantParams> activation_quant;
  // QDQ INT8: the activations' integer type, ir::DType::kU8 or ir::DType::kI8.
  ir::DType activation_type = ir::DType::kU8;
};

// Writes atomically (a temporary file renamed into place).
Status export_onnx(const ir::Graph& graph, const std::string& path, const OnnxExportOptions& options = {});
// The serialized ModelProto.
Result<std::string> export_onnx_bytes(const ir::Graph& graph, const OnnxExportOptions& options = {});

}  // namespace edgeopt::format
