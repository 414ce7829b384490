// The HTTP layer: Boost.Beast on one Asio thread for every connection (an open SSE stream costs
// a socket and a few buffers, never a thread), handlers on a small pool so a slow one (an upload
// being imported) never stalls the others. Knows nothing of EdgeOpt but the event log it streams.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "store/store.h"

namespace edgeopt::server {

struct HttpRequest {
  std::string method;   // "GET", "POST", ...
  std::string target;   // as sent: path and query
  std::string path;     // decoded path without the query
  std::map<std::string, std::string> query;    // decoded; a repeated key keeps its last value
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;       // the body of an ordinary request
  std::string body_file;  // an upload's body, streamed to this file (removed after the handler)
  std::string peer;       // the client's address
  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A Server-Sent Events stream of one experiment's event log, from after `after_seq`.
struct SseStream {
  std::string experiment_id;
  std::int64_t after_seq = 0;
  // Sent as the only event when the experiment was never started (the stream then ends).
  std::optional<std::string> not_started_message;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string file;                 // when set, the body is this file's content
  bool remove_file_after = false;   // a temporary file made for this response
  std::string download_name;        // Content-Disposition: attachment; filename=...
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<SseStream> sse;     // when set, the connection becomes an event stream
};

using Handler = std::function<HttpResponse(HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                                // 0: any free port
  int handler_threads = 4;
  std::uint64_t max_body_bytes = 1 << 20;         // ordinary requests
  std::uint64_t max_upload_bytes = 512ULL << 20;  // requests `is_upload` picks
  std::string upload_dir;                         // where upload bodies are streamed; must exist
  std::function<bool(const std::string& method, const std::string& path)> is_upload;
  std::vector<std::string> cors_origins;          // exact origins; never "*"
  int sse_poll_ms = 200;                          // how often watched event logs are read
  int sse_heartbeat_s = 15;
};

struct HttpStats {
  std::int64_t requests = 0;
  std::int64_t responses_4xx = 0;
  std::int64_t responses_5xx = 0;
  std::int64_t sse_clients = 0;
  std::int64_t sse_events_sent = 0;
  std::int64_t open_connections = 0;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler, store::Store& store);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the port (useful with port 0).
  Result<int> listen();
  // Serves until stop() (from any thread or a signal handler's thread).
  void run();
  void stop();
  HttpStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The JSON error every route answers bad input with: {"error": {"code", "message", "details"}}.
HttpResponse error_response(int status, const std::string& code, const std::string& message, const std::string& hint = {});

}  // namespace edgeopt::server
