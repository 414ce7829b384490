#include "techniques/prune_unstructured.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "backend/executor.h"

namespace edgeopt::techniques {

float magnitude_threshold(const std::vector<const std::vector<float>*>& weights, double sparsity) {
  std::vector<float> magnitudes;
  for (const auto* w : weights) {
    for (float v : *w) magnitudes.push_back(std::abs(v));
  }
  if (magnitudes.empty() || sparsity <= 0) return 0.0F;
  const auto k = std::min(magnitudes.size() - 1, static_cast<std::size_t>(sparsity * static_cast<double>(magnitudes.size())));
  std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(k), magnitudes.end());
  return magnitudes[k];
}

Result<Output> PruneUnstructured::run(const Context& context) const {
  return capture([&]() -> Output {
    if (!context.train || context.train->count == 0) {
      fail(ErrorCode::kInvalidArgument, "prune_unstructured fine-tunes on the training split, and it is empty");
    }
    Output out;
    out.graph = *context.baseline;
    std::vector<int> prunable;
    for (const ir::Node& n : out.graph.nodes) {
      if ((n.op == ir::OpKind::kConv || n.op == ir::OpKind::kGemm) && n.inputs.size() > 1 && n.inputs[1] >= 0 &&
          out.graph.value(n.inputs[1]).is_constant && !out.graph.value(n.inputs[1]).f32.empty()) {
        prunable.push_back(n.inputs[1]);
      }
    }
    if (prunable.empty()) fail(ErrorCode::kUnsupportedOp, "the model has no Conv or Gemm weights to prune");

    // Training data: an evenly strided subset of the training split, as model input floats.
    const data::ImageSet& train = *context.train;
    const std::int64_t count = std::min(options_.max_train_images, train.count);
    const data::ImageSet subset = pipeline::strided_subset(train, count);
    std::vector<float> inputs;
    pipeline::prepare_batch(subset, 0, count, context.spec, context.norm, inputs);

    const std::size_t stages = options_.schedule.size();
    backend::TrainOptions train_options;
    train_options.epochs = options_.epochs_per_stage;
    train_options.learning_rate = options_.learning_rate;
    train_options.batch_size = options_.batch_size;
    train_options.seed = context.seed;
    train_options.schedule = backend::TrainOptions::Schedule::kCosine;
    for (std::size_t stage = 0; stage < stages; ++stage) {
      const double sparsity = options_.schedule[stage];
      std::vector<const std::vector<float>*> weights;
      for (int id : prunable) weights.push_back(&out.graph.value(id).f32);
      const float threshold = magnitude_threshold(weights, sparsity);
      train_options.masks.clear();
      for (int id : prunable) {
        const auto& w = out.graph.value(id).f32;
        std::vector<float> mask(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) mask[i] = std::abs(w[i]) > threshold ? 1.0F : 0.0F;
        train_options.masks[id] = std::move(mask);
      }
      train_options.on_step = [&, stage](std::int64_t step, std::int64_t total, float loss) {
        if (context.progress) {
          std::ostringstream msg;
          msg << "stage " << stage + 1 << "/" << stages << " (" << static_cast<int>(100 * sparsity) << " % sparse), loss " << loss;
          context.progress((static_cast<double>(stage) + static_cast<double>(step) / static_cast<double>(total)) / static_cast<double>(stages), msg.str());
        }
        return !(context.cancelled && context.cancelled());
      };
      auto report = backend::train(out.graph, inputs.data(), subset.labels.data(), count, train_options);
      if (!report) throw Failure{report.error()};
      if (report->stopped_early) fail(ErrorCode::kInvalidArgument, "cancelled");
    }

    std::int64_t total = 0;
    std::int64_t zeros = 0;
    for (int id : prunable) {
      const ir::Value& w = out.graph.value(id);
      total += static_cast<std::int64_t>(w.f32.size());
      zeros += std::count(w.f32.begin(), w.f32.end(), 0.0F);
      out.encoding.per_constant[w.name] = format::Encoding::sparse_f32();
    }
    std::ostringstream s;
    s.precision(3);
    s << "sparsity reached " << 100.0 * static_cast<double>(zeros) / static_cast<double>(total) << " % of " << total
      << " Conv/Gemm weights (global magnitude, schedule";
    for (double v : options_.schedule) s << " " << static_cast<int>(100 * v) << "%";
    s << ", " << options_.epochs_per_stage << " fine-tuning epoch(s) per stage on " << count << " training images)";
    out.notes.push_back(s.str());
    out.notes.push_back("stored as bitmask + non-zero values; dense CPU kernels run the zeros anyway, so expect no speed-up unless a sparse kernel is used");
    return out;
  });
}

std::vector<ParamField<PruneUnstructuredOptions>> PruneUnstructured::fields() {
  using O = PruneUnstructuredOptions;
  const std::vector<ParamField<O>> fields{
      field<O>("schedule", [](O& o) -> auto& { return o.schedule; }, "sparsity after each stage, comma-separated; the last is the target", 0, 0.999),
      field<O>("epochs_per_stage", [](O& o) -> auto& { return o.epochs_per_stage; }, "fine-tuning epochs after each stage", 0, 1000),
  };
  return concat(fields, training_fields<O>());
}

WorkEstimate PruneUnstructured::estimate_work(std::int64_t train_images) const {
  const double images = static_cast<double>(std::min(options_.max_train_images, train_images));
  return {3.0 * images * static_cast<double>(options_.epochs_per_stage) * static_cast<double>(options_.schedule.size())};
}

}  // namespace edgeopt::techniques
