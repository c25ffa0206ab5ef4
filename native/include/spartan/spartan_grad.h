// The Spartan gradient of theta for element (1 x 1) masks, fused into one pass that
// validates and reduces and one that writes. It equals, bit for bit, the three kernels it
// replaces (mask_upstream, then soft_topk_backward with cost 1, then spartan_param_grad),
// which read and write the full-size upstream and vjp arrays on the way:
//   G' = G (straight through) or G h;  g = G' theta (float);  w = m (1 - m)
//   s = sum g w / sum w over the group;  out = G' m + sign(theta) float(beta w (g - s)).
#pragma once
#include <cstddef>
#include <cstdint>

#include "spartan/segments.h"
#include "spartan/status.h"

namespace spartan {

struct SpartanGradSegment {
  const float* grad_w = nullptr;  // dL/dW for W = theta m(|theta|) (h)
  const float* theta = nullptr;
  const float* mask = nullptr;    // the soft mask m, in [0, 1]
  const uint8_t* hard = nullptr;  // the forward set h that masks grad_w first, or null (straight through)
  size_t n = 0;
  float* out = nullptr;  // dL/dtheta; may be grad_w itself, must overlap nothing else
};

struct SpartanGradGroup : Group {
  double beta = 1.0;
};

// Validates grad_w, theta (finite) and mask (in [0, 1]) before anything is written.
// Then checks what it wrote: finite inputs can still overflow float32 (kNonFinite on kOut,
// naming the first such entry), so a caller may hand `out` on unchecked. If
// out_sum_squares is not null it receives sum(out^2) per segment (squares in float, summed
// in float64 per chunk in eight lanes, chunks in order: the same for any thread count;
// relative error ~1e-7), which spares an optimizer its own pass over the gradient.
Status spartan_element_grad(const SpartanGradSegment* segments, size_t num_segments, const SpartanGradGroup* groups,
                            size_t num_groups, double* out_sum_squares = nullptr);

}  // namespace spartan
