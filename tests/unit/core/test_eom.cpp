#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <iostream>
#include <random>

#include <unistd.h>

#include "format/eom.h"
#include "ir/graph.h"
#include "ir/text.h"

namespace edgeopt::format {
namespace {

using ir::Attrs;
using ir::Graph;
using ir::OpKind;

std::vector<float> random_weights(std::size_t n, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0F, stddev);
  std::vector<float> w(n);
  for (auto& x : w) x = dist(rng);
  return w;
}

Attrs conv_attrs() {
  Attrs a;
  a.strides = {1, 1};
  a.pads = {1, 1, 1, 1};
  a.dilations = {1, 1};
  return a;
}

Attrs pool_attrs() {
  Attrs a;
  a.kernel = {2, 2};
  a.strides = {2, 2};
  a.pads = {0, 0, 0, 0};
  return a;
}

// A small CNN whose size is dominated by its weights (~106k of them), like the zoo models.
Graph weight_heavy_cnn(float sparsity = 0.0F) {
  std::mt19937 rng(7);
  Graph g;
  g.name = "cnn";
  g.producer = "test";
  auto weights = [&](std::size_t n, float stddev) {
    std::vector<float> w = random_weights(n, stddev, rng);
    if (sparsity > 0) {
      std::vector<float> sorted(w.size());
      for (std::size_t i = 0; i < w.size(); ++i) sorted[i] = std::fabs(w[i]);
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sparsity * static_cast<float>(w.size())), sorted.end());
      const float cut = sorted[static_cast<std::size_t>(sparsity * static_cast<float>(w.size()))];
      for (auto& x : w) x = std::fabs(x) < cut ? 0.0F : x;
    }
    return w;
  };
  int h = g.add_input("x", {ir::kBatch, 1, 28, 28}, ir::Layout::kNCHW);
  const int w1 = g.add_constant("conv1.w", {16, 1, 3, 3}, weights(144, 0.3F));
  const int b1 = g.add_constant("conv1.b", {16}, random_weights(16, 0.1F, rng));
  h = g.add_node(OpKind::kConv, "conv1", {h, w1, b1}, conv_attrs());
  h = g.add_node(OpKind::kRelu, "relu1", {h});
  h = g.add_node(OpKind::kMaxPool, "pool1", {h}, pool_attrs());
  const int w2 = g.add_constant("conv2.w", {32, 16, 3, 3}, weights(4608, 0.1F));
  h = g.add_node(OpKind::kConv, "conv2", {h, w2}, conv_attrs());
  std::vector<int> bn{h};
  for (const char* part : {"scale", "bias", "mean", "var"}) {
    std::vector<float> v = random_weights(32, 0.1F, rng);
    for (auto& x : v) x = std::string(part) == "var" || std::string(part) == "scale" ? 1.0F + std::fabs(x) : x;
    bn.push_back(g.add_constant(std::string("bn.") + part, {32}, v));
  }
  Attrs eps;
  eps.epsilon = 1e-3F;
  h = g.add_node(OpKind::kBatchNorm, "bn", bn, eps);
  h = g.add_node(OpKind::kRelu, "relu2", {h});
  h = g.add_node(OpKind::kMaxPool, "pool2", {h}, pool_attrs());
  h = g.add_node(OpKind::kFlatten, "flatten", {h});
  const int w3 = g.add_constant("fc1.w", {64, 1568}, weights(64 * 1568, 0.03F));
  const int b3 = g.add_constant("fc1.b", {64}, random_weights(64, 0.1F, rng));
  h = g.add_node(OpKind::kGemm, "fc1", {h, w3, b3});
  Attrs clip;
  clip.min = 0.0F;
  clip.max = 6.0F;
  h = g.add_node(OpKind::kClip, "relu6", {h}, clip);
  const int w4 = g.add_constant("fc2.w", {10, 64}, weights(640, 0.1F));
  const int b4 = g.add_constant("fc2.b", {10}, random_weights(10, 0.1F, rng));
  h = g.add_node(OpKind::kGemm, "fc2", {h, w4, b4});
  g.outputs = {g.add_node(OpKind::kSoftmax, "prob", {h})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

std::string written(const Graph& g, const EomWriteOptions& options = {}) {
  auto bytes = write_eom_bytes(g, options);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().to_string());
  return bytes.ok() ? bytes.value() : std::string();
}

EomModel read_back(const std::string& bytes) {
  auto model = read_eom_model_bytes(bytes, "test.eom");
  EXPECT_TRUE(model.ok()) << (model.ok() ? "" : model.error().to_string());
  return model.ok() ? std::move(model.value()) : EomModel{};
}

const std::vector<std::string> kWeights = {"conv1.w", "conv2.w", "fc1.w", "fc2.w"};

TEST(Eom, F32RoundTripIsExact) {
  const Graph g = weight_heavy_cnn();
  const EomModel m = read_back(written(g));
  EXPECT_EQ(ir::dump(m.graph), ir::dump(g));
  ASSERT_EQ(m.graph.values.size(), g.values.size());
  for (std::size_t i = 0; i < g.values.size(); ++i) {
    EXPECT_EQ(m.graph.values[i].f32, g.values[i].f32) << g.values[i].name;
    EXPECT_EQ(m.graph.values[i].layout, g.values[i].layout);
  }
  EXPECT_TRUE(m.encoded.empty());
  EXPECT_EQ(m.graph.nodes[4].attrs.epsilon, 1e-3F);
  EXPECT_EQ(m.graph.nodes[9].attrs.max, 6.0F);
  EXPECT_TRUE(std::isinf(m.graph.nodes[1].attrs.max));  // defaults are not written but restored
}

// Slice bounds are stored by name, INT64_MAX ("to the end") included.
TEST(Eom, SliceAttrsRoundTrip) {
  Graph g;
  const int x = g.add_input("x", {ir::kBatch, 6, 5, 5}, ir::Layout::kNCHW);
  Attrs a;
  a.axes = {1, 3};
  a.starts = {-4, 0};
  a.ends = {std::numeric_limits<std::int64_t>::max(), 5};
  a.steps = {1, 2};
  g.outputs = {g.add_node(OpKind::kSlice, "slice", {x}, a)};
  ASSERT_TRUE(ir::verify(g).ok());
  const EomModel m = read_back(written(g));
  EXPECT_EQ(ir::dump(m.graph), ir::dump(g));
  EXPECT_EQ(m.graph.nodes[0].attrs.ends, a.ends);
  EXPECT_EQ(m.graph.nodes[0].attrs.steps, a.steps);
}

struct Case {
  const char* label;
  Encoding encoding;
};

class EomEncodings : public ::testing::TestWithParam<Case> {};

TEST_P(EomEncodings, RoundTripsWithinTheQuantizationStep) {
  const Case c = GetParam();
  const Graph g = weight_heavy_cnn(format::is_sparse(c.encoding.kind) ? 0.75F : 0.0F);
  EomWriteOptions options;
  options.weights = c.encoding;
  const EomModel m = read_back(written(g, options));
  EXPECT_EQ(ir::dump(m.graph), ir::dump(g));
  for (std::size_t id = 0; id < g.values.size(); ++id) {
    const ir::Value& before = g.values[id];
    const ir::Value& after = m.graph.values[id];
    const bool is_weight = std::find(kWeights.begin(), kWeights.end(), before.name) != kWeights.end();
    if (!is_weight) {
      EXPECT_EQ(after.f32, before.f32) << before.name << " is not a weight and stays f32";
      continue;
    }
    ASSERT_EQ(m.encoded.count(static_cast<int>(id)), 1U) << before.name;
    const EncodedTensor& t = m.encoded.at(static_cast<int>(id));
    EXPECT_EQ(t.kind, c.encoding.kind);
    ASSERT_EQ(after.f32.size(), before.f32.size());
    const bool quantized = format::is_quantized(c.encoding.kind);
    EXPECT_EQ(after.quant.has_value(), quantized) << before.name;
    // The scale of element i (channels on axis 0 or one per tensor, then groups within them).
    auto step = [&](std::size_t i) {
      const ir::QuantParams& q = *after.quant;
      const std::size_t n = before.f32.size();
      const std::size_t channels = q.axis == 0 ? static_cast<std::size_t>(before.shape[0]) : 1;
      const std::size_t slice = n / channels;
      const std::size_t gs = static_cast<std::size_t>(q.group_size);
      const std::size_t groups = gs ? (slice + gs - 1) / gs : 1;
      return q.scales[(i / slice) * groups + (gs ? (i % slice) / gs : 0)];
    };
    if (quantized) {
      ASSERT_TRUE(after.quant);
      // The stored codes are exactly what re-encoding the dequantized weights gives.
      auto again = encode_constant(after, c.encoding);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again.value().data, t.data) << before.name;
    }
    for (std::size_t i = 0; i < before.f32.size(); ++i) {
      const float x = before.f32[i];
      const float y = after.f32[i];
      switch (c.encoding.kind) {
        case EncodingKind::kF16: ASSERT_LE(std::fabs(x - y), std::fabs(x) / 2048.0F + 1e-7F) << before.name; break;
        case EncodingKind::kSparseF32: ASSERT_EQ(x, y) << before.name; break;
        default:
          // Symmetric codes never clip: the error is at most half of this element's step.
          ASSERT_LE(std::fabs(x - y), step(i) / 2 * 1.0001F) << before.name << "[" << i << "]";
          if (x == 0.0F && format::is_sparse(c.encoding.kind)) ASSERT_EQ(y, 0.0F);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, EomEncodings,
                         ::testing::Values(Case{"f16", Encoding::f16()}, Case{"int8_per_channel", Encoding::int8_per_channel(0)},
                                           Case{"int8_per_tensor", Encoding::int8_per_tensor()}, Case{"int4_g32", Encoding::int4_group(32)},
                                           Case{"int4_g8", Encoding::int4_group(8)}, Case{"int4_per_channel", Encoding::int4_group(0)},
                                           Case{"sparse_f32", Encoding::sparse_f32()}, Case{"sparse_int8", Encoding::sparse_int8(0)},
                                           Case{"sparse_int4_g128", Encoding::sparse_int4(128)}, Case{"sparse_int4_per_channel", Encoding::sparse_int4(0)}),
                         [](const auto& info) { return std::string(info.param.label); });

TEST(Eom, QuantizedFilesReallyShrink) {
  const Graph g = weight_heavy_cnn();
  const double f32 = static_cast<double>(written(g).size());
  EomWriteOptions options;
  options.weights = Encoding::int8_per_channel();
  const double int8 = static_cast<double>(written(g, options).size());
  options.weights = Encoding::int4_group(32);
  const double int4 = static_cast<double>(written(g, options).size());
  options.weights = Encoding::f16();
  const double f16 = static_cast<double>(written(g, options).size());
  std::cout << "[ sizes    ] f32 " << f32 << " B; f16 " << f16 / f32 << "x, int8 " << int8 / f32 << "x, int4 g32 " << int4 / f32 << "x\n";
  EXPECT_LE(int8 / f32, 0.28);
  EXPECT_LE(int4 / f32, 0.16);
  EXPECT_LE(f16 / f32, 0.52);
}

TEST(Eom, SparseFilesReallyShrink) {
  const Graph dense = weight_heavy_cnn();
  const Graph pruned = weight_heavy_cnn(0.75F);
  const double f32 = static_cast<double>(written(dense).size());
  EomWriteOptions options;
  EXPECT_EQ(written(pruned).size(), written(dense).size()) << "zeros alone do not shrink a dense file";
  options.weights = Encoding::sparse_f32();
  const double sparse = static_cast<double>(written(pruned, options).size());
  options.weights = Encoding::sparse_int8();
  const double sparse_int8 = static_cast<double>(written(pruned, options).size());
  options.weights = Encoding::sparse_int4(128);
  const std::string int4_bytes = written(pruned, options);
  const double sparse_int4 = static_cast<double>(int4_bytes.size());
  std::cout << "[ sizes    ] 75 % sparse: bitmask+f32 " << sparse / f32 << "x, bitmask+int8 " << sparse_int8 / f32 << "x, bitmask+int4 "
            << sparse_int4 / f32 << "x\n";
  EXPECT_LE(sparse / f32, 0.35);
  // The bitmask alone costs 1/32 of the f32 size, so 75 % sparse int8 lands just above 0.10x;
  // the hybrid target (<= 0.10x) needs more sparsity or int4 values.
  EXPECT_LE(sparse_int8 / f32, 0.11);
  // Bitmask (1/32) + a quarter of the elements at 4 bits (1/32) + f16 scales: about 0.07x.
  EXPECT_LE(sparse_int4 / f32, 0.075);
  // Really two codes per byte: each weight's data blob is ceil(stored / 2) bytes.
  const EomModel m = read_back(int4_bytes);
  int checked = 0;
  for (const auto& [id, t] : m.encoded) {
    if (t.kind != EncodingKind::kSparseInt4) continue;
    std::size_t stored = 0;
    for (auto b : t.mask) stored += static_cast<std::size_t>(std::popcount(b));
    EXPECT_EQ(t.data.size(), (stored + 1) / 2) << m.graph.values[static_cast<std::size_t>(id)].name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(Eom, PerConstantChoiceAndGivenScalesWin) {
  Graph g = weight_heavy_cnn();
  // A quantizer's calibrated scales (here: twice the symmetric ones) are kept as given.
  ir::Value& fc2 = g.value(*g.find("fc2.w"));
  ir::QuantParams q;
  q.axis = 0;
  for (int c = 0; c < 10; ++c) {
    float amax = 0;
    for (int k = 0; k < 64; ++k) amax = std::max(amax, std::fabs(fc2.f32[static_cast<std::size_t>(c * 64 + k)]));
    q.scales.push_back(2 * amax / 127);
  }
  fc2.quant = q;
  EomWriteOptions options;
  options.weights = Encoding::int8_per_channel();
  options.per_constant["fc1.w"] = Encoding::int4_group(64);
  options.per_constant["fc1.b"] = Encoding::f16();
  const EomModel m = read_back(written(g, options));
  EXPECT_EQ(m.encoded.at(*g.find("fc1.w")).kind, EncodingKind::kInt4);
  EXPECT_EQ(m.encoded.at(*g.find("fc1.w")).quant.group_size, 64);
  EXPECT_EQ(m.encoded.at(*g.find("fc1.b")).kind, EncodingKind::kF16);
  EXPECT_EQ(m.encoded.at(*g.find("conv2.w")).kind, EncodingKind::kInt8);
  EXPECT_EQ(m.graph.value(*g.find("fc2.w")).quant->scales, q.scales);
  auto codes = unpack_codes(m.encoded.at(*g.find("fc2.w")));
  ASSERT_TRUE(codes.ok());
  for (auto code : codes.value()) EXPECT_LE(std::abs(code), 64);

  options.per_constant["no.such.constant"] = Encoding::f16();
  auto bad = write_eom_bytes(g, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("no.such.constant"), std::string::npos);
}

TEST(Eom, WritesFilesAtomicallyAndReadsThemBack) {
  const auto dir = std::filesystem::temp_directory_path() / ("edgeopt_eom_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.eom").string();
  const Graph g = weight_heavy_cnn();
  EomWriteOptions options;
  options.weights = Encoding::int8_per_channel();
  ASSERT_TRUE(write_eom(g, path, options).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  auto back = read_eom(path);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(ir::dump(back.value()), ir::dump(g));
  auto missing = read_eom((dir / "nope.eom").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto unwritable = write_eom(g, (dir / "no_dir" / "m.eom").string());
  ASSERT_FALSE(unwritable.ok());
  EXPECT_EQ(unwritable.error().code, ErrorCode::kIo);
  std::filesystem::remove_all(dir);
}

TEST(Eom, KeepsIntegerConstantsQuantParamsAndOddShapes) {
  Graph g;
  g.name = "odd";
  const int x = g.add_input("x", {ir::kBatch, 3}, ir::Layout::kNC);
  const int idx = g.add_int_constant("indices", {1, -2, 3});
  const int w = g.add_constant("w", {5, 3}, {1, -2, 3, 0.5F, 0, 0, 7, 8, 9, -1, -1, -1, 1e-9F, 0, 0});
  g.value(x).quant = ir::QuantParams{{0.05F}, {128}, -1, 0};
  Attrs clip;
  clip.min = -std::numeric_limits<float>::infinity();
  clip.max = 1.5F;
  int h = g.add_node(OpKind::kGemm, "fc", {x, w});
  h = g.add_node(OpKind::kClip, "clip", {h}, clip);
  g.outputs = {g.add_node(OpKind::kIdentity, "out", {h})};
  ASSERT_TRUE(ir::verify(g).ok());
  EomWriteOptions options;
  options.weights = Encoding::int4_group(2);  // 3 elements per row: groups of 2 and 1
  options.per_constant["indices"] = Encoding::int8_per_channel();  // integers are always exact
  const EomModel m = read_back(written(g, options));
  EXPECT_EQ(m.graph.value(idx).i64, (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(m.graph.value(x).quant->zero_points, std::vector<std::int32_t>{128});
  EXPECT_EQ(m.graph.value(x).layout, ir::Layout::kNC);
  EXPECT_EQ(m.encoded.at(w).quant.scales.size(), 10U);
  EXPECT_EQ(m.encoded.at(w).data.size(), 8U);
  EXPECT_EQ(ir::dump(m.graph), ir::dump(g));
  EXPECT_EQ(m.graph.value(m.graph.nodes[1].outputs[0]).shape, (ir::Shape{ir::kBatch, 5}));
}

TEST(Eom, HalfFloatConversionIsExact) {
  EXPECT_EQ(f32_to_f16(1.0F), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0F), 0xC000);
  EXPECT_EQ(f32_to_f16(65504.0F), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0F), 0x7C00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0F, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0F, -26)), 0x0000);
  EXPECT_EQ(f32_to_f16(1.0F + std::ldexp(1.0F, -11)), 0x3C00);  // a tie rounds to even
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    if ((bits & 0x7C00) == 0x7C00 && (bits & 0x3FF)) continue;  // NaN payloads
    ASSERT_EQ(f32_to_f16(f16_to_f32(bits)), bits) << h;
  }
}

// ---- hostile files ----

struct Parts {
  nlohmann::json header;
  std::string data;
};

std::string deflate(const std::string& text) {
  uLongf size = compressBound(static_cast<uLong>(text.size()));
  std::string out(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()), 9), Z_OK);
  out.resize(size);
  return out;
}

std::string inflate(const std::string& packed) {
  std::string out(std::size_t{1} << 20, '\0');
  uLongf size = static_cast<uLongf>(out.size());
  EXPECT_EQ(uncompress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(packed.data()), static_cast<uLong>(packed.size())), Z_OK);
  out.resize(size);
  return out;
}

// A file's header and data; version 2+ headers are deflated.
Parts split(const std::string& file) {
  std::uint32_t version = 0;
  std::uint64_t length = 0;
  std::memcpy(&version, file.data() + 4, 4);
  std::memcpy(&length, file.data() + 8, 8);
  Parts p;
  const std::size_t preamble = version >= 3 ? 24 : 16;
  const std::string stored = file.substr(preamble, length);
  p.header = nlohmann::json::parse(version >= 2 ? inflate(stored) : stored);
  const std::uint64_t start = (preamble + length + 31) / 32 * 32;
  p.data = file.substr(start);
  return p;
}

std::string join(const Parts& p, std::uint32_t version = kEomVersion) {
  const std::string text = version >= 2 ? deflate(p.header.dump()) : p.header.dump();
  std::string out("EOMF", 4);
  const std::uint64_t length = text.size();
  out.append(reinterpret_cast<const char*>(&version), 4);
  out.append(reinterpret_cast<const char*>(&length), 8);
  if (version >= 3) {
    const std::uint32_t header_crc = crc32c(text), data_crc = crc32c(p.data.substr(0, p.header.value("data_size", std::size_t{0})));
    out.append(reinterpret_cast<const char*>(&header_crc), 4);
    out.append(reinterpret_cast<const char*>(&data_crc), 4);
  }
  out += text;
  out.resize((out.size() + 31) / 32 * 32, '\0');
  return out + p.data;
}

Graph tiny() {
  Graph g;
  g.name = "tiny";
  const int x = g.add_input("x", {ir::kBatch, 1, 4, 4}, ir::Layout::kNCHW);
  const int w = g.add_constant("w", {2, 1, 3, 3}, std::vector<float>(18, 0.5F));
  int h = g.add_node(OpKind::kConv, "conv", {x, w}, conv_attrs());
  h = g.add_node(OpKind::kFlatten, "flat", {h});
  g.outputs = {h};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

Error read_error(const std::string& bytes) {
  auto r = read_eom_bytes(bytes, "bad.eom");
  EXPECT_FALSE(r.ok());
  return r.ok() ? Error{} : r.error();
}

TEST(EomHostile, WrongMagicVersionAndGarbageHeader) {
  EomWriteOptions options;
  options.weights = Encoding::int8_per_channel();
  const std::string good = written(tiny(), options);
  ASSERT_TRUE(read_eom_bytes(good, "good.eom").ok());

  EXPECT_EQ(read_error("").code, ErrorCode::kUnsupportedFormat);
  EXPECT_EQ(read_error("GGUF" + good.substr(4)).code, ErrorCode::kUnsupportedFormat);
  Error newer = read_error(join(split(good), kEomVersion + 1));
  EXPECT_EQ(newer.code, ErrorCode::kUnsupportedFormat);
  EXPECT_NE(newer.hint.find("upgrade"), std::string::npos);
  std::string garbage = good;
  garbage[20] = '{';
  garbage[21] = '[';
  EXPECT_EQ(read_error(garbage).code, ErrorCode::kCorruptFile);
  std::string huge_header = good;
  const std::uint64_t length = std::uint64_t{1} << 62;
  std::memcpy(huge_header.data() + 8, &length, 8);
  EXPECT_EQ(read_error(huge_header).code, ErrorCode::kCorruptFile);
}

TEST(EomChecksum, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283U);  // RFC 3720 B.4 / the CRC catalogue's check value
  EXPECT_EQ(crc32c(""), 0U);
  EXPECT_EQ(crc32c("56789", crc32c("1234")), 0xE3069283U);
  std::string long_text(1000, 'a');
  std::uint32_t bytewise = 0;
  for (char c : long_text) bytewise = crc32c(std::string_view(&c, 1), bytewise);
  EXPECT_EQ(crc32c(long_text), bytewise);
}

TEST(EomChecksum, EveryBitFlipInHeaderOrDataIsRefused) {
  EomWriteOptions options;
  options.weights = Encoding::int8_per_channel();
  const std::string good = written(tiny(), options);
  auto model = read_eom_model_bytes(good, "good.eom");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->version, 3U);
  EXPECT_TRUE(model->note.empty());
  std::uint64_t length = 0;
  std::memcpy(&length, good.data() + 8, 8);
  const std::size_t data_start = (24 + length + 31) / 32 * 32;
  std::size_t refused = 0, flips = 0;
  for (std::size_t at = 16; at < good.size(); ++at) {
    if (at >= 24 + length && at < data_start) continue;  // alignment padding is not read
    for (int bit = 0; bit < 8; bit += 3) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      ++flips;
      auto r = read_eom_bytes(bad, "flipped.eom");
      if (!r.ok()) {
        ++refused;
        EXPECT_EQ(r.error().code, ErrorCode::kCorruptFile);
      }
    }
  }
  EXPECT_EQ(refused, flips);
  std::string weight_flip = good;
  weight_flip[data_start + 3] ^= 0x10;
  Error e = read_error(weight_flip);
  EXPECT_NE(e.message.find("CRC32C"), std::string::npos) << e.message;
}

TEST(EomChecksum, VersionTwoFilesReadWithANote) {
  EomWriteOptions options;
  options.weights = Encoding::f16();
  Parts p = split(written(tiny(), options));
  p.header["version"] = 2;
  auto r = read_eom_model_bytes(join(p, 2), "v2.eom");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->version, 2U);
  EXPECT_NE(r->note.find("no checksum"), std::string::npos);
}

TEST(EomHostile, VersionOneFilesWithAPlainHeaderStillRead) {
  EomWriteOptions options;
  options.weights = Encoding::int8_per_channel();
  const Graph g = tiny();
  Parts p = split(written(g, options));
  p.header["version"] = 1;
  auto r = read_eom_bytes(join(p, 1), "v1.eom");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->nodes.size(), g.nodes.size());
  // A version-2 file whose header is plain JSON is refused, not misread.
  EXPECT_EQ(read_error(join(split(written(g, options)), 1).replace(4, 4, std::string("\x02\0\0\0", 4))).code, ErrorCode::kCorruptFile);
}

TEST(EomHostile, EveryTruncationFailsCleanly) {
  EomWriteOptions options;
  options.weights = Encoding::sparse_int8();
  const std::string good = written(tiny(), options);
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = read_eom_bytes(good.substr(0, n), "cut.eom");
    ASSERT_FALSE(r.ok()) << n;
    ASSERT_NE(r.error().code, ErrorCode::kInternal) << r.error().to_string();
  }
}

TEST(EomHostile, EditedHeadersGiveClearErrors) {
  EomWriteOptions options;
  options.weights = Encoding::int4_group(4);
  const Parts good = split(written(tiny(), options));
  struct Edit {
    const char* what;
    std::function<void(nlohmann::json&)> apply;
    ErrorCode code;
    const char* mentions;
  };
  const std::vector<Edit> edits = {
      {"blob past the end", [](auto& h) { h["graph"]["values"][1]["tensor"]["data"][0] = 1 << 20; }, ErrorCode::kCorruptFile, "outside"},
      {"overflowing length", [](auto& h) { h["graph"]["values"][1]["tensor"]["data"][1] = std::uint64_t{1} << 63; }, ErrorCode::kCorruptFile, "length"},
      {"negative offset", [](auto& h) { h["graph"]["values"][1]["tensor"]["scales"][0] = -32; }, ErrorCode::kCorruptFile, "offset"},
      {"huge shape", [](auto& h) { h["graph"]["values"][1]["shape"] = {4294967296LL, 1, 1, 1}; }, ErrorCode::kCorruptFile, "dimension"},
      {"overflowing shape", [](auto& h) { h["graph"]["values"][1]["shape"] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}; }, ErrorCode::kCorruptFile, "2^40"},
      {"shape vs data", [](auto& h) { h["graph"]["values"][1]["shape"] = {3, 1, 3, 3}; }, ErrorCode::kCorruptFile, "'w'"},
      {"stored shape", [](auto& h) { h["graph"]["values"][2]["shape"] = {-1, 2, 4, 5}; }, ErrorCode::kShapeMismatch, "conv"},
      {"unknown op", [](auto& h) { h["graph"]["nodes"][0]["op"] = "FancyConv"; }, ErrorCode::kUnsupportedOp, "FancyConv"},
      {"unknown encoding", [](auto& h) { h["graph"]["values"][1]["tensor"]["encoding"] = "int3"; }, ErrorCode::kUnsupportedFormat, "int3"},
      {"value id", [](auto& h) { h["graph"]["nodes"][0]["inputs"][1] = 99; }, ErrorCode::kCorruptFile, "input"},
      {"cycle", [](auto& h) { h["graph"]["nodes"][0]["inputs"][0] = 3; }, ErrorCode::kCorruptFile, "topological"},
      {"zero stride", [](auto& h) { h["graph"]["nodes"][0]["attrs"]["strides"] = {0, 1}; }, ErrorCode::kCorruptFile, "strides"},
      {"string where int", [](auto& h) { h["graph"]["inputs"][0] = "x"; }, ErrorCode::kCorruptFile, "integer"},
      {"no graph", [](auto& h) { h.erase("graph"); }, ErrorCode::kCorruptFile, "graph"},
      {"bad axis", [](auto& h) { h["graph"]["values"][1]["tensor"]["axis"] = 7; }, ErrorCode::kCorruptFile, "axis"},
      {"bad alignment", [](auto& h) { h["alignment"] = 24; }, ErrorCode::kCorruptFile, "power of two"},
      {"duplicate name", [](auto& h) { h["graph"]["values"][1]["name"] = "x"; }, ErrorCode::kCorruptFile, "two values"},
      {"unknown attribute", [](auto& h) { h["graph"]["nodes"][0]["attrs"]["wobble"] = 1; }, ErrorCode::kCorruptFile, "wobble"},
      {"two outputs", [](auto& h) { h["graph"]["nodes"][0]["outputs"] = {2, 3}; }, ErrorCode::kCorruptFile, "outputs"},
      {"output is input", [](auto& h) { h["graph"]["nodes"][0]["outputs"] = {0}; }, ErrorCode::kCorruptFile, "already"},
  };
  for (const Edit& e : edits) {
    Parts p = good;
    e.apply(p.header);
    const Error err = read_error(join(p));
    EXPECT_EQ(err.code, e.code) << e.what << ": " << err.to_string();
    EXPECT_NE(err.message.find(e.mentions), std::string::npos) << e.what << ": " << err.message;
    EXPECT_FALSE(err.hint.empty()) << e.what;
  }
  Parts bad_scale = good;
  const auto scale_at = bad_scale.header["graph"]["values"][1]["tensor"]["scales"][0].get<std::size_t>();
  bad_scale.data[scale_at] = '\xff';
  bad_scale.data[scale_at + 1] = '\x7f';  // an f16 NaN
  EXPECT_NE(read_error(join(bad_scale)).message.find("scale"), std::string::npos);
}

TEST(EomHostile, RandomByteFlipsNeverCrash) {
  EomWriteOptions options;
  options.weights = Encoding::sparse_int8();
  const std::string good = written(tiny(), options);
  std::mt19937 rng(1);
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    auto r = read_eom_bytes(bytes, "flip.eom");
    if (!r.ok()) ASSERT_NE(r.error().code, ErrorCode::kInternal) << r.error().to_string();
  }
}

}  // namespace
}  // namespace edgeopt::format
