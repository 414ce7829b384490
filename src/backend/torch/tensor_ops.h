// Inside the LibTorch plugin: the IR ops on float tensors, shared by the float executor, training
// and the int8 executor (which falls back to these for ops without an int8 kernel).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace edgeopt::backend::torch_impl {

// One node on float tensors; `values` is indexed by value id. Throws Failure or c10::Error.
at::Tensor eval_node(const ir::Node& node, const std::vector<at::Tensor>& values, bool training);
// The graph's float constants as tensors, indexed by value id (undefined for everything else).
std::vector<at::Tensor> constant_tensors(const ir::Graph& graph);
// `batch` samples of the graph's first input, as a tensor viewing `data` (not copied).
at::Tensor input_tensor(const ir::Graph& graph, const float* data, std::int64_t batch);
void check_runnable(const ir::Graph& graph);
std::vector<float> to_floats(const at::Tensor& tensor);
// The listed values (by id) as floats, dequantized; fails naming an id the run did not compute.
std::vector<std::vector<float>> pick_floats(const std::vector<at::Tensor>& values, const std::vector<int>& value_ids);

}  // namespace edgeopt::backend::torch_impl
