// Model import: detects a file's format from its bytes and hands it to the matching importer.
#pragma once

#include <string>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt {

enum class ModelFormat { kOnnx, kKerasH5, kKerasV3, kTorchScript, kEom, kTflite };
// "onnx", "keras-h5", "keras-v3", "torchscript", "eom", "tflite"
const char* model_format_name(ModelFormat format);

struct ImportedModel {
  ModelFormat format = ModelFormat::kOnnx;
  ir::Graph graph;
};

// What a file looks like from its first bytes and (for ZIPs) its entry names.
// Refuses pickles and raw state_dicts with the export command that works instead.
// Only regular files are opened, and read in bounded pieces; the parsing part runs in the
// sandbox (common/sandbox.h). The _in_process variant parses here (for the fuzzer and the sandbox).
Result<ModelFormat> detect_model_format(const std::string& path);
Result<ModelFormat> detect_model_format_in_process(const std::string& path);

// Imports any supported model. TorchScript needs the backend: it is lowered there (see
// backend/torchscript_import.h), and this function reports kUnsupportedFormat for it; the
// pipeline's load_model() covers all formats. The import runs in the sandbox.
Result<ImportedModel> import_model_without_torch(const std::string& path);

}  // namespace edgeopt
