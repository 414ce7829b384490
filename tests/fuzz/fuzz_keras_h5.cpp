// Fuzzes the Keras .h5 path from an HDF5 file image in memory (HDF5 core driver): attribute and
// dataset reading with size checks, model_config parsing and weight matching.
// The public entry point parses in a forked child (src/importers/isolated.h), because libhdf5 1.10
// has memory-safety bugs on crafted files that we cannot all pre-check: what this target checks is
// that the calling process never crashes and always gets a verified graph or an error. Child
// coverage is not fed back to libFuzzer, so it explores less deeply than an in-process target.
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <string_view>

#include "importers/keras/keras_importer.h"
#include "ir/text.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("EDGEOPT_IMPORT_TIMEOUT_S", "10", 1);  // a stuck child is killed and reported, not waited for
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1U << 20)) return 0;
  auto graph = edgeopt::keras_import::import_h5_bytes(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.h5");
  if (graph.ok() && (graph.value().outputs.empty() || !edgeopt::ir::verify(graph.value()).ok())) __builtin_trap();
  return 0;
}
