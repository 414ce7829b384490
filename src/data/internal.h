// Helpers shared by the dataset readers (not part of the public API). They fail() on bad input;
// the public entry points turn that into an Error with capture().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace edgeopt::data::detail {

constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;
constexpr std::uint64_t kMaxDecompressed = 2 * kGiB;  // refuse anything that inflates beyond this

// Reads a whole file; kNotFound if missing, kInvalidArgument if larger than max_bytes.
std::string read_file(const std::string& path, std::uint64_t max_bytes = kMaxDecompressed);
bool is_gzip(std::string_view bytes);
// Inflates a gzip stream. With stop_at_limit the first max_out bytes are returned (a prefix);
// otherwise more than max_out bytes is an error (a decompression bomb or a lying header).
std::string gunzip(std::string_view compressed, const std::string& source, std::uint64_t max_out,
                   bool stop_at_limit);

// A new set holding the given images of `all`, in the given order.
ImageSet take(const ImageSet& all, const std::vector<std::int64_t>& indices);
// Seeded split that keeps each class's share: round(n_c * test_fraction) of class c goes to test
// (at least one image per class on each side when the class has two or more). Deterministic
// across platforms (mt19937_64 with our own Fisher-Yates, not std::shuffle).
void stratified_split(const ImageSet& all, double test_fraction, std::uint64_t seed,
                      ImageSet& train, ImageSet& test);
std::string split_note_for(double test_fraction, std::uint64_t seed);
void check_test_fraction(double test_fraction);

// CIFAR-10 record parsing, appending to out (count/labels/pixels).
void append_cifar10_records(std::string_view bytes, const std::string& source, ImageSet& out);
std::vector<std::string> read_cifar10_class_names(const std::string& meta_path);

// Downloads url to dest_path (written as a temp file, checked, then renamed). expected_digest is
// "sha256:<hex>" or "md5:<hex>". Fails with kNetwork.
void download_file(const std::string& url, const std::string& dest_path,
                   const std::string& expected_digest, std::uint64_t expected_size,
                   const std::function<void(const std::string&)>& progress);
// Extracts the regular files named in `wanted` (by base name) from a .tar.gz into dest_dir.
void extract_tar_gz_members(const std::string& archive, const std::vector<std::string>& wanted,
                            const std::string& dest_dir, std::uint64_t max_member_bytes);

}  // namespace edgeopt::data::detail
