// Block-sparse (BSR) products on the CPU: Y = A * X and Y = X * A^T.
//
// Work is planned per call: each block row costs (nnz blocks * b + 1) * b per output
// column, a block row is split along the dense dimension (columns of Y for A * X,
// rows of the batch for X * A^T) until no piece is larger than a fraction of one
// thread's share, and the pieces are dealt to the threads as contiguous runs of
// equal cost. So one dense block row among empty ones does not serialise, and each
// output element is still produced by one piece, in a fixed order: the result does
// not depend on the thread count.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "chunks.h"
#include "spartan/bsr.h"
#include "spartan/bsr_cuda.h"
#include "spartan/parallel.h"

namespace spartan {

Status bsr_validate(const BsrView& a) {
  if (a.block != 16 && a.block != 32) return Status{Code::kShape, Arg::kBlock, 0, 0, double(a.block), 0};
  if (a.rows == 0 || a.cols == 0) return Status{Code::kShape, Arg::kNone, 0, 0, 0, 0};
  if (a.nnz_blocks > size_t(INT32_MAX)) return Status{Code::kShape, Arg::kColIdx, 0, 0, double(a.nnz_blocks), double(INT32_MAX)};
  const size_t nbr = a.block_rows(), nbc = a.block_cols();
  if (!a.row_ptr || (a.nnz_blocks && (!a.col_idx || !a.values))) return Status{Code::kInternal, Arg::kNone, 0, 0, 0, 0};
  if (a.row_ptr[0] != 0) return Status{Code::kBadIndex, Arg::kRowPtr, 0, 0, double(a.row_ptr[0]), 0};
  for (size_t i = 0; i < nbr; ++i)
    if (a.row_ptr[i + 1] < a.row_ptr[i])
      return Status{Code::kBadIndex, Arg::kRowPtr, 0, i + 1, double(a.row_ptr[i + 1]), double(a.row_ptr[i])};
  if (size_t(a.row_ptr[nbr]) != a.nnz_blocks)
    return Status{Code::kBadIndex, Arg::kRowPtr, 0, nbr, double(a.row_ptr[nbr]), double(a.nnz_blocks)};
  for (size_t p = 0; p < a.nnz_blocks; ++p)
    if (a.col_idx[p] < 0 || size_t(a.col_idx[p]) >= nbc)
      return Status{Code::kBadIndex, Arg::kColIdx, 0, p, double(a.col_idx[p]), double(nbc)};
  return Status::Ok();
}

namespace {

// One piece of work: block row br, dense range [n0, n1).
struct Item {
  size_t br, n0, n1;
};

struct Plan {
  std::vector<Item> items;
  std::vector<size_t> begin;  // task t runs items [begin[t], begin[t+1])
};

// Splits each block row along n (in multiples of `grain`) so that no piece costs
// more than ~1/4 of a thread's share, then cuts the item list into `tasks` runs of
// nearly equal cost.
Plan make_plan(const BsrView& a, size_t n, size_t grain, size_t tasks) {
  Plan plan;
  const size_t nbr = a.block_rows(), b = a.block;
  std::vector<double> cost(nbr);
  double total = 0;
  for (size_t i = 0; i < nbr; ++i) {
    cost[i] = (double(a.row_ptr[i + 1] - a.row_ptr[i]) * double(b) + 1.0) * double(b) * double(n);
    total += cost[i];
  }
  const double target = total / double(tasks * 4);
  const size_t max_parts = (n + grain - 1) / grain;
  for (size_t i = 0; i < nbr; ++i) {
    size_t parts = tasks == 1 ? 1 : size_t(cost[i] / target) + 1;
    parts = std::min(parts, max_parts);
    for (size_t q = 0; q < parts; ++q) {
      // boundaries rounded to the grain; the last piece takes the remainder
      size_t lo = (max_parts * q / parts) * grain, hi = (max_parts * (q + 1) / parts) * grain;
      hi = std::min(hi, n);
      if (lo < hi) plan.items.push_back({i, lo, hi});
    }
  }
  plan.begin.assign(tasks + 1, plan.items.size());
  plan.begin[0] = 0;
  double acc = 0;
  size_t t = 1;
  for (size_t k = 0; k < plan.items.size() && t < tasks; ++k) {
    const Item& it = plan.items[k];
    acc += cost[it.br] * double(it.n1 - it.n0) / double(n);
    while (t < tasks && acc >= total * double(t) / double(tasks)) plan.begin[t++] = k + 1;
  }
  return plan;
}

void widen(const uint16_t* src, DType t, float* dst, size_t count) {
  if (t == DType::kFloat16)
    for (size_t i = 0; i < count; ++i) dst[i] = half_to_float(src[i]);
  else
    for (size_t i = 0; i < count; ++i) dst[i] = bfloat16_to_float(src[i]);
}

// The dense operand as float32: the caller's array, or a widened copy.
const float* float_operand(const void* x, DType t, size_t count, std::vector<float>& scratch) {
  if (t == DType::kFloat32) return static_cast<const float*>(x);
  scratch.resize(count);
  const uint16_t* src = static_cast<const uint16_t*>(x);
  float* dst = scratch.data();
  const size_t chunk = size_t(1) << 16, nchunks = (count + chunk - 1) / chunk;
  auto task = [&](size_t c, size_t) {
    const size_t b = c * chunk, e = std::min(count, b + chunk);
    widen(src + b, t, dst + b, e - b);
  };
  parallel_for(nchunks, task);
  return dst;
}

// Block p of A as float32: a pointer into A's values, or `buf` after widening.
template <int B>
inline const float* block_values(const BsrView& a, size_t p, float* buf) {
  if (a.dtype == DType::kFloat32) return static_cast<const float*>(a.values) + p * B * B;
  widen(static_cast<const uint16_t*>(a.values) + p * B * B, a.dtype, buf, B * B);
  return buf;
}

inline float epilogue(float v, float bias, bool relu) {
  v += bias;
  return relu && v < 0.0f ? 0.0f : v;  // NaN stays NaN
}

struct Ctx {
  const BsrView* a;
  const float* x;  // float32 view of the dense operand
  size_t n;        // columns of X and Y (matmul) or batch rows (linear)
  BsrEpilogue ep;
  float* y;
  bool dot;  // linear form, small batch: dot products instead of the transposed block
};

// Y = A * X for one item: rows [r0, r0 + mr) of Y, columns [n0, n1).
template <int B>
void matmul_item(const Ctx& c, const Item& it) {
  constexpr size_t NT = 4096 / B;  // a B x NT tile of X and of the accumulator: 16 KB each
  alignas(64) float acc[B * NT];
  alignas(64) float buf[B * B];
  const BsrView& a = *c.a;
  const size_t N = c.n, r0 = it.br * B, mr = std::min<size_t>(B, a.rows - r0);
  const int32_t pb = a.row_ptr[it.br], pe = a.row_ptr[it.br + 1];
  for (size_t nt = it.n0; nt < it.n1; nt += NT) {
    const size_t w = std::min(NT, it.n1 - nt);
    for (size_t i = 0; i < mr; ++i) std::fill(acc + i * NT, acc + i * NT + w, 0.0f);
    for (int32_t p = pb; p < pe; ++p) {
      const size_t k0 = size_t(a.col_idx[p]) * B, kk = std::min<size_t>(B, a.cols - k0);
      const float* blk = block_values<B>(a, size_t(p), buf);
      const float* xb = c.x + k0 * N + nt;
      for (size_t i = 0; i < mr; ++i) {
        float* __restrict ar = acc + i * NT;
        const float* arow = blk + i * B;
        size_t k = 0;
        for (; k + 4 <= kk; k += 4) {
          const float a0 = arow[k], a1 = arow[k + 1], a2 = arow[k + 2], a3 = arow[k + 3];
          const float* __restrict x0 = xb + k * N;
          const float* __restrict x1 = x0 + N;
          const float* __restrict x2 = x1 + N;
          const float* __restrict x3 = x2 + N;
          for (size_t j = 0; j < w; ++j) ar[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j];
        }
        for (; k < kk; ++k) {
          const float a0 = arow[k];
          const float* __restrict x0 = xb + k * N;
          for (size_t j = 0; j < w; ++j) ar[j] += a0 * x0[j];
        }
      }
    }
    for (size_t i = 0; i < mr; ++i) {
      const float bias = c.ep.bias ? c.ep.bias[r0 + i] : 0.0f;
      const float* __restrict ar = acc + i * NT;
      float* __restrict yr = c.y + (r0 + i) * N + nt;
      for (size_t j = 0; j < w; ++j) yr[j] = epilogue(ar[j], bias, c.ep.relu);
    }
  }
}

// Y = X * A^T for one item: batch rows [n0, n1) of Y, columns [r0, r0 + mr).
template <int B>
void linear_item(const Ctx& c, const Item& it) {
  constexpr size_t NT = 128;
  alignas(64) float acc[NT * B];
  alignas(64) float bt[B * B];   // the block transposed: bt[k][i] = A[i][k]
  alignas(64) float buf[B * B];
  const BsrView& a = *c.a;
  const size_t K = a.cols, M = a.rows, r0 = it.br * B, mr = std::min<size_t>(B, M - r0);
  const int32_t pb = a.row_ptr[it.br], pe = a.row_ptr[it.br + 1];
  for (size_t nt = it.n0; nt < it.n1; nt += NT) {
    const size_t w = std::min(NT, it.n1 - nt);
    std::fill(acc, acc + w * B, 0.0f);
    for (int32_t p = pb; p < pe; ++p) {
      const size_t k0 = size_t(a.col_idx[p]) * B, kk = std::min<size_t>(B, K - k0);
      const float* blk = block_values<B>(a, size_t(p), buf);
      if (c.dot) {
        // acc[n][i] += sum_k A[i][k] x[n][k], in 8 fixed lanes (vectorises without reassociation)
        for (size_t n = 0; n < w; ++n) {
          const float* __restrict xs = c.x + (nt + n) * K + k0;
          for (size_t i = 0; i < mr; ++i) {
            const float* __restrict ar = blk + i * B;
            float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            size_t k = 0;
            for (; k + 8 <= kk; k += 8)
              for (size_t l = 0; l < 8; ++l) lane[l] += ar[k + l] * xs[k + l];
            for (size_t l = 0; k + l < kk; ++l) lane[l] += ar[k + l] * xs[k + l];
            acc[n * B + i] += ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
          }
        }
        continue;
      }
      for (size_t k = 0; k < kk; ++k)
        for (size_t i = 0; i < size_t(B); ++i) bt[k * B + i] = blk[i * B + k];
      for (size_t n = 0; n < w; ++n) {
        const float* __restrict xs = c.x + (nt + n) * K + k0;
        float* __restrict r = acc + n * B;
        size_t k = 0;
        for (; k + 2 <= kk; k += 2) {  // two k per pass over the accumulator row
          const float x0 = xs[k], x1 = xs[k + 1];
          const float* __restrict b0 = bt + k * B;
          const float* __restrict b1 = b0 + B;
          for (size_t i = 0; i < size_t(B); ++i) r[i] += x0 * b0[i] + x1 * b1[i];
        }
        for (; k < kk; ++k) {
          const float xv = xs[k];
          const float* __restrict bk = bt + k * B;
          for (size_t i = 0; i < size_t(B); ++i) r[i] += xv * bk[i];
        }
      }
    }
    for (size_t n = 0; n < w; ++n) {
      float* __restrict yr = c.y + (nt + n) * M + r0;
      const float* __restrict ar = acc + n * B;
      for (size_t i = 0; i < mr; ++i) yr[i] = epilogue(ar[i], c.ep.bias ? c.ep.bias[r0 + i] : 0.0f, c.ep.relu);
    }
  }
}

// `a` is validated; `given` (the caller's arrays, of which `a` may hold copies) is checked
// against y for overlaps.
Status check_call(const BsrView& a, const BsrView& given, const void* x, DType x_dtype, size_t n, size_t x_count,
                  const BsrEpilogue& ep, float* y, size_t y_count) {
  Status st = bsr_validate(a);
  if (!st.ok()) return st;
  if (n == 0) return Status{Code::kShape, Arg::kX, 0, 0, 0, 0};
  if (x_dtype != DType::kFloat32 && x_dtype != a.dtype) return Status{Code::kShape, Arg::kDtype, 0, 0, double(int(x_dtype)), 0};
  const size_t ybytes = y_count * 4;
  const size_t bb = a.block * a.block;
  if (overlaps(y, ybytes, x, x_count * dtype_size(x_dtype)) ||
      overlaps(y, ybytes, given.values, a.nnz_blocks * bb * dtype_size(a.dtype)) ||
      overlaps(y, ybytes, given.row_ptr, (a.block_rows() + 1) * 4) || overlaps(y, ybytes, given.col_idx, a.nnz_blocks * 4) ||
      (ep.bias && overlaps(y, ybytes, ep.bias, a.rows * 4)))
    return Status{Code::kAlias, Arg::kOut, 0, 0, 0, 0};
  return Status::Ok();
}

template <bool Linear>
Status run(const BsrView& given, const void* x, DType x_dtype, size_t n, const BsrEpilogue& ep, float* y) {
  // The index arrays are copied, and only the copies validated and read: arrays in a
  // SharedArrayBuffer may be rewritten by another thread while the product runs, and an index
  // changed after its check would read outside x and values (a crash). They are small: one
  // int per block of b * b values.
  if (!given.row_ptr || (given.nnz_blocks && !given.col_idx)) return Status{Code::kInternal, Arg::kNone, 0, 0, 0, 0};
  const std::vector<int32_t> row_ptr(given.row_ptr, given.row_ptr + given.block_rows() + 1);
  const std::vector<int32_t> col_idx(given.col_idx, given.col_idx + given.nnz_blocks);
  BsrView a = given;
  a.row_ptr = row_ptr.data();
  a.col_idx = col_idx.data();
  const size_t x_count = a.cols * n, y_count = a.rows * n;
  Status st = check_call(a, given, x, x_dtype, n, x_count, ep, y, y_count);
  if (!st.ok()) return st;
  std::vector<float> scratch;
  Ctx c{&a, float_operand(x, x_dtype, x_count, scratch), n, ep, y, Linear && n < 4};
  const size_t tasks = num_threads();
  const Plan plan = make_plan(a, n, Linear ? 4 : 16, tasks);
  auto task = [&](size_t t, size_t) {
    for (size_t k = plan.begin[t]; k < plan.begin[t + 1]; ++k) {
      const Item& it = plan.items[k];
      if (Linear)
        a.block == 16 ? linear_item<16>(c, it) : linear_item<32>(c, it);
      else
        a.block == 16 ? matmul_item<16>(c, it) : matmul_item<32>(c, it);
    }
  };
  parallel_for(tasks, task, tasks);
  return Status::Ok();
}

}  // namespace

Status bsr_matmul(const BsrView& a, const void* x, DType x_dtype, size_t n, const BsrEpilogue& ep, float* y) {
  return run<false>(a, x, x_dtype, n, ep, y);
}

Status bsr_linear(const BsrView& a, const void* x, DType x_dtype, size_t batch, const BsrEpilogue& ep, float* y) {
  return run<true>(a, x, x_dtype, batch, ep, y);
}

namespace cuda {

// The GPU kernel's schedule (spartan/bsr_cuda.h), plain host code: defined here so
// that builds with and without CUDA share one definition.
void bsr_row_order(const int32_t* row_ptr, size_t num_block_rows, int32_t* perm) {
  std::vector<int32_t> order(num_block_rows);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t i, int32_t j) {
    return row_ptr[i + 1] - row_ptr[i] > row_ptr[j + 1] - row_ptr[j];
  });
  std::copy(order.begin(), order.end(), perm);
}

}  // namespace cuda

}  // namespace spartan
