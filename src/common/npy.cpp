#include "common/npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace edgeopt {
namespace {

template <class T>
void convert(std::string_view body, std::size_t count, std::vector<float>& out) {
  out.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, body.data() + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

}  // namespace

Result<NpyArray> parse_npy(std::string_view bytes, const std::string& source) {
  return capture([&]() -> NpyArray {
    auto bad = [&](const std::string& why) {
      fail(ErrorCode::kCorruptFile, source + ": not a valid .npy file: " + why, "save it with numpy.save(path, array.astype('float32'))");
    };
    if (bytes.size() < 10 || bytes.substr(0, 6) != std::string_view("\x93NUMPY", 6)) bad("missing the \\x93NUMPY magic");
    const auto major = static_cast<unsigned char>(bytes[6]);
    std::size_t header_len = 0;
    std::size_t offset = 0;
    if (major == 1) {
      header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
      offset = 10;
    } else if (major == 2 || major == 3) {
      if (bytes.size() < 12) bad("truncated header");
      for (int i = 0; i < 4; ++i) header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
      offset = 12;
    } else {
      bad("unknown version " + std::to_string(major));
    }
    if (header_len > bytes.size() - offset) bad("truncated header");
    const std::string header(bytes.substr(offset, header_len));
    std::smatch m;
    if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([<>|=]?)([a-z])([0-9]+)'"))) bad("no dtype in header");
    const std::string endian = m[1];
    const std::string kind = m[2];
    const int width = std::stoi(m[3].str().substr(0, 3));
    if (endian == ">" && width > 1) bad("big-endian data is not supported");
    if (std::regex_search(header, std::regex("'fortran_order'\\s*:\\s*True"))) bad("Fortran order is not supported; use np.ascontiguousarray");
    if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)"))) bad("no shape in header");
    NpyArray array;
    std::stringstream dims(m[1].str());
    std::string item;
    std::size_t count = 1;
    while (std::getline(dims, item, ',')) {
      if (item.find_first_not_of(" ") == std::string::npos) continue;
      long long d = 0;
      try {
        d = std::stoll(item);
      } catch (const std::exception&) {
        bad("bad shape entry '" + item + "'");
      }
      if (d < 0 || d > (1LL << 31)) bad("bad dimension " + item);
      array.shape.push_back(d);
      count *= static_cast<std::size_t>(d);
      if (count > (1ULL << 31)) bad("array too large");
    }
    const std::string_view body = bytes.substr(offset + header_len);
    const std::size_t item_size = static_cast<std::size_t>(width);
    if (body.size() != count * item_size) bad("expected " + std::to_string(count * item_size) + " data bytes, found " + std::to_string(body.size()));
    if (kind == "f" && width == 4) convert<float>(body, count, array.data);
    else if (kind == "f" && width == 8) convert<double>(body, count, array.data);
    else if (kind == "u" && width == 1) convert<std::uint8_t>(body, count, array.data);
    else if (kind == "i" && width == 4) convert<std::int32_t>(body, count, array.data);
    else if (kind == "i" && width == 8) convert<std::int64_t>(body, count, array.data);
    else bad("dtype " + kind + std::to_string(width) + " is not supported (use float32)");
    return array;
  });
}

Result<NpyArray> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{ErrorCode::kNotFound, "cannot open '" + path + "'"};
  std::stringstream s;
  s << in.rdbuf();
  return parse_npy(s.str(), path);
}

Status write_npy(const std::string& path, const NpyArray& array) {
  std::string shape;
  for (auto d : array.shape) shape += std::to_string(d) + ",";
  if (array.shape.size() > 1) shape.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return Error{ErrorCode::kIo, "cannot write '" + path + "'"};
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
  out.write(len, 2);
  out << header;
  out.write(reinterpret_cast<const char*>(array.data.data()), static_cast<std::streamsize>(array.data.size() * sizeof(float)));
  if (!out) return Error{ErrorCode::kIo, "failed writing '" + path + "'"};
  return ok_status();
}

}  // namespace edgeopt
