#include "cli/optimize_command.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>

#include "cli/cli_common.h"
#include "pipeline/optimize.h"
#include "techniques/technique.h"

namespace edgeopt::cli {
namespace {

std::atomic<bool> g_cancel{false};

extern "C" void on_interrupt(int) { g_cancel.store(true); }

struct OptimizeArgs {
  std::string model;
  pipeline::OptimizeOptions options;
  std::string techniques;
  std::string devices;
  std::string goal = "balanced";
  double max_drop = -1;
  double max_drop_pct = -1;
  double max_size_mb = -1;
  double max_latency_ms = -1;
  bool json = false;
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text + ",") {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  return out;
}

int run(OptimizeArgs& a) {
  auto goal = recommend::goal_from_name(a.goal);
  if (!goal) return report_error(Error{ErrorCode::kInvalidArgument, "unknown --goal '" + a.goal + "'", "use balanced, size, speed or accuracy"}, a.json);
  a.options.goal = *goal;
  a.options.techniques = split(a.techniques);
  a.options.devices = split(a.devices);
  if (a.max_drop >= 0) a.options.limits.max_accuracy_drop_points = a.max_drop;
  if (a.max_drop_pct >= 0) a.options.limits.max_accuracy_drop_percent = a.max_drop_pct;
  if (a.max_size_mb >= 0) a.options.limits.max_size_bytes = static_cast<std::int64_t>(a.max_size_mb * 1e6);
  if (a.max_latency_ms >= 0) a.options.limits.max_latency_ms = a.max_latency_ms;
  a.options.cancel = &g_cancel;
  std::signal(SIGINT, on_interrupt);
  auto mutex = std::make_shared<std::mutex>();
  a.options.progress = [mutex](const std::string& technique, double fraction, const std::string& message) {
    std::lock_guard<std::mutex> lock(*mutex);
    std::fprintf(stderr, "[%-18s %3.0f%%] %s\n", technique.c_str(), 100 * fraction, message.c_str());
  };
  auto result = pipeline::optimize(a.model, a.options);
  std::signal(SIGINT, SIG_DFL);
  if (!result) return report_error(result.error(), a.json);
  const auto& r = result.value();
  if (a.json) {
    std::cout << r.dump(2) << "\n";
    return 0;
  }
  auto row = [](const nlohmann::json& v) {
    if (v.value("status", "") != "completed") {
      std::printf("  %-18s failed: %s\n", v.value("technique", "").c_str(), v.value("error", std::string()).c_str());
      return;
    }
    std::printf("  %-18s acc %6.2f %%  drop %5.2f pt  size %9lld B (gzip %9lld)  p50 %7.3f ms\n", v["technique"].get<std::string>().c_str(),
                100 * v["accuracy"].get<double>(), v.value("accuracy_drop_pp", 0.0), static_cast<long long>(v["size_bytes"].get<std::int64_t>()),
                static_cast<long long>(v["size_gzip_bytes"].get<std::int64_t>()), v["host_latency_ms"]["p50"].get<double>());
  };
  std::printf("%s on %s (%s)\n", a.model.c_str(), r["dataset"]["name"].get<std::string>().c_str(), r["dataset"]["split_note"].get<std::string>().c_str());
  row(r["baseline"]);
  for (const auto& v : r["variants"]) row(v);
  if (r["recommendation"].contains("technique")) {
    std::printf("recommended: %s\n%s\n", r["recommendation"]["technique"].get<std::string>().c_str(),
                r["recommendation"].value("reasoning", std::string()).c_str());
  }
  std::printf("results: %s/results.json\n", a.options.out_dir.c_str());
  return g_cancel.load() ? 130 : 0;
}

}  // namespace

void add_optimize_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<OptimizeArgs>();
  std::string ids;
  for (const auto* t : techniques::registry()) ids += (ids.empty() ? "" : ",") + std::string(t->id());
  auto* cmd = app.add_subcommand("optimize", "run optimization techniques on a model, measure every variant, recommend one");
  cmd->add_option("model", args->model, "model file")->required();
  cmd->add_option("--dataset", args->options.dataset, "mnist, fashion-mnist, cifar10, or a folder/ZIP of class folders")->required();
  cmd->add_option("--data-dir", args->options.data_dir, "where the dataset files are");
  cmd->add_option("--normalize", args->options.normalize, "input normalisation (see evaluate)");
  cmd->add_option("--techniques", args->techniques, "comma-separated; available: " + ids);
  cmd->add_option("--out", args->options.out_dir, "output folder for results.json and one artifact per variant");
  cmd->add_option("--devices", args->devices, "devices to estimate on (default: all)");
  cmd->add_option("--device", args->options.device, "target device for --max-latency-ms and the pick");
  cmd->add_option("--goal", args->goal, "balanced, size, speed or accuracy");
  cmd->add_option("--max-accuracy-drop", args->max_drop, "in accuracy points");
  cmd->add_option("--max-accuracy-drop-pct", args->max_drop_pct, "relative, in % of the baseline accuracy");
  cmd->add_option("--max-size-mb", args->max_size_mb, "deployable file size limit");
  cmd->add_option("--max-latency-ms", args->max_latency_ms, "estimated latency limit on --device");
  cmd->add_option("--limit", args->options.eval_limit, "evaluate on the first N test images only");
  cmd->add_flag("--no-download", [args](std::int64_t) { args->options.allow_download = false; }, "never download datasets");
  cmd->add_flag("--json", args->json, "print results.json");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

}  // namespace edgeopt::cli
