// `edgeopt package RESULTS_DIR --technique T --device D`: a deployment ZIP (src/deploy), and
// `edgeopt export MODEL --format tflite|onnx --out FILE`: one model file for a device runtime.
#pragma once

#include <CLI/CLI.hpp>

namespace edgeopt::cli {

// Registers the subcommand; when it runs (as a CLI11 callback) it stores its exit code.
void add_package_command(CLI::App& app, int& exit_code);
void add_export_command(CLI::App& app, int& exit_code);

}  // namespace edgeopt::cli
