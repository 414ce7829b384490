// Dependency-aware channel surgery on the IR (no LibTorch): removes output channels of Conv and
// hidden Gemm layers and everything that depends on them, giving a smaller dense graph that runs
// on any backend.
//
// The analysis follows every activation's channel axis (axis 1) from the layer that produces it
// to every layer that reads it:
//   - Conv (group 1) / Gemm with constant weights produce a new set of channels (a "group"); the
//     weight rows and bias of the producer, and the weight input columns of every consumer, follow;
//   - BatchNorm (its 4 vectors), activations, pools, Pad/Slice/Transpose/Squeeze/Unsqueeze/Reshape
//     that leave axis 1 alone, and depthwise Convs (group = channels) pass channels through;
//   - Flatten (or a flattening Reshape) maps each channel to H*W consecutive features of the next
//     Gemm's input; Concat on axis 1 places its inputs' channels at offsets;
//   - Add/Sub/Mul/Div of two activations tie their channels together: producers feeding the same
//     residual Add form one group, which keeps one set of channels;
//   - channels that reach a graph output (the classifier's logits) or a layer the surgery does not
//     understand (e.g. MatMul, a grouped Conv, a Softmax over channels) are never pruned: their
//     group is reported with the reason instead.
// The module is shared: prune_structured picks channels by importance and fine-tunes; distillation
// derives a narrower student with shrink().
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::techniques::surgery {

// How a channel's importance is scored (per group; higher = more important).
enum class Importance : std::uint8_t {
  kL1,          // L1 norm of the producer's filter (weight row)
  kBnScaledL1,  // that, times |gamma| / sqrt(var + eps) of a BatchNorm reading the producer directly
};

// One set of channels that must be kept or removed together: the outputs of one Conv/Gemm, or of
// several whose outputs meet in the same elementwise Add (residual connections).
struct ChannelGroup {
  std::vector<std::string> layers;  // the Conv/Gemm nodes producing these channels, in graph order
  std::int64_t channels = 0;
  bool prunable = true;
  std::string reason;               // why not, when !prunable
  // Per channel, summed over the group's producers, each producer's scores divided by their mean
  // (so layers of different scales weigh alike): comparable across groups, mean ~ layers.size().
  std::vector<double> importance;
};

struct ChannelPlan {
  std::vector<ChannelGroup> groups;  // every Conv/Gemm-produced group, prunable or not, in graph order
  bool any_prunable() const;
};

// Analyses `graph` (which must have passed ir::verify()). Never throws; an error means the graph
// itself is malformed.
Result<ChannelPlan> analyze(const ir::Graph& graph, Importance importance = Importance::kL1);

// Removes channels. `keep` is aligned with analyze(graph).groups: for each group, the channel
// indices to keep (any order, no duplicates, at least one); an empty entry (or a missing one at the
// end) keeps the whole group. Asking to narrow a group that is not prunable is an error naming the
// layer and the reason. The result has passed ir::verify().
Result<ir::Graph> remove_channels(const ir::Graph& graph, const std::vector<std::vector<std::int64_t>>& keep);

// The same, keyed by the producing layer's node name. Layers of one group must be given the same
// channels (or only one of them given); unknown names are an error.
Result<ir::Graph> remove_channels(const ir::Graph& graph, const std::map<std::string, std::vector<std::int64_t>>& keep_by_layer);

// The indices of the `count` highest scores, ascending (ties: the lower index).
std::vector<std::int64_t> most_important(const std::vector<double>& importance, std::int64_t count);

// Every prunable group keeps max(1, round(keep_ratio * channels)) of its most important channels.
// Fails naming the layers and reasons when nothing in the graph can be pruned.
Result<ir::Graph> shrink(const ir::Graph& graph, double keep_ratio, Importance importance = Importance::kL1);

// Multiply-accumulates of one sample, summed over the graph's nodes (ir::node_cost).
std::int64_t total_macs(const ir::Graph& graph);

// "conv1 + conv3" style label of a group, for notes and messages.
std::string group_label(const ChannelGroup& group);

}  // namespace edgeopt::techniques::surgery
