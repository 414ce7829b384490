#include "service/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace edgeopt::service {

void log_line(const std::string& message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf call: stdio locks the stream for its duration, so lines never interleave.
  std::fprintf(stderr, "%s.%03lldZ %s\n", stamp, static_cast<long long>(ms), message.c_str());
}

}  // namespace edgeopt::service
