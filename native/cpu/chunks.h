// Splitting segmented inputs into fixed-size chunks for the thread pool. A chunk
// never crosses a segment, so each has one group, one cost model and one output.
// Per-chunk partial sums are merged in chunk order: results do not depend on the
// thread count or on scheduling.
#pragma once
#include <cstddef>
#include <vector>

#include "spartan/parallel.h"
#include "spartan/segments.h"

namespace spartan {

struct Chunk {
  size_t segment, group, begin, end;
};

constexpr size_t kChunkSize = size_t(1) << 15;

// Fills `chunks` (reused storage: no allocation once it has grown) with the chunks
// of every segment of the groups for which active(group) is true.
// GroupT is Group or a type derived from it (templated so that indexing uses the
// real element size: a derived array must never be walked through a Group*).
template <class GroupT, class SegLen, class Active>
void plan_chunks(const GroupT* groups, size_t num_groups, SegLen seg_len, Active active,
                 std::vector<Chunk>& chunks) {
  chunks.clear();
  for (size_t g = 0; g < num_groups; ++g) {
    if (!active(g)) continue;
    for (size_t s = groups[g].first; s < groups[g].first + groups[g].count; ++s) {
      size_t n = seg_len(s);
      for (size_t b = 0; b < n; b += kChunkSize) chunks.push_back({s, g, b, b + kChunkSize < n ? b + kChunkSize : n});
    }
  }
}

// parallel_for over planned chunks, each thread taking about the same number of entries
// (chunks differ in size where segments do). Which thread runs a chunk does not change
// any result: per-chunk partials merge in chunk order.
template <class F>
void parallel_for_chunks(const std::vector<Chunk>& chunks, F& f, size_t max_threads = ~size_t(0)) {
  thread_local std::vector<size_t> ends;
  ends.resize(chunks.size());
  size_t total = 0;
  for (size_t i = 0; i < chunks.size(); ++i) ends[i] = total += chunks[i].end - chunks[i].begin;
  parallel_for_sized(chunks.size(), ends.data(), f, max_threads);
}

// True when [a, a + na) and [b, b + nb) (byte ranges) overlap.
inline bool overlaps(const void* a, size_t na, const void* b, size_t nb) {
  const char* pa = static_cast<const char*>(a);
  const char* pb = static_cast<const char*>(b);
  return na && nb && pa < pb + nb && pb < pa + na;
}

}  // namespace spartan
