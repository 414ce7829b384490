#include "common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace edgeopt {

// Written through a descriptor of the folder, never through a path that a planted link could
// redirect: a stale or planted "<name>.partial" (a symlink to a file elsewhere) is removed
// itself, the new one is created with O_EXCL | O_NOFOLLOW, and renameat replaces a link at the
// final name with the file instead of writing through it.
Status write_file_atomic(const std::string& path, std::string_view bytes) {
  return capture([&]() -> Unit {
    const std::filesystem::path target(path);
    const std::string dir = target.has_parent_path() ? target.parent_path().string() : std::string(".");
    const std::string name = target.filename().string();
    const std::string temp = name + ".partial";
    const std::string temp_path = path + ".partial";
    if (name.empty() || name == "." || name == "..") fail(ErrorCode::kInvalidArgument, "'" + path + "' names a folder, not a file");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      fail(ErrorCode::kIo, "cannot open the folder '" + dir + "': " + std::strerror(errno), "check that the folder exists and is writable");
    }
    auto io_failure = [&](const std::string& what, const std::string& hint) {
      const std::string why = std::strerror(errno);
      ::close(dfd);
      fail(ErrorCode::kIo, what + ": " + why, hint);
    };
    struct stat st {};
    if (::fstatat(dfd, temp.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISDIR(st.st_mode) || ::unlinkat(dfd, temp.c_str(), 0) != 0) io_failure("cannot remove the stale '" + temp_path + "'", "remove it yourself");
    }
    if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      ::close(dfd);
      fail(ErrorCode::kIo, "cannot write '" + path + "': a folder of that name is in the way", "remove or rename the folder");
    }
    const int fd = ::openat(dfd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) io_failure("cannot create '" + temp_path + "'", "check that the folder exists and is writable");
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string why = n < 0 ? std::strerror(errno) : "no progress";
        ::close(fd);
        ::unlinkat(dfd, temp.c_str(), 0);
        ::close(dfd);
        fail(ErrorCode::kIo, "cannot write '" + temp_path + "': " + why, "check the free disk space");
      }
      done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) {
      ::unlinkat(dfd, temp.c_str(), 0);
      io_failure("cannot write '" + temp_path + "'", "check the free disk space");
    }
    if (::renameat(dfd, temp.c_str(), dfd, name.c_str()) != 0) {
      const int saved = errno;
      ::unlinkat(dfd, temp.c_str(), 0);
      errno = saved;
      io_failure("cannot move the finished file to '" + path + "'", "check that the folder is writable");
    }
    ::close(dfd);
    return Unit{};
  });
}

}  // namespace edgeopt
