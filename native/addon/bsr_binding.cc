// bsrMatmul(linear, rows, cols, block, rowPtr, colIdx, values, dtype, x, n, bias, relu, out, async)
//   linear false: out (rows x n) = A * x (cols x n);  true: out (n x rows) = x (n x cols) * A^T.
//   rowPtr, colIdx: Int32Array. dtype: 0 float32 (values Float32Array), 1 float16,
//   2 bfloat16 (values Uint16Array). x: Float32Array, or a Uint16Array of A's half type.
//   bias: Float32Array(rows) or null. out: Float32Array.
#include <string>

#include "args.h"
#include "bsr_args.h"
#include "errors.h"
#include "ops.h"
#include "run.h"
#include "spartan/bsr.h"

namespace spartan_addon {
namespace {

napi_typedarray_type TypeOf(const Napi::Value& v) {
  return v.IsTypedArray() ? v.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
}

}  // namespace

Napi::Value BsrMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/false, /*async=*/info[13].ToBoolean());
  const bool linear = info[0].ToBoolean();
  spartan::BsrView a = ReadBsrShape(args, info, 7);

  size_t nrp = 0, nci = 0, nv = 0, nx = 0, nb = 0;
  a.row_ptr = static_cast<const int32_t*>(args.TypedData(info[4], "rowPtr", napi_int32_array, "Int32Array", /*written=*/false, &nrp));
  args.ExpectLength(nrp, a.block_rows() + 1, "rowPtr");
  a.col_idx = static_cast<const int32_t*>(args.TypedData(info[5], "colIdx", napi_int32_array, "Int32Array", /*written=*/false, &nci));
  a.nnz_blocks = nci;
  const bool half = a.dtype != spartan::DType::kFloat32;
  a.values = half ? args.TypedData(info[6], "values", napi_uint16_array, "Uint16Array", /*written=*/false, &nv)
                  : args.TypedData(info[6], "values", napi_float32_array, "Float32Array", /*written=*/false, &nv);
  if (nv / (a.block * a.block) != nci || nv % (a.block * a.block))
    Throw(env, ErrorKind::kRange, "ERR_SPARTAN_LENGTH",
          "values has length " + std::to_string(nv) + "; expected colIdx.length * block * block = " +
              std::to_string(nci * a.block * a.block));

  const size_t n = args.Size(info[9], linear ? "batch" : "n");
  if (n > (size_t(1) << 53) / std::max(a.rows, a.cols)) Throw(env, ErrorKind::kRange, "ERR_SPARTAN_SHAPE", "the product is too large");
  spartan::DType xt = spartan::DType::kFloat32;
  const void* x = nullptr;
  if (half && TypeOf(info[8]) == napi_uint16_array && info[8].IsTypedArray()) {
    xt = a.dtype;
    x = args.TypedData(info[8], "x", napi_uint16_array, "Uint16Array", /*written=*/false, &nx);
  } else {
    x = args.TypedData(info[8], "x", napi_float32_array, half ? "Float32Array or Uint16Array" : "Float32Array", /*written=*/false, &nx);
  }
  args.ExpectLength(nx, a.cols * n, "x");

  spartan::BsrEpilogue ep;
  if (!info[10].IsUndefined() && !info[10].IsNull()) {
    ep.bias = static_cast<const float*>(args.TypedData(info[10], "bias", napi_float32_array, "Float32Array", /*written=*/false, &nb));
    args.ExpectLength(nb, a.rows, "bias");
  }
  ep.relu = info[11].ToBoolean();
  float* out = args.Float32Out(info[12], "out", a.rows * n);

  return Run(env, args, ArgNames{},
             [=] { return linear ? spartan::bsr_linear(a, x, xt, n, ep, out) : spartan::bsr_matmul(a, x, xt, n, ep, out); },
             [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace spartan_addon
