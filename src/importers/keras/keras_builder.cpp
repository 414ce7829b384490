#include "importers/keras/keras_builder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "ir/ops.h"

namespace edgeopt::keras_import {
namespace {

using nlohmann::json;
using ir::OpKind;
using ir::Shape;

// Bounds on what a config may ask for, so hostile configs fail cleanly instead of overflowing.
constexpr std::int64_t kMaxChannels = std::int64_t{1} << 20;  // filters, units, input dims
constexpr std::int64_t kMaxWindow = std::int64_t{1} << 12;    // kernel sizes, strides, dilations
constexpr std::int64_t kMaxPad = std::int64_t{1} << 16;
constexpr std::int64_t kMaxActivation = std::int64_t{1} << 31;   // values per sample in one tensor
constexpr std::int64_t kMaxWeightElements = std::int64_t{1} << 29;
constexpr std::int64_t kMaxSyntheticParams = std::int64_t{1} << 26;  // zero weights we will invent
constexpr int kMaxModelDepth = 16;
constexpr std::size_t kMaxLayers = 20000;

const char* const kOnnxHint =
    "export the model to ONNX with tf2onnx (python -m tf2onnx.convert --keras model.h5 --output model.onnx, "
    "or --saved-model for a SavedModel) and import the .onnx file";

const std::set<std::string>& model_classes() {
  static const std::set<std::string> classes{"Sequential", "Functional", "Model"};
  return classes;
}

const std::set<std::string>& supported_layers() {
  static const std::set<std::string> classes{
      "InputLayer", "Conv2D", "Convolution2D", "DepthwiseConv2D", "SeparableConv2D", "SeparableConvolution2D",
      "Dense", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "Softmax", "MaxPooling2D", "MaxPool2D",
      "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D",
      "GlobalMaxPool2D", "Flatten", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
      "AlphaDropout", "ActivityRegularization", "Add", "Subtract", "Multiply", "Concatenate", "ZeroPadding2D",
      "Reshape", "Rescaling", "Normalization", "Cropping2D", "Permute", "Maximum", "Minimum", "Average"};
  return classes;
}

const json* get(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

bool as_int(const json& v, std::int64_t& out) {
  if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::abs(d) < 9e15 && d == std::floor(d)) {
      out = static_cast<std::int64_t>(d);
      return true;
    }
  }
  return false;
}

std::string class_of(const json& layer) {
  const json* c = get(layer, "class_name");
  return c && c->is_string() ? c->get<std::string>() : std::string();
}

// Keras 3 records `x + 3.0` or `ops.multiply(a, b)` on symbolic tensors as operations of
// module keras.src.ops.*; their class names (Add, Multiply) collide with the merge layers'.
bool is_keras3_operation(const json& layer) {
  const json* m = get(layer, "module");
  return m && m->is_string() && m->get<std::string>().rfind("keras.src.ops", 0) == 0;
}

// Keras 3 operations we import, as (binary op) or activation name.
const std::map<std::string, std::string>& keras3_operations() {
  static const std::map<std::string, std::string> ops{
      {"Add", "add"},        {"Subtract", "subtract"}, {"Multiply", "multiply"}, {"Divide", "divide"},
      {"TrueDivide", "divide"}, {"Relu", "relu"},      {"Relu6", "relu6"},       {"Sigmoid", "sigmoid"},
      {"Silu", "silu"},      {"Swish", "silu"},        {"HardSigmoid", "hard_sigmoid"}, {"HardSilu", "hard_silu"},
      {"HardSwish", "hard_silu"}, {"Tanh", "tanh"}};
  return ops;
}

// Keras 2 TFOpLambda functions (what `x + 3.0` becomes) we import, by the same names.
const std::map<std::string, std::string>& tf_op_functions() {
  static const std::map<std::string, std::string> ops{
      {"__operators__.add", "add"}, {"math.add", "add"},           {"math.subtract", "subtract"},
      {"__operators__.sub", "subtract"}, {"math.multiply", "multiply"}, {"__operators__.mul", "multiply"},
      {"math.truediv", "divide"},   {"__operators__.truediv", "divide"}, {"math.divide", "divide"},
      {"nn.relu", "relu"},          {"nn.relu6", "relu6"},          {"math.sigmoid", "sigmoid"},
      {"nn.silu", "silu"},          {"nn.swish", "silu"},           {"math.tanh", "tanh"}};
  return ops;
}

// What an operation-like layer computes ("add", "relu6", ...), or "" when it is an ordinary layer
// or one we do not know.
std::string operation_of(const json& layer) {
  if (is_keras3_operation(layer)) {
    auto it = keras3_operations().find(class_of(layer));
    return it == keras3_operations().end() ? std::string() : it->second;
  }
  if (class_of(layer) == "TFOpLambda") {
    const json* cfg = get(layer, "config");
    const json* f = cfg ? get(*cfg, "function") : nullptr;
    if (!f || !f->is_string()) return {};
    auto it = tf_op_functions().find(f->get<std::string>());
    return it == tf_op_functions().end() ? std::string() : it->second;
  }
  return {};
}

bool checked_product(const Shape& shape, std::int64_t limit, std::int64_t& out) {
  out = 1;
  for (auto d : shape) {
    const std::int64_t dim = d == ir::kBatch ? 1 : d;
    if (dim < 0 || __builtin_mul_overflow(out, dim, &out) || out > limit) return false;
  }
  return true;
}

// Keras' naming.to_snake_case, which names a layer's group in model.weights.h5.
std::string to_snake_case(const std::string& name) {
  std::string word;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') word += c;
  }
  static const std::regex upper_word("(.)([A-Z][a-z]+)");
  static const std::regex lower_upper("([a-z])([A-Z])");
  std::string out = std::regex_replace(word, upper_word, "$1_$2");
  out = std::regex_replace(out, lower_upper, "$1_$2");
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A reference to a layer call's output: (layer name, node index, tensor index).
using TensorRef = std::tuple<std::string, std::int64_t, std::int64_t>;

struct LayerWeights {
  std::vector<Hdf5Tensor> tensors;
  bool synthetic = false;
};

class Builder {
 public:
  Builder(WeightSource& weights, BuildOptions options, bool keras3)
      : weights_(weights), options_(std::move(options)), keras3_(keras3) {}

  ir::Graph finish(const json& model) {
    std::vector<int> outputs = build_model(model, nullptr, {}, 0);
    for (int& out : outputs) {
      // 4-D results go back to the NHWC layout Keras returns them in.
      if (rank(out) == 4) {
        out = add_op(OpKind::kTranspose, graph_.value(out).name + "/to_nhwc", {out}, perm({0, 2, 3, 1}), "Transpose");
        graph_.value(out).layout = ir::Layout::kNHWC;
      } else if (rank(out) == 2) {
        graph_.value(out).layout = ir::Layout::kNC;
      }
    }
    graph_.outputs = outputs;
    graph_.infer_shapes();
    graph_.simplify();
    // Constants we invented (BatchNorm without center/scale, Rescaling factors) are not Keras
    // parameters; Keras counts values the graph does not need (Normalization's sample count).
    std::int64_t invented = 0;
    for (int id : synthesized_) invented += ir::sample_elements(graph_.value(id).shape);
    graph_.extra_source_params = source_only_params_ - invented;
    return std::move(graph_);
  }

 private:
  // ---- messages and config access ----

  [[noreturn]] void bad(const std::string& layer, const std::string& what) const {
    fail(ErrorCode::kCorruptFile, options_.source + ": layer '" + layer + "': " + what,
         "the model config is damaged or was not written by Keras; re-save the model with model.save(...)");
  }

  [[noreturn]] void unsupported(const std::string& layer, const std::string& cls, const std::string& what) const {
    fail(ErrorCode::kUnsupportedOp,
         options_.source + ": layer '" + layer + "' (" + cls + "): " + what,
         std::string("change the layer in the model, or ") + kOnnxHint);
  }

  std::int64_t int_field(const json& cfg, const std::string& layer, const char* key, std::optional<std::int64_t> fallback,
                         std::int64_t lo, std::int64_t hi) const {
    const json* v = get(cfg, key);
    if (!v) {
      if (!fallback) bad(layer, std::string("config has no '") + key + "'");
      return *fallback;
    }
    const json* item = v;
    if (v->is_array() && v->size() == 1) item = &(*v)[0];
    std::int64_t out = 0;
    if (!as_int(*item, out)) bad(layer, std::string("'") + key + "' is not an integer");
    if (out < lo || out > hi) bad(layer, std::string("'") + key + "' = " + std::to_string(out) + " is out of range");
    return out;
  }

  // An int or a pair of ints ("kernel_size": 3 or [3, 3]).
  std::array<std::int64_t, 2> pair_field(const json& cfg, const std::string& layer, const char* key,
                                         std::optional<std::int64_t> fallback, std::int64_t lo, std::int64_t hi) const {
    const json* v = get(cfg, key);
    if (!v) {
      if (!fallback) bad(layer, std::string("config has no '") + key + "'");
      return {*fallback, *fallback};
    }
    std::array<std::int64_t, 2> out{};
    if (v->is_array()) {
      if (v->size() != 2 || !as_int((*v)[0], out[0]) || !as_int((*v)[1], out[1])) {
        bad(layer, std::string("'") + key + "' is not a pair of integers");
      }
    } else if (as_int(*v, out[0])) {
      out[1] = out[0];
    } else {
      bad(layer, std::string("'") + key + "' is not an integer or a pair");
    }
    for (auto x : out) {
      if (x < lo || x > hi) bad(layer, std::string("'") + key + "' = " + std::to_string(x) + " is out of range");
    }
    return out;
  }

  double float_field(const json& cfg, const std::string& layer, const char* key, double fallback) const {
    const json* v = get(cfg, key);
    if (!v) return fallback;
    if (!v->is_number()) bad(layer, std::string("'") + key + "' is not a number");
    const double d = v->get<double>();
    if (!std::isfinite(d)) bad(layer, std::string("'") + key + "' is not finite");
    return d;
  }

  bool bool_field(const json& cfg, const std::string& layer, const char* key, bool fallback) const {
    const json* v = get(cfg, key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(layer, std::string("'") + key + "' is not true/false");
    return v->get<bool>();
  }

  std::string string_field(const json& cfg, const std::string& layer, const char* key, const std::string& fallback) const {
    const json* v = get(cfg, key);
    if (!v) return fallback;
    if (!v->is_string()) bad(layer, std::string("'") + key + "' is not a string");
    return v->get<std::string>();
  }

  // ---- graph helpers ----

  std::size_t rank(int id) const { return graph_.value(id).shape.size(); }
  const Shape& shape(int id) const { return graph_.value(id).shape; }

  static ir::Attrs perm(std::vector<std::int64_t> p) {
    ir::Attrs a;
    a.perm = std::move(p);
    return a;
  }

  // Adds a node and infers its shape at once: later layers need shapes to size their weights.
  int add_op(OpKind op, const std::string& name, std::vector<int> inputs, ir::Attrs attrs, const std::string& source_op) {
    const int out = graph_.add_node(op, name, std::move(inputs), std::move(attrs), {}, source_op);
    ir::op_info(op).infer_shape(graph_, graph_.nodes.back());
    std::int64_t elements = 0;
    if (!checked_product(shape(out), kMaxActivation, elements)) {
      fail(ErrorCode::kInvalidArgument,
           options_.source + ": layer '" + name + "' produces " + ir::shape_to_string(shape(out)) + ", too large to run",
           "use a smaller input size");
    }
    return out;
  }

  int constant(const std::string& name, Shape shape, std::vector<float> data, bool keras_counts_it) {
    const int id = graph_.add_constant(name, std::move(shape), std::move(data));
    if (!keras_counts_it) synthesized_.push_back(id);
    return id;
  }

  int to_nhwc(int x, const std::string& name) { return add_op(OpKind::kTranspose, name + "/to_nhwc", {x}, perm({0, 2, 3, 1}), "Transpose"); }
  int to_nchw(int x, const std::string& name) { return add_op(OpKind::kTranspose, name + "/to_nchw", {x}, perm({0, 3, 1, 2}), "Transpose"); }

  // Keras axes count in NHWC; 4-D tensors live as NCHW in the IR.
  static std::int64_t map_axis(std::int64_t axis, std::size_t tensor_rank) {
    const auto r = static_cast<std::int64_t>(tensor_rank);
    if (axis < 0) axis += r;
    if (r == 4) {
      static constexpr std::array<std::int64_t, 4> kNhwcToNchw{0, 2, 3, 1};
      if (axis >= 0 && axis < 4) return kNhwcToNchw[static_cast<std::size_t>(axis)];
    }
    return axis;
  }

  // The number of channels Keras sees on its last axis.
  std::int64_t last_axis_channels(int x) const {
    const Shape& s = shape(x);
    return rank(x) == 4 ? s[1] : s.back();
  }

  // ---- weights ----

  LayerWeights fetch(const LayerPath& path, const std::string& cls, std::size_t expected) {
    LayerWeights out;
    if (weights_.synthetic()) {
      out.synthetic = true;
      return out;
    }
    auto found = weights_.layer_weights(path);
    if (!found) {
      if (expected == 0) return out;
      fail(ErrorCode::kCorruptFile,
           options_.source + ": the weights of layer '" + path.layer.name + "' (" + cls + ") are missing",
           "the file holds an architecture without its weights; re-save the model with model.save(...)");
    }
    if (found->size() != expected) {
      fail(ErrorCode::kShapeMismatch,
           options_.source + ": layer '" + path.layer.name + "' (" + cls + ") has " + std::to_string(found->size()) +
               " weight arrays in the file; its config needs " + std::to_string(expected),
           "the weights do not belong to this architecture; re-save the model with model.save(...)");
    }
    out.tensors = std::move(*found);
    return out;
  }

  // Weight `index` of a layer, checked against the shape the config implies. `exact` false
  // accepts any shape with the same number of values (Normalization's statistics).
  std::vector<float> take(LayerWeights& w, std::size_t index, const Shape& expected, const std::string& layer,
                          const char* what, bool exact = true) {
    std::int64_t elements = 0;
    if (!checked_product(expected, kMaxWeightElements, elements)) {
      fail(ErrorCode::kInvalidArgument, options_.source + ": layer '" + layer + "' needs a " + what + " of " +
                                            ir::shape_to_string(expected) + ", too large", "use a smaller model");
    }
    if (w.synthetic) {
      synthetic_params_ += elements;
      if (synthetic_params_ > kMaxSyntheticParams) {
        fail(ErrorCode::kInvalidArgument, options_.source + ": the architecture has over " +
                                              std::to_string(kMaxSyntheticParams) + " parameters",
             "import the saved model file (with weights) instead of its config");
      }
      return std::vector<float>(static_cast<std::size_t>(elements), 0.0F);
    }
    Hdf5Tensor& t = w.tensors.at(index);
    std::int64_t stored = 0;
    const bool same = exact ? t.shape == expected : (checked_product(t.shape, kMaxWeightElements, stored) && stored == elements);
    if (!same || static_cast<std::int64_t>(t.data.size()) != elements) {
      fail(ErrorCode::kShapeMismatch,
           options_.source + ": layer '" + layer + "': " + what + " '" + t.name + "' has shape " +
               ir::shape_to_string(t.shape) + " in the file, the config implies " + ir::shape_to_string(expected),
           "the weights do not belong to this architecture; re-save the model with model.save(...)");
    }
    return std::move(t.data);
  }

  // ---- activations ----

  std::string activation_name(const json& cfg, const std::string& layer) const {
    const json* v = get(cfg, "activation");
    if (!v) return "linear";
    if (v->is_string()) return v->get<std::string>();
    // Keras 3 may serialize a built-in as {"class_name": "function", "config": "relu", ...}.
    if (const json* inner = get(*v, "config"); inner && inner->is_string()) return inner->get<std::string>();
    bad(layer, "'activation' is neither a name nor a serialized function");
  }

  int apply_activation(const std::string& act, int x, const std::string& name, const std::string& cls) {
    ir::Attrs a;
    if (act == "linear" || act.empty()) return x;
    if (act == "relu") return add_op(OpKind::kRelu, name, {x}, a, cls);
    if (act == "relu6") {
      a.min = 0.0F;
      a.max = 6.0F;
      return add_op(OpKind::kClip, name, {x}, a, cls);
    }
    if (act == "hard_tanh") {
      a.min = -1.0F;
      a.max = 1.0F;
      return add_op(OpKind::kClip, name, {x}, a, cls);
    }
    if (act == "sigmoid") return add_op(OpKind::kSigmoid, name, {x}, a, cls);
    if (act == "tanh") return add_op(OpKind::kTanh, name, {x}, a, cls);
    if (act == "hard_sigmoid") {
      // Keras 2: clip(0.2 x + 0.5); Keras 3: relu6(x + 3) / 6.
      a.alpha = keras3_ ? 1.0F / 6.0F : 0.2F;
      a.beta = 0.5F;
      return add_op(OpKind::kHardSigmoid, name, {x}, a, cls);
    }
    if (act == "hard_swish" || act == "hard_silu") return add_op(OpKind::kHardSwish, name, {x}, a, cls);
    if (act == "swish" || act == "silu") {
      const int s = add_op(OpKind::kSigmoid, name + "/sigmoid", {x}, a, cls);
      return add_op(OpKind::kMul, name, {x, s}, a, cls);
    }
    if (act == "leaky_relu") {
      a.alpha = 0.2F;  // keras.activations.leaky_relu's default slope
      return add_op(OpKind::kLeakyRelu, name, {x}, a, cls);
    }
    if (act == "softmax" || act == "log_softmax") {
      a.axis = map_axis(-1, rank(x));
      return add_op(act == "softmax" ? OpKind::kSoftmax : OpKind::kLogSoftmax, name, {x}, a, cls);
    }
    unsupported(name, cls, "activation '" + act + "' is not supported (supported: linear, relu, relu6, sigmoid, "
                           "hard_sigmoid, swish/silu, hard_swish/hard_silu, tanh, softmax, log_softmax, leaky_relu)");
  }

  // Applies a layer's own "activation" (Conv2D, Dense, ...); `y` is the pre-activation value.
  int fused_activation(const json& cfg, int y, const std::string& layer, const std::string& cls) {
    const std::string act = activation_name(cfg, layer);
    return apply_activation(act, y, layer + "/" + act, cls);
  }

  // ---- layers ----

  int require_rank(int x, std::size_t wanted, const std::string& layer, const std::string& cls) const {
    if (rank(x) != wanted) {
      unsupported(layer, cls, "expects a rank-" + std::to_string(wanted) + " input (with the batch), got " +
                                  ir::shape_to_string(shape(x)));
    }
    return x;
  }

  std::array<std::int64_t, 4> window_pads(const std::string& padding, std::int64_t h, std::int64_t w,
                                          const std::array<std::int64_t, 2>& k, const std::array<std::int64_t, 2>& s,
                                          const std::array<std::int64_t, 2>& d, const std::string& layer,
                                          const std::string& cls) const {
    if (padding == "valid") return {0, 0, 0, 0};
    if (padding != "same") unsupported(layer, cls, "padding '" + padding + "' is not supported (valid, same)");
    // TensorFlow's SAME: output ceil(in / stride); an odd total puts the extra pad at the end.
    auto same = [](std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t dilation) {
      const std::int64_t out = (in + stride - 1) / stride;
      const std::int64_t span = (kernel - 1) * dilation + 1;
      const std::int64_t total = std::max<std::int64_t>((out - 1) * stride + span - in, 0);
      return std::array<std::int64_t, 2>{total / 2, total - total / 2};
    };
    const auto ph = same(h, k[0], s[0], d[0]);
    const auto pw = same(w, k[1], s[1], d[1]);
    return {ph[0], pw[0], ph[1], pw[1]};
  }

  int conv2d(const json& cfg, const LayerPath& path, const std::string& cls, int x) {
    const std::string& name = path.layer.name;
    require_rank(x, 4, name, cls);
    const std::int64_t channels = shape(x)[1];
    const std::int64_t filters = int_field(cfg, name, "filters", std::nullopt, 1, kMaxChannels);
    const auto k = pair_field(cfg, name, "kernel_size", std::nullopt, 1, kMaxWindow);
    const auto s = pair_field(cfg, name, "strides", 1, 1, kMaxWindow);
    const auto d = pair_field(cfg, name, "dilation_rate", 1, 1, kMaxWindow);
    const std::int64_t groups = int_field(cfg, name, "groups", 1, 1, kMaxChannels);
    if (channels % groups != 0 || filters % groups != 0) bad(name, "groups do not divide the channels");
    const bool use_bias = bool_field(cfg, name, "use_bias", true);
    const std::int64_t cin = channels / groups;
    LayerWeights w = fetch(path, cls, use_bias ? 2 : 1);
    const std::vector<float> kernel = take(w, 0, {k[0], k[1], cin, filters}, name, "kernel");
    // HWIO -> OIHW
    std::vector<float> oihw(kernel.size());
    for (std::int64_t y = 0; y < k[0]; ++y) {
      for (std::int64_t xx = 0; xx < k[1]; ++xx) {
        for (std::int64_t i = 0; i < cin; ++i) {
          for (std::int64_t o = 0; o < filters; ++o) {
            oihw[static_cast<std::size_t>(((o * cin + i) * k[0] + y) * k[1] + xx)] =
                kernel[static_cast<std::size_t>(((y * k[1] + xx) * cin + i) * filters + o)];
          }
        }
      }
    }
    std::vector<int> inputs{x, constant(name + "/kernel", {filters, cin, k[0], k[1]}, std::move(oihw), true)};
    if (use_bias) inputs.push_back(constant(name + "/bias", {filters}, take(w, 1, {filters}, name, "bias"), true));
    ir::Attrs a;
    a.strides = {s[0], s[1]};
    a.dilations = {d[0], d[1]};
    a.group = groups;
    const std::string padding = string_field(cfg, name, "padding", "valid");
    const auto pads = window_pads(padding, shape(x)[2], shape(x)[3], k, s, d, name, cls);
    a.pads.assign(pads.begin(), pads.end());
    return fused_activation(cfg, add_op(OpKind::kConv, name, std::move(inputs), a, cls), name, cls);
  }

  // A depthwise convolution from a Keras [kh, kw, C, mult] kernel; no bias, no activation.
  int depthwise(const json& cfg, const std::string& name, const std::string& node_name, const std::string& cls, int x,
                std::vector<float> kernel, const std::array<std::int64_t, 2>& k, std::int64_t mult,
                std::optional<std::vector<float>> bias) {
    const std::int64_t channels = shape(x)[1];
    std::vector<float> w(kernel.size());
    for (std::int64_t y = 0; y < k[0]; ++y) {
      for (std::int64_t xx = 0; xx < k[1]; ++xx) {
        for (std::int64_t c = 0; c < channels; ++c) {
          for (std::int64_t m = 0; m < mult; ++m) {
            w[static_cast<std::size_t>(((c * mult + m) * k[0] + y) * k[1] + xx)] =
                kernel[static_cast<std::size_t>(((y * k[1] + xx) * channels + c) * mult + m)];
          }
        }
      }
    }
    const auto s = pair_field(cfg, name, "strides", 1, 1, kMaxWindow);
    const auto d = pair_field(cfg, name, "dilation_rate", 1, 1, kMaxWindow);
    std::vector<int> inputs{x, constant(node_name + "/depthwise_kernel", {channels * mult, 1, k[0], k[1]}, std::move(w), true)};
    if (bias) inputs.push_back(constant(node_name + "/bias", {channels * mult}, std::move(*bias), true));
    ir::Attrs a;
    a.strides = {s[0], s[1]};
    a.dilations = {d[0], d[1]};
    a.group = channels;
    const auto pads = window_pads(string_field(cfg, name, "padding", "valid"), shape(x)[2], shape(x)[3], k, s, d, name, cls);
    a.pads.assign(pads.begin(), pads.end());
    return add_op(OpKind::kConv, node_name, std::move(inputs), a, cls);
  }

  int depthwise_conv2d(const json& cfg, const LayerPath& path, const std::string& cls, int x) {
    const std::string& name = path.layer.name;
    require_rank(x, 4, name, cls);
    const std::int64_t channels = shape(x)[1];
    const auto k = pair_field(cfg, name, "kernel_size", std::nullopt, 1, kMaxWindow);
    const std::int64_t mult = int_field(cfg, name, "depth_multiplier", 1, 1, kMaxChannels);
    if (channels * mult > kMaxChannels) bad(name, "too many output channels");
    const bool use_bias = bool_field(cfg, name, "use_bias", true);
    LayerWeights w = fetch(path, cls, use_bias ? 2 : 1);
    std::vector<float> kernel = take(w, 0, {k[0], k[1], channels, mult}, name, "depthwise kernel");
    std::optional<std::vector<float>> bias;
    if (use_bias) bias = take(w, 1, {channels * mult}, name, "bias");
    const int y = depthwise(cfg, name, name, cls, x, std::move(kernel), k, mult, std::move(bias));
    return fused_activation(cfg, y, name, cls);
  }

  int separable_conv2d(const json& cfg, const LayerPath& path, const std::string& cls, int x) {
    const std::string& name = path.layer.name;
    require_rank(x, 4, name, cls);
    const std::int64_t channels = shape(x)[1];
    const std::int64_t filters = int_field(cfg, name, "filters", std::nullopt, 1, kMaxChannels);
    const auto k = pair_field(cfg, name, "kernel_size", std::nullopt, 1, kMaxWindow);
    const std::int64_t mult = int_field(cfg, name, "depth_multiplier", 1, 1, kMaxChannels);
    if (channels * mult > kMaxChannels) bad(name, "too many intermediate channels");
    const bool use_bias = bool_field(cfg, name, "use_bias", true);
    LayerWeights w = fetch(path, cls, use_bias ? 3 : 2);
    std::vector<float> dw = take(w, 0, {k[0], k[1], channels, mult}, name, "depthwise kernel");
    std::vector<float> pw = take(w, 1, {1, 1, channels * mult, filters}, name, "pointwise kernel");
    const int mid = depthwise(cfg, name, name + "/depthwise", cls, x, std::move(dw), k, mult, std::nullopt);
    // [1, 1, C*mult, F] -> [F, C*mult, 1, 1]
    const std::int64_t cm = channels * mult;
    std::vector<float> oi(pw.size());
    for (std::int64_t i = 0; i < cm; ++i) {
      for (std::int64_t o = 0; o < filters; ++o) oi[static_cast<std::size_t>(o * cm + i)] = pw[static_cast<std::size_t>(i * filters + o)];
    }
    std::vector<int> inputs{mid, constant(name + "/pointwise_kernel", {filters, cm, 1, 1}, std::move(oi), true)};
    if (use_bias) inputs.push_back(constant(name + "/bias", {filters}, take(w, 2, {filters}, name, "bias"), true));
    ir::Attrs pointwise;
    pointwise.strides = {1, 1};
    pointwise.dilations = {1, 1};
    pointwise.pads = {0, 0, 0, 0};
    return fused_activation(cfg, add_op(OpKind::kConv, name, std::move(inputs), pointwise, cls), name, cls);
  }

  int dense(const json& cfg, const LayerPath& path, const std::string& cls, int x) {
    const std::string& name = path.layer.name;
    if (rank(x) != 2) {
      unsupported(name, cls, "Dense over a rank-" + std::to_string(rank(x)) + " tensor " + ir::shape_to_string(shape(x)) +
                                 " is not supported (only [batch, features]); add a Flatten or GlobalAveragePooling2D before it");
    }
    const std::int64_t in = shape(x)[1];
    const std::int64_t units = int_field(cfg, name, "units", std::nullopt, 1, kMaxChannels);
    const bool use_bias = bool_field(cfg, name, "use_bias", true);
    LayerWeights w = fetch(path, cls, use_bias ? 2 : 1);
    const std::vector<float> kernel = take(w, 0, {in, units}, name, "kernel");
    std::vector<float> transposed(kernel.size());
    for (std::int64_t i = 0; i < in; ++i) {
      for (std::int64_t o = 0; o < units; ++o) transposed[static_cast<std::size_t>(o * in + i)] = kernel[static_cast<std::size_t>(i * units + o)];
    }
    std::vector<int> inputs{x, constant(name + "/kernel", {units, in}, std::move(transposed), true)};
    if (use_bias) inputs.push_back(constant(name + "/bias", {units}, take(w, 1, {units}, name, "bias"), true));
    return fused_activation(cfg, add_op(OpKind::kGemm, name, std::move(inputs), ir::Attrs{}, cls), name, cls);
  }

  // The single Keras axis a layer works on ("axis": -1, 3 or [3]), as an IR axis.
  std::int64_t single_axis(const json& cfg, const std::string& name, const std::string& cls, int x, std::int64_t fallback) const {
    const json* v = get(cfg, "axis");
    std::int64_t axis = fallback;
    if (v) {
      const json* item = v;
      if (v->is_array()) {
        if (v->size() != 1) unsupported(name, cls, "works over several axes; only one axis is supported");
        item = &(*v)[0];
      }
      if (!as_int(*item, axis)) bad(name, "'axis' is not an integer");
    }
    const auto r = static_cast<std::int64_t>(rank(x));
    if (axis < -r || axis >= r) bad(name, "axis " + std::to_string(axis) + " is out of range for a rank-" + std::to_string(r) + " input");
    return map_axis(axis, rank(x));
  }

  int batch_norm(const json& cfg, const LayerPath& path, const std::string& cls, int x) {
    const std::string& name = path.layer.name;
    if (rank(x) < 2 || single_axis(cfg, name, cls, x, -1) != 1) {
      unsupported(name, cls, "normalizes an axis other than the channels of " + ir::shape_to_string(shape(x)));
    }
    const std::int64_t c = shape(x)[1];
    const bool scale = bool_field(cfg, name, "scale", true);
    const bool center = bool_field(cfg, name, "center", true);
    LayerWeights w = fetch(path, cls, 2 + (scale ? 1 : 0) + (center ? 1 : 0));
    std::size_t next = 0;
    const int gamma = scale ? constant(name + "/gamma", {c}, take(w, next++, {c}, name, "gamma"), true)
                            : constant(name + "/gamma", {c}, std::vector<float>(static_cast<std::size_t>(c), 1.0F), false);
    const int beta = center ? constant(name + "/beta", {c}, take(w, next++, {c}, name, "beta"), true)
                            : constant(name + "/beta", {c}, std::vector<float>(static_cast<std::size_t>(c), 0.0F), false);
    const int mean = constant(name + "/moving_mean", {c}, take(w, next++, {c}, name, "moving_mean"), true);
    const int var = constant(name + "/moving_variance", {c}, take(w, next++, {c}, name, "moving_variance"), true);
    ir::Attrs a;
    a.epsilon = static_cast<float>(float_field(cfg, name, "epsilon", 1e-3));
    return add_op(OpKind::kBatchNorm, name, {x, gamma, beta, mean, var}, a, cls);
  }

  int relu_layer(const json& cfg, const std::string& name, const std::string& cls, int x) {
    const double threshold = float_field(cfg, name, "threshold", 0.0);
    if (threshold != 0.0) unsupported(name, cls, "a non-zero threshold is not supported");
    const double slope = float_field(cfg, name, "negative_slope", 0.0);
    const json* max_value = get(cfg, "max_value");
    ir::Attrs a;
    if (slope == 0.0) {
      if (!max_value) return add_op(OpKind::kRelu, name, {x}, a, cls);
      a.min = 0.0F;
      a.max = static_cast<float>(float_field(cfg, name, "max_value", 0.0));
      return add_op(OpKind::kClip, name, {x}, a, cls);
    }
    a.alpha = static_cast<float>(slope);
    if (!max_value) return add_op(OpKind::kLeakyRelu, name, {x}, a, cls);
    const int leaky = add_op(OpKind::kLeakyRelu, name + "/leaky", {x}, a, cls);
    ir::Attrs clip;
    clip.max = static_cast<float>(float_field(cfg, name, "max_value", 0.0));
    return add_op(OpKind::kClip, name, {leaky}, clip, cls);
  }

  int pooling(const json& cfg, const std::string& name, const std::string& cls, int x, OpKind op) {
    require_rank(x, 4, name, cls);
    const auto k = pair_field(cfg, name, "pool_size", 2, 1, kMaxWindow);
    const json* strides = get(cfg, "strides");
    const auto s = strides ? pair_field(cfg, name, "strides", 1, 1, kMaxWindow) : k;
    ir::Attrs a;
    a.kernel = {k[0], k[1]};
    a.strides = {s[0], s[1]};
    const auto pads = window_pads(string_field(cfg, name, "padding", "valid"), shape(x)[2], shape(x)[3], k, s, {1, 1}, name, cls);
    a.pads.assign(pads.begin(), pads.end());
    a.count_include_pad = false;  // TensorFlow averages over the real values only
    return add_op(op, name, {x}, a, cls);
  }

  int global_pool(const json& cfg, const std::string& name, const std::string& cls, int x, bool average) {
    require_rank(x, 4, name, cls);
    const bool keepdims = bool_field(cfg, name, "keepdims", false);
    const std::string pooled_name = keepdims ? name : name + "/pool";
    int y = 0;
    if (average) {
      y = add_op(OpKind::kGlobalAvgPool, pooled_name, {x}, ir::Attrs{}, cls);
    } else {
      ir::Attrs a;
      a.kernel = {shape(x)[2], shape(x)[3]};
      y = add_op(OpKind::kMaxPool, pooled_name, {x}, a, cls);
    }
    if (keepdims) return y;
    ir::Attrs flat;
    flat.axis = 1;
    return add_op(OpKind::kFlatten, name, {y}, flat, cls);
  }

  int flatten(const std::string& name, const std::string& cls, int x) {
    if (rank(x) == 2) return x;
    // Keras flattens NHWC, so put the channels back last first.
    if (rank(x) == 4) x = to_nhwc(x, name);
    ir::Attrs a;
    a.axis = 1;
    return add_op(OpKind::kFlatten, name, {x}, a, cls);
  }

  int reshape(const json& cfg, const std::string& name, const std::string& cls, int x) {
    const json* target = get(cfg, "target_shape");
    if (!target || !target->is_array() || target->empty() || target->size() > 7) bad(name, "'target_shape' is not a list of 1 to 7 sizes");
    ir::Attrs a;
    a.shape.push_back(0);  // keep the batch
    std::int64_t product = 1;
    int unknown = 0;
    for (const json& d : *target) {
      std::int64_t v = 0;
      if (!as_int(d, v) || v == 0 || v < -1 || v > kMaxActivation) bad(name, "'target_shape' has an invalid size");
      if (v == -1) {
        ++unknown;
      } else if (__builtin_mul_overflow(product, v, &product) || product > kMaxActivation) {
        bad(name, "'target_shape' is too large");
      }
      a.shape.push_back(v);
    }
    if (unknown > 1) bad(name, "'target_shape' has more than one -1");
    if (rank(x) == 4) x = to_nhwc(x, name);
    int y = add_op(OpKind::kReshape, name, {x}, a, cls);
    if (rank(y) == 4) y = to_nchw(y, name);
    return y;
  }

  // Per-channel constants for Keras' last axis, shaped to broadcast against `x` in the IR.
  Shape channel_shape(int x, std::int64_t n) const {
    if (n == 1) return {1};
    return rank(x) == 4 ? Shape{n, 1, 1} : Shape{n};
  }

  std::vector<float> number_or_list(const json& cfg, const std::string& name, const char* key, double fallback,
                                    std::int64_t channels) const {
    const json* v = get(cfg, key);
    if (!v) return {static_cast<float>(fallback)};
    std::vector<float> out;
    auto push = [&](const json& item) {
      if (!item.is_number() || !std::isfinite(item.get<double>())) bad(name, std::string("'") + key + "' is not a number");
      out.push_back(item.get<float>());
    };
    if (v->is_array()) {
      for (const json& item : *v) push(item);
    } else {
      push(*v);
    }
    if (out.size() != 1 && static_cast<std::int64_t>(out.size()) != channels) {
      bad(name, std::string("'") + key + "' has " + std::to_string(out.size()) + " values for " + std::to_string(channels) + " channels");
    }
    return out;
  }

  int rescaling(const json& cfg, const std::string& name, const std::string& cls, int x) {
    const std::int64_t c = last_axis_channels(x);
    std::vector<float> scale = number_or_list(cfg, name, "scale", 1.0, c);
    std::vector<float> offset = number_or_list(cfg, name, "offset", 0.0, c);
    const bool no_scale = scale.size() == 1 && scale[0] == 1.0F;
    const bool no_offset = offset.size() == 1 && offset[0] == 0.0F;
    int y = x;
    if (!no_scale) {
      const auto n = static_cast<std::int64_t>(scale.size());
      y = add_op(OpKind::kMul, no_offset ? name : name + "/scale", {y, constant(name + "/scale_value", channel_shape(x, n), std::move(scale), false)}, ir::Attrs{}, cls);
    }
    if (!no_offset) {
      const auto n = static_cast<std::int64_t>(offset.size());
      y = add_op(OpKind::kAdd, name, {y, constant(name + "/offset_value", channel_shape(x, n), std::move(offset), false)}, ir::Attrs{}, cls);
    }
    return y;
  }

  int normalization(const json& cfg, const LayerPath& path, const std::string& cls, int x) {
    const std::string& name = path.layer.name;
    if (bool_field(cfg, name, "invert", false)) unsupported(name, cls, "invert=True is not supported");
    const json* axis = get(cfg, "axis");
    if (axis == nullptr || single_axis(cfg, name, cls, x, -1) != map_axis(-1, rank(x))) {
      unsupported(name, cls, "only normalization over the last (channel) axis is supported");
    }
    const std::int64_t c = last_axis_channels(x);
    std::vector<float> mean;
    std::vector<float> variance;
    const bool from_config = get(cfg, "mean") != nullptr;
    if (from_config) {
      // Statistics given in the constructor are not weights: Keras counts no parameters.
      mean = number_or_list(cfg, name, "mean", 0.0, c);
      variance = number_or_list(cfg, name, "variance", 1.0, c);
      if (mean.size() == 1) mean.assign(static_cast<std::size_t>(c), mean[0]);
      if (variance.size() == 1) variance.assign(static_cast<std::size_t>(c), variance[0]);
    } else {
      LayerWeights w = fetch(path, cls, 3);
      mean = take(w, 0, {c}, name, "mean", false);
      variance = take(w, 1, {c}, name, "variance", false);
      if (!w.synthetic) {
        std::int64_t count_elements = 0;
        checked_product(w.tensors.at(2).shape, kMaxWeightElements, count_elements);
        source_only_params_ += count_elements;  // the adapt() sample count: stored, never used
      } else {
        source_only_params_ += 1;
      }
    }
    // Keras divides by max(sqrt(variance), epsilon()).
    for (float& v : variance) v = std::max(std::sqrt(std::max(v, 0.0F)), 1e-7F);
    const int centered = add_op(OpKind::kSub, name + "/center", {x, constant(name + "/mean", channel_shape(x, c), std::move(mean), !from_config)}, ir::Attrs{}, cls);
    return add_op(OpKind::kDiv, name, {centered, constant(name + "/stddev", channel_shape(x, c), std::move(variance), !from_config)}, ir::Attrs{}, cls);
  }

  // ZeroPadding2D's "padding" / Cropping2D's "cropping": n, (rows, cols) or ((top, bottom), (left, right)).
  std::array<std::int64_t, 4> four_sides(const json& cfg, const std::string& name, const char* key, std::int64_t fallback) const {
    const json* p = get(cfg, key);
    std::array<std::int64_t, 4> tblr{fallback, fallback, fallback, fallback};  // top, bottom, left, right
    auto read = [&](const json& v, std::int64_t& out) {
      if (!as_int(v, out) || out < 0 || out > kMaxPad) bad(name, std::string("'") + key + "' has an invalid size");
    };
    if (p) {
      if (p->is_array() && p->size() == 2 && (*p)[0].is_array()) {
        for (std::size_t i = 0; i < 2; ++i) {
          const json& pair = (*p)[i];
          if (!pair.is_array() || pair.size() != 2) bad(name, std::string("'") + key + "' is not ((top, bottom), (left, right))");
          read(pair[0], tblr[2 * i]);
          read(pair[1], tblr[2 * i + 1]);
        }
      } else if (p->is_array() && p->size() == 2) {
        read((*p)[0], tblr[0]);
        tblr[1] = tblr[0];
        read((*p)[1], tblr[2]);
        tblr[3] = tblr[2];
      } else {
        read(*p, tblr[0]);
        tblr = {tblr[0], tblr[0], tblr[0], tblr[0]};
      }
    }
    return tblr;
  }

  int zero_padding(const json& cfg, const std::string& name, const std::string& cls, int x) {
    require_rank(x, 4, name, cls);
    const auto tblr = four_sides(cfg, name, "padding", 1);
    ir::Attrs a;
    a.pads = {0, 0, tblr[0], tblr[2], 0, 0, tblr[1], tblr[3]};  // NCHW, begins then ends
    return add_op(OpKind::kPad, name, {x}, a, cls);
  }

  // Cropping is a Pad with negative sizes (as in ONNX); the IR has no Slice.
  int cropping(const json& cfg, const std::string& name, const std::string& cls, int x) {
    require_rank(x, 4, name, cls);
    const auto tblr = four_sides(cfg, name, "cropping", 0);
    if (tblr[0] + tblr[1] >= shape(x)[2] || tblr[2] + tblr[3] >= shape(x)[3]) {
      bad(name, "crops away the whole of its " + ir::shape_to_string(shape(x)) + " input (NCHW)");
    }
    ir::Attrs a;
    a.pads = {0, 0, -tblr[0], -tblr[2], 0, 0, -tblr[1], -tblr[3]};
    return add_op(OpKind::kPad, name, {x}, a, cls);
  }

  // Permute's "dims" reorder the axes after the batch (1-based) in Keras' own NHWC order.
  int permute(const json& cfg, const std::string& name, const std::string& cls, int x) {
    const json* dims = get(cfg, "dims");
    const std::size_t r = rank(x);
    if (!dims || !dims->is_array() || dims->size() + 1 != r) bad(name, "'dims' does not list every axis after the batch");
    ir::Attrs a;
    a.perm.push_back(0);
    std::vector<bool> seen(r, false);
    for (const json& d : *dims) {
      std::int64_t v = 0;
      if (!as_int(d, v) || v < 1 || v >= static_cast<std::int64_t>(r) || seen[static_cast<std::size_t>(v)]) {
        bad(name, "'dims' is not a permutation of 1.." + std::to_string(r - 1));
      }
      seen[static_cast<std::size_t>(v)] = true;
      a.perm.push_back(v);
    }
    if (r == 4) x = to_nhwc(x, name);
    const int y = add_op(OpKind::kTranspose, r == 4 ? name + "/nhwc" : name, {x}, a, cls);
    return r == 4 ? to_nchw(y, name) : y;
  }

  int merge(const std::string& name, const std::string& cls, const std::vector<int>& inputs, OpKind op) {
    if (inputs.size() < 2 || (op == OpKind::kSub && inputs.size() != 2)) bad(name, "needs " + std::string(op == OpKind::kSub ? "exactly 2" : "at least 2") + " inputs");
    for (int in : inputs) {
      if (rank(in) != rank(inputs[0])) unsupported(name, cls, "inputs of different ranks are not supported");
    }
    int acc = inputs[0];
    for (std::size_t i = 1; i < inputs.size(); ++i) {
      acc = add_op(op, i + 1 == inputs.size() ? name : name + "/" + std::to_string(i), {acc, inputs[i]}, ir::Attrs{}, cls);
    }
    return acc;
  }

  int concatenate(const json& cfg, const std::string& name, const std::string& cls, const std::vector<int>& inputs) {
    if (inputs.empty() || inputs.size() > 64) bad(name, "needs 1 to 64 inputs");
    for (int in : inputs) {
      if (rank(in) != rank(inputs[0])) bad(name, "inputs differ in rank");
    }
    ir::Attrs a;
    a.axis = single_axis(cfg, name, cls, inputs[0], -1);
    if (a.axis == 0) unsupported(name, cls, "concatenation along the batch axis is not supported");
    return add_op(OpKind::kConcat, name, inputs, a, cls);
  }

  // Operands must agree in rank (4-D ones are NCHW here, Keras' are NHWC), except one-element
  // constants, which broadcast against anything.
  void check_operand_ranks(const std::string& name, const std::string& cls, const std::vector<int>& inputs) const {
    std::size_t r = 0;
    for (int in : inputs) {
      if (graph_.value(in).is_constant && ir::sample_elements(shape(in)) == 1 && rank(in) == 1) continue;
      if (r != 0 && rank(in) != r) unsupported(name, cls, "operands of different ranks are not supported");
      r = rank(in);
    }
  }

  // A Keras 3 operation or Keras 2 TFOpLambda, by the name operation_of() gave it.
  int operation(const std::string& op, const std::string& name, const std::string& cls, const std::vector<int>& inputs) {
    static const std::map<std::string, OpKind> binary{
        {"add", OpKind::kAdd}, {"subtract", OpKind::kSub}, {"multiply", OpKind::kMul}, {"divide", OpKind::kDiv}};
    if (auto it = binary.find(op); it != binary.end()) {
      if (inputs.size() != 2) bad(name, "'" + op + "' needs 2 operands, the model gives it " + std::to_string(inputs.size()));
      check_operand_ranks(name, cls, inputs);
      return add_op(it->second, name, inputs, ir::Attrs{}, cls);
    }
    if (op.empty()) unsupported(name, cls, "this operation is not supported");
    if (inputs.size() != 1) bad(name, "'" + op + "' takes one operand, the model gives it " + std::to_string(inputs.size()));
    return apply_activation(op, inputs[0], name, cls);
  }

  // max(a, b) = a + relu(b - a); min(a, b) = a - relu(a - b): the IR has no Max/Min.
  int extremum(const std::string& name, const std::string& cls, const std::vector<int>& inputs, bool maximum) {
    if (inputs.size() < 2) bad(name, "needs at least 2 inputs");
    check_operand_ranks(name, cls, inputs);
    int acc = inputs[0];
    for (std::size_t i = 1; i < inputs.size(); ++i) {
      const std::string step = i + 1 == inputs.size() ? name : name + "/" + std::to_string(i);
      const int diff = maximum ? add_op(OpKind::kSub, step + "/diff", {inputs[i], acc}, ir::Attrs{}, cls)
                               : add_op(OpKind::kSub, step + "/diff", {acc, inputs[i]}, ir::Attrs{}, cls);
      const int excess = add_op(OpKind::kRelu, step + "/excess", {diff}, ir::Attrs{}, cls);
      acc = add_op(maximum ? OpKind::kAdd : OpKind::kSub, step, {acc, excess}, ir::Attrs{}, cls);
    }
    return acc;
  }

  int average(const std::string& name, const std::string& cls, const std::vector<int>& inputs) {
    if (inputs.size() < 2) bad(name, "needs at least 2 inputs");
    const int sum = merge(name + "/sum", cls, inputs, OpKind::kAdd);
    const int scale = constant(name + "/scale", {1}, {1.0F / static_cast<float>(inputs.size())}, false);
    return add_op(OpKind::kMul, name, {sum, scale}, ir::Attrs{}, cls);
  }

  std::vector<int> convert_layer(const json& layer, const std::vector<int>& inputs, const LayerPath& path, int depth) {
    const std::string cls = class_of(layer);
    if (model_classes().count(cls)) {
      std::vector<LayerPath::Step> scope = path.models;
      scope.push_back(path.layer);
      return build_model(layer, &inputs, scope, depth + 1);
    }
    const std::string& name = path.layer.name;
    const json* cfg_ptr = get(layer, "config");
    if (!cfg_ptr || !cfg_ptr->is_object()) bad(name, "has no config");
    const json& cfg = *cfg_ptr;
    if (string_field(cfg, name, "data_format", "channels_last") != "channels_last") {
      unsupported(name, cls, "data_format channels_first is not supported; rebuild the model with channels_last (the Keras default)");
    }
    if (is_keras3_operation(layer) || cls == "TFOpLambda") return {operation(operation_of(layer), name, cls, inputs)};
    const bool merging = cls == "Add" || cls == "Subtract" || cls == "Multiply" || cls == "Concatenate" ||
                         cls == "Maximum" || cls == "Minimum" || cls == "Average";
    if (!merging && inputs.size() != 1) bad(name, "takes one input, the model gives it " + std::to_string(inputs.size()));
    const int x = inputs[0];
    if (cls == "Conv2D" || cls == "Convolution2D") return {conv2d(cfg, path, cls, x)};
    if (cls == "DepthwiseConv2D") return {depthwise_conv2d(cfg, path, cls, x)};
    if (cls == "SeparableConv2D" || cls == "SeparableConvolution2D") return {separable_conv2d(cfg, path, cls, x)};
    if (cls == "Dense") return {dense(cfg, path, cls, x)};
    if (cls == "BatchNormalization") return {batch_norm(cfg, path, cls, x)};
    if (cls == "Activation") return {apply_activation(activation_name(cfg, name), x, name, cls)};
    if (cls == "ReLU") return {relu_layer(cfg, name, cls, x)};
    if (cls == "LeakyReLU") {
      ir::Attrs a;
      // Keras 3 calls the slope negative_slope, Keras 2 alpha.
      a.alpha = static_cast<float>(float_field(cfg, name, get(cfg, "negative_slope") ? "negative_slope" : "alpha", 0.3));
      return {add_op(OpKind::kLeakyRelu, name, {x}, a, cls)};
    }
    if (cls == "Softmax") {
      ir::Attrs a;
      a.axis = single_axis(cfg, name, cls, x, -1);
      return {add_op(OpKind::kSoftmax, name, {x}, a, cls)};
    }
    if (cls == "MaxPooling2D" || cls == "MaxPool2D") return {pooling(cfg, name, cls, x, OpKind::kMaxPool)};
    if (cls == "AveragePooling2D" || cls == "AvgPool2D") return {pooling(cfg, name, cls, x, OpKind::kAvgPool)};
    if (cls == "GlobalAveragePooling2D" || cls == "GlobalAvgPool2D") return {global_pool(cfg, name, cls, x, true)};
    if (cls == "GlobalMaxPooling2D" || cls == "GlobalMaxPool2D") return {global_pool(cfg, name, cls, x, false)};
    if (cls == "Flatten") return {flatten(name, cls, x)};
    if (cls == "Reshape") return {reshape(cfg, name, cls, x)};
    if (cls == "ZeroPadding2D") return {zero_padding(cfg, name, cls, x)};
    if (cls == "Rescaling") return {rescaling(cfg, name, cls, x)};
    if (cls == "Normalization") return {normalization(cfg, path, cls, x)};
    if (cls == "Add") return {merge(name, cls, inputs, OpKind::kAdd)};
    if (cls == "Subtract") return {merge(name, cls, inputs, OpKind::kSub)};
    if (cls == "Multiply") return {merge(name, cls, inputs, OpKind::kMul)};
    if (cls == "Concatenate") return {concatenate(cfg, name, cls, inputs)};
    if (cls == "Maximum" || cls == "Minimum") return {extremum(name, cls, inputs, cls == "Maximum")};
    if (cls == "Average") return {average(name, cls, inputs)};
    if (cls == "Cropping2D") return {cropping(cfg, name, cls, x)};
    if (cls == "Permute") return {permute(cfg, name, cls, x)};
    if (supported_layers().count(cls) && cls != "InputLayer") return {x};  // dropout and noise: identities at inference
    unsupported(name, cls, "layer class '" + cls + "' is not supported");
  }

  // ---- models ----

  // Fails on the first layer whose class we cannot import, before anything else is parsed, so
  // the message names the real obstacle.
  void check_classes(const json& layers, int depth) const {
    for (const json& layer : layers) {
      const std::string cls = class_of(layer);
      const json* cfg = get(layer, "config");
      std::string name;
      if (const json* n = get(layer, "name"); n && n->is_string()) name = n->get<std::string>();
      if (const json* n = cfg ? get(*cfg, "name") : nullptr; name.empty() && n && n->is_string()) name = n->get<std::string>();
      if (model_classes().count(cls)) {
        if (cfg && depth < kMaxModelDepth) {
          if (const json* inner = get(*cfg, "layers"); inner && inner->is_array()) check_classes(*inner, depth + 1);
        }
        continue;
      }
      const bool operation = is_keras3_operation(layer) || cls == "TFOpLambda";
      if (operation && operation_of(layer).empty()) {
        const json* f = cfg ? get(*cfg, "function") : nullptr;
        const std::string what = cls == "TFOpLambda"
                                     ? "TensorFlow function '" + (f && f->is_string() ? f->get<std::string>() : std::string("?")) + "'"
                                     : "Keras operation '" + cls + "'";
        fail(ErrorCode::kUnsupportedOp, options_.source + ": layer '" + name + "' (" + cls + "): " + what + " is not supported",
             "supported operations on tensors: add, subtract, multiply, divide, relu, relu6, sigmoid, silu, "
             "hard_sigmoid, hard_silu, tanh. Replace the operation with a layer, or " + std::string(kOnnxHint));
      }
      if (!operation && !supported_layers().count(cls)) {
        const std::string what = cls == "Lambda" || cls == "TFOpLambda" || cls == "SlicingOpLambda"
                                     ? "Python code inside the model (" + cls + ") cannot be imported; we never run it"
                                     : "layer class '" + cls + "' is not supported";
        fail(ErrorCode::kUnsupportedOp, options_.source + ": layer '" + name + "' (" + cls + "): " + what,
             "supported layers: Conv2D, DepthwiseConv2D, SeparableConv2D, Dense, BatchNormalization, activations, "
             "pooling, Flatten, Reshape, Add/Multiply/Concatenate, ZeroPadding2D, Rescaling, Normalization. "
             "Replace the layer, or " + std::string(kOnnxHint));
      }
    }
  }

  int make_input(const std::string& name, const json* batch_shape) {
    if (!batch_shape || !batch_shape->is_array()) bad(name, "the input has no shape (batch_shape / batch_input_shape)");
    if (batch_shape->size() < 2 || batch_shape->size() > 6) {
      unsupported(name, "InputLayer", "inputs of rank " + std::to_string(batch_shape->size()) + " are not supported");
    }
    Shape s{ir::kBatch};
    for (std::size_t i = 1; i < batch_shape->size(); ++i) {
      std::int64_t d = 0;
      if ((*batch_shape)[i].is_null()) {
        std::string text = "(None";
        for (std::size_t j = 1; j < batch_shape->size(); ++j) {
          std::int64_t v = 0;
          text += ", " + ((*batch_shape)[j].is_null() ? std::string("None") : as_int((*batch_shape)[j], v) ? std::to_string(v) : "?");
        }
        fail(ErrorCode::kUnsupportedOp,
             options_.source + ": input '" + name + "' has a variable size " + text + ")",
             "rebuild the model with a fixed input size, e.g. keras.Input(shape=(224, 224, 3)), and save it again");
      }
      if (!as_int((*batch_shape)[i], d) || d < 1 || d > kMaxChannels) bad(name, "the input shape has an invalid size");
      s.push_back(d);
    }
    std::int64_t total = 0;
    if (!checked_product(s, kMaxActivation, total)) bad(name, "the input is too large");
    const ir::Layout layout = s.size() == 4 ? ir::Layout::kNHWC : s.size() == 2 ? ir::Layout::kNC : ir::Layout::kUnknown;
    const int id = graph_.add_input(name, s, layout);
    return s.size() == 4 ? to_nchw(id, name) : id;
  }

  static const json* input_shape_of(const json& cfg) {
    if (const json* s = get(cfg, "batch_shape")) return s;
    if (const json* s = get(cfg, "batch_input_shape")) return s;
    return nullptr;
  }

  std::string layer_name(const json& layer) const {
    if (const json* n = get(layer, "name"); n && n->is_string()) return n->get<std::string>();
    if (const json* cfg = get(layer, "config")) {
      if (const json* n = get(*cfg, "name"); n && n->is_string()) return n->get<std::string>();
    }
    fail(ErrorCode::kCorruptFile, options_.source + ": a layer in the model config has no name",
         "the model config is damaged; re-save the model with model.save(...)");
  }

  // Keras 3 names each layer's weight group after its class, numbered within its container.
  static std::vector<std::string> weight_keys(const json& layers, bool skip_input_layers) {
    std::map<std::string, int> used;
    std::vector<std::string> keys;
    for (const json& layer : layers) {
      const std::string cls = class_of(layer);
      // Keras 3 operations are not layers: they own no weights group and take no number.
      if ((skip_input_layers && cls == "InputLayer") || is_keras3_operation(layer)) {
        keys.emplace_back();
        continue;
      }
      std::string key = to_snake_case(cls);
      auto [it, fresh] = used.emplace(key, 0);
      if (!fresh) {
        key += '_';
        key += std::to_string(++it->second);
      }
      keys.push_back(key);
    }
    return keys;
  }

  std::vector<int> build_model(const json& model, const std::vector<int>* outer_inputs,
                               const std::vector<LayerPath::Step>& scope, int depth) {
    const std::string where = scope.empty() ? std::string("the model") : "sub-model '" + scope.back().name + "'";
    if (depth > kMaxModelDepth) fail(ErrorCode::kUnsupportedOp, options_.source + ": models nested deeper than " + std::to_string(kMaxModelDepth) + " levels", kOnnxHint);
    const json* cfg = get(model, "config");
    const json* layers = cfg ? get(*cfg, "layers") : nullptr;
    if (!layers || !layers->is_array()) {
      fail(ErrorCode::kCorruptFile, options_.source + ": " + where + " has no list of layers",
           "the model config is damaged; re-save the model with model.save(...)");
    }
    if (layers->size() > kMaxLayers) fail(ErrorCode::kUnsupportedOp, options_.source + ": " + where + " has too many layers");
    if (scope.empty()) {
      check_classes(*layers, 0);
      if (const json* n = get(*cfg, "name"); n && n->is_string()) graph_.name = n->get<std::string>();
    }
    const std::string cls = class_of(model);
    if (cls == "Sequential") return build_sequential(model, *cfg, *layers, outer_inputs, scope, depth);
    if (get(*cfg, "input_layers") && get(*cfg, "output_layers")) return build_functional(*cfg, *layers, outer_inputs, scope, depth);
    fail(ErrorCode::kUnsupportedOp, options_.source + ": " + where + " is a '" + cls + "', not a Sequential or Functional model",
         std::string("subclassed models have no config we can read; ") + kOnnxHint);
  }

  std::vector<int> build_sequential(const json& model, const json& cfg, const json& layers, const std::vector<int>* outer_inputs,
                                    const std::vector<LayerPath::Step>& scope, int depth) {
    const std::vector<std::string> keys = weight_keys(layers, true);
    int current = -1;
    if (outer_inputs) {
      if (outer_inputs->size() != 1) fail(ErrorCode::kCorruptFile, options_.source + ": a Sequential sub-model is called with " + std::to_string(outer_inputs->size()) + " inputs");
      current = (*outer_inputs)[0];
    } else {
      // The input shape: an InputLayer, the first layer's batch_input_shape, or the build shape.
      const json* shape = nullptr;
      std::string input_name = "input";
      if (!layers.empty()) {
        const json* first_cfg = get(layers[0], "config");
        if (first_cfg) shape = input_shape_of(*first_cfg);
        if (class_of(layers[0]) == "InputLayer") input_name = layer_name(layers[0]);
      }
      if (!shape) shape = get(cfg, "build_input_shape");
      if (!shape) {
        if (const json* build = get(model, "build_config")) shape = get(*build, "input_shape");
      }
      if (!shape) {
        fail(ErrorCode::kUnsupportedOp, options_.source + ": the Sequential model has no input shape",
             "build the model with an input, e.g. keras.Sequential([keras.Input(shape=(28, 28, 1)), ...]), and save it again");
      }
      current = make_input(input_name, shape);
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const json& layer = layers[i];
      if (class_of(layer) == "InputLayer") {
        if (i != 0) bad(layer_name(layer), "an InputLayer in the middle of a Sequential model");
        continue;
      }
      LayerPath path{scope, {layer_name(layer), keys[i]}};
      const std::vector<int> out = convert_layer(layer, {current}, path, depth);
      if (out.size() != 1) bad(path.layer.name, "a layer of a Sequential model must have one output");
      current = out[0];
    }
    return {current};
  }

  // [name, node, tensor] or [[name, node, tensor], ...] (Keras 3 writes a single one flat).
  // [name, node, tensor, ...]
  TensorRef parse_ref(const json& r, const std::string& what) const {
    std::int64_t node = 0;
    std::int64_t tensor = 0;
    if (!r.is_array() || r.size() < 3 || !r[0].is_string() || !as_int(r[1], node) || !as_int(r[2], tensor) ||
        node < 0 || tensor < 0 || node > 1 << 20 || tensor > 1 << 20) {
      fail(ErrorCode::kCorruptFile, options_.source + ": " + what + " has a malformed tensor reference",
           "the model config is damaged; re-save the model with model.save(...)");
    }
    return {r[0].get<std::string>(), node, tensor};
  }

  std::vector<TensorRef> parse_ref_list(const json& v, const std::string& what) const {
    std::vector<TensorRef> refs;
    if (v.is_array() && !v.empty() && v[0].is_string()) {
      refs.push_back(parse_ref(v, what));
    } else if (v.is_array()) {
      for (const json& r : v) refs.push_back(parse_ref(r, what));
    } else {
      fail(ErrorCode::kCorruptFile, options_.source + ": " + what + " is not a list");
    }
    return refs;
  }

  // Collects the Keras tensors a Keras 3 call passes in its positional arguments, in order.
  void collect_keras3_tensors(const json& v, std::vector<TensorRef>& out, const std::string& layer, int depth) const {
    if (depth > 8) bad(layer, "call arguments are nested too deeply");
    if (v.is_array()) {
      for (const json& item : v) collect_keras3_tensors(item, out, layer, depth + 1);
    } else if (v.is_object() && class_of(v) == "__keras_tensor__") {
      const json* c = get(v, "config");
      const json* history = c ? get(*c, "keras_history") : nullptr;
      if (!history) bad(layer, "a call argument has no keras_history");
      const auto refs = parse_ref_list(*history, "layer '" + layer + "'");
      out.insert(out.end(), refs.begin(), refs.end());
    }
  }

  // One call of a layer: the tensors it reads and its positional operands. Keras 3 operations
  // (`x + 3.0`) and Keras 2 TFOpLambda (`y=3.0`) may mix numbers with the tensors.
  struct CallArgs {
    std::vector<TensorRef> refs;
    std::vector<std::optional<double>> operands;  // nullopt: the next of `refs`; else a number
  };

  // The operand of a Keras 2 TFOpLambda's "y" keyword: a number or a tensor reference.
  void add_keyword_operand(const json& value, CallArgs& call, const std::string& name) const {
    if (value.is_number()) {
      if (!std::isfinite(value.get<double>())) bad(name, "a call argument is not finite");
      call.operands.emplace_back(value.get<double>());
    } else if (value.is_array() && !value.empty() && value[0].is_string()) {
      call.refs.push_back(parse_ref(value, "layer '" + name + "'"));
      call.operands.emplace_back(std::nullopt);
    } else {
      unsupported(name, "TFOpLambda", "its second operand is neither a number nor a tensor");
    }
  }

  // One entry per call of the layer.
  std::vector<CallArgs> parse_calls(const json& layer, const std::string& name) const {
    std::vector<CallArgs> calls;
    const json* nodes = get(layer, "inbound_nodes");
    if (!nodes) return calls;
    if (!nodes->is_array()) bad(name, "'inbound_nodes' is not a list");
    const bool operation = is_keras3_operation(layer);
    const bool tf_op = class_of(layer) == "TFOpLambda";
    for (const json& node : *nodes) {
      CallArgs call;
      if (node.is_object()) {  // Keras 3: {"args": [...], "kwargs": {...}}
        const json* args = get(node, "args");
        for (const json& item : args && args->is_array() ? *args : json::array()) {
          if (operation && item.is_number()) {
            if (!std::isfinite(item.get<double>())) bad(name, "a call argument is not finite");
            call.operands.emplace_back(item.get<double>());
            continue;
          }
          const std::size_t before = call.refs.size();
          collect_keras3_tensors(item, call.refs, name, 1);
          call.operands.resize(call.operands.size() + call.refs.size() - before);
        }
      } else if (node.is_array() && !node.empty() && node[0].is_string()) {
        // Keras 2, a single call argument written flat: [name, node, tensor, kwargs].
        call.refs.push_back(parse_ref(node, "layer '" + name + "'"));
        call.operands.emplace_back(std::nullopt);
      } else if (node.is_array()) {  // Keras 2: [[name, node, tensor, kwargs], ...]
        for (const json& r : node) {
          call.refs.push_back(parse_ref(r, "layer '" + name + "'"));
          call.operands.emplace_back(std::nullopt);
        }
      } else {
        bad(name, "an inbound node is malformed");
      }
      if (call.refs.empty()) bad(name, "a call of the layer has no input tensors");
      if (tf_op) {
        // TFOpLambda keeps the arguments after the first in that argument's kwargs.
        const json& first = node[0].is_string() ? node : node[0];
        if (first.size() > 3 && first[3].is_object()) {
          for (const auto& [key, value] : first[3].items()) {
            if (key == "name" && (value.is_null() || value.is_string())) continue;
            if (key != "y") unsupported(name, "TFOpLambda", "keyword argument '" + key + "' is not supported");
            add_keyword_operand(value, call, name);
          }
        }
      }
      calls.push_back(std::move(call));
    }
    return calls;
  }

  std::vector<int> build_functional(const json& cfg, const json& layers, const std::vector<int>* outer_inputs,
                                    const std::vector<LayerPath::Step>& scope, int depth) {
    const std::vector<std::string> keys = weight_keys(layers, false);
    std::map<std::string, std::size_t> index;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      names.push_back(layer_name(layers[i]));
      if (!index.emplace(names.back(), i).second) bad(names.back(), "two layers share this name");
    }
    std::map<TensorRef, int> produced;
    const std::vector<TensorRef> input_refs = parse_ref_list(*get(cfg, "input_layers"), "input_layers");
    if (outer_inputs && outer_inputs->size() != input_refs.size()) {
      fail(ErrorCode::kCorruptFile, options_.source + ": sub-model '" + scope.back().name + "' takes " +
                                        std::to_string(input_refs.size()) + " inputs but is called with " + std::to_string(outer_inputs->size()));
    }
    for (std::size_t i = 0; i < input_refs.size(); ++i) {
      const std::string& name = std::get<0>(input_refs[i]);
      auto it = index.find(name);
      if (it == index.end()) fail(ErrorCode::kCorruptFile, options_.source + ": input layer '" + name + "' is not among the layers");
      const json& layer = layers[it->second];
      if (class_of(layer) != "InputLayer") bad(name, "listed as an input but is not an InputLayer");
      const json* lcfg = get(layer, "config");
      produced[{name, 0, 0}] = outer_inputs ? (*outer_inputs)[i] : make_input(name, lcfg ? input_shape_of(*lcfg) : nullptr);
    }

    struct Call {
      std::size_t layer;
      std::int64_t node;
      CallArgs args;
    };
    std::vector<Call> pending;
    std::vector<std::vector<CallArgs>> calls_of(layers.size());
    std::map<std::string, std::int64_t> max_node_ref;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (class_of(layers[i]) == "InputLayer") continue;
      calls_of[i] = parse_calls(layers[i], names[i]);
      for (const auto& call : calls_of[i]) {
        for (const auto& ref : call.refs) {
          auto& m = max_node_ref[std::get<0>(ref)];
          m = std::max(m, std::get<1>(ref));
        }
      }
    }
    const std::vector<TensorRef> output_refs = parse_ref_list(*get(cfg, "output_layers"), "output_layers");
    for (const auto& ref : output_refs) {
      auto& m = max_node_ref[std::get<0>(ref)];
      m = std::max(m, std::get<1>(ref));
    }
    for (std::size_t i = 0; i < layers.size(); ++i) {
      // Keras 2 counts a nested model's own construction as its node 0, so its calls in this
      // model start at node 1; Keras 3 numbers them from 0.
      const auto n_calls = static_cast<std::int64_t>(calls_of[i].size());
      const bool is_model = model_classes().count(class_of(layers[i])) > 0;
      const std::int64_t offset = is_model && n_calls > 0 && max_node_ref[names[i]] >= n_calls ? 1 : 0;
      for (std::int64_t c = 0; c < n_calls; ++c) pending.push_back({i, c + offset, calls_of[i][static_cast<std::size_t>(c)]});
    }

    // Convert calls as their inputs become available (shared layers may be listed before the
    // layers feeding their later calls).
    while (!pending.empty()) {
      bool progress = false;
      std::vector<Call> waiting;
      for (Call& call : pending) {
        std::vector<int> tensors;
        bool ready = true;
        for (const auto& ref : call.args.refs) {
          auto it = produced.find(ref);
          if (it == produced.end()) {
            ready = false;
            break;
          }
          tensors.push_back(it->second);
        }
        if (!ready) {
          waiting.push_back(std::move(call));
          continue;
        }
        progress = true;
        LayerPath path{scope, {names[call.layer], keys[call.layer]}};
        // Numbers among the operands become one-element constants, which broadcast in any layout.
        std::vector<int> inputs;
        std::size_t next_tensor = 0;
        for (const auto& operand : call.args.operands) {
          if (!operand) {
            inputs.push_back(tensors.at(next_tensor++));
          } else {
            inputs.push_back(constant(names[call.layer] + "/operand" + std::to_string(inputs.size()), {1},
                                      {static_cast<float>(*operand)}, false));
          }
        }
        const std::vector<int> outs = convert_layer(layers[call.layer], inputs, path, depth);
        for (std::size_t t = 0; t < outs.size(); ++t) produced[{names[call.layer], call.node, static_cast<std::int64_t>(t)}] = outs[t];
      }
      if (!progress) {
        const auto& ref = waiting.front().args.refs.front();
        fail(ErrorCode::kCorruptFile,
             options_.source + ": layer '" + names[waiting.front().layer] + "' reads output " + std::to_string(std::get<2>(ref)) +
                 " of call " + std::to_string(std::get<1>(ref)) + " of '" + std::get<0>(ref) + "', which nothing produces",
             "the model config is damaged or has a cycle; re-save the model with model.save(...)");
      }
      pending = std::move(waiting);
    }
    std::vector<int> outputs;
    for (const auto& ref : output_refs) {
      auto it = produced.find(ref);
      if (it == produced.end()) {
        fail(ErrorCode::kCorruptFile, options_.source + ": model output '" + std::get<0>(ref) + "' is never produced",
             "the model config is damaged; re-save the model with model.save(...)");
      }
      outputs.push_back(it->second);
    }
    if (outputs.empty()) fail(ErrorCode::kCorruptFile, options_.source + ": " + (scope.empty() ? std::string("the model") : scope.back().name) + " has no outputs");
    return outputs;
  }

  ir::Graph graph_;
  WeightSource& weights_;
  BuildOptions options_;
  bool keras3_;
  std::vector<int> synthesized_;
  std::int64_t source_only_params_ = 0;
  std::int64_t synthetic_params_ = 0;
};

// Keras 3 configs mark dtypes as DTypePolicy objects and inputs with "batch_shape".
bool looks_like_keras3(const json& v, int depth = 0) {
  if (depth > 6) return false;
  if (v.is_object()) {
    if (v.contains("batch_shape")) return true;
    if (auto it = v.find("class_name"); it != v.end() && it->is_string() && *it == "DTypePolicy") return true;
    for (const auto& item : v.items()) {
      if (looks_like_keras3(item.value(), depth + 1)) return true;
    }
  } else if (v.is_array()) {
    for (const json& item : v) {
      if (looks_like_keras3(item, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace

ir::Graph build_graph(const json& model, WeightSource& weights, const BuildOptions& options) {
  if (!model.is_object()) {
    fail(ErrorCode::kCorruptFile, options.source + ": the model config is not a JSON object",
         "the model config is damaged; re-save the model with model.save(...)");
  }
  bool keras3 = false;
  if (!options.keras_version.empty()) {
    keras3 = options.keras_version[0] >= '3' && options.keras_version[0] <= '9';
  } else {
    keras3 = looks_like_keras3(model);
  }
  Builder builder(weights, options, keras3);
  ir::Graph graph = builder.finish(model);
  graph.producer = "keras " + (options.keras_version.empty() ? std::string(keras3 ? "3" : "2") : options.keras_version);
  return graph;
}

}  // namespace edgeopt::keras_import
