// ONNX importer: the two real fixtures, small models built here with the protobuf API (one per
// opset-dependent op form), and hostile input.
#include <gtest/gtest.h>

// The core library gets these from CMake's onnx_proto target; the test includes the headers directly.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "importers/onnx/onnx_importer.h"
#include "ir/text.h"

namespace {

using edgeopt::ErrorCode;
using edgeopt::ir::Graph;
using edgeopt::ir::kBatch;
using edgeopt::ir::Layout;
using edgeopt::ir::OpKind;
using edgeopt::ir::Shape;
namespace onnx_import = edgeopt::onnx_import;

const std::string kFixtures = std::string(EDGEOPT_SOURCE_DIR) + "/../shared/fixtures/models/";

// Builds a small ONNX model in memory.
class ModelBuilder {
 public:
  explicit ModelBuilder(int opset, const std::string& producer = "edgeopt-test") {
    model_.set_ir_version(opset >= 13 ? 7 : 6);
    model_.set_producer_name(producer);
    model_.set_producer_version("1.0");
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    graph()->set_name("test_graph");
  }

  onnx::GraphProto* graph() { return model_.mutable_graph(); }
  onnx::ModelProto& model() { return model_; }

  // dims: -1 for a symbolic dimension named "N" (or "d<i>" past the first).
  void input(const std::string& name, std::vector<std::int64_t> dims) {
    auto* vi = graph()->add_input();
    vi->set_name(name);
    auto* t = vi->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (std::size_t i = 0; i < dims.size(); ++i) {
      auto* d = t->mutable_shape()->add_dim();
      if (dims[i] < 0) d->set_dim_param(i == 0 ? "N" : "d" + std::to_string(i));
      else d->set_dim_value(dims[i]);
    }
  }

  void output(const std::string& name) { graph()->add_output()->set_name(name); }

  onnx::TensorProto* weights(const std::string& name, std::vector<std::int64_t> dims, float start = 0.1F) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    std::int64_t count = 1;
    for (auto d : dims) {
      t->add_dims(d);
      count *= d;
    }
    for (std::int64_t i = 0; i < count; ++i) t->add_float_data(start + 0.01F * static_cast<float>(i % 17));
    return t;
  }

  void ints(const std::string& name, std::vector<std::int64_t> values, bool scalar = false) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    if (!scalar) t->add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t->add_int64_data(v);
  }

  onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, const std::string& name = {}) {
    auto* n = graph()->add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + "_" + std::to_string(graph()->node_size()) : name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }

  // A Constant node holding int64 values.
  void constant_ints(const std::string& out, std::vector<std::int64_t> values, bool scalar = false) {
    auto* n = node("Constant", {}, {out});
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    auto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::INT64);
    if (!scalar) t->add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t->add_int64_data(v);
  }

  std::string bytes() const { return model_.SerializeAsString(); }

 private:
  onnx::ModelProto model_;
};

void set_int(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<std::int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

void set_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void set_string(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

Graph import_ok(const ModelBuilder& b) {
  auto r = onnx_import::import_bytes(b.bytes(), "test.onnx");
  if (!r.ok()) ADD_FAILURE() << r.error().to_string();
  if (!r.ok()) return Graph{};
  Graph g = std::move(r).value();
  auto st = edgeopt::ir::verify(g);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().to_string());
  return g;
}

edgeopt::Error import_error(const std::string& bytes) {
  auto r = onnx_import::import_bytes(bytes, "bad.onnx");
  if (r.ok()) {
    ADD_FAILURE() << "import succeeded but should have failed";
    return {};
  }
  return r.error();
}

const edgeopt::ir::Node* find_op(const Graph& g, OpKind op) {
  for (const auto& n : g.nodes) {
    if (n.op == op) return &n;
  }
  return nullptr;
}

int count_op(const Graph& g, OpKind op) {
  int k = 0;
  for (const auto& n : g.nodes) k += n.op == op;
  return k;
}

Shape output_shape(const Graph& g) { return g.value(g.outputs.at(0)).shape; }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// ---- real fixtures ----

TEST(OnnxImporter, PyTorchMnistCnn) {
  const std::string path = kFixtures + "pytorch1.10_mnist_cnn.onnx";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "fixture missing: " << path;
  auto r = onnx_import::import_file(path);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  Graph& g = r.value();
  ASSERT_TRUE(edgeopt::ir::verify(g).ok());
  EXPECT_EQ(g.producer, "pytorch 1.10");
  ASSERT_EQ(g.inputs.size(), 1U);
  EXPECT_EQ(g.value(g.inputs[0]).shape, (Shape{kBatch, 1, 28, 28}));
  EXPECT_EQ(g.value(g.inputs[0]).layout, Layout::kNCHW);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 10}));
  // conv1 250+10, conv2 5000+20, fc1 16000+50, fc2 500+10 (python: sum of float initializer sizes).
  EXPECT_EQ(g.param_count(), 21840);
  EXPECT_EQ(count_op(g, OpKind::kGemm), 2);
  EXPECT_EQ(count_op(g, OpKind::kConv), 2);
  EXPECT_NE(find_op(g, OpKind::kLogSoftmax), nullptr);
  ASSERT_NE(find_op(g, OpKind::kReshape), nullptr);
  EXPECT_EQ(find_op(g, OpKind::kReshape)->attrs.shape, (std::vector<std::int64_t>{-1, 320}));
}

TEST(OnnxImporter, Keras2OnnxMnistNhwc) {
  const std::string path = kFixtures + "keras2onnx_mnist_nhwc.onnx";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "fixture missing: " << path;
  auto r = onnx_import::import_file(path);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  Graph& g = r.value();
  ASSERT_TRUE(edgeopt::ir::verify(g).ok());
  EXPECT_EQ(g.producer, "keras2onnx 1.8.0");
  EXPECT_EQ(g.value(g.inputs[0]).shape, (Shape{kBatch, 28, 28, 1}));
  EXPECT_EQ(g.value(g.inputs[0]).layout, Layout::kNHWC);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 10}));
  EXPECT_EQ(g.param_count(), 34826);
  EXPECT_EQ(count_op(g, OpKind::kTranspose), 2);  // the backend runs the layout transposes
  // MatMul + Add of the dense layer became one Gemm with W as [10, 1600].
  const auto* gemm = find_op(g, OpKind::kGemm);
  ASSERT_NE(gemm, nullptr);
  EXPECT_EQ(g.value(gemm->inputs[1]).shape, (Shape{10, 1600}));
  EXPECT_EQ(count_op(g, OpKind::kMatMul), 0);
  EXPECT_EQ(count_op(g, OpKind::kAdd), 0);
  EXPECT_NE(find_op(g, OpKind::kSoftmax), nullptr);
}

// ---- batch handling ----

// Exported with torch.onnx.export from a small CNN (conv, BN folded, ReLU6, ceil-mode pool,
// x * sigmoid(x), Linear, log_softmax); tests/data/onnx/make_models.py regenerates them.
Graph import_data_file(const std::string& name) {
  auto r = onnx_import::import_file(std::string(EDGEOPT_SOURCE_DIR) + "/tests/data/onnx/" + name);
  if (!r.ok()) {
    ADD_FAILURE() << r.error().to_string();
    return Graph{};
  }
  EXPECT_TRUE(edgeopt::ir::verify(r.value()).ok());
  return std::move(r).value();
}

TEST(OnnxImporter, TorchFixedBatch10ViewOpset9) {
  Graph g = import_data_file("torch_fixed_batch10_view_op9.onnx");  // x.view(10, -1), batch 10
  ASSERT_FALSE(g.nodes.empty());
  EXPECT_EQ(g.value(g.inputs[0]).shape, (Shape{kBatch, 1, 28, 28}));
  EXPECT_EQ(find_op(g, OpKind::kReshape)->attrs.shape, (std::vector<std::int64_t>{0, -1}));
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 10}));
  EXPECT_EQ(g.param_count(), 7890);
}

TEST(OnnxImporter, TorchDynamicViewSize0Opset13) {
  Graph g = import_data_file("torch_dynamic_view_size0_op13.onnx");  // x.view(x.size(0), -1)
  ASSERT_FALSE(g.nodes.empty());
  EXPECT_EQ(find_op(g, OpKind::kReshape)->attrs.shape, (std::vector<std::int64_t>{0, -1}));
  EXPECT_EQ(find_op(g, OpKind::kClip)->attrs.max, 6.0F);
  EXPECT_TRUE(find_op(g, OpKind::kMaxPool)->attrs.ceil_mode);  // opset 9 has no ceil_mode attribute
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 10}));
  EXPECT_EQ(g.param_count(), 7890);
}

TEST(OnnxImporter, FixedBatchTenRunsOneImage) {
  ModelBuilder b(9, "pytorch");
  b.input("x", {10, 1, 6, 6});
  b.weights("w", {2, 1, 3, 3});
  b.weights("fc", {5, 32});
  b.ints("target", {10, 32});
  b.node("Conv", {"x", "w"}, {"c"});
  b.node("Reshape", {"c", "target"}, {"r"});
  set_int(b.node("Gemm", {"r", "fc"}, {"y"}), "transB", 1);
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(g.value(g.inputs[0]).shape, (Shape{kBatch, 1, 6, 6}));
  EXPECT_EQ(find_op(g, OpKind::kReshape)->attrs.shape, (std::vector<std::int64_t>{0, 32}));
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 5}));
  EXPECT_EQ(g.param_count(), 18 + 160);
}

// x.view(x.size(0), -1) as PyTorch exports it, with Unsqueeze axes as attribute (11) or input (13).
void shape_gather_flatten(int opset, std::int64_t batch) {
  ModelBuilder b(opset, "pytorch");
  b.input("x", {batch, 2, 3, 3});
  b.node("Shape", {"x"}, {"s"});
  b.constant_ints("zero", {0}, true);
  set_int(b.node("Gather", {"s", "zero"}, {"n"}), "axis", 0);
  if (opset >= 13) {
    b.constant_ints("axes", {0});
    b.node("Unsqueeze", {"n", "axes"}, {"n1"});
  } else {
    set_ints(b.node("Unsqueeze", {"n"}, {"n1"}), "axes", {0});
  }
  b.constant_ints("minus_one", {-1});
  set_int(b.node("Concat", {"n1", "minus_one"}, {"target"}), "axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  ASSERT_NE(find_op(g, OpKind::kReshape), nullptr);
  EXPECT_EQ(find_op(g, OpKind::kReshape)->attrs.shape, (std::vector<std::int64_t>{0, -1}));
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 18}));
  EXPECT_EQ(g.nodes.size(), 1U);  // the shape subgraph was evaluated away
}

TEST(OnnxImporter, ShapeGatherFlattenOpset11Symbolic) { shape_gather_flatten(11, -1); }
TEST(OnnxImporter, ShapeGatherFlattenOpset13Symbolic) { shape_gather_flatten(13, -1); }
TEST(OnnxImporter, ShapeGatherFlattenFixedBatch) { shape_gather_flatten(13, 4); }

TEST(OnnxImporter, ShapeSliceCastConcatFolds) {
  // tf2onnx style: Shape -> Slice[1:] -> Cast -> Mul -> Concat([-1], prod) with int32 detours.
  ModelBuilder b(13);
  b.input("x", {-1, 2, 3, 4});
  b.node("Shape", {"x"}, {"s"});
  b.ints("starts", {1});
  b.ints("ends", {4});
  b.node("Slice", {"s", "starts", "ends"}, {"hw"});  // [2,3,4]
  set_int(b.node("Cast", {"hw"}, {"hw32"}), "to", onnx::TensorProto::INT32);
  b.ints("zero", {0}, true);
  set_int(b.node("Gather", {"hw32", "zero"}, {"c"}), "axis", 0);
  b.ints("twelve", {12}, true);
  b.node("Mul", {"c", "twelve"}, {"features"});  // 24
  set_ints(b.node("Unsqueeze", {"features"}, {"f1"}), "axes", {0});
  set_int(b.node("Cast", {"f1"}, {"f64"}), "to", onnx::TensorProto::INT64);
  b.ints("minus_one", {-1});
  set_int(b.node("Concat", {"minus_one", "f64"}, {"target"}), "axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"});
  b.output("y");
  // Unsqueeze with an attribute is opset < 13; keep the test valid by using opset 11 semantics.
  b.model().mutable_opset_import(0)->set_version(11);
  Graph g = import_ok(b);
  EXPECT_EQ(find_op(g, OpKind::kReshape)->attrs.shape, (std::vector<std::int64_t>{-1, 24}));
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 24}));
}

TEST(OnnxImporter, BatchInsideReshapeTargetIsAnError) {
  ModelBuilder b(13);
  b.input("x", {-1, 2, 3, 3});
  b.node("Shape", {"x"}, {"s"});
  b.constant_ints("zero", {0}, true);
  set_int(b.node("Gather", {"s", "zero"}, {"n"}), "axis", 0);
  b.constant_ints("axes", {0});
  b.node("Unsqueeze", {"n", "axes"}, {"n1"});
  b.constant_ints("minus_one", {-1});
  set_int(b.node("Concat", {"minus_one", "n1"}, {"target"}), "axis", 0);
  b.node("Reshape", {"x", "target"}, {"y"}, "bad_reshape");
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.message.find("bad_reshape"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("batch"), std::string::npos) << e.message;
}

TEST(OnnxImporter, SymbolicNonBatchDimIsAnErrorWithHint) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, -1, -1});
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_NE(e.message.find("unknown dimension 2"), std::string::npos) << e.message;
  EXPECT_FALSE(e.hint.empty());
}

TEST(OnnxImporter, InitializerListedAsInputIsAConstant) {
  ModelBuilder b(7);
  b.input("x", {1, 4});
  b.input("w", {3, 4});  // old exporters list weights among the inputs
  b.weights("w", {3, 4});
  set_int(b.node("Gemm", {"x", "w"}, {"y"}), "transB", 1);
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(g.inputs.size(), 1U);
  EXPECT_EQ(g.value(g.inputs[0]).layout, Layout::kNC);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 3}));
  EXPECT_EQ(g.param_count(), 12);
}

// ---- opset variants ----

Graph clip_model(int opset) {
  ModelBuilder b(opset);
  b.input("x", {-1, 4});
  if (opset < 11) {
    auto* n = b.node("Clip", {"x"}, {"y"});
    set_float(n, "min", 0.0F);
    set_float(n, "max", 6.0F);
  } else {
    auto* lo = b.graph()->add_initializer();
    lo->set_name("lo");
    lo->set_data_type(onnx::TensorProto::FLOAT);
    lo->add_float_data(0.0F);
    auto* hi = b.graph()->add_initializer();
    hi->set_name("hi");
    hi->set_data_type(onnx::TensorProto::FLOAT);
    hi->add_float_data(6.0F);
    b.node("Clip", {"x", "lo", "hi"}, {"y"});
  }
  b.output("y");
  return import_ok(b);
}

TEST(OnnxImporter, ClipAcrossOpsets) {
  for (int opset : {7, 11, 13, 18}) {
    Graph g = clip_model(opset);
    const auto* clip = find_op(g, OpKind::kClip);
    ASSERT_NE(clip, nullptr) << "opset " << opset;
    EXPECT_EQ(clip->attrs.min, 0.0F) << "opset " << opset;
    EXPECT_EQ(clip->attrs.max, 6.0F) << "opset " << opset;
    EXPECT_EQ(g.param_count(), 0) << "min/max are attributes, not weights";
  }
}

TEST(OnnxImporter, ClipWithOnlyMaxInput) {
  ModelBuilder b(13);
  b.input("x", {-1, 4});
  auto* hi = b.graph()->add_initializer();
  hi->set_name("hi");
  hi->set_data_type(onnx::TensorProto::FLOAT);
  hi->add_float_data(1.0F);
  b.node("Clip", {"x", "", "hi"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_TRUE(std::isinf(find_op(g, OpKind::kClip)->attrs.min));
  EXPECT_EQ(find_op(g, OpKind::kClip)->attrs.max, 1.0F);
}

Graph pad_model(int opset, const std::string& mode) {
  ModelBuilder b(opset);
  b.input("x", {-1, 2, 4, 4});
  if (opset < 11) {
    auto* n = b.node("Pad", {"x"}, {"y"});
    set_ints(n, "pads", {0, 0, 1, 2, 0, 0, 1, 2});
    set_string(n, "mode", mode);
  } else if (opset < 18) {
    b.ints("pads", {0, 0, 1, 2, 0, 0, 1, 2});
    set_string(b.node("Pad", {"x", "pads"}, {"y"}), "mode", mode);
  } else {
    b.ints("pads", {1, 2, 1, 2});
    b.ints("axes", {2, 3});
    set_string(b.node("Pad", {"x", "pads", "", "axes"}, {"y"}), "mode", mode);
  }
  b.output("y");
  return import_ok(b);
}

TEST(OnnxImporter, PadAcrossOpsets) {
  for (int opset : {7, 11, 13, 18}) {
    Graph g = pad_model(opset, opset == 13 ? "edge" : "reflect");
    const auto* pad = find_op(g, OpKind::kPad);
    ASSERT_NE(pad, nullptr) << "opset " << opset;
    EXPECT_EQ(pad->attrs.pads, (std::vector<std::int64_t>{0, 0, 1, 2, 0, 0, 1, 2})) << "opset " << opset;
    EXPECT_EQ(pad->attrs.pad_mode, opset == 13 ? edgeopt::ir::PadMode::kEdge : edgeopt::ir::PadMode::kReflect);
    EXPECT_EQ(output_shape(g), (Shape{kBatch, 2, 6, 8}));
  }
}

TEST(OnnxImporter, PadConstantValueInput) {
  ModelBuilder b(11);
  b.input("x", {-1, 2, 4, 4});
  b.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1});
  auto* v = b.graph()->add_initializer();
  v->set_name("value");
  v->set_data_type(onnx::TensorProto::FLOAT);
  v->add_float_data(-1.5F);
  b.node("Pad", {"x", "pads", "value"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(find_op(g, OpKind::kPad)->attrs.pad_value, -1.5F);
  EXPECT_EQ(find_op(g, OpKind::kPad)->attrs.pad_mode, edgeopt::ir::PadMode::kConstant);
}

// PyTorch's F.pad(x, (1, 2, 3, 4)) at opsets 11-17: the pads are computed by an int64 subgraph
// that reverses the (begin, end) pairs with a negative-step Slice and interleaves them with a Transpose.
TEST(OnnxImporter, TorchPadSubgraphWithNegativeStepSliceFolds) {
  for (int opset : {11, 13, 17}) {
    ModelBuilder b(opset);
    b.input("x", {-1, 1, 4, 4});
    b.constant_ints("four", {4});
    b.constant_ints("lrtb", {1, 2, 3, 4});
    auto* zeros = b.node("ConstantOfShape", {"four"}, {"zeros"});
    auto* value = zeros->add_attribute();
    value->set_name("value");
    value->set_type(onnx::AttributeProto::TENSOR);
    value->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    value->mutable_t()->add_dims(1);
    value->mutable_t()->add_int64_data(0);
    set_int(b.node("Concat", {"lrtb", "zeros"}, {"all"}), "axis", 0);
    b.constant_ints("pairs_shape", {-1, 2});
    b.node("Reshape", {"all", "pairs_shape"}, {"pairs"});  // [[1,2],[3,4],[0,0],[0,0]]
    b.constant_ints("axes", {0});
    b.constant_ints("starts", {-1});
    b.constant_ints("ends", {-std::numeric_limits<std::int64_t>::max()});
    b.constant_ints("steps", {-1});
    b.node("Slice", {"pairs", "starts", "ends", "axes", "steps"}, {"reversed"});
    set_ints(b.node("Transpose", {"reversed"}, {"by_side"}), "perm", {1, 0});
    b.constant_ints("flat", {-1});
    b.node("Reshape", {"by_side", "flat"}, {"pads64"});
    set_int(b.node("Cast", {"pads64"}, {"pads"}), "to", onnx::TensorProto::INT64);
    set_string(b.node("Pad", {"x", "pads", ""}, {"y"}), "mode", "constant");
    b.output("y");
    Graph g = import_ok(b);
    const auto* pad = find_op(g, OpKind::kPad);
    ASSERT_NE(pad, nullptr) << "opset " << opset;
    EXPECT_EQ(pad->attrs.pads, (std::vector<std::int64_t>{0, 0, 3, 1, 0, 0, 4, 2})) << "opset " << opset;
    EXPECT_EQ(output_shape(g), (Shape{kBatch, 1, 11, 7})) << "opset " << opset;
    EXPECT_EQ(g.nodes.size(), 1U) << "opset " << opset;  // only the Pad is left
  }
}

// Negative steps clamp out-of-range starts to the last element and ends to "before the first",
// per the ONNX spec; an empty axis stays empty.
TEST(OnnxImporter, NegativeStepSliceClampsStartsAndEnds) {
  ModelBuilder b(13);
  b.input("x", {-1, 1, 4, 4});
  // Odd positions, read from the back, are the pads; even ones must never be picked.
  b.ints("data", {99, 4, 99, 3, 99, 0, 99, 0, 99, 2, 99, 1, 99, 0, 99, 0});
  b.ints("starts", {100});
  b.ints("ends", {std::numeric_limits<std::int64_t>::min()});
  b.ints("steps", {-2});
  b.ints("axes", {-1});
  b.node("Slice", {"data", "starts", "ends", "axes", "steps"}, {"picked"});
  b.ints("empty", {});
  b.ints("back", {-1});
  b.ints("front", {0});
  b.node("Slice", {"empty", "back", "front", "axes", "steps"}, {"nothing"});
  set_int(b.node("Concat", {"picked", "nothing"}, {"pads"}), "axis", 0);
  b.node("Pad", {"x", "pads"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  const auto* pad = find_op(g, OpKind::kPad);
  ASSERT_NE(pad, nullptr);
  EXPECT_EQ(pad->attrs.pads, (std::vector<std::int64_t>{0, 0, 1, 2, 0, 0, 3, 4}));
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 1, 8, 10}));
}

Graph squeeze_model(int opset) {
  ModelBuilder b(opset);
  b.input("x", {-1, 8, 1, 1});
  if (opset < 13) {
    set_ints(b.node("Squeeze", {"x"}, {"s"}), "axes", {2, 3});
    set_ints(b.node("Unsqueeze", {"s"}, {"y"}), "axes", {-1});
  } else {
    b.ints("sq_axes", {2, 3});
    b.ints("unsq_axes", {-1});
    b.node("Squeeze", {"x", "sq_axes"}, {"s"});
    b.node("Unsqueeze", {"s", "unsq_axes"}, {"y"});
  }
  b.output("y");
  return import_ok(b);
}

TEST(OnnxImporter, SqueezeUnsqueezeAcrossOpsets) {
  for (int opset : {7, 11, 13, 18}) {
    Graph g = squeeze_model(opset);
    EXPECT_EQ(output_shape(g), (Shape{kBatch, 8, 1})) << "opset " << opset;
    EXPECT_EQ(find_op(g, OpKind::kSqueeze)->attrs.axes, (std::vector<std::int64_t>{2, 3}));
  }
}

TEST(OnnxImporter, SqueezeWithoutAxesKeepsTheBatch) {
  ModelBuilder b(11);
  b.input("x", {1, 8, 1, 1});  // a batch-1 export: dim 0 must not be squeezed away
  b.node("Squeeze", {"x"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 8}));
}

Graph softmax_model(int opset, std::vector<std::int64_t> dims, std::int64_t axis, bool set_axis, const std::string& op = "Softmax") {
  ModelBuilder b(opset);
  b.input("x", dims);
  auto* n = b.node(op, {"x"}, {"y"});
  if (set_axis) set_int(n, "axis", axis);
  b.output("y");
  return import_ok(b);
}

TEST(OnnxImporter, SoftmaxAcrossOpsets) {
  // 2-D: identical in every opset.
  for (int opset : {7, 11, 13, 18}) {
    Graph g = softmax_model(opset, {-1, 10}, 1, false);
    EXPECT_EQ(count_op(g, OpKind::kSoftmax), 1) << "opset " << opset;
    EXPECT_EQ(g.nodes.size(), 1U) << "opset " << opset;
    EXPECT_EQ(output_shape(g), (Shape{kBatch, 10}));
  }
  // 4-D, axis 1, opset 11: normalises over C*H*W, so Flatten -> Softmax -> Reshape back.
  Graph old = softmax_model(11, {-1, 3, 2, 2}, 1, true);
  ASSERT_EQ(old.nodes.size(), 3U);
  EXPECT_EQ(old.nodes[0].op, OpKind::kFlatten);
  EXPECT_EQ(old.nodes[1].op, OpKind::kSoftmax);
  EXPECT_EQ(old.nodes[2].op, OpKind::kReshape);
  EXPECT_EQ(output_shape(old), (Shape{kBatch, 3, 2, 2}));
  // 4-D, axis 1, opset 13: over the channel axis only.
  Graph modern = softmax_model(13, {-1, 3, 2, 2}, 1, true, "LogSoftmax");
  ASSERT_EQ(modern.nodes.size(), 1U);
  EXPECT_EQ(modern.nodes[0].op, OpKind::kLogSoftmax);
  EXPECT_EQ(modern.nodes[0].attrs.axis, 1);
  // Opset 13's default axis is the last one.
  Graph last = softmax_model(13, {-1, 3, 5}, 0, false);
  EXPECT_EQ(last.nodes[0].attrs.axis, 2);
}

TEST(OnnxImporter, OldSoftmaxOverAxisTwoIsAClearError) {
  ModelBuilder b(11);
  b.input("x", {-1, 3, 2, 2});
  set_int(b.node("Softmax", {"x"}, {"y"}, "sm"), "axis", 2);
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.message.find("sm"), std::string::npos);
  EXPECT_NE(e.hint.find("opset 13"), std::string::npos);
}

// ---- convolution and pooling ----

TEST(OnnxImporter, GroupedAndDepthwiseConv) {
  ModelBuilder b(13);
  b.input("x", {-1, 8, 10, 10});
  b.weights("w_group", {8, 2, 3, 3});  // group 4: 8 in, 8 out
  b.weights("w_dw", {8, 1, 3, 3});
  b.weights("b_dw", {8});
  auto* g4 = b.node("Conv", {"x", "w_group"}, {"c1"});
  set_int(g4, "group", 4);
  set_ints(g4, "pads", {1, 1, 1, 1});
  auto* dw = b.node("Conv", {"c1", "w_dw", "b_dw"}, {"y"});
  set_int(dw, "group", 8);
  set_ints(dw, "strides", {2, 2});
  set_ints(dw, "dilations", {2, 2});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(g.nodes[0].attrs.group, 4);
  EXPECT_EQ(g.nodes[1].attrs.group, 8);
  EXPECT_EQ(g.nodes[1].attrs.dilations, (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 8, 3, 3}));  // (10 - 4 - 1) / 2 + 1
  EXPECT_EQ(g.param_count(), 144 + 72 + 8);
}

std::vector<std::int64_t> same_pads(const std::string& mode, std::int64_t size, std::int64_t kernel, std::int64_t stride, Shape* out) {
  ModelBuilder b(13, "tf2onnx");
  b.input("x", {-1, 1, size, size});
  b.weights("w", {1, 1, kernel, kernel});
  auto* n = b.node("Conv", {"x", "w"}, {"y"});
  set_string(n, "auto_pad", mode);
  set_ints(n, "strides", {stride, stride});
  b.output("y");
  Graph g = import_ok(b);
  if (g.nodes.empty()) return {};
  *out = output_shape(g);
  return g.nodes[0].attrs.pads;
}

TEST(OnnxImporter, AsymmetricSamePads) {
  Shape out;
  EXPECT_EQ(same_pads("SAME_UPPER", 5, 2, 1, &out), (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(out, (Shape{kBatch, 1, 5, 5}));
  EXPECT_EQ(same_pads("SAME_LOWER", 5, 2, 1, &out), (std::vector<std::int64_t>{1, 1, 0, 0}));
  EXPECT_EQ(same_pads("SAME_UPPER", 6, 3, 2, &out), (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(out, (Shape{kBatch, 1, 3, 3}));
  EXPECT_EQ(same_pads("SAME_UPPER", 7, 3, 2, &out), (std::vector<std::int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(out, (Shape{kBatch, 1, 4, 4}));
  EXPECT_EQ(same_pads("VALID", 7, 3, 2, &out), (std::vector<std::int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(out, (Shape{kBatch, 1, 3, 3}));
}

TEST(OnnxImporter, CeilModePools) {
  ModelBuilder b(10);
  b.input("x", {-1, 2, 5, 5});
  auto* mp = b.node("MaxPool", {"x"}, {"m"});
  set_ints(mp, "kernel_shape", {2, 2});
  set_ints(mp, "strides", {2, 2});
  set_int(mp, "ceil_mode", 1);
  auto* ap = b.node("AveragePool", {"m"}, {"a"});
  set_ints(ap, "kernel_shape", {3, 3});
  set_ints(ap, "pads", {1, 1, 1, 1});
  set_int(ap, "count_include_pad", 1);
  b.node("GlobalMaxPool", {"a"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_TRUE(g.nodes[0].attrs.ceil_mode);
  EXPECT_EQ(g.value(g.nodes[0].outputs[0]).shape, (Shape{kBatch, 2, 3, 3}));
  EXPECT_TRUE(g.nodes[1].attrs.count_include_pad);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 2, 1, 1}));
}

TEST(OnnxImporter, BatchNormAndActivations) {
  ModelBuilder b(9);
  b.input("x", {-1, 3, 4, 4});
  for (const char* p : {"scale", "bias", "mean", "var"}) b.weights(p, {3}, 1.0F);
  set_float(b.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"bn"}), "epsilon", 1e-3F);
  set_float(b.node("LeakyRelu", {"bn"}, {"l"}), "alpha", 0.2F);
  b.node("HardSigmoid", {"l"}, {"hs"});
  b.node("Sigmoid", {"hs"}, {"sig"});
  b.node("Mul", {"hs", "sig"}, {"swish"});  // x * sigmoid(x)
  b.node("Tanh", {"swish"}, {"t"});
  b.node("GlobalAveragePool", {"t"}, {"gap"});
  b.node("Flatten", {"gap"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(g.nodes[0].attrs.epsilon, 1e-3F);
  EXPECT_EQ(g.nodes[1].attrs.alpha, 0.2F);
  EXPECT_EQ(g.nodes[2].attrs.alpha, 0.2F);
  EXPECT_EQ(g.nodes[2].attrs.beta, 0.5F);
  EXPECT_EQ(count_op(g, OpKind::kMul), 1);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 3}));
  EXPECT_EQ(g.param_count(), 12);
}

// ---- dense layers ----

TEST(OnnxImporter, GemmFoldsTransposeAlphaBeta) {
  ModelBuilder b(11);
  b.input("x", {-1, 4});
  b.weights("w", {4, 3});  // transB = 0: stored as [K, M]
  b.weights("c", {3}, 1.0F);
  auto* n = b.node("Gemm", {"x", "w", "c"}, {"y"});
  set_float(n, "alpha", 2.0F);
  set_float(n, "beta", 0.5F);
  b.output("y");
  Graph g = import_ok(b);
  ASSERT_EQ(g.nodes.size(), 1U);
  const auto& gemm = g.nodes[0];
  EXPECT_EQ(gemm.op, OpKind::kGemm);
  const auto& w = g.value(gemm.inputs[1]);
  EXPECT_EQ(w.shape, (Shape{3, 4}));
  // W[m][k] = alpha * w[k][m]; w[k][m] = 0.1 + 0.01 * (k * 3 + m)
  EXPECT_FLOAT_EQ(w.f32[1 * 4 + 2], 2.0F * (0.1F + 0.01F * 7));
  EXPECT_FLOAT_EQ(g.value(gemm.inputs[2]).f32[0], 0.5F);
  EXPECT_EQ(g.param_count(), 15);
}

TEST(OnnxImporter, GemmWithRunTimeWeightBecomesMatMul) {
  ModelBuilder b(13);
  b.input("x", {-1, 4});
  b.weights("w0", {3, 4});
  b.weights("c", {3});
  b.node("Relu", {"w0"}, {"w"});  // computed at run time, so not a Gemm weight
  auto* n = b.node("Gemm", {"x", "w", "c"}, {"y"});
  set_int(n, "transB", 1);
  set_float(n, "alpha", 0.5F);
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(count_op(g, OpKind::kGemm), 0);
  EXPECT_EQ(count_op(g, OpKind::kTranspose), 1);
  EXPECT_EQ(count_op(g, OpKind::kMatMul), 1);
  EXPECT_EQ(count_op(g, OpKind::kMul), 1);  // alpha
  EXPECT_EQ(count_op(g, OpKind::kAdd), 1);  // C
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 3}));
}

TEST(OnnxImporter, MatMulAddBecomesGemmOnlyWithConstantVector) {
  ModelBuilder b(13, "tf2onnx");
  b.input("x", {-1, 6});
  b.weights("k", {6, 4});
  b.weights("bias", {4});
  b.weights("k2", {4, 2});
  b.node("MatMul", {"x", "k"}, {"mm"});
  b.node("Add", {"mm", "bias"}, {"dense"});
  b.node("MatMul", {"dense", "k2"}, {"y"});  // no bias: stays MatMul
  b.output("y");
  Graph g = import_ok(b);
  ASSERT_EQ(g.nodes.size(), 2U);
  EXPECT_EQ(g.nodes[0].op, OpKind::kGemm);
  EXPECT_EQ(g.value(g.nodes[0].inputs[1]).shape, (Shape{4, 6}));
  EXPECT_FLOAT_EQ(g.value(g.nodes[0].inputs[1]).f32[1 * 6 + 0], 0.1F + 0.01F * 1);  // W^T[1][0] = k[0][1]
  EXPECT_EQ(g.nodes[1].op, OpKind::kMatMul);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 2}));
  EXPECT_EQ(g.param_count(), 24 + 4 + 8);
}

// ---- folds ----

TEST(OnnxImporter, ReduceMeanCastDropoutIdentityFold) {
  ModelBuilder b(13);
  b.input("x", {-1, 5, 3, 3});
  set_int(b.node("Cast", {"x"}, {"f"}), "to", onnx::TensorProto::FLOAT);
  b.node("Dropout", {"f"}, {"d"});
  b.node("Identity", {"d"}, {"i"});
  auto* rm = b.node("ReduceMean", {"i"}, {"m"});
  set_ints(rm, "axes", {-2, -1});
  set_int(rm, "keepdims", 0);
  b.node("Relu", {"m"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  ASSERT_EQ(g.nodes.size(), 3U);
  EXPECT_EQ(g.nodes[0].op, OpKind::kGlobalAvgPool);
  EXPECT_EQ(g.nodes[1].op, OpKind::kSqueeze);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 5}));
}

TEST(OnnxImporter, Float16AndDoubleWeightsBecomeF32) {
  ModelBuilder b(13);
  b.input("x", {-1, 2});
  auto* h = b.graph()->add_initializer();
  h->set_name("h");
  h->set_data_type(onnx::TensorProto::FLOAT16);
  h->add_dims(2);
  const std::uint16_t halves[] = {0x3C00, 0xC000};  // 1.0, -2.0
  h->set_raw_data(std::string(reinterpret_cast<const char*>(halves), sizeof halves));
  auto* d = b.graph()->add_initializer();
  d->set_name("d");
  d->set_data_type(onnx::TensorProto::DOUBLE);
  d->add_dims(2);
  d->add_double_data(0.25);
  d->add_double_data(4.0);
  b.node("Mul", {"x", "h"}, {"m"});
  b.node("Add", {"m", "d"}, {"y"});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(g.value(g.nodes[0].inputs[1]).f32, (std::vector<float>{1.0F, -2.0F}));
  EXPECT_EQ(g.value(g.nodes[1].inputs[1]).f32, (std::vector<float>{0.25F, 4.0F}));
  EXPECT_EQ(g.param_count(), 4);
}

TEST(OnnxImporter, ConcatTransposeAndConstantOfShape) {
  ModelBuilder b(13);
  b.input("x", {-1, 4, 5, 5});
  b.ints("shape", {1, 1, 5, 5});
  auto* cos = b.node("ConstantOfShape", {"shape"}, {"ones"});
  auto* value = cos->add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  value->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
  value->mutable_t()->add_dims(1);
  value->mutable_t()->add_float_data(1.0F);
  b.node("Add", {"x", "ones"}, {"shifted"});
  set_int(b.node("Concat", {"x", "shifted"}, {"cat"}), "axis", 1);
  set_ints(b.node("Transpose", {"cat"}, {"y"}), "perm", {0, 2, 3, 1});
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 5, 5, 8}));
  EXPECT_EQ(g.value(g.inputs[0]).layout, Layout::kNCHW);
}

TEST(OnnxImporter, NhwcGuessedFromChannelsLast) {
  ModelBuilder b(13);
  b.input("x", {-1, 32, 32, 3});  // no leading Transpose, but 3 channels last and 32 first
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  EXPECT_EQ(import_ok(b).value(0).layout, Layout::kNHWC);
}

// ---- hostile input ----

TEST(OnnxImporter, RejectsEmptyTruncatedAndRandomBytes) {
  EXPECT_EQ(import_error("").code, ErrorCode::kCorruptFile);
  const std::string fixture = kFixtures + "pytorch1.10_mnist_cnn.onnx";
  if (std::filesystem::exists(fixture)) {
    const std::string bytes = read_file(fixture);
    for (std::size_t cut : {std::size_t{7}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 5}) {
      auto e = import_error(bytes.substr(0, cut));
      EXPECT_EQ(e.code, ErrorCode::kCorruptFile) << "cut at " << cut << ": " << e.message;
      EXPECT_NE(e.message.find("not a valid ONNX model"), std::string::npos) << e.message;
    }
  }
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::string noise(static_cast<std::size_t>(1 + trial * 37), '\0');
    for (auto& c : noise) c = static_cast<char>(rng());
    auto r = onnx_import::import_bytes(noise, "noise.onnx");
    EXPECT_FALSE(r.ok());
  }
}

TEST(OnnxImporter, RejectsOtherFormatsByName) {
  auto h5 = import_error(std::string("\x89HDF\r\n\x1a\n", 8) + std::string(100, '\0'));
  EXPECT_EQ(h5.code, ErrorCode::kCorruptFile);
  EXPECT_NE(h5.message.find("HDF5"), std::string::npos);
  auto zip = import_error(std::string("PK\x03\x04", 4) + std::string(100, 'a'));
  EXPECT_EQ(zip.code, ErrorCode::kCorruptFile);
  EXPECT_NE(zip.message.find("ZIP"), std::string::npos);
  auto pickle = import_error(std::string("\x80\x02}q\x00.", 6));
  EXPECT_EQ(pickle.code, ErrorCode::kCorruptFile);
  EXPECT_NE(pickle.message.find("pickle"), std::string::npos);
  const std::string keras = kFixtures + "keras2.3_mnist_cnn.h5";
  if (std::filesystem::exists(keras)) {
    auto r = onnx_import::import_file(keras);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kCorruptFile);
  }
  auto missing = onnx_import::import_file("/nonexistent/model.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(OnnxImporter, UnsupportedOpNamesOpNodeAndOpset) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, 4, 4});
  b.node("Resize", {"x"}, {"y"}, "upsample_1");
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.message.find("Resize"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("upsample_1"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("opset 13"), std::string::npos) << e.message;
  EXPECT_NE(e.hint.find("upsampling is out of scope"), std::string::npos) << e.hint;
  EXPECT_NE(e.hint.find("open an issue naming the op"), std::string::npos) << e.hint;
}

// Out-of-scope ops that third-party vision models carry get op-specific advice in the hint.
TEST(OnnxImporter, OutOfScopeOpsGiveAWorkaround) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"LRN", "LocalResponseNorm"}, {"LSTM", "recurrent"}, {"Upsample", "upsampling"}, {"Erf", "GELU"}};
  for (const auto& [op, advice] : cases) {
    ModelBuilder b(13);
    b.input("x", {-1, 3, 4, 4});
    b.node(op, {"x"}, {"y"}, "layer_" + op);
    b.output("y");
    auto e = import_error(b.bytes());
    EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp) << op;
    EXPECT_NE(e.message.find("'" + op + "'"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("layer_" + op), std::string::npos) << e.message;
    EXPECT_NE(e.hint.find(advice), std::string::npos) << e.hint;
    EXPECT_NE(e.hint.find("open an issue"), std::string::npos) << e.hint;
  }
}

// PyTorch's nn.LocalResponseNorm arrives as a 3-D AveragePool over [N, 1, C, H, W].
TEST(OnnxImporter, TorchLocalResponseNormNamesItself) {
  ModelBuilder b(13);
  b.input("x", {-1, 1, 4, 6, 6});
  auto* pool = b.node("AveragePool", {"x"}, {"y"}, "/n/AveragePool");
  set_ints(pool, "kernel_shape", {5, 1, 1});
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.message.find("/n/AveragePool"), std::string::npos) << e.message;
  EXPECT_NE(e.hint.find("LocalResponseNorm"), std::string::npos) << e.hint;
}

TEST(OnnxImporter, UnknownDomainIsUnsupported) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, 4, 4});
  b.node("FusedConv", {"x"}, {"y"}, "fused")->set_domain("com.microsoft");
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.message.find("com.microsoft"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("fused"), std::string::npos) << e.message;
}

TEST(OnnxImporter, ExternalDataIsAClearError) {
  ModelBuilder b(13);
  b.input("x", {-1, 4});
  auto* w = b.graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  w->add_dims(4);
  w->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value("weights.bin");
  set_int(b.node("Gemm", {"x", "w"}, {"y"}), "transB", 1);
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedFormat);
  EXPECT_NE(e.message.find("external data"), std::string::npos) << e.message;
  EXPECT_NE(e.hint.find("save_as_external_data=False"), std::string::npos) << e.hint;
}

TEST(OnnxImporter, RawDataSizeMustMatchDims) {
  ModelBuilder b(13);
  b.input("x", {-1, 4});
  auto* w = b.graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  w->add_dims(4);
  w->set_raw_data(std::string(40, '\0'));  // 10 floats for 12
  set_int(b.node("Gemm", {"x", "w"}, {"y"}), "transB", 1);
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kCorruptFile);
  EXPECT_NE(e.message.find("'w'"), std::string::npos) << e.message;
}

TEST(OnnxImporter, OpsetOutsideRangeIsRejected) {
  for (int opset : {6, 19}) {
    ModelBuilder b(opset);
    b.input("x", {-1, 4});
    b.node("Relu", {"x"}, {"y"});
    b.output("y");
    auto e = import_error(b.bytes());
    EXPECT_EQ(e.code, ErrorCode::kUnsupportedFormat) << opset;
    EXPECT_NE(e.message.find("opset " + std::to_string(opset)), std::string::npos) << e.message;
  }
}

TEST(OnnxImporter, HostileAttributesFailCleanly) {
  ModelBuilder b(13);
  b.input("x", {-1, 1, 5, 5});
  b.weights("w", {1, 1, 3, 3});
  set_ints(b.node("Conv", {"x", "w"}, {"c"}), "strides", {0, 1});
  b.ints("target", {std::int64_t{1} << 40, std::int64_t{1} << 40});
  b.node("Reshape", {"c", "target"}, {"y"});
  b.output("y");
  EXPECT_EQ(import_error(b.bytes()).code, ErrorCode::kCorruptFile);

  ModelBuilder missing(13);
  missing.input("x", {-1, 4});
  missing.node("Relu", {"nowhere"}, {"y"});
  missing.output("y");
  EXPECT_EQ(import_error(missing.bytes()).code, ErrorCode::kCorruptFile);
}


// ---- Slice, Split and Gather on run-time data ----

const edgeopt::ir::Node* find_named(const Graph& g, OpKind op, const std::string& output) {
  for (const auto& n : g.nodes) {
    if (n.op == op && g.value(n.outputs[0]).name == output) return &n;
  }
  return nullptr;
}

// Opset 13 takes starts/ends/axes/steps as inputs; opset 9 as attributes. The whole-batch slice
// PyTorch writes for x[:, ...] is dropped.
TEST(OnnxImporter, SliceOnActivationsBecomesIrSlice) {
  for (int opset : {9, 13}) {
    ModelBuilder b(opset);
    b.input("x", {-1, 8, 6, 6});
    b.node("Relu", {"x"}, {"r"});
    if (opset >= 10) {
      b.ints("starts", {0, 2, -4});
      b.ints("ends", {std::numeric_limits<std::int64_t>::max(), 100, -1});
      b.ints("axes", {0, 1, 3});
      b.ints("steps", {1, 2, 1});
      b.node("Slice", {"r", "starts", "ends", "axes", "steps"}, {"y"});
    } else {
      auto* n = b.node("Slice", {"r"}, {"y"});
      set_ints(n, "starts", {0, 2, -4});
      set_ints(n, "ends", {std::numeric_limits<std::int64_t>::max(), 100, -1});
      set_ints(n, "axes", {0, 1, 3});
    }
    b.output("y");
    Graph g = import_ok(b);
    const auto* slice = find_op(g, OpKind::kSlice);
    ASSERT_NE(slice, nullptr) << "opset " << opset;
    EXPECT_EQ(slice->attrs.axes, (std::vector<std::int64_t>{1, 3})) << "opset " << opset;
    EXPECT_EQ(slice->attrs.starts, (std::vector<std::int64_t>{2, -4})) << "opset " << opset;
    EXPECT_EQ(output_shape(g), (Shape{kBatch, opset >= 10 ? 3 : 6, 6, 3})) << "opset " << opset;
  }
}

TEST(OnnxImporter, SliceRejectsNegativeStepsAndBatchSlices) {
  for (const auto& [axis, step, what] : std::vector<std::tuple<std::int64_t, std::int64_t, std::string>>{{1, -1, "negative step"}, {0, 1, "batch"}}) {
    ModelBuilder b(13);
    b.input("x", {-1, 8, 6, 6});
    b.ints("starts", {step < 0 ? -1 : 1});
    b.ints("ends", {step < 0 ? -100 : 2});
    b.ints("axes", {axis});
    b.ints("steps", {step});
    b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"}, "the_slice");
    b.output("y");
    auto e = import_error(b.bytes());
    EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp) << what;
    EXPECT_NE(e.message.find("the_slice"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(what), std::string::npos) << e.message;
  }
}

// ShuffleNet v2's channel split: explicit sizes (attribute before opset 13, input after), equal
// parts, and opset 18's num_outputs with a smaller last part.
TEST(OnnxImporter, SplitBecomesOneSlicePerOutput) {
  struct Case {
    int opset;
    std::vector<std::int64_t> sizes;  // empty: equal parts
    std::int64_t channels;
    std::vector<std::int64_t> expect;
  };
  const std::vector<Case> cases = {
      {11, {3, 5}, 8, {3, 5}}, {13, {2, 6}, 8, {2, 6}}, {13, {}, 8, {4, 4}}, {18, {}, 7, {4, 3}}};
  for (const Case& c : cases) {
    ModelBuilder b(c.opset);
    b.input("x", {-1, c.channels, 4, 4});
    std::vector<std::string> inputs{"x"};
    if (!c.sizes.empty() && c.opset >= 13) {
      b.ints("split", c.sizes);
      inputs.push_back("split");
    }
    auto* n = b.node("Split", inputs, {"a", "b"}, "the_split");
    set_int(n, "axis", 1);
    if (!c.sizes.empty() && c.opset < 13) set_ints(n, "split", c.sizes);
    if (c.opset >= 18) set_int(n, "num_outputs", 2);
    b.node("Relu", {"a"}, {"ra"});
    b.node("Relu", {"b"}, {"rb"});
    set_int(b.node("Concat", {"rb", "ra"}, {"y"}), "axis", 1);
    b.output("y");
    Graph g = import_ok(b);
    EXPECT_EQ(count_op(g, OpKind::kSlice), 2) << "opset " << c.opset;
    const auto* a = find_named(g, OpKind::kSlice, "a");
    const auto* second = find_named(g, OpKind::kSlice, "b");
    ASSERT_NE(a, nullptr) << "opset " << c.opset;
    ASSERT_NE(second, nullptr) << "opset " << c.opset;
    EXPECT_EQ(g.value(a->outputs[0]).shape, (Shape{kBatch, c.expect[0], 4, 4})) << "opset " << c.opset;
    EXPECT_EQ(g.value(second->outputs[0]).shape, (Shape{kBatch, c.expect[1], 4, 4})) << "opset " << c.opset;
    EXPECT_EQ(second->attrs.starts, (std::vector<std::int64_t>{c.expect[0]})) << "opset " << c.opset;
    EXPECT_EQ(output_shape(g), (Shape{kBatch, c.channels, 4, 4})) << "opset " << c.opset;
  }
}

TEST(OnnxImporter, SplitSizesThatDoNotAddUpAreCorrupt) {
  ModelBuilder b(13);
  b.input("x", {-1, 8, 4, 4});
  b.ints("split", {3, 3});
  set_int(b.node("Split", {"x", "split"}, {"a", "b"}, "bad_split"), "axis", 1);
  b.output("a");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kCorruptFile);
  EXPECT_NE(e.message.find("bad_split"), std::string::npos) << e.message;
}

// Inception v3's transform_input: x[:, i] is Gather(axis 1, scalar i), then Unsqueeze and Concat.
TEST(OnnxImporter, GatherOfOneConstantIndexBecomesSlice) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, 4, 4});
  b.ints("i0", {0}, true);
  b.ints("i2", {-1}, true);
  b.ints("i1", {1});
  set_int(b.node("Gather", {"x", "i0"}, {"c0"}), "axis", 1);
  set_int(b.node("Gather", {"x", "i2"}, {"c2"}), "axis", 1);
  set_int(b.node("Gather", {"x", "i1"}, {"c1"}), "axis", 1);  // a 1-element index keeps the axis
  b.ints("axes", {1});
  b.node("Unsqueeze", {"c0", "axes"}, {"u0"});
  b.node("Unsqueeze", {"c2", "axes"}, {"u2"});
  set_int(b.node("Concat", {"u2", "c1", "u0"}, {"y"}), "axis", 1);
  b.output("y");
  Graph g = import_ok(b);
  EXPECT_EQ(count_op(g, OpKind::kSlice), 3);
  EXPECT_EQ(count_op(g, OpKind::kSqueeze), 2);
  EXPECT_EQ(output_shape(g), (Shape{kBatch, 3, 4, 4}));
  const auto* last = find_named(g, OpKind::kSqueeze, "c2");
  ASSERT_NE(last, nullptr);
  const auto& slice = g.nodes[static_cast<std::size_t>(last - g.nodes.data()) - 1];
  EXPECT_EQ(slice.attrs.starts, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(g.value(last->outputs[0]).shape, (Shape{kBatch, 4, 4}));
}

TEST(OnnxImporter, GatherWithManyOrRunTimeIndicesIsUnsupported) {
  ModelBuilder b(13);
  b.input("x", {-1, 3, 4, 4});
  b.ints("idx", {0, 2});
  set_int(b.node("Gather", {"x", "idx"}, {"y"}, "many"), "axis", 1);
  b.output("y");
  auto e = import_error(b.bytes());
  EXPECT_EQ(e.code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(e.message.find("many"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("one constant index"), std::string::npos) << e.message;
}

}  // namespace
