// Runs an IR graph on LibTorch, for inference (batched, no autograd) and for training (autograd).
// No torch header leaks out of this folder: callers see plain floats and IR types, and LibTorch
// itself is loaded only when a command first needs it (its start-up costs ~0.3 s).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "common/error.h"
#include "ir/graph.h"

namespace edgeopt::backend {

// Process-wide settings: LibTorch's intra-op thread pool (0 = all cores) and RNG seed.
void set_threads(int threads);
int thread_count();
void set_seed(std::uint64_t seed);

// Runs one graph. Made by the LibTorch plugin (see backend_api.h), which is loaded on first use.
class Executor {
 public:
  // Copies the graph's constants into tensors; the graph must have passed ir::verify().
  static Result<std::unique_ptr<Executor>> create(const ir::Graph& graph);
  virtual ~Executor() = default;

  // `batch` samples laid out as the graph's first input (its own layout, e.g. NHWC for Keras),
  // float32, contiguous. Returns batch × output_elements() values of the first output.
  virtual Result<std::vector<float>> run(const float* data, std::int64_t batch) = 0;
  // Runs like run() and returns the listed values (any node output, or the input) as float,
  // batch × their per-sample elements each: activation statistics for quantization calibration.
  virtual Result<std::vector<std::vector<float>>> run_values(const float* data, std::int64_t batch,
                                                             const std::vector<int>& value_ids) = 0;
  virtual std::int64_t input_elements() const = 0;   // per sample
  virtual std::int64_t output_elements() const = 0;  // per sample
};

struct TrainOptions {
  int epochs = 1;
  std::int64_t batch_size = 64;
  float learning_rate = 1e-3F;
  float weight_decay = 0.0F;
  std::uint64_t seed = 42;
  // Learning rate over all steps: constant; cosine decay to zero; or step (x0.1 at 50 % and 75 %).
  enum class Schedule : std::uint8_t { kConstant, kCosine, kStep };
  Schedule schedule = Schedule::kConstant;
  // Augmentation of NCHW image inputs, drawn per sample from the seeded RNG: a random horizontal
  // flip, and a random crop of the image zero-padded by `crop_padding` pixels (0: no crop).
  bool random_flip = false;
  int crop_padding = 0;
  // Sparsity masks kept through training, by constant value id (1 keeps a weight, 0 prunes it):
  // re-applied after every optimizer step, so pruned weights stay exactly zero.
  std::map<int, std::vector<float>> masks;
  // Knowledge distillation: when set, the teacher graph runs (frozen, inference mode) on the same
  // augmented batch and the loss becomes
  //   alpha · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − alpha) · cross-entropy.
  // The teacher must take the same input and give as many logits as the student.
  const ir::Graph* teacher = nullptr;
  float distill_temperature = 4.0F;
  float distill_alpha = 0.7F;
  // Quantization-aware training (int8, straight-through gradients). Weights listed by constant
  // value id are fake-quantized per output channel (axis 0), symmetric, with scales recomputed from
  // the current weights every step; activations listed by value id use the fixed per-tensor
  // scale/zero point given (uint8 range 0..255).
  std::vector<int> fake_quant_weights;
  std::map<int, ir::QuantParams> fake_quant_activations;
  // Called after every batch with (step, total_steps, loss); return false to stop early.
  std::function<bool(std::int64_t, std::int64_t, float)> on_step;
};

struct TrainReport {
  std::int64_t steps = 0;
  float first_loss = 0.0F;
  float last_loss = 0.0F;
  bool stopped_early = false;
};

// Trains the graph's float constants of Conv/Gemm/MatMul/BatchNorm/Add/Mul nodes with Adam on
// cross-entropy over the first output's logits (a trailing Softmax/LogSoftmax is skipped during
// training), BatchNorm in training mode. The trained weights and running statistics are written
// back into `graph`. `inputs` holds `count` samples in the input's own layout.
Result<TrainReport> train(ir::Graph& graph, const float* inputs, const std::int32_t* labels,
                          std::int64_t count, const TrainOptions& options);

}  // namespace edgeopt::backend
