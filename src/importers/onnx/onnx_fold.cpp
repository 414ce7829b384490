// Import-time evaluation of shape subgraphs (Shape -> Gather -> Unsqueeze -> Concat -> Reshape and
// friends) on int64 data, so Reshape and Pad get constant targets. Every index is bounds-checked
// and every integer operation overflow-checked: the inputs come from untrusted files.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "importers/onnx/onnx_tensor.h"
#include "ir/graph.h"

namespace edgeopt::onnx_import::detail {
namespace {

using Dims = std::vector<std::int64_t>;

[[noreturn]] void bad(const onnx::NodeProto& node, const std::string& what) {
  fail(ErrorCode::kCorruptFile, "not a valid ONNX model: " + describe(node) + ": " + what,
       "the model does not follow the ONNX specification; re-export it");
}

// Ops that can make more elements than they read (broadcasting, repeated gather indices,
// ConstantOfShape) get at most kMaxFoldedElements beyond their inputs; a tiny hostile file must
// not allocate gigabytes.
std::size_t count_of(const onnx::NodeProto& node, const Dims& dims, std::size_t input_elements) {
  const std::int64_t limit = std::max<std::int64_t>(kMaxFoldedElements, static_cast<std::int64_t>(input_elements));
  return static_cast<std::size_t>(checked_count(dims, limit, "the result of " + describe(node)));
}

std::int64_t normalize_axis(const onnx::NodeProto& node, std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) bad(node, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

const ConstTensor& input(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in, std::size_t k) {
  if (k >= in.size() || in[k] == nullptr) bad(node, "input " + std::to_string(k) + " is missing");
  return *in[k];
}

// A new tensor with `dims` whose element j is element `from[j]` of `src`.
ConstTensor pick(const ConstTensor& src, Dims dims, const std::vector<std::size_t>& from) {
  ConstTensor out;
  out.is_float = src.is_float;
  out.dims = std::move(dims);
  for (std::size_t j : from) {
    if (src.is_float) out.f.push_back(src.f.at(j));
    else out.i.push_back(src.i.at(j));
  }
  if (!src.origin.empty()) {
    for (std::size_t j : from) out.origin.push_back(src.origin_at(j));
  }
  return out;
}

std::vector<std::size_t> row_major_strides(const Dims& dims) {
  std::vector<std::size_t> s(dims.size(), 1);
  for (std::size_t d = dims.size(); d-- > 1;) s[d - 1] = s[d] * static_cast<std::size_t>(dims[d]);
  return s;
}

std::int64_t checked_op(const onnx::NodeProto& node, const std::string& op, std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  bool overflow = false;
  if (op == "Add") overflow = __builtin_add_overflow(a, b, &r);
  else if (op == "Sub") overflow = __builtin_sub_overflow(a, b, &r);
  else if (op == "Mul") overflow = __builtin_mul_overflow(a, b, &r);
  else {
    if (b == 0) bad(node, "integer division by zero");
    if (a == std::numeric_limits<std::int64_t>::min() && b == -1) overflow = true;
    else r = a / b;
  }
  if (overflow) bad(node, "integer overflow");
  return r;
}

float float_op(const std::string& op, float a, float b) {
  if (op == "Add") return a + b;
  if (op == "Sub") return a - b;
  if (op == "Mul") return a * b;
  return a / b;
}

// Numpy-style broadcasting of several shapes: the result shape, and for each result element the
// flat index it reads in every operand. Fails when the shapes do not broadcast.
struct Broadcast {
  Dims dims;
  std::vector<Dims> padded;  // each operand's dims, left-padded with 1s to the result rank
  std::vector<std::vector<std::size_t>> strides;
};

Broadcast broadcast(const onnx::NodeProto& node, const std::vector<const Dims*>& shapes) {
  Broadcast b;
  std::size_t rank = 0;
  for (const auto* s : shapes) rank = std::max(rank, s->size());
  b.dims.assign(rank, 1);
  for (const auto* s : shapes) {
    Dims p(rank, 1);
    std::copy(s->begin(), s->end(), p.begin() + static_cast<std::ptrdiff_t>(rank - s->size()));
    for (std::size_t d = 0; d < rank; ++d) {
      if (p[d] == b.dims[d] || p[d] == 1) continue;
      if (b.dims[d] != 1) {
        std::string text;
        for (const auto* t : shapes) text += (text.empty() ? "" : " with ") + ir::shape_to_string(*t);
        bad(node, "cannot broadcast " + text);
      }
      b.dims[d] = p[d];
    }
    b.padded.push_back(std::move(p));
  }
  for (const auto& p : b.padded) b.strides.push_back(row_major_strides(p));
  return b;
}

// Flat index into operand k of result element j (whose per-dim strides are `out_strides`).
std::size_t source_index(const Broadcast& b, const std::vector<std::size_t>& out_strides, std::size_t k, std::size_t j) {
  std::size_t at = 0;
  for (std::size_t d = 0; d < b.dims.size(); ++d) {
    if (b.padded[k][d] == 1) continue;
    at += ((j / out_strides[d]) % static_cast<std::size_t>(b.dims[d])) * b.strides[k][d];
  }
  return at;
}

ConstTensor binary(const onnx::NodeProto& node, const ConstTensor& a, const ConstTensor& b) {
  if (a.is_float != b.is_float) bad(node, "mixes float and integer inputs");
  const Broadcast shape = broadcast(node, {&a.dims, &b.dims});
  const std::size_t n = count_of(node, shape.dims, a.size() + b.size());
  const auto so = row_major_strides(shape.dims);
  ConstTensor out;
  out.is_float = a.is_float;
  out.dims = shape.dims;
  const std::string& op = node.op_type();
  const bool tagged = !a.origin.empty() || !b.origin.empty();
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t ia = source_index(shape, so, 0, j);
    const std::size_t ib = source_index(shape, so, 1, j);
    if (a.is_float) {
      out.f.push_back(float_op(op, a.f.at(ia), b.f.at(ib)));
      continue;
    }
    out.i.push_back(checked_op(node, op, a.i.at(ia), b.i.at(ib)));
    if (!tagged) continue;
    // The batch size survives `* 1`, `/ 1`, `+ 0` and `- 0`; anything else is derived from it.
    const Origin oa = a.origin_at(ia);
    const Origin ob = b.origin_at(ib);
    const bool neutral_b = (op == "Mul" || op == "Div") ? b.i[ib] == 1 : b.i[ib] == 0;
    const bool neutral_a = op == "Mul" ? a.i[ia] == 1 : (op == "Add" && a.i[ia] == 0);
    Origin o = Origin::kPlain;
    if (oa != Origin::kPlain && ob == Origin::kPlain && neutral_b) o = oa;
    else if (ob != Origin::kPlain && oa == Origin::kPlain && neutral_a) o = ob;
    else if (oa != Origin::kPlain || ob != Origin::kPlain) o = Origin::kFromBatch;
    out.origin.push_back(o);
  }
  return out;
}

// Equal gives a bool tensor, held as int64 0/1 like every folded bool.
ConstTensor equal(const onnx::NodeProto& node, const ConstTensor& a, const ConstTensor& b) {
  if (a.is_float != b.is_float) bad(node, "mixes float and integer inputs");
  const Broadcast shape = broadcast(node, {&a.dims, &b.dims});
  const std::size_t n = count_of(node, shape.dims, a.size() + b.size());
  const auto so = row_major_strides(shape.dims);
  ConstTensor out;
  out.is_float = false;
  out.dims = shape.dims;
  const bool tagged = !a.origin.empty() || !b.origin.empty();
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t ia = source_index(shape, so, 0, j);
    const std::size_t ib = source_index(shape, so, 1, j);
    out.i.push_back(a.is_float ? a.f.at(ia) == b.f.at(ib) : a.i.at(ia) == b.i.at(ib));
    if (!tagged) continue;
    const bool from_batch = a.origin_at(ia) != Origin::kPlain || b.origin_at(ib) != Origin::kPlain;
    out.origin.push_back(from_batch ? Origin::kFromBatch : Origin::kPlain);
  }
  return out;
}

ConstTensor where(const onnx::NodeProto& node, const ConstTensor& cond, const ConstTensor& x, const ConstTensor& y) {
  if (x.is_float != y.is_float) bad(node, "mixes float and integer inputs");
  const auto flags = int_values(cond, "the condition of " + describe(node));
  const Broadcast shape = broadcast(node, {&cond.dims, &x.dims, &y.dims});
  const std::size_t n = count_of(node, shape.dims, cond.size() + x.size() + y.size());
  const auto so = row_major_strides(shape.dims);
  ConstTensor out;
  out.is_float = x.is_float;
  out.dims = shape.dims;
  const bool tagged = !cond.origin.empty() || !x.origin.empty() || !y.origin.empty();
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t ic = source_index(shape, so, 0, j);
    const bool take_x = flags.at(ic) != 0;
    const ConstTensor& src = take_x ? x : y;
    const std::size_t at = source_index(shape, so, take_x ? 1 : 2, j);
    if (src.is_float) out.f.push_back(src.f.at(at));
    else out.i.push_back(src.i.at(at));
    if (!tagged) continue;
    // A choice made on the batch size is derived from it, whatever was chosen.
    out.origin.push_back(cond.origin_at(ic) != Origin::kPlain ? Origin::kFromBatch : src.origin_at(at));
  }
  return out;
}

ConstTensor neg(const onnx::NodeProto& node, const ConstTensor& x) {
  ConstTensor out = x;
  for (auto& v : out.f) v = -v;
  for (auto& v : out.i) {
    if (v == std::numeric_limits<std::int64_t>::min()) bad(node, "integer overflow");
    v = -v;
  }
  for (auto& o : out.origin) {
    if (o != Origin::kPlain) o = Origin::kFromBatch;
  }
  return out;
}

ConstTensor gather(const onnx::NodeProto& node, const ConstTensor& data, const ConstTensor& indices) {
  if (data.dims.empty()) bad(node, "gathers from a scalar");
  const auto axis = static_cast<std::size_t>(normalize_axis(node, attr_int(node, "axis", 0), data.dims.size()));
  const auto idx = int_values(indices, "the indices of " + describe(node));
  Dims out_dims(data.dims.begin(), data.dims.begin() + static_cast<std::ptrdiff_t>(axis));
  out_dims.insert(out_dims.end(), indices.dims.begin(), indices.dims.end());
  out_dims.insert(out_dims.end(), data.dims.begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.dims.end());
  count_of(node, out_dims, data.size() + indices.size());
  std::size_t outer = 1;
  std::size_t inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= static_cast<std::size_t>(data.dims[d]);
  for (std::size_t d = axis + 1; d < data.dims.size(); ++d) inner *= static_cast<std::size_t>(data.dims[d]);
  const std::int64_t extent = data.dims[axis];
  std::vector<std::size_t> from;
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::int64_t k : idx) {
      if (k < -extent || k >= extent) bad(node, "index " + std::to_string(k) + " is out of range for size " + std::to_string(extent));
      const auto pos = static_cast<std::size_t>(k < 0 ? k + extent : k);
      for (std::size_t r = 0; r < inner; ++r) from.push_back((o * static_cast<std::size_t>(extent) + pos) * inner + r);
    }
  }
  return pick(data, out_dims, from);
}

ConstTensor concat(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in) {
  if (in.empty()) bad(node, "has no inputs");
  const ConstTensor& first = input(node, in, 0);
  if (first.dims.empty()) bad(node, "concatenates scalars");
  const auto axis = static_cast<std::size_t>(normalize_axis(node, attr_int(node, "axis", 0), first.dims.size()));
  Dims out_dims = first.dims;
  out_dims[axis] = 0;
  for (std::size_t k = 0; k < in.size(); ++k) {
    const ConstTensor& t = input(node, in, k);
    if (t.is_float != first.is_float || t.dims.size() != first.dims.size()) bad(node, "inputs differ in type or rank");
    for (std::size_t d = 0; d < t.dims.size(); ++d) {
      if (d != axis && t.dims[d] != first.dims[d]) bad(node, "inputs differ in dimension " + std::to_string(d));
    }
    out_dims[axis] += t.dims[axis];
  }
  std::size_t total = 0;
  for (const auto* t : in) total += t->size();
  count_of(node, out_dims, total);
  std::size_t outer = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= static_cast<std::size_t>(first.dims[d]);
  ConstTensor out;
  out.is_float = first.is_float;
  out.dims = out_dims;
  bool tagged = false;
  for (const auto* t : in) tagged = tagged || !t->origin.empty();
  for (std::size_t o = 0; o < outer; ++o) {
    for (const auto* t : in) {
      const std::size_t chunk = t->size() / std::max<std::size_t>(outer, 1);
      for (std::size_t r = 0; r < chunk; ++r) {
        const std::size_t j = o * chunk + r;
        if (t->is_float) out.f.push_back(t->f.at(j));
        else out.i.push_back(t->i.at(j));
        if (tagged) out.origin.push_back(t->origin_at(j));
      }
    }
  }
  return out;
}

// Axes from the attribute (opset < 13) or the second input (opset >= 13).
std::vector<std::int64_t> axes_of(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in) {
  if (find_attr(node, "axes")) return attr_ints(node, "axes");
  if (in.size() > 1 && in[1] != nullptr) return int_values(*in[1], "the axes of " + describe(node));
  return {};
}

ConstTensor unsqueeze(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in) {
  ConstTensor out = input(node, in, 0);
  const auto axes = axes_of(node, in);
  const std::size_t rank = out.dims.size() + axes.size();
  std::vector<bool> insert(rank, false);
  for (auto a : axes) {
    const auto d = static_cast<std::size_t>(normalize_axis(node, a, rank));
    if (insert[d]) bad(node, "repeats axis " + std::to_string(a));
    insert[d] = true;
  }
  Dims dims;
  std::size_t src = 0;
  for (std::size_t d = 0; d < rank; ++d) dims.push_back(insert[d] ? 1 : out.dims.at(src++));
  out.dims = dims;
  return out;
}

ConstTensor squeeze(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in) {
  ConstTensor out = input(node, in, 0);
  const auto axes = axes_of(node, in);
  std::vector<bool> drop(out.dims.size(), false);
  for (auto a : axes) {
    const auto d = static_cast<std::size_t>(normalize_axis(node, a, out.dims.size()));
    if (out.dims[d] != 1) bad(node, "cannot squeeze dimension " + std::to_string(d) + " of size " + std::to_string(out.dims[d]));
    drop[d] = true;
  }
  Dims dims;
  for (std::size_t d = 0; d < out.dims.size(); ++d) {
    if (!(axes.empty() ? out.dims[d] == 1 : drop[d])) dims.push_back(out.dims[d]);
  }
  out.dims = dims;
  return out;
}

ConstTensor slice(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in) {
  const ConstTensor& data = input(node, in, 0);
  std::vector<std::int64_t> starts;
  std::vector<std::int64_t> ends;
  std::vector<std::int64_t> axes;
  std::vector<std::int64_t> steps;
  if (find_attr(node, "starts")) {  // opset < 10
    starts = attr_ints(node, "starts");
    ends = attr_ints(node, "ends");
    axes = attr_ints(node, "axes");
  } else {
    starts = int_values(input(node, in, 1), "the starts of " + describe(node));
    ends = int_values(input(node, in, 2), "the ends of " + describe(node));
    if (in.size() > 3 && in[3]) axes = int_values(*in[3], "the axes of " + describe(node));
    if (in.size() > 4 && in[4]) steps = int_values(*in[4], "the steps of " + describe(node));
  }
  if (axes.empty()) {
    for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) bad(node, "starts, ends, axes and steps differ in length");
  const std::size_t rank = data.dims.size();
  std::vector<std::int64_t> first(rank, 0);
  std::vector<std::int64_t> step(rank, 1);
  Dims out_dims = data.dims;
  std::vector<bool> seen(rank, false);
  for (std::size_t k = 0; k < starts.size(); ++k) {
    const auto d = static_cast<std::size_t>(normalize_axis(node, axes[k], rank));
    if (seen[d]) bad(node, "slices axis " + std::to_string(d) + " twice");
    seen[d] = true;
    const std::int64_t n = data.dims[d];
    const std::int64_t s = std::clamp<std::int64_t>(steps[k], -kMaxDim, kMaxDim);
    if (s == 0) bad(node, "has a zero step");
    // Negative positions count from the end; clamping first keeps the arithmetic in range.
    auto resolve = [n](std::int64_t v) { return v < 0 ? std::max<std::int64_t>(v, -n - 1) + n : std::min<std::int64_t>(v, n + 1); };
    std::int64_t b = resolve(starts[k]);
    std::int64_t e = resolve(ends[k]);
    std::int64_t len = 0;
    if (s > 0) {
      b = std::clamp<std::int64_t>(b, 0, n);
      e = std::clamp<std::int64_t>(e, 0, n);
      len = e > b ? (e - b + s - 1) / s : 0;
    } else if (n > 0) {  // an empty axis stays empty (and [0, n - 1] would be an inverted range)
      b = std::clamp<std::int64_t>(b, 0, n - 1);
      e = std::clamp<std::int64_t>(e, -1, n - 1);
      len = b > e ? (b - e - s - 1) / (-s) : 0;
    } else {
      b = 0;
    }
    first[d] = b;
    step[d] = s;
    out_dims[d] = len;
  }
  const std::size_t count = count_of(node, out_dims, data.size());
  const auto in_strides = row_major_strides(data.dims);
  const auto out_strides = row_major_strides(out_dims);
  std::vector<std::size_t> from;
  from.reserve(count);
  for (std::size_t j = 0; j < count; ++j) {
    std::size_t src = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      const auto coord = static_cast<std::int64_t>((j / out_strides[d]) % static_cast<std::size_t>(out_dims[d]));
      src += static_cast<std::size_t>(first[d] + coord * step[d]) * in_strides[d];
    }
    from.push_back(src);
  }
  return pick(data, out_dims, from);
}

ConstTensor cast(const onnx::NodeProto& node, const ConstTensor& x) {
  using TP = onnx::TensorProto;
  const auto to = attr_int(node, "to", TP::FLOAT);
  const bool to_float = to == TP::FLOAT || to == TP::DOUBLE || to == TP::FLOAT16 || to == TP::BFLOAT16;
  const bool to_int = to == TP::INT64 || to == TP::INT32 || to == TP::INT16 || to == TP::INT8 || to == TP::UINT8 ||
                      to == TP::UINT16 || to == TP::UINT32 || to == TP::UINT64 || to == TP::BOOL;
  if (!to_float && !to_int) fail(ErrorCode::kUnsupportedOp, describe(node) + " casts to data type " + std::to_string(to) + ", which EdgeOpt does not evaluate", "re-export with opset 13, or open an issue");
  ConstTensor out = x;
  if (to_float && !x.is_float) {
    out.is_float = true;
    out.f.assign(x.i.begin(), x.i.end());
    out.i.clear();
    out.origin.clear();
  } else if (to_int && x.is_float) {
    out.is_float = false;
    for (float v : x.f) {
      if (!std::isfinite(v) || std::fabs(v) > static_cast<float>(kMaxDim)) bad(node, "casts a value out of the integer range");
      out.i.push_back(static_cast<std::int64_t>(v));
    }
    out.f.clear();
  }
  if (to == TP::BOOL && !out.is_float) {
    for (auto& v : out.i) v = v != 0;
  }
  return out;
}

ConstTensor constant(const onnx::NodeProto& node) {
  ConstTensor out;
  if (const auto* a = find_attr(node, "value")) return decode_tensor(a->t(), describe(node));
  if (find_attr(node, "value_float")) {
    out.f = {attr_float(node, "value_float", 0.0F)};
    return out;
  }
  if (find_attr(node, "value_floats")) {
    out.f = attr_floats(node, "value_floats");
    out.dims = {static_cast<std::int64_t>(out.f.size())};
    return out;
  }
  out.is_float = false;
  if (find_attr(node, "value_int")) {
    out.i = {attr_int(node, "value_int", 0)};
    return out;
  }
  if (find_attr(node, "value_ints")) {
    out.i = attr_ints(node, "value_ints");
    out.dims = {static_cast<std::int64_t>(out.i.size())};
    return out;
  }
  fail(ErrorCode::kUnsupportedOp, describe(node) + " holds a sparse or string value, which EdgeOpt does not read",
       "re-export with opset 13, or open an issue");
}

ConstTensor constant_of_shape(const onnx::NodeProto& node, const ConstTensor& shape) {
  if (shape.depends_on_batch()) {
    fail(ErrorCode::kUnsupportedOp, describe(node) + " builds a tensor whose size depends on the batch size",
         "export the model with a fixed input shape, or open an issue");
  }
  Dims dims = int_values(shape, "the shape of " + describe(node));
  const std::size_t n = count_of(node, dims, 0);
  ConstTensor fill;
  fill.f = {0.0F};
  fill.dims = {1};
  if (const auto* a = find_attr(node, "value")) fill = decode_tensor(a->t(), describe(node));
  if (fill.size() != 1) bad(node, "its value must hold one element");
  ConstTensor out;
  out.is_float = fill.is_float;
  out.dims = dims;
  if (fill.is_float) out.f.assign(n, fill.f[0]);
  else out.i.assign(n, fill.i[0]);
  return out;
}

ConstTensor reshape(const onnx::NodeProto& node, const ConstTensor& data, const ConstTensor& shape) {
  Dims target = int_values(shape, "the shape of " + describe(node));
  const bool allow_zero = attr_int(node, "allowzero", 0) == 1;
  int infer_at = -1;
  std::int64_t known = 1;
  for (std::size_t d = 0; d < target.size(); ++d) {
    if (target[d] == 0 && !allow_zero) {
      if (d >= data.dims.size()) bad(node, "copies a dimension the input does not have");
      target[d] = data.dims[d];
    }
    if (target[d] == -1) {
      if (infer_at >= 0) bad(node, "has more than one -1 in its target shape");
      infer_at = static_cast<int>(d);
    } else if (target[d] < 0 || target[d] > kMaxDim) {
      bad(node, "has an invalid target dimension " + std::to_string(target[d]));
    } else {
      known = known > kMaxElements / std::max<std::int64_t>(target[d], 1) ? kMaxElements : known * target[d];
    }
  }
  const auto total = static_cast<std::int64_t>(data.size());
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0) bad(node, "cannot reshape " + ir::shape_to_string(data.dims) + " to " + ir::shape_to_string(target));
    target[static_cast<std::size_t>(infer_at)] = total / known;
  } else if (known != total) {
    bad(node, "cannot reshape " + ir::shape_to_string(data.dims) + " to " + ir::shape_to_string(target));
  }
  ConstTensor out = data;
  out.dims = target;
  return out;
}

ConstTensor transpose(const onnx::NodeProto& node, const ConstTensor& x) {
  const std::size_t rank = x.dims.size();
  std::vector<std::int64_t> perm = attr_ints(node, "perm");
  if (perm.empty()) {  // the default reverses the dimensions
    for (std::size_t d = rank; d-- > 0;) perm.push_back(static_cast<std::int64_t>(d));
  }
  if (perm.size() != rank) bad(node, "has " + std::to_string(perm.size()) + " perm entries for a rank-" + std::to_string(rank) + " input");
  std::vector<bool> used(rank, false);
  Dims out_dims;
  for (auto p : perm) {
    if (p < 0 || p >= static_cast<std::int64_t>(rank) || used[static_cast<std::size_t>(p)]) bad(node, "perm is not a permutation of the input dimensions");
    used[static_cast<std::size_t>(p)] = true;
    out_dims.push_back(x.dims[static_cast<std::size_t>(p)]);
  }
  const std::size_t n = count_of(node, out_dims, x.size());
  if (n != x.size()) bad(node, "its input holds " + std::to_string(x.size()) + " values for shape " + ir::shape_to_string(x.dims));
  const auto in_strides = row_major_strides(x.dims);
  const auto out_strides = row_major_strides(out_dims);
  std::vector<std::size_t> from;
  from.reserve(n);
  for (std::size_t j = 0; j < n; ++j) {
    std::size_t src = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      const std::size_t coord = (j / out_strides[d]) % static_cast<std::size_t>(out_dims[d]);
      src += coord * in_strides[static_cast<std::size_t>(perm[d])];
    }
    from.push_back(src);
  }
  return pick(x, out_dims, from);
}

// A result whose size depends on the batch cannot be a constant: the IR keeps the batch symbolic.
void require_fixed_size(const onnx::NodeProto& node, const ConstTensor& t) {
  if (t.depends_on_batch()) {
    fail(ErrorCode::kUnsupportedOp, describe(node) + " builds a tensor whose size depends on the batch size",
         "export the model with a fixed input shape, or open an issue");
  }
}

ConstTensor expand(const onnx::NodeProto& node, const ConstTensor& x, const ConstTensor& shape) {
  require_fixed_size(node, shape);
  const Dims target = int_values(shape, "the shape of " + describe(node));
  for (auto d : target) {
    if (d < 0 || d > kMaxDim) bad(node, "has an invalid target dimension " + std::to_string(d));
  }
  const Broadcast b = broadcast(node, {&x.dims, &target});
  const std::size_t n = count_of(node, b.dims, x.size());
  const auto so = row_major_strides(b.dims);
  std::vector<std::size_t> from;
  from.reserve(n);
  for (std::size_t j = 0; j < n; ++j) from.push_back(source_index(b, so, 0, j));
  return pick(x, b.dims, from);
}

ConstTensor range(const onnx::NodeProto& node, const ConstTensor& start, const ConstTensor& limit, const ConstTensor& delta) {
  for (const auto* t : {&start, &limit, &delta}) {
    require_fixed_size(node, *t);
    if (t->size() != 1) bad(node, "its start, limit and delta must be scalars");
    if (t->is_float != start.is_float) bad(node, "mixes float and integer inputs");
  }
  ConstTensor out;
  out.is_float = start.is_float;
  if (start.is_float) {
    const double s = start.f[0];
    const double d = delta.f[0];
    const double steps = std::ceil((static_cast<double>(limit.f[0]) - s) / d);
    if (d == 0.0 || !std::isfinite(steps)) bad(node, "has a zero or non-finite delta");
    const auto n = static_cast<std::int64_t>(std::clamp(steps, 0.0, static_cast<double>(kMaxDim)));
    count_of(node, {n}, 0);
    for (std::int64_t k = 0; k < n; ++k) out.f.push_back(static_cast<float>(s + static_cast<double>(k) * d));
  } else {
    const std::int64_t s = start.i[0];
    const std::int64_t d = delta.i[0];
    if (d == 0) bad(node, "has a zero delta");
    std::int64_t span = 0;
    if (__builtin_sub_overflow(limit.i[0], s, &span)) bad(node, "integer overflow");
    // ceil(span / d), computed without overflow; a span against the direction of d gives 0.
    std::int64_t n = span / d;
    if (span % d != 0 && (span < 0) == (d < 0)) ++n;
    n = std::max<std::int64_t>(n, 0);
    count_of(node, {n}, 0);
    for (std::int64_t k = 0; k < n; ++k) out.i.push_back(s + k * d);
  }
  out.dims = {static_cast<std::int64_t>(out.size())};
  return out;
}

constexpr std::array<std::string_view, 21> kFoldable{"Constant", "Identity", "Dropout", "Cast", "Gather", "Concat",
                                                     "Unsqueeze", "Squeeze", "Slice", "Add", "Sub", "Mul", "Div",
                                                     "ConstantOfShape", "Reshape", "Transpose", "Expand", "Range",
                                                     "Neg", "Equal", "Where"};

}  // namespace

bool is_foldable(std::string_view op_type) {
  return std::find(kFoldable.begin(), kFoldable.end(), op_type) != kFoldable.end();
}

ConstTensor fold_shape(const onnx::NodeProto& node, const std::vector<std::int64_t>& dims, bool batched) {
  const auto rank = static_cast<std::int64_t>(dims.size());
  auto clamp_pos = [rank](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? std::max(v, -rank) + rank : v, 0, rank); };
  const std::int64_t start = clamp_pos(attr_int(node, "start", 0));
  const std::int64_t end = clamp_pos(attr_int(node, "end", rank));
  ConstTensor out;
  out.is_float = false;
  for (std::int64_t d = start; d < end; ++d) {
    out.i.push_back(dims[static_cast<std::size_t>(d)]);
    out.origin.push_back(batched && d == 0 ? Origin::kBatch : Origin::kPlain);
  }
  out.dims = {static_cast<std::int64_t>(out.i.size())};
  return out;
}

ConstTensor fold_node(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& in) {
  const std::string& op = node.op_type();
  if (op == "Constant") return constant(node);
  if (op == "Identity" || op == "Dropout") return input(node, in, 0);
  if (op == "Cast") return cast(node, input(node, in, 0));
  if (op == "Gather") return gather(node, input(node, in, 0), input(node, in, 1));
  if (op == "Concat") return concat(node, in);
  if (op == "Unsqueeze") return unsqueeze(node, in);
  if (op == "Squeeze") return squeeze(node, in);
  if (op == "Slice") return slice(node, in);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return binary(node, input(node, in, 0), input(node, in, 1));
  if (op == "ConstantOfShape") return constant_of_shape(node, input(node, in, 0));
  if (op == "Reshape") return reshape(node, input(node, in, 0), input(node, in, 1));
  if (op == "Transpose") return transpose(node, input(node, in, 0));
  if (op == "Expand") return expand(node, input(node, in, 0), input(node, in, 1));
  if (op == "Range") return range(node, input(node, in, 0), input(node, in, 1), input(node, in, 2));
  if (op == "Neg") return neg(node, input(node, in, 0));
  if (op == "Equal") return equal(node, input(node, in, 0), input(node, in, 1));
  if (op == "Where") return where(node, input(node, in, 0), input(node, in, 1), input(node, in, 2));
  bad(node, "is not an op the importer evaluates");
}

}  // namespace edgeopt::onnx_import::detail
