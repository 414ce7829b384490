// What ptq_int8, qat_int8 and hybrid share: BatchNorm folding, per-channel symmetric int8 weights,
// and calibrated per-tensor uint8 activation ranges. The result is an "int8 graph" (see
// src/backend/torch/int8_executor.cpp): the backend runs it on LibTorch's int8 kernels, and the
// .eom file stores its weights as int8 and its activation parameters beside the values.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "techniques/technique.h"

namespace edgeopt::techniques::int8 {

// Folds every BatchNorm whose input is a Conv or Gemm output used only by it into that layer's
// weights and bias, and removes it. Returns how many were folded.
int fold_batchnorm(ir::Graph& graph);

struct WeightReport {
  std::vector<int> weight_ids;           // the quantized Conv/Gemm weights (constant value ids)
  std::vector<std::string> float_layers; // layers left in float, with the reason
};

// Rounds each Conv/Gemm weight to per-output-channel symmetric int8 (scale = max|w| / 127), keeps
// the dequantized values in the graph (exactly scale · q), sets their QuantParams and asks the
// .eom writer for int8 (or sparse int8 when `sparse`) storage. Zeros stay zeros.
WeightReport quantize_weights(ir::Graph& graph, format::EomWriteOptions& encoding, bool sparse);

// The values that get activation parameters: the input, the outputs of Conv, Gemm, Add and Concat
// and of a ReLU right after one, and float-only ops' outputs that feed one of those. The graph's
// outputs stay float, so the classifier's logits are not rounded to 256 levels.
std::vector<int> activation_ids(const ir::Graph& graph);

enum class RangeMethod : std::uint8_t { kMinMax, kPercentile, kMse };
const char* range_method_name(RangeMethod method);

// Observed distribution of one activation over the calibration images.
struct Histogram {
  float min = 0;
  float max = 0;
  std::vector<double> counts;  // equal-width bins over [min, max]
};

// The uint8 range a method picks for a histogram: min-max; the 0.01 %/99.99 % percentiles; or the
// clipping that minimises the expected squared rounding + clipping error.
ir::QuantParams choose_range(const Histogram& histogram, RangeMethod method);

struct Calibration {
  RangeMethod method = RangeMethod::kMse;
  std::map<int, ir::QuantParams> activations;
  std::vector<std::string> notes;  // per method: calibration accuracy with the int8 kernels
};

// Runs `graph` (float, already weight-quantized) over `images` to collect activation histograms,
// tries every range method with the real int8 executor on the same images, and returns the best
// (highest top-1 accuracy on the calibration labels; ties go to the higher agreement with float).
Result<Calibration> calibrate(const ir::Graph& graph, const data::ImageSet& images, const Context& context,
                              double progress_begin, double progress_end);

void apply_activations(ir::Graph& graph, const std::map<int, ir::QuantParams>& activations);

}  // namespace edgeopt::techniques::int8
