// `edgeopt devices` and `edgeopt estimate`: the device catalogue and per-device latency, memory
// and energy estimates. main.cpp calls add_estimate_commands() before parsing; a command that
// runs stores its exit code (0 ok, 1 bad input, 3 internal error) in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

void add_estimate_commands(CLI::App& app, int& exit_code);
