// Hard top-k mask on the GPU by radix selection on 32-bit order-preserving keys:
// three histogram levels (12, 12 and 8 bits; the first also validates) find the
// exact key T of the k-th entry; one pass keeps keys above T and counts ties per
// tile; a scan over the tiles and one pass over tiles holding ties keep the ties
// in index order. Counts are integers (exact, deterministic). No sort, and only
// per-tile temporaries (n / 4096 entries).
// Groups whose entries do not all cost the same (per-entry costs, or segments
// with different uniform costs) need 64-bit keys of v / c and cost-weighted
// counts; those calls run on the CPU kernel through host copies (documented).
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cmath>
#include <vector>

#include "../common/arg_checks.h"
#include "common.cuh"
#include "spartan/cuda_ops.h"

namespace spartan {
namespace cuda {
namespace {

constexpr int kLevelBits[3] = {12, 12, 8};
constexpr int kBins = 1 << 12;
constexpr int kBinsPerThread = kBins / kThreads;

struct Sel {
  double k, w;                  // budget and the cost of every entry
  unsigned long long above;     // entries with keys above the current prefix range
  unsigned long long kept;      // result
  uint32_t prefix;              // key bits fixed so far (after all levels: T)
  int used, active;
};

struct TileCount {
  unsigned long long ties, tie_before;
};

__global__ void level_kernel(const DevSeg* segs, const int* tiles, long long num_tiles, const Sel* sel,
                             unsigned long long* hist, int used, int width, bool validate,
                             unsigned long long* first_bad) {
  __shared__ unsigned int h[kBins];
  const int shift = 32 - used - width;
  const uint32_t digit_mask = (1u << width) - 1;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const DevSeg sg = segs[tiles[tile]];
    const Sel g = sel[sg.group];
    if (!g.active) continue;
    for (int b = threadIdx.x; b < (1 << width); b += kThreads) h[b] = 0;
    __syncthreads();
    const long long start = (tile - sg.first_tile) * kTile;
    unsigned long long bad = kNoError;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      long long i = tile_index(start, j);
      if (i >= sg.n) break;
      float v = sg.a[i];
      if (validate && !dev_finite(v)) {
        bad = min(bad, (unsigned long long)(sg.base + i));
        continue;
      }
      uint32_t key = dev_float_key(v);
      if (used > 0 && (key >> (shift + width)) != g.prefix) continue;
      atomicAdd(&h[(key >> shift) & digit_mask], 1u);
    }
    if (bad != kNoError) atomicMin(first_bad, bad);
    __syncthreads();
    unsigned long long* gh = hist + (long long)sg.group * kBins;
    for (int b = threadIdx.x; b < (1 << width); b += kThreads)
      if (h[b]) atomicAdd(&gh[b], (unsigned long long)h[b]);
    __syncthreads();
  }
}

// One block per group: descend from the largest digit to the bin where the
// cumulative cost reaches k; fix that digit; clear the histogram for the next level.
__global__ void select_kernel(Sel* sel, unsigned long long* hist, int width, const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  using Scan = cub::BlockScan<unsigned long long, kThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ int found_bin;
  __shared__ unsigned long long found_above;
  Sel& g = sel[blockIdx.x];
  if (!g.active) return;
  unsigned long long* h = hist + (long long)blockIdx.x * kBins;
  const int bins = 1 << width;
  unsigned long long cnt[kBinsPerThread];
  unsigned long long run = 0;
#pragma unroll
  for (int q = 0; q < kBinsPerThread; ++q) {
    int j = threadIdx.x * kBinsPerThread + q;  // rank in descending digit order
    cnt[q] = j < bins ? h[bins - 1 - j] : 0;
    run += cnt[q];
  }
  unsigned long long excl = 0;
  Scan(tmp).ExclusiveSum(run, excl);
  if (threadIdx.x == 0) {
    found_bin = -1;
    found_above = 0;
  }
  __syncthreads();
#pragma unroll
  for (int q = 0; q < kBinsPerThread; ++q) {
    int j = threadIdx.x * kBinsPerThread + q;
    if (j < bins && double(g.above + excl) * g.w < g.k && double(g.above + excl + cnt[q]) * g.w >= g.k) {
      found_bin = bins - 1 - j;
      found_above = excl;
    }
    excl += cnt[q];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int b = found_bin;
    unsigned long long above = found_above;
    if (b < 0) {  // rounding: the budget lies in the lowest bin
      b = 0;
      above = 0;
      for (int i = bins - 1; i > 0; --i) above += h[i];
    }
    g.prefix = (g.prefix << width) | uint32_t(b);
    g.above += above;
    g.used += width;
  }
  __syncthreads();
  for (int b = threadIdx.x; b < bins; b += kThreads) h[b] = 0;
}

__global__ void output_kernel(const DevSeg* segs, const int* tiles, long long num_tiles, Sel* sel, TileCount* counts,
                              const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  using Reduce = cub::BlockReduce<unsigned long long, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const DevSeg sg = segs[tiles[tile]];
    const uint32_t t = sel[sg.group].prefix;
    const long long start = (tile - sg.first_tile) * kTile;
    uint8_t* out = static_cast<uint8_t*>(sg.out);
    unsigned long long ties = 0, kept = 0;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      long long i = tile_index(start, j);
      if (i >= sg.n) break;
      uint32_t key = dev_float_key(sg.a[i]);
      out[i] = key > t;
      kept += key > t;
      ties += key == t;
    }
    unsigned long long tt = Reduce(tmp).Sum(ties);
    __syncthreads();
    unsigned long long kk = Reduce(tmp).Sum(kept);
    __syncthreads();
    if (threadIdx.x == 0) {
      counts[tile].ties = tt;
      if (kk) atomicAdd(&sel[sg.group].kept, kk);
    }
  }
}

// Per group: ties in the tiles before each tile (exclusive scan in tile order).
__global__ void tie_scan_kernel(const long long* tile_begin, const long long* tile_end, TileCount* counts) {
  using Scan = cub::BlockScan<unsigned long long, kThreads>;
  __shared__ typename Scan::TempStorage tmp;
  __shared__ unsigned long long carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (long long base = tile_begin[blockIdx.x]; base < tile_end[blockIdx.x]; base += kThreads) {
    long long t = base + threadIdx.x;
    unsigned long long x = t < tile_end[blockIdx.x] ? counts[t].ties : 0, excl = 0, total = 0;
    Scan(tmp).ExclusiveSum(x, excl, total);
    if (t < tile_end[blockIdx.x]) counts[t].tie_before = carry + excl;
    __syncthreads();
    if (threadIdx.x == 0) carry += total;
    __syncthreads();
  }
}

// Tiles holding ties: keep them in index order while the budget is not reached.
__global__ void ties_kernel(const DevSeg* segs, const int* tiles, long long num_tiles, Sel* sel,
                            const TileCount* counts, const unsigned long long* first_bad) {
  if (*first_bad != kNoError) return;
  using Scan = cub::BlockScan<unsigned long long, kThreads>;
  __shared__ typename Scan::TempStorage tmp;
  using Reduce = cub::BlockReduce<unsigned long long, kThreads>;
  __shared__ typename Reduce::TempStorage rtmp;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    if (counts[tile].ties == 0) continue;
    const DevSeg sg = segs[tiles[tile]];
    const Sel g = sel[sg.group];
    const long long start = (tile - sg.first_tile) * kTile + (long long)threadIdx.x * kPerThread;  // blocked: index order
    uint8_t* out = static_cast<uint8_t*>(sg.out);
    unsigned long long mine = 0;
    for (int j = 0; j < kPerThread; ++j) {
      long long i = start + j;
      if (i < sg.n && dev_float_key(sg.a[i]) == g.prefix) mine++;
    }
    unsigned long long rank = 0;
    Scan(tmp).ExclusiveSum(mine, rank);
    rank += counts[tile].tie_before;
    unsigned long long kept = 0;
    for (int j = 0; j < kPerThread && mine; ++j) {
      long long i = start + j;
      if (i < sg.n && dev_float_key(sg.a[i]) == g.prefix) {
        if (double(g.above + rank) * g.w < g.k) {
          out[i] = 1;
          kept++;
        }
        rank++;
      }
    }
    unsigned long long kk = Reduce(rtmp).Sum(kept);
    if (threadIdx.x == 0 && kk) atomicAdd(&sel[sg.group].kept, kk);
    __syncthreads();
  }
}

// Per-entry or mixed costs: the CPU kernel on host copies.
Status topk_on_host(const TopKSegment* segs, size_t num_segs, const TopKGroup* groups, size_t num_groups,
                    TopKResult* results) {
  std::vector<std::vector<float>> vals(num_segs), costs(num_segs);
  std::vector<std::vector<uint8_t>> outs(num_segs);
  std::vector<TopKSegment> host(segs, segs + num_segs);
  for (size_t s = 0; s < num_segs; ++s) {
    vals[s].resize(segs[s].n);
    outs[s].resize(segs[s].n);
    SPARTAN_CUDA_TRY(cudaMemcpy(vals[s].data(), segs[s].values, segs[s].n * 4, cudaMemcpyDeviceToHost));
    host[s].values = vals[s].data();
    host[s].out = outs[s].data();
    if (segs[s].costs.data) {
      costs[s].resize(segs[s].n);
      SPARTAN_CUDA_TRY(cudaMemcpy(costs[s].data(), segs[s].costs.data, segs[s].n * 4, cudaMemcpyDeviceToHost));
      host[s].costs.data = costs[s].data();
    }
  }
  Status st = spartan::topk_mask(host.data(), num_segs, groups, num_groups, results);
  if (!st.ok()) return st;
  std::vector<bool> grouped(num_segs, false);  // segments outside every group stay untouched, as on the CPU
  for (size_t g = 0; g < num_groups; ++g)
    for (size_t s = groups[g].first; s < groups[g].first + groups[g].count; ++s) grouped[s] = true;
  for (size_t s = 0; s < num_segs; ++s)
    if (grouped[s]) SPARTAN_CUDA_TRY(cudaMemcpy(segs[s].out, outs[s].data(), segs[s].n, cudaMemcpyHostToDevice));
  return Status::Ok();
}

}  // namespace

Status topk_mask(const TopKSegment* segs, size_t num_segs, const TopKGroup* groups, size_t num_groups,
                 TopKResult* results) {
  Status st = check_topk_args(segs, num_segs, groups, num_groups);  // the CPU kernel's rules
  if (!st.ok()) return st;
  bool narrow = true;
  for (size_t gi = 0; gi < num_groups; ++gi) narrow = narrow && group_cost_is_uniform(segs, groups[gi]);
  if (num_groups == 0) return Status::Ok();  // (a grid of 0 blocks is a launch error)
  if (!narrow) return topk_on_host(segs, num_segs, groups, num_groups, results);

  TilePlan plan;
  plan_tiles(groups, num_groups, num_segs, [&](size_t s) { return segs[s].n; }, plan);
  for (size_t s = 0; s < num_segs; ++s) {
    plan.segs[s].a = segs[s].values;
    plan.segs[s].out = segs[s].out;
    plan.segs[s].uniform = segs[s].costs.uniform;
  }
  std::vector<Sel> sel(num_groups);
  std::vector<double> totals(num_groups);
  for (size_t g = 0; g < num_groups; ++g) {
    const double w = groups[g].count ? segs[groups[g].first].costs.uniform : 1.0;
    totals[g] = double(plan.group_n[g]) * w;
    sel[g] = Sel{groups[g].k, w, 0, 0, 0, 0, 1};
  }
  Workspace ws;
  const size_t o_segs = ws.stage(plan.segs);
  const size_t o_tiles = ws.stage(plan.tile_seg);
  const size_t o_tb = ws.stage(plan.group_tile_begin);
  const size_t o_te = ws.stage(plan.group_tile_end);
  const size_t o_sel = ws.stage(sel);
  const size_t o_bad = ws.stage(std::vector<unsigned long long>{kNoError});
  const size_t o_hist = ws.reserve(sizeof(unsigned long long) * kBins * num_groups);
  const size_t o_counts = ws.reserve(sizeof(TileCount) * size_t(plan.num_tiles));
  st = ws.commit();
  if (!st.ok()) return st;
  const DevSeg* d_segs = ws.at<DevSeg>(o_segs);
  const int* d_tiles = ws.at<int>(o_tiles);
  Sel* d_sel = ws.at<Sel>(o_sel);
  unsigned long long* d_bad = ws.at<unsigned long long>(o_bad);
  unsigned long long* d_hist = ws.at<unsigned long long>(o_hist);
  TileCount* d_counts = ws.at<TileCount>(o_counts);
  const int grid = grid_for(plan.num_tiles);
  const int ng = int(num_groups);

  // Level 0 validates; the budget is checked against the totals only after it, as on the CPU.
  level_kernel<<<grid, kThreads>>>(d_segs, d_tiles, plan.num_tiles, d_sel, d_hist, 0, kLevelBits[0], true, d_bad);
  SPARTAN_LAUNCH_CHECK();
  unsigned long long bad = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
  if (bad != kNoError) {
    size_t s = 0, i = 0;
    locate(plan, bad, &s, &i);
    float v = 0;
    SPARTAN_CUDA_TRY(cudaMemcpy(&v, segs[s].values + i, 4, cudaMemcpyDeviceToHost));
    return {Code::kNonFinite, Arg::kValues, s, i, double(v), 0};
  }
  bool any_active = false;
  for (size_t g = 0; g < num_groups; ++g) {
    if (groups[g].k > totals[g] * (1 + 1e-9)) return {Code::kBudgetRange, Arg::kNone, groups[g].first, 0, groups[g].k, totals[g]};
    if (groups[g].k <= 0) sel[g] = Sel{0, sel[g].w, 0, 0, ~0u, 32, 0};  // keys never exceed it: keep nothing
    else if (groups[g].k >= totals[g]) sel[g] = Sel{totals[g] + 1, sel[g].w, (unsigned long long)plan.group_n[g], 0, 0, 32, 0};  // keep all
    any_active = any_active || sel[g].active;
  }
  SPARTAN_CUDA_TRY(cudaMemcpy(d_sel, sel.data(), sizeof(Sel) * num_groups, cudaMemcpyHostToDevice));
  if (any_active) {
    int used = 0;
    for (int level = 0; level < 3; ++level) {
      if (level > 0) {
        level_kernel<<<grid, kThreads>>>(d_segs, d_tiles, plan.num_tiles, d_sel, d_hist, used, kLevelBits[level], false, d_bad);
        SPARTAN_LAUNCH_CHECK();
      }
      select_kernel<<<ng, kThreads>>>(d_sel, d_hist, kLevelBits[level], d_bad);
      SPARTAN_LAUNCH_CHECK();
      used += kLevelBits[level];
    }
  }
  output_kernel<<<grid, kThreads>>>(d_segs, d_tiles, plan.num_tiles, d_sel, d_counts, d_bad);
  SPARTAN_LAUNCH_CHECK();
  tie_scan_kernel<<<ng, kThreads>>>(ws.at<long long>(o_tb), ws.at<long long>(o_te), d_counts);
  SPARTAN_LAUNCH_CHECK();
  ties_kernel<<<grid, kThreads>>>(d_segs, d_tiles, plan.num_tiles, d_sel, d_counts, d_bad);
  SPARTAN_LAUNCH_CHECK();
  SPARTAN_CUDA_TRY(cudaMemcpy(sel.data(), d_sel, sizeof(Sel) * num_groups, cudaMemcpyDeviceToHost));
  for (size_t g = 0; g < num_groups; ++g) {
    TopKResult& r = results[g];
    r.kept = size_t(sel[g].kept);
    r.kept_cost = double(sel[g].kept) * sel[g].w;
    r.threshold = (r.kept > 0 && groups[g].k > 0 && groups[g].k < totals[g]) ? double(dev_key_to_float(sel[g].prefix)) / sel[g].w : std::nan("");  // unit value v / c
  }
  return Status::Ok();
}

}  // namespace cuda
}  // namespace spartan
