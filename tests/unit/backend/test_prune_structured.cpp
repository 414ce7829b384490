#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "backend/executor.h"
#include "format/eom.h"
#include "ir/text.h"
#include "technique_fixtures.h"
#include "techniques/channel_surgery.h"
#include "techniques/prune_structured.h"

namespace edgeopt::techniques {
namespace {

using fixtures::normal;

Context context_for(const ir::Graph& g, const data::ImageSet& train) {
  return fixtures::context_for(g, train, {ir::Layout::kNCHW, 1, 8, 8});
}


ir::Attrs conv_attrs(std::int64_t pad, std::int64_t group = 1) {
  ir::Attrs a;
  a.strides = {1, 1};
  a.pads = {pad, pad, pad, pad};
  a.dilations = {1, 1};
  a.group = group;
  return a;
}

ir::Attrs pool_attrs() {
  ir::Attrs a;
  a.kernel = {2, 2};
  a.strides = {2, 2};
  a.pads = {0, 0, 0, 0};
  a.dilations = {1, 1};
  return a;
}

int conv(ir::Graph& g, const std::string& name, int x, std::int64_t out, std::int64_t in, std::int64_t k, unsigned seed,
         std::int64_t group = 1) {
  const auto n = static_cast<std::size_t>(out * (in / group) * k * k);
  const float sd = std::sqrt(2.0F / static_cast<float>((in / group) * k * k));
  return g.add_node(ir::OpKind::kConv, name,
                    {x, g.add_constant(name + ".w", {out, in / group, k, k}, normal(n, seed, sd)),
                     g.add_constant(name + ".b", {out}, normal(static_cast<std::size_t>(out), seed + 100, 0.05F))},
                    conv_attrs(k / 2, group));
}

int bn(ir::Graph& g, const std::string& name, int x, std::int64_t c, unsigned seed) {
  auto positive = normal(static_cast<std::size_t>(c), seed + 3, 0.2F);
  for (auto& v : positive) v = 1.0F + std::abs(v);
  return g.add_node(ir::OpKind::kBatchNorm, name,
                    {x, g.add_constant(name + ".gamma", {c}, positive), g.add_constant(name + ".beta", {c}, normal(static_cast<std::size_t>(c), seed + 1, 0.1F)),
                     g.add_constant(name + ".mean", {c}, normal(static_cast<std::size_t>(c), seed + 2, 0.1F)), g.add_constant(name + ".var", {c}, positive)});
}

int gemm(ir::Graph& g, const std::string& name, int x, std::int64_t out, std::int64_t in, unsigned seed) {
  return g.add_node(ir::OpKind::kGemm, name,
                    {x, g.add_constant(name + ".w", {out, in}, normal(static_cast<std::size_t>(out * in), seed, std::sqrt(2.0F / static_cast<float>(in)))),
                     g.add_constant(name + ".b", {out}, normal(static_cast<std::size_t>(out), seed + 100, 0.05F))});
}

std::vector<float>& data(ir::Graph& g, const std::string& name) { return g.value(g.find(name).value()).f32; }

// Zeroes rows `rows` (of `per` values each) of a constant.
void zero_rows(std::vector<float>& v, const std::vector<std::int64_t>& rows, std::int64_t per) {
  for (auto r : rows) std::fill(v.begin() + r * per, v.begin() + (r + 1) * per, 0.0F);
}

std::vector<float> run(const ir::Graph& g, const std::vector<float>& x, std::int64_t batch) {
  auto exec = backend::Executor::create(g);
  EXPECT_TRUE(exec.ok()) << exec.error().to_string();
  auto y = exec.value()->run(x.data(), batch);
  EXPECT_TRUE(y.ok()) << y.error().to_string();
  return y.ok() ? y.value() : std::vector<float>{};
}

// Every dependency kind at once: conv-BN-ReLU, a depthwise conv, a residual Add, a Concat with a
// 1x1 branch, max-pooling, Flatten into a hidden Gemm, and the classifier.
TEST(PruneStructured, SurgeryComputesWhatTheOriginalDoesWhenRemovedChannelsAreZero) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 2, 8, 8}, ir::Layout::kNCHW);
  const int a = g.add_node(ir::OpKind::kRelu, "relu1", {bn(g, "bn1", conv(g, "conv1", x, 8, 2, 3, 1), 8, 2)});
  const int dw = conv(g, "dw", a, 8, 8, 3, 3, 8);
  const int b = conv(g, "conv2", dw, 8, 8, 1, 4);
  const int sum = g.add_node(ir::OpKind::kRelu, "relu2", {g.add_node(ir::OpKind::kAdd, "add", {a, b})});
  ir::Attrs cat;
  cat.axis = 1;
  int h = g.add_node(ir::OpKind::kConcat, "cat", {sum, conv(g, "conv3", sum, 4, 8, 1, 5)}, cat);
  h = g.add_node(ir::OpKind::kMaxPool, "pool", {h}, pool_attrs());
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  h = g.add_node(ir::OpKind::kRelu, "relu3", {gemm(g, "fc1", h, 16, 12 * 16, 6)});
  g.outputs = {gemm(g, "fc2", h, 3, 16, 7)};
  ASSERT_TRUE(ir::verify(g).ok());

  // The channels to remove carry nothing: zero filters and biases, BatchNorm shift zero.
  const std::vector<std::int64_t> gone_res{1, 4, 6};
  const std::vector<std::int64_t> gone_c3{0, 2};
  const std::vector<std::int64_t> gone_fc1{3, 5, 7, 8, 15};
  zero_rows(data(g, "conv1.w"), gone_res, 2 * 9);
  zero_rows(data(g, "conv1.b"), gone_res, 1);
  zero_rows(data(g, "bn1.beta"), gone_res, 1);
  zero_rows(data(g, "bn1.mean"), gone_res, 1);
  zero_rows(data(g, "dw.b"), gone_res, 1);
  zero_rows(data(g, "conv2.w"), gone_res, 8);
  zero_rows(data(g, "conv2.b"), gone_res, 1);
  zero_rows(data(g, "conv3.w"), gone_c3, 8);
  zero_rows(data(g, "conv3.b"), gone_c3, 1);
  zero_rows(data(g, "fc1.w"), gone_fc1, 12 * 16);
  zero_rows(data(g, "fc1.b"), gone_fc1, 1);

  auto complement = [](std::int64_t n, const std::vector<std::int64_t>& gone) {
    std::vector<std::int64_t> keep;
    for (std::int64_t i = 0; i < n; ++i) {
      if (std::find(gone.begin(), gone.end(), i) == gone.end()) keep.push_back(i);
    }
    return keep;
  };
  auto pruned = surgery::remove_channels(
      g, std::map<std::string, std::vector<std::int64_t>>{
             {"conv1", complement(8, gone_res)}, {"conv3", complement(4, gone_c3)}, {"fc1", complement(16, gone_fc1)}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  EXPECT_EQ(pruned->value(pruned->find("conv2.w").value()).shape, (ir::Shape{5, 5, 1, 1}));
  EXPECT_EQ(pruned->value(pruned->find("fc1.w").value()).shape, (ir::Shape{11, 7 * 16}));
  EXPECT_LT(surgery::total_macs(*pruned), surgery::total_macs(g) * 6 / 10);

  const std::int64_t batch = 4;
  const std::vector<float> input = normal(static_cast<std::size_t>(batch * 2 * 64), 9, 1.0F);
  const std::vector<float> before = run(g, input, batch);
  const std::vector<float> after = run(*pruned, input, batch);
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(before[i], after[i], 1e-4F) << i;
}

// Keras flattens NHWC: the surgery must pick every C-th feature of the dense layer's input.
TEST(PruneStructured, NhwcFlattenSurgeryComputesWhatTheOriginalDoes) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 6, 6}, ir::Layout::kNCHW);
  int h = g.add_node(ir::OpKind::kRelu, "relu1", {conv(g, "conv1", x, 6, 1, 3, 31)});
  ir::Attrs t;
  t.perm = {0, 2, 3, 1};
  h = g.add_node(ir::OpKind::kTranspose, "to_nhwc", {h}, t);
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  g.outputs = {gemm(g, "fc", h, 3, 6 * 36, 32)};
  ASSERT_TRUE(ir::verify(g).ok());
  zero_rows(data(g, "conv1.w"), {1, 4}, 9);
  zero_rows(data(g, "conv1.b"), {1, 4}, 1);
  auto pruned = surgery::remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv1", {0, 2, 3, 5}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  EXPECT_EQ(pruned->value(pruned->find("fc.w").value()).shape, (ir::Shape{3, 4 * 36}));
  const std::vector<float> input = normal(3 * 36, 33, 1.0F);
  const std::vector<float> before = run(g, input, 3);
  const std::vector<float> after = run(*pruned, input, 3);
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(before[i], after[i], 1e-4F) << i;
}

// Four classes of 8x8 gray images: a bright bar, vertical or horizontal, in the left/top or the
// right/bottom half.
data::ImageSet bars(std::int64_t count, unsigned seed) {
  data::ImageSet s;
  s.count = count;
  s.height = 8;
  s.width = 8;
  s.channels = 1;
  std::mt19937 rng(seed);
  for (std::int64_t i = 0; i < count; ++i) {
    const int label = static_cast<int>(rng() % 4);
    const int at = static_cast<int>(rng() % 4) + (label % 2 == 1 ? 4 : 0);
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const bool on = label < 2 ? x == at : y == at;
        s.pixels.push_back(static_cast<std::uint8_t>((on ? 160 : 40) + rng() % 70));
      }
    }
    s.labels.push_back(label);
  }
  return s;
}

// conv(16)-BN-ReLU-pool, conv(32)-BN-ReLU, flatten, dense(64)-ReLU, dense(4).
ir::Graph small_cnn() {
  ir::Graph g;
  g.name = "cnn";
  const int x = g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  int h = g.add_node(ir::OpKind::kRelu, "relu1", {bn(g, "bn1", conv(g, "conv1", x, 16, 1, 3, 11), 16, 12)});
  h = g.add_node(ir::OpKind::kMaxPool, "pool", {h}, pool_attrs());
  h = g.add_node(ir::OpKind::kRelu, "relu2", {bn(g, "bn2", conv(g, "conv2", h, 32, 16, 3, 13), 32, 14)});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  h = g.add_node(ir::OpKind::kRelu, "relu3", {gemm(g, "fc1", h, 64, 32 * 16, 15)});
  g.outputs = {gemm(g, "fc2", h, 4, 64, 16)};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

double accuracy(const ir::Graph& g, const data::ImageSet& s, const Context& ctx) { return fixtures::top1(g, s, ctx); }

class PruneStructuredTrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new data::ImageSet(bars(3000, 21));
    test_ = new data::ImageSet(bars(1000, 22));
    trained_ = new ir::Graph(small_cnn());
    Context ctx = context_for(*trained_, *train_);
    std::vector<float> x;
    pipeline::prepare_batch(*train_, 0, train_->count, ctx.spec, ctx.norm, x);
    backend::TrainOptions o;
    o.epochs = 3;
    o.learning_rate = 2e-3F;
    auto r = backend::train(*trained_, x.data(), train_->labels.data(), train_->count, o);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
    delete trained_;
  }
  static PruneStructuredOptions quick() {
    PruneStructuredOptions o;
    o.max_train_images = 3000;
    o.epochs_per_step = 1;
    o.final_epochs = 1;
    return o;
  }
  static data::ImageSet* train_;
  static data::ImageSet* test_;
  static ir::Graph* trained_;
};
data::ImageSet* PruneStructuredTrained::train_ = nullptr;
data::ImageSet* PruneStructuredTrained::test_ = nullptr;
ir::Graph* PruneStructuredTrained::trained_ = nullptr;

TEST_F(PruneStructuredTrained, RemovesChannelsCutsMacsAndKeepsAccuracy) {
  const Context ctx = context_for(*trained_, *train_);
  const double acc_before = accuracy(*trained_, *test_, ctx);
  ASSERT_GT(acc_before, 0.9);
  std::vector<double> fractions;
  Context observed = ctx;
  observed.progress = [&](double f, const std::string&) { fractions.push_back(f); };
  auto out = PruneStructured(quick()).run(observed);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  ir::Graph& pruned = out->graph;
  ASSERT_TRUE(ir::verify(pruned).ok());
  // Channels are really gone: the weights are smaller tensors, the classifier keeps its 4 outputs.
  const ir::Shape w1 = pruned.value(pruned.find("conv1.w").value()).shape;
  const ir::Shape w2 = pruned.value(pruned.find("conv2.w").value()).shape;
  const ir::Shape f1 = pruned.value(pruned.find("fc1.w").value()).shape;
  const ir::Shape f2 = pruned.value(pruned.find("fc2.w").value()).shape;
  EXPECT_LT(w1[0], 16);
  EXPECT_LT(w2[0], 32);
  EXPECT_EQ(w2[1], w1[0]);
  EXPECT_EQ(f1[1], w2[0] * 16);
  EXPECT_EQ(f2[0], 4);
  EXPECT_EQ(f2[1], f1[0]);
  const double macs_ratio = static_cast<double>(surgery::total_macs(pruned)) / static_cast<double>(surgery::total_macs(*trained_));
  EXPECT_LE(macs_ratio, 0.70);
  EXPECT_LT(pruned.param_count(), trained_->param_count());
  // Fine-tuned: still accurate on images it never saw.
  const double acc_after = accuracy(pruned, *test_, ctx);
  EXPECT_GT(acc_after, 0.9);
  EXPECT_GT(acc_after, acc_before - 0.05);
  // The deployable file is dense and smaller.
  const auto dir = std::filesystem::temp_directory_path();
  const std::string dense = (dir / "edgeopt_ps_dense.eom").string();
  const std::string small = (dir / "edgeopt_ps_small.eom").string();
  ASSERT_TRUE(format::write_eom(*trained_, dense).ok());
  ASSERT_TRUE(format::write_eom(pruned, small, out->encoding).ok());
  EXPECT_LT(std::filesystem::file_size(small), std::filesystem::file_size(dense) * 8 / 10);
  auto reread = format::read_eom(small);
  ASSERT_TRUE(reread.ok()) << reread.error().to_string();
  EXPECT_NEAR(accuracy(*reread, *test_, ctx), acc_after, 1e-9);
  std::filesystem::remove(dense);
  std::filesystem::remove(small);
  // Progress moved forward to 1; the notes say which layers shrank and which stayed.
  ASSERT_FALSE(fractions.empty());
  EXPECT_TRUE(std::is_sorted(fractions.begin(), fractions.end()));
  EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
  std::string notes;
  for (const auto& n : out->notes) notes += n + "\n";
  EXPECT_NE(notes.find("'conv2' 32 -> " + std::to_string(w2[0])), std::string::npos) << notes;
  EXPECT_NE(notes.find("'fc2'"), std::string::npos) << notes;
}

TEST_F(PruneStructuredTrained, GlobalRankingAlsoReachesTheTarget) {
  PruneStructuredOptions o = quick();
  o.global_ranking = true;
  o.steps = 1;
  auto out = PruneStructured(o).run(context_for(*trained_, *train_));
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_LE(static_cast<double>(surgery::total_macs(out->graph)) / static_cast<double>(surgery::total_macs(*trained_)), 1.0 - o.target_mac_reduction + 1e-9);
}

TEST_F(PruneStructuredTrained, CancelStopsWithAnError) {
  Context ctx = context_for(*trained_, *train_);
  ctx.cancelled = [] { return true; };
  auto out = PruneStructured(quick()).run(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("cancelled"), std::string::npos);
}

TEST(PruneStructured, AModelWithNothingToPruneIsAnErrorNamingTheLayer) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  g.outputs = {gemm(g, "classifier", g.add_node(ir::OpKind::kFlatten, "flatten", {x}), 4, 64, 1)};
  ASSERT_TRUE(ir::verify(g).ok());
  const data::ImageSet train = bars(64, 1);
  auto out = PruneStructured().run(context_for(g, train));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(out.error().message.find("'classifier'"), std::string::npos) << out.error().message;
}

}  // namespace
}  // namespace edgeopt::techniques
