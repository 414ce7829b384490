#include "backend/torch/torch_impl.h"
#include "backend/torch/tensor_ops.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <thread>

namespace edgeopt::backend::torch_impl {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;

std::vector<std::int64_t> pair_or(const std::vector<std::int64_t>& v, std::int64_t fallback) {
  return {v.size() > 0 ? v[0] : fallback, v.size() > 1 ? v[1] : fallback};
}

// Splits IR pads [top, left, bottom, right] into a symmetric part torch takes natively and
// whether an explicit pad is still needed.
struct SpatialPads {
  std::int64_t top = 0, left = 0, bottom = 0, right = 0;
  bool symmetric() const { return top == bottom && left == right; }
  std::vector<std::int64_t> torch_order() const { return {left, right, top, bottom}; }
};

SpatialPads spatial_pads(const std::vector<std::int64_t>& p) {
  SpatialPads s;
  if (p.size() == 4) {
    s.top = p[0];
    s.left = p[1];
    s.bottom = p[2];
    s.right = p[3];
  }
  return s;
}

// Below this many multiply-accumulates, a single image's convolution runs faster as im2col + GEMM
// than through oneDNN, whose per-call setup (~20 us) dominates; above it oneDNN wins, and it is
// the only one of the two that uses more than one thread at batch 1. Measured with LibTorch 1.13
// on x86 (see docs/techniques.md, "Small convolutions").
constexpr std::int64_t kSmallConvMacs = std::int64_t{1} << 20;

bool small_single_image_conv(const at::Tensor& x, const at::Tensor& w, std::int64_t group, const std::vector<std::int64_t>& strides,
                             const std::vector<std::int64_t>& padding, const std::vector<std::int64_t>& dilations) {
  if (x.dim() != 4 || x.size(0) != 1 || group != 1 || dilations[0] != 1 || dilations[1] != 1) return false;
  if (at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad())) return false;
  const std::int64_t out_h = (x.size(2) + 2 * padding[0] - w.size(2)) / strides[0] + 1;
  const std::int64_t out_w = (x.size(3) + 2 * padding[1] - w.size(3)) / strides[1] + 1;
  return out_h > 0 && out_w > 0 && w.numel() * out_h * out_w <= kSmallConvMacs;
}

at::Tensor conv(const Node& n, const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b) {
  const auto& a = n.attrs;
  const SpatialPads pads = spatial_pads(a.pads);
  const auto strides = pair_or(a.strides, 1);
  const auto dilations = pair_or(a.dilations, 1);
  const at::Tensor input = pads.symmetric() ? x : at::constant_pad_nd(x, pads.torch_order(), 0);
  const std::vector<std::int64_t> padding =
      pads.symmetric() ? std::vector<std::int64_t>{pads.top, pads.left} : std::vector<std::int64_t>{0, 0};
  if (small_single_image_conv(input, w, a.group, strides, padding, dilations)) {
    return at::thnn_conv2d(input.contiguous(), w.contiguous(), {w.size(2), w.size(3)}, b, strides, padding);
  }
  return at::conv2d(input, w, b, strides, padding, dilations, a.group);
}

at::Tensor max_pool(const Node& n, const at::Tensor& x) {
  const auto& a = n.attrs;
  const SpatialPads pads = spatial_pads(a.pads);
  const auto strides = pair_or(a.strides, 1);
  const auto dilations = pair_or(a.dilations, 1);
  const bool native = pads.symmetric() && 2 * pads.top <= a.kernel[0] && 2 * pads.left <= a.kernel[1];
  if (native) {
    return at::max_pool2d(x, a.kernel, strides, std::vector<std::int64_t>{pads.top, pads.left}, dilations, a.ceil_mode);
  }
  const at::Tensor padded = at::constant_pad_nd(x, pads.torch_order(), -std::numeric_limits<float>::infinity());
  return at::max_pool2d(padded, a.kernel, strides, std::vector<std::int64_t>{0, 0}, dilations, a.ceil_mode);
}

at::Tensor avg_pool(const Node& n, const at::Tensor& x) {
  const auto& a = n.attrs;
  const SpatialPads pads = spatial_pads(a.pads);
  const auto strides = pair_or(a.strides, 1);
  const bool native = pads.symmetric() && 2 * pads.top <= a.kernel[0] && 2 * pads.left <= a.kernel[1];
  if (native) {
    return at::avg_pool2d(x, a.kernel, strides, std::vector<std::int64_t>{pads.top, pads.left}, a.ceil_mode,
                          a.count_include_pad);
  }
  const at::Tensor padded = at::constant_pad_nd(x, pads.torch_order(), 0);
  const at::Tensor sums = at::avg_pool2d(padded, a.kernel, strides, std::vector<std::int64_t>{0, 0}, a.ceil_mode, true);
  if (a.count_include_pad) return sums;
  // Divide by the number of real (unpadded) cells in each window.
  const at::Tensor ones = at::constant_pad_nd(at::ones({1, 1, x.size(2), x.size(3)}, x.options()), pads.torch_order(), 0);
  const at::Tensor share = at::avg_pool2d(ones, a.kernel, strides, std::vector<std::int64_t>{0, 0}, a.ceil_mode, true);
  return sums / share;
}

at::Tensor pad(const Node& n, const at::Tensor& x) {
  const auto& a = n.attrs;
  const auto rank = static_cast<std::size_t>(x.dim());
  // ONNX order (all begins, then all ends) to torch order (last dim first, begin/end pairs).
  std::vector<std::int64_t> torch_pads;
  std::size_t last_padded = 0;
  for (std::size_t d = 0; d < rank; ++d) {
    if (a.pads[d] != 0 || a.pads[d + rank] != 0) last_padded = std::max(last_padded, rank - d);
  }
  for (std::size_t i = 0; i < last_padded; ++i) {
    const std::size_t d = rank - 1 - i;
    torch_pads.push_back(a.pads[d]);
    torch_pads.push_back(a.pads[d + rank]);
  }
  if (a.pad_mode == ir::PadMode::kConstant) return at::constant_pad_nd(x, torch_pads, a.pad_value);
  if (x.dim() != 4 || torch_pads.size() > 4) {
    fail(ErrorCode::kUnsupportedOp, "node '" + n.name + "': reflect/edge padding is supported on the spatial dims of 4-D tensors only");
  }
  torch_pads.resize(4, 0);
  return a.pad_mode == ir::PadMode::kReflect ? at::reflection_pad2d(x, torch_pads) : at::replication_pad2d(x, torch_pads);
}

at::Tensor reshape(const Node& n, const at::Tensor& x) {
  std::vector<std::int64_t> shape = n.attrs.shape;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) shape[i] = x.size(static_cast<std::int64_t>(i));
  }
  return x.reshape(shape);
}

at::Tensor flatten(const Node& n, const at::Tensor& x) {
  std::int64_t axis = n.attrs.axis < 0 ? n.attrs.axis + x.dim() : n.attrs.axis;
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= x.size(d);
  return x.reshape({outer, -1});
}

}  // namespace

at::Tensor eval_node(const Node& n, const std::vector<at::Tensor>& values, bool training) {
  auto in = [&](const Node& node, std::size_t i) -> const at::Tensor& { return values[static_cast<std::size_t>(node.inputs[i])]; };
  auto opt_in = [&](const Node& node, std::size_t i) -> c10::optional<at::Tensor> {
    if (i >= node.inputs.size() || node.inputs[i] < 0) return c10::nullopt;
    return values[static_cast<std::size_t>(node.inputs[i])];
  };
  {
    const auto& a = n.attrs;
    at::Tensor out;
    switch (n.op) {
      case OpKind::kConv: out = conv(n, in(n, 0), in(n, 1), opt_in(n, 2)); break;
      case OpKind::kGemm: out = at::linear(in(n, 0), in(n, 1), opt_in(n, 2)); break;
      case OpKind::kMatMul: out = at::matmul(in(n, 0), in(n, 1)); break;
      case OpKind::kAdd: out = in(n, 0) + in(n, 1); break;
      case OpKind::kSub: out = in(n, 0) - in(n, 1); break;
      case OpKind::kMul: out = in(n, 0) * in(n, 1); break;
      case OpKind::kDiv: out = in(n, 0) / in(n, 1); break;
      case OpKind::kRelu: out = at::relu(in(n, 0)); break;
      case OpKind::kClip: {
        const c10::optional<at::Scalar> lo = std::isinf(a.min) ? c10::nullopt : c10::optional<at::Scalar>(a.min);
        const c10::optional<at::Scalar> hi = std::isinf(a.max) ? c10::nullopt : c10::optional<at::Scalar>(a.max);
        out = lo || hi ? at::clamp(in(n, 0), lo, hi) : in(n, 0);
        break;
      }
      case OpKind::kLeakyRelu: out = at::leaky_relu(in(n, 0), a.alpha); break;
      case OpKind::kSigmoid: out = at::sigmoid(in(n, 0)); break;
      case OpKind::kHardSigmoid: out = at::clamp(in(n, 0) * a.alpha + a.beta, 0.0, 1.0); break;
      case OpKind::kHardSwish: out = at::hardswish(in(n, 0)); break;
      case OpKind::kTanh: out = at::tanh(in(n, 0)); break;
      case OpKind::kSoftmax: out = at::softmax(in(n, 0), a.axis); break;
      case OpKind::kLogSoftmax: out = at::log_softmax(in(n, 0), a.axis); break;
      case OpKind::kBatchNorm:
        out = at::batch_norm(in(n, 0), in(n, 1), in(n, 2), in(n, 3), in(n, 4), training, 0.1, a.epsilon, false);
        break;
      case OpKind::kMaxPool: out = max_pool(n, in(n, 0)); break;
      case OpKind::kAvgPool: out = avg_pool(n, in(n, 0)); break;
      case OpKind::kGlobalAvgPool: out = in(n, 0).mean({2, 3}, true); break;
      case OpKind::kFlatten: out = flatten(n, in(n, 0)); break;
      case OpKind::kReshape: out = reshape(n, in(n, 0)); break;
      case OpKind::kTranspose:
        // clone, not contiguous(): a permuted tensor with a size-1 dim can pass as contiguous while
        // keeping channels-last strides, which sends the next conv down a slower path (3x on a
        // 1-channel NHWC input).
        out = in(n, 0).permute(a.perm).clone(at::MemoryFormat::Contiguous);
        break;
      case OpKind::kConcat: {
        std::vector<at::Tensor> parts;
        parts.reserve(n.inputs.size());
        for (std::size_t i = 0; i < n.inputs.size(); ++i) parts.push_back(in(n, i));
        out = at::cat(parts, a.axis);
        break;
      }
      case OpKind::kPad: out = pad(n, in(n, 0)); break;
      case OpKind::kSqueeze: {
        out = in(n, 0);
        std::vector<std::int64_t> axes = a.axes;
        for (auto& ax : axes) ax = ax < 0 ? ax + out.dim() : ax;
        std::sort(axes.rbegin(), axes.rend());
        if (axes.empty()) out = out.squeeze();
        for (auto ax : axes) out = out.squeeze(ax);
        break;
      }
      case OpKind::kUnsqueeze: {
        out = in(n, 0);
        const std::int64_t rank = out.dim() + static_cast<std::int64_t>(a.axes.size());
        std::vector<std::int64_t> axes = a.axes;
        for (auto& ax : axes) ax = ax < 0 ? ax + rank : ax;
        std::sort(axes.begin(), axes.end());
        for (auto ax : axes) out = out.unsqueeze(ax);
        break;
      }
      case OpKind::kSlice: {
        // at::slice wraps negative bounds and clamps like ONNX; shape inference rejected bad steps.
        out = in(n, 0);
        for (std::size_t i = 0; i < a.axes.size(); ++i) {
          const std::int64_t axis = a.axes[i] < 0 ? a.axes[i] + out.dim() : a.axes[i];
          const std::int64_t step = i < a.steps.size() ? a.steps[i] : 1;
          out = at::slice(out, axis, a.starts.at(i), a.ends.at(i), step);
        }
        out = out.contiguous();
        break;
      }
      case OpKind::kIdentity: out = in(n, 0); break;
      case OpKind::kCount: fail(ErrorCode::kInternal, "node '" + n.name + "' has no op");
    }
    return out;
  }
}

namespace {

// Fake quantization for quantization-aware training (see TrainOptions::fake_quant_*).
struct FakeQuant {
  std::vector<int> weights;
  std::map<int, ir::QuantParams> activations;
  bool empty() const { return weights.empty() && activations.empty(); }
};

at::Tensor fake_quant_weight(const at::Tensor& w) {
  const at::Tensor absmax = w.detach().abs().reshape({w.size(0), -1}).amax(1).clamp_min(1e-8);
  const at::Tensor scale = (absmax / 127.0).to(torch::kFloat32);
  const at::Tensor zero = torch::zeros({w.size(0)}, torch::kInt32);
  return at::fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127);
}

at::Tensor fake_quant_activation(const at::Tensor& x, const ir::QuantParams& q) {
  return at::fake_quantize_per_tensor_affine(x, q.scales.at(0), q.zero_points.at(0), 0, 255);
}

// The graph's ops in order, on tensors. `values` holds constants on entry and every output after.
void forward(const Graph& g, std::vector<at::Tensor>& values, bool training, std::size_t node_count,
             const FakeQuant* fake_quant = nullptr) {
  if (fake_quant) {
    for (int id : fake_quant->weights) values[static_cast<std::size_t>(id)] = fake_quant_weight(values[static_cast<std::size_t>(id)]);
    for (int id : g.inputs) {
      if (auto it = fake_quant->activations.find(id); it != fake_quant->activations.end()) {
        values[static_cast<std::size_t>(id)] = fake_quant_activation(values[static_cast<std::size_t>(id)], it->second);
      }
    }
  }
  for (std::size_t k = 0; k < node_count; ++k) {
    const Node& n = g.nodes[k];
    at::Tensor out = eval_node(n, values, training);
    if (fake_quant) {
      if (auto it = fake_quant->activations.find(n.outputs[0]); it != fake_quant->activations.end()) {
        out = fake_quant_activation(out, it->second);
      }
    }
    values[static_cast<std::size_t>(n.outputs[0])] = std::move(out);
  }
}

}  // namespace

std::vector<at::Tensor> constant_tensors(const Graph& g) {
  std::vector<at::Tensor> values(g.values.size());
  for (std::size_t i = 0; i < g.values.size(); ++i) {
    const ir::Value& v = g.values[i];
    if (!v.is_constant || v.dtype != ir::DType::kF32 || v.f32.empty()) continue;
    std::vector<std::int64_t> shape(v.shape.begin(), v.shape.end());
    values[i] = torch::from_blob(const_cast<float*>(v.f32.data()), shape, torch::kFloat32).clone();
  }
  return values;
}

at::Tensor input_tensor(const Graph& g, const float* data, std::int64_t batch) {
  const ir::Shape& s = g.value(g.inputs.at(0)).shape;
  std::vector<std::int64_t> shape(s.begin(), s.end());
  if (shape.empty()) fail(ErrorCode::kInvalidArgument, "the model's input is a scalar");
  shape[0] = batch;
  return torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32);
}

void check_runnable(const Graph& g) {
  if (g.inputs.size() != 1) {
    fail(ErrorCode::kUnsupportedFormat, "the model has " + std::to_string(g.inputs.size()) + " inputs; EdgeOpt runs image classifiers with one input");
  }
  if (g.outputs.empty()) fail(ErrorCode::kCorruptFile, "the model has no outputs");
}

std::vector<std::vector<float>> pick_floats(const std::vector<at::Tensor>& values, const std::vector<int>& value_ids) {
  std::vector<std::vector<float>> out;
  for (int id : value_ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= values.size() || !values[static_cast<std::size_t>(id)].defined()) {
      fail(ErrorCode::kInvalidArgument, "value id " + std::to_string(id) + " is not computed by the model");
    }
    out.push_back(to_floats(values[static_cast<std::size_t>(id)]));
  }
  return out;
}

std::vector<float> to_floats(const at::Tensor& t) {
  const at::Tensor f = (t.is_quantized() ? t.dequantize() : t).contiguous().to(torch::kFloat32);
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
}

namespace {

double learning_rate_at(const TrainOptions& o, std::int64_t step, std::int64_t total) {
  const double progress = total > 0 ? static_cast<double>(step) / static_cast<double>(total) : 0.0;
  switch (o.schedule) {
    case TrainOptions::Schedule::kCosine: return o.learning_rate * 0.5 * (1.0 + std::cos(M_PI * progress));
    case TrainOptions::Schedule::kStep: return o.learning_rate * (progress < 0.5 ? 1.0 : progress < 0.75 ? 0.1 : 0.01);
    case TrainOptions::Schedule::kConstant: break;
  }
  return o.learning_rate;
}

// Random flips and padded crops of an NCHW batch, drawn from the training run's own generator.
at::Tensor augment(at::Tensor x, const TrainOptions& o, at::Generator& gen) {
  if (o.random_flip) {
    const at::Tensor flip = (at::rand({x.size(0)}, gen) < 0.5).view({-1, 1, 1, 1});
    x = at::where(flip, x.flip({3}), x);
  }
  if (o.crop_padding > 0) {
    const std::int64_t p = o.crop_padding, h = x.size(2), w = x.size(3);
    const at::Tensor padded = at::constant_pad_nd(x, {p, p, p, p}, 0);
    const at::Tensor offsets = at::randint(0, 2 * p + 1, {x.size(0), 2}, gen, torch::TensorOptions().dtype(torch::kInt64));
    const auto off = offsets.accessor<std::int64_t, 2>();
    std::vector<at::Tensor> crops;
    crops.reserve(static_cast<std::size_t>(x.size(0)));
    for (std::int64_t i = 0; i < x.size(0); ++i) {
      crops.push_back(padded[i].slice(1, off[i][0], off[i][0] + h).slice(2, off[i][1], off[i][1] + w));
    }
    x = at::stack(crops);
  }
  return x;
}

}  // namespace

void single_threaded_blas() {
  // LibTorch parallelises with its own OpenMP pool; Debian's OpenBLAS (pthread build) keeps a
  // second pool of busy-waiting threads. With both at N threads on N cores, batch-1 runs stalled
  // for milliseconds (p95 4 ms against a p50 of 0.13 ms on the Keras MNIST CNN at 2 threads; 0.16
  // ms with one BLAS thread), so BLAS runs inside LibTorch's threads only. Looked up at run time:
  // another BLAS may be installed in its place.
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
}

void set_threads(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  single_threaded_blas();
}

int thread_count() { return at::get_num_threads(); }

void set_seed(std::uint64_t seed) { torch::manual_seed(seed); }

class TorchExecutor final : public Executor {
 public:
  explicit TorchExecutor(const Graph& graph)
      : graph_(graph),
        constants_(constant_tensors(graph_)),
        in_elems_(ir::sample_elements(graph_.value(graph_.inputs[0]).shape)),
        out_elems_(ir::sample_elements(graph_.value(graph_.outputs[0]).shape)) {}

  std::int64_t input_elements() const override { return in_elems_; }
  std::int64_t output_elements() const override { return out_elems_; }

  Result<std::vector<float>> run(const float* data, std::int64_t batch) override {
    return capture([&]() -> std::vector<float> {
      try {
        c10::InferenceMode guard;
        std::vector<at::Tensor> values = constants_;
        values[static_cast<std::size_t>(graph_.inputs[0])] = input_tensor(graph_, data, batch);
        forward(graph_, values, false, graph_.nodes.size());
        return to_floats(values[static_cast<std::size_t>(graph_.outputs[0])]);
      } catch (const c10::Error& e) {
        fail(ErrorCode::kInternal, std::string("LibTorch refused to run the model: ") + e.what_without_backtrace(),
             "check the input shape; if it is right, please report the model");
      }
    });
  }

  Result<std::vector<std::vector<float>>> run_values(const float* data, std::int64_t batch,
                                                     const std::vector<int>& value_ids) override {
    return capture([&]() -> std::vector<std::vector<float>> {
      try {
        c10::InferenceMode guard;
        std::vector<at::Tensor> values = constants_;
        values[static_cast<std::size_t>(graph_.inputs[0])] = input_tensor(graph_, data, batch);
        forward(graph_, values, false, graph_.nodes.size());
        return pick_floats(values, value_ids);
      } catch (const c10::Error& e) {
        fail(ErrorCode::kInternal, std::string("LibTorch refused to run the model: ") + e.what_without_backtrace());
      }
    });
  }

 private:
  Graph graph_;
  std::vector<at::Tensor> constants_;
  std::int64_t in_elems_;
  std::int64_t out_elems_;
};

Result<std::unique_ptr<Executor>> create_executor(const ir::Graph& graph) {
  if (is_int8_graph(graph)) return create_int8_executor(graph);
  return capture([&]() -> std::unique_ptr<Executor> {
    check_runnable(graph);
    return std::make_unique<TorchExecutor>(graph);
  });
}

Result<TrainReport> train(ir::Graph& graph, const float* inputs, const std::int32_t* labels, std::int64_t count,
                          const TrainOptions& options) {
  return capture([&]() -> TrainReport {
    try {
      check_runnable(graph);
      if (count <= 0) fail(ErrorCode::kInvalidArgument, "no training samples");
      const bool augmenting = options.random_flip || options.crop_padding > 0;
      const ir::Value& input = graph.value(graph.inputs[0]);
      if (augmenting && (input.layout != ir::Layout::kNCHW || input.shape.size() != 4)) {
        fail(ErrorCode::kInvalidArgument, "flip/crop augmentation needs an NCHW image input; '" + input.name + "' is " +
                                              ir::layout_name(input.layout), "train without augmentation");
      }
      // A generator of its own, not the global one: techniques train concurrently in threads, and
      // each run must stay reproducible from its seed.
      at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
      std::vector<at::Tensor> constants = constant_tensors(graph);
      // Which constants are learnable: every float constant except BatchNorm running statistics.
      std::vector<bool> is_running_stat(graph.values.size(), false);
      for (const Node& n : graph.nodes) {
        if (n.op == OpKind::kBatchNorm) {
          is_running_stat[static_cast<std::size_t>(n.inputs[3])] = true;
          is_running_stat[static_cast<std::size_t>(n.inputs[4])] = true;
        }
      }
      std::vector<at::Tensor> params;
      std::vector<std::size_t> param_ids;
      for (std::size_t i = 0; i < constants.size(); ++i) {
        if (!constants[i].defined() || is_running_stat[i]) continue;
        constants[i].set_requires_grad(true);
        params.push_back(constants[i]);
        param_ids.push_back(i);
      }
      if (params.empty()) fail(ErrorCode::kInvalidArgument, "the model has no weights to train");
      // Train on logits: stop before a trailing (Log)Softmax.
      std::size_t node_count = graph.nodes.size();
      int logits_id = graph.outputs[0];
      if (node_count > 0) {
        const Node& last = graph.nodes[node_count - 1];
        if ((last.op == OpKind::kSoftmax || last.op == OpKind::kLogSoftmax) && last.outputs[0] == logits_id) {
          logits_id = last.inputs[0];
          --node_count;
        }
      }
      torch::optim::Adam optimizer(params, torch::optim::AdamOptions(options.learning_rate).weight_decay(options.weight_decay));
      std::map<int, at::Tensor> masks;
      for (const auto& [id, mask] : options.masks) {
        const auto u = static_cast<std::size_t>(id);
        if (u >= constants.size() || !constants[u].defined() || static_cast<std::int64_t>(mask.size()) != constants[u].numel()) {
          fail(ErrorCode::kInvalidArgument, "a sparsity mask does not match its weight (value id " + std::to_string(id) + ")");
        }
        masks[id] = torch::from_blob(const_cast<float*>(mask.data()), constants[u].sizes(), torch::kFloat32).clone();
        torch::NoGradGuard no_grad;
        constants[u].mul_(masks[id]);
      }
      FakeQuant fake_quant{options.fake_quant_weights, options.fake_quant_activations};
      for (int id : fake_quant.weights) {
        const auto u = static_cast<std::size_t>(id);
        if (u >= constants.size() || !constants[u].defined() || constants[u].dim() < 2) {
          fail(ErrorCode::kInvalidArgument, "fake quantization asks for value id " + std::to_string(id) + ", which is not a weight");
        }
      }
      for (const auto& [id, q] : fake_quant.activations) {
        if (q.scales.size() != 1 || q.zero_points.size() != 1 || !(q.scales[0] > 0)) {
          fail(ErrorCode::kInvalidArgument, "fake quantization of value id " + std::to_string(id) + " needs one positive scale and one zero point");
        }
      }
      // The teacher for distillation: frozen, inference mode, up to its logits.
      std::vector<at::Tensor> teacher_constants;
      std::size_t teacher_nodes = 0;
      int teacher_logits_id = -1;
      if (options.teacher) {
        check_runnable(*options.teacher);
        teacher_constants = constant_tensors(*options.teacher);
        teacher_nodes = options.teacher->nodes.size();
        teacher_logits_id = options.teacher->outputs[0];
        if (teacher_nodes > 0) {
          const Node& last = options.teacher->nodes[teacher_nodes - 1];
          if ((last.op == OpKind::kSoftmax || last.op == OpKind::kLogSoftmax) && last.outputs[0] == teacher_logits_id) {
            teacher_logits_id = last.inputs[0];
            --teacher_nodes;
          }
        }
      }
      const std::int64_t batches = (count + options.batch_size - 1) / options.batch_size;
      const std::int64_t total = batches * options.epochs;
      const at::Tensor all_x = input_tensor(graph, inputs, count);
      const at::Tensor all_y = torch::from_blob(const_cast<std::int32_t*>(labels), {count}, torch::kInt32).to(torch::kInt64);
      TrainReport report;
      for (int epoch = 0; epoch < options.epochs && !report.stopped_early; ++epoch) {
        const at::Tensor order = at::randperm(count, gen, torch::TensorOptions().dtype(torch::kInt64));
        for (std::int64_t b = 0; b < batches; ++b) {
          const std::int64_t lo = b * options.batch_size;
          const std::int64_t hi = std::min(count, lo + options.batch_size);
          const at::Tensor idx = order.slice(0, lo, hi);
          std::vector<at::Tensor> values = constants;
          const at::Tensor batch_x = all_x.index_select(0, idx);
          values[static_cast<std::size_t>(graph.inputs[0])] = augmenting ? augment(batch_x, options, gen) : batch_x;
          const double lr = learning_rate_at(options, report.steps, total);
          for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
          const at::Tensor& batch_input = values[static_cast<std::size_t>(graph.inputs[0])];
          at::Tensor teacher_logits;
          if (options.teacher) {
            torch::NoGradGuard no_grad;
            std::vector<at::Tensor> t_values = teacher_constants;
            t_values[static_cast<std::size_t>(options.teacher->inputs[0])] = batch_input;
            forward(*options.teacher, t_values, false, teacher_nodes);
            teacher_logits = t_values[static_cast<std::size_t>(teacher_logits_id)].reshape({hi - lo, -1});
          }
          forward(graph, values, true, node_count, fake_quant.empty() ? nullptr : &fake_quant);
          const at::Tensor logits = values[static_cast<std::size_t>(logits_id)].reshape({hi - lo, -1});
          at::Tensor loss = torch::nn::functional::cross_entropy(logits, all_y.index_select(0, idx));
          if (options.teacher) {
            if (teacher_logits.size(1) != logits.size(1)) {
              fail(ErrorCode::kInvalidArgument, "the teacher gives " + std::to_string(teacher_logits.size(1)) + " logits and the student " +
                                                    std::to_string(logits.size(1)));
            }
            const double t = options.distill_temperature;
            const at::Tensor soft = torch::nn::functional::kl_div(
                torch::log_softmax(logits / t, 1), torch::softmax(teacher_logits / t, 1),
                torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean));
            loss = options.distill_alpha * t * t * soft + (1.0 - options.distill_alpha) * loss;
          }
          optimizer.zero_grad();
          loss.backward();
          optimizer.step();
          if (!masks.empty()) {
            torch::NoGradGuard no_grad;
            for (auto& [id, mask] : masks) constants[static_cast<std::size_t>(id)].mul_(mask);
          }
          const float l = loss.item<float>();
          if (report.steps == 0) report.first_loss = l;
          report.last_loss = l;
          ++report.steps;
          if (options.on_step && !options.on_step(report.steps, total, l)) {
            report.stopped_early = true;
            break;
          }
        }
      }
      // Write weights and running statistics back into the IR.
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < constants.size(); ++i) {
        if (!constants[i].defined()) continue;
        const at::Tensor t = constants[i].detach().contiguous();
        std::copy(t.data_ptr<float>(), t.data_ptr<float>() + t.numel(), graph.values[i].f32.begin());
      }
      return report;
    } catch (const c10::Error& e) {
      fail(ErrorCode::kInternal, std::string("LibTorch failed while training: ") + e.what_without_backtrace());
    }
  });
}

}  // namespace edgeopt::backend::torch_impl
