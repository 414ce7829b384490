// multipart/form-data bodies (RFC 7578), parsed in place: each part is a view into the body,
// so a large upload is never copied. Hostile input gets an Error, never a crash (fuzzed:
// tests/fuzz/fuzz_multipart.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace edgeopt::server {

struct MultipartPart {
  std::string name;      // the form field's name
  std::string filename;  // empty for a plain field
  std::string content_type;
  std::string_view data;  // into the body
};

// The boundary parameter of a Content-Type header, or nullopt when it is not multipart/form-data
// with a valid boundary.
std::optional<std::string> multipart_boundary(std::string_view content_type);

// At most `max_parts` parts; each part's headers at most 8 KiB.
Result<std::vector<MultipartPart>> parse_multipart(std::string_view body, std::string_view boundary, std::size_t max_parts = 32);

}  // namespace edgeopt::server
