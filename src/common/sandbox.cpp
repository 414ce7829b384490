#include "common/sandbox.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define EDGEOPT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGEOPT_UNDER_ASAN 1
#endif
#endif
#ifndef EDGEOPT_UNDER_ASAN
#define EDGEOPT_UNDER_ASAN 0
#endif

namespace edgeopt::sandbox {
namespace {

// Landlock's ABI, declared here: Debian 12's kernel headers (6.1) predate the newer access
// rights, and the kernel tells us at run time which ones it knows.
constexpr std::uint64_t kFsExecute = 1ULL << 0, kFsWriteFile = 1ULL << 1, kFsReadFile = 1ULL << 2, kFsReadDir = 1ULL << 3;
constexpr std::uint64_t kFsAbi1 = (1ULL << 13) - 1;  // execute .. make_sym
constexpr std::uint64_t kFsRefer = 1ULL << 13, kFsTruncate = 1ULL << 14, kFsIoctlDev = 1ULL << 15;
constexpr std::uint64_t kNetBindTcp = 1ULL << 0, kNetConnectTcp = 1ULL << 1;
constexpr std::uint64_t kScopeAbstractUnixSocket = 1ULL << 0, kScopeSignal = 1ULL << 1;
constexpr const char* kOutOfMemory = "out of memory while processing the input";
constexpr unsigned kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;

struct RulesetAttr {
  std::uint64_t handled_access_fs = 0, handled_access_net = 0, scoped = 0;
};
struct __attribute__((packed)) PathBeneathAttr {
  std::uint64_t allowed_access;
  std::int32_t parent_fd;
};

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

int landlock_abi() {
  static const int abi = [] {
    const long v = syscall(__NR_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
    return v < 0 ? 0 : static_cast<int>(v);
  }();
  return abi;
}

thread_local bool g_inside = false;
std::atomic<bool> g_noted{false};

bool write_all(int fd, std::string_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Bytes of address space the process maps now (the first field of /proc/self/statm, in pages).
unsigned long long mapped_bytes() {
  std::ifstream statm("/proc/self/statm");
  unsigned long long pages = 0;
  statm >> pages;
  return pages * static_cast<unsigned long long>(sysconf(_SC_PAGESIZE));
}

// Returns false (with errno) when the kernel refused; true when Landlock is on or absent.
bool apply_landlock(const Policy& policy) {
  const int abi = landlock_abi();
  if (abi < 1) return true;
  RulesetAttr attr;
  attr.handled_access_fs = kFsAbi1 | (abi >= 2 ? kFsRefer : 0) | (abi >= 3 ? kFsTruncate : 0) | (abi >= 5 ? kFsIoctlDev : 0);
  attr.handled_access_net = abi >= 4 ? (kNetBindTcp | kNetConnectTcp) : 0;
  attr.scoped = abi >= 6 ? (kScopeAbstractUnixSocket | kScopeSignal) : 0;
  const std::size_t attr_size = abi >= 6 ? sizeof(RulesetAttr) : abi >= 4 ? 2 * sizeof(std::uint64_t) : sizeof(std::uint64_t);
  const int ruleset = static_cast<int>(syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0U));
  if (ruleset < 0) return false;
  auto allow = [&](const std::string& path, std::uint64_t access) {
    const int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return;  // what does not exist cannot be read anyway
    PathBeneathAttr rule{access, fd};
    syscall(__NR_landlock_add_rule, ruleset, kRulePathBeneath, &rule, 0U);
    ::close(fd);
  };
  for (const std::string& file : policy.read_files) allow(file, kFsReadFile);
  for (const std::string& dir : policy.read_dirs) allow(dir, kFsReadFile | kFsReadDir);
  const bool ok = syscall(__NR_landlock_restrict_self, ruleset, 0U) == 0;
  ::close(ruleset);
  return ok;
}

#if defined(__x86_64__)
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "the sandbox's seccomp filter knows x86-64 and AArch64"
#endif

// A classic BPF filter: the architecture must be ours; calls that reach outside the process
// (network, exec, new processes, debugging others, io_uring which bypasses seccomp, namespaces,
// kernel keys, BPF) fail with EPERM; clone is allowed only for threads.
bool apply_seccomp() {
  constexpr std::uint32_t kDeny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);
  const std::vector<int> denied = {
      __NR_socket, __NR_socketpair, __NR_connect, __NR_bind, __NR_listen, __NR_accept, __NR_accept4,
      __NR_execve, __NR_execveat, __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev,
      __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register, __NR_unshare, __NR_setns,
      __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_keyctl, __NR_add_key, __NR_request_key,
      __NR_bpf, __NR_perf_event_open, __NR_userfaultfd, __NR_open_by_handle_at, __NR_name_to_handle_at,
      __NR_kexec_load, __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_reboot, __NR_swapon,
      __NR_swapoff, __NR_pidfd_open, __NR_pidfd_getfd, __NR_pidfd_send_signal, __NR_kill,
#ifdef __NR_fork
      __NR_fork, __NR_vfork,
#endif
  };
  std::vector<sock_filter> prog;
  auto stmt = [&](std::uint16_t code, std::uint32_t k) { prog.push_back(BPF_STMT(code, k)); };
  auto jump = [&](std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) { prog.push_back(BPF_JUMP(code, k, jt, jf)); };
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
#if defined(__x86_64__)
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000U, 0, 1);  // the x32 ABI: a second number space
  stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
  for (int nr : denied) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, kDeny);
  }
  // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes glibc fall back to clone.
  jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
  jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]));  // the low half holds the flags
  jump(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 1, 0);
  stmt(BPF_RET | BPF_K, kDeny);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0;
}

std::string human_bytes(unsigned long long bytes) {
  if (bytes >= (1ULL << 30)) return std::to_string((bytes + (1ULL << 29)) >> 30) + " GiB";
  return std::to_string((bytes + (1ULL << 19)) >> 20) + " MiB";
}

// work() with every exception turned into an Error, as capture() does for plain values.
Result<std::string> guarded(const std::function<Result<std::string>()>& work) {
  Result<Result<std::string>> outer = capture([&] { return work(); });
  if (!outer) return outer.error();
  return std::move(outer).value();
}

[[noreturn]] void run_child(int fd, const std::function<Result<std::string>()>& work, const std::string& source, const Policy& policy) {
  g_inside = true;
  // Only the result pipe and the standard streams stay open: the parent's sockets, database and
  // files are none of the child's business.
  if (fd > 3) syscall(SYS_close_range, 3U, static_cast<unsigned>(fd - 1), 0U);
  syscall(SYS_close_range, static_cast<unsigned>(fd + 1), ~0U, 0U);
  std::signal(SIGXFSZ, SIG_IGN);  // a write past RLIMIT_FSIZE fails with EFBIG instead of killing
  const rlimit cpu{policy.cpu_seconds, policy.cpu_seconds};
  setrlimit(RLIMIT_CPU, &cpu);
  const rlimit fsize{0, 0};
  setrlimit(RLIMIT_FSIZE, &fsize);
#if !EDGEOPT_UNDER_ASAN
  // Not under AddressSanitizer, whose shadow memory needs far more address space than any limit.
  const unsigned long long limit = mapped_bytes() + policy.memory_bytes;
  const rlimit mem{limit, limit};
  setrlimit(RLIMIT_AS, &mem);
#endif
  std::string message;
  const bool confined = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && apply_landlock(policy) && apply_seccomp();
  if (!confined) {
    message = "E" + nlohmann::json{{"code", static_cast<int>(ErrorCode::kInternal)},
                                   {"message", std::string("cannot confine the parsing process: ") + std::strerror(errno)},
                                   {"hint", "the kernel refused Landlock or seccomp; please report this with your kernel version"}}
                        .dump();
  } else {
    Result<std::string> result = guarded(work);
    if (result.ok()) {
      message = "G" + std::move(result).value();
    } else {
      Error e = result.error();
      if (e.message == kOutOfMemory) {  // capture()'s words for std::bad_alloc: here it is our limit
        e = Error{ErrorCode::kCorruptFile, source + ": " + policy.what + " needs more memory than the limit of " + human_bytes(policy.memory_bytes) + " (set by EDGEOPT_IMPORT_MEMORY_MB)", policy.hint};
      }
      message = "E" + nlohmann::json{{"code", static_cast<int>(e.code)}, {"message", e.message}, {"hint", e.hint}}.dump();
    }
  }
  _exit(write_all(fd, message) ? 0 : 1);  // _exit: no atexit handlers or static destructors of the parent's state
}


}  // namespace

unsigned long long memory_budget_for(unsigned long long file_bytes) {
  if (const char* env = std::getenv("EDGEOPT_IMPORT_MEMORY_MB"); env && std::atoll(env) > 0) {
    return static_cast<unsigned long long>(std::atoll(env)) << 20;
  }
  return (1ULL << 30) + 4 * std::min(file_bytes, 16ULL << 30);
}

bool inside() { return g_inside; }

std::string capabilities() {
  const int abi = landlock_abi();
  std::string s = abi > 0 ? "landlock abi " + std::to_string(abi) : "no landlock (the kernel lacks it: the parsing process may read files the user can)";
  return s + ", seccomp, rlimits (address space, cpu, file size), wall clock";
}

Result<std::string> run(const std::function<Result<std::string>()>& work, const std::string& source, const Policy& policy) {
  if (g_inside) return guarded(work);
  if (landlock_abi() < 1 && !g_noted.exchange(true)) {
    std::fprintf(stderr, "edgeopt: note: %s\n", capabilities().c_str());
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Error{ErrorCode::kIo, std::string("cannot create a pipe: ") + std::strerror(errno)};
  std::fflush(nullptr);  // nothing buffered in the parent is written twice
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Error{ErrorCode::kIo, std::string("cannot start the parsing process: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    close(fds[0]);
    run_child(fds[1], work, source, policy);
  }
  close(fds[1]);
  // The parent enforces the wall-clock limit: a child stuck in a loop (or a lock) is killed.
  unsigned wall_seconds = policy.wall_seconds;
  if (const char* env = std::getenv("EDGEOPT_IMPORT_TIMEOUT_S"); env && std::atoi(env) > 0) wall_seconds = static_cast<unsigned>(std::atoi(env));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wall_seconds);
  std::string reply;
  std::string buffer(1 << 16, '\0');
  bool timed_out = false, too_big = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) continue;
    const ssize_t n = ::read(fds[0], buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (reply.size() + static_cast<std::size_t>(n) > policy.reply_limit) {
      too_big = true;
      break;
    }
    reply.append(buffer.data(), static_cast<std::size_t>(n));
  }
  close(fds[0]);
  if (timed_out || too_big) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Error{ErrorCode::kCorruptFile, source + ": " + policy.what + " took longer than the limit of " + std::to_string(wall_seconds) + " s", policy.hint};
  }
  if (too_big) {
    return Error{ErrorCode::kCorruptFile, source + ": " + policy.what + " produced more than the limit of " + human_bytes(policy.reply_limit), policy.hint};
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string why = sig == SIGXCPU ? "exceeded the CPU time limit of " + std::to_string(policy.cpu_seconds) + " s"
                      : sig == SIGSYS ? "attempted a forbidden system call"
                      : sig == SIGKILL ? "was killed (the memory limit of " + human_bytes(policy.memory_bytes) + " or the system's)"
                                       : "crashed the parser (signal " + std::to_string(sig) + ")";
    return Error{ErrorCode::kCorruptFile, source + ": " + policy.what + " " + why, policy.hint};
  }
  if (reply.empty() || (reply[0] != 'G' && reply[0] != 'E')) {
    return Error{ErrorCode::kCorruptFile,
                 source + ": " + policy.what + " ended without a result (exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")",
                 policy.hint};
  }
  if (reply[0] == 'G') {
    reply.erase(0, 1);
    return reply;
  }
  try {
    const auto j = nlohmann::json::parse(reply.substr(1));
    return Error{static_cast<ErrorCode>(j.at("code").get<int>()), j.at("message").get<std::string>(), j.at("hint").get<std::string>()};
  } catch (const std::exception&) {
    return Error{ErrorCode::kInternal, source + ": the parsing process sent an unreadable reply"};
  }
}

}  // namespace edgeopt::sandbox
