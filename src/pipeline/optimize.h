// `edgeopt optimize`: the FP32 baseline and every requested technique's variant, each written as
// a deployable file and measured the same way (accuracy on the test split with its CI, size read
// from disk and gzipped, params and non-zero params, MACs, host latency p50/p95 at batch 1 with one
// and all threads), then estimated on each device and ranked by the recommendation engine.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "recommend/recommend.h"

namespace edgeopt::pipeline {

struct OptimizeOptions {
  std::string dataset;
  std::string data_dir;
  bool allow_download = true;
  std::string normalize = "unit";
  std::vector<std::string> techniques;  // empty: all registered
  // Technique parameters to change, by technique id then parameter name (--param id.name=value).
  std::map<std::string, std::map<std::string, std::string>> params;
  std::string out_dir = "edgeopt-out";
  std::vector<std::string> devices;     // empty: every device in the catalogue
  std::string device;                   // the target device for latency limits and the pick
  recommend::Goal goal = recommend::Goal::kBalanced;
  recommend::Limits limits;
  std::int64_t eval_limit = 0;          // 0: the whole test split
  std::int64_t max_train_images = 0;    // techniques see an evenly strided subset this large; 0: all
  int latency_runs = 50;
  int jobs = 0;                         // techniques run at once; 0: one per core, as memory allows
  std::string resources_dir;            // data/ (devices, estimator); empty: found automatically
  std::function<void(const std::string& technique, double fraction, const std::string& message)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

// Returns results.json's content (also written to out_dir/results.json). A technique that fails
// is reported with its reason; the others still finish.
Result<nlohmann::json> optimize(const std::string& model_path, const OptimizeOptions& options);

// The recommendation over a results.json's baseline and completed variants, for the request's
// goal, limits and device (its `variants` are filled from the results): a "what if" without a
// re-run. The stored results' own recommendation was made the same way.
Result<nlohmann::json> recommend_results(const nlohmann::json& results, recommend::Request request);

// The same run split into steps that may run in different processes or on different machines
// (the service's jobs): the baseline, then each technique (in any order, in parallel), then the
// final measurement. Each step returns a record (JSON) the later steps take; artifacts are written
// to out_dir under fixed names (`<technique>.eom`, `<technique>.onnx`), which is all a step on
// another machine needs to have copied into its own out_dir. optimize() is these steps in one
// process.
class OptimizeRun {
 public:
  // Checks everything that can be refused (techniques, parameters, devices, the model, the
  // dataset and its labels) before any work, and loads the model and the dataset.
  static Result<std::unique_ptr<OptimizeRun>> open(const std::string& model_path, const OptimizeOptions& options);
  ~OptimizeRun();
  OptimizeRun(const OptimizeRun&) = delete;
  OptimizeRun& operator=(const OptimizeRun&) = delete;

  // The technique ids this run covers, in order.
  std::vector<std::string> techniques() const;
  // Resolves --normalize auto, measures the FP32 baseline (all but latency), writes fp32.eom.
  Result<nlohmann::json> baseline();
  // Runs one technique and measures its variant (all but latency). A technique that fails gives
  // a record with status "failed" and the reason, not an error; an error means bad input.
  Result<nlohmann::json> technique(const std::string& id, const nlohmann::json& baseline_record);
  // Host latency of the baseline and every completed variant (read back from their files in
  // out_dir, timed together in interleaved rounds on this machine), device estimates, the
  // recommendation: results.json's content (optimize() writes it to out_dir).
  Result<nlohmann::json> finish(const nlohmann::json& baseline_record, const std::vector<nlohmann::json>& technique_records);

 private:
  struct State;
  explicit OptimizeRun(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace edgeopt::pipeline
