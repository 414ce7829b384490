// What every `edgeopt` command shares: how an error is printed and which exit code it gets.
#pragma once

#include <string>

#include "common/error.h"

namespace edgeopt::cli {

// Prints `error: ...` (and `hint: ...`) to stderr, and the error as JSON on stdout with --json.
// Returns the exit code: 1 bad input (the message says what to do), 3 internal error.
int report_error(const Error& error, bool as_json);

// Where the built web UI is (`make web`): `given` when set, else web/dist beside or above the
// executable (build/edgeopt finds the checkout's web/dist); empty when there is none.
std::string find_web_dir(const std::string& given);

}  // namespace edgeopt::cli
