// Writer and reader of the EdgeOpt model format. The reader trusts nothing: every count, offset,
// shape and attribute is checked before it is used, and the graph's shapes are re-inferred and
// compared with the stored ones.
#include "format/eom.h"

#include <zlib.h>

#include "common/file_io.h"

#include <nlohmann/json.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

namespace edgeopt::format {
namespace {

const std::array<std::uint32_t, 256>& crc32c_table() {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78U : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

#if defined(__x86_64__)
// SSE4.2 has the CRC32C instruction: ~20x the table's speed, so checking a large model is cheap.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::string_view bytes, std::uint32_t crc) {
  std::uint64_t c = crc;
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes.data() + i, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; i < bytes.size(); ++i) c32 = __builtin_ia32_crc32qi(c32, static_cast<unsigned char>(bytes[i]));
  return c32;
}
#endif

using json = nlohmann::json;

constexpr std::uint64_t kAlignment = 32;        // what the writer uses; readers accept any power of two
constexpr std::uint64_t kMaxAlignment = 65536;
constexpr std::size_t kPreambleBytes = 16;      // magic, version, header length (versions 1 and 2)
constexpr std::size_t kPreambleBytesV3 = 24;    // ... then CRC32C of the stored header and of the data
constexpr std::int64_t kMaxDim = std::int64_t{1} << 31;
constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;
constexpr std::size_t kMaxRank = 16;
constexpr std::size_t kMaxListAttr = 64;
constexpr std::int64_t kMaxWindow = std::int64_t{1} << 31;  // kernel, stride, dilation, pad, group
constexpr std::int64_t kMaxAxis = 64;

const char* pad_mode_name(ir::PadMode m) {
  switch (m) {
    case ir::PadMode::kConstant: return "constant";
    case ir::PadMode::kReflect: return "reflect";
    case ir::PadMode::kEdge: return "edge";
  }
  return "?";
}

// The attribute defaults of format version 1, spelled out so a later change of ir::Attrs'
// defaults cannot change what old files mean.
ir::Attrs format_default_attrs() {
  ir::Attrs a;
  a.kernel = {};
  a.strides = {};
  a.pads = {};
  a.dilations = {};
  a.group = 1;
  a.axis = 1;
  a.perm = {};
  a.shape = {};
  a.axes = {};
  a.starts = {};
  a.ends = {};
  a.steps = {};
  a.alpha = 0.0F;
  a.beta = 0.0F;
  a.min = -std::numeric_limits<float>::infinity();
  a.max = std::numeric_limits<float>::infinity();
  a.epsilon = 1e-5F;
  a.pad_value = 0.0F;
  a.pad_mode = ir::PadMode::kConstant;
  a.ceil_mode = false;
  a.count_include_pad = false;
  return a;
}

// JSON has no infinities or NaN; those are written as strings.
json float_json(float f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  return static_cast<double>(f);
}

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

// ---------------------------------------------------------------- writer

json attrs_json(const ir::Attrs& a) {
  const ir::Attrs d = format_default_attrs();
  json j = json::object();
  auto list = [&](const char* key, const std::vector<std::int64_t>& v, const std::vector<std::int64_t>& def) {
    if (v != def) j[key] = v;
  };
  list("kernel", a.kernel, d.kernel);
  list("strides", a.strides, d.strides);
  list("pads", a.pads, d.pads);
  list("dilations", a.dilations, d.dilations);
  if (a.group != d.group) j["group"] = a.group;
  if (a.axis != d.axis) j["axis"] = a.axis;
  list("perm", a.perm, d.perm);
  list("shape", a.shape, d.shape);
  list("axes", a.axes, d.axes);
  list("starts", a.starts, d.starts);
  list("ends", a.ends, d.ends);
  list("steps", a.steps, d.steps);
  auto real = [&](const char* key, float v, float def) {
    if (!same_bits(v, def)) j[key] = float_json(v);
  };
  real("alpha", a.alpha, d.alpha);
  real("beta", a.beta, d.beta);
  real("min", a.min, d.min);
  real("max", a.max, d.max);
  real("epsilon", a.epsilon, d.epsilon);
  real("pad_value", a.pad_value, d.pad_value);
  if (a.pad_mode != d.pad_mode) j["pad_mode"] = pad_mode_name(a.pad_mode);
  if (a.ceil_mode != d.ceil_mode) j["ceil_mode"] = a.ceil_mode;
  if (a.count_include_pad != d.count_include_pad) j["count_include_pad"] = a.count_include_pad;
  return j;
}

json quant_json(const ir::QuantParams& q) {
  json j = json::object();
  json scales = json::array();
  for (float s : q.scales) scales.push_back(float_json(s));
  j["scales"] = std::move(scales);
  if (!q.zero_points.empty()) j["zero_points"] = q.zero_points;
  j["axis"] = q.axis;
  if (q.group_size != 0) j["group_size"] = q.group_size;
  return j;
}

class BlobWriter {
 public:
  json add(const std::uint8_t* bytes, std::size_t length) {
    data_.resize((data_.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
    const std::size_t offset = data_.size();
    data_.append(reinterpret_cast<const char*>(bytes), length);
    return json::array({offset, length});
  }
  json add(const std::vector<std::uint8_t>& bytes) { return add(bytes.data(), bytes.size()); }
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

json tensor_json(const EncodedTensor& t, BlobWriter& blobs) {
  json j = json::object();
  j["encoding"] = encoding_name(t.kind);
  j["data"] = blobs.add(t.data);
  if (!t.mask.empty() || is_sparse(t.kind)) j["mask"] = blobs.add(t.mask);
  if (is_quantized(t.kind)) {
    j["axis"] = t.quant.axis;
    if (t.quant.group_size != 0) j["group_size"] = t.quant.group_size;
    std::vector<std::uint8_t> scales;
    if (is_int4(t.kind)) {
      scales.resize(t.quant.scales.size() * 2);
      for (std::size_t k = 0; k < t.quant.scales.size(); ++k) {
        const std::uint16_t h = f32_to_f16(t.quant.scales[k]);
        std::memcpy(&scales[2 * k], &h, 2);
      }
    } else {
      scales.resize(t.quant.scales.size() * 4);
      if (!scales.empty()) std::memcpy(scales.data(), t.quant.scales.data(), scales.size());
    }
    j["scales"] = blobs.add(scales);
    if (!t.quant.zero_points.empty()) {
      std::vector<std::uint8_t> zero_points;
      for (auto z : t.quant.zero_points) zero_points.push_back(static_cast<std::uint8_t>(static_cast<std::int8_t>(z)));
      j["zero_points"] = blobs.add(zero_points);
    }
  }
  return j;
}

// The graph's structure without constant data, with shapes inferred: what the header describes.
ir::Graph inferred_structure(const ir::Graph& g) {
  ir::Graph s;
  for (const ir::Value& v : g.values) {
    ir::Value copy;
    copy.name = v.name;
    copy.shape = v.shape;
    copy.dtype = v.dtype;
    copy.layout = v.layout;
    copy.quant = v.quant;
    copy.is_constant = v.is_constant;
    s.add_value(std::move(copy));
  }
  s.nodes = g.nodes;
  s.inputs = g.inputs;
  s.outputs = g.outputs;
  s.infer_shapes();
  return s;
}

std::string write_bytes(const ir::Graph& g, const EomWriteOptions& options) {
  const ir::Graph structure = inferred_structure(g);
  std::vector<bool> is_weight(g.values.size(), false);
  for (const ir::Node& n : g.nodes) {
    const bool weighted = n.op == ir::OpKind::kConv || n.op == ir::OpKind::kGemm || n.op == ir::OpKind::kMatMul;
    if (weighted && n.inputs.size() > 1 && n.inputs[1] >= 0) is_weight[static_cast<std::size_t>(n.inputs[1])] = true;
  }
  std::set<std::string> unused_choices;
  for (const auto& [name, enc] : options.per_constant) unused_choices.insert(name);

  BlobWriter blobs;
  json values = json::array();
  for (std::size_t id = 0; id < g.values.size(); ++id) {
    const ir::Value& v = g.values[id];
    json jv = json::object();
    jv["name"] = v.name;
    jv["shape"] = structure.values[id].shape;
    jv["dtype"] = ir::dtype_name(v.dtype);
    if (v.layout != ir::Layout::kUnknown) jv["layout"] = ir::layout_name(v.layout);
    if (v.is_constant) {
      Encoding enc = is_weight[id] ? options.weights : Encoding::f32();
      if (auto it = options.per_constant.find(v.name); it != options.per_constant.end()) {
        enc = it->second;
        unused_choices.erase(v.name);
      }
      auto encoded = encode_constant(v, enc);
      if (!encoded.ok()) throw Failure{encoded.error()};
      const EncodedTensor& t = encoded.value();
      jv["tensor"] = tensor_json(t, blobs);
      if (v.quant && !is_quantized(t.kind)) jv["quant"] = quant_json(*v.quant);
    } else if (v.quant) {
      jv["quant"] = quant_json(*v.quant);
    }
    values.push_back(std::move(jv));
  }
  if (!unused_choices.empty()) {
    fail(ErrorCode::kInvalidArgument, "an encoding was chosen for '" + *unused_choices.begin() + "', which is not a constant of graph '" + g.name + "'",
         "check the constant names (edgeopt inspect --ir lists them)");
  }
  json nodes = json::array();
  for (const ir::Node& n : g.nodes) {
    json jn = json::object();
    jn["op"] = std::string(ir::op_name(n.op));
    jn["name"] = n.name;
    if (n.source_op != ir::op_name(n.op)) jn["source_op"] = n.source_op;
    jn["inputs"] = n.inputs;
    jn["outputs"] = n.outputs;
    json attrs = attrs_json(n.attrs);
    if (!attrs.empty()) jn["attrs"] = std::move(attrs);
    nodes.push_back(std::move(jn));
  }
  json graph = json::object();
  graph["name"] = g.name;
  graph["producer"] = g.producer;
  if (g.extra_source_params != 0) graph["extra_source_params"] = g.extra_source_params;
  graph["values"] = std::move(values);
  graph["nodes"] = std::move(nodes);
  graph["inputs"] = g.inputs;
  graph["outputs"] = g.outputs;

  json header = json::object();
  header["format"] = "edgeopt-model";
  header["version"] = kEomVersion;
  header["alignment"] = kAlignment;
  header["data_size"] = blobs.data().size();
  header["graph"] = std::move(graph);
  // Invalid UTF-8 in a name would make dump() throw; replace it rather than fail the save.
  const std::string text = header.dump(-1, ' ', false, json::error_handler_t::replace);

  // The header is mostly names and numbers: deflated it is ~4x smaller, which matters for small
  // int8/int4 models where it would otherwise be a tenth of the file.
  uLongf packed_size = compressBound(static_cast<uLong>(text.size()));
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size, reinterpret_cast<const Bytef*>(text.data()),
                static_cast<uLong>(text.size()), 9) != Z_OK) {
    fail(ErrorCode::kInternal, "could not compress the model header");
  }
  packed.resize(packed_size);
  std::string out;
  out.reserve(kPreambleBytes + packed.size() + kAlignment + blobs.data().size());
  out.append(kEomMagic, 4);
  const std::uint32_t version = kEomVersion;
  const std::uint64_t header_length = packed.size();
  const std::uint32_t header_crc = crc32c(packed);
  const std::uint32_t data_crc = crc32c(blobs.data());
  out.append(reinterpret_cast<const char*>(&version), 4);
  out.append(reinterpret_cast<const char*>(&header_length), 8);
  out.append(reinterpret_cast<const char*>(&header_crc), 4);
  out.append(reinterpret_cast<const char*>(&data_crc), 4);
  out += packed;
  out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
  out += blobs.data();
  return out;
}

// ---------------------------------------------------------------- reader

class Reader {
 public:
  Reader(std::string_view bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}

  EomModel run() {
    const json header = read_header();
    const json& g = field(header, "graph", "the header");
    if (!g.is_object()) corrupt("the header's 'graph' is not an object");
    model_.graph.name = string_field(g, "name", "the graph");
    model_.graph.producer = string_field(g, "producer", "the graph");
    if (g.contains("extra_source_params")) model_.graph.extra_source_params = int_in(g["extra_source_params"], -kMaxElements, kMaxElements, "the graph's extra_source_params");
    read_values(array_field(g, "values", "the graph"));
    read_nodes(array_field(g, "nodes", "the graph"));
    model_.graph.inputs = ids(array_field(g, "inputs", "the graph"), "graph input");
    model_.graph.outputs = ids(array_field(g, "outputs", "the graph"), "graph output");
    check_and_infer();
    return std::move(model_);
  }

 private:
  [[noreturn]] void corrupt(const std::string& what) const {
    fail(ErrorCode::kCorruptFile, "'" + source_ + "' is not a valid EdgeOpt model: " + what,
         "the file is damaged or truncated; write it again with edgeopt (or re-run the optimization that produced it)");
  }

  // ---- header ----

  // Version 2 headers are a zlib stream. Inflated in steps with a cap, so a crafted file cannot
  // make the reader allocate without bound.
  std::string inflate_header(std::string_view stored) const {
    constexpr std::size_t kMaxHeader = std::size_t{256} << 20;
    if (stored.size() > std::numeric_limits<uInt>::max()) corrupt("its compressed header is larger than 4 GiB");
    z_stream z{};
    if (inflateInit(&z) != Z_OK) fail(ErrorCode::kInternal, "zlib could not start");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(stored.data()));
    z.avail_in = static_cast<uInt>(stored.size());
    std::string text;
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (text.size() >= kMaxHeader) {
        inflateEnd(&z);
        corrupt("its header inflates to more than 256 MiB");
      }
      const std::size_t before = text.size();
      text.resize(before + 65536);
      z.next_out = reinterpret_cast<Bytef*>(text.data() + before);
      z.avail_out = 65536;
      rc = inflate(&z, Z_NO_FLUSH);
      text.resize(before + 65536 - z.avail_out);
      if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) corrupt("its compressed header is damaged or truncated");
    return text;
  }

  json read_header() {
    if (bytes_.size() < kPreambleBytes || bytes_.substr(0, 4) != std::string_view(kEomMagic, 4)) {
      fail(ErrorCode::kUnsupportedFormat, "'" + source_ + "' is not an EdgeOpt model (.eom): it does not start with 'EOMF'",
           "pass a file written by edgeopt; ONNX, Keras and TorchScript models are imported, not read as .eom");
    }
    std::uint32_t version = 0;
    std::uint64_t header_length = 0;
    std::memcpy(&version, bytes_.data() + 4, 4);
    std::memcpy(&header_length, bytes_.data() + 8, 8);
    if (version == 0 || version > kEomVersion) {
      fail(ErrorCode::kUnsupportedFormat,
           "'" + source_ + "' uses EdgeOpt model format version " + std::to_string(version) + "; this build reads version " + std::to_string(kEomVersion),
           version > kEomVersion ? "upgrade EdgeOpt to read it" : "the file is damaged; write it again");
    }
    const std::size_t preamble = version >= 3 ? kPreambleBytesV3 : kPreambleBytes;
    if (bytes_.size() < preamble) corrupt("it is truncated inside its preamble");
    if (header_length > bytes_.size() - preamble) {
      corrupt("its header claims " + std::to_string(header_length) + " bytes but the file has " + std::to_string(bytes_.size() - preamble) + " after the preamble");
    }
    const std::string_view stored = bytes_.substr(preamble, header_length);
    std::uint32_t data_crc = 0;
    model_.version = version;
    if (version < 3) {
      model_.note = "'" + source_ + "' is an .eom version " + std::to_string(version) +
                    " file, which carries no checksum: damage to it goes unnoticed; write it again with this edgeopt to add one";
    } else {
      std::uint32_t header_crc = 0;
      std::memcpy(&header_crc, bytes_.data() + 16, 4);
      std::memcpy(&data_crc, bytes_.data() + 20, 4);
      if (crc32c(stored) != header_crc) corrupt("its header fails its CRC32C checksum (the file was changed or damaged)");
    }
    json header = json::parse(version >= 2 ? inflate_header(stored) : std::string(stored), nullptr, false);
    if (header.is_discarded()) corrupt("its header is not valid JSON");
    if (!header.is_object()) corrupt("its header is not a JSON object");
    if (string_field(header, "format", "the header") != "edgeopt-model") corrupt("its header does not name the format 'edgeopt-model'");
    if (int_in(field(header, "version", "the header"), 0, kMaxElements, "the header's version") != version) {
      corrupt("the header's version differs from the preamble's " + std::to_string(version));
    }
    const auto alignment = static_cast<std::uint64_t>(int_in(field(header, "alignment", "the header"), 1, kMaxAlignment, "the alignment"));
    if (!std::has_single_bit(alignment)) corrupt("the alignment " + std::to_string(alignment) + " is not a power of two");
    alignment_ = alignment;
    const std::uint64_t header_end = preamble + header_length;
    data_start_ = (header_end + alignment - 1) / alignment * alignment;
    const auto data_size = static_cast<std::uint64_t>(int_in(field(header, "data_size", "the header"), 0, std::numeric_limits<std::int64_t>::max(), "data_size"));
    if (data_start_ > bytes_.size() || data_size > bytes_.size() - data_start_) {
      corrupt("it is truncated: the header promises " + std::to_string(data_size) + " bytes of tensor data at offset " + std::to_string(data_start_) +
              ", the file has " + std::to_string(bytes_.size()) + " bytes");
    }
    data_size_ = data_size;
    if (version >= 3 && crc32c(bytes_.substr(data_start_, data_size)) != data_crc) {
      corrupt("its tensor data fails its CRC32C checksum (the file was changed or damaged: weights would load wrong)");
    }
    return header;
  }

  // ---- JSON access that names what is wrong ----

  const json& field(const json& obj, const char* key, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) corrupt(where + " lacks '" + key + "'");
    return *it;
  }

  std::string string_field(const json& obj, const char* key, const std::string& where) const {
    const json& j = field(obj, key, where);
    if (!j.is_string()) corrupt(where + "'s '" + key + "' is not a string");
    return j.get<std::string>();
  }

  const json& array_field(const json& obj, const char* key, const std::string& where) const {
    const json& j = field(obj, key, where);
    if (!j.is_array()) corrupt(where + "'s '" + key + "' is not an array");
    return j;
  }

  std::int64_t int_in(const json& j, std::int64_t lo, std::int64_t hi, const std::string& what) const {
    std::int64_t v = 0;
    if (j.is_number_unsigned()) {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(hi)) corrupt(what + " is " + std::to_string(u) + ", above " + std::to_string(hi));
      v = static_cast<std::int64_t>(u);
    } else if (j.is_number_integer()) {
      v = j.get<std::int64_t>();
    } else {
      corrupt(what + " is not an integer");
    }
    if (v < lo || v > hi) corrupt(what + " is " + std::to_string(v) + "; it must lie in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }

  std::vector<std::int64_t> int_list(const json& j, std::int64_t lo, std::int64_t hi, std::size_t max_size, const std::string& what) const {
    if (!j.is_array()) corrupt(what + " is not an array");
    if (j.size() > max_size) corrupt(what + " has " + std::to_string(j.size()) + " entries; at most " + std::to_string(max_size) + " are allowed");
    std::vector<std::int64_t> out;
    for (const json& e : j) out.push_back(int_in(e, lo, hi, what));
    return out;
  }

  float real(const json& j, const std::string& what) const {
    if (j.is_number()) return static_cast<float>(j.get<double>());
    if (j.is_string()) {
      const auto& s = j.get_ref<const std::string&>();
      if (s == "inf") return std::numeric_limits<float>::infinity();
      if (s == "-inf") return -std::numeric_limits<float>::infinity();
      if (s == "nan") return std::numeric_limits<float>::quiet_NaN();
    }
    corrupt(what + " is not a number");
  }

  bool boolean(const json& j, const std::string& what) const {
    if (!j.is_boolean()) corrupt(what + " is not true or false");
    return j.get<bool>();
  }

  std::string_view blob(const json& tensor, const char* key, const std::string& where) const {
    const json& j = field(tensor, key, where);
    if (!j.is_array() || j.size() != 2) corrupt(where + "'s '" + key + "' is not an [offset, length] pair");
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    const auto offset = static_cast<std::uint64_t>(int_in(j[0], 0, max, where + "'s " + key + " offset"));
    const auto length = static_cast<std::uint64_t>(int_in(j[1], 0, max, where + "'s " + key + " length"));
    if (offset % alignment_ != 0) corrupt(where + "'s " + key + " offset " + std::to_string(offset) + " is not aligned to " + std::to_string(alignment_));
    if (offset > data_size_ || length > data_size_ - offset) {
      corrupt(where + "'s " + key + " (" + std::to_string(length) + " bytes at " + std::to_string(offset) + ") lies outside the " + std::to_string(data_size_) +
              " bytes of tensor data");
    }
    return bytes_.substr(static_cast<std::size_t>(data_start_ + offset), static_cast<std::size_t>(length));
  }

  static std::vector<std::uint8_t> to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

  // ---- values ----

  ir::Shape shape(const json& j, bool allow_batch, const std::string& where) const {
    if (!j.is_array()) corrupt(where + "'s shape is not an array");
    if (j.size() > kMaxRank) corrupt(where + " has rank " + std::to_string(j.size()) + "; at most " + std::to_string(kMaxRank) + " is allowed");
    ir::Shape s;
    std::int64_t product = 1;
    for (const json& d : j) {
      const std::int64_t dim = int_in(d, allow_batch ? ir::kBatch : 0, kMaxDim, where + "'s dimension");
      if (dim > 0 && product > kMaxElements / dim) corrupt(where + " holds more than 2^40 elements");
      if (dim >= 0) product *= dim;
      s.push_back(dim);
    }
    return s;
  }

  ir::QuantParams quant(const json& j, const std::string& where) const {
    if (!j.is_object()) corrupt(where + "'s quant is not an object");
    ir::QuantParams q;
    const json& scales = array_field(j, "scales", where + "'s quant");
    for (const json& s : scales) q.scales.push_back(real(s, where + "'s scale"));
    if (j.contains("zero_points")) {
      for (auto z : int_list(j["zero_points"], std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max(), scales.size(), where + "'s zero point")) {
        q.zero_points.push_back(static_cast<std::int32_t>(z));
      }
    }
    q.axis = static_cast<int>(int_in(field(j, "axis", where + "'s quant"), -1, kMaxAxis, where + "'s quant axis"));
    if (j.contains("group_size")) q.group_size = static_cast<int>(int_in(j["group_size"], 0, kMaxWindow - 1, where + "'s group size"));
    return q;
  }

  EncodedTensor tensor(const json& j, const ir::Value& v, const std::string& where) const {
    if (!j.is_object()) corrupt(where + "'s tensor is not an object");
    const std::string name = string_field(j, "encoding", where);
    const auto kind = encoding_from_name(name);
    if (!kind) {
      fail(ErrorCode::kUnsupportedFormat, "'" + source_ + "': " + where + " uses the unknown encoding '" + name + "'",
           "the file was written by a newer EdgeOpt; upgrade to read it");
    }
    if ((*kind == EncodingKind::kI64) != (v.dtype == ir::DType::kI64)) corrupt(where + " has dtype " + ir::dtype_name(v.dtype) + " but encoding " + name);
    EncodedTensor t;
    t.kind = *kind;
    t.shape = v.shape;
    t.data = to_bytes(blob(j, "data", where));
    if (is_sparse(t.kind)) t.mask = to_bytes(blob(j, "mask", where));
    if (is_quantized(t.kind)) {
      t.quant.axis = static_cast<int>(int_in(field(j, "axis", where), -1, kMaxAxis, where + "'s axis"));
      if (j.contains("group_size")) t.quant.group_size = static_cast<int>(int_in(j["group_size"], 0, kMaxWindow - 1, where + "'s group size"));
      const std::string_view scales = blob(j, "scales", where);
      const std::size_t width = is_int4(t.kind) ? 2 : 4;
      if (scales.size() % width != 0) corrupt(where + "'s scales are " + std::to_string(scales.size()) + " bytes, not a multiple of " + std::to_string(width));
      t.quant.scales.resize(scales.size() / width);
      for (std::size_t k = 0; k < t.quant.scales.size(); ++k) {
        if (width == 2) {
          std::uint16_t h = 0;
          std::memcpy(&h, scales.data() + 2 * k, 2);
          t.quant.scales[k] = f16_to_f32(h);
        } else {
          std::memcpy(&t.quant.scales[k], scales.data() + 4 * k, 4);
        }
      }
      if (j.contains("zero_points")) {
        for (char z : blob(j, "zero_points", where)) t.quant.zero_points.push_back(static_cast<std::int8_t>(z));
      }
    }
    if (Status s = check_encoded(t, where); !s.ok()) throw Failure{s.error()};
    return t;
  }

  void read_values(const json& values) {
    std::set<std::string> names;
    for (std::size_t id = 0; id < values.size(); ++id) {
      const json& jv = values[id];
      std::string where = "value #" + std::to_string(id);
      if (!jv.is_object()) corrupt(where + " is not an object");
      ir::Value v;
      v.name = string_field(jv, "name", where);
      where += " ('" + v.name + "')";
      if (v.name.empty()) corrupt(where + " has an empty name");
      if (!names.insert(v.name).second) corrupt("the name '" + v.name + "' is used by two values");
      const std::string dtype = string_field(jv, "dtype", where);
      bool known = false;
      for (auto d : {ir::DType::kF32, ir::DType::kF16, ir::DType::kI8, ir::DType::kU8, ir::DType::kI4Packed, ir::DType::kI64}) {
        if (dtype == ir::dtype_name(d)) {
          v.dtype = d;
          known = true;
        }
      }
      if (!known) corrupt(where + " has the unknown dtype '" + dtype + "'");
      if (jv.contains("layout")) {
        const json& jl = jv["layout"];
        known = false;
        for (auto l : {ir::Layout::kUnknown, ir::Layout::kNCHW, ir::Layout::kNHWC, ir::Layout::kNC}) {
          if (jl.is_string() && jl.get_ref<const std::string&>() == ir::layout_name(l)) {
            v.layout = l;
            known = true;
          }
        }
        if (!known) corrupt(where + " has an unknown layout");
      }
      v.is_constant = jv.contains("tensor");
      v.shape = shape(field(jv, "shape", where), !v.is_constant, where);
      if (jv.contains("quant")) v.quant = quant(jv["quant"], where);
      if (v.is_constant) {
        EncodedTensor t = tensor(jv["tensor"], v, where);
        switch (t.kind) {
          case EncodingKind::kI64: v.i64 = decode_i64(t).value(); break;
          case EncodingKind::kF32: v.f32 = decode_constant(t).value(); break;
          default:
            v.f32 = decode_constant(t).value();
            if (is_quantized(t.kind)) v.quant = t.quant;
            model_.encoded.emplace(static_cast<int>(id), std::move(t));
        }
      }
      model_.graph.add_value(std::move(v));
    }
  }

  // ---- nodes ----

  int value_id(const json& j, bool allow_omitted, const std::string& what) const {
    return static_cast<int>(int_in(j, allow_omitted ? -1 : 0, static_cast<std::int64_t>(model_.graph.values.size()) - 1, what));
  }

  std::vector<int> ids(const json& j, const std::string& what) const {
    std::vector<int> out;
    for (const json& e : j) out.push_back(value_id(e, false, what));
    return out;
  }

  ir::Attrs attrs(const json& j, const std::string& where) const {
    ir::Attrs a = format_default_attrs();
    if (!j.is_object()) corrupt(where + "'s attrs are not an object");
    for (const auto& [key, val] : j.items()) {
      const std::string what = where + "'s attribute '" + key + "'";
      if (key == "kernel") a.kernel = int_list(val, 1, kMaxWindow, kMaxListAttr, what);
      else if (key == "strides") a.strides = int_list(val, 1, kMaxWindow, kMaxListAttr, what);
      else if (key == "dilations") a.dilations = int_list(val, 1, kMaxWindow, kMaxListAttr, what);
      else if (key == "pads") a.pads = int_list(val, -kMaxWindow, kMaxWindow, kMaxListAttr, what);
      else if (key == "group") a.group = int_in(val, 1, kMaxWindow, what);
      else if (key == "axis") a.axis = int_in(val, -kMaxAxis, kMaxAxis, what);
      else if (key == "perm") a.perm = int_list(val, -kMaxAxis, kMaxAxis, kMaxListAttr, what);
      else if (key == "axes") a.axes = int_list(val, -kMaxAxis, kMaxAxis, kMaxListAttr, what);
      // Slice bounds are clamped by the shape function, so any int64 is meaningful (INT64_MAX = to the end).
      else if (key == "starts") a.starts = int_list(val, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(), kMaxListAttr, what);
      else if (key == "ends") a.ends = int_list(val, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(), kMaxListAttr, what);
      else if (key == "steps") a.steps = int_list(val, 1, std::numeric_limits<std::int64_t>::max(), kMaxListAttr, what);
      else if (key == "shape") a.shape = int_list(val, -1, kMaxDim, kMaxRank, what);
      else if (key == "alpha") a.alpha = real(val, what);
      else if (key == "beta") a.beta = real(val, what);
      else if (key == "min") a.min = real(val, what);
      else if (key == "max") a.max = real(val, what);
      else if (key == "epsilon") a.epsilon = real(val, what);
      else if (key == "pad_value") a.pad_value = real(val, what);
      else if (key == "ceil_mode") a.ceil_mode = boolean(val, what);
      else if (key == "count_include_pad") a.count_include_pad = boolean(val, what);
      else if (key == "pad_mode") {
        const std::string mode = val.is_string() ? val.get<std::string>() : std::string();
        if (mode == "constant") a.pad_mode = ir::PadMode::kConstant;
        else if (mode == "reflect") a.pad_mode = ir::PadMode::kReflect;
        else if (mode == "edge") a.pad_mode = ir::PadMode::kEdge;
        else corrupt(what + " is not constant, reflect or edge");
      } else {
        corrupt(where + " has the unknown attribute '" + key + "'");
      }
    }
    return a;
  }

  void read_nodes(const json& nodes) {
    for (std::size_t k = 0; k < nodes.size(); ++k) {
      const json& jn = nodes[k];
      std::string where = "node #" + std::to_string(k);
      if (!jn.is_object()) corrupt(where + " is not an object");
      ir::Node n;
      n.name = string_field(jn, "name", where);
      where += " ('" + n.name + "')";
      const std::string op = string_field(jn, "op", where);
      n.op = ir::op_from_name(op);
      if (n.op == ir::OpKind::kCount) {
        fail(ErrorCode::kUnsupportedOp, "'" + source_ + "': " + where + " uses the op '" + op + "', which this build does not know",
             "the file was written by a newer EdgeOpt; upgrade to read it");
      }
      n.source_op = jn.contains("source_op") ? string_field(jn, "source_op", where) : op;
      const json& inputs = array_field(jn, "inputs", where);
      if (inputs.size() > kMaxListAttr) corrupt(where + " has " + std::to_string(inputs.size()) + " inputs");
      for (const json& e : inputs) n.inputs.push_back(value_id(e, true, where + "'s input"));
      const json& outputs = array_field(jn, "outputs", where);
      if (outputs.size() != 1) corrupt(where + " has " + std::to_string(outputs.size()) + " outputs; every op has one");
      n.outputs = ids(outputs, where + "'s output");
      if (jn.contains("attrs")) n.attrs = attrs(jn["attrs"], where);
      model_.graph.nodes.push_back(std::move(n));
    }
  }

  // ---- whole graph ----

  // Reshape multiplies its target entries (and copied input dims) before checking them.
  void check_reshape_product(const ir::Node& n) const {
    const ir::Shape& x = model_.graph.value(n.inputs[0]).shape;
    std::int64_t product = 1;
    for (std::size_t i = 0; i < n.attrs.shape.size(); ++i) {
      std::int64_t e = n.attrs.shape[i];
      if (e == 0 && i < x.size()) e = x[i];
      if (e <= 0) continue;
      if (product > kMaxElements / e) corrupt("node '" + n.name + "' reshapes to " + ir::shape_to_string(n.attrs.shape) + ", more than 2^40 elements");
      product *= e;
    }
  }

  // Unsqueeze fills the new rank from its input; a repeated axis would read past the input.
  void check_unsqueeze_axes(const ir::Node& n) const {
    const auto rank = static_cast<std::int64_t>(model_.graph.value(n.inputs[0]).shape.size() + n.attrs.axes.size());
    std::set<std::int64_t> seen;
    for (auto a : n.attrs.axes) {
      if (a < -rank || a >= rank || !seen.insert(a < 0 ? a + rank : a).second) {
        fail(ErrorCode::kShapeMismatch, "'" + source_ + "': node '" + n.name + "' (Unsqueeze) has the axes " + ir::shape_to_string(n.attrs.axes) + ", out of range or repeated",
             "the file is damaged or was edited by hand; write it again with edgeopt");
      }
    }
  }

  void check_inferred(const ir::Value& v, const ir::Node& n) const {
    std::int64_t product = 1;
    if (v.shape.size() > kMaxRank) corrupt("node '" + n.name + "' produces a rank-" + std::to_string(v.shape.size()) + " tensor");
    for (auto d : v.shape) {
      if (d < ir::kBatch || d > kMaxDim) corrupt("node '" + n.name + "' produces the shape " + ir::shape_to_string(v.shape));
      if (d > 0 && product > kMaxElements / d) corrupt("node '" + n.name + "' produces more than 2^40 elements per sample");
      if (d > 0) product *= d;
    }
  }

  // Graph::infer_shapes, with the checks a hostile file needs between the steps, and a
  // comparison of every inferred shape with the stored one.
  void check_and_infer() {
    ir::Graph& g = model_.graph;
    const std::size_t count = g.values.size();
    std::vector<bool> defined(count, false);
    std::vector<bool> is_input(count, false);
    for (std::size_t i = 0; i < count; ++i) defined[i] = g.values[i].is_constant;
    for (int id : g.inputs) {
      const auto i = static_cast<std::size_t>(id);
      if (g.values[i].is_constant) corrupt("graph input '" + g.values[i].name + "' is a constant");
      if (is_input[i]) corrupt("graph input '" + g.values[i].name + "' is listed twice");
      is_input[i] = defined[i] = true;
    }
    std::vector<bool> produced(count, false);
    for (const ir::Node& n : g.nodes) {
      const ir::OpInfo& info = ir::op_info(n.op);
      const int given = static_cast<int>(n.inputs.size());
      if (given < info.min_inputs || given > info.max_inputs) {
        corrupt("node '" + n.name + "' (" + std::string(info.name) + ") has " + std::to_string(given) + " inputs; it takes " + std::to_string(info.min_inputs) +
                " to " + std::to_string(info.max_inputs));
      }
      for (std::size_t i = 0; i < n.inputs.size(); ++i) {
        const int id = n.inputs[i];
        if (id < 0 && static_cast<int>(i) < info.min_inputs) corrupt("node '" + n.name + "' lacks its required input #" + std::to_string(i));
        if (id >= 0 && !defined[static_cast<std::size_t>(id)]) {
          corrupt("node '" + n.name + "' reads '" + g.value(id).name + "' before anything produces it (the nodes are not in topological order)");
        }
      }
      const auto out = static_cast<std::size_t>(n.outputs[0]);
      if (defined[out] || produced[out]) corrupt("node '" + n.name + "' writes '" + g.values[out].name + "', which is already a constant, an input or another node's output");
      if (n.op == ir::OpKind::kReshape) check_reshape_product(n);
      if (n.op == ir::OpKind::kUnsqueeze) check_unsqueeze_axes(n);
      const ir::Shape stored = g.values[out].shape;
      info.infer_shape(g, n);
      check_inferred(g.values[out], n);
      if (g.values[out].shape != stored) {
        fail(ErrorCode::kShapeMismatch,
             "'" + source_ + "': value '" + g.values[out].name + "' is stored with shape " + ir::shape_to_string(stored) + " but node '" + n.name + "' computes " +
                 ir::shape_to_string(g.values[out].shape),
             "the file is damaged or was edited by hand; write it again with edgeopt");
      }
      produced[out] = defined[out] = true;
    }
    if (g.inputs.empty()) corrupt("the graph has no inputs");
    if (g.outputs.empty()) corrupt("the graph has no outputs");
    for (int id : g.outputs) {
      if (!defined[static_cast<std::size_t>(id)] || g.value(id).is_constant) corrupt("graph output '" + g.value(id).name + "' is never computed");
    }
  }

  std::string_view bytes_;
  std::string source_;
  std::uint64_t alignment_ = kAlignment;
  std::uint64_t data_start_ = 0;
  std::uint64_t data_size_ = 0;
  EomModel model_;
};

Result<std::string> read_whole_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return Error{ErrorCode::kNotFound, "'" + path + "' does not exist", "check the path"};
  if (!std::filesystem::is_regular_file(status)) return Error{ErrorCode::kIo, "'" + path + "' is not a regular file", "pass the .eom file itself"};
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error{ErrorCode::kIo, "cannot read the size of '" + path + "': " + ec.message(), "check the file's permissions"};
  std::ifstream file(path, std::ios::binary);
  if (!file) return Error{ErrorCode::kIo, "cannot open '" + path + "'", "check the file's permissions"};
  return capture([&]() -> std::string {
    std::string bytes(static_cast<std::size_t>(size), '\0');
    if (!file.read(bytes.data(), static_cast<std::streamsize>(size))) fail(ErrorCode::kIo, "cannot read '" + path + "'", "check the disk and the file's permissions");
    return bytes;
  });
}

}  // namespace

std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc) {
  crc = ~crc;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return ~crc32c_sse42(bytes, crc);
#endif
  const auto& table = crc32c_table();
  for (unsigned char b : bytes) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

Result<std::string> write_eom_bytes(const ir::Graph& graph, const EomWriteOptions& options) {
  return capture([&]() -> std::string { return write_bytes(graph, options); });
}

Status write_eom(const ir::Graph& graph, const std::string& path, const EomWriteOptions& options) {
  auto bytes = write_eom_bytes(graph, options);
  if (!bytes.ok()) return bytes.error();
  return write_file_atomic(path, bytes.value());
}

Result<EomModel> read_eom_model_bytes(std::string_view bytes, const std::string& source) {
  return capture([&]() -> EomModel { return Reader(bytes, source).run(); });
}

Result<EomModel> read_eom_model(const std::string& path) {
  auto bytes = read_whole_file(path);
  if (!bytes.ok()) return bytes.error();
  return read_eom_model_bytes(bytes.value(), path);
}

Result<ir::Graph> read_eom_bytes(std::string_view bytes, const std::string& source) {
  auto model = read_eom_model_bytes(bytes, source);
  if (!model.ok()) return model.error();
  return std::move(model.value().graph);
}

Result<ir::Graph> read_eom(const std::string& path) {
  auto model = read_eom_model(path);
  if (!model.ok()) return model.error();
  return std::move(model.value().graph);
}

}  // namespace edgeopt::format
