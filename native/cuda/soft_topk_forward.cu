// Exact soft top-k forward on the GPU, segmented: every tensor of every group goes
// through one launch per pass. The solver is the CPU's (native/common): a
// validating pass with a histogram of unit values, a rigorous bracket and a first
// lambda from that histogram, then safeguarded Newton passes that each compute
// F, F' and write the mask. All decisions stay on the device: after each pass one
// block per group reduces that group's tile partials in a fixed order
// (deterministic) and updates its lambda; the host only launches a few passes at a
// time and reads a 16-byte control word between rounds.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <cmath>

#include "../common/arg_checks.h"
#include "../common/soft_topk_newton.h"
#include "common.cuh"
#include "spartan/cuda_ops.h"

namespace spartan {
namespace cuda {
namespace {

constexpr int kMaxHistBits = 12;  // 4096 bins: one block reads a group's histogram in one sweep

struct GroupDesc {
  double k, beta, warm_lambda, hist_weight;
  long long n, tile_begin, tile_end, hist_offset;
  int warm, hist_bits;
};

struct TilePart {  // per tile: pass-1 statistics, then F and F' of the latest pass
  double sum_c, c_min, u_min, u_max;
};

struct Ctrl {
  unsigned long long first_bad;  // smallest concatenated position of an invalid entry
  int budget_group;              // smallest group whose k exceeds its total cost
  int active;                    // groups still solving
  int beta_group;                // smallest group whose beta * max |u| overflows (stk_init)
};

using Reduce = cub::BlockReduce<double, kThreads>;

// Block-wide sum of costs and min / min / max of (c, u): the pass-1 statistics, valid in
// thread 0. Ends with a barrier, so tmp may be reused at once.
__device__ TilePart reduce_stats(typename Reduce::TempStorage& tmp, const TilePart& mine) {
  TilePart r;
  r.sum_c = Reduce(tmp).Sum(mine.sum_c);
  __syncthreads();
  r.c_min = Reduce(tmp).Reduce(mine.c_min, MinOp());
  __syncthreads();
  r.u_min = Reduce(tmp).Reduce(mine.u_min, MinOp());
  __syncthreads();
  r.u_max = Reduce(tmp).Reduce(mine.u_max, MaxOp());
  __syncthreads();
  return r;
}

// ---- pass 1: validate, summarise, histogram ------------------------------------

__global__ void scan_kernel(const DevSeg* segs, const int* tile_seg, long long num_tiles, const GroupDesc* groups,
                            TilePart* parts, unsigned long long* hist, Ctrl* ctrl) {
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ unsigned long long block_bad;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const DevSeg sg = segs[tile_seg[tile]];
    const GroupDesc gd = groups[sg.group];
    const long long start = (tile - sg.first_tile) * kTile;
    const int shift = 32 - gd.hist_bits;
    double sum_c = 0, c_min = HUGE_VAL, u_min = HUGE_VAL, u_max = -HUGE_VAL;
    unsigned long long bad = kNoError;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      long long i = tile_index(start, j);
      if (i >= sg.n) break;
      float x = sg.a[i];
      double cost = sg.uniform;
      bool ok = dev_finite(x);
      if (sg.c) {
        float cf = sg.c[i];
        ok = ok && dev_finite(cf) && cf > 0.0f;
        cost = cf;
      }
      if (!ok) {
        bad = min(bad, (unsigned long long)(sg.base + i));
        continue;
      }
      double u = double(x) / cost;
      sum_c += cost;
      c_min = fmin(c_min, cost);
      u_min = fmin(u_min, u);
      u_max = fmax(u_max, u);
      if (gd.hist_bits) atomicAdd(&hist[gd.hist_offset + (dev_float_key(float(u)) >> shift)], 1ull);
    }
    if (threadIdx.x == 0) block_bad = kNoError;
    __syncthreads();
    if (bad != kNoError) atomicMin(&block_bad, bad);
    const TilePart st = reduce_stats(tmp, TilePart{sum_c, c_min, u_min, u_max});
    if (threadIdx.x == 0) {
      parts[tile] = st;
      if (block_bad != kNoError) atomicMin(&ctrl->first_bad, block_bad);
    }
    __syncthreads();
  }
}

// ---- per group: totals, closed forms, bracket and first lambda ------------------

__device__ double bin_edge(uint32_t key, double fallback) {
  float f = dev_key_to_float(key);
  return isnan(f) ? fallback : double(f);
}

// The CPU's guess_from_histogram, one block per group: bins in descending order of
// unit value, kPerThread bins per thread, the masses above each edge by a block scan
// of the integer counts (exact, so exactly one thread sees the crossing bin).
__device__ void guess_from_histogram(SoftTopKGroupState& g, const GroupDesc& gd, const unsigned long long* hist) {
  using Scan = cub::BlockScan<unsigned long long, kThreads>;
  __shared__ union {
    typename Scan::TempStorage scan;
    typename Reduce::TempStorage reduce;
  } tmp;
  __shared__ double sh_lo, sh_hi, sh_lambda;
  __shared__ int sh_stop, sh_found;
  const int bins = 1 << gd.hist_bits;
  const int shift = 32 - gd.hist_bits;
  const double k = g.k, total = g.total_cost, beta = g.beta;
  double mass[kPerThread], lo_e[kPerThread], hi_e[kPerThread];
  unsigned long long cnt[kPerThread], run = 0;
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    int j = threadIdx.x * kPerThread + q;  // rank in descending order
    mass[q] = 0;
    cnt[q] = 0;
    lo_e[q] = hi_e[q] = 0;
    if (j < bins) {
      uint32_t b = uint32_t(bins - 1 - j);
      cnt[q] = hist[gd.hist_offset + b];
      mass[q] = double(cnt[q]) * gd.hist_weight;
      double lo = bin_edge(b << shift, g.u_min);
      double hi = bin_edge(uint32_t(((uint64_t(b) + 1) << shift) - 1), g.u_max);
      lo = fmax(lo, g.u_min);
      hi = fmin(hi, g.u_max);
      if (hi < lo) hi = lo;
      lo_e[q] = lo;
      hi_e[q] = hi;
    }
    run += cnt[q];
  }
  unsigned long long above = 0;
  Scan(tmp.scan).ExclusiveSum(run, above);
  __syncthreads();
  if (threadIdx.x == 0) sh_found = 0;
  __syncthreads();
  double hi_c = HUGE_VAL, lo_c = -HUGE_VAL;
#pragma unroll
  for (int q = 0; q < kPerThread; ++q) {
    if (cnt[q] == 0) continue;
    const double excl = double(above) * gd.hist_weight, incl = double(above + cnt[q]) * gd.hist_weight;
    if (incl > k) hi_c = fmin(hi_c, stk_logit(k / incl) - beta * lo_e[q] + stk_slack(beta, lo_e[q]));
    if (excl < k) lo_c = fmax(lo_c, stk_logit((k - excl) / (total - excl)) - beta * hi_e[q] - stk_slack(beta, hi_e[q]));
    if (excl < k && incl >= k) {  // the crossing bin: one thread in the block
      double frac = (k - excl) / mass[q];
      sh_lambda = -beta * (hi_e[q] - frac * (hi_e[q] - lo_e[q]));
      sh_found = 1;
    }
    above += cnt[q];
  }
  double hi_all = Reduce(tmp.reduce).Reduce(hi_c, MinOp());
  __syncthreads();
  double lo_all = Reduce(tmp.reduce).Reduce(lo_c, MaxOp());
  __syncthreads();  // the crossing thread's sh_found / sh_lambda are visible to thread 0
  if (threadIdx.x == 0) {
    g.hi = fmin(g.hi, hi_all);
    g.lo = fmax(g.lo, lo_all);
    sh_lo = g.lo;
    sh_hi = g.hi;
    if (!sh_found) sh_lambda = 0.5 * (g.lo + g.hi);
    sh_stop = 0;
  }
  __syncthreads();
  // Newton on the piecewise-uniform model of the histogram.
  for (int it = 0; it < 60; ++it) {
    double lambda = fmin(fmax(sh_lambda, sh_lo), sh_hi);
    double f = 0, df = 0;
#pragma unroll
    for (int q = 0; q < kPerThread; ++q) {
      if (mass[q] <= 0) continue;
      double s, ds;
      stk_bin_model(lo_e[q], hi_e[q], beta, lambda, s, ds);
      f += mass[q] * s;
      df += mass[q] * ds;
    }
    __syncthreads();
    double fs = Reduce(tmp.reduce).Sum(f);
    __syncthreads();
    double dfs = Reduce(tmp.reduce).Sum(df);
    if (threadIdx.x == 0) {
      fs -= k;
      if (fs < 0) sh_lo = lambda; else sh_hi = lambda;
      double next = dfs > 0 ? lambda - fs / dfs : 0.5 * (sh_lo + sh_hi);
      if (!(next > sh_lo && next < sh_hi)) next = 0.5 * (sh_lo + sh_hi);
      sh_stop = fabs(next - lambda) <= 1e-9 * (1 + fabs(lambda)) || fabs(fs) <= 1e-9 * total;
      sh_lambda = next;
    }
    __syncthreads();
    if (sh_stop) break;
  }
  if (threadIdx.x == 0) g.lambda = fmin(fmax(sh_lambda, g.lo), g.hi);
}

__global__ void init_kernel(const GroupDesc* groups, const TilePart* parts, const unsigned long long* hist,
                            SoftTopKGroupState* states, Ctrl* ctrl) {
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ SoftTopKGroupState g;
  __shared__ int need_guess;
  const int gi = blockIdx.x;
  const GroupDesc gd = groups[gi];
  if (ctrl->first_bad != kNoError) return;  // invalid data: nothing is solved or written
  double sum_c = 0, c_min = HUGE_VAL, u_min = HUGE_VAL, u_max = -HUGE_VAL;
  // Fixed assignment of tiles to threads and a fixed tree: the same sums every run.
  for (long long t = gd.tile_begin + threadIdx.x; t < gd.tile_end; t += kThreads) {
    const TilePart p = parts[t];
    sum_c += p.sum_c;
    c_min = fmin(c_min, p.c_min);
    u_min = fmin(u_min, p.u_min);
    u_max = fmax(u_max, p.u_max);
  }
  const TilePart st = reduce_stats(tmp, TilePart{sum_c, c_min, u_min, u_max});
  if (threadIdx.x == 0) {
    stk_reset(g, gd.k, gd.beta);
    g.total_cost = st.sum_c;
    g.c_min = st.c_min;
    g.u_min = st.u_min;
    g.u_max = st.u_max;
    need_guess = 0;
    if (g.k > g.total_cost + 1e-9 * g.total_cost) {
      atomicMin(&ctrl->budget_group, gi);
      g.done = 1;
    } else if (stk_init(g, gd.n)) {
      if (!gd.warm && gd.hist_bits) need_guess = 1;
      else stk_start(g, gd.warm != 0, gd.warm_lambda);
    } else if (g.overflow) {
      atomicMin(&ctrl->beta_group, gi);
    }
  }
  __syncthreads();
  if (need_guess) guess_from_histogram(g, gd, hist);
  __syncthreads();
  if (threadIdx.x == 0) {
    states[gi] = g;
    if (!g.done) atomicAdd(&ctrl->active, 1);
  }
}

// ---- Newton passes ----------------------------------------------------------------

__device__ inline bool halted(const Ctrl* ctrl) {
  return ctrl->first_bad != kNoError || ctrl->budget_group != INT_MAX || ctrl->beta_group != INT_MAX || ctrl->active == 0;
}

__global__ void eval_kernel(const DevSeg* segs, const int* tile_seg, long long num_tiles,
                            const SoftTopKGroupState* states, TilePart* parts, const Ctrl* ctrl) {
  if (halted(ctrl)) return;
  __shared__ typename Reduce::TempStorage tmp;
  for (long long tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const DevSeg sg = segs[tile_seg[tile]];
    const SoftTopKGroupState& g = states[sg.group];
    if (g.done) continue;  // the same for the whole block
    const double beta = g.beta, center = g.center, mu = g.centered ? g.mu : g.lambda;
    const double inv_c = 1.0 / sg.uniform;
    const long long start = (tile - sg.first_tile) * kTile;
    float* out = static_cast<float*>(sg.out);
    double fs = 0, fd = 0;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      long long i = tile_index(start, j);
      if (i >= sg.n) break;
      double w = sg.c ? double(sg.c[i]) : sg.uniform;
      double u = sg.c ? double(sg.a[i]) / w : double(sg.a[i]) * inv_c;
      float z = float(beta * (u - center) + mu);
      float e = expf(-z);
      float inv = 1.0f / (1.0f + e);
      float sgm = z < -88.0f ? 0.0f : inv;
      float ds = isinf(e) ? 0.0f : (e * inv) * inv;
      out[i] = sgm;
      fs += w * double(sgm);
      fd += w * double(ds);
    }
    double f = Reduce(tmp).Sum(fs);
    __syncthreads();
    double d = Reduce(tmp).Sum(fd);
    __syncthreads();
    if (threadIdx.x == 0) parts[tile] = TilePart{f, d, 0, 0};
  }
}

__global__ void update_kernel(const GroupDesc* groups, const TilePart* parts, SoftTopKGroupState* states, Ctrl* ctrl) {
  if (halted(ctrl)) return;
  const int gi = blockIdx.x;
  if (states[gi].done) return;
  __shared__ typename Reduce::TempStorage tmp;
  const GroupDesc gd = groups[gi];
  double f = 0, df = 0;
  for (long long t = gd.tile_begin + threadIdx.x; t < gd.tile_end; t += kThreads) {
    f += parts[t].sum_c;
    df += parts[t].c_min;
  }
  double fs = Reduce(tmp).Sum(f);
  __syncthreads();
  double dfs = Reduce(tmp).Sum(df);
  if (threadIdx.x == 0) {
    SoftTopKGroupState g = states[gi];
    g.f = fs - g.k;
    g.df = dfs;
    g.passes++;
    stk_newton_update(g);
    states[gi] = g;
    if (g.done) atomicSub(&ctrl->active, 1);
  }
}

int hist_bits_for(long long n) {
  int b = 0;
  while ((1ll << (b + 1)) <= n) ++b;
  return std::min(kMaxHistBits, std::max(8, b - 5));
}

// Reads the first invalid entry back and names it as the CPU kernel would.
Status classify_bad(const TilePlan& plan, const SoftTopKSegment* segs, unsigned long long pos) {
  size_t s = 0, i = 0;
  locate(plan, pos, &s, &i);
  float x = 0, c = 1;
  SPARTAN_CUDA_TRY(cudaMemcpy(&x, segs[s].values + i, 4, cudaMemcpyDeviceToHost));
  if (!std::isfinite(x)) return Status{Code::kNonFinite, Arg::kValues, s, i, double(x), 0};
  if (segs[s].costs.data) SPARTAN_CUDA_TRY(cudaMemcpy(&c, segs[s].costs.data + i, 4, cudaMemcpyDeviceToHost));
  if (!std::isfinite(c)) return Status{Code::kNonFinite, Arg::kCosts, s, i, double(c), 0};
  return Status{Code::kBadCost, Arg::kCosts, s, i, double(c), 0};
}

}  // namespace

Status soft_topk_forward(const SoftTopKSegment* segs, size_t num_segs, const SoftTopKGroup* groups, size_t num_groups,
                         SoftTopKResult* results) {
  Status st = check_soft_topk_args(segs, num_segs, groups, num_groups);
  if (!st.ok() || num_groups == 0) return st;  // (a grid of 0 blocks is a launch error)
  TilePlan plan;
  plan_tiles(groups, num_groups, num_segs, [&](size_t s) { return segs[s].n; }, plan);
  for (size_t s = 0; s < num_segs; ++s) {
    plan.segs[s].a = segs[s].values;
    plan.segs[s].c = segs[s].costs.data;
    plan.segs[s].uniform = segs[s].costs.uniform;
    plan.segs[s].out = segs[s].out;
  }
  std::vector<GroupDesc> gdesc(num_groups);
  long long hist_size = 0;
  for (size_t g = 0; g < num_groups; ++g) {
    GroupDesc& d = gdesc[g];
    d.k = groups[g].k;
    d.beta = groups[g].beta;
    d.warm = groups[g].warm;
    d.warm_lambda = groups[g].warm_lambda;
    d.n = plan.group_n[g];
    d.tile_begin = plan.group_tile_begin[g];
    d.tile_end = plan.group_tile_end[g];
    // Counting histograms weigh every entry alike: exact when the whole group has
    // one uniform cost (the usual case); otherwise start from the bracket alone.
    const bool homogeneous = group_cost_is_uniform(segs, groups[g]);
    d.hist_bits = (!d.warm && homogeneous && d.n > 0) ? hist_bits_for(d.n) : 0;
    d.hist_weight = homogeneous && groups[g].count ? segs[groups[g].first].costs.uniform : 1.0;
    d.hist_offset = hist_size;
    if (d.hist_bits) hist_size += 1ll << d.hist_bits;
  }
  const Ctrl ctrl0{kNoError, INT_MAX, 0, INT_MAX};
  Workspace ws;
  const size_t o_segs = ws.stage(plan.segs);
  const size_t o_tiles = ws.stage(plan.tile_seg);
  const size_t o_groups = ws.stage(gdesc);
  const size_t o_ctrl = ws.stage(std::vector<Ctrl>{ctrl0});
  const size_t o_parts = ws.reserve(sizeof(TilePart) * size_t(plan.num_tiles));
  const size_t o_hist = ws.reserve(sizeof(unsigned long long) * size_t(hist_size));
  const size_t o_states = ws.reserve(sizeof(SoftTopKGroupState) * num_groups);
  st = ws.commit();
  if (!st.ok()) return st;
  const DevSeg* d_segs = ws.at<DevSeg>(o_segs);
  const int* d_tiles = ws.at<int>(o_tiles);
  const GroupDesc* d_groups = ws.at<GroupDesc>(o_groups);
  Ctrl* d_ctrl = ws.at<Ctrl>(o_ctrl);
  TilePart* d_parts = ws.at<TilePart>(o_parts);
  unsigned long long* d_hist = ws.at<unsigned long long>(o_hist);
  SoftTopKGroupState* d_states = ws.at<SoftTopKGroupState>(o_states);
  const int grid = grid_for(plan.num_tiles);
  const int ngroups = int(num_groups);

  scan_kernel<<<grid, kThreads>>>(d_segs, d_tiles, plan.num_tiles, d_groups, d_parts, d_hist, d_ctrl);
  SPARTAN_LAUNCH_CHECK();
  init_kernel<<<ngroups, kThreads>>>(d_groups, d_parts, d_hist, d_states, d_ctrl);
  SPARTAN_LAUNCH_CHECK();
  // Rounds of Newton passes; passes after every group is done return at once.
  Ctrl ctrl = ctrl0;
  int launched = 0;
  bool warm_all = true;
  for (size_t g = 0; g < num_groups; ++g) warm_all = warm_all && groups[g].warm;
  int round = warm_all ? 1 : 3;
  for (;;) {
    for (int r = 0; r < round; ++r) {
      eval_kernel<<<grid, kThreads>>>(d_segs, d_tiles, plan.num_tiles, d_states, d_parts, d_ctrl);
      SPARTAN_LAUNCH_CHECK();
      update_kernel<<<ngroups, kThreads>>>(d_groups, d_parts, d_states, d_ctrl);
      SPARTAN_LAUNCH_CHECK();
    }
    launched += round;
    SPARTAN_CUDA_TRY(cudaMemcpyAsync(&ctrl, d_ctrl, sizeof ctrl, cudaMemcpyDeviceToHost, 0));
    SPARTAN_CUDA_TRY(cudaStreamSynchronize(0));
    if (ctrl.first_bad != kNoError || ctrl.budget_group != INT_MAX || ctrl.beta_group != INT_MAX || ctrl.active == 0) break;
    if (launched > kSoftTopKMaxIterations + 2) return Status{Code::kInternal};
    round = 4;
  }
  if (ctrl.first_bad != kNoError) return classify_bad(plan, segs, ctrl.first_bad);
  std::vector<SoftTopKGroupState> states(num_groups);
  SPARTAN_CUDA_TRY(cudaMemcpy(states.data(), d_states, sizeof(SoftTopKGroupState) * num_groups, cudaMemcpyDeviceToHost));
  if (ctrl.budget_group != INT_MAX) {
    const size_t g = size_t(ctrl.budget_group);
    return Status{Code::kBudgetRange, Arg::kNone, groups[g].first, 0, groups[g].k, states[g].total_cost};
  }
  if (ctrl.beta_group != INT_MAX) {  // as the CPU forward reports it
    const size_t g = size_t(ctrl.beta_group);
    return Status{Code::kBetaRange, Arg::kNone, groups[g].first, 0, groups[g].beta, fmax(fabs(states[g].u_min), fabs(states[g].u_max))};
  }
  for (size_t g = 0; g < num_groups; ++g) results[g] = stk_result(states[g]);
  return Status::Ok();
}

}  // namespace cuda
}  // namespace spartan
