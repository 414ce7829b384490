#include "ir/text.h"

#include <cstdio>
#include <sstream>

namespace edgeopt::ir {
namespace {

std::string ints(const std::vector<std::int64_t>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

std::string real(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(f));
  return buf;
}

const char* pad_mode_name(PadMode m) {
  switch (m) {
    case PadMode::kConstant: return "constant";
    case PadMode::kReflect: return "reflect";
    case PadMode::kEdge: return "edge";
  }
  return "?";
}

// Only the attributes an op reads, so the text stays stable when unrelated defaults change.
std::string attrs_text(const Node& n) {
  const Attrs& a = n.attrs;
  std::ostringstream s;
  switch (n.op) {
    case OpKind::kConv:
      s << " strides=" << ints(a.strides) << " pads=" << ints(a.pads) << " dilations=" << ints(a.dilations)
        << " group=" << a.group;
      break;
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      s << " kernel=" << ints(a.kernel) << " strides=" << ints(a.strides) << " pads=" << ints(a.pads)
        << (a.ceil_mode ? " ceil" : "") << (n.op == OpKind::kAvgPool && a.count_include_pad ? " count_include_pad" : "");
      break;
    case OpKind::kClip: s << " min=" << real(a.min) << " max=" << real(a.max); break;
    case OpKind::kLeakyRelu: s << " alpha=" << real(a.alpha); break;
    case OpKind::kHardSigmoid: s << " alpha=" << real(a.alpha) << " beta=" << real(a.beta); break;
    case OpKind::kSoftmax:
    case OpKind::kLogSoftmax:
    case OpKind::kFlatten:
    case OpKind::kConcat: s << " axis=" << a.axis; break;
    case OpKind::kBatchNorm: s << " epsilon=" << real(a.epsilon); break;
    case OpKind::kReshape: s << " shape=" << ints(a.shape); break;
    case OpKind::kTranspose: s << " perm=" << ints(a.perm); break;
    case OpKind::kPad: s << " pads=" << ints(a.pads) << " mode=" << pad_mode_name(a.pad_mode) << " value=" << real(a.pad_value); break;
    case OpKind::kSqueeze:
    case OpKind::kUnsqueeze: s << " axes=" << ints(a.axes); break;
    case OpKind::kSlice:
      s << " axes=" << ints(a.axes) << " starts=" << ints(a.starts) << " ends=" << ints(a.ends) << " steps=" << ints(a.steps);
      break;
    default: break;
  }
  return s.str();
}

}  // namespace

std::string dump(const Graph& g) {
  std::ostringstream s;
  s << "graph \"" << g.name << "\" producer=\"" << g.producer << "\"\n";
  for (int id : g.inputs) {
    const Value& v = g.value(id);
    s << "input " << v.name << ": " << dtype_name(v.dtype) << shape_to_string(v.shape) << " " << layout_name(v.layout) << "\n";
  }
  std::vector<bool> listed(g.values.size(), false);
  for (const Node& n : g.nodes) {
    for (int id : n.inputs) {
      if (id < 0 || listed[static_cast<std::size_t>(id)] || !g.value(id).is_constant) continue;
      listed[static_cast<std::size_t>(id)] = true;
      const Value& v = g.value(id);
      s << "const " << v.name << ": " << dtype_name(v.dtype) << shape_to_string(v.shape);
      if (v.dtype == DType::kI64) s << " = " << ints(v.i64);
      s << "\n";
    }
    s << g.value(n.outputs[0]).name << " = " << op_name(n.op) << "(";
    for (std::size_t i = 0; i < n.inputs.size(); ++i) s << (i ? ", " : "") << (n.inputs[i] < 0 ? std::string("_") : g.value(n.inputs[i]).name);
    s << ")" << attrs_text(n) << " -> " << dtype_name(g.value(n.outputs[0]).dtype) << shape_to_string(g.value(n.outputs[0]).shape) << "\n";
  }
  for (int id : g.outputs) s << "output " << g.value(id).name << "\n";
  return s.str();
}

Status verify(Graph& graph) {
  return capture([&]() -> Unit {
    for (const Value& v : graph.values) {
      if (!v.is_constant) continue;
      const auto want = static_cast<std::size_t>(sample_elements(v.shape));
      const std::size_t have = v.dtype == DType::kI64 ? v.i64.size() : v.f32.size();
      if (v.shape != Shape{0} && want != have) {
        fail(ErrorCode::kCorruptFile, "constant '" + v.name + "' has " + std::to_string(have) + " values for shape " + shape_to_string(v.shape));
      }
    }
    for (int id : graph.inputs) {
      const Shape& s = graph.value(id).shape;
      for (std::size_t d = 1; d < s.size(); ++d) {
        if (s[d] <= 0) fail(ErrorCode::kInvalidArgument, "input '" + graph.value(id).name + "' has an unknown dimension " + std::to_string(d) + " in " + shape_to_string(s), "only the batch dimension may be symbolic; pass --input-shape to fix the others");
      }
    }
    if (graph.inputs.empty()) fail(ErrorCode::kCorruptFile, "the model has no inputs");
    if (graph.outputs.empty()) fail(ErrorCode::kCorruptFile, "the model has no outputs");
    graph.infer_shapes();
    return Unit{};
  });
}

}  // namespace edgeopt::ir
