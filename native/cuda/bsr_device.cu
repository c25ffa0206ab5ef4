// The device BSR product as the binding calls it: X is float32 in device memory;
// for a float16 / bfloat16 matrix it is converted on the device first (the tensor-core
// kernel takes X in A's dtype). Synchronous: returns when Y is complete.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "spartan/bsr_cuda.h"

namespace spartan {
namespace cuda {
namespace {

template <class H>
__global__ void to_half_kernel(const float* x, H* out, long long n);

template <>
__global__ void to_half_kernel<__half>(const float* x, __half* out, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = __float2half_rn(x[i]);
}

template <>
__global__ void to_half_kernel<__nv_bfloat16>(const float* x, __nv_bfloat16* out, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = __float2bfloat16_rn(x[i]);
}

}  // namespace

Status bsr_product(bool linear, const BsrView& a, const int32_t* row_perm, const float* x, size_t n,
                   const BsrEpilogue& ep, float* y) {
  const size_t nx = a.cols * n;
  void* xh = nullptr;
  const void* xin = x;
  if (a.dtype != DType::kFloat32) {
    SPARTAN_CUDA_TRY(cudaMallocAsync(&xh, nx * 2 + 2, 0));
    const int grid = grid_for((long long)(nx + kThreads - 1) / kThreads);
    if (a.dtype == DType::kFloat16)
      to_half_kernel<__half><<<grid, kThreads>>>(x, static_cast<__half*>(xh), (long long)nx);
    else
      to_half_kernel<__nv_bfloat16><<<grid, kThreads>>>(x, static_cast<__nv_bfloat16*>(xh), (long long)nx);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
      cudaFreeAsync(xh, 0);
      return cuda_status(e);
    }
    xin = xh;
  }
  Status st = linear ? bsr_linear(a, row_perm, xin, n, ep, y, nullptr) : bsr_matmul(a, row_perm, xin, n, ep, y, nullptr);
  if (xh) cudaFreeAsync(xh, 0);
  if (!st.ok()) return st;
  SPARTAN_CUDA_TRY(cudaStreamSynchronize(0));
  return Status::Ok();
}

}  // namespace cuda
}  // namespace spartan
