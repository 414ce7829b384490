// TFLite -> IR. Every 4-D TFLite tensor is NHWC; the IR is NCHW. A tensor's IR value exists in one
// or both of two forms: "same" (the TFLite tensor as stored) and, for 4-D tensors, "nchw" (the
// same data permuted to NCHW). Image ops (convolution, pooling, mean) read and write the nchw
// form, order-sensitive ops (reshape, transpose, slice) the same form, element-wise ops whichever
// their input has; a Transpose is added where a form is missing, and chains of transposes are
// folded at the end. int8/uint8 tensors become what the IR's int8 graphs are: constants hold
// their dequantized values (exactly scale * (q - zero point)) with the codes' parameters in
// Value::quant, run-time values carry their activation parameters in uint8 form (int8 zero
// point + 128), as the QDQ ONNX importer does for QuantizeLinear/DequantizeLinear pairs.
#include "importers/tflite/tflite_importer.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

#include "format/encoding.h"
#include "format/tflite_schema_generated.h"
#include "ir/text.h"

namespace edgeopt::tflite_import {
namespace {

namespace tfl = edgeopt::tflite;
using ir::OpKind;

constexpr std::array<std::int64_t, 4> kToNchw = {0, 3, 1, 2};  // nchw[j] = nhwc[kToNchw[j]]
constexpr std::array<std::int64_t, 4> kToNhwc = {0, 2, 3, 1};  // nhwc[j] = nchw[kToNhwc[j]]
// A bound on any tensor's element count: far above any model EdgeOpt handles, far below overflow.
constexpr std::int64_t kMaxElements = std::int64_t{1} << 31;
constexpr const char* kConvertHint =
    "import the model's source instead (ONNX, Keras .h5/.keras or TorchScript), or convert the file to ONNX "
    "(python -m tf2onnx.convert --tflite model.tflite --output model.onnx) and import that";

enum class Form : std::uint8_t { kSame, kNchw };

[[noreturn]] void corrupt(const std::string& source, const std::string& what) {
  fail(ErrorCode::kCorruptFile, "'" + source + "' is not a valid TFLite model: " + what,
       "the file is truncated or damaged; write it again with the converter that made it");
}

std::string op_name_of(const tfl::OperatorCode* code) {
  const int builtin = std::max<int>(code->deprecated_builtin_code(), static_cast<int>(code->builtin_code()));
  if (builtin == tfl::BuiltinOperator_CUSTOM) {
    return "CUSTOM '" + (code->custom_code() ? code->custom_code()->str() : std::string("?")) + "'";
  }
  const char* name = builtin >= 0 && builtin <= static_cast<int>(tfl::BuiltinOperator_MAX) ? tfl::EnumNameBuiltinOperator(static_cast<tfl::BuiltinOperator>(builtin)) : "";
  if (name == nullptr || *name == '\0') return "builtin op " + std::to_string(builtin) + " (newer than this EdgeOpt knows)";
  return name;
}

// A constant tensor read from its buffer: dequantized floats, or the integers as stored.
struct Const {
  std::vector<std::int64_t> dims;  // as stored (NHWC for images)
  std::vector<float> f;            // float, float16 and dequantized int8/uint8/int32 data
  std::vector<std::int64_t> i;     // int32/int64 data (shapes, axes, perms, paddings)
  bool is_int = false;             // an integer tensor without quantization parameters
  std::optional<ir::QuantParams> quant;  // int8/uint8 codes' parameters, zero points as stored
  int quant_dim = -1;
};

struct TensorQuant {
  std::vector<float> scales;
  std::vector<std::int64_t> zeros;
  int dim = 0;
};

class Importer {
 public:
  Importer(std::string_view bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}

  ir::Graph run() {
    verify_buffer();
    model_ = tfl::GetModel(bytes_.data());
    if (!model_->subgraphs() || model_->subgraphs()->size() == 0) corrupt(source_, "it has no subgraph");
    if (model_->subgraphs()->size() > 1) {
      fail(ErrorCode::kUnsupportedOp, "'" + source_ + "' has " + std::to_string(model_->subgraphs()->size()) + " subgraphs (control flow: IF/WHILE/CALL)",
           std::string("EdgeOpt reads single-graph image models; ") + kConvertHint);
    }
    sg_ = model_->subgraphs()->Get(0);
    if (!sg_->tensors() || !sg_->inputs() || !sg_->outputs()) corrupt(source_, "its subgraph lacks tensors, inputs or outputs");
    tensor_count_ = sg_->tensors()->size();
    slots_.assign(tensor_count_, Slot{});
    consts_.assign(tensor_count_, std::nullopt);
    graph_.name = sg_->name() && sg_->name()->size() > 0 ? sg_->name()->str() : std::filesystem::path(source_).stem().string();
    graph_.producer = "tflite";
    if (model_->description() && model_->description()->size() > 0) graph_.producer += " (" + model_->description()->str().substr(0, 120) + ")";

    if (sg_->inputs()->size() != 1) {
      fail(ErrorCode::kUnsupportedOp, "'" + source_ + "' has " + std::to_string(sg_->inputs()->size()) + " inputs; EdgeOpt imports image models with one input",
           kConvertHint);
    }
    add_input(sg_->inputs()->Get(0));
    const auto* ops = sg_->operators();
    for (flatbuffers::uoffset_t k = 0; ops && k < ops->size(); ++k) op(k, ops->Get(k));
    if (sg_->outputs()->size() == 0) corrupt(source_, "it has no outputs");
    for (std::int32_t t : *sg_->outputs()) {
      const int id = get(check_index(t, "a graph output"), Form::kSame);
      if (std::find(graph_.outputs.begin(), graph_.outputs.end(), id) != graph_.outputs.end()) continue;
      graph_.outputs.push_back(id);
      if (graph_.value(id).layout == ir::Layout::kUnknown) graph_.value(id).layout = rank(t) == 2 ? ir::Layout::kNC : ir::Layout::kUnknown;
    }
    fold_transposes();
    graph_.infer_shapes();
    graph_.simplify();
    if (Status s = ir::verify(graph_); !s) throw Failure{s.error()};
    return std::move(graph_);
  }

 private:
  struct Slot {
    int same = -1;
    int nchw = -1;
  };

  // ---- the buffer ----

  void verify_buffer() {
    if (bytes_.size() < 8) corrupt(source_, "it is shorter than a flatbuffer header");
    if (!has_tflite_identifier(bytes_)) corrupt(source_, "it lacks the file identifier \"TFL3\"");
    if (bytes_.size() >= (std::size_t{1} << 31)) {
      fail(ErrorCode::kUnsupportedFormat, "'" + source_ + "' is larger than 2 GiB, which a TFLite flatbuffer cannot be", kConvertHint);
    }
    // Depth and table limits bound the Verifier's own work on crafted files.
    flatbuffers::Verifier verifier(reinterpret_cast<const std::uint8_t*>(bytes_.data()), bytes_.size(), 64, 1000000);
    if (!tfl::VerifyModelBuffer(verifier)) corrupt(source_, "the flatbuffers Verifier rejects it (an offset or size points outside the file)");
  }

  // ---- tensors ----

  std::int32_t check_index(std::int32_t t, const std::string& what) const {
    if (t < 0 || static_cast<flatbuffers::uoffset_t>(t) >= tensor_count_) corrupt(source_, what + " refers to tensor " + std::to_string(t) + " of " + std::to_string(tensor_count_));
    return t;
  }

  const tfl::Tensor* tensor(std::int32_t t) const { return sg_->tensors()->Get(static_cast<flatbuffers::uoffset_t>(check_index(t, "an operator"))); }

  std::string name_of(std::int32_t t) const {
    const tfl::Tensor* x = tensor(t);
    return x->name() && x->name()->size() > 0 ? x->name()->str() : "tensor_" + std::to_string(t);
  }

  std::vector<std::int64_t> dims(std::int32_t t) const {
    const tfl::Tensor* x = tensor(t);
    std::vector<std::int64_t> out;
    if (!x->shape()) return out;
    if (x->shape()->size() > 8) corrupt(source_, "tensor '" + name_of(t) + "' has rank " + std::to_string(x->shape()->size()));
    std::int64_t elements = 1;
    for (std::int32_t d : *x->shape()) {
      if (d < 1 || d > kMaxElements) {
        fail(ErrorCode::kUnsupportedFormat, "tensor '" + name_of(t) + "' has the dimension " + std::to_string(d) + "; EdgeOpt reads static shapes",
             "convert the model with a fixed input shape (batch 1)");
      }
      elements *= std::max<std::int64_t>(d, 1);
      if (elements > kMaxElements) {
        fail(ErrorCode::kUnsupportedFormat, "tensor '" + name_of(t) + "' of '" + source_ + "' declares more than 2^31 elements",
             "convert the model with its real input size (e.g. 1x224x224x3)");
      }
      out.push_back(d);
    }
    return out;
  }

  std::size_t rank(std::int32_t t) const { return dims(t).size(); }

  std::optional<TensorQuant> quant_of(std::int32_t t) const {
    const tfl::Tensor* x = tensor(t);
    const auto* q = x->quantization();
    if (!q || !q->scale() || q->scale()->size() == 0) return std::nullopt;
    TensorQuant out;
    for (float s : *q->scale()) {
      if (!std::isfinite(s) || s <= 0) corrupt(source_, "tensor '" + name_of(t) + "' has the scale " + std::to_string(s) + "; scales must be finite and positive");
      out.scales.push_back(s);
    }
    if (q->zero_point()) {
      for (std::int64_t z : *q->zero_point()) out.zeros.push_back(z);
    }
    if (out.zeros.empty()) out.zeros.assign(out.scales.size(), 0);
    if (out.zeros.size() != out.scales.size()) corrupt(source_, "tensor '" + name_of(t) + "' has " + std::to_string(out.zeros.size()) + " zero points for " + std::to_string(out.scales.size()) + " scales");
    out.dim = q->quantized_dimension();
    return out;
  }

  bool is_constant(std::int32_t t) const {
    const std::uint32_t b = tensor(t)->buffer();
    if (b == 0 || !model_->buffers() || b >= model_->buffers()->size()) return consts_[static_cast<std::size_t>(t)].has_value();
    const auto* data = model_->buffers()->Get(b)->data();
    return (data && data->size() > 0) || consts_[static_cast<std::size_t>(t)].has_value();
  }

  // The constant tensor `t` (its buffer, or what a DEQUANTIZE of a constant made).
  const Const& constant(std::int32_t t) {
    auto& slot = consts_[static_cast<std::size_t>(check_index(t, "an operator"))];
    if (slot) return *slot;
    const tfl::Tensor* x = tensor(t);
    const std::uint32_t b = x->buffer();
    if (b == 0 || !model_->buffers() || b >= model_->buffers()->size() || !model_->buffers()->Get(b)->data()) {
      corrupt(source_, "tensor '" + name_of(t) + "' is read as a constant but has no data");
    }
    const auto* data = model_->buffers()->Get(b)->data();
    Const c;
    c.dims = dims(t);
    std::int64_t n = 1;
    for (std::int64_t d : c.dims) n *= d;
    const auto count = static_cast<std::size_t>(n);
    std::size_t width = 0;
    switch (x->type()) {
      case tfl::TensorType_FLOAT32:
      case tfl::TensorType_INT32: width = 4; break;
      case tfl::TensorType_FLOAT16: width = 2; break;
      case tfl::TensorType_INT8:
      case tfl::TensorType_UINT8: width = 1; break;
      case tfl::TensorType_INT64: width = 8; break;
      default:
        fail(ErrorCode::kUnsupportedOp, "constant '" + name_of(t) + "' has TFLite type " + std::to_string(static_cast<int>(x->type())) + "; EdgeOpt reads float32/16, int8/uint8, int32 and int64 constants",
             kConvertHint);
    }
    if (data->size() != count * width) {
      corrupt(source_, "constant '" + name_of(t) + "' holds " + std::to_string(data->size()) + " bytes for " + std::to_string(count) + " elements of " + std::to_string(width) + " bytes");
    }
    const std::uint8_t* p = data->data();
    const std::optional<TensorQuant> q = quant_of(t);
    auto read = [&](auto tag, std::size_t k) {
      decltype(tag) v;
      std::memcpy(&v, p + k * sizeof v, sizeof v);
      return v;
    };
    switch (x->type()) {
      case tfl::TensorType_FLOAT32:
        c.f.resize(count);
        for (std::size_t k = 0; k < count; ++k) c.f[k] = read(float{}, k);
        break;
      case tfl::TensorType_FLOAT16:
        c.f.resize(count);
        for (std::size_t k = 0; k < count; ++k) c.f[k] = format::f16_to_f32(read(std::uint16_t{}, k));
        break;
      case tfl::TensorType_INT64:
        c.is_int = true;
        for (std::size_t k = 0; k < count; ++k) c.i.push_back(read(std::int64_t{}, k));
        break;
      default: {
        std::vector<std::int64_t> codes(count);
        for (std::size_t k = 0; k < count; ++k) {
          codes[k] = x->type() == tfl::TensorType_INT32 ? read(std::int32_t{}, k)
                     : x->type() == tfl::TensorType_INT8 ? static_cast<std::int64_t>(read(std::int8_t{}, k))
                                                         : static_cast<std::int64_t>(read(std::uint8_t{}, k));
        }
        if (!q) {
          if (x->type() != tfl::TensorType_INT32) corrupt(source_, "8-bit constant '" + name_of(t) + "' has no quantization parameters");
          c.is_int = true;
          c.i = std::move(codes);
          break;
        }
        dequantize(t, c, codes, *q);
        if (x->type() != tfl::TensorType_INT32) {
          ir::QuantParams p8;
          p8.scales = q->scales;
          for (std::int64_t z : q->zeros) p8.zero_points.push_back(static_cast<std::int32_t>(x->type() == tfl::TensorType_UINT8 ? z - 128 : z));
          p8.axis = q->scales.size() > 1 ? q->dim : -1;
          c.quant = p8;
          c.quant_dim = p8.axis;
        }
      }
    }
    slot = std::move(c);
    return *slot;
  }

  void dequantize(std::int32_t t, Const& c, const std::vector<std::int64_t>& codes, const TensorQuant& q) const {
    std::size_t inner = 1, channels = 1;
    if (q.scales.size() > 1) {
      if (q.dim < 0 || static_cast<std::size_t>(q.dim) >= c.dims.size() || c.dims[static_cast<std::size_t>(q.dim)] != static_cast<std::int64_t>(q.scales.size())) {
        corrupt(source_, "constant '" + name_of(t) + "' has " + std::to_string(q.scales.size()) + " scales along dimension " + std::to_string(q.dim));
      }
      channels = q.scales.size();
      for (std::size_t d = static_cast<std::size_t>(q.dim) + 1; d < c.dims.size(); ++d) inner *= static_cast<std::size_t>(c.dims[d]);
    }
    c.f.resize(codes.size());
    for (std::size_t k = 0; k < codes.size(); ++k) {
      const std::size_t ch = channels > 1 ? (k / inner) % channels : 0;
      c.f[k] = q.scales[ch] * static_cast<float>(codes[k] - q.zeros[ch]);
    }
  }

  // The IR's per-tensor activation parameters of run-time tensor `t` (uint8 form), if it is 8-bit.
  std::optional<ir::QuantParams> activation_quant(std::int32_t t) const {
    const tfl::Tensor* x = tensor(t);
    if (x->type() != tfl::TensorType_INT8 && x->type() != tfl::TensorType_UINT8) return std::nullopt;
    const std::optional<TensorQuant> q = quant_of(t);
    if (!q) corrupt(source_, "8-bit tensor '" + name_of(t) + "' has no quantization parameters");
    if (q->scales.size() != 1) {
      fail(ErrorCode::kUnsupportedOp, "run-time tensor '" + name_of(t) + "' is quantized per channel (" + std::to_string(q->scales.size()) + " scales); EdgeOpt's int8 activations have one scale per tensor",
           "convert with per-tensor activation quantization (TFLite's converter does so by default)");
    }
    const std::int64_t z = x->type() == tfl::TensorType_INT8 ? q->zeros[0] + 128 : q->zeros[0];
    if (z < 0 || z > 255) corrupt(source_, "tensor '" + name_of(t) + "' has the zero point " + std::to_string(q->zeros[0]) + ", outside its 8-bit range");
    ir::QuantParams p;
    p.scales = {q->scales[0]};
    p.zero_points = {static_cast<std::int32_t>(z)};
    return p;
  }

  void check_runtime_type(std::int32_t t) const {
    switch (tensor(t)->type()) {
      case tfl::TensorType_FLOAT32:
      case tfl::TensorType_INT8:
      case tfl::TensorType_UINT8: return;
      default:
        fail(ErrorCode::kUnsupportedOp,
             "run-time tensor '" + name_of(t) + "' has TFLite type " + std::to_string(static_cast<int>(tensor(t)->type())) + "; EdgeOpt computes float32 and 8-bit tensors",
             "convert to float32, float16-weight or int8 (16-bit activations are not read)");
    }
  }

  // ---- IR values in their forms ----

  // Records IR value `id` as tensor `t` in `form`, with the tensor's 8-bit parameters.
  int define(std::int32_t t, Form form, int id) {
    check_runtime_type(t);
    Slot& s = slots_[static_cast<std::size_t>(t)];
    if (s.same >= 0 || s.nchw >= 0) corrupt(source_, "tensor '" + name_of(t) + "' is written by two operators");
    if (rank(t) != 4) form = Form::kSame;
    (form == Form::kSame ? s.same : s.nchw) = id;
    if (auto q = activation_quant(t)) graph_.value(id).quant = q;
    return id;
  }

  int transpose_node(int from, const std::vector<std::int64_t>& perm, const std::string& name) {
    ir::Attrs a;
    a.perm = perm;
    const int id = graph_.add_node(OpKind::kTranspose, name, {from}, a, name, "TRANSPOSE");
    graph_.value(id).quant = graph_.value(from).quant;
    return id;
  }

  // The IR value of run-time tensor `t` in `form` (a Transpose is added when only the other exists).
  int get(std::int32_t t, Form form) {
    check_index(t, "an operator");
    if (is_constant(t)) {
      fail(ErrorCode::kUnsupportedOp, "constant '" + name_of(t) + "' is used where EdgeOpt needs a run-time tensor", kConvertHint);
    }
    if (rank(t) != 4) form = Form::kSame;
    Slot& s = slots_[static_cast<std::size_t>(t)];
    if (s.same < 0 && s.nchw < 0) corrupt(source_, "tensor '" + name_of(t) + "' is read before any operator writes it");
    if (form == Form::kSame && s.same < 0) s.same = transpose_node(s.nchw, {kToNhwc.begin(), kToNhwc.end()}, name_of(t) + "_nhwc");
    if (form == Form::kNchw && s.nchw < 0) s.nchw = transpose_node(s.same, {kToNchw.begin(), kToNchw.end()}, name_of(t) + "_nchw");
    return form == Form::kSame ? s.same : s.nchw;
  }

  // The form an element-wise op keeps: nchw when its input has it.
  Form form_of(std::int32_t t) const {
    const Slot& s = slots_[static_cast<std::size_t>(t)];
    return s.nchw >= 0 ? Form::kNchw : Form::kSame;
  }

  void add_input(std::int32_t t) {
    check_index(t, "the graph input");
    check_runtime_type(t);
    std::vector<std::int64_t> shape = dims(t);
    if (shape.empty()) fail(ErrorCode::kUnsupportedFormat, "the input '" + name_of(t) + "' is a scalar", "EdgeOpt imports image and vector classifiers");
    batch_ = shape[0];
    shape[0] = ir::kBatch;
    const ir::Layout layout = shape.size() == 4 ? ir::Layout::kNHWC : shape.size() == 2 ? ir::Layout::kNC : ir::Layout::kUnknown;
    const int id = graph_.add_input(name_of(t), shape, layout);
    define(t, Form::kSame, id);
  }

  // ---- operators ----

  std::int32_t input(const tfl::Operator* o, std::size_t k, bool optional = false) const {
    if (!o->inputs() || k >= o->inputs()->size()) {
      if (optional) return -1;
      corrupt(source_, "operator '" + op_label_ + "' lacks its input #" + std::to_string(k));
    }
    const std::int32_t t = o->inputs()->Get(static_cast<flatbuffers::uoffset_t>(k));
    if (t < 0 && optional) return -1;
    return check_index(t, "operator '" + op_label_ + "'");
  }

  [[noreturn]] void unsupported(const std::string& why) const {
    fail(ErrorCode::kUnsupportedOp, "TFLite operator " + op_label_ + " in '" + source_ + "' cannot be imported: " + why, kConvertHint);
  }

  int emit(OpKind kind, std::vector<int> inputs, const ir::Attrs& attrs, const std::string& suffix = {}) {
    const std::string name = out_name_ + suffix;
    return graph_.add_node(kind, name, std::move(inputs), attrs, name, op_name_);
  }

  // Applies a fused activation to `id` (whose quantization, when 8-bit, is the output tensor's).
  int activation(int id, tfl::ActivationFunctionType act) {
    ir::Attrs a;
    switch (act) {
      case tfl::ActivationFunctionType_NONE: return id;
      case tfl::ActivationFunctionType_RELU: return emit(OpKind::kRelu, {id}, a, "_relu");
      case tfl::ActivationFunctionType_RELU6: a.min = 0; a.max = 6; return emit(OpKind::kClip, {id}, a, "_relu6");
      case tfl::ActivationFunctionType_RELU_N1_TO_1: a.min = -1; a.max = 1; return emit(OpKind::kClip, {id}, a, "_relu_n1_to_1");
      case tfl::ActivationFunctionType_TANH: return emit(OpKind::kTanh, {id}, a, "_tanh");
      default: unsupported("fused activation " + std::to_string(static_cast<int>(act)));
    }
  }

  // `id`, then its fused activation, recorded as output tensor 0 in `form`.
  void finish(const tfl::Operator* o, int id, tfl::ActivationFunctionType act, Form form) {
    const std::int32_t out = output(o);
    if (auto q = activation_quant(out)) graph_.value(id).quant = q;
    define(out, form, activation(id, act));
  }

  std::int32_t output(const tfl::Operator* o) const {
    if (!o->outputs() || o->outputs()->size() == 0) corrupt(source_, "operator '" + op_label_ + "' has no output");
    if (o->outputs()->size() > 1) unsupported("it has " + std::to_string(o->outputs()->size()) + " outputs");
    return check_index(o->outputs()->Get(0), "operator '" + op_label_ + "'");
  }

  template <class T>
  const T* options(const tfl::Operator* o) const {
    const T* opts = o->builtin_options_as<T>();
    return opts;
  }

  void op(flatbuffers::uoffset_t k, const tfl::Operator* o) {
    if (!model_->operator_codes() || o->opcode_index() >= model_->operator_codes()->size()) {
      corrupt(source_, "operator #" + std::to_string(k) + " has the opcode index " + std::to_string(o->opcode_index()));
    }
    const tfl::OperatorCode* code = model_->operator_codes()->Get(o->opcode_index());
    op_name_ = op_name_of(code);
    const int builtin = std::max<int>(code->deprecated_builtin_code(), static_cast<int>(code->builtin_code()));
    const std::int32_t out = o->outputs() && o->outputs()->size() > 0 ? o->outputs()->Get(0) : -1;
    out_name_ = out >= 0 && static_cast<flatbuffers::uoffset_t>(out) < tensor_count_ ? name_of(out) : "op_" + std::to_string(k);
    op_label_ = "#" + std::to_string(k) + " " + op_name_ + " (output '" + out_name_ + "')";
    switch (builtin) {
      case tfl::BuiltinOperator_CONV_2D: conv(o, false); return;
      case tfl::BuiltinOperator_DEPTHWISE_CONV_2D: conv(o, true); return;
      case tfl::BuiltinOperator_FULLY_CONNECTED: fully_connected(o); return;
      case tfl::BuiltinOperator_ADD:
      case tfl::BuiltinOperator_SUB:
      case tfl::BuiltinOperator_MUL:
      case tfl::BuiltinOperator_DIV: binary(o, builtin); return;
      case tfl::BuiltinOperator_RELU: unary(o, OpKind::kRelu, {}); return;
      case tfl::BuiltinOperator_RELU6: {
        ir::Attrs a;
        a.min = 0;
        a.max = 6;
        unary(o, OpKind::kClip, a);
        return;
      }
      case tfl::BuiltinOperator_RELU_N1_TO_1: {
        ir::Attrs a;
        a.min = -1;
        a.max = 1;
        unary(o, OpKind::kClip, a);
        return;
      }
      case tfl::BuiltinOperator_LOGISTIC: unary(o, OpKind::kSigmoid, {}); return;
      case tfl::BuiltinOperator_TANH: unary(o, OpKind::kTanh, {}); return;
      case tfl::BuiltinOperator_HARD_SWISH: unary(o, OpKind::kHardSwish, {}); return;
      case tfl::BuiltinOperator_LEAKY_RELU: {
        ir::Attrs a;
        const auto* opts = options<tfl::LeakyReluOptions>(o);
        a.alpha = opts ? opts->alpha() : 0.0F;
        unary(o, OpKind::kLeakyRelu, a);
        return;
      }
      case tfl::BuiltinOperator_SOFTMAX:
      case tfl::BuiltinOperator_LOG_SOFTMAX: softmax(o, builtin == tfl::BuiltinOperator_SOFTMAX); return;
      case tfl::BuiltinOperator_MAX_POOL_2D:
      case tfl::BuiltinOperator_AVERAGE_POOL_2D: pool(o, builtin == tfl::BuiltinOperator_MAX_POOL_2D); return;
      case tfl::BuiltinOperator_MEAN: mean(o); return;
      case tfl::BuiltinOperator_RESHAPE:
      case tfl::BuiltinOperator_SQUEEZE: reshape(o); return;
      case tfl::BuiltinOperator_TRANSPOSE: transpose(o); return;
      case tfl::BuiltinOperator_CONCATENATION: concat(o); return;
      case tfl::BuiltinOperator_PAD:
      case tfl::BuiltinOperator_PADV2:
      case tfl::BuiltinOperator_MIRROR_PAD: pad(o, builtin); return;
      case tfl::BuiltinOperator_STRIDED_SLICE:
      case tfl::BuiltinOperator_SLICE: slice(o, builtin == tfl::BuiltinOperator_SLICE); return;
      case tfl::BuiltinOperator_MAXIMUM:
      case tfl::BuiltinOperator_MINIMUM: min_max(o, builtin == tfl::BuiltinOperator_MAXIMUM); return;
      case tfl::BuiltinOperator_DEQUANTIZE: dequantize_op(o); return;
      case tfl::BuiltinOperator_QUANTIZE: quantize_op(o); return;
      default: break;
    }
    fail(ErrorCode::kUnsupportedOp,
         "TFLite operator " + op_label_ + " in '" + source_ + "' is not supported; EdgeOpt's TFLite importer reads the ops its TFLite export writes "
         "(CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD/SUB/MUL/DIV, RELU/RELU6, LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, SOFTMAX, LOG_SOFTMAX, "
         "MAX/AVERAGE_POOL_2D, MEAN, RESHAPE, SQUEEZE, TRANSPOSE, CONCATENATION, PAD/PADV2/MIRROR_PAD, STRIDED_SLICE, SLICE, MAXIMUM/MINIMUM, "
         "QUANTIZE, DEQUANTIZE)",
         kConvertHint);
  }

  // SAME padding of one spatial axis, as TFLite computes it: [begin, end].
  static std::pair<std::int64_t, std::int64_t> same_pads(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t d) {
    const std::int64_t out = (in + s - 1) / s;
    const std::int64_t total = std::max<std::int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
    return {total / 2, total - total / 2};
  }

  std::vector<std::int64_t> window_pads(tfl::Padding padding, const std::vector<std::int64_t>& x, std::int64_t kh, std::int64_t kw, std::int64_t sh,
                                        std::int64_t sw, std::int64_t dh, std::int64_t dw) const {
    if (padding == tfl::Padding_VALID) return {0, 0, 0, 0};
    if (padding != tfl::Padding_SAME) unsupported("padding mode " + std::to_string(static_cast<int>(padding)));
    const auto [t, b] = same_pads(x[1], kh, sh, dh);
    const auto [l, r] = same_pads(x[2], kw, sw, dw);
    return {t, l, b, r};
  }

  static std::int64_t positive(std::int64_t v, std::int64_t fallback) { return v > 0 ? v : fallback; }

  // Constant weights with their 8-bit parameters moved to the IR's axis 0 (one scale per output
  // channel, the form the int8 executor takes).
  int weight_constant(const std::string& name, const std::vector<std::int64_t>& shape, std::vector<float> data, const Const& c, int channel_dim) {
    const int id = graph_.add_constant(name, shape, std::move(data));
    if (c.quant) {
      ir::QuantParams q = *c.quant;
      if (q.scales.size() == 1) {
        q.scales.assign(static_cast<std::size_t>(shape[0]), q.scales[0]);
        q.zero_points.assign(static_cast<std::size_t>(shape[0]), q.zero_points.empty() ? 0 : q.zero_points[0]);
        q.axis = 0;
      } else if (c.quant_dim == channel_dim) {
        q.axis = 0;
      } else {
        return id;  // parameters along another axis: kept as float weights
      }
      graph_.value(id).quant = q;
    }
    return id;
  }

  int bias_constant(std::int32_t t, std::int64_t channels) {
    if (t < 0) return -1;
    const Const& b = constant(t);
    if (b.is_int || static_cast<std::int64_t>(b.f.size()) != channels) unsupported("its bias is not a float or quantized vector of " + std::to_string(channels));
    return graph_.add_constant(name_of(t), {channels}, b.f);
  }

  void conv(const tfl::Operator* o, bool depthwise) {
    const std::int32_t xt = input(o, 0), wt = input(o, 1), bt = input(o, 2, true);
    const std::vector<std::int64_t> x = dims(xt);
    if (x.size() != 4) unsupported("its input is not 4-D");
    if (!is_constant(wt)) unsupported("its filter is computed at run time");
    const Const& w = constant(wt);
    if (w.is_int || w.dims.size() != 4) unsupported("its filter is not a 4-D float or quantized constant");
    const std::int64_t kh = w.dims[1], kw = w.dims[2];
    std::int64_t sh = 1, sw = 1, dh = 1, dw = 1, group = 1;
    tfl::Padding padding = tfl::Padding_VALID;
    tfl::ActivationFunctionType act = tfl::ActivationFunctionType_NONE;
    std::vector<float> data(w.f.size());
    std::int64_t cout = 0, cin_g = 0;
    if (depthwise) {
      const auto* opts = options<tfl::DepthwiseConv2DOptions>(o);
      if (!opts) corrupt(source_, "operator '" + op_label_ + "' lacks its options");
      padding = opts->padding();
      sh = positive(opts->stride_h(), 0), sw = positive(opts->stride_w(), 0);
      dh = positive(opts->dilation_h_factor(), 1), dw = positive(opts->dilation_w_factor(), 1);
      act = opts->fused_activation_function();
      cout = w.dims[3];
      cin_g = 1;
      group = x[3];
      if (w.dims[0] != 1 || group <= 0 || cout % group != 0) unsupported("its filter " + ir::shape_to_string(w.dims) + " does not fit a depthwise convolution of " + std::to_string(x[3]) + " channels");
      // [1, kh, kw, cout] -> [cout, 1, kh, kw]
      for (std::int64_t i = 0; i < kh * kw; ++i)
        for (std::int64_t c = 0; c < cout; ++c) data[static_cast<std::size_t>(c * kh * kw + i)] = w.f[static_cast<std::size_t>(i * cout + c)];
    } else {
      const auto* opts = options<tfl::Conv2DOptions>(o);
      if (!opts) corrupt(source_, "operator '" + op_label_ + "' lacks its options");
      padding = opts->padding();
      sh = positive(opts->stride_h(), 0), sw = positive(opts->stride_w(), 0);
      dh = positive(opts->dilation_h_factor(), 1), dw = positive(opts->dilation_w_factor(), 1);
      act = opts->fused_activation_function();
      cout = w.dims[0];
      cin_g = w.dims[3];
      if (cin_g <= 0 || x[3] % cin_g != 0) unsupported("its filter has " + std::to_string(cin_g) + " input channels for an input of " + std::to_string(x[3]));
      group = x[3] / cin_g;
      // [cout, kh, kw, cin] -> [cout, cin, kh, kw]
      for (std::int64_t c = 0; c < cout; ++c)
        for (std::int64_t y = 0; y < kh; ++y)
          for (std::int64_t z = 0; z < kw; ++z)
            for (std::int64_t i = 0; i < cin_g; ++i) data[static_cast<std::size_t>(((c * cin_g + i) * kh + y) * kw + z)] = w.f[static_cast<std::size_t>(((c * kh + y) * kw + z) * cin_g + i)];
    }
    if (sh <= 0 || sw <= 0) corrupt(source_, "operator '" + op_label_ + "' has a stride of zero or less");
    const int weight = weight_constant(name_of(wt), {cout, cin_g, kh, kw}, std::move(data), w, depthwise ? 3 : 0);
    ir::Attrs a;
    a.strides = {sh, sw};
    a.dilations = {dh, dw};
    a.group = group;
    a.pads = window_pads(padding, x, kh, kw, sh, sw, dh, dw);
    std::vector<int> inputs = {get(xt, Form::kNchw), weight};
    if (bt >= 0) inputs.push_back(bias_constant(bt, cout));
    finish(o, emit(OpKind::kConv, inputs, a, act != tfl::ActivationFunctionType_NONE ? "_conv" : ""), act, Form::kNchw);
  }

  void fully_connected(const tfl::Operator* o) {
    const std::int32_t xt = input(o, 0), wt = input(o, 1), bt = input(o, 2, true);
    const auto* opts = options<tfl::FullyConnectedOptions>(o);
    if (opts && opts->weights_format() != 0) unsupported("its weights use a shuffled format");
    if (!is_constant(wt)) unsupported("its weights are computed at run time (a product of two run-time tensors)");
    const Const& w = constant(wt);
    if (w.is_int || w.dims.size() != 2) unsupported("its weights are not a 2-D float or quantized constant");
    const std::int64_t m = w.dims[0], k = w.dims[1];
    const std::vector<std::int64_t> x = dims(xt);
    int in = get(xt, Form::kSame);
    if (x.size() != 2 || x[1] != k) {
      std::int64_t elements = 1;
      for (std::int64_t d : x) elements *= d;
      if (x.empty() || k <= 0 || elements != batch_ * k) unsupported("its input " + ir::shape_to_string(x) + " does not flatten to rows of " + std::to_string(k));
      if (opts && opts->keep_num_dims()) unsupported("keep_num_dims on a " + std::to_string(x.size()) + "-D input");
      ir::Attrs r;
      r.shape = {0, k};
      in = emit(OpKind::kReshape, {in}, r, "_flatten");
      graph_.value(in).quant = graph_.value(get(xt, Form::kSame)).quant;
    }
    std::vector<int> inputs = {in, weight_constant(name_of(wt), {m, k}, w.f, w, 0)};
    if (bt >= 0) inputs.push_back(bias_constant(bt, m));
    const auto act = opts ? opts->fused_activation_function() : tfl::ActivationFunctionType_NONE;
    finish(o, emit(OpKind::kGemm, inputs, {}, act != tfl::ActivationFunctionType_NONE ? "_fc" : ""), act, Form::kSame);
  }

  // A constant operand of an element-wise op on a tensor of `out_rank` in `form`.
  int operand_constant(std::int32_t t, std::size_t out_rank, Form form) {
    const Const& c = constant(t);
    if (c.is_int) unsupported("its constant operand '" + name_of(t) + "' is an integer tensor");
    std::vector<std::int64_t> shape = c.dims;
    std::vector<float> data = c.f;
    if (shape.size() > out_rank) unsupported("its constant operand has a higher rank than its result");
    if (form == Form::kNchw && out_rank == 4 && !shape.empty()) {
      while (shape.size() < 4) shape.insert(shape.begin(), 1);
      const std::int64_t n = shape[0], h = shape[1], w = shape[2], ch = shape[3];
      std::vector<float> nchw(data.size());
      for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t y = 0; y < h; ++y)
          for (std::int64_t z = 0; z < w; ++z)
            for (std::int64_t i = 0; i < ch; ++i) nchw[static_cast<std::size_t>(((b * ch + i) * h + y) * w + z)] = data[static_cast<std::size_t>(((b * h + y) * w + z) * ch + i)];
      data = std::move(nchw);
      shape = {n, ch, h, w};
    }
    return graph_.add_constant(name_of(t), shape, std::move(data));
  }

  void binary(const tfl::Operator* o, int builtin) {
    const std::int32_t at = input(o, 0), bt = input(o, 1);
    const std::int32_t out = output(o);
    const std::size_t r = rank(out);
    const bool ca = is_constant(at), cb = is_constant(bt);
    if (ca && cb) unsupported("both operands are constants");
    Form form = Form::kSame;
    if (r == 4) {
      const bool a4 = !ca && rank(at) == 4, b4 = !cb && rank(bt) == 4;
      if ((!ca && !a4) || (!cb && !b4)) unsupported("it broadcasts run-time tensors of different ranks");
      form = (!ca && form_of(at) == Form::kNchw) || (!cb && form_of(bt) == Form::kNchw) ? Form::kNchw : Form::kSame;
    } else if ((!ca && rank(at) != r) || (!cb && rank(bt) != r)) {
      unsupported("it broadcasts run-time tensors of different ranks");
    }
    const int a = ca ? operand_constant(at, r, form) : get(at, form);
    const int b = cb ? operand_constant(bt, r, form) : get(bt, form);
    tfl::ActivationFunctionType act = tfl::ActivationFunctionType_NONE;
    OpKind kind = OpKind::kAdd;
    switch (builtin) {
      case tfl::BuiltinOperator_ADD: {
        if (const auto* opts = options<tfl::AddOptions>(o)) act = opts->fused_activation_function();
        break;
      }
      case tfl::BuiltinOperator_SUB: {
        kind = OpKind::kSub;
        if (const auto* opts = options<tfl::SubOptions>(o)) act = opts->fused_activation_function();
        break;
      }
      case tfl::BuiltinOperator_MUL: {
        kind = OpKind::kMul;
        if (const auto* opts = options<tfl::MulOptions>(o)) act = opts->fused_activation_function();
        break;
      }
      default: {
        kind = OpKind::kDiv;
        if (const auto* opts = options<tfl::DivOptions>(o)) act = opts->fused_activation_function();
      }
    }
    finish(o, emit(kind, {a, b}, {}, act != tfl::ActivationFunctionType_NONE ? "_op" : ""), act, form);
  }

  void unary(const tfl::Operator* o, OpKind kind, const ir::Attrs& a) {
    const std::int32_t xt = input(o, 0);
    const Form form = rank(xt) == 4 ? form_of(xt) : Form::kSame;
    finish(o, emit(kind, {get(xt, form)}, a), tfl::ActivationFunctionType_NONE, form);
  }

  void softmax(const tfl::Operator* o, bool is_softmax) {
    const std::int32_t xt = input(o, 0);
    const std::size_t r = rank(xt);
    if (r == 0) unsupported("its input is a scalar");
    if (is_softmax) {
      const auto* opts = options<tfl::SoftmaxOptions>(o);
      if (opts && opts->beta() != 1.0F) unsupported("its beta is " + std::to_string(opts->beta()) + " (EdgeOpt's Softmax has beta 1)");
    }
    ir::Attrs a;
    Form form = Form::kSame;
    a.axis = static_cast<std::int64_t>(r) - 1;
    if (r == 4 && form_of(xt) == Form::kNchw) {
      form = Form::kNchw;
      a.axis = 1;  // NHWC's last axis, the channels
    }
    finish(o, emit(is_softmax ? OpKind::kSoftmax : OpKind::kLogSoftmax, {get(xt, form)}, a), tfl::ActivationFunctionType_NONE, form);
  }

  void pool(const tfl::Operator* o, bool is_max) {
    const std::int32_t xt = input(o, 0);
    const std::vector<std::int64_t> x = dims(xt);
    if (x.size() != 4) unsupported("its input is not 4-D");
    const auto* opts = options<tfl::Pool2DOptions>(o);
    if (!opts) corrupt(source_, "operator '" + op_label_ + "' lacks its options");
    const std::int64_t kh = opts->filter_height(), kw = opts->filter_width(), sh = opts->stride_h(), sw = opts->stride_w();
    if (kh <= 0 || kw <= 0 || sh <= 0 || sw <= 0) corrupt(source_, "operator '" + op_label_ + "' has a window or stride of zero or less");
    ir::Attrs a;
    a.kernel = {kh, kw};
    a.strides = {sh, sw};
    a.pads = window_pads(opts->padding(), x, kh, kw, sh, sw, 1, 1);
    a.count_include_pad = false;  // TFLite's average pool divides by the window's cells inside the image
    finish(o, emit(is_max ? OpKind::kMaxPool : OpKind::kAvgPool, {get(xt, Form::kNchw)}, a, opts->fused_activation_function() != tfl::ActivationFunctionType_NONE ? "_pool" : ""),
           opts->fused_activation_function(), Form::kNchw);
  }

  std::vector<std::int64_t> int_constant(std::int32_t t, const std::string& what) {
    if (t < 0 || !is_constant(t)) unsupported("its " + what + " is computed at run time");
    const Const& c = constant(t);
    if (!c.is_int) unsupported("its " + what + " is not an integer constant");
    return c.i;
  }

  void mean(const tfl::Operator* o) {
    const std::int32_t xt = input(o, 0);
    std::vector<std::int64_t> axes = int_constant(input(o, 1), "axes");
    const std::size_t r = rank(xt);
    for (std::int64_t& axis : axes) axis = axis < 0 ? axis + static_cast<std::int64_t>(r) : axis;
    std::sort(axes.begin(), axes.end());
    if (r != 4 || axes != std::vector<std::int64_t>{1, 2}) unsupported("only the mean over height and width of a 4-D image (axes 1, 2) is read");
    const auto* opts = options<tfl::ReducerOptions>(o);
    const int pooled = emit(OpKind::kGlobalAvgPool, {get(xt, Form::kNchw)}, {}, opts && opts->keep_dims() ? "" : "_pool");
    if (opts && opts->keep_dims()) {
      finish(o, pooled, tfl::ActivationFunctionType_NONE, Form::kNchw);
      return;
    }
    if (auto q = activation_quant(output(o))) graph_.value(pooled).quant = q;
    ir::Attrs f;
    f.axis = 1;
    finish(o, emit(OpKind::kFlatten, {pooled}, f), tfl::ActivationFunctionType_NONE, Form::kSame);
  }

  // The IR target of a reshape to `shape`: the batch copied from the input at dim 0.
  std::vector<std::int64_t> batched_target(std::vector<std::int64_t> shape) const {
    if (shape.empty() || (shape[0] != batch_ && shape[0] != -1)) unsupported("it reshapes across the batch dimension (to " + ir::shape_to_string(shape) + ")");
    shape[0] = 0;
    return shape;
  }

  void reshape(const tfl::Operator* o) {
    const std::int32_t xt = input(o, 0);
    const std::int32_t out = output(o);
    std::vector<std::int64_t> target = dims(out);
    if (target.empty() && rank(xt) > 0) {
      // A file whose output shape is not stored: the shape input, or the option.
      const std::int32_t st = input(o, 1, true);
      if (st >= 0) {
        target = int_constant(st, "target shape");
      } else if (const auto* opts = options<tfl::ReshapeOptions>(o); opts && opts->new_shape()) {
        for (std::int32_t d : *opts->new_shape()) target.push_back(d);
      }
    }
    ir::Attrs a;
    a.shape = batched_target(target);
    std::int64_t x_elements = 1, y_elements = 1;
    for (std::int64_t d : dims(xt)) x_elements *= d;
    for (std::int64_t d : target) y_elements *= d > 0 ? d : 1;
    if (std::count(target.begin(), target.end(), -1) == 0 && x_elements != y_elements) corrupt(source_, "operator '" + op_label_ + "' reshapes " + std::to_string(x_elements) + " elements to " + ir::shape_to_string(target));
    finish(o, emit(OpKind::kReshape, {get(xt, Form::kSame)}, a), tfl::ActivationFunctionType_NONE, Form::kSame);
  }

  void transpose(const tfl::Operator* o) {
    const std::int32_t xt = input(o, 0);
    const std::vector<std::int64_t> perm = int_constant(input(o, 1), "permutation");
    const std::size_t r = rank(xt);
    std::vector<std::int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t j = 0; j < sorted.size(); ++j) {
      if (sorted[j] != static_cast<std::int64_t>(j)) sorted.clear();
    }
    if (perm.size() != r || sorted.size() != r) corrupt(source_, "operator '" + op_label_ + "' has a permutation that does not fit a rank-" + std::to_string(r) + " tensor");
    if (perm[0] != 0) unsupported("it moves the batch dimension");
    ir::Attrs a;
    a.perm = perm;
    finish(o, emit(OpKind::kTranspose, {get(xt, Form::kSame)}, a), tfl::ActivationFunctionType_NONE, Form::kSame);
  }

  void concat(const tfl::Operator* o) {
    if (!o->inputs() || o->inputs()->size() == 0) corrupt(source_, "operator '" + op_label_ + "' has no inputs");
    const std::int32_t out = output(o);
    const std::size_t r = rank(out);
    const auto* opts = options<tfl::ConcatenationOptions>(o);
    std::int64_t axis = opts ? opts->axis() : 0;
    if (axis < 0) axis += static_cast<std::int64_t>(r);
    if (axis <= 0 || axis >= static_cast<std::int64_t>(r)) unsupported("it concatenates along axis " + std::to_string(axis) + " (the batch, or outside the rank)");
    Form form = Form::kSame;
    std::vector<int> inputs;
    for (flatbuffers::uoffset_t k = 0; k < o->inputs()->size(); ++k) {
      if (r == 4 && form_of(input(o, k)) == Form::kNchw) form = Form::kNchw;
    }
    for (flatbuffers::uoffset_t k = 0; k < o->inputs()->size(); ++k) {
      const std::int32_t t = input(o, k);
      if (rank(t) != r) corrupt(source_, "operator '" + op_label_ + "' concatenates tensors of different ranks");
      inputs.push_back(get(t, form));
    }
    ir::Attrs a;
    a.axis = form == Form::kNchw ? std::find(kToNchw.begin(), kToNchw.end(), axis) - kToNchw.begin() : axis;
    const auto act = opts ? opts->fused_activation_function() : tfl::ActivationFunctionType_NONE;
    finish(o, emit(OpKind::kConcat, inputs, a, act != tfl::ActivationFunctionType_NONE ? "_concat" : ""), act, form);
  }

  void pad(const tfl::Operator* o, int builtin) {
    const std::int32_t xt = input(o, 0);
    const std::size_t r = rank(xt);
    const std::vector<std::int64_t> p = int_constant(input(o, 1), "paddings");
    if (p.size() != 2 * r) corrupt(source_, "operator '" + op_label_ + "' has " + std::to_string(p.size()) + " paddings for a rank-" + std::to_string(r) + " tensor");
    if (r == 0 || p[0] != 0 || p[1] != 0) unsupported("it pads the batch dimension");
    for (std::int64_t v : p) {
      if (v < 0 || v > (1 << 20)) corrupt(source_, "operator '" + op_label_ + "' has the padding " + std::to_string(v));
    }
    const Form form = r == 4 ? Form::kNchw : Form::kSame;
    ir::Attrs a;
    a.pads.assign(2 * r, 0);
    for (std::size_t j = 0; j < r; ++j) {
      const std::size_t src = form == Form::kNchw ? static_cast<std::size_t>(kToNchw[j]) : j;  // NCHW axis j is NHWC axis kToNchw[j]
      a.pads[j] = p[2 * src];
      a.pads[j + r] = p[2 * src + 1];
    }
    if (builtin == tfl::BuiltinOperator_MIRROR_PAD) {
      const auto* opts = options<tfl::MirrorPadOptions>(o);
      if (opts && opts->mode() != tfl::MirrorPadMode_REFLECT) unsupported("symmetric mirror padding (EdgeOpt pads by reflection, edge or a constant)");
      a.pad_mode = ir::PadMode::kReflect;
    } else if (builtin == tfl::BuiltinOperator_PADV2) {
      const std::int32_t vt = input(o, 2, true);
      if (vt >= 0) {
        if (!is_constant(vt)) unsupported("its pad value is computed at run time");
        const Const& v = constant(vt);
        if (v.is_int || v.f.size() != 1) unsupported("its pad value is not one float or quantized number");
        a.pad_value = v.f[0];
      }
    }
    finish(o, emit(OpKind::kPad, {get(xt, form)}, a), tfl::ActivationFunctionType_NONE, form);
  }

  void slice(const tfl::Operator* o, bool sized) {
    const std::int32_t xt = input(o, 0);
    const std::vector<std::int64_t> x = dims(xt);
    const std::size_t r = x.size();
    const std::vector<std::int64_t> begin = int_constant(input(o, 1), "begin");
    const std::vector<std::int64_t> second = int_constant(input(o, 2), sized ? "size" : "end");
    std::vector<std::int64_t> strides(r, 1);
    int begin_mask = 0, end_mask = 0;
    if (!sized) {
      strides = int_constant(input(o, 3), "strides");
      if (const auto* opts = options<tfl::StridedSliceOptions>(o)) {
        if (opts->ellipsis_mask() || opts->new_axis_mask() || opts->shrink_axis_mask()) unsupported("it uses ellipsis, new-axis or shrink-axis masks");
        begin_mask = opts->begin_mask();
        end_mask = opts->end_mask();
      }
    }
    if (begin.size() != r || second.size() != r || strides.size() != r) corrupt(source_, "operator '" + op_label_ + "' has parameters that do not fit a rank-" + std::to_string(r) + " tensor");
    ir::Attrs a;
    for (std::size_t j = 0; j < r; ++j) {
      const std::int64_t d = x[j];
      auto clampi = [&](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + d : v, 0, d); };
      std::int64_t b = (begin_mask >> j) & 1 ? 0 : clampi(begin[j]);
      std::int64_t e = sized ? (second[j] < 0 ? d : clampi(b + second[j])) : ((end_mask >> j) & 1 ? d : clampi(second[j]));
      if (strides[j] <= 0) unsupported("it has a stride of " + std::to_string(strides[j]) + " (EdgeOpt slices forwards)");
      if (b == 0 && e == d && strides[j] == 1) continue;
      if (j == 0) unsupported("it slices the batch dimension");
      a.axes.push_back(static_cast<std::int64_t>(j));
      a.starts.push_back(b);
      a.ends.push_back(e);
      a.steps.push_back(strides[j]);
    }
    const int in = get(xt, Form::kSame);
    if (a.axes.empty()) {
      alias(output(o), xt);
      return;
    }
    finish(o, emit(OpKind::kSlice, {in}, a), tfl::ActivationFunctionType_NONE, Form::kSame);
  }

  void min_max(const tfl::Operator* o, bool is_max) {
    std::int32_t xt = input(o, 0), ct = input(o, 1);
    if (is_constant(xt)) std::swap(xt, ct);
    if (!is_constant(ct)) unsupported("EdgeOpt reads " + std::string(is_max ? "MAXIMUM" : "MINIMUM") + " with one constant bound only (a clip)");
    const Const& c = constant(ct);
    if (c.is_int || c.f.size() != 1) unsupported("its bound is not one float or quantized number");
    ir::Attrs a;
    (is_max ? a.min : a.max) = c.f[0];
    const Form form = rank(xt) == 4 ? form_of(xt) : Form::kSame;
    finish(o, emit(OpKind::kClip, {get(xt, form)}, a), tfl::ActivationFunctionType_NONE, form);
  }

  // Output tensor `out` is tensor `from` (same IR values); used for QUANTIZE/DEQUANTIZE pairs.
  void alias(std::int32_t out, std::int32_t from) {
    Slot& s = slots_[static_cast<std::size_t>(out)];
    if (s.same >= 0 || s.nchw >= 0) corrupt(source_, "tensor '" + name_of(out) + "' is written by two operators");
    s = slots_[static_cast<std::size_t>(from)];
  }

  void dequantize_op(const tfl::Operator* o) {
    const std::int32_t xt = input(o, 0);
    const std::int32_t out = output(o);
    if (is_constant(xt)) {  // float16 or int8 weights, dequantized at load
      Const c = constant(xt);
      if (c.is_int) unsupported("it dequantizes an integer tensor without quantization parameters");
      auto& slot = consts_[static_cast<std::size_t>(out)];
      if (slot) corrupt(source_, "tensor '" + name_of(out) + "' is written by two operators");
      slot = std::move(c);
      return;
    }
    if (!activation_quant(xt)) unsupported("it dequantizes a tensor that is not 8-bit");
    (void)get(xt, Form::kSame);
    alias(out, xt);  // the IR value keeps its parameters; the float consumers dequantize it
  }

  void quantize_op(const tfl::Operator* o) {
    const std::int32_t xt = input(o, 0);
    const std::int32_t out = output(o);
    if (is_constant(xt)) unsupported("it quantizes a constant");
    const std::optional<ir::QuantParams> q = activation_quant(out);
    if (!q) unsupported("its output is not an 8-bit tensor");
    const std::optional<ir::QuantParams> had = activation_quant(xt);
    if (had && (had->scales != q->scales || had->zero_points != q->zero_points)) {
      unsupported("it requantizes an 8-bit tensor to other parameters; EdgeOpt keeps one set of int8 parameters per value");
    }
    (void)get(xt, Form::kSame);
    for (int id : {slots_[static_cast<std::size_t>(xt)].same, slots_[static_cast<std::size_t>(xt)].nchw}) {
      if (id < 0) continue;
      ir::Value& v = graph_.value(id);
      if (v.quant && (v.quant->scales != q->scales || v.quant->zero_points != q->zero_points)) {
        unsupported("value '" + v.name + "' is quantized twice with different parameters");
      }
      v.quant = q;
    }
    alias(out, xt);
  }

  // Transpose(Transpose(x)) becomes one Transpose, or nothing when the permutations cancel.
  void fold_transposes() {
    std::vector<int> producer(graph_.values.size(), -1);
    for (std::size_t k = 0; k < graph_.nodes.size(); ++k) producer[static_cast<std::size_t>(graph_.nodes[k].outputs[0])] = static_cast<int>(k);
    for (ir::Node& n : graph_.nodes) {
      if (n.op != OpKind::kTranspose) continue;
      const int p = producer[static_cast<std::size_t>(n.inputs[0])];
      if (p < 0 || graph_.nodes[static_cast<std::size_t>(p)].op != OpKind::kTranspose) continue;
      const ir::Node& first = graph_.nodes[static_cast<std::size_t>(p)];
      if (first.attrs.perm.size() != n.attrs.perm.size()) continue;
      std::vector<std::int64_t> perm(n.attrs.perm.size());
      bool identity = true;
      for (std::size_t j = 0; j < perm.size(); ++j) {
        perm[j] = first.attrs.perm[static_cast<std::size_t>(n.attrs.perm[j])];
        identity = identity && perm[j] == static_cast<std::int64_t>(j);
      }
      n.inputs[0] = first.inputs[0];
      n.attrs.perm = perm;
      if (identity) n.op = OpKind::kIdentity;
    }
  }

  std::string_view bytes_;
  std::string source_;
  const tfl::Model* model_ = nullptr;
  const tfl::SubGraph* sg_ = nullptr;
  flatbuffers::uoffset_t tensor_count_ = 0;
  ir::Graph graph_;
  std::vector<Slot> slots_;
  std::vector<std::optional<Const>> consts_;
  std::int64_t batch_ = 1;
  std::string op_name_, out_name_, op_label_;
};

}  // namespace

bool has_tflite_identifier(std::string_view head) { return head.size() >= 8 && head.substr(4, 4) == "TFL3"; }

Result<ir::Graph> import_bytes(std::string_view bytes, const std::string& source) {
  return capture([&]() -> ir::Graph { return Importer(bytes, source).run(); });
}

Result<ir::Graph> import_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error{ErrorCode::kIo, "cannot read '" + path + "': " + ec.message(), "check the path and its permissions"};
  if (size >= (std::uintmax_t{1} << 31)) {
    return Error{ErrorCode::kUnsupportedFormat, "'" + path + "' is larger than 2 GiB, which a TFLite flatbuffer cannot be", kConvertHint};
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) return Error{ErrorCode::kIo, "cannot read '" + path + "'", "check that the file is readable"};
  return import_bytes(bytes, path);
}

}  // namespace edgeopt::tflite_import
