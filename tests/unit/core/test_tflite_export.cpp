// TFLite export: the flatbuffer verifies against the schema, images become NHWC with batch 1,
// activations fuse, and a full-integer file has int8 tensors from end to end. LiteRT runs the
// files for real in tests/interop/test_tflite_export.py and test_package.py.
#include <gtest/gtest.h>

#include <flatbuffers/flatbuffers.h>

#include <random>
#include <string>

#include "format/tflite_export.h"
#include "format/tflite_schema_generated.h"
#include "ir/graph.h"
#include "ir/text.h"

namespace edgeopt::format {
namespace {

namespace tfl = edgeopt::tflite;
using ir::Attrs;
using ir::Graph;
using ir::OpKind;

std::vector<float> random_values(std::size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// conv 3x3 (pad 1) -> relu -> maxpool 2 -> flatten -> gemm, on 1x8x8 images.
Graph small_cnn() {
  std::mt19937 rng(3);
  Graph g;
  g.name = "small";
  int h = g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  Attrs conv;
  conv.strides = {1, 1};
  conv.pads = {1, 1, 1, 1};
  h = g.add_node(OpKind::kConv, "conv", {h, g.add_constant("conv.w", {4, 1, 3, 3}, random_values(36, -0.5F, 0.5F, rng)),
                                         g.add_constant("conv.b", {4}, random_values(4, -0.1F, 0.1F, rng))}, conv);
  h = g.add_node(OpKind::kRelu, "relu", {h});
  Attrs pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  h = g.add_node(OpKind::kMaxPool, "pool", {h}, pool);
  h = g.add_node(OpKind::kFlatten, "flatten", {h});
  g.outputs = {g.add_node(OpKind::kGemm, "fc", {h, g.add_constant("fc.w", {10, 64}, random_values(640, -0.2F, 0.2F, rng)),
                                                g.add_constant("fc.b", {10}, random_values(10, -0.1F, 0.1F, rng))})};
  g.infer_shapes();
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

// The int8 graph a static quantizer makes of it: per-channel weights, uint8 activation ranges.
Graph small_int8() {
  Graph g = small_cnn();
  for (const char* name : {"conv.w", "fc.w"}) {
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
  return g;
}

const tfl::Model* parse(const std::string& bytes) {
  flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  EXPECT_TRUE(tfl::VerifyModelBuffer(verifier)) << "the flatbuffer does not verify against the TFLite schema";
  return tfl::GetModel(bytes.data());
}

std::vector<std::string> op_names(const tfl::Model* m) {
  std::vector<std::string> out;
  for (const auto* op : *m->subgraphs()->Get(0)->operators()) out.push_back(tfl::EnumNameBuiltinOperator(m->operator_codes()->Get(op->opcode_index())->builtin_code()));
  return out;
}

TEST(TfliteExport, Fp32IsNhwcWithBatchOneAndFusedRelu) {
  auto r = export_tflite(small_cnn());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const tfl::Model* m = parse(r->bytes);
  ASSERT_EQ(m->version(), 3U);
  ASSERT_TRUE(tfl::ModelBufferHasIdentifier(r->bytes.data()));
  const auto* sg = m->subgraphs()->Get(0);
  const auto* in = sg->tensors()->Get(sg->inputs()->Get(0));
  EXPECT_EQ(std::vector<int>(in->shape()->begin(), in->shape()->end()), (std::vector<int>{1, 8, 8, 1}));
  EXPECT_EQ(in->type(), tfl::TensorType_FLOAT32);
  // The pooled 4x4x4 image goes back to NCHW order before the flatten, so the FC weights fit.
  EXPECT_EQ(op_names(m), (std::vector<std::string>{"CONV_2D", "MAX_POOL_2D", "TRANSPOSE", "RESHAPE", "FULLY_CONNECTED"}));
  const auto* conv = sg->operators()->Get(0)->builtin_options_as_Conv2DOptions();
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->fused_activation_function(), tfl::ActivationFunctionType_RELU);
  EXPECT_EQ(conv->padding(), tfl::Padding_SAME);
  const auto* filter = sg->tensors()->Get(sg->operators()->Get(0)->inputs()->Get(1));
  EXPECT_EQ(std::vector<int>(filter->shape()->begin(), filter->shape()->end()), (std::vector<int>{4, 3, 3, 1}));
}

TEST(TfliteExport, Fp16AndDynamicInt8StoreSmallerWeights) {
  for (TfliteKind kind : {TfliteKind::kFp16Weights, TfliteKind::kDynamicInt8}) {
    TfliteExportOptions o;
    o.kind = kind;
    auto r = export_tflite(small_cnn(), o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const tfl::Model* m = parse(r->bytes);
    const auto* sg = m->subgraphs()->Get(0);
    const auto* fc_weight = sg->tensors()->Get(sg->operators()->Get(sg->operators()->size() - 1)->inputs()->Get(1));
    if (kind == TfliteKind::kDynamicInt8) {
      EXPECT_EQ(fc_weight->type(), tfl::TensorType_INT8);
      ASSERT_NE(fc_weight->quantization(), nullptr);
      EXPECT_EQ(fc_weight->quantization()->scale()->size(), 10U) << "one scale per output channel";
    } else {
      EXPECT_EQ(fc_weight->type(), tfl::TensorType_FLOAT32) << "the FC reads the DEQUANTIZE output";
      EXPECT_NE(std::find(r->ops.begin(), r->ops.end(), "DEQUANTIZE"), r->ops.end());
    }
  }
}

TEST(TfliteExport, FullInt8HasOnlyInt8TensorsBetweenItsEnds) {
  for (bool int8_io : {false, true}) {
    TfliteExportOptions o;
    o.kind = TfliteKind::kFullInt8;
    o.int8_io = int8_io;
    o.extra_quant["fc"] = ir::QuantParams{{0.05F}, {128}, -1, 0};
    auto r = export_tflite(small_int8(), o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const tfl::Model* m = parse(r->bytes);
    const auto* sg = m->subgraphs()->Get(0);
    const int in = sg->inputs()->Get(0), out = sg->outputs()->Get(0);
    for (std::size_t t = 0; t < sg->tensors()->size(); ++t) {
      const auto* tensor = sg->tensors()->Get(static_cast<flatbuffers::uoffset_t>(t));
      const bool end = static_cast<int>(t) == in || static_cast<int>(t) == out;
      const bool shape_data = tensor->type() == tfl::TensorType_INT32;  // perms, shapes, int32 biases
      if (end && !int8_io) {
        EXPECT_EQ(tensor->type(), tfl::TensorType_FLOAT32) << tensor->name()->str();
      } else if (!shape_data) {
        EXPECT_EQ(tensor->type(), tfl::TensorType_INT8) << tensor->name()->str();
        ASSERT_NE(tensor->quantization(), nullptr) << tensor->name()->str();
      }
    }
    const auto* input = sg->tensors()->Get(in);
    if (int8_io) {
      EXPECT_FLOAT_EQ(input->quantization()->scale()->Get(0), 1.0F / 255);
      EXPECT_EQ(input->quantization()->zero_point()->Get(0), -128) << "uint8 zero point 0 is int8 -128";
    }
  }
}

TEST(TfliteExport, MissingRangesAndUnmappableOpsAreClearErrors) {
  TfliteExportOptions o;
  o.kind = TfliteKind::kFullInt8;
  auto r = export_tflite(small_int8(), o);  // no range for the logits
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("'fc'"), std::string::npos) << r.error().message;

  Graph g;
  g.name = "grouped";
  const int x = g.add_input("x", {ir::kBatch, 4, 8, 8}, ir::Layout::kNCHW);
  Attrs a;
  a.group = 2;
  std::mt19937 rng(1);
  g.outputs = {g.add_node(OpKind::kConv, "gconv", {x, g.add_constant("w", {4, 2, 1, 1}, random_values(8, -1, 1, rng))}, a)};
  g.infer_shapes();
  auto e = export_tflite(g);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.error().message.find("gconv"), std::string::npos);
}

}  // namespace
}  // namespace edgeopt::format
