// Implicit-gradient backward of the soft top-k: one reduction pass (which also
// validates) and one elementwise pass. Saturated entries (m = 0 or 1 in float32)
// carry no gradient; a fully saturated group gets s = 0 and a zero gradient.
#include <cmath>
#include <vector>

#include "../common/arg_checks.h"
#include "chunks.h"
#include "fast_math.h"
#include "lanes.h"
#include "ratio_passes.h"
#include "scan.h"
#include "spartan/parallel.h"
#include "spartan/soft_topk.h"

namespace spartan {
namespace {

thread_local RatioScratch scratch;

// The common case (one cost, valid data): one pass that validates (an OR of per-entry
// flags) and sums over eight float64 lanes in a fixed order (deterministic; the same
// with and without SIMD lanes). A bad entry sends the chunk to the general loop, which
// names it.
SPARTAN_VECTOR_CLONES bool reduce_chunk_uniform(const SoftTopKBackwardSegment& seg, const Chunk& c, RatioSums& out) {
  if (seg.costs.data) return false;
  const size_t n = c.end - c.begin;
  const float* m = seg.mask + c.begin;
  const float* g = seg.grad + c.begin;
  Sums8 num, den;
  AnyBad8 bad;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    bad.outside_unit_interval(m + i);
    bad.non_finite(g + i);
    num.add_product_spread(g + i, m + i);
    den.add_spread(m + i);
  }
  uint32_t bad_tail = 0;
  for (; i < n; ++i) {
    bad_tail |= outside_unit_interval_flag(m[i]) | non_finite_flag(g[i]);
    const double w = double(m[i]) * (1.0 - double(m[i]));
    num.add_one(0, double(g[i]) * w);
    den.add_one(0, w);
  }
  if (bad.any() || bad_tail) return false;
  out.num = num.total();
  out.den = seg.costs.uniform * den.total();
  return true;
}

SPARTAN_VECTOR_CLONES void reduce_chunk(const SoftTopKBackwardSegment& seg, const Chunk& c, RatioSums& out) {
  out = RatioSums{};
  if (reduce_chunk_uniform(seg, c, out)) return;  // else the loop below, which also names a bad entry
  double num = 0, den = 0;
  for (size_t i = c.begin; i < c.end; ++i) {
    float m = seg.mask[i], g = seg.grad[i];
    if (!std::isfinite(m)) { out.err = {Code::kNonFinite, Arg::kMask, c.segment, i, m, 0}; return; }
    if (m < 0.0f || m > 1.0f) { out.err = {Code::kMaskRange, Arg::kMask, c.segment, i, m, 0}; return; }
    if (!std::isfinite(g)) { out.err = {Code::kNonFinite, Arg::kGrad, c.segment, i, g, 0}; return; }
    double cost = seg.costs.uniform;
    if (seg.costs.data) {
      float cf = seg.costs.data[i];
      if (!std::isfinite(cf)) { out.err = {Code::kNonFinite, Arg::kCosts, c.segment, i, cf, 0}; return; }
      if (!(cf > 0.0f)) { out.err = {Code::kBadCost, Arg::kCosts, c.segment, i, cf, 0}; return; }
      cost = cf;
    }
    double w = double(m) * (1.0 - double(m));
    num += double(g) * w;
    den += cost * w;
  }
  out.num = num;
  out.den = den;
}

SPARTAN_VECTOR_CLONES void apply_chunk(const SoftTopKBackwardSegment& seg, const Chunk& c, double beta, double s, RatioSums&) {
  const float* m = seg.mask;
  const float* g = seg.grad;
  float* out = seg.out;
  if (seg.costs.data) {
    const float* cs = seg.costs.data;
    for (size_t i = c.begin; i < c.end; ++i) {
      double w = double(m[i]) * (1.0 - double(m[i]));
      out[i] = float(beta * w * (double(g[i]) / double(cs[i]) - s));
    }
  } else {
    const double inv_c = 1.0 / seg.costs.uniform;
    size_t i = c.begin;
    for (; i + 8 <= c.end; i += 8) {  // loads, math, stores apart: GCC vectorises this
      float mv[8], gv[8], o[8];
      for (int j = 0; j < 8; ++j) {
        mv[j] = m[i + j];
        gv[j] = g[i + j];
      }
      for (int j = 0; j < 8; ++j) {
        const double w = double(mv[j]) * (1.0 - double(mv[j]));
        o[j] = float(beta * w * (double(gv[j]) * inv_c - s));
      }
      for (int j = 0; j < 8; ++j) out[i + j] = o[j];
    }
    for (; i < c.end; ++i) {
      double w = double(m[i]) * (1.0 - double(m[i]));
      out[i] = float(beta * w * (double(g[i]) * inv_c - s));
    }
  }
}

}  // namespace

Status soft_topk_backward(const SoftTopKBackwardSegment* segs, size_t num_segs,
                          const SoftTopKBackwardGroup* groups, size_t num_groups) {
  Status st = check_soft_topk_backward_args(segs, num_segs, groups, num_groups);
  if (!st.ok()) return st;
  return reduce_then_write(segs, groups, num_groups, scratch, reduce_chunk, apply_chunk);
}

}  // namespace spartan
