// A small read-only view of an HDF5 file for the Keras importer: string attributes, groups and
// numeric datasets, with the size checks hostile files need. Wraps the HDF5 C API; every call
// fails with a Failure (common/error.h) naming the file and the object, never with an abort.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace edgeopt::keras_import {

// The HDF5 library we link is not built thread-safe: hold this lock around every use of it.
std::recursive_mutex& hdf5_mutex();

struct Hdf5Tensor {
  std::string name;
  ir::Shape shape;  // as stored (Keras order)
  std::vector<float> data;
};

class Hdf5File {
 public:
  // `source` names the file in messages. Both fail with kCorruptFile when the bytes are not HDF5.
  // open_path reads the file into memory (up to 2 GiB): both go through the same checks.
  static Hdf5File open_path(const std::string& path, const std::string& source);
  static Hdf5File open_image(std::string_view bytes, const std::string& source);

  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&& other) = delete;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;
  ~Hdf5File();

  const std::string& source() const { return source_; }

  // Paths are '/'-separated from the root ("" or "/" is the root); a missing object is not an error.
  bool has_group(const std::string& path) const;
  bool has_dataset(const std::string& path) const;
  bool has_attribute(const std::string& object_path, const std::string& name) const;

  // Names of the links in a group (at most `limit`), in HDF5's name order.
  std::vector<std::string> children(const std::string& group_path, std::size_t limit = 100000) const;

  // A string attribute (scalar or 1-D; fixed- or variable-length). Keras splits long lists over
  // `name0`, `name1`, ...; those are joined. An empty non-string array reads as an empty list.
  std::optional<std::vector<std::string>> string_attribute(const std::string& object_path,
                                                           const std::string& name) const;
  // Reads a float or integer dataset as float32, refusing ones larger than their stored bytes.
  Hdf5Tensor read_dataset(const std::string& path) const;
  // The dataset's shape without reading it.
  ir::Shape dataset_shape(const std::string& path) const;

 private:
  Hdf5File(std::int64_t file_id, std::string source) : file_(file_id), source_(std::move(source)) {}
  std::optional<std::vector<std::string>> read_one_string_attribute(const std::string& object_path,
                                                                    const std::string& name) const;
  std::int64_t file_ = -1;  // hid_t
  std::string source_;
};

}  // namespace edgeopt::keras_import
