// Fuzzes the IDX reader (raw and gzip). Input: 2 bytes little-endian images length, the images
// file, then the labels file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t split = (static_cast<size_t>(data[0]) | static_cast<size_t>(data[1]) << 8) % (size - 1);
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  split = split > rest.size() ? rest.size() : split;
  auto set = edgeopt::data::read_idx_bytes(rest.substr(0, split), rest.substr(split), "fuzz");
  if (set.ok() && set.value().pixels.size() !=
                      static_cast<size_t>(set.value().count * set.value().height *
                                          set.value().width))
    __builtin_trap();
  return 0;
}
