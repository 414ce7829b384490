// The EdgeOpt model format (.eom): the IR graph as a JSON header plus aligned tensor blobs whose
// constants may be f32, f16, int8, packed int4 or sparse. Versioned; see docs/format.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/error.h"
#include "format/encoding.h"
#include "ir/graph.h"

namespace edgeopt::format {

inline constexpr char kEomMagic[4] = {'E', 'O', 'M', 'F'};
// Version 3 adds a CRC32C of the header and one of the tensor data to the preamble, checked on
// load; version 2 deflates the JSON header (zlib); readers still read versions 1 and 2, which
// carry no checksum (EomModel::note says so).
inline constexpr std::uint32_t kEomVersion = 3;

// CRC-32C (Castagnoli, the iSCSI polynomial 0x1EDC6F41, reflected), as .eom v3 stores it.
std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0);

struct EomWriteOptions {
  // For constants read as the weight (input 1) of Conv, Gemm and MatMul.
  Encoding weights = Encoding::f32();
  // By constant name; wins over `weights`. Constants in neither (biases, BatchNorm statistics)
  // stay f32; integer constants are always stored exactly.
  std::map<std::string, Encoding> per_constant;
};

// Writes atomically: a temporary file next to `path`, renamed into place once complete, so a
// cancelled or failed write never leaves a half-written model behind.
Status write_eom(const ir::Graph& graph, const std::string& path, const EomWriteOptions& options = {});
Result<std::string> write_eom_bytes(const ir::Graph& graph, const EomWriteOptions& options = {});

// A read model: the graph ready to execute (every constant dequantized to f32 in Value::f32, and
// Value::quant set to the stored scales for quantized constants) plus the stored form
// of every constant not kept as plain f32/i64, keyed by value id, for integer backends.
struct EomModel {
  ir::Graph graph;
  std::map<int, EncodedTensor> encoded;
  std::uint32_t version = 0;
  std::string note;  // for files older than v3: they carry no checksum, damage goes unnoticed
};

Result<ir::Graph> read_eom(const std::string& path);
// `source` names the bytes in error messages.
Result<ir::Graph> read_eom_bytes(std::string_view bytes, const std::string& source);
Result<EomModel> read_eom_model(const std::string& path);
Result<EomModel> read_eom_model_bytes(std::string_view bytes, const std::string& source);

}  // namespace edgeopt::format
