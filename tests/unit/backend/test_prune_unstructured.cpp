#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "format/eom.h"
#include "ir/text.h"
#include "technique_fixtures.h"
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
