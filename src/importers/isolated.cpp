#include "importers/isolated.h"

#include <filesystem>
#include <system_error>

#include "format/eom.h"

namespace edgeopt {

sandbox::Policy import_policy(const std::string& path, bool its_folder) {
  sandbox::Policy policy;
  policy.read_files.push_back(path);
  if (its_folder) {
    const std::filesystem::path parent = std::filesystem::absolute(path).parent_path();
    policy.read_dirs.push_back(parent.string());
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  policy.memory_bytes = sandbox::memory_budget_for(ec ? 0 : size);
  policy.wall_seconds = sandbox::seconds_budget_for(ec ? 0 : size, 1);
  policy.cpu_seconds = policy.wall_seconds;
  policy.what = "importing the model";
  policy.hint = "the file is damaged, crafted or too large for this machine; save the model again from its framework. Nothing else was affected";
  return policy;
}

Result<ir::Graph> import_isolated(const std::function<Result<ir::Graph>()>& import, const std::string& source,
                                  const sandbox::Policy& policy) {
  if (sandbox::inside()) return import();
  Result<std::string> bytes = sandbox::run(
      [&]() -> Result<std::string> {
        Result<ir::Graph> graph = import();
        if (!graph) return graph.error();
        // Constants an importer read as int8 codes (QDQ ONNX) cross as those codes, so the
        // parent gets their quantization parameters back (and the int8 executor its weights).
        format::EomWriteOptions options;
        for (const ir::Value& v : graph->values) {
          if (!v.is_constant || !v.quant || v.quant->group_size != 0 || v.shape.empty() || v.f32.empty()) continue;
          const int axis = v.quant->axis;
          const bool fits = axis < 0 ? v.quant->scales.size() == 1
                                     : axis < static_cast<int>(v.shape.size()) && static_cast<std::int64_t>(v.quant->scales.size()) == v.shape[static_cast<std::size_t>(axis)];
          if (fits) {
            options.per_constant[v.name] = v.quant->axis >= 0 ? format::Encoding::int8_per_channel(v.quant->axis) : format::Encoding::int8_per_tensor();
          }
        }
        return format::write_eom_bytes(graph.value(), options);
      },
      source, policy);
  if (!bytes) return bytes.error();
  return format::read_eom_bytes(bytes.value(), source);
}

}  // namespace edgeopt
