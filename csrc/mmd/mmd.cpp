// Squared maximum mean discrepancy (Gretton et al., 2012) with a sum of RBF kernels, as used by
// generative moment matching networks (Li et al., 2015; Dziugaite et al., 2015), forward and
// analytic backward, computed in tiles so that memory is O((N + M) D + tile^2), never O(N M).
//
//   k(a, b)  = sum_s exp(-||a - b||^2 / (2 s^2))                    (s: the bandwidths)
//   MMD^2    = c_xx sum_{i,j} k(x_i, x_j) + c_yy sum_{i,j} k(y_i, y_j) - 2 c_xy sum_{i,j} k(x_i, y_j)
//   unbiased: the i = j terms of the first two sums left out, c_xx = 1 / (N (N - 1)),
//             c_yy = 1 / (M (M - 1)); biased: c_xx = 1 / N^2, c_yy = 1 / M^2; c_xy = 1 / (N M).
//
// Each tile's squared distances are ||a||^2 + ||b||^2 - 2 a.b, the product through ATen
// (MKL/oneDNN or cuBLAS), clamped at 0, with the diagonal of a tile of k(x, x) set to exactly 0.
// The two symmetric sums visit only tiles on and above the diagonal. Gradient, with
// W(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)) / s^2 so that d k(a, b) / da = -(a - b) W(a, b):
//   dMMD^2/dx_i = -2 c_xx (x_i sum_j W(x_i, x_j) - sum_j W(x_i, x_j) x_j)
//                 +2 c_xy (x_i sum_j W(x_i, y_j) - sum_j W(x_i, y_j) y_j)
// and the same with x and y exchanged for dMMD^2/dy_j.
//
// The op is built from ATen calls only, so one implementation serves the CPU and CUDA (its
// products run on the tensors' device); autograd and fake kernels are in
// python/dgm_fast/ops/mmd.py, the plain-PyTorch definition in python/dgm_fast/reference/mmd.py.
#include <cmath>
#include <limits>
#include <utility>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common/checks.h"
#include "mmd/mmd_loops.h"

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

constexpr int64_t kTile = 1024;  // rows and columns per tile: two tile^2 buffers at a time

// The element loops (mmd_loops.h, one variant per instruction set).
void rbf_sum(const float* d2, float* out, int64_t n, const float* coef, const float* scale, int64_t n_bw) {
  mmd_loops().rbf_sum_f32(d2, out, n, coef, scale, n_bw);
}
void rbf_sum(const double* d2, double* out, int64_t n, const double* coef, const double* scale, int64_t n_bw) {
  mmd_loops().rbf_sum_f64(d2, out, n, coef, scale, n_bw);
}
double rbf_pair(const float* d2, float* w, int64_t n, const float* coef, const float* inv_s2, int64_t n_bw) {
  return mmd_loops().rbf_pair_f32(d2, w, n, coef, inv_s2, n_bw);
}
double rbf_pair(const double* d2, double* w, int64_t n, const double* coef, const double* inv_s2, int64_t n_bw) {
  return mmd_loops().rbf_pair_f64(d2, w, n, coef, inv_s2, n_bw);
}

// x: [N, D], y: [M, D], same dtype (float32 or float64) and device.
void check_mmd_args(const Tensor& x, const Tensor& y, at::ArrayRef<double> bandwidths,
                    c10::string_view kernel, bool unbiased, const char* op) {
  TORCH_CHECK_VALUE(kernel == "rbf", op, ": kernel must be 'rbf' (a sum of Gaussian kernels), got '",
                    kernel, "'");
  TORCH_CHECK_TYPE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                   ": x must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK_TYPE(y.scalar_type() == x.scalar_type(), op, ": y has dtype ", y.scalar_type(),
                   " but x has dtype ", x.scalar_type());
  check_same_device(x, y, op, "x", "y");
  TORCH_CHECK_VALUE(x.dim() == 2 && y.dim() == 2, op,
                    ": x and y must be 2-D, [N, D] and [M, D] (one sample per row), got shapes ",
                    x.sizes(), " and ", y.sizes());
  TORCH_CHECK_VALUE(x.size(1) == y.size(1), op, ": x and y must have the same number of columns "
                    "(features), got x of shape ", x.sizes(), " and y of shape ", y.sizes());
  const int64_t min_rows = unbiased ? 2 : 1;
  TORCH_CHECK_VALUE(x.size(0) >= min_rows && y.size(0) >= min_rows, op, ": the ",
                    (unbiased ? "unbiased" : "biased"), " estimator needs at least ", min_rows,
                    " rows in x and in y, got ", x.size(0), " and ", y.size(0));
  TORCH_CHECK_VALUE(!bandwidths.empty(), op, ": bandwidths must name at least one bandwidth");
  for (const double s : bandwidths) {
    TORCH_CHECK_VALUE(std::isfinite(s) && s > 0, op,
                      ": every bandwidth must be positive and finite, got ", bandwidths);
  }
}

int64_t n_tiles(int64_t n) { return (n + kTile - 1) / kTile; }

// Squared distances between the rows of a [n, D] and b [m, D] (a_sq, b_sq: their squared
// norms), clamped at 0; on_diagonal: a and b are the same rows, whose distance is set to 0.
// The rows are centred (see centred()), so the expansion ||a||^2 + ||b||^2 - 2 a.b does not
// cancel for data far from the origin. A squared norm that overflows to inf makes its row's
// distances inf (the expansion would give inf - inf = NaN): their kernel values are 0, as they
// are for the true, finite but enormous, distances. A NaN input still gives NaN.
Tensor sq_dist_tile(const Tensor& a, const Tensor& b, const Tensor& a_sq, const Tensor& b_sq,
                    bool on_diagonal, bool may_overflow) {
  Tensor d2 = at::addmm(b_sq.unsqueeze(0), a, b.t(), /*beta=*/1, /*alpha=*/-2);  // [n, m]
  d2.add_(a_sq.unsqueeze(1)).clamp_min_(0);
  if (may_overflow) {
    const Tensor overflowed = at::logical_or(a_sq.isinf().unsqueeze(1), b_sq.isinf().unsqueeze(0));
    d2.masked_fill_(overflowed, std::numeric_limits<double>::infinity());
  }
  if (on_diagonal) d2.diagonal().zero_();
  return d2;
}

// x and y minus the mean of all their rows (MMD and its gradient are unchanged by a common
// shift; the squared distances of centred rows lose no digits to cancellation), contiguous.
std::pair<Tensor, Tensor> centred(const Tensor& x, const Tensor& y) {
  const Tensor center = (x.sum(0) + y.sum(0)) / static_cast<double>(x.size(0) + y.size(0));
  return {(x - center).contiguous(), (y - center).contiguous()};
}

// Whether a squared norm overflowed: on the CPU it costs nothing to ask; on CUDA, asking would
// synchronise with the host, so the distances are always masked there.
bool may_overflow(const Tensor& x_sq, const Tensor& y_sq) {
  if (!x_sq.device().is_cpu()) return true;
  return x_sq.isinf().any().item<bool>() || y_sq.isinf().any().item<bool>();
}

// sum_s scale_s * exp(coef_s * d2) for a contiguous tile d2, with tmp as scratch of d2's shape.
// CPU: one pass over the tile in the per-instruction-set loop of mmd_loops.h; other devices:
// ATen calls.
Tensor kernel_sum(const Tensor& d2, const std::vector<double>& coef,
                  const std::vector<double>& scale, Tensor& tmp) {
  if (d2.device().is_cpu()) {
    Tensor out = at::empty_like(d2);
    AT_DISPATCH_FLOATING_TYPES(d2.scalar_type(), "mmd_kernel_sum_cpu", [&] {
      const std::vector<scalar_t> c(coef.begin(), coef.end()), w(scale.begin(), scale.end());
      const scalar_t* dp = d2.const_data_ptr<scalar_t>();
      scalar_t* op = out.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, d2.numel(), 16384, [&](int64_t begin, int64_t end) {
        rbf_sum(dp + begin, op + begin, end - begin, c.data(), w.data(), static_cast<int64_t>(c.size()));
      });
    });
    return out;
  }
  Tensor out = at::zeros_like(d2);
  for (size_t s = 0; s < coef.size(); ++s) {
    at::mul_out(tmp, d2, coef[s]);
    tmp.exp_();
    out.add_(tmp, scale[s]);
  }
  return out;
}

struct Rbf {  // the bandwidths s as the coefficients the loops use
  std::vector<double> coef;    // -1 / (2 s^2)
  std::vector<double> ones;    // 1
  std::vector<double> inv_s2;  // 1 / s^2
  explicit Rbf(at::ArrayRef<double> bandwidths) {
    for (const double s : bandwidths) {
      coef.push_back(-0.5 / (s * s));
      ones.push_back(1.0);
      inv_s2.push_back(1.0 / (s * s));
    }
  }
};

// The kernel k = sum_s exp(coef_s d2) and the gradient weight W = sum_s exp(coef_s d2) / s^2 of
// a contiguous tile d2 from the same exponentials: returns W (a new tile) and adds sum(k) to
// k_total (a 0-dim float64 tensor on d2's device).
Tensor kernel_and_weight(const Tensor& d2, const Rbf& rbf, Tensor& tmp, Tensor& k_total) {
  if (d2.device().is_cpu()) {
    Tensor w = at::empty_like(d2);
    constexpr int64_t kGrain = 16384;
    const int64_t n = d2.numel(), parts = (n + kGrain - 1) / kGrain;
    std::vector<double> sums(parts, 0.0);  // per fixed chunk, added in order: thread-count free
    AT_DISPATCH_FLOATING_TYPES(d2.scalar_type(), "mmd_kernel_and_weight_cpu", [&] {
      const std::vector<scalar_t> c(rbf.coef.begin(), rbf.coef.end());
      const std::vector<scalar_t> inv(rbf.inv_s2.begin(), rbf.inv_s2.end());
      const scalar_t* dp = d2.const_data_ptr<scalar_t>();
      scalar_t* wp = w.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
          const int64_t i0 = p * kGrain, len = std::min(kGrain, n - i0);
          sums[p] = rbf_pair(dp + i0, wp + i0, len, c.data(), inv.data(), static_cast<int64_t>(c.size()));
        }
      });
    });
    double total = 0.0;
    for (const double part : sums) total += part;
    k_total.add_(total);
    return w;
  }
  Tensor k = at::zeros_like(d2), w = at::zeros_like(d2);
  for (size_t s = 0; s < rbf.coef.size(); ++s) {
    at::mul_out(tmp, d2, rbf.coef[s]);
    tmp.exp_();
    k.add_(tmp);
    w.add_(tmp, rbf.inv_s2[s]);
  }
  k_total.add_(k.sum(at::kDouble));
  return w;
}

// sum_{i,j} k(a_i, b_j) as a 0-dim float64 tensor on a's device; symmetric: a is b (a_sq is
// b_sq), visited on and above the diagonal, the i = j terms left out when exclude_diagonal.
Tensor kernel_total(const Tensor& a, const Tensor& b, const Tensor& a_sq, const Tensor& b_sq,
                    const Rbf& rbf, bool symmetric, bool exclude_diagonal, bool overflow) {
  Tensor total = at::zeros({}, a.options().dtype(at::kDouble));
  Tensor tmp;
  for (int64_t ti = 0; ti < n_tiles(a.size(0)); ++ti) {
    const int64_t i0 = ti * kTile, ni = std::min(kTile, a.size(0) - i0);
    for (int64_t tj = symmetric ? ti : 0; tj < n_tiles(b.size(0)); ++tj) {
      const int64_t j0 = tj * kTile, nj = std::min(kTile, b.size(0) - j0);
      const bool diag = symmetric && ti == tj;
      const Tensor d2 = sq_dist_tile(a.narrow(0, i0, ni), b.narrow(0, j0, nj),
                                     a_sq.narrow(0, i0, ni), b_sq.narrow(0, j0, nj), diag, overflow);
      if (!tmp.defined() || tmp.sizes() != d2.sizes()) tmp = at::empty_like(d2);
      Tensor k = kernel_sum(d2, rbf.coef, rbf.ones, tmp);
      if (diag && exclude_diagonal) k.diagonal().zero_();
      total.add_(k.sum(at::kDouble), (symmetric && !diag) ? 2.0 : 1.0);
    }
  }
  return total;
}

struct Coefficients {
  double xx, yy, xy;
};

Coefficients mmd_coefficients(int64_t n, int64_t m, bool unbiased) {
  const double dn = static_cast<double>(n), dm = static_cast<double>(m);
  return {unbiased ? 1.0 / (dn * (dn - 1)) : 1.0 / (dn * dn),
          unbiased ? 1.0 / (dm * (dm - 1)) : 1.0 / (dm * dm), 1.0 / (dn * dm)};
}

Tensor mmd_impl(const Tensor& x,  // [N, D]
                const Tensor& y,  // [M, D]
                at::ArrayRef<double> bandwidths, c10::string_view kernel, bool unbiased) {
  check_mmd_args(x, y, bandwidths, kernel, unbiased, "mmd");
  const auto [xc, yc] = centred(x, y);
  const Tensor x_sq = xc.square().sum(1), y_sq = yc.square().sum(1);  // [N], [M]
  const bool overflow = may_overflow(x_sq, y_sq);
  const Rbf rbf(bandwidths);
  const Coefficients c = mmd_coefficients(xc.size(0), yc.size(0), unbiased);
  const Tensor sxx = kernel_total(xc, xc, x_sq, x_sq, rbf, true, unbiased, overflow);
  const Tensor syy = kernel_total(yc, yc, y_sq, y_sq, rbf, true, unbiased, overflow);
  const Tensor sxy = kernel_total(xc, yc, x_sq, y_sq, rbf, false, false, overflow);
  return (sxx * c.xx + syy * c.yy - sxy * (2 * c.xy)).to(x.scalar_type());
}

// For rows a [n, D] and b [m, D], from one pass over the tiles of their squared distances:
// k_total += sum_{i,j} k(a_i, b_j) (the i = j terms left out when exclude_diagonal), and with
// W(a_i, b_j): row_w[i] += sum_j W_ij, w_b[i] += sum_j W_ij b_j, and (not symmetric)
// col_w[j] += sum_i W_ij, w_a[j] += sum_i W_ij a_i. Symmetric: a is b, tiles on and above the
// diagonal count for both their rows and columns (k twice off the diagonal), and W's diagonal is
// 0 (it multiplies a_i - a_i = 0).
void accumulate_value_and_w(const Tensor& a, const Tensor& b, const Tensor& a_sq, const Tensor& b_sq,
                            const Rbf& rbf, bool symmetric, bool exclude_diagonal, bool overflow, Tensor& k_total,
                            Tensor& row_w, Tensor& w_b, Tensor& col_w, Tensor& w_a) {
  Tensor tmp;
  for (int64_t ti = 0; ti < n_tiles(a.size(0)); ++ti) {
    const int64_t i0 = ti * kTile, ni = std::min(kTile, a.size(0) - i0);
    const Tensor a_blk = a.narrow(0, i0, ni);
    for (int64_t tj = symmetric ? ti : 0; tj < n_tiles(b.size(0)); ++tj) {
      const int64_t j0 = tj * kTile, nj = std::min(kTile, b.size(0) - j0);
      const Tensor b_blk = b.narrow(0, j0, nj);
      const bool diag = symmetric && ti == tj;
      const Tensor d2 = sq_dist_tile(a_blk, b_blk, a_sq.narrow(0, i0, ni), b_sq.narrow(0, j0, nj), diag, overflow);
      if (!tmp.defined() || tmp.sizes() != d2.sizes()) tmp = at::empty_like(d2);
      Tensor tile_k = at::zeros({}, a.options().dtype(at::kDouble));
      Tensor w = kernel_and_weight(d2, rbf, tmp, tile_k);  // [ni, nj]
      // d2's diagonal is exactly 0 here, so each diagonal k is exactly one per bandwidth.
      if (diag && exclude_diagonal) tile_k.sub_(static_cast<double>(ni * static_cast<int64_t>(rbf.coef.size())));
      k_total.add_(tile_k, (symmetric && !diag) ? 2.0 : 1.0);
      if (diag) w.diagonal().zero_();
      row_w.narrow(0, i0, ni).add_(w.sum(1));
      w_b.narrow(0, i0, ni).addmm_(w, b_blk);
      if (symmetric && diag) continue;
      Tensor& cw = symmetric ? row_w : col_w;
      Tensor& wa = symmetric ? w_b : w_a;
      cw.narrow(0, j0, nj).add_(w.sum(0));
      wa.narrow(0, j0, nj).addmm_(w.t(), a_blk);
    }
  }
}

// MMD^2 and its gradient with respect to x and y, from one pass over the tiles (each kernel tile
// gives both the value's sum and the gradient's weights from the same exponentials, and the
// distance products are not formed twice, as separate forward and backward passes would).
std::tuple<Tensor, Tensor, Tensor> mmd_with_grad_impl(const Tensor& x,  // [N, D]
                                                      const Tensor& y,  // [M, D]
                                                      at::ArrayRef<double> bandwidths,
                                                      c10::string_view kernel, bool unbiased) {
  check_mmd_args(x, y, bandwidths, kernel, unbiased, "mmd_with_grad");
  const auto [xc, yc] = centred(x, y);
  const Tensor x_sq = xc.square().sum(1), y_sq = yc.square().sum(1);  // [N], [M]
  const bool overflow = may_overflow(x_sq, y_sq);
  const Rbf rbf(bandwidths);
  const Coefficients c = mmd_coefficients(xc.size(0), yc.size(0), unbiased);
  const int64_t n = xc.size(0), m = yc.size(0);
  const auto f64 = xc.options().dtype(at::kDouble);
  Tensor sxx = at::zeros({}, f64), syy = at::zeros({}, f64), sxy = at::zeros({}, f64);
  Tensor row_xx = at::zeros({n}, xc.options()), wxx_x = at::zeros_like(xc);
  Tensor row_yy = at::zeros({m}, xc.options()), wyy_y = at::zeros_like(yc);
  Tensor row_xy = at::zeros({n}, xc.options()), wxy_y = at::zeros_like(xc);  // over y, per x row
  Tensor col_xy = at::zeros({m}, xc.options()), wxy_x = at::zeros_like(yc);  // over x, per y row
  Tensor unused;
  accumulate_value_and_w(xc, xc, x_sq, x_sq, rbf, true, unbiased, overflow, sxx, row_xx, wxx_x, unused, unused);
  accumulate_value_and_w(yc, yc, y_sq, y_sq, rbf, true, unbiased, overflow, syy, row_yy, wyy_y, unused, unused);
  accumulate_value_and_w(xc, yc, x_sq, y_sq, rbf, false, false, overflow, sxy, row_xy, wxy_y, col_xy, wxy_x);
  Tensor value = (sxx * c.xx + syy * c.yy - sxy * (2 * c.xy)).to(x.scalar_type());
  Tensor gx = xc * (row_xy * (2 * c.xy) - row_xx * (2 * c.xx)).unsqueeze(1);
  gx.add_(wxx_x, 2 * c.xx).sub_(wxy_y, 2 * c.xy);
  Tensor gy = yc * (col_xy * (2 * c.xy) - row_yy * (2 * c.yy)).unsqueeze(1);
  gy.add_(wyy_y, 2 * c.yy).sub_(wxy_x, 2 * c.xy);
  return {value, gx, gy};
}

std::tuple<Tensor, Tensor> mmd_backward_impl(const Tensor& grad,  // []
                                             const Tensor& x,     // [N, D]
                                             const Tensor& y,     // [M, D]
                                             at::ArrayRef<double> bandwidths,
                                             c10::string_view kernel, bool unbiased) {
  TORCH_CHECK_VALUE(grad.dim() == 0, "mmd_backward: grad must be 0-dim (MMD^2 is a scalar), got shape ",
                    grad.sizes());
  check_same_device(grad, x, "mmd_backward", "grad", "x");
  auto [value, gx, gy] = mmd_with_grad_impl(x, y, bandwidths, kernel, unbiased);
  const Tensor g = grad.to(x.scalar_type());
  return {gx.mul_(g), gy.mul_(g)};
}

}  // namespace

// The kernel argument is called kernel_kind: inductor's fallback for custom ops takes an argument
// named `kernel` itself and rejects an op argument of that name.
TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def("mmd(Tensor x, Tensor y, float[] bandwidths, *, str kernel_kind=\"rbf\", bool unbiased=True) "
        "-> Tensor");
  m.def("mmd_backward(Tensor grad, Tensor x, Tensor y, float[] bandwidths, *, str kernel_kind=\"rbf\", "
        "bool unbiased=True) -> (Tensor grad_x, Tensor grad_y)");
  m.def("mmd_with_grad(Tensor x, Tensor y, float[] bandwidths, *, str kernel_kind=\"rbf\", "
        "bool unbiased=True) -> (Tensor value, Tensor grad_x, Tensor grad_y)");
}

// ATen calls only: the same code runs the CPU and CUDA (a CPU-only build never sees CUDA tensors).
TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("mmd", &mmd_impl);
  m.impl("mmd_backward", &mmd_backward_impl);
  m.impl("mmd_with_grad", &mmd_with_grad_impl);
}

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("mmd", &mmd_impl);
  m.impl("mmd_backward", &mmd_backward_impl);
  m.impl("mmd_with_grad", &mmd_with_grad_impl);
}

}  // namespace dgm_fast
