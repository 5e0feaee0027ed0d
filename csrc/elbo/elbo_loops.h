// The element-wise loops of the ELBO and IWAE kernels: one table of function pointers per instruction-set variant
// (csrc/common/cpu_loops.h), the variant chosen once at run time. Every operation in them is
// correctly rounded (FMAs written out), so all variants give bit-identical results; they differ
// only in speed. The sums add their terms in kLanes lanes in a fixed order.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

// KL(N(mu, exp(lv)) || N(0, 1)) of one latent from e = exp(lv), 0.5 (mu^2 + e - 1 - lv), and
// its derivative in lv, 0.5 (e - 1): the kernels' and the loops' one formula.
template <typename T>
inline T gaussian_kl_from_exp(T mu, T lv, T e) {
  return T(0.5) * (mu * mu + e - T(1) - lv);
}
template <typename T>
inline T gaussian_kl_dlv_from_exp(T e) {
  return T(0.5) * (e - T(1));
}

struct ElboLoops {
  // out[i] = softplus(l[i]) - x[i] * l[i], the Bernoulli negative log-likelihood from a logit
  void (*bernoulli_nll_f32)(const float* x, const float* l, float* out, int64_t len);
  void (*bernoulli_nll_f64)(const double* x, const double* l, double* out, int64_t len);
  // nll[i] as bernoulli_nll and grad[i] = g * (sigmoid(l[i]) - x[i]), from one exp per element
  // (grad with bernoulli_nll_grad's bits)
  void (*bernoulli_nll_and_grad_f32)(const float* x, const float* l, float g, float* nll, float* grad,
                                     int64_t len);
  void (*bernoulli_nll_and_grad_f64)(const double* x, const double* l, double g, double* nll, double* grad,
                                     int64_t len);
  // out[i] = g * (sigmoid(l[i]) - x[i]), its gradient with respect to the logit, times g
  void (*bernoulli_nll_grad_f32)(const float* x, const float* l, float g, float* out, int64_t len);
  void (*bernoulli_nll_grad_f64)(const double* x, const double* l, double g, double* out, int64_t len);
  // sum_i (x[i] - r[i])^2, a unit-variance Gaussian's squared error; the _and_grad form also
  // writes d[i] = g * (r[i] - x[i]), g times its half-derivative with respect to the mean r
  // (scaled_error's bits)
  float (*sq_error_sum_f32)(const float* x, const float* r, int64_t len);
  double (*sq_error_sum_f64)(const double* x, const double* r, int64_t len);
  float (*sq_error_sum_and_grad_f32)(const float* x, const float* r, float g, float* d, int64_t len);
  double (*sq_error_sum_and_grad_f64)(const double* x, const double* r, double g, double* d, int64_t len);
  // out[i] = g * (r[i] - x[i])
  void (*scaled_error_f32)(const float* x, const float* r, float g, float* out, int64_t len);
  void (*scaled_error_f64)(const double* x, const double* r, double g, double* out, int64_t len);
  // sum_i 0.5 (mu^2 + exp(lv) - 1 - lv), KL(N(mu, exp(lv)) || N(0, 1)) over the latents; the
  // _and_grad form also writes kl_grad's g_mu and g_lv, g_lv from the same exp
  float (*kl_sum_f32)(const float* mu, const float* lv, int64_t len);
  double (*kl_sum_f64)(const double* mu, const double* lv, int64_t len);
  float (*kl_sum_and_grad_f32)(const float* mu, const float* lv, float g, float* g_mu, float* g_lv, int64_t len);
  double (*kl_sum_and_grad_f64)(const double* mu, const double* lv, double g, double* g_mu, double* g_lv,
                                int64_t len);
  // g_mu[i] = g * mu[i], g_lv[i] = g * 0.5 (exp(lv[i]) - 1)
  void (*kl_grad_f32)(const float* mu, const float* lv, float g, float* g_mu, float* g_lv, int64_t len);
  void (*kl_grad_f64)(const double* mu, const double* lv, double g, double* g_mu, double* g_lv, int64_t len);
  // Log-sum-exp pieces (iwae_bound), over one row of n columns:
  //   m[j] = max(m[j], row[j]), NaN propagating
  void (*max_into_f32)(const float* row, float* m, int64_t n);
  void (*max_into_f64)(const double* row, double* m, int64_t n);
  //   hi[j] = max(hi[j], row[j]) and lo[j] = min(lo[j], row[j]), NaN propagating
  void (*extrema_into_f32)(const float* row, float* hi, float* lo, int64_t n);
  void (*extrema_into_f64)(const double* row, double* hi, double* lo, int64_t n);
  //   s[j] += exp(row[j] - m[j]), or (row[j] == m[j]) where m[j] is infinite; normal_range: the
  //   caller knows every row[j] - m[j] lies in [kExpNormalLow, 0] (the same values, faster)
  void (*exp_sum_into_f32)(const float* row, const float* m, float* s, int64_t n, bool normal_range);
  void (*exp_sum_into_f64)(const double* row, const double* m, double* s, int64_t n, bool normal_range);
  //   out[j] = g[j] * exp(row[j] - lse[j]), 0 where lse[j] is -inf (softmax times a gradient)
  void (*softmax_grad_f32)(const float* row, const float* lse, const float* g, float* out, int64_t n);
  void (*softmax_grad_f64)(const double* row, const double* lse, const double* g, double* out,
                           int64_t n);
  //   exp_sum_into's terms, also stored: e[j] = the term added to s[j]
  void (*exp_store_sum_into_f32)(const float* row, const float* m, float* e, float* s, int64_t n,
                                 bool normal_range);
  void (*exp_store_sum_into_f64)(const double* row, const double* m, double* e, double* s, int64_t n,
                                 bool normal_range);
  //   v[j] *= c[j]
  void (*scale_by_f32)(float* v, const float* c, int64_t n);
  void (*scale_by_f64)(double* v, const double* c, int64_t n);
};

DGM_FAST_DECLARE_LOOPS(ElboLoops, elbo_loops)

}  // namespace dgm_fast
