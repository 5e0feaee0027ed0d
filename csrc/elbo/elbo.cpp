// VAE losses: the negative ELBO of a diagonal-Gaussian VAE and the importance-weighted (IWAE)
// bound. The schemas of their ops are declared here (a TORCH_LIBRARY_FRAGMENT), with the argument
// checks and the CPU kernels. CUDA kernels are in cuda/elbo/elbo.cu, fake kernels and autograd
// formulas in python/dgm_fast/ops/elbo.py, the plain-PyTorch definitions in
// python/dgm_fast/reference/elbo.py.
//
// Every value is computed in float32 for float32, bfloat16 and float16 inputs (float64 for
// float64) and rounded to the input dtype once, at the end.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "dgm_fast/samplers.h"
#include "common/checks.h"
#include "common/sum8.h"
#include "elbo/elbo_checks.h"
#include "elbo/elbo_loops.h"

namespace dgm_fast {

// ---- argument checks (also used by cuda/elbo/elbo.cu) ------------------------------------------

// likelihood: "bernoulli" (recon holds logits) or "gaussian" (recon holds the mean, unit variance).
bool elbo_is_bernoulli(std::string_view likelihood, const char* op) {
  TORCH_CHECK_VALUE(likelihood == "bernoulli" || likelihood == "gaussian", op,
                    ": likelihood must be \"bernoulli\" or \"gaussian\", got \"",
                    std::string(likelihood), "\"");
  return likelihood == "bernoulli";
}

// x, recon: [B, D]; mu, log_var: [B, Z]; all of one floating dtype and one device.
void check_gaussian_elbo_args(const at::Tensor& x, const at::Tensor& recon, const at::Tensor& mu,
                              const at::Tensor& log_var, const char* op) {
  check_float_dtype(x, op, "x");
  check_same_device(x, recon, op, "x", "recon");
  check_same_device(x, mu, op, "x", "mu");
  check_same_device(x, log_var, op, "x", "log_var");
  const std::pair<const at::Tensor*, const char*> others[] = {
      {&recon, "recon"}, {&mu, "mu"}, {&log_var, "log_var"}};
  for (const auto& [t, name] : others) {
    TORCH_CHECK_TYPE(t->scalar_type() == x.scalar_type(), op, ": ", name, " has dtype ",
                     t->scalar_type(), " but x has dtype ", x.scalar_type(),
                     "; pass all four tensors in one dtype");
  }
  TORCH_CHECK_VALUE(x.dim() == 2, op, ": x must have shape [batch, features], got ", x.sizes());
  TORCH_CHECK_VALUE(recon.sizes() == x.sizes(), op, ": recon must have the shape of x ",
                    x.sizes(), ", got ", recon.sizes());
  TORCH_CHECK_VALUE(mu.dim() == 2 && mu.size(0) == x.size(0), op,
                    ": mu must have shape [batch, latents] with batch = ", x.size(0),
                    " (the first dimension of x), got ", mu.sizes());
  TORCH_CHECK_VALUE(log_var.sizes() == mu.sizes(), op, ": log_var must have the shape of mu ",
                    mu.sizes(), ", got ", log_var.sizes());
}

// grad: [B], the incoming gradient of the per-example values.
void check_gaussian_elbo_backward_args(const at::Tensor& grad, const at::Tensor& x,
                                       const at::Tensor& recon, const at::Tensor& mu,
                                       const at::Tensor& log_var) {
  constexpr const char* op = "gaussian_elbo_backward";
  check_gaussian_elbo_args(x, recon, mu, log_var, op);
  check_same_device(x, grad, op, "x", "grad");
  TORCH_CHECK_TYPE(grad.scalar_type() == x.scalar_type(), op, ": grad has dtype ",
                   grad.scalar_type(), " but x has dtype ", x.scalar_type());
  TORCH_CHECK_VALUE(grad.dim() == 1 && grad.size(0) == x.size(0), op,
                    ": grad must have shape [", x.size(0), "], got ", grad.sizes());
}

// log_weights: [K, B] with K >= 1.
void check_iwae_bound_args(const at::Tensor& log_weights, const char* op) {
  check_float_dtype(log_weights, op, "log_weights");
  TORCH_CHECK_VALUE(log_weights.dim() == 2, op,
                    ": log_weights must have shape [samples, batch], got ", log_weights.sizes());
  TORCH_CHECK_VALUE(log_weights.size(0) >= 1, op,
                    ": log_weights needs at least one sample (its first dimension is 0)");
}

// grad, bound: [B]; log_weights: [K, B].
void check_iwae_bound_backward_args(const at::Tensor& grad, const at::Tensor& log_weights,
                                    const at::Tensor& bound) {
  constexpr const char* op = "iwae_bound_backward";
  check_iwae_bound_args(log_weights, op);
  check_same_device(log_weights, grad, op, "log_weights", "grad");
  check_same_device(log_weights, bound, op, "log_weights", "bound");
  const std::pair<const at::Tensor*, const char*> others[] = {{&grad, "grad"}, {&bound, "bound"}};
  for (const auto& [t, name] : others) {
    TORCH_CHECK_TYPE(t->scalar_type() == log_weights.scalar_type(), op, ": ", name,
                     " has dtype ", t->scalar_type(), " but log_weights has dtype ",
                     log_weights.scalar_type());
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == log_weights.size(1), op, ": ", name,
                      " must have shape [", log_weights.size(1), "], got ", t->sizes());
  }
}

namespace {

constexpr int64_t kRowGrain = 16;      // rows per parallel task
constexpr int64_t kColumnChunk = 256;  // iwae: columns handled together (contiguous in memory)

// ---- element formulas --------------------------------------------------------------------------

// The formulas use dgm_fast's inline, branch-free exp/log (portable_math.h) rather than libm
// calls, so that the element loops vectorise.

template <typename T>
inline T bernoulli_nll(T x, T l) {
  return dgm_fast::bernoulli_nll_from_logit(x, l);
}

template <typename T>
inline T stable_sigmoid(T l) {
  return dgm_fast::pm::sigmoid(l);
}

// ---- gaussian_elbo -----------------------------------------------------------------------------

// The float32 or float64 entry of one of elbo_loops()' pairs (name_f32, name_f64), by type.
template <typename T, typename F32, typename F64>
constexpr auto by_type(F32 f32, F64 f64) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  if constexpr (std::is_same_v<T, float>) {
    return f32;
  } else {
    return f64;
  }
}
#define ELBO_LOOP(T, name) by_type<T>(elbo_loops().name##_f32, elbo_loops().name##_f64)

// Rows [row_begin, row_end) of the per-example values; with grad_recon, grad_mu and grad_log_var
// (float32 and float64 only), also scale times their derivatives with respect to recon, mu and
// log_var, from the same pass (gaussian_elbo_with_grad).
template <typename scalar_t>
void elbo_forward_rows(const scalar_t* x, const scalar_t* recon, const scalar_t* mu,
                       const scalar_t* log_var, scalar_t* out, int64_t D, int64_t Z,
                       bool bernoulli, int64_t row_begin, int64_t row_end,
                       scalar_t* grad_recon = nullptr, scalar_t* grad_mu = nullptr,
                       scalar_t* grad_log_var = nullptr, scalar_t scale = 1) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kNative = std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>;
  const acc_t half_log_2pi = acc_t(0.91893853320467274178);
  for (int64_t b = row_begin; b < row_end; ++b) {
    const scalar_t* xb = x + b * D;
    const scalar_t* rb = recon + b * D;
    scalar_t* grb = grad_recon ? grad_recon + b * D : nullptr;
    scalar_t* gmb = grad_mu ? grad_mu + b * Z : nullptr;
    scalar_t* glb = grad_log_var ? grad_log_var + b * Z : nullptr;
    acc_t nll = 0, kl = 0;
    if constexpr (kNative) {
      if (bernoulli) {
        constexpr int64_t kBlock = 512;
        scalar_t values[kBlock];
        for (int64_t d0 = 0; d0 < D; d0 += kBlock) {
          const int64_t n = std::min(kBlock, D - d0);
          if (grb) {
            ELBO_LOOP(scalar_t, bernoulli_nll_and_grad)(xb + d0, rb + d0, scale, values, grb + d0, n);
          } else {
            ELBO_LOOP(scalar_t, bernoulli_nll)(xb + d0, rb + d0, values, n);
          }
          nll += sum8(values, n);
        }
      } else {
        const scalar_t sq = grb ? ELBO_LOOP(scalar_t, sq_error_sum_and_grad)(xb, rb, scale, grb, D)
                                : ELBO_LOOP(scalar_t, sq_error_sum)(xb, rb, D);
        nll = acc_t(0.5) * sq + half_log_2pi * acc_t(D);
      }
      kl = glb ? ELBO_LOOP(scalar_t, kl_sum_and_grad)(mu + b * Z, log_var + b * Z, scale, gmb, glb, Z)
               : ELBO_LOOP(scalar_t, kl_sum)(mu + b * Z, log_var + b * Z, Z);
    } else {  // reduced precision, in float32
      if (bernoulli) {
        constexpr int64_t kBlock = 512;
        acc_t values[kBlock];
        for (int64_t d0 = 0; d0 < D; d0 += kBlock) {
          const int64_t n = std::min(kBlock, D - d0);
          for (int64_t d = 0; d < n; ++d)
            values[d] = bernoulli_nll(static_cast<acc_t>(xb[d0 + d]), static_cast<acc_t>(rb[d0 + d]));
          nll += sum8(values, n);
        }
      } else {
        for (int64_t d = 0; d < D; ++d) {
          const acc_t diff = static_cast<acc_t>(xb[d]) - static_cast<acc_t>(rb[d]);
          nll += diff * diff;
        }
        nll = acc_t(0.5) * nll + half_log_2pi * acc_t(D);
      }
      for (int64_t z = b * Z; z < (b + 1) * Z; ++z)
        kl += gaussian_kl_from_exp(static_cast<acc_t>(mu[z]), static_cast<acc_t>(log_var[z]),
                                   dgm_fast::pm::exp(static_cast<acc_t>(log_var[z])));
    }
    out[b] = static_cast<scalar_t>(nll + kl);
  }
}

template <typename scalar_t>
void elbo_backward_rows(const scalar_t* grad, const scalar_t* x, const scalar_t* recon,
                        const scalar_t* mu, const scalar_t* log_var, scalar_t* grad_recon,
                        scalar_t* grad_mu, scalar_t* grad_log_var, int64_t D, int64_t Z,
                        bool bernoulli, int64_t row_begin, int64_t row_end) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t b = row_begin; b < row_end; ++b) {
    const acc_t g = static_cast<acc_t>(grad[b]);
    const int64_t o = b * D, oz = b * Z;
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
      if (bernoulli) {  // d/dl = sigmoid(l) - x
        ELBO_LOOP(scalar_t, bernoulli_nll_grad)(x + o, recon + o, g, grad_recon + o, D);
      } else {  // d/dr = r - x
        ELBO_LOOP(scalar_t, scaled_error)(x + o, recon + o, g, grad_recon + o, D);
      }
      ELBO_LOOP(scalar_t, kl_grad)(mu + oz, log_var + oz, g, grad_mu + oz, grad_log_var + oz, Z);
    } else {  // reduced precision, in float32
      for (int64_t d = 0; d < D; ++d) {
        const acc_t r = static_cast<acc_t>(recon[o + d]), xd = static_cast<acc_t>(x[o + d]);
        grad_recon[o + d] = static_cast<scalar_t>(g * ((bernoulli ? stable_sigmoid(r) : r) - xd));
      }
      for (int64_t z = oz; z < oz + Z; ++z) {
        grad_mu[z] = static_cast<scalar_t>(g * static_cast<acc_t>(mu[z]));
        grad_log_var[z] = static_cast<scalar_t>(
            g * gaussian_kl_dlv_from_exp(dgm_fast::pm::exp(static_cast<acc_t>(log_var[z]))));
      }
    }
  }
}

at::Tensor gaussian_elbo_cpu(const at::Tensor& x,        // [B, D] data (targets)
                             const at::Tensor& recon,    // [B, D] logits or means
                             const at::Tensor& mu,       // [B, Z] posterior means
                             const at::Tensor& log_var,  // [B, Z] posterior log-variances
                             c10::string_view likelihood) {
  constexpr const char* op = "gaussian_elbo";
  check_gaussian_elbo_args(x, recon, mu, log_var, op);
  const bool bernoulli = elbo_is_bernoulli(likelihood, op);
  const at::Tensor xc = x.contiguous(), rc = recon.contiguous();
  const at::Tensor mc = mu.contiguous(), lc = log_var.contiguous();
  const int64_t B = x.size(0), D = x.size(1), Z = mu.size(1);
  at::Tensor out = at::empty({B}, x.options());  // [B] negative ELBO per example
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "gaussian_elbo_cpu", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const scalar_t* rp = rc.const_data_ptr<scalar_t>();
    const scalar_t* mp = mc.const_data_ptr<scalar_t>();
    const scalar_t* lp = lc.const_data_ptr<scalar_t>();
    scalar_t* op_ = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B, kRowGrain, [&](int64_t begin, int64_t end) {
      elbo_forward_rows(xp, rp, mp, lp, op_, D, Z, bernoulli, begin, end);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_elbo_backward_cpu(
    const at::Tensor& grad,     // [B] incoming gradient of the per-example values
    const at::Tensor& x,        // [B, D]
    const at::Tensor& recon,    // [B, D]
    const at::Tensor& mu,       // [B, Z]
    const at::Tensor& log_var,  // [B, Z]
    c10::string_view likelihood) {
  check_gaussian_elbo_backward_args(grad, x, recon, mu, log_var);
  const bool bernoulli = elbo_is_bernoulli(likelihood, "gaussian_elbo_backward");
  const at::Tensor gc = grad.contiguous(), xc = x.contiguous(), rc = recon.contiguous();
  const at::Tensor mc = mu.contiguous(), lc = log_var.contiguous();
  const int64_t B = x.size(0), D = x.size(1), Z = mu.size(1);
  at::Tensor grad_recon = at::empty(rc.sizes(), rc.options());   // [B, D]
  at::Tensor grad_mu = at::empty(mc.sizes(), mc.options());      // [B, Z]
  at::Tensor grad_log_var = at::empty(lc.sizes(), lc.options()); // [B, Z]
  if (B == 0) return {grad_recon, grad_mu, grad_log_var};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "gaussian_elbo_backward_cpu", [&] {
    const scalar_t* gp = gc.const_data_ptr<scalar_t>();
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const scalar_t* rp = rc.const_data_ptr<scalar_t>();
    const scalar_t* mp = mc.const_data_ptr<scalar_t>();
    const scalar_t* lp = lc.const_data_ptr<scalar_t>();
    scalar_t* grp = grad_recon.mutable_data_ptr<scalar_t>();
    scalar_t* gmp = grad_mu.mutable_data_ptr<scalar_t>();
    scalar_t* glp = grad_log_var.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B, kRowGrain, [&](int64_t begin, int64_t end) {
      elbo_backward_rows(gp, xp, rp, mp, lp, grp, gmp, glp, D, Z, bernoulli, begin, end);
    });
  });
  return {grad_recon, grad_mu, grad_log_var};
}

// The per-example values and, from the same pass, scale times their derivatives with respect to
// recon (sigmoid(l) - x or r - x), mu (mu) and log_var (0.5 (exp(log_var) - 1)): a loss's gradient
// computed in its forward pass, for a reduction whose row gradient is known beforehand (1 for a
// sum, 1/B for a mean). The values equal gaussian_elbo's and the derivatives
// gaussian_elbo_backward's with every row's gradient equal to scale, bit for bit.
using ElboWithGrad = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

ElboWithGrad gaussian_elbo_with_grad_generic(const at::Tensor& x, const at::Tensor& recon,
                                             const at::Tensor& mu, const at::Tensor& log_var,
                                             c10::string_view likelihood, double scale) {
  static const auto fwd = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("dgm_fast::gaussian_elbo", "")
                              .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                const at::Tensor&, c10::string_view)>();
  static const auto bwd = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("dgm_fast::gaussian_elbo_backward", "")
                              .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                                  const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  const at::Tensor&, const at::Tensor&, c10::string_view)>();
  at::Tensor values = fwd.call(x, recon, mu, log_var, likelihood);
  auto [grad_recon, grad_mu, grad_log_var] =
      bwd.call(at::full_like(values, scale), x, recon, mu, log_var, likelihood);
  return {values, grad_recon, grad_mu, grad_log_var};
}

ElboWithGrad gaussian_elbo_with_grad_cpu(const at::Tensor& x, const at::Tensor& recon, const at::Tensor& mu,
                                         const at::Tensor& log_var, c10::string_view likelihood,
                                         double scale) {
  constexpr const char* op = "gaussian_elbo_with_grad";
  check_gaussian_elbo_args(x, recon, mu, log_var, op);
  const bool bernoulli = elbo_is_bernoulli(likelihood, op);
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble) {
    return gaussian_elbo_with_grad_generic(x, recon, mu, log_var, likelihood, scale);
  }
  const at::Tensor xc = x.contiguous(), rc = recon.contiguous();
  const at::Tensor mc = mu.contiguous(), lc = log_var.contiguous();
  const int64_t B = x.size(0), D = x.size(1), Z = mu.size(1);
  at::Tensor values = at::empty({B}, x.options());
  at::Tensor grad_recon = at::empty(rc.sizes(), rc.options());
  at::Tensor grad_mu = at::empty(mc.sizes(), mc.options());
  at::Tensor grad_log_var = at::empty(lc.sizes(), lc.options());
  if (B == 0) return {values, grad_recon, grad_mu, grad_log_var};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gaussian_elbo_with_grad_cpu", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const scalar_t* rp = rc.const_data_ptr<scalar_t>();
    const scalar_t* mp = mc.const_data_ptr<scalar_t>();
    const scalar_t* lp = lc.const_data_ptr<scalar_t>();
    scalar_t* vp = values.mutable_data_ptr<scalar_t>();
    scalar_t* grp = grad_recon.mutable_data_ptr<scalar_t>();
    scalar_t* gmp = grad_mu.mutable_data_ptr<scalar_t>();
    scalar_t* glp = grad_log_var.mutable_data_ptr<scalar_t>();
    const scalar_t s = static_cast<scalar_t>(scale);
    at::parallel_for(0, B, kRowGrain, [&](int64_t begin, int64_t end) {
      elbo_forward_rows(xp, rp, mp, lp, vp, D, Z, bernoulli, begin, end, grp, gmp, glp, s);
    });
  });
  return {values, grad_recon, grad_mu, grad_log_var};
}

// ---- iwae_bound --------------------------------------------------------------------------------

// The log-sum-exp over the K samples of each column of log_weights [K, B] (rows contiguous), in
// tiles of kSampleChunk rows x kColumnChunk columns so that both a small batch with many samples
// and a large batch spread over the threads: each tile gives a partial (max m_t, sum_t of
// exp(w - m_t)), and the partials of a column are merged in tile order,
//   m = max_t m_t,   s = sum_t s_t * exp(m_t - m)   (factor 1 where m_t == m, also for infinities),
// so the result does not depend on the thread count. Element loops: elbo_loops.h (vectorised
// per instruction set); rows of reduced-precision inputs are widened to float first.

constexpr int64_t kSampleChunk = 256;  // iwae: samples (rows) per tile

// Rows [k, k + rows) x columns [c0, c0 + n) as one flat run of acc_t (so rows > 1 needs n == B:
// whole rows, contiguous): the data itself, or widened into `buffer`.
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
const acc_t* run_as_acc(const scalar_t* lw, int64_t B, int64_t k, int64_t rows, int64_t c0, int64_t n,
                        acc_t* buffer) {
  const scalar_t* run = lw + k * B + c0;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    return run;
  } else {
    for (int64_t j = 0; j < rows * n; ++j) buffer[j] = static_cast<acc_t>(run[j]);
    return buffer;
  }
}

// How many rows a vector loop call covers: narrow batches (a tile holding whole rows) go in runs
// of about kRun elements, so that the loops are not dominated by each row's scalar remainder;
// per-column quantities are then replicated once per row of the run.
constexpr int64_t kRun = 2048;
int64_t rows_per_run(int64_t n, int64_t B) { return n == B ? std::max<int64_t>(1, kRun / B) : 1; }

// The per-tile partials (m_t, s_t) of the log-sum-exp of lp [K, B] (acc_t), [row tile, column];
// with `terms` (float32/float64 only, acc_t == scalar_t), also each term exp(w - m_t), or its
// infinite-maximum replacement, stored at its weight's place [K, B].
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
void iwae_partials(const scalar_t* lp, int64_t K, int64_t B, acc_t* part_m, acc_t* part_s,
                   acc_t* terms = nullptr) {
  constexpr acc_t kInf = std::numeric_limits<acc_t>::infinity();
  const int64_t col_tiles = (B + kColumnChunk - 1) / kColumnChunk;
  const int64_t row_tiles = (K + kSampleChunk - 1) / kSampleChunk;
  at::parallel_for(0, row_tiles * col_tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> buffer(kRun + kColumnChunk), m_run(kRun + kColumnChunk), s_run(kRun + kColumnChunk);
    std::vector<acc_t> lo_run(kRun + kColumnChunk);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t rt = tile / col_tiles, c0 = (tile % col_tiles) * kColumnChunk;
      const int64_t n = std::min(kColumnChunk, B - c0);
      const int64_t k0 = rt * kSampleChunk, k1 = std::min(K, k0 + kSampleChunk);
      const int64_t R = std::min(rows_per_run(n, B), k1 - k0);
      // max and min over the tile's rows, per column and position in the run; the max then per column
      std::fill(m_run.begin(), m_run.begin() + R * n, -kInf);
      std::fill(lo_run.begin(), lo_run.begin() + R * n, kInf);
      for (int64_t k = k0; k < k1; k += R) {
        const int64_t rows = std::min(R, k1 - k);
        ELBO_LOOP(acc_t, extrema_into)(run_as_acc(lp, B, k, rows, c0, n, buffer.data()), m_run.data(), lo_run.data(),
                                       rows * n);
      }
      acc_t* m = part_m + rt * B + c0;
      acc_t* s = part_s + rt * B + c0;
      std::copy(m_run.begin(), m_run.begin() + n, m);
      for (int64_t r = 1; r < R; ++r) ELBO_LOOP(acc_t, max_into)(m_run.data() + r * n, m, n);
      for (int64_t r = 0; r < R; ++r) std::copy(m, m + n, m_run.begin() + r * n);  // replicated
      // Whether every exp argument w - m of the tile lies where exp_normal_range is exact (false
      // for an infinite or NaN maximum, and for a NaN anywhere)
      bool normal_range = true;
      for (int64_t j = 0; j < R * n; ++j) {
        normal_range &= m_run[j] < kInf && lo_run[j] - m_run[j] >= dgm_fast::pm::Consts<acc_t>::kExpNormalLow;
      }
      std::fill(s_run.begin(), s_run.begin() + R * n, acc_t(0));
      for (int64_t k = k0; k < k1; k += R) {
        const int64_t rows = std::min(R, k1 - k);
        const acc_t* run = run_as_acc(lp, B, k, rows, c0, n, buffer.data());
        if (terms) {
          ELBO_LOOP(acc_t, exp_store_sum_into)(run, m_run.data(), terms + k * B + c0, s_run.data(), rows * n,
                                               normal_range);
        } else {
          ELBO_LOOP(acc_t, exp_sum_into)(run, m_run.data(), s_run.data(), rows * n, normal_range);
        }
      }
      std::fill(s, s + n, acc_t(0));
      for (int64_t r = 0; r < R; ++r)
        for (int64_t j = 0; j < n; ++j) s[j] += s_run[r * n + j];
    }
  });
}

// Column j's maximum over the tiles' partials (NaN propagating) and the merged sum
// sum_t s_t exp(m_t - m) (factor 1 where m_t == m, also for infinities).
template <typename acc_t>
std::pair<acc_t, acc_t> merge_partials(const acc_t* part_m, const acc_t* part_s, int64_t row_tiles, int64_t B,
                                       int64_t j) {
  constexpr acc_t kInf = std::numeric_limits<acc_t>::infinity();
  acc_t m = -kInf;
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    const acc_t mt = part_m[rt * B + j];
    m = (mt > m || std::isnan(mt)) ? mt : m;
  }
  acc_t s = 0;
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    const acc_t mt = part_m[rt * B + j];
    s += part_s[rt * B + j] * (mt == m ? acc_t(1) : std::exp(mt - m));
  }
  return {m, s};
}

at::Tensor iwae_bound_cpu(const at::Tensor& log_weights) {  // [K, B] log p(x, z_k) - log q(z_k | x)
  check_iwae_bound_args(log_weights, "iwae_bound");
  const at::Tensor lw = log_weights.contiguous();
  const int64_t K = lw.size(0), B = lw.size(1);
  at::Tensor out = at::empty({B}, lw.options());  // [B] log (1/K) sum_k exp(log_weights[k])
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, lw.scalar_type(), "iwae_bound_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const int64_t row_tiles = (K + kSampleChunk - 1) / kSampleChunk;
    std::vector<acc_t> part_m(row_tiles * B), part_s(row_tiles * B);  // [row tile, column]
    iwae_partials(lw.const_data_ptr<scalar_t>(), K, B, part_m.data(), part_s.data());
    scalar_t* op_ = out.mutable_data_ptr<scalar_t>();
    const acc_t log_k = std::log(static_cast<acc_t>(K));
    for (int64_t j = 0; j < B; ++j) {
      const auto [m, s] = merge_partials(part_m.data(), part_s.data(), row_tiles, B, j);
      op_[j] = static_cast<scalar_t>(m + std::log(s) - log_k);
    }
  });
  return out;
}

// The bound and, from the same exps, scale times its gradient: scale * softmax over the samples,
// computed as exp(w - m_t) * (scale exp(m_t - m) / s) with each tile's maximum m_t (one exp per
// weight where the forward and backward ops take two). The bound equals iwae_bound's bits; the
// gradient agrees with iwae_bound_backward's to rounding (not bit for bit: another formula). Where
// a column's maximum is +inf or NaN its gradient is NaN (softmax's), where it is -inf (every
// weight -inf) it is 0.
std::tuple<at::Tensor, at::Tensor> iwae_bound_with_grad_generic(const at::Tensor& log_weights, double scale) {
  static const auto fwd = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("dgm_fast::iwae_bound", "")
                              .typed<at::Tensor(const at::Tensor&)>();
  static const auto bwd = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("dgm_fast::iwae_bound_backward", "")
                              .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  at::Tensor bound = fwd.call(log_weights);
  return {bound, bwd.call(at::full_like(bound, scale), log_weights, bound)};
}

std::tuple<at::Tensor, at::Tensor> iwae_bound_with_grad_cpu(const at::Tensor& log_weights, double scale) {
  check_iwae_bound_args(log_weights, "iwae_bound_with_grad");
  if (log_weights.scalar_type() != at::kFloat && log_weights.scalar_type() != at::kDouble) {
    return iwae_bound_with_grad_generic(log_weights, scale);
  }
  const at::Tensor lw = log_weights.contiguous();
  const int64_t K = lw.size(0), B = lw.size(1);
  at::Tensor bound = at::empty({B}, lw.options());
  at::Tensor grad = at::empty(lw.sizes(), lw.options());  // [K, B]
  if (B == 0) return {bound, grad};
  AT_DISPATCH_FLOATING_TYPES(lw.scalar_type(), "iwae_bound_with_grad_cpu", [&] {
    constexpr scalar_t kInf = std::numeric_limits<scalar_t>::infinity();
    constexpr scalar_t kNaN = std::numeric_limits<scalar_t>::quiet_NaN();
    const int64_t row_tiles = (K + kSampleChunk - 1) / kSampleChunk;
    const int64_t col_tiles = (B + kColumnChunk - 1) / kColumnChunk;
    std::vector<scalar_t> part_m(row_tiles * B), part_s(row_tiles * B);
    scalar_t* gp = grad.mutable_data_ptr<scalar_t>();
    iwae_partials(lw.const_data_ptr<scalar_t>(), K, B, part_m.data(), part_s.data(), gp);
    scalar_t* bp = bound.mutable_data_ptr<scalar_t>();
    const scalar_t log_k = std::log(static_cast<scalar_t>(K)), sc = static_cast<scalar_t>(scale);
    std::vector<scalar_t> factor(row_tiles * B);  // what tile rt's terms of column j are multiplied by
    for (int64_t j = 0; j < B; ++j) {
      const auto [m, s] = merge_partials(part_m.data(), part_s.data(), row_tiles, B, j);
      bp[j] = m + std::log(s) - log_k;
      for (int64_t rt = 0; rt < row_tiles; ++rt) {
        const scalar_t mt = part_m[rt * B + j];
        const scalar_t to_m = mt == m ? scalar_t(1) : std::exp(mt - m);
        factor[rt * B + j] = m == -kInf ? scalar_t(0) : (m == kInf || std::isnan(m)) ? kNaN : sc * to_m / s;
      }
    }
    // terms times their tile's factor, in runs of whole rows for narrow batches (as the partials)
    at::parallel_for(0, row_tiles * col_tiles, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> f_run(kRun + kColumnChunk);
      for (int64_t tile = begin; tile < end; ++tile) {
        const int64_t rt = tile / col_tiles, c0 = (tile % col_tiles) * kColumnChunk;
        const int64_t n = std::min(kColumnChunk, B - c0);
        const int64_t k0 = rt * kSampleChunk, k1 = std::min(K, k0 + kSampleChunk);
        const int64_t R = std::min(rows_per_run(n, B), k1 - k0);
        for (int64_t r = 0; r < R; ++r) std::copy_n(factor.data() + rt * B + c0, n, f_run.begin() + r * n);
        for (int64_t k = k0; k < k1; k += R) {
          const int64_t rows = std::min(R, k1 - k);
          ELBO_LOOP(scalar_t, scale_by)(gp + k * B + c0, f_run.data(), rows * n);
        }
      }
    });
  });
  return {bound, grad};
}

// Rows [k, k + rows), columns [c0, c0 + n) of the iwae gradient: out = g * exp(w - lse), with
// lse and g replicated over the run.
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
void softmax_grad_run(const scalar_t* lw, scalar_t* out, int64_t B, int64_t k, int64_t rows, int64_t c0,
                      int64_t n, const acc_t* lse, const acc_t* g, acc_t* in, acc_t* o) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    ELBO_LOOP(acc_t, softmax_grad)(lw + k * B + c0, lse, g, out + k * B + c0, rows * n);
  } else {
    ELBO_LOOP(acc_t, softmax_grad)(run_as_acc(lw, B, k, rows, c0, n, in), lse, g, o, rows * n);
    for (int64_t j = 0; j < rows * n; ++j) out[k * B + c0 + j] = static_cast<scalar_t>(o[j]);
  }
}

at::Tensor iwae_bound_backward_cpu(const at::Tensor& grad,         // [B]
                                   const at::Tensor& log_weights,  // [K, B]
                                   const at::Tensor& bound) {      // [B] the forward's output
  check_iwae_bound_backward_args(grad, log_weights, bound);
  const at::Tensor gc = grad.contiguous(), lw = log_weights.contiguous(), bc = bound.contiguous();
  const int64_t K = lw.size(0), B = lw.size(1);
  at::Tensor grad_lw = at::empty(lw.sizes(), lw.options());  // [K, B] grad * softmax_k(lw)
  if (lw.numel() == 0) return grad_lw;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, lw.scalar_type(), "iwae_bound_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    // softmax weight exp(w - logsumexp(w)) with logsumexp = bound + log K; 0 where every weight
    // of the column is -inf (the bound is then -inf and has no slope)
    const acc_t log_k = std::log(static_cast<acc_t>(K));
    std::vector<acc_t> lse(B), g(B);
    const scalar_t* bound_p = bc.const_data_ptr<scalar_t>();
    const scalar_t* grad_p = gc.const_data_ptr<scalar_t>();
    for (int64_t j = 0; j < B; ++j) {
      lse[j] = static_cast<acc_t>(bound_p[j]) + log_k;
      g[j] = static_cast<acc_t>(grad_p[j]);
    }
    const scalar_t* lp = lw.const_data_ptr<scalar_t>();
    scalar_t* op_ = grad_lw.mutable_data_ptr<scalar_t>();
    const int64_t col_tiles = (B + kColumnChunk - 1) / kColumnChunk;
    const int64_t R = rows_per_run(std::min(B, kColumnChunk), B);  // rows per call (1 unless B is narrow)
    const int64_t runs = (K + R - 1) / R;
    at::parallel_for(0, runs * col_tiles, std::max<int64_t>(1, 32768 / (R * std::min(B, kColumnChunk))),
                     [&](int64_t begin, int64_t end) {
      const int64_t width = R * std::min(B, kColumnChunk);
      std::vector<acc_t> in(width), o(width), lse_run(width), g_run(width);
      int64_t replicated_c0 = -1;
      for (int64_t t = begin; t < end; ++t) {
        const int64_t k = (t / col_tiles) * R, c0 = (t % col_tiles) * kColumnChunk;
        const int64_t n = std::min(kColumnChunk, B - c0), rows = std::min(R, K - k);
        if (c0 != replicated_c0) {
          for (int64_t r = 0; r < R; ++r) {
            std::copy(lse.begin() + c0, lse.begin() + c0 + n, lse_run.begin() + r * n);
            std::copy(g.begin() + c0, g.begin() + c0 + n, g_run.begin() + r * n);
          }
          replicated_c0 = c0;
        }
        softmax_grad_run(lp, op_, B, k, rows, c0, n, lse_run.data(), g_run.data(), in.data(), o.data());
      }
    });
  });
  return grad_lw;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def(
      "gaussian_elbo(Tensor x, Tensor recon, Tensor mu, Tensor log_var, *, "
      "str likelihood=\"bernoulli\") -> Tensor");
  m.def(
      "gaussian_elbo_backward(Tensor grad, Tensor x, Tensor recon, Tensor mu, Tensor log_var, *, "
      "str likelihood=\"bernoulli\") -> (Tensor grad_recon, Tensor grad_mu, Tensor grad_log_var)");
  m.def(
      "gaussian_elbo_with_grad(Tensor x, Tensor recon, Tensor mu, Tensor log_var, *, "
      "str likelihood=\"bernoulli\", float scale=1.0) -> "
      "(Tensor values, Tensor grad_recon, Tensor grad_mu, Tensor grad_log_var)");
  m.def("iwae_bound(Tensor log_weights) -> Tensor");
  m.def("iwae_bound_backward(Tensor grad, Tensor log_weights, Tensor bound) -> Tensor");
  m.def("iwae_bound_with_grad(Tensor log_weights, *, float scale=1.0) -> (Tensor bound, Tensor grad_log_weights)");
}

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("gaussian_elbo", &gaussian_elbo_cpu);
  m.impl("gaussian_elbo_backward", &gaussian_elbo_backward_cpu);
  m.impl("gaussian_elbo_with_grad", &gaussian_elbo_with_grad_cpu);
  m.impl("iwae_bound", &iwae_bound_cpu);
  m.impl("iwae_bound_backward", &iwae_bound_backward_cpu);
  m.impl("iwae_bound_with_grad", &iwae_bound_with_grad_cpu);
}

// Other devices (CUDA, meta): the forward and backward kernels, one after the other.
TORCH_LIBRARY_IMPL(dgm_fast, CompositeExplicitAutograd, m) {
  m.impl("gaussian_elbo_with_grad", &gaussian_elbo_with_grad_generic);
  m.impl("iwae_bound_with_grad", &iwae_bound_with_grad_generic);
}

}  // namespace dgm_fast
