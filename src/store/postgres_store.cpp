// The PostgreSQL backend: any number of machines share one database. Everything lives in it,
// blobs too (bytea in 1 MiB chunks), so a worker needs nothing but the URL. Connections come from
// a small pool (pqxx connections are not thread-safe; each call borrows one). Jobs are claimed with
// FOR UPDATE SKIP LOCKED, so claimers never wait on each other; leases are timed by the
// database's clock (edgeopt_now_ms()), since the workers' clocks may disagree.
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <utility>

#include <pqxx/pqxx>

#include "store/internal.h"

namespace edgeopt::store::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kChunkBytes = 1 << 20;
constexpr std::size_t kMaxConnections = 16;
// Serialises migrations of concurrent openers (serve and workers starting at once).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7242019660137310723)";

constexpr const char* kExperimentColumns =
    "id, owner, name, status, config::text, model::text, dataset::text, results::text, error, progress, created_ms, "
    "updated_ms";
constexpr const char* kJobColumns =
    "id, experiment_id, kind, technique, phase, status, worker, attempts, lease_expires_ms, result::text, error";

// The hot statements of the job queue, prepared once per connection (no parse or plan per call).
// claim_job: the CTE fails the expired jobs that used up their attempts; the UPDATE takes the
// oldest claimable job. Their rows are disjoint (attempts >= max vs < max), so no row is updated
// twice. The subquery locks the row it picks and skips rows other claimers hold: concurrent
// claimers get different jobs and never wait for each other.
constexpr const char* kClaimSql =
    "WITH exhausted AS (UPDATE jobs SET status = 'failed', error = $4 || worker, lease_expires_ms = 0, "
    "updated_ms = $3 WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND lease_expires_ms <= edgeopt_now_ms() "
    "AND attempts >= $5 FOR UPDATE SKIP LOCKED) RETURNING id) "
    "UPDATE jobs SET status = 'running', worker = $1, attempts = attempts + 1, "
    "lease_expires_ms = edgeopt_now_ms() + $2, error = '', updated_ms = $3 "
    "WHERE id = (SELECT j.id FROM jobs j WHERE j.status IN ('queued', 'running') AND ("
    "  (j.status = 'queued' AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.experiment_id = j.experiment_id"
    "   AND p.phase < j.phase AND p.status IN ('queued', 'running')))"
    "  OR (j.status = 'running' AND j.lease_expires_ms <= edgeopt_now_ms() AND j.attempts < $5))"
    " ORDER BY j.id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "RETURNING id, experiment_id, kind, technique, phase, status, worker, attempts, lease_expires_ms, result::text, error";
constexpr const char* kHeartbeatSql =
    "UPDATE jobs SET lease_expires_ms = edgeopt_now_ms() + $3, updated_ms = $4 "
    "WHERE id = $1 AND worker = $2 AND status = 'running'";
constexpr const char* kFinishSql =
    "UPDATE jobs SET status = $3, result = $4::jsonb, error = $5, lease_expires_ms = 0, updated_ms = $6 "
    "WHERE id = $1 AND worker = $2 AND status = 'running'";

// "postgresql://user:secret@host/db" -> "postgresql://user:***@host/db": messages never show passwords.
std::string redact(const std::string& url) {
  const std::size_t scheme = url.find("://");
  const std::size_t at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) return url;
  const std::size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::string first_line(const char* text) {
  std::string s(text);
  const std::size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

Experiment read_experiment(const pqxx::row& r) {
  Experiment e;
  e.id = r[0].as<std::string>();
  e.owner = r[1].as<std::string>();
  e.name = r[2].as<std::string>();
  e.status = r[3].as<std::string>();
  e.config = parse_stored_json(r[4].as<std::string>(), "experiments.config");
  e.model = parse_stored_json(r[5].as<std::string>(), "experiments.model");
  e.dataset = parse_stored_json(r[6].as<std::string>(), "experiments.dataset");
  e.results = parse_stored_json(r[7].as<std::string>(), "experiments.results");
  e.error = r[8].as<std::string>();
  e.progress = r[9].as<double>();
  e.created_ms = r[10].as<std::int64_t>();
  e.updated_ms = r[11].as<std::int64_t>();
  return e;
}

Job read_job(const pqxx::row& r) {
  Job j;
  j.id = r[0].as<std::int64_t>();
  j.experiment_id = r[1].as<std::string>();
  j.kind = r[2].as<std::string>();
  j.technique = r[3].as<std::string>();
  j.phase = r[4].as<int>();
  j.status = r[5].as<std::string>();
  j.worker = r[6].as<std::string>();
  j.attempts = r[7].as<int>();
  j.lease_expires_ms = r[8].as<std::int64_t>();
  j.result = parse_stored_json(r[9].as<std::string>(), "jobs.result");
  j.error = r[10].as<std::string>();
  return j;
}

Error unknown_experiment(const std::string& id) {
  return Error{ErrorCode::kNotFound, "no experiment '" + id + "'", "list experiments to find its id"};
}
[[noreturn]] void fail_unknown_experiment(const std::string& id) { throw Failure{unknown_experiment(id)}; }

// Connections opened on demand up to kMaxConnections; a caller waits when all are borrowed.
class Pool {
 public:
  explicit Pool(std::string url) : url_(std::move(url)) {}

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<pqxx::connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), conn_(std::move(other.conn_)), broken_(other.broken_) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->give_back(std::move(conn_), broken_);
    }
    pqxx::connection& operator*() { return *conn_; }
    void discard() { broken_ = true; }

   private:
    Pool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  Lease acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return !idle_.empty() || open_ < kMaxConnections; });
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    try {
      return Lease(this, connect());
    } catch (...) {
      lock.lock();
      --open_;
      available_.notify_one();
      throw;
    }
  }

  const std::string& url() const { return url_; }

 private:
  std::unique_ptr<pqxx::connection> connect() {
    auto conn = std::make_unique<pqxx::connection>(url_);
    pqxx::nontransaction quiet(*conn);
    quiet.exec0("SET client_min_messages TO warning");  // no NOTICE lines from IF NOT EXISTS on stderr
    conn->prepare("claim_job", kClaimSql);  // prepared on first use, after the migrations created the tables
    conn->prepare("heartbeat", kHeartbeatSql);
    conn->prepare("finish_job", kFinishSql);
    return conn;
  }

  void give_back(std::unique_ptr<pqxx::connection> conn, bool broken) {
    std::lock_guard lock(mutex_);
    if (broken || conn == nullptr || !conn->is_open()) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
    available_.notify_one();
  }

  std::string url_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::size_t open_ = 0;
};

std::string sql_text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& v : values) {
    check_experiment_status(v);  // plain lowercase words: nothing to quote
    if (out.size() > 1) out += ',';
    out += v;
  }
  return out + "}";
}

class PostgresStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& url) {
    auto store = std::unique_ptr<PostgresStore>(new PostgresStore(url));
    auto migrated = store->run([&](pqxx::connection& conn) {
      store->migrate(conn);
      return Unit{};
    });
    if (!migrated) return migrated.error();
    return std::unique_ptr<Store>(std::move(store));
  }

  std::string backend_name() const override { return "postgresql"; }

  Result<int> schema_version() override {
    return run([&](pqxx::connection& conn) {
      pqxx::nontransaction tx(conn);
      return tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0].as<int>();
    });
  }

  // ---- experiments ----

  Result<Experiment> create_experiment(Experiment e) override {
    return run([&](pqxx::connection& conn) {
      check_experiment_status(e.status);
      check_progress(e.progress);
      e.id = new_experiment_id();
      e.created_ms = e.updated_ms = now_ms();
      pqxx::work tx(conn);
      tx.exec_params0(
          "INSERT INTO experiments (id, owner, name, status, config, model, dataset, results, error, progress, "
          "created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb, $9, $10, $11, $12)",
          e.id, e.owner, e.name, e.status, e.config.dump(), e.model.dump(), e.dataset.dump(), e.results.dump(), e.error,
          e.progress, e.created_ms, e.updated_ms);
      tx.commit();
      return e;
    });
  }

  Result<std::optional<Experiment>> get_experiment(const std::string& id) override {
    return run([&](pqxx::connection& conn) -> std::optional<Experiment> {
      pqxx::nontransaction tx(conn);
      const auto r = tx.exec_params(std::string("SELECT ") + kExperimentColumns + " FROM experiments WHERE id = $1", id);
      if (r.empty()) return std::nullopt;
      return read_experiment(r[0]);
    });
  }

  Result<ExperimentPage> list_experiments(const ExperimentFilter& f) override {
    return run([&](pqxx::connection& conn) {
      check_filter(f);
      static const std::string kWhere =
          " FROM experiments WHERE ($1 = '' OR owner = $1) AND ($2 = '' OR status = $2)"
          " AND ($3 = '' OR config->>'target_device' = $3) AND ($4 = '' OR config->>'optimization_goal' = $4)"
          " AND ($5 = '' OR config->>'dataset_name' = $5) AND ($6 = '' OR strpos(lower(name), lower($6)) > 0)";
      // One snapshot, so the total and the page agree.
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
      ExperimentPage page;
      page.total = tx.exec_params1("SELECT COUNT(*)" + kWhere, f.owner, f.status, f.device, f.goal, f.dataset, f.query)[0]
                       .as<std::int64_t>();
      const auto rows =
          tx.exec_params(std::string("SELECT ") + kExperimentColumns + kWhere +
                             " ORDER BY created_ms DESC, id DESC LIMIT $7 OFFSET $8",
                         f.owner, f.status, f.device, f.goal, f.dataset, f.query, f.limit, f.offset);
      for (const auto& row : rows) page.items.push_back(read_experiment(row));
      tx.commit();
      return page;
    });
  }

  Status update_experiment(const Experiment& e) override {
    return run([&](pqxx::connection& conn) {
      check_progress(e.progress);
      pqxx::work tx(conn);
      const auto r = tx.exec_params(
          "UPDATE experiments SET name = $2, config = $3::jsonb, model = $4::jsonb, dataset = $5::jsonb, "
          "results = $6::jsonb, error = $7, progress = $8, updated_ms = $9 WHERE id = $1",
          e.id, e.name, e.config.dump(), e.model.dump(), e.dataset.dump(), e.results.dump(), e.error,
          e.progress, now_ms());
      if (r.affected_rows() == 0) fail_unknown_experiment(e.id);
      tx.commit();
      return Unit{};
    });
  }

  Result<bool> set_experiment_status(const std::string& id, const std::vector<std::string>& from,
                                     const std::string& to, const std::string& error) override {
    return run([&](pqxx::connection& conn) {
      check_experiment_status(to);
      pqxx::work tx(conn);
      // Under READ COMMITTED a concurrent writer's row is re-checked against the WHERE after its
      // commit, so of two racing compare-and-sets exactly one wins.
      const auto r = tx.exec_params(
          "UPDATE experiments SET status = $2, error = CASE WHEN $3 = '' THEN error ELSE $3 END, updated_ms = $4 "
          "WHERE id = $1 AND (cardinality($5::text[]) = 0 OR status = ANY($5::text[]))",
          id, to, error, now_ms(), sql_text_array(from));
      bool changed = r.affected_rows() > 0;
      if (!changed && tx.exec_params("SELECT 1 FROM experiments WHERE id = $1", id).empty()) fail_unknown_experiment(id);
      tx.commit();
      return changed;
    });
  }

  Status set_experiment_progress(const std::string& id, double progress) override {
    return run([&](pqxx::connection& conn) {
      check_progress(progress);
      pqxx::work tx(conn);
      const auto r =
          tx.exec_params("UPDATE experiments SET progress = $2, updated_ms = $3 WHERE id = $1", id, progress, now_ms());
      if (r.affected_rows() == 0) fail_unknown_experiment(id);
      tx.commit();
      return Unit{};
    });
  }

  Status delete_experiment(const std::string& id) override {
    return run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);  // jobs and events go with it (ON DELETE CASCADE), its blobs in the same commit
      const auto r = tx.exec_params("DELETE FROM experiments WHERE id = $1", id);
      tx.exec_params("DELETE FROM blobs WHERE starts_with(key, $1)", id + "/");
      tx.commit();
      if (r.affected_rows() == 0) fail_unknown_experiment(id);
      return Unit{};
    });
  }

  // ---- blobs ----

  Status put_blob(const std::string& key, std::string_view bytes) override {
    return run([&](pqxx::connection& conn) {
      check_blob_key(key);
      pqxx::work tx(conn);
      const std::size_t chunks = (bytes.size() + kChunkBytes - 1) / kChunkBytes;
      begin_blob(tx, key, bytes.size(), chunks);
      for (std::size_t i = 0; i < chunks; ++i) {
        const std::string_view part = bytes.substr(i * kChunkBytes, kChunkBytes);
        insert_chunk(tx, key, i, part.data(), part.size());
      }
      tx.commit();
      return Unit{};
    });
  }

  Status put_blob_file(const std::string& key, const std::string& path) override {
    return run([&](pqxx::connection& conn) {
      check_blob_key(key);
      pqxx::work tx(conn);
      std::size_t size = 0;
      std::size_t chunks = 0;
      begin_blob(tx, key, 0, 0);
      read_file_chunks(path, kChunkBytes, [&](const char* data, std::size_t n) {
        insert_chunk(tx, key, chunks++, data, n);
        size += n;
      });
      tx.exec_params0("UPDATE blobs SET size = $2, chunks = $3 WHERE key = $1", key, static_cast<std::int64_t>(size),
                      static_cast<std::int64_t>(chunks));
      tx.commit();
      return Unit{};
    });
  }

  Result<std::string> get_blob(const std::string& key) override {
    return run([&](pqxx::connection& conn) {
      check_blob_key(key);
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
      std::string bytes;
      read_blob(tx, key, [&](const pqxx::binarystring& chunk) {
        bytes.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
      });
      tx.commit();
      return bytes;
    });
  }

  Status get_blob_to_file(const std::string& key, const std::string& path) override {
    return run([&](pqxx::connection& conn) {
      check_blob_key(key);
      if (path.empty()) fail(ErrorCode::kInvalidArgument, "no file to write the blob to", "");
      const fs::path target = fs::absolute(path);
      AtomicFile out(target.parent_path(), target);
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
      read_blob(tx, key, [&](const pqxx::binarystring& chunk) {
        out.write(reinterpret_cast<const char*>(chunk.data()), chunk.size());
      });
      tx.commit();
      out.commit(false);
      return Unit{};
    });
  }

  Result<std::vector<std::string>> list_blobs(const std::string& prefix) override {
    return run([&](pqxx::connection& conn) {
      check_blob_prefix(prefix);
      pqxx::nontransaction tx(conn);
      std::vector<std::string> keys;
      for (const auto& row : tx.exec_params("SELECT key FROM blobs WHERE starts_with(key, $1) ORDER BY key", prefix)) {
        keys.push_back(row[0].as<std::string>());
      }
      return keys;
    });
  }

  Status delete_blobs(const std::string& prefix) override {
    return run([&](pqxx::connection& conn) {
      check_blob_prefix(prefix);
      pqxx::work tx(conn);
      tx.exec_params0("DELETE FROM blobs WHERE starts_with(key, $1)", prefix);
      tx.commit();
      return Unit{};
    });
  }

  // ---- jobs ----

  Status enqueue_jobs(const std::vector<Job>& jobs) override {
    return run([&](pqxx::connection& conn) {
      for (const Job& job : jobs) check_job_kind_and_status(job);
      pqxx::work tx(conn);
      const std::int64_t now = now_ms();
      const Job* current = nullptr;
      try {
        for (const Job& job : jobs) {
          current = &job;
          tx.exec_params0(
              "INSERT INTO jobs (experiment_id, kind, technique, phase, status, worker, attempts, lease_expires_ms, "
              "result, error, created_ms, updated_ms) VALUES ($1, $2, $3, $4, 'queued', '', 0, 0, 'null', '', $5, $5)",
              job.experiment_id, job.kind, job.technique, job.phase, now);
        }
      } catch (const pqxx::foreign_key_violation&) {
        fail_unknown_experiment(current->experiment_id);
      }
      tx.commit();
      return Unit{};
    });
  }

  Result<std::optional<Job>> claim_job(const std::string& worker, std::int64_t lease_ms, int max_attempts) override {
    // Not retried on a broken connection: the claim may have committed, and a second claim would
    // strand the first job until its lease runs out.
    return run(kNoRetry, [&](pqxx::connection& conn) -> std::optional<Job> {
      check_claim_args(worker, lease_ms, max_attempts);
      // One prepared statement in autocommit: one round trip (kClaimSql says how it works).
      pqxx::nontransaction tx(conn);
      const auto r = tx.exec_prepared("claim_job", worker, lease_ms, now_ms(), exhausted_lease_reason(max_attempts),
                                      max_attempts);
      if (r.empty()) return std::nullopt;
      return read_job(r[0]);
    });
  }

  Result<bool> heartbeat(std::int64_t job_id, const std::string& worker, std::int64_t lease_ms) override {
    return run([&](pqxx::connection& conn) {
      if (lease_ms <= 0) fail(ErrorCode::kInvalidArgument, "a lease must last longer than 0 ms", "");
      pqxx::nontransaction tx(conn);  // one statement: autocommit, one round trip (and idempotent)
      const auto r = tx.exec_prepared("heartbeat", job_id, worker, lease_ms, now_ms());
      return r.affected_rows() > 0;
    });
  }

  Result<bool> finish_job(std::int64_t job_id, const std::string& worker, const std::string& status,
                          const nlohmann::json& result, const std::string& error) override {
    return run(kNoRetry, [&](pqxx::connection& conn) {
      check_finish_status(status);
      pqxx::nontransaction tx(conn);  // one statement: autocommit, one round trip
      const auto r = tx.exec_prepared("finish_job", job_id, worker, status, result.dump(), error, now_ms());
      return r.affected_rows() > 0;
    });
  }

  Result<std::vector<Job>> jobs_for(const std::string& experiment_id) override {
    return run([&](pqxx::connection& conn) {
      pqxx::nontransaction tx(conn);
      std::vector<Job> jobs;
      for (const auto& row : tx.exec_params(std::string("SELECT ") + kJobColumns +
                                                " FROM jobs WHERE experiment_id = $1 ORDER BY phase, id",
                                            experiment_id)) {
        jobs.push_back(read_job(row));
      }
      return jobs;
    });
  }

  Result<int> cancel_jobs(const std::string& experiment_id) override {
    return run([&](pqxx::connection& conn) {
      pqxx::nontransaction tx(conn);  // one statement: autocommit (and idempotent)
      const auto r = tx.exec_params(
          "UPDATE jobs SET status = 'cancelled', error = 'cancelled', lease_expires_ms = 0, updated_ms = $2 "
          "WHERE experiment_id = $1 AND status IN ('queued', 'running')",
          experiment_id, now_ms());
      return static_cast<int>(r.affected_rows());
    });
  }

  // ---- events ----

  Result<std::int64_t> append_event(const std::string& experiment_id, const std::string& type,
                                    const nlohmann::json& data) override {
    return run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      // The experiment's row lock is held until commit: the next appender waits, so seqs have no
      // gaps and become visible in order.
      const auto r =
          tx.exec_params("UPDATE experiments SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", experiment_id);
      if (r.empty()) fail_unknown_experiment(experiment_id);
      const auto seq = r[0][0].as<std::int64_t>();
      tx.exec_params0("INSERT INTO events (experiment_id, seq, type, data, time_ms) VALUES ($1, $2, $3, $4::jsonb, $5)",
                      experiment_id, seq, type, data.dump(), now_ms());
      tx.commit();
      return seq;
    });
  }

  Result<std::vector<Event>> events_after(const std::string& experiment_id, std::int64_t after_seq,
                                          std::int64_t limit) override {
    return run([&](pqxx::connection& conn) {
      if (limit < 0) fail(ErrorCode::kInvalidArgument, "limit must not be negative", "");
      pqxx::nontransaction tx(conn);
      std::vector<Event> events;
      for (const auto& row : tx.exec_params("SELECT seq, type, data::text, time_ms FROM events WHERE experiment_id = $1 "
                                            "AND seq > $2 ORDER BY seq LIMIT $3",
                                            experiment_id, after_seq, limit)) {
        events.push_back(Event{row[0].as<std::int64_t>(), experiment_id, row[1].as<std::string>(),
                               parse_stored_json(row[2].as<std::string>(), "events.data"), row[3].as<std::int64_t>()});
      }
      return events;
    });
  }

  // ---- tokens ----

  Status add_token(const Token& token) override {
    return run([&](pqxx::connection& conn) {
      if (token.name.empty() || token.hash_hex.empty()) {
        fail(ErrorCode::kInvalidArgument, "a token needs a name and a hash", "");
      }
      pqxx::work tx(conn);
      try {
        tx.exec_params0("INSERT INTO tokens (name, hash_hex, created_ms) VALUES ($1, $2, $3)", token.name,
                        token.hash_hex, token.created_ms != 0 ? token.created_ms : now_ms());
        tx.commit();
      } catch (const pqxx::unique_violation&) {
        fail(ErrorCode::kInvalidArgument, "a token named '" + token.name + "' (or with that secret) exists already",
             "choose another name, or delete the old token first");
      }
      return Unit{};
    });
  }

  Result<std::optional<Token>> find_token_by_hash(const std::string& hash_hex) override {
    return run([&](pqxx::connection& conn) -> std::optional<Token> {
      pqxx::nontransaction tx(conn);
      const auto r = tx.exec_params("SELECT name, hash_hex, created_ms FROM tokens WHERE hash_hex = $1", hash_hex);
      if (r.empty()) return std::nullopt;
      return Token{r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::int64_t>()};
    });
  }

  Result<std::vector<Token>> list_tokens() override {
    return run([&](pqxx::connection& conn) {
      pqxx::nontransaction tx(conn);
      std::vector<Token> tokens;
      for (const auto& row : tx.exec("SELECT name, hash_hex, created_ms FROM tokens ORDER BY name")) {
        tokens.push_back(Token{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::int64_t>()});
      }
      return tokens;
    });
  }

  Status delete_token(const std::string& name) override {
    return run([&](pqxx::connection& conn) {
      pqxx::work tx(conn);
      const auto r = tx.exec_params("DELETE FROM tokens WHERE name = $1", name);
      tx.commit();
      if (r.affected_rows() == 0) {
        fail(ErrorCode::kNotFound, "no token named '" + name + "'", "list them with `edgeopt tokens list`");
      }
      return Unit{};
    });
  }

 private:
  explicit PostgresStore(const std::string& url) : pool_(url) {}

  // Borrows a connection and runs fn on it. A connection found broken (server restarted, idle
  // connection dropped) is replaced and fn retried once, unless fn is an autocommit write that is
  // not safe to repeat (kNoRetry): its statement may have committed before the break. A break
  // during COMMIT is reported as such, never retried.
  static constexpr bool kNoRetry = false;
  template <class Fn>
  auto run(Fn&& fn) -> Result<decltype(fn(std::declval<pqxx::connection&>()))> {
    return run(true, std::forward<Fn>(fn));
  }
  template <class Fn>
  auto run(bool retry, Fn&& fn) -> Result<decltype(fn(std::declval<pqxx::connection&>()))> {
    return capture([&] {
      for (int attempt = 0;; ++attempt) {
        std::optional<Pool::Lease> lease;
        try {
          lease.emplace(pool_.acquire());
          return fn(**lease);
        } catch (const pqxx::in_doubt_error& e) {
          if (lease) lease->discard();
          fail(ErrorCode::kIo, "the connection to PostgreSQL broke during a commit; the change may or may not be stored",
               "check the database and retry");
        } catch (const pqxx::broken_connection& e) {
          if (lease) lease->discard();
          if (retry && attempt == 0 && lease) continue;
          fail(ErrorCode::kIo, "cannot reach PostgreSQL at " + redact(pool_.url()) + ": " + first_line(e.what()),
               "check that the server is running and the URL (host, port, user, password, database) is right");
        } catch (const pqxx::sql_error& e) {
          fail(ErrorCode::kIo, "PostgreSQL: " + first_line(e.what()) + " (SQLSTATE " + e.sqlstate() + ")",
               "check the database server's log");
        }
      }
    });
  }

  // Creates schema_migrations, then applies each pending migration in its own transaction under
  // an advisory lock, so concurrent openers apply every step exactly once.
  void migrate(pqxx::connection& conn) {
    {
      pqxx::work tx(conn);
      tx.exec(kMigrationLock);
      tx.exec0("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
               "applied_ms bigint NOT NULL)");
      tx.commit();
    }
    const auto& migrations = postgres_migrations();
    const int newest = migrations.back().version;
    for (const Migration& m : migrations) {
      pqxx::work tx(conn);
      tx.exec(kMigrationLock);
      const int applied = tx.exec1("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0].as<int>();
      if (applied > newest) {
        fail(ErrorCode::kInvalidArgument,
             "the database has schema version " + std::to_string(applied) + ", newer than this edgeopt (" +
                 std::to_string(newest) + ")",
             "run a newer edgeopt against this database");
      }
      if (applied >= m.version) continue;
      try {
        tx.exec0(m.sql);
      } catch (const pqxx::sql_error& e) {
        fail(ErrorCode::kInternal, std::string("migration ") + m.name + " failed: " + first_line(e.what()),
             "the database was left at the previous version; report this");
      }
      tx.exec_params0("INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)", m.version,
                      std::string(m.name), now_ms());
      tx.commit();
    }
  }

  // Creates or replaces the blob's row and drops its old chunks (ON CONFLICT waits for a
  // concurrent writer of the same key; the last commit wins whole).
  static void begin_blob(pqxx::work& tx, const std::string& key, std::size_t size, std::size_t chunks) {
    tx.exec_params0(
        "INSERT INTO blobs (key, size, chunks, created_ms) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key) DO UPDATE SET size = EXCLUDED.size, chunks = EXCLUDED.chunks, created_ms = EXCLUDED.created_ms",
        key, static_cast<std::int64_t>(size), static_cast<std::int64_t>(chunks), now_ms());
    tx.exec_params0("DELETE FROM blob_chunks WHERE key = $1", key);
  }

  static void insert_chunk(pqxx::work& tx, const std::string& key, std::size_t index, const char* data,
                           std::size_t size) {
    tx.exec_params0("INSERT INTO blob_chunks (key, idx, data) VALUES ($1, $2, $3)", key,
                    static_cast<std::int64_t>(index), pqxx::binarystring(data, size));
  }

  // Fetches the chunks one by one (a large blob never sits in memory twice) and checks that they
  // add up to the recorded size.
  template <class Tx, class Sink>
  static void read_blob(Tx& tx, const std::string& key, Sink&& sink) {
    const pqxx::result head = tx.exec_params("SELECT size, chunks FROM blobs WHERE key = $1", key);
    if (head.empty()) fail(ErrorCode::kNotFound, "no blob '" + key + "'", "");
    const auto size = head[0][0].as<std::int64_t>();
    const auto chunks = head[0][1].as<std::int64_t>();
    std::int64_t seen = 0;
    for (std::int64_t i = 0; i < chunks; ++i) {
      const pqxx::result r = tx.exec_params("SELECT data FROM blob_chunks WHERE key = $1 AND idx = $2", key, i);
      if (r.empty()) break;
      const pqxx::binarystring chunk(r[0][0]);
      seen += static_cast<std::int64_t>(chunk.size());
      sink(chunk);
    }
    if (seen != size) {
      fail(ErrorCode::kCorruptFile, "blob '" + key + "' is incomplete in the database", "upload it again");
    }
  }

  Pool pool_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url) { return PostgresStore::open(url); }

}  // namespace edgeopt::store::detail
