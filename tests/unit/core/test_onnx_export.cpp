// ONNX export: re-import gives the same IR; the QDQ form has the right structure. When
// EDGEOPT_EXPORT_DIR is set, the exports are written there with an input and the expected output
// (.npy, from the small reference evaluator below) for tests/interop/test_onnx_export.py.
#include <gtest/gtest.h>

// The core library gets these from CMake's onnx_proto target; the test includes the headers directly.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>

#include "common/npy.h"
#include "format/encoding.h"
#include "format/onnx_export.h"
#include "importers/onnx/onnx_importer.h"
#include "ir/graph.h"
#include "ir/text.h"

namespace edgeopt::format {
namespace {

using ir::Attrs;
using ir::Graph;
using ir::OpKind;

constexpr std::int64_t kRunBatch = 2;

std::vector<float> random_values(std::size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

Attrs window(std::vector<std::int64_t> kernel, std::int64_t stride, std::int64_t pad) {
  Attrs a;
  a.kernel = std::move(kernel);
  a.strides = {stride, stride};
  a.pads = {pad, pad, pad, pad};
  a.dilations = {1, 1};
  return a;
}

// Attributes spelled out the way the ONNX importer produces them, so dumps compare equal.
Graph small_cnn(bool nhwc) {
  std::mt19937 rng(3);
  Graph g;
  g.name = nhwc ? "small_nhwc" : "small";
  int h = nhwc ? g.add_input("x", {ir::kBatch, 8, 8, 1}, ir::Layout::kNHWC) : g.add_input("x", {ir::kBatch, 1, 8, 8}, ir::Layout::kNCHW);
  if (nhwc) {
    Attrs t;
    t.perm = {0, 3, 1, 2};
    h = g.add_node(OpKind::kTranspose, "to_nchw", {h}, t);
  }
  const int w = g.add_constant("conv.w", {4, 1, 3, 3}, random_values(36, -0.5F, 0.5F, rng));
  const int b = g.add_constant("conv.b", {4}, random_values(4, -0.1F, 0.1F, rng));
  Attrs conv = window({}, 1, 1);
  conv.kernel.clear();
  h = g.add_node(OpKind::kConv, "conv", {h, w, b}, conv);
  h = g.add_node(OpKind::kRelu, "relu", {h});
  h = g.add_node(OpKind::kMaxPool, "pool", {h}, window({2, 2}, 2, 0));
  h = g.add_node(OpKind::kFlatten, "flatten", {h});
  const int fw = g.add_constant("fc.w", {10, 64}, random_values(640, -0.2F, 0.2F, rng));
  const int fb = g.add_constant("fc.b", {10}, random_values(10, -0.1F, 0.1F, rng));
  g.outputs = {g.add_node(OpKind::kGemm, "fc", {h, fw, fb})};
  EXPECT_TRUE(ir::verify(g).ok());
  return g;
}

// One of (nearly) every op, for the structural round trip and ONNX Runtime's opinion.
Graph wide_graph(int opset) {
  std::mt19937 rng(5);
  Graph g;
  g.name = "wide" + std::to_string(opset);
  int x = g.add_input("x", {ir::kBatch, 3, 9, 9}, ir::Layout::kNCHW);
  Attrs pad;
  pad.pads = {0, 0, 1, 1, 0, 0, 1, 1};
  pad.pad_value = 0.25F;
  int h = g.add_node(OpKind::kPad, "pad", {x}, pad);
  Attrs conv = window({}, 2, 1);
  conv.kernel.clear();
  conv.dilations = {2, 2};
  h = g.add_node(OpKind::kConv, "conv", {h, g.add_constant("conv.w", {6, 3, 3, 3}, random_values(162, -0.4F, 0.4F, rng))}, conv);
  std::vector<int> bn{h};
  for (const char* p : {"bn.scale", "bn.bias", "bn.mean", "bn.var"}) bn.push_back(g.add_constant(p, {6}, random_values(6, 0.5F, 1.5F, rng)));
  Attrs eps;
  eps.epsilon = 1e-3F;
  h = g.add_node(OpKind::kBatchNorm, "bn", bn, eps);
  Attrs clip;
  clip.min = 0.0F;
  clip.max = 1.0F;
  const int a = g.add_node(OpKind::kClip, "clip", {h}, clip);
  Attrs leaky;
  leaky.alpha = 0.1F;
  const int b = g.add_node(OpKind::kLeakyRelu, "leaky", {h}, leaky);
  Attrs hsig;
  hsig.alpha = 0.2F;
  hsig.beta = 0.5F;
  const int c = g.add_node(OpKind::kHardSigmoid, "hsig", {h}, hsig);
  const int d = g.add_node(OpKind::kHardSwish, "hswish", {h});
  int s = g.add_node(OpKind::kAdd, "add", {a, b});
  s = g.add_node(OpKind::kSub, "sub", {s, g.add_node(OpKind::kSigmoid, "sigmoid", {c})});
  s = g.add_node(OpKind::kMul, "mul", {s, g.add_constant("mul.c", {6, 1, 1}, random_values(6, 0.5F, 2.0F, rng))});
  s = g.add_node(OpKind::kDiv, "div", {s, g.add_constant("div.c", {}, {2.0F})});
  s = g.add_node(OpKind::kConcat, "concat", {s, g.add_node(OpKind::kTanh, "tanh", {d})}, [] { Attrs c1; c1.axis = 1; return c1; }());
  Attrs avg = window({3, 3}, 2, 1);
  avg.ceil_mode = true;
  const int pooled = g.add_node(OpKind::kAvgPool, "avgpool", {s}, avg);
  Attrs maxp = window({2, 2}, 1, 0);
  const int gap = g.add_node(OpKind::kGlobalAvgPool, "gap", {g.add_node(OpKind::kMaxPool, "maxpool", {pooled}, maxp)});
  Attrs squeeze;
  squeeze.axes = {2, 3};
  h = g.add_node(OpKind::kSqueeze, "squeeze", {gap}, squeeze);
  Attrs unsq;
  unsq.axes = {2};
  h = g.add_node(OpKind::kUnsqueeze, "unsqueeze", {h}, unsq);
  Attrs perm;
  perm.perm = {0, 2, 1};
  h = g.add_node(OpKind::kTranspose, "transpose", {h}, perm);
  Attrs reshape;
  reshape.shape = {0, -1};
  h = g.add_node(OpKind::kReshape, "reshape", {h}, reshape);
  h = g.add_node(OpKind::kMatMul, "matmul", {h, g.add_constant("mm.w", {12, 7}, random_values(84, -0.5F, 0.5F, rng))});
  h = g.add_node(OpKind::kGemm, "fc", {h, g.add_constant("fc.w", {5, 7}, random_values(35, -0.5F, 0.5F, rng))});
  Attrs axis;
  axis.axis = 1;
  const int sm = g.add_node(OpKind::kSoftmax, "softmax", {h}, axis);
  const int lsm = g.add_node(OpKind::kLogSoftmax, "logsoftmax", {h}, axis);
  g.outputs = {g.add_node(OpKind::kAdd, "out", {sm, lsm})};
  EXPECT_TRUE(ir::verify(g).ok()) << ir::verify(g).error().to_string();
  return g;
}

// ---- a plain reference evaluator: enough for the test graphs, NCHW, batch kRunBatch ----

struct Tensor {
  ir::Shape shape;
  std::vector<float> data;
};

ir::Shape concrete(ir::Shape s) {
  for (auto& d : s) d = d == ir::kBatch ? kRunBatch : d;
  return s;
}

std::vector<std::int64_t> strides_of(const ir::Shape& s) {
  std::vector<std::int64_t> st(s.size(), 1);
  for (std::size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

std::int64_t count(const ir::Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Tensor broadcast_op(const Tensor& a, const Tensor& b, const ir::Shape& out_shape, float (*f)(float, float)) {
  Tensor out{out_shape, std::vector<float>(static_cast<std::size_t>(count(out_shape)))};
  const auto os = strides_of(out_shape);
  auto index_in = [&](const Tensor& t, std::int64_t flat) {
    const auto ts = strides_of(t.shape);
    std::int64_t idx = 0;
    const std::size_t off = out_shape.size() - t.shape.size();
    for (std::size_t d = off; d < out_shape.size(); ++d) {
      const std::int64_t coord = flat / os[d] % out_shape[d];
      if (t.shape[d - off] != 1) idx += coord * ts[d - off];
    }
    return static_cast<std::size_t>(idx);
  };
  for (std::int64_t i = 0; i < count(out_shape); ++i) out.data[static_cast<std::size_t>(i)] = f(a.data[index_in(a, i)], b.data[index_in(b, i)]);
  return out;
}

Tensor pool(const Tensor& x, const ir::Shape& out_shape, const Attrs& a, bool is_max) {
  Tensor out{out_shape, std::vector<float>(static_cast<std::size_t>(count(out_shape)))};
  const auto H = x.shape[2], W = x.shape[3];
  for (std::int64_t n = 0; n < out_shape[0] * out_shape[1]; ++n) {
    for (std::int64_t oy = 0; oy < out_shape[2]; ++oy) {
      for (std::int64_t ox = 0; ox < out_shape[3]; ++ox) {
        float acc = is_max ? -INFINITY : 0.0F;
        int used = 0;
        for (std::int64_t ky = 0; ky < a.kernel[0]; ++ky) {
          for (std::int64_t kx = 0; kx < a.kernel[1]; ++kx) {
            const std::int64_t y = oy * a.strides[0] - a.pads[0] + ky, xx = ox * a.strides[1] - a.pads[1] + kx;
            if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
            const float v = x.data[static_cast<std::size_t>((n * H + y) * W + xx)];
            acc = is_max ? std::max(acc, v) : acc + v;
            ++used;
          }
        }
        out.data[static_cast<std::size_t>((n * out_shape[2] + oy) * out_shape[3] + ox)] = is_max ? acc : acc / static_cast<float>(used);
      }
    }
  }
  return out;
}

// `fake_quant`: activation name -> (scale, zero point) applied as u8 quantize-dequantize.
std::vector<Tensor> evaluate(const Graph& g, const std::vector<float>& input, const std::map<std::string, ir::QuantParams>& fake_quant = {}) {
  std::vector<Tensor> v(g.values.size());
  for (std::size_t i = 0; i < g.values.size(); ++i) {
    if (g.values[i].is_constant) v[i] = {g.values[i].shape, g.values[i].f32};
  }
  auto quantize = [&](int id) {
    auto it = fake_quant.find(g.value(id).name);
    if (it == fake_quant.end()) return;
    const float s = it->second.scales[0];
    const float z = static_cast<float>(it->second.zero_points.empty() ? 0 : it->second.zero_points[0]);
    for (auto& x : v[static_cast<std::size_t>(id)].data) x = (std::clamp(std::nearbyint(x / s) + z, 0.0F, 255.0F) - z) * s;
  };
  v[static_cast<std::size_t>(g.inputs[0])] = {concrete(g.value(g.inputs[0]).shape), input};
  quantize(g.inputs[0]);
  for (const ir::Node& n : g.nodes) {
    const ir::Shape os = concrete(g.value(n.outputs[0]).shape);
    const Tensor& x = v[static_cast<std::size_t>(n.inputs[0])];
    const Attrs& a = n.attrs;
    Tensor out{os, std::vector<float>(static_cast<std::size_t>(count(os)), 0.0F)};
    auto map = [&](auto f) {
      for (std::size_t i = 0; i < x.data.size(); ++i) out.data[i] = f(x.data[i]);
    };
    auto in = [&](std::size_t k) -> const Tensor& { return v[static_cast<std::size_t>(n.inputs[k])]; };
    switch (n.op) {
      case OpKind::kConv: {
        const Tensor& w = in(1);
        const std::int64_t cin_g = w.shape[1], cout_g = os[1] / a.group;
        for (std::int64_t b = 0; b < os[0]; ++b)
          for (std::int64_t co = 0; co < os[1]; ++co)
            for (std::int64_t oy = 0; oy < os[2]; ++oy)
              for (std::int64_t ox = 0; ox < os[3]; ++ox) {
                float acc = n.inputs.size() > 2 ? in(2).data[static_cast<std::size_t>(co)] : 0.0F;
                for (std::int64_t ci = 0; ci < cin_g; ++ci)
                  for (std::int64_t ky = 0; ky < w.shape[2]; ++ky)
                    for (std::int64_t kx = 0; kx < w.shape[3]; ++kx) {
                      const std::int64_t y = oy * a.strides[0] - a.pads[0] + ky * a.dilations[0];
                      const std::int64_t xx = ox * a.strides[1] - a.pads[1] + kx * a.dilations[1];
                      if (y < 0 || y >= x.shape[2] || xx < 0 || xx >= x.shape[3]) continue;
                      const std::int64_t c = co / cout_g * cin_g + ci;
                      acc += x.data[static_cast<std::size_t>(((b * x.shape[1] + c) * x.shape[2] + y) * x.shape[3] + xx)] *
                             w.data[static_cast<std::size_t>(((co * cin_g + ci) * w.shape[2] + ky) * w.shape[3] + kx)];
                    }
                out.data[static_cast<std::size_t>(((b * os[1] + co) * os[2] + oy) * os[3] + ox)] = acc;
              }
        break;
      }
      case OpKind::kGemm:
      case OpKind::kMatMul: {
        const Tensor& w = in(1);
        const bool gemm = n.op == OpKind::kGemm;
        const std::int64_t K = x.shape[1], M = os[1];
        for (std::int64_t b = 0; b < os[0]; ++b)
          for (std::int64_t m = 0; m < M; ++m) {
            float acc = gemm && n.inputs.size() > 2 ? in(2).data[static_cast<std::size_t>(m)] : 0.0F;
            for (std::int64_t k = 0; k < K; ++k) acc += x.data[static_cast<std::size_t>(b * K + k)] * w.data[static_cast<std::size_t>(gemm ? m * K + k : k * M + m)];
            out.data[static_cast<std::size_t>(b * M + m)] = acc;
          }
        break;
      }
      case OpKind::kAdd: out = broadcast_op(x, in(1), os, [](float p, float q) { return p + q; }); break;
      case OpKind::kSub: out = broadcast_op(x, in(1), os, [](float p, float q) { return p - q; }); break;
      case OpKind::kMul: out = broadcast_op(x, in(1), os, [](float p, float q) { return p * q; }); break;
      case OpKind::kDiv: out = broadcast_op(x, in(1), os, [](float p, float q) { return p / q; }); break;
      case OpKind::kRelu: map([](float e) { return std::max(e, 0.0F); }); break;
      case OpKind::kClip: map([&](float e) { return std::clamp(e, a.min, a.max); }); break;
      case OpKind::kLeakyRelu: map([&](float e) { return e < 0 ? a.alpha * e : e; }); break;
      case OpKind::kSigmoid: map([](float e) { return 1.0F / (1.0F + std::exp(-e)); }); break;
      case OpKind::kTanh: map([](float e) { return std::tanh(e); }); break;
      case OpKind::kHardSigmoid: map([&](float e) { return std::clamp(a.alpha * e + a.beta, 0.0F, 1.0F); }); break;
      case OpKind::kHardSwish: map([](float e) { return e * std::clamp(e / 6.0F + 0.5F, 0.0F, 1.0F); }); break;
      case OpKind::kSoftmax:
      case OpKind::kLogSoftmax:
        for (std::int64_t b = 0; b < os[0]; ++b) {
          float mx = -INFINITY, sum = 0;
          for (std::int64_t k = 0; k < os[1]; ++k) mx = std::max(mx, x.data[static_cast<std::size_t>(b * os[1] + k)]);
          for (std::int64_t k = 0; k < os[1]; ++k) sum += std::exp(x.data[static_cast<std::size_t>(b * os[1] + k)] - mx);
          for (std::int64_t k = 0; k < os[1]; ++k) {
            const float e = x.data[static_cast<std::size_t>(b * os[1] + k)] - mx;
            out.data[static_cast<std::size_t>(b * os[1] + k)] = n.op == OpKind::kSoftmax ? std::exp(e) / sum : e - std::log(sum);
          }
        }
        break;
      case OpKind::kBatchNorm: {
        const std::int64_t hw = os[2] * os[3];
        for (std::size_t i = 0; i < out.data.size(); ++i) {
          const auto c = static_cast<std::size_t>(static_cast<std::int64_t>(i) / hw % os[1]);
          out.data[i] = (x.data[i] - in(3).data[c]) / std::sqrt(in(4).data[c] + a.epsilon) * in(1).data[c] + in(2).data[c];
        }
        break;
      }
      case OpKind::kMaxPool: out = pool(x, os, a, true); break;
      case OpKind::kAvgPool: out = pool(x, os, a, false); break;
      case OpKind::kGlobalAvgPool: {
        const std::int64_t hw = x.shape[2] * x.shape[3];
        for (std::int64_t k = 0; k < os[0] * os[1]; ++k) {
          float acc = 0;
          for (std::int64_t i = 0; i < hw; ++i) acc += x.data[static_cast<std::size_t>(k * hw + i)];
          out.data[static_cast<std::size_t>(k)] = acc / static_cast<float>(hw);
        }
        break;
      }
      case OpKind::kFlatten:
      case OpKind::kReshape:
      case OpKind::kSqueeze:
      case OpKind::kUnsqueeze:
      case OpKind::kIdentity: out.data = x.data; break;
      case OpKind::kTranspose: {
        const auto xs = strides_of(x.shape);
        const auto ostr = strides_of(os);
        for (std::int64_t i = 0; i < count(os); ++i) {
          std::int64_t src = 0;
          for (std::size_t d = 0; d < os.size(); ++d) src += (i / ostr[d] % os[d]) * xs[static_cast<std::size_t>(a.perm[d])];
          out.data[static_cast<std::size_t>(i)] = x.data[static_cast<std::size_t>(src)];
        }
        break;
      }
      case OpKind::kConcat: {  // axis 1 of NCHW
        std::int64_t c0 = 0;
        const std::int64_t hw = os[2] * os[3];
        for (std::size_t k = 0; k < n.inputs.size(); ++k) {
          const Tensor& t = in(k);
          for (std::int64_t b = 0; b < os[0]; ++b)
            for (std::int64_t c = 0; c < t.shape[1]; ++c)
              for (std::int64_t i = 0; i < hw; ++i) out.data[static_cast<std::size_t>((b * os[1] + c0 + c) * hw + i)] = t.data[static_cast<std::size_t>((b * t.shape[1] + c) * hw + i)];
          c0 += t.shape[1];
        }
        break;
      }
      case OpKind::kPad: {  // constant mode, 4-D
        const auto ostr = strides_of(os);
        const auto xs = strides_of(x.shape);
        for (std::int64_t i = 0; i < count(os); ++i) {
          std::int64_t src = 0;
          bool inside = true;
          for (std::size_t d = 0; d < 4; ++d) {
            const std::int64_t coord = i / ostr[d] % os[d] - a.pads[d];
            inside = inside && coord >= 0 && coord < x.shape[d];
            src += coord * xs[d];
          }
          out.data[static_cast<std::size_t>(i)] = inside ? x.data[static_cast<std::size_t>(src)] : a.pad_value;
        }
        break;
      }
      default: ADD_FAILURE() << "no reference for " << ir::op_name(n.op);
    }
    v[static_cast<std::size_t>(n.outputs[0])] = std::move(out);
    quantize(n.outputs[0]);
  }
  return v;
}

// ---- tests ----

std::string exported(const Graph& g, const OnnxExportOptions& options = {}) {
  auto bytes = export_onnx_bytes(g, options);
  EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().to_string());
  return bytes.ok() ? bytes.value() : std::string();
}

void expect_same_ir_after_reimport(const Graph& g, const OnnxExportOptions& options = {}) {
  auto back = onnx_import::import_bytes(exported(g, options), g.name + ".onnx");
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(ir::dump(back.value()), ir::dump(g));
  for (const ir::Value& v : g.values) {
    if (!v.is_constant) continue;
    auto id = back.value().find(v.name);
    ASSERT_TRUE(id.has_value()) << v.name;
    EXPECT_EQ(back.value().value(*id).f32, v.f32) << v.name;
  }
}

// Writes <dir>/<stem>.onnx, .input.npy and .expected.npy for the ONNX Runtime check.
void write_for_interop(const std::string& stem, const Graph& g, const OnnxExportOptions& options, const Graph& reference,
                       const std::map<std::string, ir::QuantParams>& fake_quant = {}) {
  const char* dir = std::getenv("EDGEOPT_EXPORT_DIR");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  const std::string base = (std::filesystem::path(dir) / stem).string();
  std::mt19937 rng(11);
  const ir::Shape in_shape = concrete(g.value(g.inputs[0]).shape);
  const std::vector<float> input = random_values(static_cast<std::size_t>(count(in_shape)), -1.0F, 1.0F, rng);
  const auto values = evaluate(reference, input, fake_quant);
  const Tensor& out = values[static_cast<std::size_t>(reference.outputs[0])];
  ASSERT_TRUE(export_onnx(g, base + ".onnx", options).ok());
  ASSERT_TRUE(write_npy(base + ".input.npy", NpyArray{in_shape, input}).ok());
  ASSERT_TRUE(write_npy(base + ".expected.npy", NpyArray{out.shape, out.data}).ok());
}

TEST(OnnxExport, Fp32RoundTripsThroughTheImporter) {
  expect_same_ir_after_reimport(small_cnn(false));
  write_for_interop("small_fp32", small_cnn(false), {}, small_cnn(false));
}

TEST(OnnxExport, NhwcInputKeepsItsTranspose) {
  const Graph g = small_cnn(true);
  expect_same_ir_after_reimport(g);
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(exported(g)));
  EXPECT_EQ(m.graph().node(0).op_type(), "Transpose");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(3).dim_value(), 1);
  write_for_interop("small_nhwc_fp32", g, {}, g);
}

TEST(OnnxExport, EveryOpRoundTrips) {
  OnnxExportOptions opset14;
  opset14.opset = 14;
  expect_same_ir_after_reimport(wide_graph(14), opset14);
  write_for_interop("wide_opset14", wide_graph(14), opset14, wide_graph(14));
  // At opset 13 HardSwish is spelled x * HardSigmoid(x).
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(exported(wide_graph(13))));
  EXPECT_EQ(m.opset_import(0).version(), 13);
  for (const auto& n : m.graph().node()) EXPECT_NE(n.op_type(), "HardSwish");
  write_for_interop("wide_opset13", wide_graph(13), {}, wide_graph(13));
}

// Slice is written as ONNX Slice with constant starts/ends/axes/steps and reads back unchanged.
TEST(OnnxExport, SliceRoundTrips) {
  Graph g;
  g.name = "slice";
  const int x = g.add_input("x", {ir::kBatch, 6, 5, 5}, ir::Layout::kNCHW);
  Attrs a;
  a.axes = {1, 3};
  a.starts = {-4, 0};
  a.ends = {std::numeric_limits<std::int64_t>::max(), 5};
  a.steps = {1, 2};
  g.outputs = {g.add_node(OpKind::kRelu, "relu", {g.add_node(OpKind::kSlice, "slice", {x}, a)})};
  ASSERT_TRUE(ir::verify(g).ok());
  expect_same_ir_after_reimport(g);
}

TEST(OnnxExport, QdqInt8HasQuantizedWeightsAndActivations) {
  const Graph g = small_cnn(false);
  OnnxExportOptions options;
  options.qdq_int8 = true;
  options.activation_quant["x"] = ir::QuantParams{{1.0F / 127.0F}, {128}, -1, 0};
  options.activation_quant["relu"] = ir::QuantParams{{0.01F}, {0}, -1, 0};
  options.activation_quant["flatten"] = ir::QuantParams{{0.01F}, {0}, -1, 0};
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(exported(g, options)));
  int quantize = 0, dequantize = 0;
  for (const auto& n : m.graph().node()) {
    quantize += n.op_type() == "QuantizeLinear";
    dequantize += n.op_type() == "DequantizeLinear";
  }
  EXPECT_EQ(quantize, 3);
  EXPECT_EQ(dequantize, 3 + 2);  // activations + the two weights
  bool saw_weight = false;
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == "conv.w_quantized") {
      saw_weight = true;
      EXPECT_EQ(t.data_type(), onnx::TensorProto::INT8);
      EXPECT_EQ(t.raw_data().size(), 36U);
    }
    if (t.name() == "conv.w_scale") EXPECT_EQ(t.dims(0), 4);
    if (t.name() == "x_zero_point") EXPECT_EQ(t.data_type(), onnx::TensorProto::UINT8);
    EXPECT_NE(t.name(), "conv.w") << "the float weight is not stored";
  }
  EXPECT_TRUE(saw_weight);
  for (const auto& n : m.graph().node()) {
    if (n.op_type() == "Conv") EXPECT_EQ(n.input(0), "x_dequantized");
    if (n.op_type() == "Gemm") EXPECT_EQ(n.input(0), "flatten_dequantized");
  }
  EXPECT_EQ(m.graph().output(0).name(), "fc");

  // The reference: weights as the int8 codes decode, activations fake-quantized.
  Graph reference = small_cnn(false);
  for (const char* name : {"conv.w", "fc.w"}) {
    ir::Value& w = reference.value(*reference.find(name));
    auto t = encode_constant(w, Encoding::int8_per_channel(0));
    ASSERT_TRUE(t.ok());
    w.f32 = decode_constant(t.value()).value();
  }
  write_for_interop("small_qdq", g, options, reference, options.activation_quant);
}

TEST(OnnxExport, BadOptionsAndUnexportableOpsAreErrors) {
  const Graph g = small_cnn(false);
  OnnxExportOptions options;
  options.qdq_int8 = true;
  options.activation_quant["nope"] = ir::QuantParams{{0.1F}, {}, -1, 0};
  auto r = export_onnx_bytes(g, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nope"), std::string::npos);
  options.activation_quant = {{"relu", ir::QuantParams{{0.1F}, {300}, -1, 0}}};
  r = export_onnx_bytes(g, options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("zero point"), std::string::npos);
  options.activation_quant = {{"conv.w", ir::QuantParams{{0.1F}, {}, -1, 0}}};
  EXPECT_FALSE(export_onnx_bytes(g, options).ok());
  OnnxExportOptions old;
  old.opset = 11;
  EXPECT_EQ(export_onnx_bytes(g, old).error().code, ErrorCode::kInvalidArgument);

  Graph dilated = small_cnn(false);
  Attrs avg = window({2, 2}, 2, 0);
  avg.dilations = {2, 2};
  dilated.nodes[2].op = OpKind::kAvgPool;
  dilated.nodes[2].attrs = avg;
  auto d = export_onnx_bytes(dilated);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(d.error().message.find("pool"), std::string::npos);
}

TEST(OnnxExport, ReferenceEvaluatorAgreesWithItself) {
  // Guards the evaluator the interop test trusts: NHWC and NCHW graphs compute the same thing.
  std::mt19937 rng(2);
  const std::vector<float> nchw = random_values(2 * 64, -1, 1, rng);
  std::vector<float> nhwc(nchw.size());
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 64; ++i) nhwc[static_cast<std::size_t>(b * 64 + i)] = nchw[static_cast<std::size_t>(b * 64 + i)];  // C = 1
  const Graph a = small_cnn(false);
  const Graph b = small_cnn(true);
  const auto va = evaluate(a, nchw);
  const auto vb = evaluate(b, nhwc);
  EXPECT_EQ(va[static_cast<std::size_t>(a.outputs[0])].data, vb[static_cast<std::size_t>(b.outputs[0])].data);
}


// EdgeOpt reads its own QDQ twin back as an int8 graph: the weights as their int8 codes decode
// (per channel, zero point 0), each Q/DQ pair as its value's activation parameters.
TEST(OnnxExport, QdqInt8ImportsBackAsAnInt8Graph) {
  const Graph g = small_cnn(false);
  OnnxExportOptions options;
  options.qdq_int8 = true;
  options.activation_quant["x"] = ir::QuantParams{{1.0F / 127.0F}, {128}, -1, 0};
  options.activation_quant["relu"] = ir::QuantParams{{0.01F}, {0}, -1, 0};
  options.activation_quant["flatten"] = ir::QuantParams{{0.02F}, {3}, -1, 0};
  auto back = onnx_import::import_bytes(exported(g, options), "small_qdq.onnx");
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  const Graph& r = back.value();
  EXPECT_EQ(ir::dump(r), ir::dump(g)) << "same ops, names and shapes once the Q/DQ pairs are folded away";
  for (const char* name : {"conv.w", "fc.w"}) {
    const ir::Value& w = r.value(*r.find(name));
    ASSERT_TRUE(w.quant.has_value()) << name;
    EXPECT_EQ(w.quant->axis, 0);
    EXPECT_EQ(static_cast<std::int64_t>(w.quant->scales.size()), w.shape[0]);
    auto t = encode_constant(g.value(*g.find(name)), Encoding::int8_per_channel(0));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(w.f32, decode_constant(t.value()).value()) << name;
  }
  for (const auto& [name, q] : options.activation_quant) {
    const ir::Value& v = r.value(*r.find(name));
    ASSERT_TRUE(v.quant.has_value()) << name;
    EXPECT_EQ(v.quant->scales, q.scales) << name;
    EXPECT_EQ(v.quant->zero_points, q.zero_points) << name;
  }
  EXPECT_FALSE(r.value(*r.find("conv")).quant.has_value()) << "the ReLU's range covers the fused conv output";

  // int8 activations (as ONNX Runtime writes with QInt8) are the same grid as uint8 with zero point + 128.
  OnnxExportOptions signed_options = options;
  signed_options.activation_type = ir::DType::kI8;
  signed_options.activation_quant["x"] = ir::QuantParams{{1.0F / 127.0F}, {-2}, -1, 0};
  signed_options.activation_quant["relu"] = ir::QuantParams{{0.01F}, {-128}, -1, 0};
  signed_options.activation_quant["flatten"] = ir::QuantParams{{0.02F}, {-128}, -1, 0};
  auto s = onnx_import::import_bytes(exported(g, signed_options), "small_qdq_s8.onnx");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s.value().value(*s.value().find("x")).quant->zero_points, std::vector<std::int32_t>{126});
  EXPECT_EQ(s.value().value(*s.value().find("relu")).quant->zero_points, std::vector<std::int32_t>{0});
}

// QDQ files EdgeOpt cannot map say which node and why, and never crash.
TEST(OnnxExport, QdqFormsEdgeOptCannotMapAreClearErrors) {
  const Graph g = small_cnn(false);
  OnnxExportOptions options;
  options.qdq_int8 = true;
  options.activation_quant["relu"] = ir::QuantParams{{0.01F}, {0}, -1, 0};
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(exported(g, options)));
  auto import_model = [](const onnx::ModelProto& model) {
    std::string bytes;
    EXPECT_TRUE(model.SerializeToString(&bytes));
    return onnx_import::import_bytes(bytes, "edited.onnx");
  };
  // The pool reads QuantizeLinear's codes directly (no DequantizeLinear in between).
  onnx::ModelProto direct = m;
  for (auto& n : *direct.mutable_graph()->mutable_node()) {
    if (n.op_type() == "MaxPool") n.set_input(0, "relu_quantized");
  }
  auto r = import_model(direct);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(r.error().message.find("QuantizeLinear"), std::string::npos) << r.error().message;
  // A zero scale.
  onnx::ModelProto zero = m;
  for (auto& t : *zero.mutable_graph()->mutable_initializer()) {
    if (t.name() == "relu_scale") t.set_raw_data(std::string(4, '\0'));
  }
  r = import_model(zero);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCorruptFile);
  EXPECT_NE(r.error().message.find("scale"), std::string::npos) << r.error().message;
  // 16-bit codes.
  onnx::ModelProto wide = m;
  for (auto& t : *wide.mutable_graph()->mutable_initializer()) {
    if (t.name() == "relu_zero_point") {
      t.set_data_type(onnx::TensorProto::UINT16);
      t.set_raw_data(std::string(2, '\0'));
    }
  }
  r = import_model(wide);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupportedOp);
  EXPECT_NE(r.error().message.find("8-bit"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace edgeopt::format
