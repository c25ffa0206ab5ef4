// Hard top-k: the shortest prefix of the entries sorted by v/c (descending, ties to
// the lower index, segments in order) whose cost reaches k. With unit costs and an
// integer k that is exactly the top k. Radix selection: linear time, no sort.
#pragma once
#include <limits>

#include "spartan/segments.h"
#include "spartan/status.h"

namespace spartan {

struct TopKSegment {
  const float* values = nullptr;
  size_t n = 0;
  Costs costs;
  uint8_t* out = nullptr;
};

// A speed hint for the CPU's sampled-band path (uniform whole-number costs): a value
// band [lo, hi] that probably holds the k-th largest value, such as last step's next_lo /
// next_hi. It replaces the sample; a band that misses costs one more counting pass, and
// the results never depend on it. `margin` asks for next_lo / next_hi: the values about
// `margin` entries above and below the k-th. Other paths ignore both.
struct TopKBandHint {
  float lo = std::numeric_limits<float>::quiet_NaN(), hi = std::numeric_limits<float>::quiet_NaN();
  double margin = 0;
};

struct TopKGroup : Group {
  double k = 0.0;
  TopKBandHint hint;
};

struct TopKResult {
  double kept_cost = 0.0;
  size_t kept = 0;
  double threshold = 0.0;  // unit value v/c of the last kept entry (NaN when none kept)
  // The band-path suggestion for the next call's hint (NaN where none), and whether this
  // call's hint held the k-th value.
  float next_lo = std::numeric_limits<float>::quiet_NaN(), next_hi = std::numeric_limits<float>::quiet_NaN();
  bool hint_held = false;
};

Status topk_mask(const TopKSegment* segments, size_t num_segments, const TopKGroup* groups,
                 size_t num_groups, TopKResult* results);

}  // namespace spartan
