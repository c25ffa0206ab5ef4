// Exact soft top-k forward. Per group (one budget, one lambda):
//   pass 1    validate, total cost, min/max unit value, histogram of unit values
//             (radix bins of their float bits, so no range is needed up front);
//   host      solve the histogram's piecewise-uniform model for a first lambda and
//             derive a rigorous bracket from the bin masses;
//   pass 2..  safeguarded Newton: one fused pass computes F, F' (float64 sums) and
//             writes the mask at the current lambda, so an accepted lambda needs no
//             extra write pass. A pass at a lambda less than 0.5 from the last one (the
//             usual last Newton steps) updates the written mask instead of evaluating
//             exp again: sigma(z + d) = m / (m + (1 - m) e^-d).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../common/soft_topk_newton.h"
#include "../common/arg_checks.h"
#include "chunks.h"
#include "fast_math.h"
#include "float_keys.h"
#include "lanes.h"
#include "scan.h"
#include "soft_topk_simd.h"
#include "spartan/parallel.h"
#include "spartan/soft_topk.h"

namespace spartan {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxUpdatesInRow = 3;

struct ChunkStats {
  double sum_c, c_min, u_min, u_max;  // pass 1
  double f, df;                       // Newton passes
  Status err;
};

struct GroupState : SoftTopKGroupState {
  size_t n = 0, hist_offset = 0;
  int hist_bits = 0;
  double written_lambda = 0;  // the lambda of the mask in `out` (after the first pass)
  int updates_in_row = -1;    // passes since a full evaluation wrote it (-1: none has)
  bool update = false;        // this pass updates that mask
};

struct Scratch {
  std::vector<Chunk> chunks;
  std::vector<ChunkStats> stats;
  std::vector<GroupState> groups;
  std::vector<double> hist;  // [thread][group bins]
  std::vector<double> merged;
  std::vector<double> bin_lo, bin_hi, bin_mass;
};
thread_local Scratch scratch;

inline bool finite_float(float x) { return std::isfinite(x); }

// Histogram resolution: about 32+ entries a bin, 256 to 65536 bins.
int hist_bits_for(size_t n) {
  int b = 0;
  while ((size_t(1) << (b + 1)) <= n) ++b;
  return std::min(16, std::max(8, b - 5));
}

// ---- pass 1 -------------------------------------------------------------------

// finite_min_max_simd's portable twin: a branch-free finite check and eight min/max lanes.
size_t finite_min_max_portable(const float* x, size_t n, bool& finite, float& lo_out, float& hi_out) {
  if (n < 8) return 0;
  finite = all_finite(x, n - n % 8);
  float lo[8], hi[8];
  for (int j = 0; j < 8; ++j) lo[j] = hi[j] = x[0];
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      lo[j] = std::min(lo[j], x[i + j]);
      hi[j] = std::max(hi[j], x[i + j]);
    }
  for (int j = 1; j < 8; ++j) {
    lo[0] = std::min(lo[0], lo[j]);
    hi[0] = std::max(hi[0], hi[j]);
  }
  lo_out = lo[0];
  hi_out = hi[0];
  return i;
}

// Pass 1 of a warm solve with one cost for the whole segment (no histogram, no
// per-entry costs): a branch-free validation and a min/max over eight float lanes,
// which vectorise. The results equal the general loop's: u = x / cost is monotone
// in x, and an integer cost sums exactly either way.
bool scan_chunk_uniform(const SoftTopKSegment& seg, const Chunk& c, ChunkStats& st) {
  const double cost = seg.costs.uniform;
  const size_t n = c.end - c.begin;
  const double sum = double(n) * cost;
  if (cost != std::floor(cost) || !(sum < 9007199254740992.0)) return false;  // keep the exact running sum
  const float* x = seg.values + c.begin;
  float lo = x[0], hi = x[0];
  bool finite = true;
  size_t i = finite_min_max_simd(x, n, finite, lo, hi);
  if (i == 0) i = finite_min_max_portable(x, n, finite, lo, hi);
  for (; i < n; ++i) {
    finite = finite && std::isfinite(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (!finite) return false;  // the general loop names the first bad entry
  st.sum_c = sum;
  st.c_min = cost;
  st.u_min = double(lo) / cost;
  st.u_max = double(hi) / cost;
  return true;
}

void scan_chunk(const SoftTopKSegment& seg, const Chunk& c, const GroupState& g, double* hist,
                ChunkStats& st) {
  st = ChunkStats{0.0, kInf, kInf, -kInf, 0.0, 0.0, Status::Ok()};
  if (!hist && !seg.costs.data && c.end > c.begin && scan_chunk_uniform(seg, c, st)) return;
  const float* v = seg.values;
  const float* cs = seg.costs.data;
  const int shift = 32 - g.hist_bits;
  double sum_c = 0, c_min = kInf, u_min = kInf, u_max = -kInf;
  for (size_t i = c.begin; i < c.end; ++i) {
    float x = v[i];
    if (!finite_float(x)) {
      st.err = Status{Code::kNonFinite, Arg::kValues, c.segment, i, double(x), 0};
      return;
    }
    double cost = seg.costs.uniform;
    if (cs) {
      float cf = cs[i];
      if (!finite_float(cf)) {
        st.err = Status{Code::kNonFinite, Arg::kCosts, c.segment, i, double(cf), 0};
        return;
      }
      if (!(cf > 0.0f)) {
        st.err = Status{Code::kBadCost, Arg::kCosts, c.segment, i, double(cf), 0};
        return;
      }
      cost = cf;
    }
    double u = double(x) / cost;
    sum_c += cost;
    c_min = std::min(c_min, cost);
    u_min = std::min(u_min, u);
    u_max = std::max(u_max, u);
    if (hist) hist[float_key(float(u)) >> shift] += cost;
  }
  if (!cs) c_min = seg.costs.uniform;
  st.sum_c = sum_c;
  st.c_min = c_min;
  st.u_min = u_min;
  st.u_max = u_max;
}

// ---- Newton evaluation pass ---------------------------------------------------

// F and F' of a chunk from its lane sums (costs were applied per entry, or are applied
// here for uniform costs).
template <bool kCosts>
inline void merge_lanes(const SoftTopKSegment& seg, const Sums8& acc_s, const Sums8& acc_d, ChunkStats& st) {
  const double scale = kCosts ? 1.0 : seg.costs.uniform;
  st.f = acc_s.total() * scale;
  st.df = acc_d.total() * scale;
}

// Runs a SIMD pass (soft_topk_simd.h) over a chunk's leading entries and starts the lane
// sums from its lanes; returns how many entries it did (0 without AVX2: sums stay zero).
template <class SimdPass>
inline size_t start_lanes(Sums8& acc_s, Sums8& acc_d, SimdPass pass) {
  double sums[8], spreads[8];
  const size_t done = pass(sums, spreads);
  if (done) {
    acc_s.set_lanes(sums);
    acc_d.set_lanes(spreads);
  }
  return done;
}

// Adds a block of eight mask values and derivatives to the lane sums, weighted by the
// costs when there are per-entry costs.
template <bool kCosts>
inline void add_block(Sums8& acc_s, Sums8& acc_d, const float* s, const float* d, const float* cs) {
  if (kCosts) {
    acc_s.add_product(s, cs);
    acc_d.add_product(d, cs);
  } else {
    acc_s.add(s);
    acc_d.add(d);
  }
}

// Sums sigma(z) and sigma'(z) over a chunk (costs applied by the caller for
// uniform costs), optionally writing the mask. Eight double lanes keep the loop
// vectorisable without reassociating float64 sums.
// The argument is z = beta (u - center) + mu with mu = lambda + beta center: centring
// at a value near the threshold keeps z exact where lambda alone would not be
// representable (|beta u| beyond ~1e13).
template <bool kCosts>
inline void eval_chunk(const SoftTopKSegment& seg, const Chunk& c, double beta, double center, double mu,
                       ChunkStats& st) {
  const float* v = seg.values;
  const float* cs = seg.costs.data;
  float* out = seg.out;
  const double inv_c = 1.0 / seg.costs.uniform;
  Sums8 acc_s, acc_d;
  size_t i = c.begin;
  if constexpr (!kCosts)
    i += start_lanes(acc_s, acc_d, [&](double* sums, double* spreads) {
      return sigmoid_sums_simd(v + i, out + i, c.end - i, inv_c, beta, center, mu, sums, spreads);
    });
  for (; i + 8 <= c.end; i += 8) {
    float s[8], d[8];
    for (int j = 0; j < 8; ++j) {
      double u = kCosts ? double(v[i + j]) / double(cs[i + j]) : double(v[i + j]) * inv_c;
      double z = beta * (u - center) + mu;
      Sigmoid sg = fast_sigmoid(float(z));
      s[j] = sg.s;
      d[j] = sg.ds;
      out[i + j] = sg.s;
    }
    add_block<kCosts>(acc_s, acc_d, s, d, kCosts ? cs + i : nullptr);
  }
  for (; i < c.end; ++i) {
    double u = kCosts ? double(v[i]) / double(cs[i]) : double(v[i]) * inv_c;
    double z = beta * (u - center) + mu;
    Sigmoid sg = fast_sigmoid(float(z));
    out[i] = sg.s;
    double w = kCosts ? double(cs[i]) : 1.0;
    acc_s.add_one(0, w * double(sg.s));
    acc_d.add_one(0, w * double(sg.ds));
  }
  merge_lanes<kCosts>(seg, acc_s, acc_d, st);
}

SPARTAN_VECTOR_CLONES void eval_chunk_uniform(const SoftTopKSegment& seg, const Chunk& c, double beta, double center,
                                              double mu, ChunkStats& st) {
  eval_chunk<false>(seg, c, beta, center, mu, st);
}
SPARTAN_VECTOR_CLONES void eval_chunk_costs(const SoftTopKSegment& seg, const Chunk& c, double beta, double center,
                                            double mu, ChunkStats& st) {
  eval_chunk<true>(seg, c, beta, center, mu, st);
}

// The update pass: out holds m = sigma(z) from a full evaluation; the mask at z + d is
// m / (m + (1 - m) c) with c = e^-d. Exact in real arithmetic; in float it adds at most a
// few 1e-8 to each entry for |d| <= 0.5; at most kMaxUpdatesInRow updates follow a full
// evaluation, so the error cannot build up. Entries at exactly 0 (z < -88) stay 0: sigma(-87.5) < 1e-38.
template <bool kCosts>
inline void update_chunk(const SoftTopKSegment& seg, const Chunk& c, float factor, ChunkStats& st) {
  const float* cs = seg.costs.data;
  float* out = seg.out;
  Sums8 acc_s, acc_d;
  size_t i = c.begin;
  if constexpr (!kCosts)
    i += start_lanes(acc_s, acc_d, [&](double* sums, double* spreads) {
      return mask_update_sums_simd(out + i, c.end - i, factor, sums, spreads);
    });
  for (; i + 8 <= c.end; i += 8) {
    float m[8], s[8], d[8];
    for (int j = 0; j < 8; ++j) m[j] = out[i + j];  // loads, math, stores apart: GCC vectorises this
    for (int j = 0; j < 8; ++j) {
      s[j] = m[j] / (m[j] + (1.0f - m[j]) * factor);
      d[j] = s[j] * (1.0f - s[j]);
    }
    for (int j = 0; j < 8; ++j) out[i + j] = s[j];
    add_block<kCosts>(acc_s, acc_d, s, d, kCosts ? cs + i : nullptr);
  }
  for (; i < c.end; ++i) {
    const float m = out[i];
    const float next = m / (m + (1.0f - m) * factor);
    out[i] = next;
    double w = kCosts ? double(cs[i]) : 1.0;
    acc_s.add_one(0, w * double(next));
    acc_d.add_one(0, w * double(next * (1.0f - next)));
  }
  merge_lanes<kCosts>(seg, acc_s, acc_d, st);
}

SPARTAN_VECTOR_CLONES void update_chunk_uniform(const SoftTopKSegment& seg, const Chunk& c, float factor, ChunkStats& st) {
  update_chunk<false>(seg, c, factor, st);
}
SPARTAN_VECTOR_CLONES void update_chunk_costs(const SoftTopKSegment& seg, const Chunk& c, float factor, ChunkStats& st) {
  update_chunk<true>(seg, c, factor, st);
}

// ---- histogram model ------------------------------------------------------------

// Uses the group's histogram to pick a first lambda and tighten the bracket.
void guess_from_histogram(GroupState& g, const double* hist, Scratch& sc) {
  const size_t bins = size_t(1) << g.hist_bits;
  const int shift = 32 - g.hist_bits;
  sc.bin_lo.clear();
  sc.bin_hi.clear();
  sc.bin_mass.clear();
  for (size_t b = bins; b-- > 0;) {  // descending unit value
    if (hist[b] <= 0) continue;
    double lo = key_to_float(uint32_t(b) << shift);
    double hi = key_to_float(uint32_t(((uint64_t(b) + 1) << shift) - 1));
    lo = std::isnan(lo) ? g.u_min : std::max(lo, g.u_min);
    hi = std::isnan(hi) ? g.u_max : std::min(hi, g.u_max);
    if (hi < lo) hi = lo;  // float(u) rounding can put u just outside its bin
    sc.bin_lo.push_back(lo);
    sc.bin_hi.push_back(hi);
    sc.bin_mass.push_back(hist[b]);
  }
  const size_t m = sc.bin_mass.size();
  const double k = g.k, total = g.total_cost, beta = g.beta;
  // Rigorous bounds from the mass above each bin edge e:
  //   mass(u >= e) = A > k  =>  F(stk_logit(k/A) - beta e) >= 0
  //   A < k                 =>  F(stk_logit((k-A)/(total-A)) - beta e) <= 0
  // each widened for float(u) binning and rounding at that edge's magnitude.
  auto slack = [&](double e) { return stk_slack(beta, e); };
  double above = 0;
  for (size_t j = 0; j < m; ++j) {
    double e = sc.bin_lo[j];  // every entry in bins 0..j has u >= e
    above += sc.bin_mass[j];
    if (above > k) g.hi = std::min(g.hi, stk_logit(k / above) - beta * e + slack(e));
    double e_top = sc.bin_hi[j];  // every entry in bins j.. has u <= e_top
    double above_excl = above - sc.bin_mass[j];
    if (above_excl < k)
      g.lo = std::max(g.lo, stk_logit((k - above_excl) / (total - above_excl)) - beta * e_top - slack(e_top));
  }
  // Start at the crossing bin, interpolated, then Newton on the model.
  double lambda = 0.5 * (g.lo + g.hi);
  above = 0;
  for (size_t j = 0; j < m; ++j) {
    if (above + sc.bin_mass[j] >= k) {
      double frac = (k - above) / sc.bin_mass[j];
      double u = sc.bin_hi[j] - frac * (sc.bin_hi[j] - sc.bin_lo[j]);
      lambda = -beta * u;
      break;
    }
    above += sc.bin_mass[j];
  }
  double lo = g.lo, hi = g.hi;
  for (int it = 0; it < 60; ++it) {
    lambda = std::min(std::max(lambda, lo), hi);
    double f = -k, df = 0;
    for (size_t j = 0; j < m; ++j) {
      double s, ds;
      stk_bin_model(sc.bin_lo[j], sc.bin_hi[j], beta, lambda, s, ds);
      f += sc.bin_mass[j] * s;
      df += sc.bin_mass[j] * ds;
    }
    if (f < 0) lo = lambda; else hi = lambda;
    double next = df > 0 ? lambda - f / df : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::fabs(next - lambda) <= 1e-9 * (1 + std::fabs(lambda)) || std::fabs(f) <= 1e-9 * total) {
      lambda = next;
      break;
    }
    lambda = next;
  }
  g.lambda = std::min(std::max(lambda, g.lo), g.hi);
}

}  // namespace

Status soft_topk_forward(const SoftTopKSegment* segs, size_t num_segs, const SoftTopKGroup* groups,
                         size_t num_groups, SoftTopKResult* results) {
  Scratch& sc = scratch;
  sc.groups.assign(num_groups, GroupState{});
  const size_t threads = num_threads();

  // Scalars, aliasing and histogram layout first: cheap checks before any pass.
  Status st = check_soft_topk_args(segs, num_segs, groups, num_groups);
  if (!st.ok()) return st;
  size_t hist_size = 0;
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const SoftTopKGroup& in = groups[gi];
    GroupState& g = sc.groups[gi];
    stk_reset(g, in.k, in.beta);
    for (size_t s = in.first; s < in.first + in.count; ++s) g.n += segs[s].n;
    g.hist_bits = in.warm ? 0 : hist_bits_for(g.n);
    g.hist_offset = hist_size;
    if (g.hist_bits) hist_size += size_t(1) << g.hist_bits;
  }

  // Pass 1: validate and summarise.
  auto seg_len = [&](size_t s) { return segs[s].n; };
  plan_chunks(groups, num_groups, seg_len, [](size_t) { return true; }, sc.chunks);
  sc.stats.resize(sc.chunks.size());
  sc.hist.assign(hist_size * threads, 0.0);
  {
    auto task = [&](size_t ci, size_t t) {
      const Chunk& c = sc.chunks[ci];
      GroupState& g = sc.groups[c.group];
      double* hist = g.hist_bits ? sc.hist.data() + t * hist_size + g.hist_offset : nullptr;
      scan_chunk(segs[c.segment], c, g, hist, sc.stats[ci]);
    };
    parallel_for(sc.chunks.size(), task, threads);
  }
  for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
    const ChunkStats& st = sc.stats[ci];
    if (!st.err.ok()) return st.err;  // first error in input order
    GroupState& g = sc.groups[sc.chunks[ci].group];
    g.total_cost += st.sum_c;
    g.c_min = std::min(g.c_min, st.c_min);
    g.u_min = std::min(g.u_min, st.u_min);
    g.u_max = std::max(g.u_max, st.u_max);
  }
  for (size_t gi = 0; gi < num_groups; ++gi) {
    GroupState& g = sc.groups[gi];
    const double tol = 1e-9 * g.total_cost;
    if (g.k > g.total_cost + tol) return Status{Code::kBudgetRange, Arg::kNone, groups[gi].first, 0, g.k, g.total_cost};
  }

  // Per group: closed forms, or a starting point and bracket for Newton.
  for (size_t gi = 0; gi < num_groups; ++gi) {
    GroupState& g = sc.groups[gi];
    if (!stk_init(g, (long long)g.n)) {
      if (g.overflow) return Status{Code::kBetaRange, Arg::kNone, groups[gi].first, 0, g.beta, std::max(std::fabs(g.u_min), std::fabs(g.u_max))};
      continue;
    }
    if (!groups[gi].warm && g.hist_bits) {
      double* merged = sc.hist.data() + g.hist_offset;  // thread 0's copy gathers the rest
      for (size_t t = 1; t < threads; ++t) {
        const double* h = sc.hist.data() + t * hist_size + g.hist_offset;
        for (size_t b = 0; b < (size_t(1) << g.hist_bits); ++b) merged[b] += h[b];
      }
      guess_from_histogram(g, merged, sc);
    } else {
      stk_start(g, groups[gi].warm, groups[gi].warm_lambda);
    }
  }

  // Newton passes over the groups still solving, all groups in one pass.
  for (;;) {
    plan_chunks(groups, num_groups, seg_len, [&](size_t gi) { return !sc.groups[gi].done; }, sc.chunks);
    if (sc.chunks.empty()) break;
    sc.stats.resize(sc.chunks.size());
    for (GroupState& g : sc.groups)
      g.update = !g.done && g.updates_in_row >= 0 && g.updates_in_row < kMaxUpdatesInRow && !g.centered &&
                 std::fabs(g.lambda - g.written_lambda) <= 0.5;
    auto task = [&](size_t ci, size_t) {
      const Chunk& c = sc.chunks[ci];
      const GroupState& g = sc.groups[c.group];
      if (g.update) {
        const float factor = float(std::exp(g.written_lambda - g.lambda));
        if (segs[c.segment].costs.data)
          update_chunk_costs(segs[c.segment], c, factor, sc.stats[ci]);
        else
          update_chunk_uniform(segs[c.segment], c, factor, sc.stats[ci]);
        return;
      }
      const double mu = g.centered ? g.mu : g.lambda;
      if (segs[c.segment].costs.data)
        eval_chunk_costs(segs[c.segment], c, g.beta, g.center, mu, sc.stats[ci]);
      else
        eval_chunk_uniform(segs[c.segment], c, g.beta, g.center, mu, sc.stats[ci]);
    };
    parallel_for(sc.chunks.size(), task);
    for (size_t gi = 0; gi < num_groups; ++gi)
      if (!sc.groups[gi].done) {
        GroupState& g = sc.groups[gi];
        g.f = -g.k;
        g.df = 0;
        g.passes++;
        g.written_lambda = g.lambda;
        g.updates_in_row = g.update ? g.updates_in_row + 1 : 0;
      }
    for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
      GroupState& g = sc.groups[sc.chunks[ci].group];
      g.f += sc.stats[ci].f;
      g.df += sc.stats[ci].df;
    }
    for (GroupState& g : sc.groups)
      if (!g.done && g.passes > 1) stk_newton_update(g);
  }

  for (size_t gi = 0; gi < num_groups; ++gi) results[gi] = stk_result(sc.groups[gi]);
  return Status::Ok();
}

}  // namespace spartan
