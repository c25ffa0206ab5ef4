// Hard top-k: the shortest prefix of the entries sorted by v/c (descending, ties to
// the lower index, segments in order) whose cost reaches k. With unit costs and an
// integer k that is exactly the top k. Radix selection: linear time, no sort.
#pragma once
#include "spartan/segments.h"
#include "spartan/status.h"

namespace spartan {

struct TopKSegment {
  const float* values = nullptr;
  size_t n = 0;
  Costs costs;
  uint8_t* out = nullptr;
};

struct TopKGroup : Group {
  double k = 0.0;
};

struct TopKResult {
  double kept_cost = 0.0;
  size_t kept = 0;
  double threshold = 0.0;  // unit value v/c of the last kept entry (NaN when none kept)
};

Status topk_mask(const TopKSegment* segments, size_t num_segments, const TopKGroup* groups,
                 size_t num_groups, TopKResult* results);

}  // namespace spartan
