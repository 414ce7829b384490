// libFuzzer: multipart/form-data bodies as the upload routes receive them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  // The first line, when it looks like one, is the Content-Type header; the rest the body.
  const std::size_t eol = body.find('\n');
  const std::string_view header = eol == std::string_view::npos ? std::string_view("multipart/form-data; boundary=x") : body.substr(0, eol);
  const std::string_view rest = eol == std::string_view::npos ? body : body.substr(eol + 1);
  if (auto boundary = edgeopt::server::multipart_boundary(header)) {
    auto parts = edgeopt::server::parse_multipart(rest, *boundary);
    if (parts) {
      for (const auto& p : parts.value()) {
        // Every part's data must lie inside the body.
        if (p.data.data() < rest.data() || p.data.data() + p.data.size() > rest.data() + rest.size()) __builtin_trap();
      }
    }
  }
  return 0;
}
