// libFuzzer target: model format detection (magic bytes, ZIP entry listing, pickle sniffing) on
// arbitrary files, and the ONNX/Keras import it dispatches to. TorchScript files stop at detection
// here (their parsing is LibTorch's, behind the plugin).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "importers/import.h"

namespace {

// In $TMPDIR, which scripts/run-fuzzers.sh points at a scratch folder it removes afterwards.
const std::string& input_path() {
  static const std::string path = (std::filesystem::temp_directory_path() / ("edgeopt_fuzz_detect_" + std::to_string(getpid()))).string();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("EDGEOPT_IMPORT_TIMEOUT_S", "10", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = input_path();
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  const auto format = edgeopt::detect_model_format_in_process(path);
  if (format.ok() && format.value() != edgeopt::ModelFormat::kTorchScript) {
    const auto model = edgeopt::import_model_without_torch(path);
    (void)model;
  }
  return 0;
}
