// Built when CUDA is off: the BSR device entry points fail with kCuda (cuda_error =
// -1, "built without CUDA") instead of touching memory. bsr_row_order is plain host
// code and works either way.
#include <algorithm>
#include <numeric>
#include <vector>

#include "spartan/bsr_cuda.h"

namespace spartan {
namespace cuda {
namespace {
Status not_compiled() {
  Status s;
  s.code = Code::kCuda;
  s.cuda_error = -1;
  return s;
}
}  // namespace

void bsr_row_order(const int32_t* row_ptr, size_t num_block_rows, int32_t* perm) {
  std::vector<int32_t> order(num_block_rows);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t i, int32_t j) {
    return row_ptr[i + 1] - row_ptr[i] > row_ptr[j + 1] - row_ptr[j];
  });
  std::copy(order.begin(), order.end(), perm);
}

Status bsr_matmul(const BsrView&, const int32_t*, const void*, size_t, const BsrEpilogue&, float*, void*) { return not_compiled(); }
Status bsr_linear(const BsrView&, const int32_t*, const void*, size_t, const BsrEpilogue&, float*, void*) { return not_compiled(); }
Status bsr_product(bool, const BsrView&, const int32_t*, const float*, size_t, const BsrEpilogue&, float*) { return not_compiled(); }

}  // namespace cuda
}  // namespace spartan
