// A stable text form of the IR for golden tests and `edgeopt inspect --ir`, and the verifier.
#pragma once

#include <string>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::ir {

// One line per input, constant (shape only), node and output, in graph order.
std::string dump(const Graph& graph);

// Checks arity, topological order, constant data sizes and shapes (re-inferring them).
Status verify(Graph& graph);

}  // namespace edgeopt::ir
