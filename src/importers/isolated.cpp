#include "importers/isolated.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "format/eom.h"

#if defined(__SANITIZE_ADDRESS__)
#define EDGEOPT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGEOPT_UNDER_ASAN 1
#endif
#endif
#ifndef EDGEOPT_UNDER_ASAN
#define EDGEOPT_UNDER_ASAN 0
#endif

namespace edgeopt {
namespace {

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

[[noreturn]] void run_child(int fd, const std::function<Result<ir::Graph>()>& import, const IsolationLimits& limits) {
  const rlimit cpu{limits.cpu_seconds, limits.cpu_seconds};
  setrlimit(RLIMIT_CPU, &cpu);
#if !EDGEOPT_UNDER_ASAN
  // Not under AddressSanitizer, whose shadow memory needs far more address space than any limit.
  const rlimit mem{limits.memory_bytes, limits.memory_bytes};
  setrlimit(RLIMIT_AS, &mem);
#endif
  std::string message;
  Result<ir::Graph> result = import();
  if (result.ok()) {
    Result<std::string> bytes = format::write_eom_bytes(result.value());
    message = bytes.ok() ? "G" + bytes.value()
                         : "E" + nlohmann::json{{"code", static_cast<int>(bytes.error().code)}, {"message", bytes.error().message}, {"hint", bytes.error().hint}}.dump();
  } else {
    const Error& e = result.error();
    message = "E" + nlohmann::json{{"code", static_cast<int>(e.code)}, {"message", e.message}, {"hint", e.hint}}.dump();
  }
  _exit(write_all(fd, message) ? 0 : 1);  // _exit: no atexit handlers or static destructors of the parent's state
}

}  // namespace

Result<ir::Graph> import_isolated(const std::function<Result<ir::Graph>()>& import, const std::string& source,
                                  const IsolationLimits& limits) {
  int fds[2];
  if (pipe(fds) != 0) return Error{ErrorCode::kIo, std::string("cannot create a pipe: ") + std::strerror(errno)};
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Error{ErrorCode::kIo, std::string("cannot start the import process: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    close(fds[0]);
    run_child(fds[1], import, limits);
  }
  close(fds[1]);
  // The parent enforces the wall-clock limit: a child stuck in a loop (or a lock) is killed.
  unsigned wall_seconds = limits.wall_seconds;
  if (const char* env = std::getenv("EDGEOPT_IMPORT_TIMEOUT_S"); env && std::atoi(env) > 0) wall_seconds = static_cast<unsigned>(std::atoi(env));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wall_seconds);
  std::string reply;
  char buffer[1 << 16];
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Error{ErrorCode::kCorruptFile, source + ": reading the file took longer than " + std::to_string(wall_seconds) + " s; it is damaged or crafted",
                 "save the model again from its framework; nothing else was affected"};
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const bool limit = sig == SIGXCPU || sig == SIGKILL;
    return Error{ErrorCode::kCorruptFile,
                 source + (limit ? ": reading the file exceeded the time or memory limit (signal " : ": the file crashed the parser (signal ") +
                     std::to_string(sig) + "); it is damaged or crafted",
                 "save the model again from its framework; nothing else was affected"};
  }
  if (reply.empty() || (reply[0] != 'G' && reply[0] != 'E')) {
    return Error{ErrorCode::kCorruptFile, source + ": the import process ended without a result (exit status " +
                                              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")",
                 "the file may be damaged or too large; save it again from its framework"};
  }
  if (reply[0] == 'G') return format::read_eom_bytes(std::string_view(reply).substr(1), source);
  try {
    const auto j = nlohmann::json::parse(reply.substr(1));
    return Error{static_cast<ErrorCode>(j.at("code").get<int>()), j.at("message").get<std::string>(), j.at("hint").get<std::string>()};
  } catch (const std::exception&) {
    return Error{ErrorCode::kInternal, source + ": the import process sent an unreadable reply"};
  }
}

}  // namespace edgeopt
