// Hard top-k by radix selection over order-preserving keys of the unit values:
// each level histograms one digit of the keys that share the prefix found so far
// (the first level also validates), until the exact key T of the entry where the
// cumulative cost reaches k is known. Then entries above T are kept, and entries
// equal to T are kept in index order while the budget is not yet reached.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/arg_checks.h"
#include "chunks.h"
#include "float_keys.h"
#include "hard_topk_counted.h"
#include "scan.h"
#include "spartan/hard_topk.h"
#include "spartan/parallel.h"

namespace spartan {
namespace {

struct GroupSel {
  double k = 0, total = 0, above = 0;  // above: cost of entries with key > prefix range
  uint64_t prefix = 0;                 // key bits fixed so far
  int used = 0, width = 16, key_bits = 32;
  size_t hist_offset = 0, n = 0;
  bool wide = false;                   // 64-bit keys (per-entry or mixed costs)
  bool done = false;
};

struct ChunkOut {
  double tie_cost = 0, kept_cost = 0;
  size_t kept = 0;
  Status err;
};

struct Scratch {
  std::vector<Chunk> chunks;
  std::vector<ChunkOut> outs;
  std::vector<GroupSel> groups;
  std::vector<double> hist;
  std::vector<double> tie_before, running;
};
thread_local Scratch scratch;

inline uint64_t key_of(const TopKSegment& s, size_t i, bool wide) {
  if (!wide) return float_key(s.values[i]);
  return double_key(double(s.values[i]) / s.costs.at(i));
}

inline double unit_value_of_key(uint64_t key, bool wide) {
  if (!wide) return key_to_float(uint32_t(key));
  uint64_t b = (key >> 63) ? (key & ~(uint64_t(1) << 63)) : ~key;
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}

// True when every entry of the segment costs the same whole number, keys are the
// float bits of the values, and counts times the cost are exact: the fast paths below
// may then count entries instead of adding costs one by one (same sums, exactly).
bool counted(const TopKSegment& seg, const GroupSel& g, size_t n) {
  const double c = seg.costs.uniform;
  return !g.wide && !seg.costs.data && c == std::floor(c) && double(n) * c < 9007199254740992.0;
}

// The fast path of level_chunk: validation is a vectorised pre-scan, and the loop
// has no branch but the (well predicted) prefix test.
void level_chunk_counted(const TopKSegment& seg, const Chunk& c, const GroupSel& g, double* hist, ChunkOut& out,
                         bool validate) {
  const float* v = seg.values;
  if (validate) {
    out.err = check_finite(v, c.begin, c.end, Arg::kValues, c.segment);
    if (!out.err.ok()) return;
  }
  const int shift = g.key_bits - g.used - g.width;
  const uint32_t digit_mask = (uint32_t(1) << g.width) - 1;
  const double cost = seg.costs.uniform;
  if (g.used == 0) {
    for (size_t i = c.begin; i < c.end; ++i) hist[(float_key(v[i]) >> shift) & digit_mask] += cost;
  } else {
    const uint64_t prefix = g.prefix;
    const int pshift = shift + g.width;
    for (size_t i = c.begin; i < c.end; ++i) {
      const uint32_t key = float_key(v[i]);
      if ((uint64_t(key) >> pshift) == prefix) hist[(key >> shift) & digit_mask] += cost;
    }
  }
  if (validate) out.kept_cost = double(c.end - c.begin) * cost;
}

// One radix level (and validation on the first) over a chunk.
void level_chunk(const TopKSegment& seg, const Chunk& c, const GroupSel& g, double* hist, ChunkOut& out,
                 bool validate) {
  if (counted(seg, g, c.end - c.begin)) return level_chunk_counted(seg, c, g, hist, out, validate);
  const int shift = g.key_bits - g.used - g.width;
  const uint64_t digit_mask = (uint64_t(1) << g.width) - 1;
  double total = 0;
  for (size_t i = c.begin; i < c.end; ++i) {
    if (validate) {
      float v = seg.values[i];
      if (!std::isfinite(v)) { out.err = {Code::kNonFinite, Arg::kValues, c.segment, i, v, 0}; return; }
      if (seg.costs.data) {
        float cf = seg.costs.data[i];
        if (!std::isfinite(cf)) { out.err = {Code::kNonFinite, Arg::kCosts, c.segment, i, cf, 0}; return; }
        if (!(cf > 0.0f)) { out.err = {Code::kBadCost, Arg::kCosts, c.segment, i, cf, 0}; return; }
      }
      total += seg.costs.at(i);
    }
    uint64_t key = key_of(seg, i, g.wide);
    if (g.used > 0 && (key >> (shift + g.width)) != g.prefix) continue;
    hist[(key >> shift) & digit_mask] += seg.costs.at(i);
  }
  out.kept_cost = total;  // reused: total cost of the chunk on the validating level
}

void output_chunk(const TopKSegment& seg, const Chunk& c, const GroupSel& g, ChunkOut& out) {
  const uint64_t t = g.prefix;
  if (counted(seg, g, c.end - c.begin)) {  // branch-free: counts, then times the cost
    const float* v = seg.values;
    uint8_t* o = seg.out;
    size_t kept = 0, ties = 0;
    for (size_t i = c.begin; i < c.end; ++i) {
      const uint64_t key = float_key(v[i]);
      const bool keep = key > t;
      o[i] = keep;
      kept += keep;
      ties += key == t;
    }
    out.kept = kept;
    out.kept_cost = double(kept) * seg.costs.uniform;
    out.tie_cost = double(ties) * seg.costs.uniform;
    return;
  }
  double tie = 0, kept_cost = 0;
  size_t kept = 0;
  for (size_t i = c.begin; i < c.end; ++i) {
    uint64_t key = key_of(seg, i, g.wide);
    bool keep = key > t;
    seg.out[i] = keep;
    if (keep) { kept++; kept_cost += seg.costs.at(i); }
    if (key == t) tie += seg.costs.at(i);
  }
  out.tie_cost = tie;
  out.kept = kept;
  out.kept_cost = kept_cost;
}

// Keeps the ties of this chunk while the budget is not reached; `before` is the
// cost of the group's ties in earlier chunks.
void ties_chunk(const TopKSegment& seg, const Chunk& c, const GroupSel& g, double before, ChunkOut& out) {
  const uint64_t t = g.prefix;
  for (size_t i = c.begin; i < c.end; ++i) {
    if (key_of(seg, i, g.wide) != t) continue;
    if (g.above + before < g.k) {
      seg.out[i] = 1;
      out.kept++;
      out.kept_cost += seg.costs.at(i);
    }
    before += seg.costs.at(i);
  }
}

}  // namespace

Status topk_mask(const TopKSegment* segs, size_t num_segs, const TopKGroup* groups, size_t num_groups,
                 TopKResult* results) {
  Scratch& sc = scratch;
  sc.groups.assign(num_groups, GroupSel{});
  Status st = check_topk_args(segs, num_segs, groups, num_groups);
  if (!st.ok()) return st;
  if (topk_counted_applies(segs, num_segs, groups, num_groups) &&
      topk_mask_counted(segs, num_segs, groups, num_groups, results, &st))
    return st;
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const TopKGroup& in = groups[gi];
    GroupSel& g = sc.groups[gi];
    g.k = in.k;
    // Narrow keys of v itself are exact when every entry of the group costs the same.
    g.wide = !group_cost_is_uniform(segs, in);
    for (size_t s = in.first; s < in.first + in.count; ++s) g.n += segs[s].n;
    g.key_bits = g.wide ? 64 : 32;
    g.width = g.n >= (size_t(1) << 16) ? 16 : 8;
  }

  const size_t threads = num_threads();
  auto seg_len = [&](size_t s) { return segs[s].n; };
  bool first_level = true;
  for (;;) {
    size_t hist_size = 0;
    for (GroupSel& g : sc.groups)
      if (!g.done) { g.hist_offset = hist_size; hist_size += size_t(1) << g.width; }
    plan_chunks(groups, num_groups, seg_len, [&](size_t gi) { return !sc.groups[gi].done; }, sc.chunks);
    if (sc.chunks.empty() && !first_level) break;
    sc.outs.assign(sc.chunks.size(), ChunkOut{});
    sc.hist.assign(hist_size * threads, 0.0);
    auto task = [&](size_t ci, size_t t) {
      const Chunk& c = sc.chunks[ci];
      const GroupSel& g = sc.groups[c.group];
      level_chunk(segs[c.segment], c, g, sc.hist.data() + t * hist_size + g.hist_offset, sc.outs[ci], first_level);
    };
    parallel_for_chunks(sc.chunks, task, threads);
    if (first_level) {
      for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
        if (!sc.outs[ci].err.ok()) return sc.outs[ci].err;
        sc.groups[sc.chunks[ci].group].total += sc.outs[ci].kept_cost;
      }
      for (size_t gi = 0; gi < num_groups; ++gi) {
        GroupSel& g = sc.groups[gi];
        if (g.k > g.total * (1 + 1e-9)) return {Code::kBudgetRange, Arg::kNone, groups[gi].first, 0, g.k, g.total};
        if (g.k <= 0 || g.k >= g.total) g.done = true;  // nothing or everything
      }
      first_level = false;
    }
    for (GroupSel& g : sc.groups) {
      if (g.done) continue;
      double* h = sc.hist.data() + g.hist_offset;
      for (size_t t = 1; t < threads; ++t)
        for (size_t b = 0; b < (size_t(1) << g.width); ++b) h[b] += sc.hist[t * hist_size + g.hist_offset + b];
      // Descend from the largest digit to the bin where the cumulative cost reaches k.
      size_t b = (size_t(1) << g.width);
      while (b-- > 0) {
        if (g.above + h[b] >= g.k) break;
        g.above += h[b];
      }
      if (b == size_t(-1)) b = 0;  // rounding: the budget lies in the lowest bin
      g.prefix = (g.prefix << g.width) | b;
      g.used += g.width;
      if (g.used >= g.key_bits) g.done = true;
      else g.width = std::min(g.width, g.key_bits - g.used);
    }
  }

  // Output: keys above T kept; then the ties at T in index order.
  for (GroupSel& g : sc.groups) g.done = false;
  plan_chunks(groups, num_groups, seg_len, [](size_t) { return true; }, sc.chunks);
  sc.outs.assign(sc.chunks.size(), ChunkOut{});
  for (size_t gi = 0; gi < num_groups; ++gi) {
    GroupSel& g = sc.groups[gi];
    if (g.k <= 0) { g.prefix = ~uint64_t(0); g.above = 0; }  // keys never exceed it: keep nothing
    else if (g.k >= g.total) { g.prefix = 0; g.above = g.total; g.k = g.total + 1; }  // keep all (ties too)
  }
  auto out_task = [&](size_t ci, size_t) {
    const Chunk& c = sc.chunks[ci];
    output_chunk(segs[c.segment], c, sc.groups[c.group], sc.outs[ci]);
  };
  parallel_for_chunks(sc.chunks, out_task);
  std::vector<double>& tie_before = sc.tie_before;
  tie_before.resize(sc.chunks.size());
  sc.running.assign(num_groups, 0.0);
  for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
    tie_before[ci] = sc.running[sc.chunks[ci].group];
    sc.running[sc.chunks[ci].group] += sc.outs[ci].tie_cost;
  }
  auto tie_task = [&](size_t ci, size_t) {
    if (sc.outs[ci].tie_cost <= 0) return;
    const Chunk& c = sc.chunks[ci];
    ties_chunk(segs[c.segment], c, sc.groups[c.group], tie_before[ci], sc.outs[ci]);
  };
  parallel_for_chunks(sc.chunks, tie_task);

  for (size_t gi = 0; gi < num_groups; ++gi) results[gi] = TopKResult{0, 0, std::nan("")};
  for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
    TopKResult& r = results[sc.chunks[ci].group];
    r.kept += sc.outs[ci].kept;
    r.kept_cost += sc.outs[ci].kept_cost;
  }
  for (size_t gi = 0; gi < num_groups; ++gi)
    if (results[gi].kept > 0 && groups[gi].k > 0 && groups[gi].k < sc.groups[gi].total)
      results[gi].threshold = unit_value_of_key(sc.groups[gi].prefix, sc.groups[gi].wide) /
                              (sc.groups[gi].wide ? 1.0 : segs[groups[gi].first].costs.uniform);  // 32-bit keys are raw v
  return Status::Ok();
}

}  // namespace spartan
