#include "format/encoding.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace edgeopt::format {
namespace {

static_assert(std::endian::native == std::endian::little, "the model format is little-endian; add byte swapping for this host");

// Per-sample bounds shared with the reader: large enough for any vision model, small enough that
// every size computed from them fits in 64 bits.
constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;

[[noreturn]] void corrupt(const std::string& what, const std::string& detail) {
  fail(ErrorCode::kCorruptFile, what + ": " + detail, "the model file is damaged or was not written by EdgeOpt; export it again");
}

std::int64_t element_count(const ir::Shape& shape, const std::string& what) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0) corrupt(what, "a stored tensor cannot have the dimension " + std::to_string(d) + " in " + ir::shape_to_string(shape));
    if (d != 0 && n > kMaxElements / d) corrupt(what, "shape " + ir::shape_to_string(shape) + " holds too many elements");
    n *= d;
  }
  return n;
}

struct CodeRange {
  int lo;
  int hi;
};
CodeRange code_range(EncodingKind kind) { return is_int4(kind) ? CodeRange{-8, 7} : CodeRange{-128, 127}; }

// Which scale each element uses: channel c of `axis` (outer x channels x inner), and within a
// channel's elements (in row-major order) groups of `group_size`.
struct ScaleLayout {
  std::int64_t channels = 1;
  std::int64_t inner = 1;
  std::int64_t groups = 1;      // scales per channel
  std::int64_t group_size = 0;  // 0: one scale per channel

  std::int64_t count() const { return channels * groups; }
  std::int64_t index(std::int64_t i) const {
    const std::int64_t c = (i / inner) % channels;
    if (group_size == 0) return c;
    const std::int64_t position = (i / (inner * channels)) * inner + i % inner;
    return c * groups + position / group_size;
  }
};

ScaleLayout scale_layout(const ir::Shape& shape, int axis, int group_size, std::int64_t n, const std::string& what) {
  ScaleLayout l;
  if (group_size < 0) corrupt(what, "group size " + std::to_string(group_size) + " is negative");
  if (axis < -1 || axis >= static_cast<int>(shape.size())) {
    corrupt(what, "quantization axis " + std::to_string(axis) + " is out of range for shape " + ir::shape_to_string(shape));
  }
  if (axis == -1) {
    l.inner = std::max<std::int64_t>(n, 1);
  } else {
    l.channels = shape[static_cast<std::size_t>(axis)];
    for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < shape.size(); ++d) l.inner *= shape[d];
  }
  l.group_size = group_size;
  if (group_size > 0) {
    const std::int64_t slice = l.channels == 0 ? 0 : n / l.channels;
    l.groups = (slice + group_size - 1) / group_size;
  }
  return l;
}

std::int64_t nonzero_bits(const std::vector<std::uint8_t>& mask) {
  std::int64_t bits = 0;
  for (auto b : mask) bits += std::popcount(b);
  return bits;
}

bool mask_bit(const std::vector<std::uint8_t>& mask, std::int64_t i) {
  return (mask[static_cast<std::size_t>(i >> 3)] >> (i & 7)) & 1U;
}

std::int8_t nibble(const std::vector<std::uint8_t>& data, std::int64_t i) {
  const unsigned byte = data[static_cast<std::size_t>(i >> 1)];
  const unsigned bits = (i & 1) ? byte >> 4 : byte & 0xFU;
  return static_cast<std::int8_t>(bits >= 8 ? static_cast<int>(bits) - 16 : static_cast<int>(bits));
}

// Scales for a quantized encoding: the value's own parameters when they fit, else symmetric
// ones from the largest magnitude each scale covers.
ir::QuantParams choose_params(const ir::Value& v, const Encoding& enc, const ScaleLayout& layout) {
  const CodeRange range = code_range(enc.kind);
  const auto count = static_cast<std::size_t>(layout.count());
  ir::QuantParams q;
  q.axis = enc.axis;
  q.group_size = enc.group_size;
  const bool given = v.quant && v.quant->axis == enc.axis && v.quant->group_size == enc.group_size && v.quant->scales.size() == count &&
                     (v.quant->zero_points.empty() || v.quant->zero_points.size() == count) &&
                     std::all_of(v.quant->scales.begin(), v.quant->scales.end(), [](float s) { return std::isfinite(s) && s > 0; }) &&
                     std::all_of(v.quant->zero_points.begin(), v.quant->zero_points.end(), [&](std::int32_t z) { return z >= range.lo && z <= range.hi; });
  if (given) {
    q.scales = v.quant->scales;
    q.zero_points = v.quant->zero_points;
  } else {
    std::vector<float> amax(count, 0.0F);
    for (std::size_t i = 0; i < v.f32.size(); ++i) {
      const float x = v.f32[i];
      if (!std::isfinite(x)) {
        fail(ErrorCode::kInvalidArgument, "constant '" + v.name + "' holds inf or NaN at element " + std::to_string(i) + "; it cannot be quantized",
             "store it as f32, or fix the training run that produced it");
      }
      auto& m = amax[static_cast<std::size_t>(layout.index(static_cast<std::int64_t>(i)))];
      m = std::max(m, std::fabs(x));
    }
    q.scales.resize(count);
    for (std::size_t k = 0; k < count; ++k) q.scales[k] = amax[k] > 0 ? amax[k] / static_cast<float>(range.hi) : 1.0F;
  }
  if (std::all_of(q.zero_points.begin(), q.zero_points.end(), [](std::int32_t z) { return z == 0; })) q.zero_points.clear();
  if (is_int4(enc.kind)) {
    // int4 scales are stored as f16 (one per group would otherwise cost as much as the codes);
    // the codes below are computed against the rounded scale so decoding is exact.
    for (float& s : q.scales) {
      s = f16_to_f32(f32_to_f16(s));
      if (s == 0.0F) s = f16_to_f32(1);  // the smallest positive f16
      if (!std::isfinite(s)) {
        fail(ErrorCode::kInvalidArgument, "constant '" + v.name + "' has weights too large for int4 with f16 scales (beyond 458000)", "store it as int8 or f32");
      }
    }
  }
  return q;
}

}  // namespace

bool is_quantized(EncodingKind kind) {
  return kind == EncodingKind::kInt8 || kind == EncodingKind::kInt4 || kind == EncodingKind::kSparseInt8 || kind == EncodingKind::kSparseInt4;
}
bool is_sparse(EncodingKind kind) {
  return kind == EncodingKind::kSparseF32 || kind == EncodingKind::kSparseInt8 || kind == EncodingKind::kSparseInt4;
}
bool is_int4(EncodingKind kind) { return kind == EncodingKind::kInt4 || kind == EncodingKind::kSparseInt4; }

const char* encoding_name(EncodingKind kind) {
  switch (kind) {
    case EncodingKind::kF32: return "f32";
    case EncodingKind::kF16: return "f16";
    case EncodingKind::kInt8: return "int8";
    case EncodingKind::kInt4: return "int4";
    case EncodingKind::kSparseF32: return "sparse_f32";
    case EncodingKind::kSparseInt8: return "sparse_int8";
    case EncodingKind::kSparseInt4: return "sparse_int4";
    case EncodingKind::kI64: return "i64";
  }
  return "?";
}

std::optional<EncodingKind> encoding_from_name(std::string_view name) {
  for (auto kind : {EncodingKind::kF32, EncodingKind::kF16, EncodingKind::kInt8, EncodingKind::kInt4, EncodingKind::kSparseF32,
                    EncodingKind::kSparseInt8, EncodingKind::kSparseInt4, EncodingKind::kI64}) {
    if (name == encoding_name(kind)) return kind;
  }
  return std::nullopt;
}

std::uint16_t f32_to_f16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000U);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFU;
  if (magnitude >= 0x7F800000U) return sign | (magnitude > 0x7F800000U ? 0x7E00U : 0x7C00U);  // NaN, inf
  if (magnitude >= 0x477FF000U) return sign | 0x7C00U;  // 65520 and up round to inf
  if (magnitude < 0x38800000U) {
    // Below the smallest normal f16 (2^-14): a multiple of 2^-24; the product is exact.
    const float scaled = std::bit_cast<float>(magnitude) * 16777216.0F;
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
  }
  std::uint32_t half = ((((magnitude >> 23) - 127 + 15) << 10) | ((magnitude & 0x7FFFFFU) >> 13));
  const std::uint32_t rest = magnitude & 0x1FFFU;
  if (rest > 0x1000U || (rest == 0x1000U && (half & 1U))) ++half;  // a carry into the exponent is correct
  return static_cast<std::uint16_t>(sign | half);
}

float f16_to_f32(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000U) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1FU;
  const std::uint32_t mantissa = bits & 0x3FFU;
  if (exponent == 0) {
    const float v = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -v : v;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000U | (mantissa << 13));
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

Result<EncodedTensor> encode_constant(const ir::Value& v, const Encoding& enc) {
  return capture([&]() -> EncodedTensor {
    const std::string what = "constant '" + v.name + "'";
    if (!v.is_constant) fail(ErrorCode::kInvalidArgument, "'" + v.name + "' is not a constant; only constants are stored");
    EncodedTensor t;
    t.shape = v.shape;
    t.kind = enc.kind;
    const std::int64_t n = element_count(v.shape, what);
    if (v.dtype == ir::DType::kI64) {
      if (static_cast<std::int64_t>(v.i64.size()) != n) fail(ErrorCode::kInvalidArgument, what + " has " + std::to_string(v.i64.size()) + " values for shape " + ir::shape_to_string(v.shape));
      t.kind = EncodingKind::kI64;  // integer constants are stored exactly whatever was asked
      t.data.resize(v.i64.size() * 8);
      if (!v.i64.empty()) std::memcpy(t.data.data(), v.i64.data(), t.data.size());
      return t;
    }
    if (enc.kind == EncodingKind::kI64) fail(ErrorCode::kInvalidArgument, what + " holds floats; the i64 encoding is for integer constants", "pick f32, f16, int8, int4 or a sparse encoding");
    // A constant freed by Graph::simplify() keeps shape [0] and no data.
    if (static_cast<std::int64_t>(v.f32.size()) != n) fail(ErrorCode::kInvalidArgument, what + " has " + std::to_string(v.f32.size()) + " values for shape " + ir::shape_to_string(v.shape));
    const auto size = static_cast<std::size_t>(n);
    if (enc.kind == EncodingKind::kF32) {
      t.data.resize(size * 4);
      if (size) std::memcpy(t.data.data(), v.f32.data(), t.data.size());
      return t;
    }
    if (enc.kind == EncodingKind::kF16) {
      t.data.resize(size * 2);
      for (std::size_t i = 0; i < size; ++i) {
        const std::uint16_t h = f32_to_f16(v.f32[i]);
        std::memcpy(&t.data[2 * i], &h, 2);
      }
      return t;
    }
    std::vector<bool> stored(size, true);
    std::size_t kept = size;
    if (is_sparse(enc.kind)) {
      t.mask.assign((size + 7) / 8, 0);
      kept = 0;
      for (std::size_t i = 0; i < size; ++i) {
        stored[i] = v.f32[i] != 0.0F;
        if (stored[i]) {
          t.mask[i >> 3] = static_cast<std::uint8_t>(t.mask[i >> 3] | (1U << (i & 7)));
          ++kept;
        }
      }
    }
    if (enc.kind == EncodingKind::kSparseF32) {
      t.data.reserve(kept * 4);
      for (std::size_t i = 0; i < size; ++i) {
        if (!stored[i]) continue;
        std::uint8_t bytes[4];
        std::memcpy(bytes, &v.f32[i], 4);
        t.data.insert(t.data.end(), bytes, bytes + 4);
      }
      return t;
    }
    if (enc.axis < -1 || enc.axis >= static_cast<int>(v.shape.size()) || enc.group_size < 0) {
      fail(ErrorCode::kInvalidArgument, what + ": quantization axis " + std::to_string(enc.axis) + " (group size " + std::to_string(enc.group_size) +
                                            ") does not fit its shape " + ir::shape_to_string(v.shape),
           "use axis 0 (output channels) or -1 (per tensor)");
    }
    const ScaleLayout layout = scale_layout(v.shape, enc.axis, is_int4(enc.kind) ? enc.group_size : 0, n, what);
    if (!is_int4(enc.kind) && enc.group_size != 0) fail(ErrorCode::kInvalidArgument, what + ": group-wise scales are an int4 option", "use Encoding::int4_group");
    t.quant = choose_params(v, enc, layout);
    const CodeRange range = code_range(enc.kind);
    auto code = [&](std::size_t i) {
      const auto k = static_cast<std::size_t>(layout.index(static_cast<std::int64_t>(i)));
      const int zero = t.quant.zero_points.empty() ? 0 : t.quant.zero_points[k];
      const float q = std::nearbyint(v.f32[i] / t.quant.scales[k]) + static_cast<float>(zero);
      return static_cast<std::int8_t>(std::clamp(q, static_cast<float>(range.lo), static_cast<float>(range.hi)));
    };
    if (is_int4(enc.kind)) {
      // Nibbles in stored order: every element for int4, the masked ones for sparse_int4.
      t.data.assign((kept + 1) / 2, 0);
      std::size_t k = 0;
      for (std::size_t i = 0; i < size; ++i) {
        if (!stored[i]) continue;
        const auto bits = static_cast<std::uint8_t>(static_cast<std::uint8_t>(code(i)) & 0xFU);
        t.data[k >> 1] = static_cast<std::uint8_t>(t.data[k >> 1] | (k & 1 ? bits << 4 : bits));
        ++k;
      }
      return t;
    }
    t.data.reserve(kept);
    for (std::size_t i = 0; i < size; ++i) {
      if (stored[i]) t.data.push_back(static_cast<std::uint8_t>(code(i)));
    }
    return t;
  });
}

Status check_encoded(const EncodedTensor& t, const std::string& what) {
  return capture([&]() -> Unit {
    const std::int64_t n = element_count(t.shape, what);
    const auto size = static_cast<std::uint64_t>(n);
    auto expect = [&](const char* part, std::uint64_t have, std::uint64_t want) {
      if (have != want) {
        corrupt(what, std::string(encoding_name(t.kind)) + " " + part + " holds " + std::to_string(have) + " bytes; shape " + ir::shape_to_string(t.shape) +
                          " needs " + std::to_string(want));
      }
    };
    std::uint64_t stored = size;
    if (is_sparse(t.kind)) {
      expect("mask", t.mask.size(), (size + 7) / 8);
      if (size % 8 != 0 && (t.mask.back() >> (size % 8)) != 0) corrupt(what, "the sparsity mask marks elements beyond the tensor's end");
      stored = static_cast<std::uint64_t>(nonzero_bits(t.mask));
    }
    switch (t.kind) {
      case EncodingKind::kF32: expect("data", t.data.size(), size * 4); return Unit{};
      case EncodingKind::kF16: expect("data", t.data.size(), size * 2); return Unit{};
      case EncodingKind::kI64: expect("data", t.data.size(), size * 8); return Unit{};
      case EncodingKind::kSparseF32: expect("data", t.data.size(), stored * 4); return Unit{};
      case EncodingKind::kInt4:
      case EncodingKind::kSparseInt4: expect("data", t.data.size(), (stored + 1) / 2); break;
      case EncodingKind::kInt8:
      case EncodingKind::kSparseInt8: expect("data", t.data.size(), stored); break;
    }
    if (!is_int4(t.kind) && t.quant.group_size != 0) corrupt(what, "group-wise scales are only defined for int4");
    const ScaleLayout layout = scale_layout(t.shape, t.quant.axis, t.quant.group_size, n, what);
    const auto count = static_cast<std::uint64_t>(layout.count());
    if (t.quant.scales.size() != count) {
      corrupt(what, "has " + std::to_string(t.quant.scales.size()) + " scales; axis " + std::to_string(t.quant.axis) + " and group size " +
                        std::to_string(t.quant.group_size) + " need " + std::to_string(count));
    }
    for (float s : t.quant.scales) {
      if (!std::isfinite(s) || s <= 0) corrupt(what, "has the scale " + std::to_string(s) + "; scales must be finite and positive");
    }
    if (!t.quant.zero_points.empty() && t.quant.zero_points.size() != count) {
      corrupt(what, "has " + std::to_string(t.quant.zero_points.size()) + " zero points for " + std::to_string(count) + " scales");
    }
    const CodeRange range = code_range(t.kind);
    for (auto z : t.quant.zero_points) {
      if (z < range.lo || z > range.hi) corrupt(what, "has the zero point " + std::to_string(z) + ", outside the code range");
    }
    return Unit{};
  });
}

Result<std::vector<std::int8_t>> unpack_codes(const EncodedTensor& t) {
  if (Status s = check_encoded(t, "tensor"); !s.ok()) return s.error();
  if (!is_quantized(t.kind)) {
    return Error{ErrorCode::kInvalidArgument, std::string("a ") + encoding_name(t.kind) + " tensor has no integer codes", "only int8, int4, sparse_int8 and sparse_int4 tensors do"};
  }
  return capture([&]() -> std::vector<std::int8_t> {
    const std::int64_t n = element_count(t.shape, "tensor");
    const ScaleLayout layout = scale_layout(t.shape, t.quant.axis, t.quant.group_size, n, "tensor");
    std::vector<std::int8_t> codes(static_cast<std::size_t>(n));
    std::size_t cursor = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      auto& c = codes[static_cast<std::size_t>(i)];
      if (t.kind == EncodingKind::kInt4) {
        c = nibble(t.data, i);
      } else if (t.kind == EncodingKind::kInt8 || mask_bit(t.mask, i)) {
        c = t.kind == EncodingKind::kSparseInt4 ? nibble(t.data, static_cast<std::int64_t>(cursor++)) : static_cast<std::int8_t>(t.data[cursor++]);
      } else {
        // Nothing stored: the zero point, which dequantizes to exactly 0.
        c = static_cast<std::int8_t>(t.quant.zero_points.empty() ? 0 : t.quant.zero_points[static_cast<std::size_t>(layout.index(i))]);
      }
    }
    return codes;
  });
}

Result<std::vector<float>> decode_constant(const EncodedTensor& t) {
  if (Status s = check_encoded(t, "tensor"); !s.ok()) return s.error();
  return capture([&]() -> std::vector<float> {
    const auto n = static_cast<std::size_t>(element_count(t.shape, "tensor"));
    std::vector<float> out(n, 0.0F);
    switch (t.kind) {
      case EncodingKind::kF32:
        if (n) std::memcpy(out.data(), t.data.data(), n * 4);
        return out;
      case EncodingKind::kF16:
        for (std::size_t i = 0; i < n; ++i) {
          std::uint16_t h = 0;
          std::memcpy(&h, &t.data[2 * i], 2);
          out[i] = f16_to_f32(h);
        }
        return out;
      case EncodingKind::kI64:
        for (std::size_t i = 0; i < n; ++i) {
          std::int64_t v = 0;
          std::memcpy(&v, &t.data[8 * i], 8);
          out[i] = static_cast<float>(v);
        }
        return out;
      case EncodingKind::kSparseF32: {
        std::size_t cursor = 0;
        for (std::size_t i = 0; i < n; ++i) {
          if (!mask_bit(t.mask, static_cast<std::int64_t>(i))) continue;
          std::memcpy(&out[i], &t.data[4 * cursor++], 4);
        }
        return out;
      }
      case EncodingKind::kInt8:
      case EncodingKind::kInt4:
      case EncodingKind::kSparseInt8:
      case EncodingKind::kSparseInt4: break;
    }
    const ScaleLayout layout = scale_layout(t.shape, t.quant.axis, t.quant.group_size, static_cast<std::int64_t>(n), "tensor");
    std::vector<std::int8_t> codes = unpack_codes(t).value();
    for (std::size_t i = 0; i < n; ++i) {
      if (is_sparse(t.kind) && !mask_bit(t.mask, static_cast<std::int64_t>(i))) continue;
      const auto k = static_cast<std::size_t>(layout.index(static_cast<std::int64_t>(i)));
      const int zero = t.quant.zero_points.empty() ? 0 : t.quant.zero_points[k];
      out[i] = t.quant.scales[k] * static_cast<float>(codes[i] - zero);
    }
    return out;
  });
}

Result<std::vector<std::int64_t>> decode_i64(const EncodedTensor& t) {
  if (Status s = check_encoded(t, "tensor"); !s.ok()) return s.error();
  if (t.kind != EncodingKind::kI64) return Error{ErrorCode::kInvalidArgument, std::string("a ") + encoding_name(t.kind) + " tensor holds no integers", "use decode_constant"};
  std::vector<std::int64_t> out(t.data.size() / 8);
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

}  // namespace edgeopt::format
