#include "cli/estimate_commands.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/cli_common.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
#include "estimator/local_calibration.h"
#include "pipeline/model.h"

namespace {

using edgeopt::Error;
using edgeopt::ErrorCode;
using edgeopt::Result;
using nlohmann::json;
namespace est = edgeopt::estimator;

int fail_with(const Error& e, bool as_json) { return edgeopt::cli::report_error(e, as_json); }

struct Resources {
  est::DeviceCatalog catalog;
  est::Calibration calibration;
};

// The shipped calibration plus the user's local one (edgeopt calibrate --measured), unless `shipped_only`.
Result<Resources> load_resources(const std::string& dir_option, const std::string& calibration_dir = "", bool shipped_only = false) {
  const std::string dir = dir_option.empty() ? est::find_data_dir() : dir_option;
  auto catalog = est::load_device_catalog(dir + "/devices");
  if (!catalog) return catalog.error();
  auto calibration = shipped_only ? est::load_calibration(dir + "/estimator") : est::load_calibration_with_local(dir + "/estimator", calibration_dir);
  if (!calibration) return calibration.error();
  return Resources{std::move(catalog).value(), std::move(calibration).value()};
}

struct DevicesArgs {
  bool json = false;
  std::string resources;
  std::string calibration_dir;
};

int run_devices(const DevicesArgs& a) {
  auto res = load_resources(a.resources, a.calibration_dir);
  if (!res) return fail_with(res.error(), a.json);
  const auto& cal = res->calibration;
  if (a.json) {
    json list = json::array();
    for (const auto& d : res->catalog.devices) {
      json doc = d.document;
      const auto it = cal.intervals.find(d.id);
      doc["calibration"] =
          it == cal.intervals.end()
              ? json{{"rows", 0}, {"note", "no published measurements: estimates rest on priors"}}
              : json{{"rows", it->second.rows}, {"interval_low", it->second.low}, {"interval_high", it->second.high}};
      doc["calibration"].update(est::calibration_summary(cal, d.id));  // "calibration": shipped | local (N measurements)
      list.push_back(doc);
    }
    std::cout << json{{"devices", list}}.dump(2) << "\n";
    return 0;
  }
  for (const auto& d : res->catalog.devices) {
    std::printf("%-22s %s\n", d.id.c_str(), d.name.c_str());
    std::printf("  cpu   %d x %s @ %.0f MHz", d.cpu_cores, d.cpu_model.c_str(), d.cpu_mhz);
    if (d.has_gpu) std::printf("; gpu %s", d.gpu_name.c_str());
    if (d.has_tpu) std::printf("; accelerator %s (%.0f MB on-chip)", d.tpu_name.c_str(), d.tpu_sram_mb);
    std::printf("\n  ram   %.0f MB, %.1f GB/s; power %.1f-%.1f W\n", d.ram_mb, d.dram_gbs, d.idle_w, d.load_w);
    std::printf("  runtimes %s\n", d.runtime_list().c_str());
    const auto it = cal.intervals.find(d.id);
    std::printf("  calibration %s, %s\n", est::calibration_label(cal, d.id).c_str(),
                it == cal.intervals.end() ? "no published measurements (priors only)"
                                          : (std::to_string(it->second.rows) + " published measurements").c_str());
    if (const auto local = cal.local.find(d.id); local != cal.local.end()) {
      for (const auto& [runtime, l] : local->second)
        std::printf("    local %-12s x%.3f from %d on-board measurement%s\n", runtime.c_str(), l.factor, l.measurements, l.measurements == 1 ? "" : "s");
    }
  }
  return 0;
}

struct EstimateArgs {
  std::string model;
  std::string device;
  std::string runtime;
  std::string precision;  // empty: read from the model file
  int threads = 0;
  double cpu_mhz = 0;
  bool json = false;
  std::string resources;
  std::string calibration_dir;
  std::vector<std::int64_t> input_shape;
};

int run_estimate(const EstimateArgs& a) {
  auto res = load_resources(a.resources, a.calibration_dir);
  if (!res) return fail_with(res.error(), a.json);
  const auto precision = a.precision.empty() ? std::optional<est::Precision>(est::Precision::kFp32) : est::precision_from_name(a.precision);
  if (!precision) {
    return fail_with(
        Error{ErrorCode::kInvalidArgument, "unknown precision '" + a.precision + "'", "use fp32, fp16, int8 or int4"},
        a.json);
  }
  // Check the device before loading the model: a typo should not wait for a big import.
  if (!res->catalog.find(a.device)) {
    return fail_with(
        Error{ErrorCode::kNotFound, "unknown device '" + a.device + "'", "valid devices: " + res->catalog.id_list()},
        a.json);
  }
  if (!std::isfinite(a.cpu_mhz) || a.cpu_mhz < 0) {
    return fail_with(Error{ErrorCode::kInvalidArgument, "--cpu-mhz must be a clock in MHz (1 to 10000)", "e.g. --cpu-mhz 1800"}, a.json);
  }
  edgeopt::pipeline::LoadModelOptions load_options;
  load_options.input_shape = a.input_shape;
  auto model = edgeopt::pipeline::load_model(a.model, load_options);
  if (!model) return fail_with(model.error(), a.json);
  est::EstimateOptions o;
  o.device = a.device;
  o.runtime = a.runtime;
  // The file says what it computes in (an int8 variant is estimated as int8); --precision overrides.
  const est::GraphPrecision from_file = est::precision_of_graph(model->graph);
  o.precision = a.precision.empty() ? from_file.precision : *precision;
  const std::string source = a.precision.empty() ? "the file" : "--precision";
  std::string source_detail = a.precision.empty() ? from_file.reason : std::string("the file says ") + est::precision_name(from_file.precision) + " (" + from_file.reason + ")";
  o.threads = a.threads;
  o.cpu_mhz = a.cpu_mhz;
  auto e = est::estimate_graph(model->graph, res->catalog, res->calibration, o);
  if (!e) return fail_with(e.error(), a.json);
  if (a.json) {
    json out = est::estimate_to_json(e.value());
    out["model"] = a.model;
    out["precision_source"] = a.precision.empty() ? "file" : "option";
    out["precision_from_file"] = est::precision_name(from_file.precision);
    out["precision_note"] = source_detail;
    out["is_estimate"] = true;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%s on %s with %s %s", a.model.c_str(), e->device.c_str(), e->runtime.c_str(),
              est::precision_name(e->precision));
  if (e->layers_on_cpu > 0 && e->layers_on_accelerator == 0) {
    std::printf(", %d thread%s at %.0f MHz", e->threads, e->threads == 1 ? "" : "s", e->cpu_mhz);
  }
  std::printf("\n  precision %s, from %s: %s\n", est::precision_name(o.precision), source.c_str(), source_detail.c_str());
  std::printf("  (estimates from the model's layers and the calibrated device model, docs/estimator.md; not measured)");
  std::printf("\n  latency   %.2f ms (likely %.2f-%.2f ms), %s-bound\n", e->latency_ms, e->latency_ms_low,
              e->latency_ms_high, e->bound.c_str());
  std::printf("  memory    %.1f MB peak of %.0f MB available (weights %.1f, activations %.1f, runtime %.1f): %s\n",
              e->peak_memory_bytes / 1048576.0, e->available_memory_bytes / 1048576.0, e->weight_bytes / 1048576.0,
              e->activation_bytes / 1048576.0, e->arena_bytes / 1048576.0, e->fits_in_memory ? "fits" : "DOES NOT FIT");
  std::printf("  energy    %.1f mJ per inference\n", e->energy_mj);
  std::printf("  calibration %s\n", e->local_measurements > 0
                                      ? ("local (" + std::to_string(e->local_measurements) + (e->local_measurements == 1 ? " measurement)" : " measurements)")).c_str()
                                      : "shipped");
  for (const auto& l : e->dominant_layers)
    std::printf("  layer     %-30s %-10s %8.3f ms (%s)\n", l.name.c_str(), l.op.c_str(), l.ms, l.unit.c_str());
  for (const auto& n : e->notes) std::printf("  note: %s\n", n.c_str());
  return 0;
}

struct CalibrateArgs {
  std::string measured;
  std::string device;
  std::string calibration_dir;
  std::string resources;
  bool json = false;
};

// `edgeopt calibrate --measured measurements.json`: a board's measurements into the local calibration.
int run_calibrate(const CalibrateArgs& a) {
  auto shipped = load_resources(a.resources, "", true);
  if (!shipped) return fail_with(shipped.error(), a.json);
  std::ifstream in(a.measured, std::ios::binary);
  if (!in) {
    return fail_with(Error{ErrorCode::kNotFound, "cannot open '" + a.measured + "'", "pass the measurements.json that selftest.py wrote in the unzipped package"}, a.json);
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto m = est::read_measurements(text.str(), a.measured, shipped->catalog, shipped->calibration, a.device);
  if (!m) return fail_with(m.error(), a.json);
  const std::string dir = est::local_calibration_dir(a.calibration_dir);
  est::Calibration before = shipped->calibration;
  if (auto s = est::load_local_calibration(before, dir); !s) return fail_with(s.error(), a.json);
  auto folded = est::fold_measurements(m.value(), dir, shipped->calibration);
  if (!folded) return fail_with(folded.error(), a.json);
  json points = json::array();
  for (const auto& p : m->points) {
    points.push_back({{"path", p.path}, {"runtime", p.runtime}, {"precision", p.precision}, {"threads", p.threads}, {"measured_ms", p.measured_ms},
                      {"estimated_ms_shipped", p.estimated_ms}, {"ratio", p.measured_ms / p.estimated_ms}});
  }
  json factors = json::object();
  for (const auto& [runtime, l] : folded->factors) {
    double old_factor = 1;
    int old_n = 0;
    if (auto d = before.local.find(m->device); d != before.local.end()) {
      if (auto r = d->second.find(runtime); r != d->second.end()) {
        old_factor = r->second.factor;
        old_n = r->second.measurements;
      }
    }
    factors[runtime] = {{"factor", l.factor}, {"measurements", l.measurements}, {"factor_before", old_factor}, {"measurements_before", old_n}};
  }
  if (a.json) {
    std::cout << json{{"device", m->device}, {"file", folded->path}, {"added", folded->added}, {"already_there", folded->already_there},
                      {"points", points}, {"factors", factors}, {"skipped", m->skipped}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("%s: %d measurement%s folded into the local calibration of %s (%s)%s\n", a.measured.c_str(), folded->added, folded->added == 1 ? "" : "s",
              m->device.c_str(), folded->path.c_str(), folded->already_there ? (", " + std::to_string(folded->already_there) + " already there").c_str() : "");
  for (const auto& p : points) {
    std::printf("  %-36s %-12s %-5s %2d threads: measured %.3f ms, estimated %.3f ms (shipped calibration): x%.3f\n", p["path"].get<std::string>().c_str(),
                p["runtime"].get<std::string>().c_str(), p["precision"].get<std::string>().c_str(), p["threads"].get<int>(), p["measured_ms"].get<double>(),
                p["estimated_ms_shipped"].get<double>(), p["ratio"].get<double>());
  }
  for (const auto& [runtime, f] : factors.items()) {
    std::printf("  %s with %s: local factor %.3f from %d measurement%s (was %.3f from %d)\n", m->device.c_str(), runtime.c_str(), f["factor"].get<double>(),
                f["measurements"].get<int>(), f["measurements"].get<int>() == 1 ? "" : "s", f["factor_before"].get<double>(), f["measurements_before"].get<int>());
  }
  for (const auto& s : m->skipped) std::printf("  skipped %s\n", s.c_str());
  est::Calibration after = shipped->calibration;
  if (auto s = est::load_local_calibration(after, dir); s) {
    std::printf("estimates for %s now say calibration: %s\n", m->device.c_str(), est::calibration_label(after, m->device).c_str());
  }
  return 0;
}

// Runs a command body; a stray exception becomes exit code 3 instead of escaping CLI11.
template <class Fn>
void guarded(int& exit_code, bool as_json, Fn&& fn) {
  try {
    exit_code = fn();
  } catch (const std::exception& e) {
    exit_code =
        fail_with(Error{ErrorCode::kInternal, std::string("unexpected: ") + e.what(), "please report this"}, as_json);
  }
}

}  // namespace

void add_estimate_commands(CLI::App& app, int& exit_code) {
  auto devices_args = std::make_shared<DevicesArgs>();
  auto* devices =
      app.add_subcommand("devices", "list the device catalogue: CPU, accelerators, memory, power, runtimes");
  devices->add_flag("--json", devices_args->json, "print JSON (the full catalogue with every source)");
  devices->add_option("--resources", devices_args->resources,
                      "the data/ folder with devices/ and estimator/ (also $EDGEOPT_RESOURCE_DIR)");
  devices->add_option("--calibration-dir", devices_args->calibration_dir,
                      "the local calibration folder (default $EDGEOPT_CALIBRATION_DIR, else ~/.local/share/edgeopt/calibration)");
  devices->callback([devices_args, &exit_code] {
    guarded(exit_code, devices_args->json, [&] { return run_devices(*devices_args); });
  });

  auto a = std::make_shared<EstimateArgs>();
  auto* estimate =
      app.add_subcommand("estimate", "estimate latency (with an interval), peak memory and energy on a device");
  estimate->add_option("model", a->model, "model file: .onnx, .h5, .keras, TorchScript .pt, .tflite or EdgeOpt .eom")->required();
  estimate->add_option("--device", a->device, "device id (see `edgeopt devices`)")->required();
  estimate->add_option("--runtime", a->runtime,
                       "tflite, onnxruntime, ncnn, ncnn-vulkan, tensorrt, edgetpu, ... (default: the device's first "
                       "that runs the precision)");
  estimate->add_option("--precision", a->precision, "fp32, fp16, int8 or int4 (default: what the file computes in: int8 for an int8 variant, else fp32)");
  estimate->add_option("--threads", a->threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  estimate
      ->add_option("--cpu-mhz", a->cpu_mhz, "CPU clock when the board differs from the catalogue (e.g. a Pi 4 at 1800)")
      ->check(CLI::Range(1.0, 10000.0));
  estimate->add_option("--input-shape", a->input_shape, "input shape when the file lacks it, e.g. 1,3,224,224")
      ->delimiter(',');
  estimate->add_flag("--json", a->json, "print JSON");
  estimate->add_option("--resources", a->resources,
                       "the data/ folder with devices/ and estimator/ (also $EDGEOPT_RESOURCE_DIR)");
  estimate->add_option("--calibration-dir", a->calibration_dir,
                       "the local calibration folder (default $EDGEOPT_CALIBRATION_DIR, else ~/.local/share/edgeopt/calibration)");
  estimate->callback([a, &exit_code] { guarded(exit_code, a->json, [&] { return run_estimate(*a); }); });

  auto c = std::make_shared<CalibrateArgs>();
  auto* calibrate = app.add_subcommand(
      "calibrate", "fold a board's measurements (the measurements.json a package's selftest.py writes) into your local calibration");
  calibrate->add_option("--measured", c->measured, "measurements.json from selftest.py")->required();
  calibrate->add_option("--device", c->device, "the board's device id when it differs from the package's (see `edgeopt devices`)");
  calibrate->add_option("--calibration-dir", c->calibration_dir,
                        "where the local calibration is kept (default $EDGEOPT_CALIBRATION_DIR, else ~/.local/share/edgeopt/calibration)");
  calibrate->add_option("--resources", c->resources, "the data/ folder with devices/ and estimator/ (also $EDGEOPT_RESOURCE_DIR)");
  calibrate->add_flag("--json", c->json, "print JSON");
  calibrate->callback([c, &exit_code] { guarded(exit_code, c->json, [&] { return run_calibrate(*c); }); });
}
