// Keras models into the IR: `.h5` written by Keras 2.x (Sequential and Functional, with
// `model_config`) and `.keras` (Keras 3 ZIP: config.json + model.weights.h5).
#pragma once

#include <string>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::keras_import {

Result<ir::Graph> import_h5(const std::string& path);
Result<ir::Graph> import_keras_v3(const std::string& path);
// From parsed parts, for tests and fuzzing: a model config JSON and an HDF5 weights file image.
Result<ir::Graph> import_config_json(const std::string& config_json, const std::string& source);

}  // namespace edgeopt::keras_import
