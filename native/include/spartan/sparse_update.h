// Kernels of the sparse parameter updates and the fused optimizer steps. Matrices
// are row-major rows x cols in b0 x b1 tiles (1 x 1 for element masks).
#pragma once
#include <cstdint>

#include "spartan/block_ops.h"
#include "spartan/status.h"

namespace spartan {

// g[b] = sum over tile b of grad_w * theta (the upstream gradient of a mask entry).
// Validates grad_w (finite) first; nothing is written on error.
Status mask_upstream(const float* grad_w, const float* theta, const BlockShape& shape, float* g);

// out = grad_w * m[b(e)] + sign(theta) * vjp[b(e)]: the Spartan gradient of theta.
// out may alias grad_w.
void spartan_param_grad(const float* grad_w, const float* theta, const float* mask, const float* vjp,
                        const BlockShape& shape, float* out);

// Number of positions where a and b differ (mask flips between two steps).
size_t count_changes(const uint8_t* a, const uint8_t* b, size_t n);

// sum of squares (float64) of x, for gradient-norm clipping; validates x.
Status sum_squares(const float* x, size_t n, double* result, Arg arg);

struct SgdConfig {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, grad_scale = 1;
  bool nesterov = false;
  bool first_step = true;  // momentum buffer starts at the gradient
};
// PyTorch's SGD: d = s g + wd theta; buf = momentum buf + (1 - dampening) d; d = nesterov ? d + momentum buf : buf; theta -= lr d.
void sgd_step(float* theta, const float* grad, float* momentum_buf, size_t n, const SgdConfig& cfg);

struct AdamWConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01, grad_scale = 1;
  int64_t step = 1;  // 1-based, for bias correction
};
// AdamW (decoupled decay): theta -= lr wd theta; m, v moments of s g; theta -= lr mhat / (sqrt(vhat) + eps).
void adamw_step(float* theta, const float* grad, float* m, float* v, size_t n, const AdamWConfig& cfg);

}  // namespace spartan
