// bsrMatmulCuda(linear, rows, cols, block, dtype, rowPtr, colIdx, values, rowPerm, x, n, bias, relu, out, async)
//   Every array is a DeviceBuffer: rowPtr, colIdx, rowPerm int32; values float32 (dtype 0) or
//   uint16 (1 float16, 2 bfloat16); x, bias (or null), out float32.
//   The structure was validated on the host when it was uploaded (lib/bsr/device.ts);
//   device copies are never written by JS afterwards.
#include <string>

#include "args.h"
#include "bsr_args.h"
#include "device_buffer.h"
#include "errors.h"
#include "ops.h"
#include "run.h"
#include "spartan/bsr.h"
#include "spartan/bsr_cuda.h"

namespace spartan_addon {

static const void* Need(Args& args, Napi::Env env, const Napi::Value& v, const std::string& name, ElementKind kind,
                        size_t expected) {
  DeviceBuffer* b = args.Device(v, name, kind);
  if (!b) Throw(env, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be a CUDA " + ElementName(kind) + " tensor");
  args.ExpectLength(b->length(), expected, name);
  return b->data();
}

Napi::Value BsrMatmulCuda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true, /*async=*/info[14].ToBoolean());
  const bool linear = info[0].ToBoolean();
  spartan::BsrView a = ReadBsrShape(args, info, 4);
  DeviceBuffer* ci = args.Device(info[6], "colIdx", ElementKind::kInt32);
  if (!ci) Throw(env, ErrorKind::kType, "ERR_SPARTAN_TYPE", "colIdx must be a CUDA int32 tensor");
  a.nnz_blocks = ci->length();
  a.col_idx = static_cast<const int32_t*>(ci->data());
  a.row_ptr = static_cast<const int32_t*>(Need(args, env, info[5], "rowPtr", ElementKind::kInt32, a.block_rows() + 1));
  const bool half = a.dtype != spartan::DType::kFloat32;
  a.values = Need(args, env, info[7], "values", half ? ElementKind::kUint16 : ElementKind::kFloat32, a.nnz_blocks * a.block * a.block);
  const int32_t* perm = static_cast<const int32_t*>(Need(args, env, info[8], "rowPerm", ElementKind::kInt32, a.block_rows()));
  const size_t n = args.Size(info[10], linear ? "batch" : "n");
  const float* x = static_cast<const float*>(Need(args, env, info[9], "x", ElementKind::kFloat32, a.cols * n));
  spartan::BsrEpilogue ep;
  if (!info[11].IsUndefined() && !info[11].IsNull())
    ep.bias = static_cast<const float*>(Need(args, env, info[11], "bias", ElementKind::kFloat32, a.rows));
  ep.relu = info[12].ToBoolean();
  float* out = static_cast<float*>(const_cast<void*>(Need(args, env, info[13], "out", ElementKind::kFloat32, a.rows * n)));
  // Thread blocks write y while others still read x and bias: no overlap (each is its own allocation).
  if (static_cast<const void*>(out) == static_cast<const void*>(x) || (ep.bias && static_cast<const void*>(out) == static_cast<const void*>(ep.bias)))
    Throw(env, ErrorKind::kRange, "ERR_SPARTAN_ALIAS", "out must not be x or bias");
  return Run(env, args, ArgNames{},
             [=] { return spartan::cuda::bsr_product(linear, a, perm, x, n, ep, out); },
             [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace spartan_addon
