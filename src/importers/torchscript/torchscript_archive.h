// Torch-free reading of the ZIP archives PyTorch writes (torch.jit.save and torch.save): the entry
// list, the file-format version record and EdgeOpt's optional extra file. Nothing is unpickled.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
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

// Parses the extra file `{"input_shape": [1, 3, 224, 224]}` written with
// torch.jit.save(m, path, _extra_files={"edgeopt.json": json.dumps({"input_shape": [...]})}).
Result<std::vector<std::int64_t>> parse_edgeopt_extra(const std::string& json_text, const std::string& source);

}  // namespace edgeopt::torchscript
