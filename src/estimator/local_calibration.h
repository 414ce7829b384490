// A user's on-board measurements folded into the estimator: `edgeopt calibrate --measured
// measurements.json` reads what a deployment package's selftest.py measured on the board, estimates
// each measured file again with the shipped calibration (from the layer table the package carries)
// and keeps, per device and runtime, a latency factor in the user's own folder (never data/). The
// estimator applies it on top of the shipped fit and says so (`calibration: local (N measurements)`).
//
// The factor is the geometric mean of measured / estimated, shrunk towards 1 as a normal prior on
// its logarithm with the spread of the shipped calibration's interval for that device
// (10th-90th percentile -> sd) against a per-measurement spread of kMeasurementLogSd: one
// measurement moves an estimate most of the way, never all of it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"

namespace edgeopt::estimator {

constexpr const char* kLocalCalibrationFile = "local_calibration.json";
// Spread of one on-board latency measurement against the true typical figure (log scale): runs,
// boards of a model, clocks and temperature.
constexpr double kMeasurementLogSd = 0.1;

// The folder of the user's local calibration: `option` when given, else $EDGEOPT_CALIBRATION_DIR,
// else $XDG_DATA_HOME/edgeopt/calibration, else ~/.local/share/edgeopt/calibration.
std::string local_calibration_dir(const std::string& option = "");

// Adds the factors of DIR/local_calibration.json to `calibration` (no file: nothing changes). A
// file that cannot be read is an error naming it.
Status load_local_calibration(Calibration& calibration, const std::string& dir);
// load_calibration(estimator_dir), then load_local_calibration(local_calibration_dir(local_dir)).
Result<Calibration> load_calibration_with_local(const std::string& estimator_dir, const std::string& local_dir = "");

// "shipped", or "local (N measurements)" when on-board measurements of the device were folded in.
std::string calibration_label(const Calibration& calibration, const std::string& device);
// {"calibration": label, "local": {runtime: {"factor", "measurements"}}, "local_file"} for listings.
nlohmann::json calibration_summary(const Calibration& calibration, const std::string& device);

// One measured model file of a measurements.json, estimated again with the shipped calibration.
struct MeasuredPoint {
  std::string device;
  std::string runtime;
  std::string precision;
  int threads = 0;
  double measured_ms = 0;   // p50 at batch 1 on the board
  double estimated_ms = 0;  // the shipped calibration's estimate for the same file, threads and runtime
  std::string path;         // inside the package
  std::string model_sha256;
  std::string technique;
  std::string measured_at;
  std::string host;
};

struct Measurements {
  std::string device;
  std::vector<MeasuredPoint> points;
  std::vector<std::string> skipped;  // model files not used, each with why
};

// Parses and checks a measurements.json (written by a package's selftest.py). `shipped` is the
// calibration without local factors; `device_override` (--device) replaces the file's device.
// Refuses, saying what is wrong: text that is not JSON, not a measurements file, an unknown device,
// a latency that is not a positive finite number, a model whose SHA-256 differs from the one its
// package shipped, a failed self-test, or nothing measured.
Result<Measurements> read_measurements(std::string_view text, const std::string& source, const DeviceCatalog& catalog,
                                       const Calibration& shipped, const std::string& device_override = "");

struct FoldResult {
  std::string path;  // the local calibration file written
  int added = 0;
  int already_there = 0;  // the same measurement folded in before (same file, runtime, threads, time, host)
  std::map<std::string, Calibration::Local> factors;  // the device's factors afterwards, by runtime
};

// Adds the measurements to DIR/local_calibration.json (created if needed, written atomically) and
// recomputes the factors of the runtimes they touch.
Result<FoldResult> fold_measurements(const Measurements& measurements, const std::string& dir, const Calibration& shipped);

}  // namespace edgeopt::estimator
