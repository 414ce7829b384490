#include "techniques/prune_structured.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "backend/executor.h"

namespace edgeopt::techniques {
namespace {

using surgery::ChannelGroup;
using surgery::ChannelPlan;

// Channels each group keeps at pruning strength `x` in [0, 1] (0 keeps all; larger never keeps
// more), never below `floor` of a group.
std::vector<std::vector<std::int64_t>> select(const ChannelPlan& plan, const std::vector<std::int64_t>& floor, double x,
                                              bool global_ranking) {
  double max_score = 0;
  for (const ChannelGroup& group : plan.groups) {
    if (!group.prunable) continue;
    for (double s : group.importance) max_score = std::max(max_score, s / static_cast<double>(group.layers.size()));
  }
  std::vector<std::vector<std::int64_t>> keep;
  for (std::size_t gi = 0; gi < plan.groups.size(); ++gi) {
    const ChannelGroup& group = plan.groups[gi];
    if (!group.prunable) {
      keep.emplace_back();
      continue;
    }
    std::int64_t count = 0;
    if (global_ranking) {
      const double threshold = x * max_score;
      for (double s : group.importance) count += s / static_cast<double>(group.layers.size()) >= threshold ? 1 : 0;
    } else {
      count = std::llround((1.0 - x) * static_cast<double>(group.channels));
    }
    count = std::clamp<std::int64_t>(count, std::min(floor[gi], group.channels), group.channels);
    keep.push_back(surgery::most_important(group.importance, count));
  }
  return keep;
}

std::string fmt_pct(double v) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << v;
  return s.str();
}

}  // namespace

Result<Output> PruneStructured::run(const Context& context) const {
  return capture([&]() -> Output {
    if (!context.train || context.train->count == 0) {
      fail(ErrorCode::kInvalidArgument, "prune_structured fine-tunes on the training split, and it is empty");
    }
    auto cancelled = [&] { return context.cancelled && context.cancelled(); };
    auto progress = [&](double f, const std::string& msg) {
      if (context.progress) context.progress(std::clamp(f, 0.0, 1.0), msg);
    };
    const ir::Graph& baseline = *context.baseline;
    auto first_plan = surgery::analyze(baseline, options_.importance);
    if (!first_plan) throw Failure{first_plan.error()};
    if (!first_plan->any_prunable()) {
      std::string why;
      for (const ChannelGroup& group : first_plan->groups) why += (why.empty() ? "" : "; ") + surgery::group_label(group) + " " + group.reason;
      fail(ErrorCode::kUnsupportedOp,
           "prune_structured found no layer whose channels can be removed" + (why.empty() ? std::string(": the model has no Conv/Gemm layer") : ": " + why),
           "structured pruning needs a hidden Conv or Gemm layer whose outputs feed only layers it can narrow");
    }
    // Every layer keeps at least min_keep of its ORIGINAL channels, whatever the step.
    std::map<std::string, std::int64_t> original;  // first producer's name -> channels
    for (const ChannelGroup& group : first_plan->groups) original[group.layers.front()] = group.channels;

    const std::int64_t macs_before = surgery::total_macs(baseline);
    const std::int64_t params_before = baseline.param_count();
    const int steps = std::max(1, options_.steps);
    const int total_epochs = (steps - 1) * options_.epochs_per_step + options_.final_epochs;

    const data::ImageSet& train = *context.train;
    const std::int64_t count = std::min(options_.max_train_images, train.count);
    const data::ImageSet subset = pipeline::strided_subset(train, count);
    std::vector<float> inputs;
    pipeline::prepare_batch(subset, 0, count, context.spec, context.norm, inputs);

    Output out;
    out.graph = baseline;
    int epochs_done = 0;
    std::int64_t target = macs_before;
    for (int step = 0; step < steps; ++step) {
      if (cancelled()) fail(ErrorCode::kInvalidArgument, "cancelled");
      const double share = options_.target_mac_reduction * static_cast<double>(step + 1) / static_cast<double>(steps);
      target = static_cast<std::int64_t>(std::floor(static_cast<double>(macs_before) * (1.0 - share)));
      const double at = total_epochs > 0 ? static_cast<double>(epochs_done) / total_epochs : static_cast<double>(step) / steps;
      progress(at, "step " + std::to_string(step + 1) + "/" + std::to_string(steps) + ": choosing channels for " +
                       fmt_pct(100 * share) + " % fewer MACs");

      auto plan = surgery::analyze(out.graph, options_.importance);
      if (!plan) throw Failure{plan.error()};
      std::vector<std::int64_t> floor;
      for (const ChannelGroup& group : plan->groups) {
        const auto it = original.find(group.layers.front());
        const std::int64_t full = it == original.end() ? group.channels : it->second;
        floor.push_back(std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(options_.min_keep * static_cast<double>(full)))));
      }
      auto pruned_at = [&](double x) {
        auto g = surgery::remove_channels(out.graph, select(plan.value(), floor, x, options_.global_ranking));
        if (!g) throw Failure{g.error()};
        return std::move(g.value());
      };
      // The weakest pruning that reaches the step's MAC target (MACs never grow with x).
      double lo = 0.0;
      double hi = 1.0;
      if (surgery::total_macs(pruned_at(hi)) <= target) {
        for (int i = 0; i < 24; ++i) {
          const double mid = 0.5 * (lo + hi);
          if (surgery::total_macs(pruned_at(mid)) <= target) hi = mid;
          else lo = mid;
        }
      }
      out.graph = pruned_at(hi);

      const bool last = step + 1 == steps;
      const int epochs = last ? options_.final_epochs : options_.epochs_per_step;
      if (epochs <= 0) continue;
      backend::TrainOptions train_options;
      train_options.epochs = epochs;
      train_options.learning_rate = options_.learning_rate;
      train_options.batch_size = options_.batch_size;
      train_options.seed = context.seed + static_cast<std::uint64_t>(step);
      if (options_.distill_from_baseline) {
        train_options.teacher = &baseline;
        train_options.distill_temperature = options_.distill_temperature;
        train_options.distill_alpha = options_.distill_alpha;
      }
      train_options.schedule = last ? backend::TrainOptions::Schedule::kCosine : backend::TrainOptions::Schedule::kConstant;
      const std::int64_t macs_now = surgery::total_macs(out.graph);
      train_options.on_step = [&, step](std::int64_t s, std::int64_t total, float loss) {
        std::ostringstream msg;
        msg << "step " << step + 1 << "/" << steps << " (" << fmt_pct(100.0 * (1.0 - static_cast<double>(macs_now) / static_cast<double>(macs_before)))
            << " % fewer MACs): fine-tuning, loss " << loss;
        const double done = static_cast<double>(epochs_done) + static_cast<double>(epochs) * static_cast<double>(s) / static_cast<double>(total);
        progress(done / std::max(1, total_epochs), msg.str());
        return !cancelled();
      };
      auto report = backend::train(out.graph, inputs.data(), subset.labels.data(), count, train_options);
      if (!report) throw Failure{report.error()};
      if (report->stopped_early) fail(ErrorCode::kInvalidArgument, "cancelled");
      epochs_done += epochs;
    }

    // What was done, layer by layer.
    const std::int64_t macs_after = surgery::total_macs(out.graph);
    auto final_plan = surgery::analyze(out.graph, options_.importance);
    if (!final_plan) throw Failure{final_plan.error()};
    std::map<std::string, std::int64_t> now;
    for (const ChannelGroup& group : final_plan->groups) now[group.layers.front()] = group.channels;
    std::ostringstream s;
    s << "MACs " << macs_before << " -> " << macs_after << " (" << fmt_pct(100.0 * (1.0 - static_cast<double>(macs_after) / static_cast<double>(macs_before)))
      << " % fewer, target " << fmt_pct(100 * options_.target_mac_reduction) << " %), params " << params_before << " -> " << out.graph.param_count();
    if (macs_after > target) s << "; the target was not reachable with every layer keeping " << fmt_pct(100 * options_.min_keep) << " % of its channels";
    out.notes.push_back(s.str());
    std::string pruned;
    std::string whole;
    for (const ChannelGroup& group : first_plan->groups) {
      const auto it = now.find(group.layers.front());
      const std::int64_t after = it == now.end() ? group.channels : it->second;
      if (group.prunable) {
        pruned += (pruned.empty() ? "" : ", ") + surgery::group_label(group) + " " + std::to_string(group.channels) + " -> " + std::to_string(after);
      } else {
        whole += (whole.empty() ? "" : "; ") + surgery::group_label(group) + " (" + std::to_string(group.channels) + " channels) " + group.reason;
      }
    }
    out.notes.push_back("channels kept: " + pruned);
    if (!whole.empty()) out.notes.push_back("left whole: " + whole);
    s.str("");
    s << "importance: " << (options_.importance == surgery::Importance::kL1 ? "filter L1 norm" : "filter L1 norm x BatchNorm |gamma|/sqrt(var+eps)")
      << ", " << (options_.global_ranking ? "one global threshold" : "the same share of channels per layer") << "; " << steps
      << " step(s), fine-tuned " << total_epochs << " epoch(s) in all on " << count << " training images (Adam, lr " << options_.learning_rate
      << (options_.distill_from_baseline ? ", labels plus the unpruned model's softened logits" : ", labels only") << ")";
    out.notes.push_back(s.str());
    out.notes.push_back("a smaller dense model: the removed channels are gone from the file and from every kernel, so the speed-up is real on any backend");
    progress(1.0, "done");
    return out;
  });
}

std::vector<ParamField<PruneStructuredOptions>> PruneStructured::fields() {
  using O = PruneStructuredOptions;
  const std::vector<ParamField<O>> fields{
      field<O>("target_mac_reduction", [](O& o) -> auto& { return o.target_mac_reduction; }, "share of the MACs to remove", 0.01, 0.99),
      field<O>("steps", [](O& o) -> auto& { return o.steps; }, "pruning steps, each followed by fine-tuning", 1, 100),
      field<O>("global_ranking", [](O& o) -> auto& { return o.global_ranking; }, "one importance threshold across layers (false: the same share per layer)"),
      field<O>("min_keep", [](O& o) -> auto& { return o.min_keep; }, "share of its channels every layer keeps, at least", 0, 1),
      field<O>("epochs_per_step", [](O& o) -> auto& { return o.epochs_per_step; }, "fine-tuning epochs after each step but the last", 0, 1000),
      field<O>("final_epochs", [](O& o) -> auto& { return o.final_epochs; }, "fine-tuning epochs after the last step", 0, 1000),
  };
  return concat(concat(fields, training_fields<O>()), distill_fields<O>());
}

WorkEstimate PruneStructured::estimate_work(std::int64_t train_images) const {
  const double images = static_cast<double>(std::min(options_.max_train_images, train_images));
  const double epochs = static_cast<double>(std::max(0, options_.steps - 1) * options_.epochs_per_step + options_.final_epochs);
  // The network shrinks step by step: on average it keeps about 1 - target/2 of its MACs.
  const double step = 3.0 * (1.0 - 0.5 * options_.target_mac_reduction) + (options_.distill_from_baseline ? 1.0 : 0.0);
  return {images * epochs * step};
}

}  // namespace edgeopt::techniques
