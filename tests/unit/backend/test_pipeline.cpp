#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "backend/executor.h"
#include "ir/text.h"
#include "pipeline/benchmark.h"
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

// Three outputs equal to the three pixels of a 1x3 gray image: the prediction is the brightest
// pixel, so a hand-made set of images has a known confusion matrix.
ir::Graph brightest_pixel_model() {
  ir::Graph g;
  const int x = g.add_input("x", {kBatch, 1, 1, 3}, ir::Layout::kNCHW);
  const int f = g.add_node(ir::OpKind::kFlatten, "flatten", {x}, ir::Attrs{});
  const int w = g.add_constant("w", {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc", {f, w})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

data::ImageSet pixel_images(const std::vector<std::array<std::uint8_t, 3>>& pixels, const std::vector<std::int32_t>& labels) {
  data::ImageSet s;
  s.count = static_cast<std::int64_t>(pixels.size());
  s.height = 1;
  s.width = 3;
  s.channels = 1;
  for (const auto& p : pixels) s.pixels.insert(s.pixels.end(), p.begin(), p.end());
  s.labels = labels;
  return s;
}

TEST(Evaluate, CountsPerClassAndTheConfusionMatrixInTheSamePass) {
  auto exec = backend::Executor::create(brightest_pixel_model());
  ASSERT_TRUE(exec.ok()) << exec.error().to_string();
  // true label -> predicted (the bright pixel): 0->0, 0->1, 1->1, 1->2, 1->0; class 2 has no image.
  const data::ImageSet images = pixel_images({{9, 0, 0}, {0, 9, 0}, {0, 9, 0}, {0, 0, 9}, {9, 0, 0}}, {0, 0, 1, 1, 1});
  EvalOptions options;
  options.batch_size = 2;  // counts carry across batches
  auto r = evaluate(*exec.value(), images, InputSpec{ir::Layout::kNCHW, 1, 1, 3}, parse_normalization("unit").value(), options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->samples, 5);
  EXPECT_EQ(r->correct, 2);
  const ClassCounts& c = r->per_class;
  EXPECT_EQ(c.support, (std::vector<std::int64_t>{2, 3, 0}));
  EXPECT_EQ(c.correct, (std::vector<std::int64_t>{1, 1, 0}));
  EXPECT_EQ(c.confusion, (std::vector<std::vector<std::int64_t>>{{1, 1, 0}, {1, 1, 1}, {0, 0, 0}}));
  const auto accuracy = c.accuracy();
  ASSERT_EQ(accuracy.size(), 3U);
  EXPECT_DOUBLE_EQ(*accuracy[0], 0.5);
  EXPECT_DOUBLE_EQ(*accuracy[1], 1.0 / 3.0);
  EXPECT_FALSE(accuracy[2].has_value());  // no support: no accuracy, not 0
  // --limit scores the first images only, and the counts follow.
  options.limit = 2;
  auto first = evaluate(*exec.value(), images, InputSpec{ir::Layout::kNCHW, 1, 1, 3}, parse_normalization("unit").value(), options);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->per_class.support, (std::vector<std::int64_t>{2, 0, 0}));
  EXPECT_EQ(first->per_class.confusion[0], (std::vector<std::int64_t>{1, 1, 0}));
}

TEST(Evaluate, RefusesALabelBeyondTheModelsOutputs) {
  auto exec = backend::Executor::create(brightest_pixel_model());
  ASSERT_TRUE(exec.ok());
  const data::ImageSet images = pixel_images({{9, 0, 0}, {0, 9, 0}}, {0, 3});
  auto r = evaluate(*exec.value(), images, InputSpec{ir::Layout::kNCHW, 1, 1, 3}, parse_normalization("unit").value());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kShapeMismatch);
  EXPECT_NE(r.error().message.find("label 3"), std::string::npos) << r.error().message;
}

TEST(HostLatency, RoundSpreadFlagsRoundsThatDisagree) {
  EXPECT_DOUBLE_EQ(round_spread({}), 1.0);
  EXPECT_DOUBLE_EQ(round_spread({0.5}), 1.0);
  EXPECT_DOUBLE_EQ(round_spread({1.0, 1.1, 1.05}), 1.1);
  EXPECT_DOUBLE_EQ(round_spread({2.0, 1.0, 1.2}), 2.0);  // order does not matter
  EXPECT_DOUBLE_EQ(round_spread({0.0, 1.0}), 1.0);      // a zero reading is no ratio
  EXPECT_FALSE(spread_is_unstable(round_spread({1.0, 1.1, 1.05})));
  EXPECT_FALSE(spread_is_unstable(kMaxStableSpread));
  EXPECT_TRUE(spread_is_unstable(round_spread({2.0, 1.0, 1.2})));
  HostLatency quiet;
  quiet.rounds_p50_1t = {1.0, 1.02, 1.01};
  quiet.rounds_p50_all = {0.5, 0.51, 0.5};
  EXPECT_EQ(unstable_note(quiet), "");
  HostLatency busy;
  busy.all_threads = 2;
  busy.rounds_p50_1t = {1.0, 2.5, 1.1};
  busy.spread_1t = round_spread(busy.rounds_p50_1t);
  busy.rounds_p50_all = {0.5, 0.55, 0.5};
  busy.spread_all = round_spread(busy.rounds_p50_all);
  busy.unstable = true;
  const std::string note = unstable_note(busy);
  EXPECT_NE(note.find("2.50x at 1 thread (1, 2.5, 1.1 ms)"), std::string::npos) << note;
  EXPECT_NE(note.find("1.10x at 2 threads"), std::string::npos) << note;
}

TEST(HostLatency, MeasurementReportsEveryRound) {
  const ir::Graph g = brightest_pixel_model();
  auto timed = measure_host_latency({&g}, {std::vector<float>{0.1F, 0.2F, 0.3F}}, 5);
  ASSERT_TRUE(timed.ok()) << timed.error().to_string();
  const HostLatency& t = timed.value()[0];
  ASSERT_EQ(t.rounds_p50_1t.size(), 3U);
  ASSERT_EQ(t.rounds_p50_all.size(), 3U);
  // The reported p50 is the best round's, and the flag is the criterion on the rounds reported.
  EXPECT_DOUBLE_EQ(t.p50_1t, *std::min_element(t.rounds_p50_1t.begin(), t.rounds_p50_1t.end()));
  EXPECT_DOUBLE_EQ(t.spread_1t, round_spread(t.rounds_p50_1t));
  EXPECT_DOUBLE_EQ(t.spread_all, round_spread(t.rounds_p50_all));
  EXPECT_EQ(t.unstable, spread_is_unstable(t.spread_1t) || spread_is_unstable(t.spread_all));
}

}  // namespace
}  // namespace edgeopt::pipeline
