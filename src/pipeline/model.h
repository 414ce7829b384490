// Loading any supported model file into the IR (all formats, TorchScript through the backend).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "importers/import.h"

namespace edgeopt::pipeline {

struct LoadModelOptions {
  std::vector<std::int64_t> input_shape;  // --input-shape; needed only when a file lacks it
};

Result<ImportedModel> load_model(const std::string& path, const LoadModelOptions& options = {});

}  // namespace edgeopt::pipeline
