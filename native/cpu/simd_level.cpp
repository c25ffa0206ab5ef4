// Which hand-written soft top-k loops run (spartan/soft_topk.h, SimdLevel): the widest this
// CPU has, capped by SPARTAN_SIMD=avx2|portable. Read once, at the first call.
#include <cstdlib>
#include <cstring>

#include "soft_topk_simd.h"

namespace spartan {

static SimdLevel requested_cap() {
  const char* e = std::getenv("SPARTAN_SIMD");
  if (e && std::strcmp(e, "portable") == 0) return SimdLevel::kPortable;
  if (e && std::strcmp(e, "avx2") == 0) return SimdLevel::kAvx2;
  return SimdLevel::kAvx512;  // unset, avx512, or a value the TypeScript side warns about
}

SimdLevel soft_topk_simd_level() {
  static const SimdLevel level = [] {
    const SimdLevel cpu = cpu_has_avx512() ? SimdLevel::kAvx512 : cpu_has_avx2() ? SimdLevel::kAvx2 : SimdLevel::kPortable;
    const SimdLevel cap = requested_cap();
    return int(cpu) < int(cap) ? cpu : cap;
  }();
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace spartan
