// Whole-file writes that never leave a half-written file behind.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace edgeopt {

// Writes `bytes` to `path + ".partial"`, then renames it into place; on failure removes the
// temporary file and `path` is untouched.
Status write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace edgeopt
