// Keras importer: every generated model in tests/data/keras (with its golden file), the two real
// fixtures, and hostile input. A small reference evaluator (below) runs the imported graphs on the
// golden inputs, so layout, kernel order and padding are checked against Keras' own outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "importers/keras/keras_importer.h"
#include "ir/text.h"

namespace {

namespace fs = std::filesystem;
namespace keras_import = edgeopt::keras_import;
using edgeopt::ErrorCode;
using edgeopt::ir::Graph;
using edgeopt::ir::kBatch;
using edgeopt::ir::Layout;
using edgeopt::ir::Node;
using edgeopt::ir::OpKind;
using edgeopt::ir::Shape;
using nlohmann::json;

const std::string kRepo = EDGEOPT_SOURCE_DIR;
const std::string kFixtures = kRepo + "/../shared/fixtures/models/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

fs::path temp_dir() { return fs::temp_directory_path() / ("edgeopt_keras_test_" + std::to_string(::getpid())); }

// This process's temporary folder goes when the tests end.
const struct TempDirCleanup {
  ~TempDirCleanup() {
    std::error_code ignored;
    fs::remove_all(temp_dir(), ignored);
  }
} temp_dir_cleanup;

std::string temp_path(const std::string& name) {
  const fs::path dir = temp_dir();
  fs::create_directories(dir);
  return (dir / name).string();
}

edgeopt::Result<Graph> import_any(const std::string& path) {
  if (path.size() > 6 && path.substr(path.size() - 6) == ".keras") return keras_import::import_keras_v3(path);
  return keras_import::import_h5(path);
}

// ---- a plain reference evaluator for the ops the Keras importer emits (batch 1) ----

struct Tensor {
  Shape shape;
  std::vector<float> data;
};

Shape concrete(Shape s) {
  for (auto& d : s) d = d == kBatch ? 1 : d;
  return s;
}

std::vector<std::int64_t> strides_of(const Shape& s) {
  std::vector<std::int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

std::int64_t count(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Tensor binary(const Tensor& a, const Tensor& b, OpKind op) {
  const std::size_t rank = std::max(a.shape.size(), b.shape.size());
  Shape as(rank - a.shape.size(), 1), bs(rank - b.shape.size(), 1);
  as.insert(as.end(), a.shape.begin(), a.shape.end());
  bs.insert(bs.end(), b.shape.begin(), b.shape.end());
  Tensor out;
  for (std::size_t i = 0; i < rank; ++i) out.shape.push_back(std::max(as[i], bs[i]));
  const auto ast = strides_of(as), bst = strides_of(bs), ost = strides_of(out.shape);
  out.data.resize(static_cast<std::size_t>(count(out.shape)));
  for (std::int64_t i = 0; i < count(out.shape); ++i) {
    std::int64_t ai = 0, bi = 0, rem = i;
    for (std::size_t d = 0; d < rank; ++d) {
      const std::int64_t idx = rem / ost[d];
      rem %= ost[d];
      ai += (as[d] == 1 ? 0 : idx) * ast[d];
      bi += (bs[d] == 1 ? 0 : idx) * bst[d];
    }
    const float x = a.data[static_cast<std::size_t>(ai)], y = b.data[static_cast<std::size_t>(bi)];
    float r = 0;
    switch (op) {
      case OpKind::kAdd: r = x + y; break;
      case OpKind::kSub: r = x - y; break;
      case OpKind::kMul: r = x * y; break;
      case OpKind::kDiv: r = x / y; break;
      default: ADD_FAILURE() << "not binary";
    }
    out.data[static_cast<std::size_t>(i)] = r;
  }
  return out;
}

Tensor window(const Tensor& x, const Node& n, const Tensor* w, const Tensor* bias) {
  const auto& a = n.attrs;
  const std::int64_t C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const bool conv = n.op == OpKind::kConv;
  const std::int64_t kh = conv ? w->shape[2] : a.kernel[0], kw = conv ? w->shape[3] : a.kernel[1];
  const std::int64_t sh = a.strides.empty() ? 1 : a.strides[0], sw = a.strides.empty() ? 1 : a.strides[1];
  const std::int64_t dh = a.dilations.empty() ? 1 : a.dilations[0], dw = a.dilations.empty() ? 1 : a.dilations[1];
  const std::int64_t pt = a.pads.empty() ? 0 : a.pads[0], pl = a.pads.empty() ? 0 : a.pads[1];
  const std::int64_t pb = a.pads.empty() ? 0 : a.pads[2], pr = a.pads.empty() ? 0 : a.pads[3];
  const std::int64_t OH = (H + pt + pb - dh * (kh - 1) - 1) / sh + 1, OW = (W + pl + pr - dw * (kw - 1) - 1) / sw + 1;
  const std::int64_t O = conv ? w->shape[0] : C;
  const std::int64_t group = conv ? a.group : C, cin_g = C / group, cout_g = O / group;
  Tensor out{{1, O, OH, OW}, std::vector<float>(static_cast<std::size_t>(O * OH * OW))};
  for (std::int64_t o = 0; o < O; ++o) {
    const std::int64_t g = o / cout_g;
    for (std::int64_t oy = 0; oy < OH; ++oy) {
      for (std::int64_t ox = 0; ox < OW; ++ox) {
        double acc = conv ? (bias ? bias->data[static_cast<std::size_t>(o)] : 0.0) : 0.0;
        double best = -INFINITY;
        int seen = 0;
        for (std::int64_t i = 0; i < (conv ? cin_g : 1); ++i) {
          const std::int64_t c = conv ? g * cin_g + i : o;
          for (std::int64_t ky = 0; ky < kh; ++ky) {
            const std::int64_t y = oy * sh - pt + ky * dh;
            if (y < 0 || y >= H) continue;
            for (std::int64_t kx = 0; kx < kw; ++kx) {
              const std::int64_t xx = ox * sw - pl + kx * dw;
              if (xx < 0 || xx >= W) continue;
              const float v = x.data[static_cast<std::size_t>((c * H + y) * W + xx)];
              if (conv) acc += v * w->data[static_cast<std::size_t>(((o * cin_g + i) * kh + ky) * kw + kx)];
              else if (n.op == OpKind::kMaxPool) best = std::max(best, static_cast<double>(v));
              else acc += v;
              ++seen;
            }
          }
        }
        const std::size_t at = static_cast<std::size_t>((o * OH + oy) * OW + ox);
        if (conv) out.data[at] = static_cast<float>(acc);
        else if (n.op == OpKind::kMaxPool) out.data[at] = static_cast<float>(best);
        else out.data[at] = static_cast<float>(acc / (a.count_include_pad ? kh * kw : std::max(seen, 1)));
      }
    }
  }
  return out;
}

std::vector<float> run_reference(const Graph& g, const std::vector<float>& input) {
  std::map<int, Tensor> env;
  env[g.inputs.at(0)] = Tensor{concrete(g.value(g.inputs[0]).shape), input};
  auto get = [&](int id) -> const Tensor& {
    const auto& v = g.value(id);
    if (v.is_constant && !env.count(id)) env[id] = Tensor{v.shape, v.f32};
    return env.at(id);
  };
  for (const Node& n : g.nodes) {
    const Tensor& x = get(n.inputs[0]);
    const Shape out_shape = concrete(g.value(n.outputs[0]).shape);
    Tensor y{out_shape, {}};
    auto unary = [&](auto f) {
      y.data.resize(x.data.size());
      std::transform(x.data.begin(), x.data.end(), y.data.begin(), f);
    };
    const auto& a = n.attrs;
    switch (n.op) {
      case OpKind::kConv:
        y = window(x, n, &get(n.inputs[1]), n.inputs.size() > 2 && n.inputs[2] >= 0 ? &get(n.inputs[2]) : nullptr);
        break;
      case OpKind::kMaxPool:
      case OpKind::kAvgPool: y = window(x, n, nullptr, nullptr); break;
      case OpKind::kGemm: {
        const Tensor& w = get(n.inputs[1]);
        const std::int64_t M = w.shape[0], K = w.shape[1];
        y.data.assign(static_cast<std::size_t>(M), 0.0F);
        for (std::int64_t m = 0; m < M; ++m) {
          double acc = n.inputs.size() > 2 ? get(n.inputs[2]).data[static_cast<std::size_t>(m)] : 0.0;
          for (std::int64_t k = 0; k < K; ++k) acc += x.data[static_cast<std::size_t>(k)] * w.data[static_cast<std::size_t>(m * K + k)];
          y.data[static_cast<std::size_t>(m)] = static_cast<float>(acc);
        }
        break;
      }
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul:
      case OpKind::kDiv: y = binary(x, get(n.inputs[1]), n.op); break;
      case OpKind::kRelu: unary([](float v) { return std::max(v, 0.0F); }); break;
      case OpKind::kClip: unary([&](float v) { return std::min(std::max(v, a.min), a.max); }); break;
      case OpKind::kLeakyRelu: unary([&](float v) { return v >= 0 ? v : a.alpha * v; }); break;
      case OpKind::kSigmoid: unary([](float v) { return 1.0F / (1.0F + std::exp(-v)); }); break;
      case OpKind::kHardSigmoid: unary([&](float v) { return std::clamp(a.alpha * v + a.beta, 0.0F, 1.0F); }); break;
      case OpKind::kHardSwish: unary([](float v) { return v * std::clamp(v / 6.0F + 0.5F, 0.0F, 1.0F); }); break;
      case OpKind::kTanh: unary([](float v) { return std::tanh(v); }); break;
      case OpKind::kSoftmax:
      case OpKind::kLogSoftmax: {
        const auto st = strides_of(x.shape);
        const auto axis = static_cast<std::size_t>(a.axis < 0 ? a.axis + static_cast<std::int64_t>(x.shape.size()) : a.axis);
        const std::int64_t len = x.shape[axis], step = st[axis];
        y.data = x.data;
        for (std::int64_t start = 0; start < count(x.shape); ++start) {
          if ((start / step) % len != 0) continue;  // visit each line once, from its first element
          double mx = -INFINITY, sum = 0;
          for (std::int64_t i = 0; i < len; ++i) mx = std::max(mx, static_cast<double>(x.data[static_cast<std::size_t>(start + i * step)]));
          for (std::int64_t i = 0; i < len; ++i) sum += std::exp(x.data[static_cast<std::size_t>(start + i * step)] - mx);
          for (std::int64_t i = 0; i < len; ++i) {
            const double v = x.data[static_cast<std::size_t>(start + i * step)] - mx;
            y.data[static_cast<std::size_t>(start + i * step)] = static_cast<float>(n.op == OpKind::kSoftmax ? std::exp(v) / sum : v - std::log(sum));
          }
        }
        break;
      }
      case OpKind::kBatchNorm: {
        const auto &s = get(n.inputs[1]).data, &b = get(n.inputs[2]).data, &m = get(n.inputs[3]).data, &v = get(n.inputs[4]).data;
        const std::int64_t C = x.shape[1], inner = count(x.shape) / C;
        y.data.resize(x.data.size());
        for (std::int64_t c = 0; c < C; ++c) {
          const float k = s[c] / std::sqrt(v[c] + a.epsilon);
          for (std::int64_t i = 0; i < inner; ++i) {
            const auto at = static_cast<std::size_t>(c * inner + i);
            y.data[at] = (x.data[at] - m[c]) * k + b[c];
          }
        }
        break;
      }
      case OpKind::kGlobalAvgPool: {
        const std::int64_t C = x.shape[1], hw = x.shape[2] * x.shape[3];
        for (std::int64_t c = 0; c < C; ++c) {
          double acc = 0;
          for (std::int64_t i = 0; i < hw; ++i) acc += x.data[static_cast<std::size_t>(c * hw + i)];
          y.data.push_back(static_cast<float>(acc / hw));
        }
        break;
      }
      case OpKind::kFlatten:
      case OpKind::kReshape:
      case OpKind::kIdentity: y.data = x.data; break;
      case OpKind::kTranspose: {
        const auto ist = strides_of(x.shape), ost = strides_of(out_shape);
        y.data.resize(x.data.size());
        for (std::int64_t i = 0; i < count(out_shape); ++i) {
          std::int64_t src = 0, rem = i;
          for (std::size_t d = 0; d < out_shape.size(); ++d) {
            src += (rem / ost[d]) * ist[static_cast<std::size_t>(a.perm[d])];
            rem %= ost[d];
          }
          y.data[static_cast<std::size_t>(i)] = x.data[static_cast<std::size_t>(src)];
        }
        break;
      }
      case OpKind::kConcat: {
        const auto axis = static_cast<std::size_t>(a.axis);
        std::int64_t outer = 1;
        for (std::size_t d = 0; d < axis; ++d) outer *= out_shape[d];
        for (std::int64_t o = 0; o < outer; ++o) {
          for (int id : n.inputs) {
            const Tensor& t = get(id);
            const std::int64_t block = count(t.shape) / outer;
            y.data.insert(y.data.end(), t.data.begin() + o * block, t.data.begin() + (o + 1) * block);
          }
        }
        break;
      }
      case OpKind::kPad: {
        const std::int64_t C = x.shape[1], H = x.shape[2], W = x.shape[3], OH = out_shape[2], OW = out_shape[3];
        y.data.assign(static_cast<std::size_t>(count(out_shape)), a.pad_value);
        // Negative pads crop (Cropping2D): source values that land outside are dropped.
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t w = 0; w < W; ++w) {
              const std::int64_t oh = h + a.pads[2], ow = w + a.pads[3];
              if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
              y.data[static_cast<std::size_t>((c * OH + oh) * OW + ow)] = x.data[static_cast<std::size_t>((c * H + h) * W + w)];
            }
        break;
      }
      default: ADD_FAILURE() << "reference evaluator lacks " << edgeopt::ir::op_name(n.op);
    }
    env[n.outputs[0]] = std::move(y);
  }
  return env.at(g.outputs.at(0)).data;
}

// ---- the generated models and their golden files ----

std::vector<std::string> keras_goldens() {
  std::vector<std::string> out;
  const fs::path dir = kRepo + "/tests/data/golden";
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    const json golden = json::parse(read_file(entry.path().string()), nullptr, false);
    if (golden.is_object() && golden.value("format", "").rfind("keras", 0) == 0) out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(KerasImporter, GeneratedModelsMatchTheirGoldenFiles) {
  const auto goldens = keras_goldens();
  ASSERT_GE(goldens.size(), 16U) << "run tools/fixtures/make_keras_models.py with both venvs";
  for (const std::string& path : goldens) {
    SCOPED_TRACE(path);
    const json golden = json::parse(read_file(path));
    const std::string model = kRepo + "/" + golden["model"].get<std::string>();
    if (!fs::exists(model)) continue;  // golden files for the shared fixtures need /work/shared
    auto result = import_any(model);
    ASSERT_TRUE(result.ok()) << result.error().to_string();
    Graph& g = result.value();
    ASSERT_TRUE(edgeopt::ir::verify(g).ok());
    EXPECT_EQ(g.param_count(), golden["params"].get<std::int64_t>());
    EXPECT_EQ(g.producer.rfind("keras ", 0), 0U);
    EXPECT_FALSE(g.name.empty());
    ASSERT_EQ(g.inputs.size(), 1U);
    ASSERT_EQ(g.outputs.size(), 1U);
    // Golden files may hold several samples; the graph's batch is symbolic.
    const Shape golden_input = golden["input_shape"].get<Shape>();
    const Shape input_shape = g.value(g.inputs[0]).shape;
    ASSERT_EQ(input_shape.size(), golden_input.size());
    EXPECT_EQ(input_shape[0], kBatch);
    EXPECT_TRUE(std::equal(input_shape.begin() + 1, input_shape.end(), golden_input.begin() + 1));
    EXPECT_EQ(g.value(g.inputs[0]).layout, input_shape.size() == 4 ? Layout::kNHWC : Layout::kNC);

    const auto inputs = golden["input"].get<std::vector<float>>();
    const auto expected = golden["output"].get<std::vector<float>>();
    const auto batch = static_cast<std::size_t>(golden_input[0]);
    const std::size_t in_size = inputs.size() / batch, out_size = expected.size() / batch;
    EXPECT_EQ(static_cast<std::size_t>(edgeopt::ir::sample_elements(g.value(g.outputs[0]).shape)), out_size);
    if (golden.contains("output_shape")) {
      EXPECT_EQ(concrete(g.value(g.outputs[0]).shape), golden["output_shape"].get<Shape>());
    }
    const double tolerance = golden["tolerance"].get<double>();
    double worst = 0;
    for (std::size_t b = 0; b < batch; ++b) {
      const std::vector<float> sample(inputs.begin() + static_cast<std::ptrdiff_t>(b * in_size),
                                      inputs.begin() + static_cast<std::ptrdiff_t>((b + 1) * in_size));
      const auto actual = run_reference(g, sample);
      ASSERT_EQ(actual.size(), out_size);
      for (std::size_t i = 0; i < out_size; ++i) {
        const double want = expected[b * out_size + i];
        worst = std::max(worst, std::abs(static_cast<double>(actual[i]) - want) / std::max(1.0, std::abs(want)));
      }
    }
    EXPECT_LE(worst, tolerance);
  }
}

TEST(KerasImporter, ModelStructure) {
  const std::string dir = kRepo + "/tests/data/keras/";
  if (!fs::exists(dir + "mobilenet_block_k2.h5")) GTEST_SKIP() << "generated models absent";
  auto g = keras_import::import_h5(dir + "mobilenet_block_k2.h5");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  // The NHWC input is transposed to NCHW right away; the depthwise convs are grouped.
  const Graph& graph = g.value();
  EXPECT_EQ(graph.value(graph.inputs[0]).name, "image");
  EXPECT_EQ(graph.nodes.front().op, OpKind::kTranspose);
  EXPECT_EQ(graph.nodes.front().attrs.perm, (std::vector<std::int64_t>{0, 3, 1, 2}));
  int depthwise = 0;
  for (const Node& n : graph.nodes) {
    if (n.op == OpKind::kConv && n.attrs.group > 1) ++depthwise;
  }
  EXPECT_EQ(depthwise, 2);
  EXPECT_EQ(graph.nodes.back().op, OpKind::kSoftmax);  // Keras returns probabilities
  EXPECT_EQ(graph.producer, "keras 2.15.0");

  // Keras 2 and Keras 3 hard_sigmoid differ; the version decides.
  auto k2 = keras_import::import_h5(dir + "dense_acts_k2.h5");
  auto k3 = keras_import::import_keras_v3(dir + "dense_acts_k3.keras");
  ASSERT_TRUE(k2.ok() && k3.ok());
  auto alpha_of = [](const Graph& graph) {
    for (const Node& n : graph.nodes) {
      if (n.op == OpKind::kHardSigmoid) return n.attrs.alpha;
    }
    return -1.0F;
  };
  EXPECT_FLOAT_EQ(alpha_of(k2.value()), 0.2F);
  EXPECT_FLOAT_EQ(alpha_of(k3.value()), 1.0F / 6.0F);
}

TEST(KerasImporter, FixedLengthStringAttributes) {
  const std::string path = kRepo + "/tests/data/keras/fixed_strings_k2.h5";
  if (!fs::exists(path)) GTEST_SKIP() << "generated models absent";
  auto g = keras_import::import_h5(path);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->param_count(), 3 * 3 * 1 * 2 + 2 + 6 * 6 * 2 * 2 + 2);
  // The same bytes from memory (the fuzzed path).
  auto from_bytes = keras_import::import_h5_bytes(read_file(path), "fixed_strings_k2.h5");
  ASSERT_TRUE(from_bytes.ok()) << from_bytes.error().to_string();
  EXPECT_EQ(edgeopt::ir::dump(from_bytes.value()), edgeopt::ir::dump(g.value()));
}

TEST(KerasImporter, KerasV3FromMemoryAndConfigWithWeights) {
  const std::string path = kRepo + "/tests/data/keras/nested_k3.keras";
  if (!fs::exists(path)) GTEST_SKIP() << "generated models absent";
  auto from_file = keras_import::import_keras_v3(path);
  auto from_bytes = keras_import::import_keras_v3_bytes(read_file(path), "nested_k3.keras");
  ASSERT_TRUE(from_file.ok() && from_bytes.ok());
  EXPECT_EQ(edgeopt::ir::dump(from_bytes.value()), edgeopt::ir::dump(from_file.value()));
  EXPECT_EQ(from_file->param_count(), 2300);
}

// ---- the real fixtures ----

struct Fixture {
  const char* file;
  std::int64_t params;  // model.count_params() from Keras 2.15
  Shape input;
  Shape output;
};

TEST(KerasImporter, RealFixtures) {
  const Fixture fixtures[] = {
      {"keras2.3_mnist_cnn.h5", 34826, {kBatch, 28, 28, 1}, {kBatch, 10}},
      {"keras2.15_cifar10_cnn.h5", 167562, {kBatch, 32, 32, 3}, {kBatch, 10}},
  };
  for (const auto& f : fixtures) {
    const std::string path = kFixtures + f.file;
    if (!fs::exists(path)) GTEST_SKIP() << "shared fixtures absent";
    SCOPED_TRACE(f.file);
    auto g = keras_import::import_h5(path);
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    EXPECT_TRUE(edgeopt::ir::verify(g.value()).ok());
    EXPECT_EQ(g->param_count(), f.params);
    EXPECT_EQ(g->value(g->inputs[0]).shape, f.input);
    EXPECT_EQ(g->value(g->outputs[0]).shape, f.output);
    EXPECT_EQ(g->producer.rfind("keras 2.", 0), 0U);
  }
}

TEST(KerasImporter, ConfigOnlyImportsTheArchitecture) {
  const std::string path = kFixtures + "keras2.3_mnist_cnn.h5";
  const std::string config = R"({"class_name": "Sequential", "config": {"name": "tiny", "layers": [
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
      "padding": "same", "activation": "relu", "batch_input_shape": [null, 9, 9, 2]}},
    {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}},
    {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "softmax"}}]}})";
  auto g = keras_import::import_config_json(config, "tiny.json");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->param_count(), 2 * 9 * 4 + 4 + 4 * 3 + 3);
  // TF 'same' with stride 2 on 9: output 5, total pad 2, split evenly.
  const Node* conv = nullptr;
  for (const Node& n : g->nodes) {
    if (n.op == OpKind::kConv) conv = &n;
  }
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->attrs.pads, (std::vector<std::int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(g->value(conv->outputs[0]).shape, (Shape{kBatch, 4, 5, 5}));
}

TEST(KerasImporter, SamePaddingPutsTheExtraPadAtTheEnd) {
  const std::string config = R"({"class_name": "Sequential", "config": {"name": "pad", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 8, 7, 1]}},
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 1, "kernel_size": [3, 2], "strides": [2, 2],
      "padding": "same", "use_bias": false}}]}})";
  auto g = keras_import::import_config_json(config, "pad.json");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  const Node* conv = nullptr;
  for (const Node& n : g->nodes) {
    if (n.op == OpKind::kConv) conv = &n;
  }
  ASSERT_NE(conv, nullptr);
  // H: out 4, total (4-1)*2+3-8 = 1 -> top 0, bottom 1; W: out 4, total (4-1)*2+2-7 = 1 -> left 0, right 1.
  EXPECT_EQ(conv->attrs.pads, (std::vector<std::int64_t>{0, 0, 1, 1}));
  // A 4-D output goes back to NHWC, as Keras returns it.
  EXPECT_EQ(g->value(g->outputs[0]).shape, (Shape{kBatch, 4, 4, 1}));
  EXPECT_EQ(g->value(g->outputs[0]).layout, Layout::kNHWC);
}

// ---- bad input ----

void expect_error(const edgeopt::Result<Graph>& r, ErrorCode code, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_EQ(r.error().code, code) << r.error().to_string();
  EXPECT_NE(r.error().to_string().find(fragment), std::string::npos) << r.error().to_string();
}

TEST(KerasImporter, RefusesEmptyMissingAndNonHdf5Files) {
  expect_error(keras_import::import_h5(temp_path("does_not_exist.h5")), ErrorCode::kNotFound, "no such file");
  const std::string empty = temp_path("empty.h5");
  write_file(empty, "");
  expect_error(keras_import::import_h5(empty), ErrorCode::kCorruptFile, "empty");
  const std::string text = temp_path("text.h5");
  write_file(text, "this is not an HDF5 file at all, just some text\n");
  expect_error(keras_import::import_h5(text), ErrorCode::kCorruptFile, "not an HDF5 file");
  expect_error(keras_import::import_h5_bytes("", "bytes"), ErrorCode::kCorruptFile, "empty");
  expect_error(keras_import::import_keras_v3(text), ErrorCode::kCorruptFile, "not a ZIP");
  const std::string dir = kRepo + "/tests/data/keras/";
  if (fs::exists(dir + "seq_cnn_k3.keras")) {
    expect_error(keras_import::import_h5(dir + "seq_cnn_k3.keras"), ErrorCode::kUnsupportedFormat, "ZIP");
  }
}

TEST(KerasImporter, RefusesTruncatedFiles) {
  const std::string dir = kRepo + "/tests/data/keras/";
  if (!fs::exists(dir + "seq_cnn_k2.h5")) GTEST_SKIP() << "generated models absent";
  const std::string bytes = read_file(dir + "seq_cnn_k2.h5");
  for (double fraction : {0.02, 0.3, 0.6, 0.95}) {
    SCOPED_TRACE(fraction);
    const std::string cut = bytes.substr(0, static_cast<std::size_t>(static_cast<double>(bytes.size()) * fraction));
    const std::string path = temp_path("truncated.h5");
    write_file(path, cut);
    auto from_file = keras_import::import_h5(path);
    EXPECT_FALSE(from_file.ok());
    auto from_bytes = keras_import::import_h5_bytes(cut, "truncated.h5");
    EXPECT_FALSE(from_bytes.ok());
    if (!from_bytes.ok()) EXPECT_EQ(from_bytes.error().code, ErrorCode::kCorruptFile) << from_bytes.error().to_string();
  }
  const std::string v3 = read_file(dir + "seq_cnn_k3.keras");
  const std::string cut = v3.substr(0, v3.size() / 2);
  const std::string path = temp_path("truncated.keras");
  write_file(path, cut);
  EXPECT_FALSE(keras_import::import_keras_v3(path).ok());
  EXPECT_FALSE(keras_import::import_keras_v3_bytes(cut, "truncated.keras").ok());
}

TEST(KerasImporter, WeightsOnlyFileSaysHowToSaveTheModel) {
  const std::string path = kRepo + "/tests/data/keras/weights_only_k2.h5";
  if (!fs::exists(path)) GTEST_SKIP() << "generated models absent";
  expect_error(keras_import::import_h5(path), ErrorCode::kUnsupportedFormat,
               "weights only; save with model.save('m.h5') or give us the architecture");
}

TEST(KerasImporter, UnknownLayerIsNamed) {
  const std::string config = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 8, 8, 3]}},
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": 3}},
    {"class_name": "MyFancyAttention", "config": {"name": "fancy_1"}}]}})";
  auto r = keras_import::import_config_json(config, "m.json");
  expect_error(r, ErrorCode::kUnsupportedOp, "MyFancyAttention");
  EXPECT_NE(r.error().message.find("fancy_1"), std::string::npos);
  EXPECT_NE(r.error().hint.find("tf2onnx"), std::string::npos);

  const std::string lambda = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4]}},
    {"class_name": "Lambda", "config": {"name": "code", "function": "evil"}}]}})";
  expect_error(keras_import::import_config_json(lambda, "m.json"), ErrorCode::kUnsupportedOp, "never run");

  const std::string gelu = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4]}},
    {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "gelu"}}]}})";
  expect_error(keras_import::import_config_json(gelu, "m.json"), ErrorCode::kUnsupportedOp, "gelu");
}

TEST(KerasImporter, UnsupportedConstructsAreExplained) {
  const std::string dense4d = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 8, 8, 3]}},
    {"class_name": "Dense", "config": {"name": "d", "units": 2}}]}})";
  expect_error(keras_import::import_config_json(dense4d, "m.json"), ErrorCode::kUnsupportedOp, "Dense over a rank-4");
  const std::string channels_first = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 3, 8, 8]}},
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": 3, "data_format": "channels_first"}}]}})";
  expect_error(keras_import::import_config_json(channels_first, "m.json"), ErrorCode::kUnsupportedOp, "channels_first");
  const std::string variable = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, null, null, 3]}},
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": 3}}]}})";
  expect_error(keras_import::import_config_json(variable, "m.json"), ErrorCode::kUnsupportedOp, "variable size");
}

TEST(KerasImporter, MalformedConfigs) {
  expect_error(keras_import::import_config_json("{not json", "bad.json"), ErrorCode::kCorruptFile, "not valid JSON");
  expect_error(keras_import::import_config_json("[1, 2]", "bad.json"), ErrorCode::kCorruptFile, "not valid JSON");
  expect_error(keras_import::import_config_json(R"({"class_name": "Sequential"})", "bad.json"), ErrorCode::kCorruptFile, "no list of layers");
  const std::string bad_kernel = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 8, 8, 3]}},
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 2, "kernel_size": "big"}}]}})";
  expect_error(keras_import::import_config_json(bad_kernel, "m.json"), ErrorCode::kCorruptFile, "kernel_size");
  const std::string dangling = R"({"class_name": "Functional", "config": {"name": "f", "layers": [
    {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
    {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2}, "inbound_nodes": [[["ghost", 0, 0, {}]]]}],
    "input_layers": [["in", 0, 0]], "output_layers": [["d", 0, 0]]}})";
  expect_error(keras_import::import_config_json(dangling, "f.json"), ErrorCode::kCorruptFile, "ghost");
  const std::string huge = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 1000000]}},
    {"class_name": "Dense", "config": {"name": "d", "units": 1000000}}]}})";
  EXPECT_FALSE(keras_import::import_config_json(huge, "m.json").ok());
}

TEST(KerasImporter, ZipWithoutConfigIsRefused) {
  const std::string dir = kRepo + "/tests/data/keras/";
  if (!fs::exists(dir + "no_config.keras")) GTEST_SKIP() << "generated models absent";
  expect_error(keras_import::import_keras_v3(dir + "no_config.keras"), ErrorCode::kCorruptFile, "no config.json");
}

TEST(KerasImporter, WeightShapeMismatchIsReported) {
  const std::string dir = kRepo + "/tests/data/keras/";
  if (!fs::exists(dir + "shape_mismatch_k2.h5")) GTEST_SKIP() << "generated models absent";
  auto r = keras_import::import_h5(dir + "shape_mismatch_k2.h5");
  expect_error(r, ErrorCode::kShapeMismatch, "kernel");
  // The same with a .keras whose config.json was edited to disagree with its weights.
  if (fs::exists(dir + "shape_mismatch_k3.keras")) {
    expect_error(keras_import::import_keras_v3(dir + "shape_mismatch_k3.keras"), ErrorCode::kShapeMismatch, "kernel");
  }
}

// ---- layers and operations found by the keras.applications sweep (tools/fixtures/sweep_keras_applications.py) ----

std::string keras3_tensor(const std::string& layer) {
  return R"({"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "dtype": "float32", "keras_history": [")" +
         layer + R"(", 0, 0]}})";
}

// MobileNetV3's hard_sigmoid in Keras 3: ReLU(6)(x + 3.0) * (1/6), the numbers inside the calls.
TEST(KerasImporter, Keras3OperationsTakeNumbers) {
  const std::string config = R"({"class_name": "Functional", "config": {"name": "f", "layers": [
    {"module": "keras.layers", "class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [null, 4]}, "inbound_nodes": []},
    {"module": "keras.src.ops.numpy", "class_name": "Add", "name": "add", "config": {"name": "add"},
     "inbound_nodes": [{"args": [)" + keras3_tensor("x") + R"(, 3.0], "kwargs": {}}]},
    {"module": "keras.layers", "class_name": "ReLU", "name": "r", "config": {"name": "r", "max_value": 6.0},
     "inbound_nodes": [{"args": [)" + keras3_tensor("add") + R"(], "kwargs": {}}]},
    {"module": "keras.src.ops.numpy", "class_name": "Multiply", "name": "multiply", "config": {"name": "multiply"},
     "inbound_nodes": [{"args": [)" + keras3_tensor("r") + R"(, 0.16666666666666666], "kwargs": {}}]}],
    "input_layers": [["x", 0, 0]], "output_layers": [["multiply", 0, 0]]}})";
  auto g = keras_import::import_config_json(config, "f.json");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->param_count(), 0);  // the numbers are no Keras weights
  const std::vector<float> x{-5.0F, -1.0F, 0.5F, 4.0F};
  const auto y = run_reference(*g, x);
  ASSERT_EQ(y.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], std::clamp(x[i] + 3.0F, 0.0F, 6.0F) / 6.0F, 1e-6) << i;

  // An operation we do not know is named, with what is supported.
  std::string unknown = config;
  unknown.replace(unknown.find(R"("class_name": "Add")"), 19, R"("class_name": "Einsum")");
  expect_error(keras_import::import_config_json(unknown, "f.json"), ErrorCode::kUnsupportedOp, "Keras operation 'Einsum'");
}

// The same in Keras 2.15: TFOpLambda layers whose inbound node is one flat reference, the
// second operand in its kwargs.
TEST(KerasImporter, Keras2TfOpLambdaArithmetic) {
  auto make = [](const std::string& function, const std::string& kwargs) {
    return R"({"class_name": "Functional", "config": {"name": "f", "layers": [
    {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
    {"class_name": "TFOpLambda", "name": "tf.op", "config": {"name": "tf.op", "function": ")" + function + R"("},
     "inbound_nodes": [["x", 0, 0, )" + kwargs + R"(]]},
    {"class_name": "TFOpLambda", "name": "tf.math.multiply", "config": {"name": "tf.math.multiply", "function": "math.multiply"},
     "inbound_nodes": [["tf.op", 0, 0, {"y": ["x", 0, 0], "name": null}]]}],
    "input_layers": [["x", 0, 0]], "output_layers": [["tf.math.multiply", 0, 0]]}})";
  };
  auto g = keras_import::import_config_json(make("__operators__.add", R"({"y": 3.0, "name": null})"), "f.json");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  const std::vector<float> x{-2.0F, 0.0F, 1.5F, 3.0F};
  const auto y = run_reference(*g, x);
  ASSERT_EQ(y.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], (x[i] + 3.0F) * x[i], 1e-5) << i;  // (x + 3) * x

  expect_error(keras_import::import_config_json(make("linalg.matmul", R"({"y": 3.0})"), "f.json"),
               ErrorCode::kUnsupportedOp, "TensorFlow function 'linalg.matmul'");
  expect_error(keras_import::import_config_json(make("math.add", R"({"y": 3.0, "axis": 1})"), "f.json"),
               ErrorCode::kUnsupportedOp, "keyword argument 'axis'");
}

// NASNet crops with Cropping2D; we express it as a Pad with negative sizes.
TEST(KerasImporter, Cropping2DIsANegativePad) {
  const std::string config = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 6, 5, 2]}},
    {"class_name": "Cropping2D", "config": {"name": "crop", "cropping": [[1, 2], [0, 1]]}}]}})";
  auto g = keras_import::import_config_json(config, "m.json");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->value(g->outputs[0]).shape, (Shape{kBatch, 3, 4, 2}));
  std::vector<float> x(6 * 5 * 2);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const auto y = run_reference(*g, x);
  ASSERT_EQ(y.size(), 3U * 4U * 2U);
  // NHWC out[h][w][c] = in[h + 1][w][c]
  for (std::size_t h = 0; h < 3; ++h)
    for (std::size_t w = 0; w < 4; ++w)
      for (std::size_t c = 0; c < 2; ++c) EXPECT_EQ(y[(h * 4 + w) * 2 + c], x[((h + 1) * 5 + w) * 2 + c]);

  const std::string too_much = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4, 4, 1]}},
    {"class_name": "Cropping2D", "config": {"name": "crop", "cropping": 2}}]}})";
  expect_error(keras_import::import_config_json(too_much, "m.json"), ErrorCode::kCorruptFile, "crops away");
}

TEST(KerasImporter, PermuteReordersKerasAxes) {
  const std::string config = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 2, 3, 4]}},
    {"class_name": "Permute", "config": {"name": "p", "dims": [3, 1, 2]}}]}})";
  auto g = keras_import::import_config_json(config, "m.json");
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->value(g->outputs[0]).shape, (Shape{kBatch, 4, 2, 3}));
  std::vector<float> x(24);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  const auto y = run_reference(*g, x);
  ASSERT_EQ(y.size(), 24U);
  // out[c][h][w] = in[h][w][c]
  for (std::size_t c = 0; c < 4; ++c)
    for (std::size_t h = 0; h < 2; ++h)
      for (std::size_t w = 0; w < 3; ++w) EXPECT_EQ(y[(c * 2 + h) * 3 + w], x[(h * 3 + w) * 4 + c]);
  std::string bad = config;
  bad.replace(bad.find("[3, 1, 2]"), 9, "[3, 3, 2]");
  expect_error(keras_import::import_config_json(bad, "m.json"), ErrorCode::kCorruptFile, "permutation");
}

// Maximum/Minimum/Average of x and -x: |x|, -|x| and 0.
TEST(KerasImporter, MaximumMinimumAverageMerges) {
  for (const std::string cls : {"Maximum", "Minimum", "Average"}) {
    const std::string config = R"({"class_name": "Functional", "config": {"name": "f", "layers": [
    {"module": "keras.layers", "class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [null, 4]}, "inbound_nodes": []},
    {"module": "keras.src.ops.numpy", "class_name": "Multiply", "name": "neg", "config": {"name": "neg"},
     "inbound_nodes": [{"args": [)" + keras3_tensor("x") + R"(, -1.0], "kwargs": {}}]},
    {"module": "keras.layers", "class_name": ")" + cls + R"(", "name": "m", "config": {"name": "m"},
     "inbound_nodes": [{"args": [[)" + keras3_tensor("x") + ", " + keras3_tensor("neg") + R"(]], "kwargs": {}}]}],
    "input_layers": [["x", 0, 0]], "output_layers": [["m", 0, 0]]}})";
    auto g = keras_import::import_config_json(config, "f.json");
    ASSERT_TRUE(g.ok()) << cls << ": " << g.error().to_string();
    const std::vector<float> x{-2.5F, 0.0F, 1.0F, 7.0F};
    const auto y = run_reference(*g, x);
    ASSERT_EQ(y.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float want = cls == "Maximum" ? std::abs(x[i]) : cls == "Minimum" ? -std::abs(x[i]) : 0.0F;
      EXPECT_NEAR(y[i], want, 1e-6) << cls << " " << i;
    }
  }
}

// The IR has no resize: UpSampling2D is refused by name, with the ONNX route.
TEST(KerasImporter, UpSamplingIsRefusedByName) {
  const std::string config = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4, 4, 1]}},
    {"class_name": "UpSampling2D", "config": {"name": "up", "size": [2, 2]}}]}})";
  auto r = keras_import::import_config_json(config, "m.json");
  expect_error(r, ErrorCode::kUnsupportedOp, "UpSampling2D");
  EXPECT_NE(r.error().hint.find("tf2onnx"), std::string::npos);
}

}  // namespace
