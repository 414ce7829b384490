// Classifies an image file with the packaged .onnx model through ONNX Runtime's C API, the C++
// twin of example_onnx.py (same preprocessing, same output: the five most likely classes).
//
//   ./example_onnx IMAGE [MODEL.onnx]
//
// Build (see README.md, "C++ example"): the header onnxruntime_c_api.h must be the one of the
// ONNX Runtime version the library comes from, or an older one (ORT_API_VERSION <= the library's).
//   mkdir -p lib && ln -sf "$(ls "$ORT_LIB"/libonnxruntime.so.1.*)" lib/libonnxruntime.so.1
//   g++ -O2 -std=c++17 -I"$ORT_INCLUDE" cpp/example_onnx.cpp -o example_onnx lib/libonnxruntime.so.1 -Wl,-rpath,'$ORIGIN/lib'
// Images: PNG, JPEG, BMP, ... through stb_image (Debian: apt install libstb-dev).
// The preprocessing EdgeOpt measured the model with is read from cpp/preprocessing.txt.
#include <onnxruntime_c_api.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Preprocessing {
  std::string model;
  int height = 0, width = 0, channels = 0;
  std::string layout;  // NCHW, NHWC or NC
  float scale = 1.0F;
  std::vector<float> mean, std;
  std::vector<std::string> classes;
};

// The folder of this program's package: the directory holding cpp/preprocessing.txt.
std::string package_dir(const char* argv0) {
  for (const std::string dir : {std::string("."), std::string(".."), std::string(argv0).substr(0, std::string(argv0).find_last_of('/') + 1) + "."}) {
    if (std::ifstream(dir + "/cpp/preprocessing.txt")) return dir;
  }
  throw std::runtime_error("cpp/preprocessing.txt not found: run this program from the unzipped package's folder");
}

Preprocessing read_preprocessing(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  Preprocessing p;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.find(' ');
    const std::string key = line.substr(0, space);
    const std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    std::istringstream v(value);
    if (key == "model") p.model = value;
    else if (key == "height") v >> p.height;
    else if (key == "width") v >> p.width;
    else if (key == "channels") v >> p.channels;
    else if (key == "layout") p.layout = value;
    else if (key == "scale") v >> p.scale;
    else if (key == "mean") for (float x; v >> x;) p.mean.push_back(x);
    else if (key == "std") for (float x; v >> x;) p.std.push_back(x);
    else if (key == "class") p.classes.push_back(value);
  }
  if (p.height <= 0 || p.width <= 0 || p.channels <= 0 || p.layout.empty()) throw std::runtime_error(path + " lacks the input size or layout");
  return p;
}

// uint8 image -> float32 in the model's layout, as edgeopt_image.preprocess does: grey from RGB by
// (77 R + 150 G + 29 B) >> 8, nearest-neighbour resize, x * scale, then (x - mean) / std.
std::vector<float> preprocess(const std::string& image_path, const Preprocessing& p) {
  int w = 0, h = 0, n = 0;
  unsigned char* raw = stbi_load(image_path.c_str(), &w, &h, &n, 0);
  if (!raw) throw std::runtime_error(image_path + ": cannot decode the image (" + stbi_failure_reason() + ")");
  std::unique_ptr<unsigned char, void (*)(void*)> pixels(raw, stbi_image_free);
  const int have = n == 2 ? 1 : (n == 4 ? 3 : n);  // grey+alpha -> grey, RGBA -> RGB
  auto at = [&](int y, int x, int c) { return static_cast<int>(pixels.get()[(static_cast<std::size_t>(y) * w + x) * n + c]); };
  const int H = p.height, W = p.width, C = p.channels;
  std::vector<float> hwc(static_cast<std::size_t>(H) * W * C);
  for (int y = 0; y < H; ++y) {
    const int sy = static_cast<int>(static_cast<double>(y) * h / H);
    for (int x = 0; x < W; ++x) {
      const int sx = static_cast<int>(static_cast<double>(x) * w / W);
      for (int c = 0; c < C; ++c) {
        int v;
        if (have == C) v = at(sy, sx, c);
        else if (C == 1) v = (at(sy, sx, 0) * 77 + at(sy, sx, 1) * 150 + at(sy, sx, 2) * 29) >> 8;
        else v = at(sy, sx, 0);  // grey image, colour model: repeat the channel
        float f = static_cast<float>(v) * p.scale;
        if (!p.mean.empty()) f = (f - p.mean[c % p.mean.size()]) / p.std[c % p.std.size()];
        hwc[(static_cast<std::size_t>(y) * W + x) * C + c] = f;
      }
    }
  }
  if (p.layout != "NCHW") return hwc;  // NHWC, or NC (the same order, flattened)
  std::vector<float> chw(hwc.size());
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < H * W; ++i) chw[static_cast<std::size_t>(c) * H * W + i] = hwc[static_cast<std::size_t>(i) * C + c];
  return chw;
}

const OrtApi* api = nullptr;

void check(OrtStatus* status, const char* what) {
  if (!status) return;
  const std::string message = api->GetErrorMessage(status);
  api->ReleaseStatus(status);
  throw std::runtime_error(std::string(what) + ": " + message);
}

int run(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s IMAGE [MODEL.onnx]\n", argv[0]);
    return 2;
  }
  const std::string dir = package_dir(argv[0]);
  const Preprocessing p = read_preprocessing(dir + "/cpp/preprocessing.txt");
  const std::string model = argc == 3 ? std::string(argv[2]) : dir + "/" + p.model;
  std::vector<float> input = preprocess(argv[1], p);

  api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (!api) {
    std::fprintf(stderr, "this ONNX Runtime library is older than the header (API version %d; library %s): build with the header of its version\n",
                 ORT_API_VERSION, OrtGetApiBase()->GetVersionString());
    return 1;
  }
  OrtEnv* env = nullptr;
  check(api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "edgeopt-example", &env), "creating the environment");
  OrtSessionOptions* options = nullptr;
  check(api->CreateSessionOptions(&options), "session options");
  OrtSession* session = nullptr;
  check(api->CreateSession(env, model.c_str(), options, &session), ("loading " + model).c_str());
  OrtAllocator* allocator = nullptr;
  check(api->GetAllocatorWithDefaultOptions(&allocator), "allocator");
  char* input_name = nullptr;
  char* output_name = nullptr;
  check(api->SessionGetInputName(session, 0, allocator, &input_name), "input name");
  check(api->SessionGetOutputName(session, 0, allocator, &output_name), "output name");

  // The model's own input shape (a dynamic batch becomes 1); its size must match the image's.
  OrtTypeInfo* type_info = nullptr;
  check(api->SessionGetInputTypeInfo(session, 0, &type_info), "input type");
  const OrtTensorTypeAndShapeInfo* tensor_info = nullptr;
  check(api->CastTypeInfoToTensorInfo(type_info, &tensor_info), "input type");
  size_t rank = 0;
  check(api->GetDimensionsCount(tensor_info, &rank), "input rank");
  std::vector<int64_t> shape(rank);
  check(api->GetDimensions(tensor_info, shape.data(), rank), "input shape");
  api->ReleaseTypeInfo(type_info);
  for (int64_t& d : shape) d = d < 0 ? 1 : d;
  const int64_t elements = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
  if (elements != static_cast<int64_t>(input.size())) {
    throw std::runtime_error("the model takes " + std::to_string(elements) + " values, the preprocessing gives " + std::to_string(input.size()));
  }

  OrtMemoryInfo* memory = nullptr;
  check(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory), "memory info");
  OrtValue* in = nullptr;
  check(api->CreateTensorWithDataAsOrtValue(memory, input.data(), input.size() * sizeof(float), shape.data(), shape.size(),
                                            ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in),
        "input tensor");
  OrtValue* out = nullptr;
  const char* input_names[] = {input_name};
  const char* output_names[] = {output_name};
  check(api->Run(session, nullptr, input_names, &in, 1, output_names, 1, &out), "running the model");
  float* scores = nullptr;
  check(api->GetTensorMutableData(out, reinterpret_cast<void**>(&scores)), "output");
  OrtTensorTypeAndShapeInfo* out_info = nullptr;
  check(api->GetTensorTypeAndShape(out, &out_info), "output shape");
  size_t count = 0;
  check(api->GetTensorShapeElementCount(out_info, &count), "output size");
  api->ReleaseTensorTypeAndShapeInfo(out_info);

  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t{0});
  const size_t top = std::min<size_t>(5, count);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  for (size_t k = 0; k < top; ++k) {
    const size_t i = order[k];
    const std::string label = i < p.classes.size() ? p.classes[i] : std::to_string(i);
    std::printf("%s\t%.4f\n", label.c_str(), static_cast<double>(scores[i]));
  }

  api->ReleaseValue(out);
  api->ReleaseValue(in);
  api->ReleaseMemoryInfo(memory);
  check(api->AllocatorFree(allocator, input_name), "free");
  check(api->AllocatorFree(allocator, output_name), "free");
  api->ReleaseSession(session);
  api->ReleaseSessionOptions(options);
  api->ReleaseEnv(env);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
