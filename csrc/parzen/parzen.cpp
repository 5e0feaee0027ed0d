// Parzen-window (Gaussian kernel density) log-densities, the evaluation of implicit models that
// the GAN and GMMN papers report (Breuleux et al. 2011; Goodfellow et al. 2014; Li et al. 2015):
//
//   log p(x_i) = log (1/N) sum_j N(x_i | s_j, sigma^2 I)
//              = logsumexp_j(-||x_i - s_j||^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2)
//
// over N samples s_j, computed in tiles so that memory is O((N_x + N) D + tile^2), never O(N_x N).
// Each tile's exponents come from one product through ATen (MKL/oneDNN or cuBLAS),
//   -||x - s||^2 / (2 sigma^2) = c ||s||^2 - 2 c s.x + c ||x||^2,   c = -1 / (2 sigma^2),
// with the per-point term c ||x||^2 added after the log-sum-exp over the samples, which is the
// fused iwae_bound op (csrc/elbo/elbo.cpp: per instruction set on the CPU, cuda/elbo/elbo.cu):
// the same column-wise log-sum-exp, here over the samples of a tile [samples, points]. Tiles of
// samples are merged by logaddexp. Several kernel widths share each tile's product s.x. The rows are centred on the samples' mean first, so the
// expansion loses no digits for data far from the origin.
//
// The op is built from ATen and dispatcher calls only, so one implementation serves the CPU and
// CUDA. It is an evaluation, not a loss: it has no gradient (python/dgm_fast/ops/parzen.py, with
// the fake kernel; the plain-PyTorch definition is python/dgm_fast/reference/parzen.py).
#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "common/checks.h"

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

constexpr int64_t kPointTile = 4096;   // points (columns of a tile)
constexpr int64_t kSampleTile = 1024;  // samples (rows of a tile): a tile is 16 MiB in float32

// x: [N_x, D], samples: [N, D], same dtype (float32 or float64) and device; every sigma > 0.
void check_parzen_args(const Tensor& x, const Tensor& samples, at::ArrayRef<double> sigmas, const char* op) {
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                   ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK_TYPE(samples.scalar_type() == x.scalar_type(), op, ": samples has dtype ",
                   samples.scalar_type(), " but x has dtype ", x.scalar_type());
  check_same_device(x, samples, op, "x", "samples");
  TORCH_CHECK_VALUE(x.dim() == 2 && samples.dim() == 2, op,
                    ": x and samples must be 2-D, [N_x, D] and [N, D] (one point per row), got shapes ",
                    x.sizes(), " and ", samples.sizes());
  TORCH_CHECK_VALUE(x.size(1) == samples.size(1), op, ": x and samples must have the same number of "
                    "columns (features), got x of shape ", x.sizes(), " and samples of shape ", samples.sizes());
  TORCH_CHECK_VALUE(samples.size(0) >= 1, op, ": samples is empty (shape ", samples.sizes(),
                    "); a kernel density needs at least one sample");
  TORCH_CHECK_VALUE(!sigmas.empty(), op, ": sigmas must name at least one kernel width");
  for (const double sigma : sigmas) {
    TORCH_CHECK_VALUE(std::isfinite(sigma) && sigma > 0, op, ": every sigma (the kernel's standard deviation) "
                      "must be positive and finite, got ", sigmas);
  }
}

// The column-wise log (1/K) sum_k exp(w[k, j]) of a [K, B] tile: the iwae_bound op.
Tensor column_log_mean_exp(const Tensor& w) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgm_fast::iwae_bound", "")
                             .typed<Tensor(const Tensor&)>();
  return op.call(w);
}

// [S, N_x]: row s the log-densities with kernel width sigmas[s]. The product of each tile is
// formed once and serves every width (choosing sigma on a validation set costs one pass, not S).
Tensor parzen_log_density_impl(const Tensor& x,        // [N_x, D] points to evaluate
                               const Tensor& samples,  // [N, D] the kernels' centres
                               at::ArrayRef<double> sigmas) {
  check_parzen_args(x, samples, sigmas, "parzen_log_density");
  const int64_t n_x = x.size(0), n = samples.size(0), d = x.size(1);
  const int64_t n_sigma = static_cast<int64_t>(sigmas.size());
  Tensor out = at::empty({n_sigma, n_x}, x.options());
  if (n_x == 0) return out;
  const Tensor center = samples.mean(0);
  const Tensor xc = (x - center).contiguous(), sc = (samples - center).contiguous();
  const Tensor s_sq = sc.square().sum(1).unsqueeze(1);  // [N, 1]
  const Tensor x_sq = xc.square().sum(1);               // [N_x]
  for (int64_t p0 = 0; p0 < n_x; p0 += kPointTile) {
    const int64_t np = std::min(kPointTile, n_x - p0);
    const Tensor points_t = xc.narrow(0, p0, np).t();  // [D, np]
    std::vector<Tensor> log_sums(n_sigma);             // [np] log sum_j exp(c ||s_j||^2 - 2c s_j.x)
    for (int64_t s0 = 0; s0 < n; s0 += kSampleTile) {
      const int64_t ns = std::min(kSampleTile, n - s0);
      const Tensor samples_tile = sc.narrow(0, s0, ns), s_sq_tile = s_sq.narrow(0, s0, ns);
      // One width: the exponents straight from the product (addmm); several: the product once.
      const Tensor dots = n_sigma > 1 ? at::mm(samples_tile, points_t) : Tensor();  // [ns, np] s.x
      for (int64_t k = 0; k < n_sigma; ++k) {
        const double c = -0.5 / (sigmas[k] * sigmas[k]);
        // c ||s||^2 - 2c s.x, the exponent without the point's own c ||x||^2
        const Tensor w = n_sigma > 1 ? at::add(s_sq_tile * c, dots, -2 * c)
                                     : at::addmm(s_sq_tile * c, samples_tile, points_t, 1, -2 * c);
        const Tensor part = column_log_mean_exp(w).add_(std::log(static_cast<double>(ns)));
        log_sums[k] = log_sums[k].defined() ? at::logaddexp(log_sums[k], part) : part;
      }
    }
    for (int64_t k = 0; k < n_sigma; ++k) {
      const double c = -0.5 / (sigmas[k] * sigmas[k]);
      const double log_norm = std::log(static_cast<double>(n)) + 0.5 * d * std::log(2 * M_PI * sigmas[k] * sigmas[k]);
      out[k].narrow(0, p0, np).copy_(log_sums[k].add_(x_sq.narrow(0, p0, np), c).sub_(log_norm));
    }
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def("parzen_log_density(Tensor x, Tensor samples, float[] sigmas) -> Tensor");
}

// ATen and dispatcher calls only: the same code runs the CPU and CUDA.
TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) { m.impl("parzen_log_density", &parzen_log_density_impl); }

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) { m.impl("parzen_log_density", &parzen_log_density_impl); }

}  // namespace dgm_fast
