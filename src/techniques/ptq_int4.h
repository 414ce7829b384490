// ptq_int4: weight-only int4 post-training quantization. Each output channel of every Conv/Gemm
// weight is split into groups of `group_size` consecutive values sharing one scale; the scale's
// clipping is searched per group to minimise the squared error (an MSE search, not max-abs).
// Layers whose relative weight error stays above `fallback_error`, whose small weights are
// mostly rounded away, or with fewer than `min_fan_in` weights per channel fall back to int8,
// and the notes say which. Activations stay float: on CPUs without int4 kernels the weights are
// unpacked to float on the fly, so this saves storage and memory traffic, not arithmetic.
#pragma once

#include "techniques/technique.h"

namespace edgeopt::techniques {

struct PtqInt4Options {
  int group_size = 32;
  double fallback_error = 0.12;     // relative L2 error of a layer's weights that triggers int8
  double max_zeroed_share = 0.35;   // or this share of its non-zero weights rounded to zero
  std::int64_t min_elements = 256;  // smaller weights stay int8
  // Layers with fewer weights per output channel stay int8: a first conv on a gray image has 9,
  // and int4 there cost the medium Fashion-MNIST model 1.5 pt on its own (measured), for 0.01 %
  // of its size.
  std::int64_t min_fan_in = 32;
  // Store weights that are mostly zeros (pruned) as sparse_int4 / sparse_int8: a bitmask plus the
  // non-zero codes. The mask costs 1 bit per element and saves 4 or 8 per zero, so it pays from
  // `sparse_min_zero_share` zeros on. Off for plain ptq_int4 (trained weights have no zeros).
  bool sparse = false;
  double sparse_min_zero_share = 0.3;
};

class PtqInt4 final : public TechniqueWithOptions<PtqInt4, PtqInt4Options> {
 public:
  using TechniqueWithOptions::TechniqueWithOptions;
  static std::vector<ParamField<PtqInt4Options>> fields();
  WorkEstimate estimate_work(std::int64_t train_images) const override;
  std::string_view id() const override { return "ptq_int4"; }
  std::string_view description() const override {
    return "weight-only int4, group-wise scales with an MSE clipping search, int8 fallback for sensitive layers";
  }
  bool requires_data() const override { return false; }
  Result<Output> run(const Context& context) const override;

};

// Quantizes `weights` (channel-major, `channels` rows) to symmetric codes in [-qmax-1, qmax] with
// one scale per group of `group_size` (0: whole channel); replaces them by their dequantized
// values and returns the scales (channel-major). Exposed for tests.
std::vector<float> quantize_groups(std::vector<float>& weights, std::int64_t channels, int group_size, int qmax,
                                   bool search_clipping);

}  // namespace edgeopt::techniques
