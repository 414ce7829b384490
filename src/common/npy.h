// NumPy .npy arrays (version 1.0–3.0, C order) as float32: the exchange format of `edgeopt run`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace edgeopt {

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // converted from f4/f8/u1/i8... on read
};

Result<NpyArray> read_npy(const std::string& path);
Result<NpyArray> parse_npy(std::string_view bytes, const std::string& source);
Status write_npy(const std::string& path, const NpyArray& array);

}  // namespace edgeopt
