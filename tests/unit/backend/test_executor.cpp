#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "backend/executor.h"
#include "ir/text.h"

namespace edgeopt::backend {
namespace {

using ir::Attrs;
using ir::Graph;
using ir::kBatch;
using ir::Layout;
using ir::OpKind;

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0F, 0.5F);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Plain reference convolution (the oracle): NCHW, one sample, asymmetric pads.
std::vector<float> reference_conv(const std::vector<float>& x, int c, int h, int w, const std::vector<float>& k, int oc, int kh,
                                  int kw, int stride, int pt, int pl, int oh, int ow) {
  std::vector<float> y(static_cast<std::size_t>(oc * oh * ow), 0.0F);
  for (int o = 0; o < oc; ++o)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        float acc = 0;
        for (int ci = 0; ci < c; ++ci)
          for (int a = 0; a < kh; ++a)
            for (int b = 0; b < kw; ++b) {
              const int yy = i * stride + a - pt;
              const int xx = j * stride + b - pl;
              if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
              acc += x[static_cast<std::size_t>((ci * h + yy) * w + xx)] * k[static_cast<std::size_t>(((o * c + ci) * kh + a) * kw + b)];
            }
        y[static_cast<std::size_t>((o * oh + i) * ow + j)] = acc;
      }
  return y;
}

TEST(Executor, AsymmetricConvMatchesReference) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 2, 8, 8}, Layout::kNCHW);
  const auto kernel = random_values(3 * 2 * 3 * 3, 1);
  const int w = g.add_constant("w", {3, 2, 3, 3}, kernel);
  Attrs a;
  a.strides = {2, 2};
  a.pads = {0, 0, 1, 1};  // TF "same" with stride 2: the extra pad goes at the end
  g.outputs = {g.add_node(OpKind::kConv, "conv", {x, w}, a)};
  ASSERT_TRUE(ir::verify(g).ok());
  ASSERT_EQ(g.value(g.outputs[0]).shape, (ir::Shape{kBatch, 3, 4, 4}));
  const auto input = random_values(2 * 8 * 8, 2);
  auto exec = Executor::create(g);
  ASSERT_TRUE(exec.ok());
  auto out = exec.value()->run(input.data(), 1);
  ASSERT_TRUE(out.ok()) << out.error().message;
  const auto ref = reference_conv(input, 2, 8, 8, kernel, 3, 3, 3, 2, 0, 0, 4, 4);
  ASSERT_EQ(out->size(), ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR((*out)[i], ref[i], 1e-5);
}

// A single image takes a different convolution kernel than a batch (im2col + GEMM below 1M MACs,
// see executor_torch.cpp): both agree with the reference for 5x5, strided, padded (symmetric and
// not), biased convs and for an NHWC input transposed to a 1-channel NCHW tensor.
TEST(Executor, SingleImageAndBatchConvolutionsAgreeWithTheReference) {
  struct Case {
    int c, h, oc, k, stride;
    std::vector<std::int64_t> pads;  // top, left, bottom, right
    bool nhwc_input;
  };
  const std::vector<Case> cases{{1, 28, 10, 5, 1, {0, 0, 0, 0}, false}, {10, 12, 20, 5, 1, {2, 2, 2, 2}, false},
                                {1, 28, 32, 3, 1, {0, 0, 0, 0}, true},  {3, 9, 4, 3, 2, {0, 0, 1, 1}, false},
                                {4, 16, 8, 3, 1, {1, 1, 1, 1}, true}};
  unsigned seed = 10;
  for (const Case& c : cases) {
    Graph g;
    int x = c.nhwc_input ? g.add_input("x", {kBatch, c.h, c.h, c.c}, Layout::kNHWC) : g.add_input("x", {kBatch, c.c, c.h, c.h}, Layout::kNCHW);
    if (c.nhwc_input) {
      Attrs t;
      t.perm = {0, 3, 1, 2};
      x = g.add_node(OpKind::kTranspose, "to_nchw", {x}, t);
    }
    const auto kernel = random_values(static_cast<std::size_t>(c.oc * c.c * c.k * c.k), seed++);
    const auto bias = random_values(static_cast<std::size_t>(c.oc), seed++);
    Attrs a;
    a.strides = {c.stride, c.stride};
    a.pads = c.pads;
    g.outputs = {g.add_node(OpKind::kConv, "conv", {x, g.add_constant("w", {c.oc, c.c, c.k, c.k}, kernel), g.add_constant("b", {c.oc}, bias)}, a)};
    ASSERT_TRUE(ir::verify(g).ok());
    const ir::Shape out_shape = g.value(g.outputs[0]).shape;
    const int oh = static_cast<int>(out_shape[2]);
    const int ow = static_cast<int>(out_shape[3]);
    const std::size_t per = static_cast<std::size_t>(c.c * c.h * c.h);
    const auto input = random_values(2 * per, seed++);
    auto exec = Executor::create(g);
    ASSERT_TRUE(exec.ok());
    auto batch = exec.value()->run(input.data(), 2);
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    for (int n = 0; n < 2; ++n) {
      auto single = exec.value()->run(input.data() + n * per, 1);
      ASSERT_TRUE(single.ok()) << single.error().message;
      // The reference takes NCHW: transpose the NHWC sample first.
      std::vector<float> nchw(per);
      for (int ci = 0; ci < c.c; ++ci)
        for (int i = 0; i < c.h * c.h; ++i) {
          nchw[static_cast<std::size_t>(ci * c.h * c.h + i)] =
              c.nhwc_input ? input[n * per + static_cast<std::size_t>(i * c.c + ci)] : input[n * per + static_cast<std::size_t>(ci * c.h * c.h + i)];
        }
      auto ref = reference_conv(nchw, c.c, c.h, c.h, kernel, c.oc, c.k, c.k, c.stride, static_cast<int>(c.pads[0]), static_cast<int>(c.pads[1]), oh, ow);
      for (int o = 0; o < c.oc; ++o)
        for (int i = 0; i < oh * ow; ++i) ref[static_cast<std::size_t>(o * oh * ow + i)] += bias[static_cast<std::size_t>(o)];
      ASSERT_EQ(single->size(), ref.size());
      for (std::size_t i = 0; i < ref.size(); ++i) {
        ASSERT_NEAR((*single)[i], ref[i], 1e-4) << "case k" << c.k << " c" << c.c << ", image " << n << ", element " << i;
        ASSERT_NEAR((*batch)[n * ref.size() + i], ref[i], 1e-4) << "batch, case k" << c.k << " c" << c.c << ", element " << i;
      }
    }
  }
}

TEST(Executor, AvgPoolExcludesPaddingLikeOnnx) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 1, 3, 3}, Layout::kNCHW);
  Attrs a;
  a.kernel = {2, 2};
  a.strides = {2, 2};
  a.pads = {0, 0, 1, 1};
  g.outputs = {g.add_node(OpKind::kAvgPool, "pool", {x}, a)};
  ASSERT_TRUE(ir::verify(g).ok());
  const std::vector<float> input{1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto exec = Executor::create(g);
  auto out = exec.value()->run(input.data(), 1);
  ASSERT_TRUE(out.ok());
  const std::vector<float> expected{3.0F, 4.5F, 7.5F, 9.0F};
  ASSERT_EQ(out->size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ((*out)[i], expected[i]);
}

TEST(Executor, TrainingLowersLossAndWritesWeightsBack) {
  set_seed(7);
  Graph g;
  const int x = g.add_input("x", {kBatch, 4}, Layout::kNC);
  const int w = g.add_constant("w", {2, 4}, random_values(8, 3));
  const int b = g.add_constant("b", {2}, {0.0F, 0.0F});
  g.outputs = {g.add_node(OpKind::kGemm, "fc", {x, w, b})};
  ASSERT_TRUE(ir::verify(g).ok());
  // Separable data: the label is whether the first feature is positive.
  const auto inputs = random_values(4 * 256, 4);
  std::vector<std::int32_t> labels(256);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = inputs[i * 4] > 0 ? 1 : 0;
  const auto before = g.value(w).f32;
  TrainOptions options;
  options.epochs = 20;
  options.learning_rate = 0.05F;
  auto report = train(g, inputs.data(), labels.data(), 256, options);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_LT(report->last_loss, report->first_loss * 0.5F);
  EXPECT_NE(g.value(w).f32, before);
}

TEST(Executor, ThreadsAreConfigurable) {
  set_threads(1);
  EXPECT_EQ(thread_count(), 1);
  set_threads(2);
  EXPECT_EQ(thread_count(), 2);
}

// Slice with ONNX bounds (negative start, clamped end, step 2), then a select-like slice+squeeze,
// concatenated: values must come out in the order ONNX defines.
TEST(Executor, SliceFollowsOnnxBounds) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 4, 1, 5}, Layout::kNCHW);
  Attrs strided;
  strided.axes = {1, 3};
  strided.starts = {-3, 0};
  strided.ends = {100, 100};
  strided.steps = {1, 2};
  const int a = g.add_node(OpKind::kSlice, "strided", {x}, strided);  // channels 1..3, columns 0,2,4
  Attrs first;
  first.axes = {1};
  first.starts = {0};
  first.ends = {1};
  const int b = g.add_node(OpKind::kSlice, "first", {x}, first);
  Attrs squeeze;
  squeeze.axes = {1};
  const int c = g.add_node(OpKind::kSqueeze, "squeeze", {b}, squeeze);
  Attrs unsqueeze;
  unsqueeze.axes = {1};
  const int d = g.add_node(OpKind::kUnsqueeze, "unsqueeze", {c}, unsqueeze);
  Attrs cols;
  cols.axes = {3};
  cols.starts = {-3};
  cols.ends = {std::numeric_limits<std::int64_t>::max()};
  const int e = g.add_node(OpKind::kSlice, "cols", {d}, cols);
  Attrs cat;
  cat.axis = 1;
  g.outputs = {g.add_node(OpKind::kConcat, "cat", {a, e}, cat)};
  ASSERT_TRUE(ir::verify(g).ok());
  ASSERT_EQ(g.value(g.outputs[0]).shape, (ir::Shape{kBatch, 4, 1, 3}));
  std::vector<float> input(20);
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(i);
  auto exec = Executor::create(g);
  ASSERT_TRUE(exec.ok()) << exec.error().message;
  auto out = exec.value()->run(input.data(), 1);
  ASSERT_TRUE(out.ok()) << out.error().message;
  const std::vector<float> expected{5, 7, 9, 10, 12, 14, 15, 17, 19, 2, 3, 4};
  ASSERT_EQ(out->size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ((*out)[i], expected[i]) << i;
}

}  // namespace
}  // namespace edgeopt::backend
