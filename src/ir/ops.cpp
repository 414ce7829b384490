#include "ir/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::ir {
namespace {

[[noreturn]] void shape_error(const Node& node, const std::string& what) {
  fail(ErrorCode::kShapeMismatch,
       "node '" + node.name + "' (" + std::string(op_name(node.op)) + "): " + what,
       "the model's shapes do not agree; check the input size it expects");
}

const Shape& in_shape(const Graph& g, const Node& n, std::size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) shape_error(n, "missing input " + std::to_string(i));
  return g.value(n.inputs[i]).shape;
}

void set_out(Graph& g, const Node& n, Shape shape) { g.value(n.outputs.at(0)).shape = std::move(shape); }

std::int64_t normalize_axis(const Node& n, std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) shape_error(n, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

std::int64_t dim_or_one(std::int64_t d) { return d == kBatch ? 1 : d; }

Shape broadcast(const Node& n, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const std::int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    if (da == db) out[i] = da;
    else if (da == 1) out[i] = db;
    else if (db == 1) out[i] = da;
    else if (da == kBatch || db == kBatch) out[i] = kBatch;
    else shape_error(n, "cannot broadcast " + shape_to_string(a) + " with " + shape_to_string(b));
  }
  return out;
}

std::int64_t attr_at(const std::vector<std::int64_t>& v, std::size_t i, std::int64_t fallback) {
  return i < v.size() ? v[i] : fallback;
}

// Output extent of a sliding window, with PyTorch's ceil-mode rule that the last window must
// start inside the input or its leading padding.
std::int64_t window_out(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t pad_begin,
                        std::int64_t pad_end, std::int64_t dilation, bool ceil_mode) {
  const std::int64_t span = in + pad_begin + pad_end - dilation * (k - 1) - 1;
  if (span < 0) return 0;
  std::int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

// ---- shape functions ----

void shape_conv(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  const Shape& w = in_shape(g, n, 1);
  if (x.size() != 4 || w.size() != 4) shape_error(n, "expects 4-D input and weight, got " + shape_to_string(x) + " and " + shape_to_string(w));
  const auto& a = n.attrs;
  if (a.group <= 0 || x[1] % a.group != 0 || w[0] % a.group != 0) shape_error(n, "group " + std::to_string(a.group) + " does not divide the channels");
  if (w[1] * a.group != x[1]) shape_error(n, "input has " + std::to_string(x[1]) + " channels, weight expects " + std::to_string(w[1] * a.group));
  if (n.inputs.size() > 2 && n.inputs[2] >= 0 && sample_elements(g.value(n.inputs[2]).shape) != w[0]) shape_error(n, "bias size differs from output channels");
  Shape out{x[0], w[0], 0, 0};
  for (std::size_t i = 0; i < 2; ++i) {
    out[2 + i] = window_out(x[2 + i], w[2 + i], attr_at(a.strides, i, 1), attr_at(a.pads, i, 0),
                            attr_at(a.pads, i + 2, 0), attr_at(a.dilations, i, 1), false);
    if (out[2 + i] <= 0) shape_error(n, "input " + shape_to_string(x) + " is smaller than the kernel");
  }
  set_out(g, n, out);
}

void shape_gemm(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  const Shape& w = in_shape(g, n, 1);
  if (x.size() != 2 || w.size() != 2) shape_error(n, "expects 2-D input and weight, got " + shape_to_string(x) + " and " + shape_to_string(w));
  if (x[1] != w[1]) shape_error(n, "input has " + std::to_string(x[1]) + " features, weight expects " + std::to_string(w[1]));
  set_out(g, n, {x[0], w[0]});
}

void shape_matmul(Graph& g, const Node& n) {
  Shape a = in_shape(g, n, 0);
  Shape b = in_shape(g, n, 1);
  if (a.empty() || b.empty()) shape_error(n, "scalar operand");
  const bool a_vec = a.size() == 1;
  const bool b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  if (a.back() != b[b.size() - 2]) shape_error(n, "inner dimensions differ: " + shape_to_string(a) + " x " + shape_to_string(b));
  Shape batch = broadcast(n, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
  batch.push_back(a[a.size() - 2]);
  batch.push_back(b.back());
  if (a_vec) batch.erase(batch.end() - 2);
  if (b_vec) batch.pop_back();
  set_out(g, n, batch);
}

void shape_binary(Graph& g, const Node& n) { set_out(g, n, broadcast(n, in_shape(g, n, 0), in_shape(g, n, 1))); }

void shape_same(Graph& g, const Node& n) { set_out(g, n, in_shape(g, n, 0)); }

void shape_axis_same(Graph& g, const Node& n) {
  normalize_axis(n, n.attrs.axis, in_shape(g, n, 0).size());
  set_out(g, n, in_shape(g, n, 0));
}

void shape_batchnorm(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  if (x.size() < 2) shape_error(n, "expects at least 2-D input");
  for (std::size_t i = 1; i < 5; ++i) {
    if (sample_elements(in_shape(g, n, i)) != x[1]) shape_error(n, "parameter " + std::to_string(i) + " size differs from the " + std::to_string(x[1]) + " channels");
  }
  set_out(g, n, x);
}

void shape_pool(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  const auto& a = n.attrs;
  if (x.size() != 4 || a.kernel.size() != 2) shape_error(n, "expects 4-D input and a 2-D kernel");
  Shape out{x[0], x[1], 0, 0};
  for (std::size_t i = 0; i < 2; ++i) {
    out[2 + i] = window_out(x[2 + i], a.kernel[i], attr_at(a.strides, i, 1), attr_at(a.pads, i, 0),
                            attr_at(a.pads, i + 2, 0), attr_at(a.dilations, i, 1), a.ceil_mode);
    if (out[2 + i] <= 0) shape_error(n, "input " + shape_to_string(x) + " is smaller than the pooling window");
  }
  set_out(g, n, out);
}

void shape_global_pool(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  if (x.size() != 4) shape_error(n, "expects 4-D input, got " + shape_to_string(x));
  set_out(g, n, {x[0], x[1], 1, 1});
}

void shape_flatten(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  const std::int64_t axis = n.attrs.axis < 0 ? n.attrs.axis + static_cast<std::int64_t>(x.size()) : n.attrs.axis;
  if (axis < 0 || axis > static_cast<std::int64_t>(x.size())) shape_error(n, "axis out of range");
  std::int64_t outer = 1;
  std::int64_t inner = 1;
  bool outer_batch = false;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(x.size()); ++i) {
    if (i < axis) {
      if (x[static_cast<std::size_t>(i)] == kBatch) outer_batch = true;
      else outer *= x[static_cast<std::size_t>(i)];
    } else {
      inner *= dim_or_one(x[static_cast<std::size_t>(i)]);
    }
  }
  if (outer_batch && outer != 1) shape_error(n, "flattening at axis " + std::to_string(axis) + " would mix the batch into other dimensions");
  if (axis == 0 && !x.empty() && x[0] == kBatch) shape_error(n, "flattening at axis 0 would mix the batch into other dimensions");
  set_out(g, n, {outer_batch ? kBatch : outer, inner});
}

void shape_reshape(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  const bool batched = !x.empty() && x[0] == kBatch;
  Shape out = n.attrs.shape;
  int infer_at = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0) {
      if (i >= x.size()) shape_error(n, "0 in the target shape has no input dimension to copy");
      out[i] = x[i];
    }
    if (out[i] == -1 && !(batched && i == 0 && n.attrs.shape[0] == 0)) {
      if (infer_at >= 0) shape_error(n, "more than one -1 in the target shape");
      infer_at = static_cast<int>(i);
    } else if (out[i] != kBatch) {
      known *= out[i];
    }
  }
  const std::int64_t total = sample_elements(x);
  if (batched) {
    // The batch stays at dim 0: either copied (0), or the -1 there, or already symbolic.
    if (infer_at == 0) {
      if (known == 0 || total % known != 0) shape_error(n, "cannot reshape " + shape_to_string(x) + " to " + shape_to_string(n.attrs.shape));
      out[0] = kBatch;
      if (known != total) shape_error(n, "cannot reshape " + shape_to_string(x) + " to " + shape_to_string(n.attrs.shape) + " with a variable batch");
      set_out(g, n, out);
      return;
    }
    if (out.empty() || out[0] != kBatch) shape_error(n, "reshape to " + shape_to_string(n.attrs.shape) + " would mix the batch into other dimensions");
  }
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0) shape_error(n, "cannot reshape " + shape_to_string(x) + " to " + shape_to_string(n.attrs.shape));
    out[static_cast<std::size_t>(infer_at)] = total / known;
  } else if (known != total) {
    shape_error(n, "cannot reshape " + shape_to_string(x) + " (" + std::to_string(total) + " values per sample) to " + shape_to_string(n.attrs.shape));
  }
  set_out(g, n, out);
}

void shape_transpose(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  std::vector<std::int64_t> perm = n.attrs.perm;
  if (perm.empty()) {
    perm.resize(x.size());
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (perm.size() != x.size()) shape_error(n, "perm has " + std::to_string(perm.size()) + " entries for a rank-" + std::to_string(x.size()) + " input");
  Shape out(x.size());
  std::vector<bool> seen(x.size(), false);
  for (std::size_t i = 0; i < perm.size(); ++i) {
    const auto p = normalize_axis(n, perm[i], x.size());
    if (seen[static_cast<std::size_t>(p)]) shape_error(n, "perm repeats an axis");
    seen[static_cast<std::size_t>(p)] = true;
    out[i] = x[static_cast<std::size_t>(p)];
  }
  set_out(g, n, out);
}

void shape_concat(Graph& g, const Node& n) {
  Shape out = in_shape(g, n, 0);
  const auto axis = static_cast<std::size_t>(normalize_axis(n, n.attrs.axis, out.size()));
  for (std::size_t i = 1; i < n.inputs.size(); ++i) {
    const Shape& s = in_shape(g, n, i);
    if (s.size() != out.size()) shape_error(n, "inputs differ in rank");
    for (std::size_t d = 0; d < s.size(); ++d) {
      if (d == axis) out[d] += s[d];
      else if (s[d] != out[d]) shape_error(n, "inputs differ in dimension " + std::to_string(d) + ": " + shape_to_string(out) + " vs " + shape_to_string(s));
    }
  }
  set_out(g, n, out);
}

void shape_pad(Graph& g, const Node& n) {
  Shape out = in_shape(g, n, 0);
  const auto& p = n.attrs.pads;
  if (p.size() != 2 * out.size()) shape_error(n, "pads need 2 entries per dimension");
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (out[d] == kBatch) {
      if (p[d] != 0 || p[d + out.size()] != 0) shape_error(n, "cannot pad the batch dimension");
      continue;
    }
    out[d] += p[d] + p[d + out.size()];
    if (out[d] <= 0) shape_error(n, "padding removes the whole dimension");
  }
  set_out(g, n, out);
}

void shape_squeeze(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  Shape out;
  std::vector<bool> drop(x.size(), false);
  if (n.attrs.axes.empty()) {
    for (std::size_t d = 0; d < x.size(); ++d) drop[d] = x[d] == 1;
  } else {
    for (auto a : n.attrs.axes) {
      const auto d = static_cast<std::size_t>(normalize_axis(n, a, x.size()));
      if (x[d] != 1) shape_error(n, "cannot squeeze dimension " + std::to_string(d) + " of size " + std::to_string(x[d]));
      drop[d] = true;
    }
  }
  for (std::size_t d = 0; d < x.size(); ++d) {
    if (!drop[d]) out.push_back(x[d]);
  }
  set_out(g, n, out);
}

void shape_unsqueeze(Graph& g, const Node& n) {
  const Shape& x = in_shape(g, n, 0);
  const std::size_t rank = x.size() + n.attrs.axes.size();
  std::vector<bool> insert(rank, false);
  for (auto a : n.attrs.axes) {
    const auto d = static_cast<std::size_t>(normalize_axis(n, a, rank));
    if (insert[d]) shape_error(n, "axis " + std::to_string(a) + " is repeated");
    insert[d] = true;
  }
  Shape out;
  std::size_t src = 0;
  for (std::size_t d = 0; d < rank; ++d) out.push_back(insert[d] ? 1 : x.at(src++));
  set_out(g, n, out);
}

// ONNX Slice with positive steps: negative starts/ends count from the end, both clamp to the
// dimension. The symbolic batch may only be passed through whole.
void shape_slice(Graph& g, const Node& n) {
  Shape out = in_shape(g, n, 0);
  const auto& a = n.attrs;
  if (a.axes.empty() || a.starts.size() != a.axes.size() || a.ends.size() != a.axes.size() ||
      (!a.steps.empty() && a.steps.size() != a.axes.size())) {
    shape_error(n, "needs one start, end (and step) per axis");
  }
  std::vector<bool> seen(out.size(), false);
  for (std::size_t i = 0; i < a.axes.size(); ++i) {
    const auto d = static_cast<std::size_t>(normalize_axis(n, a.axes[i], out.size()));
    if (seen[d]) shape_error(n, "axis " + std::to_string(a.axes[i]) + " is repeated");
    seen[d] = true;
    const std::int64_t step = attr_at(a.steps, i, 1);
    if (step <= 0) shape_error(n, "step " + std::to_string(step) + " is not supported; only positive steps are");
    const std::int64_t dim = out[d];
    if (dim == kBatch) {
      const bool whole = a.starts[i] == 0 && a.ends[i] == std::numeric_limits<std::int64_t>::max() && step == 1;
      if (!whole) shape_error(n, "cannot slice the batch dimension");
      continue;
    }
    auto clamp_index = [dim](std::int64_t v) {
      if (v < 0) v = v < -dim ? 0 : v + dim;
      return std::min(v, dim);
    };
    const std::int64_t start = clamp_index(a.starts[i]);
    const std::int64_t end = clamp_index(a.ends[i]);
    const std::int64_t extent = end > start ? (end - start - 1) / step + 1 : 0;
    if (extent == 0) shape_error(n, "slice [" + std::to_string(a.starts[i]) + ", " + std::to_string(a.ends[i]) + ") of dimension " + std::to_string(d) + " (size " + std::to_string(dim) + ") is empty");
    out[d] = extent;
  }
  set_out(g, n, out);
}

// ---- cost functions ----

std::int64_t const_params(const Graph& g, const Node& n) {
  std::int64_t p = 0;
  for (int id : n.inputs) {
    if (id < 0) continue;
    const Value& v = g.value(id);
    if (v.is_constant && v.dtype != DType::kI64) p += sample_elements(v.shape);
  }
  return p;
}

OpCost base_cost(const Graph& g, const Node& n) {
  OpCost c;
  c.params = const_params(g, n);
  std::int64_t elems = 0;
  for (int id : n.inputs) {
    if (id >= 0 && g.value(id).dtype != DType::kI64) elems += sample_elements(g.value(id).shape);
  }
  for (int id : n.outputs) elems += sample_elements(g.value(id).shape);
  c.bytes_moved = 4 * elems;
  return c;
}

OpCost cost_plain(const Graph& g, const Node& n) { return base_cost(g, n); }

OpCost cost_conv(const Graph& g, const Node& n) {
  OpCost c = base_cost(g, n);
  const Shape& w = g.value(n.inputs[1]).shape;
  c.macs = sample_elements(g.value(n.outputs[0]).shape) * w[1] * w[2] * w[3];
  return c;
}

OpCost cost_gemm(const Graph& g, const Node& n) {
  OpCost c = base_cost(g, n);
  const Shape& w = g.value(n.inputs[1]).shape;
  c.macs = w[0] * w[1];
  return c;
}

OpCost cost_matmul(const Graph& g, const Node& n) {
  OpCost c = base_cost(g, n);
  const Shape& a = g.value(n.inputs[0]).shape;
  c.macs = sample_elements(g.value(n.outputs[0]).shape) * a.back();
  return c;
}

OpCost cost_view(const Graph& g, const Node& n) {
  OpCost c = base_cost(g, n);
  c.bytes_moved = 0;  // reshapes are free views in every runtime we model
  return c;
}

constexpr std::array<OpInfo, static_cast<std::size_t>(OpKind::kCount)> kOpTable{{
    {OpKind::kConv, "Conv", 2, 3, shape_conv, cost_conv},
    {OpKind::kGemm, "Gemm", 2, 3, shape_gemm, cost_gemm},
    {OpKind::kMatMul, "MatMul", 2, 2, shape_matmul, cost_matmul},
    {OpKind::kAdd, "Add", 2, 2, shape_binary, cost_plain},
    {OpKind::kSub, "Sub", 2, 2, shape_binary, cost_plain},
    {OpKind::kMul, "Mul", 2, 2, shape_binary, cost_plain},
    {OpKind::kDiv, "Div", 2, 2, shape_binary, cost_plain},
    {OpKind::kRelu, "Relu", 1, 1, shape_same, cost_plain},
    {OpKind::kClip, "Clip", 1, 1, shape_same, cost_plain},
    {OpKind::kLeakyRelu, "LeakyRelu", 1, 1, shape_same, cost_plain},
    {OpKind::kSigmoid, "Sigmoid", 1, 1, shape_same, cost_plain},
    {OpKind::kHardSigmoid, "HardSigmoid", 1, 1, shape_same, cost_plain},
    {OpKind::kHardSwish, "HardSwish", 1, 1, shape_same, cost_plain},
    {OpKind::kTanh, "Tanh", 1, 1, shape_same, cost_plain},
    {OpKind::kSoftmax, "Softmax", 1, 1, shape_axis_same, cost_plain},
    {OpKind::kLogSoftmax, "LogSoftmax", 1, 1, shape_axis_same, cost_plain},
    {OpKind::kBatchNorm, "BatchNormalization", 5, 5, shape_batchnorm, cost_plain},
    {OpKind::kMaxPool, "MaxPool", 1, 1, shape_pool, cost_plain},
    {OpKind::kAvgPool, "AveragePool", 1, 1, shape_pool, cost_plain},
    {OpKind::kGlobalAvgPool, "GlobalAveragePool", 1, 1, shape_global_pool, cost_plain},
    {OpKind::kFlatten, "Flatten", 1, 1, shape_flatten, cost_view},
    {OpKind::kReshape, "Reshape", 1, 1, shape_reshape, cost_view},
    {OpKind::kTranspose, "Transpose", 1, 1, shape_transpose, cost_plain},
    {OpKind::kConcat, "Concat", 1, 64, shape_concat, cost_plain},
    {OpKind::kPad, "Pad", 1, 1, shape_pad, cost_plain},
    {OpKind::kSqueeze, "Squeeze", 1, 1, shape_squeeze, cost_view},
    {OpKind::kUnsqueeze, "Unsqueeze", 1, 1, shape_unsqueeze, cost_view},
    {OpKind::kSlice, "Slice", 1, 1, shape_slice, cost_plain},
    {OpKind::kIdentity, "Identity", 1, 1, shape_same, cost_view},
}};

constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kOpTable.size(); ++i) {
    if (static_cast<std::size_t>(kOpTable[i].kind) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order(), "kOpTable rows must follow the OpKind enum order");

}  // namespace

const OpInfo& op_info(OpKind kind) {
  assert(kind < OpKind::kCount);
  return kOpTable[static_cast<std::size_t>(kind)];
}

std::string_view op_name(OpKind kind) { return kind < OpKind::kCount ? op_info(kind).name : "?"; }

OpKind op_from_name(std::string_view name) {
  for (const auto& info : kOpTable) {
    if (info.name == name) return info.kind;
  }
  return OpKind::kCount;
}

OpCost node_cost(const Graph& graph, const Node& node) { return op_info(node.op).cost(graph, node); }

}  // namespace edgeopt::ir
