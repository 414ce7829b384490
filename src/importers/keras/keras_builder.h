// Internal to the Keras importer: turns a parsed Keras model config (Sequential or Functional,
// Keras 2 or 3 serialization) plus a source of weights into an IR graph.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "importers/keras/hdf5_file.h"
#include "ir/graph.h"

namespace edgeopt::keras_import {

// Where a layer sits: the chain of enclosing sub-models (outermost first) and the layer itself.
// `key` is the name Keras 3 gives the layer's group in model.weights.h5 (class name in snake case,
// numbered per container); `name` is the layer's own name.
struct LayerPath {
  struct Step {
    std::string name;
    std::string key;
  };
  std::vector<Step> models;  // enclosing sub-models, excluding the top-level model
  Step layer;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The layer's weight tensors in Keras order, or nullopt when the file has none for it.
  virtual std::optional<std::vector<Hdf5Tensor>> layer_weights(const LayerPath& path) = 0;
  // True when no file backs the weights: the builder fills zeros of the shapes the config implies.
  virtual bool synthetic() const { return false; }
};

// Weights of zeros, for importing an architecture alone.
class NoWeights final : public WeightSource {
 public:
  std::optional<std::vector<Hdf5Tensor>> layer_weights(const LayerPath&) override { return std::nullopt; }
  bool synthetic() const override { return true; }
};

struct BuildOptions {
  std::string source;         // the file, for messages
  std::string keras_version;  // e.g. "2.15.0"; empty: guessed from the config's style
};

// `model` is the top-level serialized model: {"class_name": ..., "config": {...}, ...}.
// Returns the graph after infer_shapes() and simplify(); fails with a Failure on bad input.
ir::Graph build_graph(const nlohmann::json& model, WeightSource& weights, const BuildOptions& options);

}  // namespace edgeopt::keras_import
