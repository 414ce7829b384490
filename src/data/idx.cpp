// IDX files (the MNIST format): a big-endian header, then raw uint8 data.
//   images: magic 0x00000803, count, rows, cols, then count*rows*cols bytes
//   labels: magic 0x00000801, count, then count bytes
#include <cstdio>
#include <filesystem>

#include "data/internal.h"

namespace edgeopt::data {
namespace {

constexpr std::int32_t kMaxLabel = 9;  // every IDX dataset we read has 10 classes

std::uint32_t be32(std::string_view bytes, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

// Returns the uncompressed IDX bytes, inflating gzip with a cap taken from its own header.
std::string idx_payload(std::string_view bytes, const std::string& source, std::size_t header_size,
                        int dims) {
  if (!detail::is_gzip(bytes)) return std::string(bytes);
  std::string head = detail::gunzip(bytes, source, header_size, /*stop_at_limit=*/true);
  if (head.size() < header_size)
    fail(ErrorCode::kCorruptFile, source + " is too short for an IDX header",
         "the file is truncated; download it again");
  std::uint64_t body = 1;
  for (int d = 0; d < dims; ++d) {
    body *= be32(head, 4 + 4 * static_cast<std::size_t>(d));
    if (body > detail::kMaxDecompressed)
      fail(ErrorCode::kCorruptFile,
           source + " claims more than 2 GiB of data in its header (refused)",
           "check that this is an MNIST-style IDX file");
  }
  return detail::gunzip(bytes, source, header_size + body, /*stop_at_limit=*/false);
}

void check_header(std::string_view data, const std::string& source, std::uint32_t magic,
                  std::size_t header_size, const char* what) {
  // The magic first: swapped or foreign files get the most useful message.
  if (data.size() >= 4 && be32(data, 0) != magic) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "0x%08x (expected 0x%08x)", be32(data, 0), magic);
    fail(ErrorCode::kCorruptFile, source + " has the wrong IDX magic number " + buf + " for " + what,
         "check that the images and labels files are not swapped and are MNIST-style IDX files");
  }
  if (data.size() < header_size)
    fail(ErrorCode::kCorruptFile,
         source + " is too short (" + std::to_string(data.size()) + " bytes) for an IDX " + what +
             " header",
         "the file is truncated; download it again");
}

void check_size(std::string_view data, const std::string& source, std::uint64_t expected) {
  if (data.size() == expected) return;
  fail(ErrorCode::kCorruptFile,
       source + " is " + std::to_string(data.size()) + " bytes but its header says " +
           std::to_string(expected) + (data.size() < expected ? " (truncated)" : " (extra data)"),
       "download the file again");
}

ImageSet parse_idx(std::string_view images_in, std::string_view labels_in,
                   const std::string& images_source, const std::string& labels_source) {
  std::string images = idx_payload(images_in, images_source, 16, 3);
  std::string labels = idx_payload(labels_in, labels_source, 8, 1);
  check_header(images, images_source, 0x00000803, 16, "images");
  check_header(labels, labels_source, 0x00000801, 8, "labels");
  std::uint64_t count = be32(images, 4), rows = be32(images, 8), cols = be32(images, 12);
  std::uint64_t label_count = be32(labels, 4);
  if (count == 0 || rows == 0 || cols == 0)
    fail(ErrorCode::kCorruptFile,
         images_source + " has an empty shape " + std::to_string(count) + "x" +
             std::to_string(rows) + "x" + std::to_string(cols),
         "check that this is an MNIST-style IDX file");
  if (rows > 65536 || cols > 65536 || count * rows * cols > detail::kMaxDecompressed)
    fail(ErrorCode::kCorruptFile, images_source + " claims more than 2 GiB of pixels (refused)",
         "check that this is an MNIST-style IDX file");
  check_size(images, images_source, 16 + count * rows * cols);
  check_size(labels, labels_source, 8 + label_count);
  if (label_count != count)
    fail(ErrorCode::kCorruptFile,
         images_source + " has " + std::to_string(count) + " images but " + labels_source +
             " has " + std::to_string(label_count) + " labels",
         "use the labels file that belongs to these images");
  ImageSet set;
  set.count = static_cast<std::int64_t>(count);
  set.height = static_cast<std::int64_t>(rows);
  set.width = static_cast<std::int64_t>(cols);
  set.channels = 1;
  set.labels.resize(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    auto label = static_cast<std::int32_t>(static_cast<unsigned char>(labels[8 + i]));
    if (label > kMaxLabel)
      fail(ErrorCode::kCorruptFile,
           labels_source + " has label " + std::to_string(label) + " at index " +
               std::to_string(i) + "; labels must be 0.." + std::to_string(kMaxLabel),
           "check that this is an MNIST or Fashion-MNIST labels file");
    set.labels[i] = label;
  }
  set.pixels.assign(images.begin() + 16, images.end());
  return set;
}

}  // namespace

Result<ImageSet> read_idx_bytes(std::string_view images, std::string_view labels,
                                const std::string& source) {
  return capture([&] {
    return parse_idx(images, labels, source + " (images)", source + " (labels)");
  });
}

Result<ImageSet> read_idx(const std::string& images_path, const std::string& labels_path) {
  return capture([&] {
    // A gzip of a 2 GiB IDX file is far smaller; the raw limit is the decompression limit.
    std::string images = detail::read_file(images_path);
    std::string labels = detail::read_file(labels_path);
    return parse_idx(images, labels, images_path, labels_path);
  });
}

}  // namespace edgeopt::data
