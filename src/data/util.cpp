// File reading, gzip with size caps, and the seeded stratified split.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "data/internal.h"

namespace edgeopt::data::detail {

std::string read_file(const std::string& path, std::uint64_t max_bytes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail(ErrorCode::kNotFound, "file not found: " + path, "check the path");
  auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(ErrorCode::kIo, "cannot read the size of " + path + ": " + ec.message());
  if (size > max_bytes)
    fail(ErrorCode::kInvalidArgument,
         path + " is " + std::to_string(size) + " bytes, more than the " +
             std::to_string(max_bytes) + " bytes allowed here",
         "check that this is the right file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIo, "cannot open " + path, "check its permissions");
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size)
    fail(ErrorCode::kIo, "could not read all of " + path);
  return bytes;
}

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

std::string gunzip(std::string_view compressed, const std::string& source, std::uint64_t max_out,
                   bool stop_at_limit) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(ErrorCode::kInternal, "zlib init failed");
  std::string out;
  const std::uint64_t cap = std::min(max_out, kMaxDecompressed);
  auto* next = reinterpret_cast<const Bytef*>(compressed.data());
  std::size_t left = compressed.size();
  char chunk[65536];
  int rc = Z_OK;
  std::string problem;
  while (true) {
    zs.next_in = const_cast<Bytef*>(next);
    zs.avail_in = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    std::size_t consumed = static_cast<std::size_t>(zs.next_in - next);
    next += consumed;
    left -= consumed;
    std::size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > cap) {
      if (stop_at_limit) {
        out.append(chunk, cap - out.size());
        break;
      }
      problem = cap == kMaxDecompressed && max_out >= kMaxDecompressed
                    ? "decompresses to more than 2 GiB (refused as a decompression bomb)"
                    : "decompresses to more than the " + std::to_string(cap) +
                          " bytes its header promises (extra data or a decompression bomb)";
      break;
    }
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      // gzip allows several members back to back; anything else after the end is garbage.
      if (left == 0) break;
      if (!is_gzip({reinterpret_cast<const char*>(next), left})) {
        problem = "has trailing bytes after the gzip data";
        break;
      }
      inflateReset(&zs);
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      problem = std::string("is not valid gzip data (") + (zs.msg ? zs.msg : "zlib error") + ")";
      break;
    }
    if (rc == Z_BUF_ERROR && left == 0 && produced == 0) {
      problem = "is a truncated gzip stream";
      break;
    }
  }
  inflateEnd(&zs);
  if (!problem.empty())
    fail(ErrorCode::kCorruptFile, source + " " + problem,
         "download the file again or check that it is the right one");
  return out;
}

ImageSet take(const ImageSet& all, const std::vector<std::int64_t>& indices) {
  ImageSet out;
  out.height = all.height;
  out.width = all.width;
  out.channels = all.channels;
  out.count = static_cast<std::int64_t>(indices.size());
  const std::size_t image_bytes = static_cast<std::size_t>(all.height * all.width * all.channels);
  out.pixels.resize(indices.size() * image_bytes);
  out.labels.reserve(indices.size());
  for (std::size_t k = 0; k < indices.size(); ++k) {
    auto i = static_cast<std::size_t>(indices[k]);
    std::copy_n(all.pixels.begin() + static_cast<std::ptrdiff_t>(i * image_bytes), image_bytes,
                out.pixels.begin() + static_cast<std::ptrdiff_t>(k * image_bytes));
    out.labels.push_back(all.labels[i]);
  }
  return out;
}

void check_test_fraction(double test_fraction) {
  if (!(test_fraction > 0.0 && test_fraction < 1.0))
    fail(ErrorCode::kInvalidArgument,
         "test fraction " + std::to_string(test_fraction) + " is not between 0 and 1",
         "use a value like 0.2");
}

void stratified_split(const ImageSet& all, double test_fraction, std::uint64_t seed,
                      ImageSet& train, ImageSet& test) {
  check_test_fraction(test_fraction);
  std::map<std::int32_t, std::vector<std::int64_t>> by_class;
  for (std::int64_t i = 0; i < all.count; ++i) by_class[all.labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> train_idx, test_idx;
  for (auto& [label, idx] : by_class) {
    for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    auto n = static_cast<std::int64_t>(idx.size());
    auto n_test = static_cast<std::int64_t>(std::llround(static_cast<double>(n) * test_fraction));
    if (n >= 2) n_test = std::clamp<std::int64_t>(n_test, 1, n - 1);
    else n_test = 0;
    test_idx.insert(test_idx.end(), idx.begin(), idx.begin() + n_test);
    train_idx.insert(train_idx.end(), idx.begin() + n_test, idx.end());
  }
  // Keep the original order inside each split: stable and easy to reason about.
  std::sort(train_idx.begin(), train_idx.end());
  std::sort(test_idx.begin(), test_idx.end());
  train = take(all, train_idx);
  test = take(all, test_idx);
}

std::string split_note_for(double test_fraction, std::uint64_t seed) {
  int train_pct = static_cast<int>(std::lround((1.0 - test_fraction) * 100));
  return "no test split on disk: seeded stratified " + std::to_string(train_pct) + "/" +
         std::to_string(100 - train_pct) + " split (seed " + std::to_string(seed) + ")";
}

}  // namespace edgeopt::data::detail
