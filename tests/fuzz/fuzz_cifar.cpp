// Fuzzes CIFAR-10 binary record parsing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto set = edgeopt::data::read_cifar10_bytes(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.bin");
  if (set.ok() && (set.value().pixels.size() != static_cast<size_t>(set.value().count) * 3072 ||
                   set.value().labels.size() != static_cast<size_t>(set.value().count)))
    __builtin_trap();
  return 0;
}
