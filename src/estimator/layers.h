// A model as the estimator sees it: one row per IR node with its class, MACs, weights and
// activation sizes (from ir::node_cost and the shapes), plus the peak of live activations.
// Tables serialise to small JSON files, so calibration data can be committed without the models.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::estimator {

enum class LayerClass : std::uint8_t {
  kConv,         // dense k x k convolution (im2col GEMM)
  kConv3x3,      // dense 3 x 3 stride 1: runtimes with Winograd kernels do fewer multiplies
  kPointwise,    // 1 x 1 convolution
  kDepthwise,    // one filter per channel (group == channels)
  kGroupedConv,  // any other grouping
  kGemm,         // fully connected / MatMul
  kElementwise,  // arithmetic and activations that are not fused into a producer
  kPool,
  kDataMovement,  // Concat, Pad, Transpose
  kFused,         // activation or batch norm fused into the preceding conv/gemm: no own cost
  kView,          // Reshape, Flatten, Squeeze: no data moved
  kCount
};
const char* layer_class_name(LayerClass cls);
LayerClass layer_class_from_name(const std::string& name);  // kCount when unknown

struct Layer {
  std::string name;
  std::string op;  // IR op name
  LayerClass cls = LayerClass::kElementwise;
  std::int64_t macs = 0;
  std::int64_t params = 0;       // weight values read
  std::int64_t input_elems = 0;  // non-constant input elements
  std::int64_t output_elems = 0;
  std::int64_t zero_weights = 0;  // exact zeros among the weights (unstructured sparsity)
  // Grouped convs only (class grouped_conv): the group count and kernel elements (kh x kw). The
  // runtimes run such a conv as `groups` dense convs of Cin/groups -> Cout/groups channels.
  std::int64_t groups = 1;
  std::int64_t kernel_elems = 0;
};

struct LayerTable {
  std::string model;
  std::vector<Layer> layers;
  std::int64_t peak_live_elems = 0;  // largest sum of simultaneously live activations
  std::int64_t total_macs() const;
  std::int64_t total_params() const;
};

// Builds the table from a shape-inferred graph. Fails naming the node when a shape is unknown.
Result<LayerTable> layers_from_graph(const ir::Graph& graph);

nlohmann::json layer_table_to_json(const LayerTable& table);
Result<LayerTable> layer_table_from_json(const nlohmann::json& document, const std::string& source);
Result<LayerTable> load_layer_table(const std::string& path);

}  // namespace edgeopt::estimator
