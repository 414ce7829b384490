// `edgeopt optimize`: the FP32 baseline and every requested technique's variant, each written as
// a deployable file and measured the same way (accuracy on the test split with its CI, size read
// from disk and gzipped, params and non-zero params, MACs, host latency p50/p95 at batch 1 with one
// and all threads), then estimated on each device and ranked by the recommendation engine.
#pragma once

#include <atomic>
#include <functional>
#include <map>
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

}  // namespace edgeopt::pipeline
