// Hard top-k when every entry of a group costs the same whole number c (topk_mask's
// contract: keep the fewest entries, by descending value and then index, whose cost
// reaches k). Then "cost reaches k" is "count reaches r" for one integer r, and T, the
// r-th largest value, is found from a sampled band instead of radix histograms:
//   host    a strided sample of the group's values; its order statistics around the
//           quantile r / n bound a band [lo, hi] that holds T but for a vanishing chance
//           (or the caller's hint, e.g. last step's band: no sample; if it misses, the
//           sample is taken and pass 1 runs again)
//   pass 1  validate; count the values above hi and those at or above lo (compares only:
//           the loop vectorises, where a histogram pass is a scalar scatter)
//   host    whether the band holds T; if not (or a sampled value is not finite) decline,
//           and the radix path in hard_topk.cpp does the work
//   pass 2  out = (v > hi), vectorised; the few entries in the band are gathered
//   host    nth_element over the band's values gives T; gathered entries above T are
//           kept, and those equal to T in index order up to r.
// Values compare as floats, so -0 ties with +0 as in the radix path's keys.
#include "hard_topk_counted.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "../common/arg_checks.h"
#include "chunks.h"
#include "fast_math.h"
#include "scan.h"
#include "spartan/parallel.h"

namespace spartan {
namespace {

constexpr float kInfF = HUGE_VALF;

struct BandGroup {
  double cost = 1, k = 0, total = 0;
  size_t n = 0;
  size_t need = 0;          // entries to keep
  size_t above = 0;         // entries above hi (pass 1)
  size_t at_or_above_lo = 0;
  float lo = -kInfF, hi = kInfF;
  bool select = false;      // false: keep nothing (k <= 0) or everything (k >= total)
  bool keep_all = false;
  bool hinted = false;      // the band is the caller's hint (not sampled)
  bool holds() const { return above < need && need <= at_or_above_lo; }
};

struct ChunkOut {
  uint32_t above = 0, at_or_above_lo = 0;
  size_t band_offset = 0, kept = 0;
  bool values_changed = false;  // pass 2 did not find pass 1's band entries: the values changed
  Status err;
};

struct Scratch {
  std::vector<Chunk> chunks;
  std::vector<ChunkOut> outs;
  std::vector<BandGroup> groups;
  std::vector<float> sample, band_values, pick;
  std::vector<uint32_t> band_index;
};
thread_local Scratch scratch;

// The smallest r with r * cost >= k (exact: both sides are integers below 2^53, or k).
size_t entries_needed(double k, double cost) {
  double r = std::ceil(k / cost);
  while (r > 1 && (r - 1) * cost >= k) r -= 1;
  while (r * cost < k) r += 1;
  return size_t(r);
}

}  // namespace

// About n^(2/3) samples: the band then holds about n^(2/3) entries too, so sampling and
// selecting in the band cost alike, and both are small next to the passes.
size_t topk_sample_size(size_t n) {
  const double s = std::cbrt(double(n));
  return std::min(n, std::max<size_t>(std::min<size_t>(n, 1024), std::min<size_t>(65536, size_t(s * s))));
}

namespace {

// The band from a strided sample; false when a sampled value is not finite (the radix
// path then names the first bad entry).
bool choose_band(const TopKSegment* segs, const TopKGroup& in, BandGroup& g, std::vector<float>& sample) {
  const size_t s = topk_sample_size(g.n);
  sample.resize(s);
  size_t seg = in.first, seg_start = 0;
  for (size_t j = 0; j < s; ++j) {
    const size_t p = size_t((unsigned __int128)j * g.n / s);
    while (p >= seg_start + segs[seg].n) seg_start += segs[seg++].n;
    const float v = segs[seg].values[p - seg_start];
    if (!std::isfinite(v)) return false;
    sample[j] = v;
  }
  // T is near descending rank need * s / n of the sample; allow 4 standard deviations of
  // that rank (binomial) plus 2 on each side: a miss (about 1 in 10^4) costs one pass.
  const double q = double(g.need) / double(g.n);
  const double centre = q * double(s) - 1;
  const double margin = std::ceil(4 * std::sqrt(double(s) * q * (1 - q))) + 2;
  const double top = centre - margin, bottom = centre + margin;
  auto desc = std::greater<float>();
  if (top < 0) {
    g.hi = kInfF;
  } else {
    auto at = sample.begin() + ptrdiff_t(top);
    std::nth_element(sample.begin(), at, sample.end(), desc);
    g.hi = *at;
  }
  if (bottom >= double(s - 1)) {
    g.lo = -kInfF;
  } else {
    auto at = sample.begin() + ptrdiff_t(std::ceil(bottom));
    std::nth_element(sample.begin(), at, sample.end(), desc);
    g.lo = *at;
  }
  return true;
}

SPARTAN_VECTOR_CLONES void count_chunk(const TopKSegment& seg, const Chunk& c, const BandGroup& g, ChunkOut& out) {
  const float* v = seg.values + c.begin;
  const size_t len = c.end - c.begin;
  out.err = check_finite(seg.values, c.begin, c.end, Arg::kValues, c.segment);
  if (!out.err.ok() || !g.select) return;
  const float lo = g.lo, hi = g.hi;
  uint32_t above = 0, at_lo = 0;
  for (size_t i = 0; i < len; ++i) {
    above += v[i] > hi;
    at_lo += v[i] >= lo;
  }
  out.above = above;
  out.at_or_above_lo = at_lo;
}

SPARTAN_VECTOR_CLONES void output_chunk(const TopKSegment& seg, const Chunk& c, const BandGroup& g, float* band_values,
                  uint32_t* band_index, ChunkOut& out) {
  uint8_t* o = seg.out + c.begin;
  const float* v = seg.values + c.begin;
  const size_t len = c.end - c.begin;
  if (!g.select) {
    std::memset(o, g.keep_all ? 1 : 0, len);
    out.kept = g.keep_all ? len : 0;
    return;
  }
  // 1 above the band, 2 in it, 0 below (lo <= hi, so v > hi implies v >= lo); then the
  // 2s, a few percent of the entries, are found eight bytes at a time and gathered (their
  // outputs are rewritten once T is known).
  const float lo = g.lo, hi = g.hi;
  for (size_t i = 0; i < len; ++i) o[i] = uint8_t(2 * uint8_t(v[i] >= lo) - uint8_t(v[i] > hi));
  out.kept = out.above;
  // The gather writes no more than pass 1 counted: values in a SharedArrayBuffer that another
  // thread writes meanwhile may put more entries in the band (which overran the buffers), or
  // fewer; either way the chunk is marked and the caller declines to the radix path.
  const size_t room = out.at_or_above_lo - out.above;
  size_t m = 0, i = 0;
  auto gather = [&](size_t j) {
    if (m == room) return false;
    band_values[m] = v[j];
    band_index[m++] = uint32_t(c.begin + j);
    return true;
  };
  for (; i + 8 <= len; i += 8) {
    uint64_t word;
    std::memcpy(&word, o + i, 8);
    if (!(word & 0x0202020202020202ull)) continue;
    for (size_t j = i; j < i + 8; ++j)
      if (o[j] == 2 && !gather(j)) { out.values_changed = true; return; }
  }
  for (; i < len; ++i)
    if (o[i] == 2 && !gather(i)) { out.values_changed = true; return; }
  out.values_changed = m != room;
}

// The next call's hint: the values about `margin` entries above and below T (pick holds the
// band's values, partitioned around T at in_band - 1); the band's own edge where that
// reaches past it.
void suggest_band(const BandGroup& g, double margin, size_t in_band, std::vector<float>& pick, TopKResult& r) {
  const size_t w = std::max<size_t>(1, size_t(std::min(margin, double(pick.size()))));
  const size_t t = in_band - 1;
  auto desc = std::greater<float>();
  if (w <= t) {
    auto at = pick.begin() + ptrdiff_t(t - w);
    std::nth_element(pick.begin(), at, pick.begin() + ptrdiff_t(t), desc);
    r.next_hi = *at;
  } else {
    r.next_hi = g.hi;
  }
  if (t + w < pick.size()) {
    auto at = pick.begin() + ptrdiff_t(t + w);
    std::nth_element(pick.begin() + ptrdiff_t(t + 1), at, pick.end(), desc);
    r.next_lo = *at;
  } else {
    r.next_lo = g.lo;
  }
}

}  // namespace

bool topk_counted_applies(const TopKSegment* segs, size_t, const TopKGroup* groups, size_t num_groups) {
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const TopKGroup& in = groups[gi];
    if (in.count == 0 || !group_cost_is_uniform(segs, in)) return false;
    const double c = segs[in.first].costs.uniform;
    if (c != std::floor(c)) return false;
    size_t n = 0;
    for (size_t s = in.first; s < in.first + in.count; ++s) {
      if (segs[s].n >= (size_t(1) << 32)) return false;
      n += segs[s].n;
    }
    if (!(double(n) * c < 9007199254740992.0)) return false;
  }
  return true;
}

bool topk_mask_counted(const TopKSegment* segs, size_t, const TopKGroup* groups, size_t num_groups,
                       TopKResult* results, Status* status) {
  Scratch& sc = scratch;
  sc.groups.assign(num_groups, BandGroup{});
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const TopKGroup& in = groups[gi];
    BandGroup& g = sc.groups[gi];
    g.cost = segs[in.first].costs.uniform;
    g.k = in.k;
    for (size_t s = in.first; s < in.first + in.count; ++s) g.n += segs[s].n;
    g.total = double(g.n) * g.cost;
    g.select = g.k > 0 && g.k < g.total;
    g.keep_all = g.k >= g.total;
    if (!g.select) continue;
    g.need = entries_needed(g.k, g.cost);
    const TopKBandHint& h = in.hint;
    if (!std::isnan(h.lo) && !std::isnan(h.hi) && h.lo <= h.hi) {
      g.lo = h.lo;
      g.hi = h.hi;
      g.hinted = true;
    } else if (!choose_band(segs, in, g, sc.sample)) {
      return false;
    }
  }

  auto seg_len = [&](size_t s) { return segs[s].n; };
  plan_chunks(groups, num_groups, seg_len, [](size_t) { return true; }, sc.chunks);
  // Pass 1 over every chunk: validation, and each group's counts around its band.
  auto count_all = [&]() {
    sc.outs.assign(sc.chunks.size(), ChunkOut{});
    auto count_task = [&](size_t ci, size_t) {
      const Chunk& c = sc.chunks[ci];
      count_chunk(segs[c.segment], c, sc.groups[c.group], sc.outs[ci]);
    };
    parallel_for_chunks(sc.chunks, count_task);
    for (BandGroup& g : sc.groups) g.above = g.at_or_above_lo = 0;
    for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
      BandGroup& g = sc.groups[sc.chunks[ci].group];
      g.above += sc.outs[ci].above;
      g.at_or_above_lo += sc.outs[ci].at_or_above_lo;
    }
  };
  count_all();
  for (const ChunkOut& o : sc.outs)
    if (!o.err.ok()) { *status = o.err; return true; }  // the first bad entry in input order; nothing written
  for (size_t gi = 0; gi < num_groups; ++gi)
    if (sc.groups[gi].k > sc.groups[gi].total * (1 + 1e-9)) {
      *status = {Code::kBudgetRange, Arg::kNone, groups[gi].first, 0, sc.groups[gi].k, sc.groups[gi].total};
      return true;
    }
  bool recount = false;
  for (size_t gi = 0; gi < num_groups; ++gi) {
    BandGroup& g = sc.groups[gi];
    if (!g.select || g.holds()) continue;
    if (!g.hinted) return false;  // the sampled band missed T: the radix path runs
    g.hinted = false;             // the hint missed: sample after all
    if (!choose_band(segs, groups[gi], g, sc.sample)) return false;
    recount = true;
  }
  if (recount) count_all();
  for (const BandGroup& g : sc.groups)
    if (g.select && !g.holds()) return false;  // T outside the band
  size_t band_total = 0;
  for (size_t ci = 0; ci < sc.chunks.size(); ++ci) {
    sc.outs[ci].band_offset = band_total;
    band_total += sc.outs[ci].at_or_above_lo - sc.outs[ci].above;
  }

  if (sc.band_values.size() < band_total) {
    sc.band_values.resize(band_total);
    sc.band_index.resize(band_total);
  }
  auto output_task = [&](size_t ci, size_t) {
    const Chunk& c = sc.chunks[ci];
    output_chunk(segs[c.segment], c, sc.groups[c.group], sc.band_values.data() + sc.outs[ci].band_offset,
                 sc.band_index.data() + sc.outs[ci].band_offset, sc.outs[ci]);
  };
  parallel_for_chunks(sc.chunks, output_task);
  for (const ChunkOut& o : sc.outs)
    if (o.values_changed) return false;  // the values changed under the op: the radix path reads them again

  // Per group: T among the band's values, then the gathered entries' outputs in index order
  // (a group's chunks are consecutive, in segment and index order).
  for (size_t gi = 0; gi < num_groups; ++gi) {
    results[gi] = TopKResult{};
    results[gi].threshold = std::nan("");
  }
  for (size_t ci = 0; ci < sc.chunks.size();) {
    const size_t gi = sc.chunks[ci].group;
    size_t end = ci;
    while (end < sc.chunks.size() && sc.chunks[end].group == gi) ++end;
    BandGroup& g = sc.groups[gi];
    if (g.select) {
      const size_t first = sc.outs[ci].band_offset;
      const size_t count = g.at_or_above_lo - g.above;
      sc.pick.assign(sc.band_values.begin() + first, sc.band_values.begin() + first + count);
      const size_t in_band = g.need - g.above;  // 1 <= in_band <= count: the band holds T
      std::nth_element(sc.pick.begin(), sc.pick.begin() + (in_band - 1), sc.pick.end(), std::greater<float>());
      const float t = sc.pick[in_band - 1];
      results[gi].threshold = (t == 0.0f ? 0.0 : double(t)) / g.cost;  // unit value; +0 for -0, as the radix path reports it
      results[gi].hint_held = g.hinted;
      if (groups[gi].hint.margin > 0) suggest_band(g, groups[gi].hint.margin, in_band, sc.pick, results[gi]);
      size_t greater = 0;
      for (float x : sc.pick) greater += x > t;
      size_t ties = in_band - greater;
      for (size_t c = ci; c < end; ++c) {
        const size_t stop = c + 1 < end ? sc.outs[c + 1].band_offset : first + count;
        uint8_t* o = segs[sc.chunks[c].segment].out;
        for (size_t j = sc.outs[c].band_offset; j < stop; ++j) {
          const float x = sc.band_values[j];
          const bool tie = x == t && ties > 0;
          const bool keep = x > t || tie;
          ties -= tie;
          o[sc.band_index[j]] = keep;
          sc.outs[c].kept += keep;
        }
      }
    }
    for (size_t c = ci; c < end; ++c) results[gi].kept += sc.outs[c].kept;
    results[gi].kept_cost = double(results[gi].kept) * g.cost;
    ci = end;
  }
  *status = Status::Ok();
  return true;
}

}  // namespace spartan
