// Built when CUDA is off: the addon reports why CUDA is unavailable, and every
// device call fails with kCuda (cuda_error = -1) instead of touching memory.
#include "spartan/bsr_cuda.h"
#include "spartan/cuda_info.h"
#include "spartan/cuda_memory.h"
#include "spartan/cuda_ops.h"

namespace spartan {

CudaInfo cuda_info() {
  CudaInfo info;
  info.reason = "not compiled: the addon was built without CUDA (nvcc not found or SPARTAN_CUDA=off)";
  return info;
}

namespace cuda {
namespace {
Status not_compiled() {
  Status s;
  s.code = Code::kCuda;
  s.cuda_error = -1;
  return s;
}
}  // namespace

Status malloc_device(size_t, void** out) { *out = nullptr; return not_compiled(); }
void free_device(void*) {}
Status copy_to_device(void*, const void*, size_t) { return not_compiled(); }
Status copy_to_host(void*, const void*, size_t) { return not_compiled(); }
Status copy_on_device(void*, const void*, size_t) { return not_compiled(); }
Status synchronize() { return not_compiled(); }
const char* error_name(int) { return "not compiled"; }
const char* error_string(int) { return "the addon was built without CUDA"; }

Status soft_topk_forward(const SoftTopKSegment*, size_t, const SoftTopKGroup*, size_t, SoftTopKResult*) { return not_compiled(); }
Status soft_topk_backward(const SoftTopKBackwardSegment*, size_t, const SoftTopKBackwardGroup*, size_t) { return not_compiled(); }
Status topk_mask(const TopKSegment*, size_t, const TopKGroup*, size_t, TopKResult*) { return not_compiled(); }
Status block_scores(const float*, const BlockShape&, float*) { return not_compiled(); }
Status expand_block_mask(const float*, const BlockShape&, float*) { return not_compiled(); }
Status expand_block_mask(const uint8_t*, const BlockShape&, uint8_t*) { return not_compiled(); }
Status apply_mask(const float*, const MaskView&, const uint8_t*, const BlockShape&, float*) { return not_compiled(); }
Status mask_upstream(const float*, const float*, const BlockShape&, float*) { return not_compiled(); }
Status spartan_param_grad(const float*, const float*, const float*, const float*, const BlockShape&, float*) { return not_compiled(); }
Status count_changes(const uint8_t*, const uint8_t*, size_t, size_t*) { return not_compiled(); }
Status sum_squares(const float*, size_t, double*, Arg) { return not_compiled(); }
Status sgd_step(float*, const float*, float*, size_t, const SgdConfig&) { return not_compiled(); }
Status adamw_step(float*, const float*, float*, float*, size_t, const AdamWConfig&) { return not_compiled(); }
Status bsr_matmul(const BsrView&, const int32_t*, const void*, size_t, const BsrEpilogue&, float*, void*) { return not_compiled(); }
Status bsr_linear(const BsrView&, const int32_t*, const void*, size_t, const BsrEpilogue&, float*, void*) { return not_compiled(); }
Status bsr_product(bool, const BsrView&, const int32_t*, const float*, size_t, const BsrEpilogue&, float*) { return not_compiled(); }

}  // namespace cuda
}  // namespace spartan
