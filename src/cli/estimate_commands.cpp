#include "cli/estimate_commands.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/cli_common.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
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

Result<Resources> load_resources(const std::string& dir_option) {
  const std::string dir = dir_option.empty() ? est::find_data_dir() : dir_option;
  auto catalog = est::load_device_catalog(dir + "/devices");
  if (!catalog) return catalog.error();
  auto calibration = est::load_calibration(dir + "/estimator");
  if (!calibration) return calibration.error();
  return Resources{std::move(catalog).value(), std::move(calibration).value()};
}

struct DevicesArgs {
  bool json = false;
  std::string resources;
};

int run_devices(const DevicesArgs& a) {
  auto res = load_resources(a.resources);
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
    std::printf("  calibration %s\n", it == cal.intervals.end()
                                          ? "none (priors only)"
                                          : (std::to_string(it->second.rows) + " published measurements").c_str());
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
  std::vector<std::int64_t> input_shape;
};

int run_estimate(const EstimateArgs& a) {
  auto res = load_resources(a.resources);
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
  for (const auto& l : e->dominant_layers)
    std::printf("  layer     %-30s %-10s %8.3f ms (%s)\n", l.name.c_str(), l.op.c_str(), l.ms, l.unit.c_str());
  for (const auto& n : e->notes) std::printf("  note: %s\n", n.c_str());
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
  devices->callback([devices_args, &exit_code] {
    guarded(exit_code, devices_args->json, [&] { return run_devices(*devices_args); });
  });

  auto a = std::make_shared<EstimateArgs>();
  auto* estimate =
      app.add_subcommand("estimate", "estimate latency (with an interval), peak memory and energy on a device");
  estimate->add_option("model", a->model, "model file: .onnx, .h5, .keras or TorchScript .pt")->required();
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
  estimate->callback([a, &exit_code] { guarded(exit_code, a->json, [&] { return run_estimate(*a); }); });
}
