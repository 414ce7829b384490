#include "backend/backend_api.h"
#include "backend/torch/torch_impl.h"

namespace edgeopt::backend::torch_impl {
namespace {

class TorchBackend final : public BackendApi {
 public:
  TorchBackend() { single_threaded_blas(); }
  int version() const override { return kBackendApiVersion; }
  void set_threads(int threads) override { torch_impl::set_threads(threads); }
  int thread_count() override { return torch_impl::thread_count(); }
  void set_seed(std::uint64_t seed) override { torch_impl::set_seed(seed); }
  Result<std::unique_ptr<Executor>> create_executor(const ir::Graph& graph) override {
    return torch_impl::create_executor(graph);
  }
  Result<TrainReport> train(ir::Graph& graph, const float* inputs, const std::int32_t* labels, std::int64_t count,
                            const TrainOptions& options) override {
    return torch_impl::train(graph, inputs, labels, count, options);
  }
  Result<ir::Graph> import_torchscript(const std::string& path, const std::vector<std::int64_t>& hint) override {
    return torch_impl::import_torchscript(path, hint);
  }
};

}  // namespace
}  // namespace edgeopt::backend::torch_impl

extern "C" __attribute__((visibility("default"))) edgeopt::backend::BackendApi* edgeopt_backend_api() {
  static edgeopt::backend::torch_impl::TorchBackend backend;
  return &backend;
}
