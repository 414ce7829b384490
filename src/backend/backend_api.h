// The boundary between EdgeOpt and its LibTorch plugin (libedgeopt_torch.so). LibTorch registers
// thousands of operators when it loads (~0.3 s), so commands that do not run a model (inspect of
// ONNX/Keras, devices, estimate) never load it; the rest load it once, on first use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/executor.h"
#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::backend {

inline constexpr int kBackendApiVersion = 2;

class BackendApi {
 public:
  virtual ~BackendApi() = default;
  virtual int version() const = 0;
  virtual void set_threads(int threads) = 0;
  virtual int thread_count() = 0;
  virtual void set_seed(std::uint64_t seed) = 0;
  virtual Result<std::unique_ptr<Executor>> create_executor(const ir::Graph& graph) = 0;
  virtual Result<TrainReport> train(ir::Graph& graph, const float* inputs, const std::int32_t* labels,
                                    std::int64_t count, const TrainOptions& options) = 0;
  virtual Result<ir::Graph> import_torchscript(const std::string& path, const std::vector<std::int64_t>& input_shape_hint) = 0;
};

// Loads the plugin once: $EDGEOPT_BACKEND_LIB, else libedgeopt_torch.so next to the running
// executable or in ../lib beside it. The error says where it looked.
Result<BackendApi*> load_backend();

}  // namespace edgeopt::backend

// The plugin's one exported symbol.
extern "C" edgeopt::backend::BackendApi* edgeopt_backend_api();
