#include "pipeline/model.h"

#include "backend/backend_api.h"
#include "backend/torchscript_import.h"
#include "importers/isolated.h"
#include "ir/text.h"

namespace edgeopt::pipeline {

Result<ImportedModel> load_model(const std::string& path, const LoadModelOptions& options) {
  Result<ModelFormat> format = detect_model_format(path);
  if (!format) return format.error();
  Result<ImportedModel> model = [&]() -> Result<ImportedModel> {
    if (format.value() != ModelFormat::kTorchScript) return import_model_without_torch(path);
    // The plugin is loaded here, before the sandbox: the confined child may not read libraries.
    if (Result<backend::BackendApi*> api = backend::load_backend(); !api) return api.error();
    // LibTorch's CPU probe (cpuinfo) runs on first use of its thread pool, in the child: it may
    // read the CPU's description, nothing else.
    sandbox::Policy policy = import_policy(path);
    policy.read_dirs.push_back("/sys/devices/system/cpu");
    policy.read_files.push_back("/proc/cpuinfo");
    Result<ir::Graph> graph = import_isolated(
        [&] {
          // One thread: a thread pool inherited through fork() is not usable in the child.
          backend::set_threads(1);
          return backend::import_torchscript(path, options.input_shape);
        },
        path, policy);
    if (!graph) return graph.error();
    return ImportedModel{ModelFormat::kTorchScript, std::move(graph).value()};
  }();
  if (!model) return model;
  if (Status s = ir::verify(model->graph); !s) return s.error();
  return model;
}

}  // namespace edgeopt::pipeline
