// The platform's store: experiments, their uploaded files and artifacts (blobs), the job queue
// workers claim work from, the event log SSE streams read, and API tokens. One interface, two
// backends: SQLite (one machine; blobs as files under the store folder) and PostgreSQL (many
// machines; blobs in the database, so a worker needs nothing but the URL). Knows nothing of HTTP
// or LibTorch. Every call is safe from any thread; each backend serialises what it must.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace edgeopt::store {

// Wall-clock milliseconds since the epoch (what every *_ms field holds).
std::int64_t now_ms();

struct Experiment {
  std::string id;     // assigned by create_experiment (random, URL-safe)
  std::string owner;  // the token's user name; "local" on loopback without tokens
  std::string name;
  // created, queued, running, completed, failed, cancelled
  std::string status = "created";
  nlohmann::json config = nlohmann::json::object();   // what the user asked for (device, goal, limits, techniques, params, dataset)
  nlohmann::json model = nullptr;                      // the uploaded model's summary (format, params, MACs, input, output, blob)
  nlohmann::json dataset = nullptr;                    // the uploaded dataset's summary, or null for a preset
  nlohmann::json results = nullptr;                    // results.json once the final job has run
  std::string error;                                   // why it failed, when it did
  double progress = 0.0;                               // 0..1, overall
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

struct ExperimentFilter {
  std::string owner;     // empty: every owner (only for admin paths; the server always sets it)
  std::string status;    // empty: any
  std::string device;    // config.target_device; empty: any
  std::string goal;      // config.optimization_goal; empty: any
  std::string dataset;   // config.dataset_name; empty: any
  std::string query;     // substring of the name, case-insensitive; empty: any
  std::int64_t limit = 50;
  std::int64_t offset = 0;
};

struct ExperimentPage {
  std::vector<Experiment> items;  // newest first (created_ms, then id)
  std::int64_t total = 0;         // matching rows without limit/offset
};

// A unit of work. Jobs of one experiment run phase by phase: no job of phase p is claimed while a
// job of the same experiment with a lower phase is queued or running.
struct Job {
  std::int64_t id = 0;
  std::string experiment_id;
  std::string kind;        // "baseline", "technique", "final"
  std::string technique;   // for kind == "technique"; else empty
  int phase = 0;
  // queued, running, completed, failed, cancelled
  std::string status = "queued";
  std::string worker;      // who holds the lease while running
  int attempts = 0;        // how many times it was claimed
  std::int64_t lease_expires_ms = 0;
  nlohmann::json result = nullptr;  // what the job produced (metrics), set by finish_job
  std::string error;
};

struct Event {
  std::int64_t seq = 0;  // 1, 2, 3 ... per experiment, without gaps, in commit order
  std::string experiment_id;
  std::string type;      // SSE event name: status, technique_started, technique_progress, ...
  nlohmann::json data = nlohmann::json::object();
  std::int64_t time_ms = 0;
};

struct Token {
  std::string name;       // the user it stands for
  std::string hash_hex;   // SHA-256 of the secret; the secret itself is never stored
  std::int64_t created_ms = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual std::string backend_name() const = 0;  // "sqlite" or "postgresql"
  // The newest migration applied to this database (schema_migrations); for /health and tests.
  virtual Result<int> schema_version() = 0;

  // ---- experiments ----
  // Assigns id, created_ms and updated_ms; returns the stored row.
  virtual Result<Experiment> create_experiment(Experiment experiment) = 0;
  virtual Result<std::optional<Experiment>> get_experiment(const std::string& id) = 0;
  virtual Result<ExperimentPage> list_experiments(const ExperimentFilter& filter) = 0;
  // Replaces every field but id, owner, created_ms and status (which only set_experiment_status
  // changes, so a stale copy can never undo a stop); sets updated_ms. kNotFound if absent.
  virtual Status update_experiment(const Experiment& experiment) = 0;
  // Sets status (and error, progress when given) only if the current status is one of `from`
  // (empty: any). Returns whether it changed: the compare-and-set the life cycle is built on.
  virtual Result<bool> set_experiment_status(const std::string& id, const std::vector<std::string>& from,
                                             const std::string& to, const std::string& error = {}) = 0;
  virtual Status set_experiment_progress(const std::string& id, double progress) = 0;
  // Removes the experiment with its jobs, events and every blob whose key starts with "<id>/".
  virtual Status delete_experiment(const std::string& id) = 0;

  // ---- blobs: keys look like "<experiment id>/model.onnx", "<id>/artifacts/ptq_int8.eom" ----
  virtual Status put_blob(const std::string& key, std::string_view bytes) = 0;
  // Streams a file in (no whole-file copy in memory for the SQLite backend).
  virtual Status put_blob_file(const std::string& key, const std::string& path) = 0;
  virtual Result<std::string> get_blob(const std::string& key) = 0;  // kNotFound if absent
  // Writes the blob to `path` (atomically); kNotFound if absent.
  virtual Status get_blob_to_file(const std::string& key, const std::string& path) = 0;
  virtual Result<std::vector<std::string>> list_blobs(const std::string& prefix) = 0;
  virtual Status delete_blobs(const std::string& prefix) = 0;

  // ---- jobs ----
  virtual Status enqueue_jobs(const std::vector<Job>& jobs) = 0;
  // Claims the oldest claimable queued job (see Job::phase), or a running one whose lease has
  // expired (its attempts grow; past max_attempts it is marked failed instead, with the reason).
  // PostgreSQL: FOR UPDATE SKIP LOCKED, so any number of workers on any machines share the queue.
  virtual Result<std::optional<Job>> claim_job(const std::string& worker, std::int64_t lease_ms, int max_attempts = 3) = 0;
  // Extends the lease. Returns false when the job is no longer this worker's (lease lost,
  // cancelled): the worker must stop it and not report it.
  virtual Result<bool> heartbeat(std::int64_t job_id, const std::string& worker, std::int64_t lease_ms) = 0;
  // Ends a job this worker holds: status completed, failed or cancelled. Returns false (and
  // changes nothing) when the worker no longer holds it.
  virtual Result<bool> finish_job(std::int64_t job_id, const std::string& worker, const std::string& status,
                                  const nlohmann::json& result, const std::string& error = {}) = 0;
  virtual Result<std::vector<Job>> jobs_for(const std::string& experiment_id) = 0;
  // Marks the experiment's queued and running jobs cancelled (running ones lose their lease:
  // their next heartbeat returns false). Returns how many changed.
  virtual Result<int> cancel_jobs(const std::string& experiment_id) = 0;

  // ---- events ----
  // Appends with the next seq of that experiment, atomically with respect to other writers.
  virtual Result<std::int64_t> append_event(const std::string& experiment_id, const std::string& type,
                                            const nlohmann::json& data) = 0;
  virtual Result<std::vector<Event>> events_after(const std::string& experiment_id, std::int64_t after_seq,
                                                  std::int64_t limit = 1000) = 0;

  // ---- tokens ----
  virtual Status add_token(const Token& token) = 0;  // kInvalidArgument if the name exists
  virtual Result<std::optional<Token>> find_token_by_hash(const std::string& hash_hex) = 0;
  virtual Result<std::vector<Token>> list_tokens() = 0;
  virtual Status delete_token(const std::string& name) = 0;
};

// "postgresql://..." or "postgres://..." opens PostgreSQL; anything else is a folder holding
// edgeopt.db (SQLite, WAL) and blobs/. Runs pending migrations (versioned, one transaction
// each) before returning.
Result<std::unique_ptr<Store>> open_store(const std::string& location);

}  // namespace edgeopt::store
