// The EdgeOpt graph IR: typed values, constants and nodes from one op catalogue (ops.h).
// Image tensors are NCHW inside the IR; an input records the layout the source model used.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/ops.h"

namespace edgeopt::ir {

enum class DType : std::uint8_t { kF32, kF16, kI8, kU8, kI4Packed, kI64 };
const char* dtype_name(DType dtype);

// Dimension 0 may be the symbolic batch; every other dimension is known.
inline constexpr std::int64_t kBatch = -1;
using Shape = std::vector<std::int64_t>;

// Elements per sample: the product of all dimensions, the symbolic batch counted as 1.
std::int64_t sample_elements(const Shape& shape);
std::string shape_to_string(const Shape& shape);

enum class Layout : std::uint8_t { kUnknown, kNCHW, kNHWC, kNC };
const char* layout_name(Layout layout);

// Affine quantization parameters: real = scale * (q - zero_point), per tensor or per axis/group.
struct QuantParams {
  std::vector<float> scales;
  std::vector<std::int32_t> zero_points;
  int axis = -1;       // -1: per tensor
  int group_size = 0;  // 0: no grouping
};

struct Value {
  std::string name;
  Shape shape;
  DType dtype = DType::kF32;
  Layout layout = Layout::kUnknown;  // set on graph inputs and outputs
  std::optional<QuantParams> quant;
  bool is_constant = false;
  std::vector<float> f32;           // constant data when dtype is kF32
  std::vector<std::int64_t> i64;    // constant data when dtype is kI64
};

struct Node {
  OpKind op = OpKind::kIdentity;
  std::string name;       // the source framework's node or layer name
  std::string source_op;  // the source framework's op or layer type, for messages
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids
  Attrs attrs;
};

class Graph {
 public:
  std::string name;
  std::string producer;  // e.g. "pytorch 1.10", "keras 2.3.1"
  std::vector<Value> values;
  std::vector<Node> nodes;  // topologically ordered
  std::vector<int> inputs;
  std::vector<int> outputs;
  // What the source framework counts as stored weights, when it differs from the IR constants
  // (e.g. a Keras Normalization layer's sample count). Added to param_count().
  std::int64_t extra_source_params = 0;

  int add_value(Value value);
  int add_input(const std::string& value_name, Shape shape, Layout layout);
  int add_constant(const std::string& value_name, Shape shape, std::vector<float> data);
  int add_int_constant(const std::string& value_name, std::vector<std::int64_t> data);
  // Appends a node with one fresh output named `output_name`; returns the output's id.
  int add_node(OpKind op, const std::string& node_name, std::vector<int> node_inputs,
               Attrs attrs = {}, const std::string& output_name = {}, const std::string& source_op = {});

  std::optional<int> find(const std::string& value_name) const;
  Value& value(int id) { return values.at(static_cast<std::size_t>(id)); }
  const Value& value(int id) const { return values.at(static_cast<std::size_t>(id)); }

  // Fills every node output's shape from its inputs. Throws Failure naming the node on mismatch.
  void infer_shapes();
  // Removes Identity nodes and nodes whose outputs nothing uses; drops unused constants.
  void simplify();
  std::int64_t param_count() const;

 private:
  std::string unique_name(const std::string& wanted);
  std::map<std::string, int> by_name_;
};

// How many times each value is read: as a node input, or as a graph output (counted once each).
std::vector<int> consumer_counts(const Graph& graph);

}  // namespace edgeopt::ir
