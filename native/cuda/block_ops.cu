// Block (tile) ops on the GPU for a row-major rows x cols matrix cut into b0 x b1
// tiles: scores (sum of |theta| per tile, float64), mask expansion, and the fused
// apply theta * m * h. Inputs are validated on the device before any output is
// written: scores go to a float64 scratch first; apply checks in one read-only
// pass, then writes in a second.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../cpu/chunks.h"
#include "common.cuh"
#include "spartan/cuda_ops.h"

namespace spartan {
namespace cuda {
namespace {

constexpr int kCols = 256;  // columns per block of the score kernel

// Block (band of b0 rows) x (256 V columns): each thread sums |theta| down its V
// columns over the band (coalesced rows; V = 4 uses 16-byte loads when every row is
// 16-byte aligned), then the columns of each tile are added in shared memory; a tile
// cut by the chunk edge gets two atomic partials (the sum of two terms does not depend
// on their order), more only for tiles wider than the chunk.
template <int V>
__global__ void scores_kernel(const float* theta, long long rows, long long cols, long long b0, long long b1, double* acc,
                              unsigned long long* first_bad) {
  __shared__ double col[kCols * V];
  const long long c0 = (long long)blockIdx.x * kCols * V;
  const long long cb = c0 + (long long)threadIdx.x * V;  // this thread's first column
  for (long long br = blockIdx.y; br < rows / b0; br += gridDim.y) {  // grid.y is capped at 65535
    double s[V];
#pragma unroll
    for (int v = 0; v < V; ++v) s[v] = 0;
    unsigned long long bad = kNoError;
    if (cb < cols)
      for (long long r = 0; r < b0; ++r) {
        const long long i = (br * b0 + r) * cols + cb;
        float x[V];
        if (V == 4) {
          const float4 q = *reinterpret_cast<const float4*>(theta + i);
          x[0] = q.x; x[1] = q.y; x[V > 2 ? 2 : 0] = q.z; x[V > 3 ? 3 : 0] = q.w;
        } else {
          x[0] = theta[i];
        }
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const long long c = cb + v;
          if (!dev_finite(x[v])) bad = min(bad, tile_order_key(br * (cols / b1) + c / b1, r, c % b1, b0, b1));
          s[v] += fabs(double(x[v]));
        }
      }
    if (bad != kNoError) atomicMin(first_bad, bad);
#pragma unroll
    for (int v = 0; v < V; ++v) col[threadIdx.x * V + v] = s[v];
    __syncthreads();
    // The first column of each tile inside this chunk (or the chunk's first column) sums its run.
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const long long c = cb + v;
      if (c < cols && (c % b1 == 0 || c == c0)) {
        const long long tile_end = (c / b1 + 1) * b1;
        double t = 0;
        for (long long j = c; j < tile_end && j < c0 + kCols * V && j < cols; ++j) t += col[j - c0];
        atomicAdd(&acc[br * (cols / b1) + c / b1], t);
      }
    }
    __syncthreads();
  }
}

// The first tile whose float64 sum of finite |theta| rounds to an infinite float (the CPU's check).
__global__ void overflow_kernel(const double* acc, long long n, const unsigned long long* first_bad, unsigned long long* first_over) {
  if (*first_bad != kNoError) return;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    if (isinf(__double2float_rn(acc[i]))) atomicMin(first_over, (unsigned long long)i);
}

__global__ void to_float_kernel(const double* acc, float* out, long long n, const unsigned long long* first_bad,
                                const unsigned long long* first_over) {
  if (*first_bad != kNoError || *first_over != kNoError) return;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = float(acc[i]);
}

// An entry a soft mask may not hold: NaN, ±Inf, or outside [0, 1] (the CPU's check_unit_interval).
__device__ inline bool bad_mask_entry(float m) { return !dev_finite(m) || m < 0.0f || m > 1.0f; }

// Read-only validation of a float block mask: the first bad entry.
__global__ void mask_check_kernel(const float* mask, long long n, unsigned long long* first_bad) {
  unsigned long long bad = kNoError;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    if (bad_mask_entry(mask[i])) bad = min(bad, (unsigned long long)i);
  if (bad != kNoError) atomicMin(first_bad, bad);
}

template <class T>
__global__ void expand_kernel(const T* mask, long long rows, long long cols, long long b0, long long b1, T* out,
                              const unsigned long long* first_bad) {
  if (first_bad && *first_bad != kNoError) return;
  const long long n = rows * cols;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    long long r = i / cols, c = i - r * cols;
    out[i] = mask[(r / b0) * (cols / b1) + c / b1];
  }
}

struct ApplyArgs {
  const float* theta;
  const float* soft;
  const uint8_t* hard_only;
  const uint8_t* hard;
  float* out;
  long long rows, cols, n, nm, b0, b1;
  int per_block;
};

__device__ inline long long mask_index(const ApplyArgs& a, long long i) {
  if (!a.per_block) return i;
  long long r = i / a.cols, c = i - r * a.cols;
  return (r / a.b0) * (a.cols / a.b1) + c / a.b1;
}

// The CPU validates apply in chunks of 2^16: theta's chunk, then the mask's chunk of the
// same index. Keys in that order make the smallest key the error the CPU reports.
__device__ inline unsigned long long apply_key(long long i, bool mask) {
  return ((unsigned long long)(i >> 16) << 17) | (mask ? 0x10000ull : 0ull) | (unsigned long long)(i & 0xFFFF);
}

// Read-only validation: the first bad entry of theta or the mask, in the CPU's order.
__global__ void apply_check_kernel(ApplyArgs a, unsigned long long* first_bad) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  unsigned long long bad = kNoError;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < a.n; i += stride)
    if (!dev_finite(a.theta[i])) bad = min(bad, apply_key(i, false));
  if (a.soft)
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < a.nm; i += stride)
      if (bad_mask_entry(a.soft[i])) bad = min(bad, apply_key(i, true));
  if (bad != kNoError) atomicMin(first_bad, bad);
}

__global__ void apply_kernel(ApplyArgs a, const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < a.n; i += (long long)gridDim.x * blockDim.x) {
    long long mi = mask_index(a, i);
    float m = a.soft ? a.soft[mi] : float(a.hard_only[mi] != 0);
    if (a.hard && !a.hard[mi]) m = 0.0f;
    a.out[i] = a.theta[i] * m;
  }
}

int grid_elems(long long n) { return grid_for((n + kThreads - 1) / kThreads); }

// The error for soft-mask entry i, which a check kernel found bad: its value read back names it.
Status mask_entry_error(const float* mask, size_t i) {
  float v = 0;
  SPARTAN_CUDA_TRY(cudaMemcpy(&v, mask + i, 4, cudaMemcpyDeviceToHost));
  return {std::isfinite(v) ? Code::kMaskRange : Code::kNonFinite, Arg::kMask, 0, i, double(v), 0};
}

// An out over its own mask, but for 1x1 tiles in place (a copy onto itself).
template <class T>
bool expand_aliases(const T* mask, const BlockShape& s, const T* out) {
  const bool identity = out == mask && s.b0 == 1 && s.b1 == 1;
  return !identity && overlaps(out, s.size() * sizeof(T), mask, s.num_blocks() * sizeof(T));
}

// The expansion, skipped on the device when `first_bad` (a float mask's check) is set.
template <class T>
Status launch_expand(const T* mask, const BlockShape& s, T* out, const unsigned long long* first_bad) {
  expand_kernel<T><<<grid_elems((long long)s.size()), kThreads>>>(mask, (long long)s.rows, (long long)s.cols, (long long)s.b0,
                                                                   (long long)s.b1, out, first_bad);
  SPARTAN_LAUNCH_CHECK();
  return Status::Ok();
}

}  // namespace

Status block_scores(const float* theta, const BlockShape& s, float* scores) {
  const long long nb = (long long)s.num_blocks();
  Workspace ws;
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError, kNoError});  // non-finite entry, overflowing tile
  const size_t o_acc = ws.reserve(sizeof(double) * size_t(nb));
  Status st = ws.commit();
  if (!st.ok()) return st;
  unsigned long long* d_bad = ws.at<unsigned long long>(o_bad);
  unsigned long long* d_over = d_bad + 1;
  double* acc = ws.at<double>(o_acc);
  if (s.size() > 0) {
    const bool vec = s.cols % 4 == 0 && reinterpret_cast<uintptr_t>(theta) % 16 == 0;
    const size_t width = vec ? 4 * kCols : kCols;
    dim3 grid(unsigned((s.cols + width - 1) / width), unsigned(std::min<size_t>(s.block_rows(), 65535)));
    if (vec)
      scores_kernel<4><<<grid, kCols>>>(theta, (long long)s.rows, (long long)s.cols, (long long)s.b0, (long long)s.b1, acc, d_bad);
    else
      scores_kernel<1><<<grid, kCols>>>(theta, (long long)s.rows, (long long)s.cols, (long long)s.b0, (long long)s.b1, acc, d_bad);
    SPARTAN_LAUNCH_CHECK();
    overflow_kernel<<<grid_elems(nb), kThreads>>>(acc, nb, d_bad, d_over);
    SPARTAN_LAUNCH_CHECK();
    to_float_kernel<<<grid_elems(nb), kThreads>>>(acc, scores, nb, d_bad, d_over);
    SPARTAN_LAUNCH_CHECK();
  }
  st = tile_order_error(d_bad, s, theta, Arg::kTheta);
  if (!st.ok()) return st;
  unsigned long long over = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&over, d_over, sizeof over, cudaMemcpyDeviceToHost));
  if (over == kNoError) return Status::Ok();
  double sum = 0;
  SPARTAN_CUDA_TRY(cudaMemcpy(&sum, acc + over, sizeof sum, cudaMemcpyDeviceToHost));
  return {Code::kTileOverflow, Arg::kTheta, 0, size_t(over), sum, 0};
}

// A float mask is validated first, as on the CPU; a hard (uint8) mask keeps where nonzero, so
// any byte is one and it is expanded as it is.
Status expand_block_mask(const float* m, const BlockShape& s, float* out) {
  if (s.size() == 0) return Status::Ok();
  if (expand_aliases(m, s, out)) return Status{Code::kAlias, Arg::kOut, 0, 0, 0, 0};
  Workspace ws;
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError});
  Status st = ws.commit();
  if (!st.ok()) return st;
  unsigned long long* d_bad = ws.at<unsigned long long>(o_bad);
  mask_check_kernel<<<grid_elems((long long)s.num_blocks()), kThreads>>>(m, (long long)s.num_blocks(), d_bad);
  SPARTAN_LAUNCH_CHECK();
  st = launch_expand(m, s, out, d_bad);
  if (!st.ok()) return st;
  unsigned long long bad = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
  return bad == kNoError ? Status::Ok() : mask_entry_error(m, size_t(bad));
}

Status expand_block_mask(const uint8_t* m, const BlockShape& s, uint8_t* out) {
  if (s.size() == 0) return Status::Ok();
  if (expand_aliases(m, s, out)) return Status{Code::kAlias, Arg::kOut, 0, 0, 0, 0};
  Status st = launch_expand(m, s, out, nullptr);
  if (!st.ok()) return st;
  SPARTAN_CUDA_TRY(cudaStreamSynchronize(0));
  return Status::Ok();
}

Status apply_mask(const float* theta, const MaskView& mask, const uint8_t* hard, const BlockShape& s, float* out) {
  const size_t n = s.size();
  const size_t nm = mask.per_block ? s.num_blocks() : n;
  const void* m = mask.soft ? static_cast<const void*>(mask.soft) : static_cast<const void*>(mask.hard_only);
  if (overlaps(out, n * 4, m, mask.soft ? nm * 4 : nm) || (hard && overlaps(out, n * 4, hard, nm)) ||
      (out != theta && overlaps(out, n * 4, theta, n * 4)))
    return Status{Code::kAlias, Arg::kOut, 0, 0, 0, 0};
  ApplyArgs a{theta, mask.soft, mask.hard_only, hard, out, (long long)s.rows, (long long)s.cols, (long long)n,
              (long long)nm, (long long)s.b0, (long long)s.b1, mask.per_block ? 1 : 0};
  Workspace ws;
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError});
  Status st = ws.commit();
  if (!st.ok()) return st;
  unsigned long long* d_bad = ws.at<unsigned long long>(o_bad);
  if (n > 0) {
    apply_check_kernel<<<grid_elems((long long)n), kThreads>>>(a, d_bad);
    SPARTAN_LAUNCH_CHECK();
    apply_kernel<<<grid_elems((long long)n), kThreads>>>(a, d_bad);
    SPARTAN_LAUNCH_CHECK();
  }
  unsigned long long bad = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
  if (bad == kNoError) return Status::Ok();
  const size_t i = size_t((bad >> 17) << 16 | (bad & 0xFFFF));
  if (!(bad & 0x10000)) {
    float v = 0;
    SPARTAN_CUDA_TRY(cudaMemcpy(&v, theta + i, 4, cudaMemcpyDeviceToHost));
    return {Code::kNonFinite, Arg::kTheta, 0, i, double(v), 0};
  }
  return mask_entry_error(mask.soft, i);
}

}  // namespace cuda
}  // namespace spartan
