// distillation: knowledge distillation into a student derived automatically from the model.
// The student is the teacher with every hidden Conv/Gemm narrowed to a fraction of its channels
// (dependency-aware channel surgery; the classifier's outputs are kept), the fraction chosen so the
// student has `target_param_ratio` times fewer parameters. It is trained on the training split
// with the teacher's softened logits plus the labels. The same student is also trained on the
// labels alone twice, as baselines: from scratch (fresh init: the "student alone" distillation must
// beat) and from the same teacher-derived init (what the teacher's logits add on their own). All
// are scored on images held out of the training split, never on the test split.
#pragma once

#include <cstdint>

#include "techniques/technique.h"

namespace edgeopt::techniques {

struct DistillationOptions {
  double target_param_ratio = 4.0;  // teacher params / student params, at least
  double keep_fraction = 0.0;       // channels kept per hidden layer; 0: the largest that reaches the ratio
  // Defaults measured on the medium Fashion-MNIST zoo model (teacher 92.57 %, 2 threads shared):
  // T 2 / alpha 0.9 / 2 epochs on 30000 images gave the student 91.71 % (drop 0.86 pt) and the
  // same student alone 91.38 % on the full test split, in ~80 s for both trainings.
  float temperature = 2.0F;
  float alpha = 0.9F;               // weight of the softened-logit (KL) term; 1 - alpha on the labels
  int epochs = 2;
  std::int64_t max_train_images = 30000;  // an evenly strided subset of the training split
  std::int64_t held_out_images = 2000;    // further training images, never trained on, to compare the students
  float learning_rate = 2e-3F;
  std::int64_t batch_size = 128;
  bool random_flip = true;          // only for NCHW image inputs
  // Start the student from the teacher's most important channels (true) or from a fresh seeded
  // He initialisation (false). Measured on the medium Fashion-MNIST model with the same budget:
  // from the teacher's channels the student lands within 1 pt of the teacher (drop 0.86 pt) but
  // gains only ~0.3 pt over the same student fine-tuned on labels alone, since the surviving
  // weights already carry most of what the teacher knows; from random init distillation gains
  // 1.2-1.7 pt over the student alone, but both stay 3.6-4.5 pt below the teacher in a 90 s budget.
  // Accuracy is what ships, so the default starts from the teacher's channels.
  bool init_from_teacher = true;
  // Also train the student from scratch (fresh seeded init, labels only, same schedule): the
  // "student alone" the issue asks distillation to beat, next to the same-init comparison above.
  bool compare_from_scratch = true;
  // Small training splits get more epochs, up to at least this many optimizer steps.
  std::int64_t min_steps = 400;
  // Random flips are used only when the teacher is mirror-invariant: its accuracy on the mirrored
  // held-out images within this many points of the originals (true for clothes, not digits).
  double flip_tolerance_pp = 2.0;
};

class Distillation final : public TechniqueWithOptions<Distillation, DistillationOptions> {
 public:
  using TechniqueWithOptions::TechniqueWithOptions;
  static std::vector<ParamField<DistillationOptions>> fields();
  WorkEstimate estimate_work(std::int64_t train_images) const override;
  std::string_view id() const override { return "distillation"; }
  std::string_view description() const override {
    return "a 4x smaller student (narrower channels) trained on the teacher's softened logits plus labels, "
           "checked against the same student trained alone";
  }
  bool requires_data() const override { return true; }
  Result<Output> run(const Context& context) const override;

};

// What distill() did, with both students, for the technique's notes and for tests.
struct DistillationResult {
  ir::Graph student;        // trained on the teacher's logits plus labels: the variant
  ir::Graph student_alone;  // the same student trained on the labels alone: the baseline to beat
  double keep_fraction = 0;
  std::int64_t student_params = 0;
  std::int64_t train_images = 0;
  std::int64_t held_out_images = 0;
  bool flipped = false;
  // Accuracies (0..1) on the held-out training images; 0 when none were held out.
  double teacher_accuracy = 0;
  double teacher_mirrored_accuracy = 0;
  double distilled_accuracy = 0;
  double alone_accuracy = 0;    // same init as the distilled student, labels only
  double scratch_accuracy = -1; // fresh init, labels only; -1 when not trained
  ir::Graph student_scratch;
  int epochs = 0;
};

// Derives the student from context.baseline, trains it with and without the teacher and scores
// both (and the teacher) on the held-out slice. Cancellation fails with "cancelled".
Result<DistillationResult> distill(const Context& context, const DistillationOptions& options);

}  // namespace edgeopt::techniques
