#include "pipeline/preprocess.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace edgeopt::pipeline {
namespace {

std::vector<float> parse_floats(const std::string& text, const std::string& what) {
  std::vector<float> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    try {
      std::size_t used = 0;
      out.push_back(std::stof(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail(ErrorCode::kInvalidArgument, "--normalize: '" + item + "' in " + what + " is not a number");
    }
  }
  if (out.empty()) fail(ErrorCode::kInvalidArgument, "--normalize: " + what + " has no values");
  return out;
}

float channel_value(const std::vector<float>& v, std::int64_t c) {
  return v.size() == 1 ? v[0] : v[static_cast<std::size_t>(c)];
}

}  // namespace

Result<InputSpec> input_spec(const ir::Graph& graph) {
  return capture([&]() -> InputSpec {
    if (graph.inputs.empty()) fail(ErrorCode::kCorruptFile, "the model has no input");
    const ir::Value& in = graph.value(graph.inputs[0]);
    const ir::Shape& s = in.shape;
    InputSpec spec;
    if (s.size() == 4) {
      spec.layout = in.layout == ir::Layout::kNHWC ? ir::Layout::kNHWC : ir::Layout::kNCHW;
      const bool nhwc = spec.layout == ir::Layout::kNHWC;
      spec.channels = nhwc ? s[3] : s[1];
      spec.height = nhwc ? s[1] : s[2];
      spec.width = nhwc ? s[2] : s[3];
    } else if (s.size() == 3) {  // [N, H, W]: a grayscale image without a channel axis
      spec.layout = ir::Layout::kNHWC;
      spec.channels = 1;
      spec.height = s[1];
      spec.width = s[2];
    } else if (s.size() == 2) {  // [N, features]: a flattened image, decided against the data
      spec.layout = ir::Layout::kNC;
      spec.channels = 0;
      spec.height = s[1];
      spec.width = 1;
    } else {
      fail(ErrorCode::kUnsupportedFormat, "the model's input '" + in.name + "' has shape " + ir::shape_to_string(s) + "; EdgeOpt feeds images (rank 2, 3 or 4)");
    }
    if (spec.channels != 0 && spec.channels != 1 && spec.channels != 3) {
      fail(ErrorCode::kUnsupportedFormat, "the model's input has " + std::to_string(spec.channels) + " channels; image datasets give 1 or 3");
    }
    // The declared size decides every buffer that follows (resized datasets, batches): checked
    // here, before any of them exists, against the largest image the dataset readers accept.
    constexpr std::int64_t kMaxSide = 4096, kMaxFeatures = kMaxSide * kMaxSide * 3;
    const bool flat = spec.layout == ir::Layout::kNC;
    // (A size of -1 is one the model leaves open; the dataset's own size is used then.)
    if ((!flat && (spec.height > kMaxSide || spec.width > kMaxSide)) || (flat && spec.height > kMaxFeatures)) {
      fail(ErrorCode::kUnsupportedFormat,
           "the model's input '" + in.name + "' declares shape " + ir::shape_to_string(s) + "; EdgeOpt feeds images of 1 to " +
               std::to_string(kMaxSide) + " pixels per side",
           "export the model with its real input size (e.g. 1x3x224x224)");
    }
    return spec;
  });
}

std::string Normalization::describe() const {
  std::ostringstream s;
  s << name << ": x";
  if (scale != 1.0F) s << "/255";
  auto list = [](const std::vector<float>& v) {
    std::ostringstream o;
    for (std::size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    return o.str();
  };
  if (!mean.empty()) s << ", minus mean [" << list(mean) << "], divided by std [" << list(std) << "]";
  return s.str();
}

std::vector<Normalization> normalization_presets() {
  return {
      {"unit", 1.0F / 255.0F, {}, {}},
      {"symmetric", 1.0F / 255.0F, {0.5F}, {0.5F}},
      {"raw", 1.0F, {}, {}},
      {"mnist", 1.0F / 255.0F, {0.1307F}, {0.3081F}},
      {"fashion-mnist", 1.0F / 255.0F, {0.2860F}, {0.3530F}},
      {"cifar10", 1.0F / 255.0F, {0.4914F, 0.4822F, 0.4465F}, {0.2470F, 0.2435F, 0.2616F}},
      {"imagenet", 1.0F / 255.0F, {0.485F, 0.456F, 0.406F}, {0.229F, 0.224F, 0.225F}},
  };
}

Result<Normalization> parse_normalization(const std::string& text) {
  return capture([&]() -> Normalization {
    for (const Normalization& n : normalization_presets()) {
      if (n.name == text) return n;
    }
    if (text.rfind("mean=", 0) == 0) {
      const auto sep = text.find(";std=");
      if (sep == std::string::npos) fail(ErrorCode::kInvalidArgument, "--normalize: expected mean=...;std=..., got '" + text + "'");
      Normalization n{"custom", 1.0F / 255.0F, parse_floats(text.substr(5, sep - 5), "mean"), parse_floats(text.substr(sep + 5), "std")};
      if (n.mean.size() != n.std.size()) fail(ErrorCode::kInvalidArgument, "--normalize: mean and std have different lengths");
      for (float v : n.std) {
        if (!(v > 0.0F)) fail(ErrorCode::kInvalidArgument, "--normalize: std values must be positive");
      }
      return n;
    }
    std::string names;
    for (const Normalization& n : normalization_presets()) names += n.name + ", ";
    fail(ErrorCode::kInvalidArgument, "unknown --normalize '" + text + "'",
         "use auto, " + names + "or mean=a,b,c;std=d,e,f (on the [0,1] scale)");
  });
}

data::ImageSet strided_subset(const data::ImageSet& images, std::int64_t count) {
  count = std::clamp<std::int64_t>(count, 0, images.count);
  data::ImageSet subset;
  subset.count = count;
  subset.height = images.height;
  subset.width = images.width;
  subset.channels = images.channels;
  const std::int64_t per = images.height * images.width * images.channels;
  subset.pixels.reserve(static_cast<std::size_t>(count * per));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t src = i * images.count / count;
    subset.pixels.insert(subset.pixels.end(), images.pixels.begin() + src * per, images.pixels.begin() + (src + 1) * per);
    subset.labels.push_back(images.labels[static_cast<std::size_t>(src)]);
  }
  return subset;
}

std::vector<std::string> conversion_notes(const data::ImageSet& images, const InputSpec& spec) {
  std::vector<std::string> notes;
  if (spec.layout == ir::Layout::kNC) return notes;
  if (images.channels != spec.channels) {
    notes.push_back(images.channels == 1 ? "grayscale images replicated to 3 channels for the model"
                                         : "colour images converted to grayscale (luminance) for the model");
  }
  if (images.height != spec.height || images.width != spec.width) {
    notes.push_back("images resized from " + std::to_string(images.height) + "x" + std::to_string(images.width) + " to " +
                    std::to_string(spec.height) + "x" + std::to_string(spec.width) + " (bilinear)");
  }
  return notes;
}

void prepare_batch(const data::ImageSet& images, std::int64_t begin, std::int64_t end, const InputSpec& spec,
                   const Normalization& norm, std::vector<float>& out) {
  const std::int64_t ih = images.height;
  const std::int64_t iw = images.width;
  const std::int64_t ic = images.channels;
  const bool flat = spec.layout == ir::Layout::kNC;
  const std::int64_t oc = flat ? ic : spec.channels;
  const std::int64_t oh = flat ? ih : spec.height;
  const std::int64_t ow = flat ? iw : spec.width;
  const std::int64_t per = oc * oh * ow;
  out.resize(static_cast<std::size_t>((end - begin) * per));
  // Per-channel affine map, so the inner loop is one multiply-add.
  std::vector<float> mul(static_cast<std::size_t>(oc));
  std::vector<float> add(static_cast<std::size_t>(oc));
  for (std::int64_t c = 0; c < oc; ++c) {
    const float m = norm.mean.empty() ? 0.0F : channel_value(norm.mean, c);
    const float sd = norm.std.empty() ? 1.0F : channel_value(norm.std, c);
    mul[static_cast<std::size_t>(c)] = norm.scale / sd;
    add[static_cast<std::size_t>(c)] = -m / sd;
  }
  const bool same_size = ih == oh && iw == ow;
  for (std::int64_t i = begin; i < end; ++i) {
    const std::uint8_t* src = images.pixels.data() + static_cast<std::size_t>(i * ih * iw * ic);
    float* dst = out.data() + static_cast<std::size_t>((i - begin) * per);
    for (std::int64_t y = 0; y < oh; ++y) {
      for (std::int64_t x = 0; x < ow; ++x) {
        float rgb[3] = {0.0F, 0.0F, 0.0F};
        auto sample = [&](std::int64_t sy, std::int64_t sx, std::int64_t c) {
          return static_cast<float>(src[(sy * iw + sx) * ic + c]);
        };
        for (std::int64_t c = 0; c < ic && c < 3; ++c) {
          if (same_size) {
            rgb[c] = sample(y, x, c);
          } else {  // bilinear, pixel centres aligned (as PIL/OpenCV do)
            const float fy = std::clamp((static_cast<float>(y) + 0.5F) * static_cast<float>(ih) / static_cast<float>(oh) - 0.5F, 0.0F, static_cast<float>(ih - 1));
            const float fx = std::clamp((static_cast<float>(x) + 0.5F) * static_cast<float>(iw) / static_cast<float>(ow) - 0.5F, 0.0F, static_cast<float>(iw - 1));
            const auto y0 = static_cast<std::int64_t>(fy);
            const auto x0 = static_cast<std::int64_t>(fx);
            const std::int64_t y1 = std::min(y0 + 1, ih - 1);
            const std::int64_t x1 = std::min(x0 + 1, iw - 1);
            const float wy = fy - static_cast<float>(y0);
            const float wx = fx - static_cast<float>(x0);
            rgb[c] = (1 - wy) * ((1 - wx) * sample(y0, x0, c) + wx * sample(y0, x1, c)) +
                     wy * ((1 - wx) * sample(y1, x0, c) + wx * sample(y1, x1, c));
          }
        }
        for (std::int64_t c = 0; c < oc; ++c) {
          float v;
          if (oc == ic) v = rgb[c];
          else if (ic == 1) v = rgb[0];
          else v = 0.299F * rgb[0] + 0.587F * rgb[1] + 0.114F * rgb[2];
          v = v * mul[static_cast<std::size_t>(c)] + add[static_cast<std::size_t>(c)];
          const bool chw = spec.layout == ir::Layout::kNCHW;
          dst[chw ? (c * oh + y) * ow + x : (y * ow + x) * oc + c] = v;
        }
      }
    }
  }
}

}  // namespace edgeopt::pipeline
