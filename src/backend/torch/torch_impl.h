// Inside the LibTorch plugin: the implementations behind BackendApi (see ../backend_api.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/executor.h"
#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::backend::torch_impl {

// Keeps BLAS to one thread: LibTorch's own pool parallelises (see executor_torch.cpp).
void single_threaded_blas();
void set_threads(int threads);
int thread_count();
void set_seed(std::uint64_t seed);
Result<std::unique_ptr<Executor>> create_executor(const ir::Graph& graph);
// Int8 graphs (activation quantization parameters on node outputs) run on LibTorch's quantized
// kernels instead: see int8_executor.cpp.
bool is_int8_graph(const ir::Graph& graph);
Result<std::unique_ptr<Executor>> create_int8_executor(const ir::Graph& graph);
Result<TrainReport> train(ir::Graph& graph, const float* inputs, const std::int32_t* labels, std::int64_t count,
                          const TrainOptions& options);
Result<ir::Graph> import_torchscript(const std::string& path, const std::vector<std::int64_t>& input_shape_hint);

}  // namespace edgeopt::backend::torch_impl
