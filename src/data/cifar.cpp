// CIFAR-10 binary version: each record is 1 label byte then 32x32 red, green and blue planes.
#include <fstream>

#include "data/internal.h"

namespace edgeopt::data {
namespace detail {
namespace {
constexpr std::size_t kSide = 32, kPlane = kSide * kSide, kRecord = 1 + 3 * kPlane;
}  // namespace

void append_cifar10_records(std::string_view bytes, const std::string& source, ImageSet& out) {
  if (bytes.empty() || bytes.size() % kRecord != 0)
    fail(ErrorCode::kCorruptFile,
         source + " is " + std::to_string(bytes.size()) +
             " bytes, not a whole number of CIFAR-10 records (3073 bytes each)",
         "use the CIFAR-10 binary version (data_batch_N.bin, test_batch.bin), not the Python one");
  const std::size_t records = bytes.size() / kRecord;
  out.height = kSide;
  out.width = kSide;
  out.channels = 3;
  const std::size_t base = out.pixels.size();
  out.pixels.resize(base + records * 3 * kPlane);
  out.labels.reserve(out.labels.size() + records);
  for (std::size_t r = 0; r < records; ++r) {
    const auto* rec = reinterpret_cast<const std::uint8_t*>(bytes.data()) + r * kRecord;
    if (rec[0] > 9)
      fail(ErrorCode::kCorruptFile,
           source + " has label " + std::to_string(rec[0]) + " in record " + std::to_string(r) +
               "; CIFAR-10 labels are 0..9",
           "check that this is a CIFAR-10 (not CIFAR-100) binary batch");
    out.labels.push_back(rec[0]);
    std::uint8_t* dst = out.pixels.data() + base + r * 3 * kPlane;
    for (std::size_t p = 0; p < kPlane; ++p)  // CHW planes -> HWC pixels
      for (std::size_t c = 0; c < 3; ++c) dst[p * 3 + c] = rec[1 + c * kPlane + p];
  }
  out.count += static_cast<std::int64_t>(records);
}

std::vector<std::string> read_cifar10_class_names(const std::string& meta_path) {
  std::vector<std::string> names;
  std::string text = read_file(meta_path, 1 << 20);
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    if (!line.empty()) names.push_back(line);
    start = end + 1;
  }
  if (names.size() != 10)
    fail(ErrorCode::kCorruptFile,
         meta_path + " lists " + std::to_string(names.size()) + " class names, expected 10",
         "use the batches.meta.txt that comes with the CIFAR-10 binary version");
  return names;
}

}  // namespace detail

Result<ImageSet> read_cifar10_bytes(std::string_view bytes, const std::string& source) {
  return capture([&] {
    ImageSet set;
    detail::append_cifar10_records(bytes, source, set);
    return set;
  });
}

Result<ImageSet> read_cifar10_batches(const std::vector<std::string>& paths) {
  return capture([&] {
    if (paths.empty())
      fail(ErrorCode::kInvalidArgument, "no CIFAR-10 batch files given");
    ImageSet set;
    for (const auto& path : paths) {
      std::string bytes = detail::read_file(path, 1ull << 30);
      detail::append_cifar10_records(bytes, path, set);
    }
    return set;
  });
}

}  // namespace edgeopt::data
