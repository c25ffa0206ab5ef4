// Scalar and aliasing checks of the segmented ops, shared by the CPU and CUDA entry
// points (the data checks happen in each backend's first pass), so both report the
// same error for the same call.
#pragma once
#include <cmath>

#include "../cpu/chunks.h"
#include "spartan/hard_topk.h"
#include "spartan/soft_topk.h"

namespace spartan {

// The smallest uniform cost (a JS number): the smallest positive float32, as per-entry costs
// are, so u = value / cost stays finite (a double subnormal cost made it infinite: a NaN mask).
constexpr double kMinUniformCost = 1.401298464324817e-45;

inline Status check_soft_topk_args(const SoftTopKSegment* segs, size_t num_segs, const SoftTopKGroup* groups,
                                   size_t num_groups) {
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const SoftTopKGroup& in = groups[gi];
    if (!(in.k >= 0) || !std::isfinite(in.k)) return Status{Code::kBudgetRange, Arg::kNone, in.first, 0, in.k, 0};
    if (!(in.beta > 0) || !std::isfinite(in.beta)) return Status{Code::kBetaRange, Arg::kNone, in.first, 0, in.beta, 0};
    if (in.first + in.count > num_segs) return Status{Code::kInternal};
    for (size_t s = in.first; s < in.first + in.count; ++s) {
      const SoftTopKSegment& seg = segs[s];
      if (!seg.costs.data && !(seg.costs.uniform >= kMinUniformCost && std::isfinite(seg.costs.uniform)))
        return Status{Code::kBadCost, Arg::kCosts, s, 0, seg.costs.uniform, 0};
      for (size_t t = 0; t < num_segs; ++t) {
        if (overlaps(seg.out, seg.n * 4, segs[t].values, segs[t].n * 4) ||
            (segs[t].costs.data && overlaps(seg.out, seg.n * 4, segs[t].costs.data, segs[t].n * 4)) ||
            (t != s && overlaps(seg.out, seg.n * 4, segs[t].out, segs[t].n * 4)))
          return Status{Code::kAlias, Arg::kOut, s, 0, 0, 0};
      }
    }
  }
  return Status::Ok();
}

// The backward's out may replace its own segment's mask or grad elementwise, but must
// not overlap anything else that is still to be read.
inline Status check_soft_topk_backward_args(const SoftTopKBackwardSegment* segs, size_t num_segs,
                                            const SoftTopKBackwardGroup* groups, size_t num_groups) {
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const SoftTopKBackwardGroup& g = groups[gi];
    if (!(g.beta > 0) || !std::isfinite(g.beta)) return {Code::kBetaRange, Arg::kNone, g.first, 0, g.beta, 0};
    if (g.first + g.count > num_segs) return {Code::kInternal};
    for (size_t s = g.first; s < g.first + g.count; ++s) {
      const SoftTopKBackwardSegment& seg = segs[s];
      if (!seg.costs.data && !(seg.costs.uniform >= kMinUniformCost && std::isfinite(seg.costs.uniform)))
        return {Code::kBadCost, Arg::kCosts, s, 0, seg.costs.uniform, 0};
      for (size_t t = 0; t < num_segs; ++t) {
        const SoftTopKBackwardSegment& o = segs[t];
        bool same = t == s;
        if ((!same && (overlaps(seg.out, seg.n * 4, o.mask, o.n * 4) || overlaps(seg.out, seg.n * 4, o.grad, o.n * 4) ||
                       overlaps(seg.out, seg.n * 4, o.out, o.n * 4))) ||
            (o.costs.data && overlaps(seg.out, seg.n * 4, o.costs.data, o.n * 4)) ||
            (same && ((overlaps(seg.out, seg.n * 4, o.mask, o.n * 4) && seg.out != o.mask) ||
                      (overlaps(seg.out, seg.n * 4, o.grad, o.n * 4) && seg.out != o.grad))))
          return {Code::kAlias, Arg::kOut, s, 0, 0, 0};
      }
    }
  }
  return Status::Ok();
}

inline Status check_topk_args(const TopKSegment* segs, size_t num_segs, const TopKGroup* groups, size_t num_groups) {
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const TopKGroup& in = groups[gi];
    if (!(in.k >= 0) || !std::isfinite(in.k)) return {Code::kBudgetRange, Arg::kNone, in.first, 0, in.k, 0};
    if (in.first + in.count > num_segs) return {Code::kInternal};
    for (size_t s = in.first; s < in.first + in.count; ++s) {
      const TopKSegment& seg = segs[s];
      if (!seg.costs.data && !(seg.costs.uniform >= kMinUniformCost && std::isfinite(seg.costs.uniform)))
        return {Code::kBadCost, Arg::kCosts, s, 0, seg.costs.uniform, 0};
      for (size_t t = 0; t < num_segs; ++t)
        if (overlaps(seg.out, seg.n, segs[t].values, segs[t].n * 4) ||
            (segs[t].costs.data && overlaps(seg.out, seg.n, segs[t].costs.data, segs[t].n * 4)) ||
            (t != s && overlaps(seg.out, seg.n, segs[t].out, segs[t].n)))
          return {Code::kAlias, Arg::kOut, s, 0, 0, 0};
    }
  }
  return Status::Ok();
}

// True when every entry of the group costs the same (no per-entry costs, one uniform
// cost for all its segments): then keys of v itself order v / c, and counts are exact.
template <class Segment>
bool group_cost_is_uniform(const Segment* segs, const Group& g) {
  for (size_t s = g.first; s < g.first + g.count; ++s)
    if (segs[s].costs.data || segs[s].costs.uniform != segs[g.first].costs.uniform) return false;
  return true;
}

}  // namespace spartan
