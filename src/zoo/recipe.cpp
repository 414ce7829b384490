// Reading zoo recipes: strict JSON, every field checked, messages naming the file and the field.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "zoo/zoo.h"

namespace edgeopt::zoo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRecipeHint = "see data/zoo/README.md for the recipe fields";

[[noreturn]] void bad(const std::string& source, const std::string& what) {
  fail(ErrorCode::kInvalidArgument, "recipe " + source + ": " + what, kRecipeHint);
}

void only_keys(const json& object, const std::set<std::string>& allowed, const std::string& source,
               const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (allowed.count(key) == 0) bad(source, where + "unknown field '" + key + "'");
  }
}

std::int64_t get_int(const json& object, const std::string& key, std::int64_t fallback, std::int64_t lo,
                     std::int64_t hi, const std::string& source, const std::string& where, bool required = false) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (required) bad(source, where + "'" + key + "' is missing");
    return fallback;
  }
  if (!it->is_number_integer()) bad(source, where + "'" + key + "' must be an integer");
  const auto v = it->get<std::int64_t>();
  if (v < lo || v > hi)
    bad(source, where + "'" + key + "' is " + std::to_string(v) + "; it must be " + std::to_string(lo) + " to " +
                    std::to_string(hi));
  return v;
}

double get_number(const json& object, const std::string& key, double fallback, double lo, double hi,
                  const std::string& source, bool required = false) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (required) bad(source, "'" + key + "' is missing");
    return fallback;
  }
  if (!it->is_number()) bad(source, "'" + key + "' must be a number");
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) {
    std::ostringstream s;
    s << "'" << key << "' is " << v << "; it must be " << lo << " to " << hi;
    bad(source, s.str());
  }
  return v;
}

std::string get_string(const json& object, const std::string& key, const std::string& fallback,
                       const std::string& source, const std::vector<std::string>& choices = {}, bool required = false) {
  const auto it = object.find(key);
  if (it == object.end()) {
    if (required) bad(source, "'" + key + "' is missing");
    return fallback;
  }
  if (!it->is_string()) bad(source, "'" + key + "' must be a string");
  auto v = it->get<std::string>();
  if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    bad(source, "'" + key + "' is '" + v + "'; it must be one of " + list);
  }
  return v;
}

const std::map<std::string, Layer::Kind>& layer_kinds() {
  static const std::map<std::string, Layer::Kind> kinds = {
      {"conv", Layer::Kind::kConv},       {"bn", Layer::Kind::kBatchNorm},    {"relu", Layer::Kind::kRelu},
      {"maxpool", Layer::Kind::kMaxPool}, {"avgpool", Layer::Kind::kAvgPool}, {"gap", Layer::Kind::kGlobalAvgPool},
      {"flatten", Layer::Kind::kFlatten}, {"dense", Layer::Kind::kDense}};
  return kinds;
}

Layer parse_layer(const json& j, std::size_t index, const std::string& source) {
  const std::string where = "layer " + std::to_string(index) + ": ";
  if (!j.is_object()) bad(source, where + "must be an object such as {\"op\": \"relu\"}");
  const auto op_it = j.find("op");
  if (op_it == j.end() || !op_it->is_string())
    bad(source, where + "needs \"op\" (conv, bn, relu, maxpool, avgpool, gap, flatten, dense)");
  const auto op = op_it->get<std::string>();
  if (op == "dropout") {
    fail(ErrorCode::kUnsupportedOp, "recipe " + source + ": " + where + "dropout is not available",
         "the IR has no training-only Dropout op yet; regularise with weight_decay or augmentation");
  }
  const auto kind_it = layer_kinds().find(op);
  if (kind_it == layer_kinds().end())
    bad(source, where + "unknown op '" + op + "' (conv, bn, relu, maxpool, avgpool, gap, flatten, dense)");
  Layer layer;
  layer.kind = kind_it->second;
  switch (layer.kind) {
    case Layer::Kind::kConv:
      only_keys(j, {"op", "out", "kernel", "stride", "pad"}, source, where);
      layer.out = get_int(j, "out", 0, 1, 4096, source, where, true);
      layer.kernel = get_int(j, "kernel", 0, 1, 11, source, where, true);
      layer.stride = get_int(j, "stride", 1, 1, 4, source, where);
      layer.pad = get_int(j, "pad", 0, 0, layer.kernel, source, where);
      break;
    case Layer::Kind::kMaxPool:
    case Layer::Kind::kAvgPool:
      only_keys(j, {"op", "kernel", "stride", "pad"}, source, where);
      layer.kernel = get_int(j, "kernel", 0, 1, 16, source, where, true);
      layer.stride = get_int(j, "stride", layer.kernel, 1, 16, source, where);
      layer.pad = get_int(j, "pad", 0, 0, layer.kernel / 2, source, where);
      break;
    case Layer::Kind::kDense:
      only_keys(j, {"op", "out"}, source, where);
      layer.out = get_int(j, "out", 0, 1, 65536, source, where, true);
      break;
    default:
      only_keys(j, {"op"}, source, where);
      break;
  }
  return layer;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(ErrorCode::kNotFound, "cannot read recipe " + path, "check the path, or list recipes with `edgeopt zoo list`");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

const char* layer_kind_name(Layer::Kind kind) {
  for (const auto& [name, k] : layer_kinds()) {
    if (k == kind) return name.c_str();
  }
  return "?";
}

Result<Recipe> parse_recipe(std::string_view json_text, const std::string& source) {
  return capture([&]() -> Recipe {
    json j = json::parse(json_text.begin(), json_text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) bad(source, "not a JSON object");
    only_keys(j,
              {"name", "description", "dataset", "classes", "input_shape", "normalization", "layers", "epochs",
               "batch_size", "learning_rate", "weight_decay", "schedule", "seed", "augmentation", "crop_padding"},
              source, "");
    Recipe r;
    r.source = source;
    r.name = get_string(j, "name", "", source, {}, true);
    if (r.name.empty() || r.name.size() > 64 || !std::all_of(r.name.begin(), r.name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        })) {
      bad(source, "'name' must be 1 to 64 characters of a-z, 0-9, '-' and '_' (it names the output files)");
    }
    r.description = get_string(j, "description", "", source);
    r.dataset = get_string(j, "dataset", "", source, {"mnist", "fashion-mnist", "cifar10"}, true);
    r.classes = get_int(j, "classes", 10, 2, 1000, source, "");
    const auto shape_it = j.find("input_shape");
    if (shape_it == j.end() || !shape_it->is_array() || shape_it->size() != 3)
      bad(source, "'input_shape' must be [channels, height, width]");
    for (const auto& d : *shape_it) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 1 || d.get<std::int64_t>() > 1024) {
        bad(source, "'input_shape' values must be integers from 1 to 1024");
      }
      r.input_shape.push_back(d.get<std::int64_t>());
    }
    if (r.input_shape[0] != 1 && r.input_shape[0] != 3) bad(source, "'input_shape' must have 1 or 3 channels");
    r.normalization = get_string(j, "normalization", "unit", source,
                                 {"unit", "raw", "symmetric", "imagenet", "mnist", "fashion-mnist", "cifar10"});
    const auto layers_it = j.find("layers");
    if (layers_it == j.end() || !layers_it->is_array() || layers_it->empty())
      bad(source, "'layers' must be a non-empty list");
    if (layers_it->size() > 256) bad(source, "'layers' has more than 256 entries");
    for (std::size_t i = 0; i < layers_it->size(); ++i) r.layers.push_back(parse_layer((*layers_it)[i], i, source));
    if (r.layers.back().kind != Layer::Kind::kDense || r.layers.back().out != r.classes) {
      bad(source, "the last layer must be dense with 'out' = classes (" + std::to_string(r.classes) + ")");
    }
    r.epochs = static_cast<int>(get_int(j, "epochs", 0, 1, 1000, source, "", true));
    r.batch_size = get_int(j, "batch_size", 128, 2, 65536, source, "");
    r.learning_rate = static_cast<float>(get_number(j, "learning_rate", 1e-3, 1e-7, 1.0, source, true));
    r.weight_decay = static_cast<float>(get_number(j, "weight_decay", 0.0, 0.0, 0.5, source));
    r.schedule = get_string(j, "schedule", "cosine", source, {"constant", "cosine", "step"});
    const auto seed_it = j.find("seed");
    if (seed_it == j.end() || !seed_it->is_number_unsigned())
      bad(source, "'seed' must be a non-negative integer (it makes training reproducible)");
    r.seed = seed_it->get<std::uint64_t>();
    r.augmentation = get_string(j, "augmentation", "none", source, {"none", "flip", "flip-crop"});
    r.crop_padding = static_cast<int>(get_int(j, "crop_padding", 4, 1, 16, source, ""));
    r.document = std::move(j);
    return r;
  });
}

Result<Recipe> read_recipe(const std::string& path) {
  auto text = capture([&] { return read_text(path); });
  if (!text) return text.error();
  return parse_recipe(text.value(), path);
}

Result<std::vector<Recipe>> read_recipes(const std::string& dir) {
  return capture([&]() -> std::vector<Recipe> {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      fail(ErrorCode::kNotFound, "no recipe folder at " + dir,
           "pass --recipes DIR or set EDGEOPT_ZOO_DIR to the data/zoo folder");
    }
    std::vector<std::string> paths;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") paths.push_back(entry.path().string());
    }
    std::sort(paths.begin(), paths.end());
    std::vector<Recipe> recipes;
    std::set<std::string> names;
    for (const auto& path : paths) {
      auto r = read_recipe(path);
      if (!r) throw Failure{r.error()};
      if (!names.insert(r->name).second)
        fail(ErrorCode::kInvalidArgument, "recipe " + path + ": the name '" + r->name + "' is used twice", kRecipeHint);
      recipes.push_back(std::move(r).value());
    }
    std::sort(recipes.begin(), recipes.end(), [](const Recipe& a, const Recipe& b) { return a.name < b.name; });
    return recipes;
  });
}

std::string find_recipe_dir() {
  if (const char* env = std::getenv("EDGEOPT_ZOO_DIR"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      if (fs::is_directory(dir / "data" / "zoo", ec)) return (dir / "data" / "zoo").string();
      if (fs::is_directory(dir / "share" / "edgeopt" / "data" / "zoo", ec))
        return (dir / "share" / "edgeopt" / "data" / "zoo").string();
    }
  }
  return "data/zoo";
}

}  // namespace edgeopt::zoo
