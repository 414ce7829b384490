#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "estimator/calibrate.h"
#include "estimator/devices.h"
#include "estimator/estimator.h"
#include "estimator/layers.h"

namespace edgeopt::estimator {
namespace {

using nlohmann::json;
const std::string kRoot = EDGEOPT_SOURCE_DIR;

struct Fixture {
  DeviceCatalog catalog;
  Calibration calibration;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    auto catalog = load_device_catalog(kRoot + "/data/devices");
    auto calibration = load_calibration(kRoot + "/data/estimator");
    EXPECT_TRUE(catalog.ok()) << (catalog.ok() ? "" : catalog.error().to_string());
    EXPECT_TRUE(calibration.ok()) << (calibration.ok() ? "" : calibration.error().to_string());
    return Fixture{catalog.ok() ? catalog.value() : DeviceCatalog{},
                   calibration.ok() ? calibration.value() : Calibration{}};
  }();
  return f;
}

LayerTable table(const std::string& name) {
  auto t = load_layer_table(kRoot + "/tests/data/estimator/models/" + name + ".json");
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().to_string());
  return t.ok() ? t.value() : LayerTable{};
}

Estimate run(const LayerTable& model, const std::string& device, const std::string& runtime, Precision precision,
             int threads = 0, double mhz = 0) {
  EstimateOptions o;
  o.device = device;
  o.runtime = runtime;
  o.precision = precision;
  o.threads = threads;
  o.cpu_mhz = mhz;
  auto e = estimate(model, fixture().catalog, fixture().calibration, o);
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().to_string());
  return e.ok() ? e.value() : Estimate{};
}

Error run_error(const LayerTable& model, const std::string& device, const std::string& runtime, Precision precision) {
  EstimateOptions o;
  o.device = device;
  o.runtime = runtime;
  o.precision = precision;
  auto e = estimate(model, fixture().catalog, fixture().calibration, o);
  EXPECT_FALSE(e.ok());
  return e.ok() ? Error{} : e.error();
}

bool has_note(const Estimate& e, const std::string& text) {
  for (const auto& n : e.notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

// A conv -> (op) -> conv -> gemm graph for op-support and sparsity checks.
ir::Graph small_graph(ir::OpKind middle, float weight_value) {
  ir::Graph g;
  g.name = "small";
  const int x = g.add_input("x", {ir::kBatch, 8, 16, 16}, ir::Layout::kNCHW);
  const int w1 = g.add_constant("w1", {16, 8, 3, 3}, std::vector<float>(16 * 8 * 9, weight_value));
  ir::Attrs conv;
  conv.pads = {1, 1, 1, 1};
  int h = g.add_node(ir::OpKind::kConv, "conv1", {x, w1}, conv);
  h = g.add_node(middle, "middle", {h});
  const int w2 = g.add_constant("w2", {16, 16, 3, 3}, std::vector<float>(16 * 16 * 9, weight_value));
  h = g.add_node(ir::OpKind::kConv, "conv2", {h, w2}, conv);
  h = g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  const int fw = g.add_constant("fc.w", {10, 16}, std::vector<float>(160, weight_value));
  h = g.add_node(ir::OpKind::kGemm, "fc", {h, fw});
  g.outputs = {h};
  g.infer_shapes();
  return g;
}

// ---- the catalogue ----

TEST(DeviceCatalog, HasTheSixPromisedDevicesAndSixMore) {
  const auto& c = fixture().catalog;
  ASSERT_GE(c.devices.size(), 12U);
  for (const char* id :
       {"raspberry_pi_3b", "raspberry_pi_4", "raspberry_pi_5", "jetson_nano", "jetson_xavier_nx", "coral_dev_board"}) {
    EXPECT_NE(c.find(id), nullptr) << id;
  }
  std::set<std::string> runtimes;
  for (const auto& d : c.devices)
    for (const auto& r : d.runtimes) runtimes.insert(r.id);
  for (const char* r : {"tflite", "onnxruntime", "ncnn", "ncnn-vulkan", "tensorrt", "edgetpu"})
    EXPECT_TRUE(runtimes.count(r)) << r;
}

TEST(DeviceCatalog, EveryNumberHasASource) {
  std::function<void(const json&, const std::string&)> walk = [&](const json& j, const std::string& path) {
    if (j.is_object()) {
      if (j.contains("value")) {
        EXPECT_TRUE(j.contains("source") && !j["source"].get<std::string>().empty()) << path;
        return;
      }
      for (const auto& [k, v] : j.items())
        if (k != "sources") walk(v, path + "." + k);
    } else if (j.is_array()) {
      for (const auto& v : j) walk(v, path + "[]");
    } else if (j.is_number() && path.find("schema_version") == std::string::npos) {
      ADD_FAILURE() << "bare number without a source at " << path;
    }
  };
  for (const auto& d : fixture().catalog.devices) {
    walk(d.document, d.id);
    EXPECT_FALSE(d.document["sources"].empty()) << d.id;
  }
}

TEST(DeviceCatalog, EdgeTpuAndGpuFacts) {
  const auto* coral = fixture().catalog.find("coral_dev_board");
  ASSERT_NE(coral, nullptr);
  EXPECT_TRUE(coral->has_tpu);
  EXPECT_DOUBLE_EQ(coral->tpu_sram_mb, 8);
  const auto* edgetpu = coral->find_runtime("edgetpu");
  ASSERT_NE(edgetpu, nullptr);
  EXPECT_EQ(edgetpu->precision_list(), "int8");
  const auto* nano = fixture().catalog.find("jetson_nano");
  ASSERT_NE(nano, nullptr);
  EXPECT_TRUE(nano->has_gpu);
  EXPECT_EQ(nano->find_runtime("tensorrt")->find(Precision::kInt8), nullptr);  // Maxwell: no INT8 speed-up
  const auto* pi5 = fixture().catalog.find("raspberry_pi_5");
  EXPECT_EQ(pi5->find_runtime("ncnn")->find(Precision::kFp32)->compute, Precision::kFp16);
}

TEST(DeviceCatalog, BadDocumentsAreErrors) {
  EXPECT_FALSE(parse_device(json::array(), "x").ok());
  EXPECT_FALSE(parse_device(json{{"name", "no id"}}, "x").ok());
  json doc = fixture().catalog.find("raspberry_pi_4")->document;
  doc["runtimes"][0]["unit"] = "gpu";  // the Pi 4 has no GPU entry
  auto r = parse_device(doc, "pi4-bad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("gpu"), std::string::npos);
  doc = fixture().catalog.find("raspberry_pi_4")->document;
  doc["runtimes"][0]["precisions"] = {{"fp64", json::object()}};
  EXPECT_FALSE(parse_device(doc, "pi4-bad").ok());
  EXPECT_FALSE(load_device_catalog(kRoot + "/no/such/dir").ok());
}

TEST(DeviceCatalog, JetsonsListTheirJetPackReleases) {
  for (const char* id : {"jetson_nano", "jetson_xavier_nx", "jetson_orin_nano"}) {
    const auto* d = fixture().catalog.find(id);
    ASSERT_NE(d, nullptr) << id;
    ASSERT_FALSE(d->jetpack.empty()) << id;
    for (const auto& r : d->jetpack) {
      EXPECT_FALSE(r.tensorrt.empty() || r.cuda.empty() || r.source.empty()) << id << " " << r.version;
      EXPECT_GE(r.onnx_opset_max, 13) << id << " " << r.version;  // EdgeOpt exports opset 13
    }
  }
  const auto* nano = fixture().catalog.find("jetson_nano");
  ASSERT_EQ(nano->jetpack.size(), 1U);
  EXPECT_EQ(nano->jetpack[0].version, "4.6.1");
  EXPECT_EQ(nano->jetpack[0].tensorrt, "8.2.1");
  EXPECT_EQ(nano->jetpack[0].cuda, "10.2");
  EXPECT_TRUE(fixture().catalog.find("raspberry_pi_4")->jetpack.empty());
}

TEST(DeviceCatalog, MalformedJetPackEntriesAreRefused) {
  const json good = fixture().catalog.find("jetson_orin_nano")->document;
  ASSERT_TRUE(parse_device(good, "orin").ok());
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& expected) {
    json doc = good;
    edit(doc);
    auto r = parse_device(doc, "orin-bad");
    ASSERT_FALSE(r.ok()) << expected;
    EXPECT_NE(r.error().message.find(expected), std::string::npos) << r.error().message;
  };
  refused([](json& d) { d.erase("jetpack"); }, "lists no \"jetpack\"");
  refused([](json& d) { d["jetpack"] = json::array(); }, "non-empty list");
  refused([](json& d) { d["jetpack"][0].erase("tensorrt"); }, "\"tensorrt\"");
  refused([](json& d) { d["jetpack"][0]["cuda"] = 11.4; }, "\"cuda\"");
  refused([](json& d) { d["jetpack"][0]["version"] = "five"; }, "\"version\"");
  refused([](json& d) { d["jetpack"][0].erase("source"); }, "no \"source\"");
  refused([](json& d) { d["jetpack"][0]["onnx_opset_max"] = 17; }, "sourced integer");  // a bare number
  refused([](json& d) { d["jetpack"][0]["onnx_opset_max"]["value"] = 3; }, "sourced integer");
  refused([](json& d) { d["jetpack"][1] = d["jetpack"][0]; }, "listed twice");
  json pi = fixture().catalog.find("raspberry_pi_4")->document;
  pi["jetpack"] = good["jetpack"];
  auto r = parse_device(pi, "pi-bad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no tensorrt runtime"), std::string::npos) << r.error().message;
}

// ---- bad input ----

TEST(Estimator, UnknownDeviceRuntimeOrPrecisionListsTheChoices) {
  const LayerTable t = table("mobilenet_v2_224");
  Error e = run_error(t, "raspberry_pi_9", "", Precision::kFp32);
  EXPECT_NE(e.hint.find("raspberry_pi_4"), std::string::npos);
  e = run_error(t, "raspberry_pi_4", "tensorrt", Precision::kFp32);
  EXPECT_NE(e.hint.find("tflite (fp32, int8, int4)"), std::string::npos) << e.hint;
  e = run_error(t, "coral_dev_board", "edgetpu", Precision::kFp32);
  EXPECT_NE(e.message.find("does not run fp32"), std::string::npos);
  EXPECT_NE(e.hint.find("int8"), std::string::npos);
  e = run_error(t, "jetson_nano", "tensorrt", Precision::kInt8);
  EXPECT_NE(e.hint.find("fp16"), std::string::npos);
}

TEST(Estimator, UnsupportedOpOnAMicrocontrollerRuntimeNamesTheLayer) {
  auto g = small_graph(ir::OpKind::kLogSoftmax, 0.1F);
  EstimateOptions o;
  o.device = "stm32h743";
  o.precision = Precision::kInt8;
  auto e = estimate_graph(g, fixture().catalog, fixture().calibration, o);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.error().message.find("middle"), std::string::npos);
}

TEST(Estimator, HostileLayerTablesAreErrors) {
  EXPECT_FALSE(layer_table_from_json(json::object(), "t").ok());
  EXPECT_FALSE(layer_table_from_json(json{{"layers", {{"a", "Conv", "conv", -1, 0, 0, 0}}}}, "t").ok());
  EXPECT_FALSE(layer_table_from_json(json{{"layers", {{1, 2, 3, 4, 5, 6, 7}}}}, "t").ok());
  EXPECT_FALSE(layer_table_from_json(json{{"layers", {{"a", "Conv", "warp", 1, 0, 0, 0}}}}, "t").ok());
  EXPECT_FALSE(
      layer_table_from_json(json{{"layers", {{"a", "Conv", "grouped_conv", 1, 1, 1, 1, 0, 0, 1}}}}, "t").ok());
}

// A grouped conv runs as `groups` smaller GEMMs: ShuffleNet v1's 1x1 group convs keep their group
// count through the layer table, and more groups at the same MACs are never faster.
TEST(Estimator, GroupedConvsRunAsPerGroupGemms) {
  const LayerTable t = table("shufflenet_v1_g3_224");
  int grouped = 0;
  for (const auto& l : t.layers) {
    if (l.cls != LayerClass::kGroupedConv) continue;
    ++grouped;
    EXPECT_EQ(l.groups, 3) << l.name;
    EXPECT_EQ(l.kernel_elems, 1) << l.name;
  }
  EXPECT_GT(grouped, 20);
  auto back = layer_table_from_json(layer_table_to_json(t), "round trip");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->layers.size(), t.layers.size());
  for (std::size_t i = 0; i < t.layers.size(); ++i) EXPECT_EQ(back->layers[i].groups, t.layers[i].groups);
  LayerTable g3 = t, g6 = t;
  for (auto& l : g6.layers)
    if (l.cls == LayerClass::kGroupedConv) l.groups = 6;
  EXPECT_GT(run(g6, "raspberry_pi_4", "ncnn", Precision::kFp32).latency_ms,
            run(g3, "raspberry_pi_4", "ncnn", Precision::kFp32).latency_ms);
}

// Winograd computes whole output tiles: the pre-2021 ncnn build (F(6,3) only, legacy rows) pays
// more than the current one (F(2,3)/F(4,3)/F(6,3) by size) on ResNet-18's 7x7 and 14x14 maps, and
// the same on VGG16, whose 3x3 convs are mostly on large maps.
TEST(Estimator, WinogradTilesPadSmallMaps) {
  auto ratio = [](const std::string& model) {
    EstimateOptions o;
    o.device = "raspberry_pi_4";
    o.runtime = "ncnn";
    o.threads = 4;
    auto current = estimate(table(model), fixture().catalog, fixture().calibration, o);
    o.legacy_timing = true;
    auto legacy = estimate(table(model), fixture().catalog, fixture().calibration, o);
    EXPECT_TRUE(current.ok() && legacy.ok());
    return current.ok() && legacy.ok() ? legacy->latency_ms / current->latency_ms : 0.0;
  };
  EXPECT_GT(ratio("resnet18_224"), ratio("vgg16_224") * 1.1);
}

// ---- behaviour ----

TEST(Estimator, LayerTableRoundTripsAndMatchesTheModelCards) {
  const LayerTable t = table("mobilenet_v1_224");
  EXPECT_NEAR(t.total_macs() / 1e6, 569, 5);  // 569 M (TF slim model card)
  EXPECT_NEAR(t.total_params() / 1e6, 4.23, 0.1);
  auto back = layer_table_from_json(layer_table_to_json(t), "round trip");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->total_macs(), t.total_macs());
  EXPECT_NEAR(table("resnet18_224").total_macs() / 1e9, 1.81, 0.02);
  EXPECT_NEAR(table("vgg16_224").total_macs() / 1e9, 15.47, 0.05);
}

TEST(Estimator, IntervalBoundAndDominantLayers) {
  const Estimate e = run(table("resnet18_224"), "raspberry_pi_4", "tflite", Precision::kFp32);
  EXPECT_GT(e.latency_ms, 0);
  EXPECT_LE(e.latency_ms_low, e.latency_ms);
  EXPECT_GE(e.latency_ms_high, e.latency_ms);
  EXPECT_TRUE(e.bound == "compute" || e.bound == "memory");
  EXPECT_EQ(e.dominant_layers.size(), 3U);
  EXPECT_GT(e.energy_mj, 0);
  EXPECT_TRUE(e.fits_in_memory);
  EXPECT_GT(e.peak_memory_bytes, 11'000'000 * 4);  // fp32 weights at least
}

TEST(Estimator, ThreadsAndClockScaleButSaturate) {
  const LayerTable t = table("mobilenet_v1_224");
  const double one = run(t, "raspberry_pi_4", "ncnn", Precision::kFp32, 1).latency_ms;
  const double four = run(t, "raspberry_pi_4", "ncnn", Precision::kFp32, 4).latency_ms;
  EXPECT_LT(four, one);
  EXPECT_GT(four, one / 4);  // saturation: never a perfect 4x
  const double fast = run(t, "raspberry_pi_4", "ncnn", Precision::kFp32, 4, 1800).latency_ms;
  EXPECT_LT(fast, four);
  const Estimate many = run(t, "raspberry_pi_4", "ncnn", Precision::kFp32, 16);
  EXPECT_EQ(many.threads, 4);
  EXPECT_TRUE(has_note(many, "cores"));
}

TEST(Estimator, NcnnOnCortexA76ComputesInFp16) {
  const Estimate e = run(table("mobilenet_v2_224"), "raspberry_pi_5", "ncnn", Precision::kFp32);
  EXPECT_EQ(e.compute_precision, Precision::kFp16);
  EXPECT_TRUE(has_note(e, "fp16 arithmetic"));
  const Estimate a72 = run(table("mobilenet_v2_224"), "raspberry_pi_4", "ncnn", Precision::kFp32);
  EXPECT_EQ(a72.compute_precision, Precision::kFp32);
}

TEST(Estimator, Int4WithoutInt4KernelsIsNoFasterThanInt8) {
  const LayerTable t = table("mobilenet_v2_224");
  const Estimate int8 = run(t, "raspberry_pi_4", "tflite", Precision::kInt8);
  const Estimate int4 = run(t, "raspberry_pi_4", "tflite", Precision::kInt4);
  EXPECT_DOUBLE_EQ(int4.latency_ms, int8.latency_ms);
  EXPECT_TRUE(has_note(int4, "no INT4 kernels"));
}

TEST(Estimator, UnstructuredSparsityGivesNoSpeedUpOnDenseKernels) {
  auto dense = estimate_graph(small_graph(ir::OpKind::kRelu, 0.1F), fixture().catalog, fixture().calibration,
                              EstimateOptions{"raspberry_pi_4", "tflite", Precision::kFp32});
  auto sparse = estimate_graph(small_graph(ir::OpKind::kRelu, 0.0F), fixture().catalog, fixture().calibration,
                               EstimateOptions{"raspberry_pi_4", "tflite", Precision::kFp32});
  ASSERT_TRUE(dense.ok() && sparse.ok());
  EXPECT_DOUBLE_EQ(dense->latency_ms, sparse->latency_ms);
  EXPECT_TRUE(has_note(sparse.value(), "no speed-up"));
  EXPECT_FALSE(has_note(dense.value(), "no speed-up"));
}

TEST(Estimator, EdgeTpuFallsBackToTheCpuAfterTheFirstUnsupportedOp) {
  // The Edge TPU compiler has no LeakyRelu: conv1 runs on the TPU, the rest on the CPU.
  auto g = small_graph(ir::OpKind::kLeakyRelu, 0.1F);
  auto e = estimate_graph(g, fixture().catalog, fixture().calibration,
                          EstimateOptions{"coral_dev_board", "edgetpu", Precision::kInt8});
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  EXPECT_NE(e->fallback_op.find("LeakyRelu"), std::string::npos);
  EXPECT_NE(e->fallback_op.find("middle"), std::string::npos);
  EXPECT_EQ(e->layers_on_accelerator, 1);
  EXPECT_EQ(e->layers_on_cpu, static_cast<int>(g.nodes.size()) - 1);
  EXPECT_TRUE(has_note(e.value(), "run on the CPU"));
  auto clean = estimate_graph(small_graph(ir::OpKind::kRelu, 0.1F), fixture().catalog, fixture().calibration,
                              EstimateOptions{"coral_dev_board", "edgetpu", Precision::kInt8});
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->fallback_op.empty());
  EXPECT_LT(clean->latency_ms, e->latency_ms);
}

TEST(Estimator, EdgeTpuStreamsParametersBeyondItsSram) {
  const Estimate vgg = run(table("vgg16_224"), "coral_dev_board", "edgetpu", Precision::kInt8);
  const Estimate mbv1 = run(table("mobilenet_v1_224"), "coral_dev_board", "edgetpu", Precision::kInt8);
  EXPECT_TRUE(has_note(vgg, "on-chip memory"));
  EXPECT_FALSE(has_note(mbv1, "on-chip memory"));
  EXPECT_EQ(vgg.bound, "memory");
  // VGG16 has 27x MobileNet v1's MACs but runs ~140x slower (343 ms vs 2.4 ms, [CORAL-B]).
  EXPECT_GT(vgg.latency_ms / mbv1.latency_ms, 60);
}

TEST(Estimator, MemoryAgainstTheDeviceRam) {
  const Estimate mcu = run(table("vgg16_224"), "stm32h743", "tflite-micro", Precision::kInt8);
  EXPECT_FALSE(mcu.fits_in_memory);
  EXPECT_TRUE(has_note(mcu, "needs"));
  const Estimate pi = run(table("vgg16_224"), "raspberry_pi_4", "tflite", Precision::kInt8);
  EXPECT_TRUE(pi.fits_in_memory);
  EXPECT_LT(pi.peak_memory_bytes,
            run(table("vgg16_224"), "raspberry_pi_4", "tflite", Precision::kFp32).peak_memory_bytes);
}

TEST(Estimator, UncalibratedDevicesGetAWiderInterval) {
  const LayerTable t = table("resnet18_224");
  const Estimate orin = run(t, "jetson_orin_nano", "tensorrt", Precision::kFp16);
  const Estimate nano = run(t, "jetson_nano", "tensorrt", Precision::kFp16);
  EXPECT_TRUE(has_note(orin, "no published measurements"));
  EXPECT_GT(orin.latency_ms_high / orin.latency_ms_low, nano.latency_ms_high / nano.latency_ms_low);
  EXPECT_LT(orin.latency_ms, nano.latency_ms);
}

// Issue 13: the Coral Dev Board gave an INT8 variant 3.6x the memory of its FP32 baseline (the
// Edge TPU's on-chip SRAM was counted as a host arena). Quantised peak memory never exceeds FP32's
// for the same graph: with each device's default runtime per precision (what `optimize` asks for)
// and within every runtime that runs both.
TEST(Estimator, QuantisedPeakMemoryIsNeverAboveFp32OnAnyDevice) {
  const auto& catalog = fixture().catalog;
  const ir::Graph small = small_graph(ir::OpKind::kRelu, 0.1F);
  auto small_table = layers_from_graph(small);
  ASSERT_TRUE(small_table.ok());
  auto peak = [&](const LayerTable& t, const std::string& device, const std::string& runtime, Precision p) {
    EstimateOptions o;
    o.device = device;
    o.runtime = runtime;
    o.precision = p;
    auto e = estimate(t, catalog, fixture().calibration, o);
    return e.ok() ? e->peak_memory_bytes : std::int64_t{-1};
  };
  int compared = 0;
  for (const LayerTable& t : {small_table.value(), table("mobilenet_v2_224"), table("resnet18_224")}) {
    for (const auto& d : catalog.devices) {
      const std::int64_t fp32 = peak(t, d.id, "", Precision::kFp32);
      for (Precision q : {Precision::kInt8, Precision::kInt4}) {
        const std::int64_t quantised = peak(t, d.id, "", q);
        if (fp32 < 0 || quantised < 0) continue;  // a precision the device cannot run at all
        EXPECT_LE(quantised, fp32) << d.id << " " << t.model << " " << precision_name(q) << " (default runtimes)";
        ++compared;
      }
      for (const auto& r : d.runtimes) {
        if (!r.find(Precision::kFp32)) continue;
        const std::int64_t rfp32 = peak(t, d.id, r.id, Precision::kFp32);
        for (Precision q : {Precision::kInt8, Precision::kInt4}) {
          if (!r.find(q)) continue;
          const std::int64_t quantised = peak(t, d.id, r.id, q);
          if (rfp32 < 0 || quantised < 0) continue;
          EXPECT_LE(quantised, rfp32) << d.id << " / " << r.id << " " << t.model << " " << precision_name(q);
          ++compared;
        }
      }
    }
  }
  EXPECT_GT(compared, 40);
  // The case: the Coral's INT8 (Edge TPU) against its FP32 (TFLite on the A53).
  const LayerTable tiny = small_table.value();
  EXPECT_LT(peak(tiny, "coral_dev_board", "", Precision::kInt8), peak(tiny, "coral_dev_board", "", Precision::kFp32));
}

// ---- calibration acceptance (issue 13): leave-one-family-out median error <= 20 % and >= 70 %
// of rows within +-25 % for every device with at least five rows (docs/estimator.md); the
// intervals cover their stated share of those rows.
TEST(Calibration, LeaveOneFamilyOutMeetsTheBarPerDevice) {
  auto rows = load_measurements(kRoot + "/data/estimator/measurements.csv");
  ASSERT_TRUE(rows.ok()) << rows.error().to_string();
  std::map<std::string, LayerTable> tables;
  for (const auto& m : rows.value())
    if (m.use && !tables.count(m.model)) tables.emplace(m.model, table(m.model));
  Calibration base = fixture().calibration;
  base.params.clear();
  auto v = calibrate_and_validate(base, rows.value(), tables, fixture().catalog);
  ASSERT_TRUE(v.ok()) << v.error().to_string();
  int checked = 0;
  for (const auto& s : v->lofo.per_device) {
    if (s.rows < 5) continue;
    ++checked;
    EXPECT_LE(s.median_abs_error, 0.20) << s.group;
    EXPECT_GE(s.within_25, 0.70) << s.group;
  }
  EXPECT_GE(checked, 7);
  EXPECT_GE(v->lofo.coverage, v->interval_share - 0.05);
  // Fewer free parameters than rows, on every device and in all: effective parameters (the share
  // of each that the data, not its prior, determines), counted against the one device that reads it.
  std::map<std::string, double> own;
  double all = 0;
  for (const auto& p : v->params) {
    all += p.data_share;
    if (!p.device.empty()) own[p.device] += p.data_share;
  }
  for (const auto& s : v->lofo.per_device) EXPECT_LT(own[s.group], s.rows) << s.group;
  EXPECT_LT(all, static_cast<double>(v->in_sample.size()));
  for (const auto& p : v->params) EXPECT_TRUE(std::isfinite(p.log_sd) && p.log_sd >= 0) << p.key;

  // The committed calibration.json is what `make calibrate` produces from these inputs.
  for (const auto& [key, value] : v->fitted.params) {
    const auto it = fixture().calibration.params.find(key);
    ASSERT_NE(it, fixture().calibration.params.end()) << key << " missing: run `make calibrate-fit`";
    EXPECT_NEAR(it->second / value, 1.0, 1e-6) << key << ": run `make calibrate-fit`";
  }
}

}  // namespace
}  // namespace edgeopt::estimator

namespace edgeopt::estimator {
namespace {

// A Gemm whose weight may be stored quantized and whose output may carry an activation range.
ir::Graph gemm_graph(bool quantized_weight, bool quantized_activation) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 4}, ir::Layout::kNC);
  const int w = g.add_constant("w", {2, 4}, std::vector<float>(8, 0.5F));
  if (quantized_weight) g.values[static_cast<std::size_t>(w)].quant = ir::QuantParams{{0.01F, 0.01F}, {}, 0, 0};
  const int y = g.add_node(ir::OpKind::kGemm, "fc", {x, w});
  if (quantized_activation) g.values[static_cast<std::size_t>(y)].quant = ir::QuantParams{{0.1F}, {3}, -1, 0};
  g.outputs = {y};
  return g;
}

TEST(PrecisionOfGraph, Int8OnlyWhenActivationsAreQuantized) {
  const GraphPrecision plain = precision_of_graph(gemm_graph(false, false));
  EXPECT_EQ(plain.precision, Precision::kFp32);
  EXPECT_EQ(plain.reason, "no quantized tensor");
  // Weight-only storage (ptq_int4, hybrid_int4) is unpacked to float on a device.
  const GraphPrecision weight_only = precision_of_graph(gemm_graph(true, false));
  EXPECT_EQ(weight_only.precision, Precision::kFp32);
  EXPECT_NE(weight_only.reason.find("weight-only"), std::string::npos) << weight_only.reason;
  const GraphPrecision int8 = precision_of_graph(gemm_graph(true, true));
  EXPECT_EQ(int8.precision, Precision::kInt8);
  EXPECT_EQ(int8.reason, "1 activation has int8 ranges");
}

}  // namespace
}  // namespace edgeopt::estimator
