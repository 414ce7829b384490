#include "techniques/ptq_int4.h"

#include "format/encoding.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace edgeopt::techniques {
namespace {

// Share of the non-zero weights that quantization turned into zero: a layer whose small weights
// are wiped out by a few outliers looks fine by L2 error but is not.
double zeroed_share(const std::vector<float>& original, const std::vector<float>& quantized) {
  std::size_t nonzero = 0;
  std::size_t zeroed = 0;
  for (std::size_t i = 0; i < original.size(); ++i) {
    if (original[i] == 0.0F) continue;
    ++nonzero;
    if (quantized[i] == 0.0F) ++zeroed;
  }
  return nonzero ? static_cast<double>(zeroed) / static_cast<double>(nonzero) : 0.0;
}

double relative_error(const std::vector<float>& original, const std::vector<float>& quantized) {
  double err = 0;
  double norm = 0;
  for (std::size_t i = 0; i < original.size(); ++i) {
    const double d = static_cast<double>(original[i]) - quantized[i];
    err += d * d;
    norm += static_cast<double>(original[i]) * original[i];
  }
  return norm > 0 ? std::sqrt(err / norm) : 0.0;
}

}  // namespace

std::vector<float> quantize_groups(std::vector<float>& weights, std::int64_t channels, int group_size, int qmax,
                                   bool search_clipping) {
  const auto per_channel = static_cast<std::int64_t>(weights.size()) / channels;
  const std::int64_t group = group_size > 0 ? std::min<std::int64_t>(group_size, per_channel) : per_channel;
  const std::int64_t groups = (per_channel + group - 1) / group;
  std::vector<float> scales;
  scales.reserve(static_cast<std::size_t>(channels * groups));
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t g = 0; g < groups; ++g) {
      float* begin = weights.data() + c * per_channel + g * group;
      const std::int64_t n = std::min(group, per_channel - g * group);
      float max_abs = 0;
      for (std::int64_t i = 0; i < n; ++i) max_abs = std::max(max_abs, std::abs(begin[i]));
      if (max_abs == 0) {
        scales.push_back(1.0F);
        continue;
      }
      // Try shrinking the clipping range: outliers cost less than the resolution they steal.
      float best_scale = max_abs / static_cast<float>(qmax);
      double best_error = -1;
      const int steps = search_clipping ? 10 : 1;
      for (int s = 0; s < steps; ++s) {
        float scale = max_abs * (1.0F - 0.05F * static_cast<float>(s)) / static_cast<float>(qmax);
        // The file stores int4 scales as f16: compute with exactly the scale that will be stored.
        if (qmax == 7) scale = format::f16_to_f32(format::f32_to_f16(scale));
        double error = 0;
        for (std::int64_t i = 0; i < n; ++i) {
          const float q = std::clamp(std::round(begin[i] / scale), static_cast<float>(-qmax - 1), static_cast<float>(qmax));
          const double d = static_cast<double>(begin[i]) - q * scale;
          error += d * d;
        }
        if (best_error < 0 || error < best_error) {
          best_error = error;
          best_scale = scale;
        }
      }
      for (std::int64_t i = 0; i < n; ++i) {
        begin[i] = std::clamp(std::round(begin[i] / best_scale), static_cast<float>(-qmax - 1), static_cast<float>(qmax)) * best_scale;
      }
      scales.push_back(best_scale);
    }
  }
  return scales;
}

Result<Output> PtqInt4::run(const Context& context) const {
  return capture([&]() -> Output {
    Output out;
    out.graph = *context.baseline;
    // Weight-only: devices compute in float with the weights unpacked, so the estimator is asked
    // about fp32 arithmetic (conservative: it does not credit the smaller weight traffic).
    out.precision = "fp32";
    std::vector<std::string> int8_layers;
    std::int64_t int4_weights = 0;
    std::int64_t int8_weights = 0;
    int sparse_layers = 0;
    std::size_t done = 0;
    for (const ir::Node& node : out.graph.nodes) {
      ++done;
      if (node.op != ir::OpKind::kConv && node.op != ir::OpKind::kGemm) continue;
      if (node.inputs.size() < 2 || node.inputs[1] < 0) continue;
      ir::Value& w = out.graph.value(node.inputs[1]);
      if (!w.is_constant || w.dtype != ir::DType::kF32 || w.f32.empty()) continue;
      if (context.cancelled && context.cancelled()) fail(ErrorCode::kInvalidArgument, "cancelled");
      const std::int64_t channels = w.shape.at(0);
      const std::vector<float> original = w.f32;
      std::vector<float> trial = original;
      std::vector<float> scales;
      const std::int64_t fan_in = static_cast<std::int64_t>(original.size()) / std::max<std::int64_t>(1, channels);
      const bool too_small = static_cast<std::int64_t>(original.size()) < options_.min_elements;
      const bool narrow = fan_in < options_.min_fan_in;
      bool use_int4 = !too_small && !narrow;
      double error = 0;
      double zeroed = 0;
      if (use_int4) {
        scales = quantize_groups(trial, channels, options_.group_size, 7, true);
        error = relative_error(original, trial);
        zeroed = zeroed_share(original, trial);
        use_int4 = error <= options_.fallback_error && zeroed <= options_.max_zeroed_share;
      }
      const auto zeros = static_cast<double>(std::count(original.begin(), original.end(), 0.0F));
      const bool sparse = options_.sparse && zeros >= options_.sparse_min_zero_share * static_cast<double>(original.size());
      if (sparse) ++sparse_layers;
      if (use_int4) {
        w.f32 = std::move(trial);
        w.quant = ir::QuantParams{scales, {}, 0, options_.group_size};
        out.encoding.per_constant[w.name] =
            sparse ? format::Encoding::sparse_int4(options_.group_size, 0) : format::Encoding::int4_group(options_.group_size, 0);
        int4_weights += static_cast<std::int64_t>(original.size());
      } else {
        std::vector<float> q8 = original;
        const std::vector<float> s8 = quantize_groups(q8, channels, 0, 127, false);
        std::ostringstream why;
        why.precision(3);
        if (too_small) {
          why << node.name << " (" << original.size() << " weights, too small to group)";
        } else if (narrow) {
          why << node.name << " (" << fan_in << " weights per output channel, fewer than " << options_.min_fan_in
              << ": each channel would be one coarse int4 group)";
        } else {
          why << node.name << " (int4 error " << 100 * error << " %, " << 100 * zeroed << " % of weights zeroed)";
        }
        int8_layers.push_back(why.str());
        w.f32 = std::move(q8);
        w.quant = ir::QuantParams{s8, {}, 0, 0};
        out.encoding.per_constant[w.name] = sparse ? format::Encoding::sparse_int8(0) : format::Encoding::int8_per_channel(0);
        int8_weights += static_cast<std::int64_t>(original.size());
      }
      if (context.progress) context.progress(static_cast<double>(done) / static_cast<double>(out.graph.nodes.size()), "quantized " + node.name);
    }
    if (int4_weights + int8_weights == 0) {
      fail(ErrorCode::kUnsupportedOp, "the model has no Conv or Gemm weights to quantize", "ptq_int4 quantizes convolution and dense layers");
    }
    std::ostringstream s;
    s << int4_weights << " weights in int4 (groups of " << options_.group_size << ", MSE-searched clipping), " << int8_weights
      << " in int8";
    if (options_.sparse) s << "; " << sparse_layers << " layer(s) stored sparse (bitmask plus non-zero codes)";
    out.notes.push_back(s.str());
    if (!int8_layers.empty()) {
      std::string list;
      for (const auto& l : int8_layers) list += (list.empty() ? "" : ", ") + l;
      out.notes.push_back("kept in int8: " + list);
    }
    out.notes.push_back("weight-only: activations stay float; without int4 kernels the weights are unpacked to float at run time, so expect little or no speed-up");
    return out;
  });
}

std::vector<ParamField<PtqInt4Options>> PtqInt4::fields() {
  using O = PtqInt4Options;
  return {
      field<O>("group_size", [](O& o) -> auto& { return o.group_size; }, "weights of an output channel sharing one f16 scale (0: the whole channel)", 0, 1 << 20),
      field<O>("fallback_error", [](O& o) -> auto& { return o.fallback_error; }, "a layer whose relative int4 weight error exceeds this stays int8", 0, 10),
      field<O>("max_zeroed_share", [](O& o) -> auto& { return o.max_zeroed_share; }, "a layer with more of its non-zero weights rounded to zero stays int8", 0, 1),
      field<O>("min_elements", [](O& o) -> auto& { return o.min_elements; }, "weights with fewer elements stay int8", 0, 1e12),
      field<O>("min_fan_in", [](O& o) -> auto& { return o.min_fan_in; }, "layers with fewer weights per output channel stay int8", 0, 1e12),
      field<O>("sparse", [](O& o) -> auto& { return o.sparse; }, "store mostly-zero weights as a bitmask plus non-zero codes"),
  };
}

WorkEstimate PtqInt4::estimate_work(std::int64_t) const {
  return {0.0};  // no images: a clipping search over the weights, seconds at most
}

}  // namespace edgeopt::techniques
