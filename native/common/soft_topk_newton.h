// The soft top-k solver's per-group state and its safeguarded Newton update,
// shared by the CPU and CUDA forward kernels (host and device code), so the
// stopping rules and bracket logic are one piece of code, tested on the CPU.
#pragma once
#include <math.h>

#include "spartan/soft_topk.h"

#if defined(__CUDACC__)
#define SPARTAN_HD __host__ __device__
#else
#define SPARTAN_HD
#endif

namespace spartan {

constexpr int kSoftTopKMaxIterations = 100;
// beta * |u| beyond this and the solver's float64 arguments z = beta (u - c) + mu overflow (NaN
// masks); 1e300 leaves room for the centring and the bracket's logits.
constexpr double kMaxBetaU = 1e300;

struct SoftTopKGroupState {
  double total_cost, c_min, u_min, u_max, k, beta;
  double lambda, lo, hi, f, df, prev_abs_f, eps;
  double center, mu;  // centred groups evaluate z = beta (u - center) + mu
  int centered;
  int iterations, passes;
  int fixed;  // lambda known in closed form: one write pass, no Newton
  int overflow;  // beta * max |u| beyond kMaxBetaU: the caller reports kBetaRange
  int done, converged;
};

SPARTAN_HD inline double stk_inf() { return HUGE_VAL; }
SPARTAN_HD inline double stk_logit(double p) { return log(p) - log1p(-p); }
SPARTAN_HD inline double stk_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
SPARTAN_HD inline double stk_sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

SPARTAN_HD inline void stk_reset(SoftTopKGroupState& g, double k, double beta) {
  const double inf = stk_inf();
  g.total_cost = 0; g.c_min = inf; g.u_min = inf; g.u_max = -inf; g.k = k; g.beta = beta;
  g.lambda = 0; g.lo = -inf; g.hi = inf; g.f = 0; g.df = 0; g.prev_abs_f = inf; g.eps = 0;
  g.center = 0; g.mu = 0; g.centered = 0; g.iterations = 0; g.passes = 0;
  g.fixed = 0; g.overflow = 0; g.done = 0; g.converged = 0;
}

// After the validating pass (total_cost, c_min, u_min, u_max known): closed forms
// (k = 0, k = total, all values equal) or the rigorous starting bracket.
// Returns true when the group still needs a starting lambda inside [lo, hi].
SPARTAN_HD inline bool stk_init(SoftTopKGroupState& g, long long n) {
  const double inf = stk_inf();
  g.passes = 1;
  g.eps = fmax(1e-6 * g.c_min, 4e-14 * g.total_cost);
  if (n == 0) {
    g.done = g.converged = 1;
    return false;
  }
  // beta * max |u|: the closed forms below overflow only where it is not finite (all values
  // equal: never, z is centred); Newton needs the margin up to kMaxBetaU
  const double beta_u = g.beta * fmax(fabs(g.u_min), fabs(g.u_max));
  const double rho = g.k / g.total_cost;
  if ((g.k <= 0 || g.k >= g.total_cost) && !isfinite(beta_u)) {
    g.overflow = g.done = 1;
    return false;
  }
  if (g.k <= 0) {
    g.fixed = 1;
    g.lambda = -inf;
  } else if (g.k >= g.total_cost) {
    g.fixed = 1;
    g.lambda = inf;
  } else if (g.u_min == g.u_max) {
    g.fixed = 1;  // every entry gets k / total, exactly: centred at the common value
    g.centered = 1;
    g.center = g.u_min;
    g.mu = stk_logit(rho);
    g.lambda = g.mu - g.beta * g.u_min;  // as reported; may round where z does not
  } else if (!(beta_u <= kMaxBetaU)) {
    g.overflow = g.done = 1;
  } else {
    g.lo = stk_logit(rho) - g.beta * g.u_max;
    g.hi = stk_logit(rho) - g.beta * g.u_min;
    return true;
  }
  return false;
}

// Starting lambda without a histogram: the warm value clamped into the bracket, or its middle.
SPARTAN_HD inline void stk_start(SoftTopKGroupState& g, bool warm, double warm_lambda) {
  if (warm && isfinite(warm_lambda)) {
    g.lambda = fmin(fmax(warm_lambda, g.lo), g.hi);
  } else {
    g.lambda = 0.5 * (g.lo + g.hi);
    if (!isfinite(g.lambda)) g.lambda = 0;
  }
}

// Mass-weighted mean of sigmoid(beta u + lambda) for u uniform on [lo, hi], and its
// derivative in lambda (the histogram model of the first guess).
SPARTAN_HD inline void stk_bin_model(double lo, double hi, double beta, double lambda, double& s, double& ds) {
  double w = beta * (hi - lo);
  if (w < 1e-6) {
    double x = beta * 0.5 * (lo + hi) + lambda;
    s = stk_sigmoid(x);
    ds = s * (1 - s);
    return;
  }
  double xl = beta * lo + lambda, xh = beta * hi + lambda;
  s = (stk_softplus(xh) - stk_softplus(xl)) / w;
  ds = (stk_sigmoid(xh) - stk_sigmoid(xl)) / w;
}

// Widening of a histogram bound at bin edge e for float(u) binning and rounding.
SPARTAN_HD inline double stk_slack(double beta, double e) { return 1.0 + 1e-6 * beta * fabs(e); }

// One safeguarded Newton step after a pass that evaluated f = sum c m - k and df at
// g.lambda (and wrote the mask there). Marks the group done (keeping that mask) or
// moves lambda.
SPARTAN_HD inline void stk_newton_update(SoftTopKGroupState& g) {
  g.iterations++;
  const double abs_f = fabs(g.f);
  if (g.fixed) {  // closed form: one pass; say whether float64 could represent it
    g.done = 1;
    g.converged = abs_f <= 1e-3 + 1e-6 * g.total_cost;
    return;
  }
  if (abs_f <= g.eps) {
    g.done = g.converged = 1;
    return;
  }
  if (g.df > 0 && abs_f / g.df <= 1e-7) {  // step below any visible change of the mask
    g.done = g.converged = 1;
    return;
  }
  if (g.f < 0) g.lo = g.lambda; else g.hi = g.lambda;
  double next = g.df > 0 ? g.lambda - g.f / g.df : 0.5 * (g.lo + g.hi);
  bool slow = abs_f > 0.5 * g.prev_abs_f;  // Newton is not converging fast: bisect
  if (!(next > g.lo && next < g.hi) || (slow && g.iterations > 2)) next = 0.5 * (g.lo + g.hi);
  g.prev_abs_f = abs_f;
  const double eps64 = 2.220446049250313e-16;
  if (next == g.lambda || g.iterations >= kSoftTopKMaxIterations ||
      g.hi - g.lo <= 4 * eps64 * fmax(fabs(g.lo), fabs(g.hi))) {
    g.done = 1;  // bracket exhausted: keep the mask written at this lambda
    g.converged = abs_f <= 1e-3 + 1e-6 * g.total_cost;
    return;
  }
  g.lambda = next;
}

// What a call reports for a finished group (host code).
inline SoftTopKResult stk_result(const SoftTopKGroupState& g) {
  SoftTopKResult r;
  r.lambda = g.lambda;
  r.mass = g.f + g.k;
  r.total_cost = g.total_cost;
  r.iterations = g.fixed ? 0 : g.iterations;
  r.passes = g.passes;
  r.converged = g.converged != 0;
  return r;
}

}  // namespace spartan
