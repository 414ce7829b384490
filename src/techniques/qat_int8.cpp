#include "techniques/qat_int8.h"

#include <sstream>

#include "backend/executor.h"
#include "techniques/int8.h"
#include "techniques/ptq_int8.h"

namespace edgeopt::techniques {

Result<Output> QatInt8::run(const Context& context) const {
  return capture([&]() -> Output {
    if (!context.train || context.train->count == 0) {
      fail(ErrorCode::kInvalidArgument, "qat_int8 fine-tunes on the training split, and it is empty");
    }
    // 1. The PTQ starting point: folded BatchNorm and calibrated activation ranges.
    ir::Graph graph = *context.baseline;
    int8::fold_batchnorm(graph);
    auto ptq = int8::quantize_static(graph, context, options_.calibration_images, false, 0.0, 0.2);
    if (!ptq) throw Failure{ptq.error()};
    std::map<int, ir::QuantParams> activations;
    std::vector<int> weights;
    for (std::size_t i = 0; i < ptq->graph.values.size(); ++i) {
      const ir::Value& v = ptq->graph.values[i];
      if (!v.quant) continue;
      if (v.is_constant) weights.push_back(static_cast<int>(i));
      else activations[static_cast<int>(i)] = *v.quant;
    }
    // 2. Fine-tune the float weights through int8 fake quantization.
    const std::int64_t count = std::min(options_.max_train_images, context.train->count);
    const data::ImageSet subset = pipeline::strided_subset(*context.train, count);
    std::vector<float> inputs;
    pipeline::prepare_batch(subset, 0, count, context.spec, context.norm, inputs);
    backend::TrainOptions train;
    train.epochs = options_.epochs;
    train.learning_rate = options_.learning_rate;
    train.batch_size = options_.batch_size;
    train.schedule = backend::TrainOptions::Schedule::kCosine;
    train.seed = context.seed;
    train.fake_quant_weights = weights;
    train.fake_quant_activations = activations;
    if (options_.distill_from_baseline) {
      train.teacher = context.baseline;
      train.distill_temperature = options_.distill_temperature;
      train.distill_alpha = options_.distill_alpha;
    }
    train.on_step = [&](std::int64_t step, std::int64_t total, float loss) {
      if (context.progress) {
        std::ostringstream msg;
        msg << "fake-quant fine-tuning, loss " << loss;
        context.progress(0.2 + 0.75 * static_cast<double>(step) / static_cast<double>(total), msg.str());
      }
      return !(context.cancelled && context.cancelled());
    };
    auto report = backend::train(graph, inputs.data(), subset.labels.data(), count, train);
    if (!report) throw Failure{report.error()};
    if (report->stopped_early) fail(ErrorCode::kInvalidArgument, "cancelled");
    // 3. Convert: int8 weights from the fine-tuned values, the ranges it was trained with.
    Output out;
    out.graph = std::move(graph);
    out.precision = "int8";
    const int8::WeightReport quantized = int8::quantize_weights(out.graph, out.encoding, false);
    int8::apply_activations(out.graph, activations);
    std::ostringstream s;
    s << "started from ptq_int8 (" << int8::range_method_name(int8::RangeMethod::kMse) << "/percentile/min-max ranges, best kept); "
      << report->steps << " fake-quant steps over " << options_.epochs << " epoch(s) of " << count
      << " training images (lr " << options_.learning_rate << ", cosine; "
      << (options_.distill_from_baseline ? "labels plus the FP32 model's logits" : "labels only") << "), BatchNorm folded before training; "
      << quantized.weight_ids.size() << " weights and " << activations.size() << " activations int8";
    out.notes.push_back(s.str());
    for (const std::string& n : ptq->notes) {
      if (n.rfind("calibration, ", 0) == 0) out.notes.push_back("PTQ start: " + n);
    }
    for (const std::string& l : quantized.float_layers) out.notes.push_back("left in float: " + l);
    out.notes.push_back("runs on LibTorch's int8 kernels, like ptq_int8");
    return out;
  });
}

std::vector<ParamField<QatInt8Options>> QatInt8::fields() {
  using O = QatInt8Options;
  const std::vector<ParamField<O>> fields{
      field<O>("calibration_images", [](O& o) -> auto& { return o.calibration_images; }, "training images the starting ranges are calibrated on", 1, 1e7),
      field<O>("epochs", [](O& o) -> auto& { return o.epochs; }, "fake-quant fine-tuning epochs", 0, 1000),
  };
  return concat(concat(fields, training_fields<O>()), distill_fields<O>());
}

WorkEstimate QatInt8::estimate_work(std::int64_t train_images) const {
  const double calibration = 4.0 * static_cast<double>(std::min(options_.calibration_images, train_images));
  const double images = static_cast<double>(std::min(options_.max_train_images, train_images));
  // Fake quantization roughly doubles the cost of a float step.
  const double step = 6.0 + (options_.distill_from_baseline ? 1.0 : 0.0);
  return {calibration + images * static_cast<double>(options_.epochs) * step};
}

}  // namespace edgeopt::techniques
