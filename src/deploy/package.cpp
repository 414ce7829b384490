#include "deploy/package.h"

#include <zip.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>
#include <sstream>

#include "common/file_io.h"
#include "data/checksum.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
#include "estimator/layers.h"
#include "format/eom.h"
#include "ir/graph.h"

#ifndef EDGEOPT_VERSION
#define EDGEOPT_VERSION "unknown"
#endif

namespace edgeopt::deploy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Everything a package may hold comes from the results folder; anything bigger is not ours.
constexpr std::uintmax_t kMaxFileBytes = std::uintmax_t{2} << 30;

std::string read_file(const fs::path& path, const std::string& what) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) fail(ErrorCode::kNotFound, what + " '" + path.string() + "' is missing", "re-run edgeopt optimize into this folder");
  if (size > kMaxFileBytes) fail(ErrorCode::kInvalidArgument, what + " '" + path.string() + "' is larger than 2 GiB", "package a smaller model");
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!in || !in.read(bytes.data(), static_cast<std::streamsize>(size))) fail(ErrorCode::kIo, "cannot read " + what + " '" + path.string() + "'", "check the file's permissions");
  return bytes;
}

std::string sha256(std::string_view bytes) {
  data::Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

struct Entry {
  std::string path;  // inside the ZIP
  std::string bytes;
};

struct ModelFile {
  std::string path;       // inside the ZIP
  std::string format;     // onnx, tflite, eom
  std::string runtime;    // onnxruntime, tflite, edgeopt
  std::string precision;  // what the file computes in
  std::string note;
  json tolerance;         // how selftest.py compares its outputs with EdgeOpt's
  json runtime_accuracy;  // measured in that runtime by optimize, when it was
  std::string kind;       // the export's kind (fp32, fp16, dynamic_int8, int8, qdq_int8); empty for the .eom
  json estimate;          // the shipped calibration's estimate for this file on the device, or null
  int opset = 0;          // an ONNX file's default-domain opset, read from the file (0: unreadable)
};

// The default-domain ("" or "ai.onnx") opset an ONNX file imports; 0 when the bytes are not a model.
int onnx_opset(const std::string& bytes) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) return 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return static_cast<int>(o.version());
  }
  return 0;
}

std::string engine_name(const std::string& onnx_path, const estimator::JetPackRelease& r) {
  return fs::path(onnx_path).stem().string() + ".jetpack" + r.version + ".trt" + r.tensorrt + ".engine";
}

// The trtexec command lines for each JetPack release the catalogue lists for this device, per
// shipped ONNX file: FP32 files with --fp16 where the device's TensorRT runs fp16; QDQ INT8 files
// with explicit quantization (--int8, plus --fp16 for the layers left in float) only where its
// TensorRT has int8; and only where the file's opset is one that release's ONNX parser reads.
json tensorrt_plan(const estimator::Device& device, const std::vector<ModelFile>& models) {
  const estimator::RuntimeSupport* trt = device.find_runtime("tensorrt");
  if (!trt || device.jetpack.empty()) return nullptr;
  const bool fp16 = trt->find(estimator::Precision::kFp16) != nullptr;
  const bool int8 = trt->find(estimator::Precision::kInt8) != nullptr;
  json releases = json::array();
  for (const estimator::JetPackRelease& r : device.jetpack) {
    json files = json::array();
    for (const ModelFile& m : models) {
      if (m.format != "onnx") continue;
      const bool qdq = m.kind == "qdq_int8";
      json f{{"model", m.path}, {"variant", qdq ? "qdq_int8" : "fp32"}, {"opset", m.opset}, {"parser_opset_max", r.onnx_opset_max}};
      if (m.opset <= 0) {
        f["command"] = nullptr;
        f["why_not"] = "the ONNX file's opset could not be read";
      } else if (m.opset > r.onnx_opset_max) {
        f["command"] = nullptr;
        f["why_not"] = "the file is opset " + std::to_string(m.opset) + " and TensorRT " + r.tensorrt + "'s ONNX parser reads up to opset " + std::to_string(r.onnx_opset_max);
      } else if (qdq && !int8) {
        f["command"] = nullptr;
        f["why_not"] = "TensorRT on " + device.name + " has no int8 (EdgeOpt's catalogue, tensorrt precisions: " + trt->precision_list() +
                       "), so it cannot build this QDQ INT8 file as int8: run it with ONNX Runtime on the CPU, or package the fp32 variant for TensorRT (--fp16)";
      } else {
        std::string flags = qdq ? (fp16 ? " --int8 --fp16" : " --int8") : (fp16 ? " --fp16" : "");
        f["flags"] = json::array();
        std::istringstream words(flags);
        for (std::string w; words >> w;) f["flags"].push_back(w);
        f["engine"] = engine_name(m.path, r);
        f["command"] = "/usr/src/tensorrt/bin/trtexec --onnx=" + m.path + flags + " --saveEngine=" + f["engine"].get<std::string>();
        f["how"] = qdq ? "Explicit quantization: TensorRT takes the int8 scales from the file's QuantizeLinear/DequantizeLinear pairs (no calibration); "
                         "`--int8` enables int8 kernels" + std::string(fp16 ? ", `--fp16` lets the layers outside the Q/DQ pairs run in fp16" : "")
                       : (fp16 ? "`--fp16` lets TensorRT pick fp16 kernels, which the catalogue lists for this device's TensorRT" : "FP32 kernels (the catalogue lists no fp16 for this device's TensorRT)");
      }
      files.push_back(f);
    }
    // The addresses of the catalogue's source keys this release cites.
    json sources = json::object();
    const json cited = device.document.value("sources", json::object());
    for (const auto& [key, url] : cited.items()) {
      if (url.is_string() && (r.source.find(key) != std::string::npos || r.note.find(key) != std::string::npos)) sources[key] = url;
    }
    releases.push_back({{"jetpack", r.version}, {"l4t", r.l4t.empty() ? json(nullptr) : json(r.l4t)}, {"tensorrt", r.tensorrt}, {"cuda", r.cuda},
                        {"onnx_opset_max", r.onnx_opset_max}, {"source", r.source}, {"note", r.note}, {"sources", sources}, {"files", files}});
  }
  return {{"releases", releases}, {"trtexec", "/usr/src/tensorrt/bin/trtexec"},
          {"tensorrt_precisions", trt->precision_list()},
          {"source", "EdgeOpt's device catalogue, data/devices/" + device.id + ".json (\"jetpack\", with each release's sources)"},
          {"note", "an engine is tied to the TensorRT version and GPU that built it: build it on the board, with the JetPack it runs"}};
}

// The estimator's view of a model file: the runtime that runs it and the precision it computes in
// (float16 weights are widened to float32 on a CPU; dynamic-range int8 is not modelled).
std::pair<std::string, std::string> estimated_as(const ModelFile& m) {
  const std::string runtime = m.format == "tflite" ? "tflite" : m.format == "onnx" ? "onnxruntime" : "";
  if (m.kind == "int8" || m.kind == "qdq_int8") return {runtime, "int8"};
  if (m.kind == "fp32" || m.kind == "fp16") return {runtime, "fp32"};
  return {"", ""};
}

const json* find_variant(const json& results, const std::string& technique) {
  if (technique == "fp32") return &results.at("baseline");
  for (const json& v : results.at("variants")) {
    if (v.value("technique", "") == technique) return &v;
  }
  return nullptr;
}

std::string fmt(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

std::string megabytes(std::int64_t bytes) { return fmt(static_cast<double>(bytes) / 1e6, 3) + " MB"; }

// The metrics, each marked measured (where, with what) or estimated (with its interval).
json metrics_of(const json& v, const json& results) {
  json m = json::object();
  const std::string where = "this EdgeOpt host, EdgeOpt's LibTorch executor";
  m["accuracy"] = {{"value", v.value("accuracy", 0.0)},
                   {"ci95", v.value("accuracy_ci95", json::array())},
                   {"kind", "measured"},
                   {"where", where + ", test split of " + results["dataset"].value("name", "") + " (" + std::to_string(v.value("samples", 0)) + " images)"}};
  m["size_bytes"] = {{"value", v.value("size_bytes", 0)}, {"kind", "measured"}, {"where", "the .eom file on disk"}};
  m["size_gzip_bytes"] = {{"value", v.value("size_gzip_bytes", 0)}, {"kind", "measured"}, {"where", "the .eom file, gzip -9"}};
  m["host_latency_ms"] = {{"value", v.value("host_latency_ms", json::object())}, {"kind", "measured"},
                          {"where", where + ", batch 1, all threads (p50/p95)"}};
  m["host_latency_ms_1thread"] = {{"value", v.value("host_latency_ms_1thread", json::object())}, {"kind", "measured"},
                                  {"where", where + ", batch 1, one thread"}};
  m["params"] = {{"value", v.value("params", 0)}, {"kind", "counted"}};
  m["nonzero_params"] = {{"value", v.value("nonzero_params", 0)}, {"kind", "counted"}};
  m["macs"] = {{"value", v.value("macs", 0)}, {"kind", "counted"}};
  return m;
}

json device_estimate(const json& v, const std::string& device) {
  for (const json& e : v.value("device_estimates", json::array())) {
    if (e.value("device", "") == device) {
      json out = e;
      out["kind"] = "estimated";
      out["where"] = "EdgeOpt's calibrated estimator (docs/estimator.md), not a measurement on the board";
      return out;
    }
  }
  return nullptr;
}

// selftest.py compares a model's outputs with EdgeOpt's on the stored samples. A float file must
// match EdgeOpt's float executor closely (1e-4 relative); float16 weights move outputs by about
// 1e-3 of their range; an int8 file is computed by other int8 kernels than LibTorch's (other
// rounding, accumulation order and requantization points), so it is held to the same top-1 on
// most samples and to a fraction of the output range. Measured on the zoo and fixture models:
// see tests/interop/test_package.py.
constexpr double kFp16Tolerance = 0.01;
constexpr double kInt8Tolerance = 0.1;
constexpr double kInt8Agreement = 0.9;
json tolerance_for(const std::string& kind, const std::string& format) {
  if (format == "eom") return nullptr;
  if (kind == "fp32") return {{"kind", "float"}, {"rtol", 1e-4}, {"atol_fraction_of_max", 1e-4}, {"min_top1_agreement", 1.0}};
  if (kind == "fp16") return {{"kind", "close"}, {"atol_fraction_of_max", kFp16Tolerance}, {"min_top1_agreement", 1.0}};
  return {{"kind", "quantized"}, {"atol_fraction_of_max", kInt8Tolerance}, {"min_top1_agreement", kInt8Agreement}};
}

// Where the C++ example's ONNX Runtime header comes from (data/deploy/example_onnx.cpp): the C API
// header of ONNX Runtime 1.20 (ORT_API_VERSION 20), as vendored by a Go module on Go's module proxy.
// An older header works with a newer library; tests/interop/test_deploy.py builds against it.
constexpr const char* kOrtHeaderModule = "github.com/yalue/onnxruntime_go@v1.13.0";
constexpr const char* kOrtHeaderModuleDir = "github.com/yalue/onnxruntime_go@v1.13.0";
constexpr const char* kOrtHeaderRuntime = "1.20";
constexpr int kOrtHeaderApi = 20;

// What the C++ example needs of metadata.json, as lines it reads without a JSON parser.
std::string cpp_preprocessing(const json& results, const std::string& model) {
  const json input = results.value("input", json::object());
  const json norm = results.value("normalization", json::object());
  std::ostringstream o;
  o.precision(9);
  o << "# written by edgeopt package for cpp/example_onnx.cpp (the same values as metadata.json's preprocessing)\n";
  o << "model " << model << "\n";
  o << "height " << input.value("height", 0) << "\nwidth " << input.value("width", 0) << "\nchannels " << input.value("channels", 0) << "\n";
  o << "layout " << input.value("layout", std::string("NCHW")) << "\n";
  o << "scale " << norm.value("scale", 1.0) << "\n";
  for (const char* key : {"mean", "std"}) {
    const json values = norm.value(key, json(nullptr));
    if (!values.is_array() || values.empty()) continue;
    o << key;
    for (const json& x : values) o << " " << x.get<double>();
    o << "\n";
  }
  const json names = results.value("class_names", json(nullptr));
  if (names.is_array()) {
    for (const json& n : names) o << "class " << (n.is_string() ? n.get<std::string>() : n.dump()) << "\n";
  }
  return o.str();
}

std::string device_runtimes(const estimator::Device& d) {
  std::string s;
  for (const auto& r : d.runtimes) s += (s.empty() ? "" : ", ") + r.id;
  return s;
}

std::string readme(const json& results, const json& v, const json& baseline, const estimator::Device& device,
                   const std::vector<ModelFile>& models, const std::vector<std::string>& notes, const json& estimate, const json& edgetpu,
                   const json& tensorrt) {
  std::ostringstream r;
  const std::string technique = v.value("technique", "");
  r << "# " << technique << " variant of " << fs::path(results.value("model", "model")).filename().string() << " for " << device.name << "\n\n";
  r << "Made by EdgeOpt " << EDGEOPT_VERSION << " (`edgeopt package`). Every figure below says whether it was measured (where) "
    << "or estimated; `metadata.json` has them all, with the SHA-256 of every file.\n\n";
  r << "## What was done, and why\n\n";
  if (technique == "fp32") {
    r << "This is the unmodified FP32 baseline, the reference every optimized variant is compared with.\n\n";
  } else {
    r << "Technique `" << technique << "` (parameters: `" << v.value("parameters", json::object()).dump() << "`).\n\n";
  }
  for (const auto& n : v.value("notes", json::array())) r << "- " << n.get<std::string>() << "\n";
  r << "\n## Trade-offs against the FP32 baseline (measured on the EdgeOpt host)\n\n";
  r << "| | this variant | FP32 baseline |\n|---|---|---|\n";
  auto pct = [](const json& x) { return fmt(100 * x.value("accuracy", 0.0), 2) + " %"; };
  r << "| test accuracy (EdgeOpt executor) | " << pct(v) << " | " << pct(baseline) << " |\n";
  r << "| .eom size | " << megabytes(v.value("size_bytes", 0)) << " | " << megabytes(baseline.value("size_bytes", 0)) << " |\n";
  r << "| .eom size, gzipped | " << megabytes(v.value("size_gzip_bytes", 0)) << " | " << megabytes(baseline.value("size_gzip_bytes", 0)) << " |\n";
  auto p50 = [](const json& x) { return fmt(x.value("host_latency_ms", json::object()).value("p50", 0.0), 3) + " ms"; };
  r << "| host latency p50, batch 1 (EdgeOpt's LibTorch executor) | " << p50(v) << " | " << p50(baseline) << " |\n\n";
  r << "The host latency in this table is EdgeOpt's own executor on the machine that ran `edgeopt optimize`; the latency of each "
       "shipped file in its own runtime on that machine is listed under Files, and `selftest.py` measures it on your board.\n\n";
  if (!estimate.is_null() && !estimate.contains("error")) {
    r << "Estimated on " << device.name << " (an estimate, not a measurement): " << fmt(estimate.value("latency_ms", 0.0), 2) << " ms ("
      << fmt(estimate.value("latency_ms_low", 0.0), 2) << " to " << fmt(estimate.value("latency_ms_high", 0.0), 2) << " ms) with "
      << estimate.value("runtime", std::string("its default runtime")) << ".\n\n";
  }
  r << "## Files\n\n";
  for (const ModelFile& m : models) {
    r << "- `" << m.path << "`: " << m.format << ", computes in " << m.precision << ", runs with " << m.runtime << ".";
    if (!m.note.empty()) r << " " << m.note;
    if (m.runtime_accuracy.is_object() && m.runtime_accuracy.contains("accuracy")) {
      const json& ra = m.runtime_accuracy;
      r << " Measured in " << ra.value("runtime", m.runtime) << " on the EdgeOpt host: test accuracy " << fmt(100 * ra.value("accuracy", 0.0), 2)
        << " % (EdgeOpt's executor: " << fmt(100 * v.value("accuracy", 0.0), 2) << " %), latency p50 "
        << fmt(ra.value("latency_ms", json::object()).value("p50", 0.0), 3) << " ms at batch 1 on one thread.";
      if (ra.contains("warning")) r << " **Warning: " << ra.value("warning", "") << ".**";
    } else if (m.runtime_accuracy.is_object() && m.runtime_accuracy.contains("status")) {
      r << " Accuracy in its runtime: " << m.runtime_accuracy.value("status", "") << ".";
    }
    r << "\n";
  }
  r << "- `metadata.json`: technique, parameters, preprocessing, classes, metrics (measured/estimated), checksums, versions.\n";
  r << "- `SHA256SUMS`: the checksum of every other file (`sha256sum -c SHA256SUMS`).\n";
  r << "- `selftest.py`: checks the checksums, runs the stored samples and compares with EdgeOpt's outputs, measures latency, writes `measurements.json`.\n";
  r << "- `example_*.py`: classify an image file; `edgeopt_image.py`: the image loading and preprocessing they share.\n";
  if (std::any_of(models.begin(), models.end(), [](const ModelFile& m) { return m.format == "onnx"; })) {
    r << "- `cpp/example_onnx.cpp`: the same in C++ with ONNX Runtime's C API (build below); `cpp/preprocessing.txt`: the preprocessing it applies.\n";
  }
  r << "- `samples/`: preprocessed test images (`inputs.npy`), their labels, EdgeOpt's outputs for them, and sample images.\n\n";
  if (!notes.empty()) {
    r << "## Notes\n\n";
    for (const std::string& n : notes) r << "- " << n << "\n";
    r << "\n";
  }
  r << "## Preprocessing\n\n" << results.value("preprocessing", std::string("")) << ". The examples apply it (see `metadata.json` `preprocessing`).\n\n";
  r << "## Run it on " << device.name << "\n\n";
  const bool has_onnx = std::any_of(models.begin(), models.end(), [](const ModelFile& m) { return m.format == "onnx"; });
  const bool has_tflite = std::any_of(models.begin(), models.end(), [](const ModelFile& m) { return m.format == "tflite"; });
  r << "```sh\npython3 -m venv venv && . venv/bin/activate\n";
  if (has_tflite) r << "pip install ai-edge-litert   # LiteRT, the TensorFlow Lite runtime (XNNPACK CPU kernels)\n";
  if (has_onnx) r << "pip install onnxruntime      # ONNX Runtime, CPU\n";
  r << "python3 selftest.py            # checksums, outputs vs EdgeOpt's, latency -> measurements.json\n";
  if (has_tflite) r << "python3 example_tflite.py samples/sample_0.png\n";
  if (has_onnx) r << "python3 example_onnx.py samples/sample_0.png\n";
  r << "```\n\n";
  r << "Bring `measurements.json` back to the machine with EdgeOpt: `edgeopt calibrate --measured measurements.json` folds the latencies measured "
       "here into your local calibration for " << device.id << ", so EdgeOpt's later estimates for this board follow them (EdgeOpt's docs/packages.md).\n\n";
  if (has_onnx) {
    r << "## C++ example (ONNX Runtime's C API)\n\n"
      << "`cpp/example_onnx.cpp` classifies an image file like `example_onnx.py` (same preprocessing, read from `cpp/preprocessing.txt`; "
         "same output). It needs a C++17 compiler, stb_image (Debian/Raspberry Pi OS: `libstb-dev`), ONNX Runtime's shared library "
         "(the `onnxruntime` wheel installed above ships it in `onnxruntime/capi/`) and the C API header `onnxruntime_c_api.h` of "
         "ONNX Runtime " << kOrtHeaderRuntime << " (API version " << kOrtHeaderApi << "; it works with that library version and every later one). "
         "That header is in ONNX Runtime's release archives and is vendored by the Go module `" << kOrtHeaderModule << "`, which Go's module "
         "proxy serves:\n\n```sh\nsudo apt install g++ libstb-dev golang-go\n"
      << "ORT_LIB=$(python3 -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), \"capi\"))')\n"
      << "GOFLAGS=-modcacherw GOMODCACHE=$PWD/.gomod go mod download " << kOrtHeaderModule << "\n"
      << "ORT_INCLUDE=$PWD/.gomod/" << kOrtHeaderModuleDir << "\n"
      << "mkdir -p lib && ln -sf \"$(ls \"$ORT_LIB\"/libonnxruntime.so.1.*)\" lib/libonnxruntime.so.1   # the wheel's file under its soname\n"
      << "g++ -O2 -std=c++17 -I\"$ORT_INCLUDE\" cpp/example_onnx.cpp -o example_onnx lib/libonnxruntime.so.1 -Wl,-rpath,'$ORIGIN/lib'\n"
      << "./example_onnx samples/sample_0.png\n```\n\n"
      << "With an ONNX Runtime release archive instead, use its `include/` for `ORT_INCLUDE` and its `lib/` for `ORT_LIB`.\n\n";
  }
  if (tensorrt.is_object()) {
    r << "## TensorRT on " << device.name << "\n\n"
      << "TensorRT builds an engine from the ONNX file on the board (`trtexec` comes with JetPack). The commands below are pinned to the JetPack "
         "releases EdgeOpt's device catalogue lists for this device; check yours with `apt show nvidia-jetpack` (or `cat /etc/nv_tegra_release`). "
      << "An engine only runs with the TensorRT version and GPU that built it.\n\n";
    for (const json& rel : tensorrt["releases"]) {
      r << "### JetPack " << rel.value("jetpack", "") << " (TensorRT " << rel.value("tensorrt", "") << ", CUDA " << rel.value("cuda", "");
      if (rel["l4t"].is_string()) r << ", L4T " << rel["l4t"].get<std::string>();
      r << ")\n\n";
      std::string commands;
      for (const json& f : rel["files"]) {
        r << "- `" << f.value("model", "") << "` (" << (f.value("variant", "") == "qdq_int8" ? "QDQ INT8" : "FP32") << "): ONNX opset " << f.value("opset", 0)
          << "; TensorRT " << rel.value("tensorrt", "") << "'s ONNX parser reads up to opset " << f.value("parser_opset_max", 0) << ". ";
        if (f["command"].is_string()) {
          r << f.value("how", "") << ".\n";
          commands += f["command"].get<std::string>() + "\n";
        } else {
          r << "No trtexec command: " << f.value("why_not", "") << ".\n";
        }
      }
      if (!commands.empty()) r << "\n```sh\n" << commands << "```\n";
      r << "\nSource: " << rel.value("source", "") << (rel.value("note", "").empty() ? "" : "; " + rel.value("note", "")) << ".";
      for (const auto& [key, url] : rel["sources"].items()) r << " " << key << " " << url.get<std::string>();
      r << "\n\n";
    }
  }
  if (edgetpu.is_object()) {
    r << "## Edge TPU\n\n";
    if (edgetpu["compiler_command"].is_string()) {
      r << "Compile the full-integer file for the Edge TPU **on an x86-64 Debian/Ubuntu PC** (the compiler does not run on the board), then copy "
           "the `_edgetpu.tflite` it writes next to the model and run it with the Edge TPU delegate (`libedgetpu`):\n\n```sh\n"
        << edgetpu["compiler_command"].get<std::string>() << "\n```\n\n";
    } else {
      r << "This variant has no full-integer int8 file, so the Edge TPU cannot run it.\n\n";
    }
    if (edgetpu["unmapped_ops"].empty()) {
      r << "Every op of the graph is on the Edge TPU's list (per EdgeOpt's estimator), so the compiler should map the whole graph; `-s` prints what it did.\n\n";
    } else {
      r << "Ops the Edge TPU does not map (EdgeOpt's estimator list): ";
      for (const auto& u : edgetpu["unmapped_ops"]) r << "`" << u.value("op", "") << "` (node `" << u.value("node", "") << "`) ";
      r << "\nThe compiler cuts the graph at the first of them, `" << edgetpu["cut_at"].value("node", "") << "`: it and everything after it run on the CPU.\n\n";
    }
  }
  r << "Runtimes on this device per EdgeOpt's catalogue: " << device_runtimes(device) << ".\n";
  return r.str();
}

void add_entry(zip_t* zip, const Entry& e) {
  zip_source_t* src = zip_source_buffer(zip, e.bytes.data(), e.bytes.size(), 0);
  if (!src) fail(ErrorCode::kIo, std::string("cannot add '") + e.path + "' to the package: " + zip_strerror(zip), "check the disk");
  if (zip_file_add(zip, e.path.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) < 0) {
    zip_source_free(src);
    fail(ErrorCode::kIo, std::string("cannot add '") + e.path + "' to the package: " + zip_strerror(zip), "check the disk");
  }
}

void write_zip(const std::string& path, const std::vector<Entry>& entries) {
  const std::string partial = path + ".partial";
  std::error_code ec;
  fs::remove(partial, ec);
  int code = 0;
  zip_t* zip = zip_open(partial.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (!zip) fail(ErrorCode::kIo, "cannot create '" + partial + "' (libzip error " + std::to_string(code) + ")", "check that the folder exists and is writable");
  try {
    for (const Entry& e : entries) add_entry(zip, e);
  } catch (...) {
    zip_discard(zip);
    throw;
  }
  // The entries' buffers must stay alive until zip_close, which writes everything.
  if (zip_close(zip) != 0) {
    const std::string why = zip_strerror(zip);
    zip_discard(zip);
    fs::remove(partial, ec);
    fail(ErrorCode::kIo, "cannot write the package '" + path + "': " + why, "check the disk space");
  }
  fs::rename(partial, path, ec);
  if (ec) {
    fs::remove(partial, ec);
    fail(ErrorCode::kIo, "cannot move the package into place at '" + path + "'", "check the folder's permissions");
  }
}

}  // namespace

const char* format_name(PackageFormat format) {
  switch (format) {
    case PackageFormat::kAuto: return "auto";
    case PackageFormat::kTflite: return "tflite";
    case PackageFormat::kOnnx: return "onnx";
    case PackageFormat::kEom: return "eom";
  }
  return "?";
}

Result<PackageFormat> parse_format(const std::string& name) {
  for (PackageFormat f : {PackageFormat::kAuto, PackageFormat::kTflite, PackageFormat::kOnnx, PackageFormat::kEom}) {
    if (name == format_name(f)) return f;
  }
  return Error{ErrorCode::kInvalidArgument, "unknown package format '" + name + "'", "use auto, tflite, onnx or eom"};
}

Result<PackageSummary> write_package(const PackageRequest& request) {
  return capture([&]() -> PackageSummary {
    const fs::path dir(request.results_dir);
    const fs::path results_path = dir / "results.json";
    // A file of the results by its name inside the folder (results.json records absolute paths
    // of the machine that ran optimize; only the names are used).
    auto result_file = [&](const std::string& name, const std::string& what) {
      if (!request.read_result) return read_file(dir / name, what);
      auto bytes = request.read_result(name);
      if (!bytes) fail(bytes.error().code, what + " '" + name + "': " + bytes.error().message, bytes.error().hint);
      return std::move(bytes).value();
    };
    // The same, or nothing when the file is not there (results kept by an older EdgeOpt, e.g. a
    // service run from before every export and sample was stored).
    auto optional_result_file = [&](const std::string& name, const std::string& what) -> std::optional<std::string> {
      try {
        return result_file(name, what);
      } catch (const Failure& f) {
        if (f.error.code == ErrorCode::kNotFound) return std::nullopt;
        throw;
      }
    };
    auto name_of = [](const std::string& recorded) { return fs::path(recorded).filename().string(); };
    json results = json::parse(result_file("results.json", "the results file"), nullptr, false);
    if (results.is_discarded() || !results.is_object() || !results.contains("baseline") || !results.contains("variants")) {
      fail(ErrorCode::kCorruptFile, "'" + results_path.string() + "' is not an EdgeOpt results file", "package a folder written by edgeopt optimize --out");
    }
    const json* found = find_variant(results, request.technique);
    if (!found) {
      std::string have = "fp32";
      for (const json& v : results["variants"]) have += ", " + v.value("technique", "");
      fail(ErrorCode::kInvalidArgument, "the results in '" + dir.string() + "' have no technique '" + request.technique + "'", "techniques there: " + have);
    }
    const json& v = *found;
    if (v.value("status", "") != "completed") {
      fail(ErrorCode::kInvalidArgument, "technique '" + request.technique + "' did not complete in that run (" + v.value("error", json("")).dump() + ")",
           "package a completed variant, or re-run it");
    }
    const std::string data_dir = request.resources_dir.empty() ? estimator::find_data_dir() : request.resources_dir;
    auto catalog = estimator::load_device_catalog(data_dir + "/devices");
    if (!catalog) throw Failure{catalog.error()};
    const estimator::Device* device = catalog->find(request.device);
    if (!device) fail(ErrorCode::kInvalidArgument, "unknown device '" + request.device + "'", "valid devices: " + catalog->id_list());

    const bool edgetpu = device->find_runtime("edgetpu") != nullptr;
    const bool jetson = device->find_runtime("tensorrt") != nullptr;
    const bool runs_tflite = device->find_runtime("tflite") != nullptr || edgetpu;
    const bool runs_onnx = device->find_runtime("onnxruntime") != nullptr || jetson;
    const std::string precision = v.value("precision", "fp32");
    std::vector<ModelFile> models;
    std::vector<Entry> entries;
    std::vector<std::string> notes;
    auto add_model = [&](const std::string& recorded, ModelFile m) {
      const std::string what = "the " + m.format + " file of '" + request.technique + "'";
      // In auto mode a missing export is left out with a note; a format asked for, or the .eom, must be there.
      if (request.format == PackageFormat::kAuto && m.format != "eom") {
        auto bytes = optional_result_file(name_of(recorded), what);
        if (!bytes) {
          notes.push_back(name_of(recorded) + " is not stored with these results (kept by an older EdgeOpt): it is not in the package; run the optimization again to get it");
          return;
        }
        entries.push_back({m.path, std::move(*bytes)});
      } else {
        entries.push_back({m.path, result_file(name_of(recorded), what)});
      }
      if (m.format == "onnx") m.opset = onnx_opset(entries.back().bytes);
      models.push_back(std::move(m));
    };
    const json exports = v.value("exports", json::array());
    auto add_export = [&](const json& e) {
      ModelFile m;
      const std::string kind = e.value("kind", "");
      m.path = "model/" + e.value("path", "");
      m.format = e.value("format", "");
      m.runtime = m.format == "tflite" ? "tflite" : (jetson ? "onnxruntime or TensorRT" : "onnxruntime");
      m.precision = kind == "qdq_int8" || kind == "int8" ? "int8" : kind == "dynamic_int8" ? "int8 weights, float activations" : kind == "fp16" ? "fp16 weights, fp32 compute" : "fp32";
      if (m.format == "tflite" && kind == "int8") m.note = e.value("io", "") == "int8" ? "Full-integer: int8 input and output (quantize the input with the input tensor's scale and zero point)." : "Full-integer int8 inside, float32 input and output.";
      if (precision == "int4") m.note = "No runtime here has int4 kernels: the int4 weights are stored dequantized, so this file does not shrink (the .eom does).";
      m.tolerance = tolerance_for(kind, m.format);
      m.kind = kind;
      m.runtime_accuracy = e.value("runtime_accuracy", json(nullptr));
      add_model(e.value("path", ""), std::move(m));
    };
    const bool want = request.format == PackageFormat::kAuto;
    auto select = [&](const std::string& format) {
      std::vector<const json*> out;
      for (const json& e : exports) {
        if (e.value("format", "") != format || !e.contains("path")) continue;
        const bool int8_io = e.value("io", "") == "int8";
        // In auto mode a Coral gets the int8-I/O file its compiler takes (plus the float-I/O one for
        // the CPU); other boards the float-I/O files.
        if (want && int8_io && !edgetpu) continue;
        out.push_back(&e);
      }
      return out;
    };
    if (want ? runs_tflite && !jetson : request.format == PackageFormat::kTflite) {
      const auto files = select("tflite");
      if (files.empty()) {
        std::string why;
        for (const json& e : exports) {
          if (e.value("format", "") == "tflite" && e.contains("error")) why = ": " + e.value("error", "");
        }
        if (!want) fail(ErrorCode::kInvalidArgument, "variant '" + request.technique + "' has no TFLite export in '" + dir.string() + "'" + why,
                        "use --format onnx or eom (or re-run edgeopt optimize with this version if the folder is older)");
        notes.push_back("no TFLite file for this variant" + why);
      }
      for (const json* e : files) add_export(*e);
    }
    if (want ? runs_onnx && !edgetpu : request.format == PackageFormat::kOnnx) {
      const auto files = select("onnx");
      if (files.empty()) {
        if (!want) fail(ErrorCode::kInvalidArgument, "variant '" + request.technique + "' has no ONNX export", "package it as --format eom");
        notes.push_back("no ONNX file: this variant could not be expressed in ONNX");
      }
      for (const json* e : files) add_export(*e);
    }
    if (edgetpu && want) {
      if (precision != "int8") {
        notes.push_back("the Edge TPU runs only full-integer int8 models: this " + precision + " variant runs on the board's CPU with LiteRT; package an int8 variant (ptq_int8, qat_int8, hybrid) for the Edge TPU");
      }
    }
    // The .eom always: the file whose size is what actually shrinks for int4 and sparse variants.
    if (want || request.format == PackageFormat::kEom) {
      ModelFile m;
      m.path = "model/" + request.technique + ".eom";
      m.format = "eom";
      m.runtime = "edgeopt";
      m.precision = precision;
      m.note = "EdgeOpt's own format (docs/format.md): read by `edgeopt run/evaluate`, not by the board's runtimes.";
      m.tolerance = tolerance_for(precision, "eom");
      add_model(v.value("artifact", std::string()), std::move(m));
    }
    // Coral: the exact compiler command, and the ops the Edge TPU would not map (the estimator's
    // list, checked against the variant's graph), where the compiler cuts the graph.
    json edgetpu_info = nullptr;
    if (edgetpu) {
      std::string compile_file;
      for (const ModelFile& m : models) {
        if (m.format == "tflite" && m.path.find(".int8_io.tflite") != std::string::npos) compile_file = m.path;
      }
      auto cal = estimator::load_calibration(data_dir + "/estimator");
      if (!cal) throw Failure{cal.error()};
      const auto unsupported = cal->unsupported_ops.find("edgetpu");
      const std::string eom_name = name_of(v.value("artifact", std::string()));
      auto graph = format::read_eom_bytes(result_file(eom_name, "the .eom file"), eom_name);
      if (!graph) throw Failure{graph.error()};
      json unmapped = json::array();
      for (const ir::Node& n : graph->nodes) {
        const std::string op(ir::op_name(n.op));
        if (unsupported != cal->unsupported_ops.end() && unsupported->second.count(op)) unmapped.push_back({{"node", n.name}, {"op", op}});
      }
      edgetpu_info = {{"compile_on", "an x86-64 Debian/Ubuntu host (the Edge TPU compiler does not run on the board or on ARM); copy the _edgetpu.tflite it writes to the board"},
                      {"unmapped_ops", unmapped},
                      {"cut_at", unmapped.empty() ? json(nullptr) : unmapped[0]},
                      {"unmapped_source", "EdgeOpt's estimator list (data/estimator/model.json unsupported_ops.edgetpu)"}};
      if (!compile_file.empty()) edgetpu_info["compiler_command"] = "edgetpu_compiler -s -o model " + compile_file;
      else edgetpu_info["compiler_command"] = nullptr;
    }

    // What selftest.py's measurements are compared with (edgeopt calibrate --measured): the
    // variant's layer table and, per model file, the shipped calibration's estimate for the runtime
    // that runs it on this device, with as many threads as the device has cores.
    json estimator_info = nullptr;
    {
      const std::string eom_name = name_of(v.value("artifact", std::string()));
      auto graph = format::read_eom_bytes(result_file(eom_name, "the .eom file"), eom_name);
      if (!graph) throw Failure{graph.error()};
      auto table = estimator::layers_from_graph(graph.value());
      auto shipped = estimator::load_calibration(data_dir + "/estimator");
      if (table && shipped) {
        estimator_info = {{"layers", estimator::layer_table_to_json(table.value())},
                          {"threads", device->cpu_cores},
                          {"calibration", "shipped"},
                          {"note", "selftest.py copies these into measurements.json; edgeopt calibrate --measured estimates each measured file again from the layers"}};
        for (ModelFile& m : models) {
          const auto [runtime, precision_id] = estimated_as(m);
          if (runtime.empty() || !device->find_runtime(runtime)) continue;
          estimator::EstimateOptions o;
          o.device = device->id;
          o.runtime = runtime;
          o.precision = *estimator::precision_from_name(precision_id);
          o.threads = device->cpu_cores;
          auto e = estimator::estimate(table.value(), *catalog, shipped.value(), o);
          if (!e) continue;
          m.estimate = {{"runtime", runtime}, {"precision", precision_id}, {"threads", o.threads}, {"latency_ms", e->latency_ms},
                        {"latency_ms_low", e->latency_ms_low}, {"latency_ms_high", e->latency_ms_high}, {"calibration", "shipped"}, {"kind", "estimated"}};
        }
      }
    }

    bool sparse = false;
    for (const auto& n : v.value("notes", json::array())) sparse = sparse || n.get<std::string>().find("dense, zeros included") != std::string::npos;
    if (sparse) {
      notes.push_back("the ONNX file stores the pruned weights dense: what shrinks is the .eom (" + megabytes(v.value("size_bytes", 0)) + ") and any file once gzipped (.eom gzipped: " +
                      megabytes(v.value("size_gzip_bytes", 0)) + ")");
    }

    // Stored samples (inputs, labels, EdgeOpt's outputs) for the self-test and the examples.
    const json samples = results.value("samples", json(nullptr));
    json sample_meta = nullptr;
    std::optional<std::string> sample_inputs, sample_outputs;
    if (samples.is_object() && v.contains("reference_outputs")) {
      sample_inputs = optional_result_file("samples/" + name_of(samples.value("inputs", "")), "the sample inputs");
      sample_outputs = optional_result_file("samples/" + name_of(v.value("reference_outputs", "")), "EdgeOpt's sample outputs");
    }
    if (sample_inputs && sample_outputs) {
      entries.push_back({"samples/inputs.npy", std::move(*sample_inputs)});
      entries.push_back({"samples/reference_outputs.npy", std::move(*sample_outputs)});
      json images = json::array();
      for (const auto& img : samples.value("images", json::array())) {
        const std::string name = "samples/" + fs::path(img.get<std::string>()).filename().string();
        auto bytes = optional_result_file(name, "a sample image");
        if (!bytes) continue;
        entries.push_back({name, std::move(*bytes)});
        images.push_back(name);
      }
      sample_meta = {{"inputs", "samples/inputs.npy"}, {"reference_outputs", "samples/reference_outputs.npy"}, {"labels", samples.value("labels", json::array())},
                     {"images", images}, {"layout", samples.value("layout", "")}};
    } else {
      notes.push_back("this results folder has no stored samples (written by an older EdgeOpt): selftest.py checks checksums and latency, not outputs");
    }
    for (const char* script : {"selftest.py", "edgeopt_image.py", "example_onnx.py", "example_tflite.py"}) {
      const bool onnx_example = std::string(script) == "example_onnx.py";
      const bool tflite_example = std::string(script) == "example_tflite.py";
      const bool have_onnx = std::any_of(models.begin(), models.end(), [](const ModelFile& m) { return m.format == "onnx"; });
      const bool have_tflite = std::any_of(models.begin(), models.end(), [](const ModelFile& m) { return m.format == "tflite"; });
      if ((onnx_example && !have_onnx) || (tflite_example && !have_tflite)) continue;
      entries.push_back({script, read_file(fs::path(data_dir) / "deploy" / script, "the package template")});
    }
    // The C++ example: ONNX Runtime's C API (no TFLite C API library is packaged for these boards).
    for (const ModelFile& m : models) {
      if (m.format != "onnx") continue;
      entries.push_back({"cpp/example_onnx.cpp", read_file(fs::path(data_dir) / "deploy" / "example_onnx.cpp", "the package template")});
      entries.push_back({"cpp/preprocessing.txt", cpp_preprocessing(results, m.path)});
      break;
    }

    json files = json::object();
    for (const Entry& e : entries) files[e.path] = {{"sha256", sha256(e.bytes)}, {"bytes", e.bytes.size()}};
    json model_list = json::array();
    for (const ModelFile& m : models) {
      model_list.push_back({{"path", m.path}, {"format", m.format}, {"runtime", m.runtime}, {"precision", m.precision}, {"note", m.note},
                            {"tolerance", m.tolerance}, {"runtime_accuracy", m.runtime_accuracy}, {"estimate", m.estimate},
                            {"onnx_opset", m.format == "onnx" ? json(m.opset) : json(nullptr)}});
    }
    const json estimate = device_estimate(v, request.device);
    const json tensorrt = tensorrt_plan(*device, models);
    json onnx_opset = nullptr;
    for (const ModelFile& m : models) {
      if (m.format == "onnx" && m.opset > 0) onnx_opset = m.opset;
    }
    json metadata{{"edgeopt_version", EDGEOPT_VERSION},
                  {"package_format_version", 1},
                  {"source_model", fs::path(results.value("model", "")).filename().string()},
                  {"technique", request.technique},
                  {"parameters", v.value("parameters", json::object())},
                  {"precision", precision},
                  {"device", {{"id", device->id}, {"name", device->name}, {"runtimes", device_runtimes(*device)}}},
                  {"dataset", results.value("dataset", json::object())},
                  {"preprocessing", {{"description", results.value("preprocessing", "")}, {"normalization", results.value("normalization", json(nullptr))},
                                     {"input", results.value("input", json(nullptr))}}},
                  {"class_names", results.value("class_names", json(nullptr))},
                  {"models", model_list},
                  {"metrics", metrics_of(v, results)},
                  {"baseline_metrics", metrics_of(results["baseline"], results)},
                  {"device_estimate", estimate},
                  {"edgetpu", edgetpu_info},
                  {"tensorrt", tensorrt},
                  {"estimator", estimator_info},
                  {"samples", sample_meta},
                  {"notes", notes},
                  {"format_versions", {{"eom", 2}, {"onnx_opset", onnx_opset}, {"tflite_schema", 3}}},
                  {"files", files}};
    Entry meta{"metadata.json", metadata.dump(2) + "\n"};
    Entry readme_entry{"README.md", readme(results, v, results["baseline"], *device, models, notes, estimate, edgetpu_info, tensorrt)};
    entries.push_back(std::move(meta));
    entries.push_back(std::move(readme_entry));
    std::string sums;
    for (const Entry& e : entries) sums += sha256(e.bytes) + "  " + e.path + "\n";
    entries.push_back({"SHA256SUMS", sums});

    PackageSummary summary;
    summary.zip_path = request.out_path.empty() ? (dir / (request.technique + "-" + request.device + ".zip")).string() : request.out_path;
    write_zip(summary.zip_path, entries);
    summary.zip_bytes = static_cast<std::int64_t>(fs::file_size(summary.zip_path));
    for (const Entry& e : entries) summary.files.push_back({e.path, static_cast<std::int64_t>(e.bytes.size()), sha256(e.bytes)});
    for (const ModelFile& m : models) summary.models.push_back(m.path);
    summary.notes = notes;
    return summary;
  });
}

}  // namespace edgeopt::deploy
