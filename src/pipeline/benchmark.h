// Host latency at batch 1, measured the same way for every model: `edgeopt optimize` times the
// baseline and its variants with it, and `edgeopt benchmark` times any model files.
#pragma once

#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::pipeline {

struct HostLatency {
  double p50_1t = 0, p95_1t = 0;    // ms, one thread
  double p50_all = 0, p95_all = 0;  // ms, all threads
  int all_threads = 0;
};

// For one thread, then all threads: a warm-up of every model (20 runs and 200 ms: allocator,
// caches, kernel selection, thread pools), then three rounds that visit every model in turn, each
// round at least `runs` runs and 200 ms per model; each model reports its round with the lowest
// p50. Interleaving puts all models under the same conditions, and the best round keeps a slowdown
// from outside the model (another process, the VM's memory reclaim, a descheduled vCPU) out of
// the comparison. `samples[k]` is one input for `graphs[k]`. Leaves LibTorch on all threads.
Result<std::vector<HostLatency>> measure_host_latency(const std::vector<const ir::Graph*>& graphs,
                                                      const std::vector<std::vector<float>>& samples, int runs = 50);

}  // namespace edgeopt::pipeline
