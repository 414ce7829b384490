// hybrid: unstructured pruning with fine-tuning (masks kept), then static int8 quantization of
// the pruned model (ptq_int8's pipeline); pruned weights stay exactly zero, and the file stores
// each weight as a bitmask plus the non-zero int8 codes. Runs on the int8 kernels (dense: zeros
// are computed, so the speed is int8's, not sparsity's).
// hybrid_int4: the same pruning, then ptq_int4's weight-only int4 (group-wise scales, MSE
// clipping, int8 fallback), stored as a bitmask plus the non-zero int4 codes; computes in float.
#pragma once

#include "techniques/prune_unstructured.h"
#include "techniques/ptq_int4.h"
#include "techniques/technique.h"

namespace edgeopt::techniques {

struct HybridOptions {
  PruneUnstructuredOptions prune{.schedule = {0.5, 0.7, 0.82}};
  std::int64_t calibration_images = 1024;
  bool int4 = false;  // hybrid_int4: weight-only int4 after pruning instead of static int8
  // Groups span stored and pruned weights alike: at 82 % sparsity a group of 128 holds ~23
  // non-zero weights, as many as a dense group of 32 would hold, for one f16 scale.
  PtqInt4Options int4_options{.group_size = 128, .sparse = true};
};

class Hybrid final : public TechniqueWithOptions<Hybrid, HybridOptions> {
 public:
  using TechniqueWithOptions::TechniqueWithOptions;
  static std::vector<ParamField<HybridOptions>> fields();
  WorkEstimate estimate_work(std::int64_t train_images) const override;
  std::string_view id() const override { return options_.int4 ? "hybrid_int4" : "hybrid"; }
  std::string_view description() const override {
    return options_.int4 ? "magnitude pruning to 82 % with fine-tuning, then weight-only int4 (sparse int4 storage, float compute)"
                         : "magnitude pruning to 82 % with fine-tuning, then int8 (sparse int8 storage, int8 kernels)";
  }
  bool requires_data() const override { return true; }
  Result<Output> run(const Context& context) const override;

};

}  // namespace edgeopt::techniques
