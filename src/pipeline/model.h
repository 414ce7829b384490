// Loading any supported model file into the IR (all formats, TorchScript through the backend).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "importers/import.h"

namespace edgeopt::pipeline {

struct LoadModelOptions {
  std::vector<std::int64_t> input_shape;  // --input-shape; needed only when a file lacks it
};

Result<ImportedModel> load_model(const std::string& path, const LoadModelOptions& options = {});

// What `inspect --json` prints and the server answers an upload with: format, producer, params,
// MACs per sample, inputs and outputs (shape, dtype, layout) and every layer. `path` is reported
// as "file" and its size read from disk.
nlohmann::json model_summary(const ImportedModel& model, const std::string& path);

}  // namespace edgeopt::pipeline
