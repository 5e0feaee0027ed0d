// CPU kernel of rbm_sgd_update_ (the generic composite is in rbm.cpp).
//
// At the sizes where an RBM step is short (100x784x500: about 1.5 ms of products on two cores),
// the dozen small ATen calls of the generic version (column sums of the four phase matrices, the
// momentum and parameter updates of three tensors, the weight decay) cost a tenth of the step in
// dispatch and thread start-up. Here the two products still go to MKL/oneDNN through ATen,
// accumulating into the weight's momentum buffer, and the rest is two parallel passes: one over
// the weights, one over the bias columns. Same arithmetic as the generic version (same formulas,
// float accumulators of the operands' dtype), so the two agree to rounding.
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <torch/library.h>

#include "rbm/rbm_checks.h"

namespace dgm_fast {
namespace {

constexpr int64_t kWeightGrain = 1 << 15;  // weights per task
constexpr int64_t kColumnGrain = 256;      // bias columns per task

// Adds the column sums of rows [0, rows) of a row-major [rows, width] matrix, columns
// [c0, c1), scaled by `scale`, to acc[0, c1 - c0).
template <typename scalar_t>
void add_column_sums(const scalar_t* __restrict m, int64_t rows, int64_t width, int64_t c0,
                     int64_t c1, scalar_t scale, scalar_t* __restrict acc) {
  const int64_t n = c1 - c0;
  std::vector<scalar_t> sums(n, scalar_t(0));
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t* __restrict row = m + r * width + c0;
    scalar_t* __restrict s = sums.data();
    for (int64_t j = 0; j < n; ++j) s[j] += row[j];
  }
  for (int64_t j = 0; j < n; ++j) acc[j] += sums[j] * scale;
}

// buffer <- momentum * buffer + (column means of `model` - column means of `data`);
// param <- param - lr * buffer, for the columns [c0, c1).
template <typename scalar_t>
void bias_step(const scalar_t* data, int64_t bd, const scalar_t* model, int64_t bm, int64_t width,
               int64_t c0, int64_t c1, scalar_t lr, scalar_t momentum, scalar_t* param,
               scalar_t* buffer) {
  std::vector<scalar_t> grad(c1 - c0, scalar_t(0));
  add_column_sums(model, bm, width, c0, c1, scalar_t(1) / scalar_t(bm), grad.data());
  add_column_sums(data, bd, width, c0, c1, scalar_t(-1) / scalar_t(bd), grad.data());
  for (int64_t j = c0; j < c1; ++j) {
    buffer[j] = momentum * buffer[j] + grad[j - c0];
    param[j] -= lr * buffer[j];
  }
}

}  // namespace

template <typename scalar_t>
void sgd_update_passes(scalar_t* __restrict w, scalar_t* __restrict buf, scalar_t* b, scalar_t* b_buf, scalar_t* c, scalar_t* c_buf,
                       const scalar_t* vd, const scalar_t* hd, int64_t bd, const scalar_t* vm,
                       const scalar_t* hm, int64_t bm, int64_t nv, int64_t nh, double lr, double momentum,
                       double weight_decay) {
  const auto s_lr = static_cast<scalar_t>(lr), s_m = static_cast<scalar_t>(momentum);
  const auto s_wd = static_cast<scalar_t>(weight_decay);
  at::parallel_for(0, nv * nh, kWeightGrain, [&](int64_t begin, int64_t end) {
    if (s_wd != 0) {
      for (int64_t i = begin; i < end; ++i) {
        buf[i] += s_wd * w[i];
        w[i] -= s_lr * buf[i];
      }
    } else {
      for (int64_t i = begin; i < end; ++i) w[i] -= s_lr * buf[i];
    }
  });
  // Visible columns [0, nv) then hidden columns [nv, nv + nh), as one range.
  at::parallel_for(0, nv + nh, kColumnGrain, [&](int64_t begin, int64_t end) {
    if (begin < nv) bias_step(vd, bd, vm, bm, nv, begin, std::min(end, nv), s_lr, s_m, b, b_buf);
    if (end > nv) bias_step(hd, bd, hm, bm, nh, std::max(begin, nv) - nv, end - nv, s_lr, s_m, c, c_buf);
  });
}

template void sgd_update_passes<float>(float*, float*, float*, float*, float*, float*, const float*, const float*,
                                       int64_t, const float*, const float*, int64_t, int64_t, int64_t, double,
                                       double, double);
template void sgd_update_passes<double>(double*, double*, double*, double*, double*, double*, const double*,
                                        const double*, int64_t, const double*, const double*, int64_t, int64_t,
                                        int64_t, double, double, double);

namespace {

void rbm_sgd_update_cpu(const at::Tensor& weight, const at::Tensor& visible_bias,
                        const at::Tensor& hidden_bias, const at::Tensor& weight_momentum,
                        const at::Tensor& visible_momentum, const at::Tensor& hidden_momentum,
                        const at::Tensor& v_data, const at::Tensor& h_data,
                        const at::Tensor& v_model, const at::Tensor& h_model, double lr,
                        double momentum, double weight_decay,
                        const std::optional<at::Tensor>& visible_log_std) {
  const bool fast =
      !visible_log_std.has_value() &&
      (weight.scalar_type() == at::kFloat || weight.scalar_type() == at::kDouble);
  const auto contiguous = [](std::initializer_list<const at::Tensor*> ts) {
    for (const at::Tensor* t : ts)
      if (!t->is_contiguous()) return false;
    return true;
  };
  if (!fast || !contiguous({&weight, &visible_bias, &hidden_bias, &weight_momentum,
                            &visible_momentum, &hidden_momentum, &v_data, &h_data, &v_model,
                            &h_model})) {
    // Gaussian visible units (scaled operands), reduced-precision or strided parameters.
    rbm_sgd_update_generic(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
                           hidden_momentum, v_data, h_data, v_model, h_model, lr, momentum,
                           weight_decay, visible_log_std);
    return;
  }
  check_sgd_update_args(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
                        hidden_momentum, v_data, h_data, v_model, h_model, lr, momentum,
                        weight_decay, visible_log_std);
  const int64_t bd = v_data.size(0), bm = v_model.size(0);
  const int64_t nv = weight.size(0), nh = weight.size(1);
  weight_momentum.addmm_(v_data.t(), h_data, /*beta=*/momentum, /*alpha=*/-1.0 / bd);
  weight_momentum.addmm_(v_model.t(), h_model, /*beta=*/1, /*alpha=*/1.0 / bm);
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "rbm_sgd_update_cpu", [&] {
    sgd_update_passes<scalar_t>(
        weight.mutable_data_ptr<scalar_t>(), weight_momentum.mutable_data_ptr<scalar_t>(),
        visible_bias.mutable_data_ptr<scalar_t>(), visible_momentum.mutable_data_ptr<scalar_t>(),
        hidden_bias.mutable_data_ptr<scalar_t>(), hidden_momentum.mutable_data_ptr<scalar_t>(),
        v_data.const_data_ptr<scalar_t>(), h_data.const_data_ptr<scalar_t>(), bd,
        v_model.const_data_ptr<scalar_t>(), h_model.const_data_ptr<scalar_t>(), bm, nv, nh, lr, momentum,
        weight_decay);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("rbm_sgd_update_", &rbm_sgd_update_cpu);
}

}  // namespace dgm_fast
