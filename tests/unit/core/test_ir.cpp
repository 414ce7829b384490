#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "ir/graph.h"
#include "ir/text.h"

namespace edgeopt::ir {
namespace {

// A LeNet-like graph built by hand: conv → relu → pool → flatten → gemm.
Graph small_cnn() {
  Graph g;
  g.name = "small";
  const int x = g.add_input("x", {kBatch, 1, 8, 8}, Layout::kNCHW);
  const int w = g.add_constant("w", {4, 1, 3, 3}, std::vector<float>(36, 0.1F));
  const int b = g.add_constant("b", {4}, std::vector<float>(4, 0.0F));
  Attrs conv;
  conv.pads = {1, 1, 1, 1};
  int h = g.add_node(OpKind::kConv, "conv", {x, w, b}, conv);
  h = g.add_node(OpKind::kRelu, "relu", {h});
  Attrs pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  h = g.add_node(OpKind::kMaxPool, "pool", {h}, pool);
  h = g.add_node(OpKind::kFlatten, "flatten", {h});
  const int fw = g.add_constant("fc.w", {10, 64}, std::vector<float>(640, 0.01F));
  h = g.add_node(OpKind::kGemm, "fc", {h, fw});
  g.outputs = {h};
  return g;
}

TEST(Ir, InfersShapesAndCosts) {
  Graph g = small_cnn();
  ASSERT_TRUE(verify(g).ok());
  EXPECT_EQ(g.value(g.outputs[0]).shape, (Shape{kBatch, 10}));
  EXPECT_EQ(g.param_count(), 36 + 4 + 640);
  EXPECT_EQ(node_cost(g, g.nodes[0]).macs, 4 * 8 * 8 * 9);
  EXPECT_EQ(node_cost(g, g.nodes[4]).macs, 640);
}

TEST(Ir, DumpIsStable) {
  Graph g = small_cnn();
  ASSERT_TRUE(verify(g).ok());
  const std::string expected =
      "graph \"small\" producer=\"\"\n"
      "input x: f32[N,1,8,8] NCHW\n"
      "const w: f32[4,1,3,3]\n"
      "const b: f32[4]\n"
      "conv = Conv(x, w, b) strides=[] pads=[1,1,1,1] dilations=[] group=1 -> f32[N,4,8,8]\n"
      "relu = Relu(conv) -> f32[N,4,8,8]\n"
      "pool = MaxPool(relu) kernel=[2,2] strides=[2,2] pads=[] -> f32[N,4,4,4]\n"
      "flatten = Flatten(pool) axis=1 -> f32[N,64]\n"
      "const fc.w: f32[10,64]\n"
      "fc = Gemm(flatten, fc.w) -> f32[N,10]\n"
      "output fc\n";
  EXPECT_EQ(dump(g), expected);
}

TEST(Ir, ShapeMismatchNamesTheNode) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 3, 8, 8}, Layout::kNCHW);
  const int w = g.add_constant("w", {4, 1, 3, 3}, std::vector<float>(36, 0.1F));
  g.outputs = {g.add_node(OpKind::kConv, "bad_conv", {x, w})};
  const Status s = verify(g);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kShapeMismatch);
  EXPECT_NE(s.error().message.find("bad_conv"), std::string::npos);
}

TEST(Ir, CeilModePoolFollowsPyTorch) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 1, 112, 112}, Layout::kNCHW);
  Attrs pool;
  pool.kernel = {3, 3};
  pool.strides = {2, 2};
  pool.ceil_mode = true;
  g.outputs = {g.add_node(OpKind::kMaxPool, "pool", {x}, pool)};
  ASSERT_TRUE(verify(g).ok());
  EXPECT_EQ(g.value(g.outputs[0]).shape, (Shape{kBatch, 1, 56, 56}));
}

TEST(Ir, ReshapeKeepsSymbolicBatch) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 4, 2, 2}, Layout::kNCHW);
  Attrs r;
  r.shape = {0, -1};
  g.outputs = {g.add_node(OpKind::kReshape, "r", {x}, r)};
  ASSERT_TRUE(verify(g).ok());
  EXPECT_EQ(g.value(g.outputs[0]).shape, (Shape{kBatch, 16}));
}

TEST(Ir, SimplifyDropsIdentityAndDeadNodes) {
  Graph g = small_cnn();
  const int out = g.outputs[0];
  const int id = g.add_node(OpKind::kIdentity, "id", {out});
  g.add_node(OpKind::kRelu, "dead", {out});
  g.outputs = {g.add_node(OpKind::kSoftmax, "softmax", {id})};
  g.simplify();
  ASSERT_TRUE(verify(g).ok());
  for (const auto& n : g.nodes) {
    EXPECT_NE(n.op, OpKind::kIdentity);
    EXPECT_NE(n.name, "dead");
  }
}

TEST(Ir, CatalogueNamesRoundTrip) {
  for (int k = 0; k < static_cast<int>(OpKind::kCount); ++k) {
    const auto kind = static_cast<OpKind>(k);
    EXPECT_EQ(op_from_name(op_name(kind)), kind);
  }
}

// Slice follows ONNX: negative bounds count from the end, out-of-range bounds clamp, steps round up.
std::string ints_of(const Attrs& a) { return shape_to_string(a.axes) + shape_to_string(a.starts) + shape_to_string(a.ends) + shape_to_string(a.steps); }

Shape slice_shape(const Shape& in, Attrs a) {
  Graph g;
  const int x = g.add_input("x", in, Layout::kNCHW);
  g.outputs = {g.add_node(OpKind::kSlice, "slice", {x}, std::move(a))};
  g.infer_shapes();
  return g.value(g.outputs[0]).shape;
}

Attrs slice_attrs(std::vector<std::int64_t> axes, std::vector<std::int64_t> starts, std::vector<std::int64_t> ends,
                  std::vector<std::int64_t> steps = {}) {
  Attrs a;
  a.axes = std::move(axes);
  a.starts = std::move(starts);
  a.ends = std::move(ends);
  a.steps = std::move(steps);
  return a;
}

TEST(Ir, SliceShapes) {
  constexpr auto kEnd = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(slice_shape({kBatch, 24, 8, 8}, slice_attrs({1}, {0}, {12})), (Shape{kBatch, 12, 8, 8}));
  EXPECT_EQ(slice_shape({kBatch, 24, 8, 8}, slice_attrs({1}, {12}, {kEnd})), (Shape{kBatch, 12, 8, 8}));
  EXPECT_EQ(slice_shape({kBatch, 3, 8, 8}, slice_attrs({-3}, {-1}, {100})), (Shape{kBatch, 1, 8, 8}));
  EXPECT_EQ(slice_shape({kBatch, 3, 8, 8}, slice_attrs({2, 3}, {-100, 1}, {5, 8}, {2, 3})), (Shape{kBatch, 3, 3, 3}));
  // The symbolic batch may only be passed through whole.
  EXPECT_EQ(slice_shape({kBatch, 3, 8, 8}, slice_attrs({0, 1}, {0, 1}, {kEnd, 2})), (Shape{kBatch, 1, 8, 8}));
}

TEST(Ir, SliceRejectsBadSlices) {
  const std::vector<std::pair<Shape, Attrs>> cases = {
      {{kBatch, 3, 8, 8}, slice_attrs({0}, {0}, {1})},          // the batch
      {{kBatch, 3, 8, 8}, slice_attrs({1}, {2}, {0}, {-1})},    // negative step
      {{kBatch, 3, 8, 8}, slice_attrs({1}, {0}, {3}, {0})},     // zero step
      {{kBatch, 3, 8, 8}, slice_attrs({1}, {2}, {1})},          // empty
      {{kBatch, 3, 8, 8}, slice_attrs({4}, {0}, {1})},          // axis out of range
      {{kBatch, 3, 8, 8}, slice_attrs({1, 1}, {0, 0}, {1, 1})}, // repeated axis
      {{kBatch, 3, 8, 8}, slice_attrs({1}, {0, 1}, {1})},       // lengths differ
  };
  for (const auto& [shape, attrs] : cases) {
    Graph g;
    const int x = g.add_input("x", shape, Layout::kNCHW);
    g.outputs = {g.add_node(OpKind::kSlice, "bad_slice", {x}, attrs)};
    const Status s = verify(g);
    ASSERT_FALSE(s.ok()) << ints_of(attrs);
    EXPECT_EQ(s.error().code, ErrorCode::kShapeMismatch);
    EXPECT_NE(s.error().message.find("bad_slice"), std::string::npos) << s.error().message;
  }
}

TEST(Ir, SliceDumpsItsAttrs) {
  Graph g;
  const int x = g.add_input("x", {kBatch, 4, 2, 2}, Layout::kNCHW);
  g.outputs = {g.add_node(OpKind::kSlice, "half", {x}, slice_attrs({1}, {2}, {4}, {1}))};
  ASSERT_TRUE(verify(g).ok());
  EXPECT_NE(dump(g).find("half = Slice(x) axes=[1] starts=[2] ends=[4] steps=[1] -> f32[N,2,2,2]"), std::string::npos) << dump(g);
  EXPECT_EQ(op_from_name("Slice"), OpKind::kSlice);
}

}  // namespace
}  // namespace edgeopt::ir
