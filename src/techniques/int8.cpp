#include "techniques/int8.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "backend/executor.h"
#include "format/encoding.h"
#include "ir/text.h"

namespace edgeopt::techniques::int8 {
namespace {

using ir::Graph;
using ir::Node;
using ir::OpKind;


bool float_constant(const Graph& g, int id) {
  return id >= 0 && g.value(id).is_constant && g.value(id).dtype == ir::DType::kF32 && !g.value(id).f32.empty();
}

bool weighted(const Graph& g, const Node& n) {
  return (n.op == OpKind::kConv || n.op == OpKind::kGemm) && n.inputs.size() > 1 && float_constant(g, n.inputs[1]) &&
         (n.inputs.size() < 3 || n.inputs[2] < 0 || float_constant(g, n.inputs[2]));
}

// ReLUs reading a MaxPool that reads an int8 op's output (each the only consumer of the one
// before, as in PyTorch's conv -> max_pool -> relu), by the ReLU's output id, with that int8 op's
// output id. Max-pooling commutes with ReLU, so the int8 op's output can take the ReLU's range
// (zero point 0): the rounding clamps negatives to zero, and the ReLU itself costs nothing.
std::map<int, int> relus_after_pools(const Graph& g) {
  const std::vector<int> consumers = ir::consumer_counts(g);
  std::vector<const Node*> producer(g.values.size(), nullptr);
  for (const Node& n : g.nodes) producer[static_cast<std::size_t>(n.outputs[0])] = &n;
  std::map<int, int> found;
  for (const Node& relu : g.nodes) {
    const bool is_relu = relu.op == OpKind::kRelu || (relu.op == OpKind::kClip && relu.attrs.min == 0.0F);
    if (!is_relu || relu.inputs.empty() || relu.inputs[0] < 0) continue;
    const Node* pool = producer[static_cast<std::size_t>(relu.inputs[0])];
    if (!pool || pool->op != OpKind::kMaxPool || consumers[static_cast<std::size_t>(relu.inputs[0])] != 1) continue;
    const int source = pool->inputs[0];
    const Node* layer = source >= 0 ? producer[static_cast<std::size_t>(source)] : nullptr;
    if (!layer || consumers[static_cast<std::size_t>(source)] != 1) continue;
    if (layer->op == OpKind::kConv || layer->op == OpKind::kGemm || layer->op == OpKind::kAdd || layer->op == OpKind::kConcat) {
      found[relu.outputs[0]] = source;
    }
  }
  return found;
}

constexpr int kBins = 2048;

double expected_error(const Histogram& h, double lo, double hi) {
  const double scale = std::max(1e-12, (hi - lo) / 255.0);
  const double zero = std::clamp(std::round(-lo / scale), 0.0, 255.0);
  const double width = (static_cast<double>(h.max) - h.min) / static_cast<double>(h.counts.size());
  double err = 0;
  for (std::size_t b = 0; b < h.counts.size(); ++b) {
    if (h.counts[b] == 0) continue;
    const double x = h.min + (static_cast<double>(b) + 0.5) * width;
    const double q = std::clamp(std::round(x / scale) + zero, 0.0, 255.0);
    const double d = x - scale * (q - zero);
    err += h.counts[b] * d * d;
  }
  return err;
}

ir::QuantParams params_for(double lo, double hi) {
  lo = std::min(lo, 0.0);  // zero must be exactly representable (padding, ReLU)
  hi = std::max(hi, 0.0);
  if (hi - lo < 1e-8) hi = lo + 1e-8;
  const double scale = (hi - lo) / 255.0;
  ir::QuantParams q;
  q.scales = {static_cast<float>(scale)};
  q.zero_points = {static_cast<std::int32_t>(std::clamp(std::round(-lo / scale), 0.0, 255.0))};
  q.axis = -1;
  return q;
}

double quantile(const Histogram& h, double fraction) {
  double total = 0;
  for (double c : h.counts) total += c;
  const double width = (static_cast<double>(h.max) - h.min) / static_cast<double>(h.counts.size());
  double seen = 0;
  for (std::size_t b = 0; b < h.counts.size(); ++b) {
    seen += h.counts[b];
    if (seen >= fraction * total) return h.min + (static_cast<double>(b) + 1.0) * width;
  }
  return h.max;
}

std::int64_t argmax(const float* row, std::int64_t n) { return std::max_element(row, row + n) - row; }

}  // namespace

int fold_batchnorm(Graph& g) {
  const std::vector<int> consumers = ir::consumer_counts(g);
  std::vector<int> producer(g.values.size(), -1);
  for (std::size_t k = 0; k < g.nodes.size(); ++k) producer[static_cast<std::size_t>(g.nodes[k].outputs[0])] = static_cast<int>(k);
  std::vector<bool> remove(g.nodes.size(), false);
  int folded = 0;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const Node bn = g.nodes[k];
    if (bn.op != OpKind::kBatchNorm || bn.inputs.size() < 5) continue;
    const int in = bn.inputs[0];
    const int p = producer[static_cast<std::size_t>(in)];
    if (p < 0 || consumers[static_cast<std::size_t>(in)] != 1) continue;
    Node& layer = g.nodes[static_cast<std::size_t>(p)];
    if (!weighted(g, layer)) continue;
    if (!std::all_of(bn.inputs.begin() + 1, bn.inputs.begin() + 5, [&](int id) { return float_constant(g, id); })) continue;
    const auto& gamma = g.value(bn.inputs[1]).f32;
    const auto& beta = g.value(bn.inputs[2]).f32;
    const auto& mean = g.value(bn.inputs[3]).f32;
    const auto& var = g.value(bn.inputs[4]).f32;
    ir::Value& w = g.value(layer.inputs[1]);
    const auto channels = static_cast<std::size_t>(w.shape.at(0));
    if (gamma.size() != channels || beta.size() != channels || mean.size() != channels || var.size() != channels) continue;
    // A weight shared with another layer cannot be rescaled for this one alone.
    if (consumers[static_cast<std::size_t>(layer.inputs[1])] != 1) continue;
    if (layer.inputs.size() < 3 || layer.inputs[2] < 0) {
      layer.inputs.resize(3);
      layer.inputs[2] = g.add_constant(layer.name + ".bias_folded", {static_cast<std::int64_t>(channels)},
                                       std::vector<float>(channels, 0.0F));
    } else if (consumers[static_cast<std::size_t>(layer.inputs[2])] != 1) {
      continue;
    }
    ir::Value& weight = g.value(layer.inputs[1]);  // re-fetched: add_constant may have moved values
    ir::Value& bias = g.value(layer.inputs[2]);
    const std::size_t per_channel = weight.f32.size() / channels;
    for (std::size_t c = 0; c < channels; ++c) {
      const double factor = gamma[c] / std::sqrt(static_cast<double>(var[c]) + bn.attrs.epsilon);
      for (std::size_t i = 0; i < per_channel; ++i) weight.f32[c * per_channel + i] = static_cast<float>(weight.f32[c * per_channel + i] * factor);
      bias.f32[c] = static_cast<float>((bias.f32[c] - mean[c]) * factor + beta[c]);
    }
    layer.outputs[0] = bn.outputs[0];
    remove[k] = true;
    ++folded;
  }
  std::vector<Node> kept;
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    if (!remove[k]) kept.push_back(std::move(g.nodes[k]));
  }
  g.nodes = std::move(kept);
  return folded;
}

WeightReport quantize_weights(Graph& g, format::EomWriteOptions& encoding, bool sparse) {
  WeightReport report;
  std::set<int> done;
  for (const Node& n : g.nodes) {
    if (n.op != OpKind::kConv && n.op != OpKind::kGemm) continue;
    if (!weighted(g, n)) {
      report.float_layers.push_back(n.name + " (its weight is computed, not stored)");
      continue;
    }
    const int id = n.inputs[1];
    if (!done.insert(id).second) continue;
    ir::Value& w = g.value(id);
    const auto channels = w.shape.empty() ? 0 : w.shape[0];
    if (channels <= 0 || w.f32.size() % static_cast<std::size_t>(channels) != 0) {
      report.float_layers.push_back(n.name + " (unexpected weight shape " + ir::shape_to_string(w.shape) + ")");
      continue;
    }
    const std::size_t per_channel = w.f32.size() / static_cast<std::size_t>(channels);
    ir::QuantParams q;
    q.axis = 0;
    for (std::int64_t c = 0; c < channels; ++c) {
      float* row = w.f32.data() + static_cast<std::size_t>(c) * per_channel;
      float max_abs = 0;
      for (std::size_t i = 0; i < per_channel; ++i) max_abs = std::max(max_abs, std::abs(row[i]));
      const float scale = max_abs > 0 ? max_abs / 127.0F : 1.0F;
      for (std::size_t i = 0; i < per_channel; ++i) row[i] = scale * std::clamp(std::nearbyint(row[i] / scale), -127.0F, 127.0F);
      q.scales.push_back(scale);
      q.zero_points.push_back(0);
    }
    w.quant = q;
    encoding.per_constant[w.name] = sparse ? format::Encoding::sparse_int8(0) : format::Encoding::int8_per_channel(0);
    report.weight_ids.push_back(id);
  }
  return report;
}

std::vector<int> activation_ids(const Graph& g) {
  std::set<int> ids(g.inputs.begin(), g.inputs.end());
  auto int8_op = [](OpKind op) { return op == OpKind::kConv || op == OpKind::kGemm || op == OpKind::kAdd || op == OpKind::kConcat; };
  std::vector<int> producer(g.values.size(), -1);
  for (std::size_t k = 0; k < g.nodes.size(); ++k) producer[static_cast<std::size_t>(g.nodes[k].outputs[0])] = static_cast<int>(k);
  for (const Node& n : g.nodes) {
    if (int8_op(n.op)) {
      ids.insert(n.outputs[0]);
      // Float-only ops feeding an int8 op need their output quantized (e.g. a Sigmoid gate).
      for (int i : n.inputs) {
        if (i >= 0 && !g.value(i).is_constant && producer[static_cast<std::size_t>(i)] >= 0) ids.insert(i);
      }
    }
    const bool relu = n.op == OpKind::kRelu || (n.op == OpKind::kClip && n.attrs.min == 0.0F);
    if (relu && n.inputs[0] >= 0 && producer[static_cast<std::size_t>(n.inputs[0])] >= 0 &&
        int8_op(g.nodes[static_cast<std::size_t>(producer[static_cast<std::size_t>(n.inputs[0])])].op)) {
      ids.insert(n.outputs[0]);
    }
  }
  for (const auto& [relu, source] : relus_after_pools(g)) ids.insert(relu);
  for (int o : g.outputs) ids.erase(o);
  return {ids.begin(), ids.end()};
}

const char* range_method_name(RangeMethod method) {
  switch (method) {
    case RangeMethod::kMinMax: return "min-max";
    case RangeMethod::kPercentile: return "percentile 99.99 %";
    case RangeMethod::kMse: return "MSE";
  }
  return "?";
}

ir::QuantParams choose_range(const Histogram& h, RangeMethod method) {
  switch (method) {
    case RangeMethod::kMinMax: return params_for(h.min, h.max);
    case RangeMethod::kPercentile:
      return params_for(h.min < 0 ? quantile(h, 1e-4) : 0.0, quantile(h, 1.0 - 1e-4));
    case RangeMethod::kMse: {
      double best_lo = h.min;
      double best_hi = h.max;
      double best = expected_error(h, std::min<double>(h.min, 0.0), std::max<double>(h.max, 0.0));
      for (int s = 1; s < 40; ++s) {
        const double f = 1.0 - 0.02 * s;  // shrink the range towards zero, down to 22 %
        const double err = expected_error(h, std::min<double>(h.min, 0.0) * f, std::max<double>(h.max, 0.0) * f);
        if (err < best) {
          best = err;
          best_lo = h.min * f;
          best_hi = h.max * f;
        }
      }
      return params_for(best_lo, best_hi);
    }
  }
  return params_for(h.min, h.max);
}

void apply_activations(Graph& g, const std::map<int, ir::QuantParams>& activations) {
  for (auto& v : g.values) {
    if (!v.is_constant) v.quant.reset();
  }
  for (const auto& [id, q] : activations) g.value(id).quant = q;
}

Result<Calibration> calibrate(const Graph& graph, const data::ImageSet& images, const Context& context, double progress_begin,
                              double progress_end) {
  return capture([&]() -> Calibration {
    const std::vector<int> ids = activation_ids(graph);
    Graph float_graph = graph;
    apply_activations(float_graph, {});
    auto exec = backend::Executor::create(float_graph);
    if (!exec) throw Failure{exec.error()};
    const std::int64_t count = images.count;
    constexpr std::int64_t kBatch = 128;
    std::vector<float> batch;
    auto report = [&](double f, const std::string& message) {
      if (context.progress) context.progress(progress_begin + f * (progress_end - progress_begin), message);
      if (context.cancelled && context.cancelled()) fail(ErrorCode::kInvalidArgument, "cancelled");
    };
    // Pass 1: ranges and the float model's predictions; pass 2: histograms over those ranges.
    std::vector<Histogram> hist(ids.size());
    for (auto& h : hist) {
      h.min = std::numeric_limits<float>::max();
      h.max = std::numeric_limits<float>::lowest();
    }
    std::vector<std::int64_t> float_top1;
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1) {
        for (auto& h : hist) {
          if (h.max <= h.min) h.max = h.min + 1e-6F;
          h.counts.assign(kBins, 0.0);
        }
      }
      for (std::int64_t b = 0; b < count; b += kBatch) {
        const std::int64_t e = std::min(count, b + kBatch);
        pipeline::prepare_batch(images, b, e, context.spec, context.norm, batch);
        std::vector<int> wanted = ids;
        wanted.push_back(graph.outputs[0]);
        auto values = exec.value()->run_values(batch.data(), e - b, wanted);
        if (!values) throw Failure{values.error()};
        for (std::size_t i = 0; i < ids.size(); ++i) {
          Histogram& h = hist[i];
          const auto& v = (*values)[i];
          if (pass == 0) {
            const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
            if (lo != v.end()) {
              h.min = std::min(h.min, *lo);
              h.max = std::max(h.max, *hi);
            }
          } else {
            const double width = (static_cast<double>(h.max) - h.min) / kBins;
            for (float x : v) {
              const auto bin = std::clamp<std::int64_t>(static_cast<std::int64_t>((x - h.min) / width), 0, kBins - 1);
              h.counts[static_cast<std::size_t>(bin)] += 1;
            }
          }
        }
        if (pass == 0) {
          const auto& logits = values->back();
          const std::int64_t classes = static_cast<std::int64_t>(logits.size()) / (e - b);
          for (std::int64_t s = 0; s < e - b; ++s) float_top1.push_back(argmax(logits.data() + s * classes, classes));
        }
        report(0.5 * (static_cast<double>(pass) + static_cast<double>(e) / static_cast<double>(count)) * 0.5,
               pass == 0 ? "calibration: activation ranges" : "calibration: activation histograms");
      }
    }
    // Try each method with the int8 kernels.
    Calibration best;
    double best_accuracy = -1;
    double best_agreement = -1;
    const RangeMethod methods[] = {RangeMethod::kMinMax, RangeMethod::kPercentile, RangeMethod::kMse};
    const std::map<int, int> pooled_relus = relus_after_pools(graph);
    for (std::size_t m = 0; m < std::size(methods); ++m) {
      std::map<int, ir::QuantParams> acts;
      for (std::size_t i = 0; i < ids.size(); ++i) acts[ids[i]] = choose_range(hist[i], methods[m]);
      for (const auto& [relu, source] : pooled_relus) {
        if (acts.count(relu)) acts[source] = acts[relu];
      }
      Graph candidate = graph;
      apply_activations(candidate, acts);
      auto q = backend::Executor::create(candidate);
      if (!q) throw Failure{q.error()};
      std::int64_t correct = 0;
      std::int64_t agree = 0;
      for (std::int64_t b = 0; b < count; b += kBatch) {
        const std::int64_t e = std::min(count, b + kBatch);
        pipeline::prepare_batch(images, b, e, context.spec, context.norm, batch);
        auto logits = q.value()->run(batch.data(), e - b);
        if (!logits) throw Failure{logits.error()};
        const std::int64_t classes = static_cast<std::int64_t>(logits->size()) / (e - b);
        for (std::int64_t s = 0; s < e - b; ++s) {
          const std::int64_t top = argmax(logits->data() + s * classes, classes);
          correct += top == images.labels[static_cast<std::size_t>(b + s)];
          agree += top == float_top1[static_cast<std::size_t>(b + s)];
        }
      }
      const double accuracy = static_cast<double>(correct) / static_cast<double>(count);
      const double agreement = static_cast<double>(agree) / static_cast<double>(count);
      std::ostringstream note;
      note.precision(4);
      note << range_method_name(methods[m]) << " ranges: " << 100 * accuracy << " % top-1 on the " << count
           << " calibration images (" << 100 * agreement << " % agree with float)";
      best.notes.push_back(note.str());
      if (accuracy > best_accuracy || (accuracy == best_accuracy && agreement > best_agreement)) {
        best_accuracy = accuracy;
        best_agreement = agreement;
        best.method = methods[m];
        best.activations = std::move(acts);
      }
      report(0.5 + 0.5 * static_cast<double>(m + 1) / std::size(methods), std::string("calibration: tried ") + range_method_name(methods[m]));
    }
    return best;
  });
}

}  // namespace edgeopt::techniques::int8
