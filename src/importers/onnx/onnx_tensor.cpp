#include <bit>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "importers/onnx/onnx_tensor.h"
#include "ir/graph.h"

namespace edgeopt::onnx_import::detail {
namespace {

static_assert(std::endian::native == std::endian::little, "ONNX raw_data is little-endian; add byte swapping for this host");

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h >> 15) & 1U;
  const std::uint32_t exponent = (h >> 10) & 0x1FU;
  const std::uint32_t mantissa = h & 0x3FFU;
  float magnitude = 0.0F;
  if (exponent == 0) magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31) magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else magnitude = std::ldexp(static_cast<float>(mantissa | 0x400U), static_cast<int>(exponent) - 25);
  return sign ? -magnitude : magnitude;
}

float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float out = 0.0F;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Copies `count` little-endian values of type T out of raw_data.
template <class T>
std::vector<T> raw_values(const std::string& raw, std::size_t count) {
  std::vector<T> out(count);
  if (count) std::memcpy(out.data(), raw.data(), count * sizeof(T));
  return out;
}

[[noreturn]] void size_mismatch(const onnx::TensorProto& t, const std::string& where, std::size_t have, std::size_t want,
                                const char* unit) {
  fail(ErrorCode::kCorruptFile,
       "not a valid ONNX model: tensor '" + t.name() + "' (" + where + ") stores " + std::to_string(have) + " " + unit +
           " but its shape needs " + std::to_string(want),
       "the file is truncated or was written by a broken exporter; re-export the model");
}

const char* type_name(int type) {
  if (onnx::TensorProto_DataType_IsValid(type)) return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(type)).c_str();
  return "unknown";
}

}  // namespace

bool ConstTensor::depends_on_batch() const {
  for (Origin o : origin) {
    if (o != Origin::kPlain) return true;
  }
  return false;
}

std::int64_t checked_count(const std::vector<std::int64_t>& dims, std::int64_t limit, const std::string& what) {
  std::int64_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0) fail(ErrorCode::kCorruptFile, what + " has a negative dimension in " + ir::shape_to_string(dims));
    if (d != 0 && n > limit / d) {
      fail(ErrorCode::kCorruptFile, what + " with shape " + ir::shape_to_string(dims) + " is too large",
           "tensors above " + std::to_string(limit) + " elements are not supported");
    }
    n *= d;
  }
  return n;
}

ConstTensor decode_tensor(const onnx::TensorProto& t, const std::string& where) {
  using TP = onnx::TensorProto;
  if (t.data_location() == TP::EXTERNAL || t.external_data_size() > 0) {
    fail(ErrorCode::kUnsupportedFormat,
         "model uses external data files; tensor '" + t.name() + "' (" + where + ") keeps its values outside the .onnx file",
         "save the model as one file: onnx.save(onnx.load('model.onnx'), 'single.onnx', save_as_external_data=False) "
         "(possible below 2 GiB)");
  }
  if (t.has_segment()) fail(ErrorCode::kUnsupportedFormat, "tensor '" + t.name() + "' (" + where + ") is stored in segments", "re-save the model with onnx.save");
  ConstTensor out;
  out.data_type = t.data_type();
  out.dims.assign(t.dims().begin(), t.dims().end());
  const auto count = static_cast<std::size_t>(checked_count(out.dims, std::int64_t{1} << 31, "tensor '" + t.name() + "' (" + where + ")"));
  const std::string& raw = t.raw_data();
  const bool use_raw = t.has_raw_data();
  auto check_raw = [&](std::size_t element_size) {
    if (raw.size() != count * element_size) size_mismatch(t, where, raw.size(), count * element_size, "bytes");
  };
  auto check_field = [&](int have) {
    if (static_cast<std::size_t>(have) != count) size_mismatch(t, where, static_cast<std::size_t>(have), count, "values");
  };
  switch (t.data_type()) {
    case TP::FLOAT:
      if (use_raw) { check_raw(4); out.f = raw_values<float>(raw, count); }
      else { check_field(t.float_data_size()); out.f.assign(t.float_data().begin(), t.float_data().end()); }
      return out;
    case TP::DOUBLE: {
      std::vector<double> d;
      if (use_raw) { check_raw(8); d = raw_values<double>(raw, count); }
      else { check_field(t.double_data_size()); d.assign(t.double_data().begin(), t.double_data().end()); }
      out.f.assign(d.begin(), d.end());
      return out;
    }
    case TP::FLOAT16:
    case TP::BFLOAT16: {
      std::vector<std::uint16_t> bits;
      if (use_raw) { check_raw(2); bits = raw_values<std::uint16_t>(raw, count); }
      else {
        check_field(t.int32_data_size());
        for (auto v : t.int32_data()) bits.push_back(static_cast<std::uint16_t>(v));
      }
      out.f.reserve(count);
      for (auto b : bits) out.f.push_back(t.data_type() == TP::FLOAT16 ? half_to_float(b) : bfloat16_to_float(b));
      return out;
    }
    default: break;
  }
  out.is_float = false;
  switch (t.data_type()) {
    case TP::INT64:
      if (use_raw) { check_raw(8); out.i = raw_values<std::int64_t>(raw, count); }
      else { check_field(t.int64_data_size()); out.i.assign(t.int64_data().begin(), t.int64_data().end()); }
      return out;
    case TP::UINT64:
    case TP::UINT32: {
      const bool wide = t.data_type() == TP::UINT64;
      std::vector<std::uint64_t> u;
      if (use_raw) {
        if (wide) { check_raw(8); u = raw_values<std::uint64_t>(raw, count); }
        else { check_raw(4); auto v = raw_values<std::uint32_t>(raw, count); u.assign(v.begin(), v.end()); }
      } else {
        check_field(t.uint64_data_size());
        u.assign(t.uint64_data().begin(), t.uint64_data().end());
      }
      for (auto v : u) out.i.push_back(v > static_cast<std::uint64_t>(kMaxDim) ? kMaxDim : static_cast<std::int64_t>(v));
      return out;
    }
    case TP::INT32:
    case TP::INT16:
    case TP::INT8:
    case TP::UINT16:
    case TP::UINT8:
    case TP::BOOL: {
      if (!use_raw) {
        check_field(t.int32_data_size());
        out.i.assign(t.int32_data().begin(), t.int32_data().end());
        return out;
      }
      switch (t.data_type()) {
        case TP::INT32: { check_raw(4); auto v = raw_values<std::int32_t>(raw, count); out.i.assign(v.begin(), v.end()); break; }
        case TP::INT16: { check_raw(2); auto v = raw_values<std::int16_t>(raw, count); out.i.assign(v.begin(), v.end()); break; }
        case TP::UINT16: { check_raw(2); auto v = raw_values<std::uint16_t>(raw, count); out.i.assign(v.begin(), v.end()); break; }
        case TP::INT8: { check_raw(1); auto v = raw_values<std::int8_t>(raw, count); out.i.assign(v.begin(), v.end()); break; }
        default: { check_raw(1); auto v = raw_values<std::uint8_t>(raw, count); out.i.assign(v.begin(), v.end()); break; }
      }
      return out;
    }
    default:
      fail(ErrorCode::kUnsupportedFormat,
           "tensor '" + t.name() + "' (" + where + ") has data type " + type_name(t.data_type()) + ", which EdgeOpt does not read",
           "EdgeOpt reads float32/float16/double weights and integer shape tensors; convert the model to float32");
  }
}

std::string node_name(const onnx::NodeProto& node) {
  if (!node.name().empty()) return node.name();
  if (node.output_size() > 0 && !node.output(0).empty()) return node.output(0);
  return node.op_type();
}

std::string describe(const onnx::NodeProto& node) { return "node '" + node_name(node) + "' (" + node.op_type() + ")"; }

const onnx::AttributeProto* find_attr(const onnx::NodeProto& node, std::string_view name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

namespace {

[[noreturn]] void bad_attr(const onnx::NodeProto& node, std::string_view name, const char* want) {
  fail(ErrorCode::kCorruptFile, "not a valid ONNX model: attribute '" + std::string(name) + "' of " + describe(node) + " is not " + want,
       "re-export the model; the file does not follow the ONNX specification");
}

bool typed(const onnx::AttributeProto& a, onnx::AttributeProto_AttributeType want) {
  return a.type() == want || a.type() == onnx::AttributeProto::UNDEFINED;
}

}  // namespace

std::int64_t attr_int(const onnx::NodeProto& node, std::string_view name, std::int64_t fallback) {
  const auto* a = find_attr(node, name);
  if (!a) return fallback;
  if (!typed(*a, onnx::AttributeProto::INT)) bad_attr(node, name, "an integer");
  return a->i();
}

float attr_float(const onnx::NodeProto& node, std::string_view name, float fallback) {
  const auto* a = find_attr(node, name);
  if (!a) return fallback;
  if (a->type() == onnx::AttributeProto::INT) return static_cast<float>(a->i());
  if (!typed(*a, onnx::AttributeProto::FLOAT)) bad_attr(node, name, "a float");
  return a->f();
}

std::string attr_string(const onnx::NodeProto& node, std::string_view name, const std::string& fallback) {
  const auto* a = find_attr(node, name);
  if (!a) return fallback;
  if (!typed(*a, onnx::AttributeProto::STRING)) bad_attr(node, name, "a string");
  return a->s();
}

std::vector<std::int64_t> attr_ints(const onnx::NodeProto& node, std::string_view name) {
  const auto* a = find_attr(node, name);
  if (!a) return {};
  if (!typed(*a, onnx::AttributeProto::INTS)) bad_attr(node, name, "a list of integers");
  return {a->ints().begin(), a->ints().end()};
}

std::vector<float> attr_floats(const onnx::NodeProto& node, std::string_view name) {
  const auto* a = find_attr(node, name);
  if (!a) return {};
  if (!typed(*a, onnx::AttributeProto::FLOATS)) bad_attr(node, name, "a list of floats");
  return {a->floats().begin(), a->floats().end()};
}

std::vector<std::int64_t> int_values(const ConstTensor& t, const std::string& what) {
  if (t.is_float) fail(ErrorCode::kCorruptFile, "not a valid ONNX model: " + what + " should be an integer tensor, it is float");
  return t.i;
}

}  // namespace edgeopt::onnx_import::detail
