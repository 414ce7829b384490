#include "server/multipart.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace edgeopt::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value of `key` among `; key=value` parameters (quoted or not).
std::optional<std::string> parameter(std::string_view header_value, std::string_view key) {
  std::size_t pos = 0;
  while (pos < header_value.size()) {
    std::size_t semi = header_value.find(';', pos);
    if (semi == std::string_view::npos) return std::nullopt;
    std::size_t start = semi + 1;
    while (start < header_value.size() && header_value[start] == ' ') ++start;
    const std::size_t eq = header_value.find('=', start);
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string name = lower(trim(header_value.substr(start, eq - start)));
    std::size_t v = eq + 1;
    std::string value;
    if (v < header_value.size() && header_value[v] == '"') {
      ++v;
      while (v < header_value.size() && header_value[v] != '"') {
        if (header_value[v] == '\\' && v + 1 < header_value.size()) ++v;
        value += header_value[v++];
      }
      pos = v < header_value.size() ? v + 1 : v;
    } else {
      const std::size_t end = std::min(header_value.find(';', v), header_value.size());
      value = std::string(trim(header_value.substr(v, end - v)));
      pos = end;
    }
    if (name == key) return value;
  }
  return std::nullopt;
}

Error bad(const std::string& message) {
  return Error{ErrorCode::kInvalidArgument, "malformed multipart/form-data body: " + message,
               "send the file as multipart/form-data, e.g. curl -F file=@model.onnx URL"};
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  const std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (type != "multipart/form-data") return std::nullopt;
  auto b = parameter(content_type, "boundary");
  if (!b || b->empty() || b->size() > 70) return std::nullopt;
  return b;
}

Result<std::vector<MultipartPart>> parse_multipart(std::string_view body, std::string_view boundary, std::size_t max_parts) {
  std::vector<MultipartPart> parts;
  const std::string delimiter = "--" + std::string(boundary);
  const std::string separator = "\r\n" + delimiter;
  const std::boyer_moore_horspool_searcher search(separator.begin(), separator.end());
  // The first delimiter may open the body or follow a preamble.
  std::size_t pos;
  if (body.substr(0, delimiter.size()) == delimiter) {
    pos = delimiter.size();
  } else {
    auto it = std::search(body.begin(), body.end(), search);
    if (it == body.end()) return bad("no boundary '" + std::string(boundary) + "' in the body");
    pos = static_cast<std::size_t>(it - body.begin()) + separator.size();
  }
  for (;;) {
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    // Transport padding, then CRLF.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") return bad("a boundary is not followed by a line break");
    pos += 2;
    if (parts.size() >= max_parts) return bad("more than " + std::to_string(max_parts) + " parts");
    const std::size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos || headers_end - pos > 8192) return bad("a part's headers do not end within 8 KiB");
    MultipartPart part;
    bool has_disposition = false;
    std::string_view headers = body.substr(pos, headers_end - pos);
    while (!headers.empty()) {
      const std::size_t eol = headers.find("\r\n");
      const std::string_view line = headers.substr(0, eol);
      headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) return bad("a part header without ':'");
      const std::string name = lower(trim(line.substr(0, colon)));
      const std::string_view value = trim(line.substr(colon + 1));
      if (name == "content-disposition") {
        if (lower(trim(value.substr(0, value.find(';')))) != "form-data") return bad("a part that is not form-data");
        has_disposition = true;
        part.name = parameter(value, "name").value_or("");
        part.filename = parameter(value, "filename").value_or("");
      } else if (name == "content-type") {
        part.content_type = std::string(value);
      }
    }
    if (!has_disposition || part.name.empty()) return bad("a part without Content-Disposition: form-data; name=...");
    const std::size_t data_start = headers_end + 4;
    auto it = std::search(body.begin() + static_cast<std::ptrdiff_t>(data_start), body.end(), search);
    if (it == body.end()) return bad("the body ends inside part '" + part.name + "' (truncated upload?)");
    const std::size_t data_end = static_cast<std::size_t>(it - body.begin());
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
    pos = data_end + separator.size();
  }
}

}  // namespace edgeopt::server
