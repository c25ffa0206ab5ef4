// Branch-free float math that GCC and Clang auto-vectorise (no libm calls in hot loops).
#pragma once
#include <cstdint>
#include <cstring>

// The exp-heavy loops get an AVX2 clone that the loader picks on CPUs that have it
// (GCC function multiversioning; x86-64 Linux with glibc only). The clone does the same IEEE
// operations in the same order in wider vectors, and no FMA: results are bit-identical
// to the baseline SSE2 code. Needs glibc's ifunc (musl has none: Alpine builds the baseline).
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__)
#define SPARTAN_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SPARTAN_VECTOR_CLONES
#endif

namespace spartan {

inline float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// sign(x) as a float, without a branch (a data-dependent branch here mispredicts on
// half the entries and stops the loop from vectorising).
inline float sign_of(float x) { return float(x > 0.0f) - float(x < 0.0f); }

inline float clampf(float x, float lo, float hi) {
  x = x < lo ? lo : x;  // minss / maxss patterns: vectorise without fast-math
  return x > hi ? hi : x;
}

// fast_exp's constants, which its SIMD twins (exp8 in soft_topk_avx2.cpp, exp16 in
// soft_topk_avx512.cpp) read too, so the three cannot drift apart.
namespace exp_const {
constexpr float kLo = -87.3f, kHi = 88.0f;      // the clamp
constexpr float kRound = 12582912.0f;           // 1.5 * 2^23: adding it rounds to an integer
constexpr float kLog2e = 1.44269504088896341f;  // 1 / ln 2
constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.42860682030941723212e-6f;  // Cody-Waite: ln 2 = hi + lo
// exp(f) on |f| <= 0.347: Taylor to degree 7 (error < 1e-8 relative), Horner from the top
constexpr float kPoly[8] = {1.98412698e-4f, 1.38888889e-3f, 8.33333333e-3f, 4.16666667e-2f, 1.66666667e-1f, 0.5f, 1.0f, 1.0f};
}  // namespace exp_const

// e^x in float for x in [-87.3, 88] (clamped there, so the result is always a
// finite normal float); relative error about 2 ulp.
inline float fast_exp(float x) {
  using namespace exp_const;
  x = clampf(x, kLo, kHi);
  float t = x * kLog2e + kRound;
  float r = t - kRound;  // round(x / ln 2)
  int32_t i = int32_t(r);
  float f = x - r * kLn2Hi;
  f = f - r * kLn2Lo;
  float p = kPoly[0];
  for (int j = 1; j < 8; ++j) p = p * f + kPoly[j];
  return p * bits_to_float(uint32_t(i + 127) << 23);  // times 2^i
}

// sigmoid(z) and sigmoid'(z) = s (1 - s), accurate in both tails; branch-free.
struct Sigmoid {
  float s, ds;
};
// Below this z, exp(-z) clamps to exp(kHi): fast_sigmoid is exactly 0 there and its
// derivative one constant (the SIMD loops use both, to skip those lanes' division).
constexpr float kSigmoidZeroBelow = -exp_const::kHi;
inline Sigmoid fast_sigmoid(float z) {
  float e = fast_exp(-z);
  float inv = 1.0f / (1.0f + e);
  float s = z < kSigmoidZeroBelow ? 0.0f : inv;  // exactly 0 far below the threshold
  float ds = (e * inv) * inv;                    // e / (1 + e)^2, finite because e is
  return {s, ds};
}

}  // namespace spartan
