#include "cli/optimize_command.h"

#include <cmath>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// First Ctrl-C: techniques stop at their next batch and the run reports what finished. A second
// one kills the process (the default action is restored); files are written atomically either way.
extern "C" void on_interrupt(int) {
  g_cancel.store(true);
  std::signal(SIGINT, SIG_DFL);
  static const char message[] = "\ncancelling: techniques stop at their next step (Ctrl-C again to quit at once)\n";
  (void)!write(STDERR_FILENO, message, sizeof message - 1);
}

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
  std::vector<std::string> params;  // --param technique.name=value
  bool json = false;
  // Whether each limit was given: any value given is passed on and checked (a negative or NaN
  // limit is refused, never read as "no limit").
  CLI::Option* max_drop_given = nullptr;
  CLI::Option* max_drop_pct_given = nullptr;
  CLI::Option* max_size_given = nullptr;
  CLI::Option* max_latency_given = nullptr;
};

// Live progress, one line per technique. On a terminal the block of lines is redrawn in place
// (at most 10 times a second); otherwise a line is printed when a technique starts, ends, changes
// step or moves on by 10 %.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool terminal) : terminal_(terminal) {}

  void update(const std::string& technique, double fraction, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std::find_if(rows_.begin(), rows_.end(), [&](const Row& r) { return r.technique == technique; });
    if (it == rows_.end()) {
      rows_.push_back({technique, fraction, message, -1});
      it = rows_.end() - 1;
    }
    it->fraction = fraction;
    it->message = message;
    if (terminal_) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_draw_ < std::chrono::milliseconds(100) && fraction < 1.0) return;
      last_draw_ = now;
      redraw();
      return;
    }
    const int decile = static_cast<int>(10 * fraction);
    const std::string step = message.substr(0, message.find_first_of(",(0123456789"));
    if (decile != it->printed_decile || step != it->printed_step) {
      it->printed_decile = decile;
      it->printed_step = step;
      std::fprintf(stderr, "[%-18s %3.0f%%] %s\n", technique.c_str(), 100 * fraction, message.c_str());
    }
  }

  void finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (terminal_) redraw();
  }

 private:
  struct Row {
    std::string technique;
    double fraction = 0;
    std::string message;
    int printed_decile = -1;
    std::string printed_step;
  };

  void redraw() {
    if (drawn_ > 0) std::fprintf(stderr, "\x1b[%zuA", drawn_);
    for (const Row& r : rows_) {
      const int filled = static_cast<int>(20 * std::clamp(r.fraction, 0.0, 1.0));
      std::fprintf(stderr, "\x1b[2K%-18s [%s%s] %3.0f%%  %.60s\n", r.technique.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(20 - filled), '.').c_str(), 100 * r.fraction, r.message.c_str());
    }
    drawn_ = rows_.size();
    std::fflush(stderr);
  }

  bool terminal_;
  std::mutex mutex_;
  std::vector<Row> rows_;
  std::size_t drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
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

std::string human_bytes(std::int64_t bytes) {
  char out[32];
  if (bytes >= 1000 * 1000) std::snprintf(out, sizeof out, "%.2f MB", static_cast<double>(bytes) / 1e6);
  else std::snprintf(out, sizeof out, "%.1f kB", static_cast<double>(bytes) / 1e3);
  return out;
}

// The summary a person reads: test images used, then one row per variant with measured figures
// (accuracy, size, host latency) and the target device's latency, which is an estimate and says so.
void print_summary(const OptimizeArgs& a, const nlohmann::json& r) {
  using nlohmann::json;
  std::string device = a.options.device;
  if (device.empty() && r.contains("devices") && !r["devices"].empty()) device = r["devices"][0].get<std::string>();
  const json& ds = r["dataset"];
  const std::int64_t used = r["baseline"].value("samples", std::int64_t{0});
  const std::int64_t split = ds.value("test_samples", std::int64_t{0});
  std::printf("%s on %s (%s)\n", a.model.c_str(), ds["name"].get<std::string>().c_str(), ds["split_note"].get<std::string>().c_str());
  std::printf("accuracy on %lld test images%s\n", static_cast<long long>(used),
              used < split ? (" (the first " + std::to_string(used) + " of " + std::to_string(split) + ", --limit)").c_str() : " (the whole test split)");
  std::printf("%-18s %9s %9s %10s %10s  %-24s %s\n", "", "accuracy", "drop", "size", "gzip", "host, MEASURED", ("on " + device + ", ESTIMATE").c_str());
  std::printf("%-18s %9s %9s %10s %10s  %-24s %s\n", "variant", "", "", "", "", "p50 ms 1 thread / all", "latency ms (likely range)");
  bool unstable = false;
  auto row = [&](const json& v) {
    const std::string technique = v.value("technique", "");
    if (v.value("status", "") != "completed") {
      std::printf("%-18s failed: %s\n", technique.c_str(), v.value("error", std::string()).c_str());
      return;
    }
    const bool shaky = v.value("host_latency_unstable", false);
    unstable = unstable || shaky;
    char host[64];
    std::snprintf(host, sizeof host, "%.3f / %.3f (%d)%s", v["host_latency_ms_1thread"]["p50"].get<double>(), v["host_latency_ms"]["p50"].get<double>(),
                  v["host_latency_ms"]["threads"].get<int>(), shaky ? " !" : "");
    std::string estimate = "no estimate";
    for (const json& e : v.value("device_estimates", json::array())) {
      if (e.value("device", "") != device) continue;
      char text[96];
      if (e.contains("error")) {
        estimate = "not estimated: " + e["error"].get<std::string>();
      } else {
        std::snprintf(text, sizeof text, "~%.2f (%.2f-%.2f) %s %s", e.value("latency_ms", 0.0), e.value("latency_ms_low", 0.0), e.value("latency_ms_high", 0.0),
                      e.value("runtime", std::string()).c_str(), e.value("precision", std::string()).c_str());
        estimate = text;
        if (!e.value("fits_in_memory", true)) estimate += ", DOES NOT FIT in memory";
      }
    }
    std::printf("%-18s %7.2f %% %6.2f pt %10s %10s  %-24s %s\n", technique.c_str(), 100 * v["accuracy"].get<double>(), v.value("accuracy_drop_pp", 0.0),
                human_bytes(v["size_bytes"].get<std::int64_t>()).c_str(), human_bytes(v["size_gzip_bytes"].get<std::int64_t>()).c_str(), host, estimate.c_str());
  };
  row(r["baseline"]);
  for (const auto& v : r["variants"]) row(v);
  std::printf("host: this machine, batch 1, best of 3 rounds (threads in brackets); device latency: estimated from the model's layers "
              "(docs/estimator.md), not measured\n");
  if (unstable) std::printf("warning: host timings marked ! are unstable: %s\n", r.value("host_latency_note", std::string()).c_str());
  if (r["recommendation"].contains("technique")) {
    std::printf("recommended: %s\n%s\n", r["recommendation"]["technique"].get<std::string>().c_str(),
                r["recommendation"].value("reasoning", std::string()).c_str());
  }
}

int run(OptimizeArgs& a) {
  auto goal = recommend::goal_from_name(a.goal);
  if (!goal) return report_error(Error{ErrorCode::kInvalidArgument, "unknown --goal '" + a.goal + "'", "use balanced, size, speed or accuracy"}, a.json);
  a.options.goal = *goal;
  a.options.techniques = split(a.techniques);
  a.options.devices = split(a.devices);
  if (a.max_drop_given->count() > 0) a.options.limits.max_accuracy_drop_points = a.max_drop;
  if (a.max_drop_pct_given->count() > 0) a.options.limits.max_accuracy_drop_percent = a.max_drop_pct;
  if (a.max_size_given->count() > 0) {
    if (!std::isfinite(a.max_size_mb) || a.max_size_mb < 0 || a.max_size_mb > 1e9) {
      return report_error(Error{ErrorCode::kInvalidArgument, "--max-size-mb must be a number from 0 to 1e9, not " + std::to_string(a.max_size_mb),
                                "leave it out for no size limit"},
                          a.json);
    }
    a.options.limits.max_size_bytes = static_cast<std::int64_t>(a.max_size_mb * 1e6);
  }
  if (a.max_latency_given->count() > 0) a.options.limits.max_latency_ms = a.max_latency_ms;
  for (const std::string& p : a.params) {
    const auto dot = p.find('.');
    const auto eq = p.find('=');
    if (dot == std::string::npos || eq == std::string::npos || dot == 0 || eq < dot + 2 || eq + 1 == p.size()) {
      return report_error(Error{ErrorCode::kInvalidArgument, "--param '" + p + "' is not technique.name=value",
                                "e.g. --param ptq_int4.group_size=64; `edgeopt techniques` lists every parameter"},
                          a.json);
    }
    a.options.params[p.substr(0, dot)][p.substr(dot + 1, eq - dot - 1)] = p.substr(eq + 1);
  }
  a.options.cancel = &g_cancel;
  std::signal(SIGINT, on_interrupt);
  auto display = std::make_shared<ProgressDisplay>(isatty(STDERR_FILENO) != 0);
  a.options.progress = [display](const std::string& technique, double fraction, const std::string& message) {
    display->update(technique, fraction, message);
  };
  auto result = pipeline::optimize(a.model, a.options);
  display->finish();
  std::signal(SIGINT, SIG_DFL);
  if (!result) return report_error(result.error(), a.json);
  const auto& r = result.value();
  if (a.json) {
    std::cout << r.dump(2) << "\n";
    return g_cancel.load() ? 130 : 0;
  }
  print_summary(a, r);
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
  args->max_drop_given = cmd->add_option("--max-accuracy-drop", args->max_drop, "in accuracy points");
  args->max_drop_pct_given = cmd->add_option("--max-accuracy-drop-pct", args->max_drop_pct, "relative, in % of the baseline accuracy");
  args->max_size_given = cmd->add_option("--max-size-mb", args->max_size_mb, "deployable file size limit");
  args->max_latency_given = cmd->add_option("--max-latency-ms", args->max_latency_ms, "estimated latency limit on --device");
  cmd->add_option("--limit", args->options.eval_limit, "evaluate on the first N test images only");
  cmd->add_option("--max-train-images", args->options.max_train_images,
                  "calibrate and fine-tune on at most N training images (faster, usually less accurate; default: each technique's own)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  cmd->add_option("--jobs", args->options.jobs, "techniques run at once (default: one per core, as memory allows)")->check(CLI::Range(0, 64));
  cmd->add_flag("--no-download", [args](std::int64_t) { args->options.allow_download = false; }, "never download datasets");
  cmd->add_option("--param", args->params, "technique.name=value, repeatable (edgeopt techniques lists them)");
  cmd->add_flag("--json", args->json, "print results.json");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

void add_techniques_command(CLI::App& app, int& exit_code) {
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("techniques", "list the optimization techniques with their parameters and defaults");
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([as_json, &exit_code] {
    nlohmann::json out = nlohmann::json::array();
    for (const techniques::Technique* t : techniques::registry()) {
      nlohmann::json params = nlohmann::json::array();
      for (const techniques::Param& p : t->params()) params.push_back({{"name", p.name}, {"default", p.value}, {"help", p.help}});
      out.push_back({{"id", t->id()}, {"description", t->description()}, {"requires_data", t->requires_data()}, {"parameters", params}});
    }
    if (*as_json) {
      std::cout << out.dump(2) << "\n";
    } else {
      for (const auto& t : out) {
        std::printf("%s%s\n  %s\n", t["id"].get<std::string>().c_str(), t["requires_data"].get<bool>() ? " (needs training images)" : "",
                    t["description"].get<std::string>().c_str());
        for (const auto& p : t["parameters"]) {
          std::printf("    %-22s %-14s %s\n", p["name"].get<std::string>().c_str(), p["default"].get<std::string>().c_str(), p["help"].get<std::string>().c_str());
        }
      }
      std::printf("set one with: edgeopt optimize MODEL --param TECHNIQUE.NAME=VALUE\n");
    }
    exit_code = 0;
  });
}

}  // namespace edgeopt::cli
