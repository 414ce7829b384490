#include "server/http.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "service/log.h"

namespace edgeopt::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;

HttpResponse error_response(int status, const std::string& code, const std::string& message, const std::string& hint) {
  HttpResponse r;
  r.status = status;
  json details = json::object();
  if (!hint.empty()) details["hint"] = hint;
  r.body = json{{"error", {{"code", code}, {"message", message}, {"details", details}}}}.dump();
  return r;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; '+' is a space only in query strings.
std::string url_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string random_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  std::random_device rd;
  return std::to_string(rd()) + "-" + std::to_string(counter++);
}

std::string sse_frame(const store::Event& e) {
  // `data:` must not hold a raw newline; compact JSON has none.
  return "id: " + std::to_string(e.seq) + "\nevent: " + e.type + "\ndata: " + e.data.dump() + "\n\n";
}

bool is_terminal_event(const store::Event& e) {
  if (e.type != "status") return false;
  const std::string s = e.data.value("status", "");
  return s == "completed" || s == "failed" || s == "cancelled";
}

}  // namespace

class SseSink {
 public:
  virtual ~SseSink() = default;
  virtual void send(std::shared_ptr<const std::string> frame) = 0;
  virtual void finish() = 0;
  virtual bool closed() const = 0;
};

// Every watched experiment's event log, read once per poll however many clients watch it, and
// fanned out to them. Lives on the I/O thread (no locks): subscribe, poll and heartbeat all run
// there.
class EventHub {
 public:
  EventHub(net::io_context& io, store::Store& store, int poll_ms, int heartbeat_s, std::atomic<std::int64_t>& sent)
      : io_(io), store_(store), poll_ms_(poll_ms), heartbeat_s_(heartbeat_s), sent_(sent), timer_(io) {}

  void start() { schedule(); }
  void stop() { timer_.cancel(); }

  void subscribe(const std::shared_ptr<SseSink>& sink, const std::string& id, std::int64_t after_seq) {
    Topic& topic = topics_[id];
    if (!topic.loaded) {
      load(id, topic);
      topic.loaded = true;
    }
    for (const auto& [seq, frame] : topic.frames) {
      if (seq > after_seq) {
        sink->send(frame);
        ++sent_;
      }
    }
    if (topic.terminal) {
      sink->finish();
      return;
    }
    topic.sinks.push_back(sink);
  }

  std::int64_t watchers() const {
    std::int64_t n = 0;
    for (const auto& [id, t] : topics_) n += static_cast<std::int64_t>(t.sinks.size());
    return n;
  }

 private:
  struct Topic {
    bool loaded = false;
    bool terminal = false;
    std::int64_t last_seq = 0;
    std::vector<std::pair<std::int64_t, std::shared_ptr<const std::string>>> frames;
    std::vector<std::weak_ptr<SseSink>> sinks;
  };

  // Reads what is new; returns the new frames.
  std::vector<std::shared_ptr<const std::string>> load(const std::string& id, Topic& topic) {
    std::vector<std::shared_ptr<const std::string>> fresh;
    for (;;) {
      auto events = store_.events_after(id, topic.last_seq, 1000);
      if (!events) {
        service::log_line("sse: cannot read events of " + id + ": " + events.error().to_string());
        break;
      }
      for (const store::Event& e : events.value()) {
        auto frame = std::make_shared<const std::string>(sse_frame(e));
        topic.frames.emplace_back(e.seq, frame);
        fresh.push_back(frame);
        topic.last_seq = e.seq;
        if (is_terminal_event(e)) topic.terminal = true;
      }
      if (events->size() < 1000) break;
    }
    return fresh;
  }

  void schedule() {
    timer_.expires_after(std::chrono::milliseconds(poll_ms_));
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      poll();
      schedule();
    });
  }

  void poll() {
    const auto now = std::chrono::steady_clock::now();
    const bool beat = now - last_heartbeat_ >= std::chrono::seconds(heartbeat_s_);
    if (beat) last_heartbeat_ = now;
    static const auto heartbeat = std::make_shared<const std::string>(": heartbeat\n\n");
    for (auto it = topics_.begin(); it != topics_.end();) {
      Topic& topic = it->second;
      std::vector<std::shared_ptr<SseSink>> live;
      for (auto& weak : topic.sinks) {
        if (auto s = weak.lock(); s && !s->closed()) live.push_back(std::move(s));
      }
      if (live.empty()) {
        it = topics_.erase(it);  // nobody watches: forget it (read again on the next subscribe)
        continue;
      }
      topic.sinks.assign(live.begin(), live.end());
      auto fresh = load(it->first, topic);
      for (const auto& s : live) {
        for (const auto& frame : fresh) {
          s->send(frame);
          ++sent_;
        }
        if (beat && fresh.empty()) s->send(heartbeat);
        if (topic.terminal) s->finish();
      }
      if (topic.terminal) {
        it = topics_.erase(it);
        continue;
      }
      ++it;
    }
  }

  net::io_context& io_;
  store::Store& store_;
  int poll_ms_;
  int heartbeat_s_;
  std::atomic<std::int64_t>& sent_;
  net::steady_timer timer_;
  std::chrono::steady_clock::time_point last_heartbeat_ = std::chrono::steady_clock::now();
  std::unordered_map<std::string, Topic> topics_;
};

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  store::Store& store;
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  net::thread_pool pool;
  std::atomic<std::int64_t> requests{0}, responses_4xx{0}, responses_5xx{0}, sse_sent{0}, connections{0};
  std::atomic<std::int64_t> sse_clients{0};
  EventHub hub;
  std::set<std::string> cors;

  Impl(HttpServerOptions o, Handler h, store::Store& s)
      : options(std::move(o)), handler(std::move(h)), store(s), pool(static_cast<std::size_t>(std::max(1, options.handler_threads))),
        hub(io, s, options.sse_poll_ms, options.sse_heartbeat_s, sse_sent), cors(options.cors_origins.begin(), options.cors_origins.end()) {}

  void accept();
};

namespace {

class Session : public SseSink, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server) : stream_(std::move(socket)), server_(server) {
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? "?" : endpoint.address().to_string();
    ++server_.connections;
  }
  ~Session() override {
    --server_.connections;
    if (streaming_) --server_.sse_clients;
    remove_upload();
  }

  void start() { read_header(); }

  // ---- SseSink ----
  void send(std::shared_ptr<const std::string> frame) override {
    if (closed_) return;
    queue_.push_back(std::move(frame));
    if (!writing_) write_next();
  }
  void finish() override {
    finishing_ = true;
    if (!writing_ && queue_.empty()) close();
  }
  bool closed() const override { return closed_; }

 private:
  void read_header() {
    header_parser_.emplace();
    header_parser_->header_limit(16 * 1024);
    // The limit depends on the route, known only once the header is read: checked in on_header
    // against the declared length, and set on the body parser.
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read_header(stream_, buffer_, *header_parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout) return close();
    if (ec) {
      if (ec == http::error::header_limit) return reply_and_close(error_response(431, "header_too_large", "the request headers exceed 16 KiB"));
      return reply_and_close(error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
    }
    const auto& h = header_parser_->get();
    request_ = HttpRequest{};
    request_.method = std::string(h.method_string());
    request_.target = std::string(h.target());
    request_.peer = peer_;
    for (const auto& field : h) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request_.headers[name] = std::string(field.value());
    }
    const std::string_view target(h.target().data(), h.target().size());
    const auto q = target.find('?');
    request_.path = url_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) {
      std::string_view rest = target.substr(q + 1);
      while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        if (!pair.empty()) {
          request_.query[url_decode(pair.substr(0, eq), true)] = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1), true);
        }
        if (amp == std::string_view::npos) break;
        rest = rest.substr(amp + 1);
      }
    }
    keep_alive_ = h.keep_alive();
    const bool upload = server_.options.is_upload && server_.options.is_upload(request_.method, request_.path);
    const std::uint64_t limit = upload ? server_.options.max_upload_bytes : server_.options.max_body_bytes;
    if (header_parser_->content_length() && *header_parser_->content_length() > limit) {
      return reply_and_close(error_response(413, "payload_too_large",
                                            "the request body is " + std::to_string(*header_parser_->content_length()) + " bytes; the limit is " +
                                                std::to_string(limit),
                                            upload ? "start the server with a larger --max-upload-mb" : "send a smaller body"));
    }
    auto continue_then = [this, self = shared_from_this()](auto next) {
      if (!beast::iequals(request_.header("expect"), "100-continue")) return next();
      auto reply = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(stream_, net::buffer(*reply), [self, reply, next](beast::error_code ec, std::size_t) {
        if (ec) return self->close();
        next();
      });
    };
    if (upload) {
      file_parser_.emplace(std::move(*header_parser_));
      file_parser_->body_limit(limit);
      upload_path_ = (std::filesystem::path(server_.options.upload_dir) / ("upload-" + random_suffix() + ".part")).string();
      beast::error_code open_ec;
      file_parser_->get().body().open(upload_path_.c_str(), beast::file_mode::write_new, open_ec);
      if (open_ec) {
        upload_path_.clear();
        return reply_and_close(error_response(507, "storage_unavailable", "the server cannot store the upload: " + open_ec.message()));
      }
      stream_.expires_after(std::chrono::minutes(30));
      continue_then([this, self = shared_from_this()] {
        http::async_read(stream_, buffer_, *file_parser_, [self](beast::error_code ec, std::size_t) { self->on_body(ec); });
      });
    } else {
      string_parser_.emplace(std::move(*header_parser_));
      string_parser_->body_limit(limit);
      if (string_parser_->is_done()) return on_body({});
      continue_then([this, self = shared_from_this()] {
        http::async_read(stream_, buffer_, *string_parser_, [self](beast::error_code ec, std::size_t) { self->on_body(ec); });
      });
    }
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return reply_and_close(error_response(413, "payload_too_large", "the request body exceeds the limit"));
    if (ec) {
      if (ec == http::error::partial_message || ec == net::error::eof || ec == beast::error::timeout) return close();
      return reply_and_close(error_response(400, "bad_request", "malformed HTTP body: " + ec.message()));
    }
    if (file_parser_) {
      file_parser_->get().body().close();
      request_.body_file = upload_path_;
      file_parser_.reset();
    } else if (string_parser_) {
      request_.body = std::move(string_parser_->get().body());
      string_parser_.reset();
    }
    ++server_.requests;
    if (request_.method == "OPTIONS") return respond(preflight());
    stream_.expires_never();
    net::post(server_.pool, [self = shared_from_this()] {
      HttpResponse response;
      try {
        response = self->server_.handler(self->request_);
      } catch (const std::exception& e) {
        response = error_response(500, "internal", std::string("internal error: ") + e.what(), "please report this");
      }
      net::post(self->stream_.get_executor(), [self, r = std::move(response)]() mutable { self->respond(std::move(r)); });
    });
  }

  HttpResponse preflight() const {
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    return r;
  }

  void add_common_headers(http::response_header<>& h, const HttpResponse& r) const {
    h.set(http::field::server, "edgeopt");
    if (!r.content_type.empty()) h.set(http::field::content_type, r.content_type);
    h.set(http::field::cache_control, "no-store");
    h.set("X-Content-Type-Options", "nosniff");
    const std::string origin = request_.header("origin");
    if (!origin.empty() && server_.cors.count(origin)) {
      h.set(http::field::access_control_allow_origin, origin);
      h.set(http::field::vary, "Origin");
      h.set(http::field::access_control_allow_headers, "Authorization, Content-Type, Last-Event-ID");
      h.set(http::field::access_control_allow_methods, "GET, POST, PATCH, DELETE, OPTIONS");
      h.set(http::field::access_control_expose_headers, "Content-Disposition");
    }
    if (!r.download_name.empty()) h.set(http::field::content_disposition, "attachment; filename=\"" + r.download_name + "\"");
    for (const auto& [k, v] : r.headers) h.set(k, v);
  }

  void respond(HttpResponse r) {
    remove_upload();
    if (r.status >= 500) ++server_.responses_5xx;
    else if (r.status >= 400) ++server_.responses_4xx;
    if (r.sse) return start_sse(std::move(r));
    if (!r.file.empty()) {
      auto res = std::make_shared<http::response<http::file_body>>(static_cast<http::status>(r.status), 11);
      beast::error_code ec;
      res->body().open(r.file.c_str(), beast::file_mode::scan, ec);
      if (r.remove_file_after) {
        std::error_code ignored;
        std::filesystem::remove(r.file, ignored);  // the open descriptor keeps it readable
      }
      if (ec) return respond(error_response(500, "internal", "cannot read the file to send: " + ec.message()));
      add_common_headers(res->base(), r);
      res->keep_alive(keep_alive_);
      res->prepare_payload();
      http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) { self->after_write(ec); });
      return;
    }
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    add_common_headers(res->base(), r);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) { self->after_write(ec); });
  }

  void after_write(beast::error_code ec) {
    if (ec) return close();
    if (drain_) return drain();
    if (!keep_alive_) return close();
    read_header();
  }

  // An answer sent before the request was read (413, 400): stop sending, then read and drop what
  // the client still sends for a moment, so it reads the answer instead of a connection reset.
  void reply_and_close(HttpResponse r) {
    keep_alive_ = false;
    drain_ = true;
    respond(std::move(r));
  }

  void drain() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    drain_some();
  }

  void drain_some() {
    stream_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->drain_some();
    });
  }

  void start_sse(HttpResponse r) {
    streaming_ = true;
    ++server_.sse_clients;
    stream_.expires_never();
    http::response_header<> h;
    h.result(http::status::ok);
    h.version(11);
    r.content_type = "text/event-stream";
    r.headers.emplace_back("X-Accel-Buffering", "no");
    add_common_headers(h, r);
    h.set(http::field::cache_control, "no-cache");
    h.set(http::field::connection, "close");
    std::ostringstream head;
    head << h;  // status line and fields, ending with the blank line
    send(std::make_shared<const std::string>(head.str() + "retry: 2000\n\n"));
    // A read that only ends when the client goes away, so a closed stream is noticed at once.
    watch_peer();
    const SseStream s = *r.sse;
    if (s.not_started_message) {
      json data{{"status", "created"}, {"message", *s.not_started_message}};
      send(std::make_shared<const std::string>("id: " + std::to_string(s.after_seq) + "\nevent: status\ndata: " + data.dump() + "\n\n"));
      finish();
      return;
    }
    server_.hub.subscribe(std::static_pointer_cast<SseSink>(shared_from_this()), s.experiment_id, s.after_seq);
  }

  void watch_peer() {
    stream_.socket().async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->watch_peer();
    });
  }

  void write_next() {
    writing_ = true;
    auto frame = queue_.front();
    net::async_write(stream_, net::buffer(*frame), [self = shared_from_this(), frame](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      self->queue_.pop_front();
      if (ec) return self->close();
      if (!self->queue_.empty()) return self->write_next();
      if (self->finishing_) self->close();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    queue_.clear();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  void remove_upload() {
    if (upload_path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove(upload_path_, ec);
    upload_path_.clear();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  HttpRequest request_;
  std::string peer_;
  std::string upload_path_;
  bool keep_alive_ = false;
  bool drain_ = false;
  bool streaming_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool closed_ = false;
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::array<char, 4096> scratch_{};
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), *this)->start();
    accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler, store::Store& store)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler), store)) {}

HttpServer::~HttpServer() {
  stop();
  impl_->pool.join();
}

Result<int> HttpServer::listen() {
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) return Error{ErrorCode::kInvalidArgument, "--host '" + impl_->options.host + "' is not an IP address", "e.g. 127.0.0.1 or 0.0.0.0"};
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(impl_->options.port));
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{ErrorCode::kIo, "cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) + ": " + ec.message(),
                 "is another server running there? pick another --port"};
  }
  return static_cast<int>(a.local_endpoint().port());
}

void HttpServer::run() {
  impl_->accept();
  impl_->hub.start();
  impl_->io.run();
}

void HttpServer::stop() {
  net::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->hub.stop();
    impl_->io.stop();
  });
}

HttpStats HttpServer::stats() const {
  HttpStats s;
  s.requests = impl_->requests;
  s.responses_4xx = impl_->responses_4xx;
  s.responses_5xx = impl_->responses_5xx;
  s.sse_clients = impl_->sse_clients;
  s.sse_events_sent = impl_->sse_sent;
  s.open_connections = impl_->connections;
  return s;
}

}  // namespace edgeopt::server
