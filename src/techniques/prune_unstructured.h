// prune_unstructured: global magnitude pruning of Conv/Gemm weights to a target sparsity on a
// gradual schedule, fine-tuning on the training split after every stage with the masks kept
// (pruned weights stay exactly zero), stored sparse (bitmask + values) so the file really shrinks.
// Dense kernels gain no speed from zeros: the notes say so.
#pragma once

#include <vector>

#include "techniques/technique.h"

namespace edgeopt::techniques {

struct PruneUnstructuredOptions {
  std::vector<double> schedule{0.5, 0.65, 0.75};  // sparsity after each stage; the last is the target
  int epochs_per_stage = 1;
  std::int64_t max_train_images = 20000;  // an evenly strided subset of the training split
  float learning_rate = 1e-3F;  // decayed to zero within each stage (cosine), restarted at the next
  std::int64_t batch_size = 128;
};

class PruneUnstructured final : public TechniqueWithOptions<PruneUnstructured, PruneUnstructuredOptions> {
 public:
  using TechniqueWithOptions::TechniqueWithOptions;
  static std::vector<ParamField<PruneUnstructuredOptions>> fields();
  WorkEstimate estimate_work(std::int64_t train_images) const override;
  std::string_view id() const override { return "prune_unstructured"; }
  std::string_view description() const override {
    return "global magnitude pruning to 75 % sparsity, gradual, fine-tuned with masks, stored sparse";
  }
  bool requires_data() const override { return true; }
  Result<Output> run(const Context& context) const override;

};

// The magnitude below which weights are pruned so that `sparsity` of all values in `weights` go.
float magnitude_threshold(const std::vector<const std::vector<float>*>& weights, double sparsity);

}  // namespace edgeopt::techniques
