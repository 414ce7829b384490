// ptq_int8: static post-training quantization. BatchNorm is folded into the layer before it,
// Conv/Gemm weights become per-channel symmetric int8, and every activation an int8 kernel reads
// or writes gets a per-tensor uint8 range calibrated on training images (min-max, percentile and
// MSE are all tried with the int8 kernels; the best on the calibration images wins). The variant
// runs on LibTorch's int8 kernels, so its accuracy and latency are those of real int8 arithmetic.
#pragma once

#include "techniques/technique.h"

namespace edgeopt::techniques {

struct PtqInt8Options {
  std::int64_t calibration_images = 1024;  // evenly strided over the training split
};

class PtqInt8 final : public TechniqueWithOptions<PtqInt8, PtqInt8Options> {
 public:
  using TechniqueWithOptions::TechniqueWithOptions;
  static std::vector<ParamField<PtqInt8Options>> fields();
  WorkEstimate estimate_work(std::int64_t train_images) const override;
  std::string_view id() const override { return "ptq_int8"; }
  std::string_view description() const override {
    return "static int8: BatchNorm folded, per-channel int8 weights, calibrated activations, LibTorch int8 kernels";
  }
  bool requires_data() const override { return true; }
  Result<Output> run(const Context& context) const override;

};

namespace int8 {
// The ptq_int8 pipeline on an already prepared float graph (BatchNorm folded or not), shared with
// qat_int8 and hybrid: quantizes weights (sparse storage when `sparse`), calibrates activations
// on `calibration_images` training images and fills `out`.
Result<Output> quantize_static(const ir::Graph& graph, const Context& context, std::int64_t calibration_images,
                               bool sparse, double progress_begin, double progress_end);
}  // namespace int8

}  // namespace edgeopt::techniques
