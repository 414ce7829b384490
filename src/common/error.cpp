#include "common/error.h"

namespace edgeopt {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kCorruptFile: return "corrupt_file";
    case ErrorCode::kUnsupportedFormat: return "unsupported_format";
    case ErrorCode::kUnsupportedOp: return "unsupported_op";
    case ErrorCode::kShapeMismatch: return "shape_mismatch";
    case ErrorCode::kUnsafeArchive: return "unsafe_archive";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kNetwork: return "network";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

std::string Error::to_string() const {
  std::string out = message;
  if (!hint.empty()) out += "\n  hint: " + hint;
  return out;
}

}  // namespace edgeopt
