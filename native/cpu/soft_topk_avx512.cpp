// AVX-512 versions of the soft top-k forward's hot loops (soft_topk_simd.h): soft_topk_avx2.cpp's
// loops, sixteen entries a step instead of eight. Only the functions marked SPARTAN_AVX512 use
// AVX-512 instructions (F and DQ), and they run only where __builtin_cpu_supports says the CPU
// has them. Bit-identical to the AVX2 and portable loops: the same IEEE operations in the same
// order (no FMA: see the pragma below), and each of the eight float64 lane sums
// takes its entries in the same order (lane j: entry j of a step's low half, then of its high half).
#include "soft_topk_simd.h"

#include "fast_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wuninitialized and
// -Wmaybe-uninitialized report at every use; nothing here reads an uninitialised value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// target("avx512f") enables FMA, and GCC would fuse the multiply-add intrinsics below into it
// (30 vfmadd without -ffp-contract=off): this file keeps them apart whatever the build passes.
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif
#include <immintrin.h>
#define SPARTAN_HAVE_AVX512_PATH 1
#else
#define SPARTAN_HAVE_AVX512_PATH 0
#endif

namespace spartan {

#if SPARTAN_HAVE_AVX512_PATH
bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return has;
}

namespace {

#define SPARTAN_AVX512 __attribute__((target("avx512f,avx512dq")))

// fast_math.h's fast_exp, lane by lane (soft_topk_avx2.cpp's exp8, sixteen wide).
SPARTAN_AVX512 inline __m512 exp16(__m512 x) {
  using namespace exp_const;
  x = _mm512_max_ps(_mm512_set1_ps(kLo), x);
  x = _mm512_min_ps(_mm512_set1_ps(kHi), x);
  const __m512 round = _mm512_set1_ps(kRound);
  const __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), round);
  const __m512 r = _mm512_sub_ps(t, round);
  const __m512i i = _mm512_cvttps_epi32(r);
  __m512 f = _mm512_sub_ps(x, _mm512_mul_ps(r, _mm512_set1_ps(kLn2Hi)));
  f = _mm512_sub_ps(f, _mm512_mul_ps(r, _mm512_set1_ps(kLn2Lo)));
  __m512 p = _mm512_set1_ps(kPoly[0]);
  for (int j = 1; j < 8; ++j) p = _mm512_add_ps(_mm512_mul_ps(p, f), _mm512_set1_ps(kPoly[j]));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(i, _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

SPARTAN_AVX512 inline __m256 low_half(__m512 x) { return _mm512_castps512_ps256(x); }
SPARTAN_AVX512 inline __m256 high_half(__m512 x) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)); }

// Eight float64 lanes each of the masks and of their s (1 - s).
struct LaneSums {
  __m512d s, d;
  SPARTAN_AVX512 LaneSums() : s(_mm512_setzero_pd()), d(_mm512_setzero_pd()) {}
  SPARTAN_AVX512 void add8(__m256 sv, __m256 dv) {
    s = _mm512_add_pd(s, _mm512_cvtps_pd(sv));
    d = _mm512_add_pd(d, _mm512_cvtps_pd(dv));
  }
  SPARTAN_AVX512 void add16(__m512 sv, __m512 dv) {  // entries i .. i+7, then i+8 .. i+15
    add8(low_half(sv), low_half(dv));
    add8(high_half(sv), high_half(dv));
  }
  SPARTAN_AVX512 void store(double sums[8], double spreads[8]) const {
    _mm512_storeu_pd(sums, s);
    _mm512_storeu_pd(spreads, d);
  }
};

// Loads eight entries into the low half (the high half zero): the last step of a pass.
SPARTAN_AVX512 inline __m512 load8(const float* p) { return _mm512_castpd_ps(_mm512_zextpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p)))); }

struct SigmoidConsts {
  __m512d inv, beta, center, mu;
  __m512 ds_below;  // s (1 - s) of every z < -88 (the clamp makes e = fast_exp(88) there)
};

// fast_sigmoid of z = float(beta (double(x) inv_c - center) + mu), sixteen entries; as in
// soft_topk_avx2.cpp, lanes below -88 divide 1 by 1 (s = 0 and ds a constant there) to avoid
// the subnormal quotients' microcode assists.
SPARTAN_AVX512 inline __m512 sigmoid16(__m512 x, const SigmoidConsts& k, __m512& ds) {
  const __m512d u_lo = _mm512_mul_pd(_mm512_cvtps_pd(low_half(x)), k.inv);
  const __m512d u_hi = _mm512_mul_pd(_mm512_cvtps_pd(high_half(x)), k.inv);
  const __m512d z_lo = _mm512_add_pd(_mm512_mul_pd(k.beta, _mm512_sub_pd(u_lo, k.center)), k.mu);
  const __m512d z_hi = _mm512_add_pd(_mm512_mul_pd(k.beta, _mm512_sub_pd(u_hi, k.center)), k.mu);
  const __m512 z = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(z_lo))),
                                                       _mm256_castps_pd(_mm512_cvtpd_ps(z_hi)), 1));
  const __mmask16 below = _mm512_cmp_ps_mask(z, _mm512_set1_ps(kSigmoidZeroBelow), _CMP_LT_OQ);
  const __m512 neg_z = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(z), _mm512_set1_epi32(int(0x80000000u))));
  const __m512 e = _mm512_maskz_mov_ps(__mmask16(~below), exp16(neg_z));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 inv = _mm512_div_ps(one, _mm512_add_ps(one, e));
  ds = _mm512_mask_blend_ps(below, _mm512_mul_ps(_mm512_mul_ps(e, inv), inv), k.ds_below);
  return _mm512_maskz_mov_ps(__mmask16(~below), inv);
}

SPARTAN_AVX512 inline __m512 update16(__m512 m, __m512 factor, __m512& ds) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 s = _mm512_div_ps(m, _mm512_add_ps(m, _mm512_mul_ps(_mm512_sub_ps(one, m), factor)));
  ds = _mm512_mul_ps(s, _mm512_sub_ps(one, s));
  return s;
}

// Folds sixteen entries into the running non-finite flags and min/max lanes.
SPARTAN_AVX512 inline void scan16(__m512 v, __mmask16& bad, __m512& vlo, __m512& vhi) {
  const __m512i exponent = _mm512_set1_epi32(0x7f800000);
  bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), exponent), exponent);
  vlo = _mm512_min_ps(vlo, v);
  vhi = _mm512_max_ps(vhi, v);
}

// The same min and max values as the AVX2 and portable loops (only the sign of a zero result
// may differ where both zeros occur: the lanes meet in another order) and the same flag.
SPARTAN_AVX512 size_t finite_min_max(const float* x, size_t n, bool& finite, float& lo, float& hi) {
  if (n < 8) return 0;
  __mmask16 bad = 0;
  __m512 vlo = _mm512_broadcastss_ps(_mm_load_ss(x)), vhi = vlo;  // every lane starts at x[0]
  size_t i = 0;
  for (; i + 16 <= n; i += 16) scan16(_mm512_loadu_ps(x + i), bad, vlo, vhi);
  if (i + 8 <= n) {  // the last eight, and x[0] again in the high half (min/max unchanged)
    scan16(_mm512_insertf32x8(_mm512_broadcastss_ps(_mm_load_ss(x)), _mm256_loadu_ps(x + i), 0), bad, vlo, vhi);
    i += 8;
  }
  finite = bad == 0;
  lo = _mm512_reduce_min_ps(vlo);
  hi = _mm512_reduce_max_ps(vhi);
  return i;
}

// The Newton passes' shared loop: out[i] = step(in[i]) sixteen entries at a time (then eight),
// with the eight-lane sums of the new masks and of their s (1 - s). `step` is a functor, not a
// lambda, so its AVX-512 target attribute is plain for every compiler.
template <class Step>
SPARTAN_AVX512 inline size_t lane_pass(const float* in, float* out, size_t n, double sums[8], double spreads[8], const Step& step) {
  LaneSums acc;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 ds;
    const __m512 s = step(_mm512_loadu_ps(in + i), ds);
    _mm512_storeu_ps(out + i, s);
    acc.add16(s, ds);
  }
  if (i + 8 <= n) {
    __m512 ds;
    const __m512 s = step(load8(in + i), ds);
    _mm256_storeu_ps(out + i, low_half(s));
    acc.add8(low_half(s), low_half(ds));
    i += 8;
  }
  acc.store(sums, spreads);
  return i;
}

struct SigmoidStep {
  SigmoidConsts k;
  SPARTAN_AVX512 __m512 operator()(__m512 x, __m512& ds) const { return sigmoid16(x, k, ds); }
};

struct UpdateStep {
  __m512 factor;
  SPARTAN_AVX512 __m512 operator()(__m512 m, __m512& ds) const { return update16(m, factor, ds); }
};

SPARTAN_AVX512 size_t sigmoid_sums(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                                   double mu, double sums[8], double spreads[8]) {
  const SigmoidStep step{{_mm512_set1_pd(inv_c), _mm512_set1_pd(beta), _mm512_set1_pd(center), _mm512_set1_pd(mu),
                          _mm512_set1_ps(fast_sigmoid(2 * kSigmoidZeroBelow).ds)}};
  return lane_pass(v, out, n, sums, spreads, step);
}

SPARTAN_AVX512 size_t mask_update_sums(float* out, size_t n, float factor, double sums[8], double spreads[8]) {
  return lane_pass(out, out, n, sums, spreads, UpdateStep{_mm512_set1_ps(factor)});
}

}  // namespace

size_t finite_min_max_avx512(const float* x, size_t n, bool& finite, float& lo, float& hi) {
  return cpu_has_avx512() ? finite_min_max(x, n, finite, lo, hi) : 0;
}

size_t sigmoid_sums_avx512(const float* v, float* out, size_t n, double inv_c, double beta, double center,
                           double mu, double sums[8], double spreads[8]) {
  return cpu_has_avx512() ? sigmoid_sums(v, out, n, inv_c, beta, center, mu, sums, spreads) : 0;
}

size_t mask_update_sums_avx512(float* out, size_t n, float factor, double sums[8], double spreads[8]) {
  return cpu_has_avx512() ? mask_update_sums(out, n, factor, sums, spreads) : 0;
}

#else

bool cpu_has_avx512() { return false; }
size_t finite_min_max_avx512(const float*, size_t, bool&, float&, float&) { return 0; }
size_t sigmoid_sums_avx512(const float*, float*, size_t, double, double, double, double, double*, double*) { return 0; }
size_t mask_update_sums_avx512(float*, size_t, float, double*, double*) { return 0; }

#endif

}  // namespace spartan
