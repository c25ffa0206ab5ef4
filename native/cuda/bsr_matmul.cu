// Block-sparse (BSR) products on tensor cores: Y = A * X and Y = X * A^T.
//
// One CTA (4 warps) computes one block row of A (taken in longest-first order through
// a row permutation) against a 64-wide tile of the dense dimension (columns of Y for
// A * X, batch rows for X * A^T), looping over the block row's stored blocks. For each
// block, the b x b values and the matching b x 64 tile of X are staged in shared
// memory with cp.async, double-buffered (block p+1 loads while block p multiplies).
// Each warp owns 16 of the 64 columns: b/16 m16 tiles x two n8 tiles of float32
// accumulators, fed by mma.sync m16n8k16 (float16 / bfloat16) or m16n8k8 (TF32).
// Edges (ragged rows / cols, unaligned operands) fall back to guarded scalar loads
// with zero fill, so the padding of a partial block never reaches a result.
// The epilogue adds the bias and applies the ReLU while writing float32.
//
// Status: written and compiled for sm_80 / sm_90; not yet run on a GPU (see
// benchmarks/gpu/bsr_check.cu for the check and timing harness).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "spartan/bsr_cuda.h"

namespace spartan {
namespace cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileN = 64;               // dense-dimension width of one CTA
constexpr int kWarpN = kTileN / kWarps;  // 16 columns per warp
constexpr int kNFrag = kWarpN / 8;       // two n8 fragments per warp

enum Kind { kF32 = 0, kF16 = 1, kBF16 = 2 };

template <int KIND>
struct Storage {
  using T = uint16_t;
};
template <>
struct Storage<kF32> {
  using T = float;
};

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Copies a ROWS x COLS tile (row stride gld in global memory, LD in shared memory)
// into shared memory: 16-byte cp.async where the chunk is inside [valid_rows) x
// [valid_cols) and `vec` says the addresses are 16-byte aligned, guarded scalar
// loads with zero fill otherwise.
template <class T, int ROWS, int COLS, int LD>
__device__ __forceinline__ void load_tile(T* smem, const T* gmem, size_t gld, int valid_rows, int valid_cols, bool vec) {
  constexpr int VEC = 16 / sizeof(T);
  constexpr int CPR = COLS / VEC;  // chunks per row
  static_assert(COLS % VEC == 0 && (LD * sizeof(T)) % 16 == 0, "tile rows must stay 16-byte aligned");
  for (int c = threadIdx.x; c < ROWS * CPR; c += kThreads) {
    const int r = c / CPR, col = (c % CPR) * VEC;
    T* dst = smem + r * LD + col;
    if (vec && r < valid_rows && col + VEC <= valid_cols) {
      cp_async16(dst, gmem + size_t(r) * gld + col);
    } else {
#pragma unroll
      for (int e = 0; e < VEC; ++e) dst[e] = (r < valid_rows && col + e < valid_cols) ? gmem[size_t(r) * gld + col + e] : T(0);
    }
  }
}

__device__ __forceinline__ uint32_t pack2(uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); }

__device__ __forceinline__ uint32_t to_tf32(float f) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(f));
  return r;
}

template <int KIND>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (KIND == kF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else if constexpr (KIND == kBF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

struct Params {
  int rows, cols;          // A: rows x cols
  int n;                   // columns of X / Y (matmul) or batch rows (linear)
  int num_block_rows;
  int n_tiles;
  const int32_t* row_ptr;
  const int32_t* col_idx;
  const void* values;
  const int32_t* row_perm;  // may be null
  const void* x;
  const float* bias;  // may be null
  bool relu;
  float* y;
  bool vec_a, vec_x;  // 16-byte cp.async allowed for A blocks / X tiles
};

// BS: block size (16 or 32). KIND: value type. LINEAR: Y = X A^T (else Y = A X).
template <int BS, int KIND, bool LINEAR>
__global__ void __launch_bounds__(kThreads) bsr_kernel(const Params p) {
  using T = typename Storage<KIND>::T;
  constexpr int PAD = 16 / sizeof(T);  // keeps rows 16-byte aligned and staggers banks
  constexpr int LDA = BS + PAD;
  // X tile: [k][n] for A X (BS x kTileN), [n][k] for X A^T (kTileN x BS).
  constexpr int XR = LINEAR ? kTileN : BS, XC = LINEAR ? BS : kTileN, LDX = XC + PAD;
  constexpr int MT = BS / 16;                      // m16 tiles per block row
  constexpr int KSTEP = KIND == kF32 ? 8 : 16;     // k per mma
  __shared__ __align__(16) T As[2][BS * LDA];
  __shared__ __align__(16) T Xs[2][XR * LDX];

  const int br = p.row_perm ? p.row_perm[blockIdx.x] : int(blockIdx.x);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
  const int pb = p.row_ptr[br], pe = p.row_ptr[br + 1];
  const T* values = static_cast<const T*>(p.values);
  const T* x = static_cast<const T*>(p.x);

  for (int tile = blockIdx.y; tile < p.n_tiles; tile += gridDim.y) {
    const int n0 = tile * kTileN;
    float acc[MT][kNFrag][4];
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int f = 0; f < kNFrag; ++f)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[m][f][q] = 0.0f;

    auto stage = [&](int q, int buf) {
      const int k0 = p.col_idx[q] * BS, kk = min(BS, p.cols - k0);
      load_tile<T, BS, BS, LDA>(As[buf], values + size_t(q) * BS * BS, BS, BS, kk, p.vec_a);
      if (LINEAR)
        load_tile<T, XR, XC, LDX>(Xs[buf], x + size_t(n0) * p.cols + k0, size_t(p.cols), min(kTileN, p.n - n0), kk, p.vec_x);
      else
        load_tile<T, XR, XC, LDX>(Xs[buf], x + size_t(k0) * p.n + n0, size_t(p.n), kk, min(kTileN, p.n - n0), p.vec_x);
      cp_async_commit();
    };

    if (pb < pe) stage(pb, 0);
    for (int q = pb; q < pe; ++q) {
      const int buf = (q - pb) & 1;
      if (q + 1 < pe) {
        stage(q + 1, buf ^ 1);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const T* Ab = As[buf];
      const T* Xb = Xs[buf];
#pragma unroll
      for (int ks = 0; ks < BS; ks += KSTEP) {
        uint32_t a[MT][4];
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          const int r = m * 16 + g;
          if constexpr (KIND == kF32) {
            a[m][0] = to_tf32(Ab[r * LDA + ks + t]);
            a[m][1] = to_tf32(Ab[(r + 8) * LDA + ks + t]);
            a[m][2] = to_tf32(Ab[r * LDA + ks + t + 4]);
            a[m][3] = to_tf32(Ab[(r + 8) * LDA + ks + t + 4]);
          } else {
            a[m][0] = *reinterpret_cast<const uint32_t*>(&Ab[r * LDA + ks + 2 * t]);
            a[m][1] = *reinterpret_cast<const uint32_t*>(&Ab[(r + 8) * LDA + ks + 2 * t]);
            a[m][2] = *reinterpret_cast<const uint32_t*>(&Ab[r * LDA + ks + 2 * t + 8]);
            a[m][3] = *reinterpret_cast<const uint32_t*>(&Ab[(r + 8) * LDA + ks + 2 * t + 8]);
          }
        }
#pragma unroll
        for (int f = 0; f < kNFrag; ++f) {
          const int nc = warp * kWarpN + f * 8 + g;  // this thread's column of the B fragment
          uint32_t b[2];
          // B(k, n) = X[k][n] (A X) or X[n][k] (X A^T)
          auto B = [&](int k) -> T { return LINEAR ? Xb[nc * LDX + k] : Xb[k * LDX + nc]; };
          if constexpr (KIND == kF32) {
            b[0] = to_tf32(B(ks + t));
            b[1] = to_tf32(B(ks + t + 4));
          } else if constexpr (LINEAR) {
            b[0] = *reinterpret_cast<const uint32_t*>(&Xb[nc * LDX + ks + 2 * t]);
            b[1] = *reinterpret_cast<const uint32_t*>(&Xb[nc * LDX + ks + 2 * t + 8]);
          } else {
            b[0] = pack2(B(ks + 2 * t), B(ks + 2 * t + 1));
            b[1] = pack2(B(ks + 2 * t + 8), B(ks + 2 * t + 9));
          }
#pragma unroll
          for (int m = 0; m < MT; ++m) mma<KIND>(acc[m][f], a[m], b);
        }
      }
      __syncthreads();  // the buffer is refilled two blocks later
    }

    // Epilogue: bias, ReLU, float32 stores.
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int f = 0; f < kNFrag; ++f)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int row = br * BS + m * 16 + g + (q >> 1) * 8;
          const int col = n0 + warp * kWarpN + f * 8 + 2 * t + (q & 1);
          if (row >= p.rows || col >= p.n) continue;
          float v = acc[m][f][q] + (p.bias ? p.bias[row] : 0.0f);
          if (p.relu && v < 0.0f) v = 0.0f;
          if (LINEAR)
            p.y[size_t(col) * p.rows + row] = v;
          else
            p.y[size_t(row) * p.n + col] = v;
        }
  }
}

Status fail(Code code, Arg arg = Arg::kNone, double value = 0) {
  Status s;
  s.code = code;
  s.arg = arg;
  s.value = value;
  return s;
}

template <int BS, int KIND, bool LINEAR>
cudaError_t launch(const Params& p, cudaStream_t stream) {
  dim3 grid(unsigned(p.num_block_rows), unsigned(std::min(p.n_tiles, 65535)));
  bsr_kernel<BS, KIND, LINEAR><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <bool LINEAR>
Status run(const BsrView& a, const int32_t* row_perm, const void* x, size_t n, const BsrEpilogue& ep, float* y,
           void* stream) {
  if (a.block != 16 && a.block != 32) return fail(Code::kShape, Arg::kBlock, double(a.block));
  const size_t limit = size_t(1) << 30;
  if (a.rows == 0 || a.cols == 0 || a.rows >= limit || a.cols >= limit) return fail(Code::kShape, Arg::kNone);
  if (n == 0 || n >= limit) return fail(Code::kShape, Arg::kX, double(n));
  if (!a.row_ptr || !x || !y || (a.nnz_blocks && (!a.col_idx || !a.values))) return fail(Code::kInternal);
  Params p;
  p.rows = int(a.rows);
  p.cols = int(a.cols);
  p.n = int(n);
  p.num_block_rows = int(a.block_rows());
  p.n_tiles = int((n + kTileN - 1) / kTileN);
  p.row_ptr = a.row_ptr;
  p.col_idx = a.col_idx;
  p.values = a.values;
  p.row_perm = row_perm;
  p.x = x;
  p.bias = ep.bias;
  p.relu = ep.relu;
  p.y = y;
  const size_t esize = dtype_size(a.dtype), vec = 16 / esize;
  const auto aligned = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  p.vec_a = aligned(a.values);
  p.vec_x = aligned(x) && (LINEAR ? a.cols % vec == 0 : n % vec == 0);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  cudaError_t err;
  const bool b16 = a.block == 16;
  switch (a.dtype) {
    case DType::kFloat16:
      err = b16 ? launch<16, kF16, LINEAR>(p, s) : launch<32, kF16, LINEAR>(p, s);
      break;
    case DType::kBFloat16:
      err = b16 ? launch<16, kBF16, LINEAR>(p, s) : launch<32, kBF16, LINEAR>(p, s);
      break;
    case DType::kFloat32:
      err = b16 ? launch<16, kF32, LINEAR>(p, s) : launch<32, kF32, LINEAR>(p, s);
      break;
    default:
      return fail(Code::kShape, Arg::kDtype);
  }
  if (err != cudaSuccess) {
    Status st = fail(Code::kCuda);
    st.cuda_error = int(err);
    return st;
  }
  return Status::Ok();
}

}  // namespace

Status bsr_matmul(const BsrView& a, const int32_t* row_perm, const void* x, size_t n, const BsrEpilogue& ep, float* y,
                  void* stream) {
  return run<false>(a, row_perm, x, n, ep, y, stream);
}

Status bsr_linear(const BsrView& a, const int32_t* row_perm, const void* x, size_t batch, const BsrEpilogue& ep,
                  float* y, void* stream) {
  return run<true>(a, row_perm, x, batch, ep, y, stream);
}

}  // namespace cuda
}  // namespace spartan
