// Per-element bodies of the samplers, shared verbatim by the CPU loops (csrc/samplers) and the CUDA
// kernels (cuda/), so that both compute the same function of (seed, offset, element index).
#pragma once

#include <cstdint>

#include "dgm_fast/philox.h"
#include "dgm_fast/portable_math.h"

namespace dgm_fast {

// Standard normals from one Philox block: element i of a call uses block i / kNormalsPerBlock.
// float: four words -> two Box-Muller pairs (32-bit uniforms, tails to 6.66 sigma).
// double: four words -> one pair of 53-bit uniforms (tails to 8.57 sigma).
template <typename acc_t>
struct NormalsPerBlock;
template <>
struct NormalsPerBlock<float> {
  static constexpr int value = 4;
};
template <>
struct NormalsPerBlock<double> {
  static constexpr int value = 2;
};

DGM_HD void normals_from_block(const Words4& r, float (&z)[4]) {
  pm::box_muller(pm::uniform_open0(r.w[0], 0.f), pm::uniform_open1(r.w[1], 0.f), &z[0], &z[1]);
  pm::box_muller(pm::uniform_open0(r.w[2], 0.f), pm::uniform_open1(r.w[3], 0.f), &z[2], &z[3]);
}
DGM_HD void normals_from_block(const Words4& r, double (&z)[2]) {
  pm::box_muller(pm::uniform_open0(r.w[0], r.w[1], 0.0), pm::uniform_open1(r.w[2], r.w[3], 0.0),
                 &z[0], &z[1]);
}

// The sample (0 or 1) for probability p and one random word. A NaN probability gives a NaN
// sample: the CUDA path cannot raise without a device synchronisation, so it propagates; the CPU
// path counts NaNs and raises.
template <typename acc_t>
DGM_HD acc_t bernoulli_sample(acc_t p, uint32_t word) {
  const bool is_nan = !(p == p);
  const acc_t drawn = pm::bernoulli_from_word(is_nan ? acc_t(0) : p, word) ? acc_t(1) : acc_t(0);
  return is_nan ? p : drawn;
}

// z = mu + exp(log_var / 2) * eps, rounded identically everywhere.
template <typename acc_t>
DGM_HD acc_t reparam(acc_t mu, acc_t log_var, acc_t eps) {
  return pm::add(mu, pm::mul(pm::exp(pm::mul(log_var, acc_t(0.5))), eps));
}

// log(1 + e) for e in [0, 1], accurate for tiny e: with f = e / (2 + e) in [0, 1/3] (formed
// from e itself, so no rounding of 1 + e loses the bits of a tiny e),
//   log(1 + e) = 2 atanh(f) = f * (2 + 2 f^2 / 3 + 2 f^4 / 5 + ...),
// the series cut where its terms fall below the precision (f^2 <= 1/9): one division and a
// polynomial, where a general log would need its range reduction and a correction of 1 + e.
DGM_HD float log1p_unit_series(float f2) {
  const float c[] = {2.f / 15, 2.f / 13, 2.f / 11, 2.f / 9, 2.f / 7, 2.f / 5, 2.f / 3, 2.f};
  return pm::horner(f2, c);
}
DGM_HD double log1p_unit_series(double f2) {
  const double c[] = {2.0 / 33, 2.0 / 31, 2.0 / 29, 2.0 / 27, 2.0 / 25, 2.0 / 23, 2.0 / 21, 2.0 / 19,
                      2.0 / 17, 2.0 / 15, 2.0 / 13, 2.0 / 11, 2.0 / 9,  2.0 / 7,  2.0 / 5,  2.0 / 3,
                      2.0};
  return pm::horner(f2, c);
}
template <typename T>
DGM_HD T log1p_unit(T e) {
  const T f = pm::div(e, pm::add(T(2), e));
  return pm::mul(f, log1p_unit_series(pm::mul(f, f)));
}

// -log Bernoulli(x | sigmoid(l)) = softplus(l) - x l = max(l, 0) - x l + log(1 + exp(-|l|)),
// finite for every logit (no clamping) and branch-free. kNormalRange: the caller knows
// |l| <= -kExpNormalLow (pm::abs_within_exp_normal_range), and exp(-|l|) takes the cheaper path
// to the same bits.
template <bool kNormalRange = false, typename T>
DGM_HD T bernoulli_nll_from_logit(T x, T l) {
  const T a = l < T(0) ? -l : l;
  return pm::add(pm::sub(l > T(0) ? l : T(0), pm::mul(x, l)), log1p_unit(pm::exp_in<kNormalRange>(-a)));
}

// Both at once, from the one exp(-|l|) they share: nll as bernoulli_nll_from_logit, and its
// derivative in the logit, sigmoid(l) - x, with pm::sigmoid's arithmetic (the same bits as each
// computed alone).
template <bool kNormalRange = false, typename T>
DGM_HD void bernoulli_nll_and_grad(T x, T l, T* nll, T* grad) {
  const T a = l < T(0) ? -l : l;
  const T e = pm::exp_in<kNormalRange>(-a);
  *nll = pm::add(pm::sub(l > T(0) ? l : T(0), pm::mul(x, l)), log1p_unit(e));
  *grad = pm::sub(pm::div(l >= T(0) ? T(1) : e, pm::add(T(1), e)), x);
}

// A Bernoulli layer's draw and its negative log-probability from one exp(-|l|): the sample with
// bernoulli_sample(pm::sigmoid(l), word)'s arithmetic (the same bits as bernoulli_logits), and
// -log Bernoulli(sample | sigmoid(l)) = softplus(-l) if the sample is 1, softplus(l) if it is 0,
// written as max(+-l, 0) + log(1 + exp(-|l|)): equal to bernoulli_nll_from_logit(sample, l) for
// every finite l, and 0 rather than inf - inf for a saturated l = +-inf.
template <bool kNormalRange = false, typename T>
DGM_HD void bernoulli_sample_and_nll(T l, uint32_t word, T* sample, T* nll) {
  const T e = pm::exp_in<kNormalRange>(l >= T(0) ? -l : l);
  const T p = pm::div(l >= T(0) ? T(1) : e, pm::add(T(1), e));
  const T s = bernoulli_sample(p, word);
  const T signed_l = s == T(1) ? -l : l;
  *sample = s;
  *nll = pm::add(signed_l > T(0) ? signed_l : T(0), log1p_unit(e));
}

}  // namespace dgm_fast
