#include "estimator/devices.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace edgeopt::estimator {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::array<const char*, static_cast<std::size_t>(Precision::kCount)> kPrecisionNames{"fp32", "fp16", "int8",
                                                                                               "int4"};
static_assert(kPrecisionNames.size() == static_cast<std::size_t>(Precision::kCount));

// A sourced number is {"value": x, "source": ...}; a bare number is accepted too. Returns
// `fallback` when the field is absent or its value is not a number (e.g. a "19.2-38.4" range).
double number(const json& parent, const char* key, double fallback = 0) {
  if (!parent.is_object() || !parent.contains(key)) return fallback;
  const json& field = parent.at(key);
  const json& value = field.is_object() ? (field.contains("value") ? field.at("value") : json()) : field;
  return value.is_number() ? value.get<double>() : fallback;
}

std::string text(const json& parent, const char* key) {
  if (!parent.is_object() || !parent.contains(key) || !parent.at(key).is_string()) return {};
  return parent.at(key).get<std::string>();
}

const json& object(const json& parent, const char* key) {
  static const json kEmpty = json::object();
  if (!parent.is_object() || !parent.contains(key) || !parent.at(key).is_object()) return kEmpty;
  return parent.at(key);
}

Precision need_precision(const std::string& name, const std::string& where) {
  auto p = precision_from_name(name);
  if (!p)
    fail(ErrorCode::kCorruptFile, where + ": unknown precision '" + name + "'", "use one of fp32, fp16, int8, int4");
  return *p;
}

bool dotted_version(const std::string& v) {
  if (v.empty() || v.front() == '.' || v.back() == '.' || v.find("..") != std::string::npos) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

// "jetpack": the JetPack releases of a Jetson, each with its TensorRT, CUDA and the newest ONNX
// opset its parser reads (a sourced number); a device runs TensorRT exactly when it lists them.
std::vector<JetPackRelease> parse_jetpack(const json& doc, const std::string& where) {
  std::vector<JetPackRelease> out;
  if (!doc.contains("jetpack")) return out;
  const std::string hint = "see \"jetpack\" in data/devices/README.md";
  const json& list = doc.at("jetpack");
  if (!list.is_array() || list.empty()) fail(ErrorCode::kCorruptFile, where + ": \"jetpack\" must be a non-empty list of releases", hint);
  for (const json& e : list) {
    if (!e.is_object()) fail(ErrorCode::kCorruptFile, where + ": a \"jetpack\" entry must be an object", hint);
    JetPackRelease r;
    r.version = text(e, "version");
    const std::string at = where + ": JetPack '" + r.version + "'";
    if (!dotted_version(r.version)) fail(ErrorCode::kCorruptFile, where + ": a \"jetpack\" entry needs a \"version\" like \"4.6.1\"", hint);
    for (const auto& [key, field] : {std::pair{"tensorrt", &r.tensorrt}, std::pair{"cuda", &r.cuda}}) {
      *field = text(e, key);
      if (!dotted_version(*field)) fail(ErrorCode::kCorruptFile, at + " needs \"" + key + "\" as a version string like \"8.2.1\"", hint);
    }
    r.l4t = text(e, "l4t");
    if (e.contains("l4t") && !dotted_version(r.l4t)) fail(ErrorCode::kCorruptFile, at + ": \"l4t\" must be a version string", hint);
    r.source = text(e, "source");
    if (r.source.empty()) fail(ErrorCode::kCorruptFile, at + " has no \"source\"", "cite NVIDIA's JetPack page or release notes; " + hint);
    const json& opset = e.contains("onnx_opset_max") ? e.at("onnx_opset_max") : json();
    if (!opset.is_object() || !opset.contains("value") || !opset.at("value").is_number_integer() || text(opset, "source").empty() ||
        opset.at("value").get<std::int64_t>() < 7 || opset.at("value").get<std::int64_t>() > 100) {
      fail(ErrorCode::kCorruptFile, at + ": \"onnx_opset_max\" must be a sourced integer opset (7 or later)", hint);
    }
    r.onnx_opset_max = opset.at("value").get<int>();
    r.note = text(e, "note");
    for (const auto& seen : out) {
      if (seen.version == r.version) fail(ErrorCode::kCorruptFile, at + " is listed twice", hint);
    }
    out.push_back(std::move(r));
  }
  return out;
}

Device parse(const json& doc, const std::string& source) {
  if (!doc.is_object()) fail(ErrorCode::kCorruptFile, source + ": a device file must hold a JSON object");
  Device d;
  d.id = text(doc, "id");
  if (d.id.empty()) fail(ErrorCode::kCorruptFile, source + ": missing \"id\"", "see data/devices/README.md");
  const std::string where = source + " (" + d.id + ")";
  d.name = text(doc, "name");
  d.kind = text(doc, "kind");
  if (doc.contains("aliases") && doc["aliases"].is_array()) {
    for (const auto& a : doc["aliases"])
      if (a.is_string()) d.aliases.push_back(a.get<std::string>());
  }

  const json& cpu = object(doc, "cpu");
  d.cpu_model = text(cpu, "model");
  d.microarchitecture = text(cpu, "microarchitecture");
  d.cpu_cores = static_cast<int>(number(cpu, "cores", 0));
  d.cpu_mhz = number(cpu, "clock_mhz", 0);
  if (d.cpu_cores < 1 || d.cpu_cores > 1024 || d.cpu_mhz <= 0) {
    fail(ErrorCode::kCorruptFile, where + ": cpu.cores and cpu.clock_mhz must be positive numbers");
  }
  const json& mpc = object(cpu, "macs_per_cycle_per_core");
  for (std::size_t i = 0; i < kPrecisionNames.size(); ++i) d.cpu_macs_per_cycle[i] = number(mpc, kPrecisionNames[i], 0);
  if (d.cpu_macs_per_cycle[0] <= 0)
    fail(ErrorCode::kCorruptFile, where + ": cpu.macs_per_cycle_per_core.fp32 is required");
  for (auto& m : d.cpu_macs_per_cycle)
    if (m <= 0) m = d.cpu_macs_per_cycle[0];
  const json& caches = object(cpu, "caches");
  d.cpu_cache_kb = number(caches, "l3_kb", 0) > 0 ? number(caches, "l3_kb") : number(caches, "l2_kb", 0);

  const json& gpu = object(doc, "gpu");
  const json& gpu_peak = object(gpu, "peak_gflops");
  if (number(gpu_peak, "fp32", 0) > 0) {
    d.has_gpu = true;
    d.gpu_name = text(gpu, "name");
    for (std::size_t i = 0; i < kPrecisionNames.size(); ++i)
      d.gpu_gmacs[i] = number(gpu_peak, kPrecisionNames[i], 0) / 2;
    for (auto& g : d.gpu_gmacs)
      if (g <= 0) g = d.gpu_gmacs[0];
    d.gpu_cache_kb = number(gpu, "l2_kb", 0);
  }

  const json& acc = object(doc, "accelerator");
  if (number(acc, "peak_tops_int8", 0) > 0) {
    d.has_tpu = true;
    d.tpu_name = text(acc, "name");
    d.tpu_gmacs_int8 = number(acc, "peak_tops_int8") * 1000 / 2;
    d.tpu_sram_mb = number(acc, "on_chip_memory_mb", 0);
    d.tpu_host_gbs = number(acc, "host_link_gbs", 0);
    d.tpu_power_w = number(acc, "power_w", 0);
  }

  const json& mem = object(doc, "memory");
  d.ram_mb = number(mem, "ram_mb", 0);
  d.flash_mb = number(mem, "flash_mb", 0);
  d.dram_gbs = number(mem, "bandwidth_gbs", 0);
  if (d.ram_mb <= 0 || d.dram_gbs <= 0)
    fail(ErrorCode::kCorruptFile, where + ": memory.ram_mb and memory.bandwidth_gbs are required");
  const json& power = object(doc, "power");
  d.idle_w = number(power, "idle_w", 0);
  d.load_w = number(power, "load_w", d.idle_w);

  if (!doc.contains("runtimes") || !doc["runtimes"].is_array() || doc["runtimes"].empty()) {
    fail(ErrorCode::kCorruptFile, where + ": \"runtimes\" must list at least one runtime");
  }
  for (const auto& r : doc["runtimes"]) {
    RuntimeSupport rt;
    rt.id = text(r, "id");
    const std::string unit = text(r, "unit");
    if (unit == "cpu")
      rt.unit = Unit::kCpu;
    else if (unit == "gpu")
      rt.unit = Unit::kGpu;
    else if (unit == "tpu")
      rt.unit = Unit::kTpu;
    else
      fail(ErrorCode::kCorruptFile, where + ": runtime '" + rt.id + "' has unit '" + unit + "'", "use cpu, gpu or tpu");
    if (rt.id.empty()) fail(ErrorCode::kCorruptFile, where + ": a runtime lacks its \"id\"");
    if ((rt.unit == Unit::kGpu && !d.has_gpu) || (rt.unit == Unit::kTpu && !d.has_tpu)) {
      fail(ErrorCode::kCorruptFile,
           where + ": runtime '" + rt.id + "' needs a " + unit + " the device does not describe");
    }
    rt.source = text(r, "source");
    rt.note = text(r, "note");
    for (const auto& [name, spec] : object(r, "precisions").items()) {
      RuntimePrecision p;
      p.requested = need_precision(name, where);
      p.compute = need_precision(spec.is_object() && spec.contains("compute") ? text(spec, "compute") : name, where);
      p.note = text(spec, "note");
      rt.precisions.push_back(p);
    }
    if (rt.precisions.empty()) fail(ErrorCode::kCorruptFile, where + ": runtime '" + rt.id + "' lists no precisions");
    std::sort(rt.precisions.begin(), rt.precisions.end(),
              [](const RuntimePrecision& a, const RuntimePrecision& b) { return a.requested < b.requested; });
    d.runtimes.push_back(std::move(rt));
  }
  d.jetpack = parse_jetpack(doc, where);
  const bool tensorrt = d.find_runtime("tensorrt") != nullptr;
  if (tensorrt && d.jetpack.empty()) {
    fail(ErrorCode::kCorruptFile, where + ": runs TensorRT but lists no \"jetpack\" release",
         "list the JetPack releases with their TensorRT and CUDA versions (data/devices/README.md)");
  }
  if (!tensorrt && !d.jetpack.empty()) {
    fail(ErrorCode::kCorruptFile, where + ": lists \"jetpack\" releases but no tensorrt runtime", "add the tensorrt runtime or drop \"jetpack\"");
  }
  if (doc.contains("notes") && doc["notes"].is_array()) {
    for (const auto& n : doc["notes"])
      if (n.is_string()) d.notes.push_back(n.get<std::string>());
  }
  d.document = doc;
  return d;
}

}  // namespace

const char* precision_name(Precision precision) {
  const auto i = static_cast<std::size_t>(precision);
  return i < kPrecisionNames.size() ? kPrecisionNames[i] : "?";
}

std::optional<Precision> precision_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kPrecisionNames.size(); ++i) {
    if (name == kPrecisionNames[i]) return static_cast<Precision>(i);
  }
  return std::nullopt;
}

double precision_bytes(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return 4;
    case Precision::kFp16:
      return 2;
    case Precision::kInt8:
      return 1;
    case Precision::kInt4:
      return 0.5;
    case Precision::kCount:
      break;
  }
  return 4;
}

const char* unit_name(Unit unit) {
  switch (unit) {
    case Unit::kCpu:
      return "cpu";
    case Unit::kGpu:
      return "gpu";
    case Unit::kTpu:
      return "tpu";
  }
  return "?";
}

const RuntimePrecision* RuntimeSupport::find(Precision precision) const {
  for (const auto& p : precisions)
    if (p.requested == precision) return &p;
  return nullptr;
}

std::string RuntimeSupport::precision_list() const {
  std::string out;
  for (const auto& p : precisions) out += (out.empty() ? "" : ", ") + std::string(precision_name(p.requested));
  return out;
}

const RuntimeSupport* Device::find_runtime(std::string_view runtime_id) const {
  for (const auto& r : runtimes)
    if (r.id == runtime_id) return &r;
  return nullptr;
}

std::string Device::runtime_list() const {
  std::string out;
  for (const auto& r : runtimes) out += (out.empty() ? "" : ", ") + r.id + " (" + r.precision_list() + ")";
  return out;
}

double Device::cpu_peak_gmacs(Precision compute, int threads, double mhz) const {
  return cpu_macs_per_cycle[static_cast<std::size_t>(compute)] * mhz * 1e-3 * threads;
}

const Device* DeviceCatalog::find(std::string_view id) const {
  for (const auto& d : devices)
    if (d.id == id) return &d;
  return nullptr;
}

std::string DeviceCatalog::id_list() const {
  std::string out;
  for (const auto& d : devices) out += (out.empty() ? "" : ", ") + d.id;
  return out;
}

Result<Device> parse_device(const nlohmann::json& document, const std::string& source) {
  return capture([&] { return parse(document, source); });
}

Result<DeviceCatalog> load_device_catalog(const std::string& dir) {
  return capture([&] {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      fail(ErrorCode::kNotFound, "device catalogue directory not found: " + dir,
           "set EDGEOPT_RESOURCE_DIR to the repository's data/ folder");
    }
    DeviceCatalog catalog;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() != ".json") continue;
      const std::string path = entry.path().string();
      std::ifstream in(path);
      json doc = json::parse(in, nullptr, false);
      if (doc.is_discarded()) fail(ErrorCode::kCorruptFile, path + ": not valid JSON");
      Device d = parse(doc, path);
      if (catalog.find(d.id)) fail(ErrorCode::kCorruptFile, path + ": duplicate device id '" + d.id + "'");
      catalog.devices.push_back(std::move(d));
    }
    if (catalog.devices.empty()) fail(ErrorCode::kNotFound, "no device files (*.json) in " + dir);
    std::sort(catalog.devices.begin(), catalog.devices.end(),
              [](const Device& a, const Device& b) { return a.id < b.id; });
    return catalog;
  });
}

std::string find_data_dir() {
  if (const char* env = std::getenv("EDGEOPT_RESOURCE_DIR"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
      if (fs::is_directory(dir / "data" / "devices", ec)) return (dir / "data").string();
      if (fs::is_directory(dir / "share" / "edgeopt" / "data" / "devices", ec))
        return (dir / "share" / "edgeopt" / "data").string();
    }
  }
  return "data";
}

}  // namespace edgeopt::estimator
