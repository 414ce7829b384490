// TorchScript (.pt from torch.jit.save) lowered into the IR. The file is loaded with LibTorch
// (which never unpickles arbitrary classes: TorchScript archives only name TorchScript types), its
// forward graph is inlined and walked op by op. No torch header leaks out of this header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::backend {

// `input_shape_hint` (e.g. from --input-shape) wins; otherwise the shape comes from the archive's
// extra/edgeopt.json ({"input_shape": [1, 3, 224, 224]}), the graph input's recorded type, or is
// found by trying common image sizes (the assumption is then named in graph.producer).
Result<ir::Graph> import_torchscript(const std::string& path, const std::vector<std::int64_t>& input_shape_hint = {});

}  // namespace edgeopt::backend
