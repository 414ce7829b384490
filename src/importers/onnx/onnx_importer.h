// ONNX (opsets 7-18, any producer) into the IR.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::onnx_import {

Result<ir::Graph> import_file(const std::string& path);
// `source` names the bytes in error messages.
Result<ir::Graph> import_bytes(std::string_view bytes, const std::string& source);

}  // namespace edgeopt::onnx_import
