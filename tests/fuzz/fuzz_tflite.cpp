// libFuzzer target for the TFLite importer: any bytes must give a graph or an error, never a crash.
// The flatbuffers Verifier runs first; what passes it is read with every index, size, shape and
// quantization parameter checked, and a graph that comes out must verify and dump.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "importers/tflite/tflite_importer.h"
#include "ir/text.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto graph = edgeopt::tflite_import::import_bytes(bytes, "fuzz.tflite");
  if (!graph.ok()) return 0;
  if (!edgeopt::ir::verify(graph.value()).ok()) __builtin_trap();
  (void)edgeopt::ir::dump(graph.value());
  return 0;
}
