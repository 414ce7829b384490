// libFuzzer target: the .npy parser behind `edgeopt run --input`.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto result = edgeopt::parse_npy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  (void)result;
  return 0;
}
