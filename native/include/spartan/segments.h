// Plain descriptions of the tensors a segmented call works on. A segment is one
// tensor (one layer); a group is a run of consecutive segments that share one
// budget and one dual variable lambda (a global budget is one group of every
// segment; per-tensor budgets are one group per segment).
#pragma once
#include <cstddef>
#include <cstdint>

namespace spartan {

// Per-entry costs: either an array of n costs or one cost for every entry.
struct Costs {
  const float* data = nullptr;  // nullptr -> every entry costs `uniform`
  double uniform = 1.0;
  double at(size_t i) const { return data ? double(data[i]) : uniform; }
};

struct Group {
  size_t first = 0;  // first segment of the group
  size_t count = 0;  // number of segments
};

}  // namespace spartan
