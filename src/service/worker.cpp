#include "service/worker.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include "pipeline/optimize.h"
#include "recommend/recommend.h"
#include "service/log.h"
#include "service/service.h"
#include "techniques/technique.h"

namespace edgeopt::service {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string default_name() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
  return std::string(host) + ":" + std::to_string(getpid());
}

// Progress from the pipeline becomes events, at most two a second per technique (plus every
// start, end and change of step), each with an ETA extrapolated from the time so far.
class ProgressEvents {
 public:
  ProgressEvents(store::Store& store, std::string experiment_id) : store_(store), id_(std::move(experiment_id)) {}

  void update(const std::string& technique, double fraction, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = Clock::now();
    auto [it, fresh] = rows_.try_emplace(technique, Row{now, now - std::chrono::hours(1), -1, ""});
    Row& row = it->second;
    const std::string step = message.substr(0, message.find_first_of(",(0123456789"));
    const bool due = now - row.last_sent >= std::chrono::milliseconds(500);
    if (!fresh && !due && step == row.step && fraction < 1.0) return;
    row.last_sent = now;
    row.step = step;
    row.fraction = fraction;
    json data{{"technique", technique}, {"fraction", fraction}, {"message", message}};
    const double elapsed = std::chrono::duration<double>(now - row.started).count();
    if (fraction > 0.02 && fraction < 1.0 && elapsed > 1.0) data["eta_seconds_estimate"] = elapsed * (1 - fraction) / fraction;
    (void)store_.append_event(id_, "technique_progress", data);
  }

 private:
  struct Row {
    Clock::time_point started, last_sent;
    double fraction;
    std::string step;
  };
  store::Store& store_;
  std::string id_;
  std::mutex mutex_;
  std::map<std::string, Row> rows_;
};

}  // namespace

Worker::Worker(store::Store& store, WorkerOptions options) : store_(store), options_(std::move(options)) {
  if (options_.name.empty()) options_.name = default_name();
}

Worker::~Worker() { stop(); }

void Worker::start() {
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) threads_.emplace_back([this] { loop(); });
}

void Worker::stop() {
  stopping_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Worker::loop() {
  while (!stopping_) {
    if (!run_one()) {
      for (std::int64_t waited = 0; waited < options_.idle_poll_ms && !stopping_; waited += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
}

bool Worker::run_one() {
  auto claimed = store_.claim_job(options_.name, options_.lease_ms);
  if (!claimed) {
    log_line("worker " + options_.name + ": cannot claim a job: " + claimed.error().to_string());
    return false;
  }
  if (!claimed.value()) return false;
  const store::Job job = *claimed.value();
  const std::string id = job.experiment_id;
  const std::string label = job.kind == "technique" ? job.technique : job.kind;
  log_line("worker " + options_.name + ": " + id + " " + label + " (attempt " + std::to_string(job.attempts) + ")");

  // The heartbeat: extends the lease and turns a lost one (a stop, or the job handed to another
  // worker) into a cancel the pipeline sees at its next step.
  std::atomic<bool> cancel{false};
  std::mutex beat_mutex;
  std::condition_variable beat_cv;
  bool done = false;
  std::thread beat([&] {
    std::unique_lock<std::mutex> lock(beat_mutex);
    while (!beat_cv.wait_for(lock, std::chrono::milliseconds(options_.heartbeat_ms), [&] { return done; })) {
      auto held = store_.heartbeat(job.id, options_.name, options_.lease_ms);
      if ((held.ok() && !held.value()) || stopping_) cancel = true;
    }
  });
  const fs::path dir = fs::path(options_.scratch_dir) / ("job-" + std::to_string(job.id) + "-" + std::to_string(getpid()));
  auto fail_experiment = [&](const std::string& reason) {
    auto set = store_.set_experiment_status(id, {"queued", "running"}, "failed", reason);
    if (set.ok() && set.value()) (void)store_.append_event(id, "status", {{"status", "failed"}, {"message", reason}});
    (void)store_.cancel_jobs(id);
  };

  std::string status = "completed";
  json result = nullptr;
  std::string error;
  json completed_summary = nullptr;  // set by a final job that stored the results
  [&] {
    auto found = store_.get_experiment(id);
    if (!found || !found.value()) {
      status = "cancelled";
      error = "the experiment no longer exists";
      return;
    }
    const store::Experiment e = *found.value();
    if (e.status == "cancelled") {
      status = "cancelled";
      error = "the experiment was stopped";
      return;
    }
    if (job.kind == "baseline") {
      auto set = store_.set_experiment_status(id, {"queued"}, "running");
      if (set.ok() && set.value()) (void)store_.append_event(id, "status", {{"status", "running"}, {"message", "running on " + options_.name}});
    }
    const json& c = e.config;
    std::error_code ec;
    fs::create_directories(dir / "out", ec);
    const std::string model_key = e.model.value("blob", "");
    const fs::path model_path = dir / fs::path(model_key).filename();
    if (Status s = store_.get_blob_to_file(model_key, model_path.string()); !s) {
      status = "failed";
      error = "the uploaded model cannot be read: " + s.error().to_string();
      return;
    }
    pipeline::OptimizeOptions o;
    o.dataset = c.value("dataset_name", "mnist");
    if (c.value("dataset_type", "preset") == "custom") {
      const fs::path zip = dir / "dataset.zip";
      if (Status s = store_.get_blob_to_file(id + "/dataset.zip", zip.string()); !s) {
        status = "failed";
        error = "the uploaded dataset cannot be read: " + s.error().to_string();
        return;
      }
      o.dataset = zip.string();
    }
    o.data_dir = options_.data_dir;
    o.allow_download = options_.allow_download;
    o.resources_dir = options_.resources_dir;
    o.normalize = c.value("normalize", "auto");
    if (c.contains("techniques")) o.techniques = c["techniques"].get<std::vector<std::string>>();
    if (c.contains("parameters")) o.params = c["parameters"].get<std::map<std::string, std::map<std::string, std::string>>>();
    if (c.contains("devices")) o.devices = c["devices"].get<std::vector<std::string>>();
    const recommend::Request wanted = recommend_request(c);
    o.device = wanted.device;
    o.goal = wanted.goal;
    o.limits = wanted.limits;
    o.eval_limit = c.value("eval_limit", std::int64_t{0});
    o.max_train_images = c.value("max_train_images", std::int64_t{0});
    o.out_dir = (dir / "out").string();
    o.cancel = &cancel;
    auto events = std::make_shared<ProgressEvents>(store_, id);
    o.progress = [events](const std::string& t, double f, const std::string& m) { events->update(t, f, m); };

    auto run = pipeline::OptimizeRun::open(model_path.string(), o);
    if (!run) {
      status = "failed";
      error = run.error().to_string();
      return;
    }
    auto jobs = store_.jobs_for(id);
    if (!jobs) {
      status = "failed";
      error = jobs.error().to_string();
      return;
    }
    // This run's jobs: the newest baseline and everything after it (a re-run enqueues afresh).
    std::int64_t baseline_id = 0;
    json baseline_record = nullptr;
    for (const store::Job& j : jobs.value()) {
      if (j.kind == "baseline" && j.id >= baseline_id) {
        baseline_id = j.id;
        baseline_record = j.result;
      }
    }
    // Every file the step wrote into out/ becomes an artifact under its path there: the .eom, the
    // ONNX and TFLite exports and samples/ (inputs, sample images, the variant's reference
    // outputs), so the final job and the download route (deploy::write_package) see the same
    // folder `edgeopt optimize --out` writes. Only this step's own files are in its out/.
    auto upload = [&](const std::string&) -> Status {
      const fs::path out = dir / "out";
      std::error_code walk_ec;
      for (fs::recursive_directory_iterator it(out, walk_ec), end; !walk_ec && it != end; it.increment(walk_ec)) {
        const std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (!it->is_regular_file()) continue;
        const std::string rel = it->path().lexically_relative(out).generic_string();
        if (Status s = store_.put_blob_file(id + "/artifacts/" + rel, it->path().string()); !s) return s;
      }
      if (walk_ec) return Error{ErrorCode::kIo, "cannot list the step's files in " + out.string() + ": " + walk_ec.message(), "check the scratch folder"};
      return ok_status();
    };
    if (job.kind == "baseline") {
      auto record = run.value()->baseline();
      if (!record) {
        status = "failed";
        error = record.error().to_string();
        return;
      }
      if (Status s = upload("fp32"); !s) {
        status = "failed";
        error = s.error().to_string();
        return;
      }
      result = record.value();
      const json& m = result["measured"];
      (void)store_.append_event(id, "baseline_completed", {{"technique", "fp32"}, {"accuracy", m.value("accuracy", 0.0)},
                                                          {"accuracy_ci95", {m.value("ci_low", 0.0), m.value("ci_high", 0.0)}},
                                                          {"size_bytes", m.value("size_bytes", 0)}, {"params", m.value("params", 0)},
                                                          {"macs", m.value("macs", 0)}, {"normalization", result["normalization"]}});
      return;
    }
    if (baseline_record.is_null()) {
      status = "failed";
      error = "the baseline has no record";
      return;
    }
    if (job.kind == "technique") {
      (void)store_.append_event(id, "technique_started", {{"technique", job.technique}, {"worker", options_.name}, {"attempt", job.attempts}});
      auto record = run.value()->technique(job.technique, baseline_record);
      if (!record) {
        status = "failed";
        error = record.error().to_string();
        return;
      }
      const json& m = record.value()["measured"];
      if (cancel && m.value("status", "") != "completed") {
        status = "cancelled";
        error = "stopped";
        return;
      }
      if (m.value("status", "") == "completed") {
        if (Status s = upload(job.technique); !s) {
          status = "failed";
          error = s.error().to_string();
          return;
        }
      }
      result = record.value();
      json summary{{"technique", job.technique}, {"status", m.value("status", "")}, {"worker", options_.name}, {"seconds", m.value("seconds", 0.0)}};
      if (m.value("status", "") == "completed") {
        const double base = baseline_record["measured"].value("accuracy", 0.0);
        summary.update({{"accuracy", m.value("accuracy", 0.0)},
                        {"accuracy_ci95", {m.value("ci_low", 0.0), m.value("ci_high", 0.0)}},
                        {"accuracy_drop_pp", 100 * (base - m.value("accuracy", 0.0))},
                        {"size_bytes", m.value("size_bytes", 0)},
                        {"size_gzip_bytes", m.value("size_gzip_bytes", 0)},
                        {"params", m.value("params", 0)},
                        {"macs", m.value("macs", 0)},
                        {"precision", m.value("precision", "")}});
      } else {
        summary["error"] = m.value("error", "");
      }
      (void)store_.append_event(id, "technique_completed", summary);
      return;
    }
    // The final job: every artifact back into out/, then latency (all on this host, in turn),
    // estimates and the recommendation.
    std::vector<json> records;
    // Every artifact of the run (models, exports, samples) back into out/, as one folder.
    const std::string prefix = id + "/artifacts/";
    auto keys = store_.list_blobs(prefix);
    if (!keys) {
      status = "failed";
      error = keys.error().to_string();
      return;
    }
    for (const std::string& key : keys.value()) {
      const std::string rel = key.substr(prefix.size());
      if (rel == "results.json" || rel.empty() || rel.find("..") != std::string::npos) continue;
      const fs::path target = dir / "out" / rel;
      fs::create_directories(target.parent_path(), ec);
      (void)store_.get_blob_to_file(key, target.string());
    }
    for (const store::Job& j : jobs.value()) {
      if (j.kind != "technique" || j.id < baseline_id) continue;
      if (j.status == "completed" && j.result.contains("measured")) {
        records.push_back(j.result);
      } else {
        json m{{"technique", j.technique}, {"status", "failed"}, {"error", j.error.empty() ? "the job " + j.status : j.error}};
        records.push_back({{"measured", m}});
      }
    }
    (void)store_.append_event(id, "log", {{"message", "measuring host latency of every variant in turn on " + options_.name}});
    auto results = run.value()->finish(baseline_record, records);
    if (!results) {
      status = "failed";
      error = results.error().to_string();
      return;
    }
    json r = results.value();
    // Paths on this worker mean nothing to a client: name the files, and where to download them.
    auto relabel = [&](json& v) {
      if (v.contains("artifact") && v["artifact"].is_string()) v["artifact"] = fs::path(v["artifact"].get<std::string>()).filename().string();
      if (v.contains("onnx_artifact") && v["onnx_artifact"].is_string()) {
        v["onnx_artifact"] = fs::path(v["onnx_artifact"].get<std::string>()).filename().string();
      }
      if (v.value("status", "") == "completed") v["download"] = "/api/results/" + id + "/download/" + v.value("technique", "");
    };
    relabel(r["baseline"]);
    for (json& v : r["variants"]) relabel(v);
    r["model"] = e.model.value("file", "");
    r["measured_on"] = options_.name;
    r["seconds"] = static_cast<double>(store::now_ms() - e.created_ms) / 1000.0;
    result = {{"results", r}};
    if (Status s = store_.put_blob(id + "/artifacts/results.json", r.dump(2) + "\n"); !s) {
      status = "failed";
      error = s.error().to_string();
      return;
    }
    auto current = store_.get_experiment(id);
    if (!current || !current.value() || current.value()->status != "running") {
      status = "cancelled";
      error = "the experiment was stopped before its results were stored";
      return;
    }
    store::Experiment done_experiment = *current.value();
    done_experiment.results = r;
    done_experiment.progress = 1.0;
    if (Status s = store_.update_experiment(done_experiment); !s) {
      status = "failed";
      error = s.error().to_string();
      return;
    }
    // The experiment completes once this job is recorded as completed (below), so a client that
    // sees `completed` also sees every job ended.
    completed_summary = {{"status", "completed"}, {"message", "completed"}};
    if (r["recommendation"].contains("technique")) completed_summary["recommended"] = r["recommendation"]["technique"];
  }();

  {
    std::lock_guard<std::mutex> lock(beat_mutex);
    done = true;
  }
  beat_cv.notify_all();
  beat.join();
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (stopping_ && status != "completed") return true;  // handed back: the lease expires, another worker runs it
  auto finished = store_.finish_job(job.id, options_.name, status, result, error);
  if (!finished.ok() || !finished.value()) return true;  // no longer ours (stopped or re-claimed)
  if (status == "completed" && !completed_summary.is_null()) {
    auto set = store_.set_experiment_status(id, {"running"}, "completed");
    if (set.ok() && set.value()) (void)store_.append_event(id, "status", completed_summary);
  }
  if (status == "failed" && job.kind != "technique") fail_experiment(label + ": " + error);
  if (status == "failed" && job.kind == "technique") {
    (void)store_.append_event(id, "technique_completed", {{"technique", job.technique}, {"status", "failed"}, {"error", error}});
  }
  // Overall progress: the share of this run's jobs that have ended.
  if (auto jobs = store_.jobs_for(id); job.kind != "final" && jobs && !jobs->empty()) {
    std::int64_t baseline_id = 0;
    for (const store::Job& j : jobs.value()) {
      if (j.kind == "baseline") baseline_id = std::max(baseline_id, j.id);
    }
    int total = 0, ended = 0;
    for (const store::Job& j : jobs.value()) {
      if (j.id < baseline_id) continue;
      ++total;
      if (j.status == "completed" || j.status == "failed" || j.status == "cancelled") ++ended;
    }
    if (total > 0) {
      (void)store_.set_experiment_progress(id, static_cast<double>(ended) / total);
      (void)store_.append_event(id, "progress", {{"progress", static_cast<double>(ended) / total}, {"jobs_done", ended}, {"jobs_total", total}});
    }
  }
  return true;
}

}  // namespace edgeopt::service
