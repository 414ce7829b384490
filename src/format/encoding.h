// How one constant tensor is stored in an EdgeOpt model file: plain f32/f16, int8 with per-channel
// or per-tensor scales, int4 packed two per byte with group-wise scales, or sparse (a bitmask plus
// the non-zero values as f32, int8 or packed int4). docs/format.md is the byte-level description.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::format {

enum class EncodingKind : std::uint8_t { kF32, kF16, kInt8, kInt4, kSparseF32, kSparseInt8, kI64, kSparseInt4 };

// Stored as integer codes with scales (int8, int4, sparse_int8, sparse_int4).
bool is_quantized(EncodingKind kind);
// Stored as a bitmask plus the non-zero elements only.
bool is_sparse(EncodingKind kind);
// Codes in [-8, 7], two per byte, with f16 scales that may be group-wise (int4, sparse_int4).
bool is_int4(EncodingKind kind);

// The name used in the file header: "f32", "f16", "int8", "int4", "sparse_f32", "sparse_int8",
// "sparse_int4", "i64".
const char* encoding_name(EncodingKind kind);
std::optional<EncodingKind> encoding_from_name(std::string_view name);

// What the writer should make of one constant.
struct Encoding {
  EncodingKind kind = EncodingKind::kF32;
  int axis = 0;        // quantized kinds: the channel axis that gets its own scales; -1 per tensor
  int group_size = 0;  // int4 kinds: consecutive elements of a channel (stored or not) sharing one scale; 0 = whole channel

  static Encoding f32() { return {EncodingKind::kF32, -1, 0}; }
  static Encoding f16() { return {EncodingKind::kF16, -1, 0}; }
  static Encoding int8_per_channel(int axis = 0) { return {EncodingKind::kInt8, axis, 0}; }
  static Encoding int8_per_tensor() { return {EncodingKind::kInt8, -1, 0}; }
  static Encoding int4_group(int group_size = 32, int axis = 0) { return {EncodingKind::kInt4, axis, group_size}; }
  static Encoding sparse_f32() { return {EncodingKind::kSparseF32, -1, 0}; }
  static Encoding sparse_int8(int axis = 0) { return {EncodingKind::kSparseInt8, axis, 0}; }
  static Encoding sparse_int4(int group_size = 0, int axis = 0) { return {EncodingKind::kSparseInt4, axis, group_size}; }
};

// A constant in its stored form. Quantized kinds dequantize as real = scale * (q - zero_point).
struct EncodedTensor {
  EncodingKind kind = EncodingKind::kF32;
  ir::Shape shape;
  // Quantized kinds: one scale (and zero point, or none = all zero) per channel of `quant.axis`
  // (-1: one for the tensor), times ceil(channel elements / group_size) for the int4 kinds.
  ir::QuantParams quant;
  // f32/f16/i64: little-endian values. int8: one code per element. int4: two's-complement nibbles,
  // element 2k in the low nibble of byte k. sparse: the stored elements only (f32 LE, int8 codes,
  // or int4 nibbles packed like int4: stored element 2k in the low nibble of byte k).
  std::vector<std::uint8_t> data;
  // sparse: bit k (LSB first within each byte) set when element k is stored; others are exactly 0.
  std::vector<std::uint8_t> mask;
};

// Encodes a constant. When `value.quant` already matches the requested axis and group size (e.g.
// scales chosen by a calibrated quantizer), those scales and zero points are used; otherwise
// symmetric scales are computed from each channel's (or group's) largest magnitude.
Result<EncodedTensor> encode_constant(const ir::Value& value, const Encoding& encoding);

// Checks sizes, scales and zero points; decode_constant calls it first. `what` names the tensor.
Status check_encoded(const EncodedTensor& tensor, const std::string& what);

// The f32 values (i64 tensors: converted to float; use decode_i64 for the exact integers).
Result<std::vector<float>> decode_constant(const EncodedTensor& tensor);
Result<std::vector<std::int64_t>> decode_i64(const EncodedTensor& tensor);

// The integer codes of a quantized tensor, one per element (0 where a sparse
// tensor stores nothing): what an integer backend feeds its kernels.
Result<std::vector<std::int8_t>> unpack_codes(const EncodedTensor& tensor);

// IEEE binary16 conversions (round to nearest even), shared with the ONNX exporter.
std::uint16_t f32_to_f16(float value);
float f16_to_f32(std::uint16_t bits);

}  // namespace edgeopt::format
