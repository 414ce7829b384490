// `edgeopt report RESULTS_DIR [--out report.html]`: one self-contained HTML file with the web UI's
// results view of a CLI run (web/dist/report.html with the run's results.json embedded).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace edgeopt::cli {

// The report template with `payload` embedded where its placeholder is; every "<" of the JSON is
// written as \u003c, so no "</script" or "<!--" can end or change the element it sits in.
Result<std::string> render_report(const std::string& html_template, const nlohmann::json& payload);

// Registers the subcommand; when it runs (as a CLI11 callback) it stores its exit code.
void add_report_command(CLI::App& app, int& exit_code);

}  // namespace edgeopt::cli
