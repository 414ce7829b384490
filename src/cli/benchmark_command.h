// `edgeopt benchmark`: host latency of one or more model files at batch 1, timed side by side.
#pragma once

#include <CLI/CLI.hpp>

namespace edgeopt::cli {

// Registers the subcommand; when it runs (as a CLI11 callback) it stores its exit code.
void add_benchmark_command(CLI::App& app, int& exit_code);

}  // namespace edgeopt::cli
