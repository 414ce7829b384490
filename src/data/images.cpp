// The user's own images: a folder or ZIP with one sub-folder per class (optionally under train/
// and test/), PNG or JPEG, converted to one size and channel count.
//
// ZIPs are read entry by entry in memory and never extracted, after every entry's header has been
// checked: no absolute or ../ paths, no symlinks, no encryption, bounded count, total size and
// compression ratio. Sizes are enforced again while reading, since headers can lie.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS 16384
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#include <zip.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "data/internal.h"

namespace edgeopt::data {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kMaxImageFileBytes = 64ull << 20;  // one PNG/JPEG file
constexpr std::uint64_t kMaxZipTotal = 4 * detail::kGiB;    // sum of uncompressed entries
constexpr double kMaxCompressionRatio = 200.0;
// Tiny entries can compress far better than 200:1 (a blank file) and are harmless.
constexpr std::uint64_t kRatioCheckMinBytes = 64 * 1024;
constexpr std::int64_t kMaxSide = 4096;  // largest target height/width accepted

struct Entry {
  std::vector<std::string> parts;    // path components, '/'-separated in the archive
  bool is_dir = false;
  std::function<std::string()> read;  // the file's bytes (bounded)
};

std::string join(const std::vector<std::string>& parts, std::size_t from = 0) {
  std::string s;
  for (std::size_t i = from; i < parts.size(); ++i) s += (s.empty() ? "" : "/") + parts[i];
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_image_extension(const std::string& name) {
  auto dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = lower(name.substr(dot + 1));
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

bool is_hidden(const std::vector<std::string>& parts) {
  for (const auto& p : parts)
    if (p.empty() || p[0] == '.' || p == "__MACOSX") return true;
  return false;
}

bool is_candidate(const Entry& e) { return !e.is_dir && has_image_extension(e.parts.back()); }

struct Skipped {
  std::int64_t count = 0;
  std::vector<std::string> examples;
  void add(const std::string& path) {
    if (count++ < 3) examples.push_back(path);
  }
  std::string describe(const std::string& what) const {
    std::string s = "skipped " + std::to_string(count) + " " + what + " (";
    for (std::size_t i = 0; i < examples.size(); ++i) s += (i ? ", " : "") + examples[i];
    return s + (count > static_cast<std::int64_t>(examples.size()) ? ", ...)" : ")");
  }
};

// Decodes, converts and resizes one image into the set; false if it is not a readable PNG/JPEG.
bool append_image(const std::string& bytes, std::int32_t label, ImageSet& set) {
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) return false;
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) return false;
  if (set.channels == 0) set.channels = (comp == 1 || comp == 2) ? 1 : 3;
  // stb converts: RGB -> luminance, gray -> replicated RGB, alpha dropped.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, len, &w, &h, &comp, static_cast<int>(set.channels)),
      stbi_image_free);
  if (!pixels || w <= 0 || h <= 0) return false;
  if (set.height == 0) set.height = h;
  if (set.width == 0) set.width = w;
  const std::size_t image_bytes = static_cast<std::size_t>(set.height * set.width * set.channels);
  const std::size_t base = set.pixels.size();
  set.pixels.resize(base + image_bytes);
  if (w == set.width && h == set.height) {
    std::copy_n(pixels.get(), image_bytes, set.pixels.begin() + static_cast<std::ptrdiff_t>(base));
  } else if (!stbir_resize_uint8(pixels.get(), w, h, 0, set.pixels.data() + base,
                                 static_cast<int>(set.width), static_cast<int>(set.height), 0,
                                 static_cast<int>(set.channels))) {
    set.pixels.resize(base);
    return false;
  }
  set.labels.push_back(label);
  ++set.count;
  return true;
}

void check_image_options(const LoadOptions& options) {
  auto bad_side = [](std::int64_t v) { return v < 0 || v > kMaxSide; };
  if (bad_side(options.image_height) || bad_side(options.image_width))
    fail(ErrorCode::kInvalidArgument,
         "image size " + std::to_string(options.image_height) + "x" +
             std::to_string(options.image_width) + " is out of range",
         "use 1.." + std::to_string(kMaxSide) + " pixels per side, or 0 to keep the first image's");
  if (options.image_channels != 0 && options.image_channels != 1 && options.image_channels != 3)
    fail(ErrorCode::kInvalidArgument,
         "image channels must be 1 (grayscale) or 3 (RGB), got " +
             std::to_string(options.image_channels),
         "use 1 or 3, or 0 to keep the first image's");
  detail::check_test_fraction(options.test_fraction);
}

// Turns a list of entries (from a folder or a ZIP) into a Dataset.
Dataset build_dataset(std::vector<Entry> entries, const std::string& name,
                      const std::string& source, const LoadOptions& options) {
  check_image_options(options);
  std::erase_if(entries, [](const Entry& e) { return e.parts.empty() || is_hidden(e.parts); });

  // A single wrapping folder ("mydata/cat/1.png") is not a class: strip it.
  for (int depth = 0; depth < 4; ++depth) {
    std::set<std::string> firsts;
    bool all_deep = true, any = false;
    for (const auto& e : entries) {
      if (!is_candidate(e)) continue;
      any = true;
      firsts.insert(e.parts.front());
      all_deep = all_deep && e.parts.size() >= 3;
    }
    if (!any || firsts.size() != 1 || !all_deep) break;
    const std::string top = *firsts.begin();
    std::vector<Entry> kept;
    for (auto& e : entries)
      if (e.parts.size() >= 2 && e.parts.front() == top) {
        e.parts.erase(e.parts.begin());
        kept.push_back(std::move(e));
      }
    entries = std::move(kept);
  }

  // train/ and test/ at the top are the split.
  bool has_train = false, has_test = false, all_in_split = true;
  for (const auto& e : entries) {
    if (!is_candidate(e)) continue;
    std::string top = lower(e.parts.front());
    has_train |= top == "train" && e.parts.size() >= 3;
    has_test |= top == "test" && e.parts.size() >= 3;
    all_in_split &= (top == "train" || top == "test");
  }
  const bool on_disk_split = has_train && has_test && all_in_split;

  // split (0 train, 1 test, 2 unsplit) -> class -> file paths (sorted)
  std::map<std::string, std::vector<const Entry*>> by_class[3];
  std::set<std::string> class_set;
  Skipped non_images, unreadable;
  for (const auto& e : entries) {
    std::size_t class_at = 0;
    int split = 2;
    if (on_disk_split) {
      std::string top = lower(e.parts.front());
      if (top != "train" && top != "test") {
        if (!e.is_dir) non_images.add(join(e.parts));
        continue;
      }
      split = top == "train" ? 0 : 1;
      class_at = 1;
    }
    if (e.parts.size() <= class_at) continue;
    if (e.parts.size() == class_at + 1) {  // a file beside the class folders, or a folder
      if (e.is_dir) class_set.insert(e.parts[class_at]);
      else non_images.add(join(e.parts));
      continue;
    }
    const std::string& cls = e.parts[class_at];
    class_set.insert(cls);
    if (e.is_dir) continue;
    if (!is_candidate(e)) {
      non_images.add(join(e.parts));
      continue;
    }
    by_class[split][cls].push_back(&e);
  }
  if (class_set.empty())
    fail(ErrorCode::kInvalidArgument, source + " has no class folders with PNG or JPEG images",
         "put the images in one sub-folder per class, e.g. cats/1.png and dogs/2.jpg");

  Dataset ds;
  ds.name = name;
  ds.source = source;
  ds.class_names.assign(class_set.begin(), class_set.end());
  std::map<std::string, std::int32_t> label_of;
  for (std::size_t i = 0; i < ds.class_names.size(); ++i)
    label_of[ds.class_names[i]] = static_cast<std::int32_t>(i);

  ImageSet sets[3];
  for (auto& s : sets) {
    s.height = options.image_height;
    s.width = options.image_width;
    s.channels = options.image_channels;
  }
  std::map<std::string, std::int64_t> per_class_count[3];
  // The first image fixes any size left at 0; train is read first so it decides.
  for (int split : {0, 2, 1}) {
    for (auto& [cls, files] : by_class[split]) {
      std::sort(files.begin(), files.end(),
                [](const Entry* a, const Entry* b) { return a->parts < b->parts; });
      for (const Entry* e : files) {
        ImageSet& set = sets[split];
        if (split == 1) {  // the test split must match train's shape
          set.height = sets[0].height;
          set.width = sets[0].width;
          set.channels = sets[0].channels;
        }
        std::string bytes = e->read();
        if (append_image(bytes, label_of[cls], set)) {
          ++per_class_count[split][cls];
          auto bytes_so_far = static_cast<std::uint64_t>(set.pixels.size());
          if (bytes_so_far > 4 * detail::kGiB)
            fail(ErrorCode::kInvalidArgument,
                 source + " needs more than 4 GiB of memory at this image size",
                 "choose a smaller image size or fewer images");
        } else {
          unreadable.add(join(e->parts));
        }
      }
    }
  }

  for (const auto& cls : ds.class_names) {
    bool none = on_disk_split ? per_class_count[0][cls] == 0
                              : per_class_count[2][cls] == 0;
    if (none)
      fail(ErrorCode::kInvalidArgument,
           source + ": class '" + cls + "' has no readable PNG or JPEG images" +
               (on_disk_split ? " in train/" : ""),
           "add images to that folder or remove it");
  }

  if (on_disk_split) {
    ds.train = std::move(sets[0]);
    ds.test = std::move(sets[1]);
    ds.split_note = "train/ and test/ folders on disk";
  } else {
    detail::stratified_split(sets[2], options.test_fraction, options.seed, ds.train, ds.test);
    ds.split_note = detail::split_note_for(options.test_fraction, options.seed);
  }
  if (ds.test.count == 0) {
    ds.test.height = ds.train.height;
    ds.test.width = ds.train.width;
    ds.test.channels = ds.train.channels;
  }
  if (non_images.count) ds.split_note += "; " + non_images.describe("non-image files");
  if (unreadable.count) ds.split_note += "; " + unreadable.describe("unreadable images");
  return ds;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '/' || c == '\\') {
      if (!cur.empty() && cur != ".") parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty() && cur != ".") parts.push_back(cur);
  return parts;
}

// ---- ZIP ----

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

[[noreturn]] void unsafe(const std::string& source, const std::string& what) {
  fail(ErrorCode::kUnsafeArchive, source + ": " + what + " (refused; nothing was extracted)",
       "re-create the ZIP from a plain folder of images, one sub-folder per class");
}

// Checks every entry's header, then returns entries that read lazily from the open archive.
std::vector<Entry> list_zip(zip_t* zip, const std::string& source, const LoadOptions& options,
                            std::shared_ptr<std::uint64_t> total_read) {
  zip_int64_t n = zip_get_num_entries(zip, 0);
  if (n < 0) fail(ErrorCode::kCorruptFile, source + " is not a readable ZIP");
  if (n > options.max_zip_entries)
    unsafe(source, "it has " + std::to_string(n) + " entries, more than the limit of " +
                       std::to_string(options.max_zip_entries));
  std::uint64_t total = 0;
  std::vector<Entry> entries;
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip, static_cast<zip_uint64_t>(i), 0, &st) != 0 ||
        !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE) ||
        !(st.valid & ZIP_STAT_COMP_SIZE))
      fail(ErrorCode::kCorruptFile, source + ": cannot read the header of entry " +
                                        std::to_string(i),
           "the ZIP is damaged; create it again");
    const std::string name = st.name;
    if (name.empty() || name[0] == '/' || name[0] == '\\' ||
        (name.size() >= 2 && std::isalpha(static_cast<unsigned char>(name[0])) && name[1] == ':'))
      unsafe(source, "entry '" + name + "' has an absolute path");
    std::vector<std::string> parts = split_path(name);
    for (const auto& p : parts)
      if (p == "..") unsafe(source, "entry '" + name + "' points outside the archive (../)");
    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    if (zip_file_get_external_attributes(zip, static_cast<zip_uint64_t>(i), 0, &opsys,
                                         &attributes) == 0 &&
        opsys == ZIP_OPSYS_UNIX && ((attributes >> 16) & 0170000) == 0120000)
      unsafe(source, "entry '" + name + "' is a symbolic link");
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
      unsafe(source, "entry '" + name + "' is encrypted");
    total += st.size;
    if (total > kMaxZipTotal)
      unsafe(source, "its entries add up to more than 4 GiB uncompressed");
    if (st.size >= kRatioCheckMinBytes &&
        static_cast<double>(st.size) >
            kMaxCompressionRatio * static_cast<double>(std::max<zip_uint64_t>(st.comp_size, 1)))
      unsafe(source, "entry '" + name + "' expands " +
                         std::to_string(st.size / std::max<zip_uint64_t>(st.comp_size, 1)) +
                         "x (more than 200x: a zip bomb)");
    Entry e;
    e.parts = std::move(parts);
    e.is_dir = !name.empty() && name.back() == '/';
    if (e.parts.empty()) continue;
    const auto index = static_cast<zip_uint64_t>(i);
    const std::uint64_t declared = st.size;
    e.read = [zip, index, declared, name, source, total_read]() {
      if (declared > kMaxImageFileBytes) return std::string();  // too big for an image: skipped
      std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(zip, index, 0));
      if (!file) fail(ErrorCode::kCorruptFile, source + ": cannot open entry '" + name + "'",
                      "the ZIP is damaged; create it again");
      std::string bytes;
      char chunk[65536];
      while (true) {
        zip_int64_t got = zip_fread(file.get(), chunk, sizeof chunk);
        if (got < 0)
          fail(ErrorCode::kCorruptFile, source + ": cannot read entry '" + name + "'",
               "the ZIP is damaged; create it again");
        if (got == 0) break;
        bytes.append(chunk, static_cast<std::size_t>(got));
        *total_read += static_cast<std::uint64_t>(got);
        // Headers can lie: enforce the declared size and the total while inflating.
        if (bytes.size() > declared || *total_read > kMaxZipTotal)
          unsafe(source, "entry '" + name + "' inflates beyond the size its header declares");
      }
      return bytes;
    };
    entries.push_back(std::move(e));
  }
  return entries;
}

Dataset read_zip(zip_t* zip, const std::string& name, const std::string& source,
                 const LoadOptions& options) {
  auto total_read = std::make_shared<std::uint64_t>(0);
  return build_dataset(list_zip(zip, source, options, total_read), name, source, options);
}

[[noreturn]] void zip_open_failed(int code, const std::string& source) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string why = zip_error_strerror(&error);
  zip_error_fini(&error);
  if (code == ZIP_ER_NOENT) fail(ErrorCode::kNotFound, source + " not found", "check the path");
  fail(ErrorCode::kCorruptFile, source + " is not a readable ZIP archive (" + why + ")",
       "create the ZIP again, with one sub-folder per class");
}

std::string stem_of(const std::string& path) {
  fs::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();
  return p.stem().string();
}

}  // namespace

Result<Dataset> read_image_zip_bytes(std::string_view zip_bytes, const std::string& name,
                                     const LoadOptions& options) {
  return capture([&] {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* src = zip_source_buffer_create(zip_bytes.data(), zip_bytes.size(), 0, &error);
    if (!src) {
      zip_error_fini(&error);
      fail(ErrorCode::kInternal, "cannot create a ZIP source in memory");
    }
    zip_t* raw = zip_open_from_source(src, ZIP_RDONLY, &error);
    if (!raw) {
      zip_source_free(src);
      int code = zip_error_code_zip(&error);
      zip_error_fini(&error);
      zip_open_failed(code, name);
    }
    zip_error_fini(&error);
    std::unique_ptr<zip_t, ZipCloser> zip(raw);
    return read_zip(zip.get(), name, name, options);
  });
}

Result<Dataset> read_image_zip(const std::string& zip_path, const LoadOptions& options) {
  return capture([&] {
    int code = 0;
    std::unique_ptr<zip_t, ZipCloser> zip(zip_open(zip_path.c_str(), ZIP_RDONLY, &code));
    if (!zip) zip_open_failed(code, zip_path);
    return read_zip(zip.get(), stem_of(zip_path), zip_path, options);
  });
}

Result<Dataset> read_image_folder(const std::string& dir, const LoadOptions& options) {
  return capture([&] {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      fail(ErrorCode::kNotFound, "image folder not found: " + dir,
           "give a folder with one sub-folder per class");
    std::vector<Entry> entries;
    const fs::path root(dir);
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (entries.size() > 1000000)
        fail(ErrorCode::kInvalidArgument, dir + " holds more than a million files",
             "point at the dataset folder itself");
      Entry e;
      e.parts = split_path(fs::relative(it->path(), root, ec).generic_string());
      e.is_dir = it->is_directory(ec);
      if (!e.is_dir && !it->is_regular_file(ec)) continue;
      std::string path = it->path().string();
      e.read = [path]() {
        std::error_code size_ec;
        if (fs::file_size(path, size_ec) > kMaxImageFileBytes) return std::string();
        return detail::read_file(path, kMaxImageFileBytes);
      };
      entries.push_back(std::move(e));
    }
    if (ec) fail(ErrorCode::kIo, "cannot list " + dir + ": " + ec.message());
    fs::path name(dir);
    while (!name.empty() && name.filename().empty()) name = name.parent_path();
    return build_dataset(std::move(entries), name.filename().string(), dir, options);
  });
}

Result<std::string> encode_png(const ImageSet& images, std::int64_t index) {
  if (index < 0 || index >= images.count) return Error{ErrorCode::kInvalidArgument, "image " + std::to_string(index) + " is not in a set of " + std::to_string(images.count)};
  const std::int64_t size = images.height * images.width * images.channels;
  std::string png;
  auto append = [](void* context, void* data, int bytes) { static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(bytes)); };
  const int ok = stbi_write_png_to_func(append, &png, static_cast<int>(images.width), static_cast<int>(images.height), static_cast<int>(images.channels),
                                        images.pixels.data() + index * size, static_cast<int>(images.width * images.channels));
  if (!ok) return Error{ErrorCode::kInternal, "could not encode image " + std::to_string(index) + " as PNG"};
  return png;
}

}  // namespace edgeopt::data
