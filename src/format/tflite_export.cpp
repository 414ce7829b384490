// IR -> TFLite flatbuffer. Every IR value becomes a tensor in one of two forms: as the IR holds it
// ("same"), or, for 4-D images, permuted NCHW -> NHWC, which is what TFLite's image ops take.
// A value is converted between forms (a TRANSPOSE op) only where an op needs the other one.
#include "format/tflite_export.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "common/file_io.h"
#include "format/encoding.h"
#include "format/tflite_schema_generated.h"

namespace edgeopt::format {
namespace {

namespace tfl = edgeopt::tflite;
using ir::Node;
using ir::OpKind;

enum class Form : std::uint8_t { kSame, kNhwc };
constexpr std::array<std::int32_t, 4> kToNhwc = {0, 2, 3, 1};    // nhwc[j] = nchw[kToNhwc[j]]
constexpr std::array<std::int32_t, 4> kFromNhwc = {0, 3, 1, 2};  // nchw[j] = nhwc[kFromNhwc[j]]
constexpr std::uint32_t kSchemaVersion = 3;

// int8 parameters of one tensor: real = scale * (q - zero).
struct Quant {
  float scale = 1;
  std::int32_t zero = 0;
};

[[noreturn]] void cannot_export(const Node& n, const std::string& why) {
  fail(ErrorCode::kUnsupportedOp, "node '" + n.name + "' (" + std::string(ir::op_name(n.op)) + ") cannot be exported to TFLite: " + why,
       "use the ONNX or .eom file of this variant, or open an issue naming the op");
}

std::vector<std::int32_t> concrete(const ir::Shape& shape) {
  std::vector<std::int32_t> out;
  for (std::int64_t d : shape) out.push_back(d == ir::kBatch ? 1 : static_cast<std::int32_t>(d));
  return out;
}

std::vector<std::int32_t> physical(const std::vector<std::int32_t>& shape, Form form) {
  if (form != Form::kNhwc || shape.size() != 4) return shape;
  return {shape[0], shape[2], shape[3], shape[1]};
}

// A NCHW-ordered float/int buffer of `shape` reordered to NHWC.
template <class T>
std::vector<T> to_nhwc(const std::vector<T>& data, const std::vector<std::int32_t>& shape) {
  const std::int64_t n = shape[0], c = shape[1], h = shape[2], w = shape[3];
  std::vector<T> out(data.size());
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x) out[static_cast<std::size_t>(((b * h + y) * w + x) * c + ch)] = data[static_cast<std::size_t>(((b * c + ch) * h + y) * w + x)];
  return out;
}

Quant from_ir(const ir::QuantParams& q) {
  // The IR's activations are uint8 (zero point 0..255); int8 with zero point - 128 is the same grid.
  return {q.scales.at(0), (q.zero_points.empty() ? 0 : q.zero_points[0]) - 128};
}

bool is_relu(const Node& n) { return n.op == OpKind::kRelu || (n.op == OpKind::kClip && n.attrs.min == 0.0F && std::isinf(n.attrs.max) && n.attrs.max > 0); }
bool is_relu6(const Node& n) { return n.op == OpKind::kClip && n.attrs.min == 0.0F && n.attrs.max == 6.0F; }

class Writer {
 public:
  Writer(const ir::Graph& g, const TfliteExportOptions& o) : g_(g), o_(o), int8_(o.kind == TfliteKind::kFullInt8) {
    consumers_ = ir::consumer_counts(g_);
    buffers_.push_back(tfl::CreateBuffer(fb_));  // buffer 0: the empty sentinel
  }

  TfliteExport run() {
    if (g_.inputs.size() != 1) fail(ErrorCode::kUnsupportedOp, "TFLite export takes models with one input, this one has " + std::to_string(g_.inputs.size()));
    if (int8_) assign_quant();
    std::vector<std::int32_t> inputs;
    for (int id : g_.inputs) inputs.push_back(add_input(id));
    for (std::size_t k = 0; k < g_.nodes.size(); ++k) {
      if (!skipped_.count(k)) node(g_.nodes[k]);
    }
    std::vector<std::int32_t> outputs;
    for (int id : g_.outputs) outputs.push_back(add_output(id));
    std::vector<flatbuffers::Offset<tfl::SubGraph>> subgraphs{
        tfl::CreateSubGraph(fb_, fb_.CreateVector(tensors_), fb_.CreateVector(inputs), fb_.CreateVector(outputs), fb_.CreateVector(operators_),
                            fb_.CreateString(g_.name))};
    auto model = tfl::CreateModel(fb_, kSchemaVersion, fb_.CreateVector(opcodes_), fb_.CreateVector(subgraphs),
                                  fb_.CreateString("EdgeOpt " + std::string(tflite_kind_name(o_.kind)) + " export of " + g_.name), fb_.CreateVector(buffers_));
    tfl::FinishModelBuffer(fb_, model);
    TfliteExport out;
    out.bytes.assign(reinterpret_cast<const char*>(fb_.GetBufferPointer()), fb_.GetSize());
    out.ops.assign(op_names_.begin(), op_names_.end());
    out.notes = notes_;
    if (transposes_to_nchw_ > 0) {
      out.notes.push_back(std::to_string(transposes_to_nchw_) + " TRANSPOSE op(s) back to NCHW order before a flatten/reshape, so the flattened elements keep the IR's order");
    }
    return out;
  }

 private:
  // ---- tensors and buffers ----

  int buffer(const void* data, std::size_t bytes) {
    std::vector<std::uint8_t> v(static_cast<const std::uint8_t*>(data), static_cast<const std::uint8_t*>(data) + bytes);
    buffers_.push_back(tfl::CreateBufferDirect(fb_, &v));
    return static_cast<int>(buffers_.size() - 1);
  }

  int tensor(const std::string& name, const std::vector<std::int32_t>& shape, tfl::TensorType type, int buffer_index = 0,
             const std::vector<float>& scales = {}, const std::vector<std::int64_t>& zeros = {}, int quant_dim = 0) {
    flatbuffers::Offset<tfl::QuantizationParameters> q = 0;
    if (!scales.empty()) q = tfl::CreateQuantizationParametersDirect(fb_, nullptr, nullptr, &scales, &zeros, tfl::QuantizationDetails_NONE, 0, quant_dim);
    tensors_.push_back(tfl::CreateTensorDirect(fb_, &shape, type, static_cast<std::uint32_t>(buffer_index), unique(name).c_str(), q));
    return static_cast<int>(tensors_.size() - 1);
  }

  std::string unique(const std::string& name) {
    std::string out = name;
    for (int k = 1; !names_.insert(out).second; ++k) out = name + "_" + std::to_string(k);
    return out;
  }

  int float_constant(const std::string& name, const std::vector<std::int32_t>& shape, const std::vector<float>& data) {
    if (o_.kind == TfliteKind::kFp16Weights && data.size() > 1) {
      std::vector<std::uint16_t> half(data.size());
      for (std::size_t i = 0; i < data.size(); ++i) half[i] = f32_to_f16(data[i]);
      const int h = tensor(name + "_fp16", shape, tfl::TensorType_FLOAT16, buffer(half.data(), half.size() * 2));
      const int f = tensor(name, shape, tfl::TensorType_FLOAT32);
      op(tfl::BuiltinOperator_DEQUANTIZE, {h}, {f});
      return f;
    }
    return tensor(name, shape, tfl::TensorType_FLOAT32, buffer(data.data(), data.size() * 4));
  }

  int int32_constant(const std::string& name, const std::vector<std::int32_t>& data) {
    return tensor(name, {static_cast<std::int32_t>(data.size())}, tfl::TensorType_INT32, buffer(data.data(), data.size() * 4));
  }

  // A run-time constant operand (an Add's bias, a Mul's scale) in the form its partner has, and
  // in int8 for a full-integer file (its own per-tensor range).
  int operand_constant(const ir::Value& v, std::size_t out_rank, Form form) {
    std::vector<std::int32_t> shape = concrete(v.shape);
    std::vector<float> data = v.f32;
    if (!shape.empty() && out_rank == 4 && form == Form::kNhwc) {
      while (shape.size() < 4) shape.insert(shape.begin(), 1);
      data = to_nhwc(data, shape);
      shape = physical(shape, Form::kNhwc);
    }
    if (!int8_) return float_constant(v.name, shape, data);
    const auto [lo, hi] = std::minmax_element(data.begin(), data.end());
    const Quant q = range_quant(std::min(0.0F, *lo), std::max(0.0F, *hi));
    return int8_tensor_constant(v.name, shape, data, q);
  }

  int int8_tensor_constant(const std::string& name, const std::vector<std::int32_t>& shape, const std::vector<float>& data, const Quant& q) {
    std::vector<std::int8_t> codes(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) codes[i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(data[i] / q.scale) + q.zero, -128.0F, 127.0F));
    return tensor(name, shape, tfl::TensorType_INT8, buffer(codes.data(), codes.size()), {q.scale}, {q.zero});
  }

  static Quant range_quant(float lo, float hi) {
    const float scale = std::max(hi - lo, 1e-8F) / 255.0F;
    return {scale, static_cast<std::int32_t>(std::clamp(std::nearbyint(-128.0F - lo / scale), -128.0F, 127.0F))};
  }

  // A run-time tensor for IR value `id` in `form`, with the value's int8 parameters when int8.
  int define(int id, Form form, const std::string& suffix = {}) {
    const ir::Value& v = g_.value(id);
    if (v.shape.size() != 4) form = Form::kSame;
    const std::vector<std::int32_t> shape = physical(concrete(v.shape), form);
    int t = -1;
    if (int8_) {
      const Quant q = quant_of(id);
      t = tensor(v.name + suffix, shape, tfl::TensorType_INT8, 0, {q.scale}, {q.zero});
    } else {
      t = tensor(v.name + suffix, shape, tfl::TensorType_FLOAT32);
    }
    forms_[{id, form}] = t;
    return t;
  }

  // The tensor of value `id` in `form`, transposing an existing one when needed.
  int get(int id, Form form) {
    const ir::Value& v = g_.value(id);
    if (v.is_constant) fail(ErrorCode::kUnsupportedOp, "constant '" + v.name + "' is used where TFLite needs a run-time tensor", "open an issue naming the model");
    if (v.shape.size() != 4) form = Form::kSame;
    if (auto it = forms_.find({id, form}); it != forms_.end()) return it->second;
    const Form other = form == Form::kSame ? Form::kNhwc : Form::kSame;
    auto it = forms_.find({id, other});
    if (it == forms_.end()) fail(ErrorCode::kInternal, "value '" + v.name + "' was used before it was computed");
    const int from = it->second;
    const auto& perm = form == Form::kNhwc ? kToNhwc : kFromNhwc;
    const int to = define(id, form, form == Form::kNhwc ? "_nhwc" : "_nchw");
    op(tfl::BuiltinOperator_TRANSPOSE, {from, int32_constant(v.name + "_perm", {perm.begin(), perm.end()})}, {to});
    if (form == Form::kSame) ++transposes_to_nchw_;
    return to;
  }

  // A tensor whose elements are in the IR's order (for Reshape and Flatten): an NHWC image whose
  // height and width are 1 already is.
  int in_ir_order(int id) {
    const ir::Value& v = g_.value(id);
    if (v.shape.size() == 4 && v.shape[2] == 1 && v.shape[3] == 1) {
      if (auto it = forms_.find({id, Form::kNhwc}); it != forms_.end()) return it->second;
    }
    return get(id, Form::kSame);
  }

  // ---- operators ----

  int opcode(tfl::BuiltinOperator code) {
    auto [it, fresh] = opcode_index_.emplace(static_cast<int>(code), static_cast<int>(opcodes_.size()));
    if (fresh) {
      const auto legacy = static_cast<std::int8_t>(std::min<int>(static_cast<int>(code), 127));
      opcodes_.push_back(tfl::CreateOperatorCode(fb_, legacy, 0, 1, code));
      op_names_.insert(tfl::EnumNameBuiltinOperator(code));
    }
    return it->second;
  }

  void op(tfl::BuiltinOperator code, const std::vector<std::int32_t>& inputs, const std::vector<std::int32_t>& outputs,
          tfl::BuiltinOptions options_type = tfl::BuiltinOptions_NONE, flatbuffers::Offset<void> options = 0) {
    const int index = opcode(code);
    operators_.push_back(tfl::CreateOperator(fb_, static_cast<std::uint32_t>(index), fb_.CreateVector(inputs), fb_.CreateVector(outputs), options_type, options));
  }

  // ---- int8 parameters (full-integer files) ----

  Quant quant_of(int id) const {
    const auto& q = quant_[static_cast<std::size_t>(id)];
    if (!q) {
      const ir::Value& v = g_.value(id);
      fail(ErrorCode::kInvalidArgument, "value '" + v.name + "' has no int8 range, which a full-integer TFLite file needs",
           "export an int8 variant (ptq_int8, qat_int8, hybrid), and give ranges for values it keeps in float (TfliteExportOptions::extra_quant)");
    }
    return *q;
  }

  // Every run-time value's parameters: its own (calibrated), the given extra ones, an input's for
  // ops that keep the grid (pooling, reshapes, ReLU), or the fixed ones TFLite's int8 kernels
  // require (softmax, logistic, tanh).
  void assign_quant() {
    quant_.assign(g_.values.size(), std::nullopt);
    auto own = [&](int id) -> std::optional<Quant> {
      const ir::Value& v = g_.value(id);
      if (auto it = o_.extra_quant.find(v.name); it != o_.extra_quant.end()) return from_ir(it->second);
      if (v.quant && v.quant->scales.size() == 1) return from_ir(*v.quant);
      return std::nullopt;
    };
    for (int id : g_.inputs) quant_[static_cast<std::size_t>(id)] = own(id);
    for (const Node& n : g_.nodes) {
      const int out = n.outputs[0];
      std::optional<Quant> q = own(out);
      const auto input_quant = [&]() { return n.inputs.empty() || n.inputs[0] < 0 ? std::nullopt : quant_[static_cast<std::size_t>(n.inputs[0])]; };
      switch (n.op) {
        case OpKind::kSoftmax: q = Quant{1.0F / 256.0F, -128}; break;
        case OpKind::kLogSoftmax: q = Quant{16.0F / 256.0F, 127}; break;
        case OpKind::kSigmoid: q = Quant{1.0F / 256.0F, -128}; break;
        case OpKind::kTanh: q = Quant{1.0F / 128.0F, 0}; break;
        case OpKind::kMaxPool:
        case OpKind::kAvgPool:
        case OpKind::kGlobalAvgPool:
        case OpKind::kFlatten:
        case OpKind::kReshape:
        case OpKind::kSqueeze:
        case OpKind::kUnsqueeze:
        case OpKind::kTranspose:
        case OpKind::kIdentity:
        case OpKind::kSlice:
        case OpKind::kPad:
          // TFLite's int8 pooling, reshapes and padding keep the input's grid.
          q = input_quant();
          break;
        case OpKind::kRelu:
        case OpKind::kClip:
          if (!q) q = input_quant();
          break;
        default: break;
      }
      quant_[static_cast<std::size_t>(out)] = q;
    }
    // A fused ReLU's output carries the range of the layer before it when that layer has none.
    for (const Node& n : g_.nodes) {
      if ((is_relu(n) || is_relu6(n)) && n.inputs[0] >= 0 && !quant_[static_cast<std::size_t>(n.inputs[0])]) {
        quant_[static_cast<std::size_t>(n.inputs[0])] = quant_[static_cast<std::size_t>(n.outputs[0])];
      }
    }
  }

  // ---- graph ends ----

  int add_input(int id) {
    const ir::Value& v = g_.value(id);
    // A 4-D NCHW input becomes NHWC (TFLite's image layout); an NHWC source model stays as it is.
    const Form form = v.shape.size() == 4 && v.layout != ir::Layout::kNHWC ? Form::kNhwc : Form::kSame;
    if (!int8_ || o_.int8_io) return define(id, form);
    const int f = tensor(v.name, physical(concrete(v.shape), form), tfl::TensorType_FLOAT32);
    const int q = define(id, form, "_int8");
    op(tfl::BuiltinOperator_QUANTIZE, {f}, {q});
    return f;
  }

  int add_output(int id) {
    const int t = get(id, Form::kSame);
    if (!int8_ || o_.int8_io || float_outputs_.count(id)) return t;
    const ir::Value& v = g_.value(id);
    const int f = tensor(v.name + "_float", physical(concrete(v.shape), Form::kSame), tfl::TensorType_FLOAT32);
    op(tfl::BuiltinOperator_DEQUANTIZE, {t}, {f});
    return f;
  }

  // ---- nodes ----

  // The ReLU (or ReLU6) that is the only reader of `n`'s output, fused into `n`.
  tfl::ActivationFunctionType fuse_activation(const Node& n, int& result) {
    result = n.outputs[0];
    if (consumers_[static_cast<std::size_t>(n.outputs[0])] != 1) return tfl::ActivationFunctionType_NONE;
    if (std::find(g_.outputs.begin(), g_.outputs.end(), n.outputs[0]) != g_.outputs.end()) return tfl::ActivationFunctionType_NONE;
    for (std::size_t k = 0; k < g_.nodes.size(); ++k) {
      const Node& next = g_.nodes[k];
      if (next.inputs.empty() || next.inputs[0] != n.outputs[0]) continue;
      if (!is_relu(next) && !is_relu6(next)) return tfl::ActivationFunctionType_NONE;
      skipped_.insert(k);
      result = next.outputs[0];
      return is_relu(next) ? tfl::ActivationFunctionType_RELU : tfl::ActivationFunctionType_RELU6;
    }
    return tfl::ActivationFunctionType_NONE;
  }

  // The window's padding as TFLite's SAME/VALID, or explicit pads for a PAD op in front.
  struct Window {
    tfl::Padding padding = tfl::Padding_VALID;
    std::array<std::int32_t, 4> explicit_pads{};  // top, left, bottom, right; all 0 when none
  };

  static Window window(const std::vector<std::int64_t>& pads, std::int64_t in_h, std::int64_t in_w, std::int64_t kh, std::int64_t kw,
                       std::int64_t sh, std::int64_t sw, std::int64_t dh, std::int64_t dw) {
    Window w;
    std::array<std::int64_t, 4> p{};
    for (std::size_t i = 0; i < 4 && i < pads.size(); ++i) p[i] = pads[i];
    if (p == std::array<std::int64_t, 4>{}) return w;
    auto same = [](std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t d) {
      const std::int64_t out = (in + s - 1) / s;
      const std::int64_t total = std::max<std::int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
      return std::pair<std::int64_t, std::int64_t>{total / 2, total - total / 2};
    };
    const auto [t, b] = same(in_h, kh, sh, dh);
    const auto [l, r] = same(in_w, kw, sw, dw);
    if (p == std::array<std::int64_t, 4>{t, l, b, r}) {
      w.padding = tfl::Padding_SAME;
      return w;
    }
    for (std::size_t i = 0; i < 4; ++i) w.explicit_pads[i] = static_cast<std::int32_t>(p[i]);
    return w;
  }

  // Pads an NHWC tensor explicitly (zeros, or the lowest value for max pooling).
  int pad_nhwc(int id, int t, const std::array<std::int32_t, 4>& p, bool lowest) {
    const ir::Value& v = g_.value(id);
    std::vector<std::int32_t> shape = physical(concrete(v.shape), Form::kNhwc);
    shape[1] += p[0] + p[2];
    shape[2] += p[1] + p[3];
    const std::vector<std::int32_t> paddings{0, 0, p[0], p[2], p[1], p[3], 0, 0};
    const int pads = tensor(v.name + "_paddings", {4, 2}, tfl::TensorType_INT32, buffer(paddings.data(), paddings.size() * 4));
    int out = -1;
    if (int8_) {
      const Quant q = quant_of(id);
      out = tensor(v.name + "_padded", shape, tfl::TensorType_INT8, 0, {q.scale}, {q.zero});
      if (lowest) {
        const std::int8_t low = -128;
        const int value = tensor(v.name + "_pad_value", {}, tfl::TensorType_INT8, buffer(&low, 1), {q.scale}, {q.zero});
        op(tfl::BuiltinOperator_PADV2, {t, pads, value}, {out}, tfl::BuiltinOptions_PadV2Options, tfl::CreatePadV2Options(fb_).Union());
        return out;
      }
    } else {
      out = tensor(v.name + "_padded", shape, tfl::TensorType_FLOAT32);
      if (lowest) {
        const float low = std::numeric_limits<float>::lowest();
        const int value = tensor(v.name + "_pad_value", {}, tfl::TensorType_FLOAT32, buffer(&low, 4));
        op(tfl::BuiltinOperator_PADV2, {t, pads, value}, {out}, tfl::BuiltinOptions_PadV2Options, tfl::CreatePadV2Options(fb_).Union());
        return out;
      }
    }
    op(tfl::BuiltinOperator_PAD, {t, pads}, {out}, tfl::BuiltinOptions_PadOptions, tfl::CreatePadOptions(fb_).Union());
    return out;
  }

  // Weights as the file kind stores them: float (or float16 + DEQUANTIZE), or int8 codes with
  // per-channel scales along `quant_dim` of the TFLite layout. `reorder` maps the IR-ordered
  // elements to that layout.
  template <class Reorder>
  int weights(const ir::Value& w, const std::vector<std::int32_t>& shape, int quant_dim, Reorder reorder, std::vector<float>* scales_out) {
    if (o_.kind == TfliteKind::kFp32 || o_.kind == TfliteKind::kFp16Weights) return float_constant(w.name, shape, reorder(w.f32));
    auto encoded = encode_constant(w, Encoding::int8_per_channel(0));
    if (!encoded) throw Failure{encoded.error()};
    auto codes = unpack_codes(encoded.value());
    if (!codes) throw Failure{codes.error()};
    const std::vector<std::int8_t> ordered = reorder(codes.value());
    std::vector<float> scales = encoded->quant.scales;
    if (scales_out) *scales_out = scales;
    const std::vector<std::int64_t> zeros(scales.size(), 0);
    return tensor(w.name, shape, tfl::TensorType_INT8, buffer(ordered.data(), ordered.size()), scales, zeros, quant_dim);
  }

  int bias(const Node& n, std::int64_t channels, int input, const std::vector<float>& weight_scales) {
    std::vector<float> b(static_cast<std::size_t>(channels), 0.0F);
    std::string name = n.name + "_bias";
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const ir::Value& v = g_.value(n.inputs[2]);
      if (!v.is_constant || v.f32.size() != b.size()) cannot_export(n, "its bias is not a constant vector");
      b = v.f32;
      name = v.name;
    }
    if (!int8_) return float_constant(name, {static_cast<std::int32_t>(channels)}, b);
    const float in_scale = quant_of(input).scale;
    std::vector<std::int32_t> q(b.size());
    std::vector<float> scales(b.size());
    for (std::size_t c = 0; c < b.size(); ++c) {
      scales[c] = in_scale * weight_scales[c];
      q[c] = static_cast<std::int32_t>(std::clamp<double>(std::nearbyint(b[c] / scales[c]), INT32_MIN, INT32_MAX));
    }
    return tensor(name, {static_cast<std::int32_t>(channels)}, tfl::TensorType_INT32, buffer(q.data(), q.size() * 4), scales,
                  std::vector<std::int64_t>(scales.size(), 0), 0);
  }

  void conv(const Node& n) {
    const ir::Value& x = g_.value(n.inputs[0]);
    const ir::Value& w = g_.value(n.inputs[1]);
    if (!w.is_constant || w.shape.size() != 4 || x.shape.size() != 4) cannot_export(n, "only 2-D convolutions with constant weights are exported");
    const auto a = n.attrs;
    const std::int64_t cout = w.shape[0], cin_g = w.shape[1], kh = w.shape[2], kw = w.shape[3];
    const std::int64_t cin = x.shape[1];
    auto at = [](const std::vector<std::int64_t>& v, std::size_t i, std::int64_t d) { return i < v.size() ? v[i] : d; };
    const std::int64_t sh = at(a.strides, 0, 1), sw = at(a.strides, 1, 1), dh = at(a.dilations, 0, 1), dw = at(a.dilations, 1, 1);
    const bool depthwise = a.group > 1 && a.group == cin && cin_g == 1;
    if (a.group != 1 && !depthwise) cannot_export(n, "grouped convolution (groups=" + std::to_string(a.group) + ") has no TFLite op");
    int in = get(n.inputs[0], Form::kNhwc);
    const Window win = window(a.pads, x.shape[2], x.shape[3], kh, kw, sh, sw, dh, dw);
    if (win.explicit_pads != std::array<std::int32_t, 4>{}) in = pad_nhwc(n.inputs[0], in, win.explicit_pads, false);
    std::vector<float> scales;
    int filter = -1;
    if (depthwise) {
      filter = weights(w, {1, static_cast<std::int32_t>(kh), static_cast<std::int32_t>(kw), static_cast<std::int32_t>(cout)}, 3,
                       [&](const auto& src) {
                         std::remove_cv_t<std::remove_reference_t<decltype(src)>> dst(src.size());
                         for (std::int64_t o = 0; o < cout; ++o)
                           for (std::int64_t i = 0; i < kh * kw; ++i) dst[static_cast<std::size_t>(i * cout + o)] = src[static_cast<std::size_t>(o * kh * kw + i)];
                         return dst;
                       }, &scales);
    } else {
      filter = weights(w, {static_cast<std::int32_t>(cout), static_cast<std::int32_t>(kh), static_cast<std::int32_t>(kw), static_cast<std::int32_t>(cin_g)}, 0,
                       [&](const auto& src) { return to_nhwc(src, {static_cast<std::int32_t>(cout), static_cast<std::int32_t>(cin_g), static_cast<std::int32_t>(kh), static_cast<std::int32_t>(kw)}); },
                       &scales);
    }
    const int b = bias(n, cout, n.inputs[0], scales);
    int result = -1;
    const auto act = fuse_activation(n, result);
    const int out = define(result, Form::kNhwc);
    if (depthwise) {
      op(tfl::BuiltinOperator_DEPTHWISE_CONV_2D, {in, filter, b}, {out}, tfl::BuiltinOptions_DepthwiseConv2DOptions,
         tfl::CreateDepthwiseConv2DOptions(fb_, win.padding, static_cast<std::int32_t>(sw), static_cast<std::int32_t>(sh), static_cast<std::int32_t>(cout / cin), act,
                                           static_cast<std::int32_t>(dw), static_cast<std::int32_t>(dh)).Union());
    } else {
      op(tfl::BuiltinOperator_CONV_2D, {in, filter, b}, {out}, tfl::BuiltinOptions_Conv2DOptions,
         tfl::CreateConv2DOptions(fb_, win.padding, static_cast<std::int32_t>(sw), static_cast<std::int32_t>(sh), act, static_cast<std::int32_t>(dw), static_cast<std::int32_t>(dh)).Union());
    }
  }

  void fully_connected(const Node& n, const ir::Value& w, const std::vector<float>* transposed) {
    const ir::Value& x = g_.value(n.inputs[0]);
    if (x.shape.size() != 2) cannot_export(n, "its input is not 2-D");
    const std::int64_t m = transposed ? w.shape[1] : w.shape[0];
    const std::int64_t k = transposed ? w.shape[0] : w.shape[1];
    const int in = get(n.inputs[0], Form::kSame);
    std::vector<float> scales;
    int filter = -1;
    if (transposed) {
      ir::Value t = w;
      t.shape = {m, k};
      t.f32 = *transposed;
      t.quant.reset();
      filter = weights(t, {static_cast<std::int32_t>(m), static_cast<std::int32_t>(k)}, 0, [](const auto& v) { return v; }, &scales);
    } else {
      filter = weights(w, {static_cast<std::int32_t>(m), static_cast<std::int32_t>(k)}, 0, [](const auto& v) { return v; }, &scales);
    }
    const int b = bias(n, m, n.inputs[0], scales);
    int result = -1;
    const auto act = fuse_activation(n, result);
    const int out = define(result, Form::kSame);
    op(tfl::BuiltinOperator_FULLY_CONNECTED, {in, filter, b}, {out}, tfl::BuiltinOptions_FullyConnectedOptions,
       tfl::CreateFullyConnectedOptions(fb_, act).Union());
  }

  void binary(const Node& n) {
    const int out_id = n.outputs[0];
    const std::size_t rank = g_.value(out_id).shape.size();
    const Form form = rank == 4 ? Form::kNhwc : Form::kSame;
    std::vector<std::int32_t> in;
    OpKind kind = n.op;
    for (int i : n.inputs) {
      const ir::Value& v = g_.value(i);
      if (!v.is_constant) {
        in.push_back(get(i, form));
        continue;
      }
      if (v.dtype != ir::DType::kF32) cannot_export(n, "its constant operand is not float");
      if (kind == OpKind::kDiv && i == n.inputs[1]) {  // x / c = x * (1/c): TFLite has no int8 DIV
        ir::Value r = v;
        for (float& f : r.f32) f = 1.0F / f;
        kind = OpKind::kMul;
        in.push_back(operand_constant(r, rank, form));
        continue;
      }
      in.push_back(operand_constant(v, rank, form));
    }
    int result = out_id;
    auto act = tfl::ActivationFunctionType_NONE;
    if (kind == OpKind::kAdd || kind == OpKind::kSub || kind == OpKind::kMul) act = fuse_activation(n, result);
    const int out = define(result, form);
    switch (kind) {
      case OpKind::kAdd: op(tfl::BuiltinOperator_ADD, in, {out}, tfl::BuiltinOptions_AddOptions, tfl::CreateAddOptions(fb_, act).Union()); return;
      case OpKind::kSub: op(tfl::BuiltinOperator_SUB, in, {out}, tfl::BuiltinOptions_SubOptions, tfl::CreateSubOptions(fb_, act).Union()); return;
      case OpKind::kMul: op(tfl::BuiltinOperator_MUL, in, {out}, tfl::BuiltinOptions_MulOptions, tfl::CreateMulOptions(fb_, act).Union()); return;
      default:
        if (int8_) cannot_export(n, "TFLite has no int8 division of two run-time tensors");
        op(tfl::BuiltinOperator_DIV, in, {out}, tfl::BuiltinOptions_DivOptions, tfl::CreateDivOptions(fb_, act).Union());
        return;
    }
  }

  // Element-wise ops keep the form of their input.
  Form form_of(int id) const {
    if (g_.value(id).shape.size() == 4 && forms_.count({id, Form::kNhwc})) return Form::kNhwc;
    return Form::kSame;
  }

  void unary(const Node& n, tfl::BuiltinOperator code, tfl::BuiltinOptions type = tfl::BuiltinOptions_NONE, flatbuffers::Offset<void> options = 0) {
    const Form form = form_of(n.inputs[0]);
    const int in = get(n.inputs[0], form);
    op(code, {in}, {define(n.outputs[0], form)}, type, options);
  }

  void clip(const Node& n) {
    if (is_relu(n)) return unary(n, tfl::BuiltinOperator_RELU);
    if (is_relu6(n)) return unary(n, tfl::BuiltinOperator_RELU6);
    const Form form = form_of(n.inputs[0]);
    int t = get(n.inputs[0], form);
    const ir::Value& v = g_.value(n.outputs[0]);
    auto bound = [&](float value, tfl::BuiltinOperator code, const std::string& suffix, bool last) {
      int c = -1;
      if (int8_) {
        const Quant q = quant_of(n.inputs[0]);
        c = int8_tensor_constant(v.name + suffix, {}, {value}, q);
      } else {
        c = tensor(v.name + suffix, {}, tfl::TensorType_FLOAT32, buffer(&value, 4));
      }
      const int out = last ? define(n.outputs[0], form) : define(n.outputs[0], form, suffix + "_out");
      op(code, {t, c}, {out}, tfl::BuiltinOptions_MaximumMinimumOptions, tfl::CreateMaximumMinimumOptions(fb_).Union());
      t = out;
    };
    const bool has_min = !std::isinf(n.attrs.min), has_max = !std::isinf(n.attrs.max);
    if (!has_min && !has_max) return unary(n, tfl::BuiltinOperator_RELU);  // unreachable for a verified Clip with bounds; kept total
    if (has_min) bound(n.attrs.min, tfl::BuiltinOperator_MAXIMUM, "_min", !has_max);
    if (has_max) bound(n.attrs.max, tfl::BuiltinOperator_MINIMUM, "_max", true);
  }

  void pool(const Node& n) {
    const ir::Value& x = g_.value(n.inputs[0]);
    const auto& a = n.attrs;
    if (a.kernel.size() != 2) cannot_export(n, "only 2-D pooling is exported");
    if (std::any_of(a.dilations.begin(), a.dilations.end(), [](std::int64_t d) { return d != 1; })) cannot_export(n, "TFLite pooling has no dilation");
    const bool is_max = n.op == OpKind::kMaxPool;
    const std::int64_t sh = a.strides.size() > 0 ? a.strides[0] : 1, sw = a.strides.size() > 1 ? a.strides[1] : 1;
    const ir::Value& y = g_.value(n.outputs[0]);
    const std::int64_t pt = a.pads.size() == 4 ? a.pads[0] : 0, pl = a.pads.size() == 4 ? a.pads[1] : 0;
    std::vector<std::int64_t> pads = a.pads;
    if (pads.size() == 4) {
      // Only the padding a window actually reaches matters (ceil_mode may add some at the end).
      pads[2] = std::max<std::int64_t>(0, (y.shape[2] - 1) * sh + a.kernel[0] - x.shape[2] - pt);
      pads[3] = std::max<std::int64_t>(0, (y.shape[3] - 1) * sw + a.kernel[1] - x.shape[3] - pl);
    } else if (a.ceil_mode) {
      pads = {0, 0, std::max<std::int64_t>(0, (y.shape[2] - 1) * sh + a.kernel[0] - x.shape[2]), std::max<std::int64_t>(0, (y.shape[3] - 1) * sw + a.kernel[1] - x.shape[3])};
    }
    int in = get(n.inputs[0], Form::kNhwc);
    Window win = window(pads, x.shape[2], x.shape[3], a.kernel[0], a.kernel[1], sh, sw, 1, 1);
    if (win.explicit_pads != std::array<std::int32_t, 4>{}) {
      if (!is_max && !a.count_include_pad) cannot_export(n, "TFLite's average pool excludes padding only for SAME padding, and these pads are not SAME");
      in = pad_nhwc(n.inputs[0], in, win.explicit_pads, is_max);
    } else if (!is_max && win.padding == tfl::Padding_SAME && a.count_include_pad) {
      cannot_export(n, "TFLite's SAME average pool excludes the padding, this one counts it");
    }
    const int out = define(n.outputs[0], Form::kNhwc);
    op(is_max ? tfl::BuiltinOperator_MAX_POOL_2D : tfl::BuiltinOperator_AVERAGE_POOL_2D, {in}, {out}, tfl::BuiltinOptions_Pool2DOptions,
       tfl::CreatePool2DOptions(fb_, win.padding, static_cast<std::int32_t>(sw), static_cast<std::int32_t>(sh), static_cast<std::int32_t>(a.kernel[1]),
                                static_cast<std::int32_t>(a.kernel[0]))
           .Union());
  }

  void reshape_to(const Node& n, int source) {
    const std::vector<std::int32_t> shape = concrete(g_.value(n.outputs[0]).shape);
    const int target = int32_constant(n.name + "_shape", shape);
    op(tfl::BuiltinOperator_RESHAPE, {source, target}, {define(n.outputs[0], Form::kSame)}, tfl::BuiltinOptions_ReshapeOptions,
       tfl::CreateReshapeOptionsDirect(fb_, &shape).Union());
  }

  void transpose(const Node& n) {
    const int id = n.inputs[0];
    const std::size_t rank = g_.value(id).shape.size();
    if (n.attrs.perm.size() != rank) cannot_export(n, "its permutation does not match the input's rank");
    const Form in_form = form_of(id);
    const Form out_form = rank == 4 ? Form::kNhwc : Form::kSame;
    // physical_out[j] = logical_out[P_out[j]] = logical_in[perm[P_out[j]]] = physical_in[P_in^-1[...]]
    std::vector<std::int32_t> q(rank);
    for (std::size_t j = 0; j < rank; ++j) {
      const auto lo = out_form == Form::kNhwc ? static_cast<std::size_t>(kToNhwc[j]) : j;
      const auto li = static_cast<std::size_t>(n.attrs.perm[lo]);
      q[j] = in_form == Form::kNhwc ? kFromNhwc[li] : static_cast<std::int32_t>(li);
    }
    const int in = get(id, in_form);
    bool identity = true;
    for (std::size_t j = 0; j < rank; ++j) identity = identity && q[j] == static_cast<std::int32_t>(j);
    if (identity) {
      forms_[{n.outputs[0], out_form}] = in;  // an NHWC model's own transpose to NCHW is free here
      return;
    }
    op(tfl::BuiltinOperator_TRANSPOSE, {in, int32_constant(n.name + "_perm", q)}, {define(n.outputs[0], out_form)});
  }

  void node(const Node& n) {
    const ir::Attrs& a = n.attrs;
    switch (n.op) {
      case OpKind::kConv: conv(n); return;
      case OpKind::kGemm: {
        const ir::Value& w = g_.value(n.inputs[1]);
        if (!w.is_constant || w.shape.size() != 2) cannot_export(n, "its weight is not a constant matrix");
        fully_connected(n, w, nullptr);
        return;
      }
      case OpKind::kMatMul: {
        const ir::Value& w = g_.value(n.inputs[1]);
        if (!w.is_constant || w.shape.size() != 2) cannot_export(n, "a product of two run-time tensors is not exported");
        std::vector<float> t(w.f32.size());
        for (std::int64_t i = 0; i < w.shape[0]; ++i)
          for (std::int64_t j = 0; j < w.shape[1]; ++j) t[static_cast<std::size_t>(j * w.shape[0] + i)] = w.f32[static_cast<std::size_t>(i * w.shape[1] + j)];
        fully_connected(n, w, &t);
        return;
      }
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul:
      case OpKind::kDiv: binary(n); return;
      case OpKind::kRelu: unary(n, tfl::BuiltinOperator_RELU); return;
      case OpKind::kClip: clip(n); return;
      case OpKind::kLeakyRelu: unary(n, tfl::BuiltinOperator_LEAKY_RELU, tfl::BuiltinOptions_LeakyReluOptions, tfl::CreateLeakyReluOptions(fb_, a.alpha).Union()); return;
      case OpKind::kSigmoid: unary(n, tfl::BuiltinOperator_LOGISTIC); return;
      case OpKind::kTanh: unary(n, tfl::BuiltinOperator_TANH); return;
      case OpKind::kHardSwish: unary(n, tfl::BuiltinOperator_HARD_SWISH); return;
      case OpKind::kSoftmax:
      case OpKind::kLogSoftmax: {
        const ir::Value& x = g_.value(n.inputs[0]);
        const bool is_output = std::find(g_.outputs.begin(), g_.outputs.end(), n.outputs[0]) != g_.outputs.end();
        if (int8_ && !o_.int8_io && is_output && n.op == OpKind::kLogSoftmax && x.shape.size() == 2) {
          // TFLite's int8 log-softmax has a fixed range that floors at -16; with float output the
          // last op runs in float on the dequantized logits (the Edge TPU maps no LogSoftmax anyway).
          const int in = get(n.inputs[0], Form::kSame);
          const std::vector<std::int32_t> shape = concrete(x.shape);
          const int logits = tensor(x.name + "_float", shape, tfl::TensorType_FLOAT32);
          op(tfl::BuiltinOperator_DEQUANTIZE, {in}, {logits});
          const int out = tensor(g_.value(n.outputs[0]).name, shape, tfl::TensorType_FLOAT32);
          op(tfl::BuiltinOperator_LOG_SOFTMAX, {logits}, {out}, tfl::BuiltinOptions_LogSoftmaxOptions, tfl::CreateLogSoftmaxOptions(fb_).Union());
          forms_[{n.outputs[0], Form::kSame}] = out;
          float_outputs_.insert(n.outputs[0]);
          notes_.push_back("the final LogSoftmax runs in float on the dequantized logits (TFLite's int8 log-softmax floors at -16)");
          return;
        }
        const Form form = form_of(n.inputs[0]);
        const auto last = static_cast<std::int64_t>(x.shape.size()) - 1;
        const std::int64_t physical_axis = form == Form::kNhwc ? std::find(kToNhwc.begin(), kToNhwc.end(), a.axis) - kToNhwc.begin() : a.axis;
        if (physical_axis != last && !(a.axis < 0 && a.axis + last + 1 == last)) cannot_export(n, "TFLite normalises over the last axis only");
        if (n.op == OpKind::kSoftmax) unary(n, tfl::BuiltinOperator_SOFTMAX, tfl::BuiltinOptions_SoftmaxOptions, tfl::CreateSoftmaxOptions(fb_, 1.0F).Union());
        else unary(n, tfl::BuiltinOperator_LOG_SOFTMAX, tfl::BuiltinOptions_LogSoftmaxOptions, tfl::CreateLogSoftmaxOptions(fb_).Union());
        return;
      }
      case OpKind::kBatchNorm: {
        if (int8_) cannot_export(n, "a BatchNorm left unfolded has no int8 range for its intermediate product");
        const ir::Value& x = g_.value(n.inputs[0]);
        std::vector<const ir::Value*> p;
        for (std::size_t i = 1; i < 5; ++i) p.push_back(&g_.value(n.inputs[i]));
        for (const ir::Value* v : p) {
          if (!v->is_constant || v->f32.size() != static_cast<std::size_t>(x.shape[1])) cannot_export(n, "its statistics are not constant vectors");
        }
        std::vector<float> scale(p[0]->f32.size()), shift(scale.size());
        for (std::size_t c = 0; c < scale.size(); ++c) {
          scale[c] = static_cast<float>(p[0]->f32[c] / std::sqrt(static_cast<double>(p[3]->f32[c]) + a.epsilon));
          shift[c] = p[1]->f32[c] - p[2]->f32[c] * scale[c];
        }
        const Form form = x.shape.size() == 4 ? Form::kNhwc : Form::kSame;
        if (x.shape.size() != 4 && x.shape.size() != 2) cannot_export(n, "only 2-D and 4-D inputs are exported");
        const int in = get(n.inputs[0], form);
        const auto c = static_cast<std::int32_t>(scale.size());
        const int mid = tensor(n.name + "_scaled", physical(concrete(x.shape), form), tfl::TensorType_FLOAT32);
        op(tfl::BuiltinOperator_MUL, {in, float_constant(n.name + "_scale", {c}, scale)}, {mid}, tfl::BuiltinOptions_MulOptions, tfl::CreateMulOptions(fb_).Union());
        int result = -1;
        const auto act = fuse_activation(n, result);
        op(tfl::BuiltinOperator_ADD, {mid, float_constant(n.name + "_shift", {c}, shift)}, {define(result, form)}, tfl::BuiltinOptions_AddOptions, tfl::CreateAddOptions(fb_, act).Union());
        return;
      }
      case OpKind::kMaxPool:
      case OpKind::kAvgPool: pool(n); return;
      case OpKind::kGlobalAvgPool: {
        const int in = get(n.inputs[0], Form::kNhwc);
        op(tfl::BuiltinOperator_MEAN, {in, int32_constant(n.name + "_axes", {1, 2})}, {define(n.outputs[0], Form::kNhwc)}, tfl::BuiltinOptions_ReducerOptions,
           tfl::CreateReducerOptions(fb_, true).Union());
        return;
      }
      case OpKind::kFlatten:
      case OpKind::kReshape:
      case OpKind::kSqueeze:
      case OpKind::kUnsqueeze: reshape_to(n, in_ir_order(n.inputs[0])); return;
      case OpKind::kTranspose: transpose(n); return;
      case OpKind::kIdentity: {
        for (Form f : {Form::kSame, Form::kNhwc}) {
          if (auto it = forms_.find({n.inputs[0], f}); it != forms_.end()) forms_[{n.outputs[0], f}] = it->second;
        }
        return;
      }
      case OpKind::kConcat: {
        const std::size_t rank = g_.value(n.outputs[0]).shape.size();
        const Form form = rank == 4 ? Form::kNhwc : Form::kSame;
        std::vector<std::int32_t> in;
        for (int i : n.inputs) in.push_back(get(i, form));
        std::int64_t axis = a.axis < 0 ? a.axis + static_cast<std::int64_t>(rank) : a.axis;
        if (form == Form::kNhwc) axis = std::find(kToNhwc.begin(), kToNhwc.end(), axis) - kToNhwc.begin();
        op(tfl::BuiltinOperator_CONCATENATION, in, {define(n.outputs[0], form)}, tfl::BuiltinOptions_ConcatenationOptions,
           tfl::CreateConcatenationOptions(fb_, static_cast<std::int32_t>(axis)).Union());
        return;
      }
      case OpKind::kPad: {
        const ir::Value& x = g_.value(n.inputs[0]);
        const std::size_t rank = x.shape.size();
        if (a.pads.size() != 2 * rank) cannot_export(n, "its pads do not match the input's rank");
        if (a.pad_mode == ir::PadMode::kEdge) cannot_export(n, "TFLite has no edge padding");
        const Form form = form_of(n.inputs[0]);
        std::vector<std::int32_t> paddings;
        for (std::size_t j = 0; j < rank; ++j) {
          const std::size_t l = form == Form::kNhwc ? static_cast<std::size_t>(kToNhwc[j]) : j;
          paddings.push_back(static_cast<std::int32_t>(a.pads[l]));
          paddings.push_back(static_cast<std::int32_t>(a.pads[l + rank]));
        }
        const int in = get(n.inputs[0], form);
        const int pads = tensor(n.name + "_paddings", {static_cast<std::int32_t>(rank), 2}, tfl::TensorType_INT32, buffer(paddings.data(), paddings.size() * 4));
        const int out = define(n.outputs[0], form);
        if (a.pad_mode == ir::PadMode::kReflect) {
          op(tfl::BuiltinOperator_MIRROR_PAD, {in, pads}, {out}, tfl::BuiltinOptions_MirrorPadOptions, tfl::CreateMirrorPadOptions(fb_, tfl::MirrorPadMode_REFLECT).Union());
        } else if (a.pad_value == 0.0F) {
          op(tfl::BuiltinOperator_PAD, {in, pads}, {out}, tfl::BuiltinOptions_PadOptions, tfl::CreatePadOptions(fb_).Union());
        } else {
          if (int8_) cannot_export(n, "an int8 pad with a value other than zero");
          const int value = tensor(n.name + "_value", {}, tfl::TensorType_FLOAT32, buffer(&a.pad_value, 4));
          op(tfl::BuiltinOperator_PADV2, {in, pads, value}, {out}, tfl::BuiltinOptions_PadV2Options, tfl::CreatePadV2Options(fb_).Union());
        }
        return;
      }
      case OpKind::kSlice: {
        const ir::Value& x = g_.value(n.inputs[0]);
        const std::size_t rank = x.shape.size();
        const std::vector<std::int32_t> dims = concrete(x.shape);
        std::vector<std::int32_t> begin(rank, 0), end(dims), strides(rank, 1);
        for (std::size_t k = 0; k < a.axes.size(); ++k) {
          const auto axis = static_cast<std::size_t>(a.axes[k] < 0 ? a.axes[k] + static_cast<std::int64_t>(rank) : a.axes[k]);
          const std::int64_t d = dims[axis];
          auto clampi = [&](std::int64_t v) { return static_cast<std::int32_t>(std::clamp<std::int64_t>(v < 0 ? v + d : v, 0, d)); };
          begin[axis] = clampi(a.starts[k]);
          end[axis] = clampi(a.ends[k]);
          strides[axis] = static_cast<std::int32_t>(k < a.steps.size() ? a.steps[k] : 1);
        }
        const int in = get(n.inputs[0], Form::kSame);
        op(tfl::BuiltinOperator_STRIDED_SLICE, {in, int32_constant(n.name + "_begin", begin), int32_constant(n.name + "_end", end), int32_constant(n.name + "_strides", strides)},
           {define(n.outputs[0], Form::kSame)}, tfl::BuiltinOptions_StridedSliceOptions, tfl::CreateStridedSliceOptions(fb_).Union());
        return;
      }
      case OpKind::kHardSigmoid: cannot_export(n, "HardSigmoid is not exported yet");
      case OpKind::kCount: break;
    }
    cannot_export(n, "no TFLite mapping");
  }

  const ir::Graph& g_;
  const TfliteExportOptions& o_;
  const bool int8_;
  flatbuffers::FlatBufferBuilder fb_{1 << 16};
  std::vector<flatbuffers::Offset<tfl::Tensor>> tensors_;
  std::vector<flatbuffers::Offset<tfl::Buffer>> buffers_;
  std::vector<flatbuffers::Offset<tfl::Operator>> operators_;
  std::vector<flatbuffers::Offset<tfl::OperatorCode>> opcodes_;
  std::map<int, int> opcode_index_;
  std::set<std::string> op_names_;
  std::set<std::string> names_;
  std::map<std::pair<int, Form>, int> forms_;  // (IR value, form) -> tensor index
  std::vector<std::optional<Quant>> quant_;
  std::vector<int> consumers_;
  std::set<std::size_t> skipped_;  // nodes fused into the one before
  std::set<int> float_outputs_;    // graph outputs a full-integer file computes in float
  std::vector<std::string> notes_;
  int transposes_to_nchw_ = 0;
};

}  // namespace

const char* tflite_kind_name(TfliteKind kind) {
  switch (kind) {
    case TfliteKind::kFp32: return "fp32";
    case TfliteKind::kFp16Weights: return "fp16";
    case TfliteKind::kDynamicInt8: return "dynamic_int8";
    case TfliteKind::kFullInt8: return "int8";
  }
  return "?";
}

Result<TfliteExport> export_tflite(const ir::Graph& graph, const TfliteExportOptions& options) {
  return capture([&]() -> TfliteExport { return Writer(graph, options).run(); });
}

Result<TfliteExport> export_tflite_file(const ir::Graph& graph, const std::string& path, const TfliteExportOptions& options) {
  auto out = export_tflite(graph, options);
  if (!out) return out;
  if (Status s = write_file_atomic(path, out->bytes); !s) return s.error();
  return out;
}

}  // namespace edgeopt::format
