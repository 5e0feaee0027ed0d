// The element-wise loops of the CPU samplers: one table of function pointers per instruction-set variant
// (csrc/common/cpu_loops.h), the variant chosen once at run time. Every operation in them is
// IEEE-exact, so all variants give bit-identical results; they differ only in speed.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

struct SamplerLoops {
  // words[j] = word (4 * first_block + j) of the Philox stream (seed, offset), j < count.
  void (*philox_fill)(uint64_t seed, uint64_t offset, uint64_t first_block, int64_t count,
                      uint32_t* words);
  void (*sigmoid_f32)(float* values, int64_t len);  // in place
  void (*sigmoid_f64)(double* values, int64_t len);
  // sample[i] in {0, 1} from probs[i] and words[i]; returns the number of NaN probabilities.
  int64_t (*bernoulli_f32)(const float* probs, const uint32_t* words, float* sample, int64_t len);
  int64_t (*bernoulli_f64)(const double* probs, const uint32_t* words, double* sample, int64_t len);
  // The standard normals of n_blocks whole Philox blocks whose words are given.
  void (*normals_f32)(const uint32_t* words, int64_t n_blocks, float* normals);
  void (*normals_f64)(const uint32_t* words, int64_t n_blocks, double* normals);
  // z[i] = mu[i] + exp(log_var[i] / 2) * eps[i]
  void (*reparam_f32)(const float* mu, const float* log_var, const float* eps, float* z, int64_t len);
  void (*reparam_f64)(const double* mu, const double* log_var, const double* eps, double* z,
                      int64_t len);
};

DGM_FAST_DECLARE_LOOPS(SamplerLoops, samplers_loops)

}  // namespace dgm_fast
