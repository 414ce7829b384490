#include "estimator/local_calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/file_io.h"
#include "estimator/layers.h"

namespace edgeopt::estimator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFormat = "edgeopt-local-calibration-1";
constexpr std::size_t kMaxFileBytes = 64u << 20;
// z of the 10th/90th percentiles the shipped intervals are
constexpr double kZ90 = 1.2816;

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The spread (log sd) of the shipped estimate's error for a device: its interval's width.
double prior_log_sd(const Calibration& cal, const std::string& device) {
  Calibration::Interval interval = cal.default_interval;
  if (const auto it = cal.intervals.find(device); it != cal.intervals.end() && it->second.rows > 0) {
    interval = it->second;
  } else {
    interval.low /= cal.uncalibrated_widen;
    interval.high *= cal.uncalibrated_widen;
  }
  return std::max(0.01, std::log(interval.high / interval.low) / (2 * kZ90));
}

// Posterior mean of the log factor: the measurements' mean log ratio, shrunk towards 0.
double factor_of(const std::vector<double>& log_ratios, double prior_sd) {
  if (log_ratios.empty()) return 1;
  double sum = 0;
  for (double r : log_ratios) sum += r;
  const double shrink = (kMeasurementLogSd * kMeasurementLogSd) / (prior_sd * prior_sd);
  return std::exp(sum / (static_cast<double>(log_ratios.size()) + shrink));
}

json read_local_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return json{{"format", kFormat}, {"devices", json::object()}};
  const auto size = fs::file_size(path, ec);
  if (ec || size > kMaxFileBytes) fail(ErrorCode::kCorruptFile, "the local calibration '" + path.string() + "' cannot be read", "delete it to start over");
  std::ifstream in(path, std::ios::binary);
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("format", "") != kFormat || !doc.contains("devices") || !doc["devices"].is_object()) {
    fail(ErrorCode::kCorruptFile, "'" + path.string() + "' is not an EdgeOpt local calibration (" + kFormat + ")",
         "delete it to start over, then fold your measurements.json files in again with edgeopt calibrate --measured");
  }
  return doc;
}

std::string point_key(const json& p) {
  return p.value("model_sha256", "") + "|" + p.value("runtime", "") + "|" + std::to_string(p.value("threads", 0)) + "|" + p.value("measured_at", "") + "|" +
         p.value("host", "") + "|" + p.value("path", "");
}

const json& field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object() || !object.contains(key)) {
    fail(ErrorCode::kCorruptFile, where + ": '" + key + "' is missing",
         "use the measurements.json that selftest.py of a package from this EdgeOpt version writes");
  }
  return object[key];
}

std::string string_field(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (!v.is_string()) fail(ErrorCode::kCorruptFile, where + ": '" + key + "' must be a string", "use the measurements.json selftest.py writes");
  return v.get<std::string>();
}

bool is_sha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string local_calibration_dir(const std::string& option) {
  if (!option.empty()) return option;
  if (const char* env = std::getenv("EDGEOPT_CALIBRATION_DIR"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return (fs::path(xdg) / "edgeopt" / "calibration").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".local" / "share" / "edgeopt" / "calibration").string();
  return ".edgeopt-calibration";
}

Status load_local_calibration(Calibration& calibration, const std::string& dir) {
  return capture([&] {
    const fs::path path = fs::path(dir) / kLocalCalibrationFile;
    std::error_code ec;
    if (!fs::exists(path, ec)) return edgeopt::Unit{};
    const json doc = read_local_file(path);
    for (const auto& [device, runtimes] : doc["devices"].items()) {
      if (!runtimes.is_object()) fail(ErrorCode::kCorruptFile, path.string() + ": device '" + device + "' is not an object", "delete the file to start over");
      for (const auto& [runtime, entry] : runtimes.items()) {
        const double factor = entry.value("factor", 0.0);
        const json points = entry.value("measurements", json::array());
        if (!std::isfinite(factor) || factor <= 0 || !points.is_array()) {
          fail(ErrorCode::kCorruptFile, path.string() + ": the factor of " + device + "/" + runtime + " is not a positive number", "delete the file to start over");
        }
        calibration.local[device][runtime] = {factor, static_cast<int>(points.size())};
      }
    }
    calibration.local_path = path.string();
    return edgeopt::Unit{};
  });
}

Result<Calibration> load_calibration_with_local(const std::string& estimator_dir, const std::string& local_dir) {
  auto cal = load_calibration(estimator_dir);
  if (!cal) return cal.error();
  if (Status s = load_local_calibration(cal.value(), local_calibration_dir(local_dir)); !s) return s.error();
  return cal;
}

std::string calibration_label(const Calibration& calibration, const std::string& device) {
  int n = 0;
  if (const auto it = calibration.local.find(device); it != calibration.local.end()) {
    for (const auto& [runtime, local] : it->second) n += local.measurements;
  }
  return n > 0 ? "local (" + std::to_string(n) + " measurement" + (n == 1 ? "" : "s") + ")" : "shipped";
}

json calibration_summary(const Calibration& calibration, const std::string& device) {
  json out{{"calibration", calibration_label(calibration, device)}};
  if (const auto it = calibration.local.find(device); it != calibration.local.end()) {
    json local = json::object();
    for (const auto& [runtime, l] : it->second) local[runtime] = {{"factor", l.factor}, {"measurements", l.measurements}};
    out["local"] = local;
    out["local_file"] = calibration.local_path;
  }
  return out;
}

namespace {

Measurements parse_measurements(std::string_view text, const std::string& source, const DeviceCatalog& catalog, const Calibration& shipped,
                                const std::string& device_override) {
  {
    if (text.size() > kMaxFileBytes) fail(ErrorCode::kInvalidArgument, source + " is larger than 64 MiB", "pass the measurements.json selftest.py wrote");
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) {
      const bool non_finite = text.find("NaN") != std::string_view::npos || text.find("Infinity") != std::string_view::npos;
      fail(ErrorCode::kCorruptFile, source + " is not valid JSON" + std::string(non_finite ? " (it holds NaN or Infinity: a latency that is not a measurement)" : ""),
           "pass the measurements.json that a package's selftest.py wrote on the board");
    }
    if (!doc.is_object() || doc.value("kind", "") != "edgeopt-measurements") {
      fail(ErrorCode::kCorruptFile, source + " is not an EdgeOpt measurements file (no \"kind\": \"edgeopt-measurements\")",
           "pass the measurements.json that a package's selftest.py wrote on the board");
    }
    const json& version = field(doc, "version", source);
    if (!version.is_number_integer() || version.get<int>() != 1) fail(ErrorCode::kCorruptFile, source + ": measurements format version " + version.dump() + " is not supported", "this EdgeOpt reads version 1");
    Measurements m;
    const std::string file_device = string_field(doc, "device", source);
    m.device = device_override.empty() ? file_device : device_override;
    const Device* device = catalog.find(m.device);
    for (const Device& d : catalog.devices) {
      if (!device && std::find(d.aliases.begin(), d.aliases.end(), m.device) != d.aliases.end()) device = &d;
    }
    if (!device) {
      fail(ErrorCode::kInvalidArgument, "unknown device '" + m.device + "'" + (device_override.empty() ? " in " + source : std::string(" (--device)")),
           "valid devices: " + catalog.id_list() + (device_override.empty() ? "; pass --device ID if the board is one of them" : ""));
    }
    m.device = device->id;
    const json& passed = field(doc, "passed", source);
    if (!passed.is_boolean()) fail(ErrorCode::kCorruptFile, source + ": 'passed' must be true or false", "use the measurements.json selftest.py writes");
    if (!passed.get<bool>()) {
      fail(ErrorCode::kInvalidArgument, source + " records a self-test that failed on the board (a checksum, or outputs unlike EdgeOpt's): its timings are not folded in",
           "fix what selftest.py reported (download the package again, check the runtime), run it again, then calibrate");
    }
    const json& files = field(doc, "package_files", source);
    if (!files.is_object()) fail(ErrorCode::kCorruptFile, source + ": 'package_files' must map file names to SHA-256 digests", "use the measurements.json selftest.py writes");
    const json& layers_doc = field(doc, "layers", source);
    auto layers = layer_table_from_json(layers_doc, source + " layers");
    if (!layers) fail(ErrorCode::kCorruptFile, source + ": the model's layer table is unreadable: " + layers.error().message, "use the measurements.json selftest.py writes");
    if (layers->layers.empty()) fail(ErrorCode::kCorruptFile, source + ": the model's layer table is empty", "use the measurements.json selftest.py writes");
    const json& models = field(doc, "models", source);
    if (!models.is_array()) fail(ErrorCode::kCorruptFile, source + ": 'models' must be a list", "use the measurements.json selftest.py writes");
    const std::string technique = doc.value("technique", json("")).is_string() ? doc.value("technique", "") : "";
    const std::string measured_at = doc.value("measured_at", json("")).is_string() ? doc.value("measured_at", "") : "";
    const json host = doc.value("host", json::object());
    const std::string host_name = host.is_object() && host.value("node", json("")).is_string() ? host.value("node", "") : "";
    for (std::size_t i = 0; i < models.size(); ++i) {
      const json& entry = models[i];
      const std::string where = source + " model " + std::to_string(i + 1);
      const std::string path = string_field(entry, "path", where);
      if (!entry.contains("latency_ms")) {
        m.skipped.push_back(path + ": not run on the board (" + (entry.value("status", json("")).is_string() ? entry.value("status", "") : "no latency") + ")");
        continue;
      }
      const json& latency = entry["latency_ms"];
      const json p50 = latency.is_object() && latency.contains("p50") ? latency["p50"] : json(nullptr);
      if (!p50.is_number() || !std::isfinite(p50.get<double>()) || p50.get<double>() <= 0) {
        fail(ErrorCode::kInvalidArgument, where + " (" + path + "): latency p50 " + p50.dump() + " is not a positive number of milliseconds",
             "pass the measurements.json selftest.py wrote, unedited");
      }
      const std::string sha = string_field(entry, "sha256", where);
      const json expected = files.contains(path) ? files[path] : json(nullptr);
      if (!is_sha256(sha) || !expected.is_string() || expected.get<std::string>() != sha) {
        fail(ErrorCode::kInvalidArgument, where + ": the measured file " + path + " has SHA-256 " + sha.substr(0, 64) + ", not the package's " + (expected.is_string() ? expected.get<std::string>() : std::string("(none listed)")),
             "measure the model the package shipped: unzip it again and rerun selftest.py");
      }
      const json est_doc = entry.contains("estimate") ? entry["estimate"] : json(nullptr);
      if (!est_doc.is_object()) {
        m.skipped.push_back(path + ": the estimator does not model this file (" + (entry.value("precision", json("")).is_string() ? entry.value("precision", "") : "") + ")");
        continue;
      }
      MeasuredPoint p;
      p.device = device->id;
      p.runtime = string_field(est_doc, "runtime", where + " estimate");
      p.precision = string_field(est_doc, "precision", where + " estimate");
      const json threads = entry.contains("threads") ? entry["threads"] : est_doc.value("threads", json(0));
      if (!threads.is_number_integer() || threads.get<int>() < 0 || threads.get<int>() > 1024) {
        fail(ErrorCode::kInvalidArgument, where + ": 'threads' must be a whole number", "pass the measurements.json selftest.py wrote, unedited");
      }
      p.threads = threads.get<int>();
      p.measured_ms = p50.get<double>();
      p.path = path;
      p.model_sha256 = sha;
      p.technique = technique;
      p.measured_at = measured_at;
      p.host = host_name;
      if (!device->find_runtime(p.runtime)) {
        m.skipped.push_back(path + ": " + device->id + " has no runtime '" + p.runtime + "' in the catalogue (it has " + device->runtime_list() + ")");
        continue;
      }
      const auto precision = precision_from_name(p.precision);
      if (!precision) fail(ErrorCode::kInvalidArgument, where + ": unknown precision '" + p.precision + "'", "fp32, fp16, int8 or int4");
      EstimateOptions o;
      o.device = device->id;
      o.runtime = p.runtime;
      o.precision = *precision;
      o.threads = std::min(p.threads, device->cpu_cores);
      o.latency_only = true;
      Calibration base = shipped;
      base.local.clear();
      auto e = estimator::estimate(layers.value(), catalog, base, o);
      if (!e) {
        m.skipped.push_back(path + ": not estimated (" + e.error().message + ")");
        continue;
      }
      p.estimated_ms = e->latency_ms;
      if (!(p.estimated_ms > 0) || !std::isfinite(p.estimated_ms)) {
        m.skipped.push_back(path + ": the estimate is not positive");
        continue;
      }
      m.points.push_back(std::move(p));
    }
    if (m.points.empty()) {
      std::string why;
      for (const std::string& s : m.skipped) why += (why.empty() ? "" : "; ") + s;
      fail(ErrorCode::kInvalidArgument, source + " has no measurement the estimator can use" + (why.empty() ? "" : ": " + why),
           "run selftest.py of a TFLite or ONNX package on the board with its runtime installed");
    }
    return m;
  }
}

}  // namespace

Result<Measurements> read_measurements(std::string_view text, const std::string& source, const DeviceCatalog& catalog, const Calibration& shipped,
                                       const std::string& device_override) {
  return capture([&]() -> Measurements {
    try {
      return parse_measurements(text, source, catalog, shipped, device_override);
    } catch (const json::exception& e) {
      fail(ErrorCode::kCorruptFile, source + ": a field has the wrong type (" + e.what() + ")", "pass the measurements.json selftest.py wrote, unedited");
    }
  });
}

Result<FoldResult> fold_measurements(const Measurements& measurements, const std::string& dir, const Calibration& shipped) {
  return capture([&]() -> FoldResult {
    const fs::path path = fs::path(dir) / kLocalCalibrationFile;
    json doc = read_local_file(path);
    FoldResult r;
    r.path = path.string();
    json& device = doc["devices"][measurements.device];
    if (!device.is_object()) device = json::object();
    for (const MeasuredPoint& p : measurements.points) {
      json point{{"measured_ms", p.measured_ms},
                 {"estimated_ms_shipped", p.estimated_ms},
                 {"ratio", p.measured_ms / p.estimated_ms},
                 {"runtime", p.runtime},
                 {"precision", p.precision},
                 {"threads", p.threads},
                 {"path", p.path},
                 {"model_sha256", p.model_sha256},
                 {"technique", p.technique},
                 {"measured_at", p.measured_at},
                 {"host", p.host}};
      json& entry = device[p.runtime];
      if (!entry.is_object()) entry = json{{"factor", 1.0}, {"measurements", json::array()}};
      bool seen = false;
      for (const json& q : entry["measurements"]) seen = seen || point_key(q) == point_key(point);
      if (seen) {
        ++r.already_there;
        continue;
      }
      entry["measurements"].push_back(point);
      ++r.added;
    }
    const double prior_sd = prior_log_sd(shipped, measurements.device);
    for (auto it = device.begin(); it != device.end(); ++it) {
      const std::string runtime = it.key();
      json& entry = it.value();
      std::vector<double> logs;
      for (const json& q : entry["measurements"]) {
        const double ratio = q.value("ratio", 0.0);
        if (std::isfinite(ratio) && ratio > 0) logs.push_back(std::log(ratio));
      }
      entry["factor"] = factor_of(logs, prior_sd);
      entry["prior_log_sd"] = prior_sd;
      r.factors[runtime] = {entry["factor"].get<double>(), static_cast<int>(entry["measurements"].size())};
    }
    doc["note"] = "on-board measurements folded in by edgeopt calibrate --measured; factor = exp(sum log(measured/estimated) / (n + (" + number(kMeasurementLogSd) +
                  " / prior_log_sd)^2)), applied on top of EdgeOpt's shipped calibration for that device and runtime (docs/packages.md)";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail(ErrorCode::kIo, "cannot create the calibration folder '" + dir + "': " + ec.message(), "pass --calibration-dir DIR to a writable folder");
    if (Status s = write_file_atomic(path.string(), doc.dump(2) + "\n"); !s) throw Failure{s.error()};
    return r;
  });
}

}  // namespace edgeopt::estimator
