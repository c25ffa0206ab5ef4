// Branch-free whole-range predicates for validation passes. They work on the float
// bits with integer OR reductions, which vectorise without fast-math (a float sum
// trick such as `bad += x * 0` would be a sequential reduction). Callers walk the
// range again only when one says no, to name the first bad entry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <cstring>

#include "spartan/status.h"

namespace spartan {

inline uint32_t float_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// 1 when x is NaN or +-Inf (all exponent bits set), else 0.
inline uint32_t non_finite_flag(float x) { return uint32_t((float_bits(x) & 0x7f800000u) == 0x7f800000u); }

// 1 when x is outside [0, 1] or NaN, else 0: as bits, [0, 1] is the non-negative floats
// up to 1.0f, plus -0.0f.
inline uint32_t outside_unit_interval_flag(float x) {
  const uint32_t b = float_bits(x);
  return uint32_t((b > 0x3f800000u) & (b != 0x80000000u));
}

// True when no entry of x[0, n) is NaN or +-Inf.
inline bool all_finite(const float* x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= non_finite_flag(x[i]);
  return bad == 0;
}

// True when every entry of x[0, n) is in [0, 1] (so also not NaN).
inline bool all_in_unit_interval(const float* x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= outside_unit_interval_flag(x[i]);
  return bad == 0;
}

// Ok when x[begin, end) is all finite, else kNonFinite naming the first bad entry (the
// branch-free scan first; the walk only when it says no).
inline Status check_finite(const float* x, size_t begin, size_t end, Arg arg, size_t segment = 0) {
  if (all_finite(x + begin, end - begin)) return Status::Ok();
  for (size_t i = begin; i < end; ++i)
    if (!std::isfinite(x[i])) return {Code::kNonFinite, arg, segment, i, x[i], 0};
  return Status::Ok();
}

// Ok when x[begin, end) lies in [0, 1], else kNonFinite or kMaskRange naming the first bad
// entry (the branch-free scan first; the walk only when it says no).
inline Status check_unit_interval(const float* x, size_t begin, size_t end, Arg arg, size_t segment = 0) {
  if (begin >= end || all_in_unit_interval(x + begin, end - begin)) return Status::Ok();
  for (size_t i = begin; i < end; ++i) {
    if (!std::isfinite(x[i])) return {Code::kNonFinite, arg, segment, i, x[i], 0};
    if (x[i] < 0.0f || x[i] > 1.0f) return {Code::kMaskRange, arg, segment, i, x[i], 0};
  }
  return Status::Ok();
}

}  // namespace spartan
