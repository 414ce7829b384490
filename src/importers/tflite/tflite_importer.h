// TFLite flatbuffers (.tflite, schema version 3) into the IR: the files EdgeOpt's TFLite export
// writes (FP32, FP16 weights, dynamic-range int8, full-integer int8 with float or int8 I/O) and
// peers' files made of the same ops. The flatbuffers Verifier runs before anything is read.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::tflite_import {

Result<ir::Graph> import_file(const std::string& path);
// `source` names the bytes in error messages.
Result<ir::Graph> import_bytes(std::string_view bytes, const std::string& source);

// Whether the bytes carry TFLite's file identifier ("TFL3" at offset 4).
bool has_tflite_identifier(std::string_view head);

}  // namespace edgeopt::tflite_import
