#include "techniques/channel_surgery.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <set>

#include "ir/text.h"

namespace edgeopt::techniques::surgery {
namespace {

using ir::OpKind;

// `inner` consecutive features per channel of `space`: 1 for NCHW activations, H*W after a
// Flatten.
struct Segment {
  int space = 0;
  std::int64_t inner = 1;
};
// Where a value's channels are: along `axis` (1, or the last axis after an NCHW -> NHWC
// Transpose), as `parts` one after another (several after a Concat), the whole run repeated
// `repeat` times (H*W after flattening an NHWC tensor, so channel c is every C-th feature).
struct Segments {
  std::vector<Segment> parts;
  std::int64_t repeat = 1;
  int axis = 1;
  bool standard() const { return repeat == 1 && axis == 1; }
};

struct Space {
  int parent = 0;
  std::int64_t size = 0;
  bool blocked = false;
  std::string reason;
  std::vector<int> producers;  // node indices
};

// A constant input of a node sliced along `axis` (of the constant) by the channels of `segments`.
struct Attachment {
  int node = 0;
  int slot = 0;
  int axis = 0;
  Segments segments;
};

struct Analysis {
  std::vector<Space> spaces;
  std::vector<std::optional<Segments>> maps;  // per value id; empty for constants
  std::vector<Attachment> attachments;
  std::vector<std::pair<int, Segments>> depthwise;  // node index, its input channels (its group follows)
  std::vector<std::pair<int, Segments>> reshapes;   // node index, its output channels (target dim 1 follows)
  std::vector<int> group_roots;                     // root space of each reported group, in order

  int find(int s) {
    while (spaces[static_cast<std::size_t>(s)].parent != s) {
      auto& p = spaces[static_cast<std::size_t>(s)].parent;
      p = spaces[static_cast<std::size_t>(p)].parent;
      s = p;
    }
    return s;
  }
  Space& root(int s) { return spaces[static_cast<std::size_t>(find(s))]; }

  int fresh(std::int64_t size, int producer = -1, std::string blocked_reason = {}) {
    Space s;
    s.parent = static_cast<int>(spaces.size());
    s.size = size;
    s.blocked = !blocked_reason.empty();
    s.reason = std::move(blocked_reason);
    if (producer >= 0) s.producers.push_back(producer);
    spaces.push_back(std::move(s));
    return spaces.back().parent;
  }

  void block(const Segments& segs, const std::string& reason) {
    for (const Segment& s : segs.parts) {
      Space& r = root(s.space);
      if (!r.blocked) r.reason = reason;
      r.blocked = true;
    }
  }

  void merge(int a, int b, const std::string& via) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    Space& ra = spaces[static_cast<std::size_t>(a)];
    Space& rb = spaces[static_cast<std::size_t>(b)];
    if (ra.blocked != rb.blocked) {
      const std::string& why = ra.blocked ? ra.reason : rb.reason;
      ra.reason = "tied by '" + via + "' to channels that stay whole (" + why + ")";
    } else if (ra.reason.empty()) {
      ra.reason = rb.reason;
    }
    ra.blocked = ra.blocked || rb.blocked;
    ra.producers.insert(ra.producers.end(), rb.producers.begin(), rb.producers.end());
    rb.parent = a;
  }

  // Ties two values' channels together (an elementwise op of two activations); false and both
  // blocked when their layouts differ.
  bool unify(const Segments& a, const Segments& b, const std::string& via) {
    bool same = a.parts.size() == b.parts.size() && a.repeat == b.repeat && a.axis == b.axis;
    for (std::size_t i = 0; same && i < a.parts.size(); ++i) {
      same = a.parts[i].inner == b.parts[i].inner && root(a.parts[i].space).size == root(b.parts[i].space).size;
    }
    if (!same) {
      const std::string reason = "'" + via + "' combines channels laid out differently (e.g. a Concat with a single layer)";
      block(a, reason);
      block(b, reason);
      return false;
    }
    for (std::size_t i = 0; i < a.parts.size(); ++i) merge(a.parts[i].space, b.parts[i].space, via);
    return true;
  }

  std::int64_t features(const Segments& segs) {
    std::int64_t n = 0;
    for (const Segment& s : segs.parts) n += root(s.space).size * s.inner;
    return n * segs.repeat;
  }
};

std::string describe(const ir::Node& n) { return std::string(ir::op_name(n.op)) + " '" + n.name + "'"; }

bool is_f32_constant(const ir::Graph& g, int id) {
  return id >= 0 && g.value(id).is_constant && g.value(id).dtype == ir::DType::kF32 && !g.value(id).f32.empty();
}

std::int64_t normalized_axis(std::int64_t axis, std::size_t rank) {
  return axis < 0 ? axis + static_cast<std::int64_t>(rank) : axis;
}

// The axis of a per-channel vector constant (shape [C], [1,C], [C,1,1], ...), or -1.
int vector_axis(const ir::Value& v, std::int64_t channels) {
  int axis = -1;
  for (std::size_t d = 0; d < v.shape.size(); ++d) {
    if (v.shape[d] == channels && axis < 0) axis = static_cast<int>(d);
    else if (v.shape[d] != 1) return -1;
  }
  return axis;
}

// The layout after flattening a value of shape `xs` (laid out as `x`) to [N, features]: channel-first
// values give each channel its H*W consecutive features; channel-last (NHWC) values repeat the
// whole channel run once per position. Nothing for layouts it cannot express.
std::optional<Segments> flattened(Segments x, const ir::Shape& xs) {
  if (x.repeat != 1 && xs.size() != 2) return std::nullopt;
  if (x.axis == 1) {
    std::int64_t spatial = 1;
    for (std::size_t d = 2; d < xs.size(); ++d) spatial *= xs[d];
    for (Segment& s : x.parts) s.inner *= spatial;
    return x;
  }
  if (x.axis == static_cast<int>(xs.size()) - 1 && x.repeat == 1) {
    for (const Segment& s : x.parts) {
      if (s.inner != 1) return std::nullopt;
    }
    std::int64_t positions = 1;
    for (std::size_t d = 1; d + 1 < xs.size(); ++d) positions *= xs[d];
    x.repeat = positions;
    x.axis = 1;
    return x;
  }
  return std::nullopt;
}

Analysis analyse(const ir::Graph& g) {
  Analysis a;
  a.maps.resize(g.values.size());
  auto fresh_for = [&](int value, const std::string& reason) {
    const ir::Shape& s = g.value(value).shape;
    Segments segs;
    if (s.size() >= 2) segs.parts.push_back({a.fresh(s[1], -1, reason), 1});
    a.maps[static_cast<std::size_t>(value)] = segs;
  };
  auto segs_of = [&](int value) -> Segments {
    auto& m = a.maps[static_cast<std::size_t>(value)];
    if (!m) fresh_for(value, "comes from '" + g.value(value).name + "', which the surgery does not follow");
    return *m;
  };
  for (int id : g.inputs) fresh_for(id, "channels of the graph input '" + g.value(id).name + "'");
  // The classifier: Conv/Gemm layers whose outputs reach a graph output through weightless ops
  // only (Softmax, Flatten, Reshape, ...). Found backwards so its reason names the output.
  std::map<int, int> tail;  // value id -> the graph output it reaches without a Conv/Gemm between
  for (int id : g.outputs) tail.emplace(id, id);
  for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
    const auto found = tail.find(it->outputs.at(0));
    if (found == tail.end() || it->op == OpKind::kConv || it->op == OpKind::kGemm) continue;
    for (int id : it->inputs) {
      if (id >= 0 && !g.value(id).is_constant) tail.emplace(id, found->second);
    }
  }

  for (std::size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const ir::Node& n = g.nodes[ni];
    const int node = static_cast<int>(ni);
    const int out = n.outputs.at(0);
    const ir::Shape& out_shape = g.value(out).shape;
    std::vector<int> activations;  // non-constant inputs
    for (int id : n.inputs) {
      if (id >= 0 && !g.value(id).is_constant) activations.push_back(id);
    }
    // Blocks every activation input and gives the output channels of its own that stay whole.
    auto opaque = [&](const std::string& reason) {
      for (int id : activations) a.block(segs_of(id), reason);
      fresh_for(out, reason);
      // A Conv/Gemm left whole is still reported, with the reason.
      const auto& made = a.maps[static_cast<std::size_t>(out)]->parts;
      if ((n.op == OpKind::kConv || n.op == OpKind::kGemm) && n.inputs.size() > 1 && is_f32_constant(g, n.inputs[1]) && !made.empty() &&
          g.value(n.inputs[1]).shape.size() >= 2 && a.root(made[0].space).size == g.value(n.inputs[1]).shape[0]) {
        a.root(made[0].space).producers.push_back(node);
      }
    };
    auto pass = [&](const Segments& segs) {
      if (static_cast<int>(out_shape.size()) <= segs.axis || a.features(segs) != out_shape[static_cast<std::size_t>(segs.axis)]) {
        a.block(segs, describe(n) + " changes the channel count in a way the surgery does not follow");
        fresh_for(out, describe(n) + " is not followed");
        return;
      }
      a.maps[static_cast<std::size_t>(out)] = segs;
    };
    const bool has_x = !n.inputs.empty() && n.inputs[0] >= 0 && !g.value(n.inputs[0]).is_constant;
    const ir::Shape empty_shape;
    const ir::Shape& xs = has_x ? g.value(n.inputs[0]).shape : empty_shape;

    // Channels off axis 1, or repeated, are followed only through ops that cannot mix them up.
    // (Channels already kept whole, like a channel-last graph input's, cannot be mixed up.)
    bool unusual = false;
    for (int id : activations) {
      const auto& m = a.maps[static_cast<std::size_t>(id)];
      if (!m || m->standard()) continue;
      for (const Segment& part : m->parts) unusual = unusual || !a.root(part.space).blocked;
    }
    const bool tolerant = n.op == OpKind::kRelu || n.op == OpKind::kClip || n.op == OpKind::kLeakyRelu || n.op == OpKind::kSigmoid ||
                          n.op == OpKind::kHardSigmoid || n.op == OpKind::kHardSwish || n.op == OpKind::kTanh || n.op == OpKind::kIdentity ||
                          n.op == OpKind::kTranspose || n.op == OpKind::kFlatten || n.op == OpKind::kReshape || n.op == OpKind::kGemm;
    if (unusual && !tolerant) {
      opaque("read by " + describe(n) + " in a layout the surgery does not follow (channels moved or flattened)");
      continue;
    }

    switch (n.op) {
      case OpKind::kConv:
      case OpKind::kGemm: {
        if (!has_x || n.inputs.size() < 2 || !is_f32_constant(g, n.inputs[1])) {
          opaque(describe(n) + " has no constant float weights");
          break;
        }
        const ir::Value& w = g.value(n.inputs[1]);
        const std::size_t rank = n.op == OpKind::kConv ? 4U : 2U;
        if (xs.size() != rank || w.shape.size() != rank || w.shape[0] <= 0 || w.shape[1] <= 0) {
          opaque(describe(n) + " has an input or weight of unexpected rank");
          break;
        }
        const Segments x = segs_of(n.inputs[0]);
        const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
        if (has_bias && (!is_f32_constant(g, n.inputs[2]) || vector_axis(g.value(n.inputs[2]), w.shape[0]) < 0)) {
          opaque(describe(n) + " has a bias that is not a float vector of its channels");
          break;
        }
        if (n.op == OpKind::kConv && n.attrs.group != 1) {
          const bool depthwise = n.attrs.group == xs[1] && w.shape[0] == xs[1] && w.shape[1] == 1;
          if (!depthwise) {
            opaque("grouped " + describe(n) + " (group " + std::to_string(n.attrs.group) + ") is left as is");
            break;
          }
          // Depthwise: channel c is filter c; it follows its input's channels.
          a.attachments.push_back({node, 1, 0, x});
          if (has_bias) a.attachments.push_back({node, 2, vector_axis(g.value(n.inputs[2]), w.shape[0]), x});
          a.depthwise.emplace_back(node, x);
          pass(x);
          break;
        }
        a.attachments.push_back({node, 1, 1, x});  // the weight's input columns
        const auto classifier = tail.find(out);
        const std::string reason = classifier == tail.end() ? std::string()
                                   : "is the classifier: its outputs are the graph output '" + g.value(classifier->second).name + "'";
        Segments produced;
        produced.parts.push_back({a.fresh(w.shape[0], node, reason), 1});
        a.maps[static_cast<std::size_t>(out)] = produced;
        break;
      }
      case OpKind::kBatchNorm: {
        if (!has_x || n.inputs.size() != 5 || xs.size() < 2) {
          opaque(describe(n) + " is malformed");
          break;
        }
        bool constants = true;
        for (std::size_t i = 1; i < 5; ++i) constants = constants && is_f32_constant(g, n.inputs[i]);
        if (!constants) {
          opaque(describe(n) + " has parameters that are not float constants");
          break;
        }
        const Segments x = segs_of(n.inputs[0]);
        bool ok = true;
        for (int slot = 1; slot < 5; ++slot) ok = ok && vector_axis(g.value(n.inputs[static_cast<std::size_t>(slot)]), xs[1]) >= 0;
        if (!ok) {
          opaque(describe(n) + " has parameters of unexpected shape");
          break;
        }
        for (int slot = 1; slot < 5; ++slot) {
          a.attachments.push_back({node, slot, vector_axis(g.value(n.inputs[static_cast<std::size_t>(slot)]), xs[1]), x});
        }
        pass(x);
        break;
      }
      case OpKind::kRelu:
      case OpKind::kClip:
      case OpKind::kLeakyRelu:
      case OpKind::kSigmoid:
      case OpKind::kHardSigmoid:
      case OpKind::kHardSwish:
      case OpKind::kTanh:
      case OpKind::kIdentity:
      case OpKind::kMaxPool:
      case OpKind::kAvgPool:
      case OpKind::kGlobalAvgPool:
        if (!has_x) opaque(describe(n) + " reads a constant");
        else pass(segs_of(n.inputs[0]));
        break;
      case OpKind::kSoftmax:
      case OpKind::kLogSoftmax:
        if (!has_x || normalized_axis(n.attrs.axis, xs.size()) == 1) opaque(describe(n) + " normalises over the channels");
        else pass(segs_of(n.inputs[0]));
        break;
      case OpKind::kPad: {
        const auto& p = n.attrs.pads;
        const bool channels_padded = xs.size() < 2 || p.size() != 2 * xs.size() || p[1] != 0 || p[1 + xs.size()] != 0;
        if (!has_x || channels_padded) opaque(describe(n) + " pads the channels");
        else pass(segs_of(n.inputs[0]));
        break;
      }
      case OpKind::kSlice: {
        bool touches = !has_x;
        for (auto axis : n.attrs.axes) touches = touches || normalized_axis(axis, xs.size()) == 1;
        if (touches) opaque(describe(n) + " slices the channels");
        else pass(segs_of(n.inputs[0]));
        break;
      }
      case OpKind::kTranspose: {
        // Keeps the batch first; the channels go wherever the permutation puts their axis (Keras
        // models flatten NHWC: Transpose(0,2,3,1) then Flatten).
        const auto& perm = n.attrs.perm;
        Segments x = has_x ? segs_of(n.inputs[0]) : Segments{};
        const auto to = std::find(perm.begin(), perm.end(), x.axis);
        if (!has_x || perm.size() != xs.size() || perm[0] != 0 || x.repeat != 1 || to == perm.end()) {
          opaque(describe(n) + " moves the channel axis");
          break;
        }
        x.axis = static_cast<int>(to - perm.begin());
        pass(x);
        break;
      }
      case OpKind::kFlatten: {
        const std::int64_t axis = has_x ? normalized_axis(n.attrs.axis, xs.size()) : -1;
        if (axis != 1 || xs.size() < 2) {
          opaque(describe(n) + " does not flatten at axis 1");
          break;
        }
        if (auto flat = flattened(segs_of(n.inputs[0]), xs)) pass(*flat);
        else opaque(describe(n) + " flattens channels in a layout the surgery does not follow");
        break;
      }
      case OpKind::kReshape:
      case OpKind::kSqueeze:
      case OpKind::kUnsqueeze: {
        if (!has_x || xs.size() < 2 || out_shape.size() < 2 || out_shape[0] != xs[0]) {
          opaque(describe(n) + " reshapes the batch or channel axis");
          break;
        }
        bool axes_clear = true;  // Squeeze/Unsqueeze must not touch axes 0 and 1
        const std::size_t rank = n.op == OpKind::kSqueeze ? xs.size() : out_shape.size();
        for (auto axis : n.attrs.axes) axes_clear = axes_clear && normalized_axis(axis, rank) >= 2;
        if (n.op == OpKind::kSqueeze && n.attrs.axes.empty()) axes_clear = xs[1] != 1 && out_shape[1] == xs[1];
        const Segments x = segs_of(n.inputs[0]);
        if (out_shape[1] == xs[1] && axes_clear && x.axis == 1) {
          if (n.op == OpKind::kReshape) a.reshapes.emplace_back(node, x);
          pass(x);
          break;
        }
        std::int64_t per_sample = 1;
        for (std::size_t d = 1; d < xs.size(); ++d) per_sample *= xs[d];
        if (n.op == OpKind::kReshape && out_shape.size() == 2 && out_shape[1] == per_sample) {
          if (auto flat = flattened(x, xs)) {
            a.reshapes.emplace_back(node, *flat);
            pass(*flat);
            break;
          }
        }
        opaque(describe(n) + " reshapes the channel axis");
        break;
      }
      case OpKind::kConcat: {
        const std::int64_t axis = normalized_axis(n.attrs.axis, out_shape.size());
        if (activations.size() != n.inputs.size()) {
          opaque(describe(n) + " concatenates a constant");
          break;
        }
        if (axis == 1) {
          Segments joined;
          for (int id : n.inputs) {
            const Segments s = segs_of(id);
            joined.parts.insert(joined.parts.end(), s.parts.begin(), s.parts.end());
          }
          pass(joined);
        } else {
          const Segments first = segs_of(n.inputs[0]);
          bool ok = true;
          for (std::size_t i = 1; i < n.inputs.size(); ++i) ok = a.unify(first, segs_of(n.inputs[i]), n.name) && ok;
          if (ok) pass(first);
          else fresh_for(out, describe(n) + " is not followed");
        }
        break;
      }
      case OpKind::kAdd:
      case OpKind::kSub:
      case OpKind::kMul:
      case OpKind::kDiv: {
        if (n.inputs.size() != 2 || n.inputs[0] < 0 || n.inputs[1] < 0) {
          opaque(describe(n) + " is malformed");
          break;
        }
        const std::size_t rank = out_shape.size();
        if (activations.size() == 2) {
          const ir::Shape& as = g.value(n.inputs[0]).shape;
          const ir::Shape& bs = g.value(n.inputs[1]).shape;
          if (as.size() != rank || bs.size() != rank || rank < 2) {
            opaque(describe(n) + " broadcasts across ranks");
          } else if (as[1] == bs[1]) {
            const Segments x = segs_of(n.inputs[0]);
            if (a.unify(x, segs_of(n.inputs[1]), n.name)) pass(x);
            else fresh_for(out, describe(n) + " is not followed");
          } else if (as[1] == 1 || bs[1] == 1) {
            pass(segs_of(n.inputs[as[1] == 1 ? 1 : 0]));  // a one-channel operand broadcasts over all
          } else {
            opaque(describe(n) + " mixes channel counts");
          }
          break;
        }
        if (activations.size() != 1) {
          opaque(describe(n) + " combines constants");
          break;
        }
        const int x_slot = g.value(n.inputs[0]).is_constant ? 1 : 0;
        const int c_slot = 1 - x_slot;
        const ir::Shape& x_shape = g.value(n.inputs[static_cast<std::size_t>(x_slot)]).shape;
        const ir::Value& c = g.value(n.inputs[static_cast<std::size_t>(c_slot)]);
        if (x_shape.size() != rank || rank < 2 || c.dtype != ir::DType::kF32) {
          opaque(describe(n) + " broadcasts a constant in a way the surgery does not follow");
          break;
        }
        const Segments x = segs_of(n.inputs[static_cast<std::size_t>(x_slot)]);
        const auto pos = static_cast<std::int64_t>(c.shape.size()) - static_cast<std::int64_t>(rank) + 1;  // c's axis under axis 1
        if (pos < 0 || c.shape[static_cast<std::size_t>(pos)] == 1) {
          pass(x);
        } else if (c.shape[static_cast<std::size_t>(pos)] == x_shape[1]) {
          a.attachments.push_back({node, c_slot, static_cast<int>(pos), x});
          pass(x);
        } else {
          opaque(describe(n) + " broadcasts a constant in a way the surgery does not follow");
        }
        break;
      }
      default:
        opaque("read by " + describe(n) + ", which the surgery does not narrow");
        break;
    }
  }
  for (int id : g.outputs) {
    if (id >= 0 && a.maps[static_cast<std::size_t>(id)]) {
      a.block(*a.maps[static_cast<std::size_t>(id)], "reaches the graph output '" + g.value(id).name + "' (the classifier's outputs are never pruned)");
    }
  }
  // Groups: the root spaces that have a producing Conv/Gemm, in the order of their first producer.
  std::vector<std::pair<int, int>> firsts;  // first producer node, root
  std::set<int> seen;
  for (std::size_t s = 0; s < a.spaces.size(); ++s) {
    const int r = a.find(static_cast<int>(s));
    if (seen.count(r) || a.spaces[static_cast<std::size_t>(r)].producers.empty()) continue;
    seen.insert(r);
    auto& producers = a.spaces[static_cast<std::size_t>(r)].producers;
    std::sort(producers.begin(), producers.end());
    firsts.emplace_back(producers.front(), r);
  }
  std::sort(firsts.begin(), firsts.end());
  for (const auto& f : firsts) a.group_roots.push_back(f.second);
  return a;
}

// Per-channel scores of one producer: its weight rows' L1 norms, optionally times the |gamma| /
// sqrt(var + eps) of a BatchNorm that alone reads its output; divided by their mean.
std::vector<double> producer_scores(const ir::Graph& g, int node, Importance importance) {
  const ir::Node& n = g.nodes[static_cast<std::size_t>(node)];
  const ir::Value& w = g.value(n.inputs[1]);
  const std::int64_t rows = w.shape[0];
  const std::int64_t per = static_cast<std::int64_t>(w.f32.size()) / std::max<std::int64_t>(1, rows);
  std::vector<double> score(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    double l1 = 0;
    for (std::int64_t k = 0; k < per; ++k) l1 += std::abs(static_cast<double>(w.f32[static_cast<std::size_t>(r * per + k)]));
    score[static_cast<std::size_t>(r)] = l1;
  }
  if (importance == Importance::kBnScaledL1) {
    const ir::Node* bn = nullptr;
    int readers = 0;
    for (const ir::Node& m : g.nodes) {
      for (int id : m.inputs) {
        if (id != n.outputs[0]) continue;
        ++readers;
        if (m.op == OpKind::kBatchNorm && m.inputs[0] == id) bn = &m;
      }
    }
    if (readers == 1 && bn && bn->inputs.size() == 5) {
      const auto& gamma = g.value(bn->inputs[1]).f32;
      const auto& var = g.value(bn->inputs[4]).f32;
      if (gamma.size() == score.size() && var.size() == score.size()) {
        for (std::size_t c = 0; c < score.size(); ++c) {
          score[c] *= std::abs(static_cast<double>(gamma[c])) / std::sqrt(std::max(0.0, static_cast<double>(var[c])) + bn->attrs.epsilon);
        }
      }
    }
  }
  const double mean = score.empty() ? 0.0 : std::accumulate(score.begin(), score.end(), 0.0) / static_cast<double>(score.size());
  for (double& s : score) s = mean > 0 ? s / mean : 1.0;
  return score;
}

ChannelPlan make_plan(const ir::Graph& g, Analysis& a, Importance importance) {
  ChannelPlan plan;
  for (int r : a.group_roots) {
    const Space& s = a.spaces[static_cast<std::size_t>(r)];
    ChannelGroup group;
    group.channels = s.size;
    group.prunable = !s.blocked;
    group.reason = s.reason;
    if (group.prunable && s.size < 2) {
      group.prunable = false;
      group.reason = "has a single channel";
    }
    group.importance.assign(static_cast<std::size_t>(s.size), 0.0);
    for (int p : s.producers) {
      group.layers.push_back(g.nodes[static_cast<std::size_t>(p)].name);
      const std::vector<double> score = producer_scores(g, p, importance);
      for (std::size_t c = 0; c < score.size() && c < group.importance.size(); ++c) group.importance[c] += score[c];
    }
    plan.groups.push_back(std::move(group));
  }
  return plan;
}

// Keeps `keep` (ascending) of `axis` of the constant.
void slice_axis(ir::Value& v, int axis, const std::vector<std::int64_t>& keep) {
  if (axis < 0 || static_cast<std::size_t>(axis) >= v.shape.size()) {
    fail(ErrorCode::kInternal, "channel surgery: constant '" + v.name + "' has no axis " + std::to_string(axis));
  }
  std::int64_t outer = 1;
  std::int64_t inner = 1;
  for (int d = 0; d < axis; ++d) outer *= v.shape[static_cast<std::size_t>(d)];
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < v.shape.size(); ++d) inner *= v.shape[d];
  const std::int64_t dim = v.shape[static_cast<std::size_t>(axis)];
  if (static_cast<std::int64_t>(v.f32.size()) != outer * dim * inner) {
    fail(ErrorCode::kCorruptFile, "constant '" + v.name + "' has " + std::to_string(v.f32.size()) + " values for shape " + ir::shape_to_string(v.shape));
  }
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(outer * static_cast<std::int64_t>(keep.size()) * inner));
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t k : keep) {
      if (k < 0 || k >= dim) fail(ErrorCode::kInternal, "channel surgery: index out of range in '" + v.name + "'");
      const auto begin = v.f32.begin() + (o * dim + k) * inner;
      out.insert(out.end(), begin, begin + inner);
    }
  }
  v.f32 = std::move(out);
  v.shape[static_cast<std::size_t>(axis)] = static_cast<std::int64_t>(keep.size());
}

// The constant at (node, slot), copied first when other nodes read it too, so slicing it for
// this node leaves theirs intact.
ir::Value& own(ir::Graph& g, std::size_t node, std::size_t slot) {
  const int id = g.nodes[node].inputs.at(slot);
  int uses = 0;
  for (const ir::Node& n : g.nodes) uses += static_cast<int>(std::count(n.inputs.begin(), n.inputs.end(), id));
  if (uses > 1) {
    ir::Value copy = g.value(id);
    copy.name += "_pruned";
    g.nodes[node].inputs[slot] = g.add_value(std::move(copy));
  }
  return g.value(g.nodes[node].inputs[slot]);
}

Result<ir::Graph> apply(const ir::Graph& graph, Analysis& a, const ChannelPlan& plan,
                        const std::vector<std::vector<std::int64_t>>& keep) {
  return capture([&]() -> ir::Graph {
    if (keep.size() > plan.groups.size()) {
      fail(ErrorCode::kInvalidArgument, "channel surgery: " + std::to_string(keep.size()) + " keep lists for " +
                                            std::to_string(plan.groups.size()) + " channel groups");
    }
    std::map<int, std::vector<std::int64_t>> kept;  // root space -> channels kept (ascending), when narrowed
    for (std::size_t gi = 0; gi < keep.size(); ++gi) {
      const ChannelGroup& group = plan.groups[gi];
      std::vector<std::int64_t> k = keep[gi];
      if (k.empty() || static_cast<std::int64_t>(k.size()) == group.channels) continue;
      std::sort(k.begin(), k.end());
      if (std::adjacent_find(k.begin(), k.end()) != k.end() || k.front() < 0 || k.back() >= group.channels ||
          static_cast<std::int64_t>(k.size()) > group.channels) {
        fail(ErrorCode::kInvalidArgument, "channels to keep for " + group_label(group) + " must be distinct indices below " +
                                              std::to_string(group.channels));
      }
      if (!group.prunable) {
        fail(ErrorCode::kUnsupportedOp, "the channels of " + group_label(group) + " cannot be pruned: " + group.reason);
      }
      kept[a.group_roots[gi]] = std::move(k);
    }
    ir::Graph g = graph;
    if (kept.empty()) return g;
    // Indices along the channel axis that survive, for a value laid out as `segs`, and how many
    // there were.
    auto surviving = [&](const Segments& segs) {
      std::vector<std::int64_t> idx;
      std::int64_t offset = 0;
      for (std::int64_t rep = 0; rep < segs.repeat; ++rep) {
        for (const Segment& s : segs.parts) {
          const int r = a.find(s.space);
          const std::int64_t size = a.spaces[static_cast<std::size_t>(r)].size;
          const auto it = kept.find(r);
          for (std::int64_t c = 0; c < size; ++c) {
            if (it != kept.end() && !std::binary_search(it->second.begin(), it->second.end(), c)) continue;
            for (std::int64_t j = 0; j < s.inner; ++j) idx.push_back(offset + c * s.inner + j);
          }
          offset += size * s.inner;
        }
      }
      return std::make_pair(idx, offset);
    };
    for (const Attachment& at : a.attachments) {
      const auto [idx, full] = surviving(at.segments);
      if (static_cast<std::int64_t>(idx.size()) == full) continue;
      slice_axis(own(g, static_cast<std::size_t>(at.node), static_cast<std::size_t>(at.slot)), at.axis, idx);
    }
    for (const auto& [root, channels] : kept) {
      for (int p : a.spaces[static_cast<std::size_t>(root)].producers) {
        const auto node = static_cast<std::size_t>(p);
        slice_axis(own(g, node, 1), 0, channels);
        if (g.nodes[node].inputs.size() > 2 && g.nodes[node].inputs[2] >= 0) {
          ir::Value& bias = own(g, node, 2);
          slice_axis(bias, vector_axis(bias, a.spaces[static_cast<std::size_t>(root)].size), channels);
        }
      }
    }
    for (const auto& [node, segs] : a.depthwise) g.nodes[static_cast<std::size_t>(node)].attrs.group = static_cast<std::int64_t>(surviving(segs).first.size());
    for (const auto& [node, segs] : a.reshapes) {
      auto& target = g.nodes[static_cast<std::size_t>(node)].attrs.shape;
      if (target.size() > 1 && target[1] > 0) target[1] = static_cast<std::int64_t>(surviving(segs).first.size());
    }
    if (Status s = ir::verify(g); !s) {
      fail(ErrorCode::kInternal, "channel surgery produced a graph that does not verify: " + s.error().message,
           "please report this with the model");
    }
    return g;
  });
}

}  // namespace

bool ChannelPlan::any_prunable() const {
  return std::any_of(groups.begin(), groups.end(), [](const ChannelGroup& group) { return group.prunable; });
}

std::string group_label(const ChannelGroup& group) {
  std::string label;
  for (const std::string& l : group.layers) label += (label.empty() ? "'" : " + '") + l + "'";
  return label.empty() ? std::string("(unnamed)") : label;
}

Result<ChannelPlan> analyze(const ir::Graph& graph, Importance importance) {
  return capture([&]() -> ChannelPlan {
    Analysis a = analyse(graph);
    return make_plan(graph, a, importance);
  });
}

Result<ir::Graph> remove_channels(const ir::Graph& graph, const std::vector<std::vector<std::int64_t>>& keep) {
  auto analysed = capture([&]() -> std::pair<Analysis, ChannelPlan> {
    Analysis a = analyse(graph);
    ChannelPlan plan = make_plan(graph, a, Importance::kL1);
    return {std::move(a), std::move(plan)};
  });
  if (!analysed) return analysed.error();
  return apply(graph, analysed->first, analysed->second, keep);
}

Result<ir::Graph> remove_channels(const ir::Graph& graph, const std::map<std::string, std::vector<std::int64_t>>& keep_by_layer) {
  auto plan = analyze(graph);
  if (!plan) return plan.error();
  std::vector<std::vector<std::int64_t>> keep(plan->groups.size());
  std::vector<std::string> given_by(plan->groups.size());
  for (const auto& [layer, channels] : keep_by_layer) {
    std::vector<std::size_t> matches;
    for (std::size_t gi = 0; gi < plan->groups.size(); ++gi) {
      const auto& layers = plan->groups[gi].layers;
      if (std::find(layers.begin(), layers.end(), layer) != layers.end()) matches.push_back(gi);
    }
    if (matches.empty()) {
      return Error{ErrorCode::kInvalidArgument, "no Conv/Gemm layer named '" + layer + "' produces channels in this model",
                   "list the layers with `edgeopt inspect`"};
    }
    if (matches.size() > 1) return Error{ErrorCode::kInvalidArgument, "several layers are named '" + layer + "'", "use the group-indexed remove_channels()"};
    std::vector<std::int64_t> sorted = channels;
    std::sort(sorted.begin(), sorted.end());
    auto& slot = keep[matches[0]];
    if (!given_by[matches[0]].empty() && slot != sorted) {
      return Error{ErrorCode::kInvalidArgument, "layers '" + given_by[matches[0]] + "' and '" + layer +
                                                    "' feed the same elementwise op, so they must keep the same channels"};
    }
    slot = std::move(sorted);
    given_by[matches[0]] = layer;
  }
  return remove_channels(graph, keep);
}

std::vector<std::int64_t> most_important(const std::vector<double>& importance, std::int64_t count) {
  std::vector<std::int64_t> order(importance.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) {
    return importance[static_cast<std::size_t>(x)] > importance[static_cast<std::size_t>(y)];
  });
  order.resize(static_cast<std::size_t>(std::clamp<std::int64_t>(count, 0, static_cast<std::int64_t>(order.size()))));
  std::sort(order.begin(), order.end());
  return order;
}

Result<ir::Graph> shrink(const ir::Graph& graph, double keep_ratio, Importance importance) {
  auto plan = analyze(graph, importance);
  if (!plan) return plan.error();
  if (!plan->any_prunable()) {
    std::string why;
    for (const ChannelGroup& group : plan->groups) why += (why.empty() ? "" : "; ") + group_label(group) + ": " + group.reason;
    return Error{ErrorCode::kUnsupportedOp, "no layer's channels can be pruned" + (why.empty() ? std::string(" (the model has no Conv/Gemm layer)") : ": " + why),
                 "structured pruning needs a hidden Conv or Gemm layer whose outputs only feed layers the surgery can narrow"};
  }
  std::vector<std::vector<std::int64_t>> keep;
  for (const ChannelGroup& group : plan->groups) {
    if (!group.prunable) {
      keep.emplace_back();
      continue;
    }
    const auto count = std::clamp<std::int64_t>(std::llround(keep_ratio * static_cast<double>(group.channels)), 1, group.channels);
    keep.push_back(most_important(group.importance, count));
  }
  return remove_channels(graph, keep);
}

std::int64_t total_macs(const ir::Graph& graph) {
  std::int64_t macs = 0;
  for (const ir::Node& n : graph.nodes) macs += ir::node_cost(graph, n).macs;
  return macs;
}

}  // namespace edgeopt::techniques::surgery
