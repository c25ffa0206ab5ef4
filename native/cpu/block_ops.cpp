// Block scores, block-mask expansion and the fused masked weight, parallel over
// block rows (each task owns b0 whole rows, so writes never collide).
#include <algorithm>
#include <cmath>
#include <vector>

#include "chunks.h"
#include "scan.h"
#include "spartan/block_ops.h"
#include "spartan/parallel.h"

namespace spartan {
namespace {

struct Scratch {
  std::vector<float> scores;
  std::vector<Status> errs;
  std::vector<Status> over;  // block_scores: a tile sum beyond float32, per block row
};
thread_local Scratch scratch;

// The elementwise masked weight, one branch-free loop per operand mix (out may be
// theta itself; it overlaps nothing else, which the caller checked).
inline float keep_of(uint8_t h) { return float(h != 0); }

void apply_flat(const float* theta, const float* m, const uint8_t* h, const uint8_t* hard, float* out, size_t n) {
  if (m && hard)  // a select, not m * 0: a -0 mask entry must give theta * +0 as before
    for (size_t i = 0; i < n; ++i) {
      const float mi = m[i];  // loaded unconditionally, so the select vectorises
      out[i] = theta[i] * (hard[i] ? mi : 0.0f);
    }
  else if (m)
    for (size_t i = 0; i < n; ++i) out[i] = theta[i] * m[i];
  else if (hard)
    for (size_t i = 0; i < n; ++i) out[i] = theta[i] * (keep_of(h[i]) * keep_of(hard[i]));
  else
    for (size_t i = 0; i < n; ++i) out[i] = theta[i] * keep_of(h[i]);
}

}  // namespace

// Unstructured (1 x 1 tiles): |theta| in flat chunks, validated first so `scores`
// (which may be a caller's buffer) is untouched on error.
static Status element_scores(const float* theta, size_t n, float* scores) {
  Scratch& sc = scratch;
  const size_t chunk = size_t(1) << 15, nchunks = (n + chunk - 1) / chunk;
  sc.errs.assign(nchunks, Status::Ok());
  auto check = [&](size_t ci, size_t) {
    const size_t b = ci * chunk, e = std::min(n, b + chunk);
    sc.errs[ci] = check_finite(theta, b, e, Arg::kTheta);
  };
  parallel_for(nchunks, check);
  for (const Status& e : sc.errs)
    if (!e.ok()) return e;
  auto abs_task = [&](size_t ci, size_t) {
    const size_t b = ci * chunk, e = std::min(n, b + chunk);
    for (size_t i = b; i < e; ++i) scores[i] = std::fabs(theta[i]);
  };
  parallel_for(nchunks, abs_task);
  return Status::Ok();
}

Status block_scores(const float* theta, const BlockShape& s, float* scores) {
  if (s.b0 == 1 && s.b1 == 1) return element_scores(theta, s.size(), scores);
  Scratch& sc = scratch;
  const size_t nbr = s.block_rows(), nbc = s.block_cols();
  sc.scores.resize(s.num_blocks());  // staged: `scores` stays untouched on error
  sc.errs.assign(nbr, Status::Ok());
  sc.over.assign(nbr, Status::Ok());
  auto task = [&](size_t br, size_t) {
    for (size_t bc = 0; bc < nbc; ++bc) {
      double acc = 0;
      for (size_t r = br * s.b0; r < (br + 1) * s.b0; ++r) {
        const float* row = theta + r * s.cols + bc * s.b1;
        double racc = 0;
        for (size_t j = 0; j < s.b1; ++j) racc += std::fabs(double(row[j]));
        if (!std::isfinite(racc)) {  // NaN or Inf in the row (a finite row cannot overflow a double)
          for (size_t j = 0; j < s.b1; ++j)
            if (!std::isfinite(row[j])) {
              sc.errs[br] = {Code::kNonFinite, Arg::kTheta, 0, r * s.cols + bc * s.b1 + j, row[j], 0};
              return;
            }
        }
        acc += racc;
      }
      const float score = float(acc);
      // finite entries whose sum float32 cannot hold: reported only if no entry anywhere is
      // NaN or Inf (that error comes first, as on the GPU)
      if (std::isinf(score) && sc.over[br].ok()) sc.over[br] = {Code::kTileOverflow, Arg::kTheta, 0, br * nbc + bc, acc, 0};
      sc.scores[br * nbc + bc] = score;
    }
  };
  parallel_for(nbr, task);
  for (const std::vector<Status>* errs : {&sc.errs, &sc.over})
    for (const Status& e : *errs)
      if (!e.ok()) return e;
  std::copy(sc.scores.begin(), sc.scores.end(), scores);
  return Status::Ok();
}

// A float block mask's entries lie in [0, 1], as apply_mask requires of its masks; a hard
// (uint8) mask keeps where nonzero, so any byte is one.
static Status check_mask_values(const float* m, size_t n) { return check_unit_interval(m, 0, n, Arg::kMask); }
static Status check_mask_values(const uint8_t*, size_t) { return Status::Ok(); }

template <class T>
Status expand_block_mask(const T* m, const BlockShape& s, T* out) {
  const bool identity = static_cast<const T*>(out) == m && s.b0 == 1 && s.b1 == 1;  // 1x1 tiles in place: a copy onto itself
  if (!identity && overlaps(out, s.size() * sizeof(T), m, s.num_blocks() * sizeof(T))) return Status{Code::kAlias, Arg::kOut, 0, 0, 0, 0};
  const Status valid = check_mask_values(m, s.num_blocks());  // before anything is written
  if (!valid.ok()) return valid;
  const size_t nbc = s.block_cols();
  auto task = [&](size_t r, size_t) {
    const T* mrow = m + (r / s.b0) * nbc;
    T* orow = out + r * s.cols;
    for (size_t bc = 0; bc < nbc; ++bc) {
      T v = mrow[bc];
      for (size_t j = 0; j < s.b1; ++j) orow[bc * s.b1 + j] = v;
    }
  };
  parallel_for(s.rows, task);
  return Status::Ok();
}
template Status expand_block_mask<float>(const float*, const BlockShape&, float*);
template Status expand_block_mask<uint8_t>(const uint8_t*, const BlockShape&, uint8_t*);

Status apply_mask(const float* theta, const MaskView& mask, const uint8_t* hard, const BlockShape& s, float* out) {
  Scratch& sc = scratch;
  const size_t n = s.size(), nm = mask.per_block ? s.num_blocks() : n;
  // out may be theta itself (in place); it must not overlap the masks or part of theta.
  const void* m = mask.soft ? static_cast<const void*>(mask.soft) : static_cast<const void*>(mask.hard_only);
  if (overlaps(out, n * 4, m, mask.soft ? nm * 4 : nm) || (hard && overlaps(out, n * 4, hard, nm)) ||
      (out != theta && overlaps(out, n * 4, theta, n * 4)))
    return Status{Code::kAlias, Arg::kOut, 0, 0, 0, 0};
  // Validate everything first (out may alias theta, so no partial writes).
  const size_t chunk = size_t(1) << 16, nchunks = (n + chunk - 1) / chunk;
  sc.errs.assign(nchunks, Status::Ok());
  // A branch-free scan per chunk finds whether anything is wrong; only then is the
  // chunk walked again to name the first bad entry.
  auto check = [&](size_t ci, size_t) {
    size_t b = ci * chunk, e = std::min(n, b + chunk);
    sc.errs[ci] = check_finite(theta, b, e, Arg::kTheta);
    if (!sc.errs[ci].ok() || !mask.soft) return;
    const size_t mb = ci * chunk;
    sc.errs[ci] = check_unit_interval(mask.soft, mb, std::min(nm, mb + chunk), Arg::kMask);
  };
  parallel_for(nchunks, check);
  for (const Status& e : sc.errs)
    if (!e.ok()) return e;

  if (!mask.per_block || (s.b0 == 1 && s.b1 == 1)) {  // elementwise (or 1x1 tiles): flat chunks, whatever the shape
    auto flat_task = [&](size_t ci, size_t) {
      const size_t b = ci * chunk, e = std::min(n, b + chunk);
      apply_flat(theta + b, mask.soft ? mask.soft + b : nullptr, mask.hard_only ? mask.hard_only + b : nullptr,
                 hard ? hard + b : nullptr, out + b, e - b);
    };
    parallel_for(nchunks, flat_task);
    return Status::Ok();
  }
  const size_t nbc = s.block_cols();
  auto row_task = [&](size_t r, size_t) {  // block mask broadcast over each tile row
    const float* t = theta + r * s.cols;
    float* o = out + r * s.cols;
    const size_t mrow = (r / s.b0) * nbc;
    for (size_t bc = 0; bc < nbc; ++bc) {
      size_t mi = mrow + bc;
      float m = mask.soft ? mask.soft[mi] : float(mask.hard_only[mi] != 0);
      if (hard && !hard[mi]) m = 0.0f;
      for (size_t j = bc * s.b1; j < (bc + 1) * s.b1; ++j) o[j] = t[j] * m;
    }
  };
  parallel_for(s.rows, row_task);
  return Status::Ok();
}

}  // namespace spartan
