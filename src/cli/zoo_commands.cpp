#include "cli/zoo_commands.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "backend/executor.h"
#include "cli/cli_common.h"
#include "data/dataset.h"
#include "zoo/zoo.h"

namespace {

using edgeopt::Error;
using edgeopt::ErrorCode;
using nlohmann::json;
namespace zoo = edgeopt::zoo;

int fail_with(const Error& e, bool as_json) { return edgeopt::cli::report_error(e, as_json); }

template <class Fn>
void guarded(int& exit_code, bool as_json, Fn&& fn) {
  try {
    exit_code = fn();
  } catch (const std::exception& e) {
    exit_code = fail_with(Error{ErrorCode::kInternal, std::string("unexpected: ") + e.what()}, as_json);
  }
}

std::string layers_summary(const zoo::Recipe& r) {
  std::string text;
  for (const auto& l : r.layers) {
    if (!text.empty()) text += " ";
    text += zoo::layer_kind_name(l.kind);
    if (l.kind == zoo::Layer::Kind::kConv || l.kind == zoo::Layer::Kind::kDense) text += std::to_string(l.out);
  }
  return text;
}

struct ListArgs {
  bool json = false;
  std::string recipes;
};

int run_list(const ListArgs& a) {
  auto recipes = zoo::read_recipes(a.recipes.empty() ? zoo::find_recipe_dir() : a.recipes);
  if (!recipes) return fail_with(recipes.error(), a.json);
  json list = json::array();
  for (const auto& r : recipes.value()) {
    auto graph = zoo::build_graph(r);
    if (!graph) return fail_with(graph.error(), a.json);
    const auto params = graph->param_count();
    const auto macs = zoo::graph_macs(graph.value());
    if (a.json) {
      list.push_back({{"name", r.name},
                      {"dataset", r.dataset},
                      {"description", r.description},
                      {"params", params},
                      {"macs", macs},
                      {"epochs", r.epochs},
                      {"seed", r.seed},
                      {"recipe", r.source}});
    } else {
      std::printf("%-22s %-14s %9lld params %12lld MACs  %3d epochs  %s\n", r.name.c_str(), r.dataset.c_str(),
                  static_cast<long long>(params), static_cast<long long>(macs), r.epochs, layers_summary(r).c_str());
    }
  }
  if (a.json) std::cout << json{{"recipes", list}}.dump(2) << "\n";
  return 0;
}

struct TrainArgs {
  std::string name;
  std::string out = "zoo";
  std::string data_dir;
  std::string recipes;
  int epochs = 0;
  int threads = 0;
  bool no_download = false;
  bool json = false;
};

int run_train(const TrainArgs& a) {
  auto recipes = zoo::read_recipes(a.recipes.empty() ? zoo::find_recipe_dir() : a.recipes);
  if (!recipes) return fail_with(recipes.error(), a.json);
  const zoo::Recipe* recipe = nullptr;
  std::string names;
  for (const auto& r : recipes.value()) {
    if (r.name == a.name) recipe = &r;
    names += (names.empty() ? "" : ", ") + r.name;
  }
  if (recipe == nullptr) {
    return fail_with(Error{ErrorCode::kNotFound, "no zoo recipe named '" + a.name + "'", "choose one of: " + names},
                     a.json);
  }
  edgeopt::backend::set_threads(a.threads);
  edgeopt::data::LoadOptions data_options;
  data_options.data_dir = a.data_dir;
  data_options.allow_download = !a.no_download;
  data_options.seed = recipe->seed;
  data_options.progress = [](const std::string& m) { std::cerr << m << "\n"; };
  auto dataset = edgeopt::data::load_dataset(recipe->dataset, data_options);
  if (!dataset) return fail_with(dataset.error(), a.json);

  zoo::TrainRunOptions options;
  options.epochs = a.epochs;
  options.progress = [](const std::string& m) { std::cerr << m << "\n"; };
  const auto start = std::chrono::steady_clock::now();
  options.on_step = [start](std::int64_t step, std::int64_t total, float loss) {
    if (step % 20 != 0 && step != total) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta = elapsed / static_cast<double>(step) * static_cast<double>(total - step);
    std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.0f s elapsed, ~%.0f s left   ", static_cast<long long>(step),
                 static_cast<long long>(total), static_cast<double>(loss), elapsed, eta);
    if (step == total) std::fprintf(stderr, "\n");
  };
  auto run = zoo::train_recipe(*recipe, dataset.value(), options);
  if (!run) return fail_with(run.error(), a.json);
  if (auto s = zoo::save_model(run.value(), *recipe, a.out); !s) return fail_with(s.error(), a.json);
  const json& card = run->card;
  if (a.json) {
    std::cout << card.dump(2) << "\n";
  } else {
    std::printf(
        "%s: test accuracy %.2f %% (95%% CI %.2f-%.2f %%, %lld images), %lld params, %lld MACs, trained in %.0f s\n",
        recipe->name.c_str(), 100 * card["accuracy"].get<double>(), 100 * card["accuracy_ci95"][0].get<double>(),
        100 * card["accuracy_ci95"][1].get<double>(), static_cast<long long>(card["samples"].get<std::int64_t>()),
        static_cast<long long>(card["params"].get<std::int64_t>()),
        static_cast<long long>(card["macs"].get<std::int64_t>()), run->train_seconds);
    for (const auto& [kind, file] : card["files"].items()) {
      std::printf("  %-4s %s (%lld bytes)\n", kind.c_str(), file["path"].get<std::string>().c_str(),
                  static_cast<long long>(file["size_bytes"].get<std::int64_t>()));
    }
  }
  return 0;
}

}  // namespace

void add_zoo_commands(CLI::App& app, int& exit_code) {
  auto* zoo_cmd =
      app.add_subcommand("zoo", "the model zoo: small/medium/large CNNs for MNIST, Fashion-MNIST and CIFAR-10");
  zoo_cmd->require_subcommand(1);

  auto list_args = std::make_shared<ListArgs>();
  auto* list = zoo_cmd->add_subcommand("list", "list the zoo's recipes with their parameters and MACs");
  list->add_flag("--json", list_args->json, "print JSON");
  list->add_option("--recipes", list_args->recipes, "the recipe folder (default: data/zoo, or $EDGEOPT_ZOO_DIR)");
  list->callback(
      [list_args, &exit_code] { guarded(exit_code, list_args->json, [&] { return run_list(*list_args); }); });

  auto a = std::make_shared<TrainArgs>();
  auto* train = zoo_cmd->add_subcommand(
      "train", "train a zoo model, score it on the test split, save .eom, .onnx and a JSON card");
  train->add_option("name", a->name, "recipe name (see `edgeopt zoo list`)")->required();
  train->add_option("--out", a->out, "output folder (default: zoo)");
  train->add_option("--data-dir", a->data_dir, "where the dataset files are (also $EDGEOPT_DATA_DIR)");
  train->add_option("--epochs", a->epochs, "override the recipe's epochs")->check(CLI::Range(1, 1000));
  train->add_option("--threads", a->threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  train->add_option("--recipes", a->recipes, "the recipe folder (default: data/zoo, or $EDGEOPT_ZOO_DIR)");
  train->add_flag("--no-download", a->no_download, "never download; fail if the dataset is not on disk");
  train->add_flag("--json", a->json, "print the model card as JSON");
  train->callback([a, &exit_code] { guarded(exit_code, a->json, [&] { return run_train(*a); }); });
}
