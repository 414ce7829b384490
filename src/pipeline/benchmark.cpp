#include "pipeline/benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
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
      for (std::size_t k = 0; k < executors.size(); ++k) {
        const auto warm_until = clock_type::now() + std::chrono::milliseconds(200);
        for (int i = 0; i < 20 || (clock_type::now() < warm_until && i < 20000); ++i) (void)executors[k]->run(samples[k].data(), 1);
      }
      for (int round = 0; round < 3; ++round) {
        for (std::size_t k = 0; k < executors.size(); ++k) {
          const auto r = latency_round(*executors[k], samples[k], runs);
          if (r.first < best[k].first) best[k] = r;
        }
      }
      for (std::size_t k = 0; k < graphs.size(); ++k) {
        if (threads == 1) {
          std::tie(out[k].p50_1t, out[k].p95_1t) = best[k];
        } else {
          std::tie(out[k].p50_all, out[k].p95_all) = best[k];
          out[k].all_threads = backend::thread_count();
        }
      }
    }
    return out;
  });
}

}  // namespace edgeopt::pipeline
