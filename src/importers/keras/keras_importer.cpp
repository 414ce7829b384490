#include "importers/keras/keras_importer.h"

#include <zip.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "importers/isolated.h"
#include "importers/keras/hdf5_file.h"
#include "importers/keras/keras_builder.h"
#include "ir/text.h"

namespace edgeopt::keras_import {
namespace {

using nlohmann::json;

constexpr std::int64_t kMaxWeightsEntry = std::int64_t{2} << 30;  // 2 GiB
constexpr std::int64_t kMaxConfigEntry = std::int64_t{256} << 20;
constexpr std::int64_t kMaxMetadataEntry = std::int64_t{1} << 20;
constexpr std::size_t kMaxVarsPerLayer = 256;

const char* const kResaveHint = "re-save the model with model.save(...) and copy it again";

// Keras 2 (and Keras 3's legacy .h5): model_weights/<layer>/ with a `weight_names` attribute
// naming datasets relative to the group. A nested model's group lists the weights of all its
// layers; each name's parent component is the layer that owns it.
class LegacyH5Weights final : public WeightSource {
 public:
  explicit LegacyH5Weights(const Hdf5File& file) : file_(file) {}

  std::optional<std::vector<Hdf5Tensor>> layer_weights(const LayerPath& path) override {
    const std::string& top = path.models.empty() ? path.layer.name : path.models.front().name;
    const std::string group = "model_weights/" + top;
    if (!file_.has_group(group)) return std::nullopt;
    const std::vector<std::string> names = file_.string_attribute(group, "weight_names").value_or(std::vector<std::string>{});
    std::vector<Hdf5Tensor> tensors;
    for (const std::string& name : names) {
      if (!path.models.empty() && parent_component(name) != path.layer.name) continue;
      tensors.push_back(file_.read_dataset(group + "/" + name));
    }
    return tensors;
  }

 private:
  static std::string parent_component(const std::string& name) {
    const auto last = name.rfind('/');
    if (last == std::string::npos || last == 0) return {};
    const auto before = name.rfind('/', last - 1);
    return name.substr(before == std::string::npos ? 0 : before + 1, last - (before == std::string::npos ? 0 : before + 1));
  }

  const Hdf5File& file_;
};

// Keras 3 (and Keras 2.13+ .keras): layers/<key>/vars/0..n, nested models under
// layers/<key>/layers/. Keys are class names in snake case; recent Keras also records the
// layer's own name as the `name` attribute of its vars group, which we prefer when present.
class V3Weights final : public WeightSource {
 public:
  explicit V3Weights(const Hdf5File& file) : file_(file) {}

  std::optional<std::vector<Hdf5Tensor>> layer_weights(const LayerPath& path) override {
    std::string container = "layers";
    for (const auto& step : path.models) container = resolve(container, step) + "/layers";
    const std::string group = resolve(container, path.layer);
    if (!file_.has_group(group)) return std::nullopt;
    std::vector<Hdf5Tensor> tensors;
    for (std::size_t i = 0; i < kMaxVarsPerLayer; ++i) {
      const std::string var = group + "/vars/" + std::to_string(i);
      if (!file_.has_dataset(var)) break;
      tensors.push_back(file_.read_dataset(var));
    }
    return tensors;
  }

 private:
  std::string resolve(const std::string& container, const LayerPath::Step& step) {
    auto [it, fresh] = names_.try_emplace(container);
    if (fresh) {
      for (const std::string& child : file_.children(container)) {
        const std::string vars = container + "/" + child + "/vars";
        if (!file_.has_attribute(vars, "name")) continue;
        const auto name = file_.string_attribute(vars, "name");
        if (name && name->size() == 1) it->second.emplace(name->front(), child);
      }
    }
    auto found = it->second.find(step.name);
    return container + "/" + (found != it->second.end() ? found->second : step.key);
  }

  const Hdf5File& file_;
  std::map<std::string, std::map<std::string, std::string>> names_;  // container -> layer name -> key
};

json parse_json(const std::string& text, const std::string& what) {
  json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    fail(ErrorCode::kCorruptFile, what + " is not valid JSON", "the model config is damaged; " + std::string(kResaveHint));
  }
  return parsed;
}

ir::Graph import_legacy(const Hdf5File& file) {
  const std::string& source = file.source();
  const auto config = file.string_attribute("/", "model_config");
  if (!config) {
    fail(ErrorCode::kUnsupportedFormat,
         source + ": weights only; save with model.save('m.h5') or give us the architecture",
         "this HDF5 file has weights but no model_config (model.save_weights writes such files); in Python, "
         "load the weights into the model and call model.save('model.h5') (Keras 2) or model.save('model.keras') (Keras 3)");
  }
  if (config->size() != 1) fail(ErrorCode::kCorruptFile, source + ": model_config is not a single string", kResaveHint);
  const json model = parse_json(config->front(), source + ": model_config");
  std::string version;
  if (auto v = file.string_attribute("/", "keras_version"); v && v->size() == 1) version = v->front();
  if (!file.has_group("model_weights")) {
    fail(ErrorCode::kCorruptFile, source + ": the file has a model_config but no model_weights group", kResaveHint);
  }
  LegacyH5Weights weights(file);
  return build_graph(model, weights, BuildOptions{source, version});
}

// ---- .keras (ZIP) ----

struct ZipDiscard {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

struct ZipFileClose {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

// Reads one entry into memory, refusing more than `limit` bytes whatever the header claims.
std::optional<std::string> read_entry(zip_t* archive, const char* name, std::int64_t limit, const std::string& source) {
  const zip_int64_t index = zip_name_locate(archive, name, 0);
  if (index < 0) return std::nullopt;
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive, static_cast<zip_uint64_t>(index), 0, &st) != 0) {
    fail(ErrorCode::kCorruptFile, source + ": entry " + name + " cannot be read", kResaveHint);
  }
  if ((st.valid & ZIP_STAT_SIZE) && st.size > static_cast<zip_uint64_t>(limit)) {
    fail(ErrorCode::kUnsafeArchive,
         source + ": entry " + name + " is " + std::to_string(st.size) + " bytes; we refuse entries over " +
             std::to_string(limit) + " bytes",
         "a Keras model this large is not an edge model; check the file is what you meant to upload");
  }
  std::unique_ptr<zip_file_t, ZipFileClose> file(zip_fopen_index(archive, static_cast<zip_uint64_t>(index), 0));
  if (!file) {
    fail(ErrorCode::kCorruptFile, source + ": entry " + name + " cannot be opened (encrypted or damaged ZIP)", kResaveHint);
  }
  std::string data;
  std::vector<char> chunk(1 << 20);
  for (;;) {
    const zip_int64_t n = zip_fread(file.get(), chunk.data(), chunk.size());
    if (n < 0) fail(ErrorCode::kCorruptFile, source + ": entry " + name + " is damaged (truncated or bad CRC)", kResaveHint);
    if (n == 0) break;
    if (static_cast<std::int64_t>(data.size()) + n > limit) {
      fail(ErrorCode::kUnsafeArchive, source + ": entry " + name + " expands beyond " + std::to_string(limit) + " bytes",
           "the archive looks like a ZIP bomb; check the file");
    }
    data.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return data;
}

ir::Graph import_zip(zip_t* raw_archive, const std::string& source) {
  ZipPtr archive(raw_archive);
  const auto config = read_entry(archive.get(), "config.json", kMaxConfigEntry, source);
  if (!config) {
    fail(ErrorCode::kCorruptFile, source + ": this ZIP has no config.json, so it is not a Keras 3 .keras model",
         "save the model with model.save('model.keras'); for other ZIPs (datasets, packages) use the matching command");
  }
  const json model = parse_json(*config, source + ": config.json");
  std::string version;
  if (const auto metadata = read_entry(archive.get(), "metadata.json", kMaxMetadataEntry, source)) {
    const json meta = json::parse(*metadata, nullptr, false);
    if (meta.is_object()) {
      if (auto it = meta.find("keras_version"); it != meta.end() && it->is_string()) version = it->get<std::string>();
    }
  }
  const auto weights_bytes = read_entry(archive.get(), "model.weights.h5", kMaxWeightsEntry, source);
  if (!weights_bytes) {
    fail(ErrorCode::kCorruptFile, source + ": the .keras file has no model.weights.h5", kResaveHint);
  }
  const Hdf5File weights_file = Hdf5File::open_image(*weights_bytes, source + ":model.weights.h5");
  V3Weights weights(weights_file);
  return build_graph(model, weights, BuildOptions{source, version});
}

// Every importer result passes the IR verifier before anyone else sees it.
Result<ir::Graph> verified(Result<ir::Graph> result) {
  if (!result.ok()) return result;
  Status status = ir::verify(result.value());
  if (!status.ok()) {
    return Error{ErrorCode::kInternal, "the imported Keras graph does not verify: " + status.error().message,
                 "please report this together with the model file"};
  }
  return result;
}

void check_regular_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(ErrorCode::kNotFound, path + ": no such file", "check the path");
  if (!std::filesystem::is_regular_file(path, ec)) fail(ErrorCode::kInvalidArgument, path + ": not a regular file", "give the path of the model file");
  if (std::filesystem::file_size(path, ec) == 0) fail(ErrorCode::kCorruptFile, path + ": the file is empty", kResaveHint);
}

std::string first_bytes(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<std::size_t>(in.gcount()));
  return head;
}

void refuse_zip_as_h5(std::string_view head, const std::string& source) {
  if (head.size() >= 2 && head[0] == 'P' && head[1] == 'K') {
    fail(ErrorCode::kUnsupportedFormat, source + ": this is a ZIP archive, not an HDF5 .h5 file",
         "a Keras 3 model saved as .keras is a ZIP; import it as a .keras file");
  }
}

// Bytes in memory: the child reads no file at all.
sandbox::Policy bytes_policy(std::size_t size) {
  sandbox::Policy policy;
  policy.memory_bytes = sandbox::memory_budget_for(size);
  policy.what = "importing the model";
  return policy;
}

}  // namespace

Result<ir::Graph> import_h5_in_process(const std::string& path) {
  return verified(capture([&] {
    check_regular_file(path);
    refuse_zip_as_h5(first_bytes(path, 8), path);
    const Hdf5File file = Hdf5File::open_path(path, path);
    return import_legacy(file);
  }));
}

Result<ir::Graph> import_h5_bytes_in_process(std::string_view bytes, const std::string& source) {
  return verified(capture([&] {
    if (bytes.empty()) fail(ErrorCode::kCorruptFile, source + ": the file is empty", kResaveHint);
    refuse_zip_as_h5(bytes.substr(0, 8), source);
    const Hdf5File file = Hdf5File::open_image(bytes, source);
    return import_legacy(file);
  }));
}

Result<ir::Graph> import_keras_v3_in_process(const std::string& path) {
  return verified(capture([&] {
    check_regular_file(path);
    int code = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &code);
    if (!archive) {
      fail(ErrorCode::kCorruptFile, path + ": not a ZIP archive (a .keras file is one) or a damaged one",
           "save the model with model.save('model.keras'); a Keras 2 model is a .h5 file instead");
    }
    return import_zip(archive, path);
  }));
}

Result<ir::Graph> import_keras_v3_bytes_in_process(std::string_view bytes, const std::string& source) {
  return verified(capture([&] {
    if (bytes.empty()) fail(ErrorCode::kCorruptFile, source + ": the file is empty", kResaveHint);
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* zip_source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
    zip_t* archive = zip_source ? zip_open_from_source(zip_source, ZIP_RDONLY, &error) : nullptr;
    zip_error_fini(&error);
    if (!archive) {
      if (zip_source) zip_source_free(zip_source);
      fail(ErrorCode::kCorruptFile, source + ": not a ZIP archive (a .keras file is one) or a damaged one",
           "save the model with model.save('model.keras'); a Keras 2 model is a .h5 file instead");
    }
    return import_zip(archive, source);
  }));
}

// HDF5 parsing runs in a child process: libhdf5 1.10 can crash on crafted files (see isolated.h).
Result<ir::Graph> import_h5(const std::string& path) {
  return import_isolated([&] { return import_h5_in_process(path); }, path, import_policy(path));
}

Result<ir::Graph> import_h5_bytes(std::string_view bytes, const std::string& source) {
  return import_isolated([&] { return import_h5_bytes_in_process(bytes, source); }, source, bytes_policy(bytes.size()));
}

Result<ir::Graph> import_keras_v3(const std::string& path) {
  return import_isolated([&] { return import_keras_v3_in_process(path); }, path, import_policy(path));
}

Result<ir::Graph> import_keras_v3_bytes(std::string_view bytes, const std::string& source) {
  return import_isolated([&] { return import_keras_v3_bytes_in_process(bytes, source); }, source, bytes_policy(bytes.size()));
}

Result<ir::Graph> import_config_json(const std::string& config_json, const std::string& source) {
  return verified(capture([&] {
    const json model = parse_json(config_json, source);
    NoWeights weights;
    return build_graph(model, weights, BuildOptions{source, {}});
  }));
}

Result<ir::Graph> import_config_json(const std::string& config_json, std::string_view weights_h5, const std::string& source) {
  return verified(capture([&] {
    const json model = parse_json(config_json, source);
    const Hdf5File file = Hdf5File::open_image(weights_h5, source + ":weights");
    V3Weights weights(file);
    return build_graph(model, weights, BuildOptions{source, {}});
  }));
}

}  // namespace edgeopt::keras_import
