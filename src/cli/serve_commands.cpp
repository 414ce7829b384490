#include "cli/serve_commands.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/cli_common.h"
#include "estimator/devices.h"
#include "server/api.h"
#include "server/http.h"
#include "service/log.h"
#include "service/service.h"
#include "service/worker.h"
#include "store/store.h"

namespace edgeopt::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

struct StoreArgs {
  std::string store_dir = "edgeopt-store";
  std::string database;  // postgresql://... (wins over --store)
  std::string location() const { return database.empty() ? store_dir : database; }
};

void add_store_options(CLI::App* cmd, StoreArgs& a) {
  cmd->add_option("--store", a.store_dir, "folder for the SQLite database and files (default: ./edgeopt-store)");
  cmd->add_option("--database", a.database, "postgresql://user@host/db: keep everything in PostgreSQL instead")->envname("EDGEOPT_DATABASE_URL");
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0; }

Result<std::string> scratch_folder(const std::string& base, const std::string& given) {
  std::error_code ec;
  const fs::path dir = given.empty() ? fs::path(base) / "scratch" : fs::path(given);
  fs::create_directories(dir, ec);
  if (ec) return Error{ErrorCode::kIo, "cannot create the scratch folder '" + dir.string() + "': " + ec.message(), "pass a writable --scratch"};
  return dir.string();
}

struct ServeArgs {
  StoreArgs store;
  std::string host = "127.0.0.1";
  int port = 8000;
  int workers = -1;
  std::string data_dir;
  std::string web_dir;
  std::string zoo_dir;
  std::string scratch;
  std::vector<std::string> cors;
  double max_upload_mb = 512;
  bool auth = false;
  int max_active = 8;
  double lease_seconds = 20;
};

int run_serve(const ServeArgs& a) {
  auto store = store::open_store(a.store.location());
  if (!store) return report_error(store.error(), false);
  const std::string base = a.store.database.empty() ? a.store.store_dir : (fs::temp_directory_path() / ("edgeopt-serve-" + std::to_string(getpid()))).string();
  auto scratch = scratch_folder(base, a.scratch);
  if (!scratch) return report_error(scratch.error(), false);
  const std::string uploads = (fs::path(scratch.value()) / "uploads").string();
  std::error_code ec;
  fs::create_directories(uploads, ec);
  for (const std::string& origin : a.cors) {
    if (origin == "*" || origin.find("://") == std::string::npos) {
      return report_error(Error{ErrorCode::kInvalidArgument, "--cors-origin '" + origin + "' is not an origin", "give exact origins like http://localhost:5173; '*' is never allowed"}, false);
    }
  }
  service::ServiceOptions so;
  so.scratch_dir = scratch.value();
  so.zoo_dir = a.zoo_dir.empty() ? (fs::path(estimator::find_data_dir()) / "zoo" / "pretrained").string() : a.zoo_dir;
  so.max_active_experiments = a.max_active;
  service::Service service(*store.value(), so);

  const int workers = a.workers >= 0 ? a.workers : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  service::WorkerOptions wo;
  wo.concurrency = workers;
  wo.scratch_dir = scratch.value();
  wo.data_dir = a.data_dir;
  wo.lease_ms = static_cast<std::int64_t>(a.lease_seconds * 1000);
  std::unique_ptr<service::Worker> worker;
  if (workers > 0) worker = std::make_unique<service::Worker>(*store.value(), wo);

  server::ApiOptions ao;
  ao.auth_required = a.auth || !is_loopback(a.host);
  ao.data_dir = a.data_dir;
  ao.web_dir = find_web_dir(a.web_dir);
  ao.scratch_dir = scratch.value();
  ao.workers_in_process = workers;
  // /metrics reads the HTTP server's counters; the server is made after the API it calls.
  std::atomic<server::HttpServer*> http_for_stats{nullptr};
  ao.http_stats = [&http_for_stats] {
    server::HttpServer* h = http_for_stats.load();
    return h ? h->stats() : server::HttpStats{};
  };
  server::Api api(service, ao);
  server::HttpServerOptions ho;
  ho.host = a.host;
  ho.port = a.port;
  ho.upload_dir = uploads;
  ho.max_upload_bytes = static_cast<std::uint64_t>(a.max_upload_mb * 1024 * 1024);
  ho.is_upload = &server::Api::is_upload;
  ho.cors_origins = a.cors;
  server::HttpServer http(ho, [&api](server::HttpRequest& r) { return api.handle(r); }, *store.value());
  auto port = http.listen();
  if (!port) return report_error(port.error(), false);
  http_for_stats = &http;

  if (ao.auth_required) {
    auto tokens = store.value()->list_tokens();
    if (tokens && tokens->empty()) {
      service::log_line("warning: this server needs bearer tokens and none exists yet: create one with `edgeopt tokens create NAME`");
    }
  }
  std::printf("EdgeOpt serving on http://%s:%d (store: %s%s, %d in-process worker%s%s)\n", a.host.c_str(), port.value(),
              store.value()->backend_name().c_str(), a.store.database.empty() ? (" in " + a.store.store_dir).c_str() : "", workers,
              workers == 1 ? "" : "s", ao.auth_required ? ", bearer tokens required" : "");
  std::printf("open http://%s:%d/ in a browser; API docs at /docs\n", a.host.c_str(), port.value());
  std::fflush(stdout);

  if (auto n = service.reconcile(); n && n.value() > 0) service::log_line("marked " + std::to_string(n.value()) + " interrupted experiments failed");
  if (worker) worker->start();
  g_stop = false;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::thread watchdog([&] {
    int ticks = 0;
    while (!g_stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (++ticks % 50 == 0) (void)service.reconcile();  // every 5 s
    }
    http.stop();
  });
  http.run();
  g_stop = true;
  watchdog.join();
  service::log_line("stopping: running jobs are handed back to the queue");
  if (worker) worker->stop();
  return 0;
}

struct WorkerArgs {
  StoreArgs store;
  int concurrency = 1;
  std::string data_dir;
  std::string scratch;
  std::string name;
  double lease_seconds = 20;
};

int run_worker(const WorkerArgs& a) {
  auto store = store::open_store(a.store.location());
  if (!store) return report_error(store.error(), false);
  const std::string base = a.store.database.empty() ? a.store.store_dir : (fs::temp_directory_path() / ("edgeopt-worker-" + std::to_string(getpid()))).string();
  auto scratch = scratch_folder(base, a.scratch);
  if (!scratch) return report_error(scratch.error(), false);
  service::WorkerOptions wo;
  wo.name = a.name;
  wo.concurrency = a.concurrency;
  wo.scratch_dir = scratch.value();
  wo.data_dir = a.data_dir;
  wo.lease_ms = static_cast<std::int64_t>(a.lease_seconds * 1000);
  service::Worker worker(*store.value(), wo);
  std::printf("EdgeOpt worker %s: %d job%s at once from %s\n", worker.name().c_str(), a.concurrency, a.concurrency == 1 ? "" : "s",
              store.value()->backend_name().c_str());
  std::fflush(stdout);
  g_stop = false;
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  worker.start();
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  worker.stop();
  return 0;
}

}  // namespace

void add_serve_commands(CLI::App& app, int& exit_code) {
  auto s = std::make_shared<ServeArgs>();
  auto* serve = app.add_subcommand("serve", "serve the REST API, live progress (SSE) and the web UI, with in-process workers");
  add_store_options(serve, s->store);
  serve->add_option("--host", s->host, "address to listen on (off loopback, bearer tokens are required)");
  serve->add_option("--port", s->port, "port (0: any free one)")->check(CLI::Range(0, 65535));
  serve->add_option("--workers", s->workers, "jobs run in this process at once (0: none, only `edgeopt worker`; default: one per core)")->check(CLI::Range(0, 64));
  serve->add_option("--data-dir", s->data_dir, "where preset datasets are found")->envname("EDGEOPT_DATA_DIR");
  serve->add_option("--web-dir", s->web_dir, "the built web UI (default: web/dist of this checkout)");
  serve->add_option("--zoo-dir", s->zoo_dir, "trained zoo models offered instead of uploads (default: data/zoo/pretrained)");
  serve->add_option("--scratch", s->scratch, "temporary files (default: STORE/scratch)");
  serve->add_option("--cors-origin", s->cors, "an origin allowed to call the API from a browser, repeatable (never *)");
  serve->add_option("--max-upload-mb", s->max_upload_mb, "largest upload")->check(CLI::Range(1.0, 65536.0));
  serve->add_option("--max-active", s->max_active, "experiments a user may have queued or running at once")->check(CLI::Range(1, 1000));
  serve->add_flag("--auth", s->auth, "require bearer tokens on loopback too");
  serve->add_option("--lease-seconds", s->lease_seconds, "a job whose worker stops answering this long is run again elsewhere")->check(CLI::Range(2.0, 3600.0));
  serve->callback([s, &exit_code] { exit_code = run_serve(*s); });

  auto w = std::make_shared<WorkerArgs>();
  auto* worker = app.add_subcommand("worker", "run jobs from a shared store (PostgreSQL for other machines, or --store on this one)");
  add_store_options(worker, w->store);
  worker->add_option("--concurrency", w->concurrency, "jobs at once")->check(CLI::Range(1, 64));
  worker->add_option("--data-dir", w->data_dir, "where preset datasets are found")->envname("EDGEOPT_DATA_DIR");
  worker->add_option("--scratch", w->scratch, "temporary files");
  worker->add_option("--name", w->name, "this worker's name in job records (default: host:pid)");
  worker->add_option("--lease-seconds", w->lease_seconds, "a job whose worker stops answering this long is run again elsewhere")->check(CLI::Range(2.0, 3600.0));
  worker->callback([w, &exit_code] { exit_code = run_worker(*w); });

  auto t = std::make_shared<StoreArgs>();
  auto name = std::make_shared<std::string>();
  auto* tokens = app.add_subcommand("tokens", "API tokens: each names a user who sees only their own experiments");
  tokens->require_subcommand(1);
  auto* create = tokens->add_subcommand("create", "create a token for NAME and print its secret (shown once)");
  add_store_options(create, *t);
  create->add_option("name", *name, "the user's name")->required();
  create->callback([t, name, &exit_code] {
    auto store = store::open_store(t->location());
    if (!store) {
      exit_code = report_error(store.error(), false);
      return;
    }
    const std::string secret = server::new_token_secret();
    store::Token token{*name, server::token_hash(secret), store::now_ms()};
    if (Status s = store.value()->add_token(token); !s) {
      exit_code = report_error(s.error(), false);
      return;
    }
    std::printf("%s\n", secret.c_str());
    std::fprintf(stderr, "token for '%s' created; send it as 'Authorization: Bearer %s'. It is not stored and cannot be shown again.\n",
                 name->c_str(), secret.c_str());
    exit_code = 0;
  });
  auto* list = tokens->add_subcommand("list", "list the tokens' names");
  add_store_options(list, *t);
  list->callback([t, &exit_code] {
    auto store = store::open_store(t->location());
    if (!store) {
      exit_code = report_error(store.error(), false);
      return;
    }
    auto all = store.value()->list_tokens();
    if (!all) {
      exit_code = report_error(all.error(), false);
      return;
    }
    for (const auto& tok : all.value()) std::printf("%s\n", tok.name.c_str());
    exit_code = 0;
  });
  auto* remove = tokens->add_subcommand("delete", "delete NAME's token");
  add_store_options(remove, *t);
  remove->add_option("name", *name, "the user's name")->required();
  remove->callback([t, name, &exit_code] {
    auto store = store::open_store(t->location());
    if (!store) {
      exit_code = report_error(store.error(), false);
      return;
    }
    Status s = store.value()->delete_token(*name);
    exit_code = s ? 0 : report_error(s.error(), false);
  });
}

}  // namespace edgeopt::cli
