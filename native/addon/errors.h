// Coded JS errors. Every error that leaves the addon is a TypeError, RangeError or
// Error carrying a stable `code` (ERR_SPARTAN_*), thrown before any output is written.
#pragma once
#include <napi.h>

#include <string>

#include "spartan/status.h"

namespace spartan_addon {

enum class ErrorKind { kType, kRange, kRuntime };

Napi::Error MakeError(Napi::Env env, ErrorKind kind, const char* code, const std::string& message);
[[noreturn]] void Throw(Napi::Env env, ErrorKind kind, const char* code, const std::string& message);
// A number for a message, to 17 significant digits (std::to_string prints 5e-324 as 0.000000).
std::string Num(double v);

// Names an element for messages: "values[17]" or "segments[2].values[17]".
struct ArgNames {
  bool segmented = false;
  std::string element(spartan::Arg arg, size_t segment, size_t index) const;
  std::string array(spartan::Arg arg, size_t segment) const;
};

Napi::Error StatusError(Napi::Env env, const spartan::Status& status, const ArgNames& names);

}  // namespace spartan_addon
