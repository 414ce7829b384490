// Fuzzes the torch-free TorchScript archive checks (importers/torchscript/torchscript_archive.h):
// the ZIP directory, the code scan for __setstate__ and uncalled methods, and the pickle walker
// that matches every storage against its entry and every tensor against its storage. In the
// product they run in the import sandbox before LibTorch sees a file; here they run in process
// so libFuzzer sees their coverage. Any input must give ok or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "importers/torchscript/torchscript_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (4U << 20)) return 0;
  const auto status = edgeopt::torchscript::check_archive_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.pt", 64ULL << 20);
  (void)status;
  return 0;
}
