#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "backend/executor.h"
#include "format/eom.h"
#include "ir/text.h"
#include "zoo/zoo.h"

namespace edgeopt::zoo {
namespace {

const std::string kRecipeDir = EDGEOPT_SOURCE_DIR "/data/zoo";

std::string minimal_recipe(const std::string& layers, const std::string& extra = "") {
  return R"({"name": "t", "dataset": "fashion-mnist", "input_shape": [1, 28, 28], "epochs": 1, "learning_rate": 0.002, "seed": 7,
             "layers": )" +
         layers + extra + "}";
}

const std::string kTinyLayers =
    R"([{"op": "conv", "out": 8, "kernel": 3, "pad": 1}, {"op": "bn"}, {"op": "relu"}, {"op": "maxpool", "kernel": 2},
        {"op": "flatten"}, {"op": "dense", "out": 10}])";

TEST(Zoo, ReadsEveryShippedRecipeAndSizesAreInRange) {
  auto recipes = read_recipes(kRecipeDir);
  ASSERT_TRUE(recipes.ok()) << recipes.error().to_string();
  ASSERT_EQ(recipes->size(), 9U);
  for (const auto& r : recipes.value()) {
    auto g = build_graph(r);
    ASSERT_TRUE(g.ok()) << r.name << ": " << g.error().to_string();
    const auto params = g->param_count();
    const std::string size = r.name.substr(r.name.rfind('-') + 1);
    if (size == "small") EXPECT_TRUE(params >= 50'000 && params <= 150'000) << r.name << " " << params;
    if (size == "medium") EXPECT_TRUE(params >= 500'000 && params <= 1'500'000) << r.name << " " << params;
    if (size == "large") EXPECT_TRUE(params >= 3'000'000 && params <= 6'000'000) << r.name << " " << params;
    EXPECT_EQ(g->value(g->outputs[0]).shape, (ir::Shape{ir::kBatch, 10}));
  }
}

TEST(Zoo, GraphHasExactParamCountAndNoBiasBeforeBatchNorm) {
  auto r = parse_recipe(minimal_recipe(kTinyLayers), "tiny");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto g = build_graph(r.value());
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  // conv 8x1x3x3 (no bias), BN 4x8 (scale, shift, mean, var), dense 10x(8*14*14) + 10.
  EXPECT_EQ(g->param_count(), 72 + 32 + 10 * 8 * 14 * 14 + 10);
  EXPECT_FALSE(g->find("conv1.bias").has_value());
  EXPECT_EQ(graph_macs(g.value()), 8 * 28 * 28 * 9 + 10 * 8 * 14 * 14);
}

TEST(Zoo, InitialisationIsSeeded) {
  auto a = parse_recipe(minimal_recipe(kTinyLayers), "a");
  auto b = parse_recipe(minimal_recipe(kTinyLayers), "b");
  auto c = parse_recipe(
      R"({"name": "t", "dataset": "fashion-mnist", "input_shape": [1, 28, 28], "epochs": 1, "learning_rate": 0.002,
                            "seed": 8, "layers": )" +
          kTinyLayers + "}",
      "c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const auto ga = build_graph(a.value()).value(), gb = build_graph(b.value()).value(),
             gc = build_graph(c.value()).value();
  const int w = ga.find("conv1.weight").value();
  EXPECT_EQ(ga.value(w).f32, gb.value(w).f32);
  EXPECT_NE(ga.value(w).f32, gc.value(w).f32);
}

struct BadRecipe {
  std::string text;
  std::string expect;  // in the message
};

TEST(Zoo, BadRecipesAreErrorsNamingTheField) {
  const std::vector<BadRecipe> cases = {
      {"not json", "not a JSON object"},
      {"[]", "not a JSON object"},
      {minimal_recipe(kTinyLayers, R"(, "epoch": 3)"), "unknown field 'epoch'"},
      {minimal_recipe(
           R"([{"op": "conv", "out": 8, "kernel": 3, "padding": 1}, {"op": "flatten"}, {"op": "dense", "out": 10}])"),
       "unknown field 'padding'"},
      {minimal_recipe(R"([{"op": "conv", "out": 8}, {"op": "dense", "out": 10}])"), "'kernel' is missing"},
      {minimal_recipe(R"([{"op": "conv", "out": -8, "kernel": 3}, {"op": "dense", "out": 10}])"), "'out' is -8"},
      {minimal_recipe(R"([{"op": "swish"}, {"op": "dense", "out": 10}])"), "unknown op 'swish'"},
      {minimal_recipe(R"([{"op": "dropout"}, {"op": "dense", "out": 10}])"), "dropout"},
      {minimal_recipe(R"([{"op": "flatten"}, {"op": "dense", "out": 7}])"), "last layer must be dense"},
      {minimal_recipe(R"([])"), "'layers' must be a non-empty list"},
      {minimal_recipe(kTinyLayers, R"(, "schedule": "linear")"), "'schedule' is 'linear'"},
      {minimal_recipe(kTinyLayers, R"(, "learning_rate": "fast")"), "must be a number"},
      {R"({"name": "../evil", "dataset": "mnist", "input_shape": [1, 28, 28], "epochs": 1, "learning_rate": 0.1, "seed": 1, "layers": [{"op": "dense", "out": 10}]})",
       "'name'"},
      {R"({"name": "t", "dataset": "imagenet", "input_shape": [1, 28, 28], "epochs": 1, "learning_rate": 0.1, "seed": 1, "layers": [{"op": "dense", "out": 10}]})",
       "'dataset'"},
      {R"({"name": "t", "dataset": "mnist", "input_shape": [1, 28], "epochs": 1, "learning_rate": 0.1, "seed": 1, "layers": [{"op": "dense", "out": 10}]})",
       "'input_shape'"},
      {R"({"name": "t", "dataset": "mnist", "input_shape": [1, 28, 28], "epochs": 1, "learning_rate": 0.1, "seed": -1, "layers": [{"op": "dense", "out": 10}]})",
       "'seed'"},
  };
  for (const auto& c : cases) {
    auto r = parse_recipe(c.text, "bad.json");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("bad.json"), std::string::npos) << r.error().message;
  }
}

TEST(Zoo, ShapeErrorsNameTheLayer) {
  const std::vector<std::string> layer_lists = {
      R"([{"op": "dense", "out": 10}])",  // dense on an image
      R"([{"op": "flatten"}, {"op": "conv", "out": 4, "kernel": 3}, {"op": "flatten"}, {"op": "dense", "out": 10}])",
      R"([{"op": "conv", "out": 4, "kernel": 11, "stride": 4}, {"op": "conv", "out": 4, "kernel": 11}, {"op": "flatten"}, {"op": "dense", "out": 10}])",
      R"([{"op": "conv", "out": 4096, "kernel": 3, "pad": 1}, {"op": "flatten"}, {"op": "dense", "out": 60000}, {"op": "dense", "out": 10}])",
  };
  for (const auto& layers : layer_lists) {
    auto r = parse_recipe(minimal_recipe(layers), "shape.json");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    auto g = build_graph(r.value());
    ASSERT_FALSE(g.ok()) << layers;
    EXPECT_FALSE(g.error().message.empty());
  }
}

TEST(Zoo, OneEpochOnTwoThousandImagesIsDeterministicAndLearns) {
  data::LoadOptions options;
  options.allow_download = false;
  auto dataset = data::load_dataset("fashion-mnist", options);
  if (!dataset) GTEST_SKIP() << "Fashion-MNIST is not on disk: " << dataset.error().to_string();
  auto recipe = parse_recipe(
      minimal_recipe(kTinyLayers, R"(, "batch_size": 64, "augmentation": "flip-crop", "crop_padding": 2)"), "tiny");
  ASSERT_TRUE(recipe.ok()) << recipe.error().to_string();
  backend::set_threads(2);
  TrainRunOptions run_options;
  run_options.train_limit = 2000;
  run_options.test_limit = 1000;
  auto first = train_recipe(recipe.value(), dataset.value(), run_options);
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  auto second = train_recipe(recipe.value(), dataset.value(), run_options);
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_GT(first->accuracy, 0.6);  // chance is 0.1
  EXPECT_EQ(first->accuracy, second->accuracy);
  const int w = first->graph.find("fc1.weight").value();
  EXPECT_EQ(first->graph.value(w).f32, second->graph.value(w).f32);
  EXPECT_EQ(first->card["samples"], 1000);
  EXPECT_EQ(first->card["dataset"]["train_samples"], 2000);

  const auto dir = std::filesystem::temp_directory_path() / ("edgeopt_zoo_test_" + std::to_string(::getpid()));
  ASSERT_TRUE(save_model(first.value(), recipe.value(), dir.string()).ok());
  for (const char* kind : {"eom", "onnx"}) {
    const std::string path = first->card["files"][kind]["path"];
    EXPECT_EQ(first->card["files"][kind]["size_bytes"].get<std::int64_t>(),
              static_cast<std::int64_t>(std::filesystem::file_size(path)));
  }
  auto reread = format::read_eom((dir / "t.eom").string());
  ASSERT_TRUE(reread.ok()) << reread.error().to_string();
  EXPECT_EQ(reread->param_count(), first->graph.param_count());
  EXPECT_TRUE(std::filesystem::exists(dir / "t.json"));
  std::filesystem::remove_all(dir);
}

TEST(Zoo, WrongDatasetIsRefusedBeforeTraining) {
  auto recipe = parse_recipe(minimal_recipe(kTinyLayers), "tiny");
  ASSERT_TRUE(recipe.ok());
  data::Dataset colour;
  colour.name = "colour";
  colour.class_names = std::vector<std::string>(10, "c");
  for (data::ImageSet* s : {&colour.train, &colour.test}) {
    s->count = 2;
    s->height = s->width = 32;
    s->channels = 3;
    s->pixels.assign(2 * 32 * 32 * 3, 0);
    s->labels = {0, 1};
  }
  auto run = train_recipe(recipe.value(), colour);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code, ErrorCode::kShapeMismatch);
  colour.class_names.resize(3);
  run = train_recipe(recipe.value(), colour);
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.error().message.find("classes"), std::string::npos);
}

}  // namespace
}  // namespace edgeopt::zoo
