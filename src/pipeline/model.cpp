#include "pipeline/model.h"

#include "backend/torchscript_import.h"
#include "ir/text.h"

namespace edgeopt::pipeline {

Result<ImportedModel> load_model(const std::string& path, const LoadModelOptions& options) {
  Result<ModelFormat> format = detect_model_format(path);
  if (!format) return format.error();
  Result<ImportedModel> model = [&]() -> Result<ImportedModel> {
    if (format.value() != ModelFormat::kTorchScript) return import_model_without_torch(path);
    Result<ir::Graph> graph = backend::import_torchscript(path, options.input_shape);
    if (!graph) return graph.error();
    return ImportedModel{ModelFormat::kTorchScript, std::move(graph).value()};
  }();
  if (!model) return model;
  if (Status s = ir::verify(model->graph); !s) return s.error();
  return model;
}

}  // namespace edgeopt::pipeline
