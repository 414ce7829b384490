// `edgeopt serve` (the API, SSE streams, the web UI and in-process workers), `edgeopt worker`
// (jobs from a shared store, on any machine) and `edgeopt tokens` (API tokens for users).
#pragma once

#include <CLI/CLI.hpp>

namespace edgeopt::cli {

void add_serve_commands(CLI::App& app, int& exit_code);

}  // namespace edgeopt::cli
