// Importing untrusted model files in the sandbox (common/sandbox.h): the import runs in a confined
// child process that may read only the model file (and, for ONNX, the folder its external data
// sits in), with memory, CPU and time limits. The child sends the imported graph back in the
// .eom format (lossless f32), or the error; a crash or a limit hit becomes an error value in the
// parent, which never crashes.
#pragma once

#include <functional>
#include <string>

#include "common/error.h"
#include "common/sandbox.h"
#include "ir/graph.h"

namespace edgeopt {

// The policy for importing the file at path: read it (and, with its_folder, the folder it is
// in), a memory budget from its size.
sandbox::Policy import_policy(const std::string& path, bool its_folder = false);

Result<ir::Graph> import_isolated(const std::function<Result<ir::Graph>()>& import, const std::string& source,
                                  const sandbox::Policy& policy);

}  // namespace edgeopt
