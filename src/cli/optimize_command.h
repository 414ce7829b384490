// `edgeopt optimize`: every technique on a model, measured, estimated per device, recommended.
#pragma once

#include <CLI/CLI.hpp>

namespace edgeopt::cli {

// Registers the subcommand; when it runs (as a CLI11 callback) it stores its exit code.
void add_optimize_command(CLI::App& app, int& exit_code);
// `edgeopt techniques`: every technique with its parameters and their defaults.
void add_techniques_command(CLI::App& app, int& exit_code);

}  // namespace edgeopt::cli
