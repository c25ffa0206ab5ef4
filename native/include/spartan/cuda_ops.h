// The CUDA kernels: the same contracts as the CPU ops (soft_topk.h, hard_topk.h,
// block_ops.h), with every data pointer in device memory. Inputs are validated on
// the device before any output is written; a rejected call changes nothing.
// Calls return once the result is complete (they synchronize the default stream).
#pragma once
#include "spartan/block_ops.h"
#include "spartan/hard_topk.h"
#include "spartan/soft_topk.h"
#include "spartan/sparse_update.h"

namespace spartan {
namespace cuda {

Status soft_topk_forward(const SoftTopKSegment* segments, size_t num_segments, const SoftTopKGroup* groups,
                         size_t num_groups, SoftTopKResult* results);
Status soft_topk_backward(const SoftTopKBackwardSegment* segments, size_t num_segments,
                          const SoftTopKBackwardGroup* groups, size_t num_groups);
Status topk_mask(const TopKSegment* segments, size_t num_segments, const TopKGroup* groups, size_t num_groups,
                 TopKResult* results);
Status block_scores(const float* theta, const BlockShape& shape, float* scores);
Status expand_block_mask(const float* block_mask, const BlockShape& shape, float* out);
Status expand_block_mask(const uint8_t* block_mask, const BlockShape& shape, uint8_t* out);
Status apply_mask(const float* theta, const MaskView& mask, const uint8_t* hard, const BlockShape& shape, float* out);
Status mask_upstream(const float* grad_w, const float* theta, const BlockShape& shape, float* g);
Status spartan_param_grad(const float* grad_w, const float* theta, const float* mask, const float* vjp,
                          const BlockShape& shape, float* out);
Status count_changes(const uint8_t* a, const uint8_t* b, size_t n, size_t* result);
Status sum_squares(const float* x, size_t n, double* result, Arg arg);
Status sgd_step(float* theta, const float* grad, float* momentum_buf, size_t n, const SgdConfig& cfg);
Status adamw_step(float* theta, const float* grad, float* m, float* v, size_t n, const AdamWConfig& cfg);

}  // namespace cuda
}  // namespace spartan
