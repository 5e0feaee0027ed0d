// The element-wise loops of the CPU samplers and of the losses' kernels, compiled
// once per instruction set (baseline x86-64,
// AVX2, AVX-512; see sampler_loops.inc) and chosen once at run time. Every operation in them is
// IEEE-exact, so all variants give bit-identical results; they differ only in speed.
// DGM_FAST_CPU_ISA=default|avx2|avx512 forces a variant (the tests use it to check identity).
#pragma once

#include <cstdint>

namespace dgm_fast {

struct SamplerLoops {
  const char* isa;
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
  // GAN losses (losses/gan.cpp): sums[0] += sum log1p(exp(-|v|)), sums[1] += sum max(v, 0),
  // sums[2] += sum max(-v, 0), accumulated in double in a fixed order (same bits on every variant)
  void (*softplus_parts_f32)(const float* v, int64_t n, double sums[3]);
  void (*softplus_parts_f64)(const double* v, int64_t n, double sums[3]);
  //   out[i] = a * sigmoid(v[i]) + b * sigmoid(-v[i]), both from one exp(-|v[i]|)
  void (*sigmoid_pair_f32)(const float* v, float* out, int64_t n, float a, float b);
  void (*sigmoid_pair_f64)(const double* v, double* out, int64_t n, double a, double b);
  // MMD tiles (losses/mmd.cpp), sums of RBF kernels over n_bw bandwidths:
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

// The variant for this CPU (or the one DGM_FAST_CPU_ISA names).
const SamplerLoops& sampler_loops();

// One table per compiled variant; null where the variant was not compiled.
const SamplerLoops* sampler_loops_default();
const SamplerLoops* sampler_loops_avx2();
const SamplerLoops* sampler_loops_avx512();

}  // namespace dgm_fast
