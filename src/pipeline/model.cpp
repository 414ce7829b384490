#include "pipeline/model.h"

#include <filesystem>

#include "backend/backend_api.h"
#include "backend/torchscript_import.h"
#include "importers/isolated.h"
#include "ir/ops.h"
#include "ir/text.h"

namespace edgeopt::pipeline {

using nlohmann::json;


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

static json shape_json(const ir::Shape& shape) {
  json out = json::array();
  for (auto d : shape) out.push_back(d);
  return out;
}

json model_summary(const ImportedModel& model, const std::string& path) {
  const auto& g = model.graph;
  json layers = json::array();
  std::int64_t macs = 0;
  for (const auto& n : g.nodes) {
    const auto cost = ir::node_cost(g, n);
    macs += cost.macs;
    layers.push_back({{"name", n.name}, {"op", std::string(ir::op_name(n.op))}, {"source_op", n.source_op},
                      {"params", cost.params}, {"macs", cost.macs}, {"output_shape", shape_json(g.value(n.outputs[0]).shape)}});
  }
  auto io = [&](const std::vector<int>& ids) {
    json list = json::array();
    for (int id : ids) {
      const auto& v = g.value(id);
      list.push_back({{"name", v.name}, {"shape", shape_json(v.shape)}, {"dtype", ir::dtype_name(v.dtype)},
                      {"layout", ir::layout_name(v.layout)}});
    }
    return list;
  };
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return {{"file", path}, {"format", model_format_name(model.format)}, {"producer", g.producer}, {"name", g.name},
          {"size_bytes", ec ? 0 : size}, {"params", g.param_count()}, {"macs", macs}, {"inputs", io(g.inputs)},
          {"outputs", io(g.outputs)}, {"layers", layers}, {"batch_dim", "-1 in a shape means any batch size"}};
}

}  // namespace edgeopt::pipeline
