#include "pipeline/benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "backend/executor.h"

namespace edgeopt::pipeline {
namespace {

using clock_type = std::chrono::steady_clock;

// One round of batch-1 runs: at least `runs` runs and 200 ms. Returns p50 and p95 in ms.
std::pair<double, double> latency_round(backend::Executor& exec, const std::vector<float>& sample, int runs) {
  std::vector<double> ms;
  const auto start = clock_type::now();
  while (static_cast<int>(ms.size()) < runs || (clock_type::now() - start < std::chrono::milliseconds(200) && ms.size() < 20000)) {
    const auto t = clock_type::now();
    (void)exec.run(sample.data(), 1);
    ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t).count());
  }
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[static_cast<std::size_t>(std::min<double>(static_cast<double>(ms.size() - 1), std::floor(q * static_cast<double>(ms.size()))))]; };
  return {at(0.5), at(0.95)};
}

}  // namespace

double round_spread(const std::vector<double>& rounds_p50) {
  if (rounds_p50.size() < 2) return 1.0;
  const auto [lo, hi] = std::minmax_element(rounds_p50.begin(), rounds_p50.end());
  if (!(*lo > 0) || !std::isfinite(*hi)) return 1.0;
  return *hi / *lo;
}

bool spread_is_unstable(double spread) { return spread > kMaxStableSpread; }

std::string unstable_note(const HostLatency& latency) {
  if (!latency.unstable) return "";
  auto describe = [](const std::vector<double>& rounds, double spread, const std::string& label) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.2fx at ", spread);
    std::string text = buffer + label + " (";
    for (std::size_t k = 0; k < rounds.size(); ++k) {
      std::snprintf(buffer, sizeof buffer, "%s%.4g", k == 0 ? "" : ", ", rounds[k]);
      text += buffer;
    }
    return text + " ms)";
  };
  char limit[32];
  std::snprintf(limit, sizeof limit, "%.2fx", kMaxStableSpread);
  return "host latency is unstable: the rounds' p50s varied " + describe(latency.rounds_p50_1t, latency.spread_1t, "1 thread") + " and " +
         describe(latency.rounds_p50_all, latency.spread_all, std::to_string(latency.all_threads) + " threads") + ", more than the " + limit +
         " a quiet machine stays within: something else used the CPU. The best round is reported but may be slowed too; time it again on an idle machine";
}

Result<std::vector<HostLatency>> measure_host_latency(const std::vector<const ir::Graph*>& graphs,
                                                      const std::vector<std::vector<float>>& samples, int runs) {
  return capture([&]() -> std::vector<HostLatency> {
    if (samples.size() != graphs.size()) fail(ErrorCode::kInvalidArgument, "one input sample per model is needed");
    std::vector<std::unique_ptr<backend::Executor>> executors;
    for (std::size_t k = 0; k < graphs.size(); ++k) {
      auto exec = backend::Executor::create(*graphs[k]);
      if (!exec) throw Failure{exec.error()};
      if (static_cast<std::int64_t>(samples[k].size()) != exec.value()->input_elements()) {
        fail(ErrorCode::kInvalidArgument, "the input sample for model " + std::to_string(k + 1) + " has " + std::to_string(samples[k].size()) +
                                              " values; the model takes " + std::to_string(exec.value()->input_elements()));
      }
      // A model that cannot run fails here, with its reason, rather than being timed failing.
      auto first = exec.value()->run(samples[k].data(), 1);
      if (!first) throw Failure{first.error()};
      executors.push_back(std::move(exec).value());
    }
    std::vector<HostLatency> out(graphs.size());
    for (const int threads : {1, 0}) {
      backend::set_threads(threads);
      std::vector<std::pair<double, double>> best(graphs.size(), {std::numeric_limits<double>::max(), 0.0});
      std::vector<std::vector<double>> rounds(graphs.size());
      for (std::size_t k = 0; k < executors.size(); ++k) {
        const auto warm_until = clock_type::now() + std::chrono::milliseconds(200);
        for (int i = 0; i < 20 || (clock_type::now() < warm_until && i < 20000); ++i) (void)executors[k]->run(samples[k].data(), 1);
      }
      for (int round = 0; round < 3; ++round) {
        for (std::size_t k = 0; k < executors.size(); ++k) {
          const auto r = latency_round(*executors[k], samples[k], runs);
          rounds[k].push_back(r.first);
          if (r.first < best[k].first) best[k] = r;
        }
      }
      for (std::size_t k = 0; k < graphs.size(); ++k) {
        if (threads == 1) {
          std::tie(out[k].p50_1t, out[k].p95_1t) = best[k];
          out[k].rounds_p50_1t = rounds[k];
          out[k].spread_1t = round_spread(rounds[k]);
        } else {
          std::tie(out[k].p50_all, out[k].p95_all) = best[k];
          out[k].all_threads = backend::thread_count();
          out[k].rounds_p50_all = rounds[k];
          out[k].spread_all = round_spread(rounds[k]);
        }
        out[k].unstable = spread_is_unstable(out[k].spread_1t) || spread_is_unstable(out[k].spread_all);
      }
    }
    return out;
  });
}

}  // namespace edgeopt::pipeline
