// A recipe's layer list as an IR graph with seeded He-initialised weights.
#include <cmath>
#include <map>
#include <random>

#include "ir/text.h"
#include "zoo/zoo.h"

namespace edgeopt::zoo {
namespace {

// N(0, gain / fan_in): He (gain 2) for layers feeding a ReLU, LeCun (gain 1) for the logits, so
// the first loss is near ln(classes).
std::vector<float> normal_weights(std::mt19937& rng, std::size_t count, std::int64_t fan_in, double gain) {
  // A recipe is a small file; a typo must not ask for tens of gigabytes.
  constexpr std::size_t kMaxLayerWeights = std::size_t{1} << 27;
  if (count > kMaxLayerWeights) {
    fail(ErrorCode::kInvalidArgument, "a layer would have " + std::to_string(count) + " weights (over 134 M)",
         "use fewer channels or features, or pool before the dense layer");
  }
  std::normal_distribution<double> dist(0.0, std::sqrt(gain / static_cast<double>(fan_in)));
  std::vector<float> w(count);
  for (auto& x : w) x = static_cast<float>(dist(rng));
  return w;
}

class Builder {
 public:
  explicit Builder(const Recipe& recipe) : recipe_(recipe), rng_(static_cast<std::mt19937::result_type>(recipe.seed)) {
    graph_.name = recipe.name;
    graph_.producer = "edgeopt zoo";
    const auto& s = recipe.input_shape;
    current_ = graph_.add_input("input", {ir::kBatch, s[0], s[1], s[2]}, ir::Layout::kNCHW);
  }

  ir::Graph build() {
    for (std::size_t i = 0; i < recipe_.layers.size(); ++i) add(i);
    graph_.outputs = {current_};
    graph_.value(current_).layout = ir::Layout::kNC;
    if (auto s = ir::verify(graph_); !s) throw Failure{s.error()};
    return std::move(graph_);
  }

 private:
  const ir::Shape& shape() const { return graph_.value(current_).shape; }

  [[noreturn]] void bad_layer(std::size_t index, const std::string& what) const {
    fail(ErrorCode::kShapeMismatch,
         "recipe " + recipe_.source + ": layer " + std::to_string(index) + " (" +
             layer_kind_name(recipe_.layers[index].kind) + ") " + what,
         "check the layer list against the input shape; see data/zoo/README.md");
  }

  std::string next_name(const std::string& prefix) { return prefix + std::to_string(++counts_[prefix]); }

  void push(ir::OpKind op, const std::string& name, std::vector<int> inputs, ir::Attrs attrs = {}) {
    current_ = graph_.add_node(op, name, std::move(inputs), std::move(attrs), name);
    graph_.infer_shapes();
  }

  bool followed_by_batchnorm(std::size_t index) const {
    return index + 1 < recipe_.layers.size() && recipe_.layers[index + 1].kind == Layer::Kind::kBatchNorm;
  }

  void add(std::size_t index) {
    const Layer& layer = recipe_.layers[index];
    const bool spatial = shape().size() == 4;
    switch (layer.kind) {
      case Layer::Kind::kConv: {
        if (!spatial) bad_layer(index, "needs an image (N,C,H,W) input; it follows a flatten/dense layer");
        const std::int64_t in = shape()[1];
        if (shape()[2] + 2 * layer.pad < layer.kernel || shape()[3] + 2 * layer.pad < layer.kernel) {
          bad_layer(index, "has a " + std::to_string(layer.kernel) + "x" + std::to_string(layer.kernel) +
                               " kernel on a " + std::to_string(shape()[2]) + "x" + std::to_string(shape()[3]) +
                               " input");
        }
        const std::string name = next_name("conv");
        const std::int64_t fan_in = in * layer.kernel * layer.kernel;
        std::vector<int> inputs = {
            current_,
            graph_.add_constant(name + ".weight", {layer.out, in, layer.kernel, layer.kernel},
                                normal_weights(rng_, static_cast<std::size_t>(layer.out * fan_in), fan_in, 2.0))};
        if (!followed_by_batchnorm(index)) {
          inputs.push_back(graph_.add_constant(name + ".bias", {layer.out},
                                               std::vector<float>(static_cast<std::size_t>(layer.out), 0.0F)));
        }
        ir::Attrs a;
        a.strides = {layer.stride, layer.stride};
        a.pads = {layer.pad, layer.pad, layer.pad, layer.pad};
        push(ir::OpKind::kConv, name, std::move(inputs), a);
        break;
      }
      case Layer::Kind::kBatchNorm: {
        if (shape().size() < 2) bad_layer(index, "needs a channel axis");
        const std::int64_t c = shape()[1];
        const std::string name = next_name("bn");
        const auto n = static_cast<std::size_t>(c);
        std::vector<int> inputs = {current_, graph_.add_constant(name + ".weight", {c}, std::vector<float>(n, 1.0F)),
                                   graph_.add_constant(name + ".bias", {c}, std::vector<float>(n, 0.0F)),
                                   graph_.add_constant(name + ".running_mean", {c}, std::vector<float>(n, 0.0F)),
                                   graph_.add_constant(name + ".running_var", {c}, std::vector<float>(n, 1.0F))};
        push(ir::OpKind::kBatchNorm, name, std::move(inputs));
        break;
      }
      case Layer::Kind::kRelu:
        push(ir::OpKind::kRelu, next_name("relu"), {current_});
        break;
      case Layer::Kind::kMaxPool:
      case Layer::Kind::kAvgPool: {
        if (!spatial) bad_layer(index, "needs an image (N,C,H,W) input");
        if (shape()[2] + 2 * layer.pad < layer.kernel || shape()[3] + 2 * layer.pad < layer.kernel) {
          bad_layer(index, "has a " + std::to_string(layer.kernel) + "x" + std::to_string(layer.kernel) +
                               " window on a " + std::to_string(shape()[2]) + "x" + std::to_string(shape()[3]) +
                               " input");
        }
        ir::Attrs a;
        a.kernel = {layer.kernel, layer.kernel};
        a.strides = {layer.stride, layer.stride};
        a.pads = {layer.pad, layer.pad, layer.pad, layer.pad};
        const bool max = layer.kind == Layer::Kind::kMaxPool;
        push(max ? ir::OpKind::kMaxPool : ir::OpKind::kAvgPool, next_name(max ? "maxpool" : "avgpool"), {current_}, a);
        break;
      }
      case Layer::Kind::kGlobalAvgPool:
        if (!spatial) bad_layer(index, "needs an image (N,C,H,W) input");
        push(ir::OpKind::kGlobalAvgPool, next_name("gap"), {current_});
        push(ir::OpKind::kFlatten, next_name("flatten"), {current_});
        break;
      case Layer::Kind::kFlatten:
        if (spatial) push(ir::OpKind::kFlatten, next_name("flatten"), {current_});
        break;
      case Layer::Kind::kDense: {
        if (shape().size() != 2)
          bad_layer(index, "needs a flat (N,features) input; add a flatten or gap layer before it");
        const std::int64_t in = shape()[1];
        const std::string name = next_name("fc");
        const bool logits = index + 1 == recipe_.layers.size();
        const int w =
            graph_.add_constant(name + ".weight", {layer.out, in},
                                normal_weights(rng_, static_cast<std::size_t>(layer.out * in), in, logits ? 1.0 : 2.0));
        const int b = graph_.add_constant(name + ".bias", {layer.out},
                                          std::vector<float>(static_cast<std::size_t>(layer.out), 0.0F));
        push(ir::OpKind::kGemm, name, {current_, w, b});
        break;
      }
    }
  }

  const Recipe& recipe_;
  std::mt19937 rng_;
  ir::Graph graph_;
  int current_ = -1;
  std::map<std::string, int> counts_;
};

}  // namespace

Result<ir::Graph> build_graph(const Recipe& recipe) {
  return capture([&]() -> ir::Graph {
    if (recipe.input_shape.size() != 3)
      fail(ErrorCode::kInvalidArgument, "recipe " + recipe.name + " has no input shape");
    return Builder(recipe).build();
  });
}

std::int64_t graph_macs(const ir::Graph& graph) {
  std::int64_t macs = 0;
  for (const auto& n : graph.nodes) macs += ir::node_cost(graph, n).macs;
  return macs;
}

}  // namespace edgeopt::zoo
