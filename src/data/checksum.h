// Streaming SHA-256 and MD5 for checking downloaded files (MD5 only because some datasets publish
// nothing else). Self-contained so the core links no crypto library.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgeopt::data {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::string hex_digest();  // finishes the hash; call once

 private:
  void block(const std::uint8_t* data);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::uint64_t length_ = 0;  // bytes seen
};

class Md5 {
 public:
  Md5();
  void update(std::string_view bytes);
  std::string hex_digest();  // finishes the hash; call once

 private:
  void block(const std::uint8_t* data);
  std::array<std::uint32_t, 4> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::uint64_t length_ = 0;
};

}  // namespace edgeopt::data
