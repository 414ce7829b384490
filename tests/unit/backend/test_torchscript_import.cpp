// TorchScript lowering: every committed .pt (and, with $EDGEOPT_GOLDEN_DIR, the torchvision models
// `make test` generates) imports, verifies and keeps PyTorch's parameter count; version, op and
// shape problems come back as clear errors. Numerical agreement is test_golden.cpp's job.
#include <gtest/gtest.h>
#include <zip.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backend/torchscript_import.h"
#include "ir/text.h"
#include "pipeline/model.h"

namespace edgeopt {
namespace {

namespace fs = std::filesystem;

const fs::path kRepo = EDGEOPT_SOURCE_DIR;
const fs::path kTorchScript = kRepo / "tests/data/torchscript";

std::vector<std::string> torchscript_goldens() {
  std::vector<std::string> files;
  std::vector<fs::path> dirs{kRepo / "tests/data/golden"};
  if (const char* extra = std::getenv("EDGEOPT_GOLDEN_DIR")) dirs.emplace_back(extra);
  for (const auto& dir : dirs) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("ts_", 0) == 0 && e.path().extension() == ".json") files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

class TorchScriptGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchScriptGolden, ImportsWithSourceParamCountAndShapes) {
  std::ifstream in(GetParam());
  const nlohmann::json golden = nlohmann::json::parse(in);
  fs::path model = golden.at("model").get<std::string>();
  if (model.is_relative()) model = kRepo / model;
  auto graph = backend::import_torchscript(model.string());
  ASSERT_TRUE(graph.ok()) << graph.error().to_string();
  ASSERT_TRUE(ir::verify(graph.value()).ok());
  EXPECT_EQ(graph->param_count(), golden.at("params").get<std::int64_t>()) << model;
  EXPECT_NE(graph->producer.find("pytorch 1.13"), std::string::npos) << graph->producer;

  ASSERT_EQ(graph->inputs.size(), 1U);
  const ir::Shape& input = graph->value(graph->inputs[0]).shape;
  const auto want_input = golden.at("input_shape").get<std::vector<std::int64_t>>();
  ASSERT_EQ(input.size(), want_input.size()) << ir::shape_to_string(input);
  EXPECT_EQ(input[0], ir::kBatch);
  EXPECT_TRUE(std::equal(input.begin() + 1, input.end(), want_input.begin() + 1)) << ir::shape_to_string(input);

  ASSERT_GE(graph->outputs.size(), 1U);
  const auto want_output = golden.at("output_shape").get<std::vector<std::int64_t>>();
  EXPECT_EQ(ir::sample_elements(graph->value(graph->outputs[0]).shape) * want_output.at(0),
            static_cast<std::int64_t>(golden.at("output").size()));
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Models, TorchScriptGolden, ::testing::ValuesIn(torchscript_goldens()), test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TorchScriptGolden);

TEST(TorchScriptImport, CommittedFixturesExist) {
  EXPECT_TRUE(fs::exists(kTorchScript / "lenet5.pt"));
  EXPECT_GE(torchscript_goldens().size(), 5U);
}

TEST(TorchScriptImport, GuessedInputShapeIsNamedInProducer) {
  auto graph = backend::import_torchscript((kTorchScript / "lenet5.pt").string());
  ASSERT_TRUE(graph.ok()) << graph.error().to_string();
  EXPECT_EQ(graph->value(graph->inputs[0]).shape, (ir::Shape{ir::kBatch, 1, 28, 28}));
  EXPECT_NE(graph->producer.find("assumed [N,1,28,28]"), std::string::npos) << graph->producer;
}

TEST(TorchScriptImport, ExtraFileGivesInputShape) {
  auto graph = backend::import_torchscript((kTorchScript / "edgenet.pt").string());
  ASSERT_TRUE(graph.ok()) << graph.error().to_string();
  EXPECT_EQ(graph->value(graph->inputs[0]).shape, (ir::Shape{ir::kBatch, 3, 36, 36}));
  EXPECT_NE(graph->producer.find("extra/edgeopt.json"), std::string::npos) << graph->producer;
}

TEST(TorchScriptImport, HintOverridesAndIsChecked) {
  auto bigger = backend::import_torchscript((kTorchScript / "edgenet.pt").string(), {1, 3, 64, 64});
  ASSERT_TRUE(bigger.ok()) << bigger.error().to_string();
  EXPECT_EQ(bigger->value(bigger->inputs[0]).shape, (ir::Shape{ir::kBatch, 3, 64, 64}));

  // SmallVgg's classifier is sized for 32x32; a 64x64 input cannot reach it.
  auto wrong = backend::import_torchscript((kTorchScript / "small_vgg.pt").string(), {1, 3, 64, 64});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kShapeMismatch) << wrong.error().to_string();

  auto bad = backend::import_torchscript((kTorchScript / "lenet5.pt").string(), {1, 0, 28, 28});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(TorchScriptImport, TracedAndScriptedAgreeOnStructure) {
  auto scripted = backend::import_torchscript((kTorchScript / "small_vgg.pt").string());
  auto traced = backend::import_torchscript((kTorchScript / "small_vgg_traced.pt").string());
  ASSERT_TRUE(scripted.ok()) << scripted.error().to_string();
  ASSERT_TRUE(traced.ok()) << traced.error().to_string();
  EXPECT_EQ(scripted->param_count(), traced->param_count());
  EXPECT_EQ(scripted->nodes.size(), traced->nodes.size()) << ir::dump(scripted.value()) << ir::dump(traced.value());
}

TEST(TorchScriptImport, UnsupportedOpIsNamedWithTheFix) {
  auto graph = backend::import_torchscript((kTorchScript / "gelu_net.pt").string());
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(graph.error().message.find("aten::gelu"), std::string::npos) << graph.error().message;
  EXPECT_NE(graph.error().hint.find("opset_version=13"), std::string::npos) << graph.error().hint;
}

// Traces `return <expression of x>` with Debian's torch into a temporary .pt ("" when that fails).
// Traced, as scripting a class defined in `python -c` has no source to compile.
fs::path trace_model(const std::string& tag, const std::string& expression) {
  const fs::path model = fs::temp_directory_path() / ("edgeopt_ts_" + tag + "_" + std::to_string(::getpid()) + ".pt");
  const std::string make =
      "/usr/bin/python3 -c \"import torch\n"
      "import torch.nn.functional as F\n"
      "class M(torch.nn.Module):\n"
      "    def forward(self, x):\n"
      "        return " + expression + "\n"
      "torch.jit.save(torch.jit.trace(M(), torch.rand(1, 3, 8, 8)), '" + model.string() + "')\" > /dev/null 2>&1";
  if (std::system(make.c_str()) != 0 || !fs::exists(model)) return {};
  return model;
}

// Indexing by a tensor of positions and upsampling have no IR op: the error names the op and a
// workaround that works, not "export to ONNX" (which fails the same way).
TEST(TorchScriptImport, OutOfScopeOpsSayWhatWorks) {
  struct Case {
    std::string tag, expression, op, why, hint;
  };
  const std::vector<Case> cases = {
      {"index", "torch.relu(x[:, torch.tensor([0, 2])])", "aten::index", "tensor of indices", "constant positions"},
      {"upsample", "F.interpolate(x, scale_factor=2.0)", "aten::upsample_nearest2d", "upsampling is out of scope", "crop the model"},
  };
  for (const Case& c : cases) {
    const fs::path model = trace_model(c.tag, c.expression);
    if (model.empty()) GTEST_SKIP() << "needs /usr/bin/python3 with torch";
    auto graph = backend::import_torchscript(model.string(), {1, 3, 8, 8});
    fs::remove(model);
    ASSERT_FALSE(graph.ok()) << c.tag;
    EXPECT_EQ(graph.error().code, ErrorCode::kUnsupportedOp);
    EXPECT_NE(graph.error().message.find(c.op), std::string::npos) << graph.error().message;
    EXPECT_NE(graph.error().message.find(c.why), std::string::npos) << graph.error().message;
    EXPECT_NE(graph.error().hint.find(c.hint), std::string::npos) << graph.error().hint;
  }
}

// Inception's transform_input (x[:, i]), ShuffleNet's chunk and torch.split become IR Slices.
TEST(TorchScriptImport, SlicingLowersToSlice) {
  const fs::path model = trace_model(
      "slicing", "(torch.cat([x[:, 0:1] * 2.0, x[:, 1].unsqueeze(1), *x.chunk(3, 1), *torch.split(x, [1, 2], dim=1)], 1), x[:, :, 1::2, :-4])");
  if (model.empty()) GTEST_SKIP() << "needs /usr/bin/python3 with torch";
  auto graph = backend::import_torchscript(model.string(), {1, 3, 8, 8});
  fs::remove(model);
  ASSERT_TRUE(graph.ok()) << graph.error().message << " / " << graph.error().hint;
  ASSERT_EQ(graph->outputs.size(), 2U) << ir::dump(*graph);
  EXPECT_EQ(graph->value(graph->outputs[0]).shape, (ir::Shape{ir::kBatch, 8, 8, 8})) << ir::dump(*graph);
  EXPECT_EQ(graph->value(graph->outputs[1]).shape, (ir::Shape{ir::kBatch, 3, 4, 4})) << ir::dump(*graph);
  const auto slices = std::count_if(graph->nodes.begin(), graph->nodes.end(), [](const ir::Node& n) { return n.op == ir::OpKind::kSlice; });
  EXPECT_GE(slices, 8) << ir::dump(*graph);
}

// Rewrites <root>/version of a copy of a TorchScript archive.
fs::path with_version(const fs::path& original, const std::string& version) {
  const fs::path copy = fs::temp_directory_path() / ("edgeopt_ts_version_" + std::to_string(::getpid()) + ".pt");
  fs::copy_file(original, copy, fs::copy_options::overwrite_existing);
  int error = 0;
  zip_t* archive = zip_open(copy.c_str(), 0, &error);
  EXPECT_NE(archive, nullptr);
  if (archive == nullptr) return copy;
  std::string entry;
  for (zip_int64_t i = 0; i < zip_get_num_entries(archive, 0); ++i) {
    const std::string name = zip_get_name(archive, static_cast<zip_uint64_t>(i), 0);
    if (name.size() > 8 && name.substr(name.size() - 8) == "/version") entry = name;
  }
  EXPECT_FALSE(entry.empty());
  zip_source_t* source = zip_source_buffer(archive, version.data(), version.size(), 0);
  EXPECT_GE(zip_file_add(archive, entry.c_str(), source, ZIP_FL_OVERWRITE), 0);
  EXPECT_EQ(zip_close(archive), 0);
  return copy;
}

TEST(TorchScriptImport, NewerFileFormatIsRefusedWithBothVersions) {
  const fs::path newer = with_version(kTorchScript / "lenet5.pt", "99\n");
  auto graph = backend::import_torchscript(newer.string());
  fs::remove(newer);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.error().code, ErrorCode::kUnsupportedFormat);
  EXPECT_NE(graph.error().message.find("newer PyTorch (file format 99)"), std::string::npos) << graph.error().message;
  EXPECT_NE(graph.error().message.find("reads up to 10"), std::string::npos) << graph.error().message;
  EXPECT_NE(graph.error().hint.find("torch.onnx.export"), std::string::npos);
}

TEST(TorchScriptImport, RewrittenButSupportedVersionStillLoads) {
  const fs::path same = with_version(kTorchScript / "lenet5.pt", "3\n");
  auto graph = backend::import_torchscript(same.string());
  fs::remove(same);
  EXPECT_TRUE(graph.ok()) << graph.error().to_string();
}

TEST(TorchScriptImport, BrokenFilesGiveErrorsNotCrashes) {
  const fs::path dir = fs::temp_directory_path() / ("edgeopt_ts_bad_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string full = [] {
    std::ifstream in(kTorchScript / "lenet5.pt", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"truncated.pt", full.substr(0, full.size() / 2)},
      {"garbage.pt", std::string(4096, '\x42')},
      {"empty.pt", ""},
  };
  for (const auto& [name, bytes] : cases) {
    std::ofstream(dir / name, std::ios::binary) << bytes;
    auto graph = backend::import_torchscript((dir / name).string());
    EXPECT_FALSE(graph.ok()) << name;
    if (!graph.ok()) EXPECT_NE(graph.error().code, ErrorCode::kInternal) << name << ": " << graph.error().to_string();
  }
  auto missing = backend::import_torchscript((dir / "missing.pt").string());
  EXPECT_FALSE(missing.ok());
  fs::remove_all(dir);
}

TEST(TorchScriptImport, PipelineLoadsTorchScriptAndRefusesPickles) {
  auto model = pipeline::load_model((kTorchScript / "ts_ops.pt").string());
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_EQ(model->format, ModelFormat::kTorchScript);

  auto pickle = pipeline::load_model((kRepo / "tests/data/pickle/tiny_module.pth").string());
  ASSERT_FALSE(pickle.ok());
  EXPECT_EQ(pickle.error().code, ErrorCode::kUnsupportedFormat);
}

}  // namespace
}  // namespace edgeopt
