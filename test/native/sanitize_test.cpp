// Drives every CPU kernel through random segmented configurations (sizes around
// chunk boundaries, many groups, costs, ties, saturation, invalid data, aliasing,
// concurrent callers and pool resizes) under ASan/UBSan. Checks invariants that
// need no reference: sum(c m) = k, exact counts, finite outputs, error codes.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "spartan/block_ops.h"
#include "spartan/bsr.h"
#include "spartan/hard_topk.h"
#include "spartan/parallel.h"
#include "spartan/soft_topk.h"
#include "spartan/spartan_grad.h"
#include "../../native/cpu/fast_math.h"
#include "../../native/cpu/hard_topk_counted.h"
#include "../../native/cpu/soft_topk_simd.h"

using namespace spartan;

static int failures = 0;
#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                  \
      std::fprintf(stderr, "\n");                         \
      ++failures;                                         \
    }                                                     \
  } while (0)

struct Case {
  std::vector<std::vector<float>> values, costs, out, grad, gout;
  std::vector<std::vector<uint8_t>> hard;
};

static size_t pick_size(std::mt19937& rng) {
  static const size_t sizes[] = {1, 2, 7, 8, 9, 31, 4095, 4096, 4097, 32767, 32768, 32769, 100000};
  return sizes[rng() % (sizeof sizes / sizeof sizes[0])];
}

static void run_case(std::mt19937& rng, bool global) {
  const size_t nseg = 1 + rng() % 5;
  Case c;
  std::normal_distribution<float> nd;
  std::vector<SoftTopKSegment> segs(nseg);
  std::vector<TopKSegment> tsegs(nseg);
  std::vector<SoftTopKBackwardSegment> bsegs(nseg);
  std::vector<double> totals(nseg, 0);
  std::vector<bool> huge(nseg, false);
  for (size_t s = 0; s < nseg; ++s) {
    size_t n = pick_size(rng);
    int kind = rng() % 4;  // 0 normal, 1 ties, 2 all equal, 3 huge spread
    std::vector<float> v(n);
    for (auto& x : v) x = kind == 1 ? float(rng() % 3) : kind == 2 ? 0.5f : kind == 3 ? nd(rng) * 1e20f : nd(rng);
    c.values.push_back(v);
    huge[s] = kind == 3;
    bool per_entry = rng() % 3 == 0;
    std::vector<float> cs;
    if (per_entry) { cs.resize(n); for (auto& x : cs) x = 1 + rng() % 4; }
    c.costs.push_back(cs);
    c.out.emplace_back(n, -7.0f);
    c.grad.emplace_back(n);
    for (auto& x : c.grad.back()) x = nd(rng);
    c.gout.emplace_back(n);
    c.hard.emplace_back(n, 7);
  }
  for (size_t s = 0; s < nseg; ++s) {
    size_t n = c.values[s].size();
    Costs costs;
    if (!c.costs[s].empty()) costs.data = c.costs[s].data();
    else costs.uniform = double(1 + rng() % 3);
    for (size_t i = 0; i < n; ++i) totals[s] += costs.at(i);
    segs[s] = {c.values[s].data(), n, costs, c.out[s].data()};
    tsegs[s] = {c.values[s].data(), n, costs, c.hard[s].data()};
  }
  std::vector<SoftTopKGroup> groups;
  std::vector<TopKGroup> tgroups;
  std::vector<SoftTopKBackwardGroup> bgroups;
  const double betas[] = {1e-3, 1, 30, 1e4, 1e8};
  auto budget = [&](double total) {
    int r = rng() % 6;
    return r == 0 ? 0.0 : r == 1 ? total : total * std::uniform_real_distribution<double>(0, 1)(rng);
  };
  if (global) {
    double total = 0;
    for (double t : totals) total += t;
    SoftTopKGroup g;
    g.first = 0; g.count = nseg; g.k = budget(total); g.beta = betas[rng() % 5];
    groups.push_back(g);
    tgroups.push_back({{0, nseg}, g.k});
    bgroups.push_back({{0, nseg}, g.beta});
  } else {
    for (size_t s = 0; s < nseg; ++s) {
      SoftTopKGroup g;
      g.first = s; g.count = 1; g.k = budget(totals[s]); g.beta = betas[rng() % 5];
      groups.push_back(g);
      tgroups.push_back({{s, 1}, g.k});
      bgroups.push_back({{s, 1}, g.beta});
    }
  }
  std::vector<SoftTopKResult> res(groups.size());
  Status st = soft_topk_forward(segs.data(), nseg, groups.data(), groups.size(), res.data());
  CHECK(st.ok(), "forward status %d", int(st.code));
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    double mass = 0, total = 0;
    for (size_t s = groups[gi].first; s < groups[gi].first + groups[gi].count; ++s)
      for (size_t i = 0; i < segs[s].n; ++i) {
        float m = segs[s].out[i];
        CHECK(m >= 0.0f && m <= 1.0f, "mask out of range: %g", m);
        mass += segs[s].costs.at(i) * m;
        total += segs[s].costs.at(i);
      }
    bool any_huge = false;
    for (size_t s = groups[gi].first; s < groups[gi].first + groups[gi].count; ++s) any_huge = any_huge || huge[s];
    bool mass_ok = std::fabs(mass - groups[gi].k) <= 1e-3 + 1e-6 * total;
    CHECK(std::fabs(mass - res[gi].mass) <= 1e-6 * (1 + total), "reported mass %.9g vs %.9g", res[gi].mass, mass);
    // |beta u| ~ 1e20 is beyond what a float64 lambda can resolve: the solver must say so.
    if (any_huge) CHECK(mass_ok || !res[gi].converged, "claims convergence with mass %.9g vs k %.9g", mass, groups[gi].k);
    else CHECK(mass_ok && res[gi].converged, "mass %.9g vs k %.9g (beta %g, converged %d, iterations %d)", mass, groups[gi].k, groups[gi].beta, int(res[gi].converged), res[gi].iterations);
  }
  for (size_t s = 0; s < nseg; ++s) bsegs[s] = {c.out[s].data(), c.grad[s].data(), segs[s].n, segs[s].costs, c.gout[s].data()};
  st = soft_topk_backward(bsegs.data(), nseg, bgroups.data(), bgroups.size());
  CHECK(st.ok(), "backward status %d", int(st.code));
  for (auto& g : c.gout) for (float x : g) CHECK(std::isfinite(x), "non-finite gradient");
  std::vector<TopKResult> tres(tgroups.size());
  st = topk_mask(tsegs.data(), nseg, tgroups.data(), tgroups.size(), tres.data());
  CHECK(st.ok(), "topk status %d", int(st.code));
  for (size_t gi = 0; gi < tgroups.size(); ++gi) {
    double kept = 0;
    for (size_t s = tgroups[gi].first; s < tgroups[gi].first + tgroups[gi].count; ++s)
      for (size_t i = 0; i < tsegs[s].n; ++i) {
        CHECK(tsegs[s].out[i] <= 1, "hard mask value %d", tsegs[s].out[i]);
        if (tsegs[s].out[i]) kept += tsegs[s].costs.at(i);
      }
    CHECK(kept >= tgroups[gi].k - 1e-6 * (1 + tgroups[gi].k), "kept cost %.9g < k %.9g", kept, tgroups[gi].k);
    CHECK(std::fabs(kept - tres[gi].kept_cost) <= 1e-6 * (1 + kept), "kept cost report");
  }
  // Invalid data: a NaN in the last segment must be reported and nothing written.
  size_t last = nseg - 1;
  std::vector<float> before = c.out[last];
  c.values[last][c.values[last].size() - 1] = NAN;
  st = soft_topk_forward(segs.data(), nseg, groups.data(), groups.size(), res.data());
  CHECK(st.code == Code::kNonFinite && st.segment == last, "NaN not reported");
  CHECK(before == c.out[last], "out written on error");
  // Aliasing: out over values.
  SoftTopKSegment alias = segs[0];
  alias.out = const_cast<float*>(alias.values);
  SoftTopKGroup one;
  one.first = 0; one.count = 1; one.k = 0; one.beta = 1;
  st = soft_topk_forward(&alias, 1, &one, 1, res.data());
  CHECK(st.code == Code::kAlias || (st.code == Code::kNonFinite && nseg == 1), "alias not reported");
}

static void run_blocks(std::mt19937& rng) {
  BlockShape s;
  s.b0 = 1 + rng() % 33; s.b1 = 1 + rng() % 33;
  s.rows = s.b0 * (1 + rng() % 9); s.cols = s.b1 * (1 + rng() % 9);
  std::vector<float> theta(s.size()), scores(s.num_blocks()), out(s.size()), full(s.size());
  std::normal_distribution<float> nd;
  for (auto& x : theta) x = nd(rng);
  CHECK(block_scores(theta.data(), s, scores.data()).ok(), "scores");
  std::vector<float> m(s.num_blocks());
  for (size_t i = 0; i < m.size(); ++i) m[i] = float(rng() % 100) / 99.0f;
  std::vector<uint8_t> h(s.num_blocks());
  for (auto& x : h) x = rng() % 2;
  CHECK(expand_block_mask(m.data(), s, full.data()).ok(), "expand");
  MaskView mv;
  mv.soft = m.data(); mv.per_block = true;
  CHECK(apply_mask(theta.data(), mv, h.data(), s, out.data()).ok(), "apply");
  for (size_t r = 0; r < s.rows; ++r)
    for (size_t col = 0; col < s.cols; ++col) {
      size_t bi = (r / s.b0) * s.block_cols() + col / s.b1;
      CHECK(full[r * s.cols + col] == m[bi], "expand");
      CHECK(out[r * s.cols + col] == theta[r * s.cols + col] * (h[bi] ? m[bi] : 0.0f), "apply value");
    }
  CHECK(apply_mask(theta.data(), mv, h.data(), s, theta.data()).ok(), "apply in place");
}

// Random BSR products (ragged sizes, both forms, float32 / float16 / bfloat16 values,
// bias + ReLU) against a float64 reference, and corrupted structures that must be
// rejected with y untouched.
static void run_bsr(std::mt19937& rng) {
  BsrView a;
  a.block = rng() % 2 ? 16 : 32;
  a.rows = 1 + rng() % 150;
  a.cols = 1 + rng() % 150;
  a.dtype = DType(rng() % 3);
  const size_t b = a.block, nbr = a.block_rows(), nbc = a.block_cols();
  const double density = (rng() % 5) / 4.0;
  std::vector<int32_t> row_ptr(nbr + 1, 0), col_idx;
  for (size_t r = 0; r < nbr; ++r) {
    for (size_t c = 0; c < nbc; ++c)
      if ((rng() % 1000) < density * 1000) col_idx.push_back(int32_t(c));
    row_ptr[r + 1] = int32_t(col_idx.size());
  }
  const size_t nnz = col_idx.size();
  std::normal_distribution<float> nd;
  std::vector<float> vf(nnz * b * b);
  std::vector<uint16_t> vh(nnz * b * b);
  std::vector<double> dense(a.rows * a.cols, 0.0);
  for (size_t i = 0; i < vf.size(); ++i) {
    // half values: random bits with a bounded exponent (finite, normal or subnormal)
    vh[i] = a.dtype == DType::kFloat16 ? uint16_t((rng() & 0x83ff) | ((6 + rng() % 20) << 10))
                                       : uint16_t((rng() & 0x807f) | ((110 + rng() % 30) << 7));
    vf[i] = nd(rng);
  }
  auto value = [&](size_t i) -> double {
    if (a.dtype == DType::kFloat32) return vf[i];
    return a.dtype == DType::kFloat16 ? half_to_float(vh[i]) : bfloat16_to_float(vh[i]);
  };
  for (size_t r = 0; r < nbr; ++r)
    for (int32_t p = row_ptr[r]; p < row_ptr[r + 1]; ++p)
      for (size_t i = 0; i < b; ++i)
        for (size_t k = 0; k < b; ++k) {
          size_t row = r * b + i, col = size_t(col_idx[p]) * b + k;
          if (row < a.rows && col < a.cols) dense[row * a.cols + col] = value(p * b * b + i * b + k);
        }
  a.row_ptr = row_ptr.data();
  a.col_idx = col_idx.data();
  a.nnz_blocks = nnz;
  a.values = a.dtype == DType::kFloat32 ? static_cast<const void*>(vf.data()) : static_cast<const void*>(vh.data());
  const bool linear = rng() % 2;
  const size_t n = 1 + rng() % 40;
  std::vector<float> x(a.cols * n), bias(a.rows), y(a.rows * n, -7.0f);
  for (auto& v : x) v = nd(rng);
  for (auto& v : bias) v = nd(rng);
  BsrEpilogue ep;
  if (rng() % 2) ep.bias = bias.data();
  ep.relu = rng() % 2;
  Status st = linear ? bsr_linear(a, x.data(), DType::kFloat32, n, ep, y.data()) : bsr_matmul(a, x.data(), DType::kFloat32, n, ep, y.data());
  CHECK(st.ok(), "bsr product failed: code %d", int(st.code));
  for (size_t i = 0; i < a.rows && st.ok(); ++i)
    for (size_t j = 0; j < n; ++j) {
      double ref = ep.bias ? bias[i] : 0.0, mag = std::fabs(ref);
      for (size_t k = 0; k < a.cols; ++k) {
        double t = dense[i * a.cols + k] * double(linear ? x[j * a.cols + k] : x[k * n + j]);
        ref += t;
        mag += std::fabs(t);
      }
      if (ep.relu) ref = std::max(ref, 0.0);
      const float got = linear ? y[j * a.rows + i] : y[i * n + j];
      CHECK(std::fabs(got - ref) <= (a.cols + 4) * std::ldexp(mag, -23) + 1e-30, "bsr value %g vs %g (rows %zu cols %zu b %zu)", got, ref, a.rows, a.cols, b);
    }
  // A corrupted structure is rejected before y is written.
  if (nnz > 0) {
    std::vector<float> y2(y.size(), 3.0f);
    int32_t saved = col_idx[nnz / 2];
    col_idx[nnz / 2] = int32_t(nbc + rng() % 5);
    st = bsr_matmul(a, x.data(), DType::kFloat32, n, ep, y2.data());
    CHECK(st.code == Code::kBadIndex, "bad col_idx not rejected (code %d)", int(st.code));
    CHECK(std::all_of(y2.begin(), y2.end(), [](float v) { return v == 3.0f; }), "y written on a rejected call");
    col_idx[nnz / 2] = saved;
  }
}

// The pool itself: every task of every call runs exactly once, on a thread index below
// the pool size, whether the workers were still spinning from the last call, had fallen
// asleep (the pauses outlast the spin) or were parked.
// Every other call gives the tasks sizes (parallel_for_sized): then each thread's run is
// contiguous and, when `balanced` is checked (no concurrent resize), its total size is
// within one task's size of an equal share.
static void pool_stress(std::mt19937& rng, int calls, bool balanced = false) {
  for (int i = 0; i < calls; ++i) {
    const size_t ntasks = 1 + rng() % 64, threads = num_threads();
    std::vector<std::atomic<int>> hits(ntasks);
    std::vector<size_t> ran_on(ntasks), ends(ntasks);
    std::atomic<int> bad_thread{0};
    auto f = [&](size_t task, size_t thread) {
      hits[task]++;
      ran_on[task] = thread;
      if (thread >= threads) bad_thread++;
    };
    const bool sized = i % 2 == 1;
    size_t total = 0, largest = 0;
    for (size_t t = 0; t < ntasks; ++t) {
      const size_t size = rng() % 4 == 0 ? 0 : 1 + rng() % 40000;
      largest = std::max(largest, size);
      ends[t] = total += size;
    }
    if (sized)
      parallel_for_sized(ntasks, ends.data(), f, threads);
    else
      parallel_for(ntasks, f, threads);
    for (size_t t = 0; t < ntasks; ++t) CHECK(hits[t] == 1, "pool: task %zu of %zu ran %d times", t, ntasks, int(hits[t]));
    CHECK(bad_thread == 0, "pool: a thread index beyond the pool size");
    if (sized && ntasks > 1 && threads > 1) {
      for (size_t t = 1; t < ntasks; ++t) CHECK(ran_on[t] >= ran_on[t - 1], "pool: sized runs not contiguous");
      if (balanced) {
        std::vector<size_t> share(threads, 0);
        for (size_t t = 0; t < ntasks; ++t) share[ran_on[t]] += ends[t] - (t ? ends[t - 1] : 0);
        for (size_t th = 0; th < threads; ++th)
          CHECK(std::fabs(double(share[th]) - double(total) / double(threads)) <= double(largest),
                "pool: thread %zu got %zu of %zu (largest task %zu, %zu threads)", th, share[th], total, largest, threads);
      }
    }
    if (rng() % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % 3));
    if (rng() % 7 == 0) park_threads();  // workers stop spinning mid-stream
  }
}

// The sampled-band hard top-k must decline when its sample misleads it (here the sample
// sees only zeros), and topk_mask must then still be exact (by the radix path).
static void band_miss(std::mt19937& rng) {
  const size_t n = 50000 + rng() % 50000, k = n / 20 + rng() % (n / 10);  // k large enough that the band has a top
  const size_t s = topk_sample_size(n);
  std::vector<float> v(n);
  std::uniform_real_distribution<float> ud(1.0f, 2.0f);
  for (auto& x : v) x = ud(rng);
  for (size_t j = 0; j < s; ++j) v[size_t((unsigned __int128)j * n / s)] = 0.0f;
  std::vector<uint8_t> out(n, 7), ref(n, 0);
  TopKSegment seg{v.data(), n, Costs{}, out.data()};
  TopKGroup g;
  g.first = 0;
  g.count = 1;
  g.k = double(k);
  TopKResult r;
  Status st;
  CHECK(!topk_mask_counted(&seg, 1, &g, 1, &r, &st), "band path did not decline a misleading sample (n %zu)", n);
  CHECK(std::all_of(out.begin(), out.end(), [](uint8_t x) { return x == 7; }), "a declined band path wrote out");
  st = topk_mask(&seg, 1, &g, 1, &r);
  CHECK(st.ok(), "topk after a band miss: status %d", int(st.code));
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] > v[b]; });
  for (size_t i = 0; i < k; ++i) ref[idx[i]] = 1;
  CHECK(out == ref && r.kept == k, "topk after a band miss differs from the sort (n %zu, k %zu)", n, k);
}

// Band hints for the hard top-k (held, missed, inverted, NaN, open; margins past the band's
// ends): the masks and counts equal an unhinted call's.
static void band_hints(std::mt19937& rng) {
  const size_t nseg = 1 + rng() % 3;
  std::vector<std::vector<float>> v(nseg);
  std::vector<std::vector<uint8_t>> a(nseg), b(nseg);
  std::vector<TopKSegment> sa(nseg), sb(nseg);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  size_t total = 0;
  for (size_t s = 0; s < nseg; ++s) {
    const size_t n = pick_size(rng);
    v[s].resize(n);
    for (auto& x : v[s]) x = rng() % 4 ? ud(rng) : float(rng() % 3);  // ties too
    a[s].assign(n, 7);
    b[s].assign(n, 7);
    sa[s] = {v[s].data(), n, Costs{}, a[s].data()};
    sb[s] = {v[s].data(), n, Costs{}, b[s].data()};
    total += n;
  }
  TopKGroup g;
  g.first = 0;
  g.count = nseg;
  g.k = double(rng() % (total + 1));
  g.hint.margin = double(rng() % 100);
  TopKResult ra, rb;
  Status st = topk_mask(sa.data(), nseg, &g, 1, &ra);
  CHECK(st.ok(), "unhinted topk status %d", int(st.code));
  const float picks[][2] = {{ra.next_lo, ra.next_hi}, {2.0f, 3.0f}, {-3.0f, -2.0f}, {0.5f, -0.5f}, {NAN, 1.0f}, {-INFINITY, INFINITY}, {0.0f, 0.0f}};
  TopKGroup h = g;
  const auto& p = picks[rng() % (sizeof picks / sizeof picks[0])];
  h.hint.lo = p[0];
  h.hint.hi = p[1];
  st = topk_mask(sb.data(), nseg, &h, 1, &rb);
  CHECK(st.ok(), "hinted topk status %d", int(st.code));
  CHECK(a == b && ra.kept == rb.kept, "a hint changed the mask (k %g, hint %g..%g)", g.k, double(p[0]), double(p[1]));
}

// The fused element-mask Spartan gradient over random segments (sizes around the lane and
// chunk edges, with and without a forward set): finite outputs, a NaN reported with
// nothing written.
static void spartan_grad(std::mt19937& rng) {
  const size_t nseg = 1 + rng() % 4;
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f), u01(0.0f, 1.0f);
  std::vector<std::vector<float>> g(nseg), th(nseg), m(nseg), out(nseg);
  std::vector<std::vector<uint8_t>> h(nseg);
  std::vector<SpartanGradSegment> segs(nseg);
  for (size_t s = 0; s < nseg; ++s) {
    const size_t n = pick_size(rng);
    g[s].resize(n); th[s].resize(n); m[s].resize(n); h[s].resize(n); out[s].assign(n, 7.0f);
    for (size_t i = 0; i < n; ++i) {
      g[s][i] = ud(rng);
      th[s][i] = rng() % 10 ? ud(rng) : 0.0f;
      m[s][i] = rng() % 10 ? u01(rng) : float(rng() % 2);
      h[s][i] = uint8_t(rng() % 2);
    }
    segs[s] = {g[s].data(), th[s].data(), m[s].data(), rng() % 2 ? h[s].data() : nullptr, n, out[s].data()};
  }
  std::vector<SpartanGradGroup> groups;
  if (rng() % 2) {
    groups.resize(1);
    groups[0].first = 0; groups[0].count = nseg; groups[0].beta = 0.1 + 100.0 * u01(rng);
  } else {
    groups.resize(nseg);
    for (size_t s = 0; s < nseg; ++s) { groups[s].first = s; groups[s].count = 1; groups[s].beta = 0.1 + 100.0 * u01(rng); }
  }
  Status st = spartan_element_grad(segs.data(), nseg, groups.data(), groups.size());
  CHECK(st.ok(), "spartan_element_grad status %d", int(st.code));
  for (auto& o : out) for (float x : o) CHECK(std::isfinite(x), "non-finite Spartan gradient");
  const size_t last = nseg - 1;
  for (auto& o : out) std::fill(o.begin(), o.end(), 7.0f);
  th[last][rng() % th[last].size()] = NAN;
  st = spartan_element_grad(segs.data(), nseg, groups.data(), groups.size());
  CHECK(st.code == Code::kNonFinite && st.arg == Arg::kTheta && st.segment == last, "NaN theta not reported");
  for (auto& o : out) CHECK(std::all_of(o.begin(), o.end(), [](float x) { return x == 7.0f; }), "out written on error");
}

// One instruction set's versions of the soft top-k forward's hot loops (soft_topk_simd.h).
struct SimdLoops {
  const char* name;
  size_t (*sigmoid_sums)(const float*, float*, size_t, double, double, double, double, double*, double*);
  size_t (*mask_update_sums)(float*, size_t, float, double*, double*);
  size_t (*finite_min_max)(const float*, size_t, bool&, float&, float&);
};

// The soft top-k forward's AVX2 and AVX-512 loops equal the portable loops bit for bit: masks,
// updated masks, lane sums, min/max and the finite flag, on sizes around the vector widths,
// values far in both tails of the sigmoid and planted NaN/Inf. Says so when the CPU lacks one.
static int simd_loops(std::mt19937& rng, const SimdLoops& simd) {
  const char* const name = simd.name;
  std::uniform_real_distribution<double> uni(-1.0, 1.0);
  int cases = 0;
  for (int rep = 0; rep < 300; ++rep, ++cases) {
    const size_t n = rng() % 200;
    std::vector<float> v(n), out(n, -1.0f);
    const double scale = std::pow(10.0, int(rng() % 7) - 3);
    for (float& x : v) x = float(uni(rng) * scale);
    const double inv_c = rng() % 2 ? 1.0 : 1.0 / double(1 + rng() % 256);
    const double beta = std::exp(5.0 * uni(rng) + 2.0);
    const double center = n && rng() % 2 ? double(v[rng() % n]) * inv_c : 0.0;
    const double mu = 40.0 * uni(rng);
    double sums[8], spreads[8];
    const size_t done = simd.sigmoid_sums(v.data(), out.data(), n, inv_c, beta, center, mu, sums, spreads);
    if (done == 0 && n >= 8) {
      std::printf("sanitize_test: this CPU has no %s: the %s loops were not checked\n", name, name);
      return 0;
    }
    CHECK(done == n - n % 8, "%s sigmoid_sums did %zu of %zu", name, done, n);
    double ref_s[8] = {0}, ref_d[8] = {0};
    for (size_t i = 0; i < done; ++i) {
      const double z = beta * (double(v[i]) * inv_c - center) + mu;
      const Sigmoid sg = fast_sigmoid(float(z));
      CHECK(std::memcmp(&out[i], &sg.s, sizeof(float)) == 0, "%s mask %zu: %.9g vs %.9g (z %.9g)", name, i, out[i], sg.s, z);
      ref_s[i % 8] += double(sg.s);
      ref_d[i % 8] += double(sg.ds);
    }
    if (done) {
      CHECK(std::memcmp(sums, ref_s, sizeof sums) == 0, "%s mask sums differ", name);
      CHECK(std::memcmp(spreads, ref_d, sizeof spreads) == 0, "%s derivative sums differ", name);
    }
    // the update pass, from the masks just written
    std::vector<float> upd = out;
    const float factor = float(std::exp(uni(rng)));
    const size_t updated = simd.mask_update_sums(upd.data(), n, factor, sums, spreads);
    CHECK(updated == done, "%s mask_update_sums did %zu of %zu", name, updated, n);
    for (double& x : ref_s) x = 0;
    for (double& x : ref_d) x = 0;
    for (size_t i = 0; i < updated; ++i) {
      const float m = out[i], next = m / (m + (1.0f - m) * factor);
      CHECK(std::memcmp(&upd[i], &next, sizeof(float)) == 0, "%s update %zu: %.9g vs %.9g", name, i, upd[i], next);
      ref_s[i % 8] += double(next);
      ref_d[i % 8] += double(next * (1.0f - next));
    }
    if (updated) {
      CHECK(std::memcmp(sums, ref_s, sizeof sums) == 0, "%s update sums differ", name);
      CHECK(std::memcmp(spreads, ref_d, sizeof spreads) == 0, "%s update derivative sums differ", name);
    }
    if (n && rng() % 3 == 0) {
      const float special[] = {NAN, INFINITY, -INFINITY};
      v[rng() % n] = special[rng() % 3];
    }
    bool finite = true;
    float lo = 0, hi = 0;
    const size_t scanned = simd.finite_min_max(v.data(), n, finite, lo, hi);
    CHECK(scanned == n - n % 8, "%s finite_min_max did %zu of %zu", name, scanned, n);
    bool ref_finite = true;
    float ref_lo = scanned ? v[0] : 0, ref_hi = ref_lo;
    for (size_t i = 0; i < scanned; ++i) {
      ref_finite = ref_finite && std::isfinite(v[i]);
      ref_lo = std::min(ref_lo, v[i]);
      ref_hi = std::max(ref_hi, v[i]);
    }
    if (scanned) {
      CHECK(finite == ref_finite, "%s finite flag %d vs %d", name, int(finite), int(ref_finite));
      if (ref_finite) CHECK(lo == ref_lo && hi == ref_hi, "%s min/max %g %g vs %g %g", name, lo, hi, ref_lo, ref_hi);
    }
  }
  return cases;
}

int main() {
  // A fresh seed each run (printed, so a failure can be replayed with SPARTAN_FUZZ_SEED).
  const char* env = std::getenv("SPARTAN_FUZZ_SEED");
  const unsigned seed = env ? unsigned(std::strtoul(env, nullptr, 10)) : std::random_device{}();
  std::printf("sanitize_test: seed %u\n", seed);
  std::mt19937 rng(seed);
  for (int i = 0; i < 300; ++i) run_case(rng, i % 2 == 0);
  for (int i = 0; i < 200; ++i) run_blocks(rng);
  for (int i = 0; i < 150; ++i) run_bsr(rng);
  for (int i = 0; i < 5; ++i) band_miss(rng);
  for (int i = 0; i < 100; ++i) spartan_grad(rng);
  for (int i = 0; i < 200; ++i) band_hints(rng);
  const int simd_cases = simd_loops(rng, {"AVX2", sigmoid_sums_avx2, mask_update_sums_avx2, finite_min_max_avx2}) +
                         simd_loops(rng, {"AVX-512", sigmoid_sums_avx512, mask_update_sums_avx512, finite_min_max_avx512});
  pool_stress(rng, 3000, true);
  // Concurrent callers share the pool; a resize in the middle must not run stale jobs.
  std::atomic<int> done{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&, t] {
      std::mt19937 r(seed + 777 + t);
      for (int i = 0; i < 40; ++i) {
        run_case(r, i % 2 == 0);
        run_bsr(r);
        pool_stress(r, 50);
      }
      done++;
    });
  for (int i = 0; i < 20; ++i) set_num_threads(1 + i % 4);
  for (auto& c : callers) c.join();
  set_num_threads(0);
  std::printf("sanitize_test: %d cases (and %d pool calls), %d failures\n",
              300 + 200 + 150 + 5 + 100 + 200 + simd_cases + 3 * 80, 3000 + 3 * 40 * 50, failures);
  std::printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
  return failures ? 1 : 0;
}
