// TFLite import: EdgeOpt reads back every kind of file its TFLite export writes (FP32, FP16
// weights, dynamic-range int8, full-integer int8 with float or int8 I/O) as the IR it came from:
// NCHW values behind the NHWC input, the same weights (exactly, or exactly scale * q for int8 ones
// with their parameters), the activation ranges of a full-integer file on the values, and the
// exporter's layout transposes folded away. Damaged and unsupported files are clear errors.
// LiteRT and EdgeOpt's executors run the files for real in tests/interop/test_tflite_roundtrip.py.
#include <gtest/gtest.h>

#include <flatbuffers/flatbuffers.h>

#include <random>
#include <string>

#include "format/encoding.h"
#include "format/tflite_export.h"
#include "format/tflite_schema_generated.h"
#include "importers/tflite/tflite_importer.h"
#include "ir/graph.h"
#include "ir/text.h"

namespace edgeopt::tflite_import {
namespace {

namespace tfl = edgeopt::tflite;
using format::TfliteExportOptions;
using format::TfliteKind;
using ir::Attrs;
using ir::Graph;
using ir::OpKind;

std::vector<float> random_values(std::size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// conv 3x3 (pad 1) -> relu -> depthwise 3x3 stride 2 -> relu6 -> avgpool 2 -> flatten -> gemm ->
// softmax, on 2x8x8 images.
Graph small_cnn() {
  std::mt19937 rng(5);
  Graph g;
  g.name = "small";
  int h = g.add_input("x", {ir::kBatch, 2, 8, 8}, ir::Layout::kNCHW);
  Attrs conv;
  conv.strides = {1, 1};
  conv.pads = {1, 1, 1, 1};
  h = g.add_node(OpKind::kConv, "conv", {h, g.add_constant("conv.w", {4, 2, 3, 3}, random_values(72, -0.5F, 0.5F, rng)),
                                         g.add_constant("conv.b", {4}, random_values(4, -0.1F, 0.1F, rng))}, conv);
  h = g.add_node(OpKind::kRelu, "relu", {h});
  Attrs dw;
  dw.strides = {2, 2};
  dw.pads = {0, 0, 1, 1};  // TFLite's SAME for 8 -> 4 with a 3x3 window
  dw.group = 4;
  h = g.add_node(OpKind::kConv, "dw", {h, g.add_constant("dw.w", {4, 1, 3, 3}, random_values(36, -0.5F, 0.5F, rng)),
                                       g.add_constant("dw.b", {4}, random_values(4, -0.1F, 0.1F, rng))}, dw);
  Attrs relu6;
  relu6.min = 0;
  relu6.max = 6;
  h = g.add_node(OpKind::kClip, "relu6", {h}, relu6);
  Attrs pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  h = g.add_node(OpKind::kAvgPool, "pool", {h}, pool);
  h = g.add_node(OpKind::kFlatten, "flatten", {h});
  h = g.add_node(OpKind::kGemm, "fc", {h, g.add_constant("fc.w", {10, 16}, random_values(160, -0.2F, 0.2F, rng)),
                                       g.add_constant("fc.b", {10}, random_values(10, -0.1F, 0.1F, rng))});
  g.outputs = {g.add_node(OpKind::kSoftmax, "softmax", {h})};
  g.infer_shapes();
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

// What a static quantizer makes of it: per-channel int8 weights, uint8 activation ranges.
Graph small_int8() {
  Graph g = small_cnn();
  for (const char* name : {"conv.w", "dw.w", "fc.w"}) {
    ir::Value& w = g.value(*g.find(name));
    ir::QuantParams q;
    q.axis = 0;
    const std::size_t per = w.f32.size() / static_cast<std::size_t>(w.shape[0]);
    for (std::int64_t c = 0; c < w.shape[0]; ++c) {
      float m = 0;
      for (std::size_t i = 0; i < per; ++i) m = std::max(m, std::abs(w.f32[static_cast<std::size_t>(c) * per + i]));
      q.scales.push_back(m / 127);
      q.zero_points.push_back(0);
      for (std::size_t i = 0; i < per; ++i) {
        float& x = w.f32[static_cast<std::size_t>(c) * per + i];
        x = q.scales.back() * std::nearbyint(x / q.scales.back());
      }
    }
    w.quant = q;
  }
  g.value(*g.find("x")).quant = ir::QuantParams{{1.0F / 255}, {0}, -1, 0};
  g.value(*g.find("relu")).quant = ir::QuantParams{{0.01F}, {0}, -1, 0};
  g.value(*g.find("relu6")).quant = ir::QuantParams{{6.0F / 255}, {0}, -1, 0};
  g.value(*g.find("pool")).quant = ir::QuantParams{{6.0F / 255}, {0}, -1, 0};
  return g;
}

Graph round_trip(const Graph& g, const TfliteExportOptions& o) {
  auto bytes = format::export_tflite(g, o);
  EXPECT_TRUE(bytes.ok()) << bytes.error().to_string();
  auto back = import_bytes(bytes->bytes, "small.tflite");
  EXPECT_TRUE(back.ok()) << back.error().to_string();
  return std::move(back).value();
}

std::vector<OpKind> ops(const Graph& g) {
  std::vector<OpKind> out;
  for (const auto& n : g.nodes) out.push_back(n.op);
  return out;
}

const ir::Value& weight_of(const Graph& g, std::size_t node) { return g.value(g.nodes.at(node).inputs.at(1)); }

TEST(TfliteImport, Fp32ReadsBackAsTheSameNchwGraph) {
  const Graph original = small_cnn();
  const Graph g = round_trip(original, {});
  const ir::Value& in = g.value(g.inputs[0]);
  EXPECT_EQ(in.shape, (ir::Shape{ir::kBatch, 8, 8, 2})) << "TFLite's NHWC input, batch symbolic again";
  EXPECT_EQ(in.layout, ir::Layout::kNHWC);
  // One Transpose to NCHW at the input; the exporter's transpose before the flatten cancels out.
  EXPECT_EQ(ops(g), (std::vector<OpKind>{OpKind::kTranspose, OpKind::kConv, OpKind::kRelu, OpKind::kConv, OpKind::kClip, OpKind::kAvgPool,
                                         OpKind::kReshape, OpKind::kGemm, OpKind::kSoftmax}))
      << ir::dump(g);
  EXPECT_EQ(g.value(g.outputs[0]).shape, (ir::Shape{ir::kBatch, 10}));
  EXPECT_EQ(g.nodes[1].attrs.pads, (std::vector<std::int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(g.nodes[3].attrs.pads, (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(g.nodes[3].attrs.group, 4);
  EXPECT_FALSE(g.nodes[5].attrs.count_include_pad);
  EXPECT_EQ(weight_of(g, 1).f32, original.value(*original.find("conv.w")).f32) << "weights back in [Cout, Cin, kh, kw] order";
  EXPECT_EQ(weight_of(g, 3).f32, original.value(*original.find("dw.w")).f32);
  EXPECT_EQ(weight_of(g, 7).f32, original.value(*original.find("fc.w")).f32);
  EXPECT_EQ(g.param_count(), original.param_count());
}

TEST(TfliteImport, Fp16AndDynamicInt8WeightsComeBackAsTheirStoredValues) {
  const Graph original = small_cnn();
  TfliteExportOptions o;
  o.kind = TfliteKind::kFp16Weights;
  Graph g = round_trip(original, o);
  const auto& w = original.value(*original.find("conv.w")).f32;
  for (std::size_t i = 0; i < w.size(); ++i) EXPECT_EQ(weight_of(g, 1).f32[i], format::f16_to_f32(format::f32_to_f16(w[i])));
  o.kind = TfliteKind::kDynamicInt8;
  g = round_trip(original, o);
  const ir::Value& q = weight_of(g, 1);
  ASSERT_TRUE(q.quant.has_value()) << "int8 weights keep their parameters";
  EXPECT_EQ(q.quant->axis, 0);
  ASSERT_EQ(q.quant->scales.size(), 4U);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float s = q.quant->scales[i / 18];
    EXPECT_NEAR(q.f32[i], w[i], s / 2 + 1e-7F);
    EXPECT_FLOAT_EQ(q.f32[i], s * std::nearbyint(q.f32[i] / s)) << "exactly scale * q";
  }
  for (const ir::Value& v : g.values) EXPECT_TRUE(v.is_constant || !v.quant) << v.name << ": float activations";
}

TEST(TfliteImport, FullInt8CarriesTheFilesRangesOnTheValues) {
  const Graph original = small_int8();
  for (bool int8_io : {false, true}) {
    TfliteExportOptions o;
    o.kind = TfliteKind::kFullInt8;
    o.int8_io = int8_io;
    o.extra_quant["fc"] = ir::QuantParams{{0.05F}, {128}, -1, 0};
    const Graph g = round_trip(original, o);
    const ir::Value& in = g.value(g.inputs[0]);
    ASSERT_TRUE(in.quant.has_value()) << "the input's QUANTIZE (or int8 input) gives its range";
    EXPECT_FLOAT_EQ(in.quant->scales[0], 1.0F / 255);
    EXPECT_EQ(in.quant->zero_points[0], 0) << "int8 -128 is the IR's uint8 0";
    for (const char* name : {"conv.w", "dw.w", "fc.w"}) {
      const ir::Value& ow = original.value(*original.find(name));
      const ir::Value* w = nullptr;
      for (const auto& n : g.nodes) {
        if ((n.op == OpKind::kConv || n.op == OpKind::kGemm) && g.value(n.inputs[1]).shape == ow.shape && g.value(n.inputs[1]).f32.size() == ow.f32.size() &&
            g.value(n.inputs[1]).name.find(name) != std::string::npos) w = &g.value(n.inputs[1]);
      }
      ASSERT_NE(w, nullptr) << name << "\n" << ir::dump(g);
      ASSERT_TRUE(w->quant.has_value());
      EXPECT_EQ(w->quant->scales, ow.quant->scales) << name;
      for (std::size_t i = 0; i < ow.f32.size(); ++i) EXPECT_NEAR(w->f32[i], ow.f32[i], 1e-6F) << name;
    }
    // Every run-time value between the ends has int8 parameters; the logits have the file's range.
    for (const auto& n : g.nodes) {
      const ir::Value& v = g.value(n.outputs[0]);
      EXPECT_TRUE(v.quant.has_value()) << v.name << " (" << ir::op_name(n.op) << ")";
    }
    const int relu = g.nodes[2].outputs[0];
    ASSERT_EQ(g.nodes[2].op, OpKind::kRelu) << ir::dump(g);
    EXPECT_FLOAT_EQ(g.value(relu).quant->scales[0], 0.01F);
    EXPECT_EQ(g.value(g.nodes[1].outputs[0]).quant->scales, g.value(relu).quant->scales) << "a fused ReLU's conv output has its range";
    const ir::Value& out = g.value(g.outputs[0]);
    EXPECT_FLOAT_EQ(out.quant->scales[0], 1.0F / 256) << "TFLite's fixed softmax range";
  }
}

TEST(TfliteImport, DamagedFilesAreCorruptFileErrors) {
  auto bytes = format::export_tflite(small_cnn(), {});
  ASSERT_TRUE(bytes.ok());
  for (std::size_t cut : {std::size_t{0}, std::size_t{7}, bytes->bytes.size() / 2, bytes->bytes.size() - 1}) {
    auto r = import_bytes(bytes->bytes.substr(0, cut), "cut.tflite");
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.error().code, ErrorCode::kCorruptFile) << r.error().to_string();
  }
  std::string flipped = bytes->bytes;
  flipped[4] = 'X';  // the identifier
  auto r = import_bytes(flipped, "x.tflite");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("TFL3"), std::string::npos);
}

// A file made of one op the importer does not read: its error names the op and what to do.
std::string one_op_file(tfl::BuiltinOperator code, const char* custom = nullptr) {
  flatbuffers::FlatBufferBuilder fb;
  std::vector<flatbuffers::Offset<tfl::Buffer>> buffers{tfl::CreateBuffer(fb)};
  const std::vector<std::int32_t> shape{1, 4, 4, 3}, out_shape{1, 8, 8, 3};
  std::vector<flatbuffers::Offset<tfl::Tensor>> tensors{tfl::CreateTensorDirect(fb, &shape, tfl::TensorType_FLOAT32, 0, "image"),
                                                        tfl::CreateTensorDirect(fb, &out_shape, tfl::TensorType_FLOAT32, 0, "resized")};
  const std::vector<std::int32_t> in{0}, out{1};
  std::vector<flatbuffers::Offset<tfl::Operator>> operators{tfl::CreateOperatorDirect(fb, 0, &in, &out)};
  std::vector<flatbuffers::Offset<tfl::OperatorCode>> codes{
      tfl::CreateOperatorCodeDirect(fb, static_cast<std::int8_t>(code), custom, 1, code)};
  std::vector<flatbuffers::Offset<tfl::SubGraph>> subgraphs{tfl::CreateSubGraphDirect(fb, &tensors, &in, &out, &operators, "g")};
  fb.Finish(tfl::CreateModelDirect(fb, 3, &codes, &subgraphs, "test", &buffers), tfl::ModelIdentifier());
  return {reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()};
}

TEST(TfliteImport, UnsupportedOpsAreNamedWithWhatToDo) {
  auto r = import_bytes(one_op_file(tfl::BuiltinOperator_RESIZE_BILINEAR), "resize.tflite");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(r.error().message.find("RESIZE_BILINEAR"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("resized"), std::string::npos) << "names the op's output";
  EXPECT_NE(r.error().hint.find("tf2onnx"), std::string::npos) << r.error().hint;
  r = import_bytes(one_op_file(tfl::BuiltinOperator_CUSTOM, "TFLite_Detection_PostProcess"), "custom.tflite");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("CUSTOM 'TFLite_Detection_PostProcess'"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace edgeopt::tflite_import
