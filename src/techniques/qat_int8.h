// qat_int8: quantization-aware training. Starts from ptq_int8's result (BatchNorm folded, the
// calibrated activation ranges), fine-tunes the float weights on training images with int8
// fake quantization of every weight and activation in the forward pass (straight-through
// gradients; targets: labels plus the FP32 model's logits), then converts to the same kind of int8 graph as ptq_int8, run on the int8 kernels.
#pragma once

#include "techniques/technique.h"

namespace edgeopt::techniques {

struct QatInt8Options {
  std::int64_t calibration_images = 1024;
  std::int64_t max_train_images = 20000;  // evenly strided over the training split
  int epochs = 2;
  float learning_rate = 1e-4F;
  std::int64_t batch_size = 128;
  // Train mostly on the FP32 model's softened logits (weight 0.9, temperature 4) and a little on
  // the labels, so the int8 model learns to reproduce the model it replaces rather than drifting
  // to a new fit of the training set. Labels only (the earlier default) ended 1-2 test images
  // below ptq_int8 on both third-party MNIST models; see docs/techniques.md.
  bool distill_from_baseline = true;
  float distill_temperature = 4.0F;
  float distill_alpha = 0.9F;
};

class QatInt8 final : public TechniqueWithOptions<QatInt8, QatInt8Options> {
 public:
  using TechniqueWithOptions::TechniqueWithOptions;
  static std::vector<ParamField<QatInt8Options>> fields();
  WorkEstimate estimate_work(std::int64_t train_images) const override;
  std::string_view id() const override { return "qat_int8"; }
  std::string_view description() const override {
    return "quantization-aware fine-tuning (fake-quant, straight-through) from the PTQ ranges, then the same int8 kernels";
  }
  bool requires_data() const override { return true; }
  Result<Output> run(const Context& context) const override;

};

}  // namespace edgeopt::techniques
