// Error values for bad input. Library code returns Result<T>; programmer errors are asserts.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace edgeopt {

enum class ErrorCode {
  kInvalidArgument,   // a wrong option or request
  kNotFound,          // a file, dataset or name that does not exist
  kCorruptFile,       // a file of a known format that cannot be parsed
  kUnsupportedFormat, // a file whose format we do not read (or must not, like pickle)
  kUnsupportedOp,     // a model op we have no implementation for
  kShapeMismatch,     // shapes that do not agree
  kUnsafeArchive,     // a ZIP that tries to escape, link, or explode
  kIo,                // the OS refused a read or write
  kNetwork,           // a download failed or its checksum did not match
  kInternal,          // a bug: reported, never a crash
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // what went wrong, with context (file, node, layer)
  std::string hint;     // what the user can do about it; may be empty

  std::string to_string() const;
};

// Thrown only inside a module and converted to an Error at its public entry (see capture()).
struct Failure {
  Error error;
};

[[noreturn]] inline void fail(ErrorCode code, std::string message, std::string hint = {}) {
  throw Failure{Error{code, std::move(message), std::move(hint)}};
}

template <class T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<T>(state_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(state_)); }
  const T& value() const& { assert(ok()); return std::get<T>(state_); }
  const Error& error() const { assert(!ok()); return std::get<Error>(state_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> state_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

// Runs fn, turning a Failure (or any std::exception) into an Error value.
template <class Fn>
auto capture(Fn&& fn) -> Result<decltype(fn())> {
  try {
    return fn();
  } catch (const Failure& f) {
    return f.error;
  } catch (const std::bad_alloc&) {
    return Error{ErrorCode::kInvalidArgument, "out of memory while processing the input",
                 "the input is larger than this machine can hold; try a smaller model or dataset"};
  } catch (const std::exception& e) {
    return Error{ErrorCode::kInternal, std::string("internal error: ") + e.what(),
                 "please report this with the input that caused it"};
  }
}

}  // namespace edgeopt
