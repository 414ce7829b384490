// Latency, memory and energy of a model on a device, from the IR's per-layer cost alone.
// Per layer: max(compute, memory traffic) under a roofline whose efficiencies come from
// calibration (data/estimator/calibration.json, fitted by `make calibrate`), plus per-layer and
// per-inference overheads; the interval comes from the calibration residuals.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "estimator/devices.h"
#include "estimator/layers.h"
#include "ir/graph.h"

namespace edgeopt::estimator {

// The model's structure (priors, arenas, op support) from model.json and the fitted values.
struct Calibration {
  struct Prior {
    double value = 1;
    double log_sd = 1;
  };
  struct Interval {
    double low = 0.6;   // measured / predicted at the low end (e.g. 10th percentile)
    double high = 1.6;  // ... at the high end (90th percentile)
    int rows = 0;       // 0: not calibrated, the default interval applies
  };
  std::map<std::string, Prior> priors;
  std::map<std::string, double> params;                          // fitted values
  std::map<std::string, Interval> intervals;                     // by device id
  std::map<std::string, double> arena_mb;                        // by runtime
  std::map<std::string, double> os_reserved_mb;                  // by device kind
  std::set<std::string> weights_in_flash;                        // device kinds
  std::map<std::string, std::set<std::string>> unsupported_ops;  // runtime -> IR op names
  std::map<std::string, std::set<std::string>> fused_ops;        // runtime -> IR ops its optimiser removes
  // Winograd output tiles m of F(m x m, 3 x 3) a runtime chooses from, per build ("current", "legacy").
  std::map<std::string, std::map<std::string, std::vector<int>>> winograd_tiles;
  // Runtimes whose quantised kernels keep the blobs between layers in FP32 (quantising each
  // layer's input and dequantising its output inside the layer): runtime -> compute precisions.
  std::map<std::string, std::set<std::string>> float_activations;
  Interval default_interval;
  double uncalibrated_widen = 1.5;
  double prior_weight = 1;    // weight of the priors against the measurements in the fit
  nlohmann::json validation;  // published statistics, as written by the fitter

  // The user's own on-board measurements (`edgeopt calibrate --measured`, local_calibration.h),
  // kept apart from the shipped fit: a latency factor per device and runtime. Empty unless
  // loaded with load_local_calibration.
  struct Local {
    double factor = 1;     // applied to the shipped estimate
    int measurements = 0;  // how many on-board measurements it rests on
  };
  std::map<std::string, std::map<std::string, Local>> local;  // device id -> runtime -> factor
  std::string local_path;  // the file it came from

  // Fitted value, else the prior for key / family@unit / family. Fails on a key without a prior.
  double get(const std::string& key, const std::string& family, Unit unit) const;
  const Prior& prior(const std::string& key, const std::string& family, Unit unit) const;
};

// Reads model.json and, when it exists, calibration.json from `estimator_dir` (data/estimator).
Result<Calibration> load_calibration(const std::string& estimator_dir);
nlohmann::json calibration_to_json(const Calibration& calibration);

struct EstimateOptions {
  std::string device;
  std::string runtime;  // empty: the device's first runtime that accepts the precision
  Precision precision = Precision::kFp32;
  int threads = 0;     // 0: all cores
  double cpu_mhz = 0;  // 0: the catalogue's clock
  // Calibration only: measurements that include detection post-processing or a whole demo loop.
  bool include_postprocess = false;
  bool end_to_end = false;
  bool legacy_timing = false;
  bool latency_only = false;  // skip notes, layer ranking and memory (the fitter's inner loop)
};

struct LayerTime {
  std::string name;
  std::string op;
  std::string unit;
  double ms = 0;
  bool memory_bound = false;
};

struct Estimate {
  std::string device;
  std::string runtime;
  Precision precision = Precision::kFp32;
  Precision compute_precision = Precision::kFp32;
  int threads = 1;
  double cpu_mhz = 0;
  double latency_ms = 0;
  double latency_ms_low = 0;
  double latency_ms_high = 0;
  std::int64_t weight_bytes = 0;
  std::int64_t activation_bytes = 0;
  std::int64_t arena_bytes = 0;
  std::int64_t peak_memory_bytes = 0;
  std::int64_t available_memory_bytes = 0;
  bool fits_in_memory = true;
  double energy_mj = 0;
  std::string bound;  // compute | memory
  double memory_bound_share = 0;
  std::string fallback_op;  // first op an accelerator could not run; empty if none
  int layers_on_accelerator = 0;
  int layers_on_cpu = 0;
  std::vector<LayerTime> dominant_layers;  // top 3 by time
  std::vector<std::string> notes;
  std::set<std::string> parameters_used;  // calibration keys read (for the fitter)
  int local_measurements = 0;  // 0: the shipped calibration alone; else on-board measurements folded in
  double local_factor = 1;     // the local correction applied to latency_ms and its interval
};

// The catalogue, calibration and options name what to estimate; bad choices fail listing the valid ones.
Result<Estimate> estimate(const LayerTable& model, const DeviceCatalog& catalog, const Calibration& calibration,
                          const EstimateOptions& options);
Result<Estimate> estimate_graph(const ir::Graph& graph, const DeviceCatalog& catalog, const Calibration& calibration,
                                const EstimateOptions& options);

nlohmann::json estimate_to_json(const Estimate& estimate);

// The precision a model computes in, read from its graph the way `optimize` labels its variants:
// int8 when activations carry quantization ranges (an int8 variant, a QDQ ONNX import); fp32
// otherwise, including weight-only int4/int8/f16 storage, which a device unpacks to float.
struct GraphPrecision {
  Precision precision = Precision::kFp32;
  std::string reason;  // what in the graph decided it, for the user
};
GraphPrecision precision_of_graph(const ir::Graph& graph);

}  // namespace edgeopt::estimator
