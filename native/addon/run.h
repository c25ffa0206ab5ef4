// Runs a kernel now (returning its result) or on the libuv pool (returning a
// Promise). Either way a failed Status becomes a coded error; in async mode the
// input and output arrays are referenced until the promise settles, the kernel works on
// the Args' copies of the host arrays, and the written ones are copied back as it settles.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

#include "errors.h"
#include "args.h"
#include "spartan/status.h"

namespace spartan_addon {

using Work = std::function<spartan::Status()>;
using Finish = std::function<Napi::Value(Napi::Env)>;

// Async when `args` was made for an async call (Args::async()): the call then needs its copies.
Napi::Value Run(Napi::Env env, Args& args, ArgNames names, Work work, Finish finish);

}  // namespace spartan_addon
