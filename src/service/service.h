// The platform's experiments, HTTP-free: their life cycle (created -> queued -> running ->
// completed | failed | cancelled), what a user may attach to them (a model, a dataset), and the
// jobs a start enqueues. The server calls this; `Worker` (worker.h) runs the jobs it enqueues.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "recommend/recommend.h"
#include "store/store.h"

namespace edgeopt::service {

struct ServiceOptions {
  std::string resources_dir;           // data/ (devices, estimator, zoo); empty: found automatically
  std::string scratch_dir;             // where uploads are imported; must exist
  std::string zoo_dir;                 // trained zoo models (<name>.eom with <name>.card.json); empty: none
  int max_active_experiments = 8;      // queued + running at once, per user
};

// A preset dataset's stored name for any of its spellings (fashion_mnist, Fashion-MNIST, cifar-10
// ...); any other name unchanged.
std::string canonical_dataset_name(const std::string& name);

// The goal, limits and target device a stored (validated) config asks the recommendation for:
// what a run ranks with, and what a what-if ranks again with.
recommend::Request recommend_request(const nlohmann::json& config);

// Experiment states and the ones a run ends in.
bool is_terminal_status(const std::string& status);

class Service {
 public:
  Service(store::Store& store, ServiceOptions options);

  // Creates an experiment from the request fields (the predecessor's and ours; see
  // docs/api.md). Every field is validated: unknown devices, goals, techniques and parameters,
  // non-finite or negative limits are kInvalidArgument with what to send instead.
  Result<store::Experiment> create(const std::string& owner, const nlohmann::json& fields);
  // The config with `fields` applied and validated, without storing anything (what-if rankings).
  Result<nlohmann::json> merged_config(const nlohmann::json& config, const nlohmann::json& fields) const;
  // Changes fields of an experiment that has not started (name may change any time).
  Result<store::Experiment> patch(const std::string& id, const nlohmann::json& fields);

  // Imports the uploaded file (in the importer's sandbox) and keeps it with its summary.
  // `declared_framework` is the client's claim; the truth comes from the file and a
  // disagreement is reported in the summary's "notes".
  Result<nlohmann::json> attach_model(const std::string& id, const std::string& uploaded_path, const std::string& filename,
                                      const std::string& declared_framework);
  // A zoo model instead of an upload (must be trained already: see `edgeopt zoo train`).
  Result<nlohmann::json> attach_pretrained(const std::string& id, const std::string& name);
  // Validates a ZIP of class folders (the dataset loader's checks) and keeps it.
  Result<nlohmann::json> attach_dataset(const std::string& id, const std::string& uploaded_path, const std::string& filename);

  // created | failed | cancelled -> queued: the baseline job, one job per technique, the final job.
  Result<store::Experiment> start(const std::string& id);
  // queued | running -> cancelled; running jobs stop at their next step.
  Result<store::Experiment> stop(const std::string& id);
  // Removes the experiment with its files; a running one is cancelled first.
  Status remove(const std::string& id);

  // After a crash or a worker's death: an experiment whose jobs have all ended but that is
  // still queued or running is marked failed with the reason of the job that failed. Returns
  // how many it changed.
  Result<int> reconcile();

  // The trained zoo models: name, dataset, params, accuracy (from their cards).
  nlohmann::json zoo() const;

  store::Store& store() { return store_; }
  const ServiceOptions& options() const { return options_; }

 private:
  Result<store::Experiment> get(const std::string& id);
  store::Store& store_;
  ServiceOptions options_;
};

}  // namespace edgeopt::service
