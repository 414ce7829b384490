// libFuzzer target for the ONNX importer: any bytes must give a graph or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "importers/onnx/onnx_importer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto result = edgeopt::onnx_import::import_bytes(bytes, "fuzz.onnx");
  (void)result;
  return 0;
}
