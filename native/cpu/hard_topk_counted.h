// The hard top-k fast path for groups whose entries all cost the same whole number
// (element masks, or block masks of one block shape): two vectorised passes around a
// sampled band instead of radix levels.
#pragma once
#include "spartan/hard_topk.h"

namespace spartan {

// True when topk_mask_counted can take these groups: every group's segments share one
// integral cost, count times cost is exact in a double, and indices fit in 32 bits.
bool topk_counted_applies(const TopKSegment* segs, size_t num_segs, const TopKGroup* groups, size_t num_groups);

// How many values the band is sampled from for a group of n (a test aims at the positions
// j * n / s, j < s, to make the band miss).
size_t topk_sample_size(size_t n);

// Same contract and results as topk_mask (arguments already checked by it). Returns false,
// having written nothing, when it declines (the sampled band missed, or a sampled value is
// not finite): the radix path then runs. Otherwise *status is the call's outcome.
bool topk_mask_counted(const TopKSegment* segs, size_t num_segs, const TopKGroup* groups, size_t num_groups,
                       TopKResult* results, Status* status);

}  // namespace spartan
