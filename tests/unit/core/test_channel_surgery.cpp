#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "importers/import.h"
#include "ir/text.h"
#include "techniques/channel_surgery.h"

namespace edgeopt::techniques::surgery {
namespace {

std::vector<float> ramp(std::size_t n, float scale, unsigned salt = 0) {
  std::vector<float> v(n);
  std::mt19937 rng(static_cast<unsigned>(n) * 7919U + salt);
  std::uniform_real_distribution<float> d(-1.0F, 1.0F);
  for (auto& x : v) x = scale * d(rng);
  return v;
}

ir::Attrs conv_attrs(std::int64_t pad, std::int64_t group = 1) {
  ir::Attrs a;
  a.strides = {1, 1};
  a.pads = {pad, pad, pad, pad};
  a.dilations = {1, 1};
  a.group = group;
  return a;
}

int conv(ir::Graph& g, const std::string& name, int x, std::int64_t out, std::int64_t in, std::int64_t k, std::int64_t group = 1) {
  const auto n = static_cast<std::size_t>(out * (in / group) * k * k);
  const int w = g.add_constant(name + ".w", {out, in / group, k, k}, ramp(n, 0.5F));
  const int b = g.add_constant(name + ".b", {out}, ramp(static_cast<std::size_t>(out), 0.1F));
  return g.add_node(ir::OpKind::kConv, name, {x, w, b}, conv_attrs(k / 2, group));
}

int bn(ir::Graph& g, const std::string& name, int x, std::int64_t c) {
  std::vector<float> var(static_cast<std::size_t>(c), 1.0F);
  return g.add_node(ir::OpKind::kBatchNorm, name,
                    {x, g.add_constant(name + ".gamma", {c}, ramp(static_cast<std::size_t>(c), 1.0F)),
                     g.add_constant(name + ".beta", {c}, ramp(static_cast<std::size_t>(c), 0.1F, 1)),
                     g.add_constant(name + ".mean", {c}, ramp(static_cast<std::size_t>(c), 0.1F, 2)), g.add_constant(name + ".var", {c}, var)});
}

int pool(ir::Graph& g, int x) {
  ir::Attrs a;
  a.kernel = {2, 2};
  a.strides = {2, 2};
  a.pads = {0, 0, 0, 0};
  a.dilations = {1, 1};
  return g.add_node(ir::OpKind::kMaxPool, "pool", {x}, a);
}

int gemm(ir::Graph& g, const std::string& name, int x, std::int64_t out, std::int64_t in) {
  return g.add_node(ir::OpKind::kGemm, name, {x, g.add_constant(name + ".w", {out, in}, ramp(static_cast<std::size_t>(out * in), 0.3F)),
                                              g.add_constant(name + ".b", {out}, ramp(static_cast<std::size_t>(out), 0.1F, 3))});
}

// conv1(8)-bn-relu-pool, conv2(6)-relu, flatten, fc1(16)-relu, fc2(3).
ir::Graph chain() {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  int h = conv(g, "conv1", x, 8, 1, 3);
  h = g.add_node(ir::OpKind::kRelu, "relu1", {bn(g, "bn1", h, 8)});
  h = pool(g, h);
  h = g.add_node(ir::OpKind::kRelu, "relu2", {conv(g, "conv2", h, 6, 8, 3)});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  h = g.add_node(ir::OpKind::kRelu, "relu3", {gemm(g, "fc1", h, 16, 6 * 4 * 4)});
  g.outputs = {gemm(g, "fc2", h, 3, 16)};
  const Status verified = ir::verify(g);
  EXPECT_TRUE(verified.ok()) << verified.error().to_string();
  return g;
}

const std::vector<float>& data(const ir::Graph& g, const std::string& name) { return g.value(g.find(name).value()).f32; }
const ir::Shape& shape(const ir::Graph& g, const std::string& name) { return g.value(g.find(name).value()).shape; }
const ChannelGroup& group_of(const ChannelPlan& plan, const std::string& layer) {
  for (const ChannelGroup& group : plan.groups) {
    if (std::find(group.layers.begin(), group.layers.end(), layer) != group.layers.end()) return group;
  }
  ADD_FAILURE() << "no group for " << layer;
  return plan.groups.front();
}

TEST(ChannelSurgery, ChainGroupsAndTheClassifierIsNeverPruned) {
  const ir::Graph g = chain();
  auto plan = analyze(g);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  ASSERT_EQ(plan->groups.size(), 4U);
  EXPECT_TRUE(group_of(*plan, "conv1").prunable);
  EXPECT_TRUE(group_of(*plan, "conv2").prunable);
  EXPECT_TRUE(group_of(*plan, "fc1").prunable);
  EXPECT_FALSE(group_of(*plan, "fc2").prunable);
  EXPECT_NE(group_of(*plan, "fc2").reason.find("classifier"), std::string::npos);
  EXPECT_EQ(group_of(*plan, "conv2").importance.size(), 6U);
}

TEST(ChannelSurgery, ChainSlicesEveryDependentTensor) {
  const ir::Graph g = chain();
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv1", {5, 0, 2}}, {"conv2", {1, 3}}, {"fc1", {0, 1, 2, 3, 4, 5, 6, 7}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  const ir::Graph& p = *pruned;
  EXPECT_EQ(shape(p, "conv1.w"), (ir::Shape{3, 1, 3, 3}));
  EXPECT_EQ(shape(p, "conv1.b"), (ir::Shape{3}));
  for (const char* v : {"bn1.gamma", "bn1.beta", "bn1.mean", "bn1.var"}) EXPECT_EQ(shape(p, v), (ir::Shape{3})) << v;
  EXPECT_EQ(shape(p, "conv2.w"), (ir::Shape{2, 3, 3, 3}));
  EXPECT_EQ(shape(p, "fc1.w"), (ir::Shape{8, 2 * 16}));
  EXPECT_EQ(shape(p, "fc2.w"), (ir::Shape{3, 8}));
  // Values: conv1 keeps filters 0, 2, 5 in order; BatchNorm follows; fc1 keeps the H*W features
  // of channels 1 and 3.
  EXPECT_EQ(data(p, "conv1.w")[9], data(g, "conv1.w")[2 * 9]);
  EXPECT_EQ(data(p, "conv1.b")[2], data(g, "conv1.b")[5]);
  EXPECT_EQ(data(p, "bn1.gamma")[1], data(g, "bn1.gamma")[2]);
  EXPECT_EQ(data(p, "conv2.w")[0], data(g, "conv2.w")[1 * 8 * 9 + 0]);    // filter 1, in channel 0
  EXPECT_EQ(data(p, "conv2.w")[9 + 4], data(g, "conv2.w")[1 * 8 * 9 + 2 * 9 + 4]);  // in channel 2
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(data(p, "fc1.w")[static_cast<std::size_t>(j)], data(g, "fc1.w")[static_cast<std::size_t>(16 + j)]);
    EXPECT_EQ(data(p, "fc1.w")[static_cast<std::size_t>(16 + j)], data(g, "fc1.w")[static_cast<std::size_t>(3 * 16 + j)]);
  }
  EXPECT_EQ(data(p, "fc2.w")[8], data(g, "fc2.w")[16]);  // row 1 keeps columns 0..7
  ir::Graph copy = p;
  EXPECT_TRUE(ir::verify(copy).ok());
  EXPECT_LT(p.param_count(), g.param_count());
  EXPECT_LT(total_macs(p), total_macs(g));
  EXPECT_EQ(p.value(p.outputs[0]).shape, (ir::Shape{ir::kBatch, 3}));
}

TEST(ChannelSurgery, ShrinkKeepsTheMostImportantShare) {
  const ir::Graph g = chain();
  auto half = shrink(g, 0.5);
  ASSERT_TRUE(half.ok()) << half.error().to_string();
  EXPECT_EQ(shape(*half, "conv1.w")[0], 4);
  EXPECT_EQ(shape(*half, "conv2.w")[0], 3);
  EXPECT_EQ(shape(*half, "fc1.w"), (ir::Shape{8, 3 * 16}));
  EXPECT_LT(total_macs(*half), total_macs(g) / 2);
  // The kept conv1 filters are those with the largest L1 norms.
  auto plan = analyze(g);
  const auto keep = most_important(group_of(*plan, "conv1").importance, 4);
  for (std::size_t i = 0; i < keep.size(); ++i) {
    EXPECT_EQ(data(*half, "conv1.w")[i * 9], data(g, "conv1.w")[static_cast<std::size_t>(keep[i]) * 9]);
  }
  EXPECT_EQ(most_important({0.5, 3.0, 1.0, 3.0}, 2), (std::vector<std::int64_t>{1, 3}));
}

TEST(ChannelSurgery, BatchNormScaledImportanceUsesGamma) {
  ir::Graph g = chain();
  auto& gamma = g.value(g.find("bn1.gamma").value()).f32;
  std::fill(gamma.begin(), gamma.end(), 1.0F);
  gamma[3] = 0.0F;  // channel 3 is switched off by its BatchNorm, whatever its filter
  auto plan = analyze(g, Importance::kBnScaledL1);
  ASSERT_TRUE(plan.ok());
  const auto& imp = group_of(*plan, "conv1").importance;
  EXPECT_EQ(imp[3], 0.0);
  EXPECT_EQ(most_important(imp, 7).size(), 7U);
  const auto keep = most_important(imp, 7);
  EXPECT_EQ(std::find(keep.begin(), keep.end(), 3), keep.end());
}

// conv_a(4)-relu, conv_b(4) on it, add(relu, conv_b): a residual block; then GAP, flatten, fc.
ir::Graph residual() {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 2, 6, 6}, ir::Layout::kNCHW);
  const int a = g.add_node(ir::OpKind::kRelu, "relu_a", {conv(g, "conv_a", x, 4, 2, 3)});
  const int b = conv(g, "conv_b", a, 4, 4, 3);
  int h = g.add_node(ir::OpKind::kAdd, "add", {a, b});
  h = g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  g.outputs = {gemm(g, "fc", h, 2, 4)};
  const Status verified = ir::verify(g);
  EXPECT_TRUE(verified.ok()) << verified.error().to_string();
  return g;
}

TEST(ChannelSurgery, ResidualAddPrunesItsInputsIdentically) {
  const ir::Graph g = residual();
  auto plan = analyze(g);
  ASSERT_TRUE(plan.ok());
  const ChannelGroup& tied = group_of(*plan, "conv_a");
  EXPECT_EQ(tied.layers, (std::vector<std::string>{"conv_a", "conv_b"}));
  EXPECT_TRUE(tied.prunable);
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv_b", {1, 2}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  EXPECT_EQ(shape(*pruned, "conv_a.w"), (ir::Shape{2, 2, 3, 3}));
  EXPECT_EQ(shape(*pruned, "conv_b.w"), (ir::Shape{2, 2, 3, 3}));
  EXPECT_EQ(shape(*pruned, "fc.w"), (ir::Shape{2, 2}));
  EXPECT_EQ(data(*pruned, "conv_a.b")[0], data(g, "conv_a.b")[1]);
  // Two different keep sets for one group are refused, naming both layers.
  auto clash = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv_a", {0, 1}}, {"conv_b", {1, 2}}});
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.error().message.find("conv_a"), std::string::npos);
  EXPECT_NE(clash.error().message.find("conv_b"), std::string::npos);
}

TEST(ChannelSurgery, AddWithTheGraphInputKeepsChannelsWhole) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 2, 6, 6}, ir::Layout::kNCHW);
  int h = g.add_node(ir::OpKind::kAdd, "skip", {x, conv(g, "conv", x, 2, 2, 3)});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h})});
  g.outputs = {gemm(g, "fc", h, 2, 2)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto plan = analyze(g);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(group_of(*plan, "conv").prunable);
  EXPECT_NE(group_of(*plan, "conv").reason.find("skip"), std::string::npos);
  EXPECT_NE(group_of(*plan, "conv").reason.find("graph input"), std::string::npos);
  auto refused = remove_channels(g, std::vector<std::vector<std::int64_t>>{{0}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("'conv'"), std::string::npos);
}

TEST(ChannelSurgery, ConcatOffsetsTheSecondInput) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 6, 6}, ir::Layout::kNCHW);
  const int p = conv(g, "conv_p", x, 3, 1, 3);
  const int q = conv(g, "conv_q", x, 5, 1, 1);
  ir::Attrs cat;
  cat.axis = 1;
  int h = g.add_node(ir::OpKind::kConcat, "cat", {p, q}, cat);
  h = conv(g, "conv_r", h, 4, 8, 1);
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h})});
  g.outputs = {gemm(g, "fc", h, 2, 4)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv_p", {0, 2}}, {"conv_q", {1, 4}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  ASSERT_EQ(shape(*pruned, "conv_r.w"), (ir::Shape{4, 4, 1, 1}));
  const std::vector<std::size_t> columns{0, 2, 3 + 1, 3 + 4};
  for (std::size_t row = 0; row < 4; ++row) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      EXPECT_EQ(data(*pruned, "conv_r.w")[row * 4 + i], data(g, "conv_r.w")[row * 8 + columns[i]]);
    }
  }
}

TEST(ChannelSurgery, DepthwiseFollowsItsInput) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 6, 6}, ir::Layout::kNCHW);
  int h = g.add_node(ir::OpKind::kRelu, "relu", {conv(g, "expand", x, 6, 1, 1)});
  h = conv(g, "dw", h, 6, 6, 3, 6);
  h = conv(g, "project", h, 4, 6, 1);
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h})});
  g.outputs = {gemm(g, "fc", h, 2, 4)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto plan = analyze(g);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->groups.size(), 3U);  // expand (with dw passing through), project, fc
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"expand", {0, 3, 5}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  EXPECT_EQ(shape(*pruned, "dw.w"), (ir::Shape{3, 1, 3, 3}));
  EXPECT_EQ(shape(*pruned, "dw.b"), (ir::Shape{3}));
  EXPECT_EQ(shape(*pruned, "project.w"), (ir::Shape{4, 3, 1, 1}));
  for (const ir::Node& n : pruned->nodes) {
    if (n.name == "dw") EXPECT_EQ(n.attrs.group, 3);
  }
  EXPECT_EQ(data(*pruned, "dw.w")[9], data(g, "dw.w")[3 * 9]);
}

TEST(ChannelSurgery, GroupedConvAndChannelSoftmaxAreLeftAloneWithAReason) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 6, 6}, ir::Layout::kNCHW);
  int h = conv(g, "stem", x, 4, 1, 1);
  h = conv(g, "grouped", h, 4, 4, 3, 2);
  ir::Attrs sm;
  sm.axis = 1;
  h = g.add_node(ir::OpKind::kSoftmax, "attention", {conv(g, "mix", h, 4, 4, 1)}, sm);
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {g.add_node(ir::OpKind::kGlobalAvgPool, "gap", {h})});
  g.outputs = {gemm(g, "fc", h, 2, 4)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto plan = analyze(g);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(group_of(*plan, "stem").prunable);
  EXPECT_NE(group_of(*plan, "stem").reason.find("grouped"), std::string::npos);
  EXPECT_FALSE(group_of(*plan, "mix").prunable);
  EXPECT_NE(group_of(*plan, "mix").reason.find("attention"), std::string::npos);
  auto nothing = shrink(g, 0.5);
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(nothing.error().message.find("'stem'"), std::string::npos);
}

TEST(ChannelSurgery, KerasStyleNhwcFlattenKeepsEveryCthFeature) {
  // Keras models flatten NHWC: Transpose(0,2,3,1) then Flatten interleaves the channels, so
  // channel c is feature p*C + c for every position p.
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 4, 4}, ir::Layout::kNCHW);
  int h = conv(g, "conv", x, 3, 1, 3);
  ir::Attrs t;
  t.perm = {0, 2, 3, 1};
  h = g.add_node(ir::OpKind::kTranspose, "to_nhwc", {h}, t);
  h = g.add_node(ir::OpKind::kRelu, "relu", {h});
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  g.outputs = {gemm(g, "fc", h, 2, 48)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv", {0, 2}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  ASSERT_EQ(shape(*pruned, "fc.w"), (ir::Shape{2, 32}));
  for (std::size_t row = 0; row < 2; ++row) {
    for (std::size_t p = 0; p < 16; ++p) {
      EXPECT_EQ(data(*pruned, "fc.w")[row * 32 + p * 2], data(g, "fc.w")[row * 48 + p * 3]);
      EXPECT_EQ(data(*pruned, "fc.w")[row * 32 + p * 2 + 1], data(g, "fc.w")[row * 48 + p * 3 + 2]);
    }
  }
}

TEST(ChannelSurgery, MovedChannelsReadByAPoolAreNotFollowed) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 4, 4}, ir::Layout::kNCHW);
  int h = conv(g, "conv", x, 4, 1, 3);
  ir::Attrs t;
  t.perm = {0, 2, 1, 3};
  h = g.add_node(ir::OpKind::kTranspose, "swap", {h}, t);
  h = pool(g, h);
  h = g.add_node(ir::OpKind::kFlatten, "flatten", {h});
  g.outputs = {gemm(g, "fc", h, 2, 16)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto plan = analyze(g);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(group_of(*plan, "conv").prunable);
  EXPECT_NE(group_of(*plan, "conv").reason.find("pool"), std::string::npos) << group_of(*plan, "conv").reason;
}

TEST(ChannelSurgery, FlatteningReshapeTargetFollowsTheChannels) {
  // PyTorch exports flatten as Reshape to [-1, C*H*W] with the feature count written in.
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 4, 4}, ir::Layout::kNCHW);
  int h = g.add_node(ir::OpKind::kRelu, "relu", {conv(g, "conv", x, 5, 1, 3)});
  ir::Attrs r;
  r.shape = {-1, 5 * 16};
  h = g.add_node(ir::OpKind::kReshape, "view", {h}, r);
  g.outputs = {gemm(g, "fc", h, 2, 80)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"conv", {1, 4}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  EXPECT_EQ(shape(*pruned, "fc.w"), (ir::Shape{2, 32}));
  for (const ir::Node& n : pruned->nodes) {
    if (n.name == "view") EXPECT_EQ(n.attrs.shape, (std::vector<std::int64_t>{-1, 32}));
  }
}

TEST(ChannelSurgery, SharedWeightsAreCopiedNotCorrupted) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 4}, ir::Layout::kNC);
  const int w = g.add_constant("shared.w", {4, 4}, ramp(16, 0.5F));
  int h = g.add_node(ir::OpKind::kGemm, "first", {x, w});
  h = g.add_node(ir::OpKind::kGemm, "second", {h, w});  // same weights, tied
  g.outputs = {gemm(g, "fc", h, 2, 4)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto pruned = remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"first", {0, 1}}});
  ASSERT_TRUE(pruned.ok()) << pruned.error().to_string();
  // 'first' lost output rows; 'second' got its own copy and lost the matching input columns.
  EXPECT_EQ(shape(*pruned, "shared.w"), (ir::Shape{2, 4}));
  EXPECT_EQ(shape(*pruned, "shared.w_pruned"), (ir::Shape{4, 2}));
  EXPECT_EQ(data(*pruned, "shared.w_pruned")[2], data(g, "shared.w")[4]);
  ir::Graph copy = *pruned;
  EXPECT_TRUE(ir::verify(copy).ok());
}

TEST(ChannelSurgery, BadKeepListsAreErrorsNotCrashes) {
  const ir::Graph g = chain();
  for (const std::vector<std::int64_t>& bad : {std::vector<std::int64_t>{-1}, {8}, {1, 1}, {0, 100}}) {
    auto r = remove_channels(g, std::vector<std::vector<std::int64_t>>{bad});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("conv1"), std::string::npos);
  }
  EXPECT_FALSE(remove_channels(g, std::map<std::string, std::vector<std::int64_t>>{{"nope", {0}}}).ok());
  EXPECT_FALSE(remove_channels(g, std::vector<std::vector<std::int64_t>>(9)).ok());
  auto whole = remove_channels(g, std::vector<std::vector<std::int64_t>>{});
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->param_count(), g.param_count());
}

TEST(ChannelSurgery, MalformedGraphsAreErrorsNotCrashes) {
  ir::Graph bad = chain();
  bad.nodes[1].inputs.push_back(12345);  // a value id that does not exist
  EXPECT_FALSE(analyze(bad).ok());
  ir::Graph unshaped = chain();
  for (ir::Value& v : unshaped.values) {
    if (!v.is_constant) v.shape.clear();  // never verified: shapes missing
  }
  auto plan = analyze(unshaped);
  if (plan.ok()) EXPECT_FALSE(plan->any_prunable());
  EXPECT_FALSE(shrink(unshaped, 0.5).ok());
}

TEST(ChannelSurgery, OnlyAClassifierIsAnErrorNamingIt) {
  ir::Graph g;
  const int x = g.add_input("x", {ir::kBatch, 1, 4, 4}, ir::Layout::kNCHW);
  g.outputs = {gemm(g, "fc", g.add_node(ir::OpKind::kFlatten, "flatten", {x}), 10, 16)};
  ASSERT_TRUE(ir::verify(g).ok());
  auto r = shrink(g, 0.5);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'fc'"), std::string::npos);
  EXPECT_NE(r.error().message.find("classifier"), std::string::npos);
}

TEST(ChannelSurgery, ThirdPartyFixturesAnalyseAndShrink) {
  const std::string dir = std::string(EDGEOPT_SOURCE_DIR) + "/../shared/fixtures/models/";
  auto torch_model = import_model_without_torch(dir + "pytorch1.10_mnist_cnn.onnx");
  if (!torch_model) GTEST_SKIP() << "fixtures absent: " << torch_model.error().to_string();
  // Conv, MaxPool, Relu, Reshape to [-1, 320], Gemm, Gemm, LogSoftmax.
  auto plan = analyze(torch_model->graph);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->groups.size(), 4U);
  EXPECT_EQ(plan->groups.back().reason.find("is the classifier"), 0U) << plan->groups.back().reason;
  EXPECT_TRUE(plan->groups[2].prunable);  // the hidden Gemm after the flattening Reshape
  auto small = shrink(torch_model->graph, 0.5);
  ASSERT_TRUE(small.ok()) << small.error().to_string();
  EXPECT_LT(total_macs(*small), total_macs(torch_model->graph) * 6 / 10);
  for (const char* name : {"keras2.3_mnist_cnn.h5", "keras2.15_cifar10_cnn.h5", "keras2onnx_mnist_nhwc.onnx"}) {
    auto m = import_model_without_torch(dir + name);
    ASSERT_TRUE(m.ok()) << name << ": " << m.error().to_string();
    auto plan = analyze(m->graph);
    ASSERT_TRUE(plan.ok()) << name;
    EXPECT_FALSE(plan->groups.empty()) << name;
    for (const ChannelGroup& group : plan->groups) {
      if (!group.prunable) EXPECT_FALSE(group.reason.empty()) << name << " " << group_label(group);
    }
    if (std::string(name).find("mnist") != std::string::npos) {
      // Conv, Conv, then Transpose to NHWC + Flatten + the classifier: both convs can shrink.
      ASSERT_EQ(plan->groups.size(), 3U) << name;
      EXPECT_TRUE(plan->groups[0].prunable) << name << ": " << plan->groups[0].reason;
      EXPECT_TRUE(plan->groups[1].prunable) << name << ": " << plan->groups[1].reason;
      EXPECT_FALSE(plan->groups[2].prunable) << name;
    }
    if (plan->any_prunable()) {
      auto s = shrink(m->graph, 0.6);
      EXPECT_TRUE(s.ok()) << name << ": " << s.error().to_string();
    }
  }
}

}  // namespace
}  // namespace edgeopt::techniques::surgery
