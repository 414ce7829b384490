// open_store, ids, time, and the checks both backends apply identically.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "store/internal.h"

namespace edgeopt::store {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Store>> open_store(const std::string& location) {
  if (location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0) {
    return detail::open_postgres_store(location);
  }
  if (location.empty()) {
    return Error{ErrorCode::kInvalidArgument, "no store location given",
                 "pass a folder (--store DIR) or a PostgreSQL URL (--database postgresql://user@host/db)"};
  }
  return detail::open_sqlite_store(location);
}

namespace detail {

std::string random_bytes(std::size_t bytes) {
  std::string out(bytes, '\0');
  if (std::FILE* f = std::fopen("/dev/urandom", "rb")) {
    const std::size_t got = std::fread(out.data(), 1, bytes, f);
    std::fclose(f);
    if (got == bytes) return out;
  }
  std::random_device device;  // the OS's entropy source on Linux as well, when /dev/urandom is not mounted
  for (auto& c : out) c = static_cast<char>(device() & 0xFF);
  return out;
}

std::string new_experiment_id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  const std::string raw = random_bytes(13);  // 104 bits, 100 of them used
  std::string id;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char byte : raw) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && id.size() < 20) {
      id.push_back(kAlphabet[(buffer >> (bits - 5)) & 31U]);
      bits -= 5;
    }
  }
  return id;
}

namespace {

void check_key_text(std::string_view key, bool is_prefix) {
  const char* what = is_prefix ? "blob prefix" : "blob key";
  if (key.size() > kMaxKeyBytes) {
    fail(ErrorCode::kInvalidArgument, std::string(what) + " is " + std::to_string(key.size()) + " bytes long",
         "keys are at most " + std::to_string(kMaxKeyBytes) + " bytes");
  }
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '\\') {
      fail(ErrorCode::kInvalidArgument, std::string(what) + " contains a NUL, control character or backslash",
           "keys are '/'-separated relative paths like '<experiment id>/model.onnx'");
    }
  }
  if (!key.empty() && key.front() == '/') {
    fail(ErrorCode::kInvalidArgument, std::string(what) + " '" + std::string(key) + "' is an absolute path",
         "keys are relative, like '<experiment id>/model.onnx'");
  }
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t slash = key.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? key.size() : slash;
    const std::string_view part = key.substr(start, end - start);
    const bool last = slash == std::string_view::npos;
    // A prefix may end with '/' (its last component is then empty) or be empty altogether.
    const bool allowed_empty = is_prefix && last;
    if ((part.empty() && !allowed_empty) || part == "." || part == "..") {
      fail(ErrorCode::kInvalidArgument,
           std::string(what) + " '" + std::string(key) + "' has an empty, '.' or '..' component",
           "keys are '/'-separated relative paths without '..', like '<experiment id>/model.onnx'");
    }
    if (last) break;
    start = slash + 1;
  }
}

}  // namespace

void check_blob_key(std::string_view key) {
  if (key.empty()) fail(ErrorCode::kInvalidArgument, "empty blob key", "name the blob, like '<experiment id>/model.onnx'");
  check_key_text(key, false);
}

void check_blob_prefix(std::string_view prefix) { check_key_text(prefix, true); }

void check_experiment_status(const std::string& status) {
  static const char* const kStatuses[] = {"created", "queued", "running", "completed", "failed", "cancelled"};
  for (const char* s : kStatuses) {
    if (status == s) return;
  }
  fail(ErrorCode::kInvalidArgument, "unknown experiment status '" + status + "'",
       "use created, queued, running, completed, failed or cancelled");
}

void check_job_kind_and_status(const Job& job) {
  if (job.kind != "baseline" && job.kind != "technique" && job.kind != "final") {
    fail(ErrorCode::kInvalidArgument, "unknown job kind '" + job.kind + "'", "use baseline, technique or final");
  }
  if (job.kind == "technique" && job.technique.empty()) {
    fail(ErrorCode::kInvalidArgument, "a technique job needs its technique's name", "set Job::technique");
  }
  if (job.experiment_id.empty()) fail(ErrorCode::kInvalidArgument, "a job needs its experiment's id", "");
  if (job.phase < 0) fail(ErrorCode::kInvalidArgument, "a job's phase is negative", "phases count up from 0");
}

void check_finish_status(const std::string& status) {
  if (status != "completed" && status != "failed" && status != "cancelled") {
    fail(ErrorCode::kInvalidArgument, "a job cannot finish as '" + status + "'", "use completed, failed or cancelled");
  }
}

void check_claim_args(const std::string& worker, std::int64_t lease_ms, int max_attempts) {
  if (worker.empty()) fail(ErrorCode::kInvalidArgument, "a worker claiming a job needs a name", "");
  if (lease_ms <= 0) fail(ErrorCode::kInvalidArgument, "a lease must last longer than 0 ms", "");
  if (max_attempts < 1) fail(ErrorCode::kInvalidArgument, "max_attempts must be at least 1", "");
}

void check_filter(const ExperimentFilter& filter) {
  if (filter.limit < 0 || filter.offset < 0) {
    fail(ErrorCode::kInvalidArgument, "limit and offset must not be negative", "");
  }
  if (!filter.status.empty()) check_experiment_status(filter.status);
}

void check_progress(double progress) {
  if (!std::isfinite(progress) || progress < 0.0 || progress > 1.0) {
    fail(ErrorCode::kInvalidArgument, "progress must lie in 0..1", "");
  }
}

nlohmann::json parse_stored_json(const std::string& text, const char* column) {
  auto value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    fail(ErrorCode::kCorruptFile, std::string("the store holds invalid JSON in column '") + column + "'",
         "the database was edited by hand or damaged; restore it from a backup");
  }
  return value;
}

std::string exhausted_lease_reason(int max_attempts) {
  return "its lease expired on each of " + std::to_string(max_attempts) +
         " attempts (max_attempts): the worker holding it stopped sending heartbeats (it crashed, was killed or "
         "lost the database); last holder: ";
}

}  // namespace detail
}  // namespace edgeopt::store
