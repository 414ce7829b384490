// Fuzzes the Keras .h5 path from an HDF5 file image in memory (HDF5 core driver): attribute and
// dataset reading with size checks, model_config parsing and weight matching.
// libhdf5 1.10 leaks a little on some corrupt files: run with LSAN_OPTIONS=suppressions=F where F
// holds the line `leak:libhdf5`. It also has memory-safety bugs on crafted files that we cannot
// all pre-check (see src/importers/keras/README.md).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "importers/keras/keras_importer.h"
#include "ir/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1U << 20)) return 0;
  auto graph = edgeopt::keras_import::import_h5_bytes(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.h5");
  if (graph.ok() && (graph.value().outputs.empty() || !edgeopt::ir::verify(graph.value()).ok())) __builtin_trap();
  return 0;
}
