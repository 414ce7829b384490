// IR -> ONNX. Value and node names are kept, so the ONNX importer reads an export back into the
// same IR; helper tensors (reshape targets, clip bounds, quantization parameters) get fresh names.
#include "format/onnx_export.h"

#include "common/file_io.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "format/encoding.h"

namespace edgeopt::format {
namespace {

constexpr int kMinOpset = 13;
constexpr int kMaxOpset = 18;

[[noreturn]] void cannot_export(const ir::Node& n, const std::string& why) {
  fail(ErrorCode::kUnsupportedOp, "node '" + n.name + "' (" + std::string(ir::op_name(n.op)) + ") cannot be exported to ONNX: " + why,
       "export the EdgeOpt model format (.eom) instead, or open an issue");
}

class Exporter {
 public:
  Exporter(const ir::Graph& g, const OnnxExportOptions& o) : g_(g), o_(o) {
    for (const ir::Value& v : g.values) used_names_.insert(v.name);
  }

  onnx::ModelProto run() {
    if (o_.opset < kMinOpset || o_.opset > kMaxOpset) {
      fail(ErrorCode::kInvalidArgument, "ONNX opset " + std::to_string(o_.opset) + " is not supported for export", "use an opset from 13 to 18");
    }
    if (o_.qdq_int8 && o_.activation_type != ir::DType::kU8 && o_.activation_type != ir::DType::kI8) {
      fail(ErrorCode::kInvalidArgument, std::string("QDQ activations must be u8 or i8, not ") + ir::dtype_name(o_.activation_type));
    }
    if (!o_.qdq_int8 && !o_.activation_quant.empty()) {
      fail(ErrorCode::kInvalidArgument, "activation quantization parameters were given for an FP32 export", "set qdq_int8 = true");
    }
    model_.set_ir_version(o_.opset >= 15 ? 8 : 7);
    model_.set_producer_name(g_.producer);
    auto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(o_.opset);
    auto* meta = model_.add_metadata_props();
    meta->set_key("exported_by");
    meta->set_value("edgeopt");
    graph_ = model_.mutable_graph();
    graph_->set_name(g_.name);

    if (o_.qdq_int8) {
      for (const ir::Node& n : g_.nodes) {
        if ((n.op == ir::OpKind::kConv || n.op == ir::OpKind::kGemm) && n.inputs.size() > 1 && n.inputs[1] >= 0 && g_.value(n.inputs[1]).is_constant) {
          quantized_weights_.insert(n.inputs[1]);
        }
      }
      check_activation_quant();
    }
    renamed_.assign(g_.values.size(), std::string());
    for (int id : g_.inputs) {
      value_info(graph_->add_input(), g_.value(id));
      quantize_activation(id);
    }
    for (const ir::Node& n : g_.nodes) {
      for (int id : n.inputs) {
        if (id >= 0 && g_.value(id).is_constant) constant(id);
      }
      node(n);
      quantize_activation(n.outputs[0]);
    }
    for (int id : g_.outputs) value_info(graph_->add_output(), g_.value(id));
    return std::move(model_);
  }

 private:
  // ---- names and tensors ----

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; !used_names_.insert(name).second; ++k) name = base + "_" + std::to_string(k);
    return name;
  }

  // The tensor a consumer reads for value `id`: after Q/DQ when the value is quantized.
  std::string input_name(int id) const {
    if (id < 0) return {};
    const auto& renamed = renamed_[static_cast<std::size_t>(id)];
    return renamed.empty() ? g_.value(id).name : renamed;
  }

  static void set_dims(onnx::TensorProto* t, const ir::Shape& shape) {
    for (auto d : shape) t->add_dims(d);
  }

  void float_initializer(const std::string& name, const ir::Shape& shape, const std::vector<float>& data) {
    auto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    set_dims(t, shape);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
  }

  void int64_initializer(const std::string& name, const std::vector<std::int64_t>& data) {
    auto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(data.size()));
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(std::int64_t)));
  }

  std::string scalar(const std::string& base, float v) {
    const std::string name = fresh(base);
    float_initializer(name, {}, {v});
    return name;
  }

  std::string ints(const std::string& base, const std::vector<std::int64_t>& v) {
    const std::string name = fresh(base);
    int64_initializer(name, v);
    return name;
  }

  // An 8-bit integer tensor; `is_unsigned` picks UINT8 over INT8.
  void int8_initializer(const std::string& name, const ir::Shape& shape, const std::vector<std::int32_t>& values, bool is_unsigned) {
    auto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
    set_dims(t, shape);
    std::string raw(values.size(), '\0');
    for (std::size_t i = 0; i < values.size(); ++i) raw[i] = static_cast<char>(static_cast<std::uint8_t>(values[i]));
    t->set_raw_data(raw);
  }

  void value_info(onnx::ValueInfoProto* info, const ir::Value& v) {
    info->set_name(v.name);
    auto* tensor = info->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = tensor->mutable_shape();
    for (auto d : v.shape) {
      auto* dim = shape->add_dim();
      if (d == ir::kBatch) dim->set_dim_param("N");
      else dim->set_dim_value(d);
    }
  }

  // Each constant becomes one initializer, the first time a node reads it.
  void constant(int id) {
    if (!emitted_constants_.insert(id).second) return;
    const ir::Value& v = g_.value(id);
    if (v.dtype == ir::DType::kI64) {
      auto* t = graph_->add_initializer();
      t->set_name(v.name);
      t->set_data_type(onnx::TensorProto::INT64);
      set_dims(t, v.shape);
      t->set_raw_data(std::string(reinterpret_cast<const char*>(v.i64.data()), v.i64.size() * sizeof(std::int64_t)));
      return;
    }
    if (!quantized_weights_.count(id)) {
      float_initializer(v.name, v.shape, v.f32);
      return;
    }
    auto encoded = encode_constant(v, Encoding::int8_per_channel(0));
    if (!encoded.ok()) throw Failure{encoded.error()};
    const EncodedTensor& t = encoded.value();
    auto codes = unpack_codes(t);
    if (!codes.ok()) throw Failure{codes.error()};
    const std::string q_name = fresh(v.name + "_quantized");
    const std::string scale_name = fresh(v.name + "_scale");
    const std::string zero_name = fresh(v.name + "_zero_point");
    const auto channels = static_cast<std::int64_t>(t.quant.scales.size());
    int8_initializer(q_name, v.shape, std::vector<std::int32_t>(codes.value().begin(), codes.value().end()), false);
    float_initializer(scale_name, {channels}, t.quant.scales);
    std::vector<std::int32_t> zeros = t.quant.zero_points;
    zeros.resize(static_cast<std::size_t>(channels), 0);
    int8_initializer(zero_name, {channels}, zeros, false);
    // The dequantized weight keeps the constant's name, so the consuming node is unchanged.
    auto* dq = graph_->add_node();
    dq->set_op_type("DequantizeLinear");
    dq->set_name(fresh(v.name + "_DequantizeLinear"));
    dq->add_input(q_name);
    dq->add_input(scale_name);
    dq->add_input(zero_name);
    dq->add_output(v.name);
    attr_int(dq, "axis", 0);
  }

  // ---- QDQ activations ----

  void check_activation_quant() const {
    const bool is_unsigned = o_.activation_type == ir::DType::kU8;
    for (const auto& [name, q] : o_.activation_quant) {
      const auto id = g_.find(name);
      if (!id) fail(ErrorCode::kInvalidArgument, "activation '" + name + "' given for QDQ export is not a value of graph '" + g_.name + "'", "check the names (edgeopt inspect --ir lists them)");
      if (g_.value(*id).is_constant) fail(ErrorCode::kInvalidArgument, "'" + name + "' is a constant; activation quantization is for run-time values", "weights are quantized per channel automatically");
      if (q.scales.size() != 1 || q.zero_points.size() > 1) {
        fail(ErrorCode::kInvalidArgument, "activation '" + name + "' has " + std::to_string(q.scales.size()) + " scales and " + std::to_string(q.zero_points.size()) + " zero points",
             "activations are quantized per tensor: give one scale and at most one zero point");
      }
      if (!std::isfinite(q.scales[0]) || q.scales[0] <= 0) fail(ErrorCode::kInvalidArgument, "activation '" + name + "' has the scale " + std::to_string(q.scales[0]), "scales must be finite and positive");
      const int zero = q.zero_points.empty() ? 0 : q.zero_points[0];
      const int lo = is_unsigned ? 0 : -128;
      const int hi = is_unsigned ? 255 : 127;
      if (zero < lo || zero > hi) {
        fail(ErrorCode::kInvalidArgument, "activation '" + name + "' has the zero point " + std::to_string(zero) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
             "pick activation_type to match the calibration (u8 for asymmetric ranges, i8 for symmetric)");
      }
    }
  }

  void quantize_activation(int id) {
    if (!o_.qdq_int8) return;
    const ir::Value& v = g_.value(id);
    auto it = o_.activation_quant.find(v.name);
    if (it == o_.activation_quant.end()) return;
    const ir::QuantParams& q = it->second;
    const bool is_unsigned = o_.activation_type == ir::DType::kU8;
    const std::string scale_name = scalar(v.name + "_scale", q.scales[0]);
    const std::string zero_name = fresh(v.name + "_zero_point");
    int8_initializer(zero_name, {}, {q.zero_points.empty() ? 0 : q.zero_points[0]}, is_unsigned);
    const std::string quantized = fresh(v.name + "_quantized");
    const std::string dequantized = fresh(v.name + "_dequantized");
    auto* qn = graph_->add_node();
    qn->set_op_type("QuantizeLinear");
    qn->set_name(fresh(v.name + "_QuantizeLinear"));
    qn->add_input(v.name);
    qn->add_input(scale_name);
    qn->add_input(zero_name);
    qn->add_output(quantized);
    auto* dq = graph_->add_node();
    dq->set_op_type("DequantizeLinear");
    dq->set_name(fresh(v.name + "_DequantizeLinear"));
    dq->add_input(quantized);
    dq->add_input(scale_name);
    dq->add_input(zero_name);
    dq->add_output(dequantized);
    renamed_[static_cast<std::size_t>(id)] = dequantized;
  }

  // ---- nodes ----

  static void attr_int(onnx::NodeProto* n, const char* name, std::int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_float(onnx::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_ints(onnx::NodeProto* n, const char* name, const std::vector<std::int64_t>& v) {
    if (v.empty()) return;  // the ONNX default
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (auto e : v) a->add_ints(e);
  }
  static void attr_string(onnx::NodeProto* n, const char* name, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }

  onnx::NodeProto* emit(const std::string& op_type, const std::string& name, const std::vector<std::string>& inputs, const std::string& output) {
    auto* n = graph_->add_node();
    n->set_op_type(op_type);
    n->set_name(name);
    for (const auto& in : inputs) n->add_input(in);
    n->add_output(output);
    return n;
  }

  void node(const ir::Node& n) {
    const ir::Attrs& a = n.attrs;
    const std::string out = g_.value(n.outputs[0]).name;
    std::vector<std::string> in;
    for (int id : n.inputs) in.push_back(input_name(id));
    while (!in.empty() && in.back().empty()) in.pop_back();
    switch (n.op) {
      case ir::OpKind::kConv: {
        auto* p = emit("Conv", n.name, in, out);
        const ir::Shape& w = g_.value(n.inputs[1]).shape;
        if (w.size() != 4) cannot_export(n, "its weight is not 4-D");
        attr_ints(p, "kernel_shape", {w[2], w[3]});
        attr_ints(p, "strides", a.strides);
        attr_ints(p, "pads", a.pads);
        attr_ints(p, "dilations", a.dilations);
        attr_int(p, "group", a.group);
        return;
      }
      case ir::OpKind::kGemm: attr_int(emit("Gemm", n.name, in, out), "transB", 1); return;
      case ir::OpKind::kMatMul: emit("MatMul", n.name, in, out); return;
      case ir::OpKind::kAdd: emit("Add", n.name, in, out); return;
      case ir::OpKind::kSub: emit("Sub", n.name, in, out); return;
      case ir::OpKind::kMul: emit("Mul", n.name, in, out); return;
      case ir::OpKind::kDiv: emit("Div", n.name, in, out); return;
      case ir::OpKind::kRelu: emit("Relu", n.name, in, out); return;
      case ir::OpKind::kSigmoid: emit("Sigmoid", n.name, in, out); return;
      case ir::OpKind::kTanh: emit("Tanh", n.name, in, out); return;
      case ir::OpKind::kIdentity: emit("Identity", n.name, in, out); return;
      case ir::OpKind::kGlobalAvgPool: emit("GlobalAveragePool", n.name, in, out); return;
      case ir::OpKind::kClip: {
        // Opset 11+ takes the bounds as inputs; an infinite bound is simply left out.
        std::vector<std::string> args{in[0], std::isinf(a.min) ? std::string() : scalar(n.name + "_min", a.min),
                                      std::isinf(a.max) ? std::string() : scalar(n.name + "_max", a.max)};
        while (args.back().empty()) args.pop_back();
        emit("Clip", n.name, args, out);
        return;
      }
      case ir::OpKind::kLeakyRelu: attr_float(emit("LeakyRelu", n.name, in, out), "alpha", a.alpha); return;
      case ir::OpKind::kHardSigmoid: {
        auto* p = emit("HardSigmoid", n.name, in, out);
        attr_float(p, "alpha", a.alpha);
        attr_float(p, "beta", a.beta);
        return;
      }
      case ir::OpKind::kHardSwish: {
        if (o_.opset >= 14) {
          emit("HardSwish", n.name, in, out);
          return;
        }
        const std::string gate = fresh(out + "_hardsigmoid");
        auto* p = emit("HardSigmoid", fresh(n.name + "_hardsigmoid"), in, gate);
        attr_float(p, "alpha", 1.0F / 6.0F);
        attr_float(p, "beta", 0.5F);
        emit("Mul", n.name, {in[0], gate}, out);
        return;
      }
      case ir::OpKind::kSoftmax: attr_int(emit("Softmax", n.name, in, out), "axis", a.axis); return;
      case ir::OpKind::kLogSoftmax: attr_int(emit("LogSoftmax", n.name, in, out), "axis", a.axis); return;
      case ir::OpKind::kBatchNorm: attr_float(emit("BatchNormalization", n.name, in, out), "epsilon", a.epsilon); return;
      case ir::OpKind::kMaxPool:
      case ir::OpKind::kAvgPool: {
        const bool is_max = n.op == ir::OpKind::kMaxPool;
        auto* p = emit(is_max ? "MaxPool" : "AveragePool", n.name, in, out);
        attr_ints(p, "kernel_shape", a.kernel);
        attr_ints(p, "strides", a.strides);
        attr_ints(p, "pads", a.pads);
        const bool dilated = std::any_of(a.dilations.begin(), a.dilations.end(), [](std::int64_t d) { return d != 1; });
        if (is_max) attr_ints(p, "dilations", a.dilations);
        else if (dilated) cannot_export(n, "a dilated average pool needs opset 19");
        if (a.ceil_mode) attr_int(p, "ceil_mode", 1);
        if (!is_max && a.count_include_pad) attr_int(p, "count_include_pad", 1);
        return;
      }
      case ir::OpKind::kFlatten: attr_int(emit("Flatten", n.name, in, out), "axis", a.axis); return;
      case ir::OpKind::kReshape: emit("Reshape", n.name, {in[0], ints(n.name + "_shape", a.shape)}, out); return;
      case ir::OpKind::kTranspose: attr_ints(emit("Transpose", n.name, in, out), "perm", a.perm); return;
      case ir::OpKind::kConcat: attr_int(emit("Concat", n.name, in, out), "axis", a.axis); return;
      case ir::OpKind::kPad: {
        std::vector<std::string> args{in[0], ints(n.name + "_pads", a.pads)};
        if (a.pad_mode == ir::PadMode::kConstant) args.push_back(scalar(n.name + "_value", a.pad_value));
        auto* p = emit("Pad", n.name, args, out);
        attr_string(p, "mode", a.pad_mode == ir::PadMode::kConstant ? "constant" : a.pad_mode == ir::PadMode::kReflect ? "reflect" : "edge");
        return;
      }
      case ir::OpKind::kSqueeze:
      case ir::OpKind::kUnsqueeze: {
        std::vector<std::string> args{in[0]};
        if (!a.axes.empty()) args.push_back(ints(n.name + "_axes", a.axes));
        emit(n.op == ir::OpKind::kSqueeze ? "Squeeze" : "Unsqueeze", n.name, args, out);
        return;
      }
      case ir::OpKind::kSlice: {
        std::vector<std::string> args{in[0], ints(n.name + "_starts", a.starts), ints(n.name + "_ends", a.ends),
                                      ints(n.name + "_axes", a.axes)};
        if (!a.steps.empty()) args.push_back(ints(n.name + "_steps", a.steps));
        emit("Slice", n.name, args, out);
        return;
      }
      case ir::OpKind::kCount: break;
    }
    cannot_export(n, "no ONNX mapping");
  }

  const ir::Graph& g_;
  const OnnxExportOptions& o_;
  onnx::ModelProto model_;
  onnx::GraphProto* graph_ = nullptr;
  std::set<std::string> used_names_;
  std::set<int> emitted_constants_;
  std::set<int> quantized_weights_;
  std::vector<std::string> renamed_;  // per value id: the DequantizeLinear output its readers use
};

}  // namespace

Result<std::string> export_onnx_bytes(const ir::Graph& graph, const OnnxExportOptions& options) {
  return capture([&]() -> std::string {
    const onnx::ModelProto model = Exporter(graph, options).run();
    std::string bytes;
    if (!model.SerializeToString(&bytes)) {
      fail(ErrorCode::kInvalidArgument, "graph '" + graph.name + "' does not fit in one ONNX file (2 GiB protobuf limit)", "export the EdgeOpt model format (.eom) instead");
    }
    return bytes;
  });
}

Status export_onnx(const ir::Graph& graph, const std::string& path, const OnnxExportOptions& options) {
  auto bytes = export_onnx_bytes(graph, options);
  if (!bytes.ok()) return bytes.error();
  return write_file_atomic(path, bytes.value());
}

}  // namespace edgeopt::format
