#include "pipeline/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace edgeopt::pipeline {

std::pair<double, double> wilson_interval(std::int64_t correct, std::int64_t total) {
  if (total <= 0) return {0.0, 1.0};
  const double z = 1.959963984540054;
  const double n = static_cast<double>(total);
  const double p = static_cast<double>(correct) / n;
  const double denom = 1.0 + z * z / n;
  const double centre = (p + z * z / (2 * n)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

std::vector<std::optional<double>> ClassCounts::accuracy() const {
  std::vector<std::optional<double>> out;
  for (std::size_t c = 0; c < support.size(); ++c) {
    out.push_back(support[c] > 0 ? std::optional<double>(static_cast<double>(correct[c]) / static_cast<double>(support[c])) : std::nullopt);
  }
  return out;
}

Status check_labels_match(const backend::Executor& model, const data::Dataset& dataset) {
  std::int32_t max_label = -1;
  for (auto l : dataset.test.labels) max_label = std::max(max_label, l);
  for (auto l : dataset.train.labels) max_label = std::max(max_label, l);
  const std::int64_t classes = std::max<std::int64_t>(static_cast<std::int64_t>(dataset.class_names.size()), max_label + 1);
  if (model.output_elements() != classes) {
    return Error{ErrorCode::kShapeMismatch,
                 "the model has " + std::to_string(model.output_elements()) + " outputs but dataset '" + dataset.name + "' has " +
                     std::to_string(classes) + " classes",
                 "pick the dataset the model was trained on, or a model with one output per class"};
  }
  return ok_status();
}

Result<EvalResult> evaluate(backend::Executor& model, const data::ImageSet& images, const InputSpec& spec,
                            const Normalization& norm, const EvalOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.limit < 0) return Error{ErrorCode::kInvalidArgument, "--limit must be 0 (the whole test split) or a positive number of images, not " + std::to_string(options.limit), "e.g. --limit 1000"};
  const std::int64_t total = options.limit > 0 ? std::min(options.limit, images.count) : images.count;
  if (total <= 0) return Error{ErrorCode::kInvalidArgument, "no test images to evaluate on"};
  const std::int64_t per = spec.layout == ir::Layout::kNC ? images.height * images.width * images.channels : spec.channels * spec.height * spec.width;
  if (per != model.input_elements()) {
    return Error{ErrorCode::kShapeMismatch,
                 "the images give " + std::to_string(per) + " values per sample, the model takes " + std::to_string(model.input_elements()),
                 "check that the dataset matches the model's input"};
  }
  if (options.batch_size <= 0) return Error{ErrorCode::kInvalidArgument, "the batch size must be positive"};
  const std::int64_t classes = model.output_elements();
  // A batch of large images is made smaller instead of taking gigabytes (256 MiB of input at most).
  const std::int64_t batch_size = std::max<std::int64_t>(1, std::min<std::int64_t>(options.batch_size, (std::int64_t{64} << 20) / std::max<std::int64_t>(per, 1)));
  for (std::int64_t i = 0; i < total; ++i) {
    const std::int32_t label = images.labels[static_cast<std::size_t>(i)];
    if (label < 0 || label >= classes) {
      return Error{ErrorCode::kShapeMismatch,
                   "test image " + std::to_string(i) + " has label " + std::to_string(label) + " but the model has " + std::to_string(classes) + " outputs",
                   "pick the dataset the model was trained on, or a model with one output per class"};
    }
  }
  EvalResult result;
  result.per_class = ClassCounts(static_cast<std::size_t>(classes));
  std::vector<float> batch;
  for (std::int64_t begin = 0; begin < total; begin += batch_size) {
    const std::int64_t end = std::min(total, begin + batch_size);
    prepare_batch(images, begin, end, spec, norm, batch);
    Result<std::vector<float>> out = model.run(batch.data(), end - begin);
    if (!out) return out.error();
    for (std::int64_t i = 0; i < end - begin; ++i) {
      const float* row = out->data() + i * classes;
      const auto predicted = std::max_element(row, row + classes) - row;
      const std::int32_t label = images.labels[static_cast<std::size_t>(begin + i)];
      if (predicted == label) ++result.correct;
      result.per_class.add(static_cast<std::size_t>(label), static_cast<std::size_t>(predicted));
    }
    if (options.progress) options.progress(end, total);
  }
  result.samples = total;
  result.accuracy = static_cast<double>(result.correct) / static_cast<double>(total);
  std::tie(result.ci95_low, result.ci95_high) = wilson_interval(result.correct, total);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

Result<NormalizationChoice> choose_normalization(backend::Executor& model, const data::ImageSet& train,
                                                 const InputSpec& spec, std::int64_t slice) {
  NormalizationChoice choice;
  choice.slice = std::min(slice, train.count);
  const data::ImageSet sample = strided_subset(train, choice.slice);
  double best = -1.0;
  for (const Normalization& n : normalization_presets()) {
    // Presets for colour data make no sense on one channel and the other way round.
    const std::int64_t model_channels = spec.layout == ir::Layout::kNC ? train.channels : spec.channels;
    if (n.mean.size() > 1 && static_cast<std::int64_t>(n.mean.size()) != model_channels) continue;
    Result<EvalResult> r = evaluate(model, sample, spec, n);
    if (!r) return r.error();
    choice.tried.emplace_back(n.name, r->accuracy);
    if (r->accuracy > best) {
      best = r->accuracy;
      choice.chosen = n;
    }
  }
  return choice;
}

}  // namespace edgeopt::pipeline
