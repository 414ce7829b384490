// Runs int8 graphs on LibTorch's quantized kernels (oneDNN on x86, QNNPACK on ARM), so the
// accuracy and host latency reported for an int8 variant come from real int8 arithmetic.
//
// An int8 graph is an IR graph whose Conv/Gemm weights carry per-channel symmetric quantization
// parameters (their float data is exactly scale · q) and whose activations carry per-tensor uint8
// parameters. Conv, Gemm, Add and Concat run as int8 kernels producing int8 outputs; a ReLU that is
// the only consumer of one of them is fused into it; ReLU, max-pooling, global average pooling and
// reshapes run directly on int8 tensors; every other op runs in float on dequantized inputs and
// its output is quantized again when the graph gives it parameters.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/torch/tensor_ops.h"
#include "backend/torch/torch_impl.h"

namespace edgeopt::backend::torch_impl {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;

// The best int8 engine this LibTorch build has: oneDNN/x86/FBGEMM on x86, QNNPACK on ARM.
void select_engine() {
  static const bool selected = [] {
    const auto& engines = at::globalContext().supportedQEngines();
    for (at::QEngine e : {at::QEngine::X86, at::QEngine::ONEDNN, at::QEngine::FBGEMM, at::QEngine::QNNPACK}) {
      if (std::find(engines.begin(), engines.end(), e) != engines.end()) {
        at::globalContext().setQEngine(e);
        return true;
      }
    }
    return false;
  }();
  if (!selected) {
    fail(ErrorCode::kUnsupportedOp, "this LibTorch build has no int8 engine (FBGEMM, oneDNN or QNNPACK)",
         "install a LibTorch built with quantized kernels, or use the fp32 variants");
  }
}

c10::OperatorHandle op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

at::Tensor call(const c10::OperatorHandle& handle, std::vector<c10::IValue> stack) {
  handle.callBoxed(&stack);
  return stack.at(0).toTensor();
}

enum class Step : std::uint8_t {
  kFloat,        // dequantize inputs, float op, quantize the output if it has parameters
  kConv,         // quantized::conv2d(_relu)
  kLinear,       // quantized::linear(_relu)
  kAdd,          // quantized::add(_relu)
  kConcat,       // quantized::cat
  kPassthrough,  // the float op applied to an int8 tensor; the output keeps the input's parameters
  kFused,        // a ReLU folded into the node before it: the output is that node's output
};

struct Plan {
  Step step = Step::kFloat;
  bool relu = false;         // kConv/kLinear/kAdd: fused ReLU
  int result = -1;           // the value id holding the node's result (the fused ReLU's output)
  double scale = 1.0;        // output parameters of an int8 step
  std::int64_t zero_point = 0;
  // Prepacked weights, called directly (no dispatcher round trip per run).
  c10::intrusive_ptr<ConvPackedParamsBase<2>> conv;
  c10::intrusive_ptr<LinearPackedParamsBase> linear;
};

bool has_activation_quant(const ir::Value& v) {
  return !v.is_constant && v.quant && v.quant->scales.size() == 1 && v.quant->zero_points.size() == 1;
}

bool symmetric_pads(const std::vector<std::int64_t>& p) { return p.size() != 4 || (p[0] == p[2] && p[1] == p[3]); }

bool is_relu(const Node& n) {
  return n.op == OpKind::kRelu || (n.op == OpKind::kClip && n.attrs.min == 0.0F && std::isinf(n.attrs.max) && n.attrs.max > 0);
}

bool passthrough(const Node& n) {
  switch (n.op) {
    case OpKind::kRelu:
    case OpKind::kGlobalAvgPool:
    case OpKind::kFlatten:
    case OpKind::kReshape:
    case OpKind::kIdentity:
    case OpKind::kSqueeze:
    case OpKind::kUnsqueeze:
      return true;
    case OpKind::kMaxPool: return symmetric_pads(n.attrs.pads) && (n.attrs.pads.size() != 4 || (2 * n.attrs.pads[0] <= n.attrs.kernel.at(0) && 2 * n.attrs.pads[1] <= n.attrs.kernel.at(1)));
    case OpKind::kClip: return !std::isinf(n.attrs.min) || !std::isinf(n.attrs.max);
    default: return false;
  }
}

at::Tensor quantize(const at::Tensor& x, const ir::QuantParams& q) {
  return at::quantize_per_tensor(x.contiguous(), q.scales[0], q.zero_points[0], at::kQUInt8);
}

at::Tensor quantized_weight(const ir::Value& w, const at::Tensor& data) {
  const auto& q = *w.quant;
  const at::Tensor scales = torch::tensor(std::vector<double>(q.scales.begin(), q.scales.end()), torch::kFloat64);
  const at::Tensor zeros = torch::zeros({static_cast<std::int64_t>(q.scales.size())}, torch::kInt64);
  return at::quantize_per_channel(data, scales, zeros, 0, at::kQInt8);
}

bool per_channel_weight(const ir::Value& w) {
  return w.is_constant && w.quant && w.quant->axis == 0 && w.quant->group_size == 0 && !w.shape.empty() &&
         static_cast<std::int64_t>(w.quant->scales.size()) == w.shape[0] &&
         std::all_of(w.quant->zero_points.begin(), w.quant->zero_points.end(), [](std::int32_t z) { return z == 0; });
}

class Int8Executor final : public Executor {
 public:
  explicit Int8Executor(const Graph& graph)
      : graph_(graph),
        constants_(constant_tensors(graph_)),
        in_elems_(ir::sample_elements(graph_.value(graph_.inputs[0]).shape)),
        out_elems_(ir::sample_elements(graph_.value(graph_.outputs[0]).shape)) {
    select_engine();
    plan();
  }

  std::int64_t input_elements() const override { return in_elems_; }
  std::int64_t output_elements() const override { return out_elems_; }

  Result<std::vector<float>> run(const float* data, std::int64_t batch) override {
    return capture([&]() -> std::vector<float> {
      std::vector<at::Tensor> values = forward(data, batch);
      return to_floats(values[static_cast<std::size_t>(graph_.outputs[0])]);
    });
  }

  Result<std::vector<std::vector<float>>> run_values(const float* data, std::int64_t batch,
                                                     const std::vector<int>& value_ids) override {
    return capture([&]() -> std::vector<std::vector<float>> {
      std::vector<at::Tensor> values = forward(data, batch);
      return pick_floats(values, value_ids);
    });
  }

  // How many nodes run as int8 kernels, for tests and notes.
  std::size_t int8_kernel_count() const {
    return static_cast<std::size_t>(std::count_if(plans_.begin(), plans_.end(), [](const Plan& p) {
      return p.step == Step::kConv || p.step == Step::kLinear || p.step == Step::kAdd || p.step == Step::kConcat;
    }));
  }

 private:
  void plan() {
    const std::vector<int> consumers = ir::consumer_counts(graph_);
    plans_.assign(graph_.nodes.size(), Plan{});
    std::vector<bool> quantized(graph_.values.size(), false);  // will the value hold an int8 tensor?
    for (int id : graph_.inputs) quantized[static_cast<std::size_t>(id)] = has_activation_quant(graph_.value(id));
    auto quantizable_input = [&](int id) {
      return id >= 0 && (quantized[static_cast<std::size_t>(id)] || has_activation_quant(graph_.value(id)));
    };
    for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
      const Node& n = graph_.nodes[k];
      Plan& p = plans_[k];
      p.result = n.outputs[0];
      if (p.step == Step::kFused) continue;
      const ir::Value& out = graph_.value(n.outputs[0]);
      const bool out_quant = has_activation_quant(out);
      const bool weighted = (n.op == OpKind::kConv || n.op == OpKind::kGemm) && n.inputs.size() > 1 && n.inputs[1] >= 0 &&
                            per_channel_weight(graph_.value(n.inputs[1])) && quantizable_input(n.inputs[0]) &&
                            (n.inputs.size() < 3 || n.inputs[2] < 0 || graph_.value(n.inputs[2]).is_constant);
      if (weighted && out_quant && (n.op == OpKind::kGemm || symmetric_pads(n.attrs.pads))) {
        p.step = n.op == OpKind::kConv ? Step::kConv : Step::kLinear;
      } else if (n.op == OpKind::kAdd && out_quant && n.inputs.size() == 2 && quantizable_input(n.inputs[0]) &&
                 quantizable_input(n.inputs[1]) && graph_.value(n.inputs[0]).shape == graph_.value(n.inputs[1]).shape) {
        p.step = Step::kAdd;
      } else if (n.op == OpKind::kConcat && out_quant &&
                 std::all_of(n.inputs.begin(), n.inputs.end(), [&](int i) { return quantizable_input(i); })) {
        p.step = Step::kConcat;
      } else if (passthrough(n) && quantized[static_cast<std::size_t>(n.inputs[0])]) {
        p.step = Step::kPassthrough;
      }
      if (p.step == Step::kConv || p.step == Step::kLinear || p.step == Step::kAdd) {
        // Fuse a ReLU that is this node's only consumer.
        if (consumers[static_cast<std::size_t>(n.outputs[0])] == 1) {
          for (std::size_t j = k + 1; j < graph_.nodes.size(); ++j) {
            const Node& next = graph_.nodes[j];
            if (std::find(next.inputs.begin(), next.inputs.end(), n.outputs[0]) == next.inputs.end()) continue;
            if (is_relu(next) && next.inputs.size() == 1) {
              p.relu = true;
              p.result = next.outputs[0];
              plans_[j].step = Step::kFused;
              plans_[j].result = next.outputs[0];
            }
            break;
          }
        }
        const ir::Value& result = graph_.value(p.result);
        const ir::QuantParams& q = has_activation_quant(result) ? *result.quant : *out.quant;
        p.scale = q.scales[0];
        p.zero_point = q.zero_points[0];
        try {
          if (p.step != Step::kAdd) prepack(n, p);
        } catch (const c10::Error& e) {
          fail(ErrorCode::kInternal, "node '" + n.name + "': LibTorch could not prepare its int8 kernel: " + e.what_without_backtrace(),
               "use the fp32 variant and please report the model");
        }
      } else if (p.step == Step::kConcat) {
        p.scale = out.quant->scales[0];
        p.zero_point = out.quant->zero_points[0];
      }
      const bool int8_out = p.step == Step::kConv || p.step == Step::kLinear || p.step == Step::kAdd || p.step == Step::kConcat ||
                            p.step == Step::kPassthrough || (p.step == Step::kFloat && out_quant);
      quantized[static_cast<std::size_t>(p.result)] = int8_out;
      quantized[static_cast<std::size_t>(n.outputs[0])] = int8_out;
    }
  }

  void prepack(const Node& n, Plan& p) {
    const ir::Value& w = graph_.value(n.inputs[1]);
    const at::Tensor qw = quantized_weight(w, constants_[static_cast<std::size_t>(n.inputs[1])]);
    c10::optional<at::Tensor> bias;
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) bias = constants_[static_cast<std::size_t>(n.inputs[2])];
    std::vector<c10::IValue> stack;
    if (n.op == OpKind::kConv) {
      const auto& a = n.attrs;
      auto pair = [](const std::vector<std::int64_t>& v, std::int64_t fallback) {
        return c10::List<std::int64_t>({v.size() > 0 ? v[0] : fallback, v.size() > 1 ? v[1] : fallback});
      };
      const std::vector<std::int64_t> pads = a.pads.size() == 4 ? std::vector<std::int64_t>{a.pads[0], a.pads[1]} : std::vector<std::int64_t>{0, 0};
      stack = {qw, bias, pair(a.strides, 1), pair(pads, 0), pair(a.dilations, 1), static_cast<std::int64_t>(a.group)};
      static const c10::OperatorHandle handle = op("quantized::conv2d_prepack", "");
      handle.callBoxed(&stack);
    } else {
      stack = {qw, bias};
      static const c10::OperatorHandle handle = op("quantized::linear_prepack", "");
      handle.callBoxed(&stack);
    }
    if (n.op == OpKind::kConv) p.conv = stack.at(0).toCustomClass<ConvPackedParamsBase<2>>();
    else p.linear = stack.at(0).toCustomClass<LinearPackedParamsBase>();
  }

  std::vector<at::Tensor> forward(const float* data, std::int64_t batch) {
    try {
      c10::InferenceMode guard;
      std::vector<at::Tensor> values = constants_;
      const int input = graph_.inputs[0];
      at::Tensor x = input_tensor(graph_, data, batch);
      if (has_activation_quant(graph_.value(input))) x = quantize(x, *graph_.value(input).quant);
      values[static_cast<std::size_t>(input)] = x;
      for (std::size_t k = 0; k < graph_.nodes.size(); ++k) run_node(k, values);
      return values;
    } catch (const c10::Error& e) {
      fail(ErrorCode::kInternal, std::string("LibTorch's int8 kernels refused to run the model: ") + e.what_without_backtrace(),
           "use the fp32 variant and please report the model");
    }
  }

  at::Tensor as_int8(const std::vector<at::Tensor>& values, int id) const {
    const at::Tensor& t = values[static_cast<std::size_t>(id)];
    if (t.is_quantized()) return t;
    return quantize(t, *graph_.value(id).quant);
  }

  void run_node(std::size_t k, std::vector<at::Tensor>& values) {
    static const c10::OperatorHandle add = op("quantized::add", "");
    static const c10::OperatorHandle add_relu = op("quantized::add_relu", "");
    static const c10::OperatorHandle cat = op("quantized::cat", "");
    const Node& n = graph_.nodes[k];
    const Plan& p = plans_[k];
    at::Tensor out;
    switch (p.step) {
      case Step::kFused: return;  // computed with the node before it
      case Step::kConv: {
        const at::Tensor x = as_int8(values, n.inputs[0]);
        out = p.relu ? p.conv->apply_relu(x, p.scale, p.zero_point) : p.conv->apply(x, p.scale, p.zero_point);
        break;
      }
      case Step::kLinear: {
        const at::Tensor x = as_int8(values, n.inputs[0]);
        out = p.relu ? p.linear->apply_relu(x, p.scale, p.zero_point) : p.linear->apply(x, p.scale, p.zero_point);
        break;
      }
      case Step::kAdd:
        out = call(p.relu ? add_relu : add, {as_int8(values, n.inputs[0]), as_int8(values, n.inputs[1]), p.scale, p.zero_point});
        break;
      case Step::kConcat: {
        c10::List<at::Tensor> parts;
        for (int i : n.inputs) parts.push_back(as_int8(values, i));
        out = call(cat, {parts, static_cast<std::int64_t>(n.attrs.axis), c10::optional<double>(p.scale),
                         c10::optional<std::int64_t>(p.zero_point)});
        break;
      }
      case Step::kPassthrough: {
        const at::Tensor& x = values[static_cast<std::size_t>(n.inputs[0])];
        if (n.op == OpKind::kGlobalAvgPool) {
          out = at::adaptive_avg_pool2d(x, {1, 1});
        } else if (n.op == OpKind::kRelu && x.qscheme() == at::kPerTensorAffine && x.q_zero_point() == 0) {
          out = x;  // uint8 with zero point 0 holds no negatives: ReLU is the identity
        } else {
          out = eval_node(n, values, false);
        }
        break;
      }
      case Step::kFloat: {
        std::vector<at::Tensor> local;  // dequantized copies of int8 inputs, only where needed
        bool any_int8 = false;
        for (int i : n.inputs) any_int8 = any_int8 || (i >= 0 && values[static_cast<std::size_t>(i)].is_quantized());
        if (any_int8) {
          local = values;
          for (int i : n.inputs) {
            if (i >= 0 && local[static_cast<std::size_t>(i)].is_quantized()) local[static_cast<std::size_t>(i)] = local[static_cast<std::size_t>(i)].dequantize();
          }
        }
        out = eval_node(n, any_int8 ? local : values, false);
        const ir::Value& o = graph_.value(n.outputs[0]);
        if (has_activation_quant(o)) out = quantize(out, *o.quant);
        break;
      }
    }
    values[static_cast<std::size_t>(p.result)] = out;
    if (p.result != n.outputs[0]) values[static_cast<std::size_t>(n.outputs[0])] = out;
  }

  Graph graph_;
  std::vector<at::Tensor> constants_;
  std::vector<Plan> plans_;
  std::int64_t in_elems_;
  std::int64_t out_elems_;
};

}  // namespace

bool is_int8_graph(const ir::Graph& graph) {
  return std::any_of(graph.values.begin(), graph.values.end(), [](const ir::Value& v) { return has_activation_quant(v); });
}

Result<std::unique_ptr<Executor>> create_int8_executor(const ir::Graph& graph) {
  return capture([&]() -> std::unique_ptr<Executor> {
    check_runnable(graph);
    try {
      return std::make_unique<Int8Executor>(graph);
    } catch (const c10::Error& e) {
      fail(ErrorCode::kInternal, std::string("LibTorch could not prepare the int8 kernels: ") + e.what_without_backtrace(),
           "use the fp32 variant and please report the model");
    }
  });
}

}  // namespace edgeopt::backend::torch_impl
