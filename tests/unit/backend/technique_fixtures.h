// Small models and datasets shared by the technique tests: seeded, tiny, and fast to train.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "backend/executor.h"
#include "data/dataset.h"
#include "ir/graph.h"
#include "ir/text.h"
#include "pipeline/preprocess.h"
#include "techniques/technique.h"

namespace edgeopt::techniques::fixtures {

inline std::vector<float> normal(std::size_t n, unsigned seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0F, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// A 2-class problem on 4x4 gray images: is the left half brighter than the right?
inline data::ImageSet halves(std::int64_t count, unsigned seed) {
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

// A 16-256-2 dense network for halves(): a Flatten, a ReLU hidden layer and two logits.
inline ir::Graph halves_mlp() {
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

inline Context context_for(const ir::Graph& g, const data::ImageSet& train, const pipeline::InputSpec& spec) {
  Context ctx;
  ctx.baseline = &g;
  ctx.train = &train;
  ctx.spec = spec;
  ctx.norm = pipeline::parse_normalization("unit").value();
  return ctx;
}

// Top-1 accuracy of `g` on `s`, prepared with the context's spec and normalisation.
inline double top1(const ir::Graph& g, const data::ImageSet& s, const Context& ctx) {
  std::vector<float> x;
  pipeline::prepare_batch(s, 0, s.count, ctx.spec, ctx.norm, x);
  auto exec = backend::Executor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.error().to_string();
  if (!exec.ok()) return 0;
  auto logits = exec.value()->run(x.data(), s.count);
  EXPECT_TRUE(logits.ok()) << logits.error().to_string();
  if (!logits.ok()) return 0;
  const std::int64_t classes = exec.value()->output_elements();
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < s.count; ++i) {
    const auto row = logits->begin() + classes * i;
    correct += std::max_element(row, row + classes) - row == s.labels[static_cast<std::size_t>(i)];
  }
  return static_cast<double>(correct) / static_cast<double>(s.count);
}

}  // namespace edgeopt::techniques::fixtures
