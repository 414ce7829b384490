// Fitting the estimator's efficiencies to published measurements (data/estimator/measurements.csv)
// and validating them leave-one-model-out. Used by tools/calibrate (make calibrate) and the tests.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
#include "estimator/layers.h"

namespace edgeopt::estimator {

struct Measurement {
  std::string line;  // line in shared/device-benchmarks/calibration.csv
  std::string device;
  std::string model;  // layer table name, e.g. resnet18_224; empty for excluded rows
  std::string runtime;
  Precision precision = Precision::kFp32;
  int threads = 0;
  double cpu_mhz = 0;
  double latency_ms = 0;
  bool postprocess = false;
  bool end_to_end = false;
  bool legacy = false;  // [AA] 2019 Python timings: one fitted factor per runtime
  bool use = true;
  std::string note;  // for excluded rows: why
  // The architecture, shared by input sizes (resnet18_224 and resnet18_256): the unit left out.
  std::string architecture() const;
};

Result<std::vector<Measurement>> load_measurements(const std::string& csv_path);

struct Prediction {
  Measurement measurement;
  double predicted_ms = 0;
  double error() const;  // (predicted - measured) / measured
};

struct GroupStats {
  std::string group;
  int rows = 0;
  double median_abs_error = 0;
  double within_10 = 0;  // share of rows with |error| <= 10 %
  double within_25 = 0;
  double spearman = 0;
};

struct Validation {
  Calibration fitted;                 // fitted on every used row, intervals from LOMO residuals
  std::vector<Prediction> in_sample;  // predictions of the full fit
  std::vector<Prediction> lomo;       // each row predicted by a fit that never saw its architecture
  std::vector<GroupStats> per_device;
  std::vector<GroupStats> per_device_runtime;
  std::vector<Measurement> excluded;
};

// Fits on the used rows (minus those of `left_out_architecture`); `base` supplies the priors.
Result<Calibration> fit_calibration(const Calibration& base, const std::vector<Measurement>& rows,
                                    const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog,
                                    const std::string& left_out_architecture = {});

// The full fit, leave-one-model-out predictions and per-device statistics.
Result<Validation> calibrate_and_validate(const Calibration& base, const std::vector<Measurement>& rows,
                                          const std::map<std::string, LayerTable>& tables,
                                          const DeviceCatalog& catalog);

std::vector<GroupStats> group_stats(const std::vector<Prediction>& predictions, bool by_runtime);
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// calibration.json as written by `make calibrate`: fitted params, intervals and the validation.
nlohmann::json validation_to_json(const Validation& validation);

}  // namespace edgeopt::estimator
