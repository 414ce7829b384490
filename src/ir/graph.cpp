#include "ir/graph.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/error.h"

namespace edgeopt::ir {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kI4Packed: return "i4x2";
    case DType::kI64: return "i64";
  }
  return "?";
}

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::kUnknown: return "unknown";
    case Layout::kNCHW: return "NCHW";
    case Layout::kNHWC: return "NHWC";
    case Layout::kNC: return "NC";
  }
  return "?";
}

std::int64_t sample_elements(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d == kBatch ? 1 : d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ",";
    out += shape[i] == kBatch ? std::string("N") : std::to_string(shape[i]);
  }
  return out + "]";
}

std::string Graph::unique_name(const std::string& wanted) {
  std::string base = wanted.empty() ? std::string("v") + std::to_string(values.size()) : wanted;
  std::string candidate = base;
  for (int i = 1; by_name_.count(candidate) != 0; ++i) candidate = base + "_" + std::to_string(i);
  return candidate;
}

int Graph::add_value(Value value) {
  value.name = unique_name(value.name);
  const int id = static_cast<int>(values.size());
  by_name_[value.name] = id;
  values.push_back(std::move(value));
  return id;
}

int Graph::add_input(const std::string& value_name, Shape shape, Layout layout) {
  Value v;
  v.name = value_name;
  v.shape = std::move(shape);
  v.layout = layout;
  const int id = add_value(std::move(v));
  inputs.push_back(id);
  return id;
}

int Graph::add_constant(const std::string& value_name, Shape shape, std::vector<float> data) {
  assert(sample_elements(shape) == static_cast<std::int64_t>(data.size()));
  Value v;
  v.name = value_name;
  v.shape = std::move(shape);
  v.is_constant = true;
  v.f32 = std::move(data);
  return add_value(std::move(v));
}

int Graph::add_int_constant(const std::string& value_name, std::vector<std::int64_t> data) {
  Value v;
  v.name = value_name;
  v.shape = {static_cast<std::int64_t>(data.size())};
  v.dtype = DType::kI64;
  v.is_constant = true;
  v.i64 = std::move(data);
  return add_value(std::move(v));
}

int Graph::add_node(OpKind op, const std::string& node_name, std::vector<int> node_inputs, Attrs attrs,
                    const std::string& output_name, const std::string& source_op) {
  Value out;
  out.name = output_name.empty() ? node_name : output_name;
  const int out_id = add_value(std::move(out));
  Node n;
  n.op = op;
  n.name = node_name;
  n.source_op = source_op.empty() ? std::string(op_name(op)) : source_op;
  n.inputs = std::move(node_inputs);
  n.outputs = {out_id};
  n.attrs = std::move(attrs);
  nodes.push_back(std::move(n));
  return out_id;
}

std::optional<int> Graph::find(const std::string& value_name) const {
  auto it = by_name_.find(value_name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

void Graph::infer_shapes() {
  std::vector<bool> defined(values.size(), false);
  for (std::size_t i = 0; i < values.size(); ++i) defined[i] = values[i].is_constant;
  for (int id : inputs) defined[static_cast<std::size_t>(id)] = true;
  for (const Node& n : nodes) {
    const OpInfo& info = op_info(n.op);
    const int given = static_cast<int>(n.inputs.size());
    if (given < info.min_inputs || given > info.max_inputs) {
      fail(ErrorCode::kCorruptFile, "node '" + n.name + "' (" + std::string(info.name) + ") has " +
               std::to_string(given) + " inputs; it takes " + std::to_string(info.min_inputs) + " to " +
               std::to_string(info.max_inputs));
    }
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      const int id = n.inputs[i];
      if (id < 0) {
        if (static_cast<int>(i) < info.min_inputs) fail(ErrorCode::kCorruptFile, "node '" + n.name + "' lacks required input " + std::to_string(i));
        continue;
      }
      if (id >= static_cast<int>(values.size()) || !defined[static_cast<std::size_t>(id)]) {
        fail(ErrorCode::kCorruptFile, "node '" + n.name + "' reads '" + (id < static_cast<int>(values.size()) ? value(id).name : "?") +
                 "' before anything produces it", "the graph is not in topological order or has a cycle");
      }
    }
    if (n.outputs.size() != 1 || n.outputs[0] < 0 || n.outputs[0] >= static_cast<int>(values.size())) {
      fail(ErrorCode::kCorruptFile, "node '" + n.name + "' must have exactly one valid output");
    }
    info.infer_shape(*this, n);
    for (int id : n.outputs) defined[static_cast<std::size_t>(id)] = true;
  }
  for (int id : outputs) {
    if (id < 0 || id >= static_cast<int>(values.size())) fail(ErrorCode::kCorruptFile, "graph output id out of range");
    if (!defined[static_cast<std::size_t>(id)]) fail(ErrorCode::kCorruptFile, "graph output '" + value(id).name + "' is never produced");
  }
}

void Graph::simplify() {
  // Route readers of an Identity's output to its input.
  std::vector<int> alias(values.size());
  for (std::size_t i = 0; i < alias.size(); ++i) alias[i] = static_cast<int>(i);
  auto resolve = [&](int id) {
    while (id >= 0 && alias[static_cast<std::size_t>(id)] != id) id = alias[static_cast<std::size_t>(id)];
    return id;
  };
  std::vector<Node> kept;
  for (Node& n : nodes) {
    for (int& id : n.inputs) id = resolve(id);
    const bool is_output = std::find(outputs.begin(), outputs.end(), n.outputs[0]) != outputs.end();
    if (n.op == OpKind::kIdentity && !is_output) {
      alias[static_cast<std::size_t>(n.outputs[0])] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }
  // Drop nodes whose outputs nothing reads, back to front.
  std::vector<bool> used(values.size(), false);
  for (int id : outputs) used[static_cast<std::size_t>(id)] = true;
  std::vector<Node> live;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    bool needed = false;
    for (int id : it->outputs) needed = needed || used[static_cast<std::size_t>(id)];
    if (!needed) continue;
    for (int id : it->inputs) {
      if (id >= 0) used[static_cast<std::size_t>(id)] = true;
    }
    live.push_back(std::move(*it));
  }
  nodes.assign(std::make_move_iterator(live.rbegin()), std::make_move_iterator(live.rend()));
  // Free the data of constants nobody reads any more (ids stay stable).
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].is_constant && !used[i]) {
      values[i].f32.clear();
      values[i].f32.shrink_to_fit();
      values[i].i64.clear();
      values[i].shape = {0};
    }
  }
}

std::int64_t Graph::param_count() const {
  std::set<int> seen;
  std::int64_t total = extra_source_params;
  for (const Node& n : nodes) {
    for (int id : n.inputs) {
      if (id < 0 || !seen.insert(id).second) continue;
      const Value& v = value(id);
      if (v.is_constant && v.dtype != DType::kI64) total += sample_elements(v.shape);
    }
  }
  return total;
}

std::vector<int> consumer_counts(const Graph& graph) {
  std::vector<int> counts(graph.values.size(), 0);
  for (const Node& n : graph.nodes) {
    for (int i : n.inputs) {
      if (i >= 0 && static_cast<std::size_t>(i) < counts.size()) ++counts[static_cast<std::size_t>(i)];
    }
  }
  for (int o : graph.outputs) {
    if (o >= 0 && static_cast<std::size_t>(o) < counts.size()) ++counts[static_cast<std::size_t>(o)];
  }
  return counts;
}

}  // namespace edgeopt::ir
