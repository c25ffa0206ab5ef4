// Order-preserving unsigned keys for floats: a < b  <=>  key(a) < key(b), with -0 == +0.
#pragma once
#include <cstdint>
#include <cstring>

namespace spartan {

// Branch-free (a compare-to-zero branch here cost the hard top-k passes a third of their time).
inline uint32_t float_key(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  b = b == 0x80000000u ? 0u : b;                               // -0 ties with +0
  return b ^ (uint32_t(int32_t(b) >> 31) | 0x80000000u);       // negative: all bits flipped; else the sign bit
}
inline float key_to_float(uint32_t k) {
  uint32_t b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
inline uint64_t double_key(double d) {
  if (d == 0.0) d = 0.0;
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return (b >> 63) ? ~b : (b | (uint64_t(1) << 63));
}

}  // namespace spartan
