// The torch-free side of the backend: finds and loads the LibTorch plugin on first use and
// forwards the public backend functions to it.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "backend/backend_api.h"
#include "backend/torchscript_import.h"

namespace edgeopt::backend {
namespace {

constexpr const char* kPluginName = "libedgeopt_torch.so";

std::vector<std::string> candidate_paths() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("EDGEOPT_BACKEND_LIB"); env && *env) paths.emplace_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    paths.push_back((exe.parent_path() / kPluginName).string());
    paths.push_back((exe.parent_path() / ".." / "lib" / kPluginName).string());
  }
  return paths;
}

Result<BackendApi*> load_once() {
  std::string tried;
  for (const std::string& path : candidate_paths()) {
    if (!std::filesystem::exists(path)) {
      tried += "\n  " + path + " (not there)";
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      tried += "\n  " + path + " (" + dlerror() + ")";
      continue;
    }
    using Entry = BackendApi* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "edgeopt_backend_api"));
    if (!entry) {
      tried += "\n  " + path + " (no edgeopt_backend_api symbol)";
      continue;
    }
    BackendApi* api = entry();
    if (api->version() != kBackendApiVersion) {
      tried += "\n  " + path + " (plugin API version " + std::to_string(api->version()) + ", expected " +
               std::to_string(kBackendApiVersion) + ")";
      continue;
    }
    return api;
  }
  return Error{ErrorCode::kNotFound, std::string("cannot load EdgeOpt's LibTorch backend (") + kPluginName + "); tried:" + tried,
               "build it with `make build` (it sits next to the edgeopt binary), or set EDGEOPT_BACKEND_LIB to its path"};
}

}  // namespace

Result<BackendApi*> load_backend() {
  static std::once_flag once;
  static Result<BackendApi*> loaded = Error{ErrorCode::kInternal, "not loaded"};
  std::call_once(once, [] { loaded = load_once(); });
  return loaded;
}

void set_threads(int threads) {
  if (auto api = load_backend(); api) api.value()->set_threads(threads);
}

int thread_count() {
  auto api = load_backend();
  return api ? api.value()->thread_count() : 0;
}

void set_seed(std::uint64_t seed) {
  if (auto api = load_backend(); api) api.value()->set_seed(seed);
}

Result<std::unique_ptr<Executor>> Executor::create(const ir::Graph& graph) {
  auto api = load_backend();
  if (!api) return api.error();
  return api.value()->create_executor(graph);
}

Result<TrainReport> train(ir::Graph& graph, const float* inputs, const std::int32_t* labels, std::int64_t count,
                          const TrainOptions& options) {
  auto api = load_backend();
  if (!api) return api.error();
  return api.value()->train(graph, inputs, labels, count, options);
}

Result<ir::Graph> import_torchscript(const std::string& path, const std::vector<std::int64_t>& input_shape_hint) {
  auto api = load_backend();
  if (!api) return api.error();
  return api.value()->import_torchscript(path, input_shape_hint);
}

}  // namespace edgeopt::backend
