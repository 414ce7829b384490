// Every golden file (tests/data/golden/*.json, and $EDGEOPT_GOLDEN_DIR/*.json for the large models
// `make test` generates) holds a model, an input and the source runtime's output for it. We import
// the model, check its parameter count, run it, and compare against that output.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "backend/executor.h"
#include "pipeline/model.h"

namespace edgeopt {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> golden_files() {
  std::vector<std::string> files;
  std::vector<fs::path> dirs{fs::path(EDGEOPT_SOURCE_DIR) / "tests/data/golden"};
  if (const char* extra = std::getenv("EDGEOPT_GOLDEN_DIR")) dirs.emplace_back(extra);
  for (const auto& dir : dirs) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".json") files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesSourceRuntime) {
  std::ifstream in(GetParam());
  const nlohmann::json g = nlohmann::json::parse(in);
  fs::path model = g.at("model").get<std::string>();
  if (model.is_relative()) model = fs::path(EDGEOPT_SOURCE_DIR) / model;
  auto imported = pipeline::load_model(model.string());
  ASSERT_TRUE(imported.ok()) << model << ": " << imported.error().to_string();
  EXPECT_EQ(imported->graph.param_count(), g.at("params").get<std::int64_t>()) << "parameter count of " << model;

  const auto input = g.at("input").get<std::vector<float>>();
  const auto expected = g.at("output").get<std::vector<float>>();
  const auto shape = g.at("input_shape").get<std::vector<std::int64_t>>();
  auto exec = backend::Executor::create(imported->graph);
  ASSERT_TRUE(exec.ok()) << exec.error().to_string();
  // The golden input must be exactly what the imported graph takes (a guessed input size would
  // otherwise read past the buffer).
  ASSERT_EQ(static_cast<std::int64_t>(input.size()), shape.at(0) * exec.value()->input_elements())
      << model << ": the golden input " << input.size() << " values does not fit the imported input shape";
  auto out = exec.value()->run(input.data(), shape.at(0));
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  ASSERT_EQ(out->size(), expected.size());
  double max_ref = 0.0;
  double max_diff = 0.0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(expected[i])));
    max_diff = std::max(max_diff, std::abs(static_cast<double>((*out)[i]) - expected[i]));
  }
  // A golden of several inputs must have logits that depend on the input: one whose outputs are
  // the same for every image cannot tell a right import from a wrong one.
  if (shape.at(0) >= 2) {
    const std::size_t per = expected.size() / static_cast<std::size_t>(shape.at(0));
    double spread = 0.0;
    for (std::size_t i = 0; i < per; ++i) spread = std::max(spread, std::abs(static_cast<double>(expected[i]) - expected[per + i]));
    EXPECT_GT(spread / std::max(max_ref, 1e-12), 1e-3) << model << ": the golden's outputs barely depend on its input";
  }
  const double tolerance = g.value("tolerance", 1e-4);
  EXPECT_LE(max_diff / std::max(max_ref, 1e-3), tolerance)
      << model << ": max |ours - " << g.value("source", std::string("reference")) << "| = " << max_diff << " (largest output " << max_ref << ")";
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Models, Golden, ::testing::ValuesIn(golden_files()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Golden);

}  // namespace
}  // namespace edgeopt
