#include "backend/torch/torch_impl.h"

#include <caffe2/serialize/versions.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "importers/torchscript/torchscript_archive.h"
#include "ir/text.h"

// How a TorchScript program becomes IR:
//  1. LibTorch loads the archive; forward's graph is copied and every method call inlined.
//  2. The graph is walked in order by a small evaluator. Module attributes (prim::GetAttr) are read
//     from the loaded module; a node whose inputs are all known values (ints, lists, flags,
//     weights) is run by LibTorch itself, which resolves `if self.training`, shape checks and
//     the like; prim::If takes the branch its known condition picks, prim::Loop is unrolled.
//  3. Ops on the image tensor become IR nodes, whose shapes are inferred as they are added, so
//     x.size(1) and friends read real numbers. x.size(0) is the symbolic batch.
// We do not use torch::jit::freeze: it pools value-equal tensors (every fresh BatchNorm's
// running_var is all ones), which would merge distinct parameters and miscount them.
namespace edgeopt::backend::torch_impl {
namespace {

namespace tj = torch::jit;
using ir::OpKind;

constexpr const char* kOnnxHint =
    "export to ONNX with torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\", "
    "opset_version=13) and import that";
constexpr std::int64_t kMaxLoopTrips = 10000;
// Nodes the evaluator may visit in all (loops unrolled): nested loops each under the trip cap
// must not run for hours.
constexpr std::int64_t kMaxEvaluatedNodes = 2'000'000;
// Elements one constant-folded tensor may have, checked on the declared sizes before LibTorch
// allocates anything, and all folded tensors together.
constexpr std::int64_t kMaxFoldedElements = std::int64_t{64} << 20;
constexpr std::int64_t kMaxFoldedTotal = std::int64_t{256} << 20;

// The only ops constant folding may run: pure arithmetic on numbers, lists and shapes, tensor
// reshaping and elementwise maths, and tensor constructors within the element budget. Anything
// else (torch.from_file, random generators, in-place writes to weights) is not folded; it is
// lowered as an ordinary op, or refused as unsupported.
const std::unordered_set<std::string>& foldable_ops() {
  static const std::unordered_set<std::string> ops{
      // numbers, booleans, comparisons
      "aten::add", "aten::sub", "aten::mul", "aten::div", "aten::floordiv", "aten::remainder", "aten::neg", "aten::pow",
      "aten::eq", "aten::ne", "aten::lt", "aten::gt", "aten::le", "aten::ge", "aten::__not__", "aten::__and__",
      "aten::__or__", "aten::__xor__", "aten::__is__", "aten::__isnot__", "aten::Int", "aten::Float", "aten::Bool",
      "aten::ScalarImplicit", "aten::floor", "aten::ceil", "aten::sqrt", "aten::abs", "aten::min", "aten::max",
      "aten::__range_length", "aten::__derive_index", "aten::format", "aten::str", "aten::warn", "aten::item",
      "aten::round", "aten::log", "aten::exp", "aten::trunc", "aten::fmod", "aten::mod", "aten::__contains__",
      "aten::__round_to_zero_floordiv", "aten::sym_size", "aten::sym_numel",
      // lists, tuples, dicts, strings
      "aten::len", "aten::__getitem__", "aten::list", "aten::slice", "aten::append", "aten::_set_item",
      "aten::extend", "aten::index", "aten::count", "aten::reverse", "aten::sum", "aten::values", "aten::keys",
      "aten::items", "aten::dict", "aten::get", "aten::_list_with_default", "aten::_infer_size", "aten::copy",
      "aten::startswith", "aten::endswith", "aten::join", "aten::lower", "aten::upper",
      "prim::unchecked_cast", "prim::TupleIndex", "prim::TupleUnpack", "prim::ListUnpack", "prim::device",
      "prim::dtype", "prim::layout", "prim::min", "prim::max", "prim::abs", "prim::NumToTensor",
      "prim::shape", "prim::is_cuda", "prim::requires_grad", "prim::isinstance", "prim::data", "prim::RaiseException",
      "prim::Uninitialized", "prim::unchecked_unwrap_optional", "aten::__interpolate", "aten::_assert_int_or_pair",
      "aten::_pair", "aten::_single", "aten::_triple", "aten::_quadruple", "aten::_ntuple", "aten::dim", "aten::size",
      "aten::numel", "aten::is_floating_point", "aten::__isnot__",
      // tensors: views, copies, reshaping, elementwise maths, constructors (checked against the budget)
      "aten::t", "aten::transpose", "aten::permute", "aten::reshape", "aten::view", "aten::flatten", "aten::unsqueeze",
      "aten::squeeze", "aten::contiguous", "aten::to", "aten::detach", "aten::clone", "aten::select", "aten::narrow",
      "aten::expand", "aten::expand_as", "aten::view_as", "aten::reshape_as", "aten::type_as", "aten::cat",
      "aten::stack", "aten::chunk", "aten::split", "aten::unbind", "aten::index_select", "aten::rsqrt",
      "aten::reciprocal", "aten::sigmoid", "aten::tanh", "aten::relu", "aten::clamp", "aten::mean", "aten::prod",
      "aten::matmul", "aten::mm", "aten::t_", "aten::zeros", "aten::ones", "aten::full", "aten::arange",
      "aten::tensor", "aten::zeros_like", "aten::ones_like", "aten::full_like", "aten::scalar_tensor",
      "aten::as_tensor", "aten::linspace", "aten::eye", "aten::dequantize", "aten::float", "aten::repeat",
      "aten::_shape_as_tensor", "aten::div_", "aten::mul_", "aten::add_", "aten::sub_"};
  return ops;
}

// What the evaluator knows about one TorchScript value.
struct Sym {
  enum class Kind { kUnset, kKnown, kTensor, kBatch, kList, kTuple };
  Kind kind = Kind::kUnset;
  c10::IValue known;                        // kKnown: scalars, strings, None, weights, modules
  int tensor = -1;                          // kTensor: IR value id
  std::shared_ptr<std::vector<Sym>> items;  // kList / kTuple (shared: lists are mutable references)
  std::string path;                         // attribute path of a module or weight, for names

  static Sym of(c10::IValue value, std::string path = {}) {
    Sym s;
    s.kind = Kind::kKnown;
    s.known = std::move(value);
    s.path = std::move(path);
    return s;
  }
  static Sym of_tensor(int id) {
    Sym s;
    s.kind = Kind::kTensor;
    s.tensor = id;
    return s;
  }
  static Sym batch() {
    Sym s;
    s.kind = Kind::kBatch;
    return s;
  }
  static Sym sequence(Kind kind, std::vector<Sym> items) {
    Sym s;
    s.kind = kind;
    s.items = std::make_shared<std::vector<Sym>>(std::move(items));
    return s;
  }
  bool is_none() const { return kind == Kind::kKnown && known.isNone(); }
};

bool fully_known(const Sym& s) {
  if (s.kind == Sym::Kind::kKnown) return true;
  if (s.kind != Sym::Kind::kList && s.kind != Sym::Kind::kTuple) return false;
  return std::all_of(s.items->begin(), s.items->end(), fully_known);
}

std::string where(const tj::Node* n) {
  try {
    tj::SourceRange range = n->sourceRange();
    if (auto original = range.findSourceRangeThatGenerated()) range = *original;
    if (auto flc = range.file_line_col()) {
      return std::get<0>(*flc) + ":" + std::to_string(std::get<1>(*flc));
    }
  } catch (const std::exception&) {
    // No debug information: the message goes without a source line.
  }
  return {};
}

std::string kind_of(const tj::Node* n) { return n->kind().toQualString(); }

// Thrown when the evaluator has to give up on this input shape but another may work.
struct ShapeRejected {
  Error error;
};

class Lowerer {
 public:
  Lowerer(ir::Graph& graph, std::string source) : g_(graph), source_(std::move(source)) {}

  void run(tj::Graph& program, const c10::IValue& self, const ir::Shape& input_shape, const std::string& input_name) {
    env_[program.inputs()[0]] = Sym::of(self);
    const ir::Layout layout = input_shape.size() == 4   ? ir::Layout::kNCHW
                              : input_shape.size() == 2 ? ir::Layout::kNC
                                                        : ir::Layout::kUnknown;
    env_[program.inputs()[1]] = Sym::of_tensor(g_.add_input(input_name, input_shape, layout));
    lower_block(program.block());
    std::vector<int> outputs;
    collect_outputs(sym(program.outputs()[0]), outputs);
    if (outputs.empty())
      fail(ErrorCode::kUnsupportedOp, source_ + ": forward() returns no tensor computed from its input");
    for (int id : outputs) {
      g_.outputs.push_back(id);
      const auto rank = g_.value(id).shape.size();
      g_.value(id).layout = rank == 2 ? ir::Layout::kNC : rank == 4 ? ir::Layout::kNCHW : ir::Layout::kUnknown;
    }
  }

 private:
  using Handler = void (Lowerer::*)(tj::Node*);

  // ---- errors ----

  // Out-of-scope ops whose fix is not "export to ONNX" (the ONNX importer cannot take them either).
  // Returns {why, hint}, or empty strings for ops without specific advice.
  static std::pair<std::string, std::string> out_of_scope(const std::string& kind) {
    static const std::set<std::string> kIndexing = {"aten::index", "aten::index_select"};
    if (kIndexing.count(kind) > 0) {
      return {"indexes a run-time tensor with a tensor of indices, which EdgeOpt's IR cannot express (ONNX import has the same limit)",
              "index with constant positions or slices (x[:, i], x[:, a:b]), or move the indexing out of the model; or open an issue naming the op"};
    }
    if (kind.rfind("aten::upsample", 0) == 0 || kind == "aten::__interpolate") {
      return {"upsampling is out of scope (EdgeOpt imports image classifiers)", "crop the model before it, or open an issue naming the op"};
    }
    if (kind == "aten::lstm" || kind == "aten::gru" || kind == "aten::rnn_tanh" || kind == "aten::rnn_relu") {
      return {"recurrent layers are out of scope (EdgeOpt imports CNN image models)", "open an issue naming the op"};
    }
    if (kind == "aten::avg_pool3d") {
      return {"3-D pooling is not supported (PyTorch's LocalResponseNorm lowers to it)",
              "if this is LocalResponseNorm (out of scope), remove it or replace it by BatchNorm and retrain; or open an issue"};
    }
    return {};
  }

  [[noreturn]] void unsupported(const tj::Node* n, const std::string& what) {
    const std::string at = where(n);
    fail(ErrorCode::kUnsupportedOp, source_ + ": " + kind_of(n) + (at.empty() ? "" : " at " + at) + ": " + what,
         kOnnxHint);
  }

  // ---- values ----

  const Sym& sym(const tj::Value* v) {
    auto it = env_.find(v);
    if (it == env_.end() || it->second.kind == Sym::Kind::kUnset) {
      const tj::Node* producer = v->node();
      unsupported(producer, "its result '" + v->debugName() + "' is used but could not be computed");
    }
    return it->second;
  }
  const Sym& in(const tj::Node* n, std::size_t i) {
    if (i >= n->inputs().size()) unsupported(n, "has fewer inputs than expected");
    return sym(n->inputs()[i]);
  }
  void set(const tj::Node* n, std::size_t i, Sym s) { env_[n->outputs()[i]] = std::move(s); }

  std::int64_t int_arg(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kBatch) unsupported(n, "computes with the batch size, which EdgeOpt keeps symbolic");
    if (s.kind != Sym::Kind::kKnown || !(s.known.isInt() || s.known.isBool()))
      unsupported(n, "needs a constant integer argument " + std::to_string(i));
    return s.known.isInt() ? s.known.toInt() : static_cast<std::int64_t>(s.known.toBool());
  }
  double num_arg(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kKnown && s.known.isDouble()) return s.known.toDouble();
    if (s.kind == Sym::Kind::kKnown && s.known.isInt()) return static_cast<double>(s.known.toInt());
    if (s.kind == Sym::Kind::kKnown && s.known.isBool()) return s.known.toBool() ? 1.0 : 0.0;
    unsupported(n, "needs a constant number as argument " + std::to_string(i));
  }
  bool bool_arg(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kKnown && s.known.isBool()) return s.known.toBool();
    if (s.kind == Sym::Kind::kKnown && s.known.isInt()) return s.known.toInt() != 0;
    unsupported(n, "branches or depends on a value known only at run time (argument " + std::to_string(i) + ")");
  }
  bool none_arg(const tj::Node* n, std::size_t i) { return i >= n->inputs().size() || in(n, i).is_none(); }

  std::vector<Sym> items_of(const tj::Node* n, const Sym& s) {
    if (s.kind == Sym::Kind::kList || s.kind == Sym::Kind::kTuple) return *s.items;
    std::vector<Sym> out;
    if (s.kind == Sym::Kind::kKnown && s.known.isList()) {
      for (const c10::IValue& v : s.known.toListRef()) out.push_back(Sym::of(v));
      return out;
    }
    if (s.kind == Sym::Kind::kKnown && s.known.isTuple()) {
      for (const c10::IValue& v : s.known.toTupleRef().elements()) out.push_back(Sym::of(v));
      return out;
    }
    unsupported(n, "expects a list or tuple");
  }

  std::vector<std::int64_t> ints_arg(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kKnown && s.known.isInt()) return {s.known.toInt()};
    std::vector<std::int64_t> out;
    for (const Sym& item : items_of(n, s)) {
      if (item.kind != Sym::Kind::kKnown || !item.known.isInt())
        unsupported(n, "needs a constant integer list as argument " + std::to_string(i));
      out.push_back(item.known.toInt());
    }
    return out;
  }

  // The IR value of a tensor argument: a computed tensor, or a weight turned into a constant.
  int tensor_arg(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kTensor) return s.tensor;
    if (s.kind == Sym::Kind::kKnown && s.known.isTensor()) return constant(s.known.toTensor(), s.path, n);
    unsupported(n, "expects a tensor as argument " + std::to_string(i));
  }

  // A tensor or a number operand of an elementwise op; numbers become one-element constants.
  int operand(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kKnown && (s.known.isDouble() || s.known.isInt() || s.known.isBool())) {
      return scalar(static_cast<float>(num_arg(n, i)));
    }
    return tensor_arg(n, i);
  }

  int constant(const at::Tensor& tensor, const std::string& path, const tj::Node* n) {
    auto it = constants_.find(tensor.unsafeGetTensorImpl());
    if (it != constants_.end()) return it->second;
    if (!tensor.is_floating_point()) unsupported(n, "reads a non-floating-point constant tensor");
    const at::Tensor f32 = tensor.detach().to(at::kFloat).contiguous();
    const float* data = f32.data_ptr<float>();
    ir::Shape shape(tensor.sizes().begin(), tensor.sizes().end());
    const int id = g_.add_constant(path.empty() ? "const" : path, shape, std::vector<float>(data, data + f32.numel()));
    keep_alive_.push_back(tensor);  // the TensorImpl address is the key: keep it from being reused
    constants_[tensor.unsafeGetTensorImpl()] = id;
    return id;
  }

  int scalar(float value) {
    auto it = scalars_.find(value);
    if (it != scalars_.end()) return it->second;
    const int id = g_.add_constant("scalar", {1}, {value});
    scalars_[value] = id;
    return id;
  }

  const ir::Shape& shape_of(int id) const { return g_.value(id).shape; }

  std::int64_t axis_arg(const tj::Node* n, std::size_t i, std::size_t rank) {
    std::int64_t axis = int_arg(n, i);
    const auto r = static_cast<std::int64_t>(rank);
    if (axis < -r || axis >= r)
      unsupported(n, "dimension " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
    return axis < 0 ? axis + r : axis;
  }

  // Appends an IR node reading `inputs` and infers its output shape at once, so later
  // x.size(d) queries and shape checks see real numbers.
  int emit(const tj::Node* n, OpKind op, std::vector<int> inputs, ir::Attrs attrs = {},
           const std::string& suffix = {}) {
    std::string name = n->outputs().empty() ? kind_of(n) : n->outputs()[0]->debugName();
    const int out = g_.add_node(op, name + suffix, std::move(inputs), std::move(attrs), {}, kind_of(n));
    const ir::Node& node = g_.nodes.back();
    const ir::OpInfo& info = ir::op_info(op);
    if (static_cast<int>(node.inputs.size()) < info.min_inputs ||
        static_cast<int>(node.inputs.size()) > info.max_inputs) {
      unsupported(n, "lowers to " + std::string(info.name) + " with an unexpected number of inputs");
    }
    try {
      info.infer_shape(g_, node);
    } catch (const Failure& failure) {
      throw ShapeRejected{failure.error};
    }
    return out;
  }

  // ---- the walk ----

  void collect_outputs(const Sym& s, std::vector<int>& out) {
    if (s.kind == Sym::Kind::kTensor) {
      if (std::find(out.begin(), out.end(), s.tensor) == out.end()) out.push_back(s.tensor);
    } else if (s.kind == Sym::Kind::kList || s.kind == Sym::Kind::kTuple) {
      for (const Sym& item : *s.items) collect_outputs(item, out);
    }
    // None (e.g. GoogLeNet's absent aux outputs), numbers and constants are not model outputs.
  }

  void lower_block(tj::Block* block) {
    for (tj::Node* n : block->nodes()) lower_node(n);
  }

  void lower_node(tj::Node* n) {
    if (++evaluated_nodes_ > kMaxEvaluatedNodes) {
      unsupported(n, "makes the importer evaluate more than " + std::to_string(kMaxEvaluatedNodes) + " nodes (loops within loops)");
    }
    const std::string kind = kind_of(n);
    if (structural(n, kind)) return;
    if (fold(n)) return;
    // In-place variants (relu_, add_) lower like their functional twins; later readers of the
    // mutated input must see the result.
    std::string base = kind;
    const bool in_place = base.size() > 2 && base.back() == '_' && base[base.size() - 2] != '_';
    if (in_place) base.pop_back();
    const auto& table = handlers();
    auto it = table.find(base);
    if (it == table.end()) {
      if (auto [why, hint] = out_of_scope(base); !why.empty()) {
        fail(ErrorCode::kUnsupportedOp, source_ + ": " + kind + (where(n).empty() ? "" : " at " + where(n)) + ": " + why, hint);
      }
      unsupported(n, "is not supported by EdgeOpt's TorchScript importer");
    }
    (this->*(it->second))(n);
    if (in_place && !n->inputs().empty() && !n->outputs().empty()) env_[n->inputs()[0]] = env_[n->outputs()[0]];
  }

  // Control flow, containers, attributes and scalar bookkeeping. Returns false for anything else.
  bool structural(tj::Node* n, const std::string& kind) {
    if (kind == "prim::Constant") {
      auto value = tj::toIValue(n->output());
      env_[n->output()] = value ? Sym::of(*value) : Sym{};
      return true;
    }
    if (kind == "prim::GetAttr") {
      const Sym& owner = in(n, 0);
      if (owner.kind != Sym::Kind::kKnown || !owner.known.isObject())
        unsupported(n, "reads an attribute of a value that is not a module");
      const auto object = owner.known.toObject();
      const std::string& attr = n->s(c10::Symbol::attr("name"));
      if (!object->type()->hasAttribute(attr)) unsupported(n, "reads a missing attribute '" + attr + "'");
      set(n, 0, Sym::of(object->getAttr(attr), owner.path.empty() ? attr : owner.path + "." + attr));
      return true;
    }
    if (kind == "prim::If") {
      const bool taken = bool_arg(n, 0);
      tj::Block* block = n->blocks()[taken ? 0 : 1];
      lower_block(block);
      for (std::size_t i = 0; i < n->outputs().size(); ++i) set(n, i, sym(block->outputs()[i]));
      return true;
    }
    if (kind == "prim::Loop") {
      lower_loop(n);
      return true;
    }
    if (kind == "prim::ListConstruct" || kind == "prim::TupleConstruct") {
      std::vector<Sym> items;
      for (std::size_t i = 0; i < n->inputs().size(); ++i) items.push_back(in(n, i));
      set(n, 0, Sym::sequence(kind == "prim::ListConstruct" ? Sym::Kind::kList : Sym::Kind::kTuple, std::move(items)));
      return true;
    }
    if (kind == "prim::ListUnpack" || kind == "prim::TupleUnpack") {
      const std::vector<Sym> items = items_of(n, in(n, 0));
      if (items.size() != n->outputs().size())
        unsupported(n, "unpacks " + std::to_string(items.size()) + " items into " +
                           std::to_string(n->outputs().size()) + " values");
      for (std::size_t i = 0; i < items.size(); ++i) set(n, i, items[i]);
      return true;
    }
    if ((kind == "prim::TupleIndex" || kind == "aten::__getitem__") && !fully_known(in(n, 0))) {
      const std::vector<Sym> items = items_of(n, in(n, 0));
      std::int64_t index = int_arg(n, 1);
      if (index < 0) index += static_cast<std::int64_t>(items.size());
      if (index < 0 || index >= static_cast<std::int64_t>(items.size()))
        unsupported(n, "indexes past the end of a list");
      set(n, 0, items[static_cast<std::size_t>(index)]);
      return true;
    }
    if (kind == "aten::len" && !fully_known(in(n, 0))) {
      set(n, 0, Sym::of(static_cast<std::int64_t>(items_of(n, in(n, 0)).size())));
      return true;
    }
    if (kind == "aten::append" && (in(n, 0).kind == Sym::Kind::kList || !fully_known(in(n, 1)))) {
      Sym list = in(n, 0);
      if (list.kind != Sym::Kind::kList) {
        list = Sym::sequence(Sym::Kind::kList, items_of(n, list));
        env_[n->inputs()[0]] = list;
      }
      list.items->push_back(in(n, 1));
      if (!n->outputs().empty()) set(n, 0, list);
      return true;
    }
    if (kind == "aten::warn" || kind == "prim::Print") return true;
    if (kind == "prim::RaiseException") {
      const Sym& text = in(n, 0);
      const std::string message =
          text.kind == Sym::Kind::kKnown && text.known.isString() ? text.known.toStringRef() : "an exception";
      throw ShapeRejected{Error{ErrorCode::kShapeMismatch,
                                source_ + ": the model raised " + message + (where(n).empty() ? "" : " at " + where(n)),
                                "check the input shape the model expects and pass it with --input-shape"}};
    }
    if (kind == "prim::Uninitialized") {
      set(n, 0, Sym::of(c10::IValue()));
      return true;
    }
    if (kind == "prim::unchecked_cast" || kind == "aten::Int" || kind == "prim::NumToTensor" ||
        kind == "aten::ScalarImplicit" || kind == "aten::Float") {
      const Sym& value = in(n, 0);
      if (fully_known(value)) return false;  // a real conversion: let LibTorch run it
      set(n, 0, value);
      return true;
    }
    if ((kind == "aten::__is__" || kind == "aten::__isnot__") && !(fully_known(in(n, 0)) && fully_known(in(n, 1)))) {
      const bool same = in(n, 0).is_none() && in(n, 1).is_none();
      set(n, 0, Sym::of(kind == "aten::__is__" ? same : !same));
      return true;
    }
    const bool on_tensor =
        !n->inputs().empty() && env_.count(n->inputs()[0]) && env_[n->inputs()[0]].kind == Sym::Kind::kTensor;
    if (on_tensor) {
      const ir::Shape& shape = shape_of(in(n, 0).tensor);
      if (kind == "aten::size" && n->inputs().size() == 1) {
        std::vector<Sym> dims;
        for (std::int64_t d : shape) dims.push_back(d == ir::kBatch ? Sym::batch() : Sym::of(d));
        set(n, 0, Sym::sequence(Sym::Kind::kList, std::move(dims)));
        return true;
      }
      if (kind == "aten::size") {
        const std::int64_t d = shape[static_cast<std::size_t>(axis_arg(n, 1, shape.size()))];
        set(n, 0, d == ir::kBatch ? Sym::batch() : Sym::of(d));
        return true;
      }
      if (kind == "aten::dim") {
        set(n, 0, Sym::of(static_cast<std::int64_t>(shape.size())));
        return true;
      }
      if (kind == "prim::device") {
        set(n, 0, Sym::of(c10::Device(c10::kCPU)));
        return true;
      }
      if (kind == "prim::dtype") {
        set(n, 0, Sym::of(static_cast<std::int64_t>(c10::ScalarType::Float)));
        return true;
      }
      if (kind == "prim::requires_grad" || kind == "prim::is_cuda") {
        set(n, 0, Sym::of(false));
        return true;
      }
    }
    return false;
  }

  void lower_loop(tj::Node* n) {
    const std::int64_t max_trips = int_arg(n, 0);
    bool go_on = bool_arg(n, 1);
    std::vector<Sym> state;
    for (std::size_t i = 2; i < n->inputs().size(); ++i) state.push_back(in(n, i));
    tj::Block* body = n->blocks()[0];
    for (std::int64_t trip = 0; trip < max_trips && go_on; ++trip) {
      if (trip >= kMaxLoopTrips) unsupported(n, "loops more than " + std::to_string(kMaxLoopTrips) + " times");
      env_[body->inputs()[0]] = Sym::of(trip);
      for (std::size_t k = 0; k < state.size(); ++k) env_[body->inputs()[k + 1]] = state[k];
      lower_block(body);
      const Sym& condition = sym(body->outputs()[0]);
      if (condition.kind != Sym::Kind::kKnown || !condition.known.isBool())
        unsupported(n, "loops on a condition known only at run time");
      go_on = condition.known.toBool();
      for (std::size_t k = 0; k < state.size(); ++k) state[k] = sym(body->outputs()[k + 1]);
    }
    for (std::size_t k = 0; k < state.size(); ++k) set(n, k, state[k]);
  }

  c10::IValue to_ivalue(const tj::Node* n, const Sym& s, const c10::TypePtr& type) {
    if (s.kind == Sym::Kind::kKnown) return s.known;
    c10::TypePtr t = type;
    if (auto optional = t->cast<c10::OptionalType>()) t = optional->getElementType();
    if (s.kind == Sym::Kind::kList) {
      auto list_type = t->cast<c10::ListType>();
      if (!list_type) unsupported(n, "passes a list where its schema expects " + type->str());
      c10::impl::GenericList list(list_type->getElementType());
      for (const Sym& item : *s.items) list.push_back(to_ivalue(n, item, list_type->getElementType()));
      return list;
    }
    if (s.kind == Sym::Kind::kTuple) {
      auto tuple_type = t->cast<c10::TupleType>();
      std::vector<c10::IValue> elements;
      for (std::size_t i = 0; i < s.items->size(); ++i) {
        const c10::TypePtr element =
            tuple_type && i < tuple_type->elements().size() ? tuple_type->elements()[i] : c10::AnyType::get();
        elements.push_back(to_ivalue(n, (*s.items)[i], element));
      }
      return c10::ivalue::Tuple::create(std::move(elements));
    }
    unsupported(n, "cannot evaluate a value known only at run time");
  }

  // Before LibTorch allocates: the elements a folded op will make, from the sizes it declares
  // (int lists: a constructor's size, a reshape's, a repeat's factors) or its tensor inputs (a
  // concatenation's or a product's output is at most about their total).
  void check_fold_budget(const tj::Node* n, const tj::Stack& stack) {
    long double declared = 0, inputs = 0;
    for (const c10::IValue& v : stack) {
      if (v.isTensor()) inputs += static_cast<long double>(v.toTensor().numel());
      if (v.isIntList()) {
        long double product = 1;
        for (std::int64_t d : v.toIntList()) product *= static_cast<long double>(std::max<std::int64_t>(d, 0));
        declared = std::max(declared, product);
      }
      if (v.isList()) {  // cat/stack of a list of tensors
        for (const c10::IValue& item : v.toListRef())
          if (item.isTensor()) inputs += static_cast<long double>(item.toTensor().numel());
      }
    }
    const std::string kind = kind_of(n);
    if (kind == "aten::arange" || kind == "aten::linspace") {
      long double span = 0;
      for (const c10::IValue& v : stack)
        if (v.isScalar()) span = std::max(span, std::fabs(static_cast<long double>(v.toScalar().toDouble())));
      declared = std::max(declared, span);
    }
    if (kind == "aten::eye") {
      for (const c10::IValue& v : stack)
        if (v.isInt()) declared = std::max(declared, static_cast<long double>(v.toInt()) * static_cast<long double>(v.toInt()));
    }
    if (kind == "aten::matmul" || kind == "aten::mm") inputs *= inputs;  // at most the product of the sizes
    const long double limit = static_cast<long double>(kMaxFoldedElements);
    if (declared > limit || inputs > limit) {
      unsupported(n, "would make a constant tensor of more than " + std::to_string(kMaxFoldedElements) + " elements");
    }
  }

  // Runs a node whose inputs are all known with LibTorch (constant folding).
  bool fold(tj::Node* n) {
    if (!n->blocks().empty() || n->maybeOperator() == nullptr) return false;
    if (foldable_ops().count(kind_of(n)) == 0) return false;
    for (const tj::Value* v : n->inputs()) {
      auto it = env_.find(v);
      if (it == env_.end() || !fully_known(it->second)) return false;
    }
    tj::Stack stack;
    for (const tj::Value* v : n->inputs()) stack.push_back(to_ivalue(n, env_[v], v->type()));
    check_fold_budget(n, stack);
    try {
      torch::NoGradGuard no_grad;
      n->getOperation()(stack);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      unsupported(n, "failed on constant inputs: " + what.substr(0, what.find('\n')));
    }
    if (stack.size() != n->outputs().size()) unsupported(n, "returned an unexpected number of values");
    for (const c10::IValue& v : stack) {
      if (!v.isTensor()) continue;
      folded_elements_ += v.toTensor().numel();
      if (folded_elements_ > kMaxFoldedTotal) unsupported(n, "makes constant tensors of more than " + std::to_string(kMaxFoldedTotal) + " elements in all");
    }
    std::string path;
    if (!n->inputs().empty() && env_[n->inputs()[0]].kind == Sym::Kind::kKnown) path = env_[n->inputs()[0]].path;
    for (std::size_t i = 0; i < stack.size(); ++i)
      set(n, i, Sym::of(std::move(stack[i]), path.empty() ? "" : path + "_folded"));
    return true;
  }

  // ---- tensor ops ----

  static const std::unordered_map<std::string, Handler>& handlers() {
    static const std::unordered_map<std::string, Handler> table{
        {"aten::conv2d", &Lowerer::conv},
        {"aten::_convolution", &Lowerer::conv},
        {"aten::batch_norm", &Lowerer::batch_norm},
        {"aten::relu", &Lowerer::unary<OpKind::kRelu>},
        {"aten::sigmoid", &Lowerer::unary<OpKind::kSigmoid>},
        {"aten::tanh", &Lowerer::unary<OpKind::kTanh>},
        {"aten::hardswish", &Lowerer::unary<OpKind::kHardSwish>},
        {"aten::hardsigmoid", &Lowerer::hardsigmoid},
        {"aten::hardtanh", &Lowerer::hardtanh},
        {"aten::relu6", &Lowerer::hardtanh},
        {"aten::clamp", &Lowerer::clamp},
        {"aten::silu", &Lowerer::silu},
        {"aten::leaky_relu", &Lowerer::leaky_relu},
        {"aten::add", &Lowerer::binary<OpKind::kAdd>},
        {"aten::sub", &Lowerer::binary<OpKind::kSub>},
        {"aten::mul", &Lowerer::binary<OpKind::kMul>},
        {"aten::div", &Lowerer::binary<OpKind::kDiv>},
        {"aten::linear", &Lowerer::linear},
        {"aten::addmm", &Lowerer::addmm},
        {"aten::matmul", &Lowerer::matmul},
        {"aten::mm", &Lowerer::matmul},
        {"aten::t", &Lowerer::transpose_2d},
        {"aten::flatten", &Lowerer::flatten},
        {"aten::view", &Lowerer::reshape},
        {"aten::reshape", &Lowerer::reshape},
        {"aten::adaptive_avg_pool2d", &Lowerer::adaptive_pool},
        {"aten::adaptive_max_pool2d", &Lowerer::adaptive_pool},
        {"aten::mean", &Lowerer::mean},
        {"aten::max_pool2d", &Lowerer::max_pool},
        {"aten::avg_pool2d", &Lowerer::avg_pool},
        {"aten::cat", &Lowerer::concat},
        {"aten::dropout", &Lowerer::dropout},
        {"aten::feature_dropout", &Lowerer::dropout},
        {"aten::alpha_dropout", &Lowerer::dropout},
        {"aten::contiguous", &Lowerer::identity},
        {"aten::detach", &Lowerer::identity},
        {"aten::clone", &Lowerer::identity},
        {"aten::softmax", &Lowerer::softmax},
        {"aten::log_softmax", &Lowerer::softmax},
        {"aten::pad", &Lowerer::pad},
        {"aten::constant_pad_nd", &Lowerer::pad},
        {"aten::reflection_pad2d", &Lowerer::pad},
        {"aten::replication_pad2d", &Lowerer::pad},
        {"aten::transpose", &Lowerer::transpose},
        {"aten::permute", &Lowerer::permute},
        {"aten::squeeze", &Lowerer::squeeze},
        {"aten::unsqueeze", &Lowerer::unsqueeze},
        {"aten::slice", &Lowerer::slice},
        {"aten::narrow", &Lowerer::narrow},
        {"aten::select", &Lowerer::select},
        {"aten::unbind", &Lowerer::unbind},
        {"aten::chunk", &Lowerer::chunk},
        {"prim::ConstantChunk", &Lowerer::chunk},
        {"aten::split", &Lowerer::split},
        {"aten::split_with_sizes", &Lowerer::split},
        {"aten::gelu", &Lowerer::gelu},
    };
    return table;
  }

  template <OpKind kOp>
  void unary(tj::Node* n) {
    set(n, 0, Sym::of_tensor(emit(n, kOp, {tensor_arg(n, 0)})));
  }

  void identity(tj::Node* n) { set(n, 0, Sym::of_tensor(tensor_arg(n, 0))); }

  void dropout(tj::Node* n) {
    if (n->inputs().size() > 2 && bool_arg(n, 2))
      unsupported(n, "runs in training mode; save the model after model.eval()");
    identity(n);
  }

  void gelu(tj::Node* n) { unsupported(n, "(GELU) has no EdgeOpt IR op yet"); }

  void conv(tj::Node* n) {
    const bool general = kind_of(n) == "aten::_convolution";
    const int x = tensor_arg(n, 0);
    const int w = tensor_arg(n, 1);
    const ir::Shape& ws = shape_of(w);
    if (ws.size() != 4 || shape_of(x).size() != 4)
      unsupported(n, "only 2-D convolutions (4-D input and weight) are supported");
    if (general && bool_arg(n, 6)) unsupported(n, "transposed convolution is not supported");
    auto pair = [&](std::vector<std::int64_t> v, std::int64_t fallback) {
      if (v.empty()) v = {fallback};
      if (v.size() == 1) v.push_back(v[0]);
      return v;
    };
    ir::Attrs a;
    a.strides = pair(ints_arg(n, 3), 1);
    a.dilations = pair(ints_arg(n, 5), 1);
    a.group = int_arg(n, general ? 8 : 6);
    const Sym& padding = in(n, 4);
    if (padding.kind == Sym::Kind::kKnown && padding.known.isString()) {
      const std::string mode = padding.known.toStringRef();
      a.pads = {0, 0, 0, 0};
      if (mode == "same") {
        // PyTorch puts the odd padding element at the end (bottom/right).
        for (std::size_t d = 0; d < 2; ++d) {
          const std::int64_t total = a.dilations[d] * (ws[2 + d] - 1);
          a.pads[d] = total / 2;
          a.pads[d + 2] = total - total / 2;
        }
      } else if (mode != "valid") {
        unsupported(n, "has padding mode '" + mode + "'");
      }
    } else {
      const std::vector<std::int64_t> p = pair(ints_arg(n, 4), 0);
      a.pads = {p[0], p[1], p[0], p[1]};
    }
    std::vector<int> inputs{x, w};
    if (!none_arg(n, 2)) inputs.push_back(tensor_arg(n, 2));
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kConv, inputs, a)));
  }

  void batch_norm(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    if (bool_arg(n, 5)) unsupported(n, "runs in training mode (batch statistics); save the model after model.eval()");
    if (none_arg(n, 3) || none_arg(n, 4)) unsupported(n, "has no running statistics (track_running_stats=False)");
    const ir::Shape& xs = shape_of(x);
    if (xs.size() < 2) unsupported(n, "needs at least a 2-D input");
    const std::int64_t channels = xs[1];
    auto filled = [&](float value, const char* what) {
      return g_.add_constant(n->outputs()[0]->debugName() + "." + what, {channels},
                             std::vector<float>(static_cast<std::size_t>(channels), value));
    };
    ir::Attrs a;
    a.epsilon = static_cast<float>(num_arg(n, 7));
    const int scale = none_arg(n, 1) ? filled(1.0F, "weight") : tensor_arg(n, 1);
    const int bias = none_arg(n, 2) ? filled(0.0F, "bias") : tensor_arg(n, 2);
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kBatchNorm, {x, scale, bias, tensor_arg(n, 3), tensor_arg(n, 4)}, a)));
  }

  void hardsigmoid(tj::Node* n) {
    ir::Attrs a;
    a.alpha = 1.0F / 6.0F;
    a.beta = 0.5F;
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kHardSigmoid, {tensor_arg(n, 0)}, a)));
  }

  void hardtanh(tj::Node* n) {
    ir::Attrs a;
    const bool relu6 = kind_of(n).rfind("aten::relu6", 0) == 0;
    a.min = relu6 ? 0.0F : static_cast<float>(num_arg(n, 1));
    a.max = relu6 ? 6.0F : static_cast<float>(num_arg(n, 2));
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kClip, {tensor_arg(n, 0)}, a)));
  }

  void clamp(tj::Node* n) {
    ir::Attrs a;
    for (std::size_t i = 1; i <= 2; ++i) {
      if (none_arg(n, i)) continue;
      const Sym& bound = in(n, i);
      if (bound.kind != Sym::Kind::kKnown || bound.known.isTensor()) unsupported(n, "clamps to tensor bounds");
      (i == 1 ? a.min : a.max) = static_cast<float>(num_arg(n, i));
    }
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kClip, {tensor_arg(n, 0)}, a)));
  }

  void silu(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const int gate = emit(n, OpKind::kSigmoid, {x}, {}, "_sigmoid");
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kMul, {x, gate})));
  }

  void leaky_relu(tj::Node* n) {
    ir::Attrs a;
    a.alpha = n->inputs().size() > 1 ? static_cast<float>(num_arg(n, 1)) : 0.01F;
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kLeakyRelu, {tensor_arg(n, 0)}, a)));
  }

  template <OpKind kOp>
  void binary(tj::Node* n) {
    const int a = operand(n, 0);
    int b = operand(n, 1);
    if ((kOp == OpKind::kAdd || kOp == OpKind::kSub) && n->inputs().size() > 2) {
      const double alpha = num_arg(n, 2);
      if (alpha != 1.0) b = emit(n, OpKind::kMul, {b, scalar(static_cast<float>(alpha))}, {}, "_alpha");
    }
    if (kOp == OpKind::kDiv && n->inputs().size() > 2 && !none_arg(n, 2))
      unsupported(n, "divides with a rounding mode");
    set(n, 0, Sym::of_tensor(emit(n, kOp, {a, b})));
  }

  // A weight W[out, in] as the matrix W^T[in, out] a MatMul reads.
  int transposed_weight(const tj::Node* n, std::size_t i) {
    const Sym& s = in(n, i);
    if (s.kind == Sym::Kind::kKnown && s.known.isTensor() && s.known.toTensor().dim() == 2) {
      transposed_.push_back(s.known.toTensor().t().contiguous());
      return constant(transposed_.back(), s.path + "_t", n);
    }
    ir::Attrs a;
    a.perm = {1, 0};
    return emit(n, OpKind::kTranspose, {tensor_arg(n, i)}, a, "_wt");
  }

  void linear(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const bool has_bias = !none_arg(n, 2);
    if (shape_of(x).size() == 2) {
      std::vector<int> inputs{x, tensor_arg(n, 1)};
      if (has_bias) inputs.push_back(tensor_arg(n, 2));
      set(n, 0, Sym::of_tensor(emit(n, OpKind::kGemm, inputs)));
      return;
    }
    int y = emit(n, OpKind::kMatMul, {x, transposed_weight(n, 1)}, {}, has_bias ? "_matmul" : "");
    if (has_bias) y = emit(n, OpKind::kAdd, {y, tensor_arg(n, 2)});
    set(n, 0, Sym::of_tensor(y));
  }

  void addmm(tj::Node* n) {
    if (num_arg(n, 3) != 1.0 || num_arg(n, 4) != 1.0) unsupported(n, "uses beta or alpha other than 1");
    const int x = tensor_arg(n, 1);
    const Sym& mat = in(n, 2);
    // addmm(b, x, W.t()) is how traced nn.Linear looks; W.t() arrives already folded.
    if (mat.kind == Sym::Kind::kKnown && mat.known.isTensor() && mat.known.toTensor().dim() == 2 &&
        shape_of(x).size() == 2) {
      transposed_.push_back(mat.known.toTensor().t().contiguous());
      const int w = constant(transposed_.back(), mat.path + "_t", n);
      set(n, 0, Sym::of_tensor(emit(n, OpKind::kGemm, {x, w, tensor_arg(n, 0)})));
      return;
    }
    const int y = emit(n, OpKind::kMatMul, {x, tensor_arg(n, 2)}, {}, "_matmul");
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kAdd, {y, tensor_arg(n, 0)})));
  }

  void matmul(tj::Node* n) {
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kMatMul, {tensor_arg(n, 0), tensor_arg(n, 1)})));
  }

  void transpose_2d(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    if (shape_of(x).size() < 2) return identity(n);
    ir::Attrs a;
    a.perm = {1, 0};
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kTranspose, {x}, a)));
  }

  void transpose(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const std::size_t rank = shape_of(x).size();
    ir::Attrs a;
    a.perm.resize(rank);
    std::iota(a.perm.begin(), a.perm.end(), 0);
    std::swap(a.perm[static_cast<std::size_t>(axis_arg(n, 1, rank))],
              a.perm[static_cast<std::size_t>(axis_arg(n, 2, rank))]);
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kTranspose, {x}, a)));
  }

  void permute(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const std::size_t rank = shape_of(x).size();
    ir::Attrs a;
    for (std::int64_t d : ints_arg(n, 1)) {
      const auto r = static_cast<std::int64_t>(rank);
      if (d < -r || d >= r) unsupported(n, "permutes a dimension out of range");
      a.perm.push_back(d < 0 ? d + r : d);
    }
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kTranspose, {x}, a)));
  }

  // A reshape target: 0 copies the batch, the rest are known sizes or one -1.
  void reshape_to(tj::Node* n, int x, ir::Shape target) {
    ir::Attrs a;
    a.shape = std::move(target);
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kReshape, {x}, a)));
  }

  void flatten(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const ir::Shape shape = shape_of(x);
    if (shape.empty()) return identity(n);
    const auto start = static_cast<std::size_t>(axis_arg(n, 1, shape.size()));
    const auto end = static_cast<std::size_t>(axis_arg(n, 2, shape.size()));
    if (start >= end) return identity(n);
    if (start == 1 && end + 1 == shape.size()) {
      ir::Attrs a;
      a.axis = 1;
      set(n, 0, Sym::of_tensor(emit(n, OpKind::kFlatten, {x}, a)));
      return;
    }
    if (start == 0 && shape[0] == ir::kBatch) unsupported(n, "flattens the batch dimension into the others");
    ir::Shape target;
    std::int64_t merged = 1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (d < start || d > end)
        target.push_back(shape[d] == ir::kBatch ? 0 : shape[d]);
      else
        merged *= shape[d];
      if (d == end) target.push_back(merged);
    }
    reshape_to(n, x, target);
  }

  void reshape(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const ir::Shape& shape = shape_of(x);
    const bool batched = !shape.empty() && shape[0] == ir::kBatch;
    const std::vector<Sym> items = items_of(n, in(n, 1));
    ir::Shape target;
    bool batch_given = false;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].kind == Sym::Kind::kBatch) {
        if (i != 0 || !batched) unsupported(n, "moves the batch size away from dimension 0");
        target.push_back(0);
        batch_given = true;
      } else if (items[i].kind == Sym::Kind::kKnown && items[i].known.isInt()) {
        target.push_back(items[i].known.toInt());
      } else {
        unsupported(n, "reshapes to a size known only at run time");
      }
    }
    // A traced model records its example batch as a constant (view(1, -1)); with a symbolic
    // batch that constant means "the batch".
    if (batched && !batch_given && !target.empty() && target[0] > 0) {
      std::int64_t rest = 1;
      bool infers = false;
      for (std::size_t i = 1; i < target.size(); ++i) {
        if (target[i] == -1)
          infers = true;
        else
          rest *= target[i];
      }
      if (infers || rest == ir::sample_elements(shape)) target[0] = 0;
    }
    reshape_to(n, x, target);
  }

  void adaptive_pool(tj::Node* n) {
    const bool is_max = kind_of(n) == "aten::adaptive_max_pool2d";
    const int x = tensor_arg(n, 0);
    const ir::Shape& shape = shape_of(x);
    if (shape.size() != 4) unsupported(n, "only 4-D (NCHW) inputs are supported");
    std::vector<std::int64_t> size = ints_arg(n, 1);
    if (size.size() == 1) size.push_back(size[0]);
    if (size.size() != 2 || size[0] <= 0 || size[1] <= 0) unsupported(n, "needs a 2-D output size");
    if (!is_max && size[0] == 1 && size[1] == 1) {
      set(n, 0, Sym::of_tensor(emit(n, OpKind::kGlobalAvgPool, {x})));
      return;
    }
    if (shape[2] % size[0] != 0 || shape[3] % size[1] != 0) {
      throw ShapeRejected{Error{ErrorCode::kUnsupportedOp,
                                source_ + ": " + kind_of(n) + " pools " + ir::shape_to_string(shape) + " to " +
                                    std::to_string(size[0]) + "x" + std::to_string(size[1]) +
                                    ", which does not divide evenly",
                                std::string("pass an input size whose feature map divides evenly, or ") + kOnnxHint}};
    }
    ir::Attrs a;
    a.kernel = {shape[2] / size[0], shape[3] / size[1]};
    a.strides = a.kernel;
    a.pads = {0, 0, 0, 0};
    set(n, 0, Sym::of_tensor(emit(n, is_max ? OpKind::kMaxPool : OpKind::kAvgPool, {x}, a)));
    if (is_max && n->outputs().size() > 1) env_.erase(n->outputs()[1]);  // the indices: unusable
  }

  void mean(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const ir::Shape& shape = shape_of(x);
    if (shape.size() != 4 || n->inputs().size() < 3)
      unsupported(n, "only a mean over H and W of a 4-D tensor is supported");
    std::set<std::int64_t> dims;
    for (std::int64_t d : ints_arg(n, 1)) dims.insert(d < 0 ? d + 4 : d);
    if (dims != std::set<std::int64_t>{2, 3}) unsupported(n, "only a mean over dimensions 2 and 3 (H, W) is supported");
    if (n->inputs().size() > 3 && !none_arg(n, 3)) unsupported(n, "casts while averaging");
    const bool keepdim = bool_arg(n, 2);
    int y = emit(n, OpKind::kGlobalAvgPool, {x}, {}, keepdim ? "" : "_pool");
    if (!keepdim) {
      ir::Attrs a;
      a.axis = 1;
      y = emit(n, OpKind::kFlatten, {y}, a);
    }
    set(n, 0, Sym::of_tensor(y));
  }

  ir::Attrs pool_attrs(tj::Node* n, std::size_t padding_at) {
    auto pair = [](std::vector<std::int64_t> v) {
      if (v.size() == 1) v.push_back(v[0]);
      return v;
    };
    ir::Attrs a;
    a.kernel = pair(ints_arg(n, 1));
    a.strides = pair(ints_arg(n, 2));
    if (a.strides.empty()) a.strides = a.kernel;
    const std::vector<std::int64_t> p = pair(ints_arg(n, padding_at));
    if (a.kernel.size() != 2 || a.strides.size() != 2 || p.size() != 2) unsupported(n, "only 2-D pooling is supported");
    a.pads = {p[0], p[1], p[0], p[1]};
    return a;
  }

  void max_pool(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    ir::Attrs a = pool_attrs(n, 3);
    std::vector<std::int64_t> dilation = ints_arg(n, 4);
    if (dilation.size() == 1) dilation.push_back(dilation[0]);
    a.dilations = dilation;
    a.ceil_mode = bool_arg(n, 5);
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kMaxPool, {x}, a)));
  }

  void avg_pool(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    ir::Attrs a = pool_attrs(n, 3);
    a.ceil_mode = bool_arg(n, 4);
    a.count_include_pad = bool_arg(n, 5);
    if (!none_arg(n, 6)) unsupported(n, "uses divisor_override");
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kAvgPool, {x}, a)));
  }

  void concat(tj::Node* n) {
    std::vector<int> inputs;
    for (const Sym& item : items_of(n, in(n, 0))) {
      if (item.kind == Sym::Kind::kTensor)
        inputs.push_back(item.tensor);
      else if (item.kind == Sym::Kind::kKnown && item.known.isTensor())
        inputs.push_back(constant(item.known.toTensor(), item.path, n));
      else
        unsupported(n, "concatenates something that is not a tensor");
    }
    if (inputs.empty()) unsupported(n, "concatenates an empty list");
    if (inputs.size() == 1) {
      set(n, 0, Sym::of_tensor(inputs[0]));
      return;
    }
    ir::Attrs a;
    a.axis = axis_arg(n, 1, shape_of(inputs[0]).size());
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kConcat, inputs, a)));
  }

  void softmax(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    if (n->inputs().size() > 2 && !none_arg(n, 2)) unsupported(n, "casts while normalising");
    ir::Attrs a;
    a.axis = axis_arg(n, 1, shape_of(x).size());
    const bool log = kind_of(n) == "aten::log_softmax";
    set(n, 0, Sym::of_tensor(emit(n, log ? OpKind::kLogSoftmax : OpKind::kSoftmax, {x}, a)));
  }

  void pad(tj::Node* n) {
    const std::string kind = kind_of(n);
    const int x = tensor_arg(n, 0);
    const std::size_t rank = shape_of(x).size();
    const std::vector<std::int64_t> torch_pads = ints_arg(n, 1);
    if (torch_pads.size() % 2 != 0 || torch_pads.size() / 2 > rank) unsupported(n, "has a malformed padding list");
    ir::Attrs a;
    a.pads.assign(2 * rank, 0);
    // PyTorch lists (begin, end) pairs from the last dimension backwards.
    for (std::size_t i = 0; i < torch_pads.size() / 2; ++i) {
      const std::size_t dim = rank - 1 - i;
      if (torch_pads[2 * i] < 0 || torch_pads[2 * i + 1] < 0) unsupported(n, "crops with negative padding");
      a.pads[dim] = torch_pads[2 * i];
      a.pads[dim + rank] = torch_pads[2 * i + 1];
    }
    std::string mode = "constant";
    if (kind == "aten::reflection_pad2d") mode = "reflect";
    if (kind == "aten::replication_pad2d") mode = "replicate";
    if (kind == "aten::pad" && !none_arg(n, 2)) mode = in(n, 2).known.isString() ? in(n, 2).known.toStringRef() : "?";
    if (mode == "reflect")
      a.pad_mode = ir::PadMode::kReflect;
    else if (mode == "replicate")
      a.pad_mode = ir::PadMode::kEdge;
    else if (mode != "constant")
      unsupported(n, "has padding mode '" + mode + "'");
    const std::size_t value_at = kind == "aten::pad" ? 3 : 2;
    if (a.pad_mode == ir::PadMode::kConstant && !none_arg(n, value_at))
      a.pad_value = static_cast<float>(num_arg(n, value_at));
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kPad, {x}, a)));
  }

  void squeeze(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const ir::Shape& shape = shape_of(x);
    ir::Attrs a;
    if (n->inputs().size() > 1) {
      const std::int64_t d = axis_arg(n, 1, shape.size());
      if (shape[static_cast<std::size_t>(d)] != 1) return identity(n);  // torch leaves other sizes alone
      a.axes = {d};
    }
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kSqueeze, {x}, a)));
  }

  void unsqueeze(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    ir::Attrs a;
    a.axes = {axis_arg(n, 1, shape_of(x).size() + 1)};
    set(n, 0, Sym::of_tensor(emit(n, OpKind::kUnsqueeze, {x}, a)));
  }

  // x[start:end:step] along `axis` (Python rules: negative bounds count from the end, both clamp).
  // A whole-range slice is the tensor itself, which is how x[:, i] passes over the batch.
  int slice_axis(const tj::Node* n, int x, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step,
                 const std::string& suffix = {}) {
    if (step <= 0) unsupported(n, "slices with step " + std::to_string(step) + "; only positive steps are supported");
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    const bool whole_batch = start == 0 && end >= kMaxIndex && step == 1;
    if (dim == ir::kBatch) {
      if (!whole_batch) unsupported(n, "slices the batch dimension, which EdgeOpt keeps whole");
      return x;
    }
    if (step == 1 && (start == 0 || start <= -dim) && end >= dim) return x;
    ir::Attrs a;
    a.axes = {axis};
    a.starts = {start};
    a.ends = {end};
    a.steps = {step};
    return emit(n, OpKind::kSlice, {x}, a, suffix);
  }

  // An optional int argument (None means `fallback`).
  std::int64_t opt_int_arg(const tj::Node* n, std::size_t i, std::int64_t fallback) {
    return none_arg(n, i) ? fallback : int_arg(n, i);
  }

  void slice(tj::Node* n) {
    const Sym& self = in(n, 0);
    if (self.kind == Sym::Kind::kList || self.kind == Sym::Kind::kTuple) {
      // list[start:end:step] on a list holding run-time tensors.
      const std::vector<Sym> items = *self.items;
      const auto size = static_cast<std::int64_t>(items.size());
      auto clamp = [size](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + size : v, 0, size); };
      const std::int64_t start = clamp(opt_int_arg(n, 1, 0));
      const std::int64_t end = clamp(opt_int_arg(n, 2, size));
      const std::int64_t step = n->inputs().size() > 3 ? int_arg(n, 3) : 1;
      if (step <= 0) unsupported(n, "slices a list with a step below 1");
      std::vector<Sym> picked;
      for (std::int64_t k = start; k < end; k += step) picked.push_back(items[static_cast<std::size_t>(k)]);
      set(n, 0, Sym::sequence(Sym::Kind::kList, std::move(picked)));
      return;
    }
    const int x = tensor_arg(n, 0);
    const std::int64_t axis = axis_arg(n, 1, shape_of(x).size());
    const std::int64_t start = opt_int_arg(n, 2, 0);
    const std::int64_t end = opt_int_arg(n, 3, kMaxIndex);
    const std::int64_t step = n->inputs().size() > 4 ? int_arg(n, 4) : 1;
    set(n, 0, Sym::of_tensor(slice_axis(n, x, axis, start, end, step)));
  }

  void narrow(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const std::int64_t axis = axis_arg(n, 1, shape_of(x).size());
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    std::int64_t start = int_arg(n, 2);
    const std::int64_t length = int_arg(n, 3);
    if (dim != ir::kBatch && start < 0) start += dim;
    if (length <= 0 || start < 0 || (dim != ir::kBatch && start + length > dim)) unsupported(n, "narrows outside the tensor");
    set(n, 0, Sym::of_tensor(slice_axis(n, x, axis, start, start + length, 1)));
  }

  // x.select(axis, i) is x[..., i:i+1, ...] with the axis squeezed away.
  int select_index(const tj::Node* n, int x, std::int64_t axis, std::int64_t index, const std::string& suffix = {}) {
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    if (dim == ir::kBatch) unsupported(n, "indexes the batch dimension, which EdgeOpt keeps whole");
    if (index < -dim || index >= dim) unsupported(n, "index " + std::to_string(index) + " is out of range for size " + std::to_string(dim));
    if (index < 0) index += dim;
    ir::Attrs a;
    a.axes = {axis};
    a.starts = {index};
    a.ends = {index + 1};
    a.steps = {1};
    const int picked = emit(n, OpKind::kSlice, {x}, a, suffix + "/slice");
    ir::Attrs squeeze;
    squeeze.axes = {axis};
    return emit(n, OpKind::kSqueeze, {picked}, squeeze, suffix);
  }

  void select(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const std::int64_t axis = axis_arg(n, 1, shape_of(x).size());
    set(n, 0, Sym::of_tensor(select_index(n, x, axis, int_arg(n, 2))));
  }

  void unbind(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const std::int64_t axis = n->inputs().size() > 1 ? axis_arg(n, 1, shape_of(x).size()) : 0;
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    if (dim == ir::kBatch) unsupported(n, "unbinds the batch dimension, which EdgeOpt keeps whole");
    std::vector<Sym> parts;
    for (std::int64_t k = 0; k < dim; ++k) parts.push_back(Sym::of_tensor(select_index(n, x, axis, k, "/" + std::to_string(k))));
    set(n, 0, Sym::sequence(Sym::Kind::kList, std::move(parts)));
  }

  // Pieces of `sizes` along `axis`, as the list (or, for prim::ConstantChunk, the outputs) of `n`.
  void emit_pieces(tj::Node* n, int x, std::int64_t axis, const std::vector<std::int64_t>& sizes) {
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    std::vector<Sym> parts;
    std::int64_t start = 0;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      if (sizes[k] < 0 || sizes[k] > dim - start) unsupported(n, "splits " + std::to_string(dim) + " into pieces that do not fit");
      parts.push_back(Sym::of_tensor(slice_axis(n, x, axis, start, start + sizes[k], 1, "/" + std::to_string(k))));
      start += sizes[k];
    }
    if (start != dim) unsupported(n, "splits " + std::to_string(dim) + " into pieces that do not add up to it");
    if (kind_of(n) == "prim::ConstantChunk") {
      if (parts.size() != n->outputs().size()) unsupported(n, "makes " + std::to_string(parts.size()) + " chunks for " + std::to_string(n->outputs().size()) + " outputs");
      for (std::size_t k = 0; k < parts.size(); ++k) set(n, k, parts[k]);
      return;
    }
    set(n, 0, Sym::sequence(Sym::Kind::kList, std::move(parts)));
  }

  // Equal pieces of `each` (the last may be smaller), as torch.split / torch.chunk make them.
  static std::vector<std::int64_t> equal_pieces(std::int64_t dim, std::int64_t each) {
    std::vector<std::int64_t> sizes;
    for (std::int64_t start = 0; start < dim; start += each) sizes.push_back(std::min(each, dim - start));
    return sizes;
  }

  void chunk(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const bool constant_chunk = kind_of(n) == "prim::ConstantChunk";
    const std::int64_t chunks = constant_chunk ? n->i(c10::Symbol::attr("chunks")) : int_arg(n, 1);
    const std::int64_t raw_axis = constant_chunk ? n->i(c10::Symbol::attr("dim")) : (n->inputs().size() > 2 ? int_arg(n, 2) : 0);
    const auto rank = static_cast<std::int64_t>(shape_of(x).size());
    if (raw_axis < -rank || raw_axis >= rank) unsupported(n, "dimension " + std::to_string(raw_axis) + " is out of range for rank " + std::to_string(rank));
    const std::int64_t axis = raw_axis < 0 ? raw_axis + rank : raw_axis;
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    if (dim == ir::kBatch) unsupported(n, "splits the batch dimension, which EdgeOpt keeps whole");
    if (chunks <= 0) unsupported(n, "asks for " + std::to_string(chunks) + " chunks");
    emit_pieces(n, x, axis, equal_pieces(dim, (dim + chunks - 1) / chunks));
  }

  void split(tj::Node* n) {
    const int x = tensor_arg(n, 0);
    const std::int64_t axis = n->inputs().size() > 2 ? axis_arg(n, 2, shape_of(x).size()) : 0;
    const std::int64_t dim = shape_of(x)[static_cast<std::size_t>(axis)];
    if (dim == ir::kBatch) unsupported(n, "splits the batch dimension, which EdgeOpt keeps whole");
    const Sym& sizes = in(n, 1);
    if (sizes.kind == Sym::Kind::kKnown && sizes.known.isInt()) {
      const std::int64_t each = sizes.known.toInt();
      if (each <= 0) unsupported(n, "splits into pieces of size " + std::to_string(each));
      emit_pieces(n, x, axis, equal_pieces(dim, each));
      return;
    }
    emit_pieces(n, x, axis, ints_arg(n, 1));
  }

  static constexpr std::int64_t kMaxIndex = std::numeric_limits<std::int64_t>::max();

  ir::Graph& g_;
  std::string source_;
  std::unordered_map<const tj::Value*, Sym> env_;
  std::unordered_map<const c10::TensorImpl*, int> constants_;
  std::int64_t evaluated_nodes_ = 0;
  std::int64_t folded_elements_ = 0;
  std::map<float, int> scalars_;
  std::vector<at::Tensor> keep_alive_;
  std::vector<at::Tensor> transposed_;
};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// Floating parameters and floating buffers (BatchNorm running statistics), each tensor once.
std::int64_t torch_param_count(const tj::Module& module) {
  std::set<const c10::TensorImpl*> seen;
  std::int64_t total = 0;
  auto add = [&](const at::Tensor& t) {
    if (t.is_floating_point() && seen.insert(t.unsafeGetTensorImpl()).second) total += t.numel();
  };
  for (const at::Tensor& p : module.parameters(true)) add(p);
  for (const at::Tensor& b : module.buffers(true)) add(b);
  return total;
}

ir::Shape with_symbolic_batch(std::vector<std::int64_t> shape) {
  if (!shape.empty()) shape[0] = ir::kBatch;
  return shape;
}

Status check_shape(const std::vector<std::int64_t>& shape, const std::string& from) {
  if (shape.size() < 2 || shape.size() > 6) {
    return Error{ErrorCode::kInvalidArgument, "the input shape from " + from + " must have 2 to 6 dimensions",
                 "give it as N,C,H,W, e.g. 1,3,224,224"};
  }
  for (std::int64_t d : shape) {
    if (d <= 0)
      return Error{ErrorCode::kInvalidArgument, "the input shape from " + from + " has a size <= 0",
                   "give it as N,C,H,W, e.g. 1,3,224,224"};
  }
  return ok_status();
}

struct Candidate {
  ir::Shape shape;
  std::string origin;  // for graph.producer
  bool guessed = false;
};

// Channels (or features) from the first weight, then common image sizes.
std::vector<Candidate> guessed_shapes(const tj::Module& module) {
  std::vector<Candidate> out;
  for (const at::Tensor& p : module.parameters(true)) {
    if (!p.is_floating_point()) continue;
    if (p.dim() == 4) {
      for (std::int64_t size : {224, 32, 28, 96, 64, 299, 128, 256}) {
        out.push_back({{ir::kBatch, p.size(1), size, size}, "", true});
      }
    } else if (p.dim() == 2) {
      out.push_back({{ir::kBatch, p.size(1)}, "", true});
    }
    break;
  }
  return out;
}

ir::Graph import_checked(const std::string& path, const std::vector<std::int64_t>& hint) {
  // 1. The archive's version record and its safety (no __setstate__, storages that match their
  // tensors), read before LibTorch sees the file.
  Result<torchscript::ArchiveInfo> info = torchscript::read_archive_info(path);
  if (!info) throw Failure{info.error()};
  if (Status safe = torchscript::check_archive(path); !safe) throw Failure{safe.error()};
  const auto max_version = static_cast<std::int64_t>(caffe2::serialize::kMaxSupportedFileFormatVersion);
  if (info->file_format_version && *info->file_format_version > max_version) {
    fail(ErrorCode::kUnsupportedFormat,
         "'" + path + "' was saved by a newer PyTorch (file format " + std::to_string(*info->file_format_version) +
             "); EdgeOpt's LibTorch 1.13 reads up to " + std::to_string(max_version),
         "export ONNX instead: torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\", "
         "opset_version=13), and import model.onnx");
  }

  // 2. Load and inline.
  tj::Module module;
  try {
    module = tj::load(path, c10::Device(c10::kCPU));
  } catch (const c10::Error& e) {
    fail(ErrorCode::kCorruptFile,
         "LibTorch cannot load '" + path + "' as TorchScript: " + first_line(e.what_without_backtrace()),
         std::string("save it again with torch.jit.save(torch.jit.script(model.eval()), \"model.pt\"), or ") +
             kOnnxHint);
  } catch (const std::exception& e) {  // the TorchScript compiler's ErrorReport on damaged code
    fail(ErrorCode::kCorruptFile,
         "LibTorch cannot load '" + path + "' as TorchScript: " + first_line(e.what()),
         std::string("save it again with torch.jit.save(torch.jit.script(model.eval()), \"model.pt\"), or ") +
             kOnnxHint);
  }
  module.eval();
  auto forward = module.find_method("forward");
  if (!forward) fail(ErrorCode::kUnsupportedFormat, "'" + path + "' has no forward() method", kOnnxHint);
  std::shared_ptr<tj::Graph> program = forward->graph()->copy();
  tj::Inline(*program);
  tj::EliminateDeadCode(program);
  const std::size_t tensor_inputs = program->inputs().size() - 1;
  if (tensor_inputs != 1) {
    fail(ErrorCode::kUnsupportedOp,
         "'" + path + "': forward() takes " + std::to_string(tensor_inputs) +
             " inputs; EdgeOpt models take one image tensor",
         kOnnxHint);
  }
  std::string input_name = program->inputs()[1]->debugName();
  if (const auto dot = input_name.find('.'); dot != std::string::npos && dot > 0) input_name.resize(dot);

  // 3. Which input shape to lower for.
  std::vector<Candidate> candidates;
  if (!hint.empty()) {
    if (Status s = check_shape(hint, "--input-shape"); !s) throw Failure{s.error()};
    candidates.push_back({with_symbolic_batch(hint), "given", false});
  } else if (info->edgeopt_json) {
    Result<std::vector<std::int64_t>> shape = torchscript::parse_edgeopt_extra(*info->edgeopt_json, path);
    if (!shape) throw Failure{shape.error()};
    if (Status s = check_shape(shape.value(), "extra/edgeopt.json"); !s) throw Failure{s.error()};
    candidates.push_back({with_symbolic_batch(shape.value()), "from extra/edgeopt.json", false});
  } else if (auto type = program->inputs()[1]->type()->cast<c10::TensorType>();
             type && type->sizes().concrete_sizes() && type->sizes().concrete_sizes()->size() >= 2) {
    candidates.push_back({with_symbolic_batch(*type->sizes().concrete_sizes()), "from the graph's input type", false});
  } else {
    candidates = guessed_shapes(module);
  }
  if (candidates.empty()) {
    fail(ErrorCode::kInvalidArgument, "'" + path + "' does not say its input shape and has no weights to guess it from",
         "pass --input-shape N,C,H,W, or save with torch.jit.save(m, path, _extra_files={\"edgeopt.json\": "
         "'{\"input_shape\": [1, 3, 224, 224]}'})");
  }

  // 4. Lower; a guessed shape the model rejects moves on to the next guess.
  std::string tried;
  std::optional<Error> last_rejection;
  for (const Candidate& candidate : candidates) {
    ir::Graph graph;
    graph.name = std::filesystem::path(path).stem().string();
    try {
      torch::NoGradGuard no_grad;
      Lowerer(graph, "'" + path + "'").run(*program, module._ivalue(), candidate.shape, input_name);
    } catch (const ShapeRejected& rejected) {
      if (!candidate.guessed) throw Failure{rejected.error};
      tried += (tried.empty() ? "" : ", ") + ir::shape_to_string(candidate.shape);
      last_rejection = rejected.error;
      continue;
    }
    graph.infer_shapes();
    graph.simplify();
    // Two things make the IR's constants differ from what PyTorch counts as the model's
    // parameters, and neither can be avoided: numbers in the code (x * 0.5) become one-element IR
    // constants, and parameters forward() never reads have no IR constant. The source's count wins.
    const std::int64_t source_params = torch_param_count(module);
    graph.extra_source_params = source_params - graph.param_count();
    graph.producer = "pytorch 1.13 (torchscript)";
    if (candidate.guessed) {
      graph.producer += "; input shape assumed " + ir::shape_to_string(candidate.shape) +
                        " (pass --input-shape if the model expects another)";
    } else if (candidate.origin != "given") {
      graph.producer += "; input shape " + candidate.origin;
    }
    if (Status s = ir::verify(graph); !s) throw Failure{s.error()};
    return graph;
  }
  Error error = last_rejection.value_or(Error{ErrorCode::kShapeMismatch, ""});
  fail(ErrorCode::kShapeMismatch,
       "'" + path + "' does not record its input shape and none of the usual ones fit (tried " + tried +
           "); the last said: " + error.message,
       "pass --input-shape N,C,H,W, or save with torch.jit.save(m, path, _extra_files={\"edgeopt.json\": "
       "'{\"input_shape\": [1, 3, 224, 224]}'})");
}

}  // namespace

Result<ir::Graph> import_torchscript(const std::string& path, const std::vector<std::int64_t>& input_shape_hint) {
  return capture([&]() -> ir::Graph {
    try {
      return import_checked(path, input_shape_hint);
    } catch (const ShapeRejected& rejected) {
      throw Failure{rejected.error};
    } catch (const c10::Error& e) {
      fail(ErrorCode::kCorruptFile, "LibTorch failed on '" + path + "': " + first_line(e.what_without_backtrace()),
           kOnnxHint);
    }
  });
}

}  // namespace edgeopt::backend::torch_impl
