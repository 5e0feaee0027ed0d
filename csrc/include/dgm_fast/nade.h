// The NADE recurrence's arithmetic, shared verbatim by the CPU loops (csrc/nade) and the CUDA
// kernels (cuda/nade), so that both compute the same bits: the log-probabilities, the logits and
// the samples of the Philox contract are a function of the inputs and (seed, offset) only.
//
// NADE (Larochelle & Murray 2011) with D visible and H hidden units, parameters
//   b [D] visible biases, c [H] hidden biases, W [D, H] input weights, V [D, H] output weights,
// and an ordering o (a permutation of 0..D-1), runs along the positions i = 0..D-1, d = o[i]:
//   a_0 = c;  h_i = sigmoid(a_i);  logit_d = b_d + V[d] . h_i;  a_{i+1} = a_i + x_d W[d].
// p(x_d = 1 | x before d in the ordering) = sigmoid(logit_d).
//
// V[d] . h_i is a sum over the hidden units in one fixed order: lane l (l = 0..15) adds the
// terms j = l, l + 16, l + 32, ... with one rounding each (fma), in increasing j, and the 16
// lanes are then added in order 0..15. The CPU loops keep the lanes in vector registers; on CUDA
// lane l of a half-warp computes its own chain.
#pragma once

#include <cstdint>

#include "dgm_fast/philox.h"
#include "dgm_fast/portable_math.h"

namespace dgm_fast {

constexpr int kNadeLanes = 16;

// The 16 lane sums of V[d] . h, added in lane order.
template <typename T>
DGM_HD T nade_add_lanes(const T (&lanes)[kNadeLanes]) {
  T total = lanes[0];
  for (int l = 1; l < kNadeLanes; ++l) total = pm::add(total, lanes[l]);
  return total;
}

// Word `row * D + i` of a sampling call draws x_{o[i]} of sample `row`: the call's words in the
// order the samples' units are drawn.
DGM_HD uint32_t nade_sample_word(uint64_t seed, uint64_t offset, int64_t row, int64_t i, int64_t D) {
  const uint64_t word = static_cast<uint64_t>(row) * static_cast<uint64_t>(D) + static_cast<uint64_t>(i);
  return philox_block(seed, offset, word / 4).w[word % 4];
}

}  // namespace dgm_fast
