#include "importers/import.h"

#include "common/sandbox.h"
#include "format/eom.h"
#include "importers/isolated.h"

#include <onnx/onnx_pb.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "importers/keras/keras_importer.h"
#include "importers/onnx/onnx_importer.h"
#include "importers/tflite/tflite_importer.h"
#include "importers/torchscript/torchscript_archive.h"

namespace edgeopt {
namespace {

constexpr const char* kSupportedList = "ONNX, Keras .h5/.keras, TorchScript .pt, TFLite .tflite, EdgeOpt .eom";
constexpr const char* kExportTorchScript = "torch.jit.save(torch.jit.script(model.eval()), \"model.pt\")";
constexpr const char* kExportOnnx = "torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\")";

// A leading slice of the file: enough for every signature we test (HDF5 may sit behind a
// user block of 512, 1024 or 2048 bytes) and for a look at a pickle's class names.
constexpr std::size_t kHeadBytes = 1 << 20;

// Opens only regular files: a FIFO or a device would block in open() or read forever. O_NONBLOCK
// makes the open of a FIFO return at once, so fstat can refuse it.
int open_regular(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fail(ErrorCode::kIo, "cannot open '" + path + "' for reading: " + std::strerror(errno), "check the path and its permissions");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::kInvalidArgument, "'" + path + "' is not a regular file (a pipe, device or socket)", "pass the model file itself");
  }
  return fd;
}

// At most max_bytes from the start of the file, read in bounded pieces.
std::string read_head(const std::string& path, std::size_t max_bytes) {
  const int fd = open_regular(path);
  std::string bytes;
  std::string piece(std::min<std::size_t>(max_bytes, 1 << 20), '\0');
  while (bytes.size() < max_bytes) {
    const ssize_t n = ::read(fd, piece.data(), std::min(piece.size(), max_bytes - bytes.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      fail(ErrorCode::kIo, "cannot read '" + path + "'", "check that the file is readable");
    }
    if (n == 0) break;
    bytes.append(piece.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return bytes;
}

bool starts_with_at(const std::string& bytes, std::size_t offset, std::string_view magic) {
  return bytes.size() >= offset + magic.size() && std::string_view(bytes).substr(offset, magic.size()) == magic;
}

bool is_hdf5(const std::string& head) {
  constexpr std::string_view kMagic("\x89HDF\r\n\x1a\n", 8);
  for (std::size_t offset : {0, 512, 1024, 2048}) {
    if (starts_with_at(head, offset, kMagic)) return true;
  }
  return false;
}

bool is_zip(const std::string& head) {
  return starts_with_at(head, 0, std::string_view("PK\x03\x04", 4)) ||
         starts_with_at(head, 0, std::string_view("PK\x05\x06", 4));
}

// Pickle protocols 2-5 open with PROTO (0x80) and the protocol number. torch.save's legacy
// (non-ZIP) format is a sequence of protocol-2 pickles, so it starts the same way.
bool is_raw_pickle(const std::string& head) {
  return head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5;
}

// What a pickle holds, told from the class names it mentions; the bytes are only searched.
enum class PickleKind { kModule, kStateDict, kUnknown };

PickleKind guess_pickle_kind(const std::string& bytes) {
  const bool names_module =
      bytes.find("torch.nn.modules") != std::string::npos || bytes.find("__main__") != std::string::npos;
  if (names_module) return PickleKind::kModule;
  if (bytes.find("OrderedDict") != std::string::npos || bytes.find("_rebuild_tensor") != std::string::npos) {
    return PickleKind::kStateDict;
  }
  return PickleKind::kUnknown;
}

[[noreturn]] void refuse_pickle(const std::string& path, PickleKind kind) {
  const std::string what = kind == PickleKind::kModule ? "a torch.save() of a whole module"
                           : kind == PickleKind::kStateDict
                               ? "a torch.save() of a state_dict (weights without the network)"
                               : "a Python pickle";
  std::string hint;
  if (kind == PickleKind::kStateDict) {
    hint =
        "build the network in Python and load the weights into it first (model = MyNet(); "
        "model.load_state_dict(torch.load(\"weights.pth\"))), then ";
  } else {
    hint = "in Python, where the model's class can be imported, ";
  }
  hint += std::string("export it once with ") + kExportTorchScript + " or " + kExportOnnx +
          " (use your model's input size) and import that file";
  fail(ErrorCode::kUnsupportedFormat,
       "'" + path + "' is " + what +
           "; EdgeOpt never unpickles a file, because unpickling runs whatever code the file names",
       hint);
}

ModelFormat detect_zip(const std::string& path) {
  Result<std::vector<std::string>> names = torchscript::zip_entry_names(path);
  if (!names) throw Failure{names.error()};
  const auto& all = names.value();
  auto has = [&](std::string_view entry) { return std::find(all.begin(), all.end(), entry) != all.end(); };
  if (has("config.json") && has("model.weights.h5")) return ModelFormat::kKerasV3;

  Result<torchscript::ArchiveInfo> info = torchscript::read_archive_info(path);
  if (!info) throw Failure{info.error()};
  if (info->has_code || (info->has_constants && info->has_data_pickle)) return ModelFormat::kTorchScript;
  if (info->has_data_pickle) {
    // A ZIP-format torch.save(): data.pkl is the pickle; its tensors are separate entries.
    Result<std::string> pickle = torchscript::read_zip_entry(path, info->root + "/data.pkl", 64 << 20);
    refuse_pickle(path, pickle ? guess_pickle_kind(pickle.value()) : PickleKind::kUnknown);
  }
  if (has("config.json") || has("metadata.json")) {
    fail(ErrorCode::kCorruptFile, "'" + path + "' looks like a Keras 3 .keras archive but has no model.weights.h5",
         "save the model again with model.save(\"model.keras\")");
  }
  fail(ErrorCode::kUnsupportedFormat,
       "'" + path + "' is a ZIP archive but not a model file EdgeOpt reads (" + kSupportedList + ")",
       "a .keras file holds config.json and model.weights.h5; a TorchScript .pt holds <name>/code/; "
       "an image dataset ZIP belongs in the data step, not here");
}

bool is_onnx(const std::string& path) {
  // A protobuf message is at most 2 GiB: a larger file is not ONNX, and is never read whole.
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > static_cast<std::uintmax_t>(INT32_MAX)) return false;
  const std::string bytes = read_head(path, static_cast<std::size_t>(size));
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) return false;
  return model.has_graph() && (model.ir_version() > 0 || model.opset_import_size() > 0);
}

}  // namespace

const char* model_format_name(ModelFormat format) {
  switch (format) {
    case ModelFormat::kOnnx:
      return "onnx";
    case ModelFormat::kKerasH5:
      return "keras-h5";
    case ModelFormat::kKerasV3:
      return "keras-v3";
    case ModelFormat::kTorchScript:
      return "torchscript";
    case ModelFormat::kEom:
      return "eom";
    case ModelFormat::kTflite:
      return "tflite";
  }
  return "?";
}

Result<ModelFormat> detect_model_format_in_process(const std::string& path) {
  return capture([&]() -> ModelFormat {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
      fail(ErrorCode::kNotFound, "model file '" + path + "' does not exist", "check the path");
    }
    if (std::filesystem::is_directory(status)) {
      fail(ErrorCode::kInvalidArgument, "'" + path + "' is a folder, not a model file",
           std::string("pass one file: ") + kSupportedList +
               " (a TensorFlow SavedModel folder is not supported; "
               "save a Keras model with model.save(\"model.keras\") or export ONNX)");
    }
    if (!std::filesystem::is_regular_file(status)) {
      fail(ErrorCode::kInvalidArgument, "'" + path + "' is not a regular file (a pipe, device or socket)", "pass the model file itself");
    }
    const std::string head = read_head(path, kHeadBytes);
    if (head.empty()) {
      fail(ErrorCode::kCorruptFile, "'" + path + "' is empty",
           "the upload or save did not finish; write the file again");
    }
    if (is_hdf5(head)) return ModelFormat::kKerasH5;
    if (head.size() >= 4 && std::string_view(head).substr(0, 4) == std::string_view(format::kEomMagic, 4)) return ModelFormat::kEom;
    if (is_zip(head)) return detect_zip(path);
    if (tflite_import::has_tflite_identifier(head)) return ModelFormat::kTflite;
    if (is_raw_pickle(head)) refuse_pickle(path, guess_pickle_kind(head));
    if (is_onnx(path)) return ModelFormat::kOnnx;
    fail(ErrorCode::kUnsupportedFormat, "'" + path + "' is not a model file EdgeOpt reads (" + kSupportedList + ")",
         "the format is told from the file's contents, not its extension; the file may be truncated or of "
         "another kind");
  });
}

// Detection parses the file (ZIP directory, protobuf), so it runs in the sandbox too; only the
// checks that open nothing run here.
Result<ModelFormat> detect_model_format(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status) || !std::filesystem::is_regular_file(status) || sandbox::inside()) {
    return detect_model_format_in_process(path);  // the clear error for a missing file, folder or FIFO
  }
  sandbox::Policy policy = import_policy(path);
  policy.what = "telling the model's format";
  Result<std::string> reply = sandbox::run(
      [&]() -> Result<std::string> {
        Result<ModelFormat> format = detect_model_format_in_process(path);
        if (!format) return format.error();
        return std::string(1, static_cast<char>(format.value()));
      },
      path, policy);
  if (!reply) return reply.error();
  if (reply->size() != 1 || reply->front() < 0 || reply->front() > static_cast<char>(ModelFormat::kTflite)) {
    return Error{ErrorCode::kInternal, path + ": the format detection sent an unreadable reply"};
  }
  return static_cast<ModelFormat>(reply->front());
}

Result<ImportedModel> import_model_without_torch(const std::string& path) {
  Result<ModelFormat> format = detect_model_format(path);
  if (!format) return format.error();
  // ONNX may keep its weights in files beside the model (external data, confined to its folder).
  const sandbox::Policy policy = import_policy(path, format.value() == ModelFormat::kOnnx);
  Result<ir::Graph> graph = import_isolated([&]() -> Result<ir::Graph> {
    switch (format.value()) {
      case ModelFormat::kOnnx:
        return onnx_import::import_file(path);
      case ModelFormat::kKerasH5:
        return keras_import::import_h5(path);
      case ModelFormat::kKerasV3:
        return keras_import::import_keras_v3(path);
      case ModelFormat::kEom:
        return format::read_eom(path);
      case ModelFormat::kTflite:
        return tflite_import::import_file(path);
      case ModelFormat::kTorchScript:
        break;
    }
    return Error{ErrorCode::kUnsupportedFormat,
                 "'" + path + "' is TorchScript, which is lowered by the LibTorch backend",
                 "load it with pipeline::load_model(), which covers every format"};
  }, path, policy);
  if (!graph) return graph.error();
  return ImportedModel{format.value(), std::move(graph).value()};
}

}  // namespace edgeopt
