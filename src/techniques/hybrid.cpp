#include "techniques/hybrid.h"

#include <algorithm>
#include <sstream>

#include "techniques/ptq_int8.h"

namespace edgeopt::techniques {

Result<Output> Hybrid::run(const Context& context) const {
  return capture([&]() -> Output {
    // Pruning takes most of the time: 85 % of the progress bar.
    Context prune_context = context;
    prune_context.progress = [&](double f, const std::string& message) {
      if (context.progress) context.progress(0.85 * f, "pruning: " + message);
    };
    auto pruned = PruneUnstructured(options_.prune).run(prune_context);
    if (!pruned) throw Failure{pruned.error()};
    Result<Output> out = Error{ErrorCode::kInternal, "not quantized"};
    if (options_.int4) {
      Context int4_context = context;
      int4_context.baseline = &pruned->graph;
      int4_context.progress = [&](double f, const std::string& message) {
        if (context.progress) context.progress(0.85 + 0.15 * f, "int4: " + message);
      };
      out = PtqInt4(options_.int4_options).run(int4_context);
    } else {
      out = int8::quantize_static(pruned->graph, context, options_.calibration_images, true, 0.85, 1.0);
    }
    if (!out) throw Failure{out.error()};
    // Quantization keeps zeros: check it, since the size claim depends on it.
    std::int64_t zeros_before = 0;
    std::int64_t zeros_after = 0;
    for (const ir::Value& v : pruned->graph.values) {
      if (v.is_constant && v.dtype == ir::DType::kF32) zeros_before += std::count(v.f32.begin(), v.f32.end(), 0.0F);
    }
    for (const ir::Value& v : out->graph.values) {
      if (v.is_constant && v.dtype == ir::DType::kF32) zeros_after += std::count(v.f32.begin(), v.f32.end(), 0.0F);
    }
    const std::string bits = options_.int4 ? "int4" : "int8";
    if (zeros_after < zeros_before) fail(ErrorCode::kInternal, bits + " quantization lost pruned zeros");
    Output result = std::move(out).value();
    std::vector<std::string> notes;
    for (const std::string& n : pruned->notes) {
      if (n.find("dense CPU kernels") == std::string::npos) notes.push_back("pruning: " + n);
    }
    for (const std::string& n : result.notes) notes.push_back(bits + ": " + n);
    std::ostringstream s;
    s << "pruned zeros kept through " << bits << ": " << zeros_after << " zero weights";
    notes.push_back(s.str());
    result.notes = std::move(notes);
    return result;
  });
}

std::vector<ParamField<HybridOptions>> Hybrid::fields() {
  using O = HybridOptions;
  std::vector<ParamField<O>> out{
      field<O>("schedule", [](O& o) -> auto& { return o.prune.schedule; }, "sparsity after each pruning stage, comma-separated", 0, 0.999),
      field<O>("epochs_per_stage", [](O& o) -> auto& { return o.prune.epochs_per_stage; }, "fine-tuning epochs after each stage", 0, 1000),
      field<O>("max_train_images", [](O& o) -> auto& { return o.prune.max_train_images; }, "fine-tuning images (an evenly strided subset)", 1, 1e9),
      field<O>("learning_rate", [](O& o) -> auto& { return o.prune.learning_rate; }, "Adam learning rate at the start of each stage", 1e-7, 1),
      field<O>("calibration_images", [](O& o) -> auto& { return o.calibration_images; }, "training images the int8 activation ranges are calibrated on", 1, 1e7),
      field<O>("group_size", [](O& o) -> auto& { return o.int4_options.group_size; }, "hybrid_int4: weights of a channel (stored or not) per f16 scale", 0, 1 << 20),
  };
  return out;
}

WorkEstimate Hybrid::estimate_work(std::int64_t train_images) const {
  WorkEstimate work = PruneUnstructured(options_.prune).estimate_work(train_images);
  if (!options_.int4) work.image_passes += 4.0 * static_cast<double>(std::min(options_.calibration_images, train_images));
  return work;
}

}  // namespace edgeopt::techniques
