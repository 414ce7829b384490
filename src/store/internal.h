// What the two store backends share: the embedded migrations, blob-key rules, ids, and the
// validation every backend applies the same way. Not part of the store's public interface.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace edgeopt::store::detail {

// One versioned schema step: src/store/migrations/<backend>/<NNNN>_<name>.sql, embedded at build
// time by cmake/embed_migrations.cmake (generated store_migrations.cpp).
struct Migration {
  int version = 0;
  const char* name = "";
  const char* sql = "";
};

const std::vector<Migration>& sqlite_migrations();
const std::vector<Migration>& postgres_migrations();

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& folder);
Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url);

// `bytes` random bytes from /dev/urandom (std::random_device if it cannot be read).
std::string random_bytes(std::size_t bytes);
// `bytes` random bytes as lowercase hex (temporary file names).
std::string random_hex(std::size_t bytes);
// 20 characters of lowercase base32 (100 random bits): URL-safe, and safe as a folder name on
// case-insensitive file systems (a blob key starts with it).
std::string new_experiment_id();

// Blob keys are relative paths of '/'-separated components: no empty, "." or ".." component, no
// leading '/', no NUL, control character or backslash, at most kMaxKeyBytes. Fails with
// kInvalidArgument saying what is wrong.
inline constexpr std::size_t kMaxKeyBytes = 1024;
void check_blob_key(std::string_view key);
// A prefix for list/delete: empty (every blob), or a key's leading part (the last component may be
// partial, "<id>/art"). Same rules as a key, except that it may be empty or end with '/'.
void check_blob_prefix(std::string_view prefix);

// Shared argument checks (kInvalidArgument on violation).
void check_experiment_status(const std::string& status);
void check_job_kind_and_status(const Job& job);
void check_finish_status(const std::string& status);
void check_claim_args(const std::string& worker, std::int64_t lease_ms, int max_attempts);
void check_filter(const ExperimentFilter& filter);
void check_progress(double progress);

// A file written under a temporary name in `temp_dir` (same file system as the target) and
// renamed into place by commit(): readers see the old file or the whole new one, never a part.
// Removed again if commit() is never reached. Fails with kIo.
class AtomicFile {
 public:
  AtomicFile(const std::filesystem::path& temp_dir, std::filesystem::path target);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  void write(const char* data, std::size_t size);
  // fsyncs, then renames; creates the target's folder first when create_parent is set.
  void commit(bool create_parent);

 private:
  std::filesystem::path temp_;
  std::filesystem::path target_;
  int fd_ = -1;
  bool committed_ = false;
};

// Reads the file at `path` in pieces of up to `chunk` bytes, each full but the last, handing each
// to `sink`. Fails with kNotFound when it does not exist, kIo otherwise.
void read_file_chunks(const std::string& path, std::size_t chunk,
                      const std::function<void(const char*, std::size_t)>& sink);

// JSON stored as text; a stored value that does not parse is reported, not thrown past the API.
nlohmann::json parse_stored_json(const std::string& text, const char* column);

// The reason written on a job whose lease expired once too often.
std::string exhausted_lease_reason(int max_attempts);

}  // namespace edgeopt::store::detail
