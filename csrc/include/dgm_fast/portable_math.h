// Transcendental functions that round the same way on every device.
//
// glibc, SLEEF and CUDA's libdevice each compute expf/logf/sinf to within an ulp or two, but not
// to the SAME ulp, so a sample drawn by comparing a random word with sigmoid(x) would differ
// between CPU and GPU once in a few million draws. Everything here is built from IEEE-754
// operations that are correctly rounded everywhere (+, -, *, /, sqrt and the fused multiply-add
// a * b + c with one rounding) in a fixed order. The compiler never contracts a product and a sum
// into an FMA on its own (host code is built with -ffp-contract=off, device code uses the explicit
// _rn intrinsics); the FMAs are written out (fma_rn), so CPU and CUDA produce identical bits. On
// the CPU an fma_rn is one instruction in the AVX2 and AVX-512 loop variants and on aarch64, and
// libm's correctly rounded fmaf/fma (the same bits, slower) in the x86-64 baseline variant.
// Accuracy is within a few ulp; tests/test_bernoulli_logits.py and tests/test_normal_reparam.py
// check it against float64 torch.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "dgm_fast/philox.h"

namespace dgm_fast {
namespace pm {

// ---- correctly rounded primitives ------------------------------------------------------------

DGM_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DGM_HD double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
DGM_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DGM_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
DGM_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
DGM_HD double div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
DGM_HD float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
DGM_HD double sqrt_rn(double a) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
// a * b + c rounded once.
DGM_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}
DGM_HD double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return __builtin_fma(a, b, c);
#endif
}
template <typename T>
DGM_HD T sub(T a, T b) {
  return add(a, -b);
}

DGM_HD uint32_t bits_of(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof(u));
  return u;
}
DGM_HD uint64_t bits_of(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof(u));
  return u;
}
DGM_HD float float_from_bits(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof(x));
  return x;
}
DGM_HD double double_from_bits(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof(x));
  return x;
}

// 2^k as a normal number from k's two's complement bits; k must lie in the normal exponent range.
DGM_HD float pow2_bits(uint32_t k, float) { return float_from_bits((k + 127u) << 23); }
DGM_HD double pow2_bits(uint64_t k, double) { return double_from_bits((k + 1023u) << 52); }

// Horner's rule, highest coefficient first, one FMA per coefficient.
template <typename T, int N>
DGM_HD T horner(T x, const T (&c)[N]) {
  T acc = c[0];
#if defined(__CUDA_ARCH__)
#pragma unroll
#elif defined(__GNUC__) && !defined(__CUDACC__)
#pragma GCC unroll 32  // unrolled before vectorisation, so that the loops calling it vectorise
#endif
  for (int i = 1; i < N; ++i) acc = fma_rn(acc, x, c[i]);
  return acc;
}

// ---- per-precision constants and polynomials ---------------------------------------------------

template <typename T>
struct Consts;

template <>
struct Consts<float> {
  static constexpr float kLog2e = 1.44269504088896341f;
  // ln 2 split so that k * kLn2Hi is exact for every k an exp or log can produce.
  static constexpr float kLn2Hi = 6.93145751953125e-01f;
  static constexpr float kLn2Lo = 1.42860682030941723212e-06f;
  // exp clamps x to [-110, 100]: exp(-110) rounds to 0 and exp(100) overflows (the finite,
  // nonzero results lie in [-103.97, 88.72]), and 2^k's halves stay normal
  static constexpr float kExpClampLow = -110.0f;
  static constexpr float kExpClampHigh = 100.0f;
  // exp_normal_range's domain is [kExpNormalLow, 88]: k = round(x log2 e) in [-125, 127], so
  // that exp(r) 2^k, with exp(r) in [0.70, 1.42], is a normal number and 2^k too.
  static constexpr float kExpNormalLow = -86.0f;
  static constexpr float kRoundShifter = 12582912.0f;  // 1.5 * 2^23
  static constexpr float kSqrt2 = 1.41421353816986083984f;
  static constexpr float kHalfPi = 1.57079632679489661923f;
  static constexpr int kMantBits = 23;
  static constexpr int kExpBias = 127;
  static constexpr float kMinNormal = 1.17549435082228750797e-38f;
};

template <>
struct Consts<double> {
  static constexpr double kLog2e = 1.44269504088896338700e+00;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01;
  static constexpr double kLn2Lo = 1.90821492927058770002e-10;
  // the finite, nonzero results lie in [-745.13, 709.78]
  static constexpr double kExpClampLow = -760.0;
  static constexpr double kExpClampHigh = 720.0;
  static constexpr double kExpNormalLow = -707.0;  // the domain [-707, 709]: k in [-1021, 1023]
  static constexpr double kRoundShifter = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double kSqrt2 = 1.41421356237309514547e+00;
  static constexpr double kHalfPi = 1.57079632679489655800e+00;
  static constexpr int kMantBits = 52;
  static constexpr int kExpBias = 1023;
  static constexpr double kMinNormal = 2.22507385850720138309e-308;
};

// Round to the nearest integer (ties to even) for |a| < 2^22 (float) or 2^51 (double): adding
// and subtracting 1.5 * 2^mantissa (kRoundShifter) leaves the integer part. Unlike nearbyint it
// is inline, branch-free and vectorises.
template <typename T>
DGM_HD T round_small(T a) {
  return sub(add(a, Consts<T>::kRoundShifter), Consts<T>::kRoundShifter);
}

// exp(r) on |r| <= ln2/2 by its Taylor series: to r^7 in float (truncation < 6e-9 relative),
// to r^13 in double (< 5e-18).
DGM_HD float exp_poly(float r) {
  const float c[] = {1.f / 5040, 1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f};
  return horner(r, c);
}
DGM_HD double exp_poly(double r) {
  const double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                      1.0 / 3628800.0,    1.0 / 362880.0,    1.0 / 40320.0,
                      1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,
                      1.0 / 24.0,         1.0 / 6.0,         0.5,
                      1.0,                1.0};
  return horner(r, c);
}

// log(m) = f * P(f^2) with f = (m-1)/(m+1), |f| <= 0.1716: the atanh series 2/(2j+1).
DGM_HD float log_poly(float f2) {
  const float c[] = {2.f / 9, 2.f / 7, 2.f / 5, 2.f / 3, 2.f};
  return horner(f2, c);
}
DGM_HD double log_poly(double f2) {
  const double c[] = {2.0 / 21, 2.0 / 19, 2.0 / 17, 2.0 / 15, 2.0 / 13, 2.0 / 11,
                      2.0 / 9,  2.0 / 7,  2.0 / 5,  2.0 / 3,  2.0};
  return horner(f2, c);
}

// sin(a) = a * S(a^2) and cos(a) = C(a^2) on |a| <= pi/4, Taylor series.
DGM_HD float sin_poly(float a2) {
  const float c[] = {1.f / 362880, -1.f / 5040, 1.f / 120, -1.f / 6, 1.f};
  return horner(a2, c);
}
DGM_HD double sin_poly(double a2) {
  const double c[] = {1.0 / 355687428096000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0,
                      -1.0 / 39916800.0,       1.0 / 362880.0,         -1.0 / 5040.0,
                      1.0 / 120.0,             -1.0 / 6.0,             1.0};
  return horner(a2, c);
}
DGM_HD float cos_poly(float a2) {
  const float c[] = {-1.f / 3628800, 1.f / 40320, -1.f / 720, 1.f / 24, -0.5f, 1.f};
  return horner(a2, c);
}
DGM_HD double cos_poly(double a2) {
  const double c[] = {-1.0 / 6402373705728000.0, 1.0 / 20922789888000.0, -1.0 / 87178291200.0,
                      1.0 / 479001600.0,         -1.0 / 3628800.0,       1.0 / 40320.0,
                      -1.0 / 720.0,              1.0 / 24.0,             -0.5,
                      1.0};
  return horner(a2, c);
}

// ---- functions -----------------------------------------------------------------------------

// exp(x) = 2^k exp(r) with k = round(x log2 e) and |r| <= ln2/2: returns exp(r) and k's two's
// complement bits. k comes from one FMA that adds 1.5 * 2^mantissa, which leaves k in the low bits.
template <typename T, typename U = decltype(bits_of(T()))>
DGM_HD T exp_reduced(T x, U* k) {
  using C = Consts<T>;
  const T shifted = fma_rn(x, C::kLog2e, C::kRoundShifter);
  const T kf = sub(shifted, C::kRoundShifter);
  const T r = fma_rn(-kf, C::kLn2Lo, fma_rn(-kf, C::kLn2Hi, x));
  *k = bits_of(shifted) - bits_of(C::kRoundShifter);
  return exp_poly(r);
}

template <typename T>
DGM_HD T exp(T x) {
  using C = Consts<T>;
  using U = decltype(bits_of(x));
  // Branch-free, so that the CPU loops vectorise. x is clamped to a range a little wider than the
  // one with finite, nonzero results, where 2^k's two halves stay normal numbers: past the clamp
  // the arithmetic below overflows to inf or underflows to 0 by itself. NaN is selected at the
  // end (its integer k is garbage, but unsigned arithmetic on garbage is defined).
  T xc = x < C::kExpClampLow ? C::kExpClampLow : x;
  xc = xc > C::kExpClampHigh ? C::kExpClampHigh : xc;
  U k;
  const T p = exp_reduced(xc, &k);
  // Scale by 2^k in two exact steps so that results in the subnormal range round only once.
  const U k1 = static_cast<U>(static_cast<std::make_signed_t<U>>(k) >> 1);  // floor(k / 2)
  const T result = mul(mul(p, pow2_bits(k1, T())), pow2_bits(k - k1, T()));
  return (x == x) ? result : x;
}

// exp(x) for x in [kExpNormalLow, 88] (float) or [kExpNormalLow, 709] (double) only, where every
// result and 2^k itself are normal numbers: one scaling step is then exact, so these are exp(x)'s
// bits, at about four fifths of its cost (measured with AVX2). A loop may call it where it knows
// the range of its arguments (the IWAE tiles, by_logit_exp_range); the range is not checked here.
template <typename T>
DGM_HD T exp_normal_range(T x) {
  using U = decltype(bits_of(x));
  U k;
  const T p = exp_reduced(x, &k);
  return mul(p, pow2_bits(k, T()));
}

template <typename T>
DGM_HD T log(T x) {
  using C = Consts<T>;
  using U = decltype(bits_of(x));
  // Branch-free (the CPU loops vectorise): subnormals are scaled into the normal range, and the
  // special cases are selected at the end.
  const bool subnormal = x < C::kMinNormal;
  const T xs = subnormal ? mul(x, pow2_bits(static_cast<U>(C::kMantBits), T())) : x;
  const U bits = bits_of(xs);
  const U mant_mask = (U(1) << C::kMantBits) - 1;
  const U exp_field = (bits >> C::kMantBits) & ((U(1) << (8 * sizeof(T) - 1 - C::kMantBits)) - 1);
  int e = static_cast<int>(exp_field) - C::kExpBias - (subnormal ? C::kMantBits : 0);
  T m;
  {
    const U mb = (bits & mant_mask) | (U(C::kExpBias) << C::kMantBits);  // m in [1, 2)
    memcpy(&m, &mb, sizeof(m));
  }
  const bool above = m > C::kSqrt2;  // fold m into [sqrt(1/2), sqrt(2)]
  m = above ? mul(m, T(0.5)) : m;
  e = above ? e + 1 : e;
  const T f = div(sub(m, T(1)), add(m, T(1)));
  const T log_m = mul(f, log_poly(mul(f, f)));
  const T ef = static_cast<T>(e);
  T result = fma_rn(ef, C::kLn2Hi, fma_rn(ef, C::kLn2Lo, log_m));
  result = x == std::numeric_limits<T>::infinity() ? x : result;
  result = x == T(0) ? -std::numeric_limits<T>::infinity() : result;
  return (x > T(0) || x == T(0)) ? result : std::numeric_limits<T>::quiet_NaN();
}

// sin(2*pi*u) and cos(2*pi*u) for u in [0, 1).
template <typename T>
DGM_HD void sincos_2pi(T u, T* s, T* c) {
  using C = Consts<T>;
  const T t = mul(u, T(4));
  const T q = round_small(t);
  const T a = mul(sub(t, q), C::kHalfPi);  // |a| <= pi/4
  const T a2 = mul(a, a);
  const T sa = mul(a, sin_poly(a2));
  const T ca = cos_poly(a2);
  // Rotate by the quadrant q: (s, c) = (sa, ca), (ca, -sa), (-sa, -ca), (-ca, sa).
  const int quadrant = static_cast<int>(q) & 3;
  const bool swap = quadrant & 1;
  const T s0 = swap ? ca : sa;
  const T c0 = swap ? sa : ca;
  *s = (quadrant >= 2) ? -s0 : s0;
  *c = (quadrant == 1 || quadrant == 2) ? -c0 : c0;
}

// exp(x), by exp_normal_range where the caller knows x lies in its domain (kNormalRange): the
// same bits either way.
template <bool kNormalRange, typename T>
DGM_HD T exp_in(T x) {
  if constexpr (kNormalRange) {
    return exp_normal_range(x);
  } else {
    return exp(x);
  }
}

// Whether every |v[i]| <= kExpNormalLow's magnitude, so that exp(-|v[i]|) may take
// exp_normal_range (false for a NaN). Vectorises (an AND reduction).
template <typename T>
inline bool abs_within_exp_normal_range(const T* __restrict v, int64_t n) {
  constexpr T kMax = -Consts<T>::kExpNormalLow;
  int ok = 1;
  for (int64_t i = 0; i < n; ++i) ok &= (v[i] <= kMax) & (v[i] >= -kMax);
  return ok != 0;
}

// A CPU loop over logits written once for both exps: body(std::true_type{}) when every |v[i]|
// passes abs_within_exp_normal_range, body(std::false_type{}) otherwise; the body passes
// decltype(normal)::value on as kNormalRange. The same bits either way.
template <typename T, typename Body>
inline auto by_logit_exp_range(const T* v, int64_t n, Body&& body) {
  return abs_within_exp_normal_range(v, n) ? body(std::true_type{}) : body(std::false_type{});
}

// The logistic function from one exp(-|x|), which cannot overflow.
template <bool kNormalRange = false, typename T>
DGM_HD T sigmoid(T x) {
  const T e = exp_in<kNormalRange>(x >= T(0) ? -x : x);
  const T denom = add(T(1), e);
  return div(x >= T(0) ? T(1) : e, denom);
}

// A Bernoulli(p) decision from one 32-bit word w: 1 iff w + 1/2 <= p * 2^32, i.e. w is below
// p * 2^32 rounded half up. P(1) equals p to within 2^-33; p = 0 and p = 1 are exact. Both sides
// are exact in double, so this is a comparison of real numbers, the same on every device.
// (p must not be NaN.)
DGM_HD bool bernoulli_from_word(float p, uint32_t word) {
  return static_cast<double>(word) + 0.5 <= static_cast<double>(p) * 4294967296.0;
}
DGM_HD bool bernoulli_from_word(double p, uint32_t word) {
  return static_cast<double>(word) + 0.5 <= mul(p, 4294967296.0);
}

// Uniform variates: (0, 1] for the logarithm of Box-Muller, [0, 1) for the angle.
DGM_HD float uniform_open0(uint32_t w, float) {
  return mul(add(static_cast<float>(w), 1.0f), 2.3283064365386963e-10f);  // * 2^-32
}
DGM_HD float uniform_open1(uint32_t w, float) {
  return mul(static_cast<float>(w >> 8), 5.9604644775390625e-08f);  // 24 bits * 2^-24
}
DGM_HD double uniform_open0(uint32_t hi, uint32_t lo, double) {
  const uint64_t k = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;  // 53 bits
  return mul(static_cast<double>(k + 1), 1.1102230246251565e-16);   // * 2^-53
}
DGM_HD double uniform_open1(uint32_t hi, uint32_t lo, double) {
  const uint64_t k = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return mul(static_cast<double>(k), 1.1102230246251565e-16);
}

// Box-Muller: two standard normals from two uniforms.
template <typename T>
DGM_HD void box_muller(T u_open0, T u_open1, T* z0, T* z1) {
  const T r = sqrt_rn(mul(T(-2), log(u_open0)));
  T s, c;
  sincos_2pi(u_open1, &s, &c);
  *z0 = mul(r, c);
  *z1 = mul(r, s);
}

}  // namespace pm
}  // namespace dgm_fast
