// Inside the ONNX importer: constant tensors (decoded initializers and folded values), node
// attributes, and the small evaluator that folds shape arithmetic at import time.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace edgeopt::onnx_import::detail {

// Where a folded integer came from. PyTorch's `x.view(x.size(0), -1)` reads the batch size at
// run time; the IR keeps the batch symbolic, so such values must be recognised, not baked in.
enum class Origin : std::uint8_t { kPlain, kBatch, kFromBatch };

struct ConstTensor {
  bool is_float = true;  // f32 data in `f`, otherwise int64 data in `i`
  std::vector<std::int64_t> dims;
  std::vector<float> f;
  std::vector<std::int64_t> i;
  std::vector<Origin> origin;  // per element of `i`; empty when every element is plain
  int data_type = 0;           // the ONNX element type it was decoded from (0: computed here)

  std::size_t size() const { return is_float ? f.size() : i.size(); }
  Origin origin_at(std::size_t k) const { return k < origin.size() ? origin[k] : Origin::kPlain; }
  bool depends_on_batch() const;
};

// Bounds that keep every later shape product inside int64 on hostile files.
inline constexpr std::int64_t kMaxDim = std::int64_t{1} << 40;
inline constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;
// Folded tensors are small shape vectors in practice; this caps memory on hostile files.
inline constexpr std::int64_t kMaxFoldedElements = std::int64_t{1} << 22;

// Product of dims, failing with kCorruptFile (naming `what`) on negatives or beyond `limit`.
std::int64_t checked_count(const std::vector<std::int64_t>& dims, std::int64_t limit, const std::string& what);

// Decodes an initializer or Constant value to f32 (float, double, float16, bfloat16) or int64.
ConstTensor decode_tensor(const onnx::TensorProto& proto, const std::string& where);

// "node 'Conv_0' (Conv)"; falls back to the first output's name for unnamed nodes.
std::string describe(const onnx::NodeProto& node);
std::string node_name(const onnx::NodeProto& node);

const onnx::AttributeProto* find_attr(const onnx::NodeProto& node, std::string_view name);
std::int64_t attr_int(const onnx::NodeProto& node, std::string_view name, std::int64_t fallback);
float attr_float(const onnx::NodeProto& node, std::string_view name, float fallback);
std::string attr_string(const onnx::NodeProto& node, std::string_view name, const std::string& fallback);
std::vector<std::int64_t> attr_ints(const onnx::NodeProto& node, std::string_view name);
std::vector<float> attr_floats(const onnx::NodeProto& node, std::string_view name);

// Integer contents of a constant used as shape, axes or pads; fails if it is float.
std::vector<std::int64_t> int_values(const ConstTensor& t, const std::string& what);

// Ops the evaluator computes when all their inputs are constant.
bool is_foldable(std::string_view op_type);
// Shape: the dims of a tensor as int64, dim 0 tagged as the batch when `batched`; honours start/end.
ConstTensor fold_shape(const onnx::NodeProto& node, const std::vector<std::int64_t>& dims, bool batched);
// Evaluates a foldable node on constant inputs (nullptr for omitted optional inputs).
ConstTensor fold_node(const onnx::NodeProto& node, const std::vector<const ConstTensor*>& inputs);

}  // namespace edgeopt::onnx_import::detail
