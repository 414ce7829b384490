// TFLite export of the IR (.tflite flatbuffers, schema version 3), for LiteRT/TFLite on
// Raspberry Pi and Jetson CPUs and, as a full-integer file, for the Edge TPU compiler.
// Images become NHWC (TFLite's layout) with batch 1 (static shapes); a Flatten or Reshape of an
// image is preceded by a Transpose back to NCHW order so the flattened elements match the IR's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::format {

enum class TfliteKind : std::uint8_t {
  kFp32,         // float weights, float kernels
  kFp16Weights,  // weights stored as float16, dequantized to float32 at load (DEQUANTIZE ops)
  kDynamicInt8,  // int8 weights (per output channel), float activations: TFLite's hybrid kernels
  kFullInt8,     // int8 weights and activations with the graph's own calibrated ranges
};
const char* tflite_kind_name(TfliteKind kind);

struct TfliteExportOptions {
  TfliteKind kind = TfliteKind::kFp32;
  // kFullInt8: int8 input and output tensors (what the Edge TPU wants end to end); otherwise the
  // file takes and returns float32, with QUANTIZE / DEQUANTIZE at its ends.
  bool int8_io = false;
  // kFullInt8: ranges for run-time values the graph gives none (typically the logits, which the
  // IR keeps in float), by IR value name; per tensor, uint8 form like Value::quant.
  std::map<std::string, ir::QuantParams> extra_quant;
};

struct TfliteExport {
  std::string bytes;
  std::vector<std::string> ops;    // the builtin ops used, by name
  std::vector<std::string> notes;  // what the export changed (transposes added, fused activations)
};

// The IR must be verified. Unsupported ops or attributes are kUnsupportedOp errors naming the node.
Result<TfliteExport> export_tflite(const ir::Graph& graph, const TfliteExportOptions& options = {});
// Writes atomically (a temporary file renamed into place).
Result<TfliteExport> export_tflite_file(const ir::Graph& graph, const std::string& path, const TfliteExportOptions& options = {});

}  // namespace edgeopt::format
