// Fuzzes the Keras model-config path: JSON parsing, Sequential/Functional walking, layer
// conversion with zero weights, shape inference and the verifier.
#include <cstddef>
#include <cstdint>
#include <string>

#include "importers/keras/keras_importer.h"
#include "ir/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1U << 16)) return 0;
  const std::string config(reinterpret_cast<const char*>(data), size);
  auto graph = edgeopt::keras_import::import_config_json(config, "fuzz.json");
  // Whatever imports must verify and keep its outputs.
  if (graph.ok() && (graph.value().outputs.empty() || !edgeopt::ir::verify(graph.value()).ok())) __builtin_trap();
  return 0;
}
