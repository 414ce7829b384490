// Model format detection from bytes (never the extension) and the refusal of pickles.
#include <gtest/gtest.h>
#include <zip.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "format/eom.h"
#include "format/tflite_export.h"
#include "importers/import.h"
#include "ir/text.h"

namespace edgeopt {
namespace {

namespace fs = std::filesystem;

const fs::path kData = fs::path(EDGEOPT_SOURCE_DIR) / "tests/data";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class DetectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgeopt_detect_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }
  std::string copy(const fs::path& from, const std::string& name) {
    if (!fs::exists(from)) return {};
    const fs::path to = dir_ / name;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    return to.string();
  }
  // A ZIP holding `entries` (name, contents).
  std::string zip(const std::string& name, const std::vector<std::pair<std::string, std::string>>& entries) {
    const fs::path path = dir_ / name;
    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    EXPECT_NE(archive, nullptr);
    for (const auto& [entry, bytes] : entries) {
      zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
      EXPECT_GE(zip_file_add(archive, entry.c_str(), source, ZIP_FL_OVERWRITE), 0);
    }
    EXPECT_EQ(zip_close(archive), 0);
    return path.string();
  }

  fs::path dir_;
};

void expect_format(const std::string& path, ModelFormat want) {
  Result<ModelFormat> got = detect_model_format(path);
  ASSERT_TRUE(got.ok()) << path << ": " << got.error().to_string();
  EXPECT_EQ(got.value(), want) << path << " detected as " << model_format_name(got.value());
}

void expect_error(const std::string& path, ErrorCode code) {
  Result<ModelFormat> got = detect_model_format(path);
  ASSERT_FALSE(got.ok()) << path << " detected as " << model_format_name(got.value());
  EXPECT_EQ(got.error().code, code) << path << ": " << got.error().to_string();
  EXPECT_FALSE(got.error().message.empty());
}

TEST_F(DetectTest, FormatNames) {
  EXPECT_STREQ(model_format_name(ModelFormat::kOnnx), "onnx");
  EXPECT_STREQ(model_format_name(ModelFormat::kKerasH5), "keras-h5");
  EXPECT_STREQ(model_format_name(ModelFormat::kKerasV3), "keras-v3");
  EXPECT_STREQ(model_format_name(ModelFormat::kTorchScript), "torchscript");
}

TEST_F(DetectTest, EveryCommittedFixtureKind) {
  const std::vector<std::pair<fs::path, ModelFormat>> fixtures{
      {kData / "onnx_torch/lenet5_op13.onnx", ModelFormat::kOnnx},
      {kData / "onnx_torch/small_vgg_op9.onnx", ModelFormat::kOnnx},
      {kData / "onnx_torch/lenet5_b10_fixed.onnx", ModelFormat::kOnnx},
      {kData / "torchscript/lenet5.pt", ModelFormat::kTorchScript},
      {kData / "torchscript/small_vgg_traced.pt", ModelFormat::kTorchScript},
      {kData / "torchscript/edgenet.pt", ModelFormat::kTorchScript},
      {kData / "keras/nested_k2.h5", ModelFormat::kKerasH5},
      {kData / "keras/nested_k3.keras", ModelFormat::kKerasV3},
  };
  int seen = 0;
  for (const auto& [path, format] : fixtures) {
    if (!fs::exists(path)) continue;
    expect_format(path.string(), format);
    ++seen;
  }
  if (seen == 0) GTEST_SKIP() << "no model fixtures under " << kData;
}

TEST_F(DetectTest, ExtensionIsNeverTrusted) {
  const std::string pt_as_onnx = copy(kData / "torchscript/lenet5.pt", "model.onnx");
  const std::string onnx_as_pt = copy(kData / "onnx_torch/lenet5_op13.onnx", "model.pt");
  const std::string h5_as_keras = copy(kData / "keras/nested_k2.h5", "model.keras");
  if (pt_as_onnx.empty() || onnx_as_pt.empty()) GTEST_SKIP() << "fixtures missing";
  expect_format(pt_as_onnx, ModelFormat::kTorchScript);
  expect_format(onnx_as_pt, ModelFormat::kOnnx);
  if (!h5_as_keras.empty()) expect_format(h5_as_keras, ModelFormat::kKerasH5);
  expect_error(write("notes.onnx", "this is a text file, not a model\n"), ErrorCode::kUnsupportedFormat);
  Result<ModelFormat> text = detect_model_format(dir_ / "notes.onnx");
  EXPECT_NE(text.error().message.find("not a model file EdgeOpt reads (ONNX, Keras .h5/.keras, TorchScript .pt, TFLite .tflite, EdgeOpt .eom)"),
            std::string::npos)
      << text.error().message;
}

TEST_F(DetectTest, EomFilesAreModelsToo) {
  ir::Graph g;
  g.name = "tiny";
  const int x = g.add_input("x", {ir::kBatch, 4}, ir::Layout::kNC);
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc", {x, g.add_constant("w", {2, 4}, std::vector<float>(8, 0.5F))})};
  ASSERT_TRUE(ir::verify(g).ok());
  const std::string path = (dir_ / "variant.bin").string();  // any extension: told by content
  ASSERT_TRUE(format::write_eom(g, path).ok());
  expect_format(path, ModelFormat::kEom);
  auto model = import_model_without_torch(path);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_EQ(model->graph.param_count(), 8);
  EXPECT_STREQ(model_format_name(model->format), "eom");
}

TEST_F(DetectTest, TfliteFilesImportInTheSandboxWithTheirInt8Weights) {
  ir::Graph g;
  g.name = "tiny";
  const int x = g.add_input("x", {ir::kBatch, 4}, ir::Layout::kNC);
  g.outputs = {g.add_node(ir::OpKind::kGemm, "fc", {x, g.add_constant("w", {2, 4}, {0.5F, -0.25F, 1, 0, 0.1F, 0.2F, -0.3F, 0.4F})})};
  ASSERT_TRUE(ir::verify(g).ok());
  format::TfliteExportOptions o;
  o.kind = format::TfliteKind::kDynamicInt8;
  const std::string path = (dir_ / "model.bin").string();  // told by the "TFL3" identifier, not the name
  ASSERT_TRUE(format::export_tflite_file(g, path, o).ok());
  expect_format(path, ModelFormat::kTflite);
  auto model = import_model_without_torch(path);
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_STREQ(model_format_name(model->format), "tflite");
  EXPECT_EQ(model->graph.param_count(), 10) << "8 weights and the zero bias TFLite's FULLY_CONNECTED gets";
  const ir::Value& w = model->graph.value(model->graph.nodes.back().inputs[1]);
  ASSERT_TRUE(w.quant.has_value()) << "the int8 weights' parameters cross the sandbox";
  EXPECT_EQ(w.quant->scales.size(), 2U);
  EXPECT_FLOAT_EQ(w.f32[2], 1.0F);
  // A truncated file is refused inside the sandbox with the importer's own error.
  const std::string bytes = slurp(path);
  auto cut = import_model_without_torch(write("cut.tflite", bytes.substr(0, bytes.size() / 2)));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().code, ErrorCode::kCorruptFile) << cut.error().to_string();
}

TEST_F(DetectTest, Hdf5BehindAUserBlock) {
  std::string bytes(512, '\0');
  bytes += std::string("\x89HDF\r\n\x1a\n", 8) + std::string(64, '\0');
  expect_format(write("user_block.h5", bytes), ModelFormat::kKerasH5);
}

TEST_F(DetectTest, ZipLayouts) {
  expect_format(zip("k3.zip", {{"config.json", "{}"}, {"model.weights.h5", "x"}, {"metadata.json", "{}"}}),
                ModelFormat::kKerasV3);
  expect_format(zip("ts.zip", {{"m/data.pkl", "\x80\x02."}, {"m/constants.pkl", "\x80\x02."}, {"m/version", "3\n"}}),
                ModelFormat::kTorchScript);
  expect_format(zip("ts_code.zip", {{"m/code/__torch__/m.py", "x"}, {"m/data.pkl", "\x80\x02."}}),
                ModelFormat::kTorchScript);
  expect_error(zip("keras_no_weights.keras", {{"config.json", "{}"}}), ErrorCode::kCorruptFile);
  expect_error(zip("images.zip", {{"cats/1.png", "x"}, {"dogs/2.png", "y"}}), ErrorCode::kUnsupportedFormat);
  // An empty archive is just the end-of-central-directory record (libzip will not write one).
  expect_error(write("empty.zip", std::string("PK\x05\x06", 4) + std::string(18, '\0')), ErrorCode::kUnsupportedFormat);
}

TEST_F(DetectTest, TorchSavePicklesAreRefusedWithTheExportCommand) {
  struct Case {
    const char* file;
    const char* what;
  };
  const std::vector<Case> cases{{"tiny_state_dict.pth", "state_dict"},
                                {"tiny_state_dict_legacy.pth", "state_dict"},
                                {"tiny_module.pth", "whole module"}};
  for (const Case& c : cases) {
    const fs::path path = kData / "pickle" / c.file;
    if (!fs::exists(path)) GTEST_SKIP() << path << " missing";
    Result<ModelFormat> got = detect_model_format(path.string());
    ASSERT_FALSE(got.ok()) << c.file;
    const Error& e = got.error();
    EXPECT_EQ(e.code, ErrorCode::kUnsupportedFormat) << c.file;
    EXPECT_NE(e.message.find("never unpickles"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("runs"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(c.what), std::string::npos) << c.file << ": " << e.message;
    EXPECT_NE(e.hint.find("torch.jit.save(torch.jit.script(model.eval()), \"model.pt\")"), std::string::npos) << e.hint;
    EXPECT_NE(e.hint.find("torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\")"),
              std::string::npos)
        << e.hint;
    if (std::string(c.what) == "state_dict") EXPECT_NE(e.hint.find("load_state_dict"), std::string::npos) << e.hint;
  }
}

TEST_F(DetectTest, RawPicklesAreRefused) {
  for (char protocol : {'\x02', '\x03', '\x04', '\x05'}) {
    const std::string bytes = std::string("\x80", 1) + protocol + "}q\x00.";
    expect_error(write("raw.pkl", bytes), ErrorCode::kUnsupportedFormat);
  }
}

TEST_F(DetectTest, BadFilesGiveClearErrors) {
  expect_error(write("empty.onnx", ""), ErrorCode::kCorruptFile);
  expect_error((dir_ / "missing.onnx").string(), ErrorCode::kNotFound);
  fs::create_directories(dir_ / "saved_model");
  expect_error((dir_ / "saved_model").string(), ErrorCode::kInvalidArgument);

  std::mt19937 rng(7);
  std::string noise(8192, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  noise[0] = '\x13';  // not a signature byte
  expect_error(write("noise.bin", noise), ErrorCode::kUnsupportedFormat);

  const std::string pt = slurp(kData / "torchscript/lenet5.pt");
  if (!pt.empty()) expect_error(write("truncated.pt", pt.substr(0, pt.size() / 3)), ErrorCode::kCorruptFile);
  const std::string onnx = slurp(kData / "onnx_torch/lenet5_op13.onnx");
  if (!onnx.empty()) {
    // A cut protobuf either fails to parse or lacks its graph; both are refusals, not crashes.
    Result<ModelFormat> cut = detect_model_format(write("cut.onnx", onnx.substr(0, onnx.size() / 2)));
    if (!cut.ok()) EXPECT_NE(cut.error().code, ErrorCode::kInternal) << cut.error().to_string();
  }
}

TEST_F(DetectTest, ImportWithoutTorchLeavesTorchScriptToTheBackend) {
  const fs::path pt = kData / "torchscript/lenet5.pt";
  if (!fs::exists(pt)) GTEST_SKIP() << pt << " missing";
  Result<ImportedModel> model = import_model_without_torch(pt.string());
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, ErrorCode::kUnsupportedFormat);
  EXPECT_NE(model.error().hint.find("load_model"), std::string::npos);

  Result<ImportedModel> pickle = import_model_without_torch((kData / "pickle/tiny_module.pth").string());
  ASSERT_FALSE(pickle.ok());
  EXPECT_NE(pickle.error().message.find("never unpickles"), std::string::npos);
}

TEST_F(DetectTest, ImportWithoutTorchDispatchesOnnx) {
  const fs::path onnx = kData / "onnx_torch/lenet5_op13.onnx";
  if (!fs::exists(onnx)) GTEST_SKIP() << onnx << " missing";
  Result<ImportedModel> model = import_model_without_torch(copy(onnx, "renamed.bin"));
  ASSERT_TRUE(model.ok()) << model.error().to_string();
  EXPECT_EQ(model->format, ModelFormat::kOnnx);
  EXPECT_FALSE(model->graph.nodes.empty());
}

}  // namespace
}  // namespace edgeopt
