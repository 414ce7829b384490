// Inside the ONNX importer: QuantizeLinear / DequantizeLinear, as QDQ int8 models carry them
// (EdgeOpt's own ptq_int8 twin, ONNX Runtime's quantize_static, NNCF). Constants are folded
// (int8 weights become float values that are exactly scale · (q - zero point), with their
// parameters kept on the IR constant); a Q -> DQ pair on a run-time tensor becomes that value's
// activation parameters, which is how the IR marks an int8 graph (src/techniques/int8.h).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <vector>

#include "importers/onnx/onnx_tensor.h"
#include "ir/graph.h"

namespace edgeopt::onnx_import::detail {

// The parameters of one QuantizeLinear or DequantizeLinear node.
struct QdqParams {
  std::vector<float> scales;
  std::vector<std::int64_t> zero_points;  // as stored, one per scale
  int axis = -1;                          // -1: per tensor; else the axis the scales run along
  bool is_unsigned = true;                // uint8 codes; int8 otherwise (int32: a bias, dequantize only)
  bool is_int32 = false;
};

// Reads and checks the scale and zero point (constants) for a tensor of rank `rank`.
// `code_type` is the ONNX type of the codes: the zero point's, else the quantized input's, else uint8.
QdqParams qdq_params(const onnx::NodeProto& node, const ConstTensor& scale, const ConstTensor* zero_point, std::size_t rank,
                     int code_type);
bool same_params(const QdqParams& a, const QdqParams& b);

// QuantizeLinear on a float constant: round half to even, saturate (the codes as int64).
ConstTensor fold_quantize(const onnx::NodeProto& node, const ConstTensor& x, const QdqParams& q);
// DequantizeLinear on integer codes.
ConstTensor fold_dequantize(const onnx::NodeProto& node, const ConstTensor& codes, const QdqParams& q);

// The IR's parameters for dequantized 8-bit constants: codes centred on int8 (uint8 codes and zero
// points minus 128), so a symmetric uint8 weight (zero point 128) is a symmetric int8 one.
ir::QuantParams constant_quant(const QdqParams& q);
// The IR's per-tensor activation parameters, uint8 form (int8's zero point plus 128: the same
// grid of 256 values). Per-channel activations are refused.
ir::QuantParams activation_quant(const onnx::NodeProto& node, const QdqParams& q);

// Whether value `id` is never negative: a ReLU-like op's output, possibly through pooling and
// reshapes, or a value whose uint8 grid starts at zero. A Q/DQ pair whose grid starts at zero on a
// value that can be negative clamps like a ReLU (ONNX Runtime's quantizer removes such ReLUs);
// the importer then makes the ReLU explicit.
bool non_negative(const ir::Graph& graph, int id);

// The parameters of a 2-D constant's transpose (per-channel axis 1 becomes axis 0).
ir::QuantParams transposed_quant(const ir::QuantParams& q);
// Conv/Gemm weights quantized per tensor get one (equal) scale per output channel, the form
// the int8 executor and the writers take.
void per_channel_weights(ir::Graph& graph);

}  // namespace edgeopt::onnx_import::detail
