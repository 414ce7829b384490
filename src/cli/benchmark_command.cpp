#include "cli/benchmark_command.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <random>

#include "cli/cli_common.h"
#include "ir/graph.h"
#include "pipeline/benchmark.h"
#include "pipeline/model.h"

namespace edgeopt::cli {
namespace {

using nlohmann::json;

struct BenchmarkArgs {
  std::vector<std::string> models;
  int runs = 50;
  bool json = false;
};

int run(const BenchmarkArgs& args) {
  std::vector<ImportedModel> models;
  for (const std::string& path : args.models) {
    auto model = pipeline::load_model(path);
    if (!model) {
      Error e = model.error();
      e.message = path + ": " + e.message;
      return report_error(e, args.json);
    }
    models.push_back(std::move(model).value());
  }
  // Latency does not depend on the pixel values of these models: one fixed pseudo-random image in
  // [0, 1) per model, the same on every run.
  std::vector<const ir::Graph*> graphs;
  std::vector<std::vector<float>> samples;
  std::mt19937 rng(20261124);
  std::uniform_real_distribution<float> unit(0.0F, 1.0F);
  for (const ImportedModel& m : models) {
    graphs.push_back(&m.graph);
    std::vector<float> sample(static_cast<std::size_t>(ir::sample_elements(m.graph.value(m.graph.inputs.at(0)).shape)));
    for (float& v : sample) v = unit(rng);
    samples.push_back(std::move(sample));
  }
  if (!args.json) std::fprintf(stderr, "timing %zu model(s) at batch 1: 1 thread, then all threads, 3 interleaved rounds...\n", models.size());
  auto timed = pipeline::measure_host_latency(graphs, samples, args.runs);
  if (!timed) return report_error(timed.error(), args.json);
  json out = json::array();
  for (std::size_t k = 0; k < models.size(); ++k) {
    const pipeline::HostLatency& t = timed.value()[k];
    json entry{{"model", args.models[k]},
               {"host_latency_ms_1thread", {{"p50", t.p50_1t}, {"p95", t.p95_1t}, {"rounds_p50", t.rounds_p50_1t}, {"spread", t.spread_1t}}},
               {"host_latency_ms", {{"p50", t.p50_all}, {"p95", t.p95_all}, {"threads", t.all_threads}, {"rounds_p50", t.rounds_p50_all}, {"spread", t.spread_all}}},
               {"unstable", t.unstable}};
    if (t.unstable) entry["note"] = pipeline::unstable_note(t);
    out.push_back(entry);
  }
  if (args.json) {
    std::cout << json{{"batch", 1}, {"max_stable_spread", pipeline::kMaxStableSpread}, {"models", out}}.dump(2) << "\n";
    return 0;
  }
  const double base_1t = timed.value()[0].p50_1t;
  const double base_all = timed.value()[0].p50_all;
  std::printf("%-48s %22s %22s\n", "model (batch 1, ms)", "1 thread p50 / p95", "all threads p50 / p95");
  for (std::size_t k = 0; k < models.size(); ++k) {
    const pipeline::HostLatency& t = timed.value()[k];
    std::printf("%-48s %10.4f / %-9.4f %10.4f / %-9.4f", args.models[k].c_str(), t.p50_1t, t.p95_1t, t.p50_all, t.p95_all);
    if (k > 0 && base_1t > 0 && base_all > 0) std::printf("  %.2fx / %.2fx of the first", t.p50_1t / base_1t, t.p50_all / base_all);
    if (t.unstable) std::printf("  UNSTABLE");
    std::printf("\n");
  }
  bool any_unstable = false;
  for (std::size_t k = 0; k < models.size(); ++k) {
    const pipeline::HostLatency& t = timed.value()[k];
    any_unstable = any_unstable || t.unstable;
    if (t.unstable) std::printf("warning: %s: %s\n", args.models[k].c_str(), pipeline::unstable_note(t).c_str());
  }
  std::printf("each figure is the best of 3 rounds; rounds %s within %.2fx of each other%s\n", any_unstable ? "did not all stay" : "stayed",
              pipeline::kMaxStableSpread, any_unstable ? ", so the ratios above are not reliable" : " (stable)");
  return 0;
}

}  // namespace

void add_benchmark_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<BenchmarkArgs>();
  auto* cmd = app.add_subcommand("benchmark", "measure host latency at batch 1 (1 thread and all threads) of one or more models, side by side");
  cmd->add_option("models", args->models, "model files (.onnx, .h5, .keras, .pt, .tflite, .eom); ratios are given against the first")->required();
  cmd->add_option("--runs", args->runs, "minimum runs per round (each round also lasts at least 200 ms)")->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

}  // namespace edgeopt::cli
