// Soft top-k backward on the GPU: one validating reduction pass (per-tile partial
// sums of g m(1-m) and c m(1-m)), one block per group to form s, one elementwise
// pass. Nothing is written when any entry is invalid.
#include <cub/block/block_reduce.cuh>

#include <cmath>

#include "../common/arg_checks.h"
#include "common.cuh"
#include "spartan/cuda_ops.h"

namespace spartan {
namespace cuda {
namespace {

using Reduce = cub::BlockReduce<double, kThreads>;

struct Part {
  double num, den;
};

__device__ inline bool entry_ok(const DevSeg& sg, long long i) {
  float m = sg.a[i], g = sg.b[i];
  if (!dev_finite(m) || m < 0.0f || m > 1.0f || !dev_finite(g)) return false;
  if (sg.c) {
    float c = sg.c[i];
    if (!dev_finite(c) || !(c > 0.0f)) return false;
  }
  return true;
}

__global__ void reduce_kernel(const DevSeg* segs, const int* tiles, long long num_tiles, Part* parts,
                              unsigned long long* first_bad) {
  __shared__ typename Reduce::TempStorage tmp;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const DevSeg sg = segs[tiles[tile]];
    const long long start = (tile - sg.first_tile) * kTile;
    double num = 0, den = 0;
    unsigned long long bad = kNoError;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      long long i = tile_index(start, j);
      if (i >= sg.n) break;
      if (!entry_ok(sg, i)) {
        bad = min(bad, (unsigned long long)(sg.base + i));
        continue;
      }
      double m = sg.a[i];
      double w = m * (1.0 - m);
      num += double(sg.b[i]) * w;
      den += (sg.c ? double(sg.c[i]) : sg.uniform) * w;
    }
    if (bad != kNoError) atomicMin(first_bad, bad);
    double n = Reduce(tmp).Sum(num);
    __syncthreads();
    double d = Reduce(tmp).Sum(den);
    __syncthreads();
    if (threadIdx.x == 0) parts[tile] = Part{n, d};
  }
}

__global__ void finish_kernel(const long long* tile_begin, const long long* tile_end, const Part* parts, double* s,
                              const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  __shared__ typename Reduce::TempStorage tmp;
  const int g = blockIdx.x;
  double num = 0, den = 0;
  for (long long t = tile_begin[g] + threadIdx.x; t < tile_end[g]; t += kThreads) {
    num += parts[t].num;
    den += parts[t].den;
  }
  double n = Reduce(tmp).Sum(num);
  __syncthreads();
  double d = Reduce(tmp).Sum(den);
  if (threadIdx.x == 0) s[g] = d > 0 ? n / d : 0.0;  // a weighted mean of g / c
}

__global__ void apply_kernel(const DevSeg* segs, const int* tiles, long long num_tiles, const double* beta,
                             const double* s, const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const DevSeg sg = segs[tiles[tile]];
    const long long start = (tile - sg.first_tile) * kTile;
    const double b = beta[sg.group], sv = s[sg.group], inv_c = 1.0 / sg.uniform;
    float* out = static_cast<float*>(sg.out);
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      long long i = tile_index(start, j);
      if (i >= sg.n) break;
      double m = sg.a[i];
      double w = m * (1.0 - m);
      double gc = sg.c ? double(sg.b[i]) / double(sg.c[i]) : double(sg.b[i]) * inv_c;
      out[i] = float(b * w * (gc - sv));  // out may be this entry's own mask or grad
    }
  }
}

Status classify_bad(const TilePlan& plan, const SoftTopKBackwardSegment* segs, unsigned long long pos) {
  size_t s = 0, i = 0;
  locate(plan, pos, &s, &i);
  float m = 0, g = 0, c = 1;
  SPARTAN_CUDA_TRY(cudaMemcpy(&m, segs[s].mask + i, 4, cudaMemcpyDeviceToHost));
  SPARTAN_CUDA_TRY(cudaMemcpy(&g, segs[s].grad + i, 4, cudaMemcpyDeviceToHost));
  if (segs[s].costs.data) SPARTAN_CUDA_TRY(cudaMemcpy(&c, segs[s].costs.data + i, 4, cudaMemcpyDeviceToHost));
  if (!std::isfinite(m)) return {Code::kNonFinite, Arg::kMask, s, i, m, 0};
  if (m < 0.0f || m > 1.0f) return {Code::kMaskRange, Arg::kMask, s, i, m, 0};
  if (!std::isfinite(g)) return {Code::kNonFinite, Arg::kGrad, s, i, g, 0};
  if (!std::isfinite(c)) return {Code::kNonFinite, Arg::kCosts, s, i, c, 0};
  return {Code::kBadCost, Arg::kCosts, s, i, c, 0};
}

}  // namespace

Status soft_topk_backward(const SoftTopKBackwardSegment* segs, size_t num_segs, const SoftTopKBackwardGroup* groups,
                          size_t num_groups) {
  Status st = check_soft_topk_backward_args(segs, num_segs, groups, num_groups);  // the CPU kernel's rules
  if (!st.ok()) return st;
  if (num_groups == 0) return Status::Ok();  // (a grid of 0 blocks is a launch error)
  TilePlan plan;
  plan_tiles(groups, num_groups, num_segs, [&](size_t s) { return segs[s].n; }, plan);
  std::vector<double> betas(num_groups);
  for (size_t s = 0; s < num_segs; ++s) {
    plan.segs[s].a = segs[s].mask;
    plan.segs[s].b = segs[s].grad;
    plan.segs[s].c = segs[s].costs.data;
    plan.segs[s].uniform = segs[s].costs.uniform;
    plan.segs[s].out = segs[s].out;
  }
  for (size_t g = 0; g < num_groups; ++g) betas[g] = groups[g].beta;
  Workspace ws;
  const size_t o_segs = ws.stage(plan.segs);
  const size_t o_tiles = ws.stage(plan.tile_seg);
  const size_t o_tb = ws.stage(plan.group_tile_begin);
  const size_t o_te = ws.stage(plan.group_tile_end);
  const size_t o_beta = ws.stage(betas);
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError});
  const size_t o_parts = ws.reserve(sizeof(Part) * size_t(plan.num_tiles));
  const size_t o_s = ws.reserve(sizeof(double) * num_groups);
  st = ws.commit();
  if (!st.ok()) return st;
  const int grid = grid_for(plan.num_tiles);
  unsigned long long* d_bad = ws.at<unsigned long long>(o_bad);
  reduce_kernel<<<grid, kThreads>>>(ws.at<DevSeg>(o_segs), ws.at<int>(o_tiles), plan.num_tiles, ws.at<Part>(o_parts), d_bad);
  SPARTAN_LAUNCH_CHECK();
  finish_kernel<<<int(num_groups), kThreads>>>(ws.at<long long>(o_tb), ws.at<long long>(o_te), ws.at<Part>(o_parts),
                                                ws.at<double>(o_s), d_bad);
  SPARTAN_LAUNCH_CHECK();
  apply_kernel<<<grid, kThreads>>>(ws.at<DevSeg>(o_segs), ws.at<int>(o_tiles), plan.num_tiles, ws.at<double>(o_beta),
                                   ws.at<double>(o_s), d_bad);
  SPARTAN_LAUNCH_CHECK();
  unsigned long long bad = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
  if (bad != kNoError) return classify_bad(plan, segs, bad);
  return Status::Ok();
}

}  // namespace cuda
}  // namespace spartan
