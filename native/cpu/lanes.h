// Explicit SIMD lanes (GCC and Clang vector extensions) for the float64 sums over float
// data that GCC 12 leaves scalar however the loop is written. A lane vector holds the
// same lanes, in the same order, as the eight-lane scalar loops it replaces, so results
// do not change; other compilers take those scalar loops (SPARTAN_LANES is 0 there).
// Use them only inside SPARTAN_VECTOR_CLONES functions: in the AVX2 clone they made the
// soft top-k backward's reduction 1.5x faster, but in baseline SSE2 code a plain sum of
// squares ran 2x slower with them than the scalar loop (measured on the 2-core EPYC VM).
#pragma once
#include <cstdint>
#include <cstring>

#include "scan.h"

#if defined(__GNUC__)
#define SPARTAN_LANES 1
// The helpers are inline, so no vector crosses a call: the ABI note GCC gives for AVX-sized
// vectors in code built without AVX does not apply (ignored for the including file).
#pragma GCC diagnostic ignored "-Wpsabi"
namespace spartan {

typedef float f32x4 __attribute__((vector_size(16)));
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
typedef double f64x4 __attribute__((vector_size(32)));

inline f32x4 load_f32x4(const float* p) {
  f32x4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline u32x4 bits_u32x4(f32x4 v) {
  u32x4 b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
inline f64x4 widen(f32x4 v) { return __builtin_convertvector(v, f64x4); }
inline void store_f64x4(double* p, f64x4 v) { std::memcpy(p, &v, sizeof v); }

// Per-lane flags (all ones where true) matching scan.h's non_finite_flag and
// outside_unit_interval_flag.
inline i32x4 non_finite_lanes(f32x4 x) { return (bits_u32x4(x) & 0x7f800000u) == 0x7f800000u; }
inline i32x4 outside_unit_interval_lanes(f32x4 x) {
  const u32x4 b = bits_u32x4(x);
  return (b > 0x3f800000u) & (b != 0x80000000u);
}
inline bool any_lane(i32x4 v) { return (v[0] | v[1] | v[2] | v[3]) != 0; }

}  // namespace spartan
#else
#define SPARTAN_LANES 0
#endif

namespace spartan {

// Eight float64 running sums of float terms, lane j taking entries j, j + 8, ...: the
// order of the scalar eight-lane loops, so sums are deterministic and equal with and
// without SIMD lanes. Each add takes a block of eight entries.
struct Sums8 {
#if SPARTAN_LANES
  f64x4 lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
  void add(const float* x) {  // += x
    lo += widen(load_f32x4(x));
    hi += widen(load_f32x4(x + 4));
  }
  void add_product(const float* x, const float* w) {  // += w x
    lo += widen(load_f32x4(w)) * widen(load_f32x4(x));
    hi += widen(load_f32x4(w + 4)) * widen(load_f32x4(x + 4));
  }
  void add_spread(const float* m) {  // += m (1 - m)
    lo += spread(load_f32x4(m));
    hi += spread(load_f32x4(m + 4));
  }
  void add_product_spread(const float* x, const float* m) {  // += x m (1 - m)
    lo += widen(load_f32x4(x)) * spread(load_f32x4(m));
    hi += widen(load_f32x4(x + 4)) * spread(load_f32x4(m + 4));
  }
  void add_one(int lane, double x) {  // a tail entry
    if (lane < 4) lo[lane] += x; else hi[lane - 4] += x;
  }
  void set_lanes(const double* x) {  // lanes computed elsewhere, in this layout
    std::memcpy(&lo, x, sizeof lo);
    std::memcpy(&hi, x + 4, sizeof hi);
  }
  double total() const { return lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3]; }

 private:
  static f64x4 spread(f32x4 m) {
    const f64x4 md = widen(m);
    return md * (1.0 - md);
  }
#else
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  void add(const float* x) {
    for (int j = 0; j < 8; ++j) acc[j] += double(x[j]);
  }
  void add_product(const float* x, const float* w) {
    for (int j = 0; j < 8; ++j) acc[j] += double(w[j]) * double(x[j]);
  }
  void add_spread(const float* m) {
    for (int j = 0; j < 8; ++j) acc[j] += double(m[j]) * (1.0 - double(m[j]));
  }
  void add_product_spread(const float* x, const float* m) {
    for (int j = 0; j < 8; ++j) acc[j] += double(x[j]) * (double(m[j]) * (1.0 - double(m[j])));
  }
  void add_one(int lane, double x) { acc[lane] += x; }
  void set_lanes(const double* x) { std::memcpy(acc, x, sizeof acc); }
  double total() const { return acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7]; }
#endif
};

// Whether any entry of the blocks of eight it saw was bad (non-finite, or outside
// [0, 1]); scan.h's per-entry flags, in lanes.
struct AnyBad8 {
#if SPARTAN_LANES
  i32x4 bad = {0, 0, 0, 0};
  void non_finite(const float* x) { bad |= non_finite_lanes(load_f32x4(x)) | non_finite_lanes(load_f32x4(x + 4)); }
  void outside_unit_interval(const float* x) {
    bad |= outside_unit_interval_lanes(load_f32x4(x)) | outside_unit_interval_lanes(load_f32x4(x + 4));
  }
  bool any() const { return any_lane(bad); }
#else
  uint32_t bad = 0;
  void non_finite(const float* x) {
    for (int j = 0; j < 8; ++j) bad |= non_finite_flag(x[j]);
  }
  void outside_unit_interval(const float* x) {
    for (int j = 0; j < 8; ++j) bad |= outside_unit_interval_flag(x[j]);
  }
  bool any() const { return bad != 0; }
#endif
};

}  // namespace spartan
