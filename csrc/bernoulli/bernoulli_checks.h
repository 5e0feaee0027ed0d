// Argument checks of the Bernoulli layer ops, shared by their CPU and CUDA kernels, so that every
// device rejects the same inputs with the same message.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "common/checks.h"

namespace dgm_fast {

// logits: [..., D], at least one dimension (the units of a layer), any strides.
inline void check_bernoulli_logits_rows(const at::Tensor& logits, const char* op) {
  check_float_dtype(logits, op, "logits");
  TORCH_CHECK_VALUE(logits.dim() >= 1, op,
                    ": logits must have shape [..., units] (at least one dimension), got a 0-dim tensor");
}

// x, logits: [..., D], the same shape, dtype and device.
inline void check_bernoulli_log_prob_args(const at::Tensor& x, const at::Tensor& logits, const char* op) {
  check_bernoulli_logits_rows(logits, op);
  check_same_device(logits, x, op, "logits", "x");
  TORCH_CHECK_TYPE(x.scalar_type() == logits.scalar_type(), op, ": x has dtype ", x.scalar_type(),
                   " but logits have dtype ", logits.scalar_type(), "; pass both in one dtype");
  TORCH_CHECK_VALUE(x.sizes() == logits.sizes(), op, ": x must have the shape of logits ",
                    logits.sizes(), ", got ", x.sizes());
}

// grad: [...], the logits' shape without its last dimension.
inline void check_bernoulli_log_prob_backward_args(const at::Tensor& grad, const at::Tensor& x,
                                                   const at::Tensor& logits) {
  constexpr const char* op = "bernoulli_log_prob_backward";
  check_bernoulli_log_prob_args(x, logits, op);
  check_same_device(logits, grad, op, "logits", "grad");
  TORCH_CHECK_TYPE(grad.scalar_type() == logits.scalar_type(), op, ": grad has dtype ",
                   grad.scalar_type(), " but logits have dtype ", logits.scalar_type());
  const auto rows = logits.sizes().slice(0, logits.dim() - 1);
  TORCH_CHECK_VALUE(grad.sizes() == rows, op, ": grad must have shape ", rows,
                    " (the shape of logits without its last dimension), got ", grad.sizes());
}

// The shape of a per-row result: the logits' shape without its last dimension (the units).
inline std::vector<int64_t> row_shape(const at::Tensor& logits) {
  return logits.sizes().slice(0, logits.dim() - 1).vec();
}

}  // namespace dgm_fast
