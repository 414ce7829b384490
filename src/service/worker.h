// A worker claims jobs from the store and runs them with the pipeline's steps
// (pipeline::OptimizeRun): the baseline, one technique, or the final measurement. Its files live
// in a scratch folder; what it makes goes back to the store (artifacts as blobs, records as job
// results, progress as events), so workers on other machines continue where it stopped. While a
// job runs, a heartbeat extends its lease; a lost lease (stopped experiment, or the job handed to
// another worker) cancels the job at its next step.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace edgeopt::service {

struct WorkerOptions {
  std::string name;                  // unique per process, e.g. host:pid; empty: made up
  int concurrency = 1;               // jobs at once (threads)
  std::string scratch_dir;           // per-job folders; must exist
  std::string data_dir;              // where preset datasets are found (--data-dir)
  bool allow_download = true;
  std::string resources_dir;         // data/ (devices, estimator); empty: found automatically
  std::int64_t lease_ms = 20000;     // a job whose worker is silent this long is claimed again
  std::int64_t heartbeat_ms = 1000;  // also how soon a stop reaches a running job
  std::int64_t idle_poll_ms = 300;   // how often an idle worker asks for work
};

class Worker {
 public:
  Worker(store::Store& store, WorkerOptions options);
  ~Worker();  // stops and joins
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();  // `concurrency` threads that claim and run jobs until stop()
  void stop();   // running jobs are cancelled at their next step and handed back
  // Claims and runs one job on the calling thread; false when there was none.
  bool run_one();
  const std::string& name() const { return options_.name; }

 private:
  void loop();
  store::Store& store_;
  WorkerOptions options_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace edgeopt::service
