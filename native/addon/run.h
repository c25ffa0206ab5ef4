// Runs a kernel now (returning its result) or on the libuv pool (returning a
// Promise). Either way a failed Status becomes a coded error; in async mode the
// input and output arrays are referenced until the promise settles.
#pragma once
#include <napi.h>

#include <functional>
#include <vector>

#include "errors.h"
#include "spartan/status.h"

namespace spartan_addon {

using Work = std::function<spartan::Status()>;
using Finish = std::function<Napi::Value(Napi::Env)>;

Napi::Value Run(Napi::Env env, bool async, std::vector<Napi::Object>& keep_alive, ArgNames names, Work work,
                Finish finish);

}  // namespace spartan_addon
