// Status codes returned by the kernel library. Kernels never throw across this
// boundary; the binding turns a Status into a typed JS error.
#pragma once
#include <cstddef>
#include <cstdint>

namespace spartan {

enum class Code : int {
  kOk = 0,
  kNonFinite,      // NaN or +-Inf in an input array
  kBadCost,        // a cost <= 0 (or non-finite)
  kBudgetRange,    // k negative, NaN, or above the total cost of its group
  kBetaRange,      // beta <= 0 or non-finite
  kMaskRange,      // a mask entry outside [0, 1]
  kAlias,          // an output overlaps an input it must not overlap
  kShape,          // a size or block size the kernel does not support (value: the size)
  kBadIndex,       // a malformed index array (BSR row_ptr / col_idx): index, value, limit
  kInternal,       // a bug: an invariant did not hold
  kCuda,           // a CUDA runtime call failed (cuda_error holds the cudaError_t)
  kTileOverflow,   // a tile's sum of finite |theta| is beyond float32 (index: the tile, value: the sum)
};

// Which argument a Status is about, so the binding can name it.
enum class Arg : int { kNone = 0, kValues, kCosts, kMask, kGrad, kTheta, kHard, kOut, kRowPtr, kColIdx, kX, kBias, kBlock, kDtype, kGradW };

struct Status {
  Code code = Code::kOk;
  Arg arg = Arg::kNone;
  size_t segment = 0;  // which segment (tensor) of a segmented call
  size_t index = 0;    // element index inside that segment
  double value = 0.0;  // the offending value (or the budget and total cost for kBudgetRange)
  double limit = 0.0;
  int cuda_error = 0;  // kCuda: the cudaError_t value (-1: built without CUDA)

  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return Status{}; }
};

}  // namespace spartan
