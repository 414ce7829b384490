#include "cli/package_command.h"

#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

#include "cli/cli_common.h"
#include "deploy/package.h"
#include "format/onnx_export.h"
#include "format/tflite_export.h"
#include "pipeline/model.h"

namespace edgeopt::cli {
namespace {

struct PackageArgs {
  deploy::PackageRequest request;
  std::string format = "auto";
  bool json = false;
};

int run(const PackageArgs& args) {
  deploy::PackageRequest request = args.request;
  auto format = deploy::parse_format(args.format);
  if (!format) return report_error(format.error(), args.json);
  request.format = format.value();
  auto summary = deploy::write_package(request);
  if (!summary) return report_error(summary.error(), args.json);
  const deploy::PackageSummary& s = summary.value();
  if (args.json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : s.files) files.push_back({{"path", f.path}, {"bytes", f.bytes}, {"sha256", f.sha256}});
    std::cout << nlohmann::json{{"zip", s.zip_path}, {"zip_bytes", s.zip_bytes}, {"models", s.models}, {"files", files}, {"notes", s.notes}}.dump(2) << "\n";
    return 0;
  }
  std::cout << "wrote " << s.zip_path << " (" << s.zip_bytes << " bytes)\n";
  for (const auto& f : s.files) std::cout << "  " << f.path << "  " << f.bytes << " bytes\n";
  for (const auto& n : s.notes) std::cout << "note: " << n << "\n";
  return 0;
}

struct ExportArgs {
  std::string model;
  std::string format = "tflite";
  std::string kind = "fp32";
  std::string out;
  bool json = false;
};

// A float model as one file for a runtime. Int8 variants come from `edgeopt optimize`, which
// exports them with their calibrated ranges; here only what needs no data.
int run_export(const ExportArgs& args) {
  auto model = pipeline::load_model(args.model);
  if (!model) return report_error(model.error(), args.json);
  nlohmann::json out{{"model", args.model}, {"out", args.out}, {"format", args.format}};
  if (args.format == "onnx") {
    if (Status s = format::export_onnx(model->graph, args.out); !s) return report_error(s.error(), args.json);
  } else if (args.format == "tflite") {
    format::TfliteExportOptions o;
    if (args.kind == "fp32") o.kind = format::TfliteKind::kFp32;
    else if (args.kind == "fp16") o.kind = format::TfliteKind::kFp16Weights;
    else if (args.kind == "dynamic_int8") o.kind = format::TfliteKind::kDynamicInt8;
    else if (args.kind == "int8") o.kind = format::TfliteKind::kFullInt8;
    else return report_error(Error{ErrorCode::kInvalidArgument, "unknown TFLite kind '" + args.kind + "'", "use fp32, fp16, dynamic_int8 or int8"}, args.json);
    auto r = format::export_tflite_file(model->graph, args.out, o);
    if (!r) return report_error(r.error(), args.json);
    out["kind"] = args.kind;
    out["ops"] = r->ops;
    out["notes"] = r->notes;
  } else {
    return report_error(Error{ErrorCode::kInvalidArgument, "unknown export format '" + args.format + "'", "use tflite or onnx"}, args.json);
  }
  if (args.json) std::cout << out.dump(2) << "\n";
  else std::cout << "wrote " << args.out << "\n";
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "write a model as one TFLite or ONNX file (int8 files with calibrated ranges come from `optimize`)");
  cmd->add_option("model", args->model, "model file (any format EdgeOpt reads; an int8 .eom variant for --kind int8)")->required();
  cmd->add_option("--format", args->format, "tflite (default) or onnx");
  cmd->add_option("--kind", args->kind, "TFLite: fp32 (default), fp16 (weights), dynamic_int8, or int8 (an int8 variant's own ranges)");
  cmd->add_option("--out", args->out, "the file to write")->required();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, &exit_code] { exit_code = run_export(*args); });
}

void add_package_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<PackageArgs>();
  auto* cmd = app.add_subcommand("package", "write a deployment ZIP for one variant and device (model files, metadata, README, examples, selftest.py)");
  cmd->add_option("results", args->request.results_dir, "an `edgeopt optimize --out` folder")->required();
  cmd->add_option("--technique", args->request.technique, "fp32 for the baseline, or a technique id")->required();
  cmd->add_option("--device", args->request.device, "a device id (edgeopt devices)")->required();
  cmd->add_option("--format", args->format, "auto (what the device runs), tflite, onnx or eom");
  cmd->add_option("--out", args->request.out_path, "the ZIP to write (default: RESULTS/<technique>-<device>.zip)");
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

}  // namespace edgeopt::cli
