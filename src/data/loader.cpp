// load_dataset: preset names (mnist, fashion-mnist, cifar10) are looked up on disk in a fixed
// order and downloaded into the cache as a last resort; anything else is a path.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/sandbox.h"
#include "data/internal.h"

namespace edgeopt::data {
namespace {

namespace fs = std::filesystem;

struct RemoteFile {
  std::string name;    // file name on the server and in the cache
  std::string digest;  // "sha256:<hex>" or "md5:<hex>", as published
  std::uint64_t size;  // published size; the download is cut off well past it
};

enum class Format { kIdx, kCifar10 };

struct Preset {
  std::string name;
  std::vector<std::string> aliases;
  Format format;
  std::vector<std::string> subdirs;  // where under a data dir the files may sit
  std::vector<std::string> system_dirs;
  std::vector<std::string> mirrors;  // base URLs, tried in order
  std::vector<RemoteFile> files;
  std::vector<std::string> class_names;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {"mnist",
       {"mnist"},
       Format::kIdx,
       {"mnist", "MNIST/raw", "MNIST"},
       {"/usr/share/datasets/mnist"},
       // The original site (yann.lecun.com) has no HTTPS; these mirrors serve the same files.
       {"https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/"},
       {{"train-images-idx3-ubyte.gz",
         "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422},
        {"train-labels-idx1-ubyte.gz",
         "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881},
        {"t10k-images-idx3-ubyte.gz",
         "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877},
        {"t10k-labels-idx1-ubyte.gz",
         "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542}},
       {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
      {"fashion-mnist",
       {"fashion-mnist", "fashion_mnist", "fashionmnist"},
       Format::kIdx,
       {"fashion-mnist", "FashionMNIST/raw", "FashionMNIST", "fashion_mnist", "fashion"},
       {"/usr/share/datasets/fashion-mnist"},
       // Zalando publishes MD5 sums only (README of zalandoresearch/fashion-mnist).
       {"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"},
       {{"train-images-idx3-ubyte.gz", "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880},
        {"train-labels-idx1-ubyte.gz", "md5:25c81989df183df01b3e8a0aad5dffbe", 29515},
        {"t10k-images-idx3-ubyte.gz", "md5:bef4ecab320f06d8554ea6380940ec79", 4422102},
        {"t10k-labels-idx1-ubyte.gz", "md5:bb300cfdad3c16e7a12a480ee83cd310", 5148}},
       {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
        "Ankle boot"}},
      {"cifar10",
       {"cifar10", "cifar-10", "cifar_10"},
       Format::kCifar10,
       {"cifar-10-batches-bin", "cifar10/cifar-10-batches-bin", "cifar10", "cifar-10"},
       {"/usr/share/datasets/cifar10", "/usr/share/datasets/cifar-10"},
       {"https://www.cs.toronto.edu/~kriz/"},
       // Published MD5 c32a1d4ab5d03f1284b67883e8d87530; we check the archive's SHA-256.
       {{"cifar-10-binary.tar.gz",
         "sha256:c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171}},
       {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}},
  };
  return all;
}

const std::vector<std::string> kCifarFiles = {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin", "test_batch.bin",
                                              "batches.meta.txt"};

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Finds "<prefix>-images-idx3-ubyte" (raw or .gz, or the "images.idx3" spelling) and its labels.
std::optional<std::pair<std::string, std::string>> find_idx_pair(const fs::path& dir,
                                                                 const std::string& prefix) {
  auto find = [&](const std::string& kind, const std::string& dims) -> std::string {
    for (const char* sep : {"-", "."})
      for (const char* ext : {"", ".gz"}) {
        fs::path p = dir / (prefix + "-" + kind + sep + dims + "-ubyte" + ext);
        if (is_file(p)) return p.string();
      }
    return {};
  };
  std::string images = find("images", "idx3"), labels = find("labels", "idx1");
  if (images.empty() || labels.empty()) return std::nullopt;
  return std::make_pair(images, labels);
}

std::vector<std::string> cifar_train_files(const fs::path& dir) {
  std::vector<std::string> files;
  for (int i = 1; i <= 5; ++i)
    if (fs::path p = dir / ("data_batch_" + std::to_string(i) + ".bin"); is_file(p))
      files.push_back(p.string());
  return files;
}

// Does dir hold the preset's files? complete: both splits (and for CIFAR all five batches).
bool holds(const Preset& preset, const fs::path& dir, bool complete) {
  if (preset.format == Format::kIdx) {
    bool train = find_idx_pair(dir, "train").has_value(), test = find_idx_pair(dir, "t10k").has_value();
    return complete ? train && test : train || test;
  }
  bool test = is_file(dir / "test_batch.bin");
  auto train = cifar_train_files(dir).size();
  return complete ? test && train == 5 : test || train > 0;
}

void note(const LoadOptions& options, const std::string& message) {
  if (options.progress) options.progress(message);
}

void finish_split(Dataset& ds, std::optional<ImageSet>& train, std::optional<ImageSet>& test,
                  const LoadOptions& options) {
  if (train && test) {
    ds.train = std::move(*train);
    ds.test = std::move(*test);
    ds.split_note = "official train/test split";
    return;
  }
  const ImageSet& only = train ? *train : *test;
  detail::stratified_split(only, options.test_fraction, options.seed, ds.train, ds.test);
  ds.split_note = detail::split_note_for(options.test_fraction, options.seed) + " of the " +
                  (train ? "training" : "test") + " files";
}

Dataset load_idx_dir(const fs::path& dir, const std::string& name,
                     std::vector<std::string> class_names, const LoadOptions& options) {
  Dataset ds;
  ds.name = name;
  ds.class_names = std::move(class_names);
  std::optional<ImageSet> train, test;
  for (const auto& [prefix, slot] : {std::pair{"train", &train}, std::pair{"t10k", &test}}) {
    auto pair = find_idx_pair(dir, prefix);
    if (!pair) continue;
    auto set = read_idx(pair->first, pair->second);
    if (!set.ok()) throw Failure{set.error()};
    *slot = std::move(set).value();
    ds.source += (ds.source.empty() ? "" : ", ") + pair->first + ", " + pair->second;
  }
  if (!train && !test) fail(ErrorCode::kNotFound, "no IDX files in " + dir.string());
  if (train && test && (train->height != test->height || train->width != test->width))
    fail(ErrorCode::kCorruptFile,
         dir.string() + ": the train and t10k images have different sizes",
         "use the train and t10k files of the same dataset");
  finish_split(ds, train, test, options);
  return ds;
}

Dataset load_cifar_dir(const fs::path& dir, const std::string& name,
                       std::vector<std::string> class_names, const LoadOptions& options) {
  Dataset ds;
  ds.name = name;
  ds.class_names = std::move(class_names);
  if (is_file(dir / "batches.meta.txt"))
    ds.class_names = detail::read_cifar10_class_names((dir / "batches.meta.txt").string());
  std::optional<ImageSet> train, test;
  const auto train_files = cifar_train_files(dir);
  std::vector<std::string> sources = train_files;
  if (!train_files.empty()) {
    auto set = read_cifar10_batches(train_files);
    if (!set.ok()) throw Failure{set.error()};
    train = std::move(set).value();
  }
  if (is_file(dir / "test_batch.bin")) {
    auto set = read_cifar10_batches({(dir / "test_batch.bin").string()});
    if (!set.ok()) throw Failure{set.error()};
    test = std::move(set).value();
    sources.push_back((dir / "test_batch.bin").string());
  }
  if (!train && !test) fail(ErrorCode::kNotFound, "no CIFAR-10 batches in " + dir.string());
  for (const auto& f : sources) ds.source += (ds.source.empty() ? "" : ", ") + f;
  finish_split(ds, train, test, options);
  return ds;
}

// A Dataset as bytes, for the trip from the sandboxed decoder to the parent.
class Writer {
 public:
  void u64(std::uint64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), sizeof v); }
  void str(std::string_view v) {
    u64(v.size());
    bytes_.append(v);
  }
  void images(const ImageSet& set) {
    for (std::int64_t v : {set.count, set.height, set.width, set.channels}) u64(static_cast<std::uint64_t>(v));
    str(std::string_view(reinterpret_cast<const char*>(set.pixels.data()), set.pixels.size()));
    str(std::string_view(reinterpret_cast<const char*>(set.labels.data()), set.labels.size() * sizeof(std::int32_t)));
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t u64() {
    std::uint64_t v = 0;
    need(sizeof v);
    std::memcpy(&v, bytes_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string_view str() {
    const std::uint64_t n = u64();
    need(n);
    std::string_view v = bytes_.substr(at_, n);
    at_ += n;
    return v;
  }
  ImageSet images() {
    ImageSet set;
    set.count = static_cast<std::int64_t>(u64());
    set.height = static_cast<std::int64_t>(u64());
    set.width = static_cast<std::int64_t>(u64());
    set.channels = static_cast<std::int64_t>(u64());
    const std::string_view pixels = str();
    set.pixels.assign(pixels.begin(), pixels.end());
    const std::string_view labels = str();
    if (labels.size() % sizeof(std::int32_t) != 0) need(bytes_.size() + 1);
    set.labels.resize(labels.size() / sizeof(std::int32_t));
    if (!labels.empty()) std::memcpy(set.labels.data(), labels.data(), labels.size());
    return set;
  }

 private:
  void need(std::uint64_t n) const {
    if (n > bytes_.size() - at_) fail(ErrorCode::kInternal, "the dataset decoder sent a truncated reply");
  }
  std::string_view bytes_;
  std::size_t at_ = 0;
};

std::string encode(const Dataset& ds) {
  Writer w;
  w.str(ds.name);
  w.images(ds.train);
  w.images(ds.test);
  w.u64(ds.class_names.size());
  for (const auto& c : ds.class_names) w.str(c);
  w.str(ds.source);
  w.str(ds.split_note);
  return w.take();
}

Dataset decode(std::string_view bytes) {
  Reader r(bytes);
  Dataset ds;
  ds.name = r.str();
  ds.train = r.images();
  ds.test = r.images();
  const std::uint64_t classes = r.u64();
  for (std::uint64_t i = 0; i < classes; ++i) ds.class_names.emplace_back(r.str());
  ds.source = r.str();
  ds.split_note = r.str();
  return ds;
}

std::uint64_t bytes_under(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return fs::file_size(path, ec);
  std::uint64_t total = 0, entries = 0;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator() && entries < 1000000;
       it.increment(ec), ++entries) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

// Decoding user files (IDX, CIFAR batches, PNG/JPEG, ZIP) runs in the sandbox: the child may read
// only `path` (a file, or a folder and what it holds), within a memory budget from its size.
Dataset decode_confined(const fs::path& path, const std::function<Dataset()>& decode_here) {
  if (sandbox::inside()) return decode_here();
  sandbox::Policy policy;
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  (fs::is_directory(absolute, ec) ? policy.read_dirs : policy.read_files).push_back(absolute.string());
  policy.memory_bytes = sandbox::memory_budget_for(2 * bytes_under(absolute));
  policy.what = "decoding the dataset";
  policy.hint = "the dataset is damaged, crafted or too large for this machine; check its files. Nothing else was affected";
  Result<std::string> bytes = sandbox::run([&]() -> Result<std::string> { return encode(decode_here()); }, path.string(), policy);
  if (!bytes) throw Failure{bytes.error()};
  return decode(bytes.value());
}

Dataset load_preset_dir(const Preset& preset, const fs::path& dir, const LoadOptions& options) {
  note(options, "reading " + preset.name + " from " + dir.string());
  return decode_confined(dir, [&] {
    return preset.format == Format::kIdx ? load_idx_dir(dir, preset.name, preset.class_names, options)
                                         : load_cifar_dir(dir, preset.name, preset.class_names, options);
  });
}

std::string cache_root() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/edgeopt/datasets";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/edgeopt/datasets";
  return {};
}

// Downloads what the cache lacks; fails with kNetwork listing every URL tried.
void download_preset(const Preset& preset, const fs::path& cache_dir, const LoadOptions& options,
                     const std::string& looked) {
  const auto& mirrors = options.download_mirrors.empty() ? preset.mirrors : options.download_mirrors;
  for (const auto& file : preset.files) {
    const fs::path dest = cache_dir / file.name;
    if (is_file(dest)) continue;
    std::string errors;
    bool done = false;
    for (const auto& base : mirrors) {
      std::string url = base + (base.empty() || base.back() == '/' ? "" : "/") + file.name;
      note(options, "downloading " + url);
      auto status = capture([&] {
        detail::download_file(url, dest.string(), file.digest, file.size, options.progress);
        return Unit{};
      });
      if (status.ok()) {
        done = true;
        break;
      }
      errors += "\n  " + status.error().message;
    }
    if (!done)
      fail(ErrorCode::kNetwork,
           "could not download " + preset.name + " (" + file.name + "):" + errors +
               "\nlooked for the files in:" + looked,
           "connect to the network, or download the " + preset.name +
               " files yourself and pass --data-dir DIR (or set EDGEOPT_DATA_DIR)");
  }
  if (preset.format == Format::kCifar10) {
    const fs::path archive = cache_dir / preset.files.front().name;
    note(options, "extracting " + archive.string());
    detail::extract_tar_gz_members(archive.string(), kCifarFiles,
                                   (cache_dir / "cifar-10-batches-bin").string(), 64ull << 20);
    std::error_code ec;
    fs::remove(archive, ec);  // the extracted batches are all we keep
  }
}

Dataset load_preset(const Preset& preset, const LoadOptions& options) {
  detail::check_test_fraction(options.test_fraction);
  std::string looked;
  auto try_root = [&](const fs::path& root, bool complete) -> std::optional<fs::path> {
    std::vector<fs::path> dirs{root};
    for (const auto& sub : preset.subdirs) dirs.push_back(root / sub);
    for (const auto& dir : dirs) {
      looked += "\n  " + dir.string();
      if (holds(preset, dir, complete)) return dir;
    }
    return std::nullopt;
  };
  std::vector<fs::path> roots;
  if (!options.data_dir.empty()) roots.emplace_back(options.data_dir);
  if (const char* env = std::getenv("EDGEOPT_DATA_DIR"); env && *env) roots.emplace_back(env);
  for (const auto& root : roots)
    if (auto dir = try_root(root, false)) return load_preset_dir(preset, *dir, options);
  if (options.search_system_paths)
    for (const auto& sys : preset.system_dirs) {
      looked += "\n  " + sys;
      if (holds(preset, sys, false)) return load_preset_dir(preset, sys, options);
    }
  const std::string cache = cache_root();
  const fs::path cache_dir = cache.empty() ? fs::path() : fs::path(cache) / preset.name;
  // The cache only counts when complete: a half-finished download must not pass for a dataset.
  if (!cache.empty())
    if (auto dir = try_root(cache_dir, true)) return load_preset_dir(preset, *dir, options);
  if (!options.allow_download || cache.empty())
    fail(ErrorCode::kNotFound,
         preset.name + " not found; looked in:" + looked +
             (cache.empty() ? "\n  (no cache: neither XDG_CACHE_HOME nor HOME is set)" : ""),
         "allow downloading, or get the " + preset.name + " files (" + preset.files.front().name +
             (preset.files.size() > 1 ? ", ..." : "") +
             ") and pass --data-dir DIR or set EDGEOPT_DATA_DIR");
  download_preset(preset, cache_dir, options, looked);
  auto dir = try_root(cache_dir, true);
  if (!dir) fail(ErrorCode::kInternal, "downloaded " + preset.name + " but cannot find it in " +
                                           cache_dir.string());
  return load_preset_dir(preset, *dir, options);
}

const Preset* find_preset(const std::string& spec) {
  std::string key = spec;
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& p : presets())
    if (std::find(p.aliases.begin(), p.aliases.end(), key) != p.aliases.end()) return &p;
  return nullptr;
}

Dataset load_path_in_process(const std::string& spec, const LoadOptions& options) {
  std::error_code ec;
  const fs::path path(spec);
  if (fs::is_directory(path, ec)) {
    fs::path named = path;
    while (!named.empty() && named.filename().empty()) named = named.parent_path();
    const std::string name = named.filename().string();
    // A folder of IDX or CIFAR-10 files is read as such; otherwise it is class folders.
    if (holds(presets()[0], path, false)) {
      detail::check_test_fraction(options.test_fraction);
      return load_idx_dir(path, name, presets()[0].class_names, options);
    }
    if (holds(presets()[2], path, false)) {
      detail::check_test_fraction(options.test_fraction);
      return load_cifar_dir(path, name, presets()[2].class_names, options);
    }
    auto ds = read_image_folder(spec, options);
    if (!ds.ok()) throw Failure{ds.error()};
    return std::move(ds).value();
  }
  if (fs::is_regular_file(path, ec)) {
    auto ds = read_image_zip(spec, options);
    if (!ds.ok()) {
      Error error = ds.error();
      if (error.code == ErrorCode::kCorruptFile && path.extension() != ".zip")
        error = {ErrorCode::kUnsupportedFormat, spec + " is neither a ZIP nor a folder",
                 "give a ZIP or folder of images with one sub-folder per class"};
      throw Failure{error};
    }
    return std::move(ds).value();
  }
  fail(ErrorCode::kNotFound,
       "'" + spec + "' is neither a preset dataset nor an existing file or folder",
       "use mnist, fashion-mnist or cifar10, or a folder/ZIP with one sub-folder per class");
}

Dataset load_path(const std::string& spec, const LoadOptions& options) {
  std::error_code ec;
  const fs::path path(spec);
  if (!fs::exists(path, ec)) return load_path_in_process(spec, options);  // its clear error
  if (!fs::is_directory(path, ec) && !fs::is_regular_file(path, ec)) {
    fail(ErrorCode::kInvalidArgument, "'" + spec + "' is not a regular file or folder (a pipe, device or socket)",
         "give a ZIP or folder of images with one sub-folder per class");
  }
  return decode_confined(path, [&] { return load_path_in_process(spec, options); });
}

}  // namespace

Result<Dataset> load_dataset(const std::string& spec, const LoadOptions& options) {
  return capture([&] {
    // A --data-dir that does not exist is a typo, not a reason to fall back silently.
    std::error_code ec;
    if (!options.data_dir.empty() && !std::filesystem::is_directory(options.data_dir, ec)) {
      fail(ErrorCode::kNotFound, "--data-dir '" + options.data_dir + "' is not a folder", "check the path, or leave --data-dir out to search the usual places");
    }
    if (const Preset* preset = find_preset(spec)) return load_preset(*preset, options);
    return load_path(spec, options);
  });
}

}  // namespace edgeopt::data
