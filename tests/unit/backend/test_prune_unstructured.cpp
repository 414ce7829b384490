#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <random>

#include "format/eom.h"
#include "ir/text.h"
#include "technique_fixtures.h"
#include "techniques/hybrid.h"
#include "techniques/prune_unstructured.h"

namespace edgeopt::techniques {
namespace {

using fixtures::halves;
using fixtures::halves_mlp;
using fixtures::normal;

Context context_for(const ir::Graph& g, const data::ImageSet& train) {
  return fixtures::context_for(g, train, {ir::Layout::kNCHW, 1, 4, 4});
}


TEST(PruneUnstructured, ThresholdHitsTheQuantile) {
  std::vector<float> w{0.1F, -0.2F, 0.3F, -0.4F};
  EXPECT_FLOAT_EQ(magnitude_threshold({&w}, 0.5), 0.3F);
}

TEST(PruneUnstructured, ReachesSparsityKeepsMasksAndShrinksTheFile) {
  const ir::Graph g = halves_mlp();
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

// hybrid and hybrid_int4 from the same pruning: zeros survive quantization and are stored as a
// bitmask; hybrid_int4 packs the non-zero codes two per byte, keeps narrow layers in int8 (and
// says so), and its file is smaller than hybrid's.
TEST(Hybrid, Int4VariantKeepsTheZerosAndPacksTwoCodesPerByte) {
  const ir::Graph g = halves_mlp();
  const data::ImageSet train = halves(512, 5);
  const data::ImageSet test = halves(512, 6);
  const Context ctx = context_for(g, train);
  auto int8 = Hybrid().run(ctx);
  ASSERT_TRUE(int8.ok()) << int8.error().to_string();
  const Hybrid int4_technique(HybridOptions{.int4 = true});
  EXPECT_EQ(int4_technique.id(), "hybrid_int4");
  auto int4 = int4_technique.run(ctx);
  ASSERT_TRUE(int4.ok()) << int4.error().to_string();
  EXPECT_EQ(int8->precision, "int8");
  EXPECT_EQ(int4->precision, "fp32") << "weight-only int4 computes in float";

  const auto dir = std::filesystem::temp_directory_path();
  const std::string path8 = (dir / "edgeopt_hybrid_int8.eom").string();
  const std::string path4 = (dir / "edgeopt_hybrid_int4.eom").string();
  ASSERT_TRUE(format::write_eom(int8->graph, path8, int8->encoding).ok());
  ASSERT_TRUE(format::write_eom(int4->graph, path4, int4->encoding).ok());
  auto model = format::read_eom_model(path4);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  for (const char* name : {"w1", "w2"}) {
    const int id = model->graph.find(name).value();
    const auto& w = model->graph.value(id).f32;
    const double zeros = static_cast<double>(std::count(w.begin(), w.end(), 0.0F)) / static_cast<double>(w.size());
    EXPECT_GE(zeros, 0.80) << name << ": the pruned zeros survive int4 and the file";
    EXPECT_EQ(w, int4->graph.value(int4->graph.find(name).value()).f32) << name << " decodes to the weights that were measured";
  }
  // w2 (256 weights per channel) is int4; w1 (16 per channel) falls back to int8, and the notes say so.
  const format::EncodedTensor& w2 = model->encoded.at(model->graph.find("w2").value());
  ASSERT_EQ(w2.kind, format::EncodingKind::kSparseInt4);
  std::size_t stored = 0;
  for (auto b : w2.mask) stored += static_cast<std::size_t>(std::popcount(b));
  EXPECT_EQ(w2.data.size(), (stored + 1) / 2);
  EXPECT_EQ(model->encoded.at(model->graph.find("w1").value()).kind, format::EncodingKind::kSparseInt8);
  bool said = false;
  for (const std::string& n : int4->notes) said = said || (n.find("kept in int8") != std::string::npos && n.find("fc1") != std::string::npos);
  EXPECT_TRUE(said);
  EXPECT_LT(std::filesystem::file_size(path4), std::filesystem::file_size(path8));
  // Both quantize the same pruned model: int4 weights cost little accuracy against int8.
  EXPECT_NEAR(fixtures::top1(int4->graph, test, ctx), fixtures::top1(int8->graph, test, ctx), 0.05);
  std::filesystem::remove(path8);
  std::filesystem::remove(path4);
}

TEST(PruneUnstructured, CancelStopsWithAnError) {
  const ir::Graph g = halves_mlp();
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
