// Running the parse of an untrusted file (a model, a dataset) in a confined child process.
//
// The child is forked, then, before it touches the file:
//   - every file descriptor but stdin/stdout/stderr and the result pipe is closed;
//   - Landlock (when the kernel has it) allows reading only the files and folders of the policy
//     and nothing else: no writes, no creation, no execution anywhere; no TCP (Landlock ABI 4+),
//     no signals to or abstract sockets of other processes (ABI 6+);
//   - seccomp refuses new sockets, exec, fork (threads stay allowed), ptrace, io_uring and other
//     ways out, on every kernel since 3.17;
//   - setrlimit caps address space (a budget above what the child already maps), CPU time and
//     file size (0: the child writes no file even where Landlock is missing).
// The parent kills the child at the wall-clock limit, reads at most reply_limit bytes, and turns a
// crash, hang or limit into an Error naming the limit. Nested calls (a sandboxed parse that calls
// another) run inline in the same child.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace edgeopt::sandbox {

struct Policy {
  std::vector<std::string> read_files;  // files the child may read
  std::vector<std::string> read_dirs;   // folders the child may list and read, with everything beneath
  unsigned cpu_seconds = 300;
  unsigned wall_seconds = 600;                          // EDGEOPT_IMPORT_TIMEOUT_S overrides it
  unsigned long long memory_bytes = 2ULL << 30;          // address space the child may add to what it maps at fork
  unsigned long long reply_limit = 8ULL << 30;           // bytes the parent accepts from the child
  std::string what = "reading the file";                 // for messages: "<source>: <what> took longer than ..."
  std::string hint = "the file is damaged or crafted; save it again from its framework. Nothing else was affected";
};

// A budget for parsing a file of file_bytes: a fixed allowance plus a multiple of its size.
unsigned long long memory_budget_for(unsigned long long file_bytes);

// Runs work() in a confined child; its bytes come back, or its Error, or an Error for a crash or limit.
Result<std::string> run(const std::function<Result<std::string>()>& work, const std::string& source, const Policy& policy);

// True inside a sandboxed child (where run() calls work inline).
bool inside();

// What this kernel lets the sandbox enforce, e.g. "landlock abi 7, seccomp, rlimits"; when
// Landlock is missing it says so, and run() prints that note once on stderr.
std::string capabilities();

}  // namespace edgeopt::sandbox
