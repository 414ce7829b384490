// Datasets: IDX, CIFAR-10, image folders and ZIPs (including hostile ones), lookup and download
// failure, and the digests used to check downloads.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <optional>

#include "data/checksum.h"
#include "data/dataset.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

namespace fs = std::filesystem;
using edgeopt::ErrorCode;
using namespace edgeopt::data;

namespace {

const std::string kShared = EDGEOPT_SOURCE_DIR "/../shared";

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "edgeopt-data-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Sets (or unsets, with nullopt) an environment variable for one scope.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, std::optional<std::string> value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    if (value) setenv(name.c_str(), value->c_str(), 1);
    else unsetenv(name.c_str());
  }
  ~ScopedEnv() {
    if (old) setenv(name.c_str(), old->c_str(), 1);
    else unsetenv(name.c_str());
  }
};

void write_file(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string be32(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::string idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  std::string s = be32(0x803) + be32(count) + be32(rows) + be32(cols);
  for (std::uint32_t i = 0; i < count * rows * cols; ++i) s += char(i % 251);
  return s;
}

std::string idx_labels(std::uint32_t count) {
  std::string s = be32(0x801) + be32(count);
  for (std::uint32_t i = 0; i < count; ++i) s += char(i % 10);
  return s;
}

std::string gzip(std::string_view raw) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, raw.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<char*>(data), static_cast<std::size_t>(size));
}

// A solid-colour image, PNG or JPEG, with 1 or 3 channels.
std::string solid_image(int w, int h, std::vector<std::uint8_t> colour, bool jpeg = false) {
  const int comp = static_cast<int>(colour.size());
  std::vector<std::uint8_t> px;
  for (int i = 0; i < w * h; ++i) px.insert(px.end(), colour.begin(), colour.end());
  std::string out;
  if (jpeg) stbi_write_jpg_to_func(append_to_string, &out, w, h, comp, px.data(), 95);
  else stbi_write_png_to_func(append_to_string, &out, w, h, comp, px.data(), w * comp);
  return out;
}

// Builds a ZIP file with libzip. Entries: name -> bytes; extra tweaks via the callback.
struct ZipBuilder {
  std::list<std::string> keep;  // libzip reads the buffers at zip_close
  zip_t* zip;
  explicit ZipBuilder(const fs::path& path) {
    int err = 0;
    zip = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  }
  zip_int64_t add(const std::string& name, std::string bytes) {
    keep.push_back(std::move(bytes));
    zip_source_t* src = zip_source_buffer(zip, keep.back().data(), keep.back().size(), 0);
    return zip_file_add(zip, name.c_str(), src, ZIP_FL_OVERWRITE);
  }
  bool close() { return zip_close(zip) == 0; }
};

ImageSet image_set_of(std::int64_t n) {
  ImageSet s;
  s.count = n;
  s.height = s.width = s.channels = 1;
  for (std::int64_t i = 0; i < n; ++i) {
    s.pixels.push_back(static_cast<std::uint8_t>(i));
    s.labels.push_back(static_cast<std::int32_t>(i % 3));
  }
  return s;
}

LoadOptions offline() {
  LoadOptions o;
  o.allow_download = false;
  o.search_system_paths = false;
  return o;
}

}  // namespace

// ---------------- digests ----------------

TEST(Checksum, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Streaming in odd pieces gives the same digest.
  std::string text(1000, 'x');
  for (std::size_t i = 0; i < text.size(); ++i) text[i] = char(i * 7);
  Sha256 h;
  for (std::size_t i = 0; i < text.size(); i += 37) h.update(std::string_view(text).substr(i, 37));
  EXPECT_EQ(h.hex_digest(), sha256_hex(text));
}

TEST(Checksum, Md5KnownVectors) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5_hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5_hex("1234567890123456789012345678901234567890123456789012345678901234567890"
                    "1234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
}

// ---------------- IDX ----------------

TEST(Idx, ReadsRawAndGzip) {
  std::string images = idx_images(12, 3, 2), labels = idx_labels(12);
  for (bool gz : {false, true}) {
    auto set = read_idx_bytes(gz ? gzip(images) : images, gz ? gzip(labels) : labels, "mem");
    ASSERT_TRUE(set.ok()) << set.error().to_string();
    EXPECT_EQ(set->count, 12);
    EXPECT_EQ(set->height, 3);
    EXPECT_EQ(set->width, 2);
    EXPECT_EQ(set->channels, 1);
    EXPECT_EQ(set->pixels.size(), 72u);
    EXPECT_EQ(set->pixels[5], 5);
    EXPECT_EQ(set->labels[11], 1);
  }
}

TEST(Idx, RejectsBadInputNamingTheFile) {
  const std::string images = idx_images(4, 2, 2), labels = idx_labels(4);
  struct Case {
    std::string name, images, labels, expect;
  };
  std::string bad_label = labels;
  bad_label[8 + 2] = 10;
  std::string gz_extra = gzip(images + "extra");
  std::string gz_truncated = gzip(images);
  gz_truncated.resize(gz_truncated.size() / 2);
  std::vector<Case> cases = {
      {"wrong magic", be32(0x804) + images.substr(4), labels, "magic"},
      {"swapped", labels, images, "magic"},
      {"truncated", images.substr(0, images.size() - 1), labels, "truncated"},
      {"extra", images + "x", labels, "extra"},
      {"count mismatch", images, idx_labels(5), "labels"},
      {"label out of range", images, bad_label, "label 10"},
      {"gz garbage", std::string("\x1f\x8b garbage that is not deflate", 30), labels, "gzip"},
      {"gz truncated", gz_truncated, labels, "truncated"},
      {"gz extra data", gz_extra, labels, "promises"},
      {"empty", "", labels, "too short"},
      {"huge header", be32(0x803) + be32(0xffffffff) + be32(0xffff) + be32(0xffff), labels,
       "2 GiB"},
  };
  for (const auto& c : cases) {
    auto set = read_idx_bytes(c.images, c.labels, "case.idx");
    ASSERT_FALSE(set.ok()) << c.name;
    EXPECT_EQ(set.error().code, ErrorCode::kCorruptFile) << c.name;
    EXPECT_NE(set.error().message.find("case.idx"), std::string::npos) << c.name;
    EXPECT_NE(set.error().message.find(c.expect), std::string::npos)
        << c.name << ": " << set.error().message;
  }
}

TEST(Idx, FilesOnDiskAndMissingFile) {
  TempDir dir;
  write_file(dir.path / "img.gz", gzip(idx_images(3, 2, 2)));
  write_file(dir.path / "lab", idx_labels(2));
  auto set = read_idx((dir.path / "img.gz").string(), (dir.path / "lab").string());
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.error().message.find("img.gz"), std::string::npos);
  auto missing = read_idx((dir.path / "nope").string(), (dir.path / "lab").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// ---------------- MNIST / Fashion-MNIST on disk ----------------

TEST(Mnist, SharedTenKGetsDeterministicStratifiedSplit) {
  const std::string dir = kShared + "/datasets/mnist-10k";
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " absent";
  ScopedEnv env("EDGEOPT_DATA_DIR", std::nullopt);
  LoadOptions options = offline();
  options.data_dir = dir;
  auto ds = load_dataset("mnist", options);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->name, "mnist");
  EXPECT_EQ(ds->train.count + ds->test.count, 10000);
  EXPECT_EQ(ds->train.height, 28);
  EXPECT_EQ(ds->train.width, 28);
  EXPECT_EQ(ds->train.channels, 1);
  EXPECT_EQ(ds->test.pixels.size(), static_cast<std::size_t>(ds->test.count * 28 * 28));
  EXPECT_NE(ds->split_note.find("stratified 80/20"), std::string::npos) << ds->split_note;
  EXPECT_NE(ds->split_note.find("seed 42"), std::string::npos);
  ASSERT_EQ(ds->class_names.size(), 10u);
  // Per class, exactly round(20 %) of its images are in test.
  std::map<int, int> train_n, test_n;
  for (int l : ds->train.labels) ++train_n[l];
  for (int l : ds->test.labels) ++test_n[l];
  ASSERT_EQ(test_n.size(), 10u);
  for (auto [label, n] : test_n)
    EXPECT_EQ(n, std::llround((n + train_n[label]) * 0.2)) << "class " << label;
  EXPECT_NEAR(ds->test.count, 2000, 10);

  auto again = load_dataset("mnist", options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->test.labels, ds->test.labels);
  EXPECT_EQ(again->test.pixels, ds->test.pixels);
  options.seed = 7;
  auto other = load_dataset("mnist", options);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->test.count, ds->test.count);
  EXPECT_NE(other->test.pixels, ds->test.pixels);

  // The folder itself as a spec reads the same files.
  auto by_path = load_dataset(dir, offline());
  ASSERT_TRUE(by_path.ok()) << by_path.error().to_string();
  EXPECT_EQ(by_path->name, "mnist-10k");
  EXPECT_EQ(by_path->test.pixels, ds->test.pixels);
}

TEST(Mnist, FashionFromSystemPathKeepsOfficialSplit) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed";
  ScopedEnv env("EDGEOPT_DATA_DIR", std::nullopt);
  LoadOptions options;
  options.allow_download = false;
  auto ds = load_dataset("fashion-mnist", options);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->train.count, 60000);
  EXPECT_EQ(ds->test.count, 10000);
  EXPECT_EQ(ds->train.height, 28);
  EXPECT_EQ(ds->split_note, "official train/test split");
  EXPECT_EQ(ds->class_names.at(9), "Ankle boot");
  EXPECT_NE(ds->source.find("/usr/share/datasets/fashion-mnist"), std::string::npos);
}

TEST(Mnist, SubfolderLayoutsAndNotFound) {
  TempDir dir;
  ScopedEnv env("EDGEOPT_DATA_DIR", std::nullopt);
  ScopedEnv cache("XDG_CACHE_HOME", (dir.path / "cache").string());
  const fs::path raw = dir.path / "FashionMNIST" / "raw";
  write_file(raw / "train-images-idx3-ubyte", idx_images(20, 4, 4));
  write_file(raw / "train-labels-idx1-ubyte", idx_labels(20));
  write_file(raw / "t10k-images-idx3-ubyte.gz", gzip(idx_images(10, 4, 4)));
  write_file(raw / "t10k-labels-idx1-ubyte.gz", gzip(idx_labels(10)));
  LoadOptions options = offline();
  options.data_dir = dir.path.string();
  auto ds = load_dataset("fashion-mnist", options);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->train.count, 20);
  EXPECT_EQ(ds->test.count, 10);
  EXPECT_EQ(ds->split_note, "official train/test split");

  // The same folder through EDGEOPT_DATA_DIR.
  {
    ScopedEnv via_env("EDGEOPT_DATA_DIR", dir.path.string());
    auto env_ds = load_dataset("fashion-mnist", offline());
    ASSERT_TRUE(env_ds.ok()) << env_ds.error().to_string();
    EXPECT_EQ(env_ds->train.count, 20);
  }

  auto missing = load_dataset("mnist", options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find(dir.path.string() + "/mnist"), std::string::npos)
      << missing.error().message;
  EXPECT_NE(missing.error().message.find("cache"), std::string::npos);
  EXPECT_NE(missing.error().hint.find("--data-dir"), std::string::npos);

  auto unknown = load_dataset(dir.path.string() + "/no-such-thing", options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);

  options.test_fraction = 1.5;
  auto bad_fraction = load_dataset("fashion-mnist", options);
  ASSERT_FALSE(bad_fraction.ok());
  EXPECT_EQ(bad_fraction.error().code, ErrorCode::kInvalidArgument);
}

TEST(Split, StratifiedKeepsClassSharesAndEdgeCases) {
  LoadOptions options = offline();
  TempDir dir;
  // 31 images in 3 classes (11, 10, 10) through a one-split IDX folder.
  write_file(dir.path / "t10k-images-idx3-ubyte", idx_images(31, 1, 1));
  std::string labels = be32(0x801) + be32(31);
  for (int i = 0; i < 31; ++i) labels += char(i % 3);
  write_file(dir.path / "t10k-labels-idx1-ubyte", labels);
  options.test_fraction = 0.3;
  auto ds = load_dataset(dir.path.string(), options);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  std::map<int, int> test_n;
  for (int l : ds->test.labels) ++test_n[l];
  EXPECT_EQ(test_n[0], 3);  // round(11 * 0.3)
  EXPECT_EQ(test_n[1], 3);
  EXPECT_EQ(test_n[2], 3);
  EXPECT_EQ(ds->train.count, 22);
  EXPECT_NE(ds->split_note.find("70/30"), std::string::npos) << ds->split_note;
  // No image lost or duplicated.
  std::vector<int> all;
  for (auto p : ds->train.pixels) all.push_back(p);
  for (auto p : ds->test.pixels) all.push_back(p);
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 31; ++i) EXPECT_EQ(all[i], i);
}

// ---------------- CIFAR-10 ----------------

namespace {
// One record: label, then R, G, B planes; pixel (y, x) of channel c = (c * 50 + y + x + seed).
std::string cifar_record(int label, int seed) {
  std::string r(1, char(label));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) r += char(c * 50 + y + x + seed);
  return r;
}
}  // namespace

TEST(Cifar, ReadsBinaryBatchesAsHwc) {
  TempDir dir;
  ScopedEnv env("EDGEOPT_DATA_DIR", std::nullopt);
  const fs::path bin = dir.path / "cifar-10-batches-bin";
  write_file(bin / "data_batch_1.bin", cifar_record(3, 0) + cifar_record(9, 1));
  write_file(bin / "data_batch_2.bin", cifar_record(0, 2));
  write_file(bin / "test_batch.bin", cifar_record(5, 3) + cifar_record(1, 4));
  write_file(bin / "batches.meta.txt",
             "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  LoadOptions options = offline();
  options.data_dir = dir.path.string();
  auto ds = load_dataset("cifar10", options);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->train.count, 3);
  EXPECT_EQ(ds->test.count, 2);
  EXPECT_EQ(ds->train.channels, 3);
  EXPECT_EQ(ds->train.height, 32);
  EXPECT_EQ(ds->train.labels, (std::vector<std::int32_t>{3, 9, 0}));
  EXPECT_EQ(ds->test.labels, (std::vector<std::int32_t>{5, 1}));
  EXPECT_EQ(ds->class_names.at(3), "cat");
  EXPECT_EQ(ds->split_note, "official train/test split");
  // HWC: image 1 (seed 1), y=2, x=5, channel 2 -> 2*50 + 2 + 5 + 1.
  const auto& px = ds->train.pixels;
  EXPECT_EQ(px[1 * 3072 + (2 * 32 + 5) * 3 + 2], 108);
  EXPECT_EQ(px[0 * 3072 + (31 * 32 + 31) * 3 + 0], 62);

  auto odd = read_cifar10_bytes(cifar_record(1, 0) + "x", "odd.bin");
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code, ErrorCode::kCorruptFile);
  EXPECT_NE(odd.error().message.find("odd.bin"), std::string::npos);
  auto bad_label = read_cifar10_bytes(cifar_record(10, 0), "c100.bin");
  ASSERT_FALSE(bad_label.ok());
  EXPECT_NE(bad_label.error().message.find("label 10"), std::string::npos);
  EXPECT_FALSE(read_cifar10_bytes("", "empty.bin").ok());
}

// ---------------- user images ----------------

namespace {
// cat: 5 images (RGB PNG 8x6, a JPEG 16x16, ...); dog: 5 grayscale PNGs 10x10; plus a text file.
void write_class_tree(const fs::path& root) {
  for (int i = 0; i < 4; ++i)
    write_file(root / "cat" / ("c" + std::to_string(i) + ".png"), solid_image(8, 6, {10, 200, 30}));
  write_file(root / "cat" / "c9.JPG", solid_image(16, 16, {10, 200, 30}, true));
  for (int i = 0; i < 5; ++i)
    write_file(root / "dog" / ("d" + std::to_string(i) + ".png"), solid_image(10, 10, {100}));
  write_file(root / "cat" / "notes.txt", "not an image");
  write_file(root / ".DS_Store", "hidden");
}

void expect_cat_dog(const Dataset& ds, int channels) {
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.train.count, 8);
  EXPECT_EQ(ds.test.count, 2);  // one per class
  EXPECT_EQ(ds.train.height, 8);
  EXPECT_EQ(ds.train.width, 8);
  EXPECT_EQ(ds.train.channels, channels);
  EXPECT_EQ(ds.test.channels, channels);
  EXPECT_EQ(ds.train.pixels.size(), static_cast<std::size_t>(8 * 8 * 8 * channels));
  EXPECT_NE(ds.split_note.find("skipped 1 non-image"), std::string::npos) << ds.split_note;
  EXPECT_NE(ds.split_note.find("notes.txt"), std::string::npos) << ds.split_note;
  // Solid colours stay solid through resizing; gray is replicated, RGB becomes luminance.
  const std::size_t image = static_cast<std::size_t>(64 * channels);
  for (std::int64_t i = 0; i < ds.train.count; ++i) {
    const std::uint8_t* px = ds.train.pixels.data() + i * static_cast<std::int64_t>(image);
    if (ds.train.labels[i] == 1) {
      for (std::size_t k = 0; k < image; ++k) ASSERT_EQ(px[k], 100);
    } else if (channels == 3) {
      EXPECT_NEAR(px[0], 10, 6);
      EXPECT_NEAR(px[1], 200, 6);
      EXPECT_NEAR(px[2], 30, 6);
    } else {
      EXPECT_NEAR(px[0], 124, 4);  // 0.299*10 + 0.587*200 + 0.114*30
    }
  }
}
}  // namespace

TEST(Images, FolderIsConvertedResizedAndSplit) {
  TempDir dir;
  write_class_tree(dir.path / "pets");
  LoadOptions options = offline();
  options.image_height = options.image_width = 8;
  options.image_channels = 3;
  auto ds = read_image_folder((dir.path / "pets").string(), options);
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->name, "pets");
  expect_cat_dog(ds.value(), 3);
  options.image_channels = 1;
  auto gray = load_dataset((dir.path / "pets").string(), options);
  ASSERT_TRUE(gray.ok()) << gray.error().to_string();
  expect_cat_dog(gray.value(), 1);
}

TEST(Images, FirstImageDecidesSizeWhenNotGiven) {
  TempDir dir;
  write_class_tree(dir.path);
  auto ds = read_image_folder(dir.path.string(), offline());
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->train.height, 6);  // cat/c0.png is 8 wide, 6 high, RGB
  EXPECT_EQ(ds->train.width, 8);
  EXPECT_EQ(ds->train.channels, 3);
  EXPECT_EQ(ds->test.height, 6);
}

TEST(Images, TrainTestFoldersAreTheSplit) {
  TempDir dir;
  for (const char* split : {"train", "test"})
    for (const char* cls : {"a", "b"})
      for (int i = 0; i < (std::string(split) == "train" ? 3 : 1); ++i)
        write_file(dir.path / split / cls / (std::to_string(i) + ".png"),
                   solid_image(4, 4, {std::uint8_t(cls[0])}));
  auto ds = read_image_folder(dir.path.string(), offline());
  ASSERT_TRUE(ds.ok()) << ds.error().to_string();
  EXPECT_EQ(ds->train.count, 6);
  EXPECT_EQ(ds->test.count, 2);
  EXPECT_EQ(ds->split_note, "train/ and test/ folders on disk");
  EXPECT_EQ(ds->test.labels, (std::vector<std::int32_t>{0, 1}));
}

TEST(Images, ClassWithoutImagesAndEmptyFolderAreErrors) {
  TempDir dir;
  write_file(dir.path / "a" / "1.png", solid_image(4, 4, {1}));
  write_file(dir.path / "b" / "readme.txt", "text");
  auto ds = read_image_folder(dir.path.string(), offline());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(ds.error().message.find("'b'"), std::string::npos) << ds.error().message;

  TempDir empty;
  auto none = read_image_folder(empty.path.string(), offline());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidArgument);

  LoadOptions bad = offline();
  bad.image_channels = 2;
  EXPECT_EQ(read_image_folder(dir.path.string(), bad).error().code, ErrorCode::kInvalidArgument);
}

TEST(Images, ZipMatchesFolder) {
  TempDir dir;
  write_class_tree(dir.path / "tree");
  {
    ZipBuilder zb(dir.path / "pets.zip");
    for (auto& e : fs::recursive_directory_iterator(dir.path / "tree"))
      if (e.is_regular_file()) {
        std::ifstream in(e.path(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        zb.add("pets/" + fs::relative(e.path(), dir.path / "tree").generic_string(), bytes);
      }
    zb.add("__MACOSX/pets/._c0.png", "junk");
    zb.add("pets/dog/inner.zip", "PK\x03\x04 nested archives are ignored");
    ASSERT_TRUE(zb.close());
  }
  LoadOptions options = offline();
  options.image_height = options.image_width = 8;
  options.image_channels = 3;
  auto folder = read_image_folder((dir.path / "tree").string(), options);
  ASSERT_TRUE(folder.ok()) << folder.error().to_string();
  auto zipped = load_dataset((dir.path / "pets.zip").string(), options);
  ASSERT_TRUE(zipped.ok()) << zipped.error().to_string();
  EXPECT_EQ(zipped->name, "pets");
  EXPECT_EQ(zipped->train.pixels, folder->train.pixels);
  EXPECT_EQ(zipped->test.labels, folder->test.labels);
  EXPECT_NE(zipped->split_note.find("skipped 2 non-image"), std::string::npos)
      << zipped->split_note;

  std::ifstream in(dir.path / "pets.zip", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto from_memory = read_image_zip_bytes(bytes, "upload.zip", options);
  ASSERT_TRUE(from_memory.ok()) << from_memory.error().to_string();
  EXPECT_EQ(from_memory->train.pixels, folder->train.pixels);

  auto not_zip = read_image_zip_bytes("definitely not a zip", "x.zip", options);
  ASSERT_FALSE(not_zip.ok());
  EXPECT_EQ(not_zip.error().code, ErrorCode::kCorruptFile);
}

namespace {
edgeopt::Error refusal_of(const fs::path& path, const LoadOptions& options = offline()) {
  auto ds = read_image_zip(path.string(), options);
  EXPECT_FALSE(ds.ok());
  return ds.ok() ? edgeopt::Error{} : ds.error();
}
}  // namespace

TEST(Images, HostileZipsAreRefused) {
  TempDir dir;
  const std::string png = solid_image(4, 4, {7});
  auto build = [&](const std::string& file, auto&& fill) {
    ZipBuilder zb(dir.path / file);
    zb.add("ok/1.png", png);
    fill(zb);
    EXPECT_TRUE(zb.close()) << file;
    return dir.path / file;
  };
  struct Case {
    fs::path zip;
    std::string expect;
  };
  std::vector<Case> cases = {
      {build("traversal.zip", [&](ZipBuilder& z) { z.add("ok/../../evil.png", png); }), "../"},
      {build("absolute.zip", [&](ZipBuilder& z) { z.add("/tmp/evil.png", png); }), "absolute"},
      {build("drive.zip", [&](ZipBuilder& z) { z.add("C:/evil.png", png); }), "absolute"},
      {build("symlink.zip",
             [&](ZipBuilder& z) {
               auto i = z.add("ok/link.png", "/etc/passwd");
               zip_file_set_external_attributes(z.zip, static_cast<zip_uint64_t>(i), 0,
                                                ZIP_OPSYS_UNIX, 0120777u << 16);
             }),
       "symbolic link"},
      {build("bomb.zip", [&](ZipBuilder& z) { z.add("ok/big.png", std::string(20 << 20, '\0')); }),
       "zip bomb"},
  };
  for (const auto& c : cases) {
    auto error = refusal_of(c.zip);
    EXPECT_EQ(error.code, ErrorCode::kUnsafeArchive) << c.zip;
    EXPECT_NE(error.message.find(c.expect), std::string::npos) << c.zip << ": " << error.message;
  }
  EXPECT_FALSE(fs::exists(dir.path.parent_path() / "evil.png"));

  auto many = build("many.zip", [&](ZipBuilder& z) {
    for (int i = 0; i < 11; ++i) z.add("ok/" + std::to_string(i) + ".txt", "x");
  });
  LoadOptions low_limit = offline();
  low_limit.max_zip_entries = 10;
  auto error = refusal_of(many, low_limit);
  EXPECT_EQ(error.code, ErrorCode::kUnsafeArchive);
  EXPECT_NE(error.message.find("12 entries"), std::string::npos) << error.message;

  int encryption_set = -1;
  auto encrypted = build("encrypted.zip", [&](ZipBuilder& z) {
    auto i = z.add("ok/2.png", png);
    encryption_set = zip_file_set_encryption(z.zip, static_cast<zip_uint64_t>(i), ZIP_EM_AES_256,
                                             "secret");
  });
  if (encryption_set == 0) {  // libzip was built with crypto support
    auto enc = refusal_of(encrypted);
    EXPECT_EQ(enc.code, ErrorCode::kUnsafeArchive);
    EXPECT_NE(enc.message.find("encrypted"), std::string::npos) << enc.message;
  }

  ZipBuilder only_text(dir.path / "text.zip");
  only_text.add("a/readme.txt", "hello");
  only_text.add("b/data.csv", "1,2");
  ASSERT_TRUE(only_text.close());
  auto text = refusal_of(dir.path / "text.zip");
  EXPECT_EQ(text.code, ErrorCode::kInvalidArgument);
}

// ---------------- download ----------------

namespace {
int closed_local_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);  // nothing listens there any more
  return ntohs(addr.sin_port);
}
}  // namespace

TEST(Download, ClosedLocalPortFailsFastWithNetworkError) {
  TempDir dir;
  ScopedEnv env("EDGEOPT_DATA_DIR", std::nullopt);
  ScopedEnv cache("XDG_CACHE_HOME", (dir.path / "cache").string());
  // A half-filled cache (one split only) must not count as the dataset.
  const std::string shared = kShared + "/datasets/mnist-10k";
  const fs::path cached = dir.path / "cache" / "edgeopt" / "datasets" / "mnist";
  fs::create_directories(cached);
  if (fs::exists(shared)) fs::copy(shared, cached, fs::copy_options::recursive);
  LoadOptions options;
  options.search_system_paths = false;
  options.download_mirrors = {"https://127.0.0.1:" + std::to_string(closed_local_port()) + "/"};
  std::vector<std::string> messages;
  options.progress = [&](const std::string& m) { messages.push_back(m); };
  auto start = std::chrono::steady_clock::now();
  auto ds = load_dataset("mnist", options);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.error().code, ErrorCode::kNetwork) << ds.error().to_string();
  EXPECT_LT(seconds, 12.0);
  EXPECT_NE(ds.error().message.find("127.0.0.1"), std::string::npos) << ds.error().message;
  EXPECT_NE(ds.error().message.find("looked for the files in"), std::string::npos);
  EXPECT_NE(ds.error().hint.find("--data-dir"), std::string::npos);
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages.front().find("downloading https://127.0.0.1"), std::string::npos);
  // Nothing half-written is left under the real name.
  EXPECT_FALSE(fs::exists(dir.path / "cache" / "edgeopt" / "datasets" / "mnist" /
                          "train-images-idx3-ubyte.gz"));

  options.allow_download = false;
  auto offline_ds = load_dataset("mnist", options);
  ASSERT_FALSE(offline_ds.ok());
  EXPECT_EQ(offline_ds.error().code, ErrorCode::kNotFound);
}
