#include "common/file_io.h"

#include <filesystem>
#include <fstream>

namespace edgeopt {

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  return capture([&]() -> Unit {
    const std::string temp = path + ".partial";
    {
      std::ofstream file(temp, std::ios::binary | std::ios::trunc);
      if (!file) fail(ErrorCode::kIo, "cannot create '" + temp + "'", "check that the folder exists and is writable");
      file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      file.flush();
      if (!file) {
        std::error_code ignored;
        std::filesystem::remove(temp, ignored);
        fail(ErrorCode::kIo, "cannot write '" + temp + "'", "check the free disk space");
      }
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) {
      std::filesystem::remove(temp, ec);
      fail(ErrorCode::kIo, "cannot move the finished file to '" + path + "'", "check that the folder is writable");
    }
    return Unit{};
  });
}

}  // namespace edgeopt
