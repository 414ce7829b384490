// Torch-free reading of the ZIP archives PyTorch writes (torch.jit.save and torch.save): the entry
// list, the file-format version record and EdgeOpt's optional extra file. Nothing is unpickled.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace edgeopt::torchscript {

// Names of all entries of a ZIP file, in central-directory order.
Result<std::vector<std::string>> zip_entry_names(const std::string& path);

// One entry's bytes, refused (kCorruptFile) when it is larger than `max_bytes`.
Result<std::string> read_zip_entry(const std::string& path, const std::string& entry, std::size_t max_bytes);

struct ArchiveInfo {
  std::string root;                                 // the archive's top folder, e.g. "archive" or "resnet18"
  bool has_code = false;                            // <root>/code/ exists: a TorchScript program, not a bare pickle
  bool has_constants = false;                       // <root>/constants.pkl exists (TorchScript only)
  bool has_data_pickle = false;                     // <root>/data.pkl exists (both TorchScript and torch.save)
  std::optional<std::int64_t> file_format_version;  // <root>/version, when present and a number
  std::optional<std::string> edgeopt_json;          // <root>/extra/edgeopt.json
};

Result<ArchiveInfo> read_archive_info(const std::string& path);

// What an archive must pass before LibTorch may load it (nothing is run or unpickled here):
//   - no class in code/ defines __setstate__ or __getstate__ (LibTorch runs __setstate__ while
//     loading), and every other method is forward or called somewhere in the code;
//   - data.pkl and constants.pkl hold only the pickle opcodes TorchScript writes, every storage
//     they name is an entry of exactly numel x element-size bytes, and every tensor built on a
//     storage fits inside it (offset, sizes, strides);
//   - no entry inflates more than 100-fold past 16 MiB, and all storages together stay within
//     max_storage_bytes.
// kCorruptFile or kUnsafeArchive otherwise, naming the entry.
Status check_archive(const std::string& path, std::uint64_t max_storage_bytes = 16ULL << 30);
Status check_archive_bytes(std::string_view zip_bytes, const std::string& source, std::uint64_t max_storage_bytes = 16ULL << 30);

// Parses the extra file `{"input_shape": [1, 3, 224, 224]}` written with
// torch.jit.save(m, path, _extra_files={"edgeopt.json": json.dumps({"input_shape": [...]})}).
Result<std::vector<std::int64_t>> parse_edgeopt_extra(const std::string& json_text, const std::string& source);

}  // namespace edgeopt::torchscript
