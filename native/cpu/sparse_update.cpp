// Mask-path gradients and fused optimizer steps, parallel over fixed chunks (or
// block rows), float64 where a reduction is involved.
#include <algorithm>
#include <cmath>
#include <vector>

#include "fast_math.h"
#include "scan.h"
#include "spartan/parallel.h"
#include "spartan/sparse_update.h"

namespace spartan {
namespace {

constexpr size_t kChunk = size_t(1) << 15;

struct Scratch {
  std::vector<float> g;
  std::vector<Status> errs;
  std::vector<double> sums;
};
thread_local Scratch scratch;

Status first_error(const std::vector<Status>& errs) {
  for (const Status& e : errs)
    if (!e.ok()) return e;
  return Status::Ok();
}

}  // namespace

Status mask_upstream(const float* gw, const float* theta, const BlockShape& s, float* g) {
  Scratch& sc = scratch;
  if (s.b0 == 1 && s.b1 == 1) {  // unstructured: g = gw * theta, validated first
    const size_t n = s.size(), nchunks = (n + kChunk - 1) / kChunk;
    sc.errs.assign(nchunks, Status::Ok());
    auto check = [&](size_t ci, size_t) {
      const size_t b = ci * kChunk, e = std::min(n, b + kChunk);
      sc.errs[ci] = check_finite(gw, b, e, Arg::kGradW);
    };
    parallel_for(nchunks, check);
    Status st = first_error(sc.errs);
    if (!st.ok()) return st;
    auto mul = [&](size_t ci, size_t) {
      const size_t b = ci * kChunk, e = std::min(n, b + kChunk);
      for (size_t i = b; i < e; ++i) g[i] = gw[i] * theta[i];
    };
    parallel_for(nchunks, mul);
    return Status::Ok();
  }
  const size_t nbr = s.block_rows(), nbc = s.block_cols();
  sc.g.resize(s.num_blocks());  // staged so `g` is untouched on error
  sc.errs.assign(nbr, Status::Ok());
  auto task = [&](size_t br, size_t) {
    for (size_t bc = 0; bc < nbc; ++bc) {
      double acc = 0;
      for (size_t r = br * s.b0; r < (br + 1) * s.b0; ++r) {
        const size_t off = r * s.cols + bc * s.b1;
        double racc = 0;
        for (size_t j = 0; j < s.b1; ++j) racc += double(gw[off + j]) * double(theta[off + j]);
        if (!std::isfinite(racc)) {
          for (size_t j = 0; j < s.b1; ++j)
            if (!std::isfinite(gw[off + j])) {
              sc.errs[br] = {Code::kNonFinite, Arg::kGradW, 0, off + j, gw[off + j], 0};
              return;
            }
        }
        acc += racc;
      }
      sc.g[br * nbc + bc] = float(acc);
    }
  };
  parallel_for(nbr, task);
  Status st = first_error(sc.errs);
  if (!st.ok()) return st;
  std::copy(sc.g.begin(), sc.g.end(), g);
  return Status::Ok();
}

void spartan_param_grad(const float* gw, const float* theta, const float* m, const float* vjp, const BlockShape& s,
                        float* out) {
  const size_t nbc = s.block_cols();
  if (s.b0 == 1 && s.b1 == 1) {  // element masks: flat
    const size_t n = s.size(), nchunks = (n + kChunk - 1) / kChunk;
    auto task = [&](size_t ci, size_t) {
      const size_t b = ci * kChunk, e = std::min(n, b + kChunk);
      for (size_t i = b; i < e; ++i) out[i] = gw[i] * m[i] + sign_of(theta[i]) * vjp[i];
    };
    parallel_for(nchunks, task);
    return;
  }
  auto task = [&](size_t r, size_t) {
    const size_t brow = (r / s.b0) * nbc;
    for (size_t bc = 0; bc < nbc; ++bc) {
      const float mb = m[brow + bc], vb = vjp[brow + bc];
      const size_t b = r * s.cols + bc * s.b1, e = b + s.b1;
      for (size_t j = b; j < e; ++j) out[j] = gw[j] * mb + sign_of(theta[j]) * vb;
    }
  };
  parallel_for(s.rows, task);
}

size_t count_changes(const uint8_t* a, const uint8_t* b, size_t n) {
  Scratch& sc = scratch;
  const size_t nchunks = (n + kChunk - 1) / kChunk;
  sc.sums.assign(nchunks, 0.0);
  auto task = [&](size_t ci, size_t) {
    uint32_t c = 0;
    const size_t lo = ci * kChunk, hi = std::min(n, lo + kChunk);
    for (size_t i = lo; i < hi; ++i) c += uint32_t(a[i] != b[i]);
    sc.sums[ci] = c;
  };
  parallel_for(nchunks, task);
  size_t total = 0;
  for (double v : sc.sums) total += size_t(v);
  return total;
}

Status sum_squares(const float* x, size_t n, double* result, Arg arg) {
  Scratch& sc = scratch;
  const size_t nchunks = (n + kChunk - 1) / kChunk;
  sc.sums.assign(nchunks, 0.0);
  sc.errs.assign(nchunks, Status::Ok());
  auto task = [&](size_t ci, size_t) {
    double acc[8] = {0};
    const size_t b = ci * kChunk, e = std::min(n, b + kChunk);
    size_t i = b;
    for (; i + 8 <= e; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += double(x[i + j]) * double(x[i + j]);
    for (; i < e; ++i) acc[0] += double(x[i]) * double(x[i]);
    double t = 0;
    for (double a : acc) t += a;
    if (!std::isfinite(t)) {
      for (size_t k = b; k < e; ++k)
        if (!std::isfinite(x[k])) {
          sc.errs[ci] = {Code::kNonFinite, arg, 0, k, x[k], 0};
          return;
        }
    }
    sc.sums[ci] = t;
  };
  parallel_for(nchunks, task);
  Status st = first_error(sc.errs);
  if (!st.ok()) return st;
  double total = 0;
  for (double v : sc.sums) total += v;  // chunk order: deterministic
  *result = total;
  return Status::Ok();
}

namespace {

// The fused optimizer updates over [b, e), float64 arithmetic (an AVX2 clone where the
// CPU has it: same operations, bit-identical results).
// One loop per (momentum, first step, Nesterov) case: with the branches hoisted out, GCC
// vectorises each (it did not unswitch the loop with them inside).
template <bool kMomentum, bool kFirst, bool kNesterov>
inline void sgd_loop(float* theta, const float* grad, float* buf, size_t begin, size_t end, const SgdConfig& c) {
  for (size_t i = begin; i < end; ++i) {
    double d = c.grad_scale * double(grad[i]) + c.weight_decay * double(theta[i]);
    if (kMomentum) {
      double b = kFirst ? d : c.momentum * double(buf[i]) + (1 - c.dampening) * d;
      buf[i] = float(b);
      d = kNesterov ? d + c.momentum * b : b;
    }
    theta[i] = float(double(theta[i]) - c.lr * d);
  }
}

SPARTAN_VECTOR_CLONES void sgd_range(float* theta, const float* grad, float* buf, size_t begin, size_t end,
                                   const SgdConfig& c) {
  if (c.momentum == 0) return sgd_loop<false, false, false>(theta, grad, buf, begin, end, c);
  if (c.first_step)
    return c.nesterov ? sgd_loop<true, true, true>(theta, grad, buf, begin, end, c)
                      : sgd_loop<true, true, false>(theta, grad, buf, begin, end, c);
  return c.nesterov ? sgd_loop<true, false, true>(theta, grad, buf, begin, end, c)
                    : sgd_loop<true, false, false>(theta, grad, buf, begin, end, c);
}

SPARTAN_VECTOR_CLONES void adamw_range(float* theta, const float* grad, float* m, float* v, size_t begin,
                                     size_t end, const AdamWConfig& c, double bc1, double bc2) {
  for (size_t i = begin; i < end; ++i) {
    double g = c.grad_scale * double(grad[i]);
    double t = double(theta[i]) * (1 - c.lr * c.weight_decay);
    double mi = c.beta1 * double(m[i]) + (1 - c.beta1) * g;
    double vi = c.beta2 * double(v[i]) + (1 - c.beta2) * g * g;
    m[i] = float(mi);
    v[i] = float(vi);
    theta[i] = float(t - c.lr * (mi / bc1) / (std::sqrt(vi / bc2) + c.eps));
  }
}

}  // namespace

void sgd_step(float* theta, const float* grad, float* buf, size_t n, const SgdConfig& c) {
  const size_t nchunks = (n + kChunk - 1) / kChunk;
  auto task = [&](size_t ci, size_t) { sgd_range(theta, grad, buf, ci * kChunk, std::min(n, (ci + 1) * kChunk), c); };
  parallel_for(nchunks, task);
}

void adamw_step(float* theta, const float* grad, float* m, float* v, size_t n, const AdamWConfig& c) {
  const double bc1 = 1 - std::pow(c.beta1, double(c.step)), bc2 = 1 - std::pow(c.beta2, double(c.step));
  const size_t nchunks = (n + kChunk - 1) / kChunk;
  auto task = [&](size_t ci, size_t) {
    adamw_range(theta, grad, m, v, ci * kChunk, std::min(n, (ci + 1) * kChunk), c, bc1, bc2);
  };
  parallel_for(nchunks, task);
}

}  // namespace spartan
