#include "importers/onnx/onnx_qdq.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace edgeopt::onnx_import::detail {
namespace {

[[noreturn]] void corrupt(const std::string& what) {
  fail(ErrorCode::kCorruptFile, "not a valid ONNX model: " + what, "the file does not follow the ONNX specification; re-export the model");
}

// The scale index of element `k` of a tensor with `dims`, for parameters along `axis`.
std::size_t channel_of(std::size_t k, const std::vector<std::int64_t>& dims, int axis) {
  if (axis < 0) return 0;
  std::size_t inner = 1;
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < dims.size(); ++d) inner *= static_cast<std::size_t>(dims[d]);
  return (k / inner) % static_cast<std::size_t>(dims[static_cast<std::size_t>(axis)]);
}

}  // namespace

QdqParams qdq_params(const onnx::NodeProto& node, const ConstTensor& scale, const ConstTensor* zero_point, std::size_t rank,
                     int code_type) {
  QdqParams q;
  if (!scale.is_float) corrupt(describe(node) + ": its scale is not a float tensor");
  if (scale.f.empty()) corrupt(describe(node) + ": its scale is empty");
  q.scales = scale.f;
  for (float s : q.scales) {
    if (!std::isfinite(s) || s <= 0) corrupt(describe(node) + " has the scale " + std::to_string(s) + "; scales must be finite and positive");
  }
  using TP = onnx::TensorProto;
  q.is_int32 = code_type == TP::INT32;
  if (code_type != TP::UINT8 && code_type != TP::INT8 && !(q.is_int32 && node.op_type() == "DequantizeLinear")) {
    fail(ErrorCode::kUnsupportedOp,
         describe(node) + " uses codes of ONNX data type " + std::to_string(code_type) + "; EdgeOpt reads 8-bit QDQ models (uint8/int8, and int32 biases)",
         "quantize to 8 bits (onnxruntime.quantization.quantize_static with QuantType.QUInt8 or QInt8)");
  }
  q.is_unsigned = code_type == TP::UINT8;
  if (zero_point) {
    if (zero_point->is_float) corrupt(describe(node) + ": its zero point is a float tensor");
    if (zero_point->size() != q.scales.size()) corrupt(describe(node) + " has " + std::to_string(zero_point->size()) + " zero points for " + std::to_string(q.scales.size()) + " scales");
    q.zero_points = zero_point->i;
  } else {
    q.zero_points.assign(q.scales.size(), 0);
  }
  if (q.scales.size() > 1 || scale.dims.size() == 1) {
    if (q.scales.size() > 1 || find_attr(node, "axis")) {
      const auto r = static_cast<std::int64_t>(rank);
      std::int64_t axis = attr_int(node, "axis", 1);
      if (axis < -r || axis >= r) corrupt(describe(node) + ": axis " + std::to_string(axis) + " is out of range for a rank-" + std::to_string(rank) + " tensor");
      q.axis = static_cast<int>(axis < 0 ? axis + r : axis);
    }
  }
  if (q.scales.size() == 1) q.axis = -1;
  return q;
}

bool same_params(const QdqParams& a, const QdqParams& b) {
  return a.scales == b.scales && a.zero_points == b.zero_points && a.axis == b.axis && a.is_unsigned == b.is_unsigned;
}

ConstTensor fold_quantize(const onnx::NodeProto& node, const ConstTensor& x, const QdqParams& q) {
  if (!x.is_float) corrupt(describe(node) + " quantizes an integer tensor");
  if (q.axis >= 0 && (static_cast<std::size_t>(q.axis) >= x.dims.size() || x.dims[static_cast<std::size_t>(q.axis)] != static_cast<std::int64_t>(q.scales.size()))) {
    corrupt(describe(node) + " has " + std::to_string(q.scales.size()) + " scales for axis " + std::to_string(q.axis) + " of " + ir::shape_to_string(x.dims));
  }
  const double lo = q.is_unsigned ? 0 : -128;
  const double hi = q.is_unsigned ? 255 : 127;
  ConstTensor out;
  out.is_float = false;
  out.dims = x.dims;
  out.data_type = q.is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8;
  out.i.resize(x.f.size());
  for (std::size_t k = 0; k < x.f.size(); ++k) {
    const std::size_t c = channel_of(k, x.dims, q.axis);
    const double v = std::nearbyint(static_cast<double>(x.f[k]) / q.scales[c]) + static_cast<double>(q.zero_points[c]);
    out.i[k] = static_cast<std::int64_t>(std::clamp(v, lo, hi));
  }
  return out;
}

ConstTensor fold_dequantize(const onnx::NodeProto& node, const ConstTensor& codes, const QdqParams& q) {
  if (codes.is_float) corrupt(describe(node) + " dequantizes a float tensor");
  if (q.axis >= 0 && (static_cast<std::size_t>(q.axis) >= codes.dims.size() || codes.dims[static_cast<std::size_t>(q.axis)] != static_cast<std::int64_t>(q.scales.size()))) {
    corrupt(describe(node) + " has " + std::to_string(q.scales.size()) + " scales for axis " + std::to_string(q.axis) + " of " + ir::shape_to_string(codes.dims));
  }
  ConstTensor out;
  out.dims = codes.dims;
  out.f.resize(codes.i.size());
  for (std::size_t k = 0; k < codes.i.size(); ++k) {
    const std::size_t c = channel_of(k, codes.dims, q.axis);
    out.f[k] = q.scales[c] * static_cast<float>(codes.i[k] - q.zero_points[c]);
  }
  return out;
}

ir::QuantParams constant_quant(const QdqParams& q) {
  ir::QuantParams p;
  p.scales = q.scales;
  p.axis = q.axis;
  for (std::int64_t z : q.zero_points) p.zero_points.push_back(static_cast<std::int32_t>(q.is_unsigned ? z - 128 : z));
  return p;
}

ir::QuantParams activation_quant(const onnx::NodeProto& node, const QdqParams& q) {
  if (q.scales.size() != 1) {
    fail(ErrorCode::kUnsupportedOp,
         describe(node) + " quantizes a run-time tensor per channel (" + std::to_string(q.scales.size()) + " scales); EdgeOpt's int8 activations have one scale per tensor",
         "quantize activations per tensor (quantize_static's default; per_channel applies to weights only)");
  }
  ir::QuantParams p;
  p.scales = q.scales;
  p.zero_points = {static_cast<std::int32_t>(q.is_unsigned ? q.zero_points[0] : q.zero_points[0] + 128)};
  p.axis = -1;
  return p;
}

bool non_negative(const ir::Graph& graph, int id) {
  for (int depth = 0; depth < 64; ++depth) {
    const ir::Value& v = graph.value(id);
    if (v.quant && v.quant->zero_points.size() == 1 && v.quant->zero_points[0] == 0) return true;
    const ir::Node* producer = nullptr;
    for (const ir::Node& n : graph.nodes) {
      if (n.outputs[0] == id) producer = &n;
    }
    if (!producer || producer->inputs.empty()) return false;
    switch (producer->op) {
      case ir::OpKind::kRelu:
      case ir::OpKind::kSigmoid:
      case ir::OpKind::kHardSigmoid:
      case ir::OpKind::kSoftmax: return true;
      case ir::OpKind::kClip: return producer->attrs.min >= 0;
      case ir::OpKind::kMaxPool:
      case ir::OpKind::kAvgPool:
      case ir::OpKind::kGlobalAvgPool:
      case ir::OpKind::kFlatten:
      case ir::OpKind::kReshape:
      case ir::OpKind::kSqueeze:
      case ir::OpKind::kUnsqueeze:
      case ir::OpKind::kTranspose:
      case ir::OpKind::kIdentity: id = producer->inputs[0]; break;
      default: return false;
    }
    if (id < 0) return false;
  }
  return false;
}

ir::QuantParams transposed_quant(const ir::QuantParams& q) {
  ir::QuantParams t = q;
  if (q.axis == 0) t.axis = 1;
  else if (q.axis == 1) t.axis = 0;
  return t;
}

void per_channel_weights(ir::Graph& graph) {
  for (const ir::Node& n : graph.nodes) {
    if ((n.op != ir::OpKind::kConv && n.op != ir::OpKind::kGemm) || n.inputs.size() < 2 || n.inputs[1] < 0) continue;
    ir::Value& w = graph.value(n.inputs[1]);
    if (!w.is_constant || !w.quant || w.quant->axis >= 0 || w.quant->scales.size() != 1 || w.shape.empty()) continue;
    const auto channels = static_cast<std::size_t>(w.shape[0]);
    w.quant->axis = 0;
    w.quant->scales.assign(channels, w.quant->scales[0]);
    w.quant->zero_points.assign(channels, w.quant->zero_points.empty() ? 0 : w.quant->zero_points[0]);
  }
}

}  // namespace edgeopt::onnx_import::detail
