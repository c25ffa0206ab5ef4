// The two-pass shape of the soft top-k backward and of the fused Spartan gradient: a
// reduction per chunk, the per-group scalar s = sum g m(1-m) / sum c m(1-m) merged from
// the chunks in chunk order (deterministic, whatever the thread count), then a write per
// chunk. One driver for both, so their results agree bit for bit.
#pragma once
#include <cstddef>
#include <vector>

#include "chunks.h"
#include "spartan/parallel.h"
#include "spartan/status.h"

namespace spartan {

struct RatioSums {
  double num = 0, den = 0;  // a chunk's sum g m(1-m) and sum c m(1-m)
  Status err;
  double written = 0;  // what a write pass reports of its chunk, if anything (sum out^2)
};

struct RatioScratch {
  std::vector<Chunk> chunks;
  std::vector<RatioSums> sums;
  std::vector<double> num, s;
};

// reduce(segment, chunk, RatioSums&) validates and sums a chunk (setting err on bad data);
// write(segment, chunk, beta, s, RatioSums&) writes it and may report in the chunk's `written`
// (read back from sc.sums in chunk order). Nothing is written unless every chunk reduced
// without error; the first error in input order is returned. s is 0 for a group whose
// denominator is 0 (every entry saturated).
template <class Segment, class GroupT, class Reduce, class Write>
Status reduce_then_write(const Segment* segs, const GroupT* groups, size_t num_groups, RatioScratch& sc, Reduce reduce,
                         Write write) {
  auto seg_len = [&](size_t s) { return segs[s].n; };
  plan_chunks(groups, num_groups, seg_len, [](size_t) { return true; }, sc.chunks);
  sc.sums.resize(sc.chunks.size());
  auto reduce_task = [&](size_t ci, size_t) { reduce(segs[sc.chunks[ci].segment], sc.chunks[ci], sc.sums[ci]); };
  parallel_for_chunks(sc.chunks, reduce_task);
  sc.num.assign(num_groups, 0.0);
  sc.s.assign(num_groups, 0.0);  // the denominators first
  for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
    if (!sc.sums[ci].err.ok()) return sc.sums[ci].err;
    sc.num[sc.chunks[ci].group] += sc.sums[ci].num;
    sc.s[sc.chunks[ci].group] += sc.sums[ci].den;
  }
  for (size_t g = 0; g < num_groups; ++g) sc.s[g] = sc.s[g] > 0 ? sc.num[g] / sc.s[g] : 0.0;
  auto write_task = [&](size_t ci, size_t) {
    const Chunk& c = sc.chunks[ci];
    write(segs[c.segment], c, groups[c.group].beta, sc.s[c.group], sc.sums[ci]);
  };
  parallel_for_chunks(sc.chunks, write_task);
  return Status::Ok();
}

}  // namespace spartan
