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
  std::string family;  // backbone family (mobilenet_v1, resnet, yolo, ...): the unit leave-one-family-out removes
  std::string source;  // publication key (NCNN, NT-det, CORAL-B, ...): the unit leave-one-source-out removes
  std::string note;    // for excluded rows: why
  std::size_t order = 0;  // position in the file (reports keep it)
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

// Rows predicted by fits that never saw a group of rows (an architecture, a family or a source).
struct HeldOut {
  std::string method;  // lomo | lofo | loso
  std::vector<Prediction> predictions;  // in file order
  std::vector<GroupStats> per_device;
  std::vector<GroupStats> per_device_runtime;
  double coverage = 0;                       // share of rows inside the published interval
  std::map<std::string, double> coverage_of;  // ... per device
};

// A fitted parameter with its uncertainty: sd of its log from the fit's curvature (Laplace).
struct FittedParam {
  std::string key;
  double value = 0;
  double log_sd = 0;
  double data_share = 0;   // 1 - posterior/prior variance: how far the data, not the prior, sets it
  int rows = 0;            // rows that read it
  std::string device;      // the only device whose rows read it; empty when shared
};

struct Validation {
  Calibration fitted;                 // fitted on every used row, intervals from LOFO residuals
  std::vector<Prediction> in_sample;  // predictions of the full fit
  HeldOut lomo;                       // leave-one-model-out (architecture)
  HeldOut lofo;                       // leave-one-family-out (backbone family)
  HeldOut loso;                       // leave-one-source-out (publication)
  std::vector<FittedParam> params;
  double interval_share = 0.8;        // nominal share the intervals cover
  std::vector<Measurement> excluded;
};

// Fits on the used rows minus those `left_out` returns true for; `base` supplies the priors.
Result<Calibration> fit_calibration(const Calibration& base, const std::vector<Measurement>& rows,
                                    const std::map<std::string, LayerTable>& tables, const DeviceCatalog& catalog,
                                    const std::string& left_out_architecture = {});

// The full fit, leave-one-model/family/source-out predictions and per-device statistics.
Result<Validation> calibrate_and_validate(const Calibration& base, const std::vector<Measurement>& rows,
                                          const std::map<std::string, LayerTable>& tables,
                                          const DeviceCatalog& catalog);

std::vector<GroupStats> group_stats(const std::vector<Prediction>& predictions, bool by_runtime);
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// calibration.json as written by `make calibrate`: fitted params, intervals and the validation.
nlohmann::json validation_to_json(const Validation& validation);

}  // namespace edgeopt::estimator
