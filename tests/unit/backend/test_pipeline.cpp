#include <gtest/gtest.h>

#include "backend/executor.h"
#include "ir/text.h"
#include "pipeline/evaluate.h"
#include "pipeline/preprocess.h"

namespace edgeopt::pipeline {
namespace {

using ir::kBatch;

data::ImageSet gray_images(std::int64_t count, std::int64_t h, std::int64_t w) {
  data::ImageSet s;
  s.count = count;
  s.height = h;
  s.width = w;
  s.channels = 1;
  for (std::int64_t i = 0; i < count * h * w; ++i) s.pixels.push_back(static_cast<std::uint8_t>(i % 256));
  for (std::int64_t i = 0; i < count; ++i) s.labels.push_back(static_cast<std::int32_t>(i % 2));
  return s;
}

// A graph whose output is its input's per-sample mean over two halves: enough to run through
// evaluate() and check class counting.
ir::Graph two_class_model(const ir::Shape& input, ir::Layout layout) {
  ir::Graph g;
  const int x = g.add_input("x", input, layout);
  ir::Attrs flat;
  const int f = g.add_node(ir::OpKind::kFlatten, "flatten", {x}, flat);
  const std::int64_t n = ir::sample_elements(input);
  std::vector<float> w(static_cast<std::size_t>(2 * n), 0.0F);
  for (std::int64_t i = 0; i < n; ++i) w[static_cast<std::size_t>(i < n / 2 ? i : n + i)] = 1.0F;
  const int wid = g.add_constant("w", {2, n}, w);
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc", {f, wid})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

TEST(Preprocess, ScalesConvertsAndResizes) {
  const data::ImageSet images = gray_images(1, 2, 2);  // pixels 0,1,2,3
  InputSpec spec{ir::Layout::kNCHW, 3, 4, 4};
  std::vector<float> out;
  prepare_batch(images, 0, 1, spec, parse_normalization("unit").value(), out);
  ASSERT_EQ(out.size(), 3U * 4 * 4);
  EXPECT_FLOAT_EQ(out[0], 0.0F);                // top-left stays the first pixel
  EXPECT_FLOAT_EQ(out[15], 3.0F / 255.0F);      // bottom-right the last
  EXPECT_FLOAT_EQ(out[16 + 5], out[5]);         // gray replicated into every channel
  const auto notes = conversion_notes(images, spec);
  EXPECT_EQ(notes.size(), 2U);
}

TEST(Preprocess, NormalizationPresetsAndCustom) {
  const auto mnist = parse_normalization("mnist");
  ASSERT_TRUE(mnist.ok());
  const data::ImageSet images = gray_images(1, 1, 1);
  std::vector<float> out;
  prepare_batch(images, 0, 1, InputSpec{ir::Layout::kNCHW, 1, 1, 1}, mnist.value(), out);
  EXPECT_NEAR(out[0], (0.0F - 0.1307F) / 0.3081F, 1e-6);
  const auto custom = parse_normalization("mean=0.5;std=0.25");
  ASSERT_TRUE(custom.ok());
  EXPECT_EQ(custom->std[0], 0.25F);
  EXPECT_FALSE(parse_normalization("mean=0.5;std=0").ok());
  const auto bad = parse_normalization("zscore");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().hint.find("imagenet"), std::string::npos);
}

TEST(Evaluate, CountsCorrectAndReportsWilsonInterval) {
  ir::Graph g = two_class_model({kBatch, 1, 2, 2}, ir::Layout::kNCHW);
  auto exec = backend::Executor::create(g);
  ASSERT_TRUE(exec.ok()) << exec.error().to_string();
  const data::ImageSet images = gray_images(10, 2, 2);
  auto r = evaluate(*exec.value(), images, InputSpec{ir::Layout::kNCHW, 1, 2, 2}, parse_normalization("unit").value());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->samples, 10);
  EXPECT_LE(r->ci95_low, r->accuracy);
  EXPECT_GE(r->ci95_high, r->accuracy);
  const auto [lo, hi] = wilson_interval(95, 100);
  EXPECT_NEAR(lo, 0.8882, 1e-3);
  EXPECT_NEAR(hi, 0.9785, 1e-3);
}

TEST(Evaluate, RefusesDatasetWhoseClassesDoNotMatchOutputs) {
  ir::Graph g = two_class_model({kBatch, 1, 2, 2}, ir::Layout::kNCHW);
  auto exec = backend::Executor::create(g);
  ASSERT_TRUE(exec.ok());
  data::Dataset ds;
  ds.name = "three-classes";
  ds.class_names = {"a", "b", "c"};
  ds.test = gray_images(3, 2, 2);
  const Status s = check_labels_match(*exec.value(), ds);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kShapeMismatch);
  EXPECT_NE(s.error().message.find("3 classes"), std::string::npos);
}

}  // namespace
}  // namespace edgeopt::pipeline
