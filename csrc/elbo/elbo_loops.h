// The element-wise loops of the ELBO and IWAE kernels: one table of function pointers per instruction-set variant
// (csrc/common/cpu_loops.h), the variant chosen once at run time. Every operation in them is
// IEEE-exact, so all variants give bit-identical results; they differ only in speed.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

struct ElboLoops {
  // out[i] = softplus(l[i]) - x[i] * l[i], the Bernoulli negative log-likelihood from a logit
  void (*bernoulli_nll_f32)(const float* x, const float* l, float* out, int64_t len);
  void (*bernoulli_nll_f64)(const double* x, const double* l, double* out, int64_t len);
  // nll[i] as bernoulli_nll and grad[i] = sigmoid(l[i]) - x[i], from one exp per element
  void (*bernoulli_nll_and_grad_f32)(const float* x, const float* l, float* nll, float* grad, int64_t len);
  void (*bernoulli_nll_and_grad_f64)(const double* x, const double* l, double* nll, double* grad,
                                     int64_t len);
  // out[i] = g * (sigmoid(l[i]) - x[i]), its gradient with respect to the logit, times g
  void (*bernoulli_nll_grad_f32)(const float* x, const float* l, float g, float* out, int64_t len);
  void (*bernoulli_nll_grad_f64)(const double* x, const double* l, double g, double* out, int64_t len);
  // Log-sum-exp pieces (iwae_bound), over one row of n columns:
  //   m[j] = max(m[j], row[j]), NaN propagating
  void (*max_into_f32)(const float* row, float* m, int64_t n);
  void (*max_into_f64)(const double* row, double* m, int64_t n);
  //   s[j] += exp(row[j] - m[j]), or (row[j] == m[j]) where m[j] is infinite
  void (*exp_sum_into_f32)(const float* row, const float* m, float* s, int64_t n);
  void (*exp_sum_into_f64)(const double* row, const double* m, double* s, int64_t n);
  //   out[j] = g[j] * exp(row[j] - lse[j]), 0 where lse[j] is -inf (softmax times a gradient)
  void (*softmax_grad_f32)(const float* row, const float* lse, const float* g, float* out, int64_t n);
  void (*softmax_grad_f64)(const double* row, const double* lse, const double* g, double* out,
                           int64_t n);
};

DGM_FAST_DECLARE_LOOPS(ElboLoops, elbo_loops)

}  // namespace dgm_fast
