// Datasets: MNIST, Fashion-MNIST, CIFAR-10 and the user's own images, as uint8 NHWC tensors.
// Everything here reads hostile input safely: bad files come back as an Error, never a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace edgeopt::data {

struct ImageSet {  // uint8 images, NHWC, all the same size
  std::int64_t count = 0, height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;  // count*height*width*channels
  std::vector<std::int32_t> labels;  // count, 0..num_classes-1
};

struct Dataset {
  std::string name;  // "mnist", "fashion-mnist", "cifar10", or the folder/zip name
  ImageSet train, test;
  std::vector<std::string> class_names;
  std::string source;      // where it was read from (paths)
  std::string split_note;  // e.g. "official train/test split"
};

struct LoadOptions {
  std::string data_dir;        // --data-dir; empty: not given
  bool allow_download = true;  // false: never touch the network
  std::uint64_t seed = 42;
  double test_fraction = 0.2;  // for one-split datasets
  // User images are resized/converted to this (0: keep the first image's). Channels: 1 or 3.
  std::int64_t image_height = 0, image_width = 0, image_channels = 0;
  std::function<void(const std::string&)> progress;  // optional messages ("downloading ... 45%")

  // Less common knobs, mostly for tests.
  bool search_system_paths = true;            // /usr/share/datasets/<name>
  std::vector<std::string> download_mirrors;  // replaces the built-in base URLs when not empty
  std::int64_t max_zip_entries = 100000;      // a ZIP with more entries is refused
};

// spec: mnist | fashion-mnist | cifar10 | PATH (a folder or .zip of class folders, or a folder of
// IDX / CIFAR-10 binary files).
Result<Dataset> load_dataset(const std::string& spec, const LoadOptions& options);

// IDX (MNIST format) images + labels, each `.gz` or raw.
Result<ImageSet> read_idx(const std::string& images_path, const std::string& labels_path);
// The same from memory (gzip detected by its magic); source names the data in messages.
Result<ImageSet> read_idx_bytes(std::string_view images, std::string_view labels,
                                const std::string& source);

// CIFAR-10 binary batches (records of 1 label byte + 3072 bytes of CHW planes), converted to HWC.
Result<ImageSet> read_cifar10_batches(const std::vector<std::string>& paths);
Result<ImageSet> read_cifar10_bytes(std::string_view bytes, const std::string& source);

// One sub-folder per class (optionally under train/ and test/), PNG or JPEG images.
Result<Dataset> read_image_folder(const std::string& dir, const LoadOptions& options);
Result<Dataset> read_image_zip(const std::string& zip_path, const LoadOptions& options);
// The same from a ZIP held in memory; name is used as the dataset name and in messages.
Result<Dataset> read_image_zip_bytes(std::string_view zip_bytes, const std::string& name,
                                     const LoadOptions& options);

// Image `index` of the set as a PNG file (gray or RGB, 8 bit).
Result<std::string> encode_png(const ImageSet& images, std::int64_t index);

// Hex digests (lowercase), for download checks.
std::string sha256_hex(std::string_view bytes);
std::string md5_hex(std::string_view bytes);

}  // namespace edgeopt::data
