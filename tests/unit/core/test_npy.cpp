#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "common/npy.h"

namespace edgeopt {
namespace {

TEST(Npy, RoundTrips) {
  const auto path = (std::filesystem::temp_directory_path() / "edgeopt_npy_test.npy").string();
  NpyArray a{{2, 3}, {1, 2, 3, 4, 5, 6}};
  ASSERT_TRUE(write_npy(path, a).ok());
  auto b = read_npy(path);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->shape, a.shape);
  EXPECT_EQ(b->data, a.data);
  std::remove(path.c_str());
}

TEST(Npy, ReadsNumpyFiles) {
  auto f = read_npy(std::string(EDGEOPT_SOURCE_DIR) + "/tests/fuzz/corpus/npy/u1.npy");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->shape, (std::vector<std::int64_t>{6}));
  EXPECT_FLOAT_EQ(f->data[5], 5.0F);
}

TEST(Npy, RejectsBadInput) {
  EXPECT_EQ(parse_npy("", "x").error().code, ErrorCode::kCorruptFile);
  EXPECT_EQ(parse_npy("\x93NUMPY\x01\x00\xff\xff", "x").error().code, ErrorCode::kCorruptFile);
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
  std::string file = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header + "abc";
  const auto r = parse_npy(file, "short.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("short.npy"), std::string::npos);
}

}  // namespace
}  // namespace edgeopt
