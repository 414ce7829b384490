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

}  // namespace edgeopt::techniques
