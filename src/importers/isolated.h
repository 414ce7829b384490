// Parsing untrusted files with a library we cannot fully trust (libhdf5 1.10 crashes on some
// crafted files) in a forked child process with CPU, memory and time limits. The child sends the
// imported graph back in the .eom format (lossless f32), or the error; a crash or a limit hit
// becomes an error value in the parent, which never crashes.
#pragma once

#include <functional>
#include <string>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt {

struct IsolationLimits {
  unsigned cpu_seconds = 300;
  unsigned wall_seconds = 600;  // EDGEOPT_IMPORT_TIMEOUT_S overrides it
  unsigned long long memory_bytes = 16ULL << 30;
};

Result<ir::Graph> import_isolated(const std::function<Result<ir::Graph>()>& import, const std::string& source,
                                  const IsolationLimits& limits = {});

}  // namespace edgeopt
