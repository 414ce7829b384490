// `edgeopt zoo list` and `edgeopt zoo train NAME`: the model zoo's recipes (data/zoo) and training
// one of them into .eom + ONNX + a JSON card. main.cpp calls add_zoo_commands() before parsing; a
// command that runs stores its exit code (0 ok, 1 bad input, 3 internal error) in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

void add_zoo_commands(CLI::App& app, int& exit_code);
