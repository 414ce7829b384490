#include "cli/report_command.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/cli_common.h"
#include "common/file_io.h"
#include "estimator/devices.h"

namespace edgeopt::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Written by web/scripts/inline-report.mjs exactly once in web/dist/report.html.
constexpr const char* kPlaceholder = "<script type=\"application/json\" id=\"edgeopt-results\">@@EDGEOPT_RESULTS@@</script>";

struct ReportArgs {
  std::string results_dir;
  std::string out;
  std::string web_dir;
  std::string device;
  bool json = false;
};

Result<std::string> read_text(const fs::path& path, const std::string& what, const std::string& hint) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kNotFound, "cannot read " + what + " '" + path.string() + "'", hint};
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Error{ErrorCode::kIo, "reading " + what + " '" + path.string() + "' failed", hint};
  return s.str();
}

std::string now_iso() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int run(const ReportArgs& a) {
  const fs::path dir(a.results_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return report_error(Error{ErrorCode::kNotFound, "no results folder '" + a.results_dir + "'", "give the --out folder of an `edgeopt optimize` run"}, a.json);
  }
  auto text = read_text(dir / "results.json", "the run's results", "give the --out folder of a finished `edgeopt optimize` run (it holds results.json)");
  if (!text) return report_error(text.error(), a.json);
  json results = json::parse(text.value(), nullptr, false);
  if (results.is_discarded() || !results.is_object()) {
    return report_error(Error{ErrorCode::kCorruptFile, "'" + (dir / "results.json").string() + "' is not JSON",
                              "run `edgeopt optimize` again to write it"},
                        a.json);
  }
  if (!results.contains("baseline") || !results["baseline"].is_object() || !results.contains("variants") || !results["variants"].is_array()) {
    return report_error(Error{ErrorCode::kCorruptFile, "'" + (dir / "results.json").string() + "' has no baseline and variants",
                              "give the results.json of `edgeopt optimize` (not of evaluate or benchmark)"},
                        a.json);
  }
  const std::string web = find_web_dir(a.web_dir);
  const std::string build_hint = "build the web UI with `make web` (or pass --web-dir DIR holding report.html)";
  if (web.empty()) return report_error(Error{ErrorCode::kNotFound, "the report template was not found (no web/dist beside or above this edgeopt)", build_hint}, a.json);
  auto tmpl = read_text(fs::path(web) / "report.html", "the report template", build_hint);
  if (!tmpl) return report_error(tmpl.error(), a.json);

  json payload{{"results", std::move(results)},
               {"results_dir", fs::absolute(dir, ec).lexically_normal().string()},
               {"generated_at", now_iso()},
               {"edgeopt", "0.1.0"}};
  // The catalogue's names for the devices the run has estimates for (ids alone when it is absent).
  json names = json::array();
  if (auto catalog = estimator::load_device_catalog(estimator::find_data_dir() + "/devices"); catalog) {
    for (const auto& d : catalog->devices) names.push_back({{"id", d.id}, {"name", d.name}});
    if (!a.device.empty() && !catalog->find(a.device)) {
      return report_error(Error{ErrorCode::kInvalidArgument, "unknown --device '" + a.device + "'", "use one of: " + catalog->id_list()}, a.json);
    }
  }
  payload["devices"] = names;
  if (!a.device.empty()) payload["device"] = a.device;
  auto html = render_report(tmpl.value(), payload);
  if (!html) return report_error(html.error(), a.json);
  const std::string out = a.out.empty() ? (dir / "report.html").string() : a.out;
  if (Status s = write_file_atomic(out, html.value()); !s) return report_error(s.error(), a.json);
  if (a.json) std::cout << json{{"report", out}, {"bytes", html->size()}, {"template", (fs::path(web) / "report.html").string()}}.dump(2) << "\n";
  else std::cout << "wrote " << out << " (" << html->size() << " bytes; open it in a browser, it needs no network)\n";
  return 0;
}

}  // namespace

Result<std::string> render_report(const std::string& html_template, const json& payload) {
  const std::string marker = kPlaceholder;
  const std::size_t at = html_template.find(marker);
  if (at == std::string::npos || html_template.find(marker, at + 1) != std::string::npos) {
    return Error{ErrorCode::kCorruptFile, "the report template has no single results placeholder (an old or damaged web/dist/report.html)",
                 "rebuild the web UI with `make web`"};
  }
  const std::string data = payload.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string escaped;
  escaped.reserve(data.size() + data.size() / 16);
  for (char c : data) {
    if (c == '<') escaped += "\\u003c";
    else escaped += c;
  }
  std::string html;
  html.reserve(html_template.size() + escaped.size());
  html.append(html_template, 0, at);
  html += "<script type=\"application/json\" id=\"edgeopt-results\">";
  html += escaped;
  html += "</script>";
  html.append(html_template, at + marker.size());
  return html;
}

void add_report_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report", "write one self-contained HTML file with the results view of an `edgeopt optimize` run");
  cmd->add_option("results_dir", args->results_dir, "the run's --out folder (holds results.json)")->required();
  cmd->add_option("--out", args->out, "the HTML file to write (default: RESULTS_DIR/report.html)");
  cmd->add_option("--device", args->device, "the device the run targeted (device latency column and what-if; default: as the run ranked)");
  cmd->add_option("--web-dir", args->web_dir, "the built web UI holding report.html (default: web/dist beside or above edgeopt)");
  cmd->add_flag("--json", args->json, "print what was written as JSON");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

}  // namespace edgeopt::cli
