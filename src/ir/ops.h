// The one op catalogue. Every part of EdgeOpt (importers, backend, estimator, UI) reads ops from
// here; adding an op means one enum entry and one row in kOpTable (ops.cpp), which a
// static_assert keeps in step.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace edgeopt::ir {

enum class OpKind : std::uint8_t {
  kConv,           // X, W[Cout, Cin/group, kh, kw], B?  (grouped, depthwise, dilated)
  kGemm,           // X[N, K], W[M, K], B?[M]: Y = X W^T + B
  kMatMul,         // numpy matmul with broadcasting
  kAdd,
  kSub,
  kMul,
  kDiv,
  kRelu,
  kClip,           // attrs.min, attrs.max
  kLeakyRelu,      // attrs.alpha
  kSigmoid,
  kHardSigmoid,    // max(0, min(1, alpha x + beta))
  kHardSwish,
  kTanh,
  kSoftmax,        // over attrs.axis
  kLogSoftmax,     // over attrs.axis
  kBatchNorm,      // X, scale, bias, mean, var; attrs.epsilon; channel axis 1
  kMaxPool,
  kAvgPool,
  kGlobalAvgPool,  // NCHW -> NC11
  kFlatten,        // attrs.axis: [d0..d(axis-1)] x [rest]
  kReshape,        // attrs.shape (0 copies the input dim, -1 infers)
  kTranspose,      // attrs.perm
  kConcat,         // attrs.axis
  kPad,            // attrs.pads (ONNX order: begins then ends), pad_mode, pad_value
  kSqueeze,        // attrs.axes
  kUnsqueeze,      // attrs.axes
  kSlice,          // attrs.axes, starts, ends, steps (ONNX Slice; steps > 0, empty = all 1)
  kIdentity,
  kCount
};

enum class PadMode : std::uint8_t { kConstant, kReflect, kEdge };

struct Attrs {
  std::vector<std::int64_t> kernel;     // pooling kernel (conv kernel comes from W)
  std::vector<std::int64_t> strides;    // default 1
  std::vector<std::int64_t> pads;       // conv/pool: [top, left, bottom, right]; Pad: ONNX order
  std::vector<std::int64_t> dilations;  // default 1
  std::int64_t group = 1;
  std::int64_t axis = 1;
  std::vector<std::int64_t> perm;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> axes;
  std::vector<std::int64_t> starts;     // Slice: per entry of axes; negative counts from the end
  std::vector<std::int64_t> ends;       // Slice: exclusive, clamped to the dimension
  std::vector<std::int64_t> steps;      // Slice: default 1
  float alpha = 0.0F;
  float beta = 0.0F;
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
  float epsilon = 1e-5F;
  float pad_value = 0.0F;
  PadMode pad_mode = PadMode::kConstant;
  bool ceil_mode = false;
  bool count_include_pad = false;
};

struct Node;
class Graph;

// Per-sample cost of one node, from shapes alone.
struct OpCost {
  std::int64_t params = 0;        // constant weight values the node reads
  std::int64_t macs = 0;          // multiply-accumulates for one sample
  std::int64_t bytes_moved = 0;   // activations read + written + weights read, at fp32
};

using ShapeFn = void (*)(Graph& graph, const Node& node);
using CostFn = OpCost (*)(const Graph& graph, const Node& node);

struct OpInfo {
  OpKind kind;
  std::string_view name;
  int min_inputs;
  int max_inputs;
  ShapeFn infer_shape;
  CostFn cost;
};

const OpInfo& op_info(OpKind kind);
std::string_view op_name(OpKind kind);
// Returns OpKind::kCount when the name is not in the catalogue.
OpKind op_from_name(std::string_view name);

OpCost node_cost(const Graph& graph, const Node& node);

}  // namespace edgeopt::ir
