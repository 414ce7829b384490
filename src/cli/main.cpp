// The `edgeopt` command line: inspect, evaluate and run models offline.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "backend/executor.h"
#include "cli/benchmark_command.h"
#include "cli/cli_common.h"
#include "cli/estimate_commands.h"
#include "cli/optimize_command.h"
#include "cli/serve_commands.h"
#include "cli/package_command.h"
#include "cli/report_command.h"
#include "cli/zoo_commands.h"
#include "common/npy.h"
#include "data/dataset.h"
#include "ir/text.h"
#include "pipeline/evaluate.h"
#include "pipeline/model.h"
#include "pipeline/preprocess.h"

namespace {

using edgeopt::Error;
using edgeopt::ErrorCode;
using nlohmann::json;

// Exit codes: 0 success, 1 bad input (the message says what to do), 2 usage, 3 internal error.
int report(const Error& e, bool as_json) { return edgeopt::cli::report_error(e, as_json); }

std::vector<std::int64_t> parse_shape(const std::string& text) {
  std::vector<std::int64_t> shape;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) shape.push_back(std::stoll(item));
  return shape;
}

void print_inspect_text(const json& j) {
  std::cout << j["file"].get<std::string>() << ": " << j["format"].get<std::string>() << " (" << j["producer"].get<std::string>() << ")\n";
  std::cout << "  params " << j["params"] << ", MACs per sample " << j["macs"] << ", " << j["layers"].size() << " layers\n";
  for (const auto& i : j["inputs"]) std::cout << "  input  " << i["name"].get<std::string>() << " " << i["shape"].dump() << " " << i["layout"].get<std::string>() << "\n";
  for (const auto& o : j["outputs"]) std::cout << "  output " << o["name"].get<std::string>() << " " << o["shape"].dump() << "\n";
}

struct CommonOptions {
  std::string input_shape;
  int threads = 0;
  bool json = false;
};

edgeopt::Result<edgeopt::ImportedModel> load(const std::string& path, const CommonOptions& common) {
  edgeopt::pipeline::LoadModelOptions options;
  if (!common.input_shape.empty()) {
    try {
      options.input_shape = parse_shape(common.input_shape);
    } catch (const std::exception&) {
      return Error{ErrorCode::kInvalidArgument, "--input-shape must be comma-separated integers, e.g. 1,3,224,224"};
    }
  }
  return edgeopt::pipeline::load_model(path, options);
}

int cmd_inspect(const std::string& path, const CommonOptions& common, bool show_ir) {
  auto model = load(path, common);
  if (!model) return report(model.error(), common.json);
  const json j = edgeopt::pipeline::model_summary(model.value(), path);
  if (show_ir) std::cout << edgeopt::ir::dump(model->graph);
  else if (common.json) std::cout << j.dump(2) << "\n";
  else print_inspect_text(j);
  return 0;
}

struct EvaluateArgs {
  std::string dataset;
  std::string data_dir;
  std::string normalize = "unit";
  std::int64_t limit = 0;
  std::int64_t batch_size = 256;
  bool no_download = false;
};

int cmd_evaluate(const std::string& path, const CommonOptions& common, const EvaluateArgs& args) {
  namespace pl = edgeopt::pipeline;
  edgeopt::backend::set_threads(common.threads);
  auto model = load(path, common);
  if (!model) return report(model.error(), common.json);
  auto spec = pl::input_spec(model->graph);
  if (!spec) return report(spec.error(), common.json);
  edgeopt::data::LoadOptions data_options;
  data_options.data_dir = args.data_dir;
  data_options.allow_download = !args.no_download;
  if (spec->layout != edgeopt::ir::Layout::kNC) {
    data_options.image_height = spec->height;
    data_options.image_width = spec->width;
    data_options.image_channels = spec->channels;
  }
  if (!common.json) data_options.progress = [](const std::string& m) { std::cerr << m << "\n"; };
  auto dataset = edgeopt::data::load_dataset(args.dataset, data_options);
  if (!dataset) return report(dataset.error(), common.json);
  auto executor = edgeopt::backend::Executor::create(model->graph);
  if (!executor) return report(executor.error(), common.json);
  if (auto s = pl::check_labels_match(*executor.value(), dataset.value()); !s) return report(s.error(), common.json);

  json preprocessing;
  pl::Normalization norm;
  if (args.normalize == "auto") {
    auto choice = pl::choose_normalization(*executor.value(), dataset->train, spec.value());
    if (!choice) return report(choice.error(), common.json);
    norm = choice->chosen;
    json tried = json::object();
    for (const auto& [name, acc] : choice->tried) tried[name] = acc;
    preprocessing["auto"] = {{"chosen", norm.name}, {"calibration_images", choice->slice},
                             {"split", "train"}, {"accuracy_by_candidate", tried}};
  } else {
    auto parsed = pl::parse_normalization(args.normalize);
    if (!parsed) return report(parsed.error(), common.json);
    norm = parsed.value();
  }
  pl::EvalOptions eval_options;
  eval_options.limit = args.limit;
  eval_options.batch_size = args.batch_size;
  if (!common.json) {
    eval_options.progress = [](std::int64_t done, std::int64_t total) {
      std::fprintf(stderr, "\revaluating %lld/%lld", static_cast<long long>(done), static_cast<long long>(total));
      if (done == total) std::fprintf(stderr, "\n");
    };
  }
  auto result = pl::evaluate(*executor.value(), dataset->test, spec.value(), norm, eval_options);
  if (!result) return report(result.error(), common.json);
  preprocessing["normalize"] = norm.name;
  preprocessing["description"] = norm.describe();
  preprocessing["layout"] = edgeopt::ir::layout_name(spec->layout);
  preprocessing["notes"] = pl::conversion_notes(dataset->test, spec.value());
  const json j = {{"model", path},
                  {"format", edgeopt::model_format_name(model->format)},
                  {"dataset", {{"name", dataset->name}, {"source", dataset->source}, {"split", "test"}, {"split_note", dataset->split_note},
                               {"train_samples", dataset->train.count}, {"test_samples", dataset->test.count}}},
                  {"accuracy", result->accuracy},
                  {"correct", result->correct},
                  {"samples", result->samples},
                  {"accuracy_ci95", {result->ci95_low, result->ci95_high}},
                  {"preprocessing", preprocessing},
                  {"threads", edgeopt::backend::thread_count()},
                  {"seconds", result->seconds}};
  if (common.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("accuracy %.2f %% (%lld/%lld test images, 95%% CI %.2f-%.2f %%)\n", 100 * result->accuracy,
                static_cast<long long>(result->correct), static_cast<long long>(result->samples), 100 * result->ci95_low,
                100 * result->ci95_high);
    std::printf("dataset %s: %s\npreprocessing %s\n", dataset->name.c_str(), dataset->split_note.c_str(), norm.describe().c_str());
    if (preprocessing.contains("auto")) {
      std::printf("chosen by --normalize auto on %lld training images:", static_cast<long long>(preprocessing["auto"]["calibration_images"].get<std::int64_t>()));
      for (const auto& [name, acc] : preprocessing["auto"]["accuracy_by_candidate"].items()) std::printf(" %s %.1f %%", name.c_str(), 100 * acc.get<double>());
      std::printf("\n");
    }
    for (const auto& note : pl::conversion_notes(dataset->test, spec.value())) std::printf("note: %s\n", note.c_str());
  }
  return 0;
}

int cmd_run(const std::string& path, const CommonOptions& common, const std::string& input, const std::string& output) {
  edgeopt::backend::set_threads(common.threads);
  auto model = load(path, common);
  if (!model) return report(model.error(), common.json);
  auto array = edgeopt::read_npy(input);
  if (!array) return report(array.error(), common.json);
  auto executor = edgeopt::backend::Executor::create(model->graph);
  if (!executor) return report(executor.error(), common.json);
  const std::int64_t per = executor.value()->input_elements();
  const auto total = static_cast<std::int64_t>(array->data.size());
  if (array->shape.empty() || total % per != 0 || total / per != array->shape[0]) {
    return report(Error{ErrorCode::kShapeMismatch,
                        "the input array has shape " + edgeopt::ir::shape_to_string(array->shape) + "; the model takes " +
                            edgeopt::ir::shape_to_string(model->graph.value(model->graph.inputs[0]).shape),
                        "give an array [batch, ...] in the model's own input layout"},
                  common.json);
  }
  auto out = executor.value()->run(array->data.data(), array->shape[0]);
  if (!out) return report(out.error(), common.json);
  edgeopt::NpyArray result{{array->shape[0], executor.value()->output_elements()}, std::move(out).value()};
  if (!output.empty()) {
    if (auto s = edgeopt::write_npy(output, result); !s) return report(s.error(), common.json);
  }
  if (common.json || output.empty()) {
    std::cout << json{{"shape", result.shape}, {"output", result.data}}.dump() << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"EdgeOpt: import, evaluate and optimize image models for edge devices"};
  app.set_version_flag("--version", std::string("edgeopt 0.1.0"));
  app.require_subcommand(1);
  CommonOptions common;
  std::string model_path;
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("model", model_path, "model file: .onnx, .h5, .keras, TorchScript .pt, .tflite or EdgeOpt .eom")->required();
    cmd->add_flag("--json", common.json, "print JSON");
    cmd->add_option("--input-shape", common.input_shape, "input shape when the file lacks it, e.g. 1,3,224,224");
  };

  bool show_ir = false;
  auto* inspect = app.add_subcommand("inspect", "show a model's format, parameters, MACs, inputs, outputs and layers");
  add_common(inspect);
  inspect->add_flag("--ir", show_ir, "print the imported graph in EdgeOpt's text form");

  EvaluateArgs eval_args;
  auto* evaluate = app.add_subcommand("evaluate", "measure a model's accuracy on a dataset's test split");
  add_common(evaluate);
  evaluate->add_option("--dataset", eval_args.dataset, "mnist, fashion-mnist, cifar10, or a folder/ZIP of class folders")->required();
  evaluate->add_option("--data-dir", eval_args.data_dir, "where the dataset files are (also $EDGEOPT_DATA_DIR)");
  evaluate->add_option("--normalize", eval_args.normalize,
                       "unit (x/255, default), symmetric, raw, mnist, fashion-mnist, cifar10, imagenet, mean=..;std=.., or auto");
  evaluate->add_option("--limit", eval_args.limit, "score only the first N test images");
  evaluate->add_option("--batch-size", eval_args.batch_size, "images per forward pass")->check(CLI::Range(1, 65536));
  evaluate->add_option("--threads", common.threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  evaluate->add_flag("--no-download", eval_args.no_download, "never download; fail if the files are not on disk");

  std::string run_input;
  std::string run_output;
  auto* run = app.add_subcommand("run", "run a model on a .npy array and print or save its outputs");
  add_common(run);
  run->add_option("--input", run_input, ".npy array [batch, ...] in the model's input layout")->required();
  run->add_option("--output", run_output, "write the outputs to this .npy file");
  run->add_option("--threads", common.threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));

  int callback_exit = -1;  // set by subcommands that run as CLI11 callbacks
  add_estimate_commands(app, callback_exit);
  add_zoo_commands(app, callback_exit);
  edgeopt::cli::add_optimize_command(app, callback_exit);
  edgeopt::cli::add_benchmark_command(app, callback_exit);
  edgeopt::cli::add_techniques_command(app, callback_exit);
  edgeopt::cli::add_serve_commands(app, callback_exit);
  edgeopt::cli::add_package_command(app, callback_exit);
  edgeopt::cli::add_export_command(app, callback_exit);
  edgeopt::cli::add_report_command(app, callback_exit);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (callback_exit >= 0) return callback_exit;
  try {
    if (*inspect) return cmd_inspect(model_path, common, show_ir);
    if (*evaluate) return cmd_evaluate(model_path, common, eval_args);
    if (*run) return cmd_run(model_path, common, run_input, run_output);
  } catch (const std::exception& e) {
    return report(Error{ErrorCode::kInternal, std::string("unexpected: ") + e.what()}, common.json);
  }
  return 2;
}
