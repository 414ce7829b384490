// Job-queue throughput of the store: N concurrent claimers, each its own Store (own connections,
// like a separate `edgeopt worker` process), claim a job and finish it until the queue is empty.
// Prints jobs/s and the claim latency per N. Not a test: numbers depend on the machine.
//   edgeopt_bench_store [--database postgresql://...] [--jobs 2000] [--claimers 1,2,4,8,16]
// Without --database it measures SQLite in a temporary folder. `make bench-store` runs it against
// a throw-away PostgreSQL cluster and SQLite.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "store/internal.h"
#include "store/store.h"

namespace {

namespace fs = std::filesystem;
using edgeopt::store::Job;
using edgeopt::store::Store;

template <class T>
T must(edgeopt::Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.error().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

struct Round {
  int claimers = 0;
  int jobs = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

Round run_round(const std::string& location, int claimers, int jobs) {
  auto setup = must(edgeopt::store::open_store(location));
  constexpr int kExperiments = 20;
  std::vector<std::string> ids;
  for (int e = 0; e < kExperiments; ++e) {
    edgeopt::store::Experiment x;
    x.owner = "bench";
    x.name = "queue bench";
    ids.push_back(must(setup->create_experiment(x)).id);
    std::vector<Job> batch;
    for (int i = e; i < jobs; i += kExperiments) {
      Job j;
      j.experiment_id = ids.back();
      j.kind = "technique";
      j.technique = "t" + std::to_string(i);
      batch.push_back(j);
    }
    must(setup->enqueue_jobs(batch));
  }
  std::vector<std::unique_ptr<Store>> stores;
  for (int c = 0; c < claimers; ++c) stores.push_back(must(edgeopt::store::open_store(location)));
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(claimers));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < claimers; ++c) {
    threads.emplace_back([&, c] {
      Store& s = *stores[static_cast<std::size_t>(c)];
      const std::string worker = "bench-" + std::to_string(c);
      for (;;) {
        const auto t0 = std::chrono::steady_clock::now();
        auto job = must(s.claim_job(worker, 60000));
        latencies[static_cast<std::size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (!job) return;
        if (!must(s.finish_job(job->id, worker, "completed", nullptr))) {
          std::fprintf(stderr, "error: job %lld was taken from its holder\n", static_cast<long long>(job->id));
          std::exit(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Round r;
  r.claimers = claimers;
  r.jobs = jobs;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  r.p50_ms = all[all.size() / 2];
  r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  for (const auto& id : ids) must(setup->delete_experiment(id));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string database;
  int jobs = 2000;
  std::vector<int> claimers = {1, 2, 4, 8, 16};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--database") {
      database = value;
    } else if (flag == "--jobs") {
      jobs = std::stoi(value);
    } else if (flag == "--claimers") {
      claimers.clear();
      std::stringstream list(value);
      for (std::string n; std::getline(list, n, ',');) claimers.push_back(std::stoi(n));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::string location;
  std::string schema;
  fs::path folder;
  if (!database.empty()) {
    schema = "edgeopt_bench_" + edgeopt::store::detail::random_hex(6);
    pqxx::connection conn(database);
    pqxx::nontransaction(conn).exec0("CREATE SCHEMA " + schema);
    location = database + (database.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  } else {
    folder = fs::temp_directory_path() / ("edgeopt-bench-store-" + edgeopt::store::detail::random_hex(6));
    location = folder.string();
  }
  const std::string backend = database.empty() ? "sqlite" : "postgresql";
  std::printf("store job queue: claim + finish, %d jobs over 20 experiments, %u hardware threads\n", jobs,
              std::thread::hardware_concurrency());
  std::printf("| backend    | claimers | jobs/s  | claim p50 ms | claim p99 ms |\n");
  std::printf("|------------|----------|---------|--------------|--------------|\n");
  for (int n : claimers) {
    const Round r = run_round(location, n, jobs);
    std::printf("| %-10s | %8d | %7.0f | %12.2f | %12.2f |\n", backend.c_str(), r.claimers, r.jobs / r.seconds, r.p50_ms,
                r.p99_ms);
    std::fflush(stdout);
  }
  if (!schema.empty()) {
    pqxx::connection conn(database);
    pqxx::nontransaction(conn).exec0("DROP SCHEMA " + schema + " CASCADE");
  }
  if (!folder.empty()) fs::remove_all(folder);
  return 0;
}
