#include "service/service.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <map>
#include <set>

#include "data/dataset.h"
#include "estimator/devices.h"
#include "pipeline/model.h"
#include "recommend/recommend.h"
#include "techniques/technique.h"

namespace edgeopt::service {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::set<std::string> kTerminal{"completed", "failed", "cancelled"};

Error bad(const std::string& message, const std::string& hint = {}) { return Error{ErrorCode::kInvalidArgument, message, hint}; }

// The predecessor's goal names and ours.
std::optional<std::string> goal_id(const std::string& name) {
  static const std::map<std::string, std::string> names{
      {"balanced", "balanced"},          {"minimize_size", "size"},      {"size", "size"},
      {"maximize_speed", "speed"},       {"minimize_latency", "speed"},  {"speed", "speed"},
      {"maximize_accuracy", "accuracy"}, {"accuracy", "accuracy"}};
  const auto it = names.find(name);
  if (it == names.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> preset_dataset(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::replace(name.begin(), name.end(), '_', '-');
  if (name == "mnist") return "mnist";
  if (name == "fashion-mnist" || name == "fashionmnist") return "fashion-mnist";
  if (name == "cifar10" || name == "cifar-10") return "cifar10";
  return std::nullopt;
}

// A number field: absent or null is "not set"; anything else must be a finite number >= min.
Result<std::optional<double>> number_field(const json& fields, const std::string& key, double min, double max) {
  if (!fields.contains(key) || fields[key].is_null()) return std::optional<double>{};
  const json& v = fields[key];
  if (!v.is_number()) return bad("'" + key + "' must be a number", "send e.g. \"" + key + "\": 1.5, or leave it out");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    return bad("'" + key + "' is " + v.dump() + ", outside " + std::to_string(min) + " .. " + std::to_string(max));
  }
  return std::optional<double>{x};
}

Result<std::optional<std::string>> string_field(const json& fields, const std::string& key, std::size_t max_length = 256) {
  if (!fields.contains(key) || fields[key].is_null()) return std::optional<std::string>{};
  if (!fields[key].is_string()) return bad("'" + key + "' must be a string");
  std::string s = fields[key].get<std::string>();
  if (s.size() > max_length) return bad("'" + key + "' is longer than " + std::to_string(max_length) + " characters");
  if (s.find('\0') != std::string::npos) return bad("'" + key + "' contains a NUL character");
  return std::optional<std::string>{s};
}

estimator::DeviceCatalog load_catalog(const std::string& resources_dir) {
  auto catalog = estimator::load_device_catalog((resources_dir.empty() ? estimator::find_data_dir() : resources_dir) + "/devices");
  return catalog ? std::move(catalog).value() : estimator::DeviceCatalog{};
}

// Applies request fields onto an experiment's config, validating each. Keys it does not know are
// refused (a typo must not be silently ignored).
Status apply_fields(json& config, std::string& name, const json& fields, const std::string& resources_dir) {
  if (!fields.is_object()) return bad("the request body must be a JSON object");
  static const std::set<std::string> known{
      "name", "framework", "dataset_type", "dataset_name", "target_device", "optimization_goal", "max_accuracy_drop_percent",
      "max_accuracy_drop_points", "max_accuracy_drop_relative_pct", "max_size_mb", "max_latency_ms", "max_memory_mb",
      "techniques", "parameters", "devices", "normalize", "eval_limit", "max_train_images", "description"};
  for (const auto& [key, value] : fields.items()) {
    if (!known.count(key)) return bad("unknown field '" + key + "'", "see /openapi.json for the fields an experiment takes");
  }
  if (auto v = string_field(fields, "name"); !v) return v.error();
  else if (v.value()) {
    if (v.value()->empty()) return bad("'name' must not be empty");
    name = *v.value();
  }
  for (const char* key : {"framework", "description"}) {
    auto v = string_field(fields, key, key == std::string("description") ? 4096 : 64);
    if (!v) return v.error();
    if (v.value()) config[key] = *v.value();
  }
  if (auto v = string_field(fields, "dataset_type"); !v) return v.error();
  else if (v.value()) {
    if (*v.value() != "preset" && *v.value() != "custom") return bad("'dataset_type' must be 'preset' or 'custom'");
    config["dataset_type"] = *v.value();
  }
  if (auto v = string_field(fields, "dataset_name"); !v) return v.error();
  else if (v.value()) {
    if (config.value("dataset_type", "preset") == "preset") {
      auto preset = preset_dataset(*v.value());
      if (!preset) return bad("unknown preset dataset '" + *v.value() + "'", "use mnist, fashion_mnist or cifar10, or dataset_type 'custom' and upload a ZIP");
      config["dataset_name"] = *preset;
    } else {
      config["dataset_name"] = *v.value();
    }
  }
  const estimator::DeviceCatalog catalog = load_catalog(resources_dir);
  auto device_id = [&](const std::string& d) -> Result<std::string> {
    if (const estimator::Device* found = catalog.find(d)) return found->id;  // ids and aliases
    return bad("unknown device '" + d + "'", "valid devices: " + catalog.id_list() + " (GET /api/devices)");
  };
  if (auto v = string_field(fields, "target_device"); !v) return v.error();
  else if (v.value()) {
    auto id = device_id(*v.value());
    if (!id) return id.error();
    config["target_device"] = id.value();
  }
  if (fields.contains("devices") && !fields["devices"].is_null()) {
    if (!fields["devices"].is_array()) return bad("'devices' must be a list of device ids");
    json list = json::array();
    for (const json& d : fields["devices"]) {
      if (!d.is_string()) return bad("'devices' must be a list of device ids");
      auto id = device_id(d.get<std::string>());
      if (!id) return id.error();
      if (std::find(list.begin(), list.end(), json(id.value())) != list.end()) return bad("device '" + id.value() + "' is listed twice");
      list.push_back(id.value());
    }
    config["devices"] = list;
  }
  if (auto v = string_field(fields, "optimization_goal"); !v) return v.error();
  else if (v.value()) {
    if (!goal_id(*v.value())) return bad("unknown optimization_goal '" + *v.value() + "'", "use balanced, minimize_size, maximize_speed (or minimize_latency) or maximize_accuracy");
    config["optimization_goal"] = *v.value();
  }
  struct Limit {
    const char* key;
    const char* config_key;
    double max;
  };
  // The predecessor's max_accuracy_drop_percent meant points of accuracy (percent units of the
  // accuracy itself); ours names both kinds explicitly.
  for (const Limit& l : {Limit{"max_accuracy_drop_percent", "max_accuracy_drop_points", 100}, Limit{"max_accuracy_drop_points", "max_accuracy_drop_points", 100},
                         Limit{"max_accuracy_drop_relative_pct", "max_accuracy_drop_relative_pct", 100}, Limit{"max_size_mb", "max_size_mb", 1e6},
                         Limit{"max_latency_ms", "max_latency_ms", 1e7}, Limit{"max_memory_mb", "max_memory_mb", 1e7}}) {
    auto v = number_field(fields, l.key, 0, l.max);
    if (!v) return v.error();
    if (v.value()) config[l.config_key] = *v.value();
  }
  for (const char* key : {"eval_limit", "max_train_images"}) {
    auto v = number_field(fields, key, 0, 1e9);
    if (!v) return v.error();
    if (v.value()) {
      if (std::floor(*v.value()) != *v.value()) return bad(std::string("'") + key + "' must be a whole number");
      config[key] = static_cast<std::int64_t>(*v.value());
    }
  }
  if (auto v = string_field(fields, "normalize"); !v) return v.error();
  else if (v.value()) config["normalize"] = *v.value();
  std::string valid;
  for (const auto* t : techniques::registry()) valid += (valid.empty() ? "" : ", ") + std::string(t->id());
  if (fields.contains("techniques") && !fields["techniques"].is_null()) {
    if (!fields["techniques"].is_array()) return bad("'techniques' must be a list of technique ids", "available: " + valid);
    json list = json::array();
    for (const json& t : fields["techniques"]) {
      if (!t.is_string() || !techniques::find_technique(t.get<std::string>())) {
        return bad("unknown technique " + t.dump(), "available: " + valid);
      }
      if (std::find(list.begin(), list.end(), t) != list.end()) return bad("technique " + t.dump() + " is listed twice");
      list.push_back(t);
    }
    if (list.empty()) return bad("'techniques' is empty", "leave it out for all of them, or name at least one: " + valid);
    config["techniques"] = list;
  }
  if (fields.contains("parameters") && !fields["parameters"].is_null()) {
    const json& p = fields["parameters"];
    if (!p.is_object()) return bad("'parameters' must be an object: {\"ptq_int4\": {\"group_size\": \"64\"}}");
    for (const auto& [technique, values] : p.items()) {
      const techniques::Technique* t = techniques::find_technique(technique);
      if (!t) return bad("'parameters' names unknown technique '" + technique + "'", "available: " + valid);
      if (!values.is_object()) return bad("'parameters." + technique + "' must be an object of name: value");
      std::map<std::string, std::string> strings;
      for (const auto& [k, v] : values.items()) strings[k] = v.is_string() ? v.get<std::string>() : v.dump();
      if (auto copy = t->with_params(strings); !copy) return copy.error();
      config["parameters"][technique] = strings;
    }
  }
  return ok_status();
}

}  // namespace

bool is_terminal_status(const std::string& status) { return kTerminal.count(status) > 0; }

std::string canonical_dataset_name(const std::string& name) { return preset_dataset(name).value_or(name); }

recommend::Request recommend_request(const json& c) {
  recommend::Request r;
  const std::string goal = goal_id(c.value("optimization_goal", "balanced")).value_or("balanced");
  r.goal = recommend::goal_from_name(goal).value_or(recommend::Goal::kBalanced);
  r.device = c.value("target_device", "");
  if (c.contains("max_accuracy_drop_points")) r.limits.max_accuracy_drop_points = c["max_accuracy_drop_points"].get<double>();
  if (c.contains("max_accuracy_drop_relative_pct")) r.limits.max_accuracy_drop_percent = c["max_accuracy_drop_relative_pct"].get<double>();
  if (c.contains("max_size_mb")) r.limits.max_size_bytes = static_cast<std::int64_t>(c["max_size_mb"].get<double>() * 1e6);
  if (c.contains("max_latency_ms")) r.limits.max_latency_ms = c["max_latency_ms"].get<double>();
  if (c.contains("max_memory_mb")) r.limits.max_memory_bytes = static_cast<std::int64_t>(c["max_memory_mb"].get<double>() * 1e6);
  return r;
}

Service::Service(store::Store& store, ServiceOptions options) : store_(store), options_(std::move(options)) {}

Result<store::Experiment> Service::get(const std::string& id) {
  auto found = store_.get_experiment(id);
  if (!found) return found.error();
  if (!found.value()) return Error{ErrorCode::kNotFound, "no experiment '" + id + "'", "GET /api/experiments lists yours"};
  return *found.value();
}

Result<store::Experiment> Service::create(const std::string& owner, const json& fields) {
  store::Experiment e;
  e.owner = owner;
  e.name = "experiment";
  e.config = {{"dataset_type", "preset"}, {"dataset_name", "mnist"}, {"optimization_goal", "balanced"}};
  if (Status s = apply_fields(e.config, e.name, fields, options_.resources_dir); !s) return s.error();
  return store_.create_experiment(std::move(e));
}

Result<json> Service::merged_config(const json& config, const json& fields) const {
  json merged = config;
  std::string name;
  if (Status s = apply_fields(merged, name, fields, options_.resources_dir); !s) return s.error();
  return merged;
}

Result<store::Experiment> Service::patch(const std::string& id, const json& fields) {
  auto e = get(id);
  if (!e) return e;
  const bool only_name = fields.is_object() && fields.size() == 1 && fields.contains("name");
  if (e->status != "created" && !only_name) {
    return Error{ErrorCode::kInvalidArgument, "experiment '" + id + "' is " + e->status + "; only its name can change now",
                 "create a new experiment to run other settings"};
  }
  if (Status s = apply_fields(e->config, e->name, fields, options_.resources_dir); !s) return s.error();
  if (Status s = store_.update_experiment(e.value()); !s) return s.error();
  return get(id);
}

Result<json> Service::attach_model(const std::string& id, const std::string& uploaded_path, const std::string& filename,
                                   const std::string& declared_framework) {
  auto e = get(id);
  if (!e) return e.error();
  if (e->status != "created") return bad("experiment '" + id + "' is " + e->status + "; its model can no longer change", "create a new experiment");
  auto model = pipeline::load_model(uploaded_path);
  if (!model) {
    Error err = model.error();
    err.message = filename + ": " + err.message;
    return err;
  }
  json summary = pipeline::model_summary(model.value(), uploaded_path);
  summary["file"] = filename;
  summary["notes"] = json::array();
  const std::string format = summary["format"].get<std::string>();
  static const std::map<std::string, std::set<std::string>> frameworks{
      {"onnx", {"onnx"}}, {"keras-h5", {"keras", "tensorflow", "tf", "keras-h5"}}, {"keras-v3", {"keras", "tensorflow", "tf", "keras-v3"}},
      {"torchscript", {"pytorch", "torch", "torchscript"}}, {"tflite", {"tflite", "tensorflow", "tf", "litert"}},
      {"eom", {"eom", "edgeopt"}}};
  std::string declared = declared_framework.empty() ? e->config.value("framework", "") : declared_framework;
  std::transform(declared.begin(), declared.end(), declared.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto known = frameworks.find(format);
  if (!declared.empty() && (known == frameworks.end() || !known->second.count(declared))) {
    summary["notes"].push_back("the experiment says framework '" + declared + "', but the file is " + format + "; EdgeOpt goes by the file");
  }
  summary.erase("layers");
  const std::string key = id + "/model/" + fs::path(filename).filename().string();
  if (Status s = store_.delete_blobs(id + "/model/"); !s) return s.error();
  if (Status s = store_.put_blob_file(key, uploaded_path); !s) return s.error();
  summary["blob"] = key;
  summary["source"] = "custom";
  e->model = summary;
  e->config["framework_detected"] = format;
  if (Status s = store_.update_experiment(e.value()); !s) return s.error();
  return summary;
}

json Service::zoo() const {
  json list = json::array();
  if (options_.zoo_dir.empty()) return list;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.zoo_dir, ec)) {
    if (entry.path().extension() != ".json") continue;
    const fs::path eom = fs::path(entry.path()).replace_extension(".eom");
    if (!fs::is_regular_file(eom, ec)) continue;
    std::ifstream in(entry.path());
    json card = json::parse(in, nullptr, false);
    if (card.is_discarded() || !card.is_object()) continue;
    const json dataset = card.value("dataset", json());
    list.push_back({{"name", entry.path().stem().string()},
                    {"dataset", dataset.is_object() ? dataset.value("name", "") : (dataset.is_string() ? dataset.get<std::string>() : "")},
                    {"dataset_split_note", dataset.is_object() ? dataset.value("split_note", "") : ""},
                    {"params", card.value("params", json())},
                    {"macs", card.value("macs", json())}, {"accuracy", card.value("accuracy", json())},
                    {"accuracy_ci95", card.value("accuracy_ci95", json())}, {"card", card}});
  }
  std::sort(list.begin(), list.end(), [](const json& a, const json& b) { return a["name"] < b["name"]; });
  return list;
}

Result<json> Service::attach_pretrained(const std::string& id, const std::string& name) {
  for (const json& entry : zoo()) {
    if (entry["name"] != name) continue;
    const std::string path = (fs::path(options_.zoo_dir) / (name + ".eom")).string();
    auto summary = attach_model(id, path, name + ".eom", "");
    if (!summary) return summary;
    summary.value()["source"] = "pretrained";
    summary.value()["pretrained_model_name"] = name;
    summary.value()["card"] = entry["card"];
    auto e = get(id);
    if (!e) return e.error();
    e->model = summary.value();
    if (entry["dataset"].is_string() && e->config.value("dataset_type", "preset") == "preset") e->config["dataset_name"] = entry["dataset"];
    if (Status s = store_.update_experiment(e.value()); !s) return s.error();
    return summary;
  }
  json names = json::array();
  for (const json& entry : zoo()) names.push_back(entry["name"]);
  return Error{ErrorCode::kNotFound, "no trained zoo model '" + name + "'",
               names.empty() ? "this server has no trained zoo models; upload your own model" : "available: " + names.dump()};
}

Result<json> Service::attach_dataset(const std::string& id, const std::string& uploaded_path, const std::string& filename) {
  auto e = get(id);
  if (!e) return e.error();
  if (e->status != "created") return bad("experiment '" + id + "' is " + e->status + "; its dataset can no longer change", "create a new experiment");
  data::LoadOptions load;
  load.allow_download = false;
  auto dataset = data::read_image_zip(uploaded_path, load);
  if (!dataset) {
    Error err = dataset.error();
    err.message = filename + ": " + err.message;
    return err;
  }
  std::vector<std::int64_t> counts(dataset->class_names.size(), 0);
  for (const data::ImageSet* split : {&dataset->train, &dataset->test}) {
    for (std::int32_t label : split->labels) {
      if (label >= 0 && static_cast<std::size_t>(label) < counts.size()) ++counts[static_cast<std::size_t>(label)];
    }
  }
  json classes = json::array();
  json warnings = json::array();
  const std::int64_t most = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  for (std::size_t c = 0; c < counts.size(); ++c) {
    classes.push_back({{"index", c}, {"name", dataset->class_names[c]}, {"images", counts[c]}});
    if (counts[c] < 20) warnings.push_back("class '" + dataset->class_names[c] + "' has only " + std::to_string(counts[c]) + " images: its accuracy will be noisy");
    if (counts[c] * 5 < most) warnings.push_back("class '" + dataset->class_names[c] + "' has under a fifth of the images of the largest class");
  }
  json summary{{"file", filename},
               {"name", dataset->name},
               {"classes", classes},
               {"train_images", dataset->train.count},
               {"test_images", dataset->test.count},
               {"image_size", {dataset->train.height, dataset->train.width, dataset->train.channels}},
               {"split_note", dataset->split_note},
               {"warnings", warnings}};
  const std::string key = id + "/dataset.zip";
  if (Status s = store_.put_blob_file(key, uploaded_path); !s) return s.error();
  summary["blob"] = key;
  e->dataset = summary;
  e->config["dataset_type"] = "custom";
  e->config["dataset_name"] = dataset->name;
  if (Status s = store_.update_experiment(e.value()); !s) return s.error();
  return summary;
}

Result<store::Experiment> Service::start(const std::string& id) {
  auto e = get(id);
  if (!e) return e;
  if (e->model.is_null()) {
    return Error{ErrorCode::kInvalidArgument, "experiment '" + id + "' has no model yet",
                 "upload one first: POST /api/upload/" + id + "/model (multipart field 'file'), or pick a zoo model"};
  }
  if (e->config.value("dataset_type", "preset") == "custom" && e->dataset.is_null()) {
    return Error{ErrorCode::kInvalidArgument, "experiment '" + id + "' uses a custom dataset that was not uploaded",
                 "POST /api/upload/" + id + "/dataset with a ZIP of class folders, or set dataset_type 'preset'"};
  }
  if (!is_terminal_status(e->status) && e->status != "created") {
    return Error{ErrorCode::kInvalidArgument, "experiment '" + id + "' is already " + e->status, "wait for it, or stop it first"};
  }
  store::ExperimentFilter active;
  active.owner = e->owner;
  active.limit = 1;
  std::int64_t running = 0;
  for (const char* s : {"queued", "running"}) {
    active.status = s;
    auto page = store_.list_experiments(active);
    if (!page) return page.error();
    running += page->total;
  }
  if (running >= options_.max_active_experiments) {
    return Error{ErrorCode::kInvalidArgument, std::to_string(running) + " of your experiments are queued or running, the limit is " +
                                                  std::to_string(options_.max_active_experiments),
                 "wait for one to finish or stop one"};
  }
  auto changed = store_.set_experiment_status(id, {"created", "failed", "cancelled", "completed"}, "queued");
  if (!changed) return changed.error();
  if (!changed.value()) return Error{ErrorCode::kInvalidArgument, "experiment '" + id + "' was started at the same time by another request"};
  // A re-run starts from nothing: old results, jobs and artifacts go.
  if (Status s = store_.delete_blobs(id + "/artifacts/"); !s) return s.error();
  auto fresh = get(id);
  if (!fresh) return fresh;
  fresh->results = nullptr;
  fresh->error.clear();
  fresh->progress = 0;
  if (Status s = store_.update_experiment(fresh.value()); !s) return s.error();
  std::vector<std::string> ids;
  if (e->config.contains("techniques")) {
    for (const json& t : e->config["techniques"]) ids.push_back(t.get<std::string>());
  } else {
    for (const auto* t : techniques::registry()) ids.emplace_back(t->id());
  }
  std::vector<store::Job> jobs;
  store::Job baseline;
  baseline.experiment_id = id;
  baseline.kind = "baseline";
  baseline.phase = 0;
  jobs.push_back(baseline);
  for (const std::string& t : ids) {
    store::Job j;
    j.experiment_id = id;
    j.kind = "technique";
    j.technique = t;
    j.phase = 1;
    jobs.push_back(j);
  }
  store::Job final_job;
  final_job.experiment_id = id;
  final_job.kind = "final";
  final_job.phase = 2;
  jobs.push_back(final_job);
  if (Status s = store_.enqueue_jobs(jobs); !s) return s.error();
  if (auto ev = store_.append_event(id, "status", {{"status", "queued"}, {"techniques", ids}, {"message", "queued: baseline, " + std::to_string(ids.size()) + " techniques, final measurement"}}); !ev) {
    return ev.error();
  }
  return get(id);
}

Result<store::Experiment> Service::stop(const std::string& id) {
  auto e = get(id);
  if (!e) return e;
  if (e->status == "created") return bad("experiment '" + id + "' has not been started", "nothing to stop");
  if (is_terminal_status(e->status)) return bad("experiment '" + id + "' has already ended (" + e->status + ")", "nothing to stop");
  auto changed = store_.set_experiment_status(id, {"queued", "running"}, "cancelled", "stopped by the user");
  if (!changed) return changed.error();
  if (auto n = store_.cancel_jobs(id); !n) return n.error();
  if (changed.value()) {
    if (auto ev = store_.append_event(id, "status", {{"status", "cancelled"}, {"message", "stopped by the user"}}); !ev) return ev.error();
  }
  return get(id);
}

Status Service::remove(const std::string& id) {
  auto e = get(id);
  if (!e) return e.error();
  if (e->status == "queued" || e->status == "running") {
    if (auto s = stop(id); !s) return s.error();
  }
  return store_.delete_experiment(id);
}

Result<int> Service::reconcile() {
  int changed = 0;
  for (const char* status : {"queued", "running"}) {
    store::ExperimentFilter filter;
    filter.status = status;
    filter.limit = 1000;
    auto page = store_.list_experiments(filter);
    if (!page) return page.error();
    for (const store::Experiment& e : page->items) {
      auto jobs = store_.jobs_for(e.id);
      if (!jobs) return jobs.error();
      if (jobs->empty()) continue;
      const bool all_ended = std::all_of(jobs->begin(), jobs->end(), [](const store::Job& j) { return is_terminal_status(j.status); });
      if (!all_ended) continue;
      // A worker that stored the results and recorded its final job but died before marking the
      // experiment completed: the results are whole, so it is completed.
      const bool final_done = std::any_of(jobs->begin(), jobs->end(), [](const store::Job& j) { return j.kind == "final" && j.status == "completed"; });
      if (final_done && e.results.is_object()) {
        auto set = store_.set_experiment_status(e.id, {"running"}, "completed");
        if (!set) return set.error();
        if (set.value()) {
          ++changed;
          (void)store_.append_event(e.id, "status", {{"status", "completed"}, {"message", "completed"}});
        }
        continue;
      }
      std::string reason = "its jobs ended without a result";
      for (const store::Job& j : jobs.value()) {
        if (j.status == "failed" && j.kind != "technique") reason = j.kind + " job failed: " + j.error;
      }
      auto set = store_.set_experiment_status(e.id, {"queued", "running"}, "failed", reason);
      if (!set) return set.error();
      if (set.value()) {
        ++changed;
        (void)store_.append_event(e.id, "status", {{"status", "failed"}, {"message", reason}});
      }
    }
  }
  return changed;
}

}  // namespace edgeopt::service
