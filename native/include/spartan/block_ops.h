// Block (tile) operations on a row-major rows x cols matrix cut into b0 x b1 tiles.
// The caller guarantees rows % b0 == 0 and cols % b1 == 0.
#pragma once
#include "spartan/status.h"

namespace spartan {

struct BlockShape {
  size_t rows = 0, cols = 0, b0 = 1, b1 = 1;
  size_t block_rows() const { return rows / b0; }
  size_t block_cols() const { return cols / b1; }
  size_t num_blocks() const { return block_rows() * block_cols(); }
  size_t size() const { return rows * cols; }
};

// scores[i][j] = sum of |theta| over tile (i, j), float64 accumulation.
// theta is validated (finite) before `scores` is touched.
Status block_scores(const float* theta, const BlockShape& shape, float* scores);

// out[r][c] = mask[r / b0][c / b1]. out must not overlap the mask (kAlias: it would read
// entries it has already written).
template <class T>
Status expand_block_mask(const T* block_mask, const BlockShape& shape, T* out);

// A mask for apply_mask: float (soft) or uint8 (hard), per element or per block.
struct MaskView {
  const float* soft = nullptr;
  const uint8_t* hard_only = nullptr;  // when the mask itself is a uint8 mask
  bool per_block = false;
};

// out = theta * mask (* hard), with block masks broadcast over their tiles.
// Validates theta (finite) and the mask (finite, in [0, 1]) before writing.
// out may alias theta.
Status apply_mask(const float* theta, const MaskView& mask, const uint8_t* hard,
                  const BlockShape& shape, float* out);

}  // namespace spartan
