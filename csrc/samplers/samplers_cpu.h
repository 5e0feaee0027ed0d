// The CPU samplers' loops on raw memory, for native code that samples many times in one call
// (rbm_train_epoch_'s CPU kernel) without a tensor and a dispatch per draw. Same loops as the
// ops, so the same bits for the same (seed, offset).
#pragma once

#include <cstdint>

#include <c10/util/Exception.h>

#include "common/philox_cpu_state.h"

namespace dgm_fast {

// bernoulli_logits on n contiguous elements: sample[i] ~ Bernoulli(sigmoid(logits[i] + bias[i %
// width])) with word i of the Philox stream `so` (bias may be null; probs, if not null, gets the
// probabilities). Parallel over chunks like the op. Returns the number of NaN probabilities.
template <typename scalar_t>
int64_t bernoulli_logits_into(const PhiloxSeedOffset& so, const scalar_t* logits, const scalar_t* bias,
                              int64_t width, scalar_t* sample, scalar_t* probs, int64_t n);

// bernoulli_logits' error for NaN probabilities (`nans` of the n, from bernoulli_logits_into).
inline void check_no_nan_logits(int64_t nans, int64_t n, bool has_bias) {
  TORCH_CHECK_VALUE(nans == 0, "bernoulli_logits: ", nans, " of ", n, " logits",
                    (has_bias ? " (after adding bias)" : ""), " are NaN; a Bernoulli probability cannot be NaN");
}

}  // namespace dgm_fast
