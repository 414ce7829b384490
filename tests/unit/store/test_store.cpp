// One suite, both backends: every test runs against SQLite (in a temporary folder) and against
// PostgreSQL when EDGEOPT_TEST_POSTGRES_URL is set (each test in its own schema, dropped after).
// `make test` starts a throw-away cluster for it (scripts/pg-test-cluster.sh).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <pqxx/pqxx>

#include "store/internal.h"
#include "store/store.h"

namespace edgeopt::store {
namespace {

namespace fs = std::filesystem;

const char* postgres_url() {
  const char* url = std::getenv("EDGEOPT_TEST_POSTGRES_URL");
  return url != nullptr && *url != '\0' ? url : nullptr;
}

template <class T>
T must(Result<T> r) {
  if (!r.ok()) ADD_FAILURE() << r.error().to_string();
  return std::move(r).value();
}

void must_ok(const Status& s) { ASSERT_TRUE(s.ok()) << s.error().to_string(); }

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (is_postgres()) {
      const char* url = postgres_url();
      if (url == nullptr) {
        GTEST_SKIP() << "EDGEOPT_TEST_POSTGRES_URL is not set: the PostgreSQL run of this test is skipped "
                        "(`make test` starts a throw-away cluster and sets it)";
      }
    } else {
      std::string tmpl = (fs::temp_directory_path() / "edgeopt-store-XXXXXX").string();
      ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
      folder_ = tmpl;
    }
    location_ = fresh_location();
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    if (!schemas_.empty()) {
      pqxx::connection conn(postgres_url());
      pqxx::nontransaction tx(conn);
      for (const auto& schema : schemas_) tx.exec0("DROP SCHEMA " + schema + " CASCADE");
    }
    if (!folder_.empty()) {
      std::error_code ignored;
      fs::remove_all(folder_, ignored);
    }
  }

  bool is_postgres() const { return GetParam() == "postgresql"; }

  // An empty database of its own: a new schema (PostgreSQL) or a new folder (SQLite).
  std::string fresh_location() {
    if (!is_postgres()) return (folder_ / ("store" + std::to_string(++folders_))).string();
    const std::string schema = "edgeopt_test_" + detail::random_hex(6);
    pqxx::connection conn(postgres_url());
    pqxx::nontransaction(conn).exec0("CREATE SCHEMA " + schema);
    schemas_.push_back(schema);
    const std::string base(postgres_url());
    return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  }

  // Another Store on the same database: its own connection(s), as another process would have.
  std::unique_ptr<Store> open() {
    auto r = open_store(location_);
    if (!r.ok()) {
      ADD_FAILURE() << r.error().to_string();
      return nullptr;
    }
    return std::move(r).value();
  }

  Experiment make(const std::string& owner, const std::string& name, nlohmann::json config = nlohmann::json::object()) {
    Experiment e;
    e.owner = owner;
    e.name = name;
    e.config = std::move(config);
    return must(store_->create_experiment(e));
  }

  static Job job(const std::string& experiment, const std::string& kind, int phase, const std::string& technique = {}) {
    Job j;
    j.experiment_id = experiment;
    j.kind = kind;
    j.phase = phase;
    j.technique = technique;
    return j;
  }

  // Runs raw SQL against the backend's database (for what the API deliberately cannot do).
  void raw_sql(const std::string& sql) { raw_sql_at(location_, sql); }
  void raw_sql_at(const std::string& location, const std::string& sql) {
    if (is_postgres()) {
      pqxx::connection conn(location);
      pqxx::nontransaction tx(conn);
      tx.exec0(sql);
      return;
    }
    sqlite3* db = nullptr;
    fs::create_directories(location);
    ASSERT_EQ(sqlite3_open((fs::path(location) / "edgeopt.db").c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
    EXPECT_EQ(rc, SQLITE_OK) << (message != nullptr ? message : "");
    sqlite3_free(message);
    sqlite3_close(db);
  }

  std::string location_;
  fs::path folder_;
  int folders_ = 0;
  std::vector<std::string> schemas_;
  std::unique_ptr<Store> store_;
};

// ---- experiments ----

TEST_P(StoreTest, CreateGetUpdateRoundTrip) {
  EXPECT_EQ(store_->backend_name(), GetParam());
  Experiment in;
  in.owner = "alice";
  in.name = "mobilenet on the Pi";
  in.config = {{"target_device", "raspberry_pi_4"}, {"optimization_goal", "balanced"}, {"limits", {{"max_size_mb", 4.5}}}};
  in.model = {{"format", "onnx"}, {"params", 1234567}};
  const std::int64_t before = now_ms();
  const Experiment created = must(store_->create_experiment(in));
  EXPECT_EQ(created.id.size(), 20U);
  EXPECT_TRUE(std::all_of(created.id.begin(), created.id.end(),
                          [](char c) { return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'); }))
      << created.id;
  EXPECT_GE(created.created_ms, before);
  EXPECT_EQ(created.created_ms, created.updated_ms);

  auto got = must(store_->get_experiment(created.id));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->owner, "alice");
  EXPECT_EQ(got->name, in.name);
  EXPECT_EQ(got->status, "created");
  EXPECT_EQ(got->config, in.config);
  EXPECT_EQ(got->model, in.model);
  EXPECT_TRUE(got->dataset.is_null());
  EXPECT_TRUE(got->results.is_null());
  EXPECT_EQ(got->created_ms, created.created_ms);

  Experiment changed = *got;
  changed.owner = "mallory";  // never replaced by an update
  changed.created_ms = 1;     // nor this
  changed.name = "renamed";
  changed.status = "completed";  // nor this: only set_experiment_status changes it
  changed.results = {{"variants", nlohmann::json::array({"ptq_int8"})}};
  changed.error = "";
  changed.progress = 1.0;
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  must_ok(store_->update_experiment(changed));
  got = must(store_->get_experiment(created.id));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->owner, "alice");
  EXPECT_EQ(got->created_ms, created.created_ms);
  EXPECT_EQ(got->name, "renamed");
  EXPECT_EQ(got->status, created.status);
  EXPECT_EQ(got->results, changed.results);
  EXPECT_DOUBLE_EQ(got->progress, 1.0);
  EXPECT_GT(got->updated_ms, created.updated_ms);

  EXPECT_FALSE(must(store_->get_experiment("no-such-id")).has_value());
  Experiment ghost = changed;
  ghost.id = "no-such-id";
  auto missing = store_->update_experiment(ghost);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  changed.progress = 2.0;
  auto bad = store_->update_experiment(changed);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);

  must_ok(store_->set_experiment_progress(created.id, 0.25));
  EXPECT_DOUBLE_EQ(must(store_->get_experiment(created.id))->progress, 0.25);
  EXPECT_EQ(store_->set_experiment_progress(created.id, 1.5).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->set_experiment_progress("no-such-id", 0.5).error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, ListFiltersPagingAndTotal) {
  auto config = [](const char* device, const char* goal, const char* dataset) {
    return nlohmann::json{{"target_device", device}, {"optimization_goal", goal}, {"dataset_name", dataset}};
  };
  make("alice", "ResNet Fashion", config("raspberry_pi_4", "balanced", "fashion_mnist"));
  make("alice", "tiny cnn", config("jetson_nano", "minimize_size", "fashion_mnist"));
  make("alice", "Big RESNET", config("jetson_nano", "balanced", "cifar10"));
  make("bob", "resnet of bob", config("raspberry_pi_4", "balanced", "cifar10"));
  std::this_thread::sleep_for(std::chrono::milliseconds(3));  // strictly the newest
  const Experiment last = make("bob", "other", config("coral_dev_board", "maximize_speed", "cifar10"));
  ASSERT_TRUE(must(store_->set_experiment_status(last.id, {}, "running")));

  auto count = [&](ExperimentFilter f) { return must(store_->list_experiments(f)).total; };
  ExperimentFilter f;
  EXPECT_EQ(count(f), 5);
  f.owner = "alice";
  EXPECT_EQ(count(f), 3);
  f.device = "jetson_nano";
  EXPECT_EQ(count(f), 2);
  f.goal = "balanced";
  EXPECT_EQ(count(f), 1);
  f = {};
  f.dataset = "cifar10";
  EXPECT_EQ(count(f), 3);
  f = {};
  f.query = "resnet";  // case-insensitive substring of the name
  EXPECT_EQ(count(f), 3);
  f.owner = "bob";
  EXPECT_EQ(count(f), 1);
  f = {};
  f.status = "running";
  auto running = must(store_->list_experiments(f));
  ASSERT_EQ(running.items.size(), 1U);
  EXPECT_EQ(running.items[0].id, last.id);
  f.status = "bogus";
  EXPECT_EQ(store_->list_experiments(f).error().code, ErrorCode::kInvalidArgument);
  f = {};
  f.query = "50%_";  // LIKE wildcards are plain characters here
  EXPECT_EQ(count(f), 0);

  // Newest first, pages that add up to the whole list without repeats.
  f = {};
  f.limit = 100;
  const auto all = must(store_->list_experiments(f)).items;
  ASSERT_EQ(all.size(), 5U);
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_TRUE(all[i - 1].created_ms > all[i].created_ms ||
                (all[i - 1].created_ms == all[i].created_ms && all[i - 1].id > all[i].id));
  }
  EXPECT_EQ(all[0].id, last.id);
  std::vector<std::string> paged;
  for (std::int64_t offset = 0;; offset += 2) {
    f.limit = 2;
    f.offset = offset;
    auto page = must(store_->list_experiments(f));
    EXPECT_EQ(page.total, 5);
    if (page.items.empty()) break;
    EXPECT_LE(page.items.size(), 2U);
    for (auto& e : page.items) paged.push_back(e.id);
  }
  ASSERT_EQ(paged.size(), 5U);
  for (std::size_t i = 0; i < paged.size(); ++i) EXPECT_EQ(paged[i], all[i].id);
  f.limit = -1;
  EXPECT_EQ(store_->list_experiments(f).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(StoreTest, StatusCompareAndSet) {
  const Experiment e = make("alice", "cas");
  EXPECT_TRUE(must(store_->set_experiment_status(e.id, {"created"}, "queued")));
  EXPECT_FALSE(must(store_->set_experiment_status(e.id, {"created"}, "queued")));
  EXPECT_EQ(must(store_->get_experiment(e.id))->status, "queued");
  EXPECT_TRUE(must(store_->set_experiment_status(e.id, {"queued", "running"}, "failed", "ran out of memory")));
  auto got = must(store_->get_experiment(e.id));
  EXPECT_EQ(got->status, "failed");
  EXPECT_EQ(got->error, "ran out of memory");
  EXPECT_TRUE(must(store_->set_experiment_status(e.id, {}, "cancelled")));  // empty `from`: any status
  got = must(store_->get_experiment(e.id));
  EXPECT_EQ(got->status, "cancelled");
  EXPECT_EQ(got->error, "ran out of memory");  // an empty error leaves the old one
  EXPECT_EQ(store_->set_experiment_status(e.id, {}, "nonsense").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->set_experiment_status("no-such-id", {"created"}, "queued").error().code, ErrorCode::kNotFound);

  // Racing compare-and-sets from several threads and connections: exactly one wins.
  const Experiment race = make("alice", "race");
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(open());
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto r = stores[static_cast<std::size_t>(t % 4)]->set_experiment_status(race.id, {"created"}, "queued");
      if (r.ok() && *r) ++wins;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST_P(StoreTest, DeleteCascadesToJobsEventsAndBlobs) {
  const Experiment doomed = make("alice", "doomed");
  const Experiment kept = make("alice", "kept");
  for (const auto* id : {&doomed.id, &kept.id}) {
    must_ok(store_->enqueue_jobs({job(*id, "baseline", 0), job(*id, "technique", 1, "ptq_int8")}));
    must(store_->append_event(*id, "status", {{"status", "queued"}}));
    must_ok(store_->put_blob(*id + "/model.onnx", "model bytes"));
    must_ok(store_->put_blob(*id + "/artifacts/ptq_int8.eom", "artifact"));
  }
  must_ok(store_->put_blob(doomed.id + "x/not-its-own", "a key that merely starts with the same characters"));

  must_ok(store_->delete_experiment(doomed.id));
  EXPECT_FALSE(must(store_->get_experiment(doomed.id)).has_value());
  EXPECT_TRUE(must(store_->jobs_for(doomed.id)).empty());
  EXPECT_TRUE(must(store_->events_after(doomed.id, 0)).empty());
  EXPECT_TRUE(must(store_->list_blobs(doomed.id + "/")).empty());
  EXPECT_EQ(must(store_->list_blobs(doomed.id + "x/")).size(), 1U);
  EXPECT_EQ(must(store_->list_experiments({})).total, 1);
  EXPECT_EQ(must(store_->jobs_for(kept.id)).size(), 2U);
  EXPECT_EQ(must(store_->events_after(kept.id, 0)).size(), 1U);
  EXPECT_EQ(must(store_->list_blobs(kept.id + "/")).size(), 2U);
  EXPECT_EQ(store_->delete_experiment(doomed.id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->delete_experiment("../" + kept.id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(must(store_->list_blobs(kept.id + "/")).size(), 2U);
  // Jobs of a deleted experiment are gone from the queue too.
  auto claimed = must(store_->claim_job("w", 60000));
  ASSERT_TRUE(claimed.has_value());
  EXPECT_EQ(claimed->experiment_id, kept.id);
}

// ---- blobs ----

TEST_P(StoreTest, BlobsPutGetListDelete) {
  const std::string id = make("alice", "blobs").id;
  must_ok(store_->put_blob(id + "/model.onnx", "first"));
  EXPECT_EQ(must(store_->get_blob(id + "/model.onnx")), "first");
  must_ok(store_->put_blob(id + "/model.onnx", std::string("second\0with nul", 15)));  // replaces
  EXPECT_EQ(must(store_->get_blob(id + "/model.onnx")), std::string("second\0with nul", 15));
  must_ok(store_->put_blob(id + "/empty", ""));
  EXPECT_EQ(must(store_->get_blob(id + "/empty")), "");

  // A file larger than the PostgreSQL chunk (1 MiB), streamed in and out.
  std::string big(3 * (1 << 20) + 12345, '\0');
  std::mt19937 rng(7);
  for (auto& c : big) c = static_cast<char>(rng() & 0xFF);
  const fs::path scratch = fs::temp_directory_path() / ("edgeopt-store-blob-" + detail::random_hex(6));
  fs::create_directories(scratch);
  {
    std::ofstream(scratch / "in.bin", std::ios::binary).write(big.data(), static_cast<std::streamsize>(big.size()));
  }
  must_ok(store_->put_blob_file(id + "/artifacts/big.eom", (scratch / "in.bin").string()));
  EXPECT_EQ(must(store_->get_blob(id + "/artifacts/big.eom")), big);
  must_ok(store_->get_blob_to_file(id + "/artifacts/big.eom", (scratch / "out.bin").string()));
  {
    std::ifstream in(scratch / "out.bin", std::ios::binary);
    const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(back == big) << "the blob fetched to a file differs (" << back.size() << " bytes)";
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(scratch), fs::directory_iterator()), 2)
      << "a temporary file was left next to the target";
  EXPECT_EQ(store_->put_blob_file(id + "/x", (scratch / "missing").string()).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->get_blob_to_file(id + "/artifacts/big.eom", (scratch / "no-dir" / "out.bin").string()).error().code,
            ErrorCode::kIo);
  EXPECT_EQ(store_->get_blob_to_file(id + "/absent", (scratch / "out2.bin").string()).error().code,
            ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(scratch / "out2.bin"));
  fs::remove_all(scratch);

  must_ok(store_->put_blob(id + "/artifacts/ptq_int8.eom", "a"));
  must_ok(store_->put_blob(id + "/artifacts/ptq_int8.onnx", "b"));
  must_ok(store_->put_blob("other/artifacts/x", "c"));
  const std::vector<std::string> artifacts = {id + "/artifacts/big.eom", id + "/artifacts/ptq_int8.eom",
                                              id + "/artifacts/ptq_int8.onnx"};
  EXPECT_EQ(must(store_->list_blobs(id + "/artifacts/")), artifacts);
  EXPECT_EQ(must(store_->list_blobs(id + "/artifacts/ptq")),
            (std::vector<std::string>{id + "/artifacts/ptq_int8.eom", id + "/artifacts/ptq_int8.onnx"}));
  EXPECT_EQ(must(store_->list_blobs(id + "/")).size(), 5U);
  EXPECT_EQ(must(store_->list_blobs("")).size(), 6U);
  EXPECT_TRUE(must(store_->list_blobs("nothing/here/")).empty());

  must_ok(store_->delete_blobs(id + "/artifacts/ptq_int8.o"));
  EXPECT_EQ(must(store_->list_blobs(id + "/artifacts/")).size(), 2U);
  must_ok(store_->delete_blobs(id + "/artifacts/"));
  EXPECT_TRUE(must(store_->list_blobs(id + "/artifacts/")).empty());
  EXPECT_EQ(must(store_->list_blobs(id + "/")).size(), 2U);
  EXPECT_EQ(must(store_->get_blob("other/artifacts/x")), "c");
  EXPECT_EQ(store_->get_blob(id + "/artifacts/ptq_int8.eom").error().code, ErrorCode::kNotFound);
  must_ok(store_->delete_blobs("nothing/"));  // deleting nothing is fine
}

TEST_P(StoreTest, HostileBlobKeysAreRefused) {
  const std::vector<std::string> hostile = {"",           "../escape",  "a/../../escape", "/etc/passwd",  "a//b",
                                            "a/./b",      "..",         "a/..",           "trailing/",    "back\\slash",
                                            "line\nfeed", std::string("nul\0byte", 8),    std::string(2000, 'k')};
  const fs::path scratch = fs::temp_directory_path() / ("edgeopt-store-hostile-" + detail::random_hex(6));
  fs::create_directories(scratch);
  std::ofstream(scratch / "in.bin") << "payload";
  for (const std::string& key : hostile) {
    SCOPED_TRACE("key: " + key.substr(0, 40));
    auto put = store_->put_blob(key, "payload");
    ASSERT_FALSE(put.ok());
    EXPECT_EQ(put.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(put.error().message.empty());
    EXPECT_EQ(store_->put_blob_file(key, (scratch / "in.bin").string()).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_->get_blob(key).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_->get_blob_to_file(key, (scratch / "out").string()).error().code, ErrorCode::kInvalidArgument);
  }
  for (const std::string& prefix : std::vector<std::string>{"../", "/abs", "a/../", std::string("x\0", 2), "a//"}) {
    SCOPED_TRACE("prefix: " + prefix);
    EXPECT_EQ(store_->list_blobs(prefix).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(store_->delete_blobs(prefix).error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(must(store_->list_blobs("")).empty()) << "a hostile key was stored";
  EXPECT_FALSE(fs::exists(scratch / "out"));
  if (!is_postgres()) {
    // Nothing appeared next to the store folder either.
    std::set<std::string> entries;
    for (const auto& entry : fs::directory_iterator(folder_)) entries.insert(entry.path().filename().string());
    EXPECT_EQ(entries, std::set<std::string>{fs::path(location_).filename().string()});
  }
  fs::remove_all(scratch);
}

// ---- jobs ----

TEST_P(StoreTest, JobsRunPhaseByPhase) {
  const std::string a = make("alice", "phases").id;
  const std::string b = make("alice", "independent").id;
  must_ok(store_->enqueue_jobs({job(a, "baseline", 0), job(a, "technique", 1, "ptq_int8"),
                                job(a, "technique", 1, "prune_structured"), job(a, "final", 2)}));
  auto base = must(store_->claim_job("w1", 60000));
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ(base->kind, "baseline");
  EXPECT_EQ(base->status, "running");
  EXPECT_EQ(base->worker, "w1");
  EXPECT_EQ(base->attempts, 1);
  EXPECT_EQ(base->experiment_id, a);
  EXPECT_FALSE(must(store_->claim_job("w2", 60000)).has_value()) << "phase 1 claimed while phase 0 runs";

  // Another experiment's jobs are not held back by this one's phases.
  must_ok(store_->enqueue_jobs({job(b, "technique", 1, "qat_int8")}));
  auto other = must(store_->claim_job("w2", 60000));
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->experiment_id, b);

  ASSERT_TRUE(must(store_->finish_job(base->id, "w1", "completed", {{"latency_ms", 3.5}})));
  auto t1 = must(store_->claim_job("w1", 60000));
  auto t2 = must(store_->claim_job("w2", 60000));
  ASSERT_TRUE(t1.has_value() && t2.has_value());
  EXPECT_EQ(t1->technique, "ptq_int8");  // oldest first
  EXPECT_EQ(t2->technique, "prune_structured");
  EXPECT_FALSE(must(store_->claim_job("w3", 60000)).has_value()) << "the final job ran before the techniques";
  ASSERT_TRUE(must(store_->finish_job(t1->id, "w1", "completed", nullptr)));
  EXPECT_FALSE(must(store_->claim_job("w3", 60000)).has_value());
  ASSERT_TRUE(must(store_->finish_job(t2->id, "w2", "failed", nullptr, "diverged")));  // failed counts as done
  auto fin = must(store_->claim_job("w3", 60000));
  ASSERT_TRUE(fin.has_value());
  EXPECT_EQ(fin->kind, "final");

  const auto jobs = must(store_->jobs_for(a));
  ASSERT_EQ(jobs.size(), 4U);
  EXPECT_EQ(jobs[0].status, "completed");
  EXPECT_EQ(jobs[0].result, (nlohmann::json{{"latency_ms", 3.5}}));
  EXPECT_EQ(jobs[2].error, "diverged");
  EXPECT_EQ(jobs[3].status, "running");

  EXPECT_EQ(store_->enqueue_jobs({job("no-such-id", "baseline", 0)}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->enqueue_jobs({job(a, "dance", 0)}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->claim_job("", 1000).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->claim_job("w", 0).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(StoreTest, ExpiredLeaseIsClaimedAgainUntilMaxAttempts) {
  const std::string a = make("alice", "leases").id;
  must_ok(store_->enqueue_jobs({job(a, "technique", 0, "qat_int8")}));
  auto first = must(store_->claim_job("w1", 150, 2));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->attempts, 1);
  EXPECT_FALSE(must(store_->claim_job("w2", 150, 2)).has_value()) << "claimed while its lease holds";
  std::this_thread::sleep_for(std::chrono::milliseconds(250));

  auto second = must(store_->claim_job("w2", 150, 2));  // w1 died: its lease ran out
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(second->worker, "w2");
  EXPECT_EQ(second->attempts, 2);
  EXPECT_FALSE(must(store_->heartbeat(first->id, "w1", 150))) << "the old holder kept its lease";
  EXPECT_FALSE(must(store_->finish_job(first->id, "w1", "completed", nullptr))) << "the old holder finished it";
  EXPECT_TRUE(must(store_->heartbeat(second->id, "w2", 150)));

  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  // Two attempts used: the next claimer marks it failed with the reason instead of running it again.
  EXPECT_FALSE(must(store_->claim_job("w3", 150, 2)).has_value());
  const auto jobs = must(store_->jobs_for(a));
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_EQ(jobs[0].status, "failed");
  EXPECT_EQ(jobs[0].attempts, 2);
  EXPECT_NE(jobs[0].error.find("lease expired"), std::string::npos) << jobs[0].error;
  EXPECT_NE(jobs[0].error.find("w2"), std::string::npos) << jobs[0].error;
  EXPECT_FALSE(must(store_->heartbeat(second->id, "w2", 150)));
}

TEST_P(StoreTest, HeartbeatFailsAfterCancel) {
  const std::string a = make("alice", "cancel").id;
  must_ok(store_->enqueue_jobs({job(a, "baseline", 0), job(a, "technique", 1, "ptq_int8"), job(a, "final", 2)}));
  auto held = must(store_->claim_job("w1", 60000));
  ASSERT_TRUE(held.has_value());
  EXPECT_TRUE(must(store_->heartbeat(held->id, "w1", 60000)));
  EXPECT_EQ(must(store_->cancel_jobs(a)), 3);
  EXPECT_FALSE(must(store_->heartbeat(held->id, "w1", 60000)));
  EXPECT_FALSE(must(store_->finish_job(held->id, "w1", "completed", nullptr)));
  for (const auto& j : must(store_->jobs_for(a))) EXPECT_EQ(j.status, "cancelled");
  EXPECT_FALSE(must(store_->claim_job("w2", 60000)).has_value());
  EXPECT_EQ(must(store_->cancel_jobs(a)), 0);
}

TEST_P(StoreTest, CancelLeavesFinishedJobsAlone) {
  const std::string a = make("alice", "partial").id;
  must_ok(store_->enqueue_jobs({job(a, "baseline", 0), job(a, "technique", 1, "ptq_int8")}));
  auto base = must(store_->claim_job("w1", 60000));
  ASSERT_TRUE(must(store_->finish_job(base->id, "w1", "completed", {{"ok", true}})));
  EXPECT_EQ(must(store_->cancel_jobs(a)), 1);
  const auto jobs = must(store_->jobs_for(a));
  EXPECT_EQ(jobs[0].status, "completed");
  EXPECT_EQ(jobs[0].result, (nlohmann::json{{"ok", true}}));
  EXPECT_EQ(jobs[1].status, "cancelled");
}

TEST_P(StoreTest, OnlyTheHolderFinishesAJob) {
  const std::string a = make("alice", "holder").id;
  must_ok(store_->enqueue_jobs({job(a, "baseline", 0)}));
  auto held = must(store_->claim_job("w1", 60000));
  ASSERT_TRUE(held.has_value());
  EXPECT_FALSE(must(store_->finish_job(held->id, "w2", "completed", {{"stolen", true}})));
  EXPECT_FALSE(must(store_->heartbeat(held->id, "w2", 60000)));
  EXPECT_EQ(must(store_->jobs_for(a))[0].status, "running");
  EXPECT_EQ(store_->finish_job(held->id, "w1", "running", nullptr).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(must(store_->finish_job(held->id, "w1", "completed", {{"top1", 0.91}})));
  EXPECT_FALSE(must(store_->finish_job(held->id, "w1", "failed", nullptr, "twice")));
  const auto done = must(store_->jobs_for(a))[0];
  EXPECT_EQ(done.status, "completed");
  EXPECT_EQ(done.result, (nlohmann::json{{"top1", 0.91}}));
  EXPECT_EQ(done.error, "");
}

TEST_P(StoreTest, ConcurrentClaimersNeverShareAJob) {
  constexpr int kExperiments = 4;
  constexpr int kJobsEach = 60;
  std::set<std::int64_t> all_ids;
  for (int e = 0; e < kExperiments; ++e) {
    const std::string id = make("alice", "bulk " + std::to_string(e)).id;
    std::vector<Job> jobs;
    for (int i = 0; i < kJobsEach; ++i) jobs.push_back(job(id, "technique", 0, "t" + std::to_string(i)));
    must_ok(store_->enqueue_jobs(jobs));
  }
  for (const auto& e : must(store_->list_experiments({})).items) {
    for (const auto& j : must(store_->jobs_for(e.id))) all_ids.insert(j.id);
  }
  ASSERT_EQ(all_ids.size(), static_cast<std::size_t>(kExperiments * kJobsEach));

  // Four Store instances (separate connections: like four processes), two threads on each.
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(open());
  std::vector<std::vector<std::int64_t>> claimed(8);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Store& s = *stores[static_cast<std::size_t>(t % 4)];
      const std::string worker = "w" + std::to_string(t);
      for (;;) {
        auto j = s.claim_job(worker, 60000);
        if (!j.ok()) {
          ++errors;
          ADD_FAILURE() << j.error().to_string();
          return;
        }
        if (!j->has_value()) return;
        claimed[static_cast<std::size_t>(t)].push_back((*j)->id);
        auto fin = s.finish_job((*j)->id, worker, "completed", nullptr);
        if (!fin.ok() || !*fin) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::multiset<std::int64_t> seen;
  int busy_threads = 0;
  for (const auto& ids : claimed) {
    seen.insert(ids.begin(), ids.end());
    busy_threads += ids.empty() ? 0 : 1;
  }
  EXPECT_EQ(seen.size(), all_ids.size()) << "a job was claimed twice or never";
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()), all_ids);
  EXPECT_GT(busy_threads, 1);
  for (const auto& e : must(store_->list_experiments({})).items) {
    for (const auto& j : must(store_->jobs_for(e.id))) {
      EXPECT_EQ(j.status, "completed");
      EXPECT_EQ(j.attempts, 1);
    }
  }
}

// Two real processes (serve + `edgeopt worker`) claiming from one store folder or database.
TEST_P(StoreTest, TwoProcessesShareTheQueue) {
  const std::string a = make("alice", "two processes").id;
  std::vector<Job> jobs;
  for (int i = 0; i < 150; ++i) jobs.push_back(job(a, "technique", 0, "t" + std::to_string(i)));
  must_ok(store_->enqueue_jobs(jobs));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto own = open_store(location_);  // its own connection, never the parent's (and _exit, not exit:
                                       // the parent's connections must not be closed from here)
    int code = own.ok() ? 0 : 2;
    while (code == 0) {
      auto j = (*own)->claim_job("child", 60000);
      if (!j.ok()) code = 3;
      if (code != 0 || !j->has_value()) break;
      const std::int64_t id = (*j)->id;
      if (::write(pipe_fds[1], &id, sizeof id) != sizeof id) code = 4;
      auto fin = (*own)->finish_job(id, "child", "completed", nullptr);
      if (!fin.ok() || !*fin) code = 5;
    }
    ::close(pipe_fds[1]);
    ::_exit(code);
  }
  ::close(pipe_fds[1]);
  std::vector<std::int64_t> mine;
  for (;;) {
    auto j = must(store_->claim_job("parent", 60000));
    if (!j.has_value()) break;
    mine.push_back(j->id);
    EXPECT_TRUE(must(store_->finish_job(j->id, "parent", "completed", nullptr)));
  }
  std::vector<std::int64_t> theirs;
  std::int64_t id = 0;
  while (::read(pipe_fds[0], &id, sizeof id) == sizeof id) theirs.push_back(id);
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::set<std::int64_t> unique(mine.begin(), mine.end());
  unique.insert(theirs.begin(), theirs.end());
  EXPECT_EQ(unique.size(), mine.size() + theirs.size()) << "a job ran in both processes";
  EXPECT_EQ(unique.size(), 150U);
  for (const auto& j : must(store_->jobs_for(a))) EXPECT_EQ(j.status, "completed");
}

// ---- events ----

TEST_P(StoreTest, ConcurrentAppendersGetGaplessOrderedSeqs) {
  const std::string a = make("alice", "events").id;
  const std::string b = make("alice", "other events").id;
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(open());
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Store& s = *stores[static_cast<std::size_t>(t % 4)];
      for (int i = 0; i < kEach; ++i) {
        if (!s.append_event(t % 2 == 0 ? a : b, "technique_progress", {{"thread", t}, {"i", i}}).ok()) ++errors;
        if (!s.append_event(a, "log", {{"thread", t}, {"i", i}}).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  for (const auto& [id, expected] : {std::pair{a, kThreads * kEach + kThreads / 2 * kEach},
                                     std::pair{b, kThreads / 2 * kEach}}) {
    const auto events = must(store_->events_after(id, 0, 100000));
    ASSERT_EQ(events.size(), static_cast<std::size_t>(expected));
    std::map<std::pair<std::string, int>, int> last;  // (type, thread) -> last i seen
    for (std::size_t k = 0; k < events.size(); ++k) {
      EXPECT_EQ(events[k].seq, static_cast<std::int64_t>(k + 1)) << "gap or disorder";
      EXPECT_EQ(events[k].experiment_id, id);
      const int t = events[k].data["thread"];
      const int i = events[k].data["i"];
      auto [it, fresh] = last.emplace(std::pair{events[k].type, t}, i);
      if (!fresh) {
        EXPECT_EQ(i, it->second + 1) << "one appender's events out of order";
        it->second = i;
      }
    }
  }
  EXPECT_EQ(store_->append_event("no-such-id", "status", {}).error().code, ErrorCode::kNotFound);
}

TEST_P(StoreTest, EventsAfterPages) {
  const std::string a = make("alice", "paging").id;
  const std::int64_t before = now_ms();
  for (int i = 1; i <= 25; ++i) EXPECT_EQ(must(store_->append_event(a, "log", {{"line", i}})), i);
  auto page = must(store_->events_after(a, 0, 10));
  ASSERT_EQ(page.size(), 10U);
  EXPECT_EQ(page.front().seq, 1);
  EXPECT_EQ(page.back().seq, 10);
  EXPECT_EQ(page.front().type, "log");
  EXPECT_EQ(page.front().data, (nlohmann::json{{"line", 1}}));
  EXPECT_GE(page.front().time_ms, before);
  page = must(store_->events_after(a, 10, 10));
  ASSERT_EQ(page.size(), 10U);
  EXPECT_EQ(page.front().seq, 11);
  page = must(store_->events_after(a, 20, 10));
  ASSERT_EQ(page.size(), 5U);
  EXPECT_EQ(page.back().seq, 25);
  EXPECT_TRUE(must(store_->events_after(a, 25, 10)).empty());
  EXPECT_TRUE(must(store_->events_after("no-such-id", 0, 10)).empty());
  EXPECT_EQ(store_->events_after(a, 0, -1).error().code, ErrorCode::kInvalidArgument);
}

// ---- tokens ----

TEST_P(StoreTest, Tokens) {
  must_ok(store_->add_token({"bob", std::string(64, 'b'), 0}));
  must_ok(store_->add_token({"alice", std::string(64, 'a'), 42}));
  auto dup = store_->add_token({"alice", std::string(64, 'c'), 0});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->add_token({"carol", std::string(64, 'a'), 0}).error().code, ErrorCode::kInvalidArgument);
  auto found = must(store_->find_token_by_hash(std::string(64, 'a')));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->name, "alice");
  EXPECT_EQ(found->created_ms, 42);
  EXPECT_FALSE(must(store_->find_token_by_hash(std::string(64, 'z'))).has_value());
  const auto tokens = must(store_->list_tokens());
  ASSERT_EQ(tokens.size(), 2U);
  EXPECT_EQ(tokens[0].name, "alice");
  EXPECT_EQ(tokens[1].name, "bob");
  EXPECT_GT(tokens[1].created_ms, 0);
  must_ok(store_->delete_token("alice"));
  EXPECT_FALSE(must(store_->find_token_by_hash(std::string(64, 'a'))).has_value());
  EXPECT_EQ(store_->delete_token("alice").error().code, ErrorCode::kNotFound);
}

// ---- migrations ----

TEST_P(StoreTest, MigrationsAreIdempotentOnReopen) {
  const auto& migrations = is_postgres() ? detail::postgres_migrations() : detail::sqlite_migrations();
  ASSERT_FALSE(migrations.empty());
  for (std::size_t i = 0; i < migrations.size(); ++i) EXPECT_EQ(migrations[i].version, static_cast<int>(i + 1));
  const int newest = migrations.back().version;
  EXPECT_EQ(must(store_->schema_version()), newest);
  const std::string id = make("alice", "survives").id;
  must_ok(store_->put_blob(id + "/model.onnx", "bytes"));
  store_.reset();
  for (int i = 0; i < 2; ++i) {
    store_ = open();
    ASSERT_NE(store_, nullptr);
    EXPECT_EQ(must(store_->schema_version()), newest);
    EXPECT_TRUE(must(store_->get_experiment(id)).has_value());
    EXPECT_EQ(must(store_->get_blob(id + "/model.onnx")), "bytes");
    store_.reset();
  }
  // Several openers at once (serve and workers starting together) apply nothing twice.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      if (!open_store(location_).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  // A database from a newer edgeopt is refused, not half-understood.
  raw_sql("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (9999, '9999_future', 0)");
  auto newer = open_store(location_);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(newer.error().message.find("9999"), std::string::npos) << newer.error().message;
  store_ = nullptr;
}

// A database left at version 1 by an older edgeopt is brought up to date, its data kept.
TEST_P(StoreTest, UpgradesAnOlderDatabase) {
  const auto& migrations = is_postgres() ? detail::postgres_migrations() : detail::sqlite_migrations();
  const std::string old_db = fresh_location();
  raw_sql_at(old_db, std::string(migrations[0].sql) +
                         ";CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                         "applied_ms BIGINT NOT NULL);"
                         "INSERT INTO schema_migrations VALUES (1, '0001_init', 0);"
                         "INSERT INTO experiments (id, owner, name, status, config, model, dataset, results, error, "
                         "progress, created_ms, updated_ms) VALUES ('old', 'alice', 'from v1', 'completed', '{}', "
                         "'null', 'null', 'null', '', 1, 1, 1)");
  auto upgraded = open_store(old_db);
  ASSERT_TRUE(upgraded.ok()) << upgraded.error().to_string();
  EXPECT_EQ(must((*upgraded)->schema_version()), migrations.back().version);
  auto kept = must((*upgraded)->get_experiment("old"));
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->name, "from v1");
  must_ok((*upgraded)->enqueue_jobs({job("old", "baseline", 0)}));
  EXPECT_TRUE(must((*upgraded)->claim_job("w", 60000)).has_value());
}

TEST_P(StoreTest, UnreachableLocationIsAClearError) {
  if (is_postgres()) {
    auto r = open_store("postgresql://edgeopt:secret@127.0.0.1:1/none?connect_timeout=2");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kIo);
    EXPECT_EQ(r.error().message.find("secret"), std::string::npos) << "the password leaked: " << r.error().message;
    EXPECT_FALSE(r.error().hint.empty());
  } else {
    const fs::path file = folder_ / "a-file";
    std::ofstream(file) << "not a folder";
    auto r = open_store(file.string());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    fs::create_directories(folder_ / "garbage");
    std::ofstream(folder_ / "garbage" / "edgeopt.db") << std::string(4096, 'x');
    auto corrupt = open_store((folder_ / "garbage").string());
    ASSERT_FALSE(corrupt.ok());
    EXPECT_EQ(corrupt.error().code, ErrorCode::kCorruptFile) << corrupt.error().to_string();
  }
  EXPECT_EQ(open_store("").error().code, ErrorCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace edgeopt::store
