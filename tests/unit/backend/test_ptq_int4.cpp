#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "format/eom.h"
#include "ir/text.h"
#include "techniques/ptq_int4.h"

namespace edgeopt::techniques {
namespace {

std::vector<float> normal(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0F, 0.1F);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

ir::Graph weight_heavy_mlp() {
  ir::Graph g;
  g.name = "mlp";
  const int x = g.add_input("x", {ir::kBatch, 256}, ir::Layout::kNC);
  const int w1 = g.add_constant("w1", {512, 256}, normal(512 * 256, 1));
  int h = g.add_node(ir::OpKind::kGemm, "fc1", {x, w1});
  h = g.add_node(ir::OpKind::kRelu, "relu", {h});
  const int w2 = g.add_constant("w2", {10, 512}, normal(10 * 512, 2));
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc2", {h, w2})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

TEST(PtqInt4, GroupCodesStayInRangeAndErrorIsBounded) {
  std::vector<float> w = normal(4 * 64, 3);
  const std::vector<float> original = w;
  const auto scales = quantize_groups(w, 4, 32, 7, true);
  ASSERT_EQ(scales.size(), 8U);  // 4 channels x 2 groups
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float s = scales[i / 32];
    const float code = w[i] / s;
    EXPECT_NEAR(code, std::round(code), 1e-3);
    EXPECT_GE(code, -8.0F - 1e-3);
    EXPECT_LE(code, 7.0F + 1e-3);
    EXPECT_LE(std::abs(w[i] - original[i]), 8 * s);  // clipped outliers stay within the range
  }
}

TEST(PtqInt4, FileIsReallyPackedAndSmall) {
  const ir::Graph g = weight_heavy_mlp();
  PtqInt4 technique;
  Context ctx;
  ctx.baseline = &g;
  auto out = technique.run(ctx);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  const auto dir = std::filesystem::temp_directory_path();
  const std::string fp32 = (dir / "edgeopt_int4_fp32.eom").string();
  const std::string int4 = (dir / "edgeopt_int4.eom").string();
  ASSERT_TRUE(format::write_eom(g, fp32).ok());
  ASSERT_TRUE(format::write_eom(out->graph, int4, out->encoding).ok());
  const double ratio = static_cast<double>(std::filesystem::file_size(int4)) / static_cast<double>(std::filesystem::file_size(fp32));
  EXPECT_LE(ratio, 0.16) << "int4 file is " << ratio << "x the fp32 file";
  auto model = format::read_eom_model(int4);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  int packed = 0;
  for (const auto& [id, tensor] : model->encoded) packed += tensor.kind == format::EncodingKind::kInt4 ? 1 : 0;
  EXPECT_EQ(packed, 2);
  // What is stored is exactly what the variant computes with.
  for (const int id : {out->graph.find("w1").value(), out->graph.find("w2").value()}) {
    EXPECT_EQ(model->graph.value(id).f32, out->graph.value(id).f32);
  }
  std::filesystem::remove(fp32);
  std::filesystem::remove(int4);
}

TEST(PtqInt4, SensitiveLayersFallBackToInt8AndSaySo) {
  ir::Graph g = weight_heavy_mlp();
  // One huge outlier per group makes int4 hopeless for fc1.
  auto& w1 = g.value(g.find("w1").value()).f32;
  for (std::size_t i = 0; i < w1.size(); i += 16) w1[i] = 50.0F;
  PtqInt4 technique;
  Context ctx;
  ctx.baseline = &g;
  auto out = technique.run(ctx);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->encoding.per_constant.at("w1").kind, format::EncodingKind::kInt8);
  bool named = false;
  for (const auto& note : out->notes) named = named || note.find("fc1") != std::string::npos;
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace edgeopt::techniques
