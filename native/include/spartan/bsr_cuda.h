// Block-sparse (BSR) products on the GPU (tensor cores, sm_80+). Plain C++: no CUDA
// headers here, so CPU files may include it. The layout is the one of spartan/bsr.h.
//
// Every pointer in `a` and every array argument is a DEVICE pointer; `stream` is a
// cudaStream_t (nullptr: the default stream). The calls only enqueue work and return;
// launch errors come back as kCuda (Status::cuda_error = the cudaError_t), and -1 when
// the addon was built without CUDA.
//
// The index arrays are not validated on the device: validate the structure on the
// host (spartan::bsr_validate) before uploading it. Sizes, block size and dtypes are
// checked here (kShape).
//
// Arithmetic: float16 / bfloat16 values use mma.m16n8k16 with float32 accumulation;
// float32 values are rounded to TF32 (10-bit mantissa) and use mma.m16n8k8, float32
// accumulation. x must have the same dtype as A's values. Output float32.
#pragma once
#include <cstddef>
#include <cstdint>

#include "spartan/bsr.h"
#include "spartan/status.h"

namespace spartan {
namespace cuda {

// Longest-first schedule (host arrays): perm[i] is the block row with the i-th most
// stored blocks (ties in row order). Upload it and pass it as `row_perm`.
void bsr_row_order(const int32_t* row_ptr, size_t num_block_rows, int32_t* perm);

// Y (rows x n, row-major) = A * X (cols x n, row-major), then bias / ReLU.
// row_perm: block_rows() entries on the device, or nullptr for the natural order.
Status bsr_matmul(const BsrView& a, const int32_t* row_perm, const void* x, size_t n, const BsrEpilogue& ep, float* y,
                  void* stream);

// Y (batch x rows) = X (batch x cols) * A^T, then bias / ReLU: a linear layer.
Status bsr_linear(const BsrView& a, const int32_t* row_perm, const void* x, size_t batch, const BsrEpilogue& ep,
                  float* y, void* stream);

// What the binding calls: every pointer on the device, x float32 (converted on the
// device to A's half type when A is float16 / bfloat16); linear selects Y = X * A^T.
// Synchronous: returns when y is complete.
Status bsr_product(bool linear, const BsrView& a, const int32_t* row_perm, const float* x, size_t n,
                   const BsrEpilogue& ep, float* y);

}  // namespace cuda
}  // namespace spartan
