// The device catalogue: one JSON file per device under data/devices/ (schema in its README).
// Every number there carries its source; this loader keeps only what the estimator needs plus
// the parsed file itself for `edgeopt devices --json`.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace edgeopt::estimator {

enum class Precision : std::uint8_t { kFp32, kFp16, kInt8, kInt4, kCount };
const char* precision_name(Precision precision);
std::optional<Precision> precision_from_name(std::string_view name);
// Bytes per element when stored at this precision (INT4 packs two per byte).
double precision_bytes(Precision precision);

enum class Unit : std::uint8_t { kCpu, kGpu, kTpu };
const char* unit_name(Unit unit);

// One precision a runtime accepts and the arithmetic it really runs (ncnn "fp32" on an A76 is FP16).
struct RuntimePrecision {
  Precision requested = Precision::kFp32;
  Precision compute = Precision::kFp32;
  std::string note;
};

struct RuntimeSupport {
  std::string id;  // tflite, onnxruntime, ncnn, ncnn-vulkan, tensorrt, edgetpu, tflite-micro
  Unit unit = Unit::kCpu;
  std::vector<RuntimePrecision> precisions;
  std::string source;
  std::string note;
  const RuntimePrecision* find(Precision precision) const;
  std::string precision_list() const;  // "fp32, int8" for messages
};

// A JetPack release the catalogue lists for a Jetson (data/devices/README.md "jetpack"): the
// TensorRT and CUDA it ships and the newest ONNX opset that TensorRT's ONNX parser reads.
struct JetPackRelease {
  std::string version;   // "4.6.1"
  std::string l4t;       // Jetson Linux release; may be empty
  std::string tensorrt;  // "8.2.1"
  std::string cuda;      // "10.2"
  int onnx_opset_max = 0;
  std::string source;
  std::string note;
};

using PerPrecision = std::array<double, static_cast<std::size_t>(Precision::kCount)>;

struct Device {
  std::string id;
  std::string name;
  std::string kind;  // sbc, module, accelerator, mini_pc, mcu
  std::vector<std::string> aliases;

  std::string cpu_model;
  std::string microarchitecture;
  int cpu_cores = 1;
  double cpu_mhz = 0;
  PerPrecision cpu_macs_per_cycle{};  // per core
  double cpu_cache_kb = 0;            // last-level cache the CPU shares (L3, else L2)

  bool has_gpu = false;
  std::string gpu_name;
  PerPrecision gpu_gmacs{};  // peak GMAC/s (GFLOPS / 2)
  double gpu_cache_kb = 0;

  bool has_tpu = false;
  std::string tpu_name;
  double tpu_gmacs_int8 = 0;
  double tpu_sram_mb = 0;
  double tpu_host_gbs = 0;  // parameter streaming link; 0 = use DRAM bandwidth
  double tpu_power_w = 0;

  double ram_mb = 0;
  double flash_mb = 0;  // microcontrollers: where the weights live
  double dram_gbs = 0;
  double idle_w = 0;
  double load_w = 0;

  std::vector<RuntimeSupport> runtimes;
  std::vector<JetPackRelease> jetpack;  // required exactly when a runtime is tensorrt
  std::vector<std::string> notes;
  nlohmann::json document;  // the file as read

  const RuntimeSupport* find_runtime(std::string_view runtime_id) const;
  std::string runtime_list() const;
  double cpu_peak_gmacs(Precision compute, int threads, double mhz) const;
};

class DeviceCatalog {
 public:
  std::vector<Device> devices;
  const Device* find(std::string_view id) const;
  std::string id_list() const;  // "coral_dev_board, jetson_nano, ..." for messages
};

// Parses one device document; `source` names it in errors.
Result<Device> parse_device(const nlohmann::json& document, const std::string& source);
// Loads every *.json in `dir`, sorted by id.
Result<DeviceCatalog> load_device_catalog(const std::string& dir);

// Where data/ lives: $EDGEOPT_RESOURCE_DIR, else data/ beside or above the executable, else ./data.
std::string find_data_dir();

}  // namespace edgeopt::estimator
