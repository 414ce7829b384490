// The sandbox for untrusted parses (common/sandbox.h), tried from inside: what a confined child
// can and cannot do, and how its crashes and limits come back.
#include "common/sandbox.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace edgeopt {
namespace {

namespace fs = std::filesystem;

class Sandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgeopt-sandbox-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "allowed");
    std::ofstream(dir_ / "allowed" / "model.bin") << "model bytes";
    std::ofstream(dir_ / "secret.txt") << "secret";
  }
  void TearDown() override { fs::remove_all(dir_); }

  sandbox::Policy policy() const {
    sandbox::Policy p;
    p.read_files.push_back((dir_ / "allowed" / "model.bin").string());
    p.wall_seconds = 20;
    p.memory_bytes = 512ULL << 20;
    return p;
  }
  static bool has_landlock() { return sandbox::capabilities().rfind("landlock abi", 0) == 0; }

  // What errno a call in the child ended with ("0" when it succeeded).
  Result<std::string> in_child(const std::function<int()>& call, const sandbox::Policy& p) {
    return sandbox::run([&]() -> Result<std::string> { return std::to_string(call() < 0 ? errno : 0); }, "test", p);
  }

  fs::path dir_;
};

TEST_F(Sandbox, ReturnsTheChildsBytesAndErrors) {
  auto ok = sandbox::run([]() -> Result<std::string> { return std::string("hello\0world", 11); }, "test", policy());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok.value(), std::string("hello\0world", 11));
  auto bad = sandbox::run([]() -> Result<std::string> { return Error{ErrorCode::kCorruptFile, "broken", "fix it"}; }, "test", policy());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kCorruptFile);
  EXPECT_EQ(bad.error().message, "broken");
  EXPECT_EQ(bad.error().hint, "fix it");
}

TEST_F(Sandbox, ReadsOnlyWhatThePolicyAllows) {
  if (!has_landlock()) GTEST_SKIP() << "this kernel has no Landlock: " << sandbox::capabilities();
  const std::string allowed = (dir_ / "allowed" / "model.bin").string();
  const std::string secret = (dir_ / "secret.txt").string();
  auto open_for_read = [](const std::string& path) {
    return [path] {
      const int fd = ::open(path.c_str(), O_RDONLY);
      if (fd >= 0) ::close(fd);
      return fd;
    };
  };
  EXPECT_EQ(in_child(open_for_read(allowed), policy()).value(), "0");
  EXPECT_EQ(in_child(open_for_read(secret), policy()).value(), std::to_string(EACCES));
  EXPECT_EQ(in_child(open_for_read("/etc/passwd"), policy()).value(), std::to_string(EACCES));
  sandbox::Policy folder = policy();
  folder.read_dirs.push_back(dir_.string());
  EXPECT_EQ(in_child(open_for_read(secret), folder).value(), "0");
}

TEST_F(Sandbox, WritesNothing) {
  const std::string fresh = (dir_ / "allowed" / "new.bin").string();
  const std::string model = (dir_ / "allowed" / "model.bin").string();
  sandbox::Policy p = policy();
  p.read_dirs.push_back(dir_.string());  // even where it may read
  EXPECT_NE(in_child([&] { return ::open(fresh.c_str(), O_WRONLY | O_CREAT, 0644); }, p).value(), "0");
  EXPECT_NE(in_child([&] { return ::open(model.c_str(), O_WRONLY); }, p).value(), "0");
  EXPECT_NE(in_child([&] { return ::unlink(model.c_str()); }, p).value(), "0");
  EXPECT_NE(in_child([&] { return ::mkdir((dir_ / "d").c_str(), 0755); }, p).value(), "0");
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_TRUE(fs::exists(model));
  std::ifstream in(model);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "model bytes");
}

TEST_F(Sandbox, NoNetworkNoExecNoFork) {
  EXPECT_EQ(in_child([] { return ::socket(AF_INET, SOCK_STREAM, 0); }, policy()).value(), std::to_string(EPERM));
  EXPECT_EQ(in_child([] { return ::socket(AF_UNIX, SOCK_STREAM, 0); }, policy()).value(), std::to_string(EPERM));
  EXPECT_EQ(in_child([] { return ::execl("/bin/true", "true", nullptr); }, policy()).value(), std::to_string(EPERM));
  EXPECT_EQ(in_child([] { return static_cast<int>(::fork()); }, policy()).value(), std::to_string(EPERM));
  EXPECT_EQ(in_child([] { return ::kill(::getppid(), SIGTERM); }, policy()).value(), std::to_string(EPERM));
  // Threads still work (LibTorch and libzip may start them).
  auto threads = sandbox::run(
      []() -> Result<std::string> {
        int value = 0;
        std::thread t([&] { value = 42; });
        t.join();
        return std::to_string(value);
      },
      "test", policy());
  ASSERT_TRUE(threads.ok()) << threads.error().message;
  EXPECT_EQ(threads.value(), "42");
}

TEST_F(Sandbox, LimitsBecomeErrorsNamingThem) {
  sandbox::Policy p = policy();
  p.wall_seconds = 2;
  auto hang = sandbox::run([]() -> Result<std::string> { for (;;) ::pause(); }, "hang.bin", p);
  ASSERT_FALSE(hang.ok());
  EXPECT_NE(hang.error().message.find("longer than the limit of 2 s"), std::string::npos) << hang.error().message;

  auto big = sandbox::run(
      []() -> Result<std::string> {
        std::vector<char> huge(std::size_t{2} << 30, 1);
        return std::to_string(huge[12345]);
      },
      "big.bin", policy());
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("memory"), std::string::npos) << big.error().message;

  auto crash = sandbox::run([]() -> Result<std::string> { std::raise(SIGSEGV); return std::string(); }, "crash.bin", policy());
  ASSERT_FALSE(crash.ok());
  EXPECT_NE(crash.error().message.find("signal 11"), std::string::npos) << crash.error().message;

  sandbox::Policy small = policy();
  small.reply_limit = 1000;
  auto chatty = sandbox::run([]() -> Result<std::string> { return std::string(100000, 'x'); }, "chatty.bin", small);
  ASSERT_FALSE(chatty.ok());
  EXPECT_NE(chatty.error().message.find("more than the limit"), std::string::npos) << chatty.error().message;
}

TEST_F(Sandbox, NestedRunsInline) {
  auto outer = sandbox::run(
      [&]() -> Result<std::string> {
        if (!sandbox::inside()) return Error{ErrorCode::kInternal, "not inside"};
        auto inner = sandbox::run([]() -> Result<std::string> { return std::string("inner"); }, "inner", policy());
        if (!inner) return inner.error();
        return "outer+" + inner.value();
      },
      "outer", policy());
  ASSERT_TRUE(outer.ok()) << outer.error().message;
  EXPECT_EQ(outer.value(), "outer+inner");
  EXPECT_FALSE(sandbox::inside());
}

}  // namespace
}  // namespace edgeopt
