// The shape of a BSR operand as both BSR bindings read it: rows, cols and block from
// info[1..3] (block 16 or 32, rows and cols below 2^40) and the dtype code from
// info[dtype_at] (0 float32, 1 float16, 2 bfloat16). Structure pointers are left unset.
#pragma once
#include <napi.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "spartan/bsr.h"

namespace spartan_addon {

inline spartan::BsrView ReadBsrShape(Args& args, const Napi::CallbackInfo& info, size_t dtype_at) {
  Napi::Env env = info.Env();
  spartan::BsrView a;
  a.rows = args.Size(info[1], "rows");
  a.cols = args.Size(info[2], "cols");
  a.block = args.Size(info[3], "block");
  if (a.block != 16 && a.block != 32)
    Throw(env, ErrorKind::kRange, "ERR_SPARTAN_SHAPE", "block must be 16 or 32 (got " + std::to_string(a.block) + ")");
  if (a.rows > (size_t(1) << 40) || a.cols > (size_t(1) << 40))
    Throw(env, ErrorKind::kRange, "ERR_SPARTAN_SHAPE", "rows and cols must be below 2^40");
  const double dt = args.Number(info[dtype_at], "dtype");
  if (dt != 0 && dt != 1 && dt != 2) Throw(env, ErrorKind::kRange, "ERR_SPARTAN_OPTION", "dtype must be 0, 1 or 2");
  a.dtype = static_cast<spartan::DType>(int(dt));
  return a;
}

}  // namespace spartan_addon
