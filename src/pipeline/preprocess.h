// Turning dataset images (uint8 HWC) into the float input a model expects: layout, channels,
// size and value scaling. Nobody knows how a third-party model was trained, so `auto` measures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "data/dataset.h"
#include "ir/graph.h"

namespace edgeopt::pipeline {

// What the model's first input wants, read from its IR shape.
struct InputSpec {
  ir::Layout layout = ir::Layout::kNCHW;  // kNC: a flattened image (HWC order)
  std::int64_t channels = 1;
  std::int64_t height = 0;
  std::int64_t width = 0;
};

Result<InputSpec> input_spec(const ir::Graph& graph);

// value = (pixel * scale - mean[c]) / std[c]
struct Normalization {
  std::string name;          // "unit", "raw", "symmetric", "imagenet", "mnist", "fashion-mnist", "cifar10", or "custom"
  float scale = 1.0F / 255.0F;
  std::vector<float> mean;   // per channel, or one value for all
  std::vector<float> std;
  std::string describe() const;
};

// The presets `auto` tries, in order of preference on ties.
std::vector<Normalization> normalization_presets();
// A preset name, or "mean=a,b,c;std=d,e,f" (values on the [0,1] scale), or "raw".
Result<Normalization> parse_normalization(const std::string& text);

// Writes images [begin, end) of `images` as model input floats into `out` (resized and
// channel-converted as needed). Notes what it had to change, once, in `notes` when given.
void prepare_batch(const data::ImageSet& images, std::int64_t begin, std::int64_t end, const InputSpec& spec,
                   const Normalization& norm, std::vector<float>& out);
// `count` images taken at an even stride over `images`, so a split stored class by class still
// yields every class (used for calibration and fine-tuning slices).
data::ImageSet strided_subset(const data::ImageSet& images, std::int64_t count);

std::vector<std::string> conversion_notes(const data::ImageSet& images, const InputSpec& spec);

}  // namespace edgeopt::pipeline
