// One line to stderr with a UTC timestamp, whole even when threads log at once.
#pragma once

#include <string>

namespace edgeopt::service {

void log_line(const std::string& message);

}  // namespace edgeopt::service
