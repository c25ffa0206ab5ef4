// CUDA kernel benchmarks of the soft top-k forward (cold and warm), backward, hard
// top-k mask and block score + apply, against the device's measured device-to-device
// copy bandwidth. Times are CUDA events around the kernel library's entry points
// (which include their few host synchronisations), median of many runs after
// warm-up, rotating among input sets larger than L2.
//
// Build (repository root): see scripts/gpu-run.sh, or
//   nvcc -O3 -std=c++17 --expt-relaxed-constexpr -arch=sm_90 -Inative/include benchmarks/gpu/kernels_bench.cu \
//        native/cuda/{memory,soft_topk_forward,soft_topk_backward,hard_topk,block_ops}.cu \
//        native/cpu/{thread_pool,hard_topk}.cpp -o kernels_bench
//   ./kernels_bench [--quick] > kernels.json
// Output: one JSON document (device, copy bandwidth, rows) on stdout; a table on stderr.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "spartan/cuda_ops.h"

using namespace spartan;

#define CHECK(x)                                                                          \
  do {                                                                                    \
    cudaError_t e = (x);                                                                  \
    if (e != cudaSuccess) {                                                               \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e));   \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)
#define CHECK_STATUS(s)                                                      \
  do {                                                                       \
    Status st_ = (s);                                                        \
    if (!st_.ok()) {                                                         \
      fprintf(stderr, "%s:%d status %d\n", __FILE__, __LINE__, int(st_.code)); \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

template <class F>
static double median_ms(F f, int warmup, int reps) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) f(i);
  std::vector<float> ts;
  for (int i = 0; i < reps; ++i) {
    CHECK(cudaEventRecord(a));
    f(i);
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    ts.push_back(ms);
  }
  std::sort(ts.begin(), ts.end());
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  return ts[ts.size() / 2];
}

// Bytes read + written per second by a large device-to-device copy.
static double copy_gbs() {
  const size_t bytes = size_t(1) << 30;
  void *x, *y;
  CHECK(cudaMalloc(&x, bytes));
  CHECK(cudaMalloc(&y, bytes));
  CHECK(cudaMemset(x, 1, bytes));
  double ms = median_ms([&](int) { CHECK(cudaMemcpy(y, x, bytes, cudaMemcpyDeviceToDevice)); }, 3, 20);
  CHECK(cudaFree(x));
  CHECK(cudaFree(y));
  return 2.0 * bytes / (ms * 1e6);
}

static std::vector<size_t> resnet50_segments() {
  std::vector<size_t> s = {64 * 3 * 7 * 7};
  size_t in = 64;
  const size_t blocks[4] = {3, 4, 6, 3}, widths[4] = {64, 128, 256, 512};
  for (int l = 0; l < 4; ++l)
    for (size_t b = 0; b < blocks[l]; ++b) {
      size_t w = widths[l];
      s.push_back(w * in);
      s.push_back(w * w * 9);
      s.push_back(w * 4 * w);
      if (b == 0) s.push_back(w * 4 * in);
      in = w * 4;
    }
  s.push_back(1000 * 2048);
  return s;
}

struct Sets {  // rotating input sets, together larger than L2
  std::vector<float*> values, grads, outs;
  std::vector<uint8_t*> hard;
};

static Sets make_sets(size_t n, int count, std::mt19937& rng) {
  Sets s;
  std::normal_distribution<float> nd;
  std::vector<float> h(n);
  for (int i = 0; i < count; ++i) {
    float *v, *g, *o;
    uint8_t* m;
    CHECK(cudaMalloc(&v, n * 4));
    CHECK(cudaMalloc(&g, n * 4));
    CHECK(cudaMalloc(&o, n * 4));
    CHECK(cudaMalloc(&m, n));
    for (auto& x : h) x = std::fabs(nd(rng));
    CHECK(cudaMemcpy(v, h.data(), n * 4, cudaMemcpyHostToDevice));
    for (auto& x : h) x = nd(rng);
    CHECK(cudaMemcpy(g, h.data(), n * 4, cudaMemcpyHostToDevice));
    s.values.push_back(v);
    s.grads.push_back(g);
    s.outs.push_back(o);
    s.hard.push_back(m);
  }
  return s;
}

static void free_sets(Sets& s) {
  for (size_t i = 0; i < s.values.size(); ++i) {
    cudaFree(s.values[i]);
    cudaFree(s.grads[i]);
    cudaFree(s.outs[i]);
    cudaFree(s.hard[i]);
  }
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && !strcmp(argv[1], "--quick");
  int dev = 0;
  cudaDeviceProp prop;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
    fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  const double bw = copy_gbs();
  fprintf(stderr, "%s: device-to-device copy %.0f GB/s (read + write)\n", prop.name, bw);
  printf("{\"device\":\"%s\",\"computeCapability\":\"%d.%d\",\"l2Bytes\":%d,\"copyGBs\":%.1f,\"rows\":[", prop.name, prop.major,
         prop.minor, prop.l2CacheSize, bw);
  std::mt19937 rng(1);
  std::vector<std::pair<std::string, std::vector<size_t>>> cases;
  for (int lg = 20; lg <= (quick ? 22 : 26); ++lg) cases.push_back({"flat", {size_t(1) << lg}});
  cases.push_back({"resnet50-flat", {25502912}});
  cases.push_back({"resnet50-layers", resnet50_segments()});
  bool first = true;
  fprintf(stderr, "%-16s %10s %-18s %10s %8s %8s\n", "case", "n", "op", "ms", "GB/s", "floor x");
  for (auto& c : cases) {
    size_t n = 0;
    for (size_t s : c.second) n += s;
    const size_t n_all = n;
    const int sets = int(std::max<size_t>(2, (4 * size_t(prop.l2CacheSize)) / (n * 4) + 1));
    Sets in = make_sets(n, std::min(sets, 64), rng);
    const int nsets = int(in.values.size());
    const double k = 0.1 * double(n);
    auto segs_of = [&](int i, bool backward, std::vector<SoftTopKSegment>& f, std::vector<SoftTopKBackwardSegment>& b,
                       std::vector<TopKSegment>& t) {
      size_t off = 0;
      f.clear(); b.clear(); t.clear();
      for (size_t s : c.second) {
        f.push_back({in.values[i] + off, s, Costs{}, in.outs[i] + off});
        b.push_back({in.outs[i] + off, in.grads[i] + off, s, Costs{}, in.grads[i] + off});
        t.push_back({in.values[i] + off, s, Costs{}, in.hard[i] + off});
        off += s;
      }
      (void)backward;
    };
    std::vector<SoftTopKSegment> fs;
    std::vector<SoftTopKBackwardSegment> bs;
    std::vector<TopKSegment> ts;
    SoftTopKGroup g;
    g.first = 0;
    g.k = k;
    g.beta = 10;
    std::vector<double> lambdas(nsets, 0.0);
    int passes_cold = 0, passes_warm = 0;
    auto emit = [&](const char* op, double ms, double bytes, double floor_bytes, int passes, size_t n_op = 0) {
      const double gbs = bytes / (ms * 1e6), floor_ms = floor_bytes / (bw * 1e6);
      const size_t n = n_op ? n_op : n_all;
      fprintf(stderr, "%-16s %10zu %-18s %10.3f %8.0f %8.2f\n", c.first.c_str(), n, op, ms, gbs, ms / floor_ms);
      printf("%s{\"case\":\"%s\",\"segments\":%zu,\"n\":%zu,\"op\":\"%s\",\"ms\":%.5f,\"bytes\":%.0f,\"gbs\":%.1f,\"floorBytes\":%.0f,"
             "\"overFloor\":%.3f,\"passes\":%d}",
             first ? "" : ",", c.first.c_str(), c.second.size(), n, op, ms, bytes, gbs, floor_bytes, ms / floor_ms, passes);
      first = false;
    };
    g.count = c.second.size();
    const int reps = n > (size_t(1) << 24) ? 21 : 51;
    // Forward, cold: the histogram start (no warm lambda).
    double ms = median_ms([&](int i) {
      segs_of(i % nsets, false, fs, bs, ts);
      SoftTopKGroup gg = g;
      SoftTopKResult r;
      CHECK_STATUS(cuda::soft_topk_forward(fs.data(), fs.size(), &gg, 1, &r));
      lambdas[i % nsets] = r.lambda;
      passes_cold = r.passes;
    }, 3, reps);
    // "reads": time over one read of the values at copy bandwidth
    emit("forward-cold", ms, double(n) * 8, double(n) * 8, passes_cold);
    ms = median_ms([&](int i) {
      segs_of(i % nsets, false, fs, bs, ts);
      SoftTopKGroup gg = g;
      gg.warm = true;
      gg.warm_lambda = lambdas[i % nsets];
      SoftTopKResult r;
      CHECK_STATUS(cuda::soft_topk_forward(fs.data(), fs.size(), &gg, 1, &r));
      passes_warm = r.passes;
    }, 3, reps);
    emit("forward-warm", ms, double(n) * 8, double(n) * 8, passes_warm);
    ms = median_ms([&](int i) {
      segs_of(i % nsets, true, fs, bs, ts);
      SoftTopKBackwardGroup bg;
      bg.first = 0;
      bg.count = bs.size();
      bg.beta = 10;
      CHECK_STATUS(cuda::soft_topk_backward(bs.data(), bs.size(), &bg, 1));
    }, 3, reps);
    emit("backward", ms, double(n) * 12, double(n) * 12, 0);
    ms = median_ms([&](int i) {
      segs_of(i % nsets, false, fs, bs, ts);
      TopKGroup tg;
      tg.first = 0;
      tg.count = ts.size();
      tg.k = std::floor(k);
      TopKResult r;
      CHECK_STATUS(cuda::topk_mask(ts.data(), ts.size(), &tg, 1, &r));
    }, 3, reps);
    emit("hard-mask", ms, double(n) * 5, double(n) * 5, 0);
    if (c.second.size() == 1 && n >= 32 * 1024) {
      // 1024 rows of 32x32 tiles: the largest such matrix within n values
      BlockShape shape;
      shape.rows = 1024;
      shape.cols = n / (32 * 1024) * 32;
      const size_t nb = shape.size();
      shape.b0 = shape.b1 = 32;
      float* scores;
      CHECK(cudaMalloc(&scores, shape.num_blocks() * 4));
      ms = median_ms([&](int i) {
        CHECK_STATUS(cuda::block_scores(in.values[i % nsets], shape, scores));
        MaskView mv;
        mv.hard_only = in.hard[i % nsets];
        mv.per_block = true;
        CHECK_STATUS(cuda::apply_mask(in.values[i % nsets], mv, nullptr, shape, in.outs[i % nsets]));
      }, 3, reps);
      emit("block32-score+apply", ms, double(nb) * 12, double(nb) * 12, 0, nb);
      cudaFree(scores);
    }
    free_sets(in);
  }
  printf("]}\n");
  return 0;
}
