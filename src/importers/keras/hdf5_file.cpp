#include "importers/keras/hdf5_file.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/error.h"

namespace edgeopt::keras_import {
namespace {

static_assert(sizeof(hid_t) == sizeof(std::int64_t), "Hdf5File stores hid_t as int64_t");

// Limits that keep a hostile file from making us allocate what it does not contain.
constexpr std::int64_t kMaxAttributeBytes = std::int64_t{256} << 20;
constexpr std::int64_t kMaxDatasetElements = std::int64_t{1} << 29;  // 2 GiB of float32
constexpr int kMaxRank = 8;
constexpr int kMaxAttributeChunks = 4096;
constexpr std::int64_t kMaxFileBytes = std::int64_t{2} << 30;

// Closes an HDF5 handle with the matching close function when it leaves scope.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) closer_(id_);
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer closer_;
};

void silence_hdf5_errors() {
  // The library prints its error stack to stderr by default; we report our own messages instead.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : path) {
    if (c == '/') {
      if (!part.empty()) parts.push_back(std::move(part));
      part.clear();
    } else {
      part += c;
    }
  }
  if (!part.empty()) parts.push_back(std::move(part));
  return parts;
}

// H5Lexists needs every parent to exist, so walk the path one link at a time. Every link on the
// way must stay inside the file: an external (or user-defined) link would make HDF5 open another
// file of the host and hand its data over as weights.
bool link_exists(hid_t file, const std::string& path) {
  std::string prefix;
  for (const std::string& part : split_path(path)) {
    if (part == "." || part == "..") return false;
    prefix += "/" + part;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    H5L_info_t info;
    if (H5Lget_info(file, prefix.c_str(), &info, H5P_DEFAULT) < 0) return false;
    if (info.type != H5L_TYPE_HARD && info.type != H5L_TYPE_SOFT) {
      fail(ErrorCode::kUnsafeArchive,
           "'" + prefix + "' in the HDF5 file is an external link to another file; EdgeOpt reads weights only from the model file itself",
           "save the model again with model.save(...) so that all its weights are inside the file");
    }
  }
  return true;
}

H5I_type_t object_type(hid_t file, const std::string& path) {
  if (path.empty() || path == "/") return H5I_GROUP;
  if (!link_exists(file, path)) return H5I_BADID;
  Handle obj(H5Oopen(file, path.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj.valid()) return H5I_BADID;
  return H5Iget_type(obj.get());
}

std::string object_name(const std::string& path) { return path.empty() ? std::string("/") : path; }

bool checked_mul(std::int64_t a, std::int64_t b, std::int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

std::uint64_t little_endian(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// HDF5 1.10 parses global heap collections ("GCOL", where variable-length strings live)
// without bounds checks: a crafted one makes it spin forever or read out of bounds. Check every
// collection is well formed, as HDF5 writes them, before the library sees the file.
void refuse_damaged_heaps(std::string_view bytes, const std::string& source) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  if (n < 16) return;
  // Size of lengths: superblock v0/v1 at byte 14, v2/v3 at byte 10.
  const unsigned version = data[8];
  const std::size_t length_size = version <= 1 ? data[14] : data[10];
  if (length_size != 2 && length_size != 4 && length_size != 8) {
    fail(ErrorCode::kCorruptFile, source + ": HDF5 superblock is damaged", "re-save the model and copy it again");
  }
  const std::size_t header = 8 + length_size;  // per collection and per object
  auto damaged = [&](std::size_t at) {
    fail(ErrorCode::kCorruptFile, source + ": HDF5 global heap at byte " + std::to_string(at) + " is damaged",
         "re-save the model and copy it again");
  };
  for (std::size_t at = bytes.find("GCOL"); at != std::string_view::npos && at + header <= n; at = bytes.find("GCOL", at + 1)) {
    if (data[at + 4] != 1) continue;
    const std::uint64_t claimed = little_endian(data + at + 8, static_cast<int>(length_size));
    if (claimed < header || claimed > n - at) damaged(at);
    const std::size_t end = at + static_cast<std::size_t>(claimed);
    const std::uint64_t max_index = (claimed - header) / header + 1;
    std::size_t p = at + header;
    while (p + header <= end) {
      const std::uint64_t index = little_endian(data + p, 2);
      const std::uint64_t size = little_endian(data + p + 8, static_cast<int>(length_size));
      if (index == 0) {
        if (size != end - p) damaged(at);  // free space: always the exact remainder
        break;
      }
      if (index > max_index || size > end - p) damaged(at);
      const std::uint64_t need = header + ((size + 7) / 8) * 8;
      if (need > end - p) damaged(at);
      p += static_cast<std::size_t>(need);
    }
  }
}

}  // namespace

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

Hdf5File Hdf5File::open_path(const std::string& path, const std::string& source) {
  // Read the file whole so it goes through the same checks as an in-memory image.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(ErrorCode::kIo, source + ": cannot be read", "check the file's permissions");
  const std::streamoff size = in.tellg();
  if (size < 0 || size > kMaxFileBytes) {
    fail(ErrorCode::kUnsupportedFormat, source + ": larger than " + std::to_string(kMaxFileBytes) + " bytes",
         "a model this large is not an edge model; check the file");
  }
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  if (in.gcount() != size) fail(ErrorCode::kIo, source + ": could not be read completely");
  return open_image(bytes, source);
}

Hdf5File Hdf5File::open_image(std::string_view bytes, const std::string& source) {
  std::lock_guard lock(hdf5_mutex());
  silence_hdf5_errors();
  static constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  // HDF5 looks for its signature at 0, 512, 1024, ...; Keras never writes a user block.
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) {
    fail(ErrorCode::kCorruptFile, source + ": not an HDF5 file", "the weights must be an HDF5 file written by Keras");
  }
  refuse_damaged_heaps(bytes, source);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 1 << 20, 0) < 0 ||
      H5Pset_file_image(fapl.get(), const_cast<char*>(bytes.data()), bytes.size()) < 0) {
    fail(ErrorCode::kInternal, source + ": cannot set up an in-memory HDF5 file");
  }
  const hid_t file = H5Fopen("edgeopt-in-memory.h5", H5F_ACC_RDONLY, fapl.get());
  if (file < 0) {
    fail(ErrorCode::kCorruptFile, source + ": HDF5 data cannot be opened (corrupt or truncated)",
         "re-save the model with model.save(...) and copy it again");
  }
  return Hdf5File(file, source);
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept : file_(std::exchange(other.file_, -1)), source_(std::move(other.source_)) {}

Hdf5File::~Hdf5File() {
  if (file_ >= 0) {
    std::lock_guard lock(hdf5_mutex());
    H5Fclose(file_);
  }
}

bool Hdf5File::has_group(const std::string& path) const {
  std::lock_guard lock(hdf5_mutex());
  return object_type(file_, path) == H5I_GROUP;
}

bool Hdf5File::has_dataset(const std::string& path) const {
  std::lock_guard lock(hdf5_mutex());
  return object_type(file_, path) == H5I_DATASET;
}

bool Hdf5File::has_attribute(const std::string& object_path, const std::string& name) const {
  std::lock_guard lock(hdf5_mutex());
  const std::string obj = object_name(object_path);
  if (object_type(file_, obj) == H5I_BADID) return false;
  return H5Aexists_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

namespace {

struct ChildList {
  std::vector<std::string>* names;
  std::size_t limit;
};

herr_t collect_child(hid_t, const char* name, const H5L_info_t*, void* data) {
  auto* list = static_cast<ChildList*>(data);
  if (list->names->size() >= list->limit) return 1;  // stop iterating
  list->names->emplace_back(name);
  return 0;
}

}  // namespace

std::vector<std::string> Hdf5File::children(const std::string& group_path, std::size_t limit) const {
  std::lock_guard lock(hdf5_mutex());
  std::vector<std::string> names;
  const std::string path = object_name(group_path);
  if (object_type(file_, path) != H5I_GROUP) return names;
  Handle group(H5Gopen2(file_, path.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.valid()) return names;
  ChildList list{&names, limit};
  hsize_t next = 0;
  if (H5Literate(group.get(), H5_INDEX_NAME, H5_ITER_INC, &next, collect_child, &list) < 0) {
    fail(ErrorCode::kCorruptFile, source_ + ": group '" + path + "' cannot be listed (corrupt file)");
  }
  return names;
}

std::optional<std::vector<std::string>> Hdf5File::string_attribute(const std::string& object_path,
                                                                   const std::string& name) const {
  std::lock_guard lock(hdf5_mutex());
  if (auto whole = read_one_string_attribute(object_path, name)) return whole;
  // Keras writes lists too long for an object header as name0, name1, ...
  std::vector<std::string> joined;
  bool found = false;
  for (int chunk = 0; chunk < kMaxAttributeChunks; ++chunk) {
    auto part = read_one_string_attribute(object_path, name + std::to_string(chunk));
    if (!part) break;
    found = true;
    joined.insert(joined.end(), std::make_move_iterator(part->begin()), std::make_move_iterator(part->end()));
  }
  if (!found) return std::nullopt;
  return joined;
}

std::optional<std::vector<std::string>> Hdf5File::read_one_string_attribute(const std::string& object_path,
                                                                            const std::string& name) const {
  const std::string obj = object_name(object_path);
  const std::string where = source_ + ": attribute '" + name + "' of '" + obj + "'";
  if (object_type(file_, obj) == H5I_BADID) return std::nullopt;
  if (H5Aexists_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT) <= 0) return std::nullopt;
  Handle attr(H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.valid()) fail(ErrorCode::kCorruptFile, where + " cannot be opened");
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (!type.valid() || !space.valid()) fail(ErrorCode::kCorruptFile, where + " has no readable type");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (rank < 0 || rank > 1 || count < 0) fail(ErrorCode::kCorruptFile, where + " is not a scalar or a list");
  if (H5Tget_class(type.get()) != H5T_STRING) {
    // h5py stores an empty list as an empty float64 array.
    if (count == 0) return std::vector<std::string>{};
    fail(ErrorCode::kCorruptFile, where + " is not a string");
  }
  const auto n = static_cast<std::size_t>(count);
  std::vector<std::string> out;
  if (n == 0) return out;
  const htri_t variable = H5Tis_variable_str(type.get());
  if (variable < 0) fail(ErrorCode::kCorruptFile, where + " has a broken string type");
  if (variable > 0) {
    if (static_cast<std::int64_t>(n) > kMaxAttributeBytes / 8) fail(ErrorCode::kCorruptFile, where + " is too large");
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!mem.valid() || H5Tset_size(mem.get(), H5T_VARIABLE) < 0 ||
        H5Tset_cset(mem.get(), H5Tget_cset(type.get())) < 0) {
      fail(ErrorCode::kInternal, where + ": cannot build a string type");
    }
    std::vector<char*> ptrs(n, nullptr);
    if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0) fail(ErrorCode::kCorruptFile, where + " cannot be read");
    std::int64_t total = 0;
    for (char* p : ptrs) {
      const std::size_t len = p ? std::strlen(p) : 0;
      total += static_cast<std::int64_t>(len);
      if (total <= kMaxAttributeBytes) out.emplace_back(p ? p : "", len);
    }
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
#endif
    if (total > kMaxAttributeBytes) fail(ErrorCode::kCorruptFile, where + " is too large");
    return out;
  }
  const std::size_t width = H5Tget_size(type.get());
  std::int64_t bytes = 0;
  if (width == 0 || !checked_mul(static_cast<std::int64_t>(width), static_cast<std::int64_t>(n), bytes) ||
      bytes > kMaxAttributeBytes) {
    fail(ErrorCode::kCorruptFile, where + " has an impossible size");
  }
  std::vector<char> buffer(static_cast<std::size_t>(bytes));
  if (H5Aread(attr.get(), type.get(), buffer.data()) < 0) fail(ErrorCode::kCorruptFile, where + " cannot be read");
  for (std::size_t i = 0; i < n; ++i) {
    const char* begin = buffer.data() + i * width;
    std::size_t len = 0;
    while (len < width && begin[len] != '\0') ++len;
    std::string s(begin, len);
    if (H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD) {
      while (!s.empty() && s.back() == ' ') s.pop_back();
    }
    out.push_back(std::move(s));
  }
  return out;
}

ir::Shape Hdf5File::dataset_shape(const std::string& path) const {
  std::lock_guard lock(hdf5_mutex());
  const std::string where = source_ + ": dataset '" + path + "'";
  if (object_type(file_, path) != H5I_DATASET) fail(ErrorCode::kCorruptFile, where + " is missing");
  Handle dset(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset.valid()) fail(ErrorCode::kCorruptFile, where + " cannot be opened");
  Handle space(H5Dget_space(dset.get()), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0 || rank > kMaxRank) fail(ErrorCode::kCorruptFile, where + " has an unreadable shape");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
    fail(ErrorCode::kCorruptFile, where + " has an unreadable shape");
  }
  ir::Shape shape;
  for (hsize_t d : dims) {
    if (d > static_cast<hsize_t>(kMaxDatasetElements)) fail(ErrorCode::kCorruptFile, where + " is impossibly large");
    shape.push_back(static_cast<std::int64_t>(d));
  }
  return shape;
}

Hdf5Tensor Hdf5File::read_dataset(const std::string& path) const {
  std::lock_guard lock(hdf5_mutex());
  const std::string where = source_ + ": dataset '" + path + "'";
  Hdf5Tensor tensor;
  tensor.name = path;
  tensor.shape = dataset_shape(path);
  std::int64_t elements = 1;
  for (auto d : tensor.shape) {
    if (!checked_mul(elements, d, elements) || elements > kMaxDatasetElements) {
      fail(ErrorCode::kCorruptFile, where + " is impossibly large");
    }
  }
  Handle dset(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  Handle type(dset.valid() ? H5Dget_type(dset.get()) : -1, H5Tclose);
  if (!type.valid()) fail(ErrorCode::kCorruptFile, where + " has no readable type");
  const H5T_class_t type_class = H5Tget_class(type.get());
  if (type_class != H5T_FLOAT && type_class != H5T_INTEGER) {
    fail(ErrorCode::kCorruptFile, where + " is not numeric", "Keras weights are float arrays; the file is damaged");
  }
  // External storage (raw data in another file) and virtual datasets (data mapped from other
  // files) would read host files into the model: weights come only from the file itself.
  Handle dcpl(H5Dget_create_plist(dset.get()), H5Pclose);
  if (!dcpl.valid()) fail(ErrorCode::kCorruptFile, where + " has a broken layout");
  if (H5Pget_layout(dcpl.get()) == H5D_VIRTUAL || H5Pget_external_count(dcpl.get()) != 0) {
    fail(ErrorCode::kUnsafeArchive,
         where + (H5Pget_layout(dcpl.get()) == H5D_VIRTUAL ? " is a virtual dataset mapped from other files"
                                                            : " keeps its data in an external file") +
             "; EdgeOpt reads weights only from the model file itself",
         "save the model again with model.save(...) so that all its weights are inside the file");
  }
  if (elements == 0) return tensor;
  // A dataset may claim any shape; make it prove the bytes are there before we allocate.
  const int filters = dcpl.valid() ? H5Pget_nfilters(dcpl.get()) : -1;
  const auto stored = static_cast<std::int64_t>(H5Dget_storage_size(dset.get()));
  const auto width = static_cast<std::int64_t>(H5Tget_size(type.get()));
  std::int64_t needed = 0;
  if (filters < 0 || width <= 0 || !checked_mul(elements, width, needed)) {
    fail(ErrorCode::kCorruptFile, where + " has a broken layout");
  }
  const bool compressed = filters > 0;
  if (stored <= 0 || (!compressed && stored < needed) || (compressed && needed / 1024 > stored)) {
    fail(ErrorCode::kCorruptFile, where + " claims " + std::to_string(elements) + " values but stores " +
                                      std::to_string(stored) + " bytes (truncated file?)",
         "re-save the model and copy it again");
  }
  tensor.data.resize(static_cast<std::size_t>(elements));
  if (H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tensor.data.data()) < 0) {
    fail(ErrorCode::kCorruptFile, where + " cannot be read (corrupt or truncated file)",
         "re-save the model and copy it again");
  }
  return tensor;
}

}  // namespace edgeopt::keras_import
