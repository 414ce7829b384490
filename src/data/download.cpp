// HTTPS downloads with libcurl into the dataset cache, and the tar reader for CIFAR-10's archive.
#include <curl/curl.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "data/checksum.h"
#include "data/internal.h"

namespace edgeopt::data::detail {
namespace {

namespace fs = std::filesystem;

struct Transfer {
  std::ofstream* out = nullptr;
  Sha256 sha256;
  Md5 md5;
  std::uint64_t received = 0;
  std::uint64_t limit = 0;  // abort when the server sends more than this
  bool too_big = false;
  int last_percent = -1;
  std::string label;
  const std::function<void(const std::string&)>* progress = nullptr;
};

std::size_t on_data(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t n = size * count;
  t->received += n;
  if (t->limit && t->received > t->limit) {
    t->too_big = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  std::string_view chunk(data, n);
  t->sha256.update(chunk);
  t->md5.update(chunk);
  t->out->write(data, static_cast<std::streamsize>(n));
  return *t->out ? n : 0;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->progress || !*t->progress || total <= 0) return 0;
  int percent = static_cast<int>(100 * now / total);
  if (percent / 5 != t->last_percent / 5 || (percent == 100 && t->last_percent != 100)) {
    t->last_percent = percent;
    char buf[64];
    std::snprintf(buf, sizeof buf, " %d%% (%.1f of %.1f MB)", percent, now / 1e6, total / 1e6);
    (*t->progress)("downloading " + t->label + buf);
  }
  return 0;
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

void download_file(const std::string& url, const std::string& dest_path,
                   const std::string& expected_digest, std::uint64_t expected_size,
                   const std::function<void(const std::string&)>& progress) {
  init_curl_once();
  std::error_code ec;
  fs::create_directories(fs::path(dest_path).parent_path(), ec);
  if (ec)
    fail(ErrorCode::kIo, "cannot create the cache folder " +
                             fs::path(dest_path).parent_path().string() + ": " + ec.message(),
         "set XDG_CACHE_HOME to a writable folder, or pass --data-dir");
  // A private temp name: a concurrent download or a crash never leaves a half file under the
  // real name.
  const std::string temp = dest_path + ".part-" + std::to_string(::getpid());
  Transfer t;
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) fail(ErrorCode::kIo, "cannot write " + temp, "check the cache folder's permissions");
  t.out = &out;
  t.limit = expected_size ? expected_size + 1024 : 0;
  t.label = fs::path(dest_path).filename().string();
  t.progress = &progress;

  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) fail(ErrorCode::kInternal, "curl_easy_init failed");
  char error_buffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
  // A stalled transfer (under 1 KB/s for 30 s) fails instead of hanging.
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "edgeopt/0.1");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
  CURLcode rc = curl_easy_perform(curl.get());
  out.close();

  auto give_up = [&](const std::string& why) {
    fs::remove(temp, ec);
    fail(ErrorCode::kNetwork, "download of " + url + " failed: " + why,
         "check the network connection, or download the files yourself and pass --data-dir");
  };
  if (t.too_big)
    give_up("the server sent more than the expected " + std::to_string(expected_size) + " bytes");
  if (rc != CURLE_OK)
    give_up(error_buffer[0] ? std::string(error_buffer) : std::string(curl_easy_strerror(rc)));
  if (!out) give_up("could not write " + temp);

  const bool is_md5 = expected_digest.rfind("md5:", 0) == 0;
  const std::string want = expected_digest.substr(expected_digest.find(':') + 1);
  const std::string got = is_md5 ? t.md5.hex_digest() : t.sha256.hex_digest();
  if (got != want)
    give_up(std::string(is_md5 ? "MD5" : "SHA-256") + " mismatch (got " + got + ", expected " +
            want + ")");
  fs::rename(temp, dest_path, ec);
  if (ec) {
    fs::remove(temp, ec);
    fail(ErrorCode::kIo, "cannot move the download into place at " + dest_path);
  }
}

void extract_tar_gz_members(const std::string& archive, const std::vector<std::string>& wanted,
                            const std::string& dest_dir, std::uint64_t max_member_bytes) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(archive.c_str(), "rb"), gzclose);
  if (!gz) fail(ErrorCode::kIo, "cannot open " + archive);
  auto read_exact = [&](char* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      int got = gzread(gz.get(), buf + done, static_cast<unsigned>(std::min<std::size_t>(n - done, 1 << 20)));
      if (got <= 0) return false;
      done += static_cast<std::size_t>(got);
    }
    return true;
  };
  std::error_code ec;
  fs::create_directories(dest_dir, ec);
  std::size_t found = 0;
  char header[512];
  std::string buffer;
  while (read_exact(header, 512)) {
    if (header[0] == '\0') break;  // end-of-archive block
    std::string name(header, strnlen(header, 100));
    std::string size_field(header + 124, strnlen(header + 124, 12));
    std::uint64_t size = 0;
    for (char c : size_field)
      if (c >= '0' && c <= '7') size = size * 8 + static_cast<std::uint64_t>(c - '0');
    const char type = header[156];
    const std::string base = fs::path(name).filename().string();
    const bool want = (type == '0' || type == '\0') &&
                      std::find(wanted.begin(), wanted.end(), base) != wanted.end();
    const std::uint64_t padded = (size + 511) / 512 * 512;
    if (want) {
      if (size > max_member_bytes)
        fail(ErrorCode::kCorruptFile, archive + ": member " + name + " is unexpectedly large");
      buffer.resize(padded);
      if (!read_exact(buffer.data(), padded))
        fail(ErrorCode::kCorruptFile, archive + " is truncated", "delete it and download again");
      const std::string dest = (fs::path(dest_dir) / base).string();
      const std::string temp = dest + ".part-" + std::to_string(::getpid());
      {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out.write(buffer.data(), static_cast<std::streamsize>(size));
        if (!out) fail(ErrorCode::kIo, "cannot write " + temp);
      }
      fs::rename(temp, dest, ec);
      if (ec) fail(ErrorCode::kIo, "cannot write " + dest);
      ++found;
    } else {
      for (std::uint64_t skipped = 0; skipped < padded; skipped += 512)
        if (!read_exact(header, 512))
          fail(ErrorCode::kCorruptFile, archive + " is truncated", "delete it and download again");
    }
  }
  if (found != wanted.size())
    fail(ErrorCode::kCorruptFile,
         archive + " holds " + std::to_string(found) + " of the " +
             std::to_string(wanted.size()) + " expected files",
         "delete it and download again");
}

}  // namespace edgeopt::data::detail
