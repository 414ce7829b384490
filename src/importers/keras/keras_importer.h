// Keras models into the IR: `.h5` written by Keras 2.x (Sequential and Functional, with
// `model_config`) and `.keras` (Keras 3 ZIP: config.json + model.weights.h5).
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::keras_import {

Result<ir::Graph> import_h5(const std::string& path);
Result<ir::Graph> import_keras_v3(const std::string& path);
// From parsed parts, for tests and fuzzing: a model config JSON (`model_config` of a .h5 or
// `config.json` of a .keras). Without weights every weight is zero: the architecture alone.
Result<ir::Graph> import_config_json(const std::string& config_json, const std::string& source);
// ... with an HDF5 weights file image in the Keras 3 layout (`model.weights.h5`).
Result<ir::Graph> import_config_json(const std::string& config_json, std::string_view weights_h5,
                                     const std::string& source);

// The same from bytes in memory; `source` names them in messages.
Result<ir::Graph> import_h5_bytes(std::string_view bytes, const std::string& source);
Result<ir::Graph> import_keras_v3_bytes(std::string_view bytes, const std::string& source);

}  // namespace edgeopt::keras_import
