#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "backend/executor.h"
#include "data/dataset.h"
#include "ir/graph.h"
#include "ir/text.h"
#include "technique_fixtures.h"
#include "pipeline/preprocess.h"
#include "techniques/distillation.h"
#include "zoo/zoo.h"

namespace edgeopt::techniques {
namespace {

using fixtures::context_for;
using fixtures::halves;
using fixtures::halves_mlp;
using fixtures::normal;

TEST(Distillation, StudentIsFourTimesSmallerAndRuns) {
  const ir::Graph teacher = halves_mlp();
  const data::ImageSet train = halves(600, 3);
  DistillationOptions options;
  options.epochs = 1;
  options.held_out_images = 100;
  Distillation technique(options);
  double last_progress = -1;
  Context ctx = context_for(teacher, train, {ir::Layout::kNCHW, 1, 4, 4});
  ctx.progress = [&](double f, const std::string&) {
    EXPECT_GE(f, last_progress);
    last_progress = f;
  };
  auto out = technique.run(ctx);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_DOUBLE_EQ(last_progress, 1.0);
  EXPECT_GE(static_cast<double>(teacher.param_count()) / static_cast<double>(out->graph.param_count()), 4.0);
  EXPECT_TRUE(ir::verify(out->graph).ok());
  // The classifier's outputs are kept, the hidden layer narrowed.
  EXPECT_EQ(out->graph.value(out->graph.find("w2").value()).shape[0], 2);
  EXPECT_LT(out->graph.value(out->graph.find("w1").value()).shape[0], 256);
  auto exec = backend::Executor::create(out->graph);
  ASSERT_TRUE(exec.ok()) << exec.error().to_string();
  std::vector<float> input(5 * 16, 0.5F);
  auto logits = exec.value()->run(input.data(), 5);
  ASSERT_TRUE(logits.ok()) << logits.error().to_string();
  EXPECT_EQ(logits->size(), 10U);
  EXPECT_FALSE(out->notes.empty());
}

TEST(Distillation, CancelStopsWithAnError) {
  const ir::Graph teacher = halves_mlp();
  const data::ImageSet train = halves(256, 4);
  Distillation technique;
  Context ctx = context_for(teacher, train, {ir::Layout::kNCHW, 1, 4, 4});
  int steps = 0;
  ctx.cancelled = [&] { return ++steps > 3; };  // cancelled mid-training, not only before it
  auto out = technique.run(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("cancelled"), std::string::npos);
}

TEST(Distillation, EmptyTrainingSplitIsRefused) {
  const ir::Graph teacher = halves_mlp();
  const data::ImageSet empty;
  Distillation technique;
  auto out = technique.run(context_for(teacher, empty, {ir::Layout::kNCHW, 1, 4, 4}));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("training split"), std::string::npos);
}

// On real images: a small CNN teacher trained briefly on Fashion-MNIST, then distilled into a 4x
// smaller student on a few thousand images; the distilled student must beat the same student
// trained alone from scratch by 1 pt on the images both never saw.
TEST(Distillation, DistilledStudentBeatsTheStudentAloneFromScratch) {
  data::LoadOptions load;
  load.allow_download = false;
  auto dataset = data::load_dataset("fashion-mnist", load);
  if (!dataset) GTEST_SKIP() << "Fashion-MNIST is not on disk: " << dataset.error().to_string();
  auto recipe = zoo::parse_recipe(
      R"({"name": "kd-teacher", "dataset": "fashion-mnist", "input_shape": [1, 28, 28], "epochs": 2, "learning_rate": 0.002,
          "seed": 11, "layers": [{"op": "conv", "out": 16, "kernel": 3, "pad": 1}, {"op": "bn"}, {"op": "relu"},
          {"op": "maxpool", "kernel": 2}, {"op": "conv", "out": 32, "kernel": 3, "pad": 1}, {"op": "bn"}, {"op": "relu"},
          {"op": "maxpool", "kernel": 2}, {"op": "flatten"}, {"op": "dense", "out": 64}, {"op": "relu"},
          {"op": "dense", "out": 10}]})",
      "kd-teacher");
  ASSERT_TRUE(recipe.ok()) << recipe.error().to_string();
  backend::set_threads(2);
  zoo::TrainRunOptions run_options;
  run_options.train_limit = 6000;
  run_options.test_limit = 500;
  auto teacher = zoo::train_recipe(recipe.value(), dataset.value(), run_options);
  ASSERT_TRUE(teacher.ok()) << teacher.error().to_string();

  const data::ImageSet train = pipeline::strided_subset(dataset->train, 4000);
  DistillationOptions options;
  options.max_train_images = 3000;
  options.held_out_images = 1000;
  options.epochs = 3;
  options.min_steps = 0;  // keep the short schedule: the teacher itself had only 2 epochs
  auto r = distill(context_for(teacher->graph, train, {ir::Layout::kNCHW, 1, 28, 28}), options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_GE(static_cast<double>(teacher->graph.param_count()) / static_cast<double>(r->student.param_count()), 4.0);
  EXPECT_EQ(r->student.param_count(), r->student_alone.param_count());
  EXPECT_EQ(r->train_images, 3000);
  EXPECT_EQ(r->held_out_images, 1000);
  std::printf("held out: teacher %.4f (mirrored %.4f), distilled %.4f, same init alone %.4f, from scratch alone %.4f\n",
              r->teacher_accuracy, r->teacher_mirrored_accuracy, r->distilled_accuracy, r->alone_accuracy, r->scratch_accuracy);
  EXPECT_GT(r->alone_accuracy, 0.6);  // both students learned (chance is 0.1)
  EXPECT_EQ(r->student_scratch.param_count(), r->student.param_count());
  // The teacher was trained without flips and is far less accurate on mirrored images: no flips.
  EXPECT_LT(r->teacher_mirrored_accuracy, r->teacher_accuracy - 0.02);
  EXPECT_FALSE(r->flipped);
  // The distilled student beats the same student trained alone from scratch by at least 1 pt.
  EXPECT_GE(r->distilled_accuracy, r->scratch_accuracy + 0.01)
      << "distilled " << r->distilled_accuracy << ", from scratch " << r->scratch_accuracy;
  // Against the same teacher-derived init trained on labels alone nothing is asserted: with this
  // weak 2-epoch teacher the teacher's logits help little or not at all (measured: -1.8 to +0.5 pt
  // across settings); results.json reports that comparison too.
}

}  // namespace
}  // namespace edgeopt::techniques
