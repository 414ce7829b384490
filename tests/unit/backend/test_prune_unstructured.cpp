#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "format/eom.h"
#include "ir/text.h"
#include "techniques/prune_unstructured.h"

namespace edgeopt::techniques {
namespace {

std::vector<float> normal(std::size_t n, unsigned seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0F, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A 2-class problem on 4x4 gray images: is the left half brighter than the right?
data::ImageSet halves(std::int64_t count, unsigned seed) {
  data::ImageSet s;
  s.count = count;
  s.height = 4;
  s.width = 4;
  s.channels = 1;
  std::mt19937 rng(seed);
  for (std::int64_t i = 0; i < count; ++i) {
    const int label = static_cast<int>(rng() % 2);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) s.pixels.push_back(static_cast<std::uint8_t>(((x < 2) == (label == 1) ? 160 : 60) + rng() % 40));
    s.labels.push_back(label);
  }
  return s;
}

ir::Graph mlp() {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 4, 4}, ir::Layout::kNCHW);
  const int f = g.add_node(ir::OpKind::kFlatten, "flatten", {x});
  const int w1 = g.add_constant("w1", {256, 16}, normal(256 * 16, 1, 0.3F));
  const int b1 = g.add_constant("b1", {256}, std::vector<float>(256, 0.0F));
  int h = g.add_node(ir::OpKind::kGemm, "fc1", {f, w1, b1});
  h = g.add_node(ir::OpKind::kRelu, "relu", {h});
  const int w2 = g.add_constant("w2", {2, 256}, normal(2 * 256, 2, 0.3F));
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc2", {h, w2})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

Context context_for(const ir::Graph& g, const data::ImageSet& train) {
  Context ctx;
  ctx.baseline = &g;
  ctx.train = &train;
  ctx.spec = pipeline::InputSpec{ir::Layout::kNCHW, 1, 4, 4};
  ctx.norm = pipeline::parse_normalization("unit").value();
  return ctx;
}

TEST(PruneUnstructured, ThresholdHitsTheQuantile) {
  std::vector<float> w{0.1F, -0.2F, 0.3F, -0.4F};
  EXPECT_FLOAT_EQ(magnitude_threshold({&w}, 0.5), 0.3F);
}

TEST(PruneUnstructured, ReachesSparsityKeepsMasksAndShrinksTheFile) {
  const ir::Graph g = mlp();
  const data::ImageSet train = halves(512, 3);
  PruneUnstructured technique;
  auto out = technique.run(context_for(g, train));
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  std::int64_t total = 0;
  std::int64_t zeros = 0;
  for (const char* name : {"w1", "w2"}) {
    const auto& w = out->graph.value(out->graph.find(name).value()).f32;
    total += static_cast<std::int64_t>(w.size());
    zeros += std::count(w.begin(), w.end(), 0.0F);
  }
  // Pruned weights stayed exactly zero through the fine-tuning after the last stage.
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(total), 0.75, 0.01);
  const auto dir = std::filesystem::temp_directory_path();
  const std::string dense = (dir / "edgeopt_prune_dense.eom").string();
  const std::string sparse = (dir / "edgeopt_prune_sparse.eom").string();
  ASSERT_TRUE(format::write_eom(g, dense).ok());
  ASSERT_TRUE(format::write_eom(out->graph, sparse, out->encoding).ok());
  EXPECT_LE(static_cast<double>(std::filesystem::file_size(sparse)) / static_cast<double>(std::filesystem::file_size(dense)), 0.40);
  auto reread = format::read_eom(sparse);
  ASSERT_TRUE(reread.ok());
  EXPECT_EQ(reread->value(reread->find("w1").value()).f32, out->graph.value(out->graph.find("w1").value()).f32);
  std::filesystem::remove(dense);
  std::filesystem::remove(sparse);
}

TEST(PruneUnstructured, CancelStopsWithAnError) {
  const ir::Graph g = mlp();
  const data::ImageSet train = halves(256, 4);
  PruneUnstructured technique;
  Context ctx = context_for(g, train);
  ctx.cancelled = [] { return true; };
  auto out = technique.run(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("cancelled"), std::string::npos);
}

}  // namespace
}  // namespace edgeopt::techniques
