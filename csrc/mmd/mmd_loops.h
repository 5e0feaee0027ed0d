// The loops of the MMD tiles: one table of function pointers per instruction-set variant
// (csrc/common/cpu_loops.h), the variant chosen once at run time. Every operation in them is
// IEEE-exact, so all variants give bit-identical results; they differ only in speed.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

struct MmdLoops {
  // Sums of RBF kernels over n_bw bandwidths:
  //   out[i] = sum_s scale[s] * exp(coef[s] * d2[i])
  void (*rbf_sum_f32)(const float* d2, float* out, int64_t n, const float* coef, const float* scale,
                      int64_t n_bw);
  void (*rbf_sum_f64)(const double* d2, double* out, int64_t n, const double* coef,
                      const double* scale, int64_t n_bw);
  //   w[i] = sum_s inv_s2[s] * exp(coef[s] * d2[i]); returns sum_i sum_s exp(coef[s] * d2[i])
  //   (in double, lanes in a fixed order), from the same exponentials
  double (*rbf_pair_f32)(const float* d2, float* w, int64_t n, const float* coef,
                         const float* inv_s2, int64_t n_bw);
  double (*rbf_pair_f64)(const double* d2, double* w, int64_t n, const double* coef,
                         const double* inv_s2, int64_t n_bw);
};

DGM_FAST_DECLARE_LOOPS(MmdLoops, mmd_loops)

}  // namespace dgm_fast
