// One interface for every optimization technique, and the one visible list of them
// (techniques.cpp). A technique turns the FP32 baseline into a variant: a runnable IR graph (its
// weights as the device will compute with them) plus how each constant is stored on disk.
// Measuring the variant (accuracy, size, latency) is the pipeline's job, the same for all.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "data/dataset.h"
#include "format/eom.h"
#include "ir/graph.h"
#include "pipeline/preprocess.h"
#include "techniques/params.h"

namespace edgeopt::techniques {

struct Context {
  const ir::Graph* baseline = nullptr;   // verified FP32 graph
  const data::ImageSet* train = nullptr; // calibration / fine-tuning data: the TRAINING split only
  pipeline::InputSpec spec;
  pipeline::Normalization norm;
  std::uint64_t seed = 42;
  std::function<void(double fraction, const std::string& message)> progress;  // may be empty
  std::function<bool()> cancelled;                                            // may be empty
};

struct Output {
  ir::Graph graph;                  // runs on the FP32 executor with the variant's effective weights
  format::EomWriteOptions encoding; // how the deployable .eom stores each constant
  std::string precision = "fp32";   // what a device computes in: fp32, int8, int4 (estimator input)
  std::vector<std::string> notes;   // what was done and what a user should know
  // Measured figures particular to the technique (e.g. distillation's student trained alone),
  // reported under the variant's "metrics" in results.json. Names say what and where measured.
  std::map<std::string, double> metrics;
};

// What a run will cost, in image passes: one forward pass of the baseline over one image is 1; a
// training step on one image counts 3 (forward, backward, update), plus 1 more for a teacher's
// forward pass. `edgeopt optimize` times the baseline's forward pass on one thread and multiplies,
// which gives an estimate (labelled as one) before any technique starts.
struct WorkEstimate {
  double image_passes = 0;
};

class Technique {
 public:
  virtual ~Technique() = default;
  virtual std::string_view id() const = 0;           // e.g. "ptq_int4"
  virtual std::string_view description() const = 0;
  virtual bool requires_data() const = 0;
  virtual Result<Output> run(const Context& context) const = 0;
  // The parameters a user may set, with their current values (the defaults, for the registry's).
  virtual std::vector<Param> params() const = 0;
  // A copy with some parameters changed; an unknown name or a bad value is an error saying which.
  virtual Result<std::unique_ptr<Technique>> with_params(const std::map<std::string, std::string>& values) const = 0;
  // The expected work on a training split of `train_images` images (see WorkEstimate).
  virtual WorkEstimate estimate_work(std::int64_t train_images) const = 0;
};

// The parameter plumbing every technique shares: `Derived::fields()` lists the settable fields of
// its options struct `O`.
template <class Derived, class O>
class TechniqueWithOptions : public Technique {
 public:
  explicit TechniqueWithOptions(O options = {}) : options_(std::move(options)) {}
  std::vector<Param> params() const override { return describe(options_, Derived::fields()); }
  Result<std::unique_ptr<Technique>> with_params(const std::map<std::string, std::string>& values) const override {
    return capture([&]() -> std::unique_ptr<Technique> {
      O options = options_;
      apply(options, Derived::fields(), values, id());
      return std::make_unique<Derived>(std::move(options));
    });
  }
  const O& options() const { return options_; }

 protected:
  O options_;
};

// Every technique EdgeOpt has, in the order results are shown.
const std::vector<const Technique*>& registry();
const Technique* find_technique(std::string_view id);

}  // namespace edgeopt::techniques
