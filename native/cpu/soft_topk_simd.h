// The soft top-k forward's hot loops for groups with one cost, in AVX-512 or AVX2 where
// the CPU has them (checked at run time). GCC vectorised the portable loops only in part:
// it kept the warm start's min/max scalar, and in the Newton pass it spilled the masks to
// the stack and reloaded them in pieces for the float64 sums (in all, about 40 % of the
// forward's time on LeNet-300-100). Each function returns how many leading entries it did
// (a multiple of 8, or 0 without its instruction set); the caller's portable loop does the
// rest. Every version performs the same IEEE operations in the same order as the portable
// loop with fast_math.h (no FMA), so their results are bit-identical.
#pragma once
#include <cstddef>

#include "spartan/soft_topk.h"

namespace spartan {

// Min and max of x[0, n), and whether all of it is finite (min/max are then exact).
size_t finite_min_max_avx2(const float* x, size_t n, bool& finite, float& lo, float& hi);
size_t finite_min_max_avx512(const float* x, size_t n, bool& finite, float& lo, float& hi);

// The Newton evaluation for one cost: out[i] = s_i = fast_sigmoid(float(beta (double(v[i]) inv_c
// - center) + mu)) and, in eight float64 lanes (lane j: entries j, j + 8, ...), the sums of
// s_i and of s_i (1 - s_i) from zero.
size_t sigmoid_sums_avx2(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                         double mu, double sums[8], double spreads[8]);
size_t sigmoid_sums_avx512(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                           double mu, double sums[8], double spreads[8]);

// The Newton update pass for one cost: out[i] = m / (m + (1 - m) factor) from the mask m it
// holds, with the same eight-lane sums of the new masks and of s (1 - s).
size_t mask_update_sums_avx2(float* out, size_t n, float factor, double sums[8], double spreads[8]);
size_t mask_update_sums_avx512(float* out, size_t n, float factor, double sums[8], double spreads[8]);

// Whether this CPU runs each set (false off x86-64 GCC/Clang builds).
bool cpu_has_avx2();
bool cpu_has_avx512();

// The dispatchers use soft_topk_simd_level() (spartan/soft_topk.h, simd_level.cpp); the per-set
// functions above ignore SPARTAN_SIMD's cap (the native tests call them directly).
inline size_t finite_min_max_simd(const float* x, size_t n, bool& finite, float& lo, float& hi) {
  switch (soft_topk_simd_level()) {
    case SimdLevel::kAvx512: return finite_min_max_avx512(x, n, finite, lo, hi);
    case SimdLevel::kAvx2: return finite_min_max_avx2(x, n, finite, lo, hi);
    default: return 0;
  }
}
inline size_t sigmoid_sums_simd(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                                double mu, double sums[8], double spreads[8]) {
  switch (soft_topk_simd_level()) {
    case SimdLevel::kAvx512: return sigmoid_sums_avx512(v, out, n, inv_c, beta, center, mu, sums, spreads);
    case SimdLevel::kAvx2: return sigmoid_sums_avx2(v, out, n, inv_c, beta, center, mu, sums, spreads);
    default: return 0;
  }
}
inline size_t mask_update_sums_simd(float* out, size_t n, float factor, double sums[8], double spreads[8]) {
  switch (soft_topk_simd_level()) {
    case SimdLevel::kAvx512: return mask_update_sums_avx512(out, n, factor, sums, spreads);
    case SimdLevel::kAvx2: return mask_update_sums_avx2(out, n, factor, sums, spreads);
    default: return 0;
  }
}

}  // namespace spartan
