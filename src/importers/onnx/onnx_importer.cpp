// ONNX (opsets 7-18) into the IR. Shape subgraphs are evaluated at import time (onnx_fold.cpp),
// everything else maps node by node onto the op catalogue, with shapes inferred as we go so
// Shape ops and auto_pad can be resolved.
#include "importers/onnx/onnx_importer.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "importers/onnx/onnx_qdq.h"
#include "importers/onnx/onnx_tensor.h"
#include "ir/text.h"

namespace edgeopt::onnx_import {
namespace {

using detail::attr_float;
using detail::attr_int;
using detail::attr_ints;
using detail::attr_string;
using detail::ConstTensor;
using detail::describe;
using detail::find_attr;
using detail::int_values;
using detail::kMaxDim;
using detail::kMaxElements;
using detail::node_name;
using detail::Origin;

constexpr std::int64_t kMinOpset = 7;
constexpr std::int64_t kMaxOpset = 18;
constexpr std::int64_t kMaxWindow = std::int64_t{1} << 31;  // kernel, stride, dilation, pad, group
constexpr const char* kWorkaround = "re-export with opset 13, or open an issue";

// What to do about an op EdgeOpt has no IR op for: op-specific advice for the out-of-scope ops that
// third-party vision models carry, then the general workaround.
std::string unsupported_op_hint(const std::string& op) {
  static const std::unordered_map<std::string_view, std::string_view> kAdvice = {
      {"LRN", "LocalResponseNorm (old AlexNet/GoogLeNet variants) is out of scope: remove it or replace it by BatchNorm and retrain"},
      {"Resize", "upsampling is out of scope (EdgeOpt imports image classifiers): crop the model before it"},
      {"Upsample", "upsampling is out of scope (EdgeOpt imports image classifiers): crop the model before it"},
      {"LSTM", "recurrent layers are out of scope: EdgeOpt imports CNN image models"},
      {"GRU", "recurrent layers are out of scope: EdgeOpt imports CNN image models"},
      {"RNN", "recurrent layers are out of scope: EdgeOpt imports CNN image models"},
      {"Erf", "GELU (exported as Erf) has no IR op yet: replace it by ReLU/SiLU and retrain"},
      {"Loop", "control flow is out of scope: export a traced, loop-free model"},
      {"If", "control flow is out of scope: export a traced, branch-free model"},
  };
  auto it = kAdvice.find(op);
  return it == kAdvice.end() ? std::string(kWorkaround) + " naming the op" : std::string(it->second) + "; or open an issue naming the op";
}

// What an ONNX tensor name stands for while importing.
struct Entry {
  int id = -1;                                   // IR value of a run-time tensor
  std::shared_ptr<const ConstTensor> constant;  // or a constant known at import time
  bool int8 = false;                             // QuantizeLinear's codes of value `id`, until a DequantizeLinear
  bool present() const { return id >= 0 || constant != nullptr; }
};

using Inputs = std::vector<Entry>;

[[noreturn]] void corrupt(const std::string& what) {
  fail(ErrorCode::kCorruptFile, "not a valid ONNX model: " + what, "the file does not follow the ONNX specification; re-export the model");
}

std::string ints_text(const std::vector<std::int64_t>& v) {
  std::string out = "[";
  for (std::size_t k = 0; k < v.size(); ++k) out += (k ? "," : "") + std::to_string(v[k]);
  return out + "]";
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, std::string source) : model_(model), g_(model.graph()), source_(std::move(source)) {}

  ir::Graph run() {
    read_opset();
    for (const auto& init : g_.initializer()) initializers_[init.name()] = &init;
    for (const auto& n : g_.node()) {
      for (const auto& name : n.input()) consumed_.insert(name);
    }
    for (const auto& out : g_.output()) consumed_.insert(out.name());
    graph_.name = g_.name().empty() ? std::string("model") : g_.name();
    graph_.producer = model_.producer_name();
    if (!model_.producer_version().empty()) graph_.producer += (graph_.producer.empty() ? "" : " ") + model_.producer_version();
    add_inputs();
    for (const auto& n : g_.node()) convert(n);
    add_outputs();
    fuse_matmul_add();
    graph_.infer_shapes();
    graph_.simplify();
    detail::per_channel_weights(graph_);
    if (Status st = ir::verify(graph_); !st.ok()) throw Failure{st.error()};
    return std::move(graph_);
  }

 private:
  using Converter = void (Importer::*)(const onnx::NodeProto&, const Inputs&);

  // ---- model level ----

  void read_opset() {
    for (const auto& o : model_.opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
    }
    if (opset_ == 0) corrupt("'" + source_ + "' declares no opset for the standard ONNX domain");
    if (opset_ < kMinOpset || opset_ > kMaxOpset) {
      fail(ErrorCode::kUnsupportedFormat,
           "'" + source_ + "' uses ONNX opset " + std::to_string(opset_) + "; EdgeOpt reads opsets " + std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset),
           "re-export with opset_version=13, or convert it: onnx.version_converter.convert_version(onnx.load('model.onnx'), 13)");
    }
  }

  ir::Layout layout_of(const std::string& name, const ir::Shape& shape) const {
    if (shape.size() == 2) return ir::Layout::kNC;
    if (shape.size() != 4) return ir::Layout::kUnknown;
    for (const auto& n : g_.node()) {
      if (std::find(n.input().begin(), n.input().end(), name) == n.input().end()) continue;
      // keras2onnx/tf2onnx start NHWC models with this transpose to NCHW.
      if (n.op_type() == "Transpose" && attr_ints(n, "perm") == std::vector<std::int64_t>{0, 3, 1, 2}) return ir::Layout::kNHWC;
      break;
    }
    const auto channels_like = [](std::int64_t d) { return d == 1 || d == 3; };
    return channels_like(shape[3]) && !channels_like(shape[1]) ? ir::Layout::kNHWC : ir::Layout::kNCHW;
  }

  void add_inputs() {
    for (const auto& vi : g_.input()) {
      const std::string& name = vi.name();
      if (initializers_.count(name)) continue;  // old exporters list weights as inputs too
      if (!vi.type().has_tensor_type()) fail(ErrorCode::kUnsupportedFormat, "input '" + name + "' of '" + source_ + "' is not a tensor", "EdgeOpt imports image models with tensor inputs");
      const auto& tensor = vi.type().tensor_type();
      if (tensor.elem_type() != onnx::TensorProto::FLOAT) {
        fail(ErrorCode::kUnsupportedFormat,
             "input '" + name + "' of '" + source_ + "' has data type " + std::to_string(tensor.elem_type()) + "; EdgeOpt feeds float32 tensors",
             "re-export the model with a float32 input");
      }
      if (!tensor.has_shape() || tensor.shape().dim_size() == 0) {
        fail(ErrorCode::kInvalidArgument, "input '" + name + "' of '" + source_ + "' has no shape", "re-export the model with a fixed input shape, e.g. [N, 3, 224, 224]");
      }
      ir::Shape shape;
      for (int d = 0; d < tensor.shape().dim_size(); ++d) {
        const auto& dim = tensor.shape().dim(d);
        if (d == 0) {
          // The batch is always symbolic in the IR; remember a fixed export batch to undo it later.
          if (dim.has_dim_value() && dim.dim_value() > 0 && fixed_batch_ == 0) fixed_batch_ = std::min(dim.dim_value(), kMaxDim);
          shape.push_back(ir::kBatch);
          continue;
        }
        if (!dim.has_dim_value() || dim.dim_value() <= 0) {
          const std::string label = dim.has_dim_param() ? " ('" + dim.dim_param() + "')" : "";
          fail(ErrorCode::kInvalidArgument,
               "input '" + name + "' of '" + source_ + "' has an unknown dimension " + std::to_string(d) + label,
               "only the batch dimension may be symbolic; re-export with a fixed input size, or fix it with "
               "python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param NAME --dim_value SIZE in.onnx out.onnx");
        }
        if (dim.dim_value() > kMaxDim) corrupt("input '" + name + "' has a dimension of " + std::to_string(dim.dim_value()));
        shape.push_back(dim.dim_value());
      }
      detail::checked_count(ir::Shape(shape.begin() + 1, shape.end()), kMaxElements, "input '" + name + "'");
      const int id = graph_.add_input(name, shape, layout_of(name, shape));
      env_[name] = Entry{id, nullptr};
    }
    if (graph_.inputs.empty()) corrupt("'" + source_ + "' has no graph inputs besides its weights");
  }

  void add_outputs() {
    for (const auto& vi : g_.output()) {
      auto it = env_.find(vi.name());
      if (it == env_.end()) corrupt("graph output '" + vi.name() + "' is never produced");
      if (it->second.id < 0) {
        fail(ErrorCode::kUnsupportedOp, "graph output '" + vi.name() + "' is a constant; it does not depend on the input",
             "remove constant outputs from the model before importing");
      }
      int id = it->second.id;
      if (std::find(graph_.inputs.begin(), graph_.inputs.end(), id) != graph_.inputs.end()) {
        id = graph_.add_node(ir::OpKind::kIdentity, "output_" + vi.name(), {id}, {}, vi.name(), "Identity");
        graph_.value(id).shape = graph_.value(graph_.nodes.back().inputs[0]).shape;
      }
      graph_.outputs.push_back(id);
      if (graph_.value(id).shape.size() == 2) graph_.value(id).layout = ir::Layout::kNC;
    }
    if (graph_.outputs.empty()) corrupt("'" + source_ + "' has no graph outputs");
  }

  // A 2-D MatMul by a constant matrix followed by Add of a constant vector is a dense layer:
  // keras2onnx and tf2onnx write Dense that way. Gemm wants the weight as [out, in].
  void fuse_matmul_add() {
    const std::size_t value_count = graph_.values.size();
    std::vector<int> readers(value_count, 0);
    std::vector<std::size_t> reader(value_count, 0);
    for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
      for (int id : graph_.nodes[k].inputs) {
        if (id < 0) continue;
        ++readers[static_cast<std::size_t>(id)];
        reader[static_cast<std::size_t>(id)] = k;
      }
    }
    for (int id : graph_.outputs) ++readers[static_cast<std::size_t>(id)];
    std::vector<bool> removed(graph_.nodes.size(), false);
    for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
      if (graph_.nodes[k].op != ir::OpKind::kMatMul) continue;
      const int x_id = graph_.nodes[k].inputs[0];
      const int w_id = graph_.nodes[k].inputs[1];
      const int mid = graph_.nodes[k].outputs[0];
      const ir::Value& w = graph_.value(w_id);
      if (graph_.value(x_id).shape.size() != 2 || !w.is_constant || w.dtype != ir::DType::kF32 || w.shape.size() != 2) continue;
      if (readers[static_cast<std::size_t>(mid)] != 1) continue;
      const std::size_t add_at = reader[static_cast<std::size_t>(mid)];
      const ir::Node& add = graph_.nodes[add_at];
      if (add.op != ir::OpKind::kAdd || add.inputs[0] == add.inputs[1]) continue;
      const int bias_id = add.inputs[0] == mid ? add.inputs[1] : add.inputs[0];
      const ir::Value& bias = graph_.value(bias_id);
      const std::int64_t in_features = w.shape[0];
      const std::int64_t out_features = w.shape[1];
      const bool vector_bias = bias.shape == ir::Shape{out_features} || bias.shape == ir::Shape{1, out_features};
      if (!bias.is_constant || bias.dtype != ir::DType::kF32 || !vector_bias) continue;
      std::vector<float> transposed(w.f32.size());
      for (std::int64_t i = 0; i < in_features; ++i) {
        for (std::int64_t j = 0; j < out_features; ++j) transposed[static_cast<std::size_t>(j * in_features + i)] = w.f32[static_cast<std::size_t>(i * out_features + j)];
      }
      const std::vector<float> bias_data = bias.f32;
      const bool flat_bias = bias.shape.size() == 1;
      const std::string w_name = w.name;
      const std::string bias_name = bias.name;
      const int out_id = add.outputs[0];
      const std::optional<ir::QuantParams> w_quant = w.quant;
      const int gemm_w = graph_.add_constant(w_name, {out_features, in_features}, std::move(transposed));
      if (w_quant) graph_.value(gemm_w).quant = detail::transposed_quant(*w_quant);
      const int gemm_b = flat_bias ? bias_id : graph_.add_constant(bias_name, {out_features}, bias_data);
      ir::Node& gemm = graph_.nodes[k];
      gemm.op = ir::OpKind::kGemm;
      gemm.source_op = "MatMul+Add";
      gemm.inputs = {x_id, gemm_w, gemm_b};
      gemm.outputs = {out_id};
      removed[add_at] = true;
    }
    std::vector<ir::Node> kept;
    for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
      if (!removed[k]) kept.push_back(std::move(graph_.nodes[k]));
    }
    graph_.nodes = std::move(kept);
  }

  // ---- nodes ----

  void convert(const onnx::NodeProto& n) {
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      fail(ErrorCode::kUnsupportedOp,
           "unsupported op '" + n.op_type() + "' from domain '" + n.domain() + "' in node '" + node_name(n) + "' (opset " + std::to_string(opset_) + ")",
           "this op is not standard ONNX (often added by a runtime's graph optimizer); export the plain model, " + std::string(kWorkaround));
    }
    if (n.output_size() == 0 || n.output(0).empty()) corrupt(describe(n) + " has no output");
    Inputs in;
    bool all_constant = true;
    for (const auto& name : n.input()) {
      in.push_back(resolve(name, n));
      all_constant = all_constant && (!in.back().present() || in.back().constant);
    }
    const std::string& op = n.op_type();
    if (op == "Shape") {
      shape(n, in);
    } else if ((op == "Identity" || op == "Dropout") && all_constant && present(in, 0)) {
      // Same tensor, same IR constant: exporters alias deduplicated weights this way.
      bind(n.output(0), in[0]);
    } else if (detail::is_foldable(op) && all_constant && !(op == "Transpose" && present(in, 0) && in[0].constant->is_float)) {
      // A Transpose of float weights stays an IR op, as before; integer ones (PyTorch's pad
      // arithmetic) are shape data and must fold.
      std::vector<const ConstTensor*> args;
      for (const auto& e : in) args.push_back(e.constant.get());
      auto folded = std::make_shared<const ConstTensor>(detail::fold_node(n, args));
      if (op == "Constant") literals_.insert(folded.get());
      // Each op is capped on its own, but a chain (Concat(x, x) forty times) doubles within
      // every cap: all folded values together stay within a budget from the file's own size.
      if (op != "Constant") {
        folded_elements_ += folded->size();
        if (fold_budget_ == 0) fold_budget_ = (std::uint64_t{16} << 20) + static_cast<std::uint64_t>(model_.ByteSizeLong());
        if (folded_elements_ > fold_budget_) {
          corrupt(describe(n) + ": constant evaluation makes more than " + std::to_string(fold_budget_) +
                  " values in all; the file is crafted or damaged (its own size allows far fewer)");
        }
      }
      bind(n.output(0), Entry{-1, std::move(folded)});
    } else {
      static const std::unordered_map<std::string_view, Converter> kConverters = {
          {"Conv", &Importer::conv},
          {"Gemm", &Importer::gemm},
          {"MatMul", &Importer::matmul},
          {"Add", &Importer::binary},
          {"Sub", &Importer::binary},
          {"Mul", &Importer::binary},
          {"Div", &Importer::binary},
          {"Relu", &Importer::unary},
          {"Sigmoid", &Importer::unary},
          {"Tanh", &Importer::unary},
          {"HardSwish", &Importer::unary},
          {"LeakyRelu", &Importer::unary},
          {"HardSigmoid", &Importer::unary},
          {"Clip", &Importer::clip},
          {"Softmax", &Importer::softmax},
          {"LogSoftmax", &Importer::softmax},
          {"BatchNormalization", &Importer::batch_norm},
          {"MaxPool", &Importer::pool},
          {"AveragePool", &Importer::pool},
          {"GlobalAveragePool", &Importer::global_pool},
          {"GlobalMaxPool", &Importer::global_pool},
          {"Flatten", &Importer::flatten},
          {"Reshape", &Importer::reshape},
          {"Transpose", &Importer::transpose},
          {"Concat", &Importer::concat},
          {"Pad", &Importer::pad},
          {"Squeeze", &Importer::squeeze},
          {"Unsqueeze", &Importer::squeeze},
          {"Dropout", &Importer::identity},
          {"Identity", &Importer::identity},
          {"Cast", &Importer::cast},
          {"ReduceMean", &Importer::reduce_mean},
          {"Slice", &Importer::slice},
          {"Split", &Importer::split},
          {"Gather", &Importer::gather},
          {"QuantizeLinear", &Importer::quantize_linear},
          {"DequantizeLinear", &Importer::dequantize_linear},
      };
      auto it = kConverters.find(op);
      if (it == kConverters.end()) {
        const std::string why = detail::is_foldable(op) ? " on run-time data (it is evaluated only on constant shape data)" : "";
        fail(ErrorCode::kUnsupportedOp,
             "unsupported ONNX op '" + op + "'" + why + " in node '" + node_name(n) + "' (opset " + std::to_string(opset_) + ")",
             unsupported_op_hint(op));
      }
      (this->*(it->second))(n, in);
    }
    // Extra outputs (Dropout's mask, MaxPool's indices, training statistics) are never computed.
    for (int k = 1; k < n.output_size(); ++k) {
      if (!n.output(k).empty() && consumed_.count(n.output(k)) && !env_.count(n.output(k))) {
        fail(ErrorCode::kUnsupportedOp, describe(n) + ": its output #" + std::to_string(k) + " ('" + n.output(k) + "') is used, but EdgeOpt computes only the first output",
             "export the model for inference (model.eval()), " + std::string(kWorkaround));
      }
    }
  }

  Entry resolve(const std::string& name, const onnx::NodeProto& n) {
    if (name.empty()) return {};
    if (auto it = env_.find(name); it != env_.end()) return it->second;
    if (auto it = initializers_.find(name); it != initializers_.end()) {
      Entry e{-1, std::make_shared<const ConstTensor>(detail::decode_tensor(*it->second, "initializer"))};
      env_[name] = e;
      return e;
    }
    corrupt(describe(n) + " reads '" + name + "', which no node, input or initializer produces (is the graph topologically sorted?)");
  }

  void bind(const std::string& name, Entry e) { env_[name] = std::move(e); }

  // The IR value of input k, turning a float constant into an IR constant (once per name).
  int data(const onnx::NodeProto& n, const Inputs& in, std::size_t k) {
    if (k >= in.size() || !in[k].present()) corrupt(describe(n) + " lacks its input #" + std::to_string(k));
    if (in[k].int8) {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " reads the int8 codes of QuantizeLinear directly; EdgeOpt maps QuantizeLinear only when a DequantizeLinear follows it",
           "write the model in QDQ form (every QuantizeLinear followed by DequantizeLinear), as quantize_static(quant_format=QuantFormat.QDQ) does");
    }
    if (in[k].id >= 0) return in[k].id;
    const std::string& name = n.input(static_cast<int>(k));
    const ConstTensor& c = *in[k].constant;
    if (auto it = materialized_.find(&c); it != materialized_.end()) return it->second;
    if (!c.is_float) {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " uses the integer tensor '" + name + "' as data; EdgeOpt computes in float", kWorkaround);
    }
    const int id = graph_.add_constant(name, c.dims, c.f);
    materialized_[&c] = id;
    if (auto q = constant_quant_.find(&c); q != constant_quant_.end()) graph_.value(id).quant = q->second;
    // A number written in the model's code (x * 0.5) is a one-value Constant node, not a stored
    // weight: the source framework does not count it as a parameter, so neither do we.
    if (c.size() == 1 && literals_.count(&c)) --graph_.extra_source_params;
    return id;
  }

  bool present(const Inputs& in, std::size_t k) const { return k < in.size() && in[k].present(); }

  // Input k, which this op needs to know at import time.
  const ConstTensor& constant(const onnx::NodeProto& n, const Inputs& in, std::size_t k, const std::string& what) {
    if (k >= in.size() || !in[k].present()) corrupt(describe(n) + " lacks its " + what);
    if (!in[k].constant) {
      fail(ErrorCode::kUnsupportedOp,
           describe(n) + ": its " + what + " ('" + n.input(static_cast<int>(k)) + "') is computed at run time; EdgeOpt needs it constant (opset " + std::to_string(opset_) + ")",
           "export with fixed shapes and constant weights, " + std::string(kWorkaround));
    }
    return *in[k].constant;
  }

  float scalar(const onnx::NodeProto& n, const Inputs& in, std::size_t k, const std::string& what) {
    const ConstTensor& c = constant(n, in, k, what);
    if (c.size() != 1) corrupt(describe(n) + ": its " + what + " should hold one value");
    return c.is_float ? c.f[0] : static_cast<float>(c.i[0]);
  }

  const ConstTensor& weight(const onnx::NodeProto& n, const Inputs& in, std::size_t k, const std::string& what) {
    const ConstTensor& c = constant(n, in, k, what);
    if (!c.is_float) corrupt(describe(n) + ": its " + what + " is not a float tensor");
    return c;
  }

  ir::Shape shape_of(int id) const { return graph_.value(id).shape; }
  bool batched(int id) const { return !graph_.value(id).shape.empty() && graph_.value(id).shape[0] == ir::kBatch; }

  // Appends an IR node and infers its output shape right away (later Shape ops read it).
  int emit(ir::OpKind op, const onnx::NodeProto& n, std::vector<int> inputs, ir::Attrs attrs, const std::string& output_name,
           const std::string& suffix = {}) {
    const int id = graph_.add_node(op, node_name(n) + suffix, std::move(inputs), std::move(attrs), output_name, n.op_type());
    ir::op_info(op).infer_shape(graph_, graph_.nodes.back());
    ir::Shape per_sample = graph_.value(id).shape;
    for (auto& d : per_sample) {
      if (d == ir::kBatch) d = 1;
      if (d > kMaxDim) corrupt(describe(n) + " produces a tensor of shape " + ir::shape_to_string(graph_.value(id).shape));
    }
    detail::checked_count(per_sample, kMaxElements, "the output of " + describe(n));
    return id;
  }

  int emit_output(ir::OpKind op, const onnx::NodeProto& n, std::vector<int> inputs, ir::Attrs attrs = {}) {
    const int id = emit(op, n, std::move(inputs), std::move(attrs), n.output(0));
    bind(n.output(0), Entry{id, nullptr});
    return id;
  }

  std::int64_t axis_in(const onnx::NodeProto& n, std::int64_t axis, std::size_t rank) const {
    const auto r = static_cast<std::int64_t>(rank);
    if (axis < -r || axis >= r) corrupt(describe(n) + ": axis " + std::to_string(axis) + " is out of range for a rank-" + std::to_string(rank) + " tensor");
    return axis < 0 ? axis + r : axis;
  }

  void shape(const onnx::NodeProto& n, const Inputs& in) {
    if (!present(in, 0)) corrupt(describe(n) + " lacks its input");
    ConstTensor result;
    if (in[0].constant) {
      result = detail::fold_shape(n, in[0].constant->dims, false);
    } else {
      ir::Shape dims = shape_of(in[0].id);
      const bool is_batched = batched(in[0].id);
      // A stand-in for the run-time batch; the Origin tag is what Reshape looks at.
      if (is_batched) dims[0] = fixed_batch_ > 0 ? fixed_batch_ : 1;
      result = detail::fold_shape(n, dims, is_batched);
    }
    bind(n.output(0), Entry{-1, std::make_shared<const ConstTensor>(std::move(result))});
  }

  void unary(const onnx::NodeProto& n, const Inputs& in) {
    const std::string& op = n.op_type();
    ir::Attrs a;
    ir::OpKind kind = ir::OpKind::kRelu;
    if (op == "Sigmoid") kind = ir::OpKind::kSigmoid;
    else if (op == "Tanh") kind = ir::OpKind::kTanh;
    else if (op == "HardSwish") kind = ir::OpKind::kHardSwish;
    else if (op == "LeakyRelu") {
      kind = ir::OpKind::kLeakyRelu;
      a.alpha = attr_float(n, "alpha", 0.01F);
    } else if (op == "HardSigmoid") {
      kind = ir::OpKind::kHardSigmoid;
      a.alpha = attr_float(n, "alpha", 0.2F);
      a.beta = attr_float(n, "beta", 0.5F);
    }
    emit_output(kind, n, {data(n, in, 0)}, a);
  }

  void binary(const onnx::NodeProto& n, const Inputs& in) {
    const std::string& op = n.op_type();
    const ir::OpKind kind = op == "Add" ? ir::OpKind::kAdd : op == "Sub" ? ir::OpKind::kSub : op == "Mul" ? ir::OpKind::kMul : ir::OpKind::kDiv;
    emit_output(kind, n, {data(n, in, 0), data(n, in, 1)});
  }

  void identity(const onnx::NodeProto& n, const Inputs& in) { emit_output(ir::OpKind::kIdentity, n, {data(n, in, 0)}); }

  void cast(const onnx::NodeProto& n, const Inputs& in) {
    // Run-time tensors are float32 in the IR, so only a cast to float is meaningful (a no-op).
    if (attr_int(n, "to", 0) != onnx::TensorProto::FLOAT) {
      fail(ErrorCode::kUnsupportedOp,
           describe(n) + " casts a run-time tensor to data type " + std::to_string(attr_int(n, "to", 0)) + " (opset " + std::to_string(opset_) + "); EdgeOpt computes in float32",
           kWorkaround);
    }
    identity(n, in);
  }

  void clip(const onnx::NodeProto& n, const Inputs& in) {
    ir::Attrs a;
    if (find_attr(n, "min") || find_attr(n, "max")) {  // opset < 11
      a.min = attr_float(n, "min", a.min);
      a.max = attr_float(n, "max", a.max);
    } else {
      if (present(in, 1)) a.min = scalar(n, in, 1, "min");
      if (present(in, 2)) a.max = scalar(n, in, 2, "max");
    }
    emit_output(ir::OpKind::kClip, n, {data(n, in, 0)}, a);
  }

  void softmax(const onnx::NodeProto& n, const Inputs& in) {
    const ir::OpKind kind = n.op_type() == "Softmax" ? ir::OpKind::kSoftmax : ir::OpKind::kLogSoftmax;
    const int x = data(n, in, 0);
    const ir::Shape shape = shape_of(x);
    const std::int64_t axis = axis_in(n, attr_int(n, "axis", opset_ >= 13 ? -1 : 1), shape.size());
    ir::Attrs a;
    a.axis = axis;
    if (opset_ >= 13 || axis + 1 == static_cast<std::int64_t>(shape.size())) {
      emit_output(kind, n, {x}, a);
      return;
    }
    // Before opset 13 the op normalises over all dims from `axis` on, flattened together.
    if (axis != 1) {
      fail(ErrorCode::kUnsupportedOp,
           describe(n) + " (opset " + std::to_string(opset_) + ") normalises over the flattened dims from axis " + std::to_string(axis) + " of " +
               ir::shape_to_string(shape) + "; only axis 1 or the last axis can be mapped",
           kWorkaround);
    }
    const int flat = emit(ir::OpKind::kFlatten, n, {x}, a, "", "/flatten");
    const int normalised = emit(kind, n, {flat}, a, "", "/" + n.op_type());
    ir::Attrs back;
    back.shape = shape;
    if (batched(x)) back.shape[0] = 0;
    emit_output(ir::OpKind::kReshape, n, {normalised}, back);
  }

  void check_window(const onnx::NodeProto& n, const std::vector<std::int64_t>& v, const char* what, std::int64_t lowest) const {
    for (auto e : v) {
      if (e < lowest || e > kMaxWindow) corrupt(describe(n) + " has " + what + " " + ints_text(v));
    }
  }

  // strides, dilations and pads (resolving auto_pad) of a 2-D window over a 4-D input.
  void window(const onnx::NodeProto& n, const ir::Shape& x, const std::vector<std::int64_t>& kernel, ir::Attrs& a) const {
    if (x.size() != 4 || kernel.size() != 2) {
      fail(ErrorCode::kUnsupportedOp,
           describe(n) + " works on a " + std::to_string(kernel.size()) + "-D window over " + ir::shape_to_string(x) + " (opset " + std::to_string(opset_) +
               "); EdgeOpt supports 2-D windows on NCHW tensors",
           // PyTorch exports nn.LocalResponseNorm as Pow, Pad and a 3-D AveragePool.
           kernel.size() == 3 && n.op_type() == "AveragePool"
               ? "if this is PyTorch's LocalResponseNorm (out of scope), remove it or replace it by BatchNorm and retrain; or open an issue"
               : kWorkaround);
    }
    check_window(n, kernel, "kernel", 1);
    a.strides = attr_ints(n, "strides");
    a.dilations = attr_ints(n, "dilations");
    if (a.strides.empty()) a.strides = {1, 1};
    if (a.dilations.empty()) a.dilations = {1, 1};
    if (a.strides.size() != 2 || a.dilations.size() != 2) corrupt(describe(n) + " needs 2 strides and 2 dilations");
    check_window(n, a.strides, "strides", 1);
    check_window(n, a.dilations, "dilations", 1);
    const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
    if (auto_pad == "NOTSET" || auto_pad.empty()) {
      a.pads = attr_ints(n, "pads");
      if (a.pads.empty()) a.pads = {0, 0, 0, 0};
      if (a.pads.size() != 4) corrupt(describe(n) + " has pads " + ints_text(a.pads) + "; a 2-D window needs 4");
      check_window(n, a.pads, "pads", 0);
    } else if (auto_pad == "VALID") {
      a.pads = {0, 0, 0, 0};
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      // Output = ceil(input / stride); SAME_UPPER puts the odd padding at the end.
      a.pads.assign(4, 0);
      for (std::size_t i = 0; i < 2; ++i) {
        const std::int64_t size = x[2 + i];
        const std::int64_t out = (size + a.strides[i] - 1) / a.strides[i];
        const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * a.strides[i] + (kernel[i] - 1) * a.dilations[i] + 1 - size);
        const std::int64_t small = total / 2;
        a.pads[i] = auto_pad == "SAME_UPPER" ? small : total - small;
        a.pads[i + 2] = total - a.pads[i];
      }
    } else {
      corrupt(describe(n) + " has an unknown auto_pad '" + auto_pad + "'");
    }
  }

  void conv(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const ConstTensor& w = weight(n, in, 1, "weight");
    if (w.dims.size() != 4) {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " has a weight of shape " + ir::shape_to_string(w.dims) + " (opset " + std::to_string(opset_) + "); EdgeOpt supports 2-D convolutions", kWorkaround);
    }
    ir::Attrs a;
    a.group = attr_int(n, "group", 1);
    if (a.group < 1 || a.group > kMaxWindow) corrupt(describe(n) + " has group " + std::to_string(a.group));
    const std::vector<std::int64_t> kernel{w.dims[2], w.dims[3]};
    const auto declared = attr_ints(n, "kernel_shape");
    if (!declared.empty() && declared != kernel) corrupt(describe(n) + " declares kernel " + ints_text(declared) + " but its weight is " + ir::shape_to_string(w.dims));
    window(n, shape_of(x), kernel, a);
    std::vector<int> inputs{x, data(n, in, 1)};
    if (present(in, 2)) {
      weight(n, in, 2, "bias");
      inputs.push_back(data(n, in, 2));
    }
    emit_output(ir::OpKind::kConv, n, inputs, a);
  }

  void pool(const onnx::NodeProto& n, const Inputs& in) {
    const bool is_max = n.op_type() == "MaxPool";
    const int x = data(n, in, 0);
    ir::Attrs a;
    a.kernel = attr_ints(n, "kernel_shape");
    window(n, shape_of(x), a.kernel, a);
    a.ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
    if (!is_max) a.count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
    emit_output(is_max ? ir::OpKind::kMaxPool : ir::OpKind::kAvgPool, n, {x}, a);
  }

  void global_pool(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    if (n.op_type() == "GlobalAveragePool") {
      emit_output(ir::OpKind::kGlobalAvgPool, n, {x});
      return;
    }
    // A max pool whose window is the whole image.
    const ir::Shape shape = shape_of(x);
    if (shape.size() != 4) fail(ErrorCode::kUnsupportedOp, describe(n) + " on " + ir::shape_to_string(shape) + "; EdgeOpt supports 4-D NCHW inputs", kWorkaround);
    ir::Attrs a;
    a.kernel = {shape[2], shape[3]};
    a.strides = {1, 1};
    a.dilations = {1, 1};
    a.pads = {0, 0, 0, 0};
    emit_output(ir::OpKind::kMaxPool, n, {x}, a);
  }

  void batch_norm(const onnx::NodeProto& n, const Inputs& in) {
    if (attr_int(n, "spatial", 1) == 0) fail(ErrorCode::kUnsupportedOp, describe(n) + " uses spatial=0 (opset " + std::to_string(opset_) + ")", kWorkaround);
    if (attr_int(n, "training_mode", 0) != 0) {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " is in training mode", "export the model for inference: call model.eval() before torch.onnx.export");
    }
    std::vector<int> inputs{data(n, in, 0)};
    const char* names[] = {"scale", "bias", "mean", "variance"};
    for (std::size_t k = 1; k < 5; ++k) {
      weight(n, in, k, names[k - 1]);
      inputs.push_back(data(n, in, k));
    }
    ir::Attrs a;
    a.epsilon = attr_float(n, "epsilon", 1e-5F);
    emit_output(ir::OpKind::kBatchNorm, n, inputs, a);
  }

  void flatten(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const auto rank = static_cast<std::int64_t>(shape_of(x).size());
    std::int64_t axis = attr_int(n, "axis", 1);
    if (axis < -rank || axis > rank) corrupt(describe(n) + ": axis " + std::to_string(axis) + " is out of range");
    ir::Attrs a;
    a.axis = axis < 0 ? axis + rank : axis;
    emit_output(ir::OpKind::kFlatten, n, {x}, a);
  }

  void reshape(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const ConstTensor& target_tensor = constant(n, in, 1, "target shape");
    std::vector<std::int64_t> target = int_values(target_tensor, "the target shape of " + describe(n));
    const ir::Shape x_shape = shape_of(x);
    const bool allow_zero = attr_int(n, "allowzero", 0) == 1;
    std::int64_t product = 1;
    for (std::size_t d = 0; d < target.size(); ++d) {
      const Origin origin = target_tensor.origin_at(d);
      // The batch stays symbolic: a target that names the run-time or the exported batch copies it.
      const bool names_batch = origin == Origin::kBatch || (origin == Origin::kPlain && fixed_batch_ > 0 && target[d] == fixed_batch_);
      if (d == 0 && batched(x) && names_batch) {
        target[0] = 0;
        continue;
      }
      if (origin != Origin::kPlain) {
        fail(ErrorCode::kUnsupportedOp,
             describe(n) + ": its target shape depends on the batch size at position " + std::to_string(d) + "; EdgeOpt keeps the batch as dimension 0",
             "reshape with the batch first, e.g. x.flatten(1) or x.view(x.size(0), -1), " + std::string(kWorkaround));
      }
      if (target[d] == 0 && allow_zero) {
        fail(ErrorCode::kUnsupportedOp, describe(n) + " uses allowzero=1 with a 0 in its target shape (opset " + std::to_string(opset_) + ")", kWorkaround);
      }
      if (target[d] < -1 || target[d] > kMaxDim) corrupt(describe(n) + " has target shape " + ints_text(target));
      std::int64_t extent = target[d];
      if (extent == 0 && d < x_shape.size()) extent = x_shape[d] == ir::kBatch ? 1 : x_shape[d];
      if (extent > 0) {
        if (product > kMaxElements / extent) corrupt(describe(n) + " has target shape " + ints_text(target));
        product *= extent;
      }
    }
    ir::Attrs a;
    a.shape = target;
    emit_output(ir::OpKind::kReshape, n, {x}, a);
  }

  void transpose(const onnx::NodeProto& n, const Inputs& in) {
    ir::Attrs a;
    a.perm = attr_ints(n, "perm");
    emit_output(ir::OpKind::kTranspose, n, {data(n, in, 0)}, a);
  }

  void concat(const onnx::NodeProto& n, const Inputs& in) {
    if (!find_attr(n, "axis")) corrupt(describe(n) + " has no axis");
    std::vector<int> inputs;
    for (std::size_t k = 0; k < in.size(); ++k) inputs.push_back(data(n, in, k));
    if (inputs.empty()) corrupt(describe(n) + " has no inputs");
    ir::Attrs a;
    a.axis = axis_in(n, attr_int(n, "axis", 0), shape_of(inputs[0]).size());
    emit_output(ir::OpKind::kConcat, n, inputs, a);
  }

  void pad(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const std::size_t rank = shape_of(x).size();
    ir::Attrs a;
    if (find_attr(n, "pads")) {  // opset < 11
      a.pads = attr_ints(n, "pads");
      a.pad_value = attr_float(n, "value", 0.0F);
    } else {
      a.pads = int_values(constant(n, in, 1, "pads"), "the pads of " + describe(n));
      if (present(in, 2)) a.pad_value = scalar(n, in, 2, "constant value");
      if (present(in, 3)) {  // opset 18: pads only for the listed axes
        const auto axes = int_values(constant(n, in, 3, "axes"), "the axes of " + describe(n));
        if (a.pads.size() != 2 * axes.size()) corrupt(describe(n) + " has " + std::to_string(a.pads.size()) + " pads for " + std::to_string(axes.size()) + " axes");
        std::vector<std::int64_t> full(2 * rank, 0);
        for (std::size_t k = 0; k < axes.size(); ++k) {
          const auto d = static_cast<std::size_t>(axis_in(n, axes[k], rank));
          full[d] = a.pads[k];
          full[d + rank] = a.pads[k + axes.size()];
        }
        a.pads = full;
      }
    }
    if (a.pads.size() != 2 * rank) corrupt(describe(n) + " has " + std::to_string(a.pads.size()) + " pads for a rank-" + std::to_string(rank) + " input");
    for (auto p : a.pads) {
      if (p < -kMaxWindow || p > kMaxWindow) corrupt(describe(n) + " has pads " + ints_text(a.pads));
    }
    const std::string mode = attr_string(n, "mode", "constant");
    if (mode == "constant") a.pad_mode = ir::PadMode::kConstant;
    else if (mode == "reflect") a.pad_mode = ir::PadMode::kReflect;
    else if (mode == "edge") a.pad_mode = ir::PadMode::kEdge;
    else fail(ErrorCode::kUnsupportedOp, describe(n) + " uses pad mode '" + mode + "' (opset " + std::to_string(opset_) + "); EdgeOpt supports constant, reflect and edge", kWorkaround);
    emit_output(ir::OpKind::kPad, n, {x}, a);
  }

  void squeeze(const onnx::NodeProto& n, const Inputs& in) {
    const bool is_squeeze = n.op_type() == "Squeeze";
    const int x = data(n, in, 0);
    const ir::Shape shape = shape_of(x);
    std::vector<std::int64_t> axes;
    if (find_attr(n, "axes")) axes = attr_ints(n, "axes");  // opset < 13
    else if (present(in, 1)) axes = int_values(constant(n, in, 1, "axes"), "the axes of " + describe(n));
    const std::size_t rank = is_squeeze ? shape.size() : shape.size() + axes.size();
    if (!is_squeeze && axes.empty()) corrupt(describe(n) + " has no axes");
    if (is_squeeze && axes.empty()) {
      // "All size-1 dims", made explicit; the symbolic batch is never one of them.
      for (std::size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) axes.push_back(static_cast<std::int64_t>(d));
      }
    }
    std::vector<bool> seen(rank, false);
    for (auto& axis : axes) {
      axis = axis_in(n, axis, rank);
      if (seen[static_cast<std::size_t>(axis)]) corrupt(describe(n) + " repeats axis " + std::to_string(axis));
      seen[static_cast<std::size_t>(axis)] = true;
    }
    ir::Attrs a;
    a.axes = axes;
    emit_output(is_squeeze ? ir::OpKind::kSqueeze : ir::OpKind::kUnsqueeze, n, {x}, a);
  }

  // One IR Slice. Whole-range slices of the symbolic batch are dropped (the IR never slices it);
  // with nothing left to slice the node is an Identity.
  int emit_slice(const onnx::NodeProto& n, int x, std::vector<std::int64_t> axes, std::vector<std::int64_t> starts,
                 std::vector<std::int64_t> ends, std::vector<std::int64_t> steps, const std::string& output_name,
                 const std::string& suffix = {}) {
    const ir::Shape shape = shape_of(x);
    if (starts.size() != axes.size() || ends.size() != axes.size() || (!steps.empty() && steps.size() != axes.size())) {
      corrupt(describe(n) + " has " + std::to_string(starts.size()) + " starts, " + std::to_string(ends.size()) + " ends and " +
              std::to_string(steps.size()) + " steps for " + std::to_string(axes.size()) + " axes");
    }
    if (steps.empty()) steps.assign(axes.size(), 1);
    ir::Attrs a;
    for (std::size_t k = 0; k < axes.size(); ++k) {
      const std::int64_t axis = axis_in(n, axes[k], shape.size());
      if (steps[k] == 0) corrupt(describe(n) + " has a step of 0");
      if (steps[k] < 0) {
        fail(ErrorCode::kUnsupportedOp, describe(n) + " slices with the negative step " + std::to_string(steps[k]) + " (a flip, opset " + std::to_string(opset_) + "); EdgeOpt supports positive steps",
             kWorkaround);
      }
      if (shape[static_cast<std::size_t>(axis)] == ir::kBatch) {
        if (starts[k] == 0 && ends[k] >= kMaxDim && steps[k] == 1) continue;
        fail(ErrorCode::kUnsupportedOp, describe(n) + " slices the batch dimension; EdgeOpt keeps the whole batch", kWorkaround);
      }
      a.axes.push_back(axis);
      a.starts.push_back(starts[k]);
      a.ends.push_back(ends[k]);
      a.steps.push_back(steps[k]);
    }
    if (a.axes.empty()) return emit(ir::OpKind::kIdentity, n, {x}, {}, output_name, suffix);
    return emit(ir::OpKind::kSlice, n, {x}, a, output_name, suffix);
  }

  void slice(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    std::vector<std::int64_t> starts, ends, axes, steps;
    if (opset_ < 10) {
      starts = attr_ints(n, "starts");
      ends = attr_ints(n, "ends");
      axes = attr_ints(n, "axes");
    } else {
      starts = int_values(constant(n, in, 1, "starts"), "the starts of " + describe(n));
      ends = int_values(constant(n, in, 2, "ends"), "the ends of " + describe(n));
      if (present(in, 3)) axes = int_values(constant(n, in, 3, "axes"), "the axes of " + describe(n));
      if (present(in, 4)) steps = int_values(constant(n, in, 4, "steps"), "the steps of " + describe(n));
    }
    if (starts.empty()) corrupt(describe(n) + " has no starts");
    if (axes.empty()) {
      for (std::size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<std::int64_t>(k));
    }
    const int id = emit_slice(n, x, axes, starts, ends, steps, n.output(0));
    bind(n.output(0), Entry{id, nullptr});
  }

  // Split into one Slice per output: sizes from the `split` attribute (opset < 13) or input, else
  // equal parts (opset 18: the last part may be smaller).
  void split(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const ir::Shape shape = shape_of(x);
    const std::int64_t axis = axis_in(n, attr_int(n, "axis", 0), shape.size());
    const std::int64_t dim = shape[static_cast<std::size_t>(axis)];
    if (dim == ir::kBatch) fail(ErrorCode::kUnsupportedOp, describe(n) + " splits the batch dimension; EdgeOpt keeps the whole batch", kWorkaround);
    const auto parts = static_cast<std::int64_t>(n.output_size());
    std::vector<std::int64_t> sizes;
    if (find_attr(n, "split")) sizes = attr_ints(n, "split");
    else if (present(in, 1)) sizes = int_values(constant(n, in, 1, "split"), "the split of " + describe(n));
    if (sizes.empty()) {
      const bool uneven_ok = opset_ >= 18;
      if (uneven_ok && attr_int(n, "num_outputs", parts) != parts) corrupt(describe(n) + " has num_outputs different from its " + std::to_string(parts) + " outputs");
      if (!uneven_ok && dim % parts != 0) corrupt(describe(n) + " cannot split " + std::to_string(dim) + " into " + std::to_string(parts) + " equal parts");
      const std::int64_t each = (dim + parts - 1) / parts;
      for (std::int64_t k = 0; k < parts; ++k) sizes.push_back(std::max<std::int64_t>(0, std::min(each, dim - k * each)));
    }
    if (static_cast<std::int64_t>(sizes.size()) != parts) corrupt(describe(n) + " has " + std::to_string(sizes.size()) + " split sizes for " + std::to_string(parts) + " outputs");
    std::int64_t start = 0;
    for (std::int64_t k = 0; k < parts; ++k) {
      const std::int64_t size = sizes[static_cast<std::size_t>(k)];
      if (size < 0 || size > dim - start) corrupt(describe(n) + " has split sizes " + ints_text(sizes) + " for a dimension of " + std::to_string(dim));
      const std::string& name = n.output(static_cast<int>(k));
      if (!name.empty() && size > 0) {
        const int id = emit_slice(n, x, {axis}, {start}, {start + size}, {}, name, k == 0 ? "" : "/" + std::to_string(k));
        bind(name, Entry{id, nullptr});
      }
      start += size;
    }
    if (start != dim) corrupt(describe(n) + " has split sizes " + ints_text(sizes) + " that do not add up to " + std::to_string(dim));
  }

  // Gather of one constant index on run-time data, i.e. x[:, i]: a one-wide Slice, squeezed for
  // a scalar index.
  void gather(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const ir::Shape shape = shape_of(x);
    if (!present(in, 1) || !in[1].constant || in[1].constant->is_float || in[1].constant->size() != 1 || in[1].constant->dims.size() > 1) {
      fail(ErrorCode::kUnsupportedOp,
           describe(n) + " indexes a run-time tensor with " + (present(in, 1) && in[1].constant ? "a constant of shape " + ints_text(in[1].constant->dims) : std::string("run-time indices")) +
               " (opset " + std::to_string(opset_) + "); EdgeOpt maps Gather only with one constant index (x[:, i])",
           "move the indexing out of the model; " + std::string(kWorkaround));
    }
    const std::int64_t axis = axis_in(n, attr_int(n, "axis", 0), shape.size());
    const std::int64_t dim = shape[static_cast<std::size_t>(axis)];
    if (dim == ir::kBatch) fail(ErrorCode::kUnsupportedOp, describe(n) + " indexes the batch dimension; EdgeOpt keeps the whole batch", kWorkaround);
    std::int64_t index = in[1].constant->i[0];
    if (index < -dim || index >= dim) corrupt(describe(n) + " has index " + std::to_string(index) + " for a dimension of " + std::to_string(dim));
    if (index < 0) index += dim;
    const bool scalar_index = in[1].constant->dims.empty();
    const int picked = emit_slice(n, x, {axis}, {index}, {index + 1}, {}, scalar_index ? "" : n.output(0), scalar_index ? "/slice" : "");
    if (!scalar_index) {
      bind(n.output(0), Entry{picked, nullptr});
      return;
    }
    ir::Attrs a;
    a.axes = {axis};
    emit_output(ir::OpKind::kSqueeze, n, {picked}, a);
  }

  void reduce_mean(const onnx::NodeProto& n, const Inputs& in) {
    const int x = data(n, in, 0);
    const ir::Shape shape = shape_of(x);
    std::vector<std::int64_t> axes;
    if (find_attr(n, "axes")) axes = attr_ints(n, "axes");  // opset < 18
    else if (present(in, 1)) axes = int_values(constant(n, in, 1, "axes"), "the axes of " + describe(n));
    for (auto& axis : axes) axis = axis_in(n, axis, shape.size());
    std::sort(axes.begin(), axes.end());
    if (shape.size() != 4 || axes != std::vector<std::int64_t>{2, 3}) {
      fail(ErrorCode::kUnsupportedOp,
           "unsupported ONNX op 'ReduceMean' over axes " + ints_text(axes) + " of " + ir::shape_to_string(shape) + " in node '" + node_name(n) + "' (opset " +
               std::to_string(opset_) + "); only the spatial mean (axes 2 and 3 of NCHW) is supported",
           kWorkaround);
    }
    if (attr_int(n, "keepdims", 1) != 0) {
      emit_output(ir::OpKind::kGlobalAvgPool, n, {x});
      return;
    }
    const int pooled = emit(ir::OpKind::kGlobalAvgPool, n, {x}, {}, "", "/pool");
    ir::Attrs a;
    a.axes = {2, 3};
    emit_output(ir::OpKind::kSqueeze, n, {pooled}, a);
  }

  // ---- QDQ: QuantizeLinear / DequantizeLinear (onnx_qdq.h) ----

  detail::QdqParams qdq(const onnx::NodeProto& n, const Inputs& in, std::size_t rank, int code_type) {
    const ConstTensor& scale = constant(n, in, 1, "scale");
    const ConstTensor* zero = present(in, 2) ? &constant(n, in, 2, "zero point") : nullptr;
    return detail::qdq_params(n, scale, zero, rank, zero ? zero->data_type : code_type);
  }

  std::size_t rank_of(const Entry& e) const { return e.constant ? e.constant->dims.size() : shape_of(e.id).size(); }

  // On a constant (NNCF keeps float weights behind Q/DQ) it folds; on a run-time tensor the codes
  // wait for the DequantizeLinear that must follow.
  void quantize_linear(const onnx::NodeProto& n, const Inputs& in) {
    if (!present(in, 0)) corrupt(describe(n) + " lacks its input");
    const detail::QdqParams q = qdq(n, in, rank_of(in[0]), onnx::TensorProto::UINT8);
    if (in[0].constant) {
      bind(n.output(0), Entry{-1, std::make_shared<const ConstTensor>(detail::fold_quantize(n, *in[0].constant, q))});
      return;
    }
    detail::activation_quant(n, q);  // refuses per-channel activations here, naming this node
    pending_quant_[n.output(0)] = q;
    Entry codes{in[0].id, nullptr};
    codes.int8 = true;
    bind(n.output(0), codes);
  }

  void dequantize_linear(const onnx::NodeProto& n, const Inputs& in) {
    if (!present(in, 0)) corrupt(describe(n) + " lacks its input");
    if (in[0].constant) {
      const detail::QdqParams q = qdq(n, in, rank_of(in[0]), in[0].constant->data_type);
      auto values = std::make_shared<const ConstTensor>(detail::fold_dequantize(n, *in[0].constant, q));
      if (!q.is_int32) constant_quant_[values.get()] = detail::constant_quant(q);
      bind(n.output(0), Entry{-1, std::move(values)});
      return;
    }
    auto pending = pending_quant_.find(n.input(0));
    if (!in[0].int8 || pending == pending_quant_.end()) {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " dequantizes a run-time tensor that no QuantizeLinear produced; EdgeOpt feeds and computes float tensors",
           "give the model a float input (QuantizeLinear inside the model)");
    }
    const detail::QdqParams q = qdq(n, in, rank_of(in[0]), pending->second.is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
    if (!detail::same_params(q, pending->second)) {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " dequantizes with other parameters than its QuantizeLinear used (a requantization)",
           "write each QuantizeLinear/DequantizeLinear pair with one scale and zero point");
    }
    const ir::QuantParams act = detail::activation_quant(n, q);
    ir::Value& v = graph_.value(in[0].id);
    if (v.quant && (v.quant->scales != act.scales || v.quant->zero_points != act.zero_points)) {
      fail(ErrorCode::kUnsupportedOp, "value '" + v.name + "' is quantized twice with different parameters (at " + describe(n) + ")",
           "quantize each tensor once; EdgeOpt keeps one set of int8 parameters per value");
    }
    const bool is_input = std::find(graph_.inputs.begin(), graph_.inputs.end(), in[0].id) != graph_.inputs.end();
    if (act.zero_points[0] == 0 && !is_input && !v.quant && !detail::non_negative(graph_, in[0].id)) {
      // The grid starts at zero, so the pair clamps negatives like a ReLU: make it explicit.
      const int relu = emit(ir::OpKind::kRelu, n, {in[0].id}, {}, "", "/relu");
      graph_.value(relu).quant = act;
      bind(n.output(0), Entry{relu, nullptr});
      return;
    }
    v.quant = act;
    bind(n.output(0), Entry{in[0].id, nullptr});
  }

  void matmul(const onnx::NodeProto& n, const Inputs& in) { emit_output(ir::OpKind::kMatMul, n, {data(n, in, 0), data(n, in, 1)}); }

  static ConstTensor transposed_2d(const ConstTensor& t) {
    ConstTensor out = t;
    const auto rows = static_cast<std::size_t>(t.dims[0]);
    const auto cols = static_cast<std::size_t>(t.dims[1]);
    out.dims = {t.dims[1], t.dims[0]};
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) out.f[c * rows + r] = t.f[r * cols + c];
    }
    return out;
  }

  // Gemm into the IR's Y = X W^T + B with a constant W[M, K]: transB, alpha and beta are folded.
  void gemm(const onnx::NodeProto& n, const Inputs& in) {
    const float alpha = attr_float(n, "alpha", 1.0F);
    const float beta = attr_float(n, "beta", 1.0F);
    const bool trans_a = attr_int(n, "transA", 0) != 0;
    const bool trans_b = attr_int(n, "transB", 0) != 0;
    if (!present(in, 1)) corrupt(describe(n) + " lacks its input #1");
    int x = data(n, in, 0);
    if (trans_a) {
      if (batched(x)) fail(ErrorCode::kUnsupportedOp, describe(n) + " transposes its batched input (transA=1)", kWorkaround);
      ir::Attrs t;
      t.perm = {1, 0};
      x = emit(ir::OpKind::kTranspose, n, {x}, t, "", "/transA");
    }
    const bool has_c = present(in, 2);
    int y = -1;
    if (in[1].constant && in[1].constant->is_float && in[1].constant->dims.size() == 2) {
      const ConstTensor& b = *in[1].constant;
      int w = -1;
      std::int64_t out_features = trans_b ? b.dims[0] : b.dims[1];
      if (trans_b && alpha == 1.0F) {
        w = data(n, in, 1);
      } else {
        ConstTensor folded = trans_b ? b : transposed_2d(b);
        for (auto& v : folded.f) v *= alpha;
        w = graph_.add_constant(n.input(1), folded.dims, std::move(folded.f));
        // A QDQ weight keeps its codes through the transpose (not through a scaling by alpha).
        if (auto q = constant_quant_.find(&b); q != constant_quant_.end() && alpha == 1.0F) graph_.value(w).quant = detail::transposed_quant(q->second);
      }
      std::vector<int> inputs{x, w};
      bool bias_done = !has_c;
      if (has_c && in[2].constant && in[2].constant->is_float) {
        const ConstTensor& c = *in[2].constant;
        const bool vector_like = c.dims == std::vector<std::int64_t>{out_features} || c.dims == std::vector<std::int64_t>{1, out_features};
        if (vector_like) {
          if (beta == 1.0F && c.dims.size() == 1) {
            inputs.push_back(data(n, in, 2));
          } else {
            std::vector<float> scaled = c.f;
            for (auto& v : scaled) v *= beta;
            inputs.push_back(graph_.add_constant(n.input(2), {out_features}, std::move(scaled)));
          }
          bias_done = true;
        }
      }
      y = emit(ir::OpKind::kGemm, n, inputs, {}, bias_done ? n.output(0) : "", bias_done ? "" : "/gemm");
      if (!bias_done) y = add_bias(n, in, y, beta);
    } else {
      // A weight computed at run time: plain matrix product.
      int b = data(n, in, 1);
      if (trans_b) {
        ir::Attrs t;
        t.perm = {1, 0};
        b = emit(ir::OpKind::kTranspose, n, {b}, t, "", "/transB");
      }
      const bool last = alpha == 1.0F && !has_c;
      y = emit(ir::OpKind::kMatMul, n, {x, b}, {}, last ? n.output(0) : "", last ? "" : "/matmul");
      if (alpha != 1.0F) {
        const int scale = graph_.add_constant(node_name(n) + "/alpha", {}, {alpha});
        y = emit(ir::OpKind::kMul, n, {y, scale}, {}, has_c ? "" : n.output(0), has_c ? "/alpha" : "");
      }
      if (has_c) y = add_bias(n, in, y, beta);
    }
    bind(n.output(0), Entry{y, nullptr});
  }

  // Gemm's C when it is not a per-output vector: an Add after the product.
  int add_bias(const onnx::NodeProto& n, const Inputs& in, int y, float beta) {
    int c = -1;
    if (beta == 1.0F) {
      c = data(n, in, 2);
    } else if (in[2].constant && in[2].constant->is_float) {
      std::vector<float> scaled = in[2].constant->f;
      for (auto& v : scaled) v *= beta;
      c = graph_.add_constant(n.input(2), in[2].constant->dims, std::move(scaled));
    } else {
      fail(ErrorCode::kUnsupportedOp, describe(n) + " scales a run-time C by beta=" + std::to_string(beta), kWorkaround);
    }
    return emit(ir::OpKind::kAdd, n, {y, c}, {}, n.output(0), "/bias");
  }

  const onnx::ModelProto& model_;
  const onnx::GraphProto& g_;
  std::string source_;
  std::int64_t opset_ = 0;
  std::int64_t fixed_batch_ = 0;  // the batch a fixed-shape export used; 0 when symbolic
  ir::Graph graph_;
  std::unordered_map<std::string, Entry> env_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers_;
  std::unordered_map<const ConstTensor*, int> materialized_;  // one IR constant per tensor, however many names
  std::unordered_set<std::string> consumed_;
  std::unordered_set<const ConstTensor*> literals_;  // the outputs of Constant nodes
  std::uint64_t folded_elements_ = 0;               // made by folding so far, all ops together
  std::uint64_t fold_budget_ = 0;                   // 16 Mi plus the file's size in bytes; set at the first fold
  std::unordered_map<const ConstTensor*, ir::QuantParams> constant_quant_;  // dequantized QDQ constants
  std::unordered_map<std::string, detail::QdqParams> pending_quant_;        // QuantizeLinear outputs
};

// Files that are clearly something else get a message that says what they are.
void reject_other_formats(std::string_view bytes, const std::string& source) {
  const auto starts = [&](std::string_view magic) { return bytes.substr(0, magic.size()) == magic; };
  if (starts("\x89HDF\r\n\x1a\n")) {
    fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' is an HDF5 file", "this looks like a Keras .h5 model; import it as Keras");
  }
  if (starts("PK\x03\x04") || starts("PK\x05\x06")) {
    fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' is a ZIP archive",
         "this looks like a PyTorch .pt or Keras .keras file; import it as that format, or export ONNX with torch.onnx.export");
  }
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' is a Python pickle",
         "pickles are never loaded (that would run code); export the model: torch.onnx.export(model.eval(), example_input, 'model.onnx', opset_version=13)");
  }
}

}  // namespace

Result<ir::Graph> import_bytes(std::string_view bytes, const std::string& source) {
  return capture([&]() -> ir::Graph {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
      fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' is larger than 2 GiB",
           "a single ONNX file cannot exceed 2 GiB; larger models use external data files, which EdgeOpt does not read");
    }
    if (bytes.empty()) fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' is empty", "check that the upload or export finished");
    reject_other_formats(bytes, source);
    onnx::ModelProto model;
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' could not be parsed as an ONNX protobuf",
           "the file is truncated or is not an ONNX model; re-export it with torch.onnx.export or tf2onnx");
    }
    if (!model.has_graph() || model.graph().node_size() == 0 || model.ir_version() <= 0) {
      fail(ErrorCode::kCorruptFile, "not a valid ONNX model: '" + source + "' has no model graph",
           "the file is truncated or is not an ONNX model; re-export it with torch.onnx.export or tf2onnx");
    }
    return Importer(model, source).run();
  });
}

Result<ir::Graph> import_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return Error{ErrorCode::kNotFound, "'" + path + "' does not exist", "check the path"};
  if (!std::filesystem::is_regular_file(status)) return Error{ErrorCode::kIo, "'" + path + "' is not a regular file", "pass the .onnx file itself"};
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error{ErrorCode::kIo, "cannot read the size of '" + path + "': " + ec.message(), "check the file's permissions"};
  if (size > static_cast<std::uintmax_t>(INT_MAX)) {
    return Error{ErrorCode::kCorruptFile, "not a valid ONNX model: '" + path + "' is larger than 2 GiB",
                 "a single ONNX file cannot exceed 2 GiB; larger models use external data files, which EdgeOpt does not read"};
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return Error{ErrorCode::kIo, "cannot open '" + path + "'", "check the file's permissions"};
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!file.read(bytes.data(), static_cast<std::streamsize>(size))) return Error{ErrorCode::kIo, "cannot read '" + path + "'", "check the disk and the file's permissions"};
  return import_bytes(bytes, path);
}

}  // namespace edgeopt::onnx_import
