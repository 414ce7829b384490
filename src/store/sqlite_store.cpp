// The SQLite backend: one machine. <folder>/edgeopt.db (WAL) holds experiments, jobs, events and
// tokens; blobs are files under <folder>/blobs/, written via <folder>/tmp/ and renamed into place.
// One connection per Store, guarded by a mutex (calls from the HTTP thread and the worker threads
// take turns; each is short). Several processes may open the same folder (serve + worker): every
// write runs in BEGIN IMMEDIATE, so the claim's read-then-update is one atomic step across
// processes, and the busy timeout makes the others wait instead of failing.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include "store/internal.h"

namespace edgeopt::store::detail {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 10000;
constexpr std::size_t kCopyChunk = 1 << 20;

[[noreturn]] void fail_sqlite(sqlite3* db, int rc, const std::string& what) {
  const int primary = rc & 0xFF;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    fail(ErrorCode::kIo,
         "the SQLite database stayed locked for over " + std::to_string(kBusyTimeoutMs / 1000) + " s (" + what + ")",
         "another process holds a long write transaction on this store folder; retry, or stop the other process");
  }
  if (primary == SQLITE_FULL) fail(ErrorCode::kIo, "the disk is full (" + what + ")", "free disk space and retry");
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    fail(ErrorCode::kCorruptFile, "the store's edgeopt.db is damaged or not a database (" + what + ")",
         "restore the store folder from a backup, or point --store at another folder");
  }
  fail(ErrorCode::kIo, "SQLite: " + what + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)),
       "check that the store folder is writable and on a local disk");
}

// A cached prepared statement in use: binds by position, resets itself when the scope ends.
class Query {
 public:
  Query(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Query& bind(std::int64_t v) { return check(sqlite3_bind_int64(stmt_, ++index_, v)); }
  Query& bind(int v) { return bind(static_cast<std::int64_t>(v)); }
  Query& bind(double v) { return check(sqlite3_bind_double(stmt_, ++index_, v)); }
  Query& bind(std::string_view v) {
    return check(sqlite3_bind_text(stmt_, ++index_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Query& bind(const std::string& v) { return bind(std::string_view(v)); }
  Query& bind(const char* v) { return bind(std::string_view(v)); }
  Query& bind(const nlohmann::json& v) { return bind(v.dump()); }

  // True while there is a row to read.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail_sqlite(db_, rc, sqlite3_sql(stmt_));
  }
  void run() {
    while (step()) {
    }
  }

  std::int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double f64(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p == nullptr ? std::string() : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  nlohmann::json json(int col, const char* name) const { return parse_stored_json(text(col), name); }

 private:
  Query& check(int rc) {
    if (rc != SQLITE_OK) fail_sqlite(db_, rc, "binding a parameter");
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int index_ = 0;
};

constexpr const char* kExperimentColumns =
    "id, owner, name, status, config, model, dataset, results, error, progress, created_ms, updated_ms";
constexpr const char* kJobColumns =
    "id, experiment_id, kind, technique, phase, status, worker, attempts, lease_expires_ms, result, error";

Experiment read_experiment(const Query& q) {
  Experiment e;
  e.id = q.text(0);
  e.owner = q.text(1);
  e.name = q.text(2);
  e.status = q.text(3);
  e.config = q.json(4, "experiments.config");
  e.model = q.json(5, "experiments.model");
  e.dataset = q.json(6, "experiments.dataset");
  e.results = q.json(7, "experiments.results");
  e.error = q.text(8);
  e.progress = q.f64(9);
  e.created_ms = q.i64(10);
  e.updated_ms = q.i64(11);
  return e;
}

Job read_job(const Query& q) {
  Job j;
  j.id = q.i64(0);
  j.experiment_id = q.text(1);
  j.kind = q.text(2);
  j.technique = q.text(3);
  j.phase = static_cast<int>(q.i64(4));
  j.status = q.text(5);
  j.worker = q.text(6);
  j.attempts = static_cast<int>(q.i64(7));
  j.lease_expires_ms = q.i64(8);
  j.result = q.json(9, "jobs.result");
  j.error = q.text(10);
  return j;
}

// Writes `bytes`, or the file at source_path when it is non-empty, to `target` atomically.
void write_blob_file(const fs::path& temp_dir, const fs::path& target, std::string_view bytes,
                     const std::string& source_path, bool create_parent) {
  AtomicFile out(temp_dir, target);
  if (source_path.empty()) {
    out.write(bytes.data(), bytes.size());
  } else {
    read_file_chunks(source_path, kCopyChunk, [&](const char* data, std::size_t size) { out.write(data, size); });
  }
  out.commit(create_parent);
}

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& folder) {
    return capture([&]() -> std::unique_ptr<Store> {
      auto store = std::unique_ptr<SqliteStore>(new SqliteStore(folder));
      store->connect();
      store->migrate();
      return store;
    });
  }

  ~SqliteStore() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    if (db_ != nullptr) sqlite3_close(db_);
  }

  std::string backend_name() const override { return "sqlite"; }

  Result<int> schema_version() override {
    return locked([&] {
      auto q = query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      q.step();
      return static_cast<int>(q.i64(0));
    });
  }

  // ---- experiments ----

  Result<Experiment> create_experiment(Experiment e) override {
    return locked([&] {
      check_experiment_status(e.status);
      check_progress(e.progress);
      e.id = new_experiment_id();
      e.created_ms = e.updated_ms = now_ms();
      write_txn([&] {
        query("INSERT INTO experiments (id, owner, name, status, config, model, dataset, results, error, progress, "
              "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(e.id).bind(e.owner).bind(e.name).bind(e.status).bind(e.config).bind(e.model).bind(e.dataset)
            .bind(e.results).bind(e.error).bind(e.progress).bind(e.created_ms).bind(e.updated_ms)
            .run();
      });
      return e;
    });
  }

  Result<std::optional<Experiment>> get_experiment(const std::string& id) override {
    return locked([&]() -> std::optional<Experiment> {
      auto q = query(std::string("SELECT ") + kExperimentColumns + " FROM experiments WHERE id = ?");
      q.bind(id);
      if (!q.step()) return std::nullopt;
      return read_experiment(q);
    });
  }

  Result<ExperimentPage> list_experiments(const ExperimentFilter& f) override {
    return locked([&] {
      check_filter(f);
      static const std::string kWhere =
          " FROM experiments WHERE (?1 = '' OR owner = ?1) AND (?2 = '' OR status = ?2)"
          " AND (?3 = '' OR json_extract(config, '$.target_device') = ?3)"
          " AND (?4 = '' OR json_extract(config, '$.optimization_goal') = ?4)"
          " AND (?5 = '' OR json_extract(config, '$.dataset_name') = ?5)"
          " AND (?6 = '' OR instr(lower(name), lower(?6)) > 0)";
      ExperimentPage page;
      read_txn([&] {
        {
          auto q = query("SELECT COUNT(*)" + kWhere);
          q.bind(f.owner).bind(f.status).bind(f.device).bind(f.goal).bind(f.dataset).bind(f.query);
          q.step();
          page.total = q.i64(0);
        }
        auto q = query(std::string("SELECT ") + kExperimentColumns + kWhere +
                       " ORDER BY created_ms DESC, id DESC LIMIT ?7 OFFSET ?8");
        q.bind(f.owner).bind(f.status).bind(f.device).bind(f.goal).bind(f.dataset).bind(f.query).bind(f.limit)
            .bind(f.offset);
        while (q.step()) page.items.push_back(read_experiment(q));
      });
      return page;
    });
  }

  Status update_experiment(const Experiment& e) override {
    return locked([&] {
      check_progress(e.progress);
      write_txn([&] {
        query("UPDATE experiments SET name = ?, config = ?, model = ?, dataset = ?, results = ?, "
              "error = ?, progress = ?, updated_ms = ? WHERE id = ?")
            .bind(e.name).bind(e.config).bind(e.model).bind(e.dataset).bind(e.results).bind(e.error)
            .bind(e.progress).bind(now_ms()).bind(e.id)
            .run();
        if (sqlite3_changes(db_) == 0) fail_unknown_experiment(e.id);
      });
      return Unit{};
    });
  }

  Result<bool> set_experiment_status(const std::string& id, const std::vector<std::string>& from,
                                     const std::string& to, const std::string& error) override {
    return locked([&] {
      check_experiment_status(to);
      bool changed = false;
      write_txn([&] {
        std::string current;
        {
          auto q = query("SELECT status FROM experiments WHERE id = ?");
          q.bind(id);
          if (!q.step()) fail_unknown_experiment(id);
          current = q.text(0);
        }
        if (!from.empty() && std::find(from.begin(), from.end(), current) == from.end()) return;
        query("UPDATE experiments SET status = ?, error = CASE WHEN ? = '' THEN error ELSE ? END, updated_ms = ? "
              "WHERE id = ?")
            .bind(to).bind(error).bind(error).bind(now_ms()).bind(id)
            .run();
        changed = true;
      });
      return changed;
    });
  }

  Status set_experiment_progress(const std::string& id, double progress) override {
    return locked([&] {
      check_progress(progress);
      write_txn([&] {
        query("UPDATE experiments SET progress = ?, updated_ms = ? WHERE id = ?").bind(progress).bind(now_ms()).bind(id)
            .run();
        if (sqlite3_changes(db_) == 0) fail_unknown_experiment(id);
      });
      return Unit{};
    });
  }

  Status delete_experiment(const std::string& id) override {
    auto deleted = locked([&] {
      bool found = false;
      write_txn([&] {  // jobs and events go with it (ON DELETE CASCADE)
        query("DELETE FROM experiments WHERE id = ?").bind(id).run();
        found = sqlite3_changes(db_) > 0;
      });
      return found;
    });
    if (!deleted) return deleted.error();
    if (!*deleted) return unknown_experiment(id);
    // The row goes first: a crash in between leaves unreferenced files, never a listed experiment
    // whose files are gone. (Ids we assign are always valid key components.)
    return capture([&] {
      check_blob_key(id);
      delete_blob_files(id + "/");
      return Unit{};
    });
  }

  // ---- blobs ----

  Status put_blob(const std::string& key, std::string_view bytes) override {
    return capture([&] {
      check_blob_key(key);
      write_blob_file(tmp_, blob_path(key), bytes, {}, true);
      return Unit{};
    });
  }

  Status put_blob_file(const std::string& key, const std::string& path) override {
    return capture([&] {
      check_blob_key(key);
      if (path.empty()) fail(ErrorCode::kInvalidArgument, "no file to store", "");
      write_blob_file(tmp_, blob_path(key), {}, path, true);
      return Unit{};
    });
  }

  Result<std::string> get_blob(const std::string& key) override {
    return capture([&] {
      check_blob_key(key);
      std::string bytes;
      try {
        read_file_chunks(blob_path(key).string(), kCopyChunk,
                         [&](const char* data, std::size_t size) { bytes.append(data, size); });
      } catch (const Failure& f) {
        if (f.error.code == ErrorCode::kNotFound) fail(ErrorCode::kNotFound, "no blob '" + key + "'", "");
        throw;
      }
      return bytes;
    });
  }

  Status get_blob_to_file(const std::string& key, const std::string& path) override {
    return capture([&] {
      check_blob_key(key);
      if (path.empty()) fail(ErrorCode::kInvalidArgument, "no file to write the blob to", "");
      const fs::path source = blob_path(key);
      if (!fs::is_regular_file(source)) fail(ErrorCode::kNotFound, "no blob '" + key + "'", "");
      const fs::path target = fs::absolute(path);
      std::error_code ec;
      if (!fs::is_directory(target.parent_path(), ec)) {
        fail(ErrorCode::kIo, "the folder of '" + path + "' does not exist", "create it first");
      }
      write_blob_file(target.parent_path(), target, {}, source.string(), false);
      return Unit{};
    });
  }

  Result<std::vector<std::string>> list_blobs(const std::string& prefix) override {
    return capture([&] {
      check_blob_prefix(prefix);
      std::vector<std::string> keys;
      const std::size_t slash = prefix.rfind('/');
      const fs::path start = slash == std::string::npos ? blobs_ : blobs_ / prefix.substr(0, slash);
      std::error_code ec;
      if (!fs::is_directory(start, ec)) return keys;
      for (fs::recursive_directory_iterator it(start, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        std::string key = fs::relative(it->path(), blobs_, ec).generic_string();
        if (!ec && key.rfind(prefix, 0) == 0) keys.push_back(std::move(key));
      }
      if (ec) fail(ErrorCode::kIo, "cannot list blobs under '" + start.string() + "': " + ec.message(), "");
      std::sort(keys.begin(), keys.end());
      return keys;
    });
  }

  Status delete_blobs(const std::string& prefix) override {
    return capture([&] {
      check_blob_prefix(prefix);
      delete_blob_files(prefix);
      return Unit{};
    });
  }

  // ---- jobs ----

  Status enqueue_jobs(const std::vector<Job>& jobs) override {
    return locked([&] {
      for (const Job& job : jobs) check_job_kind_and_status(job);
      write_txn([&] {
        const std::int64_t now = now_ms();
        for (const Job& job : jobs) {
          {
            auto q = query("SELECT 1 FROM experiments WHERE id = ?");
            q.bind(job.experiment_id);
            if (!q.step()) fail_unknown_experiment(job.experiment_id);
          }
          query("INSERT INTO jobs (experiment_id, kind, technique, phase, status, worker, attempts, lease_expires_ms, "
                "result, error, created_ms, updated_ms) VALUES (?, ?, ?, ?, 'queued', '', 0, 0, 'null', '', ?, ?)")
              .bind(job.experiment_id).bind(job.kind).bind(job.technique).bind(job.phase).bind(now).bind(now)
              .run();
        }
      });
      return Unit{};
    });
  }

  Result<std::optional<Job>> claim_job(const std::string& worker, std::int64_t lease_ms, int max_attempts) override {
    return locked([&]() -> std::optional<Job> {
      check_claim_args(worker, lease_ms, max_attempts);
      std::optional<Job> claimed;
      write_txn([&] {
        const std::int64_t now = now_ms();
        query("UPDATE jobs SET status = 'failed', error = ? || worker, lease_expires_ms = 0, updated_ms = ? "
              "WHERE status = 'running' AND lease_expires_ms <= ? AND attempts >= ?")
            .bind(exhausted_lease_reason(max_attempts)).bind(now).bind(now).bind(max_attempts)
            .run();
        std::int64_t id = 0;
        {
          auto q = query(
              "SELECT j.id FROM jobs j WHERE (j.status = 'queued' AND NOT EXISTS ("
              "  SELECT 1 FROM jobs p WHERE p.experiment_id = j.experiment_id AND p.phase < j.phase"
              "  AND p.status IN ('queued', 'running')))"
              " OR (j.status = 'running' AND j.lease_expires_ms <= ? AND j.attempts < ?) ORDER BY j.id LIMIT 1");
          q.bind(now).bind(max_attempts);
          if (!q.step()) return;
          id = q.i64(0);
        }
        auto q = query(std::string("UPDATE jobs SET status = 'running', worker = ?, attempts = attempts + 1, "
                                   "lease_expires_ms = ?, error = '', updated_ms = ? WHERE id = ? RETURNING ") +
                       kJobColumns);
        q.bind(worker).bind(now + lease_ms).bind(now).bind(id);
        if (q.step()) claimed = read_job(q);
        q.run();
      });
      return claimed;
    });
  }

  Result<bool> heartbeat(std::int64_t job_id, const std::string& worker, std::int64_t lease_ms) override {
    return locked([&] {
      if (lease_ms <= 0) fail(ErrorCode::kInvalidArgument, "a lease must last longer than 0 ms", "");
      bool held = false;
      write_txn([&] {
        const std::int64_t now = now_ms();
        query("UPDATE jobs SET lease_expires_ms = ?, updated_ms = ? WHERE id = ? AND worker = ? AND status = 'running'")
            .bind(now + lease_ms).bind(now).bind(job_id).bind(worker)
            .run();
        held = sqlite3_changes(db_) > 0;
      });
      return held;
    });
  }

  Result<bool> finish_job(std::int64_t job_id, const std::string& worker, const std::string& status,
                          const nlohmann::json& result, const std::string& error) override {
    return locked([&] {
      check_finish_status(status);
      bool held = false;
      write_txn([&] {
        query("UPDATE jobs SET status = ?, result = ?, error = ?, lease_expires_ms = 0, updated_ms = ? "
              "WHERE id = ? AND worker = ? AND status = 'running'")
            .bind(status).bind(result).bind(error).bind(now_ms()).bind(job_id).bind(worker)
            .run();
        held = sqlite3_changes(db_) > 0;
      });
      return held;
    });
  }

  Result<std::vector<Job>> jobs_for(const std::string& experiment_id) override {
    return locked([&] {
      std::vector<Job> jobs;
      auto q = query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE experiment_id = ? ORDER BY phase, id");
      q.bind(experiment_id);
      while (q.step()) jobs.push_back(read_job(q));
      return jobs;
    });
  }

  Result<int> cancel_jobs(const std::string& experiment_id) override {
    return locked([&] {
      int changed = 0;
      write_txn([&] {
        query("UPDATE jobs SET status = 'cancelled', error = 'cancelled', lease_expires_ms = 0, updated_ms = ? "
              "WHERE experiment_id = ? AND status IN ('queued', 'running')")
            .bind(now_ms()).bind(experiment_id)
            .run();
        changed = sqlite3_changes(db_);
      });
      return changed;
    });
  }

  // ---- events ----

  Result<std::int64_t> append_event(const std::string& experiment_id, const std::string& type,
                                    const nlohmann::json& data) override {
    return locked([&] {
      std::int64_t seq = 0;
      write_txn([&] {  // the write lock serialises appenders, also across processes
        {
          auto q = query("UPDATE experiments SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq");
          q.bind(experiment_id);
          if (!q.step()) fail_unknown_experiment(experiment_id);
          seq = q.i64(0);
          q.run();
        }
        query("INSERT INTO events (experiment_id, seq, type, data, time_ms) VALUES (?, ?, ?, ?, ?)")
            .bind(experiment_id).bind(seq).bind(type).bind(data).bind(now_ms())
            .run();
      });
      return seq;
    });
  }

  Result<std::vector<Event>> events_after(const std::string& experiment_id, std::int64_t after_seq,
                                          std::int64_t limit) override {
    return locked([&] {
      if (limit < 0) fail(ErrorCode::kInvalidArgument, "limit must not be negative", "");
      std::vector<Event> events;
      auto q = query("SELECT seq, type, data, time_ms FROM events WHERE experiment_id = ? AND seq > ? "
                     "ORDER BY seq LIMIT ?");
      q.bind(experiment_id).bind(after_seq).bind(limit);
      while (q.step()) {
        events.push_back(Event{q.i64(0), experiment_id, q.text(1), q.json(2, "events.data"), q.i64(3)});
      }
      return events;
    });
  }

  // ---- tokens ----

  Status add_token(const Token& token) override {
    return locked([&] {
      if (token.name.empty() || token.hash_hex.empty()) {
        fail(ErrorCode::kInvalidArgument, "a token needs a name and a hash", "");
      }
      write_txn([&] {
        {
          auto q = query("SELECT 1 FROM tokens WHERE name = ? OR hash_hex = ?");
          q.bind(token.name).bind(token.hash_hex);
          if (q.step()) fail_duplicate_token(token.name);
        }
        query("INSERT INTO tokens (name, hash_hex, created_ms) VALUES (?, ?, ?)")
            .bind(token.name).bind(token.hash_hex).bind(token.created_ms != 0 ? token.created_ms : now_ms())
            .run();
      });
      return Unit{};
    });
  }

  Result<std::optional<Token>> find_token_by_hash(const std::string& hash_hex) override {
    return locked([&]() -> std::optional<Token> {
      auto q = query("SELECT name, hash_hex, created_ms FROM tokens WHERE hash_hex = ?");
      q.bind(hash_hex);
      if (!q.step()) return std::nullopt;
      return Token{q.text(0), q.text(1), q.i64(2)};
    });
  }

  Result<std::vector<Token>> list_tokens() override {
    return locked([&] {
      std::vector<Token> tokens;
      auto q = query("SELECT name, hash_hex, created_ms FROM tokens ORDER BY name");
      while (q.step()) tokens.push_back(Token{q.text(0), q.text(1), q.i64(2)});
      return tokens;
    });
  }

  Status delete_token(const std::string& name) override {
    return locked([&] {
      write_txn([&] {
        query("DELETE FROM tokens WHERE name = ?").bind(name).run();
        if (sqlite3_changes(db_) == 0) {
          fail(ErrorCode::kNotFound, "no token named '" + name + "'", "list them with `edgeopt tokens list`");
        }
      });
      return Unit{};
    });
  }

 private:
  explicit SqliteStore(const std::string& folder)
      : dir_(fs::absolute(folder)), blobs_(dir_ / "blobs"), tmp_(dir_ / "tmp") {}

  void connect() {
    std::error_code ec;
    if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec)) {
      fail(ErrorCode::kInvalidArgument, "the store location '" + dir_.string() + "' is a file, not a folder",
           "pass a folder for --store (it is created if missing)");
    }
    for (const fs::path& p : {dir_, blobs_, tmp_}) {
      fs::create_directories(p, ec);
      if (ec) {
        fail(ErrorCode::kIo, "cannot create the store folder '" + p.string() + "': " + ec.message(),
             "choose a writable folder with --store");
      }
    }
    remove_stale_temp_files();
    const std::string path = (dir_ / "edgeopt.db").string();
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   nullptr);
    if (rc != SQLITE_OK) fail_sqlite(db_, rc, "opening " + path);
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    {
      auto q = query("PRAGMA journal_mode = WAL");
      if (!q.step() || q.text(0) != "wal") {
        fail(ErrorCode::kIo, "SQLite refused WAL mode for " + path, "put the store folder on a local file system");
      }
      q.run();
    }
    // NORMAL is safe from corruption in WAL mode; a power cut may lose the last commits, a crash
    // of the process loses nothing.
    exec("PRAGMA synchronous = NORMAL");
    exec("PRAGMA foreign_keys = ON");
  }

  // Applies pending migrations, each in its own IMMEDIATE transaction (so two processes opening a
  // fresh folder at once apply each step once), and refuses a database newer than this binary.
  void migrate() {
    exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
         "applied_ms INTEGER NOT NULL)");
    const auto& migrations = sqlite_migrations();
    const int newest = migrations.back().version;
    for (const Migration& m : migrations) {
      write_txn([&] {
        std::int64_t applied = 0;
        {  // reset before the migration runs: an open statement would block DROP (SQLITE_LOCKED)
          auto q = query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
          q.step();
          applied = q.i64(0);
        }
        if (applied > newest) {
          fail(ErrorCode::kInvalidArgument,
               "the store's database has schema version " + std::to_string(applied) + ", newer than this edgeopt (" +
                   std::to_string(newest) + ")",
               "run a newer edgeopt on this store folder");
        }
        if (applied >= m.version) return;
        char* message = nullptr;
        const int rc = sqlite3_exec(db_, m.sql, nullptr, nullptr, &message);
        if (rc != SQLITE_OK) {
          const std::string text = message != nullptr ? message : sqlite3_errstr(rc);
          sqlite3_free(message);
          fail(ErrorCode::kInternal, std::string("migration ") + m.name + " failed: " + text,
               "the store folder was left at the previous version; report this");
        }
        query("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)")
            .bind(m.version).bind(m.name).bind(now_ms())
            .run();
      });
    }
  }

  void remove_stale_temp_files() {
    // A crash mid-write leaves a .part file; other processes' writes in flight are younger than this.
    const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(1);
    std::error_code ec;
    for (fs::directory_iterator it(tmp_, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ignored;
      if (it->last_write_time(ignored) < cutoff) fs::remove(it->path(), ignored);
    }
  }

  template <class Fn>
  auto locked(Fn&& fn) -> Result<decltype(fn())> {
    return capture([&] {
      std::lock_guard lock(mutex_);
      return fn();
    });
  }

  Query query(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      sqlite3_stmt* stmt = nullptr;
      const int rc = sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) fail_sqlite(db_, rc, "preparing " + sql);
      it = statements_.emplace(sql, stmt).first;
    }
    return Query(db_, it->second);
  }

  void exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail_sqlite(db_, rc, sql);
  }

  // BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a
  // transaction never fails half-way for lack of it.
  template <class Fn>
  void write_txn(Fn&& fn) {
    exec("BEGIN IMMEDIATE");
    try {
      fn();
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  // One snapshot for several reads (count and page agree).
  template <class Fn>
  void read_txn(Fn&& fn) {
    exec("BEGIN");
    try {
      fn();
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  fs::path blob_path(const std::string& key) const { return blobs_ / key; }

  // Removes the files whose key starts with `prefix` (already checked), then the folders left empty.
  void delete_blob_files(const std::string& prefix) {
    std::error_code ec;
    if (prefix.empty() || prefix.back() == '/') {
      const fs::path folder = prefix.empty() ? blobs_ : blobs_ / prefix.substr(0, prefix.size() - 1);
      if (prefix.empty()) {
        for (fs::directory_iterator it(blobs_, ec), end; !ec && it != end; it.increment(ec)) fs::remove_all(it->path(), ec);
      } else {
        fs::remove_all(folder, ec);
      }
      if (ec) fail(ErrorCode::kIo, "cannot delete blobs under '" + folder.string() + "': " + ec.message(), "");
      prune_empty_parents(folder.parent_path());
      return;
    }
    auto keys = list_blobs(prefix);
    if (!keys) throw Failure{keys.error()};
    for (const std::string& key : *keys) {
      fs::remove(blob_path(key), ec);
      if (ec) fail(ErrorCode::kIo, "cannot delete blob '" + key + "': " + ec.message(), "");
      prune_empty_parents(blob_path(key).parent_path());
    }
  }

  void prune_empty_parents(fs::path folder) {
    std::error_code ec;
    while (folder != blobs_ && folder.string().size() > blobs_.string().size()) {
      if (!fs::is_empty(folder, ec) || ec) return;
      fs::remove(folder, ec);
      if (ec) return;
      folder = folder.parent_path();
    }
  }

  [[noreturn]] static void fail_unknown_experiment(const std::string& id) { throw Failure{unknown_experiment(id)}; }
  static Error unknown_experiment(const std::string& id) {
    return Error{ErrorCode::kNotFound, "no experiment '" + id + "'", "list experiments to find its id"};
  }
  [[noreturn]] static void fail_duplicate_token(const std::string& name) {
    fail(ErrorCode::kInvalidArgument, "a token named '" + name + "' (or with that secret) exists already",
         "choose another name, or delete the old token first");
  }

  fs::path dir_;
  fs::path blobs_;
  fs::path tmp_;
  std::mutex mutex_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& folder) { return SqliteStore::open(folder); }

}  // namespace edgeopt::store::detail
