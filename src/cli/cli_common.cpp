#include "cli/cli_common.h"

#include <iostream>
#include <nlohmann/json.hpp>

namespace edgeopt::cli {

int report_error(const Error& error, bool as_json) {
  if (as_json) {
    std::cout << nlohmann::json{{"error", {{"code", error_code_name(error.code)}, {"message", error.message}, {"hint", error.hint}}}}.dump(2)
              << "\n";
  }
  std::cerr << "error: " << error.to_string() << "\n";
  return error.code == ErrorCode::kInternal ? 3 : 1;
}

}  // namespace edgeopt::cli
