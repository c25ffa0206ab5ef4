// AVX2 versions of the soft top-k forward's hot loops (soft_topk_simd.h). Only the
// functions marked target("avx2") use AVX2 instructions, and they run only where
// __builtin_cpu_supports says the CPU has it. No FMA: fast_math.h's separate multiply
// and add, rounded the same way.
#include "soft_topk_simd.h"

#include "fast_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SPARTAN_HAVE_AVX2_PATH 1
#else
#define SPARTAN_HAVE_AVX2_PATH 0
#endif

namespace spartan {

#if SPARTAN_HAVE_AVX2_PATH
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

namespace {

#define SPARTAN_AVX2 __attribute__((target("avx2")))

// fast_math.h's fast_exp, lane by lane. Its clamp x < lo ? lo : x is max(lo, x) and
// x > hi ? hi : x is min(hi, x), in that operand order (a NaN passes through alike).
SPARTAN_AVX2 inline __m256 exp8(__m256 x) {
  using namespace exp_const;
  x = _mm256_max_ps(_mm256_set1_ps(kLo), x);
  x = _mm256_min_ps(_mm256_set1_ps(kHi), x);
  const __m256 round = _mm256_set1_ps(kRound);
  const __m256 t = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), round);
  const __m256 r = _mm256_sub_ps(t, round);
  const __m256i i = _mm256_cvttps_epi32(r);
  __m256 f = _mm256_sub_ps(x, _mm256_mul_ps(r, _mm256_set1_ps(kLn2Hi)));
  f = _mm256_sub_ps(f, _mm256_mul_ps(r, _mm256_set1_ps(kLn2Lo)));
  __m256 p = _mm256_set1_ps(kPoly[0]);
  for (int j = 1; j < 8; ++j) p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(kPoly[j]));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(i, _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// Eight float64 lanes each of the masks and of their s (1 - s): lane j takes entries j, j + 8, ...
struct LaneSums {
  __m256d s_lo, s_hi, d_lo, d_hi;
  SPARTAN_AVX2 LaneSums() : s_lo(_mm256_setzero_pd()), s_hi(s_lo), d_lo(s_lo), d_hi(s_lo) {}
  SPARTAN_AVX2 void add(__m256 s, __m256 ds) {
    s_lo = _mm256_add_pd(s_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(s)));
    s_hi = _mm256_add_pd(s_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(s, 1)));
    d_lo = _mm256_add_pd(d_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(ds)));
    d_hi = _mm256_add_pd(d_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(ds, 1)));
  }
  SPARTAN_AVX2 void store(double sums[8], double spreads[8]) const {
    _mm256_storeu_pd(sums, s_lo);
    _mm256_storeu_pd(sums + 4, s_hi);
    _mm256_storeu_pd(spreads, d_lo);
    _mm256_storeu_pd(spreads + 4, d_hi);
  }
};

SPARTAN_AVX2 size_t finite_min_max(const float* x, size_t n, bool& finite, float& lo, float& hi) {
  if (n < 8) return 0;
  const __m256i exponent = _mm256_set1_epi32(0x7f800000);
  __m256i bad = _mm256_setzero_si256();
  __m256 vlo = _mm256_loadu_ps(x), vhi = vlo;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i e = _mm256_and_si256(_mm256_castps_si256(v), exponent);
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(e, exponent));
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, vlo);
  _mm256_store_ps(h, vhi);
  finite = _mm256_testz_si256(bad, bad) != 0;
  lo = l[0];
  hi = h[0];
  for (int j = 1; j < 8; ++j) {
    lo = l[j] < lo ? l[j] : lo;
    hi = h[j] > hi ? h[j] : hi;
  }
  return i;
}

SPARTAN_AVX2 size_t sigmoid_sums(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                                 double mu, double sums[8], double spreads[8]) {
  const __m256d vinv = _mm256_set1_pd(inv_c), vbeta = _mm256_set1_pd(beta);
  const __m256d vcenter = _mm256_set1_pd(center), vmu = _mm256_set1_pd(mu);
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f), far = _mm256_set1_ps(kSigmoidZeroBelow);
  const __m256 ds_below = _mm256_set1_ps(fast_sigmoid(2 * kSigmoidZeroBelow).ds);  // every z below: the same
  LaneSums acc;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(v + i);
    const __m256d u_lo = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), vinv);
    const __m256d u_hi = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), vinv);
    const __m256d z_lo = _mm256_add_pd(_mm256_mul_pd(vbeta, _mm256_sub_pd(u_lo, vcenter)), vmu);
    const __m256d z_hi = _mm256_add_pd(_mm256_mul_pd(vbeta, _mm256_sub_pd(u_hi, vcenter)), vmu);
    const __m256 z = _mm256_set_m128(_mm256_cvtpd_ps(z_hi), _mm256_cvtpd_ps(z_lo));
    // fast_sigmoid: e = exp(-z), s = 1 / (1 + e) (0 below -88), ds = (e s) s. Below -88 the
    // clamp makes e = fast_exp(88) whatever z is, so s = 0 and ds = the constant below; those
    // lanes divide 1 by 1 instead, as their real quotient is subnormal, which costs a
    // microcode assist per instruction on this CPU (the Newton pass ran 2x slower at beta >= 100,
    // where half the entries lie there). GCC's own vectorisation of fast_sigmoid folds them the same way.
    const __m256 below = _mm256_cmp_ps(z, far, _CMP_LT_OQ);
    const __m256 e = _mm256_andnot_ps(below, exp8(_mm256_xor_ps(z, sign)));
    const __m256 inv = _mm256_div_ps(one, _mm256_add_ps(one, e));
    const __m256 s = _mm256_andnot_ps(below, inv);
    const __m256 ds = _mm256_blendv_ps(_mm256_mul_ps(_mm256_mul_ps(e, inv), inv), ds_below, below);
    _mm256_storeu_ps(out + i, s);
    acc.add(s, ds);
  }
  acc.store(sums, spreads);
  return i;
}

SPARTAN_AVX2 size_t mask_update_sums(float* out, size_t n, float factor, double sums[8], double spreads[8]) {
  const __m256 one = _mm256_set1_ps(1.0f), f = _mm256_set1_ps(factor);
  LaneSums acc;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 m = _mm256_loadu_ps(out + i);
    const __m256 s = _mm256_div_ps(m, _mm256_add_ps(m, _mm256_mul_ps(_mm256_sub_ps(one, m), f)));
    const __m256 ds = _mm256_mul_ps(s, _mm256_sub_ps(one, s));
    _mm256_storeu_ps(out + i, s);
    acc.add(s, ds);
  }
  acc.store(sums, spreads);
  return i;
}

}  // namespace

size_t mask_update_sums_avx2(float* out, size_t n, float factor, double sums[8], double spreads[8]) {
  return cpu_has_avx2() ? mask_update_sums(out, n, factor, sums, spreads) : 0;
}

size_t finite_min_max_avx2(const float* x, size_t n, bool& finite, float& lo, float& hi) {
  return cpu_has_avx2() ? finite_min_max(x, n, finite, lo, hi) : 0;
}

size_t sigmoid_sums_avx2(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                         double mu, double sums[8], double spreads[8]) {
  return cpu_has_avx2() ? sigmoid_sums(v, out, n, inv_c, beta, center, mu, sums, spreads) : 0;
}

#else

bool cpu_has_avx2() { return false; }
size_t finite_min_max_avx2(const float*, size_t, bool&, float&, float&) { return 0; }
size_t sigmoid_sums_avx2(const float*, float*, size_t, double, double, double, double, double*, double*) { return 0; }
size_t mask_update_sums_avx2(float*, size_t, float, double*, double*) { return 0; }

#endif

}  // namespace spartan
