// hybrid: unstructured pruning with fine-tuning (masks kept), then static int8 quantization of
// the pruned model (ptq_int8's pipeline); pruned weights stay exactly zero, and the file stores
// each weight as a bitmask plus the non-zero int8 codes. Runs on the int8 kernels (dense: zeros
// are computed, so the speed is int8's, not sparsity's).
#pragma once

#include "techniques/prune_unstructured.h"
#include "techniques/technique.h"

namespace edgeopt::techniques {

struct HybridOptions {
  PruneUnstructuredOptions prune{.schedule = {0.5, 0.7, 0.82}};
  std::int64_t calibration_images = 1024;
};

class Hybrid final : public Technique {
 public:
  explicit Hybrid(HybridOptions options = {}) : options_(std::move(options)) {}
  std::string_view id() const override { return "hybrid"; }
  std::string_view description() const override {
    return "magnitude pruning to 82 % with fine-tuning, then int8 (sparse int8 storage, int8 kernels)";
  }
  bool requires_data() const override { return true; }
  Result<Output> run(const Context& context) const override;

 private:
  HybridOptions options_;
};

}  // namespace edgeopt::techniques
