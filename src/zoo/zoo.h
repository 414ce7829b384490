// The model zoo: small/medium/large CNNs for MNIST, Fashion-MNIST and CIFAR-10, described by
// recipes (data/zoo/*.json), built as IR graphs with seeded weights, trained on LibTorch through
// backend::train(), scored on the test split and saved as .eom + ONNX with a JSON card.
// No torch header here: training goes through the backend plugin.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "data/dataset.h"
#include "ir/graph.h"

namespace edgeopt::zoo {

// One layer of a recipe's architecture, in order; shapes follow from the input.
struct Layer {
  enum class Kind : std::uint8_t { kConv, kBatchNorm, kRelu, kMaxPool, kAvgPool, kGlobalAvgPool, kFlatten, kDense };
  Kind kind = Kind::kRelu;
  std::int64_t out = 0;     // conv: output channels; dense: output features
  std::int64_t kernel = 0;  // conv, maxpool, avgpool
  std::int64_t stride = 1;  // conv (default 1), pools (default: the kernel)
  std::int64_t pad = 0;     // conv, pools: on every side
};
const char* layer_kind_name(Layer::Kind kind);

struct Recipe {
  std::string name;  // e.g. "fashion-mnist-small"; also the file stem of its artifacts
  std::string description;
  std::string dataset;  // mnist | fashion-mnist | cifar10
  std::int64_t classes = 10;
  std::vector<std::int64_t> input_shape;  // C, H, W (NCHW without the batch)
  std::string normalization = "unit";     // a pipeline::parse_normalization() name
  std::vector<Layer> layers;
  int epochs = 1;
  std::int64_t batch_size = 128;
  float learning_rate = 1e-3F;
  float weight_decay = 0.0F;
  std::string schedule = "cosine";  // constant | cosine | step
  std::uint64_t seed = 42;
  std::string augmentation = "none";  // none | flip | flip-crop
  int crop_padding = 4;               // flip-crop only
  nlohmann::json document;            // the recipe as read, for the card
  std::string source;                 // the file it came from, for messages
};

// Parses one recipe; `source` names it in messages. Unknown keys, wrong types and out-of-range
// values are errors naming the field (a typo must not silently train a different model).
Result<Recipe> parse_recipe(std::string_view json_text, const std::string& source);
Result<Recipe> read_recipe(const std::string& path);
// Every *.json in `dir`, sorted by name; names must be unique.
Result<std::vector<Recipe>> read_recipes(const std::string& dir);
// $EDGEOPT_ZOO_DIR, else data/zoo in a parent of the running executable, else "data/zoo".
std::string find_recipe_dir();

// The recipe's network with He-initialised weights drawn from std::mt19937(recipe.seed); the
// graph is verified. Conv layers followed by BatchNorm carry no bias (BatchNorm's shift has it).
Result<ir::Graph> build_graph(const Recipe& recipe);
std::int64_t graph_macs(const ir::Graph& graph);

struct TrainRunOptions {
  int epochs = 0;                                                  // 0: the recipe's
  std::int64_t train_limit = 0;                                    // train on the first N training images only (0: all)
  std::int64_t test_limit = 0;                                     // score only the first N test images (0: all)
  std::function<void(const std::string&)> progress;                // stage messages
  std::function<void(std::int64_t, std::int64_t, float)> on_step;  // step, total, loss
};

struct TrainRun {
  ir::Graph graph;      // the trained model
  nlohmann::json card;  // recipe, seed, accuracy with CI, params, MACs, timings; files added by save_model()
  double accuracy = 0.0;
  double train_seconds = 0.0;
  float last_loss = 0.0F;
};

// Builds, trains on `dataset.train` and scores on `dataset.test`. The dataset must be the
// recipe's (checked: class count and image size).
Result<TrainRun> train_recipe(const Recipe& recipe, const data::Dataset& dataset, const TrainRunOptions& options = {});

// Writes DIR/NAME.eom, DIR/NAME.onnx and DIR/NAME.json (the card, with each file's size read back
// from disk). Every file is written atomically.
Status save_model(TrainRun& run, const Recipe& recipe, const std::string& out_dir);

}  // namespace edgeopt::zoo
