#include "server/api.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zip.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/checksum.h"
#include "data/dataset.h"
#include "deploy/package.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
#include "estimator/local_calibration.h"
#include "format/eom.h"
#include "pipeline/model.h"
#include "pipeline/optimize.h"
#include "recommend/recommend.h"
#include "server/multipart.h"
#include "service/log.h"
#include "techniques/technique.h"
#include "zoo/zoo.h"

namespace edgeopt::server {

namespace fs = std::filesystem;
using nlohmann::json;

std::string token_hash(const std::string& secret) {
  data::Sha256 h;
  h.update(secret);
  return h.hex_digest();
}

std::string new_token_secret() {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::string s = "eo_";
  for (int i = 0; i < 43; ++i) s += alphabet[rd() % 64];
  return s;
}

namespace {

// ---- small helpers ----

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kIo:
    case ErrorCode::kNetwork: return 503;
    case ErrorCode::kInternal: return 500;
    default: return 422;  // the request was understood, its content is not acceptable
  }
}

HttpResponse from_error(const Error& e, int status = 0) {
  return error_response(status ? status : status_for(e.code), error_code_name(e.code), e.message, e.hint);
}

std::string iso_time(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf) + "." + std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string item;
  for (char c : path + "/") {
    if (c == '/') {
      if (!item.empty()) parts.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  return parts;
}

// The jobs of the experiment's latest run (a re-run enqueues afresh).
std::vector<store::Job> current_jobs(const std::vector<store::Job>& jobs) {
  std::int64_t baseline_id = 0;
  for (const store::Job& j : jobs) {
    if (j.kind == "baseline") baseline_id = std::max(baseline_id, j.id);
  }
  std::vector<store::Job> out;
  for (const store::Job& j : jobs) {
    if (j.id >= baseline_id) out.push_back(j);
  }
  return out;
}

json technique_states(const std::vector<store::Job>& jobs) {
  json list = json::array();
  for (const store::Job& j : current_jobs(jobs)) {
    std::string status = j.status;
    std::string error = j.error;
    if (j.status == "completed" && j.result.contains("measured") && j.result["measured"].value("status", "") != "completed") {
      status = "failed";
      error = j.result["measured"].value("error", "");
    }
    list.push_back({{"job", j.kind}, {"technique", j.kind == "technique" ? j.technique : (j.kind == "baseline" ? "fp32" : "final")},
                    {"status", status}, {"attempts", j.attempts}, {"worker", j.worker.empty() ? json(nullptr) : json(j.worker)},
                    {"error", error.empty() ? json(nullptr) : json(error)}});
  }
  return list;
}

json experiment_json(const store::Experiment& e, const std::vector<store::Job>* jobs) {
  const json& c = e.config;
  json out{{"id", e.id},
           {"name", e.name},
           {"status", e.status},
           {"progress", e.progress},
           {"error", e.error.empty() ? json(nullptr) : json(e.error)},
           {"created_at", iso_time(e.created_ms)},
           {"updated_at", iso_time(e.updated_ms)},
           {"framework", c.value("framework", "")},
           {"framework_detected", c.contains("framework_detected") ? c["framework_detected"] : json(nullptr)},
           {"dataset_type", c.value("dataset_type", "preset")},
           {"dataset_name", c.value("dataset_name", "")},
           {"target_device", c.contains("target_device") ? c["target_device"] : json(nullptr)},
           {"optimization_goal", c.value("optimization_goal", "balanced")},
           {"max_accuracy_drop_percent", c.contains("max_accuracy_drop_points") ? c["max_accuracy_drop_points"] : json(nullptr)},
           {"max_size_mb", c.contains("max_size_mb") ? c["max_size_mb"] : json(nullptr)},
           {"max_latency_ms", c.contains("max_latency_ms") ? c["max_latency_ms"] : json(nullptr)},
           {"config", c},
           {"model", e.model},
           {"dataset", e.dataset},
           {"has_results", !e.results.is_null()}};
  if (e.results.is_object() && e.results.contains("recommendation") && e.results["recommendation"].contains("technique")) {
    out["recommended_technique"] = e.results["recommendation"]["technique"];
  }
  if (jobs) out["techniques"] = technique_states(*jobs);
  return out;
}

// The predecessor's result row, with ours beside it.
json result_row(const json& v, const json& baseline, const std::string& device) {
  const bool done = v.value("status", "") == "completed";
  json row{{"technique_name", v.value("technique", "")}, {"technique", v.value("technique", "")}, {"status", v.value("status", "")},
           {"error", v.contains("error") ? v["error"] : json(nullptr)}};
  const double base_acc = baseline.value("accuracy", 0.0);
  row["original_accuracy"] = 100 * base_acc;
  row["original_size_mb"] = static_cast<double>(baseline.value("size_bytes", std::int64_t{0})) / 1e6;
  if (!done) {
    row["per_class"] = nullptr;
    return row;
  }
  const double acc = v.value("accuracy", 0.0);
  row.update({{"optimized_accuracy", 100 * acc},
              {"accuracy_drop_percent", 100 * (base_acc - acc)},
              {"accuracy_drop_points", 100 * (base_acc - acc)},
              {"accuracy_drop_relative_pct", base_acc > 0 ? 100 * (base_acc - acc) / base_acc : 0.0},
              {"accuracy_ci95", v.value("accuracy_ci95", json::array())},
              {"test_samples", v.value("samples", 0)},
              {"optimized_size_mb", static_cast<double>(v.value("size_bytes", std::int64_t{0})) / 1e6},
              {"size_bytes", v.value("size_bytes", 0)},
              {"size_gzip_bytes", v.value("size_gzip_bytes", 0)},
              {"size_ratio", baseline.value("size_bytes", 0) > 0 ? static_cast<double>(v.value("size_bytes", 0)) / baseline.value("size_bytes", 1) : 0.0},
              {"params", v.value("params", 0)},
              {"nonzero_params", v.value("nonzero_params", 0)},
              {"macs", v.value("macs", 0)},
              {"precision", v.value("precision", "")},
              {"peak_memory_bytes", v.value("peak_memory_bytes", 0)},
              {"notes", v.value("notes", json::array())},
              {"metrics", v.value("metrics", json::object())},
              {"per_class", v.value("per_class", json(nullptr))},
              {"measured", "accuracy (test split), size (read from disk), params, MACs; host latency when present"}});
  if (v.contains("host_latency_ms")) {
    row["host_latency_ms"] = v["host_latency_ms"];
    row["host_latency_ms_1thread"] = v.value("host_latency_ms_1thread", json());
    row["host_latency_unstable"] = v.value("host_latency_unstable", false);
  }
  if (v.contains("device_estimates")) {
    row["device_estimates"] = v["device_estimates"];
    for (const json& e : v["device_estimates"]) {
      if (e.value("device", "") == device) {
        row["target_device_estimate"] = e;
        row["target_device_estimate"]["is_estimate"] = true;
      }
    }
  }
  if (v.contains("download")) row["download"] = v["download"];
  return row;
}

// Results so far: the final results when the run is complete, else every finished job's record.
json current_results(const store::Experiment& e, const std::vector<store::Job>& jobs) {
  if (e.results.is_object()) return e.results;
  json r{{"baseline", nullptr}, {"variants", json::array()}, {"partial", true}};
  for (const store::Job& j : current_jobs(jobs)) {
    if (j.status != "completed" || !j.result.contains("measured")) continue;
    json m = j.result["measured"];
    json v{{"technique", m.value("technique", "")}, {"status", m.value("status", "")}, {"accuracy", m.value("accuracy", 0.0)},
           {"accuracy_ci95", {m.value("ci_low", 0.0), m.value("ci_high", 0.0)}}, {"samples", m.value("samples", 0)},
           {"size_bytes", m.value("size_bytes", 0)}, {"size_gzip_bytes", m.value("size_gzip_bytes", 0)}, {"params", m.value("params", 0)},
           {"nonzero_params", m.value("nonzero_params", 0)}, {"macs", m.value("macs", 0)}, {"precision", m.value("precision", "")},
           {"peak_memory_bytes", m.value("peak_memory_bytes", 0)}, {"notes", m.value("notes", json::array())},
           {"metrics", m.value("metrics", json::object())}, {"per_class", m.value("per_class", json(nullptr))}};
    if (!m.value("error", "").empty()) v["error"] = m["error"];
    if (j.kind == "baseline") {
      r["baseline"] = v;
      if (j.result.contains("classes") && j.result["classes"].is_array()) {
        r["classes"] = j.result["classes"];
        r["class_names"] = json::array();
        for (const json& c : r["classes"]) r["class_names"].push_back(c.value("name", ""));
      }
    } else {
      r["variants"].push_back(v);
    }
  }
  return r;
}

// Reads a file into memory only up to `limit` bytes.
Result<std::string> read_small_file(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kIo, "cannot read the upload"};
  std::string s;
  s.resize(limit + 1);
  in.read(s.data(), static_cast<std::streamsize>(limit + 1));
  s.resize(static_cast<std::size_t>(in.gcount()));
  if (s.size() > limit) return Error{ErrorCode::kInvalidArgument, "too large"};
  return s;
}

// A read-only mapping of an upload's body, so multipart parts are views, never copies.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd_ < 0) return;
    struct stat st {};
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) return;
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) {
      ok_ = true;
      return;
    }
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) return;
    data_ = static_cast<const char*>(p);
    ok_ = true;
  }
  ~MappedFile() {
    if (data_) munmap(const_cast<char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  bool ok() const { return ok_; }
  std::string_view view() const { return data_ ? std::string_view(data_, size_) : std::string_view(); }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  bool ok_ = false;
};

// Removes a temporary file or folder (with what is in it) when the scope ends.
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// A file name a client sent, reduced to something safe to keep: its last path component, only
// letters, digits and ".-_", at most 100 characters.
std::string safe_filename(const std::string& name, const std::string& fallback) {
  std::string base = fs::path(name).filename().string();
  std::string out;
  for (char c : base) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') out += c;
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  if (out.size() > 100) out = out.substr(out.size() - 100);
  return out.empty() ? fallback : out;
}

}  // namespace

struct Api::Impl {
  service::Service& service;
  store::Store& store;
  ApiOptions options;
  std::string data_root;
  estimator::DeviceCatalog catalog;
  std::optional<estimator::Calibration> calibration;
  json openapi;
  std::string docs_html;
  std::atomic<std::int64_t> tmp_counter{0};

  Impl(service::Service& s, ApiOptions o) : service(s), store(s.store()), options(std::move(o)) {
    data_root = options.resources_dir.empty() ? estimator::find_data_dir() : options.resources_dir;
    if (auto c = estimator::load_device_catalog(data_root + "/devices"); c) catalog = std::move(c).value();
    if (auto c = estimator::load_calibration(data_root + "/estimator"); c) calibration = std::move(c).value();
    std::ifstream spec(data_root + "/api/openapi.json");
    openapi = json::parse(spec, nullptr, false);
    if (openapi.is_discarded()) openapi = json{{"openapi", "3.1.0"}, {"info", {{"title", "EdgeOpt"}, {"version", options.version}}}, {"paths", json::object()}};
    std::ifstream docs(data_root + "/api/docs.html");
    std::stringstream ss;
    ss << docs.rdbuf();
    docs_html = ss.str();
  }

  // DIR/api-PID-N/name in a new folder of its own (RemoveOnExit on the folder cleans up).
  std::string private_temp_file(const std::string& name) {
    const fs::path dir = temp_path("");
    std::error_code ec;
    fs::create_directory(dir, ec);
    return (dir / name).string();
  }

  std::string temp_path(const std::string& suffix) {
    return (fs::path(options.scratch_dir) / ("api-" + std::to_string(getpid()) + "-" + std::to_string(tmp_counter++) + suffix)).string();
  }

  // ---- auth ----
  // The user a request acts as, or an error response.
  std::variant<std::string, HttpResponse> authenticate(const HttpRequest& req) {
    if (!options.auth_required) return options.local_user;
    const std::string header = req.header("authorization");
    std::string secret;
    if (header.size() > 7 && (header.rfind("Bearer ", 0) == 0 || header.rfind("bearer ", 0) == 0)) secret = header.substr(7);
    if (secret.empty() && req.query.count("access_token")) secret = req.query.at("access_token");  // EventSource cannot send headers
    if (secret.empty()) {
      auto r = error_response(401, "unauthorized", "this server needs a bearer token", "send 'Authorization: Bearer <token>'; create one with `edgeopt tokens create NAME`");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    auto token = store.find_token_by_hash(token_hash(secret));
    if (!token) return from_error(token.error());
    if (!token.value()) {
      auto r = error_response(401, "unauthorized", "the token is not valid", "create one with `edgeopt tokens create NAME`");
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return r;
    }
    return token.value()->name;
  }

  // The experiment if it exists and belongs to `user`; another user's id is a 404 like a missing one.
  std::variant<store::Experiment, HttpResponse> owned(const std::string& id, const std::string& user) {
    if (id.size() > 64) return error_response(404, "not_found", "no experiment '" + id.substr(0, 64) + "...'");
    auto e = store.get_experiment(id);
    if (!e) return from_error(e.error());
    if (!e.value() || e.value()->owner != user) {
      return error_response(404, "not_found", "no experiment '" + id + "'", "GET /api/experiments lists yours");
    }
    return *e.value();
  }

  Result<json> parse_body(const HttpRequest& req, bool allow_empty) {
    if (req.body.empty()) {
      if (allow_empty) return json::object();
      return Error{ErrorCode::kInvalidArgument, "the request needs a JSON body", "send Content-Type: application/json and an object"};
    }
    const std::string type = req.header("content-type");
    if (!type.empty() && type.find("json") == std::string::npos) {
      return Error{ErrorCode::kInvalidArgument, "the body must be JSON, not '" + type + "'", "send Content-Type: application/json"};
    }
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) return Error{ErrorCode::kInvalidArgument, "the body is not valid JSON", "check the quoting and commas"};
    if (!body.is_object()) return Error{ErrorCode::kInvalidArgument, "the body must be a JSON object"};
    return body;
  }

  // ---- routes ----
  HttpResponse route(HttpRequest& req) {
    const std::vector<std::string> p = split_path(req.path);
    const std::string& m = req.method;
    if (p.empty()) return serve_web(req);
    if (p[0] == "health" && p.size() == 1 && m == "GET") return health();
    if (p[0] == "openapi.json" && p.size() == 1 && m == "GET") return json_response(200, openapi);
    if (p[0] == "docs" && p.size() == 1 && m == "GET") {
      HttpResponse r;
      r.content_type = "text/html; charset=utf-8";
      r.body = docs_html.empty() ? "<!doctype html><title>EdgeOpt API</title><p>See <a href=\"/openapi.json\">/openapi.json</a>.</p>" : docs_html;
      return r;
    }
    if (p[0] != "api" && p[0] != "metrics") return serve_web(req);
    auto who = authenticate(req);
    if (std::holds_alternative<HttpResponse>(who)) return std::get<HttpResponse>(who);
    const std::string user = std::get<std::string>(who);
    if (p[0] == "metrics" && p.size() == 1 && m == "GET") return metrics();
    if (p.size() < 2) return not_found(req);
    const std::string& area = p[1];
    const std::size_t n = p.size();
    auto allow = [&](std::initializer_list<const char*> methods) -> std::optional<HttpResponse> {
      for (const char* x : methods) {
        if (m == x) return std::nullopt;
      }
      std::string list;
      for (const char* x : methods) list += (list.empty() ? "" : ", ") + std::string(x);
      auto r = error_response(405, "method_not_allowed", m + " is not allowed on " + req.path, "use " + list);
      r.headers.emplace_back("Allow", list);
      return r;
    };
    if (area == "experiments") {
      if (n == 2) {
        if (auto r = allow({"GET", "POST"})) return *r;
        return m == "GET" ? list_experiments(req, user, false) : create(req, user);
      }
      if (n == 3 && p[2] == "create") {
        if (auto r = allow({"POST"})) return *r;
        return create(req, user);
      }
      if (n == 3 && p[2] == "recent") {
        if (auto r = allow({"GET"})) return *r;
        return list_experiments(req, user, true);
      }
      if (n == 3 && p[2] == "search") {
        if (auto r = allow({"GET"})) return *r;
        return list_experiments(req, user, false);
      }
      if (n == 3) {
        if (auto r = allow({"GET", "PATCH", "DELETE"})) return *r;
        if (m == "GET") return get_experiment(p[2], user);
        if (m == "PATCH") return patch(req, p[2], user);
        return remove(p[2], user);
      }
    }
    if (area == "upload" && n == 4) {
      if (auto r = allow({"POST"})) return *r;
      if (p[3] == "model") return upload_model(req, p[2], user);
      if (p[3] == "dataset") return upload_dataset(req, p[2], user);
    }
    if (area == "optimize" && n == 4) {
      if (p[3] == "start") {
        if (auto r = allow({"POST"})) return *r;
        return start(p[2], user);
      }
      if (p[3] == "stop") {
        if (auto r = allow({"POST"})) return *r;
        return stop(p[2], user);
      }
      if (p[3] == "progress-stream") {
        if (auto r = allow({"GET"})) return *r;
        return stream(req, p[2], user);
      }
      if (p[3] == "status") {
        if (auto r = allow({"GET"})) return *r;
        return get_experiment(p[2], user);
      }
      if (p[3] == "events") {
        if (auto r = allow({"GET"})) return *r;
        return events(req, p[2], user);
      }
    }
    if (area == "results" && n >= 4) {
      if (n == 4 && p[3] == "results") {
        if (auto r = allow({"GET"})) return *r;
        return results(p[2], user);
      }
      if (n == 4 && p[3] == "recommendations") {
        if (auto r = allow({"GET", "POST"})) return *r;
        return recommendations(req, p[2], user);
      }
      if (n == 5 && p[3] == "download") {
        if (auto r = allow({"GET"})) return *r;
        return download(req, p[2], p[4], user);
      }
    }
    if (area == "performance" && n == 4) {
      if (auto r = allow({"GET"})) return *r;
      if (p[3] == "metrics") return performance(p[2], user, false);
      if (p[3] == "comparison") return performance(p[2], user, true);
    }
    if (area == "devices" && n <= 3) {
      if (auto r = allow({"GET"})) return *r;
      return devices(n == 3 ? p[2] : "");
    }
    if (area == "techniques" && n == 2) {
      if (auto r = allow({"GET"})) return *r;
      return techniques_list();
    }
    if (area == "datasets" && n == 2) {
      if (auto r = allow({"GET"})) return *r;
      return datasets();
    }
    if (area == "zoo" && n == 2) {
      if (auto r = allow({"GET"})) return *r;
      return zoo();
    }
    if (area == "estimate" && n == 2) {
      if (auto r = allow({"POST"})) return *r;
      return estimate(req, user);
    }
    return not_found(req);
  }

  HttpResponse not_found(const HttpRequest& req) {
    return error_response(404, "not_found", "no route " + req.method + " " + req.path, "GET /openapi.json lists every route; /docs shows them");
  }

  HttpResponse health() {
    return json_response(200, {{"status", "ok"}, {"version", options.version}, {"store", store.backend_name()},
                               {"workers_in_process", options.workers_in_process}, {"auth_required", options.auth_required}});
  }

  HttpResponse metrics() {
    std::ostringstream out;
    const HttpStats s = options.http_stats ? options.http_stats() : HttpStats{};
    out << "# HELP edgeopt_http_requests_total HTTP requests read.\n# TYPE edgeopt_http_requests_total counter\n"
        << "edgeopt_http_requests_total " << s.requests << "\n"
        << "# HELP edgeopt_http_responses_total HTTP responses by class.\n# TYPE edgeopt_http_responses_total counter\n"
        << "edgeopt_http_responses_total{class=\"4xx\"} " << s.responses_4xx << "\n"
        << "edgeopt_http_responses_total{class=\"5xx\"} " << s.responses_5xx << "\n"
        << "# HELP edgeopt_sse_clients Open event streams.\n# TYPE edgeopt_sse_clients gauge\nedgeopt_sse_clients " << s.sse_clients << "\n"
        << "# HELP edgeopt_sse_events_sent_total Events written to streams.\n# TYPE edgeopt_sse_events_sent_total counter\n"
        << "edgeopt_sse_events_sent_total " << s.sse_events_sent << "\n"
        << "# HELP edgeopt_open_connections Open HTTP connections.\n# TYPE edgeopt_open_connections gauge\nedgeopt_open_connections "
        << s.open_connections << "\n"
        << "# HELP edgeopt_experiments Experiments by status.\n# TYPE edgeopt_experiments gauge\n";
    for (const char* status : {"created", "queued", "running", "completed", "failed", "cancelled"}) {
      store::ExperimentFilter f;
      f.status = status;
      f.limit = 1;
      auto page = store.list_experiments(f);
      out << "edgeopt_experiments{status=\"" << status << "\"} " << (page ? page->total : 0) << "\n";
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = out.str();
    return r;
  }

  HttpResponse serve_web(const HttpRequest& req) {
    if (req.method != "GET" && req.method != "HEAD") return not_found(req);
    if (options.web_dir.empty()) {
      HttpResponse r;
      r.content_type = "text/html; charset=utf-8";
      r.body = "<!doctype html><meta charset=utf-8><title>EdgeOpt</title><h1>EdgeOpt</h1><p>The API is at <a href=\"/docs\">/docs</a> "
               "(<a href=\"/openapi.json\">/openapi.json</a>). The web UI is not built on this server.</p>";
      if (req.path != "/") r.status = 404;
      return r;
    }
    // Files of the built UI; any other path is the single-page app's (its router handles it).
    std::string rel = req.path.substr(1);
    if (rel.find("..") != std::string::npos || rel.find('\0') != std::string::npos) return not_found(req);
    fs::path file = fs::path(options.web_dir) / rel;
    std::error_code ec;
    if (rel.empty() || !fs::is_regular_file(file, ec)) file = fs::path(options.web_dir) / "index.html";
    if (!fs::is_regular_file(file, ec)) return not_found(req);
    static const std::map<std::string, std::string> types{{".html", "text/html; charset=utf-8"}, {".js", "text/javascript"},
                                                          {".css", "text/css"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
                                                          {".json", "application/json"}, {".ico", "image/x-icon"}, {".woff2", "font/woff2"}};
    HttpResponse r;
    r.file = file.string();
    const auto t = types.find(file.extension().string());
    r.content_type = t == types.end() ? "application/octet-stream" : t->second;
    return r;
  }

  HttpResponse list_experiments(const HttpRequest& req, const std::string& user, bool recent) {
    store::ExperimentFilter f;
    f.owner = user;
    auto q = [&](const char* key) { return req.query.count(key) ? req.query.at(key) : std::string(); };
    f.status = q("status");
    f.device = q("device");
    f.goal = q("goal");
    f.dataset = service::canonical_dataset_name(q("dataset"));
    f.query = !q("q").empty() ? q("q") : (!q("query").empty() ? q("query") : q("name"));
    auto number = [&](const char* key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) -> std::optional<std::int64_t> {
      const std::string v = q(key);
      if (v.empty()) return fallback;
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || x < lo || x > hi) return std::nullopt;
      return x;
    };
    auto limit = number("limit", recent ? 10 : 50, 1, 500);
    auto offset = number("offset", 0, 0, 1LL << 40);
    if (!limit || !offset) return error_response(422, "invalid_argument", "limit must be 1..500 and offset >= 0, whole numbers");
    f.limit = *limit;
    f.offset = *offset;
    static const std::set<std::string> statuses{"", "created", "queued", "running", "completed", "failed", "cancelled"};
    if (!statuses.count(f.status)) return error_response(422, "invalid_argument", "unknown status '" + f.status + "'", "created, queued, running, completed, failed or cancelled");
    auto page = store.list_experiments(f);
    if (!page) return from_error(page.error());
    json items = json::array();
    for (const auto& e : page->items) items.push_back(experiment_json(e, nullptr));
    if (recent) return json_response(200, items);  // the predecessor's /recent answered a plain list
    return json_response(200, {{"items", items}, {"total", page->total}, {"limit", f.limit}, {"offset", f.offset}, {"experiments", items}});
  }

  HttpResponse create(const HttpRequest& req, const std::string& user) {
    auto body = parse_body(req, false);
    if (!body) return from_error(body.error());
    auto e = service.create(user, body.value());
    if (!e) return from_error(e.error());
    return json_response(201, experiment_json(e.value(), nullptr));
  }

  HttpResponse get_experiment(const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    auto jobs = store.jobs_for(id);
    if (!jobs) return from_error(jobs.error());
    return json_response(200, experiment_json(std::get<store::Experiment>(e), &jobs.value()));
  }

  HttpResponse patch(const HttpRequest& req, const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    auto body = parse_body(req, false);
    if (!body) return from_error(body.error());
    auto updated = service.patch(id, body.value());
    if (!updated) return from_error(updated.error(), updated.error().message.find("only its name") != std::string::npos ? 409 : 0);
    return json_response(200, experiment_json(updated.value(), nullptr));
  }

  HttpResponse remove(const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    if (Status s = service.remove(id); !s) return from_error(s.error());
    return json_response(200, {{"id", id}, {"deleted", true}});
  }

  // Multipart fields of an upload: the file part written to its own file, the rest as text.
  struct Upload {
    std::string file_path;
    std::string filename;
    std::map<std::string, std::string> fields;
  };

  std::variant<Upload, HttpResponse> read_upload(const HttpRequest& req, bool file_required) {
    Upload up;
    const std::string type = req.header("content-type");
    const auto boundary = multipart_boundary(type);
    if (!file_required && type.rfind("application/x-www-form-urlencoded", 0) == 0) {
      // Fields only (a zoo model picked by name): what a form or requests' data= sends.
      auto text = read_small_file(req.body_file, 64 * 1024);
      if (!text) return error_response(413, "payload_too_large", "a form without a file must be under 64 KiB");
      up.fields = parse_urlencoded(text.value());
      return up;
    }
    if (!boundary) {
      return error_response(415, "unsupported_media_type", "uploads must be multipart/form-data, not '" + type + "'",
                            "e.g. curl -F file=@model.onnx URL, or requests.post(url, files={'file': f})");
    }
    // Whatever this writes is removed again unless the upload is returned whole.
    RemoveOnExit on_error;
    MappedFile body(req.body_file);
    if (!body.ok()) return error_response(400, "bad_request", "the upload body cannot be read");
    auto parts = parse_multipart(body.view(), *boundary);
    if (!parts) return from_error(parts.error(), 400);
    for (const MultipartPart& part : parts.value()) {
      if (part.name == "file") {
        if (!up.file_path.empty()) return error_response(400, "bad_request", "more than one 'file' part", "send one file per request");
        up.filename = safe_filename(part.filename, "upload.bin");
        // Each upload in a folder of its own: an importer may read the model's folder (ONNX external
        // data), and must never see another upload there.
        up.file_path = private_temp_file(up.filename);
        on_error.path = fs::path(up.file_path).parent_path().string();
        std::ofstream out(up.file_path, std::ios::binary | std::ios::trunc);
        out.write(part.data.data(), static_cast<std::streamsize>(part.data.size()));
        out.close();
        if (!out) {
          return error_response(507, "storage_unavailable", "the server cannot store the upload (disk full?)");
        }
        if (part.data.empty()) {
          return error_response(400, "empty_file", "the uploaded file '" + up.filename + "' is empty", "check the path you sent");
        }
      } else if (part.filename.empty()) {
        if (part.data.size() > 4096) return error_response(400, "bad_request", "form field '" + part.name + "' is longer than 4 KiB");
        up.fields[part.name] = std::string(part.data);
      }
    }
    if (file_required && up.file_path.empty()) {
      return error_response(400, "missing_file", "the upload has no 'file' part", "send the file in a multipart field named 'file'");
    }
    on_error.path.clear();
    return up;
  }

  HttpResponse upload_model(const HttpRequest& req, const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    auto up = read_upload(req, false);
    if (std::holds_alternative<HttpResponse>(up)) return std::get<HttpResponse>(up);
    Upload& u = std::get<Upload>(up);
    const RemoveOnExit cleanup{u.file_path.empty() ? std::string() : fs::path(u.file_path).parent_path().string()};
    const std::string source = u.fields.count("model_source") ? u.fields["model_source"] : "custom";
    if (source != "custom" && source != "pretrained") {
      return error_response(422, "invalid_argument", "model_source must be 'custom' or 'pretrained', not '" + source + "'");
    }
    const store::Experiment& exp = std::get<store::Experiment>(e);
    if (exp.status != "created") {
      return error_response(409, "conflict", "experiment '" + id + "' is " + exp.status + "; its model can no longer change", "create a new experiment");
    }
    Result<json> summary = Error{ErrorCode::kInternal, ""};
    if (source == "pretrained") {
      const std::string name = u.fields.count("pretrained_model_name") ? u.fields["pretrained_model_name"] : "";
      if (name.empty()) return error_response(422, "invalid_argument", "model_source 'pretrained' needs pretrained_model_name", "GET /api/zoo lists them");
      summary = service.attach_pretrained(id, name);
    } else {
      if (u.file_path.empty()) return error_response(400, "missing_file", "the upload has no 'file' part", "send the model in a multipart field named 'file'");
      summary = service.attach_model(id, u.file_path, u.filename, u.fields.count("framework") ? u.fields["framework"] : "");
    }
    if (!summary) return from_error(summary.error(), summary.error().code == ErrorCode::kInternal ? 422 : 0);
    return json_response(200, {{"experiment_id", id}, {"model", summary.value()}, {"status", "uploaded"}, {"filename", summary.value().value("file", "")}});
  }

  HttpResponse upload_dataset(const HttpRequest& req, const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    auto up = read_upload(req, true);
    if (std::holds_alternative<HttpResponse>(up)) return std::get<HttpResponse>(up);
    Upload& u = std::get<Upload>(up);
    const RemoveOnExit cleanup{u.file_path.empty() ? std::string() : fs::path(u.file_path).parent_path().string()};
    const store::Experiment& exp = std::get<store::Experiment>(e);
    if (exp.status != "created") {
      return error_response(409, "conflict", "experiment '" + id + "' is " + exp.status + "; its dataset can no longer change", "create a new experiment");
    }
    auto summary = service.attach_dataset(id, u.file_path, u.filename);
    if (!summary) return from_error(summary.error(), summary.error().code == ErrorCode::kInternal ? 422 : 0);
    return json_response(200, {{"experiment_id", id}, {"dataset", summary.value()}, {"status", "uploaded"}});
  }

  HttpResponse start(const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    const std::string status = std::get<store::Experiment>(e).status;
    auto started = service.start(id);
    if (!started) {
      const bool conflict = status == "queued" || status == "running" || started.error().message.find("limit is") != std::string::npos ||
                            started.error().message.find("no model") != std::string::npos ||
                            started.error().message.find("not uploaded") != std::string::npos;
      return from_error(started.error(), conflict ? 409 : 0);
    }
    json out = experiment_json(started.value(), nullptr);
    out["message"] = "queued; follow GET /api/optimize/" + id + "/progress-stream";
    return json_response(202, out);
  }

  HttpResponse stop(const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    auto stopped = service.stop(id);
    if (!stopped) return from_error(stopped.error(), stopped.error().code == ErrorCode::kInvalidArgument ? 409 : 0);
    return json_response(200, experiment_json(stopped.value(), nullptr));
  }

  std::int64_t last_event_id(const HttpRequest& req) {
    std::string v = req.header("last-event-id");
    if (v.empty() && req.query.count("last_event_id")) v = req.query.at("last_event_id");
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    return (v.empty() || *end != '\0' || x < 0) ? 0 : x;
  }

  HttpResponse stream(const HttpRequest& req, const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    HttpResponse r;
    r.sse = SseStream{id, last_event_id(req), std::nullopt};
    if (std::get<store::Experiment>(e).status == "created") {
      r.sse->not_started_message = "experiment '" + id + "' has not been started: POST /api/optimize/" + id + "/start";
    }
    return r;
  }

  // The event log as JSON (for clients that poll instead of streaming).
  HttpResponse events(const HttpRequest& req, const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    auto list = store.events_after(id, last_event_id(req), 1000);
    if (!list) return from_error(list.error());
    json items = json::array();
    for (const auto& ev : list.value()) items.push_back({{"id", ev.seq}, {"event", ev.type}, {"data", ev.data}, {"time", iso_time(ev.time_ms)}});
    return json_response(200, {{"experiment_id", id}, {"events", items}});
  }

  HttpResponse results(const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    const store::Experiment& exp = std::get<store::Experiment>(e);
    auto jobs = store.jobs_for(id);
    if (!jobs) return from_error(jobs.error());
    const json r = current_results(exp, jobs.value());
    const std::string device = exp.config.value("target_device", "");
    json rows = json::array();
    const json baseline = r["baseline"].is_object() ? r["baseline"] : json::object();
    if (r["baseline"].is_object()) {
      json b = result_row(r["baseline"], baseline, device);
      rows.push_back(b);
    }
    for (const json& v : r["variants"]) rows.push_back(result_row(v, baseline, device));
    return json_response(200, {{"experiment_id", id},
                               {"status", exp.status},
                               {"complete", exp.results.is_object()},
                               {"target_device", device.empty() ? json(nullptr) : json(device)},
                               {"results", rows},
                               {"recommendation", r.value("recommendation", json(nullptr))},
                               {"dataset", r.value("dataset", json(nullptr))},
                               {"classes", r.value("classes", json(nullptr))},
                               {"class_names", r.value("class_names", json(nullptr))},
                               {"host_latency_unstable", r.value("host_latency_unstable", json(nullptr))},
                               {"host_latency_note", r.value("host_latency_note", json(nullptr))},
                               {"preprocessing", r.value("preprocessing", json(nullptr))},
                               {"estimates_note", "device_estimates and target_device_estimate are estimates (docs/estimator.md); accuracy, sizes and host latency are measured"},
                               {"raw", r}});
  }

  HttpResponse recommendations(const HttpRequest& req, const std::string& id, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    const store::Experiment& exp = std::get<store::Experiment>(e);
    if (!exp.results.is_object()) {
      return error_response(409, "not_ready", "experiment '" + id + "' has no results yet (" + exp.status + ")", "wait for the run to complete");
    }
    json rec = exp.results.value("recommendation", json::object());
    json what_if = nullptr;
    if (req.method == "POST") {
      // "What if": another goal, limits or device, ranked again without a re-run.
      auto body = parse_body(req, true);
      if (!body) return from_error(body.error());
      json fields = json::object();
      for (const char* key : {"optimization_goal", "target_device", "max_accuracy_drop_percent", "max_accuracy_drop_points",
                              "max_accuracy_drop_relative_pct", "max_size_mb", "max_latency_ms", "max_memory_mb"}) {
        if (body->contains(key)) fields[key] = (*body)[key];
      }
      for (const auto& [k, v] : body->items()) {
        if (!fields.contains(k)) return error_response(422, "invalid_argument", "unknown field '" + k + "' for a what-if ranking");
      }
      auto merged = service.merged_config(exp.config, fields);
      if (!merged) return from_error(merged.error());
      const recommend::Request request = service::recommend_request(merged.value());
      auto ranked = pipeline::recommend_results(exp.results, request);
      if (!ranked) return from_error(ranked.error());
      rec = ranked.value();
      what_if = fields;
    }
    // The predecessor's list (technique_name, score, reasoning), ranked, with ours beside it.
    json list = json::array();
    int rank = 0;
    for (const json& v : rec.value("ranking", json::array())) {
      const bool winner = v.value("technique", "") == rec.value("technique", "");
      list.push_back({{"rank", ++rank},
                      {"technique_name", v.value("technique", "")},
                      {"score", v.value("score", 0.0)},
                      {"reasoning", winner ? rec.value("reasoning", "") : v.value("verdict", "")},
                      {"recommended", winner},
                      {"feasible", v.value("feasible", false)},
                      {"pareto", v.value("pareto", false)},
                      {"terms", v.value("terms", json::object())},
                      {"violations", v.value("violations", json::array())}});
    }
    return json_response(200, {{"experiment_id", id}, {"recommendations", list}, {"recommendation", rec}, {"what_if", what_if}});
  }

  HttpResponse performance(const std::string& id, const std::string& user, bool comparison) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    const store::Experiment& exp = std::get<store::Experiment>(e);
    if (!exp.results.is_object()) {
      return error_response(409, "not_ready", "experiment '" + id + "' has no measurements yet (" + exp.status + ")", "wait for the run to complete");
    }
    const json& r = exp.results;
    const json& b = r["baseline"];
    json rows = json::array();
    auto row = [&](const json& v) {
      if (v.value("status", "") != "completed") return json{{"technique", v.value("technique", "")}, {"status", v.value("status", "")}};
      json out{{"technique", v.value("technique", "")},
               {"technique_name", v.value("technique", "")},
               {"status", "completed"},
               {"host_latency_ms", v.value("host_latency_ms", json())},
               {"host_latency_ms_1thread", v.value("host_latency_ms_1thread", json())},
               {"size_bytes", v.value("size_bytes", 0)},
               {"accuracy", v.value("accuracy", 0.0)},
               {"peak_memory_bytes", v.value("peak_memory_bytes", 0)},
               {"device_estimates", v.value("device_estimates", json::array())}};
      if (comparison) {
        auto ratio = [](double a, double base) { return base > 0 ? a / base : 0.0; };
        out["vs_baseline"] = {
            {"size_ratio", ratio(v.value("size_bytes", 0.0), b.value("size_bytes", 0.0))},
            {"host_latency_p50_ratio", ratio(v["host_latency_ms"].value("p50", 0.0), b["host_latency_ms"].value("p50", 0.0))},
            {"host_latency_p50_1thread_ratio", ratio(v["host_latency_ms_1thread"].value("p50", 0.0), b["host_latency_ms_1thread"].value("p50", 0.0))},
            {"macs_ratio", ratio(v.value("macs", 0.0), b.value("macs", 0.0))},
            {"accuracy_drop_points", 100 * (b.value("accuracy", 0.0) - v.value("accuracy", 0.0))}};
      }
      return out;
    };
    rows.push_back(row(b));
    for (const json& v : r["variants"]) rows.push_back(row(v));
    return json_response(200, {{"experiment_id", id}, {comparison ? "comparison" : "metrics", rows},
                               {"note", "host latency is measured on " + r.value("measured_on", std::string("the server")) +
                                            " (all models timed in turn); device figures are estimates"}});
  }

  // The deployment package of a variant for a device: the same ZIP `edgeopt package` writes
  // (deploy::write_package), built from the run's artifacts in the store. `device` defaults to the
  // experiment's target device (else its first estimated device, else raspberry_pi_4), `format`
  // to auto (every format the device runs).
  HttpResponse download(const HttpRequest& req, const std::string& id, const std::string& technique, const std::string& user) {
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    const store::Experiment& exp = std::get<store::Experiment>(e);
    if (!exp.results.is_object()) {
      return error_response(409, "not_ready", "experiment '" + id + "' has no results yet (" + exp.status + ")", "wait for the run to complete");
    }
    const json& r = exp.results;
    json variant = nullptr;
    if (technique == "fp32" || technique == "baseline") variant = r["baseline"];
    for (const json& v : r["variants"]) {
      if (v.value("technique", "") == technique) variant = v;
    }
    if (variant.is_null()) {
      json names = json::array({"fp32"});
      for (const json& v : r["variants"]) names.push_back(v.value("technique", ""));
      return error_response(404, "not_found", "experiment '" + id + "' has no variant '" + technique + "'", "variants: " + names.dump());
    }
    if (variant.value("status", "") != "completed") {
      return error_response(409, "not_available", "variant '" + technique + "' did not complete: " + variant.value("error", std::string()));
    }
    const std::string name = variant.value("technique", technique);
    auto query = [&](const char* key) { return req.query.count(key) ? req.query.at(key) : std::string(); };
    std::string device = query("device");
    if (device.empty()) device = exp.config.value("target_device", "");
    if (device.empty() && exp.config.contains("devices") && exp.config["devices"].is_array() && !exp.config["devices"].empty()) {
      device = exp.config["devices"][0].get<std::string>();
    }
    if (device.empty()) device = "raspberry_pi_4";
    const estimator::Device* found = catalog.find(device);
    for (const estimator::Device& d : catalog.devices) {
      if (!found && std::find(d.aliases.begin(), d.aliases.end(), device) != d.aliases.end()) found = &d;
    }
    if (!found) {
      return error_response(422, "invalid_argument", "unknown device '" + device.substr(0, 64) + "'",
                            "use one of " + catalog.id_list() + " (GET /api/devices), or leave device out for the experiment's target device");
    }
    const std::string format_name = query("format").empty() ? "auto" : query("format");
    auto format = deploy::parse_format(format_name);
    if (!format) {
      return error_response(422, "invalid_argument", "unknown package format '" + format_name.substr(0, 32) + "'",
                            "use format=auto (every format the device runs), tflite, onnx or eom");
    }
    deploy::PackageRequest pr;
    pr.results_dir = "experiment " + id;
    pr.technique = name;
    pr.device = found->id;
    pr.format = format.value();
    pr.out_path = temp_path("-" + name + "-" + found->id + ".zip");
    pr.resources_dir = data_root;
    const std::string results_text = r.dump();
    pr.read_result = [&](const std::string& file) -> Result<std::string> {
      if (file == "results.json") return results_text;
      return store.get_blob(id + "/artifacts/" + file);
    };
    auto written = deploy::write_package(pr);
    if (!written) {
      std::error_code ec;
      fs::remove(pr.out_path, ec);
      const Error& err = written.error();
      if (err.code == ErrorCode::kNotFound) {
        return error_response(410, "gone", "the files of variant '" + name + "' are no longer stored: " + err.message, "run the experiment again");
      }
      return from_error(err);
    }
    HttpResponse resp;
    resp.content_type = "application/zip";
    resp.file = written->zip_path;
    resp.remove_file_after = true;
    resp.download_name = safe_filename(exp.name, "experiment") + "-" + name + "-" + found->id + ".zip";
    return resp;
  }

  // The shipped calibration plus the local one of the server's user (`edgeopt calibrate
  // --measured`, $EDGEOPT_CALIBRATION_DIR), read again per request so a fold shows at once.
  std::optional<estimator::Calibration> with_local_calibration() {
    if (!calibration) return std::nullopt;
    estimator::Calibration c = calibration.value();
    if (auto s = estimator::load_local_calibration(c, estimator::local_calibration_dir()); !s) {
      service::log_line("local calibration ignored: " + s.error().to_string());
      return calibration;
    }
    return c;
  }

  HttpResponse devices(const std::string& id) {
    const std::optional<estimator::Calibration> local = with_local_calibration();
    auto describe = [&](const estimator::Device& d) {
      json out = d.document;
      // The estimator's measured error on published measurements of this device, under each
      // validation the calibration publishes (leave one model, family or source out).
      json error = json::object();
      if (calibration) {
        for (const char* method : {"lomo", "lofo", "loso"}) {
          const json& v = calibration->validation;
          if (!v.contains(method) || !v[method].contains("per_device") || !v[method]["per_device"].is_array()) continue;
          for (const json& row : v[method]["per_device"]) {
            if (row.value("group", "") == d.id) error[method] = row;
          }
        }
      }
      out["estimator_error"] = error.empty() ? json(nullptr) : error;
      // shipped, or local (N measurements) once the server's user folded in on-board measurements.
      out["calibration"] = local ? estimator::calibration_label(local.value(), d.id) : std::string("shipped");
      if (local && local->local.count(d.id)) out["local_calibration"] = estimator::calibration_summary(local.value(), d.id);
      out["estimator_error_note"] = "the latency estimator's measured error on published measurements of this device (docs/estimator-validation.md): "
                                    "median absolute error and share within 10 % and 25 %, per validation";
      return out;
    };
    if (!id.empty()) {
      const estimator::Device* d = catalog.find(id);
      if (!d) return error_response(404, "not_found", "no device '" + id + "'", "valid devices: " + catalog.id_list());
      return json_response(200, describe(*d));
    }
    json list = json::array();
    for (const auto& d : catalog.devices) list.push_back(describe(d));
    return json_response(200, {{"devices", list}});
  }

  HttpResponse techniques_list() {
    json out = json::array();
    for (const techniques::Technique* t : techniques::registry()) {
      json params = json::array();
      for (const techniques::Param& p : t->params()) params.push_back({{"name", p.name}, {"default", p.value}, {"help", p.help}});
      out.push_back({{"id", t->id()}, {"description", t->description()}, {"requires_data", t->requires_data()}, {"parameters", params}});
    }
    return json_response(200, {{"techniques", out}});
  }

  HttpResponse datasets() {
    json list = json::array();
    for (const auto& [id, name, classes, size] : std::vector<std::tuple<std::string, std::string, int, std::string>>{
             {"mnist", "MNIST", 10, "28x28x1"}, {"fashion-mnist", "Fashion-MNIST", 10, "28x28x1"}, {"cifar10", "CIFAR-10", 10, "32x32x3"}}) {
      list.push_back({{"id", id}, {"name", name}, {"classes", classes}, {"image_size", size}, {"type", "preset"},
                      {"note", "found locally (--data-dir, $EDGEOPT_DATA_DIR, system paths) or downloaded with its checksum"}});
    }
    return json_response(200, {{"datasets", list}, {"custom", "POST /api/upload/{id}/dataset with a ZIP of one folder per class (PNG or JPEG)"}});
  }

  HttpResponse zoo() {
    json trained = service.zoo();
    json recipes = json::array();
    if (auto list = zoo::read_recipes(data_root + "/zoo"); list) {
      for (const auto& r : list.value()) {
        const bool ready = std::any_of(trained.begin(), trained.end(), [&](const json& t) { return t["name"] == r.name; });
        recipes.push_back({{"name", r.name}, {"dataset", r.dataset}, {"ready", ready}});
      }
    }
    return json_response(200, {{"models", trained}, {"recipes", recipes},
                               {"note", "models are ready to use; a recipe that is not ready is trained with `edgeopt zoo train NAME --out ZOO_DIR`"}});
  }

  HttpResponse estimate(const HttpRequest& req, const std::string& user) {
    auto body = parse_body(req, false);
    if (!body) return from_error(body.error());
    const json& b = body.value();
    static const std::set<std::string> known{"experiment_id", "technique", "device", "runtime", "precision", "threads", "cpu_mhz"};
    for (const auto& [k, v] : b.items()) {
      if (!known.count(k)) return error_response(422, "invalid_argument", "unknown field '" + k + "'");
    }
    if (!b.contains("experiment_id") || !b["experiment_id"].is_string()) return error_response(422, "invalid_argument", "'experiment_id' (a string) is required");
    if (!b.contains("device") || !b["device"].is_string()) return error_response(422, "invalid_argument", "'device' (a string) is required", "valid devices: " + catalog.id_list());
    const std::string id = b["experiment_id"].get<std::string>();
    auto e = owned(id, user);
    if (std::holds_alternative<HttpResponse>(e)) return std::get<HttpResponse>(e);
    const store::Experiment& exp = std::get<store::Experiment>(e);
    std::string technique = "fp32";  // the uploaded model, or the baseline once a run has made it
    if (b.contains("technique")) {
      if (!b["technique"].is_string()) return error_response(422, "invalid_argument", "'technique' must be a string");
      if (!b["technique"].get<std::string>().empty()) technique = b["technique"].get<std::string>();
    }
    std::string key = technique == "fp32" && exp.results.is_null() ? exp.model.value("blob", "") : id + "/artifacts/" + technique + ".eom";
    if (technique == "fp32" && !exp.results.is_null()) key = id + "/artifacts/fp32.eom";
    if (key.empty()) return error_response(409, "not_ready", "experiment '" + id + "' has no model yet");
    const std::string path = private_temp_file(fs::path(key).filename().string());
    const RemoveOnExit cleanup{fs::path(path).parent_path().string()};
    if (Status s = store.get_blob_to_file(key, path); !s) return from_error(s.error());
    auto model = pipeline_load(path);
    if (!model) return from_error(model.error());
    if (!calibration) return error_response(503, "unavailable", "the estimator's calibration is not installed on this server");
    estimator::EstimateOptions eo;
    eo.device = b["device"].get<std::string>();
    if (!catalog.find(eo.device)) return error_response(422, "invalid_argument", "unknown device '" + eo.device + "'", "valid devices: " + catalog.id_list());
    eo.device = catalog.find(eo.device)->id;
    if (b.contains("runtime")) {
      if (!b["runtime"].is_string()) return error_response(422, "invalid_argument", "'runtime' must be a string");
      eo.runtime = b["runtime"].get<std::string>();
    }
    // Unless the request names one: the variant's recorded precision, else what the file computes in
    // (an uploaded int8 QDQ model is estimated as int8, as `edgeopt estimate` does).
    std::string precision = estimator::precision_name(estimator::precision_of_graph(model.value()).precision);
    std::string precision_source = "file";
    if (b.contains("precision")) {
      if (!b["precision"].is_string()) return error_response(422, "invalid_argument", "'precision' must be a string");
      precision = b["precision"].get<std::string>();
      precision_source = "request";
    } else if (exp.results.is_object()) {
      for (const json& v : exp.results["variants"]) {
        if (v.value("technique", "") == technique) {
          precision = v.value("precision", "fp32");
          precision_source = "results";
        }
      }
    }
    auto p = estimator::precision_from_name(precision);
    if (!p) return error_response(422, "invalid_argument", "unknown precision '" + precision + "'", "fp32, fp16, int8 or int4");
    eo.precision = *p;
    if (b.contains("threads")) {
      if (!b["threads"].is_number_integer() || b["threads"].get<std::int64_t>() < 0 || b["threads"].get<std::int64_t>() > 256) {
        return error_response(422, "invalid_argument", "'threads' must be a whole number 0..256");
      }
      eo.threads = b["threads"].get<int>();
    }
    if (b.contains("cpu_mhz")) {
      if (!b["cpu_mhz"].is_number() || !std::isfinite(b["cpu_mhz"].get<double>()) || b["cpu_mhz"].get<double>() <= 0 || b["cpu_mhz"].get<double>() > 10000) {
        return error_response(422, "invalid_argument", "'cpu_mhz' must be a number above 0 and at most 10000");
      }
      eo.cpu_mhz = b["cpu_mhz"].get<double>();
    }
    auto est = estimator::estimate_graph(model.value(), catalog, with_local_calibration().value(), eo);
    if (!est) return from_error(est.error());
    json out = estimator::estimate_to_json(est.value());
    out["technique"] = technique;
    out["precision_source"] = precision_source;
    out["is_estimate"] = true;
    return json_response(200, out);
  }

  static Result<ir::Graph> pipeline_load(const std::string& path) {
    auto m = pipeline::load_model(path);
    if (!m) return m.error();
    return std::move(m.value().graph);
  }
};

Api::Api(service::Service& service, ApiOptions options) : impl_(std::make_unique<Impl>(service, std::move(options))) {}
Api::~Api() = default;

bool Api::is_upload(const std::string& method, const std::string& path) {
  return method == "POST" && path.rfind("/api/upload/", 0) == 0;
}

HttpResponse Api::handle(HttpRequest& request) {
  try {
    return impl_->route(request);
  } catch (const Failure& f) {
    return from_error(f.error);
  } catch (const json::exception& e) {
    return error_response(422, "invalid_argument", std::string("a field has the wrong type: ") + e.what());
  } catch (const std::bad_alloc&) {
    return error_response(503, "unavailable", "the server ran out of memory for this request", "try a smaller upload");
  } catch (const std::exception& e) {
    service::log_line(std::string("api: internal error on ") + request.method + " " + request.path + ": " + e.what());
    return error_response(500, "internal", std::string("internal error: ") + e.what(), "please report this");
  }
}

}  // namespace edgeopt::server
