// Block-sparse (BSR) matrix products on the CPU.
//
// A BsrView describes a rows x cols matrix cut into b x b blocks (b = 16 or 32),
// stored block-row by block-row: the nonzero blocks of block row i are
// p = row_ptr[i] .. row_ptr[i+1]-1, block p sits in block column col_idx[p] and its
// b*b values are values[p*b*b ..], row-major inside the block. rows and cols need
// not be multiples of b: the last block row / column is partial, and the entries
// of a stored block that fall outside the matrix (its padding) are never read into
// a result (they may hold anything, NaN included).
//
// Values and the dense operand may be float32, or float16 / bfloat16 stored as
// uint16; they are widened to float32 and every product is accumulated in float32.
// The output is float32. Each output element is computed by one thread in a fixed
// order, so results are bit-identical for any thread count.
//
// Non-finite values are not searched for: they propagate as IEEE arithmetic does,
// as in any GEMM.
#pragma once
#include <cstddef>
#include <cstdint>

#include "spartan/status.h"

namespace spartan {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline size_t dtype_size(DType t) { return t == DType::kFloat32 ? 4 : 2; }

struct BsrView {
  size_t rows = 0, cols = 0;  // the logical matrix (rows x cols)
  size_t block = 16;          // b: 16 or 32
  size_t nnz_blocks = 0;      // length of col_idx; values holds nnz_blocks * b * b entries
  const int32_t* row_ptr = nullptr;  // block_rows() + 1 entries: 0 = row_ptr[0] <= ... <= row_ptr[last] = nnz_blocks
  const int32_t* col_idx = nullptr;  // nnz_blocks entries in [0, block_cols())
  const void* values = nullptr;      // float (kFloat32) or uint16_t (kFloat16, kBFloat16)
  DType dtype = DType::kFloat32;

  size_t block_rows() const { return (rows + block - 1) / block; }
  size_t block_cols() const { return (cols + block - 1) / block; }
};

// The optional epilogue: y = relu?(acc + bias[feature]). bias has one entry per row
// of A (the output features of both forms) or is null.
struct BsrEpilogue {
  const float* bias = nullptr;
  bool relu = false;
};

// Checks the structure: block size (16 or 32), rows, cols >= 1, row_ptr (starts at
// 0, non-decreasing, ends at nnz_blocks) and every col_idx in range. O(block rows +
// nnz blocks). kShape (arg kBlock / kNone) or kBadIndex (arg kRowPtr / kColIdx,
// index = the position, value = the entry, limit = the bound it broke).
Status bsr_validate(const BsrView& a);

// Y = A * X: X is cols x n (row-major, x_dtype), Y is rows x n (row-major float32).
// x_dtype may be kFloat32 whatever A's dtype, or A's own half type.
// Validates first (nothing is written on error); y must not overlap any input (kAlias).
Status bsr_matmul(const BsrView& a, const void* x, DType x_dtype, size_t n, const BsrEpilogue& ep, float* y);

// Y = X * A^T, the linear layer's form: X is batch x cols (row-major, x_dtype), Y is
// batch x rows (row-major float32).
Status bsr_linear(const BsrView& a, const void* x, DType x_dtype, size_t batch, const BsrEpilogue& ep, float* y);

// float16 / bfloat16 (as uint16 bits) to float32: exact, subnormals, infinities and
// NaN included.
inline float half_to_float(uint16_t h) {
  // Scale the shifted exponent/mantissa by 2^112 to rebias (exact for normals and
  // subnormals alike), then force the exponent for Inf/NaN. Branch-free, so loops
  // over it vectorise.
  union { uint32_t u; float f; } o, scale;
  scale.u = uint32_t(254 - 15) << 23;  // 2^112
  o.u = uint32_t(h & 0x7fffu) << 13;
  o.f *= scale.f;
  if (o.f >= 65536.0f) o.u |= uint32_t(255) << 23;
  o.u |= uint32_t(h & 0x8000u) << 16;
  return o.f;
}

inline float bfloat16_to_float(uint16_t h) {
  union { uint32_t u; float f; } o;
  o.u = uint32_t(h) << 16;
  return o.f;
}

}  // namespace spartan
