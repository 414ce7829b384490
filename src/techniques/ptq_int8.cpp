#include "techniques/ptq_int8.h"

#include <sstream>

#include "ir/text.h"
#include "techniques/int8.h"

namespace edgeopt::techniques {

namespace int8 {

Result<Output> quantize_static(const ir::Graph& graph, const Context& context, std::int64_t calibration_images, bool sparse,
                               double progress_begin, double progress_end) {
  return capture([&]() -> Output {
    if (!context.train || context.train->count == 0) {
      fail(ErrorCode::kInvalidArgument, "int8 calibration reads training images, and the training split is empty");
    }
    Output out;
    out.graph = graph;
    out.precision = "int8";
    const int folded = fold_batchnorm(out.graph);
    const WeightReport weights = quantize_weights(out.graph, out.encoding, sparse);
    if (weights.weight_ids.empty()) {
      fail(ErrorCode::kUnsupportedOp, "the model has no Conv or Gemm layer with stored weights to quantize",
           "int8 quantization needs convolution or dense layers");
    }
    if (Status s = ir::verify(out.graph); !s) throw Failure{s.error()};
    const data::ImageSet calibration = pipeline::strided_subset(*context.train, std::min(calibration_images, context.train->count));
    auto cal = calibrate(out.graph, calibration, context, progress_begin, progress_end);
    if (!cal) throw Failure{cal.error()};
    apply_activations(out.graph, cal->activations);
    std::ostringstream s;
    s << folded << " BatchNorm layer(s) folded; " << weights.weight_ids.size()
      << " Conv/Gemm weight(s) stored as per-channel symmetric int8" << (sparse ? " (sparse: bitmask + non-zero int8 codes)" : "")
      << "; " << cal->activations.size() << " activation(s) calibrated per tensor (uint8) on " << calibration.count
      << " training images; chosen ranges: " << range_method_name(cal->method);
    out.notes.push_back(s.str());
    for (const std::string& n : cal->notes) out.notes.push_back("calibration, " + n);
    for (const std::string& l : weights.float_layers) out.notes.push_back("left in float: " + l);
    out.notes.push_back("runs on LibTorch's int8 kernels (oneDNN on x86, QNNPACK on ARM); ops without an int8 kernel run in float between them, and the logits are computed in float from int8 inputs and weights");
    return out;
  });
}

}  // namespace int8

Result<Output> PtqInt8::run(const Context& context) const {
  return int8::quantize_static(*context.baseline, context, options_.calibration_images, false, 0.0, 1.0);
}

std::vector<ParamField<PtqInt8Options>> PtqInt8::fields() {
  return {field<PtqInt8Options>("calibration_images", [](PtqInt8Options& o) -> auto& { return o.calibration_images; },
                                "training images the activation ranges are calibrated on", 1, 1e7)};
}

WorkEstimate PtqInt8::estimate_work(std::int64_t train_images) const {
  // A float pass to collect ranges, then each of the three range methods scored with int8 kernels.
  return {4.0 * static_cast<double>(std::min(options_.calibration_images, train_images))};
}

}  // namespace edgeopt::techniques
