// The element-wise loops of the Bernoulli layer ops: one table of function pointers per
// instruction-set variant (csrc/common/cpu_loops.h), the variant chosen once at run time. Every
// operation in them is IEEE-exact, so all variants give bit-identical results.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

struct BernoulliLoops {
  // sample[i] ~ Bernoulli(sigmoid(l[i])) from words[i], exactly as bernoulli_logits draws it,
  // and nll[i] = -log Bernoulli(sample[i] | sigmoid(l[i])), both from one exp(-|l[i]|).
  // Returns the number of NaN logits.
  int64_t (*sample_nll_f32)(const float* l, const uint32_t* words, float* sample, float* nll, int64_t len);
  int64_t (*sample_nll_f64)(const double* l, const uint32_t* words, double* sample, double* nll,
                            int64_t len);
};

DGM_FAST_DECLARE_LOOPS(BernoulliLoops, bernoulli_loops)

}  // namespace dgm_fast
