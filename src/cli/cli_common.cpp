#include "cli/cli_common.h"

#include <filesystem>
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

std::string find_web_dir(const std::string& given) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    std::error_code missing;  // set for every folder without it: not a reason to stop looking
    if (fs::is_regular_file(dir / "web" / "dist" / "index.html", missing)) return (dir / "web" / "dist").string();
  }
  return {};
}

}  // namespace edgeopt::cli
