#include "importers/torchscript/torchscript_archive.h"

#include <zip.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <nlohmann/json.hpp>

namespace edgeopt::torchscript {
namespace {

struct ZipCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

ZipPtr open_zip(const std::string& path) {
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY, &code);
  if (archive == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail(ErrorCode::kCorruptFile, "'" + path + "' is not a readable ZIP archive: " + why,
         "the file may be truncated; save or download it again");
  }
  return ZipPtr(archive);
}

}  // namespace

Result<std::vector<std::string>> zip_entry_names(const std::string& path) {
  return capture([&] {
    ZipPtr archive = open_zip(path);
    const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
    std::vector<std::string> names;
    for (zip_int64_t i = 0; i < count; ++i) {
      const char* name = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
      if (name != nullptr) names.emplace_back(name);
    }
    return names;
  });
}

Result<std::string> read_zip_entry(const std::string& path, const std::string& entry, std::size_t max_bytes) {
  return capture([&] {
    ZipPtr archive = open_zip(path);
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat(archive.get(), entry.c_str(), 0, &stat) != 0 || (stat.valid & ZIP_STAT_SIZE) == 0) {
      fail(ErrorCode::kNotFound, "'" + path + "' has no entry '" + entry + "'");
    }
    if (stat.size > max_bytes) {
      fail(ErrorCode::kCorruptFile, "entry '" + entry + "' of '" + path + "' is " + std::to_string(stat.size) +
                                        " bytes; at most " + std::to_string(max_bytes) + " are expected");
    }
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen(archive.get(), entry.c_str(), 0), zip_fclose);
    if (!file) fail(ErrorCode::kCorruptFile, "cannot open entry '" + entry + "' of '" + path + "'");
    std::string bytes(static_cast<std::size_t>(stat.size), '\0');
    const zip_int64_t got = bytes.empty() ? 0 : zip_fread(file.get(), bytes.data(), bytes.size());
    if (got != static_cast<zip_int64_t>(bytes.size())) {
      fail(ErrorCode::kCorruptFile, "entry '" + entry + "' of '" + path + "' is damaged (short or failed read)",
           "the file may be truncated; save or download it again");
    }
    return bytes;
  });
}

Result<ArchiveInfo> read_archive_info(const std::string& path) {
  Result<std::vector<std::string>> names = zip_entry_names(path);
  if (!names) return names.error();
  ArchiveInfo info;
  // PyTorch puts every entry under one top folder; its name is free (the file's stem by default).
  for (const std::string& name : names.value()) {
    const auto slash = name.find('/');
    if (slash == std::string::npos || slash == 0) continue;
    const std::string root = name.substr(0, slash);
    const std::string rest = name.substr(slash + 1);
    if (rest == "data.pkl" || rest == "version" || rest == "constants.pkl" || rest.rfind("code/", 0) == 0) {
      if (info.root.empty()) info.root = root;
      if (root != info.root) continue;
      info.has_code = info.has_code || rest.rfind("code/", 0) == 0;
      info.has_constants = info.has_constants || rest == "constants.pkl";
      info.has_data_pickle = info.has_data_pickle || rest == "data.pkl";
    }
  }
  if (info.root.empty()) return info;
  const auto& all = names.value();
  auto has = [&](const std::string& entry) { return std::find(all.begin(), all.end(), entry) != all.end(); };
  if (has(info.root + "/version")) {
    Result<std::string> text = read_zip_entry(path, info.root + "/version", 64);
    if (!text) return text.error();
    std::string digits;
    for (char c : text.value()) {
      if (std::isdigit(static_cast<unsigned char>(c)))
        digits += c;
      else if (!std::isspace(static_cast<unsigned char>(c))) {
        digits.clear();
        break;
      }
    }
    if (!digits.empty() && digits.size() < 18) info.file_format_version = std::stoll(digits);
  }
  if (has(info.root + "/extra/edgeopt.json")) {
    Result<std::string> text = read_zip_entry(path, info.root + "/extra/edgeopt.json", 64 * 1024);
    if (!text) return text.error();
    info.edgeopt_json = text.value();
  }
  return info;
}

Result<std::vector<std::int64_t>> parse_edgeopt_extra(const std::string& json_text, const std::string& source) {
  const std::string hint =
      "write it as torch.jit.save(m, path, _extra_files={\"edgeopt.json\": '{\"input_shape\": [1, 3, 224, 224]}'})";
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Error{ErrorCode::kCorruptFile, source + ": extra/edgeopt.json is not a JSON object", hint};
  }
  const auto it = doc.find("input_shape");
  if (it == doc.end() || !it->is_array() || it->empty() || it->size() > 8) {
    return Error{ErrorCode::kCorruptFile, source + ": extra/edgeopt.json has no \"input_shape\" list of 1 to 8 sizes",
                 hint};
  }
  std::vector<std::int64_t> shape;
  for (const auto& dim : *it) {
    if (!dim.is_number_integer() || dim.get<std::int64_t>() <= 0 || dim.get<std::int64_t>() > (1 << 20)) {
      return Error{ErrorCode::kCorruptFile, source + ": extra/edgeopt.json \"input_shape\" must hold positive integers",
                   hint};
    }
    shape.push_back(dim.get<std::int64_t>());
  }
  return shape;
}

}  // namespace edgeopt::torchscript
