#include "pipeline/optimize.h"

#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

#include "backend/executor.h"
#include "common/file_io.h"
#include "common/npy.h"
#include "data/dataset.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
#include "estimator/local_calibration.h"
#include "estimator/layers.h"
#include "format/eom.h"
#include "format/onnx_export.h"
#include "format/tflite_export.h"
#include "pipeline/benchmark.h"
#include "pipeline/evaluate.h"
#include "pipeline/model.h"
#include "pipeline/preprocess.h"
#include "techniques/technique.h"

namespace edgeopt::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Measured {
  std::string technique;
  std::string status = "completed";
  std::string error;
  std::string precision = "fp32";
  double accuracy = 0;
  double ci_low = 0;
  double ci_high = 0;
  std::int64_t samples = 0;
  json per_class = nullptr;  // support, correct, accuracy and confusion on the test split (class_counts_json)
  std::int64_t size_bytes = 0;
  std::int64_t size_gzip_bytes = 0;
  std::string artifact;
  std::string onnx_artifact;  // empty when ONNX cannot express the variant
  std::string onnx_note;
  std::string reference_outputs;  // EdgeOpt's outputs on the stored samples (samples/<technique>.outputs.npy)
  json exports = json::array();   // the TFLite and ONNX files for device runtimes, one object each
  std::int64_t params = 0;
  std::int64_t nonzero_params = 0;
  std::int64_t macs = 0;
  std::int64_t peak_memory_bytes = 0;
  double latency_p50_1t = 0, latency_p95_1t = 0, latency_p50_all = 0, latency_p95_all = 0;
  int all_threads = 0;
  std::vector<double> latency_rounds_1t, latency_rounds_all;  // each round's p50 (ms)
  double latency_spread_1t = 0, latency_spread_all = 0;       // slowest / fastest round
  bool latency_unstable = false;
  double seconds = 0;
  double estimated_seconds = 0;  // before the run: the technique's work x the measured pass time
  json parameters = json::object();  // the technique's parameters as run
  std::vector<std::string> notes;
  std::map<std::string, double> metrics;
  json estimates = json::array();
};

std::int64_t gzip_size(const std::string& bytes) {
  uLongf bound = compressBound(static_cast<uLong>(bytes.size()));
  std::vector<Bytef> out(bound);
  if (compress2(out.data(), &bound, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uLong>(bytes.size()), 9) != Z_OK) return -1;
  return static_cast<std::int64_t>(bound) + 18;  // + the gzip header and trailer around the deflate stream
}

// results.json's per_class object; accuracy is null for a class with no test image.
json class_counts_json(const ClassCounts& counts) {
  json accuracy = json::array();
  for (const auto& a : counts.accuracy()) accuracy.push_back(a ? json(*a) : json(nullptr));
  return {{"support", counts.support}, {"correct", counts.correct}, {"accuracy", accuracy}, {"confusion", counts.confusion}};
}

// Output index i and the class it stands for: the dataset's name for label i (an image folder's
// sub-folder name, in byte order; a preset's published names).
json classes_json(const data::Dataset& dataset, std::int64_t outputs) {
  json classes = json::array();
  for (std::int64_t i = 0; i < outputs; ++i) {
    const auto k = static_cast<std::size_t>(i);
    classes.push_back({{"index", i}, {"name", k < dataset.class_names.size() ? dataset.class_names[k] : "class " + std::to_string(i)}});
  }
  return classes;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The ONNX twin of a variant, for runtimes that read ONNX: FP32 (pruned models as dense FP32)
// or QDQ INT8 with the variant's own weight and activation parameters. ONNX has no int4 or
// sparse storage: those variants are exported dense, and the note says so.
void export_onnx_variant(Measured& m, const ir::Graph& graph, const format::EomWriteOptions& encoding, const OptimizeOptions& options) {
  format::OnnxExportOptions o;
  const std::vector<int> consumers = ir::consumer_counts(graph);
  for (std::size_t k = 0; k < graph.nodes.size(); ++k) {
    const ir::Node& n = graph.nodes[k];
    for (int out : n.outputs) {
      const ir::Value& v = graph.value(out);
      if (v.is_constant || !v.quant) continue;
      // An output whose only consumer is a ReLU that has its own range is computed with the
      // ReLU fused (one rounding, like the int8 executor): no Q/DQ between them.
      const bool fused = consumers[static_cast<std::size_t>(out)] == 1 && k + 1 < graph.nodes.size() &&
                         graph.nodes[k + 1].op == ir::OpKind::kRelu && graph.nodes[k + 1].inputs[0] == out &&
                         graph.value(graph.nodes[k + 1].outputs[0]).quant.has_value();
      if (!fused) o.activation_quant[v.name] = *v.quant;
    }
  }
  for (int in : graph.inputs) {
    if (graph.value(in).quant) o.activation_quant[graph.value(in).name] = *graph.value(in).quant;
  }
  o.qdq_int8 = !o.activation_quant.empty();
  const std::string path = (fs::path(options.out_dir) / (m.technique + ".onnx")).string();
  if (Status s = format::export_onnx(graph, path, o); !s) {
    m.onnx_note = "no ONNX export: " + s.error().message;
    return;
  }
  m.onnx_artifact = path;
  bool int4 = false;
  bool sparse = false;
  for (const auto& [name, e] : encoding.per_constant) {
    int4 = int4 || format::is_int4(e.kind);
    sparse = sparse || format::is_sparse(e.kind);
  }
  if (int4) m.onnx_note = "the ONNX export holds the int4 weights dequantized to FP32 (these ONNX exports have no int4 type)";
  else if (sparse) m.onnx_note = "the ONNX export stores the pruned weights dense, zeros included (ONNX has no sparse weight storage here)";
}

// Ranges for the graph outputs an int8 graph keeps in float (the logits), which a full-integer
// TFLite file must quantize too: min/max of the variant's own outputs over training images
// (uint8 form, like the calibrated activations). Softmax-like outputs have fixed ranges in TFLite.
std::map<std::string, ir::QuantParams> output_ranges(backend::Executor& exec, const ir::Graph& graph, const data::ImageSet& train,
                                                     const InputSpec& spec, const Normalization& norm) {
  std::map<std::string, ir::QuantParams> ranges;
  const int out = graph.outputs[0];
  if (graph.value(out).quant) return ranges;
  for (const ir::Node& n : graph.nodes) {
    if (n.outputs[0] == out && (n.op == ir::OpKind::kSoftmax || n.op == ir::OpKind::kLogSoftmax)) return ranges;
  }
  const data::ImageSet subset = strided_subset(train, std::min<std::int64_t>(512, train.count));
  float lo = 0, hi = 0;
  std::vector<float> batch;
  for (std::int64_t b = 0; b < subset.count; b += 128) {
    const std::int64_t e = std::min(subset.count, b + 128);
    prepare_batch(subset, b, e, spec, norm, batch);
    auto y = exec.run(batch.data(), e - b);
    if (!y) fail(y.error().code, y.error().message, y.error().hint);
    const auto [mn, mx] = std::minmax_element(y->begin(), y->end());
    lo = std::min(lo, *mn);
    hi = std::max(hi, *mx);
  }
  const double scale = std::max(1e-8, (static_cast<double>(hi) - lo) / 255.0);
  ranges[graph.value(out).name] = ir::QuantParams{{static_cast<float>(scale)}, {static_cast<std::int32_t>(std::clamp(std::round(-lo / scale), 0.0, 255.0))}, -1, 0};
  return ranges;
}

// The TFLite files of a variant: full-integer int8 (float I/O, and int8 I/O for the Edge TPU)
// for int8 graphs; FP32 for the rest, plus FP16-weight and dynamic-range int8 files of the
// baseline. A graph TFLite cannot express gets a note instead of a file.
void export_tflite_variant(Measured& m, const ir::Graph& graph, backend::Executor& exec, const data::Dataset& dataset, const InputSpec& spec,
                           const Normalization& norm, const OptimizeOptions& options) {
  bool int8_graph = false;
  for (const ir::Value& v : graph.values) int8_graph = int8_graph || (!v.is_constant && v.quant.has_value());
  struct Want {
    format::TfliteKind kind;
    bool int8_io;
    std::string suffix;
  };
  std::vector<Want> wanted;
  if (int8_graph) {
    wanted = {{format::TfliteKind::kFullInt8, false, ".int8"}, {format::TfliteKind::kFullInt8, true, ".int8_io"}};
  } else {
    wanted = {{format::TfliteKind::kFp32, false, ""}};
    if (m.technique == "fp32") {
      wanted.push_back({format::TfliteKind::kFp16Weights, false, ".fp16"});
      wanted.push_back({format::TfliteKind::kDynamicInt8, false, ".dynamic_int8"});
    }
  }
  std::map<std::string, ir::QuantParams> ranges;
  if (int8_graph) ranges = output_ranges(exec, graph, dataset.train, spec, norm);
  for (const Want& w : wanted) {
    format::TfliteExportOptions o;
    o.kind = w.kind;
    o.int8_io = w.int8_io;
    o.extra_quant = ranges;
    const std::string name = m.technique + w.suffix + ".tflite";
    const std::string path = (fs::path(options.out_dir) / name).string();
    auto r = format::export_tflite_file(graph, path, o);
    json e{{"format", "tflite"}, {"kind", format::tflite_kind_name(w.kind)}, {"io", w.int8_io ? "int8" : "float32"}, {"runtime", "tflite"}};
    if (!r) {
      e["error"] = r.error().message;
      m.exports.push_back(e);
      continue;
    }
    e["path"] = name;
    e["size_bytes"] = static_cast<std::int64_t>(fs::file_size(path));
    e["ops"] = r->ops;
    e["notes"] = r->notes;
    if (!ranges.empty()) e["notes"].push_back("the output's int8 range (kept in float by EdgeOpt) is the min/max of the variant's outputs on 512 training images");
    m.exports.push_back(e);
  }
}

// Memory the host executor needs at batch 1, computed from the graph (not an RSS reading):
// constants as it holds them (int8-quantized weights of an int8 graph as 1 byte, the rest as
// 4-byte floats) plus the largest set of activations alive at once (4 bytes each).
std::int64_t peak_memory(const ir::Graph& graph) {
  bool int8_graph = false;
  for (const ir::Value& v : graph.values) int8_graph = int8_graph || (!v.is_constant && v.quant.has_value());
  std::int64_t bytes = 0;
  for (const ir::Value& v : graph.values) {
    if (!v.is_constant) continue;
    const bool int8_weight = int8_graph && v.quant && v.quant->group_size == 0;
    bytes += static_cast<std::int64_t>(v.dtype == ir::DType::kI64 ? 8 * v.i64.size() : (int8_weight ? 1 : 4) * v.f32.size());
  }
  auto table = estimator::layers_from_graph(graph);
  if (table) bytes += 4 * table->peak_live_elems;
  return bytes;
}

// A few test images kept with the results, preprocessed as the model wants them, so a
// deployment package can check a runtime's outputs against EdgeOpt's (src/deploy). The same
// images on every step and machine: an even stride over the test split.
struct Samples {
  NpyArray inputs;
  std::vector<std::int32_t> labels;
  data::ImageSet images;
};
constexpr std::int64_t kSampleCount = 16;
constexpr std::int64_t kSampleImages = 2;

Samples sample_set(const ir::Graph& graph, const data::Dataset& dataset, const InputSpec& spec, const Normalization& norm) {
  Samples s;
  s.images = strided_subset(dataset.test, std::min(kSampleCount, dataset.test.count));
  prepare_batch(s.images, 0, s.images.count, spec, norm, s.inputs.data);
  s.inputs.shape = graph.value(graph.inputs[0]).shape;
  s.inputs.shape[0] = s.images.count;
  s.labels = s.images.labels;
  return s;
}

std::vector<std::string> sample_image_names(const data::Dataset& dataset) {
  std::vector<std::string> names;
  for (std::int64_t k = 0; k < std::min({kSampleImages, kSampleCount, dataset.test.count}); ++k) names.push_back("sample_" + std::to_string(k) + ".png");
  return names;
}

// samples/inputs.npy and PNGs of the first images, written once (by the baseline step).
void write_samples(const ir::Graph& graph, const data::Dataset& dataset, const InputSpec& spec, const Normalization& norm,
                   const OptimizeOptions& options) {
  const Samples s = sample_set(graph, dataset, spec, norm);
  const fs::path dir = fs::path(options.out_dir) / "samples";
  fs::create_directories(dir);
  if (Status st = write_npy((dir / "inputs.npy").string(), s.inputs); !st) throw Failure{st.error()};
  const std::vector<std::string> names = sample_image_names(dataset);
  for (std::size_t k = 0; k < names.size(); ++k) {
    auto png = data::encode_png(s.images, static_cast<std::int64_t>(k));
    if (!png) throw Failure{png.error()};
    if (Status st = write_file_atomic((dir / names[k]).string(), png.value()); !st) throw Failure{st.error()};
  }
}

// Everything but latency: safe to run while other techniques work (it only costs time).
void measure_static(Measured& m, const ir::Graph& graph, const format::EomWriteOptions& encoding, const data::Dataset& dataset,
                    const InputSpec& spec, const Normalization& norm, const OptimizeOptions& options) {
  const std::string path = (fs::path(options.out_dir) / (m.technique + ".eom")).string();
  if (Status s = format::write_eom(graph, path, encoding); !s) fail(s.error().code, s.error().message, s.error().hint);
  m.artifact = path;
  m.size_bytes = static_cast<std::int64_t>(fs::file_size(path));
  m.size_gzip_bytes = gzip_size(read_all(path));
  m.params = graph.param_count();
  for (const ir::Value& v : graph.values) {
    if (!v.is_constant || v.dtype == ir::DType::kI64) continue;
    m.nonzero_params += std::count_if(v.f32.begin(), v.f32.end(), [](float x) { return x != 0.0F; });
  }
  for (const ir::Node& n : graph.nodes) m.macs += ir::node_cost(graph, n).macs;
  m.peak_memory_bytes = peak_memory(graph);
  export_onnx_variant(m, graph, encoding, options);
  auto exec = backend::Executor::create(graph);
  if (!exec) fail(exec.error().code, exec.error().message, exec.error().hint);
  EvalOptions eval;
  eval.limit = options.eval_limit;
  auto r = evaluate(*exec.value(), dataset.test, spec, norm, eval);
  if (!r) fail(r.error().code, r.error().message, r.error().hint);
  m.accuracy = r->accuracy;
  m.ci_low = r->ci95_low;
  m.ci_high = r->ci95_high;
  m.samples = r->samples;
  m.per_class = class_counts_json(r->per_class);
  export_tflite_variant(m, graph, *exec.value(), dataset, spec, norm, options);
  if (!m.onnx_artifact.empty()) {
    m.exports.push_back({{"format", "onnx"}, {"kind", m.precision == "int8" ? "qdq_int8" : "fp32"}, {"runtime", "onnxruntime"},
                         {"path", fs::path(m.onnx_artifact).filename().string()}, {"size_bytes", static_cast<std::int64_t>(fs::file_size(m.onnx_artifact))}});
  }
  const Samples samples = sample_set(graph, dataset, spec, norm);
  auto outputs = exec.value()->run(samples.inputs.data.data(), samples.inputs.shape[0]);
  if (!outputs) fail(outputs.error().code, outputs.error().message, outputs.error().hint);
  NpyArray out;
  out.shape = graph.value(graph.outputs[0]).shape;
  out.shape[0] = samples.inputs.shape[0];
  out.data = std::move(outputs).value();
  m.reference_outputs = m.technique + ".outputs.npy";
  fs::create_directories(fs::path(options.out_dir) / "samples");
  if (Status s = write_npy((fs::path(options.out_dir) / "samples" / m.reference_outputs).string(), out); !s) fail(s.error().code, s.error().message, s.error().hint);
}

// The baseline's forward time per image on one thread, in batches like the techniques' (64
// training images; the best of three), for the techniques' time estimates. Leaves one thread set.
double seconds_per_image_pass(const ir::Graph& graph, const data::ImageSet& train, const InputSpec& spec, const Normalization& norm) {
  const std::int64_t n = std::min<std::int64_t>(64, train.count);
  if (n <= 0) return 0;
  auto exec = backend::Executor::create(graph);
  if (!exec) fail(exec.error().code, exec.error().message, exec.error().hint);
  std::vector<float> batch;
  prepare_batch(train, 0, n, spec, norm, batch);
  backend::set_threads(1);
  double best = std::numeric_limits<double>::max();
  for (int round = 0; round < 4; ++round) {
    const auto t = std::chrono::steady_clock::now();
    (void)exec.value()->run(batch.data(), n);
    if (round > 0) best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  }
  return best / static_cast<double>(n);
}

// Host latency of every model with the machine to itself, after every technique has finished
// (see measure_host_latency: interleaved rounds, best round per model).
void measure_latencies(const std::vector<std::pair<Measured*, const ir::Graph*>>& models, const data::Dataset& dataset,
                       const InputSpec& spec, const Normalization& norm, const OptimizeOptions& options) {
  std::vector<float> sample;
  prepare_batch(dataset.test, 0, 1, spec, norm, sample);
  std::vector<const ir::Graph*> graphs;
  for (const auto& entry : models) graphs.push_back(entry.second);
  auto timed = measure_host_latency(graphs, std::vector<std::vector<float>>(graphs.size(), sample), options.latency_runs);
  if (!timed) fail(timed.error().code, timed.error().message, timed.error().hint);
  for (std::size_t k = 0; k < models.size(); ++k) {
    Measured& m = *models[k].first;
    const HostLatency& t = timed.value()[k];
    m.latency_p50_1t = t.p50_1t;
    m.latency_p95_1t = t.p95_1t;
    m.latency_p50_all = t.p50_all;
    m.latency_p95_all = t.p95_all;
    m.all_threads = t.all_threads;
    m.latency_rounds_1t = t.rounds_p50_1t;
    m.latency_rounds_all = t.rounds_p50_all;
    m.latency_spread_1t = t.spread_1t;
    m.latency_spread_all = t.spread_all;
    m.latency_unstable = t.unstable;
    if (t.unstable) m.notes.push_back(unstable_note(t));
  }
}

// Device-faithful accuracy: every exported file scored in the runtime that runs it on a device
// (LiteRT for .tflite, ONNX Runtime for .onnx) on the same test images as EdgeOpt's own figure,
// with its host latency at batch 1. The runtimes are Python packages here, so a small runner
// (data/deploy/runtime_eval.py) runs under the project's Python; it is optional: without Python
// or a runtime, each file says "not measured: ..." and the run goes on.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string find_python(const std::string& data_dir) {
  if (const char* env = std::getenv("EDGEOPT_PYTHON"); env && *env) return env;
  std::error_code ec;
  const fs::path venv = fs::path(data_dir).parent_path() / ".venv" / "bin" / "python";
  if (fs::exists(venv, ec)) return venv.string();
  return fs::exists("/usr/bin/python3", ec) ? "/usr/bin/python3" : "";
}

json measure_in_runtimes(const std::vector<Measured*>& all, const data::Dataset& dataset, const InputSpec& spec, const Normalization& norm,
                         const OptimizeOptions& options, const std::string& data_dir, const ir::Graph& graph) {
  json jobs = json::array();
  for (Measured* m : all) {
    for (json& e : m->exports) {
      if (e.contains("path")) jobs.push_back({{"id", m->technique + "/" + e["path"].get<std::string>()}, {"path", (fs::path(options.out_dir) / e["path"].get<std::string>()).string()}});
    }
  }
  auto not_measured = [&](const std::string& why) {
    for (Measured* m : all) {
      for (json& e : m->exports) {
        if (e.contains("path")) e["runtime_accuracy"] = {{"status", "not measured: " + why}};
      }
    }
    return json{{"status", "not measured: " + why}};
  };
  if (jobs.empty()) return json{{"status", "no exported files"}};
  if (options.cancel && options.cancel->load()) return not_measured("the run was cancelled");
  const std::string python = find_python(data_dir);
  const fs::path script = fs::path(data_dir) / "deploy" / "runtime_eval.py";
  std::error_code ec;
  if (python.empty()) return not_measured("no Python found (set EDGEOPT_PYTHON, or make the venv: scripts/install-py.sh .venv)");
  if (!fs::exists(script, ec)) return not_measured("the runner " + script.string() + " is missing");
  const fs::path work = fs::path(options.out_dir) / ".runtime_eval";
  fs::create_directories(work, ec);
  const std::int64_t count = options.eval_limit > 0 ? std::min(options.eval_limit, dataset.test.count) : dataset.test.count;
  NpyArray inputs;
  prepare_batch(dataset.test, 0, count, spec, norm, inputs.data);
  inputs.shape = graph.value(graph.inputs[0]).shape;
  inputs.shape[0] = count;
  NpyArray labels{{count}, std::vector<float>(dataset.test.labels.begin(), dataset.test.labels.begin() + count)};
  if (Status st = write_npy((work / "inputs.npy").string(), inputs); !st) throw Failure{st.error()};
  inputs.data = {};
  if (Status st = write_npy((work / "labels.npy").string(), labels); !st) throw Failure{st.error()};
  const json job{{"inputs", (work / "inputs.npy").string()}, {"labels", (work / "labels.npy").string()}, {"layout", ir::layout_name(spec.layout)},
                 {"latency_runs", std::max(20, options.latency_runs * 2)}, {"models", jobs}};
  if (Status st = write_file_atomic((work / "job.json").string(), job.dump()); !st) throw Failure{st.error()};
  const std::string command = shell_quote(python) + " " + shell_quote(script.string()) + " " + shell_quote((work / "job.json").string()) + " " +
                              shell_quote((work / "out.json").string()) + " > " + shell_quote((work / "log.txt").string()) + " 2>&1";
  const int rc = std::system(command.c_str());
  json out = json::parse(read_all((work / "out.json").string()), nullptr, false);
  std::string log = read_all((work / "log.txt").string());
  fs::remove_all(work, ec);
  if (rc != 0 || out.is_discarded() || !out.contains("models")) {
    if (log.size() > 400) log = log.substr(log.size() - 400);
    return not_measured("the runner failed (exit " + std::to_string(rc) + ") with " + python + ": " + log);
  }
  std::map<std::string, json> by_id;
  for (const json& r : out["models"]) by_id[r.value("id", "")] = r;
  for (Measured* m : all) {
    for (json& e : m->exports) {
      if (!e.contains("path")) continue;
      json r = by_id.count(m->technique + "/" + e["path"].get<std::string>()) ? by_id[m->technique + "/" + e["path"].get<std::string>()] : json{{"status", "not measured: no answer from the runner"}};
      r.erase("id");
      if (r.contains("accuracy")) {
        const double gap = 100 * (r["accuracy"].get<double>() - m->accuracy);
        const double half_ci = 100 * (m->ci_high - m->ci_low) / 2;
        r["gap_pp_vs_edgeopt"] = gap;
        r["edgeopt_accuracy"] = m->accuracy;
        if (std::abs(gap) > half_ci) {
          r["warning"] = "the accuracy in " + r.value("runtime", std::string("its runtime")) + " differs from EdgeOpt's by " + std::to_string(gap).substr(0, 6) +
                         " points, more than the 95 % CI half-width (" + std::to_string(half_ci).substr(0, 5) + "): the shipped file does not behave as EdgeOpt measured";
          m->notes.push_back(e["path"].get<std::string>() + ": " + r["warning"].get<std::string>());
        }
      }
      e["runtime_accuracy"] = r;
    }
  }
  return json{{"status", "measured"}, {"python", python}, {"samples", count}};
}

// As many concurrent techniques as cores, but no more than memory allows (~1 GB each, which
// covers a training subset and a few copies of a model of tens of MB).
int default_jobs() {
  int jobs = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::int64_t kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemAvailable:") {
      jobs = std::min<int>(jobs, std::max<std::int64_t>(1, kb / (1024 * 1024)));
      break;
    }
  }
  return jobs;
}

json to_json(const Measured& m, double baseline_accuracy) {
  json j{{"technique", m.technique}, {"status", m.status}, {"error", m.error.empty() ? json(nullptr) : json(m.error)}};
  if (m.technique != "fp32") {
    j["parameters"] = m.parameters;
    j["estimated_seconds"] = m.estimated_seconds;
  }
  if (m.status != "completed") {
    j["per_class"] = nullptr;  // nothing was measured
    return j;
  }
  const double drop_pp = 100 * (baseline_accuracy - m.accuracy);
  j.update({{"precision", m.precision},
            {"accuracy", m.accuracy},
            {"accuracy_ci95", {m.ci_low, m.ci_high}},
            {"samples", m.samples},
            {"per_class", m.per_class},
            {"accuracy_drop_pp", drop_pp},
            {"accuracy_drop_relative_pct", baseline_accuracy > 0 ? 100 * (baseline_accuracy - m.accuracy) / baseline_accuracy : 0.0},
            {"size_bytes", m.size_bytes},
            {"size_gzip_bytes", m.size_gzip_bytes},
            {"artifact", m.artifact},
            {"onnx_artifact", m.onnx_artifact.empty() ? json(nullptr) : json(m.onnx_artifact)},
            {"reference_outputs", m.reference_outputs},
            {"exports", m.exports},
            {"params", m.params},
            {"nonzero_params", m.nonzero_params},
            {"macs", m.macs},
            {"peak_memory_bytes", m.peak_memory_bytes},
            {"host_latency_ms", {{"p50", m.latency_p50_all}, {"p95", m.latency_p95_all}, {"threads", m.all_threads},
                                 {"rounds_p50", m.latency_rounds_all}, {"spread", m.latency_spread_all}}},
            {"host_latency_ms_1thread", {{"p50", m.latency_p50_1t}, {"p95", m.latency_p95_1t}, {"rounds_p50", m.latency_rounds_1t}, {"spread", m.latency_spread_1t}}},
            {"host_latency_unstable", m.latency_unstable},
            {"seconds", m.seconds},
            {"notes", m.onnx_note.empty() ? m.notes : [&] { auto n = m.notes; n.push_back(m.onnx_note); return n; }()},
            {"metrics", m.metrics},
            {"device_estimates", m.estimates}});
  return j;
}

// A step's record: every field, so a later step (possibly on another machine) continues from it.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Measured, technique, status, error, precision, accuracy, ci_low, ci_high, samples,
                                                per_class, size_bytes, size_gzip_bytes, artifact, onnx_artifact, onnx_note, params, nonzero_params,
                                                macs, peak_memory_bytes, latency_p50_1t, latency_p95_1t, latency_p50_all, latency_p95_all,
                                                all_threads, latency_rounds_1t, latency_rounds_all, latency_spread_1t,
                                                latency_spread_all, latency_unstable, seconds, estimated_seconds, parameters, notes, metrics, estimates,
                                                reference_outputs, exports)

}  // namespace

// Every number of the request is finite and in range, no technique is named twice, and the
// output folder is one we may fill: not a file, not the root or a system folder.
void validate(const OptimizeOptions& options) {
  auto bad = [](const std::string& what, const std::string& hint) { fail(ErrorCode::kInvalidArgument, what, hint); };
  auto check_number = [&](const std::optional<double>& v, const char* flag, double max) {
    if (v && (!std::isfinite(*v) || *v < 0 || *v > max)) {
      bad(std::string(flag) + " must be a number from 0 to " + (max == HUGE_VAL ? std::string("any size") : std::to_string(static_cast<long long>(max))) + ", not " + std::to_string(*v),
          "leave it out for no limit");
    }
  };
  check_number(options.limits.max_accuracy_drop_points, "--max-accuracy-drop", 100);
  check_number(options.limits.max_accuracy_drop_percent, "--max-accuracy-drop-pct", 100);
  check_number(options.limits.max_latency_ms, "--max-latency-ms", HUGE_VAL);
  if (options.limits.max_size_bytes && *options.limits.max_size_bytes < 0) bad("--max-size-mb must not be negative", "leave it out for no limit");
  if (options.limits.max_memory_bytes && *options.limits.max_memory_bytes < 0) bad("the memory limit must not be negative", "leave it out for no limit");
  if (options.eval_limit < 0) bad("--limit must be 0 (the whole test split) or a positive number of images, not " + std::to_string(options.eval_limit), "e.g. --limit 1000");
  if (options.max_train_images < 0) bad("--max-train-images must not be negative", "e.g. --max-train-images 2000");
  if (options.jobs < 0 || options.jobs > 64) bad("--jobs must be from 0 (automatic) to 64", "e.g. --jobs 2");
  if (options.latency_runs < 1 || options.latency_runs > 100000) bad("latency runs must be from 1 to 100000", "");
  for (std::size_t i = 0; i < options.techniques.size(); ++i) {
    for (std::size_t k = 0; k < i; ++k) {
      if (options.techniques[i] == options.techniques[k]) {
        bad("--techniques names '" + options.techniques[i] + "' twice", "name each technique once; --param changes its settings");
      }
    }
  }
  if (options.out_dir.empty()) bad("--out is empty", "give the folder for the results, e.g. --out edgeopt-out");
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(fs::absolute(options.out_dir, ec), ec);
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) {
    bad("--out '" + options.out_dir + "' exists and is not a folder", "give a new or existing folder for the results");
  }
  // Never the root or a top-level folder itself, and nothing inside the system's own trees.
  static const std::vector<std::string> top = {"/", "/home", "/tmp", "/var", "/root", "/opt", "/srv", "/mnt", "/media", "/run"};
  static const std::vector<std::string> trees = {"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys", "/usr"};
  const std::string canonical = out.string();
  bool system = std::find(top.begin(), top.end(), canonical) != top.end();
  for (const std::string& tree : trees) system = system || canonical == tree || canonical.rfind(tree + "/", 0) == 0;
  if (system) bad("--out '" + options.out_dir + "' is a system folder (" + canonical + ")", "give a folder of your own for the results, e.g. --out edgeopt-out");
}

struct OptimizeRun::State {
  std::string model_path;
  OptimizeOptions options;
  std::vector<const techniques::Technique*> chosen;
  std::vector<std::unique_ptr<techniques::Technique>> configured;  // --param copies that `chosen` points into
  estimator::DeviceCatalog catalog;
  estimator::Calibration calibration;
  std::vector<std::string> devices;
  ImportedModel model;
  InputSpec spec;
  data::Dataset dataset;

  void report(const std::string& t, double f, const std::string& msg) const {
    if (options.progress) options.progress(t, f, msg);
  }
  bool cancelled() const { return options.cancel && options.cancel->load(); }
  std::string path_in_out(const std::string& name) const { return (fs::path(options.out_dir) / name).string(); }

  // The normalisation a baseline record settled on (--normalize auto is resolved there).
  Normalization normalization(const json& baseline_record) const {
    auto norm = parse_normalization(baseline_record.at("normalization").get<std::string>());
    if (!norm) throw Failure{norm.error()};
    return norm.value();
  }
  // Calibration and fine-tuning read the training split only (never the test split).
  data::ImageSet training_images() const {
    return options.max_train_images > 0 && options.max_train_images < dataset.train.count
               ? strided_subset(dataset.train, options.max_train_images)
               : dataset.train;
  }
  void add_estimates(const ir::Graph& graph, Measured& m) const {
    const auto p = estimator::precision_from_name(m.precision).value_or(estimator::Precision::kFp32);
    m.estimates = json::array();
    for (const std::string& d : devices) {
      estimator::EstimateOptions eo;
      eo.device = d;
      eo.precision = p;
      auto e = estimator::estimate_graph(graph, catalog, calibration, eo);
      if (e) m.estimates.push_back(estimator::estimate_to_json(e.value()));
      else m.estimates.push_back({{"device", d}, {"error", e.error().message}});
    }
  }
};

OptimizeRun::OptimizeRun(std::unique_ptr<State> state) : state_(std::move(state)) {}
OptimizeRun::~OptimizeRun() = default;

std::vector<std::string> OptimizeRun::techniques() const {
  std::vector<std::string> ids;
  for (const auto* t : state_->chosen) ids.emplace_back(t->id());
  return ids;
}

Result<std::unique_ptr<OptimizeRun>> OptimizeRun::open(const std::string& model_path, const OptimizeOptions& options) {
  return capture([&]() -> std::unique_ptr<OptimizeRun> {
    validate(options);
    auto st = std::make_unique<State>();
    st->model_path = model_path;
    st->options = options;
    std::string valid;
    for (const auto* r : techniques::registry()) valid += (valid.empty() ? "" : ", ") + std::string(r->id());
    if (options.techniques.empty()) {
      st->chosen = techniques::registry();
    } else {
      for (const std::string& id : options.techniques) {
        const techniques::Technique* t = techniques::find_technique(id);
        if (!t) fail(ErrorCode::kInvalidArgument, "unknown technique '" + id + "'", "available in this version: " + valid);
        st->chosen.push_back(t);
      }
    }
    // --param overrides: a configured copy of each technique they name.
    for (const auto& [id, values] : options.params) {
      const auto it = std::find_if(st->chosen.begin(), st->chosen.end(), [&](const techniques::Technique* t) { return t->id() == id; });
      if (it == st->chosen.end()) {
        fail(ErrorCode::kInvalidArgument, "--param names '" + id + "', which this run does not include",
             techniques::find_technique(id) ? "add it to --techniques" : "techniques: " + valid);
      }
      auto copy = (*it)->with_params(values);
      if (!copy) throw Failure{copy.error()};
      *it = copy.value().get();
      st->configured.push_back(std::move(copy).value());
    }
    const std::string data_dir = options.resources_dir.empty() ? estimator::find_data_dir() : options.resources_dir;
    auto catalog = estimator::load_device_catalog(data_dir + "/devices");
    if (!catalog) throw Failure{catalog.error()};
    st->catalog = std::move(catalog).value();
    auto calibration = estimator::load_calibration_with_local(data_dir + "/estimator");  // + the user's on-board measurements
    if (!calibration) throw Failure{calibration.error()};
    st->calibration = std::move(calibration).value();
    st->devices = options.devices;
    if (st->devices.empty()) {
      for (const auto& d : st->catalog.devices) st->devices.push_back(d.id);
    }
    for (const std::string& d : st->devices) {
      if (!st->catalog.find(d)) fail(ErrorCode::kInvalidArgument, "unknown device '" + d + "'", "valid devices: " + st->catalog.id_list());
    }
    if (!options.device.empty() && !st->catalog.find(options.device)) {
      fail(ErrorCode::kInvalidArgument, "unknown device '" + options.device + "'", "valid devices: " + st->catalog.id_list());
    }
    if (options.normalize != "auto") {
      if (auto norm = parse_normalization(options.normalize); !norm) throw Failure{norm.error()};
    }
    auto model = load_model(model_path);
    if (!model) throw Failure{model.error()};
    st->model = std::move(model).value();
    auto spec = input_spec(st->model.graph);
    if (!spec) throw Failure{spec.error()};
    st->spec = spec.value();
    data::LoadOptions load;
    load.data_dir = options.data_dir;
    load.allow_download = options.allow_download;
    if (st->spec.layout != ir::Layout::kNC) {
      load.image_height = st->spec.height;
      load.image_width = st->spec.width;
      load.image_channels = st->spec.channels;
    }
    auto dataset = data::load_dataset(options.dataset, load);
    if (!dataset) throw Failure{dataset.error()};
    st->dataset = std::move(dataset).value();
    auto probe = backend::Executor::create(st->model.graph);
    if (!probe) throw Failure{probe.error()};
    if (Status s = check_labels_match(*probe.value(), st->dataset); !s) throw Failure{s.error()};
    {
      std::error_code ec;
      fs::create_directories(options.out_dir, ec);
      if (ec || !fs::is_directory(options.out_dir, ec)) {
        fail(ErrorCode::kIo, "cannot create the output folder '" + options.out_dir + "': " + ec.message(),
             "give a folder you can write to with --out");
      }
    }
    return std::unique_ptr<OptimizeRun>(new OptimizeRun(std::move(st)));
  });
}

Result<json> OptimizeRun::baseline() {
  return capture([&]() -> json {
    State& st = *state_;
    std::string normalize = st.options.normalize;
    if (normalize == "auto") {
      auto probe = backend::Executor::create(st.model.graph);
      if (!probe) throw Failure{probe.error()};
      auto choice = choose_normalization(*probe.value(), st.dataset.train, st.spec);
      if (!choice) throw Failure{choice.error()};
      normalize = choice->chosen.name;
      std::string tried;
      for (const auto& [name, acc] : choice->tried) tried += (tried.empty() ? "" : ", ") + name + " " + std::to_string(100 * acc).substr(0, 5) + " %";
      st.report("fp32", 0.0, "--normalize auto chose " + normalize + " on " + std::to_string(choice->slice) + " training images (" + tried + ")");
    }
    json record{{"normalization", normalize}};
    const Normalization norm = st.normalization(record);
    Measured baseline;
    baseline.technique = "fp32";
    st.report("fp32", 0.0, "measuring the baseline");
    write_samples(st.model.graph, st.dataset, st.spec, norm, st.options);
    measure_static(baseline, st.model.graph, {}, st.dataset, st.spec, norm, st.options);
    st.report("fp32", 1.0, "accuracy measured; latency is measured with the variants");
    record["classes"] = classes_json(st.dataset, static_cast<std::int64_t>(baseline.per_class.at("support").size()));
    // What each technique will take is estimated from this: its work in image passes times the
    // baseline's measured forward time per image on one thread (the techniques' setting).
    record["pass_seconds"] = seconds_per_image_pass(st.model.graph, st.training_images(), st.spec, norm);
    record["measured"] = baseline;
    const double pass_seconds = record["pass_seconds"].get<double>();
    const std::int64_t train_count = st.training_images().count;
    for (const techniques::Technique* t : st.chosen) {
      const double e = t->estimate_work(train_count).image_passes * pass_seconds;
      st.report(std::string(t->id()), 0.0,
                e < 1 ? "queued, under a second of work (estimate)" : "queued, about " + std::to_string(static_cast<long long>(std::ceil(e))) + " s (estimate)");
    }
    return record;
  });
}

Result<json> OptimizeRun::technique(const std::string& id, const json& baseline_record) {
  return capture([&]() -> json {
    const State& st = *state_;
    const auto it = std::find_if(st.chosen.begin(), st.chosen.end(), [&](const techniques::Technique* t) { return t->id() == id; });
    if (it == st.chosen.end()) fail(ErrorCode::kInvalidArgument, "technique '" + id + "' is not part of this run");
    const techniques::Technique* t = *it;
    const Normalization norm = st.normalization(baseline_record);
    const data::ImageSet train = st.training_images();
    Measured m;
    m.technique = id;
    m.estimated_seconds = t->estimate_work(train.count).image_passes * baseline_record.value("pass_seconds", 0.0);
    for (const techniques::Param& p : t->params()) m.parameters[p.name] = p.value;
    const auto t0 = std::chrono::steady_clock::now();
    if (st.cancelled()) {
      m.status = "failed";
      m.error = "cancelled before it started";
      st.report(id, 1.0, "cancelled");
      return json{{"measured", m}};
    }
    techniques::Context ctx;
    ctx.baseline = &st.model.graph;
    ctx.train = &train;
    ctx.spec = st.spec;
    ctx.norm = norm;
    ctx.progress = [&st, &id](double f, const std::string& msg) { st.report(id, f, msg); };
    ctx.cancelled = [&st] { return st.cancelled(); };
    st.report(id, 0.0, "started");
    Result<techniques::Output> out = t->run(ctx);
    if (!out) {
      m.status = "failed";
      m.error = out.error().to_string();
    } else {
      try {
        m.precision = out->precision;
        m.notes = out->notes;
        m.metrics = out->metrics;
        st.report(id, 1.0, "measuring accuracy on the test split");
        measure_static(m, out->graph, out->encoding, st.dataset, st.spec, norm, st.options);
      } catch (const Failure& f) {
        m.status = "failed";
        m.error = f.error.to_string();
      }
    }
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.report(id, 1.0, m.status == "completed" ? "waiting for the latency measurement" : "failed: " + m.error);
    return json{{"measured", m}};
  });
}

Result<json> OptimizeRun::finish(const json& baseline_record, const std::vector<json>& technique_records) {
  return capture([&]() -> json {
    const State& st = *state_;
    const Normalization norm = st.normalization(baseline_record);
    Measured baseline = baseline_record.at("measured").get<Measured>();
    std::vector<Measured> variants;
    for (const json& r : technique_records) variants.push_back(r.at("measured").get<Measured>());
    // Every model is read back from the file it was written to, so what is timed and estimated is
    // what ships; latency last, all models together (see measure_latencies).
    std::vector<ir::Graph> graphs;
    std::vector<Measured*> timed_models;
    auto read_back = [&](Measured& m) {
      auto g = format::read_eom(st.path_in_out(m.technique + ".eom"));
      if (!g) {
        m.status = "failed";
        m.error = "its artifact cannot be read back: " + g.error().message;
        return;
      }
      graphs.push_back(std::move(g).value());
      timed_models.push_back(&m);
    };
    read_back(baseline);
    if (baseline.status != "completed") fail(ErrorCode::kIo, "the baseline artifact is missing: " + baseline.error, "run the baseline step again");
    for (Measured& m : variants) {
      if (m.status == "completed") read_back(m);
    }
    {
      std::vector<std::pair<Measured*, const ir::Graph*>> timed;
      for (std::size_t k = 0; k < timed_models.size(); ++k) timed.emplace_back(timed_models[k], &graphs[k]);
      for (const auto& [m, graph] : timed) st.report(m->technique, 1.0, "measuring host latency (all variants in turn)");
      measure_latencies(timed, st.dataset, st.spec, norm, st.options);
    }
    for (std::size_t k = 0; k < timed_models.size(); ++k) {
      Measured& m = *timed_models[k];
      st.add_estimates(graphs[k], m);
      m.artifact = st.path_in_out(m.technique + ".eom");
      if (!m.onnx_artifact.empty()) m.onnx_artifact = st.path_in_out(m.technique + ".onnx");
      if (m.technique != "fp32") st.report(m.technique, 1.0, "completed");
    }
    graphs.clear();
    json runtime_eval;
    {
      std::vector<Measured*> all{&baseline};
      for (Measured& m : variants) {
        if (m.status == "completed") all.push_back(&m);
      }
      st.report("fp32", 1.0, "scoring the exported files in LiteRT / ONNX Runtime");
      const std::string data_dir = st.options.resources_dir.empty() ? estimator::find_data_dir() : st.options.resources_dir;
      runtime_eval = measure_in_runtimes(all, st.dataset, st.spec, norm, st.options, data_dir, st.model.graph);
    }
    st.report("fp32", 1.0, "done");
    const Samples samples = sample_set(st.model.graph, st.dataset, st.spec, norm);

    json result{{"model", st.model_path},
                {"format", model_format_name(st.model.format)},
                {"dataset", {{"name", st.dataset.name}, {"split_note", st.dataset.split_note}, {"train_samples", st.dataset.train.count},
                             {"test_samples", st.dataset.test.count}}},
                {"preprocessing", norm.describe()},
                {"normalization", {{"name", norm.name}, {"scale", norm.scale}, {"mean", norm.mean}, {"std", norm.std}}},
                {"input", {{"name", st.model.graph.value(st.model.graph.inputs[0]).name}, {"shape", st.model.graph.value(st.model.graph.inputs[0]).shape},
                           {"layout", ir::layout_name(st.spec.layout)}, {"channels", st.spec.channels}, {"height", st.spec.height}, {"width", st.spec.width}}},
                {"class_names", st.dataset.class_names},
                {"classes", baseline_record.contains("classes") ? baseline_record["classes"]
                                                                : classes_json(st.dataset, static_cast<std::int64_t>(st.dataset.class_names.size()))},
                {"samples", {{"inputs", "inputs.npy"}, {"labels", samples.labels}, {"images", sample_image_names(st.dataset)},
                             {"layout", ir::layout_name(st.spec.layout)}, {"note", "test images, preprocessed as the model's input; each variant's reference_outputs are EdgeOpt's outputs for them"}}},
                {"runtime_eval", runtime_eval},
                {"baseline", to_json(baseline, baseline.accuracy)},
                {"variants", json::array()},
                {"devices", st.devices},
                {"estimates_note", "device_estimates are estimates from the calibrated model in docs/estimator.md, not measurements"},
                {"peak_memory_note", "peak_memory_bytes is computed from the graph for the host executor at batch 1 (constants as held in memory + the largest set of live activations), not read from the process's RSS"}};
    for (const Measured& m : variants) result["variants"].push_back(to_json(m, baseline.accuracy));
    {
      std::vector<std::string> unstable;
      if (baseline.latency_unstable) unstable.push_back(baseline.technique);
      for (const Measured& m : variants) {
        if (m.status == "completed" && m.latency_unstable) unstable.push_back(m.technique);
      }
      char limit[32];
      std::snprintf(limit, sizeof limit, "%.2fx", kMaxStableSpread);
      std::string note = "host latency is the best of three interleaved rounds per model; a model is flagged unstable when its slowest round's p50 is over " +
                         std::string(limit) + " its fastest's (at 1 thread or all threads)";
      if (!unstable.empty()) {
        std::string names;
        for (const std::string& n : unstable) names += (names.empty() ? "" : ", ") + n;
        note += ". Unstable here: " + names + ": the machine was busy during the measurement, so host latencies and their ratios may be off; run again on an idle machine";
      }
      result["host_latency_unstable"] = !unstable.empty();
      result["host_latency_note"] = note;
    }
    recommend::Request request;
    request.goal = st.options.goal;
    request.limits = st.options.limits;
    request.device = st.options.device;
    if (auto rec = recommend_results(result, request); rec) result["recommendation"] = rec.value();
    else result["recommendation"] = {{"error", rec.error().message}};
    return result;
  });
}

Result<json> recommend_results(const json& results, recommend::Request request) {
  return capture([&]() -> json {
    auto as_variant = [](const json& m) {
      recommend::Variant v;
      v.technique = m.at("technique").get<std::string>();
      v.accuracy = 100 * m.at("accuracy").get<double>();
      const json& ci = m.at("accuracy_ci95");
      v.accuracy_ci = 100 * (ci.at(1).get<double>() - ci.at(0).get<double>()) / 2;
      v.size_bytes = m.at("size_bytes").get<std::int64_t>();
      v.params = m.value("params", std::int64_t{0});
      v.macs = m.value("macs", std::int64_t{0});
      for (const auto& e : m.value("device_estimates", json::array())) {
        if (e.contains("error")) continue;
        recommend::DeviceEstimate d;
        d.device = e.value("device", "");
        d.latency_ms = e.value("latency_ms", 0.0);
        d.latency_ms_low = e.value("latency_ms_low", 0.0);
        d.latency_ms_high = e.value("latency_ms_high", 0.0);
        d.peak_memory_bytes = e.value("peak_memory_bytes", std::int64_t{0});
        d.fits_in_memory = e.value("fits_in_memory", true);
        d.energy_mj = e.value("energy_mj", 0.0);
        v.estimates.push_back(d);
      }
      return v;
    };
    request.variants.clear();
    request.variants.push_back(as_variant(results.at("baseline")));
    for (const json& m : results.at("variants")) {
      if (m.value("status", "") == "completed") request.variants.push_back(as_variant(m));
    }
    auto rec = recommend::recommend(request);
    if (!rec) throw Failure{rec.error()};
    return recommend::recommendation_to_json(rec.value());
  });
}

Result<json> optimize(const std::string& model_path, const OptimizeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto run = OptimizeRun::open(model_path, options);
  if (!run) return run.error();
  auto baseline = run.value()->baseline();
  if (!baseline) return baseline.error();
  // The techniques, `jobs` at a time, each on one LibTorch thread; every worker fills its own
  // slot. Latency is measured afterwards with the machine to itself.
  const std::vector<std::string> ids = run.value()->techniques();
  const int jobs = std::max(1, std::min<int>(options.jobs > 0 ? options.jobs : default_jobs(), static_cast<int>(ids.size())));
  std::vector<Result<json>> records(ids.size(), Result<json>(json()));
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    backend::set_threads(1);
    for (std::size_t i = next++; i < ids.size(); i = next++) records[i] = run.value()->technique(ids[i], baseline.value());
  };
  {
    std::vector<std::thread> workers;
    for (int w = 1; w < jobs; ++w) workers.emplace_back(work);
    work();
    for (auto& w : workers) w.join();
  }
  std::vector<json> done;
  for (auto& r : records) {
    if (!r) return r.error();
    done.push_back(std::move(r).value());
  }
  auto result = run.value()->finish(baseline.value(), done);
  if (!result) return result;
  result.value()["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string results_path = (fs::path(options.out_dir) / "results.json").string();
  if (Status st = write_file_atomic(results_path, result.value().dump(2) + "\n"); !st) return st.error();
  return result;
}

}  // namespace edgeopt::pipeline
