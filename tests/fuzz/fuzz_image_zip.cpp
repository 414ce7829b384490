// Fuzzes the ZIP image-dataset reader from memory: header checks, entry reading, PNG/JPEG
// decoding and resizing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  edgeopt::data::LoadOptions options;
  options.allow_download = false;
  options.image_height = 8;
  options.image_width = 8;
  options.image_channels = 3;
  options.max_zip_entries = 2000;
  auto ds = edgeopt::data::read_image_zip_bytes(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.zip", options);
  if (ds.ok() && ds.value().train.pixels.size() !=
                     static_cast<size_t>(ds.value().train.count) * 8 * 8 * 3)
    __builtin_trap();
  return 0;
}
