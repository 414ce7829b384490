// Training a zoo recipe on its dataset, scoring it on the test split, and saving it with a card.
#include <chrono>
#include <filesystem>
#include <thread>

#include "backend/executor.h"
#include "common/file_io.h"
#include "format/eom.h"
#include "format/onnx_export.h"
#include "pipeline/evaluate.h"
#include "pipeline/preprocess.h"
#include "zoo/zoo.h"

namespace edgeopt::zoo {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

void check_dataset(const Recipe& recipe, const data::Dataset& dataset) {
  const std::string hint = "train " + recipe.name + " on its own dataset (" + recipe.dataset + ")";
  if (static_cast<std::int64_t>(dataset.class_names.size()) != recipe.classes) {
    fail(ErrorCode::kInvalidArgument,
         "dataset '" + dataset.name + "' has " + std::to_string(dataset.class_names.size()) + " classes; recipe " +
             recipe.name + " has " + std::to_string(recipe.classes) + " outputs",
         hint);
  }
  for (const data::ImageSet* split : {&dataset.train, &dataset.test}) {
    if (split->count <= 0) fail(ErrorCode::kInvalidArgument, "dataset '" + dataset.name + "' has an empty split", hint);
    if (split->channels != recipe.input_shape[0] || split->height != recipe.input_shape[1] ||
        split->width != recipe.input_shape[2]) {
      fail(ErrorCode::kShapeMismatch,
           "dataset '" + dataset.name + "' has " + std::to_string(split->height) + "x" + std::to_string(split->width) +
               "x" + std::to_string(split->channels) + " images; recipe " + recipe.name + " takes " +
               std::to_string(recipe.input_shape[1]) + "x" + std::to_string(recipe.input_shape[2]) + "x" +
               std::to_string(recipe.input_shape[0]),
           hint);
    }
  }
}

backend::TrainOptions::Schedule schedule_of(const std::string& name) {
  if (name == "cosine") return backend::TrainOptions::Schedule::kCosine;
  if (name == "step") return backend::TrainOptions::Schedule::kStep;
  return backend::TrainOptions::Schedule::kConstant;
}

template <class T>
T unwrap(Result<T> r) {
  if (!r) throw Failure{r.error()};
  return std::move(r).value();
}

std::int64_t file_size_on_disk(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) fail(ErrorCode::kIo, "cannot read back the size of " + path + ": " + ec.message());
  return static_cast<std::int64_t>(size);
}

}  // namespace

Result<TrainRun> train_recipe(const Recipe& recipe, const data::Dataset& dataset, const TrainRunOptions& options) {
  return capture([&]() -> TrainRun {
    check_dataset(recipe, dataset);
    auto say = [&](const std::string& m) {
      if (options.progress) options.progress(m);
    };
    TrainRun run;
    run.graph = unwrap(build_graph(recipe));
    const auto spec = unwrap(pipeline::input_spec(run.graph));
    const auto norm = unwrap(pipeline::parse_normalization(recipe.normalization));

    const std::int64_t train_count =
        options.train_limit > 0 ? std::min(options.train_limit, dataset.train.count) : dataset.train.count;
    say("preparing " + std::to_string(train_count) + " training images (" + norm.describe() + ")");
    std::vector<float> inputs;
    pipeline::prepare_batch(dataset.train, 0, train_count, spec, norm, inputs);

    backend::TrainOptions train_options;
    train_options.epochs = options.epochs > 0 ? options.epochs : recipe.epochs;
    train_options.batch_size = recipe.batch_size;
    train_options.learning_rate = recipe.learning_rate;
    train_options.weight_decay = recipe.weight_decay;
    train_options.schedule = schedule_of(recipe.schedule);
    train_options.seed = recipe.seed;
    train_options.random_flip = recipe.augmentation != "none";
    train_options.crop_padding = recipe.augmentation == "flip-crop" ? recipe.crop_padding : 0;
    if (options.on_step) {
      train_options.on_step = [&](std::int64_t step, std::int64_t total, float loss) {
        options.on_step(step, total, loss);
        return true;
      };
    }
    backend::set_seed(recipe.seed);
    say("training " + recipe.name + ": " + std::to_string(train_options.epochs) + " epochs, " +
        std::to_string(run.graph.param_count()) + " params, " + std::to_string(backend::thread_count()) + " threads");
    const auto start = std::chrono::steady_clock::now();
    const auto report =
        unwrap(backend::train(run.graph, inputs.data(), dataset.train.labels.data(), train_count, train_options));
    run.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.last_loss = report.last_loss;
    inputs = {};

    say("scoring on the test split");
    auto executor = unwrap(backend::Executor::create(run.graph));
    pipeline::EvalOptions eval_options;
    eval_options.limit = options.test_limit;
    const auto eval = unwrap(pipeline::evaluate(*executor, dataset.test, spec, norm, eval_options));
    run.accuracy = eval.accuracy;

    run.card = {
        {"name", recipe.name},
        {"description", recipe.description},
        {"recipe", recipe.document},
        {"seed", recipe.seed},
        {"dataset",
         {{"name", dataset.name},
          {"source", dataset.source},
          {"split_note", dataset.split_note},
          {"train_samples", train_count},
          {"test_split", "test"}}},
        {"normalization", {{"name", norm.name}, {"description", norm.describe()}}},
        {"input",
         {{"name", "input"},
          {"shape", {-1, recipe.input_shape[0], recipe.input_shape[1], recipe.input_shape[2]}},
          {"layout", "NCHW"}}},
        {"output", "logits"},
        {"accuracy", eval.accuracy},
        {"accuracy_ci95", {eval.ci95_low, eval.ci95_high}},
        {"correct", eval.correct},
        {"samples", eval.samples},
        {"params", run.graph.param_count()},
        {"macs", graph_macs(run.graph)},
        {"training",
         {{"epochs", train_options.epochs},
          {"epochs_overridden", train_options.epochs != recipe.epochs},
          {"steps", report.steps},
          {"first_loss", report.first_loss},
          {"last_loss", report.last_loss},
          {"seconds", run.train_seconds},
          {"threads", backend::thread_count()},
          {"hardware_threads", std::thread::hardware_concurrency()}}},
        {"eval_seconds", eval.seconds},
    };
    return run;
  });
}

Status save_model(TrainRun& run, const Recipe& recipe, const std::string& out_dir) {
  return capture([&]() -> Unit {
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) fail(ErrorCode::kIo, "cannot create " + out_dir + ": " + ec.message(), "choose another --out folder");
    const std::string stem = (fs::path(out_dir) / recipe.name).string();
    const std::string eom_path = stem + ".eom";
    const std::string onnx_path = stem + ".onnx";
    const std::string card_path = stem + ".json";
    unwrap(format::write_eom(run.graph, eom_path));
    unwrap(format::export_onnx(run.graph, onnx_path));
    run.card["files"] = {{"eom", {{"path", eom_path}, {"size_bytes", file_size_on_disk(eom_path)}}},
                         {"onnx", {{"path", onnx_path}, {"size_bytes", file_size_on_disk(onnx_path)}}}};
    unwrap(write_file_atomic(card_path, run.card.dump(2) + "\n"));
    return Unit{};
  });
}

}  // namespace edgeopt::zoo
