// Fuzzes the EdgeOpt model format reader: preamble, JSON header, blob offsets, encodings
// (f16, int8, int4, sparse) and the shape re-inference of the stored graph.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/eom.h"
#include "ir/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = edgeopt::format::read_eom_model_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.eom");
  if (!model.ok()) return 0;
  // A graph the reader accepts must be usable: dumped, and written back without error.
  const auto& graph = model.value().graph;
  (void)edgeopt::ir::dump(graph);
  for (const auto& v : graph.values) {
    if (v.is_constant && v.dtype != edgeopt::ir::DType::kI64 && v.f32.size() != static_cast<size_t>(edgeopt::ir::sample_elements(v.shape))) __builtin_trap();
  }
  if (!edgeopt::format::write_eom_bytes(graph).ok()) __builtin_trap();
  return 0;
}
