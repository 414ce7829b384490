#include "techniques/params.h"

#include <cerrno>
#include <cstdlib>

namespace edgeopt::techniques::params_detail {

std::string format_double(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

double parse_number(const std::string& text, const std::string& what, bool integer) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  if (text.empty() || end != begin + text.size() || errno == ERANGE || !std::isfinite(v)) {
    fail(ErrorCode::kInvalidArgument, "parameter '" + what + "' needs a number, got '" + text + "'");
  }
  if (integer && v != std::floor(v)) fail(ErrorCode::kInvalidArgument, "parameter '" + what + "' needs a whole number, got '" + text + "'");
  return v;
}

bool parse_bool(const std::string& text, const std::string& what) {
  if (text == "true" || text == "1" || text == "yes") return true;
  if (text == "false" || text == "0" || text == "no") return false;
  fail(ErrorCode::kInvalidArgument, "parameter '" + what + "' needs true or false, got '" + text + "'");
}

std::vector<double> parse_list(const std::string& text, const std::string& what) {
  std::vector<double> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(parse_number(item, what, false));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace edgeopt::techniques::params_detail
