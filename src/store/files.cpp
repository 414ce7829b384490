// The file handling both backends share: atomic writes (blobs on disk, blobs fetched to a file)
// and chunked reads (blob files streamed in).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/internal.h"

namespace edgeopt::store::detail {

namespace fs = std::filesystem;

std::string random_hex(std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : random_bytes(bytes)) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

AtomicFile::AtomicFile(const fs::path& temp_dir, fs::path target)
    : temp_(temp_dir / (random_hex(8) + ".part")), target_(std::move(target)) {
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    fail(ErrorCode::kIo, "cannot create '" + temp_.string() + "': " + std::strerror(errno),
         "check that the folder exists and is writable");
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

void AtomicFile::write(const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd_, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(ErrorCode::kIo, "cannot write '" + temp_.string() + "': " + std::strerror(errno), "check the free disk space");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit(bool create_parent) {
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    fail(ErrorCode::kIo, "cannot flush '" + temp_.string() + "': " + std::strerror(errno), "check the free disk space");
  }
  // A concurrent delete may prune the (empty) parent folder between creating it and the rename: retry.
  for (int attempt = 0;; ++attempt) {
    if (create_parent) {
      std::error_code ec;
      fs::create_directories(target_.parent_path(), ec);
      if (ec) {
        fail(ErrorCode::kIo, "cannot create the folder '" + target_.parent_path().string() + "': " + ec.message(),
             "a blob key cannot use another blob's name as a folder");
      }
    }
    if (::rename(temp_.c_str(), target_.c_str()) == 0) break;
    if (errno != ENOENT || !create_parent || attempt == 3) {
      fail(ErrorCode::kIo, "cannot move the finished file to '" + target_.string() + "': " + std::strerror(errno),
           errno == EISDIR ? "a blob key cannot name a folder holding other blobs" : "check that the folder is writable");
    }
  }
  committed_ = true;
}

void read_file_chunks(const std::string& path, std::size_t chunk,
                      const std::function<void(const char*, std::size_t)>& sink) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail(errno == ENOENT || errno == ENOTDIR ? ErrorCode::kNotFound : ErrorCode::kIo,
         "cannot open '" + path + "': " + std::strerror(errno), "check the path");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::string buffer(chunk, '\0');
  for (;;) {
    std::size_t filled = 0;
    while (filled < buffer.size()) {
      const ssize_t n = ::read(fd, buffer.data() + filled, buffer.size() - filled);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(ErrorCode::kIo, "cannot read '" + path + "': " + std::strerror(errno), "");
      if (n == 0) break;
      filled += static_cast<std::size_t>(n);
    }
    if (filled > 0) sink(buffer.data(), filled);
    if (filled < buffer.size()) return;
  }
}

}  // namespace edgeopt::store::detail
