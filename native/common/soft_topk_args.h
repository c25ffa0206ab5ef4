// Scalar and aliasing checks of a soft top-k forward call, shared by the CPU and
// CUDA entry points (the data checks happen in each backend's first pass).
#pragma once
#include <cmath>

#include "../cpu/chunks.h"
#include "spartan/soft_topk.h"

namespace spartan {

inline Status check_soft_topk_args(const SoftTopKSegment* segs, size_t num_segs, const SoftTopKGroup* groups,
                                   size_t num_groups) {
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const SoftTopKGroup& in = groups[gi];
    if (!(in.k >= 0) || !std::isfinite(in.k)) return Status{Code::kBudgetRange, Arg::kNone, in.first, 0, in.k, 0};
    if (!(in.beta > 0) || !std::isfinite(in.beta)) return Status{Code::kBetaRange, Arg::kNone, in.first, 0, in.beta, 0};
    if (in.first + in.count > num_segs) return Status{Code::kInternal};
    for (size_t s = in.first; s < in.first + in.count; ++s) {
      const SoftTopKSegment& seg = segs[s];
      if (!seg.costs.data && !(seg.costs.uniform > 0 && std::isfinite(seg.costs.uniform)))
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

}  // namespace spartan
