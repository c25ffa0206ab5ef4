// Shared pieces of the CUDA kernels: error conversion, the tile plan that maps a
// segmented call onto one grid, a per-call device workspace, device float keys.
#pragma once
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <vector>

#include "spartan/block_ops.h"
#include "spartan/segments.h"
#include "spartan/status.h"

namespace spartan {
namespace cuda {

constexpr int kThreads = 256;      // threads per block in every streaming kernel
constexpr int kPerThread = 16;     // elements per thread per tile (independent loads in flight)
constexpr long long kTile = kThreads * kPerThread;
constexpr unsigned long long kNoError = ULLONG_MAX;

inline Status cuda_status(cudaError_t e) {
  Status s;
  if (e == cudaSuccess) return s;
  s.code = Code::kCuda;
  s.cuda_error = int(e);
  cudaGetLastError();  // clear a sticky launch error so the next call starts clean
  return s;
}

#define SPARTAN_CUDA_TRY(expr)                         \
  do {                                                 \
    cudaError_t e_ = (expr);                           \
    if (e_ != cudaSuccess) return cuda_status(e_);     \
  } while (0)
#define SPARTAN_LAUNCH_CHECK() SPARTAN_CUDA_TRY(cudaGetLastError())

// One tensor of a segmented call as the kernels see it.
struct DevSeg {
  const float* a;      // values (forward, top-k) or mask (backward)
  const float* b;      // grad (backward)
  const float* c;      // per-entry costs, or null
  void* out;
  double uniform;      // cost of every entry when c is null
  long long n;
  long long first_tile;
  long long base;      // position of element 0 in the concatenation of all segments
  int group;
};

// Tiles: kTile consecutive elements of one segment. Segments of a group are
// consecutive, so a group's tiles are one range [tile_begin, tile_end).
struct TilePlan {
  std::vector<DevSeg> segs;
  std::vector<int> tile_seg;
  std::vector<long long> group_tile_begin, group_tile_end, group_n;
  long long num_tiles = 0;
};

template <class GroupT, class SegLen>
void plan_tiles(const GroupT* groups, size_t num_groups, size_t num_segs, SegLen seg_len, TilePlan& p) {
  p.segs.assign(num_segs, DevSeg{});
  p.tile_seg.clear();
  p.group_tile_begin.assign(num_groups, 0);
  p.group_tile_end.assign(num_groups, 0);
  p.group_n.assign(num_groups, 0);
  long long base = 0;
  for (size_t g = 0; g < num_groups; ++g) {
    p.group_tile_begin[g] = (long long)p.tile_seg.size();
    for (size_t s = groups[g].first; s < groups[g].first + groups[g].count; ++s) {
      DevSeg& d = p.segs[s];
      d.n = (long long)seg_len(s);
      d.group = int(g);
      d.first_tile = (long long)p.tile_seg.size();
      d.base = base;
      base += d.n;
      p.group_n[g] += d.n;
      for (long long t = 0; t < d.n; t += kTile) p.tile_seg.push_back(int(s));
    }
    p.group_tile_end[g] = (long long)p.tile_seg.size();
  }
  p.num_tiles = (long long)p.tile_seg.size();
}

// Finds the segment and index of a concatenated position (the first bad element).
inline void locate(const TilePlan& p, unsigned long long pos, size_t* seg, size_t* index) {
  for (size_t s = 0; s < p.segs.size(); ++s)
    if ((long long)pos >= p.segs[s].base && (long long)pos < p.segs[s].base + p.segs[s].n) {
      *seg = s;
      *index = size_t((long long)pos - p.segs[s].base);
      return;
    }
  *seg = 0;
  *index = 0;
}

// One device allocation per call, carved into aligned pieces; the host-side
// descriptors are staged in one buffer and uploaded with one copy.
class Workspace {
 public:
  ~Workspace() { if (base_) cudaFreeAsync(base_, 0); }
  // Reserves `bytes` (256-aligned); returns its offset.
  size_t reserve(size_t bytes) {
    size_t off = size_;
    size_ += (bytes + 255) & ~size_t(255);
    return off;
  }
  // Reserves and stages host data to upload.
  template <class T>
  size_t stage(const std::vector<T>& v) {
    size_t off = reserve(v.size() * sizeof(T) + 1);
    size_t need = off + v.size() * sizeof(T);
    if (host_.size() < need) host_.resize(need);
    if (!v.empty()) memcpy(host_.data() + off, v.data(), v.size() * sizeof(T));
    return off;
  }
  // Allocates, zeroes, and uploads the staged part.
  Status commit() {
    SPARTAN_CUDA_TRY(cudaMallocAsync(reinterpret_cast<void**>(&base_), size_ ? size_ : 256, 0));
    SPARTAN_CUDA_TRY(cudaMemsetAsync(base_, 0, size_, 0));
    if (!host_.empty()) SPARTAN_CUDA_TRY(cudaMemcpyAsync(base_, host_.data(), host_.size(), cudaMemcpyHostToDevice, 0));
    return Status::Ok();
  }
  template <class T>
  T* at(size_t off) const { return reinterpret_cast<T*>(base_ + off); }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
  std::vector<char> host_;
};

// Blocks for a grid-stride loop over `tiles` tiles: enough to fill the device.
inline int grid_for(long long tiles) {
  static int sms = [] {
    int dev = 0, n = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) n = 80;
    return n;
  }();
  long long cap = (long long)sms * 8;
  return int(tiles < 1 ? 1 : (tiles < cap ? tiles : cap));
}

__device__ inline uint32_t dev_float_key(float f) {
  if (f == 0.0f) f = 0.0f;
  uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__host__ __device__ inline float dev_key_to_float(uint32_t k) {
  uint32_t b = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float f;
  memcpy(&f, &b, 4);
  return f;
#endif
}

// The CPU's tile kernels scan a matrix by (block row, block column, row in tile, column in
// tile); keying a bad element in that order makes the smallest key (atomicMin) the error
// the CPU reports. `tile` = block row * block columns + block column.
__device__ inline unsigned long long tile_order_key(long long tile, long long r, long long j, long long b0, long long b1) {
  return (unsigned long long)((tile * b0 + r) * b1 + j);
}
// ... and back to the element's row-major index.
inline size_t tile_order_index(unsigned long long key, const BlockShape& s) {
  const unsigned long long j = key % s.b1, r = (key / s.b1) % s.b0, tile = key / (s.b1 * s.b0);
  return size_t((tile / s.block_cols() * s.b0 + r) * s.cols + (tile % s.block_cols()) * s.b1 + j);
}

// After a tile kernel: reads its error flag (a tile-order key, kNoError when clean) and, when
// set, the bad element of `data` for the message: the NaN/Inf error the CPU would report.
inline Status tile_order_error(const unsigned long long* d_bad, const BlockShape& s, const float* data, Arg arg) {
  unsigned long long bad = kNoError;
  SPARTAN_CUDA_TRY(cudaMemcpy(&bad, d_bad, sizeof bad, cudaMemcpyDeviceToHost));
  if (bad == kNoError) return Status::Ok();
  const size_t i = tile_order_index(bad, s);
  float v = 0;
  SPARTAN_CUDA_TRY(cudaMemcpy(&v, data + i, 4, cudaMemcpyDeviceToHost));
  return {Code::kNonFinite, arg, 0, i, double(v), 0};
}

// Reduction operators for cub block reductions (fmin/fmax: NaN-free inputs here).
struct MinOp {
  __device__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct MaxOp {
  __device__ double operator()(double a, double b) const { return fmax(a, b); }
};

__device__ inline bool dev_finite(float x) { return isfinite(x); }

// The first element of a tile handled by this thread at step j: coalesced across the warp.
__device__ inline long long tile_index(long long tile_start, int j) { return tile_start + (long long)j * kThreads + threadIdx.x; }

}  // namespace cuda
}  // namespace spartan
