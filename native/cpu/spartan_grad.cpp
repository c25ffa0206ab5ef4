// Fused Spartan gradient for element masks (see spartan/spartan_grad.h). The chunks,
// the eight float64 lanes and the float roundings are those of mask_upstream,
// soft_topk_backward and spartan_param_grad, so the result is theirs bit for bit.
#include <cmath>
#include <vector>

#include "chunks.h"
#include "fast_math.h"
#include "lanes.h"
#include "ratio_passes.h"
#include "scan.h"
#include "spartan/parallel.h"
#include "spartan/spartan_grad.h"

namespace spartan {
namespace {

thread_local RatioScratch scratch;

// G' at entry i: G, or G times the forward set as 0 / 1 (what apply_mask writes).
// kHard is a template flag so that no loop carries the branch (which kept GCC from
// vectorising them).
template <bool kHard>
inline float masked_grad(const SpartanGradSegment& seg, size_t i) {
  return kHard ? seg.grad_w[i] * float(seg.hard[i] != 0) : seg.grad_w[i];
}

// The first bad entry of a chunk: gradW first, then theta, then the mask.
Status name_bad_entry(const SpartanGradSegment& seg, const Chunk& c) {
  Status st = check_finite(seg.grad_w, c.begin, c.end, Arg::kGradW, c.segment);
  if (st.ok()) st = check_finite(seg.theta, c.begin, c.end, Arg::kTheta, c.segment);
  if (st.ok()) st = check_unit_interval(seg.mask, c.begin, c.end, Arg::kMask, c.segment);
  return st;
}

// Pass 1: validate, then sum g w and w (g = G' theta in float, as mask_upstream stores it).
template <bool kHard>
inline void reduce_range(const SpartanGradSegment& seg, const Chunk& c, RatioSums& out) {
  out = RatioSums{};
  Sums8 num, den;
  AnyBad8 bad;
  uint32_t bad_tail = 0;
  size_t i = c.begin;
  for (; i + 8 <= c.end; i += 8) {
    float g[8];
    for (int j = 0; j < 8; ++j) g[j] = masked_grad<kHard>(seg, i + j) * seg.theta[i + j];
    bad.non_finite(seg.grad_w + i);
    bad.non_finite(seg.theta + i);
    bad.outside_unit_interval(seg.mask + i);
    num.add_product_spread(g, seg.mask + i);
    den.add_spread(seg.mask + i);
  }
  for (; i < c.end; ++i) {
    const float m = seg.mask[i];
    bad_tail |= non_finite_flag(seg.grad_w[i]) | non_finite_flag(seg.theta[i]) | outside_unit_interval_flag(m);
    const double w = double(m) * (1.0 - double(m));
    num.add_one(0, double(masked_grad<kHard>(seg, i) * seg.theta[i]) * w);
    den.add_one(0, w);
  }
  if (bad.any() || bad_tail) {
    out.err = name_bad_entry(seg, c);
    return;
  }
  out.num = num.total();
  out.den = den.total();
}

// Pass 2: out = G' m + sign(theta) float(beta w (g - s)); loads, math, stores apart. It
// also sums out^2 from registers, the squares in float and their sum in float64 lanes (with
// double squares and a finite flag per entry the pass took 32 % longer; this way about 19 %,
// less than the optimizer's own pass over the result, which it spares). A NaN or Inf output
// makes the sum non-finite, which is how the caller learns of one without a flag per entry;
// a huge finite output (|x| > 1.8e19) can too, and the caller then checks the chunk and sums
// it again with double squares.
template <bool kHard>
inline void write_range(const SpartanGradSegment& seg, const Chunk& c, double beta, double s, RatioSums& r) {
  Sums8 sq;
  size_t i = c.begin;
  for (; i + 8 <= c.end; i += 8) {
    float gp[8], th[8], m[8], o[8];
    for (int j = 0; j < 8; ++j) {
      gp[j] = masked_grad<kHard>(seg, i + j);
      th[j] = seg.theta[i + j];
      m[j] = seg.mask[i + j];
    }
    for (int j = 0; j < 8; ++j) {
      const double w = double(m[j]) * (1.0 - double(m[j]));
      const float vjp = float(beta * w * (double(gp[j] * th[j]) - s));
      o[j] = gp[j] * m[j] + sign_of(th[j]) * vjp;
    }
    float o2[8];
    for (int j = 0; j < 8; ++j) {
      seg.out[i + j] = o[j];
      o2[j] = o[j] * o[j];
    }
    sq.add(o2);
  }
  for (; i < c.end; ++i) {
    const float gp = masked_grad<kHard>(seg, i), m = seg.mask[i];
    const double w = double(m) * (1.0 - double(m));
    const float vjp = float(beta * w * (double(gp * seg.theta[i]) - s));
    const float o = gp * m + sign_of(seg.theta[i]) * vjp;
    seg.out[i] = o;
    sq.add_one(0, double(o * o));
  }
  r.written = sq.total();  // sum(out^2)
}

// The slow path of a chunk whose float squares did not sum to a finite number: the first
// non-finite output, or else (huge finite outputs) the sum again with double squares.
Status recheck_chunk(const SpartanGradSegment& seg, const Chunk& c, RatioSums& r) {
  Status st = check_finite(seg.out, c.begin, c.end, Arg::kOut, c.segment);
  if (!st.ok()) return st;
  double sum = 0;
  for (size_t i = c.begin; i < c.end; ++i) sum += double(seg.out[i]) * double(seg.out[i]);
  r.written = sum;
  return Status::Ok();
}

SPARTAN_VECTOR_CLONES void reduce_chunk(const SpartanGradSegment& seg, const Chunk& c, RatioSums& out) {
  if (seg.hard) reduce_range<true>(seg, c, out); else reduce_range<false>(seg, c, out);
}

SPARTAN_VECTOR_CLONES void write_chunk(const SpartanGradSegment& seg, const Chunk& c, double beta, double s, RatioSums& r) {
  if (seg.hard) write_range<true>(seg, c, beta, s, r); else write_range<false>(seg, c, beta, s, r);
}

Status check_args(const SpartanGradSegment* segs, size_t num_segs, const SpartanGradGroup* groups, size_t num_groups) {
  for (size_t gi = 0; gi < num_groups; ++gi) {
    const SpartanGradGroup& g = groups[gi];
    if (!(g.beta > 0) || !std::isfinite(g.beta)) return {Code::kBetaRange, Arg::kNone, g.first, 0, g.beta, 0};
    if (g.first + g.count > num_segs) return {Code::kInternal};
  }
  for (size_t s = 0; s < num_segs; ++s) {  // out may be its own grad_w; nothing else may overlap it
    const SpartanGradSegment& seg = segs[s];
    const size_t bytes = seg.n * 4;
    for (size_t t = 0; t < num_segs; ++t) {
      const SpartanGradSegment& o = segs[t];
      const bool own_grad = t == s && seg.out == o.grad_w;
      if ((!own_grad && overlaps(seg.out, bytes, o.grad_w, o.n * 4)) || overlaps(seg.out, bytes, o.theta, o.n * 4) ||
          overlaps(seg.out, bytes, o.mask, o.n * 4) || (o.hard && overlaps(seg.out, bytes, o.hard, o.n)) ||
          (t != s && overlaps(seg.out, bytes, o.out, o.n * 4)))
        return {Code::kAlias, Arg::kOut, s, 0, 0, 0};
    }
  }
  return Status::Ok();
}

}  // namespace

Status spartan_element_grad(const SpartanGradSegment* segs, size_t num_segs, const SpartanGradGroup* groups,
                            size_t num_groups, double* out_sum_squares) {
  Status st = check_args(segs, num_segs, groups, num_groups);
  if (!st.ok()) return st;
  st = reduce_then_write(segs, groups, num_groups, scratch, reduce_chunk, write_chunk);
  if (!st.ok()) return st;
  if (out_sum_squares)
    for (size_t s = 0; s < num_segs; ++s) out_sum_squares[s] = 0;
  for (size_t ci = 0; ci < scratch.chunks.size(); ++ci) {  // chunk order: deterministic sums, first bad entry
    const Chunk& c = scratch.chunks[ci];
    RatioSums& r = scratch.sums[ci];
    if (!std::isfinite(r.written)) {
      st = recheck_chunk(segs[c.segment], c, r);
      if (!st.ok()) return st;
    }
    if (out_sum_squares) out_sum_squares[c.segment] += r.written;
  }
  return Status::Ok();
}

}  // namespace spartan
