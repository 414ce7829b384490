#include "estimator/layers.h"

#include <array>
#include <utility>
#include <fstream>

namespace edgeopt::estimator {
namespace {

using ir::OpKind;
using nlohmann::json;

constexpr std::array<const char*, static_cast<std::size_t>(LayerClass::kCount)> kClassNames{
    "conv",        "conv3x3", "pointwise",     "depthwise", "grouped_conv", "gemm",
    "elementwise", "pool",    "data_movement", "fused",     "view"};
static_assert(kClassNames.size() == static_cast<std::size_t>(LayerClass::kCount));

// How every IR op is costed; a static_assert keeps this table in step with the op catalogue.
enum class OpRole : std::uint8_t { kConv, kGemm, kFusable, kElementwise, kPool, kData, kView };
constexpr std::array<std::pair<OpKind, OpRole>, static_cast<std::size_t>(OpKind::kCount)> kOpRoles{{
    {OpKind::kConv, OpRole::kConv},
    {OpKind::kGemm, OpRole::kGemm},
    {OpKind::kMatMul, OpRole::kGemm},
    {OpKind::kAdd, OpRole::kElementwise},
    {OpKind::kSub, OpRole::kElementwise},
    {OpKind::kMul, OpRole::kFusable},  // (a folded scale)
    {OpKind::kDiv, OpRole::kElementwise},
    {OpKind::kRelu, OpRole::kFusable},
    {OpKind::kClip, OpRole::kFusable},
    {OpKind::kLeakyRelu, OpRole::kFusable},
    {OpKind::kSigmoid, OpRole::kFusable},
    {OpKind::kHardSigmoid, OpRole::kFusable},
    {OpKind::kHardSwish, OpRole::kFusable},
    {OpKind::kTanh, OpRole::kFusable},
    {OpKind::kSoftmax, OpRole::kElementwise},
    {OpKind::kLogSoftmax, OpRole::kElementwise},
    {OpKind::kBatchNorm, OpRole::kFusable},
    {OpKind::kMaxPool, OpRole::kPool},
    {OpKind::kAvgPool, OpRole::kPool},
    {OpKind::kGlobalAvgPool, OpRole::kPool},
    {OpKind::kFlatten, OpRole::kView},
    {OpKind::kReshape, OpRole::kView},
    {OpKind::kTranspose, OpRole::kData},
    {OpKind::kConcat, OpRole::kData},
    {OpKind::kPad, OpRole::kData},
    {OpKind::kSqueeze, OpRole::kView},
    {OpKind::kUnsqueeze, OpRole::kView},
    {OpKind::kSlice, OpRole::kData},  // (a strided copy)
    {OpKind::kIdentity, OpRole::kView},
}};
constexpr bool roles_in_op_order() {
  for (std::size_t i = 0; i < kOpRoles.size(); ++i) {
    if (static_cast<std::size_t>(kOpRoles[i].first) != i) return false;
  }
  return true;
}
static_assert(roles_in_op_order(), "kOpRoles needs one row per IR op, in OpKind order");

bool winograd_shape(const ir::Shape& w, const ir::Attrs& a) {
  const auto all_one = [](const std::vector<std::int64_t>& v) {
    for (auto x : v)
      if (x != 1) return false;
    return true;
  };
  return w.size() == 4 && w[2] == 3 && w[3] == 3 && all_one(a.strides) && all_one(a.dilations);
}

LayerTable build(const ir::Graph& g) {
  LayerTable table;
  table.model = g.name;
  const std::size_t n_values = g.values.size();
  std::vector<int> producer(n_values, -1);
  std::vector<int> last_use(n_values, -1);
  std::vector<bool> conv_like(g.nodes.size(), false);  // produces a conv/gemm result (possibly via fused ops)
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    for (int id : n.inputs) {
      if (id >= 0 && static_cast<std::size_t>(id) < n_values)
        last_use[static_cast<std::size_t>(id)] = static_cast<int>(i);
    }
    for (int id : n.outputs) {
      if (id < 0 || static_cast<std::size_t>(id) >= n_values)
        fail(ErrorCode::kInternal, "node " + n.name + " has a bad output id");
      producer[static_cast<std::size_t>(id)] = static_cast<int>(i);
    }
  }
  for (int id : g.outputs)
    if (id >= 0 && static_cast<std::size_t>(id) < n_values)
      last_use[static_cast<std::size_t>(id)] = static_cast<int>(g.nodes.size());

  auto elems = [&](int id) -> std::int64_t {
    const auto& v = g.value(id);
    for (std::size_t d = 1; d < v.shape.size(); ++d) {
      if (v.shape[d] < 0)
        fail(ErrorCode::kShapeMismatch, "value '" + v.name + "' has an unknown dimension", "run shape inference first");
    }
    if (v.shape.empty() && !v.is_constant && producer[static_cast<std::size_t>(id)] >= 0) {
      fail(ErrorCode::kShapeMismatch, "value '" + v.name + "' has no shape", "run shape inference first");
    }
    return ir::sample_elements(v.shape);
  };

  std::int64_t live = 0;
  for (int id : g.inputs) live += elems(id);
  table.peak_live_elems = live;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    const auto kind_index = static_cast<std::size_t>(n.op);
    if (kind_index >= kOpRoles.size()) {
      fail(ErrorCode::kUnsupportedOp, "node '" + n.name + "': op '" + n.source_op + "' has no cost in the estimator");
    }
    Layer layer;
    layer.name = n.name;
    layer.op = std::string(ir::op_name(n.op));
    const ir::OpCost cost = ir::node_cost(g, n);
    layer.macs = cost.macs;
    layer.params = cost.params;
    for (int id : n.inputs) {
      if (id < 0) continue;
      const auto& v = g.value(id);
      if (v.is_constant) {
        for (float w : v.f32)
          if (w == 0.0F) ++layer.zero_weights;
      } else {
        layer.input_elems += elems(id);
      }
    }
    for (int id : n.outputs) layer.output_elems += elems(id);

    const OpRole role = kOpRoles[kind_index].second;
    int first_input_producer = -1;
    for (int id : n.inputs) {
      if (id >= 0 && !g.value(id).is_constant) {
        first_input_producer = producer[static_cast<std::size_t>(id)];
        break;
      }
    }
    // A second non-constant input (x * y of two activations) cannot be fused into the conv.
    int activation_inputs = 0;
    for (int id : n.inputs)
      if (id >= 0 && !g.value(id).is_constant) ++activation_inputs;
    switch (role) {
      case OpRole::kConv: {
        const auto& w = g.value(n.inputs.at(1)).shape;
        const bool one_by_one = w.size() == 4 && w[2] == 1 && w[3] == 1;
        const std::int64_t group = n.attrs.group;
        const std::int64_t channels = w.size() == 4 ? w[1] * group : 0;
        if (group > 1 && group == channels && w[1] == 1)
          layer.cls = LayerClass::kDepthwise;
        else if (group > 1) {
          layer.cls = LayerClass::kGroupedConv;
          layer.groups = group;
          layer.kernel_elems = w.size() == 4 ? w[2] * w[3] : 1;
        }
        else if (one_by_one)
          layer.cls = LayerClass::kPointwise;
        else
          layer.cls = winograd_shape(w, n.attrs) ? LayerClass::kConv3x3 : LayerClass::kConv;
        conv_like[i] = true;
        break;
      }
      case OpRole::kGemm:
        layer.cls = LayerClass::kGemm;
        conv_like[i] = true;
        break;
      case OpRole::kFusable:
        if (activation_inputs == 1 && first_input_producer >= 0 &&
            conv_like[static_cast<std::size_t>(first_input_producer)]) {
          layer.cls = LayerClass::kFused;
          conv_like[i] = true;
        } else {
          layer.cls = LayerClass::kElementwise;
        }
        break;
      case OpRole::kElementwise:
        layer.cls = LayerClass::kElementwise;
        break;
      case OpRole::kPool:
        layer.cls = LayerClass::kPool;
        break;
      case OpRole::kData:
        layer.cls = LayerClass::kDataMovement;
        break;
      case OpRole::kView:
        layer.cls = LayerClass::kView;
        break;
    }
    table.layers.push_back(std::move(layer));

    // Liveness: outputs become live, inputs whose last use is this node die.
    for (int id : n.outputs) live += elems(id);
    if (live > table.peak_live_elems) table.peak_live_elems = live;
    for (int id : n.inputs) {
      if (id < 0 || g.value(id).is_constant) continue;
      if (last_use[static_cast<std::size_t>(id)] == static_cast<int>(i)) {
        live -= elems(id);
        last_use[static_cast<std::size_t>(id)] = -2;  // counted once even if the node reads it twice
      }
    }
  }
  return table;
}

LayerTable from_json(const json& doc, const std::string& source) {
  if (!doc.is_object() || !doc.contains("layers") || !doc["layers"].is_array()) {
    fail(ErrorCode::kCorruptFile, source + ": a layer table needs a \"layers\" array");
  }
  LayerTable t;
  t.model = doc.value("model", std::string());
  t.peak_live_elems = doc.value("peak_live_elems", std::int64_t{0});
  for (const auto& row : doc["layers"]) {
    // Rows are compact arrays: [name, op, class, macs, params, input_elems, output_elems, zero_weights],
    // grouped convs add [groups, kernel_elems].
    if (!row.is_array() || row.size() < 7)
      fail(ErrorCode::kCorruptFile, source + ": a layer row must be [name, op, class, macs, params, in, out]");
    Layer l;
    l.name = row[0].get<std::string>();
    l.op = row[1].get<std::string>();
    l.cls = layer_class_from_name(row[2].get<std::string>());
    if (l.cls == LayerClass::kCount)
      fail(ErrorCode::kCorruptFile, source + ": layer '" + l.name + "' has an unknown class");
    l.macs = row[3].get<std::int64_t>();
    l.params = row[4].get<std::int64_t>();
    l.input_elems = row[5].get<std::int64_t>();
    l.output_elems = row[6].get<std::int64_t>();
    if (row.size() > 7) l.zero_weights = row[7].get<std::int64_t>();
    if (row.size() > 9) {
      l.groups = row[8].get<std::int64_t>();
      l.kernel_elems = row[9].get<std::int64_t>();
    }
    if (l.macs < 0 || l.params < 0 || l.input_elems < 0 || l.output_elems < 0 || l.groups < 1 || l.kernel_elems < 0) {
      fail(ErrorCode::kCorruptFile, source + ": layer '" + l.name + "' has a negative count");
    }
    t.layers.push_back(std::move(l));
  }
  return t;
}

}  // namespace

const char* layer_class_name(LayerClass cls) {
  const auto i = static_cast<std::size_t>(cls);
  return i < kClassNames.size() ? kClassNames[i] : "?";
}

LayerClass layer_class_from_name(const std::string& name) {
  for (std::size_t i = 0; i < kClassNames.size(); ++i)
    if (name == kClassNames[i]) return static_cast<LayerClass>(i);
  return LayerClass::kCount;
}

std::int64_t LayerTable::total_macs() const {
  std::int64_t sum = 0;
  for (const auto& l : layers) sum += l.macs;
  return sum;
}

std::int64_t LayerTable::total_params() const {
  std::int64_t sum = 0;
  for (const auto& l : layers) sum += l.params;
  return sum;
}

Result<LayerTable> layers_from_graph(const ir::Graph& graph) {
  return capture([&] { return build(graph); });
}

json layer_table_to_json(const LayerTable& table) {
  json rows = json::array();
  for (const auto& l : table.layers) {
    json row = json::array(
        {l.name, l.op, layer_class_name(l.cls), l.macs, l.params, l.input_elems, l.output_elems, l.zero_weights});
    if (l.groups > 1) {
      row.push_back(l.groups);
      row.push_back(l.kernel_elems);
    }
    rows.push_back(std::move(row));
  }
  return {{"format", "edgeopt-layer-table-1"},
          {"model", table.model},
          {"columns",
           {"name", "op", "class", "macs", "params", "input_elems", "output_elems", "zero_weights", "groups",
            "kernel_elems"}},
          {"total_macs", table.total_macs()},
          {"total_params", table.total_params()},
          {"peak_live_elems", table.peak_live_elems},
          {"layers", rows}};
}

Result<LayerTable> layer_table_from_json(const nlohmann::json& document, const std::string& source) {
  return capture([&] {
    try {
      return from_json(document, source);
    } catch (const json::exception& e) {
      fail(ErrorCode::kCorruptFile, source + ": malformed layer table (" + e.what() + ")");
    }
  });
}

Result<LayerTable> load_layer_table(const std::string& path) {
  return capture([&] {
    std::ifstream in(path);
    if (!in) fail(ErrorCode::kNotFound, "cannot open layer table " + path);
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded()) fail(ErrorCode::kCorruptFile, path + ": not valid JSON");
    try {
      return from_json(doc, path);
    } catch (const json::exception& e) {
      fail(ErrorCode::kCorruptFile, path + ": malformed layer table (" + e.what() + ")");
    }
  });
}

}  // namespace edgeopt::estimator
