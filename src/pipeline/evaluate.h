// Scoring a model on a dataset's untouched test split, with a confidence interval.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend/executor.h"
#include "common/error.h"
#include "data/dataset.h"
#include "pipeline/preprocess.h"

namespace edgeopt::pipeline {

struct EvalOptions {
  std::int64_t limit = 0;        // score only the first N test images (0: all)
  std::int64_t batch_size = 256;
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

// Per-class counts on the scored images, from the same pass as the accuracy. Class c is the
// model's output index c (the dataset's label c). confusion[true][predicted] counts images.
struct ClassCounts {
  std::vector<std::int64_t> support;  // test images whose true class is c
  std::vector<std::int64_t> correct;  // ... predicted as c
  std::vector<std::vector<std::int64_t>> confusion;

  explicit ClassCounts(std::size_t classes = 0)
      : support(classes, 0), correct(classes, 0), confusion(classes, std::vector<std::int64_t>(classes, 0)) {}
  // Both must be below the class count (evaluate() checks labels first).
  void add(std::size_t true_class, std::size_t predicted) {
    ++support[true_class];
    ++confusion[true_class][predicted];
    if (true_class == predicted) ++correct[true_class];
  }
  // correct / support; nullopt for a class with no test image.
  std::vector<std::optional<double>> accuracy() const;
};

struct EvalResult {
  double accuracy = 0.0;  // 0..1
  std::int64_t samples = 0;
  std::int64_t correct = 0;
  double ci95_low = 0.0;  // Wilson score interval
  double ci95_high = 0.0;
  double seconds = 0.0;
  ClassCounts per_class;  // one entry per model output
};

// Rejects a dataset whose label count does not match the model's outputs, before any work.
Status check_labels_match(const backend::Executor& model, const data::Dataset& dataset);

Result<EvalResult> evaluate(backend::Executor& model, const data::ImageSet& images, const InputSpec& spec,
                            const Normalization& norm, const EvalOptions& options = {});

struct NormalizationChoice {
  Normalization chosen;
  std::vector<std::pair<std::string, double>> tried;  // preset name, accuracy on the slice
  std::int64_t slice = 0;                               // training images used
};

// Tries every preset on a slice of the training split (never the test split) and keeps the best.
Result<NormalizationChoice> choose_normalization(backend::Executor& model, const data::ImageSet& train,
                                                 const InputSpec& spec, std::int64_t slice = 512);

std::pair<double, double> wilson_interval(std::int64_t correct, std::int64_t total);

}  // namespace edgeopt::pipeline
