#include "estimator/estimator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgeopt::estimator {
namespace {

using nlohmann::json;

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

// Calibration values resolved once per estimate (string look-ups stay out of the layer loop).
struct Params {
  double eff = 0.3;
  double rel[static_cast<std::size_t>(LayerClass::kCount)] = {};
  double mem = 0.4;
  double cache_x = 3;
  double ovh_s = 1e-5;
  double fixed_ms = 0.1;
  double sigma = 0.1;
  double mem_sigma = 0.5;
  double sync_s = 0;   // per-layer cost of each extra thread (barriers, wake-ups)
  double kdepth = 0;   // operand reuse (MACs per element moved) at which a GEMM runs at half efficiency
  double overlap = 0;  // share of the shorter of compute and memory that the core cannot hide
  const std::vector<int>* wino_tiles = nullptr;  // Winograd F(m, 3) output tiles the kernels choose from
};

// Multiplications per output of F(m x m, 3 x 3) against direct 3 x 3: 9 m^2 / (m + 2)^2.
double winograd_reduction(int m) { return 9.0 * m * m / ((m + 2.0) * (m + 2.0)); }

// A Winograd kernel computes whole m x m output tiles: a side-s map is padded to ceil(s / m) m,
// so a 7 x 7 map costs (12 / 7)^2 = 2.9x its useful work in F(6, 3) tiles. `wino/RUNTIME` is the
// speed-up at the largest tile on a large map; this is the share of it a side-s map keeps with the
// best tile the runtime's kernels offer (modern ncnn picks F(2,3)/F(4,3)/F(6,3) by size; its
// pre-2021 build always used F(6,3)).
double winograd_tile_share(const std::vector<int>& tiles, double side) {
  if (tiles.empty() || side <= 0) return 1.0;
  const int largest = *std::max_element(tiles.begin(), tiles.end());
  double best = 0;
  for (int m : tiles) {
    const double padded = std::ceil(side / m) * m;
    const double waste = (padded * padded) / (side * side);
    best = std::max(best, winograd_reduction(m) / winograd_reduction(largest) / waste);
  }
  return best;
}

Params resolve(const Calibration& c, const Device& dev, const std::string& runtime, Unit unit, Precision compute,
               bool legacy, std::set<std::string>& used) {
  const std::string& device = dev.id;
  auto get = [&](const std::string& key, const std::string& family) {
    used.insert(key);
    return c.get(key, family, unit);
  };
  const std::string u = unit_name(unit);
  Params p;
  p.eff = get("eff/" + runtime + "/" + u + "/" + precision_name(compute), "eff") *
          get("dev/" + device + "/" + runtime, "dev");
  // The catalogue's INT8 MAC rate of a core without dot-product instructions is an assumption
  // (widening multiply-accumulates, [DU]); one factor per core, shared by its runtimes and boards.
  if (unit == Unit::kCpu && compute == Precision::kInt8) p.eff *= get("i8core/" + dev.microarchitecture, "i8core");
  auto& rel = p.rel;
  rel[static_cast<int>(LayerClass::kConv)] = 1;
  rel[static_cast<int>(LayerClass::kConv3x3)] = get("wino/" + runtime, "wino");
  // Winograd's transforms are loads and stores: a core with one load/store pipe (the in-order
  // A53) gains less from it than the runtime's average core.
  if (unit == Unit::kCpu)
    rel[static_cast<int>(LayerClass::kConv3x3)] *= get("winocore/" + dev.microarchitecture, "winocore");
  if (const auto w = c.winograd_tiles.find(runtime); w != c.winograd_tiles.end()) {
    const auto build = w->second.find(legacy && w->second.count("legacy") ? "legacy" : "current");
    if (build != w->second.end()) p.wino_tiles = &build->second;
  }
  rel[static_cast<int>(LayerClass::kPointwise)] = get("pw/" + runtime, "pw");
  rel[static_cast<int>(LayerClass::kDepthwise)] = get("dw/" + runtime, "dw");
  rel[static_cast<int>(LayerClass::kGroupedConv)] = get("gconv/" + runtime, "gconv");
  rel[static_cast<int>(LayerClass::kGemm)] = get("fc/" + runtime, "fc");
  p.mem = get("mem/" + u, "mem");
  p.cache_x = get("cache_x/" + u, "cache_x");
  p.ovh_s = get("ovh/" + runtime + "/" + u, "ovh") * 1e-6;
  // A GPU runtime's per-layer cost is mostly the host enqueuing each kernel (TensorRT's and
  // Vulkan's command submission run on one CPU core): it follows the host core, not the GPU.
  if (unit == Unit::kGpu) p.ovh_s *= get("enqueue/" + dev.microarchitecture, "enqueue");
  p.fixed_ms = get("fixed/" + runtime + "/" + u, "fixed");
  // On a CPU the reuse knee is the core's (in-order cores cannot hide operand loads behind FMAs);
  // on a GPU or TPU it is the runtime's kernels'.
  p.kdepth = unit == Unit::kCpu ? get("kdepth/" + dev.microarchitecture, "kdepth") : get("kdepth/" + runtime, "kdepth");
  if (unit == Unit::kCpu) {
    p.sigma = get("sigma/" + device, "sigma") * get("tsc/" + runtime, "tsc");
    // Cores contend for the shared cache and DRAM through their operands: narrower operands
    // (INT8 moves a quarter of FP32's bytes per MAC) contend less.
    if (compute != Precision::kFp32) p.sigma *= get(std::string("tscp/") + precision_name(compute), "tscp");
    p.overlap = get("overlap/" + dev.microarchitecture, "overlap");
    p.mem_sigma = get("memsig/" + device, "memsig");
    p.sync_s = get("sync/" + runtime + "/" + u, "sync") * 1e-6;
  }
  return p;
}

struct UnitSpeed {
  double peak_macs_per_s = 0;
  double dram_bytes_per_s = 0;
  double cache_bytes = 0;
};

struct LayerResult {
  double seconds = 0;
  bool memory_bound = false;
};

LayerResult layer_time(const Layer& l, const Params& p, const UnitSpeed& speed, double act_bytes, double weight_bytes,
                       bool weights_on_chip) {
  if (l.cls == LayerClass::kFused || l.cls == LayerClass::kView) return {};
  double rel = p.rel[static_cast<int>(l.cls)];
  // A grouped conv runs as `groups` dense convs (ncnn splits it, XNNPACK and cuDNN run grouped
  // GEMMs): the dense kernel of its shape (1x1 or k x k) times gconv/RUNTIME, with each group's
  // Cout / groups output channels in its operand reuse below.
  const bool grouped = l.cls == LayerClass::kGroupedConv && l.groups > 1;
  if (grouped && l.kernel_elems == 1) rel *= p.rel[static_cast<int>(LayerClass::kPointwise)];
  if (l.cls != LayerClass::kDepthwise && l.macs > 0 && l.output_elems > 0 && l.params > 0) {
    // Operand reuse: a GEMM-like layer with reduction depth K and N output channels does
    // I = K N / (K + N) MACs per activation element it reads or writes. Micro-kernels need both
    // dimensions deep to keep the FMA units busy (MobileNet v2's 16-channel expansions and
    // 24-channel projections are not), so efficiency falls as I / (I + kdepth).
    const double k = static_cast<double>(l.macs) / static_cast<double>(l.output_elems);
    const double n = static_cast<double>(l.params) / k;
    const double n_group = grouped ? n / static_cast<double>(l.groups) : n;
    const double reuse = k * n_group / (k + n_group);
    rel *= reuse / (reuse + p.kdepth);
    if (l.cls == LayerClass::kConv3x3 && p.wino_tiles) rel *= winograd_tile_share(*p.wino_tiles, std::sqrt(static_cast<double>(l.output_elems) / n));
  }
  const double compute =
      l.macs > 0 && rel > 0 ? static_cast<double>(l.macs) / (speed.peak_macs_per_s * p.eff * rel) : 0.0;
  const double act = static_cast<double>(l.input_elems + l.output_elems) * act_bytes;
  const double weights = weights_on_chip ? 0.0 : static_cast<double>(l.params) * weight_bytes;
  const double bytes = act + weights;
  double bandwidth = speed.dram_bytes_per_s * p.mem;
  if (bytes <= speed.cache_bytes) bandwidth *= p.cache_x;
  const double memory = bandwidth > 0 ? bytes / bandwidth : 0.0;
  // An in-order core stalls on misses its prefetchers miss: part of the shorter term is not hidden.
  return {std::max(compute, memory) + p.overlap * std::min(compute, memory) + p.ovh_s, memory > compute};
}

Estimate run(const LayerTable& model, const DeviceCatalog& catalog, const Calibration& cal, const EstimateOptions& o) {
  const Device* device = catalog.find(o.device);
  if (!device) {
    fail(ErrorCode::kNotFound, "unknown device '" + o.device + "'", "valid devices: " + catalog.id_list());
  }
  const RuntimeSupport* runtime = nullptr;
  std::string skipped;  // runtimes passed over when choosing a default
  if (o.runtime.empty()) {
    for (const auto& r : device->runtimes) {
      if (!r.find(o.precision))
        skipped += (skipped.empty() ? "" : ", ") + r.id;
      else if (!runtime)
        runtime = &r;
    }
    if (!runtime) {
      fail(ErrorCode::kInvalidArgument,
           std::string("no runtime on ") + device->id + " accepts " + precision_name(o.precision),
           "valid runtimes (precisions): " + device->runtime_list());
    }
  } else {
    runtime = device->find_runtime(o.runtime);
    if (!runtime) {
      fail(ErrorCode::kInvalidArgument, "runtime '" + o.runtime + "' is not available on " + device->id,
           "valid runtimes (precisions): " + device->runtime_list());
    }
  }
  const RuntimePrecision* rp = runtime->find(o.precision);
  if (!rp) {
    fail(ErrorCode::kInvalidArgument,
         std::string("runtime '") + runtime->id + "' on " + device->id + " does not run " + precision_name(o.precision),
         "valid precisions for " + runtime->id + ": " + runtime->precision_list());
  }
  if (o.threads < 0 || o.threads > 4096)
    fail(ErrorCode::kInvalidArgument, "--threads must be between 1 and the core count");
  if (o.cpu_mhz < 0 || o.cpu_mhz > 10000)
    fail(ErrorCode::kInvalidArgument, "--cpu-mhz must be a clock in MHz, e.g. 1800");

  Estimate e;
  e.device = device->id;
  e.runtime = runtime->id;
  if (o.runtime.empty()) {
    e.notes.push_back("no runtime given: " + runtime->id + ", the first of " + device->id + "'s runtimes that runs " +
                      precision_name(o.precision) + (skipped.empty() ? std::string() : "; " + skipped + " cannot"));
  }
  e.precision = o.precision;
  e.compute_precision = rp->compute;
  e.cpu_mhz = o.cpu_mhz > 0 ? o.cpu_mhz : device->cpu_mhz;
  e.threads = o.threads > 0 ? std::min(o.threads, device->cpu_cores) : device->cpu_cores;
  if (o.threads > device->cpu_cores) {
    e.notes.push_back("asked for " + std::to_string(o.threads) + " threads; " + device->id + " has " +
                      std::to_string(device->cpu_cores) + " cores, so " + std::to_string(e.threads) + " are used");
  }
  if (o.cpu_mhz > 0 && runtime->unit == Unit::kCpu) {
    e.notes.push_back("CPU clock " + fixed(e.cpu_mhz, 0) + " MHz instead of the catalogue's " +
                      fixed(device->cpu_mhz, 0) + " MHz");
  }
  if (rp->compute != rp->requested) {
    e.notes.push_back(std::string(runtime->id) + " runs " + precision_name(rp->requested) + " models in " +
                      precision_name(rp->compute) + " arithmetic on " + device->id +
                      (rp->note.empty() ? std::string() : ": " + rp->note));
  } else if (!rp->note.empty()) {
    e.notes.push_back(rp->note);
  }
  if (o.precision == Precision::kInt4) {
    e.notes.push_back("no INT4 kernels in " + runtime->id + ": no speed-up over " + precision_name(rp->compute) +
                      "; only the stored file shrinks");
  }

  std::int64_t params = 0, zeros = 0;
  for (const auto& l : model.layers) {
    if (l.cls == LayerClass::kConv || l.cls == LayerClass::kConv3x3 || l.cls == LayerClass::kPointwise ||
        l.cls == LayerClass::kDepthwise || l.cls == LayerClass::kGroupedConv || l.cls == LayerClass::kGemm) {
      params += l.params;
      zeros += l.zero_weights;
    }
  }
  if (params > 0 && zeros * 10 >= params) {
    e.notes.push_back(fixed(100.0 * static_cast<double>(zeros) / static_cast<double>(params), 0) +
                      " % of the weights are zero: " + runtime->id +
                      " runs dense kernels that do not skip them, so unstructured sparsity gives no speed-up here "
                      "(it shrinks a compressed file only)");
  }

  // Which layers run where: an accelerator takes everything up to the first op it cannot run.
  std::size_t cpu_from = model.layers.size();
  const auto unsupported = cal.unsupported_ops.find(runtime->id);
  if (runtime->unit == Unit::kTpu || (unsupported != cal.unsupported_ops.end())) {
    for (std::size_t i = 0; i < model.layers.size(); ++i) {
      if (unsupported != cal.unsupported_ops.end() && unsupported->second.count(model.layers[i].op)) {
        if (runtime->unit != Unit::kTpu) {
          fail(ErrorCode::kUnsupportedOp,
               "layer '" + model.layers[i].name + "' (" + model.layers[i].op + ") cannot run on " + runtime->id,
               "choose another runtime: " + device->runtime_list());
        }
        cpu_from = i;
        e.fallback_op = model.layers[i].op + " (layer '" + model.layers[i].name + "')";
        break;
      }
    }
  }

  const double weight_bytes = precision_bytes(rp->compute == Precision::kInt4 ? Precision::kInt8 : rp->compute);
  // Runtimes without INT4 kernels unpack INT4 weights at load. ncnn's INT8 layers read and write
  // float blobs, as wide as its float path stores them on this device (FP16 on the Cortex-A76).
  const auto fa = cal.float_activations.find(runtime->id);
  const RuntimePrecision* float_path = runtime->find(Precision::kFp32);
  const double act_bytes = fa != cal.float_activations.end() && fa->second.count(precision_name(rp->compute))
                               ? precision_bytes(float_path ? float_path->compute : Precision::kFp32)
                               : weight_bytes;
  std::set<std::string> used;
  Params p = resolve(cal, *device, runtime->id, runtime->unit, rp->compute, o.legacy_timing, used);

  UnitSpeed speed;
  speed.dram_bytes_per_s = device->dram_gbs * 1e9;
  switch (runtime->unit) {
    case Unit::kCpu: {
      const double s = e.threads / (1 + p.sigma * (e.threads - 1));
      speed.peak_macs_per_s = device->cpu_peak_gmacs(rp->compute, 1, e.cpu_mhz) * 1e9 * s;
      // One core cannot saturate DRAM: bandwidth grows with threads and saturates (mem_sigma).
      const double all = device->cpu_cores / (1 + p.mem_sigma * (device->cpu_cores - 1));
      speed.dram_bytes_per_s *= e.threads / (1 + p.mem_sigma * (e.threads - 1)) / all;
      p.ovh_s += p.sync_s * (e.threads - 1);
      speed.cache_bytes = device->cpu_cache_kb * 1024;
      break;
    }
    case Unit::kGpu:
      speed.peak_macs_per_s = device->gpu_gmacs[static_cast<std::size_t>(rp->compute)] * 1e9;
      speed.cache_bytes = device->gpu_cache_kb * 1024;
      break;
    case Unit::kTpu:
      speed.peak_macs_per_s = device->tpu_gmacs_int8 * 1e9;
      speed.cache_bytes = device->tpu_sram_mb * 1024 * 1024;
      break;
  }
  if (speed.peak_macs_per_s <= 0) fail(ErrorCode::kCorruptFile, device->id + ": no peak compute for " + runtime->id);

  // Layers the runtime's graph optimiser removes: TensorRT fuses a residual Add into the
  // convolution's epilogue and writes Concat inputs in place (model.json "fuses").
  const auto fuses = cal.fused_ops.find(runtime->id);
  // "Add+Relu": an activation right after a residual Add runs in the Add's kernel (TensorRT's
  // conv+add+relu epilogue, TFLite's ADD with a fused activation function).
  const Layer* previous = nullptr;
  auto fused_away = [&](const Layer& l) {
    if (fuses == cal.fused_ops.end()) return false;
    if (previous && l.cls == LayerClass::kElementwise && previous->op == "Add" &&
        previous->output_elems == l.input_elems && fuses->second.count("Add+" + l.op))
      return true;
    if (!fuses->second.count(l.op)) return false;
    // Only a two-activation Add (a residual join), not a bias or a broadcast scale.
    return l.op != "Add" || l.input_elems == 2 * l.output_elems;
  };
  double total_s = 0, memory_s = 0;
  std::vector<LayerTime> times;
  // Edge TPU: parameters are cached on chip in graph order until the SRAM is full; the rest
  // stream from host memory on every inference.
  double sram_left = device->tpu_sram_mb * 1024 * 1024;
  double streamed_bytes = 0;
  for (std::size_t i = 0; i < cpu_from; ++i) {
    const Layer& l = model.layers[i];
    LayerResult r;
    const bool away = fused_away(l);
    if (l.cls != LayerClass::kView) previous = &l;
    if (away) continue;
    if (runtime->unit == Unit::kTpu) {
      const double w = static_cast<double>(l.params) * weight_bytes;
      const bool on_chip = w <= sram_left;
      if (on_chip)
        sram_left -= w;
      else
        streamed_bytes += w;
      UnitSpeed tpu = speed;
      tpu.cache_bytes = 1e18;  // activations stay on chip
      r = layer_time(l, p, tpu, act_bytes, weight_bytes, true);
      if (!on_chip) {
        used.insert("stream_gbs/" + device->id);
        const double link = cal.get("stream_gbs/" + device->id, "stream_gbs", Unit::kTpu) * 1e9;
        const double stream_s = w / link;
        r.memory_bound = stream_s > r.seconds;
        r.seconds += stream_s;
      }
    } else {
      r = layer_time(l, p, speed, act_bytes, weight_bytes, false);
    }
    total_s += r.seconds;
    if (r.memory_bound) memory_s += r.seconds;
    if (!o.latency_only) times.push_back({l.name, l.op, unit_name(runtime->unit), r.seconds * 1e3, r.memory_bound});
  }
  e.layers_on_accelerator = runtime->unit == Unit::kCpu ? 0 : static_cast<int>(cpu_from);
  if (streamed_bytes > 0) {
    e.notes.push_back(fixed(streamed_bytes / 1048576.0, 1) + " MB of parameters do not fit the " +
                      fixed(device->tpu_sram_mb, 0) +
                      " MB on-chip memory and stream from host memory on every inference");
  }

  if (cpu_from < model.layers.size()) {
    // The rest runs on the CPU with TFLite's INT8 kernels on all cores.
    const RuntimeSupport* cpu_rt = device->find_runtime("tflite");
    const Precision cpu_prec = cpu_rt && cpu_rt->find(Precision::kInt8) ? Precision::kInt8 : Precision::kFp32;
    const std::string cpu_name = cpu_rt ? cpu_rt->id : "tflite";
    Params cp = resolve(cal, *device, cpu_name, Unit::kCpu, cpu_prec, o.legacy_timing, used);
    cp.ovh_s += cp.sync_s * (device->cpu_cores - 1);
    UnitSpeed cpu;
    const double s = device->cpu_cores / (1 + cp.sigma * (device->cpu_cores - 1));
    cpu.peak_macs_per_s = device->cpu_peak_gmacs(cpu_prec, 1, e.cpu_mhz) * 1e9 * s;
    cpu.dram_bytes_per_s = device->dram_gbs * 1e9;
    cpu.cache_bytes = device->cpu_cache_kb * 1024;
    const double cb = precision_bytes(cpu_prec);
    for (std::size_t i = cpu_from; i < model.layers.size(); ++i) {
      const LayerResult r = layer_time(model.layers[i], cp, cpu, cb, cb, false);
      total_s += r.seconds;
      if (r.memory_bound) memory_s += r.seconds;
      if (!o.latency_only)
        times.push_back({model.layers[i].name, model.layers[i].op, "cpu", r.seconds * 1e3, r.memory_bound});
    }
    total_s += cp.fixed_ms * 1e-3;
    e.layers_on_cpu = static_cast<int>(model.layers.size() - cpu_from);
    e.notes.push_back(runtime->id + " cannot run " + e.fallback_op + ": it and the " +
                      std::to_string(e.layers_on_cpu - 1) + " layers after it run on the CPU (" + cpu_name + " " +
                      precision_name(cpu_prec) + ")");
  } else if (runtime->unit == Unit::kCpu) {
    e.layers_on_cpu = static_cast<int>(model.layers.size());
  }

  double ms = total_s * 1e3 + p.fixed_ms;
  if (o.include_postprocess) {
    used.insert("post/" + device->id);
    ms += cal.get("post/" + device->id, "post", Unit::kCpu);
  }
  if (o.end_to_end) {
    // A demo's pre/post-processing (Python, OpenCV, NMS) runs on one CPU core: one figure per
    // runtime's demo code at 1 GHz, scaled by the device's clock, not one per device.
    // Part of it scales with the network's input: resizing and normalising the frame to the input
    // size and decoding the outputs (a YOLO's candidate boxes grow with its grid) are per-pixel
    // numpy/OpenCV work; the rest (capture, drawing, the Python loop) is per frame.
    used.insert("e2e/" + runtime->id);
    used.insert("e2epx/" + runtime->id);
    const double pixels = model.layers.empty() ? 0.0 : static_cast<double>(model.layers.front().input_elems) / 3.0;
    ms += (cal.get("e2e/" + runtime->id, "e2e", Unit::kCpu) +
           cal.get("e2epx/" + runtime->id, "e2epx", Unit::kCpu) * pixels / (416.0 * 416.0)) *
          1000.0 / std::max(1.0, e.cpu_mhz);
  }
  if (o.legacy_timing) {
    used.insert("legacy/" + runtime->id);
    ms *= cal.get("legacy/" + runtime->id, "legacy", Unit::kCpu);
  }
  // The user's own measurements on this device and runtime (local_calibration.h), on top.
  if (const auto dev = cal.local.find(device->id); dev != cal.local.end()) {
    if (const auto rt = dev->second.find(runtime->id); rt != dev->second.end() && rt->second.measurements > 0) {
      e.local_factor = rt->second.factor;
      e.local_measurements = rt->second.measurements;
      ms *= e.local_factor;
      if (!o.latency_only) {
        e.notes.push_back("local calibration: " + std::to_string(e.local_measurements) + " on-board measurement" + (e.local_measurements == 1 ? "" : "s") +
                          " with " + runtime->id + " scale the shipped estimate by " + fixed(e.local_factor, 3));
      }
    }
  }
  e.latency_ms = ms;
  if (o.latency_only) {
    e.parameters_used = std::move(used);
    return e;
  }
  e.memory_bound_share = total_s > 0 ? memory_s / total_s : 0;
  e.bound = e.memory_bound_share > 0.5 ? "memory" : "compute";

  Calibration::Interval interval = cal.default_interval;
  const auto it = cal.intervals.find(device->id);
  if (it != cal.intervals.end() && it->second.rows > 0) {
    interval = it->second;
  } else {
    interval.low /= cal.uncalibrated_widen;
    interval.high *= cal.uncalibrated_widen;
    e.notes.push_back(device->id +
                      " has no published measurements in the calibration set: the interval is the "
                      "all-device one, widened " +
                      fixed(cal.uncalibrated_widen, 1) + "x");
  }
  e.latency_ms_low = ms * interval.low;
  e.latency_ms_high = ms * interval.high;

  std::sort(times.begin(), times.end(), [](const LayerTime& a, const LayerTime& b) { return a.ms > b.ms; });
  for (std::size_t i = 0; i < times.size() && i < 3; ++i) e.dominant_layers.push_back(times[i]);

  // Memory: weights + the peak of live activations + the runtime's arena, against usable RAM.
  const auto kind_flash = cal.weights_in_flash.count(device->kind) > 0;
  e.weight_bytes = static_cast<std::int64_t>(static_cast<double>(model.total_params()) * weight_bytes);
  // Host RAM holds the activations. An accelerator keeps the intermediate ones in its own memory
  // (the Edge TPU's on-chip SRAM), so only the graph's input and output tensors live in host RAM,
  // unless part of the graph falls back to the CPU.
  double live_elems = static_cast<double>(model.peak_live_elems);
  if (runtime->unit == Unit::kTpu && cpu_from == model.layers.size() && !model.layers.empty()) {
    live_elems = std::min(live_elems, static_cast<double>(model.layers.front().input_elems) +
                                          static_cast<double>(model.layers.back().output_elems));
  }
  e.activation_bytes = static_cast<std::int64_t>(live_elems * act_bytes);
  const auto arena = cal.arena_mb.find(runtime->id);
  e.arena_bytes = static_cast<std::int64_t>((arena != cal.arena_mb.end() ? arena->second : 8.0) * 1048576.0);
  e.peak_memory_bytes = (kind_flash ? 0 : e.weight_bytes) + e.activation_bytes + e.arena_bytes;
  const auto reserved = cal.os_reserved_mb.find(device->kind);
  const double usable_mb = device->ram_mb - (reserved != cal.os_reserved_mb.end() ? reserved->second : 0.0);
  e.available_memory_bytes = static_cast<std::int64_t>(std::max(0.0, usable_mb) * 1048576.0);
  e.fits_in_memory = e.peak_memory_bytes <= e.available_memory_bytes;
  if (kind_flash && device->flash_mb > 0 && static_cast<double>(e.weight_bytes) > device->flash_mb * 1048576.0) {
    e.fits_in_memory = false;
    e.notes.push_back("weights need " + fixed(static_cast<double>(e.weight_bytes) / 1048576.0, 1) + " MB but " +
                      device->id + " has " + fixed(device->flash_mb, 0) + " MB of flash");
  }
  if (e.peak_memory_bytes > e.available_memory_bytes) {
    e.notes.push_back("needs " + fixed(static_cast<double>(e.peak_memory_bytes) / 1048576.0, 1) + " MB but " +
                      device->id + " leaves about " + fixed(usable_mb, 0) + " MB for the model");
  }
  if (kind_flash) e.notes.push_back("weights stay in flash; RAM holds only activations and the arena");

  // Energy: the active unit's power over the latency (W x ms = mJ).
  double watts = device->load_w;
  if (runtime->unit == Unit::kCpu) {
    watts = device->idle_w + (device->load_w - device->idle_w) * e.threads / device->cpu_cores;
  } else if (runtime->unit == Unit::kTpu) {
    watts = device->idle_w + device->tpu_power_w;
  }
  e.energy_mj = watts * ms;
  if (!e.dominant_layers.empty() && total_s > 0) {
    const auto& top = e.dominant_layers.front();
    e.notes.push_back("slowest layer: " + top.name + " (" + top.op + ", " + fixed(100 * top.ms / (total_s * 1e3), 0) +
                      " % of layer time, " + (top.memory_bound ? "memory" : "compute") + "-bound)");
  }
  e.parameters_used = std::move(used);
  return e;
}

Calibration::Prior parse_prior(const json& j, const std::string& key) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_number() || !j[1].is_number() || j[0].get<double>() <= 0) {
    fail(ErrorCode::kCorruptFile, "model.json: prior '" + key + "' must be [positive value, log sd]");
  }
  return {j[0].get<double>(), j[1].get<double>()};
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    fail(ErrorCode::kNotFound, "cannot open " + path, "set EDGEOPT_RESOURCE_DIR to the repository's data/ folder");
  json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) fail(ErrorCode::kCorruptFile, path + ": not a JSON object");
  return doc;
}

Calibration load(const std::string& dir) {
  Calibration c;
  const json model = read_json(dir + "/model.json");
  for (const auto& [key, value] : model.at("priors").items()) c.priors[key] = parse_prior(value, key);
  for (const auto& [key, value] : model.at("arena_mb").items()) c.arena_mb[key] = value.get<double>();
  for (const auto& [key, value] : model.at("os_reserved_mb").items()) c.os_reserved_mb[key] = value.get<double>();
  for (const auto& k : model.at("weights_in_flash")) c.weights_in_flash.insert(k.get<std::string>());
  if (model.contains("fuses")) {
    for (const auto& [key, value] : model.at("fuses").items()) {
      for (const auto& op : value) c.fused_ops[key].insert(op.get<std::string>());
    }
  }
  if (model.contains("winograd_tiles")) {
    for (const auto& [runtime, builds] : model.at("winograd_tiles").items()) {
      for (const auto& [build, tiles] : builds.items()) {
        for (const auto& m : tiles) {
          if (!m.is_number_integer() || m.get<int>() < 1)
            fail(ErrorCode::kCorruptFile, "model.json: winograd_tiles/" + runtime + "/" + build + " must hold positive integers");
          c.winograd_tiles[runtime][build].push_back(m.get<int>());
        }
      }
    }
  }
  if (model.contains("float_activations")) {
    for (const auto& [runtime, precisions] : model.at("float_activations").items()) {
      for (const auto& p : precisions) {
        if (!p.is_string() || !precision_from_name(p.get<std::string>()))
          fail(ErrorCode::kCorruptFile, "model.json: float_activations/" + runtime + " must hold precision names");
        c.float_activations[runtime].insert(p.get<std::string>());
      }
    }
  }
  for (const auto& [key, value] : model.at("unsupported_ops").items()) {
    for (const auto& op : value) c.unsupported_ops[key].insert(op.get<std::string>());
  }
  c.uncalibrated_widen = model.value("uncalibrated_interval_widen", 1.5);
  c.prior_weight = model.value("prior_weight", 1.0);
  if (model.contains("default_interval")) {
    c.default_interval.low = model["default_interval"].value("low", 0.6);
    c.default_interval.high = model["default_interval"].value("high", 1.6);
  }
  const std::string fitted = dir + "/calibration.json";
  std::error_code ec;
  if (std::filesystem::exists(fitted, ec)) {
    const json cal = read_json(fitted);
    for (const auto& [key, value] : cal.at("params").items()) {
      if (!value.is_number() || value.get<double>() <= 0)
        fail(ErrorCode::kCorruptFile, fitted + ": parameter '" + key + "' must be positive");
      c.params[key] = value.get<double>();
    }
    for (const auto& [key, value] : cal.at("intervals").items()) {
      const Calibration::Interval interval{value.at("low").get<double>(), value.at("high").get<double>(),
                                           value.at("rows").get<int>()};
      if (interval.low <= 0 || interval.low > 1 || interval.high < 1)
        fail(ErrorCode::kCorruptFile, fitted + ": interval '" + key + "' must bracket 1");
      if (key == "*")
        c.default_interval = interval;  // all devices: the base for uncalibrated ones
      else
        c.intervals[key] = interval;
    }
    if (cal.contains("validation")) c.validation = cal["validation"];
  }
  return c;
}

}  // namespace

const Calibration::Prior& Calibration::prior(const std::string& key, const std::string& family, Unit unit) const {
  if (auto it = priors.find(key); it != priors.end()) return it->second;
  if (auto it = priors.find(family + "@" + unit_name(unit)); it != priors.end()) return it->second;
  if (auto it = priors.find(family); it != priors.end()) return it->second;
  fail(ErrorCode::kCorruptFile, "data/estimator/model.json has no prior for '" + key + "'",
       "add a prior for the family '" + family + "'");
}

double Calibration::get(const std::string& key, const std::string& family, Unit unit) const {
  if (auto it = params.find(key); it != params.end()) return it->second;
  return prior(key, family, unit).value;
}

Result<Calibration> load_calibration(const std::string& estimator_dir) {
  return capture([&] {
    try {
      return load(estimator_dir);
    } catch (const json::exception& e) {
      fail(ErrorCode::kCorruptFile, estimator_dir + ": malformed estimator data (" + e.what() + ")");
    }
  });
}

json calibration_to_json(const Calibration& c) {
  json intervals = json::object();
  for (const auto& [k, v] : c.intervals) intervals[k] = {{"low", v.low}, {"high", v.high}, {"rows", v.rows}};
  intervals["*"] = {
      {"low", c.default_interval.low}, {"high", c.default_interval.high}, {"rows", c.default_interval.rows}};
  return {{"format", "edgeopt-calibration-1"},
          {"params", c.params},
          {"intervals", intervals},
          {"validation", c.validation}};
}

Result<Estimate> estimate(const LayerTable& model, const DeviceCatalog& catalog, const Calibration& calibration,
                          const EstimateOptions& options) {
  return capture([&] { return run(model, catalog, calibration, options); });
}

Result<Estimate> estimate_graph(const ir::Graph& graph, const DeviceCatalog& catalog, const Calibration& calibration,
                                const EstimateOptions& options) {
  auto table = layers_from_graph(graph);
  if (!table) return table.error();
  return estimate(table.value(), catalog, calibration, options);
}

GraphPrecision precision_of_graph(const ir::Graph& graph) {
  int quantized_activations = 0;
  int quantized_weights = 0;
  for (const ir::Value& v : graph.values) {
    if (!v.quant) continue;
    if (v.is_constant) ++quantized_weights;
    else ++quantized_activations;
  }
  if (quantized_activations > 0) {
    return {Precision::kInt8, std::to_string(quantized_activations) + " activation" + (quantized_activations == 1 ? " has" : "s have") + " int8 ranges"};
  }
  if (quantized_weights > 0) {
    return {Precision::kFp32, std::to_string(quantized_weights) + " weight tensor" + (quantized_weights == 1 ? " is" : "s are") +
                                  " stored quantized but no activation is: weight-only, computed in float"};
  }
  return {Precision::kFp32, "no quantized tensor"};
}

json estimate_to_json(const Estimate& e) {
  json dominant = json::array();
  for (const auto& l : e.dominant_layers) {
    dominant.push_back({{"name", l.name},
                        {"op", l.op},
                        {"unit", l.unit},
                        {"ms", l.ms},
                        {"bound", l.memory_bound ? "memory" : "compute"}});
  }
  json out = {{"device", e.device},
              {"runtime", e.runtime},
              {"precision", precision_name(e.precision)},
              {"compute_precision", precision_name(e.compute_precision)},
              {"threads", e.threads},
              {"cpu_mhz", e.cpu_mhz},
              {"latency_ms", e.latency_ms},
              {"latency_ms_low", e.latency_ms_low},
              {"latency_ms_high", e.latency_ms_high},
              {"peak_memory_bytes", e.peak_memory_bytes},
              {"memory",
               {{"weights_bytes", e.weight_bytes},
                {"activations_bytes", e.activation_bytes},
                {"arena_bytes", e.arena_bytes},
                {"available_bytes", e.available_memory_bytes}}},
              {"fits_in_memory", e.fits_in_memory},
              {"energy_mj", e.energy_mj},
              {"bound", e.bound},
              {"memory_bound_share", e.memory_bound_share},
              {"layers_on_accelerator", e.layers_on_accelerator},
              {"layers_on_cpu", e.layers_on_cpu},
              {"dominant_layers", dominant},
              {"calibration", e.local_measurements > 0 ? "local (" + std::to_string(e.local_measurements) + (e.local_measurements == 1 ? " measurement)" : " measurements)") : std::string("shipped")},
              {"notes", e.notes}};
  if (e.local_measurements > 0) out["local_calibration_factor"] = e.local_factor;
  if (!e.fallback_op.empty()) out["fallback_op"] = e.fallback_op;
  return out;
}

}  // namespace edgeopt::estimator
