// Host latency at batch 1, measured the same way for every model: `edgeopt optimize` times the
// baseline and its variants with it, and `edgeopt benchmark` times any model files.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::pipeline {

struct HostLatency {
  double p50_1t = 0, p95_1t = 0;    // ms, one thread (the best round)
  double p50_all = 0, p95_all = 0;  // ms, all threads (the best round)
  int all_threads = 0;
  std::vector<double> rounds_p50_1t, rounds_p50_all;  // every round's p50, in the order run
  double spread_1t = 1, spread_all = 1;               // round_spread() of each
  bool unstable = false;                              // either spread above kMaxStableSpread
};

// Host timings are flagged as unstable when the slowest round's p50 is more than this many times
// the fastest round's, at one thread or at all threads. The three rounds time the same model on
// the same input, so on a quiet machine their p50s agree within a few percent; a spread this
// large means something else took the CPU during a round (another process, a busy VM host), and
// the best round, though reported, may itself be slowed.
inline constexpr double kMaxStableSpread = 1.3;

// max / min of the rounds' p50s (1 for fewer than two rounds or a non-positive figure).
double round_spread(const std::vector<double>& rounds_p50);
bool spread_is_unstable(double spread);
// For an unstable measurement: how far the rounds varied and what to do; empty when stable.
std::string unstable_note(const HostLatency& latency);

// For one thread, then all threads: a warm-up of every model (20 runs and 200 ms: allocator,
// caches, kernel selection, thread pools), then three rounds that visit every model in turn, each
// round at least `runs` runs and 200 ms per model; each model reports its round with the lowest
// p50. Interleaving puts all models under the same conditions, and the best round keeps a slowdown
// from outside the model (another process, the VM's memory reclaim, a descheduled vCPU) out of
// the comparison; the rounds' spread says whether that worked (HostLatency::unstable). `samples[k]` is one input for `graphs[k]`. Leaves LibTorch on all threads.
Result<std::vector<HostLatency>> measure_host_latency(const std::vector<const ir::Graph*>& graphs,
                                                      const std::vector<std::vector<float>>& samples, int runs = 50);

}  // namespace edgeopt::pipeline
