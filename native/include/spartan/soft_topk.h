// Soft top-k: m_i = sigmoid(beta * v_i / c_i + lambda), with lambda the root of
// sum_i c_i m_i = k, solved exactly by safeguarded Newton (float64 sums).
#pragma once
#include "spartan/segments.h"
#include "spartan/status.h"

namespace spartan {

struct SoftTopKSegment {
  const float* values = nullptr;
  size_t n = 0;
  Costs costs;
  float* out = nullptr;  // receives the mask; must not overlap `values`
};

struct SoftTopKGroup : Group {
  double k = 0.0;     // budget in cost units, 0 <= k <= total cost
  double beta = 1.0;  // > 0
  double warm_lambda = 0.0;
  bool warm = false;  // start Newton at warm_lambda instead of the histogram guess
};

struct SoftTopKResult {
  double lambda = 0.0;  // -inf for k = 0, +inf for k = total cost
  double mass = 0.0;    // sum_i c_i m_i of the written (float32) mask
  double total_cost = 0.0;
  int iterations = 0;   // Newton evaluations over the data
  int passes = 0;       // total reads of the data, validation included
  bool converged = false;
};

// Validates every input before writing any output. On error nothing is written.
// The soft top-k forward's hand-written loops: AVX-512 (F and DQ), AVX2, or the portable
// loops alone. By default the widest the CPU runs; the environment variable SPARTAN_SIMD
// (avx2 or portable, read once) caps it, for timing one against another or for a CPU whose
// 512-bit units clock down. Results are bit-identical whichever runs.
enum class SimdLevel : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };
SimdLevel soft_topk_simd_level();
const char* simd_level_name(SimdLevel level);

Status soft_topk_forward(const SoftTopKSegment* segments, size_t num_segments,
                         const SoftTopKGroup* groups, size_t num_groups, SoftTopKResult* results);

struct SoftTopKBackwardSegment {
  const float* mask = nullptr;
  const float* grad = nullptr;  // dL/dm
  size_t n = 0;
  Costs costs;
  float* out = nullptr;  // dL/dv; may alias mask or grad
};

struct SoftTopKBackwardGroup : Group {
  double beta = 1.0;
};

// dL/dv_i = beta m_i (1 - m_i) (g_i / c_i - s), s = sum g m(1-m) / sum c m(1-m) per group
// (s = 0 when every entry of the group is saturated).
Status soft_topk_backward(const SoftTopKBackwardSegment* segments, size_t num_segments,
                          const SoftTopKBackwardGroup* groups, size_t num_groups);

}  // namespace spartan
