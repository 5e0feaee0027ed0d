// The loops of the GAN losses: one table of function pointers per instruction-set variant
// (csrc/common/cpu_loops.h), the variant chosen once at run time. Every operation in them is
// IEEE-exact, so all variants give bit-identical results; they differ only in speed.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

struct GanLoops {
  // sums[0] += sum log1p(exp(-|v|)), sums[1] += sum max(v, 0),
  // sums[2] += sum max(-v, 0), accumulated in double in a fixed order (same bits on every variant)
  void (*softplus_parts_f32)(const float* v, int64_t n, double sums[3]);
  void (*softplus_parts_f64)(const double* v, int64_t n, double sums[3]);
  //   out[i] = a * sigmoid(v[i]) + b * sigmoid(-v[i]), both from one exp(-|v[i]|)
  void (*sigmoid_pair_f32)(const float* v, float* out, int64_t n, float a, float b);
  void (*sigmoid_pair_f64)(const double* v, double* out, int64_t n, double a, double b);
};

DGM_FAST_DECLARE_LOOPS(GanLoops, gan_loops)

}  // namespace dgm_fast
