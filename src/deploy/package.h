// Deployment packages: one ZIP per variant and device, with the model in the formats that device
// runs, metadata.json (every metric marked measured or estimated, SHA-256 of every file),
// a README written for the variant, example programs and selftest.py. Built only from what
// `edgeopt optimize` wrote into its results folder (no model is run here), so the CLI and the
// service's download route call the same function and get the same bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace edgeopt::deploy {

enum class PackageFormat : std::uint8_t { kAuto, kTflite, kOnnx, kEom };
const char* format_name(PackageFormat format);
Result<PackageFormat> parse_format(const std::string& name);

struct PackageRequest {
  std::string results_dir;  // an `edgeopt optimize --out` folder (results.json and the variant files)
  std::string technique;    // "fp32" for the baseline, or a technique id
  std::string device;       // a device id of the catalogue
  PackageFormat format = PackageFormat::kAuto;  // auto: every format the device runs that exists for the variant
  std::string out_path;     // the ZIP to write; empty: <results_dir>/<technique>-<device>.zip
  std::string resources_dir;  // EdgeOpt's data folder (devices, package templates); empty: find_data_dir()
  // Optional: where the results' files come from, by their name inside the results folder
  // ("results.json", "ptq_int8.int8.tflite", "samples/inputs.npy"), for a caller that keeps them
  // elsewhere (the service's blob store). Empty: read from results_dir.
  std::function<Result<std::string>(const std::string& name)> read_result;
};

struct PackagedFile {
  std::string path;  // inside the ZIP
  std::int64_t bytes = 0;
  std::string sha256;
};

struct PackageSummary {
  std::string zip_path;
  std::int64_t zip_bytes = 0;
  std::vector<PackagedFile> files;
  std::vector<std::string> models;  // the model files in the package (paths inside the ZIP)
  std::vector<std::string> notes;   // what a user should know (also in the README)
};

// Writes the package atomically (a temporary file renamed into place). Errors name what is
// missing (unknown technique or device, a format the variant was not exported to, a results
// folder from an older version) and what to do.
Result<PackageSummary> write_package(const PackageRequest& request);

}  // namespace edgeopt::deploy
