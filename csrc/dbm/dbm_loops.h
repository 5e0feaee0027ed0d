// The loops of the DBM ops: one table of function pointers per instruction-set variant
// (csrc/common/cpu_loops.h), the variant chosen once at run time. Every operation in them is
// IEEE-exact, so all variants give bit-identical results; they differ only in speed.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

struct DbmLoops {
  // One even layer of DBM AIS at one temperature, rows [begin, end) of x ([rows, n], the layer's
  // input from the odd states, bias included) with the base model's biases a ([n]):
  //   log_w[r] += sum_j softplus(beta x_rj + (1 - beta) a_j) - softplus(previous x_rj + (1 - previous) a_j),
  // the terms in double (from x and a converted exactly), summed over j in kLanes lanes; and,
  // unless logits is null, the layer's logits at beta, as ATen computes x * beta + a * (1 - beta)
  // in T (both factors rounded to T first):
  //   logits[r, j] = T(x_rj * T(beta)) + T(a_j * T(1 - beta)).
  void (*ais_even_f32)(const float* x, const float* a, int64_t begin, int64_t end, int64_t n,
                       double beta, double previous, float* logits, double* log_w);
  void (*ais_even_f64)(const double* x, const double* a, int64_t begin, int64_t end, int64_t n,
                       double beta, double previous, double* logits, double* log_w);
};

DGM_FAST_DECLARE_LOOPS(DbmLoops, dbm_loops)

}  // namespace dgm_fast
