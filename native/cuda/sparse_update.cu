// The sparse-update kernels and fused optimizer steps on the GPU, with the CPU
// versions' arithmetic (native/cpu/sparse_update.cpp): float64 per element where the
// CPU uses it, fixed-order reductions (per-tile partials summed by one block), and
// validation before any write.
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "common.cuh"
#include "spartan/cuda_ops.h"

namespace spartan {
namespace cuda {
namespace {

using Reduce = cub::BlockReduce<double, kThreads>;

inline int tiles_of(size_t n) { return int((n + kTile - 1) / kTile); }

// Per tile: sum of x^2 (float64) and the first non-finite position.
__global__ void sum_squares_kernel(const float* x, long long n, double* parts, unsigned long long* first_bad) {
  __shared__ typename Reduce::TempStorage tmp;
  const long long tiles = (n + kTile - 1) / kTile;
  for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    double s = 0;
    unsigned long long bad = kNoError;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const long long i = tile_index(tile * kTile, j);
      if (i >= n) break;
      const float v = x[i];
      if (!dev_finite(v)) bad = min(bad, (unsigned long long)i);
      s += double(v) * double(v);
    }
    if (bad != kNoError) atomicMin(first_bad, bad);
    const double t = Reduce(tmp).Sum(s);
    __syncthreads();
    if (threadIdx.x == 0) parts[tile] = t;
  }
}

// One block: the tiles' partials in a fixed order.
__global__ void sum_parts_kernel(const double* parts, long long tiles, double* out) {
  __shared__ typename Reduce::TempStorage tmp;
  double s = 0;
  for (long long t = threadIdx.x; t < tiles; t += kThreads) s += parts[t];
  const double r = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) *out = r;
}

__global__ void count_changes_kernel(const uint8_t* a, const uint8_t* b, long long n, unsigned long long* count) {
  using R = cub::BlockReduce<unsigned long long, kThreads>;
  __shared__ typename R::TempStorage tmp;
  unsigned long long c = 0;
  for (long long i = blockIdx.x * (long long)kThreads + threadIdx.x; i < n; i += (long long)gridDim.x * kThreads) c += a[i] != b[i];
  const unsigned long long t = R(tmp).Sum(c);
  if (threadIdx.x == 0 && t) atomicAdd(count, t);  // integers: order-free
}

// g[b] = sum over tile b of gw * theta; one thread block per tile row band and 256
// tiles' columns is overkill for small tiles, so: one warp per tile, strided.
__global__ void mask_upstream_kernel(const float* gw, const float* theta, long long rows, long long cols, long long b0,
                                     long long b1, double* acc, unsigned long long* first_bad) {
  const long long nbc = cols / b1, tiles = (rows / b0) * nbc;
  const int lane = threadIdx.x & 31;
  const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
  for (long long t = warp; t < tiles; t += warps) {
    const long long br = t / nbc, bc = t % nbc;
    double s = 0;
    unsigned long long bad = kNoError;
    for (long long e = lane; e < b0 * b1; e += 32) {
      const long long r = e / b1, j = e % b1;
      const long long i = (br * b0 + r) * cols + bc * b1 + j;
      const float g = gw[i];
      if (!dev_finite(g)) bad = min(bad, tile_order_key(t, r, j, b0, b1));
      s += double(g) * double(theta[i]);
    }
    for (int o = 16; o > 0; o >>= 1) {
      s += __shfl_down_sync(0xffffffffu, s, o);
      bad = min(bad, __shfl_down_sync(0xffffffffu, bad, o));
    }
    if (lane == 0) {
      acc[t] = s;
      if (bad != kNoError) atomicMin(first_bad, bad);
    }
  }
}

__global__ void first_bad_kernel(const float* x, long long n, unsigned long long* first_bad) {
  unsigned long long bad = kNoError;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    if (!dev_finite(x[i])) bad = min(bad, (unsigned long long)i);
  if (bad != kNoError) atomicMin(first_bad, bad);
}

__global__ void product_kernel(const float* a, const float* b, long long n, float* out, const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = a[i] * b[i];
}

__global__ void to_float_kernel(const double* acc, float* out, long long n, const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    out[i] = float(acc[i]);
}

__global__ void param_grad_kernel(const float* gw, const float* theta, const float* m, const float* vjp, long long rows,
                                  long long cols, long long b0, long long b1, float* out) {
  const long long n = rows * cols, nbc = cols / b1;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / cols, c = i - r * cols;
    const long long b = (r / b0) * nbc + c / b1;
    const float th = theta[i];
    const float sg = th > 0 ? 1.0f : (th < 0 ? -1.0f : 0.0f);
    out[i] = gw[i] * m[b] + sg * vjp[b];
  }
}

__global__ void sgd_kernel(float* theta, const float* grad, float* buf, long long n, SgdConfig c) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    double d = c.grad_scale * double(grad[i]) + c.weight_decay * double(theta[i]);
    if (c.momentum != 0) {
      const double b = c.first_step ? d : c.momentum * double(buf[i]) + (1 - c.dampening) * d;
      buf[i] = float(b);
      d = c.nesterov ? d + c.momentum * b : b;
    }
    theta[i] = float(double(theta[i]) - c.lr * d);
  }
}

__global__ void adamw_kernel(float* theta, const float* grad, float* m, float* v, long long n, AdamWConfig c, double bc1,
                             double bc2) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const double g = c.grad_scale * double(grad[i]);
    const double t = double(theta[i]) * (1 - c.lr * c.weight_decay);
    const double mi = c.beta1 * double(m[i]) + (1 - c.beta1) * g;
    const double vi = c.beta2 * double(v[i]) + (1 - c.beta2) * g * g;
    m[i] = float(mi);
    v[i] = float(vi);
    theta[i] = float(t - c.lr * (mi / bc1) / (sqrt(vi / bc2) + c.eps));
  }
}

int grid_elems(long long n) { return grid_for((n + kThreads - 1) / kThreads); }

Status sync() {
  SPARTAN_LAUNCH_CHECK();
  SPARTAN_CUDA_TRY(cudaStreamSynchronize(0));
  return Status::Ok();
}

}  // namespace

Status sum_squares(const float* x, size_t n, double* result, Arg arg) {
  *result = 0;
  if (n == 0) return Status::Ok();
  const long long tiles = tiles_of(n);
  Workspace ws;
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError});
  const size_t o_parts = ws.reserve(sizeof(double) * size_t(tiles));
  const size_t o_out = ws.reserve(sizeof(double));
  Status st = ws.commit();
  if (!st.ok()) return st;
  sum_squares_kernel<<<grid_for(tiles), kThreads>>>(x, (long long)n, ws.at<double>(o_parts), ws.at<unsigned long long>(o_bad));
  SPARTAN_LAUNCH_CHECK();
  sum_parts_kernel<<<1, kThreads>>>(ws.at<double>(o_parts), tiles, ws.at<double>(o_out));
  SPARTAN_LAUNCH_CHECK();
  unsigned long long bad = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&bad, ws.at<unsigned long long>(o_bad), sizeof bad, cudaMemcpyDeviceToHost));
  if (bad != kNoError) {
    float v = 0;
    SPARTAN_CUDA_TRY(cudaMemcpy(&v, x + bad, 4, cudaMemcpyDeviceToHost));
    return {Code::kNonFinite, arg, 0, size_t(bad), double(v), 0};
  }
  SPARTAN_CUDA_TRY(cudaMemcpy(result, ws.at<double>(o_out), sizeof(double), cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Status count_changes(const uint8_t* a, const uint8_t* b, size_t n, size_t* result) {
  *result = 0;
  if (n == 0) return Status::Ok();
  Workspace ws;
  const size_t o_count = ws.reserve(sizeof(unsigned long long));
  Status st = ws.commit();
  if (!st.ok()) return st;
  count_changes_kernel<<<grid_elems((long long)n), kThreads>>>(a, b, (long long)n, ws.at<unsigned long long>(o_count));
  SPARTAN_LAUNCH_CHECK();
  unsigned long long c = 0;
  SPARTAN_CUDA_TRY(cudaMemcpy(&c, ws.at<unsigned long long>(o_count), sizeof c, cudaMemcpyDeviceToHost));
  *result = size_t(c);
  return Status::Ok();
}

Status mask_upstream(const float* gw, const float* theta, const BlockShape& s, float* g) {
  const long long nb = (long long)s.num_blocks();
  if (nb == 0) return Status::Ok();
  Workspace ws;
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError});
  const size_t o_acc = ws.reserve(s.b0 == 1 && s.b1 == 1 ? 0 : sizeof(double) * size_t(nb));  // 1x1: no scratch
  Status st = ws.commit();
  if (!st.ok()) return st;
  unsigned long long* d_bad = ws.at<unsigned long long>(o_bad);
  if (s.b0 == 1 && s.b1 == 1) {  // unstructured: validate, then g = gw * theta (no float64 scratch)
    first_bad_kernel<<<grid_elems(nb), kThreads>>>(gw, nb, d_bad);
    SPARTAN_LAUNCH_CHECK();
    product_kernel<<<grid_elems(nb), kThreads>>>(gw, theta, nb, g, d_bad);
    SPARTAN_LAUNCH_CHECK();
    unsigned long long bad = kNoError;
    SPARTAN_CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
    if (bad == kNoError) return Status::Ok();
    float v = 0;
    SPARTAN_CUDA_TRY(cudaMemcpy(&v, gw + bad, 4, cudaMemcpyDeviceToHost));
    return {Code::kNonFinite, Arg::kGradW, 0, size_t(bad), double(v), 0};
  }
  const int grid = grid_for((nb + kThreads / 32 - 1) / (kThreads / 32));
  mask_upstream_kernel<<<grid, kThreads>>>(gw, theta, (long long)s.rows, (long long)s.cols, (long long)s.b0, (long long)s.b1,
                                           ws.at<double>(o_acc), d_bad);
  SPARTAN_LAUNCH_CHECK();
  to_float_kernel<<<grid_elems(nb), kThreads>>>(ws.at<double>(o_acc), g, nb, d_bad);
  SPARTAN_LAUNCH_CHECK();
  return tile_order_error(d_bad, s, gw, Arg::kGradW);
}

Status spartan_param_grad(const float* gw, const float* theta, const float* m, const float* vjp, const BlockShape& s,
                          float* out) {
  if (s.size() == 0) return Status::Ok();
  param_grad_kernel<<<grid_elems((long long)s.size()), kThreads>>>(gw, theta, m, vjp, (long long)s.rows, (long long)s.cols,
                                                                   (long long)s.b0, (long long)s.b1, out);
  return sync();
}

Status sgd_step(float* theta, const float* grad, float* buf, size_t n, const SgdConfig& c) {
  if (n == 0) return Status::Ok();
  sgd_kernel<<<grid_elems((long long)n), kThreads>>>(theta, grad, buf, (long long)n, c);
  return sync();
}

Status adamw_step(float* theta, const float* grad, float* m, float* v, size_t n, const AdamWConfig& c) {
  if (n == 0) return Status::Ok();
  const double bc1 = 1 - std::pow(c.beta1, double(c.step)), bc2 = 1 - std::pow(c.beta2, double(c.step));
  adamw_kernel<<<grid_elems((long long)n), kThreads>>>(theta, grad, m, v, (long long)n, c, bc1, bc2);
  return sync();
}

}  // namespace cuda
}  // namespace spartan
