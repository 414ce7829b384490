#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "backend/executor.h"
#include "format/eom.h"
#include "ir/text.h"
#include "technique_fixtures.h"
#include "techniques/int8.h"
#include "techniques/ptq_int8.h"
#include "techniques/qat_int8.h"

namespace edgeopt::techniques {
namespace {

using fixtures::normal;

Context context_for(const ir::Graph& g, const data::ImageSet& train) {
  return fixtures::context_for(g, train, {ir::Layout::kNCHW, 1, 8, 8});
}


// Two classes of 8x8 gray images: a bright vertical or horizontal bar at a random place.
data::ImageSet bars(std::int64_t count, unsigned seed) {
  data::ImageSet s;
  s.count = count;
  s.height = 8;
  s.width = 8;
  s.channels = 1;
  std::mt19937 rng(seed);
  for (std::int64_t i = 0; i < count; ++i) {
    const int label = static_cast<int>(rng() % 2);
    const int at = static_cast<int>(rng() % 8);
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const bool on = label == 0 ? x == at : y == at;
        s.pixels.push_back(static_cast<std::uint8_t>((on ? 170 : 40) + rng() % 60));
      }
    }
    s.labels.push_back(label);
  }
  return s;
}

// conv-BN-ReLU, max-pool, a residual block, global pooling and a dense classifier.
ir::Graph small_cnn() {
  ir::Graph g;
  g.name = "cnn";
  const int x = g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  ir::Attrs conv;
  conv.kernel = {3, 3};
  conv.strides = {1, 1};
  conv.pads = {1, 1, 1, 1};
  conv.dilations = {1, 1};
  conv.group = 1;
  int h = g.add_node(ir::OpKind::kConv, "conv1", {x, g.add_constant("w1", {16, 1, 3, 3}, normal(144, 1, 0.5F))}, conv);
  ir::Attrs bn;
  bn.epsilon = 1e-5F;
  h = g.add_node(ir::OpKind::kBatchNorm, "bn1",
                 {h, g.add_constant("gamma", {16}, std::vector<float>(16, 1.0F)), g.add_constant("beta", {16}, std::vector<float>(16, 0.1F)),
                  g.add_constant("mean", {16}, std::vector<float>(16, 0.0F)), g.add_constant("var", {16}, std::vector<float>(16, 1.0F))},
                 bn);
  h = g.add_node(ir::OpKind::kRelu, "relu1", {h});
  ir::Attrs pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  pool.pads = {0, 0, 0, 0};
  pool.dilations = {1, 1};
  h = g.add_node(ir::OpKind::kMaxPool, "pool", {h}, pool);
  int r = g.add_node(ir::OpKind::kConv, "conv2", {h, g.add_constant("w2", {16, 16, 3, 3}, normal(16 * 16 * 9, 2, 0.1F)),
                                                  g.add_constant("b2", {16}, std::vector<float>(16, 0.0F))}, conv);
  h = g.add_node(ir::OpKind::kAdd, "add", {h, r});
  h = g.add_node(ir::OpKind::kRelu, "relu2", {h});
  h = g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc", {h, g.add_constant("wf", {2, 16}, normal(32, 3, 0.3F)),
                                                    g.add_constant("bf", {2}, std::vector<float>(2, 0.0F))})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

std::vector<float> inputs_of(const data::ImageSet& s, const Context& ctx) {
  std::vector<float> x;
  pipeline::prepare_batch(s, 0, s.count, ctx.spec, ctx.norm, x);
  return x;
}

double accuracy(const ir::Graph& g, const data::ImageSet& s, const Context& ctx) { return fixtures::top1(g, s, ctx); }

class Int8Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new data::ImageSet(bars(2000, 7));
    test_ = new data::ImageSet(bars(1000, 8));
    trained_ = new ir::Graph(small_cnn());
    Context ctx = context_for(*trained_, *train_);
    const auto x = inputs_of(*train_, ctx);
    backend::TrainOptions o;
    o.epochs = 3;
    o.learning_rate = 3e-3F;
    auto r = backend::train(*trained_, x.data(), train_->labels.data(), train_->count, o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
    delete trained_;
  }
  static data::ImageSet* train_;
  static data::ImageSet* test_;
  static ir::Graph* trained_;
};
data::ImageSet* Int8Test::train_ = nullptr;
data::ImageSet* Int8Test::test_ = nullptr;
ir::Graph* Int8Test::trained_ = nullptr;

TEST_F(Int8Test, BatchNormFoldingKeepsTheFunction) {
  ir::Graph folded = *trained_;
  EXPECT_EQ(int8::fold_batchnorm(folded), 1);
  ASSERT_TRUE(ir::verify(folded).ok());
  EXPECT_TRUE(std::none_of(folded.nodes.begin(), folded.nodes.end(), [](const ir::Node& n) { return n.op == ir::OpKind::kBatchNorm; }));
  Context ctx = context_for(*trained_, *test_);
  const auto x = inputs_of(*test_, ctx);
  auto a = backend::Executor::create(*trained_).value()->run(x.data(), 64).value();
  auto b = backend::Executor::create(folded).value()->run(x.data(), 64).value();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4F * (1 + std::abs(a[i])));
}

TEST_F(Int8Test, RangeMethodsBehave) {
  int8::Histogram h;
  h.min = 0;
  h.max = 100;
  h.counts.assign(1000, 0.0);
  for (int b = 0; b < 100; ++b) h.counts[static_cast<std::size_t>(b)] = 1000;  // mass in [0, 10)
  h.counts[999] = 1;                                                              // one outlier at 100
  const auto minmax = int8::choose_range(h, int8::RangeMethod::kMinMax);
  const auto percentile = int8::choose_range(h, int8::RangeMethod::kPercentile);
  const auto mse = int8::choose_range(h, int8::RangeMethod::kMse);
  EXPECT_NEAR(minmax.scales[0], 100.0 / 255, 1e-5);
  EXPECT_EQ(minmax.zero_points[0], 0);
  EXPECT_LT(percentile.scales[0], minmax.scales[0] / 5);  // the outlier is clipped
  EXPECT_LT(mse.scales[0], minmax.scales[0]);
  // Negative values get a zero point that represents 0 exactly.
  h.min = -50;
  const auto signed_range = int8::choose_range(h, int8::RangeMethod::kMinMax);
  EXPECT_NEAR(signed_range.zero_points[0], 85, 1);
}

TEST_F(Int8Test, RunsOnInt8KernelsWithFloatLikeAccuracy) {
  const Context ctx = context_for(*trained_, *train_);
  PtqInt8 technique;
  auto out = technique.run(ctx);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(out->precision, "int8");
  const ir::Graph& q = out->graph;
  // Weights: per-channel int8 codes in [-127, 127].
  int quantized_weights = 0;
  for (const char* name : {"w1", "w2", "wf"}) {
    const ir::Value& w = q.value(q.find(name).value());
    ASSERT_TRUE(w.quant.has_value()) << name;
    ++quantized_weights;
    const std::size_t per = w.f32.size() / w.quant->scales.size();
    for (std::size_t i = 0; i < w.f32.size(); ++i) {
      const float code = w.f32[i] / w.quant->scales[i / per];
      EXPECT_NEAR(code, std::round(code), 1e-3) << name;
      EXPECT_LE(std::abs(code), 127.0F + 1e-3F);
    }
  }
  EXPECT_EQ(quantized_weights, 3);
  const double fp32 = accuracy(*trained_, *test_, ctx);
  const double int8 = accuracy(q, *test_, ctx);
  EXPECT_GT(fp32, 0.9);
  EXPECT_NEAR(int8, fp32, 0.02);
  // The int8 executor's activations lie on their uint8 grid: they were computed as int8 tensors.
  // Probe the residual block's output (add + ReLU, fused into one int8 kernel).
  int probe = -1;
  for (const ir::Node& n : q.nodes) {
    if (n.op == ir::OpKind::kRelu) probe = n.outputs[0];
  }
  ASSERT_GE(probe, 0);
  ASSERT_TRUE(q.value(probe).quant.has_value());
  auto exec = backend::Executor::create(q);
  ASSERT_TRUE(exec.ok());
  const auto x = inputs_of(*test_, ctx);
  auto values = exec.value()->run_values(x.data(), 16, {probe});
  ASSERT_TRUE(values.ok()) << values.error().to_string();
  const float scale = q.value(probe).quant->scales[0];
  for (float v : values->at(0)) {
    const float code = v / scale;
    EXPECT_NEAR(code, std::round(code), 1e-2);
  }
}

TEST_F(Int8Test, FileStoresInt8AndKeepsActivationRanges) {
  const Context ctx = context_for(*trained_, *train_);
  auto out = PtqInt8().run(ctx);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / "edgeopt_int8_test.eom").string();
  ASSERT_TRUE(format::write_eom(out->graph, path, out->encoding).ok());
  auto model = format::read_eom_model(path);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  int int8_tensors = 0;
  for (const auto& [id, tensor] : model->encoded) int8_tensors += tensor.kind == format::EncodingKind::kInt8 ? 1 : 0;
  EXPECT_EQ(int8_tensors, 3);
  // Read back, the file runs on the int8 kernels and gives the same logits.
  const auto x = inputs_of(*test_, ctx);
  auto a = backend::Executor::create(out->graph).value()->run(x.data(), 100).value();
  auto b = backend::Executor::create(model->graph).value()->run(x.data(), 100).value();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i], b[i]);
  std::filesystem::remove(path);
}

TEST_F(Int8Test, QatIsNoWorseThanPtq) {
  const Context ctx = context_for(*trained_, *train_);
  auto ptq = PtqInt8().run(ctx);
  ASSERT_TRUE(ptq.ok()) << ptq.error().to_string();
  QatInt8Options o;
  o.epochs = 1;
  o.max_train_images = 2000;
  auto qat = QatInt8(o).run(ctx);
  ASSERT_TRUE(qat.ok()) << qat.error().to_string();
  EXPECT_EQ(qat->precision, "int8");
  EXPECT_GE(accuracy(qat->graph, *test_, ctx) + 0.005, accuracy(ptq->graph, *test_, ctx));
}

TEST_F(Int8Test, CancellationStopsCalibration) {
  Context ctx = context_for(*trained_, *train_);
  ctx.cancelled = [] { return true; };
  auto out = PtqInt8().run(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("cancelled"), std::string::npos);
}

TEST(Int8Graph, ModelWithoutWeightsIsRefusedWithAReason) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  g.outputs = {g.add_node(ir::OpKind::kRelu, "relu", {x})};
  ASSERT_TRUE(ir::verify(g).ok());
  data::ImageSet train = bars(64, 1);
  const Context ctx = context_for(g, train);
  auto out = PtqInt8().run(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("no Conv or Gemm"), std::string::npos);
}

}  // namespace
}  // namespace edgeopt::techniques
