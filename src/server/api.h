// EdgeOpt's REST API over the service: routes, JSON payloads (described once in
// src/server/openapi.json), auth and the one error shape. Handlers never throw and never answer
// bad input with a 5xx.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "server/http.h"
#include "service/service.h"
#include "store/store.h"

namespace edgeopt::server {

struct ApiOptions {
  bool auth_required = false;       // off loopback: every route but /health needs a bearer token
  std::string local_user = "local"; // the owner when auth is off
  std::string data_dir;             // preset datasets (--data-dir)
  std::string resources_dir;        // data/ (devices, estimator, zoo recipes); empty: found automatically
  std::string web_dir;              // the built web UI, served at /; empty: none
  std::string scratch_dir;          // temporary files (downloads being zipped, estimates)
  std::string version = "0.1.0";
  std::function<HttpStats()> http_stats;  // for /metrics
  int workers_in_process = 0;             // for /health
};

class Api {
 public:
  Api(service::Service& service, ApiOptions options);
  ~Api();
  HttpResponse handle(HttpRequest& request);
  // Routes whose body is streamed to a file (uploads).
  static bool is_upload(const std::string& method, const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SHA-256 of a token's secret, as stored (hex).
std::string token_hash(const std::string& secret);
// A new random secret (URL-safe, 256 bits).
std::string new_token_secret();

}  // namespace edgeopt::server
